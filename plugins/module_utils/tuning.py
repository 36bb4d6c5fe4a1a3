# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""PostgreSQL parameters from a config profile and the node's size.

Pure Python (stdlib only); nothing here imports Ansible.

``pg_conf`` picks a profile, ``oltp`` (default), ``olap``, ``crit`` or
``tiny`` (``oltp.yml`` and the like are accepted too). :func:`tune` turns the
profile and the node's memory (MiB), CPU count and data-disk size (GiB) into
``postgresql.conf`` values; :func:`check_tuning` reports every bad input as a
:class:`~errors.Problem` and never raises. :data:`FORMULAS` states each rule
in plain words (docs/tuning.md quotes it).

Memory guarantee. Whenever :func:`check_tuning` finds no problem, the output
satisfies, in kB and with every value exactly as rendered::

    shared_buffers + wal_buffers + maintenance_work_mem
      + autovacuum_max_workers * autovacuum_work_mem
      + (max_connections + max_parallel_workers) * work_mem  <=  node memory

Every backend and every parallel worker may hold one ``work_mem`` at once and
still fit. With ``max_connections: auto`` the ``work_mem`` term stays within
1/k of what is left (k = 2, 3 for ``crit``), leaving room for sorts and hashes
that take several ``work_mem`` and for the OS page cache.

Hardware assumption: SSD or NVMe storage (``random_page_cost`` 1.1,
``effective_io_concurrency`` 200). Spinning disks want ``random_page_cost``
4 and ``effective_io_concurrency`` 2 as overrides in ``pg_parameters``.

Settings a hot standby must not have below its primary's value
(:data:`CLUSTER_SETTINGS`) are computed per node like the rest; use
:func:`cluster_settings` to agree on one value per cluster (they belong in
Patroni's DCS configuration, which applies them to every member).
"""

from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Mapping, NamedTuple, Optional

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)

PROFILES = ("oltp", "olap", "crit", "tiny")
DEFAULT_PROFILE = "oltp"
SHARED_BUFFER_RATIO_RANGE = (0.1, 0.4)
MAX_CONNECTIONS_RANGE = (25, 10000)  # Patroni ignores fewer than 25
MIN_MEM_MB = 256
# 16 TiB: up to here shared_buffers and effective_cache_size stay within the
# ranges PostgreSQL accepts.
MAX_MEM_MB = 16 * 1024 * 1024
MIN_PG_VERSION = 12

_WAL_LEVELS = ("minimal", "replica", "logical")
_AUTO_CONN_MIN = 30  # auto max_connections never goes below this
_WORK_MEM_MIN_KB = 64  # PostgreSQL's own lower bound for work_mem
_MAX_INT_MB = 2147483647  # largest MB value PostgreSQL accepts
_MAX_PARALLEL = 1024  # PostgreSQL's limit for max_parallel_workers
# Settings that exist only from a given major version on.
_SINCE = {"maintenance_io_concurrency": 13, "max_slot_wal_keep_size": 13}


class _Profile(NamedTuple):
    conn: int  # auto max_connections: the target before memory caps
    share: int  # k: the work_mem term gets 1/k of the spare memory
    wm_floor_kb: int  # work_mem the auto connection count is sized for
    wm_cap_kb: int  # work_mem ceiling
    maint_div: int  # maintenance_work_mem = memory / maint_div ...
    maint_cap_mb: int  # ... at most this
    par: tuple  # (div, cap) for max_parallel_workers = cpu // div
    gather: tuple  # (div, cap) for max_parallel_workers_per_gather
    pmaint: tuple  # (div, cap) for max_parallel_maintenance_workers
    av_workers: tuple  # (min, max) for autovacuum_max_workers = cpu // 4
    wal_pct: int  # max_wal_size: this % of the disk ...
    wal_min_mb: int  # ... clamped to [wal_min_mb, wal_max_mb]
    wal_max_mb: int
    wal_default_mb: int  # max_wal_size when the disk size is unknown
    wal_buffers_cap_mb: int
    fixed: Dict[str, str]  # settings that do not depend on the node


_COMMON = {
    "checkpoint_completion_target": "0.9",
    "effective_io_concurrency": "200",
    "full_page_writes": "on",
    "log_checkpoints": "on",
    "log_lock_waits": "on",
    "random_page_cost": "1.1",
    "track_io_timing": "on",
    "wal_level": "logical",
    "wal_log_hints": "on",
}

_BIG = 1 << 30

_PROFILE = {
    "oltp": _Profile(
        conn=500,
        share=2,
        wm_floor_kb=4096,
        wm_cap_kb=256 * 1024,
        maint_div=16,
        maint_cap_mb=2048,
        par=(2, _BIG),
        gather=(4, 4),
        pmaint=(4, 4),
        av_workers=(3, 10),
        wal_pct=5,
        wal_min_mb=1024,
        wal_max_mb=64 * 1024,
        wal_default_mb=4096,
        wal_buffers_cap_mb=64,
        fixed=dict(
            _COMMON,
            **{
                "autovacuum_vacuum_cost_limit": "2000",
                "checkpoint_timeout": "15min",
                "default_statistics_target": "100",
                "idle_in_transaction_session_timeout": "10min",
                "jit": "off",
                "log_autovacuum_min_duration": "1s",
                "log_connections": "off",
                "log_disconnections": "off",
                "log_min_duration_statement": "1s",
                "log_statement": "none",
                "log_temp_files": "16MB",
                "max_replication_slots": "16",
                "max_wal_senders": "16",
                "synchronous_commit": "on",
            },
        ),
    ),
    "olap": _Profile(
        conn=200,
        share=2,
        wm_floor_kb=8192,
        wm_cap_kb=1024 * 1024,
        maint_div=8,
        maint_cap_mb=4096,
        par=(1, _BIG),
        gather=(2, 16),
        pmaint=(2, 8),
        av_workers=(3, 10),
        wal_pct=10,
        wal_min_mb=2048,
        wal_max_mb=128 * 1024,
        wal_default_mb=8192,
        wal_buffers_cap_mb=64,
        fixed=dict(
            _COMMON,
            **{
                "autovacuum_vacuum_cost_limit": "2000",
                "checkpoint_timeout": "30min",
                "default_statistics_target": "500",
                "idle_in_transaction_session_timeout": "1h",
                "jit": "on",
                "log_autovacuum_min_duration": "1s",
                "log_connections": "off",
                "log_disconnections": "off",
                "log_min_duration_statement": "10s",
                "log_statement": "none",
                "log_temp_files": "256MB",
                "max_replication_slots": "16",
                "max_wal_senders": "16",
                "synchronous_commit": "off",
            },
        ),
    ),
    "crit": _Profile(
        conn=300,
        share=3,
        wm_floor_kb=4096,
        wm_cap_kb=128 * 1024,
        maint_div=16,
        maint_cap_mb=2048,
        par=(2, _BIG),
        gather=(4, 4),
        pmaint=(4, 4),
        av_workers=(3, 10),
        wal_pct=5,
        wal_min_mb=1024,
        wal_max_mb=32 * 1024,
        wal_default_mb=2048,
        wal_buffers_cap_mb=64,
        fixed=dict(
            _COMMON,
            **{
                "autovacuum_vacuum_cost_limit": "2000",
                "checkpoint_timeout": "10min",
                "default_statistics_target": "100",
                "idle_in_transaction_session_timeout": "5min",
                "jit": "off",
                "log_autovacuum_min_duration": "500ms",
                "log_connections": "on",
                "log_disconnections": "on",
                "log_min_duration_statement": "100ms",
                "log_statement": "ddl",
                "log_temp_files": "1MB",
                "max_replication_slots": "16",
                "max_wal_senders": "16",
                "synchronous_commit": "on",
            },
        ),
    ),
    "tiny": _Profile(
        conn=200,
        share=2,
        wm_floor_kb=1024,
        wm_cap_kb=32 * 1024,
        maint_div=16,
        maint_cap_mb=256,
        par=(2, 2),
        gather=(2, 1),
        pmaint=(2, 1),
        av_workers=(2, 2),
        wal_pct=2,
        wal_min_mb=128,
        wal_max_mb=1024,
        wal_default_mb=256,
        wal_buffers_cap_mb=16,
        fixed=dict(
            _COMMON,
            **{
                "autovacuum_vacuum_cost_limit": "400",
                "checkpoint_timeout": "15min",
                "default_statistics_target": "100",
                "idle_in_transaction_session_timeout": "10min",
                "jit": "off",
                "log_autovacuum_min_duration": "1s",
                "log_connections": "off",
                "log_disconnections": "off",
                "log_min_duration_statement": "1s",
                "log_statement": "none",
                "log_temp_files": "16MB",
                "max_replication_slots": "10",
                "max_wal_senders": "10",
                "synchronous_commit": "on",
            },
        ),
    ),
}

FORMULAS: Dict[str, str] = {
    "max_connections": (
        "pg_max_conn when it is a number. With 'auto': the profile's target "
        "(oltp 500, olap 200, crit 300, tiny 200), lowered until "
        "(max_connections + max_parallel_workers) x k x the profile's "
        "work_mem floor fits in the spare memory (see work_mem; k = 2, crit "
        "3; floor oltp/crit 4MB, olap 8MB, tiny 1MB), rounded down to a "
        "multiple of 10, never below 30."
    ),
    "superuser_reserved_connections": ("max_connections / 50, between 3 and 10."),
    "shared_buffers": (
        "node memory x pg_shared_buffer_ratio (default 0.25, allowed 0.1 to "
        "0.4), in whole MB, at least 128MB (32MB on nodes under 512 MiB) and "
        "at most 40% of memory."
    ),
    "effective_cache_size": (
        "shared_buffers plus two thirds of the remaining memory: "
        "(2 x memory + shared_buffers) / 3; 75% of memory at the default "
        "ratio."
    ),
    "wal_buffers": ("shared_buffers / 32, at least 1MB, at most 64MB (tiny 16MB)."),
    "maintenance_work_mem": ("memory / 16 (olap / 8), at least 16MB, at most 2GB (olap 4GB, tiny 256MB)."),
    "autovacuum_work_mem": (
        "memory / 32, at least 8MB, at most 1GB (VACUUM cannot use more than 1GB for dead tuples before PostgreSQL 17)."
    ),
    "autovacuum_max_workers": ("CPU / 4, between 3 and 10 (tiny: 2)."),
    "work_mem": (
        "spare memory = memory - shared_buffers - wal_buffers - "
        "maintenance_work_mem - autovacuum_max_workers x autovacuum_work_mem; "
        "work_mem = spare / (k x (max_connections + max_parallel_workers)), "
        "at most 256MB (olap 1GB, crit 128MB, tiny 32MB). A result below the "
        "profile's floor is raised toward it as far as (max_connections + "
        "max_parallel_workers) x work_mem still fits in the spare memory; "
        "it never goes below 64kB (a pg_max_conn that would need less is "
        "rejected). Below 4MB it is rounded down to a multiple of 64kB, "
        "from 4MB on to whole MB."
    ),
    "max_worker_processes": ("max_parallel_workers + 8 (room for logical replication and extension workers)."),
    "max_parallel_workers": (
        "oltp/crit CPU / 2; olap CPU; tiny CPU / 2 but at most 2; in every "
        "profile at most one per 64 MiB of memory and at most 1024. 0 on one "
        "CPU (olap 1)."
    ),
    "max_parallel_workers_per_gather": (
        "oltp/crit CPU / 4, at most 4; olap CPU / 2, at most 16; tiny CPU / "
        "2, at most 1; never above max_parallel_workers."
    ),
    "max_parallel_maintenance_workers": (
        "oltp/crit CPU / 4, at most 4; olap CPU / 2, at most 8; tiny CPU / "
        "2, at most 1; never above max_parallel_workers; 0 on one CPU."
    ),
    "max_wal_size": (
        "disk known: 5% of the disk (olap 10%, tiny 2%), clamped to 1GB-64GB "
        "(olap 2GB-128GB, crit 1GB-32GB, tiny 128MB-1GB), then at most a "
        "quarter of the disk and at least 64MB. Disk unknown: oltp 4GB, "
        "olap 8GB, crit 2GB, tiny 256MB."
    ),
    "min_wal_size": "max_wal_size / 4, at least 32MB (two WAL segments).",
    "max_wal_senders": "16 (tiny 10).",
    "max_replication_slots": "16 (tiny 10).",
    "max_slot_wal_keep_size": (
        "20% of the disk when its size is known (a forgotten replication "
        "slot cannot fill the disk; replicas fall back to the WAL archive), "
        "else -1 (unlimited). PostgreSQL 13 and later."
    ),
    "huge_pages": "'try' on nodes with at least 4 GiB of memory, else 'off'.",
    "wal_level": (
        "'logical' in every profile: logical decoding (CDC, logical "
        "replication) works without a restart, at the cost of slightly "
        "larger WAL records."
    ),
    "wal_compression": "'lz4' from PostgreSQL 15 on, 'on' (pglz) before.",
    "random_page_cost": "1.1: SSD or NVMe storage is assumed.",
    "effective_io_concurrency": "200: SSD or NVMe storage is assumed.",
    "maintenance_io_concurrency": ("100 (PostgreSQL 13 and later; SSD or NVMe assumed)."),
    "synchronous_commit": (
        "'on' in oltp, crit and tiny; 'off' in olap (a crash may lose the "
        "last fraction of a second of commits, never consistency)."
    ),
    "checkpoint_timeout": "oltp/tiny 15min, olap 30min, crit 10min.",
}

# Settings a hot standby needs at least as high as its primary's (or equal,
# for wal_level), and that Patroni takes from its cluster-wide configuration.
CLUSTER_SETTINGS = (
    "max_connections",
    "max_replication_slots",
    "max_wal_senders",
    "max_worker_processes",
    "wal_level",
    "wal_log_hints",
)


def profile_name(value: Any) -> Optional[str]:
    """The profile ``value`` names (``"oltp"``, ``"oltp.yml"``, unset ->
    ``"oltp"``), or ``None`` when it names none."""
    if value is None:
        return DEFAULT_PROFILE
    if not isinstance(value, str):
        return None
    if value.endswith(".yml"):
        value = value[:-4]
    return value if value in _PROFILE else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return _is_int(value)


def _normal(profile, mem_mb, cpu, disk_gb, ratio, max_connections, pg_version):
    """The inputs as the computation takes them, or ``None`` when any is
    invalid (check_tuning then says why)."""
    name = profile_name(profile)
    if name is None or not _is_int(mem_mb) or not (MIN_MEM_MB <= mem_mb <= MAX_MEM_MB):
        return None
    if not _is_int(cpu) or cpu < 1:
        return None
    if disk_gb is None:
        disk_mb = 0
    elif _is_number(disk_gb) and disk_gb >= 0:
        # beyond 1 EiB nothing changes any more (every disk-derived value
        # has reached its ceiling); the bound keeps the float math finite
        disk_mb = int(min(disk_gb, 1 << 30) * 1024)
    else:
        return None
    if ratio is None:
        ratio = 0.25
    low, high = SHARED_BUFFER_RATIO_RANGE
    if not _is_number(ratio) or not low <= ratio <= high:
        return None
    if max_connections is None or max_connections == "auto":
        conn = 0
    elif _is_int(max_connections) and (MAX_CONNECTIONS_RANGE[0] <= max_connections <= MAX_CONNECTIONS_RANGE[1]):
        conn = max_connections
    else:
        return None
    if pg_version is None:
        pg_version = 15
    elif not _is_int(pg_version) or pg_version < MIN_PG_VERSION:
        return None
    return (_PROFILE[name], mem_mb, cpu, disk_mb, round(ratio * 10000), conn, pg_version)


def _memory(p: _Profile, m: int, cpu: int, bp: int):
    """Node-sized memory and worker figures: (shared_buffers, wal_buffers,
    maintenance_work_mem, autovacuum workers, autovacuum_work_mem (all MB),
    max_parallel_workers, spare memory in kB)."""
    floor = 128 if m >= 512 else 32
    sb = max(floor, min(m * bp // 10000, m * 4 // 10))
    wal_buffers = min(max(sb // 32, 1), p.wal_buffers_cap_mb)
    maint = min(max(m // p.maint_div, 16), p.maint_cap_mb)
    av_wm = min(max(m // 32, 8), 1024)
    av_n = min(max(cpu // 4, p.av_workers[0]), p.av_workers[1])
    par = min(cpu // p.par[0], p.par[1], m // 64, _MAX_PARALLEL)
    spare_kb = (m - sb - wal_buffers - maint - av_n * av_wm) * 1024
    return sb, wal_buffers, maint, av_n, av_wm, par, spare_kb


def _work_mem(p: _Profile, spare_kb: int, backends: int) -> int:
    """work_mem in kB for ``backends`` processes, 0 when even 64kB each does
    not fit."""
    wm = min(spare_kb // (p.share * backends), p.wm_cap_kb)
    if wm < p.wm_floor_kb:
        wm = min(p.wm_floor_kb, spare_kb // backends)
    if wm < _WORK_MEM_MIN_KB:
        return 0
    return wm // 1024 * 1024 if wm >= 4096 else wm // 64 * 64


def _size(kb: int) -> str:
    return "%dMB" % (kb >> 10) if kb & 1023 == 0 else "%dkB" % kb


def tune(
    profile: str,
    mem_mb: int,
    cpu: int,
    disk_gb: Optional[float] = None,
    *,
    shared_buffer_ratio: float = 0.25,
    max_connections: int | str = "auto",
    pg_version: int = 15,
) -> Dict[str, str]:
    """PostgreSQL parameters for a node with ``mem_mb`` MiB of memory,
    ``cpu`` cores and ``disk_gb`` GiB of data disk (``None`` or 0: unknown).

    Returns ``{name: value}`` with sorted names and string values as
    postgresql.conf takes them (memory as ``NNNMB``/``NNNkB``, booleans
    ``on``/``off``). ``None`` for any keyword means its default. Raises
    :class:`~errors.ModelError` (a ``ValueError``) with the problems
    :func:`check_tuning` reports when the inputs are invalid.
    """
    args = _normal(profile, mem_mb, cpu, disk_gb, shared_buffer_ratio, max_connections, pg_version)
    if args is None:
        raise ModelError(
            check_tuning(profile, mem_mb, cpu, disk_gb, shared_buffer_ratio, max_connections, pg_version=pg_version)
        )
    p, m, c, disk_mb, bp, conn, version = args
    sb, wal_buffers, maint, av_n, av_wm, par, spare_kb = _memory(p, m, c, bp)

    if not conn:
        fit = spare_kb // (p.share * p.wm_floor_kb) - par
        conn = max(_AUTO_CONN_MIN, min(p.conn, fit // 10 * 10))
    wm = _work_mem(p, spare_kb, conn + par)
    if not wm:
        raise ModelError(
            check_tuning(profile, mem_mb, cpu, disk_gb, shared_buffer_ratio, max_connections, pg_version=pg_version)
        )

    if disk_mb:
        max_wal = min(max(disk_mb * p.wal_pct // 100, p.wal_min_mb), p.wal_max_mb, disk_mb // 4)
        max_wal = max(max_wal, 64)
        slot_keep = "%dMB" % min(disk_mb // 5, _MAX_INT_MB)
    else:
        max_wal = p.wal_default_mb
        slot_keep = "-1"

    out = dict(p.fixed)
    out["autovacuum_max_workers"] = str(av_n)
    out["autovacuum_work_mem"] = "%dMB" % av_wm
    out["effective_cache_size"] = "%dMB" % ((2 * m + sb) // 3)
    out["huge_pages"] = "try" if m >= 4096 else "off"
    out["maintenance_work_mem"] = "%dMB" % maint
    out["max_connections"] = str(conn)
    out["max_parallel_maintenance_workers"] = str(min(c // p.pmaint[0], p.pmaint[1], par))
    out["max_parallel_workers"] = str(par)
    out["max_parallel_workers_per_gather"] = str(min(c // p.gather[0], p.gather[1], par))
    out["max_slot_wal_keep_size"] = slot_keep
    out["max_wal_size"] = "%dMB" % max_wal
    out["max_worker_processes"] = str(par + 8)
    out["min_wal_size"] = "%dMB" % max(max_wal // 4, 32)
    out["shared_buffers"] = "%dMB" % sb
    out["superuser_reserved_connections"] = str(min(max(conn // 50, 3), 10))
    out["wal_buffers"] = "%dMB" % wal_buffers
    out["wal_compression"] = "lz4" if version >= 15 else "on"
    out["work_mem"] = _size(wm)
    out["maintenance_io_concurrency"] = "100"
    for name, since in _SINCE.items():
        if version < since:
            del out[name]
    return dict(sorted(out.items()))


def check_tuning(
    profile: Any,
    mem_mb: Any,
    cpu: Any,
    disk_gb: Any,
    shared_buffer_ratio: Any,
    max_connections: Any,
    *,
    cluster: Optional[str] = None,
    host: Optional[str] = None,
    pg_version: Any = None,
) -> List[Problem]:
    """Every problem with the inputs of :func:`tune`; never raises.

    ``None`` for ``profile``, ``shared_buffer_ratio`` or ``max_connections``
    means unset (the default applies); ``disk_gb`` ``None`` or 0 means
    unknown. ``pg_version`` is checked only when given.
    """
    out: List[Problem] = []

    def problem(field, value, what, fix):
        out.append(Problem(cluster, host, field, value, what, fix))

    if profile_name(profile) is None:
        problem("pg_conf", profile, "is not a known config profile", "use one of %s" % ", ".join(PROFILES))
    if not _is_int(mem_mb):
        problem(
            "ansible_memtotal_mb",
            mem_mb,
            "is not a whole number of MiB",
            "gather facts from the node, or give its memory in MiB as a number",
        )
    elif mem_mb < MIN_MEM_MB:
        problem(
            "ansible_memtotal_mb",
            mem_mb,
            "is below the %d MiB PostgreSQL needs here" % MIN_MEM_MB,
            "give the node at least %d MiB of memory" % MIN_MEM_MB,
        )
    elif mem_mb > MAX_MEM_MB:
        problem(
            "ansible_memtotal_mb",
            mem_mb,
            "is above 16 TiB, more than these settings can address",
            "check the fact; nodes up to %d MiB are supported" % MAX_MEM_MB,
        )
    if not _is_int(cpu) or cpu < 1:
        problem(
            "ansible_processor_vcpus",
            cpu,
            "is not a CPU count of at least 1",
            "gather facts from the node, or give its CPU count as a whole number >= 1",
        )
    if disk_gb is not None and not (_is_number(disk_gb) and disk_gb >= 0):
        problem(
            "pg_disk_gb",
            disk_gb,
            "is not a disk size in GiB",
            "give the data disk size in GiB as a number >= 0 without quotes, or leave it unset (unknown)",
        )
    low, high = SHARED_BUFFER_RATIO_RANGE
    ratio = shared_buffer_ratio
    if ratio is not None and not (_is_number(ratio) and low <= ratio <= high):
        problem(
            "pg_shared_buffer_ratio",
            ratio,
            "is not a fraction between %s and %s" % (low, high),
            "use a number from %s to %s without quotes, e.g. 0.25 (the default)" % (low, high),
        )
    low, high = MAX_CONNECTIONS_RANGE
    conn = max_connections
    if conn is not None and conn != "auto" and not (_is_int(conn) and low <= conn <= high):
        problem(
            "pg_max_conn",
            conn,
            "is neither 'auto' nor a whole number from %d to %d" % (low, high),
            "use auto (sized from the node's memory) or a number from %d to %d without quotes" % (low, high),
        )
    if pg_version is not None and not (_is_int(pg_version) and pg_version >= MIN_PG_VERSION):
        problem(
            "pg_version",
            pg_version,
            "is not a supported major version",
            "use a PostgreSQL major version from %d on, e.g. 15" % MIN_PG_VERSION,
        )
    if out or not _is_int(conn):
        return out

    p, m, c, _skip, bp, _skip, _skip = _normal(profile, mem_mb, cpu, disk_gb, ratio, conn, pg_version)
    _skip, _skip, _skip, _skip, _skip, par, spare_kb = _memory(p, m, c, bp)
    if not _work_mem(p, spare_kb, conn + par):
        most = max(spare_kb // _WORK_MEM_MIN_KB - par, 0)
        problem(
            "pg_max_conn",
            conn,
            "needs more memory than the node has: %d connections and %d "
            "parallel workers at 64kB of work_mem each exceed the %d MiB "
            "left after shared and maintenance memory" % (conn, par, spare_kb // 1024),
            "use auto, or at most %d on this node (%d MiB)" % (most, m),
        )
    return out


def cluster_settings(members: Iterable[Mapping[str, str]]) -> Dict[str, str]:
    """One value per cluster for :data:`CLUSTER_SETTINGS`, from the
    :func:`tune` results of its members: the smallest ``max_connections``
    (every member's memory budget was sized for at least as many), the
    largest of the other counts, the highest ``wal_level``, and
    ``wal_log_hints`` on if any member has it on. Meant for Patroni's
    cluster-wide configuration, which applies them to every member."""
    members = list(members)
    if not members:
        return {}
    out = {}
    for name in CLUSTER_SETTINGS:
        values = [member[name] for member in members]
        if name == "max_connections":
            out[name] = min(values, key=int)
        elif name == "wal_level":
            out[name] = max(values, key=_WAL_LEVELS.index)
        elif name == "wal_log_hints":
            out[name] = "on" if "on" in values else "off"
        else:
            out[name] = max(values, key=int)
    return out
