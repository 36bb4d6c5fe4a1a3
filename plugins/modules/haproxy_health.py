#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Stop or resume the health checks of a cluster's servers in a node's HAProxy."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_health
short_description: Stop or resume the health checks of a cluster's servers in a node's HAProxy
version_added: 0.1.0
description:
  - With O(state=frozen), sends C(disable health <backend>/<server>) over the node's admin socket for every server
    of every backend of O(cluster) (its services and their fallback tiers), so that each server keeps the state it
    is in, UP or DOWN, whatever its checks would say. With O(state=checked) the checks resume (C(enable health)).
  - Used while the members' REST API moves from HTTP to HTTPS (C(patroni_ssl_enabled)). No check could pass on
    both, so the routing is held as it is from before the first member switches until every HAProxy checks over
    HTTPS. A reload of HAProxy keeps the stopped checks (the servers' state file of the haproxy role).
  - Idempotent; only the servers whose checks are not yet as asked are sent a command; servers that track
    another one are left alone. Logic in C(module_utils/haproxy_admin.py).
author:
  - pigpen.pgsql contributors !UNKNOWN
options:
  services:
    description: The services the node's HAProxy publishes, as resolved by the C(pg_host_services) filter.
    type: list
    elements: dict
    required: true
  cluster:
    description: The cluster whose servers' checks change (C(pg_cluster)).
    type: str
    required: true
  state:
    description: V(frozen) stops the checks, V(checked) resumes them.
    type: str
    choices: [frozen, checked]
    required: true
  socket:
    description: HAProxy's admin socket (C(stats socket ... level admin)).
    type: path
    default: /run/haproxy/admin.sock
extends_documentation_fragment:
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
- name: Hold the routing of pg-test while its REST API moves to HTTPS
  pigpen.pgsql.haproxy_health:
    services: "{{ pg_plan.cluster.services }}"
    cluster: pg-test
    state: frozen
"""

RETURN = r"""
backends:
  description: The backends of O(cluster) in the node's configuration.
  returned: always
  type: list
  elements: str
commands:
  description: The admin commands sent (or, in check mode, that would be sent).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils import haproxy_admin as admin
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import PATHS


def run(module, asker=admin.ask):
    p = module.params
    backends = admin.cluster_backends(p["services"], p["cluster"])
    result = {"changed": False, "backends": backends, "commands": []}
    if not backends:
        return result
    rows = admin.parse_servers_state(asker(p["socket"], "show servers state"))
    commands = admin.health_commands(rows, backends, p["state"] == "frozen")
    result.update(changed=bool(commands), commands=commands)
    if module.check_mode:
        return result
    refused = admin.send_all(p["socket"], commands, asker)
    if refused:
        module.fail_json(msg="HAProxy refused '%s': %s" % refused, **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "dict", "required": True},
            "cluster": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["frozen", "checked"], "required": True},
            "socket": {"type": "path", "default": PATHS["haproxy_admin_socket"]},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="HAProxy admin socket %s: %s" % (module.params["socket"], exc))


if __name__ == "__main__":
    main()
