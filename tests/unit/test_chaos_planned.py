# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/chaos/planned.py: what a planned operation cost a writer, from its
records (hand-checked cases and a property: every acknowledged row is
either present or counted lost)."""

from __future__ import annotations

import os
import sys

from hypothesis import given, strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tools", "chaos"))
import planned  # noqa: E402


def test_outage_lost_rows_and_writes_after_the_command():
    # the command runs from 2.5 to 9.0; no write between 3.0 and 7.5
    acked = [(1.0, 1), (2.0, 2), (3.0, 3), (7.5, 4), (8.0, 5), (9.5, 6)]
    out = planned.report(acked, present=[1, 2, 3, 4, 6], started=2.5, ended=9.0)
    assert out == {
        "acked": 6,
        "lost": 1,
        "lost_ids": [5],
        "outage_s": 4.5,
        "outage_at": [0.5, 5.0],
        "writes_after": 1,
    }


def test_a_service_that_never_came_back():
    out = planned.report([(1.0, 1)], present=[1], started=2.0, ended=5.0)
    assert out["outage_s"] is None and out["outage_at"] is None
    assert out["writes_after"] == 0 and out["lost"] == 0


def test_the_run_log_has_the_seconds_since_the_start(tmp_path):
    log = tmp_path / "run.log"
    rc = planned.run_logged("sh -c 'echo one; sleep 0.3; echo two >&2; exit 3'", str(log))
    lines = log.read_text().splitlines()
    assert rc == 3
    assert [line.split(None, 1)[1] for line in lines] == ["one", "two"]
    first, second = (float(line.split()[0]) for line in lines)
    assert 0 <= first < 0.3 <= second


@given(
    acked=st.lists(st.tuples(st.floats(0, 100), st.integers(1, 50)), unique_by=lambda a: a[1], max_size=30),
    present=st.sets(st.integers(1, 50)),
)
def test_every_acknowledged_row_is_present_or_lost(acked, present):
    out = planned.report(acked, sorted(present), started=10.0, ended=20.0)
    ids = {i for _, i in acked}
    assert out["lost"] == len(ids - present)
    assert out["acked"] == len(acked)
