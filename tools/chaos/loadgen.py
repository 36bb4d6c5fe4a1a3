# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""A load generator that records what clients see during a fault.

* writer: inserts one row with a client-side id every ``interval`` seconds
  through the write DSN (the primary service, 5433), and records every
  acknowledged id with the time of its acknowledgement;
* reader: runs ``SELECT pg_is_in_recovery()`` through the read DSN (the
  replica service, 5434) at the same pace;
* probes (optional): write directly to each node's PostgreSQL and record
  which node acknowledged when (split-brain detection: an isolated primary
  must stop accepting writes).

Every connection uses short libpq timeouts (connect 2 s, TCP user timeout
2 s, keepalives) so that a dead server shows up as an error at once; an
error drops the connection and the next attempt reconnects. Times come from
one monotonic clock (``time.monotonic()``).

Usable alone against any cluster::

    python tools/chaos/loadgen.py --write 'host=10.10.10.11,10.10.10.12 port=5433 dbname=test user=test password=test' \\
        --read 'host=10.10.10.11,10.10.10.12 port=5434 dbname=test user=test password=test' --seconds 30
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import psycopg

FAST_FAIL = {"connect_timeout": "2", "tcp_user_timeout": "2000", "keepalives": "1",
             "keepalives_idle": "1", "keepalives_interval": "1", "keepalives_count": "2"}
TABLE = "pigpen_chaos"
PROBE_TABLE = "pigpen_chaos_probe"


def dsn_with_timeouts(dsn: str) -> str:
    """The DSN with the fast-fail settings it does not already set."""
    given = {part.split("=", 1)[0] for part in dsn.split() if "=" in part}
    return " ".join([dsn] + ["%s=%s" % kv for kv in FAST_FAIL.items() if kv[0] not in given])


class Loop(threading.Thread):
    """Runs ``once(conn)`` every ``interval`` seconds, reconnecting on error."""

    def __init__(self, name: str, dsn: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.dsn = dsn_with_timeouts(dsn)
        self.interval = interval
        self.stopping = threading.Event()
        self.acks: List[Tuple[float, Any]] = []
        self.errors: List[Tuple[float, str]] = []
        self.conn: Optional[psycopg.Connection] = None

    def once(self, conn: psycopg.Connection) -> Any:
        raise NotImplementedError

    def keeps_connection(self, exc: Exception) -> bool:
        """Whether the connection survives ``exc``: a client of a service
        reconnects after any failure (a new connection is what finds the new
        primary), so by default it does not."""
        return False

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                if self.conn is None or self.conn.closed:
                    # no server-side prepared statements: pgbouncer's
                    # transaction pooling would mix them between clients
                    self.conn = psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None)
                value = self.once(self.conn)
                self.acks.append((time.monotonic(), value))
            except Exception as exc:  # every failure is a data point
                self.errors.append((time.monotonic(), type(exc).__name__ + ": " + str(exc).strip()[:200]))
                if self.conn is not None and not self.keeps_connection(exc):
                    try:
                        self.conn.close()
                    except Exception:  # noqa: BLE001 (already broken)
                        pass
                    self.conn = None
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self.stopping.set()


class Writer(Loop):
    def __init__(self, dsn: str, interval: float = 0.05, first_id: int = 1) -> None:
        super().__init__("writer", dsn, interval)
        self.next_id = first_id

    def once(self, conn: psycopg.Connection) -> Any:
        row_id = self.next_id
        self.next_id += 1  # an id that failed is never reused
        conn.execute("INSERT INTO %s (id) VALUES (%%s)" % TABLE, (row_id,))
        return row_id


class Reader(Loop):
    def __init__(self, dsn: str, interval: float = 0.05) -> None:
        super().__init__("reader", dsn, interval)

    def once(self, conn: psycopg.Connection) -> Any:
        return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]


class Probe(Loop):
    """Writes straight to one node's PostgreSQL; a replica refuses."""

    def __init__(self, node: str, dsn: str, interval: float = 0.2) -> None:
        super().__init__("probe-" + node, dsn, interval)
        self.node = node

    def once(self, conn: psycopg.Connection) -> Any:
        conn.execute("INSERT INTO %s (node) VALUES (%%s)" % PROBE_TABLE, (self.node,))
        return self.node

    def keeps_connection(self, exc: Exception) -> bool:
        # A replica refuses the write but keeps the session, and the same
        # session writes once that node is promoted. Reconnecting (TLS and
        # SCRAM, a new backend) five times a second per replica would load
        # the nodes whose failover is being measured.
        return (self.conn is not None and not self.conn.closed
                and isinstance(exc, psycopg.Error)
                and not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)))


def prepare(dsn: str) -> int:
    """Create the tables (through the primary); returns the next free id."""
    with psycopg.connect(dsn_with_timeouts(dsn), autocommit=True, prepare_threshold=None) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, at timestamptz DEFAULT now())"
                     % TABLE)
        conn.execute("CREATE TABLE IF NOT EXISTS %s (node text, at timestamptz DEFAULT now())" % PROBE_TABLE)
        return (conn.execute("SELECT coalesce(max(id), 0) + 1 FROM %s" % TABLE).fetchone()[0])


def present_ids(dsn: str, low: int, high: int) -> List[int]:
    with psycopg.connect(dsn_with_timeouts(dsn), autocommit=True, prepare_threshold=None) as conn:
        rows = conn.execute("SELECT id FROM %s WHERE id BETWEEN %%s AND %%s" % TABLE, (low, high)).fetchall()
    return [r[0] for r in rows]


class LoadGen:
    """The writer, the reader and the probes, started and stopped together."""

    def __init__(self, write_dsn: str, read_dsn: Optional[str] = None,
                 probes: Optional[Dict[str, str]] = None, interval: float = 0.05) -> None:
        self.first_id = prepare(write_dsn)
        self.writer = Writer(write_dsn, interval, self.first_id)
        self.reader = Reader(read_dsn, interval) if read_dsn else None
        self.probes = [Probe(node, dsn) for node, dsn in (probes or {}).items()]

    @property
    def loops(self) -> List[Loop]:
        return [self.writer] + ([self.reader] if self.reader else []) + self.probes

    def start(self) -> "LoadGen":
        for loop in self.loops:
            loop.start()
        return self

    def stop(self) -> None:
        for loop in self.loops:
            loop.stop()
        for loop in self.loops:
            loop.join(timeout=10)

    def record(self) -> Dict[str, Any]:
        return {
            "first_id": self.first_id,
            "last_id": self.writer.next_id - 1,
            "write_acks": [t for t, _ in self.writer.acks],
            "acked_ids": [v for _, v in self.writer.acks],
            "write_errors": self.writer.errors,
            "read_acks": [t for t, _ in self.reader.acks] if self.reader else [],
            "read_on_primary": sum(1 for _, v in self.reader.acks if v is False) if self.reader else 0,
            "read_errors": self.reader.errors if self.reader else [],
            "probe_acks": {p.node: [t for t, _ in p.acks] for p in self.probes},
        }


def main() -> int:
    parser = argparse.ArgumentParser(description="Write and read through a cluster's services; print what was seen.")
    parser.add_argument("--write", required=True, help="libpq DSN of the primary service")
    parser.add_argument("--read", help="libpq DSN of the replica service")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    gen = LoadGen(args.write, args.read, interval=args.interval).start()
    time.sleep(args.seconds)
    gen.stop()
    rec = gen.record()
    print(json.dumps({"writes_acked": len(rec["acked_ids"]), "write_errors": len(rec["write_errors"]),
                      "reads_acked": len(rec["read_acks"]), "read_errors": len(rec["read_errors"]),
                      "reads_on_primary": rec["read_on_primary"]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
