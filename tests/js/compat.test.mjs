// Compatibility test: the stock JavaScript Yjs client (yjs + y-websocket, as a browser editor
// uses them) against the real Duet server binary.
//
//   cargo build -p duet-server --bin duet
//   cd tests/js && npm ci && node --test
//
// DUET_BIN overrides the binary (default: ../../target/debug/duet from this file).
//
// Every provider is created with `disableBc: true`: providers of one process otherwise sync
// through BroadcastChannel and would agree without the server ever relaying a byte.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const HERE = path.dirname(fileURLToPath(import.meta.url))
const DUET_BIN = process.env.DUET_BIN
  ? path.resolve(process.env.DUET_BIN)
  : path.resolve(HERE, '../../target/debug/duet')
const ADMIN_TOKEN = 'js-compat-admin-token-0123456789abcdefghijklmnop'
const MAIN_FILE = 'main.py' // duet_protocol::MAIN_FILE
const CANDIDATE_NAME = 'Ada Lovelace'
const WAIT_MS = 10_000

/** @type {import('node:child_process').ChildProcess | null} */
let server = null
let dataDir = ''
let baseUrl = '' // http://127.0.0.1:PORT
let wsBase = '' // ws://127.0.0.1:PORT/yjs
let serverStdout = ''
let serverStderr = ''

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * Polls `probe` until it returns a truthy value; fails with `what` (a string, or a function
 * giving one when the wait fails) and the last value seen.
 */
async function waitFor (what, probe, { timeout = WAIT_MS, every = 20 } = {}) {
  const deadline = Date.now() + timeout
  let last
  for (;;) {
    last = probe()
    if (last) return last
    if (Date.now() > deadline) {
      const said = typeof what === 'function' ? what() : what
      throw new Error(`timed out after ${timeout} ms waiting for ${said}${describeLast(last)}`)
    }
    await sleep(every)
  }
}

function describeLast (last) {
  return last === undefined || last === false ? '' : ` (last value: ${JSON.stringify(last)})`
}

function sleep (ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Waits until every doc's main.py reads exactly `expected`. */
async function waitForText (clients, expected, what = 'the texts to converge') {
  await waitFor(() => `${what}: ${JSON.stringify(expected)}; now ${JSON.stringify(clients.map(c => `${c.label}: ${c.text()}`))}`,
    () => clients.every(c => c.text() === expected))
  for (const c of clients) assert.equal(c.text(), expected, `${c.label} holds the expected text`)
}

async function api (method, urlPath, { token, body } = {}) {
  const headers = {}
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(baseUrl + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  let json = null
  try { json = JSON.parse(text) } catch {}
  return { status: res.status, json, text }
}

/** Creates an interview through the admin API; returns `{id, tokens}`. */
async function createInterview (title) {
  const res = await api('POST', '/api/interviews', {
    token: ADMIN_TOKEN,
    body: { title, candidate_name: CANDIDATE_NAME }
  })
  assert.equal(res.status, 201, `POST /api/interviews answers 201 (got ${res.status}: ${res.text})`)
  const { id, tokens } = res.json
  assert.equal(typeof id, 'string')
  for (const role of ['interviewer', 'candidate', 'reviewer']) {
    assert.equal(typeof tokens?.[role], 'string', `the answer has tokens.${role}`)
  }
  return { id, tokens }
}

/**
 * A stock y-websocket client: its own Y.Doc and a WebsocketProvider for `/yjs/{id}?token=T`.
 * Registered with the test so it is destroyed however the test ends.
 */
function connect (t, label, id, token, { beforeConnect } = {}) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(wsBase, id, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    connect: false
  })
  const client = {
    label,
    doc,
    provider,
    ytext: doc.getText(MAIN_FILE),
    closes: [],
    errors: 0,
    text () { return this.ytext.toString() },
    /** The awareness state this client sees for another client's doc. */
    stateOf (other) { return provider.awareness.getStates().get(other.doc.clientID) },
    destroyed: false,
    destroy () {
      if (this.destroyed) return
      this.destroyed = true
      provider.destroy()
      doc.destroy() // also destroys the awareness (and its timer)
    }
  }
  provider.on('connection-close', event => client.closes.push(event ? { code: event.code, reason: event.reason } : null))
  provider.on('connection-error', () => { client.errors++ })
  t.after(() => client.destroy())
  if (beforeConnect) beforeConnect(client)
  provider.connect()
  assert.equal(provider.bcconnected, false, 'no BroadcastChannel shortcut: everything goes through the server')
  return client
}

async function synced (...clients) {
  for (const c of clients) {
    await waitFor(() => `${c.label} to connect and sync with the server (closes: ${JSON.stringify(c.closes)}, errors: ${c.errors})`,
      () => c.provider.wsconnected && c.provider.synced)
  }
}

/** Types `s` at `index` one character per transaction, the way an editor sends keystrokes. */
function typeAt (client, index, s) {
  for (const [i, ch] of [...s].entries()) client.ytext.insert(index + i, ch)
}

/** Opens a raw websocket and reports how the handshake went. */
function rawHandshake (url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url)
    const timer = setTimeout(() => { ws.terminate(); reject(new Error(`no answer to the handshake of ${url}`)) }, WAIT_MS)
    ws.on('unexpected-response', (req, res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      res.on('end', () => {
        clearTimeout(timer)
        req.destroy()
        resolve({ kind: 'unexpected-response', status: res.statusCode, body })
      })
    })
    ws.on('open', () => {
      clearTimeout(timer)
      ws.terminate()
      resolve({ kind: 'open' })
    })
    ws.on('error', err => {
      clearTimeout(timer)
      resolve({ kind: 'error', message: err.message })
    })
  })
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

function stopServer () {
  if (server && server.exitCode === null && server.signalCode === null) server.kill('SIGKILL')
}
process.on('exit', stopServer) // last resort, should the after hook never run

before(async () => {
  if (!fs.existsSync(DUET_BIN)) {
    throw new Error(
      `The Duet server binary is missing: ${DUET_BIN}\n` +
      'Build it first (from the repository root): cargo build -p duet-server --bin duet\n' +
      'or point DUET_BIN at an existing duet binary.')
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duet-js-compat-'))
  server = spawn(DUET_BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, DUET_ADMIN_TOKEN: ADMIN_TOKEN },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  server.stdout.setEncoding('utf8')
  server.stderr.setEncoding('utf8')
  server.stderr.on('data', chunk => { serverStderr += chunk })
  const listening = new Promise((resolve, reject) => {
    server.stdout.on('data', chunk => {
      serverStdout += chunk
      const m = serverStdout.match(/Duet listening on (http:\/\/127\.0\.0\.1:(\d+))/)
      if (m) resolve(m[1])
    })
    server.on('error', err => reject(new Error(`could not start ${DUET_BIN}: ${err.message}`)))
    server.on('exit', (code, signal) => reject(new Error(
      `the server exited before listening (code ${code}, signal ${signal})\nstdout:\n${serverStdout}\nstderr:\n${serverStderr}`)))
  })
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(
      `the server did not print "Duet listening on http://127.0.0.1:PORT" within 15 s\nstdout:\n${serverStdout}\nstderr:\n${serverStderr}`)), 15_000)
  })
  try {
    baseUrl = await Promise.race([listening, timeout])
  } catch (e) {
    stopServer()
    throw e
  } finally {
    clearTimeout(timer)
  }
  wsBase = baseUrl.replace(/^http/, 'ws') + '/yjs'
  const health = await api('GET', '/healthz')
  assert.equal(health.status, 200, `GET /healthz: ${health.text}`)
})

after(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    const exited = once(server, 'exit')
    server.kill('SIGTERM')
    let timer
    const graceful = await Promise.race([
      exited.then(() => true),
      new Promise(resolve => { timer = setTimeout(resolve, 5_000, false) })
    ])
    clearTimeout(timer)
    if (!graceful) {
      server.kill('SIGKILL')
      await exited
    }
  }
  // Anything the server logged at warn or error level is worth a look, pass or fail.
  const worrying = serverStderr.split('\n').filter(l => /\b(WARN|ERROR)\b|panicked/.test(l))
  if (worrying.length > 0) console.log(`server stderr (warnings and errors):\n${worrying.join('\n')}`)
  if (process.env.DUET_SHOW_SERVER_LOG) console.log(`server stderr:\n${serverStderr}`)
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true })
})

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

test('candidate and interviewer editing through the server converge to the same exact text', async t => {
  const { id, tokens } = await createInterview('Convergence')
  const cand = connect(t, 'candidate', id, tokens.candidate)
  const intv = connect(t, 'interviewer', id, tokens.interviewer)
  await synced(cand, intv)

  // The candidate writes a first version, keystroke by keystroke.
  const first = 'def add(a, b):\n    return a+b  # TODO\n'
  typeAt(cand, 0, first)
  await waitForText([cand, intv], first, 'the interviewer to receive the first version')

  // Then both edit at once, before either hears of the other's change: the interviewer adds a
  // comment at the top, the candidate deletes the TODO and appends a call at the end.
  intv.ytext.insert(0, '# Adds two numbers.\n')
  const todo = cand.text().indexOf('  # TODO')
  cand.ytext.delete(todo, '  # TODO'.length)
  typeAt(cand, cand.text().length, '\nprint(add(2, 3))\n')
  const second = '# Adds two numbers.\ndef add(a, b):\n    return a+b\n\nprint(add(2, 3))\n'
  await waitForText([cand, intv], second, 'the concurrent edits to merge')

  // A last round: the interviewer deletes a range the candidate is not touching while the
  // candidate types in the middle of the body.
  const ret = intv.text().indexOf('a+b')
  intv.ytext.delete(ret, 'a+b'.length)
  intv.ytext.insert(ret, 'a + b')
  const body = cand.text().indexOf('    return')
  typeAt(cand, body, '    """Returns a + b."""\n')
  const third = '# Adds two numbers.\ndef add(a, b):\n    """Returns a + b."""\n    return a + b\n\nprint(add(2, 3))\n'
  await waitForText([cand, intv], third, 'the second round of concurrent edits to merge')

  assert.deepEqual(cand.closes, [], 'the candidate was never disconnected')
  assert.deepEqual(intv.closes, [], 'the interviewer was never disconnected')
})

test('awareness: the server stamps the real user (name, role) over a forged one and keeps the other fields', async t => {
  const { id, tokens } = await createInterview('Awareness')
  const forged = { name: 'Mallory', color: '#000' }
  // The candidate's state is set before connecting (y-websocket sends it on open); the
  // interviewer's after syncing (sent as an awareness update).
  const cand = connect(t, 'candidate', id, tokens.candidate, {
    beforeConnect: c => c.provider.awareness.setLocalState({ user: forged, cursor: { anchor: 3, head: 7 } })
  })
  const intv = connect(t, 'interviewer', id, tokens.interviewer)
  await synced(cand, intv)
  intv.provider.awareness.setLocalState({ user: forged, cursor: { anchor: 11, head: 11 }, selecting: false })

  const candSeen = await waitFor('the interviewer to see the candidate\'s cursor',
    () => intv.stateOf(cand)?.cursor && intv.stateOf(cand))
  assert.equal(candSeen.user.name, CANDIDATE_NAME)
  assert.equal(candSeen.user.role, 'candidate')
  assert.notEqual(candSeen.user.color, forged.color, 'the forged colour is replaced too')
  assert.equal(typeof candSeen.user.color, 'string')
  assert.deepEqual(candSeen.cursor, { anchor: 3, head: 7 }, 'the candidate\'s cursor is kept')

  const intvSeen = await waitFor('the candidate to see the interviewer\'s cursor',
    () => cand.stateOf(intv)?.cursor && cand.stateOf(intv))
  assert.equal(intvSeen.user.name, 'Interviewer')
  assert.equal(intvSeen.user.role, 'interviewer')
  assert.notEqual(intvSeen.user.color, forged.color)
  assert.deepEqual(intvSeen.cursor, { anchor: 11, head: 11 }, 'the interviewer\'s cursor is kept')
  assert.equal(intvSeen.selecting, false, 'other fields are kept')

  // A later move is relayed (and stamped) as well.
  cand.provider.awareness.setLocalStateField('cursor', { anchor: 5, head: 5 })
  const moved = await waitFor('the interviewer to see the candidate\'s cursor move',
    () => intv.stateOf(cand)?.cursor?.anchor === 5 && intv.stateOf(cand))
  assert.deepEqual(moved.user && { name: moved.user.name, role: moved.user.role }, { name: CANDIDATE_NAME, role: 'candidate' })

  // Leaving removes the state on the other side.
  cand.destroy()
  await waitFor('the candidate\'s awareness state to disappear at the interviewer',
    () => intv.stateOf(cand) === undefined)
})

test('reviewer receives the text, its own edits are dropped by the server, and its connection stays open', async t => {
  const { id, tokens } = await createInterview('Reviewer')
  const cand = connect(t, 'candidate', id, tokens.candidate)
  const intv = connect(t, 'interviewer', id, tokens.interviewer)
  await synced(cand, intv)
  const program = 'for i in range(3):\n    print(i)\n'
  typeAt(cand, 0, program)
  await waitForText([cand, intv], program)

  const rev = connect(t, 'reviewer', id, tokens.reviewer)
  await synced(rev)
  await waitForText([rev], program, 'the reviewer to receive the text')

  // The reviewer edits its copy: an insertion and a deletion.
  rev.ytext.insert(0, 'import os\n')
  rev.ytext.delete(rev.text().indexOf('print(i)'), 'print(i)'.length)
  assert.equal(rev.text(), 'import os\nfor i in range(3):\n    \n', 'the reviewer\'s local copy changed')

  // Barrier: the server handles one connection's messages in order, so once the others see an
  // awareness update the reviewer sent after its edits, any relayed edit would already be there.
  rev.provider.awareness.setLocalState({ cursor: 'after-edits' })
  for (const other of [cand, intv]) {
    const seen = await waitFor(`${other.label} to see the reviewer's awareness`,
      () => other.stateOf(rev)?.cursor === 'after-edits' && other.stateOf(rev))
    assert.equal(seen.user.role, 'reviewer')
    assert.equal(seen.user.name, 'Reviewer')
  }
  await sleep(500) // and a little longer, in case something were slower than the barrier
  assert.equal(cand.text(), program, 'the candidate\'s text is unchanged by the reviewer')
  assert.equal(intv.text(), program, 'the interviewer\'s text is unchanged by the reviewer')

  // The reviewer was not disconnected for trying, and still receives the others' edits.
  assert.equal(rev.provider.wsconnected, true, 'the reviewer is still connected')
  assert.equal(rev.provider.ws?.readyState, WebSocket.OPEN)
  assert.deepEqual(rev.closes, [], 'the reviewer\'s connection was never closed')
  cand.ytext.insert(cand.text().length, 'print("done")\n')
  const expected = program + 'print("done")\n'
  await waitForText([cand, intv], expected)
  await waitFor('the reviewer to receive the candidate\'s later edit',
    () => rev.text().endsWith('print("done")\n'))
  assert.equal(rev.provider.wsconnected, true)

  // A reviewer joining afresh sees the server's text, without the first reviewer's edits.
  const rev2 = connect(t, 'second reviewer', id, tokens.reviewer)
  await synced(rev2)
  await waitForText([rev2], expected, 'a fresh reviewer to receive the server\'s text')
})

test('a late joiner receives the full text, and the awareness of those already in the room', async t => {
  const { id, tokens } = await createInterview('Late joiner')
  const cand = connect(t, 'candidate', id, tokens.candidate)
  const intv = connect(t, 'interviewer', id, tokens.interviewer)
  await synced(cand, intv)
  cand.provider.awareness.setLocalStateField('cursor', { anchor: 0, head: 0 })

  typeAt(cand, 0, 'def fib(n):\n    return n\n')
  await waitForText([cand, intv], 'def fib(n):\n    return n\n')
  const at = intv.text().indexOf('    return n')
  intv.ytext.insert(at, '    if n < 2:\n        return n\n')
  const ret = cand.text().lastIndexOf('return n\n')
  cand.ytext.delete(ret, 'return n'.length)
  cand.ytext.insert(ret, 'return fib(n - 1) + fib(n - 2)')
  const expected = 'def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n'
  await waitForText([cand, intv], expected)

  const late = connect(t, 'late joiner', id, tokens.interviewer)
  await synced(late)
  await waitForText([late, cand, intv], expected, 'the late joiner to receive the full text')
  const candState = await waitFor('the late joiner to see the candidate\'s awareness',
    () => late.stateOf(cand)?.cursor && late.stateOf(cand))
  assert.equal(candState.user.name, CANDIDATE_NAME)
  assert.equal(candState.user.role, 'candidate')

  // The late joiner can edit, and the others get it.
  late.ytext.insert(late.text().length, '\nprint(fib(10))\n')
  await waitForText([late, cand, intv], expected + '\nprint(fib(10))\n')

  // Someone joining after everyone else left still gets the whole document.
  const final = expected + '\nprint(fib(10))\n'
  cand.destroy()
  intv.destroy()
  late.destroy()
  const last = connect(t, 'joiner after everyone left', id, tokens.candidate)
  await synced(last)
  await waitForText([last], final, 'a joiner after everyone left to receive the full text')
})

test('a wrong or missing token is refused with HTTP 401 before the websocket upgrade', async t => {
  const { id } = await createInterview('Wrong token')
  const wrong = 'not-a-real-token-not-a-real-token-xx'
  const refused = await rawHandshake(`${wsBase}/${id}?token=${wrong}`)
  assert.equal(refused.kind, 'unexpected-response', `the handshake fails (${JSON.stringify(refused)})`)
  assert.equal(refused.status, 401, `the server answers 401 (${refused.body})`)
  assert.equal(JSON.parse(refused.body).error?.code, 'unauthorized')

  const missing = await rawHandshake(`${wsBase}/${id}`)
  assert.equal(missing.kind, 'unexpected-response', JSON.stringify(missing))
  assert.equal(missing.status, 401)

  // The stock provider with a wrong token never connects nor syncs.
  const bad = connect(t, 'wrong token', id, wrong)
  await waitFor('the provider with a wrong token to fail its handshake', () => bad.errors > 0 && bad.closes.length > 0)
  assert.equal(bad.provider.wsconnected, false)
  assert.equal(bad.provider.synced, false)
  assert.equal(bad.text(), '')
})

test('a valid token of another interview is refused with HTTP 404 before the upgrade', async () => {
  const a = await createInterview('Interview A')
  const b = await createInterview('Interview B')
  const res = await rawHandshake(`${wsBase}/${b.id}?token=${a.tokens.candidate}`)
  assert.equal(res.kind, 'unexpected-response', JSON.stringify(res))
  assert.equal(res.status, 404, `the server answers 404 (${res.body})`)
})
