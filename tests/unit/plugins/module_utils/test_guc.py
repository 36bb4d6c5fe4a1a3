# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""PostgreSQL parameter names (did you mean) and pg_parameters beyond the
node's memory."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import guc, tuning, validate
from inv import build, pg_test


def test_data_file_lists_postgresql_15():
    names = guc.known_names()
    assert 340 <= len(names) <= 380
    assert {
        "shared_buffers",
        "max_connections",
        "work_mem",
        "search_path",
        "log_min_duration_statement",
        "wal_level",
        "timezone",
        "datestyle",
        "server_version",
        "debug_discard_caches",
    } <= names
    # 16's and 17's, and builds with LOCK_DEBUG only
    assert not {"io_method", "summarize_wal", "transaction_timeout", "trace_locks", "wal_debug"} & names
    with open(guc.DATA_FILE, encoding="utf-8") as handle:
        lines = [line.rstrip("\n") for line in handle if not line.startswith("#")]
    assert lines == sorted(set(lines)) and all(line == line.lower() for line in lines)


@pytest.mark.parametrize(
    "name",
    [
        "shared_buffers",
        "DateStyle",
        "TimeZone",
        "auto_explain.log_min_duration",
        "citus.node_conninfo",
        "pg_stat_statements.max",
    ],
)
def test_known_names(name):
    assert guc.is_known(name)
    assert guc.name_problem("pg-test", None, "pg_parameters." + name, name, 1, 15) is None


@pytest.mark.parametrize(
    "name, guess",
    [
        ("shared_bufers", "shared_buffers"),
        ("max_conections", "max_connections"),
        ("work_memory", "work_mem"),
        ("effective_cache", "effective_cache_size"),
        ("log_min_duration_statment", "log_min_duration_statement"),
        ("serach_path", "search_path"),
    ],
)
def test_unknown_name_gets_the_closest(name, guess):
    p = guc.name_problem("pg-test", None, "pg_parameters." + name, name, "1GB", 15)
    assert str(p) == (
        "cluster pg-test: pg_parameters.%s = '1GB': %s is not a PostgreSQL 15 parameter; "
        "fix: did you mean %s? (names as in postgresql.conf; an extension's are written "
        "prefix.name)" % (name, name, guess)
    )


def test_unknown_name_without_a_close_one():
    p = guc.name_problem("pg-test", None, "pg_parameters.zzz", "zzz", 1, 15)
    assert p.fix == ("use a parameter of PostgreSQL 15 (SHOW ALL lists them), or prefix.name for an extension's")


def test_other_versions_are_not_checked():
    # the list is 15's: 17's transaction_timeout is fine on a repository's 17
    assert guc.name_problem("pg-test", None, "f", "transaction_timeout", 1, 17) is None
    assert guc.name_problem("pg-test", None, "f", "transaction_timeout", 1, 15) is not None


@pytest.mark.parametrize(
    "name, value, kb",
    [
        ("shared_buffers", "8GB", 8 * 1024 * 1024),
        ("shared_buffers", "512 MB", 512 * 1024),
        ("shared_buffers", 1024, 8192),  # bare: 8kB pages
        ("shared_buffers", "1024", 8192),
        ("work_mem", 4096, 4096),  # bare: kB
        ("work_mem", "1.5MB", 1536),
        ("maintenance_work_mem", "1TB", 1024**3),
        ("wal_buffers", "-1", None),
        ("work_mem", "lots", None),
        ("work_mem", True, None),
        ("work_mem", "4mb", None),  # PostgreSQL's units are case-sensitive
    ],
)
def test_memory_kb(name, value, kb):
    assert guc.memory_kb(name, value) == kb


# tune("oltp", 4096, 2): shared_buffers 1024MB, wal_buffers 32MB,
# maintenance_work_mem 256MB, 3 x autovacuum_work_mem 128MB (1696 MiB in all),
# 290 connections + 1 parallel worker at work_mem 4MB.
TUNED = tuning.tune("oltp", 4096, 2)


@pytest.mark.parametrize(
    "overrides, found",
    [
        ({}, []),
        ({"shared_buffers": "2GB", "random_page_cost": 4}, []),
        ({"max_connections": 500}, []),  # 1696 + 501 x 4 = 3700 MiB
        ({"max_connections": "auto"}, []),
        ({"work_mem": "-1"}, []),
        (
            {"shared_buffers": "8GB"},
            [
                "cluster pg-test, host 10.10.10.11: pg_parameters.shared_buffers = '8GB': is 8192 MiB, "
                "as much as or more than the node's memory (4096 MiB): PostgreSQL would not start, or "
                "the node would run out of memory; fix: leave shared_buffers to the tuning "
                "(pg_shared_buffer_ratio, 1024MB here), or at most 40% of the memory (1638 MB)"
            ],
        ),
        (
            {"max_connections": 5000},
            [
                "cluster pg-test, host 10.10.10.11: pg_parameters.max_connections = 5000: breaks the "
                "memory guarantee of docs/tuning.md: shared_buffers 1024 MiB + wal_buffers 32 MiB + "
                "maintenance_work_mem 256 MiB + 3 x autovacuum_work_mem 128 MiB + (5000 connections + 1 "
                "parallel workers) x work_mem 4096kB = 21700 MiB, more than the node's 4096 MiB; fix: "
                "set pg_max_conn: 5000 instead (work_mem is then lowered to fit), or at most 599 "
                "connections at work_mem 4096kB"
            ],
        ),
        # 1696 + 291 x 64 = 20320 MiB; (4096 - 1696) MiB / 291 = 8445 kB
        (
            {"work_mem": "64MB"},
            [
                "cluster pg-test, host 10.10.10.11: pg_parameters.work_mem = '64MB': breaks the memory "
                "guarantee of docs/tuning.md: shared_buffers 1024 MiB + wal_buffers 32 MiB + "
                "maintenance_work_mem 256 MiB + 3 x autovacuum_work_mem 128 MiB + (290 connections + 1 "
                "parallel workers) x work_mem 65536kB = 20320 MiB, more than the node's 4096 MiB; fix: "
                "at most 8445kB of work_mem for 290 connections and 1 parallel workers, or fewer "
                "connections (pg_max_conn)"
            ],
        ),
    ],
)
def test_memory_problems(overrides, found):
    assert [str(p) for p in guc.memory_problems(TUNED, overrides, 4096, cluster="pg-test", host="10.10.10.11")] == found


def test_pg_max_conn_is_offered_only_where_it_fits():
    # 512 MiB tiny node: 9000 connections do not fit even at 64kB each
    tuned = tuning.tune("tiny", 512, 1)
    (p,) = guc.memory_problems(tuned, {"max_connections": 9000}, 512)
    assert "pg_max_conn" not in p.fix and p.fix.startswith("at most ")


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(tuning.PROFILES),
    st.integers(256, 1 << 20),
    st.integers(1, 256),
    st.sampled_from(["auto", 25, 100, 1000]),
)
def test_the_tuning_itself_always_fits(profile, mem, cpu, conn):
    """The tuning's own values, written back as overrides, never break the
    guarantee the tuning keeps (docs/tuning.md)."""
    if tuning.check_tuning(profile, mem, cpu, None, 0.25, conn):
        return
    tuned = tuning.tune(profile, mem, cpu, max_connections=conn)
    assert guc.memory_problems(tuned, dict(tuned), mem) == []


def test_validation_refuses_with_known_memory_and_warns_on_the_reference_node():
    common = {"pg_parameters": {"shared_buffers": "8GB", "shared_bufers": "1GB"}}
    hv, groups = build(pg_test(**common))
    inv = model_mod.load(hv, groups)
    found = [str(p) for p in validate.problems(inv)]
    # no facts: the name is refused, the size only warned about
    assert found == [
        "cluster pg-test: pg_parameters.shared_bufers = '1GB': shared_bufers is not a "
        "PostgreSQL 15 parameter; fix: did you mean shared_buffers? (names as in "
        "postgresql.conf; an extension's are written prefix.name)"
    ]
    (line,) = validate.tuning_warnings(inv)
    assert line.startswith("cluster pg-test: pg_parameters.shared_buffers = '8GB': is 8192 MiB")
    assert line.endswith(
        "(on the reference node of 4096 MiB, as no facts were gathered: "
        "the nodes' own memory decides when the playbooks run)"
    )
    # with the facts of 4 GiB nodes it is refused, once for the cluster
    for host in groups["pg-test"]:
        hv[host].update(ansible_memtotal_mb=4096, ansible_processor_vcpus=2)
        hv[host]["pg_parameters"] = {"shared_buffers": "8GB"}
    inv = model_mod.load(hv, groups)
    (p,) = validate.problems(inv)
    assert (p.cluster, p.host, p.field) == ("pg-test", None, "pg_parameters.shared_buffers")
    assert validate.tuning_warnings(inv) == []
    # 64 GiB nodes take it
    for host in groups["pg-test"]:
        hv[host].update(ansible_memtotal_mb=65536, ansible_processor_vcpus=16)
    assert validate.problems(model_mod.load(hv, groups)) == []


def test_object_parameter_names():
    hv, groups = build(
        pg_test(
            pg_users=[{"name": "app", "parameters": {"statement_timeout": "1s", "statment_timeout": "2s"}}],
            pg_databases=[{"name": "app", "parameters": {"serach_path": "app", "pg_stat_statements.track": "all"}}],
        )
    )
    found = [(p.field, p.fix.split("?")[0]) for p in validate.problems(model_mod.load(hv, groups))]
    assert found == [
        ("pg_databases[0](app).parameters.serach_path", "did you mean search_path"),
        ("pg_users[0](app).parameters.statment_timeout", "did you mean statement_timeout"),
    ]
