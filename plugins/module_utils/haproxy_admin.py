# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Telling a node's HAProxy who the primary is, right after a switchover.

HAProxy admits a member into a service that checks ``/primary`` only after
``rise`` successful checks at ``downinter`` (3 x 2 s in the ``norm`` plan),
so after a switchover the primary service refuses connections for up to
``rise x downinter`` although Patroni already knows the new leader. The
operation playbooks know it too, and tell every HAProxy that publishes the
cluster's services at once, over the admin socket (``set server B/S health
up|down``). The health checks keep running and stay in charge: they agree
with the forced state, or overrule it at their next transition.

Pure functions, and :func:`ask`, the one exchange with the admin socket
that the modules ``haproxy_primary`` and ``haproxy_health`` make.
``show stat`` answers CSV whose first line is ``# pxname,svname,...``;
``status`` is ``UP``, ``DOWN``, ``MAINT``, ``DRAIN``, ``NOLB``, ``no check``,
or a transition such as ``UP 1/3`` (going down) or ``DOWN 1/2`` (going up).
"""

from __future__ import annotations

import csv
import io
import socket
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

PRIMARY_CHECK = "/primary"


def parse_stat(text: str) -> List[Dict[str, str]]:
    """Rows of ``show stat`` as dicts keyed by the header's column names."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines or not lines[0].startswith("# "):
        raise ValueError("not the output of 'show stat': %r" % text[:80])
    header = lines[0][2:].split(",")
    return [dict(zip(header, row)) for row in csv.reader(io.StringIO("\n".join(lines[1:])))]


def promoted(status: Mapping[str, Any]) -> bool:
    """Whether a member's ``GET /patroni`` answer shows a running primary
    (Patroni 3 says ``master``, Patroni 4 ``primary``; the role comes from
    ``pg_is_in_recovery()``, so it changes only once the promotion is
    complete)."""
    return status.get("state") == "running" and status.get("role") in ("master", "primary")


def primary_backends(services: Sequence[Mapping[str, Any]], cluster: str) -> List[str]:
    """Names of the backends of ``cluster`` whose health check is ``/primary``
    (the resolved services of ``pg_host_services``/``pg_cluster_plan``)."""
    return sorted(
        {
            s["name"]
            for s in services
            if s.get("cluster") == cluster and str(s.get("check", PRIMARY_CHECK)).split("?", 1)[0] == PRIMARY_CHECK
        }
    )


# Checks that a primary never passes: after a switchover the new primary is
# taken out of these backends at once instead of after ``fall`` checks.
STANDBY_CHECKS = ("/replica", "/async", "/sync")


def standby_backends(services: Sequence[Mapping[str, Any]], cluster: str) -> List[str]:
    """Names of the backends of ``cluster`` whose (effective) health check
    only a standby passes: ``/replica``, ``/async``, ``/sync``, including
    the standby tier of a two-tier ``/read-only`` service."""
    return sorted(
        {
            s["name"]
            for s in services
            if s.get("cluster") == cluster and str(s.get("check", PRIMARY_CHECK)).split("?", 1)[0] in STANDBY_CHECKS
        }
    )


def standby_commands(rows: Sequence[Mapping[str, str]], backends: Sequence[str], primary: str) -> List[str]:
    """Admin commands that take the new ``primary`` out of ``backends``
    (standby-only services) while HAProxy still counts it up. Nothing else
    is touched: the old primary joins as a standby through its checks."""
    wanted = set(backends)
    return [
        "set server %s/%s health down" % (row.get("pxname"), primary)
        for row in rows
        if row.get("pxname") in wanted
        and row.get("svname") == primary
        and (row.get("status", "").startswith("UP") or row.get("status") == "NOLB")
    ]


def primary_commands(rows: Sequence[Mapping[str, str]], backends: Sequence[str], primary: str) -> List[str]:
    """Admin commands that make ``backends`` route to ``primary`` only.

    ``primary`` is forced up unless it is plainly ``UP``; every other server
    that is up (or still going down) is forced down. Servers in maintenance
    or drain were put there by an operator and are left alone, as are
    servers already down."""
    wanted = set(backends)
    out = []
    for row in rows:
        backend, server, status = row.get("pxname"), row.get("svname"), row.get("status", "")
        if backend not in wanted or server in ("FRONTEND", "BACKEND"):
            continue
        if status.startswith(("MAINT", "DRAIN")):
            continue
        if server == primary:
            if status != "UP":
                out.append("set server %s/%s health up" % (backend, server))
        elif status.startswith("UP") or status == "NOLB":
            out.append("set server %s/%s health down" % (backend, server))
    return out


def missing_backends(rows: Sequence[Mapping[str, str]], backends: Sequence[str], primary: str) -> List[str]:
    """Backends of ``backends`` where HAProxy has no server ``primary``
    (the node's configuration does not know the member yet)."""
    have = {(r.get("pxname"), r.get("svname")) for r in rows}
    return [b for b in backends if (b, primary) not in have]


def cluster_backends(services: Sequence[Mapping[str, Any]], cluster: str) -> List[str]:
    """Every backend that checks a member of ``cluster``: its services and
    the fallback tiers of two-tier services (``<service>.fallback``)."""
    out = set()
    for s in services:
        if s.get("cluster") != cluster:
            continue
        out.add(s["name"])
        if s.get("fallback"):
            out.add(s["fallback"]["name"])
    return sorted(out)


# srv_check_state of ``show servers state``: bits of the server's health
# check (HAProxy's CHK_ST_*; read from HAProxy 2.6: 6 for a running check,
# 2 once ``disable health`` stopped it, 14 and 10 for the same in
# maintenance, 0 for a server without a check of its own: no ``check``, or
# one that tracks another server).
CHECK_CONFIGURED = 0x2
CHECK_ENABLED = 0x4


def parse_servers_state(text: str) -> List[Dict[str, str]]:
    """Rows of ``show servers state`` as dicts keyed by the header's column
    names (a version line, then ``# be_id be_name ...``, then one line per
    server, fields separated by spaces)."""
    lines = [line for line in text.splitlines() if line.strip()]
    heads = [i for i, line in enumerate(lines) if line.startswith("# ")]
    if not heads:
        raise ValueError("not the output of 'show servers state': %r" % text[:80])
    header = lines[heads[0]][2:].split()
    return [dict(zip(header, line.split())) for line in lines[heads[0] + 1 :] if not line.startswith("#")]


def health_commands(rows: Sequence[Mapping[str, str]], backends: Sequence[str], frozen: bool) -> List[str]:
    """Admin commands that stop (``frozen``) or resume the health checks of
    every server of ``backends`` (``rows`` of :func:`parse_servers_state`).
    A stopped check keeps the server in the state it was in (UP stays UP,
    DOWN stays DOWN: HAProxy 2.6, pinned by
    tests/integration/test_haproxy_reload.py). Servers without a check of
    their own (none configured, or tracking another server) are left alone,
    as are servers already in the asked state, so resuming is a no-op on a
    node where nothing was stopped."""
    wanted = set(backends)
    out = []
    for row in rows:
        backend, server = row.get("be_name"), row.get("srv_name")
        try:
            state = int(row.get("srv_check_state") or 0)
        except ValueError:
            continue
        if backend not in wanted or not state & CHECK_CONFIGURED:
            continue
        checking = bool(state & CHECK_ENABLED)
        if frozen and checking:
            out.append("disable health %s/%s" % (backend, server))
        elif not frozen and not checking:
            out.append("enable health %s/%s" % (backend, server))
    return out


def send_all(path: str, commands: Sequence[str], asker: Any = None) -> Optional[Tuple[str, str]]:
    """Send ``commands`` in order over the admin socket (``asker``: :func:`ask`
    or a stand-in); HAProxy answers a command it carried out with nothing.
    Stops at the first refusal and returns it as ``(command, answer)``;
    None when every command was carried out."""
    asker = asker or ask
    for command in commands:
        answer = asker(path, command).strip()
        if answer:
            return command, answer
    return None


def ask(path: str, command: str, timeout: float = 5.0) -> str:
    """Send one command to the admin socket and return the whole answer."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect(path)
        conn.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        conn.close()
    return b"".join(chunks).decode("utf-8", "replace")
