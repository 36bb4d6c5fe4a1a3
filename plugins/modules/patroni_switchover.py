#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Planned switchover or manual failover of a Patroni cluster."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: patroni_switchover
short_description: Switch a Patroni cluster's leadership over to a replica, safely and idempotently
version_added: 0.1.0
description:
  - Reads the cluster from C(GET /cluster) of any member, decides whether a change is needed and whether it is safe,
    then asks Patroni (C(POST /switchover), or C(POST /failover) with O(mode=failover)) and waits until the candidate
    leads and every member runs again.
  - Idempotent with O(candidate) set; when the candidate already leads nothing is done. Without O(candidate) the
    healthy replica with the least lag is chosen, and every run switches over.
  - Refuses, without changing anything, when the cluster has no single leader (switchover), when the candidate is
    unknown, not running, tagged C(nofailover) or lags more than O(max_lag), or when another member is unhealthy
    (unless O(force)).
author:
  - pigpen.pgsql contributors !UNKNOWN
options:
  candidate:
    description: Member (instance name) to promote. Default the healthy replica with the least lag.
    type: str
  leader:
    description: Member expected to lead now; the operation is refused when another does.
    type: str
  mode:
    description:
      - V(switchover) demotes the running leader cleanly (no data loss).
      - V(failover) promotes O(candidate) even without a healthy leader (O(candidate) required); with a running
        leader Patroni treats it as a switchover.
    type: str
    choices: [switchover, failover]
    default: switchover
  max_lag:
    description: Largest replication lag, in bytes, the candidate (and, without O(force), every replica) may have.
    type: int
    default: 1048576
  force:
    description: Skip the health checks of members other than the candidate.
    type: bool
    default: false
  wait:
    description: Seconds to wait for the candidate to lead and every member to run again.
    type: int
    default: 120
  wait_for:
    description:
      - V(healthy) returns once the candidate leads and every member runs again (the old leader as a replica).
      - V(leader) returns as soon as the candidate leads and runs, so that the caller can point the HAProxy
        services at it at once (C(pigpen.pgsql.haproxy_primary)) and wait for the rest of the cluster later.
    type: str
    choices: [healthy, leader]
    default: healthy
extends_documentation_fragment:
  - pigpen.pgsql.patroni_rest
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    support: full
    platforms: posix
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Switch pg-test over to pg-test-2
  pigpen.pgsql.patroni_switchover:
    url: http://10.10.10.11:8008
    candidate: pg-test-2
    username: postgres
    password: "{{ patroni_password }}"
  no_log: true
"""

RETURN = r"""
leader:
  description: The leader before the operation.
  returned: always
  type: str
candidate:
  description: The member that leads afterwards (or would, in check mode).
  returned: always
  type: str
seconds:
  description: Wall time from the request until the candidate led (and, with O(wait_for=healthy), every member ran).
  returned: changed and not check mode
  type: float
"""

import json
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils import patroni_ops as ops
from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_client import (
    REST_ARGUMENT_SPEC,
    PatroniClient,
    PatroniError,
)


class Patroni:
    """The REST API as this module needs it: failures are refusals."""

    def __init__(self, module, opener=None):
        self.api = PatroniClient.from_params(module.params, opener=opener)

    def call(self, path, method="GET", body=None):
        try:
            return self.api.request(path, method, body)
        except PatroniError as exc:
            raise ops.OperationRefused(str(exc)) from exc


def run(module, patroni):
    p = module.params
    cluster = patroni.call("/cluster")
    if p["mode"] == "failover" and ops.leader_of(cluster) is None:
        if not p["candidate"]:
            raise ops.OperationRefused("a failover without a leader needs a candidate")
        plan = {"changed": True, "leader": None, "candidate": p["candidate"]}
    else:
        plan = ops.plan_switchover(cluster, p["candidate"], p["leader"], p["max_lag"], p["force"])
    result = dict(plan)
    if not plan["changed"] or module.check_mode:
        return result
    start = time.monotonic()
    if p["mode"] == "failover":
        patroni.call("/failover", "POST", {"candidate": plan["candidate"]})
    else:
        patroni.call("/switchover", "POST", {"leader": plan["leader"], "candidate": plan["candidate"]})
    expected = [m["name"] for m in ops.members(cluster)]
    deadline = start + p["wait"]
    last = None
    while time.monotonic() < deadline:
        try:
            last = patroni.call("/cluster")
            if ops.switched(last, plan["candidate"]) and (p["wait_for"] == "leader" or ops.healthy(last, expected)):
                result["seconds"] = round(time.monotonic() - start, 1)
                return result
        except ops.OperationRefused:
            pass  # the member behind url may be restarting
        time.sleep(1)
    raise ops.OperationRefused(
        "%s did not lead a healthy cluster within %d s; last seen: %s"
        % (plan["candidate"], p["wait"], json.dumps(last))
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "candidate": {"type": "str"},
            "leader": {"type": "str"},
            "mode": {"type": "str", "default": "switchover", "choices": ["switchover", "failover"]},
            "max_lag": {"type": "int", "default": 1048576},
            "force": {"type": "bool", "default": False},
            "wait": {"type": "int", "default": 120},
            "wait_for": {"type": "str", "default": "healthy", "choices": ["healthy", "leader"]},
            **REST_ARGUMENT_SPEC,
        },
        required_together=[["username", "password"]],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module, Patroni(module)))
    except ops.OperationRefused as exc:
        module.fail_json(msg="%s: %s" % (module.params["url"], exc))


if __name__ == "__main__":
    main()
