// Who the header lists (src/room-state-presence.ts), from the awareness states the server relays.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { peopleOf } from '../src/room-state-presence'

const candidate = { clientId: 11, role: 'candidate' as const, name: 'Ada' }
const stamped = (name: string, role: string, color = '#0a0') => ({ user: { name, role, color } })

test('alone in the room: the page lists its own person, marked as this page, before its state comes back', () => {
  assert.deepEqual(peopleOf(new Map([[11, {}]]), candidate), [{ name: 'Ada', role: 'candidate', color: 'transparent', me: true }])
})

test('the interviewer joins: both are listed, this page first, the other with the colour the server gave', () => {
  const states = new Map<number, unknown>([[11, {}], [22, stamped('Interviewer', 'interviewer', '#c30')]])
  assert.deepEqual(peopleOf(states, candidate), [
    { name: 'Ada', role: 'candidate', color: 'transparent', me: true },
    { name: 'Interviewer', role: 'interviewer', color: '#c30', me: false },
  ])
})

test('the candidate in two tabs is one person, still this page\'s, with the colour the server stamped', () => {
  const states = new Map<number, unknown>([[11, stamped('Ada', 'candidate', '#00f')], [12, stamped('Ada', 'candidate', '#00f')]])
  assert.deepEqual(peopleOf(states, candidate), [{ name: 'Ada', role: 'candidate', color: '#00f', me: true }])
})

test('a state without a name (not yet stamped) or with a name that is not text lists nobody', () => {
  const states = new Map<number, unknown>([[11, {}], [30, { cursor: {} }], [31, { user: { name: 42 } }], [32, null]])
  assert.equal(peopleOf(states, candidate).length, 1)
})

test('the same name in two roles is two people', () => {
  const states = new Map<number, unknown>([[22, stamped('Ada', 'interviewer')]])
  assert.equal(peopleOf(states, candidate).length, 2)
})
