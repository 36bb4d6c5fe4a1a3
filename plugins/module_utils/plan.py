# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Whole-inventory validation and the per-cluster / per-instance plans.

This is the entry point the Ansible plugins call::

    inv = analyze(hostvars, groups)          # load + validate, never raises
    inv_problems = problems(inv)             # every problem, sorted
    cplan = cluster_plan(inv, "pg-test")     # services, HA plan, pools
    iplan = instance_plan(inv, "10.10.10.11")  # identity, HBA, tuning

or :func:`require` to raise :class:`~errors.ModelError` with every problem.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import ipaddress
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    access,
    cron,
    dns as dns_mod,
    drill as drill_mod,
    etcd_vip,
    guc,
    ha as ha_mod,
    hba as hba_mod,
    objects,
    patroni_conf,
    pgbackrest_conf,
    pigsty as pigsty_mod,
    safety,
    services as svc_mod,
    settings as settings_mod,
    tuning as tuning_mod,
    upstream,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    CLUSTER_WIDE,
    MODEL_DEFAULTS,
    PORTS,
    SANDBOX_PASSWORDS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    collapse_cluster_wide,
    Problem,
    mask_secrets,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Cluster,
    Inventory,
    Member,
    ip_of,
    is_int,
    load,
)

# The node assumed when the inventory carries no facts (dry render): the
# tuning is shown for this size and the rendered file says so.
REFERENCE_NODE: Dict[str, Any] = {"mem_mb": 4096, "cpu": 2, "disk_gb": None}

# Host variables the model reads (plus the fields JMESPath selectors read):
# its own vocabulary and the settings of the configuration files.
MODEL_VARS = tuple(sorted(set(MODEL_DEFAULTS) | set(
    settings_mod.SETTINGS_DEFAULTS) | {
    "pg_cluster", "ansible_host", "nodename", "pigpen_sandbox",
    "ansible_memtotal_mb", "ansible_processor_vcpus", "pg_disk_gb",
    "pg_node_mem_mb", "pg_node_cpu", "node_crontab",
    "etcd_seq", "etcd_cluster", *SANDBOX_PASSWORDS}))


# The facts the model reads, as top-level variables (inject_facts_as_vars)
# and under ansible_facts.
FACT_VARS = {"ansible_memtotal_mb": "memtotal_mb",
             "ansible_processor_vcpus": "processor_vcpus"}


def analyze(hostvars: Mapping[str, Mapping[str, Any]],
            groups: Mapping[str, Sequence[str]],
            clusters: Optional[Iterable[str]] = None) -> Inventory:
    """Load the inventory (see :func:`model.load`)."""
    return load(hostvars, groups, clusters)


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


def problems(inv: Inventory) -> List[Problem]:
    """Every problem of the loaded clusters, sorted, duplicates removed."""
    with _collector_paused():
        found = list(inv.problems)
        for cluster in inv.clusters.values():
            found.extend(check_cluster(inv, cluster))
        found.extend(svc_mod.check_providers(list(inv.clusters.values()),
                                             inv.groups))
        found.extend(_check_addresses(inv))
        found.extend(upstream.problems(inv))
        found.extend(_check_etcd(inv))
        found.extend(_check_other_nodes(inv))
        found.extend(dns_mod.problems(inv))
        found.extend(dns_mod.node_problems(inv))
        found.extend(safety.problems(inv))
        strays = safety.stray_clusters(inv)
        if strays:
            found = safety.without_stray_echoes(found, inv, strays) + \
                safety.stray_problems(inv, strays)
        return ModelError(found).problems if found else []


def require(inv: Inventory) -> Inventory:
    """Raise :class:`ModelError` listing every problem, else return inv."""
    found = problems(inv)
    if found:
        raise ModelError(found)
    return inv


def warnings(inv: Inventory) -> List[str]:
    """Things that are legal but dangerous: sandbox passwords outside the
    sandbox. One line per variable, naming the clusters using it."""
    hits: Dict[str, List[str]] = {}
    repo_hits: Dict[str, List[str]] = {}
    empty_etcd: Dict[str, List[str]] = {}
    for cluster in inv.clusters.values():
        for member in cluster.members:
            if member.vars.get("pigpen_sandbox") is True:
                continue
            for var, default in SANDBOX_PASSWORDS.items():
                value = member.vars.get(var)
                if var == "pg_etcd_password" and value == "":
                    where = empty_etcd.setdefault(var, [])
                    if cluster.name not in where:
                        where.append(cluster.name)
                elif value is None or value == default:
                    where = hits.setdefault(var, [])
                    if cluster.name not in where:
                        where.append(cluster.name)
            for line in settings_mod.secret_warnings(member.vars):
                where = repo_hits.setdefault(line, [])
                if cluster.name not in where:
                    where.append(cluster.name)
    out = ["%s is the public sandbox default (%s) in cluster(s) %s: set a "
           "secret value (e.g. in an ansible-vault file) before this "
           "deployment holds real data" % (var, SANDBOX_PASSWORDS[var],
                                           ", ".join(names))
           for var, names in sorted(hits.items())]
    out += ["pg_etcd_password is empty in cluster(s) %s: as in Pigsty, each "
            "cluster's etcd user gets the cluster name as its password, which "
            "anyone can guess; set a secret value (e.g. in an ansible-vault "
            "file)" % ", ".join(names) for names in empty_etcd.values()]
    out += ["%s (cluster(s) %s)" % (line, ", ".join(names))
            for line, names in sorted(repo_hits.items())]
    return out


def pigsty_warnings(inv: Inventory, own: Iterable[str] = ()) -> List[str]:
    """Pigsty settings of the clusters' hosts that this collection does not
    implement (:mod:`pigsty`), one line per setting (or group of another
    module's settings) naming the clusters. ``own``: the roles' variables,
    which are settings of this collection."""
    return pigsty_mod.warnings(
        [(c.name, [m.vars for m in c.members])
         for c in inv.clusters.values()],
        own=set(own) | set(MODEL_VARS))


# ---------------------------------------------------------------- checks

def check_cluster(inv: Inventory, cluster: Cluster) -> List[Problem]:
    out: List[Problem] = []
    name = cluster.name

    def problem(host, fld, value, what, fix):
        out.append(Problem(name, host, fld, value, what, fix))

    # Cluster-wide settings must agree between members.
    first = cluster.members[0]
    for var in CLUSTER_WIDE:
        ref = first.vars.get(var)
        for m in cluster.members[1:]:
            if m.vars.get(var) != ref:
                secret = var in SANDBOX_PASSWORDS
                problem(m.host, var,
                        "(hidden)" if secret else m.vars.get(var),
                        "differs from %s's value %s; it is a cluster-wide "
                        "setting" % (first.host, "(hidden)" if secret
                                     else _short(mask_secrets(ref))),
                        "set %s once in the group vars of %s" % (var, name))
                break

    out.extend(ha_mod.check_ha(cluster.setting("pg_rto"),
                               cluster.setting("pg_rpo"), cluster=name))
    out.extend(svc_mod.check_services(cluster))
    dbsu = cluster.setting("pg_dbsu")
    out.extend(objects.check_objects(
        name, cluster.setting("pg_default_roles"),
        cluster.setting("pg_users"), cluster.setting("pg_databases"), dbsu))

    etcd_pass = cluster.setting("pg_etcd_password")
    if etcd_pass != "" and not _password_ok(etcd_pass):
        problem(None, "pg_etcd_password", "(hidden)", _PASSWORD_WHAT,
                _PASSWORD_FIX)
    namespace = cluster.setting("pg_namespace")
    if not isinstance(namespace, str) or not namespace.startswith("/") or \
            namespace.endswith("/") and namespace != "/":
        problem(None, "pg_namespace", namespace,
                "is not an etcd key prefix",
                "use an absolute prefix without a trailing slash, e.g. /pg")
    pwd_enc = cluster.setting("pg_pwd_enc")
    if pwd_enc not in ("scram-sha-256", "md5"):
        problem(None, "pg_pwd_enc", pwd_enc, "is not a password encryption",
                "use scram-sha-256 (recommended) or md5")
    for var in ("pg_dbsu", "pg_replication_username", "pg_monitor_username",
                "pg_admin_username"):
        value = cluster.setting(var)
        if not isinstance(value, str) or not objects.IDENT.match(value):
            problem(None, var, value, "is not a valid role name",
                    "use letters, digits and _, e.g. %s" %
                    MODEL_DEFAULTS[var])
    out.extend(_check_vip(cluster))
    out.extend(_check_drill(inv, cluster))
    out.extend(_check_repo_host(inv, cluster))
    out.extend(cron.pg_crontab_problems(name, cluster.setting("pg_crontab"),
                                        dbsu))
    safeguard = cluster.setting("pg_safeguard")
    if not isinstance(safeguard, bool):
        problem(None, "pg_safeguard", safeguard, "is not a boolean",
                "write true or false without quotes")

    for m in cluster.members:
        ctx = hba_context(inv, cluster, m)
        for var, kind in (("pg_default_hba_rules", "postgres"),
                          ("pg_hba_rules", "postgres"),
                          ("pgb_default_hba_rules", "pgbouncer"),
                          ("pgb_hba_rules", "pgbouncer")):
            rules = m.vars.get(var)
            if rules is None:
                continue
            out.extend(hba_mod.check_hba_rules(
                rules, kind, var, cluster=name, host=m.host, ctx=ctx))
        out.extend(settings_mod.check_config_settings(
            m.vars, cluster=name, host=m.host))
        for var, low in (("pg_node_mem_mb", 256), ("pg_node_cpu", 1)):
            value = m.vars.get(var)
            if value is not None and (not is_int(value) or value < low):
                problem(m.host, var, value, "is not a whole number of at "
                        "least %d" % low, "write e.g. %s: %d (no unit, no "
                        "quotes), or leave it unset to use the gathered "
                        "facts" % (var, 1024 if low > 1 else 1))
        if (m.vars.get("pg_node_mem_mb") is None) != (
                m.vars.get("pg_node_cpu") is None):
            problem(m.host, "pg_node_mem_mb", m.vars.get("pg_node_mem_mb"),
                    "pg_node_mem_mb and pg_node_cpu go together",
                    "set both, or neither (then the facts are used)")
        out.extend(_check_access_limits(m))
        out.extend(cron.node_crontab_problems(name, m.host,
                                              m.vars.get("node_crontab")))
        node = node_size(m)
        tuning_found = tuning_mod.check_tuning(
            m.get("pg_conf"), node["mem_mb"], node["cpu"], node["disk_gb"],
            m.get("pg_shared_buffer_ratio"), m.get("pg_max_conn"),
            cluster=name, host=m.host)
        out.extend(tuning_found)
        if not tuning_found and node["source"] != "reference":
            out.extend(_parameter_memory(cluster, m, node))
    out.extend(_object_parameter_names(cluster))
    return _collapse_cluster_wide(cluster, out)


def _parameter_memory(cluster: Cluster, m: Member, node: Mapping[str, Any]
                      ) -> List[Problem]:
    """``pg_parameters`` beyond the member's node (:func:`guc.memory_problems`)."""
    try:
        tuned = member_tuning(cluster, m)
    except ModelError:
        return []           # the settings checks report why
    return guc.memory_problems(tuned, m.get("pg_parameters"), node["mem_mb"],
                               cluster=cluster.name, host=m.host)


def _object_parameter_names(cluster: Cluster) -> List[Problem]:
    """Parameter names of the users', roles' and databases' ``parameters``
    that the cluster's PostgreSQL does not know."""
    out: List[Problem] = []
    version = cluster.setting("pg_version")
    for var in ("pg_default_roles", "pg_users", "pg_databases"):
        items = cluster.setting(var)
        for i, item in enumerate(items if isinstance(items, list) else ()):
            if not isinstance(item, dict) or \
                    not isinstance(item.get("parameters"), dict):
                continue
            name = item.get("name")
            where = "%s[%d](%s)" % (var, i, name) if isinstance(name, str) \
                else "%s[%d]" % (var, i)
            params = item["parameters"]
            for key in sorted(params, key=str):
                if not isinstance(key, str) or not safety.PARAMETER.match(key):
                    continue    # safety.sql_problems reports it
                found = guc.name_problem(
                    cluster.name, None, "%s.parameters.%s" % (where, key),
                    key, params[key], version)
                if found is not None:
                    out.append(found)
    return out


def tuning_warnings(inv: Inventory) -> List[str]:
    """What :func:`guc.memory_problems` says of the members tuned for the
    reference node (no facts gathered, no pg_node_mem_mb): a warning, since
    the real node decides (the plans refuse it once the facts are there).
    Each said once per cluster when every member says it."""
    out: List[str] = []
    for cluster in inv.clusters.values():
        found: List[Problem] = []
        for m in cluster.members:
            node = node_size(m)
            if node["source"] != "reference" or tuning_mod.check_tuning(
                    m.get("pg_conf"), node["mem_mb"], node["cpu"],
                    node["disk_gb"], m.get("pg_shared_buffer_ratio"),
                    m.get("pg_max_conn")):
                continue
            found.extend(_parameter_memory(cluster, m, node))
        out.extend("%s (on the reference node of %d MiB, as no facts were "
                   "gathered: the nodes' own memory decides when the "
                   "playbooks run)" % (p, REFERENCE_NODE["mem_mb"])
                   for p in _collapse_cluster_wide(cluster, found))
    return out


def _collapse_cluster_wide(cluster: Cluster, found: List[Problem]
                           ) -> List[Problem]:
    """:func:`errors.collapse_cluster_wide` over the cluster's members."""
    return collapse_cluster_wide([m.host for m in cluster.members], found)


_DURATION = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?\Z")


def _check_access_limits(m: Member) -> List[Problem]:
    """Limits of the HAProxy, pgbouncer and VIP roles on one member (the
    roles assert the same rules; this catches them before any node is
    touched)."""
    out: List[Problem] = []
    cls = m.cluster

    def whole(var: str, low: int, fix: str) -> bool:
        value = m.get(var)
        if not is_int(value) or value < low:
            out.append(Problem(cls, m.host, var, value,
                               "is not a whole number of at least %d" % low,
                               fix))
            return False
        return True

    ok = whole("haproxy_maxconn", 100, "write e.g. haproxy_maxconn: 4000")
    ok = whole("haproxy_limit_nofile", 1024,
               "write e.g. haproxy_limit_nofile: 65536") and ok
    if ok and m.get("haproxy_limit_nofile") < \
            2 * m.get("haproxy_maxconn") + 100:
        out.append(Problem(
            cls, m.host, "haproxy_limit_nofile", m.get("haproxy_limit_nofile"),
            "is below 2 x haproxy_maxconn (%d) + 100: HAProxy needs about two "
            "files per connection and would not start" %
            m.get("haproxy_maxconn"),
            "lower haproxy_maxconn or raise haproxy_limit_nofile to at least "
            "%d" % (2 * m.get("haproxy_maxconn") + 100)))
    for var in ("haproxy_client_timeout", "haproxy_server_timeout",
                "haproxy_connect_timeout"):
        value = m.get(var)
        if not isinstance(value, (str, int)) or isinstance(value, bool) or \
                not _DURATION.match(str(value)):
            out.append(Problem(cls, m.host, var, value,
                               "is not an HAProxy duration",
                               "write a number with an optional unit (us, "
                               "ms, s, m, h, d), e.g. 24h"))
    if whole("pgbouncer_limit_nofile", 1024,
             "write e.g. pgbouncer_limit_nofile: 65536"):
        clients = m.get("pgbouncer_max_client_conn",
                        settings_mod.SETTINGS_DEFAULTS["pgbouncer_max_client_conn"])
        servers = m.get("pgbouncer_max_db_connections",
                        settings_mod.SETTINGS_DEFAULTS["pgbouncer_max_db_connections"])
        need = clients + servers + 100 if is_int(clients) and is_int(servers) \
            else None
        if need is not None and m.get("pgbouncer_limit_nofile") < need:
            out.append(Problem(
                cls, m.host, "pgbouncer_limit_nofile",
                m.get("pgbouncer_limit_nofile"),
                "is below pgbouncer_max_client_conn (%d) + "
                "pgbouncer_max_db_connections (%d) + 100: pgbouncer would "
                "refuse clients before max_client_conn" % (clients, servers),
                "lower pgbouncer_max_client_conn or raise "
                "pgbouncer_limit_nofile to at least %d" % need))
    whole("vip_interval", 100, "write e.g. vip_interval: 1000 (milliseconds)")
    return out


def _short(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PASSWORD_WHAT = "is not a password of 4 to 128 printable characters"
_PASSWORD_FIX = ("quote a password of printable characters without spaces, "
                 "quotes or backslashes, e.g. from ansible-vault")


def _password_ok(value: Any) -> bool:
    return isinstance(value, str) and 4 <= len(value) <= 128 and \
        value.isprintable() and not any(c in value for c in " '\"\\")


def _check_repo_host(inv: Inventory, cluster: Cluster) -> List[Problem]:
    """A repository host (``pgbackrest_repo.<method>.host``) is a host of
    the inventory (the pgbackrest role sets it up by delegation) and not a
    member of the cluster it backs up (its backups would go with it)."""
    first = cluster.members[0].vars
    if first.get("pgbackrest_enabled", True) is False:
        return []
    method = cluster.setting("pgbackrest_method")
    repos = first.get("pgbackrest_repo", settings_mod.PGBACKREST_REPO_DEFAULTS)
    repo = repos.get(method) if isinstance(repos, dict) else None
    if not isinstance(repo, dict) or not isinstance(repo.get("host"), str):
        return []
    field = "pgbackrest_repo.%s.host" % method
    if repo["host"] in inv.groups and not inv.groups[repo["host"]]:
        return [Problem(cluster.name, None, field, repo["host"],
                        "names a group without hosts",
                        "add the repository host to group %s, or name it "
                        "by its address" % repo["host"])]
    # the repository names a host (a string), so repo_host_name finds one
    host = cast(str, repo_host_name(inv, cluster))
    if host in (m.host for m in cluster.members):
        return [Problem(cluster.name, None, field, host,
                        "is a member of the cluster it backs up: the "
                        "backups would be lost with that node",
                        "name a host that is not a member of %s, e.g. the "
                        "infra node" % cluster.name)]
    if host not in inv.hostvars:
        return [Problem(cluster.name, None, field, host,
                        "is not a host of the inventory, so no play can set "
                        "it up", "name the repository host as the inventory "
                        "does (e.g. the infra node's address), and list it "
                        "in a group such as infra")]
    return []


def repo_host_name(inv: Inventory, cluster: Cluster) -> Optional[str]:
    """The inventory host that keeps the cluster's repository: the
    repository's ``host``, or the first host of the group it names (the
    default ``backup`` repository names ``infra``); None without one."""
    first = cluster.members[0].vars
    if first.get("pgbackrest_enabled", True) is False:
        return None
    repos = first.get("pgbackrest_repo", settings_mod.PGBACKREST_REPO_DEFAULTS)
    repo = repos.get(cluster.setting("pgbackrest_method")) \
        if isinstance(repos, dict) else None
    host = repo.get("host") if isinstance(repo, dict) else None
    if not isinstance(host, str):
        return None
    members = inv.groups.get(host)
    if members:
        return members[0]
    return host


def repo_host_plan(inv: Inventory, cluster: Cluster
                   ) -> Optional[Dict[str, str]]:
    """``{name, address}`` of the cluster's repository host (the name
    plays delegate to, the address pgBackRest dials), or None."""
    name = repo_host_name(inv, cluster)
    if name is None:
        return None
    hvars = inv.hostvars.get(name, {})
    address = ip_of(name) or ip_of(
        hvars.get("ansible_host")) or hvars.get("ansible_host") or name
    return {"name": name, "address": address}

def _drill_inputs(inv: Inventory, cluster: Cluster) -> Dict[str, Any]:
    """What the drill of ``cluster`` is planned from: its settings, the
    node it runs on, the repository's type, and the ports and directories
    of the deployment on that node."""
    # as given (None: unset), so that a default port or directory is
    # chosen rather than refused
    settings = {name: next((m.vars[name] for m in cluster.members
                            if m.vars.get(name) is not None), None)
                for name in drill_mod.DEFAULTS}
    first = cluster.members[0].vars
    repos = first.get("pgbackrest_repo", settings_mod.PGBACKREST_REPO_DEFAULTS)
    repo = repos.get(cluster.setting("pgbackrest_method")) \
        if isinstance(repos, dict) else None
    repo = repo if isinstance(repo, dict) else {}
    repo_type = repo.get("type", "posix")
    small = {"identity": cluster.identity(),
             "members": [m.identity() for m in cluster.members],
             "repo_host": repo_host_plan(inv, cluster)}
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
            ports += [m.get("pg_port"), m.get("patroni_port"),
                      m.get("pgbouncer_port")]
            protected.append(m.vars.get("pg_data", "/pg/data"))
        if mine or other is cluster:
            for svc in list(other.setting("pg_default_services") or []) + \
                    list(other.setting("pg_services") or []):
                if isinstance(svc, dict):
                    ports.append(svc.get("port"))
    return {"settings": settings, "small": small, "node": node,
            "repo_type": repo_type, "ports": ports, "protected": protected}


def _check_drill(inv: Inventory, cluster: Cluster) -> List[Problem]:
    """The restore drill's settings (:func:`drill.check_drill`), with the
    ports and directories of the node it runs on."""
    if cluster.members[0].vars.get("pgbackrest_enabled", True) is False:
        return []
    given = _drill_inputs(inv, cluster)
    return drill_mod.check_drill(given["settings"], cluster=cluster.name,
                                 taken_ports=given["ports"],
                                 protected=given["protected"])


def drill_plan(inv: Inventory, name: str) -> Dict[str, Any]:
    """The restore drill of cluster ``name`` (:func:`drill.drill_plan`)."""
    cluster = _cluster(inv, name)
    given = _drill_inputs(inv, cluster)
    version = cluster.setting("pg_version")
    own = cluster.members[0].vars.get("pg_bin_dir")
    bin_dir = patroni_conf.bin_dir(
        None if given["small"]["repo_host"] else own,
        version if is_int(version) else settings_mod.DEBIAN_PG_VERSION)
    return drill_mod.drill_plan(given["small"], given["settings"],
                                repo_type=given["repo_type"],
                                dbsu=cluster.setting("pg_dbsu"),
                                bin_dir=bin_dir,
                                taken_ports=given["ports"])


def _check_vip(cluster: Cluster) -> List[Problem]:
    if cluster.setting("pg_vip_enabled") is not True:
        enabled = cluster.setting("pg_vip_enabled")
        if enabled not in (False, None):
            return [Problem(cluster.name, None, "pg_vip_enabled", enabled,
                            "is not a boolean",
                            "write true or false without quotes")]
        return []
    out: List[Problem] = []
    address = cluster.setting("pg_vip_address")
    fix = ("set pg_vip_address to a free address of the members' subnet "
           "with its prefix length, e.g. 10.10.10.3/24")
    try:
        iface = ipaddress.ip_interface(address) if isinstance(
            address, str) and "/" in address else None
    except ValueError:
        iface = None
    if iface is None:
        return [Problem(cluster.name, None, "pg_vip_address", address,
                        "is not an address with a prefix length (IP/mask)",
                        fix)]
    net = iface.network
    vip = iface.ip
    if net.num_addresses > 2 and vip in (net.network_address,
                                         net.broadcast_address):
        out.append(Problem(cluster.name, None, "pg_vip_address", address,
                           "is the network or broadcast address of %s" % net,
                           fix))
    for m in cluster.members:
        if not m.ip:
            continue
        ip = ipaddress.ip_address(m.ip)
        if ip == vip:
            out.append(Problem(cluster.name, m.host, "pg_vip_address",
                               address, "is the address of member %s itself"
                               % m.instance, fix))
        elif ip.version != vip.version or ip not in net:
            out.append(Problem(cluster.name, m.host, "pg_vip_address",
                               address, "is not in the subnet of member %s "
                               "(%s): an L2 VIP must be on the members' "
                               "subnet" % (m.instance, m.ip), fix))
    iface_name = cluster.setting("pg_vip_interface")
    if not isinstance(iface_name, str) or not iface_name or \
            len(iface_name) > 15 or "/" in iface_name or " " in iface_name:
        out.append(Problem(cluster.name, None, "pg_vip_interface", iface_name,
                           "is not a network interface name",
                           "name the interface that carries the members' "
                           "subnet, e.g. eth0"))
    return out


def _check_addresses(inv: Inventory) -> List[Problem]:
    """Two inventory hosts must not be the same machine by IP."""
    out: List[Problem] = []
    seen: Dict[str, Member] = {}
    for cluster in inv.clusters.values():
        for m in cluster.members:
            if not m.ip:
                continue
            other = seen.get(m.ip)
            if other is not None and other.host != m.host:
                out.append(Problem(
                    cluster.name, m.host, "ansible_host", m.ip,
                    "is also the address of host %s (%s)" % (
                        other.host, other.instance),
                    "give every PostgreSQL instance its own node"))
            else:
                seen[m.ip] = m
    return out


def _check_other_nodes(inv: Inventory) -> List[Problem]:
    """``node_crontab`` of the infra and etcd nodes that are no
    PostgreSQL instance (the node role applies it there too)."""
    out: List[Problem] = []
    seen = set()
    for group in ("infra", "etcd"):
        for host in inv.groups.get(group, ()):
            if host in seen or inv.cluster_of(host) is not None:
                continue
            seen.add(host)
            out.extend(cron.node_crontab_problems(
                group, host, (inv.hostvars.get(host) or {}).get(
                    "node_crontab")))
    return out


def _check_etcd(inv: Inventory) -> List[Problem]:
    if not inv.clusters:
        return []
    out: List[Problem] = []
    if not inv.etcd:
        return [Problem(None, None, "groups.etcd", None,
                        "PostgreSQL clusters need an etcd group (Patroni's "
                        "DCS), and the inventory has none",
                        "add a group 'etcd' with 1, 3 or 5 hosts, each with "
                        "an etcd_seq")]
    seqs: Dict[Any, str] = {}
    for m in inv.etcd:
        seq = m.vars.get("etcd_seq")
        if not is_int(seq) or seq < 0:
            out.append(Problem("etcd", m.host, "etcd_seq", seq,
                               "is not a non-negative integer",
                               "give every etcd member an integer etcd_seq, "
                               "unique in the etcd group"))
        elif seq in seqs:
            out.append(Problem("etcd", m.host, "etcd_seq", seq,
                               "is already used by %s" % seqs[seq],
                               "give every etcd member its own etcd_seq"))
        else:
            seqs[seq] = m.host
        if not m.ip:
            out.append(Problem("etcd", m.host, "ansible_host",
                               m.vars.get("ansible_host"),
                               "the etcd member has no IP address",
                               "name the host by its IP or set ansible_host"))
    auth = [m.vars.get("etcd_auth") for m in inv.etcd]
    for m, value in zip(inv.etcd, auth):
        if value is not None and not isinstance(value, bool):
            out.append(Problem("etcd", m.host, "etcd_auth", value,
                               "is not a boolean",
                               "write etcd_auth: true (or false) without "
                               "quotes"))
    if len({bool(v is not False) for v in auth}) > 1:
        out.append(Problem("etcd", None, "etcd_auth", auth,
                           "the etcd members disagree on authentication",
                           "set etcd_auth once, in the etcd group's vars"))
    if etcd_auth(inv):
        for m in inv.etcd:
            root = m.get("etcd_root_password",
                         SANDBOX_PASSWORDS["etcd_root_password"])
            if not _password_ok(root):
                out.append(Problem("etcd", m.host, "etcd_root_password",
                                   "(hidden)", _PASSWORD_WHAT, _PASSWORD_FIX))
    if len(inv.etcd) % 2 == 0:
        out.append(Problem("etcd", None, "groups.etcd",
                           [m.host for m in inv.etcd],
                           "an even number of etcd members tolerates no more "
                           "failures than one fewer and risks split votes",
                           "use 1, 3 or 5 etcd members"))
    return out


# ---------------------------------------------------------------- plans

def hba_context(inv: Inventory, cluster: Cluster, member: Member):
    """The HBA aliases' values for one member (computed once per member)."""
    ctx = inv.hba_contexts.get(member.host)
    if ctx is None:
        ctx = inv.hba_contexts[member.host] = _hba_context(inv, cluster,
                                                           member)
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
        cluster_ips=tuple(m.ip for m in sorted(cluster.members,
                                               key=lambda m: str(m.host))
                          if m.ip),
        intranet=tuple(intranet) if isinstance(intranet, (list, tuple))
        else (),
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
        mem, cpu, source = REFERENCE_NODE["mem_mb"], REFERENCE_NODE["cpu"], \
            "reference"
    return {
        "mem_mb": mem,
        "cpu": cpu,
        "disk_gb": member.vars.get("pg_disk_gb"),
        "source": source,
    }


@functools.lru_cache(maxsize=4096)
def _tune(profile: Any, mem_mb: int, cpu: int, disk_gb: Any, ratio: Any,
          max_conn: Any, version: Any) -> Dict[str, str]:
    return tuning_mod.tune(profile, mem_mb, cpu, disk_gb,
                           shared_buffer_ratio=ratio,
                           max_connections=max_conn, pg_version=version)


def member_tuning(cluster: Cluster, member: Member) -> Dict[str, str]:
    """PostgreSQL parameters of one member (identical nodes share one
    computation). Callers must not change the returned dict."""
    node = node_size(member)
    return _tune(member.get("pg_conf"), node["mem_mb"], node["cpu"],
                 node["disk_gb"], member.get("pg_shared_buffer_ratio"),
                 member.get("pg_max_conn"), cluster.setting("pg_version"))


def _cluster(inv: Inventory, name: str) -> Cluster:
    cluster = inv.clusters.get(name)
    if cluster is None:
        raise KeyError("no cluster named %r in the inventory" % name)
    return cluster


def cluster_plan(inv: Inventory, name: str) -> Dict[str, Any]:
    """Everything that is the same on every member of a cluster."""
    cluster = _cluster(inv, name)
    profile = tuning_mod.profile_name(
        cluster.leader.get("pg_conf") if cluster.leader else None)
    plan = ha_mod.ha_plan(cluster.setting("pg_rto"), cluster.setting("pg_rpo"),
                          profile)
    default_roles = cluster.setting("pg_default_roles")
    users = cluster.setting("pg_users")
    return {
        "identity": cluster.identity(),
        "members": [m.identity() for m in cluster.members],
        "ha": plan,
        # parameters Patroni applies cluster-wide, agreed between members
        "tuning": tuning_mod.cluster_settings(
            member_tuning(cluster, m) for m in cluster.members),
        "services": access.add_sources(
            svc_mod.build_services(cluster, plan["server_options"]),
            {m.host: _access_file(inv, cluster, m) for m in cluster.members}),
        "pgbouncer": {
            "users": objects.pgbouncer_users(default_roles, users),
            "databases": objects.pgbouncer_databases(
                cluster.setting("pg_databases")),
        },
        "etcd": etcd_plan(inv, cluster),
        "vip": vip_plan(cluster),
        "repo_host": repo_host_plan(inv, cluster),
    }


def etcd_plan(inv: Inventory, cluster: Cluster) -> Dict[str, Any]:
    """Where the cluster's state lives in etcd, and who may touch it.

    With ``etcd_auth`` (the etcd group's setting) the cluster has an etcd
    user and a role of its own name, read-write on ``prefix`` only."""
    prefix = "%s/%s/" % (cluster.setting("pg_namespace").rstrip("/"),
                         cluster.name)
    return {
        "namespace": cluster.setting("pg_namespace"),
        "prefix": prefix,
        "leader_key": prefix + "leader",
        "endpoints": ["%s:%s" % (m.ip, m.get("etcd_port"))
                      for m in inv.etcd if m.ip],
        "auth": etcd_auth(inv),
        "username": cluster.name,
    }


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


def etcd_users(inv: Inventory) -> List[Dict[str, Any]]:
    """The etcd user of every cluster: name, key prefix and password."""
    return [{"name": c.name,
             "prefix": etcd_plan(inv, c)["prefix"],
             "password": etcd_vip.etcd_password(
                 c.setting("pg_etcd_password"), c.name)}
            for c in inv.clusters.values()]


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
            pgb_rules = list(hba_mod.default_pgb_hba_rules(
                _pgbouncer_tls(member)))
        files = inv.hba_files[member.host] = (
            hba_mod.hba_lines(
                list(pg_rules) + list(member.get("pg_hba_rules") or []),
                ctx, "postgres"),
            hba_mod.hba_lines(
                list(pgb_rules) + list(member.get("pgb_hba_rules") or []),
                ctx, "pgbouncer"))
    return files


def _pgbouncer_tls(member: Member) -> bool:
    return member.vars.get("pgbouncer_sslmode", "disable") != "disable"


def _access_file(inv: Inventory, cluster: Cluster, member: Member
                 ) -> Dict[str, Any]:
    """What access.add_sources reads of one member."""
    pg_hba, pgb_hba = member_hba(inv, cluster, member)
    return {"pg_port": member.get("pg_port"),
            "pgbouncer_port": member.get("pgbouncer_port"),
            "pg_hba": pg_hba, "pgb_hba": pgb_hba,
            "pgb_tls": _pgbouncer_tls(member)}


def instance_plan(inv: Inventory, host: str) -> Dict[str, Any]:
    """Everything specific to one instance: identity, HBA, tuning."""
    cluster = inv.cluster_of(host)
    if cluster is None:
        raise KeyError("host %r is not in any PostgreSQL cluster" % host)
    member = cast(Member, cluster.member(host))     # host is in cluster
    pg_hba, pgb_hba = member_hba(inv, cluster, member)
    node = node_size(member)
    return {
        "identity": member.identity(),
        "pg_hba": list(pg_hba),
        "pgb_hba": list(pgb_hba),
        "node": node,
        "tuning": dict(member_tuning(cluster, member)),
    }


def host_services(inv: Inventory, host: str) -> List[Dict[str, Any]]:
    """The services the HAProxy of ``host`` publishes: its own cluster's
    when the cluster has no ``pg_service_provider``, plus those of every
    cluster whose provider group holds the host. Sorted by port."""
    out: List[Dict[str, Any]] = []
    for name, cluster in sorted(inv.clusters.items()):
        provider = cluster.setting("pg_service_provider")
        if provider:
            publish = host in (inv.groups.get(provider) or ())
        else:
            publish = cluster.member(host) is not None
        if publish:
            out.extend(cluster_plan(inv, name)["services"])
    return sorted(out, key=lambda s: (s["port"], s["name"]))


def peer_services(inv: Inventory, hosts: Sequence[str]
                  ) -> List[Dict[str, Any]]:
    """The HAProxy nodes outside ``hosts`` that publish a service of a
    cluster with a member in ``hosts``, each with every service it publishes:
    ``[{"host": ..., "service": {...}}, ...]``, one entry per fragment,
    sorted by host then port. A run limited to a new member
    (``pgsql.yml -l <new ip>``) rewrites these so that the other nodes route
    to it too; empty when ``hosts`` covers every such node."""
    inside = set(hosts)
    touched = [c for c in inv.clusters.values()
               if any(m.host in inside for m in c.members)]
    publishers: Set[str] = set()
    for cluster in touched:
        provider = cluster.setting("pg_service_provider")
        if provider:
            publishers.update(inv.groups.get(provider) or ())
        else:
            publishers.update(m.host for m in cluster.members)
    return [{"host": host, "service": service}
            for host in sorted(publishers - inside)
            for service in host_services(inv, host)]


def plan_all(inv: Inventory) -> Dict[str, Any]:
    """Cluster and instance plans of every loaded cluster (the benchmark and
    the dry render use this)."""
    with _collector_paused():
        return {
            "clusters": {n: cluster_plan(inv, n) for n in inv.clusters},
            "instances": {m.host: instance_plan(inv, m.host)
                          for c in inv.clusters.values() for m in c.members},
        }


# ---------------------------------------------------------- extraction

def snapshot(hostvars: Mapping[str, Mapping[str, Any]],
             groups: Mapping[str, Sequence[str]],
             hosts: Optional[Iterable[str]] = None
             ) -> Dict[str, Any]:
    """Copy, into plain dicts, the variables the model reads.

    ``hostvars`` may be Ansible's lazy ``hostvars`` (reading a key templates
    it); only the variables in :data:`MODEL_VARS` and the fields that the
    clusters' service selectors read are touched, so unrelated variables of
    other modules are never templated. ``hosts`` limits the result to the
    clusters those hosts belong to (all clusters when None); infra and etcd
    hosts are always included.

    Returns ``{"hostvars": {...}, "groups": {...}, "clusters": [...],
    "errors": [Problem, ...]}`` where errors are variables that could not
    be read (e.g. a template referring to an undefined variable).
    """
    errors: List[Problem] = []
    all_hosts = list(groups.get("all") or hostvars.keys())

    def read(host: str, names: Iterable[str], into: Dict[str, Any]) -> None:
        hv = hostvars[host]
        for name in names:
            if name in into:
                continue
            try:
                if name not in hv:
                    continue
                into[name] = hv[name]
            except Exception as exc:  # undefined variables, bad templates
                errors.append(Problem(
                    into.get("pg_cluster"), host, name, None,
                    "cannot be evaluated (%s)" % str(exc).splitlines()[0],
                    "define the variables it refers to"))

    def read_facts(host: str, into: Dict[str, Any]) -> None:
        # with inject_facts_as_vars off, the facts are only in ansible_facts
        missing = [n for n in FACT_VARS if n not in into]
        if not missing:
            return
        hv = hostvars[host]
        facts = hv["ansible_facts"] if "ansible_facts" in hv else None
        if isinstance(facts, Mapping):
            for name in missing:
                if FACT_VARS[name] in facts:
                    into[name] = facts[FACT_VARS[name]]

    def read_pigsty(host: str, into: Dict[str, Any]) -> None:
        # names only (reading a value templates it), and the values the
        # warnings about Pigsty settings need
        try:
            names = [n for n in hostvars[host] if
                     pigsty_mod.is_pigsty_setting(n)]
        except Exception:  # pylint: disable=broad-except
            names = []
        into[pigsty_mod.PRESENT_KEY] = tuple(sorted(names))
        wanted = [n for n in names if pigsty_mod.needs_value(n)]
        before = len(errors)
        read(host, wanted, into)
        del errors[before:]     # a value that cannot be read is not fatal

    cluster_of: Dict[str, Any] = {}

    def cluster_name(host: str) -> Any:
        if host not in cluster_of:
            try:
                hv = hostvars[host]
                name = hv["pg_cluster"] if "pg_cluster" in hv else None
                if name is not None and (not isinstance(name, str) or
                                         not name):
                    errors.append(Problem(
                        None, host, "pg_cluster", name,
                        "is not a non-empty string",
                        "set pg_cluster to the cluster name, e.g. pg-test"))
                    name = None
                cluster_of[host] = name
            except Exception as exc:
                cluster_of[host] = None
                errors.append(Problem(None, host, "pg_cluster", None,
                                      "cannot be evaluated (%s)" %
                                      str(exc).splitlines()[0],
                                      "define the variables it refers to"))
        return cluster_of[host]

    if hosts is None:
        candidates = all_hosts
        wanted = {cluster_name(h) for h in all_hosts}
    else:
        wanted = {cluster_name(h) for h in hosts if h in hostvars}
        # A cluster is normally the group of its name: read only that group,
        # unless some cluster has no such group (then every host is read).
        names = {c for c in wanted if isinstance(c, str)}
        if all(c in groups for c in names):
            chosen: Set[str] = set()
            for c in names:
                chosen.update(groups[c])
            candidates = [h for h in all_hosts if h in chosen]
        else:
            candidates = all_hosts
    wanted_hashable = {c for c in wanted if isinstance(c, str)}
    members = [h for h in candidates
               if cluster_name(h) in wanted_hashable]

    out: Dict[str, Dict[str, Any]] = {}
    for host in members:
        out[host] = {}
        read(host, MODEL_VARS, out[host])
        read(host, safety.SAFETY_VARS, out[host])
        read_facts(host, out[host])
        read_pigsty(host, out[host])
    # The fields that selectors read, per cluster (from its first member).
    fields_by_cluster: Dict[str, set] = {}
    for host in members:
        name = cluster_of[host]
        if name in fields_by_cluster:
            continue
        hv = out[host]
        svcs = list(hv.get("pg_default_services") or MODEL_DEFAULTS[
            "pg_default_services"]) + list(hv.get("pg_services") or [])
        fields: set = set()
        for svc in svcs:
            if isinstance(svc, dict):
                for key in ("selector", "backup"):
                    if isinstance(svc.get(key), str):
                        fields |= svc_mod.selector_fields(svc[key])
        fields_by_cluster[name] = fields
    for host in members:
        read(host, sorted(fields_by_cluster[cluster_of[host]]), out[host])
    for group in ("infra", "etcd"):
        for host in groups.get(group, ()):
            out.setdefault(host, {})
            read(host, safety.NODE_VARS, out[host])
    # Every other host: its address, cluster and VIP, for the collisions
    # across the whole inventory (safety.py). A value that cannot be read
    # is not this validation's business.
    for host in all_hosts:
        if host not in out and host in hostvars:
            out[host] = {}
            before = len(errors)
            read(host, safety.OTHER_VARS, out[host])
            del errors[before:]
    keep = ("all", "infra", "etcd", *sorted(wanted_hashable))
    plain_groups = {g: list(groups[g]) for g in keep if g in groups}
    for host in members:
        value = out[host].get("pg_service_provider")
        if isinstance(value, str) and value in groups:
            plain_groups[value] = list(groups[value])
    return {"hostvars": out, "groups": plain_groups,
            "clusters": sorted(wanted_hashable), "errors": errors}
