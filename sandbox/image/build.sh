#!/usr/bin/env bash
# Builds the node image from Debian's archive, without any registry:
# debootstrap a Debian 12 tree, adjust it (setup-rootfs.sh), import it.
# Usage: build.sh IMAGE:TAG RECIPE_HASH
# Environment: PIGPEN_MIRROR   Debian mirror (default http://deb.debian.org/debian)
#              PIGPEN_CACHE    cache directory (default /var/cache/pigpen);
#                              downloaded .deb files are kept in its debootstrap/
set -Eeuo pipefail

tag=${1:?usage: build.sh IMAGE:TAG RECIPE_HASH}
recipe=${2:?usage: build.sh IMAGE:TAG RECIPE_HASH}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mirror=${PIGPEN_MIRROR:-http://deb.debian.org/debian}
cache=${PIGPEN_CACHE:-/var/cache/pigpen}
suite=bookworm

install -d "$cache/debootstrap"
work=$(mktemp -d /var/tmp/pigpen-rootfs.XXXXXX)

# shellcheck source=SCRIPTDIR/../lib.sh
source "$here/../lib.sh"
cleanup() { remove_tree "$work"; }
trap cleanup EXIT

includes=$(grep -Ev '^[[:space:]]*(#|$)' "$here/packages" | paste -sd, -)
echo "image: debootstrap $suite ($includes) from $mirror"
debootstrap --variant=minbase --include="$includes" --cache-dir="$cache/debootstrap" \
    "$suite" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" >&2
    echo "image: debootstrap failed (log above)" >&2
    exit 1
}

"$here/setup-rootfs.sh" "$work/root"

echo "image: importing $tag"
tar --numeric-owner --xattrs -C "$work/root" -c . |
    podman import --quiet \
        --change 'CMD ["/sbin/init"]' \
        --change 'STOPSIGNAL SIGRTMIN+3' \
        --change "LABEL org.opencontainers.image.title=pigpen-node" \
        --change "LABEL io.pigpen.recipe=$recipe" \
        --change "LABEL io.pigpen.suite=$suite" \
        - "$tag" >/dev/null
echo "image: built $tag"
