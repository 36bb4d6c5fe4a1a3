#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Prometheus exporter for pgBackRest (Python standard library only).

Runs ``pgbackrest info --output=json`` in a background thread at most every
``--interval`` seconds and serves the last result, in the Prometheus text
exposition format, on ``GET /metrics``. A scrape never runs pgBackRest: it
reads the cached text, so a slow repository never slows Prometheus down
and many scrapers cost nothing.

The conversion of pgBackRest's JSON into metrics is the pure function
``metrics_from_info`` (unit-tested with real pgBackRest 2.45 output).

Metrics (labels ``stanza`` and, for backups, ``type`` = full|diff|incr):

  pgbackrest_scrape_ok                    1 when the last ``info`` ran and parsed
  pgbackrest_scrape_duration_seconds      how long the last ``info`` took
  pgbackrest_scrape_last_time_seconds     when it finished (Unix time)
  pgbackrest_stanza_status                pgBackRest's status code (0 = ok)
  pgbackrest_stanza_backup_running        1 while a backup holds the stanza lock
  pgbackrest_repo_status                  status code per repository (label repo)
  pgbackrest_backup_count                 backups in the repositories, by type
  pgbackrest_backup_last_time_seconds     end of the newest backup of that type
  pgbackrest_backup_last_duration_seconds its duration
  pgbackrest_backup_last_size_bytes       database size it covers
  pgbackrest_backup_last_delta_bytes      data it had to copy
  pgbackrest_backup_last_repo_size_bytes  its size in the repository
  pgbackrest_backup_last_repo_delta_bytes what it added to the repository
  pgbackrest_backup_last_error            1 when it reported page checksum errors

The identity labels (cls, ins, ip, job) are attached by Prometheus from the
scrape target, not here.
"""

from __future__ import annotations

import argparse
import http.server
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

BACKUP_TYPES = ("full", "diff", "incr")

#: name -> (type, help), in output order.
METRICS: Dict[str, Tuple[str, str]] = {
    "pgbackrest_scrape_ok": ("gauge", "1 when the last pgbackrest info ran and its output parsed, else 0."),
    "pgbackrest_scrape_duration_seconds": ("gauge", "Duration of the last pgbackrest info."),
    "pgbackrest_scrape_last_time_seconds": ("gauge", "Unix time at which the last pgbackrest info finished."),
    "pgbackrest_stanza_status": (
        "gauge",
        "pgBackRest status code of the stanza: 0 ok, 1 missing stanza path, "
        "2 no valid backups, 3 missing stanza data, 4 different cipher, "
        "5 database mismatch, 6 backup/expire running, 99 other.",
    ),
    "pgbackrest_stanza_backup_running": ("gauge", "1 while a backup holds the stanza's backup lock."),
    "pgbackrest_repo_status": ("gauge", "pgBackRest status code of the stanza in one repository (0 ok)."),
    "pgbackrest_backup_count": ("gauge", "Number of backups of the stanza, by type."),
    "pgbackrest_backup_last_time_seconds": ("gauge", "Unix time at which the newest backup of this type finished."),
    "pgbackrest_backup_last_duration_seconds": ("gauge", "Duration of the newest backup of this type."),
    "pgbackrest_backup_last_size_bytes": ("gauge", "Database size covered by the newest backup of this type."),
    "pgbackrest_backup_last_delta_bytes": ("gauge", "Bytes the newest backup of this type had to copy."),
    "pgbackrest_backup_last_repo_size_bytes": (
        "gauge",
        "Repository size of the newest backup of this type (compressed).",
    ),
    "pgbackrest_backup_last_repo_delta_bytes": (
        "gauge",
        "Bytes the newest backup of this type added to the repository.",
    ),
    "pgbackrest_backup_last_error": ("gauge", "1 when the newest backup of this type reported page checksum errors."),
}

Sample = Tuple[str, Dict[str, str], float]


class InfoError(ValueError):
    """pgBackRest's output is not what ``info --output=json`` prints."""


# ------------------------------------------------------------------ parsing


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def info_samples(data: Any) -> List[Sample]:
    """Samples of the stanzas in parsed ``pgbackrest info --output=json``.

    Raises InfoError when ``data`` is not a list of stanza objects.
    """
    if not isinstance(data, list):
        raise InfoError("expected a JSON list of stanzas, got %s" % type(data).__name__)
    out: List[Sample] = []
    for stanza in data:
        if not isinstance(stanza, dict) or not isinstance(stanza.get("name"), str):
            raise InfoError("a stanza entry has no name: %r" % (stanza,))
        name = stanza["name"]
        code = _number(_get(stanza, "status", "code"))
        out.append(("pgbackrest_stanza_status", {"stanza": name}, 99.0 if code is None else code))
        held = _get(stanza, "status", "lock", "backup", "held")
        out.append(("pgbackrest_stanza_backup_running", {"stanza": name}, 1.0 if held is True else 0.0))
        for repo in stanza.get("repo") or []:
            key = _get(repo, "key")
            rcode = _number(_get(repo, "status", "code"))
            if key is None or rcode is None:
                continue
            out.append(("pgbackrest_repo_status", {"stanza": name, "repo": str(key)}, rcode))
        backups = [b for b in stanza.get("backup") or [] if isinstance(b, dict)]
        for btype in BACKUP_TYPES:
            of_type = [b for b in backups if b.get("type") == btype]
            labels = {"stanza": name, "type": btype}
            out.append(("pgbackrest_backup_count", labels, float(len(of_type))))
            if not of_type:
                continue
            # newest = the one that finished last (labels sort the same way,
            # but the timestamp is what the metric reports)
            last = max(of_type, key=lambda b: _number(_get(b, "timestamp", "stop")) or 0.0)
            start = _number(_get(last, "timestamp", "start"))
            stop = _number(_get(last, "timestamp", "stop"))
            values = (
                ("pgbackrest_backup_last_time_seconds", stop),
                (
                    "pgbackrest_backup_last_duration_seconds",
                    stop - start if start is not None and stop is not None else None,
                ),
                ("pgbackrest_backup_last_size_bytes", _number(_get(last, "info", "size"))),
                ("pgbackrest_backup_last_delta_bytes", _number(_get(last, "info", "delta"))),
                ("pgbackrest_backup_last_repo_size_bytes", _number(_get(last, "info", "repository", "size"))),
                ("pgbackrest_backup_last_repo_delta_bytes", _number(_get(last, "info", "repository", "delta"))),
                ("pgbackrest_backup_last_error", 1.0 if last.get("error") is True else 0.0),
            )
            for metric, value in values:
                if value is not None:
                    out.append((metric, dict(labels), value))
    return out


# --------------------------------------------------------------- exposition


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_value(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def exposition(samples: Iterable[Sample]) -> str:
    """Prometheus text format (version 0.0.4): HELP and TYPE once per metric
    (in the order of METRICS), samples sorted by labels: deterministic."""
    by_name: Dict[str, List[Sample]] = {}
    for sample in samples:
        if sample[0] not in METRICS:
            raise KeyError("unknown metric %s" % sample[0])
        by_name.setdefault(sample[0], []).append(sample)
    lines: List[str] = []
    for name, (kind, text) in METRICS.items():
        rows = by_name.get(name)
        if not rows:
            continue
        lines.append("# HELP %s %s" % (name, text))
        lines.append("# TYPE %s %s" % (name, kind))
        for _, labels, value in sorted(rows, key=lambda s: sorted(s[1].items())):
            if labels:
                body = ",".join('%s="%s"' % (k, _escape(str(v))) for k, v in sorted(labels.items()))
                lines.append("%s{%s} %s" % (name, body, _format_value(value)))
            else:
                lines.append("%s %s" % (name, _format_value(value)))
    return "\n".join(lines) + "\n"


def metrics_from_info(raw: Optional[str], *, duration: Optional[float] = None, finished: Optional[float] = None) -> str:
    """Exposition text for one run of ``pgbackrest info --output=json``.

    ``raw`` is its standard output, or None when the command failed. Output
    that does not parse gives ``pgbackrest_scrape_ok 0`` and no stanza
    metrics (stale backup figures would hide the failure).
    """
    samples: List[Sample] = []
    ok = 0.0
    if raw is not None:
        try:
            samples = info_samples(json.loads(raw))
            ok = 1.0
        except (ValueError, InfoError):
            samples = []
    samples.append(("pgbackrest_scrape_ok", {}, ok))
    if duration is not None:
        samples.append(("pgbackrest_scrape_duration_seconds", {}, round(duration, 3)))
    if finished is not None:
        samples.append(("pgbackrest_scrape_last_time_seconds", {}, float(int(finished))))
    return exposition(samples)


# ------------------------------------------------------------------ service


class Collector:
    """Runs pgBackRest and keeps the last exposition text."""

    def __init__(self, command: Sequence[str], timeout: float) -> None:
        self.command = list(command)
        self.timeout = timeout
        self._text = metrics_from_info(None)
        self._lock = threading.Lock()

    @property
    def text(self) -> str:
        with self._lock:
            return self._text

    def refresh(self) -> None:
        started = time.monotonic()
        raw: Optional[str] = None
        try:
            done = subprocess.run(self.command, capture_output=True, text=True, timeout=self.timeout, check=False)
            if done.returncode == 0:
                raw = done.stdout
            else:
                logging.warning(
                    "%s exited with %d: %s", " ".join(self.command), done.returncode, done.stderr.strip()[:500]
                )
        except (OSError, subprocess.TimeoutExpired) as exc:
            logging.warning("%s failed: %s", " ".join(self.command), exc)
        text = metrics_from_info(raw, duration=time.monotonic() - started, finished=time.time())
        with self._lock:
            self._text = text

    def run_forever(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            self.refresh()
            stop.wait(interval)


def make_handler(collector: Collector):
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "pgbackrest_exporter"

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path.split("?")[0] == "/metrics":
                body = collector.text.encode("utf-8")
                ctype = "text/plain; version=0.0.4; charset=utf-8"
                status = 200
            elif self.path == "/":
                body = b"<html><body><a href=\"/metrics\">metrics</a></body></html>\n"
                ctype = "text/html"
                status = 200
            else:
                body = b"not found\n"
                ctype = "text/plain"
                status = 404
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *args):  # scrapes are not worth a log line
            return

    return Handler


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default=":9854", help="address:port to serve /metrics on (default :9854)")
    parser.add_argument(
        "--interval", type=float, default=120.0, help="seconds between two runs of pgbackrest info (default 120)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds after which pgbackrest info is abandoned (default 60)"
    )
    parser.add_argument("--stanza", default=None, help="report this stanza only (default: every stanza of the config)")
    parser.add_argument(
        "--pgbackrest", default="pgbackrest", help="the pgbackrest program (default: pgbackrest from PATH)"
    )
    parser.add_argument("--config", default=None, help="pgbackrest.conf to use")
    args = parser.parse_args(argv)
    if args.interval <= 0 or args.timeout <= 0:
        parser.error("--interval and --timeout must be positive")
    return args


def command_of(args: argparse.Namespace) -> List[str]:
    cmd = [args.pgbackrest]
    if args.config:
        cmd.append("--config=%s" % args.config)
    if args.stanza:
        cmd.append("--stanza=%s" % args.stanza)
    cmd += ["--output=json", "info"]
    return cmd


def listen_address(text: str) -> Tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``:port`` (every IPv4 interface)."""
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class _Server6(http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET6


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    host, port = listen_address(args.listen)
    collector = Collector(command_of(args), args.timeout)
    stop = threading.Event()
    worker = threading.Thread(
        target=collector.run_forever, args=(args.interval, stop), name="pgbackrest-info", daemon=True
    )
    worker.start()
    server_class = _Server6 if ":" in host else http.server.ThreadingHTTPServer
    server = server_class((host, port), make_handler(collector))
    logging.info("serving pgBackRest metrics on %s, refreshed every %gs", args.listen, args.interval)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
