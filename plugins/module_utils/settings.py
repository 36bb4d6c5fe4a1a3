# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The settings of an instance's configuration files: their defaults and
their checks.

Pure Python; nothing here imports Ansible. The generators of the files
(:mod:`patroni_conf`, :mod:`pgbouncer_ini`, :mod:`pgbackrest_conf`,
:mod:`etcd_vip`) turn the model's plans (:func:`plan.cluster_plan`,
:func:`plan.instance_plan`) plus a *settings* mapping into the content of
one file; this module holds what that mapping may contain::

    settings = build_settings(hostvars[host])      # SETTINGS_DEFAULTS + vars
    check_config_settings(settings, cluster=..., host=...) -> [Problem]

Every value is a string, number or boolean; dictionaries keep a fixed,
readable key order and PostgreSQL parameters are sorted, so rendering twice
gives byte-identical files. The generators raise :class:`ModelError` listing
every problem of the settings (see :func:`check_config_settings`).

* **Secrets.** The Patroni file holds the REST API, replication and etcd
  passwords, and pgbackrest.conf the repository key secret and cipher pass
  (pgBackRest reads them from there); both files are written 0600. With
  ``mask_secrets: true`` (dry renders) every secret is replaced by
  :data:`MASK`. pgbouncer's ``auth_file`` (``userlist.txt``) holds password
  hashes and is not rendered here: the pgbouncer role fills it from
  ``pg_shadow`` on the primary.

Used by the generators above, by :mod:`validate` (which runs
:func:`check_config_settings` on every member), :mod:`plan`, :mod:`safety`
and :mod:`render` (:func:`render.instance_configs` builds the settings of
an instance).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils import guc
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
    SANDBOX_PASSWORDS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import is_int

__all__ = [
    "SETTINGS_DEFAULTS",
    "PGBACKREST_REPO_DEFAULTS",
    "MASK",
    "PG_SOCKET_DIR",
    "build_settings",
    "check_config_settings",
    "secret_warnings",
    "repo_flag",
]

#: Default ``pgbouncer_sslmode``: pgbouncer offers TLS (the node's
#: certificate, as PostgreSQL's) to every client, and its default HBA rules
#: for the network require it (docs/hba.md). Pigsty's default is
#: ``disable`` (docs/pigsty.md).
PGBOUNCER_SSLMODE = "prefer"

#: Replaces every secret when ``mask_secrets`` is true.
MASK = "********"

#: Where PostgreSQL puts its socket (Debian's postgresql-common creates it).
PG_SOCKET_DIR = "/var/run/postgresql"

#: Default ``pgbackrest_repo``: one repository definition per
#: ``pgbackrest_method``. Keys are pgBackRest ``repo*`` options without the
#: ``repoN-`` prefix, ``-`` written ``_``. ``block`` (block incremental) is a
#: beta feature of pgBackRest 2.45 (Debian 12): a repository with it gets
#: ``beta=y`` (see :func:`pgbackrest_conf.pgbackrest_conf`). The TLS
#: certificate of the object store is checked against the deployment's CA
#: (the postgres role installs it as ``pg_ssl_ca``). The secrets below are
#: public defaults, for the sandbox only.
PGBACKREST_REPO_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "local": {
        "path": "/pg/backup",
        "retention_full_type": "count",
        "retention_full": 2,
    },
    # on a repository host: the first host of group infra (docs/backup.md)
    "backup": {
        "host": "infra",
        "path": "/pg/backup",
        "retention_full_type": "count",
        "retention_full": 2,
    },
    "minio": {
        "type": "s3",
        "s3_endpoint": "sss.pigsty",
        "s3_region": "us-east-1",
        "s3_bucket": "pgsql",
        "s3_key": "pgbackrest",
        "s3_key_secret": "S3User.Backup",
        "s3_uri_style": "path",
        "path": "/pgbackrest",
        "storage_port": 9000,
        "storage_ca_file": "/pg/cert/ca.crt",
        "storage_verify_tls": True,
        "bundle": True,
        "block": True,
        "cipher_type": "aes-256-cbc",
        "cipher_pass": "pgBackRest",
        "retention_full_type": "time",
        "retention_full": 14,
    },
}

#: Public default secrets of :data:`PGBACKREST_REPO_DEFAULTS`.
_REPO_SANDBOX_SECRETS = {"s3_key_secret": "S3User.Backup", "cipher_pass": "pgBackRest"}

#: Every setting the config generators read, with its default. Names shared
#: with the cluster vocabulary take the model's default (defaults.py).
SETTINGS_DEFAULTS: Dict[str, Any] = {
    # shared vocabulary
    "pg_version": MODEL_DEFAULTS["pg_version"],
    # the apt repository, configured on the nodes outside this collection,
    # that carries postgresql-<pg_version> when that is not Debian's 15
    "pg_version_repo": "",
    "pg_port": MODEL_DEFAULTS["pg_port"],
    "patroni_port": MODEL_DEFAULTS["patroni_port"],
    "pgbouncer_port": MODEL_DEFAULTS["pgbouncer_port"],
    "pg_dbsu": MODEL_DEFAULTS["pg_dbsu"],
    "pg_replication_username": MODEL_DEFAULTS["pg_replication_username"],
    "pg_replication_password": SANDBOX_PASSWORDS["pg_replication_password"],
    "pg_monitor_username": MODEL_DEFAULTS["pg_monitor_username"],
    "pg_pwd_enc": MODEL_DEFAULTS["pg_pwd_enc"],
    "pgbouncer_poolmode": MODEL_DEFAULTS["pgbouncer_poolmode"],
    "pgbackrest_method": MODEL_DEFAULTS["pgbackrest_method"],
    # postgres
    "pg_data": "/pg/data",
    "pg_conf_dir": "/pg/conf",
    "pg_bin_dir": None,  # None: /usr/lib/postgresql/<pg_version>/bin
    "pg_log_dir": "/pg/log/postgres",
    "pg_encoding": "UTF8",
    "pg_locale": "C.UTF-8",
    "pg_checksum": True,
    "pg_libs": "pg_stat_statements",
    "pg_parameters": {},
    "pg_ssl_cert": "/pg/cert/server.crt",
    "pg_ssl_key": "/pg/cert/server.key",
    "pg_ssl_ca": MODEL_DEFAULTS["pg_ssl_ca"],
    # how replicas, pg_rewind and a standby cluster's leader check the
    # server they connect to: None is verify-full (the certificate names
    # every member address), verify-ca for a standby cluster (its upstream
    # may be a service or a VIP that another member's certificate answers)
    "pg_replication_sslmode": None,
    # how a standby cluster's leader gets its first copy of the data
    # (docs/dr.md): basebackup from the source's primary, or pgbackrest,
    # a restore from the source's repository (which then also serves it
    # the source's WAL archive); checked against the source by
    # upstream.seed_problems
    "pg_standby_seed": "basebackup",
    # patroni
    "patroni_ssl_enabled": MODEL_DEFAULTS["patroni_ssl_enabled"],
    "patroni_username": "postgres",
    "patroni_password": SANDBOX_PASSWORDS["patroni_password"],
    "patroni_log_dir": "/pg/log/patroni",
    "patroni_pgpass": "/pg/tmp/pgpass",
    "patroni_watchdog_mode": "off",
    "patroni_tags": {},
    # None: what the etcd group serves (plan.etcd_protocol), verified
    # against pg_ssl_ca unless etcd_cacert names another CA
    "etcd_protocol": None,
    "etcd_cacert": None,
    "etcd_username": None,
    "etcd_password": None,
    "pg_etcd_password": SANDBOX_PASSWORDS["pg_etcd_password"],
    "vip_interval": MODEL_DEFAULTS["vip_interval"],
    # pgbouncer
    "pgbouncer_conf_dir": "/etc/pgbouncer",
    "pgbouncer_log_dir": "/pg/log/pgbouncer",
    "pgbouncer_auth_query": False,
    "pgbouncer_sslmode": PGBOUNCER_SSLMODE,
    "pgbouncer_max_client_conn": 20000,
    "pgbouncer_default_pool_size": 50,
    "pgbouncer_reserve_pool_size": 30,
    "pgbouncer_max_db_connections": 100,
    # pgbackrest
    "pgbackrest_enabled": True,
    "pgbackrest_repo": PGBACKREST_REPO_DEFAULTS,
    "pgbackrest_log_dir": "/pg/log/pgbackrest",
    "pgbackrest_spool_dir": "/pg/spool",
    "pgbackrest_process_max": "auto",
    "pg_crontab": [],
    # rendering
    "mask_secrets": False,
}

#: Patroni 3.0 drops a DCS value below these and uses its own default.
_PATRONI_FLOOR = {
    "max_connections": 25,
    "max_wal_senders": 3,
    "max_replication_slots": 4,
    "max_worker_processes": 2,
    "max_locks_per_transaction": 32,
    "max_prepared_transactions": 0,
}

#: Parameters Patroni or the layout owns: a pg_parameters entry may not set
#: them.
_RESERVED_PARAMETERS = (
    "listen_addresses",
    "port",
    "cluster_name",
    "hba_file",
    "ident_file",
    "data_directory",
    "config_file",
    "unix_socket_directories",
    "hot_standby",
    "wal_log_hints",
)

#: pgBackRest 2.45 repository options (``pgbackrest help backup``), without
#: the ``repoN-`` prefix, in the order they are written.
REPO_OPTIONS = (
    "type",
    "path",
    "host",
    "host_port",
    "s3_endpoint",
    "s3_region",
    "s3_bucket",
    "s3_uri_style",
    "s3_key_type",
    "s3_key",
    "s3_key_secret",
    "s3_token",
    "s3_role",
    "s3_kms_key_id",
    "gcs_bucket",
    "gcs_endpoint",
    "gcs_key_type",
    "gcs_key",
    "azure_account",
    "azure_container",
    "azure_endpoint",
    "azure_key_type",
    "azure_key",
    "azure_uri_style",
    "storage_host",
    "storage_port",
    "storage_ca_file",
    "storage_ca_path",
    "storage_verify_tls",
    "storage_upload_chunk_size",
    "hardlink",
    "bundle",
    "bundle_size",
    "bundle_limit",
    "block",
    "cipher_type",
    "cipher_pass",
    "retention_full_type",
    "retention_full",
    "retention_diff",
    "retention_archive_type",
    "retention_archive",
    "retention_history",
)
_REPO_BOOLS = ("storage_verify_tls", "hardlink", "bundle", "block")
#: A repository host as ``pgbackrest_repo.<method>.host`` names it: an
#: inventory host (address or name), nothing a config line could break.
_REPO_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]{0,252}\Z")
#: pgBackRest's own spelling of a boolean option, as Pigsty inventories
#: write it (``block: y``).
_REPO_FLAG_WORDS = {"y": True, "n": False}
_REPO_INTS = ("storage_port", "host_port", "retention_full", "retention_diff", "retention_archive", "retention_history")
_REPO_SECRETS = ("s3_key", "s3_key_secret", "s3_token", "azure_key", "cipher_pass")
_REPO_CHOICES = {
    "type": ("posix", "cifs", "s3", "gcs", "azure"),
    "retention_full_type": ("count", "time"),
    "retention_archive_type": ("full", "diff", "incr"),
    "cipher_type": ("none", "aes-256-cbc"),
    "s3_uri_style": ("host", "path"),
    "s3_key_type": ("shared", "auto", "web-id"),
    "azure_uri_style": ("host", "path"),
    "azure_key_type": ("shared", "sas"),
    "gcs_key_type": ("service", "token", "auto"),
}
_REPO_REQUIRED = {
    "s3": ("s3_endpoint", "s3_region", "s3_bucket"),
    "gcs": ("gcs_bucket",),
    "azure": ("azure_account", "azure_container"),
}

POOL_MODES = ("transaction", "session", "statement")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
#: The values of ``pg_standby_seed`` (Patroni's names of the methods).
STANDBY_SEEDS = ("basebackup", "pgbackrest")
#: The modes of ``pg_replication_sslmode``.
REPLICATION_SSL_MODES = ("require", "verify-ca", "verify-full")
WATCHDOG_MODES = ("off", "automatic", "required")
PATRONI_TAGS = ("nofailover", "noloadbalance", "clonefrom", "nosync", "replicatefrom")
PG_VERSIONS = range(12, 19)
#: The PostgreSQL major version Debian 12's archive ships.
DEBIAN_PG_VERSION = 15

_PATHS = (
    "pg_data",
    "pg_conf_dir",
    "pg_log_dir",
    "pg_ssl_cert",
    "pg_ssl_key",
    "pg_ssl_ca",
    "patroni_log_dir",
    "patroni_pgpass",
    "pgbouncer_conf_dir",
    "pgbouncer_log_dir",
    "pgbackrest_log_dir",
    "pgbackrest_spool_dir",
)
_OPTIONAL_PATHS = ("pg_bin_dir", "etcd_cacert")
_PORTS = ("pg_port", "patroni_port", "pgbouncer_port")
_ROLE_NAMES = ("pg_dbsu", "pg_replication_username", "pg_monitor_username")
_BOOLS = ("pg_checksum", "pgbouncer_auth_query", "pgbackrest_enabled", "mask_secrets", "patroni_ssl_enabled")
_POOL_SIZES = (
    ("pgbouncer_max_client_conn", 1),
    ("pgbouncer_default_pool_size", 1),
    ("pgbouncer_reserve_pool_size", 0),
    ("pgbouncer_max_db_connections", 0),
)

_ROLE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_$.-]{0,62}\Z")
_PATH = re.compile(r"^/[^\s,;'\"\\]*\Z")
_PARAM = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?\Z")
_LOCALE = re.compile(r"^[A-Za-z0-9_.@-]+\Z")
_ENCODING = re.compile(r"^[A-Za-z0-9_]+\Z")
# a library name, or a path under PostgreSQL's $libdir (Pigsty writes
# '$libdir/passwordcheck_cracklib')
_LIB = re.compile(r"^(\$libdir/)?[A-Za-z0-9_.-]+\Z")
_TAG = re.compile(r"^[a-z_][a-z0-9_]*\Z")


# ---------------------------------------------------------------- settings


def build_settings(host_vars: Mapping[str, Any]) -> Dict[str, Any]:
    """:data:`SETTINGS_DEFAULTS` overlaid with the host's values of the same
    names (an unset or null variable keeps its default). The defaults are
    copied: changing the result never changes :data:`SETTINGS_DEFAULTS`."""
    out = copy.deepcopy(SETTINGS_DEFAULTS)
    for name in SETTINGS_DEFAULTS:
        value = host_vars.get(name)
        if value is not None:
            out[name] = value
    return out


def _effective(settings: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    out = dict(SETTINGS_DEFAULTS)
    for name, value in (settings or {}).items():
        if value is not None:
            out[name] = value
    return out


def _quoted_number(name: str, value: Any, fix: str) -> str:
    """``fix``, plus how to pass a number when ``value`` is one written as
    a string (``-e pg_version=15`` passes the string ``'15'``)."""
    if isinstance(value, str) and value.strip().isdigit():
        return (
            "%s; %r is a string: write it without quotes in the inventory, "
            "or on the command line as JSON (-e '{\"%s\": %s}'), since "
            "-e %s=... always passes a string" % (fix, value, name, value.strip(), name)
        )
    return fix


def _watchdog_mode(value: Any) -> Any:
    # YAML 1.1 reads an unquoted ``off`` as false.
    return "off" if value is False else value


def check_config_settings(
    settings: Mapping[str, Any], *, cluster: Optional[str] = None, host: Optional[str] = None
) -> List[Problem]:
    """Every problem of the settings the config generators read (unset
    names take :data:`SETTINGS_DEFAULTS`); never raises."""
    s = _effective(settings)
    out: List[Problem] = []

    def problem(field, value, what, fix):
        out.append(Problem(cluster, host, field, value, what, fix))

    version = s["pg_version"]
    repo = s["pg_version_repo"]
    if not is_int(version) or version not in PG_VERSIONS:
        problem(
            "pg_version",
            version,
            "is not a supported PostgreSQL major version",
            _quoted_number("pg_version", version, "use a major version such as 15 (Debian 12 ships 15)"),
        )
    elif version != DEBIAN_PG_VERSION and not repo:
        problem(
            "pg_version",
            version,
            "Debian 12 ships PostgreSQL %d only: apt would find no "
            "postgresql-%d and the deployment would stop midway" % (DEBIAN_PG_VERSION, version),
            "set pg_version: %d, or configure an apt repository that "
            "carries postgresql-%d on the nodes (the PostgreSQL "
            "project's, PGDG) and name it in pg_version_repo" % (DEBIAN_PG_VERSION, version),
        )
    if not isinstance(repo, str):
        problem(
            "pg_version_repo",
            repo,
            "is not a string",
            "name the apt repository that carries postgresql-<pg_version> "
            "(e.g. pgdg), or leave it empty for Debian's archive",
        )
    for name in _PORTS:
        value = s[name]
        if not is_int(value) or not 1 <= value <= 65535:
            problem(
                name,
                value,
                "is not a TCP port",
                _quoted_number(name, value, "use a whole number from 1 to 65535, e.g. %s" % SETTINGS_DEFAULTS[name]),
            )
    ports = [s[n] for n in _PORTS]
    if len(set(map(repr, ports))) != len(ports):
        problem(
            "pg_port",
            ports,
            "pg_port, patroni_port and pgbouncer_port must be three different ports",
            "give each component its own port (5432, 8008, 6432)",
        )
    for name in _ROLE_NAMES:
        value = s[name]
        if not isinstance(value, str) or not _ROLE.match(value):
            problem(
                name, value, "is not a valid role name", "use letters, digits and _, e.g. %s" % SETTINGS_DEFAULTS[name]
            )
    for name in _PATHS:
        _check_path(problem, name, s[name])
    for name in _OPTIONAL_PATHS:
        if s[name] is not None:
            _check_path(problem, name, s[name])
    if s["pg_data"] == "/":
        problem("pg_data", s["pg_data"], "is the root directory", "use a dedicated directory such as /pg/data")
    for name in _BOOLS:
        if not isinstance(s[name], bool):
            problem(name, s[name], "is not a boolean", "write true or false without quotes")

    for name in ("pg_replication_password", "patroni_password"):
        value = s[name]
        if not isinstance(value, str) or not value:
            problem(
                name,
                "(hidden)" if value else value,
                "is not a non-empty string",
                "set %s to a secret (e.g. from an ansible-vault file) and quote it" % name,
            )
    user = s["patroni_username"]
    if not isinstance(user, str) or not user or ":" in user or any(c.isspace() for c in user):
        problem(
            "patroni_username",
            user,
            "is not a REST API user name (no ':' or spaces)",
            "use a plain name such as postgres",
        )
    if s["pg_pwd_enc"] not in ("scram-sha-256", "md5"):
        problem("pg_pwd_enc", s["pg_pwd_enc"], "is not a password encryption", "use scram-sha-256 (recommended) or md5")
    if not isinstance(s["pg_locale"], str) or not _LOCALE.match(s["pg_locale"]):
        problem(
            "pg_locale",
            s["pg_locale"],
            "is not a locale name",
            "use a locale the nodes have, e.g. C.UTF-8 or en_US.UTF-8",
        )
    if not isinstance(s["pg_encoding"], str) or not _ENCODING.match(s["pg_encoding"]):
        problem("pg_encoding", s["pg_encoding"], "is not an encoding name", "use UTF8")
    libs = s["pg_libs"]
    if not isinstance(libs, str) or not all(_LIB.match(p.strip()) for p in libs.split(",") if p.strip()):
        problem(
            "pg_libs",
            libs,
            "is not a comma-separated list of library names",
            "write e.g. 'pg_stat_statements, auto_explain' (a name may start with $libdir/)",
        )
    _check_parameters(problem, s["pg_parameters"], s["pg_version"])

    mode = _watchdog_mode(s["patroni_watchdog_mode"])
    if mode not in WATCHDOG_MODES:
        problem(
            "patroni_watchdog_mode",
            s["patroni_watchdog_mode"],
            "is not a Patroni watchdog mode",
            "use one of %s (quote 'off')" % ", ".join(WATCHDOG_MODES),
        )
    _check_tags(problem, s["patroni_tags"])
    if s["etcd_protocol"] not in (None, "http", "https"):
        problem("etcd_protocol", s["etcd_protocol"], "is not an etcd protocol", "use http or https, or leave it unset")
    eu, ep = s["etcd_username"], s["etcd_password"]
    if (eu is None) != (ep is None):
        problem(
            "etcd_username" if eu is None else "etcd_password",
            None,
            "etcd_username and etcd_password go together",
            "set both (etcd authentication) or neither",
        )
    if eu is not None and (not isinstance(eu, str) or not eu):
        problem("etcd_username", eu, "is not a non-empty string", "quote the etcd user name")
    if ep is not None and (not isinstance(ep, str) or not ep):
        problem("etcd_password", "(hidden)", "is not a non-empty string", "quote the etcd password")

    if s["pg_replication_sslmode"] not in (None,) + REPLICATION_SSL_MODES:
        problem(
            "pg_replication_sslmode",
            s["pg_replication_sslmode"],
            "is not a TLS mode replication can use (its HBA rules take TLS connections only)",
            "use one of %s, or leave it unset (verify-full; verify-ca in a standby cluster)"
            % ", ".join(REPLICATION_SSL_MODES),
        )
    if s["pg_standby_seed"] not in STANDBY_SEEDS:
        problem(
            "pg_standby_seed",
            s["pg_standby_seed"],
            "is not a way to seed a standby cluster",
            "use one of %s (pgbackrest restores the source's latest backup from its repository)"
            % ", ".join(STANDBY_SEEDS),
        )
    if s["pgbouncer_poolmode"] not in POOL_MODES:
        problem(
            "pgbouncer_poolmode",
            s["pgbouncer_poolmode"],
            "is not a pgbouncer pool mode",
            "use one of %s" % ", ".join(POOL_MODES),
        )
    if s["pgbouncer_sslmode"] not in SSL_MODES:
        problem(
            "pgbouncer_sslmode",
            s["pgbouncer_sslmode"],
            "is not a pgbouncer TLS mode",
            "use one of %s" % ", ".join(SSL_MODES),
        )
    for name, low in _POOL_SIZES:
        value = s[name]
        if not is_int(value) or value < low:
            problem(
                name,
                value,
                "is not a whole number >= %d" % low,
                "write a number without quotes, e.g. %s" % SETTINGS_DEFAULTS[name],
            )

    pmax = s["pgbackrest_process_max"]
    if pmax != "auto" and (not is_int(pmax) or not 1 <= pmax <= 64):
        problem(
            "pgbackrest_process_max",
            pmax,
            "is neither 'auto' nor a whole number from 1 to 64",
            "use auto (half the node's CPUs, 1 to 8) or a number",
        )
    out.extend(_check_repo(s["pgbackrest_repo"], s["pgbackrest_method"], cluster, host))
    return out


_PATH_EXAMPLES = {"pg_bin_dir": "/usr/lib/postgresql/15/bin", "etcd_cacert": "/etc/etcd/ca.crt"}


def _check_path(problem, name, value):
    if not isinstance(value, str) or not _PATH.match(value) or (len(value) > 1 and value.endswith("/")):
        problem(
            name,
            value,
            "is not an absolute path",
            "write an absolute path without spaces, quotes, commas or "
            "a trailing slash, e.g. %s" % (SETTINGS_DEFAULTS[name] or _PATH_EXAMPLES[name]),
        )


def _check_parameters(problem, params, version=None):
    if not isinstance(params, dict):
        problem("pg_parameters", params, "is not a mapping", "write pg_parameters as {name: value, ...}")
        return
    for name in sorted(params, key=str):
        value = params[name]
        where = "pg_parameters.%s" % name
        if not isinstance(name, str) or not _PARAM.match(name):
            problem(where, value, "is not a PostgreSQL parameter name", "use the lower-case name from postgresql.conf")
        elif not guc.is_known(name) and version == guc.CHECKED_VERSION:
            found = guc.name_problem(None, None, where, name, value, version)
            problem(where, value, found.what, found.fix)
        elif name in _RESERVED_PARAMETERS:
            problem(
                where,
                value,
                "is set by Patroni or by the layout of this collection",
                "remove it (ports and paths have their own variables)",
            )
        elif value is None or isinstance(value, (dict, list, tuple)):
            problem(where, value, "is not a single value", "write a string, number or boolean")
        elif name == "wal_level" and value not in ("replica", "logical"):
            problem(
                where,
                value,
                "is not a wal_level a replicated cluster can run with (Patroni ignores other values)",
                "use replica or logical",
            )
        elif (
            name == "track_commit_timestamp"
            and not isinstance(value, bool)
            and str(value).lower() not in ("on", "off", "true", "false")
        ):
            problem(where, value, "is not a boolean", "write true or false without quotes")
        elif name in _PATRONI_FLOOR:
            text = _param_value(value)
            if not re.match(r"^\d+\Z", text) or int(text) < _PATRONI_FLOOR[name]:
                problem(
                    where,
                    value,
                    "is below %d, which Patroni 3.0 ignores (it runs "
                    "with its own default instead)" % _PATRONI_FLOOR[name],
                    "use a whole number of at least %d" % _PATRONI_FLOOR[name],
                )


def _check_tags(problem, tags):
    if not isinstance(tags, dict):
        problem("patroni_tags", tags, "is not a mapping", "write patroni_tags as {nofailover: true, ...}")
        return
    for name in sorted(tags, key=str):
        value = tags[name]
        where = "patroni_tags.%s" % name
        if not isinstance(name, str) or not _TAG.match(name):
            problem(where, value, "is not a tag name", "use lower-case letters, digits and _")
        elif name == "replicatefrom":
            if not isinstance(value, str) or not value:
                problem(where, value, "is not an instance name", "name a member, e.g. pg-test-2")
        elif name in PATRONI_TAGS:
            if not isinstance(value, bool):
                problem(where, value, "is not a boolean", "write true or false without quotes")
        elif value is None or isinstance(value, (dict, list, tuple)):
            problem(where, value, "is not a single value", "write a string, number or boolean")


def _check_repo(repos, method, cluster, host) -> List[Problem]:
    out: List[Problem] = []

    def problem(field, value, what, fix):
        out.append(Problem(cluster, host, field, value, what, fix))

    if not isinstance(repos, dict):
        problem(
            "pgbackrest_repo",
            repos,
            "is not a mapping",
            "write pgbackrest_repo as {method: {path: ..., ...}}, e.g. {local: {path: /pg/backup, retention_full: 2}}",
        )
        return out
    if not isinstance(method, str) or method not in repos:
        problem(
            "pgbackrest_method",
            method,
            "names no repository of pgbackrest_repo (%s)" % ", ".join(sorted(map(str, repos))),
            "set pgbackrest_method to one of them, or add a %r entry to pgbackrest_repo" % (method,),
        )
        return out
    repo = repos[method]
    base = "pgbackrest_repo.%s" % method
    if not isinstance(repo, dict):
        problem(base, repo, "is not a mapping", "write the repository as {path: ..., retention_full: ...}")
        return out
    for key in sorted(repo, key=str):
        value = repo[key]
        where = "%s.%s" % (base, key)
        shown = "(hidden)" if key in _REPO_SECRETS else value
        if key not in REPO_OPTIONS:
            problem(
                where,
                shown,
                "is not a pgBackRest 2.45 repository option",
                "use the option name without 'repo1-', with '_' for '-', e.g. retention_full",
            )
        elif key in _REPO_BOOLS:
            if repo_flag(value) is None:
                problem(
                    where, value, "is not a boolean", "write true or false without quotes, or pgBackRest's own y or n"
                )
        elif key in _REPO_INTS:
            if not is_int(value) or value < 1 or (key in ("storage_port", "host_port") and value > 65535):
                problem(where, value, "is not a whole number >= 1", "write a number without quotes")
        elif key in _REPO_CHOICES:
            if value not in _REPO_CHOICES[key]:
                problem(where, value, "is not a valid choice", "use one of %s" % ", ".join(_REPO_CHOICES[key]))
        elif not isinstance(value, str) or not value or any(c in value for c in "\n\r"):
            problem(where, shown, "is not a non-empty single-line string", "quote the value")
    rtype = repo.get("type", "posix")
    if "host" in repo:
        host_value = repo["host"]
        if not isinstance(host_value, str) or not _REPO_HOST.match(host_value):
            problem(
                "%s.host" % base,
                host_value,
                "is not the address of a repository host",
                "write the inventory name of the backup host, e.g. 10.10.10.10",
            )
        if rtype != "posix":
            problem(
                "%s.type" % base,
                rtype,
                "a repository on a repository host (host) is a "
                "directory there: pgBackRest's TLS server keeps posix "
                "repositories only here",
                "remove type (posix), or remove host and let every member reach the %s store itself" % rtype,
            )
    path = repo.get("path")
    if path is None:
        problem(
            "%s.path" % base,
            None,
            "the repository needs a path",
            "set path, e.g. /pg/backup (posix) or /pgbackrest (s3)",
        )
    elif isinstance(path, str) and (not _PATH.match(path) or (len(path) > 1 and path.endswith("/"))):
        problem("%s.path" % base, path, "is not an absolute path", "write an absolute path without a trailing slash")
    if "retention_full" not in repo:
        problem(
            "%s.retention_full" % base,
            None,
            "without it pgBackRest never expires full backups and the repository grows until it is full",
            "set retention_full, e.g. 2 (with retention_full_type count) or 14 (time, in days)",
        )
    for key in _REPO_REQUIRED.get(rtype, ()):
        if key not in repo:
            problem("%s.%s" % (base, key), None, "a %s repository needs %s" % (rtype, key), "set %s.%s" % (base, key))
    if rtype == "s3" and repo.get("s3_key_type", "shared") == "shared":
        for key in ("s3_key", "s3_key_secret"):
            if key not in repo:
                problem(
                    "%s.%s" % (base, key),
                    None,
                    "an s3 repository with shared keys needs %s" % key,
                    "set %s.%s, or s3_key_type: auto (IAM role)" % (base, key),
                )
    if rtype == "azure" and "azure_key" not in repo:
        problem("%s.azure_key" % base, None, "an azure repository needs azure_key", "set %s.azure_key" % base)
    if repo.get("cipher_type", "none") == "aes-256-cbc" and not repo.get("cipher_pass"):
        problem(
            "%s.cipher_pass" % base,
            None,
            "an encrypted repository (cipher_type aes-256-cbc) needs a cipher_pass",
            "set %s.cipher_pass to a long secret (from an ansible-vault file)" % base,
        )
    if repo_flag(repo.get("block")) and not repo_flag(repo.get("bundle")):
        problem(
            "%s.block" % base,
            True,
            "block incremental backup needs bundling (pgBackRest refuses repo-block without repo-bundle)",
            "set %s.bundle: true, or remove block" % base,
        )
    return out


def secret_warnings(settings: Mapping[str, Any]) -> List[str]:
    """Repository secrets still at their public default (the sandbox ones
    of :data:`PGBACKREST_REPO_DEFAULTS`)."""
    s = _effective(settings)
    repos = s["pgbackrest_repo"]
    method = s["pgbackrest_method"]
    repo = repos.get(method) if isinstance(repos, dict) else None
    if not isinstance(repo, dict) or not s["pgbackrest_enabled"]:
        return []
    return [
        "pgbackrest_repo.%s.%s is the public default; set a secret "
        "value (e.g. in an ansible-vault file) before backups hold real "
        "data" % (method, key)
        for key, public in sorted(_REPO_SANDBOX_SECRETS.items())
        if repo.get(key) == public
    ]


def _require(settings, cplan, iplan) -> Tuple[Dict[str, Any], str, str]:
    s = _effective(settings)
    cluster = cplan["identity"]["cluster"]
    host = iplan["identity"]["host"]
    found = check_config_settings(s, cluster=cluster, host=host)
    if found:
        raise ModelError(found)
    return s, cluster, host


def _secret(s: Mapping[str, Any], value: Any) -> Any:
    return MASK if s["mask_secrets"] and value is not None else value


def _param_value(value: Any) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def repo_flag(value: Any) -> Optional[bool]:
    """A boolean repository option as written in the inventory (true/false,
    or pgBackRest's y/n) -> True/False; None for anything else."""
    if isinstance(value, bool):
        return value
    return _REPO_FLAG_WORDS.get(value) if isinstance(value, str) else None
