# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/etcd/files/etcd_plain_gateway.py: restart an etcd member until its
plain-HTTP v3 API answers (etcd 3.4 serving HTTPS and HTTP on one port)."""

from __future__ import annotations

import io
import json
import urllib.error

from hypothesis import given, strategies as st

from role_files import load

gw = load("etcd", "etcd_plain_gateway.py")
BASE = "http://127.0.0.1:2379"
GOOD = {"header": {"cluster_id": "1"}, "version": "3.4.23"}


class Member:
    """A member whose plain gateway is broken for the first ``bad_starts``
    starts; /health answers after ``health_after`` asks per start."""

    def __init__(self, bad_starts, health_after=0, late_asks=0):
        self.bad_starts, self.health_after, self.late_asks = bad_starts, health_after, late_asks
        self.starts, self.health_asks, self.gateway_asks, self.slept = 0, 0, 0, 0.0

    def ask(self, url, body):
        if url.endswith("/health"):
            self.health_asks += 1
            return {"health": "true" if self.health_asks > self.health_after else "false"}
        self.gateway_asks += 1
        if self.starts < self.bad_starts or self.gateway_asks <= self.late_asks:
            raise urllib.error.HTTPError(url, 503, "unavailable", {}, io.BytesIO(b'{"error":"connection closed"}'))
        return GOOD

    def restart(self):
        self.starts += 1
        self.health_asks = 0

    def sleep(self, seconds):
        self.slept += seconds


def run(member, tries=10, wait=5):
    return gw.ensure(BASE, tries, wait, ask=member.ask, restart=member.restart, sleep=member.sleep)


def test_a_working_gateway_needs_no_restart():
    m = Member(0)
    assert run(m) == {"restarts": 0, "ok": True, "error": None}
    assert m.starts == 0


def test_restarts_until_the_gateway_answers():
    m = Member(3)
    assert run(m) == {"restarts": 3, "ok": True, "error": None}


def test_gives_up_after_tries_and_says_why():
    m = Member(99)
    out = run(m, tries=2)
    assert out == {"restarts": 2, "ok": False, "error": "connection closed"}


def test_waits_for_health_after_each_start():
    m = Member(1, health_after=3)
    assert run(m)["ok"]
    # 3 s for /health, 4 s between the 5 asks of the broken gateway, 3 s for /health again
    assert m.slept == 10.0


def test_a_gateway_that_answers_a_moment_after_health_needs_no_restart():
    m = Member(0, late_asks=3)
    assert run(m) == {"restarts": 0, "ok": True, "error": None}
    assert m.slept == 3.0


def test_a_reply_without_header_is_an_error():
    def ask(url, body):
        return {"health": "true"} if url.endswith("/health") else {"error": "etcdserver: no leader"}

    assert gw.gateway_error(BASE, ask) == "etcdserver: no leader"


def test_connection_errors_are_reported():
    def ask(url, body):
        raise ConnectionRefusedError("refused")

    assert "refused" in gw.gateway_error(BASE, ask)
    assert gw.healthy(BASE, ask) is False


def test_main_prints_one_json_line(monkeypatch, capsys):
    monkeypatch.setattr(
        gw, "ensure", lambda base, tries, wait: {"restarts": 1, "ok": True, "error": None, "base": base}
    )
    assert gw.main(["--port", "2399"]) == 0
    assert json.loads(capsys.readouterr().out)["base"] == "http://127.0.0.1:2399"


@given(st.integers(0, 20), st.integers(0, 12))
def test_restarts_never_exceed_tries(bad, tries):
    out = run(Member(bad), tries=tries)
    assert out["restarts"] <= tries
    assert out["ok"] == (bad <= tries)
    assert out["restarts"] == min(bad, tries)
