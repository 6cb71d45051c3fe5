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

export type Role = 'interviewer' | 'candidate' | 'reviewer'

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

export interface Interview {
  id: string
  title: string
  candidate_name: string
  role: Role
  created_at: number
  status?: string
  question: QuestionFull | null
}

export interface TestCase { name: string; outcome: string; message?: string | null }
export interface TestResults { passed: number; failed: number; errors: number; skipped: number; cases: TestCase[] }
export interface LintFinding { line: number; col: number; code: string; message: string }

export interface RunRecord {
  run_id: string
  kind: string
  by: string
  started_at: number
  finished_at?: number | null
  status: string
  exit_code?: number | null
  duration_ms?: number | null
  stdout?: string
  stderr?: string
  tests?: TestResults | null
  lint?: LintFinding[] | null
}

export type RoomEvent =
  | { type: 'run.started'; seq: number; run_id: string; kind: string; by: string; at: number }
  | { type: 'run.output'; seq: number; run_id: string; stream: 'stdout' | 'stderr'; data: string }
  | { type: 'run.finished'; seq: number; run_id: string; status: string; exit_code: number | null; duration_ms?: number; tests: TestResults | null; lint?: LintFinding[] | null }
  | { type: 'question'; seq: number; question_id: string; by: string }
  | { type: string; seq?: number; [key: string]: unknown }
