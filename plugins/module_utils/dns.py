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
    ip_of,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.safety import (
    SYSTEM_DIRS,
    path_trouble,
)

#: The keywords of ``pg_dns_target`` (any other value is an IP address).
TARGETS = ("auto", "primary", "vip", "none")

# A name dnsmasq serves from a hosts file: labels of letters, digits, '-'
# and '_' (cluster names may hold '_', as in Pigsty), 1-63 characters each,
# not starting or ending with '-', 253 characters at most.
LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)\Z")
_SUFFIX_CHARS = re.compile(r"^[A-Za-z0-9_.-]*\Z")

_TARGET_FIX = (
    "set pg_dns_target to auto (the VIP when pg_vip_enabled, else "
    "the primary), primary, vip, none or an IP address such as "
    "10.10.10.3"
)
_SUFFIX_FIX = (
    "set pg_dns_suffix to '' or to a domain suffix such as "
    "'.db.example.com' (letters, digits, '-' and dots, no empty "
    "label, no trailing dot)"
)

Record = Tuple[str, str]


def is_dns_name(name: Any) -> bool:
    """Whether ``name`` can be served as a host name by dnsmasq."""
    return isinstance(name, str) and 0 < len(name) <= 253 and all(LABEL.match(label) for label in name.split("."))


def target_address(value: Any) -> Optional[str]:
    """The address of an IP-address ``pg_dns_target`` (``IP`` or
    ``IP/prefix``, as Pigsty accepts it), else None."""
    if not isinstance(value, str) or value in TARGETS or "%" in value:
        return None  # an IPv6 scope ID takes any text, newlines included
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


def cluster_records(cluster: Cluster, without: Iterable[str] = ()) -> List[Record]:
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


def records(
    inv: Inventory, clusters: Optional[Iterable[str]] = None, without: Iterable[str] = ()
) -> Dict[str, List[Record]]:
    """The records of every loaded cluster (or of ``clusters``), by
    cluster name, in the order of :func:`cluster_records`."""
    names = sorted(inv.clusters) if clusters is None else sorted(set(clusters) & set(inv.clusters))
    gone = list(without)
    return {name: cluster_records(inv.clusters[name], gone) for name in names}


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
            out.append(
                Problem(
                    name,
                    None,
                    "pg_dns_target",
                    target,
                    "is neither auto, primary, vip, none nor an IP address",
                    _TARGET_FIX,
                )
            )
        elif target == "vip" and cluster.setting("pg_vip_enabled") is not True:
            target_ok = False
            out.append(
                Problem(
                    name,
                    None,
                    "pg_dns_target",
                    target,
                    "points the cluster name at the VIP, but pg_vip_enabled is "
                    "not true, so there is no VIP to resolve to",
                    "enable the VIP (pg_vip_enabled: true with pg_vip_address), or use pg_dns_target: auto or primary",
                )
            )
        suffix_ok = True
        if not isinstance(suffix, str):
            suffix_ok = False
            out.append(Problem(name, None, "pg_dns_suffix", suffix, "is not a string", _SUFFIX_FIX))
        elif suffix and (not _SUFFIX_CHARS.match(suffix) or not is_dns_name(name + suffix)):
            suffix_ok = False
            out.append(
                Problem(
                    name,
                    None,
                    "pg_dns_suffix",
                    suffix,
                    "makes the cluster's DNS name %r, which is not a host name dnsmasq can serve" % (name + suffix),
                    _SUFFIX_FIX,
                )
            )
        if not (target_ok and suffix_ok):
            continue
        own = cluster_name(cluster)
        for rec_name, _skip in cluster_records(cluster):
            kind = "the cluster name" if rec_name == own else "an instance name"
            other = owners.get(rec_name.lower())
            if other is None:
                owners[rec_name.lower()] = (name, kind)
            elif other != (name, "an instance name") or kind != other[1]:
                out.append(
                    Problem(
                        name,
                        None,
                        "pg_dns_suffix" if rec_name == own else "pg_cluster",
                        rec_name,
                        "the DNS name %s is also %s of cluster %s" % (rec_name, other[1], other[0]),
                        "give the cluster another pg_dns_suffix, rename one of "
                        "the clusters, or set pg_dns_target: none",
                    )
                )
    return out


# ------------------------------------------------- node and infra settings

#: ``node_dns_method`` values (Pigsty's).
NODE_METHODS = ("add", "overwrite", "none")
#: A ``dns_upstream_servers`` entry: dnsmasq's ``server=IP[#port]``.
_UPSTREAM = re.compile(r"^([0-9A-Fa-f.:]+)(?:#([0-9]{1,5}))?\Z")
#: Directories whose files other programs run or read as configuration:
#: never the place of the hosts files (named after the clusters).
_DROP_IN_DIRS = (
    "/etc/dnsmasq.d",
    "/etc/cron.d",
    "/etc/sudoers.d",
    "/etc/profile.d",
    "/etc/systemd",
    "/etc/apt",
    "/etc/ssh",
    "/etc/pam.d",
    "/etc/security",
    "/etc/ld.so.conf.d",
    "/etc/sysctl.d",
    "/etc/modprobe.d",
    "/etc/udev",
    "/etc/logrotate.d",
    "/etc/default",
    "/etc/network",
)


def _line_safe(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip()) and not any(c in value for c in "\n\r\0")


def node_problems(inv: Inventory) -> List[Problem]:
    """Bad ``node_dns_*`` settings of any host and bad ``dns_*`` settings
    of the infra hosts: each ends up as a line of /etc/resolv.conf or of
    dnsmasq's configuration, so a value with a newline, or one that is not
    an address, would add lines of its own."""
    out: List[Problem] = []
    for host in sorted(inv.hostvars):
        hv = inv.hostvars[host] or {}
        owner = inv.cluster_of(host)
        name = owner.name if owner else None

        # bad() and items() are called only within this iteration, so the
        # host they read is always the current one.
        def bad(field: str, value: Any, what: str, fix: str) -> None:
            out.append(Problem(name, host, field, value, what, fix))  # noqa: B023

        def items(field: str, example: str) -> List[Any]:
            value = hv.get(field)  # noqa: B023
            if value is not None and not isinstance(value, list):
                bad(field, value, "is not a list", "list them, e.g. %s" % example)
            return value if isinstance(value, list) else []

        for i, server in enumerate(items("node_dns_servers", "['10.10.10.10']")):
            text = server.strip() if isinstance(server, str) else None
            if text == _ADMIN_IP:
                if ip_of(hv.get("admin_ip")) is None:
                    bad(
                        "node_dns_servers[%d]" % i,
                        server,
                        "names ${admin_ip}, but admin_ip is %r, not an IP address" % (hv.get("admin_ip"),),
                        "set admin_ip to the infra node's address, or list the name server's address instead",
                    )
            elif text is None or ip_of(text) is None:
                bad(
                    "node_dns_servers[%d]" % i,
                    server,
                    "is not an IP address: resolv.conf takes addresses only",
                    "give the name server's IP address, e.g. 10.10.10.10, or ${admin_ip}",
                )
        method = hv.get("node_dns_method", "add")
        if method not in NODE_METHODS:
            bad(
                "node_dns_method",
                method,
                "is not one of %s" % ", ".join(NODE_METHODS),
                "use add (the default), overwrite or none",
            )
        for i, option in enumerate(items("node_dns_options", "['options single-request-reopen timeout:1']")):
            if not _line_safe(option):
                bad(
                    "node_dns_options[%d]" % i,
                    option,
                    "is not one non-empty line of resolv.conf",
                    "give each line as its own list item, without newlines",
                )
        for i, server in enumerate(items("dns_upstream_servers", "['1.1.1.1', '10.0.0.53#5353']")):
            found = _UPSTREAM.match(server) if isinstance(server, str) else None
            if not found or ip_of(found.group(1)) is None or (found.group(2) and not 0 < int(found.group(2)) < 65536):
                bad(
                    "dns_upstream_servers[%d]" % i,
                    server,
                    "is not IP or IP#port, the form dnsmasq's server= takes",
                    "give the upstream name server's address, e.g. 1.1.1.1 or 10.0.0.53#5353",
                )
        hosts_dir = hv.get("dns_hosts_dir")
        if hosts_dir is not None:
            trouble = None
            if (
                not isinstance(hosts_dir, str)
                or not hosts_dir.startswith("/")
                or not _line_safe(hosts_dir)
                or " " in hosts_dir
            ):
                trouble = "is not an absolute path"
            elif hosts_dir.rstrip("/") in SYSTEM_DIRS:
                trouble = "is a system directory: the hosts files, named after the clusters, would replace its files"
            elif any(hosts_dir == d or hosts_dir.startswith(d + "/") for d in _DROP_IN_DIRS):
                trouble = "is a directory whose files another program runs or reads as its configuration"
            else:
                trouble = path_trouble(hosts_dir, "dir", ())
            if trouble:
                bad("dns_hosts_dir", hosts_dir, trouble, "use a directory of its own, e.g. /etc/hosts.d (the default)")
    return out


# ------------------------------------------------------------ resolv.conf

#: The first line of a resolv.conf the node role writes.
RESOLV_HEADER = "# nameservers set by pigpen.pgsql (node_dns_servers); do not edit"
_ADMIN_IP = "${admin_ip}"


def resolv_servers(servers: Iterable[Any], admin_ip: Any = None) -> List[str]:
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


def resolv_conf(existing: str, servers: Iterable[str], options: Iterable[str] = (), method: str = "add") -> str:
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
            if words[0] == "nameserver" and len(words) > 1 and words[1] in servers:
                continue
            lines.append(line.rstrip())
    return "\n".join(lines) + "\n"
