# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Inventories in the shapes of Pigsty's conf templates (our own fixtures,
tests/unit/fixtures/pigsty): they validate unchanged, and every instance
gets the active HBA lines and every cluster the HAProxy servers that Pigsty
would render (pigsty_reference.py), checked by hand for a few instances and
for random rule lists and services by property."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import hba, plan, validate
import pigsty_reference as ref

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "fixtures", "pigsty")
NAMES = sorted(f[:-4] for f in os.listdir(FIXTURES) if f.endswith(".yml"))


@pytest.fixture(scope="module", params=NAMES)
def inventory(request):
    hostvars, groups = ref.load_inventory(os.path.join(FIXTURES, request.param + ".yml"))
    return request.param, hostvars, groups, model_mod.load(hostvars, groups)


def test_valid_unchanged(inventory):
    _, _, _, inv = inventory
    assert validate.problems(inv) == []
    assert inv.clusters


def test_hba_as_pigsty_renders_it(inventory):
    _, hostvars, groups, inv = inventory
    for cluster in inv.clusters.values():
        for member in cluster.members:
            iplan = plan.instance_plan(inv, member.host)
            assert ref.effective(iplan["pg_hba"]) == ref.routed_here_hba(hostvars, groups, member.host, "postgres"), (
                member.host
            )
            assert ref.effective(iplan["pgb_hba"]) == ref.routed_here_hba(hostvars, groups, member.host, "pgbouncer"), (
                member.host
            )


def ours(svc):
    return {
        "name": svc["name"],
        "ip": svc["ip"],
        "port": svc["port"],
        "maxconn": svc["maxconn"],
        "balance": svc["balance"],
        "servers": [
            (s["name"], s["host"], s["port"], s["weight"], s["backup"]) for s in svc["servers"] if s["track"] is None
        ],
    }


def test_services_as_pigsty_renders_them(inventory):
    _, hostvars, groups, inv = inventory
    for name in inv.clusters:
        expected = ref.routed_here_services(hostvars, groups, name)
        assert [ours(s) for s in plan.cluster_plan(inv, name)["services"]] == expected


# ------------------------------------------------------------ by hand


def L(*fields):
    return tuple(fields)


SCRAM = "scram-sha-256"
INTRA = ("10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12")
DEFAULT_INTRA = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")


def intra(ctype, db, user, method, nets=INTRA):
    return [L(ctype, db, user, net, method) for net in nets]


def admin(admin_ip):
    """The default admin rules here (docs/pigsty.md, HBA): the local socket,
    TLS from admin_ip, denied from anywhere else."""
    return [
        L("local", "all", "dbuser_dba", SCRAM),
        L("hostssl", "all", "dbuser_dba", admin_ip + "/32", SCRAM),
        L("host", "all", "dbuser_dba", "0.0.0.0/0", "reject"),
        L("host", "all", "dbuser_dba", "::/0", "reject"),
    ]


def loopback(db, user, method):
    return [
        L("local", db, user, method),
        L("host", db, user, "127.0.0.1/32", method),
        L("host", db, user, "::1/128", method),
    ]


# ha3.yml, pg-orders-3 (replica, offline queries): default rules over the
# intranet in node_firewall_intranet's order, the infra hosts sorted,
# then the cluster's rule at 800, then the rule without order.
HA3_PG = (
    [L("local", "all", "postgres", "ident"), L("local", "replication", "postgres", "ident")]
    + loopback("replication", "replicator", SCRAM)
    + intra("hostssl", "replication", "replicator", SCRAM)
    + intra("hostssl", "postgres", "replicator", SCRAM)
    + loopback("all", "dbuser_monitor", SCRAM)
    + [L("hostssl", "all", "dbuser_monitor", ip, SCRAM) for ip in ("10.20.0.10/32", "10.20.0.11/32", "10.20.0.12/32")]
    + admin("10.20.0.10")
    + loopback("all", "+dbrole_readonly", SCRAM)
    + intra("hostssl", "all", "+dbrole_readonly", SCRAM)
    + intra("hostssl", "all", "+dbrole_offline", SCRAM)
    + intra("host", "all", "all", SCRAM)
    + [L("host", "orders", "orders_ro", ip, SCRAM) for ip in ("10.20.0.10/32", "10.20.0.11/32", "10.20.0.12/32")]
)
HA3_PGB = (
    [L("local", "pgbouncer", "postgres", "peer")]
    + loopback("all", "all", SCRAM)
    + intra("hostssl", "pgbouncer", "dbuser_monitor", SCRAM)
    + [L("host", "all", "dbuser_monitor", "0.0.0.0/0", "reject"), L("host", "all", "dbuser_monitor", "::/0", "reject")]
    + [
        L("hostssl", "all", "dbuser_dba", "10.20.0.10/32", SCRAM),
        L("host", "all", "dbuser_dba", "0.0.0.0/0", "reject"),
        L("host", "all", "dbuser_dba", "::/0", "reject"),
    ]
    + intra("hostssl", "all", "all", SCRAM)
)

# secure.yml, pg-vault-2 (replica): ssl on localhost is the password on a
# local and two host lines; ssl elsewhere is hostssl; cert for the admin.
SECURE_PG = (
    [L("local", "all", "postgres", "ident"), L("local", "replication", "postgres", "ident")]
    + loopback("replication", "replicator", SCRAM)
    + intra("hostssl", "replication", "replicator", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "postgres", "replicator", SCRAM, DEFAULT_INTRA)
    + loopback("all", "dbuser_monitor", SCRAM)
    + [
        L("hostssl", "all", "dbuser_monitor", "10.30.0.10/32", SCRAM),
        L("hostssl", "all", "dbuser_dba", "10.30.0.10/32", SCRAM),
        L("hostssl", "all", "dbuser_dba", "0.0.0.0/0", "cert"),
        L("hostssl", "all", "dbuser_dba", "::/0", "cert"),
    ]
    + loopback("all", "+dbrole_readonly", SCRAM)
    + intra("hostssl", "all", "+dbrole_readonly", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "all", "+dbrole_offline", SCRAM, DEFAULT_INTRA)
)

# kernels.yml, pg-legacy-3 (offline): md5 rules at 525 and 800 around the
# defaults, then the raw lines of the offline-only rule.
LEGACY_PG = (
    [L("local", "all", "postgres", "ident"), L("local", "replication", "postgres", "ident")]
    + loopback("replication", "replicator", SCRAM)
    + intra("hostssl", "replication", "replicator", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "postgres", "replicator", SCRAM, DEFAULT_INTRA)
    + loopback("all", "dbuser_monitor", SCRAM)
    + [L("hostssl", "all", "dbuser_monitor", "10.40.0.10/32", SCRAM)]
    + admin("10.40.0.10")
    + intra("host", "legacy", "legacy_owner", "md5", DEFAULT_INTRA)
    + loopback("all", "+dbrole_readonly", SCRAM)
    + intra("hostssl", "all", "+dbrole_readonly", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "all", "+dbrole_offline", SCRAM, DEFAULT_INTRA)
    + intra("host", "all", "all", "md5", DEFAULT_INTRA)
    + [L("host", "all", "all", "10.99.0.0/16", "md5")]
)

# single.yml, pg-solo-1: two rules at 50 before the defaults (no infra
# group: the monitor's infra rule has no line), 900 after them, then the
# rule without order.
SOLO_PG = (
    intra("host", "postgres", "all", SCRAM, DEFAULT_INTRA)
    + [L("host", "postgres", "all", "172.17.0.0/16", SCRAM)]
    + [L("local", "all", "postgres", "ident"), L("local", "replication", "postgres", "ident")]
    + loopback("replication", "replicator", SCRAM)
    + intra("hostssl", "replication", "replicator", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "postgres", "replicator", SCRAM, DEFAULT_INTRA)
    + loopback("all", "dbuser_monitor", SCRAM)
    + admin("10.50.0.10")
    + loopback("all", "+dbrole_readonly", SCRAM)
    + intra("hostssl", "all", "+dbrole_readonly", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "all", "+dbrole_offline", SCRAM, DEFAULT_INTRA)
    + [
        L("host", "all", "all", "0.0.0.0/0", SCRAM),
        L("host", "all", "all", "::/0", SCRAM),
        L("hostssl", "solo", "solo_view", "10.50.0.0/24", SCRAM),
    ]
)


# kernels.yml, pg-shard2-2: the rules without order come after the
# defaults; the cluster alias (order 380) lists the members sorted.
SHARD_PG = (
    [L("local", "all", "postgres", "ident"), L("local", "replication", "postgres", "ident")]
    + loopback("replication", "replicator", SCRAM)
    + intra("hostssl", "replication", "replicator", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "postgres", "replicator", SCRAM, DEFAULT_INTRA)
    + loopback("all", "dbuser_monitor", SCRAM)
    + [
        L("host", "shard", "shard_app", "10.40.0.31/32", "md5"),
        L("host", "shard", "shard_app", "10.40.0.32/32", "md5"),
        L("hostssl", "all", "dbuser_monitor", "10.40.0.10/32", SCRAM),
    ]
    + admin("10.40.0.10")
    + loopback("all", "+dbrole_readonly", SCRAM)
    + intra("hostssl", "all", "+dbrole_readonly", SCRAM, DEFAULT_INTRA)
    + intra("hostssl", "all", "+dbrole_offline", SCRAM, DEFAULT_INTRA)
    + [L("hostssl", "all", "all", "127.0.0.1/32", SCRAM)]
    + intra("hostssl", "all", "all", SCRAM, DEFAULT_INTRA)
)


@pytest.mark.parametrize(
    "name, host, kind, expected",
    [
        ("kernels", "10.40.0.32", "pg_hba", SHARD_PG),
        ("ha3", "10.20.0.12", "pg_hba", HA3_PG),
        ("ha3", "10.20.0.12", "pgb_hba", HA3_PGB),
        ("secure", "10.30.0.12", "pg_hba", SECURE_PG),
        ("kernels", "10.40.0.43", "pg_hba", LEGACY_PG),
        ("single", "10.50.0.10", "pg_hba", SOLO_PG),
    ],
)
def test_hand_checked_hba(name, host, kind, expected):
    hostvars, groups = ref.load_inventory(os.path.join(FIXTURES, name + ".yml"))
    inv = model_mod.load(hostvars, groups)
    assert ref.effective(plan.instance_plan(inv, host)[kind]) == expected


@pytest.mark.parametrize(
    "name, cluster, expected",
    [
        # secure.yml: destination postgres by default; the offline member backs
        # the replica service; pg_weight 50; the standby service (no check)
        # backs up to the primary
        (
            "secure",
            "pg-vault",
            {
                "pg-vault-primary": (
                    "*",
                    5433,
                    [
                        ("pg-vault-1", "10.30.0.11", 5432, 100, False),
                        ("pg-vault-2", "10.30.0.12", 5432, 50, False),
                        ("pg-vault-3", "10.30.0.13", 5432, 100, False),
                    ],
                ),
                "pg-vault-replica": (
                    "*",
                    5434,
                    [
                        ("pg-vault-1", "10.30.0.11", 5432, 100, False),
                        ("pg-vault-2", "10.30.0.12", 5432, 50, False),
                        ("pg-vault-3", "10.30.0.13", 5432, 100, True),
                    ],
                ),
                "pg-vault-default": (
                    "*",
                    5436,
                    [
                        ("pg-vault-1", "10.30.0.11", 5432, 100, False),
                        ("pg-vault-2", "10.30.0.12", 5432, 50, False),
                        ("pg-vault-3", "10.30.0.13", 5432, 100, False),
                    ],
                ),
                "pg-vault-offline": (
                    "*",
                    5438,
                    [("pg-vault-3", "10.30.0.13", 5432, 100, False), ("pg-vault-2", "10.30.0.12", 5432, 50, True)],
                ),
                "pg-vault-standby": (
                    "*",
                    5435,
                    [
                        ("pg-vault-1", "10.30.0.11", 5432, 100, True),
                        ("pg-vault-2", "10.30.0.12", 5432, 50, False),
                        ("pg-vault-3", "10.30.0.13", 5432, 100, False),
                    ],
                ),
            },
        ),
        # kernels.yml: primary and replica to port 1433, the rest to postgres
        (
            "kernels",
            "pg-legacy",
            {
                "pg-legacy-primary": (
                    "*",
                    5433,
                    [
                        ("pg-legacy-1", "10.40.0.41", 1433, 100, False),
                        ("pg-legacy-2", "10.40.0.42", 1433, 100, False),
                        ("pg-legacy-3", "10.40.0.43", 1433, 100, False),
                    ],
                ),
                "pg-legacy-replica": (
                    "*",
                    5434,
                    [
                        ("pg-legacy-1", "10.40.0.41", 1433, 100, True),
                        ("pg-legacy-2", "10.40.0.42", 1433, 100, False),
                        ("pg-legacy-3", "10.40.0.43", 1433, 100, True),
                    ],
                ),
                "pg-legacy-default": (
                    "*",
                    5436,
                    [
                        ("pg-legacy-1", "10.40.0.41", 5432, 100, False),
                        ("pg-legacy-2", "10.40.0.42", 5432, 100, False),
                        ("pg-legacy-3", "10.40.0.43", 5432, 100, False),
                    ],
                ),
                "pg-legacy-offline": (
                    "*",
                    5438,
                    [("pg-legacy-3", "10.40.0.43", 5432, 100, False), ("pg-legacy-2", "10.40.0.42", 5432, 100, True)],
                ),
            },
        ),
        # kernels.yml: a cluster defined host by host in a shared group, its
        # replica listed first (servers in inventory order); weight 0
        (
            "kernels",
            "pg-shard2",
            {
                "pg-shard2-primary": (
                    "*",
                    5433,
                    [("pg-shard2-2", "10.40.0.32", 6432, 0, False), ("pg-shard2-1", "10.40.0.31", 6432, 100, False)],
                ),
                "pg-shard2-replica": (
                    "*",
                    5434,
                    [("pg-shard2-2", "10.40.0.32", 6432, 0, False), ("pg-shard2-1", "10.40.0.31", 6432, 100, False)],
                ),
                "pg-shard2-default": (
                    "*",
                    5436,
                    [("pg-shard2-2", "10.40.0.32", 5432, 0, False), ("pg-shard2-1", "10.40.0.31", 5432, 100, False)],
                ),
                "pg-shard2-offline": ("*", 5438, [("pg-shard2-2", "10.40.0.32", 5432, 0, True)]),
            },
        ),
        ("single", "pg-solo", {}),
    ],
)
def test_hand_checked_services(name, cluster, expected):
    hostvars, groups = ref.load_inventory(os.path.join(FIXTURES, name + ".yml"))
    inv = model_mod.load(hostvars, groups)
    got = {
        s["name"]: (
            s["ip"],
            s["port"],
            [(v["name"], v["host"], v["port"], v["weight"], v["backup"]) for v in s["servers"] if v["track"] is None],
        )
        for s in plan.cluster_plan(inv, cluster)["services"]
    }
    assert got == expected


# ------------------------------------------------------------ by property

CTX = hba.HbaContext(
    cluster="pg-x",
    instance="pg-x-2",
    role="replica",
    offline_query=True,
    admin_ip="10.60.0.10",
    infra_ips=("10.60.0.10", "10.60.0.9"),
    cluster_ips=("10.60.0.11", "10.60.0.12"),
    intranet=("10.0.0.0/8", "192.168.0.0/16"),
)
REF_INSTANCE = {
    "pg_role": "replica",
    "pg_offline_query": True,
    "pg_pwd_enc": "scram-sha-256",
    "users": {"${dbsu}": "postgres", "${repl}": "replicator", "${monitor}": "dbuser_monitor", "${admin}": "dbuser_dba"},
    "admin_ip": "10.60.0.10",
    "infra": ["10.60.0.10", "10.60.0.9"],
    "members": ["10.60.0.11", "10.60.0.12"],
    "intranet": ["10.0.0.0/8", "192.168.0.0/16"],
}
ADDRS = [
    "local",
    "localhost",
    "admin",
    "infra",
    "cluster",
    "intra",
    "intranet",
    "world",
    "all",
    "10.70.0.0/16",
    "10.70.1.5/32",
]
NET_AUTHS = [
    "pwd",
    "ssl",
    "sha",
    "ssl-sha",
    "md5",
    "ssl-md5",
    "scram-sha-256",
    "cert",
    "trust",
    "deny",
    "reject",
    "",
    None,
]


def _valid(rule, kind):
    addr, auth = rule.get("addr"), rule.get("auth")
    if auth == "cert" and addr in ("local", "localhost"):
        return False  # PostgreSQL would refuse the file
    if kind == "pgbouncer" and rule.get("db") == "replication":
        return False
    return True


rule_strategy = st.fixed_dictionaries(
    {"addr": st.sampled_from(ADDRS)},
    optional={
        "auth": st.sampled_from(NET_AUTHS),
        "user": st.sampled_from(["${dbsu}", "${repl}", "${monitor}", "${admin}", "all", "app", ""]),
        "db": st.sampled_from(["all", "app", "replication", ""]),
        "role": st.sampled_from(["common", "default", "primary", "replica", "offline", "standby", "delayed", ""]),
        "order": st.integers(0, 999),
        "title": st.just("t"),
    },
).map(lambda r: {k: v for k, v in r.items() if v is not None})


@settings(max_examples=300, deadline=None)
@given(st.lists(rule_strategy, max_size=12), st.sampled_from(["postgres", "pgbouncer"]))
def test_property_hba_lines_are_pigsty_lines(rules, kind):
    rules = [r for r in rules if _valid(r, kind)]
    assert ref.effective(hba.hba_lines(rules, CTX, kind)) == ref.hba(rules, REF_INSTANCE, kind)


member_strategy = st.fixed_dictionaries(
    {"pg_role": st.sampled_from(["primary", "replica", "offline"])},
    optional={"pg_offline_query": st.booleans(), "pg_weight": st.integers(0, 255)},
)
service_strategy = st.fixed_dictionaries(
    {"selector": st.sampled_from(["[]", "[? pg_role == `replica`]", "[? pg_role == `offline` || pg_offline_query ]"])},
    optional={
        "backup": st.sampled_from(["[? pg_role == `primary`]", "[? pg_role == `replica` && !pg_offline_query]"]),
        "dest": st.sampled_from(["default", "postgres", "pgbouncer", 1433]),
        "maxconn": st.integers(1, 9000),
        "balance": st.sampled_from(["leastconn", "roundrobin"]),
        "ip": st.sampled_from(["*", "10.60.0.2"]),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(member_strategy, min_size=1, max_size=5),
    st.lists(service_strategy, max_size=3),
    st.sampled_from(["postgres", "pgbouncer"]),
)
def test_property_services_are_pigsty_services(members, specs, default_dest):
    roles = [m["pg_role"] for m in members]
    if roles.count("primary") != 1:
        members[0]["pg_role"] = "primary"
        for m in members[1:]:
            if m["pg_role"] == "primary":
                m["pg_role"] = "replica"
    specs = [dict(s, name="s%d" % i, port=5440 + i) for i, s in enumerate(specs)]
    hosts = {"10.60.0.%d" % (11 + i): dict(m, pg_seq=i + 1) for i, m in enumerate(members)}
    from inv import build, cluster

    hostvars, groups = build(
        cluster("pg-x", hosts, pg_default_services=[], pg_services=specs, pg_default_service_dest=default_dest)
    )
    inv = model_mod.load(hostvars, groups)
    assert validate.problems(inv) == []
    view = [dict(hostvars[h], inventory_hostname=h) for h in hosts]
    expected = ref.services(specs, view, default_dest)
    assert [ours(s) for s in plan.cluster_plan(inv, "pg-x")["services"]] == expected
