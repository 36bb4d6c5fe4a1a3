# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The cluster model: who is in which cluster, and what each instance is.

Input is plain data, the shape Ansible has on the controller::

    hostvars = {"10.10.10.11": {"pg_cluster": "pg-test", "pg_seq": 1, ...}, ...}
    groups   = {"all": [...], "pg-test": [...], "etcd": [...], "infra": [...]}

A *cluster* is the set of hosts whose ``pg_cluster`` is the same name; its
members are kept in inventory order: the order of ``groups['all']``, which is
the order of Ansible's ``hostvars`` (where a host first appears in the
inventory), as in Pigsty. Hosts without
``pg_cluster`` belong to other modules and are ignored here, except that the
``infra`` and ``etcd`` groups are read for addresses.

Nothing in this module imports Ansible, and loading never raises on bad input:
it records :class:`~errors.Problem` values on the returned :class:`Inventory`.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, TypeGuard

from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
    SANDBOX_PASSWORDS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
)

# Letters, digits and '-' (a DNS label); '_' is accepted as Pigsty accepts it,
# provided the members have host names of their own (identity_problems).
CLUSTER_NAME = re.compile(r"^[a-zA-Z0-9_-]+\Z")
ROLES = ("primary", "replica", "offline", "standby", "delayed")
LEADER_ROLES = ("primary", "standby", "delayed")
JOB = "pgsql"

_MISSING = object()


def ip_of(text: Any) -> Optional[str]:
    """The text as a normalised IP address, or None when it is not one."""
    if not isinstance(text, str):
        return None
    return _ip_of(str(text))


@functools.lru_cache(maxsize=65536)
def _ip_of(text: str) -> Optional[str]:
    if "%" in text:
        # an IPv6 scope ID takes any text, newlines included: never an
        # address this collection writes into another program's file
        return None
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def is_int(value: Any) -> TypeGuard[int]:
    """True for real integers (YAML ``1``), not for booleans or ``"1"``."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass
class Member:
    """One PostgreSQL instance: a host of a cluster."""

    host: str
    cluster: str
    vars: Mapping[str, Any]
    ip: Optional[str] = None
    #: the address ``pg_upstream`` names (an IP, or the IP of the inventory
    #: host it names), filled by :func:`load`
    upstream_ip: Optional[str] = None
    #: the inventory host of the other cluster that ``pg_upstream`` of a
    #: leader reaches (a member, or a member of the cluster whose VIP it
    #: is), filled by :func:`load`; None for an address outside the
    #: inventory
    upstream_source: Optional[str] = None
    #: the port of PostgreSQL there (``pg_port`` of that host)
    upstream_port: Optional[int] = None

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """The host's value of ``name``, else the model default."""
        value = self.vars.get(name, _MISSING)
        if value is _MISSING or value is None:
            if default is not _MISSING:
                return default
            return MODEL_DEFAULTS.get(name)
        return value

    @property
    def seq(self) -> Any:
        return self.vars.get("pg_seq")

    @property
    def role(self) -> Any:
        return self.vars.get("pg_role")

    @property
    def instance(self) -> str:
        return "%s-%s" % (self.cluster, self.seq)

    @property
    def nodename(self) -> str:
        name = self.vars.get("nodename")
        return name if isinstance(name, str) and name else self.instance

    @property
    def offline_query(self) -> bool:
        return self.vars.get("pg_offline_query") is True

    @property
    def weight(self) -> Any:
        return self.get("pg_weight")

    @property
    def upstream(self) -> Any:
        return self.vars.get("pg_upstream")

    @property
    def delay(self) -> Any:
        """``pg_delay``, or None when it is unset or means no delay (Pigsty
        writes ``pg_delay: 0`` for every instance)."""
        value = self.vars.get("pg_delay")
        return None if no_delay(value) else value

    @property
    def is_leader(self) -> bool:
        """The member that Patroni should start as the cluster's leader."""
        return self.role in LEADER_ROLES

    def labels(self) -> Dict[str, str]:
        """Monitoring identity labels attached to every metric and log."""
        return {"cls": self.cluster, "ins": self.instance, "ip": self.ip or "", "job": JOB}

    def jmes_view(self) -> Dict[str, Any]:
        """What a JMESPath selector sees: the host's vars as written (unset
        stays null) plus ``inventory_hostname``."""
        view = dict(self.vars)
        view["inventory_hostname"] = self.host
        return view

    def identity(self) -> Dict[str, Any]:
        return {
            "cluster": self.cluster,
            "seq": self.seq,
            "role": self.role,
            "instance": self.instance,
            "nodename": self.nodename,
            "host": self.host,
            "ip": self.ip,
            "offline_query": self.offline_query,
            "weight": self.weight,
            "upstream": self.upstream_ip or self.upstream,
            "upstream_port": self.upstream_port,
            "delay": self.delay,
            "leader": self.is_leader,
            "labels": self.labels(),
            "patroni_url": self.patroni_url,
        }

    @property
    def patroni_url(self) -> str:
        """Where HAProxy, Prometheus and the playbooks reach this member's
        REST API: https (its certificate names the address) unless
        ``patroni_ssl_enabled`` is false."""
        scheme = "https" if self.get("patroni_ssl_enabled") else "http"
        address = self.ip or self.host
        if ":" in address:
            address = "[%s]" % address
        return "%s://%s:%s" % (scheme, address, self.get("patroni_port"))


@dataclass
class Cluster:
    """A PostgreSQL cluster: its members in inventory order."""

    name: str
    members: List[Member] = field(default_factory=list)
    _settings: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def setting(self, name: str) -> Any:
        """A cluster-wide setting (the first member's value, else default).

        Validation checks that members agree on cluster-wide settings. The
        answer is remembered: members do not change once loaded.
        """
        try:
            return self._settings[name]
        except KeyError:
            pass
        value = MODEL_DEFAULTS.get(name, SANDBOX_PASSWORDS.get(name))
        for member in self.members:
            own = member.vars.get(name)
            if own is not None:
                value = own
                break
        self._settings[name] = value
        return value

    @property
    def leader(self) -> Optional[Member]:
        leaders = [m for m in self.members if m.is_leader]
        return leaders[0] if len(leaders) == 1 else None

    @property
    def ips(self) -> List[str]:
        return [m.ip for m in self.members if m.ip]

    def member(self, host: str) -> Optional[Member]:
        for m in self.members:
            if m.host == host:
                return m
        return None

    def identity(self) -> Dict[str, Any]:
        leader = self.leader
        return {
            "cluster": self.name,
            "members": [m.instance for m in self.members],
            "hosts": [m.host for m in self.members],
            "ips": self.ips,
            "leader": leader.instance if leader else None,
            "leader_host": leader.host if leader else None,
            "standby": bool(leader is not None and leader.upstream),
        }


@dataclass
class Inventory:
    """Every cluster of an inventory plus the addresses other modules give."""

    clusters: Dict[str, Cluster]
    groups: Mapping[str, Sequence[str]]
    infra_ips: List[str]
    etcd: List[Member]
    problems: List[Problem]
    hostvars: Mapping[str, Mapping[str, Any]]
    by_host: Dict[str, Cluster] = field(default_factory=dict)
    # per-member HBA contexts, filled on first use by plan.hba_context
    hba_contexts: Dict[str, Any] = field(default_factory=dict)
    # per-member hba files (postgres, pgbouncer), filled by plan.member_hba
    hba_files: Dict[str, Any] = field(default_factory=dict)

    def cluster_of(self, host: str) -> Optional[Cluster]:
        return self.by_host.get(host)


def _host_ip(host: str, hvars: Mapping[str, Any]) -> Optional[str]:
    return ip_of(host) or ip_of(hvars.get("ansible_host"))


def host_addresses(hostvars: Mapping[str, Mapping[str, Any]]) -> Dict[str, Optional[str]]:
    """The IP address of every inventory host (None when it has none)."""
    return {host: _host_ip(host, hvars or {}) for host, hvars in hostvars.items()}


def upstream_address(value: Any, addresses: Mapping[str, Optional[str]]) -> Optional[str]:
    """The address a ``pg_upstream`` names: the IP it is, or the IP of the
    inventory host it names; None for anything else."""
    if not isinstance(value, str):
        return None
    return ip_of(value) or addresses.get(value)


def source_host(
    address: Optional[str],
    cluster: str,
    hostvars: Mapping[str, Mapping[str, Any]],
    addresses: Mapping[str, Optional[str]],
) -> Optional[str]:
    """The inventory host of another PostgreSQL cluster than *cluster* that
    *address* reaches: the member with that address, else the first member
    of the cluster whose enabled VIP it is; None when the address is no
    PostgreSQL instance of the inventory."""
    if not address:
        return None
    by_vip = None
    for host, hvars in hostvars.items():
        hvars = hvars or {}
        name = hvars.get("pg_cluster")
        if not isinstance(name, str) or not name or name == cluster:
            continue
        if addresses.get(host) == address:
            return host
        if by_vip is None and vip_ip(hvars.get("pg_vip_enabled"), hvars.get("pg_vip_address")) == address:
            by_vip = host
    return by_vip


def vip_ip(enabled: Any, address: Any) -> Optional[str]:
    """The address of a cluster's VIP, or None when it has none."""
    if enabled is not True or not isinstance(address, str) or "/" not in address:
        return None
    try:
        return str(ipaddress.ip_interface(address).ip)
    except ValueError:
        return None


def load(
    hostvars: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    clusters: Optional[Iterable[str]] = None,
) -> Inventory:
    """Build the :class:`Inventory` from Ansible-shaped data.

    ``clusters`` restricts the result to those cluster names (all when None).
    Identity problems (cluster name, ``pg_seq``, ``pg_role``, addresses) are
    recorded on ``Inventory.problems``; deeper checks live in
    :mod:`validate`.
    """
    order = list(groups.get("all") or hostvars.keys())
    seen = set(order)
    order += [h for h in hostvars if h not in seen]
    wanted = set(clusters) if clusters is not None else None

    by_name: Dict[str, Cluster] = {}
    problems: List[Problem] = []
    for host in order:
        hvars = hostvars.get(host)
        if hvars is None:
            continue
        name = hvars.get("pg_cluster")
        if name is None:
            continue
        if not isinstance(name, str) or not name:
            problems.append(
                Problem(
                    None,
                    host,
                    "pg_cluster",
                    name,
                    "is not a non-empty string",
                    "set pg_cluster to the cluster name, e.g. pg-test",
                )
            )
            continue
        if wanted is not None and name not in wanted:
            continue
        cluster = by_name.setdefault(name, Cluster(name))
        cluster.members.append(Member(host, name, hvars, _host_ip(host, hvars)))

    # Members keep the inventory's host order (groups['all'], the order of
    # Ansible's hostvars), which is the list Pigsty's selectors and its
    # cluster alias go through, even where the cluster's own group lists
    # its hosts in another order.

    infra_ips = []
    # sorted by name, as Pigsty expands the infra alias of HBA rules
    for host in sorted(groups.get("infra", ()), key=str):
        ip = _host_ip(host, hostvars.get(host) or {})
        if ip:
            infra_ips.append(ip)
        else:
            problems.append(
                Problem(
                    None,
                    host,
                    "ansible_host",
                    (hostvars.get(host) or {}).get("ansible_host"),
                    "infra host has no IP address (neither its inventory name nor ansible_host is an IP)",
                    "name the host by its IP or set ansible_host to its IP",
                )
            )
    etcd = [
        Member(h, "etcd", hostvars.get(h) or {}, _host_ip(h, hostvars.get(h) or {})) for h in groups.get("etcd", ())
    ]

    by_host = {m.host: c for c in by_name.values() for m in c.members}
    addresses = host_addresses(hostvars)
    for cluster in by_name.values():
        for m in cluster.members:
            m.upstream_ip = upstream_address(m.upstream, addresses)
            if m.is_leader and m.upstream_ip:
                m.upstream_source = source_host(m.upstream_ip, cluster.name, hostvars, addresses)
                if m.upstream_source is not None:
                    port = (hostvars.get(m.upstream_source) or {}).get("pg_port")
                    m.upstream_port = port if is_int(port) else MODEL_DEFAULTS["pg_port"]
    inv = Inventory(by_name, groups, infra_ips, etcd, problems, hostvars, by_host)
    for cluster in by_name.values():
        problems.extend(identity_problems(cluster))
    return inv


def identity_problems(cluster: Cluster) -> List[Problem]:
    """Name, seq, role, leader and address rules of one cluster."""
    out: List[Problem] = []
    name = cluster.name

    def problem(host, fld, value, what, fix):
        out.append(Problem(name, host, fld, value, what, fix))

    if not CLUSTER_NAME.match(name):
        problem(
            None,
            "pg_cluster",
            name,
            "cluster name may only hold letters, digits and '-' (it becomes a DNS label)",
            "rename the cluster, e.g. %r" % re.sub(r"[^a-zA-Z0-9-]+", "-", name).strip("-"),
        )
    elif "_" in name:
        for m in cluster.members:
            if "nodename" not in m.vars:
                problem(
                    m.host,
                    "nodename",
                    None,
                    "cluster name %s holds '_', which a host name "
                    "cannot, and the member would be named %s" % (name, m.instance),
                    "set nodename on the member (a host name), or "
                    "write the cluster name with '-', e.g. %r" % name.replace("_", "-"),
                )
    elif name.startswith("-") or name.endswith("-") or len(name) > 63:
        problem(
            None,
            "pg_cluster",
            name,
            "cluster name must be a DNS label: 1-63 characters, not starting or ending with '-'",
            "rename the cluster, e.g. %r" % name.strip("-")[:63],
        )

    seqs: Dict[Any, str] = {}
    for m in cluster.members:
        seq = m.seq
        if seq is None:
            problem(
                m.host,
                "pg_seq",
                seq,
                "every instance needs a sequence number",
                "set pg_seq to an integer unique in %s, e.g. %d" % (name, len(cluster.members)),
            )
        elif not is_int(seq) or seq < 0:
            problem(
                m.host,
                "pg_seq",
                seq,
                "is not a non-negative integer",
                "write pg_seq as a plain integer without quotes, e.g. pg_seq: 1",
            )
        elif seq in seqs:
            problem(
                m.host,
                "pg_seq",
                seq,
                "is already used by host %s (instance %s-%s)" % (seqs[seq], name, seq),
                "give every instance of %s its own pg_seq" % name,
            )
        else:
            seqs[seq] = m.host

        if m.role is None:
            problem(
                m.host, "pg_role", None, "every instance needs a role", "set pg_role to one of %s" % ", ".join(ROLES)
            )
        elif m.role not in ROLES:
            problem(m.host, "pg_role", m.role, "is not a known role", "use one of %s" % ", ".join(ROLES))

        if m.ip is None:
            problem(
                m.host,
                "ansible_host",
                m.vars.get("ansible_host"),
                "the instance has no IP address (neither its inventory name nor ansible_host is an IP)",
                "name the host by its IP or set ansible_host to its IP address",
            )

        offline = m.vars.get("pg_offline_query")
        if offline is not None and not isinstance(offline, bool):
            problem(
                m.host,
                "pg_offline_query",
                offline,
                "is not a boolean",
                "write pg_offline_query: true or false (no quotes)",
            )
        weight = m.vars.get("pg_weight")
        if weight is not None and (not is_int(weight) or not 0 <= weight <= 255):
            problem(
                m.host,
                "pg_weight",
                weight,
                "is not an integer from 0 to 255",
                "set pg_weight between 0 (drained) and 255; 100 is the default",
            )
        nodename = m.vars.get("nodename")
        if nodename is not None and (not isinstance(nodename, str) or not _HOSTNAME.match(nodename)):
            problem(
                m.host,
                "nodename",
                nodename,
                "is not a valid hostname",
                "use letters, digits, '-' and '.', or leave it unset to use the instance name",
            )

    out.extend(_leader_problems(cluster))
    return out


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\Z"
)
# recovery_min_apply_delay as PostgreSQL reads it (parse_int of guc.c): a
# number (a fraction or an exponent too: it is rounded), optional spaces,
# then one of the time units of a setting counted in milliseconds, written
# in lower case; no unit means milliseconds. (Octal and hexadecimal
# integers, which PostgreSQL reads too, are refused: 010 is 8 there.)
#: The units PostgreSQL takes for ``recovery_min_apply_delay`` (size in ms).
DELAY_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}
#: The largest ``recovery_min_apply_delay`` PostgreSQL takes: INT_MAX ms.
DELAY_MAX_MS = 2147483647
_DELAY = re.compile(r"^\s*((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([a-zA-Z]*)\s*\Z")
_OCTAL = re.compile(r"^0\d+\Z")
# Spellings PostgreSQL refuses, with their size in ms: only to say, in the
# fix, how PostgreSQL writes the same delay.
_DELAY_SPELLINGS = {
    "sec": 1000,
    "secs": 1000,
    "second": 1000,
    "seconds": 1000,
    "m": 60000,
    "mins": 60000,
    "minute": 60000,
    "minutes": 60000,
    "hr": 3600000,
    "hrs": 3600000,
    "hour": 3600000,
    "hours": 3600000,
    "day": 86400000,
    "days": 86400000,
    "w": 604800000,
    "week": 604800000,
    "weeks": 604800000,
}


def _delay_parts(value: Any):
    """(number, unit as written) of a ``pg_delay`` string, else None."""
    match = _DELAY.match(value) if isinstance(value, str) else None
    if not match or _OCTAL.match(match.group(1)):
        return None
    number = float(match.group(1))
    return (number, match.group(2)) if math.isfinite(number) else None


def delay_ms(value: Any, bounded: bool = True) -> Optional[int]:
    """``pg_delay`` in milliseconds, rounded as PostgreSQL rounds it, or
    None when PostgreSQL would refuse it as ``recovery_min_apply_delay``: a
    YAML integer is milliseconds; a string is a number, optionally followed
    by one of :data:`DELAY_UNITS`; the result is 0 to :data:`DELAY_MAX_MS`
    (no upper bound when not ``bounded``)."""
    if is_int(value):
        ms = value if value >= 0 else None
    else:
        parts = _delay_parts(value)
        size = _unit_size(parts[1]) if parts else None
        ms = _rounded(parts[0] * size) if size is not None else None
    if ms is None or bounded and ms > DELAY_MAX_MS:
        return None
    return ms


def _rounded(ms: float) -> Optional[int]:
    return int(round(ms)) if math.isfinite(ms) else None


def _unit_size(unit: str) -> Optional[float]:
    """The size in ms of a unit PostgreSQL takes (none: milliseconds)."""
    return 1 if unit == "" else DELAY_UNITS.get(unit)


def delay_text(ms: int) -> str:
    """A number of milliseconds in the largest unit that says it exactly
    (``5400000`` -> ``'90min'``)."""
    for unit, size in (("d", 86400000), ("h", 3600000), ("min", 60000), ("s", 1000)):
        if ms and ms % size == 0:
            return "%d%s" % (ms // size, unit)
    return "%dms" % ms


def delay_spelled_otherwise(value: Any) -> Optional[str]:
    """The way PostgreSQL writes a ``pg_delay`` that it refuses only for its
    spelling (``'2 hours'`` -> ``'2h'``, ``'1w'`` -> ``'7d'``, ``'1H'`` ->
    ``'1h'``), or None."""
    parts = _delay_parts(value)
    if parts is None:
        return None
    if _unit_size(parts[1]) is not None:
        return None
    unit = parts[1].lower()
    size = DELAY_UNITS.get(unit, _DELAY_SPELLINGS.get(unit))
    if size is None:
        return None
    ms = _rounded(parts[0] * size)
    return delay_text(ms) if ms is not None and ms <= DELAY_MAX_MS else None


def no_delay(value: Any) -> bool:
    """Whether a ``pg_delay`` value means "no apply delay": unset, 0, or a
    zero interval such as '0' or '0s'."""
    if value is None:
        return True
    if is_int(value):
        return value == 0
    parts = _delay_parts(value)
    if parts is None or parts[0] != 0:
        return False
    unit = parts[1].lower()
    return _unit_size(unit) is not None or unit in _DELAY_SPELLINGS


def _leader_problems(cluster: Cluster) -> List[Problem]:
    out: List[Problem] = []
    name = cluster.name
    known = [m for m in cluster.members if m.role in ROLES]
    leaders = [m for m in known if m.is_leader]
    if known and not leaders:
        out.append(
            Problem(
                name,
                None,
                "pg_role",
                [m.role for m in cluster.members],
                "the cluster has no primary",
                "set pg_role: primary on exactly one instance (with pg_upstream for a standby cluster's leader)",
            )
        )
    elif len(leaders) > 1:
        out.append(
            Problem(
                name,
                None,
                "pg_role",
                {m.host: m.role for m in leaders},
                "the cluster has %d leaders (primary/standby/delayed), exactly one is allowed" % len(leaders),
                "keep pg_role: primary on one instance and make the others replica or offline",
            )
        )
    return out
