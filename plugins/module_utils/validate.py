# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Whole-inventory validation: every problem of the loaded clusters.

Pure Python; nothing here imports Ansible. With :mod:`plan` (the
per-cluster / per-instance plans) this is the entry point the Ansible
plugins call (through ``plugins/plugin_utils/inventory.py``, which first
copies the variables the model reads out of Ansible's ``hostvars``)::

    inv = model.load(hostvars, groups)              # load, never raises
    inv_problems = problems(inv)                    # every problem, sorted
    cplan = plan.cluster_plan(inv, "pg-test")       # services, HA plan, pools
    iplan = plan.instance_plan(inv, "10.10.10.11")  # identity, HBA, tuning

or :func:`require` to raise :class:`~errors.ModelError` with every problem.
:func:`tuning_warnings` and :func:`pigsty_warnings` say what is legal but
worth a warning (the ``pg_validate`` action prints them); :func:`warnings`
names the sandbox passwords used outside the sandbox, which the action
refuses instead (:func:`safety.sandbox_password_problems`).

Each family of checks lives with its subject (:mod:`settings`,
:mod:`services`, :mod:`hba`, :mod:`objects`, :mod:`safety`, ...);
:func:`problems` runs them all, with the checks of this module: those that
span a cluster's members or the whole inventory.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    cron,
    dns as dns_mod,
    etcd_tls,
    drill as drill_mod,
    guc,
    ha as ha_mod,
    hba as hba_mod,
    objects,
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
    SANDBOX_PASSWORDS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    HIDDEN,
    ModelError,
    collapse_cluster_wide,
    Problem,
    mask_secrets,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Cluster,
    Inventory,
    Member,
    is_int,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.plan import (
    REFERENCE_NODE,
    _collector_paused,
    _drill_inputs,
    etcd_auth,
    hba_context,
    member_tuning,
    node_size,
    repo_host_name,
)

# Host variables the model reads (plus the fields JMESPath selectors read):
# its own vocabulary and the settings of the configuration files.
MODEL_VARS = tuple(
    sorted(
        set(MODEL_DEFAULTS)
        | set(settings_mod.SETTINGS_DEFAULTS)
        | {
            "pg_cluster",
            "ansible_host",
            "nodename",
            "pigpen_sandbox",
            "ansible_memtotal_mb",
            "ansible_processor_vcpus",
            "pg_disk_gb",
            "pg_node_mem_mb",
            "pg_node_cpu",
            "node_crontab",
            "etcd_seq",
            "etcd_cluster",
            *SANDBOX_PASSWORDS,
        }
    )
)


def problems(inv: Inventory) -> List[Problem]:
    """Every problem of the loaded clusters, sorted, duplicates removed."""
    with _collector_paused():
        found = list(inv.problems)
        for cluster in inv.clusters.values():
            found.extend(check_cluster(inv, cluster))
        found.extend(svc_mod.check_providers(list(inv.clusters.values()), inv.groups))
        found.extend(_check_addresses(inv))
        found.extend(upstream.problems(inv))
        found.extend(_check_etcd(inv))
        found.extend(_check_ca(inv))
        found.extend(_check_other_nodes(inv))
        found.extend(dns_mod.problems(inv))
        found.extend(dns_mod.node_problems(inv))
        found.extend(safety.problems(inv))
        strays = safety.stray_clusters(inv)
        if strays:
            found = safety.without_stray_echoes(found, inv, strays) + safety.stray_problems(inv, strays)
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
    out = [
        "%s is the public sandbox default (%s) in cluster(s) %s: set a "
        "secret value (e.g. in an ansible-vault file) before this "
        "deployment holds real data" % (var, SANDBOX_PASSWORDS[var], ", ".join(names))
        for var, names in sorted(hits.items())
    ]
    out += [
        "pg_etcd_password is empty in cluster(s) %s: as in Pigsty, each "
        "cluster's etcd user gets the cluster name as its password, which "
        "anyone can guess; set a secret value (e.g. in an ansible-vault "
        "file)" % ", ".join(names)
        for names in empty_etcd.values()
    ]
    out += ["%s (cluster(s) %s)" % (line, ", ".join(names)) for line, names in sorted(repo_hits.items())]
    return out


def pigsty_warnings(inv: Inventory, own: Iterable[str] = ()) -> List[str]:
    """Pigsty settings of the clusters' hosts that this collection does not
    implement (:mod:`pigsty`), one line per setting (or group of another
    module's settings) naming the clusters. ``own``: the roles' variables,
    which are settings of this collection."""
    return pigsty_mod.warnings(
        [(c.name, [m.vars for m in c.members]) for c in inv.clusters.values()], own=set(own) | set(MODEL_VARS)
    )


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
                problem(
                    m.host,
                    var,
                    "(hidden)" if secret else m.vars.get(var),
                    "differs from %s's value %s; it is a cluster-wide "
                    "setting" % (first.host, "(hidden)" if secret else _short(mask_secrets(ref))),
                    "set %s once in the group vars of %s" % (var, name),
                )
                break

    out.extend(ha_mod.check_ha(cluster.setting("pg_rto"), cluster.setting("pg_rpo"), cluster=name))
    out.extend(svc_mod.check_services(cluster))
    dbsu = cluster.setting("pg_dbsu")
    out.extend(
        objects.check_objects(
            name,
            cluster.setting("pg_default_roles"),
            cluster.setting("pg_users"),
            cluster.setting("pg_databases"),
            dbsu,
        )
    )

    etcd_pass = cluster.setting("pg_etcd_password")
    if etcd_pass != "" and not _password_ok(etcd_pass):
        problem(None, "pg_etcd_password", "(hidden)", _PASSWORD_WHAT, _PASSWORD_FIX)
    namespace = cluster.setting("pg_namespace")
    if not isinstance(namespace, str) or not namespace.startswith("/") or namespace.endswith("/") and namespace != "/":
        problem(
            None,
            "pg_namespace",
            namespace,
            "is not an etcd key prefix",
            "use an absolute prefix without a trailing slash, e.g. /pg",
        )
    pwd_enc = cluster.setting("pg_pwd_enc")
    if pwd_enc not in ("scram-sha-256", "md5"):
        problem(None, "pg_pwd_enc", pwd_enc, "is not a password encryption", "use scram-sha-256 (recommended) or md5")
    for var in ("pg_dbsu", "pg_replication_username", "pg_monitor_username", "pg_admin_username"):
        value = cluster.setting(var)
        if not isinstance(value, str) or not objects.IDENT.match(value):
            problem(
                None, var, value, "is not a valid role name", "use letters, digits and _, e.g. %s" % MODEL_DEFAULTS[var]
            )
    out.extend(_check_vip(cluster))
    out.extend(_check_drill(inv, cluster))
    out.extend(_check_repo_host(inv, cluster))
    out.extend(cron.pg_crontab_problems(name, cluster.setting("pg_crontab"), dbsu))
    safeguard = cluster.setting("pg_safeguard")
    if not isinstance(safeguard, bool):
        problem(None, "pg_safeguard", safeguard, "is not a boolean", "write true or false without quotes")

    for m in cluster.members:
        ctx = hba_context(inv, cluster, m)
        for var, kind in (
            ("pg_default_hba_rules", "postgres"),
            ("pg_hba_rules", "postgres"),
            ("pgb_default_hba_rules", "pgbouncer"),
            ("pgb_hba_rules", "pgbouncer"),
        ):
            rules = m.vars.get(var)
            if rules is None:
                continue
            out.extend(hba_mod.check_hba_rules(rules, kind, var, cluster=name, host=m.host, ctx=ctx))
        out.extend(settings_mod.check_config_settings(m.vars, cluster=name, host=m.host))
        for var, low in (("pg_node_mem_mb", 256), ("pg_node_cpu", 1)):
            value = m.vars.get(var)
            if value is not None and (not is_int(value) or value < low):
                problem(
                    m.host,
                    var,
                    value,
                    "is not a whole number of at least %d" % low,
                    "write e.g. %s: %d (no unit, no "
                    "quotes), or leave it unset to use the gathered "
                    "facts" % (var, 1024 if low > 1 else 1),
                )
        if (m.vars.get("pg_node_mem_mb") is None) != (m.vars.get("pg_node_cpu") is None):
            problem(
                m.host,
                "pg_node_mem_mb",
                m.vars.get("pg_node_mem_mb"),
                "pg_node_mem_mb and pg_node_cpu go together",
                "set both, or neither (then the facts are used)",
            )
        out.extend(_check_access_limits(m))
        out.extend(cron.node_crontab_problems(name, m.host, m.vars.get("node_crontab")))
        node = node_size(m)
        tuning_found = tuning_mod.check_tuning(
            m.get("pg_conf"),
            node["mem_mb"],
            node["cpu"],
            node["disk_gb"],
            m.get("pg_shared_buffer_ratio"),
            m.get("pg_max_conn"),
            cluster=name,
            host=m.host,
        )
        out.extend(tuning_found)
        if not tuning_found and node["source"] != "reference":
            out.extend(_parameter_memory(cluster, m, node))
    out.extend(_object_parameter_names(cluster))
    return _collapse_cluster_wide(cluster, out)


def _parameter_memory(cluster: Cluster, m: Member, node: Mapping[str, Any]) -> List[Problem]:
    """``pg_parameters`` beyond the member's node (:func:`guc.memory_problems`)."""
    try:
        tuned = member_tuning(cluster, m)
    except ModelError:
        return []  # the settings checks report why
    return guc.memory_problems(tuned, m.get("pg_parameters"), node["mem_mb"], cluster=cluster.name, host=m.host)


def _object_parameter_names(cluster: Cluster) -> List[Problem]:
    """Parameter names of the users', roles' and databases' ``parameters``
    that the cluster's PostgreSQL does not know."""
    out: List[Problem] = []
    version = cluster.setting("pg_version")
    for var in ("pg_default_roles", "pg_users", "pg_databases"):
        items = cluster.setting(var)
        for i, item in enumerate(items if isinstance(items, list) else ()):
            if not isinstance(item, dict) or not isinstance(item.get("parameters"), dict):
                continue
            name = item.get("name")
            where = "%s[%d](%s)" % (var, i, name) if isinstance(name, str) else "%s[%d]" % (var, i)
            params = item["parameters"]
            for key in sorted(params, key=str):
                if not isinstance(key, str) or not safety.PARAMETER.match(key):
                    continue  # safety.sql_problems reports it
                found = guc.name_problem(
                    cluster.name, None, "%s.parameters.%s" % (where, key), key, params[key], version
                )
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
                m.get("pg_conf"),
                node["mem_mb"],
                node["cpu"],
                node["disk_gb"],
                m.get("pg_shared_buffer_ratio"),
                m.get("pg_max_conn"),
            ):
                continue
            found.extend(_parameter_memory(cluster, m, node))
        out.extend(
            "%s (on the reference node of %d MiB, as no facts were "
            "gathered: the nodes' own memory decides when the "
            "playbooks run)" % (p, REFERENCE_NODE["mem_mb"])
            for p in _collapse_cluster_wide(cluster, found)
        )
    return out


def _collapse_cluster_wide(cluster: Cluster, found: List[Problem]) -> List[Problem]:
    """:func:`errors.collapse_cluster_wide` over the cluster's members."""
    return collapse_cluster_wide([m.host for m in cluster.members], found)


_DURATION = re.compile(r"^[0-9]+(us|ms|s|m|h|d)?\Z")


def _check_access_limits(m: Member) -> List[Problem]:
    """Limits of the HAProxy, pgbouncer and VIP roles on one member."""
    return limit_problems(m.get, m.cluster, m.host)


#: The settings each part of :func:`limit_problems` reads.
LIMIT_PARTS = {
    "haproxy": (
        "haproxy_maxconn",
        "haproxy_limit_nofile",
        "haproxy_client_timeout",
        "haproxy_server_timeout",
        "haproxy_connect_timeout",
    ),
    "pgbouncer": ("pgbouncer_limit_nofile", "pgbouncer_max_client_conn", "pgbouncer_max_db_connections"),
    "vip": ("vip_interval",),
}


def limit_problems(
    get: Any, cluster: Optional[str], host: Optional[str], parts: Iterable[str] = ("haproxy", "pgbouncer", "vip")
) -> List[Problem]:
    """Limits of the HAProxy, pgbouncer and VIP roles: the one rule that
    validation applies to every member before any node is touched and that
    the roles' preflight tasks apply again to the values they were given
    (the ``pg_limit_problems`` filter). ``get(name)`` reads a
    setting (``Member.get``, which falls back to the model's
    defaults, or ``dict.get`` of a role's variables)."""
    out: List[Problem] = []
    parts = set(parts)

    def whole(var: str, low: int, fix: str) -> bool:
        value = get(var)
        if not is_int(value) or value < low:
            out.append(Problem(cluster, host, var, value, "is not a whole number of at least %d" % low, fix))
            return False
        return True

    if "haproxy" in parts:
        ok = whole("haproxy_maxconn", 100, "write e.g. haproxy_maxconn: 4000")
        ok = whole("haproxy_limit_nofile", 1024, "write e.g. haproxy_limit_nofile: 65536") and ok
        if ok and get("haproxy_limit_nofile") < 2 * get("haproxy_maxconn") + 100:
            out.append(
                Problem(
                    cluster,
                    host,
                    "haproxy_limit_nofile",
                    get("haproxy_limit_nofile"),
                    "is below 2 x haproxy_maxconn (%d) + 100: HAProxy needs about two "
                    "files per connection and would not start" % get("haproxy_maxconn"),
                    "lower haproxy_maxconn or raise haproxy_limit_nofile to at least "
                    "%d" % (2 * get("haproxy_maxconn") + 100),
                )
            )
        for var in LIMIT_PARTS["haproxy"][2:]:
            value = get(var)
            if not isinstance(value, (str, int)) or isinstance(value, bool) or not _DURATION.match(str(value)):
                out.append(
                    Problem(
                        cluster,
                        host,
                        var,
                        value,
                        "is not an HAProxy duration",
                        "write a number with an optional unit (us, ms, s, m, h, d), e.g. 24h",
                    )
                )
    if "pgbouncer" in parts and whole("pgbouncer_limit_nofile", 1024, "write e.g. pgbouncer_limit_nofile: 65536"):
        clients = get("pgbouncer_max_client_conn")
        if clients is None:
            clients = settings_mod.SETTINGS_DEFAULTS["pgbouncer_max_client_conn"]
        servers = get("pgbouncer_max_db_connections")
        if servers is None:
            servers = settings_mod.SETTINGS_DEFAULTS["pgbouncer_max_db_connections"]
        need = clients + servers + 100 if is_int(clients) and is_int(servers) else None
        if need is not None and get("pgbouncer_limit_nofile") < need:
            out.append(
                Problem(
                    cluster,
                    host,
                    "pgbouncer_limit_nofile",
                    get("pgbouncer_limit_nofile"),
                    "is below pgbouncer_max_client_conn (%d) + "
                    "pgbouncer_max_db_connections (%d) + 100: pgbouncer would "
                    "refuse clients before max_client_conn" % (clients, servers),
                    "lower pgbouncer_max_client_conn or raise pgbouncer_limit_nofile to at least %d" % need,
                )
            )
    if "vip" in parts:
        whole("vip_interval", 100, "write e.g. vip_interval: 1000 (milliseconds)")
    return out


def _short(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_PASSWORD_WHAT = "is not a password of 4 to 128 printable characters"
_PASSWORD_FIX = (
    "quote a password of printable characters without spaces, quotes or backslashes, e.g. from ansible-vault"
)


def _password_ok(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 4 <= len(value) <= 128
        and value.isprintable()
        and not any(c in value for c in " '\"\\")
    )


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
        return [
            Problem(
                cluster.name,
                None,
                field,
                repo["host"],
                "names a group without hosts",
                "add the repository host to group %s, or name it by its address" % repo["host"],
            )
        ]
    # the repository names a host (a string), so repo_host_name finds one
    host = cast(str, repo_host_name(inv, cluster))
    if host in (m.host for m in cluster.members):
        return [
            Problem(
                cluster.name,
                None,
                field,
                host,
                "is a member of the cluster it backs up: the backups would be lost with that node",
                "name a host that is not a member of %s, e.g. the infra node" % cluster.name,
            )
        ]
    if host not in inv.hostvars:
        return [
            Problem(
                cluster.name,
                None,
                field,
                host,
                "is not a host of the inventory, so no play can set it up",
                "name the repository host as the inventory "
                "does (e.g. the infra node's address), and list it "
                "in a group such as infra",
            )
        ]
    return []


def _check_drill(inv: Inventory, cluster: Cluster) -> List[Problem]:
    """The restore drill's settings (:func:`drill.check_drill`), with the
    ports and directories of the node it runs on."""
    if cluster.members[0].vars.get("pgbackrest_enabled", True) is False:
        return []
    given = _drill_inputs(inv, cluster)
    return drill_mod.check_drill(
        given["settings"], cluster=cluster.name, taken_ports=given["ports"], protected=given["protected"]
    )


def _check_vip(cluster: Cluster) -> List[Problem]:
    if cluster.setting("pg_vip_enabled") is not True:
        enabled = cluster.setting("pg_vip_enabled")
        if enabled not in (False, None):
            return [
                Problem(
                    cluster.name,
                    None,
                    "pg_vip_enabled",
                    enabled,
                    "is not a boolean",
                    "write true or false without quotes",
                )
            ]
        return []
    out: List[Problem] = []
    address = cluster.setting("pg_vip_address")
    fix = "set pg_vip_address to a free address of the members' subnet with its prefix length, e.g. 10.10.10.3/24"
    try:
        iface = ipaddress.ip_interface(address) if isinstance(address, str) and "/" in address else None
    except ValueError:
        iface = None
    if iface is None:
        return [
            Problem(
                cluster.name, None, "pg_vip_address", address, "is not an address with a prefix length (IP/mask)", fix
            )
        ]
    net = iface.network
    vip = iface.ip
    if net.num_addresses > 2 and vip in (net.network_address, net.broadcast_address):
        out.append(
            Problem(
                cluster.name, None, "pg_vip_address", address, "is the network or broadcast address of %s" % net, fix
            )
        )
    for m in cluster.members:
        if not m.ip:
            continue
        ip = ipaddress.ip_address(m.ip)
        if ip == vip:
            out.append(
                Problem(
                    cluster.name,
                    m.host,
                    "pg_vip_address",
                    address,
                    "is the address of member %s itself" % m.instance,
                    fix,
                )
            )
        elif ip.version != vip.version or ip not in net:
            out.append(
                Problem(
                    cluster.name,
                    m.host,
                    "pg_vip_address",
                    address,
                    "is not in the subnet of member %s "
                    "(%s): an L2 VIP must be on the members' "
                    "subnet" % (m.instance, m.ip),
                    fix,
                )
            )
    iface_name = cluster.setting("pg_vip_interface")
    if (
        not isinstance(iface_name, str)
        or not iface_name
        or len(iface_name) > 15
        or "/" in iface_name
        or " " in iface_name
    ):
        out.append(
            Problem(
                cluster.name,
                None,
                "pg_vip_interface",
                iface_name,
                "is not a network interface name",
                "name the interface that carries the members' subnet, e.g. eth0",
            )
        )
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
                out.append(
                    Problem(
                        cluster.name,
                        m.host,
                        "ansible_host",
                        m.ip,
                        "is also the address of host %s (%s)" % (other.host, other.instance),
                        "give every PostgreSQL instance its own node",
                    )
                )
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
            out.extend(cron.node_crontab_problems(group, host, (inv.hostvars.get(host) or {}).get("node_crontab")))
    return out


def _check_ca(inv: Inventory) -> List[Problem]:
    """One CA per deployment: every PostgreSQL host gives its key the same
    passphrase (``pg_ca_passphrase``), and it is a string."""
    first: Optional[Member] = None
    for cluster in sorted(inv.clusters.values(), key=lambda c: c.name):
        for m in cluster.members:
            value = m.vars.get("pg_ca_passphrase")
            if value is not None and not isinstance(value, str):
                what, fix = "is not a string", "quote it, e.g. pg_ca_passphrase: '{{ vault_pg_ca_passphrase }}'"
            elif first is not None and value != first.vars.get("pg_ca_passphrase"):
                what = "differs from the value of %s (cluster %s); one CA signs every certificate of the deployment" % (
                    first.host,
                    first.cluster,
                )
                fix = "set pg_ca_passphrase once, in the vars of group all"
            else:
                first = first or m
                continue
            return [Problem(cluster.name, m.host, "pg_ca_passphrase", HIDDEN, what, fix)]
    return []


def _check_etcd(inv: Inventory) -> List[Problem]:
    if not inv.clusters:
        return []
    out: List[Problem] = []
    if not inv.etcd:
        return [
            Problem(
                None,
                None,
                "groups.etcd",
                None,
                "PostgreSQL clusters need an etcd group (Patroni's DCS), and the inventory has none",
                "add a group 'etcd' with 1, 3 or 5 hosts, each with an etcd_seq",
            )
        ]
    seqs: Dict[Any, str] = {}
    for m in inv.etcd:
        seq = m.vars.get("etcd_seq")
        if not is_int(seq) or seq < 0:
            out.append(
                Problem(
                    "etcd",
                    m.host,
                    "etcd_seq",
                    seq,
                    "is not a non-negative integer",
                    "give every etcd member an integer etcd_seq, unique in the etcd group",
                )
            )
        elif seq in seqs:
            out.append(
                Problem(
                    "etcd",
                    m.host,
                    "etcd_seq",
                    seq,
                    "is already used by %s" % seqs[seq],
                    "give every etcd member its own etcd_seq",
                )
            )
        else:
            seqs[seq] = m.host
        if not m.ip:
            out.append(
                Problem(
                    "etcd",
                    m.host,
                    "ansible_host",
                    m.vars.get("ansible_host"),
                    "the etcd member has no IP address",
                    "name the host by its IP or set ansible_host",
                )
            )
    auth = [m.vars.get("etcd_auth") for m in inv.etcd]
    for m, value in zip(inv.etcd, auth):
        if value is not None and not isinstance(value, bool):
            out.append(
                Problem(
                    "etcd",
                    m.host,
                    "etcd_auth",
                    value,
                    "is not a boolean",
                    "write etcd_auth: true (or false) without quotes",
                )
            )
    if len({bool(v is not False) for v in auth}) > 1:
        out.append(
            Problem(
                "etcd",
                None,
                "etcd_auth",
                auth,
                "the etcd members disagree on authentication",
                "set etcd_auth once, in the etcd group's vars",
            )
        )
    tls = {etcd_tls.desired_mode(m.vars.get("etcd_tls_enabled")) == "plain" for m in inv.etcd}
    if len(tls) > 1:
        out.append(
            Problem(
                "etcd",
                None,
                "etcd_tls_enabled",
                [m.vars.get("etcd_tls_enabled") for m in inv.etcd],
                "the etcd members disagree on TLS",
                "set etcd_tls_enabled once, in the etcd group's vars",
            )
        )
    if etcd_auth(inv):
        for m in inv.etcd:
            root = m.get("etcd_root_password", SANDBOX_PASSWORDS["etcd_root_password"])
            if not _password_ok(root):
                out.append(Problem("etcd", m.host, "etcd_root_password", "(hidden)", _PASSWORD_WHAT, _PASSWORD_FIX))
    if len(inv.etcd) % 2 == 0:
        out.append(
            Problem(
                "etcd",
                None,
                "groups.etcd",
                [m.host for m in inv.etcd],
                "an even number of etcd members tolerates no more failures than one fewer and risks split votes",
                "use 1, 3 or 5 etcd members",
            )
        )
    return out


#: The host name the node role sets (roles/node/vars/main.yml,
#: ``__node_name_pattern``, which a unit test keeps equal to this one)
NODE_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
#: An inventory name that is an address (``__node_address_pattern``)
NODE_ADDRESS = re.compile(r"^[0-9.]+$|:")


def node_name(host: str, host_vars: Mapping[str, Any]) -> Optional[Any]:
    """The name the node role gives ``host`` (its ``node_name`` default), or
    None when the host keeps the name it has (an inventory name that is an
    address or no host name, with no ``nodename`` and no instance name)."""
    for field in ("node_name", "nodename"):
        value = host_vars.get(field)
        if value not in (None, ""):
            return value
    if host_vars.get("pg_cluster") is not None and host_vars.get("pg_seq") is not None:
        return "%s-%s" % (host_vars["pg_cluster"], host_vars["pg_seq"])
    if NODE_NAME.match(host) and not NODE_ADDRESS.search(host):
        return host
    return None


def node_name_problems(hosts: Iterable[Any], hostvars: Mapping[str, Any]) -> List[Problem]:
    """The node names of ``[(host, cluster)]`` that the node role would
    refuse, found before any node is touched: a name that is no lower-case
    host name, and a name two hosts share. Hosts with
    ``node_hostname_manage: false`` keep their names and are skipped."""
    out: List[Problem] = []
    owners: Dict[str, str] = {}
    for host, cluster in hosts:
        hv = hostvars.get(host) if hasattr(hostvars, "get") else hostvars[host]
        if hv is None:
            continue
        given = {k: hv[k] for k in ("node_name", "nodename", "pg_cluster", "pg_seq", "node_hostname_manage") if k in hv}
        if str(given.get("node_hostname_manage", True)).lower() in ("false", "no", "0", "off"):
            continue
        name = node_name(host, given)
        if name is None or (isinstance(name, str) and "{{" in name):
            continue
        field = next((k for k in ("node_name", "nodename") if given.get(k) not in (None, "")), "pg_cluster")
        if not isinstance(name, str) or not NODE_NAME.match(name):
            if field == "pg_cluster":
                what = "makes the instance name %s, which the node role cannot set as a host name" % name
                fix = "set nodename on the host (lower-case letters, digits, '-' and '.')"
            else:
                what = "is not a lower-case host name, which the node role sets as the hostname"
                fix = (
                    "write it in lower-case letters, digits, '-' and '.' (labels of 1 to 63 characters, "
                    "no '-' at either end), or set node_hostname_manage: false to keep the host's name"
                )
            out.append(Problem(cluster, host, field, given.get(field, name), what, fix))
            continue
        if name in owners:
            out.append(
                Problem(
                    cluster,
                    host,
                    field,
                    name,
                    "is also the node name of %s; /etc/hosts would name two hosts the same" % owners[name],
                    "give each host its own nodename",
                )
            )
        else:
            owners[name] = host
    return out
