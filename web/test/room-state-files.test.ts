// The open files (src/room-state-files.ts): tabs that keep their file through a rename by
// anyone, the shown file deleted by the other person, where everyone's editor is, and whom the
// interviewer's follow mode opens.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { OpenFiles, followTo, whereEveryoneIs } from '../src/room-state-files'

const listing = (entries: Record<string, string>) => new Map(Object.entries(entries))
const tabs = (f: OpenFiles) => f.tabList().map((t) => (t.active ? `[${t.path}]` : t.path))

test('opening files adds tabs after the shown one and shows each; opening an open file only shows it', () => {
  const f = new OpenFiles(listing({ 'main.py': 'main.py', 'a.py': 'a.py', 'b.py': 'b.py' }), 'main.py')
  assert.deepEqual(tabs(f), ['[main.py]'])
  assert.deepEqual(f.open('b.py'), { path: 'b.py', root: 'b.py' })
  f.open('main.py')
  f.open('a.py')
  assert.deepEqual(tabs(f), ['main.py', '[a.py]', 'b.py'])
  assert.equal(f.open('gone.py'), null)
})

test('the other person renames the shown file: the tab and the editor keep it under its new name', () => {
  const f = new OpenFiles(listing({ 'main.py': 'main.py', 'shop/cart.py': 'shop/cart.py' }), 'main.py')
  f.open('shop/cart.py')
  const change = f.listingChanged(listing({ 'main.py': 'main.py', 'shop/basket.py': 'shop/cart.py' }))
  assert.deepEqual(change, { switchTo: null, renamed: true })
  assert.deepEqual(tabs(f), ['main.py', '[shop/basket.py]'])
  assert.deepEqual(f.active, { path: 'shop/basket.py', root: 'shop/cart.py' })
})

test('the other person deletes the shown file: its tab closes and the neighbour shows', () => {
  const f = new OpenFiles(listing({ 'main.py': 'main.py', 'a.py': 'a.py', 'b.py': 'b.py' }), 'main.py')
  f.open('a.py')
  f.open('b.py')
  const change = f.listingChanged(listing({ 'main.py': 'main.py', 'a.py': 'a.py' }))
  assert.deepEqual(change.switchTo, { path: 'a.py', root: 'a.py' })
  assert.deepEqual(tabs(f), ['main.py', '[a.py]'])
  // A file open in a tab but not shown goes quietly.
  assert.deepEqual(f.listingChanged(listing({ 'a.py': 'a.py', 'main.py': 'main.py', 'c.py': 'c.py' })), { switchTo: null, renamed: false })
  f.open('c.py')
  f.listingChanged(listing({ 'main.py': 'main.py', 'c.py': 'c.py' }))
  assert.deepEqual(tabs(f), ['main.py', '[c.py]'])
})

test('closing the shown tab shows its neighbour; the last tab stays', () => {
  const f = new OpenFiles(listing({ 'main.py': 'main.py', 'a.py': 'a.py' }), 'main.py')
  f.open('a.py')
  assert.deepEqual(f.close('a.py'), { path: 'main.py', root: 'main.py' })
  assert.equal(f.close('main.py'), null)
  assert.deepEqual(tabs(f), ['[main.py]'])
})

const stamped = (name: string, role: string, file?: unknown) => ({ user: { name, role, color: '#c30' }, ...(file === undefined ? {} : { file }) })

test('everyone else\'s editor is placed on the file their page announces; this page, unknown files and unnamed states are not', () => {
  const files = listing({ 'main.py': 'main.py', 'shop/cart.py': 'shop/cart.py' })
  const states = new Map<number, unknown>([
    [1, stamped('Me', 'interviewer', 'main.py')],
    [2, stamped('Ada', 'candidate', 'shop/cart.py')],
    [3, stamped('Ada', 'candidate', 'shop/cart.py')], // a second tab: one marker
    [4, stamped('Old page', 'candidate')], // announces no file
    [5, stamped('Gone', 'candidate', 'deleted.py')],
    [6, { file: 'main.py' }], // not stamped yet
    [7, stamped('Odd', 'candidate', 42)],
  ])
  const where = whereEveryoneIs(states, 1, files)
  assert.deepEqual([...where], [['shop/cart.py', [{ name: 'Ada', role: 'candidate', color: '#c30' }]]])
})

test('follow mode opens the candidate\'s file when it is not the one shown, and nothing otherwise', () => {
  const files = listing({ 'main.py': 'main.py', 'shop/cart.py': 'shop/cart.py' })
  const where = whereEveryoneIs(new Map<number, unknown>([[2, stamped('Ada', 'candidate', 'shop/cart.py')], [3, stamped('Rev', 'reviewer', 'main.py')]]), 1, files)
  assert.equal(followTo(where, 'main.py'), 'shop/cart.py')
  assert.equal(followTo(where, 'shop/cart.py'), null)
  assert.equal(followTo(whereEveryoneIs(new Map([[3, stamped('Rev', 'reviewer', 'main.py')]]), 1, files), 'shop/cart.py'), null)
})
