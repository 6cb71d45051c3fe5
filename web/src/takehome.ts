// A take-home, as its candidate sees it: the start page (the question's title, the time limit,
// what is recorded, a check that the editor and a run work), then the room with a countdown
// from the server's deadline and Submit, then a page that says only "submitted".
//
// The clock is the server's: the countdown is the deadline minus the server's time now, which
// the page reads as its own clock plus the offset measured when it loaded the round (the
// server's `server_now`, taken at the middle of the request). At the deadline the server
// submits by itself, page open or not; the page then shows the submitted page when the room
// tells it the interview ended (or, if that does not arrive, when the round's view says so).
//
// Staff (the interviewer's page) watch a take-home read-only: the server drops their edits, so
// the room keeps their editor, files and board read-only and has no Run, REPL, or Stop or input
// for the candidate's program (room-state.ts's `watchOnly`; staff's private checks stay), the
// panel cannot switch the question (interviewer.ts), each control says why, and
// `mountStaffBanner` says it above the room, with the round's stage and its countdown.
import * as Y from 'yjs'
import { api, explain } from './api'
import type { Interview } from './api'
import type { TakeHomeCheck, TakeHomeStarted, TakeHomeSubmitted, TakeHomeView } from './gen'
import { h, page, replace, announce, dateTime } from './dom'
import type { RoomContext } from './room'

/** Warnings before the deadline, in minutes. */
const WARN_AT = [10, 2]

export async function openTakeHome(id: string, token: string, interview: Interview): Promise<void> {
  const base = `/api/interviews/${encodeURIComponent(id)}`
  const sent = Date.now()
  const round = await api<TakeHomeView>(token, 'GET', `${base}/take-home`)
  // The server's clock minus this page's, at the middle of the request.
  const offset = round.server_now - (sent + Date.now()) / 2
  switch (round.stage) {
    case 'not_started': return startPage(base, token, round)
    case 'running': return roundPage(id, base, token, interview, round, offset)
    case 'submitted': return submittedPage(round)
  }
}

function startPage(base: string, token: string, round: TakeHomeView): void {
  const checkOut = h('pre', { class: 'code-block take-home-check-out', 'data-testid': 'check-output', hidden: true })
  const checkNote = h('p', { class: 'muted', role: 'status', 'data-testid': 'check-note' }, 'Not checked yet.')
  const checkBtn = h('button', { type: 'button', 'data-testid': 'check' }, 'Check that runs work')
  const startBtn = h('button', { type: 'button', class: 'primary', 'data-testid': 'start' }, `Start: ${round.time_limit_minutes} minutes`)
  const startNote = h('p', { class: 'muted', role: 'status' })
  const editorHost = h('div', { class: 'editor take-home-scratch', 'data-testid': 'scratch-editor' })
  page(round.title,
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'),
      h('h1', {}, round.title, h('span', { class: 'muted' }, ` · ${round.candidate_name}`)),
      h('span', { class: 'badge' }, 'Take-home')),
    h('section', { class: 'panel narrow take-home-start', 'aria-labelledby': 'th-h', 'data-testid': 'start-page' },
      h('h2', { id: 'th-h' }, round.question_title ?? 'Your take-home'),
      h('p', { 'data-testid': 'time-limit' },
        h('strong', {}, `You have ${round.time_limit_minutes} minutes`),
        ' from when you press Start. The clock is the server\'s: it does not run now, and it does not stop if you close the page. ',
        'At the limit, what you have written is submitted for you. You can also submit early.'),
      h('h3', {}, 'What is recorded'),
      h('ul', { 'data-testid': 'recorded' }, round.recorded.map((r) => h('li', {}, r))),
      h('h3', {}, 'Check your setup'),
      h('p', { class: 'muted small' }, 'Type in this scratch editor to see that the editor works here (nothing of it is kept), then check that a program runs.'),
      editorHost,
      h('div', { class: 'toolbar' }, checkBtn),
      checkNote, checkOut,
      h('div', { class: 'toolbar' }, startBtn), startNote))
  void import('./editor').then(({ createEditor }) => {
    createEditor({ parent: editorHost, path: 'scratch.py', ytext: new Y.Doc().getText('scratch.py'), awareness: null, readOnly: false, label: () => 'A scratch editor, to try the editor' })
  }).catch((err) => { replace(editorHost, h('p', { class: 'banner warn', role: 'alert' }, `The editor could not load: ${explain(err)}`)) })
  checkBtn.addEventListener('click', async () => {
    checkBtn.disabled = true
    checkNote.textContent = 'Running a small program…'
    try {
      const checked = await api<TakeHomeCheck>(token, 'POST', `${base}/take-home/check`)
      checkOut.hidden = false
      checkOut.textContent = checked.output
      checkNote.textContent = checked.ok ? `Runs work (${checked.duration_ms} ms).` : 'The program did not run as it should: tell the team who sent you the link.'
      checkNote.className = checked.ok ? 'banner ok' : 'banner warn'
    } catch (err) {
      checkNote.textContent = `The check failed: ${explain(err)}`
      checkNote.className = 'banner warn'
    } finally {
      checkBtn.disabled = false
      announce(checkNote.textContent ?? '')
    }
  })
  startBtn.addEventListener('click', async () => {
    startBtn.disabled = true
    try {
      await api<TakeHomeStarted>(token, 'POST', `${base}/start`)
      location.reload() // the round's page, from the server's state
    } catch (err) {
      startNote.textContent = `Could not start: ${explain(err)}`
      announce(startNote.textContent)
      startBtn.disabled = false
    }
  })
  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

async function roundPage(id: string, base: string, token: string, interview: Interview, round: TakeHomeView, offset: number): Promise<void> {
  const started = round.started
  if (!started) return submittedPage(round)
  let done = false
  const finish = async () => {
    if (done) return
    done = true
    window.clearInterval(timer)
    try {
      submittedPage(await api<TakeHomeView>(token, 'GET', `${base}/take-home`))
    } catch {
      submittedPage({ ...round, stage: 'submitted', question: null })
    }
  }
  const { openRoom } = await import('./room')
  await openRoom(id, token, interview, { onEnded: () => void finish() })
  if (done) return

  const left = h('span', { class: 'take-home-left', role: 'timer', 'aria-live': 'off', 'data-testid': 'countdown' })
  const warning = h('p', { class: 'banner warn', role: 'alert', hidden: true, 'data-testid': 'take-home-warning' })
  const submitBtn = h('button', { type: 'button', class: 'primary', 'data-testid': 'submit' }, 'Submit')
  const confirmBox = h('div', { class: 'take-home-confirm', role: 'group', 'aria-label': 'Confirm the submit', hidden: true, 'data-testid': 'confirm' },
    h('span', {}, 'Submit now? Your code is final after this.'),
    h('button', { type: 'button', class: 'primary', 'data-testid': 'confirm-submit' }, 'Yes, submit'),
    h('button', { type: 'button', 'data-testid': 'keep-working' }, 'Keep working'))
  const note = h('span', { class: 'muted small', role: 'status' })
  const bar = h('div', { class: 'take-home-bar', 'data-testid': 'take-home-bar' },
    h('span', {}, 'Time left: '), left, submitBtn, confirmBox, note)
  const topbar = document.querySelector('.topbar')
  topbar?.after(bar, warning)

  const warned = new Set<number>()
  const tick = () => {
    const ms = Math.max(0, started.deadline - (Date.now() + offset))
    left.textContent = remaining(ms)
    bar.classList.toggle('urgent', ms <= 2 * 60_000)
    for (const minutes of WARN_AT) {
      if (ms <= minutes * 60_000 && ms > 0 && !warned.has(minutes)) {
        WARN_AT.filter((m) => m >= minutes).forEach((m) => warned.add(m))
        warning.hidden = false
        warning.textContent = `${minutes} minutes left: what you have written is submitted automatically at the limit.`
        announce(warning.textContent)
      }
    }
    if (ms === 0) {
      warning.hidden = false
      warning.textContent = 'Time is up: your code is being submitted.'
      // The server submits at the deadline; if the room's end has not reached this page in a
      // few seconds, the round's view says how it stands.
      window.setTimeout(() => {
        void api<TakeHomeView>(token, 'GET', `${base}/take-home`).then((r) => { if (r.stage === 'submitted') void finish() }).catch(() => {})
      }, 5_000)
      window.clearInterval(timer)
    }
  }
  const timer = window.setInterval(tick, 1_000)
  tick()

  submitBtn.addEventListener('click', () => { confirmBox.hidden = false; submitBtn.hidden = true })
  confirmBox.querySelector('[data-testid="keep-working"]')?.addEventListener('click', () => { confirmBox.hidden = true; submitBtn.hidden = false })
  confirmBox.querySelector('[data-testid="confirm-submit"]')?.addEventListener('click', async () => {
    note.textContent = 'Submitting…'
    try {
      await api<TakeHomeSubmitted>(token, 'POST', `${base}/submit`)
    } catch (err) {
      // A refusal says what happened (submitted at the limit, or before): show the round.
      note.textContent = explain(err)
    }
    void finish()
  })
}

function submittedPage(round: TakeHomeView): void {
  const s = round.submitted
  page(round.title,
    h('header', { class: 'topbar' }, h('span', { class: 'brand' }, 'Duet'),
      h('h1', {}, round.title, h('span', { class: 'muted' }, ` · ${round.candidate_name}`)),
      h('span', { class: 'badge' }, 'Take-home')),
    h('section', { class: 'panel narrow', 'aria-labelledby': 'sub-h', 'data-testid': 'submitted-page' },
      h('h2', { id: 'sub-h' }, 'Submitted'),
      h('p', {}, s
        ? s.reason === 'time_limit'
          ? `Your take-home was submitted automatically at the time limit (${dateTime(s.deadline)}).`
          : `You submitted your take-home at ${dateTime(s.at)}.`
        : 'Your take-home was submitted.'),
      h('p', {}, 'Thank you! The team will review it and get back to you. You can close this page.')))
  announce('Your take-home was submitted.')
  ;(window as unknown as { duetReady?: boolean }).duetReady = true
}

/** How often a staff page asks whether a round not started yet has started. */
const STAFF_POLL_MS = 15_000

/**
 * The banner above a take-home's room on the interviewer's page: the candidate's solo round,
 * read-only for staff, where it stands (not started, running with its countdown, submitted and
 * why). It reads the round's view on load, every `STAFF_POLL_MS` until the candidate starts,
 * and again when the room ends (a submit ends it).
 */
export function mountStaffBanner(ctx: RoomContext): void {
  const base = `/api/interviews/${encodeURIComponent(ctx.interview.id)}`
  const stage = h('span', { 'data-testid': 'take-home-stage' }, 'Loading where the round stands…')
  const banner = h('div', { class: 'banner take-home-staff', role: 'status', 'data-testid': 'take-home-staff' },
    h('strong', {}, 'Take-home: the candidate\'s solo round. '),
    'You watch read-only: the code is theirs alone. ', stage)
  document.querySelector('.topbar')?.after(banner)
  let timer = 0
  let poll = 0
  const show = (round: TakeHomeView, offset: number) => {
    window.clearInterval(timer)
    window.clearTimeout(poll)
    switch (round.stage) {
      case 'not_started':
        stage.textContent = 'Not started: the clock starts when the candidate presses Start.'
        poll = window.setTimeout(() => void load(), STAFF_POLL_MS)
        return
      case 'running': {
        const started = round.started
        if (!started) return
        const tick = () => {
          const ms = Math.max(0, started.deadline - (Date.now() + offset))
          stage.textContent = `Running: ${remaining(ms)} left (until ${dateTime(started.deadline)}).`
          if (ms === 0) window.clearInterval(timer)
        }
        timer = window.setInterval(tick, 1_000)
        tick()
        return
      }
      case 'submitted': {
        const s = round.submitted
        stage.textContent = !s
          ? 'Submitted.'
          : s.reason === 'time_limit'
            ? `Submitted automatically at the time limit (${dateTime(s.at)}).`
            : `Submitted by the candidate at ${dateTime(s.at)}.`
        return
      }
    }
  }
  const load = async () => {
    const sent = Date.now()
    try {
      const round = await api<TakeHomeView>(ctx.token, 'GET', `${base}/take-home`)
      show(round, round.server_now - (sent + Date.now()) / 2)
    } catch (err) {
      stage.textContent = `Where the round stands could not be read: ${explain(err)}.`
    }
  }
  // onEnded calls back at once when the room has ended already: then that is the first load.
  let loading = false
  ctx.onEnded(() => { loading = true; void load() })
  if (!loading) void load()
}

/** `mm:ss`, or `h:mm:ss` from an hour. */
function remaining(ms: number): string {
  const total = Math.ceil(ms / 1000)
  const hours = Math.floor(total / 3600)
  const minutes = Math.floor((total % 3600) / 60)
  const seconds = total % 60
  const two = (n: number) => String(n).padStart(2, '0')
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${two(minutes)}:${two(seconds)}`
}
