// Renders bench/run.sh results as one Markdown table: node bench/report.mjs OUT_DIR SCENARIO...
import { readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'

const [dir, ...scenarios] = process.argv.slice(2)
const TITLES = {
  a: 'a. 1 room x 2 clients, 20 edits/s each',
  b: 'b. burst, 1 room x 4 clients, 64 in flight each',
  e: 'e. burst, 1 room x 4 clients, open loop',
  c: 'c. 500 rooms x 3 clients, 5 edits/s each',
  d: 'd. idle rooms, 1 client + 1 edit each'
}

const load = (name) => {
  const file = join(dir, `${name}.json`)
  if (!existsSync(file)) return null
  const text = readFileSync(file, 'utf8').trim()
  try { return text ? JSON.parse(text) : null } catch { return null }
}

// Prometheus text -> { name or name{labels}: number }
const prom = (file) => {
  const out = {}
  if (!existsSync(file)) return out
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out[line.slice(0, i)] = Number(line.slice(i + 1))
  }
  return out
}

// Duet's own counters over the run: updates persisted and the persist-latency histogram.
const duetMetrics = (s) => {
  const a = prom(join(dir, `${s}-duet.metrics-before`))
  const b = prom(join(dir, `${s}-duet.metrics-after`))
  if (!Object.keys(b).length) return null
  const d = (k) => (b[k] ?? 0) - (a[k] ?? 0)
  const buckets = Object.keys(b).filter((k) => k.startsWith('duet_persist_latency_seconds_bucket'))
    .map((k) => ({ le: k.match(/le="([^"]+)"/)[1], n: d(k) }))
    .map(({ le, n }) => ({ le: le === '+Inf' ? Infinity : Number(le), n }))
    .sort((x, y) => x.le - y.le)
  const count = d('duet_persist_latency_seconds_count')
  const q = (p) => {
    const want = p * count
    const hit = buckets.find((x) => x.n >= want)
    return hit ? (hit.le === Infinity ? '>1000' : `<= ${hit.le * 1000}`) : 'n/a'
  }
  return {
    persisted: d('duet_updates_persisted_total'),
    closedByServer: d('duet_connections_closed_by_server_total'),
    persistP50: count ? q(0.5) : 'n/a',
    persistP99: count ? q(0.99) : 'n/a'
  }
}

const fmt = (v, digits = 2) => {
  if (v === null || v === undefined || Number.isNaN(v)) return 'n/a'
  if (typeof v === 'string') return v
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US')
  return v.toFixed(digits)
}
const ratio = (a, b) => (typeof a === 'number' && typeof b === 'number' && b !== 0 ? `${(a / b).toFixed(2)}x` : '')
const closes = (r) => {
  if (!r) return 'n/a'
  const all = { ...(r.closed_by_server ?? {}), ...(r.connect_errors ?? {}), ...(r.read_errors ?? {}), ...(r.errors ?? {}) }
  const parts = Object.entries(all).map(([k, n]) => `${n} x ${k.replace(/\|/g, '/')}`)
  return parts.length ? parts.join('; ') : 'none'
}
const others = (r) => (r && r.machine_cpu_percent != null ? Math.max(0, r.machine_cpu_percent - (r.server?.cpu_percent ?? 0) - (r.loadgen_cpu_percent ?? 0)) : null)

const rows = []
// One row: Duet, the reference, y-sweet, then Duet / ref and Duet / y-sweet.
let Y = null
const row = (scenario, metric, duet, ref, target = '', showRatio = true, ys = undefined) =>
  rows.push(`| ${scenario} | ${metric} | ${fmt(duet)} | ${fmt(ref)} | ${fmt(ys)} | ${showRatio ? ratio(duet, ref) : ''} | ${showRatio ? ratio(duet, ys) : ''} | ${target} |`)

for (const s of scenarios) {
  const D = load(`${s}-duet`)
  const R = load(`${s}-ref`)
  Y = load(`${s}-ysweet`)
  const title = TITLES[s] ?? s
  // r3(f): the same figure f of all three servers, in one row.
  const r3 = (scenario, metric, f, target = '', showRatio = true) => row(scenario, metric, f(D), f(R), target, showRatio, f(Y))
  if (s === 'd') {
    r3(title, 'KB per idle room (RSS growth / rooms)', (x) => x?.kb_per_room, '< 30 KB')
    r3('', 'rooms connected', (x) => x?.connected, '', false)
    r3('', 'server RSS before -> after, MB', (x) => (x ? `${fmt(x.rss_kb_before / 1024, 1)} -> ${fmt(x.rss_kb_after / 1024, 1)}` : null), '', false)
    r3('', 'server CPU % while idle', (x) => x?.server?.cpu_percent, '', false)
    r3('', 'errors', closes, '', false)
    continue
  }
  const burst = s === 'b' || s === 'e'
  // Issue 8's targets, each against the reference in the same run.
  const target = {
    a: ['<= reference p50', '< 2 ms'],
    b: ['', '', '>= reference'],
    c: ['<= 1.5x reference p50', '< 25 ms']
  }[s] ?? ['', '']
  r3(title, 'fan-out p50, ms', (x) => x?.latency_ms?.p50, target[0])
  r3('', 'fan-out p90, ms', (x) => x?.latency_ms?.p90)
  r3('', 'fan-out p99, ms', (x) => x?.latency_ms?.p99, target[1])
  r3('', 'fan-out max, ms', (x) => x?.latency_ms?.max)
  r3('', s === 'e' ? 'edits written to sockets /s (buffered, not absorbed)' : 'edits sent /s', (x) => x?.sent_per_sec)
  r3('', 'updates delivered /s', (x) => x?.delivered_per_sec)
  if (burst) {
    const absorbed = (r) => (r ? r.delivered_per_sec / Math.max(1, r.clients - 1) : null)
    r3('', 'updates absorbed /s (delivered / receivers)', absorbed, target[2] ?? '')
  }
  r3('', 'undelivered at the end', (x) => x?.undelivered, '', false)
  r3('', 'server CPU %', (x) => x?.server?.cpu_percent)
  r3('', 'server RSS at end, MB', (x) => (x ? x.server?.rss_kb_end / 1024 : null))
  r3('', 'loadgen CPU % / other processes CPU %', (x) => (x ? `${fmt(x.loadgen_cpu_percent, 0)} / ${fmt(others(x), 0)}` : null), '', false)
  r3('', 'connections closed / errors', closes, '', false)
  const m = duetMetrics(s)
  if (m) {
    row('', 'Duet: updates persisted / edits sent (whole run)', `${fmt(m.persisted)} / ${fmt(D?.sent_total)}`, '(memory only)', '', false, '(memory only)')
    row('', 'Duet: persist latency p50 / p99, ms (histogram bucket)', `${m.persistP50} / ${m.persistP99}`, '', '', false, '')
  }
}

console.log('| Scenario | Metric | Duet | Reference | y-sweet | Duet / ref | Duet / y-sweet | Target |')
console.log('|---|---|---|---|---|---|---|---|')
for (const r of rows) console.log(r)
console.log('')
console.log('Reference: @y/websocket-server 0.1.1 (yjs 13, Node ' + process.version + '), in memory, no persistence.')
console.log('y-sweet 0.9.1 (Rust, yrs), `y-sweet serve` without a store: in memory, no persistence.')
console.log('Duet persists every update (SQLite WAL) before it forwards it. Latencies: lower is better;')
console.log('loadgen and servers share the same 2 cores; "other processes" is machine CPU not used by either.')
