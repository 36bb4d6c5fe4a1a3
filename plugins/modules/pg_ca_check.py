#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Check the controller's CA against the certificates the nodes already trust."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_ca_check
short_description: Refuse a CA that is not the one the nodes already trust, before anything is signed
version_added: 0.1.0
description:
  - Runs on the controller (delegate it to C(localhost)). Reads the deployment's CA in O(pki_dir) (C(ca.crt) and
    C(ca.key)) and compares it with the CA certificates installed on the targeted nodes (O(node_cas)).
  - Fails, naming the hosts and the fix, when the controller has no CA but nodes already hold certificates of one
    (a second controller would otherwise mint a new CA and re-issue every certificate), when the nodes trust
    another CA than the controller's, when the CA's key is missing, or when O(passphrase) does not open it.
    Nothing is changed either way.
  - The decisions are C(pki.ca_problems) in the collection's module_utils (unit tested); this module only reads the
    files. The key itself is never returned.
author:
  - pigpen.pgsql contributors !UNKNOWN
options:
  pki_dir:
    description: The controller's CA directory (the postgres role's C(postgres_pki_dir)).
    type: path
    required: true
  passphrase:
    description: The CA key's passphrase (C(pg_ca_passphrase)); empty for a key that is not encrypted.
    type: str
    default: ""
  node_cas:
    description:
      - Per host, the CA certificate installed on it - its PEM text, null when it has none, or what
        C(ansible.builtin.slurp) of the file returned (a failure that says the file is not there counts as none; a
        skipped read leaves the host out).
    type: dict
    default: {}
  clusters:
    description: Per host, its cluster's name (for the messages).
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    support: full
    platforms: posix
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Check the deployment's CA against the nodes
  pigpen.pgsql.pg_ca_check:
    pki_dir: "{{ postgres_pki_dir }}"
    passphrase: "{{ postgres_ca_passphrase }}"
    node_cas: "{{ {'10.10.10.11': none, '10.10.10.12': lookup('file', 'ca-of-12.crt')} }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
ca_exists:
  description: Whether O(pki_dir) holds a CA certificate.
  returned: always
  type: bool
ca_fingerprint:
  description: SHA-256 fingerprint of the controller's CA certificate, or null.
  returned: always
  type: str
key_state:
  description: >-
    C(missing), C(ok) (the passphrase opens it), C(plain) (not encrypted), C(encrypted-no-passphrase),
    C(wrong-passphrase) or C(unreadable).
  returned: always
  type: str
problems:
  description: Why the CA cannot be used, one sentence each; empty when it can.
  returned: always
  type: list
  elements: str
"""

import base64
import binascii
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils.pki import (
    ca_problems,
    fingerprint,
    key_encrypted,
)

try:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
except ImportError:  # pragma: no cover - community.crypto needs it on the controller anyway
    load_pem_private_key = None  # type: ignore[assignment]


def _read(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as handle:
        return handle.read()


def key_state(data, passphrase):
    """What the CA key is, from its bytes (None: absent)."""
    if data is None:
        return "missing"
    text = data.decode("ascii", "replace")
    encrypted = key_encrypted(text)
    if encrypted and not passphrase:
        return "encrypted-no-passphrase"
    if load_pem_private_key is None:
        return "ok" if encrypted else "plain"
    try:
        load_pem_private_key(data, passphrase.encode() if encrypted else None)
    except (TypeError, ValueError):
        return "wrong-passphrase" if encrypted else "unreadable"
    return "ok" if encrypted else "plain"


def node_texts(node_cas):
    """Per host, the PEM text of its CA (None: it has none), and the hosts
    whose file could not be read (with the reason)."""
    texts, unread = {}, {}
    for host, value in (node_cas or {}).items():
        if value is None or isinstance(value, str):
            texts[host] = value
        elif isinstance(value, dict) and value.get("skipped"):
            continue
        elif isinstance(value, dict) and "content" in value:
            try:
                texts[host] = base64.b64decode(value["content"]).decode("ascii", "replace")
            except (binascii.Error, ValueError, TypeError):
                unread[host] = "not base64"
        elif isinstance(value, dict) and "not found" in str(value.get("msg", "")).lower():
            texts[host] = None
        else:
            unread[host] = str(value.get("msg", value) if isinstance(value, dict) else value)[:200]
    return texts, unread


def check(pki_dir, passphrase, node_cas, clusters):
    """The module's result, without AnsibleModule (for the tests)."""
    texts, unread = node_texts(node_cas)
    cert = _read(os.path.join(pki_dir, "ca.crt"))
    cert_text = cert.decode("ascii", "replace") if cert is not None else None
    state = key_state(_read(os.path.join(pki_dir, "ca.key")), passphrase) if cert is not None else "missing"
    problems = [
        "could not read the CA certificate %s trusts (%s): fix the node, or leave it out with --limit; "
        "nothing was changed" % (host, why)
        for host, why in sorted(unread.items())
    ] + ca_problems(pki_dir, cert_text, state, texts, clusters)
    return {
        "ca_exists": cert is not None,
        "ca_fingerprint": fingerprint(cert_text),
        "key_state": state,
        "problems": problems,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            "pki_dir": {"type": "path", "required": True},
            "passphrase": {"type": "str", "default": "", "no_log": True},
            "node_cas": {"type": "dict", "default": {}},
            "clusters": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    p = module.params
    result = check(p["pki_dir"], p["passphrase"] or "", p["node_cas"], p["clusters"])
    if result["problems"]:
        module.fail_json(msg="; ".join(result["problems"]), **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
