# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Shared by the integration tests: a stand-in for the deployment's CA on
this machine, for programs that read the rendered files and load the CA
they name (haproxy -c loads every ca-file of check-ssl; VictoriaMetrics
loads the tls_config's ca_file of the patroni job)."""

from __future__ import annotations

import datetime
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@pytest.fixture(scope="session")
def stand_in_ca(tmp_path_factory):
    """A self-signed CA certificate (PEM) in a temporary file."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pigpen test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("ca") / "ca.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def with_ca(text: str, ca: str) -> str:
    """``text`` (an HAProxy fragment, a scrape configuration) with every CA
    path it names replaced by ``ca``."""
    text = re.sub(r"(\bca-file) \S+", r"\1 " + ca, text)
    return re.sub(r"(\bca_file:) \S+", r"\1 " + ca, text)
