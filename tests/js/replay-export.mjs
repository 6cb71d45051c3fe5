// Replays a Duet export with the stock yjs package, as the export's README describes, and
// prints what the document holds at the end as one JSON object: every listed file (path to
// text, by the README's rules) and the board's elements (sorted by id). tests/tests/replay.rs
// and tests/tests/replay_project.rs check it against the live document and the archive.
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

// A file's path: relative, [A-Za-z0-9_./-], no empty, `.` or `..` segment, a known extension.
const EXTENSIONS = ['py', 'txt', 'md', 'csv', 'json', 'toml', 'ini', 'cfg', 'sql']
const isPath = (p) => {
  if (!/^[A-Za-z0-9_./-]{1,128}$/.test(p) || p.startsWith('/')) return false
  if (p.split('/').some((s) => s === '' || s === '.' || s === '..')) return false
  const name = p.slice(p.lastIndexOf('/') + 1)
  const dot = name.lastIndexOf('.')
  return dot > 0 && EXTENSIONS.includes(name.slice(dot + 1))
}

// The root texts the document has (every root a Yjs update named is in doc.share).
const texts = new Set([...doc.share.keys()].filter(isPath))
texts.add('main.py')
const listed = new Map()
const entries = doc.getMap('files')
for (const root of texts) if (!entries.has(root)) listed.set(root, root)
for (const [path, entry] of entries.entries()) {
  if (entry && typeof entry.text === 'string' && texts.has(entry.text)) listed.set(path, entry.text)
}
const files = {}
for (const path of [...listed.keys()].sort()) files[path] = doc.getText(listed.get(path)).toString()

const board = [...doc.getMap('board').entries()]
  .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  .map(([, json]) => JSON.parse(json))

process.stdout.write(JSON.stringify({ files, board }))
