#!/usr/bin/env bash
# Lifecycle of the VMs of the Molecule scenario "vm": Debian 12 guests under
# QEMU, each on its own copy-on-write disk over one image, on a host bridge
# with NAT, reached by Ansible over SSH like real nodes. Hardware
# virtualisation (KVM) when the host offers it, software emulation (TCG)
# otherwise; which one is decided at create time and reported.
#
# Usage: sandbox/vm/vm.sh [--env NAME] COMMAND
#
#   image [--force]  build the VM image unless the current recipe is cached
#   create           image, SSH key, bridge and VMs; keeps running VMs
#   destroy          stop the VMs, remove their disks, taps and the bridge
#   status           one line per VM: process, address, SSH
#   wait             wait until every VM answers over SSH
#   accel            print the acceleration create would use (kvm or tcg)
#   ssh NAME [CMD]   open a shell (or run CMD) on a VM
#
# The environment (sandbox/envs/vm.env by default) names the VMs, their
# addresses, memory and CPUs. VM_ACCEL=kvm|tcg overrides the choice.
set -Eeuo pipefail

args=("$@")
[[ ${1:-} == --env ]] || args=(--env vm "$@")
# shellcheck source=SCRIPTDIR/../env.sh
source "$(dirname "${BASH_SOURCE[0]}")/../env.sh" "${args[@]}"
set -- "${args[@]}"
[[ ${1:-} == --env ]] && shift 2
COMMAND=${1:-help}
[[ $# -gt 0 ]] && shift

: "${VM_NODES:?$ENV_FILE must set VM_NODES}"
VM_MEMORY=${VM_MEMORY:-1024}
VM_CPUS=${VM_CPUS:-1}
STATE_DIR=$REPO/.sandbox
ENV_DIR=$STATE_DIR/$ENV_NAME
SSH_KEY=$STATE_DIR/ssh/id_ed25519
CACHE=${PIGPEN_CACHE:-/var/cache/pigpen}
RECIPE_DIR=$REPO/sandbox/vm/image
BRIDGE=${VM_BRIDGE:-pgvm0}
PREFIX_LEN=${SANDBOX_SUBNET#*/}
NET=${SANDBOX_SUBNET%.*/*}
GATEWAY=$NET.1
WAIT_SECONDS=${VM_WAIT_SECONDS:-600}
# shellcheck disable=SC2034  # read by need() in lib.sh
NEED_HINT="sandbox/host-deps.sh vm"
# shellcheck source=SCRIPTDIR/../lib.sh
source "$REPO/sandbox/lib.sh"
ssh_options

# the recipe: this directory's files and the container image's, which it builds on
recipe_hash() {
    (cd "$REPO/sandbox" && find vm/image image -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
        sha256sum | cut -c1-12
}

image_dir() { echo "$CACHE/vm/$(recipe_hash)"; }

cmd_image() {
    need debootstrap qemu-img mkfs.ext4
    local dir
    dir=$(image_dir)
    if [[ ${1:-} != --force && -f $dir/disk.qcow2 ]]; then
        log "VM image $dir is cached (recipe unchanged)"
        return 0
    fi
    log "building VM image $dir"
    rm -rf "$dir" "$dir.tmp"
    "$RECIPE_DIR/build.sh" "$dir.tmp"
    mv "$dir.tmp" "$dir"
    # images of older recipes go, unless a VM runs on one (its disk is an
    # overlay of it)
    local old name running_vm=0
    while read -r _ name _; do
        running "$name" && running_vm=1
    done < <(nodes)
    if ((running_vm == 0)); then
        for old in "$CACHE"/vm/*; do
            [[ $old == "$dir" || ! -d $old ]] && continue
            rm -rf "$old" && log "removed the VM image of an older recipe: $old"
        done
    fi
}

# KVM needs the CPU's virtualisation extensions: /dev/kvm alone is not
# enough (a kvm_pvm /dev/kvm boots no stock kernel).
accel() {
    if [[ -n ${VM_ACCEL:-} ]]; then
        echo "$VM_ACCEL"
    elif [[ -w /dev/kvm ]] && grep -qE '^flags.*\b(vmx|svm)\b' /proc/cpuinfo; then
        echo kvm
    else
        echo tcg
    fi
}

accel_args() {
    case $1 in
    kvm) echo "-accel kvm -cpu host" ;;
    tcg) echo "-accel tcg,thread=multi,tb-size=256 -cpu max" ;;
    *) die "VM_ACCEL must be kvm or tcg, not '$1'" ;;
    esac
}

# "ADDRESS NAME INDEX" per VM
nodes() {
    local i=0 entry
    for entry in $VM_NODES; do
        i=$((i + 1))
        echo "${entry%%:*} ${entry#*:} $i"
    done
}

uplink() { ip -o route show default | awk '{print $5; exit}'; }

ensure_bridge() {
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge
        ip addr add "$GATEWAY/$PREFIX_LEN" dev "$BRIDGE"
        log "created bridge $BRIDGE ($GATEWAY/$PREFIX_LEN)"
    fi
    ip link set "$BRIDGE" up
    sysctl -qw net.ipv4.ip_forward=1
    # NAT to the host's uplink (Debian's archive), tagged for destroy
    local out
    out=$(uplink)
    iptables -t nat -C POSTROUTING -s "$SANDBOX_SUBNET" ! -d "$SANDBOX_SUBNET" -o "$out" -j MASQUERADE \
        -m comment --comment "$ENV_NAME" 2>/dev/null ||
        iptables -t nat -A POSTROUTING -s "$SANDBOX_SUBNET" ! -d "$SANDBOX_SUBNET" -o "$out" -j MASQUERADE \
            -m comment --comment "$ENV_NAME"
    iptables -C FORWARD -i "$BRIDGE" -j ACCEPT -m comment --comment "$ENV_NAME" 2>/dev/null ||
        iptables -I FORWARD -i "$BRIDGE" -j ACCEPT -m comment --comment "$ENV_NAME"
    iptables -C FORWARD -o "$BRIDGE" -j ACCEPT -m comment --comment "$ENV_NAME" 2>/dev/null ||
        iptables -I FORWARD -o "$BRIDGE" -j ACCEPT -m comment --comment "$ENV_NAME"
}

pidfile() { echo "$ENV_DIR/$1.pid"; }

running() {
    local pid
    pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null
}

start_vm() {
    local address=$1 name=$2 index=$3 mode=$4 dir=$5
    local tap=pgvm-t$index mac disk
    mac=$(printf '52:54:00:%02x:%02x:%02x' "$(echo "$NET" | cut -d. -f2)" "$(echo "$NET" | cut -d. -f3)" "$index")
    disk=$ENV_DIR/$name.qcow2
    if running "$name"; then
        log "$name is running"
        return 0
    fi
    [[ -f $disk ]] || qemu-img create -q -f qcow2 -F qcow2 -b "$dir/disk.qcow2" "$disk"
    if ! ip link show "$tap" >/dev/null 2>&1; then
        ip tuntap add dev "$tap" mode tap
        ip link set "$tap" master "$BRIDGE"
    fi
    ip link set "$tap" up
    local cmdline
    cmdline="root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet"
    cmdline+=" pigpen.ip=$address/$PREFIX_LEN pigpen.gw=$GATEWAY pigpen.hostname=$name"
    cmdline+=" pigpen.dns=$(awk '/^nameserver/ {print $2; exit}' /etc/resolv.conf)"
    cmdline+=" pigpen.ssh=$(base64 -w0 <"$SSH_KEY.pub")"
    # shellcheck disable=SC2046
    qemu-system-x86_64 -name "$name" $(accel_args "$mode") -smp "$VM_CPUS" -m "$VM_MEMORY" \
        -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" -append "$cmdline" \
        -drive "file=$disk,if=virtio,format=qcow2,cache=unsafe,discard=unmap" \
        -netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" -device "virtio-net-pci,netdev=n0,mac=$mac" \
        -rtc base=utc -display none -serial "file:$ENV_DIR/$name.console" \
        -monitor "unix:$ENV_DIR/$name.monitor,server,nowait" \
        -pidfile "$(pidfile "$name")" -daemonize
    log "started $name ($address, $mode, ${VM_MEMORY} MiB, $VM_CPUS CPU)"
}

cmd_create() {
    need qemu-system-x86_64 qemu-img ssh-keygen iptables
    cmd_image
    ensure_key
    install -d "$ENV_DIR"
    ensure_bridge
    local mode dir address name index
    mode=$(accel)
    dir=$(image_dir)
    log "acceleration: $mode"
    echo "$mode" >"$ENV_DIR/accel"
    while read -r address name index; do
        start_vm "$address" "$name" "$index" "$mode" "$dir"
    done < <(nodes)
    cmd_wait
}

cmd_wait() {
    local address name _index deadline=$((SECONDS + WAIT_SECONDS)) started=$SECONDS
    while read -r address name _index; do
        until ssh -n "${SSH_OPTS[@]}" "root@$address" true 2>/dev/null; do
            ((SECONDS < deadline)) || die "$name ($address) did not answer over SSH within $WAIT_SECONDS s (see $ENV_DIR/$name.console)"
            sleep 3
        done
    done < <(nodes)
    log "every VM answers over SSH ($((SECONDS - started)) s)"
}

cmd_destroy() {
    local address name index pid removed=0
    while read -r address name index; do
        if running "$name"; then
            pid=$(cat "$(pidfile "$name")")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        ip link del "pgvm-t$index" 2>/dev/null || true
        if [[ -e $ENV_DIR/$name.qcow2 ]]; then
            removed=1
        fi
        rm -f "$ENV_DIR/$name".{qcow2,pid,console,monitor}
    done < <(nodes)
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link del "$BRIDGE"
    fi
    local out
    out=$(uplink)
    while iptables -t nat -D POSTROUTING -s "$SANDBOX_SUBNET" ! -d "$SANDBOX_SUBNET" -o "$out" -j MASQUERADE \
        -m comment --comment "$ENV_NAME" 2>/dev/null; do :; done
    while iptables -D FORWARD -i "$BRIDGE" -j ACCEPT -m comment --comment "$ENV_NAME" 2>/dev/null; do :; done
    while iptables -D FORWARD -o "$BRIDGE" -j ACCEPT -m comment --comment "$ENV_NAME" 2>/dev/null; do :; done
    if ((removed)); then log "removed the VMs and their bridge"; else log "no VM to remove"; fi
}

cmd_status() {
    local address name _index state ssh_state
    while read -r address name _index; do
        state=stopped
        running "$name" && state=running
        ssh_state=-
        if [[ $state == running ]]; then
            ssh_state=no-ssh
            ssh -n "${SSH_OPTS[@]}" "root@$address" true 2>/dev/null && ssh_state=ssh
        fi
        printf '%-8s %-8s %-15s %s\n' "$name" "$state" "$address" "$ssh_state"
    done < <(nodes)
}

cmd_ssh() {
    local target=${1:?usage: vm.sh ssh NAME [CMD]} address
    shift
    address=$(nodes | awk -v t="$target" '$1 == t || $2 == t {print $1; exit}')
    [[ -n $address ]] || die "no VM named $target"
    exec ssh "${SSH_OPTS[@]}" "root@$address" "$@"
}

case $COMMAND in
image) cmd_image "$@" ;;
create) cmd_create ;;
destroy) cmd_destroy ;;
status) cmd_status ;;
wait) cmd_wait ;;
accel) accel ;;
ssh) cmd_ssh "$@" ;;
*) sed -n '2,/^set -E/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
esac
