# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Planned operations on a Patroni cluster, decided from ``GET /cluster``.

Pure functions: what a switchover, failover or restart would do and whether
it is safe, given the cluster as Patroni reports it. The modules
(``patroni_switchover``, ``patroni_restart``) do the HTTP and the waiting.

``GET /cluster`` (Patroni 3.0) answers ``{"members": [{"name", "role",
"state", "host", "port", "api_url", "timeline", "lag", "tags", ...}]}``;
``role`` is ``leader``, ``standby_leader``, ``replica`` or
``sync_standby``; ``state`` is ``running`` (``streaming`` for replicas in
Patroni 3.1+); ``lag`` is bytes, or ``"unknown"``; ``timeline`` is the
timeline the member is on (a replica replays up to the leader's).

A replica on another timeline than the leader's does not follow the
leader's history (it has not replayed the last promotion yet, or it has
diverged and needs pg_rewind or a new base backup). Its ``lag`` can read 0
all the same, because Patroni compares WAL positions across timelines; it
is not healthy and never a candidate: promoting it loses what the leader
acknowledged since the timelines parted.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

LEADER_ROLES = ("leader", "standby_leader", "master", "primary")
HEALTHY_STATES = ("running", "streaming")


class OperationRefused(Exception):
    """The operation is not safe now; the message says why and what to do."""


def members(cluster: Mapping[str, Any]) -> List[Dict[str, Any]]:
    return [dict(m) for m in cluster.get("members") or []]


def leader_of(cluster: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
    found = [m for m in members(cluster) if m.get("role") in LEADER_ROLES]
    return found[0] if len(found) == 1 else None


def lag_of(member: Mapping[str, Any]) -> Optional[int]:
    lag = member.get("lag", 0)
    return lag if isinstance(lag, int) and not isinstance(lag, bool) else None


def timeline_of(member: Mapping[str, Any]) -> Optional[int]:
    tl = member.get("timeline")
    return tl if isinstance(tl, int) and not isinstance(tl, bool) else None


def off_timeline(member: Mapping[str, Any], leader: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why ``member`` does not follow ``leader``'s timeline, or None. A
    member or leader that reports no timeline is not judged here."""
    if leader is None or member.get("name") == leader.get("name"):
        return None
    mine, theirs = timeline_of(member), timeline_of(leader)
    if mine is None or theirs is None or mine == theirs:
        return None
    return "%s is on timeline %d, the leader %s on %d" % (member.get("name"), mine, leader.get("name"), theirs)


def _excluded(member: Mapping[str, Any]) -> bool:
    return bool((member.get("tags") or {}).get("nofailover"))


def problems(cluster: Mapping[str, Any], max_lag: Optional[int]) -> List[str]:
    """Reasons the cluster is not healthy enough for a planned operation."""
    out: List[str] = []
    ms = members(cluster)
    if not ms:
        return ["Patroni reports no members"]
    current = leader_of(cluster)
    if current is None:
        out.append(
            "the cluster has %s leader"
            % ("no" if not any(m.get("role") in LEADER_ROLES for m in ms) else "more than one")
        )
    for m in ms:
        diverged = off_timeline(m, current)
        if m.get("state") not in HEALTHY_STATES:
            out.append("%s is %s" % (m.get("name"), m.get("state")))
        elif diverged:
            out.append(diverged)
        elif m.get("role") not in LEADER_ROLES and max_lag is not None:
            lag = lag_of(m)
            if lag is None:
                out.append("%s reports an unknown replication lag" % m.get("name"))
            elif lag > max_lag:
                out.append("%s lags %d bytes behind (more than %d)" % (m.get("name"), lag, max_lag))
    return out


def plan_switchover(
    cluster: Mapping[str, Any],
    candidate: Optional[str] = None,
    leader: Optional[str] = None,
    max_lag: Optional[int] = 1048576,
    force: bool = False,
) -> Dict[str, Any]:
    """What a planned switchover does: ``{"changed", "leader", "candidate"}``.

    ``candidate``: the member to promote (default: the healthy replica with
    the least lag). When it already leads, nothing is to be done.
    ``leader``: the member expected to lead now; refused when another does.
    Refused when the cluster is unhealthy (``force`` skips only the lag and
    state checks of members other than the candidate)."""
    current = leader_of(cluster)
    if current is None:
        raise OperationRefused(
            "no single leader (%s): a switchover needs one; use a failover to "
            "promote a replica" % (", ".join(problems(cluster, None)) or "no members")
        )
    if leader is not None and current["name"] != leader:
        if candidate is not None and current["name"] == candidate:
            return {"changed": False, "leader": current["name"], "candidate": candidate}
        raise OperationRefused(
            "%s leads the cluster, not %s: check `patronictl list` and "
            "name the current leader" % (current["name"], leader)
        )
    if candidate is not None and current["name"] == candidate:
        return {"changed": False, "leader": current["name"], "candidate": candidate}

    replicas = [m for m in members(cluster) if m["name"] != current["name"]]
    if candidate is None:
        eligible = [
            m
            for m in replicas
            if m.get("state") in HEALTHY_STATES
            and not _excluded(m)
            and lag_of(m) is not None
            and not off_timeline(m, current)
        ]
        sync = [m for m in eligible if m.get("role") == "sync_standby"]
        eligible = sync or eligible  # synchronous mode: Patroni promotes only these
        if not eligible:
            raise OperationRefused(
                "no healthy replica can take over: %s" % (", ".join(problems(cluster, max_lag)) or "no replicas")
            )
        chosen = min(eligible, key=lambda m: (lag_of(m), m["name"]))
    else:
        found = [m for m in replicas if m["name"] == candidate]
        if not found:
            raise OperationRefused(
                "%s is not a member of the cluster (members: %s)"
                % (candidate, ", ".join(m["name"] for m in members(cluster)))
            )
        chosen = found[0]
        if _excluded(chosen):
            raise OperationRefused("%s is tagged nofailover and cannot be promoted" % candidate)
        sync_names = [m["name"] for m in replicas if m.get("role") == "sync_standby"]
        if sync_names and candidate not in sync_names:
            raise OperationRefused(
                "the cluster runs in synchronous mode and %s is not a synchronous "
                "standby (%s): pick one of those" % (candidate, ", ".join(sync_names))
            )

    lag = lag_of(chosen)
    if chosen.get("state") not in HEALTHY_STATES:
        raise OperationRefused("the candidate %s is %s, not streaming" % (chosen["name"], chosen.get("state")))
    diverged = off_timeline(chosen, current)
    if diverged:
        raise OperationRefused(
            "the candidate %s: it does not follow the leader's history, and promoting it "
            "would lose what the leader wrote since; wait until it has replayed the leader's "
            "timeline, or rebuild it (patronictl reinit %s %s)"
            % (diverged, cluster.get("scope", "CLUSTER"), chosen["name"])
        )
    if max_lag is not None and (lag is None or lag > max_lag):
        raise OperationRefused(
            "the candidate %s lags %s bytes (limit %d): wait for it to catch up"
            % (chosen["name"], "an unknown number of" if lag is None else lag, max_lag)
        )
    if not force:
        others = [p for p in problems(cluster, max_lag) if not p.startswith(chosen["name"] + " ")]
        if others:
            raise OperationRefused("the cluster is not healthy: %s (force skips this check)" % "; ".join(others))
    return {"changed": True, "leader": current["name"], "candidate": chosen["name"]}


def switched(cluster: Mapping[str, Any], candidate: str) -> bool:
    """Whether ``candidate`` now leads and runs."""
    current = leader_of(cluster)
    if not current:
        return False
    return current["name"] == candidate and current.get("state") in HEALTHY_STATES


def healthy(cluster: Mapping[str, Any], expected: Sequence[str] = ()) -> bool:
    """One leader, every member running, and the ``expected`` members present."""
    names = {m.get("name") for m in members(cluster)}
    return leader_of(cluster) is not None and not problems(cluster, None) and set(expected) <= names


def role_drift(cluster: Mapping[str, Any], members: Sequence[Mapping[str, Any]]) -> List[str]:
    """What differs between the live roles Patroni reports (``GET
    /cluster``) and the inventory's (``members``: the model's member
    identities, ``instance`` and ``role``), as information for the
    operator: after a failover or switchover the inventory's ``pg_role``
    names the member that bootstrapped the cluster, not the leader, and
    that is expected. Empty when they agree (or when ``cluster`` is no
    answer)."""
    out: List[str] = []
    if not isinstance(cluster, Mapping) or "members" not in cluster:
        return out
    live: Dict[Any, Dict[str, Any]] = {m.get("name"): m for m in members_of_answer(cluster)}
    leader = leader_of(cluster)
    primaries = [m["instance"] for m in members if m.get("role") == "primary"]
    name = (members[0].get("cluster") if members else None) or "the cluster"
    if leader is None:
        out.append(
            "%s: no member leads (Patroni reports %s)"
            % (name, ", ".join("%s %s" % (n, m.get("state")) for n, m in sorted(live.items())) or "no member")
        )
    elif primaries and leader.get("name") not in primaries:
        out.append(
            "%s: %s leads, while pg_role names %s as primary: expected after a failover or "
            "switchover (services, VIP and pgbouncer follow the live roles, and pgsql.yml never "
            "moves the leader back); set pg_role: primary on %s when convenient"
            % (name, leader["name"], " and ".join(primaries), leader["name"])
        )
    for m in members:
        if m["instance"] not in live:
            out.append("%s: %s is in the inventory but not among the members Patroni reports" % (name, m["instance"]))
    known = {m["instance"] for m in members}
    for other in sorted(n for n in live if n not in known):
        out.append("%s: Patroni reports %s, which the inventory does not list" % (name, other))
    return out


def members_of_answer(cluster: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """``members`` of a ``GET /cluster`` answer, or [] for anything else."""
    return members(cluster) if isinstance(cluster, Mapping) else []
