# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Prometheus alerting and recording rules from the cluster model, and the
Alertmanager configuration.

Pure Python (no Ansible). The exporters role renders what
:func:`alert_rules` returns into one rule file per component group
(``templates/rules.yml.j2`` loops over it) and what
:func:`alertmanager_config` returns into ``alertmanager.yml``.

Thresholds that the model determines are computed here, per cluster:

- replica lag: the plan's ``maximum_lag_on_failover`` (``pg_rpo``, or
  1 MiB in synchronous mode): a replica further behind is no longer a
  failover candidate;
- how long a cluster may have no leader, an instance or a service may be
  down: the plan's ``bound_s`` (the worst-case failover of ``pg_rto``);
- how long Patroni may go without the DCS: the plan's ``ttl``;
- members expected running: the cluster's members in the inventory;
- the age of the newest backup (any type, and full): the longest gap of
  the backup entries of ``pg_crontab`` (:mod:`cron`) plus a grace;
- services that must have a server: those whose selectors pick a member
  (a single-node cluster's ``offline`` service picks none);
- etcd quorum: a majority of the inventory's etcd members; fsync latency:
  half the election timeout (warning) and the election timeout (critical).

The live settings of each instance bound the rest: connections against
``max_connections - superuser_reserved_connections``, a slot's retained WAL
against ``max_wal_size`` (both computed by the model's tuning, read back
from ``pg_settings``); XID and multixact ages against PostgreSQL's 2^31
limit.

A rule whose threshold differs between clusters is written once per
distinct value: the largest group of clusters (or of services) gets a
negative matcher naming every other one, so that a cluster the rules do not
know yet still gets the common value; the others get a positive matcher.

Every metric name used here is one the deployed exporters emit
(docs/monitoring.md lists them with their source); the unit tests check the
names against the recorded metric lists of each exporter.
"""

from __future__ import annotations

import math
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    cron,
    etcd_tls,
    ha as ha_mod,
    services as svc_mod,
    tuning as tuning_mod,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Cluster,
    Inventory,
    is_int,
)

#: Tunables of the rules (``exporters_alert_settings`` overrides them):
#: name -> (default, kind, what it is). Durations are seconds.
TUNABLES: Dict[str, Tuple[Any, str, str]] = {
    "exporter_down_for": (
        60,
        "seconds",
        "how long a scrape target (exporter, Patroni, HAProxy, etcd, node) may be down",
    ),
    "connections_ratio": (0.9, "ratio", "share of max_connections - superuser_reserved_connections in use"),
    "connections_for": (300, "seconds", "how long connections may stay above the ratio"),
    "pgbouncer_waiting_for": (60, "seconds", "how long pgbouncer clients may keep waiting for a server"),
    "slot_inactive_for": (300, "seconds", "how long a replication slot may stay inactive"),
    "lag_for": (60, "seconds", "how long a replica may lag more than the plan allows"),
    "archive_for": (300, "seconds", "how long archiving may fail or stall"),
    "backup_grace": (3600, "seconds", "added to the schedule's longest gap (the backup's own duration)"),
    "patroni_paused_for": (1800, "seconds", "how long Patroni may stay paused (maintenance mode)"),
    "xid_warning": (0.5, "ratio", "share of the 2^31 XID/multixact limit (warning)"),
    "xid_critical": (0.75, "ratio", "share of the 2^31 XID/multixact limit (critical)"),
    "disk_free_warning": (0.10, "ratio", "free share of a filesystem (warning)"),
    "disk_free_critical": (0.05, "ratio", "free share of a filesystem (critical)"),
    "disk_fill_hours": (24, "hours", "a filesystem predicted full within this many hours (6 h trend)"),
    "cert_warning_days": (30, "days", "days before a certificate expires (warning)"),
    "cert_critical_days": (7, "days", "days before a certificate expires (critical)"),
    "etcd_db_quota_ratio": (0.8, "ratio", "share of etcd's backend quota in use"),
}

#: PostgreSQL stops assigning XIDs (and multixacts) near 2^31.
WRAPAROUND_LIMIT = 2**31
#: WAL segment size of the clusters (initdb's default; the model keeps it).
WAL_SEGMENT_BYTES = 16 * 1024 * 1024
#: etcd's election timeout when the inventory sets none (roles/etcd).
ETCD_ELECTION_TIMEOUT_MS = 1000
#: Rule groups, in file order: (name, component label).
GROUPS = (
    ("postgres", "postgres"),
    ("patroni", "patroni"),
    ("pgbouncer", "pgbouncer"),
    ("pgbackrest", "pgbackrest"),
    ("haproxy", "haproxy"),
    ("etcd", "etcd"),
    ("node", "node"),
    ("certificates", "certificates"),
)
RUNBOOK = "docs/monitoring.md#%s"
#: file_sd job names (roles/exporters/tasks/targets.yml) and the
#: ``exporter`` label of the job pgsql.
JOBS = {"pgsql": "pgsql", "node": "node", "patroni": "patroni", "haproxy": "haproxy", "etcd": "etcd"}
#: textfile written by the certificate check (files/cert_metrics.py).
CERT_PROM = "pigpen_certs.prom"


class AlertingError(ValueError):
    """An override of the rules' tunables that cannot be used."""


# ------------------------------------------------------------- settings


def settings(overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The tunables with ``overrides`` applied; raises :class:`AlertingError`
    naming the key, the value and the fix."""
    out = {k: v[0] for k, v in TUNABLES.items()}
    for key, value in sorted((overrides or {}).items()):
        if key not in TUNABLES:
            raise AlertingError(
                "exporters_alert_settings.%s: unknown key: use one of %s" % (key, ", ".join(sorted(TUNABLES)))
            )
        kind = TUNABLES[key][1]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind == "ratio" and not (number and 0 < value <= 1):
            raise AlertingError(
                "exporters_alert_settings.%s = %r: write a ratio above 0 and "
                "at most 1, e.g. %s" % (key, value, TUNABLES[key][0])
            )
        if kind != "ratio" and not (is_int(value) and value > 0):
            raise AlertingError(
                "exporters_alert_settings.%s = %r: write a whole number of %s "
                "above 0, e.g. %s" % (key, value, kind, TUNABLES[key][0])
            )
        out[key] = value
    if out["xid_critical"] <= out["xid_warning"]:
        raise AlertingError(
            "exporters_alert_settings: xid_critical (%s) must be above "
            "xid_warning (%s)" % (out["xid_critical"], out["xid_warning"])
        )
    if out["disk_free_critical"] >= out["disk_free_warning"]:
        raise AlertingError(
            "exporters_alert_settings: disk_free_critical (%s) must be below "
            "disk_free_warning (%s)" % (out["disk_free_critical"], out["disk_free_warning"])
        )
    if out["cert_critical_days"] >= out["cert_warning_days"]:
        raise AlertingError(
            "exporters_alert_settings: cert_critical_days (%s) must be below "
            "cert_warning_days (%s)" % (out["cert_critical_days"], out["cert_warning_days"])
        )
    return out


_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h|d|w|y)\Z")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def parse_duration(text: Any) -> float:
    """Seconds of a simple Prometheus duration (``10s``, ``1m``)."""
    match = _DURATION.match(str(text))
    if not match:
        raise AlertingError("%r is not a Prometheus duration such as 10s or 1m" % (text,))
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def duration(seconds: float) -> str:
    """A Prometheus duration for a whole number of seconds (rounded up):
    ``41s``, ``1m``, ``1h30m``, ``2d``."""
    left = int(math.ceil(seconds))
    if left <= 0:
        return "0s"
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            out += "%d%s" % (left // size, unit)
            left %= size
    return out


# ------------------------------------------------------------ the model


def _backup_thresholds(cluster: Cluster, grace: int) -> Tuple[Optional[int], Optional[int]]:
    """(any-type, full) backup age thresholds of a cluster, in seconds, or
    None where its ``pg_crontab`` schedules no such backup (or pgBackRest is
    off)."""
    if cluster.setting("pgbackrest_enabled") is False:
        return None, None
    entries = cron.backup_entries(cluster.setting("pg_crontab") or [])
    every = [f for kind in entries for f in entries[kind]]
    any_gap = cron.max_gap_seconds(every) if every else None
    full_gap = cron.max_gap_seconds(entries["full"]) if entries.get("full") else None
    return (any_gap + grace if any_gap else None, full_gap + grace if full_gap else None)


# Patroni 3.0.2's checks that only a primary passes (a standby leader fails them)
_PRIMARY_CHECKS = ("/primary", "/master", "/read-write")


def cluster_facts(inv: Inventory, tun: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    """What the rules need of each cluster, computed from the model:
    ``bound_s``, ``ttl``, ``lag_bytes``, ``members``, ``backup_s``,
    ``full_backup_s``, ``services`` (name -> whether it has servers)."""
    out: Dict[str, Dict[str, Any]] = {}
    for name in sorted(inv.clusters):
        cluster = inv.clusters[name]
        profile = tuning_mod.profile_name(cluster.leader.get("pg_conf") if cluster.leader else None)
        plan = ha_mod.ha_plan(cluster.setting("pg_rto"), cluster.setting("pg_rpo"), profile)
        backup_s, full_s = _backup_thresholds(cluster, tun["backup_grace"])
        # a standby cluster's leader is a standby leader: Patroni answers 503
        # to the read-write checks on every member until it is promoted, so
        # its services that check for a primary have nobody to alert about
        standby = bool(cluster.identity().get("standby"))
        services = {
            s["name"]: bool(s["servers"]) and not (standby and s.get("check") in _PRIMARY_CHECKS)
            for s in svc_mod.build_services(cluster, plan["server_options"])
        }
        out[name] = {
            "bound_s": int(math.ceil(plan["bound_s"])),
            "ttl": plan["patroni"]["ttl"],
            "lag_bytes": plan["patroni"]["maximum_lag_on_failover"],
            "members": len(cluster.members),
            "backup_s": backup_s,
            "full_backup_s": full_s,
            "services": services,
        }
    return out


def etcd_facts(inv: Inventory) -> Dict[str, Any]:
    """The etcd cluster of the inventory: name, members, quorum and the
    election timeout (ms, the largest of its members)."""
    members = inv.etcd
    name = "etcd"
    timeouts = []
    for m in members:
        if isinstance(m.vars.get("etcd_cluster"), str) and m.vars["etcd_cluster"]:
            name = m.vars["etcd_cluster"]
        value = m.vars.get("etcd_election_timeout")
        timeouts.append(value if is_int(value) and value > 0 else ETCD_ELECTION_TIMEOUT_MS)
    return {
        "cluster": name,
        "members": len(members),
        "quorum": len(members) // 2 + 1 if members else 0,
        "election_timeout_ms": max(timeouts) if timeouts else ETCD_ELECTION_TIMEOUT_MS,
    }


def etcd_targets(inv: Inventory) -> List[Dict[str, Any]]:
    """Prometheus static target groups of the etcd members (``/metrics`` on
    the client port, no authentication), labelled like the PostgreSQL
    targets: ``cls`` the etcd cluster, ``ins`` the member name
    (``etcd_name``, else ``<etcd_cluster>-<etcd_seq>``), ``ip``, ``job``
    etcd, and ``__scheme__``: ``https`` unless the member has
    ``etcd_tls_enabled: false`` (its server certificate is the deployment
    CA's). ``tls`` (True for https) tells the template that the job needs
    the CA (``tls_config``); it is not a label."""
    facts = etcd_facts(inv)
    out = []
    for m in inv.etcd:
        if not m.ip:
            continue
        port = m.vars.get("etcd_port") if is_int(m.vars.get("etcd_port")) else 2379
        ins = (
            m.vars.get("etcd_name")
            if isinstance(m.vars.get("etcd_name"), str) and "{" not in m.vars["etcd_name"]
            else "%s-%s" % (facts["cluster"], m.vars.get("etcd_seq"))
        )
        host = "[%s]" % m.ip if ":" in m.ip else m.ip
        # a member in bridge mode (etcd_tls_allow_plain) answers both: https
        tls = etcd_tls.desired_mode(m.vars.get("etcd_tls_enabled", True)) != "plain"
        out.append(
            {
                "targets": ["%s:%s" % (host, port)],
                "labels": {
                    "cls": facts["cluster"],
                    "ins": ins,
                    "ip": m.ip,
                    "job": JOBS["etcd"],
                    "__scheme__": "https" if tls else "http",
                },
                "tls": tls,
            }
        )
    return sorted(out, key=lambda g: g["labels"]["ins"])


def endpoints(hosts: Sequence[Tuple[str, Any]], port: Any, listen: str = "") -> List[str]:
    """``host:port`` of each ``(inventory name, ansible_host)`` in order:
    ``listen`` when set, else ``ansible_host``, else the name; IPv6
    addresses in brackets."""
    out = []
    for name, ansible_host in hosts:
        address = listen or (ansible_host if isinstance(ansible_host, str) and ansible_host else name)
        out.append("%s:%s" % ("[%s]" % address if ":" in address else address, port))
    return out


# ------------------------------------------------------------ matchers

_RE_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")


def _literal(name: str) -> str:
    """``name`` as a literal inside a PromQL regex string."""
    return _RE_SPECIAL.sub(r"\\\\\1", name).replace('"', '\\"')


def by_value(values: Mapping[str, Any], label: str, exclude: Sequence[str] = ()) -> List[Tuple[Any, str]]:
    """Group the keys of ``values`` (clusters, services) by their value and
    give each group a label matcher: ``[(value, matcher), ...]`` sorted by
    value. The largest group of non-None values (ties: the smallest value)
    gets ``label!~"<every other key>|<exclude>"`` (or no matcher when
    nothing is excluded); the other groups ``label=~"<their keys>"``. Keys
    whose value is None get no rule. ``exclude`` are regex patterns always
    left out of the largest group."""
    groups: Dict[Any, List[str]] = {}
    for key in sorted(values):
        groups.setdefault(values[key], []).append(key)
    real = sorted((v for v in groups if v is not None), key=lambda v: (-len(groups[v]), v))
    if not real:
        return []
    main = real[0]
    out = []
    others = sorted(k for v, keys in groups.items() if v != main for k in keys)
    alternatives = [_literal(k) for k in others] + list(exclude)
    out.append((main, '%s!~"%s"' % (label, "|".join(alternatives)) if alternatives else ""))
    for value in sorted(real[1:]):
        out.append((value, '%s=~"%s"' % (label, "|".join(_literal(k) for k in groups[value]))))
    return sorted(out, key=lambda item: item[0])


def sel(metric: str, *matchers: str) -> str:
    """``metric{m1, m2}`` without empty matchers."""
    kept = [m for m in matchers if m]
    return "%s{%s}" % (metric, ", ".join(kept)) if kept else metric


# --------------------------------------------------------------- rules


def _alert(
    name: str, expr: str, severity: str, summary: str, description: str, for_s: Optional[float] = None, **labels: str
) -> Dict[str, Any]:
    rule: Dict[str, Any] = {"alert": name, "expr": expr}
    if for_s:
        rule["for"] = duration(for_s)
    rule["labels"] = dict(labels, severity=severity)
    rule["annotations"] = {"summary": summary, "description": description, "runbook": RUNBOOK % name.lower()}
    return rule


def _record(name: str, expr: str) -> Dict[str, Any]:
    return {"record": name, "expr": expr}


def _per_value(
    values: Mapping[str, Any],
    label: str,
    make: Callable[[Any, str], Dict[str, Any]],
    shown: Callable[[Any], str],
    exclude: Sequence[str] = (),
) -> List[Dict[str, Any]]:
    """One rule per distinct value (:func:`by_value`), each labelled with
    its ``threshold`` as ``shown`` writes it: rules of one alert then differ
    in their labels, and the alert says which threshold it crossed."""
    out = []
    for value, matcher in by_value(values, label, exclude):
        rule = make(value, matcher)
        rule["labels"]["threshold"] = shown(value)
        out.append(rule)
    return out


def _mib(size: int) -> str:
    return "%g MiB" % (size / 1048576.0)


def _postgres(facts, tun) -> List[Dict[str, Any]]:
    job = 'job="pgsql"'
    ratio = tun["connections_ratio"]
    xw, xc = tun["xid_warning"], tun["xid_critical"]
    rules = [
        _record(
            "ins:pg_connections:ratio",
            "sum by (cls, ins) (%s) / on (cls, ins) (max by (cls, ins) (%s) - max by (cls, ins) (%s))"
            % (
                sel("pg_stat_activity_count", job),
                sel("pg_settings_max_connections", job),
                sel("pg_settings_superuser_reserved_connections", job),
            ),
        ),
        _record(
            "ins:pg_replica_lag:bytes",
            "max by (cls, ins) (max by (cls) (%s) - on (cls) group_right () (%s and %s == 1))"
            % (
                sel("patroni_xlog_location", 'job="patroni"'),
                sel("patroni_xlog_received_location", 'job="patroni"'),
                sel("patroni_replica", 'job="patroni"'),
            ),
        ),
        _alert(
            "PgsqlExporterDown",
            "%s == 0" % sel("up", job, 'exporter!="pgbouncer"'),
            "warning",
            "{{ $labels.exporter }} exporter of {{ $labels.ins }} is down",
            "Prometheus cannot scrape {{ $labels.instance }} ({{ $labels.exporter }} exporter of "
            "{{ $labels.ins }}): its metrics and the alerts built on them are missing.",
            tun["exporter_down_for"],
        ),
    ]
    rules += _per_value(
        {c: f["bound_s"] for c, f in facts.items()},
        "cls",
        lambda bound, m: _alert(
            "PgsqlDown",
            "%s == 0" % sel("pg_up", job, m),
            "critical",
            "PostgreSQL {{ $labels.ins }} does not answer",
            "The PostgreSQL exporter of {{ $labels.ins }} cannot connect to PostgreSQL, for longer "
            "than the HA plan's worst-case failover (%ds)." % bound,
            bound,
        ),
        duration,
    )
    rules += [
        _alert(
            "PgsqlConnectionsHigh",
            "ins:pg_connections:ratio > %g" % ratio,
            "warning",
            "{{ $labels.ins }} uses {{ $value | humanizePercentage }} of its connections",
            "Backends of {{ $labels.ins }} fill more than %g%% of max_connections - "
            "superuser_reserved_connections; new clients will soon be refused." % (ratio * 100),
            tun["connections_for"],
        ),
    ]
    for kind, metric, what in (
        ("Xid", "pg_wraparound_xid_age", "transaction ID"),
        ("Multixact", "pg_wraparound_mxid_age", "multixact ID"),
    ):
        for severity, share in (("warning", xw), ("critical", xc)):
            rules.append(
                _alert(
                    "Pgsql%sWraparound" % kind,
                    "max by (cls, datname) (%s) > %d" % (sel(metric, job), int(share * WRAPAROUND_LIMIT)),
                    severity,
                    "Database {{ $labels.datname }} of {{ $labels.cls }} is at {{ $value | humanize }} %s age" % what,
                    "The oldest unfrozen %s of {{ $labels.datname }} is more than %g%% of the way to "
                    "PostgreSQL's 2^31 limit, where the cluster stops accepting writes; autovacuum is not "
                    "freezing it fast enough." % (what, share * 100),
                )
            )
    rules += [
        _alert(
            "PgsqlReplicationSlotInactive",
            "%s == 0" % sel("pg_replication_slots_active", job),
            "warning",
            "Replication slot {{ $labels.slot_name }} on {{ $labels.ins }} is inactive",
            "No client uses slot {{ $labels.slot_name }} on {{ $labels.ins }}: the primary keeps "
            "all WAL it would need, and pg_wal grows until the replica comes back or the slot "
            "is dropped.",
            tun["slot_inactive_for"],
        ),
        _alert(
            "PgsqlReplicationSlotRetainingWal",
            "%s > on (cls, ins) group_left %s"
            % (sel("pg_replication_slots_pg_wal_lsn_diff", job), sel("pg_settings_max_wal_size_bytes", job)),
            "warning",
            "Slot {{ $labels.slot_name }} on {{ $labels.ins }} retains {{ $value | humanize1024 }}B of WAL",
            "Replication slot {{ $labels.slot_name }} holds back more WAL than max_wal_size on "
            "{{ $labels.ins }}; its consumer is far behind or gone.",
            tun["slot_inactive_for"],
        ),
        _alert(
            "PgsqlArchiveFailing",
            "increase(%s[5m]) > 0 and increase(%s[5m]) < 1"
            % (sel("pg_stat_archiver_failed_count", job), sel("pg_stat_archiver_archived_count", job)),
            "critical",
            "WAL archiving fails on {{ $labels.ins }}",
            "archive_command (pgbackrest archive-push) fails and nothing was archived in the last "
            "5 minutes: point-in-time recovery stops at the last archived segment and pg_wal grows.",
            tun["archive_for"],
        ),
        _alert(
            "PgsqlArchiveStalled",
            "increase(%s[15m]) > %d and on (cls, ins) increase(%s[15m]) < 1"
            % (
                sel("patroni_xlog_location", 'job="patroni"'),
                2 * WAL_SEGMENT_BYTES,
                sel("pg_stat_archiver_archived_count", job),
            ),
            "critical",
            "WAL archiving stalled on {{ $labels.ins }}",
            "The primary {{ $labels.ins }} wrote more than two WAL segments in 15 minutes and "
            "archived none: the archiver is stuck (or archive_command hangs).",
            tun["archive_for"],
        ),
    ]
    rules += _per_value(
        {c: f["lag_bytes"] for c, f in facts.items()},
        "cls",
        lambda lag, m: _alert(
            "PgsqlReplicaLag",
            "%s > %d" % (sel("ins:pg_replica_lag:bytes", m), lag),
            "warning",
            "Replica {{ $labels.ins }} is {{ $value | humanize1024 }}B behind its leader",
            "{{ $labels.ins }} lags more than the plan's maximum_lag_on_failover (%s, from pg_rpo): "
            "Patroni will not promote it, and a failover now would lose more than pg_rpo." % _mib(lag),
            tun["lag_for"],
        ),
        _mib,
    )
    return rules


def _patroni(facts, tun, scrape_s) -> List[Dict[str, Any]]:
    job = 'job="patroni"'
    split_for = max(30, 3 * scrape_s)
    rules = [
        _record(
            "cls:patroni_leaders:sum",
            "sum by (cls) (%s + %s)" % (sel("patroni_primary", job), sel("patroni_standby_leader", job)),
        ),
        _alert(
            "PatroniDown",
            "%s == 0" % sel("up", job),
            "warning",
            "Patroni of {{ $labels.ins }} does not answer",
            "Prometheus cannot reach Patroni's REST API on {{ $labels.instance }}: the member takes "
            "no part in leader elections and HAProxy's health checks to it fail.",
            tun["exporter_down_for"],
        ),
    ]
    rules += _per_value(
        {c: f["bound_s"] for c, f in facts.items()},
        "cls",
        lambda bound, m: _alert(
            "PgsqlNoLeader",
            "count by (cls) (%s) unless on (cls) (%s > 0)" % (sel("up", job, m), sel("cls:patroni_leaders:sum", m)),
            "critical",
            "Cluster {{ $labels.cls }} has no leader",
            "No member of {{ $labels.cls }} runs as its leader for longer than the HA plan's "
            "worst-case failover (%ds): writes fail." % bound,
            bound,
        ),
        duration,
    )
    rules.append(
        _alert(
            "PgsqlMultipleLeaders",
            "cls:patroni_leaders:sum > 1",
            "critical",
            "Cluster {{ $labels.cls }} has {{ $value }} leaders",
            "More than one member of {{ $labels.cls }} reports itself as the leader for %ds (longer than "
            "a switchover shows between two scrapes): a split brain." % split_for,
            split_for,
        )
    )
    rules += _per_value(
        {c: (f["members"], f["bound_s"]) for c, f in facts.items()},
        "cls",
        lambda value, m: _alert(
            "PgsqlClusterDegraded",
            "(sum by (cls) (%s) or count by (cls) (%s) * 0) < %d"
            % (sel("patroni_postgres_running", job, m), sel("up", job, m), value[0]),
            "warning",
            "Cluster {{ $labels.cls }} runs {{ $value }} of its %d members" % value[0],
            "Fewer PostgreSQL instances of {{ $labels.cls }} run than the inventory lists (%d), for "
            "longer than the HA plan's worst-case failover (%ds)." % value,
            value[1],
        ),
        lambda value: "%d member%s, %s" % (value[0], "" if value[0] == 1 else "s", duration(value[1])),
    )
    rules.append(
        _alert(
            "PatroniFailsafeActive",
            "%s == 1" % sel("patroni_failsafe_mode_is_active", job),
            "warning",
            "{{ $labels.ins }} runs in failsafe mode",
            "Patroni on {{ $labels.ins }} cannot reach etcd and keeps the leader running only because "
            "every member answers it (failsafe_mode): repair etcd.",
        )
    )
    rules += _per_value(
        {c: f["ttl"] for c, f in facts.items()},
        "cls",
        lambda ttl, m: _alert(
            "PatroniDcsUnreachable",
            "time() - %s > %d" % (sel("patroni_dcs_last_seen", job, m), ttl),
            "warning",
            "Patroni of {{ $labels.ins }} has not reached etcd for {{ $value | humanizeDuration }}",
            "Patroni on {{ $labels.ins }} last reached the DCS longer ago than the plan's ttl (%ds): "
            "the member cannot hold or take the leader lock." % ttl,
        ),
        duration,
    )
    rules.append(
        _alert(
            "PatroniPaused",
            "max by (cls) (%s) == 1" % sel("patroni_is_paused", job),
            "warning",
            "Patroni of {{ $labels.cls }} is paused",
            "Automatic failover of {{ $labels.cls }} is off (patronictl pause, maintenance mode): a "
            "failed primary stays failed.",
            tun["patroni_paused_for"],
        )
    )
    return rules


def _pgbouncer(tun) -> List[Dict[str, Any]]:
    job = 'job="pgsql"'
    return [
        _alert(
            "PgbouncerDown",
            "%s == 0" % sel("up", job, 'exporter="pgbouncer"'),
            "critical",
            "pgbouncer of {{ $labels.ins }} is down",
            "The pgbouncer exporter of {{ $labels.ins }} does not answer; its unit is bound to "
            "pgbouncer.service, so pgbouncer itself is down: the services that route to this "
            "member's pgbouncer refuse clients.",
            tun["exporter_down_for"],
        ),
        _alert(
            "PgbouncerClientsWaiting",
            "sum by (cls, ins) (%s) > 0" % sel("pgbouncer_waiting_clients", job),
            "warning",
            "{{ $value }} clients wait for a server connection in pgbouncer of {{ $labels.ins }}",
            "Clients of pgbouncer on {{ $labels.ins }} keep waiting for a server connection: a "
            "pool is exhausted (long transactions, a small pool_size, PostgreSQL slow).",
            tun["pgbouncer_waiting_for"],
        ),
    ]


def _pgbackrest(facts, tun) -> List[Dict[str, Any]]:
    job = 'job="pgsql"'
    rules = [
        _record(
            "cls:pgbackrest_backup_age:seconds",
            "time() - max by (cls) (%s)" % sel("pgbackrest_backup_last_time_seconds", job),
        ),
        _record(
            "cls:pgbackrest_full_backup_age:seconds",
            "time() - max by (cls) (%s)" % sel("pgbackrest_backup_last_time_seconds", job, 'type="full"'),
        ),
    ]
    for name, key, record, what in (
        ("PgbackrestBackupTooOld", "backup_s", "cls:pgbackrest_backup_age:seconds", "backup"),
        ("PgbackrestFullBackupTooOld", "full_backup_s", "cls:pgbackrest_full_backup_age:seconds", "full backup"),
    ):
        rules += _per_value(
            {c: f[key] for c, f in facts.items()},
            "cls",
            # mypy cannot type a lambda with more (defaulted) parameters than its Callable
            lambda limit, m, name=name, record=record, what=what: _alert(  # type: ignore[misc]
                name,
                "%s > %d" % (sel(record, m), limit),
                "warning",
                "The newest %s of {{ $labels.cls }} is {{ $value | humanizeDuration }} old" % what,
                "pg_crontab schedules a %s of {{ $labels.cls }} at least every %s; the newest one is "
                "older than that plus %s of grace: scheduled backups fail or do not run."
                % (what, duration(limit - tun["backup_grace"]), duration(tun["backup_grace"])),
            ),
            duration,
        )
    status = sel("pgbackrest_stanza_status", job)
    rules += [
        _alert(
            "PgbackrestStanzaError",
            "count by (cls) (%s) unless on (cls) (%s == 0 or %s == 6)" % (status, status, status),
            "warning",
            "No repository of {{ $labels.cls }} reports its stanza healthy",
            "pgbackrest info reports an error status for the stanza of {{ $labels.cls }} on every "
            "member (no valid backup, missing stanza, cipher or database mismatch).",
            900,
        ),
        _alert(
            "PgbackrestInfoFailing",
            "%s == 0" % sel("pgbackrest_scrape_ok", job),
            "warning",
            "pgbackrest info fails on {{ $labels.ins }}",
            "The pgBackRest exporter of {{ $labels.ins }} cannot run or parse pgbackrest info "
            "(repository unreachable, configuration error): backup metrics are missing.",
            900,
        ),
        _alert(
            "PgbackrestBackupChecksumError",
            "%s == 1" % sel("pgbackrest_backup_last_error", job),
            "warning",
            "The newest {{ $labels.type }} backup of {{ $labels.cls }} found page errors",
            "pgBackRest reported page checksum errors in the newest {{ $labels.type }} backup "
            "seen by {{ $labels.ins }}: data files are damaged.",
        ),
    ]
    return rules


def _haproxy(facts, tun) -> List[Dict[str, Any]]:
    job = 'job="haproxy"'
    rules = [
        _alert(
            "HaproxyDown",
            "%s == 0" % sel("up", job),
            "critical",
            "HAProxy of {{ $labels.ins }} is down",
            "Prometheus cannot reach HAProxy's metrics on {{ $labels.instance }}: the services "
            "this node publishes refuse clients.",
            tun["exporter_down_for"],
        ),
    ]
    bound_of = {svc: (f["bound_s"] if has else None) for f in facts.values() for svc, has in f["services"].items()}
    rules += _per_value(
        bound_of,
        "proxy",
        lambda bound, m: _alert(
            "PgsqlServiceDown",
            "%s == 0" % sel("haproxy_backend_status", job, 'state="UP"', m),
            "critical",
            "Service {{ $labels.proxy }} has no healthy server on {{ $labels.ins }}",
            "HAProxy on {{ $labels.ins }} finds no server of {{ $labels.proxy }} passing its health "
            "check, for longer than the HA plan's worst-case failover (%ds): clients of this "
            "service are refused." % bound,
            bound,
        ),
        duration,
        exclude=("admin", ".+[.]fallback"),
    )
    return rules


def _etcd(etcd, tun) -> List[Dict[str, Any]]:
    if not etcd["members"]:
        return []
    job = 'job="etcd"'
    warn_s = etcd["election_timeout_ms"] / 2000.0
    crit_s = etcd["election_timeout_ms"] / 1000.0
    fsync = "histogram_quantile(0.99, sum by (cls, ins, le) (rate(%s[5m])))" % sel(
        "etcd_disk_wal_fsync_duration_seconds_bucket", job
    )
    rules = [
        _record("cls:etcd_members_up:sum", "sum by (cls) (%s)" % sel("up", job)),
        _alert(
            "EtcdMemberDown",
            "%s == 0" % sel("up", job),
            "warning",
            "etcd member {{ $labels.ins }} is down",
            "Prometheus cannot reach etcd member {{ $labels.ins }} ({{ $labels.instance }}).",
            tun["exporter_down_for"],
        ),
        _alert(
            "EtcdQuorumLost",
            "cls:etcd_members_up:sum < %d" % etcd["quorum"],
            "critical",
            "etcd {{ $labels.cls }} has {{ $value }} members up, fewer than its quorum of %d" % etcd["quorum"],
            "A majority of the %d etcd members in the inventory is needed for any write: Patroni "
            "cannot renew or take a leader lock (failsafe mode keeps a primary only while every "
            "member answers it)." % etcd["members"],
        ),
        _alert(
            "EtcdNoLeader",
            "%s == 0" % sel("etcd_server_has_leader", job),
            "critical",
            "etcd member {{ $labels.ins }} has no leader",
            "etcd member {{ $labels.ins }} runs but sees no Raft leader: it is cut off from a majority of its peers.",
            60,
        ),
    ]
    for severity, limit in (("warning", warn_s), ("critical", crit_s)):
        rules.append(
            _alert(
                "EtcdSlowFsync",
                "%s > %g" % (fsync, limit),
                severity,
                "etcd member {{ $labels.ins }} needs {{ $value | humanizeDuration }} per WAL fsync (p99)",
                "99%% of etcd's WAL fsyncs on {{ $labels.ins }} take longer than %gs (%s the election "
                "timeout of %d ms): heartbeats are late and leader elections follow."
                % (limit, "half" if severity == "warning" else "all of", etcd["election_timeout_ms"]),
                600,
            )
        )
    rules.append(
        _alert(
            "EtcdDatabaseNearQuota",
            "%s / %s > %g"
            % (
                sel("etcd_mvcc_db_total_size_in_bytes", job),
                sel("etcd_server_quota_backend_bytes", job),
                tun["etcd_db_quota_ratio"],
            ),
            "warning",
            "etcd database of {{ $labels.ins }} is {{ $value | humanizePercentage }} of its quota",
            "At the quota etcd refuses writes (alarm NOSPACE); compact and defragment it, or raise "
            "etcd_quota_backend_bytes.",
            600,
        )
    )
    return rules


def _node(tun) -> List[Dict[str, Any]]:
    fs = ('job="node"', 'fstype!~"tmpfs|ramfs"')
    avail = sel("node_filesystem_avail_bytes", *fs)
    size = sel("node_filesystem_size_bytes", *fs)
    writable = "%s == 0" % sel("node_filesystem_readonly", *fs)
    rules = [
        _alert(
            "NodeDown",
            "%s == 0" % sel("up", 'job="node"'),
            "critical",
            "Node {{ $labels.ins }} ({{ $labels.ip }}) does not answer",
            "The node exporter of {{ $labels.ins }} does not answer: the node is down or cut off. "
            "Alerts of the other components of this node are held back while this one fires.",
            tun["exporter_down_for"],
        ),
    ]
    for severity, share in (("warning", tun["disk_free_warning"]), ("critical", tun["disk_free_critical"])):
        rules.append(
            _alert(
                "NodeDiskAlmostFull",
                "%s / %s < %g and %s" % (avail, size, share, writable),
                severity,
                "{{ $labels.mountpoint }} of {{ $labels.ins }} has {{ $value | humanizePercentage }} free",
                "Less than %g%% of {{ $labels.mountpoint }} on {{ $labels.ins }} is free: PostgreSQL "
                "stops (PANIC) when it cannot write WAL." % (share * 100),
                300,
            )
        )
    rules.append(
        _alert(
            "NodeDiskFillingUp",
            "predict_linear(%s[6h], %d) < 0 and %s / %s < 0.4 and %s"
            % (avail, tun["disk_fill_hours"] * 3600, avail, size, writable),
            "warning",
            "{{ $labels.mountpoint }} of {{ $labels.ins }} fills up within %d hours" % tun["disk_fill_hours"],
            "At the rate of the last 6 hours {{ $labels.mountpoint }} on {{ $labels.ins }} is full within "
            "%d hours." % tun["disk_fill_hours"],
            3600,
        )
    )
    return rules


def _certificates(tun, cert_interval_s) -> List[Dict[str, Any]]:
    job = 'job="node"'
    rules = []
    for severity, days in (("warning", tun["cert_warning_days"]), ("critical", tun["cert_critical_days"])):
        rules.append(
            _alert(
                "CertificateExpiring",
                "%s - time() < %d" % (sel("pigpen_cert_not_after_seconds", job), days * 86400),
                severity,
                "{{ $labels.path }} on {{ $labels.ins }} expires in {{ $value | humanizeDuration }}",
                "The certificate {{ $labels.path }} ({{ $labels.subject }}) on {{ $labels.ins }} expires "
                "within %d days; PostgreSQL and pgbouncer refuse TLS clients once it has." % days,
            )
        )
    stale = 3 * cert_interval_s
    rules.append(
        _alert(
            "CertificateCheckFailing",
            "%s == 0 or time() - %s > %d"
            % (
                sel("pigpen_cert_check_ok", job),
                sel("node_textfile_mtime_seconds", job, 'file=~".*/%s"' % _literal(CERT_PROM)),
                stale,
            ),
            "warning",
            "The certificate check of {{ $labels.ins }} fails",
            "pigpen-cert-metrics cannot read a certificate ({{ $labels.path }}) on {{ $labels.ins }}, or "
            "has not written its metrics for %s: expiry alerts are blind there." % duration(stale),
            300,
        )
    )
    return rules


def alert_rules(
    inv: Inventory,
    overrides: Optional[Mapping[str, Any]] = None,
    scrape_interval: Any = "10s",
    cert_interval: Any = "1h",
) -> List[Dict[str, Any]]:
    """The rule groups of the inventory: ``[{"name", "component", "rules":
    [...]}, ...]`` in :data:`GROUPS` order; every rule is a dict with
    ``record`` or ``alert``, ``expr`` and, for alerts, ``for`` (when any),
    ``labels`` (``severity``, ``component``) and ``annotations``
    (``summary``, ``description``, ``runbook``). A group without rules (etcd
    when the inventory has no etcd group) is left out. Deterministic."""
    tun = settings(overrides)
    scrape_s = parse_duration(scrape_interval)
    cert_s = parse_duration(cert_interval)
    facts = cluster_facts(inv, tun)
    made = {
        "postgres": _postgres(facts, tun),
        "patroni": _patroni(facts, tun, scrape_s),
        "pgbouncer": _pgbouncer(tun),
        "pgbackrest": _pgbackrest(facts, tun),
        "haproxy": _haproxy(facts, tun),
        "etcd": _etcd(etcd_facts(inv), tun),
        "node": _node(tun),
        "certificates": _certificates(tun, cert_s),
    }
    out = []
    for name, component in GROUPS:
        rules = made[name]
        for rule in rules:
            if "alert" in rule:
                rule["labels"]["component"] = component
                rule["labels"] = dict(sorted(rule["labels"].items()))
        if rules:
            out.append({"name": "pigpen-%s" % name, "component": component, "rules": rules})
    return out


def alert_names(groups: Iterable[Mapping[str, Any]]) -> List[str]:
    """The distinct alert names of :func:`alert_rules`' groups, sorted."""
    return sorted({r["alert"] for g in groups for r in g["rules"] if "alert" in r})


# ---------------------------------------------------------- Alertmanager

#: Alertmanager's root receiver when the settings name none: it sends
#: nowhere; the alerts are still in Alertmanager's UI and API.
NULL_RECEIVER = "default"
RECORDER_RECEIVER = "pigpen-recorder"


def inhibit_rules() -> List[Dict[str, Any]]:
    """What always holds back other alerts: a node that is down silences the
    alerts of the components on it; a critical alert its warning twin; a
    lost etcd quorum the members that are down."""
    return [
        {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ['alertname!="NodeDown"'], "equal": ["ip"]},
        {
            "source_matchers": ['severity="critical"'],
            "target_matchers": ['severity="warning"'],
            "equal": ["alertname", "cls", "ins"],
        },
        {
            "source_matchers": ['alertname="EtcdQuorumLost"'],
            "target_matchers": ['alertname=~"EtcdMemberDown|EtcdNoLeader"'],
            "equal": ["cls"],
        },
    ]


def alertmanager_config(
    receivers: Optional[Sequence[Mapping[str, Any]]] = None,
    routes: Optional[Sequence[Mapping[str, Any]]] = None,
    receiver: str = "",
    group_by: Sequence[str] = ("alertname", "cls"),
    group_wait: str = "30s",
    group_interval: str = "5m",
    repeat_interval: str = "4h",
    recorder_urls: Sequence[str] = (),
    extra_inhibit_rules: Optional[Sequence[Mapping[str, Any]]] = None,
) -> Dict[str, Any]:
    """``alertmanager.yml`` as data. ``receivers`` and ``routes`` are
    Alertmanager's own receiver and route objects (passed through; ``amtool
    check-config`` validates them); ``receiver`` names the root route's
    receiver (empty: :data:`NULL_RECEIVER`, which sends nowhere). With
    ``recorder_urls`` every alert is also sent to each webhook recorder
    (first route, ``continue: true``), resolved ones included, and a last
    route sends what no other route takes to the root's receiver (a child
    route that matches would otherwise keep it from the root)."""
    receivers = [dict(r) for r in receivers or []]
    names: List[Any] = [r.get("name") for r in receivers]
    for name in names:
        if not isinstance(name, str) or not name:
            raise AlertingError("exporters_alertmanager_receivers: every receiver needs a name, got %r" % (name,))
    if len(set(names)) != len(names):
        raise AlertingError(
            "exporters_alertmanager_receivers: receiver names repeat: %s"
            % ", ".join(sorted(n for n in set(names) if names.count(n) > 1))
        )
    for reserved in (NULL_RECEIVER, RECORDER_RECEIVER):
        if reserved in names:
            raise AlertingError(
                "exporters_alertmanager_receivers: %s is the collection's own "
                "receiver name; name yours differently" % reserved
            )
    if receiver and receiver not in names:
        raise AlertingError(
            "exporters_alertmanager_receiver: %r is not the name of a receiver of "
            "exporters_alertmanager_receivers (%s)" % (receiver, ", ".join(names) or "none")
        )
    for text, what in (
        (group_wait, "group_wait"),
        (group_interval, "group_interval"),
        (repeat_interval, "repeat_interval"),
    ):
        try:
            parse_duration(text)
        except AlertingError:
            raise AlertingError(
                "exporters_alertmanager_%s = %r: write a duration such as 30s or 5m" % (what, text)
            ) from None
    all_receivers = [{"name": NULL_RECEIVER}] + receivers
    child_routes = [dict(r) for r in routes or []]
    if recorder_urls:
        all_receivers.append(
            {
                "name": RECORDER_RECEIVER,
                "webhook_configs": [{"url": url, "send_resolved": True} for url in recorder_urls],
            }
        )
        # a matching child route takes the alert from the root route: what
        # no route of the settings takes goes on to the root's receiver
        child_routes = (
            [{"receiver": RECORDER_RECEIVER, "continue": True}]
            + child_routes
            + [{"receiver": receiver or NULL_RECEIVER}]
        )
    route: Dict[str, Any] = {
        "receiver": receiver or NULL_RECEIVER,
        "group_by": list(group_by),
        "group_wait": group_wait,
        "group_interval": group_interval,
        "repeat_interval": repeat_interval,
    }
    if child_routes:
        route["routes"] = child_routes
    return {
        "route": route,
        "receivers": all_receivers,
        "inhibit_rules": inhibit_rules() + [dict(r) for r in extra_inhibit_rules or []],
    }
