#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Measures a whole deployment of the 4-node sandbox topology.

Run by ``make bench-deploy``; writes bench/results/deploy.json:

* cold: fresh nodes, every package downloaded from the Debian archive;
* warm: fresh nodes whose apt cache already holds the .deb files (copied
  from the cold run's nodes), as with a local mirror or a pre-seeded image;
* no-op: ``install.yml`` again on the deployed nodes (nothing to change).

Runs use the repository's ansible.cfg, whose strategy is Mitogen's linear
one; one extra no-op run with Ansible's stock ``linear`` strategy
(``ANSIBLE_STRATEGY=linear``) shows what Mitogen saves, and one with
``PIGPEN_JINJA_CACHE=off`` what the strategy's Jinja code cache saves. The
cache starts empty (a new directory) before the cold run, as on a
controller that never ran the playbooks.

Each is ``playbooks/install.yml`` (validate, node, etcd, pgsql) timed wall
clock; node creation is timed apart and not included. The PLAY RECAP of
every run is parsed: a no-op run must report changed=0 and failed=0 on
every host, otherwise the benchmark fails. Works on the "bench" environment
(10.10.30.0/24, pigpen-bench-*) and removes it at the end; a running
sandbox is stopped for the duration (its nodes would compete for the
CPUs) and started again.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

from sandbox_bench import REPO, SANDBOX, header, run, write_result  # noqa: E402 (same directory)

ENV = "bench"
PLAYBOOK = str(REPO / ".venv" / "bin" / "ansible-playbook")
DEBS = REPO / ".cache" / "bench-debs"
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# ansible.posix.profile_tasks' closing table: "<task name> ---- 12.34s"
TASK_TIME = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s$", re.M)
# where a cold or warm deployment spends its time: the slowest tasks
PROFILE = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "15"}


def recap(output: str) -> dict[str, dict[str, int]]:
    return {
        m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
        for m in RECAP.finditer(output)
    }


def slowest_tasks(output: str) -> list[list[Any]]:
    """The profile_tasks table of a run, slowest first: [task, seconds] (all hosts at once)."""
    table = output.split("TASKS RECAP", 1)[-1] if "TASKS RECAP" in output else ""
    return [[name.strip(), float(s)] for name, s in TASK_TIME.findall(table)]


def deploy(inventory: str, env: dict[str, str] | None = None, profile: bool = False) -> dict[str, Any]:
    start = time.monotonic()
    out = run([PLAYBOOK, "-i", inventory, "playbooks/install.yml"], env={**(env or {}), **(PROFILE if profile else {})})
    seconds = round(time.monotonic() - start, 1)
    hosts = recap(out)
    if not hosts or any(h["failed"] or h["unreachable"] for h in hosts.values()):
        raise SystemExit(f"bench: install.yml failed: {hosts}")
    result = {
        "s": seconds,
        "changed": {h: v["changed"] for h, v in hosts.items()},
        "tasks_ok": {h: v["ok"] for h, v in hosts.items()},
    }
    if profile:
        result["slowest_tasks_s"] = slowest_tasks(out)
    return result


def nodes() -> list[str]:
    listing = run(["podman", "ps", "--filter", f"label=io.pigpen.sandbox={ENV}", "--format", "{{.Names}}"])
    return sorted(listing.split())


def save_debs() -> dict[str, Any]:
    """The .deb files the nodes downloaded, merged into one directory."""
    if DEBS.exists():
        shutil.rmtree(DEBS)
    DEBS.mkdir(parents=True)
    for name in nodes():
        run(["podman", "cp", f"{name}:/var/cache/apt/archives/.", str(DEBS)])
    for extra in ("lock", "partial"):
        target = DEBS / extra
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    files = list(DEBS.glob("*.deb"))
    return {"files": len(files), "mb": round(sum(f.stat().st_size for f in files) / 1e6, 1)}


def seed_debs() -> None:
    for name in nodes():
        run(["podman", "cp", f"{DEBS}/.", f"{name}:/var/cache/apt/archives/"])


def sandbox_running() -> list[str]:
    listing = run(["podman", "ps", "--filter", "label=io.pigpen.sandbox=sandbox", "--format", "{{.Names}}"])
    return listing.split()


def main() -> int:
    parser = argparse.ArgumentParser(description="Time cold, warm and no-op deployments of the sandbox topology.")
    parser.add_argument("--noop-runs", type=int, default=3, help="no-op re-runs (default 3)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "deploy.json"))
    args = parser.parse_args()

    result: dict[str, Any] = header("deploy", f"make bench-deploy (bench/deploy_bench.py --noop-runs {args.noop_runs})")
    result.update(
        {
            "nodes": 4,
            "playbook": "playbooks/install.yml",
            "targets_s": {"cold": 360, "warm": 180, "noop": 60},
            "strategy": "mitogen_linear (ansible.cfg, tools/ansible/strategy)",
        }
    )
    # the strategy's Jinja code cache, empty before the cold run
    cache = tempfile.TemporaryDirectory(prefix="pigpen-bench-jinja-")
    os.environ["PIGPEN_JINJA_CACHE"] = cache.name
    result["jinja_cache"] = "empty before the cold run, then kept for the warm and no-op runs"
    paused = sandbox_running()
    if paused:
        print("bench: stopping the running sandbox for the duration", flush=True)
        run([SANDBOX, "stop"])
    env = ["--env", ENV]
    destroy = lambda: run([SANDBOX, *env, "destroy"])  # noqa: E731
    try:
        run([SANDBOX, "image"], quiet=False)
        destroy()
        start = time.monotonic()
        run([SANDBOX, *env, "create"])
        result["nodes_create_s"] = round(time.monotonic() - start, 1)
        inventory = run([SANDBOX, *env, "inventory"]).strip()

        result["cold"] = {
            "what": "fresh nodes, packages downloaded from the Debian archive",
            **deploy(inventory, profile=True),
        }
        print(f"bench: cold {result['cold']['s']} s", flush=True)
        result["deb_cache"] = save_debs()

        noop = [deploy(inventory) for _ in range(args.noop_runs)]
        for one in noop:
            if any(one["changed"].values()):
                raise SystemExit(f"bench: a re-run changed something: {one['changed']}")
        samples = [one["s"] for one in noop]
        result["noop"] = {
            "what": "install.yml again on the deployed nodes: changed=0 on every host",
            "median_s": round(statistics.median(samples), 1),
            "max_s": max(samples),
            "samples_s": samples,
            "tasks_ok": noop[-1]["tasks_ok"],
        }
        print(f"bench: no-op {samples} s", flush=True)
        uncached = deploy(inventory, env={"PIGPEN_JINJA_CACHE": "off"})
        if any(uncached["changed"].values()):
            raise SystemExit(f"bench: a re-run changed something: {uncached['changed']}")
        result["noop_no_jinja_cache"] = {"what": "one more no-op run with PIGPEN_JINJA_CACHE=off", "s": uncached["s"]}
        print(f"bench: no-op without the Jinja code cache {uncached['s']} s", flush=True)
        stock = deploy(inventory, env={"ANSIBLE_STRATEGY": "linear"})
        if any(stock["changed"].values()):
            raise SystemExit(f"bench: a re-run changed something: {stock['changed']}")
        result["noop_stock_linear"] = {
            "what": "one more no-op run with ANSIBLE_STRATEGY=linear (stock Ansible)",
            "s": stock["s"],
        }
        print(f"bench: no-op with the stock linear strategy {stock['s']} s", flush=True)

        destroy()
        run([SANDBOX, *env, "create"])
        seed_debs()
        result["warm"] = {
            "what": "fresh nodes, the .deb files already in each node's apt cache",
            **deploy(inventory, profile=True),
        }
        print(f"bench: warm {result['warm']['s']} s", flush=True)
    finally:
        destroy()
        cache.cleanup()
        if paused:
            run([SANDBOX, "start"])

    result["met"] = {k: result[k]["s" if k != "noop" else "median_s"] <= v for k, v in result["targets_s"].items()}
    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
