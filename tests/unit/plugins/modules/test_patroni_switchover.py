# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/patroni_switchover.py with a fake REST API that moves the
leadership when asked (the real one is exercised by
playbooks/pgsql-switchover.yml on the sandbox and by the chaos suite)."""

from __future__ import annotations

import io
import json

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import patroni_ops as ops
from ansible_collections.pigpen.pgsql.plugins.modules import patroni_switchover as mod


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = {
            "url": "http://10.0.0.1:8008",
            "candidate": None,
            "leader": None,
            "mode": "switchover",
            "max_lag": 1048576,
            "force": False,
            "wait": 5,
            "wait_for": "healthy",
            "username": "postgres",
            "password": "secret",
            "timeout": 10,
            "validate_certs": True,
        }
        self.params.update(params)
        self.check_mode = check_mode


class FakeApi:
    def __init__(self, leader="pg-test-1", lag=0):
        self.leader, self.lag, self.calls = leader, lag, []

    def cluster(self):
        return {
            "members": [
                {
                    "name": n,
                    "role": "leader" if n == self.leader else "replica",
                    "state": "running",
                    **({} if n == self.leader else {"lag": self.lag}),
                }
                for n in ("pg-test-1", "pg-test-2", "pg-test-3")
            ]
        }

    def __call__(self, url, data=None, method="GET", headers=None, timeout=None, validate_certs=True, **auth):
        body = json.loads(data) if data else None
        self.calls.append((method, url.rsplit("/", 1)[-1], body, bool(auth)))
        if method == "POST":
            self.leader = body["candidate"]
            return io.BytesIO(b"Successfully switched over")
        return io.BytesIO(json.dumps(self.cluster()).encode())


def run(api, check_mode=False, **params):
    module = FakeModule(check_mode, **params)
    return mod.run(module, mod.Patroni(module, opener=api))


def test_switchover_to_the_candidate_then_nothing_to_do():
    api = FakeApi()
    result = run(api, candidate="pg-test-2")
    assert (result["changed"], result["leader"], result["candidate"]) == (True, "pg-test-1", "pg-test-2")
    assert ("POST", "switchover", {"leader": "pg-test-1", "candidate": "pg-test-2"}, True) in api.calls
    assert "seconds" in result
    again = run(api, candidate="pg-test-2")
    assert again == {"changed": False, "leader": "pg-test-2", "candidate": "pg-test-2"}
    assert [c for c in api.calls if c[0] == "POST"] == [api.calls[1]]


def test_check_mode_posts_nothing():
    api = FakeApi()
    assert run(api, check_mode=True)["changed"] is True
    assert all(c[0] == "GET" for c in api.calls) and api.leader == "pg-test-1"


def test_lagging_candidate_is_refused_before_any_post():
    api = FakeApi(lag=10 << 20)
    with pytest.raises(ops.OperationRefused, match="lags"):
        run(api, candidate="pg-test-3")
    assert all(c[0] == "GET" for c in api.calls)


def test_failover_uses_the_failover_endpoint():
    api = FakeApi()
    run(api, candidate="pg-test-3", mode="failover")
    assert ("POST", "failover", {"candidate": "pg-test-3"}, True) in api.calls


def test_wait_for_leader_returns_before_the_old_leader_runs_again():
    api = FakeApi()
    real_cluster = api.cluster

    def old_leader_restarting():
        out = real_cluster()
        for m in out["members"]:
            if m["name"] == "pg-test-1" and api.leader != "pg-test-1":
                m["state"] = "stopped"
        return out

    api.cluster = old_leader_restarting
    result = run(api, candidate="pg-test-2", wait_for="leader")
    assert (result["changed"], result["candidate"]) == (True, "pg-test-2") and "seconds" in result
    with pytest.raises(ops.OperationRefused, match="did not lead a healthy cluster"):
        run(FakeApiStuck(), candidate="pg-test-2", wait=1)


class FakeApiStuck(FakeApi):
    """The old leader never comes back after the switchover."""

    def cluster(self):
        out = super().cluster()
        for m in out["members"]:
            if m["name"] == "pg-test-1" and self.leader != "pg-test-1":
                m["state"] = "stopped"
        return out
