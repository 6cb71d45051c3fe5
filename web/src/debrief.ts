// The debrief: a candidate's interviews side by side (admin, by candidate_ref), or the other
// scorecards of an interviewer's candidate, shown only once the viewer's own scorecard is
// submitted (the server enforces it; this page shows its answer).
import { api, ApiError, explain, takeToken, type Area, type Debrief, type DebriefRow, type Scorecard } from './api'
import type { Author } from './gen'
import { h, page, replace, dateTime } from './dom'

/** The debrief as served, with each interview's submitted cards and who scored them. */
type Row = DebriefRow & { cards: { author: Author; scorecard: Scorecard }[] }
/** One column of the table: a submitted card and its author, or an interview with none yet. */
interface Column { row: Row; author: Author | null; scorecard: Scorecard | null }

export async function openDebrief(kind: 'candidate' | 'interview', key: string): Promise<void> {
  const main = page('Debrief', h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'), h('h1', {}, 'Debrief')))
  const host = h('section', { class: 'panel', 'aria-labelledby': 'db-h' }, h('h2', { id: 'db-h' }, 'Scorecards side by side'), h('p', {}, 'Loading…'))
  main.append(host)
  // No token: a signed-in staff member's session cookie ('' sends it).
  const token = (kind === 'candidate' ? sessionStorage.getItem('duet.admin') : takeToken(`interview.${key}`)) ?? ''
  const path = kind === 'candidate' ? `/api/candidates/${encodeURIComponent(key)}/debrief` : `/api/interviews/${encodeURIComponent(key)}/debrief`
  try {
    const data = await api<Omit<Debrief, 'interviews'> & { interviews: Row[] }>(token, 'GET', path)
    // One column per submitted card, named by who scored it; an interview with none keeps one.
    const cards: Column[] = data.interviews.flatMap((row): Column[] => row.cards.length === 0
      ? [{ row, author: null, scorecard: null }]
      : row.cards.map((c) => ({ row, author: c.author, scorecard: c.scorecard })))
    if (cards.length === 0) { replace(host, h('h2', { id: 'db-h' }, 'Debrief'), h('p', {}, 'No scorecards yet.')); return }
    // The rubric served with the debrief: its areas, titles, and what each rating means.
    const rubric = data.rubric
    const rating = (c: Column, area: Area) => {
      if (!c.scorecard) return h('td', { class: 'muted' }, 'not submitted')
      const n = c.scorecard.ratings[area] ?? null
      if (n === null) return h('td', {}, '—')
      const anchor = rubric.find((r) => r.area === area)?.levels[n - 1]
      return h('td', {}, h('strong', {}, String(n)), anchor ? h('div', { class: 'small muted anchor' }, anchor) : null)
    }
    const heading = (c: Column) => h('th', { scope: 'col' }, c.row.title || c.row.interview_id,
      h('div', { 'data-testid': 'debrief-scorer' }, c.author ? c.author.name : 'no card submitted'),
      h('div', { class: 'small muted' }, c.row.status),
      kind === 'interview' && c.row.interview_id === key
        ? h('a', { class: 'small', href: `/replay/${encodeURIComponent(key)}${token ? `#token=${encodeURIComponent(token)}` : ''}` }, 'Open its replay')
        : null)
    const row = (name: string, cell: (c: Column) => HTMLElement) =>
      h('tr', {}, h('th', { scope: 'row' }, name), cards.map(cell))
    replace(host, h('h2', { id: 'db-h' }, `Debrief${kind === 'candidate' ? `: ${key}` : ''}`),
      h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': 'Scorecards side by side' }, h('table', { class: 'list debrief' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Area'), cards.map(heading))),
        h('tbody', {},
          rubric.map(({ area, title }) => row(title, (c) => rating(c, area))),
          row('Level', (c) => h('td', {}, c.scorecard?.level ?? '—')),
          row('Recommendation', (c) => h('td', {}, c.scorecard?.recommendation?.replace('_', ' ') ?? '—')),
          row('Notes', (c) => h('td', { class: 'notes-text' }, c.scorecard?.notes || '—')),
          row('Scored', (c) => h('td', {}, c.scorecard?.submitted_at
            ? `by ${c.author?.name ?? 'the interviewer'}, submitted ${dateTime(c.scorecard.submitted_at)}` : '—'))))))
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
    if (err.status === 404) return 'This interview has no candidate reference, so there is no loop of interviews to debrief.'
    if (err.status === 401) return 'This link\'s access token is no longer valid, or you are not signed in. Sign in, or ask the admin for a new link.'
  }
  return `The debrief cannot be shown: ${explain(err)}.`
}
