// The room page's state, without the page: which question is showing, whether the interview is
// live, ended or this page closed for good, the runs this page knows (numbered as it saw them
// start), the one going on, each run's output decoded as it streams, and the reload restore (a
// run's record with the bytes of each stream it holds, then the socket's output past them). No DOM, no fetch, no
// socket: `RoomState` takes what happened (a socket event, a fetched run, a local action) and
// answers what the view must do, as a list of `ViewCommand`s; `controls()` says what the buttons
// and the editor allow now. room.ts does the I/O and renders from both; test/room-state.test.ts
// tells the stories that broke before, in node without a browser.
import type {
  Actor, LintFinding, QuestionView, Role, RoomEvent, RoomEventOf, RunDetail, RunKind, RunSummary, TestResults,
} from './api'
import type { SaveState } from './saved'
import { OutputText } from './output'
// Only results.ts's text helpers: its DOM rendering (renderTests) stays with the page.
import { kindLabel, outcomeText, type RunOutcome } from './results'

/**
 * The close code the server uses for what will not change by reconnecting: an edit after the
 * end ("the interview has ended") or a link that was replaced by a new one.
 */
export const POLICY_CLOSE = 1008

/**
 * The close code for an update the server refused (a file name outside the rules, a rename
 * onto a file someone else just made): reconnecting would send the same update, refused again.
 */
export const INVALID_PAYLOAD = 1007

/** Live; ended (for everyone, for good); or this page closed by the server (its link replaced). */
export type Phase = 'live' | 'ended' | 'closed'

/** A run as this page knows it: numbered in the order this page saw them start (0: not yet seen). */
export interface RunInfo { id: string; n: number; kind: RunKind; by: Actor; at: number }

/** Where console text goes: the program's streams, what was typed, and the page's own lines. */
export type ConsoleStream = 'stdout' | 'stderr' | 'stdin' | 'info'

/** What the view must do, in order. */
export type ViewCommand =
  /** Append to the console. */
  | { do: 'write'; stream: ConsoleStream; text: string }
  /** Say it to screen readers. */
  | { do: 'announce'; text: string }
  /** Show a test run's results; `hidden` when they include the interviewer's hidden tests. */
  | { do: 'show-tests'; tests: TestResults; hidden: boolean }
  /** The results shown belong to a question no longer asked. */
  | { do: 'clear-tests'; text: string }
  /** A style check's findings (the interviewer's panel shows them). */
  | { do: 'show-lint'; findings: LintFinding[] }
  /** The question switched: fetch it as this role sees it, then call `questionLoaded`. */
  | { do: 'load-question'; event: RoomEventOf<'question'> }
  /** Show this question (the side panel, the candidate's prompt) and the note naming the switch. */
  | { do: 'show-question'; question: QuestionView | null; note: string }
  /** The interview ended: read-only editor, the banner, the indicator that never says Saved. */
  | { do: 'end' }
  /** This page is closed for good (`text` says why): read-only, nothing saved from now on. */
  | { do: 'close'; text: string }
  /** Stop the editor socket from reconnecting: what closed it will not change. */
  | { do: 'disconnect-editor' }
  /** A passing warning about the editor connection (hidden again once it syncs). */
  | { do: 'connection-note'; text: string }

/** What the buttons, the console's input line and the editor allow now. */
export interface Controls {
  run: boolean
  test: boolean
  /** Why Run tests does nothing, or '' when it works. */
  testTitle: string
  stop: boolean
  input: boolean
  editable: boolean
  /**
   * Why Run, REPL, Stop and the input line are off on a page that only watches (staff on a
   * take-home), or ''.
   */
  watchTitle: string
}

/** What a page that only watches a take-home says of the controls it lacks. */
export const WATCH_ONLY_TITLE = 'A take-home is the candidate\'s solo round: you watch it. A run, Stop or input of yours '
  + 'would reach their console (Run tests and Style check stay private to staff).'

export interface RoomStateOptions {
  role: Role
  ended: boolean
  question: QuestionView | null
  /** A time of day for a unix-ms stamp (the page passes `clock`; tests pass a fixed format). */
  clock: (ms: number) => string
  /** Now, in unix ms. */
  now: () => number
  /**
   * The page only watches the code (staff on a take-home, the candidate's solo round: the
   * server drops their edits), so the editor and the board stay read-only.
   */
  watchOnly?: boolean
}

/**
 * Whether a run's fetched record already holds a live output event: the record says how many
 * bytes of each stream it holds, and each event where its bytes start in their stream, so an
 * event that starts before the record's end is shown already and later ones continue it. The
 * one place a reload decides what not to show twice.
 */
export function recordHolds(record: Pick<RunDetail, 'stdout_bytes' | 'stderr_bytes'>, event: RoomEventOf<'run.output'>): boolean {
  return event.offset < (event.stream === 'stdout' ? record.stdout_bytes : record.stderr_bytes)
}

/** The saved indicator's words for a save state, its tone, and whether to say it aloud. */
export function savedLabel(s: SaveState, clock: (ms: number) => string): { text: string; tone: 'ok' | 'warn' | 'ended' | null; announce: boolean } {
  switch (s.kind) {
    case 'saved': return { text: s.at ? `Saved ${clock(s.at)}` : 'Saved', tone: 'ok', announce: false }
    case 'saving': return { text: s.slow ? `Not yet stored by the server (${s.pending} edits)` : 'Saving…', tone: s.slow ? 'warn' : null, announce: false }
    case 'connecting': return { text: s.pending ? `Reconnecting: ${s.pending} edits not saved yet` : 'Connecting…', tone: 'warn', announce: false }
    case 'offline': return { text: s.pending ? `Offline: ${s.pending} edits not saved yet` : 'Offline: reconnecting…', tone: 'warn', announce: true }
    case 'ended': return { text: 'Interview ended: edits are not saved', tone: 'ended', announce: true }
    case 'revoked': return { text: 'Link replaced: edits are not saved', tone: 'ended', announce: true }
    default: {
      const never: never = s
      return never
    }
  }
}

export class RoomState {
  readonly role: Role
  private phaseNow: Phase
  private questionNow: QuestionView | null
  /**
   * The newest question switch this page was told of (the socket tells them in order), so an
   * older switch's slower fetch does not win.
   */
  private newestSwitch: RoomEventOf<'question'> | null = null
  private readonly runs = new Map<string, RunInfo>()
  private runCount = 0
  private active: RunInfo | null = null
  private readonly output = new OutputText()
  /** Events held while the run history loads; null once it has. */
  private queued: RoomEvent[] | null = []
  private history: RunSummary[] = []
  private readonly clock: (ms: number) => string
  private readonly now: () => number
  private readonly watchOnly: boolean

  constructor(o: RoomStateOptions) {
    this.role = o.role
    this.watchOnly = o.watchOnly ?? false
    this.phaseNow = o.ended ? 'ended' : 'live'
    this.questionNow = o.question
    this.clock = o.clock
    this.now = o.now
  }

  get phase(): Phase { return this.phaseNow }
  get question(): QuestionView | null { return this.questionNow }
  /** The run Stop and the input line act on, if one is going on. */
  get activeRunId(): string | null { return this.active?.id ?? null }
  /** Whether the run history is still loading (events wait until it has). */
  get restoring(): boolean { return this.queued !== null }

  controls(): Controls {
    const live = this.phaseNow === 'live'
    const q = this.questionNow
    const coding = q !== null && q.kind === 'coding'
    // A watching page acts on its own (private) runs only, never on the candidate's.
    const theirs = this.watchOnly && this.active !== null && this.active.by === 'candidate'
    return {
      run: live && !this.watchOnly,
      test: live && coding,
      testTitle: coding ? '' : 'This question has no tests',
      stop: live && this.active !== null && !theirs,
      input: live && (this.active?.kind === 'run' || this.active?.kind === 'repl') && !theirs,
      editable: live && !this.watchOnly,
      watchTitle: this.watchOnly ? WATCH_ONLY_TITLE : '',
    }
  }

  /** Whether leaving the page would lose edits the server does not hold yet. */
  leaveLosesEdits(pending: number): boolean {
    return this.phaseNow !== 'ended' && pending > 0
  }

  // --- local actions

  /** Run, Run tests or a style check was asked for: why not, or null to go ahead. */
  refuseRun(): string | null {
    switch (this.phaseNow) {
      case 'live': return null
      case 'ended': return 'The interview has ended: nothing can be run.'
      case 'closed': return 'This page is closed: nothing can be run.'
      default: {
        const never: never = this.phaseNow
        return never
      }
    }
  }

  /**
   * The server accepted a run. Its `run.started` event may come before or after this answer;
   * when after, Stop and the input line act on it already.
   */
  runAccepted(runId: string, kind: RunKind): void {
    if (this.phaseNow !== 'live' || this.runs.has(runId)) return
    this.active = { id: runId, n: 0, kind, by: this.role, at: this.now() }
  }

  /** The editor socket closed with `code` and `reason`. */
  editorClosed(code: number, reason: string): ViewCommand[] {
    if (code === POLICY_CLOSE && /ended/i.test(reason)) {
      // The server refused an edit because the interview is over: stop, and say so.
      return [{ do: 'disconnect-editor' }, ...this.ended()]
    }
    if (code === POLICY_CLOSE) {
      return [{ do: 'disconnect-editor' }, ...this.closed(reason || 'the server closed this page for good')]
    }
    if (code === INVALID_PAYLOAD) {
      // This page's document holds the refused change: every reconnect would send it again.
      return [{ do: 'disconnect-editor' }, {
        do: 'connection-note',
        text: `The server refused a change from this page: ${reason || 'an invalid update'}. What was typed here since is not saved; reload the page to continue from what the server holds.`,
      }]
    }
    if (code !== 1000 && code !== 1001 && code !== 1006 && reason) {
      return [{ do: 'connection-note', text: `The server closed the editor connection: ${reason} (code ${code}). Reconnecting…` }]
    }
    return []
  }

  // --- socket events

  /**
   * An event from the events socket. While the run history loads, events wait and are checked
   * against it; the end never waits.
   */
  event(event: RoomEvent): ViewCommand[] {
    if (this.queued !== null && event.type !== 'end') {
      this.queued.push(event)
      return []
    }
    return this.apply(event)
  }

  private apply(event: RoomEvent): ViewCommand[] {
    switch (event.type) {
      case 'run.started': {
        const r = this.register(event.run_id, event.kind, event.by, event.at)
        this.makeActive(r)
        return [this.startedLine(r), { do: 'announce', text: `${kindLabel(r.kind)} started by the ${r.by}` }]
      }
      case 'run.queued': {
        // Every sandbox slot is taken: both people see the run's place as the queue moves.
        const r = this.runs.get(event.run_id)
        const place = event.ahead > 0 ? `queued, ${event.ahead} ahead` : 'queued, next'
        const text = `${r ? `${kindLabel(r.kind)} #${r.n}` : 'The run'} ${place}`
        return [{ do: 'write', stream: 'info', text: `… ${text}\n` }, { do: 'announce', text }]
      }
      case 'run.output': {
        const text = this.output.push(event.run_id, event.stream, event)
        return text ? [{ do: 'write', stream: event.stream, text }] : []
      }
      case 'run.input':
        // What the other person typed (this page echoes its own as it sends it).
        return event.by !== this.role ? [{ do: 'write', stream: 'stdin', text: event.data }] : []
      case 'run.finished': {
        const r = this.runs.get(event.run_id) ?? this.register(event.run_id, 'run', this.role, this.now())
        const outcome: RunOutcome = {
          kind: r.kind, status: event.status, limit: event.limit, exit_code: event.exit_code,
          duration_ms: event.duration_ms, tests: event.tests,
        }
        const { commands, summary } = this.finished(r, outcome, event.tests, event.lint)
        return [...commands, { do: 'announce', text: summary }]
      }
      case 'question':
        this.newestSwitch = event
        return [{ do: 'load-question', event }]
      case 'end':
        return this.ended()
      case 'scorecard':
      case 'note':
      case 'signal':
        return [] // the interviewer's panel shows these (its own listener)
      default: {
        const never: never = event
        return never
      }
    }
  }

  /** The question a `load-question` asked for, as this role sees it. */
  questionLoaded(question: QuestionView | null, event: RoomEventOf<'question'>): ViewCommand[] {
    if (event !== this.newestSwitch) return [] // a later switch is showing (or on its way)
    this.questionNow = question
    const title = event.title || question?.title || event.question_id
    const note = `The question is now “${title}” (switched at ${this.clock(this.now())}). `
      + (event.restored
        ? 'Its code is back as it was left; the code for the previous question is kept. '
        : 'The editor has its starter code; the code for the previous question is kept. ')
    return [
      { do: 'show-question', question, note },
      // Results of the previous question's tests no longer apply.
      { do: 'clear-tests', text: `No test run yet for “${title}”.` },
      { do: 'announce', text: `The question changed to ${title}` },
    ]
  }

  /** The question shown without a switch (the interviewer's panel set it). */
  questionShown(question: QuestionView | null): void {
    this.questionNow = question
  }

  // --- the reload restore

  /**
   * The run history, whole (every page): the runs are numbered from it. Answers the runs whose
   * records the page must fetch for `historyLoaded`: the last run (its output, and its finish
   * or that it is still going on), the last finished test run (the results panel) and the last
   * finished style check, when they are not the last run.
   */
  historyListed(history: RunSummary[]): string[] {
    this.history = history
    for (const r of history) this.register(r.run_id, r.kind, r.by, r.started_at)
    const last = history[history.length - 1]
    if (!last) return []
    const wanted = [last.run_id]
    for (const kind of ['test', 'lint'] as const) {
      const newest = [...history].reverse().find((x) => x.kind === kind && x.status !== 'running')
      if (newest && newest.run_id !== last.run_id) wanted.push(newest.run_id)
    }
    return wanted
  }

  /**
   * The records `historyListed` asked for. Shows the last run as it is now, then the events
   * that came while they loaded, less what the records already hold.
   */
  historyLoaded(details: RunDetail[]): ViewCommand[] {
    const commands: ViewCommand[] = []
    const last = this.history[this.history.length - 1]
    const record = last ? details.find((d) => d.run_id === last.run_id) : undefined
    if (last && record) {
      const r = this.runs.get(last.run_id)!
      commands.push({ do: 'write', stream: 'info', text: '(restored) ' }, this.startedLine(r))
      // Decoded as live output is, by the same decoders (the streams one after the other).
      const out = this.output.push(r.id, 'stdout', { data: record.stdout, base64: record.stdout_base64 })
      if (out) commands.push({ do: 'write', stream: 'stdout', text: out })
      const err = this.output.push(r.id, 'stderr', { data: record.stderr, base64: record.stderr_base64 })
      if (err) commands.push({ do: 'write', stream: 'stderr', text: err })
      if (record.stdout_truncated || record.stderr_truncated) commands.push({ do: 'write', stream: 'info', text: '\n[output cut at the output limit]\n' })
      if (record.status === 'running') this.makeActive(r)
      else commands.push(...this.finished(r, record, record.tests, record.lint).commands)
      for (const d of details) {
        if (d.run_id === last.run_id) continue
        // The test results panel shows the last test run, even if a program ran after it.
        if (d.tests) commands.push({ do: 'show-tests', tests: d.tests, hidden: d.by === 'interviewer' && this.role === 'interviewer' })
        if (d.lint) commands.push({ do: 'show-lint', findings: d.lint })
      }
    }
    const listed = new Map(this.history.map((s) => [s.run_id, s]))
    const queued = this.queued ?? []
    this.queued = null
    for (const event of queued) {
      if (this.shownAlready(event, listed, record)) continue
      commands.push(...this.apply(event))
    }
    return commands
  }

  /** The history could not be loaded: what `message` says, then the events that waited. */
  historyFailed(message: string): ViewCommand[] {
    const commands: ViewCommand[] = [{ do: 'write', stream: 'info', text: `[the run history could not be loaded: ${message}]\n` }]
    const queued = this.queued ?? []
    this.queued = null
    for (const event of queued) commands.push(...this.apply(event))
    return commands
  }

  /**
   * Whether an event that came while the history loaded is in what the page showed from it:
   * a listed run's start; the output and finish of the last run as its record had them; the
   * output of an older run (its output is not shown) and the finish of one listed as finished.
   */
  private shownAlready(event: RoomEvent, listed: Map<string, RunSummary>, record: RunDetail | undefined): boolean {
    switch (event.type) {
      case 'run.started':
        return listed.has(event.run_id)
      case 'run.output':
        if (!listed.has(event.run_id)) return false
        if (record?.run_id !== event.run_id) return true
        return record.status !== 'running' || recordHolds(record, event)
      case 'run.finished': {
        const summary = listed.get(event.run_id)
        if (!summary) return false
        if (record?.run_id === event.run_id) return record.status !== 'running'
        return summary.status !== 'running'
      }
      case 'run.queued': {
        // A place in the queue is news only while the run has not finished.
        const summary = listed.get(event.run_id)
        return summary !== undefined && summary.status !== 'running'
      }
      case 'run.input':
      case 'question':
      case 'end':
      case 'scorecard':
      case 'note':
      case 'signal':
        return false
      default: {
        const never: never = event
        return never
      }
    }
  }

  // --- helpers

  private register(runId: string, kind: RunKind, by: Actor, at: number): RunInfo {
    let info = this.runs.get(runId)
    if (!info) {
      this.runCount += 1
      info = { id: runId, n: this.runCount, kind, by, at }
      this.runs.set(runId, info)
    }
    return info
  }

  private makeActive(r: RunInfo): void {
    if (this.phaseNow === 'live') this.active = r
  }

  private startedLine(r: RunInfo): ViewCommand {
    return { do: 'write', stream: 'info', text: `▶ ${kindLabel(r.kind)} #${r.n} started by the ${r.by} at ${this.clock(r.at)}\n` }
  }

  /** The console's finish line for `r` and what else its end shows; `summary` is the line's words. */
  private finished(r: RunInfo, outcome: RunOutcome, tests: TestResults | null, lint: LintFinding[] | null | undefined): { commands: ViewCommand[]; summary: string } {
    const commands: ViewCommand[] = []
    for (const rest of this.output.finish(r.id)) commands.push({ do: 'write', stream: rest.stream === 'stderr' ? 'stderr' : 'stdout', text: rest.text })
    if (this.active?.id === r.id) this.active = null
    // Every finish line names its run, so an older run's "cancelled" never reads as the newer one's.
    const summary = `${kindLabel(r.kind)} #${r.n} (started ${this.clock(r.at)}) finished: ${outcomeText(outcome)}`
    commands.push({ do: 'write', stream: 'info', text: `\n■ ${summary}\n` })
    if (tests) commands.push({ do: 'show-tests', tests, hidden: r.kind === 'test' && r.by === 'interviewer' && this.role === 'interviewer' })
    if (lint) commands.push({ do: 'show-lint', findings: lint })
    return { commands, summary }
  }

  private ended(): ViewCommand[] {
    if (this.phaseNow === 'ended') return []
    this.phaseNow = 'ended'
    this.active = null
    return [{ do: 'end' }, { do: 'announce', text: 'This interview has ended.' }]
  }

  private closed(reason: string): ViewCommand[] {
    if (this.phaseNow === 'live') this.phaseNow = 'closed' // an ended interview stays ended
    this.active = null
    const text = `This page is closed: ${reason}. Nothing typed here from now on is saved.`
    return [{ do: 'close', text }, { do: 'announce', text }]
  }
}
