# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""etcd's transport security, and the rolling move of a running cluster
from plain HTTP to TLS.

A member's settings file (``/etc/default/etcd``, written by the etcd role)
puts it in one of four modes:

``plain``
    peers and clients over plain HTTP (before TLS existed, or
    ``etcd_tls_enabled: false``);
``armed``
    peers still over plain HTTP, but the member holds its certificate and
    dials peers that moved to HTTPS with it; the client port answers HTTPS
    and plain HTTP (etcd tells the two apart on one port) and advertises
    plain HTTP;
``bridge``
    peers over HTTPS with certificate authentication, the client port as in
    ``armed`` (``etcd_tls_allow_plain``: clients move over in their own time);
``tls``
    peers and clients over HTTPS only (the default of a new cluster).

The move from ``plain`` keeps the quorum: first every member is armed, one
restart at a time (no URL changes); then each member in turn gets its peer
listener on HTTPS and its advertised peer URL updated, so only that member
is out of reach of the others for the length of its restart, and every
other member can already dial it. Clients (Patroni, pg-vip) move while the
client port answers both (``bridge``); closing plain HTTP (``tls``) is a
rolling restart. Back to plain HTTP is not a move etcd.yml makes.

    mode_of(env_text)                          -> "plain" | "armed" | "bridge" | "tls" | None
    desired_mode(tls_enabled, allow_plain)     -> mode
    tls_plan(env_texts, desired, cluster, members) -> {"problem", "arm", "move_peers", "modes"}
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

MODES = ("plain", "armed", "bridge", "tls")


def _settings(text: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip().strip("'\"")
    return out


def _schemes(urls: str) -> List[str]:
    return sorted({u.split("://", 1)[0].lower() for u in urls.split(",") if "://" in u})


def mode_of(env_text: Optional[str]) -> Optional[str]:
    """The mode a member's settings file sets; None without a file (or
    without the URL settings: not a file the role wrote)."""
    if not env_text:
        return None
    s = _settings(env_text)
    peer, client = s.get("ETCD_LISTEN_PEER_URLS"), s.get("ETCD_LISTEN_CLIENT_URLS")
    if not peer or not client:
        return None
    clients = _schemes(client)
    if _schemes(peer) == ["https"]:
        return "tls" if clients == ["https"] else "bridge"
    if "https" in clients or s.get("ETCD_PEER_CERT_FILE"):
        return "armed"
    return "plain"


def desired_mode(tls_enabled: Any, allow_plain: Any = False) -> str:
    """The mode the inventory asks for: ``etcd_tls_enabled`` and
    ``etcd_tls_allow_plain``."""
    if tls_enabled is False or str(tls_enabled).lower() in ("false", "no", "0", "off"):
        return "plain"
    if allow_plain is True or str(allow_plain).lower() in ("true", "yes", "1", "on"):
        return "bridge"
    return "tls"


def tls_plan(
    env_texts: Mapping[str, Optional[str]], desired: str, cluster: str = "etcd", members: Sequence[str] = ()
) -> Dict[str, Any]:
    """What a run of the etcd role does about TLS, before it touches
    anything. ``env_texts`` maps each member of the play to its settings
    file's text (None: no file, a member that has never started);
    ``members`` lists every member of the etcd group (a move needs all of
    them in the play: a member left out could not dial the others).

    Returns ``modes`` (host -> mode or None), ``arm`` (members restarted
    first, one at a time, with their certificate and the client port on
    both schemes), ``move_peers`` (then, one at a time, peer listener
    and advertised peer URL moved to HTTPS) and ``steps``, both in order
    as ``{"host", "mode"}`` (the mode each step writes). ``problem`` is a message when
    the run must not start (nothing is changed then)."""
    if desired not in MODES or desired == "armed":
        raise ValueError("desired mode must be plain, bridge or tls, not %r" % (desired,))
    modes = {host: mode_of(text) for host, text in env_texts.items()}
    running = {h: m for h, m in modes.items() if m is not None}
    new = sorted(h for h, m in modes.items() if m is None)
    out: Dict[str, Any] = {"modes": modes, "arm": [], "move_peers": [], "steps": [], "problem": None}
    if not running:
        return out
    behind = sorted(h for h, m in running.items() if m in ("plain", "armed"))
    if desired == "plain":
        moved = sorted(h for h, m in running.items() if m != "plain")
        if moved:
            out["problem"] = (
                "etcd cluster '%s': %s already serve TLS (etcd_tls_enabled: false asks for plain HTTP). etcd.yml "
                "does not move a cluster back to plain HTTP. Nothing was changed. Fix: keep etcd_tls_enabled true "
                "(docs/security.md, \"etcd over TLS\")." % (cluster, ", ".join(moved))
            )
        return out
    if desired == "tls" and behind:
        out["problem"] = (
            "etcd cluster '%s': %s still serve plain HTTP, and etcd_tls_enabled without etcd_tls_allow_plain "
            "would close plain HTTP at once: every Patroni and pg-vip still on HTTP would lose etcd. Nothing was "
            "changed. Fix, one step at a time (docs/security.md, \"etcd over TLS\"): "
            "1. ansible-playbook playbooks/etcd.yml -e etcd_tls_allow_plain=true (certificates, peers over TLS, "
            "one member at a time; the client port answers both); 2. ansible-playbook playbooks/pgsql.yml "
            "(Patroni and pg-vip move to HTTPS); 3. ansible-playbook playbooks/etcd.yml (plain HTTP closed). "
            "Or keep plain HTTP with etcd_tls_enabled: false." % (cluster, ", ".join(behind))
        )
        return out
    if behind and new:
        out["problem"] = (
            "etcd cluster '%s': %s would join while %s still move to TLS. Nothing was changed. Fix: finish the "
            "move first (ansible-playbook playbooks/etcd.yml -l %s -e etcd_tls_allow_plain=true), then add the new "
            "members." % (cluster, ", ".join(new), ", ".join(behind), ",".join(sorted(running)))
        )
        return out
    outside = [h for h in members if h not in env_texts]
    if behind and outside:
        out["problem"] = (
            "etcd cluster '%s' moves to TLS, and every member must take part: %s are not in this play. Nothing "
            "was changed. Fix: run etcd.yml for the whole group (no -l, or -l %s)."
            % (cluster, ", ".join(outside), cluster)
        )
        return out
    out["arm"] = sorted(h for h, m in running.items() if m == "plain")
    out["move_peers"] = behind
    out["steps"] = [{"host": h, "mode": "armed"} for h in out["arm"]] + [{"host": h, "mode": "bridge"} for h in behind]
    return out
