#!/usr/bin/env bash
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
#
# Unpack Debian 12's haproxy binary (and the libraries it needs) into
# .cache/haproxy without installing the package, so the tests can check the
# rendered service fragments with the real parser (`haproxy -c`) on the
# control host without running an HAProxy service there. Idempotent.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest="$repo/.cache/haproxy"
[ -x "$dest/usr/sbin/haproxy" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download writes into the current directory; _apt cannot read a
# root-owned mktemp dir, which only costs a warning.
pkgs=(haproxy liblua5.3-0 libopentracing-c-wrapper0 libopentracing1)
if ! apt-get download "${pkgs[@]}" >download.log 2>&1; then
    # a fresh machine may not have package lists yet
    apt-get update -qq
    apt-get download "${pkgs[@]}" >download.log 2>&1 || { cat download.log >&2; exit 1; }
fi
mkdir -p "$dest"
for deb in ./*.deb; do dpkg -x "$deb" "$dest"; done
# Read the whole version banner before printing its first line: piping into
# `head` would let haproxy die of SIGPIPE, which pipefail turns into a failure.
banner=$(LD_LIBRARY_PATH="$dest/usr/lib/x86_64-linux-gnu" "$dest/usr/sbin/haproxy" -v)
printf '%s\n' "${banner%%$'\n'*}"
