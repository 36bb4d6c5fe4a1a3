# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/exporters/files/pgbouncer_exporter_compat.py: SHOW STATS of
pgbouncer 1.18 read by Debian's prometheus-pgbouncer-exporter 1.7."""

from __future__ import annotations

import role_files

SCRIPT = role_files.path("exporters", "pgbouncer_exporter_compat.py")

compat = role_files.load("exporters", "pgbouncer_exporter_compat.py")

# SHOW STATS columns of pgbouncer 1.18 (one row, admin database)
ROW_118 = {
    "database": "pgbouncer",
    "total_xact_count": 3,
    "total_query_count": 7,
    "total_received": 0,
    "total_sent": 0,
    "total_xact_time": 0,
    "total_query_time": 0,
    "total_wait_time": 0,
    "avg_xact_count": 0,
    "avg_query_count": 0,
    "avg_recv": 0,
    "avg_sent": 0,
    "avg_xact_time": 0,
    "avg_query_time": 0,
    "avg_wait_time": 0,
}
# the columns the exporter 1.7 reads (StatsCollector.metrics)
EXPORTER_17_COLUMNS = ("total_requests", "total_received", "total_sent", "total_query_time")


def test_new_column_is_given_its_old_name():
    (row,) = compat.with_old_columns([ROW_118])
    assert row["total_requests"] == 7
    for column in EXPORTER_17_COLUMNS:
        assert column in row
    assert "total_requests" not in ROW_118  # input untouched


def test_old_column_is_kept_when_present():
    (row,) = compat.with_old_columns([{"database": "x", "total_requests": 5, "total_query_count": 9}])
    assert row["total_requests"] == 5


def test_rows_of_other_commands_pass_through():
    pools = [{"database": "test", "user": "test", "cl_active": 1, "cl_waiting": 0}]
    assert compat.with_old_columns(pools) == pools
    assert compat.with_old_columns([]) == []


def test_wrap_applies_to_every_call():
    calls = []

    def fetch(connection, key):
        calls.append((connection, key))
        return [dict(ROW_118)]

    wrapped = compat.wrap(fetch)
    assert wrapped("conn", "STATS")[0]["total_requests"] == 7
    assert calls == [("conn", "STATS")]
