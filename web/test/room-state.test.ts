// The room page's state (src/room-state.ts) told as the stories that broke trust before: the end
// arriving while the candidate types, a switch away from a question and back, a reload in the
// middle of a run, output split inside a UTF-8 character, a run stopped by a limit. A small fake
// page (below) carries out what the state asks of the view, so each test reads what a person
// would see: the console's text, the results panel, the banner, the buttons.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { QuestionView, RoomEvent, RoomEventOf, RunDetail, RunSummary, TestResults } from '../src/api'
import type { Role, RunKind, RunLimit, RunStatus } from '../src/api'
import { RoomState, WATCH_ONLY_TITLE, recordHolds, savedLabel, type ViewCommand } from '../src/room-state'

// --- a fake page: what the view would show after carrying out the state's commands

class Page {
  console = ''
  stderr = ''
  announced: string[] = []
  tests: { tests: TestResults; hidden: boolean } | string = 'No test run yet.'
  lint: unknown[] | null = null
  ended = 0
  closed: string | null = null
  editorDisconnected = false
  questionNote: string | null = null
  shownQuestion: QuestionView | null | undefined = undefined
  loads: RoomEventOf<'question'>[] = []
  connectionNote: string | null = null

  constructor(readonly state: RoomState) {}

  show(commands: ViewCommand[]): this {
    for (const c of commands) {
      switch (c.do) {
        case 'write':
          this.console += c.text
          if (c.stream === 'stderr') this.stderr += c.text
          break
        case 'announce': this.announced.push(c.text); break
        case 'show-tests': this.tests = { tests: c.tests, hidden: c.hidden }; break
        case 'clear-tests': this.tests = c.text; break
        case 'show-lint': this.lint = c.findings; break
        case 'load-question': this.loads.push(c.event); break
        case 'show-question': this.shownQuestion = c.question; this.questionNote = c.note; break
        case 'end': this.ended += 1; break
        case 'close': this.closed = c.text; break
        case 'disconnect-editor': this.editorDisconnected = true; break
        case 'connection-note': this.connectionNote = c.text; break
        default: {
          const never: never = c
          throw new Error(`unhandled ${JSON.stringify(never)}`)
        }
      }
    }
    return this
  }

  /** A socket event arrives. */
  event(e: RoomEvent): this { return this.show(this.state.event(e)) }

  /** Finish lines in the console, in order. */
  finishLines(): string[] { return this.console.split('\n').filter((l) => l.startsWith('■ ')) }
}

// --- the room and its events

const T0 = Date.UTC(2025, 0, 6, 10, 0, 0)
const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19)

const lru: QuestionView = {
  id: 'lru-cache', title: 'LRU cache', kind: 'coding', difficulty: 'medium',
  prompt: 'Write an LRU cache.', environment: 'python', entry: 'main.py',
  visible_tests: { 'test_visible.py': 'def test_get(): ...' },
}
const essay: QuestionView = {
  id: 'design-chat', title: 'Design a chat service', kind: 'discussion', difficulty: 'hard',
  prompt: 'How would you build it?', environment: 'python', entry: 'main.py', visible_tests: {},
}

function open(o: { role?: Role; ended?: boolean; question?: QuestionView | null; restoring?: boolean; watchOnly?: boolean } = {}): Page {
  const state = new RoomState({
    role: o.role ?? 'candidate', ended: o.ended ?? false, question: o.question === undefined ? lru : o.question,
    clock, now: () => T0 + 60_000, watchOnly: o.watchOnly,
  })
  const page = new Page(state)
  // Most stories start after the (empty) history loaded; reload stories load it themselves.
  if (!o.restoring) {
    state.historyListed([])
    page.show(state.historyLoaded([]))
  }
  return page
}

// Events as the candidate's page receives them: the record's time and author, no log seq.
const started = (run_id: string, o: { kind?: RunKind; by?: Role; at?: number } = {}): RoomEvent =>
  ({ type: 'run.started', run_id, kind: o.kind ?? 'run', by: o.by ?? 'candidate', at: o.at ?? T0 })
const bytes = (...b: number[]) => Buffer.from(b).toString('base64')
/** Output whose bytes start at `offset` in their stream. */
const out = (offset: number, run_id: string, data: string, stream: 'stdout' | 'stderr' = 'stdout'): RoomEvent =>
  ({ type: 'run.output', at: T0, by: 'candidate', offset, run_id, stream, data })
const outBytes = (offset: number, run_id: string, base64: string, stream: 'stdout' | 'stderr' = 'stdout'): RoomEvent =>
  ({ type: 'run.output', at: T0, by: 'candidate', offset, run_id, stream, base64 })
const finished = (run_id: string, status: RunStatus, o: { limit?: RunLimit; tests?: TestResults; exit_code?: number; duration_ms?: number } = {}): RoomEvent =>
  ({ type: 'run.finished', at: T0, by: 'candidate', run_id, status, limit: o.limit ?? null, exit_code: o.exit_code ?? null, duration_ms: o.duration_ms ?? 1200, tests: o.tests ?? null, lint: null })
const question = (q: QuestionView, restored: boolean): RoomEventOf<'question'> =>
  ({ type: 'question', at: T0, question_id: q.id, title: q.title, by: 'interviewer', restored })
const end = (): RoomEvent => ({ type: 'end', at: T0 + 30 * 60_000, by: 'interviewer' })

const results = (passed: number, failed: number): TestResults =>
  ({ passed, failed, errors: 0, skipped: 0, cases: [{ name: 'test_visible.py::test_get', outcome: failed ? 'failed' : 'passed', message: null }] })

/** A run of the history as the candidate lists it (no log seqs); `n` places it in time. */
function summary(run_id: string, n: number, o: { kind?: RunKind; by?: Role; status?: RunStatus; at?: number } = {}): RunSummary {
  const status = o.status ?? 'ok'
  return {
    run_id, kind: o.kind ?? 'run', by: o.by ?? 'candidate', environment: 'python', started_at: o.at ?? T0 + n * 1000,
    finished_at: status === 'running' ? null : T0 + n * 1000 + 500, status, exit_code: null,
    duration_ms: status === 'running' ? null : 500, limit: null,
  }
}

/** The bytes a stream's text or base64 holds. */
const held = (text: string | null, base64: string | undefined) =>
  text !== null ? Buffer.byteLength(text) : Buffer.from(base64 ?? '', 'base64').length

/** A run's record: each stream's byte count is what its output holds. */
function record(s: RunSummary, o: Partial<RunDetail> = {}): RunDetail {
  const r: RunDetail = {
    ...s, code: 'print("hi")\n', stdout: '', stderr: '', stdout_truncated: false, stderr_truncated: false,
    stdout_bytes: 0, stderr_bytes: 0, tests: null, ...o,
  }
  return { ...r, stdout_bytes: held(r.stdout, r.stdout_base64), stderr_bytes: held(r.stderr, r.stderr_base64) }
}

// --- the end

test('the end arriving while the candidate types ends the page: read-only, nothing runs, and the refused late edit ends nothing twice', () => {
  const page = open()
  assert.equal(page.state.controls().editable, true)
  page.event(started('r1'))
  assert.deepEqual({ stop: page.state.controls().stop, input: page.state.controls().input }, { stop: true, input: true })

  page.event(end())
  assert.equal(page.ended, 1, 'the page shows the end')
  assert.ok(page.announced.includes('This interview has ended.'))
  assert.equal(page.state.phase, 'ended')
  assert.deepEqual(page.state.controls(), { run: false, test: false, testTitle: '', stop: false, input: false, editable: false, watchTitle: '' })
  assert.equal(page.state.activeRunId, null, 'Stop and the input line act on nothing')
  assert.equal(page.state.refuseRun(), 'The interview has ended: nothing can be run.')

  // The keystroke typed as the end arrived reaches the server after it: refused with 1008.
  page.show(page.state.editorClosed(1008, 'the interview has ended'))
  assert.equal(page.editorDisconnected, true, 'the editor stops reconnecting')
  assert.equal(page.ended, 1, 'the end is shown once')
  assert.equal(page.closed, null, 'an ended page is not "closed for good" as a replaced link is')

  // What the server said before the end no longer opens anything.
  page.state.runAccepted('r2', 'run')
  page.event(end())
  assert.equal(page.ended, 1)
  assert.equal(page.state.controls().stop, false)
  assert.equal(page.state.leaveLosesEdits(3), false, 'leaving an ended room loses nothing the server would keep')
})

test('staff watching a take-home cannot run, stop or type into the candidate\'s program; their private checks still run and stop', () => {
  const page = open({ role: 'interviewer', watchOnly: true })
  assert.deepEqual(page.state.controls(), { run: false, test: true, testTitle: '', stop: false, input: false, editable: false, watchTitle: WATCH_ONLY_TITLE })
  assert.match(WATCH_ONLY_TITLE, /solo round/)

  // The candidate runs their program: the watching page sees it, and cannot stop it or type into it.
  page.event(started('r1'))
  assert.match(page.console, /▶ Run #1 started/)
  assert.deepEqual({ stop: page.state.controls().stop, input: page.state.controls().input }, { stop: false, input: false })
  page.event(finished('r1', 'ok'))

  // Their own test run (private, with the hidden tests) is theirs to stop.
  page.state.runAccepted('r2', 'test')
  assert.equal(page.state.controls().stop, true)

  // The candidate's page of the same round keeps every control.
  const theirs = open()
  theirs.event(started('r3'))
  assert.deepEqual(theirs.state.controls(), { run: true, test: true, testTitle: '', stop: true, input: true, editable: true, watchTitle: '' })
})

test('an edit refused after an end this page missed ends the page', () => {
  const page = open()
  page.show(page.state.editorClosed(1008, 'the interview has ended'))
  assert.equal(page.ended, 1)
  assert.equal(page.state.controls().editable, false)
})

test('a room opened after the end is read-only from the start', () => {
  const page = open({ ended: true })
  assert.equal(page.state.phase, 'ended')
  assert.equal(page.state.controls().editable, false)
  assert.equal(page.state.controls().run, false)
})

test('the end does not wait for the run history to load', () => {
  const page = open({ restoring: true })
  page.event(started('r1'))
  page.event(end())
  assert.equal(page.ended, 1, 'ended at once')
  assert.equal(page.console, '', 'run events still wait for the history')
})

test('an end during the reload, then the start of a run that waited: nothing is left running', () => {
  const page = open({ restoring: true })
  page.state.historyListed([])
  page.event(started('r1'))
  page.event(end())
  page.show(page.state.historyLoaded([]))
  assert.match(page.console, /▶ Run #1 started/, 'the start is still told')
  assert.equal(page.state.activeRunId, null, 'but Stop and the input line act on nothing')
  assert.equal(page.state.controls().input, false)
})

test('a change the server refuses (1007) stops the editor reconnecting, which would send it again, and says to reload', () => {
  const page = open()
  page.show(page.state.editorClosed(1007, '"shop/cart.py" already exists: a file cannot be renamed or moved onto it'))
  assert.equal(page.editorDisconnected, true)
  assert.match(page.connectionNote ?? '', /^The server refused a change from this page: "shop\/cart.py" already exists.*reload the page/)
  // The interview goes on: runs still start from what the server holds.
  assert.equal(page.state.phase, 'live')
  assert.equal(page.state.refuseRun(), null)
})

test('a replaced link closes the page for good; other closes only warn', () => {
  const page = open()
  page.show(page.state.editorClosed(1011, 'not saved: storage failed (disk full); reconnect'))
  assert.match(page.connectionNote ?? '', /disk full.*\(code 1011\)\. Reconnecting/)
  assert.equal(page.state.phase, 'live')
  page.show(page.state.editorClosed(1006, ''))
  assert.equal(page.state.phase, 'live')

  page.show(page.state.editorClosed(1008, 'this link was replaced by a new one; ask for the new link'))
  assert.equal(page.editorDisconnected, true)
  assert.equal(page.state.phase, 'closed')
  assert.match(page.closed ?? '', /^This page is closed: this link was replaced.*Nothing typed here from now on is saved\.$/)
  assert.equal(page.state.controls().editable, false)
  assert.equal(page.state.refuseRun(), 'This page is closed: nothing can be run.')
  assert.equal(page.ended, 0)
})

// --- questions

test('a switch away and back: the note says starter code, then that the code is back; old results go', () => {
  const page = open({ role: 'interviewer' })
  page.event(started('t1', { kind: 'test' }))
  page.event(finished('t1', 'error', { tests: results(3, 1) }))
  assert.equal(typeof page.tests, 'object', 'the test results show')

  const away = question(essay, false)
  page.event(away)
  assert.deepEqual(page.loads, [away], 'the page fetches the question as its role sees it')
  page.show(page.state.questionLoaded(essay, away))
  assert.equal(page.shownQuestion, essay)
  assert.match(page.questionNote ?? '', /^The question is now “Design a chat service” \(switched at 10:01:00\)\. The editor has its starter code/)
  assert.equal(page.tests, 'No test run yet for “Design a chat service”.')
  assert.equal(page.state.controls().test, false, 'a discussion question has no tests')
  assert.equal(page.state.controls().testTitle, 'This question has no tests')

  const back = question(lru, true)
  page.event(back)
  page.show(page.state.questionLoaded(lru, back))
  assert.match(page.questionNote ?? '', /^The question is now “LRU cache” .*Its code is back as it was left/)
  assert.ok(page.announced.includes('The question changed to LRU cache'))
  assert.equal(page.state.controls().test, true)
})

test('two quick switches: the first one\'s slower answer does not replace the second', () => {
  const page = open()
  const first = question(essay, false)
  const second = question(lru, true)
  page.event(first)
  page.event(second)
  page.show(page.state.questionLoaded(lru, second))
  page.show(page.state.questionLoaded(essay, first))
  assert.equal(page.state.question, lru)
  assert.equal(page.shownQuestion, lru)
  assert.match(page.questionNote ?? '', /LRU cache/)
})

// --- a reload in the middle of a run

test('a reload mid-run: the output so far once, what overlapped the fetch not twice, what came after appended, and the finish that came during the fetch', () => {
  const page = open({ restoring: true })
  const testRun = summary('t1', 3, { kind: 'test', status: 'error' })
  const running = summary('r2', 10, { status: 'running' })
  assert.deepEqual(page.state.historyListed([testRun, running]), ['r2', 't1'], 'the running run and the last test run are fetched')

  // While the records load, the socket goes on: the start it had sent before the listing, two
  // chunks the record will hold, one after it, what the interviewer typed, and the finish (Stop
  // was pressed).
  page.event(started('r2', { at: T0 + 10_000 }))
  page.event(out(0, 'r2', 'ready\n'))
  page.event(out(6, 'r2', 'name? '))
  page.event(out(12, 'r2', 'hello Grace\n'))
  page.event({ type: 'run.input', at: T0, run_id: 'r2', by: 'interviewer', data: 'Grace\n', eof: false })
  page.event(finished('r2', 'cancelled', { duration_ms: 4000 }))
  assert.equal(page.console, '', 'nothing shows before the history')

  page.show(page.state.historyLoaded([
    record(running, { stdout: 'ready\nname? ' }),
    record(testRun, { tests: results(4, 1) }),
  ]))
  assert.equal(page.console,
    '(restored) ▶ Run #2 started by the candidate at 10:00:10\n'
    + 'ready\nname? '
    + 'hello Grace\n'
    + 'Grace\n'
    + '\n■ Run #2 (started 10:00:10) finished: stopped (Stop was pressed or a newer run replaced it) after 4 s\n')
  assert.deepEqual(page.tests, { tests: results(4, 1), hidden: false }, 'the last test results are back')
  assert.equal(page.state.activeRunId, null, 'the finish is not lost')
  assert.equal(page.state.controls().stop, false)
})

test('a reload mid-run: the run goes on, Stop and the input line work, and later output continues it', () => {
  const page = open({ restoring: true })
  const running = summary('r1', 4, { status: 'running' })
  page.state.historyListed([running])
  page.event(out(0, 'r1', 'name? '))
  page.show(page.state.historyLoaded([record(running, { stdout: 'name? ' })]))
  assert.equal(page.state.activeRunId, 'r1')
  assert.deepEqual({ stop: page.state.controls().stop, input: page.state.controls().input }, { stop: true, input: true })

  page.event(out(6, 'r1', 'hello Ada\n'))
  page.event(finished('r1', 'ok', { exit_code: 0, duration_ms: 300 }))
  assert.equal(page.console.split('name? ').length - 1, 1, 'the output so far shows once')
  assert.match(page.console, /name\? hello Ada\n\n■ Run #1 \(started 10:00:04\) finished: ok in 300 ms\n$/)
  assert.equal(page.state.activeRunId, null)
})

test('a reload just as the run finishes: the record already has the finish, so the late event does not repeat it', () => {
  const page = open({ restoring: true })
  // Listed as running; by the time its record is read it has finished.
  const listed = summary('r1', 4, { status: 'running' })
  page.state.historyListed([listed])
  page.event(out(0, 'r1', 'done\n'))
  page.event(finished('r1', 'ok', { exit_code: 0 }))
  page.show(page.state.historyLoaded([record({ ...listed, status: 'ok', exit_code: 0, duration_ms: 90 }, { stdout: 'done\n' })]))
  assert.equal(page.console.split('done').length - 1, 1)
  assert.equal(page.finishLines().length, 1, `one finish line: ${page.console}`)
  assert.equal(page.state.activeRunId, null)
})

test('runs that started while the history loaded show whole, numbered after the listed ones', () => {
  const page = open({ restoring: true })
  const old = summary('r1', 2, { status: 'ok' })
  page.state.historyListed([old])
  page.event(out(0, 'r1', 'old output\n')) // an older run's output: not shown
  page.event(started('r2', { at: T0 + 20_000 }))
  page.event(out(0, 'r2', 'new\n'))
  page.event(finished('r2', 'ok', { exit_code: 0, duration_ms: 50 }))
  page.show(page.state.historyLoaded([record(old, { stdout: 'first\n' })]))
  assert.doesNotMatch(page.console, /old output/)
  assert.match(page.console, /^\(restored\) ▶ Run #1 .*\nfirst\n\n■ Run #1 .*finished: ok/)
  assert.match(page.console, /▶ Run #2 started by the candidate at 10:00:20\nnew\n\n■ Run #2 \(started 10:00:20\) finished: ok in 50 ms\n$/)
})

test('a history that cannot load says so, then shows the events that waited', () => {
  const page = open({ restoring: true })
  page.event(started('r1'))
  page.show(page.state.historyFailed('the server cannot be reached'))
  assert.match(page.console, /^\[the run history could not be loaded: the server cannot be reached\]\n▶ Run #1 started/)
  assert.equal(page.state.restoring, false)
})

test('a record holds the live output that starts before its byte count of that stream, and nothing after', () => {
  const chunk = (offset: number, stream: 'stdout' | 'stderr' = 'stdout') => out(offset, 'r1', 'x', stream) as RoomEventOf<'run.output'>
  const holding = { stdout_bytes: 12, stderr_bytes: 3 }
  assert.equal(recordHolds(holding, chunk(0)), true)
  assert.equal(recordHolds(holding, chunk(11)), true)
  assert.equal(recordHolds(holding, chunk(12)), false, 'the first byte past the record continues it')
  assert.equal(recordHolds(holding, chunk(2, 'stderr')), true, 'each stream counts apart')
  assert.equal(recordHolds(holding, chunk(3, 'stderr')), false)
})

// --- output split inside a character

test('a character split across two output events reads whole; stdout and stderr decode apart', () => {
  const page = open()
  page.event(started('r1'))
  // "é" is C3 A9, "€" is E2 82 AC: each written in two pieces, the streams interleaved.
  page.event(outBytes(0, 'r1', bytes(0x68, 0xc3)))
  page.event(outBytes(0, 'r1', bytes(0xe2, 0x82), 'stderr'))
  page.event(outBytes(2, 'r1', bytes(0xa9, 0x0a)))
  page.event(outBytes(2, 'r1', bytes(0xac, 0x0a), 'stderr'))
  assert.match(page.console, /hé\n€\n$/)
  assert.equal(page.stderr, '€\n')
  assert.doesNotMatch(page.console, /\uFFFD/)
})

test('a character split between the fetched record and the next event reads whole after a reload', () => {
  const page = open({ restoring: true })
  const running = summary('r1', 4, { status: 'running' })
  page.state.historyListed([running])
  page.show(page.state.historyLoaded([record(running, { stdout: null, stdout_base64: bytes(0x70, 0x72, 0x69, 0x63, 0x65, 0x20, 0xe2, 0x82) })]))
  page.event(outBytes(8, 'r1', bytes(0xac, 0x0a)))
  assert.match(page.console, /price €\n$/)
})

test('a character cut short by the end of the run reads as one replacement character', () => {
  const page = open()
  page.event(started('r1'))
  page.event(outBytes(0, 'r1', bytes(0x61, 0xe2, 0x82)))
  page.event(finished('r1', 'error', { exit_code: 1 }))
  assert.match(page.console, /a\uFFFD\n■ Run #1/)
})

// --- limits and finish lines

test('a run stopped by a limit says which limit, live and after a reload', () => {
  const page = open()
  page.event(started('r1'))
  page.event(finished('r1', 'timeout', { limit: { kind: 'cpu', ms: 10_000 }, duration_ms: 10_400 }))
  page.event(started('r2'))
  page.event(finished('r2', 'memory_limit', { limit: { kind: 'memory', bytes: 256 << 20 }, duration_ms: 800 }))
  assert.deepEqual(page.finishLines(), [
    '■ Run #1 (started 10:00:00) finished: stopped after 10 s of CPU time (the CPU limit)',
    '■ Run #2 (started 10:00:00) finished: stopped: over the 256 MiB memory limit (after 800 ms)',
  ])
  assert.ok(page.announced.includes('Run #1 (started 10:00:00) finished: stopped after 10 s of CPU time (the CPU limit)'))

  const reloaded = open({ restoring: true })
  const flood = { ...summary('r1', 2, { status: 'output_limit' }), limit: { kind: 'output', bytes: 1 << 20 } as RunLimit }
  reloaded.state.historyListed([flood])
  reloaded.show(reloaded.state.historyLoaded([record(flood, { stdout: 'y\ny\n', stdout_truncated: true })]))
  assert.match(reloaded.console, /y\ny\n\n\[output cut at the output limit\]\n/)
  assert.deepEqual(reloaded.finishLines(), ['■ Run #1 (started 10:00:02) finished: output over 1 MiB: the rest was dropped and the program stopped'])
})

test('a run waiting for a sandbox shows its place as the queue moves, then runs as usual', () => {
  const page = open()
  page.event(started('r1'))
  page.event({ type: 'run.queued', at: T0, by: 'candidate', run_id: 'r1', ahead: 2 })
  page.event({ type: 'run.queued', at: T0, by: 'candidate', run_id: 'r1', ahead: 0 })
  page.event(out(0, 'r1', 'hi\n'))
  page.event(finished('r1', 'ok'))
  assert.match(page.console, /Run #1 queued, 2 ahead\n… Run #1 queued, next\nhi\n/)
  assert.ok(page.announced.includes('Run #1 queued, 2 ahead'))
})

test('a newer run replaces a running one: the old one\'s finish names the old run and leaves the new one running', () => {
  const page = open()
  page.event(started('r1', { at: T0 + 1000 }))
  page.event(started('r2', { at: T0 + 2000 }))
  page.event(finished('r1', 'cancelled', { duration_ms: 1500 }))
  assert.deepEqual(page.finishLines(), ['■ Run #1 (started 10:00:01) finished: stopped (Stop was pressed or a newer run replaced it) after 1.5 s'])
  assert.equal(page.state.activeRunId, 'r2')
})

test('the interviewer\'s own test run shows its results as including the hidden tests; the candidate\'s does not', () => {
  const page = open({ role: 'interviewer' })
  page.event(started('t1', { kind: 'test', by: 'interviewer' }))
  page.event(finished('t1', 'ok', { tests: results(5, 0) }))
  assert.deepEqual(page.tests, { tests: results(5, 0), hidden: true })
  page.event(started('t2', { kind: 'test', by: 'candidate' }))
  page.event(finished('t2', 'error', { tests: results(2, 1) }))
  assert.deepEqual(page.tests, { tests: results(2, 1), hidden: false })
})

test('what the other person types shows; this page\'s own typing is not echoed twice', () => {
  const page = open({ role: 'candidate' })
  page.event(started('r1'))
  page.event({ type: 'run.input', at: T0, run_id: 'r1', by: 'candidate', data: 'mine\n', eof: false })
  page.event({ type: 'run.input', at: T0, run_id: 'r1', by: 'interviewer', data: 'theirs\n', eof: false })
  assert.doesNotMatch(page.console, /mine/)
  assert.match(page.console, /theirs\n$/)
})

// --- the saved indicator

test('the saved indicator never says Saved once the interview ended or the link was replaced', () => {
  assert.deepEqual(savedLabel({ kind: 'saved', at: T0 }, clock), { text: 'Saved 10:00:00', tone: 'ok', announce: false })
  assert.deepEqual(savedLabel({ kind: 'offline', pending: 2 }, clock), { text: 'Offline: 2 edits not saved yet', tone: 'warn', announce: true })
  assert.deepEqual(savedLabel({ kind: 'ended', pending: 0 }, clock), { text: 'Interview ended: edits are not saved', tone: 'ended', announce: true })
  assert.deepEqual(savedLabel({ kind: 'revoked', pending: 1 }, clock), { text: 'Link replaced: edits are not saved', tone: 'ended', announce: true })
})
