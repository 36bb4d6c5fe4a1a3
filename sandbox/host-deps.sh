#!/usr/bin/env bash
# Installs what the control host needs for the sandbox and the tests
# (Debian 12, as root). Does nothing when everything is already there.
# With the argument "vm": also QEMU, for the VMs of the Molecule scenario
# "vm" (sandbox/vm/vm.sh).
set -Eeuo pipefail

packages=(
    podman runc netavark aardvark-dns iptables  # containers (runc: see docs/sandbox.md)
    debootstrap                                 # node image, built from Debian's archive
    openssh-client                              # Ansible and people reach nodes over SSH
    python3 python3-venv                        # the .venv of requirements.txt
    ca-certificates make git tar coreutils procps
    openssl iproute2                            # sandbox/s3.sh: certificate of the object store
    postgresql-client-15                        # psql, pg_dump: molecule/dr checks from the control host
)
if [[ ${1:-} == vm ]]; then
    packages+=(qemu-system-x86 qemu-utils e2fsprogs)  # VMs: QEMU, qcow2 disks, mkfs.ext4 -d
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query --show --showformat='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ $status == installed ]] || missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "host-deps: missing ${missing[*]}; run as root (or install them with apt-get)" >&2
    exit 1
fi
echo "host-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
