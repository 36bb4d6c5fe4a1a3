#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Benchmark: how long the cluster model takes for 1 to 1,000 clusters.

For N clusters of 3 instances (plus one etcd/infra node), times the whole
pipeline the playbooks run on the controller: load + validate every cluster
(:func:`validate.problems`), then compute every cluster plan (services, HA plan,
pools) and every instance plan (identity, postgres and pgbouncer HBA,
tuning). Each size is run several times; the minimum and median are kept.

    .venv/bin/python bench/model_scale.py [--out bench/results/model_scale.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir, ".collections"))

from ansible_collections.pigpen.pgsql.plugins.module_utils import plan, validate  # noqa: E402

SIZES = (1, 10, 100, 1000)
TARGET_S = 1.0  # 1,000 clusters (3,000 instances) under one second


def inventory(clusters: int):
    """``clusters`` clusters of 3 (primary, replica, offline-query replica)."""
    common = {"admin_ip": "10.0.0.1", "pigpen_sandbox": True}
    hostvars = {"10.0.0.1": {**common, "etcd_seq": 1}}
    groups = {"all": ["10.0.0.1"], "etcd": ["10.0.0.1"], "infra": ["10.0.0.1"]}
    for c in range(clusters):
        name = "pg-c%d" % c
        groups[name] = []
        cvars = {
            "pg_cluster": name,
            "pg_users": [{"name": "app%d" % c, "password": "x", "pgbouncer": True, "roles": ["dbrole_readwrite"]}],
            "pg_databases": [{"name": "app%d" % c, "owner": "app%d" % c}],
        }
        for seq in (1, 2, 3):
            ip = "10.%d.%d.%d" % (1 + c // 250, c % 250, seq)
            hostvars[ip] = {**common, **cvars, "pg_seq": seq, "pg_role": "primary" if seq == 1 else "replica"}
            if seq == 3:
                hostvars[ip]["pg_offline_query"] = True
            groups[name].append(ip)
            groups["all"].append(ip)
    return hostvars, groups


def run_once(hostvars, groups):
    start = time.perf_counter()
    inv = validate.analyze(hostvars, groups)
    found = validate.problems(inv)
    assert not found, found[:3]
    result = plan.plan_all(inv)
    elapsed = time.perf_counter() - start
    assert len(result["instances"]) == len(hostvars) - 1
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(HERE, "results", "model_scale.json"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    load_at_start = os.getloadavg()
    rows = []
    for size in SIZES:
        hostvars, groups = inventory(size)
        run_once(hostvars, groups)  # warm caches (compiled selectors)
        times = [run_once(hostvars, groups) for _ in range(args.repeat)]
        rows.append(
            {
                "clusters": size,
                "instances": size * 3,
                "min_s": round(min(times), 6),
                "median_s": round(statistics.median(times), 6),
                "max_s": round(max(times), 6),
                "median_us_per_instance": round(statistics.median(times) / (size * 3) * 1e6, 2),
            }
        )
        print(
            "%5d clusters: median %.4f s (%.1f us/instance)"
            % (size, rows[-1]["median_s"], rows[-1]["median_us_per_instance"])
        )
    largest = rows[-1]
    per_inst = [r["median_us_per_instance"] for r in rows[1:]]
    result = {
        "benchmark": "model_scale",
        "command": "make bench (.venv/bin/python bench/model_scale.py)",
        "what": "load + validate + services + HA plan + HBA (postgres, pgbouncer) + tuning "
        "for N clusters of 3 instances",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "host": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "machine": platform.machine(),
            "load_average_at_start": [round(x, 2) for x in load_at_start],
        },
        "repeat": args.repeat,
        "results": rows,
        "target": {"clusters": 1000, "max_s": TARGET_S, "met": largest["median_s"] < TARGET_S},
        "linearity": {
            "us_per_instance_10_100_1000": per_inst,
            "max_over_min": round(max(per_inst) / min(per_inst), 2),
        },
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=2, sort_keys=True)
        fh.write("\n")
    print(
        "wrote %s; 1000 clusters in %.3f s (target < %.1f s): %s"
        % (args.out, largest["median_s"], TARGET_S, "met" if result["target"]["met"] else "MISSED")
    )
    return 0 if result["target"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
