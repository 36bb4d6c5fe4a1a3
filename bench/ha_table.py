#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Print bench/results/ha.json as the Markdown tables of docs/ha.md."""

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


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
