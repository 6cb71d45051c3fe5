#!/usr/bin/env bash
# Several nodes (issue 23): keystroke fan-out through HAProxy, one node on SQLite, one node on
# PostgreSQL and three nodes on PostgreSQL, same load generator, same run, loopback only; then
# failover (tests/examples/failover.rs). Prints Markdown tables; raw JSON and logs are kept in
# $DUET_NODES_OUT.
#
#   bash bench/nodes.sh                       # about 8 minutes after the builds, failover included
#   DUET_NODES_SETUPS="pg1 pg3" DUET_NODES_FAILOVER=0 bash bench/nodes.sh
#
# Setups (each scenario starts every server afresh: a new database, new data dirs):
#   direct   one node on SQLite, no balancer (the baseline of bench/run.sh)
#   sqlite1  one node on SQLite behind HAProxy
#   pg1      one node on PostgreSQL behind HAProxy
#   pg3      three nodes on PostgreSQL behind HAProxy: round robin spreads each room's clients
#            over the nodes, and the nodes that do not hold the room relay them to the one that does
# Scenarios (bench/run.sh's): a = 1 room x 2 clients at 20 edits/s each; c = 500 rooms x 3
# clients at 5 edits/s each. HAProxy runs deploy/haproxy.cfg (for one node, without the other
# two server lines); PostgreSQL 15 is a throwaway cluster the script starts on loopback TCP
# (synchronous_commit on, data on the same disk), a fresh database per run.
#
# Settings (environment):
#   DUET_NODES_SETUPS     which setups, in order (default "direct sqlite1 pg1 pg3")
#   DUET_NODES_SCENARIOS  which scenarios (default "a c")
#   DUET_NODES_FAILOVER   failover trials after the load runs (default 20; 0 = none)
#   DUET_BENCH_SECS, DUET_BENCH_WARMUP, DUET_BENCH_DUET_BIN, DUET_BENCH_QUIET_MAX,
#   DUET_BENCH_QUIET_WAIT: as in bench/run.sh
#   DUET_NODES_OUT        where JSON and logs go (default: a new /tmp/duet-nodes.XXXX)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SETUPS=${DUET_NODES_SETUPS:-"direct sqlite1 pg1 pg3"}
SCENARIOS=${DUET_NODES_SCENARIOS:-"a c"}
FAILOVER=${DUET_NODES_FAILOVER:-20}
SECS=${DUET_BENCH_SECS:-20}
WARMUP=${DUET_BENCH_WARMUP:-3}
OUT=${DUET_NODES_OUT:-$(mktemp -d /tmp/duet-nodes.XXXX)}
TOKEN="bench-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"
log() { echo "nodes: $*" >&2; }

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || { log "HAProxy is missing: apt-get install -y haproxy"; exit 2; }
PG_BIN=${DUET_PG_BIN:-$(find /usr/lib/postgresql/*/bin -maxdepth 1 -name initdb 2> /dev/null | sort -V | tail -n 1 | xargs -r dirname)}
[ -n "$PG_BIN" ] || { log "PostgreSQL is missing: apt-get install -y postgresql"; exit 2; }

# --- everything started here is stopped on exit ----------------------------------------------
PIDS=()
SCRATCH=()
PGDIR=
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups --reset-env "$@"; else "$@"; fi; }
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2> /dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
  [ -n "$PGDIR" ] && as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop > /dev/null 2>&1 || true
  for dir in "${SCRATCH[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # pid
  kill "$1" 2> /dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2> /dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2> /dev/null || true
}

# --- builds ----------------------------------------------------------------------------------
if [ -n "${DUET_BENCH_DUET_BIN:-}" ]; then
  DUET=$DUET_BENCH_DUET_BIN
  log "building the load generator (measuring the given server $DUET)"
  (cd "$ROOT" && cargo build --release -p duet-loadgen >&2)
else
  DUET=$TARGET/release/duet
  log "building the server and the load generator (release)"
  (cd "$ROOT" && cargo build --release -p duet-server -p duet-loadgen >&2)
fi
LOADGEN=$TARGET/release/duet-loadgen
ulimit -n 65536 2> /dev/null || ulimit -n "$(ulimit -Hn)" 2> /dev/null || true

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# --- PostgreSQL: one throwaway cluster, a fresh database per run ----------------------------
PG_PORT=
pg_start() {
  PGDIR=$(mktemp -d /tmp/duet-nodes-pg.XXXX); SCRATCH+=("$PGDIR")
  [ "$(id -u)" = 0 ] && chmod 755 "$PGDIR" && chown postgres:postgres "$PGDIR"
  as_pg "$PG_BIN/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 > "$OUT/initdb.log" 2>&1
  PG_PORT=$(free_port)
  as_pg "$PG_BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/postgres.log" -w \
    -o "-p $PG_PORT -k $PGDIR -c listen_addresses=127.0.0.1 -c max_connections=300" start > /dev/null
}
DBS=0
pg_database() { # -> DATABASE_URL
  DBS=$((DBS + 1))
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "CREATE DATABASE bench_$DBS" > /dev/null
  DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/bench_$DBS"
}
pg_pids() { # the postmaster and its children
  local main
  main=$(head -n 1 "$PGDIR/data/postmaster.pid" 2> /dev/null) || return 0
  echo "$main"; pgrep -P "$main" || true
}

# --- one setup: nodes (and HAProxy) --------------------------------------------------------
SETUP_PIDS=()
start_setup() { # setup name -> sets URL_HTTP, URL_WS, SETUP_PIDS
  local setup=$1 name=$2 nodes=1 db_args=() ports=() i port data
  case "$setup" in
    direct|sqlite1) ;;
    pg1) pg_database; db_args=(--database-url "$DATABASE_URL") ;;
    pg3) pg_database; db_args=(--database-url "$DATABASE_URL"); nodes=3 ;;
    *) log "unknown setup $setup"; return 1 ;;
  esac
  local lb; lb=$(free_port)
  SETUP_PIDS=()
  for i in $(seq "$nodes"); do
    port=$(free_port); ports+=("$port")
    data=$(mktemp -d /tmp/duet-nodes-data.XXXX); SCRATCH+=("$data")
    DUET_ADMIN_TOKEN=$TOKEN DUET_LOG=${DUET_LOG:-warn} DUET_NODE_URL="http://127.0.0.1:$port" \
      "$DUET" serve --listen "127.0.0.1:$port" --data-dir "$data" --public-url "http://127.0.0.1:$lb" \
      "${db_args[@]}" > "$OUT/$name.node$i.out" 2> "$OUT/$name.node$i.err" &
    SETUP_PIDS+=($!); PIDS+=($!)
  done
  for port in "${ports[@]}"; do
    for _ in $(seq 300); do curl -sf --max-time 1 "http://127.0.0.1:$port/healthz" > /dev/null && break; sleep 0.1; done
    curl -sf --max-time 1 "http://127.0.0.1:$port/healthz" > /dev/null || { log "a node of $name did not start"; cat "$OUT/$name".node*.err >&2; return 1; }
  done
  if [ "$setup" = direct ]; then
    URL_HTTP="http://127.0.0.1:${ports[0]}"; URL_WS="ws://127.0.0.1:${ports[0]}/yjs"
    return 0
  fi
  local stats; stats=$(free_port)
  if [ "$nodes" = 1 ]; then
    sed '/server node[23] /d' "$ROOT/deploy/haproxy.cfg" > "$OUT/$name.haproxy.cfg"
  else
    cp "$ROOT/deploy/haproxy.cfg" "$OUT/$name.haproxy.cfg"
  fi
  DUET_LB_BIND="127.0.0.1:$lb" DUET_LB_STATS_BIND="127.0.0.1:$stats" \
    DUET_NODE1="127.0.0.1:${ports[0]}" DUET_NODE2="127.0.0.1:${ports[1]:-1}" DUET_NODE3="127.0.0.1:${ports[2]:-1}" \
    "$HAPROXY" -f "$OUT/$name.haproxy.cfg" -db > "$OUT/$name.haproxy.log" 2>&1 &
  SETUP_PIDS+=($!); PIDS+=($!)
  local up=0
  for _ in $(seq 100); do
    up=$(curl -sf --max-time 1 "http://127.0.0.1:$stats/stats;csv" 2> /dev/null \
      | awk -F, '$1 == "nodes" && $2 ~ /^node/ && $18 == "UP" { n++ } END { print n + 0 }' || true)
    [ "$up" = "$nodes" ] && break; sleep 0.1
  done
  [ "$up" = "$nodes" ] || { log "HAProxy did not count the nodes of $name up"; cat "$OUT/$name.haproxy.log" >&2; return 1; }
  URL_HTTP="http://127.0.0.1:$lb"; URL_WS="ws://127.0.0.1:$lb/yjs"
}

# CPU ticks (user + system) of these processes so far.
ticks() { local t=0 pid; for pid in "$@"; do [ -r "/proc/$pid/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$t"; }

# Busy CPU of the whole machine over one second, in percent of one core (as bench/run.sh).
machine_busy() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$a $b" | awk -v n="$(nproc)" '{t=$4-$2; print (t>0 ? int(($3-$1)/t*100*n) : 0)}'
}
wait_quiet() {
  local busy
  for _ in $(seq "${DUET_BENCH_QUIET_WAIT:-60}"); do
    busy=$(machine_busy)
    [ "$busy" -lt "${DUET_BENCH_QUIET_MAX:-25}" ] && { echo "$busy"; return 0; }
  done
  log "machine still busy (${busy}% CPU used by others); measuring anyway"
  echo "$busy"
}

scenario_args() {
  case "$1" in
    a) echo "--rooms 1 --clients 2 --rate 20 --duration $SECS --warmup $WARMUP" ;;
    c) echo "--rooms 500 --clients 3 --rate 5 --duration $SECS --warmup $WARMUP" ;;
    *) log "unknown scenario $1"; return 1 ;;
  esac
}

case " $SETUPS " in *" pg1 "*|*" pg3 "*) pg_start ;; esac
for s in $SCENARIOS; do
  flags=$(scenario_args "$s")
  for setup in $SETUPS; do
    name="$s-$setup"
    busy_before=$(wait_quiet)
    log "scenario $s on $setup: $flags (others using ${busy_before}% CPU before)"
    start_setup "$setup" "$name"
    watched=("${SETUP_PIDS[@]}")
    case "$setup" in pg*) mapfile -t -O "${#watched[@]}" watched < <(pg_pids) ;; esac
    t0=$(ticks "${watched[@]}"); s0=$(date +%s.%N)
    # shellcheck disable=SC2086
    DUET_ADMIN_TOKEN=$TOKEN timeout 600 "$LOADGEN" --url "$URL_WS" --duet-http "$URL_HTTP" \
      $flags --server-pid "${SETUP_PIDS[0]}" --label "$name" --json > "$OUT/$name.json" 2> "$OUT/$name.log" \
      || log "loadgen failed on $name (see $OUT/$name.log)"
    case "$setup" in pg*) mapfile -t -O "${#watched[@]}" watched < <(pg_pids) ;; esac
    # Backends that came during the run count from zero; those that ended before its end are lost.
    # shellcheck disable=SC2046 # one PID a word
    t1=$(ticks $(printf '%s\n' "${watched[@]}" | sort -u)); s1=$(date +%s.%N)
    echo "{\"cpu_percent\": $(echo "$t0 $t1 $s0 $s1" | awk -v hz="$(getconf CLK_TCK)" '{print ($2-$1)/hz/($4-$3)*100}'), \"others_before\": $busy_before}" > "$OUT/$name.cpu.json"
    sed 's/^/  /' "$OUT/$name.log" >&2
    for pid in "${SETUP_PIDS[@]}"; do stop "$pid"; done
  done
done

node - "$OUT" "$SETUPS" "$SCENARIOS" << 'EOF'
const fs = require('fs'), path = require('path')
const [dir, setups, scenarios] = process.argv.slice(2).map((x, i) => i ? x.split(/\s+/).filter(Boolean) : x)
const load = (f) => { try { return JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) } catch { return null } }
const fmt = (v, d = 2) => v == null || Number.isNaN(v) ? 'n/a' : (Math.abs(v) >= 1000 ? Math.round(v).toLocaleString('en-US') : v.toFixed(d))
const names = { direct: 'one node, SQLite, no balancer', sqlite1: 'one node, SQLite, HAProxy', pg1: 'one node, PostgreSQL, HAProxy', pg3: 'three nodes, PostgreSQL, HAProxy' }
const titles = { a: 'a. 1 room x 2 clients, 20 edits/s each', c: 'c. 500 rooms x 3 clients, 5 edits/s each' }
console.log('| Scenario | Metric | ' + setups.map((s) => names[s] ?? s).join(' | ') + ' |')
console.log('|---|---|' + setups.map(() => '---').join('|') + '|')
for (const s of scenarios) {
  const R = setups.map((x) => load(`${s}-${x}.json`)), C = setups.map((x) => load(`${s}-${x}.cpu.json`))
  const row = (title, metric, f) => console.log(`| ${title} | ${metric} | ` + R.map((r, i) => (r ? f(r, C[i]) : 'n/a')).join(' | ') + ' |')
  row(titles[s] ?? s, 'fan-out p50, ms', (r) => fmt(r.latency_ms?.p50, 3))
  row('', 'fan-out p90, ms', (r) => fmt(r.latency_ms?.p90, 3))
  row('', 'fan-out p99, ms', (r) => fmt(r.latency_ms?.p99, 3))
  row('', 'fan-out max, ms', (r) => fmt(r.latency_ms?.max, 1))
  row('', 'edits sent /s / updates delivered /s', (r) => `${fmt(r.sent_per_sec, 0)} / ${fmt(r.delivered_per_sec, 0)}`)
  row('', 'undelivered at the end', (r) => fmt(r.undelivered, 0))
  row('', 'servers CPU % (nodes, HAProxy, PostgreSQL; whole run)', (r, c) => fmt(c?.cpu_percent, 0))
  row('', 'loadgen CPU % / machine busy before, %', (r, c) => `${fmt(r.loadgen_cpu_percent, 0)} / ${fmt(c?.others_before, 0)}`)
  row('', 'connections closed / errors', (r) => {
    const all = { ...(r.closed_by_server ?? {}), ...(r.connect_errors ?? {}), ...(r.read_errors ?? {}), ...(r.errors ?? {}) }
    const parts = Object.entries(all).map(([k, n]) => `${n} x ${k.replace(/\|/g, '/')}`)
    return parts.length ? parts.join('; ') : 'none'
  })
}
EOF

if [ "$FAILOVER" -gt 0 ]; then
  log "failover: $FAILOVER trials (tests/examples/failover.rs)"
  (cd "$ROOT" && cargo build --release -p duet-tests --example failover >&2)
  DUET_BIN=$DUET "$TARGET/release/examples/failover" "$FAILOVER" | tee "$OUT/failover.txt"
fi
log "raw results in $OUT"
