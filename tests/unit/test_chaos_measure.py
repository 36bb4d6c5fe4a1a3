# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/chaos/measure.py: outage, lost rows and split brain from the load
generator's timestamps (hand-checked values and properties)."""

from __future__ import annotations

import os
import sys

from hypothesis import given, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                "tools", "chaos"))
import measure  # noqa: E402


def test_outage_spans_the_last_ack_before_to_the_first_after():
    acks = [0.0, 0.05, 0.1, 0.15, 12.15, 12.2]   # fault at 0.12, back at 12.15
    assert measure.outage(acks, 0.12, 20) == 12.0
    # a gap later in the window that is longer wins
    assert measure.outage([0, 0.1, 0.2, 3.2, 3.3, 9.3], 0.15, 20) == 6.0
    # never back: None
    assert measure.outage([0, 0.1], 0.15, 20) is None
    # nothing acknowledged before the fault: counted from the fault
    assert measure.outage([5.0, 5.05], 1.0, 20) == 4.0


def test_lost_rows_and_split_brain():
    assert measure.lost([1, 2, 3, 4], [1, 2, 4, 7]) == [3]
    assert measure.split_brain({"a": [0, 1, 2], "b": [5, 6]}) == 0      # one after the other
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
    errors = [(10.5, "OperationalError: connection failed\nDETAIL: x"),
              (11.0, "ProtocolViolation: server login has been failing"),
              (12.25, "OperationalError: connection failed\nmore"),
              (11.5, "ProtocolViolation: server login has been failing")]
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
