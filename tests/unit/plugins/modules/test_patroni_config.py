# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/patroni_config.py with a fake REST API."""

from __future__ import annotations

import io
import json
from urllib.error import HTTPError

import pytest

from ansible_collections.pigpen.pgsql.plugins.modules import patroni_config as mod


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = {
            "url": "http://10.0.0.1:8008/",
            "username": "postgres",
            "password": "secret",
            "timeout": 10,
            "validate_certs": True,
            "config": {},
            "scope": "the cluster",
            "standby_change": False,
            "partial": False,
        }
        self.params.update(params)
        self.check_mode = check_mode
        self._diff = True

    def fail_json(self, **kwargs):
        raise Failed(kwargs["msg"])


class FakeApi:
    """GET/PATCH /config and GET /patroni of one member."""

    def __init__(self, config, pending=False, status=None, members=()):
        self.config = config
        self.pending = pending
        self.status = status
        self.members = list(members)
        self.calls = []

    def __call__(self, url, data=None, method="GET", headers=None, timeout=None, validate_certs=True, **auth):
        self.calls.append((method, url, json.loads(data) if data else None, auth))
        if self.status:
            raise HTTPError(url, self.status, "nope", {}, io.BytesIO(b"no auth"))
        if url.endswith("/patroni"):
            return io.BytesIO(json.dumps({"state": "running", "pending_restart": self.pending}).encode())
        if url.endswith("/cluster"):
            return io.BytesIO(json.dumps({"members": self.members}).encode())
        if method == "PATCH":
            self.config = mod.merge(self.config, json.loads(data))
        return io.BytesIO(json.dumps(self.config).encode())


def run(api, **params):
    return mod.PatroniConfig(FakeModule(**params), opener=api).run()


def test_nothing_to_change_sends_no_patch():
    api = FakeApi({"ttl": 30, "postgresql": {"parameters": {"max_connections": "200"}}})
    result = run(api, config={"ttl": "30", "postgresql": {"parameters": {"max_connections": 200}}})
    assert result["changed"] is False and result["patch"] == {}
    assert [c[0] for c in api.calls] == ["GET", "GET"]


def test_patches_only_the_difference_with_credentials():
    api = FakeApi({"ttl": 30, "loop_wait": 5, "postgresql": {"parameters": {"max_connections": "200"}}})
    result = run(api, config={"ttl": 60, "loop_wait": 5, "postgresql": {"parameters": {"max_connections": "300"}}})
    assert result["changed"] is True
    assert result["patch"] == {"ttl": 60, "postgresql": {"parameters": {"max_connections": "300"}}}
    assert result["restart_parameters"] == ["max_connections"]
    method, url, body, auth = api.calls[1]
    assert (method, url) == ("PATCH", "http://10.0.0.1:8008/config")
    assert body == result["patch"]
    assert auth == {"url_username": "postgres", "url_password": "secret", "force_basic_auth": True}
    assert api.config["ttl"] == 60
    assert result["diff"]["before"]["ttl"] == 30 and result["diff"]["after"]["ttl"] == 60


def test_check_mode_changes_nothing():
    api = FakeApi({"ttl": 30})
    result = run(api, check_mode=True, config={"ttl": 60})
    assert result["changed"] is True and result["config"] == {"ttl": 60}
    assert api.config == {"ttl": 30}
    assert "PATCH" not in [c[0] for c in api.calls]


def test_reports_pending_restart():
    result = run(FakeApi({"ttl": 30}, pending=True), config={"ttl": 30})
    assert result["pending_restart"] is True and result["changed"] is False


def test_http_error_names_the_url_and_the_fix():
    with pytest.raises(Failed, match=r"GET http://10.0.0.1:8008/config answered HTTP 401.*username and password"):
        run(FakeApi({}, status=401), config={"ttl": 30})


STANDBY = {"host": "10.10.10.11", "port": 5432, "create_replica_methods": ["basebackup"]}


def test_a_promoted_cluster_is_not_turned_back_into_a_standby_cluster():
    api = FakeApi({"ttl": 30})
    with pytest.raises(Failed, match="pg-dr is an ordinary cluster in its DCS.*10.10.10.11:5432.*Nothing was sent"):
        run(api, scope="pg-dr", config={"ttl": 30, "standby_cluster": STANDBY})
    assert [c[0] for c in api.calls] == ["GET"]


def test_a_standby_cluster_is_not_left_following_when_the_inventory_promotes_it_without_saying_so():
    api = FakeApi({"ttl": 30, "standby_cluster": STANDBY})
    with pytest.raises(Failed, match="pg-dr is a standby cluster following 10.10.10.11:5432.*pg_standby_change=pg-dr"):
        run(api, scope="pg-dr", config={"ttl": 30})
    assert [c[0] for c in api.calls] == ["GET"]


def test_promotion_removes_standby_cluster_when_the_run_says_so():
    api = FakeApi({"ttl": 30, "synchronous_mode": False, "standby_cluster": STANDBY})
    result = run(api, scope="pg-dr", standby_change=True, config={"ttl": 30, "synchronous_mode": True})
    assert result["patch"] == {"standby_cluster": None, "synchronous_mode": True}
    assert result["role_change"] == "promote"
    assert result["standby_cluster"] == STANDBY
    assert "standby_cluster" not in api.config
    # the second run agrees with the DCS: nothing to send, nothing refused
    again = run(api, scope="pg-dr", config={"ttl": 30, "synchronous_mode": True})
    assert again["changed"] is False and again["role_change"] == "none"


def test_demotion_when_the_run_says_so_and_a_new_upstream_is_no_role_change():
    api = FakeApi({"ttl": 30})
    result = run(api, scope="pg-dr", standby_change=True, config={"standby_cluster": STANDBY})
    assert result["role_change"] == "demote"
    moved = dict(STANDBY, host="10.10.10.21")
    again = run(api, scope="pg-dr", config={"standby_cluster": moved})
    assert again["patch"] == {"standby_cluster": {"host": "10.10.10.21"}}
    assert again["role_change"] == "none"


def test_a_running_primary_is_never_made_a_standby_leader():
    # Patroni would stop it at once (immediate), before its standbys have its last writes
    api = FakeApi({"ttl": 30}, members=[{"name": "pg-test-1", "role": "leader", "state": "running"}])
    with pytest.raises(Failed, match="pg-test runs its primary \\(pg-test-1\\).*Nothing was sent.*pgsql-reverse.yml"):
        run(api, scope="pg-test", standby_change=True, config={"standby_cluster": STANDBY})
    assert [c[0] for c in api.calls] == ["GET", "GET"]
    # stopped (the reversal's clean stop, or an old site after a promotion): sent
    api.members = [{"name": "pg-test-1", "role": "replica", "state": "stopped"}]
    result = run(api, scope="pg-test", standby_change=True, config={"standby_cluster": STANDBY})
    assert result["role_change"] == "demote"


def test_a_partial_config_adds_a_slot_to_a_standby_cluster_without_a_role_check():
    # pg-dr3 follows pg-dr, itself a standby cluster: its slot is added there
    api = FakeApi({"ttl": 30, "standby_cluster": STANDBY})
    slot = {"slots": {"standby_pg_dr3": {"type": "physical"}}}
    result = run(api, scope="pg-dr", partial=True, config=slot)
    assert result["patch"] == slot and api.config["standby_cluster"] == STANDBY
    assert run(api, scope="pg-dr", partial=True, config=slot)["changed"] is False
