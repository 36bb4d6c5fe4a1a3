# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""A planned operation (a command), as a client writing through it sees it.

Writes one row every ``--interval`` seconds through a libpq DSN, as
applications do (a multi-host list with ``target_session_attrs=read-write``
follows the primary from one site to the other), starts ``--run`` (a
command: e.g. ``pgsql-reverse.yml``) after ``--warmup`` seconds, keeps
writing ``--after`` seconds once it has ended, then looks for every
acknowledged row through ``--check`` (default: the same DSN). Reports, as
JSON (docs/dr.md):

* ``acked``: rows acknowledged; ``lost``: acknowledged rows missing
  afterwards (must be 0 for a planned operation);
* ``outage_s``: the longest time without an acknowledged write while the
  command ran, and ``outage_at``, when it began and ended in seconds after
  the command's start; ``writes_after``: rows acknowledged after it ended
  (0: the service did not come back);
* ``errors``: the writer's errors by kind, [count, first, last] in seconds
  after the command's start;
* ``run_rc``: the command's exit code. Its output is in ``--run-log``, each
  line after the seconds since the command started, so that the outage
  can be read against the steps of the command.

    python tools/chaos/planned.py \\
        --client 'host=10.10.40.3,10.10.40.4 port=5432 dbname=test user=test password=test target_session_attrs=read-write' \\
        --run 'ansible-playbook ... playbooks/pgsql-reverse.yml -l pg-test,pg-dr -e pg_reverse=pg-dr'
"""  # noqa: E501 (a command line to copy as it is)

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from loadgen import Ids, Writer, check_dsns, emit, prepare, present_ids  # noqa: E402
from measure import error_spans, lost, outage, outage_window  # noqa: E402


def report(acked: Sequence[Tuple[float, int]], present: Sequence[int], started: float, ended: float) -> Dict[str, Any]:
    """What the writer saw: ``acked`` (time, id) of its acknowledgements,
    ``present`` the ids found afterwards, the command between ``started``
    and ``ended`` (one monotonic clock)."""
    times = [at for at, _ in acked]
    gone = lost((i for _, i in acked), present)
    window = outage_window(times, started, ended)
    return {
        "acked": len(acked),
        "lost": len(gone),
        "lost_ids": gone[:20],
        "outage_s": outage(times, started, ended),
        "outage_at": None if window is None else [round(window[0] - started, 1), round(window[1] - started, 1)],
        "writes_after": len([at for at in times if at > ended]),
    }


def run_logged(command: str, log_path: str) -> int:
    """Run ``command``; each line of its output goes to ``log_path`` after
    the seconds since it started. Returns its exit code."""
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            shlex.split(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write("%7.1f %s" % (time.monotonic() - started, line))
            log.flush()
        return proc.wait()


def run(args: argparse.Namespace) -> Dict[str, Any]:
    first = prepare(args.client)
    ids = Ids(first)
    writer = Writer(args.client, args.interval, ids, name="writer")
    writer.start()
    time.sleep(args.warmup)
    started = time.monotonic()
    rc = run_logged(args.run, args.run_log)
    ended = time.monotonic()
    time.sleep(args.after)
    writer.stop()
    writer.join(10)
    present = present_ids(args.check or args.client, first, ids.last)
    out = report(writer.acks, present, started, ended)
    out.update(
        {
            "errors": error_spans(writer.errors, started),
            "run_rc": rc,
            "run_log": args.run_log,
            "run_s": round(ended - started, 1),
        }
    )
    return out


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--client", required=True, help="libpq DSN of the writes")
    parser.add_argument("--run", required=True, help="the command (the planned operation)")
    parser.add_argument("--check", help="libpq DSN to look for the rows afterwards (default: --client)")
    parser.add_argument("--run-log", default="/tmp/pigpen-planned.log")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of writes before --run")
    parser.add_argument("--after", type=float, default=5.0, help="seconds of writes after --run ended")
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--output", help="write the JSON report here too")
    args = parser.parse_args(argv)
    check_dsns(args.client, args.check or args.client)
    out = run(args)
    emit(out, args.output)
    return 0 if out["run_rc"] == 0 and out["lost"] == 0 and out["writes_after"] > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
