#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""patroni-watch: wake Patroni the moment its PostgreSQL dies.

Patroni looks at PostgreSQL once per HA loop (``loop_wait``, 5 s in the
``fast`` and ``norm`` plans). A postmaster that crashes right after a loop
therefore stays down for up to ``loop_wait`` before Patroni notices and
restarts it, and the primary service refuses writes all that time.

This program, installed by the pigpen.pgsql.patroni role as
/usr/local/bin/patroni-watch and run by patroni-watch.service as the
database OS user, closes that gap:

* it reads the postmaster's pid from ``<data_dir>/postmaster.pid`` and
  waits for that process to exit (``pidfd_open``, so without polling);
* when the process is gone but ``postmaster.pid`` still names it, the
  postmaster did not shut down (a clean stop removes the file): it asks
  Patroni's REST API for ``PATCH /config`` with ``{"pigpen_wakeup": null}``.
  That patch removes a key the configuration never has, so nothing is
  written to the DCS, but Patroni wakes its HA loop at once, finds
  PostgreSQL down and recovers it exactly as it would at its next loop.

Patroni alone decides what happens; the program never starts, stops or
promotes anything. A stop that Patroni or an operator makes is not a crash
and wakes nobody.

It reads everything from Patroni's own configuration file (its path is the
only argument): ``postgresql.data_dir``, ``restapi.connect_address``,
``restapi.certfile`` (https when set) and ``restapi.authentication``. Only
the standard library and PyYAML (a dependency of Patroni) are used. The
file is read again for every wake-up, so a changed REST API password needs
no restart of the watcher.
"""

from __future__ import annotations

import base64
import json
import os
import select
import ssl
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional

WAKEUP_PATCH = {"pigpen_wakeup": None}


def settings(config: Dict[str, Any]) -> Dict[str, Any]:
    """What the watcher needs from Patroni's configuration (a parsed dict)."""
    restapi = config.get("restapi") or {}
    data_dir = (config.get("postgresql") or {}).get("data_dir")
    address = restapi.get("connect_address")
    if not data_dir or not address:
        raise ValueError("patroni-watch: the configuration lacks postgresql.data_dir or restapi.connect_address")
    scheme = "https" if restapi.get("certfile") else "http"
    auth = restapi.get("authentication") or {}
    header = None
    if auth.get("username"):
        token = "%s:%s" % (auth["username"], auth.get("password", ""))
        header = "Basic " + base64.b64encode(token.encode()).decode()
    return {"pidfile": os.path.join(data_dir, "postmaster.pid"),
            "url": "%s://%s/config" % (scheme, address),
            "authorization": header}


def read_pid(pidfile: str) -> Optional[int]:
    """The postmaster's pid from the first line of postmaster.pid, or None."""
    try:
        with open(pidfile, encoding="ascii", errors="replace") as handle:
            first = handle.readline().strip()
    except OSError:
        return None
    return int(first) if first.isdigit() and int(first) > 0 else None


def is_postgres(pid: int) -> bool:
    """Whether ``pid`` runs and is a postgres process (not a reused pid)."""
    try:
        with open("/proc/%d/comm" % pid, encoding="ascii", errors="replace") as handle:
            return handle.read().strip() == "postgres"
    except OSError:
        return False


def wait_exit(pid: int, poll_s: float = 0.1) -> None:
    """Return once process ``pid`` has exited."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except (AttributeError, OSError):  # no pidfd (old kernel): poll
        while is_postgres(pid):
            time.sleep(poll_s)
        return
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll(1000):
            pass
    finally:
        os.close(fd)


def wake(conf: Dict[str, Any], attempts: int = 5, pause_s: float = 0.2,
         opener: Callable[..., Any] = urllib.request.urlopen) -> bool:
    """Ask Patroni to run its HA loop now; True when it answered 200."""
    headers = {"Content-Type": "application/json"}
    if conf["authorization"]:
        headers["Authorization"] = conf["authorization"]
    context = None
    if conf["url"].startswith("https:"):
        # the member's own REST API, addressed by IP: the certificate names the host
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    body = json.dumps(WAKEUP_PATCH).encode()
    for attempt in range(attempts):
        request = urllib.request.Request(conf["url"], data=body, headers=headers, method="PATCH")
        try:
            with opener(request, timeout=2, context=context) as reply:
                return reply.status == 200
        except urllib.error.HTTPError as exc:
            log("Patroni answered %s to the wake-up" % exc.code)
            return False
        except (urllib.error.URLError, OSError) as exc:
            if attempt == attempts - 1:
                log("Patroni's REST API did not answer: %s" % exc)
                return False
            time.sleep(pause_s)
    return False


def step(conf: Dict[str, Any], handled: Optional[int], wait: Callable[[int], None] = wait_exit,
         alive: Callable[[int], bool] = is_postgres,
         wakeup: Optional[Callable[[Dict[str, Any]], bool]] = None) -> Optional[int]:
    """One round: wait for the running postmaster to exit and wake Patroni
    if it crashed. ``handled`` is the pid of the last crash already
    reported; returns the value for the next round, or -1 when there was
    no running postmaster to watch (the caller pauses)."""
    pid = read_pid(conf["pidfile"])
    if pid is None or pid == handled:
        return -1
    if alive(pid):
        wait(pid)
        if read_pid(conf["pidfile"]) != pid:
            return handled  # clean shutdown: postmaster.pid removed (or already replaced)
    return _crashed(conf, pid, handled, wakeup)


def _crashed(conf: Dict[str, Any], pid: int, handled: Optional[int],
             wakeup: Optional[Callable[[Dict[str, Any]], bool]]) -> int:
    if pid != handled:  # a crash is reported once, however long PostgreSQL stays down
        log("postmaster %d is gone and left postmaster.pid behind: waking Patroni" % pid)
        (wakeup or wake)(conf)
    return pid


def log(message: str) -> None:
    print("patroni-watch: " + message, file=sys.stderr, flush=True)


def main(argv: list) -> int:
    if len(argv) != 2:
        print("usage: patroni-watch /etc/patroni/config.yml", file=sys.stderr)
        return 2
    import yaml  # python3-yaml, a dependency of Patroni

    def load() -> Dict[str, Any]:
        with open(argv[1], encoding="utf-8") as handle:
            return settings(yaml.safe_load(handle) or {})

    conf = load()
    log("watching %s, waking %s" % (conf["pidfile"], conf["url"]))
    handled: Optional[int] = None
    while True:
        # the file is read again for each wake-up: a changed REST API password applies without a restart
        result = step(conf, handled, wakeup=lambda _conf: wake(load()))
        if result == -1:
            time.sleep(0.2)
        else:
            handled = result


if __name__ == "__main__":
    sys.exit(main(sys.argv))
