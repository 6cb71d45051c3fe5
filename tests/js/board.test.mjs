// The whiteboard with the stock JavaScript Yjs client (yjs + y-websocket) against the real Duet
// server binary: board elements written through a plain Y.Map reach the other person and a
// late joiner; a value the board does not accept closes its sender with 1007 saying what, and
// nobody else is touched.
//
//   cargo build -p duet-server --bin duet
//   cd tests/js && npm ci && node --test board.test.mjs

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { startServer, createInterview, connect, synced, waitFor, sleep } from './server.mjs'

const BOARD = 'board' // duet_protocol::BOARD
const INVALID_PAYLOAD = 1007 // duet_protocol::close::INVALID_PAYLOAD

let server
before(async () => { server = await startServer() })
after(async () => { await server?.stop() })

/** An Excalidraw element as the board stores it: a JSON string under its id. */
function rectangle (id, x, extra = {}) {
  return {
    id,
    type: 'rectangle',
    x,
    y: 10,
    width: 120,
    height: 60,
    version: 1,
    versionNonce: 17,
    isDeleted: false,
    ...extra
  }
}

function board (client) { return client.doc.getMap(BOARD) }

function draw (client, ...elements) {
  client.doc.transact(() => {
    for (const el of elements) board(client).set(el.id, JSON.stringify(el))
  })
}

/** The elements a client sees, by id, parsed. */
function elements (client) {
  const out = {}
  for (const [id, json] of board(client).entries()) out[id] = JSON.parse(json)
  return out
}

test('board elements written through a stock Y.Map reach the other person and a late joiner', async t => {
  const { id, tokens } = await createInterview(server, 'Board sync')
  const cand = connect(t, server, 'candidate', id, tokens.candidate)
  const intv = connect(t, server, 'interviewer', id, tokens.interviewer)
  await synced(cand, intv)

  // The candidate draws a client, an API and a queue; the interviewer sees all three.
  draw(cand, rectangle('client', 0), rectangle('api', 200), rectangle('queue', 400))
  await waitFor('the interviewer to see the candidate\'s three boxes',
    () => Object.keys(elements(intv)).length === 3)
  assert.deepEqual(elements(intv).api, rectangle('api', 200))

  // The interviewer moves the queue and labels it; the candidate sees the new version.
  draw(intv, rectangle('queue', 450, { version: 2, text: '<b>queue</b> & workers' }))
  await waitFor('the candidate to see the moved queue', () => elements(cand).queue?.version === 2)
  assert.equal(elements(cand).queue.x, 450)
  assert.equal(elements(cand).queue.text, '<b>queue</b> & workers', 'markup in an element is kept as text')

  // Both change different elements at once; both converge.
  draw(cand, rectangle('client', 5, { version: 2 }))
  draw(intv, rectangle('api', 205, { version: 2 }))
  await waitFor('both boards to converge', () =>
    JSON.stringify(elements(cand)) === JSON.stringify(elements(intv)) &&
    elements(cand).client.version === 2 && elements(cand).api.version === 2)

  // A reviewer joining later reads the whole board from the server.
  const rev = connect(t, server, 'reviewer', id, tokens.reviewer)
  await synced(rev)
  await waitFor('the reviewer to receive the board', () => Object.keys(elements(rev)).length === 3)
  assert.deepEqual(elements(rev), elements(intv))
  assert.deepEqual(cand.closes, [])
  assert.deepEqual(intv.closes, [])
})

test('a board value the server does not accept closes its sender with 1007 saying what', async t => {
  const { id, tokens } = await createInterview(server, 'Board refusals')
  const intv = connect(t, server, 'interviewer', id, tokens.interviewer)
  await synced(intv)
  draw(intv, rectangle('kept', 0))

  const cases = [
    ['an image', c => draw(c, { ...rectangle('pic', 0), type: 'image', fileId: 'f1' }), /"image"/],
    ['a value that is not JSON', c => board(c).set('x', 'not json'), /not JSON/],
    ['a JSON array', c => board(c).set('x', '[1,2]'), /JSON object/],
    ['an element over 64 KiB', c => draw(c, rectangle('big', 0, { text: 'x'.repeat(64 * 1024) })), /64 KiB/],
    ['a nested Y.Map', c => board(c).set('nested', new Y.Map()), /nested shared type/],
    ['a number', c => board(c).set('n', 4), /JSON string/],
    ['an element under another id', c => board(c).set('x', JSON.stringify(rectangle('y', 0))), /another key/]
  ]
  for (const [what, act, said] of cases) {
    const cand = connect(t, server, `candidate sending ${what}`, id, tokens.candidate)
    await synced(cand)
    act(cand)
    const closed = await waitFor(`the server to close the candidate who sent ${what}`,
      () => cand.closes.find(c => c && c.code === INVALID_PAYLOAD))
    assert.match(closed.reason, said, `the reason says what was wrong with ${what}`)
    cand.destroy() // y-websocket would reconnect and send the same state again
  }

  // The interviewer was never disconnected, and the room holds only what it drew.
  await sleep(200)
  assert.deepEqual(intv.closes, [], 'the interviewer was not touched')
  draw(intv, rectangle('after', 10))
  const fresh = connect(t, server, 'fresh reviewer', id, tokens.reviewer)
  await synced(fresh)
  await waitFor('a fresh client to see the interviewer\'s two elements',
    () => Object.keys(elements(fresh)).sort().join() === 'after,kept')
  assert.deepEqual(Object.keys(elements(fresh)).sort(), ['after', 'kept'])
})
