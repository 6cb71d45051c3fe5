#!/usr/bin/env bash
# Builds Duet's sandbox image from Debian packages, for machines that reach no image registry
# (sandbox/Dockerfile gives the same contract where one is reachable; README.md describes it).
#
#   bash sandbox/build-image.sh            # tag ${DUET_SANDBOX_IMAGE:-duet-sandbox:latest}
#
# Needs root, debootstrap and a running Docker engine (scripts/ensure-docker.sh sets both up).
# The Debian mirror is the one this machine's apt uses. The debootstrapped base is cached as a
# tarball in ${DUET_SANDBOX_CACHE:-/var/cache/duet-sandbox} (outside the repo), so changing the
# runner rebuilds in seconds; delete the cache or set DUET_SANDBOX_REBUILD=1 to start over.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

IMAGE="${DUET_SANDBOX_IMAGE:-duet-sandbox:latest}"
CACHE="${DUET_SANDBOX_CACHE:-/var/cache/duet-sandbox}"
SUITE=bookworm
PACKAGES=python3,python3-pytest,python3-pyflakes,pycodestyle
# The runner contract this image speaks (label duet.sandbox.contract); crates/sandbox checks
# that it equals its own CONTRACT, and scripts/ensure-docker.sh rebuilds an older image.
CONTRACT=4
BASE="$CACHE/base-$SUITE-${PACKAGES//,/-}.tar"

say() { echo "build-image: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot need it)"
command -v docker >/dev/null || die "docker is missing: run scripts/ensure-docker.sh"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: run scripts/ensure-docker.sh"

# The first main-archive URI for $SUITE in this machine's apt sources (deb822 or one-line).
mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v suite="$SUITE" '
            function flush() { if (uri != "" && ok) { print uri; found = 1; exit } uri = ""; ok = 0 }
            /^[[:space:]]*$/ { flush(); next }
            tolower($1) == "uris:" { uri = $2 }
            tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
            END { if (!found) flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk -v suite="$SUITE" '$1 == "deb" {
            i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit } }' "$f"
    done
}

if [ ! -s "$BASE" ] || [ "${DUET_SANDBOX_REBUILD:-0}" = 1 ]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install -y debootstrap"
    MIRROR="${DUET_DEBIAN_MIRROR:-$(mirror | head -n1)}"
    [ -n "$MIRROR" ] || die "no Debian mirror for $SUITE in /etc/apt/sources.list(.d); set DUET_DEBIAN_MIRROR"
    say "debootstrap $SUITE ($PACKAGES) from $MIRROR"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    # Slim it: no package caches, docs or man pages in a sandbox.
    rm -rf "$work/rootfs"/var/cache/apt/* "$work/rootfs"/var/lib/apt/lists/* \
        "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/info/* \
        "$work/rootfs"/var/log/* "$work/rootfs"/tmp/*
    mkdir -p "$CACHE"
    tar -C "$work/rootfs" --numeric-owner -cf "$BASE.partial" .
    mv "$BASE.partial" "$BASE"
    rm -rf "$work"
    trap - EXIT
fi

say "adding the sandbox user and the runner"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
tar -C "$root" --numeric-owner -xf "$BASE"
grep -q '^sandbox:' "$root/etc/group" || echo 'sandbox:x:10001:' >>"$root/etc/group"
grep -q '^sandbox:' "$root/etc/passwd" \
    || echo 'sandbox:x:10001:10001:Duet sandbox:/tmp:/usr/sbin/nologin' >>"$root/etc/passwd"
grep -q '^sandbox:' "$root/etc/shadow" || echo 'sandbox:!:19000::::::' >>"$root/etc/shadow"
install -d -m 0700 -o 10001 -g 10001 "$root/work"
install -m 0755 -o 0 -g 0 "$here/runner.py" "$root/usr/local/bin/duet-runner"
# no-new-privileges already makes set-uid bits inert; remove them anyway.
find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +

say "importing as $IMAGE"
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'USER 10001:10001' \
    --change 'WORKDIR /work' \
    --change 'ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "LABEL duet.sandbox.contract=$CONTRACT" \
    --change 'CMD ["/usr/local/bin/duet-runner"]' \
    - "$IMAGE" >/dev/null
say "built $IMAGE"
