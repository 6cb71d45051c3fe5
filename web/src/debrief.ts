// The debrief: a candidate's interviews side by side (admin, by candidate_ref), or the other
// scorecards of an interviewer's candidate, shown only once the viewer's own scorecard is
// submitted (the server enforces it; this page shows its answer). Issue 10's API; on a server
// without it the page says so.
import { api, explain, takeToken, type Debrief } from './api'
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
    replace(host, h('h2', { id: 'db-h' }, 'Debrief'), h('p', { role: 'status' }, `The debrief is ${explain(err)}.`))
  }
}
