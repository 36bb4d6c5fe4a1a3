# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""HA plans: hand-checked tables and the Patroni timing invariant."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import ha

# plan: (ttl, loop_wait, retry_timeout, primary_start_timeout, safety_margin,
#        inter, fastinter, downinter, bound = ttl + loop_wait + 3 * inter)
TABLE = {
    "fast": (20, 5, 5, 15, 5, "1s", "500ms", "1s", 28.0),
    "norm": (30, 5, 10, 25, 5, "2s", "1s", "2s", 41.0),
    "safe": (60, 10, 20, 45, 10, "3s", "1500ms", "3s", 79.0),
    "wide": (120, 20, 30, 95, 15, "4s", "2s", "4s", 152.0),
}


@pytest.mark.parametrize("name", sorted(TABLE))
def test_named_plans(name):
    ttl, loop, retry, start, margin, inter, fast, down, bound = TABLE[name]
    plan = ha.ha_plan(name)
    p = plan["patroni"]
    assert (p["ttl"], p["loop_wait"], p["retry_timeout"], p["primary_start_timeout"], p["safety_margin"]) == (
        ttl,
        loop,
        retry,
        start,
        margin,
    )
    assert plan["haproxy"] == {"inter": inter, "fastinter": fast, "downinter": down, "rise": 3, "fall": 3}
    assert plan["bound_s"] == bound
    assert p["maximum_lag_on_failover"] == 1048576
    assert p["synchronous_mode"] is False and p["synchronous_mode_strict"] is False
    assert p["failsafe_mode"] and p["use_pg_rewind"] and p["use_slots"]
    assert plan["server_options"] == (
        "inter %s fastinter %s downinter %s rise 3 fall 3 on-marked-down "
        "shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100" % (inter, fast, down)
    )


# legacy seconds: (ttl, loop_wait, retry, primary_start, safety, haproxy plan)
# 30: loop 30//6=5, retry min(25//2=12, 30//3=10)=10, start 25, margin 5, norm
# 45: loop 7, retry min(19, 15)=15, start 38, margin 7, safe (first ttl >= 45)
# 10: loop 1, retry min(4, 3)=3, start 9, margin 5 (clamped), fast
# 300: loop 20 (clamped), retry min(140, 100)=100, start 280, margin 15, wide
@pytest.mark.parametrize(
    "secs,expected",
    [
        (30, (30, 5, 10, 25, 5, "norm")),
        (45, (45, 7, 15, 38, 7, "safe")),
        (10, (10, 1, 3, 9, 5, "fast")),
        (300, (300, 20, 100, 280, 15, "wide")),
    ],
)
def test_legacy_seconds(secs, expected):
    plan = ha.ha_plan(secs)
    p = plan["patroni"]
    assert (
        p["ttl"],
        p["loop_wait"],
        p["retry_timeout"],
        p["primary_start_timeout"],
        p["safety_margin"],
        plan["haproxy_plan"],
    ) == expected
    assert plan["plan"] == "%ds" % secs


def test_rpo_zero_is_synchronous():
    p = ha.ha_plan("norm", 0)["patroni"]
    assert p["synchronous_mode"] is True and p["synchronous_mode_strict"] is False
    assert p["maximum_lag_on_failover"] == 1048576


def test_rpo_bytes_and_crit():
    assert ha.ha_plan("fast", 65536)["patroni"]["maximum_lag_on_failover"] == 65536
    p = ha.ha_plan("norm", 1048576, "crit")["patroni"]
    assert p["synchronous_mode"] is True and p["synchronous_mode_strict"] is True


@given(st.one_of(st.sampled_from(ha.PLAN_ORDER), st.integers(min_value=ha.RTO_MIN, max_value=ha.RTO_MAX)))
def test_property_patroni_invariant(rto):
    assert ha.check_ha(rto, 1048576) == []
    p = ha.ha_plan(rto)["patroni"]
    assert p["loop_wait"] + 2 * p["retry_timeout"] <= p["ttl"]
    assert 1 <= p["loop_wait"] < p["ttl"] and p["retry_timeout"] >= 1
    assert 0 < p["primary_start_timeout"] <= p["ttl"]


@pytest.mark.parametrize(
    "rto,rpo,messages",
    [
        (
            "quick",
            1048576,
            ["cluster pg-x: pg_rto = 'quick': is not a known RTO plan; fix: use one of fast, norm, safe, wide"],
        ),
        (
            "30",
            1048576,
            [
                "cluster pg-x: pg_rto = '30': is not a known RTO plan; fix: use "
                "one of fast, norm, safe, wide (or the number 30 without quotes)"
            ],
        ),
        (
            5,
            1048576,
            [
                "cluster pg-x: pg_rto = 5: a TTL in seconds must be from 10 to 3600; "
                "fix: use a named plan (fast, norm, safe, wide) or a number of seconds "
                "in range"
            ],
        ),
        (
            True,
            -1,
            [
                "cluster pg-x: pg_rto = True: is neither a plan name nor a number of "
                "seconds; fix: use one of fast, norm, safe, wide",
                "cluster pg-x: pg_rpo = -1: is not a non-negative number of bytes; fix: "
                "set pg_rpo to 0 (synchronous, no loss) or a byte count such as 1048576 "
                "(1 MiB)",
            ],
        ),
        (
            "norm",
            "1MB",
            [
                "cluster pg-x: pg_rpo = '1MB': is not a non-negative number of "
                "bytes; fix: set pg_rpo to 0 (synchronous, no loss) or a byte count "
                "such as 1048576 (1 MiB)"
            ],
        ),
    ],
)
def test_check_ha_messages(rto, rpo, messages):
    assert [str(p) for p in ha.check_ha(rto, rpo, cluster="pg-x")] == messages
