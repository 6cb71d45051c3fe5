// The interview room, for the candidate and the interviewer: the shared editor, Run / Run tests
// / Stop (Ctrl/Cmd+Enter runs), the live console with an input line, test results, who is
// connected and the saved indicator. The interviewer's panel is a separate chunk
// (interviewer.ts) loaded only for the interviewer's token: the candidate's page never loads
// its code, and so never calls its endpoints.
//
// The room has two states everyone sees: live, and ended (the `end` event, `status: "ended"` on
// load, or the server closing the editor socket with 1008 "the interview has ended"). Ended
// means read-only editors, no runs, a banner, and an indicator that never says "Saved" again.
//
// A reload restores the run context from the run history: the last run's output and results,
// and a run still going on with its Stop button and input line working.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { Awareness } from 'y-protocols/awareness'
import {
  api, explain, wsBase, unreachable,
  type Interview, type LintFinding, type RoomEvent, type RunDetail, type RunKind, type RunPage, type RunSummary,
  type Role, type RunStdin, type StartRun,
} from './api'
import { h, page, replace, announce, clock } from './dom'
import { createEditor } from './editor'
import { createConsole } from './console'
import { connectEvents } from './events'
import { SaveTracker, type SaveState } from './saved'
import { renderMarkdown } from './markdown'
import { kindLabel, outcomeText, renderTests } from './results'
import { watchPresence } from './presence'
import { OutputText } from './output'

/** What the interviewer's panel gets from the room. */
export interface RoomContext {
  interview: Interview
  token: string
  side: HTMLElement
  startRun(kind: RunKind): Promise<void>
  onEvent(listener: (e: RoomEvent) => void): void
  /** Lint findings, live and (after a reload) the last style check's. */
  onLint(listener: (findings: LintFinding[]) => void): void
  /** Called once when the interview ends (live or already on load). */
  onEnded(listener: () => void): void
  setQuestion(interview: Interview): void
}

/**
 * The close code the server uses for what will not change by reconnecting: an edit after the
 * end ("the interview has ended") or a link that was replaced by a new one.
 */
const POLICY_CLOSE = 1008

/** A run as this page knows it: numbered in the order this page saw them start. */
interface RunInfo { id: string; n: number; kind: RunKind; by: Role; at: number }

export async function openRoom(id: string, token: string, interview: Interview): Promise<void> {
  const role = interview.role
  const base = `/api/interviews/${encodeURIComponent(id)}`
  const doc = new Y.Doc()
  // Presence within a second: y-protocols ignores a state from an unknown client unless its
  // clock is above 0, and a fresh Awareness starts at clock 0, so without this the first state
  // this page sends is dropped by every peer until the 15 s renewal. Setting the (empty) state
  // once more before connecting makes the first one anyone receives clock 1.
  const awareness = new Awareness(doc)
  awareness.setLocalState({})
  const provider = new WebsocketProvider(`${wsBase()}/yjs`, id, doc, {
    params: { token },
    awareness,
    disableBc: true, // two tabs must each reach the server: the saved indicator counts on it
    // 1008 is final: the interview ended, or this page's link was replaced. Not reopened.
    shouldReconnect: (event: CloseEvent) => event.code !== POLICY_CLOSE && !(event.code >= 4400 && event.code < 4500),
  })
  const ytext = doc.getText('main.py')
  const saves = new SaveTracker(doc, provider)
  const listeners: ((e: RoomEvent) => void)[] = []
  const lintListeners: ((findings: LintFinding[]) => void)[] = []
  const endListeners: (() => void)[] = []
  let ended = false

  // --- header: title, role, people, saved state
  const savedEl = h('div', { class: 'saved', role: 'status', 'data-testid': 'saved' }, 'Connecting…')
  const peopleEl = h('ul', { class: 'people', 'aria-label': 'Connected people', 'data-testid': 'people' })
  const closeNote = h('p', { class: 'banner warn', hidden: true, role: 'alert' })
  const endedBanner = h('div', { class: 'banner ended', hidden: true, role: 'status', 'data-testid': 'ended' })
  const header = h('header', { class: 'topbar' },
    h('span', { class: 'brand' }, 'Duet'),
    h('h1', {}, interview.title, h('span', { class: 'muted' }, ` · ${interview.candidate_name}`)),
    h('span', { class: `badge role-${role}` }, role === 'candidate' ? 'Candidate' : 'Interviewer'),
    peopleEl,
    savedEl,
  )

  // --- toolbar
  let activeRun: RunInfo | null = null
  const runs = new Map<string, RunInfo>()
  const output = new OutputText()
  let runCount = 0
  const runBtn = h('button', { type: 'button', class: 'primary', 'aria-keyshortcuts': 'Control+Enter Meta+Enter' }, 'Run')
  const testBtn = h('button', { type: 'button' }, 'Run tests')
  const stopBtn = h('button', { type: 'button', disabled: true }, 'Stop')
  const runNote = h('span', { class: 'run-note', role: 'status', 'data-testid': 'run-note' })
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Run controls' },
    runBtn, testBtn, stopBtn,
    h('span', { class: 'muted small' }, 'Ctrl/⌘+Enter runs · Esc then Tab leaves the editor'),
    runNote)

  const consoleView = createConsole(async (data, eof) => {
    if (!activeRun) return
    try {
      const body: RunStdin = eof ? { data, eof: true } : { data }
      await api(token, 'POST', `${base}/runs/${encodeURIComponent(activeRun.id)}/stdin`, body)
    } catch (err) {
      consoleView.write('info', `[input not delivered: ${explain(err)}]\n`)
    }
  })
  const testsEl = h('div', { class: 'tests', 'data-testid': 'tests' }, h('p', { class: 'muted' }, 'No test run yet.'))

  const editorHost = h('div', { class: 'editor', 'data-testid': 'editor' })
  const side = h('aside', { class: 'side', 'aria-label': role === 'interviewer' ? 'Interviewer panel' : 'The question' })
  const work = h('section', { class: 'work', 'aria-label': 'Code' },
    toolbar, editorHost,
    h('div', { class: 'bottom' },
      h('section', { class: 'panel', 'aria-labelledby': 'console-h' }, h('h2', { id: 'console-h' }, 'Console'), consoleView.element),
      h('section', { class: 'panel', 'aria-labelledby': 'tests-h' }, h('h2', { id: 'tests-h' }, 'Test results'), testsEl)))

  const noticeHost = h('div', { class: 'notice-host' })
  const main = page(interview.title, header, closeNote, endedBanner, noticeHost, h('div', { class: 'room' }, side, work))
  main.classList.add('room-page')

  const startRun = async (kind: RunKind) => {
    runNote.textContent = ''
    if (ended) { runNote.textContent = 'The interview has ended: nothing can be run.'; return }
    try {
      const body: StartRun = { kind }
      const { run_id } = await api<{ run_id: string }>(token, 'POST', `${base}/runs`, body)
      if (!runs.has(run_id)) activeRun = { id: run_id, n: 0, kind, by: role, at: Date.now() }
      stopBtn.disabled = false
      if (kind === 'run') consoleView.focusInput()
    } catch (err) {
      runNote.textContent = `Could not start: ${explain(err)}`
      announce(runNote.textContent)
    }
  }
  runBtn.addEventListener('click', () => void startRun('run'))
  testBtn.addEventListener('click', () => void startRun('test'))
  stopBtn.addEventListener('click', async () => {
    if (!activeRun) return
    try { await api(token, 'POST', `${base}/runs/${encodeURIComponent(activeRun.id)}/cancel`) } catch (err) {
      runNote.textContent = `Stop: ${explain(err)}`
    }
  })
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !(e.target instanceof HTMLElement && e.target.closest('.cm-editor'))) {
      e.preventDefault()
      void startRun('run')
    }
  })

  const editor = createEditor({
    parent: editorHost, ytext, awareness: provider.awareness, readOnly: interview.status === 'ended',
    onRun: () => void startRun('run'), label: 'main.py, the shared program',
  })
  const view = editor.view

  // --- question
  const setQuestion = (iv: Interview) => {
    const q = iv.question
    testBtn.disabled = ended || !q || q.kind !== 'coding'
    testBtn.title = !q || q.kind !== 'coding' ? 'This question has no tests' : ''
  }
  setQuestion(interview)

  if (role === 'candidate') {
    renderCandidateSide(side, interview)
    const { watchSignals } = await import('./signals')
    watchSignals(noticeHost, token, base, view.dom)
  }

  // --- presence: who is here, where their cursors are, following the candidate
  watchPresence({
    awareness: provider.awareness, doc, ytext, view, role, peopleEl, editorHost,
    myName: role === 'candidate' ? interview.candidate_name : 'Interviewer',
    toolbar: role === 'interviewer' ? toolbar : null,
  })

  // --- saved indicator
  const showSaved = (s: SaveState) => {
    savedEl.className = 'saved'
    let text: string
    switch (s.kind) {
      case 'saved': text = s.at ? `Saved ${clock(s.at)}` : 'Saved'; savedEl.classList.add('ok'); break
      case 'saving': text = s.slow ? `Not yet stored by the server (${s.pending} edits)` : 'Saving…'; if (s.slow) savedEl.classList.add('warn'); break
      case 'connecting': text = s.pending ? `Reconnecting: ${s.pending} edits not saved yet` : 'Connecting…'; savedEl.classList.add('warn'); break
      case 'offline': text = s.pending ? `Offline: ${s.pending} edits not saved yet` : 'Offline: reconnecting…'; savedEl.classList.add('warn'); break
      case 'ended': text = 'Interview ended: edits are not saved'; savedEl.classList.add('ended'); break
      case 'revoked': text = 'Link replaced: edits are not saved'; savedEl.classList.add('ended'); break
      default: unreachable(s); return
    }
    if (savedEl.textContent !== text) {
      savedEl.textContent = text
      if (s.kind === 'offline' || s.kind === 'ended' || s.kind === 'revoked') announce(text)
    }
  }
  saves.onChange(showSaved)
  window.addEventListener('beforeunload', (e) => {
    if (!ended && saves.pending > 0) { e.preventDefault(); e.returnValue = '' }
  })
  provider.on('connection-close', (event: CloseEvent | null) => {
    if (event && isEndedClose(event)) {
      // The server refused an edit because the interview is over: stop, and say so.
      provider.shouldConnect = false
      enterEnded()
      return
    }
    if (event && event.code === POLICY_CLOSE) {
      provider.shouldConnect = false
      stopForGood(event.reason || 'the server closed this page for good')
      return
    }
    if (event && event.code !== 1000 && event.code !== 1001 && event.code !== 1006 && event.reason) {
      closeNote.hidden = false
      closeNote.textContent = `The server closed the editor connection: ${event.reason} (code ${event.code}). Reconnecting…`
    }
  })
  provider.on('sync', (synced: boolean) => { if (synced) closeNote.hidden = true })

  // --- a page the server will not serve any more (its link was replaced): read-only, say why
  function stopForGood(reason: string) {
    editor.setReadOnly(true)
    saves.markRevoked()
    runBtn.disabled = true
    testBtn.disabled = true
    stopBtn.disabled = true
    activeRun = null
    consoleView.setRunning(false)
    closeNote.hidden = false
    closeNote.dataset.testid = 'stopped'
    closeNote.textContent = `This page is closed: ${reason}. Nothing typed here from now on is saved.`
    announce(closeNote.textContent)
  }

  // --- the end
  function enterEnded() {
    if (ended) return
    ended = true
    editor.setReadOnly(true)
    saves.markEnded()
    runBtn.disabled = true
    testBtn.disabled = true
    stopBtn.disabled = true
    activeRun = null
    consoleView.setRunning(false)
    const links = role === 'interviewer'
      ? h('span', { class: 'ended-links' },
          // The token rides in the fragment (never sent to the server); each page stores it.
          h('a', { href: `/replay/${encodeURIComponent(id)}#token=${encodeURIComponent(token)}`, 'data-testid': 'replay-link' }, 'Open the replay'),
          h('a', { href: `/debrief/interview/${encodeURIComponent(id)}#token=${encodeURIComponent(token)}`, 'data-testid': 'debrief-link' }, 'Open the debrief'))
      : null
    replace(endedBanner,
      h('strong', {}, 'This interview has ended.'), ' ',
      role === 'candidate'
        ? 'Your code is kept as it was at the end; nothing can be edited or run now. Thank you!'
        : 'The code is read-only and nothing can be run.',
      links)
    endedBanner.hidden = false
    announce('This interview has ended.')
    for (const l of endListeners) l()
  }
  if (interview.status === 'ended') enterEnded()

  // --- runs: the console and results, live and restored
  const register = (runId: string, kind: RunKind, by: Role, at: number): RunInfo => {
    let info = runs.get(runId)
    if (!info) {
      runCount += 1
      info = { id: runId, n: runCount, kind, by, at }
      runs.set(runId, info)
    }
    return info
  }
  const tag = (r: RunInfo) => `${kindLabel(r.kind)} #${r.n} (started ${clock(r.at)})`
  const started = (r: RunInfo) => {
    consoleView.write('info', `▶ ${kindLabel(r.kind)} #${r.n} started by the ${r.by} at ${clock(r.at)}\n`)
  }
  const makeActive = (r: RunInfo) => {
    activeRun = r
    stopBtn.disabled = ended
    consoleView.setRunning(!ended && r.kind === 'run')
  }
  const finished = (r: RunInfo, outcome: Parameters<typeof outcomeText>[0], tests: RunDetail['tests'], lint: LintFinding[] | null | undefined) => {
    if (activeRun?.id === r.id) { activeRun = null; stopBtn.disabled = true; consoleView.setRunning(false) }
    // Every finish line names its run, so an older run's "cancelled" never reads as the newer one's.
    const summary = `${tag(r)} finished: ${outcomeText(outcome)}`
    consoleView.write('info', `\n■ ${summary}\n`)
    if (tests) renderTests(testsEl, tests, r.kind === 'test' && r.by === 'interviewer' && role === 'interviewer')
    if (lint) for (const l of lintListeners) l(lint)
    return summary
  }

  function handleEvent(event: RoomEvent) {
    switch (event.type) {
      case 'run.started': {
        const r = register(event.run_id, event.kind, event.by, event.at)
        makeActive(r)
        started(r)
        announce(`${kindLabel(r.kind)} started by the ${r.by}`)
        break
      }
      case 'run.output': {
        consoleView.write(event.stream === 'stderr' ? 'stderr' : 'stdout', output.push(event.run_id, event.stream, event))
        break
      }
      case 'run.input': {
        // What the other person typed (this page echoes its own as it sends it).
        if (event.by !== role) consoleView.write('stdin', event.data)
        break
      }
      case 'run.finished': {
        for (const rest of output.finish(event.run_id)) consoleView.write(rest.stream === 'stderr' ? 'stderr' : 'stdout', rest.text)
        const r = runs.get(event.run_id) ?? register(event.run_id, 'run', role, Date.now())
        const summary = finished(r, { kind: r.kind, status: event.status, limit: event.limit, exit_code: event.exit_code, duration_ms: event.duration_ms, tests: event.tests }, event.tests, event.lint)
        announce(summary)
        break
      }
      case 'question': {
        void api<Interview>(token, 'GET', base).then((iv) => {
          interview.question = iv.question
          setQuestion(iv)
          if (role === 'candidate') renderCandidateSide(side, iv)
          const title = event.title || iv.question?.title || event.question_id
          replace(noticeHost.querySelector('.question-note') ?? noticeHost.appendChild(h('p', { class: 'banner notice question-note', role: 'status', 'data-testid': 'question-note' })),
            `The question is now “${title}” (switched at ${clock(Date.now())}). `,
            event.restored
              ? 'Its code is back as it was left; the code for the previous question is kept. '
              : 'The editor has its starter code; the code for the previous question is kept. ',
            h('button', { type: 'button', class: 'small', onclick: (e: Event) => (e.target as HTMLElement).parentElement?.remove() }, 'Dismiss'))
          // Results of the previous question's tests no longer apply.
          replace(testsEl, h('p', { class: 'muted' }, `No test run yet for “${title}”.`))
          announce(`The question changed to ${title}`)
        }).catch(() => {})
        break
      }
      case 'end':
        enterEnded()
        break
      case 'scorecard':
      case 'note':
      case 'signal':
        break // the interviewer's panel shows these (its own listener)
      default:
        unreachable(event)
    }
  }

  // Events that arrive while the history loads wait, then are checked against it.
  let pending: RoomEvent[] | null = []
  connectEvents(id, token, (event) => {
    if (pending) pending.push(event)
    else handleEvent(event)
    for (const l of listeners) l(event)
  }, (connected, final) => {
    if (final) runNote.textContent = `Run events stopped: ${final}`
    else if (!connected) runNote.textContent = 'Run events: reconnecting…'
    else if (runNote.textContent === 'Run events: reconnecting…') runNote.textContent = ''
  })

  const restore = async () => {
    const history: RunSummary[] = []
    let after: number | null = null
    do {
      const answer: RunPage = await api<RunPage>(token, 'GET', `${base}/runs?limit=500${after !== null ? `&after=${after}` : ''}`)
      history.push(...answer.runs)
      after = answer.next
    } while (after !== null)
    for (const r of history) register(r.run_id, r.kind, r.by, r.started_at)
    const last = history[history.length - 1]
    const shown = new Set<string>()
    // The running run's output the record already held: later events continue from its seq.
    let restoredThrough: number | null = null
    if (last) {
      const detail = await api<RunDetail>(token, 'GET', `${base}/runs/${encodeURIComponent(last.run_id)}`)
      const r = runs.get(last.run_id)!
      consoleView.write('info', `(restored) `)
      started(r)
      // Decoded as live output is, by the same decoders (the streams one after the other).
      const out = output.push(last.run_id, 'stdout', { data: detail.stdout, base64: detail.stdout_base64 })
      if (out) consoleView.write('stdout', out)
      const err = output.push(last.run_id, 'stderr', { data: detail.stderr, base64: detail.stderr_base64 })
      if (err) consoleView.write('stderr', err)
      if (detail.stdout_truncated || detail.stderr_truncated) consoleView.write('info', '\n[output cut at the output limit]\n')
      shown.add(last.run_id)
      if (last.status === 'running') {
        makeActive(r)
        restoredThrough = detail.through_seq
      } else {
        for (const rest of output.finish(last.run_id)) consoleView.write(rest.stream === 'stderr' ? 'stderr' : 'stdout', rest.text)
        finished(r, { ...detail, tests: detail.tests }, detail.tests, detail.lint)
      }
      // The test results panel shows the last test run, even if a program ran after it.
      const lastTest = [...history].reverse().find((x) => x.kind === 'test' && x.status !== 'running')
      if (lastTest && lastTest.run_id !== last.run_id) {
        const t = await api<RunDetail>(token, 'GET', `${base}/runs/${encodeURIComponent(lastTest.run_id)}`)
        if (t.tests) renderTests(testsEl, t.tests, t.by === 'interviewer' && role === 'interviewer')
      }
      const lastLint = [...history].reverse().find((x) => x.kind === 'lint' && x.status !== 'running')
      if (lastLint && lastLint.run_id !== last.run_id) {
        const l = await api<RunDetail>(token, 'GET', `${base}/runs/${encodeURIComponent(lastLint.run_id)}`)
        if (l.lint) for (const f of lintListeners) f(l.lint)
      }
    }
    const known = new Map(history.map((r) => [r.run_id, r]))
    const queued = pending ?? []
    pending = null
    // Output of the running run that its record already held (up to `through_seq`) is not
    // shown twice.
    if (restoredThrough !== null && last) {
      const through = restoredThrough
      for (const e of [...queued]) {
        if (e.type === 'run.output' && e.run_id === last.run_id && e.seq <= through) queued.splice(queued.indexOf(e), 1)
      }
    }
    for (const event of queued) {
      const before = event.type === 'run.started' || event.type === 'run.output' || event.type === 'run.finished' ? known.get(event.run_id) : undefined
      if (before) {
        if (event.type === 'run.started') continue // already listed
        if (event.type === 'run.output' && (!shown.has(event.run_id) || before.status !== 'running')) continue
        if (event.type === 'run.finished' && before.status !== 'running') continue
      }
      handleEvent(event)
    }
  }
  if (role === 'interviewer') {
    const { mountInterviewerPanel } = await import('./interviewer')
    mountInterviewerPanel({
      interview, token, side, startRun,
      onEvent: (l) => listeners.push(l),
      onLint: (l) => lintListeners.push(l),
      onEnded: (l) => { endListeners.push(l); if (ended) l() },
      setQuestion,
    })
  }
  await restore().catch((err) => {
    consoleView.write('info', `[the run history could not be loaded: ${explain(err)}]\n`)
    const queued = pending ?? []
    pending = null
    for (const event of queued) handleEvent(event)
  })

  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

function isEndedClose(event: CloseEvent): boolean {
  return event.code === POLICY_CLOSE && /ended/i.test(event.reason)
}

function renderCandidateSide(side: HTMLElement, interview: Interview) {
  const q = interview.question
  replace(side,
    h('section', { class: 'panel', 'aria-labelledby': 'q-h' },
      h('h2', { id: 'q-h' }, q ? q.title : 'No question yet'),
      q ? h('p', { class: 'muted small' }, `${q.difficulty} · ${q.kind}`) : null,
      q ? renderMarkdown(q.prompt) : h('p', {}, 'Your interviewer will pick a question; you can write code meanwhile.')),
    q?.visible_tests
      ? h('section', { class: 'panel', 'aria-labelledby': 'vt-h' },
          h('h2', { id: 'vt-h' }, 'Tests you can run'),
          h('pre', { class: 'code-block', tabindex: '0', 'aria-label': 'Visible tests' }, q.visible_tests))
      : null,
  )
}
