// Several files with the stock JavaScript Yjs client (yjs + y-websocket) against the real Duet
// server binary: a file is a root Y.Text named by its path; renames and deletes are entries of
// the root Y.Map `files`. Two people create, rename and delete files and see the same project,
// a rename keeps what the other typed meanwhile, a late joiner reads every file, and a name or
// an entry the server does not accept closes only its sender with 1007 saying what.
//
//   cargo build -p duet-server --bin duet
//   cd tests/js && npm ci && node --test files.test.mjs

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { startServer, createInterview, connect, synced, waitFor, sleep } from './server.mjs'

const FILES = 'files' // duet_protocol::FILES
const MAIN_FILE = 'main.py' // duet_protocol::MAIN_FILE
const INVALID_PAYLOAD = 1007 // duet_protocol::close::INVALID_PAYLOAD
const PATH = /^(?!\/)(?!.*(^|\/)\.{0,2}(\/|$))[A-Za-z0-9_./-]{1,128}$/
const EXTENSION = /[^/.][^/]*\.(py|txt|md|csv|json|toml|ini|cfg|sql)$/

let server
before(async () => { server = await startServer() })
after(async () => { await server?.stop() })

/** The files a client lists, path -> text, by the rules of docs/API.md ("Files"). */
function project (client) {
  const { doc } = client
  const texts = [...doc.share.keys()].filter(n => PATH.test(n) && EXTENSION.test(n))
  if (!texts.includes(MAIN_FILE)) texts.push(MAIN_FILE)
  const entries = doc.getMap(FILES)
  const out = {}
  for (const t of texts) if (!entries.has(t)) out[t] = doc.getText(t).toString()
  for (const [path, entry] of entries.entries()) {
    if (entry.text !== undefined) out[path] = doc.getText(entry.text).toString()
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)))
}

function write (client, path, chunk) {
  const text = client.doc.getText(path)
  text.insert(text.length, chunk)
}

function rename (client, from, to) {
  const files = client.doc.getMap(FILES)
  const entry = files.get(from)
  client.doc.transact(() => {
    files.set(to, { text: entry?.text ?? from })
    files.set(from, { deleted: true })
  })
}

const CART = 'def total(items):\n    return sum(items)\n'

test('two people create, rename and delete files; a rename keeps what the other typed meanwhile', async t => {
  const { id, tokens } = await createInterview(server, 'Files sync')
  const cand = connect(t, server, 'candidate', id, tokens.candidate)
  const intv = connect(t, server, 'interviewer', id, tokens.interviewer)
  await synced(cand, intv)

  // The candidate writes a module and imports it; the interviewer adds notes.
  write(cand, 'shop/cart.py', CART)
  write(cand, MAIN_FILE, 'from shop.cart import total\n')
  write(intv, 'notes.md', 'ask about discounts\n')
  const three = { 'main.py': 'from shop.cart import total\n', 'notes.md': 'ask about discounts\n', 'shop/cart.py': CART }
  await waitFor('both to list the three files', () =>
    JSON.stringify(project(cand)) === JSON.stringify(three) && JSON.stringify(project(intv)) === JSON.stringify(three))

  // The candidate renames cart.py while the interviewer, not having seen it, types into it.
  intv.provider.disconnect()
  write(intv, 'shop/cart.py', '# TODO: discounts\n')
  rename(cand, 'shop/cart.py', 'shop/basket.py')
  await sleep(100)
  intv.provider.connect()
  const renamed = {
    'main.py': 'from shop.cart import total\n',
    'notes.md': 'ask about discounts\n',
    'shop/basket.py': CART + '# TODO: discounts\n'
  }
  await waitFor('both to see basket.py holding both changes', () =>
    JSON.stringify(project(cand)) === JSON.stringify(renamed) && JSON.stringify(project(intv)) === JSON.stringify(renamed))

  // The interviewer deletes the notes; the candidate sees them gone.
  intv.doc.getMap(FILES).set('notes.md', { deleted: true })
  await waitFor('the candidate to see notes.md gone', () => !('notes.md' in project(cand)))

  // A reviewer joining later reads the same project from the server.
  const rev = connect(t, server, 'reviewer', id, tokens.reviewer)
  await synced(rev)
  await waitFor('the reviewer to list the same files', () =>
    JSON.stringify(project(rev)) === JSON.stringify(project(cand)))
  assert.deepEqual(Object.keys(project(rev)), ['main.py', 'shop/basket.py'])
  assert.deepEqual(cand.closes.filter(Boolean), [])
  assert.deepEqual(intv.closes.filter(c => c && c.code !== 1000), [])
})

test('a file name or entry the server does not accept closes its sender with 1007 saying what', async t => {
  const { id, tokens } = await createInterview(server, 'Files refusals')
  const intv = connect(t, server, 'interviewer', id, tokens.interviewer)
  await synced(intv)
  write(intv, MAIN_FILE, 'print(1)\n')
  write(intv, 'shop/cart.py', CART)

  const cases = [
    ['a path climbing out', c => write(c, '../etc/x.py', 'x'), /must not contain \.\./],
    ['an absolute path', c => write(c, '/abs.py', 'x'), /relative/],
    ['a shell script', c => write(c, 'run.sh', 'x'), /must end in one of/],
    ['a rename onto main.py', c => rename(c, 'shop/cart.py', MAIN_FILE), /"main.py" already exists/],
    ['an entry of another shape', c => c.doc.getMap(FILES).set('a.py', { gone: 1 }), /file entry/],
    ['two paths showing one text', c => c.doc.getMap(FILES).set('copy.py', { text: MAIN_FILE }), /same text/]
  ]
  for (const [what, act, said] of cases) {
    const cand = connect(t, server, `candidate sending ${what}`, id, tokens.candidate)
    await synced(cand)
    await waitFor(`${cand.label} to receive the files`, () => 'shop/cart.py' in project(cand))
    act(cand)
    const closed = await waitFor(`the server to close the candidate who sent ${what}`,
      () => cand.closes.find(c => c && c.code === INVALID_PAYLOAD))
    assert.match(closed.reason, said, `the reason says what was wrong with ${what}`)
    cand.destroy() // y-websocket would reconnect and send the same state again
  }

  // The interviewer was never disconnected, and the room lists only what it wrote.
  await sleep(200)
  assert.deepEqual(intv.closes, [], 'the interviewer was not touched')
  const fresh = connect(t, server, 'fresh reviewer', id, tokens.reviewer)
  await synced(fresh)
  await waitFor('a fresh client to list the interviewer\'s two files',
    () => JSON.stringify(project(fresh)) === JSON.stringify({ 'main.py': 'print(1)\n', 'shop/cart.py': CART }))
})
