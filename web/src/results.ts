// How a run's result reads to a person: test counts with failures first ("1 failed, 4 passed",
// never "error (exit 1)"), and each limit named with what it is ("stopped after 10 s",
// "output over 1 MiB: the rest was dropped") instead of the wire's status words.
import type { RunKind, RunLimit, RunStatus, TestCounts, TestResults } from './api'
import { h, replace } from './dom'

/**
 * The run output cap for a run recorded before runs kept the limit that stopped them (its
 * record has no `limit`): the documented default (docs/API.md: "over 1 MiB of output").
 */
const OUTPUT_CAP = '1 MiB'

export function bytesText(n: number): string {
  if (n >= 1 << 30 && n % (1 << 30) === 0) return `${n / (1 << 30)} GiB`
  if (n >= 1 << 20) return `${+(n / (1 << 20)).toFixed(1)} MiB`
  if (n >= 1 << 10) return `${+(n / (1 << 10)).toFixed(1)} KiB`
  return `${n} bytes`
}

export function kindLabel(kind: RunKind | string): string {
  return kind === 'test' ? 'Test run' : kind === 'lint' ? 'Style check' : 'Run'
}

/** "1 failed, 1 error, 4 passed, 2 skipped": what went wrong first. */
export function countsText(t: TestCounts): string {
  const parts: string[] = []
  if (t.failed) parts.push(`${t.failed} failed`)
  if (t.errors) parts.push(`${t.errors} ${t.errors === 1 ? 'error' : 'errors'}`)
  parts.push(`${t.passed} passed`)
  if (t.skipped) parts.push(`${t.skipped} skipped`)
  return parts.join(', ')
}

export function seconds(ms: number): string {
  if (ms < 1000) return `${ms} ms`
  const s = ms / 1000
  return `${s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)} s`
}

export interface RunOutcome {
  kind: RunKind | string
  status: RunStatus
  exit_code: number | null
  duration_ms: number | null
  tests: TestCounts | null
  limit?: RunLimit | null
}

/** One line that says how a run ended, for the console, the status line and screen readers. */
export function outcomeText(r: RunOutcome): string {
  const took = r.duration_ms !== null && r.duration_ms !== undefined ? seconds(r.duration_ms) : null
  const tests = r.tests && (r.tests.passed + r.tests.failed + r.tests.errors + r.tests.skipped > 0) ? r.tests : null
  switch (r.status) {
    case 'running': return 'running'
    case 'ok':
      if (tests) return `${tests.passed === 1 ? 'the test' : `all ${tests.passed} tests`} passed${took ? ` in ${took}` : ''}`
      return `ok${took ? ` in ${took}` : ''}`
    case 'error':
      if (tests) return `${countsText(tests)}${took ? ` in ${took}` : ''}`
      if (r.kind === 'test') return `the tests could not run (pytest exit code ${r.exit_code ?? '?'}): see the output above`
      if (r.kind === 'lint') return `the style check failed (exit code ${r.exit_code ?? '?'})`
      return `the program exited with code ${r.exit_code ?? '?'}${took ? ` after ${took}` : ''}`
    case 'timeout': {
      const by = tests ? `; ${countsText(tests)} by then` : ''
      if (r.limit?.kind === 'cpu') return `stopped after ${seconds(r.limit.ms)} of CPU time (the CPU limit)${by}`
      if (r.limit?.kind === 'wall') return `stopped after ${seconds(r.limit.ms)} (the time limit)${by}`
      return `stopped after ${took ?? 'its time limit'} (the time limit)${by}`
    }
    case 'memory_limit':
      if (r.limit?.kind === 'memory') return `stopped: over the ${bytesText(r.limit.bytes)} memory limit${took ? ` (after ${took})` : ''}`
      return `stopped: the program used more memory than it may${took ? ` (after ${took})` : ''}`
    case 'output_limit':
      return `output over ${r.limit?.kind === 'output' ? bytesText(r.limit.bytes) : OUTPUT_CAP}: the rest was dropped and the program stopped`
    case 'cancelled': return `stopped (Stop was pressed or a newer run replaced it)${took ? ` after ${took}` : ''}`
    case 'sandbox_error': return 'the sandbox failed, not the code: run it again'
    default: {
      const never: never = r.status
      return String(never)
    }
  }
}

/** A test id with line-break chances after `::`, `_`, `/`, `.` and `[`, so a long name wraps whole words. */
function breakable(name: string): (string | HTMLElement)[] {
  const out: (string | HTMLElement)[] = []
  for (const part of name.split(/(?<=::|[_/.[])/)) {
    if (out.length) out.push(h('wbr'))
    out.push(part)
  }
  return out
}

const OUTCOME_ORDER: Record<string, number> = { failed: 0, error: 1, skipped: 3, passed: 4 }

/** Test results: the summary, then the cases with failures first and full names. */
export function renderTests(el: HTMLElement, tests: TestResults, hidden: boolean): void {
  const cases = [...tests.cases].sort((a, b) => (OUTCOME_ORDER[a.outcome] ?? 2) - (OUTCOME_ORDER[b.outcome] ?? 2))
  const items = cases.map((c) => h('li', { class: `case case-${c.outcome}` },
    h('span', { class: 'outcome' }, c.outcome === 'passed' ? '✓ passed' : c.outcome === 'failed' ? '✗ failed' : c.outcome === 'error' ? '✗ error' : `– ${c.outcome}`),
    ' ', h('code', { class: 'case-name' }, breakable(c.name)),
    c.message ? h('div', { class: 'message' }, c.message) : null))
  replace(el,
    h('p', { class: 'summary', 'data-testid': 'tests-summary' }, hidden ? 'Including hidden tests: ' : '', countsText(tests)),
    h('ul', { class: 'cases', tabindex: '0', 'aria-label': 'Test cases, failures first' }, items))
}
