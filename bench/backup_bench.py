#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Measures backup, restore and point-in-time recovery of pg-test on the
running sandbox, for the local repository, the repository host (the infra
node, over pgBackRest's TLS server) and the S3 one.

Run by ``make bench-backup``; writes bench/results/backup.json. Steps:

1. ``pgbench -i -s SCALE`` fills the database ``pigpen_bench`` (scale 70 is
   a little over 1 GB);
2. for each repository method (``local``, ``backup``, ``minio``):
   ``pgsql.yml -l pg-test`` with pg-test's ``pgbackrest_method: M`` (an
   inventory of one line beside the sandbox's) points the cluster at
   it (not timed; it creates the stanza and a first full backup where
   there is none), then, timed: ``pg-backup full`` on the leader
   (``pg-backup-repo pg-test full`` on the repository host for
   ``backup``), ``pgbench -T 20`` of writes and an incremental backup the
   same way, a ``pgbackrest restore`` of the last backup into a scratch
   directory on the leader (removed afterwards), a restore drill
   (``pgsql-drill.yml``: verify, restore, replay, row counts, amcheck, on
   the node the model picks), and ``pgsql-pitr.yml`` to a time noted
   before a table was dropped, end to end (restore, Patroni back,
   replicas re-cloned, full backup);
3. the cluster is pointed back at the inventory's repository.

Throughput is the database size divided by pgBackRest's own duration for
the command (the wall clock of the ssh call is kept too). The S3 store is
sandbox/s3.sh's moto on the control host (in memory, behind TLS): its
numbers say what pgBackRest does with encryption, compression and the S3
protocol on these 2 cores, not what a real object store would sustain.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

from sandbox_bench import REPO, header, run, write_result  # noqa: E402 (same directory)

PLAYBOOK = str(REPO / ".venv" / "bin" / "ansible-playbook")
INVENTORY = str(REPO / "inventory" / "sandbox.yml")
SSH = [
    "ssh",
    "-i",
    str(REPO / ".sandbox" / "ssh" / "id_ed25519"),
    "-o",
    "BatchMode=yes",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
]
MEMBERS = ["10.10.10.11", "10.10.10.12", "10.10.10.13"]
REPO_HOST = "10.10.10.10"  # the infra node: pgbackrest_method backup's repository host
DB = "pigpen_bench"
SCRATCH = "/pg/bench-restore"


def on(node: str, script: str) -> str:
    return run(SSH + [f"root@{node}", script])


def as_dbsu(node: str, script: str) -> str:
    return on(node, f"cd / && runuser -u postgres -- {script}")


def leader() -> str:
    # patronictl reads the members from etcd: the same answer over an HTTP
    # or an HTTPS REST API (patroni_ssl_enabled)
    members = json.loads(on(MEMBERS[0], "patronictl -c /etc/patroni/config.yml list -f json"))
    return next(m["Host"] for m in members if m["Role"] == "Leader")


def method_args(method: str) -> list[str]:
    """An inventory that points pg-test, and only pg-test, at ``method``
    (``-e pgbackrest_method=M`` would apply to pg-meta too, whose repository
    host may not be one of its own members)."""
    path = REPO / ".cache" / f"bench-backup-{method}.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"all": {"children": {"pg-test": {"vars": {"pgbackrest_method": method}}}}}) + "\n")
    return ["-i", str(path)]


def playbook(*args: str) -> float:
    start = time.monotonic()
    run([PLAYBOOK, "-i", INVENTORY, *args])
    return round(time.monotonic() - start, 1)


def last_backup(node: str) -> dict[str, Any]:
    info = json.loads(as_dbsu(node, "pgbackrest --stanza=pg-test --output=json info"))[0]
    return info["backup"][-1]


def backup(node: str, kind: str, db_mb: float, method: str) -> dict[str, Any]:
    """A backup of ``kind``: on the leader ``node``, or on the repository
    host, where ``backup`` keeps the repository and runs the backups."""
    if method == "backup":
        node = REPO_HOST
        command = f"/usr/local/bin/pg-backup-repo pg-test {kind}"
    else:
        command = f"/usr/local/bin/pg-backup {kind}"
    start = time.monotonic()
    on(node, f"cd / && {command}")
    wall = round(time.monotonic() - start, 1)
    last = last_backup(node)
    seconds = last["timestamp"]["stop"] - last["timestamp"]["start"]
    return {
        "label": last["label"],
        "type": last["type"],
        "s": seconds,
        "wall_s": wall,
        "database_mb": round(last["info"]["size"] / 1e6, 1),
        "copied_mb": round(last["info"]["delta"] / 1e6, 1),
        "repository_mb": round(last["info"]["repository"]["delta"] / 1e6, 1),
        "mb_per_s": round(db_mb / max(seconds, 1), 1),
    }


def restore(node: str, db_mb: float) -> dict[str, Any]:
    as_dbsu(node, f"rm -rf {SCRATCH}")
    start = time.monotonic()
    as_dbsu(node, f"pgbackrest --stanza=pg-test --pg1-path={SCRATCH} --type=immediate restore")
    seconds = round(time.monotonic() - start, 1)
    restored = float(as_dbsu(node, f"du -sm {SCRATCH}").split()[0])
    as_dbsu(node, f"rm -rf {SCRATCH}")
    return {"s": seconds, "restored_mb": restored, "mb_per_s": round(db_mb / max(seconds, 0.1), 1)}


def drill(method: str) -> dict[str, Any]:
    """pgsql-drill.yml end to end, and the duration pg-drill reports."""
    start = time.monotonic()
    out = run([PLAYBOOK, "-i", INVENTORY, *method_args(method), "playbooks/pgsql-drill.yml", "-l", "pg-test"])
    wall = round(time.monotonic() - start, 1)
    found = re.search(r"drill passed in (\d+) s", out)
    if not found:
        raise SystemExit(f"bench: the drill with {method} did not pass:\n{out[-3000:]}")
    where = re.search(r"Restore drill of pg-test passed on (\S+)\.", out)
    return {"s": int(found.group(1)), "playbook_s": wall, "node": where.group(1) if where else None}


def psql(node: str, sql: str) -> str:
    return as_dbsu(node, f"psql -X -At -d {DB} -c \"{sql}\"").strip()


def pitr(method: str) -> dict[str, Any]:
    node = leader()
    psql(node, "drop table if exists pigpen_pitr; create table pigpen_pitr as select generate_series(1, 1000) id")
    noted = psql(node, "select now()")
    psql(node, "drop table pigpen_pitr")
    seconds = playbook(
        *method_args(method),
        "playbooks/pgsql-pitr.yml",
        "-l",
        "pg-test",
        "-e",
        json.dumps({"pg_pitr": {"time": noted}}),
        "-e",
        "pg_pitr_confirm=pg-test",
    )
    rows = psql(leader(), "select count(*) from pigpen_pitr")
    if rows != "1000":
        raise SystemExit(f"bench: after PITR to {noted} pigpen_pitr has {rows} rows, expected 1000")
    return {"s": seconds, "target": noted, "rows_back": int(rows)}


def measure(method: str, scale: int) -> dict[str, Any]:
    setup = playbook(*method_args(method), "playbooks/pgsql.yml", "-l", "pg-test")
    node = leader()
    db_mb = round(int(psql(node, f"select pg_database_size('{DB}')")) / 1e6, 1)
    full = backup(node, "full", db_mb, method)
    as_dbsu(node, f"pgbench -n -T 20 -c 2 {DB}")
    incr = backup(node, "incr", db_mb, method)
    return {
        "repository": method,
        "setup_s": setup,
        "database_mb": db_mb,
        "full": full,
        "incr_after_20s_pgbench": incr,
        "restore": restore(node, db_mb),
        "drill": drill(method),
        "pitr": pitr(method),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure backup, restore and PITR on the sandbox.")
    parser.add_argument("--scale", type=int, default=70, help="pgbench scale (70: about 1 GB)")
    parser.add_argument("--methods", default="local,backup,minio")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "backup.json"))
    args = parser.parse_args()

    result = header(
        "backup", f"make bench-backup (bench/backup_bench.py --scale {args.scale} --methods {args.methods})"
    )
    result["cluster"] = "pg-test on the sandbox (3 members, pg_conf tiny, tuned for 1 GiB / 1 CPU per node)"
    run([str(REPO / "sandbox" / "s3.sh"), "start"])
    node = leader()
    as_dbsu(node, f"psql -X -q -c 'drop database if exists {DB}' -c 'create database {DB}'")
    start = time.monotonic()
    as_dbsu(node, f"pgbench -i -q -s {args.scale} {DB}")
    result["pgbench_init"] = {"scale": args.scale, "s": round(time.monotonic() - start, 1)}
    result["runs"] = [measure(method, args.scale) for method in args.methods.split(",")]
    playbook("playbooks/pgsql.yml", "-l", "pg-test")
    as_dbsu(leader(), f"psql -X -q -c 'drop database if exists {DB}'")
    write_result(result, args.output)
    for entry in result["runs"]:
        print(
            f"{entry['repository']:>6}: full {entry['full']['s']} s ({entry['full']['mb_per_s']} MB/s), "
            f"incr {entry['incr_after_20s_pgbench']['s']} s, restore {entry['restore']['s']} s "
            f"({entry['restore']['mb_per_s']} MB/s), drill {entry['drill']['s']} s, PITR {entry['pitr']['s']} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
