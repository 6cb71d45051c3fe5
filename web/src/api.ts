// Talking to the server: the token (taken from the URL fragment and kept for this tab only),
// JSON requests with it as a bearer header, and errors that carry the status so pages can say
// "not available on this server yet" when an endpoint answers 404.

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message)
  }
  get missing(): boolean {
    return this.status === 404 && this.code === 'not_found' && /no such endpoint/.test(this.message)
  }
}

/**
 * The token for this page. A link carries it as `#token=…` (a fragment is never sent to a
 * server nor in a Referer); it moves to sessionStorage (this tab only, survives a reload) and is
 * taken out of the address bar at once, so it is not left in the history, a screenshot or a
 * screen share.
 */
export function takeToken(scope: string): string | null {
  const key = `duet.token.${scope}`
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash)
  if (match) {
    sessionStorage.setItem(key, decodeURIComponent(match[1]))
    history.replaceState(null, '', location.pathname + location.search)
  }
  return sessionStorage.getItem(key)
}

export async function api<T>(token: string, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` }
  if (body !== undefined) headers['Content-Type'] = 'application/json'
  let response: Response
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      referrerPolicy: 'no-referrer',
    })
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached')
  }
  if (response.status === 204) return undefined as T
  const text = await response.text()
  let data: unknown = null
  try { data = text ? JSON.parse(text) : null } catch { data = null }
  if (!response.ok) {
    const err = (data as { error?: { code?: string; message?: string } } | null)?.error
    throw new ApiError(response.status, err?.code ?? 'http', err?.message ?? `HTTP ${response.status}`)
  }
  return data as T
}

export function wsBase(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`
}

/** A message for a failed request that a person can act on. */
export function explain(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.missing) return 'not available on this server yet'
    return err.message
  }
  return String(err)
}

// ---------------------------------------------------------------------------------------------
// Wire types. Every type the server sends lives here, written to match the Rust types in
// crates/protocol/src/lib.rs field for field (the serde names). When they are generated from
// Rust (ts-rs into src/gen/), this block is what gets replaced: nothing else declares them.
// ---------------------------------------------------------------------------------------------

/** `Role`: who a token speaks for. */
export type Role = 'interviewer' | 'candidate' | 'reviewer'
/** `Actor`: who caused an event (a participant or the server itself). */
export type Actor = Role | 'server'
/** `InterviewStatus`. */
export type InterviewStatus = 'scheduled' | 'live' | 'ended'
/** `RunKind`. */
export type RunKind = 'run' | 'test' | 'lint'
/** `Stream`. */
export type Stream = 'stdout' | 'stderr'
/** `RunStatus`: how a run ended; `running` only in histories and timelines. */
export type RunStatus = 'running' | 'ok' | 'error' | 'timeout' | 'memory_limit' | 'output_limit' | 'cancelled' | 'sandbox_error'
/** `RunLimit`: the limit that stopped a run, with its value (servers before it send none). */
export type RunLimit =
  | { kind: 'wall'; ms: number }
  | { kind: 'cpu'; ms: number }
  | { kind: 'output'; bytes: number }
  | { kind: 'memory'; bytes: number }
/** `SignalKind`. */
export type SignalKind = 'paste' | 'blur'

export interface QuestionPublic {
  id: string
  title: string
  kind: 'coding' | 'discussion'
  difficulty: string
  prompt: string
  visible_tests?: string
}

export interface QuestionFull extends QuestionPublic {
  tags?: string[]
  areas?: string[]
  starter?: string
  solution?: string
  hidden_tests?: string
  hints?: { strong?: string[]; red_flags?: string[] }
  follow_ups?: string[]
}

/** `InterviewView`: `GET /api/interviews/{id}` as one role sees it. */
export interface Interview {
  id: string
  title: string
  candidate_name: string
  role: Role
  created_at: number
  status: InterviewStatus
  question: QuestionFull | null
}

/** `TestCaseResult`; `outcome` is pytest's: passed, failed, error or skipped. */
export interface TestCase { name: string; outcome: string; message: string | null }
/** `TestResults`. */
export interface TestResults { passed: number; failed: number; errors: number; skipped: number; cases: TestCase[] }
/** `TestCounts`: the results without the cases (run histories). */
export interface TestCounts { passed: number; failed: number; errors: number; skipped: number }
/** `LintFinding`. */
export interface LintFinding { line: number; col: number; code: string; message: string }

/** `RunSummary`: one run in `GET /api/interviews/{id}/runs`. */
export interface RunSummary {
  run_id: string
  kind: RunKind
  by: Role
  seq: number
  started_at: number
  finished_at: number | null
  status: RunStatus
  exit_code: number | null
  duration_ms: number | null
  code_seq: number
  tests: TestCounts | null
  limit?: RunLimit | null
}

/** `RunPage`: one page of the run history, oldest first. */
export interface RunPage { runs: RunSummary[]; next: number | null }

/** `RunDetail`: `GET /api/interviews/{id}/runs/{run_id}`, the run whole. */
export interface RunDetail extends Omit<RunSummary, 'tests'> {
  code: string
  stdout: string
  stderr: string
  stdout_truncated: boolean
  stderr_truncated: boolean
  tests: TestResults | null
  lint?: LintFinding[]
}

/** `RoomEvent`: what the events socket says, one JSON frame per event, tagged by `type`. */
export type RoomEvent =
  | { type: 'run.started'; seq: number; run_id: string; kind: RunKind; by: Role; at: number }
  | { type: 'run.output'; seq: number; run_id: string; stream: Stream; data: string }
  | { type: 'run.input'; seq: number; run_id: string; by: Role; data: string; eof: boolean }
  | { type: 'run.finished'; seq: number; run_id: string; status: RunStatus; limit?: RunLimit | null; exit_code: number | null; duration_ms: number; tests: TestResults | null; lint: LintFinding[] | null }
  | { type: 'question'; seq: number; question_id: string; title: string; by: Actor; restored: boolean }
  | { type: 'scorecard'; seq: number; action: string; version: number }
  | { type: 'note'; seq: number; at: number; text: string }
  | { type: 'signal'; seq: number; kind: SignalKind; size: number | null; at: number }
  | { type: 'end'; seq: number; at: number }

/** `TimelineEvent`: one entry of `GET /api/interviews/{id}/timeline`, tagged by `type`. */
export type TimelineEvent =
  | { type: 'edit'; seq: number; at: number; by: Actor; last_seq: number; last_at: number; edits: number }
  | { type: 'join'; seq: number; at: number; by: Actor }
  | { type: 'leave'; seq: number; at: number; by: Actor }
  | { type: 'question'; seq: number; at: number; by: Actor; question_id: string; title: string | null }
  | { type: 'note'; seq: number; at: number; by: Actor; text: string }
  | { type: 'scorecard'; seq: number; at: number; by: Actor; action: string }
  | { type: 'signal'; seq: number; at: number; by: Actor; kind: SignalKind; size: number | null }
  | { type: 'end'; seq: number; at: number; by: Actor }
  | { type: 'run.started'; seq: number; at: number; run_id: string; kind: RunKind; by: Role; code_seq: number; private: boolean }
  | { type: 'run.finished'; seq: number; at: number; run_id: string; kind: RunKind; by: Role; status: RunStatus; limit?: RunLimit | null; exit_code: number | null; duration_ms: number; tests: TestCounts | null }

/** `Timeline`. */
export interface Timeline { started_at: number; ended_at: number; last_seq: number; events: TimelineEvent[] }
/** `Snapshot`: the files at one moment. */
export interface Snapshot { seq: number; at: number; files: Record<string, string> }

/** `QuestionSummary`: one question of the bank in `GET /api/questions`. */
export interface QuestionSummary { id: string; title: string; kind: 'coding' | 'discussion'; difficulty: string; tags?: string[]; areas?: string[] }
/** `PerRole`. */
export interface PerRole { interviewer: string; candidate: string; reviewer: string }
/** `CreatedInterview`: the answer to `POST /api/interviews`. */
export interface CreatedInterview { id: string; tokens: PerRole; urls: PerRole }
/** `InterviewSummary`: one row of `GET /api/interviews` (admin). */
export interface InterviewSummary {
  id: string
  title: string
  candidate_name: string
  created_at: number
  candidate_ref: string | null
  question_id: string | null
  status: InterviewStatus
}

/** `Area`: the scorecard's five areas. */
export type Area = 'coding_quality' | 'system_design' | 'debugging' | 'collaboration' | 'production_experience'
/** `Evidence`: a run of this interview (by id) or a moment of it (a log seq). */
export type Evidence = string | number
/** `Scorecard`, as stored and served. */
export interface Scorecard {
  ratings: Record<string, number | null>
  notes: string
  recommendation: string | null
  level: string | null
  evidence: Record<string, Evidence[]>
  version: number
  updated_at?: number | null
  submitted_at?: number | null
}
/** One run as the scorecard lists it, to attach as evidence. */
export interface ScorecardRun { run_id: string; kind: RunKind; by: Role; at?: number; status: RunStatus; tests_passed?: number | null; tests_failed?: number | null }
/** One area of the rubric, with what a 1 to a 4 looks like. */
export interface RubricArea { area: string; title: string; levels: string[] }
/** `GET /api/interviews/{id}/scorecard`. */
export interface ScorecardAnswer { scorecard: Scorecard; rubric?: RubricArea[]; runs?: ScorecardRun[] }
/** `Note`: a private note. */
export interface Note { text: string; at: number; seq: number }

/** One interview of a debrief; a scorecard not yet submitted is null. */
export interface DebriefRow { interview_id: string; title: string; question_id?: string | null; status?: InterviewStatus; scorecard: Scorecard | null }
/** `GET /api/interviews/{id}/debrief` and `GET /api/candidates/{ref}/debrief`. */
export interface Debrief { candidate_ref: string; interviews: DebriefRow[] }

export type RoomEventOf<T extends RoomEvent['type']> = Extract<RoomEvent, { type: T }>

/** For the `default` of a switch over a union: the compiler fails here when a case is missing. */
export function unreachable(value: never): void {
  void value
}
