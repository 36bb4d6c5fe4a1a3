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
