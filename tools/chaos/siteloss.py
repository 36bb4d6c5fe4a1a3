# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""A site loss and the promotion of the standby cluster, as clients see it.

Writes to the source cluster (a libpq DSN, as applications use it) while
watching how far its standby cluster has replayed, kills the source's site
(``--kill``, a command), then promotes the standby cluster (``--promote``,
a command: the operator's decision) while a client retries writes on the
standby cluster's DSN. Reports, as JSON (docs/dr.md):

* ``acked``: rows the source acknowledged;
* ``lag_rows``/``lag_seconds``: rows acknowledged and not yet seen on the
  standby cluster at the last look before the kill, and how old that look's
  newest replayed row was: the data at risk at the time;
* ``lost``: acknowledged rows missing from the promoted cluster; every one
  must be among the rows at risk (``lost_outside_lag`` counts the others,
  which would be a bug);
* ``decision_to_first_write_s``: from the start of ``--promote`` to the
  first write the promoted cluster acknowledged; ``promote_rc`` its exit
  code.

    python tools/chaos/siteloss.py \\
        --source 'host=10.10.40.11,10.10.40.12,10.10.40.13 port=5433 dbname=test user=test password=test target_session_attrs=read-write' \\
        --standby 'host=10.10.40.14 port=5432 dbname=test user=dbuser_dba password=DBUser.DBA' \\
        --target 'host=10.10.40.14,10.10.40.15 port=5433 dbname=test user=test password=test target_session_attrs=read-write' \\
        --kill 'podman kill pigpen-dr-pg-test-1 pigpen-dr-pg-test-2 pigpen-dr-pg-test-3' \\
        --promote 'ansible-playbook ... playbooks/pgsql.yml -l pg-dr -e pg_standby_change=pg-dr'
"""  # noqa: E501 (a command line to copy as it is)

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import TABLE, Ids, Loop, Writer, check_dsns, emit, prepare, present_ids  # noqa: E402


class Replayed(Loop):
    """The newest row the standby cluster has replayed, and its age, every
    ``interval`` seconds."""

    kind = "replayed"

    def once(self, conn: psycopg.Connection) -> Any:
        row = conn.execute(
            "SELECT coalesce(max(id), 0), extract(epoch FROM now() - pg_last_xact_replay_timestamp()) FROM %s" % TABLE
        ).fetchone()
        return (row[0], float(row[1]) if row[1] is not None else None)  # type: ignore[index]


def report(
    acked: Sequence[Tuple[float, int]],
    replayed: Sequence[Tuple[float, Tuple[int, Optional[float]]]],
    killed_at: float,
    present: Sequence[int],
    decided_at: float,
    first_write_at: Optional[float],
) -> Dict[str, Any]:
    """What the clients saw (see the module's doc). ``acked``: (time, id)
    of the source's acknowledgements; ``replayed``: (time, (newest id,
    its age in s)) of the looks at the standby; ``present``: the ids found
    on the promoted cluster. Times are of one monotonic clock."""
    before = [value for at, value in replayed if at <= killed_at]
    seen, age = before[-1] if before else (0, None)
    acked_ids = sorted(i for _, i in acked)
    at_risk = {i for i in acked_ids if i > seen}
    lost = sorted(set(acked_ids) - set(present))
    return {
        "acked": len(acked_ids),
        "lag_rows": len(at_risk),
        "lag_seconds": age,
        "lost": len(lost),
        "lost_outside_lag": len([i for i in lost if i not in at_risk]),
        "decision_to_first_write_s": (round(first_write_at - decided_at, 2) if first_write_at is not None else None),
    }


class FirstWrite(Writer):
    """A writer on the standby cluster's DSN that stops at its first
    acknowledged row."""

    def once(self, conn: psycopg.Connection) -> Any:
        value = super().once(conn)
        self.stopping.set()
        return value


def run(args: argparse.Namespace) -> Dict[str, Any]:
    first = prepare(args.source)
    ids = Ids(first)
    writer = Writer(args.source, args.interval, ids, name="source")
    looker = Replayed("replayed", args.standby, args.interval)
    writer.start()
    looker.start()
    time.sleep(args.warmup)
    killed_at = time.monotonic()
    kill = subprocess.run(shlex.split(args.kill), capture_output=True, text=True, check=False)
    # the writer sees the loss too (its errors are not counted as lost rows)
    time.sleep(2)
    writer.stop()
    looker.stop()
    writer.join(10)
    looker.join(10)

    # the promoted cluster's ids start far above the source's: no clash
    probe = FirstWrite(args.target, 0.2, Ids(ids.last + 1_000_000), name="target")
    decided_at = time.monotonic()
    probe.start()
    with open(args.promote_log, "w", encoding="utf-8") as log:
        promote = subprocess.run(shlex.split(args.promote), stdout=log, stderr=subprocess.STDOUT, check=False)
    probe.join(args.wait_after)
    probe.stop()
    first_write_at = probe.acks[0][0] if probe.acks else None

    present = present_ids(args.target, first, ids.last) if first_write_at is not None else []
    out = report(writer.acks, looker.acks, killed_at, present, decided_at, first_write_at)
    out.update(
        {
            "kill_rc": kill.returncode,
            "promote_rc": promote.returncode,
            "promote_log": args.promote_log,
            "source_errors_after_kill": len([e for e in writer.errors if e[0] >= killed_at]),
        }
    )
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="libpq DSN of the source cluster's writes")
    parser.add_argument("--standby", required=True, help="libpq DSN of the standby cluster's leader (reads)")
    parser.add_argument("--target", required=True, help="libpq DSN of the standby cluster's writes once promoted")
    parser.add_argument("--kill", required=True, help="command that kills the source's site")
    parser.add_argument("--promote", required=True, help="command that promotes the standby cluster")
    parser.add_argument("--promote-log", default="/tmp/pigpen-promote.log")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of writes before the kill")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--wait-after", type=float, default=60.0, help="seconds to wait for a write after --promote")
    parser.add_argument("--output", help="write the JSON report here too")
    args = parser.parse_args(argv)
    check_dsns(args.source, args.standby, args.target)
    out = run(args)
    emit(out, args.output)
    return 0 if out["promote_rc"] == 0 and out["lost_outside_lag"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
