#!/usr/bin/env bash
# Builds the VM image from Debian's archive, without any registry: the
# container image's recipe (debootstrap, sandbox/image/setup-rootfs.sh) plus
# a kernel, the stack's packages (image/stack-packages, services disabled)
# and the per-VM identity unit; then an ext4 disk (mkfs.ext4 -d) as qcow2,
# and the kernel and initrd beside it for QEMU's direct boot.
# Usage: build.sh OUTPUT_DIR   (writes disk.qcow2, vmlinuz, initrd.img)
# Environment: PIGPEN_MIRROR, PIGPEN_CACHE as for sandbox/image/build.sh;
#              PIGPEN_VM_DISK_SIZE (default 8G)
set -Eeuo pipefail

out=${1:?usage: build.sh OUTPUT_DIR}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
common=$(cd "$here/../../image" && pwd)
mirror=${PIGPEN_MIRROR:-http://deb.debian.org/debian}
cache=${PIGPEN_CACHE:-/var/cache/pigpen}
size=${PIGPEN_VM_DISK_SIZE:-8G}
suite=bookworm

install -d "$cache/debootstrap" "$out"
work=$(mktemp -d /var/tmp/pigpen-vm-rootfs.XXXXXX)
root=$work/root

# shellcheck source=SCRIPTDIR/../../lib.sh
source "$here/../../lib.sh"
cleanup() { remove_tree "$work"; }
trap cleanup EXIT

list() { grep -hEv '^[[:space:]]*(#|$)' "$@" | paste -sd, -; }

echo "vm image: debootstrap $suite from $mirror"
debootstrap --variant=minbase --include="$(list "$common/packages" "$here/packages")" \
    --cache-dir="$cache/debootstrap" "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 40 "$work/debootstrap.log" >&2
    echo "vm image: debootstrap failed (log above)" >&2
    exit 1
}

# The stack's packages, as the roles would install them, but no service
# starts in the build tree, and postgresql-common creates no cluster (the
# postgres role writes the same file).
mount -t proc proc "$root/proc"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
install -d "$root/etc/postgresql-common/createcluster.d"
printf '# Managed by Ansible (pigpen.pgsql.postgres).\n# Patroni creates and runs the PostgreSQL instance of this node.\ncreate_main_cluster = false\n' \
    >"$root/etc/postgresql-common/createcluster.d/50-pigpen.conf"
echo "vm image: installing the stack's packages"
chroot "$root" apt-get update -qq
# shellcheck disable=SC2046  # one package per word
DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends \
    $(grep -Ev '^[[:space:]]*(#|$)' "$here/stack-packages") >"$work/stack.log" 2>&1 || {
    tail -n 40 "$work/stack.log" >&2
    echo "vm image: installing the stack failed (log above)" >&2
    exit 1
}
rm -f "$root/usr/sbin/policy-rc.d"
# enabled by the roles where they run, as on a node they installed
for unit in postgresql patroni pgbouncer haproxy etcd vip-manager prometheus-node-exporter \
    prometheus-postgres-exporter prometheus-pgbouncer-exporter; do
    chroot "$root" systemctl disable --quiet "$unit.service" 2>/dev/null || true
done
# no timer touching apt or the disks during a test
for unit in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
done
umount "$root/dev" "$root/proc"

# A VM boots its own kernel from its own disk, on a static address.
echo '/dev/vda / ext4 defaults,noatime 0 1' >"$root/etc/fstab"
install -m 0755 "$here/files/pigpen-vm-init" "$root/usr/local/sbin/pigpen-vm-init"
install -m 0644 "$here/files/pigpen-vm-init.service" "$root/etc/systemd/system/pigpen-vm-init.service"
chroot "$root" systemctl enable --quiet pigpen-vm-init.service systemd-networkd.service
"$common/setup-rootfs.sh" "$root"
# setup-rootfs.sh masks console-getty (containers): the serial console of a
# VM keeps its getty through the kernel's console=ttyS0

cp "$(readlink -f "$root/vmlinuz")" "$work/vmlinuz"
cp "$(readlink -f "$root/initrd.img")" "$work/initrd.img"
echo "vm image: writing the disk ($size)"
truncate -s "$size" "$work/disk.raw"
mkfs.ext4 -q -L pigpen-root -d "$root" "$work/disk.raw"
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"
mv "$work/vmlinuz" "$work/initrd.img" "$work/disk.qcow2" "$out/"
echo "vm image: built $out"
