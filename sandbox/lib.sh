# Helpers shared by sandbox/sandbox.sh, sandbox/vm/vm.sh and the image
# builds. Sourced; the caller sets ENV_NAME (messages) and, for the SSH
# helpers, SSH_KEY.
# shellcheck shell=bash

log() { printf '%s: %s\n' "$ENV_NAME" "$*"; }
die() { printf '%s: %s\n' "$ENV_NAME" "$*" >&2; exit 1; }

# need TOOL...: die naming the first missing one (NEED_HINT: how to get it)
need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "'$tool' is missing: run '${NEED_HINT:-make host-deps}' first"
    done
}

# Options of every ssh to a node: the sandbox's key, no prompt, no host key
# kept (nodes get new host keys whenever they are rebuilt).
ssh_options() {
    # shellcheck disable=SC2034  # used by the scripts that source this file
    SSH_OPTS=(-i "$SSH_KEY" -o BatchMode=yes -o ConnectTimeout=5 -o LogLevel=ERROR
        -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null)
}

ensure_key() {
    [[ -f $SSH_KEY ]] && return 0
    need ssh-keygen
    install -d -m 0700 "$(dirname "$SSH_KEY")"
    ssh-keygen -q -t ed25519 -N '' -C "pigpen-sandbox" -f "$SSH_KEY"
    log "generated SSH key $SSH_KEY"
}

# remove_tree DIR: a build tree, after unmounting whatever is mounted under
# it (debootstrap and the builds mount proc, sys, dev inside): never delete
# through a mount that a failed run left behind.
remove_tree() {
    local m
    while read -r m; do
        [[ -n $m ]] && { umount -l "$m" || true; }
    done < <(awk -v w="$1/" 'index($2, w) == 1 {print $2}' /proc/mounts | sort -r)
    rm -rf --one-file-system "$1"
}
