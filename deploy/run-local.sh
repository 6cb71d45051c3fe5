#!/usr/bin/env bash
# Duet on three nodes, on one machine: a PostgreSQL server of its own, three `duet serve`
# processes on one database, and HAProxy in front (deploy/haproxy.cfg), all on 127.0.0.1.
# Prints the URL and the admin token; Ctrl-C stops everything. Kill a node (`kill -9 PID`, the
# PIDs are printed) to watch another take its interviews over. See deploy/README.md.
#
#   bash deploy/run-local.sh
#
# Needs Debian's postgresql and haproxy packages (installed here when missing, as root), a
# built `duet` (built here with cargo when DUET_BIN is unset) and the browser app in web/dist
# (built here with npm when missing). Runs need the Docker engine and the sandbox image
# (scripts/ensure-docker.sh); without them the nodes start, editing works, runs do not.
#
# Settings (environment):
#   DUET_DEPLOY_DIR   where the database, each node's data dir, the logs and the admin token
#                     live (default deploy/.data; kept between runs, delete it to start over)
#   DUET_BIN          a built `duet` to run (default: cargo build --release, target/release/duet)
#   DUET_LB_PORT      the balancer's port (default 8080): the URL people get
#   DUET_NODE_PORTS   the three nodes' ports (default "8081 8082 8083")
#   DUET_PG_PORT      PostgreSQL's port (default 5433)
#   DUET_LB_STATS_PORT  HAProxy's stats page (default 8404)
#   DUET_ADMIN_TOKEN  the admin token (default: generated once, kept in DUET_DEPLOY_DIR)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=${DUET_DEPLOY_DIR:-$ROOT/deploy/.data}
LB_PORT=${DUET_LB_PORT:-8080}
read -r -a NODE_PORTS <<< "${DUET_NODE_PORTS:-8081 8082 8083}"
PG_PORT=${DUET_PG_PORT:-5433}
STATS_PORT=${DUET_LB_STATS_PORT:-8404}

say() { echo "run-local: $*" >&2; }
die() { say "$*"; exit 1; }
[ "${#NODE_PORTS[@]}" = 3 ] || die "DUET_NODE_PORTS must name three ports (deploy/haproxy.cfg has three nodes)"

# --- what it needs ----------------------------------------------------------------------------
install_missing() { # package: as root with apt-get, or say what to run
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        say "installing Debian's $1"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1"; } > /dev/null \
            || die "apt-get install -y $1 failed"
    else
        die "$1 is missing: run 'apt-get install -y $1' (Debian) as root"
    fi
}
pg_bin() { find /usr/lib/postgresql/*/bin -maxdepth 1 -name initdb 2> /dev/null | sort -V | tail -n 1 | xargs -r dirname; }
PG_BIN=${DUET_PG_BIN:-$(pg_bin)}
[ -n "$PG_BIN" ] || { install_missing postgresql; PG_BIN=$(pg_bin); }
[ -x "$PG_BIN/initdb" ] || die "no initdb in $PG_BIN"
HAPROXY=$(command -v haproxy || true)
[ -n "$HAPROXY" ] || [ ! -x /usr/sbin/haproxy ] || HAPROXY=/usr/sbin/haproxy
[ -n "$HAPROXY" ] || { install_missing haproxy; HAPROXY=/usr/sbin/haproxy; }
command -v curl > /dev/null || install_missing curl

if [ -z "${DUET_BIN:-}" ]; then
    command -v cargo > /dev/null || die "cargo is missing (https://rustup.rs), or set DUET_BIN to a built duet"
    say "building duet (cargo build --release --bin duet)"
    (cd "$ROOT" && cargo build --release --locked --bin duet >&2)
    DUET_BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/duet
fi
[ -x "$DUET_BIN" ] || die "$DUET_BIN is not an executable"
if [ ! -f "$ROOT/web/dist/index.html" ]; then
    command -v npm > /dev/null || die "web/dist is missing and so is npm: install Node.js 20"
    say "building the browser app (web/dist)"
    (cd "$ROOT/web" && npm ci --no-audit --no-fund --loglevel=error >&2 && npm run build >&2)
fi
docker info > /dev/null 2>&1 \
    || say "note: the Docker engine does not answer, so runs will fail until it does (bash scripts/ensure-docker.sh)"

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
ulimit -n 65536 2> /dev/null || ulimit -n "$(ulimit -Hn)" 2> /dev/null || true

# --- everything started here is stopped on exit ----------------------------------------------
PIDS=()
PG_STARTED=
stopping=
cleanup() {
    [ -n "$stopping" ] && return 0
    stopping=1
    say "stopping"
    for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2> /dev/null || true; kill -TERM "$pid" 2> /dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2> /dev/null || true; done
    [ -n "$PG_STARTED" ] && as_pg "$PG_BIN/pg_ctl" -D "$DIR/postgres" -m fast -w stop > /dev/null 2>&1 || true
    say "stopped (data kept in $DIR)"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- PostgreSQL: a cluster of our own in $DIR/postgres, trust on 127.0.0.1 only -------------
# initdb and postgres refuse to run as root: as root, they run as the postgres user.
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        setpriv --reuid=postgres --regid=postgres --init-groups --reset-env "$@"
    else
        "$@"
    fi
}
if [ ! -f "$DIR/postgres/PG_VERSION" ]; then
    say "creating a PostgreSQL cluster in $DIR/postgres"
    mkdir -p "$DIR/postgres"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$DIR/postgres" && chmod 700 "$DIR/postgres"
    as_pg "$PG_BIN/initdb" -D "$DIR/postgres" -U postgres --auth=trust -E UTF8 > "$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; die "initdb failed (as root, the postgres user must be able to reach $DIR)"; }
fi
if [ "$(id -u)" = 0 ]; then touch "$DIR/postgres.log" && chown postgres "$DIR/postgres.log"; fi
as_pg "$PG_BIN/pg_ctl" -D "$DIR/postgres" -l "$DIR/postgres.log" -w -t 30 \
    -o "-p $PG_PORT -k $DIR/postgres -c listen_addresses=127.0.0.1 -c max_connections=300" start > /dev/null \
    || { tail -20 "$DIR/postgres.log" >&2; die "PostgreSQL did not start (port $PG_PORT taken? set DUET_PG_PORT)"; }
PG_STARTED=1
psql_admin() { "$PG_BIN/psql" -X -A -t -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -c "$1"; }
[ "$(psql_admin "SELECT count(*) FROM pg_database WHERE datname = 'duet'")" = 1 ] \
    || psql_admin "CREATE DATABASE duet" > /dev/null
DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/duet"

# --- the admin token, shared by the three nodes -----------------------------------------------
if [ -z "${DUET_ADMIN_TOKEN:-}" ]; then
    if [ ! -s "$DIR/admin-token" ]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/admin-token")
    fi
    DUET_ADMIN_TOKEN=$(cat "$DIR/admin-token")
fi
export DUET_ADMIN_TOKEN

# --- three nodes --------------------------------------------------------------------------
PUBLIC_URL="http://127.0.0.1:$LB_PORT"
for i in 1 2 3; do
    port=${NODE_PORTS[$((i - 1))]}
    mkdir -p "$DIR/node$i"
    # Each node its own sandbox uids: the three share this machine's Docker engine.
    DUET_NODE_URL="http://127.0.0.1:$port" DUET_LOG=${DUET_LOG:-info} \
        DUET_SANDBOX_UID_BASE=$((10001 + (i - 1) * 1000)) \
        "$DUET_BIN" serve --listen "127.0.0.1:$port" --data-dir "$DIR/node$i" \
        --database-url "$DATABASE_URL" --public-url "$PUBLIC_URL" \
        --questions-dir "$ROOT/questions" --web-dir "$ROOT/web/dist" \
        >> "$DIR/node$i.log" 2>&1 &
    PIDS+=($!)
    eval "NODE${i}_PID=\$!"
done
for i in 1 2 3; do
    port=${NODE_PORTS[$((i - 1))]}
    pid=${PIDS[$((i - 1))]}
    for _ in $(seq 300); do
        curl -sf --max-time 1 "http://127.0.0.1:$port/healthz" > /dev/null && break
        kill -0 "$pid" 2> /dev/null || { tail -20 "$DIR/node$i.log" >&2; die "node $i exited (port $port taken? set DUET_NODE_PORTS)"; }
        sleep 0.1
    done
    curl -sf --max-time 1 "http://127.0.0.1:$port/healthz" > /dev/null \
        || { tail -20 "$DIR/node$i.log" >&2; die "node $i did not answer /healthz in 30 s"; }
done

# --- HAProxy ------------------------------------------------------------------------------
export DUET_LB_BIND="127.0.0.1:$LB_PORT" DUET_LB_STATS_BIND="127.0.0.1:$STATS_PORT"
export DUET_NODE1="127.0.0.1:${NODE_PORTS[0]}" DUET_NODE2="127.0.0.1:${NODE_PORTS[1]}" DUET_NODE3="127.0.0.1:${NODE_PORTS[2]}"
"$HAPROXY" -c -q -f "$ROOT/deploy/haproxy.cfg" || die "haproxy rejected deploy/haproxy.cfg"
"$HAPROXY" -f "$ROOT/deploy/haproxy.cfg" -db >> "$DIR/haproxy.log" 2>&1 &
LB_PID=$!
PIDS+=("$LB_PID")
lb_up() { # how many nodes HAProxy counts up
    curl -sf --max-time 1 "http://127.0.0.1:$STATS_PORT/stats;csv" 2> /dev/null \
        | awk -F, '$1 == "nodes" && $2 ~ /^node/ && $18 == "UP" { n++ } END { print n + 0 }'
}
for _ in $(seq 100); do [ "$(lb_up)" = 3 ] && break; kill -0 "$LB_PID" 2> /dev/null || break; sleep 0.1; done
[ "$(lb_up)" = 3 ] || { tail -20 "$DIR/haproxy.log" >&2; die "HAProxy does not count the three nodes up (port $LB_PORT taken? set DUET_LB_PORT)"; }

cat << EOF

Duet is up: three nodes on PostgreSQL behind HAProxy.

  Open            $PUBLIC_URL/admin
  Admin token     $DUET_ADMIN_TOKEN
  Nodes           node1 $DUET_NODE1 (pid $NODE1_PID), node2 $DUET_NODE2 (pid $NODE2_PID), node3 $DUET_NODE3 (pid $NODE3_PID)
  Database        $DATABASE_URL
  HAProxy stats   http://$DUET_LB_STATS_BIND/stats
  Logs and data   $DIR

Ctrl-C stops everything (the data stays). Try a failover: hold an interview, then kill -9 a node.

EOF

# Wait; say so when a process ends by itself (a node killed on purpose, say).
declare -A gone=()
while sleep 1; do
    for i in 1 2 3; do
        pid=${PIDS[$((i - 1))]}
        if [ -z "${gone[$i]:-}" ] && ! kill -0 "$pid" 2> /dev/null; then
            gone[$i]=1
            say "node $i (pid $pid) has exited; HAProxy sends its requests to the others (its log: $DIR/node$i.log)"
        fi
    done
    kill -0 "$LB_PID" 2> /dev/null || die "HAProxy has exited (its log: $DIR/haproxy.log)"
done
