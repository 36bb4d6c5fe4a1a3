#!/usr/bin/env bash
# Lifecycle of the sandbox nodes: Debian 12 containers running systemd and
# sshd on a podman network of their own, reached by Ansible over SSH exactly
# like real nodes. The node list comes from inventory/sandbox.yml.
#
# Usage: sandbox/sandbox.sh [--env NAME] COMMAND [ARGS]
#
#   image [--force]   build the node image unless the current recipe is cached
#   create            image, SSH key, network and nodes; keeps healthy nodes
#   start | stop      start or stop the nodes of the environment
#   destroy           remove the nodes and the network (keeps key and image)
#   status            one line per node: container state, address, systemd
#   wait              wait until every node answers over SSH
#   nodes             print "ADDRESS HOSTNAME" for each node
#   inventory         print the path of the environment's inventory
#   ssh HOST [CMD]    open a shell (or run CMD) on a node, by hostname or address
#   image-prune       remove node images of older recipes that no container uses
#
# Environments are defined in sandbox/envs/NAME.env (prefix of container and
# network names, subnet): "sandbox" (default, 10.10.10.0/24) is the one of
# `make sandbox`, "molecule" (10.10.20.0/24) the one of the Molecule scenario,
# "bench" (10.10.30.0/24) the one of `make bench-sandbox`.
set -Eeuo pipefail

# shellcheck source=SCRIPTDIR/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
COMMAND=${1:-help}
[[ $# -gt 0 ]] && shift

SOURCE_INVENTORY=$REPO/inventory/sandbox.yml
SOURCE_SUBNET=10.10.10.0/24
STATE_DIR=$REPO/.sandbox
ENV_DIR=$STATE_DIR/$ENV_NAME
SSH_KEY=$STATE_DIR/ssh/id_ed25519
VENV=$REPO/.venv
NETWORK=$SANDBOX_PREFIX
IMAGE_REPO=localhost/pigpen-node
LABEL=io.pigpen.sandbox
HOST_CA=/etc/ssl/certs/ca-certificates.crt
NODE_CA=/usr/local/share/ca-certificates/pigpen-sandbox-host-ca.crt
WAIT_SECONDS=${SANDBOX_WAIT_SECONDS:-180}
# shellcheck source=SCRIPTDIR/lib.sh
source "$REPO/sandbox/lib.sh"
ssh_options

recipe_hash() {
    (cd "$REPO/sandbox/image" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) |
        sha256sum | cut -c1-12
}

image_tag() { echo "$IMAGE_REPO:$(recipe_hash)"; }

# Ulimits at or below the host's hard limits: the container runtime cannot
# raise them (no CAP_SYS_RESOURCE), and podman's defaults are higher. runc
# also refuses an nproc limit above kernel.pid_max.
ulimit_value() {
    local hard=$1 cap=$2
    if [[ $hard == unlimited || $hard -gt $cap ]]; then echo "$cap"; else echo "$hard"; fi
}

cmd_image() {
    need podman debootstrap
    local tag force=${1:-}
    tag=$(image_tag)
    if [[ $force != --force ]] && podman image exists "$tag"; then
        log "image $tag is cached (recipe unchanged)"
        return 0
    fi
    # A forced rebuild moves the tag to the new image; containers made from
    # the old one keep it until they are removed.
    log "building image $tag"
    "$REPO/sandbox/image/build.sh" "$tag" "$(recipe_hash)"
}

cmd_image_prune() {
    local current id name used
    current=$(podman image inspect --format '{{.Id}}' "$(image_tag)" 2>/dev/null || true)
    used=" $(podman ps -a --no-trunc --format '{{.ImageID}}' | sed 's/^sha256://' | xargs) "
    while read -r id name; do
        id=${id#sha256:}
        [[ -z $id || $id == "${current#sha256:}" ]] && continue
        if [[ $used == *" $id "* ]]; then
            log "old node image ${id:0:12} ($name) is used by a container: kept"
        # Without --force: podman refuses to remove an image a container uses.
        elif podman image rm "$id" >/dev/null; then
            log "removed old node image ${id:0:12} ($name)"
        fi
    done < <(podman images --no-trunc --filter label=org.opencontainers.image.title=pigpen-node \
        --format '{{.ID}} {{.Repository}}:{{.Tag}}')
}

inventory_path() {
    if [[ $SANDBOX_SUBNET == "$SOURCE_SUBNET" ]]; then
        echo "$SOURCE_INVENTORY"
    else
        echo "$ENV_DIR/inventory.yml"
    fi
}

# The environment's inventory: inventory/sandbox.yml itself, or a copy moved
# to the environment's subnet (regenerated, so it follows the source).
ensure_inventory() {
    local inv
    inv=$(inventory_path)
    [[ $inv == "$SOURCE_INVENTORY" ]] && return 0
    [[ -x $VENV/bin/python ]] || die "no $VENV: run 'make venv' first"
    "$VENV/bin/python" "$REPO/sandbox/topology.py" inventory \
        --source "$SOURCE_INVENTORY" --source-subnet "$SOURCE_SUBNET" \
        ${SANDBOX_EXTRA_INVENTORY:+--extra "$REPO/$SANDBOX_EXTRA_INVENTORY"} \
        --subnet "$SANDBOX_SUBNET" --key "$SSH_KEY" --output "$inv"
}

# "ADDRESS HOSTNAME" lines, from the inventory.
node_list() {
    [[ -x $VENV/bin/ansible-inventory ]] || die "no $VENV: run 'make venv' first"
    ensure_inventory
    (cd "$REPO" && "$VENV/bin/python" sandbox/topology.py nodes \
        --inventory "$(inventory_path)" --ansible-inventory "$VENV/bin/ansible-inventory")
}

# Containers of this environment, found by label (works without the venv).
env_containers() {
    podman ps -a --filter "label=$LABEL=$ENV_NAME" --format '{{.Names}}' | sort
}

container_address() {
    podman inspect --format "{{(index .NetworkSettings.Networks \"$NETWORK\").IPAddress}}" "$1" 2>/dev/null || true
}

ensure_network() {
    if podman network exists "$NETWORK"; then
        local subnet
        subnet=$(podman network inspect --format '{{range .Subnets}}{{.Subnet}} {{end}}' "$NETWORK")
        [[ " $subnet " == *" $SANDBOX_SUBNET "* ]] ||
            die "network $NETWORK exists with subnet '$subnet', not $SANDBOX_SUBNET: run '$0 --env $ENV_NAME destroy'"
        return 0
    fi
    podman network create --subnet "$SANDBOX_SUBNET" --label "$LABEL=$ENV_NAME" "$NETWORK" >/dev/null
    log "created network $NETWORK ($SANDBOX_SUBNET)"
}

run_node() {
    local name=$1 address=$2 hostname=$3 tag=$4 nofile nproc
    nofile=$(ulimit_value "$(ulimit -Hn)" 1048576)
    nproc=$(ulimit_value "$(ulimit -Hu)" "$(cat /proc/sys/kernel/pid_max)")
    podman run --detach --name "$name" --hostname "$hostname" \
        --label "$LABEL=$ENV_NAME" --label "$LABEL.address=$address" \
        --network "$NETWORK" --ip "$address" --no-hosts \
        --runtime runc --systemd always --cap-add NET_ADMIN --cap-add NET_RAW \
        --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" \
        "$tag" /sbin/init >/dev/null
}

# The control host's key, and its CA bundle (which trusts the TLS
# interception of some networks) so that HTTPS from the nodes works.
provision_node() {
    local name=$1
    podman exec -i "$name" sh -c \
        'install -d -m 0700 /root/.ssh && cat >/root/.ssh/authorized_keys.new &&
         chmod 0600 /root/.ssh/authorized_keys.new &&
         mv /root/.ssh/authorized_keys.new /root/.ssh/authorized_keys' <"$SSH_KEY.pub"
    if [[ -r $HOST_CA ]] && ! podman exec -i "$name" sh -c "cmp -s - $NODE_CA" <"$HOST_CA"; then
        podman exec -i "$name" sh -c \
            "install -d /usr/local/share/ca-certificates && cat >$NODE_CA &&
             if command -v update-ca-certificates >/dev/null; then update-ca-certificates >/dev/null; fi" <"$HOST_CA"
    fi
}

# Create or repair one node; prints what it did.
ensure_node() {
    local address=$1 hostname=$2 tag=$3 name state current
    name=$SANDBOX_PREFIX-$hostname
    if podman container exists "$name"; then
        state=$(podman inspect --format '{{.State.Status}}' "$name")
        current=$(container_address "$name")
        if [[ $current != "$address" ]]; then
            log "$name has address '$current', not $address: recreating it"
            podman rm --force --time 10 "$name" >/dev/null
        else
            if [[ $state != running ]]; then
                podman start "$name" >/dev/null || true
                state=$(podman inspect --format '{{.State.Status}}' "$name")
            fi
            if [[ $state == running ]]; then
                provision_node "$name"
                if [[ $(podman inspect --format '{{.Image}}' "$name") != "$(podman image inspect --format '{{.Id}}' "$tag")" ]]; then
                    log "$name kept (built from an older image; 'destroy' then 'create' to renew it)"
                else
                    log "$name kept ($address)"
                fi
                return 0
            fi
            log "$name does not start: recreating it"
            podman rm --force --time 10 "$name" >/dev/null
        fi
    fi
    run_node "$name" "$address" "$hostname" "$tag"
    provision_node "$name"
    log "$name created ($address)"
}

cmd_create() {
    need podman ssh
    local tag address hostname nodes
    cmd_image
    tag=$(image_tag)
    ensure_key
    nodes=$(node_list)
    ensure_network
    while read -r address hostname; do
        ensure_node "$address" "$hostname" "$tag"
    done <<<"$nodes"
    wait_nodes "$nodes"
}

# Every node answers over SSH and systemd has finished booting.
wait_nodes() {
    local nodes=$1 address hostname deadline state bad=0
    deadline=$((SECONDS + WAIT_SECONDS))
    while read -r address hostname; do
        until state=$(timeout 60 ssh -n "${SSH_OPTS[@]}" "root@$address" systemctl is-system-running --wait 2>/dev/null) ||
            [[ $state == degraded ]]; do
            if ((SECONDS >= deadline)); then
                log "$hostname ($address) does not answer over SSH after ${WAIT_SECONDS}s" >&2
                bad=1
                break
            fi
            sleep 1
        done
        if [[ $state == degraded ]]; then
            log "$hostname ($address): systemd is degraded, failed units:" >&2
            ssh -n "${SSH_OPTS[@]}" "root@$address" systemctl --failed --no-legend --plain >&2 || true
        elif [[ $state == running ]]; then
            log "$hostname ($address) is up"
        fi
    done <<<"$nodes"
    return "$bad"
}

cmd_wait() { wait_nodes "$(node_list)"; }

# Ansible keeps SSH connections open for a while (ControlPersist); close the
# ones to this environment's nodes so nothing outlives them.
close_ssh_masters() {
    local name address
    for name in $(env_containers); do
        address=$(podman inspect --format "{{index .Config.Labels \"$LABEL.address\"}}" "$name")
        [[ -n $address ]] || continue
        ssh -O exit -o ControlPath="$HOME/.ansible/cp/%C" -l root "$address" >/dev/null 2>&1 || true
        ssh -O exit -o ControlPath="$HOME/.ansible/cp/%C" "$address" >/dev/null 2>&1 || true
    done
}

cmd_start() {
    local names
    names=$(env_containers)
    [[ -n $names ]] || die "no nodes: run '$0 --env $ENV_NAME create'"
    # shellcheck disable=SC2086
    podman start $names >/dev/null
    # this checkout's key: the nodes may have been created from another one
    local name
    for name in $names; do provision_node "$name"; done
    wait_nodes "$(node_list)"
}

cmd_stop() {
    local names
    names=$(env_containers)
    [[ -n $names ]] || { log "no nodes"; return 0; }
    close_ssh_masters
    # shellcheck disable=SC2086
    podman stop --time 30 $names >/dev/null
    log "stopped: $(paste -sd' ' <<<"$names")"
}

cmd_destroy() {
    local names
    names=$(env_containers)
    if [[ -n $names ]]; then
        close_ssh_masters
        # shellcheck disable=SC2086
        if ! podman rm --force --time 10 $names >/dev/null; then
            # A removal that was interrupted leaves a container podman lists
            # but no longer knows ("container not known"): drop what is left
            # of it from the storage, then let the network removal below
            # report anything that really remains.
            for name in $names; do
                podman rm --force --time 10 "$name" >/dev/null 2>&1 ||
                    podman rm --force --storage "$name" >/dev/null 2>&1 ||
                    log "could not remove $name"
            done
        fi
        log "removed: $(paste -sd' ' <<<"$names")"
    fi
    if podman network exists "$NETWORK"; then
        podman network rm --force "$NETWORK" >/dev/null
        log "removed network $NETWORK"
    fi
}

cmd_status() {
    local name state address systemd
    printf '%-28s %-9s %-14s %s\n' CONTAINER STATE ADDRESS SYSTEMD
    for name in $(env_containers); do
        state=$(podman inspect --format '{{.State.Status}}' "$name")
        address=$(podman inspect --format "{{index .Config.Labels \"$LABEL.address\"}}" "$name")
        systemd=-
        if [[ $state == running ]]; then
            systemd=$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)
        fi
        printf '%-28s %-9s %-14s %s\n' "$name" "$state" "$address" "${systemd:--}"
    done
}

cmd_ssh() {
    local target=${1:?usage: ssh HOST [CMD]} address hostname found=
    shift
    while read -r address hostname; do
        if [[ $target == "$hostname" || $target == "$address" ]]; then
            found=$address
        fi
    done <<<"$(node_list)"
    [[ -n $found ]] || die "no node '$target' (see '$0 --env $ENV_NAME nodes')"
    # The terminal's stdin, for an interactive shell.
    exec ssh "${SSH_OPTS[@]}" -t "root@$found" "$@"
}

case $COMMAND in
    image) cmd_image "$@" ;;
    image-prune) cmd_image_prune ;;
    create) cmd_create ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    destroy) cmd_destroy ;;
    status) cmd_status ;;
    wait) cmd_wait ;;
    nodes) node_list ;;
    inventory) ensure_inventory && inventory_path ;;
    ssh) cmd_ssh "$@" ;;
    help | -h | --help) sed -n '2,/^set -E/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' ;;
    *) die "unknown command '$COMMAND' (try: $0 help)" ;;
esac
