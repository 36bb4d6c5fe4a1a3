#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Certificate expiry as node exporter textfile metrics.

No exporter of the stack reports when a certificate expires, so a systemd
timer runs this every ``exporters_cert_check_interval``: for each
certificate file it asks ``openssl x509 -noout -enddate -subject`` and
writes, atomically (temporary file, then rename), into the node exporter's
textfile directory:

  pigpen_cert_not_after_seconds{path, subject}  Unix time the certificate expires
  pigpen_cert_check_ok{path}                    1 when the file was read and parsed, else 0

The node exporter adds ``node_textfile_mtime_seconds`` for the file, which
tells when it was last written. The parsing is the pure function
``metrics`` (unit-tested).

    pigpen-cert-metrics --output /var/lib/prometheus/node-exporter/pigpen_certs.prom /pg/cert/server.crt /pg/cert/ca.crt

A certificate given with ``--if-present PATH`` is checked when the file
exists and left out otherwise (a certificate only some nodes hold, such as
pgBackRest's TLS server's); a missing certificate given as a plain path
is reported with ``pigpen_cert_check_ok`` 0.
"""

from __future__ import annotations

import argparse
import calendar
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

HELP = {
    "pigpen_cert_not_after_seconds": "Unix time at which the certificate expires (notAfter).",
    "pigpen_cert_check_ok": "1 when the certificate file was read and its dates parsed, else 0.",
}


def parse_openssl(text: str) -> Tuple[float, str]:
    """(notAfter as Unix time, subject) from ``openssl x509 -noout -enddate
    -subject`` output; raises ValueError when either is missing."""
    not_after: Optional[float] = None
    subject = ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        key = key.strip()
        if key == "notAfter":
            # e.g. "Nov 21 10:00:00 2036 GMT" (openssl prints GMT)
            parsed = time.strptime(" ".join(value.split()), "%b %d %H:%M:%S %Y GMT")
            not_after = float(calendar.timegm(parsed))
        elif key == "subject":
            subject = value.strip()
    if not_after is None:
        raise ValueError("no notAfter in openssl's output")
    return not_after, subject


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def metrics(paths: Sequence[str], read: Callable[[str], str]) -> str:
    """The textfile for ``paths``; ``read(path)`` returns openssl's output or
    raises (OSError, ValueError, subprocess.CalledProcessError)."""
    rows: Dict[str, List[str]] = {name: [] for name in HELP}
    for path in sorted(set(paths)):
        try:
            not_after, subject = parse_openssl(read(path))
        except (OSError, ValueError, subprocess.SubprocessError):
            rows["pigpen_cert_check_ok"].append('{path="%s"} 0' % _escape(path))
            continue
        rows["pigpen_cert_check_ok"].append('{path="%s"} 1' % _escape(path))
        rows["pigpen_cert_not_after_seconds"].append(
            '{path="%s",subject="%s"} %d' % (_escape(path), _escape(subject), not_after)
        )
    out = []
    for name, text in HELP.items():
        if not rows[name]:
            continue
        out.append("# HELP %s %s" % (name, text))
        out.append("# TYPE %s gauge" % name)
        out.extend(name + row for row in rows[name])
    return "\n".join(out) + "\n" if out else ""


def present(paths: Sequence[str], optional: Sequence[str], exists: Callable[[str], bool] = os.path.exists) -> List[str]:
    """The certificates to check: every one of ``paths``, and those of
    ``optional`` that ``exists``."""
    return list(paths) + [path for path in optional if exists(path)]


def openssl(path: str) -> str:
    proc = subprocess.run(
        ["openssl", "x509", "-noout", "-enddate", "-subject", "-nameopt", "RFC2253", "-in", path],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return proc.stdout


def write_atomic(path: str, text: str) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".pigpen_certs.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="Write certificate expiry metrics for the node exporter.")
    parser.add_argument("--output", required=True, help="the .prom file in the textfile directory")
    parser.add_argument(
        "--if-present",
        action="append",
        default=[],
        metavar="PATH",
        help="a certificate file checked only when it exists (repeatable)",
    )
    parser.add_argument("paths", nargs="*", help="certificate files (PEM)")
    args = parser.parse_args(argv)
    write_atomic(args.output, metrics(present(args.paths, args.if_present), openssl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
