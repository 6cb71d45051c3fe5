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
  type RunStdin, type StartRun,
} from './api'
import { h, page, replace, announce, clock } from './dom'
import { mountProject } from './filetree'
import { createConsole } from './console'
import { connectEvents } from './events'
import { SaveTracker } from './saved'
import { renderMarkdown } from './markdown'
import { renderTests } from './results'
import { watchPresence } from './presence'
import { POLICY_CLOSE, RoomState, savedLabel, type ViewCommand } from './room-state'

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
  /** Shows the file `path` in the editor at `line` (a style finding's place). */
  openFile(path: string, line: number): void
}

/** What a page around the room (a take-home's, takehome.ts) hears of it. */
export interface RoomHooks {
  /** Called once when the interview ends (live or already on load). */
  onEnded?: () => void
}

export async function openRoom(id: string, token: string, interview: Interview, hooks: RoomHooks = {}): Promise<void> {
  const role = interview.role
  const base = `/api/interviews/${encodeURIComponent(id)}`
  const state = new RoomState({
    role, ended: interview.status === 'ended', question: interview.question, clock, now: () => Date.now(),
    watchOnly: interview.mode === 'take_home' && role !== 'candidate',
  })
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
  const saves = new SaveTracker(doc, provider)
  const listeners: ((e: RoomEvent) => void)[] = []
  const lintListeners: ((findings: LintFinding[]) => void)[] = []
  const endListeners: (() => void)[] = []

  // --- header: title, role, people, saved state
  const savedEl = h('div', { class: 'saved', role: 'status', 'data-testid': 'saved' }, 'Connecting…')
  const peopleEl = h('ul', { class: 'people', 'aria-label': 'Connected people', 'data-testid': 'people' })
  const closeNote = h('p', { class: 'banner warn', hidden: true, role: 'alert' })
  const endedBanner = h('div', { class: 'banner ended', hidden: true, role: 'status', 'data-testid': 'ended' })
  const codeTab = h('button', { type: 'button', 'aria-pressed': 'true', 'data-testid': 'show-code' }, 'Code')
  const boardTab = h('button', { type: 'button', 'aria-pressed': 'false', 'data-testid': 'show-board' }, 'Board')
  const header = h('header', { class: 'topbar' },
    h('span', { class: 'brand' }, 'Duet'),
    h('h1', {}, interview.title, h('span', { class: 'muted' }, ` · ${interview.candidate_name}`)),
    h('span', { class: `badge role-${role}` }, role === 'candidate' ? 'Candidate' : 'Interviewer'),
    h('div', { class: 'view-switch', role: 'group', 'aria-label': 'Show the code or the board' }, codeTab, boardTab),
    peopleEl,
    savedEl,
  )

  // --- toolbar
  const runBtn = h('button', { type: 'button', class: 'primary', 'aria-keyshortcuts': 'Control+Enter Meta+Enter', 'data-testid': 'run' }, 'Run')
  const replTitle = 'python -i: runs the program, then its interpreter with its names in scope; both of you type into it below'
  const replBtn = h('button', { type: 'button', 'data-testid': 'repl', title: replTitle }, 'REPL')
  // The server refuses a REPL during a take-home: its session would be unrecorded typing.
  const noRepl = interview.mode === 'take_home' ? 'A take-home round has no REPL: run the program or the tests instead' : ''
  const envLabel = h('span', { class: 'badge env', 'data-testid': 'environment', title: 'The sandbox environment runs use' }, interview.environment)
  const testBtn = h('button', { type: 'button' }, 'Run tests')
  const stopBtn = h('button', { type: 'button', disabled: true, 'data-testid': 'stop' }, 'Stop')
  const runNote = h('span', { class: 'run-note', role: 'status', 'data-testid': 'run-note' })
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Run controls' },
    runBtn, replBtn, testBtn, stopBtn, envLabel,
    h('span', { class: 'muted small' }, 'Ctrl/⌘+Enter runs · Esc then Tab leaves the editor'),
    runNote)

  const consoleView = createConsole(async (data, eof) => {
    const runId = state.activeRunId
    if (!runId) return
    try {
      const body: RunStdin = eof ? { data, eof: true } : { data }
      await api(token, 'POST', `${base}/runs/${encodeURIComponent(runId)}/stdin`, body)
    } catch (err) {
      consoleView.write('info', `[input not delivered: ${explain(err)}]\n`)
    }
  })
  const testsEl = h('div', { class: 'tests', 'data-testid': 'tests' }, h('p', { class: 'muted' }, 'No test run yet.'))

  // The files, their tabs and the editor (filetree.ts).
  const project = mountProject({
    doc, awareness: provider.awareness, provider, readOnly: !state.controls().editable, onRun: () => void startRun('run'),
    readOnlyTitle: state.controls().watchTitle ? 'A take-home is the candidate\'s solo round: staff watch its files read-only.' : 'The files cannot be changed now.',
  })
  const { editor, editorHost } = project
  const side = h('aside', { class: 'side', 'aria-label': role === 'interviewer' ? 'Interviewer panel' : 'The question' })
  const work = h('section', { class: 'work', 'aria-label': 'Code' },
    toolbar, project.element,
    h('div', { class: 'bottom' },
      h('section', { class: 'panel', 'aria-labelledby': 'console-h' }, h('h2', { id: 'console-h' }, 'Console'), consoleView.element),
      h('section', { class: 'panel', 'aria-labelledby': 'tests-h' }, h('h2', { id: 'tests-h' }, 'Test results'), testsEl)))

  const noticeHost = h('div', { class: 'notice-host' })
  const boardPane = h('section', { class: 'board-pane', 'aria-label': 'Board', hidden: true, 'data-testid': 'board' })
  const roomEl = h('div', { class: 'room' }, side, work, boardPane)
  const main = page(interview.title, header, closeNote, endedBanner, noticeHost, roomEl)
  main.classList.add('room-page')

  const view = editor.view

  // --- rendering from the state: the controls, then what each change asks of the view
  let editable = state.controls().editable
  let inputOpen = false
  const render = () => {
    const c = state.controls()
    runBtn.disabled = !c.run
    runBtn.title = c.watchTitle
    replBtn.disabled = !c.run || noRepl !== ''
    replBtn.title = c.watchTitle || noRepl || replTitle
    testBtn.disabled = !c.test
    testBtn.title = c.testTitle
    stopBtn.disabled = !c.stop
    stopBtn.title = c.stop ? '' : c.watchTitle
    if (c.input !== inputOpen) { inputOpen = c.input; consoleView.setRunning(c.input) }
    if (c.editable !== editable) { editable = c.editable; project.setReadOnly(!c.editable); board?.setReadOnly(!c.editable) }
  }

  // --- the board: Code | Board (side by side on wide screens, style.css). Excalidraw and React
  // load only when the board first opens (board.ts), so the editor's first load does not grow.
  let board: import('./board').Board | null = null
  let boardLoading: Promise<void> | null = null
  const showBoard = (open: boolean) => {
    roomEl.classList.toggle('board-open', open)
    boardPane.hidden = !open
    codeTab.setAttribute('aria-pressed', String(!open))
    boardTab.setAttribute('aria-pressed', String(open))
    if (!open) { board?.hidden(); return }
    boardLoading ??= (async () => {
      // Excalidraw's fonts are served with the app (scripts/board-assets.mjs), not from a CDN.
      (window as { EXCALIDRAW_ASSET_PATH?: string }).EXCALIDRAW_ASSET_PATH = '/assets/excalidraw/'
      const { mountBoard } = await import('./board')
      board = mountBoard({ doc, awareness: provider.awareness, container: boardPane, readOnly: !editable })
    })().catch((err) => {
      boardLoading = null
      replace(boardPane, h('p', { class: 'banner warn', role: 'alert' }, `The board could not load: ${explain(err)}`))
    })
  }
  codeTab.addEventListener('click', () => showBoard(false))
  boardTab.addEventListener('click', () => showBoard(true))
  const carryOut = (commands: ViewCommand[]) => {
    for (const c of commands) {
      switch (c.do) {
        case 'write': consoleView.write(c.stream, c.text); break
        case 'announce': announce(c.text); break
        case 'show-tests': renderTests(testsEl, c.tests, c.hidden); break
        case 'clear-tests': replace(testsEl, h('p', { class: 'muted' }, c.text)); break
        case 'show-lint': for (const l of lintListeners) l(c.findings); break
        case 'load-question': {
          const event = c.event
          void api<Interview>(token, 'GET', base).then((iv) => {
            interview.question = iv.question
            carryOut(state.questionLoaded(iv.question, event))
          }).catch(() => {})
          break
        }
        case 'show-question':
          if (role === 'candidate') renderCandidateSide(side, c.question)
          if (c.question?.kind === 'discussion') showBoard(true) // discussion prompts open on the board
          replace(noticeHost.querySelector('.question-note') ?? noticeHost.appendChild(h('p', { class: 'banner notice question-note', role: 'status', 'data-testid': 'question-note' })),
            c.note,
            h('button', { type: 'button', class: 'small', onclick: (e: Event) => (e.target as HTMLElement).parentElement?.remove() }, 'Dismiss'))
          break
        case 'end': showEnded(); break
        case 'close':
          saves.markRevoked()
          closeNote.hidden = false
          closeNote.dataset.testid = 'stopped'
          closeNote.textContent = c.text
          break
        case 'disconnect-editor': provider.shouldConnect = false; break
        case 'connection-note':
          closeNote.hidden = false
          closeNote.textContent = c.text
          break
        default:
          unreachable(c)
      }
    }
    render()
  }

  const startRun = async (kind: RunKind) => {
    runNote.textContent = ''
    const refused = state.refuseRun()
    if (refused) { runNote.textContent = refused; return }
    try {
      const body: StartRun = { kind }
      const { run_id } = await api<{ run_id: string }>(token, 'POST', `${base}/runs`, body)
      state.runAccepted(run_id, kind)
      render()
      if (kind === 'run' || kind === 'repl') consoleView.focusInput()
    } catch (err) {
      runNote.textContent = `Could not start: ${explain(err)}`
      announce(runNote.textContent)
    }
  }
  runBtn.addEventListener('click', () => void startRun('run'))
  replBtn.addEventListener('click', () => void startRun('repl'))
  testBtn.addEventListener('click', () => void startRun('test'))
  stopBtn.addEventListener('click', async () => {
    const runId = state.activeRunId
    if (!runId) return
    try { await api(token, 'POST', `${base}/runs/${encodeURIComponent(runId)}/cancel`) } catch (err) {
      runNote.textContent = `Stop: ${explain(err)}`
    }
  })
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !(e.target instanceof HTMLElement && e.target.closest('.cm-editor'))) {
      e.preventDefault()
      void startRun('run')
    }
  })

  if (interview.question?.kind === 'discussion') showBoard(true)

  // --- question
  const setQuestion = (iv: Interview) => {
    state.questionShown(iv.question)
    envLabel.textContent = iv.environment
    render()
  }
  render()

  if (role === 'candidate') {
    renderCandidateSide(side, interview.question)
    const { watchSignals } = await import('./signals')
    watchSignals(noticeHost, token, base, view.dom)
  }

  // --- presence: who is here, where their cursors are, following the candidate
  watchPresence({
    awareness: provider.awareness, doc, project, view, role, peopleEl, editorHost,
    myName: role === 'candidate' ? interview.candidate_name : 'Interviewer',
    toolbar: role === 'interviewer' ? toolbar : null,
  })

  // --- saved indicator
  saves.onChange((s) => {
    const label = savedLabel(s, clock)
    savedEl.className = 'saved'
    if (label.tone) savedEl.classList.add(label.tone)
    if (savedEl.textContent !== label.text) {
      savedEl.textContent = label.text
      if (label.announce) announce(label.text)
    }
  })
  window.addEventListener('beforeunload', (e) => {
    if (state.leaveLosesEdits(saves.pending)) { e.preventDefault(); e.returnValue = '' }
  })
  provider.on('connection-close', (event: CloseEvent | null) => {
    if (event) carryOut(state.editorClosed(event.code, event.reason))
  })
  provider.on('sync', (synced: boolean) => { if (synced) closeNote.hidden = true })

  // --- the end
  function showEnded() {
    saves.markEnded()
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
    for (const l of endListeners) l()
    hooks.onEnded?.()
  }
  if (state.phase === 'ended') {
    showEnded()
    announce('This interview has ended.')
  }

  // --- runs: the console and results, live and restored. Events that arrive while the history
  // loads wait in the state, which checks them against it. The history is asked for once the
  // events socket has first answered (open or not), so no event falls between the two.
  let socketAnswered: () => void = () => {}
  const firstAnswer = new Promise<void>((resolve) => { socketAnswered = resolve })
  connectEvents(id, token, (event) => {
    carryOut(state.event(event))
    for (const l of listeners) l(event)
  }, (connected, final) => {
    socketAnswered()
    if (final) runNote.textContent = `Run events stopped: ${final}`
    else if (!connected) runNote.textContent = 'Run events: reconnecting…'
    else if (runNote.textContent === 'Run events: reconnecting…') runNote.textContent = ''
  })

  const restore = async () => {
    await firstAnswer
    const history: RunSummary[] = []
    // The cursor is the id of the last run of the page before.
    let after: string | null = null
    do {
      const answer: RunPage = await api<RunPage>(token, 'GET', `${base}/runs?limit=500${after !== null ? `&after=${encodeURIComponent(after)}` : ''}`)
      history.push(...answer.runs)
      after = answer.next
    } while (after !== null)
    const details = await Promise.all(state.historyListed(history).map((runId) =>
      api<RunDetail>(token, 'GET', `${base}/runs/${encodeURIComponent(runId)}`)))
    carryOut(state.historyLoaded(details))
  }
  if (role === 'interviewer') {
    const { mountInterviewerPanel } = await import('./interviewer')
    mountInterviewerPanel({
      interview, token, side, startRun,
      onEvent: (l) => listeners.push(l),
      onLint: (l) => lintListeners.push(l),
      onEnded: (l) => { endListeners.push(l); if (state.phase === 'ended') l() },
      setQuestion,
      openFile: (path, line) => project.reveal(path, line),
    })
  }
  await restore().catch((err) => carryOut(state.historyFailed(explain(err))))

  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

function renderCandidateSide(side: HTMLElement, q: Interview['question']) {
  replace(side,
    h('section', { class: 'panel', 'aria-labelledby': 'q-h' },
      h('h2', { id: 'q-h' }, q ? q.title : 'No question yet'),
      q ? h('p', { class: 'muted small' }, `${q.difficulty} · ${q.kind}`) : null,
      q ? renderMarkdown(q.prompt) : h('p', {}, 'Your interviewer will pick a question; you can write code meanwhile.')),
    q && Object.keys(q.visible_tests).length > 0
      ? h('section', { class: 'panel', 'aria-labelledby': 'vt-h' },
          h('h2', { id: 'vt-h' }, 'Tests you can run'),
          ...Object.entries(q.visible_tests).flatMap(([path, text]) => [
            h('h3', { class: 'small' }, path),
            h('pre', { class: 'code-block', tabindex: '0', 'aria-label': `Visible tests: ${path}` }, text),
          ]))
      : null,
  )
}
