#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Make sure an etcd member that serves HTTPS and plain HTTP on one client
port answers plain HTTP's v3 JSON API; restart it until it does.

etcd 3.4 (Debian 12's 3.4.23) serves both schemes on one port (the modes
``armed`` and ``bridge`` of the move to TLS, module_utils/etcd_tls.py), but
at some starts its plain-HTTP gRPC server comes up with the TLS settings:
``/health`` answers, while every v3 call over plain HTTP (the JSON gateway
that Patroni and pg-vip use, which relays to gRPC) fails with
``connection closed``. The cause is a race in etcd's embed/serve.go: the
goroutine that serves the plain gRPC listener reads the variable holding
the gRPC server only when it first runs, and the TLS branch assigns the
TLS server to that variable meanwhile. Whether the goroutine runs first
depends on the OS scheduling a second thread at once: measured with a
single local member, 7 of 10 starts broken on an idle 2-core machine, 13
of 15 under CPU load, 10 of 10 with GOMAXPROCS=1, and 40 of 40 correct
under SCHED_RR. So the role starts etcd under SCHED_RR (priority 1)
while it serves both schemes, where the node allows it (a drop-in of
etcd.service, tasks/sched.yml), and this program sets every thread of
the running member back to SCHED_OTHER once the gateway answers: the
real-time policy is needed for the start only.

Where the node does not allow real-time scheduling, only chance is left:
the program asks ``POST /v3/maintenance/status`` over plain HTTP (for a
few seconds after ``/health`` answers) and, while that fails, restarts the
member (the role runs it on one member at a time, so the cluster keeps
its quorum), up to ``--tries`` restarts. HTTPS is never affected.

    etcd_plain_gateway.py --port 2379 [--tries 10] [--wait 60]

Prints one JSON line: ``{"restarts": N, "ok": true|false, "error": ...,
"demoted": T}`` (T: threads set back to SCHED_OTHER);
exits 0 when the gateway answers, 1 when it still does not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, List, Optional

Ask = Callable[[str, Optional[bytes]], Dict]


def http_json(url: str, body: Optional[bytes] = None, timeout: float = 3.0) -> Dict:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"{}")


def healthy(base: str, ask: Ask) -> bool:
    try:
        return str(ask(base + "/health", None).get("health")) == "true"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def gateway_error(base: str, ask: Ask) -> Optional[str]:
    """None when the v3 JSON API answers over plain HTTP, else why not."""
    try:
        reply = ask(base + "/v3/maintenance/status", b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return json.loads(exc.read() or b"{}").get("error") or "HTTP %d" % exc.code
        except ValueError:
            return "HTTP %d" % exc.code
    except (OSError, ValueError) as exc:
        return str(exc)
    return None if "header" in reply else (reply.get("error") or "unexpected reply %r" % (reply,))


def restart_etcd() -> None:
    # systemd refuses a sixth start within 10 s (StartLimitBurst): the
    # counter is reset first, and the caller spaces the restarts
    subprocess.run(["systemctl", "reset-failed", "etcd"], check=False)
    subprocess.run(["systemctl", "restart", "etcd"], check=True)


def etcd_pid() -> int:
    out = subprocess.run(
        ["systemctl", "show", "-p", "MainPID", "--value", "etcd"], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip() or 0)


def demote(
    pid: int,
    tasks: Optional[Callable[[int], List[int]]] = None,
    policy: Optional[Callable[[int], int]] = None,
    set_other: Optional[Callable[[int], None]] = None,
) -> int:
    """Set every thread of ``pid`` that runs under a real-time policy back
    to SCHED_OTHER; the number of threads changed. Threads that end
    meanwhile are skipped."""
    tasks = tasks or (lambda p: [int(t) for t in os.listdir("/proc/%d/task" % p)])
    policy = policy or os.sched_getscheduler
    set_other = set_other or (lambda t: os.sched_setscheduler(t, os.SCHED_OTHER, os.sched_param(0)))
    if pid <= 0:
        return 0
    changed = 0
    try:
        threads = tasks(pid)
    except OSError:
        return 0
    for tid in threads:
        try:
            if policy(tid) in (os.SCHED_RR, os.SCHED_FIFO):
                set_other(tid)
                changed += 1
        except OSError:
            continue
    return changed


def ensure(
    base: str,
    tries: int,
    wait: float,
    ask: Ask = http_json,
    restart: Callable[[], None] = restart_etcd,
    sleep: Callable[[float], None] = time.sleep,
    settle: int = 5,
) -> Dict:
    """Wait for /health, then ask the v3 API over plain HTTP up to
    ``settle`` times a second apart (it may answer a moment after
    /health), and restart the member while it does not, at most ``tries``
    times."""
    restarts, error = 0, None
    while True:
        waited = 0.0
        while not healthy(base, ask) and waited < wait:
            sleep(1.0)
            waited += 1.0
        for attempt in range(max(settle, 1)):
            if attempt:
                sleep(1.0)
            error = gateway_error(base, ask)
            if error is None:
                return {"restarts": restarts, "ok": True, "error": None}
        if restarts >= tries:
            return {"restarts": restarts, "ok": False, "error": error}
        restart()
        restarts += 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=2379)
    parser.add_argument("--tries", type=int, default=10)
    parser.add_argument("--wait", type=float, default=60.0)
    args = parser.parse_args(argv)
    out = ensure("http://127.0.0.1:%d" % args.port, args.tries, args.wait)
    out["demoted"] = demote(etcd_pid()) if out["ok"] else 0
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
