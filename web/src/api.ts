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
  | { type: 'run.finished'; seq: number; run_id: string; status: RunStatus; exit_code: number | null; duration_ms: number; tests: TestResults | null; lint: LintFinding[] | null }
  | { type: 'question'; seq: number; question_id: string; by: Actor }
  | { type: 'scorecard'; seq: number; action: string; version: number }
  | { type: 'note'; seq: number; at: number; text: string }
  | { type: 'signal'; seq: number; kind: SignalKind; size: number | null; at: number }
  | { type: 'end'; seq: number; at: number }

export type RoomEventOf<T extends RoomEvent['type']> = Extract<RoomEvent, { type: T }>

/** For the `default` of a switch over a union: the compiler fails here when a case is missing. */
export function unreachable(value: never): void {
  void value
}
