# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Tests of plugins/module_utils/tuning.py: hand-checked node sizes, input
checks, and properties over every node size the collection supports."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.tuning import (
    CLUSTER_SETTINGS,
    FORMULAS,
    PROFILES,
    check_tuning,
    cluster_settings,
    profile_name,
    tune,
)

# Every key tune() returns for PostgreSQL 13 and later (12 lacks the two
# settings in SINCE_13).
KEYS = sorted(
    """
autovacuum_max_workers autovacuum_vacuum_cost_limit autovacuum_work_mem
checkpoint_completion_target checkpoint_timeout default_statistics_target
effective_cache_size effective_io_concurrency full_page_writes huge_pages
idle_in_transaction_session_timeout jit log_autovacuum_min_duration
log_checkpoints log_connections log_disconnections log_lock_waits
log_min_duration_statement log_statement log_temp_files
maintenance_io_concurrency maintenance_work_mem max_connections
max_parallel_maintenance_workers max_parallel_workers
max_parallel_workers_per_gather max_replication_slots max_slot_wal_keep_size
max_wal_senders max_wal_size max_worker_processes min_wal_size
random_page_cost shared_buffers superuser_reserved_connections
synchronous_commit track_io_timing wal_buffers wal_compression wal_level
wal_log_hints work_mem
""".split()
)

# Real PostgreSQL 15 parameters (a subset of `postgres --describe-config`):
# everything tune() may return must be one of them.
PG15_GUCS = frozenset(
    """
archive_mode archive_timeout autovacuum autovacuum_analyze_scale_factor
autovacuum_max_workers autovacuum_naptime autovacuum_vacuum_cost_delay
autovacuum_vacuum_cost_limit autovacuum_vacuum_scale_factor
autovacuum_work_mem bgwriter_delay bgwriter_lru_maxpages
checkpoint_completion_target checkpoint_timeout commit_delay
default_statistics_target effective_cache_size effective_io_concurrency
fsync full_page_writes hash_mem_multiplier hot_standby_feedback huge_pages
idle_in_transaction_session_timeout jit lock_timeout
log_autovacuum_min_duration log_checkpoints log_connections
log_disconnections log_lock_waits log_min_duration_statement log_statement
log_temp_files maintenance_io_concurrency maintenance_work_mem
max_connections max_locks_per_transaction max_parallel_maintenance_workers
max_parallel_workers max_parallel_workers_per_gather
max_prepared_transactions max_replication_slots max_slot_wal_keep_size
max_wal_senders max_wal_size max_worker_processes min_wal_size
random_page_cost seq_page_cost shared_buffers statement_timeout
superuser_reserved_connections synchronous_commit temp_buffers
track_io_timing wal_buffers wal_compression wal_keep_size wal_level
wal_log_hints wal_writer_delay work_mem
""".split()
)

SINCE_13 = {"maintenance_io_concurrency", "max_slot_wal_keep_size"}
BOOLEANS = (
    "autovacuum",
    "full_page_writes",
    "jit",
    "log_checkpoints",
    "log_connections",
    "log_disconnections",
    "log_lock_waits",
    "track_io_timing",
    "wal_log_hints",
)
MEMORY = (
    "autovacuum_work_mem",
    "effective_cache_size",
    "log_temp_files",
    "maintenance_work_mem",
    "max_wal_size",
    "min_wal_size",
    "shared_buffers",
    "wal_buffers",
    "work_mem",
)


def kb(value):
    """'16MB' -> 16384, '1600kB' -> 1600 (the two forms tune() writes)."""
    if value.endswith("MB"):
        return int(value[:-2]) * 1024
    assert value.endswith("kB"), value
    return int(value[:-2])


def budget_kb(p):
    """The memory the guarantee of tuning.py accounts for, in kB."""
    return (
        kb(p["shared_buffers"])
        + kb(p["wal_buffers"])
        + kb(p["maintenance_work_mem"])
        + int(p["autovacuum_max_workers"]) * kb(p["autovacuum_work_mem"])
        + (int(p["max_connections"]) + int(p["max_parallel_workers"])) * kb(p["work_mem"])
    )


# --- hand-checked node sizes ------------------------------------------------
#
# Notation (MiB unless noted): m memory, SB shared_buffers, WB wal_buffers,
# MW maintenance_work_mem, AV autovacuum_max_workers x autovacuum_work_mem,
# P max_parallel_workers, spare = m - SB - WB - MW - AV (then in kB),
# k the profile's share (2; crit 3), floor the profile's work_mem floor.

CASES = [
    pytest.param(
        ("tiny", 1024, 1, None),
        {},
        # SB = 1024*0.25 = 256; WB = 256/32 = 8; MW = 1024/16 = 64;
        # AV = 2 x 1024/32 = 2 x 32; P = min(1//2, 2) = 0
        # spare = 1024-256-8-64-64 = 632 MiB = 647168 kB
        # auto: 647168 // (2*1024) - 0 = 316 -> 310 -> target 200
        # work_mem = 647168 // (2*200) = 1617 -> 64kB multiple 1600kB
        # ECS = (2*1024+256)/3 = 768; reserved = 200//50 = 4
        {
            "shared_buffers": "256MB",
            "effective_cache_size": "768MB",
            "wal_buffers": "8MB",
            "maintenance_work_mem": "64MB",
            "autovacuum_work_mem": "32MB",
            "autovacuum_max_workers": "2",
            "max_connections": "200",
            "superuser_reserved_connections": "4",
            "work_mem": "1600kB",
            "max_parallel_workers": "0",
            "max_parallel_workers_per_gather": "0",
            "max_parallel_maintenance_workers": "0",
            "max_worker_processes": "8",
            "max_wal_size": "256MB",
            "min_wal_size": "64MB",
            "max_slot_wal_keep_size": "-1",
            "huge_pages": "off",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "wal_level": "logical",
        },
        id="tiny-1cpu-1GiB",
    ),
    pytest.param(
        ("tiny", 512, 1, None),
        {},
        # SB = 512*0.25 = 128 (= the 128MB floor); WB = 4; MW = 32;
        # AV = 2 x 16; spare = 512-128-4-32-32 = 316 MiB = 323584 kB
        # auto: 323584 // 2048 = 158 -> 150
        # work_mem = 323584 // 300 = 1078 -> 1024kB = 1MB
        # ECS = (1024+128)/3 = 384; reserved = max(150//50, 3) = 3
        {
            "shared_buffers": "128MB",
            "effective_cache_size": "384MB",
            "wal_buffers": "4MB",
            "maintenance_work_mem": "32MB",
            "autovacuum_work_mem": "16MB",
            "max_connections": "150",
            "superuser_reserved_connections": "3",
            "work_mem": "1MB",
            "max_parallel_workers": "0",
            "max_worker_processes": "8",
            "max_wal_size": "256MB",
            "min_wal_size": "64MB",
            "huge_pages": "off",
        },
        id="tiny-1cpu-512MiB",
    ),
    pytest.param(
        ("tiny", 480, 1, 20),
        {},
        # what a 512 MiB VM reports: below 512 the floor is 32MB
        # SB = 480*0.25 = 120; WB = 120//32 = 3; MW = 480//16 = 30;
        # AV = 2 x 15; spare = 480-120-3-30-30 = 297 MiB = 304128 kB
        # auto: 304128 // 2048 = 148 -> 140
        # work_mem = 304128 // 280 = 1086 -> 1024kB = 1MB
        # ECS = (960+120)/3 = 360
        # disk 20 GiB = 20480 MiB: 2% = 409 (in 128..1024, <= 5120);
        # min = 409//4 = 102; slot keep = 20480/5 = 4096
        {
            "shared_buffers": "120MB",
            "effective_cache_size": "360MB",
            "wal_buffers": "3MB",
            "maintenance_work_mem": "30MB",
            "autovacuum_work_mem": "15MB",
            "max_connections": "140",
            "work_mem": "1MB",
            "max_wal_size": "409MB",
            "min_wal_size": "102MB",
            "max_slot_wal_keep_size": "4096MB",
        },
        id="tiny-1cpu-480MiB-20GiB",
    ),
    pytest.param(
        ("oltp", 4096, 2, 40),
        {},
        # SB = 1024; WB = 32; MW = 4096/16 = 256; AV = 3 x 128 = 384;
        # P = 2//2 = 1; spare = 4096-1024-32-256-384 = 2400 MiB = 2457600 kB
        # auto: 2457600 // (2*4096) - 1 = 299 -> 290
        # work_mem = 2457600 // (2*291) = 4222 -> whole MB: 4MB
        # per_gather = min(2//4, 4, 1) = 0; maint workers 0; mwp = 1+8
        # disk 40 GiB = 40960: 5% = 2048 (in 1024..65536, <= 10240);
        # min 512; slot keep 40960/5 = 8192. ECS = (8192+1024)/3 = 3072
        {
            "shared_buffers": "1024MB",
            "effective_cache_size": "3072MB",
            "wal_buffers": "32MB",
            "maintenance_work_mem": "256MB",
            "autovacuum_work_mem": "128MB",
            "autovacuum_max_workers": "3",
            "max_connections": "290",
            "superuser_reserved_connections": "5",
            "work_mem": "4MB",
            "max_parallel_workers": "1",
            "max_parallel_workers_per_gather": "0",
            "max_parallel_maintenance_workers": "0",
            "max_worker_processes": "9",
            "max_wal_size": "2048MB",
            "min_wal_size": "512MB",
            "max_slot_wal_keep_size": "8192MB",
            "huge_pages": "try",
            "synchronous_commit": "on",
            "jit": "off",
            "checkpoint_timeout": "15min",
        },
        id="oltp-2cpu-4GiB-40GiB",
    ),
    pytest.param(
        ("oltp", 32768, 8, 500),
        {},
        # SB = 8192; WB = min(256, 64) = 64; MW = min(2048, 2048) = 2048;
        # AV = 3 x 1024 = 3072; P = 4
        # spare = 32768-8192-64-2048-3072 = 19392 MiB = 19857408 kB
        # auto: 19857408 // 8192 - 4 = 2420 -> target 500
        # work_mem = 19857408 // (2*504) = 19700 -> 19MB
        # per_gather = min(8//4, 4) = 2; maint workers 2; mwp = 12
        # disk 500 GiB = 512000: 5% = 25600 (in 1024..65536); min 6400;
        # slot keep 512000/5 = 102400. ECS = (65536+8192)/3 = 24576
        {
            "shared_buffers": "8192MB",
            "effective_cache_size": "24576MB",
            "wal_buffers": "64MB",
            "maintenance_work_mem": "2048MB",
            "autovacuum_work_mem": "1024MB",
            "autovacuum_max_workers": "3",
            "max_connections": "500",
            "superuser_reserved_connections": "10",
            "work_mem": "19MB",
            "max_parallel_workers": "4",
            "max_parallel_workers_per_gather": "2",
            "max_parallel_maintenance_workers": "2",
            "max_worker_processes": "12",
            "max_wal_size": "25600MB",
            "min_wal_size": "6400MB",
            "max_slot_wal_keep_size": "102400MB",
            "huge_pages": "try",
        },
        id="oltp-8cpu-32GiB-500GiB",
    ),
    pytest.param(
        ("olap", 65536, 16, None),
        {},
        # SB = 16384; WB = 64; MW = min(65536/8, 4096) = 4096;
        # AV = (16//4 = 4) x 1024 = 4096; P = 16
        # spare = 65536-16384-64-4096-4096 = 40896 MiB = 41877504 kB
        # auto: 41877504 // (2*8192) - 16 = 2540 -> target 200
        # work_mem = 41877504 // (2*216) = 96938 -> 94MB
        # per_gather = min(16//2, 16) = 8; maint workers min(8, 8) = 8;
        # mwp = 24; max_wal 8192 (disk unknown), min 2048
        # ECS = (131072+16384)/3 = 49152; reserved = 200//50 = 4
        {
            "shared_buffers": "16384MB",
            "effective_cache_size": "49152MB",
            "maintenance_work_mem": "4096MB",
            "autovacuum_max_workers": "4",
            "autovacuum_work_mem": "1024MB",
            "max_connections": "200",
            "superuser_reserved_connections": "4",
            "work_mem": "94MB",
            "max_parallel_workers": "16",
            "max_parallel_workers_per_gather": "8",
            "max_parallel_maintenance_workers": "8",
            "max_worker_processes": "24",
            "max_wal_size": "8192MB",
            "min_wal_size": "2048MB",
            "max_slot_wal_keep_size": "-1",
            "synchronous_commit": "off",
            "jit": "on",
            "default_statistics_target": "500",
            "checkpoint_timeout": "30min",
        },
        id="olap-16cpu-64GiB",
    ),
    pytest.param(
        ("crit", 16384, 4, None),
        {},
        # SB = 4096; WB = min(128, 64) = 64; MW = 1024; AV = 3 x 512;
        # P = 2; spare = 16384-4096-64-1024-1536 = 9664 MiB = 9895936 kB
        # auto: 9895936 // (3*4096) - 2 = 803 -> target 300
        # work_mem = 9895936 // (3*302) = 10922 -> 10MB
        # per_gather = min(4//4, 4, 2) = 1; mwp = 10; max_wal 2048, min 512
        # ECS = (32768+4096)/3 = 12288; reserved = 300//50 = 6
        {
            "shared_buffers": "4096MB",
            "effective_cache_size": "12288MB",
            "maintenance_work_mem": "1024MB",
            "autovacuum_work_mem": "512MB",
            "max_connections": "300",
            "superuser_reserved_connections": "6",
            "work_mem": "10MB",
            "max_parallel_workers": "2",
            "max_parallel_workers_per_gather": "1",
            "max_worker_processes": "10",
            "max_wal_size": "2048MB",
            "min_wal_size": "512MB",
            "synchronous_commit": "on",
            "full_page_writes": "on",
            "wal_log_hints": "on",
            "log_connections": "on",
            "log_statement": "ddl",
            "log_min_duration_statement": "100ms",
            "checkpoint_timeout": "10min",
        },
        id="crit-4cpu-16GiB",
    ),
    pytest.param(
        ("oltp", 32768, 8, 500),
        {"shared_buffer_ratio": 0.3},
        # SB = 32768*3000//10000 = 9830 (below 40% = 13107); WB = 64;
        # spare = 32768-9830-64-2048-3072 = 17754 MiB = 18180096 kB
        # auto: 18180096 // 8192 - 4 = 2215 -> 500
        # work_mem = 18180096 // 1008 = 18035 -> 17MB
        # ECS = (65536+9830)/3 = 25122
        {
            "shared_buffers": "9830MB",
            "effective_cache_size": "25122MB",
            "wal_buffers": "64MB",
            "max_connections": "500",
            "work_mem": "17MB",
        },
        id="oltp-ratio-0.3",
    ),
    pytest.param(
        ("oltp", 32768, 8, 500),
        {"max_connections": 1000},
        # spare as in oltp-8cpu-32GiB: 19857408 kB
        # work_mem = 19857408 // (2*1004) = 9889 -> 9MB; reserved 10
        {
            "max_connections": "1000",
            "work_mem": "9MB",
            "superuser_reserved_connections": "10",
            "shared_buffers": "8192MB",
        },
        id="oltp-explicit-1000-conn",
    ),
    pytest.param(
        ("tiny", 512, 1, None),
        {"max_connections": 100},
        # spare as in tiny-1cpu-512MiB: 323584 kB
        # work_mem = 323584 // (2*100) = 1617 -> 1600kB; reserved 3
        {"max_connections": "100", "work_mem": "1600kB", "superuser_reserved_connections": "3"},
        id="tiny-explicit-100-conn",
    ),
    pytest.param(
        ("tiny", 512, 1, None),
        {"max_connections": 3000},
        # 323584 // 6000 = 53 is under the 1MB floor; 1MB each does not fit
        # (3000 x 1024 > 323584), so the most that fits: 323584 // 3000 =
        # 107 -> 64kB multiple: 64kB
        {"max_connections": "3000", "work_mem": "64kB", "superuser_reserved_connections": "10"},
        id="tiny-explicit-3000-conn",
    ),
    pytest.param(
        ("oltp", 256, 1, None),
        {},
        # smallest node: SB = 64 (floor 32); WB = 2; MW = 16; AV = 3 x 8;
        # spare = 256-64-2-16-24 = 150 MiB = 153600 kB
        # auto: 153600 // 8192 = 18 -> 10 -> at least 30
        # work_mem = 153600 // 60 = 2560 < 4MB floor; 30 x 4MB fits in
        # 153600 kB, so 4MB. ECS = (512+64)/3 = 192
        {
            "shared_buffers": "64MB",
            "effective_cache_size": "192MB",
            "max_connections": "30",
            "work_mem": "4MB",
            "huge_pages": "off",
            "superuser_reserved_connections": "3",
        },
        id="oltp-1cpu-256MiB",
    ),
    pytest.param(
        ("oltp", 1024, 1, 1),
        {"shared_buffer_ratio": 0.1},
        # SB = 102 -> raised to the 128MB floor; disk 1 GiB = 1024:
        # 5% = 51 -> 1024 minimum -> at most a quarter of the disk: 256;
        # min 64; slot keep 1024/5 = 204
        {"shared_buffers": "128MB", "max_wal_size": "256MB", "min_wal_size": "64MB", "max_slot_wal_keep_size": "204MB"},
        id="oltp-small-disk-ratio-floor",
    ),
    pytest.param(
        ("olap", 65536, 16, 2000),
        {},
        # 2000 GiB = 2048000 MiB: 10% = 204800 -> 128 GiB cap = 131072;
        # min 32768
        {"max_wal_size": "131072MB", "min_wal_size": "32768MB", "max_slot_wal_keep_size": "409600MB"},
        id="olap-big-disk",
    ),
    pytest.param(
        ("oltp", 4096, 64, None),
        {},
        # P = min(64//2, 4096//64 = 64) = 32; per_gather min(16, 4) = 4;
        # AV workers = 64//4 = 16 -> at most 10
        {
            "max_parallel_workers": "32",
            "max_parallel_workers_per_gather": "4",
            "max_parallel_maintenance_workers": "4",
            "max_worker_processes": "40",
            "autovacuum_max_workers": "10",
        },
        id="oltp-many-cpus",
    ),
    pytest.param(
        ("olap", 256, 64, None),
        {},
        # parallel workers are limited to one per 64 MiB: 256//64 = 4
        {"max_parallel_workers": "4", "max_parallel_workers_per_gather": "4", "max_parallel_maintenance_workers": "4"},
        id="olap-cpu-rich-memory-poor",
    ),
    pytest.param(
        ("olap", 1_048_576, 4096, None),
        {},
        # 1 TiB, 4096 CPUs: parallel workers stop at PostgreSQL's 1024
        {
            "max_parallel_workers": "1024",
            "max_parallel_workers_per_gather": "16",
            "max_parallel_maintenance_workers": "8",
            "max_worker_processes": "1032",
            "shared_buffers": "262144MB",
            "effective_cache_size": "786432MB",
        },
        id="olap-huge-node",
    ),
    pytest.param(
        ("oltp", 4096, 2, None),
        {"pg_version": 14},
        {"wal_compression": "on", "maintenance_io_concurrency": "100"},
        id="pg14",
    ),
    pytest.param(
        ("oltp.yml", 4096, 2, None),
        {"shared_buffer_ratio": None, "max_connections": None, "pg_version": None},
        # 'oltp.yml' and None keywords behave as oltp and the defaults
        {"shared_buffers": "1024MB", "max_connections": "290", "wal_compression": "lz4"},
        id="yml-name-and-unset-keywords",
    ),
]


@pytest.mark.parametrize("args, kwargs, expected", CASES)
def test_hand_checked(args, kwargs, expected):
    got = tune(*args, **kwargs)
    assert {k: got[k] for k in expected} == expected
    assert budget_kb(got) <= args[1] * 1024


def test_return_keys():
    assert list(tune("oltp", 4096, 2)) == KEYS
    assert list(tune("tiny", 512, 1, pg_version=12)) == [k for k in KEYS if k not in SINCE_13]


def test_return_keys_are_postgres_15_parameters():
    for profile in PROFILES:
        assert set(tune(profile, 4096, 2, 40)) <= PG15_GUCS


def test_booleans_and_memory_forms():
    for profile in PROFILES:
        got = tune(profile, 2048, 2)
        for name in BOOLEANS:
            if name in got:
                assert got[name] in ("on", "off"), name
        for name in MEMORY:
            kb(got[name])


def test_profiles_differ_where_documented():
    oltp, olap, crit, tiny = (tune(p, 16384, 8, 200) for p in PROFILES)
    assert int(olap["max_connections"]) < int(oltp["max_connections"])
    assert int(crit["max_connections"]) < int(oltp["max_connections"])
    assert kb(olap["work_mem"]) > kb(oltp["work_mem"])
    assert kb(olap["maintenance_work_mem"]) > kb(oltp["maintenance_work_mem"])
    assert int(olap["max_parallel_workers"]) > int(oltp["max_parallel_workers"])
    assert kb(crit["max_wal_size"]) <= kb(oltp["max_wal_size"])
    assert kb(tiny["max_wal_size"]) < kb(oltp["max_wal_size"])
    assert crit["synchronous_commit"] == "on"
    assert olap["synchronous_commit"] == "off"
    assert "statement_timeout" not in olap


def test_profile_name():
    assert profile_name(None) == "oltp"
    assert profile_name("crit.yml") == "crit"
    assert profile_name("olap") == "olap"
    assert profile_name("oltpp") is None
    assert profile_name(3) is None


def test_formulas_cover_the_derived_settings():
    for name in (
        "max_connections",
        "shared_buffers",
        "effective_cache_size",
        "work_mem",
        "maintenance_work_mem",
        "autovacuum_work_mem",
        "max_parallel_workers",
        "max_wal_size",
        "min_wal_size",
        "wal_buffers",
        "huge_pages",
        "wal_level",
    ):
        assert name in FORMULAS and FORMULAS[name]
    assert set(FORMULAS) <= set(KEYS)


# --- input checks ----------------------------------------------------------


def only(problems):
    assert len(problems) == 1, problems
    return problems[0]


def test_valid_inputs_have_no_problems():
    assert check_tuning("oltp", 4096, 2, 40, 0.25, "auto") == []
    assert check_tuning("tiny.yml", 512, 1, None, 0.4, 25) == []
    assert check_tuning(None, 256, 1, 0, None, None) == []


def test_unknown_profile():
    p = only(check_tuning("oltpp", 4096, 2, None, 0.25, "auto", cluster="pg-test", host="10.10.10.11"))
    assert p == Problem(
        "pg-test",
        "10.10.10.11",
        "pg_conf",
        "oltpp",
        "is not a known config profile",
        "use one of oltp, olap, crit, tiny",
    )
    assert str(p) == (
        "cluster pg-test, host 10.10.10.11: pg_conf = 'oltpp': "
        "is not a known config profile; "
        "fix: use one of oltp, olap, crit, tiny"
    )


@pytest.mark.parametrize("ratio", [0.05, 0.41, 1, "0.25", True, float("nan")])
def test_bad_shared_buffer_ratio(ratio):
    p = only(check_tuning("oltp", 4096, 2, None, ratio, "auto"))
    assert p.field == "pg_shared_buffer_ratio" and p.value is ratio
    assert "0.1" in p.fix and "0.4" in p.fix


@pytest.mark.parametrize("conn", [24, 10001, "1000", "AUTO", 100.0, False])
def test_bad_max_conn(conn):
    p = only(check_tuning("oltp", 4096, 2, None, 0.25, conn))
    assert p.field == "pg_max_conn" and p.value is conn
    assert "auto" in p.fix and "25" in p.fix and "10000" in p.fix


def test_max_conn_that_does_not_fit():
    # tiny 512 MiB: 323584 kB spare, 64kB each -> at most 5056 connections
    assert check_tuning("tiny", 512, 1, None, 0.25, 5056) == []
    p = only(check_tuning("tiny", 512, 1, None, 0.25, 5057, host="h"))
    assert p.field == "pg_max_conn" and p.value == 5057 and p.host == "h"
    assert "at most 5056" in p.fix
    with pytest.raises(ModelError) as err:
        tune("tiny", 512, 1, max_connections=5057)
    assert err.value.problems == [dataclasses.replace(p, host=None)]


@pytest.mark.parametrize(
    "mem, cpu, fields",
    [
        (255, 1, ["ansible_memtotal_mb"]),
        (16 * 1024 * 1024 + 1, 1, ["ansible_memtotal_mb"]),
        ("4096", 2, ["ansible_memtotal_mb"]),
        (None, None, ["ansible_memtotal_mb", "ansible_processor_vcpus"]),
        (4096, 0, ["ansible_processor_vcpus"]),
        (4096, 2.0, ["ansible_processor_vcpus"]),
    ],
)
def test_bad_node_size(mem, cpu, fields):
    problems = check_tuning("oltp", mem, cpu, None, 0.25, "auto")
    assert [p.field for p in problems] == fields
    assert all(p.fix for p in problems)


@pytest.mark.parametrize("disk", [-1, -0.5, "40", float("inf"), True, float("nan")])
def test_bad_disk(disk):
    p = only(check_tuning("oltp", 4096, 2, disk, 0.25, "auto"))
    assert p.field == "pg_disk_gb" and p.value is disk


def test_huge_disks_are_fine():
    for disk in (10**12, 1.7e308):
        assert check_tuning("oltp", 4096, 2, disk, 0.25, "auto") == []
        got = tune("oltp", 4096, 2, disk)
        assert got["max_wal_size"] == "65536MB"
        # PostgreSQL's maximum
        assert got["max_slot_wal_keep_size"] == "2147483647MB"


def test_bad_pg_version_only_when_given():
    assert check_tuning("oltp", 4096, 2, None, 0.25, "auto") == []
    p = only(check_tuning("oltp", 4096, 2, None, 0.25, "auto", pg_version=11))
    assert p.field == "pg_version"


def test_all_problems_at_once():
    problems = check_tuning("x", 1, 0, -1, 9, 5, cluster="c", host="h")
    assert sorted(p.field for p in problems) == [
        "ansible_memtotal_mb",
        "ansible_processor_vcpus",
        "pg_conf",
        "pg_disk_gb",
        "pg_max_conn",
        "pg_shared_buffer_ratio",
    ]
    assert {(p.cluster, p.host) for p in problems} == {("c", "h")}


def test_tune_raises_with_the_problems():
    with pytest.raises(ModelError) as err:
        tune("oltpp", 4096, 2)
    assert [p.field for p in err.value.problems] == ["pg_conf"]
    assert isinstance(err.value, ValueError)
    with pytest.raises(ModelError):
        tune("oltp", 4096, 2, pg_version=11)


# --- cluster-wide settings -------------------------------------------------


def test_cluster_settings_agree_on_the_safe_value():
    small = tune("oltp", 4096, 2)  # 290 connections, 9 workers
    big = tune("oltp", 32768, 8, 500)  # 500 connections, 12 workers
    agreed = cluster_settings([big, small])
    assert set(agreed) == set(CLUSTER_SETTINGS)
    assert agreed["max_connections"] == "290"
    assert agreed["max_worker_processes"] == "12"
    assert agreed["max_wal_senders"] == "16"
    assert agreed["wal_level"] == "logical"
    assert cluster_settings([]) == {}
    assert (
        cluster_settings(
            [
                {
                    "max_connections": "50",
                    "max_replication_slots": "4",
                    "max_wal_senders": "4",
                    "max_worker_processes": "8",
                    "wal_level": "replica",
                    "wal_log_hints": "off",
                },
                big,
            ]
        )["wal_level"]
        == "logical"
    )


# --- properties ------------------------------------------------------------

profiles = st.sampled_from(PROFILES)
mems = st.integers(256, 1_048_576)
cpus = st.integers(1, 256)
disks = st.none() | st.integers(1, 100_000)
ratios = st.floats(0.1, 0.4)
conns = st.just("auto") | st.integers(25, 10_000)
versions = st.sampled_from(range(12, 19))


@settings(max_examples=300)
@given(profiles, mems, cpus, disks, ratios, conns, versions)
def test_memory_guarantee(profile, mem, cpu, disk, ratio, conn, version):
    """shared_buffers + wal_buffers + maintenance_work_mem
    + autovacuum_max_workers * autovacuum_work_mem
    + (max_connections + max_parallel_workers) * work_mem <= memory,
    whenever check_tuning accepts the inputs (always, for 'auto')."""
    problems = check_tuning(profile, mem, cpu, disk, ratio, conn)
    if problems:
        assert conn != "auto"
        assert [p.field for p in problems] == ["pg_max_conn"]
        with pytest.raises(ModelError):
            tune(profile, mem, cpu, disk, shared_buffer_ratio=ratio, max_connections=conn, pg_version=version)
        return
    got = tune(profile, mem, cpu, disk, shared_buffer_ratio=ratio, max_connections=conn, pg_version=version)
    assert budget_kb(got) <= mem * 1024
    assert kb(got["work_mem"]) >= 64
    if conn != "auto":
        assert got["max_connections"] == str(conn)


@given(profiles, mems, cpus, disks, ratios, conns, versions)
def test_shape_and_determinism(profile, mem, cpu, disk, ratio, conn, version):
    kwargs = dict(shared_buffer_ratio=ratio, max_connections=conn, pg_version=version)
    if check_tuning(profile, mem, cpu, disk, ratio, conn):
        return
    got = tune(profile, mem, cpu, disk, **kwargs)
    assert got == tune(profile, mem, cpu, disk, **kwargs)
    assert list(got) == sorted(got)
    assert all(isinstance(v, str) for v in got.values())
    assert set(got) == set(KEYS) - (SINCE_13 if version < 13 else set())
    assert set(got) <= PG15_GUCS
    for name in MEMORY:
        kb(got[name])


@given(profiles, mems, cpus, disks, ratios, conns)
def test_ranges(profile, mem, cpu, disk, ratio, conn):
    if check_tuning(profile, mem, cpu, disk, ratio, conn):
        return
    got = tune(profile, mem, cpu, disk, shared_buffer_ratio=ratio, max_connections=conn)
    sb = kb(got["shared_buffers"])
    assert (128 if mem >= 512 else 32) * 1024 <= sb <= mem * 1024 * 4 // 10
    assert sb < kb(got["effective_cache_size"]) < mem * 1024
    par = int(got["max_parallel_workers"])
    assert 0 <= par <= cpu
    assert int(got["max_parallel_workers_per_gather"]) <= par
    assert int(got["max_parallel_maintenance_workers"]) <= par
    assert int(got["max_worker_processes"]) >= max(8, par)
    conns_ = int(got["max_connections"])
    assert 25 <= conns_ <= 10_000
    assert 3 <= int(got["superuser_reserved_connections"]) < conns_
    assert 32 * 1024 <= kb(got["min_wal_size"]) <= kb(got["max_wal_size"])
    if disk is not None:
        assert kb(got["max_wal_size"]) <= max(disk * 1024 * 1024 // 4, 64 * 1024)
    if cpu == 1:
        assert par == 0 or profile == "olap"
        assert got["max_parallel_maintenance_workers"] == "0"


@given(profiles, mems, mems, cpus, disks, ratios)
def test_more_memory_never_shrinks_the_caches(profile, m1, m2, cpu, disk, ratio):
    small, big = sorted((m1, m2))
    a = tune(profile, small, cpu, disk, shared_buffer_ratio=ratio)
    b = tune(profile, big, cpu, disk, shared_buffer_ratio=ratio)
    assert kb(a["shared_buffers"]) <= kb(b["shared_buffers"])
    assert kb(a["effective_cache_size"]) <= kb(b["effective_cache_size"])


any_value = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.integers(10**300, 10**400)
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=2)
    | st.sampled_from(["auto", "oltp", "crit.yml", 0.25, 512])
)


@given(any_value, any_value, any_value, any_value, any_value, any_value, any_value)
def test_check_never_raises_and_tune_agrees(profile, mem, cpu, disk, ratio, conn, version):
    problems = check_tuning(profile, mem, cpu, disk, ratio, conn, pg_version=version)
    assert all(isinstance(p, Problem) and p.fix for p in problems)
    if problems:
        with pytest.raises(ModelError):
            tune(profile, mem, cpu, disk, shared_buffer_ratio=ratio, max_connections=conn, pg_version=version)
    else:
        assert tune(profile, mem, cpu, disk, shared_buffer_ratio=ratio, max_connections=conn, pg_version=version)
