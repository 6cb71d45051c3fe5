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
const row = (scenario, metric, duet, ref, target = '', showRatio = true) =>
  rows.push(`| ${scenario} | ${metric} | ${fmt(duet)} | ${fmt(ref)} | ${showRatio ? ratio(duet, ref) : ''} | ${target} |`)

for (const s of scenarios) {
  const D = load(`${s}-duet`)
  const R = load(`${s}-ref`)
  const title = TITLES[s] ?? s
  if (s === 'd') {
    row(title, 'KB per idle room (RSS growth / rooms)', D?.kb_per_room, R?.kb_per_room, '< 30 KB')
    row('', 'rooms connected', D?.connected, R?.connected, '', false)
    row('', 'server RSS before -> after, MB', D ? `${fmt(D.rss_kb_before / 1024, 1)} -> ${fmt(D.rss_kb_after / 1024, 1)}` : null,
      R ? `${fmt(R.rss_kb_before / 1024, 1)} -> ${fmt(R.rss_kb_after / 1024, 1)}` : null, '', false)
    row('', 'server CPU % while idle', D?.server?.cpu_percent, R?.server?.cpu_percent, '', false)
    row('', 'errors', closes(D), closes(R), '', false)
    continue
  }
  const burst = s === 'b' || s === 'e'
  const target = { a: ['< 0.15 ms', '< 2 ms'], c: ['', '< 25 ms'] }[s] ?? ['', '']
  row(title, 'fan-out p50, ms', D?.latency_ms?.p50, R?.latency_ms?.p50, target[0])
  row('', 'fan-out p90, ms', D?.latency_ms?.p90, R?.latency_ms?.p90)
  row('', 'fan-out p99, ms', D?.latency_ms?.p99, R?.latency_ms?.p99, target[1])
  row('', 'fan-out max, ms', D?.latency_ms?.max, R?.latency_ms?.max)
  row('', s === 'e' ? 'edits written to sockets /s (buffered, not absorbed)' : 'edits sent /s', D?.sent_per_sec, R?.sent_per_sec)
  row('', 'updates delivered /s', D?.delivered_per_sec, R?.delivered_per_sec)
  if (burst) {
    const absorbed = (r) => (r ? r.delivered_per_sec / Math.max(1, r.clients - 1) : null)
    row('', 'updates absorbed /s (delivered / receivers)', absorbed(D), absorbed(R), '>= 30,000')
  }
  row('', 'undelivered at the end', D?.undelivered, R?.undelivered, '', false)
  row('', 'server CPU %', D?.server?.cpu_percent, R?.server?.cpu_percent)
  row('', 'server RSS at end, MB', D?.server?.rss_kb_end / 1024, R?.server?.rss_kb_end / 1024)
  row('', 'loadgen CPU % / other processes CPU %', D ? `${fmt(D.loadgen_cpu_percent, 0)} / ${fmt(others(D), 0)}` : null,
    R ? `${fmt(R.loadgen_cpu_percent, 0)} / ${fmt(others(R), 0)}` : null, '', false)
  row('', 'connections closed / errors', closes(D), closes(R), '', false)
  const m = duetMetrics(s)
  if (m) {
    row('', 'Duet: updates persisted / edits sent (whole run)', `${fmt(m.persisted)} / ${fmt(D?.sent_total)}`, '(memory only)', '', false)
    row('', 'Duet: persist latency p50 / p99, ms (histogram bucket)', `${m.persistP50} / ${m.persistP99}`, '', '', false)
  }
}

console.log('| Scenario | Metric | Duet | Reference | Duet / ref | Target |')
console.log('|---|---|---|---|---|---|')
for (const r of rows) console.log(r)
console.log('')
console.log('Reference: @y/websocket-server 0.1.1 (yjs 13, Node ' + process.version + '), in memory, no persistence.')
console.log('Duet persists every update (SQLite WAL) before it forwards it. Latencies: lower is better;')
console.log('loadgen and servers share the same 2 cores; "other processes" is machine CPU not used by either.')
