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
``connection closed``. Which way a start goes is chance, so this program
asks ``POST /v3/maintenance/status`` over plain HTTP (for a few seconds
after ``/health`` answers) and, while that fails, restarts the member
(the role runs it on one member at a time, so the cluster keeps its
quorum), up to ``--tries`` restarts. HTTPS is never affected.

    etcd_plain_gateway.py --port 2379 [--tries 10] [--wait 60]

Prints one JSON line: ``{"restarts": N, "ok": true|false, "error": ...}``;
exits 0 when the gateway answers, 1 when it still does not.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Callable, Dict, Optional

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
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
