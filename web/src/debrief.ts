// The debrief: a candidate's interviews side by side (admin, by candidate_ref), or the other
// scorecards of an interviewer's candidate, shown only once the viewer's own scorecard is
// submitted (the server enforces it; this page shows its answer). Issue 10's API; on a server
// without it the page says so.
import { api, ApiError, explain, takeToken, type Debrief } from './api'
import { h, page, replace } from './dom'
import { AREAS } from './scorecard'

export async function openDebrief(kind: 'candidate' | 'interview', key: string): Promise<void> {
  const main = page('Debrief', h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Debrief')))
  const host = h('section', { class: 'panel', 'aria-labelledby': 'db-h' }, h('h2', { id: 'db-h' }, 'Scorecards side by side'), h('p', {}, 'Loading…'))
  main.append(host)
  const token = kind === 'candidate' ? sessionStorage.getItem('duet.admin') : takeToken(`interview.${key}`)
  if (!token) {
    replace(host, h('h2', { id: 'db-h' }, 'Debrief'), h('p', { role: 'alert' }, kind === 'candidate'
      ? 'Enter the admin token on the admin page first.' : 'This link has no access token.'))
    return
  }
  const path = kind === 'candidate' ? `/api/candidates/${encodeURIComponent(key)}/debrief` : `/api/interviews/${encodeURIComponent(key)}/debrief`
  try {
    const data = await api<Debrief>(token, 'GET', path)
    const cards = data.interviews ?? []
    if (cards.length === 0) { replace(host, h('h2', { id: 'db-h' }, 'Debrief'), h('p', {}, 'No scorecards yet.')); return }
    replace(host, h('h2', { id: 'db-h' }, `Debrief${kind === 'candidate' ? `: ${key}` : ''}`),
      h('div', { class: 'table-wrap' }, h('table', { class: 'list' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Area'), cards.map((c) => h('th', { scope: 'col' }, c.title || c.interview_id)))),
        h('tbody', {},
          AREAS.map(([area, name]) => h('tr', {}, h('th', { scope: 'row' }, name), cards.map((c) => h('td', {}, c.scorecard ? String(c.scorecard.ratings?.[area] ?? '—') : 'not submitted')))),
          h('tr', {}, h('th', { scope: 'row' }, 'Level'), cards.map((c) => h('td', {}, c.scorecard?.level ?? '—'))),
          h('tr', {}, h('th', { scope: 'row' }, 'Recommendation'), cards.map((c) => h('td', {}, c.scorecard?.recommendation?.replace('_', ' ') ?? '—')))))))
  } catch (err) {
    replace(host, h('h2', { id: 'db-h' }, 'Debrief'), h('p', { role: 'status', 'data-testid': 'debrief-refusal' }, refusal(err)))
  }
}

/** Why the debrief is not shown, as a sentence that says what unlocks it. */
function refusal(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 403 && /scorecard/.test(err.message)) {
      return 'The debrief opens once this interview\'s scorecard is submitted, so that nobody reads '
        + 'colleagues\' scores before forming their own. The interviewer submits it in the room\'s Scorecard tab.'
    }
    if (err.status === 404 && !err.missing) return 'This interview has no candidate reference, so there is no loop of interviews to debrief.'
    if (err.status === 401) return 'This link\'s access token is no longer valid. Ask the admin for a new link.'
  }
  return `The debrief cannot be shown: ${explain(err)}.`
}
