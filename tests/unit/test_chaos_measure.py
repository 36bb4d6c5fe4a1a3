# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/chaos/measure.py: outage, lost rows and split brain from the load
generator's timestamps (hand-checked values and properties)."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import given, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tools", "chaos"))
import measure  # noqa: E402


def test_outage_spans_the_last_ack_before_to_the_first_after():
    acks = [0.0, 0.05, 0.1, 0.15, 12.15, 12.2]  # fault at 0.12, back at 12.15
    assert measure.outage(acks, 0.12, 20) == 12.0
    # a gap later in the window that is longer wins
    assert measure.outage([0, 0.1, 0.2, 3.2, 3.3, 9.3], 0.15, 20) == 6.0
    # never back: None
    assert measure.outage([0, 0.1], 0.15, 20) is None
    # nothing acknowledged before the fault: counted from the fault
    assert measure.outage([5.0, 5.05], 1.0, 20) == 4.0


def test_lost_rows_and_split_brain():
    assert measure.lost([1, 2, 3, 4], [1, 2, 4, 7]) == [3]
    assert measure.split_brain({"a": [0, 1, 2], "b": [5, 6]}) == 0  # one after the other
    assert measure.split_brain({"a": [0, 1, 2.5], "b": [3.0, 4]}) == 1  # both within a second
    assert measure.split_brain({}) == 0


def test_summary():
    assert measure.summary([3.0, 1.0, 2.0]) == {"median": 2.0, "max": 3.0, "runs": 3, "failed_runs": 0}
    assert measure.summary([None, 4.0]) == {"median": 4.0, "max": 4.0, "runs": 2, "failed_runs": 1}


@given(st.lists(st.floats(0, 100), min_size=2, max_size=50), st.floats(0, 100))
def test_outage_is_at_least_every_gap_after_the_fault(acks, fault):
    acks = sorted(acks)
    got = measure.outage(acks, fault, 1000)
    after = [a for a in acks if a > fault]
    if not after:
        assert got is None
        return
    gaps = [b - a for a, b in zip(after, after[1:])]
    assert got + 0.001 >= max(gaps, default=0)  # outage rounds to milliseconds


def test_dcs_gap_from_dcs_last_seen():
    # a Patroni loop every 5 s: the gap is the loop
    polls = [(0.0, 100), (2.0, 100), (4.0, 105), (6.0, 105), (9.0, 110)]
    assert measure.dcs_gap(polls) == 5.0
    # etcd gone for 40 s: dcs_last_seen stands still, then jumps
    assert measure.dcs_gap([(0.0, 100), (10.0, 100), (30.0, 100), (41.0, 142)]) == 42.0
    # still standing still at the last poll: counted to that poll
    assert measure.dcs_gap([(0.0, 100), (1.0, 105), (20.0, 105)]) == 19.0
    # the API was down in between (the node crashed): no gap across it
    assert measure.dcs_gap([(0.0, 100), (1.0, None), (60.0, 500), (61.0, 500)]) == 1.0
    # unordered polls are sorted by time
    assert measure.dcs_gap([(9.0, 110), (0.0, 100), (4.0, 105)]) == 5.0
    assert measure.dcs_gap([(0.0, None)]) is None
    assert measure.dcs_gap([]) is None


@given(st.lists(st.tuples(st.floats(0, 100), st.one_of(st.none(), st.integers(0, 1000))), max_size=40))
def test_dcs_gap_is_never_negative_and_none_only_without_answers(polls):
    got = measure.dcs_gap(polls)
    if all(v is None for _, v in polls):
        assert got is None
    else:
        assert got is not None and got >= 0


def test_outage_window_places_the_longest_gap():
    acks = [0.0, 0.05, 0.1, 0.15, 12.15, 12.2]
    assert measure.outage_window(acks, 0.12, 20) == (0.15, 12.15)
    assert measure.outage_window([0, 0.1, 0.2, 3.2, 3.3, 9.3], 0.15, 20) == (3.3, 9.3)
    assert measure.outage_window([5.0, 5.05], 1.0, 20) == (1.0, 5.0)
    assert measure.outage_window([0, 0.1], 0.15, 20) is None


def test_error_spans_count_and_place_each_kind():
    errors = [
        (10.5, "OperationalError: connection failed\nDETAIL: x"),
        (11.0, "ProtocolViolation: server login has been failing"),
        (12.25, "OperationalError: connection failed\nmore"),
        (11.5, "ProtocolViolation: server login has been failing"),
    ]
    assert measure.error_spans(errors, 10.0) == {
        "OperationalError: connection failed": [2, 0.5, 2.25],
        "ProtocolViolation: server login has been failing": [2, 1.0, 1.5],
    }
    assert measure.error_spans([], 0.0) == {}
    many = [(float(i), "kind %d" % (i % 7)) for i in range(70)]
    assert len(measure.error_spans(many, 0.0, limit=5)) == 5


def test_a_probe_keeps_its_session_when_a_replica_refuses_the_write():
    import psycopg
    import loadgen

    class Conn:
        closed = False

    probe = loadgen.Probe("pg-test-2", "host=10.0.0.1")
    probe.conn = Conn()
    assert probe.keeps_connection(psycopg.errors.ReadOnlySqlTransaction("read-only"))
    assert not probe.keeps_connection(psycopg.OperationalError("server closed the connection"))
    assert not probe.keeps_connection(ValueError("not a database error"))
    probe.conn.closed = True
    assert not probe.keeps_connection(psycopg.errors.ReadOnlySqlTransaction("read-only"))
    # a client of a service reconnects after every failure
    writer = loadgen.Writer("host=10.0.0.1")
    writer.conn = Conn()
    assert not writer.keeps_connection(psycopg.errors.ReadOnlySqlTransaction("read-only"))


# ---- client kinds (loadgen) and what each client saw (measure) ------------


class FakeConn:
    """A connection whose answers come from a list: a value (what the next
    query returns), or an exception to raise (what a server would answer)."""

    def __init__(self, answers):
        self.answers = answers
        self.closed = False
        self.value = None

    def execute(self, *args):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        self.value = answer
        return self

    def fetchone(self):
        return (self.value,)

    def close(self):
        self.closed = True


def drive(loop, sessions):
    """Run ``loop`` over ``sessions`` (the answers of each connection in
    turn; a session ends with an error) without threads or sleeps."""
    pending = list(sessions)
    loop.connect = lambda *args, **kwargs: FakeConn(list(pending.pop(0)))
    loop.interval = 0
    total = sum(len(s) for s in sessions)

    class Stop:
        def __init__(self):
            self.n = 0

        def is_set(self):
            self.n += 1
            return self.n > total

        def wait(self, _):
            pass

    loop.stopping = Stop()
    loop.run()
    return loop.record()


def test_a_writer_session_refused_as_read_only_at_once_landed_on_the_wrong_role():
    import psycopg
    import loadgen

    refusal = psycopg.errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only transaction")
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    # a session lasts until an error ends it
    rec = drive(
        loadgen.Writer("host=x target_session_attrs=read-write"), [[refusal], [None, None, lost], [None, refusal]]
    )
    # three sessions: the first refused its first write (wrong role); the
    # third was refused later (a demotion under it), which is an error only
    assert (rec["sessions"], len(rec["wrong_sessions"]), len(rec["errors"]), len(rec["acks"])) == (3, 1, 3, 3)
    assert rec["acked_ids"] == [2, 3, 5]  # ids 1, 4 and 6 failed and are never reused
    # a client that asks libpq for no role (one address, the VIP): errors only
    plain = drive(loadgen.Writer("host=x"), [[refusal], [None, lost]])
    assert (plain["sessions"], len(plain["wrong_sessions"]), len(plain["errors"])) == (2, 0, 2)


def test_a_standby_reader_counts_sessions_that_start_on_the_primary():
    import loadgen
    import psycopg

    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    rec = drive(
        loadgen.StandbyReader("host=x target_session_attrs=standby"),
        [[True, True, False, lost], [False, False, lost], [True]],
    )
    # session 2 started on the primary: wrong role; session 1 saw its server
    # promoted under it (two reads on the primary in all)
    assert (rec["sessions"], len(rec["wrong_sessions"]), rec["reads_on_primary"]) == (3, 1, 3)
    plain = drive(loadgen.Reader("host=x"), [[False, True]])
    assert (len(plain["wrong_sessions"]), plain["reads_on_primary"]) == (0, 1)


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=6))
def test_writers_share_ids_and_never_repeat_one(takes):
    import threading
    import loadgen

    ids = loadgen.Ids(100)
    got = []
    lock = threading.Lock()

    def work(n):
        mine = [ids.take() for _ in range(n)]
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=work, args=(n,)) for n in takes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(100, 100 + sum(takes)))
    assert ids.last == 99 + sum(takes)


@pytest.mark.parametrize(
    "clients,expected",
    [
        ({"w": {"kind": "write", "dsn": "host=a"}}, []),
        (
            {"w": {"kind": "write", "dsn": "host=a"}, "r": {"kind": "read-standby", "dsn": "host=b", "interval": 0.1}},
            [],
        ),
        (
            {"r": {"kind": "read", "dsn": "host=b"}},
            ["clients: no client of kind write: lost rows are counted on the writers' rows; add one"],
        ),
        (
            {"w": {"kind": "writer", "dsn": "host=a"}},
            ["clients.w.kind: 'writer' is not a client kind: use one of write, read, read-standby"],
        ),
        (
            {"w": {"kind": "write"}},
            [
                "clients.w.dsn: None is not a libpq connection string: write e.g. 'host=10.10.10.11,10.10.10.12 "
                "port=5433 dbname=test user=test password=test'"
            ],
        ),
        (
            {"w": {"kind": "write", "dsn": "host=a", "timeout": 2, "interval": 0}},
            [
                "clients.w.timeout: unknown key: use only kind, dsn and interval",
                "clients.w.interval: 0 is not a positive number of seconds",
            ],
        ),
        (
            {},
            [
                "clients: {} is not a mapping of client names to {kind, dsn}: write e.g. clients: "
                "{writer: {kind: write, dsn: 'host=... port=5433 ...'}}"
            ],
        ),
        (
            ["host=a"],
            [
                "clients: ['host=a'] is not a mapping of client names to {kind, dsn}: write e.g. clients: "
                "{writer: {kind: write, dsn: 'host=... port=5433 ...'}}"
            ],
        ),
    ],
)
def test_check_clients(clients, expected):
    import loadgen

    assert loadgen.check_clients(clients) == expected


def test_client_result_per_kind():
    writer = {
        "kind": "write",
        "acks": [1.0, 2.0, 6.0, 7.0],
        "errors": [(3.0, "E: x"), (4.0, "E: x")],
        "sessions": 2,
        "wrong_sessions": [3.0],
        "acked_ids": [1, 2, 3, 4],
    }
    assert measure.client_result(writer, 2.5, 8.0) == {
        "kind": "write",
        "write_outage_s": 4.0,
        "outage_window_s": [-0.5, 3.5],
        "acks": 4,
        "errors": 2,
        "error_spans": {"E: x": [2, 0.5, 1.5]},
        "sessions": 2,
        "wrong_role_sessions": 1,
    }
    reader = {
        "kind": "read-standby",
        "acks": [1.0, 3.0],
        "errors": [],
        "sessions": 1,
        "wrong_sessions": [],
        "reads_on_primary": 0,
    }
    out = measure.client_result(reader, 2.0, 4.0)
    assert (out["read_outage_s"], out["reads_on_primary"], "write_outage_s" in out) == (2.0, 0, False)
    assert measure.client_result(dict(reader, acks=[1.0]), 2.0, 4.0)["read_outage_s"] is None
    assert measure.worst([1.0, 3.5, 2.0]) == 3.5
    assert measure.worst([1.0, None]) is None and measure.worst([]) is None


@pytest.mark.parametrize(
    "samples,expected",
    [
        ([(0.0, True), (1.0, True), (2.0, True)], 0.0),  # never down after the fault
        ([(0.0, True), (1.0, False), (1.5, False), (2.25, True)], 1.25),
        ([(1.0, False), (2.0, True), (3.0, False), (3.5, True)], 2.5),  # down twice: the last time counts
        ([(1.0, False), (2.0, False)], None),  # never came back
        ([(0.5, False), (1.2, True)], 0.0),  # a failure before the fault is not counted
    ],
)
def test_back_after(samples, expected):
    assert measure.back_after(samples, 1.0) == expected
