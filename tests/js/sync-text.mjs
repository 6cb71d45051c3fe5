// Connects the stock Yjs client (yjs + y-websocket) to a Duet document, waits until it has
// synced, and prints the text of main.py as one JSON string. The fuzz harness
// (tests/tests/fuzz.rs) uses it to check that a stock client syncing afresh sees exactly what
// the server holds.
//
//   node tests/js/sync-text.mjs ws://127.0.0.1:PORT/yjs INTERVIEW_ID TOKEN

import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'

const [base, room, token] = process.argv.slice(2)
if (!base || !room || !token) {
  console.error('usage: sync-text.mjs WS_BASE INTERVIEW_ID TOKEN')
  process.exit(2)
}
const doc = new Y.Doc()
const provider = new WebsocketProvider(base, room, doc, {
  params: { token },
  WebSocketPolyfill: WebSocket,
  disableBc: true,
  connect: true
})
const timer = setTimeout(() => {
  console.error('sync-text: no sync within 10 s')
  process.exit(1)
}, 10_000)
provider.on('sync', (synced) => {
  if (!synced) return
  clearTimeout(timer)
  process.stdout.write(JSON.stringify(doc.getText('main.py').toString()) + '\n')
  provider.destroy()
  process.exit(0)
})
