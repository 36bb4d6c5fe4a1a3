# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""module_utils/pki.py and the pg_ca_check module: one CA per deployment,
refused before anything is signed when the controller's CA is not the one
the nodes trust; the names a member's server certificate carries."""

from __future__ import annotations

import base64
import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import pki, plan, validate
from ansible_collections.pigpen.pgsql.plugins.modules import pg_ca_check as mod
from inv import build, pg_test, sandbox


def make_ca(name="test CA"):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def key_pem(key, passphrase=None):
    enc = serialization.BestAvailableEncryption(passphrase.encode()) if passphrase else serialization.NoEncryption()
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


@pytest.fixture(scope="module")
def two_cas():
    return make_ca("A"), make_ca("B")


# ------------------------------------------------------------ fingerprints


def test_fingerprint_is_sha256_of_the_der(two_cas):
    (_, cert), _ = two_cas
    der = cert.public_bytes(serialization.Encoding.DER)
    want = hashlib.sha256(der).hexdigest().upper()
    fp = pki.fingerprint(cert_pem(cert))
    assert fp.replace(":", "") == want
    assert len(fp) == 95  # 32 bytes, colon-separated
    # a bundle: the first certificate counts
    assert pki.fingerprint(cert_pem(cert) + cert_pem(two_cas[1][1])) == fp


@pytest.mark.parametrize("text", [None, "", "garbage", "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----"])
def test_no_fingerprint_without_a_certificate(text):
    assert pki.fingerprint(text) is None


@given(st.text(max_size=200))
def test_fingerprint_never_raises(text):
    assert pki.fingerprint(text) is None or len(pki.fingerprint(text)) == 95


def test_key_encrypted(two_cas):
    (key, _), _ = two_cas
    assert pki.key_encrypted(key_pem(key, "s3cret").decode())
    assert not pki.key_encrypted(key_pem(key).decode())
    assert pki.key_encrypted("-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n")
    assert not pki.key_encrypted(None)


# ------------------------------------------------------------ ca_problems


def test_fresh_deployment_and_matching_nodes_pass(two_cas):
    (_, a), _ = two_cas
    assert pki.ca_problems("/pki", None, "missing", {"h1": None, "h2": None}) == []
    assert pki.ca_problems("/pki", cert_pem(a), "ok", {"h1": cert_pem(a), "h2": None}) == []
    assert pki.ca_problems("/pki", cert_pem(a), "plain", {}) == []


def test_a_controller_without_the_ca_refuses_nodes_that_have_one(two_cas):
    (_, a), _ = two_cas
    out = pki.ca_problems(
        "/home/x/pki", None, "missing", {"h2": cert_pem(a), "h1": cert_pem(a), "h3": None}, {"h1": "pg-test"}
    )
    assert len(out) == 1
    assert out[0].startswith(
        "no CA in postgres_pki_dir /home/x/pki on this controller, but h1 (pg-test), h2 already hold"
    )
    assert pki.fingerprint(cert_pem(a))[:23] in out[0]
    assert out[0].endswith("nothing was changed")


def test_nodes_trusting_another_ca_are_refused(two_cas):
    (_, a), (_, b) = two_cas
    out = pki.ca_problems("/pki", cert_pem(a), "ok", {"h1": cert_pem(a), "h2": cert_pem(b), "h3": cert_pem(b)})
    assert len(out) == 1
    assert out[0].startswith(
        "h2, h3 trust CA %s, not the CA in postgres_pki_dir /pki (%s)"
        % (pki.fingerprint(cert_pem(b))[:23], pki.fingerprint(cert_pem(a))[:23])
    )


@pytest.mark.parametrize(
    "state, words",
    [
        ("missing", "is there but not its key ca.key"),
        ("encrypted-no-passphrase", "is encrypted but pg_ca_passphrase is empty"),
        ("wrong-passphrase", "pg_ca_passphrase does not open the CA key /pki/ca.key"),
        ("unreadable", "is not a PEM private key"),
    ],
)
def test_key_problems(two_cas, state, words):
    (_, a), _ = two_cas
    out = pki.ca_problems("/pki", cert_pem(a), state, {})
    assert len(out) == 1 and words in out[0]


def test_a_ca_file_without_a_certificate_is_refused():
    out = pki.ca_problems("/pki", "not a cert", "ok", {})
    assert out == [
        "/pki/ca.crt holds no PEM certificate: restore the deployment's CA there, or set postgres_pki_dir "
        "to where it is; nothing was changed"
    ]


# ------------------------------------------------------------ the module


def write_ca(tmp_path, key, cert, passphrase=None):
    (tmp_path / "ca.crt").write_text(cert_pem(cert))
    (tmp_path / "ca.key").write_bytes(key_pem(key, passphrase))


def slurped(cert):
    return {"content": base64.b64encode(cert_pem(cert).encode()).decode(), "encoding": "base64", "changed": False}


NOT_THERE = {"failed": True, "msg": "file not found: /pg/cert/ca.crt"}


@pytest.mark.parametrize(
    "stored, given_, state",
    [
        ("s3cret", "s3cret", "ok"),
        ("s3cret", "", "encrypted-no-passphrase"),
        ("s3cret", "wrong", "wrong-passphrase"),
        (None, "s3cret", "plain"),  # encrypted on the next run
        (None, "", "plain"),
    ],
)
def test_module_key_states(tmp_path, two_cas, stored, given_, state):
    (key, cert), _ = two_cas
    write_ca(tmp_path, key, cert, stored)
    out = mod.check(str(tmp_path), given_, {"h1": NOT_THERE}, {})
    assert out["key_state"] == state
    assert out["ca_exists"] is True
    assert out["ca_fingerprint"] == pki.fingerprint(cert_pem(cert))
    assert bool(out["problems"]) == (state not in ("ok", "plain"))


def test_module_reads_slurp_results(tmp_path, two_cas):
    (key, a), (_, b) = two_cas
    write_ca(tmp_path, key, a, "p")
    nodes = {"h1": slurped(a), "h2": NOT_THERE, "h3": {"skipped": True}, "h4": slurped(b)}
    out = mod.check(str(tmp_path), "p", nodes, {"h4": "pg-test"})
    assert len(out["problems"]) == 1 and out["problems"][0].startswith("h4 (pg-test) trust CA")
    broken = {"h1": {"failed": True, "msg": "Permission denied"}}
    out = mod.check(str(tmp_path), "p", broken, {})
    assert out["problems"] == [
        "could not read the CA certificate h1 trusts (Permission denied): fix the node, or leave it out "
        "with --limit; nothing was changed"
    ]


def test_module_without_a_ca(tmp_path, two_cas):
    (_, a), _ = two_cas
    out = mod.check(str(tmp_path), "p", {"h1": NOT_THERE}, {})
    assert out == {"ca_exists": False, "ca_fingerprint": None, "key_state": "missing", "problems": []}
    out = mod.check(str(tmp_path), "p", {"h1": slurped(a)}, {})
    assert out["problems"][0].startswith("no CA in postgres_pki_dir")


# ------------------------------------------------------------ server names


def test_server_names_of_a_sandbox_member():
    hv, groups = sandbox()
    got = plan.instance_plan(model_mod.load(hv, groups), "10.10.10.11")["certificate"]
    assert got == {
        "common_name": "pg-test-1",
        "subject_alt_name": [
            "DNS:pg-test-1",
            "DNS:pg-test",
            "DNS:localhost",
            "IP:10.10.10.11",
            "IP:10.10.10.3",
            "IP:127.0.0.1",
        ],
    }


def test_server_names_table():
    assert pki.server_names("pg-a-1", "pg-a", "db1.example.com", "10.0.0.5/24", ".db.example.com", "node-a1") == {
        "common_name": "pg-a-1",
        "subject_alt_name": [
            "DNS:pg-a-1",
            "DNS:node-a1",
            "DNS:pg-a",
            "DNS:pg-a.db.example.com",
            "DNS:localhost",
            "DNS:db1.example.com",
            "IP:10.0.0.5",
            "IP:127.0.0.1",
        ],
    }
    # no VIP, the node name is the instance name, IPv6 address normalised
    assert pki.server_names("pg-a-1", "pg-a", "fd00::0001", None, None, "pg-a-1")["subject_alt_name"] == [
        "DNS:pg-a-1",
        "DNS:pg-a",
        "DNS:localhost",
        "IP:fd00::1",
        "IP:127.0.0.1",
    ]


@given(st.lists(st.sampled_from(["a", "b", "10.0.0.1", "10.0.0.1/24", "", None, "localhost"]), min_size=5, max_size=5))
def test_server_names_are_unique_and_name_the_instance(values):
    out = pki.server_names("inst", *values)
    sans = out["subject_alt_name"]
    assert len(sans) == len(set(sans))
    assert sans[0] == "DNS:inst" and "IP:127.0.0.1" in sans and "DNS:localhost" in sans
    assert all(s.startswith(("DNS:", "IP:")) and "/" not in s for s in sans)


# ------------------------------------------------------------ validation


def test_one_passphrase_per_deployment():
    hv, groups = build(pg_test(pg_ca_passphrase="one"))
    hv["10.10.10.13"]["pg_ca_passphrase"] = "two"
    found = validate.problems(model_mod.load(hv, groups))
    ours = [p for p in found if p.field == "pg_ca_passphrase"]
    assert len(ours) == 1
    assert ours[0].host == "10.10.10.13" and ours[0].value == "(hidden)"
    assert "differs from the value of 10.10.10.11" in ours[0].what
    hv["10.10.10.13"]["pg_ca_passphrase"] = 42
    ours = [p for p in validate.problems(model_mod.load(hv, groups)) if p.field == "pg_ca_passphrase"]
    assert [p.what for p in ours] == ["is not a string"]


# ------------------------------------------------------------ renewal


@pytest.mark.parametrize(
    "info, renew_all, want",
    [
        ({"valid_at": {"renew": True}}, False, False),  # valid past the window
        ({"valid_at": {"renew": False}}, False, True),  # expires within it
        ({"valid_at": {"renew": True}}, True, True),  # renew every one
        ({"failed": True, "msg": "does not exist"}, False, False),  # a new node: created anyway
        ({"changed": False, "msg": "does not exist"}, False, False),  # failed_when: false
        ({"skipped": True}, False, False),
        (None, False, False),
        ({"valid_at": {"renew": False}}, "true", True),  # a string is not renew_all...
        ({"valid_at": {"renew": True}}, "true", False),  # ...the window still counts
    ],
)
def test_needs_renewal(info, renew_all, want):
    assert pki.needs_renewal(info, renew_all) is want
