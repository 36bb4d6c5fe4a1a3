# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/chaos/run.py: placeholders and target checks (hand-checked values)."""

from __future__ import annotations

import http.server
import json
import os
import ssl
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tools", "chaos"))
import run  # noqa: E402
from testcerts import ca_and_server_cert  # noqa: E402


def test_expand_fills_keys_and_values_and_keeps_unknown_names():
    names = {"net": "10.10.20", "prefix": "pigpen-molecule"}
    conf = {
        "containers": {"${net}.10": "${prefix}-pg-meta-1"},
        "inject": ["podman exec $${leader_container} true", "${unknown}"],
    }
    assert run.expand(conf, names) == {
        "containers": {"10.10.20.10": "pigpen-molecule-pg-meta-1"},
        # $$ survives the first pass as $: filled per run
        "inject": ["podman exec ${leader_container} true", "${unknown}"],
    }


def test_missed_upper_bounds_relax_time_only_and_lower_bounds_never():
    targets = {"write_outage_s": 5, "lost_rows": 0, "dcs_gap_s": 10, "dcs_gap_s_min": 30}
    ok = {"write_outage_s": 7.0, "lost_rows": 0, "dcs_gap_s": 14.0}
    # 1.5 x 5 = 7.5 and 1.5 x 10 = 15: within; the lower bound is not relaxed
    assert run.missed(ok, targets, 1.5) == ["dcs_gap_s 14.0 < 30"]
    assert run.missed(
        {"write_outage_s": 7.0, "lost_rows": 1, "dcs_gap_s": 31.0},
        {"write_outage_s": 5, "lost_rows": 0, "dcs_gap_s_min": 30},
    ) == ["write_outage_s 7.0 > 5", "lost_rows 1 > 0"]
    # a measurement that is missing (the service never came back) misses its target
    assert run.missed({"write_outage_s": None}, {"write_outage_s": 5}) == ["write_outage_s None > 5"]
    assert run.missed({}, {"dcs_gap_s_min": 30}) == ["dcs_gap_s None < 30"]


def test_diagnose_keeps_the_tail_of_each_output_and_never_raises():
    out = run.diagnose(["printf 'a%.0s' $(seq 50)", "echo err >&2; exit 3", "sleep 5"], timeout=0.5, keep=10)
    assert out[0] == {"command": "printf 'a%.0s' $(seq 50)", "output": "a" * 10}
    assert out[1]["output"] == "err\n"
    assert out[2]["output"] == "(no answer within 0.5 s)"


def test_only_missed_time_bounds_are_measured_again():
    assert run.time_only(["write_outage_s 8.082 > 7.5"])
    assert run.time_only(["write_outage_s 8.1 > 7.5", "read_outage_s 9 > 7.5"])
    # rows lost, split brain, a fault that did not hold, and no miss at all: never
    assert not run.time_only(["write_outage_s 8.1 > 7.5", "lost_rows 408 > 0"])
    assert not run.time_only(["split_brain 1 > 0"])
    assert not run.time_only(["dcs_gap_s 14.0 < 30"])
    assert not run.time_only([])
    targets = {"write_outage_s": 5, "lost_rows": 0, "split_brain": 0}
    assert run.time_only(run.missed({"write_outage_s": 9.2, "lost_rows": 0, "split_brain": 0}, targets, 1.5))
    assert not run.time_only(run.missed({"write_outage_s": 3, "lost_rows": 2, "split_brain": 0}, targets, 1.5))


CLIENTS = {"w": {"kind": "write", "dsn": "host=a"}, "r": {"kind": "read-standby", "dsn": "host=b"}}


def test_check_config_refuses_unknown_names_before_any_load():
    conf = {
        "clients": CLIENTS,
        "scenarios": {
            "pg-crash": {
                "inject": ["true"],
                "targets": {"write_outage_s": 5, "port_back_s": 3},
                "watch": [{"name": "port_back_s", "tcp": "10.0.0.1:5433"}],
            }
        },
    }
    assert run.check_config(conf, ["pg-crash"]) == []
    assert run.check_config(conf, ["pg-crsh"]) == ["--scenario pg-crsh: no such scenario: use one of pg-crash"]
    bad = {
        "clients": {"w": {"kind": "writer", "dsn": "host=a"}},
        "scenarios": {"x": {"injct": [], "targets": {"write_outage": 5}, "watch": [{"name": "back", "tcp": "a:1"}]}},
    }
    problems = run.check_config(bad)
    assert problems[0].startswith("clients.w.kind: 'writer' is not a client kind")
    assert problems[1].startswith("scenarios.x.injct: unknown key: use ")
    assert problems[2].startswith("scenarios.x.targets.write_outage: not a measurement")
    assert problems[3].startswith("scenarios.x.watch[0]: {'name': 'back', 'tcp': 'a:1'}: write {name:")
    assert run.check_config({"clients": CLIENTS, "scenarios": {}})[0].startswith("scenarios: {} is not")


def test_the_sandbox_configuration_is_valid():
    import yaml

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tools", "chaos")
    with open(os.path.join(here, "sandbox.yml"), encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    names = {k: str(v) for k, v in raw["vars"].items()}
    conf = run.expand({k: v for k, v in raw.items() if k != "vars"}, names)
    assert run.check_config(conf) == []
    kinds = sorted({c["kind"] for c in conf["clients"].values()})
    assert kinds == ["read", "read-standby", "write"]
    # the session attributes people deploy, and pgbouncer straight
    dsns = " ".join(c["dsn"] for c in conf["clients"].values())
    for attr in ("read-write", "primary", "standby", "prefer-standby"):
        assert "target_session_attrs=%s " % attr in dsns + " "
    assert "port=6432" in dsns
    for name in ("pgbouncer-crash", "haproxy-crash", "patroni-crash", "switchover", "node-crash"):
        assert name in conf["scenarios"]
    # Patroni's REST API over https, verified against the deployment's CA;
    # plain http with --var patroni_scheme=http
    assert [m["api"] for m in conf["members"].values()] == ["https://10.10.10.%d:8008" % i for i in (11, 12, 13)]
    assert conf["patroni_ca"] == "~/.pigpen/pki/ca.crt"
    names["patroni_scheme"] = "http"
    plain = run.expand({k: v for k, v in raw.items() if k != "vars"}, names)
    assert run.api_context(plain) is None and run.ca_problems(plain) == []


def test_client_targets_name_the_client_that_missed():
    result = {
        "write_outage_s": 9.0,
        "lost_rows": 0,
        "wrong_role_sessions": 1,
        "clients": {
            "a": {"write_outage_s": 2.0, "wrong_role_sessions": 0},
            "b": {"write_outage_s": 9.0, "wrong_role_sessions": 1},
            "r": {"read_outage_s": None, "wrong_role_sessions": 0},
        },
    }
    assert run.missed(
        result, {"write_outage_s": 5, "read_outage_s": 5, "wrong_role_sessions": 0, "lost_rows": 0}, 1.5
    ) == ["write_outage_s[b] 9.0 > 7.5", "read_outage_s[r] None > 7.5", "wrong_role_sessions[b] 1 > 0"]
    assert run.time_only(["write_outage_s[b] 9.0 > 7.5", "read_outage_s[r] 8 > 7.5"])
    assert not run.time_only(["write_outage_s[b] 9.0 > 7.5", "wrong_role_sessions[b] 1 > 0"])


def test_a_run_that_stops_half_way_fails_its_scenario_and_is_not_retried(monkeypatch):
    def boom(conf, name, sc):
        raise SystemExit("chaos: 'podman exec x pkill -KILL -x haproxy' failed (1): ")

    monkeypatch.setattr(run, "run_once", boom)
    result = run.guarded_run({}, "haproxy-crash", {})
    assert result["failed_targets"] == ["not measured: chaos: 'podman exec x pkill -KILL -x haproxy' failed (1): "]
    assert result["write_outage_s"] is None and result["clients"] == {}
    assert not run.time_only(result["failed_targets"])


def test_one_client_may_have_its_own_bound():
    result = {"clients": {"a": {"write_outage_s": 6.0}, "b": {"write_outage_s": 6.0}}}
    targets = {"write_outage_s": 5, "write_outage_s[b]": 8}
    assert run.missed(result, targets) == ["write_outage_s[a] 6.0 > 5"]
    assert run.missed(result, targets, 1.5) == []
    conf = {
        "clients": {"a": {"kind": "write", "dsn": "host=a"}, "b": {"kind": "write", "dsn": "host=b"}},
        "scenarios": {"s": {"targets": {"write_outage_s[b]": 8, "write_outage_s[c]": 8}}},
    }
    assert [p.split(":")[0] for p in run.check_config(conf)] == ["scenarios.s.targets.write_outage_s[c]"]


# ---- Patroni's REST API over https, verified against the CA ----------------


class _Cluster(http.server.BaseHTTPRequestHandler):
    body = json.dumps({"members": [{"name": "pg-test-1", "role": "leader", "state": "running"}]}).encode()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def https_api(tmp_path):
    """A Patroni-like API on https://127.0.0.1:<port> with a certificate of
    the CA "right": (its URL, right's CA file, the CA file of "other")."""
    ca, cert, key = ca_and_server_cert(tmp_path, "right")
    other = ca_and_server_cert(tmp_path, "other")[0]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Cluster)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "https://127.0.0.1:%d" % server.server_port, str(ca), str(other)
    server.shutdown()
    server.server_close()


def test_https_apis_are_verified_against_patroni_ca(https_api):
    url, ca, other = https_api
    conf = {"members": {"pg-test-1": {"ip": "127.0.0.1", "api": url}}, "patroni_ca": ca}
    assert run.ca_problems(conf) == []
    cluster = run.Cluster(conf)
    assert cluster.context is not None
    assert cluster.state() == json.loads(_Cluster.body)
    assert run.Reachable({"name": "api_back_s", "http": url + "/primary"}, context=cluster.context).ok()
    # a certificate of another CA, or no CA (the system's), is no answer
    assert run.Cluster(dict(conf, patroni_ca=other)).state() is None
    assert run.Cluster({"members": conf["members"]}).state() is None
    assert not run.Reachable({"name": "api_back_s", "http": url + "/primary"}).ok()


def test_a_missing_ca_is_refused_for_https_apis_only(tmp_path):
    missing = str(tmp_path / "none" / "ca.crt")
    https = {"members": {"m": {"api": "https://10.10.10.11:8008"}}, "patroni_ca": missing}
    problems = run.ca_problems(https)
    assert len(problems) == 1 and problems[0].startswith("patroni_ca: %s: " % missing)
    # plain http (patroni_ssl_enabled: false): the CA is neither needed nor read
    http_only = {"members": {"m": {"api": "http://10.10.10.11:8008"}}, "patroni_ca": missing}
    assert run.ca_problems(http_only) == []
    assert run.api_context(http_only) is None
    assert run.api_context({"members": {"m": {"api": "https://10.10.10.11:8008"}}}) is None


# ---- etcd's leader, over https (etcd_tls_enabled) or plain http -------------


class _EtcdGateway(http.server.BaseHTTPRequestHandler):
    """etcd 3.4's JSON gateway as etcd_leader asks it: member 42 leads."""

    replies = {
        "/v3/maintenance/status": {"leader": "42"},
        "/v3/cluster/member/list": {
            "members": [
                {"ID": "7", "clientURLs": ["https://10.10.10.21:2379"]},
                {"ID": "42", "clientURLs": ["https://10.10.10.10:2379"]},
            ]
        },
    }

    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps(self.replies.get(self.path, {})).encode()
        self.send_response(200 if self.path in self.replies else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(handler, cert=None, key=None):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.handle_error = lambda *args: None  # a refused handshake is expected here
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_etcd_leader_over_https_verified_against_the_ca(tmp_path):
    ca, cert, key = ca_and_server_cert(tmp_path, "right")
    other = ca_and_server_cert(tmp_path, "other")[0]
    server = _serve(_EtcdGateway, cert, key)
    try:
        port = server.server_port
        context = run.etcd_context({"patroni_ca": str(ca)})
        assert context is not None
        assert run.etcd_leader(["127.0.0.1"], context=context, port=port) == "10.10.10.10"
        # another CA's certificate (or the system's CAs) is no answer, and
        # plain http against TLS neither
        assert run.etcd_leader(["127.0.0.1"], context=run.etcd_context({"patroni_ca": str(other)}), port=port) is None
        assert run.etcd_leader(["127.0.0.1"], port=port) is None
    finally:
        server.shutdown()
        server.server_close()


def test_etcd_leader_falls_back_to_plain_http(tmp_path):
    """etcd without etcd_tls_enabled: https gets no answer, http does."""
    ca = ca_and_server_cert(tmp_path, "right")[0]
    server = _serve(_EtcdGateway)
    try:
        context = run.etcd_context({"patroni_ca": str(ca)})
        assert run.etcd_leader(["127.0.0.1"], context=context, port=server.server_port) == "10.10.10.10"
    finally:
        server.shutdown()
        server.server_close()


def test_etcd_context_never_fails_on_the_ca(tmp_path):
    """The CA is only needed for https etcd: a missing one (a plain-http
    deployment) leaves the system's CAs, and etcd_leader tries http."""
    assert run.etcd_context({}) is None
    assert run.etcd_context({"patroni_ca": str(tmp_path / "none" / "ca.crt")}) is None
    conf = {"members": {"m": {"ip": "127.0.0.1", "api": "http://127.0.0.1:8008"}}, "patroni_ca": str(tmp_path / "x")}
    assert run.Cluster(conf).etcd_context is None


def test_settle_waits_for_the_load_to_fall_and_no_longer_than_allowed(monkeypatch):
    loads = iter([3.0, 2.6, 1.4, 9.0])
    clock = iter([0.0, 0.0, 2.0, 4.0, 6.0])
    monkeypatch.setattr(run.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    monkeypatch.setattr(run.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(run.time, "sleep", lambda s: None)
    assert run.settle(60, 2.0) == 1.4
    # a load that stays high: the wait ends at max_s
    monkeypatch.setattr(run.os, "getloadavg", lambda: (5.0, 0.0, 0.0))
    ticks = iter(range(0, 100, 2))
    monkeypatch.setattr(run.time, "monotonic", lambda: float(next(ticks)))
    assert run.settle(10, 2.0) == 5.0


def test_override_targets():
    conf = {"scenarios": {"pg-crash": {"targets": {"write_outage_s": 5, "lost_rows": 0}}, "switchover": {}}}
    assert run.override_targets(conf, ["pg-crash.write_outage_s=7.5", "switchover.lost_rows=0"]) == []
    assert conf["scenarios"]["pg-crash"]["targets"] == {"write_outage_s": 7.5, "lost_rows": 0}
    assert conf["scenarios"]["switchover"]["targets"] == {"lost_rows": 0.0}
    assert run.override_targets(conf, ["nope.write_outage_s=1", "pg-crash.write_outage_s=x", "pg-crash"]) == [
        "--target nope.write_outage_s=1: use SCENARIO.NAME=VALUE with one of the scenarios",
        "--target pg-crash.write_outage_s=x: 'x' is not a number",
        "--target pg-crash: use SCENARIO.NAME=VALUE with one of the scenarios",
    ]
