# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/exporters/files/alert_recorder.py: Alertmanager's notifications as
JSON lines, over real HTTP on a loopback port. The payload is the shape of
Alertmanager 0.25's webhook (version 4)."""

from __future__ import annotations

import argparse
import json
import os
import threading
import urllib.error
import urllib.request

import pytest
import role_files

SCRIPT = role_files.path("exporters", "alert_recorder.py")


rec = role_files.load("exporters", "alert_recorder.py", register=True)

NOTIFICATION = {
    "version": "4",
    "groupKey": '{}/{}:{alertname="PgsqlNoLeader", cls="pg-test"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "pigpen-recorder",
    "groupLabels": {"alertname": "PgsqlNoLeader", "cls": "pg-test"},
    "commonLabels": {"alertname": "PgsqlNoLeader", "cls": "pg-test", "severity": "critical"},
    "commonAnnotations": {},
    "externalURL": "http://10.10.10.10:9093",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "PgsqlNoLeader", "cls": "pg-test", "severity": "critical"},
            "annotations": {},
            "startsAt": "2026-12-05T10:00:00.000Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "",
            "fingerprint": "0123456789abcdef",
        }
    ],
}


def test_record_line():
    line = rec.record_line(json.dumps(NOTIFICATION).encode(), 1796500000.12345)
    assert line.endswith("\n") and "\n" not in line[:-1]
    assert json.loads(line) == dict(NOTIFICATION, received_at=1796500000.123)
    for bad in (b"[1, 2]", b"not json", b'"text"'):
        with pytest.raises(ValueError):
            rec.record_line(bad, 0)


def test_rotation(tmp_path):
    path = str(tmp_path / "alerts.jsonl")
    recorder = rec.Recorder(path, max_bytes=30)
    recorder.append("a" * 20 + "\n")
    recorder.append("b" * 20 + "\n")  # would pass 30 bytes: the first moves to .1
    assert open(path).read() == "b" * 20 + "\n"
    assert open(path + ".1").read() == "a" * 20 + "\n"


@pytest.fixture
def server(tmp_path):
    path = str(tmp_path / "alerts.jsonl")
    recorder = rec.Recorder(path)
    httpd = rec.http.server.ThreadingHTTPServer(("127.0.0.1", 0), rec.make_handler(recorder, clock=lambda: 42.0))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % httpd.server_address[1], path
    httpd.shutdown()
    httpd.server_close()


def _post(url, body):
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status


def test_http_records_and_serves(server):
    url, path = server
    assert _post(url + "/", json.dumps(NOTIFICATION).encode()) == 200
    resolved = dict(NOTIFICATION, status="resolved")
    assert _post(url + "/any/path", json.dumps(resolved).encode()) == 200
    lines = [json.loads(line) for line in open(path)]
    assert [(r["status"], r["received_at"]) for r in lines] == [("firing", 42.0), ("resolved", 42.0)]
    with urllib.request.urlopen(url + "/alerts", timeout=5) as resp:
        assert resp.read().decode() == open(path).read()
    with urllib.request.urlopen(url + "/-/healthy", timeout=5) as resp:
        assert resp.read() == b"ok\n"


def test_http_refuses_what_is_not_a_notification(server):
    url, path = server
    with pytest.raises(urllib.error.HTTPError) as err:
        _post(url + "/", b"[]")
    assert err.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url + "/nothing", timeout=5)
    assert err.value.code == 404
    assert not os.path.exists(path)


def test_split_listen():
    assert rec.split_listen("10.10.10.10:9095") == ("10.10.10.10", 9095)
    assert rec.split_listen("[fd00::10]:9095") == ("fd00::10", 9095)
    for bad in ("10.10.10.10", ":9095", "host:port"):
        with pytest.raises(argparse.ArgumentTypeError):
            rec.split_listen(bad)
