# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Whole-inventory validation: bad inventories and their exact messages.

Each case changes one thing of a valid inventory and lists every message the
model must print for it, so a change in wording or in what is caught shows
up here.
"""

from __future__ import annotations

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import plan, validate
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import ModelError
from inv import build, cluster, pg_test, sandbox

T1, T2, T3 = "10.10.10.11", "10.10.10.12", "10.10.10.13"


def members(**overrides):
    """pg-test host vars with per-host overrides {ip: {var: value}}."""
    hosts = {
        T1: {"pg_seq": 1, "pg_role": "primary"},
        T2: {"pg_seq": 2, "pg_role": "replica"},
        T3: {"pg_seq": 3, "pg_role": "replica"},
    }
    for ip, hvars in overrides.items():
        hosts[ip] = {**hosts.get(ip, {}), **hvars}
    return hosts


def _etcd_var(inventory, host, **hvars):
    """``inventory`` with ``hvars`` set on one host (an etcd member)."""
    hostvars, groups = inventory
    hostvars[host].update(hvars)
    return hostvars, groups


def messages(hostvars, groups):
    return [str(p) for p in validate.problems(model_mod.load(hostvars, groups))]


def test_sandbox_is_valid():
    assert messages(*sandbox()) == []


@pytest.mark.parametrize("delay", [0, "0", "0s", "0ms", " 0 min", "0.0h"])
def test_zero_delay_is_no_delay_anywhere(delay):
    """Pigsty writes pg_delay: 0 for every instance: it means no delay."""
    hosts = members(**{ip: {"pg_delay": delay} for ip in (T1, T2, T3)})
    hostvars, groups = build(cluster("pg-test", hosts))
    assert messages(hostvars, groups) == []
    inv = model_mod.load(hostvars, groups)
    assert [m["delay"] for m in plan.cluster_plan(inv, "pg-test")["members"]] == [None, None, None]


@pytest.mark.parametrize("delay, shown", [(3600000, 3600000), ("2h", "2h")])
def test_delay_of_a_standby_leader(delay, shown):
    hostvars, groups = build(
        cluster(
            "pg-s",
            {
                "10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.11", "pg_delay": delay},
                "10.10.10.22": {"pg_seq": 2, "pg_role": "replica", "pg_delay": 0},
            },
        )
    )
    assert messages(hostvars, groups) == []
    inv = model_mod.load(hostvars, groups)
    assert plan.cluster_plan(inv, "pg-s")["members"][0]["delay"] == shown


CASES = [
    (
        "cluster-name-dot",
        build(cluster("pg.test", members())),
        [
            "cluster pg.test: pg_cluster = 'pg.test': cluster name may only hold letters, "
            "digits and '-' (it becomes a DNS label); fix: rename the cluster, e.g. 'pg-test'"
        ],
    ),
    (
        "cluster-name-underscore-without-nodename",
        build(cluster("pg_test", members(**{T1: {"nodename": "db1"}}))),
        [
            "cluster pg_test, host 10.10.10.12: nodename = (unset): cluster name pg_test "
            "holds '_', which a host name cannot, and the member would be named pg_test-2; "
            "fix: set nodename on the member (a host name), or write the cluster name with "
            "'-', e.g. 'pg-test'",
            "cluster pg_test, host 10.10.10.13: nodename = (unset): cluster name pg_test "
            "holds '_', which a host name cannot, and the member would be named pg_test-3; "
            "fix: set nodename on the member (a host name), or write the cluster name with "
            "'-', e.g. 'pg-test'",
        ],
    ),
    (
        "cluster-name-leading-dash",
        build(cluster("-pg", members())),
        [
            "cluster -pg: pg_cluster = '-pg': cluster name must be a DNS label: 1-63 "
            "characters, not starting or ending with '-'; fix: rename the cluster, e.g. 'pg'"
        ],
    ),
    (
        "seq-missing",
        build(cluster("pg-test", members(**{T3: {"pg_seq": None}}))),
        [
            "cluster pg-test, host 10.10.10.13: pg_seq = (unset): every instance needs a "
            "sequence number; fix: set pg_seq to an integer unique in pg-test, e.g. 3"
        ],
    ),
    (
        "seq-string",
        build(cluster("pg-test", members(**{T2: {"pg_seq": "2"}}))),
        [
            "cluster pg-test, host 10.10.10.12: pg_seq = '2': is not a non-negative integer; "
            "fix: write pg_seq as a plain integer without quotes, e.g. pg_seq: 1"
        ],
    ),
    (
        "seq-duplicate",
        build(cluster("pg-test", members(**{T3: {"pg_seq": 2}}))),
        [
            "cluster pg-test, host 10.10.10.13: pg_seq = 2: is already used by host "
            "10.10.10.12 (instance pg-test-2); fix: give every instance of pg-test its own "
            "pg_seq"
        ],
    ),
    (
        "role-unknown",
        build(cluster("pg-test", members(**{T2: {"pg_role": "slave"}}))),
        [
            "cluster pg-test, host 10.10.10.12: pg_role = 'slave': is not a known role; fix: "
            "use one of primary, replica, offline, standby, delayed"
        ],
    ),
    (
        "no-primary",
        build(cluster("pg-test", members(**{T1: {"pg_role": "replica"}}))),
        [
            "cluster pg-test: pg_role = ['replica', 'replica', 'replica']: the cluster has no "
            "primary; fix: set pg_role: primary on exactly one instance (with pg_upstream for "
            "a standby cluster's leader)"
        ],
    ),
    (
        "two-primaries",
        build(cluster("pg-test", members(**{T2: {"pg_role": "primary"}}))),
        [
            "cluster pg-test: pg_role = {'10.10.10.11': 'primary', '10.10.10.12': 'primary'}: "
            "the cluster has 2 leaders (primary/standby/delayed), exactly one is allowed; fix: "
            "keep pg_role: primary on one instance and make the others replica or offline"
        ],
    ),
    (
        "host-not-ip",
        build(cluster("pg-test", {"db1": {"pg_seq": 1, "pg_role": "primary", "ansible_host": "db1.example.com"}})),
        [
            "cluster pg-test, host db1: ansible_host = 'db1.example.com': the instance has no "
            "IP address (neither its inventory name nor ansible_host is an IP); fix: name the "
            "host by its IP or set ansible_host to its IP address"
        ],
    ),
    (
        "same-ip-twice",
        build(
            cluster(
                "pg-test",
                {
                    "db1": {"pg_seq": 1, "pg_role": "primary", "ansible_host": "10.10.10.11"},
                    "db2": {"pg_seq": 2, "pg_role": "replica", "ansible_host": "10.10.10.11"},
                },
            )
        ),
        [
            "cluster pg-test, host db2: ansible_host = '10.10.10.11': is also the address of "
            "host db1 (pg-test-1); fix: give every PostgreSQL instance its own node"
        ],
    ),
    (
        "weight-out-of-range",
        build(cluster("pg-test", members(**{T2: {"pg_weight": 300}}))),
        [
            "cluster pg-test, host 10.10.10.12: pg_weight = 300: is not an integer from 0 to "
            "255; fix: set pg_weight between 0 (drained) and 255; 100 is the default"
        ],
    ),
    (
        "offline-query-string",
        build(cluster("pg-test", members(**{T3: {"pg_offline_query": "yes"}}))),
        [
            "cluster pg-test, host 10.10.10.13: pg_offline_query = 'yes': is not a boolean; "
            "fix: write pg_offline_query: true or false (no quotes)"
        ],
    ),
    (
        "upstream-replica-outside",
        build(cluster("pg-test", members(**{T3: {"pg_upstream": "10.10.10.99"}}))),
        [
            "cluster pg-test, host 10.10.10.13: pg_upstream = '10.10.10.99': a cascading "
            "replica must replicate from a member of its own cluster; fix: set pg_upstream to "
            "one of 10.10.10.11, 10.10.10.12, or remove it to replicate from the leader"
        ],
    ),
    (
        "standby-leader-upstream-inside",
        build(cluster("pg-test", members(**{T1: {"pg_upstream": "10.10.10.12"}}))),
        [
            "cluster pg-test, host 10.10.10.11: pg_upstream = '10.10.10.12': a standby leader "
            "must replicate from outside its own cluster, but 10.10.10.12 is member pg-test-2; "
            "fix: point pg_upstream at the primary of the upstream cluster"
        ],
    ),
    (
        "delay-on-replica",
        build(cluster("pg-test", members(**{T2: {"pg_delay": "1h"}}))),
        [
            "cluster pg-test, host 10.10.10.12: pg_delay = '1h': pg_delay only applies to a "
            "standby leader with pg_upstream; fix: set pg_upstream too, or remove pg_delay"
        ],
    ),
    (
        "delay-bad-interval",
        build(
            cluster(
                "pg-s",
                {
                    "10.10.10.21": {
                        "pg_seq": 1,
                        "pg_role": "primary",
                        "pg_upstream": "10.10.10.11",
                        "pg_delay": "one hour",
                    }
                },
            )
        ),
        [
            "cluster pg-s, host 10.10.10.21: pg_delay = 'one hour': is not a delay "
            "PostgreSQL accepts: recovery_min_apply_delay takes an integer of "
            "milliseconds or a number with one of the units us, ms, s, min, h, d (lower "
            "case); fix: write e.g. '1h', '30min' or '1d' (a bare number is milliseconds)"
        ],
    ),
    (
        "delay-negative",
        build(
            cluster(
                "pg-s",
                {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.11", "pg_delay": -5}},
            )
        ),
        [
            "cluster pg-s, host 10.10.10.21: pg_delay = -5: is not a delay "
            "PostgreSQL accepts: recovery_min_apply_delay takes an integer of "
            "milliseconds or a number with one of the units us, ms, s, min, h, d (lower "
            "case); fix: write e.g. '1h', '30min' or '1d' (a bare number is milliseconds)"
        ],
    ),
    (
        "delay-nonzero-on-replica-of-standby",
        build(
            cluster(
                "pg-s",
                {
                    "10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.11"},
                    "10.10.10.22": {"pg_seq": 2, "pg_role": "replica", "pg_upstream": "10.10.10.21", "pg_delay": "1h"},
                },
            )
        ),
        [
            "cluster pg-s, host 10.10.10.22: pg_delay = '1h': pg_delay only applies to a "
            "standby cluster's leader; fix: move pg_delay to the leader of a delayed standby "
            "cluster"
        ],
    ),
    (
        "rto-unknown",
        build(pg_test(pg_rto="fastest")),
        ["cluster pg-test: pg_rto = 'fastest': is not a known RTO plan; fix: use one of fast, norm, safe, wide"],
    ),
    (
        "pgbouncer-nofile-below-clients",
        build(pg_test(pgbouncer_limit_nofile=16384)),
        [
            "cluster pg-test: pgbouncer_limit_nofile = 16384: is below pgbouncer_max_client_conn "
            "(20000) + pgbouncer_max_db_connections (100) + 100: pgbouncer would refuse clients "
            "before max_client_conn; fix: lower pgbouncer_max_client_conn or raise "
            "pgbouncer_limit_nofile to at least 20200"
        ],
    ),
    (
        "service-port-duplicate",
        build(pg_test(pg_services=[{"name": "standby", "port": 5434}])),
        [
            "cluster pg-test: pg_services[0](standby).port = 5434: is already the port of "
            "pg_default_services[1](replica); fix: give every service of pg-test its own port"
        ],
    ),
    (
        "service-name-duplicate",
        build(pg_test(pg_services=[{"name": "replica", "port": 5440}])),
        [
            "cluster pg-test: pg_services[0].name = 'replica': is already the name of "
            "pg_default_services[1]; fix: give every service of pg-test its own name"
        ],
    ),
    (
        "service-port-reserved",
        build(pg_test(pg_services=[{"name": "pool", "port": 6432}])),
        [
            "cluster pg-test: pg_services[0](pool).port = 6432: is the port of pgbouncer_port "
            "on the members; fix: pick a free port, e.g. 5440"
        ],
    ),
    (
        "service-selector-syntax",
        build(pg_test(pg_services=[{"name": "x", "port": 5440, "selector": "[? pg_role == `replica`"}])),
        [
            "cluster pg-test: pg_services[0](x).selector = '[? pg_role == `replica`': is not a "
            "valid JMESPath expression (Invalid jmespath expression: Incomplete expression:); "
            "fix: write a filter over the members, e.g. \"[? pg_role == `replica`]\"; the "
            "members carry their host vars and inventory_hostname"
        ],
    ),
    (
        "service-check-typo",
        build(pg_test(pg_services=[{"name": "x", "port": 5440, "check": "/primay"}])),
        [
            "cluster pg-test: pg_services[0](x).check = '/primay': is not a Patroni "
            "health-check endpoint; fix: use one of /primary, /leader, /standby-leader, "
            "/standby_leader, /replica, /read-only, /read-write, /async"
        ],
    ),
    (
        "service-unknown-key-and-balance",
        build(pg_test(pg_services=[{"name": "x", "port": 5440, "balence": "leastconn", "balance": "random"}])),
        [
            "cluster pg-test: pg_services[0](x).balance = 'random': is not an HAProxy balance "
            "algorithm; fix: use one of roundrobin, leastconn, first, source, static-rr",
            "cluster pg-test: pg_services[0].balence = 'leastconn': is not a service key; fix: "
            "use only name, port, ip, selector, backup, dest, check, maxconn, balance, options",
        ],
    ),
    (
        "service-dest-pgbouncer-disabled",
        build(pg_test(pgbouncer_enabled=False, pg_services=[{"name": "x", "port": 5440, "dest": "pgbouncer"}])),
        [
            "cluster pg-test: pg_services[0](x).dest = 'pgbouncer': points at pgbouncer, but "
            "pgbouncer_enabled is false; fix: use dest: postgres, or enable pgbouncer"
        ],
    ),
    (
        "service-provider-missing",
        build(pg_test(pg_service_provider="proxy")),
        [
            "cluster pg-test: pg_service_provider = 'proxy': is not a group of the inventory; "
            "fix: name an existing group of HAProxy nodes, or leave it empty to publish on the "
            "cluster's own members"
        ],
    ),
    (
        "hba-bad-address",
        build(
            pg_test(pg_hba_rules=[{"user": "all", "db": "all", "addr": "intranett", "auth": "pwd", "title": "typo"}])
        ),
        None,
    ),  # exact text owned by test_hba.py
    (
        "user-unknown-role",
        build(pg_test(pg_users=[{"name": "app", "roles": ["dbrole_readwriter"]}])),
        [
            "cluster pg-test: pg_users[0](app).roles[0] = 'dbrole_readwriter': grants a role "
            "that is not defined; fix: define dbrole_readwriter in pg_users or "
            "pg_default_roles, or use one of dbrole_readonly, dbrole_readwrite, dbrole_admin, "
            "dbrole_offline, pg_monitor"
        ],
    ),
    (
        "database-unknown-owner",
        build(pg_test(pg_databases=[{"name": "app", "owner": "dbuser_app"}])),
        [
            "cluster pg-test: pg_databases[0](app).owner = 'dbuser_app': is not a defined "
            "role; fix: define the owner in pg_users (or use an existing role such as "
            "dbuser_dba)"
        ],
    ),
    (
        "database-bad-state-and-pool",
        build(pg_test(pg_databases=[{"name": "app", "state": "drop", "pool_mode": "txn"}])),
        [
            "cluster pg-test: pg_databases[0](app).pool_mode = 'txn': is not a pgbouncer pool "
            "mode; fix: use one of transaction, session, statement",
            "cluster pg-test: pg_databases[0](app).state = 'drop': is not a known state; fix: "
            "use one of create, absent, recreate",
        ],
    ),
    (
        "user-duplicate",
        build(pg_test(pg_users=[{"name": "app"}, {"name": "app", "login": "yes"}])),
        [
            "cluster pg-test: pg_users[1](app).login = 'yes': is not a boolean; fix: write "
            "true or false without quotes",
            "cluster pg-test: pg_users[1](app).name = 'app': is defined twice in the same list "
            "(entry 0); fix: merge the two entries into one",
        ],
    ),
    (
        "vip-outside-subnet",
        build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.20.3/24")),
        [
            "cluster pg-test, host 10.10.10.11: pg_vip_address = '10.10.20.3/24': is not in "
            "the subnet of member pg-test-1 (10.10.10.11): an L2 VIP must be on the members' "
            "subnet; fix: set pg_vip_address to a free address of the members' subnet with its "
            "prefix length, e.g. 10.10.10.3/24",
            "cluster pg-test, host 10.10.10.12: pg_vip_address = '10.10.20.3/24': is not in "
            "the subnet of member pg-test-2 (10.10.10.12): an L2 VIP must be on the members' "
            "subnet; fix: set pg_vip_address to a free address of the members' subnet with its "
            "prefix length, e.g. 10.10.10.3/24",
            "cluster pg-test, host 10.10.10.13: pg_vip_address = '10.10.20.3/24': is not in "
            "the subnet of member pg-test-3 (10.10.10.13): an L2 VIP must be on the members' "
            "subnet; fix: set pg_vip_address to a free address of the members' subnet with its "
            "prefix length, e.g. 10.10.10.3/24",
        ],
    ),
    (
        "vip-without-mask",
        build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3")),
        [
            "cluster pg-test: pg_vip_address = '10.10.10.3': is not an address with a prefix "
            "length (IP/mask); fix: set pg_vip_address to a free address of the members' "
            "subnet with its prefix length, e.g. 10.10.10.3/24"
        ],
    ),
    (
        "vip-is-member",
        build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.12/24")),
        [
            "cluster pg-test, host 10.10.10.12: pg_vip_address = '10.10.10.12/24': is the "
            "address of member pg-test-2 itself; fix: set pg_vip_address to a free address of "
            "the members' subnet with its prefix length, e.g. 10.10.10.3/24"
        ],
    ),
    (
        "cluster-wide-differs",
        build(cluster("pg-test", members(**{T3: {"pg_rto": "fast"}}))),
        [
            "cluster pg-test, host 10.10.10.13: pg_rto = 'fast': differs from 10.10.10.11's "
            "value (unset); it is a cluster-wide setting; fix: set pg_rto once in the group vars "
            "of pg-test"
        ],
    ),
    (
        # a member on HTTPS cannot ask one on HTTP (Patroni 3.0.2's client)
        "patroni-scheme-differs",
        build(cluster("pg-test", members(**{T3: {"patroni_ssl_enabled": False}}))),
        [
            "cluster pg-test, host 10.10.10.13: patroni_ssl_enabled = False: differs from 10.10.10.11's "
            "value (unset); it is a cluster-wide setting; fix: set patroni_ssl_enabled once in the group vars "
            "of pg-test"
        ],
    ),
    (
        # the etcd role moves every member, or none, to TLS
        "etcd-tls-differs",
        _etcd_var(
            build(pg_test(), etcd=("10.10.10.10", "10.10.10.9", "10.10.10.8")), "10.10.10.9", etcd_tls_enabled=False
        ),
        [
            "cluster etcd: etcd_tls_enabled = [None, False, None]: the etcd members disagree on TLS; "
            "fix: set etcd_tls_enabled once, in the etcd group's vars"
        ],
    ),
    (
        "no-etcd",
        build(pg_test(), etcd=()),
        [
            "inventory: groups.etcd = (unset): PostgreSQL clusters need an etcd group "
            "(Patroni's DCS), and the inventory has none; fix: add a group 'etcd' with 1, 3 or "
            "5 hosts, each with an etcd_seq"
        ],
    ),
    (
        "etcd-even",
        build(pg_test(), etcd=("10.10.10.10", "10.10.10.9")),
        [
            "cluster etcd: groups.etcd = ['10.10.10.10', '10.10.10.9']: an even number of "
            "etcd members tolerates no more failures than one fewer and risks split votes; "
            "fix: use 1, 3 or 5 etcd members"
        ],
    ),
    (
        "pg-version-and-method",
        build(pg_test(pg_version=9, pgbackrest_method="s3"))[0:2],
        [
            "cluster pg-test: pg_version = 9: is not a supported PostgreSQL major version; "
            "fix: use a major version such as 15 (Debian 12 ships 15)",
            "cluster pg-test: pgbackrest_method = 's3': names no repository of "
            "pgbackrest_repo (backup, local, minio); fix: set pgbackrest_method to one of them, or add "
            "a 's3' entry to pgbackrest_repo",
        ],
    ),
    (
        "node-size-string",
        build(pg_test(pg_node_mem_mb="1G", pg_node_cpu=1)),
        [
            "cluster pg-test: pg_node_mem_mb = '1G': is not a whole number of at least 256; "
            "fix: write e.g. pg_node_mem_mb: 1024 (no unit, no quotes), or leave it unset to "
            "use the gathered facts"
        ],
    ),
    (
        "node-size-half",
        build(pg_test(pg_node_cpu=2)),
        [
            "cluster pg-test: pg_node_mem_mb = (unset): pg_node_mem_mb and pg_node_cpu go "
            "together; fix: set both, or neither (then the facts are used)"
        ],
    ),
    (
        "haproxy-files-below-maxconn",
        build(pg_test(haproxy_maxconn=20000, haproxy_limit_nofile=16384)),
        [
            "cluster pg-test: haproxy_limit_nofile = 16384: is below 2 x haproxy_maxconn "
            "(20000) + 100: HAProxy needs about two files per connection and would not start; "
            "fix: lower haproxy_maxconn or raise haproxy_limit_nofile to at least 40100"
        ],
    ),
    (
        "access-limits-types",
        build(pg_test(haproxy_client_timeout="1 day", pgbouncer_limit_nofile="64k")),
        [
            "cluster pg-test: haproxy_client_timeout = '1 day': is not an HAProxy duration; fix: "
            "write a number with an optional unit (us, ms, s, m, h, d), e.g. 24h",
            "cluster pg-test: pgbouncer_limit_nofile = '64k': is not a whole number of at least "
            "1024; fix: write e.g. pgbouncer_limit_nofile: 65536",
        ],
    ),
    ("conf-profile-unknown", build(pg_test(pg_conf="oltpp")), None),  # exact text owned by test_tuning.py
]


@pytest.mark.parametrize("inventory,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_inventory(inventory, expected):
    found = messages(*inventory)
    if expected is None:
        # the same problem on every member (group vars) is reported once
        assert len(found) == 1, found
        assert found[0].startswith("cluster pg-test: ")
    else:
        assert found == expected


def test_at_least_25_cases():
    assert len(CASES) >= 25


def test_all_problems_reported_at_once():
    hv, groups = build(
        cluster(
            "pg.x",
            {
                "10.10.10.21": {"pg_seq": "1", "pg_role": "master"},
                "10.10.10.22": {"pg_seq": 2, "pg_role": "replica", "pg_weight": -1},
            },
            pg_rto="slow",
            pg_services=[{"name": "x", "port": 70000}],
        ),
        etcd=(),
    )
    inv = model_mod.load(hv, groups)
    found = validate.problems(inv)
    fields = sorted({p.field for p in found})
    assert fields == ["groups.etcd", "pg_cluster", "pg_role", "pg_rto", "pg_seq", "pg_services[0](x).port", "pg_weight"]
    with pytest.raises(ModelError) as err:
        validate.require(inv)
    assert str(err.value).startswith("%d problem(s) in the inventory:" % len(found))


def test_unrelated_groups_and_vars_are_ignored():
    hv, groups = build(pg_test(), extra_groups={"minio": ["10.10.10.50"], "redis-cache": ["10.10.10.51"]})
    hv["10.10.10.50"].update({"minio_seq": 1, "pg_seq": "not-a-pg-host"})
    assert messages(hv, groups) == []


def test_sandbox_passwords_warned_outside_the_sandbox():
    hv, groups = build(pg_test())
    inv = model_mod.load(hv, groups)
    lines = validate.warnings(inv)
    assert [line.split(" ", 1)[0] for line in lines] == [
        "etcd_root_password",
        "haproxy_admin_password",
        "patroni_password",
        "pg_admin_password",
        "pg_ca_passphrase",
        "pg_etcd_password",
        "pg_monitor_password",
        "pg_replication_password",
    ]
    assert lines[2].startswith("patroni_password is the public sandbox default (Patroni.API) in cluster(s) pg-test")
    hv, groups = build(pg_test(pgbackrest_method="minio"))
    lines = validate.warnings(model_mod.load(hv, groups))
    assert any(line.startswith("pgbackrest_repo.minio.") and line.endswith("(cluster(s) pg-test)") for line in lines)
    hv, groups = sandbox()
    assert validate.warnings(model_mod.load(hv, groups)) == []


def test_empty_etcd_password_is_the_cluster_name():
    """Pigsty's pg_etcd_password: '' means "use the cluster name": accepted,
    used as such, and warned about (anyone can guess it)."""
    hv, groups = build(
        pg_test(pg_etcd_password=""),
        cluster("pg", {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary"}}, pg_etcd_password=""),
    )
    assert messages(hv, groups) == []
    inv = model_mod.load(hv, groups)
    assert plan.etcd_users(inv) == [
        {"name": "pg-test", "prefix": "/pg/pg-test/", "password": "pg-test"},
        {"name": "pg", "prefix": "/pg/pg/", "password": "pg"},
    ]
    lines = validate.warnings(inv)
    assert (
        "pg_etcd_password is empty in cluster(s) pg-test, pg: as in Pigsty, each "
        "cluster's etcd user gets the cluster name as its password, which anyone can "
        "guess; set a secret value (e.g. in an ansible-vault file)" in lines
    )
    assert not any(line.startswith("pg_etcd_password is the public") for line in lines)
    hv["10.10.10.21"]["pg_etcd_password"] = "ab"
    assert messages(hv, groups) == [
        "cluster pg: pg_etcd_password = '(hidden)': is not a password of 4 to 128 "
        "printable characters; fix: quote a password of printable characters without "
        "spaces, quotes or backslashes, e.g. from ansible-vault"
    ]


def test_cluster_name_with_underscore_and_node_names():
    """Pigsty accepts pg_meta as a cluster name; so does this collection
    when every member has a host name of its own."""
    hosts = members(**{ip: {"nodename": "db%d" % i} for i, ip in enumerate((T1, T2, T3))})
    assert messages(*build(cluster("pg_test", hosts))) == []
