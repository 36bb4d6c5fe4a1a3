# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Cluster-wide (DCS) configuration of Patroni: what to PATCH.

Pure Python; nothing here imports Ansible. Patroni reads ``bootstrap.dcs``
of its configuration file only when it initialises a cluster; afterwards
the cluster-wide settings live in the DCS and change through ``PATCH
/config`` (a JSON merge patch). :func:`config_patch` computes the smallest
patch that brings the current configuration (``GET /config``) to the
desired one; keys the desired configuration does not name are left alone.

    patch = config_patch(current, desired)       # {} when nothing differs
    restart_parameters(patch)                    # parameters needing a restart
    merge(current, patch)                        # the configuration after it

A standby cluster is one whose DCS has ``standby_cluster``: its leader
follows another cluster. Whether a run may change that is decided by
:func:`standby_change` before anything is sent: turning a standby cluster
into an ordinary one (promotion) or an ordinary one into a standby cluster
(demotion) is refused unless the run says so.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping, Optional, Tuple

__all__ = ["RESTART_PARAMETERS", "same_value", "config_patch", "restart_parameters", "merge", "standby_change"]

#: PostgreSQL parameters of the DCS that only change with a restart
#: (``context = postmaster``).
RESTART_PARAMETERS = frozenset(
    (
        "max_connections",
        "max_worker_processes",
        "max_wal_senders",
        "max_replication_slots",
        "max_prepared_transactions",
        "max_locks_per_transaction",
        "track_commit_timestamp",
        "wal_level",
        "wal_log_hints",
        "hot_standby",
        "archive_mode",
        "shared_buffers",
        "shared_preload_libraries",
        "max_files_per_process",
    )
)

_BOOL_WORDS = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


def _normal(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _BOOL_WORDS and word not in ("0", "1"):
            return _BOOL_WORDS[word]
        return value.strip()
    return value


def same_value(current: Any, desired: Any) -> bool:
    """Whether two scalar values mean the same to Patroni/PostgreSQL:
    ``'200'`` and ``200``, ``'on'`` and ``True`` are the same; ``None`` and
    ``False`` are not."""
    if isinstance(current, Mapping) or isinstance(desired, Mapping):
        return current == desired
    if isinstance(current, list) or isinstance(desired, list):
        return current == desired
    if current is None or desired is None:
        return current is desired
    return _normal(current) == _normal(desired)


def config_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> Dict[str, Any]:
    """The merge patch that sets every key of *desired* in *current*.

    Mappings are compared key by key (recursively); other values with
    :func:`same_value`. A key of *desired* set to ``None`` removes the key
    from the DCS and is patched only when *current* has it. Keys absent from
    *desired* are never touched. Returns ``{}`` when nothing differs."""
    patch: Dict[str, Any] = {}
    current = current or {}
    for key in sorted(desired):
        want = desired[key]
        have = current.get(key)
        if want is None:
            if key in current and have is not None:
                patch[key] = None
            continue
        if isinstance(want, Mapping):
            if isinstance(have, Mapping):
                sub = config_patch(have, want)
                if sub:
                    patch[key] = sub
            else:
                # nothing there: keys to remove have nothing to remove
                fresh = _without_nulls(want)
                if fresh or not want:
                    patch[key] = fresh
            continue
        if key not in current or not same_value(have, want):
            patch[key] = copy.deepcopy(want)
    return patch


def _without_nulls(value: Mapping[str, Any]) -> Dict[str, Any]:
    """*value* without its ``None`` keys, at every depth (a copy)."""
    return {
        k: _without_nulls(v) if isinstance(v, Mapping) else copy.deepcopy(v) for k, v in value.items() if v is not None
    }


def restart_parameters(patch: Mapping[str, Any]) -> List[str]:
    """Sorted names of the PostgreSQL parameters in *patch* that need a
    restart of PostgreSQL to take effect."""
    params = (patch.get("postgresql") or {}).get("parameters") or {}
    return sorted(p for p in params if p in RESTART_PARAMETERS)


def merge(current: Mapping[str, Any], patch: Mapping[str, Any]) -> Dict[str, Any]:
    """*current* with *patch* applied as Patroni applies it (JSON merge
    patch: mappings merge, ``None`` removes, anything else replaces)."""
    out = copy.deepcopy(dict(current or {}))
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _follows(block: Any) -> str:
    if not isinstance(block, Mapping):
        return "another cluster"
    host, port = block.get("host"), block.get("port")
    if host is None:
        return "another cluster"
    return "%s:%s" % (host, port) if port is not None else str(host)


def standby_change(
    current: Mapping[str, Any],
    desired: Mapping[str, Any],
    scope: str,
    allow: bool = False,
    running_primary: Optional[str] = None,
) -> Tuple[Dict[str, Any], Optional[str]]:
    """(configuration to push, refusal) for a run whose desired
    configuration (``bootstrap.dcs`` of the model) may disagree with the
    DCS (*current*) on whether *scope* is a standby cluster.

    * Both agree: *desired* unchanged, no refusal. A standby cluster whose
      ``standby_cluster`` differs (another upstream) is re-pointed by the
      push itself: that is no change of role.
    * The model says standby, the DCS does not (the cluster was promoted):
      pushing would turn its primary back into a standby leader, and the
      writes it took since are lost unless the source has them. Refused
      unless *allow*; refused even then while *running_primary* (the name
      of a member running a primary) is given: Patroni 3.0.2 stops a
      primary it finds in a standby cluster at once (``immediate``), with
      no wait for its standbys to receive its last writes. A planned
      reversal stops it cleanly first (``playbooks/pgsql-reverse.yml``).
    * The model says ordinary, the DCS says standby (the inventory lost
      ``pg_upstream``, or the cluster is being promoted): the key would be
      left alone and the cluster would stay a standby cluster while every
      other role treats it as ordinary. Refused unless *allow*; with
      *allow*, ``standby_cluster: null`` is pushed, which promotes it.

    The refusal names the cluster, what the DCS and the inventory say, and
    the two ways on."""
    have = (current or {}).get("standby_cluster")
    want = desired.get("standby_cluster")
    if bool(have) == bool(want):
        return dict(desired), None
    if want:
        if allow and running_primary:
            return dict(desired), (
                "%s runs its primary (%s), and the run would make it a standby cluster following %s: Patroni stops "
                "a primary it finds in a standby cluster at once, without waiting for its standbys to receive its "
                "last writes, which would be lost. Nothing was sent to the DCS. For a planned reversal with its "
                "standby cluster run playbooks/pgsql-reverse.yml, which stops the primary cleanly first (docs/dr.md, "
                "\"Role reversal\"); otherwise stop the cluster (patronictl pause, then stop PostgreSQL) and run "
                "again." % (scope, running_primary, _follows(want))
            )
        if allow:
            return dict(desired), None
        return dict(desired), (
            "%s is an ordinary cluster in its DCS (it was promoted, or never followed another cluster), but the "
            "inventory makes it a standby cluster following %s (pg_upstream of its leader). Pushing that would turn "
            "its primary into a standby leader, and the writes it took that %s does not have would be lost. Nothing "
            "was sent to the DCS. To keep it as it is, remove pg_upstream from its leader in the inventory; to make "
            "it follow %s: while it runs, playbooks/pgsql-reverse.yml (docs/dr.md, \"Role reversal\"); once it is "
            "stopped (an old site after a promotion), run again with -e pg_standby_change=%s."
            % (scope, _follows(want), _follows(want), _follows(want), scope)
        )
    if allow:
        if (current or {}).get("pause") is True:
            # Patroni 3.0.2 does not promote a paused standby leader: with
            # standby_cluster gone it drops the leader key instead
            return dict(desired), (
                "%s is paused (maintenance mode), and Patroni does not promote a paused standby cluster. Nothing was "
                "sent to the DCS. Resume it first (patronictl resume %s), then run again." % (scope, scope)
            )
        out = dict(desired)
        out["standby_cluster"] = None
        return out, None
    return dict(desired), (
        "%s is a standby cluster following %s in its DCS, but the inventory makes it an ordinary cluster (its "
        "leader has no pg_upstream). Nothing was sent to the DCS. To promote it (it stops following %s and takes "
        "writes), run again with -e pg_standby_change=%s (docs/dr.md, \"Promote a standby cluster\"); to keep it "
        "a standby cluster, put pg_upstream back on its leader." % (scope, _follows(have), _follows(have), scope)
    )
