# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Inputs that are well-formed but dangerous, refused before any node is
touched (docs/security.md, the table of docs/model.md).

Pure Python; nothing here imports Ansible. :func:`problems` is called by
:func:`validate.problems` with the other checks; each family of checks is a
function of its own:

* :func:`path_problems`: data and file paths that are, or whose parent the
  roles manage is, a system directory (the roles chown and chmod them,
  ``pgsql-rm.yml`` and PITR empty the data directory), or that lie where
  systemd's ``ProtectSystem=full`` keeps the services from writing;
* :func:`sql_problems`: identifiers and keys that reach SQL as text
  (parameter names of users and databases, schemas of extensions,
  templates, tablespaces);
* :func:`system_object_problems`: removing or crippling what the cluster
  needs (the ``postgres`` database, the system users, ``pg_dbsu: root``,
  names with PostgreSQL's reserved ``pg_`` prefix);
* :func:`cluster_name_problems`, :func:`group_problems`,
  :func:`vip_problems`, :func:`port_problems`: collisions across the whole
  inventory, not only inside one cluster;
* :func:`password_problems`: secrets that would break the files they are
  written into;
* :func:`sandbox_password_problems`: the public sandbox passwords outside
  the sandbox, refused unless the inventory sets ``pigpen_sandbox: true``
  (called by the ``pg_validate`` action only, so that the model's own tests
  and the plans need no passwords).
"""

from __future__ import annotations

import functools
import posixpath
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple, TypeGuard

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    services as services_mod,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    settings as settings_mod,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
    OS_ACCOUNTS,
    SANDBOX_PASSWORDS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    HIDDEN,
    Problem,
    closest,
    collapse_cluster_wide,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    CLUSTER_NAME,
    Cluster,
    Inventory,
    Member,
    ip_of,
    is_int,
    vip_ip,
)

# ------------------------------------------------------------------ paths

#: Directories of the operating system. A managed path (or the parent a
#: role creates and chowns for it) may not be one of them.
SYSTEM_DIRS = frozenset(
    (
        "/",
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/libx32",
        "/lost+found",
        "/media",
        "/mnt",
        "/opt",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/srv",
        "/sys",
        "/tmp",
        "/usr",
        "/var",
        "/usr/bin",
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib32",
        "/usr/lib64",
        "/usr/libexec",
        "/usr/include",
        "/usr/share",
        "/usr/src",
        "/usr/local",
        "/usr/local/bin",
        "/usr/local/sbin",
        "/usr/local/lib",
        "/usr/local/share",
        "/usr/local/etc",
        "/var/lib",
        "/var/log",
        "/var/run",
        "/var/tmp",
        "/var/cache",
        "/var/spool",
        "/var/backups",
        "/var/mail",
        "/var/opt",
        "/var/local",
        "/var/lock",
        "/var/www",
        "/var/lib/postgresql",
        "/etc/ssl",
        "/etc/ssl/certs",
        "/etc/ssl/private",
        "/etc/systemd",
        "/etc/systemd/system",
        "/etc/default",
        "/etc/ssh",
        "/etc/sudoers.d",
        "/etc/cron.d",
        "/etc/security",
        "/etc/pam.d",
        "/etc/apt",
        "/etc/init.d",
        "/etc/sysctl.d",
        "/etc/profile.d",
        "/etc/postgresql",
        "/etc/postgresql-common",
    )
)

#: Trees where nothing of a deployment may live: pseudo and volatile file
#: systems, and world-writable directories (anyone could plant a file or a
#: link there first).
FORBIDDEN_TREES = ("/proc", "/sys", "/dev", "/run", "/var/run", "/tmp", "/var/tmp")

#: Trees that systemd's ProtectSystem=full keeps read-only for the
#: services (docs/security.md): the services cannot write there.
READ_ONLY_TREES = ("/usr", "/boot", "/etc")

# What a role does with a path: "dir" (creates it and chowns it), "parent"
# (also creates and chowns its parent), "file" (creates and chowns the
# parent of the file). "wiped": emptied by pgsql-rm.yml, PITR or
# etcd-rm.yml. "written": the service itself writes there (so it must be
# outside READ_ONLY_TREES).
_PATHS: Tuple[Tuple[str, str, str, Tuple[str, ...]], ...] = (
    # (variable, default, kind, flags)
    ("pg_data", "/pg/data", "dir", ("wiped", "written")),
    ("pg_conf_dir", "/pg/conf", "dir", ("written",)),
    ("pg_log_dir", "/pg/log/postgres", "parent", ("written",)),
    ("pg_ssl_cert", "/pg/cert/server.crt", "file", ()),
    ("pg_ssl_key", "/pg/cert/server.key", "file", ()),
    ("pg_ssl_ca", "/pg/cert/ca.crt", "file", ()),
    ("patroni_log_dir", "/pg/log/patroni", "dir", ("written",)),
    ("patroni_pgpass", "/pg/tmp/pgpass", "file", ("written",)),
    ("pgbouncer_conf_dir", "/etc/pgbouncer", "dir", ()),
    ("pgbouncer_log_dir", "/pg/log/pgbouncer", "dir", ("written",)),
    ("pgbackrest_log_dir", "/pg/log/pgbackrest", "dir", ("written",)),
    ("pgbackrest_spool_dir", "/pg/spool", "dir", ("written",)),
    ("postgres_base_dir", "/pg", "dir", ()),
    ("postgres_conf_dir", "/pg/conf", "dir", ()),
    ("patroni_conf_dir", "/etc/patroni", "dir", ()),
    ("pgbackrest_conf_dir", "/etc/pgbackrest", "dir", ()),
    ("haproxy_conf_dir", "/etc/haproxy/conf.d", "dir", ()),
    ("vector_conf_dir", "/etc/vector", "dir", ()),
    ("vector_data_dir", "/var/lib/vector", "dir", ("written",)),
)
_ETCD_PATHS = (("etcd_data_dir", "/var/lib/etcd/data", "dir", ("wiped", "written")),)

#: Host variables the checks of this module read besides the model's own
#: (the snapshot of plugins/plugin_utils/inventory.py reads them too).
SAFETY_VARS = tuple(
    sorted(
        {path_spec[0] for path_spec in _PATHS}
        | {
            "ansible_port",
            "ansible_ssh_port",
            "haproxy_enabled",
            "haproxy_admin_username",
            "exporters_enabled",
            "exporters_node_port",
            "exporters_pg_port",
            "exporters_pgbouncer_port",
            "exporters_pgbackrest_port",
            "exporters_prometheus_port",
            "exporters_prometheus_server",
            "infra_metrics",
            "exporters_victoriametrics_port",
            "exporters_vmalert_port",
            "exporters_alerting",
            "exporters_victoriametrics_retention",
            "pg_admin_password",
            "pg_monitor_password",
            # resolv.conf lines (dns.node_problems)
            "node_dns_servers",
            "node_dns_method",
            "node_dns_options",
            "admin_ip",
        }
    )
)

#: Variables read for the hosts of the etcd and infra groups.
NODE_VARS = (
    "ansible_host",
    "ansible_port",
    "ansible_ssh_port",
    "etcd_seq",
    "etcd_port",
    "etcd_peer_port",
    "etcd_tls_bridge_port",
    # the mode each member is in, read by pgsql.yml before it computes the plan
    "etcd_tls_mode_now",
    "etcd_cluster",
    "etcd_data_dir",
    "etcd_auth",
    "etcd_tls_enabled",
    "etcd_root_password",
    "etcd_name",
    "etcd_election_timeout",
    "exporters_prometheus_port",
    "exporters_prometheus_server",
    "infra_metrics",
    "exporters_victoriametrics_port",
    "exporters_vmalert_port",
    "exporters_alerting",
    "exporters_victoriametrics_retention",
    "exporters_alertmanager",
    "exporters_alertmanager_port",
    "exporters_alertmanager_cluster_port",
    "exporters_alert_recorder",
    "exporters_alert_recorder_port",
    "pigpen_sandbox",
    "node_crontab",
    # resolv.conf and dnsmasq lines (dns.node_problems)
    "node_dns_servers",
    "node_dns_method",
    "node_dns_options",
    "admin_ip",
    "dns_upstream_servers",
    "dns_hosts_dir",
)

#: Variables read for every other host of the inventory (addresses and
#: VIPs for the inventory-wide collisions; roles and upstreams for the
#: circles of standby clusters; what a standby cluster must share with its
#: source, where it connects, and its followers' slots, upstream.py). No
#: password: a source's passwords are compared only when it is loaded. Its
#: pgbackrest_repo is read, secrets included, to compare it with a seeded
#: standby cluster's (upstream.seed_problems); no message shows it.
OTHER_VARS = (
    "ansible_host",
    "pg_cluster",
    "pg_role",
    "pg_upstream",
    "pg_vip_enabled",
    "pg_vip_address",
    "pg_port",
    "pg_version",
    "pg_dbsu",
    "pg_replication_username",
    "pg_monitor_username",
    "pg_admin_username",
    "patroni_ssl_enabled",
    "patroni_port",
    # the repository a standby cluster seeded from its source reads
    # (upstream.seed_problems)
    "pgbackrest_enabled",
    "pgbackrest_method",
    "pgbackrest_repo",
)


def _under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def path_trouble(path: str, kind: str, flags: Tuple[str, ...]) -> Optional[str]:
    """Why a managed path (``kind`` dir, parent or file) is dangerous, or
    None; ``flags`` may hold ``written`` and ``wiped``."""
    return _path_trouble(path, kind, tuple(flags))


@functools.lru_cache(maxsize=4096)
def _path_trouble(path: str, kind: str, flags: Tuple[str, ...]) -> Optional[str]:
    """Why a managed path is dangerous, or None."""
    if path.split("/").count("..") or path.split("/").count(".") or "//" in path:
        return "holds '.', '..' or '//': the directory the roles would change is not the one written"
    for tree in FORBIDDEN_TREES:
        if _under(path, tree):
            return (
                "is under %s, a pseudo, volatile or world-writable "
                "directory where nothing of a deployment may live" % tree
            )
    if kind in ("dir", "parent") and path in SYSTEM_DIRS:
        return "is a system directory, which the roles would chown to the service's user%s" % (
            " and pgsql-rm.yml or PITR would empty" if "wiped" in flags else ""
        )
    parent = posixpath.dirname(path)
    if kind in ("parent", "file") and parent in SYSTEM_DIRS:
        return (
            "its parent %s is a system directory, which the roles would create and chown to the service's user" % parent
        )
    if "written" in flags:
        for tree in READ_ONLY_TREES:
            if _under(path, tree):
                return (
                    "is under %s, which systemd keeps read-only for the "
                    "services (ProtectSystem=full, docs/security.md)" % tree
                )
    return None


def _is_path(value: Any) -> TypeGuard[str]:
    # malformed paths are the format checks' report (settings.py)
    return (
        isinstance(value, str)
        and value.startswith("/")
        and (value == "/" or not value.endswith("/"))
        and "\n" not in value
    )


def _per_value(cluster: Cluster, var: str, default: Any) -> List[Tuple[Optional[str], Any]]:
    """(host, value) of a host variable: one entry with host None when
    every member has the same value, else one per member."""
    values: List[Tuple[Optional[str], Any]] = [(m.host, m.vars.get(var, default)) for m in cluster.members]
    first = values[0][1]
    if all(v is first or (type(v) is type(first) and v == first) for _skip, v in values):
        return [(None, first)]
    return values


def _repo_path(member: Member) -> Optional[str]:
    repos = member.vars.get("pgbackrest_repo")
    method = member.get("pgbackrest_method")
    if not isinstance(repos, dict):
        return "/pg/backup" if method == "local" and repos is None else None
    repo = repos.get(method)
    if not isinstance(repo, dict) or repo.get("type", "posix") != "posix":
        return None
    path = repo.get("path")
    return path if isinstance(path, str) else None


def path_problems(cluster: Cluster) -> List[Problem]:
    """Managed paths of the members that are, or whose managed parent is,
    a system directory; data directories that hold the backups or the base
    directory (pgsql-rm.yml would empty them with the data)."""
    out: List[Problem] = []
    name = cluster.name
    for var, default, kind, flags in _PATHS:
        if not any(var in m.vars for m in cluster.members):
            continue  # the defaults are safe
        for host, value in _per_value(cluster, var, default):
            if not _is_path(value):
                continue
            trouble = _path_trouble(value, kind, flags)
            if trouble:
                out.append(
                    Problem(
                        name, host, var, value, trouble, "use a directory of this deployment's own, e.g. %s" % default
                    )
                )
    for m in cluster.members:
        data = m.vars.get("pg_data", "/pg/data")
        if not _is_path(data):
            continue
        for var, value in (
            ("postgres_base_dir", m.vars.get("postgres_base_dir", "/pg")),
            ("pgbackrest_repo", _repo_path(m)),
        ):
            if _is_path(value) and _under(value, data):
                out.append(
                    Problem(
                        name,
                        m.host,
                        "pg_data",
                        data,
                        "holds %s (%s), which pgsql-rm.yml and PITR would empty with the data" % (var, value),
                        "use a directory of its own below the base directory, e.g. /pg/data",
                    )
                )
        repo = _repo_path(m)
        if _is_path(repo) and repo != "/":
            trouble = _path_trouble(repo, "dir", ("wiped", "written"))
            if trouble:
                out.append(
                    Problem(
                        name,
                        m.host,
                        "pgbackrest_repo.%s.path" % m.get("pgbackrest_method"),
                        repo,
                        trouble,
                        "use a directory of this deployment's own, e.g. /pg/backup",
                    )
                )
    return _once_per_cluster(cluster, out)


def etcd_path_problems(inv: Inventory) -> List[Problem]:
    out: List[Problem] = []
    for m in inv.etcd:
        for var, default, kind, flags in _ETCD_PATHS:
            value = m.vars.get(var, default)
            if not _is_path(value):
                continue
            trouble = _path_trouble(value, kind, flags)
            if trouble:
                out.append(
                    Problem("etcd", m.host, var, value, trouble, "use a directory of its own, e.g. %s" % default)
                )
    return out


def _once_per_cluster(cluster: Cluster, found: List[Problem]) -> List[Problem]:
    """:func:`errors.collapse_cluster_wide` over the cluster's members."""
    return collapse_cluster_wide([m.host for m in cluster.members], found)


# -------------------------------------------------------------------- SQL

#: A parameter (GUC) name: letters, digits, _ and $, parts joined by dots
#: (extension parameters: auto_explain.log_min_duration). It reaches SQL as
#: a quoted identifier (ALTER ROLE/DATABASE ... SET "name").
PARAMETER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)*\Z")
#: An identifier written inside double quotes by the modules.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}\Z")
#: An extension version (VERSION '...').
VERSION = re.compile(r"^[A-Za-z0-9_.-]{1,63}\Z")


def _named_list(items: Any) -> List[Tuple[int, Dict[str, Any]]]:
    if not isinstance(items, list):
        return []
    return [(i, x) for i, x in enumerate(items) if isinstance(x, dict)]


def _where(var: str, i: int, item: Dict[str, Any]) -> str:
    name = item.get("name")
    return "%s[%d](%s)" % (var, i, name) if isinstance(name, str) else "%s[%d]" % (var, i)


def sql_problems(cluster: Cluster) -> List[Problem]:
    """Identifiers and keys of the business objects that reach SQL as text
    (the community.postgresql modules format them into the statement)."""
    out: List[Problem] = []
    name = cluster.name

    def problem(fld, value, what, fix):
        out.append(Problem(name, None, fld, value, what, fix))

    def parameters(where, params):
        if not isinstance(params, dict):
            return  # objects.py reports it
        for key in sorted(params, key=str):
            if not isinstance(key, str) or not PARAMETER.match(key):
                problem(
                    "%s.parameters" % where,
                    key,
                    "is not a parameter name (it is written into ALTER ... SET as an identifier)",
                    "use the parameter's name as in postgresql.conf, e.g. search_path or auto_explain.log_min_duration",
                )
            elif isinstance(params[key], (dict, list)):
                problem(
                    "%s.parameters.%s" % (where, key),
                    params[key],
                    "is not a single value",
                    "write a string, number or boolean",
                )

    for var in ("pg_default_roles", "pg_users"):
        for i, user in _named_list(cluster.setting(var)):
            parameters(_where(var, i, user), user.get("parameters"))
    for i, db in _named_list(cluster.setting("pg_databases")):
        where = _where("pg_databases", i, db)
        parameters(where, db.get("parameters"))
        for key in ("template", "tablespace"):
            value = db.get(key)
            if value is not None and (not isinstance(value, str) or not IDENTIFIER.match(value)):
                problem(
                    "%s.%s" % (where, key),
                    value,
                    "is not a %s name (letters, digits, _ and -)" % key,
                    "name an existing %s, e.g. %s" % (key, "template1" if key == "template" else "pg_default"),
                )
        exts = db.get("extensions")
        for j, ext in enumerate(exts if isinstance(exts, list) else ()):
            if not isinstance(ext, dict):
                continue
            for key, pattern, example in (("schema", IDENTIFIER, "public"), ("version", VERSION, "1.10")):
                value = ext.get(key)
                if value is not None and not (isinstance(value, str) and pattern.match(value)):
                    problem(
                        "%s.extensions[%d].%s" % (where, j, key),
                        value,
                        "is not an extension %s (it is written into CREATE EXTENSION as text)" % key,
                        "write e.g. %s: %s" % (key, example),
                    )
    return out


# ---------------------------------------------------------- system objects

_SYSTEM_DATABASES = ("postgres", "template0", "template1")


def system_object_problems(cluster: Cluster) -> List[Problem]:
    """Removing or crippling what the cluster needs."""
    out: List[Problem] = []
    name = cluster.name

    def problem(fld, value, what, fix):
        out.append(Problem(name, None, fld, value, what, fix))

    dbsu = cluster.setting("pg_dbsu")
    if isinstance(dbsu, str) and dbsu in OS_ACCOUNTS:
        problem(
            "pg_dbsu",
            dbsu,
            "is an operating system account: "
            "PostgreSQL, Patroni and pgbouncer would run as it%s"
            % (" (PostgreSQL refuses to run as root)" if dbsu == "root" else ""),
            "keep pg_dbsu: postgres (the user Debian's packages create)",
        )
    system: Dict[str, str] = {}
    for var in ("pg_dbsu", "pg_replication_username", "pg_monitor_username", "pg_admin_username"):
        value = cluster.setting(var)
        if isinstance(value, str):
            system.setdefault(value, var)
            if value.lower().startswith("pg_"):
                problem(
                    var,
                    value,
                    "starts with pg_, a prefix PostgreSQL reserves for its own roles",
                    "use another name, e.g. %s" % MODEL_DEFAULTS[var],
                )
    for var in ("pg_default_roles", "pg_users"):
        for i, user in _named_list(cluster.setting(var)):
            where = _where(var, i, user)
            uname = user.get("name")
            if not isinstance(uname, str):
                continue
            if uname.lower().startswith("pg_"):
                problem(
                    "%s.name" % where,
                    uname,
                    "starts with pg_, a prefix PostgreSQL reserves for its own roles (CREATE ROLE refuses it)",
                    "rename the user, e.g. %s" % (uname[3:] or "app"),
                )
            if uname not in system:
                continue
            role = system[uname]
            if user.get("state", "create") == "absent":
                problem(
                    "%s.state" % where,
                    "absent",
                    "would drop %s (%s), which the cluster needs" % (uname, role),
                    "remove this entry",
                )
            if user.get("login") is False:
                problem(
                    "%s.login" % where,
                    False,
                    "would stop %s (%s) from logging in, which the cluster needs" % (uname, role),
                    "remove login: false from this entry",
                )
            if role == "pg_replication_username" and user.get("replication") is False:
                problem(
                    "%s.replication" % where,
                    False,
                    "would take replication from %s, which the replicas stream with" % uname,
                    "remove replication: false",
                )
            if role == "pg_dbsu" and user.get("superuser") is False:
                problem(
                    "%s.superuser" % where,
                    False,
                    "would take superuser from %s, which Patroni manages PostgreSQL as" % uname,
                    "remove superuser: false",
                )
    for i, db in _named_list(cluster.setting("pg_databases")):
        if db.get("name") == "postgres" and db.get("state", "create") in ("absent", "recreate"):
            problem(
                "%s.state" % _where("pg_databases", i, db),
                db.get("state"),
                "would drop the postgres database, which Patroni, pgbouncer, the exporters and pg_rewind connect to",
                "remove this entry",
            )
    return out


# ---------------------------------------------------------- cluster names

#: Cluster names that are taken: etcd's root user (each cluster gets an etcd
#: user of its name) and the inventory groups the playbooks read.
RESERVED_CLUSTER_NAMES = ("root", "all", "ungrouped", "infra", "etcd")


def cluster_name_problems(inv: Inventory) -> List[Problem]:
    out: List[Problem] = []
    etcd_names = {m.vars.get("etcd_cluster") for m in inv.etcd} - {None}
    for name in inv.clusters:
        if not CLUSTER_NAME.match(name):
            continue  # model.identity_problems reports it
        if name.lower() in RESERVED_CLUSTER_NAMES or name in etcd_names:
            out.append(
                Problem(
                    name,
                    None,
                    "pg_cluster",
                    name,
                    "is a reserved name: %s"
                    % (
                        "etcd's root user, and each cluster gets an etcd user of its name"
                        if name.lower() == "root"
                        else "it is the name of an inventory group the playbooks read"
                    ),
                    "rename the cluster, e.g. pg-%s" % name.lower(),
                )
            )
        elif name != name.lower():
            out.append(
                Problem(
                    name,
                    None,
                    "pg_cluster",
                    name,
                    "holds upper-case letters: it becomes the members' host "
                    "names, which the node role writes in lower case, and DNS "
                    "names do not tell cases apart",
                    "write the cluster name in lower case, e.g. %s" % name.lower(),
                )
            )
    return out


def group_problems(inv: Inventory) -> List[Problem]:
    """A group named like a cluster holds exactly its members: a host of
    the group without pg_cluster would silently get nothing, and a member
    outside it would be missed by ``-l <cluster>``."""
    out: List[Problem] = []
    for name, cluster in inv.clusters.items():
        group = inv.groups.get(name)
        if group is None:
            continue  # clusters defined host by host (Pigsty allows it)
        members = {m.host for m in cluster.members}
        for host in group:
            if host in members:
                continue
            other = (inv.hostvars.get(host) or {}).get("pg_cluster")
            if other is None:
                out.append(
                    Problem(
                        name,
                        host,
                        "pg_cluster",
                        None,
                        "the host is in group %s but has no pg_cluster, so it "
                        "is not a member and would be silently left out" % name,
                        "set pg_cluster: %s in the group's vars, or move the host out of group %s" % (name, name),
                    )
                )
            else:
                out.append(
                    Problem(
                        name,
                        host,
                        "pg_cluster",
                        other,
                        "the host is in group %s but belongs to cluster %s" % (name, other),
                        "move the host to the group of its cluster, or set pg_cluster: %s" % name,
                    )
                )
        for m in cluster.members:
            if m.host not in group:
                out.append(
                    Problem(
                        name,
                        m.host,
                        "groups.%s" % name,
                        sorted(group),
                        "the member is not in group %s, which the playbooks limit to (-l %s)" % (name, name),
                        "add the host to group %s" % name,
                    )
                )
    return out


# -------------------------------------------------- a mistyped pg_cluster


def stray_clusters(inv: Inventory) -> Dict[str, Tuple[str, List[str], str]]:
    """Clusters that are most likely a mistyped host-level ``pg_cluster``:
    ``{stray: (intended cluster, [its hosts], how it was found)}``.

    * ``group``: the stray has no group of its name, and every one of its
      hosts is in the group of another cluster (``pg-tst`` on a host of
      group ``pg-test``);
    * ``name``: the stray has no group either, no leader, and its name is
      close to another cluster's (clusters defined host by host).

    A cluster with a group of its own is never a stray: it was meant."""
    out: Dict[str, Tuple[str, List[str], str]] = {}
    names = list(inv.clusters)
    homes_of: Dict[str, List[str]] = {}  # host -> cluster groups it is in
    for other in names:
        for host in inv.groups.get(other) or ():
            homes_of.setdefault(host, []).append(other)
    for name, cluster in inv.clusters.items():
        if name in inv.groups:
            continue
        hosts = [m.host for m in cluster.members]
        common = set(homes_of.get(hosts[0], ())) if hosts else set()
        for host in hosts[1:]:
            common &= set(homes_of.get(host, ()))
        homes = min(common) if common else None
        if homes is not None:
            out[name] = (homes, hosts, "group")
            continue
        if cluster.leader is not None or any(m.is_leader for m in cluster.members):
            continue
        guess = closest(name, [n for n in names if n != name], cutoff=0.75)
        if guess is not None:
            out[name] = (guess, hosts, "name")
    return out


def stray_problems(inv: Inventory, strays: Mapping[str, Tuple[str, List[str], str]]) -> List[Problem]:
    """One problem per host of a stray cluster, naming the likely intended
    cluster (:func:`stray_clusters`)."""
    out: List[Problem] = []
    for stray, (meant, hosts, how) in sorted(strays.items()):
        for host in hosts:
            if how == "group":
                out.append(
                    Problem(
                        meant,
                        host,
                        "pg_cluster",
                        stray,
                        "differs from pg_cluster %s of the other hosts of its "
                        "group %s, so the host would be alone in a cluster %s" % (meant, meant, stray),
                        "set pg_cluster: %s on %s (a typo?), or give a cluster "
                        "%s of its own a group of that name" % (meant, host, stray),
                    )
                )
            else:
                out.append(
                    Problem(
                        stray,
                        host,
                        "pg_cluster",
                        stray,
                        "cluster %s has no primary and no group of its name, "
                        "and the name is close to cluster %s's" % (stray, meant),
                        "did you mean pg_cluster: %s? (or give cluster %s a primary)" % (meant, stray),
                    )
                )
    return out


def without_stray_echoes(
    found: List[Problem], inv: Inventory, strays: Mapping[str, Tuple[str, List[str], str]]
) -> List[Problem]:
    """``found`` without what only follows from a mistyped ``pg_cluster``
    (the stray cluster's own problems, such as "has no primary", the
    intended cluster's missing or extra leader, the group's "belongs to
    cluster", a VIP both claim), which :func:`stray_problems` says once.
    The stray hosts' other problems show once the name is fixed."""
    out = []
    for p in found:
        if p.cluster in strays:
            continue
        echo = False
        for stray, (meant, hosts, _how) in strays.items():
            if p.cluster != meant:
                continue
            if p.field == "pg_cluster" and p.value == stray and p.host in hosts:
                echo = True
            elif p.field == "pg_vip_address" and p.what == "is also the VIP of cluster %s" % stray:
                echo = True
            elif p.field == "pg_role" and p.host is None:
                leaders = [m for c in (meant, stray) for m in inv.clusters[c].members if m.is_leader]
                echo = len(leaders) == 1
        if not echo:
            out.append(p)
    return out


# ------------------------------------------------------------- addresses


def _host_ip(host: str, hvars: Mapping[str, Any]) -> Optional[str]:
    return ip_of(host) or ip_of(hvars.get("ansible_host"))


def vip_problems(inv: Inventory) -> List[Problem]:
    """A VIP that is another host's address, or another cluster's VIP."""
    out: List[Problem] = []
    owners: Dict[str, str] = {}  # ip -> host
    for host, hvars in inv.hostvars.items():
        ip = _host_ip(host, hvars or {})
        if ip:
            owners.setdefault(ip, host)
    vips: Dict[str, List[str]] = {}  # vip -> clusters
    for name, cluster in inv.clusters.items():
        vip = vip_ip(cluster.setting("pg_vip_enabled"), cluster.setting("pg_vip_address"))
        if vip:
            vips.setdefault(vip, []).append(name)
    for hvars in inv.hostvars.values():
        other = (hvars or {}).get("pg_cluster")
        if not isinstance(other, str) or other in inv.clusters:
            continue
        vip = vip_ip(hvars.get("pg_vip_enabled"), hvars.get("pg_vip_address"))
        if vip and other not in vips.setdefault(vip, []):
            vips[vip].append(other)
    fix = "give the VIP a free address of the members' subnet that no host and no other cluster uses"
    for name, cluster in inv.clusters.items():
        address = cluster.setting("pg_vip_address")
        vip = vip_ip(cluster.setting("pg_vip_enabled"), address)
        if not vip:
            continue
        own = {m.host for m in cluster.members}
        owner = owners.get(vip)
        if owner is not None and owner not in own:
            out.append(Problem(name, None, "pg_vip_address", address, "is the address of host %s" % owner, fix))
        for other in vips.get(vip, ()):
            if other != name:
                out.append(Problem(name, None, "pg_vip_address", address, "is also the VIP of cluster %s" % other, fix))
    return out


# ------------------------------------------------------------------ ports

# Ports of the components (the model's defaults), and the names under which
# the exporters role reads them too.
_EXPORTER_PORTS = (
    ("node_exporter_port", "exporters_node_port"),
    ("pg_exporter_port", "exporters_pg_port"),
    ("pgbouncer_exporter_port", "exporters_pgbouncer_port"),
    ("pgbackrest_exporter_port", "exporters_pgbackrest_port"),
)
# Pairs that other checks already report: the three ports of one instance
# (settings.py), and a service against a component of its own cluster's
# members (services.py).
_TRIO = frozenset(("pg_port", "patroni_port", "pgbouncer_port"))
_SERVICE_RESERVED = frozenset(services_mod.RESERVED_PORT_NAMES)


def _port(hvars: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = hvars.get(name)
        if value is not None:
            return value
    for name in names:
        if name in MODEL_DEFAULTS:
            return MODEL_DEFAULTS[name]
    return None


def _node_ports(inv: Inventory) -> Dict[str, Dict[int, List[Tuple]]]:
    """node -> port -> [(port, what, cluster or None, host, host vars)] of
    everything that listens there (an entry twice is harmless: the same
    component on one port is never a clash, _covered)."""
    nodes: Dict[str, Dict[int, List[Tuple]]] = {}

    def node_of(host, hvars):
        return nodes.setdefault(_host_ip(host, hvars) or host, {})

    def add(ports, host, hvars, port, what, cluster):
        if is_int(port):
            ports.setdefault(port, []).append((port, what, cluster, host, hvars))

    for cname, cluster in inv.clusters.items():
        bouncer = cluster.setting("pgbouncer_enabled") is not False
        for m in cluster.members:
            v = m.vars
            ports = node_of(m.host, v)
            add(ports, m.host, v, _port(v, "pg_port"), "pg_port", cname)
            add(ports, m.host, v, _port(v, "patroni_port"), "patroni_port", cname)
            if bouncer:
                add(ports, m.host, v, _port(v, "pgbouncer_port"), "pgbouncer_port", cname)
            if v.get("haproxy_enabled") is not False:
                add(ports, m.host, v, _port(v, "haproxy_exporter_port"), "haproxy_exporter_port", cname)
            if v.get("exporters_enabled") is not False:
                for model_name, role_name in _EXPORTER_PORTS:
                    add(
                        ports,
                        m.host,
                        v,
                        _port(v, role_name, model_name),
                        role_name if v.get(role_name) is not None else model_name,
                        cname,
                    )
            add(ports, m.host, v, _port(v, "vector_port"), "vector_port", cname)
            add(ports, m.host, v, _port(v, "ansible_port", "ansible_ssh_port") or 22, "ansible_port (ssh)", cname)
        provider = cluster.setting("pg_service_provider")
        hosts = list(inv.groups.get(provider) or ()) if provider else [m.host for m in cluster.members]
        services = cluster.setting("pg_default_services")
        services = (list(services) if isinstance(services, list) else []) + (
            list(cluster.setting("pg_services")) if isinstance(cluster.setting("pg_services"), list) else []
        )
        for host in hosts:
            hvars = inv.hostvars.get(host) or {}
            ports = node_of(host, hvars)
            for svc in services:
                if isinstance(svc, dict):
                    add(ports, host, hvars, svc.get("port"), "service %s-%s" % (cname, svc.get("name")), cname)
    for m in inv.etcd:
        ports = node_of(m.host, m.vars)
        add(ports, m.host, m.vars, _port(m.vars, "etcd_port"), "etcd_port", None)
        add(ports, m.host, m.vars, _port(m.vars, "etcd_peer_port"), "etcd_peer_port", None)
        add(ports, m.host, m.vars, _port(m.vars, "etcd_tls_bridge_port"), "etcd_tls_bridge_port", None)
        add(ports, m.host, m.vars, _port(m.vars, "ansible_port", "ansible_ssh_port") or 22, "ansible_port (ssh)", None)
    infra = list(inv.groups.get("infra", ()))
    for host in infra:
        hvars = inv.hostvars.get(host) or {}
        if hvars.get("exporters_prometheus_server") is False:
            continue
        ports = node_of(host, hvars)
        victoria = hvars.get("infra_metrics") == "victoriametrics"
        if victoria:
            add(
                ports,
                host,
                hvars,
                hvars.get("exporters_victoriametrics_port", 8428),
                "exporters_victoriametrics_port (VictoriaMetrics)",
                None,
            )
        else:
            add(
                ports,
                host,
                hvars,
                hvars.get("exporters_prometheus_port", 9090),
                "exporters_prometheus_port (Prometheus)",
                None,
            )
        if hvars.get("exporters_alertmanager") is False:
            continue
        if victoria and hvars.get("exporters_alerting") is not False:
            add(ports, host, hvars, hvars.get("exporters_vmalert_port", 8880), "exporters_vmalert_port (vmalert)", None)
        add(
            ports,
            host,
            hvars,
            hvars.get("exporters_alertmanager_port", 9093),
            "exporters_alertmanager_port (Alertmanager)",
            None,
        )
        if len(infra) > 1:
            add(
                ports,
                host,
                hvars,
                hvars.get("exporters_alertmanager_cluster_port", 9094),
                "exporters_alertmanager_cluster_port (Alertmanager)",
                None,
            )
        if hvars.get("exporters_alert_recorder") is True:
            add(
                ports,
                host,
                hvars,
                hvars.get("exporters_alert_recorder_port", 9095),
                "exporters_alert_recorder_port (webhook recorder)",
                None,
            )
    return nodes


def _covered(a: Tuple, b: Tuple) -> bool:
    (_skip, wa, ca, ha, _skip), (_skip, wb, cb, hb, _skip) = a, b
    if wa in _TRIO and wb in _TRIO and ha == hb:
        return True
    sa, sb = wa.startswith("service "), wb.startswith("service ")
    if sa and sb:
        return True
    if sa != sb:
        # services.check_services compares a service with the component
        # ports of its own cluster's members, etcd's included
        svc_cluster, other, other_cluster = (ca, wb, cb) if sa else (cb, wa, ca)
        return other in _SERVICE_RESERVED and (svc_cluster == other_cluster or other.startswith("etcd_"))
    # the same component twice: one host listed twice, or two hosts with
    # one address (validate._check_addresses reports those)
    return wa == wb


def port_problems(inv: Inventory) -> List[Problem]:
    """Two things listening on one port of one node. A clash found alike on
    several nodes is reported once, naming them."""

    def given(entry):  # set in the inventory: named as the field
        return entry[1].startswith("service ") or entry[4].get(entry[1].split(" ")[0]) is not None

    clashes: Dict[Tuple, List[Tuple[str, str]]] = {}
    for node, by_port in sorted(_node_ports(inv).items()):
        for port, taken in sorted(by_port.items()):
            for i, later in enumerate(taken[1:], 1):
                for earlier in taken[:i]:
                    if _covered(earlier, later):
                        continue
                    named = later if given(later) or not given(earlier) else earlier
                    key = (later[2] or earlier[2] or "etcd", port, earlier[1], later[1], named[1])
                    clashes.setdefault(key, []).append((later[3], node))
                    break
    out: List[Problem] = []
    for (cluster, port, first, second, named), where in clashes.items():
        field = "pg_services" if named.startswith("service ") else named.split(" ")[0]
        nodes = sorted({node for _skip, node in where})
        out.append(
            Problem(
                cluster,
                where[0][0] if len(where) == 1 else None,
                field,
                port,
                "%s and %s both listen on port %d of node%s %s"
                % (first, second, port, "s" if len(nodes) > 1 else "", ", ".join(nodes)),
                "give every component of a node its own port (docs/architecture.md lists them)",
            )
        )
    return out


# -------------------------------------------------------------- passwords

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# secret -> (characters it may not hold, which file they would break)
_PASSWORD_FILES = {
    "pg_replication_password": (":\\", "the pgpass file Patroni writes (host:port:db:user:password)"),
    "pg_admin_password": ("", ""),
    "pg_monitor_password": ("", ""),
    "patroni_password": ("", ""),
    "haproxy_admin_password": (" \t#'\"\\", "haproxy.cfg's 'stats auth user:password' line"),
}


def password_problems(cluster: Cluster) -> List[Problem]:
    """System secrets that would break the files they are written into
    (checked on every member: a host may set its own)."""
    out: List[Problem] = []
    for var, (bad, where) in _PASSWORD_FILES.items():
        for host, value in _per_value(cluster, var, None):
            if value is None or (isinstance(value, str) and "{{" in value):
                continue
            if not isinstance(value, str) or not value:
                out.append(
                    Problem(
                        cluster.name,
                        host,
                        var,
                        HIDDEN,
                        "is not a non-empty string",
                        "quote the password (from an ansible-vault file)",
                    )
                )
            elif _CONTROL.search(value):
                out.append(
                    Problem(
                        cluster.name,
                        host,
                        var,
                        HIDDEN,
                        "holds a line break or another control character, which "
                        "splits the line of the files it is written into "
                        "(Patroni's configuration and pgpass, the exporters' "
                        "environment files)",
                        "use printable characters only",
                    )
                )
            elif bad and any(c in value for c in bad):
                shown = ", ".join(repr(c) for c in bad if c in value)
                out.append(
                    Problem(
                        cluster.name,
                        host,
                        var,
                        HIDDEN,
                        "holds %s, which breaks %s" % (shown, where),
                        "use a password without %s" % " ".join(repr(c) for c in bad),
                    )
                )
    for host, user in _per_value(cluster, "haproxy_admin_username", None):
        if isinstance(user, str) and (not user or any(c in user for c in ":#'\"\\ ") or _CONTROL.search(user)):
            out.append(
                Problem(
                    cluster.name,
                    host,
                    "haproxy_admin_username",
                    user,
                    "is not a user name haproxy.cfg's 'stats auth user:password' line can hold",
                    "use letters, digits, - and _",
                )
            )
    return out


# ---------------------------------------------------------- sandbox secrets

#: The one switch that accepts the public sandbox passwords
#: (docs/security.md).
SANDBOX_SWITCH = "pigpen_sandbox"


def _sandbox(hvars: Mapping[str, Any]) -> bool:
    """``pigpen_sandbox`` is on: true, or a true word as ``-e
    pigpen_sandbox=true`` gives it."""
    value = hvars.get(SANDBOX_SWITCH)
    return value is True or (isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"))


def sandbox_password_problems(inv: Inventory) -> List[Problem]:
    """The public sandbox passwords, unset or as published, and the public
    secrets of the default object store repository, on hosts that do not
    say ``pigpen_sandbox: true``: refused, naming each variable once with
    the clusters that use it and the setting to change."""
    hits: Dict[str, List[str]] = {}

    def hit(var, cluster):
        where = hits.setdefault(var, [])
        if cluster not in where:
            where.append(cluster)

    etcd_auth = all(m.vars.get("etcd_auth") is not False for m in inv.etcd)
    for cluster in inv.clusters.values():
        for member in cluster.members:
            if _sandbox(member.vars):
                continue
            for var, public in SANDBOX_PASSWORDS.items():
                if var in ("pg_etcd_password", "etcd_root_password") and not etcd_auth:
                    continue
                value = member.vars.get(var)
                if value is None or value == public:
                    hit(var, cluster.name)
            for line in settings_mod.secret_warnings(member.vars):
                hit(line.split(" ", 1)[0], cluster.name)
    for m in inv.etcd:
        if _sandbox(m.vars) or not etcd_auth:
            continue
        value = m.vars.get("etcd_root_password")
        if value is None or value == SANDBOX_PASSWORDS["etcd_root_password"]:
            hit("etcd_root_password", "etcd")
    out = []
    for var, names in sorted(hits.items()):
        default = SANDBOX_PASSWORDS.get(var)
        out.append(
            Problem(
                ", ".join(names),
                None,
                var,
                HIDDEN,
                "is %s, which everyone can read in this collection's sources"
                % (
                    "unset or the public sandbox default %r" % default
                    if default
                    else "the public default of the object store repository"
                ),
                "set %s to a secret of your own (e.g. in an ansible-vault "
                "file); only for a throwaway test bed, set %s: true in the "
                "inventory instead" % (var, SANDBOX_SWITCH),
            )
        )
    return out


def empty_etcd_password_warnings(inv: Inventory) -> List[str]:
    """``pg_etcd_password: ''`` (Pigsty's meaning: the cluster name is the
    password): accepted, with a warning that it can be guessed."""
    names = [
        c.name
        for c in inv.clusters.values()
        if any(not _sandbox(m.vars) and m.vars.get("pg_etcd_password") == "" for m in c.members)
    ]
    if not names:
        return []
    return [
        "pg_etcd_password is empty in cluster(s) %s: as in Pigsty, each "
        "cluster's etcd user gets the cluster name as its password, which "
        "anyone can guess; set a secret value (e.g. in an ansible-vault "
        "file)" % ", ".join(names)
    ]


#: The metrics stores of the infra hosts (infra_metrics).
METRICS_STORES = ("prometheus", "victoriametrics")
#: VictoriaMetrics' -retentionPeriod: months, or hours/days/weeks/years.
_VM_RETENTION = re.compile(r"[1-9][0-9]*[hdwy]?\Z")


def metrics_store_problems(inv: Inventory) -> List[Problem]:
    """``infra_metrics`` names the same store everywhere (the roles read it
    on the PostgreSQL members, which set up the infra hosts, so two values
    would switch the store back and forth), and VictoriaMetrics' retention
    is one it takes (it goes into a shell-style ARGS line)."""
    seen: Dict[str, List[str]] = {}
    hosts = [(m.host, m.vars) for c in inv.clusters.values() for m in c.members]
    hosts += [(h, inv.hostvars.get(h) or {}) for h in inv.groups.get("infra", ())]
    for host, hvars in hosts:
        value = hvars.get("infra_metrics", "prometheus")
        key = value if isinstance(value, str) else repr(value)
        if host not in seen.get(key, ()):
            seen.setdefault(key, []).append(host)

    def where(hosts_of):
        names = sorted(hosts_of)
        return ", ".join(names[:3]) + (" and %d more" % (len(names) - 3) if len(names) > 3 else "")

    # an unknown value: the exporters role's argument_specs name it
    out: List[Problem] = []
    retention: Dict[str, Tuple[Any, List[str]]] = {}
    for host, hvars in hosts:
        value = hvars.get("exporters_victoriametrics_retention", "15d")
        if not (isinstance(value, str) and _VM_RETENTION.match(value)):
            retention.setdefault(repr(value), (value, []))[1].append(host)
    for _skip, (value, where_set) in sorted(retention.items()):
        out.append(
            Problem(
                None,
                None,
                "exporters_victoriametrics_retention",
                value,
                "is not a retention VictoriaMetrics takes "
                "(on %s); it goes into the ARGS line of "
                "/etc/default/victoria-metrics" % where(where_set),
                "write a whole number with h, d, w or y (hours, days, weeks, years), such as 15d or 1y",
            )
        )
    if all(v in METRICS_STORES for v in seen) and len(seen) > 1:
        out.append(
            Problem(
                None,
                None,
                "infra_metrics",
                sorted(seen),
                "differs between hosts (%s)" % "; ".join("%s on %s" % (v, where(h)) for v, h in sorted(seen.items())),
                "set it once, in the inventory's all.vars",
            )
        )
    return out


# ------------------------------------------------------------------ entry


def problems(inv: Inventory) -> List[Problem]:
    """Every problem of this module for the loaded clusters."""
    out: List[Problem] = []
    out.extend(cluster_name_problems(inv))
    out.extend(group_problems(inv))
    for cluster in inv.clusters.values():
        out.extend(path_problems(cluster))
        out.extend(sql_problems(cluster))
        out.extend(system_object_problems(cluster))
        out.extend(password_problems(cluster))
    out.extend(etcd_path_problems(inv))
    out.extend(vip_problems(inv))
    out.extend(port_problems(inv))
    out.extend(metrics_store_problems(inv))
    return out
