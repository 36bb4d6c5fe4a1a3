#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""patroni-watch: wake Patroni the moment its PostgreSQL dies, and restart
a replica that diverged from the leader's timeline so that Patroni rewinds it.

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

Its second duty is a replica that can no longer follow the leader. After
a failover a replica may have replayed WAL of the old timeline past the
point where the new leader's timeline forked off: typically the old
primary's last segment, which reaches the archive when that primary comes
back (its crash recovery closes the segment, and Patroni archives it
before pg_rewind) and holds records the promoted replica never received. PostgreSQL then logs "new timeline N
forked off current database system timeline N-1 before current recovery
point" every few seconds, forever. Patroni 3.0 checks for this once, when
it repoints the replica, and can miss it when the replay from the archive
comes later; it does check again when PostgreSQL starts. So every
``CHECK_S`` seconds the watcher compares this member (``GET /patroni``:
role, timeline, replayed location) with the cluster's history (``GET
/history``, from the DCS). When a replica has replayed past its
timeline's switch point in ``HOLD`` checks in a row, it asks Patroni for
``POST /restart`` of this member; on that start Patroni finds the
divergence and runs pg_rewind from the leader (``use_pg_rewind``). A
restart is asked at most once per ``BACKOFF_S``; nothing is done while the
cluster is paused.

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
import threading
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional

WAKEUP_PATCH = {"pigpen_wakeup": None}
# the diverged-replica check: its period, the checks in a row that must
# agree, and the least time between two restarts it asks for
CHECK_S = 10
HOLD = 2
BACKOFF_S = 300


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
    return {
        "pidfile": os.path.join(data_dir, "postmaster.pid"),
        "url": "%s://%s/config" % (scheme, address),
        "api": "%s://%s" % (scheme, address),
        "authorization": header,
        # the deployment's CA, which patronictl uses too (ctl.cacert)
        "cafile": (config.get("ctl") or {}).get("cacert"),
    }


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


def _request(conf: Dict[str, Any], url: str, method: str, body: Any) -> Any:
    """A request to this member's REST API, with its credentials, and the
    TLS context for it (None over http)."""
    headers = {"Content-Type": "application/json"}
    if conf["authorization"]:
        headers["Authorization"] = conf["authorization"]
    context = None
    if url.startswith("https:") and conf.get("cafile"):
        # the member's own REST API, at the address its certificate names
        context = ssl.create_default_context(cafile=conf["cafile"])
    elif url.startswith("https:"):
        # no CA configured: encrypted, not verified
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    data = None if body is None else json.dumps(body).encode()
    return urllib.request.Request(url, data=data, headers=headers, method=method), context


def wake(
    conf: Dict[str, Any], attempts: int = 5, pause_s: float = 0.2, opener: Callable[..., Any] = urllib.request.urlopen
) -> bool:
    """Ask Patroni to run its HA loop now; True when it answered 200."""
    for attempt in range(attempts):
        request, context = _request(conf, conf["url"], "PATCH", WAKEUP_PATCH)
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


def step(
    conf: Dict[str, Any],
    handled: Optional[int],
    wait: Callable[[int], None] = wait_exit,
    alive: Callable[[int], bool] = is_postgres,
    wakeup: Optional[Callable[[Dict[str, Any]], bool]] = None,
) -> Optional[int]:
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


def _crashed(
    conf: Dict[str, Any], pid: int, handled: Optional[int], wakeup: Optional[Callable[[Dict[str, Any]], bool]]
) -> int:
    if pid != handled:  # a crash is reported once, however long PostgreSQL stays down
        log("postmaster %d is gone and left postmaster.pid behind: waking Patroni" % pid)
        (wakeup or wake)(conf)
    return pid


def _lsn(value: int) -> str:
    return "%X/%X" % (value >> 32, value & 0xFFFFFFFF)


def _int(value: Any) -> Optional[int]:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def diverged(member: Dict[str, Any], history: Any) -> Optional[str]:
    """Why this member, a running replica, cannot follow the leader any
    more, or None. ``member`` is its ``GET /patroni``; ``history`` the
    cluster's ``GET /history``: ``[[timeline, switch_lsn, reason, time,
    new_leader], ...]``, one row per timeline that ended. The replica
    diverged when it replayed WAL of its timeline past that timeline's
    switch point (Patroni's own test before pg_rewind)."""
    if member.get("role") != "replica" or member.get("state") not in ("running", "streaming") or member.get("pause"):
        return None
    timeline = _int(member.get("timeline"))
    replayed = _int((member.get("xlog") or {}).get("replayed_location"))
    if timeline is None or replayed is None or not isinstance(history, list):
        return None
    for row in history:
        if isinstance(row, list) and len(row) >= 2 and _int(row[0]) == timeline and _int(row[1]) is not None:
            if replayed > row[1]:
                return "replayed up to %s on timeline %d, past %s where timeline %d forked off" % (
                    _lsn(replayed),
                    timeline,
                    _lsn(row[1]),
                    timeline + 1,
                )
            return None
    return None


def divergence_step(
    state: Dict[str, Any], reason: Optional[str], now: float, hold: int = HOLD, backoff_s: float = BACKOFF_S
) -> bool:
    """Count a check's outcome in ``state`` (``seen``, ``restarted_at``);
    True when a restart is to be asked now: ``hold`` diverged checks in a
    row and no restart asked in the last ``backoff_s`` seconds."""
    state["seen"] = state.get("seen", 0) + 1 if reason else 0
    last = state.get("restarted_at")
    if state["seen"] >= hold and (last is None or now - last >= backoff_s):
        state["restarted_at"] = now
        state["seen"] = 0
        return True
    return False


def call(
    conf: Dict[str, Any],
    path: str,
    method: str = "GET",
    body: Any = None,
    timeout: float = 5,
    opener: Callable[..., Any] = urllib.request.urlopen,
) -> Any:
    """The parsed JSON answer of this member's REST API (text when it is
    not JSON); raises OSError or HTTPError."""
    request, context = _request(conf, conf["api"] + path, method, body)
    with opener(request, timeout=timeout, context=context) as reply:
        text = reply.read().decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def check_divergence(
    conf: Dict[str, Any], state: Dict[str, Any], now: float, fetch: Callable[..., Any] = call
) -> Optional[str]:
    """One check; asks for the restart when it is due. Returns the reason
    when this member diverged, else None. Never raises."""
    try:
        reason = diverged(fetch(conf, "/patroni"), fetch(conf, "/history"))
    except (OSError, ValueError, AttributeError, TypeError):
        reason = None
    if divergence_step(state, reason, now):
        log("this replica %s: asking Patroni to restart it, so that it runs pg_rewind from the leader" % reason)
        try:
            log("Patroni answered the restart: %s" % fetch(conf, "/restart", method="POST", body={}, timeout=120))
        except urllib.error.HTTPError as exc:
            log(
                "Patroni answered %s to the restart (503 when the start was taken over by pg_rewind;"
                " Patroni's log says whether it ran)" % exc.code
            )
        except OSError as exc:
            log("the restart was not answered: %s" % exc)
    return reason


def watch_divergence(load: Callable[[], Dict[str, Any]], period_s: float = CHECK_S) -> None:
    """The diverged-replica check, every ``period_s`` seconds, for ever."""
    state: Dict[str, Any] = {}
    while True:
        time.sleep(period_s)
        try:
            conf = load()
        except Exception as exc:  # noqa: BLE001 - a bad file must not end the thread
            log("cannot read Patroni's configuration: %s" % exc)
            continue
        check_divergence(conf, state, time.monotonic())


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
    threading.Thread(target=watch_divergence, args=(load,), daemon=True, name="divergence").start()
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
