// Who is in the room, from the awareness states the server relays: one entry per person (a
// person with two tabs open is one entry), this page's own person first and marked as such
// whether or not its state has come back yet. Pure: presence.ts renders the list.
import type { Role } from './api'

export interface Person { name: string; role: string; color: string; me: boolean }

/** This page's client and who it is. */
export interface Self { clientId: number; role: Role; name: string }

/**
 * The people in `states` (awareness: client id to state), keyed by role and name. The server
 * stamps `user` on the states it relays; this page's own state carries none, so `self` is
 * listed from what the page knows.
 */
export function peopleOf(states: Iterable<[number, unknown]>, self: Self): Person[] {
  const seen = new Map<string, Person>()
  seen.set(`${self.role}:${self.name}`, { name: self.name, role: self.role, color: 'transparent', me: true })
  for (const [clientId, state] of states) {
    const user = (state as { user?: { name?: unknown; role?: unknown; color?: unknown } } | null)?.user
    if (typeof user?.name !== 'string' || !user.name) continue
    const role = typeof user.role === 'string' ? user.role : ''
    const key = `${role}:${user.name}`
    const prev = seen.get(key)
    seen.set(key, {
      name: user.name, role, color: typeof user.color === 'string' ? user.color : '#888',
      me: clientId === self.clientId || !!prev?.me,
    })
  }
  return [...seen.values()]
}
