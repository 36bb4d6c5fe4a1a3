# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/chaos/alerts.py: the alerts a fault raised and cleared, read from
the webhook recorder's JSON lines (notifications in Alertmanager 0.25's
webhook format, with the recorder's received_at), and their wiring into
run.py (off unless enabled). Times are hand-checked: the fault at
T = 1796500000 (Unix), the heal 40 s later."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tools", "chaos"))
import alerts  # noqa: E402
import run  # noqa: E402

T = 1796500000.0
HEAL = T + 40


def iso(t):
    """RFC 3339 with nanoseconds, as Alertmanager writes startsAt."""
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return "%s.%09dZ" % (stamp, round((t - int(t)) * 1e9))


def note(received, status, *alerts_, group="x"):
    """One notification: alerts are (name, labels, status, startsAt)."""
    return {
        "version": "4",
        "status": status,
        "receiver": "pigpen-recorder",
        "groupKey": group,
        "received_at": received,
        "alerts": [
            {
                "status": st,
                "labels": dict(labels, alertname=name),
                "startsAt": iso(starts),
                "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": "%s-%s" % (name, labels.get("ins", "")),
            }
            for name, labels, st, starts in alerts_
        ],
    }


def lines(*notes):
    return "".join(json.dumps(n) + "\n" for n in notes)


QUORUM = ("EtcdQuorumLost", {"cls": "etcd"})
DCS = ("PatroniDcsUnreachable", {"cls": "pg-test", "ins": "pg-test-1"})
OLD = ("PgsqlReplicationSlotInactive", {"cls": "pg-test", "ins": "pg-test-1"})


def test_parse_time():
    assert alerts.parse_time("2026-12-05T10:00:00Z") == 1796464800.0
    assert alerts.parse_time("2026-12-05T10:00:00.250000000Z") == 1796464800.25
    assert alerts.parse_time("2026-12-05T12:00:00+02:00") == 1796464800.0
    assert alerts.parse_time("0001-01-01T00:00:00Z") is None
    assert alerts.parse_time("yesterday") is None and alerts.parse_time(None) is None
    assert alerts.parse_time(iso(T + 0.5)) == T + 0.5


def test_read_lines_skips_torn_lines():
    text = lines(note(T, "firing")) + '{"version": "4", "alerts": [' + "\n" + "[1]\n"
    assert len(alerts.read_lines(text)) == 1
    assert alerts.read_lines("") == []


def test_raised_and_cleared_in_time():
    records = alerts.read_lines(
        lines(
            note(T - 100, "firing", OLD + ("firing", T - 400)),  # before the fault: not this one's
            note(T + 21.4, "firing", QUORUM + ("firing", T + 10)),
            note(T + 35, "firing", DCS + ("firing", T + 33)),  # allowed
            note(T + 62.5, "resolved", QUORUM + ("resolved", T + 10)),
        )
    )
    spec = alerts.normalize(
        {
            "raise": ["EtcdQuorumLost"],
            "clear": True,
            "within_s": 40,
            "clear_within_s": 60,
            "allow": ["PatroniDcsUnreachable"],
        }
    )
    result = alerts.evaluate(records, spec, T, HEAL)
    assert result == {
        "raised_s": {"EtcdQuorumLost": 21.4},
        "cleared_s": {"EtcdQuorumLost": 22.5},
        "unrelated": [],
        "failed": [],
    }
    assert alerts.summary(result) == ("EtcdQuorumLost raised 21.4 s, cleared 22.5 s",)


def test_late_missing_uncleared_and_unrelated_alerts_fail():
    records = alerts.read_lines(
        lines(
            note(T + 50, "firing", QUORUM + ("firing", T + 30)),  # 50 s > 40 s
            note(T + 20, "firing", DCS + ("firing", T + 15)),  # not expected, not allowed
        )
    )
    spec = alerts.normalize({"raise": ["EtcdQuorumLost", "NodeDown"], "within_s": 40})
    result = alerts.evaluate(records, spec, T, HEAL)
    assert result["raised_s"] == {"EtcdQuorumLost": 50.0, "NodeDown": None}
    assert result["failed"] == [
        "alert EtcdQuorumLost 50.0 > 40 (not raised in time)",
        "alert NodeDown None > 40 (not raised in time)",
        "unrelated alert PatroniDcsUnreachable fired",
    ]
    # raised in time but never resolved
    records = alerts.read_lines(lines(note(T + 20, "firing", QUORUM + ("firing", T + 10))))
    result = alerts.evaluate(records, alerts.normalize({"raise": ["EtcdQuorumLost"], "within_s": 40}), T, HEAL)
    assert result["failed"] == ["alert EtcdQuorumLost cleared None > 40"]
    # a resolved notification that came too long after the heal
    records = alerts.read_lines(
        lines(
            note(T + 20, "firing", QUORUM + ("firing", T + 10)),
            note(HEAL + 90, "resolved", QUORUM + ("resolved", T + 10)),
        )
    )
    result = alerts.evaluate(
        records, alerts.normalize({"raise": ["EtcdQuorumLost"], "within_s": 40, "clear_within_s": 60}), T, HEAL
    )
    assert result["cleared_s"] == {"EtcdQuorumLost": 90.0}
    assert result["failed"] == ["alert EtcdQuorumLost cleared 90.0 > 60"]


def test_labels_narrow_an_expected_alert_and_nothing_expected_means_nothing_may_fire():
    node1 = ("NodeDown", {"cls": "pg-test", "ins": "pg-test-1"}, "firing", T + 5)
    records = alerts.read_lines(lines(note(T + 80, "firing", node1)))
    spec = alerts.normalize(
        {"raise": [{"name": "NodeDown", "labels": {"ins": "pg-test-2"}}], "clear": False, "within_s": 120}
    )
    result = alerts.evaluate(records, spec, T, HEAL)
    assert result["raised_s"] == {"NodeDown{ins=pg-test-2}": None}
    spec = alerts.normalize(
        {"raise": [{"name": "NodeDown", "labels": {"ins": "pg-test-1"}}], "clear": False, "within_s": 120}
    )
    assert alerts.evaluate(records, spec, T, HEAL)["failed"] == []
    quiet = alerts.normalize({"raise": [], "within_s": 90})
    assert alerts.evaluate(records, quiet, T, HEAL)["failed"] == ["unrelated alert NodeDown fired"]
    assert alerts.evaluate([], quiet, T, HEAL)["failed"] == []
    # the configuration's allowed alerts count for every scenario
    assert alerts.evaluate(records, alerts.normalize({"raise": []}, allow=["NodeDown"]), T, HEAL)["failed"] == []


def test_firing_now():
    records = alerts.read_lines(
        lines(
            note(T, "firing", QUORUM + ("firing", T), DCS + ("firing", T)),
            note(T + 30, "resolved", QUORUM + ("resolved", T)),
        )
    )
    assert [e["name"] for e in alerts.firing(records)] == ["PatroniDcsUnreachable"]
    assert [e["name"] for e in alerts.firing(records, at=T + 10)] == ["EtcdQuorumLost", "PatroniDcsUnreachable"]
    assert alerts.firing(records, allow=["PatroniDcsUnreachable"]) == []


EXPORTER = ("PgsqlExporterDown", {"cls": "pg-test", "ins": "pg-test-1", "instance": "10.10.10.11:9854"})


def am(*alerts_):
    """Alertmanager's /api/v2/alerts: alerts are (name, labels, state)."""
    return json.dumps(
        [
            {"labels": dict(labels, alertname=name), "status": {"state": state, "inhibitedBy": [], "silencedBy": []}}
            for name, labels, state in alerts_
        ]
    )


def test_reconcile_with_alertmanager():
    # PgsqlExporterDown was received firing, then resolved while NodeDown
    # inhibited it: Alertmanager dropped it without a resolved notification
    records = alerts.read_lines(lines(note(T, "firing", EXPORTER + ("firing", T), DCS + ("firing", T))))
    left, stale = alerts.reconcile(records, alerts.read_active(am(DCS + ("active",))))
    assert [e["name"] for e in left] == ["PatroniDcsUnreachable"]
    assert [e["labels"]["instance"] for e in stale] == ["10.10.10.11:9854"]
    # nothing held: quiet, whatever the recorder last received
    assert alerts.reconcile(records, alerts.read_active("[]")) == ([], alerts.firing(records))
    # held but inhibited still fires; about to be notified (active, not yet
    # at the recorder) counts too; a suppressed one never notified does not
    left, stale = alerts.reconcile(
        records, alerts.read_active(am(EXPORTER + ("suppressed",), QUORUM + ("active",), OLD + ("suppressed",)))
    )
    assert [e["name"] for e in left] == ["EtcdQuorumLost", "PgsqlExporterDown"] and stale[0]["name"] == DCS[0]
    assert alerts.reconcile(records, alerts.read_active(am(QUORUM + ("active",))), allow=["EtcdQuorumLost"])[0] == []
    with pytest.raises(ValueError):
        alerts.read_active('{"error": "x"}')


def test_deadline():
    spec = alerts.normalize({"raise": ["X"], "within_s": 40, "clear_within_s": 60})
    assert alerts.deadline(spec, T, HEAL) == HEAL + 60
    assert alerts.deadline(alerts.normalize({"raise": [], "within_s": 90, "clear": False}), T, HEAL) == T + 90


@pytest.mark.parametrize(
    "spec, problem",
    [
        ([], "scenarios.s.alerts: [] is not a mapping"),
        ({"raise": "X"}, "scenarios.s.alerts.raise: 'X' is not a list of alert names"),
        ({"raise": [{"alert": "X"}]}, "scenarios.s.alerts.raise[0]: {'alert': 'X'}: write an alert name"),
        ({"raise": [], "within_s": 0}, "scenarios.s.alerts.within_s: 0: write a number of seconds"),
        ({"raise": [], "clear": "yes"}, "scenarios.s.alerts.clear: 'yes': write true or false"),
        ({"raise": [], "alow": []}, "scenarios.s.alerts.alow: unknown key: use allow, clear, clear_within_s"),
    ],
)
def test_check_spec(spec, problem):
    problems = alerts.check_spec(spec, "scenarios.s.alerts")
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_check_conf():
    assert alerts.check_conf(None) == [] and alerts.check_conf({"enabled": False}) == []
    assert alerts.check_conf({"enabled": True}) == [
        "alerts.record: the command that prints the webhook recorder's file is missing"
    ]
    assert alerts.check_conf({"enabled": "yes", "pol_s": 1, "record": "cat x"}) == [
        "alerts.pol_s: unknown key: use active, allow, enabled, poll_s, quiet_timeout_s, record",
        "alerts.enabled: 'yes': write true or false",
    ]


# --------------------------------------------------------------- run.py


def test_run_checks_alerts_only_when_enabled():
    sc = {"alerts": {"raise": ["EtcdQuorumLost"], "within_s": 40}}
    assert run.alert_checking({}, sc) is None
    assert run.alert_checking({"alerts": {"enabled": False, "record": "true"}}, sc) is None
    assert run.alert_checking({"alerts": {"enabled": True, "record": "true"}}, {}) is None
    spec = run.alert_checking({"alerts": {"enabled": True, "record": "true", "allow": ["Watchdog"]}}, sc)
    assert spec["raise"] == [{"name": "EtcdQuorumLost", "labels": {}}] and spec["allow"] == ["Watchdog"]


def test_run_config_checks_the_alerts():
    conf = {
        "clients": {"w": {"kind": "write", "dsn": "host=a"}},
        "alerts": {"enabled": True},
        "scenarios": {"s": {"inject": ["true"], "alerts": {"raise": "X"}}},
    }
    assert run.check_config(conf) == [
        "alerts.record: the command that prints the webhook recorder's file is missing",
        "scenarios.s.alerts.raise: 'X' is not a list of alert names",
    ]


def test_run_reads_the_record_and_waits_until_quiet(tmp_path, monkeypatch):
    record = tmp_path / "alerts.jsonl"
    conf = {"alerts": {"enabled": True, "record": "cat %s" % record, "quiet_timeout_s": 1, "poll_s": 0.1}}
    record.write_text(lines(note(T, "firing", QUORUM + ("firing", T))))
    assert [r["received_at"] for r in run.read_alert_records(conf)] == [T]
    spec = alerts.normalize({"raise": []})
    with pytest.raises(SystemExit, match="alerts still firing before the fault after 1 s: EtcdQuorumLost"):
        run.wait_quiet(conf, spec, "etcd-loss")
    record.write_text(
        lines(note(T, "firing", QUORUM + ("firing", T)), note(T + 30, "resolved", QUORUM + ("resolved", T)))
    )
    run.wait_quiet(conf, spec, "etcd-loss")
    with pytest.raises(SystemExit, match="failed"):
        run.read_alert_records({"alerts": {"record": "exit 3"}})
    # after the run: evaluated at once when the deadline has passed (a fault
    # a million seconds ago), after a sleep until it otherwise
    past = T - 1e6
    record.write_text(
        lines(
            note(past + 10, "firing", QUORUM + ("firing", past)),
            note(past + 30, "resolved", QUORUM + ("resolved", past)),
        )
    )
    slept = []
    real_sleep = run.time.sleep  # subprocess polls with short sleeps of its own
    monkeypatch.setattr(run.time, "sleep", lambda s: slept.append(s) if s > 1 else real_sleep(s))
    result = run.check_alerts(conf, alerts.normalize({"raise": ["EtcdQuorumLost"], "within_s": 40}), past, past + 5)
    # cleared 20 s after it was raised (later than the heal)
    assert result["raised_s"] == {"EtcdQuorumLost": 10.0} and result["cleared_s"] == {"EtcdQuorumLost": 20.0}
    assert slept == []
    now = run.time.time()
    run.check_alerts(conf, alerts.normalize({"raise": [], "within_s": 30}), now, now)
    assert len(slept) == 1 and 29 < slept[0] <= 30


def test_run_waits_for_alertmanager_not_for_a_stale_recorder(tmp_path):
    record, active = tmp_path / "alerts.jsonl", tmp_path / "active.json"
    conf = {
        "alerts": {
            "enabled": True,
            "record": "cat %s" % record,
            "active": "cat %s" % active,
            "quiet_timeout_s": 1,
            "poll_s": 0.1,
        }
    }
    record.write_text(lines(note(T, "firing", EXPORTER + ("firing", T))))
    spec = alerts.normalize({"raise": []})
    active.write_text(am(EXPORTER + ("suppressed",)))
    with pytest.raises(SystemExit, match="alerts still firing before the fault after 1 s: PgsqlExporterDown"):
        run.wait_quiet(conf, spec, "node-crash")
    active.write_text("[]")  # resolved in Alertmanager, no resolved notification
    run.wait_quiet(conf, spec, "node-crash")
    active.write_text("not json")
    with pytest.raises(SystemExit, match="not a JSON list"):
        run.wait_quiet(conf, spec, "node-crash")


def test_the_sandbox_declares_alerts_for_every_scenario_and_keeps_them_off():
    import yaml

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tools", "chaos")
    with open(os.path.join(here, "sandbox.yml"), encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    assert raw["alerts"]["enabled"] is False
    assert "/api/v2/alerts" in raw["alerts"]["active"] and alerts.check_conf(raw["alerts"]) == []
    for name, sc in raw["scenarios"].items():
        assert alerts.check_spec(sc.get("alerts"), name) == [], name
    # every alert named is one the rules define
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__))))
    import inv
    from ansible_collections.pigpen.pgsql.plugins.module_utils import alerting, validate
    from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod

    hostvars, groups = inv.sandbox()
    defined = set(alerting.alert_names(alerting.alert_rules(validate.require(model_mod.load(hostvars, groups)))))
    named = {
        a if isinstance(a, str) else a["name"]
        for sc in raw["scenarios"].values()
        for key in ("raise", "allow")
        for a in sc["alerts"].get(key, [])
    }
    assert named and named <= defined, sorted(named - defined)
