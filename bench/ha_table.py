#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Print bench/results/ha.json as the Markdown tables of docs/ha.md.

With --clients A.json [B.json]: the write outage of every client kind per
scenario (median of the runs) of the first series of A, and with B, of A
and B side by side as "A / B" (e.g. the same scenarios before and after a
change; docs/ha.md, "Patroni's REST API over HTTPS").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cell(summary: dict) -> str:
    if not summary or summary.get("median") is None:
        return "-"
    return "%.1f / %.1f" % (summary["median"], summary["max"])


def main(path: str = str(REPO / "bench" / "results" / "ha.json")) -> int:
    doc = json.loads(Path(path).read_text())
    series = {k: v for k, v in doc.get("series", {}).items() if "/" in k}
    if not series:
        print("no series in %s" % path)
        return 1
    labels = sorted(series)
    scenarios = list(dict.fromkeys(n for s in series.values() for n in s["scenarios"]))
    print(
        "Write outage, seconds, median / max of %s runs (reads in brackets):\n"
        % ", ".join(sorted({str(s["runs_per_scenario"]) for s in series.values()}))
    )

    def table(cell_of):
        print("| scenario | " + " | ".join(labels) + " |")
        print("|---|" + "---|" * len(labels))
        for name in scenarios:
            row = [cell_of(series[label]["scenarios"].get(name, {})) for label in labels]
            print("| %s | %s |" % (name, " | ".join(row)))

    def losses(res):
        healthy = (res.get("healthy_after_s") or {}).get("max")
        return "%s / %s / %s" % (
            res.get("lost_rows_max", "-"),
            res.get("split_brain_max", "-"),
            "-" if healthy is None else "%.0f" % healthy,
        )

    table(lambda res: "%s (%s)" % (cell(res.get("write_outage_s")), cell(res.get("read_outage_s"))))
    print("\nAcknowledged rows lost (max) / split brain (max) / healthy again after (s, max):\n")
    table(losses)

    def dcs(res):
        gap = (res.get("dcs_gap_s") or {}).get("max")
        if gap is None:
            return "-"
        return "%.0f / %s" % (gap, res.get("failsafe_members_max", "-"))

    print("\nLongest time a member went without reaching etcd (s, max) / members in failsafe mode (max):\n")
    table(dcs)
    return 0


CLIENTS = ("write-rw", "write-primary", "write-vip", "write-pgbouncer", "read-standby", "read-prefer-standby")


def first_series(path: str) -> dict:
    series = json.loads(Path(path).read_text()).get("series", {})
    if not series:
        raise SystemExit("no series in %s" % path)
    return next(iter(series.values()))["scenarios"]


def client_outage(res: dict, client: str) -> float | None:
    value = ((res.get("clients_outage_s") or {}).get(client) or {}).get("median")
    return None if value is None else float(value)


def clients_table(paths: list[str]) -> list[str]:
    """Markdown rows: one per scenario of the first file, one column per client kind."""
    runs = [first_series(p) for p in paths]
    lines = ["| scenario | " + " | ".join(CLIENTS) + " |", "|---|" + "---|" * len(CLIENTS)]
    for name in runs[0]:
        cells = []
        for client in CLIENTS:
            values = [client_outage(r.get(name, {}), client) for r in runs]
            cells.append(" / ".join("-" if v is None else "%.1f" % v for v in values))
        lines.append("| %s | %s |" % (name, " | ".join(cells)))
    return lines


if __name__ == "__main__":
    if sys.argv[1:2] == ["--clients"] and 1 <= len(sys.argv[2:]) <= 2:
        print("\n".join(clients_table(sys.argv[2:])))
        sys.exit(0)
    sys.exit(main(*sys.argv[1:]))
