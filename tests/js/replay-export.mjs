// Replays a Duet export with the stock yjs package, as the export's README describes, and
// prints the final text of main.py as one JSON string. tests/tests/replay.rs checks it against
// the live document.
//
//   node tests/js/replay-export.mjs EXTRACTED_DIR/duet-export

import * as Y from 'yjs'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const [dir] = process.argv.slice(2)
if (!dir) {
  console.error('usage: replay-export.mjs EXPORT_DIR')
  process.exit(2)
}
const doc = new Y.Doc()
let expected = 1
for (const line of readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n')) {
  if (!line) continue
  const record = JSON.parse(line)
  if (record.seq !== expected) throw new Error(`log gap: seq ${record.seq} where ${expected} was due`)
  expected += 1
  if (record.kind === 'edit') {
    Y.applyUpdate(doc, Buffer.from(record.update, 'base64'))
  }
}
process.stdout.write(JSON.stringify(doc.getText('main.py').toString()))
