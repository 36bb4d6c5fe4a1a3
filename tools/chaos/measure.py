# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""What a fault cost, computed from the load generator's records.

Pure functions over timestamps (seconds, one monotonic clock):

* ``outage``: the longest time without an acknowledged operation around the
  fault: from the last acknowledgement before the interruption to the first
  one after it (for writes, the RTO as clients see it);
* ``outage_window``: where that longest gap lies, and ``error_spans``:
  which errors the clients saw when, to tell which part was down;
* ``lost``: acknowledged row ids missing from the table afterwards (RPO in
  rows; the bytes are bounded by Patroni's maximum_lag_on_failover);
* ``split_brain``: how many nodes, beyond one, acknowledged direct writes
  within the same window: an isolated primary that still accepts writes
  while another member has been promoted counts here;
* ``client_result``: all of that for one client of the load generator,
  with the sessions that landed on the wrong role; ``back_after``: when an
  endpoint (a port, a REST API) answered again after the fault;
* ``dcs_gap``: the longest time a member went without reaching the DCS,
  from the ``dcs_last_seen`` values its Patroni REST API reported (a
  member whose DCS member died must carry on with another one).
"""

from __future__ import annotations

import bisect
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, cast


def outage_window(acks: Sequence[float], start: float, end: float) -> Optional[Tuple[float, float]]:
    """The longest gap between consecutive acknowledgements that overlaps
    [start, end], as (last acknowledgement before it, first after it); the
    gap before the first acknowledgement after ``start`` counts from the
    last one before it (or from ``start`` when there is none). None when
    nothing was acknowledged after ``start`` (the service never came back)."""
    acks = sorted(acks)
    i = bisect.bisect_right(acks, start)
    if i == len(acks):
        return None
    worst = (acks[i - 1] if i > 0 else start, acks[i])
    for a, b in zip(acks[i:], acks[i + 1 :]):
        if a > end:
            break
        if b - a > worst[1] - worst[0]:
            worst = (a, b)
    return worst


def outage(acks: Sequence[float], start: float, end: float) -> Optional[float]:
    """Length of ``outage_window`` in seconds (milliseconds kept)."""
    window = outage_window(acks, start, end)
    return None if window is None else round(window[1] - window[0], 3)


def error_spans(errors: Iterable[Tuple[float, str]], origin: float, limit: int = 5) -> Dict[str, List[float]]:
    """Per kind of error (the message's first line, cut to 90 characters):
    [count, first, last], times in seconds after ``origin``; the ``limit``
    most frequent kinds. Tells which part failed when during an outage."""
    spans: Dict[str, List[float]] = {}
    for t, message in errors:
        key = (message.splitlines() or [""])[0][:90]
        rel = round(t - origin, 2)
        if key in spans:
            span = spans[key]
            span[0] += 1
            span[1] = min(span[1], rel)
            span[2] = max(span[2], rel)
        else:
            spans[key] = [1, rel, rel]
    top = sorted(spans.items(), key=lambda kv: (-kv[1][0], kv[1][1]))[:limit]
    return dict(top)


def lost(acknowledged: Iterable[int], present: Iterable[int]) -> List[int]:
    """Acknowledged ids the table no longer holds."""
    return sorted(set(acknowledged) - set(present))


def split_brain(acks_by_node: Dict[str, Sequence[float]], window: float = 1.0) -> int:
    """Nodes beyond one that acknowledged writes within ``window`` seconds
    of each other (0 when at most one node accepted writes at any time)."""
    events = sorted((t, node) for node, ts in acks_by_node.items() for t in ts)
    worst = 1 if events else 0
    lo = 0
    for hi, (t, _) in enumerate(events):
        while events[lo][0] < t - window:
            lo += 1
        worst = max(worst, len({n for _, n in events[lo : hi + 1]}))
    return max(worst - 1, 0)


def dcs_gap(samples: Sequence[Tuple[float, Optional[int]]]) -> Optional[float]:
    """Longest interval between two DCS contacts of one member, seconds.

    ``samples`` are ``(time, dcs_last_seen)`` polls of its ``GET /patroni``:
    time on the observer's monotonic clock, ``dcs_last_seen`` the epoch
    second of Patroni's last successful DCS read on the member's own clock,
    or None when the API did not answer. A change of ``dcs_last_seen`` from
    a to b is a gap of b - a (one clock, the member's). A value that stops
    changing counts from the first poll that saw it to the last poll that
    still saw it. Nothing is counted across polls the API did not answer
    (the member itself was down). None when no poll was answered."""
    worst: Optional[float] = None
    current: Optional[int] = None
    first_seen = last_seen = 0.0
    for t, value in sorted(samples, key=lambda s: s[0]):
        if value is None:
            current = None
            continue
        if current is not None and value != current:
            worst = max(worst or 0.0, float(value - current))
        if value != current:
            current, first_seen = value, t
        last_seen = t
        worst = max(worst or 0.0, last_seen - first_seen)
    return None if worst is None else round(worst, 1)


def worst(values: Sequence[Optional[float]]) -> Optional[float]:
    """The largest of the clients' figures; None (never came back) wins."""
    if any(v is None for v in values):
        return None
    return max(cast(Sequence[float], values)) if values else None


def client_result(rec: Dict, start: float, end: float) -> Dict:
    """What one client of the load generator saw, from its record
    (``loadgen.Loop.record``): its outage around the fault (writes or reads,
    by its kind), its errors by kind, its sessions and how many of them
    landed on the wrong role, and for readers the reads that a primary
    answered."""
    kind = rec.get("kind")
    key = "write_outage_s" if kind == "write" else "read_outage_s"
    span = outage_window(rec["acks"], start, end)
    out = {
        "kind": kind,
        key: round(span[1] - span[0], 3) if span else None,
        # where the longest gap lies, seconds after the fault
        "outage_window_s": [round(t - start, 2) for t in span] if span else None,
        "acks": len(rec["acks"]),
        "errors": len(rec["errors"]),
        # per kind of error: [count, first, last], seconds after the fault
        "error_spans": error_spans(rec["errors"], start),
        "sessions": rec["sessions"],
        "wrong_role_sessions": len(rec["wrong_sessions"]),
    }
    if "reads_on_primary" in rec:
        out["reads_on_primary"] = rec["reads_on_primary"]
    return out


def back_after(samples: Sequence[Tuple[float, bool]], start: float) -> Optional[float]:
    """When an endpoint came back after a fault at ``start``: from
    ``(time, reachable)`` polls, the time from ``start`` to the first
    success after the last failure that followed ``start``; 0.0 when no
    poll after ``start`` failed; None when the last poll failed (it never
    came back while watched)."""
    after = sorted((t, ok) for t, ok in samples if t >= start)
    failures = [t for t, ok in after if not ok]
    if not failures:
        return 0.0
    back = [t for t, ok in after if ok and t > failures[-1]]
    return round(back[0] - start, 3) if back else None


def summary(samples: Sequence[Optional[float]]) -> Dict[str, Optional[float]]:
    """Median and max of the runs (None where a run never recovered)."""
    values = sorted(v for v in samples if v is not None)
    if not values:
        return {"median": None, "max": None, "runs": len(samples), "failed_runs": len(samples)}
    mid = len(values) // 2
    median = values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2
    return {
        "median": round(median, 3),
        "max": values[-1],
        "runs": len(samples),
        "failed_runs": len(samples) - len(values),
    }
