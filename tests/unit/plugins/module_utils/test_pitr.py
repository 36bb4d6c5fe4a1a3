# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg_pitr checks and restore plans (module_utils/pitr.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import pitr
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import ModelError

BASE = ["pgbackrest", "--stanza=pg-test", "--pg1-path=/pg/data"]


def plan(p, **kw):
    return pitr.pitr_plan(p, cluster="pg-test", pg_data="/pg/data", **kw)


def fields(p, **kw):
    return [(x.field, x.what) for x in pitr.check_pitr(p, cluster="pg-test", **kw)]


@pytest.mark.parametrize(
    "given_, argv",
    [
        ({}, ["--type=default", "restore"]),
        ({"type": "default"}, ["--type=default", "restore"]),
        ({"type": "immediate"}, ["--type=immediate", "--target-action=promote", "restore"]),
        (
            {"time": "2026-11-22 10:00:00+00"},
            ["--type=time", "--target=2026-11-22 10:00:00+00", "--target-action=promote", "restore"],
        ),
        (
            {"time": "2026-11-22T10:00:00Z", "type": "time", "exclusive": True},
            [
                "--type=time",
                "--target=2026-11-22T10:00:00Z",
                "--target-action=promote",
                "--target-exclusive",
                "restore",
            ],
        ),
        (
            {"name": "before-migration", "action": "pause"},
            ["--type=name", "--target=before-migration", "--target-action=pause", "restore"],
        ),
        (
            {"lsn": "0/7000028", "action": "shutdown"},
            ["--type=lsn", "--target=0/7000028", "--target-action=shutdown", "restore"],
        ),
        (
            {"xid": 1234, "set": "20261122-101500F_20261122-120000I", "timeline": 2},
            [
                "--type=xid",
                "--target=1234",
                "--target-action=promote",
                "--set=20261122-101500F_20261122-120000I",
                "--target-timeline=2",
                "restore",
            ],
        ),
        (
            {"xid": "1234", "timeline": "latest"},
            ["--type=xid", "--target=1234", "--target-action=promote", "--target-timeline=latest", "restore"],
        ),
    ],
)
def test_restore_command(given_, argv):
    assert plan(given_)["restore_argv"] == BASE + argv


def test_plan_fields_and_summary():
    p = plan({"time": "2026-11-22 10:00:00+08"})
    assert (p["stanza"], p["foreign"], p["target_type"], p["target"], p["action"], p["resume"]) == (
        "pg-test",
        False,
        "time",
        "2026-11-22 10:00:00+08",
        "promote",
        False,
    )
    assert p["summary"] == (
        "restore pg-test to time '2026-11-22 10:00:00+08' from the newest backup before it of "
        "stanza pg-test, then promote it and bring the cluster back under Patroni, re-cloning "
        "the replicas"
    )
    assert "restore_command" in p["reset_parameters"]
    assert "recovery_target_time" in p["reset_parameters"]
    assert plan({})["summary"].startswith("restore pg-test to the end of the WAL archive from the newest backup")
    assert "paused" in plan({"type": "immediate", "action": "pause"})["summary"]
    assert plan({"resume": True})["summary"].startswith("resume the paused recovery of pg-test")


def test_other_cluster_needs_a_shared_repository():
    p = plan({"cluster": "pg-meta"}, repo_type="s3")
    assert p["stanza"] == "pg-meta" and p["foreign"]
    assert p["restore_argv"][1] == "--stanza=pg-meta"
    assert fields({"cluster": "pg-meta"}) == [
        (
            "pg_pitr.cluster",
            "is another cluster, but pg-test backs up to a posix repository on its "
            "own node, which holds no other cluster's backups",
        )
    ]
    # its own name is fine anywhere
    assert fields({"cluster": "pg-test"}) == []


@pytest.mark.parametrize(
    "given_, field",
    [
        ("yesterday", "pg_pitr"),
        ({"tme": "2026-11-22 10:00:00+00"}, "pg_pitr.tme"),
        ({"time": "2026-11-22 10:00:00+00", "lsn": "0/1"}, "pg_pitr.lsn"),
        ({"time": "yesterday"}, "pg_pitr.time"),
        ({"time": "2026-11-22 10:00:00"}, "pg_pitr.time"),
        ({"time": 20261122}, "pg_pitr.time"),
        ({"name": ""}, "pg_pitr.name"),
        ({"name": "x" * 64}, "pg_pitr.name"),
        ({"lsn": "7000028"}, "pg_pitr.lsn"),
        ({"lsn": "0/G"}, "pg_pitr.lsn"),
        ({"xid": 2}, "pg_pitr.xid"),
        ({"xid": -5}, "pg_pitr.xid"),
        ({"xid": True}, "pg_pitr.xid"),
        ({"type": "standby"}, "pg_pitr.type"),
        ({"type": "time"}, "pg_pitr.time"),
        ({"type": "immediate", "xid": 100}, "pg_pitr.type"),
        ({"type": "lsn", "xid": 100}, "pg_pitr.type"),
        ({"action": "demote", "xid": 100}, "pg_pitr.action"),
        ({"action": "pause"}, "pg_pitr.action"),
        ({"exclusive": "yes", "xid": 100}, "pg_pitr.exclusive"),
        ({"exclusive": True, "name": "x"}, "pg_pitr.exclusive"),
        ({"set": "latest"}, "pg_pitr.set"),
        ({"set": "20261122-101500I"}, "pg_pitr.set"),
        ({"timeline": 0}, "pg_pitr.timeline"),
        ({"timeline": "newest"}, "pg_pitr.timeline"),
        ({"cluster": "pg_test"}, "pg_pitr.cluster"),
        ({"resume": "true"}, "pg_pitr.resume"),
        ({"resume": True, "xid": 100}, "pg_pitr.resume"),
    ],
)
def test_bad_input_names_the_key(given_, field):
    found = pitr.check_pitr(given_, cluster="pg-test")
    assert [p.field for p in found] == [field]
    assert all(p.cluster == "pg-test" and p.fix for p in found)
    with pytest.raises(ModelError) as err:
        plan(given_)
    assert "cluster pg-test: %s" % field in str(err.value)


def test_every_mistake_at_once():
    found = fields({"time": "soon", "action": "stop", "set": "x", "foo": 1})
    assert [f for f, _ in found] == ["pg_pitr.foo", "pg_pitr.time", "pg_pitr.action", "pg_pitr.set"]


_targets = st.one_of(
    st.builds(
        lambda d: {"time": d.isoformat() + "+00:00"},
        st.datetimes(min_value=__import__("datetime").datetime(2000, 1, 1)),
    ),
    st.builds(
        lambda n: {"name": n}, st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=63)
    ),
    st.builds(lambda a, b: {"lsn": "%X/%X" % (a, b)}, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(lambda x: {"xid": x}, st.integers(3, 2**64 - 1)),
    st.just({"type": "immediate"}),
    st.just({}),
)


@given(_targets, st.sampled_from(pitr.ACTIONS), st.booleans())
def test_valid_targets_give_one_restore_command(target, action, exclusive):
    p = dict(target)
    if target and "type" not in target:
        p["action"] = action
    if set(target) & {"time", "lsn", "xid"}:
        p["exclusive"] = exclusive
    out = plan(p)
    argv = out["restore_argv"]
    assert argv[:3] == BASE and argv[-1] == "restore"
    assert "--delta" not in argv  # into an empty directory: the old one is kept beside it
    assert len([a for a in argv if a.startswith("--type=")]) == 1
    # the target reaches pgBackRest unchanged, and only with its type
    if out["target"] is not None:
        assert "--target=%s" % out["target"] in argv
        assert out["target_type"] in target
    assert ("--target-action=%s" % out["action"] in argv) == (out["target_type"] != "default")


CONTROLDATA = """pg_control version number:            1300
Database system identifier:           7440000000000000001
max_connections setting:              200
max_worker_processes setting:         8
max_wal_senders setting:              10
max_prepared_xacts setting:           0
max_locks_per_xact setting:           64
"""


def test_controldata_settings():
    assert pitr.controldata_settings(CONTROLDATA) == {
        "max_connections": 200,
        "max_worker_processes": 8,
        "max_wal_senders": 10,
        "max_prepared_transactions": 0,
        "max_locks_per_transaction": 64,
    }
    assert pitr.controldata_settings("") == {}


def test_start_options_take_the_higher_setting():
    opts = pitr.start_options(
        CONTROLDATA, {"max_connections": "100", "max_wal_senders": 20, "max_locks_per_transaction": 128}, 5432
    )
    assert opts == (
        "-c listen_addresses='' -c port=5432 -c hot_standby=on "
        "-c max_connections=200 -c max_locks_per_transaction=128 "
        "-c max_prepared_transactions=0 -c max_wal_senders=20 "
        "-c max_worker_processes=8"
    )
    # nothing recorded, nothing configured: PostgreSQL's defaults
    assert pitr.start_options("", {}, 5433) == "-c listen_addresses='' -c port=5433 -c hot_standby=on"


@given(
    st.dictionaries(st.sampled_from(sorted(pitr._CONTROLDATA.values())), st.integers(0, 10000)),
    st.dictionaries(st.sampled_from(sorted(pitr._CONTROLDATA.values())), st.integers(0, 10000)),
)
def test_start_options_never_go_below_either_side(recorded, configured):
    text = "\n".join("%s: %d" % (k, recorded[v]) for k, v in pitr._CONTROLDATA.items() if v in recorded)
    opts = dict(o.split("=", 1) for o in pitr.start_options(text, configured, 5432).replace("-c ", "").split())
    for name in set(recorded) | set(configured):
        assert int(opts[name]) == max(x[name] for x in (recorded, configured) if name in x)


# ---- can the repository reach the target (before anything stops) ---------

import json  # noqa: E402
import os  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "roles", "fixtures")


def info(name):
    with open(os.path.join(FIXTURES, "pgbackrest-2.45-info-%s.json" % name), encoding="utf-8") as handle:
        return json.load(handle)


# the fixture's backup sets end at 1795307904 (full, 2026-11-22 00:38:24+00),
# 1795307907 (incr) and 1795307909 (diff, 00:38:29); "now" below is an hour on
NOW = 1795307909 + 3600


def plan_of(**pg_pitr):
    return pitr.pitr_plan(pg_pitr, cluster="pg-sample", pg_data="/pg/data")


@pytest.mark.parametrize(
    "pg_pitr,current,ok,reason",
    [
        ({"time": "2026-11-22 00:50:00+00"}, True, True, ""),
        # older than every backup set: refused, whatever the archive
        (
            {"time": "2026-11-22 00:38:00+00"},
            True,
            False,
            "the target 2026-11-22 00:38:00+00 is older than every backup set: the oldest recovery point is "
            "2026-11-22 00:38:24+00 (end of backup 20261122-003822F)",
        ),
        # after the newest backup while the leader's archive is not known current
        (
            {"time": "2026-11-22 00:50:00+00"},
            False,
            False,
            "the target 2026-11-22 00:50:00+00 is after 2026-11-22 00:38:29+00 (end of backup "
            "20261122-003822F_20261122-003828D; archived WAL up to segment 000000010000000000000007 may reach "
            "further), the newest point the repository is known to reach",
        ),
        ({"time": "2026-11-22 00:38:25+00"}, False, True, ""),
        # in the future
        (
            {"time": "2026-11-22 02:00:00+00"},
            True,
            False,
            "the target 2026-11-22 02:00:00+00 is after 2026-11-22 01:38:29+00 (now: the leader's WAL is "
            "archived), the newest point the repository is known to reach",
        ),
        (
            {"lsn": "0/2000000"},
            True,
            False,
            "the target LSN 0/2000000 is before the end of the oldest backup set (0/3000050 at 20261122-003822F)",
        ),
        ({"lsn": "0/6000000"}, True, True, ""),
        ({"set": "20261122-003822F"}, True, True, ""),
        (
            {"set": "20261121-003822F"},
            True,
            False,
            "backup set 20261121-003822F is not in the repository (it holds 20261122-003822F, "
            "20261122-003822F_20261122-003825I, 20261122-003822F_20261122-003828D)",
        ),
        ({"name": "before-upgrade"}, False, True, ""),  # a repository cannot tell: the restore will
        ({}, False, True, ""),
        ({"type": "immediate"}, False, True, ""),
    ],
)
def test_reach_with_backups(pg_pitr, current, ok, reason):
    got = pitr.reach(info("backups"), plan_of(**pg_pitr), now=NOW, archive_current=current)
    assert (got["ok"], got["reason"]) == (ok, reason)
    assert got["oldest"] == "2026-11-22 00:38:24+00 (end of backup 20261122-003822F)"
    assert got["backups"] == 3


@pytest.mark.parametrize("fixture", ["nobackup", "missing"])
def test_reach_refuses_a_repository_without_backup_sets(fixture):
    got = pitr.reach(info(fixture), plan_of(type="immediate"), now=NOW, archive_current=True)
    assert not got["ok"] and got["backups"] == 0
    assert got["reason"].startswith("the repository holds no backup set of stanza ")
    assert not pitr.reach([], plan_of(), now=NOW, archive_current=True)["ok"]


def test_choose_member():
    yes = {"ok": True, "backups": 3}
    no = {"ok": False, "backups": 0}
    more = {"ok": True, "backups": 5}
    # the leader when it can
    assert pitr.choose_member({"a": yes, "b": more}, "a", shared=False) == "a"
    # with repositories of their own: the member whose repository reaches it
    assert pitr.choose_member({"a": no, "b": yes, "c": more}, "a", shared=False) == "c"
    assert pitr.choose_member({"a": no, "b": no}, "a", shared=False) is None
    # a shared repository: always the leader, or nobody
    assert pitr.choose_member({"a": yes}, "a", shared=True) == "a"
    assert pitr.choose_member({"a": no}, "a", shared=True) is None


@given(st.integers(min_value=1795307000, max_value=1795320000), st.booleans())
def test_a_time_target_is_reachable_exactly_between_oldest_and_newest(epoch, current):
    when = pitr._utc(epoch)
    got = pitr.reach(info("backups"), plan_of(time=when), now=NOW, archive_current=current)
    newest = NOW if current else 1795307909
    assert got["ok"] == (1795307904 <= epoch <= newest)


def test_lsn_int():
    assert pitr.lsn_int("0/3000050") == 0x3000050
    assert pitr.lsn_int("1/0") == 1 << 32
    assert pitr.lsn_int("x/1") is None and pitr.lsn_int(None) is None
