// Talking to the server: the token (taken from the URL fragment and kept for this tab only),
// JSON requests with it as a bearer header, and errors that carry the status and the server's
// code. The page is served by the server it talks to, so every endpoint it calls exists.
// With no token (''), a request goes on the staff member's session cookie; every request
// carries `X-Duet-Csrf: 1`, which the server requires of a write the cookie authenticates.

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message)
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
  const headers: Record<string, string> = { 'X-Duet-Csrf': '1' }
  if (token) headers.Authorization = `Bearer ${token}`
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
  if (err instanceof ApiError) return err.message
  return String(err)
}

// ---------------------------------------------------------------------------------------------
// Wire types. Generated from the Rust types in crates/protocol into src/gen/ by
// scripts/gen-types (ts-rs reads their serde attributes, so each type is the JSON field for
// field; scripts/test fails when src/gen/ is stale). Never edit src/gen/: change the Rust type
// and regenerate. The names the pages know are kept here as aliases.
// ---------------------------------------------------------------------------------------------

export type {
  Actor, Area, CandidateQuestion, CreateInterview, CreatedInterview, Difficulty, ErrorBody, Evidence,
  Hints, InterviewStatus, InterviewSummary, Level, LintFinding, NewNote, NewSignal, Note, PerRole,
  Question, QuestionKind, QuestionSummary, QuestionView, Recommendation, Role, RoomEvent, RunDetail,
  RunKind, RunLimit, RunPage, RunStatus, RunStdin, RunSummary, Scorecard, ScorecardUpdate, SignalKind,
  Snapshot, StartRun, Stream, SwitchQuestion, TestCaseResult, TestCounts, TestResults, Timeline,
  TimelineEvent,
} from './gen'
import type {
  Area, Author, Hints, InterviewId, InterviewStatus, InterviewView, Recommendation, RoomEvent,
  RunKind, RunStatus, Role, Scorecard,
} from './gen'

/** `InterviewView`: `GET /api/interviews/{id}` as one role sees it. */
export type Interview = InterviewView

// Not generated yet: these bodies are declared in crates/server and crates/core, not in
// crates/protocol, so ts-rs cannot see them. Written here to match their serde output exactly;
// they become aliases when the types move into the protocol crate.

/** One run as the scorecard lists it, to attach as evidence (server `scorecard_api::RunSummary`). */
export interface ScorecardRun {
  run_id: string
  kind: RunKind
  by: Role
  at: number
  status: RunStatus
  tests_passed: number | null
  /** Failed plus errors. */
  tests_failed: number | null
}
/** One area of the rubric, with what a 1 to a 4 looks like (core `scorecard::Anchors`). */
export interface RubricArea { area: Area; title: string; levels: [string, string, string, string] }
/** The question's private guidance, served with the scorecard (server `scorecard_api::Guidance`). */
export interface Guidance { question_id: string; title: string; hints: Hints; follow_ups: string[] }
/** `GET /api/interviews/{id}/scorecard` (server `scorecard_api::ScorecardView`). */
/** `GET /api/interviews/{id}/scorecard` (server `ScorecardView`): `author` is whose card it is. */
export interface ScorecardAnswer { scorecard: Scorecard; author: Author; rubric: RubricArea[]; runs: ScorecardRun[]; question: Guidance | null }

/** One interview of a debrief; a scorecard not yet submitted is null (server `DebriefEntry`). */
export interface DebriefRow { interview_id: InterviewId; title: string; question_id: string | null; status: InterviewStatus; scorecard: Scorecard | null }
/** Per area, the rating each interview gave, in the order of `interviews` (server `AreaRow`). */
export interface DebriefAreaRow { area: Area; ratings: (number | null)[] }
/** `GET /api/interviews/{id}/debrief` and `GET /api/candidates/{ref}/debrief` (server `Debrief`). */
export interface Debrief { candidate_ref: string; interviews: DebriefRow[]; ratings: DebriefAreaRow[]; recommendations: (Recommendation | null)[]; rubric: RubricArea[] }

export type RoomEventOf<T extends RoomEvent['type']> = Extract<RoomEvent, { type: T }>

/** For the `default` of a switch over a union: the compiler fails here when a case is missing. */
export function unreachable(value: never): void {
  void value
}
