#!/usr/bin/env bash
# Makes sure a Docker engine answers and the sandbox image exists; safe to run again and again.
#
# - If `docker info` fails: installs docker.io (and debootstrap, for the image) with apt when
#   missing, then starts dockerd in the background with no bridge network and no iptables
#   changes (sandbox containers use network mode `none`; nothing here may route anywhere),
#   logging to $DUET_DOCKERD_LOG, and waits for it to answer.
# - For each environment's image, ${DUET_SANDBOX_IMAGE:-duet-sandbox:latest} (python) and
#   ${DUET_SANDBOX_DATA_IMAGE:-duet-sandbox-data:latest} (python-data): if it is missing, or
#   carries another runner contract (label duet.sandbox.contract) than sandbox/build-image.sh
#   builds, builds it with sandbox/build-image.sh (Debian packages, no image registry needed).
#   python-data adds, measured here, 3 min 50 s when nothing is cached (apt downloads and
#   installs its packages into a copy of python's base) and about 1 min from its cached base
#   in /var/cache/duet-sandbox (unpacking and importing 418 MB).
# Exits non-zero with a message saying what failed and what to run.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${DUET_SANDBOX_IMAGE:-duet-sandbox:latest}"
DATA_IMAGE="${DUET_SANDBOX_DATA_IMAGE:-duet-sandbox-data:latest}"
LOG="${DUET_DOCKERD_LOG:-/var/log/duet-dockerd.log}"
WAIT_SECS="${DUET_DOCKERD_WAIT_SECS:-60}"

say() { echo "ensure-docker: $*" >&2; }
die() { say "$*"; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    # apt-get update once per run of this script, and only when something must be installed.
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq || die "apt-get update failed"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
}

engine_answers() { docker info >/dev/null 2>&1; }

if ! engine_answers; then
    missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    if [ "${#missing[@]}" -gt 0 ]; then
        say "installing ${missing[*]}"
        apt_install "${missing[@]}"
    fi
    command -v dockerd >/dev/null 2>&1 || die "dockerd is still missing after installing docker.io"

    if pgrep -x dockerd >/dev/null 2>&1; then
        say "dockerd is running but does not answer yet; waiting"
    else
        say "starting dockerd (log: $LOG)"
        as_root mkdir -p "$(dirname "$LOG")"
        # setsid + nohup: the daemon outlives this script and the shell that ran it.
        as_root setsid nohup dockerd --bridge=none --iptables=false --ip-forward=false \
            --ip-masq=false >>"$LOG" 2>&1 </dev/null &
    fi
    for _ in $(seq 1 "$((WAIT_SECS * 2))"); do
        engine_answers && break
        sleep 0.5
    done
    engine_answers || die "dockerd did not answer within ${WAIT_SECS}s; see $LOG (tail -50 $LOG)"
    say "docker engine is up"
fi

want="$(sed -n 's/^CONTRACT=\([0-9][0-9]*\)$/\1/p' sandbox/build-image.sh)"
[ -n "$want" ] || die "no CONTRACT=<n> line in sandbox/build-image.sh"
# Each environment's image: python first (python-data is built from its cached base).
for environment in python python-data; do
    case "$environment" in
        python) image="$IMAGE" ;;
        python-data) image="$DATA_IMAGE" ;;
    esac
    have=""
    if docker image inspect "$image" >/dev/null 2>&1; then
        have="$(docker image inspect -f '{{index .Config.Labels "duet.sandbox.contract"}}' "$image" 2>/dev/null || true)"
        [ -n "$have" ] || have=0
    fi
    if [ -z "$have" ] || [ "$have" != "$want" ]; then
        command -v debootstrap >/dev/null 2>&1 || { say "installing debootstrap"; apt_install debootstrap; }
        if [ -z "$have" ]; then
            say "image $image ($environment) is missing; building it with sandbox/build-image.sh"
        else
            say "image $image ($environment) has runner contract $have, this tree needs $want; rebuilding it"
        fi
        DUET_SANDBOX_IMAGE="$IMAGE" DUET_SANDBOX_DATA_IMAGE="$DATA_IMAGE" \
            bash sandbox/build-image.sh "$environment" || die "sandbox/build-image.sh $environment failed"
    fi
done
say "ok: engine answers, $IMAGE and $DATA_IMAGE exist (runner contract $want)"
