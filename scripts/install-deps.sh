#!/usr/bin/env bash
# Installs the Debian packages slotd needs to build, test, bench and demo.
# Idempotent: installs only what is missing. --check-only exits 1 when
# something is missing and installs nothing.
set -euo pipefail

packages=(
        build-essential pkg-config
        libarchive-dev libssl-dev libsystemd-dev libinih-dev libcurl4-openssl-dev
        libcmocka-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev
        minisign nginx openssl curl python3 util-linux procps
        systemd dbus zstd xz-utils bzip2 gzip tar cppcheck scdoc bc man-db iproute2 bsdutils
        strace
)

missing=()
for p in "${packages[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing+=("$p")
        fi
done

if [ "${1:-}" = "--check-only" ]; then
        [ ${#missing[@]} -eq 0 ] && exit 0
        echo "missing Debian packages: ${missing[*]}" >&2
        exit 1
fi

[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: run as root to install: ${missing[*]}" >&2
        exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Keep package scripts from starting services on the host (nginx would bind
# port 80): the tests start their own instances.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        made_policy=1
fi
trap '[ $made_policy -eq 1 ] && rm -f "$policy"' EXIT
apt-get install -y -qq --no-install-recommends "${missing[@]}"
