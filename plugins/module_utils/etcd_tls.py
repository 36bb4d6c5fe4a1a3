# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""etcd's transport security, and the rolling move of a running cluster
from plain HTTP to TLS.

A member's settings file (``/etc/default/etcd``, written by the etcd role)
puts it in one of five modes. ``etcd_port`` is the client port (2379),
``etcd_tls_bridge_port`` a second client port that serves HTTPS only while
the clients move (2382):

``plain``
    peers and clients over plain HTTP (before TLS existed, or
    ``etcd_tls_enabled: false``);
``armed``
    peers still over plain HTTP, but the member holds its certificate and
    dials peers that moved to HTTPS with it; plain HTTP on the client port
    (advertised), HTTPS on the bridge port;
``bridge``
    peers over HTTPS with certificate authentication; the client ports as
    in ``armed`` (``etcd_tls_allow_plain``): Patroni and pg-vip move to
    HTTPS on the bridge port in their own time;
``closing``
    the client port serves HTTPS (advertised), the bridge port still does:
    plain HTTP is closed, and the clients move back to the client port;
``tls``
    peers and clients over HTTPS on the client port only (the default of a
    new cluster).

No port ever serves both schemes: etcd 3.4 can, but at some starts its
plain-HTTP gRPC server then comes up with the TLS settings, and every v3
call over plain HTTP fails (a race in etcd 3.4.23's ``embed/serve.go``;
docs/security.md). Every step is one member's restart, so the cluster
keeps its quorum: first every member is armed (no URL changes); then each
in turn gets its peer listener on HTTPS and its advertised peer URL updated
(only that member is out of reach of the others for the length of its
restart, and every other member can already dial it); once every Patroni
uses HTTPS, each member closes plain HTTP (``closing``); once no Patroni
uses the bridge port, each closes it (``tls``). Back to plain HTTP is not a
move etcd.yml makes.

    mode_of(env_text)                                  -> mode or None
    desired_mode(tls_enabled, allow_plain)             -> "plain" | "bridge" | "tls"
    client_route(etcd3, bridge_port)                   -> "none" | "http" | "bridge" | "https"
    clients_port(modes)                                -> "client" | "bridge"
    tls_plan(env_texts, desired, cluster, members, clients, bridge_port) -> {...}
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

MODES = ("plain", "armed", "bridge", "closing", "tls")
# what each mode serves: the client port's scheme, and whether the bridge
# port serves HTTPS (an earlier release's move served both schemes on the
# client port, HTTPS reliably; roles/etcd/vars/main.yml: __etcd_serves)
SERVES = {
    "plain": ("http", False),
    "armed": ("http", True),
    "bridge": ("http", True),
    "closing": ("https", True),
    "tls": ("https", False),
    "armed-shared": ("https", False),
    "bridge-shared": ("https", False),
}
ROUTES = ("none", "http", "bridge", "https", "unknown")
# the modes of an earlier release's move, with both schemes on the client
# port; each is rewritten to a mode of MODES first
SHARED = {"armed-shared": "armed", "bridge-shared": "bridge"}


def _settings(text: str) -> Dict[str, str]:
    out: Dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        out[key.strip()] = value.strip().strip("'\"")
    return out


def _urls(urls: str) -> List[str]:
    return [u.strip() for u in urls.split(",") if "://" in u]


def _schemes(urls: str) -> List[str]:
    return sorted({u.split("://", 1)[0].lower() for u in _urls(urls)})


def _ports_with_both_schemes(urls: str) -> bool:
    seen: Dict[str, set] = {}
    for u in _urls(urls):
        scheme, rest = u.split("://", 1)
        seen.setdefault(rest.rstrip("/"), set()).add(scheme.lower())
    return any(len(schemes) > 1 for schemes in seen.values())


def mode_of(env_text: Optional[str]) -> Optional[str]:
    """The mode a member's settings file sets; None without a file (or
    without the URL settings: not a file the role wrote). A file of an
    earlier release, which listed both schemes on the client port, reads as
    ``armed-shared`` or ``bridge-shared`` (SHARED)."""
    if not env_text:
        return None
    s = _settings(env_text)
    peer, client = s.get("ETCD_LISTEN_PEER_URLS"), s.get("ETCD_LISTEN_CLIENT_URLS")
    if not peer or not client:
        return None
    clients = _schemes(client)
    shared = _ports_with_both_schemes(client)
    if _schemes(peer) == ["https"]:
        if clients != ["https"]:
            return "bridge-shared" if shared else "bridge"
        return "closing" if len(set(_urls(client))) > 1 else "tls"
    if "https" in clients or s.get("ETCD_PEER_CERT_FILE"):
        return "armed-shared" if shared else "armed"
    return "plain"


def desired_mode(tls_enabled: Any, allow_plain: Any = False) -> str:
    """The mode the inventory asks for: ``etcd_tls_enabled`` and
    ``etcd_tls_allow_plain``."""
    if tls_enabled is False or str(tls_enabled).lower() in ("false", "no", "0", "off"):
        return "plain"
    if allow_plain is True or str(allow_plain).lower() in ("true", "yes", "1", "on"):
        return "bridge"
    return "tls"


def client_route(etcd3: Optional[Mapping[str, Any]], bridge_port: int) -> str:
    """How a Patroni reaches etcd, from the ``etcd3`` block of its
    configuration file: ``none`` (no configuration), ``http``, ``bridge``
    (HTTPS on the bridge port) or ``https``."""
    if not etcd3:
        return "none"
    if str(etcd3.get("protocol") or "http").lower() != "https":
        return "http"
    hosts = etcd3.get("hosts") or []
    if isinstance(hosts, str):
        hosts = hosts.split(",")
    ports = {str(h).strip().rsplit(":", 1)[-1] for h in hosts if ":" in str(h)}
    return "bridge" if str(bridge_port) in ports else "https"


def clients_port(modes: Sequence[Optional[str]]) -> str:
    """Where Patroni and pg-vip reach etcd over HTTPS while the members are
    in ``modes``: ``bridge`` while a member serves plain HTTP on the client
    port (``armed`` or ``bridge``; the members in ``closing`` serve the
    bridge port too), else ``client``."""
    return "bridge" if any(m in ("armed", "bridge") for m in modes) else "client"


def _route_problem(cluster: str, hosts: List[str], what: str, fix: str) -> str:
    return "etcd cluster '%s': %s would cut off Patroni on %s (%s). Nothing was changed. Fix: %s" % (
        cluster,
        what,
        ", ".join(hosts),
        "it still reaches etcd that way, or could not be asked",
        fix,
    )


def tls_plan(
    env_texts: Mapping[str, Optional[str]],
    desired: str,
    cluster: str = "etcd",
    members: Sequence[str] = (),
    clients: Optional[Mapping[str, str]] = None,
    bridge_port: int = 2382,
) -> Dict[str, Any]:
    """What a run of the etcd role does about TLS, before it touches
    anything. ``env_texts`` maps each member of the play to its settings
    file's text (None: no file, a member that has never started);
    ``members`` lists every member of the etcd group (a move needs all of
    them in the play: a member left out could not dial the others);
    ``clients`` maps each PostgreSQL host to how its Patroni reaches etcd
    (``client_route``, or ``unknown`` when it could not be asked).

    Returns ``modes`` (host -> mode or None), ``steps`` (in order, one
    member's restart each, as ``{"host", "mode", "after"}``: the mode it
    writes, and every member's mode once it is done), ``final`` (host ->
    the mode the member is left in, which the settings file gets),
    ``client`` (``{"scheme", "bridge"}``: how the role reaches the members
    once the steps are done), ``notice`` (a text to show: the run stops
    short of ``desired`` on purpose) and ``problem`` (a message when the run
    must not start; nothing is changed then)."""
    if desired not in MODES or desired in ("armed", "closing"):
        raise ValueError("desired mode must be plain, bridge or tls, not %r" % (desired,))
    clients = dict(clients or {})
    modes = {host: mode_of(text) for host, text in env_texts.items()}
    running = {h: m for h, m in modes.items() if m is not None}
    new = sorted(h for h, m in modes.items() if m is None)
    # a member joins in the mode asked for, but never opens plain HTTP again
    # once the running members closed it
    past = [m for m in running.values() if m in ("closing", "tls")]
    joins = desired
    if desired == "bridge" and past:
        joins = "tls" if all(m == "tls" for m in running.values()) else "closing"
    out: Dict[str, Any] = {
        "modes": modes,
        "steps": [],
        "final": {h: (m if m is not None else joins) for h, m in modes.items()},
        "notice": None,
        "problem": None,
    }
    out["client"] = _client(running.values() if running else [joins])
    if not running:
        return out

    def refuse(text: str) -> Dict[str, Any]:
        out["problem"] = text
        return out

    on_plain = sorted(h for h, r in clients.items() if r in ("http", "unknown"))
    on_https = sorted(h for h, r in clients.items() if r in ("https", "unknown"))
    on_bridge = sorted(h for h, r in clients.items() if r in ("bridge", "unknown"))
    now = dict(out["final"])
    steps: List[Dict[str, Any]] = []

    def step(host: str, mode: str) -> None:
        steps.append({"host": host, "mode": mode, "before": now[host]})
        now[host] = mode
        steps[-1]["after"] = dict(now)

    # An earlier release's move served both schemes on the client port: each
    # such member is rewritten first, to plain HTTP on the client port and
    # HTTPS on the bridge port while a Patroni uses plain HTTP, to HTTPS on
    # the client port (closing) while one uses HTTPS there.
    shared = sorted(h for h, m in running.items() if m in SHARED)
    if shared and desired != "plain":
        peers_moved = [h for h in shared if running[h] == "bridge-shared"]
        if peers_moved and on_plain and on_https:
            return refuse(
                "etcd cluster '%s': %s serve plain HTTP and HTTPS on the client port (the move of an earlier "
                "release), and Patroni reaches them over plain HTTP on %s, over HTTPS on %s (or could not be "
                "asked): no single step keeps both. Nothing was changed. Fix: run ansible-playbook "
                "playbooks/pgsql.yml for every cluster, so that every Patroni uses the same scheme, then etcd.yml "
                "again (docs/security.md, \"etcd over TLS\")."
                % (cluster, ", ".join(peers_moved), ", ".join(on_plain) or "-", ", ".join(on_https) or "-")
            )
        for h in shared:
            step(h, "closing" if running[h] == "bridge-shared" and on_https else SHARED[running[h]])
    running = {h: now[h] for h in running}

    behind = sorted(h for h, m in running.items() if m in ("plain", "armed"))
    if desired == "plain":
        moved = sorted(h for h, m in running.items() if m != "plain")
        if moved:
            return refuse(
                "etcd cluster '%s': %s already serve TLS (etcd_tls_enabled: false asks for plain HTTP). etcd.yml "
                "does not move a cluster back to plain HTTP. Nothing was changed. Fix: keep etcd_tls_enabled true "
                "(docs/security.md, \"etcd over TLS\")." % (cluster, ", ".join(moved))
            )
        return out
    if desired == "tls" and behind:
        return refuse(
            "etcd cluster '%s': %s still serve plain HTTP, and etcd_tls_enabled without etcd_tls_allow_plain "
            "would close plain HTTP at once: every Patroni and pg-vip still on HTTP would lose etcd. Nothing was "
            "changed. Fix, one step at a time (docs/security.md, \"etcd over TLS\"): "
            "1. ansible-playbook playbooks/etcd.yml -e etcd_tls_allow_plain=true (certificates, peers over TLS, "
            "one member at a time; plain HTTP stays on the client port, HTTPS on the bridge port); "
            "2. ansible-playbook playbooks/pgsql.yml (Patroni and pg-vip move to HTTPS); "
            "3. ansible-playbook playbooks/etcd.yml (plain HTTP closed); 4. playbooks/pgsql.yml again (Patroni "
            "and pg-vip back on the client port); 5. playbooks/etcd.yml again (the bridge port closed). "
            "Or keep plain HTTP with etcd_tls_enabled: false." % (cluster, ", ".join(behind))
        )
    moving = sorted(h for h, m in running.items() if m in ("plain", "armed", "bridge", "closing")) + shared
    if desired == "bridge":
        moving = sorted(set(behind + shared))
    if moving and new:
        return refuse(
            "etcd cluster '%s': %s would join while %s still move to TLS. Nothing was changed. Fix: finish the "
            "move first (docs/security.md, \"etcd over TLS\"), then add the new members."
            % (cluster, ", ".join(new), ", ".join(sorted(set(moving))))
        )
    outside = [h for h in members if h not in env_texts]
    if moving and outside:
        return refuse(
            "etcd cluster '%s' moves to TLS, and every member must take part: %s are not in this play. Nothing "
            "was changed. Fix: run etcd.yml for the whole group (no -l, or -l %s)."
            % (cluster, ", ".join(outside), cluster)
        )

    if desired == "bridge":
        for h in sorted(h for h, m in running.items() if m == "plain"):
            step(h, "armed")
        for h in behind:
            step(h, "bridge")
        if past:
            out["notice"] = (
                "etcd cluster '%s': plain HTTP is closed already; etcd_tls_allow_plain does not open it again."
                % cluster
            )
    else:
        at_bridge = sorted(h for h, m in running.items() if m == "bridge")
        if at_bridge and on_plain:
            return refuse(
                _route_problem(
                    cluster,
                    on_plain,
                    "closing plain HTTP",
                    "run ansible-playbook playbooks/pgsql.yml for every cluster first (Patroni and pg-vip move to "
                    "HTTPS on the bridge port %s), then etcd.yml again (docs/security.md, \"etcd over TLS\")."
                    % bridge_port,
                )
            )
        for h in at_bridge:
            step(h, "closing")
        closing = sorted(h for h, m in now.items() if m == "closing")
        if closing and on_bridge:
            out["notice"] = (
                "etcd cluster '%s': plain HTTP is closed; the bridge port %s stays open for the Patroni on %s. "
                "Next: ansible-playbook playbooks/pgsql.yml (they move to the client port), then etcd.yml again "
                "(the bridge port closes)." % (cluster, bridge_port, ", ".join(on_bridge))
            )
        else:
            for h in closing:
                step(h, "tls")
    out["steps"] = steps
    out["final"] = now
    out["client"] = _client(now.values())
    return out


def _client(modes: Any) -> Dict[str, Any]:
    """How the role itself reaches the members once they are in ``modes``:
    where every one of them serves, HTTPS when they can."""
    serves = [SERVES[m] for m in modes if m is not None]
    if all(serve[0] == "https" for serve in serves):
        return {"scheme": "https", "bridge": False}
    if all(serve[1] for serve in serves):
        return {"scheme": "https", "bridge": True}
    return {"scheme": "http", "bridge": False}
