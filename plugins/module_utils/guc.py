# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""PostgreSQL run-time parameters (GUCs) of the inventory: names and the
memory they commit.

Pure Python; nothing here imports Ansible.

* **Names.** ``pg_parameters`` and the ``parameters`` of ``pg_users``,
  ``pg_default_roles`` and ``pg_databases`` must name parameters of the
  PostgreSQL they run on. :data:`DATA_FILE` lists PostgreSQL 15's (Debian
  12's); a name of an extension (``prefix.name``, e.g.
  ``auto_explain.log_min_duration``) is always accepted, as PostgreSQL
  accepts it. An unknown name is refused with the closest known name
  (``shared_bufers``: did you mean ``shared_buffers``?). Other major
  versions (a repository beyond Debian's, ``pg_version_repo``) are not
  checked: the list is 15's.
* **Memory.** :func:`memory_problems` lays ``pg_parameters`` over the
  tuning of a member and checks the two things a node cannot survive: a
  ``shared_buffers`` larger than the node's memory (PostgreSQL does not
  start), and values that break the memory guarantee of docs/tuning.md
  (``max_connections: 5000`` with the ``work_mem`` sized for 290
  connections). The node's size is the inventory's or the facts'; on the
  reference node of a dry render it is an estimate, and the caller reports
  a warning instead of a problem.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Dict, FrozenSet, List, Mapping, Optional

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
    closest,
)

__all__ = ["DATA_FILE", "CHECKED_VERSION", "known_names", "is_known", "name_problem", "memory_kb", "memory_problems"]

#: The names of PostgreSQL 15's parameters (see its header).
DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg15_parameters.txt")
#: The major version :data:`DATA_FILE` lists.
CHECKED_VERSION = 15


@functools.lru_cache(maxsize=1)
def known_names() -> FrozenSet[str]:
    """The parameter names of :data:`DATA_FILE` (lower case)."""
    with open(DATA_FILE, encoding="utf-8") as handle:
        return frozenset(line.strip() for line in handle if line.strip() and not line.startswith("#"))


def is_known(name: Any) -> bool:
    """Whether PostgreSQL 15 knows ``name`` (in any case), or it is an
    extension's ``prefix.name``."""
    if not isinstance(name, str) or not name:
        return False
    return "." in name or name.lower() in known_names()


def name_problem(
    cluster: Optional[str], host: Optional[str], field: str, name: Any, value: Any, version: Any
) -> Optional[Problem]:
    """The problem of a parameter name PostgreSQL ``version`` does not
    know, with the closest known name; None when it is known, is not a
    string (the syntax checks report that), or ``version`` is not the one
    listed."""
    if version != CHECKED_VERSION or not isinstance(name, str) or is_known(name):
        return None
    guess = closest(name, known_names())
    if guess is not None:
        fix = "did you mean %s? (names as in postgresql.conf; an extension's are written prefix.name)" % guess
    else:
        fix = (
            "use a parameter of PostgreSQL %d (SHOW ALL lists them), or "
            "prefix.name for an extension's" % CHECKED_VERSION
        )
    return Problem(cluster, host, field, value, "%s is not a PostgreSQL %d parameter" % (name, CHECKED_VERSION), fix)


# ---------------------------------------------------------------- memory

_UNITS_KB = {"B": 1.0 / 1024, "kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3}
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|kB|MB|GB|TB)?\s*\Z")

#: Memory parameters of the guarantee and the unit of a bare number.
_BASE_KB = {"shared_buffers": 8, "wal_buffers": 8, "work_mem": 1, "maintenance_work_mem": 1, "autovacuum_work_mem": 1}
_COUNTS = ("max_connections", "max_parallel_workers", "autovacuum_max_workers")
#: The order in which overrides are named as the cause.
_CAUSES = (
    "max_connections",
    "work_mem",
    "shared_buffers",
    "maintenance_work_mem",
    "autovacuum_work_mem",
    "autovacuum_max_workers",
    "max_parallel_workers",
    "wal_buffers",
)


def memory_kb(name: str, value: Any) -> Optional[int]:
    """A memory parameter's value in kB (a bare number is in the
    parameter's own unit: 8kB blocks for ``shared_buffers``), or None when
    it is not one (``-1``, text)."""
    if isinstance(value, bool):
        return None
    text = str(value) if isinstance(value, (int, float, str)) else None
    match = _MEMORY.match(text) if text is not None else None
    if match is None:
        return None
    number = float(match.group(1))
    unit = match.group(2)
    factor = _UNITS_KB[unit] if unit else _BASE_KB.get(name, 1)
    return int(number * factor)


def _count(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _mb(kb: float) -> str:
    return "%d MiB" % (kb // 1024)


def _pg_max_conn_fits(tuned: Mapping[str, str], conn: int, node_kb: int, given: Mapping[str, Any]) -> bool:
    """Whether ``pg_max_conn: conn`` would pass the tuning's own check on
    this node (its connection range, and 64kB of work_mem each), with no
    other memory override."""
    if not 25 <= conn <= 10000 or any(n in given for n in _BASE_KB if n != "work_mem"):
        return False
    fixed = sum(memory_kb(n, tuned.get(n)) or 0 for n in ("shared_buffers", "wal_buffers", "maintenance_work_mem")) + (
        _count(tuned.get("autovacuum_max_workers")) or 0
    ) * (memory_kb("autovacuum_work_mem", tuned.get("autovacuum_work_mem")) or 0)
    par = _count(tuned.get("max_parallel_workers")) or 0
    return (node_kb - fixed) // 64 - par >= conn


def memory_problems(
    tuned: Mapping[str, str], overrides: Any, mem_mb: int, *, cluster: Optional[str] = None, host: Optional[str] = None
) -> List[Problem]:
    """What ``pg_parameters`` (``overrides``) laid over the member's tuning
    (``tuned``, :func:`tuning.tune`) asks beyond a node of ``mem_mb`` MiB:
    a ``shared_buffers`` larger than the node, or a sum beyond the memory
    guarantee of docs/tuning.md. At most one problem: the first overridden
    parameter of the sum is named as its cause, and the message gives the
    numbers."""
    if not isinstance(overrides, Mapping) or not tuned:
        return []
    given = {str(k).lower(): v for k, v in overrides.items()}
    node_kb = mem_mb * 1024
    eff: Dict[str, int] = {}
    for name in _BASE_KB:
        eff[name] = memory_kb(name, tuned.get(name)) or 0
    for name in _COUNTS:
        eff[name] = _count(tuned.get(name)) or 0
    touched = []
    for name in _CAUSES:
        if name not in given:
            continue
        value = _count(given[name]) if name in _COUNTS else memory_kb(name, given[name])
        if value is None:
            continue  # -1 (auto), or not a number: left to PostgreSQL
        eff[name] = value
        touched.append(name)
    if not touched:
        return []
    if "shared_buffers" in touched and eff["shared_buffers"] >= node_kb:
        return [
            Problem(
                cluster,
                host,
                "pg_parameters.shared_buffers",
                given["shared_buffers"],
                "is %s, as much as or more than the node's memory (%d MiB): "
                "PostgreSQL would not start, or the node would run out of memory"
                % (_mb(eff["shared_buffers"]), mem_mb),
                "leave shared_buffers to the tuning (pg_shared_buffer_ratio, "
                "%s here), or at most 40%% of the memory (%d MB)" % (tuned.get("shared_buffers"), mem_mb * 4 // 10),
            )
        ]
    av_wm = eff["autovacuum_work_mem"] or eff["maintenance_work_mem"]
    fixed = (
        eff["shared_buffers"] + eff["wal_buffers"] + eff["maintenance_work_mem"] + eff["autovacuum_max_workers"] * av_wm
    )
    backends = eff["max_connections"] + eff["max_parallel_workers"]
    total = fixed + backends * eff["work_mem"]
    if total <= node_kb:
        return []
    cause = touched[0]
    what = (
        "breaks the memory guarantee of docs/tuning.md: shared_buffers "
        "%s + wal_buffers %s + maintenance_work_mem %s + %d x "
        "autovacuum_work_mem %s + (%d connections + %d parallel "
        "workers) x work_mem %dkB = %s, more than the node's %d MiB"
        % (
            _mb(eff["shared_buffers"]),
            _mb(eff["wal_buffers"]),
            _mb(eff["maintenance_work_mem"]),
            eff["autovacuum_max_workers"],
            _mb(av_wm),
            eff["max_connections"],
            eff["max_parallel_workers"],
            eff["work_mem"],
            _mb(total),
            mem_mb,
        )
    )
    room = node_kb - fixed
    if cause == "max_connections":
        most = int(room // eff["work_mem"] - eff["max_parallel_workers"]) if eff["work_mem"] else 0
        fix = "at most %d connections at work_mem %dkB" % (max(most, 0), eff["work_mem"])
        if _pg_max_conn_fits(tuned, eff["max_connections"], node_kb, given):
            fix = "set pg_max_conn: %d instead (work_mem is then lowered to fit), or %s" % (eff["max_connections"], fix)
    elif cause == "work_mem" and backends:
        fix = (
            "at most %dkB of work_mem for %d connections and %d parallel "
            "workers, or fewer connections (pg_max_conn)"
            % (max(room // backends, 0), eff["max_connections"], eff["max_parallel_workers"])
        )
    else:
        fix = "leave %s to the tuning (%s here), or lower it until the sum fits" % (cause, tuned.get(cause))
    return [Problem(cluster, host, "pg_parameters.%s" % cause, given[cause], what, fix)]
