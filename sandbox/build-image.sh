#!/usr/bin/env bash
# Builds one of Duet's sandbox images from Debian packages, for machines that reach no image
# registry (sandbox/Dockerfile gives the same contract where one is reachable; README.md
# describes it). Each image is one environment:
#
#   bash sandbox/build-image.sh              # python: tag ${DUET_SANDBOX_IMAGE:-duet-sandbox:latest}
#   bash sandbox/build-image.sh python-data  # python plus numpy, pandas, scipy:
#                                            # tag ${DUET_SANDBOX_DATA_IMAGE:-duet-sandbox-data:latest}
#
# Needs root, debootstrap and a running Docker engine (scripts/ensure-docker.sh sets both up).
# The Debian mirror is the one this machine's apt uses. The debootstrapped base is cached as a
# tarball in ${DUET_SANDBOX_CACHE:-/var/cache/duet-sandbox} (outside the repo), so changing the
# runner rebuilds in seconds; python-data's base is python's base plus its packages, cached
# beside it. Delete the cache or set DUET_SANDBOX_REBUILD=1 to start over.
#
# The image carries its environment's facts as labels, read from the built root: the runner
# contract, duet.environment.name, duet.environment.python (the interpreter's version) and
# duet.environment.packages (every installed Python distribution, `name==version`, separated
# by spaces, sorted), which the server lists in GET /api/environments without running anything.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

ENVIRONMENT="${1:-python}"
case "$ENVIRONMENT" in
    python) IMAGE="${DUET_SANDBOX_IMAGE:-duet-sandbox:latest}" ;;
    python-data) IMAGE="${DUET_SANDBOX_DATA_IMAGE:-duet-sandbox-data:latest}" ;;
    *) echo "build-image: unknown environment $ENVIRONMENT (python or python-data)" >&2; exit 2 ;;
esac
CACHE="${DUET_SANDBOX_CACHE:-/var/cache/duet-sandbox}"
SUITE=bookworm
PACKAGES=python3,python3-pytest,python3-pyflakes,pycodestyle
# The runner contract this image speaks (label duet.sandbox.contract); crates/sandbox checks
# that it equals its own CONTRACT, and scripts/ensure-docker.sh rebuilds an older image.
CONTRACT=5
BASE="$CACHE/base-$SUITE-${PACKAGES//,/-}.tar"
# python-data: installed with apt into a copy of the python base. Debian's python3-scipy
# depends on pythran, which pulls in a C/C++ tool chain and Boost's headers (~500 MB) that
# nothing needs at run time: DATA_DROP is removed again after the install (the libraries numpy
# and scipy link against, libgfortran5, libquadmath0, libgomp1, stay).
DATA_PACKAGES="python3-numpy python3-pandas python3-scipy"
DATA_DROP="gcc g++ cpp gcc-12 g++-12 cpp-12 binutils binutils-x86-64-linux-gnu binutils-common
    libbinutils libctf0 libctf-nobfd0 libgprofng0 libboost-dev libboost1.74-dev libstdc++-12-dev
    libgcc-12-dev libc6-dev libc-dev-bin linux-libc-dev libcrypt-dev libnsl-dev libtirpc-dev
    rpcsvc-proto libxsimd-dev libopenblas-dev libopenblas-pthread-dev python3-dev python3.11-dev
    libpython3.11-dev libpython3-dev python3-all-dev libpython3-all-dev libexpat1-dev zlib1g-dev
    libasan8 libtsan2 libubsan1 liblsan0 libitm1 libcc1-0 libisl23 libmpc3 libmpfr6 libjansson4
    libjs-jquery libjs-underscore libjs-sphinxdoc"
DATA_BASE="$CACHE/base-$SUITE-${PACKAGES//,/-}-data.tar"

say() { echo "build-image: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap and chroot need it)"
command -v docker >/dev/null || die "docker is missing: run scripts/ensure-docker.sh"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer: run scripts/ensure-docker.sh"

# debian_mirror SUITE: the Debian mirrors this machine's apt uses.
. "$here/../scripts/debian-mirror.sh"

# No package caches, docs or man pages in a sandbox.
slim() {
    rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* \
        "$1"/usr/share/man/* "$1"/usr/share/info/* "$1"/var/log/* "$1"/tmp/*
}

need_mirror() {
    MIRROR="${DUET_DEBIAN_MIRROR:-$(debian_mirror "$SUITE" | head -n1)}"
    [ -n "$MIRROR" ] || die "no Debian mirror for $SUITE in /etc/apt/sources.list(.d); set DUET_DEBIAN_MIRROR"
}

if [ ! -s "$BASE" ] || [ "${DUET_SANDBOX_REBUILD:-0}" = 1 ]; then
    command -v debootstrap >/dev/null || die "debootstrap is missing: apt-get install -y debootstrap"
    need_mirror
    say "debootstrap $SUITE ($PACKAGES) from $MIRROR"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$work/rootfs" "$MIRROR" \
        >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    slim "$work/rootfs"
    mkdir -p "$CACHE"
    tar -C "$work/rootfs" --numeric-owner -cf "$BASE.partial" .
    mv "$BASE.partial" "$BASE"
    rm -rf "$work"
    trap - EXIT
fi

if [ "$ENVIRONMENT" = python-data ] && { [ ! -s "$DATA_BASE" ] || [ "${DUET_SANDBOX_REBUILD:-0}" = 1 ]; }; then
    need_mirror
    say "adding $DATA_PACKAGES to the python base with apt from $MIRROR"
    work="$(mktemp -d)"
    trap 'umount "$work/rootfs/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
    mkdir "$work/rootfs"
    tar -C "$work/rootfs" --numeric-owner -xf "$BASE"
    echo "deb $MIRROR $SUITE main" >"$work/rootfs/etc/apt/sources.list"
    cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"
    mount -t proc proc "$work/rootfs/proc"
    in_root() { DEBIAN_FRONTEND=noninteractive chroot "$work/rootfs" "$@" >>"$work/apt.log" 2>&1; }
    in_root apt-get update -qq || { tail -30 "$work/apt.log" >&2; die "apt-get update failed"; }
    # shellcheck disable=SC2086 # word splitting wanted
    in_root apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-unsafe-io \
        $DATA_PACKAGES || { tail -30 "$work/apt.log" >&2; die "apt-get install failed"; }
    # shellcheck disable=SC2086
    in_root dpkg --purge --force-depends --force-unsafe-io $DATA_DROP \
        || { tail -30 "$work/apt.log" >&2; die "removing the build tool chain failed"; }
    in_root ldconfig
    in_root python3 -c 'import numpy, pandas, scipy.stats' \
        || { tail -30 "$work/apt.log" >&2; die "numpy, pandas or scipy does not import"; }
    umount "$work/rootfs/proc"
    : >"$work/rootfs/etc/resolv.conf"
    slim "$work/rootfs"
    tar -C "$work/rootfs" --numeric-owner -cf "$DATA_BASE.partial" .
    mv "$DATA_BASE.partial" "$DATA_BASE"
    rm -rf "$work"
    trap - EXIT
fi

say "adding the sandbox user and the runner"
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
if [ "$ENVIRONMENT" = python-data ]; then
    tar -C "$root" --numeric-owner -xf "$DATA_BASE"
else
    tar -C "$root" --numeric-owner -xf "$BASE"
fi
grep -q '^sandbox:' "$root/etc/group" || echo 'sandbox:x:10001:' >>"$root/etc/group"
grep -q '^sandbox:' "$root/etc/passwd" \
    || echo 'sandbox:x:10001:10001:Duet sandbox:/tmp:/usr/sbin/nologin' >>"$root/etc/passwd"
grep -q '^sandbox:' "$root/etc/shadow" || echo 'sandbox:!:19000::::::' >>"$root/etc/shadow"
install -d -m 0700 -o 10001 -g 10001 "$root/work"
install -m 0755 -o 0 -g 0 "$here/runner.py" "$root/usr/local/bin/duet-runner"
# no-new-privileges already makes set-uid bits inert; remove them anyway.
find "$root" -xdev -type f -perm /6000 -exec chmod ug-s {} +

# The environment's facts, from the root itself (its own interpreter, no network: -I -S keeps
# site customisation and the user's paths out, importlib.metadata reads dist-packages).
python_version="$(chroot "$root" /usr/bin/python3 -I -c 'import platform; print(platform.python_version())')"
packages="$(chroot "$root" /usr/bin/python3 -I -c '
import importlib.metadata as m
seen = {}
for d in m.distributions():
    name = (d.metadata["Name"] or "").strip().lower().replace("_", "-")
    if name and d.version:
        seen.setdefault(name, d.version)
print(" ".join("%s==%s" % kv for kv in sorted(seen.items())))')"
[ -n "$python_version" ] && [ -n "$packages" ] || die "could not read the Python version and packages"

say "importing as $IMAGE ($ENVIRONMENT: Python $python_version, $packages)"
tar -C "$root" --numeric-owner -c . | docker import \
    --change 'USER 10001:10001' \
    --change 'WORKDIR /work' \
    --change 'ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 LANG=C.UTF-8 HOME=/tmp PATH=/usr/local/bin:/usr/bin:/bin' \
    --change "LABEL duet.sandbox.contract=$CONTRACT" \
    --change "LABEL duet.environment.name=$ENVIRONMENT" \
    --change "LABEL duet.environment.python=$python_version" \
    --change "LABEL duet.environment.packages=\"$packages\"" \
    --change 'CMD ["/usr/local/bin/duet-runner"]' \
    - "$IMAGE" >/dev/null
say "built $IMAGE"
