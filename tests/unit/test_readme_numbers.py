# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The failover figures README.md quotes are the maxima of
bench/results/ha.json (every plan and mode, every run), so a new benchmark
run cannot leave the README behind."""

from __future__ import annotations

import json
import os
import re

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


def worst(scenario, series=None):
    with open(os.path.join(REPO, "bench", "results", "ha.json"), encoding="utf-8") as handle:
        data = json.load(handle)["series"]
    return max(
        run["write_outage_s"]
        for name, plan in data.items()
        if series is None or name.startswith(series)
        for run in plan["scenarios"][scenario]["runs"]
        if run.get("write_outage_s") is not None
    )


@pytest.mark.parametrize(
    "phrase, scenario, series, digits",
    [
        ("a crashed primary node cost at most %s s of", "node-crash", "fast/", 1),
        ("writes with `pg_rto: fast` and %s s with `norm`", "node-crash", "norm/", 1),
        ("a killed PostgreSQL at most %s s", "pg-crash", None, 1),
        ("a switchover with `pgsql-switchover.yml` at most %s s", "switchover", None, 1),
        ("writes paused at most %s s", "etcd-loss", None, 1),
        ("cost at most %s s and put no member", "etcd-member-loss", None, 2),
    ],
)
def test_readme_quotes_the_benchmark(phrase, scenario, series, digits):
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        text = re.sub(r"[ \n]+", " ", handle.read())
    value = "%.*f" % (digits, worst(scenario, series))
    expected = re.sub(r"[ \n]+", " ", phrase % value)
    assert expected in text, "README.md should say %r (bench/results/ha.json)" % expected
