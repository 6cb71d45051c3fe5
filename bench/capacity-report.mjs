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

console.log('| interviews | fan-out p50 / p99, ms | runs measured | run to first byte p50 / p99 / max, ms | runs without output, refused | server CPU % | server RSS at end, MiB | loadgen CPU % | machine busy % (of 200) / others before | persist p99 (bucket) | errors | targets |')
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|')
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
  const fanOk = r.latency_ms.p99 < 25
  const runOk = fb.samples > 0 && fb.p99 < 200 && runs.no_output === 0
  console.log(`| ${n} | ${f(r.latency_ms.p50, 2)} / ${f(r.latency_ms.p99, 2)} | ${runs.started ?? 0} | ${f(fb.p50)} / ${f(fb.p99)} / ${f(fb.max)} | ${runs.no_output ?? 'n/a'}, ${refused} | ${f(r.server?.cpu_percent, 0)} | ${f((r.server?.rss_kb_end ?? NaN) / 1024)} | ${f(r.loadgen_cpu_percent, 0)} | ${f(r.machine_cpu_percent, 0)} / ${busyBefore} | ${persist} | ${errs} | fan-out ${fanOk ? 'met' : 'MISSED'}, runs ${runOk ? 'met' : 'MISSED'} |`)
}
