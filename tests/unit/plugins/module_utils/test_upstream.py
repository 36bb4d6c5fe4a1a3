# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg_upstream and pg_delay: standby clusters, cascading replicas, delayed
clusters. Hand-checked messages of what is refused, what is accepted, and
properties: a problem is reported exactly when the replication graph has a
circle; pg_delay is accepted exactly when PostgreSQL takes it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    patroni_conf,
    plan,
    settings as settings_mod,
    upstream,
    validate,
)
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import snapshot
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    DELAY_MAX_MS,
    delay_ms,
    load,
)
from inv import build, cluster, pg_test

# Problems of other checks that a case must not echo: only these fields.
FIELDS = ("pg_upstream", "pg_delay")


def messages(*clusters, **kwargs):
    hostvars, groups = build(pg_test(), *clusters, **kwargs)
    return [str(p) for p in validate.problems(model_mod.load(hostvars, groups))]


def standby(name, base, leader_up, *, replica_up=None, **leader_vars):
    """Cluster ``name`` on 10.10.10.<base+1> (leader, following
    ``leader_up``) and 10.10.10.<base+2> (replica, following
    ``replica_up``)."""
    first, second = "10.10.10.%d" % (base + 1), "10.10.10.%d" % (base + 2)
    hosts = {first: {"pg_seq": 1, "pg_role": "primary", **leader_vars}, second: {"pg_seq": 2, "pg_role": "replica"}}
    if leader_up is not None:
        hosts[first]["pg_upstream"] = leader_up
    if replica_up is not None:
        hosts[second]["pg_upstream"] = replica_up
    return cluster(name, hosts)


def cascade(**ups):
    """pg-test with four members; ``ups`` maps a seq (s2, s3, s4) to the
    seq it follows."""
    hosts = {"10.10.10.11": {"pg_seq": 1, "pg_role": "primary"}}
    for seq in (2, 3, 4):
        hosts["10.10.10.1%d" % seq] = {"pg_seq": seq, "pg_role": "replica"}
    for key, target in ups.items():
        hosts["10.10.10.1%s" % key[1:]]["pg_upstream"] = "10.10.10.1%d" % target
    return cluster("pg-test", hosts)


_CIRCLE_FIX = (
    "fix: make one of them an ordinary cluster (remove pg_upstream from "
    "its leader), or point the leader of %s at a cluster outside the circle"
)
_DELAY_FORMS = (
    "recovery_min_apply_delay takes an integer of milliseconds or a "
    "number with one of the units us, ms, s, min, h, d (lower case)"
)

REFUSED = [
    (
        "standby-leader-follows-own-member",
        [standby("pg-dr", 20, "10.10.10.22")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_upstream = '10.10.10.22': a standby "
            "leader must replicate from outside its own cluster, but 10.10.10.22 is member "
            "pg-dr-2; fix: point pg_upstream at the primary of the upstream cluster"
        ],
    ),
    (
        "standby-leader-follows-itself",
        [standby("pg-dr", 20, "10.10.10.21")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_upstream = '10.10.10.21': an instance "
            "cannot replicate from itself; fix: point pg_upstream at another instance, or "
            "remove it"
        ],
    ),
    (
        "standby-leader-follows-own-vip",
        [
            cluster(
                "pg-dr",
                {
                    "10.10.10.21": {"pg_seq": 1, "pg_role": "standby", "pg_upstream": "10.10.10.4"},
                    "10.10.10.22": {"pg_seq": 2, "pg_role": "replica"},
                },
                pg_vip_enabled=True,
                pg_vip_address="10.10.10.4/24",
                pg_vip_interface="eth0",
            )
        ],
        [
            "cluster pg-dr, host 10.10.10.21: pg_upstream = '10.10.10.4': a standby leader "
            "must replicate from outside its own cluster, but 10.10.10.4 is the VIP of pg-dr "
            "itself; fix: point pg_upstream at the primary of the upstream cluster"
        ],
    ),
    (
        "cascading-replica-follows-another-cluster",
        [standby("pg-dr", 20, "10.10.10.11", replica_up="10.10.10.12")],
        [
            "cluster pg-dr, host 10.10.10.22: pg_upstream = '10.10.10.12': a cascading "
            "replica must replicate from a member of its own cluster; fix: set pg_upstream "
            "to one of 10.10.10.21, or remove it to replicate from the leader"
        ],
    ),
    (
        "cascading-replica-follows-itself",
        [standby("pg-dr", 20, "10.10.10.11", replica_up="10.10.10.22")],
        [
            "cluster pg-dr, host 10.10.10.22: pg_upstream = '10.10.10.22': an instance "
            "cannot replicate from itself; fix: point pg_upstream at another instance, or "
            "remove it"
        ],
    ),
    (
        "two-clusters-follow-each-other",
        [standby("pg-a", 20, "10.10.10.32"), standby("pg-b", 30, "10.10.10.21")],
        [
            "cluster pg-a, host 10.10.10.21: pg_upstream = '10.10.10.32': the standby "
            "clusters follow each other in a circle (pg-a -> pg-b -> pg-a), so none of them "
            "has a primary to replicate from; " + _CIRCLE_FIX % "pg-a",
            "cluster pg-b, host 10.10.10.31: pg_upstream = '10.10.10.21': the standby "
            "clusters follow each other in a circle (pg-b -> pg-a -> pg-b), so none of them "
            "has a primary to replicate from; " + _CIRCLE_FIX % "pg-b",
        ],
    ),
    (
        "three-clusters-in-a-circle",
        [standby("pg-a", 20, "10.10.10.31"), standby("pg-b", 30, "10.10.10.42"), standby("pg-c", 40, "10.10.10.22")],
        [
            "cluster pg-a, host 10.10.10.21: pg_upstream = '10.10.10.31': the standby "
            "clusters follow each other in a circle (pg-a -> pg-b -> pg-c -> pg-a), so none "
            "of them has a primary to replicate from; " + _CIRCLE_FIX % "pg-a",
            "cluster pg-b, host 10.10.10.31: pg_upstream = '10.10.10.42': the standby "
            "clusters follow each other in a circle (pg-b -> pg-c -> pg-a -> pg-b), so none "
            "of them has a primary to replicate from; " + _CIRCLE_FIX % "pg-b",
            "cluster pg-c, host 10.10.10.41: pg_upstream = '10.10.10.22': the standby "
            "clusters follow each other in a circle (pg-c -> pg-a -> pg-b -> pg-c), so none "
            "of them has a primary to replicate from; " + _CIRCLE_FIX % "pg-c",
        ],
    ),
    (
        "two-replicas-follow-each-other",
        [],
        [
            "cluster pg-test, host 10.10.10.12: pg_upstream = '10.10.10.13': cascading "
            "replicas follow each other in a circle (pg-test-2 -> pg-test-3 -> pg-test-2), "
            "so none of them reaches the leader; fix: point pg_upstream of one of them at "
            "the leader 10.10.10.11 or at a replica outside the circle, or remove it",
            "cluster pg-test, host 10.10.10.13: pg_upstream = '10.10.10.12': cascading "
            "replicas follow each other in a circle (pg-test-3 -> pg-test-2 -> pg-test-3), "
            "so none of them reaches the leader; fix: point pg_upstream of one of them at "
            "the leader 10.10.10.11 or at a replica outside the circle, or remove it",
        ],
    ),
    (
        "upstream-neither-ip-nor-host",
        [standby("pg-dr", 20, "db-main.example.com")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_upstream = 'db-main.example.com': is "
            "neither an IP address nor a host of the inventory; fix: set pg_upstream to the "
            "IP address (or the inventory name) of the instance to replicate from"
        ],
    ),
    (
        "upstream-an-instance-name",
        [standby("pg-dr", 20, "pg-test-1")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_upstream = 'pg-test-1': is neither an IP "
            "address nor a host of the inventory; fix: write the address of instance "
            "pg-test-1, 10.10.10.11"
        ],
    ),
    (
        "upstream-not-a-string",
        [standby("pg-dr", 20, ["10.10.10.11"])],
        [
            "cluster pg-dr, host 10.10.10.21: pg_upstream = ['10.10.10.11']: is neither an "
            "IP address nor a host of the inventory; fix: set pg_upstream to the IP address "
            "(or the inventory name) of the instance to replicate from"
        ],
    ),
    (
        "delay-spelled-in-words",
        [standby("pg-dr", 20, "10.10.10.11", pg_role="delayed", pg_delay="2 hours")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = '2 hours': is spelled in a way "
            "PostgreSQL refuses: " + _DELAY_FORMS + "; fix: write '2h'"
        ],
    ),
    (
        "delay-in-weeks",
        [standby("pg-dr", 20, "10.10.10.11", pg_delay="1w")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = '1w': is spelled in a way "
            "PostgreSQL refuses: " + _DELAY_FORMS + "; fix: write '7d'"
        ],
    ),
    (
        "delay-upper-case-unit",
        [standby("pg-dr", 20, "10.10.10.11", pg_delay="1H")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = '1H': is spelled in a way "
            "PostgreSQL refuses: " + _DELAY_FORMS + "; fix: write '1h'"
        ],
    ),
    (
        "delay-beyond-int-max",
        [standby("pg-dr", 20, "10.10.10.11", pg_delay="25d")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = '25d': is 2160000000 ms, more than "
            "recovery_min_apply_delay takes (at most 2147483647 ms, about 24.8 days); fix: "
            "use at most '24d'"
        ],
    ),
    (
        "delay-beyond-int-max-in-ms",
        [standby("pg-dr", 20, "10.10.10.11", pg_delay=2147483648)],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = 2147483648: is 2147483648 ms, more "
            "than recovery_min_apply_delay takes (at most 2147483647 ms, about 24.8 days); "
            "fix: use at most '24d'"
        ],
    ),
    (
        "delay-unknown-unit",
        [standby("pg-dr", 20, "10.10.10.11", pg_delay="1 fortnight")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = '1 fortnight': is not a delay "
            "PostgreSQL accepts: " + _DELAY_FORMS + "; fix: write e.g. '1h', '30min' or "
            "'1d' (a bare number is milliseconds)"
        ],
    ),
    (
        "delay-octal",
        [standby("pg-dr", 20, "10.10.10.11", pg_delay="010")],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = '010': is not a delay PostgreSQL "
            "accepts: " + _DELAY_FORMS + "; fix: write e.g. '1h', '30min' or '1d' (a bare "
            "number is milliseconds)"
        ],
    ),
    (
        "delay-boolean",
        [standby("pg-dr", 20, "10.10.10.11", pg_delay=True)],
        [
            "cluster pg-dr, host 10.10.10.21: pg_delay = True: is not a delay PostgreSQL "
            "accepts: " + _DELAY_FORMS + "; fix: write e.g. '1h', '30min' or '1d' (a bare "
            "number is milliseconds)"
        ],
    ),
]


@pytest.mark.parametrize("clusters, expect", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused(clusters, expect):
    if not clusters:  # the cascade case changes pg-test itself
        hostvars, groups = build(cascade(s2=3, s3=2))
        got = [str(p) for p in validate.problems(model_mod.load(hostvars, groups))]
    else:
        got = messages(*clusters)
    assert got == expect


@pytest.mark.parametrize(
    "ups, circle",
    [
        ({"s2": 3, "s3": 2}, ["pg-test-2", "pg-test-3"]),
        ({"s2": 3, "s3": 4, "s4": 2}, ["pg-test-2", "pg-test-3", "pg-test-4"]),
        # 4 follows the circle of 2 and 3 without being on it
        ({"s2": 3, "s3": 2, "s4": 2}, ["pg-test-2", "pg-test-3"]),
    ],
)
def test_cascade_circles(ups, circle):
    hostvars, groups = build(cascade(**ups))
    found = upstream.problems(load(hostvars, groups))
    assert sorted(p.host for p in found) == sorted("10.10.10.1%s" % name[-1] for name in circle)
    assert all("in a circle" in p.what for p in found)


def test_circle_found_when_validation_is_limited():
    """``-l pg-a``: pg-b is not loaded, but its leader's upstream is read
    from the inventory, so the circle is refused all the same."""
    hostvars, groups = build(pg_test(), standby("pg-a", 20, "10.10.10.32"), standby("pg-b", 30, "10.10.10.21"))
    snap = snapshot(hostvars, groups, ["10.10.10.21"])
    assert snap["clusters"] == ["pg-a"]
    inv = model_mod.load(snap["hostvars"], snap["groups"], snap["clusters"])
    assert [str(p) for p in validate.problems(inv)] == [
        "cluster pg-a, host 10.10.10.21: pg_upstream = '10.10.10.32': the standby "
        "clusters follow each other in a circle (pg-a -> pg-b -> pg-a), so none of them "
        "has a primary to replicate from; " + _CIRCLE_FIX % "pg-a"
    ]


def test_circle_through_a_vip():
    """pg-b follows pg-a's VIP: the VIP belongs to pg-a."""
    got = messages(
        cluster(
            "pg-a",
            {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.31"}},
            pg_vip_enabled=True,
            pg_vip_address="10.10.10.4/24",
            pg_vip_interface="eth0",
        ),
        standby("pg-b", 30, "10.10.10.4"),
    )
    assert [m.split(":")[0] for m in got] == ["cluster pg-a, host 10.10.10.21", "cluster pg-b, host 10.10.10.31"]
    assert "(pg-b -> pg-a -> pg-b)" in got[1]


ACCEPTED = [
    # a chain of standby clusters: pg-c follows pg-b, which follows pg-test
    [standby("pg-b", 30, "10.10.10.11"), standby("pg-c", 40, "10.10.10.32")],
    # a standby cluster following a replica of its source, a source outside
    # the inventory, and a delayed one
    [
        standby("pg-b", 30, "10.10.10.12"),
        standby("pg-c", 40, "192.0.2.10"),
        standby("pg-d", 50, "10.10.10.11", pg_role="delayed", pg_delay="1h"),
    ],
    # the source's VIP
    [standby("pg-b", 30, "10.10.10.3")],
    # a cascading replica of a standby cluster, following its leader
    [standby("pg-b", 30, "10.10.10.11", replica_up="10.10.10.31")],
    # every form of pg_delay PostgreSQL takes, up to its maximum
    [
        standby("pg-b", 30, "10.10.10.11", pg_delay=d)
        for d in ("24d", " 1.5 h", "1e3", "90min", "2147483647", 5400000, "500us")
    ],
]


@pytest.mark.parametrize("clusters", ACCEPTED)
def test_accepted(clusters):
    for one in clusters:
        hostvars, groups = build(
            pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24", pg_vip_interface="eth0"), one
        )
        inv = model_mod.load(hostvars, groups)
        assert [str(p) for p in validate.problems(inv) if p.field in FIELDS] == []
    hostvars, groups = build(pg_test(), *clusters[:1])
    assert validate.problems(model_mod.load(hostvars, groups)) == []


def test_cascade_chain_and_replica_following_the_leader():
    hostvars, groups = build(cascade(s2=1, s3=2, s4=3))
    assert validate.problems(model_mod.load(hostvars, groups)) == []


def test_upstream_by_inventory_name():
    """An inventory host name is accepted and stands for its address, in
    the standby cluster's source and a cascading replica's tag."""
    hostvars, groups = build(
        cluster("pg-main", {"db-a": {"pg_seq": 1, "pg_role": "primary", "ansible_host": "192.168.5.21"}}),
        cluster(
            "pg-dr",
            {
                "db-b": {
                    "pg_seq": 1,
                    "pg_role": "primary",
                    "pg_upstream": "db-a",
                    "ansible_host": "192.168.5.31",
                    "pg_delay": "1h",
                },
                "db-c": {"pg_seq": 2, "pg_role": "replica", "ansible_host": "192.168.5.32"},
                "db-d": {"pg_seq": 3, "pg_role": "replica", "pg_upstream": "db-c", "ansible_host": "192.168.5.33"},
            },
            pg_conf="tiny",
        ),
        infra=("db-a",),
        etcd=("db-a",),
    )
    inv = model_mod.load(hostvars, groups)
    assert [str(p) for p in validate.problems(inv) if p.field in FIELDS] == []
    cplan = plan.cluster_plan(inv, "pg-dr")
    assert [m["upstream"] for m in cplan["members"]] == ["192.168.5.21", None, "192.168.5.32"]
    s = settings_mod.build_settings(hostvars["db-d"])
    patroni = patroni_conf.patroni_config(cplan, plan.instance_plan(inv, "db-d"), s)
    assert patroni["bootstrap"]["dcs"]["standby_cluster"]["host"] == "192.168.5.21"
    assert patroni["bootstrap"]["dcs"]["standby_cluster"]["recovery_min_apply_delay"] == "1h"
    assert patroni["tags"]["replicatefrom"] == "pg-dr-2"


def test_upstream_host_without_address():
    hostvars, groups = build(standby("pg-dr", 20, "backup-site"), extra_groups={"other": ["backup-site"]})
    assert [str(p) for p in upstream.problems(load(hostvars, groups))] == [
        "cluster pg-dr, host 10.10.10.21: pg_upstream = 'backup-site': is host "
        "backup-site of the inventory, which has no IP address; fix: set ansible_host "
        "of backup-site to its IP address, or write that IP in pg_upstream"
    ]


def test_misspelt_host_name():
    hostvars, groups = build(
        cluster("pg-main", {"db-main": {"pg_seq": 1, "pg_role": "primary", "ansible_host": "192.168.5.21"}}),
        standby("pg-dr", 20, "db-mian"),
    )
    assert [p.fix for p in upstream.problems(load(hostvars, groups))] == [
        "did you mean db-main? set pg_upstream to the IP address (or the inventory "
        "name) of the instance to replicate from"
    ]


# ------------------------------------------------------------- properties


def _instance_graph_has_circle(spec):
    """The oracle, independent of upstream.py: every instance points at the
    instance it receives WAL from (a replica without pg_upstream at its
    leader; a leader without pg_upstream, or following an address outside
    the inventory, at nothing). The graph is valid when every walk ends."""
    source = {}
    for c, members in enumerate(spec):
        for i, up in enumerate(members):
            me = (c, i)
            if up is None:
                source[me] = None if i == 0 else (c, 0)
            elif up == "outside":
                source[me] = None
            else:
                source[me] = up
    for start in source:
        seen, cur = set(), start
        while cur is not None:
            if cur in seen:
                return True
            seen.add(cur)
            cur = source[cur]
    return False


@st.composite
def follow_graphs(draw):
    """Clusters of 1-3 members (member 0 leads); a leader follows nothing,
    an address outside the inventory or any instance (of another cluster,
    or of its own: a circle); a replica follows nothing or a member of its
    own cluster (itself included)."""
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))
    instances = [(c, i) for c, n in enumerate(sizes) for i in range(n)]
    spec = []
    for c, n in enumerate(sizes):
        members = [draw(st.one_of(st.none(), st.just("outside"), st.sampled_from(instances)))]
        for _ in range(1, n):
            members.append(draw(st.one_of(st.none(), st.sampled_from([(c, j) for j in range(n)]))))
        spec.append(members)
    return spec


def _inventory(spec):
    def ip(c, i):
        return "10.10.%d.%d" % (c + 20, i + 1)

    clusters = []
    for c, members in enumerate(spec):
        hosts = {}
        for i, up in enumerate(members):
            hvars = {"pg_seq": i + 1, "pg_role": "primary" if i == 0 else "replica"}
            if up == "outside":
                hvars["pg_upstream"] = "192.0.2.1"
            elif up is not None:
                hvars["pg_upstream"] = ip(*up)
            hosts[ip(c, i)] = hvars
        clusters.append(cluster("pg-%d" % c, hosts))
    return build(*clusters)


@settings(max_examples=300, deadline=None)
@given(follow_graphs())
def test_problem_iff_circle(spec):
    hostvars, groups = _inventory(spec)
    found = upstream.problems(load(hostvars, groups))
    assert bool(found) == _instance_graph_has_circle(spec), [str(p) for p in found]


_UNITS = {"": 1, "us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}


@given(
    st.integers(0, 3 * 10**9),
    st.sampled_from(sorted(_UNITS) + ["sec", "m", "hour", "days", "w", "H", "Min", "hrs", "x"]),
    st.sampled_from(["", " "]),
)
def test_delay_accepted_iff_postgresql_takes_it(number, unit, space):
    """An integer with a unit PostgreSQL knows, within INT_MAX ms, is taken
    and rendered for Patroni as the same number of ms; anything else is
    refused."""
    text = "%d%s%s" % (number, space, unit)
    ms = round(number * _UNITS[unit]) if unit in _UNITS else None
    if ms is not None and ms <= DELAY_MAX_MS:
        assert delay_ms(text) == ms
        assert delay_ms(patroni_conf._delay(text)) == ms
    else:
        assert delay_ms(text) is None


# ------------------------------------------------------- the source's data


@pytest.mark.parametrize(
    "leader_vars, expect",
    [
        ({}, []),
        (
            {"pg_version": 16},
            [
                "cluster pg-dr, host 10.10.10.21: pg_version = 16: pg-dr is a standby cluster of pg-test "
                "(pg_upstream 10.10.10.3), whose data it copies: pg_version must be the same in both clusters "
                "(pg-test has 15); fix: set pg_version of pg-dr to pg-test's"
            ],
        ),
        (
            {"pg_monitor_password": "Other.Secret"},
            [
                "cluster pg-dr, host 10.10.10.21: pg_monitor_password = '(hidden)': pg-dr is a standby cluster of "
                "pg-test (pg_upstream 10.10.10.3), whose data it copies: pg_monitor_password must be the same in "
                "both clusters (pg-test has another one); fix: set pg_monitor_password of pg-dr to pg-test's"
            ],
        ),
    ],
)
def test_a_standby_cluster_has_its_source_roles_and_version(leader_vars, expect):
    # through pg-test's VIP
    dr = standby("pg-dr", 20, "10.10.10.3", **leader_vars)
    hostvars, groups = build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24"), dr)
    found = [str(p) for p in upstream.problems(model_mod.load(hostvars, groups))]
    assert found == expect
    assert not any("Other.Secret" in m for m in found)


def test_a_source_outside_the_inventory_is_not_compared():
    dr = standby("pg-dr", 20, "192.168.5.21", pg_version=16)
    hostvars, groups = build(pg_test(), dr)
    assert upstream.problems(model_mod.load(hostvars, groups)) == []


# ------------------------------------------------------ permanent slots


@pytest.mark.parametrize(
    "name, slot",
    [
        ("pg-dr", "standby_pg_dr"),
        ("PG.DR_2", "standby_pg_dr_2"),
        ("pg-ü", "standby_pg__"),
        ("x" * 80, "standby_" + "x" * 55),
    ],
)
def test_standby_slot(name, slot):
    assert upstream.standby_slot(name) == slot


@given(st.text(min_size=1, max_size=80))
def test_standby_slot_is_a_slot_name_patroni_takes(name):
    slot = upstream.standby_slot(name)
    # Patroni's slot_name_re: ^[a-z0-9_]{1,63}$
    assert 1 <= len(slot) <= 63 and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_" for c in slot)


def test_followers_and_the_standby_plan():
    dr = standby("pg-dr", 20, "10.10.10.3")  # pg-test's VIP: a slot
    dr2 = standby("pg-dr2", 30, "10.10.10.12")  # one member of pg-test: no slot
    far = standby("pg-far", 40, "192.168.5.1")  # outside the inventory
    cascade_of_dr = standby("pg-dr3", 50, "10.10.10.4")  # pg-dr's VIP: a standby cluster, no slot
    hostvars, groups = build(
        pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24"),
        dr,
        dr2,
        far,
        cascade_of_dr,
    )
    for host in ("10.10.10.21", "10.10.10.22"):
        hostvars[host].update(pg_vip_enabled=True, pg_vip_address="10.10.10.4/24")
    assert upstream.followers(hostvars, "pg-test") == ["standby_pg_dr"]
    assert upstream.followers(hostvars, "pg-dr") == []
    assert upstream.followers(hostvars, "pg-far") == []
    inv = load(hostvars, groups)
    apis = ["https://10.10.10.11:8008", "https://10.10.10.12:8008", "https://10.10.10.13:8008"]
    assert plan.cluster_plan(inv, "pg-dr")["standby"] == {
        "followers": [],
        "source": {"host": "10.10.10.11", "cluster": "pg-test", "api": apis[0], "apis": apis},
        "slot": "standby_pg_dr",
        "seed": None,
    }
    assert plan.cluster_plan(inv, "pg-dr2")["standby"] == {
        "followers": [],
        "source": {"host": "10.10.10.12", "cluster": "pg-test", "api": apis[1], "apis": apis},
        "slot": None,
        "seed": None,
    }
    assert plan.cluster_plan(inv, "pg-far")["standby"] == {"followers": [], "source": None, "slot": None, "seed": None}


def test_two_standby_clusters_whose_slots_collide_are_refused():
    vip = {"pg_vip_enabled": True, "pg_vip_address": "10.10.10.3/24"}
    hostvars, groups = build(pg_test(**vip), standby("pg-dr", 20, "10.10.10.3"), standby("pg_dr", 30, "10.10.10.3"))
    found = [str(p) for p in upstream.problems(load(hostvars, groups)) if p.field == "pg_cluster"]
    assert found == [
        "cluster %s, host %s: pg_cluster = '%s': the standby clusters pg-dr and pg_dr of pg-test would replicate "
        "through the same slot standby_pg_dr; fix: rename one of them so that their names differ in more than "
        "case, '-', '.' or characters after the 55th" % (name, host, name)
        for name, host in (("pg-dr", "10.10.10.21"), ("pg_dr", "10.10.10.31"))
    ]


def test_a_run_limited_to_the_standby_cluster_sees_its_source():
    # -l pg-dr: pg-test is not loaded; what the standby needs of it is read
    # all the same (safety.OTHER_VARS), and its passwords are not compared
    dr = standby("pg-dr", 20, "10.10.10.12", pg_admin_password="Other")
    hostvars, groups = build(pg_test(pg_port=6543, pg_version=15), dr)
    snap = snapshot(hostvars, groups, ["10.10.10.21"])
    inv = load(snap["hostvars"], snap["groups"], snap["clusters"])
    assert sorted(inv.clusters) == ["pg-dr"]
    assert [str(p) for p in upstream.problems(inv)] == []
    assert inv.clusters["pg-dr"].leader.upstream_port == 6543
    # the whole inventory compares the passwords too
    full = load(hostvars, groups)
    assert [p.field for p in upstream.problems(full)] == ["pg_admin_password"]


def test_a_limited_run_finds_a_source_on_the_infra_and_etcd_node():
    # pg-meta runs on the infra and etcd node: -l pg-dr reads what the
    # standby needs of it all the same, and plans the same slot as a full run
    meta = cluster(
        "pg-meta",
        {"10.10.10.10": {"pg_seq": 1, "pg_role": "primary"}},
        pg_vip_enabled=True,
        pg_vip_address="10.10.10.2/24",
        pg_port=6543,
    )
    hostvars, groups = build(meta, standby("pg-dr", 20, "10.10.10.2"))
    snap = snapshot(hostvars, groups, ["10.10.10.21"])
    limited = load(snap["hostvars"], snap["groups"], snap["clusters"])
    full = load(hostvars, groups)
    assert plan.cluster_plan(limited, "pg-dr")["standby"] == plan.cluster_plan(full, "pg-dr")["standby"]
    assert plan.cluster_plan(limited, "pg-dr")["standby"]["slot"] == "standby_pg_dr"
    assert limited.clusters["pg-dr"].leader.upstream_port == 6543
