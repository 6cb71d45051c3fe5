// The reviewer's replay: every file at any moment (a tab per file that existed then) and the
// board beside it, a scrubber with edits, board strokes, file changes, runs, notes, question
// switches and signals as marks, play and pause at 1x, 4x and 16x with idle gaps skipped, each
// run's output played at its moment, and the submitted scorecard beside it with its evidence
// linked to those moments (a moment of the board as much as one of the code). A link may open
// it at a moment (`?seq=57`) or at a run's finish (`?run=<id>`), as the debrief's evidence does.
// Built on issue 11's timeline, snapshot and cast endpoints; on a server without them the page
// says so.
import { api, explain, unreachable, type Interview, type Snapshot, type Timeline, type TimelineEvent } from './api'
import { h, page, replace, announce, clock } from './dom'
import { createViewer, setViewerText } from './editor'
import { createConsole } from './console'
import { loadScorecard } from './scorecard'
import { kindLabel, outcomeText } from './results'
import { createBoardView } from './replay-board'

/** A place the scrubber can stop: a seq and its time. */
interface Moment { seq: number; at: number }

const IDLE_CAP_MS = 1000 // an idle gap longer than this plays as this long

export async function openReplay(id: string, token: string): Promise<void> {
  const base = `/api/interviews/${encodeURIComponent(id)}`
  let interview: Interview | null = null
  try { interview = await api<Interview>(token, 'GET', base) } catch (err) {
    page('Replay', h('section', { class: 'panel narrow' }, h('h1', {}, 'Cannot open this replay'), h('p', { role: 'alert' }, explain(err))))
    return
  }
  const main = page(`Replay: ${interview.title}`,
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'),
      h('h1', {}, `Replay: ${interview.title}`, h('span', { class: 'muted' }, ` · ${interview.candidate_name}`)),
      h('span', { class: 'badge role-reviewer' }, interview.role === 'interviewer' ? 'Interviewer' : 'Reviewer')))
  let timeline: Timeline
  try {
    timeline = await api<Timeline>(token, 'GET', `${base}/timeline`)
  } catch (err) {
    main.append(h('section', { class: 'panel narrow' }, h('h2', {}, 'Replay'), h('p', { role: 'status' }, `The timeline is ${explain(err)}.`)))
    ;(window as unknown as { duetReady?: boolean }).duetReady = true
    return
  }

  const moments: Moment[] = []
  for (const e of timeline.events) {
    moments.push({ seq: e.seq, at: e.at })
    if ((e.type === 'edit' || e.type === 'board') && e.last_seq > e.seq) {
      const n = e.last_seq - e.seq
      const step = Math.max(1, Math.ceil(n / 40))
      for (let s = e.seq + step; s < e.last_seq; s += step) {
        moments.push({ seq: s, at: e.at + ((e.last_at - e.at) * (s - e.seq)) / n })
      }
      moments.push({ seq: e.last_seq, at: e.last_at })
    }
  }
  moments.sort((a, b) => a.seq - b.seq)
  if (moments.length === 0) moments.push({ seq: 0, at: timeline.started_at })
  type Started = Extract<TimelineEvent, { type: 'run.started' }>
  type Finished = Extract<TimelineEvent, { type: 'run.finished' }>
  const runsStarted = timeline.events.filter((e): e is Started => e.type === 'run.started')
  const runsFinished = new Map(timeline.events.filter((e): e is Finished => e.type === 'run.finished').map((e) => [e.run_id, e]))

  // --- layout
  const scrub = h('input', { type: 'range', id: 'scrub', min: '0', max: String(moments.length - 1), value: String(moments.length - 1), step: '1' })
  const when = h('output', { for: 'scrub', class: 'when', 'data-testid': 'when' })
  const playBtn = h('button', { type: 'button', class: 'primary' }, 'Play')
  const speed = h('select', { id: 'speed', 'aria-label': 'Playback speed' }, ['1', '4', '16'].map((s) => h('option', { value: s }, `${s}×`)))
  const marks = h('ol', { class: 'marks', 'aria-label': 'Timeline events' })
  const codeHost = h('div', { class: 'editor replay-code', 'data-testid': 'replay-code' })
  const tabs = h('div', { class: 'file-tabs', role: 'group', 'aria-label': 'Files at this moment', 'data-testid': 'replay-files' })
  const board = createBoardView()
  // The board shows beside the code once the interview has one (a board burst on the timeline,
  // or elements in a snapshot); an interview that never drew keeps the code full width.
  const views = h('div', { class: 'replay-views' }, h('div', { class: 'replay-files' }, tabs, codeHost), board.element)
  let withBoard = false
  const boardShown = (yes: boolean) => {
    withBoard ||= yes
    board.element.hidden = !withBoard
    views.classList.toggle('with-board', withBoard)
  }
  boardShown(timeline.events.some((e) => e.type === 'board'))
  const consoleView = createConsole(null)
  const runTitle = h('p', { class: 'small muted', role: 'status' }, 'No run yet at this moment.')
  const side = h('aside', { class: 'side', 'aria-label': 'Scorecard and events' })
  main.append(h('div', { class: 'room replay' }, side,
    h('section', { class: 'work', 'aria-label': 'Replay' },
      h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Playback' },
        playBtn, h('label', { for: 'speed', class: 'sr-only' }, 'Speed'), speed,
        h('label', { for: 'scrub', class: 'sr-only' }, 'Moment in the interview'), scrub, when),
      views,
      h('div', { class: 'bottom' },
        h('section', { class: 'panel', 'aria-labelledby': 'rc-h' }, h('h2', { id: 'rc-h' }, 'Run output at this moment'), runTitle, consoleView.element),
        h('section', { class: 'panel', 'aria-labelledby': 'marks-h' }, h('h2', { id: 'marks-h' }, 'Events'), marks)))))
  const viewer = createViewer(codeHost, '', 'The chosen file at the chosen moment')

  // --- marks
  const describe = (e: TimelineEvent): string => {
    switch (e.type) {
      case 'edit': return `${e.by} edited ${e.file ?? 'the code'} (${e.edits})`
      case 'board': return `${e.by} drew on the board (${e.elements} shape${e.elements === 1 ? '' : 's'}, ${e.edits} edit${e.edits === 1 ? '' : 's'})`
      case 'file.created': return `${e.by} created ${e.path}`
      case 'file.renamed': return `${e.by} renamed ${e.from} to ${e.to}`
      case 'file.deleted': return `${e.by} deleted ${e.path}`
      case 'join': return `${e.by} joined`
      case 'leave': return `${e.by} left`
      case 'run.started': return `${e.by} started ${e.kind === 'test' ? 'tests' : e.kind === 'lint' ? 'a style check' : 'a run'}${e.private ? ' (private)' : ''}`
      case 'run.finished': return `${e.kind === 'run' ? 'run' : kindLabel(e.kind).toLowerCase()} finished: ${outcomeText(e)}`
      case 'question': return `question switched to “${e.title ?? e.question_id}”`
      case 'note': return `note: ${e.text} (${e.name ?? 'the interviewer'})`
      case 'signal': return e.kind === 'paste' ? `signal: a paste of ${e.size ?? '?'} characters` : 'signal: the candidate left the tab'
      case 'scorecard': return `scorecard ${e.action} by ${e.name ?? 'the interviewer'}`
      case 'end': return `${e.by} ended the interview`
      case 'take_home.started': return `${e.by} started the take-home (${e.time_limit_minutes} minutes, until ${clock(e.deadline)})`
      case 'take_home.submitted': return e.reason === 'time_limit' ? 'take-home submitted at the time limit' : `${e.by} submitted the take-home`
      default: unreachable(e); return 'event'
    }
  }
  /** The first moment at or after `seq` (the last one past the end). */
  const momentAt = (seq: number) => {
    const idx = moments.findIndex((m) => m.seq >= seq)
    return idx < 0 ? moments.length - 1 : idx
  }
  const jumpTo = (seq: number) => {
    const idx = momentAt(seq)
    scrub.value = String(idx)
    void show(idx)
  }
  /** Where a run is best seen: its finish, where its whole output shows (its start while it runs). */
  const runSeq = (runId: string): number | undefined => {
    const started = runsStarted.find((r) => r.run_id === runId)
    return started ? (runsFinished.get(started.run_id) ?? started).seq : undefined
  }
  const markItems = timeline.events.map((e) =>
    h('li', { class: `mark mark-${e.type.replace('.', '-')}`, 'data-seq': String(e.seq) },
      // A board burst opens at its end, where its strokes are finished.
      h('button', { type: 'button', class: 'link-button', onclick: () => jumpTo(e.type === 'board' ? e.last_seq : e.seq) }, h('time', {}, clock(e.at)), ' ', describe(e))))
  replace(marks, markItems)
  // The scrubber marks every run, note, signal, question switch and the end (tick marks).
  const ticks = h('datalist', { id: 'scrub-marks' }, timeline.events
    .filter((e) => e.type !== 'edit' && e.type !== 'board' && e.type !== 'join' && e.type !== 'leave')
    .map((e) => {
      const idx = moments.findIndex((m) => m.seq >= e.seq)
      return h('option', { value: String(idx < 0 ? moments.length - 1 : idx), label: describe(e) })
    }))
  scrub.setAttribute('list', 'scrub-marks')
  scrub.after(ticks)
  /** The event list follows the playhead: the last event at or before the moment is current. */
  const follow = (seq: number) => {
    let current: HTMLElement | null = null
    for (const li of markItems) {
      if (Number(li.dataset.seq) <= seq) current = li
      li.removeAttribute('aria-current')
    }
    if (!current) return
    current.setAttribute('aria-current', 'true')
    const top = current.offsetTop // .marks is positioned (style.css)
    if (top < marks.scrollTop || top + current.offsetHeight > marks.scrollTop + marks.clientHeight) {
      marks.scrollTop = Math.max(0, top - marks.clientHeight / 2)
    }
  }

  // --- the files of a moment: a tab each; the one shown is the reviewer's pick while it exists,
  // else the file last edited at or before the moment, else main.py
  type Edit = Extract<TimelineEvent, { type: 'edit' }>
  const edits = timeline.events.filter((e): e is Edit => e.type === 'edit')
  let picked: string | null = null
  let files: Record<string, string> = {}
  let currentFile = 'main.py'
  const showFiles = (seq: number) => {
    const paths = Object.keys(files).sort()
    if (picked !== null && !(picked in files)) picked = null
    const last = [...edits].reverse().find((e) => e.seq <= seq && e.file !== undefined && e.file in files)
    currentFile = picked ?? last?.file ?? ('main.py' in files ? 'main.py' : paths[0] ?? 'main.py')
    replace(tabs, paths.map((path) => h('span', { class: 'file-tab-wrap' },
      h('button', {
        type: 'button', class: 'file-tab', 'data-path': path, 'aria-current': path === currentFile ? 'true' : 'false',
        onclick: () => { picked = path; showFiles(seq) },
      }, path))))
    setViewerText(viewer, files[currentFile] ?? '')
  }

  // --- showing a moment
  let shown = -1
  let pending: number | null = null
  const castCache = new Map<string, Promise<[number, string, string][]>>()
  const cast = (runId: string) => {
    let p = castCache.get(runId)
    if (!p) {
      p = fetch(`${base}/runs/${encodeURIComponent(runId)}/cast`, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' })
        .then(async (r) => {
          if (!r.ok) throw new Error(r.status === 404 ? 'no such run' : `HTTP ${r.status}`)
          const lines = (await r.text()).split('\n').filter(Boolean).slice(1)
          return lines.map((l) => JSON.parse(l) as [number, string, string])
        })
      castCache.set(runId, p)
    }
    return p
  }
  const show = async (idx: number) => {
    if (pending !== null) { pending = idx; return }
    pending = idx
    while (pending !== null) {
      const i: number = pending
      const m = moments[i]
      try {
        const snap = await api<Snapshot>(token, 'GET', `${base}/snapshot?seq=${m.seq}`)
        files = snap.files
        showFiles(m.seq)
        board.show(snap.board ?? [])
        boardShown((snap.board ?? []).length > 0)
        when.textContent = `${clock(snap.at)} · seq ${snap.seq}`
      } catch (err) {
        when.textContent = `snapshot: ${explain(err)}`
      }
      follow(m.seq)
      await showRun(m)
      shown = i
      if (pending === i) pending = null
    }
  }
  const showRun = async (m: Moment) => {
    const run = [...runsStarted].reverse().find((r) => r.seq <= m.seq)
    consoleView.clear()
    if (!run) { runTitle.textContent = 'No run yet at this moment.'; return }
    const fin = runsFinished.get(run.run_id)
    const done = fin && fin.seq <= m.seq
    runTitle.textContent = `${kindLabel(run.kind)} by the ${run.by} at ${clock(run.at)}${done ? `: ${outcomeText(fin)}` : ': running'}`
    try {
      const frames = await cast(run.run_id)
      const upTo = done ? Infinity : (m.at - run.at) / 1000
      for (const [t, type, data] of frames) {
        if (t > upTo) break
        if (type !== 'o') continue
        // The cast marks stderr by wrapping each of its writes in ESC[31m … ESC[0m.
        for (const piece of data.split(/(\x1b\[31m[\s\S]*?\x1b\[0m)/)) {
          if (!piece) continue
          const err = piece.startsWith('\x1b[31m') && piece.endsWith('\x1b[0m')
          consoleView.write(err ? 'stderr' : 'stdout', err ? piece.slice(5, -4) : piece)
        }
      }
    } catch (err) {
      consoleView.write('info', `[output: ${explain(err)}]`)
    }
  }
  scrub.addEventListener('input', () => void show(Number(scrub.value)))

  // --- playing
  let timer: number | null = null
  const stop = () => { if (timer !== null) window.clearTimeout(timer); timer = null; playBtn.textContent = 'Play' }
  const step = () => {
    const i = Number(scrub.value)
    if (i >= moments.length - 1) { stop(); announce('End of the interview'); return }
    scrub.value = String(i + 1)
    void show(i + 1)
    const gap = Math.min(Math.max(moments[i + 1].at - moments[i].at, 0), IDLE_CAP_MS)
    const next = Math.min(moments[Math.min(i + 2, moments.length - 1)].at - moments[i + 1].at, IDLE_CAP_MS)
    timer = window.setTimeout(step, Math.max(16, (next || gap) / Number(speed.value)))
  }
  playBtn.addEventListener('click', () => {
    if (timer !== null) { stop(); return }
    picked = null // playing follows the edits from file to file
    if (Number(scrub.value) >= moments.length - 1) { scrub.value = '0'; void show(0) }
    playBtn.textContent = 'Pause'
    timer = window.setTimeout(step, 200)
  })

  // --- scorecard beside
  void loadScorecard(token, base).then(({ scorecard: card, rubric }) => {
    const ratings = rubric.map(({ area, title: name }) => {
      const ev = card.evidence[area] ?? []
      const rating = card.ratings[area] ?? null
      return h('li', {}, `${name}: `, h('strong', {}, rating !== null ? String(rating) : '—'),
        ev.length ? h('span', {}, ' · evidence: ', ev.map((ref) => {
          // A run jumps to its finish, where its whole output shows.
          const started = typeof ref === 'number' ? undefined : runsStarted.find((r) => r.run_id === ref)
          const fin = started ? runsFinished.get(started.run_id) : undefined
          const target = typeof ref === 'number' ? ref : runSeq(ref)
          const text = typeof ref === 'number' ? `moment at seq ${ref}`
            : started ? `${kindLabel(started.kind).toLowerCase()} ${clock(started.at)}${fin ? ` · ${outcomeText(fin)}` : ''}` : 'a run'
          return target !== undefined
            ? h('button', { type: 'button', class: 'link-button', 'data-testid': 'evidence-link', onclick: () => jumpTo(target) }, text)
            : h('span', {}, text)
        })) : null)
    })
    replace(side, h('section', { class: 'panel', 'aria-labelledby': 'sc-h' }, h('h2', { id: 'sc-h' }, 'Scorecard'),
      h('p', {}, card.submitted_at ? 'Submitted.' : 'Not submitted yet.'),
      h('ul', {}, ratings),
      h('p', {}, `Level: ${card.level ?? '—'} · Recommendation: ${card.recommendation?.replace('_', ' ') ?? '—'}`),
      card.notes ? h('p', { class: 'notes-text' }, card.notes) : null))
  }).catch((err) => replace(side, h('section', { class: 'panel' }, h('h2', {}, 'Scorecard'), h('p', { class: 'muted' }, `Scorecard: ${explain(err)}.`))))

  // The moment the link asks for, if any (an unknown run or a seq that is not one: the end).
  const asked = new URLSearchParams(location.search)
  const askedRun = asked.get('run')
  const askedSeq = Number(asked.get('seq'))
  const target = askedRun !== null ? runSeq(askedRun) : Number.isSafeInteger(askedSeq) && askedSeq > 0 ? askedSeq : undefined
  const first = target !== undefined ? momentAt(target) : moments.length - 1
  scrub.value = String(first)
  await show(first)
  void shown
  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}
