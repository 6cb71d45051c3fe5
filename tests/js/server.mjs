// Shared pieces of the stock-client tests: the real Duet server binary on a loopback port,
// the admin API, and stock y-websocket clients that always go through the server.
//
// DUET_BIN overrides the binary (default: ../../target/debug/duet from this file). Every
// provider is created with `disableBc: true`: providers of one process otherwise sync through
// BroadcastChannel and would agree without the server ever relaying a byte.

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
const ADMIN_TOKEN = 'js-board-admin-token-0123456789abcdefghijklmnopq'
const WAIT_MS = 10_000

export function sleep (ms) {
  return new Promise(resolve => setTimeout(resolve, ms))
}

/** Polls `probe` until it returns a truthy value; fails saying `what` (a string or a function). */
export async function waitFor (what, probe, { timeout = WAIT_MS, every = 20 } = {}) {
  const deadline = Date.now() + timeout
  for (;;) {
    const last = probe()
    if (last) return last
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${typeof what === 'function' ? what() : what}`)
    }
    await sleep(every)
  }
}

/**
 * Starts `duet serve` on 127.0.0.1:0 with a fresh data directory; resolves once it prints its
 * address. Returns `{ baseUrl, wsBase, api, stop }`.
 */
export async function startServer () {
  if (!fs.existsSync(DUET_BIN)) {
    throw new Error(`The Duet server binary is missing: ${DUET_BIN}\n` +
      'Build it first (from the repository root): cargo build -p duet-server --bin duet\n' +
      'or point DUET_BIN at an existing duet binary.')
  }
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'duet-js-'))
  const child = spawn(DUET_BIN, ['serve', '--listen', '127.0.0.1:0', '--data-dir', dataDir], {
    env: { ...process.env, DUET_ADMIN_TOKEN: ADMIN_TOKEN },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const kill = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') }
  process.on('exit', kill) // last resort, should stop() never run
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', chunk => { stderr += chunk })
  const listening = new Promise((resolve, reject) => {
    child.stdout.on('data', chunk => {
      stdout += chunk
      const m = stdout.match(/Duet listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (m) resolve(m[1])
    })
    child.on('error', err => reject(new Error(`could not start ${DUET_BIN}: ${err.message}`)))
    child.on('exit', (code, signal) => reject(new Error(
      `the server exited before listening (code ${code}, signal ${signal})\nstderr:\n${stderr}`)))
  })
  let timer
  const timeout = new Promise((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`the server did not start within 15 s\nstderr:\n${stderr}`)), 15_000)
  })
  let baseUrl
  try {
    baseUrl = await Promise.race([listening, timeout])
  } catch (e) {
    kill()
    throw e
  } finally {
    clearTimeout(timer)
  }
  const api = async (method, urlPath, { token, body } = {}) => {
    const headers = {}
    if (token) headers.authorization = `Bearer ${token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(baseUrl + urlPath, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
    const text = await res.text()
    let json = null
    try { json = JSON.parse(text) } catch {}
    return { status: res.status, json, text }
  }
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      const graceful = await Promise.race([exited.then(() => true), sleep(5_000).then(() => false)])
      if (!graceful) {
        kill()
        await exited
      }
    }
    const worrying = stderr.split('\n').filter(l => /\b(WARN|ERROR)\b|panicked/.test(l))
    if (worrying.length > 0) console.log(`server stderr (warnings and errors):\n${worrying.join('\n')}`)
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return { baseUrl, wsBase: baseUrl.replace(/^http/, 'ws') + '/yjs', api, stop, adminToken: ADMIN_TOKEN }
}

/** Creates an interview through the admin API; returns `{id, tokens}`. */
export async function createInterview (server, title) {
  const res = await server.api('POST', '/api/interviews', {
    token: server.adminToken,
    body: { title, candidate_name: 'Ada Lovelace' }
  })
  assert.equal(res.status, 201, `POST /api/interviews answers 201 (got ${res.status}: ${res.text})`)
  return res.json
}

/**
 * A stock y-websocket client with its own Y.Doc, for `/yjs/{id}?token=T`, destroyed however the
 * test ends. `closes` collects every close the server sent (code and reason).
 */
export function connect (t, server, label, id, token) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(server.wsBase, id, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket,
    disableBc: true
  })
  const client = {
    label,
    doc,
    provider,
    closes: [],
    destroyed: false,
    destroy () {
      if (this.destroyed) return
      this.destroyed = true
      provider.destroy()
      doc.destroy()
    }
  }
  provider.on('connection-close', event => client.closes.push(event ? { code: event.code, reason: event.reason } : null))
  t.after(() => client.destroy())
  return client
}

export async function synced (...clients) {
  for (const c of clients) {
    await waitFor(() => `${c.label} to connect and sync (closes: ${JSON.stringify(c.closes)})`,
      () => c.provider.wsconnected && c.provider.synced)
  }
}
