# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Cluster DNS: the records dnsmasq serves on the infra hosts.

Pigsty's meaning (docs/dns.md): every instance name (``<cluster>-<seq>``)
resolves to its member's address, and the cluster name followed by
``pg_dns_suffix`` resolves according to ``pg_dns_target``:

* ``auto`` (the default): the VIP when ``pg_vip_enabled``, else the leader;
* ``primary``: the address of the cluster's leader in the inventory (the
  member with ``pg_role: primary``, or the standby leader);
* ``vip``: the address of ``pg_vip_address`` (without its prefix length);
* ``none``: no record for the cluster name;
* an IP address (``IP`` or ``IP/prefix``): that address.

Instance names take no suffix (as in Pigsty). Nothing here imports Ansible;
bad values are reported as :class:`~errors.Problem` values by
:func:`problems`, and :func:`records` never raises.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, Iterable, List, Optional, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Cluster,
    Inventory,
)

#: The keywords of ``pg_dns_target`` (any other value is an IP address).
TARGETS = ("auto", "primary", "vip", "none")

# A name dnsmasq serves from a hosts file: labels of letters, digits, '-'
# and '_' (cluster names may hold '_', as in Pigsty), 1-63 characters each,
# not starting or ending with '-', 253 characters at most.
LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_SUFFIX_CHARS = re.compile(r"^[A-Za-z0-9_.-]*$")

_TARGET_FIX = ("set pg_dns_target to auto (the VIP when pg_vip_enabled, else "
               "the primary), primary, vip, none or an IP address such as "
               "10.10.10.3")
_SUFFIX_FIX = ("set pg_dns_suffix to '' or to a domain suffix such as "
               "'.db.example.com' (letters, digits, '-' and dots, no empty "
               "label, no trailing dot)")

Record = Tuple[str, str]


def is_dns_name(name: Any) -> bool:
    """Whether ``name`` can be served as a host name by dnsmasq."""
    return (isinstance(name, str) and 0 < len(name) <= 253 and
            all(LABEL.match(label) for label in name.split(".")))


def target_address(value: Any) -> Optional[str]:
    """The address of an IP-address ``pg_dns_target`` (``IP`` or
    ``IP/prefix``, as Pigsty accepts it), else None."""
    if not isinstance(value, str) or value in TARGETS:
        return None
    try:
        if "/" in value:
            return str(ipaddress.ip_interface(value).ip)
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _vip_address(cluster: Cluster) -> Optional[str]:
    address = cluster.setting("pg_vip_address")
    try:
        return str(ipaddress.ip_interface(address).ip)
    except (TypeError, ValueError):
        return None


def cluster_name(cluster: Cluster) -> str:
    """The cluster's DNS name: its name followed by ``pg_dns_suffix``."""
    suffix = cluster.setting("pg_dns_suffix")
    return cluster.name + (suffix if isinstance(suffix, str) else "")


def cluster_target(cluster: Cluster) -> Optional[str]:
    """The address the cluster name resolves to, or None for no record
    (``none``, or a value :func:`problems` refuses)."""
    target = cluster.setting("pg_dns_target")
    vip_on = cluster.setting("pg_vip_enabled") is True
    leader = cluster.leader
    if target == "vip" or (target == "auto" and vip_on):
        return _vip_address(cluster) if vip_on else None
    if target in ("auto", "primary"):
        return leader.ip if leader is not None else None
    if target == "none":
        return None
    return target_address(target)


def cluster_records(cluster: Cluster, without: Iterable[str] = ()
                    ) -> List[Record]:
    """``[(name, address), ...]`` of one cluster: the cluster name first
    (when it has a record), then every member in inventory order, leaving
    out the hosts of ``without`` (members being removed)."""
    out: List[Record] = []
    target = cluster_target(cluster)
    if target is not None:
        out.append((cluster_name(cluster), target))
    gone = set(without)
    for m in cluster.members:
        if m.host not in gone and m.ip:
            out.append((m.instance, m.ip))
    return out


def records(inv: Inventory, clusters: Optional[Iterable[str]] = None,
            without: Iterable[str] = ()) -> Dict[str, List[Record]]:
    """The records of every loaded cluster (or of ``clusters``), by
    cluster name, in the order of :func:`cluster_records`."""
    names = sorted(inv.clusters) if clusters is None else sorted(
        set(clusters) & set(inv.clusters))
    gone = list(without)
    return {name: cluster_records(inv.clusters[name], gone)
            for name in names}


def problems(inv: Inventory) -> List[Problem]:
    """Bad ``pg_dns_target`` and ``pg_dns_suffix`` values, and names that
    two records of the inventory would share."""
    out: List[Problem] = []
    owners: Dict[str, Tuple[str, str]] = {}
    for cluster in inv.clusters.values():
        name = cluster.name
        target = cluster.setting("pg_dns_target")
        suffix = cluster.setting("pg_dns_suffix")
        target_ok = True
        if target not in TARGETS and target_address(target) is None:
            target_ok = False
            out.append(Problem(name, None, "pg_dns_target", target,
                               "is neither auto, primary, vip, none nor an "
                               "IP address", _TARGET_FIX))
        elif target == "vip" and cluster.setting("pg_vip_enabled") is not True:
            target_ok = False
            out.append(Problem(
                name, None, "pg_dns_target", target,
                "points the cluster name at the VIP, but pg_vip_enabled is "
                "not true, so there is no VIP to resolve to",
                "enable the VIP (pg_vip_enabled: true with pg_vip_address), "
                "or use pg_dns_target: auto or primary"))
        suffix_ok = True
        if not isinstance(suffix, str):
            suffix_ok = False
            out.append(Problem(name, None, "pg_dns_suffix", suffix,
                               "is not a string", _SUFFIX_FIX))
        elif suffix and (not _SUFFIX_CHARS.match(suffix) or
                         not is_dns_name(name + suffix)):
            suffix_ok = False
            out.append(Problem(
                name, None, "pg_dns_suffix", suffix,
                "makes the cluster's DNS name %r, which is not a host name "
                "dnsmasq can serve" % (name + suffix), _SUFFIX_FIX))
        if not (target_ok and suffix_ok):
            continue
        own = cluster_name(cluster)
        for rec_name, _ in cluster_records(cluster):
            kind = "the cluster name" if rec_name == own else \
                "an instance name"
            other = owners.get(rec_name.lower())
            if other is None:
                owners[rec_name.lower()] = (name, kind)
            elif other != (name, "an instance name") or kind != other[1]:
                out.append(Problem(
                    name, None, "pg_dns_suffix" if rec_name == own
                    else "pg_cluster", rec_name,
                    "the DNS name %s is also %s of cluster %s"
                    % (rec_name, other[1], other[0]),
                    "give the cluster another pg_dns_suffix, rename one of "
                    "the clusters, or set pg_dns_target: none"))
    return out


# ------------------------------------------------------------ resolv.conf

#: The first line of a resolv.conf the node role writes.
RESOLV_HEADER = "# nameservers set by pigpen.pgsql (node_dns_servers); " \
    "do not edit"
_ADMIN_IP = "${admin_ip}"


def resolv_servers(servers: Iterable[Any], admin_ip: Any = None
                   ) -> List[str]:
    """``node_dns_servers`` with Pigsty's ``${admin_ip}`` placeholder
    replaced, blanks and repeats dropped, in order."""
    out: List[str] = []
    for server in servers or ():
        text = str(server).strip()
        if _ADMIN_IP in text:
            if not admin_ip:
                continue
            text = text.replace(_ADMIN_IP, str(admin_ip))
        if text and text not in out:
            out.append(text)
    return out


def resolv_conf(existing: str, servers: Iterable[str],
                options: Iterable[str] = (), method: str = "add") -> str:
    """The text of /etc/resolv.conf with ``servers`` first (Pigsty's
    ``node_dns_method``):

    * ``overwrite``: the header, ``options`` and the servers only;
    * ``add``: the same, then every line of ``existing`` but the header,
      those options and nameserver lines of those servers (the node's
      other nameservers, ``search`` and ``options`` lines stay, in order);
    * ``none``: ``existing`` unchanged.

    Applying it to its own result gives the same text, so a re-run changes
    nothing."""
    if method == "none":
        return existing
    servers = [str(s).strip() for s in servers if str(s).strip()]
    options = [str(o).strip() for o in options or () if str(o).strip()]
    lines = [RESOLV_HEADER] + options + ["nameserver %s" % s for s in servers]
    if method == "add":
        ours = set(lines)
        for line in (existing or "").splitlines():
            words = line.split()
            if line.strip() in ours or not words:
                continue
            if words[0] == "nameserver" and len(words) > 1 and \
                    words[1] in servers:
                continue
            lines.append(line.rstrip())
    return "\n".join(lines) + "\n"
