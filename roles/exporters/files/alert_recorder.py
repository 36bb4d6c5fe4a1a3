#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Alertmanager webhook recorder (Python standard library only).

Alertmanager POSTs every notification of the receiver ``pigpen-recorder``
here (firing and resolved); each one is appended to ``--file`` as one JSON
line: the notification as Alertmanager sent it, plus ``received_at`` (Unix
time, seconds, when it arrived). Nothing else is done with it.

It exists to prove that alerts arrive: the sandbox's fault scenarios
(tools/chaos) read the file and check which alerts were raised, how soon
after the fault, and that they cleared. ``GET /alerts`` returns the file
as it is (JSON lines), ``GET /-/healthy`` answers ``ok``.

The file is rotated to ``<file>.1`` when it grows beyond ``--max-bytes``.

    pigpen-alert-recorder --listen 10.10.10.10:9095 --file /var/lib/pigpen-alert-recorder/alerts.jsonl
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import sys
import threading
import time
from typing import Any, Optional, Tuple

#: largest request body accepted (Alertmanager's notifications are small)
MAX_BODY = 4 * 1024 * 1024


def record_line(body: bytes, received_at: float) -> str:
    """The JSON line for one notification; raises ValueError when ``body`` is
    not a JSON object (Alertmanager's webhook payload is one)."""
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the payload is not a JSON object")
    data["received_at"] = round(received_at, 3)
    return json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"


class Recorder:
    """Appends lines to a file, one writer at a time, rotating it past
    ``max_bytes``."""

    def __init__(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.lock = threading.Lock()

    def append(self, line: str) -> None:
        with self.lock:
            try:
                if os.path.getsize(self.path) + len(line) > self.max_bytes:
                    os.replace(self.path, self.path + ".1")
            except FileNotFoundError:
                pass
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())

    def read(self) -> bytes:
        with self.lock:
            try:
                with open(self.path, "rb") as handle:
                    return handle.read()
            except FileNotFoundError:
                return b""


def make_handler(recorder: Recorder, clock=time.time):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "pigpen-alert-recorder"

        def _send(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0 or length > MAX_BODY:
                self._send(400, b"expected a JSON body of at most %d bytes\n" % MAX_BODY)
                return
            body = self.rfile.read(length)
            try:
                line = record_line(body, clock())
            except ValueError as exc:
                self._send(400, ("not an Alertmanager notification: %s\n" % exc).encode())
                return
            recorder.append(line)
            self._send(200, b"recorded\n")

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/alerts":
                self._send(200, recorder.read(), "application/x-ndjson")
            elif self.path == "/-/healthy":
                self._send(200, b"ok\n")
            else:
                self._send(404, b"POST a notification to any path; GET /alerts or /-/healthy\n")

        def log_message(self, fmt: str, *args: Any) -> None:
            sys.stderr.write("%s %s\n" % (self.address_string(), fmt % args))

    return Handler


def split_listen(text: str) -> Tuple[str, int]:
    """``host:port`` (``[v6]:port``) -> (host, port)."""
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError("%r is not host:port" % text)
    return host.strip("[]"), int(port)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="Record Alertmanager webhook notifications as JSON lines.")
    parser.add_argument("--listen", type=split_listen, required=True, help="host:port to listen on")
    parser.add_argument("--file", required=True, help="JSON lines file to append to")
    parser.add_argument(
        "--max-bytes", type=int, default=64 * 1024 * 1024, help="rotate the file to <file>.1 beyond this size"
    )
    args = parser.parse_args(argv)
    host, port = args.listen
    server_class = http.server.ThreadingHTTPServer
    if ":" in host:
        import socket

        class V6Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = V6Server
    server = server_class((host, port), make_handler(Recorder(args.file, args.max_bytes)))
    print(
        "pigpen-alert-recorder: listening on %s:%d, recording to %s" % (host, port, args.file),
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
