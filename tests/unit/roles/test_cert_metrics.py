# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/exporters/files/cert_metrics.py: certificate expiry as node exporter
textfile metrics. The openssl output is Debian 12's OpenSSL 3.0 format; one
test runs the real openssl on a certificate made for it, when openssl is
installed."""

from __future__ import annotations

import calendar
import os
import shutil
import subprocess

import pytest
import role_files

SCRIPT = role_files.path("exporters", "cert_metrics.py")


cm = role_files.load("exporters", "cert_metrics.py", register=True)

# 2036-11-21 10:00:00 UTC
NOT_AFTER = calendar.timegm((2036, 11, 21, 10, 0, 0))


def test_parse_openssl():
    out = "notAfter=Nov 21 10:00:00 2036 GMT\nsubject=CN=pg-test-1\n"
    assert cm.parse_openssl(out) == (NOT_AFTER, "CN=pg-test-1")
    # a one-digit day is padded with a space
    assert cm.parse_openssl("notAfter=Jan  4 07:30:37 2027 GMT\n")[0] == calendar.timegm((2027, 1, 4, 7, 30, 37))
    for bad in ("", "subject=CN=x\n", "notAfter=tomorrow\n"):
        with pytest.raises(ValueError):
            cm.parse_openssl(bad)


def test_metrics_text():
    outputs = {
        "/pg/cert/server.crt": "notAfter=Nov 21 10:00:00 2036 GMT\nsubject=CN=pg-test-1\n",
        "/pg/cert/ca.crt": 'notAfter=Nov 21 10:00:00 2036 GMT\nsubject=CN=pigpen "ca"\n',
    }

    def read(path):
        if path not in outputs:
            raise OSError("no such file")
        return outputs[path]

    text = cm.metrics(["/pg/cert/server.crt", "/pg/cert/ca.crt", "/pg/cert/gone.crt"], read)
    assert text == (
        "# HELP pigpen_cert_not_after_seconds Unix time at which the certificate expires (notAfter).\n"
        "# TYPE pigpen_cert_not_after_seconds gauge\n"
        'pigpen_cert_not_after_seconds{path="/pg/cert/ca.crt",subject="CN=pigpen \\"ca\\""} %d\n'
        'pigpen_cert_not_after_seconds{path="/pg/cert/server.crt",subject="CN=pg-test-1"} %d\n'
        "# HELP pigpen_cert_check_ok 1 when the certificate file was read and its dates parsed, else 0.\n"
        "# TYPE pigpen_cert_check_ok gauge\n"
        'pigpen_cert_check_ok{path="/pg/cert/ca.crt"} 1\n'
        'pigpen_cert_check_ok{path="/pg/cert/gone.crt"} 0\n'
        'pigpen_cert_check_ok{path="/pg/cert/server.crt"} 1\n' % (NOT_AFTER, NOT_AFTER)
    )


def test_unreadable_only():
    def read(_):
        raise subprocess.CalledProcessError(1, "openssl")

    assert cm.metrics(["/x"], read) == (
        "# HELP pigpen_cert_check_ok 1 when the certificate file was read and its dates parsed, else 0.\n"
        "# TYPE pigpen_cert_check_ok gauge\n"
        'pigpen_cert_check_ok{path="/x"} 0\n'
    )


def test_present_keeps_plain_paths_and_existing_optional_ones():
    exists = {"/etc/pgbackrest/tls/node.crt"}.__contains__
    assert cm.present(["/pg/cert/server.crt"], ["/etc/pgbackrest/tls/node.crt", "/nope.crt"], exists) == [
        "/pg/cert/server.crt",
        "/etc/pgbackrest/tls/node.crt",
    ]
    # a plain path is kept even when it is missing: its check_ok 0 is the alert
    assert cm.present(["/gone.crt"], [], exists) == ["/gone.crt"]
    assert cm.present([], ["/nope.crt"], exists) == []


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl")
def test_main_with_real_openssl(tmp_path):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "30",
            "-subj",
            "/CN=pg-test-1",
        ],
        check=True,
        capture_output=True,
    )
    out = tmp_path / "pigpen_certs.prom"
    gone = tmp_path / "gone.crt"
    assert cm.main(["--output", str(out), str(cert), "--if-present", str(cert), "--if-present", str(gone)]) == 0
    text = out.read_text()
    assert 'pigpen_cert_check_ok{path="%s"} 1' % cert in text
    assert str(gone) not in text
    assert 'subject="CN=pg-test-1"' in text
    assert oct(out.stat().st_mode & 0o777) == "0o644"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".pigpen_certs.")]
