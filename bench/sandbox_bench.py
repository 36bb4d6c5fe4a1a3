#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Measures the sandbox: node image build (cold, from the .deb cache, cached),
node start, first deployment and memory per node.

Run by ``make bench-sandbox``; writes bench/results/sandbox.json. It works on
an environment of its own ("bench", 10.10.30.0/24, containers pigpen-bench-*)
and builds its cold images under a tag of its own, so a running sandbox and
the cached node image are left alone.

Timings are wall-clock seconds; where a step is repeated the median is
reported with every sample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
SANDBOX = str(REPO / "sandbox" / "sandbox.sh")
BUILD = str(REPO / "sandbox" / "image" / "build.sh")
ENV = "bench"
BENCH_TAG = "localhost/pigpen-node-bench:cold"


def run(cmd: list[str], env: dict[str, str] | None = None, quiet: bool = True) -> str:
    proc = subprocess.run(
        cmd,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise SystemExit(f"bench: {' '.join(cmd)} failed with {proc.returncode}")
    if not quiet:
        sys.stdout.write(proc.stdout)
    return proc.stdout


def timed(action: Callable[[], Any]) -> float:
    start = time.monotonic()
    action()
    return round(time.monotonic() - start, 2)


def series(name: str, runs: int, action: Callable[[], Any], before: Callable[[], Any] | None = None) -> dict:
    samples = []
    for i in range(runs):
        if before:
            before()
        samples.append(timed(action))
        print(f"bench: {name} run {i + 1}/{runs}: {samples[-1]} s", flush=True)
    return {"median_s": round(statistics.median(samples), 2), "samples_s": samples}


def host() -> dict:
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8").split("\n")
    total_kib = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(total_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]).strip(),
        "podman": run(["podman", "--version"]).strip(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpu_reference_s": cpu_reference(),
    }


def cpu_reference(runs: int = 5) -> float:
    """Median seconds of a fixed single-core workload (a sum over 3 million
    squares). The same figure on two days says the machine ran as fast; a
    larger one says a slower result need not be the code's."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        sum(i * i for i in range(3_000_000))
        samples.append(time.perf_counter() - start)
    return round(statistics.median(samples), 3)


def header(name: str, command: str) -> dict[str, Any]:
    """The fields every result file starts with: what ran, when, on which
    commit and which machine."""
    return {
        "benchmark": name,
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "commit": commit(),
        "host": host(),
    }


def commit() -> str | None:
    proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def recipe_tag() -> str:
    script = (
        'cd sandbox/image && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12'
    )
    return run(["bash", "-c", script]).strip()


def memory(names: list[str]) -> dict:
    """Memory of each container from its cgroup (v1 memory controller, or v2)."""
    out = {}
    for name in names:
        cid = run(["podman", "inspect", "--format", "{{.Id}}", name]).strip()
        v1 = Path(f"/sys/fs/cgroup/memory/libpod_parent/libpod-{cid}")
        v2 = Path(f"/sys/fs/cgroup/machine.slice/libpod-{cid}.scope")
        if v1.is_dir():
            stat = dict(line.split() for line in (v1 / "memory.stat").read_text().splitlines())
            usage = int((v1 / "memory.usage_in_bytes").read_text())
            rss = int(stat["total_rss"])
            inactive = int(stat["total_inactive_file"])
            source = str(v1)
        elif v2.is_dir():
            stat = dict(line.split() for line in (v2 / "memory.stat").read_text().splitlines())
            usage = int((v2 / "memory.current").read_text())
            rss = int(stat["anon"])
            inactive = int(stat["inactive_file"])
            source = str(v2)
        else:
            continue
        out[name] = {
            "usage_mib": round(usage / 2**20, 1),
            "working_set_mib": round((usage - inactive) / 2**20, 1),
            "anon_rss_mib": round(rss / 2**20, 1),
            "cgroup": source,
        }
    return out


def node_names() -> list[str]:
    listing = run(["podman", "ps", "--filter", f"label=io.pigpen.sandbox={ENV}", "--format", "{{.Names}}"])
    return sorted(listing.split())


def summary(per_node: dict, key: str) -> dict:
    values = [v[key] for v in per_node.values()]
    return {"median_mib": round(statistics.median(values), 1), "max_mib": max(values)} if values else {}


def write_result(result: dict, output: str) -> None:
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"bench: wrote {out.relative_to(REPO)}")


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure the sandbox (image build, node start, memory).")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold image builds (default 3)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the cheaper steps (default 3)")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "sandbox.json"))
    args = parser.parse_args()

    result = header(
        "sandbox", f"make bench-sandbox (bench/sandbox_bench.py --cold-runs {args.cold_runs} --runs {args.runs})"
    )
    result.update({"image_recipe": recipe_tag(), "nodes": 4})

    # Image. The real image first, so that every later step has it.
    run([SANDBOX, "image"], quiet=False)
    result["image_cached_s"] = series("image (cached)", max(args.runs, 5), lambda: run([SANDBOX, "image"]))

    def drop_bench_image() -> None:
        subprocess.run(["podman", "image", "rm", "--force", BENCH_TAG], capture_output=True, check=False)

    def cold() -> None:
        with tempfile.TemporaryDirectory(prefix="pigpen-bench-cache.") as cache:
            run([BUILD, BENCH_TAG, "bench"], env={"PIGPEN_CACHE": cache})

    result["image_build_cold_s"] = series("image build, empty .deb cache", args.cold_runs, cold, drop_bench_image)
    result["image_build_cold_s"]["what"] = "debootstrap with an empty package cache, setup, podman import"
    result["image_build_deb_cache_s"] = series(
        "image build, warm .deb cache", args.runs, lambda: run([BUILD, BENCH_TAG, "bench"]), drop_bench_image
    )
    result["image_build_deb_cache_s"]["what"] = "as cold, with the .deb files in /var/cache/pigpen (recipe changed)"
    drop_bench_image()
    size = run(["podman", "image", "inspect", "--format", "{{.Size}}", f"localhost/pigpen-node:{recipe_tag()}"])
    result["image_size_mb"] = round(int(size.strip()) / 1e6, 1)

    # Nodes.
    destroy = lambda: run([SANDBOX, "--env", ENV, "destroy"])  # noqa: E731
    destroy()
    try:
        result["nodes_create_s"] = series(
            "create 4 nodes", args.runs, lambda: run([SANDBOX, "--env", ENV, "create"]), destroy
        )
        result["nodes_create_s"]["what"] = (
            "4 containers from the cached image until each answers SSH with systemd running"
        )
        result["nodes_create_again_s"] = series(
            "create again (nodes kept)", args.runs, lambda: run([SANDBOX, "--env", ENV, "create"])
        )
        result["nodes_stop_s"] = series(
            "stop 4 nodes",
            args.runs,
            lambda: run([SANDBOX, "--env", ENV, "stop"]),
            lambda: run([SANDBOX, "--env", ENV, "start"]),
        )
        result["nodes_start_s"] = series(
            "start 4 stopped nodes",
            args.runs,
            lambda: run([SANDBOX, "--env", ENV, "start"]),
            lambda: run([SANDBOX, "--env", ENV, "stop"]),
        )
        time.sleep(10)
        idle = memory(node_names())
        result["memory_idle"] = {
            "what": "fresh nodes (systemd, journald, dbus, sshd)",
            "per_node": idle,
            **summary(idle, "working_set_mib"),
        }

        inventory = run([SANDBOX, "--env", ENV, "inventory"]).strip()
        deploy = [str(REPO / ".venv" / "bin" / "ansible-playbook"), "-i", inventory, "playbooks/install.yml"]
        result["deploy_first_s"] = {"s": timed(lambda: run(deploy)), "what": "playbooks/install.yml on fresh nodes"}
        result["deploy_again_s"] = {"s": timed(lambda: run(deploy)), "what": "the same, nothing left to change"}
        print(f"bench: deploy {result['deploy_first_s']['s']} s, again {result['deploy_again_s']['s']} s", flush=True)
        time.sleep(10)
        deployed = memory(node_names())
        result["memory_deployed"] = {
            "what": "after playbooks/install.yml",
            "per_node": deployed,
            **summary(deployed, "working_set_mib"),
        }
    finally:
        destroy()

    write_result(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
