# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""A reload of the real HAProxy (Debian 12's 2.6, from `make haproxy-bin`)
routes no client to a server that was down, when haproxy-state
(roles/haproxy/files/haproxy_state.py) saved the servers' state before it,
as the role's unit drop-in does; without it the new process sends clients
to every server until the first health checks (the reason for it). A server
whose port changed in the new configuration is reached at its new port
(its old state line is dropped). Stand-ins play the members: one data port
and one health port (200 for the primary, 503 for a replica) each."""

from __future__ import annotations

import collections
import http.server
import importlib.util
import os
import shutil
import signal
import socket
import socketserver
import subprocess
import threading
import time

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
HAPROXY = shutil.which("haproxy") or os.path.join(REPO, ".cache", "haproxy", "usr", "sbin", "haproxy")
LIBDIR = os.path.join(REPO, ".cache", "haproxy", "usr", "lib", "x86_64-linux-gnu")

pytestmark = pytest.mark.skipif(
    not os.path.exists(HAPROXY) and not os.environ.get("PIGPEN_REQUIRE_TOOLS"),
    reason="no haproxy binary (make haproxy-bin)",
)


def _load(name, *path):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, *path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hs = _load("haproxy_state", "roles", "haproxy", "files", "haproxy_state.py")
# the logic of the haproxy_health module (standard library only)
admin = _load("haproxy_admin", "plugins", "module_utils", "haproxy_admin.py")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Member:
    """A data port that answers its name, and a health port with a fixed
    status for every check."""

    def __init__(self, name, status):
        self.name = name
        self.status = status
        member = self
        self.data = socket.socket()
        self.data.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.data.bind(("127.0.0.1", 0))
        self.data.listen(128)
        self.port = self.data.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

        class Health(http.server.BaseHTTPRequestHandler):
            def do_OPTIONS(self):  # noqa: N802 (http.server's naming)
                self.send_response(member.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.health = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Health)
        self.health.daemon_threads = True
        self.check_port = self.health.server_address[1]
        threading.Thread(target=self.health.serve_forever, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.data.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.name.encode() + b"\n")

    def close(self):
        self.health.shutdown()
        self.data.close()


def _config(tmp_path, listen, members, state=True):
    servers = "".join(
        "    server %s 127.0.0.1:%d check port %d\n" % (m.name.split("@")[0], m.port, m.check_port) for m in members
    )
    text = (
        "global\n"
        "    stats socket %(dir)s/admin.sock mode 600 level admin expose-fd listeners\n"
        "%(state_file)s"
        "defaults\n"
        "    mode tcp\n"
        "%(load)s"
        "    timeout connect 1s\n    timeout client 5s\n    timeout server 5s\n    timeout check 3s\n"
        "listen pg-test-primary\n"
        "    bind 127.0.0.1:%(listen)d\n"
        "    balance roundrobin\n"
        "    option httpchk\n"
        "    http-check send meth OPTIONS uri /primary\n"
        "    http-check expect status 200\n"
        # the norm plan's timing (plugins/module_utils/ha.py)
        "    default-server inter 2s fastinter 1s downinter 2s rise 3 fall 3 on-marked-down shutdown-sessions\n"
        "%(servers)s"
    ) % {
        "dir": tmp_path,
        "listen": listen,
        "servers": servers,
        "state_file": "    server-state-file %s/server-state\n" % tmp_path if state else "",
        "load": "    load-server-state-from-file global\n" if state else "",
    }
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return str(path)


def _probe(listen, seconds):
    """Connect again and again for ``seconds``; how often each member
    answered."""
    seen = collections.Counter()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", listen), timeout=1) as s:
                seen[s.recv(64).decode().strip() or "closed"] += 1
        except OSError:
            seen["refused"] += 1
        time.sleep(0.005)
    return seen


class _HAProxy:
    def __init__(self, tmp_path, config):
        env = dict(os.environ)
        if os.path.isdir(LIBDIR):
            env["LD_LIBRARY_PATH"] = LIBDIR
        self.tmp = tmp_path
        self.config = config
        self.proc = subprocess.Popen(
            [HAPROXY, "-W", "-f", config], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.socket = str(tmp_path / "admin.sock")

    def down(self):
        """The servers that are down (operational state 0)."""
        try:
            state = hs.ask(self.socket, "show servers state")
        except OSError:
            return None
        rows = [line.split() for line in state.splitlines()[2:] if line.strip()]
        return sorted(r[3] for r in rows if r[5] == "0")

    def settle(self, expected):
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if self.down() == expected:
                return
            time.sleep(0.2)
        raise AssertionError("servers down: %s, expected %s" % (self.down(), expected))

    def wait_port(self, server, port):
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                rows = [line.split() for line in hs.ask(self.socket, "show servers state").splitlines()[2:]]
            except OSError:
                rows = []
            if any(len(r) > 18 and r[3] == server and r[18] == str(port) for r in rows):
                return
            time.sleep(0.05)
        raise AssertionError("%s never served from port %s" % (server, port))

    def reload(self, save):
        if save:
            assert hs.save(self.socket, str(self.tmp / "server-state"), [self.config]).startswith("saved the state")
        self.proc.send_signal(signal.SIGUSR2)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture()
def cluster():
    members = [_Member("pg-test-1", 200), _Member("pg-test-2", 503), _Member("pg-test-3", 503)]
    yield members
    for m in members:
        m.close()


def test_a_reload_without_the_state_sends_clients_to_replicas(tmp_path, cluster):
    """The problem: after a plain reload the new process sends clients to
    every server until its first checks (tried up to three times: the first
    checks are spread over one interval, so a reload may be lucky)."""
    listen = _free_port()
    proxy = _HAProxy(tmp_path, _config(tmp_path, listen, cluster, state=False))
    try:
        for _attempt in range(3):
            proxy.settle(["pg-test-2", "pg-test-3"])
            proxy.reload(save=False)
            seen = _probe(listen, 1.0)
            if seen["pg-test-2"] + seen["pg-test-3"]:
                break
        assert seen["pg-test-2"] + seen["pg-test-3"] > 0, seen
    finally:
        proxy.stop()


def test_a_reload_with_the_saved_state_sends_no_client_to_a_replica(tmp_path, cluster):
    listen = _free_port()
    proxy = _HAProxy(tmp_path, _config(tmp_path, listen, cluster))
    try:
        for _attempt in range(3):
            proxy.settle(["pg-test-2", "pg-test-3"])
            proxy.reload(save=True)
            seen = _probe(listen, 2.5)
            assert set(seen) == {"pg-test-1"}, seen
    finally:
        proxy.stop()


def test_a_server_that_moved_is_reached_where_the_new_configuration_says(tmp_path, cluster):
    """pg-test-1's port changes (a service moved from pgbouncer to
    postgres): its saved line is dropped, the others' are kept."""
    listen = _free_port()
    proxy = _HAProxy(tmp_path, _config(tmp_path, listen, cluster))
    moved = _Member("pg-test-1@new-port", 200)
    try:
        proxy.settle(["pg-test-2", "pg-test-3"])
        _config(tmp_path, listen, [moved] + cluster[1:])
        proxy.reload(save=True)
        state = (tmp_path / "server-state").read_text()
        assert " pg-test-1 " not in state and " pg-test-2 " in state and " pg-test-3 " in state
        # until the new process took over, the old one answers, from pg-test-1's old port
        proxy.wait_port("pg-test-1", moved.port)
        seen = _probe(listen, 2.5)
        assert set(seen) == {"pg-test-1@new-port"}, seen
    finally:
        proxy.stop()
        moved.close()


def test_held_checks_keep_the_routing_across_a_reload_until_they_resume(tmp_path, cluster):
    """The move of the REST API between HTTP and HTTPS (pgsql.yml): the
    checks of the cluster's servers stop (the commands of the haproxy_health
    module), then no check passes any more (every member answers 503, as a
    plain check of an HTTPS API fails), HAProxy reloads with the saved
    state: clients still reach the primary. Once the checks resume, HAProxy
    follows them again."""
    listen = _free_port()
    proxy = _HAProxy(tmp_path, _config(tmp_path, listen, cluster))

    def checks(frozen):
        rows = admin.parse_servers_state(hs.ask(proxy.socket, "show servers state"))
        for command in admin.health_commands(rows, ["pg-test-primary"], frozen):
            assert hs.ask(proxy.socket, command).strip() == "", command

    try:
        proxy.settle(["pg-test-2", "pg-test-3"])
        checks(frozen=True)
        for member in cluster:
            member.status = 503
        # longer than fall (3) failed checks would take (inter 2 s, fastinter 1 s)
        time.sleep(6)
        assert set(_probe(listen, 1.0)) == {"pg-test-1"}
        proxy.reload(save=True)
        time.sleep(1)
        assert set(_probe(listen, 3.0)) == {"pg-test-1"}
        checks(frozen=False)
        proxy.settle(["pg-test-1", "pg-test-2", "pg-test-3"])
    finally:
        proxy.stop()
