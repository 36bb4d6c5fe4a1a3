# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Who replicates from whom: ``pg_upstream`` and ``pg_delay``.

The meaning is Pigsty's. A cluster whose leader (``pg_role: primary``, or
``standby`` / ``delayed``) has ``pg_upstream`` is a *standby cluster*: its
leader replicates from another cluster (Patroni's ``standby_cluster``), and
its other members from that leader. A replica with ``pg_upstream`` is a
*cascading replica*: it replicates from that member of its own cluster
rather than from the leader (Patroni's ``replicatefrom`` tag). ``pg_delay``
on a standby leader becomes ``recovery_min_apply_delay`` (a delayed
cluster); ``pg_delay: 0``, which Pigsty writes on every instance, means no
delay.

``pg_upstream`` is an IP address, or the name of an inventory host (then
its address is used). Refused here, before any node is touched, each for
the member that says it:

* a ``pg_upstream`` that is neither an IP nor an inventory host with an
  address;
* an instance that replicates from itself;
* a standby leader that replicates from its own cluster (a member, or the
  cluster's VIP): the cluster would follow itself;
* a cascading replica that replicates from outside its own cluster;
* cascading replicas that follow each other in a circle (2 follows 3, 3
  follows 2): none of them reaches the leader, so none receives anything;
* standby clusters that follow each other in a circle (A's leader follows
  B, B's follows A, or longer): none of them has a primary to start from.
  The clusters outside the validated ones (``-l``) are read from the
  inventory too, so the circle is found whichever of its clusters is
  deployed;
* a ``standby`` or ``delayed`` leader without ``pg_upstream``;
* a standby cluster whose source is a cluster of the inventory and which
  differs from it in what the copied data decides (:data:`SOURCE_ALIKE`):
  the major version, and the roles and passwords, which come with the data
  (a standby cluster has its source's ``pg_authid``), so its replication,
  Patroni, exporters and admin would log in with credentials that do not
  exist there;
* ``pg_standby_seed: pgbackrest`` (:func:`seed_problems`) on a cluster
  that is no standby cluster, or whose source is no cluster of the
  inventory, has no backups, keeps them on its own nodes (a ``local``
  repository the standby cluster cannot read), or in another repository
  than the standby cluster's;
* a non-zero ``pg_delay`` anywhere but on a standby leader, and a
  ``pg_delay`` that PostgreSQL does not take as ``recovery_min_apply_delay``
  (:func:`model.delay_ms`): an integer of milliseconds, or a number with
  one of the units ``us``, ``ms``, ``s``, ``min``, ``h``, ``d``, at most
  2147483647 ms (about 24.8 days).

Pure Python: nothing here imports Ansible.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
    closest,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
    SANDBOX_PASSWORDS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils import settings as settings_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    DELAY_MAX_MS,
    LEADER_ROLES,
    Cluster,
    Inventory,
    Member,
    delay_ms,
    delay_spelled_otherwise,
    host_addresses,
    ip_of,
    source_host,
    upstream_address,
    vip_ip,
)

_DELAY_FORMS = (
    "recovery_min_apply_delay takes an integer of milliseconds "
    "or a number with one of the units us, ms, s, min, h, d "
    "(lower case)"
)
_DELAY_FIX = "write e.g. '1h', '30min' or '1d' (a bare number is milliseconds)"


def problems(inv: Inventory) -> List[Problem]:
    """Every problem of ``pg_upstream`` and ``pg_delay`` in the loaded
    clusters."""
    addresses = host_addresses(inv.hostvars)
    instances = _instances(inv.hostvars, addresses)
    out: List[Problem] = []
    for cluster in inv.clusters.values():
        out.extend(member_problems(cluster, addresses, instances))
        out.extend(cascade_circles(cluster))
        out.extend(source_problems(cluster, inv.hostvars, loaded=inv.clusters))
        out.extend(seed_problems(cluster, inv.hostvars))
    out.extend(cluster_circles(inv, addresses))
    out.extend(slot_problems(inv))
    return out


#: What a standby cluster must have as its source has it: the data decides
#: them (the major version, and the roles, copied with ``pg_authid``).
SOURCE_ALIKE = (
    "pg_version",
    "pg_dbsu",
    "pg_replication_username",
    "pg_replication_password",
    "pg_monitor_username",
    "pg_monitor_password",
    "pg_admin_username",
    "pg_admin_password",
)


def source_problems(
    cluster: Cluster, hostvars: Mapping[str, Mapping[str, Any]], loaded: Optional[Mapping[str, Any]] = None
) -> List[Problem]:
    """A standby cluster that differs from its source (a cluster of the
    inventory) in :data:`SOURCE_ALIKE`: refused on its leader, one problem
    per setting. The passwords are compared only when the source is one of
    the ``loaded`` clusters (a run limited to the standby cluster reads no
    other cluster's secrets); None: every cluster is."""
    leader = cluster.leader
    if leader is None or leader.upstream_source is None:
        return []
    src_vars = hostvars.get(leader.upstream_source) or {}
    source = src_vars.get("pg_cluster")
    out: List[Problem] = []
    for name in SOURCE_ALIKE:
        if "password" in name and loaded is not None and source not in loaded:
            continue
        mine = cluster.setting(name)
        theirs = src_vars.get(name)
        if theirs is None:
            theirs = MODEL_DEFAULTS.get(name, SANDBOX_PASSWORDS.get(name))
        if mine == theirs:
            continue
        out.append(
            Problem(
                cluster.name,
                leader.host,
                name,
                mine,
                "%s is a standby cluster of %s (pg_upstream %s), whose data it copies: %s must be the same in both "
                "clusters (%s has %s)"
                % (
                    cluster.name,
                    source,
                    leader.upstream,
                    name,
                    source,
                    "another one" if "password" in name else repr(theirs),
                ),
                "set %s of %s to %s's" % (name, cluster.name, source),
            )
        )
    return out


# ------------------------------------------------------------- seeding


def _repo(hvars: Mapping[str, Any]) -> Tuple[Any, Any, Any]:
    """(pgbackrest_enabled, pgbackrest_method, its repository definition)
    of a host, defaults applied."""
    s = settings_mod.build_settings(hvars or {})
    repos = s["pgbackrest_repo"]
    repo = repos.get(s["pgbackrest_method"]) if isinstance(repos, dict) else None
    return s["pgbackrest_enabled"], s["pgbackrest_method"], repo


def seed_root(source: str, hostvars: Mapping[str, Mapping[str, Any]]) -> Optional[str]:
    """The inventory host of the cluster whose backups a standby cluster
    with source host ``source`` restores: the source's own cluster, or,
    when the source is itself a standby cluster of the inventory (which
    has no backups of its own until it is promoted), the cluster at the
    head of that chain, whose stanza holds the same data. None for a
    circle (refused by :func:`cluster_circles`)."""
    addresses = host_addresses(hostvars)
    upstream_of = {name: up for name, up, _host in _standby_leaders(hostvars)}
    host, seen = source, set()
    while True:
        name = (hostvars.get(host) or {}).get("pg_cluster")
        if not isinstance(name, str) or name in seen:
            return None
        seen.add(name)
        up = upstream_of.get(name)
        if up is None:
            return host
        above = source_host(upstream_address(up, addresses), name, hostvars, addresses)
        if above is None:
            # the chain leaves the inventory: this cluster has no backups
            # and the one above is unknown
            return host
        host = above


def seed_stanza(cluster: Cluster, hostvars: Mapping[str, Mapping[str, Any]]) -> Optional[str]:
    """The stanza a standby cluster's leader restores its first copy from
    (``pg_standby_seed: pgbackrest``): its source cluster's name; None for
    a seed by ``pg_basebackup`` (the default), or when
    :func:`seed_problems` refuses the cluster."""
    leader = cluster.leader
    if seed_problems(cluster, hostvars) or cluster.setting("pg_standby_seed") != "pgbackrest" or leader is None:
        return None
    root = seed_root(leader.upstream_source or "", hostvars)
    name = (hostvars.get(root or "") or {}).get("pg_cluster")
    return name if isinstance(name, str) else None


def seed_problems(cluster: Cluster, hostvars: Mapping[str, Mapping[str, Any]]) -> List[Problem]:
    """``pg_standby_seed: pgbackrest`` that cannot work, refused on the
    leader (else the first member). The cluster restored from is the source,
    or the head of its chain when the source is a standby cluster itself
    (:func:`seed_root`). Refused: the cluster is no standby cluster, its
    source is no cluster of the inventory (its stanza and repository are
    unknown), nor is the head of the chain, either cluster has pgBackRest off, the source's repository
    has no host and no object store (``local``: on the source's own nodes),
    or the two clusters' repositories differ (the standby cluster reaches
    the source's stanza through its own repository settings)."""
    if cluster.setting("pg_standby_seed") != "pgbackrest":
        return []
    leader = cluster.leader
    where = leader or cluster.members[0]

    def refuse(why: str, fix: str, field: str = "pg_standby_seed", value: Any = "pgbackrest") -> List[Problem]:
        return [Problem(cluster.name, where.host, field, value, why, fix)]

    if leader is None or not leader.upstream:
        return refuse(
            "%s is no standby cluster (its leader has no pg_upstream): there is no source to restore from"
            % cluster.name,
            "remove pg_standby_seed, or give the leader pg_upstream (docs/dr.md)",
        )
    if leader.upstream_source is None:
        return refuse(
            "the source of %s (pg_upstream %s) is no cluster of the inventory: its stanza and repository are unknown"
            % (cluster.name, leader.upstream),
            "add the source cluster to the inventory, or use pg_standby_seed: basebackup",
        )
    root = seed_root(leader.upstream_source, hostvars)
    if root is None:
        return []  # a circle of standby clusters: cluster_circles says so
    src_vars = hostvars.get(root) or {}
    source = src_vars.get("pg_cluster")
    if source in {name for name, _up, _host in _standby_leaders(hostvars)}:
        return refuse(
            "the data of %s comes from %s, a standby cluster whose own source is outside the inventory: no "
            "cluster of the inventory has its backups" % (cluster.name, source),
            "use pg_standby_seed: basebackup, or add the cluster at the head of the chain to the inventory",
        )
    mine_on, mine_method, mine = _repo(where.vars)
    theirs_on, their_method, theirs = _repo(src_vars)
    if not (settings_mod.repo_flag(mine_on) and settings_mod.repo_flag(theirs_on)):
        return refuse(
            "%s seeds from the pgBackRest repository of %s, but pgbackrest_enabled is off in %s"
            % (cluster.name, source, cluster.name if not settings_mod.repo_flag(mine_on) else source),
            "turn pgbackrest_enabled on in both clusters, or use pg_standby_seed: basebackup",
        )
    if not isinstance(theirs, dict) or ("host" not in theirs and theirs.get("type", "posix") == "posix"):
        return refuse(
            "the repository of %s (pgbackrest_method %s) is on its own nodes, which %s cannot read"
            % (source, their_method, cluster.name),
            "back %s up to a repository host or an object store (pgbackrest_method, docs/backup.md), "
            "or use pg_standby_seed: basebackup" % source,
        )
    if mine != theirs:
        return refuse(
            "%s reads the backups of %s through its own repository settings, but its repository "
            "(pgbackrest_method %s) is not that of %s (pgbackrest_method %s)"
            % (cluster.name, source, mine_method, source, their_method),
            "give %s the repository of %s (the same pgbackrest_repo entry), or use pg_standby_seed: basebackup"
            % (cluster.name, source),
            "pgbackrest_method",
            mine_method,
        )
    return []


# ------------------------------------------------------------- per member


def member_problems(
    cluster: Cluster, addresses: Mapping[str, Optional[str]], instances: Mapping[str, str]
) -> List[Problem]:
    """What each member's ``pg_upstream`` and ``pg_delay`` say on their
    own (circles are :func:`cascade_circles` and :func:`cluster_circles`)."""
    out: List[Problem] = []
    name = cluster.name

    def problem(m: Member, fld: str, value: Any, what: str, fix: str):
        out.append(Problem(name, m.host, fld, value, what, fix))

    by_ip = {m.ip: m for m in cluster.members if m.ip}
    vip = vip_ip(cluster.setting("pg_vip_enabled"), cluster.setting("pg_vip_address"))
    for m in cluster.members:
        up = m.upstream
        if m.role in ("standby", "delayed") and up is None:
            problem(
                m,
                "pg_upstream",
                None,
                "a %s leader replicates from another cluster and needs pg_upstream" % m.role,
                "set pg_upstream to the IP of the upstream primary",
            )
        if up is None:
            if m.delay is not None:
                problem(
                    m,
                    "pg_delay",
                    m.delay,
                    "pg_delay only applies to a standby leader with pg_upstream",
                    "set pg_upstream too, or remove pg_delay",
                )
            continue
        up_ip = upstream_address(up, addresses)
        if up_ip is None:
            out.append(_unknown_upstream(name, m, up, addresses, instances))
        elif up_ip == m.ip:
            problem(
                m,
                "pg_upstream",
                up,
                "an instance cannot replicate from itself",
                "point pg_upstream at another instance, or remove it",
            )
        elif m.is_leader and up_ip in by_ip:
            problem(
                m,
                "pg_upstream",
                up,
                "a standby leader must replicate from outside its own "
                "cluster, but %s is member %s" % (up, by_ip[up_ip].instance),
                "point pg_upstream at the primary of the upstream cluster",
            )
        elif m.is_leader and up_ip == vip:
            problem(
                m,
                "pg_upstream",
                up,
                "a standby leader must replicate from outside its own "
                "cluster, but %s is the VIP of %s itself" % (up, name),
                "point pg_upstream at the primary of the upstream cluster",
            )
        elif not m.is_leader and up_ip not in by_ip:
            others = sorted(ip for ip in by_ip if ip != m.ip)
            problem(
                m,
                "pg_upstream",
                up,
                "a cascading replica must replicate from a member of its own cluster",
                "set pg_upstream to one of %s, or remove it to replicate from the leader" % ", ".join(others)
                if others
                else "remove it",
            )
        delay = m.delay
        if delay is None:
            continue
        if not m.is_leader:
            problem(
                m,
                "pg_delay",
                delay,
                "pg_delay only applies to a standby cluster's leader",
                "move pg_delay to the leader of a delayed standby cluster",
            )
        elif delay_ms(delay) is None:
            out.append(_bad_delay(name, m, delay))
    return out


def _unknown_upstream(
    name: str, m: Member, up: Any, addresses: Mapping[str, Optional[str]], instances: Mapping[str, str]
) -> Problem:
    if isinstance(up, str) and up in addresses:
        return Problem(
            name,
            m.host,
            "pg_upstream",
            up,
            "is host %s of the inventory, which has no IP address" % up,
            "set ansible_host of %s to its IP address, or write that IP in pg_upstream" % up,
        )
    fix = "set pg_upstream to the IP address (or the inventory name) of the instance to replicate from"
    if isinstance(up, str) and up in instances:
        fix = "write the address of instance %s, %s" % (up, instances[up])
    else:
        # a misspelt host name (an IP with a typo has no likely meaning)
        guess = closest(up, [h for h, ip in addresses.items() if ip and h != m.host and not ip_of(h)])
        if guess is not None:
            fix = "did you mean %s? %s" % (guess, fix)
    return Problem(name, m.host, "pg_upstream", up, "is neither an IP address nor a host of the inventory", fix)


def _instances(hostvars: Mapping[str, Mapping[str, Any]], addresses: Mapping[str, Optional[str]]) -> Dict[str, str]:
    """Instance name (``<pg_cluster>-<pg_seq>``) -> address, for the
    instances of the whole inventory that have one."""
    out: Dict[str, str] = {}
    for host, hvars in hostvars.items():
        hvars = hvars or {}
        name, seq = hvars.get("pg_cluster"), hvars.get("pg_seq")
        address = addresses.get(host)
        if isinstance(name, str) and seq is not None and address:
            out.setdefault("%s-%s" % (name, seq), address)
    return out


def _bad_delay(name: str, m: Member, delay: Any) -> Problem:
    def problem(what: str, fix: str) -> Problem:
        return Problem(name, m.host, "pg_delay", delay, what, fix)

    spelled = delay_spelled_otherwise(delay)
    if spelled is not None:
        return problem("is spelled in a way PostgreSQL refuses: %s" % _DELAY_FORMS, "write %r" % spelled)
    ms = delay_ms(delay, bounded=False)
    if ms is not None and ms > DELAY_MAX_MS:
        return problem(
            "is %d ms, more than recovery_min_apply_delay takes (at most %d ms, about 24.8 days)" % (ms, DELAY_MAX_MS),
            "use at most '24d'",
        )
    return problem("is not a delay PostgreSQL accepts: %s" % _DELAY_FORMS, _DELAY_FIX)


# ---------------------------------------------------------------- circles


def cascade_circles(cluster: Cluster) -> List[Problem]:
    """Cascading replicas of one cluster that follow each other in a
    circle: each member on it is refused, naming the whole circle."""
    by_ip = {m.ip: m for m in cluster.members if m.ip}
    follows: Dict[str, Member] = {}
    for m in cluster.members:
        target = by_ip.get(m.upstream_ip) if m.upstream_ip else None
        if not m.is_leader and target is not None and target is not m:
            follows[m.host] = target
    leader = cluster.leader
    to_leader = "the leader %s" % leader.ip if leader is not None and leader.ip else "the leader"
    out: List[Problem] = []
    for m, circle in _circles(cluster.members, follows):
        path = " -> ".join(x.instance for x in circle + [circle[0]])
        out.append(
            Problem(
                cluster.name,
                m.host,
                "pg_upstream",
                m.upstream,
                "cascading replicas follow each other in a circle (%s), so none of them reaches the leader" % path,
                "point pg_upstream of one of them at %s or at a replica outside the circle, or remove it" % to_leader,
            )
        )
    return out


def _circles(members: List[Member], follows: Mapping[str, Member]) -> List[Tuple[Member, List[Member]]]:
    """(member, its circle starting from it) for every member on a circle
    of ``follows`` (host -> the member it follows), in members' order."""
    out = []
    for m in members:
        path = [m]
        seen = {m.host}
        cur = follows.get(m.host)
        while cur is not None and cur.host not in seen:
            path.append(cur)
            seen.add(cur.host)
            cur = follows.get(cur.host)
        if cur is m:
            out.append((m, path))
    return out


def cluster_circles(inv: Inventory, addresses: Mapping[str, Optional[str]]) -> List[Problem]:
    """Standby clusters that follow each other in a circle: for each loaded
    cluster on one, its leader is refused, naming the whole circle. The
    clusters that are not loaded are read from ``inv.hostvars``."""
    owner: Dict[str, str] = {}  # address -> cluster
    # (leader host, pg_upstream, address) of every cluster's leaders
    leaders: Dict[str, List[Tuple[str, Any, Optional[str]]]] = {}
    for name, cluster in inv.clusters.items():
        for m in cluster.members:
            if m.ip:
                owner.setdefault(m.ip, name)
            if m.is_leader and m.upstream is not None:
                leaders.setdefault(name, []).append((m.host, m.upstream, m.upstream_ip))
        vip = vip_ip(cluster.setting("pg_vip_enabled"), cluster.setting("pg_vip_address"))
        if vip:
            owner.setdefault(vip, name)
    for host, hvars in inv.hostvars.items():
        other = (hvars or {}).get("pg_cluster")
        if not isinstance(other, str) or not other or other in inv.clusters:
            continue
        address = addresses.get(host)
        if address:
            owner.setdefault(address, other)
        vip = vip_ip(hvars.get("pg_vip_enabled"), hvars.get("pg_vip_address"))
        if vip:
            owner.setdefault(vip, other)
        up = hvars.get("pg_upstream")
        if hvars.get("pg_role") in LEADER_ROLES and up is not None:
            leaders.setdefault(other, []).append((host, up, upstream_address(up, addresses)))

    # A cluster follows the cluster that owns its leader's upstream
    # (the first leader that names another cluster: two leaders are
    # refused on their own).
    follows: Dict[str, Tuple[str, Any, str]] = {}
    for name, found in leaders.items():
        for host, up, address in found:
            target = owner.get(address) if address else None
            if target is not None and target != name:
                follows[name] = (host, up, target)
                break

    out: List[Problem] = []
    for name in inv.clusters:
        path = [name]
        step = follows.get(name)
        while step is not None and step[2] not in path:
            path.append(step[2])
            step = follows.get(step[2])
        if step is None or step[2] != name:
            continue
        host, up, _skip = follows[name]
        out.append(
            Problem(
                name,
                host,
                "pg_upstream",
                up,
                "the standby clusters follow each other in a circle (%s), so "
                "none of them has a primary to replicate from" % " -> ".join(path + [name]),
                "make one of them an ordinary cluster (remove pg_upstream "
                "from its leader), or point the leader of %s at a cluster "
                "outside the circle" % name,
            )
        )
    return out


def dcs_source(hostvars: Mapping[str, Mapping[str, Any]], address: Any, cluster: str) -> Dict[str, Any]:
    """The cluster of the inventory that a standby cluster's DCS names as
    its source (``standby_cluster.host``: a member's address or the VIP),
    as ``{cluster, prefix, apis}``: its keys in etcd
    (``<pg_namespace>/<pg_cluster>/``) and its members' REST APIs; ``{}``
    for an address that is no other cluster of the inventory."""
    addresses = host_addresses(hostvars)
    host = source_host(upstream_address(address, addresses), cluster, hostvars, addresses)
    if host is None:
        return {}
    hvars = hostvars.get(host) or {}
    name = hvars["pg_cluster"]
    namespace = hvars.get("pg_namespace") or MODEL_DEFAULTS["pg_namespace"]
    return {
        "cluster": name,
        "prefix": "%s/%s/" % (str(namespace).rstrip("/"), name),
        "apis": member_apis(hostvars, name),
    }


def member_apis(hostvars: Mapping[str, Mapping[str, Any]], cluster: str) -> List[str]:
    """The REST API (``Member.patroni_url``) of every member of ``cluster``
    in the inventory, in its order."""
    addresses = host_addresses(hostvars)
    return [
        Member(h, cluster, hv or {}, addresses.get(h)).patroni_url
        for h, hv in hostvars.items()
        if (hv or {}).get("pg_cluster") == cluster
    ]


#: Prefix of the permanent slots a source keeps for its standby clusters
#: (Patroni's own slots are named after members: ``pg_test_1``).
SLOT_PREFIX = "standby_"


def standby_slot(cluster: str) -> str:
    """The permanent physical slot a standby cluster replicates through on
    its source: ``standby_`` and the cluster name as a slot name
    (lower case, anything but ``[a-z0-9_]`` as ``_``), at most 63 bytes."""
    return (SLOT_PREFIX + "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in cluster.lower()))[
        :63
    ]


def slot_source(
    hostvars: Mapping[str, Mapping[str, Any]], cluster: str, upstream: Any, addresses: Mapping[str, Optional[str]]
) -> Optional[str]:
    """The cluster that keeps a permanent slot for standby cluster
    ``cluster`` whose leader has ``pg_upstream`` ``upstream``, or None.

    Only a source reached through its VIP, and that is no standby cluster
    itself: Patroni 3.0.2 keeps permanent physical slots on the primary only,
    and a standby leader with ``primary_slot_name`` connects with
    ``target_session_attrs=read-write``. Through one member's address, the
    standby follows that member whatever its role (it cascades from it once
    it is a replica), which a slot would stop."""
    address = upstream_address(upstream, addresses)
    src = source_host(address, cluster, hostvars, addresses)
    if src is None:
        return None
    src_vars = hostvars.get(src) or {}
    source = src_vars.get("pg_cluster")
    if vip_ip(src_vars.get("pg_vip_enabled"), src_vars.get("pg_vip_address")) != address:
        return None
    for hvars in hostvars.values():
        hvars = hvars or {}
        if hvars.get("pg_cluster") == source and hvars.get("pg_role") in LEADER_ROLES and hvars.get("pg_upstream"):
            return None
    return source if isinstance(source, str) else None


def _standby_leaders(hostvars: Mapping[str, Mapping[str, Any]]):
    """(cluster, pg_upstream, host) of every leader with pg_upstream."""
    for host, hvars in hostvars.items():
        hvars = hvars or {}
        name, up = hvars.get("pg_cluster"), hvars.get("pg_upstream")
        if isinstance(name, str) and up is not None and hvars.get("pg_role") in LEADER_ROLES:
            yield name, up, host


def followers(hostvars: Mapping[str, Mapping[str, Any]], cluster: str) -> List[str]:
    """The slots of the standby clusters of the inventory that replicate
    through a slot on ``cluster`` (:func:`slot_source`), sorted."""
    addresses = host_addresses(hostvars)
    return sorted(
        {
            standby_slot(name)
            for name, up, _host in _standby_leaders(hostvars)
            if name != cluster and slot_source(hostvars, name, up, addresses) == cluster
        }
    )


def slot_problems(inv: Inventory) -> List[Problem]:
    """Standby clusters of one source whose slot names collide
    (:func:`standby_slot` maps ``pg-dr`` and ``pg_dr`` alike): refused on
    each loaded one's leader."""
    addresses = host_addresses(inv.hostvars)
    by_slot: Dict[Tuple[str, str], List[Tuple[str, str]]] = {}
    for name, up, host in _standby_leaders(inv.hostvars):
        source = slot_source(inv.hostvars, name, up, addresses)
        if source is not None:
            by_slot.setdefault((source, standby_slot(name)), []).append((name, host))
    out: List[Problem] = []
    for (source, slot), clusters in sorted(by_slot.items()):
        names = sorted({n for n, _h in clusters})
        if len(names) < 2:
            continue
        for name, host in clusters:
            if name in inv.clusters:
                out.append(
                    Problem(
                        name,
                        host,
                        "pg_cluster",
                        name,
                        "the standby clusters %s of %s would replicate through the same slot %s"
                        % (" and ".join(names), source, slot),
                        "rename one of them so that their names differ in more than case, '-', '.' or characters "
                        "after the 55th",
                    )
                )
    return out
