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

A ``RECONNECT`` alone still left a gap when a *primary* went away. pgbouncer
notices the broken server connections before this program does, and the
clients it drops log in again at once: in that moment pgbouncer welcomed
them with the primary's cached values, libpq accepted them as read-write,
and their first statement waited in pgbouncer's queue until PostgreSQL came
back as a standby, which refused it (Molecule ``ha``, pg-crash, 2026-12-07:
the write 2.6 s after the crash, right when the standby opened). So when
the PostgreSQL that goes away was a primary, the program fences pgbouncer:

* ``DISABLE`` of every database (new clients are refused, so libpq goes on
  to the next host instead of waiting here), then ``KILL`` and ``RESUME`` of
  each (the clients welcomed in that gap are dropped before a statement of
  theirs can run, and the pools with their cached values are gone);
* once PostgreSQL answers again, ``RECONNECT`` and ``ENABLE`` of the
  databases it disabled, so that the first login records the role it came
  back in (a standby after a crash or a demotion, a primary after a
  restart).

While it is fenced (PostgreSQL is then asked every 0.1 s), a primary's
pgbouncer refuses new clients (for the seconds of a restart too) instead
of queueing them. The databases it
disabled are kept in ``--state-file`` (a restart of the program lifts a
fence it did not set up itself; a database an operator disabled is never
enabled by it), and SIGTERM lifts the fence before the program exits.

A command that fails (pgbouncer down or refusing) is retried at the next
round; a pgbouncer that starts afresh has no stale values and no disabled
database anyway. It never starts, stops or reconfigures PostgreSQL or
pgbouncer's configuration. Only the standard library and psycopg2
(python3-psycopg2) are used.

    pgbouncer-watch [--socket-dir /var/run/postgresql] [--pg-port 5432]
                    [--pgbouncer-port 6432] [--user postgres] [--interval 0.5]
                    [--state-file /run/pgbouncer-watch/fenced]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import sys
import time
from typing import Any, Callable, List, NamedTuple, Optional, Sequence, Tuple

# how often PostgreSQL is asked while pgbouncer is fenced
FENCED_INTERVAL_S = 0.1

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

    def __init__(
        self,
        connect: Callable[[str], Any],
        log: Callable[[str], None],
        fenced: Sequence[str] = (),
        save: Callable[[List[str]], None] = lambda names: None,
    ) -> None:
        self.connect = connect
        self.log = log
        self.pg: Any = None
        self.synced: Optional[Role] = None
        self.failed_reset = False
        # the databases this program disabled (a fence), and where that
        # list is kept across its own restarts
        self.fenced: List[str] = list(fenced)
        self.save = save
        self.failed_fence = False

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

    def console(self, work: Callable[[Any], Any]) -> Tuple[Any, Optional[str]]:
        """Run ``work(cursor)`` on pgbouncer's admin console: (its result,
        None), or (None, the error)."""
        try:
            admin = self.connect("pgbouncer")
        except Exception as exc:  # noqa: BLE001
            return None, first_line(exc)
        try:
            with admin.cursor() as cur:
                return work(cur), None
        except Exception as exc:  # noqa: BLE001
            return None, first_line(exc)
        finally:
            try:
                admin.close()
            except Exception:  # noqa: BLE001
                pass

    def reconnect_pgbouncer(self) -> Optional[str]:
        """Send RECONNECT; None when pgbouncer took it, else the error."""
        return self.console(lambda cur: cur.execute("RECONNECT"))[1]

    def fence(self, reason: str) -> Optional[str]:
        """Disable, kill and resume every database that is not disabled
        already; returns the reason, or None when pgbouncer refused (the
        next round tries again)."""

        def work(cur: Any) -> List[str]:
            cur.execute("SHOW DATABASES")
            columns = [c[0] for c in cur.description]
            rows = [dict(zip(columns, row)) for row in cur.fetchall()]
            names = [r["name"] for r in rows if r["name"] != "pgbouncer" and not int(r.get("disabled") or 0)]
            for name in names:
                cur.execute("DISABLE " + quote(name))
                # remembered at once: a fence half set up is lifted all the same
                self.fenced.append(name)
                self.save(self.fenced)
            for name in names:
                cur.execute("KILL " + quote(name))
                cur.execute("RESUME " + quote(name))
            cur.execute("RECONNECT")
            return names

        names, error = self.console(work)
        if error is not None:
            if not self.failed_fence:
                self.log("fencing pgbouncer failed (%s: %s); retrying every round" % (reason, error))
            self.failed_fence = True
            return None
        self.failed_fence = False
        self.synced = None
        self.log("pgbouncer fenced: %s (disabled, clients dropped: %s)" % (reason, ", ".join(names) or "none"))
        return reason

    def lift(self, reason: str) -> Optional[str]:
        """RECONNECT, then ENABLE the databases this program disabled;
        returns the reason, or None when pgbouncer refused (the next round
        tries again)."""

        def work(cur: Any) -> None:
            cur.execute("RECONNECT")
            for name in list(self.fenced):
                try:
                    cur.execute("ENABLE " + quote(name))
                except Exception as exc:  # noqa: BLE001
                    if "no such database" not in str(exc):
                        raise
                    # removed from pgbouncer's configuration meanwhile
                self.fenced.remove(name)
                self.save(self.fenced)

        _, error = self.console(work)
        if error is not None:
            self.log("lifting the fence failed (%s: %s); retrying every round" % (reason, error))
            return None
        self.log("fence lifted: %s" % reason)
        return reason

    def step(self) -> Optional[str]:
        """One round; returns the reason of a RECONNECT that was sent."""
        had_connection = self.pg is not None
        was_primary = self.synced is not None and not self.synced.in_recovery
        role, reopened = self.read_role()
        if role is None:
            if (had_connection and was_primary) or self.failed_fence:
                # a primary went away (a crash, a demotion, a restart):
                # nobody may log in to it believing it is still one
                return self.fence("the primary PostgreSQL went away")
            if had_connection:
                # PostgreSQL went away (a crash, a demotion, a stop): drop
                # what pgbouncer cached now, so that the first server login
                # after the restart records the role it restarts in (a
                # crashed primary restarts as a standby before Patroni
                # promotes it again) instead of the one from before
                return self._reconnect("PostgreSQL went away", None)
            return None
        self.failed_fence = False
        if self.fenced:
            # the values of the role PostgreSQL answers in now
            back = "PostgreSQL answers again (%s)" % describe(role)
            if self.lift(back) is None:
                return None
            self.synced, self.failed_reset = role, False
            return back
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


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def quote(name: str) -> str:
    """A database name as pgbouncer's admin console reads it."""
    return '"%s"' % name.replace('"', '""')


def log(message: str) -> None:
    print("pgbouncer-watch: " + message, file=sys.stderr, flush=True)


def load_fenced(path: str) -> List[str]:
    """The databases a previous run disabled (none when unreadable)."""
    try:
        with open(path, encoding="utf-8") as handle:
            names = json.load(handle)
    except (OSError, ValueError):
        return []
    return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []


def saver(path: str) -> Callable[[List[str]], None]:
    def save(names: List[str]) -> None:
        try:
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(names, handle)
            os.replace(tmp, path)
        except OSError as exc:
            log("cannot keep the fenced databases in %s: %s" % (path, exc))

    return save


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
    parser.add_argument("--state-file", default="/run/pgbouncer-watch/fenced")
    args = parser.parse_args(argv[1:])
    fenced = load_fenced(args.state_file)
    watch = Watch(connector(args), log, fenced, saver(args.state_file))
    stopping: List[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    log(
        "watching PostgreSQL on %s:%d for pgbouncer on port %d, every %g s%s"
        % (
            args.socket_dir,
            args.pg_port,
            args.pgbouncer_port,
            args.interval,
            "; a fence of a previous run is up: %s" % ", ".join(fenced) if fenced else "",
        )
    )
    while not stopping:
        started = time.monotonic()
        watch.step()
        # a round takes 0.05 s at least, even when the socket stays readable
        time.sleep(max(0.0, 0.05 - (time.monotonic() - started)))
        # while fenced, PostgreSQL is asked every 0.1 s: the fence is lifted
        # at most that long after it answers again
        interval = min(args.interval, FENCED_INTERVAL_S) if watch.fenced else args.interval
        watch.wait(max(0.0, interval - (time.monotonic() - started)))
    if watch.fenced:
        watch.lift("pgbouncer-watch stops")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
