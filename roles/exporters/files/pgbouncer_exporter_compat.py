#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Run Debian's prometheus-pgbouncer-exporter 1.7 against pgbouncer 1.8 or later.

pgbouncer 1.8 renamed the ``total_requests`` column of ``SHOW STATS`` to
``total_query_count``. The exporter packaged in Debian 12 (1.7) still reads
``total_requests``, so with Debian 12's pgbouncer (1.18) every scrape fails
with a KeyError and Prometheus sees no pgbouncer metric at all.

This wrapper gives the exporter the column under its old name (the same
counter: SQL queries pooled) and then runs the packaged program unchanged,
with the same options and configuration file. Nothing else is altered; the
metric keeps its name, ``pgbouncer_requests_total``.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, List

#: old column name -> the name pgbouncer 1.8+ uses for it
RENAMED_COLUMNS = {"total_requests": "total_query_count"}


def with_old_columns(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows of a ``SHOW`` command with the pre-1.8 column names added where
    only the new name is present (rows are copied, never modified)."""
    out = []
    for row in rows:
        row = dict(row)
        for old, new in RENAMED_COLUMNS.items():
            if old not in row and new in row:
                row[old] = row[new]
        out.append(row)
    return out


def wrap(fetch: Callable[..., List[Dict[str, Any]]]) -> Callable[..., List[Dict[str, Any]]]:
    def fetch_with_old_columns(*args, **kwargs):
        return with_old_columns(fetch(*args, **kwargs))

    return fetch_with_old_columns


def main() -> int:
    from prometheus_pgbouncer_exporter import collectors  # Debian's package
    from prometheus_pgbouncer_exporter.cli import main as exporter_main

    collectors.get_data_by_named_column = wrap(collectors.get_data_by_named_column)
    exporter_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
