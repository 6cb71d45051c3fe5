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
#   DUET_CAPACITY_SERVER_ARGS  extra `duet serve` flags (e.g. "--sandbox-concurrency 3")
# Fleet mode (issue 24):
#   DUET_CAPACITY_ENGINES  2: a second dockerd of the script's own (its own socket, data root and
#                          exec root under /tmp, no bridge, the image loaded into it with docker
#                          save | load; needs root) beside the machine's, and the server gets
#                          both as --sandbox-engine; it is stopped (by PID) when the script ends
#   DUET_CAPACITY_KILL_AFTER  with 2 engines: SIGKILL the second dockerd (and its containerd)
#                          this many seconds into the measured window, as a crash (it is started
#                          again before the next step)
# The table gains the runs each engine took and the cold starts (from /metrics).
# Server flags are otherwise the defaults: 16 websockets per token (each participant holds 2) and
# 30 runs a minute per role (each role asks for 1) are not reached, so nothing is raised.
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
ENGINES=${DUET_CAPACITY_ENGINES:-1}
KILL_AFTER=${DUET_CAPACITY_KILL_AFTER:-}
read -r -a SERVER_ARGS <<< "${DUET_CAPACITY_SERVER_ARGS:-}"
mkdir -p "$OUT"
log() { echo "capacity: $*" >&2; }

docker image inspect duet-sandbox:latest > /dev/null 2>&1 || {
  echo "capacity: needs a running Docker engine and the image duet-sandbox:latest (see sandbox/README.md)" >&2; exit 2; }

PIDS=(); SCRATCH=()
# The second engine (fleet mode): its directory (short: containerd's socket path must fit) and
# dockerd's PID.
DD=/tmp/duet-cap-dd-$$; DD_PID=
engine_kill() { # SIGKILL, as a crash: dockerd, then its containerd
  [ -n "$DD_PID" ] && kill -9 "$DD_PID" 2>/dev/null || true
  [ -f "$DD/exec/containerd/containerd.pid" ] && kill -9 "$(cat "$DD/exec/containerd/containerd.pid")" 2>/dev/null || true
  [ -n "$DD_PID" ] && wait "$DD_PID" 2>/dev/null || true
  rm -f "$DD/dockerd.pid" "$DD/exec/containerd/containerd.pid"; DD_PID=
}
engine_start() {
  mkdir -p "$DD"
  dockerd --host "unix://$DD/docker.sock" --data-root "$DD/data" --exec-root "$DD/exec" \
    --pidfile "$DD/dockerd.pid" --bridge=none --iptables=false --ip6tables=false \
    --ip-forward=false --ip-masq=false >> "$DD/dockerd.log" 2>&1 &
  DD_PID=$!
  for _ in $(seq 600); do docker -H "unix://$DD/docker.sock" version > /dev/null 2>&1 && break; sleep 0.1; done
  docker -H "unix://$DD/docker.sock" version > /dev/null 2>&1 || { log "the second dockerd did not start: $(tail -5 "$DD/dockerd.log")"; exit 2; }
  if ! docker -H "unix://$DD/docker.sock" image inspect duet-sandbox:latest > /dev/null 2>&1; then
    log "loading duet-sandbox:latest into the second engine"
    docker save duet-sandbox:latest | docker -H "unix://$DD/docker.sock" load -q > /dev/null
  fi
}
engine_cleanup() {
  [ -d "$DD" ] || return 0
  if [ -n "$DD_PID" ]; then
    kill "$DD_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$DD_PID" 2>/dev/null || break; sleep 0.1; done
    engine_kill
  fi
  # Whatever it started (containerd, container shims) names its directory on the command line.
  for p in /proc/[0-9]*; do
    grep -qa -- "$DD" "$p/cmdline" 2>/dev/null && kill -9 "${p#/proc/}" 2>/dev/null || true
  done
  awk -v d="$DD" '$5 ~ "^"d {print $5}' /proc/self/mountinfo | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$DD"
}
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  engine_cleanup
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

ENGINE_ARGS=()
if [ "$ENGINES" = 2 ]; then
  command -v dockerd > /dev/null || { log "fleet mode needs dockerd (bash scripts/ensure-docker.sh)"; exit 2; }
  ENGINE_ARGS=(--sandbox-engine unix:///var/run/docker.sock --sandbox-engine "unix://$DD/docker.sock")
elif [ "$ENGINES" != 1 ]; then
  log "DUET_CAPACITY_ENGINES is 1 or 2"; exit 2
fi

for n in $STEPS; do
  name="cap-$n"
  if [ "$ENGINES" = 2 ] && [ -z "$DD_PID" ]; then engine_start; fi
  busy=$(wait_quiet)
  echo "$busy" > "$OUT/$name.busy-before"
  data=$(mktemp -d /tmp/duet-capacity-data.XXXX); SCRATCH+=("$data")
  DUET_ADMIN_TOKEN=$TOKEN DUET_LOG=${DUET_LOG:-warn} "$DUET" serve --listen 127.0.0.1:0 --data-dir "$data" \
    "${ENGINE_ARGS[@]}" "${SERVER_ARGS[@]}" > "$OUT/$name.out" 2> "$OUT/$name.err" &
  pid=$!; PIDS+=("$pid")
  for _ in $(seq 300); do grep -q 'Duet listening on http://' "$OUT/$name.out" 2>/dev/null && break; sleep 0.1; done
  addr=$(grep -o 'Duet listening on http://[0-9.:]*' "$OUT/$name.out" | sed 's#.*http://##')
  sleep 3 # the warm pool fills before the first runs (which come after the warm-up anyway)
  log "N=$n interviews (others used ${busy}% CPU before)"
  curl -sf -H "Authorization: Bearer $TOKEN" "http://$addr/metrics" > "$OUT/$name.metrics-before" || true
  killer=
  if [ "$ENGINES" = 2 ] && [ -n "$KILL_AFTER" ]; then
    ( sleep $((WARMUP + KILL_AFTER)); log "killing the second engine (dockerd $DD_PID)"
      date +%s%3N > "$OUT/$name.killed-at"; engine_kill; sleep 3
      curl -sf "http://$addr/healthz" > "$OUT/$name.healthz-after-kill" 2>/dev/null || true ) &
    killer=$!
  fi
  DUET_ADMIN_TOKEN=$TOKEN timeout 900 "$LOADGEN" --url "ws://$addr/yjs" --duet-http "http://$addr" \
    --rooms "$n" --clients 2 --rate "$RATE" --run-every "$EVERY" --duration "$SECS" --warmup "$WARMUP" \
    --server-pid "$pid" --label "$name" --json > "$OUT/$name.json" 2> "$OUT/$name.log" \
    || log "loadgen failed at N=$n (see $OUT/$name.log)"
  curl -sf -H "Authorization: Bearer $TOKEN" "http://$addr/metrics" > "$OUT/$name.metrics-after" || true
  curl -sf "http://$addr/healthz" > "$OUT/$name.healthz" 2>/dev/null || true
  if [ -n "$killer" ]; then
    wait "$killer" 2>/dev/null || true
    # Killed in the subshell; reaped here (dockerd is this shell's child), started next step.
    [ -f "$OUT/$name.killed-at" ] && engine_kill
  fi
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
