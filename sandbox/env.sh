# Sourced by sandbox/sandbox.sh and sandbox/s3.sh: takes an optional
# leading "--env NAME" off the caller's arguments and loads
# sandbox/envs/NAME.env (default: sandbox). Sets REPO, ENV_NAME, ENV_FILE,
# SANDBOX_PREFIX and SANDBOX_SUBNET (and SANDBOX_EXTRA_INVENTORY, an inventory
# whose groups are added to inventory/sandbox.yml's, when the file sets it).
# shellcheck shell=bash
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ENV_NAME=sandbox
if [[ ${1:-} == --env ]]; then
    ENV_NAME=${2:?--env needs a name}
    shift 2
fi
ENV_FILE=$REPO/sandbox/envs/$ENV_NAME.env
[[ -r $ENV_FILE ]] || { echo "$(basename "$0"): no environment '$ENV_NAME' ($ENV_FILE)" >&2; exit 2; }
# shellcheck source-path=SCRIPTDIR source=envs/sandbox.env
source "$ENV_FILE"
: "${SANDBOX_PREFIX:?$ENV_FILE must set SANDBOX_PREFIX}" "${SANDBOX_SUBNET:?$ENV_FILE must set SANDBOX_SUBNET}"
