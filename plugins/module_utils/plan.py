# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The per-cluster / per-instance plans of a validated inventory.

Pure Python; nothing here imports Ansible. The plans are what the
configuration files, the filters and the roles are computed from; the
inventory is loaded and validated first (:mod:`validate`)::

    inv = validate.require(model.load(hostvars, groups))   # load, refuse a bad one
    cplan = cluster_plan(inv, "pg-test")       # services, HA plan, pools
    iplan = instance_plan(inv, "10.10.10.11")  # identity, HBA, tuning

Used by the filters and the ``pg_render`` action (through
``plugins/plugin_utils/inventory.py``), and by :mod:`validate`, whose
checks read the same HBA contexts, node sizes and tunings.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import ipaddress
from typing import Any, Dict, List, Optional, Sequence, Set, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    access,
    drill as drill_mod,
    etcd_tls,
    etcd_vip,
    ha as ha_mod,
    hba as hba_mod,
    objects,
    patroni_conf,
    pgbackrest_conf,
    pki,
    services as svc_mod,
    settings as settings_mod,
    tuning as tuning_mod,
    upstream as upstream_mod,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import PORTS
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Cluster,
    Inventory,
    Member,
    host_addresses,
    ip_of,
    is_int,
)

# The node assumed when the inventory carries no facts (dry render): the
# tuning is shown for this size and the rendered file says so.
REFERENCE_NODE: Dict[str, Any] = {"mem_mb": 4096, "cpu": 2, "disk_gb": None}


@contextlib.contextmanager
def _collector_paused():
    """Pause Python's cyclic garbage collector while the model builds its
    results. They are trees of dicts, lists and tuples without cycles, so
    nothing is left for the collector to free; what it would cost is passes
    over a heap that grows with the inventory (about a third of the time for
    1,000 clusters, bench/model_scale.py). Restored on the way out."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# ---------------------------------------------------------------- plans


def hba_context(inv: Inventory, cluster: Cluster, member: Member):
    """The HBA aliases' values for one member (computed once per member)."""
    ctx = inv.hba_contexts.get(member.host)
    if ctx is None:
        ctx = inv.hba_contexts[member.host] = _hba_context(inv, cluster, member)
    return ctx


def _hba_context(inv: Inventory, cluster: Cluster, member: Member):
    intranet = member.get("node_firewall_intranet")
    return hba_mod.HbaContext(
        cluster=cluster.name,
        instance=member.instance,
        role=member.role,
        offline_query=member.offline_query,
        dbsu=cluster.setting("pg_dbsu"),
        repl=cluster.setting("pg_replication_username"),
        monitor=cluster.setting("pg_monitor_username"),
        admin=cluster.setting("pg_admin_username"),
        pwd_enc=cluster.setting("pg_pwd_enc"),
        admin_ip=ip_of(member.get("admin_ip")),
        infra_ips=tuple(inv.infra_ips),
        # sorted by name, as Pigsty expands the cluster alias
        cluster_ips=tuple(m.ip for m in sorted(cluster.members, key=lambda m: str(m.host)) if m.ip),
        intranet=tuple(intranet) if isinstance(intranet, (list, tuple)) else (),
    )


def node_size(member: Member) -> Dict[str, Any]:
    """Memory/CPU/disk to tune the member for.

    ``pg_node_mem_mb``/``pg_node_cpu`` when set (containers that share a
    host see the host's memory and CPUs in their facts: give them their
    share), else the gathered facts, else :data:`REFERENCE_NODE` (a dry
    render gathers nothing)."""
    mem = member.vars.get("pg_node_mem_mb")
    cpu = member.vars.get("pg_node_cpu")
    source = "inventory"
    if not (is_int(mem) and is_int(cpu)):
        mem = member.vars.get("ansible_memtotal_mb")
        cpu = member.vars.get("ansible_processor_vcpus")
        source = "facts"
    if not (is_int(mem) and is_int(cpu)):
        mem, cpu, source = REFERENCE_NODE["mem_mb"], REFERENCE_NODE["cpu"], "reference"
    return {
        "mem_mb": mem,
        "cpu": cpu,
        "disk_gb": member.vars.get("pg_disk_gb"),
        "source": source,
    }


@functools.lru_cache(maxsize=4096)
def _tune(profile: Any, mem_mb: int, cpu: int, disk_gb: Any, ratio: Any, max_conn: Any, version: Any) -> Dict[str, str]:
    return tuning_mod.tune(
        profile, mem_mb, cpu, disk_gb, shared_buffer_ratio=ratio, max_connections=max_conn, pg_version=version
    )


def member_tuning(cluster: Cluster, member: Member) -> Dict[str, str]:
    """PostgreSQL parameters of one member (identical nodes share one
    computation). Callers must not change the returned dict."""
    node = node_size(member)
    return _tune(
        member.get("pg_conf"),
        node["mem_mb"],
        node["cpu"],
        node["disk_gb"],
        member.get("pg_shared_buffer_ratio"),
        member.get("pg_max_conn"),
        cluster.setting("pg_version"),
    )


def _cluster(inv: Inventory, name: str) -> Cluster:
    cluster = inv.clusters.get(name)
    if cluster is None:
        raise KeyError("no cluster named %r in the inventory" % name)
    return cluster


def cluster_plan(inv: Inventory, name: str) -> Dict[str, Any]:
    """Everything that is the same on every member of a cluster."""
    cluster = _cluster(inv, name)
    profile = tuning_mod.profile_name(cluster.leader.get("pg_conf") if cluster.leader else None)
    plan = ha_mod.ha_plan(cluster.setting("pg_rto"), cluster.setting("pg_rpo"), profile)
    default_roles = cluster.setting("pg_default_roles")
    users = cluster.setting("pg_users")
    return {
        "identity": cluster.identity(),
        "members": [m.identity() for m in cluster.members],
        "ha": plan,
        # parameters Patroni applies cluster-wide, agreed between members
        "tuning": tuning_mod.cluster_settings(member_tuning(cluster, m) for m in cluster.members),
        "services": access.add_sources(
            svc_mod.build_services(cluster, plan["server_options"]),
            {m.host: _access_file(inv, cluster, m) for m in cluster.members},
        ),
        "pgbouncer": {
            "users": objects.pgbouncer_users(default_roles, users),
            "databases": objects.pgbouncer_databases(cluster.setting("pg_databases")),
        },
        "etcd": etcd_plan(inv, cluster),
        "vip": vip_plan(cluster),
        "repo_host": repo_host_plan(inv, cluster),
        "standby": standby_plan(inv, cluster),
    }


def standby_plan(inv: Inventory, cluster: Cluster) -> Dict[str, Any]:
    """Replication across clusters (docs/dr.md): ``followers``, the
    permanent slots this cluster keeps for the standby clusters of the
    inventory that follow it; for a standby cluster whose source is a
    cluster of the inventory, ``source`` (its inventory host, cluster and
    REST API), ``slot``, the slot it replicates through there, and
    ``seed``, the source's stanza when the leader is restored from the
    source's pgBackRest repository (``pg_standby_seed``)."""
    out: Dict[str, Any] = {
        "followers": upstream_mod.followers(inv.hostvars, cluster.name),
        "source": None,
        "slot": None,
        # the source's stanza when the leader is seeded by a restore from
        # its repository (pg_standby_seed: pgbackrest)
        "seed": upstream_mod.seed_stanza(cluster, inv.hostvars),
    }
    leader = cluster.leader
    if leader is not None and leader.upstream_source is not None:
        src = leader.upstream_source
        hvars = inv.hostvars.get(src) or {}
        name = str(hvars.get("pg_cluster"))
        out["source"] = {
            "host": src,
            "cluster": name,
            "api": Member(src, name, hvars, host_addresses({src: hvars}).get(src)).patroni_url,
            # every member's REST API: any of them takes a PATCH /config
            "apis": upstream_mod.member_apis(inv.hostvars, name),
        }
        if upstream_mod.slot_source(inv.hostvars, cluster.name, leader.upstream, host_addresses(inv.hostvars)):
            out["slot"] = upstream_mod.standby_slot(cluster.name)
    return out


def etcd_plan(inv: Inventory, cluster: Cluster) -> Dict[str, Any]:
    """Where the cluster's state lives in etcd, and who may touch it.

    With ``etcd_auth`` (the etcd group's setting) the cluster has an etcd
    user and a role of its own name, read-write on ``prefix`` only."""
    prefix = "%s/%s/" % (cluster.setting("pg_namespace").rstrip("/"), cluster.name)
    protocol = etcd_protocol(inv)
    # while the members move to TLS (etcd_tls_mode_now, read by pgsql.yml),
    # HTTPS is on their bridge port, and Patroni must not follow the plain
    # HTTP client URLs they advertise: it asks the listed endpoints only
    # (not for an etcd_protocol of the inventory: an etcd managed elsewhere)
    bridge = (
        protocol == "https"
        and cluster.setting("etcd_protocol") is None
        and etcd_tls.clients_port([m.get("etcd_tls_mode_now") for m in inv.etcd]) == "bridge"
    )
    port = "etcd_tls_bridge_port" if bridge else "etcd_port"
    return {
        "namespace": cluster.setting("pg_namespace"),
        "prefix": prefix,
        "leader_key": prefix + "leader",
        "endpoints": ["%s:%s" % (m.ip, m.get(port)) for m in inv.etcd if m.ip],
        "auth": etcd_auth(inv),
        "protocol": protocol,
        "use_proxies": bridge,
        "username": cluster.name,
    }


def etcd_protocol(inv: Inventory) -> str:
    """How clients reach etcd: ``https`` unless a member of the etcd group
    has ``etcd_tls_enabled: false`` (the etcd role keeps the members
    agreeing; its client port answers HTTPS in every TLS mode)."""
    plain = any(etcd_tls.desired_mode(m.get("etcd_tls_enabled")) == "plain" for m in inv.etcd)
    return "http" if plain else "https"


def etcd_auth(inv: Inventory) -> bool:
    """Whether etcd runs with authentication (the etcd members agree)."""
    return all(m.get("etcd_auth") is not False for m in inv.etcd)


def vip_plan(cluster: Cluster) -> Dict[str, Any]:
    address = cluster.setting("pg_vip_address")
    try:
        iface = ipaddress.ip_interface(address)
        ip, prefix = str(iface.ip), iface.network.prefixlen
    except (TypeError, ValueError):
        ip, prefix = None, None
    return {
        "enabled": cluster.setting("pg_vip_enabled") is True,
        "address": address,
        "ip": ip,
        "prefix": prefix,
        "interface": cluster.setting("pg_vip_interface"),
    }


def repo_host_name(inv: Inventory, cluster: Cluster) -> Optional[str]:
    """The inventory host that keeps the cluster's repository: the
    repository's ``host``, or the first host of the group it names (the
    default ``backup`` repository names ``infra``); None without one."""
    first = cluster.members[0].vars
    if first.get("pgbackrest_enabled", True) is False:
        return None
    repos = first.get("pgbackrest_repo", settings_mod.PGBACKREST_REPO_DEFAULTS)
    repo = repos.get(cluster.setting("pgbackrest_method")) if isinstance(repos, dict) else None
    host = repo.get("host") if isinstance(repo, dict) else None
    if not isinstance(host, str):
        return None
    members = inv.groups.get(host)
    if members:
        return members[0]
    return host


def repo_host_plan(inv: Inventory, cluster: Cluster) -> Optional[Dict[str, str]]:
    """``{name, address}`` of the cluster's repository host (the name
    plays delegate to, the address pgBackRest dials), or None."""
    name = repo_host_name(inv, cluster)
    if name is None:
        return None
    hvars = inv.hostvars.get(name, {})
    address = ip_of(name) or ip_of(hvars.get("ansible_host")) or hvars.get("ansible_host") or name
    return {"name": name, "address": address}


def _drill_inputs(inv: Inventory, cluster: Cluster) -> Dict[str, Any]:
    """What the drill of ``cluster`` is planned from: its settings, the
    node it runs on, the repository's type, and the ports and directories
    of the deployment on that node."""
    # as given (None: unset), so that a default port or directory is
    # chosen rather than refused
    settings = {
        name: next((m.vars[name] for m in cluster.members if m.vars.get(name) is not None), None)
        for name in drill_mod.DEFAULTS
    }
    first = cluster.members[0].vars
    repos = first.get("pgbackrest_repo", settings_mod.PGBACKREST_REPO_DEFAULTS)
    repo = repos.get(cluster.setting("pgbackrest_method")) if isinstance(repos, dict) else None
    repo = repo if isinstance(repo, dict) else {}
    repo_type = repo.get("type", "posix")
    small = {
        "identity": cluster.identity(),
        "members": [m.identity() for m in cluster.members],
        "repo_host": repo_host_plan(inv, cluster),
    }
    node = drill_mod.drill_node(small, repo_type)["host"]
    # every component's default port, pgBackRest's TLS server, and what
    # the clusters on the node set
    ports: List[Any] = list(PORTS.values()) + [pgbackrest_conf.PGBACKREST_TLS_PORT]
    protected: List[Any] = []
    if repo.get("type", "posix") == "posix":
        protected.append(repo.get("path"))
    for other in inv.clusters.values():
        mine = [m for m in other.members if m.host == node]
        for m in mine:
            ports += [m.get("pg_port"), m.get("patroni_port"), m.get("pgbouncer_port")]
            protected.append(m.vars.get("pg_data", "/pg/data"))
        if mine or other is cluster:
            for svc in list(other.setting("pg_default_services") or []) + list(other.setting("pg_services") or []):
                if isinstance(svc, dict):
                    ports.append(svc.get("port"))
    return {
        "settings": settings,
        "small": small,
        "node": node,
        "repo_type": repo_type,
        "ports": ports,
        "protected": protected,
    }


def drill_plan(inv: Inventory, name: str) -> Dict[str, Any]:
    """The restore drill of cluster ``name`` (:func:`drill.drill_plan`)."""
    cluster = _cluster(inv, name)
    given = _drill_inputs(inv, cluster)
    version = cluster.setting("pg_version")
    own = cluster.members[0].vars.get("pg_bin_dir")
    bin_dir = patroni_conf.bin_dir(
        None if given["small"]["repo_host"] else own, version if is_int(version) else settings_mod.DEBIAN_PG_VERSION
    )
    return drill_mod.drill_plan(
        given["small"],
        given["settings"],
        repo_type=given["repo_type"],
        dbsu=cluster.setting("pg_dbsu"),
        bin_dir=bin_dir,
        taken_ports=given["ports"],
    )


def etcd_users(inv: Inventory) -> List[Dict[str, Any]]:
    """The etcd user of every cluster: name, key prefix and password."""
    return [
        {
            "name": c.name,
            "prefix": etcd_plan(inv, c)["prefix"],
            "password": etcd_vip.etcd_password(c.setting("pg_etcd_password"), c.name),
        }
        for c in inv.clusters.values()
    ]


def member_hba(inv: Inventory, cluster: Cluster, member: Member):
    """(pg_hba lines, pgbouncer hba lines) of one member, computed once."""
    files = inv.hba_files.get(member.host)
    if files is None:
        ctx = hba_context(inv, cluster, member)
        pg_rules = member.vars.get("pg_default_hba_rules")
        if pg_rules is None:
            pg_rules = list(hba_mod.DEFAULT_PG_HBA_RULES)
        pgb_rules = member.vars.get("pgb_default_hba_rules")
        if pgb_rules is None:
            pgb_rules = list(hba_mod.default_pgb_hba_rules(_pgbouncer_tls(member)))
        files = inv.hba_files[member.host] = (
            hba_mod.hba_lines(list(pg_rules) + list(member.get("pg_hba_rules") or []), ctx, "postgres"),
            hba_mod.hba_lines(list(pgb_rules) + list(member.get("pgb_hba_rules") or []), ctx, "pgbouncer"),
        )
    return files


def _pgbouncer_tls(member: Member) -> bool:
    return member.vars.get("pgbouncer_sslmode", settings_mod.PGBOUNCER_SSLMODE) != "disable"


def _access_file(inv: Inventory, cluster: Cluster, member: Member) -> Dict[str, Any]:
    """What access.add_sources reads of one member."""
    pg_hba, pgb_hba = member_hba(inv, cluster, member)
    return {
        "pg_port": member.get("pg_port"),
        "pgbouncer_port": member.get("pgbouncer_port"),
        "pg_hba": pg_hba,
        "pgb_hba": pgb_hba,
        "pgb_tls": _pgbouncer_tls(member),
    }


def instance_plan(inv: Inventory, host: str) -> Dict[str, Any]:
    """Everything specific to one instance: identity, HBA, tuning."""
    cluster = inv.cluster_of(host)
    if cluster is None:
        raise KeyError("host %r is not in any PostgreSQL cluster" % host)
    member = cast(Member, cluster.member(host))  # host is in cluster
    pg_hba, pgb_hba = member_hba(inv, cluster, member)
    node = node_size(member)
    vip = vip_plan(cluster)
    return {
        "identity": member.identity(),
        "pg_hba": list(pg_hba),
        "pgb_hba": list(pgb_hba),
        "node": node,
        "tuning": dict(member_tuning(cluster, member)),
        # the server certificate's names: every way clients reach it
        "certificate": pki.server_names(
            member.instance,
            cluster.name,
            member.ip or member.host,
            vip=vip["ip"] if vip["enabled"] else None,
            dns_suffix=cluster.setting("pg_dns_suffix"),
            nodename=member.nodename,
        ),
    }


def published_clusters(inv: Inventory, host: str) -> List[str]:
    """The clusters whose services the HAProxy of ``host`` publishes: its
    own cluster when the cluster has no ``pg_service_provider``, plus every
    cluster whose provider group holds the host. Sorted by name."""
    out = []
    for name, cluster in sorted(inv.clusters.items()):
        provider = cluster.setting("pg_service_provider")
        if provider:
            publish = host in (inv.groups.get(provider) or ())
        else:
            publish = cluster.member(host) is not None
        if publish:
            out.append(name)
    return out


def host_services(inv: Inventory, host: str) -> List[Dict[str, Any]]:
    """The services the HAProxy of ``host`` publishes
    (:func:`published_clusters`), sorted by port."""
    out: List[Dict[str, Any]] = []
    for name in published_clusters(inv, host):
        out.extend(cluster_plan(inv, name)["services"])
    return sorted(out, key=lambda s: (s["port"], s["name"]))


def peer_hosts(inv: Inventory, hosts: Sequence[str]) -> List[str]:
    """The HAProxy nodes outside ``hosts`` that publish a service of a
    cluster with a member in ``hosts`` (:func:`peer_services`)."""
    inside = set(hosts)
    publishers: Set[str] = set()
    for cluster in inv.clusters.values():
        if not any(m.host in inside for m in cluster.members):
            continue
        provider = cluster.setting("pg_service_provider")
        if provider:
            publishers.update(inv.groups.get(provider) or ())
        else:
            publishers.update(m.host for m in cluster.members)
    return sorted(publishers - inside)


def peer_services(inv: Inventory, hosts: Sequence[str]) -> List[Dict[str, Any]]:
    """The HAProxy nodes outside ``hosts`` that publish a service of a
    cluster with a member in ``hosts``, each with every service it publishes:
    ``[{"host": ..., "service": {...}}, ...]``, one entry per fragment,
    sorted by host then port. A run limited to a new member
    (``pgsql.yml -l <new ip>``) rewrites these so that the other nodes route
    to it too; empty when ``hosts`` covers every such node."""
    return [
        {"host": host, "service": service} for host in peer_hosts(inv, hosts) for service in host_services(inv, host)
    ]


def plan_all(inv: Inventory) -> Dict[str, Any]:
    """Cluster and instance plans of every loaded cluster (the benchmark and
    the dry render use this)."""
    with _collector_paused():
        return {
            "clusters": {n: cluster_plan(inv, n) for n in inv.clusters},
            "instances": {m.host: instance_plan(inv, m.host) for c in inv.clusters.values() for m in c.members},
        }
