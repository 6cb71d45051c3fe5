// The interview room, for the candidate and the interviewer: the shared editor, Run / Run tests
// / Stop (Ctrl/Cmd+Enter runs), the live console with an input line, test results, who is
// connected and the saved indicator. The interviewer's panel is a separate chunk
// (interviewer.ts) loaded only for the interviewer's token: the candidate's page never loads
// its code, and so never calls its endpoints.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { api, explain, wsBase, type Interview, type RoomEvent, type TestResults } from './api'
import { h, page, replace, announce, clock } from './dom'
import { createEditor } from './editor'
import { createConsole } from './console'
import { connectEvents } from './events'
import { SaveTracker, type SaveState } from './saved'
import { renderMarkdown } from './markdown'

/** What the interviewer's panel gets from the room. */
export interface RoomContext {
  interview: Interview
  token: string
  side: HTMLElement
  startRun(kind: 'run' | 'test' | 'lint'): Promise<void>
  onEvent(listener: (e: RoomEvent) => void): void
  setQuestion(interview: Interview): void
}

export async function openRoom(id: string, token: string, interview: Interview): Promise<void> {
  const role = interview.role
  const base = `/api/interviews/${encodeURIComponent(id)}`
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`${wsBase()}/yjs`, id, doc, {
    params: { token },
    disableBc: true, // two tabs must each reach the server: the saved indicator counts on it
  })
  const ytext = doc.getText('main.py')
  const saves = new SaveTracker(doc, provider)
  const listeners: ((e: RoomEvent) => void)[] = []

  // --- header: title, role, people, saved state
  const savedEl = h('div', { class: 'saved', role: 'status', 'data-testid': 'saved' }, 'Connecting…')
  const peopleEl = h('ul', { class: 'people', 'aria-label': 'Connected people', 'data-testid': 'people' })
  const closeNote = h('p', { class: 'banner warn', hidden: true, role: 'alert' })
  const header = h('header', { class: 'topbar' },
    h('span', { class: 'brand' }, 'Duet'),
    h('h1', {}, interview.title, h('span', { class: 'muted' }, ` · ${interview.candidate_name}`)),
    h('span', { class: `badge role-${role}` }, role === 'candidate' ? 'Candidate' : 'Interviewer'),
    peopleEl,
    savedEl,
  )

  // --- toolbar
  let activeRun: { id: string; kind: string } | null = null
  const runBtn = h('button', { type: 'button', class: 'primary', 'aria-keyshortcuts': 'Control+Enter Meta+Enter' }, 'Run')
  const testBtn = h('button', { type: 'button' }, 'Run tests')
  const stopBtn = h('button', { type: 'button', disabled: true }, 'Stop')
  const runNote = h('span', { class: 'run-note', role: 'status' })
  const toolbar = h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Run controls' },
    runBtn, testBtn, stopBtn,
    h('span', { class: 'muted small' }, 'Ctrl/⌘+Enter runs · Esc then Tab leaves the editor'),
    runNote)

  const consoleView = createConsole(async (data, eof) => {
    if (!activeRun) return
    try {
      await api(token, 'POST', `${base}/runs/${encodeURIComponent(activeRun.id)}/stdin`, eof ? { data, eof: true } : { data })
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
  const main = page(interview.title, header, closeNote, noticeHost, h('div', { class: 'room' }, side, work))
  main.classList.add('room-page')

  const startRun = async (kind: 'run' | 'test' | 'lint') => {
    runNote.textContent = ''
    try {
      const { run_id } = await api<{ run_id: string }>(token, 'POST', `${base}/runs`, { kind })
      activeRun = { id: run_id, kind }
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

  const view = createEditor({
    parent: editorHost, ytext, awareness: provider.awareness, readOnly: false,
    onRun: () => void startRun('run'), label: 'main.py, the shared program',
  })

  // --- question
  const setQuestion = (iv: Interview) => {
    const q = iv.question
    testBtn.disabled = !q || q.kind !== 'coding'
    testBtn.title = testBtn.disabled ? 'This question has no tests' : ''
  }
  setQuestion(interview)

  if (role === 'candidate') {
    renderCandidateSide(side, interview)
    const { watchSignals } = await import('./signals')
    watchSignals(noticeHost, token, base, view.dom)
  }

  // --- presence
  const renderPeople = () => {
    // The server stamps names on the states it relays; this tab's own state carries none.
    const myName = role === 'candidate' ? interview.candidate_name : 'Interviewer'
    const seen = new Map<string, { name: string; role: string; color: string; me: boolean }>()
    seen.set(`${role}:${myName}`, { name: myName, role, color: 'transparent', me: true })
    for (const [clientId, state] of provider.awareness.getStates()) {
      const user = (state as { user?: { name?: string; role?: string; color?: string } }).user
      if (!user?.name) continue
      const key = `${user.role}:${user.name}`
      const me = clientId === doc.clientID
      const prev = seen.get(key)
      seen.set(key, { name: user.name, role: user.role ?? '', color: user.color ?? '#888', me: me || !!prev?.me })
    }
    replace(peopleEl, [...seen.values()].map((p) => {
      const dot = h('span', { class: 'dot', 'aria-hidden': 'true' })
      dot.style.backgroundColor = p.color
      return h('li', { class: 'person' }, dot, p.name, p.me ? h('span', { class: 'muted' }, ' (you)') : null)
    }))
  }
  provider.awareness.on('change', renderPeople)
  renderPeople()

  // --- saved indicator
  const showSaved = (s: SaveState) => {
    savedEl.className = 'saved'
    let text: string
    switch (s.kind) {
      case 'saved': text = s.at ? `Saved ${clock(s.at)}` : 'Saved'; savedEl.classList.add('ok'); break
      case 'saving': text = s.slow ? `Not yet stored by the server (${s.pending} edits)` : 'Saving…'; if (s.slow) savedEl.classList.add('warn'); break
      case 'connecting': text = s.pending ? `Reconnecting: ${s.pending} edits not saved yet` : 'Connecting…'; savedEl.classList.add('warn'); break
      case 'offline': text = s.pending ? `Offline: ${s.pending} edits not saved yet` : 'Offline: reconnecting…'; savedEl.classList.add('warn'); break
    }
    if (savedEl.textContent !== text) {
      savedEl.textContent = text
      if (s.kind === 'offline') announce(text)
    }
  }
  saves.onChange(showSaved)
  window.addEventListener('beforeunload', (e) => {
    if (saves.pending > 0) { e.preventDefault(); e.returnValue = '' }
  })
  provider.on('connection-close', (event: CloseEvent | null) => {
    if (event && event.code !== 1000 && event.code !== 1001 && event.code !== 1006 && event.reason) {
      closeNote.hidden = false
      closeNote.textContent = `The server closed the editor connection: ${event.reason} (code ${event.code}). Reconnecting…`
    }
  })
  provider.on('sync', (synced: boolean) => { if (synced) closeNote.hidden = true })

  // --- events: runs and question switches
  const runs = new Map<string, { kind: string; by: string }>()
  connectEvents(id, token, (event) => {
    handleEvent(event)
    for (const l of listeners) l(event)
  }, (connected) => {
    if (!connected) runNote.textContent = 'Run events: reconnecting…'
    else if (runNote.textContent === 'Run events: reconnecting…') runNote.textContent = ''
  })

  function handleEvent(event: RoomEvent) {
    switch (event.type) {
      case 'run.started': {
        const e = event as Extract<RoomEvent, { type: 'run.started' }>
        runs.set(e.run_id, { kind: e.kind, by: e.by })
        activeRun = { id: e.run_id, kind: e.kind }
        stopBtn.disabled = false
        consoleView.setRunning(e.kind === 'run')
        consoleView.write('info', `▶ ${label(e.kind)} started by the ${e.by} at ${clock(e.at)}\n`)
        announce(`${label(e.kind)} started by the ${e.by}`)
        break
      }
      case 'run.output': {
        const e = event as Extract<RoomEvent, { type: 'run.output' }>
        consoleView.write(e.stream === 'stderr' ? 'stderr' : 'stdout', e.data)
        break
      }
      case 'run.finished': {
        const e = event as Extract<RoomEvent, { type: 'run.finished' }>
        const run = runs.get(e.run_id)
        if (activeRun?.id === e.run_id) { activeRun = null; stopBtn.disabled = true; consoleView.setRunning(false) }
        const exit = e.exit_code === null || e.exit_code === undefined ? '' : ` (exit ${e.exit_code})`
        const took = e.duration_ms !== undefined ? ` in ${e.duration_ms} ms` : ''
        const summary = `■ ${label(run?.kind ?? 'run')} finished: ${e.status}${exit}${took}`
        consoleView.write('info', `\n${summary}\n`)
        let spoken = summary.slice(2)
        if (e.tests) {
          renderTests(testsEl, e.tests, run?.kind === 'test' && run.by === 'interviewer' && role === 'interviewer')
          spoken += `. Tests: ${e.tests.passed} passed, ${e.tests.failed} failed, ${e.tests.errors} errors`
        }
        announce(spoken)
        break
      }
      case 'question': {
        void api<Interview>(token, 'GET', base).then((iv) => {
          interview.question = iv.question
          setQuestion(iv)
          if (role === 'candidate') renderCandidateSide(side, iv)
          announce(`The question changed to ${iv.question?.title ?? 'none'}`)
        }).catch(() => {})
        break
      }
    }
  }

  if (role === 'interviewer') {
    const { mountInterviewerPanel } = await import('./interviewer')
    mountInterviewerPanel({
      interview, token, side, startRun,
      onEvent: (l) => listeners.push(l),
      setQuestion,
    })
  }
  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

function label(kind: string): string {
  return kind === 'test' ? 'Test run' : kind === 'lint' ? 'Style check' : 'Run'
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

export function renderTests(el: HTMLElement, tests: TestResults, hidden: boolean): void {
  const cases = tests.cases.map((c) => h('li', { class: `case case-${c.outcome}` },
    h('span', { class: 'outcome' }, c.outcome === 'passed' ? '✓ passed' : c.outcome === 'failed' ? '✗ failed' : c.outcome === 'error' ? '✗ error' : `– ${c.outcome}`),
    ' ', h('code', {}, c.name),
    c.message ? h('div', { class: 'message' }, c.message) : null))
  replace(el,
    h('p', { class: 'summary' }, hidden ? 'Including hidden tests: ' : '',
      `${tests.passed} passed, ${tests.failed} failed`, tests.errors ? `, ${tests.errors} errors` : '', tests.skipped ? `, ${tests.skipped} skipped` : ''),
    h('ul', { class: 'cases' }, cases))
}
