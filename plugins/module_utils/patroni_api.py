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
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping

__all__ = ["RESTART_PARAMETERS", "same_value", "config_patch", "restart_parameters", "merge"]

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
            sub = config_patch(have if isinstance(have, Mapping) else {}, want)
            if sub or not isinstance(have, Mapping):
                patch[key] = sub if isinstance(have, Mapping) else copy.deepcopy(dict(want))
            continue
        if key not in current or not same_value(have, want):
            patch[key] = copy.deepcopy(want)
    return patch


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
