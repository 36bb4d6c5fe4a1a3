# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The deployment's certificate authority, and the names a member's
certificate carries.

One CA signs every certificate of a deployment (PostgreSQL's server
certificates, pgBackRest's TLS certificates); members verify each other
against it. It lives on the controller, in ``postgres_pki_dir``: a
certificate (``ca.crt``) and a private key (``ca.key``) encrypted with
``pg_ca_passphrase``.

Two mistakes would break every verified connection of a running
deployment at once, and both are refused here before anything changes:

* a controller that does not have the CA (another admin's machine, a fresh
  checkout) minting a new one, and re-issuing the certificates of members
  that already trust the old one;
* a controller whose CA is not the one the members trust.

:func:`ca_problems` says so from what the controller and the nodes hold;
the ``pg_ca_check`` module gathers that. :func:`server_names` lists the
names and addresses a member's server certificate carries, so that
``verify-full`` works for every way clients reach it: its address, its
instance name, its cluster's name and the VIP. Nothing here imports
Ansible.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END CERTIFICATE-----")

#: What the CA check may find wrong with the key; the words of its problems.
KEY_STATES = ("missing", "encrypted-no-passphrase", "wrong-passphrase", "unreadable", "ok", "plain")


def fingerprint(pem: Optional[str]) -> Optional[str]:
    """SHA-256 fingerprint (``AB:CD:...``) of the first certificate of a PEM
    text; None when there is none."""
    match = _PEM_CERT.search(pem or "")
    if not match:
        return None
    try:
        der = base64.b64decode("".join(match.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def key_encrypted(pem: Optional[str]) -> bool:
    """Whether a PEM private key is encrypted (PKCS#8 ``ENCRYPTED PRIVATE
    KEY``, or the traditional format's ``Proc-Type: 4,ENCRYPTED``)."""
    text = pem or ""
    return "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text or "Proc-Type: 4,ENCRYPTED" in text


def _short(fp: Optional[str]) -> str:
    return (fp or "?")[:23]


def ca_problems(
    pki_dir: str,
    controller_ca: Optional[str],
    key_state: str,
    node_cas: Mapping[str, Optional[str]],
    clusters: Optional[Mapping[str, str]] = None,
) -> List[str]:
    """What stops the deployment's CA from being used (or created) for the
    targeted nodes, one sentence each, naming the hosts and the fix.

    ``controller_ca``: the PEM text of ``pki_dir``/ca.crt on the controller
    (None: absent). ``key_state``: one of :data:`KEY_STATES`, what the
    controller's key is (``missing`` when there is no ``ca.key``).
    ``node_cas``: per host, the PEM text of the CA certificate installed on
    it (None: none installed, a new node). ``clusters``: per host, its
    cluster, for the message."""
    clusters = clusters or {}
    trusted: Dict[str, List[str]] = {}
    for host in sorted(node_cas):
        fp = fingerprint(node_cas[host])
        if fp is not None:
            trusted.setdefault(fp, []).append(host)

    def where(hosts: Sequence[str]) -> str:
        return ", ".join("%s (%s)" % (h, clusters[h]) if clusters.get(h) else h for h in hosts)

    out: List[str] = []
    mine = fingerprint(controller_ca)
    if controller_ca is None or mine is None:
        if trusted:
            hosts = [h for hs in trusted.values() for h in hs]
            out.append(
                "no CA in postgres_pki_dir %s on this controller, but %s already hold certificates "
                "of CA %s: a new CA would re-issue them and break the verified connections between "
                "members. Copy that deployment's CA (ca.crt and ca.key) into %s, or set "
                "postgres_pki_dir to where it is; nothing was changed"
                % (pki_dir, where(sorted(hosts)), ", ".join(_short(f) for f in sorted(trusted)), pki_dir)
            )
        elif controller_ca is not None:
            out.append(
                "%s/ca.crt holds no PEM certificate: restore the deployment's CA there, or set "
                "postgres_pki_dir to where it is; nothing was changed" % pki_dir
            )
        return out
    others = {fp: hosts for fp, hosts in trusted.items() if fp != mine}
    for fp in sorted(others):
        out.append(
            "%s trust CA %s, not the CA in postgres_pki_dir %s (%s): this controller would "
            "re-issue their certificates from another CA. Use the CA that signed them "
            "(set postgres_pki_dir to its directory); nothing was changed"
            % (where(others[fp]), _short(fp), pki_dir, _short(mine))
        )
    if key_state == "missing":
        out.append(
            "%s/ca.crt is there but not its key ca.key: nothing can be signed. Copy the CA's key "
            "next to it; nothing was changed" % pki_dir
        )
    elif key_state == "encrypted-no-passphrase":
        out.append(
            "the CA key %s/ca.key is encrypted but pg_ca_passphrase is empty: set it (e.g. in an "
            "ansible-vault file); nothing was changed" % pki_dir
        )
    elif key_state == "wrong-passphrase":
        out.append(
            "pg_ca_passphrase does not open the CA key %s/ca.key: set the passphrase it was "
            "encrypted with; nothing was changed" % pki_dir
        )
    elif key_state == "unreadable":
        out.append("the CA key %s/ca.key is not a PEM private key: restore it; nothing was changed" % pki_dir)
    return out


def server_names(
    instance: str,
    cluster: Optional[str],
    address: Optional[str],
    vip: Optional[str] = None,
    dns_suffix: Any = "",
    nodename: Optional[str] = None,
) -> Dict[str, Any]:
    """The subject and alternative names of a member's server certificate:
    its instance name, its node name, its cluster's name (with
    ``pg_dns_suffix`` too, as the cluster DNS serves it), ``localhost``, its
    address, the VIP (without its prefix length) and 127.0.0.1, each once,
    names first."""
    names: List[str] = []
    ips: List[str] = []

    def add(value: Any) -> None:
        if value in (None, ""):
            return
        text = str(value).split("/", maxsplit=1)[0]
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            if text not in names:
                names.append(text)
            return
        if ip not in ips:
            ips.append(ip)

    add(instance)
    add(nodename)
    if cluster:
        add(cluster)
        if isinstance(dns_suffix, str) and dns_suffix:
            add(cluster + dns_suffix)
    add("localhost")
    add(address)
    add(vip)
    add("127.0.0.1")
    return {
        "common_name": instance,
        "subject_alt_name": ["DNS:%s" % n for n in names] + ["IP:%s" % i for i in ips],
    }


def needs_renewal(info: Any, renew_all: Any = False) -> bool:
    """Whether a node certificate is re-issued now although its names did
    not change: all of them were asked for (``renew_all``), or what
    ``community.crypto.x509_certificate_info`` read of it (with ``valid_at:
    {renew: +<days>d}``) says it is no longer valid then (it expires within
    the renewal window, or has expired). A certificate that could not be
    read (none yet) is not renewed: it is created anyway."""
    if renew_all is True:
        return True
    if not isinstance(info, Mapping) or info.get("failed") or info.get("skipped"):
        return False
    valid = info.get("valid_at")
    return isinstance(valid, Mapping) and valid.get("renew") is False
