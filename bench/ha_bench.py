#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The fault scenarios of tools/chaos/sandbox.yml for every RTO plan and
replication mode, on the running sandbox's pg-test.

Run by ``make bench-ha`` (needs ``make sandbox`` first); writes
bench/results/ha.json: per series (``fast/async``, ``fast/sync``,
``norm/async``, ``norm/sync``) and scenario, the median and max write
outage, read outage and time until healthy over ``--runs`` runs, the rows
lost and the split-brain count, plus each plan's theoretical bound
(ttl + loop_wait + HAProxy rise x inter, from the model's HA plan).

Each series is applied the way an operator would: ``pgsql.yml -l pg-test``
with ``-e pg_rto=<plan> -e pg_rpo=<bytes or 0>`` (Patroni's dynamic
configuration through its REST API, HAProxy reloaded; PostgreSQL is not
restarted). The inventory's own plan is applied again at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / ".collections"))

from ansible_collections.pigpen.pgsql.plugins.module_utils import ha  # noqa: E402

PLAYBOOK = [
    str(REPO / ".venv" / "bin" / "ansible-playbook"),
    "-i",
    "inventory/sandbox.yml",
    "playbooks/pgsql.yml",
    "-l",
    "pg-test",
]
MODES = {"async": 1048576, "sync": 0}
REFERENCE = {"fast": {"avg_s": 14, "worst_s": 29}, "norm": {"avg_s": 21, "worst_s": 43}}


def sh(cmd: list[str]) -> int:
    print("bench-ha: $ " + " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description="Fault scenarios per RTO plan and replication mode.")
    parser.add_argument("--plans", default="fast,norm")
    parser.add_argument("--modes", default="async,sync")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", action="append", help="only these scenarios")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "ha.json"))
    args = parser.parse_args()

    # absolute: run.py gets it as is, and the summary prints it relative to the repository
    out = Path(args.output).resolve()
    doc = json.loads(out.read_text()) if out.exists() else {}
    doc.update(
        {
            "benchmark": "ha",
            "command": "make bench-ha (bench/ha_bench.py --runs %d)" % args.runs,
            "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
            "commit": subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
            ).stdout.strip(),
            "reference_published": REFERENCE,
        }
    )
    # a run of some series keeps the others' results and bounds
    doc.setdefault("bounds_s", {}).update({p: ha.ha_plan(p, 1048576, "oltp")["bound_s"] for p in args.plans.split(",")})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    failed = []
    try:
        for plan in args.plans.split(","):
            for mode in args.modes.split(","):
                label = "%s/%s" % (plan, mode)
                extra = json.dumps({"pg_rto": plan, "pg_rpo": MODES[mode]})  # JSON: pg_rpo stays a number
                if sh(PLAYBOOK + ["-e", extra]) != 0:
                    raise SystemExit("bench-ha: applying %s failed" % label)
                # the scenarios' own pgsql.yml runs (setup, teardown) keep the series' plan
                cmd = [
                    sys.executable,
                    "tools/chaos/run.py",
                    "tools/chaos/sandbox.yml",
                    "--var",
                    "pgsql_extra=-e " + shlex.quote(extra),
                    "--runs",
                    str(args.runs),
                    "--label",
                    label,
                    "--output",
                    str(out),
                ]
                for name in args.scenario or []:
                    cmd += ["--scenario", name]
                if sh(cmd) != 0:
                    failed.append(label)
    finally:
        sh(PLAYBOOK)
    print(
        "bench-ha: wrote %s%s" % (out.relative_to(REPO), "; targets missed in " + ", ".join(failed) if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
