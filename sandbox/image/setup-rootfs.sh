#!/usr/bin/env bash
# Turns a fresh debootstrap tree into the root of the node image.
# Usage: setup-rootfs.sh ROOTFS   (runs on the build host, as root)
set -Eeuo pipefail

root=${1:?usage: setup-rootfs.sh ROOTFS}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Podman sets the hostname of each container. /etc/hosts is left to the node
# role (containers run with --no-hosts), so it starts as Debian ships it.
echo localhost >"$root/etc/hostname"
cat >"$root/etc/hosts" <<'HOSTS'
127.0.0.1	localhost
::1		localhost ip6-localhost ip6-loopback
ff02::1		ip6-allnodes
ff02::2		ip6-allrouters
HOSTS

# Per-node identity is created at first boot: machine id by systemd, SSH host
# keys by ssh-hostkeys.service.
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -f "$root"/etc/ssh/ssh_host_*
install -m 0644 "$here/files/ssh-hostkeys.service" "$root/etc/systemd/system/ssh-hostkeys.service"
install -d "$root/etc/systemd/system/ssh.service.requires"
ln -sfn /etc/systemd/system/ssh-hostkeys.service \
    "$root/etc/systemd/system/ssh.service.requires/ssh-hostkeys.service"
ln -sfn /lib/systemd/system/ssh.service \
    "$root/etc/systemd/system/multi-user.target.wants/ssh.service"

# Root logs in with a key only (Debian's default); the sandbox installs the
# public key into each node when it creates it. No password is set.
install -d -m 0700 "$root/root/.ssh"

# Units that only make sense on a console or real hardware.
for unit in getty@tty1.service console-getty.service systemd-firstboot.service; do
    ln -sfn /dev/null "$root/etc/systemd/system/$unit"
done

# Small image: no package cache and no package lists (the node role runs
# apt-get update itself, as it would on a real node).
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
rm -rf "$root"/tmp/* "$root"/var/tmp/*
find "$root/var/log" -type f -exec truncate -s 0 {} +
