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
  - In the backends whose check only a standby passes (C(/replica), C(/async), C(/sync), and the standby tier of a
    C(/read-only) service), O(primary) is forced down while HAProxy still counts it up, so reads leave the new
    primary at once.
  - Run it once Patroni reports O(primary) as the running leader (C(pigpen.pgsql.patroni_switchover) returns
    then), or start it before the switchover with O(wait) (as an async task on every node); it then polls
    C(GET /cluster) of O(patroni_url) every 0.1 s and changes HAProxy the moment O(primary) leads, or does nothing
    when that does not happen within O(wait) seconds.
  - Idempotent; nothing is sent when HAProxy already agrees. Logic in C(module_utils/haproxy_admin.py).
author:
  - pigpen.pgsql contributors !UNKNOWN
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
  patroni_url:
    description: Base URL of a member's REST API, read with O(wait) (C(GET /cluster) needs no credentials).
    type: str
  patroni_ca_path:
    description:
      - CA that signed the members' REST API certificates when their URLs are https (the deployment's CA,
        C(/pg/cert/ca.crt) on the nodes); the system's CAs when unset.
    type: path
  wait:
    description:
      - Seconds to wait for O(primary) to lead before touching HAProxy; V(0) does not wait.
      - O(primary) leads once O(patroni_url)'s C(GET /cluster) names it leader and running, and its own REST API
        (C(api_url) in that answer) returns 200 on C(GET /primary), the question HAProxy's health check asks.
    type: int
    default: 0
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
led:
  description: Whether O(primary) led within O(wait) seconds (always true without O(wait)).
  returned: always
  type: bool
"""

import functools
import time
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils import haproxy_admin as admin
from ansible_collections.pigpen.pgsql.plugins.module_utils import patroni_ops as ops
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import PATHS
from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_client import PatroniClient, PatroniError


def read_cluster(url, ca_path=None):
    """GET /cluster of a member, or None while it does not answer."""
    try:
        cluster = PatroniClient(url, timeout=2, ca_path=ca_path).request("/cluster")
    except PatroniError:
        return None
    return cluster if isinstance(cluster, dict) else None


def api_base(api_url):
    """The REST API whose ``api_url`` /cluster reports
    (``http://10.10.10.12:8008/patroni`` -> ``http://10.10.10.12:8008``)."""
    parts = urlsplit(api_url)
    return "%s://%s" % (parts.scheme, parts.netloc)


def answers_primary(api_url, ca_path=None):
    """Whether the member's PostgreSQL has been promoted: its REST API
    answers 200 on /primary (it holds the leader lock) and its own status
    (``GET /patroni``, ``api_url``) reports the primary role, which Patroni
    reads from ``pg_is_in_recovery()``. Patroni 3.0 answers 200 on /primary
    for a few hundred milliseconds before the promotion completes (measured:
    0.36-0.43 s); a client sent there then has its writes refused as
    read-only."""
    api = PatroniClient(api_base(api_url), timeout=2, validate_certs=bool(ca_path), ca_path=ca_path)
    try:
        api.request("/primary")  # 503 while not primary: a PatroniError
        status = api.request("/patroni")
    except PatroniError:
        return False
    return isinstance(status, dict) and admin.promoted(status)


def wait_for_leader(
    url, primary, seconds, reader=read_cluster, is_primary=answers_primary, clock=time.monotonic, sleep=time.sleep
):
    """True as soon as ``primary`` leads, runs and is promoted
    (``answers_primary``: Patroni names the new leader in /cluster as soon
    as it holds the lock, before PostgreSQL is promoted), False after
    ``seconds``."""
    deadline = clock() + seconds
    while True:
        cluster = reader(url)
        if cluster and ops.switched(cluster, primary):
            member = next((m for m in ops.members(cluster) if m.get("name") == primary), {})
            if member.get("api_url") and is_primary(member["api_url"]):
                return True
        if clock() >= deadline:
            return False
        sleep(0.1)


def run(module, asker=admin.ask, reader=read_cluster, is_primary=answers_primary):
    p = module.params
    if p.get("patroni_ca_path"):
        if reader is read_cluster:
            reader = functools.partial(read_cluster, ca_path=p["patroni_ca_path"])
        if is_primary is answers_primary:
            is_primary = functools.partial(answers_primary, ca_path=p["patroni_ca_path"])
    backends = admin.primary_backends(p["services"], p["cluster"])
    result = {"changed": False, "backends": backends, "commands": [], "led": True}
    if not backends:
        return result
    if p["wait"] > 0 and not module.check_mode:
        result["led"] = wait_for_leader(p["patroni_url"], p["primary"], p["wait"], reader=reader, is_primary=is_primary)
        if not result["led"]:
            return result  # no switchover happened: HAProxy stays as its checks have it
    rows = admin.parse_stat(asker(p["socket"], "show stat -1 4 -1"))
    missing = admin.missing_backends(rows, backends, p["primary"])
    if missing:
        module.warn(
            "HAProxy on this node has no server %s in %s; left to the health checks"
            % (p["primary"], ", ".join(missing))
        )
    commands = admin.primary_commands(rows, backends, p["primary"])
    commands += admin.standby_commands(rows, admin.standby_backends(p["services"], p["cluster"]), p["primary"])
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
            "primary": {"type": "str", "required": True},
            "socket": {"type": "path", "default": PATHS["haproxy_admin_socket"]},
            "patroni_url": {"type": "str"},
            "patroni_ca_path": {"type": "path"},
            "wait": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    if module.params["wait"] > 0 and not module.params["patroni_url"]:
        module.fail_json(msg="wait needs patroni_url, the REST API to read the leader from")
    try:
        module.exit_json(**run(module))
    except (OSError, ValueError) as exc:
        module.fail_json(msg="HAProxy admin socket %s: %s" % (module.params["socket"], exc))


if __name__ == "__main__":
    main()
