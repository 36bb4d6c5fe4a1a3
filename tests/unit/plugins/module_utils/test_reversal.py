# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/reversal.py: where a planned role reversal stands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import reversal

# pg-dr follows pg-test through pg-test's VIP; pg-test will follow pg-dr's
TEST_VIP, DR_VIP = "10.10.40.3", "10.10.40.4"
ADDRESSES = {TEST_VIP: "pg-test", "10.10.40.11": "pg-test", DR_VIP: "pg-dr", "10.10.40.14": "pg-dr"}


def source_of(block, owner):
    found = ADDRESSES.get((block or {}).get("host"))
    return found if found != owner else None


def member(name, role, state="running"):
    return {"name": name, "role": role, "state": state}


def view(block=None, paused=False, members=()):
    config = {"ttl": 30}
    if block:
        config["standby_cluster"] = {"host": block, "port": 5432}
    if paused:
        config["pause"] = True
    return {"config": config, "cluster": {"members": list(members)}}


TEST_PRIMARY = [member("pg-test-1", "leader"), member("pg-test-2", "replica")]
TEST_STOPPED = [member("pg-test-1", "replica", "stopped"), member("pg-test-2", "replica")]
TEST_STANDBY = [member("pg-test-1", "standby_leader"), member("pg-test-2", "replica")]
DR_STANDBY = [member("pg-dr-1", "standby_leader"), member("pg-dr-2", "replica")]
DR_PRIMARY = [member("pg-dr-1", "leader"), member("pg-dr-2", "replica")]


@pytest.mark.parametrize(
    "test, dr, expected, problem",
    [
        # the four phases, in order
        (view(members=TEST_PRIMARY), view(TEST_VIP, members=DR_STANDBY), "start", None),
        (view(paused=True, members=TEST_STOPPED), view(TEST_VIP, members=DR_STANDBY), "stopped", None),
        (view(DR_VIP, members=TEST_STANDBY), view(TEST_VIP, members=DR_STANDBY), "demoted", None),
        (view(DR_VIP, members=TEST_STANDBY), view(members=DR_PRIMARY), "done", None),
        # pg-dr follows pg-test through a member's address: the same
        (view(members=TEST_PRIMARY), view("10.10.40.11", members=DR_STANDBY), "start", None),
        # not started: pg-dr is an ordinary cluster, pg-test no standby of it
        (view(members=TEST_PRIMARY), view(members=DR_PRIMARY), None, "nothing to reverse"),
        # pg-dr follows a third cluster
        (view(members=TEST_PRIMARY), view("10.9.9.9", members=DR_STANDBY), None, "nothing to reverse"),
        # paused by someone, with its primary running: not ours to stop
        (view(paused=True, members=TEST_PRIMARY), view(TEST_VIP, members=DR_STANDBY), None, "paused with its primary"),
        # a member down in the source: fix it first
        (
            view(members=TEST_PRIMARY[:1] + [member("pg-test-2", "replica", "stopped")]),
            view(TEST_VIP, members=DR_STANDBY),
            None,
            "pg-test-2 is stopped",
        ),
        # no standby leader running in pg-dr: it cannot take over
        (view(members=TEST_PRIMARY), view(TEST_VIP, members=DR_STANDBY[1:]), None, "no running standby leader"),
        (view(members=TEST_PRIMARY), view(TEST_VIP, paused=True, members=DR_STANDBY), None, "pg-dr is paused"),
        # two primaries in the source
        (
            view(members=TEST_PRIMARY + [member("pg-test-3", "leader")]),
            view(TEST_VIP, members=DR_STANDBY),
            None,
            "no single running primary",
        ),
        # demoted, but pg-test follows someone else
        (view("10.9.9.9", members=TEST_STANDBY), view(TEST_VIP, members=DR_STANDBY), None, "another cluster"),
        # done, but pg-dr's primary is not running yet
        (view(DR_VIP, members=TEST_STANDBY), view(members=DR_STANDBY[1:]), None, "no single running primary yet"),
    ],
)
def test_phase(test, dr, expected, problem):
    found, problems = reversal.phase("pg-test", "pg-dr", {"pg-test": test, "pg-dr": dr}, source_of)
    assert found == expected
    if problem is None:
        assert problems == []
    else:
        assert any(problem in p for p in problems), problems
        # what was seen is said, for both clusters
        assert all("pg-test is" in p and "pg-dr is" in p for p in problems)


STATES = st.sampled_from(["running", "stopped", "starting", "streaming"])
ROLES = st.sampled_from(["leader", "replica", "standby_leader", "master"])


@given(
    test=st.builds(
        view,
        st.sampled_from([None, DR_VIP, "10.9.9.9"]),
        st.booleans(),
        st.lists(st.builds(member, st.sampled_from(["pg-test-1", "pg-test-2"]), ROLES, STATES), max_size=3),
    ),
    dr=st.builds(
        view,
        st.sampled_from([None, TEST_VIP, "10.9.9.9"]),
        st.booleans(),
        st.lists(st.builds(member, st.sampled_from(["pg-dr-1", "pg-dr-2"]), ROLES, STATES), max_size=3),
    ),
)
def test_phase_is_a_phase_or_says_why(test, dr):
    found, problems = reversal.phase("pg-test", "pg-dr", {"pg-test": test, "pg-dr": dr}, source_of)
    assert (found is None) == bool(problems)
    assert found is None or found in reversal.PHASES
    # the run never stops a primary it was not asked about: "start" only when
    # pg-dr follows pg-test and pg-test is neither paused nor a standby cluster
    if found == "start":
        assert not test["config"].get("pause") and "standby_cluster" not in test["config"]
        assert dr["config"]["standby_cluster"]["host"] == TEST_VIP
    # pg-dr is promoted ("demoted" is the step before) only when pg-test follows it
    if found in ("demoted", "done"):
        assert test["config"]["standby_cluster"]["host"] == DR_VIP


def test_plan_maps_members_to_hosts_and_says_when_no_member_answered():
    hosts = {"pg-test-1": "10.10.40.11", "pg-test-2": "10.10.40.12", "pg-dr-1": "10.10.40.14", "pg-dr-2": "h15"}
    answers = [
        # an unanswered member first: the next one counts
        {"cluster": "pg-test", "path": "config"},
        {"cluster": "pg-test", "path": "config", "json": view()["config"]},
        {"cluster": "pg-test", "path": "cluster", "json": {"members": TEST_PRIMARY}},
        {"cluster": "pg-dr", "path": "config", "json": view(TEST_VIP)["config"]},
        {"cluster": "pg-dr", "path": "cluster", "json": {"members": DR_STANDBY}},
        {"cluster": "pg-dr", "path": "cluster", "json": {"members": []}},
    ]
    out = reversal.plan("pg-test", "pg-dr", answers, hosts, source_of)
    assert out["phase"] == "start" and out["problems"] == []
    assert out["source"] == {"primary": "10.10.40.11", "standby_leader": None, "leader": "10.10.40.11", "follows": None}
    assert out["target"]["standby_leader"] == "10.10.40.14" and out["target"]["leader"] == "10.10.40.14"
    assert out["target"]["follows"] == {"host": TEST_VIP, "port": 5432}
    assert out["names"]["h15"] == "pg-dr-2"
    lost = reversal.plan("pg-test", "pg-dr", answers[:3], hosts, source_of)
    assert lost["phase"] is None and "no member of pg-dr answered" in lost["problems"][0]
    assert "Nothing was changed" in lost["problems"][0]


CONTROLDATA = """pg_control version number:            1300
Database cluster state:               %s
Latest checkpoint location:           %s
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's TimeLineID:       3
"""


def test_stop_point_is_the_primary_shut_down_cleanly():
    answers = [
        {"host": "10.10.40.12", "stdout": CONTROLDATA % ("shut down in recovery", "0/5000060")},
        {"host": "10.10.40.11", "stdout": CONTROLDATA % ("shut down", "0/50000D8")},
        {"host": "10.10.40.13", "stdout": ""},
    ]
    assert reversal.stop_point(answers) == {"host": "10.10.40.11", "checkpoint": "0/50000D8"}
    parsed = reversal.controldata(answers[1]["stdout"])
    assert parsed == {"state": "shut down", "checkpoint": "0/50000D8", "timeline": 3}
    # a primary that crashed ("in production") or only replicas: no clean end to wait for
    none = reversal.stop_point([answers[0], {"host": "h", "stdout": CONTROLDATA % ("in production", "0/6000000")}])
    assert "no member of the source was shut down cleanly" in none["problem"]
    assert "10.10.40.12: shut down in recovery" in none["problem"] and "h: in production" in none["problem"]
    assert "no answer" in reversal.stop_point([{"host": "h"}])["problem"]


@pytest.mark.parametrize(
    "replayed, mark, inclusive, past",
    [
        ("0/50000D9", "0/50000D8", False, True),
        ("0/50000D8", "0/50000D8", False, False),
        ("0/50000D8", "0/50000D8", True, True),
        ("1/0", "0/FFFFFFFF", False, True),
        ("0/FFFFFFFF", "1/0", True, False),
        (None, "0/1", True, False),
        ("0/1", "garbage", True, False),
    ],
)
def test_replayed_past(replayed, mark, inclusive, past):
    assert reversal.replayed_past(replayed, mark, inclusive) is past


def test_running_primary():
    assert reversal.running_primary({"members": TEST_PRIMARY}) == "pg-test-1"
    assert reversal.running_primary({"members": TEST_STOPPED}) is None
    assert reversal.running_primary({"members": DR_STANDBY}) is None
    assert reversal.running_primary("no answer") is None
