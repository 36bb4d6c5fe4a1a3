# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/patroni/files/patroni_watch.py: crash detection and the wake-up call.

Real processes stand in for the postmaster (a crash is a SIGKILL that
leaves postmaster.pid behind, a clean stop removes the file first) and a
real HTTP server for Patroni's REST API. Against real Patroni the program
runs in the chaos suite's pg-crash scenario (molecule/ha)."""

from __future__ import annotations

import base64
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import given, strategies as st
import role_files

SCRIPT = role_files.path("patroni", "patroni_watch.py")


watch = role_files.load("patroni", "patroni_watch.py")

PATRONI = {
    "restapi": {
        "connect_address": "10.10.10.11:8008",
        "authentication": {"username": "postgres", "password": "Patroni.API"},
    },
    "postgresql": {"data_dir": "/pg/data"},
}


# ---- settings -------------------------------------------------------------


def test_settings_from_patroni_config():
    conf = watch.settings(PATRONI)
    assert conf["pidfile"] == "/pg/data/postmaster.pid"
    assert conf["url"] == "http://10.10.10.11:8008/config"
    assert conf["authorization"] == "Basic " + base64.b64encode(b"postgres:Patroni.API").decode()


def test_settings_https_without_auth():
    config = {
        "restapi": {"connect_address": "h:8008", "certfile": "/pg/cert/server.crt"},
        "postgresql": {"data_dir": "/data"},
    }
    assert watch.settings(config) == {
        "pidfile": "/data/postmaster.pid",
        "url": "https://h:8008/config",
        "api": "https://h:8008",
        "authorization": None,
        "cafile": None,
    }
    # the CA that patronictl uses verifies the member's certificate
    config["ctl"] = {"cacert": "/pg/cert/ca.crt"}
    assert watch.settings(config)["cafile"] == "/pg/cert/ca.crt"


@pytest.mark.parametrize(
    "config", [{}, {"restapi": {"connect_address": "h:8008"}}, {"postgresql": {"data_dir": "/pg/data"}}]
)
def test_settings_incomplete(config):
    with pytest.raises(ValueError, match="data_dir or restapi.connect_address"):
        watch.settings(config)


# ---- postmaster.pid -------------------------------------------------------


@pytest.mark.parametrize(
    "text,pid",
    [
        ("81\n/pg/data\n1763815000\n5432\n", 81),
        ("4242", 4242),
        ("", None),
        ("\n", None),
        ("0\n", None),
        ("-5\n", None),
        ("abc\n", None),
    ],
)
def test_read_pid(tmp_path, text, pid):
    path = tmp_path / "postmaster.pid"
    path.write_text(text)
    assert watch.read_pid(str(path)) == pid


def test_read_pid_missing(tmp_path):
    assert watch.read_pid(str(tmp_path / "postmaster.pid")) is None


@given(st.text(max_size=40))
def test_read_pid_never_raises(text):
    import tempfile

    with tempfile.NamedTemporaryFile("w", delete=False) as handle:
        handle.write(text)
    try:
        pid = watch.read_pid(handle.name)
    finally:
        os.unlink(handle.name)
    assert pid is None or (isinstance(pid, int) and pid > 0)


def test_is_postgres_false_for_other_processes():
    assert not watch.is_postgres(os.getpid())
    assert not watch.is_postgres(2**22 + 12345)  # beyond pid_max: no such process


# ---- step: crash or clean stop -------------------------------------------


@pytest.fixture
def postmaster(tmp_path):
    """A stand-in postmaster: a sleeping child process and its postmaster.pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pidfile = tmp_path / "postmaster.pid"
    pidfile.write_text("%d\n%s\n" % (proc.pid, tmp_path))
    yield proc, {"pidfile": str(pidfile), "url": "http://127.0.0.1:9/config", "authorization": None}
    proc.kill()
    proc.wait()


def _later(action, delay=0.2):
    thread = threading.Thread(target=lambda: (time.sleep(delay), action()))
    thread.start()
    return thread


def test_crash_wakes_patroni_once(postmaster):
    proc, conf = postmaster
    calls = []
    thread = _later(lambda: proc.send_signal(signal.SIGKILL))
    started = time.monotonic()
    assert watch.step(conf, None, alive=lambda pid: True, wakeup=calls.append) == proc.pid
    assert time.monotonic() - started < 5  # woken by the exit, not by a timeout
    thread.join()
    assert calls == [conf]
    # the dead postmaster's file stays until Patroni starts a new one: not reported again
    assert watch.step(conf, proc.pid, alive=lambda pid: True, wakeup=calls.append) == -1
    assert calls == [conf]


def test_clean_stop_wakes_nobody(postmaster):
    proc, conf = postmaster

    def stop():
        os.unlink(conf["pidfile"])  # what a clean shutdown does before the postmaster exits
        proc.terminate()

    calls = []
    thread = _later(stop)
    assert watch.step(conf, None, alive=lambda pid: True, wakeup=calls.append) is None
    thread.join()
    assert calls == []
    assert watch.step(conf, None, alive=lambda pid: True, wakeup=calls.append) == -1


def test_dead_postmaster_found_at_start_is_reported(postmaster):
    proc, conf = postmaster
    proc.kill()
    proc.wait()
    calls = []
    assert watch.step(conf, None, wakeup=calls.append) == proc.pid
    assert calls == [conf]


def test_new_postmaster_is_watched_after_a_crash(postmaster, tmp_path):
    proc, conf = postmaster
    newer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        open(conf["pidfile"], "w").write("%d\n" % newer.pid)
        calls = []
        thread = _later(newer.kill)
        assert watch.step(conf, proc.pid, alive=lambda pid: True, wakeup=calls.append) == newer.pid
        thread.join()
        assert calls == [conf]
    finally:
        newer.kill()
        newer.wait()


# ---- wake: the REST API call ---------------------------------------------


class _Patroni(http.server.BaseHTTPRequestHandler):
    status = 200
    seen: list = []

    def do_PATCH(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.path, self.headers.get("Authorization"), json.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def patroni_api():
    _Patroni.seen = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _Patroni)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_wake_sends_a_patch_that_changes_nothing(patroni_api):
    _Patroni.status = 200
    config = dict(PATRONI, restapi=dict(PATRONI["restapi"], connect_address="127.0.0.1:%d" % patroni_api.server_port))
    assert watch.wake(watch.settings(config)) is True
    assert _Patroni.seen == [("/config", watch.settings(config)["authorization"], {"pigpen_wakeup": None})]


def test_wake_reports_a_refusal(patroni_api, capsys):
    _Patroni.status = 401
    conf = {"pidfile": "-", "url": "http://127.0.0.1:%d/config" % patroni_api.server_port, "authorization": None}
    assert watch.wake(conf) is False
    assert len(_Patroni.seen) == 1  # a refusal is not retried
    assert "answered 401" in capsys.readouterr().err


def test_wake_gives_up_when_nobody_answers(capsys):
    conf = {"pidfile": "-", "url": "http://127.0.0.1:9/config", "authorization": None}
    assert watch.wake(conf, attempts=3, pause_s=0.01) is False
    assert "did not answer" in capsys.readouterr().err


# ----------------------------------------------------------- the watchdog


def _tasks(name):
    import yaml

    path = os.path.join(os.path.dirname(SCRIPT), os.pardir, "tasks", name)
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def test_watchdog_prepared_only_when_patroni_arms_it():
    """patroni_watchdog_mode automatic or required: the role loads the
    driver and gives /dev/watchdog to Patroni's user before Patroni starts;
    'off' (the default, containers) touches nothing."""
    main = _tasks("main.yml")
    names = [t["name"] for t in main]
    at = names.index("Prepare the watchdog Patroni arms while it leads")
    assert at < names.index("Run Patroni")
    assert main[at]["ansible.builtin.include_tasks"] == "watchdog.yml"
    assert main[at]["when"] == "__patroni_watchdog_mode in ['automatic', 'required']"
    steps = {t["name"]: t for t in _tasks("watchdog.yml")}
    udev = steps["Give the watchdog device to Patroni's user at every boot (udev)"]
    assert 'OWNER="{{ __patroni_dbsu }}"' in udev["ansible.builtin.copy"]["content"]
    assert (
        steps["Load the watchdog driver now and at every boot"]["community.general.modprobe"]["persistent"] == "present"
    )
    assert (
        "__patroni_watchdog_mode != 'required'"
        in steps["Refuse to run Patroni without the watchdog it requires"]["ansible.builtin.assert"]["that"][0]
    )


# --------------------------------------------------- the diverged replica

# Seen on a Molecule cluster after a node-crash: pg-test-1, a replica of
# the killed leader, had replayed the leader's last archived segment to
# 0/8000000 on timeline 4; the promoted pg-test-2 forked timeline 5 off at
# 0/713DE10 (118742544).
HISTORY = [
    [3, 118584272, "no recovery target specified", "2026-12-05T18:37:07+00:00", "pg-test-3"],
    [4, 118742544, "no recovery target specified", "2026-12-05T18:37:55+00:00", "pg-test-2"],
]


def _member(**over):
    member = {
        "state": "running",
        "role": "replica",
        "timeline": 4,
        "xlog": {"received_location": 118742544, "replayed_location": 134217728, "paused": False},
    }
    member.update(over)
    return member


@pytest.mark.parametrize(
    "member, expected",
    [
        (_member(), "replayed up to 0/8000000 on timeline 4, past 0/713DE10 where timeline 5 forked off"),
        # replayed exactly to the switch point: pg_rewind is not needed
        (_member(xlog={"replayed_location": 118742544}), None),
        (_member(xlog={"replayed_location": 118742543}), None),
        # already on the leader's timeline (no row for it yet)
        (_member(timeline=5), None),
        (_member(role="leader"), None),
        (_member(role="standby_leader"), None),
        (_member(state="starting"), None),
        (
            _member(state="streaming"),
            "replayed up to 0/8000000 on timeline 4, past 0/713DE10 where timeline 5 forked off",
        ),
        (_member(pause=True), None),  # maintenance mode: hands off
        (_member(timeline=True), None),
        (_member(timeline="4"), None),
        (_member(xlog={}), None),
        ({}, None),
    ],
)
def test_diverged_table(member, expected):
    assert watch.diverged(member, HISTORY) == expected


@pytest.mark.parametrize("history", [None, {}, "", [[4]], [["4", 1]], [[4, "0/713DE10"]]])
def test_diverged_ignores_a_history_it_cannot_read(history):
    assert watch.diverged(_member(), history) is None


@given(timeline=st.integers(1, 50), switch=st.integers(0, 2**64 - 1), replayed=st.integers(0, 2**64 - 1))
def test_diverged_exactly_when_replayed_past_the_switch_point(timeline, switch, replayed):
    member = _member(timeline=timeline, xlog={"replayed_location": replayed})
    reason = watch.diverged(member, [[timeline, switch, "", "", "x"]])
    assert (reason is not None) == (replayed > switch)
    # another timeline's row never decides
    assert watch.diverged(member, [[timeline + 1, switch, "", "", "x"]]) is None


def test_divergence_step_holds_then_backs_off():
    state = {}
    assert watch.divergence_step(state, "x", 0, hold=2, backoff_s=300) is False
    assert watch.divergence_step(state, "x", 10, hold=2, backoff_s=300) is True
    # diverged still (the restart did not help): not again before the backoff
    assert [watch.divergence_step(state, "x", t, hold=2, backoff_s=300) for t in (20, 30, 300)] == [False] * 3
    assert watch.divergence_step(state, "x", 310, hold=2, backoff_s=300) is True
    # a healthy check in between starts the count again
    state = {}
    assert [watch.divergence_step(state, r, t, hold=2) for t, r in enumerate(["x", None, "x", "x"])] == [
        False,
        False,
        False,
        True,
    ]


def test_check_divergence_asks_this_member_for_a_restart(capsys):
    calls = []

    def fetch(conf, path, method="GET", body=None, timeout=5):
        calls.append((path, method))
        return {"/patroni": _member(), "/history": HISTORY}.get(path, "restarted successfully")

    state = {}
    conf = watch.settings(PATRONI)
    assert watch.check_divergence(conf, state, 0, fetch=fetch)
    assert ("/restart", "POST") not in calls
    watch.check_divergence(conf, state, 10, fetch=fetch)
    assert calls.count(("/restart", "POST")) == 1
    assert "runs pg_rewind from the leader" in capsys.readouterr().err


def test_check_divergence_survives_an_unreachable_api():
    def fetch(conf, path, **_):
        raise OSError("connection refused")

    state = {"seen": 1}
    assert watch.check_divergence(watch.settings(PATRONI), state, 0, fetch=fetch) is None
    assert state["seen"] == 0


def test_call_talks_to_the_rest_api():
    """call() against a real HTTP server: JSON answers parsed, auth sent."""
    seen = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen["auth"] = self.headers.get("Authorization")
            seen["path"] = self.path
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"restarted successfully")

        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.end_headers()
            self.wfile.write(json.dumps(HISTORY).encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        conf = dict(watch.settings(PATRONI), api="http://127.0.0.1:%d" % server.server_port)
        assert watch.call(conf, "/history") == HISTORY
        assert watch.call(conf, "/restart", method="POST", body={}) == "restarted successfully"
        assert seen["path"] == "/restart" and seen["auth"].startswith("Basic ")
    finally:
        server.shutdown()
