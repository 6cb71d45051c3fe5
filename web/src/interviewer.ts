// The interviewer's panel, loaded only for the interviewer's token: the question picker and
// prompt, hints and follow-ups, Run hidden tests, the style check (lint), private notes
// (Alt+N), the scorecard, and End interview. On a take-home (the candidate's solo round, which
// staff watch) the question cannot be switched: the picker and Switch are off and say why.
import { api, explain, unreachable, type Interview, type Question, type QuestionView, type LintFinding, type RoomEvent, type SignalKind, type QuestionSummary, type NewNote, type Note, type SwitchQuestion, type Timeline } from './api'
import { h, replace, announce, clock } from './dom'
import { renderMarkdown } from './markdown'
import { mountScorecard } from './scorecard'
import type { RoomContext } from './room'


export function mountInterviewerPanel(ctx: RoomContext): void {
  // Set once the scorecard is mounted (below); opening its tab calls it.
  let refreshScorecard: () => Promise<void> = async () => {}
  const { token, side } = ctx
  const base = `/api/interviews/${encodeURIComponent(ctx.interview.id)}`
  if (ctx.interview.mode === 'take_home') {
    // The candidate's solo round: a banner says staff watch read-only, with the round's clock.
    void import('./takehome').then(({ mountStaffBanner }) => mountStaffBanner(ctx))
  }
  const picker = h('select', { id: 'q-pick' }, h('option', { value: '' }, 'Loading the question bank…'))
  const switchBtn = h('button', { type: 'button' }, 'Switch')
  const pickNote = h('p', { class: 'small', role: 'status' })
  const questionEl = h('div', { class: 'question' })
  const hiddenBtn = h('button', { type: 'button' }, 'Run hidden tests')
  const lintBtn = h('button', { type: 'button' }, 'Style check')
  const lintEl = h('div', { class: 'lint', 'data-testid': 'lint' }, h('p', { class: 'muted small' }, 'No style check yet.'))
  const noteInput = h('textarea', { id: 'note-text', rows: '2', placeholder: 'A private note, stamped now (Enter saves, Shift+Enter new line)' })
  const notesList = h('ul', { class: 'notes', 'aria-label': 'Your notes' })
  const notesNote = h('p', { class: 'small', role: 'status' })
  const scoreHost = h('div', { class: 'scorecard' }, h('p', { class: 'muted' }, 'Loading the scorecard…'))
  const signalsList = h('ul', { class: 'signals-list', 'aria-label': 'Candidate signals', tabindex: '0' },
    h('li', { class: 'muted small none' }, 'None so far.'))
  const signalsCount = h('span', { class: 'count', 'data-testid': 'signals-count' }, '0')
  const signalsBox = h('section', { class: 'signals', 'data-testid': 'signals', 'aria-labelledby': 'signals-h' },
    h('h3', { id: 'signals-h' }, 'Candidate signals ', signalsCount,
      h('span', { class: 'muted small' }, ' · large pastes, leaving the tab: context, not verdicts')),
    signalsList)
  const takeHome = ctx.interview.mode === 'take_home'
  // The server refuses a take-home's switch (409): its question is the one the candidate was sent.
  const fixedQuestion = 'A take-home\'s question is fixed: the candidate works alone on the one they were sent.'
  if (takeHome) {
    for (const control of [picker, switchBtn]) { control.disabled = true; control.title = fixedQuestion }
    pickNote.textContent = fixedQuestion
  }
  // An interviewer may still end a take-home (the server allows it, for a round that must stop):
  // it stops the candidate's round with no submit and no hidden-test run, and says so first.
  const endWords = takeHome
    ? 'End the candidate\'s take-home now? Their round stops as it is: it is not submitted, and the hidden tests do not run.'
    : 'End the interview? Nobody can edit or run code afterwards.'
  const endBtn = h('button', { type: 'button', class: 'danger', title: takeHome ? 'Stops the candidate\'s round now, without a submit' : null }, 'End interview')
  const endNote = h('p', { class: 'small', role: 'status' })

  const tab = (id: string, name: string, body: HTMLElement) => ({ id, name, body })
  const tabs = [
    tab('question', 'Question', h('div', {},
      h('div', { class: 'field' }, h('label', { for: 'q-pick' }, 'Question'), h('div', { class: 'row' }, picker, switchBtn)), pickNote,
      questionEl)),
    tab('checks', 'Checks', h('div', {},
      h('p', { class: 'small muted' }, 'Private: the candidate sees none of these runs.'),
      h('div', { class: 'row' }, hiddenBtn, lintBtn),
      h('h3', {}, 'Style findings'), lintEl)),
    tab('notes', 'Notes', h('div', {},
      h('label', { for: 'note-text' }, 'Private note (Alt+N)'), noteInput, notesNote, notesList)),
    tab('score', 'Scorecard', scoreHost),
  ]
  const tabButtons = tabs.map((t, i) => {
    const b = h('button', { type: 'button', role: 'tab', id: `tab-${t.id}`, 'aria-controls': `tabpanel-${t.id}`, 'aria-selected': i === 0 ? 'true' : 'false', tabindex: i === 0 ? '0' : '-1' }, t.name)
    b.addEventListener('click', () => select(i))
    b.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        const j = (i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length
        select(j); tabButtons[j].focus()
      }
    })
    return b
  })
  const panels = tabs.map((t, i) => h('div', { role: 'tabpanel', id: `tabpanel-${t.id}`, 'aria-labelledby': `tab-${t.id}`, hidden: i !== 0, class: 'tabpanel' }, t.body))
  const select = (i: number) => {
    tabButtons.forEach((b, j) => { b.setAttribute('aria-selected', String(i === j)); b.tabIndex = i === j ? 0 : -1 })
    panels.forEach((p, j) => { p.hidden = i !== j })
    // Opening the scorecard lists the runs made since it was last drawn, to attach as evidence.
    if (tabs[i].id === 'score') void refreshScorecard()
  }
  // Signals sit above the tabs, so they are in view whichever tab is open.
  replace(side,
    signalsBox,
    h('div', { role: 'tablist', 'aria-label': 'Interviewer panel', class: 'tabs' }, tabButtons),
    ...panels,
    h('div', { class: 'end-row' }, endBtn, endNote))

  // --- signals: the ones so far (from the timeline), then each as it happens
  const signalSeen = new Set<string>()
  let signalTotal = 0
  function addSignal(kind: SignalKind, size: number | null | undefined, at: number, live: boolean) {
    const key = `${kind}:${at}:${size ?? ''}`
    if (signalSeen.has(key)) return
    signalSeen.add(key)
    signalTotal += 1
    signalsCount.textContent = String(signalTotal)
    signalsList.querySelector('.none')?.remove()
    const what = kind === 'paste'
      ? `pasted ${size ?? 'a large block of'} characters`
      : 'left the tab (its window lost focus)'
    const item = h('li', { class: `signal signal-${kind}${live ? ' fresh' : ''}` }, h('time', {}, clock(at)), ' ', what)
    signalsList.prepend(item)
    if (live) announce(`Signal: the candidate ${what}`)
  }
  void api<Timeline>(token, 'GET', `${base}/timeline`)
    .then((t) => { for (const e of t.events) if (e.type === 'signal') addSignal(e.kind, e.size, e.at, false) })
    .catch(() => { /* live signals still show */ })

  // --- question
  /**
   * Whether a question is the whole one (hints, follow-ups, the solution) rather than the
   * candidate's part: the server sends one or the other untagged, told apart by their keys.
   * Here, not in api.ts, so the candidate's page never carries the key's name.
   */
  const isFullQuestion = (q: QuestionView): q is Question => 'hints' in q
  const showQuestion = (q: QuestionView | null) => {
    if (!q) { replace(questionEl, h('p', { class: 'muted' }, 'No question: pick one above.')); return }
    // The interviewer's token is always answered with the whole question; the candidate's part
    // (no hints) would show the prompt alone.
    const full = isFullQuestion(q) ? q : null
    const list = (title: string, items: string[] | undefined, cls: string) => items && items.length
      ? h('section', { class: `hint ${cls}` }, h('h3', {}, title), h('ul', {}, items.map((s) => h('li', {}, s)))) : null
    replace(questionEl,
      h('h3', {}, q.title, h('span', { class: 'muted small' }, ` · ${q.difficulty} · ${q.kind}`)),
      renderMarkdown(q.prompt),
      list('Strong signals', full?.hints.strong, 'strong'),
      list('Red flags', full?.hints.red_flags, 'red'),
      list('Follow-ups', full?.follow_ups, 'follow'))
    hiddenBtn.disabled = q.kind !== 'coding'
  }
  showQuestion(ctx.interview.question)
  void api<QuestionSummary[]>(token, 'GET', '/api/questions').then((qs) => {
    replace(picker, h('option', { value: '' }, '— pick a question —'),
      qs.map((q) => h('option', { value: q.id }, `${q.title} (${q.difficulty}${q.kind === 'discussion' ? ', discussion' : ''})`)))
    picker.value = ctx.interview.question?.id ?? ''
  }).catch((err) => { replace(picker, h('option', { value: '' }, `Question bank: ${explain(err)}`)) })
  switchBtn.addEventListener('click', async () => {
    if (!picker.value) return
    const next = picker.selectedOptions[0]?.textContent ?? picker.value
    if (!confirm(`Switch everyone to ${next}? The code written for the current question is kept and comes back if you switch back to it.`)) return
    try {
      const body: SwitchQuestion = { question_id: picker.value }
      await api(token, 'POST', `${base}/question`, body)
      pickNote.textContent = 'Switched.'
    } catch (err) { pickNote.textContent = `Switch: ${explain(err)}` }
  })
  ctx.onEvent((e: RoomEvent) => {
    switch (e.type) {
      case 'question':
        void api<Interview>(token, 'GET', base).then((iv) => {
          ctx.interview.question = iv.question
          showQuestion(iv.question)
          picker.value = iv.question?.id ?? ''
          replace(lintEl, h('p', { class: 'muted small' }, 'No style check yet for this question.'))
          if (!takeHome) pickNote.textContent = ''
        }).catch(() => {})
        break
      case 'signal':
        addSignal(e.kind, e.size, e.at, true)
        break
      case 'note':
        void loadNotes()
        break
      case 'end':
      case 'scorecard':
      case 'run.started':
      case 'run.queued':
      case 'run.output':
      case 'run.input':
      case 'run.finished':
        break // the room handles runs and the end; the scorecard tab reloads when opened
      default:
        unreachable(e)
    }
  })
  ctx.onLint((findings) => showLint(findings))

  // --- checks
  hiddenBtn.addEventListener('click', () => void ctx.startRun('test'))
  lintBtn.addEventListener('click', () => void ctx.startRun('lint'))
  const showLint = (findings: LintFinding[]) => {
    // Findings per file, each file named (lint covers every .py file).
    const byFile = new Map<string, LintFinding[]>()
    for (const f of findings) byFile.set(f.path, [...(byFile.get(f.path) ?? []), f])
    replace(lintEl, findings.length === 0
      ? h('p', {}, 'No findings.')
      : [...byFile].map(([path, found]) => h('section', { class: 'lint-file', 'data-path': path },
          h('h4', {}, path, h('span', { class: 'muted' }, ` · ${found.length}`)),
          h('ul', { class: 'findings' }, found.map((f) => h('li', {},
            h('button', { type: 'button', class: 'link-button', title: `Show line ${f.line} of ${path}`, onclick: () => ctx.openFile(path, f.line) },
              h('code', {}, `${f.line}:${f.col} ${f.code}`)),
            ' ', f.message))))))
    announce(`Style check: ${findings.length} findings`)
  }

  // --- notes
  const loadNotes = async () => {
    try {
      const notes = await api<Note[]>(token, 'GET', `${base}/notes`)
      replace(notesList, notes.map((n) => h('li', {}, h('time', {}, clock(n.at)), ' ', n.text)))
    } catch (err) { notesNote.textContent = `Notes: ${explain(err)}.` }
  }
  void loadNotes()
  noteInput.addEventListener('keydown', async (e) => {
    if (e.key !== 'Enter' || e.shiftKey) return
    e.preventDefault()
    const text = noteInput.value.trim()
    if (!text) return
    try {
      const body: NewNote = { text }
      await api(token, 'POST', `${base}/notes`, body)
      noteInput.value = ''
      notesNote.textContent = 'Note saved.'
      void loadNotes()
    } catch (err) { notesNote.textContent = `Note not saved: ${explain(err)}` }
  })
  document.addEventListener('keydown', (e) => {
    if (e.altKey && (e.key === 'n' || e.key === 'N' || e.code === 'KeyN')) {
      e.preventDefault(); select(2); noteInput.focus()
    }
  })

  // --- scorecard and end
  const scorecardMounted = mountScorecard(scoreHost, token, base)
  refreshScorecard = async () => (await scorecardMounted)()
  endBtn.addEventListener('click', async () => {
    if (!confirm(endWords)) return
    try {
      await api(token, 'POST', `${base}/end`)
      endNote.textContent = 'The interview has ended.'
      endBtn.disabled = true
    } catch (err) { endNote.textContent = `End interview: ${explain(err)}.` }
    announce(endNote.textContent ?? '')
  })
  ctx.onEnded(() => {
    endBtn.disabled = true
    switchBtn.disabled = true
    hiddenBtn.disabled = true
    lintBtn.disabled = true
    if (!endNote.textContent) endNote.textContent = 'The interview has ended.'
  })
}
