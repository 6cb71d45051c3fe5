#!/usr/bin/env bash
# Duet against two peers, same load generator, same run, loopback only: the reference y-websocket
# server (@y/websocket-server, Node) and y-sweet 0.9.1 (Rust, yrs; in memory). Prints a Markdown
# table; raw JSON per run is kept in $DUET_BENCH_OUT.
#
#   bash bench/run.sh                      # every scenario, 4 to 8 minutes after the builds
#   DUET_BENCH_SCENARIOS="a c" bash bench/run.sh
#
# Scenarios (issue 8's targets, each against the reference in the same run; Duet persisting
# every update):
#   a  1 room x 2 clients typing 20 edits/s each            p50 <= reference's, p99 < 2 ms
#   b  burst: 1 room x 4 clients flat out, 64 edits in flight per client (closed loop)
#                                                           absorbed/s >= reference's
#   e  burst, open loop: 1 room x 4 clients writing as fast as their sockets take it
#   c  500 rooms x 3 clients at 5 edits/s each              p50 <= 1.5x reference's, p99 < 25 ms
#   d  1000 idle rooms, one client and one edit each        < 30 KB per idle room
# Each scenario starts every server afresh (clean memory), so RSS figures are per scenario.
#
# Settings (environment):
#   DUET_BENCH_PEERS     scratch folder for the npm peers (default /tmp/duet-bench-peers; never the repo)
#   DUET_BENCH_YSWEET_ROOT  `cargo install --root` for y-sweet 0.9.1 (default /tmp/ysweet; about
#                        two minutes the first time; never the repo)
#   DUET_BENCH_SERVERS   which servers, in order (default "duet ref ysweet")
#   DUET_BENCH_SECS      measured seconds per load scenario (default 20)
#   DUET_BENCH_WARMUP    warm-up seconds (default 3)
#   DUET_BENCH_OUT       where JSON and logs go (default: a new /tmp/duet-bench.XXXX)
#   DUET_BENCH_DUET_BIN  a prebuilt `duet` binary to measure instead of building this tree's
#   DUET_BENCH_SCENARIOS which scenarios, in order (default "a b e c d")
#   DUET_BENCH_IDLE_ROOMS rooms for scenario d (default 1000)
#   DUET_BENCH_QUIET_MAX / DUET_BENCH_QUIET_WAIT  before each run, wait up to WAIT seconds (60) for
#                        other processes to use under MAX % CPU (25); the machine is shared
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${DUET_BENCH_PEERS:-/tmp/duet-bench-peers}
YSWEET_ROOT=${DUET_BENCH_YSWEET_ROOT:-/tmp/ysweet}
SERVERS=${DUET_BENCH_SERVERS:-"duet ref ysweet"}
SECS=${DUET_BENCH_SECS:-20}
WARMUP=${DUET_BENCH_WARMUP:-3}
OUT=${DUET_BENCH_OUT:-$(mktemp -d /tmp/duet-bench.XXXX)}
SCENARIOS=${DUET_BENCH_SCENARIOS:-"a b e c d"}
IDLE_ROOMS=${DUET_BENCH_IDLE_ROOMS:-1000}
TOKEN="bench-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"
case "$PEERS" in "$ROOT"|"$ROOT"/*) echo "DUET_BENCH_PEERS must be outside the repository" >&2; exit 2 ;; esac
case "$YSWEET_ROOT" in "$ROOT"|"$ROOT"/*) echo "DUET_BENCH_YSWEET_ROOT must be outside the repository" >&2; exit 2 ;; esac

log() { echo "bench: $*" >&2; }

# --- every server this script starts is stopped on exit -----------------------------------
PIDS=()
SCRATCH=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for dir in "${SCRATCH[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop() { # pid
  kill "$1" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}

# --- peers and builds ------------------------------------------------------------------------
if [ ! -f "$PEERS/node_modules/@y/websocket-server/src/server.js" ]; then
  log "installing the reference server in $PEERS"
  mkdir -p "$PEERS"
  [ -f "$PEERS/package.json" ] || echo '{"private": true}' > "$PEERS/package.json"
  # --ignore-scripts: leveldown's native build is only for its optional persistence, unused here.
  (cd "$PEERS" && npm install --no-audit --no-fund --ignore-scripts \
    yjs@13 y-websocket@3 @y/websocket-server@0.1.1 ws >&2)
fi

YSWEET=$YSWEET_ROOT/bin/y-sweet
if [[ " $SERVERS " == *" ysweet "* ]] && ! "$YSWEET" version 2>/dev/null | grep -q '0\.9\.1'; then
  log "installing y-sweet 0.9.1 in $YSWEET_ROOT (about two minutes)"
  # Its own target folder: never this repository's.
  CARGO_TARGET_DIR=$YSWEET_ROOT/target cargo install y-sweet --version 0.9.1 --locked --root "$YSWEET_ROOT" >&2
fi

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
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# --- servers ---------------------------------------------------------------------------------
wait_line() { # file pattern seconds
  for _ in $(seq $(($3 * 10))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; return 1
}

start_duet() { # name -> sets SERVER_PID, DUET_ADDR
  local data; data=$(mktemp -d "${DUET_BENCH_DATA_ROOT:-/tmp}/duet-bench-data.XXXX"); SCRATCH+=("$data")
  DUET_ADMIN_TOKEN=$TOKEN DUET_LOG=${DUET_LOG:-warn} "$DUET" serve --listen 127.0.0.1:0 --data-dir "$data" \
    > "$OUT/$1.out" 2> "$OUT/$1.err" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  wait_line "$OUT/$1.out" "Duet listening on http://" 15
  DUET_ADDR=$(grep -o 'Duet listening on http://[0-9.:]*' "$OUT/$1.out" | sed 's#.*http://##')
}

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

start_ref() { # name -> sets SERVER_PID, REF_PORT
  REF_PORT=$(free_port)
  (cd "$PEERS" && HOST=127.0.0.1 PORT=$REF_PORT exec node node_modules/@y/websocket-server/src/server.js) \
    > "$OUT/$1.out" 2> "$OUT/$1.err" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  wait_line "$OUT/$1.out" "running at" 15
}

start_ysweet() { # name -> sets SERVER_PID, YS_PORT
  YS_PORT=$(free_port)
  # No store argument: documents in memory only, like the reference. No --auth: no tokens.
  env -u Y_SWEET_STORE -u Y_SWEET_AUTH -u Y_SWEET_URL_PREFIX "$YSWEET" serve --host 127.0.0.1 --port "$YS_PORT" \
    > "$OUT/$1.out" 2> "$OUT/$1.err" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID")
  for _ in $(seq 150); do
    curl -sf --max-time 1 "http://127.0.0.1:$YS_PORT/ready" > /dev/null && return 0
    sleep 0.1
  done
  echo "y-sweet did not answer /ready:" >&2; cat "$OUT/$1.err" >&2; return 1
}

# Busy CPU of the whole machine over one second, in percent of one core (200 = both cores).
machine_busy() {
  local a b
  a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat); sleep 1
  b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat)
  echo "$a $b" | awk -v n="$(nproc)" '{t=$4-$2; print (t>0 ? int(($3-$1)/t*100*n) : 0)}'
}

# The machine is shared: wait (at most QUIET_WAIT s) until others use under QUIET_MAX % CPU.
wait_quiet() {
  local busy
  for _ in $(seq "${DUET_BENCH_QUIET_WAIT:-60}"); do
    busy=$(machine_busy)
    [ "$busy" -lt "${DUET_BENCH_QUIET_MAX:-25}" ] && return 0
  done
  log "machine still busy (${busy}% CPU used by others); measuring anyway, see 'other processes' in the table"
}

metrics() { curl -sf --max-time 5 -H "Authorization: Bearer $TOKEN" "http://$DUET_ADDR/metrics" > "$1" || echo "" > "$1"; }

# --- scenarios -------------------------------------------------------------------------------
scenario_args() { # scenario -> loadgen flags
  case "$1" in
    a) echo "--rooms 1 --clients 2 --rate 20 --duration $SECS --warmup $WARMUP" ;;
    b) echo "--rooms 1 --clients 4 --rate 0 --window 64 --no-apply --duration $SECS --warmup $WARMUP" ;;
    e) echo "--rooms 1 --clients 4 --rate 0 --no-apply --duration $SECS --warmup $WARMUP" ;;
    c) echo "--rooms 500 --clients 3 --rate 5 --duration $SECS --warmup $WARMUP" ;;
    d) echo "--idle-rooms $IDLE_ROOMS --idle-settle 5" ;;
    *) echo "unknown scenario $1" >&2; return 1 ;;
  esac
}

for s in $SCENARIOS; do
  flags=$(scenario_args "$s")
  for server in $SERVERS; do
    name="$s-$server"
    wait_quiet
    log "scenario $s on $server: $flags"
    if [ "$server" = duet ]; then
      start_duet "$name"
      metrics "$OUT/$name.metrics-before"
      # shellcheck disable=SC2086
      DUET_ADMIN_TOKEN=$TOKEN timeout 600 "$LOADGEN" --url "ws://$DUET_ADDR/yjs" --duet-http "http://$DUET_ADDR" \
        $flags --server-pid "$SERVER_PID" --label "$name" --json > "$OUT/$name.json" 2> "$OUT/$name.log" \
        || log "loadgen failed on $name (see $OUT/$name.log)"
      metrics "$OUT/$name.metrics-after"
    elif [ "$server" = ref ]; then
      start_ref "$name"
      # shellcheck disable=SC2086
      env -u DUET_ADMIN_TOKEN timeout 600 "$LOADGEN" --url "ws://127.0.0.1:$REF_PORT" \
        $flags --server-pid "$SERVER_PID" --label "$name" --json > "$OUT/$name.json" 2> "$OUT/$name.log" \
        || log "loadgen failed on $name (see $OUT/$name.log)"
    else
      start_ysweet "$name"
      # shellcheck disable=SC2086
      env -u DUET_ADMIN_TOKEN timeout 600 "$LOADGEN" --url "ws://127.0.0.1:$YS_PORT" --ysweet-http "http://127.0.0.1:$YS_PORT" \
        $flags --server-pid "$SERVER_PID" --label "$name" --json > "$OUT/$name.json" 2> "$OUT/$name.log" \
        || log "loadgen failed on $name (see $OUT/$name.log)"
    fi
    sed 's/^/  /' "$OUT/$name.log" >&2
    stop "$SERVER_PID"
  done
done

node "$ROOT/bench/report.mjs" "$OUT" $SCENARIOS
log "raw results in $OUT"
