# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Switchover planning from Patroni 3.0's GET /cluster (shape of the
sandbox's answer: leader pg-test-1, replicas pg-test-2 and pg-test-3)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import patroni_ops as ops


def cluster(lag2=0, lag3=0, state2="running", state3="running", leader="pg-test-1", tags3=None):
    def member(name, role, state, lag):
        m = {
            "name": name,
            "role": role,
            "state": state,
            "host": "10.10.10.1%s" % name[-1],
            "port": 5432,
            "api_url": "http://10.10.10.1%s:8008/patroni" % name[-1],
            "timeline": 1,
        }
        if role != "leader":
            m["lag"] = lag
        return m

    names = ["pg-test-1", "pg-test-2", "pg-test-3"]
    out = []
    for name, state, lag in zip(names, ["running", state2, state3], [0, lag2, lag3]):
        out.append(member(name, "leader" if name == leader else "replica", "running" if name == leader else state, lag))
    if tags3:
        out[2]["tags"] = tags3
    return {"members": out, "scope": "pg-test"}


def test_default_candidate_is_the_least_lagging_replica():
    assert ops.plan_switchover(cluster(lag2=500, lag3=100)) == {
        "changed": True,
        "leader": "pg-test-1",
        "candidate": "pg-test-3",
    }
    assert ops.plan_switchover(cluster())["candidate"] == "pg-test-2"  # tie: by name


def test_named_candidate_and_idempotence():
    assert ops.plan_switchover(cluster(), candidate="pg-test-3")["candidate"] == "pg-test-3"
    # already the leader: nothing to do, also when the expected leader is the old one
    done = cluster(leader="pg-test-3")
    assert ops.plan_switchover(done, candidate="pg-test-3") == {
        "changed": False,
        "leader": "pg-test-3",
        "candidate": "pg-test-3",
    }
    assert ops.plan_switchover(done, candidate="pg-test-3", leader="pg-test-1")["changed"] is False


@pytest.mark.parametrize(
    "kwargs, args, message",
    [
        ({"lag2": 5 << 20}, {"candidate": "pg-test-2"}, "pg-test-2 lags 5242880 bytes"),
        ({"state2": "stopped"}, {"candidate": "pg-test-2"}, "pg-test-2 is stopped"),
        ({"state3": "starting"}, {"candidate": "pg-test-2"}, "not healthy: pg-test-3 is starting"),
        ({}, {"candidate": "pg-test-9"}, "pg-test-9 is not a member"),
        ({}, {"leader": "pg-test-2"}, "pg-test-1 leads the cluster, not pg-test-2"),
        ({"tags3": {"nofailover": True}}, {"candidate": "pg-test-3"}, "tagged nofailover"),
        ({"lag2": "unknown", "state3": "stopped"}, {}, "no healthy replica"),
    ],
)
def test_refusals_name_the_reason(kwargs, args, message):
    with pytest.raises(ops.OperationRefused, match=message):
        ops.plan_switchover(cluster(**kwargs), **args)


def test_force_skips_the_health_of_other_members_but_not_the_candidate():
    assert ops.plan_switchover(cluster(state3="stopped"), candidate="pg-test-2", force=True)["changed"]
    with pytest.raises(ops.OperationRefused, match="lags"):
        ops.plan_switchover(cluster(lag2=5 << 20), candidate="pg-test-2", force=True)


def test_no_leader_is_refused():
    c = cluster()
    c["members"][0]["role"] = "replica"
    with pytest.raises(ops.OperationRefused, match="no single leader"):
        ops.plan_switchover(c)
    assert not ops.healthy(c)


def test_switched_and_healthy():
    assert ops.switched(cluster(leader="pg-test-2"), "pg-test-2")
    assert not ops.switched(cluster(), "pg-test-2")
    assert ops.healthy(cluster(), ["pg-test-1", "pg-test-3"])
    assert not ops.healthy(cluster(state2="stopped"))
    assert not ops.healthy(cluster(), ["pg-test-4"])


@given(st.integers(0, 1 << 30), st.integers(0, 1 << 30), st.integers(0, 1 << 24))
def test_chosen_candidate_is_never_over_the_lag_limit(lag2, lag3, limit):
    try:
        plan = ops.plan_switchover(cluster(lag2=lag2, lag3=lag3), max_lag=limit)
    except ops.OperationRefused:
        assert min(lag2, lag3) > limit or max(lag2, lag3) > limit
        return
    chosen = {"pg-test-2": lag2, "pg-test-3": lag3}[plan["candidate"]]
    assert chosen <= limit and chosen == min(lag2, lag3)


def test_synchronous_mode_promotes_only_the_sync_standby():
    c = cluster(lag2=0, lag3=0)
    c["members"][2]["role"] = "sync_standby"
    assert ops.plan_switchover(c)["candidate"] == "pg-test-3"
    with pytest.raises(ops.OperationRefused, match="not a synchronous standby"):
        ops.plan_switchover(c, candidate="pg-test-2")


def on_timelines(leader_tl, tl2, tl3, **kwargs):
    c = cluster(**kwargs)
    for m, tl in zip(c["members"], [leader_tl, tl2, tl3]):
        m["timeline"] = tl
    return c


def test_a_replica_off_the_leaders_timeline_is_never_promoted():
    # what a rejoined member that has not replayed (or cannot replay) the
    # leader's history reports: lag 0 all the same
    c = on_timelines(7, 5, 7)
    with pytest.raises(
        ops.OperationRefused,
        match="candidate pg-test-2 is on timeline 5, the leader pg-test-1 on 7: "
        "it does not follow.*patronictl reinit pg-test pg-test-2",
    ):
        ops.plan_switchover(c, candidate="pg-test-2")
    # the default choice skips it, although it is first by name
    assert ops.plan_switchover(c, force=True)["candidate"] == "pg-test-3"
    # without force the other member's state blocks the operation
    with pytest.raises(ops.OperationRefused, match="not healthy: pg-test-2 is on timeline 5"):
        ops.plan_switchover(c)
    assert ops.problems(c, None) == ["pg-test-2 is on timeline 5, the leader pg-test-1 on 7"]
    assert not ops.healthy(c)
    with pytest.raises(ops.OperationRefused, match="no healthy replica"):
        ops.plan_switchover(on_timelines(7, 5, 6))


def test_timelines_that_are_not_reported_are_not_judged():
    c = on_timelines(3, None, "x")
    assert ops.problems(c, None) == []
    assert ops.plan_switchover(c, candidate="pg-test-2")["changed"]


@given(st.integers(1, 50), st.integers(1, 50), st.integers(1, 50))
def test_the_candidate_is_always_on_the_leaders_timeline(t1, t2, t3):
    c = on_timelines(t1, t2, t3)
    try:
        plan = ops.plan_switchover(c, force=True)
    except ops.OperationRefused:
        assert t2 != t1 and t3 != t1
        return
    assert {"pg-test-2": t2, "pg-test-3": t3}[plan["candidate"]] == t1
    assert ops.healthy(c) == (t1 == t2 == t3)


INV = [
    {"cluster": "pg-x", "instance": "pg-x-1", "role": "primary"},
    {"cluster": "pg-x", "instance": "pg-x-2", "role": "replica"},
]


@pytest.mark.parametrize(
    "answer,expected",
    [
        # the inventory's primary leads: nothing to say
        (
            {
                "members": [
                    {"name": "pg-x-1", "role": "leader", "state": "running"},
                    {"name": "pg-x-2", "role": "replica", "state": "streaming"},
                ]
            },
            [],
        ),
        (
            {
                "members": [
                    {"name": "pg-x-1", "role": "replica", "state": "streaming"},
                    {"name": "pg-x-2", "role": "leader", "state": "running"},
                ]
            },
            [
                "pg-x: pg-x-2 leads, while pg_role names pg-x-1 as primary: expected after a failover or switchover "
                "(services, VIP and pgbouncer follow the live roles, and pgsql.yml never moves the leader back); "
                "set pg_role: primary on pg-x-2 when convenient"
            ],
        ),
        (
            {"members": [{"name": "pg-x-1", "role": "replica", "state": "stopped"}]},
            [
                "pg-x: no member leads (Patroni reports pg-x-1 stopped)",
                "pg-x: pg-x-2 is in the inventory but not among the members Patroni reports",
            ],
        ),
        (
            {
                "members": [
                    {"name": "pg-x-1", "role": "leader", "state": "running"},
                    {"name": "pg-x-2", "role": "replica", "state": "streaming"},
                    {"name": "pg-x-9", "role": "replica", "state": "streaming"},
                ]
            },
            ["pg-x: Patroni reports pg-x-9, which the inventory does not list"],
        ),
        (None, []),
        ({"error": "x"}, []),
    ],
)
def test_role_drift(answer, expected):
    assert ops.role_drift(answer, INV) == expected
