# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Services: selectors, backups, destinations, weights (hand-checked)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import plan, services, validate
from inv import build, cluster, pg_test, sandbox

NORM = (
    "inter 2s fastinter 1s downinter 2s rise 3 fall 3 on-marked-down "
    "shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100"
)


def servers(svc):
    """Compact server list: (instance, port, weight, backup)."""
    return [(s["name"], s["port"], s["weight"], s["backup"]) for s in svc["servers"]]


def plan_of(hostvars, groups, name):
    inv = model_mod.load(hostvars, groups)
    assert validate.problems(inv) == []
    return plan.cluster_plan(inv, name)


def by_name(cplan):
    return {s["service"]: s for s in cplan["services"]}


def test_sandbox_pg_test_services():
    svcs = by_name(plan_of(*sandbox(), "pg-test"))
    assert list(svcs) == ["primary", "replica", "default", "offline"]
    assert [(s["name"], s["port"], s["dest"], s["check"]) for s in svcs.values()] == [
        ("pg-test-primary", 5433, "pgbouncer", "/primary"),
        ("pg-test-replica", 5434, "pgbouncer", "/replica"),  # declared /read-only: two tiers
        ("pg-test-default", 5436, "postgres", "/primary"),
        ("pg-test-offline", 5438, "postgres", "/replica"),
    ]
    # every member, health check decides; pgbouncer port
    assert servers(svcs["primary"]) == [
        ("pg-test-1", 6432, 100, False),
        ("pg-test-2", 6432, 100, False),
        ("pg-test-3", 6432, 100, False),
    ]
    # the read-only service: every member while it is a standby (/replica),
    # then every member as a fallback that passes /read-only (in practice the
    # leader, whichever member that is after failovers)
    assert servers(svcs["replica"]) == [
        ("pg-test-1", 6432, 100, False),
        ("pg-test-2", 6432, 100, False),
        ("pg-test-3", 6432, 100, False),
        ("pg-test-1.fallback", 6432, 100, True),
        ("pg-test-2.fallback", 6432, 100, True),
        ("pg-test-3.fallback", 6432, 100, True),
    ]
    assert [s["track"] for s in svcs["replica"]["servers"]] == [None] * 3 + [
        "pg-test-replica.fallback/pg-test-%d" % i for i in (1, 2, 3)
    ]
    fallback = svcs["replica"]["fallback"]
    assert (fallback["name"], fallback["check"], fallback["check_method"]) == (
        "pg-test-replica.fallback",
        "/read-only",
        "OPTIONS",
    )
    assert servers(fallback) == servers(svcs["replica"])[:3]
    assert svcs["replica"]["declared_check"] == "/read-only"
    for name in ("primary", "default", "offline"):
        assert svcs[name]["fallback"] is None
        assert svcs[name]["declared_check"] == svcs[name]["check"]
    assert servers(svcs["default"]) == [
        ("pg-test-1", 5432, 100, False),
        ("pg-test-2", 5432, 100, False),
        ("pg-test-3", 5432, 100, False),
    ]
    # .13 serves offline queries; the plain replica .12 is its backup
    assert servers(svcs["offline"]) == [("pg-test-3", 5432, 100, False), ("pg-test-2", 5432, 100, True)]
    for svc in svcs.values():
        assert svc["options"] == NORM
        assert svc["maxconn"] == 5000 and svc["balance"] == "roundrobin"
        assert svc["ip"] == "*" and svc["check_method"] == "OPTIONS"
        assert {s["check_port"] for s in svc["servers"]} == {8008}
        # Patroni's REST API is HTTPS: HAProxy verifies it against the CA
        # (and its instance name, which its certificate names)
        assert {s["name"]: s["check_ssl"] for s in svc["servers"]} == {
            s["name"]: "check-ssl verify required ca-file /pg/cert/ca.crt verifyhost "
            + s["name"].removesuffix(".fallback")
            for s in svc["servers"]
        }


def test_plain_http_checks_without_patroni_ssl():
    """patroni_ssl_enabled: false (Pigsty's default; cluster-wide): every
    check is plain HTTP. With HTTPS, each member's check verifies against
    that member's CA path (pg_ssl_ca)."""
    hv, groups = sandbox()
    for host in ("10.10.10.11", "10.10.10.12", "10.10.10.13"):
        hv[host]["patroni_ssl_enabled"] = False
    svcs = by_name(plan_of(hv, groups, "pg-test"))
    assert {s["name"]: s["check_ssl"] for s in svcs["primary"]["servers"]} == dict.fromkeys(
        ["pg-test-1", "pg-test-2", "pg-test-3"], ""
    )
    hv, groups = sandbox()
    hv["10.10.10.13"]["pg_ssl_ca"] = "/etc/pki/ca.crt"
    svcs = by_name(plan_of(hv, groups, "pg-test"))
    assert {s["name"]: s["check_ssl"] for s in svcs["primary"]["servers"]} == {
        "pg-test-1": "check-ssl verify required ca-file /pg/cert/ca.crt verifyhost pg-test-1",
        "pg-test-2": "check-ssl verify required ca-file /pg/cert/ca.crt verifyhost pg-test-2",
        "pg-test-3": "check-ssl verify required ca-file /etc/pki/ca.crt verifyhost pg-test-3",
    }


def test_sandbox_pg_meta_single_node():
    svcs = by_name(plan_of(*sandbox(), "pg-meta"))
    assert servers(svcs["primary"]) == [("pg-meta-1", 6432, 100, False)]
    # a single member: a standby never, so the fallback (the leader) serves
    assert servers(svcs["replica"]) == [("pg-meta-1", 6432, 100, False), ("pg-meta-1.fallback", 6432, 100, True)]
    # no offline instance, no replica: the offline service has no server
    assert servers(svcs["offline"]) == []


def test_offline_instance_and_offline_query():
    hv, groups = build(
        cluster(
            "pg-x",
            {
                "10.10.10.21": {"pg_seq": 1, "pg_role": "primary"},
                "10.10.10.22": {"pg_seq": 2, "pg_role": "replica", "pg_offline_query": True},
                "10.10.10.23": {"pg_seq": 3, "pg_role": "offline"},
            },
        )
    )
    svcs = by_name(plan_of(hv, groups, "pg-x"))
    # replica service: the offline instance is a backup standby; every member
    # is a fallback, after the standbys
    assert servers(svcs["replica"]) == [
        ("pg-x-1", 6432, 100, False),
        ("pg-x-2", 6432, 100, False),
        ("pg-x-3", 6432, 100, True),
        ("pg-x-1.fallback", 6432, 100, True),
        ("pg-x-2.fallback", 6432, 100, True),
        ("pg-x-3.fallback", 6432, 100, True),
    ]
    # offline service: offline_query replica and the offline instance; no backup
    # (the only plain replica has pg_offline_query)
    assert servers(svcs["offline"]) == [("pg-x-2", 5432, 100, False), ("pg-x-3", 5432, 100, False)]


def test_custom_services_and_weights():
    hv, groups = build(
        cluster(
            "pg-w",
            {
                "10.10.10.31": {"pg_seq": 1, "pg_role": "primary"},
                "10.10.10.32": {"pg_seq": 2, "pg_role": "replica", "pg_weight": 50},
                "10.10.10.33": {
                    "pg_seq": 3,
                    "pg_role": "replica",
                    "pg_weight": 0,
                    "pgbouncer_port": 6433,
                    "patroni_port": 8009,
                },
            },
            pg_services=[
                {
                    "name": "standby",
                    "port": 5435,
                    "ip": "10.10.10.31",
                    "selector": "[? pg_role == `replica`]",
                    "dest": "pgbouncer",
                    "check": "/replica?lag=10MB",
                    "maxconn": 300,
                    "balance": "leastconn",
                },
                {
                    "name": "direct",
                    "port": 5440,
                    "dest": 15432,
                    "check": "/read-only",
                    "selector": "[? inventory_hostname == '10.10.10.33']",
                    "backup": "[? pg_seq == `2`]",
                    "options": "inter 5s rise 2 fall 2",
                },
            ],
        )
    )
    svcs = by_name(plan_of(hv, groups, "pg-w"))
    assert list(svcs) == ["primary", "replica", "default", "offline", "standby", "direct"]
    assert servers(svcs["primary"]) == [
        ("pg-w-1", 6432, 100, False),
        ("pg-w-2", 6432, 50, False),
        ("pg-w-3", 6433, 0, False),
    ]
    std = svcs["standby"]
    assert (std["name"], std["ip"], std["port"], std["check"], std["maxconn"], std["balance"]) == (
        "pg-w-standby",
        "10.10.10.31",
        5435,
        "/replica?lag=10MB",
        300,
        "leastconn",
    )
    assert servers(std) == [("pg-w-2", 6432, 50, False), ("pg-w-3", 6433, 0, False)]
    assert [s["check_port"] for s in std["servers"]] == [8008, 8009]
    direct = svcs["direct"]
    # /read-only on a custom service: its own members only, in two tiers
    assert servers(direct) == [
        ("pg-w-3", 15432, 0, False),
        ("pg-w-2", 15432, 50, True),
        ("pg-w-3.fallback", 15432, 0, True),
        ("pg-w-2.fallback", 15432, 50, True),
    ]
    assert direct["check"] == "/replica" and direct["fallback"]["check"] == "/read-only"
    assert direct["options"] == "inter 5s rise 2 fall 2"


def test_pgbouncer_disabled_points_default_services_at_postgres():
    hv, groups = build(pg_test(pgbouncer_enabled=False))
    svcs = by_name(plan_of(hv, groups, "pg-test"))
    assert svcs["primary"]["dest"] == "postgres"
    assert {s["port"] for s in svcs["primary"]["servers"]} == {5432}


def test_default_service_dest_postgres():
    hv, groups = build(pg_test(pg_default_service_dest="postgres"))
    svcs = by_name(plan_of(hv, groups, "pg-test"))
    assert {s["port"] for s in svcs["replica"]["servers"]} == {5432}


def test_rto_plan_sets_default_server_options():
    hv, groups = build(pg_test(pg_rto="fast"))
    svcs = by_name(plan_of(hv, groups, "pg-test"))
    assert svcs["primary"]["options"].startswith("inter 1s fastinter 500ms downinter 1s rise 3 fall 3 on-marked-down")


def test_selector_fields():
    assert services.selector_fields("[? pg_role == `offline` || pg_offline_query ]") == {"pg_role", "pg_offline_query"}
    assert services.selector_fields("[? region == 'eu' && rack]") == {"region", "rack"}
    assert services.selector_fields("[? broken") == set()


def test_selector_reading_custom_host_var():
    hv, groups = build(
        cluster(
            "pg-r",
            {
                "10.10.10.41": {"pg_seq": 1, "pg_role": "primary", "rack": "a"},
                "10.10.10.42": {"pg_seq": 2, "pg_role": "replica", "rack": "b"},
                "10.10.10.43": {"pg_seq": 3, "pg_role": "replica", "rack": "a"},
            },
            pg_services=[{"name": "rack-a", "port": 5441, "selector": "[? rack == 'a']"}],
        )
    )
    svcs = by_name(plan_of(hv, groups, "pg-r"))
    assert servers(svcs["rack-a"]) == [("pg-r-1", 6432, 100, False), ("pg-r-3", 6432, 100, False)]


ROLES = st.sampled_from(["replica", "offline"])


@st.composite
def clusters(draw):
    n = draw(st.integers(min_value=1, max_value=7))
    hosts = {
        "10.1.0.%d" % (i + 1): {"pg_seq": i + 1, "pg_role": "primary" if i == 0 else draw(ROLES)} for i in range(n)
    }
    for hvars in hosts.values():
        if draw(st.booleans()):
            hvars["pg_offline_query"] = draw(st.booleans())
        if draw(st.booleans()):
            hvars["pg_weight"] = draw(st.integers(min_value=0, max_value=255))
    return build(cluster("pg-h", hosts), infra=(), etcd=("10.1.1.1",))


@settings(max_examples=150, deadline=None)
@given(clusters())
def test_property_each_selected_member_once(inventory):
    hv, groups = inventory
    inv = model_mod.load(hv, groups)
    assert validate.problems(inv) == []
    cplan = plan.cluster_plan(inv, "pg-h")
    members = {m.instance: m for m in inv.clusters["pg-h"].members}
    for svc in cplan["services"]:
        checked = [s for s in svc["servers"] if s["track"] is None]
        names = [s["name"] for s in checked]
        assert len(names) == len(set(names))
        assert set(names) <= set(members)
        for s in checked:
            assert s["weight"] == members[s["name"]].weight
        if svc["service"] in ("primary", "default", "replica"):
            assert sorted(names) == sorted(members)  # [] selects everyone
        if svc["service"] == "replica":
            for s in checked:
                assert s["backup"] == (members[s["name"]].role == "offline")
            # and each member once more, as a fallback that tracks /read-only
            assert [s["name"] for s in svc["servers"] if s["track"]] == [n + ".fallback" for n in names]
        if svc["service"] == "offline" and "pg-h-1" in names:
            # a primary with pg_offline_query is listed, but the /replica
            # health check keeps traffic away from it
            assert svc["check"] == "/replica"


@pytest.mark.parametrize("expr", ["[0]", "[].pg_seq", "length(@)"])
def test_selector_must_yield_members(expr):
    hv, groups = build(pg_test(pg_services=[{"name": "x", "port": 5441, "selector": expr}]))
    found = validate.problems(model_mod.load(hv, groups))
    assert [p.field for p in found] == ["pg_services[0](x).selector"]
    assert "must yield" in found[0].what


@pytest.mark.parametrize(
    "check, method",
    [
        ("/primary", "OPTIONS"),
        ("/replica?lag=16MB", "OPTIONS"),
        # Patroni 3.0 answers OPTIONS on these with 503 even when healthy
        ("/liveness", "GET"),
        ("/readiness", "GET"),
    ],
)
def test_check_method_per_endpoint(check, method):
    hv, groups = build(pg_test(pg_services=[{"name": "x", "port": 5441, "check": check}]))
    assert by_name(plan_of(hv, groups, "pg-test"))["x"]["check_method"] == method


def test_root_check_is_accepted():
    """Pigsty's default check, /, which Patroni answers like /primary."""
    hv, groups = build(pg_test(pg_services=[{"name": "x", "port": 5441, "check": "/"}]))
    svc = by_name(plan_of(hv, groups, "pg-test"))["x"]
    assert (svc["check"], svc["check_method"]) == ("/", "OPTIONS")


@pytest.mark.parametrize("check", ["/quorum", "/read-only-quorum?lag=1MB"])
def test_patroni_4_checks_are_refused(check):
    hv, groups = build(pg_test(pg_services=[{"name": "x", "port": 5441, "check": check}]))
    found = validate.problems(model_mod.load(hv, groups))
    assert [(p.field, p.value) for p in found] == [("pg_services[0](x).check", check)]
    assert "Patroni 4" in found[0].what and "/sync" in found[0].fix


def test_provider_host_that_publishes_its_own_services_clashes():
    # pg-b's services go to pg-a's members, which already publish pg-a's
    hv, groups = build(
        cluster("pg-a", {"10.10.10.31": {"pg_seq": 1, "pg_role": "primary"}}),
        cluster("pg-b", {"10.10.10.41": {"pg_seq": 1, "pg_role": "primary"}}, pg_service_provider="pg-a"),
    )
    found = validate.problems(model_mod.load(hv, groups))
    assert sorted((p.cluster, p.host, p.field, p.value) for p in found) == [
        ("pg-b", "10.10.10.31", "pg_services", port) for port in (5433, 5434, 5436, 5438)
    ]
    assert any(
        "pg-b-primary uses port 5433 on 10.10.10.31, where pg-a-primary already listens" in p.what for p in found
    )


@pytest.mark.parametrize(
    "declared,tier1",
    [
        ("/read-only", "/replica"),
        ("/read-only?lag=16MB", "/replica?lag=16MB"),
        ("/read-only-sync", "/sync"),
        ("/read-only-sync?lag=0", "/sync?lag=0"),
    ],
)
def test_two_tier_checks_keep_the_query(declared, tier1):
    hv, groups = build(pg_test(pg_services=[{"name": "reads", "port": 5440, "check": declared, "selector": "[]"}]))
    svc = by_name(plan_of(hv, groups, "pg-test"))["reads"]
    assert svc["check"] == tier1
    assert svc["fallback"]["check"] == declared


@pytest.mark.parametrize("check", ["/primary", "/replica", "/replica?lag=1MB", "/sync", "/leader", "/health"])
def test_other_checks_are_one_tier(check):
    hv, groups = build(pg_test(pg_services=[{"name": "one", "port": 5440, "check": check, "selector": "[]"}]))
    svc = by_name(plan_of(hv, groups, "pg-test"))["one"]
    assert svc["check"] == check and svc["fallback"] is None
    assert all(s["track"] is None for s in svc["servers"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(["primary", "replica", "offline"]), min_size=1, max_size=5),
    st.sampled_from(["/read-only", "/read-only-sync?lag=1MB", "/read-only?lag=0"]),
)
def test_fallback_tier_mirrors_the_servers(roles, check):
    """Whatever the roles: each server of a two-tier service appears once
    checked and once as a tracking backup after every checked server, and
    the fallback backend checks exactly the checked servers."""
    members = {
        "10.10.30.%d" % (i + 1): {"pg_seq": i + 1, "pg_role": "primary" if i == 0 else r}
        for i, r in enumerate(["primary"] + [r for r in roles[1:] if r != "primary"])
    }
    roles = list(members)
    hv, groups = build(
        cluster(
            "pg-p",
            members,
            pg_services=[
                {"name": "reads", "port": 5440, "check": check, "selector": "[]", "backup": "[? pg_role == `offline` ]"}
            ],
        )
    )
    svc = by_name(plan_of(hv, groups, "pg-p"))["reads"]
    n = len(roles)
    checked, tracked = svc["servers"][:n], svc["servers"][n:]
    assert all(s["track"] is None for s in checked)
    assert [s["name"] for s in tracked] == [s["name"] + ".fallback" for s in checked]
    assert all(s["backup"] for s in tracked)
    assert [s["track"] for s in tracked] == ["pg-p-reads.fallback/" + s["name"] for s in checked]
    assert [s["name"] for s in svc["fallback"]["servers"]] == [s["name"] for s in checked]
