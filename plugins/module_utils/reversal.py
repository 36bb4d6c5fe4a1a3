# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Planned role reversal between a cluster and its standby cluster.

Pure Python; nothing here imports Ansible. ``playbooks/pgsql-reverse.yml``
makes the standby cluster *target* (which follows *source*) the ordinary
cluster, and *source* a standby cluster following it, without losing a
write and without a new base backup:

1. **stop**: *source* is paused, and its primary is stopped with a fast
   shutdown. PostgreSQL's WAL senders wait, at a shutdown, until their
   standbys have flushed every record up to the shutdown checkpoint, so
   *target* and *source*'s own replicas end where the primary ended.
   (Pushing ``standby_cluster`` to a running primary instead makes Patroni
   3.0.2 stop it at once, ``immediate``, with no such wait.)
2. **caught up**: *target*'s standby leader has replayed past that
   checkpoint; else the run gives *source* back (resumes it) and stops.
3. **demote**: *source* gets ``standby_cluster`` (following *target*) and
   is resumed: a member takes its leader key as a standby leader.
4. **promote**: ``standby_cluster`` is removed from *target*'s DCS: its
   standby leader is promoted onto a new timeline, which *source*'s
   standby leader follows (it replayed up to the same checkpoint: no
   rewind is needed).

Each run reads where the two clusters are (:func:`phase`) and goes on from
there, so a run stopped half-way is finished by running it again.

``config`` is ``GET /config`` of a cluster, ``cluster`` its ``GET
/cluster``; *source_of* tells which cluster of the inventory a
``standby_cluster`` block in a cluster's DCS names (an address of one of
its members, or its VIP).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_ops import LEADER_ROLES
from ansible_collections.pigpen.pgsql.plugins.module_utils.pitr import lsn_int

__all__ = [
    "PHASES",
    "phase",
    "running_primary",
    "controldata",
    "replayed_past",
    "views_from",
    "member_hosts",
    "plan",
    "stop_point",
]

#: The phases of a reversal, in order (see the module's documentation).
PHASES = ("start", "stopped", "demoted", "done")

#: Roles of a member running a primary (``standby_leader`` is no primary).
PRIMARY_ROLES = tuple(r for r in LEADER_ROLES if r != "standby_leader")
RUNNING = ("running", "streaming")


def controldata(text: str) -> Dict[str, Any]:
    """What a reversal reads in ``pg_controldata`` output: ``state``
    (``shut down`` after a clean stop of a primary), ``checkpoint`` (the
    latest checkpoint's LSN, text) and ``timeline`` (int or None)."""
    out: Dict[str, Any] = {"state": None, "checkpoint": None, "timeline": None}
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Database cluster state":
            out["state"] = value
        elif key == "Latest checkpoint location":
            out["checkpoint"] = value if lsn_int(value) is not None else None
        elif key == "Latest checkpoint's TimeLineID":
            out["timeline"] = int(value) if value.isdigit() else None
    return out


def replayed_past(replayed: Any, mark: Any, inclusive: bool = False) -> bool:
    """Whether a standby's ``pg_last_wal_replay_lsn()`` (the end of the last
    record it replayed) is past ``mark``: the start of the source's
    shutdown checkpoint record (``inclusive`` false: the record itself was
    replayed), or the replay position of the source's own standby leader,
    which is that record's end (``inclusive`` true). False when either is
    no LSN."""
    have, want = lsn_int(replayed), lsn_int(mark)
    if have is None or want is None:
        return False
    return have >= want if inclusive else have > want


def _members(cluster: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    return [m for m in (cluster or {}).get("members") or [] if isinstance(m, Mapping)]


def _with_role(cluster: Mapping[str, Any], roles: Tuple[str, ...]) -> List[Mapping[str, Any]]:
    return [m for m in _members(cluster) if m.get("role") in roles]


def _running(cluster: Mapping[str, Any], roles: Tuple[str, ...]) -> List[Mapping[str, Any]]:
    return [m for m in _with_role(cluster, roles) if m.get("state") in RUNNING]


def running_primary(cluster: Any) -> Optional[str]:
    """The name of a member that runs a primary, per ``GET /cluster``, or
    None."""
    found = _running(cluster if isinstance(cluster, Mapping) else {}, PRIMARY_ROLES)
    return str(found[0].get("name")) if found else None


def _describe(name: str, config: Mapping[str, Any], cluster: Mapping[str, Any]) -> str:
    block = (config or {}).get("standby_cluster")
    what = "a standby cluster following %s" % (block or {}).get("host") if block else "an ordinary cluster"
    roles = (
        ", ".join("%s %s (%s)" % (m.get("name"), m.get("role"), m.get("state")) for m in _members(cluster))
        or "no members"
    )
    return "%s is %s%s: %s" % (name, what, ", paused" if (config or {}).get("pause") is True else "", roles)


def phase(
    source: str,
    target: str,
    views: Mapping[str, Mapping[str, Any]],
    source_of: Callable[[Any, str], Optional[str]],
) -> Tuple[Optional[str], List[str]]:
    """(phase, problems) of a reversal that makes ``target`` ordinary and
    ``source`` its standby cluster.

    ``views`` maps each cluster's name to ``{"config", "cluster"}``;
    ``source_of(block, owner)`` is the cluster a ``standby_cluster`` block
    in ``owner``'s DCS names, or None. The phase is None when the two clusters are in
    none of :data:`PHASES`' states, or not healthy enough to go on;
    problems then say what was seen, else they are empty."""
    src, tgt = views.get(source) or {}, views.get(target) or {}
    s_conf, s_cl = src.get("config") or {}, src.get("cluster") or {}
    t_conf, t_cl = tgt.get("config") or {}, tgt.get("cluster") or {}
    s_block, t_block = s_conf.get("standby_cluster"), t_conf.get("standby_cluster")
    s_paused, t_paused = s_conf.get("pause") is True, t_conf.get("pause") is True
    seen = "%s; %s" % (_describe(source, s_conf, s_cl), _describe(target, t_conf, t_cl))
    problems: List[str] = []

    def follows(block: Any, owner: str, name: str) -> bool:
        return isinstance(block, Mapping) and source_of(block, owner) == name

    if not t_block and not t_paused and s_block and follows(s_block, source, target):
        # done: target leads; source follows it
        if len(_running(t_cl, PRIMARY_ROLES)) != 1:
            return None, ["%s has no single running primary yet. %s" % (target, seen)]
        return "done", []

    if not t_block or not follows(t_block, target, source):
        return None, [
            "%s is not a standby cluster following %s, and %s does not follow %s either: nothing to reverse. %s"
            % (target, source, source, target, seen)
        ]
    if t_paused:
        return None, ["%s is paused: resume it first (patronictl resume %s). %s" % (target, target, seen)]
    if len(_running(t_cl, ("standby_leader",))) != 1:
        return None, ["%s has no running standby leader. %s" % (target, seen)]

    if s_block:
        # demoted: both follow each other until target is promoted
        if not follows(s_block, source, target):
            return None, ["%s is a standby cluster of another cluster than %s. %s" % (source, target, seen)]
        if s_paused:
            return None, ["%s is paused: resume it first (patronictl resume %s). %s" % (source, source, seen)]
        return "demoted", []

    primaries = _running(s_cl, PRIMARY_ROLES)
    if s_paused:
        if primaries:
            return None, [
                "%s is paused with its primary %s running: resume it (patronictl resume %s) and run again. %s"
                % (source, primaries[0].get("name"), source, seen)
            ]
        return "stopped", []
    if len(primaries) != 1:
        return None, ["%s has no single running primary. %s" % (source, seen)]
    for m in _members(s_cl):
        if m.get("state") not in RUNNING:
            problems.append("%s is %s" % (m.get("name"), m.get("state")))
    if problems:
        return None, [
            "%s is not healthy (%s): fix it first, nothing was changed. %s" % (source, "; ".join(problems), seen)
        ]
    return "start", []


def views_from(answers: Any) -> Dict[str, Dict[str, Any]]:
    """``{cluster: {"config", "cluster"}}`` from REST API answers: a list of
    ``{"cluster", "path", "json"}`` (``path`` ``config`` or ``cluster``;
    ``json`` absent or no mapping when the member did not answer). The
    first answer of each cluster and path counts: both are cluster-wide
    (read from the DCS by whichever member answers)."""
    out: Dict[str, Dict[str, Any]] = {}
    for a in answers if isinstance(answers, list) else []:
        if not isinstance(a, Mapping) or not isinstance(a.get("json"), Mapping):
            continue
        name, path = a.get("cluster"), a.get("path")
        if isinstance(name, str) and path in ("config", "cluster"):
            out.setdefault(name, {}).setdefault(path, dict(a["json"]))
    return out


def member_hosts(view: Mapping[str, Any], hosts: Mapping[str, str]) -> Dict[str, Optional[str]]:
    """The inventory hosts of a cluster's running primary, its running
    standby leader and its leader of either kind (``primary``,
    ``standby_leader``, ``leader``; None when there is none), from its
    ``GET /cluster`` and ``hosts`` (member name -> inventory host)."""
    cl = (view or {}).get("cluster") or {}
    primary = _running(cl, PRIMARY_ROLES)
    standby = _running(cl, ("standby_leader",))
    found = {
        "primary": hosts.get(str(primary[0].get("name"))) if len(primary) == 1 else None,
        "standby_leader": hosts.get(str(standby[0].get("name"))) if len(standby) == 1 else None,
    }
    found["leader"] = found["primary"] or found["standby_leader"]
    return found


def plan(
    source: str,
    target: str,
    answers: Any,
    hosts: Mapping[str, str],
    source_of: Callable[[Any, str], Optional[str]],
) -> Dict[str, Any]:
    """What ``pgsql-reverse.yml`` does next: ``phase`` and ``problems``
    (:func:`phase`), and for ``source`` and ``target`` the hosts of
    :func:`member_hosts`, their members' names by host (``names``) and the
    ``standby_cluster`` their DCS has now (``follows``)."""
    views = views_from(answers)
    missing = [c for c in (source, target) if set(views.get(c, {})) != {"config", "cluster"}]
    if missing:
        return {
            "phase": None,
            "problems": [
                "no member of %s answered GET /config and GET /cluster on its REST API: the run cannot tell where "
                "the reversal stands. Nothing was changed." % " and ".join(missing)
            ],
        }
    found, problems = phase(source, target, views, source_of)
    out: Dict[str, Any] = {"phase": found, "problems": problems}
    for key, name in (("source", source), ("target", target)):
        out[key] = dict(member_hosts(views[name], hosts), follows=(views[name]["config"] or {}).get("standby_cluster"))
    out["names"] = {host: name for name, host in hosts.items()}
    return out


def stop_point(answers: Any) -> Dict[str, Any]:
    """Where the stopped source ended, from ``pg_controldata`` of its
    members (a list of ``{"host", "stdout"}``): ``{"host", "checkpoint"}``
    of the member that was shut down cleanly as a primary (state ``shut
    down``; a replica says ``shut down in recovery``), with the latest
    checkpoint when several were; ``{"problem"}`` when none was."""
    best: Optional[Tuple[int, str, str]] = None
    states = []
    for a in answers if isinstance(answers, list) else []:
        if not isinstance(a, Mapping):
            continue
        data = controldata(str(a.get("stdout") or ""))
        states.append("%s: %s" % (a.get("host"), data["state"] or "no answer"))
        lsn = lsn_int(data["checkpoint"])
        if data["state"] == "shut down" and lsn is not None and (best is None or lsn > best[0]):
            best = (lsn, str(a.get("host")), data["checkpoint"])
    if best is None:
        return {
            "problem": "no member of the source was shut down cleanly as a primary (%s)"
            % ("; ".join(states) or "no answer")
        }
    return {"host": best[1], "checkpoint": best[2]}
