# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Build Ansible-shaped inventories (hostvars, groups) for the tests.

Variables merge like Ansible's: ``all`` vars, then group vars, then host
vars, each key replaced whole (no deep merge).
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Tuple


def cluster(name: str, hosts: Dict[str, Dict[str, Any]], **cvars: Any):
    """A cluster group: ``pg_cluster`` is set in its vars."""
    return {"name": name, "hosts": hosts, "vars": {"pg_cluster": name, **cvars}}


def build(
    *clusters, infra=("10.10.10.10",), etcd=("10.10.10.10",), common=None, extra_groups=None
) -> Tuple[Dict[str, Dict], Dict[str, List[str]]]:
    common = {"admin_ip": "10.10.10.10", **(common or {})}
    hostvars: Dict[str, Dict[str, Any]] = {}
    groups: Dict[str, List[str]] = {"all": []}

    def add(host: str, group: str, gvars: Dict[str, Any], hvars: Dict[str, Any]):
        if host not in hostvars:
            hostvars[host] = {**copy.deepcopy(common), "inventory_hostname": host}
            groups["all"].append(host)
        hostvars[host].update(copy.deepcopy(gvars))
        hostvars[host].update(copy.deepcopy(hvars))
        groups.setdefault(group, []).append(host)

    for i, host in enumerate(infra):
        add(host, "infra", {}, {"infra_seq": i + 1})
    for i, host in enumerate(etcd):
        add(host, "etcd", {"etcd_cluster": "etcd"}, {"etcd_seq": i + 1})
    for c in clusters:
        for host, hvars in c["hosts"].items():
            add(host, c["name"], c["vars"], hvars)
    for group, hosts in (extra_groups or {}).items():
        for host in hosts:
            add(host, group, {}, {})
    return hostvars, groups


def pg_meta(**cvars):
    return cluster("pg-meta", {"10.10.10.10": {"pg_seq": 1, "pg_role": "primary"}}, **cvars)


def pg_test(**cvars):
    return cluster(
        "pg-test",
        {
            "10.10.10.11": {"pg_seq": 1, "pg_role": "primary"},
            "10.10.10.12": {"pg_seq": 2, "pg_role": "replica"},
            "10.10.10.13": {"pg_seq": 3, "pg_role": "replica", "pg_offline_query": True},
        },
        **cvars,
    )


def sandbox():
    """The four-node sandbox of inventory/sandbox.yml (the parts the model reads)."""
    return build(
        pg_meta(pg_conf="tiny"),
        pg_test(
            pg_conf="tiny",
            pg_vip_enabled=True,
            pg_vip_address="10.10.10.3/24",
            pg_vip_interface="eth0",
            pg_users=[{"name": "test", "password": "test", "pgbouncer": True, "roles": ["dbrole_admin"]}],
            pg_databases=[{"name": "test", "owner": "test"}],
        ),
        common={"pigpen_sandbox": True, "pg_hba_rules": [SANDBOX_ADMIN_PG], "pgb_hba_rules": [SANDBOX_ADMIN_PGB]},
    )


# The sandbox's own rules: the admin user from its network (inventory/sandbox.yml).
SANDBOX_ADMIN_PG = {
    "user": "${admin}",
    "db": "all",
    "addr": "intra",
    "auth": "ssl",
    "order": 510,
    "title": "sandbox: admin from the sandbox network over ssl",
}
SANDBOX_ADMIN_PGB = {
    "user": "${admin}",
    "db": "all",
    "addr": "intra",
    "auth": "pwd",
    "order": 310,
    "title": "sandbox: admin from the sandbox network",
}


def alerting():
    """The inventory of the alert rule tests (tests/unit/fixtures/promtool):
    pg-meta (1 member) on the fast plan with pg_rpo 4 MiB and a weekly full
    backup; pg-test (3 members) on the norm plan with pg_rpo 1 MiB, a daily
    full and an incremental backup every 4 hours; three etcd members."""
    return build(
        pg_meta(
            pg_conf="tiny", pg_rto="fast", pg_rpo=4194304, pg_crontab=["00 01 * * 0 /usr/local/bin/pg-backup full"]
        ),
        pg_test(
            pg_conf="tiny",
            pg_crontab=["00 01 * * * /usr/local/bin/pg-backup full", "00 */4 * * * /usr/local/bin/pg-backup incr"],
        ),
        etcd=("10.10.10.10", "10.10.10.11", "10.10.10.12"),
    )
