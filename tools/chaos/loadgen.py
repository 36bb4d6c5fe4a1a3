# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""A load generator that records what clients see during a fault.

Clients of several kinds run side by side, each on its own connection, each
measured on its own (``CLIENT_KINDS``):

* ``write``: inserts one row with a client-side id every ``interval``
  seconds and records every acknowledged id with the time of its
  acknowledgement (ids come from one counter shared by every writer, so
  lost rows are counted across all of them). The role it must land on is
  the primary: a session whose first insert is refused as read-only landed
  on the wrong role;
* ``read``: runs ``SELECT pg_is_in_recovery()`` at the same pace, on
  whatever the DSN reaches;
* ``read-standby``: the same, but the session must be on a standby: one
  whose first read answers ``false`` landed on the primary (the wrong
  role), and every read on the primary is counted.

The DSNs are what applications use: libpq multi-host lists over the
members' HAProxies with ``target_session_attrs`` (``read-write``,
``primary``, ``standby``, ``prefer-standby``), a single address (the VIP),
pgbouncer directly. Probes (optional) write straight to each node's
PostgreSQL and record which node acknowledged when (split-brain detection:
an isolated primary must stop accepting writes).

Every connection uses short libpq timeouts (connect 2 s, TCP user timeout
2 s, keepalives) so that a dead server shows up as an error at once; an
error drops the connection and the next attempt reconnects. Times come from
one monotonic clock (``time.monotonic()``).

Usable alone against any cluster::

    python tools/chaos/loadgen.py \\
        --client 'write=host=10.10.10.11,10.10.10.12 port=5433 dbname=test user=test password=test target_session_attrs=read-write' \\
        --client 'read-standby=host=10.10.10.11,10.10.10.12 port=5434 dbname=test user=test password=test target_session_attrs=standby' \\
        --seconds 30
"""  # noqa: E501 (a command line to copy as it is)

from __future__ import annotations

import argparse
import itertools
import json
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import psycopg

FAST_FAIL = {
    "connect_timeout": "2",
    "tcp_user_timeout": "2000",
    "keepalives": "1",
    "keepalives_idle": "1",
    "keepalives_interval": "1",
    "keepalives_count": "2",
}
TABLE = "pigpen_chaos"
PROBE_TABLE = "pigpen_chaos_probe"
# kind -> (what it does, the role its sessions must land on)
CLIENT_KINDS = {
    "write": ("insert a row", "primary"),
    "read": ("read", None),
    "read-standby": ("read", "standby"),
}
READ_ONLY_REFUSAL = "read-only transaction"


def dsn_with_timeouts(dsn: str) -> str:
    """The DSN with the fast-fail settings it does not already set."""
    given = {part.split("=", 1)[0] for part in dsn.split() if "=" in part}
    return " ".join([dsn] + ["%s=%s" % kv for kv in FAST_FAIL.items() if kv[0] not in given])


class Loop(threading.Thread):
    """Runs ``once(conn)`` every ``interval`` seconds, reconnecting on error.

    Records acknowledgements, errors and sessions; a session (a connection)
    whose first operation shows the wrong role for ``expect`` is counted in
    ``wrong_sessions`` (see ``wrong_role``)."""

    expect: Optional[str] = None
    kind: str  # set by each kind of client (Probe has none)

    def __init__(self, name: str, dsn: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.dsn = dsn_with_timeouts(dsn)
        self.interval = interval
        self.stopping = threading.Event()
        self.acks: List[Tuple[float, Any]] = []
        self.errors: List[Tuple[float, str]] = []
        self.sessions: List[float] = []
        self.wrong_sessions: List[float] = []
        self.conn: Optional[psycopg.Connection] = None
        self._first = False
        self.connect: Callable[..., Any] = psycopg.connect  # tests pass their own

    def once(self, conn: psycopg.Connection) -> Any:
        raise NotImplementedError

    def wrong_role(self, value: Any, exc: Optional[Exception]) -> bool:
        """Whether a session's first operation (its value, or the error it
        raised) shows that the session landed on the wrong role."""
        return False

    @property
    def asks_role(self) -> bool:
        """Whether the client asks libpq for a role (``target_session_attrs``
        other than ``any``): only then is a session on the wrong role the
        client library's or the pooler's fault; a client without it (one
        address, the VIP) can land on a primary that is briefly read-only
        (Patroni 3.0.2 restarts a crashed primary as a standby, then
        promotes it), which counts as errors, not as a wrong role."""
        attrs = [part.split("=", 1)[1] for part in self.dsn.split() if part.startswith("target_session_attrs=")]
        return bool(attrs) and attrs[0] != "any"

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
                    self.conn = self.connect(self.dsn, autocommit=True, prepare_threshold=None)
                    self.sessions.append(time.monotonic())
                    self._first = True
                value = self.once(self.conn)
                now = time.monotonic()
                self.acks.append((now, value))
                if self._first and self.asks_role and self.wrong_role(value, None):
                    self.wrong_sessions.append(now)
                self._first = False
            except Exception as exc:  # every failure is a data point
                now = time.monotonic()
                self.errors.append((now, type(exc).__name__ + ": " + str(exc).strip()[:200]))
                if self._first and self.conn is not None and self.asks_role and self.wrong_role(None, exc):
                    self.wrong_sessions.append(now)
                self._first = False
                if self.conn is not None and not self.keeps_connection(exc):
                    try:
                        self.conn.close()
                    except Exception:  # noqa: BLE001 (already broken)
                        pass
                    self.conn = None
            self.stopping.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def stop(self) -> None:
        self.stopping.set()

    def record(self) -> Dict[str, Any]:
        return {
            "kind": getattr(self, "kind", None),
            "acks": [t for t, _ in self.acks],
            "errors": list(self.errors),
            "sessions": len(self.sessions),
            "wrong_sessions": list(self.wrong_sessions),
        }


class Ids:
    """Row ids shared by every writer: each id is handed out once."""

    def __init__(self, first: int) -> None:
        self.first = first
        self._next: Iterator[int] = itertools.count(first)
        self._lock = threading.Lock()
        self.last = first - 1

    def take(self) -> int:
        with self._lock:
            self.last = next(self._next)
            return self.last


class Writer(Loop):
    kind = "write"
    expect = "primary"

    def __init__(self, dsn: str, interval: float = 0.05, ids: Optional[Ids] = None, name: str = "writer") -> None:
        super().__init__(name, dsn, interval)
        self.ids = ids or Ids(1)

    def once(self, conn: psycopg.Connection) -> Any:
        row_id = self.ids.take()  # an id that failed is never reused
        conn.execute("INSERT INTO %s (id) VALUES (%%s)" % TABLE, (row_id,))
        return row_id

    def wrong_role(self, value: Any, exc: Optional[Exception]) -> bool:
        # the session reached a server that refuses writes: a standby
        return exc is not None and READ_ONLY_REFUSAL in str(exc)

    def record(self) -> Dict[str, Any]:
        out = super().record()
        out["acked_ids"] = [v for _, v in self.acks]
        return out


class Reader(Loop):
    kind = "read"

    def __init__(self, dsn: str, interval: float = 0.05, name: str = "reader") -> None:
        super().__init__(name, dsn, interval)

    def once(self, conn: psycopg.Connection) -> Any:
        # a SELECT without FROM returns one row
        return conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]  # type: ignore[index]

    def record(self) -> Dict[str, Any]:
        out = super().record()
        out["reads_on_primary"] = sum(1 for _, v in self.acks if v is False)
        return out


class StandbyReader(Reader):
    """A reader whose sessions must land on a standby."""

    kind = "read-standby"
    expect = "standby"

    def wrong_role(self, value: Any, exc: Optional[Exception]) -> bool:
        return value is False


CLASSES: Dict[str, Callable[..., Loop]] = {"write": Writer, "read": Reader, "read-standby": StandbyReader}


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
        return (
            self.conn is not None
            and not self.conn.closed
            and isinstance(exc, psycopg.Error)
            and not isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))
        )


def check_dsns(*dsns: str) -> None:
    """Fail fast on a DSN libpq does not parse (psycopg raises)."""
    for dsn in dsns:
        psycopg.conninfo.conninfo_to_dict(dsn_with_timeouts(dsn))


def emit(report: Dict[str, Any], path: Optional[str]) -> None:
    """Print a tool's JSON report, and write it to ``path`` too."""
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")


def prepare(dsn: str) -> int:
    """Create the tables (through the primary); returns the next free id."""
    with psycopg.connect(dsn_with_timeouts(dsn), autocommit=True, prepare_threshold=None) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS %s (id bigint PRIMARY KEY, at timestamptz DEFAULT now())" % TABLE)
        conn.execute("CREATE TABLE IF NOT EXISTS %s (node text, at timestamptz DEFAULT now())" % PROBE_TABLE)
        # an aggregate without GROUP BY returns one row
        return conn.execute("SELECT coalesce(max(id), 0) + 1 FROM %s" % TABLE).fetchone()[0]  # type: ignore[index]


def present_ids(dsn: str, low: int, high: int) -> List[int]:
    with psycopg.connect(dsn_with_timeouts(dsn), autocommit=True, prepare_threshold=None) as conn:
        rows = conn.execute("SELECT id FROM %s WHERE id BETWEEN %%s AND %%s" % TABLE, (low, high)).fetchall()
    return [r[0] for r in rows]


def check_clients(clients: Any) -> List[str]:
    """Problems with a ``clients`` mapping (name -> {kind, dsn[, interval]}),
    each naming the client, the field, the value and the fix; [] when it is
    usable. At least one writer is needed (lost rows are counted on its
    rows)."""
    out: List[str] = []
    if not isinstance(clients, dict) or not clients:
        return [
            "clients: %r is not a mapping of client names to {kind, dsn}: "
            "write e.g. clients: {writer: {kind: write, dsn: 'host=... port=5433 ...'}}" % (clients,)
        ]
    for name, spec in clients.items():
        if not isinstance(spec, dict):
            out.append("clients.%s: %r is not a mapping: give it kind and dsn" % (name, spec))
            continue
        for key in sorted(set(spec) - {"kind", "dsn", "interval"}):
            out.append("clients.%s.%s: unknown key: use only kind, dsn and interval" % (name, key))
        kind = spec.get("kind")
        if kind not in CLIENT_KINDS:
            out.append(
                "clients.%s.kind: %r is not a client kind: use one of %s" % (name, kind, ", ".join(CLIENT_KINDS))
            )
        if not isinstance(spec.get("dsn"), str) or not spec.get("dsn", "").strip():
            out.append(
                "clients.%s.dsn: %r is not a libpq connection string: write e.g. "
                "'host=10.10.10.11,10.10.10.12 port=5433 dbname=test user=test password=test'" % (name, spec.get("dsn"))
            )
        interval = spec.get("interval", 0.05)
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            out.append("clients.%s.interval: %r is not a positive number of seconds" % (name, interval))
    if not out and not any(spec.get("kind") == "write" for spec in clients.values()):
        out.append("clients: no client of kind write: lost rows are counted on the writers' rows; add one")
    return out


class LoadGen:
    """The clients and the probes, started and stopped together."""

    def __init__(
        self, clients: Dict[str, Dict[str, Any]], probes: Optional[Dict[str, str]] = None, interval: float = 0.05
    ) -> None:
        problems = check_clients(clients)
        if problems:
            raise ValueError("; ".join(problems))
        writers = [spec["dsn"] for spec in clients.values() if spec["kind"] == "write"]
        self.write_dsn = writers[0]
        self.first_id = prepare(self.write_dsn)
        self.ids = Ids(self.first_id)
        self.clients: Dict[str, Loop] = {}
        for name, spec in clients.items():
            every = spec.get("interval", interval)
            if spec["kind"] == "write":
                self.clients[name] = Writer(spec["dsn"], every, self.ids, name=name)
            else:
                self.clients[name] = CLASSES[spec["kind"]](spec["dsn"], every, name=name)
        self.probes = [Probe(node, dsn) for node, dsn in (probes or {}).items()]

    @property
    def loops(self) -> List[Loop]:
        return list(self.clients.values()) + self.probes

    def writers(self) -> List[Loop]:
        return [c for c in self.clients.values() if c.kind == "write"]

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
            "last_id": self.ids.last,
            "clients": {name: loop.record() for name, loop in self.clients.items()},
            "acked_ids": sorted(v for w in self.writers() for _, v in w.acks),
            "probe_acks": {p.node: [t for t, _ in p.acks] for p in self.probes},
        }


def parse_client(text: str, index: int) -> Tuple[str, Dict[str, Any]]:
    """``kind=dsn`` from the command line as (name, spec)."""
    kind, _, dsn = text.partition("=")
    return "%s-%d" % (kind, index), {"kind": kind, "dsn": dsn}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write and read through a cluster's services; print what was seen.")
    parser.add_argument(
        "--client",
        action="append",
        required=True,
        metavar="KIND=DSN",
        help="a client: %s, then = and a libpq DSN (repeatable)" % ", ".join(CLIENT_KINDS),
    )
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args(argv)
    clients = dict(parse_client(text, i) for i, text in enumerate(args.client, 1))
    problems = check_clients(clients)
    if problems:
        parser.error("; ".join(problems))
    gen = LoadGen(clients, interval=args.interval).start()
    time.sleep(args.seconds)
    gen.stop()
    rec = gen.record()
    print(
        json.dumps(
            {
                name: {
                    "acks": len(c["acks"]),
                    "errors": len(c["errors"]),
                    "sessions": c["sessions"],
                    "wrong_role_sessions": len(c["wrong_sessions"]),
                    "reads_on_primary": c.get("reads_on_primary"),
                }
                for name, c in rec["clients"].items()
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
