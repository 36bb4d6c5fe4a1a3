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
# Also victoria-metrics and vmalert (package victoria-metrics), which check
# the scrape configuration and the rules for infra_metrics: victoriametrics.
# All are static Go binaries. Idempotent.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
dest="$repo/.cache/prometheus"
tools=(promtool amtool victoria-metrics vmalert)
missing=0
for tool in "${tools[@]}"; do [ -x "$dest/usr/bin/$tool" ] || missing=1; done
[ "$missing" = 0 ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# apt-get download writes into the current directory; _apt cannot read a
# root-owned mktemp dir, which only costs a warning.
pkgs=(prometheus prometheus-alertmanager victoria-metrics)
if ! apt-get download "${pkgs[@]}" >download.log 2>&1; then
    # a fresh machine may not have package lists yet
    apt-get update -qq
    apt-get download "${pkgs[@]}" >download.log 2>&1 || { cat download.log >&2; exit 1; }
fi
mkdir -p "$dest/usr/bin"
for deb in ./*.deb; do dpkg -x "$deb" unpacked; done
for tool in "${tools[@]}"; do cp "unpacked/usr/bin/$tool" "$dest/usr/bin/"; done
"$dest/usr/bin/promtool" --version 2>&1 | sed -n 1p
"$dest/usr/bin/amtool" --version 2>&1 | sed -n 1p
"$dest/usr/bin/victoria-metrics" -version 2>&1 | sed -n 1p
