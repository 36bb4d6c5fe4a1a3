#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Apply cluster-wide Patroni settings through the REST API."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: patroni_config
short_description: Apply cluster-wide (DCS) Patroni settings through PATCH /config
version_added: 0.1.0
description:
  - Reads the cluster-wide configuration of a Patroni cluster (C(GET /config)), compares it with O(config) and sends
    C(PATCH /config) with only the keys that differ. Keys that O(config) does not name are left alone.
  - Patroni reads C(bootstrap.dcs) of its configuration file only when it initialises the cluster; this module is how
    later changes of C(ttl), C(loop_wait), C(maximum_lag_on_failover), C(synchronous_mode), cluster-wide PostgreSQL
    parameters and the like reach a running cluster.
  - Reports which changed parameters need a restart of PostgreSQL, and whether the member behind O(url) has a restart
    pending. It never restarts anything.
author:
  - pigpen.pgsql contributors !UNKNOWN
options:
  config:
    description:
      - Desired cluster-wide configuration, shaped like C(bootstrap.dcs) of Patroni's configuration file.
      - A key set to V(null) is removed from the cluster configuration.
    type: dict
    required: true
  scope:
    description:
      - Name of the cluster, for the messages.
    type: str
    default: the cluster
  partial:
    description:
      - O(config) names only some keys (e.g. one permanent slot) rather than the cluster's whole configuration, so
        it says nothing of whether the cluster is a standby cluster, and O(standby_change) is not checked.
    type: bool
    default: false
  standby_change:
    description:
      - Whether this run may change whether the cluster is a standby cluster (C(standby_cluster) in the DCS).
      - V(false) refuses, before anything is sent, a O(config) that would turn an ordinary cluster (a promoted one)
        into a standby cluster, and a O(config) without C(standby_cluster) for a cluster whose DCS has it (the
        key would otherwise be left alone and the cluster would keep following its source).
      - V(true) sends the change; for a cluster leaving standby, C(standby_cluster) is removed, and Patroni promotes
        the standby leader at its next cycle.
      - A cluster that runs its primary is never made a standby cluster, V(true) or not; Patroni would stop the
        primary at once, without waiting for its standbys to receive its last writes. C(pgsql-reverse.yml) stops
        it cleanly first.
    type: bool
    default: false
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
    support: full
notes:
  - Uses only the REST API; runs on any host that reaches it.
"""

EXAMPLES = r"""
- name: Push the cluster-wide settings of the model to the DCS
  pigpen.pgsql.patroni_config:
    url: http://10.10.10.11:8008
    username: postgres
    password: "{{ patroni_password }}"
    config: "{{ patroni_config.bootstrap.dcs }}"
  no_log: true

- name: Switch to synchronous replication
  pigpen.pgsql.patroni_config:
    username: postgres
    password: "{{ patroni_password }}"
    config:
      synchronous_mode: true
"""

RETURN = r"""
patch:
  description: The merge patch that was sent (or would be sent in check mode); empty when nothing differed.
  returned: always
  type: dict
  sample: {"ttl": 60, "postgresql": {"parameters": {"max_connections": "300"}}}
role_change:
  description: >-
    V(promote) when the patch removes C(standby_cluster), V(demote) when it adds it to an ordinary cluster, else
    V(none).
  returned: always
  type: str
  sample: promote
standby_cluster:
  description: >-
    C(standby_cluster) of the cluster-wide configuration before the change (the source it followed), or V(null).
  returned: always
  type: dict
  sample: {"host": "10.10.10.3", "port": 5432}
restart_parameters:
  description: Changed PostgreSQL parameters that take effect only after a restart of PostgreSQL.
  returned: always
  type: list
  elements: str
  sample: [max_connections]
pending_restart:
  description: Whether the member behind O(url) reports a pending restart (after the change, if any was sent).
  returned: always
  type: bool
config:
  description: The cluster-wide configuration after the change (as Patroni answered, or as it would be in check mode).
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_api import (
    config_patch,
    merge,
    restart_parameters,
    standby_change,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.reversal import running_primary
from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_client import (
    REST_ARGUMENT_SPEC,
    PatroniClient,
    PatroniError,
)


class PatroniConfig:
    """GET /config, compute the patch, PATCH /config."""

    def __init__(self, module, opener=None):
        self.module = module
        self.api = PatroniClient.from_params(module.params, opener=opener)

    def request(self, path, method="GET", body=None):
        try:
            answer = self.api.request(path, method, body)
        except PatroniError as exc:
            self.module.fail_json(msg=str(exc))
        if not isinstance(answer, dict):
            self.module.fail_json(msg="%s %s%s did not answer JSON: %r" % (method, self.api.url, path, answer[:200]))
        return answer

    def run(self):
        params = self.module.params
        current = self.request("/config")
        desired, refusal = dict(params["config"]), None
        if not params["partial"]:
            running = None
            if desired.get("standby_cluster") and not current.get("standby_cluster") and params["standby_change"]:
                running = running_primary(self.request("/cluster"))
            desired, refusal = standby_change(current, desired, params["scope"], params["standby_change"], running)
        if refusal is not None:
            self.module.fail_json(msg=refusal, refused=True)
        patch = config_patch(current, desired)
        role_change = "none"
        if "standby_cluster" in patch:
            if patch["standby_cluster"] is None:
                role_change = "promote"
            elif not current.get("standby_cluster"):
                role_change = "demote"
        result = {
            "changed": bool(patch),
            "patch": patch,
            "restart_parameters": restart_parameters(patch),
            "role_change": role_change,
            "standby_cluster": current.get("standby_cluster") or None,
        }
        if patch and self.module._diff:
            result["diff"] = {"before": current, "after": merge(current, patch)}
        if patch and not self.module.check_mode:
            result["config"] = self.request("/config", "PATCH", patch)
        else:
            result["config"] = merge(current, patch)
        state = self.request("/patroni")
        result["pending_restart"] = bool(state.get("pending_restart", False))
        return result


def main():
    module = AnsibleModule(
        argument_spec={
            "config": {"type": "dict", "required": True},
            "scope": {"type": "str", "default": "the cluster"},
            "standby_change": {"type": "bool", "default": False},
            "partial": {"type": "bool", "default": False},
            **REST_ARGUMENT_SPEC,
        },
        required_together=[["username", "password"]],
        supports_check_mode=True,
    )
    module.exit_json(**PatroniConfig(module).run())


if __name__ == "__main__":
    main()
