# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/exporters/files/pgbackrest_exporter.py: pgBackRest JSON -> metrics.

The fixtures are real ``pgbackrest info --output=json`` output of pgBackRest
2.45 (Debian 12): a stanza with one full, one incremental and one
differential backup; a stanza that exists but has no backup yet; a stanza
that was never created. Expected values were read off the JSON by hand.
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.request

import pytest
import role_files

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = role_files.path("exporters", "pgbackrest_exporter.py")
FIXTURES = os.path.join(HERE, "fixtures")


exp = role_files.load("exporters", "pgbackrest_exporter.py", register=True)


def fixture(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as fh:
        return fh.read()


BACKUPS = fixture("pgbackrest-2.45-info-backups.json")
NOBACKUP = fixture("pgbackrest-2.45-info-nobackup.json")
MISSING = fixture("pgbackrest-2.45-info-missing.json")

# one sample line: name{labels} value
LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
    r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*)\})?'
    r' (?P<value>-?[0-9.e+]+|NaN)$'
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """{(name, frozenset(labels)): value}; asserts the text is well formed."""
    assert text.endswith("\n")
    out = {}
    declared = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind == "gauge"
            assert name not in declared, "TYPE twice for %s" % name
            declared.add(name)
            continue
        m = LINE.match(line)
        assert m, "malformed line: %r" % line
        assert m.group("name") in declared, "sample before its TYPE: %r" % line
        labels = frozenset(LABEL.findall(m.group("labels") or ""))
        key = (m.group("name"), labels)
        assert key not in out, "duplicate series %r" % (key,)
        out[key] = float(m.group("value"))
    return out


def value(series, name, **labels):
    return series[(name, frozenset(labels.items()))]


# ---------------------------------------------------------------- fixtures


def test_three_backups():
    series = parse(exp.metrics_from_info(BACKUPS, duration=0.25, finished=1795308000.7))
    assert value(series, "pgbackrest_scrape_ok") == 1
    assert value(series, "pgbackrest_scrape_duration_seconds") == 0.25
    assert value(series, "pgbackrest_scrape_last_time_seconds") == 1795308000
    assert value(series, "pgbackrest_stanza_status", stanza="pg-sample") == 0
    assert value(series, "pgbackrest_stanza_backup_running", stanza="pg-sample") == 0
    assert value(series, "pgbackrest_repo_status", stanza="pg-sample", repo="1") == 0
    for btype in ("full", "diff", "incr"):
        assert value(series, "pgbackrest_backup_count", stanza="pg-sample", type=btype) == 1
    full = dict(stanza="pg-sample", type="full")
    assert value(series, "pgbackrest_backup_last_time_seconds", **full) == 1795307904
    assert value(series, "pgbackrest_backup_last_duration_seconds", **full) == 2
    assert value(series, "pgbackrest_backup_last_size_bytes", **full) == 22992569
    assert value(series, "pgbackrest_backup_last_delta_bytes", **full) == 22992569
    assert value(series, "pgbackrest_backup_last_repo_size_bytes", **full) == 2823159
    assert value(series, "pgbackrest_backup_last_repo_delta_bytes", **full) == 2823159
    assert value(series, "pgbackrest_backup_last_error", **full) == 0
    incr = dict(stanza="pg-sample", type="incr")
    assert value(series, "pgbackrest_backup_last_time_seconds", **incr) == 1795307907
    assert value(series, "pgbackrest_backup_last_size_bytes", **incr) == 26621625
    assert value(series, "pgbackrest_backup_last_repo_delta_bytes", **incr) == 463264
    diff = dict(stanza="pg-sample", type="diff")
    assert value(series, "pgbackrest_backup_last_time_seconds", **diff) == 1795307909
    assert value(series, "pgbackrest_backup_last_duration_seconds", **diff) == 1
    assert value(series, "pgbackrest_backup_last_repo_size_bytes", **diff) == 3133321


def test_stanza_without_backup():
    series = parse(exp.metrics_from_info(NOBACKUP))
    assert value(series, "pgbackrest_scrape_ok") == 1
    assert value(series, "pgbackrest_stanza_status", stanza="pg-sample") == 2
    assert value(series, "pgbackrest_repo_status", stanza="pg-sample", repo="1") == 2
    for btype in ("full", "diff", "incr"):
        assert value(series, "pgbackrest_backup_count", stanza="pg-sample", type=btype) == 0
    assert not any(name.startswith("pgbackrest_backup_last_") for name, _ in series)


def test_missing_stanza():
    series = parse(exp.metrics_from_info(MISSING))
    assert value(series, "pgbackrest_scrape_ok") == 1
    assert value(series, "pgbackrest_stanza_status", stanza="pg-nothere") == 1
    assert value(series, "pgbackrest_backup_count", stanza="pg-nothere", type="full") == 0


def test_newest_backup_of_a_type_wins():
    data = json.loads(BACKUPS)
    older = json.loads(json.dumps(data[0]["backup"][0]))
    older["timestamp"] = {"start": 100, "stop": 160}
    older["info"]["size"] = 1
    # listed after the newer one: order in the list must not matter
    data[0]["backup"].append(older)
    series = parse(exp.metrics_from_info(json.dumps(data)))
    full = dict(stanza="pg-sample", type="full")
    assert value(series, "pgbackrest_backup_count", **full) == 2
    assert value(series, "pgbackrest_backup_last_time_seconds", **full) == 1795307904
    assert value(series, "pgbackrest_backup_last_size_bytes", **full) == 22992569


def test_running_backup_and_error_flag():
    data = json.loads(BACKUPS)
    data[0]["status"]["lock"]["backup"]["held"] = True
    data[0]["backup"][2]["error"] = True
    series = parse(exp.metrics_from_info(json.dumps(data)))
    assert value(series, "pgbackrest_stanza_backup_running", stanza="pg-sample") == 1
    assert value(series, "pgbackrest_backup_last_error", stanza="pg-sample", type="diff") == 1
    assert value(series, "pgbackrest_backup_last_error", stanza="pg-sample", type="full") == 0


def test_several_stanzas_are_sorted_and_deterministic():
    one = json.loads(BACKUPS)[0]
    two = json.loads(MISSING)[0]
    text_a = exp.metrics_from_info(json.dumps([one, two]))
    text_b = exp.metrics_from_info(json.dumps([two, one]))
    assert text_a == text_b
    series = parse(text_a)
    assert value(series, "pgbackrest_stanza_status", stanza="pg-nothere") == 1
    assert value(series, "pgbackrest_stanza_status", stanza="pg-sample") == 0


def test_no_stanza_configured():
    series = parse(exp.metrics_from_info("[]"))
    assert series == {("pgbackrest_scrape_ok", frozenset()): 1}


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize(
    "raw",
    [
        None,  # the command failed
        "",  # nothing printed
        "not json",
        '{"name": "pg-test"}',  # an object, not a list
        '[{"status": {}}]',  # a stanza without a name
        '[1, 2]',
    ],
)
def test_bad_output_reports_scrape_failure_only(raw):
    series = parse(exp.metrics_from_info(raw, duration=1.5))
    assert series == {
        ("pgbackrest_scrape_ok", frozenset()): 0,
        ("pgbackrest_scrape_duration_seconds", frozenset()): 1.5,
    }


def test_unknown_status_code_is_99():
    data = json.loads(MISSING)
    del data[0]["status"]["code"]
    series = parse(exp.metrics_from_info(json.dumps(data)))
    assert value(series, "pgbackrest_stanza_status", stanza="pg-nothere") == 99


# --------------------------------------------------------------- exposition


def test_label_values_are_escaped():
    text = exp.exposition([("pgbackrest_stanza_status", {"stanza": 'a"b\\c\nd'}, 0.0)])
    assert 'pgbackrest_stanza_status{stanza="a\\"b\\\\c\\nd"} 0' in text.splitlines()
    parse(text)


def test_values_are_formatted_plainly():
    assert exp._format_value(3.0) == "3"
    assert exp._format_value(0.125) == "0.125"
    assert exp._format_value(float("nan")) == "NaN"


def test_unknown_metric_is_refused():
    with pytest.raises(KeyError):
        exp.exposition([("pgbackrest_nope", {}, 1.0)])


def test_every_metric_has_help_and_type():
    text = exp.metrics_from_info(BACKUPS, duration=1, finished=2)
    for name in exp.METRICS:
        assert "# TYPE %s gauge" % name in text
        assert "# HELP %s " % name in text


# ------------------------------------------------------------------ service


def test_command_line():
    args = exp.parse_args(["--stanza", "pg-test", "--config", "/etc/pgbackrest/pgbackrest.conf"])
    assert exp.command_of(args) == [
        "pgbackrest",
        "--config=/etc/pgbackrest/pgbackrest.conf",
        "--stanza=pg-test",
        "--output=json",
        "info",
    ]
    assert args.listen == ":9854" and args.interval == 120
    with pytest.raises(SystemExit):
        exp.parse_args(["--interval", "0"])


def test_collector_runs_the_command_and_serves_metrics(tmp_path):
    sample = tmp_path / "info.json"
    sample.write_text(BACKUPS, encoding="utf-8")
    collector = exp.Collector(["cat", str(sample)], timeout=10)
    assert parse(collector.text)[("pgbackrest_scrape_ok", frozenset())] == 0
    collector.refresh()

    server = exp.http.server.ThreadingHTTPServer(("127.0.0.1", 0), exp.make_handler(collector))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d" % server.server_address[1]
        with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            series = parse(resp.read().decode("utf-8"))
        assert value(series, "pgbackrest_scrape_ok") == 1
        assert value(series, "pgbackrest_backup_count", stanza="pg-sample", type="full") == 1
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + "/nothing", timeout=5)
        assert err.value.code == 404
    finally:
        server.shutdown()
        server.server_close()


def test_collector_failing_command(tmp_path):
    collector = exp.Collector(["false"], timeout=10)
    collector.refresh()
    series = parse(collector.text)
    assert value(series, "pgbackrest_scrape_ok") == 0
    missing = exp.Collector([str(tmp_path / "no-such-program")], timeout=10)
    missing.refresh()
    assert value(parse(missing.text), "pgbackrest_scrape_ok") == 0


def test_collector_timeout():
    collector = exp.Collector(["sleep", "5"], timeout=0.2)
    collector.refresh()
    assert value(parse(collector.text), "pgbackrest_scrape_ok") == 0


def test_background_loop_stops():
    calls = []
    refreshed = threading.Event()
    collector = exp.Collector(["true"], timeout=5)

    def refresh():
        calls.append(1)
        refreshed.set()

    collector.refresh = refresh
    stop = threading.Event()
    worker = threading.Thread(target=collector.run_forever, args=(60, stop), daemon=True)
    worker.start()
    assert refreshed.wait(timeout=5)
    stop.set()
    worker.join(timeout=5)
    assert not worker.is_alive()
    assert len(calls) == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        (":9854", ("", 9854)),
        ("10.10.10.11:9854", ("10.10.10.11", 9854)),
        ("[fd00::11]:9854", ("fd00::11", 9854)),
    ],
)
def test_listen_address(text, expected):
    """The role gives the node's address (exporters_listen_address), IPv6 in
    brackets."""
    assert exp.listen_address(text) == expected
