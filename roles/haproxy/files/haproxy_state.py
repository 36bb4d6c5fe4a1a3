#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""haproxy-state: keep the servers' health across a reload of HAProxy.

HAProxy (2.6, Debian 12) starts every server of a new worker UP, until its
first health check, up to ``inter`` later: for that time, after every
reload, the primary service also sends clients to replicas. With
``load-server-state-from-file`` the new worker starts from the state of the
old one instead. systemd runs this program (haproxy.service drop-in of
pigpen.pgsql):

``haproxy-state save --socket S --out F CONFIG...`` (before the reload
signal, and before a stop) asks the running HAProxy for ``show servers
state`` over its admin socket and writes the lines of the servers that the
configuration files about to be loaded still declare with the same address,
port and check port. Whether a state line's address and port override the
configuration's has differed between HAProxy versions: a server that moved
is left out, so the configuration always wins, and it starts as HAProxy
starts any server. Without an answer from the socket the file is
removed, and the reload goes on without it.

``haproxy-state expire --max-age SECONDS F`` (before a start) removes the
file unless it was written within SECONDS: a state saved by the stop of a
restart is used, one from before a reboot is not.

Python 3 standard library only; nothing here imports Ansible.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import sys
import time
from typing import Dict, Iterable, List, Optional, Tuple

#: (backend, server) -> (address, port, check port or None)
Servers = Dict[Tuple[str, str], Tuple[str, str, Optional[str]]]

_PROXY = re.compile(r"^\s*(?:listen|backend)\s+(\S+)")
_SECTION = re.compile(r"^\s*(?:global|defaults|frontend|listen|backend|peers|resolvers|userlist|program|mailers)\b")
_SERVER = re.compile(r"^\s*server\s+(\S+)\s+(\S+)(.*)$")
_CHECK_PORT = re.compile(r"\bport\s+(\d+)\b")

#: Fields of a ``show servers state`` line (version 1) that identify a
#: server and where it is.
_F_BE_NAME, _F_SRV_NAME, _F_SRV_ADDR, _F_SRV_PORT, _F_CHECK_PORT = 1, 3, 4, 18, 21


def declared_servers(texts: Iterable[str]) -> Servers:
    """The servers that configuration texts declare: backend (``listen`` or
    ``backend`` section), server name, address, port and ``port`` of its
    check (None when the check uses the server's port)."""
    out: Servers = {}
    for text in texts:
        proxy = None
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            m = _PROXY.match(line)
            if m:
                proxy = m.group(1)
                continue
            if _SECTION.match(line):
                proxy = None
                continue
            m = _SERVER.match(line)
            if not m or proxy is None:
                continue
            name, where, rest = m.groups()
            addr, _, port = where.rpartition(":")
            if not addr or not port.isdigit():
                continue
            check = _CHECK_PORT.search(rest)
            out[(proxy, name)] = (addr.strip("[]"), port, check.group(1) if check else None)
    return out


def kept_state(state: str, servers: Servers) -> str:
    """The lines of a ``show servers state`` answer that still describe a
    declared server at the same address, port and check port; the version
    and header lines as they are. Empty when the answer is not a version 1
    state (nothing is better than a state HAProxy would misread)."""
    lines = state.splitlines()
    if not lines or lines[0].strip() != "1":
        return ""
    out: List[str] = [lines[0]]
    for line in lines[1:]:
        if not line.strip() or line.startswith("#"):
            if line.startswith("#"):
                out.append(line)
            continue
        f = line.split()
        if len(f) <= _F_CHECK_PORT:
            continue
        declared = servers.get((f[_F_BE_NAME], f[_F_SRV_NAME]))
        if declared is None:
            continue
        addr, port, check = declared
        if f[_F_SRV_ADDR] != addr or f[_F_SRV_PORT] != port:
            continue
        if (check or port) != f[_F_CHECK_PORT] and f[_F_CHECK_PORT] != "0":
            continue
        out.append(line)
    return "\n".join(out) + "\n"


def ask(socket_path: str, command: str, timeout: float = 1.0) -> str:
    """One command on HAProxy's admin socket, its whole answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", "replace")


def config_texts(paths: Iterable[str]) -> List[str]:
    """The texts of the configuration files and of the ``.cfg`` files of
    the directories among ``paths`` (HAProxy's ``-f <dir>``)."""
    texts = []
    for path in paths:
        if os.path.isdir(path):
            names = sorted(n for n in os.listdir(path) if n.endswith(".cfg"))
            files = [os.path.join(path, n) for n in names]
        else:
            files = [path]
        for name in files:
            with open(name, encoding="utf-8") as f:
                texts.append(f.read())
    return texts


def write_atomically(path: str, text: str) -> None:
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def save(socket_path: str, out: str, configs: List[str]) -> str:
    """Write the kept state to ``out``; what happened, in one line."""
    try:
        state = ask(socket_path, "show servers state")
    except OSError as e:
        remove(out)
        return "no state saved: %s: %s" % (socket_path, e)
    kept = kept_state(state, declared_servers(config_texts(configs)))
    if not kept:
        remove(out)
        return "no state saved: unexpected answer from %s" % socket_path
    write_atomically(out, kept)
    n = sum(1 for line in kept.splitlines()[1:] if not line.startswith("#"))
    return "saved the state of %d servers in %s" % (n, out)


def expire(path: str, max_age: float, now: Optional[float] = None) -> str:
    try:
        age = (time.time() if now is None else now) - os.stat(path).st_mtime
    except FileNotFoundError:
        return "no state file"
    if age <= max_age:
        return "kept %s (%.0f s old)" % (path, age)
    remove(path)
    return "removed %s (%.0f s old)" % (path, age)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("save", help="save the servers' state before a reload or a stop")
    p.add_argument("--socket", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("configs", nargs="+", help="configuration files and directories, as haproxy -f takes them")
    p = sub.add_parser("expire", help="remove a state file older than --max-age seconds")
    p.add_argument("--max-age", type=float, required=True)
    p.add_argument("path")
    args = parser.parse_args(argv)
    # never fail the reload, the stop or the start: without a state file
    # HAProxy starts as it always did
    try:
        if args.command == "save":
            print(save(args.socket, args.out, args.configs))
        else:
            print(expire(args.path, args.max_age))
    except Exception as e:  # noqa: BLE001 (whatever went wrong, the reload goes on)
        remove(args.out if args.command == "save" else args.path)
        print("no state kept: %s" % e)
    return 0


if __name__ == "__main__":
    sys.exit(main())
