// The page's file operations (src/files.ts) on real Yjs documents: two peers exchange updates as
// the server relays them, and each story checks what both list, and that what the server would
// refuse is refused here first, in the server's words.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import {
  FILES, MAIN_FILE, MAX_FILES, NEW_FILE_TEXT, checkPath, createFile, deleteFile, fileTree, listFiles, renameFile,
} from '../src/files'

/** Two documents kept in sync, as two pages behind the server. */
function pair(): [Y.Doc, Y.Doc] {
  const a = new Y.Doc()
  const b = new Y.Doc()
  a.on('update', (u: Uint8Array, origin: unknown) => { if (origin !== 'peer') Y.applyUpdate(b, u, 'peer') })
  b.on('update', (u: Uint8Array, origin: unknown) => { if (origin !== 'peer') Y.applyUpdate(a, u, 'peer') })
  return [a, b]
}

/** What a page lists: path -> text. */
function project(doc: Y.Doc): Record<string, string> {
  return Object.fromEntries([...listFiles(doc)].map(([path, root]) => [path, doc.getText(root).toString()]))
}

test('a new document lists main.py alone, even before anything is typed', () => {
  assert.deepEqual(project(new Y.Doc()), { 'main.py': '' })
})

test('the candidate creates shop/cart.py; the interviewer lists it with what was typed into it', () => {
  const [cand, intv] = pair()
  assert.equal(createFile(cand, 'shop/cart.py'), null)
  cand.getText('shop/cart.py').insert(0, 'def total(items):\n    return sum(items)')
  assert.deepEqual(project(intv), { 'main.py': '', 'shop/cart.py': 'def total(items):\n    return sum(items)' + NEW_FILE_TEXT })
})

test('a rename keeps the text and the other person\'s typing into it; the old path is gone for both', () => {
  const [cand, intv] = pair()
  createFile(cand, 'shop/cart.py')
  intv.getText('shop/cart.py').insert(0, 'x = 1')
  assert.equal(renameFile(cand, 'shop/cart.py', 'shop/basket.py'), null)
  assert.deepEqual(Object.keys(project(intv)), ['main.py', 'shop/basket.py'])
  assert.equal(project(intv)['shop/basket.py'], 'x = 1' + NEW_FILE_TEXT)
  // The same root text is shown under the new path: no copy was made.
  assert.equal(listFiles(intv).get('shop/basket.py'), 'shop/cart.py')
  // Renamed again, back to where it started.
  assert.equal(renameFile(intv, 'shop/basket.py', 'shop/cart.py'), null)
  assert.deepEqual(project(cand), { 'main.py': '', 'shop/cart.py': 'x = 1' + NEW_FILE_TEXT })
})

test('a delete hides the file for both; creating the path again starts it empty', () => {
  const [cand, intv] = pair()
  createFile(cand, 'notes.md')
  cand.getText('notes.md').insert(0, 'old notes')
  assert.equal(deleteFile(intv, 'notes.md'), null)
  assert.deepEqual(Object.keys(project(cand)), ['main.py'])
  assert.equal(createFile(cand, 'notes.md'), null)
  assert.deepEqual(project(intv), { 'main.py': '', 'notes.md': NEW_FILE_TEXT })
})

test('creating a path whose text another file shows now (it was renamed away) gives it a text of its own', () => {
  const [cand, intv] = pair()
  createFile(cand, 'a.py')
  cand.getText('a.py').insert(0, 'A')
  renameFile(cand, 'a.py', 'b.py')
  assert.equal(createFile(intv, 'a.py'), null)
  const listed = project(cand)
  assert.deepEqual(listed, { 'a.py': NEW_FILE_TEXT, 'b.py': 'A' + NEW_FILE_TEXT, 'main.py': '' })
  // Two paths never show one text (the server refuses that).
  const roots = [...listFiles(cand).values()]
  assert.equal(new Set(roots).size, roots.length)
})

test('the page refuses, in the server\'s words, names outside the rules and what the server refuses', () => {
  const [cand] = pair()
  createFile(cand, 'shop/cart.py')
  const cases: [string, () => string | null, RegExp][] = [
    ['a path climbing out', () => createFile(cand, '../x.py'), /must not contain \.\./],
    ['an absolute path', () => createFile(cand, '/abs.py'), /relative/],
    ['a shell script', () => createFile(cand, 'run.sh'), /must end in one of \.py \.txt/],
    ['a space', () => createFile(cand, 'my file.py'), /" " is not allowed/],
    ['an empty segment', () => createFile(cand, 'shop//x.py'), /empty or \. segment/],
    ['a file that exists', () => createFile(cand, 'shop/cart.py'), /already exists/],
    ['a path that is a folder', () => createFile(cand, 'shop'), /must end in/],
    ['a rename onto an existing file', () => renameFile(cand, 'shop/cart.py', MAIN_FILE), /"main.py" already exists: a file cannot be renamed or moved onto it/],
    ['a rename of main.py', () => renameFile(cand, MAIN_FILE, 'app.py'), /every run starts/],
    ['a delete of main.py', () => deleteFile(cand, MAIN_FILE), /every run starts/],
    ['a rename to a bad name', () => renameFile(cand, 'shop/cart.py', '../cart.py'), /must not contain \.\./],
  ]
  for (const [what, act, said] of cases) {
    const before = Y.encodeStateAsUpdate(cand)
    const refused = act()
    assert.match(refused ?? 'accepted', said, what)
    assert.deepEqual(Y.encodeStateAsUpdate(cand), before, `${what}: nothing changed`)
  }
})

test('a file cannot sit where a file is already, nor a 65th file be created', () => {
  const doc = new Y.Doc()
  createFile(doc, 'shop.py')
  assert.match(createFile(doc, 'shop.py/x.py') ?? '', /"shop.py" is a file/)
  for (let i = listFiles(doc).size; i < MAX_FILES; i++) assert.equal(createFile(doc, `f${i}.txt`), null)
  assert.equal(listFiles(doc).size, MAX_FILES)
  assert.match(createFile(doc, 'one-more.py') ?? '', /at most 64 files/)
})

test('a root this page only looked up, never wrote, lists nothing; an entry of another shape is ignored', () => {
  const doc = new Y.Doc()
  doc.getText('ghost.py')
  doc.getMap(FILES).set('odd.py', { gone: 1 })
  assert.deepEqual(Object.keys(project(doc)), ['main.py'])
})

test('the path rules match the server\'s (crates/core/src/files.rs)', () => {
  for (const ok of ['main.py', 'shop/cart.py', 'tests/test_cart.py', 'data/orders.csv', 'a-b_c.d.json', 'conf/app.toml', 'q.sql']) {
    assert.equal(checkPath(ok), null, ok)
  }
  for (const [bad, why] of [
    ['', '1 to 128'], ['/etc/passwd.txt', 'relative'], ['../up.py', '..'], ['a/../b.py', '..'], ['a//b.py', 'empty'],
    ['./a.py', 'empty or .'], ['a b.py', 'not allowed'], ['é.py', 'not allowed'], ['run.sh', 'must end in'],
    ['board', 'must end in'], ['.py', 'must end in'], ['dir/', 'empty'], [`${'a'.repeat(128)}.py`, '1 to 128'],
  ]) {
    assert.ok(checkPath(bad)?.includes(why), `${bad}: ${checkPath(bad)}`)
  }
})

test('the tree shows folders as folders, folders first, each level by name', () => {
  assert.deepEqual(fileTree(['main.py', 'shop/cart.py', 'data/orders.csv', 'shop/tax/rates.py', 'README.md']), [
    { kind: 'folder', name: 'data', path: 'data', children: [{ kind: 'file', name: 'orders.csv', path: 'data/orders.csv' }] },
    {
      kind: 'folder', name: 'shop', path: 'shop', children: [
        { kind: 'folder', name: 'tax', path: 'shop/tax', children: [{ kind: 'file', name: 'rates.py', path: 'shop/tax/rates.py' }] },
        { kind: 'file', name: 'cart.py', path: 'shop/cart.py' },
      ],
    },
    { kind: 'file', name: 'README.md', path: 'README.md' },
    { kind: 'file', name: 'main.py', path: 'main.py' },
  ])
})
