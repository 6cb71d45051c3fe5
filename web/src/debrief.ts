// The debrief: a candidate's interviews side by side (admin, by candidate_ref), or the other
// scorecards of an interviewer's candidate, shown only once the viewer's own scorecard is
// submitted (the server enforces it; this page shows its answer). Each card's evidence (runs,
// moments of the code or the board) links into its interview's replay at that moment, named
// from the interview's timeline where this page may read it (by id and seq where not).
import { api, ApiError, explain, takeToken, type Area, type Debrief, type DebriefRow, type Scorecard, type Timeline, type TimelineEvent } from './api'
import type { Author, Evidence } from './gen'
import { h, page, replace, dateTime, clock } from './dom'
import { kindLabel, outcomeText } from './results'

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
    // The timelines of the interviews whose cards cite evidence, to name it (the key interview
    // with this page's token, the others with the session's cookie); one that cannot be read
    // leaves its evidence named by id and seq.
    const timelines = new Map<string, Timeline | null>()
    await Promise.all([...new Set(cards.filter((c) => Object.values(c.scorecard?.evidence ?? {}).some((ev) => ev && ev.length > 0))
      .map((c) => c.row.interview_id))].map(async (id) => {
      const viaToken = kind === 'interview' && id === key ? token : ''
      timelines.set(id, await api<Timeline>(viaToken, 'GET', `/api/interviews/${encodeURIComponent(id)}/timeline`).catch(() => null))
    }))
    const replayLink = (id: string, query: string) =>
      `/replay/${encodeURIComponent(id)}?${query}${kind === 'interview' && id === key && token ? `#token=${encodeURIComponent(token)}` : ''}`
    const evidence = (c: Column) => {
      const card = c.scorecard
      const cited = card ? rubric.filter(({ area }) => (card.evidence[area] ?? []).length > 0) : []
      if (!card || cited.length === 0) return h('td', { class: 'muted' }, '—')
      const timeline = timelines.get(c.row.interview_id) ?? null
      return h('td', {}, h('ul', { class: 'evidence', 'aria-label': `Evidence of ${c.author?.name ?? 'the card'}` }, cited.map(({ area, title }) =>
        h('li', {}, `${title}: `, (card.evidence[area] ?? []).flatMap((ref, i) => [
          i > 0 ? ' · ' : null,
          h('a', { href: replayLink(c.row.interview_id, typeof ref === 'number' ? `seq=${ref}` : `run=${encodeURIComponent(ref)}`), 'data-testid': 'debrief-evidence' },
            evidenceText(ref, timeline)),
        ])))))
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
          row('Evidence', evidence),
          row('Scored', (c) => h('td', {}, c.scorecard?.submitted_at
            ? `by ${c.author?.name ?? 'the interviewer'}, submitted ${dateTime(c.scorecard.submitted_at)}` : '—'))))))
  } catch (err) {
    replace(host, h('h2', { id: 'db-h' }, 'Debrief'), h('p', { role: 'status', 'data-testid': 'debrief-refusal' }, refusal(err)))
  }
}

/**
 * A piece of evidence in words: a run by its kind, time and outcome, a moment by what happened
 * then (the board, a file's code) and its time; by id or seq when the timeline is not at hand.
 */
function evidenceText(ref: Evidence, timeline: Timeline | null): string {
  const events = timeline?.events ?? []
  if (typeof ref === 'string') {
    const started = events.find((e): e is Extract<TimelineEvent, { type: 'run.started' }> => e.type === 'run.started' && e.run_id === ref)
    if (!started) return `run ${ref}`
    const finished = events.find((e): e is Extract<TimelineEvent, { type: 'run.finished' }> => e.type === 'run.finished' && e.run_id === ref)
    return `${kindLabel(started.kind).toLowerCase()} at ${clock(started.at)}${finished ? ` · ${outcomeText(finished)}` : ''}`
  }
  // The burst or event that holds the seq; inside a burst its time is between the burst's ends.
  const held = events.find((e) => (e.type === 'edit' || e.type === 'board') ? e.seq <= ref && ref <= e.last_seq : e.seq === ref)
  if (!held) return `the moment at seq ${ref}`
  if (held.type === 'edit' || held.type === 'board') {
    const at = held.last_seq > held.seq ? held.at + ((held.last_at - held.at) * (ref - held.seq)) / (held.last_seq - held.seq) : held.at
    return `${held.type === 'board' ? 'the board' : held.file ?? 'the code'} at ${clock(at)}`
  }
  return `the moment at ${clock(held.at)} (${held.type.replace('.', ' ')})`
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
