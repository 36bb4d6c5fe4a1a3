# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Pigsty settings that this collection does not implement.

A Pigsty inventory (``pigsty.yml``) is accepted as it is: the cluster
vocabulary means here what it means in Pigsty (docs/model.md), and the
settings of what this collection does not deploy (Pigsty's INFRA, MINIO,
REDIS, DOCKER... modules, other PostgreSQL kernels, extension packages that
Debian does not have, node tuning...) are accepted and named in warnings,
never silently dropped and never a failure. docs/pigsty.md lists them
setting by setting.

:func:`warnings` returns the lines for the clusters of an inventory: one line
per PostgreSQL setting (its value and what happens here) and one line per
group of settings of another Pigsty module, each naming the clusters whose
hosts carry the settings. A setting is named once per cluster, whatever the
number of members. Settings whose value means here what it means in Pigsty
(``pg_listen: 0.0.0.0``, ``patroni_ssl_enabled``, a module's
``*_enabled: false``...) are not reported.

Pure Python; nothing here imports Ansible.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    HIDDEN,
    is_secret_name,
    mask_secrets,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.ha import PLANS
from ansible_collections.pigpen.pgsql.plugins.module_utils.objects import (
    DB_KEYS_NOT_APPLIED,
    DB_KEYS_NOT_IMPLEMENTED,
)

#: Key under which the snapshot (``snapshot`` in
#: plugins/plugin_utils/inventory.py) keeps the names of the Pigsty settings
#: a host carries (reading Ansible's hostvars lazily, it copies only the
#: values this module needs).
PRESENT_KEY = "_pigsty_settings"

#: Pigsty's path of its CA certificate on every node; this collection's CA is
#: ``pg_ssl_ca`` (``/pg/cert/ca.crt``).
PIGSTY_CA_FILE = "/etc/pki/ca.crt"

#: Pigsty links ``/usr/pgsql`` to the installed PostgreSQL; this collection
#: uses Debian's ``/usr/lib/postgresql/<pg_version>/bin`` for that value.
PIGSTY_BIN_DIR = "/usr/pgsql/bin"

#: Libraries of Debian's ``postgresql-<N>`` package that
#: ``shared_preload_libraries`` may name (core and contrib).
DEBIAN_CORE_LIBRARIES = frozenset(
    (
        "auth_delay",
        "auto_explain",
        "basebackup_to_shell",
        "basic_archive",
        "passwordcheck",
        "pg_prewarm",
        "pg_stat_statements",
        "plpgsql",
        "sepgsql",
    )
)

#: Components whose packages this collection installs anyway: Pigsty's
#: package aliases for them in ``pg_packages`` change nothing here.
_SAME_PACKAGES = frozenset(
    (
        "pgsql-main",
        "pgsql-common",
        "pgsql-main pgsql-common",
        "patroni",
        "pgbackrest",
        "pg-exporter",
        "pgbackrest-exporter",
        "pgbouncer",
        "vip-manager",
        "haproxy",
    )
)

_PIGSTY_PRIVILEGES = (
    "GRANT USAGE ON SCHEMAS TO dbrole_readonly",
    "GRANT SELECT ON TABLES TO dbrole_readonly",
    "GRANT SELECT ON SEQUENCES TO dbrole_readonly",
    "GRANT EXECUTE ON FUNCTIONS TO dbrole_readonly",
    "GRANT USAGE ON SCHEMAS TO dbrole_offline",
    "GRANT SELECT ON TABLES TO dbrole_offline",
    "GRANT SELECT ON SEQUENCES TO dbrole_offline",
    "GRANT EXECUTE ON FUNCTIONS TO dbrole_offline",
    "GRANT INSERT ON TABLES TO dbrole_readwrite",
    "GRANT UPDATE ON TABLES TO dbrole_readwrite",
    "GRANT DELETE ON TABLES TO dbrole_readwrite",
    "GRANT USAGE ON SEQUENCES TO dbrole_readwrite",
    "GRANT UPDATE ON SEQUENCES TO dbrole_readwrite",
    "GRANT TRUNCATE ON TABLES TO dbrole_admin",
    "GRANT REFERENCES ON TABLES TO dbrole_admin",
    "GRANT TRIGGER ON TABLES TO dbrole_admin",
    "GRANT CREATE ON SCHEMAS TO dbrole_admin",
)


def _is(*values: Any) -> Callable[[Any], bool]:
    return lambda value: value in values


def _empty(value: Any) -> bool:
    return value in (None, "", [], {})


def _same_packages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() in _SAME_PACKAGES for v in value)


def _same_privileges(value: Any) -> bool:
    return isinstance(value, list) and tuple(" ".join(str(v).split()) for v in value) == _PIGSTY_PRIVILEGES


def _ms(duration: Any) -> Optional[float]:
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*\Z", str(duration))
    if not match:
        return None
    return float(match.group(1)) * (1 if match.group(2) == "ms" else 1000)


def _same_rto_plan(value: Any) -> bool:
    """Pigsty's pg_rto_plan: {name: [ttl, loop, retry, start, margin, inter,
    fastinter, downinter, rise, fall]}, the same as the plans of ha.py?"""
    if not isinstance(value, dict):
        return False
    for name, row in value.items():
        plan = PLANS.get(name)
        if plan is None or not isinstance(row, list) or len(row) != 10:
            return False
        want = [
            plan["ttl"],
            plan["loop_wait"],
            plan["retry_timeout"],
            plan["primary_start_timeout"],
            plan["safety_margin"],
        ]
        if list(row[:5]) != want or list(row[8:]) != [3, 3]:
            return False
        if [_ms(v) for v in row[5:8]] != [_ms(plan[k]) for k in ("inter", "fastinter", "downinter")]:
            return False
    return True


# Settings of Pigsty's PGSQL module (and a few NODE ones that touch it) that
# this collection does not implement: name -> (value that means the same
# here, or None: always reported; what happens here). Each is named in a
# line of its own.
SETTINGS: Dict[str, Tuple[Optional[Callable[[Any], bool]], str]] = {
    "pg_mode": (
        _is("pgsql"),
        "other PostgreSQL kernels (Citus, Babelfish, "
        "IvorySQL, PolarDB, OrioleDB, Percona, ...) are not "
        "implemented: the cluster runs Debian's PostgreSQL",
    ),
    "pg_shard": (None, "sharded clusters (Citus, Greenplum) are not implemented: each cluster stands alone"),
    "pg_group": (None, "sharded clusters (Citus, Greenplum) are not implemented: each cluster stands alone"),
    "gp_role": (None, "Greenplum is not implemented"),
    "pg_instances": (_empty, "several instances per node are not implemented"),
    "pg_exporters": (_empty, "monitoring remote PostgreSQL instances is not implemented"),
    "pg_extensions": (
        _empty,
        "extension packages are not installed (Pigsty "
        "package names and aliases; many extensions are not in "
        "Debian): list Debian packages in "
        "postgres_packages_extra",
    ),
    "pg_packages": (
        _same_packages,
        "Pigsty package names and aliases are "
        "not used: PostgreSQL comes from Debian's "
        "postgresql-<pg_version> (postgres_packages, "
        "postgres_packages_extra)",
    ),
    "pg_dbsu_uid": (None, "the database superuser keeps the uid Debian's postgresql-common gives it"),
    "pg_dbsu_sudo": (_is("none"), "no sudo rule is written for the database superuser"),
    "pg_dbsu_home": (_is("/var/lib/postgresql"), "the database superuser keeps Debian's home, /var/lib/postgresql"),
    "pg_dbsu_ssh_exchange": (_is(False), "ssh keys are not exchanged between members"),
    "pg_dbsu_password": (_empty, "the database superuser has no password: Patroni and the roles use the unix socket"),
    "pg_fs_main": (None, "the data lives in pg_data itself (no /data directory and link)"),
    "pg_fs_backup": (None, "local backups live in the repository path of pgbackrest_repo"),
    "pg_storage_type": (None, "tuning assumes SSD storage (docs/tuning.md)"),
    "pg_dummy_filesize": (None, "no reserve file (/pg/dummy) is created"),
    "pg_listen": (_is("0.0.0.0", "*"), "PostgreSQL and pgbouncer listen on every address (0.0.0.0)"),
    "pg_localhost": (_is("/var/run/postgresql"), "the unix socket is in /var/run/postgresql"),
    "patroni_enabled": (_is(True), "Patroni always manages PostgreSQL"),
    "patroni_mode": (
        _is("default"),
        "Patroni's pause and remove modes are not implemented: Patroni keeps managing the cluster",
    ),
    "pg_primary_db": (_is("postgres"), "the primary database is postgres"),
    "pg_files": (_empty, "no extra files are copied into pg_data"),
    "pg_io_method": (
        _is("worker"),
        "io_method keeps PostgreSQL's default: set pg_parameters.io_method (PostgreSQL 18)",
    ),
    "pg_rto_plan": (
        _same_rto_plan,
        "custom RTO plans are not implemented: pg_rto picks one of the plans of docs/ha.md",
    ),
    "pg_lc_collate": (None, "the collation follows pg_locale"),
    "pg_lc_ctype": (None, "the character type follows pg_locale"),
    "pg_provision": (_is(True), "users and databases are always provisioned"),
    "pg_init": (_is("pg-init"), "no custom initialisation script is run"),
    "pg_default_privileges": (_same_privileges, "the default privileges are the fixed ones of docs/model.md"),
    "pg_default_schemas": (_empty, "no schema is created in every database (add schemas to pg_databases)"),
    "pg_default_extensions": (_empty, "no extension is created in every database (add extensions to pg_databases)"),
    "pg_reload": (_is(True), "configuration changes are always applied (HBA by a reload)"),
    "pgbouncer_ignore_param": (None, "pgbouncer ignores the startup parameters extra_float_digits and options"),
    "pg_exporter_enabled": (_is(True), "set exporters_pg_enabled instead"),
    "pgbouncer_exporter_enabled": (_is(True), "set exporters_pgbouncer_enabled instead"),
    "pgbackrest_exporter_enabled": (_is(True), "set exporters_pgbackrest_enabled instead"),
    "pg_rm_data": (None, "pgsql-rm.yml has its own options (docs/operations.md)"),
    "pg_rm_backup": (None, "pgsql-rm.yml has its own options (docs/operations.md)"),
    "pg_rm_pkg": (None, "pgsql-rm.yml has its own options (docs/operations.md)"),
    "pgsodium_key": (None, "pgsodium is not set up"),
    "pgsodium_getkey_script": (None, "pgsodium is not set up"),
    "pgbackrest_clean": (None, "a stanza is never wiped by a deployment"),
    "pgbackrest_exporter_options": (None, "the exporter's options are exporters_pgbackrest_interval and _timeout"),
    "pgbouncer_exporter_url": (_empty, "the exporter connects through the local socket"),
    "pgbouncer_exporter_options": (_empty, "the exporter runs with its defaults"),
    "pg_exporter_url": (_empty, "the exporter connects through the local socket"),
    "node_exporter_enabled": (_is(True), "set exporters_node_enabled instead"),
    "node_etc_hosts": (
        _empty,
        "these /etc/hosts lines are not written: "
        "the node role names the inventory's hosts itself and "
        "takes extra entries from node_etc_hosts_extra "
        "({address: IP, names: [NAME, ...]})",
    ),
    "node_exporter_options": (None, "node_exporter runs with this collection's options"),
}
# pg_exporter's tuning knobs, each reported on a line of its own.
for _name in (
    "pg_exporter_config",
    "pg_exporter_cache_ttls",
    "pg_exporter_params",
    "pg_exporter_auto_discovery",
    "pg_exporter_exclude_database",
    "pg_exporter_include_database",
    "pg_exporter_connect_timeout",
    "pg_exporter_options",
):
    SETTINGS[_name] = (None, "pg_exporter runs with this collection's configuration (docs/monitoring.md)")

# Settings of Pigsty's other modules, by group: (group, what it is, name
# prefixes, names). Each group is reported in one line per set of clusters.
AREAS: Tuple[Tuple[str, str, Tuple[str, ...], Tuple[str, ...]], ...] = (
    (
        "INFRA",
        "Grafana, VictoriaMetrics/Logs/Traces, Alertmanager, "
        "Blackbox, nginx, dnsmasq's static records, the local package "
        "repository and the CA are not deployed",
        (
            "infra_",
            "repo_",
            "nginx_",
            "certbot_",
            "dns_",
            "vmetrics_",
            "vlogs_",
            "vtraces_",
            "vmalert_",
            "blackbox_",
            "alertmanager_",
            "grafana_",
            "ca_",
            "prometheus_",
            "loki_",
        ),
        ("cert_validity", "exporter_metrics_path", "language", "region", "proxy_env"),
    ),
    (
        "NODE",
        "node identity, tuning, admin user, firewall, /etc/hosts, "
        "crontab, keepalived VIP, node exporter options and log shipping are "
        "not managed (the node role has its own settings, docs/parameters.md)",
        ("node_", "nodename_", "vip_", "vector_", "haproxy_"),
        (),
    ),
    (
        "MINIO",
        "MinIO is not deployed: the backup repository is any S3-compatible endpoint of pgbackrest_repo",
        ("minio_",),
        (),
    ),
    ("REDIS", "Redis is not deployed", ("redis_",), ()),
    (
        "ETCD",
        "etcd's safeguard, data path and bootstrap state are not settings here (docs/etcd.md)",
        (),
        ("etcd_safeguard", "etcd_data", "etcd_init", "etcd_clean"),
    ),
    ("DOCKER/APP", "Docker and its applications are not deployed", ("docker_",), ("app", "apps")),
    ("MONGO", "FerretDB is not deployed", ("mongo_",), ()),
    (
        "VIBE",
        "the development sandbox (code-server, Jupyter, JuiceFS, Node.js, agents) is not deployed",
        ("juice_", "code_", "jupyter_", "claude_", "codex_", "nodejs_"),
        ("npm_packages",),
    ),
)

#: Names of Pigsty settings that this collection implements under the same
#: name and meaning, besides the cluster vocabulary and the roles' own
#: variables (which callers pass as ``own``).
SAME_NAME = frozenset(("nodename",))

#: The node role's default ``node_packages`` (kept equal by a unit test).
NODE_BASE_PACKAGES = (
    "acl",
    "ca-certificates",
    "curl",
    "gnupg",
    "iproute2",
    "jq",
    "less",
    "locales",
    "lsof",
    "procps",
    "python3-psycopg2",
    "rsync",
    "sudo",
    "tzdata",
)


def _has_base_packages(value: Any) -> bool:
    return isinstance(value, list) and set(NODE_BASE_PACKAGES) <= set(value)


#: Pigsty settings whose name this collection uses with another meaning:
#: name -> (value that is fine here, what it means here).
DIFFERENT: Dict[str, Tuple[Callable[[Any], bool], str]] = {
    "node_packages": (
        _has_base_packages,
        "here the base package list of "
        "every node, which the value replaces (in Pigsty: "
        "packages added to the defaults): keep %s in it and "
        "put extra packages in node_packages_extra" % ", ".join(NODE_BASE_PACKAGES),
    ),
}

#: Settings that have no effect in Pigsty either (descriptive only).
NO_EFFECT = frozenset(("version",))


def area_of(name: str, own: Iterable[str] = ()) -> Optional[str]:
    """The AREAS group of a setting name, or None (also for the names in
    ``own``, which this collection implements)."""
    if name in SAME_NAME or name in SETTINGS or name in DIFFERENT or name in NO_EFFECT or name in own:
        return None
    for area, _what, prefixes, names in AREAS:
        if name in names or name.startswith(prefixes):
            return area
    return None


def is_pigsty_setting(name: Any) -> bool:
    """Whether :func:`warnings` may have something to say about ``name``."""
    return isinstance(name, str) and (name in SETTINGS or name in DIFFERENT or area_of(name) is not None)


def needs_value(name: str) -> bool:
    """Whether :func:`warnings` reads the value of ``name`` (else only its
    presence matters)."""
    return name in SETTINGS or name in DIFFERENT or name.endswith(_OFF_SUFFIXES) or name == "haproxy_services"


# A switch of another module that is off means there what absence means here.
_OFF_SUFFIXES = ("_enabled", "_safeguard")


def _show(value: Any, name: Any = None) -> str:
    # a warning never shows a secret (pg_dbsu_password, ...)
    if is_secret_name(name) and value is not None:
        return HIDDEN
    text = repr(mask_secrets(value))
    return text if len(text) <= 80 else text[:77] + "..."


def _extra_libraries(libs: Any) -> List[str]:
    if not isinstance(libs, str):
        return []
    out = []
    for item in libs.split(","):
        name = item.strip()
        if name.startswith("$libdir/"):
            name = name[len("$libdir/") :]
        if name and name not in DEBIAN_CORE_LIBRARIES and name not in out:
            out.append(name)
    return out


def _pigsty_node_services(value: Any) -> bool:
    """haproxy_services as Pigsty writes it (node services with their own
    server lists, e.g. MinIO), not this collection's resolved services."""
    return isinstance(value, list) and any(isinstance(s, dict) and "cluster" not in s for s in value)


def _same_locale(hvars: Mapping[str, Any], value: Any) -> bool:
    return value == hvars.get("pg_locale", "C.UTF-8")


def member_notes(
    hvars: Mapping[str, Any], own: Iterable[str] = ()
) -> Tuple[List[Tuple[str, str]], Dict[str, List[str]]]:
    """The notes on one host's settings: ``([(key, line), ...], {area:
    [names]})``; equal keys are the same note."""
    own = frozenset(own)
    names = hvars.get(PRESENT_KEY)
    if names is None:
        names = [n for n in hvars if is_pigsty_setting(n)]
    out: List[Tuple[str, str]] = []
    areas: Dict[str, List[str]] = {}
    for name in sorted(set(names)):
        if name == "haproxy_services":
            if _pigsty_node_services(hvars.get(name)):
                out.append(
                    (
                        "haproxy_services",
                        "haproxy_services holds Pigsty's node services "
                        "(e.g. MinIO's): they are not published; the "
                        "HAProxy of a member publishes its cluster's "
                        "services only",
                    )
                )
            continue
        if name in own and name not in DIFFERENT:
            continue
        if name in SETTINGS:
            same, what = SETTINGS[name]
            value = hvars.get(name)
            if name in ("pg_lc_collate", "pg_lc_ctype"):

                def same(v: Any, h: Mapping[str, Any] = hvars) -> bool:
                    return _same_locale(h, v)

            if same is not None and name in hvars and same(value):
                continue
            shown = _show(value, name) if name in hvars else "(not evaluated)"
            out.append(("setting:%s:%s" % (name, shown), "%s = %s: %s" % (name, shown, what)))
        elif name in DIFFERENT:
            fine, what = DIFFERENT[name]
            if not fine(hvars.get(name)):
                out.append(
                    (
                        "different:%s:%s" % (name, _show(hvars.get(name), name)),
                        "%s = %s: %s" % (name, _show(hvars.get(name), name), what),
                    )
                )
        else:
            if name.endswith(_OFF_SUFFIXES) and hvars.get(name) is False:
                continue  # off there, absent here: the same
            area = area_of(name, own)
            if area is not None:
                areas.setdefault(area, []).append(name)
    extra = _extra_libraries(hvars.get("pg_libs"))
    if extra:
        out.append(
            (
                "libs:%s" % ",".join(extra),
                "pg_libs loads %s, which Debian's postgresql-<pg_version> "
                "package does not ship: PostgreSQL starts only once a "
                "package provides %s (postgres_packages_extra)"
                % (", ".join(extra), "it" if len(extra) == 1 else "them"),
            )
        )
    databases = hvars.get("pg_databases")
    for db in databases if isinstance(databases, list) else ():
        if not isinstance(db, dict):
            continue
        for key in DB_KEYS_NOT_IMPLEMENTED:
            if key in db:
                out.append(
                    (
                        "db:%s:%s:%r" % (db.get("name"), key, db[key]),
                        "pg_databases(%s).%s = %s: not applied (the "
                        "database is created with PostgreSQL's defaults "
                        "for it)" % (db.get("name"), key, _show(db[key])),
                    )
                )
        for key, (asks, what) in sorted(DB_KEYS_NOT_APPLIED.items()):
            if key in db and (asks is None or db[key] is asks):
                out.append(
                    (
                        "db:%s:%s:%r" % (db.get("name"), key, db[key]),
                        "pg_databases(%s).%s = %s: not applied: %s" % (db.get("name"), key, _show(db[key]), what),
                    )
                )
    repos = hvars.get("pgbackrest_repo")
    method = hvars.get("pgbackrest_method", "local")
    repo = repos.get(method) if isinstance(repos, dict) and isinstance(method, str) else None
    if isinstance(repo, dict) and repo.get("storage_ca_file") == PIGSTY_CA_FILE:
        out.append(
            (
                "ca_file",
                "pgbackrest_repo.%s.storage_ca_file = %r is "
                "Pigsty's CA path, which this collection does not "
                "create: put the object store's CA there, or point "
                "storage_ca_file at pg_ssl_ca (/pg/cert/ca.crt)" % (method, PIGSTY_CA_FILE),
            )
        )
    return out, areas


def warnings(clusters: Iterable[Tuple[str, Sequence[Mapping[str, Any]]]], own: Iterable[str] = ()) -> List[str]:
    """Warning lines for ``[(cluster name, [member host vars, ...]), ...]``:
    each note once, naming the clusters it applies to; the settings of
    another module in one line per group and set of clusters. ``own``:
    names this collection implements (its roles' variables)."""
    own = frozenset(own)
    seen: Dict[str, Tuple[str, List[str]]] = {}

    def note(key: str, line: str, cluster: str) -> None:
        entry = seen.setdefault(key, (line, []))
        if cluster not in entry[1]:
            entry[1].append(cluster)

    for name, members in clusters:
        areas: Dict[str, List[str]] = {}
        for hvars in members:
            notes, member_areas = member_notes(hvars, own)
            for key, line in notes:
                note(key, line, name)
            for area, names in member_areas.items():
                into = areas.setdefault(area, [])
                into.extend(n for n in names if n not in into)
        for area, names in areas.items():
            what = next(w for a, w, _p, _n in AREAS if a == area)
            names = sorted(names)
            note(
                "area:%s:%s" % (area, ",".join(names)),
                "Pigsty %s settings %s: %s" % (area, ", ".join(names), what),
                name,
            )
    return [
        "%s (not implemented by this collection; cluster(s) %s)" % (line, ", ".join(names))
        for line, names in sorted(seen.values())
    ]
