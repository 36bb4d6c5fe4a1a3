# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Who may reach a service: the client addresses HAProxy lets through.

HAProxy forwards a service's connections without the client's address, so
PostgreSQL and pgbouncer see the HAProxy node and the address part of their
HBA rules says nothing about the real client. The services enforce it
themselves: each listener accepts only the networks that its servers' HBA
files let in (``tcp-request connection reject unless`` an ACL of those
networks, ``roles/haproxy/templates/service.cfg.j2``). The user and
database parts of the rules stay with PostgreSQL and pgbouncer, which still
check them; docs/services.md says what this does not cover.

Pure Python; nothing here imports Ansible.

* :func:`hba_sources` reads the networks of the active lines of one hba
  file that let someone in (not ``reject``);
* :func:`add_sources` sets ``sources`` on every service of a cluster plan:
  the networks of the union of its servers' files (postgres or pgbouncer,
  by the server's port), collapsed and sorted; ``None`` when the rules let
  in everyone (``0.0.0.0/0`` and ``::/0``) or when an address cannot be
  read (a host name, ``samenet``...), in which case the listener stays
  open to all and its comment says so.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

#: Connection types of HBA lines that carry an address.
_HOST_TYPES = ("host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc")
_EVERYONE = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


class Unknown(Exception):
    """An address HAProxy cannot be given (host names, samenet...)."""


def _network(fields: Sequence[str]) -> Any:
    """The network of an HBA line's address fields (``10.0.0.0/8``, or an
    address and a mask as two fields), or raise :class:`Unknown`."""
    addr = fields[3]
    if addr == "all":
        return None  # everyone
    try:
        if "/" in addr:
            return ipaddress.ip_network(addr, strict=False)
        if len(fields) > 4:
            try:
                return ipaddress.ip_network("%s/%s" % (addr, fields[4]), strict=False)
            except ValueError:
                pass
        return ipaddress.ip_network(addr)
    except ValueError as exc:
        raise Unknown(addr) from exc


def hba_sources(lines: Iterable[str], tls: bool = True) -> Optional[List[Any]]:
    """The networks that the active lines of an hba file let in (method not
    ``reject``), as :mod:`ipaddress` networks; ``None`` when everyone is let
    in. ``tls``: the server takes TLS (else ``hostssl`` lines never match
    and are left out). Raises :class:`Unknown` for an address that is not
    an IP network."""
    # the members of a cluster (and clusters alike) share their lines: the
    # answer is remembered by the active lines
    active = tuple(line for line in lines if line and line[0] != "#")
    found = _sources(active, bool(tls))
    return None if found is None else [ipaddress.ip_network(n) for n in found]


@functools.lru_cache(maxsize=4096)
def _sources(active: Tuple[str, ...], tls: bool) -> Optional[Tuple[str, ...]]:
    out = []
    for text in active:
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split()
        if len(fields) < 5 or fields[0] not in _HOST_TYPES:
            continue
        if fields[0] == "hostssl" and not tls:
            continue
        net = _network(fields)
        # the method follows the address (and the mask when there is one)
        method_at = 5 if "/" not in fields[3] and fields[3] != "all" and len(fields) > 5 and _is_mask(fields[4]) else 4
        if len(fields) > method_at and fields[method_at] == "reject":
            continue
        if net is None:
            return None
        out.append(net.with_prefixlen)
    return tuple(out)


def _is_mask(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def collapse(networks: Iterable[Any]) -> Optional[List[str]]:
    """Networks merged (a /32 inside a /8 goes) and sorted, IPv4 first;
    ``None`` when they cover every address of both families."""
    out = _collapse(frozenset(n if isinstance(n, str) else n.with_prefixlen for n in networks))
    return None if out is None else list(out)


@functools.lru_cache(maxsize=1024)
def _collapse(texts: frozenset) -> Optional[Tuple[str, ...]]:
    networks = [ipaddress.ip_network(t) for t in texts]
    v4 = list(ipaddress.collapse_addresses(n for n in networks if n.version == 4))
    v6 = list(ipaddress.collapse_addresses(n for n in networks if n.version == 6))
    if _EVERYONE[0] in v4 and _EVERYONE[1] in v6:
        return None
    return tuple(n.with_prefixlen for n in sorted(v4) + sorted(v6))


def add_sources(services: List[Dict[str, Any]], files: Mapping[str, Mapping[str, Any]]) -> List[Dict[str, Any]]:
    """Set ``sources`` (and ``sources_note``) on every service.

    ``files``: host -> {``pg_port``, ``pgbouncer_port``, ``pg_hba`` (lines),
    ``pgb_hba`` (lines), ``pgb_tls`` (bool)} of each member. A server whose
    port is neither its member's ``pg_port`` nor its ``pgbouncer_port``
    (``dest`` a number of another program) leaves the service open.
    """
    for svc in services:
        networks: List[Any] = []
        note = None
        for server in svc["servers"]:
            if server.get("track"):
                continue
            f = files.get(server["host"])
            if f is None:
                note = "no HBA file for server %s" % server["name"]
                break
            if server["port"] == f.get("pg_port"):
                lines, tls = f["pg_hba"], True
            elif server["port"] == f.get("pgbouncer_port"):
                lines, tls = f["pgb_hba"], f.get("pgb_tls", False)
            else:
                note = "port %s of server %s is neither postgres nor pgbouncer" % (server["port"], server["name"])
                break
            try:
                found = _sources(tuple(line for line in lines if line and line[0] != "#"), bool(tls))
            except Unknown as exc:
                note = "an HBA address is not an IP network (%s)" % exc
                break
            if found is None:
                note = "the HBA rules let in every address"
                break
            networks.extend(found)
        if note is None and not svc["servers"]:
            note = "no servers"
        sources = collapse(networks) if note is None else None
        if note is None and sources is None:
            note = "the HBA rules let in every address"
        svc["sources"] = sources
        svc["sources_note"] = note
    return services
