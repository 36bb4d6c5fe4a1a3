# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/pgbouncer/files/pgbouncer_watch.py: when pgbouncer must forget the
role it announces (hand-checked table, a property over role histories) and
the rounds of the watcher against stand-ins for PostgreSQL and the admin
console. Against real PostgreSQL, Patroni and pgbouncer the program runs in
Molecule ha (molecule/ha/failovers.yml asks every member's pgbouncer with
libpq session attributes after two failovers) and in the chaos suite."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, strategies as st
import role_files

SCRIPT = role_files.path("pgbouncer", "pgbouncer_watch.py")


watch = role_files.load("pgbouncer", "pgbouncer_watch.py")
Role = watch.Role
PRIMARY = Role(False, "off", "t0")
STANDBY = Role(True, "off", "t0")


@pytest.mark.parametrize(
    "synced,now,reopened,reason",
    [
        (None, PRIMARY, True, "first look at this server"),
        (PRIMARY, PRIMARY, False, None),
        (STANDBY, PRIMARY, False, "promoted"),
        (PRIMARY, STANDBY, False, "now a standby"),
        (PRIMARY, Role(False, "on", "t0"), False, "default_transaction_read_only is now on"),
        (PRIMARY, Role(False, "off", "t1"), False, "PostgreSQL restarted"),
        (PRIMARY, PRIMARY, True, "the connection to PostgreSQL was lost"),
    ],
)
def test_reset_reason(synced, now, reopened, reason):
    assert watch.reset_reason(synced, now, reopened) == reason


class Postgres:
    """Answers the role query with the next of ``answers`` (a Role, or None
    for a server that is gone)."""

    def __init__(self, answers):
        self.answers = answers  # shared with the test: each answer is used once
        self.closed = False

    def cursor(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, query):
        self.current = self.answers.pop(0)
        if self.current is None:
            raise OSError("server closed the connection unexpectedly")

    def fetchone(self):
        role = self.current
        return (role.in_recovery, role.read_only, role.started)

    def close(self):
        self.closed = True


class Console(Postgres):
    """pgbouncer's admin console: takes the commands into ``sent`` and keeps
    which databases are disabled (``disabled``, shared by every console of
    one test; ``ops`` was disabled by an operator)."""

    def __init__(self, sent, fail=False, disabled=None):
        super().__init__([])
        self.sent, self.fail = sent, fail
        self.disabled = {"test": False, "meta": False} if disabled is None else disabled

    def execute(self, query):
        if self.fail:
            raise OSError("pgbouncer is not running")
        self.sent.append(query)
        if query == "SHOW DATABASES":
            self.description = [("name",), ("host",), ("paused",), ("disabled",)]
            self.rows = [(n, None, 0, int(d)) for n, d in self.disabled.items()] + [("pgbouncer", None, 0, 0)]
        elif query.split()[0] in ("DISABLE", "ENABLE"):
            name = query.split(None, 1)[1].strip('"')
            if name not in self.disabled:
                raise OSError("no such database: " + name)
            self.disabled[name] = query.startswith("DISABLE")

    def fetchall(self):
        return self.rows


def watcher(history, console_fails=(), disabled=None, fenced=(), saved=None):
    """A watcher whose PostgreSQL answers from ``history`` (one answer per
    round: a Role, or None while PostgreSQL is down) and whose console
    refuses in the rounds of ``console_fails``; returns it, the pending
    answers and the commands the console took."""
    sent, logs = [], []
    pending = list(history)
    disabled = {"test": False, "meta": False} if disabled is None else disabled
    w = None

    def connect(kind):
        if kind == "pgbouncer":
            return Console(sent, fail=w.rounds in console_fails, disabled=disabled)
        if pending and pending[0] is None:
            pending.pop(0)
            raise OSError("connection refused")
        return Postgres(pending)

    save = (lambda names: saved.append(list(names))) if saved is not None else (lambda names: None)
    w = watch.Watch(connect, logs.append, fenced, save)
    w.rounds = 0
    w.disabled = disabled
    return w, pending, sent


def run(history, console_fails=(), **kwargs):
    """The reasons a watcher sends over ``history``, round by round, and
    the commands the console took."""
    w, pending, sent = watcher(history, console_fails, **kwargs)
    out = []
    while pending:
        out.append(w.step())
        w.rounds += 1
    return out, sent


def test_a_failover_as_the_watcher_sees_it():
    restarted = Role(True, "off", "t1")
    reasons, sent = run([STANDBY, STANDBY, PRIMARY, PRIMARY])
    assert reasons == ["first look at this server", None, "promoted", None]
    assert sent == ["RECONNECT"] * 2
    # the primary crashes, comes back as a standby, is promoted: pgbouncer
    # is fenced while it is away and lifted when it answers as a standby
    reasons, sent = run([PRIMARY, None, None, restarted, Role(False, "off", "t1")])
    assert reasons == [
        "first look at this server",
        "the primary PostgreSQL went away",
        None,
        "PostgreSQL answers again (in recovery, default_transaction_read_only=off)",
        "promoted",
    ]
    assert sent == [
        "RECONNECT",
        "SHOW DATABASES",
        'DISABLE "test"',
        'DISABLE "meta"',
        'KILL "test"',
        'RESUME "test"',
        'KILL "meta"',
        'RESUME "meta"',
        "RECONNECT",
        "RECONNECT",
        'ENABLE "test"',
        'ENABLE "meta"',
        "RECONNECT",
    ]
    # a replica that goes away is not fenced: it comes back as a replica
    reasons, sent = run([STANDBY, None, restarted])
    assert reasons == ["first look at this server", "PostgreSQL went away", "first look at this server"]
    assert sent == ["RECONNECT"] * 3


def test_a_database_an_operator_disabled_stays_disabled():
    disabled = {"test": False, "ops": True}
    reasons, sent = run([PRIMARY, None, PRIMARY], disabled=disabled)
    assert reasons[1] == "the primary PostgreSQL went away"
    assert 'DISABLE "ops"' not in sent and 'ENABLE "ops"' not in sent
    assert disabled == {"test": False, "ops": True}


def test_a_fence_that_pgbouncer_refused_is_set_up_at_the_next_round():
    # pgbouncer restarting when the primary crashed: the fence comes later
    reasons, sent = run([PRIMARY, None, None, STANDBY], console_fails={1})
    assert reasons == [
        "first look at this server",
        None,
        "the primary PostgreSQL went away",
        "PostgreSQL answers again (in recovery, default_transaction_read_only=off)",
    ]
    assert sent.count('DISABLE "test"') == 1 and sent.count('ENABLE "test"') == 1


def test_a_fence_of_an_earlier_run_is_lifted_and_forgotten():
    # the program restarted while it had disabled "test": the state file
    # said so, and the first answer of PostgreSQL lifts it
    saved = []
    disabled = {"test": True, "meta": False}
    w, pending, sent = watcher([PRIMARY], disabled=disabled, fenced=["test"], saved=saved)
    assert w.step() == "PostgreSQL answers again (primary, default_transaction_read_only=off)"
    assert disabled == {"test": False, "meta": False}
    assert saved == [[]] and w.fenced == []


def test_a_database_removed_from_pgbouncer_meanwhile_is_forgotten():
    disabled = {"meta": False}
    w, pending, sent = watcher([STANDBY], disabled=disabled, fenced=["gone"])
    assert w.step() is not None
    assert w.fenced == [] and 'ENABLE "gone"' in sent


def test_the_fenced_databases_are_kept_as_they_are_disabled():
    saved = []
    run([PRIMARY, None], saved=saved)
    assert saved == [["test"], ["test", "meta"]]


def test_quote():
    assert watch.quote("test") == '"test"'
    assert watch.quote('we"ird') == '"we""ird"'


def test_state_file_round_trip(tmp_path):
    path = str(tmp_path / "fenced")
    assert watch.load_fenced(path) == []
    watch.saver(path)(["a", "b"])
    assert watch.load_fenced(path) == ["a", "b"]
    (tmp_path / "fenced").write_text("{not json")
    assert watch.load_fenced(path) == []


def test_a_reset_that_fails_is_sent_again():
    reasons, sent = run([STANDBY, PRIMARY, PRIMARY, PRIMARY], console_fails={1})
    assert reasons == ["first look at this server", None, "promoted", None]
    assert sent == ["RECONNECT", "RECONNECT"]


ROLES = st.sampled_from(
    [STANDBY, PRIMARY, Role(True, "off", "t1"), Role(False, "off", "t1"), Role(False, "on", "t1"), None]
)


@given(st.lists(ROLES, min_size=1, max_size=12))
def test_pgbouncer_never_keeps_a_role_older_than_the_last_change(history):
    """After every round in which PostgreSQL answered, what pgbouncer was
    last reset for is the role just read: it cannot announce a stale one."""
    w, pending, _ = watcher(history)
    while pending:
        answer = pending[0]
        w.step()
        if answer is not None:
            assert w.synced == answer


@given(st.lists(ROLES, min_size=1, max_size=12))
def test_nobody_logs_in_to_a_primary_that_went_away(history):
    """While PostgreSQL does not answer after it last answered as a primary,
    every database is disabled; once it answers, none is."""
    w, pending, _ = watcher(history)
    last = None
    while pending:
        answer = pending[0]
        w.step()
        if answer is None:
            if last is not None and not last.in_recovery:
                assert all(w.disabled.values())
        else:
            last = answer
            assert not any(w.disabled.values())


class _Conn:
    """A connection whose socket is one end of a real socket pair."""

    def __init__(self, sock):
        self.sock = sock

    def fileno(self):
        return self.sock.fileno()


def test_wait_returns_at_once_when_postgresql_closes_the_connection():
    # a crash closes the server's end: the round after it runs at once,
    # not after the rest of the interval
    import socket

    ours, server = socket.socketpair()
    w = watch.Watch(lambda kind: None, lambda m: None)
    w.pg = _Conn(ours)
    started = time.monotonic()
    assert w.wait(0.2) is False  # nothing said: the whole interval
    assert time.monotonic() - started >= 0.19
    server.close()
    started = time.monotonic()
    assert w.wait(5.0) is True
    assert time.monotonic() - started < 1.0
    ours.close()


def test_wait_returns_when_postgresql_sends_a_message():
    # a fast shutdown sends every session its termination (ErrorResponse)
    import socket

    ours, server = socket.socketpair()
    w = watch.Watch(lambda kind: None, lambda m: None)
    w.pg = _Conn(ours)
    server.send(b"S")
    assert w.wait(5.0) is True
    ours.close()
    server.close()


def test_wait_without_a_connection_sleeps_the_interval():
    w = watch.Watch(lambda kind: None, lambda m: None)
    started = time.monotonic()
    assert w.wait(0.1) is False
    assert time.monotonic() - started >= 0.09


def test_wait_on_a_broken_socket_returns_at_once():
    class Broken:
        def fileno(self):
            return -1

    w = watch.Watch(lambda kind: None, lambda m: None)
    w.pg = Broken()
    assert w.wait(5.0) is True
