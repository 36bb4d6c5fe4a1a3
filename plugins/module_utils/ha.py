# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""HA plans: ``pg_rto`` and ``pg_rpo`` -> Patroni and HAProxy timings.

A plan sets the Patroni DCS timings and the HAProxy health-check timings
together, so that the two layers agree on how fast a dead primary is noticed
and how fast traffic moves to the new one.

Named plans (seconds; inter/fastinter/downinter are HAProxy durations)::

    plan  ttl loop_wait retry primary_start safety  inter fastinter downinter
    fast   20     5       5        15          5      1s     500ms     1s
    norm   30     5      10        25          5      2s     1s        2s
    safe   60    10      20        45         10      3s     1500ms    3s
    wide  120    20      30        95         15      4s     2s        4s

``rise`` and ``fall`` are 3 in every plan.

A number (legacy inventories: ``pg_rto: 30``) is a TTL in seconds: ``ttl =
N``, ``loop_wait = clamp(N // 6, 1, 20)``, ``retry_timeout = (N - loop_wait)
// 2`` capped at ``N // 3``, ``primary_start_timeout = N - loop_wait``,
``safety_margin = clamp(N // 6, 5, 15)``; HAProxy takes the timings of the
smallest named plan whose TTL is at least N (``wide`` above 120 s).

Patroni requires ``loop_wait + 2 * retry_timeout <= ttl``; every plan here
satisfies it (property-tested for every legal N).

``bound`` is the worst-case write outage the plan implies for a crashed
primary: the leader key expires (``ttl``), the next HA loop notices
(``loop_wait``), and HAProxy needs ``rise`` successful checks ``inter``
apart before it routes to the new primary.

``pg_rpo`` (bytes, default 1 MiB) becomes ``maximum_lag_on_failover``.
``pg_rpo: 0`` turns on ``synchronous_mode``: no acknowledged commit may be
lost. Because the synchronous standby is then the only failover candidate,
``maximum_lag_on_failover`` keeps its 1 MiB default instead of 0, so a
synchronous standby whose last reported position is one heartbeat old is not
refused. The ``crit`` config profile adds ``synchronous_mode_strict``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
)

PLANS: Dict[str, Dict[str, Any]] = {
    "fast": {
        "ttl": 20,
        "loop_wait": 5,
        "retry_timeout": 5,
        "primary_start_timeout": 15,
        "safety_margin": 5,
        "inter": "1s",
        "fastinter": "500ms",
        "downinter": "1s",
        "target": 30,
    },
    "norm": {
        "ttl": 30,
        "loop_wait": 5,
        "retry_timeout": 10,
        "primary_start_timeout": 25,
        "safety_margin": 5,
        "inter": "2s",
        "fastinter": "1s",
        "downinter": "2s",
        "target": 45,
    },
    "safe": {
        "ttl": 60,
        "loop_wait": 10,
        "retry_timeout": 20,
        "primary_start_timeout": 45,
        "safety_margin": 10,
        "inter": "3s",
        "fastinter": "1500ms",
        "downinter": "3s",
        "target": 90,
    },
    "wide": {
        "ttl": 120,
        "loop_wait": 20,
        "retry_timeout": 30,
        "primary_start_timeout": 95,
        "safety_margin": 15,
        "inter": "4s",
        "fastinter": "2s",
        "downinter": "4s",
        "target": 150,
    },
}
PLAN_ORDER = ("fast", "norm", "safe", "wide")
RISE = 3
FALL = 3
DEFAULT_RPO = 1048576
# Legacy numeric pg_rto: accepted range of seconds.
RTO_MIN, RTO_MAX = 10, 3600
SERVER_TAIL = "on-marked-down shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def _seconds(duration: str) -> float:
    """An HAProxy duration of the plans (whole ``ms`` or ``s``) in seconds.
    HAProxy takes integers only: 500ms, never 0.5s."""
    if duration.endswith("ms"):
        return int(duration[:-2]) / 1000.0
    return float(int(duration[:-1]))


def patroni_timing(pg_rto: Any) -> Dict[str, int]:
    """Patroni ttl/loop_wait/retry_timeout/primary_start_timeout/
    safety_margin for a plan name or a legacy number of seconds."""
    if isinstance(pg_rto, str):
        plan = PLANS[pg_rto]
        return {k: plan[k] for k in ("ttl", "loop_wait", "retry_timeout", "primary_start_timeout", "safety_margin")}
    ttl = int(pg_rto)
    loop_wait = _clamp(ttl // 6, 1, 20)
    retry = min((ttl - loop_wait) // 2, ttl // 3)
    return {
        "ttl": ttl,
        "loop_wait": loop_wait,
        "retry_timeout": retry,
        "primary_start_timeout": ttl - loop_wait,
        "safety_margin": _clamp(ttl // 6, 5, 15),
    }


def haproxy_plan_name(pg_rto: Any) -> str:
    if isinstance(pg_rto, str):
        return pg_rto
    for name in PLAN_ORDER:
        if PLANS[name]["ttl"] >= int(pg_rto):
            return name
    return "wide"


def ha_plan(pg_rto: Any = "norm", pg_rpo: Any = DEFAULT_RPO, pg_conf: Optional[str] = "oltp") -> Dict[str, Any]:
    """The full plan. Inputs must have passed :func:`check_ha`."""
    timing = patroni_timing(pg_rto)
    hname = haproxy_plan_name(pg_rto)
    hplan = PLANS[hname]
    haproxy = {
        "inter": hplan["inter"],
        "fastinter": hplan["fastinter"],
        "downinter": hplan["downinter"],
        "rise": RISE,
        "fall": FALL,
    }
    sync = pg_rpo == 0 or pg_conf == "crit"
    patroni = dict(timing)
    patroni.update(
        {
            "maximum_lag_on_failover": pg_rpo if pg_rpo else DEFAULT_RPO,
            "synchronous_mode": sync,
            "synchronous_mode_strict": pg_conf == "crit",
            "failsafe_mode": True,
            "use_pg_rewind": True,
            "use_slots": True,
        }
    )
    bound = timing["ttl"] + timing["loop_wait"] + RISE * _seconds(hplan["inter"])
    return {
        "plan": pg_rto if isinstance(pg_rto, str) else "%ds" % int(pg_rto),
        "haproxy_plan": hname,
        "patroni": patroni,
        "haproxy": haproxy,
        "server_options": default_server_options(haproxy),
        "rpo": pg_rpo,
        "bound_s": bound,
        "target_s": PLANS[hname]["target"] if isinstance(pg_rto, str) else None,
    }


def default_server_options(haproxy: Dict[str, Any]) -> str:
    """HAProxy ``default-server`` options for the plan's timings."""
    return (
        "inter {inter} fastinter {fastinter} downinter {downinter} rise {rise} fall {fall} ".format(**haproxy)
        + SERVER_TAIL
    )


def check_ha(pg_rto: Any, pg_rpo: Any, *, cluster: Optional[str] = None, host: Optional[str] = None) -> List[Problem]:
    """Problems with ``pg_rto``/``pg_rpo`` (never raises)."""
    out: List[Problem] = []
    if isinstance(pg_rto, bool) or not isinstance(pg_rto, (str, int)):
        out.append(
            Problem(
                cluster,
                host,
                "pg_rto",
                pg_rto,
                "is neither a plan name nor a number of seconds",
                "use one of %s" % ", ".join(PLAN_ORDER),
            )
        )
    elif isinstance(pg_rto, str) and pg_rto not in PLANS:
        fix = "use one of %s" % ", ".join(PLAN_ORDER)
        if pg_rto.isdigit():
            fix += " (or the number %s without quotes)" % pg_rto
        out.append(Problem(cluster, host, "pg_rto", pg_rto, "is not a known RTO plan", fix))
    elif isinstance(pg_rto, int) and not RTO_MIN <= pg_rto <= RTO_MAX:
        out.append(
            Problem(
                cluster,
                host,
                "pg_rto",
                pg_rto,
                "a TTL in seconds must be from %d to %d" % (RTO_MIN, RTO_MAX),
                "use a named plan (fast, norm, safe, wide) or a number of seconds in range",
            )
        )
    if isinstance(pg_rpo, bool) or not isinstance(pg_rpo, int) or pg_rpo < 0:
        out.append(
            Problem(
                cluster,
                host,
                "pg_rpo",
                pg_rpo,
                "is not a non-negative number of bytes",
                "set pg_rpo to 0 (synchronous, no loss) or a byte count such as 1048576 (1 MiB)",
            )
        )
    return out
