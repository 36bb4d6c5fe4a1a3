#!/usr/bin/env bash
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
#
# Unpack Debian 12's promtool (package prometheus) and amtool (package
# prometheus-alertmanager) into .cache/prometheus without installing the
# packages, so the tests can check and unit-test the alerting rules
# (`promtool check rules`, `promtool test rules`) and check Alertmanager's
# configuration (`amtool check-config`) with the versions the infra hosts
# run, without a Prometheus or an Alertmanager service on the control host.
# Both are static Go binaries. Idempotent.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest="$repo/.cache/prometheus"
[ -x "$dest/usr/bin/promtool" ] && [ -x "$dest/usr/bin/amtool" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download writes into the current directory; _apt cannot read a
# root-owned mktemp dir, which only costs a warning.
pkgs=(prometheus prometheus-alertmanager)
if ! apt-get download "${pkgs[@]}" >download.log 2>&1; then
    # a fresh machine may not have package lists yet
    apt-get update -qq
    apt-get download "${pkgs[@]}" >download.log 2>&1 || { cat download.log >&2; exit 1; }
fi
mkdir -p "$dest/usr/bin"
for deb in ./*.deb; do dpkg -x "$deb" unpacked; done
cp unpacked/usr/bin/promtool unpacked/usr/bin/amtool "$dest/usr/bin/"
"$dest/usr/bin/promtool" --version 2>&1 | sed -n 1p
"$dest/usr/bin/amtool" --version 2>&1 | sed -n 1p
