# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/patroni_fence.py with a fake etcd gateway."""

from __future__ import annotations

import json

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import EtcdError
from ansible_collections.pigpen.pgsql.plugins.modules import patroni_fence as mod

from fake_etcd import Clock, FakeKV


def run(module, *posts):
    clock = Clock()
    named = [("https://10.10.10.%d:2379" % (10 + i), post) for i, post in enumerate(posts)]
    return mod.run(module, named, sleep=clock.sleep, clock=clock)


class Failed(Exception):
    def __init__(self, msg, **kwargs):
        super().__init__(msg)
        self.kwargs = kwargs


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = {
            "endpoints": ["https://10.10.10.10:2379"],
            "ca_cert": None,
            "root_password": "Etcd.Root",
            "prefix": "/pg/pg-test/",
            "wait": 0,
            "timeout": 10,
        }
        self.params.update(params)
        self.check_mode = check_mode

    def fail_json(self, msg, **kwargs):
        raise Failed(msg, **kwargs)


class WithAuth:
    """FakeKV behind etcd's authentication (``enabled``) as root."""

    def __init__(self, kv, enabled=True, password="Etcd.Root"):
        self.kv, self.enabled, self.password = kv, enabled, password

    def __call__(self, path, body, headers):
        if path == "/v3/auth/authenticate":
            if not self.enabled:
                raise EtcdError("etcdserver: authentication is not enabled", 400)
            if body["password"] != self.password:
                raise EtcdError("etcdserver: authentication failed, invalid user ID or password", 400)
            return {"token": "tok"}
        if self.enabled:
            assert headers == {"Authorization": "tok"}
        return self.kv(path, body, headers)


@pytest.mark.parametrize("enabled", [True, False])
def test_pauses_the_lost_source(enabled):
    kv = FakeKV({"ttl": 30})
    result = run(FakeModule(), WithAuth(kv, enabled))
    assert result["changed"] is True
    assert json.loads(kv.keys["/pg/pg-test/config"][0])["pause"] is True


def test_a_running_source_is_refused():
    kv = FakeKV({"ttl": 30}, leader_for=100)
    refused = r"pg/pg-test still has a leader in etcd \(pg-test-1\).*Nothing was changed"
    with pytest.raises(Failed, match=refused) as exc:
        run(FakeModule(), WithAuth(kv))
    assert exc.value.kwargs == {"refused": True}


@pytest.mark.parametrize(
    "params, kv, match",
    [
        ({"prefix": "pg/pg-test"}, FakeKV({}), "must start and end with /"),
        ({"root_password": "wrong"}, FakeKV({}), "refused root's password"),
    ],
)
def test_refusals(params, kv, match):
    with pytest.raises(Failed, match=match):
        run(FakeModule(**params), WithAuth(kv))


def test_a_configuration_that_is_no_object():
    kv = FakeKV(None)
    kv.put("/pg/pg-test/config", "[1]")
    with pytest.raises(Failed, match="/pg/pg-test/config in etcd is not a JSON object; nothing was changed"):
        run(FakeModule(), WithAuth(kv))


def test_an_etcd_that_answers_with_an_error_is_not_asked_again():
    def broken(path, body, headers):
        raise EtcdError("etcdserver: permission denied", 403)

    kv = FakeKV({"ttl": 30})
    with pytest.raises(Failed, match="etcd https://10.10.10.10:2379: etcdserver: permission denied"):
        run(FakeModule(), broken, WithAuth(kv))
    assert "pause" not in json.loads(kv.keys["/pg/pg-test/config"][0])


def test_the_next_endpoint_when_one_does_not_answer():
    def gone(path, body, headers):
        raise EtcdError("https://10.10.10.10:2379/v3/auth/authenticate failed: timed out")

    kv = FakeKV({"ttl": 30})
    assert run(FakeModule(), gone, WithAuth(kv))["changed"] is True
    with pytest.raises(Failed, match="no etcd endpoint answered, nothing was changed: https://10.10.10.10:2379: "):
        run(FakeModule(), gone, gone)
