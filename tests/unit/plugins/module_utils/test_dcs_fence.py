# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""dcs_fence.fence against a small model of etcd 3.4's KV gateway (range,
txn with VERSION and MOD compares). The real etcd is exercised by the
Molecule scenario dr."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import dcs_fence
from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import EtcdError, Session
from fake_etcd import Clock, FakeKV


def run(kv, wait=40, check_mode=False):
    clock = Clock()
    return dcs_fence.fence(Session(kv), "/pg/pg-test/", wait, check_mode, sleep=clock.sleep, clock=clock)


def config_of(kv):
    return json.loads(kv.keys["/pg/pg-test/config"][0])


def test_pauses_once_the_leader_key_expired_and_keeps_the_rest():
    kv = FakeKV({"ttl": 30, "loop_wait": 10}, leader_for=3)
    result = run(kv)
    assert result == {"changed": True, "waited": 3.0, "was_paused": False}
    assert config_of(kv) == {"ttl": 30, "loop_wait": 10, "pause": True}
    # the second run finds it paused
    assert run(kv) == {"changed": False, "waited": 0.0, "was_paused": True}
    assert len(kv.txns) == 1


def test_a_source_that_keeps_its_leader_is_refused_and_nothing_is_written():
    kv = FakeKV({"ttl": 30}, leader_for=1000)
    with pytest.raises(dcs_fence.Refused, match="pg-test-1"):
        run(kv, wait=40)
    assert kv.txns == [] and "pause" not in config_of(kv)


def test_check_mode_writes_nothing():
    kv = FakeKV({"ttl": 30})
    assert run(kv, check_mode=True)["changed"] is True
    assert kv.txns == [] and "pause" not in config_of(kv)


def test_a_cluster_without_configuration_gets_one_with_pause():
    kv = FakeKV(None)
    assert run(kv)["changed"] is True
    assert config_of(kv) == {"pause": True}


def test_a_leader_that_comes_back_before_the_write_is_refused():
    # the source's Patroni takes its key again between the read and the txn:
    # the txn's compare catches it
    kv = FakeKV({"ttl": 30})

    def racing(path, body, headers):
        if path == "/v3/kv/txn":
            kv.keys["/pg/pg-test/leader"] = ("pg-test-2", 9, 1)
            kv.leader_for = 10
        return kv(path, body, headers)

    clock = Clock()
    with pytest.raises(dcs_fence.Refused, match="pg-test-2"):
        dcs_fence.fence(Session(racing), "/pg/pg-test/", 0, sleep=clock.sleep, clock=clock)
    assert "pause" not in config_of(kv)


def test_a_configuration_that_changed_meanwhile_is_read_again():
    kv = FakeKV({"ttl": 30})
    changed = []

    def racing(path, body, headers):
        if path == "/v3/kv/txn" and not changed:
            changed.append(1)
            kv.put("/pg/pg-test/config", json.dumps({"ttl": 45}))
        return kv(path, body, headers)

    clock = Clock()
    result = dcs_fence.fence(Session(racing), "/pg/pg-test/", 40, sleep=clock.sleep, clock=clock)
    assert result["changed"] is True
    assert config_of(kv) == {"ttl": 45, "pause": True}
    assert len(kv.txns) == 2


def test_a_configuration_that_keeps_changing_is_an_error():
    kv = FakeKV({"ttl": 30})

    def racing(path, body, headers):
        if path == "/v3/kv/txn":
            kv.put("/pg/pg-test/config", json.dumps({"ttl": kv.rev}))
        return kv(path, body, headers)

    clock = Clock()
    with pytest.raises(EtcdError, match="kept changing"):
        dcs_fence.fence(Session(racing), "/pg/pg-test/", 40, sleep=clock.sleep, clock=clock)


@pytest.mark.parametrize("text", ["[1, 2]", "\"pause\"", "not json"])
def test_a_configuration_that_is_no_object_is_refused(text):
    kv = FakeKV(None)
    kv.put("/pg/pg-test/config", text)
    with pytest.raises(ValueError):
        run(kv)
    assert kv.txns == []


@given(held=st.integers(min_value=0, max_value=90), wait=st.integers(min_value=0, max_value=90))
def test_written_exactly_when_the_leader_expired_within_the_wait(held, wait):
    kv = FakeKV({"ttl": 30}, leader_for=held)
    # the source's ttl (30) + 10 s is always waited for
    waits = max(wait, 40)
    try:
        result = run(kv, wait=wait)
    except dcs_fence.Refused:
        assert held > waits and kv.txns == []
    else:
        assert held <= waits and result["changed"] and config_of(kv)["pause"] is True


def test_the_wait_covers_the_source_ttl():
    # a source with a longer ttl than the wait asked for: its key may live
    # that long after it is gone
    kv = FakeKV({"ttl": 60}, leader_for=55)
    assert run(kv, wait=10)["waited"] == 55.0
    kv = FakeKV({"ttl": 60}, leader_for=75)
    with pytest.raises(dcs_fence.Refused):
        run(kv, wait=10)


@pytest.mark.parametrize(
    "text, ttl", [('{"ttl": 45}', 45), ('{"ttl": "45"}', 45), ('{"ttl": true}', 0), ("[]", 0), ("x", 0), (None, 0)]
)
def test_ttl_of_a_configuration(text, ttl):
    assert dcs_fence._ttl(text) == ttl
