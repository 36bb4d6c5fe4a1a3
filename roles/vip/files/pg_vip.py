#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg-vip: bind a PostgreSQL cluster's L2 VIP on the Patroni leader.

Installed by the pigpen.pgsql.vip role as /usr/local/bin/pg-vip and run by
pg-vip.service on every member of a cluster with ``pg_vip_enabled``. Every
``interval_ms`` it reads the cluster's leader key through etcd's v3 JSON
gateway (``POST /v3/kv/range``; the API Patroni writes with) and

* binds ``address/prefix`` on ``interface`` (``auto``: the interface with
  an address in the VIP's subnet) when the key names this
  instance, then announces it with gratuitous ARP (``arping -U``);
* removes the address when the key names another member or is empty,
  after resetting its TCP connections (``ss -K``) so that clients of the
  old leader reconnect at once instead of waiting for a TCP timeout.

When no etcd endpoint answers, the local Patroni decides: ``GET /primary``
returns 200 only while Patroni runs this node as the primary (in a standby
cluster, ``patroni_check`` is ``standby_leader``: ``GET /patroni`` must say
role ``standby_leader``, state ``running``; its leader is never a
primary). Patroni
demotes a primary that loses etcd unless failsafe mode lets it keep
running (it still reaches every member), so the VIP stays exactly where
writes are accepted. When the local Patroni does not answer either (both
starved of CPU, say), a bound address stays for at most ``hold_ms`` after
this node was last known to lead: the leader key it held then cannot
expire, and no other member be promoted, sooner (the model sets half of
Patroni's ``ttl - loop_wait``); 0 releases at once. On SIGTERM the address
is released.

Only the Python standard library is used; the configuration is one JSON
file (mode 0600, it holds the etcd password)::

    {"address": "10.10.10.3", "prefix": 24, "interface": "eth0",
     "key": "/pg/pg-test/leader", "instance": "pg-test-1",
     "endpoints": ["https://10.10.10.10:2379"], "etcd_cafile": "/pg/cert/ca.crt",
     "username": "pg-test", "password": "...",
     "patroni_url": "https://127.0.0.1:8008", "patroni_cafile": "/pg/cert/ca.crt",
     "interval_ms": 1000, "hold_ms": 10000}

``etcd_cafile`` verifies the certificate of the ``https://`` etcd
endpoints (etcd with ``etcd_tls_enabled``: a server certificate of the
deployment's own CA; empty: the system's trust store); ``http://``
endpoints are read in the clear. A CA that cannot be read counts as an
etcd error (the local Patroni decides, as with etcd down). No client
certificate is sent: the etcd user and password authenticate.
``patroni_cafile`` verifies the certificate of Patroni's REST API over
HTTPS (absent over HTTP).
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

REQUIRED = ("address", "prefix", "interface", "key", "instance", "endpoints")


class DcsError(Exception):
    """No etcd endpoint answered the read of the leader key."""


def load_config(text: str) -> Dict[str, Any]:
    """Parse and check the configuration file's text."""
    conf = json.loads(text)
    missing = [k for k in REQUIRED if not conf.get(k)]
    if missing:
        raise ValueError("pg-vip: configuration lacks %s" % ", ".join(missing))
    conf.setdefault("interval_ms", 1000)
    conf.setdefault("username", "")
    conf.setdefault("password", "")
    conf.setdefault("etcd_cafile", "")
    conf.setdefault("patroni_url", "")
    conf.setdefault("patroni_cafile", None)
    conf.setdefault("arp_count", 3)
    conf.setdefault("hold_ms", 0)
    return conf


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def leader_from_range(reply: Dict[str, Any]) -> Optional[str]:
    """The leader named in a /v3/kv/range reply, or None when the key is absent."""
    kvs = reply.get("kvs") or []
    if not kvs:
        return None
    value = kvs[0].get("value")
    return base64.b64decode(value).decode() if value else None


def should_hold(leader: Optional[str], instance: str, dcs_ok: bool, patroni_primary: bool) -> bool:
    """Whether this node must hold the VIP.

    With etcd reachable the leader key is the truth; without it, the local
    Patroni's view (a primary that failsafe mode keeps running)."""
    if dcs_ok:
        return leader == instance
    return patroni_primary


def interface_for(ip_output: str, address: str) -> Optional[str]:
    """The interface, in ``ip -o addr show`` output, with an address of the
    subnet that holds ``address`` (not ``address`` itself): where an L2 VIP
    of that subnet belongs (``interface: auto``)."""
    vip = ipaddress.ip_address(address)
    for line in ip_output.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] not in ("inet", "inet6"):
            continue
        try:
            iface = ipaddress.ip_interface(fields[3])
        except ValueError:
            continue
        if iface.ip != vip and iface.version == vip.version and vip in iface.network:
            return fields[1]
    return None


def has_address(ip_output: str, address: str, prefix: int) -> bool:
    """Whether ``ip -o addr show dev IFACE`` lists address/prefix."""
    wanted = "%s/%d" % (address, int(prefix))
    return any(wanted in line.split() for line in ip_output.splitlines())


Post = Callable[[str, Dict[str, Any], Dict[str, str], float], Dict[str, Any]]


def http_post(
    url: str,
    body: Dict[str, Any],
    headers: Dict[str, str],
    timeout: float,
    context: Optional[ssl.SSLContext] = None,
) -> Dict[str, Any]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json", **headers}
    )
    with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
        return json.loads(resp.read() or b"{}")


class Etcd:
    """Reads one key through the v3 JSON gateway of any of the endpoints.

    ``https://`` endpoints are verified against ``cafile`` (empty: the
    system's trust store); ``post`` replaces the HTTP client (tests)."""

    def __init__(
        self,
        endpoints: Sequence[str],
        username: str = "",
        password: str = "",
        timeout: float = 2.0,
        post: Optional[Post] = None,
        cafile: str = "",
    ) -> None:
        self.endpoints = list(endpoints)
        self.username, self.password = username, password
        self.timeout = timeout
        self.post: Post = post if post is not None else self._http_post
        self.cafile = cafile or ""
        self._tls: Optional[Tuple[Any, ssl.SSLContext]] = None
        self.token: Optional[str] = None

    def context(self, url: str) -> Optional[ssl.SSLContext]:
        """The TLS context for ``url``: None over http; over https one that
        verifies the server against ``cafile``, built again when the file
        changes (a renewed CA). Raises OSError (ssl.SSLError included) when
        the CA cannot be read or parsed."""
        if not url.startswith("https:"):
            return None
        stamp: Any = None
        if self.cafile:
            st = os.stat(self.cafile)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._tls is None or self._tls[0] != stamp:
            self._tls = (stamp, ssl.create_default_context(cafile=self.cafile or None))
        return self._tls[1]

    def _http_post(self, url: str, body: Dict[str, Any], headers: Dict[str, str], timeout: float) -> Dict[str, Any]:
        return http_post(url, body, headers, timeout, context=self.context(url))

    def _auth(self, endpoint: str) -> Dict[str, str]:
        if not self.username:
            return {}
        if self.token is None:
            reply = self.post(
                endpoint + "/v3/auth/authenticate", {"name": self.username, "password": self.password}, {}, self.timeout
            )
            self.token = reply["token"]
        return {"Authorization": self.token}

    def get(self, key: str) -> Optional[str]:
        errors: List[str] = []
        for endpoint in self.endpoints:
            for _ in range(2):  # a second try with a fresh token
                try:
                    reply = self.post(endpoint + "/v3/kv/range", {"key": b64(key)}, self._auth(endpoint), self.timeout)
                    return leader_from_range(reply)
                except urllib.error.HTTPError as exc:
                    errors.append("%s: HTTP %s" % (endpoint, exc.code))
                    if exc.code in (400, 401, 403) and self.token is not None:
                        self.token = None  # expired or revoked token
                        continue
                    break
                except (OSError, ValueError, KeyError, http.client.HTTPException) as exc:
                    # OSError includes ssl.SSLError: a CA that cannot be
                    # read, a certificate it does not verify, TLS against a
                    # plain endpoint; HTTPException: plain HTTP against TLS
                    errors.append("%s: %s" % (endpoint, str(exc) or type(exc).__name__))
                    self.token = None
                    break
        raise DcsError("; ".join(errors) or "no etcd endpoint configured")


def _ask_primary(url: str, timeout: float, cafile: Optional[str], check: str = "/primary") -> Optional[bool]:
    """Patroni's answer to ``GET /primary`` (``check``): True for 200, False
    for any other status. ``check`` ``standby_leader`` (a standby cluster):
    ``GET /patroni`` says the role is ``standby_leader`` and PostgreSQL
    runs; Patroni keeps that role while etcd is away, where its
    ``/standby-leader`` stops answering 200 once its leader key's ``ttl``
    has passed. None when no HTTP answer came (refused, timed out, or the
    other side speaks another scheme)."""
    try:
        context = ssl.create_default_context(cafile=cafile) if url.startswith("https:") else None
        path = "/patroni" if check == "standby_leader" else check
        with urllib.request.urlopen(url + path, timeout=timeout, context=context) as resp:
            if check == "standby_leader":
                state = json.loads(resp.read() or b"{}")
                return state.get("role") == "standby_leader" and state.get("state") == "running"
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False
    except (OSError, ValueError, http.client.HTTPException):
        return None


def other_scheme(url: str) -> str:
    """The same URL over the other scheme (https <-> http)."""
    if url.startswith("https:"):
        return "http:" + url[len("https:") :]
    return "https:" + url[len("http:") :] if url.startswith("http:") else url


def patroni_answer(
    url: str, timeout: float = 2.0, cafile: Optional[str] = None, check: str = "/primary"
) -> Optional[bool]:
    """Whether the local Patroni runs this node as the primary (``check``
    ``standby_leader``: as the standby leader of a standby cluster); None
    when it gives no HTTP answer. When the configured scheme gets none, the
    other one is asked (verified against ``cafile`` over HTTPS): while the
    REST API moves between HTTP and HTTPS (patroni_ssl_enabled), Patroni
    reloads before pg-vip does, and a moment of etcd trouble then must not
    take the address off the primary."""
    if not url:
        return False
    answer = _ask_primary(url, timeout, cafile, check)
    if answer is None:
        answer = _ask_primary(other_scheme(url), timeout, cafile, check)
    return answer


class Binder:
    """Adds and removes the address with iproute2."""

    def __init__(self, conf: Dict[str, Any], run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
        self.address, self.prefix = conf["address"], int(conf["prefix"])
        self.arp_count = int(conf["arp_count"])
        self.run = run
        self.interface = conf["interface"]
        if self.interface == "auto":
            # Pigsty's pg_vip_interface: auto: the interface of the VIP's
            # subnet on this node
            found = interface_for(self._ip("-o", "addr", "show").stdout, self.address)
            if found is None:
                raise ValueError(
                    "pg-vip: interface auto: no interface of "
                    "this node has an address in the subnet "
                    "of %s" % self.address
                )
            self.interface = found

    def _ip(self, *args: str) -> subprocess.CompletedProcess:
        return self.run(["ip", *args], capture_output=True, text=True, check=False)

    def bound(self) -> bool:
        out = self._ip("-o", "addr", "show", "dev", self.interface)
        return has_address(out.stdout, self.address, self.prefix)

    def bind(self) -> bool:
        if self.bound():
            return False
        cidr = "%s/%d" % (self.address, self.prefix)
        res = self._ip("addr", "add", cidr, "dev", self.interface)
        if res.returncode != 0:
            raise OSError("ip addr add %s dev %s: %s" % (cidr, self.interface, res.stderr.strip()))
        if ":" not in self.address and self.arp_count > 0:
            # Tell the segment's neighbours and switches where the address
            # lives now. Without it they find out when their ARP entry ages.
            try:
                res = self.run(
                    ["arping", "-U", "-q", "-c", str(self.arp_count), "-I", self.interface, self.address],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if res.returncode not in (0, 1):  # 1: no replies, as expected
                    log("gratuitous ARP failed: %s" % (res.stderr or "").strip())
            except OSError as exc:  # e.g. no CAP_NET_RAW for arping
                log("gratuitous ARP not sent: %s" % exc)
        return True

    def reset_connections(self) -> None:
        """Abort the TCP connections of the address (``ss -K``): the
        kernel answers each peer with a reset while the address is still
        here, so clients reconnect at once. Once the address is gone their
        packets go nowhere and a client waits for its own TCP timeout
        (minutes without keepalives). Failing here never stops the release."""
        try:
            res = self.run(["ss", "-K", "-t", "-n", "src", self.address], capture_output=True, text=True, check=False)
            if res.returncode != 0:
                log("connections of %s not reset: %s" % (self.address, (res.stderr or "").strip()))
        except OSError as exc:  # no ss, or no CAP_NET_ADMIN
            log("connections of %s not reset: %s" % (self.address, exc))

    def release(self) -> bool:
        if not self.bound():
            return False
        self.reset_connections()
        cidr = "%s/%d" % (self.address, self.prefix)
        res = self._ip("addr", "del", cidr, "dev", self.interface)
        if res.returncode != 0:
            raise OSError("ip addr del %s dev %s: %s" % (cidr, self.interface, res.stderr.strip()))
        return True


def log(message: str) -> None:
    print("pg-vip: " + message, flush=True)


def step(
    conf: Dict[str, Any],
    etcd: Etcd,
    binder: Binder,
    primary: Callable[[str], Optional[bool]] = patroni_answer,
    memo: Optional[Dict[str, Any]] = None,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """One round: read the leader, bind or release. Returns the desired
    state. ``memo`` carries, from one round to the next, when this node was
    last known to lead (for ``hold_ms``)."""
    memo = {} if memo is None else memo
    try:
        leader, dcs_ok = etcd.get(conf["key"]), True
    except DcsError as exc:
        leader, dcs_ok = None, False
        log("etcd unreachable (%s); asking the local Patroni" % exc)
    answer = None if dcs_ok else primary(conf["patroni_url"])
    now = clock()
    if dcs_ok or answer is not None:
        hold = should_hold(leader, conf["instance"], dcs_ok, bool(answer))
        memo["leads_at"] = now if hold else None
    else:
        since = None if memo.get("leads_at") is None else now - memo["leads_at"]
        hold = since is not None and since * 1000 < int(conf["hold_ms"]) and binder.bound()
        if hold:
            log(
                "neither etcd nor the local Patroni answered: %s stays, %.1f s after this node was last known "
                "to lead (at most %.1f s)" % (conf["address"], since, int(conf["hold_ms"]) / 1000)
            )
    if hold and binder.bind():
        log(
            "bound %s/%s on %s (leader %s)"
            % (conf["address"], conf["prefix"], conf["interface"], leader or "per Patroni")
        )
    elif not hold and binder.release():
        log("released %s (leader %s)" % (conf["address"], leader or "unknown"))
    return hold


def interval_of(conf: Dict[str, Any]) -> float:
    return max(int(conf["interval_ms"]), 100) / 1000.0


def etcd_of(conf: Dict[str, Any]) -> "Etcd":
    return Etcd(
        conf["endpoints"],
        conf["username"],
        conf["password"],
        timeout=min(2.0, max(interval_of(conf), 0.5)),
        cafile=conf["etcd_cafile"],
    )


# What a reload cannot change without releasing the address first.
ADDRESS_KEYS = ("address", "prefix", "interface")


def reload_config(
    text: str, conf: Dict[str, Any], binder: "Binder", make_binder: Callable[[Dict[str, Any]], "Binder"] = Binder
) -> Tuple[Dict[str, Any], "Binder"]:
    """SIGHUP (systemctl reload pg-vip): the new configuration, and the
    binder to use with it. A change of etcd's endpoints, credentials or CA
    (``etcd_cafile``: etcd moving to HTTPS; main() builds a new client), of
    the local Patroni's URL or CA (its REST API moving to HTTPS), of the
    key, the instance or the interval takes effect without touching the
    address, so its connections live on; a new address, prefix or interface
    releases the old address first (the next round binds the new one where
    this node leads). An invalid file changes nothing (ValueError)."""
    new = load_config(text)
    if any(str(new[k]) != str(conf[k]) for k in ADDRESS_KEYS):
        new_binder = make_binder(new)
        if binder.release():
            log("released %s for the new configuration" % conf["address"])
        return new, new_binder
    return new, binder


def main(argv: Sequence[str]) -> int:
    path = argv[1] if len(argv) > 1 else "/etc/pg-vip.json"
    with open(path, encoding="utf-8") as handle:
        conf = load_config(handle.read())
    etcd = etcd_of(conf)
    binder = Binder(conf)
    stopping: List[bool] = []
    reloading: List[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
    signal.signal(signal.SIGHUP, lambda *_: reloading.append(True))
    log("watching %s for %s" % (conf["key"], conf["instance"]))
    memo: Dict[str, Any] = {}
    while not stopping:
        if reloading:
            reloading.clear()
            try:
                with open(path, encoding="utf-8") as handle:
                    conf, binder = reload_config(handle.read(), conf, binder)
                etcd = etcd_of(conf)
                log("configuration reloaded: watching %s for %s" % (conf["key"], conf["instance"]))
            except (OSError, ValueError) as exc:
                log("configuration not reloaded, the previous one stays: %s" % exc)
        try:
            cafile, check = conf["patroni_cafile"], conf.get("patroni_check") or "/primary"
            step(
                conf,
                etcd,
                binder,
                lambda url, cafile=cafile, check=check: patroni_answer(url, cafile=cafile, check=check),
                memo,
            )
        except OSError as exc:
            log(str(exc))
        time.sleep(interval_of(conf))
    if binder.release():
        log("released %s on stop" % conf["address"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
