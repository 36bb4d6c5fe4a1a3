# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/chaos/siteloss.py: what a site loss cost, from the clients' records
(hand-checked cases and a property: a lost row is always one the standby had
not replayed at the kill)."""

from __future__ import annotations

import os
import sys

from hypothesis import given, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tools", "chaos"))
import siteloss  # noqa: E402


def test_rows_at_risk_lost_and_time_to_first_write():
    acked = [(1.0, 1), (2.0, 2), (3.0, 3), (4.0, 4)]
    # at 2.5 the standby had replayed up to id 2 (0.4 s old); the kill is at 4.5
    replayed = [(1.5, (1, 0.3)), (2.5, (2, 0.4)), (5.0, (4, 0.1))]
    out = siteloss.report(acked, replayed, 4.5, present=[1, 2, 3], decided_at=10.0, first_write_at=42.25)
    assert out == {
        "acked": 4,
        "lag_rows": 2,  # ids 3 and 4
        "lag_seconds": 0.4,
        "lost": 1,  # id 4
        "lost_outside_lag": 0,
        "decision_to_first_write_s": 32.25,
    }


def test_a_lost_row_the_standby_had_is_counted_outside_the_lag():
    acked = [(1.0, 1), (2.0, 2)]
    out = siteloss.report(acked, [(3.0, (2, 0.0))], 4.0, present=[2], decided_at=5.0, first_write_at=None)
    assert out["lost"] == 1 and out["lost_outside_lag"] == 1
    assert out["decision_to_first_write_s"] is None


def test_no_look_before_the_kill_puts_every_row_at_risk():
    out = siteloss.report([(1.0, 7)], [(9.0, (7, 0.0))], 2.0, present=[], decided_at=3.0, first_write_at=4.0)
    assert out["lag_rows"] == 1 and out["lag_seconds"] is None and out["lost_outside_lag"] == 0


@given(
    n=st.integers(min_value=0, max_value=40),
    seen=st.integers(min_value=0, max_value=40),
    extra=st.integers(min_value=0, max_value=40),
)
def test_a_promoted_cluster_with_every_replayed_row_loses_only_rows_at_risk(n, seen, extra):
    acked = [(float(i), i) for i in range(1, n + 1)]
    seen = min(seen, n)
    # the promoted cluster has what was replayed at the kill, and maybe more
    present = list(range(1, min(n, seen + extra) + 1))
    out = siteloss.report(acked, [(0.5, (seen, 0.0))], 100.0, present, 100.0, 101.0)
    assert out["lost_outside_lag"] == 0
    assert out["lost"] <= out["lag_rows"] == n - seen
