// Renders bench/capacity.sh results as one Markdown table: node bench/capacity-report.mjs OUT_DIR
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2]
const read = (f) => { try { const t = readFileSync(join(dir, f), 'utf8').trim(); return t ? JSON.parse(t) : null } catch { return null } }
const prom = (file) => {
  const out = {}
  if (!existsSync(join(dir, file))) return out
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out[line.slice(0, i)] = Number(line.slice(i + 1))
  }
  return out
}
const steps = readdirSync(dir).map((f) => f.match(/^cap-(\d+)\.json$/)).filter(Boolean).map((m) => Number(m[1])).sort((a, b) => a - b)
const f = (v, d = 1) => (v == null || Number.isNaN(v) ? 'n/a' : Number(v).toFixed(d))
const tally = (o) => Object.entries(o ?? {}).map(([k, n]) => `${n} x ${k.replace(/\|/g, '/')}`).join('; ')

// Per engine, from a family of /metrics lines: [engine, after - before].
const perEngine = (a, b, family) => Object.keys(b).filter((k) => k.startsWith(`${family}{`))
  .map((k) => [k.match(/engine="([^"]*)"/)?.[1] ?? '?', (b[k] ?? 0) - (a[k] ?? 0)])
const short = (engine) => (engine === 'unix:///var/run/docker.sock' ? 'local' : engine.replace(/^unix:\/\/.*\/(duet-[^/]+)\/docker\.sock$/, '$1'))

console.log('| interviews | fan-out p50 / p99, ms | runs measured | run to first byte p50 / p99 / max, ms | runs without output, refused | sandbox runs per engine (cold starts); runs that waited for a slot | server CPU % | server RSS at end, MiB | loadgen CPU % | machine busy % (of 200) / others before | persist p99 (bucket) | errors | targets |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
for (const n of steps) {
  const r = read(`cap-${n}.json`)
  if (!r) { console.log(`| ${n} | loadgen failed, see cap-${n}.log |||||||||||`); continue }
  const runs = r.runs ?? {}
  const fb = runs.first_byte_ms ?? {}
  const refused = Object.values(runs.refused ?? {}).reduce((a, b) => a + b, 0)
  const busyBefore = existsSync(join(dir, `cap-${n}.busy-before`)) ? readFileSync(join(dir, `cap-${n}.busy-before`), 'utf8').trim() : 'n/a'
  const a = prom(`cap-${n}.metrics-before`); const b = prom(`cap-${n}.metrics-after`)
  const buckets = Object.keys(b).filter((k) => k.startsWith('duet_persist_latency_seconds_bucket'))
    .map((k) => ({ le: k.match(/le="([^"]+)"/)[1], n: (b[k] ?? 0) - (a[k] ?? 0) }))
    .map(({ le, n }) => ({ le: le === '+Inf' ? Infinity : Number(le), n })).sort((x, y) => x.le - y.le)
  const count = (b.duet_persist_latency_seconds_count ?? 0) - (a.duet_persist_latency_seconds_count ?? 0)
  const hit = count ? buckets.find((x) => x.n >= 0.99 * count) : null
  const persist = hit ? (hit.le === Infinity ? '> 1000' : `<= ${hit.le * 1000}`) : 'n/a'
  const errs = [tally(r.connect_errors), tally(r.closed_by_server), tally(r.read_errors), tally(runs.refused), tally(runs.events_closed), tally(runs.events_errors)].filter(Boolean).join('; ') || 'none'
  const cold = new Map(perEngine(a, b, 'duet_sandbox_cold_starts_total'))
  let split = perEngine(a, b, 'duet_sandbox_runs_total').map(([e, n]) => `${short(e)} ${n} (${cold.get(e) ?? '?'})`).join(', ') || 'n/a'
  const waited = (b.duet_sandbox_waited_total ?? 0) - (a.duet_sandbox_waited_total ?? 0)
  const waitedS = (b.duet_sandbox_wait_seconds_total ?? 0) - (a.duet_sandbox_wait_seconds_total ?? 0)
  if (b.duet_sandbox_waited_total != null) split += `; ${waited} waited for a slot${waited ? ` (${f((waitedS * 1000) / waited, 0)} ms on average)` : ''}`
  if (existsSync(join(dir, `cap-${n}.killed-at`))) split += `; the second engine killed ${process.env.DUET_CAPACITY_KILL_AFTER ?? '?'} s in`
  const fanOk = r.latency_ms.p99 < 25
  const runOk = fb.samples > 0 && fb.p99 < 200 && runs.no_output === 0
  console.log(`| ${n} | ${f(r.latency_ms.p50, 2)} / ${f(r.latency_ms.p99, 2)} | ${runs.started ?? 0} | ${f(fb.p50)} / ${f(fb.p99)} / ${f(fb.max)} | ${runs.no_output ?? 'n/a'}, ${refused} | ${split} | ${f(r.server?.cpu_percent, 0)} | ${f((r.server?.rss_kb_end ?? NaN) / 1024)} | ${f(r.loadgen_cpu_percent, 0)} | ${f(r.machine_cpu_percent, 0)} / ${busyBefore} | ${persist} | ${errs} | fan-out ${fanOk ? 'met' : 'MISSED'}, runs ${runOk ? 'met' : 'MISSED'} |`)
}
