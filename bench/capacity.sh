#!/usr/bin/env bash
# Capacity of one machine under mixed load (issue 7): N interviews, two participants typing in
# each (5 edits/s each), every participant starting a program run once a minute (random phase)
# with both events sockets open, on the real sandbox (Docker, duet-sandbox:latest, warm pool on
# with its default size). Steps N up a ladder, one fresh server per step, and stops after the
# first step that misses a target:
#   keystroke fan-out p99 < 25 ms   and   run request to first output byte p99 < 200 ms.
# Prints a Markdown table; raw JSON per step is kept in $DUET_CAPACITY_OUT.
#
#   bash bench/capacity.sh                       # about 2.5 minutes a step after the builds
#   DUET_CAPACITY_STEPS="50 100" bash bench/capacity.sh
#
# Settings (environment):
#   DUET_CAPACITY_STEPS    interviews per step, in order (default "25 50 100 150 200 300 400")
#   DUET_CAPACITY_RATE     edits/s per participant (default 5)
#   DUET_CAPACITY_RUN_EVERY  seconds between one participant's runs (default 60)
#   DUET_CAPACITY_SECS     measured seconds per step (default 120: about 2N runs per minute)
#   DUET_CAPACITY_WARMUP   warm-up seconds (default 10)
#   DUET_CAPACITY_ALL      1: run every step even after one missed
#   DUET_CAPACITY_OUT      where JSON and logs go (default: a new /tmp/duet-capacity.XXXX)
#   DUET_BENCH_DUET_BIN, DUET_BENCH_QUIET_MAX, DUET_BENCH_QUIET_WAIT: as in bench/run.sh
# Server flags are the defaults: 16 websockets per token (each participant holds 2) and 30 runs
# a minute per role (each role asks for 1) are not reached, so nothing is raised.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STEPS=${DUET_CAPACITY_STEPS:-"25 50 100 150 200 300 400"}
RATE=${DUET_CAPACITY_RATE:-5}
EVERY=${DUET_CAPACITY_RUN_EVERY:-60}
SECS=${DUET_CAPACITY_SECS:-120}
WARMUP=${DUET_CAPACITY_WARMUP:-10}
OUT=${DUET_CAPACITY_OUT:-$(mktemp -d /tmp/duet-capacity.XXXX)}
TOKEN="bench-admin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
mkdir -p "$OUT"
log() { echo "capacity: $*" >&2; }

docker image inspect duet-sandbox:latest > /dev/null 2>&1 || {
  echo "capacity: needs a running Docker engine and the image duet-sandbox:latest (see sandbox/README.md)" >&2; exit 2; }

PIDS=(); SCRATCH=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for dir in "${SCRATCH[@]}"; do rm -rf "$dir"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
stop() { kill "$1" 2>/dev/null || true; for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done; kill -9 "$1" 2>/dev/null || true; }

if [ -n "${DUET_BENCH_DUET_BIN:-}" ]; then
  DUET=$DUET_BENCH_DUET_BIN
  (cd "$ROOT" && cargo build --release -p duet-loadgen >&2)
else
  DUET=$TARGET/release/duet
  log "building the server and the load generator (release)"
  (cd "$ROOT" && cargo build --release -p duet-server -p duet-loadgen >&2)
fi
LOADGEN=$TARGET/release/duet-loadgen
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

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

for n in $STEPS; do
  name="cap-$n"
  busy=$(wait_quiet)
  echo "$busy" > "$OUT/$name.busy-before"
  data=$(mktemp -d /tmp/duet-capacity-data.XXXX); SCRATCH+=("$data")
  DUET_ADMIN_TOKEN=$TOKEN DUET_LOG=${DUET_LOG:-warn} "$DUET" serve --listen 127.0.0.1:0 --data-dir "$data" \
    > "$OUT/$name.out" 2> "$OUT/$name.err" &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 300); do grep -q 'Duet listening on http://' "$OUT/$name.out" 2>/dev/null && break; sleep 0.1; done
  addr=$(grep -o 'Duet listening on http://[0-9.:]*' "$OUT/$name.out" | sed 's#.*http://##')
  sleep 3 # the warm pool fills before the first runs (which come after the warm-up anyway)
  log "N=$n interviews (others used ${busy}% CPU before)"
  curl -sf -H "Authorization: Bearer $TOKEN" "http://$addr/metrics" > "$OUT/$name.metrics-before" || true
  DUET_ADMIN_TOKEN=$TOKEN timeout 900 "$LOADGEN" --url "ws://$addr/yjs" --duet-http "http://$addr" \
    --rooms "$n" --clients 2 --rate "$RATE" --run-every "$EVERY" --duration "$SECS" --warmup "$WARMUP" \
    --server-pid "$pid" --label "$name" --json > "$OUT/$name.json" 2> "$OUT/$name.log" \
    || log "loadgen failed at N=$n (see $OUT/$name.log)"
  curl -sf -H "Authorization: Bearer $TOKEN" "http://$addr/metrics" > "$OUT/$name.metrics-after" || true
  sed 's/^/  /' "$OUT/$name.log" >&2
  stop "$pid"
  ok=$(node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8") || "null")
    const good = r && r.latency_ms.p99 < 25 && r.runs && r.runs.first_byte_ms.samples > 0 && r.runs.first_byte_ms.p99 < 200 && r.runs.no_output === 0
    console.log(good ? "yes" : "no")' "$OUT/$name.json" 2>/dev/null || echo no)
  if [ "$ok" != yes ] && [ "${DUET_CAPACITY_ALL:-0}" != 1 ]; then
    log "N=$n missed a target; stopping the ladder here"
    break
  fi
done

node "$ROOT/bench/capacity-report.mjs" "$OUT"
log "raw results in $OUT"
