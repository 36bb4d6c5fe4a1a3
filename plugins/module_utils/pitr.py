# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Point-in-time recovery: from ``pg_pitr`` to a checked restore plan.

Pure functions, no Ansible. :func:`pitr_plan` checks the ``pg_pitr``
mapping a user passes to ``playbooks/pgsql-pitr.yml`` and returns what the
playbook does: the ``pgbackrest restore`` command line, a one-line summary
it prints before touching anything, and the recovery settings it clears
once the restored instance is promoted. Every mistake is reported as a
:class:`Problem` naming the cluster, the ``pg_pitr`` key, the value and the
fix, all of them at once.

``pg_pitr`` keys (docs/backup.md):

``time`` / ``name`` / ``lsn`` / ``xid``
    the recovery target (at most one); ``type: immediate`` stops as soon as
    the backup is consistent; none of them replays the whole archive.
``type``
    optional, ``time``/``name``/``lsn``/``xid`` (then the matching key is
    required), ``immediate`` or ``default`` (end of the archive).
``action``
    ``promote`` (default: the playbook brings the cluster back under
    Patroni), ``pause`` (the restored instance waits, read-only, for
    inspection; run again with ``resume: true``) or ``shutdown``.
``exclusive``
    stop just before the target instead of just after (time, lsn, xid).
``set``
    backup label to restore from, e.g. ``20261122-101500F``; default: the
    newest backup before a time target, else the newest.
``timeline``
    ``current``, ``latest`` or a timeline number.
``cluster``
    restore another cluster's backups (its stanza) into this one.
``resume``
    continue a paused recovery: promote it and bring the cluster back.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Dict, List, Mapping, Optional, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    CLUSTER_NAME,
)

__all__ = [
    "TARGET_KEYS",
    "KEYS",
    "ACTIONS",
    "RECOVERY_PARAMETERS",
    "check_pitr",
    "pitr_plan",
    "reach",
    "choose_member",
    "lsn_int",
]

#: Keys that name a recovery target, in the order they are reported.
TARGET_KEYS = ("time", "name", "lsn", "xid")
#: Every key ``pg_pitr`` may hold.
KEYS = TARGET_KEYS + ("type", "action", "exclusive", "set", "timeline", "cluster", "resume")
#: ``recovery_target_action`` values.
ACTIONS = ("promote", "pause", "shutdown")
#: ``type`` values: a target key's name, or a target of its own.
TYPES = TARGET_KEYS + ("immediate", "default")
#: Settings pgBackRest writes into ``postgresql.auto.conf``; cleared after
#: the promotion, else a later replica would stop at the old target or
#: fetch WAL from another cluster's stanza.
RECOVERY_PARAMETERS = (
    "restore_command",
    "recovery_target",
    "recovery_target_time",
    "recovery_target_name",
    "recovery_target_lsn",
    "recovery_target_xid",
    "recovery_target_inclusive",
    "recovery_target_action",
    "recovery_target_timeline",
)

_LSN = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}\Z")
_LABEL = re.compile(r"^\d{8}-\d{6}F(_\d{8}-\d{6}[DI])?\Z")
# PostgreSQL keeps restore point names in 64 bytes with the terminator.
_NAME_MAX = 63
_XID_MIN = 3  # FirstNormalTransactionId
_XID_MAX = 2**64 - 1


def _parse_time(text: str) -> Optional[datetime.datetime]:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # PostgreSQL writes offsets as +08; Python wants +08:00.
    m = re.match(r"^(.*[+-])(\d{2})\Z", value)
    if m and ":" in m.group(1):
        value = "%s%s:00" % (m.group(1), m.group(2))
    try:
        return datetime.datetime.fromisoformat(value)
    except ValueError:
        return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_pitr(pitr: Any, *, cluster: str, repo_type: str = "posix") -> List[Problem]:
    """Every problem of ``pg_pitr`` for ``cluster``; empty when it is fine.

    ``repo_type`` is the cluster's repository type (``posix`` or ``s3``):
    a posix repository lives on the cluster's own node, so it cannot hold
    another cluster's backups (a removed cluster's backups in a shared
    repository are fine: the name is not looked up in the inventory).
    """
    out: List[Problem] = []

    def problem(key, value, what, fix):
        field = "pg_pitr" if key is None else "pg_pitr.%s" % key
        out.append(Problem(cluster, None, field, value, what, fix))

    if not isinstance(pitr, Mapping):
        problem(
            None,
            pitr,
            "is not a mapping",
            "pass it as JSON, e.g. -e '{\"pg_pitr\": {\"time\": \"2026-11-22 10:00:00+00\"}}'",
        )
        return out
    for key in sorted(set(pitr) - set(KEYS)):
        problem(key, pitr[key], "is not a pg_pitr key", "use only %s" % ", ".join(KEYS))

    targets = [k for k in TARGET_KEYS if pitr.get(k) is not None]
    ptype = pitr.get("type")
    if ptype is not None and ptype not in TYPES:
        problem("type", ptype, "is not a recovery target type", "use one of %s" % ", ".join(TYPES))
        ptype = None
    if len(targets) > 1:
        problem(
            targets[1],
            pitr[targets[1]],
            "is a second recovery target (%s is set too)" % targets[0],
            "give one of %s" % ", ".join(TARGET_KEYS),
        )
    if ptype in TARGET_KEYS and not targets:
        problem(ptype, None, "is missing although type is %r" % ptype, "add pg_pitr.%s, or drop pg_pitr.type" % ptype)
    if ptype in ("immediate", "default") and targets:
        problem(
            "type", ptype, "takes no target but %s is set" % targets[0], "drop pg_pitr.%s or pg_pitr.type" % targets[0]
        )
    if ptype in TARGET_KEYS and targets and targets[0] != ptype:
        problem("type", ptype, "does not match the target %s" % targets[0], "set type to %r or drop it" % targets[0])

    if "time" in targets:
        t = pitr["time"]
        if not isinstance(t, str) or _parse_time(t) is None:
            problem(
                "time",
                t,
                "is not a timestamp",
                "write it as 'YYYY-MM-DD HH:MM:SS+00' (ISO 8601, with the time zone offset)",
            )
        elif cast(datetime.datetime, _parse_time(t)).tzinfo is None:
            problem(
                "time",
                t,
                "has no time zone offset",
                "append the offset, e.g. '%s+00': without it the server's TimeZone would decide" % t.strip(),
            )
    if "name" in targets:
        n = pitr["name"]
        if not isinstance(n, str) or not n or len(n.encode()) > _NAME_MAX:
            problem(
                "name",
                n,
                "is not a restore point name",
                "give the name passed to pg_create_restore_point() (1 to %d bytes)" % _NAME_MAX,
            )
    if "lsn" in targets:
        lsn = pitr["lsn"]
        if not isinstance(lsn, str) or not _LSN.match(lsn):
            problem("lsn", lsn, "is not an LSN", "write it as PostgreSQL prints it, e.g. '0/7000028'")
    if "xid" in targets:
        xid = pitr["xid"]
        if isinstance(xid, str) and xid.isdigit():
            xid = int(xid)
        if not _is_int(xid) or not _XID_MIN <= xid <= _XID_MAX:
            problem(
                "xid",
                pitr["xid"],
                "is not a transaction id",
                "give a number >= %d, e.g. from txid_current()" % _XID_MIN,
            )

    has_target = bool(targets) or ptype == "immediate"
    action = pitr.get("action", "promote")
    if action not in ACTIONS:
        problem("action", action, "is not a recovery target action", "use one of %s" % ", ".join(ACTIONS))
    elif action != "promote" and not has_target:
        problem(
            "action",
            action,
            "needs a target: without one the whole archive is replayed and the instance promotes",
            "add time, name, lsn, xid or type: immediate, or drop action",
        )

    exclusive = pitr.get("exclusive", False)
    if not isinstance(exclusive, bool):
        problem("exclusive", exclusive, "is not a boolean", "write true or false")
    elif exclusive and not set(targets) & {"time", "lsn", "xid"}:
        problem("exclusive", exclusive, "applies to time, lsn and xid targets only", "drop pg_pitr.exclusive")

    bset = pitr.get("set")
    if bset is not None and (not isinstance(bset, str) or not _LABEL.match(bset)):
        problem(
            "set",
            bset,
            "is not a backup label",
            "copy a label from `pgbackrest info`, e.g. 20261122-101500F or 20261122-101500F_20261122-120000I",
        )

    tl = pitr.get("timeline")
    if tl is not None and tl not in ("current", "latest") and not (_is_int(tl) and tl >= 1):
        problem("timeline", tl, "is not a timeline", "use current, latest or a timeline number (>= 1)")

    source = pitr.get("cluster")
    if source is not None:
        if not isinstance(source, str) or not CLUSTER_NAME.match(source):
            problem(
                "cluster", source, "is not a cluster name", "name the cluster whose backups to restore, e.g. pg-meta"
            )
        elif source != cluster and repo_type == "posix":
            problem(
                "cluster",
                source,
                "is another cluster, but %s backs up "
                "to a posix repository on its own node, which holds no "
                "other cluster's backups" % cluster,
                "restore from a shared repository (pgbackrest_method minio, or an S3 repository both clusters use)",
            )

    resume = pitr.get("resume", False)
    if not isinstance(resume, bool):
        problem("resume", resume, "is not a boolean", "write true or false")
    elif resume:
        extra = [k for k in KEYS if k != "resume" and pitr.get(k) is not None]
        if extra:
            problem(
                "resume",
                resume,
                "continues a paused recovery and takes no other key (%s given)" % ", ".join(extra),
                "pass only {\"resume\": true}",
            )
    return out


def pitr_plan(pitr: Any, *, cluster: str, pg_data: str, repo_type: str = "posix") -> Dict[str, Any]:
    """The checked restore plan of ``pg_pitr`` for ``cluster``.

    Raises :class:`ModelError` listing every problem. The plan holds
    ``stanza`` (whose backups), ``target_type``, ``target``, ``action``,
    ``resume``, ``set``, ``restore_argv`` (the ``pgbackrest restore``
    command, into an empty data directory: the playbook keeps the current
    one beside it until the recovery is checked), ``reset_parameters`` and
    ``summary``.
    """
    problems = check_pitr(pitr, cluster=cluster, repo_type=repo_type)
    if problems:
        raise ModelError(problems)
    pitr = dict(pitr)
    resume = bool(pitr.get("resume", False))
    stanza = pitr.get("cluster") or cluster
    targets = [k for k in TARGET_KEYS if pitr.get(k) is not None]
    ttype = targets[0] if targets else (pitr.get("type") or "default")
    target = None if not targets else str(pitr[targets[0]])
    action = pitr.get("action", "promote")

    argv = ["pgbackrest", "--stanza=%s" % stanza, "--pg1-path=%s" % pg_data, "--type=%s" % ttype]
    if target is not None:
        argv.append("--target=%s" % target)
    if ttype != "default":
        argv.append("--target-action=%s" % action)
    if pitr.get("exclusive"):
        argv.append("--target-exclusive")
    if pitr.get("set"):
        argv.append("--set=%s" % pitr["set"])
    if pitr.get("timeline") is not None:
        argv.append("--target-timeline=%s" % pitr["timeline"])
    argv.append("restore")

    if resume:
        summary = "resume the paused recovery of %s: promote it and bring the cluster back under Patroni" % cluster
    else:
        where = {
            "default": "the end of the WAL archive",
            "immediate": "the end of the backup (first consistent point)",
        }.get(ttype, "%s %r%s" % (ttype, target, " (exclusive)" if pitr.get("exclusive") else ""))
        source = (
            "backup %s" % pitr["set"]
            if pitr.get("set")
            else ("the newest backup before it" if ttype == "time" else "the newest backup")
        )
        then = {
            "promote": "promote it and bring the cluster back under Patroni, re-cloning the replicas",
            "pause": "leave it paused, read-only, for inspection (run again with {\"resume\": true})",
            "shutdown": "shut it down at the target",
        }[action]
        summary = "restore %s to %s from %s of stanza %s, then %s" % (cluster, where, source, stanza, then)
    return {
        "cluster": cluster,
        "stanza": stanza,
        "foreign": stanza != cluster,
        "target_type": ttype,
        "target": target,
        "action": action,
        "resume": resume,
        "set": pitr.get("set"),
        "restore_argv": argv,
        "reset_parameters": list(RECOVERY_PARAMETERS),
        "summary": summary,
    }


#: ``pg_controldata`` lines of the settings a hot standby must match or
#: exceed, and the parameter each one is.
_CONTROLDATA = {
    "max_connections setting": "max_connections",
    "max_worker_processes setting": "max_worker_processes",
    "max_wal_senders setting": "max_wal_senders",
    "max_prepared_xacts setting": "max_prepared_transactions",
    "max_locks_per_xact setting": "max_locks_per_transaction",
}


def controldata_settings(text: str) -> Dict[str, int]:
    """The hot-standby settings recorded in ``pg_controldata`` output."""
    out: Dict[str, int] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        name = _CONTROLDATA.get(key.strip())
        if sep and name and value.strip().isdigit():
            out[name] = int(value.strip())
    return out


def start_options(controldata: str, parameters: Mapping[str, Any], port: int) -> str:
    """``pg_ctl -o`` options that start a restored data directory outside
    Patroni: local socket only (no client reaches it before the cluster is
    back), hot standby on (so a paused recovery can be inspected), and each
    hot-standby setting at least as high as both the backup's primary
    (``pg_controldata``) and the cluster's configuration."""
    recorded = controldata_settings(controldata)
    opts = ["-c listen_addresses=''", "-c port=%d" % int(port), "-c hot_standby=on"]
    for name in sorted(set(_CONTROLDATA.values())):
        values = [recorded.get(name)]
        configured = parameters.get(name)
        if configured is not None and str(configured).isdigit():
            values.append(int(configured))
        known = [v for v in values if v is not None]
        if known:
            opts.append("-c %s=%d" % (name, max(known)))
    return " ".join(opts)


# ------------------------------------------------- can the repository reach it


def lsn_int(text: str) -> Optional[int]:
    """``0/3000050`` as an integer, None when it is not an LSN."""
    if not isinstance(text, str) or not _LSN.match(text):
        return None
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _utc(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S+00")


def reach(info: Any, plan: Mapping[str, Any], *, now: int, archive_current: bool) -> Dict[str, Any]:
    """Whether one repository can take the cluster to ``plan``'s target.

    ``info`` is ``pgbackrest info --output=json`` of the plan's stanza
    there (the list pgBackRest prints, or its first element);
    ``archive_current`` tells whether ``pgbackrest check`` on the live
    leader just succeeded against that repository (its WAL is archived up to
    now, so any time up to ``now``, epoch seconds, is within the archive).

    Returns ``{"ok", "reason", "oldest", "newest", "backups", "size"}``: the
    oldest point a recovery can stop at (the end of the oldest backup set:
    a restore is consistent only from there), the newest it is known to
    reach, as text for the messages, the number of usable backup sets and
    the size of the largest (what a restore writes at most). Targets the
    repository cannot tell about (a restore point name, an xid) are
    accepted once a backup set exists; a restore that then fails is undone
    by the playbook.
    """
    stanza = info[0] if isinstance(info, list) and info else info
    if not isinstance(stanza, Mapping):
        return {"ok": False, "reason": "pgbackrest info gave no stanza", "oldest": None, "newest": None, "backups": 0}
    backups = [
        b
        for b in stanza.get("backup") or []
        if isinstance(b, Mapping) and not b.get("error") and isinstance((b.get("timestamp") or {}).get("stop"), int)
    ]
    status = (stanza.get("status") or {}).get("message", "")
    if not backups:
        return {
            "ok": False,
            "oldest": None,
            "newest": None,
            "backups": 0,
            "reason": "the repository holds no backup set of stanza %s (%s)"
            % (stanza.get("name", plan.get("stanza")), status or "no backup"),
        }
    backups.sort(key=lambda b: b["timestamp"]["stop"])
    first, last = backups[0], backups[-1]
    oldest_t = first["timestamp"]["stop"]
    newest_t = now if archive_current else last["timestamp"]["stop"]
    archive_max = max((a.get("max") or "" for a in stanza.get("archive") or [] if isinstance(a, Mapping)), default="")
    out = {
        "ok": True,
        "reason": "",
        "backups": len(backups),
        # bytes a restore writes at most (the largest backup set)
        "size": max(int((b.get("info") or {}).get("size") or 0) for b in backups),
        "oldest": "%s (end of backup %s)" % (_utc(oldest_t), first["label"]),
        "newest": (
            "%s (now: the leader's WAL is archived)" % _utc(now)
            if archive_current
            else "%s (end of backup %s; archived WAL up to segment %s may reach further)"
            % (_utc(newest_t), last["label"], archive_max or "-")
        ),
    }
    ttype, target = plan.get("target_type"), plan.get("target")
    if plan.get("set"):
        labels = [b["label"] for b in backups]
        if plan["set"] not in labels:
            out.update(
                ok=False,
                reason="backup set %s is not in the repository (it holds %s)" % (plan["set"], ", ".join(labels)),
            )
            return out
    if ttype == "time":
        when = _parse_time(target or "")
        if when is None:
            out.update(ok=False, reason="the target time %r cannot be read" % (target,))
            return out
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        epoch = int(when.timestamp())
        if epoch < oldest_t:
            out.update(
                ok=False,
                reason="the target %s is older than every backup set: the oldest "
                "recovery point is %s" % (_utc(epoch), out["oldest"]),
            )
        elif epoch > newest_t:
            out.update(
                ok=False,
                reason="the target %s is after %s, the newest point the "
                "repository is known to reach" % (_utc(epoch), out["newest"]),
            )
    elif ttype == "lsn":
        want = lsn_int(target or "")
        oldest_lsn = lsn_int((first.get("lsn") or {}).get("stop", ""))
        if want is not None and oldest_lsn is not None and want < oldest_lsn:
            out.update(
                ok=False,
                reason="the target LSN %s is before the end of the oldest backup set "
                "(%s at %s)" % (target, first["lsn"]["stop"], first["label"]),
            )
    return out


def choose_member(reaches: Mapping[str, Mapping[str, Any]], leader: Optional[str], shared: bool) -> Optional[str]:
    """The member whose repository can take the cluster to the target: the
    live leader when its repository can (or the repository is shared by
    every member, ``shared``: S3, a repository host), else, with
    repositories of their own (``local``), the member whose repository
    reaches it with the newest backup; None when none can."""
    if shared:
        any_reach = next(iter(reaches.values()), None)
        return leader if any_reach and any_reach["ok"] else None
    if leader is not None and leader in reaches and reaches[leader]["ok"]:
        return leader
    able = sorted((m for m, r in reaches.items() if r["ok"]), key=lambda m: (-reaches[m]["backups"], m))
    return able[0] if able else None
