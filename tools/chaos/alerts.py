# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Alerts as proof of a fault: what the webhook recorder received.

The infra node's webhook recorder (roles/exporters/files/alert_recorder.py)
appends every notification Alertmanager sends it, firing and resolved, as
one JSON line with ``received_at`` (Unix time). A scenario of the fault
suite declares the alerts its fault must raise::

    alerts: {raise: [PgsqlNoLeader, {name: NodeDown, labels: {ins: pg-test-1}}],
             clear: true, within_s: 120, clear_within_s: 90, allow: [PatroniDown]}

and :func:`evaluate` says, from the recorded lines, whether each was
received (firing) within ``within_s`` seconds of the fault, whether each
was received resolved within ``clear_within_s`` (default ``within_s``) of
the heal, and which other alerts started during the scenario
(``unrelated``: neither raised nor allowed, by the scenario or the
configuration). ``raise: []`` proves that a fault that heals by itself
pages nobody. Everything here is pure; run.py reads the file (the
configuration's ``alerts.record`` command prints it), waits until
:func:`deadline` and evaluates. Before a fault it waits for quiet: with the configuration's
``alerts.active`` (a command that prints Alertmanager's ``/api/v2/alerts``)
Alertmanager is the source of truth (:func:`reconcile`), since an alert
that resolves while inhibited or silenced never reaches the recorder as
resolved; without it, the recorder's last notification of each alert.

Times are compared across machines (the recorder's clock, the runner's):
they must agree (the sandbox's containers share the host's clock; NTP
elsewhere).
"""

from __future__ import annotations

import calendar
import json
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

SPEC_KEYS = {"raise", "clear", "within_s", "clear_within_s", "allow"}
CONF_KEYS = {"enabled", "record", "active", "allow", "quiet_timeout_s", "poll_s"}

_TIME = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def parse_time(text: Any) -> Optional[float]:
    """Unix time of an RFC 3339 timestamp as Alertmanager writes them
    (``2026-12-05T10:00:00.123456789Z``, nanoseconds allowed); None for
    anything else, and for Go's zero time (``0001-01-01T00:00:00Z``)."""
    match = _TIME.match(text) if isinstance(text, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second, frac, zone = match.groups()
    if int(year) < 1970:
        return None
    value: float = calendar.timegm((int(year), int(month), int(day), int(hour), int(minute), int(second)))
    if frac:
        value += int(frac[:9].ljust(9, "0")) / 1e9
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        value -= sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    return value


def read_lines(text: str) -> List[Dict[str, Any]]:
    """The notifications of the recorder's file (JSON lines); a line that is
    not a JSON object (a torn last line) is skipped."""
    out = []
    for line in (text or "").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def events(records: Iterable[Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """One event per alert of every notification, in the order received:
    ``{received_at, status, name, labels, starts_at, fingerprint}``."""
    out = []
    for record in records:
        received = record.get("received_at")
        if not isinstance(received, (int, float)):
            continue
        for alert in record.get("alerts") or []:
            if not isinstance(alert, dict):
                continue
            labels = alert.get("labels")
            if not isinstance(labels, dict):
                labels = {}
            out.append(
                {
                    "received_at": float(received),
                    "status": alert.get("status") or record.get("status"),
                    "name": labels.get("alertname", ""),
                    "labels": labels,
                    "starts_at": parse_time(alert.get("startsAt")),
                    "fingerprint": alert.get("fingerprint") or json.dumps(labels, sort_keys=True),
                }
            )
    return sorted(out, key=lambda e: e["received_at"])


def _want(item: Any) -> Dict[str, Any]:
    if isinstance(item, str):
        return {"name": item, "labels": {}}
    return {"name": item["name"], "labels": dict(item.get("labels") or {})}


def normalize(spec: Mapping[str, Any], allow: Sequence[str] = ()) -> Dict[str, Any]:
    """A scenario's ``alerts`` with its defaults; ``allow`` adds the
    configuration's allowed alerts."""
    within = float(spec.get("within_s", 120))
    return {
        "raise": [_want(item) for item in spec.get("raise") or []],
        "clear": bool(spec.get("clear", True)),
        "within_s": within,
        "clear_within_s": float(spec.get("clear_within_s", within)),
        "allow": sorted(set(spec.get("allow") or []) | set(allow)),
    }


def check_spec(spec: Any, where: str) -> List[str]:
    """Problems with a scenario's ``alerts``, each saying what to write."""
    if not isinstance(spec, dict):
        return ["%s: %r is not a mapping: write {raise: [AlertName, ...], clear: true, within_s: 120}" % (where, spec)]
    out = [
        "%s.%s: unknown key: use %s" % (where, key, ", ".join(sorted(SPEC_KEYS)))
        for key in sorted(set(spec) - SPEC_KEYS)
    ]
    items = spec.get("raise", [])
    if not isinstance(items, list):
        out.append("%s.raise: %r is not a list of alert names" % (where, items))
        items = []
    for i, item in enumerate(items):
        ok = (
            isinstance(item, str)
            and item
            or (
                isinstance(item, dict)
                and isinstance(item.get("name"), str)
                and item["name"]
                and set(item) <= {"name", "labels"}
                and isinstance(item.get("labels", {}), dict)
            )
        )
        if not ok:
            out.append(
                "%s.raise[%d]: %r: write an alert name or {name: AlertName, labels: {ins: ...}}" % (where, i, item)
            )
    for key in ("within_s", "clear_within_s"):
        value = spec.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            out.append("%s.%s: %r: write a number of seconds above 0" % (where, key, value))
    if "clear" in spec and not isinstance(spec["clear"], bool):
        out.append("%s.clear: %r: write true or false" % (where, spec["clear"]))
    allow = spec.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        out.append("%s.allow: %r: write a list of alert names" % (where, allow))
    return out


def check_conf(conf: Any) -> List[str]:
    """Problems with the configuration's ``alerts`` (off, or where to read
    the recorder's file)."""
    if conf is None:
        return []
    if not isinstance(conf, dict):
        return [
            "alerts: %r is not a mapping: write {enabled: false, record: 'command that prints the "
            "recorder file'}" % (conf,)
        ]
    out = [
        "alerts.%s: unknown key: use %s" % (key, ", ".join(sorted(CONF_KEYS))) for key in sorted(set(conf) - CONF_KEYS)
    ]
    if not isinstance(conf.get("enabled", False), bool):
        out.append("alerts.enabled: %r: write true or false" % (conf.get("enabled"),))
    if conf.get("enabled") and not (isinstance(conf.get("record"), str) and conf["record"].strip()):
        out.append("alerts.record: the command that prints the webhook recorder's file is missing")
    if "active" in conf and not (isinstance(conf["active"], str) and conf["active"].strip()):
        out.append("alerts.active: %r: write the command that prints Alertmanager's /api/v2/alerts" % (conf["active"],))
    allow = conf.get("allow", [])
    if not isinstance(allow, list) or not all(isinstance(a, str) for a in allow):
        out.append("alerts.allow: %r: write a list of alert names" % (allow,))
    for key in ("quiet_timeout_s", "poll_s"):
        value = conf.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            out.append("alerts.%s: %r: write a number of seconds above 0" % (key, value))
    return out


def _matches(event: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    return event["name"] == want["name"] and all(event["labels"].get(k) == str(v) for k, v in want["labels"].items())


def firing(
    records: Iterable[Mapping[str, Any]], at: Optional[float] = None, allow: Sequence[str] = ()
) -> List[Dict[str, Any]]:
    """The alerts whose last notification received (up to ``at``) says
    firing, leaving out ``allow``; sorted by name."""
    last: Dict[str, Dict[str, Any]] = {}
    for event in events(records):
        if at is not None and event["received_at"] > at:
            break
        last[event["fingerprint"]] = event
    return sorted(
        (e for e in last.values() if e["status"] == "firing" and e["name"] not in allow),
        key=lambda e: (e["name"], sorted(e["labels"].items())),
    )


def read_active(text: str) -> List[Dict[str, Any]]:
    """The alerts Alertmanager holds, from its ``GET /api/v2/alerts``
    (a JSON list; resolved alerts are not in it): ``{name, labels,
    state}``, ``state`` being ``active`` (notified, or about to be) or
    ``suppressed`` (inhibited or silenced: no notification is sent, not
    even the resolved one). Raises ValueError when ``text`` is not such a
    list."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError):
        data = None
    if not isinstance(data, list):
        raise ValueError("not a JSON list of alerts (Alertmanager's /api/v2/alerts)")
    out = []
    for alert in data:
        labels = alert.get("labels") if isinstance(alert, dict) else None
        if not isinstance(labels, dict):
            continue
        status = alert.get("status") if isinstance(alert.get("status"), dict) else {}
        out.append({"name": labels.get("alertname", ""), "labels": labels, "state": status.get("state") or "active"})
    return out


def _key(labels: Mapping[str, Any]) -> str:
    return json.dumps(dict(labels), sort_keys=True)


def reconcile(
    records: Iterable[Mapping[str, Any]], active: Sequence[Mapping[str, Any]], allow: Sequence[str] = ()
) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """What keeps a scenario from starting, with Alertmanager (``active``,
    :func:`read_active`) as the source of truth: ``(left, stale)``.

    ``left``: the alerts the recorder last received firing that
    Alertmanager still holds, and the ones Alertmanager is about to notify
    (state ``active``) that the recorder has not received firing yet.
    ``stale``: the alerts the recorder last received firing that
    Alertmanager no longer holds: they resolved while muted (a firing
    NodeDown inhibits the other alerts of its node: Alertmanager sends no
    resolved notification of an alert that resolves while inhibited or
    silenced, prometheus/alertmanager#2754), or the notification was lost.
    The recorder never hears of their end: they must not keep the suite
    waiting. Alerts are matched by their labels; ``allow`` is left out."""
    held = {_key(a["labels"]) for a in active}
    recorded = firing(records, allow=allow)
    seen = {_key(e["labels"]) for e in recorded}
    left = [e for e in recorded if _key(e["labels"]) in held]
    left += [
        dict(a, status="firing")
        for a in active
        if a["state"] == "active" and a["name"] not in allow and _key(a["labels"]) not in seen
    ]
    stale = [e for e in recorded if _key(e["labels"]) not in held]
    return sorted(left, key=lambda e: (e["name"], sorted(e["labels"].items()))), stale


def _label(want: Mapping[str, Any]) -> str:
    if not want["labels"]:
        return want["name"]
    return "%s{%s}" % (want["name"], ",".join("%s=%s" % kv for kv in sorted(want["labels"].items())))


def evaluate(
    records: Iterable[Mapping[str, Any]], spec: Mapping[str, Any], t_fault: float, t_heal: float
) -> Dict[str, Any]:
    """What the recorder shows of a scenario whose fault began at
    ``t_fault`` and was healed at ``t_heal`` (Unix times), for a
    :func:`normalize`-d ``spec``:

    - ``raised_s``: per expected alert, seconds from the fault to the first
      firing notification of it received after the fault (None: none);
    - ``cleared_s``: per raised alert, seconds from the heal (or from its
      raising, when later) to the first resolved notification after it;
    - ``unrelated``: the alerts, neither expected nor allowed, that started
      firing at or after the fault (their ``startsAt``; an alert firing
      since before the fault is not this fault's);
    - ``failed``: one line per miss, in the words of run.py's targets.
    """
    evs = [e for e in events(records) if e["received_at"] >= t_fault]
    raised: Dict[str, Optional[float]] = {}
    cleared: Dict[str, Optional[float]] = {}
    failed: List[str] = []
    for want in spec["raise"]:
        label = _label(want)
        first = next((e for e in evs if e["status"] == "firing" and _matches(e, want)), None)
        raised[label] = round(first["received_at"] - t_fault, 1) if first else None
        if first is None or raised[label] > spec["within_s"]:
            failed.append("alert %s %s > %g (not raised in time)" % (label, raised[label], spec["within_s"]))
            continue
        if not spec["clear"]:
            continue
        since = max(t_heal, first["received_at"])
        done = next(
            (
                e
                for e in evs
                if e["status"] == "resolved" and _matches(e, want) and e["received_at"] >= first["received_at"]
            ),
            None,
        )
        cleared[label] = round(done["received_at"] - since, 1) if done else None
        if done is None or cleared[label] > spec["clear_within_s"]:
            failed.append("alert %s cleared %s > %g" % (label, cleared[label], spec["clear_within_s"]))
    expected = {w["name"] for w in spec["raise"]}
    unrelated = sorted(
        {
            e["name"]
            for e in evs
            if e["status"] == "firing"
            and e["name"] not in expected
            and e["name"] not in spec["allow"]
            and (e["starts_at"] is None or e["starts_at"] >= t_fault - 1)
        }
    )
    failed.extend("unrelated alert %s fired" % name for name in unrelated)
    return {"raised_s": raised, "cleared_s": cleared, "unrelated": unrelated, "failed": failed}


def deadline(spec: Mapping[str, Any], t_fault: float, t_heal: float) -> float:
    """When to read the recorder's file: the last moment an expected alert
    may still be raised or cleared in time. Waiting until then also gives an
    alert that should not fire the time to (``raise: []`` waits its
    ``within_s`` from the fault)."""
    return max(t_fault + spec["within_s"], t_heal + spec["clear_within_s"] if spec["clear"] else 0.0)


def summary(result: Mapping[str, Any]) -> Tuple[str, ...]:
    """Short words for the log: raised and cleared times, unrelated alerts."""
    return tuple(
        "%s raised %s s%s"
        % (name, value, "" if name not in result["cleared_s"] else ", cleared %s s" % result["cleared_s"][name])
        for name, value in result["raised_s"].items()
    ) + tuple("unrelated %s" % name for name in result["unrelated"])
