#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pgbouncer-watch: keep what pgbouncer tells new clients about the server's
role true after every role change.

pgbouncer (1.18, and every release up to at least 1.24) builds the startup
message it sends to new clients (the server's ParameterStatus values) once
per pool, from the first server connection it opens, and keeps it for as
long as it runs. Among those values are ``in_hot_standby`` and
``default_transaction_read_only``, which libpq >= 14 (and pgjdbc,
Npgsql, ...) trust to decide ``target_session_attrs`` /
``targetServerType``. After a promotion, pgbouncer on the new primary kept
telling every new client ``in_hot_standby=on``, so read-write clients were
refused there until pgbouncer restarted; after a demotion the old primary's
pgbouncer told standby clients it was a primary. A reload does not help.
pgbouncer's admin command ``RECONNECT`` does: it drops the cached startup
message of every pool and closes each server connection once its client
releases it (in transaction pooling, at the end of the transaction), so no
client connection is broken, and the next server login records the current
values.

This program, installed by the pigpen.pgsql.pgbouncer role as
/usr/local/bin/pgbouncer-watch and run by pgbouncer-watch.service as the
database OS user, keeps one connection to the local PostgreSQL (unix
socket, peer authentication) and asks it, every ``--interval`` seconds,
whether it is in recovery and what ``default_transaction_read_only`` is. It
sends ``RECONNECT`` to pgbouncer's admin console (unix socket, the
``pgbouncer`` database, peer authentication) when

* it starts (it cannot know what pgbouncer cached before),
* its connection to PostgreSQL breaks (PostgreSQL stopped or crashed: a
  crashed primary comes back as a standby first), and again once it could
  be opened again (a restart, a demotion, a PITR), or
* either value changed since the last ``RECONNECT`` (a promotion).

Between two rounds it waits on its connection's socket, not on a clock
alone: a crashed PostgreSQL closes the socket, and a stopping one sends
the session its termination message first, so the socket becomes readable
and the next round runs at once (at most every 0.05 s; measured in the
sandbox: RECONNECT 12 ms after ``pkill -KILL postgres``, where the clock
alone took up to ``--interval``). A promotion is seen at the next round:
an idle session is told the new ``in_hot_standby`` only with its next
query. Without the socket, a client that logged in to pgbouncer in the
first half second after a crash was told the old primary's values and,
once PostgreSQL was back as a standby for a moment, had its first write
refused as read-only (Molecule ``ha``, pg-crash).

A ``RECONNECT`` that fails (pgbouncer down or refusing) is retried at the
next round; a pgbouncer that starts afresh has no stale values anyway. It
never starts, stops or reconfigures anything. Only the standard library and
psycopg2 (python3-psycopg2) are used.

    pgbouncer-watch [--socket-dir /var/run/postgresql] [--pg-port 5432]
                    [--pgbouncer-port 6432] [--user postgres] [--interval 0.5]
"""

from __future__ import annotations

import argparse
import select
import sys
import time
from typing import Any, Callable, NamedTuple, Optional, Tuple

ROLE_QUERY = (
    "SELECT pg_is_in_recovery(), current_setting('default_transaction_read_only'), pg_postmaster_start_time()::text"
)


class Role(NamedTuple):
    """What clients are told about a server: hot standby, read-only default,
    and the postmaster's start time (a restart may change either)."""

    in_recovery: bool
    read_only: str
    started: str


def reset_reason(synced: Optional[Role], now: Role, reopened: bool) -> Optional[str]:
    """Why pgbouncer must drop its cached startup values, or None.

    ``synced`` is the role pgbouncer was last reset for (None: never, e.g.
    at start), ``now`` the role just read, ``reopened`` whether the
    connection that read it is new (PostgreSQL may have restarted)."""
    if synced is None:
        return "first look at this server"
    if now.in_recovery != synced.in_recovery:
        return "promoted" if not now.in_recovery else "now a standby"
    if now.read_only != synced.read_only:
        return "default_transaction_read_only is now %s" % now.read_only
    if now.started != synced.started:
        return "PostgreSQL restarted"
    if reopened:
        return "the connection to PostgreSQL was lost"
    return None


def describe(role: Role) -> str:
    return "%s, default_transaction_read_only=%s" % ("in recovery" if role.in_recovery else "primary", role.read_only)


class Watch:
    """One round at a time: read the role, reset pgbouncer when needed.

    ``connect(kind)`` opens a connection to PostgreSQL (``"postgres"``) or
    to pgbouncer's admin console (``"pgbouncer"``); tests pass their own."""

    def __init__(self, connect: Callable[[str], Any], log: Callable[[str], None]) -> None:
        self.connect = connect
        self.log = log
        self.pg: Any = None
        self.synced: Optional[Role] = None
        self.failed_reset = False

    def read_role(self) -> Tuple[Optional[Role], bool]:
        """(role, whether the connection is new); (None, _) when PostgreSQL
        does not answer."""
        reopened = False
        try:
            if self.pg is None:
                self.pg = self.connect("postgres")
                reopened = True
            with self.pg.cursor() as cur:
                cur.execute(ROLE_QUERY)
                row = cur.fetchone()
            return Role(bool(row[0]), str(row[1]), str(row[2])), reopened
        except Exception:  # noqa: BLE001 (any failure: PostgreSQL is not there now)
            self.close()
            return None, reopened

    def wait(self, timeout: float, poll: Callable[..., Any] = select.select) -> bool:
        """Sleep up to ``timeout`` seconds, less when PostgreSQL has something
        to say on the open connection (it closed it, or sent a message such
        as its termination notice); True when it did."""
        fileno = None
        if self.pg is not None:
            try:
                fileno = self.pg.fileno()
            except Exception:  # noqa: BLE001 (a closed connection has none)
                fileno = None
        if fileno is None:
            time.sleep(timeout)
            return False
        try:
            readable, _, _ = poll([fileno], [], [], timeout)
        except (OSError, ValueError):
            return True
        return bool(readable)

    def close(self) -> None:
        if self.pg is not None:
            try:
                self.pg.close()
            except Exception:  # noqa: BLE001 (already broken)
                pass
        self.pg = None

    def reconnect_pgbouncer(self) -> Optional[str]:
        """Send RECONNECT; None when pgbouncer took it, else the error."""
        try:
            admin = self.connect("pgbouncer")
        except Exception as exc:  # noqa: BLE001
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        try:
            with admin.cursor() as cur:
                cur.execute("RECONNECT")
            return None
        except Exception as exc:  # noqa: BLE001
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        finally:
            try:
                admin.close()
            except Exception:  # noqa: BLE001
                pass

    def step(self) -> Optional[str]:
        """One round; returns the reason of a RECONNECT that was sent."""
        had_connection = self.pg is not None
        role, reopened = self.read_role()
        if role is None:
            if had_connection:
                # PostgreSQL went away (a crash, a demotion, a stop): drop
                # what pgbouncer cached now, so that the first server login
                # after the restart records the role it restarts in (a
                # crashed primary restarts as a standby before Patroni
                # promotes it again) instead of the one from before
                return self._reconnect("PostgreSQL went away", None)
            return None
        reason = reset_reason(self.synced, role, reopened)
        if reason is None and not self.failed_reset:
            return None
        return self._reconnect(reason or "retrying the last reset", role)

    def _reconnect(self, reason: str, role: Optional[Role]) -> Optional[str]:
        """Send RECONNECT; on success remember ``role`` as what pgbouncer
        will now learn (None: whatever PostgreSQL comes back as)."""
        error = self.reconnect_pgbouncer()
        if error is not None:
            if not self.failed_reset:
                self.log("RECONNECT failed (%s: %s); retrying every round" % (reason, error))
            self.failed_reset = True
            return None
        self.failed_reset = False
        self.synced = role
        self.log("RECONNECT sent: %s%s" % (reason, " (%s)" % describe(role) if role else ""))
        return reason


def log(message: str) -> None:
    print("pgbouncer-watch: " + message, file=sys.stderr, flush=True)


def connector(args: argparse.Namespace) -> Callable[[str], Any]:
    import psycopg2  # python3-psycopg2 (a dependency of Patroni as well)

    def connect(kind: str) -> Any:
        port = args.pg_port if kind == "postgres" else args.pgbouncer_port
        conn = psycopg2.connect(
            host=args.socket_dir,
            port=port,
            dbname=kind,
            user=args.user,
            connect_timeout=2,
            application_name="pgbouncer-watch",
        )
        conn.autocommit = True
        return conn

    return connect


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(prog="pgbouncer-watch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--socket-dir", default="/var/run/postgresql")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--pgbouncer-port", type=int, default=6432)
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv[1:])
    watch = Watch(connector(args), log)
    log(
        "watching PostgreSQL on %s:%d for pgbouncer on port %d, every %g s"
        % (args.socket_dir, args.pg_port, args.pgbouncer_port, args.interval)
    )
    while True:
        started = time.monotonic()
        watch.step()
        # a round takes 0.05 s at least, even when the socket stays readable
        time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))
        watch.wait(max(0.0, args.interval - (time.monotonic() - started)))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
