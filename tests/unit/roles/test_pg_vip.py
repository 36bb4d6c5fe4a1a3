# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/vip/files/pg_vip.py: who holds the VIP, and how etcd is read.

The etcd replies are shaped like etcd 3.4's JSON gateway answers (keys and
values base64); the ``ip`` output like iproute2's ``ip -o addr show``. The
program itself runs against real etcd and Patroni in the Molecule scenario
(molecule/default/verify.yml: the VIP follows a switchover)."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.error

import pytest
from hypothesis import given, strategies as st
import role_files
from testcerts import ca_and_server_cert

SCRIPT = role_files.path("vip", "pg_vip.py")


vip = role_files.load("vip", "pg_vip.py")

CONF = {
    "address": "10.10.10.3",
    "prefix": 24,
    "interface": "eth0",
    "key": "/pg/pg-test/leader",
    "instance": "pg-test-1",
    "endpoints": ["http://10.10.10.10:2379"],
}


def enc(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "leader, dcs_ok, patroni_primary, hold",
    [
        ("pg-test-1", True, False, True),  # the key names us
        ("pg-test-2", True, True, False),  # the key wins over a stale local view
        (None, True, True, False),  # no leader (election running)
        (None, False, True, True),  # etcd gone, failsafe primary keeps serving
        (None, False, False, False),  # etcd gone, Patroni demoted or down
    ],
)
def test_should_hold(leader, dcs_ok, patroni_primary, hold):
    assert vip.should_hold(leader, "pg-test-1", dcs_ok, patroni_primary) is hold


@given(st.one_of(st.none(), st.text(min_size=1)), st.text(min_size=1), st.booleans())
def test_with_etcd_only_the_named_leader_holds(leader, instance, local):
    assert vip.should_hold(leader, instance, True, local) == (leader == instance)


def test_load_config_defaults_and_required():
    conf = vip.load_config(json.dumps(CONF))
    assert conf["interval_ms"] == 1000 and conf["username"] == "" and conf["arp_count"] == 3
    assert conf["etcd_cafile"] == ""  # an older file: http endpoints, or the system's CAs
    with pytest.raises(ValueError, match="lacks key, instance"):
        vip.load_config(json.dumps({**CONF, "key": "", "instance": None}))


def test_leader_from_range():
    assert (
        vip.leader_from_range({"header": {}, "kvs": [{"key": enc("/pg/pg-test/leader"), "value": enc("pg-test-2")}]})
        == "pg-test-2"
    )
    assert vip.leader_from_range({"header": {}}) is None  # no such key: no kvs at all
    assert vip.leader_from_range({"kvs": []}) is None


def test_has_address():
    out = (
        "2: eth0    inet 10.10.10.11/24 brd 10.10.10.255 scope global eth0\\ ...\n"
        "2: eth0    inet 10.10.10.3/24 scope global secondary eth0\\ ...\n"
    )
    assert vip.has_address(out, "10.10.10.3", 24)
    assert not vip.has_address(out, "10.10.10.3", 32)
    assert not vip.has_address(out, "10.10.10.30", 24)


class FakeGateway:
    """Answers like etcd's gateway: authenticate, then range with the token."""

    def __init__(self, leader="pg-test-1", down=()):
        self.leader, self.down, self.calls, self.tokens = leader, set(down), [], 0

    def __call__(self, url, body, headers, timeout):
        endpoint, path = url.split("/v3/", 1)
        self.calls.append((endpoint, path, headers.get("Authorization")))
        if endpoint in self.down:
            raise urllib.error.URLError("connection refused")
        if path == "auth/authenticate":
            self.tokens += 1
            return {"token": "t%d" % self.tokens}
        if headers.get("Authorization") == "t1" and self.tokens == 1 and len(self.calls) > 3:
            raise urllib.error.HTTPError(url, 401, "invalid auth token", None, None)
        return {"kvs": [{"value": enc(self.leader)}]} if self.leader else {}


def test_etcd_reads_with_a_token_and_renews_it():
    gw = FakeGateway()
    etcd = vip.Etcd(["http://e1:2379"], "pg-test", "pw", post=gw)
    assert etcd.get("/pg/pg-test/leader") == "pg-test-1"
    assert etcd.get("/pg/pg-test/leader") == "pg-test-1"
    assert etcd.get("/pg/pg-test/leader") == "pg-test-1"  # token t1 refused: renewed
    assert gw.tokens == 2 and gw.calls[-1][2] == "t2"


def test_etcd_tries_every_endpoint_then_fails():
    gw = FakeGateway(down={"http://e1:2379"})
    etcd = vip.Etcd(["http://e1:2379", "http://e2:2379"], post=gw)
    assert etcd.get("/k") == "pg-test-1"
    gw.down.add("http://e2:2379")
    with pytest.raises(vip.DcsError, match="e1:2379.*e2:2379"):
        etcd.get("/k")


class FakeIp:
    """iproute2 and arping as seen by Binder: a set of bound addresses."""

    def __init__(self, bound=(), arping=None, ss=None):
        self.bound, self.calls, self.arping, self.ss = set(bound), [], arping, ss

    def __call__(self, cmd, **_):
        self.calls.append(cmd)
        if cmd[0] == "arping":
            if self.arping:
                raise self.arping
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[0] == "ss":
            if self.ss:
                raise self.ss
            return subprocess.CompletedProcess(cmd, 0, "", "")
        if cmd[1:3] == ["-o", "addr"]:
            out = "".join("2: eth0    inet %s scope global eth0\n" % a for a in self.bound)
            return subprocess.CompletedProcess(cmd, 0, out, "")
        (self.bound.add if cmd[2] == "add" else self.bound.discard)(cmd[3])
        return subprocess.CompletedProcess(cmd, 0, "", "")


def test_step_binds_once_then_releases_when_the_leader_moves():
    conf = vip.load_config(json.dumps(CONF))
    gw, ip = FakeGateway("pg-test-1"), FakeIp()
    etcd, binder = vip.Etcd(conf["endpoints"], post=gw), vip.Binder(conf, run=ip)
    assert vip.step(conf, etcd, binder) is True
    assert ip.bound == {"10.10.10.3/24"}
    assert ["arping", "-U", "-q", "-c", "3", "-I", "eth0", "10.10.10.3"] in ip.calls
    n = len(ip.calls)
    assert vip.step(conf, etcd, binder) is True
    assert len(ip.calls) == n + 1  # only the look: nothing to change
    gw.leader = "pg-test-2"
    assert vip.step(conf, etcd, binder) is False
    assert ip.bound == set()
    # the address's connections are reset before it is removed
    reset = ip.calls.index(["ss", "-K", "-t", "-n", "src", "10.10.10.3"])
    assert ip.calls[reset + 1][:3] == ["ip", "addr", "del"]


def test_a_reset_that_cannot_run_does_not_stop_the_release(capsys):
    conf = vip.load_config(json.dumps(CONF))
    ip = FakeIp(bound={"10.10.10.3/24"}, ss=FileNotFoundError(2, "No such file", "ss"))
    assert vip.Binder(conf, run=ip).release() is True
    assert ip.bound == set()
    assert "connections of 10.10.10.3 not reset" in capsys.readouterr().out


def test_step_without_etcd_follows_the_local_patroni():
    conf = vip.load_config(json.dumps(CONF))
    gw, ip = FakeGateway(down={"http://10.10.10.10:2379"}), FakeIp()
    etcd, binder = vip.Etcd(conf["endpoints"], post=gw), vip.Binder(conf, run=ip)
    assert vip.step(conf, etcd, binder, primary=lambda url: True) is True
    assert ip.bound == {"10.10.10.3/24"}
    assert vip.step(conf, etcd, binder, primary=lambda url: False) is False
    assert ip.bound == set()


def test_arping_that_cannot_run_does_not_stop_the_bind(capsys):
    conf = vip.load_config(json.dumps(CONF))
    ip = FakeIp(arping=PermissionError(1, "Operation not permitted", "arping"))
    assert vip.Binder(conf, run=ip).bind() is True
    assert ip.bound == {"10.10.10.3/24"}
    assert "gratuitous ARP not sent" in capsys.readouterr().out


IP_ADDR = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever
1: lo    inet6 ::1/128 scope host \\       valid_lft forever
2: eth0    inet 192.168.121.5/24 brd 192.168.121.255 scope global eth0
3: eth1    inet 10.10.10.11/24 brd 10.10.10.255 scope global eth1
3: eth1    inet 10.10.10.3/24 scope global secondary eth1
"""


@pytest.mark.parametrize(
    "address, expect", [("10.10.10.3", "eth1"), ("192.168.121.40", "eth0"), ("172.16.0.9", None), ("fd00::3", None)]
)
def test_interface_for(address, expect):
    assert vip.interface_for(IP_ADDR, address) == expect


def test_interface_auto_resolves_to_the_subnet_interface():
    conf = vip.load_config(json.dumps(dict(CONF, interface="auto")))

    def run(cmd, **_):
        assert cmd == ["ip", "-o", "addr", "show"]
        return subprocess.CompletedProcess(cmd, 0, IP_ADDR, "")

    assert vip.Binder(conf, run=run).interface == "eth1"
    with pytest.raises(ValueError, match="no interface of this node has an address in the subnet of 172.16.0.9"):
        vip.Binder(dict(conf, address="172.16.0.9"), run=run)


def test_a_reload_keeps_the_address_unless_the_address_changed():
    """SIGHUP: a new Patroni URL or CA (the REST API moving to HTTPS), new
    etcd endpoints or credentials keep the bound address and its
    connections; a new address releases the old one first; a broken file
    changes nothing."""
    conf = vip.load_config(json.dumps(CONF))
    ip = FakeIp(bound={"10.10.10.3/24"})
    binder = vip.Binder(conf, run=ip)
    new_text = json.dumps(
        {
            **CONF,
            "patroni_url": "https://127.0.0.1:8008",
            "patroni_cafile": "/pg/cert/ca.crt",
            "password": "x",
            # etcd moving to TLS (etcd_tls_enabled)
            "endpoints": ["https://10.10.10.10:2379"],
            "etcd_cafile": "/pg/cert/ca.crt",
        }
    )
    new, same = vip.reload_config(new_text, conf, binder, make_binder=lambda c: vip.Binder(c, run=ip))
    assert same is binder and new["patroni_url"] == "https://127.0.0.1:8008" and new["password"] == "x"
    etcd = vip.etcd_of(new)  # what main() reads etcd with after the reload
    assert etcd.endpoints == ["https://10.10.10.10:2379"] and etcd.cafile == "/pg/cert/ca.crt"
    assert ip.bound == {"10.10.10.3/24"}
    assert not any(c[0] == "ss" or c[2:3] == ["del"] for c in ip.calls)
    moved, other = vip.reload_config(
        json.dumps({**CONF, "address": "10.10.10.4"}), conf, binder, make_binder=lambda c: vip.Binder(c, run=ip)
    )
    assert other is not binder and other.address == "10.10.10.4" and moved["address"] == "10.10.10.4"
    assert ip.bound == set()  # the old address is released; the next round binds the new one on the leader
    with pytest.raises(ValueError):
        vip.reload_config("{not json", conf, binder)
    with pytest.raises(ValueError, match="lacks key"):
        vip.reload_config(json.dumps({**CONF, "key": ""}), conf, binder)


def test_the_local_patroni_is_asked_over_the_other_scheme_when_the_first_gets_no_answer(monkeypatch):
    """While the REST API moves between HTTP and HTTPS, Patroni reloads
    before pg-vip: no HTTP answer on the configured scheme means the other
    one is asked; a real answer (503) is final."""
    asked = []

    def fake(url, timeout, cafile, check="/primary"):
        asked.append(url)
        return answers.get(url.split(":", 1)[0])

    monkeypatch.setattr(vip, "_ask_primary", fake)
    answers = {"https": True}  # http: no answer (the API serves TLS now)
    assert vip.patroni_answer("http://127.0.0.1:8008", cafile="/pg/cert/ca.crt") is True
    assert asked == ["http://127.0.0.1:8008", "https://127.0.0.1:8008"]
    asked.clear()
    answers = {"https": False, "http": True}  # 503 over the configured scheme: final
    assert vip.patroni_answer("https://127.0.0.1:8008") is False
    assert asked == ["https://127.0.0.1:8008"]
    answers = {}  # no answer on either: no answer (step decides, with hold_ms)
    assert vip.patroni_answer("https://127.0.0.1:8008") is None
    assert vip.other_scheme("https://h:1") == "http://h:1" and vip.other_scheme("http://h:1") == "https://h:1"
    assert vip.other_scheme("x") == "x"


def test_ask_primary_against_a_plain_server_over_both_schemes():
    """A real HTTP server: its 200 over http; over https no HTTP answer (None)."""
    import http.server
    import threading

    state = {"role": "master", "state": "running"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path == "/patroni":
                body = json.dumps(state).encode()
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)
                return
            self.send_response(200 if self.path == "/primary" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = "http://127.0.0.1:%d" % server.server_address[1]
        assert vip._ask_primary(url, 2.0, None) is True
        assert vip._ask_primary(vip.other_scheme(url), 2.0, None) is None
        # configured as https (the move back to HTTP): the plain answer counts
        assert vip.patroni_answer(vip.other_scheme(url)) is True
        # a standby cluster's leader: its role on /patroni
        state.update(role="standby_leader", state="running")
        assert vip._ask_primary(url, 2.0, None, "standby_leader") is True
        assert vip.patroni_answer(url, check="standby_leader") is True
        state.update(role="replica")
        assert vip._ask_primary(url, 2.0, None, "standby_leader") is False
        state.update(role="standby_leader", state="starting")
        assert vip._ask_primary(url, 2.0, None, "standby_leader") is False
        assert vip._ask_primary(url, 2.0, None, "/replica") is False
    finally:
        server.shutdown()


# ---- etcd over https (etcd_tls_enabled), verified against etcd_cafile ------


@pytest.fixture
def tls_etcd(tmp_path):
    """etcd's JSON gateway on https://127.0.0.1:<port> (no authentication;
    the key names pg-test-1), with a certificate of the CA "right":
    (its URL, right's CA file, the CA file of "other")."""
    import http.server
    import threading

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"kvs": [{"value": enc("pg-test-1")}]}).encode()
            self.send_response(200 if self.path == "/v3/kv/range" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ca, cert, key = ca_and_server_cert(tmp_path, "right")
    other = ca_and_server_cert(tmp_path, "other")[0]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda *args: None  # refused handshakes are expected here
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "https://127.0.0.1:%d" % server.server_port, ca, other
    server.shutdown()
    server.server_close()


def test_etcd_over_https_is_verified_against_etcd_cafile(tls_etcd):
    url, ca, other = tls_etcd
    conf = vip.load_config(json.dumps({**CONF, "endpoints": [url], "etcd_cafile": ca}))
    assert vip.etcd_of(conf).get(CONF["key"]) == "pg-test-1"
    # a certificate of another CA, or the system's CAs only: an etcd error
    with pytest.raises(vip.DcsError, match="CERTIFICATE_VERIFY_FAILED"):
        vip.Etcd([url], cafile=other).get(CONF["key"])
    with pytest.raises(vip.DcsError, match="CERTIFICATE_VERIFY_FAILED"):
        vip.Etcd([url]).get(CONF["key"])
    # plain HTTP against the TLS endpoint (a configuration not yet moved):
    # an etcd error too, never a crash of the daemon
    with pytest.raises(vip.DcsError, match=url.replace("https", "http")):
        vip.Etcd([url.replace("https", "http")], cafile=ca).get(CONF["key"])


def test_an_unreadable_etcd_ca_is_an_etcd_error(tmp_path, capsys):
    """A CA that is missing or no certificate: etcd counts as unreachable,
    so the local Patroni decides; plain http endpoints never read it."""
    missing = str(tmp_path / "none" / "ca.crt")
    with pytest.raises(vip.DcsError, match="https://127.0.0.1:1: .*No such file"):
        vip.Etcd(["https://127.0.0.1:1"], cafile=missing).get("/k")
    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    with pytest.raises(vip.DcsError, match="https://127.0.0.1:1: "):
        vip.Etcd(["https://127.0.0.1:1"], "pg-test", "pw", cafile=str(garbage)).get("/k")
    assert vip.Etcd(["http://127.0.0.1:1"], cafile=missing).context("http://127.0.0.1:1/v3/kv/range") is None
    conf = vip.load_config(json.dumps({**CONF, "endpoints": ["https://127.0.0.1:1"], "etcd_cafile": missing}))
    ip = FakeIp()
    assert vip.step(conf, vip.etcd_of(conf), vip.Binder(conf, run=ip), primary=lambda url: True) is True
    assert ip.bound == {"10.10.10.3/24"}
    assert "etcd unreachable" in capsys.readouterr().out


def test_a_renewed_etcd_ca_is_read_again(tmp_path):
    right = ca_and_server_cert(tmp_path, "right")[0]
    other = ca_and_server_cert(tmp_path, "other")[0]
    path = tmp_path / "ca.crt"
    path.write_bytes(open(right, "rb").read())
    etcd = vip.Etcd(["https://e1:2379"], cafile=str(path))
    first = etcd.context("https://e1:2379/v3/kv/range")
    assert etcd.context("https://e1:2379/v3/kv/range") is first  # unchanged file: the same context
    path.write_bytes(open(other, "rb").read())
    os.utime(path, ns=(0, 0))
    assert etcd.context("https://e1:2379/v3/kv/range") is not first


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_with_nobody_answering_a_bound_address_stays_for_hold_ms_only(capsys):
    """etcd and the local Patroni both silent (starved of CPU, say): the
    address stays where it is for at most hold_ms after this node was last
    known to lead, then goes; a node that did not hold it does not take it."""
    conf = vip.load_config(json.dumps({**CONF, "hold_ms": 10000}))
    gw, ip, clock, memo = FakeGateway("pg-test-1"), FakeIp(), Clock(), {}
    etcd, binder = vip.Etcd(conf["endpoints"], post=gw), vip.Binder(conf, run=ip)
    assert vip.step(conf, etcd, binder, memo=memo, clock=clock) is True  # the key names us
    gw.down = {"http://10.10.10.10:2379"}
    clock.now += 4
    assert vip.step(conf, etcd, binder, primary=lambda url: None, memo=memo, clock=clock) is True
    assert ip.bound == {"10.10.10.3/24"}
    assert "10.10.10.3 stays, 4.0 s after this node was last known to lead (at most 10.0 s)" in capsys.readouterr().out
    clock.now += 7  # 11 s since the key named us
    assert vip.step(conf, etcd, binder, primary=lambda url: None, memo=memo, clock=clock) is False
    assert ip.bound == set()
    # not bound, nobody answering: it stays unbound
    assert vip.step(conf, etcd, binder, primary=lambda url: None, memo=memo, clock=clock) is False
    assert ip.bound == set()


def test_a_patroni_that_answers_no_releases_at_once():
    conf = vip.load_config(json.dumps({**CONF, "hold_ms": 10000}))
    gw, ip, clock, memo = FakeGateway("pg-test-1"), FakeIp(), Clock(), {}
    etcd, binder = vip.Etcd(conf["endpoints"], post=gw), vip.Binder(conf, run=ip)
    assert vip.step(conf, etcd, binder, memo=memo, clock=clock) is True
    gw.down = {"http://10.10.10.10:2379"}
    clock.now += 1
    assert vip.step(conf, etcd, binder, primary=lambda url: False, memo=memo, clock=clock) is False
    assert ip.bound == set()


def test_without_hold_ms_nobody_answering_releases_at_once():
    conf = vip.load_config(json.dumps(CONF))
    assert conf["hold_ms"] == 0
    gw, ip, clock, memo = FakeGateway("pg-test-1"), FakeIp(), Clock(), {}
    etcd, binder = vip.Etcd(conf["endpoints"], post=gw), vip.Binder(conf, run=ip)
    assert vip.step(conf, etcd, binder, memo=memo, clock=clock) is True
    gw.down = {"http://10.10.10.10:2379"}
    assert vip.step(conf, etcd, binder, primary=lambda url: None, memo=memo, clock=clock) is False


@given(
    rounds=st.lists(
        st.tuples(st.sampled_from(["me", "other", "etcd-down"]), st.sampled_from([True, False, None]), st.floats(0, 8)),
        max_size=12,
    )
)
def test_never_held_after_hold_ms_without_a_sure_answer(rounds):
    """Property: after hold_ms with no answer saying this node leads, the
    address is never held; with etcd up, the key alone decides."""
    conf = vip.load_config(json.dumps({**CONF, "hold_ms": 10000}))
    gw, ip, clock, memo = FakeGateway("pg-test-1"), FakeIp(), Clock(), {}
    etcd, binder = vip.Etcd(conf["endpoints"], post=gw), vip.Binder(conf, run=ip)
    last_sure = None
    for etcd_state, patroni, wait in rounds:
        clock.now += wait
        gw.down = {"http://10.10.10.10:2379"} if etcd_state == "etcd-down" else set()
        gw.leader = "pg-test-1" if etcd_state == "me" else "pg-test-2"
        held = vip.step(conf, etcd, binder, primary=lambda url, p=patroni: p, memo=memo, clock=clock)
        sure = etcd_state != "etcd-down" or patroni is not None
        if sure:
            expected = etcd_state == "me" if etcd_state != "etcd-down" else bool(patroni)
            assert held is expected
            last_sure = clock.now if held else None
        else:
            assert not held or (last_sure is not None and clock.now - last_sure < 10)
        assert (ip.bound == {"10.10.10.3/24"}) is held
