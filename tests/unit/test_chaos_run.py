# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/chaos/run.py: placeholders and target checks (hand-checked values)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir,
                                "tools", "chaos"))
import run  # noqa: E402


def test_expand_fills_keys_and_values_and_keeps_unknown_names():
    names = {"net": "10.10.20", "prefix": "pigpen-molecule"}
    conf = {"containers": {"${net}.10": "${prefix}-pg-meta-1"},
            "inject": ["podman exec $${leader_container} true", "${unknown}"]}
    assert run.expand(conf, names) == {
        "containers": {"10.10.20.10": "pigpen-molecule-pg-meta-1"},
        # $$ survives the first pass as $: filled per run
        "inject": ["podman exec ${leader_container} true", "${unknown}"]}


def test_missed_upper_bounds_relax_time_only_and_lower_bounds_never():
    targets = {"write_outage_s": 5, "lost_rows": 0, "dcs_gap_s": 10, "dcs_gap_s_min": 30}
    ok = {"write_outage_s": 7.0, "lost_rows": 0, "dcs_gap_s": 14.0}
    # 1.5 x 5 = 7.5 and 1.5 x 10 = 15: within; the lower bound is not relaxed
    assert run.missed(ok, targets, 1.5) == ["dcs_gap_s 14.0 < 30"]
    assert run.missed({"write_outage_s": 7.0, "lost_rows": 1, "dcs_gap_s": 31.0},
                      {"write_outage_s": 5, "lost_rows": 0, "dcs_gap_s_min": 30}) == [
        "write_outage_s 7.0 > 5", "lost_rows 1 > 0"]
    # a measurement that is missing (the service never came back) misses its target
    assert run.missed({"write_outage_s": None}, {"write_outage_s": 5}) == ["write_outage_s None > 5"]
    assert run.missed({}, {"dcs_gap_s_min": 30}) == ["dcs_gap_s None < 30"]


def test_diagnose_keeps_the_tail_of_each_output_and_never_raises():
    out = run.diagnose(["printf 'a%.0s' $(seq 50)", "echo err >&2; exit 3",
                        "sleep 5"], timeout=0.5, keep=10)
    assert out[0] == {"command": "printf 'a%.0s' $(seq 50)", "output": "a" * 10}
    assert out[1]["output"] == "err\n"
    assert out[2]["output"] == "(no answer within 0.5 s)"


def test_only_missed_time_bounds_are_measured_again():
    assert run.time_only(["write_outage_s 8.082 > 7.5"])
    assert run.time_only(["write_outage_s 8.1 > 7.5", "read_outage_s 9 > 7.5"])
    # rows lost, split brain, a fault that did not hold, and no miss at all: never
    assert not run.time_only(["write_outage_s 8.1 > 7.5", "lost_rows 408 > 0"])
    assert not run.time_only(["split_brain 1 > 0"])
    assert not run.time_only(["dcs_gap_s 14.0 < 30"])
    assert not run.time_only([])
    targets = {"write_outage_s": 5, "lost_rows": 0, "split_brain": 0}
    assert run.time_only(run.missed({"write_outage_s": 9.2, "lost_rows": 0, "split_brain": 0}, targets, 1.5))
    assert not run.time_only(run.missed({"write_outage_s": 3, "lost_rows": 2, "split_brain": 0}, targets, 1.5))
