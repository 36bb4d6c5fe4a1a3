#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Point a node's HAProxy primary services at the new leader at once."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: haproxy_primary
short_description: Make a node's HAProxy route a cluster's primary services to the new leader now
version_added: 0.1.0
description:
  - After a switchover, HAProxy admits the new primary into a service that checks C(/primary) only after C(rise)
    successful checks at C(downinter), and keeps the old one until C(fall) checks failed. This module shortcuts
    both over the node's admin socket, C(set server <backend>/<server> health up|down), for every backend of
    O(cluster) whose check is C(/primary).
  - O(primary) is forced up unless it is already C(UP); every other server that is up is forced down. Servers in
    maintenance or drain are left alone. The health checks keep running and stay in charge.
  - Only run it once Patroni reports O(primary) as the running leader (C(pigpen.pgsql.patroni_switchover) returns
    then).
  - Idempotent; nothing is sent when HAProxy already agrees. Logic in C(module_utils/haproxy_admin.py).
author:
  - pigpen.pgsql contributors
options:
  services:
    description: The services the node's HAProxy publishes, as resolved by the C(pg_host_services) filter.
    type: list
    elements: dict
    required: true
  cluster:
    description: Cluster whose primary changed (C(pg_cluster)).
    type: str
    required: true
  primary:
    description: Instance name of the new leader (C(pg-test-2)).
    type: str
    required: true
  socket:
    description: HAProxy's admin socket (C(stats socket ... level admin)).
    type: path
    default: /run/haproxy/admin.sock
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Route pg-test's primary services to pg-test-2 now
  pigpen.pgsql.haproxy_primary:
    services: "{{ hostvars | pigpen.pgsql.pg_host_services(groups, inventory_hostname) }}"
    cluster: pg-test
    primary: pg-test-2
"""

RETURN = r"""
backends:
  description: The backends of O(cluster) that check C(/primary) on this node.
  returned: always
  type: list
  elements: str
commands:
  description: The admin commands sent (or that would be, in check mode).
  returned: always
  type: list
  elements: str
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils import haproxy_admin as admin


def ask(path, command, timeout=5.0):
    """Send one command to the admin socket and return the whole answer."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        conn.close()
    return b"".join(chunks).decode("utf-8", "replace")


def run(module, asker=ask):
    p = module.params
    backends = admin.primary_backends(p["services"], p["cluster"])
    result = {"changed": False, "backends": backends, "commands": []}
    if not backends:
        return result
    rows = admin.parse_stat(asker(p["socket"], "show stat -1 4 -1"))
    missing = admin.missing_backends(rows, backends, p["primary"])
    if missing:
        module.warn("HAProxy on this node has no server %s in %s; left to the health checks"
                    % (p["primary"], ", ".join(missing)))
    commands = admin.primary_commands(rows, backends, p["primary"])
    result.update(changed=bool(commands), commands=commands)
    if module.check_mode:
        return result
    for command in commands:
        answer = asker(p["socket"], command).strip()
        if answer:  # success is an empty answer
            module.fail_json(msg="HAProxy refused '%s': %s" % (command, answer), **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec={
            "services": {"type": "list", "elements": "dict", "required": True},
            "cluster": {"type": "str", "required": True},
            "primary": {"type": "str", "required": True},
            "socket": {"type": "path", "default": "/run/haproxy/admin.sock"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**run(module))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="HAProxy admin socket %s: %s" % (module.params["socket"], exc))


if __name__ == "__main__":
    main()
