#!/usr/bin/env bash
# Builds the images deploy/docker-compose.yml runs, from Debian packages, for machines that
# reach no image registry (the way sandbox/build-image.sh builds the sandbox image): one
# debootstrapped Debian 12 root with PostgreSQL 15, HAProxy 2.6, curl and ca-certificates,
# imported three times with `docker import`:
#
#   duet-deploy-postgres:latest   PostgreSQL; initialises its data volume on first start
#   duet-deploy-haproxy:latest    HAProxy, as the haproxy user (the config is mounted)
#   duet-deploy-node:latest       `duet serve` as an unprivileged user, with the question bank
#                                 and the browser app
#
#   bash deploy/build-images.sh
#
# Needs root, debootstrap and a running Docker engine (scripts/ensure-docker.sh sets both up),
# a built `duet` (DUET_BIN, or built here with cargo build --release) and web/dist (built here
# with npm when missing). The debootstrapped root is cached as a tarball in
# ${DUET_DEPLOY_CACHE:-/var/cache/duet-deploy} (outside the repo): rebuilding after a change to
# duet takes seconds. DUET_DEPLOY_REBUILD=1 starts over. The runs' sandbox image is the host
# engine's own (scripts/ensure-docker.sh or sandbox/build-image.sh builds it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${DUET_DEPLOY_CACHE:-/var/cache/duet-deploy}
SUITE=bookworm
PACKAGES=postgresql,haproxy,curl,ca-certificates
BASE="$CACHE/base-$SUITE-${PACKAGES//,/-}.tar"

say() { echo "build-images: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap needs it)"
command -v docker > /dev/null || die "docker is missing: run scripts/ensure-docker.sh"
docker info > /dev/null 2>&1 || die "the Docker engine does not answer: run scripts/ensure-docker.sh"

# debian_mirror SUITE: the Debian mirrors this machine's apt uses.
. "$ROOT/scripts/debian-mirror.sh"

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

if [ ! -s "$BASE" ] || [ "${DUET_DEPLOY_REBUILD:-0}" = 1 ]; then
    command -v debootstrap > /dev/null || die "debootstrap is missing: apt-get install -y debootstrap"
    MIRROR="${DUET_DEBIAN_MIRROR:-$(debian_mirror "$SUITE" | head -n1)}"
    [ -n "$MIRROR" ] || die "no Debian mirror for $SUITE in /etc/apt/sources.list(.d); set DUET_DEBIAN_MIRROR"
    say "debootstrap $SUITE ($PACKAGES) from $MIRROR"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" \
        > "$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    # No package caches, docs, man pages, or the cluster Debian's postinst created (the
    # postgres image makes its own in its volume).
    rm -rf "$work/rootfs"/var/cache/apt/* "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/usr/share/doc/* \
        "$work/rootfs"/usr/share/man/* "$work/rootfs"/var/log/* "$work/rootfs"/tmp/* \
        "$work/rootfs"/var/lib/postgresql/15 "$work/rootfs"/etc/postgresql/15
    mkdir -p "$CACHE"
    tar -C "$work/rootfs" --numeric-owner -cf "$BASE.partial" .
    mv "$BASE.partial" "$BASE"
    rm -rf "$work"
    trap - EXIT
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
tar -C "$root" --numeric-owner -xf "$BASE"
pg_bin=$(cd "$root" && ls -d usr/lib/postgresql/*/bin | sort -V | tail -n 1)
[ -x "$root/$pg_bin/postgres" ] || die "no PostgreSQL in the base (delete $BASE and run again)"

# PostgreSQL: the data folder is the volume; initdb on first start with the password of
# POSTGRES_PASSWORD (scram-sha-256 for TCP; the socket is inside the container only).
cat > "$root/usr/local/bin/duet-postgres" << EOF
#!/bin/sh
set -eu
: "\${PGDATA:=/var/lib/duet-postgres/data}"
if [ ! -s "\$PGDATA/PG_VERSION" ]; then
    [ -n "\${POSTGRES_PASSWORD:-}" ] || { echo "duet-postgres: set POSTGRES_PASSWORD" >&2; exit 1; }
    pw=\$(mktemp)
    printf '%s\n' "\$POSTGRES_PASSWORD" > "\$pw"
    /$pg_bin/initdb -D "\$PGDATA" -U postgres --auth-local=trust --auth-host=scram-sha-256 \\
        --pwfile="\$pw" -E UTF8 > /dev/null
    rm -f "\$pw"
    /$pg_bin/postgres -D "\$PGDATA" -c listen_addresses= -k /tmp &
    pg=\$!
    until /$pg_bin/pg_isready -h /tmp -q; do sleep 0.2; done
    /$pg_bin/psql -X -h /tmp -U postgres -d postgres -c "CREATE DATABASE \${POSTGRES_DB:-duet}" > /dev/null
    kill -INT \$pg; wait \$pg || true
fi
exec /$pg_bin/postgres -D "\$PGDATA" -k /tmp -c "listen_addresses=\${PG_LISTEN:-127.0.0.1}" \\
    -p "\${PG_PORT:-5432}" -c max_connections=300 "\$@"
EOF
chmod 0755 "$root/usr/local/bin/duet-postgres"
install -d -m 0700 -o "$(awk -F: '$1 == "postgres" { print $3 }' "$root/etc/passwd")" \
    -g "$(awk -F: '$1 == "postgres" { print $4 }' "$root/etc/passwd")" "$root/var/lib/duet-postgres"

install -d -m 0755 "$root/etc/duet" # haproxy.cfg is mounted here
import() { # name, then --change arguments
    local name=$1
    shift
    say "importing $name"
    tar -C "$root" --numeric-owner -c . | docker import "$@" - "$name" > /dev/null
}
import duet-deploy-postgres:latest \
    --change 'USER postgres' \
    --change 'ENV PGDATA=/var/lib/duet-postgres/data LANG=C.UTF-8' \
    --change 'VOLUME /var/lib/duet-postgres' \
    --change 'ENTRYPOINT ["/usr/local/bin/duet-postgres"]'
import duet-deploy-haproxy:latest \
    --change 'USER haproxy' \
    --change 'ENTRYPOINT ["/usr/sbin/haproxy", "-f", "/etc/duet/haproxy.cfg", "-db"]'

# duet: the binary, the question bank and the browser app; a user of its own owns /data.
grep -q '^duet:' "$root/etc/group" || echo 'duet:x:10002:' >> "$root/etc/group"
grep -q '^duet:' "$root/etc/passwd" || echo 'duet:x:10002:10002:Duet:/data:/usr/sbin/nologin' >> "$root/etc/passwd"
install -m 0755 "$DUET_BIN" "$root/usr/local/bin/duet"
mkdir -p "$root/usr/share/duet"
cp -r "$ROOT/questions" "$root/usr/share/duet/questions"
cp -r "$ROOT/web/dist" "$root/usr/share/duet/web"
install -d -m 0700 -o 10002 -g 10002 "$root/data"

import duet-deploy-node:latest \
    --change 'USER 10002:10002' \
    --change 'WORKDIR /data' \
    --change 'ENV DUET_DATA_DIR=/data DUET_QUESTIONS_DIR=/usr/share/duet/questions DUET_WEB_DIR=/usr/share/duet/web LANG=C.UTF-8' \
    --change 'VOLUME /data' \
    --change 'ENTRYPOINT ["/usr/local/bin/duet"]' \
    --change 'CMD ["serve"]'
say "built duet-deploy-postgres, duet-deploy-haproxy and duet-deploy-node (duet from $DUET_BIN)"
