# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""etcd_auth.converge against a small in-memory model of etcd 3.4's auth
API (the calls and error texts of its JSON gateway). The real etcd is
exercised by the etcd role in the sandbox and the Molecule scenario."""

from __future__ import annotations

import base64
from urllib.error import URLError

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import etcd_auth as ea


def enc(text):
    return base64.b64encode(text.encode()).decode()


class FakeEtcd:
    def __init__(self):
        self.enabled = False
        self.users = {}  # name -> {"password", "roles"}
        self.roles = {}  # name -> [perm]
        self.writes = []

    def __call__(self, path, body, headers):
        if path == "/v3/auth/authenticate":
            if not self.enabled:
                raise ea.EtcdError("etcdserver: authentication is not enabled", 400)
            user = self.users.get(body["name"])
            if not user or user["password"] != body["password"]:
                raise ea.EtcdError("etcdserver: authentication failed, invalid user ID or password", 400)
            return {"token": "tok-" + body["name"]}
        if self.enabled and headers.get("Authorization") != "tok-root":
            raise ea.EtcdError("etcdserver: permission denied", 403)
        if path.endswith("/list"):
            return {"users" if "user" in path else "roles": sorted(self.users if "user" in path else self.roles)}
        if path == "/v3/auth/role/get":
            return {"perm": [dict(p) for p in self.roles[body["role"]]]}
        if path == "/v3/auth/user/get":
            return {"roles": list(self.users[body["name"]]["roles"])}
        self.writes.append(path)
        if path == "/v3/auth/role/add":
            self.roles[body["name"]] = []
        elif path == "/v3/auth/role/grant":
            self.roles[body["name"]].append(body["perm"])
        elif path == "/v3/auth/role/revoke":
            self.roles[body["role"]] = [p for p in self.roles[body["role"]] if p["key"] != body["key"]]
        elif path == "/v3/auth/user/add":
            self.users[body["name"]] = {"password": body["password"], "roles": []}
        elif path == "/v3/auth/user/changepw":
            self.users[body["name"]]["password"] = body["password"]
        elif path == "/v3/auth/user/grant":
            self.users[body["user"]]["roles"].append(body["role"])
        elif path == "/v3/auth/enable":
            if "root" not in self.users or "root" not in self.users["root"]["roles"]:
                raise ea.EtcdError("etcdserver: root user does not exist", 400)
            self.enabled = True
        return {}


USERS = [
    {"name": "pg-test", "password": "DCS.Patroni", "prefix": "/pg/pg-test/"},
    {"name": "pg-meta", "password": "other", "prefix": "/pg/pg-meta/"},
]


def test_first_run_creates_users_then_enables_and_second_run_changes_nothing():
    etcd = FakeEtcd()
    first = ea.converge(etcd, "Etcd.Root", USERS, enable=True)
    assert first["changed"] and first["auth_enabled"]
    assert first["actions"][:4] == [
        "add role pg-test",
        "grant READWRITE /pg/pg-test/ to role pg-test",
        "add user pg-test",
        "grant role pg-test to user pg-test",
    ]
    assert first["actions"][-1] == "enable authentication"
    assert etcd.roles["pg-test"] == [
        {"permType": "READWRITE", "key": enc("/pg/pg-test/"), "range_end": enc("/pg/pg-test0")}
    ]
    assert not any("DCS.Patroni" in a or "Etcd.Root" in a for a in first["actions"])
    etcd.writes.clear()
    again = ea.converge(etcd, "Etcd.Root", USERS, enable=True)
    assert again == {"changed": False, "actions": [], "auth_enabled": True}
    assert etcd.writes == []


def test_check_mode_reports_without_writing():
    etcd = FakeEtcd()
    result = ea.converge(etcd, "Etcd.Root", USERS[:1], enable=True, check_mode=True)
    assert result["changed"] and etcd.writes == [] and not etcd.enabled


def test_wrong_password_and_foreign_permissions_are_corrected():
    etcd = FakeEtcd()
    ea.converge(etcd, "Etcd.Root", USERS, enable=True)
    etcd.users["pg-test"]["password"] = "old"
    etcd.roles["pg-test"].append({"permType": "READ", "key": enc("/"), "range_end": enc("\0")})
    result = ea.converge(etcd, "Etcd.Root", USERS, enable=True)
    assert result["actions"] == ["revoke READ /..\0 from role pg-test", "set the password of user pg-test"]
    assert etcd.users["pg-test"]["password"] == "DCS.Patroni"
    assert len(etcd.roles["pg-test"]) == 1


def test_a_new_cluster_is_added_without_touching_authentication():
    etcd = FakeEtcd()
    ea.converge(etcd, "Etcd.Root", USERS[:1], enable=True)
    result = ea.converge(etcd, "Etcd.Root", USERS[1:], enable=False)
    assert result["actions"] == [
        "add role pg-meta",
        "grant READWRITE /pg/pg-meta/ to role pg-meta",
        "add user pg-meta",
        "grant role pg-meta to user pg-meta",
    ]


def test_root_password_mismatch_names_the_fix():
    etcd = FakeEtcd()
    ea.converge(etcd, "Etcd.Root", [], enable=True)
    with pytest.raises(ea.EtcdError, match="etcd_root_password.*etcdctl user passwd root"):
        ea.converge(etcd, "wrong", USERS, enable=True)


def test_enable_false_leaves_authentication_off():
    etcd = FakeEtcd()
    result = ea.converge(etcd, "Etcd.Root", USERS[:1], enable=False)
    assert not result["auth_enabled"] and not etcd.enabled and "root" not in etcd.users


@pytest.mark.parametrize("prefix, end", [("/pg/pg-test/", "/pg/pg-test0"), ("a", "b"), ("/pg/", "/pg0"), ("", "\0")])
def test_prefix_end(prefix, end):
    assert ea.prefix_end(prefix) == end


KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/")


@given(KEYS.filter(bool), KEYS)
def test_prefix_end_covers_exactly_the_prefixed_keys(prefix, key):
    assert (prefix <= key < ea.prefix_end(prefix)) == key.startswith(prefix)


class Opener:
    """Records open_url's keyword arguments; answers ``reply``, or raises it."""

    def __init__(self, reply=b"{}"):
        self.reply, self.calls = reply, []

    def __call__(self, url, **kwargs):
        self.calls.append((url, kwargs))
        if isinstance(self.reply, BaseException):
            raise self.reply
        reply = self.reply
        return type("Resp", (), {"read": lambda self: reply})()


@pytest.mark.parametrize(
    "endpoint, ca_path, passed",
    [
        ("https://10.0.0.1:2379", "/etc/etcd/ca.crt", {"ca_path": "/etc/etcd/ca.crt"}),
        ("HTTPS://10.0.0.1:2379/", "/etc/etcd/ca.crt", {"ca_path": "/etc/etcd/ca.crt"}),
        ("https://10.0.0.1:2379", None, {}),  # the system's trust store
        ("http://10.0.0.1:2379", "/etc/etcd/ca.crt", {}),  # plain http: no TLS options
        ("http://10.0.0.1:2379", None, {}),
    ],
)
def test_make_post_passes_the_ca_path_for_https(endpoint, ca_path, passed):
    opener = Opener(b'{"members": []}')
    post = ea.make_post(endpoint, 7, opener=opener, ca_path=ca_path)
    assert post("/v3/cluster/member/list", {}, {"Authorization": "tok"}) == {"members": []}
    ((url, kwargs),) = opener.calls
    assert url == endpoint.rstrip("/") + "/v3/cluster/member/list"
    assert {k: kwargs[k] for k in ("method", "timeout", "data")} == {"method": "POST", "timeout": 7, "data": "{}"}
    assert kwargs["headers"] == {"Content-Type": "application/json", "Authorization": "tok"}
    assert {k: v for k, v in kwargs.items() if k == "ca_path"} == passed


@pytest.mark.parametrize(
    "endpoint, ca_path, error, hint",
    [
        ("http://e:2379", None, URLError(ConnectionRefusedError(111, "refused")), "is etcd running there"),
        ("https://e:2379", "/ca.crt", FileNotFoundError(2, "No such file"), "CA file /ca.crt is missing"),
        (
            "https://e:2379",
            "/ca.crt",
            URLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            "does /ca.crt hold the CA",
        ),
        ("https://e:2379", None, URLError("[SSL: CERTIFICATE_VERIFY_FAILED]"), r"give the etcd CA file \(ca_cert\)"),
    ],
)
def test_make_post_failures_say_what_to_check(endpoint, ca_path, error, hint):
    post = ea.make_post(endpoint, 1, opener=Opener(error), ca_path=ca_path)
    with pytest.raises(ea.EtcdError, match=hint) as caught:
        post("/v3/auth/user/list", {}, {})
    assert caught.value.status is None
