# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""etcd v3 authentication, converged through etcd's JSON gateway.

Each PostgreSQL cluster gets an etcd user and a role of its own name; the
role may read and write only below the cluster's prefix
(``<pg_namespace>/<pg_cluster>/``), so one cluster's Patroni cannot touch
another's keys. ``root`` (role ``root``) is the only other user; it exists
so that authentication can be enabled and the users managed.

:func:`converge` reads the current state, changes only what differs, and
reports what it changed (or would change, in check mode). Talking to etcd
goes through a ``post(path, body, headers) -> dict`` callable that raises
:class:`EtcdError`; the module supplies one built on urllib.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence
from urllib.error import HTTPError, URLError

READWRITE = "READWRITE"


class EtcdError(Exception):
    """An error reply (or no reply) from etcd."""

    def __init__(self, message: str, status: Optional[int] = None) -> None:
        super().__init__(message)
        self.status = status


Post = Callable[[str, Dict[str, Any], Dict[str, str]], Dict[str, Any]]


def make_post(
    endpoint: str, timeout: int, opener: Optional[Callable[..., Any]] = None, ca_path: Optional[str] = None
) -> Post:
    """post(path, body, headers) against the gateway; error replies raise
    EtcdError with etcd's message.

    An ``https://`` endpoint's certificate is verified against ``ca_path``
    (the deployment's own CA, which is not in the system's trust store), or
    against the system's trust store without it; an ``http://`` endpoint
    ignores ``ca_path``."""
    if opener is None:
        from ansible.module_utils.urls import open_url

        opener = open_url
    base = endpoint.rstrip("/")
    tls: Dict[str, Any] = {"ca_path": ca_path} if is_https(base) and ca_path else {}

    def post(path, body, headers):
        try:
            resp = opener(
                base + path,
                data=json.dumps(body),
                method="POST",
                headers={"Content-Type": "application/json", **headers},
                timeout=timeout,
                **tls,
            )
            text = resp.read()
        except HTTPError as exc:
            detail = exc.read() if hasattr(exc, "read") else b""
            try:
                message = json.loads(detail or b"{}").get("error") or str(exc)
            except ValueError:
                message = str(exc)
            raise EtcdError("%s: %s" % (path, message), exc.code) from exc
        except (URLError, OSError) as exc:
            raise EtcdError("%s%s failed: %s; %s" % (base, path, exc, failure_hint(base, exc, ca_path))) from exc
        return json.loads(text or b"{}")

    return post


def is_https(endpoint: str) -> bool:
    """Whether ``endpoint`` is a TLS (``https://``) URL."""
    return endpoint.lower().startswith("https://")


def failure_hint(endpoint: str, exc: BaseException, ca_path: Optional[str]) -> str:
    """What to check when ``endpoint`` did not answer with ``exc``: a
    missing CA file or a certificate that does not verify points at the CA
    file, anything else at etcd itself."""
    text = str(exc).lower()
    if is_https(endpoint) and ca_path and isinstance(exc, FileNotFoundError):
        return "the CA file %s is missing: copy the etcd CA there first" % ca_path
    if is_https(endpoint) and ("certificate" in text or "ssl" in text or "tls" in text):
        if ca_path:
            return "does %s hold the CA that signed etcd's server certificate (for this address)?" % ca_path
        return "its certificate is checked against the system's trust store: give the etcd CA file (ca_cert)"
    return "is etcd running there?"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: Optional[str]) -> str:
    return base64.b64decode(text).decode() if text else ""


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with ``prefix``: the
    prefix with its last character incremented (etcd's rule, for the ASCII
    prefixes the model allows)."""
    if not prefix:
        return "\0"  # every key
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def wanted_perm(prefix: str) -> Dict[str, str]:
    return {"permType": READWRITE, "key": prefix, "range_end": prefix_end(prefix)}


def perms_of(reply: Mapping[str, Any]) -> List[Dict[str, str]]:
    """A /v3/auth/role/get reply's permissions, decoded (READ is the
    enum's zero value, which the gateway may leave out)."""
    return [
        {"permType": p.get("permType", "READ"), "key": unb64(p.get("key")), "range_end": unb64(p.get("range_end"))}
        for p in reply.get("perm") or []
    ]


#: etcd's replies to a request that may well succeed when sent again: an
#: election is under way (a member was just killed or restarted), the
#: cluster is busy, or its version is not settled yet after a start.
TRANSIENT = (
    "etcdserver: leader changed",
    "etcdserver: no leader",
    "etcdserver: request timed out",
    "etcdserver: too many requests",
    "etcdserver: not capable",
    "etcdserver: server stopped",
)


def transient(exc: EtcdError) -> bool:
    """Whether ``exc`` is one of the :data:`TRANSIENT` replies."""
    return any(marker in str(exc) for marker in TRANSIENT)


def retrying(
    work: Callable[[], Any],
    seconds: float = 20.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """``work()``, run again while it fails with a :func:`transient` reply,
    for up to ``seconds``. ``work`` must read before it writes (every caller
    here does), so that running it again after a write that did take effect
    is harmless."""
    deadline = clock() + seconds
    while True:
        try:
            return work()
        except EtcdError as exc:
            if not transient(exc) or clock() >= deadline:
                raise
            sleep(1)


def not_enabled(exc: EtcdError) -> bool:
    return "not enabled" in str(exc)


def auth_failed(exc: EtcdError) -> bool:
    return "authentication failed" in str(exc) or "invalid user" in str(exc)


class Session:
    """The calls converge needs, with the token of the last authentication."""

    def __init__(self, post: Post) -> None:
        self.post = post
        self.token: Optional[str] = None

    def call(self, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        headers = {"Authorization": self.token} if self.token else {}
        return self.post(path, body or {}, headers)

    def authenticate(self, name: str, password: str) -> str:
        return self.post("/v3/auth/authenticate", {"name": name, "password": password}, {})["token"]

    def password_ok(self, name: str, password: str) -> bool:
        try:
            self.authenticate(name, password)
            return True
        except EtcdError as exc:
            if auth_failed(exc):
                return False
            raise

    def users(self) -> List[str]:
        return list(self.call("/v3/auth/user/list").get("users") or [])

    def roles(self) -> List[str]:
        return list(self.call("/v3/auth/role/list").get("roles") or [])

    def user_roles(self, name: str) -> List[str]:
        return list(self.call("/v3/auth/user/get", {"name": name}).get("roles") or [])


def converge(
    post: Post, root_password: str, users: Sequence[Mapping[str, str]], enable: bool, check_mode: bool = False
) -> Dict[str, Any]:
    """Bring etcd's users, roles and authentication to the wanted state.

    ``users``: ``[{"name", "password", "prefix"}]``. With ``enable``, root
    is created and authentication switched on; without it, authentication
    is left as found (the users are still converged). Returns
    ``{"changed", "actions", "auth_enabled"}``; ``actions`` never holds a
    password."""
    session = Session(post)
    actions: List[str] = []

    try:
        session.token = session.authenticate("root", root_password)
        enabled = True
    except EtcdError as exc:
        if not_enabled(exc):
            enabled = False
        elif auth_failed(exc):
            raise EtcdError(
                "etcd refused root with etcd_root_password: authentication is "
                "on and root's password differs. Fix: set etcd_root_password "
                "to the password etcd has (or change it with "
                "'etcdctl user passwd root')."
            ) from exc
        else:
            raise

    def do(action: str, path: str, body: Dict[str, Any]) -> None:
        actions.append(action)
        if not check_mode:
            session.call(path, body)

    existing_users = session.users()
    existing_roles = session.roles()

    for user in users:
        name, prefix = user["name"], user["prefix"]
        want = wanted_perm(prefix)
        if name not in existing_roles:
            do("add role %s" % name, "/v3/auth/role/add", {"name": name})
            have: List[Dict[str, str]] = []
        else:
            have = perms_of(session.call("/v3/auth/role/get", {"role": name}))
        for perm in have:
            if perm != want:
                do(
                    "revoke %s %s..%s from role %s" % (perm["permType"], perm["key"], perm["range_end"], name),
                    "/v3/auth/role/revoke",
                    {"role": name, "key": b64(perm["key"]), "range_end": b64(perm["range_end"])},
                )
        if want not in have:
            do(
                "grant READWRITE %s to role %s" % (prefix, name),
                "/v3/auth/role/grant",
                {
                    "name": name,
                    "perm": {"permType": READWRITE, "key": b64(want["key"]), "range_end": b64(want["range_end"])},
                },
            )
        if name not in existing_users:
            do("add user %s" % name, "/v3/auth/user/add", {"name": name, "password": user["password"]})
            roles: List[str] = []
        else:
            roles = session.user_roles(name)
            # without authentication a password cannot be tried: set it
            if not enabled or not session.password_ok(name, user["password"]):
                do(
                    "set the password of user %s" % name,
                    "/v3/auth/user/changepw",
                    {"name": name, "password": user["password"]},
                )
        if name not in roles:
            do("grant role %s to user %s" % (name, name), "/v3/auth/user/grant", {"user": name, "role": name})

    if enable and not enabled:
        if "root" not in existing_roles:
            do("add role root", "/v3/auth/role/add", {"name": "root"})
        if "root" not in existing_users:
            do("add user root", "/v3/auth/user/add", {"name": "root", "password": root_password})
        else:
            do("set the password of user root", "/v3/auth/user/changepw", {"name": "root", "password": root_password})
        if "root" not in existing_users or "root" not in session.user_roles("root"):
            do("grant role root to user root", "/v3/auth/user/grant", {"user": "root", "role": "root"})
        do("enable authentication", "/v3/auth/enable", {})
        enabled = not check_mode

    return {"changed": bool(actions), "actions": actions, "auth_enabled": enabled}
