# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg_pitr checks and restore plans (module_utils/pitr.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import pitr
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import ModelError

BASE = ["pgbackrest", "--stanza=pg-test", "--pg1-path=/pg/data", "--delta"]


def plan(p, **kw):
    return pitr.pitr_plan(p, cluster="pg-test", pg_data="/pg/data", **kw)


def fields(p, **kw):
    return [(x.field, x.what) for x in pitr.check_pitr(p, cluster="pg-test", **kw)]


@pytest.mark.parametrize("given_, argv", [
    ({}, ["--type=default", "restore"]),
    ({"type": "default"}, ["--type=default", "restore"]),
    ({"type": "immediate"}, ["--type=immediate", "--target-action=promote", "restore"]),
    ({"time": "2026-11-22 10:00:00+00"},
     ["--type=time", "--target=2026-11-22 10:00:00+00", "--target-action=promote", "restore"]),
    ({"time": "2026-11-22T10:00:00Z", "type": "time", "exclusive": True},
     ["--type=time", "--target=2026-11-22T10:00:00Z", "--target-action=promote",
      "--target-exclusive", "restore"]),
    ({"name": "before-migration", "action": "pause"},
     ["--type=name", "--target=before-migration", "--target-action=pause", "restore"]),
    ({"lsn": "0/7000028", "action": "shutdown"},
     ["--type=lsn", "--target=0/7000028", "--target-action=shutdown", "restore"]),
    ({"xid": 1234, "set": "20261122-101500F_20261122-120000I", "timeline": 2},
     ["--type=xid", "--target=1234", "--target-action=promote",
      "--set=20261122-101500F_20261122-120000I", "--target-timeline=2", "restore"]),
    ({"xid": "1234", "timeline": "latest"},
     ["--type=xid", "--target=1234", "--target-action=promote", "--target-timeline=latest",
      "restore"]),
])
def test_restore_command(given_, argv):
    assert plan(given_)["restore_argv"] == BASE + argv


def test_plan_fields_and_summary():
    p = plan({"time": "2026-11-22 10:00:00+08"})
    assert (p["stanza"], p["foreign"], p["target_type"], p["target"], p["action"], p["resume"]) == (
        "pg-test", False, "time", "2026-11-22 10:00:00+08", "promote", False)
    assert p["summary"] == (
        "restore pg-test to time '2026-11-22 10:00:00+08' from the newest backup before it of "
        "stanza pg-test, then promote it and bring the cluster back under Patroni, re-cloning "
        "the replicas")
    assert "restore_command" in p["reset_parameters"]
    assert "recovery_target_time" in p["reset_parameters"]
    assert plan({})["summary"].startswith("restore pg-test to the end of the WAL archive from the newest backup")
    assert "paused" in plan({"type": "immediate", "action": "pause"})["summary"]
    assert plan({"resume": True})["summary"].startswith("resume the paused recovery of pg-test")


def test_other_cluster_needs_a_shared_repository():
    p = plan({"cluster": "pg-meta"}, repo_type="s3")
    assert p["stanza"] == "pg-meta" and p["foreign"]
    assert p["restore_argv"][1] == "--stanza=pg-meta"
    assert fields({"cluster": "pg-meta"}) == [(
        "pg_pitr.cluster", "is another cluster, but pg-test backs up to a posix repository on its "
        "own node, which holds no other cluster's backups")]
    # its own name is fine anywhere
    assert fields({"cluster": "pg-test"}) == []


@pytest.mark.parametrize("given_, field", [
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
])
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
    st.builds(lambda d: {"time": d.isoformat() + "+00:00"},
              st.datetimes(min_value=__import__("datetime").datetime(2000, 1, 1))),
    st.builds(lambda n: {"name": n}, st.text(
        st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=63)),
    st.builds(lambda a, b: {"lsn": "%X/%X" % (a, b)},
              st.integers(0, 2 ** 32 - 1), st.integers(0, 2 ** 32 - 1)),
    st.builds(lambda x: {"xid": x}, st.integers(3, 2 ** 64 - 1)),
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
    assert argv[:4] == BASE and argv[-1] == "restore"
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
        "max_connections": 200, "max_worker_processes": 8, "max_wal_senders": 10,
        "max_prepared_transactions": 0, "max_locks_per_transaction": 64}
    assert pitr.controldata_settings("") == {}


def test_start_options_take_the_higher_setting():
    opts = pitr.start_options(CONTROLDATA, {"max_connections": "100", "max_wal_senders": 20,
                                            "max_locks_per_transaction": 128}, 5432)
    assert opts == ("-c listen_addresses='' -c port=5432 -c hot_standby=on "
                    "-c max_connections=200 -c max_locks_per_transaction=128 "
                    "-c max_prepared_transactions=0 -c max_wal_senders=20 "
                    "-c max_worker_processes=8")
    # nothing recorded, nothing configured: PostgreSQL's defaults
    assert pitr.start_options("", {}, 5433) == "-c listen_addresses='' -c port=5433 -c hot_standby=on"


@given(st.dictionaries(st.sampled_from(sorted(pitr._CONTROLDATA.values())),
                       st.integers(0, 10000)),
       st.dictionaries(st.sampled_from(sorted(pitr._CONTROLDATA.values())),
                       st.integers(0, 10000)))
def test_start_options_never_go_below_either_side(recorded, configured):
    text = "\n".join("%s: %d" % (k, recorded[v]) for k, v in pitr._CONTROLDATA.items()
                     if v in recorded)
    opts = dict(o.split("=", 1) for o in pitr.start_options(text, configured, 5432)
                .replace("-c ", "").split())
    for name in set(recorded) | set(configured):
        assert int(opts[name]) == max(x[name] for x in (recorded, configured) if name in x)
