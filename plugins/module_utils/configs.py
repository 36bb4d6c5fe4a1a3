# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The configuration files of an instance: Patroni, pgbouncer, pgBackRest.

Pure Python; nothing here imports Ansible. Each function turns the model's
plans (:func:`plan.cluster_plan`, :func:`plan.instance_plan`) plus a
*settings* mapping into the content of one file, as data that a template
only has to print::

    settings = build_settings(hostvars[host])      # SETTINGS_DEFAULTS + vars
    patroni_config(cplan, iplan, settings)   -> dict   (to_nice_yaml)
    pgbouncer_ini(cplan, iplan, settings)    -> [[section, [[key, value]]]]
    pgbackrest_conf(cplan, iplan, settings)  -> [[section, [[key, value]]]]
    check_config_settings(settings, cluster=..., host=...) -> [Problem]

Every value is a string, number or boolean; dictionaries keep a fixed,
readable key order and PostgreSQL parameters are sorted, so rendering twice
gives byte-identical files. The generators raise :class:`ModelError` listing
every problem of the settings (see :func:`check_config_settings`).

Design decisions (docs/configs.md has the long form):

* **pg_hba is managed by Patroni.** ``postgresql.pg_hba`` carries every line
  of the instance's computed policy (:func:`hba.hba_lines`, comments and
  inactive rules included), so Patroni writes ``pg_hba.conf`` into its
  ``config_dir`` (``pg_conf_dir``) and reloads PostgreSQL when the list
  changes: an HBA change is a reload, never a restart, and a freshly cloned
  replica gets the file before it first starts. No other writer may touch
  that file on a node. Patroni 3.0.2's ``--validate-config`` insists on
  ``bootstrap.pg_hba``; it gets the active lines only and is ignored by
  Patroni while ``postgresql.pg_hba`` is set.
* **Patroni's superuser has no password.** ``superuser`` is ``pg_dbsu``
  with ``use_unix_socket: true``: Patroni (running as the OS user
  ``pg_dbsu``) connects through the first directory of
  ``unix_socket_directories`` and the default rule ``${dbsu} all local
  ident`` lets it in by peer authentication.
* **pg_rewind uses the replication user.** ``rewind`` connects over TCP to
  the *new leader* (database ``postgres``), where peer authentication
  cannot work; the replication user (with its password) is allowed there by
  the default rule ``${repl} postgres intra ssl``, and Patroni grants it the
  four functions pg_rewind needs when it bootstraps the cluster.
* **Cluster-wide parameters live in the DCS.** Patroni 3.0 takes
  ``max_connections``, ``max_worker_processes``, ``max_wal_senders``,
  ``max_replication_slots``, ``max_prepared_transactions``,
  ``max_locks_per_transaction``, ``track_commit_timestamp``, ``wal_level``,
  ``wal_log_hints``, ``hot_standby`` and ``wal_keep_size`` only from its
  cluster-wide configuration (a local value is dropped), so they go to
  ``bootstrap.dcs.postgresql.parameters`` with the archive settings, and
  never to the local ``parameters``. Patroni silently replaces a value below
  its floor (e.g. ``max_connections`` < 25) with its own default; such a
  value is an error here.
* **Offline instances** (``pg_role: offline``) get ``nofailover`` and
  ``nosync`` but *not* ``noloadbalance``: Patroni answers 503 on
  ``/replica`` and ``/read-only`` for ``noloadbalance`` members, which
  would take them out of the ``offline`` service (checked on ``/replica``)
  and out of the ``replica`` service's fallback. Which service an instance
  serves is decided by the HAProxy selectors. Plain replicas get
  ``clonefrom`` so that new replicas clone from them rather than from the
  primary; a cascading replica (``pg_upstream`` inside the cluster) gets
  ``replicatefrom`` naming its upstream instance.
* **Secrets.** The Patroni file holds the REST API, replication and etcd
  passwords, and pgbackrest.conf the repository key secret and cipher pass
  (pgBackRest reads them from there); both files are written 0600. With
  ``mask_secrets: true`` (dry renders) every secret is replaced by
  :data:`MASK`. pgbouncer's ``auth_file`` (``userlist.txt``) holds password
  hashes and is not rendered here: the pgbouncer role fills it from
  ``pg_shadow`` on the primary.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils import cron, guc
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
    SANDBOX_PASSWORDS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    delay_ms,
    delay_text,
    ip_of,
    is_int,
)

__all__ = [
    "SETTINGS_DEFAULTS", "PGBACKREST_REPO_DEFAULTS", "MASK", "PG_SOCKET_DIR",
    "DCS_PARAMETERS", "build_settings", "check_config_settings",
    "patroni_config", "pgbouncer_ini", "pgbackrest_conf",
    "pgbackrest_repo_host", "pgbackrest_tls_server", "ini_lines",
    "crontab",
    "secret_warnings", "repo_flag", "etcd_password",
]

#: Replaces every secret when ``mask_secrets`` is true.
MASK = "********"

#: Where PostgreSQL puts its socket (Debian's postgresql-common creates it).
PG_SOCKET_DIR = "/var/run/postgresql"

#: Default ``pgbackrest_repo``: one repository definition per
#: ``pgbackrest_method``. Keys are pgBackRest ``repo*`` options without the
#: ``repoN-`` prefix, ``-`` written ``_``. ``block`` (block incremental) is a
#: beta feature of pgBackRest 2.45 (Debian 12): a repository with it gets
#: ``beta=y`` (see :func:`pgbackrest_conf`). The TLS certificate of the
#: object store is checked against the deployment's CA (the postgres role
#: installs it as ``pg_ssl_ca``). The secrets below are public defaults, for
#: the sandbox only.
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
_REPO_SANDBOX_SECRETS = {"s3_key_secret": "S3User.Backup",
                         "cipher_pass": "pgBackRest"}

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
    "pg_bin_dir": None,     # None: /usr/lib/postgresql/<pg_version>/bin
    "pg_log_dir": "/pg/log/postgres",
    "pg_encoding": "UTF8",
    "pg_locale": "C.UTF-8",
    "pg_checksum": True,
    "pg_libs": "pg_stat_statements",
    "pg_parameters": {},
    "pg_ssl_cert": "/pg/cert/server.crt",
    "pg_ssl_key": "/pg/cert/server.key",
    "pg_ssl_ca": "/pg/cert/ca.crt",
    # patroni
    "patroni_username": "postgres",
    "patroni_password": SANDBOX_PASSWORDS["patroni_password"],
    "patroni_log_dir": "/pg/log/patroni",
    "patroni_pgpass": "/pg/tmp/pgpass",
    "patroni_watchdog_mode": "off",
    "patroni_tags": {},
    "etcd_protocol": "http",
    "etcd_cacert": None,
    "etcd_username": None,
    "etcd_password": None,
    "pg_etcd_password": SANDBOX_PASSWORDS["pg_etcd_password"],
    "vip_interval": MODEL_DEFAULTS["vip_interval"],
    # pgbouncer
    "pgbouncer_conf_dir": "/etc/pgbouncer",
    "pgbouncer_log_dir": "/pg/log/pgbouncer",
    "pgbouncer_auth_query": False,
    "pgbouncer_sslmode": "disable",
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

#: Parameters Patroni 3.0 takes only from the cluster-wide (DCS)
#: configuration, plus the archive settings, which must agree on every
#: member. ``listen_addresses``, ``port`` and ``cluster_name`` are derived
#: by Patroni itself.
DCS_PARAMETERS = (
    "max_connections", "max_worker_processes", "max_wal_senders",
    "max_replication_slots", "max_prepared_transactions",
    "max_locks_per_transaction", "track_commit_timestamp", "wal_level",
    "wal_log_hints", "hot_standby", "wal_keep_size", "archive_mode",
    "archive_command",
)

#: Values of DCS parameters when neither the tuning nor pg_parameters give
#: one. ``hot_standby`` and ``wal_log_hints`` are forced on by Patroni.
_DCS_FALLBACK = {
    "hot_standby": "on",
    "max_locks_per_transaction": "64",
    "max_prepared_transactions": "0",
    "track_commit_timestamp": "off",
    "wal_log_hints": "on",
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
_RESERVED_PARAMETERS = ("listen_addresses", "port", "cluster_name",
                        "hba_file", "ident_file", "data_directory",
                        "config_file", "unix_socket_directories",
                        "hot_standby", "wal_log_hints")

#: pgBackRest 2.45 repository options (``pgbackrest help backup``), without
#: the ``repoN-`` prefix, in the order they are written.
REPO_OPTIONS = (
    "type", "path", "host", "host_port",
    "s3_endpoint", "s3_region", "s3_bucket", "s3_uri_style", "s3_key_type",
    "s3_key", "s3_key_secret", "s3_token", "s3_role", "s3_kms_key_id",
    "gcs_bucket", "gcs_endpoint", "gcs_key_type", "gcs_key",
    "azure_account", "azure_container", "azure_endpoint", "azure_key_type",
    "azure_key", "azure_uri_style",
    "storage_host", "storage_port", "storage_ca_file", "storage_ca_path",
    "storage_verify_tls", "storage_upload_chunk_size",
    "hardlink", "bundle", "bundle_size", "bundle_limit", "block",
    "cipher_type", "cipher_pass",
    "retention_full_type", "retention_full", "retention_diff",
    "retention_archive_type", "retention_archive", "retention_history",
)
_REPO_BOOLS = ("storage_verify_tls", "hardlink", "bundle", "block")
#: A repository host as ``pgbackrest_repo.<method>.host`` names it: an
#: inventory host (address or name), nothing a config line could break.
_REPO_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_-]{0,252}\Z")
#: pgBackRest's TLS server port (``tls-server-port``'s default).
PGBACKREST_TLS_PORT = 8432
#: Where the pgbackrest role puts each node's pgBackRest TLS certificate,
#: key and the deployment's CA (pgbackrest_repo with a host).
PGBACKREST_TLS_DIR = "/etc/pgbackrest/tls"
#: Options of the repository host itself, which the members' pgbackrest.conf
#: does not carry (the repository host applies them).
_REPO_HOST_SIDE = ("path", "hardlink", "bundle", "bundle_size",
                   "bundle_limit", "block", "cipher_type", "cipher_pass",
                   "retention_full_type", "retention_full", "retention_diff",
                   "retention_archive_type", "retention_archive",
                   "retention_history")
#: pgBackRest's own spelling of a boolean option, as Pigsty inventories
#: write it (``block: y``).
_REPO_FLAG_WORDS = {"y": True, "n": False}
#: Placeholder Pigsty replaces by the cluster name in repository values
#: (e.g. ``cipher_pass: 'pgBR.${pg_cluster}'``: one key per cluster).
CLUSTER_PLACEHOLDER = "${pg_cluster}"
_REPO_INTS = ("storage_port", "host_port", "retention_full", "retention_diff",
              "retention_archive", "retention_history")
_REPO_SECRETS = ("s3_key", "s3_key_secret", "s3_token", "azure_key",
                 "cipher_pass")
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
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca",
             "verify-full")
WATCHDOG_MODES = ("off", "automatic", "required")
PATRONI_TAGS = ("nofailover", "noloadbalance", "clonefrom", "nosync",
                "replicatefrom")
PG_VERSIONS = range(12, 19)
#: The PostgreSQL major version Debian 12's archive ships.
DEBIAN_PG_VERSION = 15

_PATHS = ("pg_data", "pg_conf_dir", "pg_log_dir", "pg_ssl_cert",
          "pg_ssl_key", "pg_ssl_ca", "patroni_log_dir", "patroni_pgpass",
          "pgbouncer_conf_dir", "pgbouncer_log_dir", "pgbackrest_log_dir",
          "pgbackrest_spool_dir")
_OPTIONAL_PATHS = ("pg_bin_dir", "etcd_cacert")
_PORTS = ("pg_port", "patroni_port", "pgbouncer_port")
_ROLE_NAMES = ("pg_dbsu", "pg_replication_username", "pg_monitor_username")
_BOOLS = ("pg_checksum", "pgbouncer_auth_query", "pgbackrest_enabled",
          "mask_secrets")
_POOL_SIZES = (("pgbouncer_max_client_conn", 1),
               ("pgbouncer_default_pool_size", 1),
               ("pgbouncer_reserve_pool_size", 0),
               ("pgbouncer_max_db_connections", 0))

_ROLE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_$.-]{0,62}\Z")
_PATH = re.compile(r"^/[^\s,;'\"\\]*\Z")
_PARAM = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?\Z")
_LOCALE = re.compile(r"^[A-Za-z0-9_.@-]+\Z")
_ENCODING = re.compile(r"^[A-Za-z0-9_]+\Z")
# a library name, or a path under PostgreSQL's $libdir (Pigsty writes
# '$libdir/passwordcheck_cracklib')
_LIB = re.compile(r"^(\$libdir/)?[A-Za-z0-9_.-]+\Z")
_TAG = re.compile(r"^[a-z_][a-z0-9_]*\Z")
_INI_NAME = re.compile(r"^[0-9A-Za-z_.-]+\Z")


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
        return ("%s; %r is a string: write it without quotes in the inventory, "
                "or on the command line as JSON (-e '{\"%s\": %s}'), since "
                "-e %s=... always passes a string"
                % (fix, value, name, value.strip(), name))
    return fix


def _watchdog_mode(value: Any) -> Any:
    # YAML 1.1 reads an unquoted ``off`` as false.
    return "off" if value is False else value


def check_config_settings(settings: Mapping[str, Any], *,
                          cluster: Optional[str] = None,
                          host: Optional[str] = None) -> List[Problem]:
    """Every problem of the settings the config generators read (unset
    names take :data:`SETTINGS_DEFAULTS`); never raises."""
    s = _effective(settings)
    out: List[Problem] = []

    def problem(field, value, what, fix):
        out.append(Problem(cluster, host, field, value, what, fix))

    version = s["pg_version"]
    repo = s["pg_version_repo"]
    if not is_int(version) or version not in PG_VERSIONS:
        problem("pg_version", version,
                "is not a supported PostgreSQL major version",
                _quoted_number("pg_version", version, "use a major version such as 15 "
                               "(Debian 12 ships 15)"))
    elif version != DEBIAN_PG_VERSION and not repo:
        problem("pg_version", version,
                "Debian 12 ships PostgreSQL %d only: apt would find no "
                "postgresql-%d and the deployment would stop midway"
                % (DEBIAN_PG_VERSION, version),
                "set pg_version: %d, or configure an apt repository that "
                "carries postgresql-%d on the nodes (the PostgreSQL "
                "project's, PGDG) and name it in pg_version_repo"
                % (DEBIAN_PG_VERSION, version))
    if not isinstance(repo, str):
        problem("pg_version_repo", repo, "is not a string",
                "name the apt repository that carries postgresql-<pg_version> "
                "(e.g. pgdg), or leave it empty for Debian's archive")
    for name in _PORTS:
        value = s[name]
        if not is_int(value) or not 1 <= value <= 65535:
            problem(name, value, "is not a TCP port",
                    _quoted_number(name, value, "use a whole number from 1 to 65535, "
                                   "e.g. %s" % SETTINGS_DEFAULTS[name]))
    ports = [s[n] for n in _PORTS]
    if len(set(map(repr, ports))) != len(ports):
        problem("pg_port", ports, "pg_port, patroni_port and pgbouncer_port "
                "must be three different ports",
                "give each component its own port (5432, 8008, 6432)")
    for name in _ROLE_NAMES:
        value = s[name]
        if not isinstance(value, str) or not _ROLE.match(value):
            problem(name, value, "is not a valid role name",
                    "use letters, digits and _, e.g. %s"
                    % SETTINGS_DEFAULTS[name])
    for name in _PATHS:
        _check_path(problem, name, s[name])
    for name in _OPTIONAL_PATHS:
        if s[name] is not None:
            _check_path(problem, name, s[name])
    if s["pg_data"] == "/":
        problem("pg_data", s["pg_data"], "is the root directory",
                "use a dedicated directory such as /pg/data")
    for name in _BOOLS:
        if not isinstance(s[name], bool):
            problem(name, s[name], "is not a boolean",
                    "write true or false without quotes")

    for name in ("pg_replication_password", "patroni_password"):
        value = s[name]
        if not isinstance(value, str) or not value:
            problem(name, "(hidden)" if value else value,
                    "is not a non-empty string",
                    "set %s to a secret (e.g. from an ansible-vault file) "
                    "and quote it" % name)
    user = s["patroni_username"]
    if not isinstance(user, str) or not user or ":" in user or \
            any(c.isspace() for c in user):
        problem("patroni_username", user,
                "is not a REST API user name (no ':' or spaces)",
                "use a plain name such as postgres")
    if s["pg_pwd_enc"] not in ("scram-sha-256", "md5"):
        problem("pg_pwd_enc", s["pg_pwd_enc"],
                "is not a password encryption",
                "use scram-sha-256 (recommended) or md5")
    if not isinstance(s["pg_locale"], str) or \
            not _LOCALE.match(s["pg_locale"]):
        problem("pg_locale", s["pg_locale"], "is not a locale name",
                "use a locale the nodes have, e.g. C.UTF-8 or en_US.UTF-8")
    if not isinstance(s["pg_encoding"], str) or \
            not _ENCODING.match(s["pg_encoding"]):
        problem("pg_encoding", s["pg_encoding"], "is not an encoding name",
                "use UTF8")
    libs = s["pg_libs"]
    if not isinstance(libs, str) or not all(
            _LIB.match(p.strip()) for p in libs.split(",") if p.strip()):
        problem("pg_libs", libs,
                "is not a comma-separated list of library names",
                "write e.g. 'pg_stat_statements, auto_explain' (a name may "
                "start with $libdir/)")
    _check_parameters(problem, s["pg_parameters"], s["pg_version"])

    mode = _watchdog_mode(s["patroni_watchdog_mode"])
    if mode not in WATCHDOG_MODES:
        problem("patroni_watchdog_mode", s["patroni_watchdog_mode"],
                "is not a Patroni watchdog mode",
                "use one of %s (quote 'off')" % ", ".join(WATCHDOG_MODES))
    _check_tags(problem, s["patroni_tags"])
    if s["etcd_protocol"] not in ("http", "https"):
        problem("etcd_protocol", s["etcd_protocol"],
                "is not an etcd protocol", "use http or https")
    eu, ep = s["etcd_username"], s["etcd_password"]
    if (eu is None) != (ep is None):
        problem("etcd_username" if eu is None else "etcd_password", None,
                "etcd_username and etcd_password go together",
                "set both (etcd authentication) or neither")
    if eu is not None and (not isinstance(eu, str) or not eu):
        problem("etcd_username", eu, "is not a non-empty string",
                "quote the etcd user name")
    if ep is not None and (not isinstance(ep, str) or not ep):
        problem("etcd_password", "(hidden)", "is not a non-empty string",
                "quote the etcd password")

    if s["pgbouncer_poolmode"] not in POOL_MODES:
        problem("pgbouncer_poolmode", s["pgbouncer_poolmode"],
                "is not a pgbouncer pool mode",
                "use one of %s" % ", ".join(POOL_MODES))
    if s["pgbouncer_sslmode"] not in SSL_MODES:
        problem("pgbouncer_sslmode", s["pgbouncer_sslmode"],
                "is not a pgbouncer TLS mode",
                "use one of %s" % ", ".join(SSL_MODES))
    for name, low in _POOL_SIZES:
        value = s[name]
        if not is_int(value) or value < low:
            problem(name, value, "is not a whole number >= %d" % low,
                    "write a number without quotes, e.g. %s"
                    % SETTINGS_DEFAULTS[name])

    pmax = s["pgbackrest_process_max"]
    if pmax != "auto" and (not is_int(pmax) or not 1 <= pmax <= 64):
        problem("pgbackrest_process_max", pmax,
                "is neither 'auto' nor a whole number from 1 to 64",
                "use auto (half the node's CPUs, 1 to 8) or a number")
    out.extend(_check_repo(s["pgbackrest_repo"], s["pgbackrest_method"],
                           cluster, host))
    return out


_PATH_EXAMPLES = {"pg_bin_dir": "/usr/lib/postgresql/15/bin",
                  "etcd_cacert": "/etc/etcd/ca.crt"}


def _check_path(problem, name, value):
    if not isinstance(value, str) or not _PATH.match(value) or \
            (len(value) > 1 and value.endswith("/")):
        problem(name, value, "is not an absolute path",
                "write an absolute path without spaces, quotes, commas or "
                "a trailing slash, e.g. %s"
                % (SETTINGS_DEFAULTS[name] or _PATH_EXAMPLES[name]))


def _check_parameters(problem, params, version=None):
    if not isinstance(params, dict):
        problem("pg_parameters", params, "is not a mapping",
                "write pg_parameters as {name: value, ...}")
        return
    for name in sorted(params, key=str):
        value = params[name]
        where = "pg_parameters.%s" % name
        if not isinstance(name, str) or not _PARAM.match(name):
            problem(where, value, "is not a PostgreSQL parameter name",
                    "use the lower-case name from postgresql.conf")
        elif not guc.is_known(name) and version == guc.CHECKED_VERSION:
            found = guc.name_problem(None, None, where, name, value, version)
            problem(where, value, found.what, found.fix)
        elif name in _RESERVED_PARAMETERS:
            problem(where, value, "is set by Patroni or by the layout of "
                    "this collection",
                    "remove it (ports and paths have their own variables)")
        elif value is None or isinstance(value, (dict, list, tuple)):
            problem(where, value, "is not a single value",
                    "write a string, number or boolean")
        elif name == "wal_level" and value not in ("replica", "logical"):
            problem(where, value, "is not a wal_level a replicated cluster "
                    "can run with (Patroni ignores other values)",
                    "use replica or logical")
        elif name == "track_commit_timestamp" and not isinstance(value, bool) \
                and str(value).lower() not in ("on", "off", "true", "false"):
            problem(where, value, "is not a boolean",
                    "write true or false without quotes")
        elif name in _PATRONI_FLOOR:
            text = _param_value(value)
            if not re.match(r"^\d+\Z", text) or \
                    int(text) < _PATRONI_FLOOR[name]:
                problem(where, value,
                        "is below %d, which Patroni 3.0 ignores (it runs "
                        "with its own default instead)"
                        % _PATRONI_FLOOR[name],
                        "use a whole number of at least %d"
                        % _PATRONI_FLOOR[name])


def _check_tags(problem, tags):
    if not isinstance(tags, dict):
        problem("patroni_tags", tags, "is not a mapping",
                "write patroni_tags as {nofailover: true, ...}")
        return
    for name in sorted(tags, key=str):
        value = tags[name]
        where = "patroni_tags.%s" % name
        if not isinstance(name, str) or not _TAG.match(name):
            problem(where, value, "is not a tag name",
                    "use lower-case letters, digits and _")
        elif name == "replicatefrom":
            if not isinstance(value, str) or not value:
                problem(where, value, "is not an instance name",
                        "name a member, e.g. pg-test-2")
        elif name in PATRONI_TAGS:
            if not isinstance(value, bool):
                problem(where, value, "is not a boolean",
                        "write true or false without quotes")
        elif value is None or isinstance(value, (dict, list, tuple)):
            problem(where, value, "is not a single value",
                    "write a string, number or boolean")


def _check_repo(repos, method, cluster, host) -> List[Problem]:
    out: List[Problem] = []

    def problem(field, value, what, fix):
        out.append(Problem(cluster, host, field, value, what, fix))

    if not isinstance(repos, dict):
        problem("pgbackrest_repo", repos, "is not a mapping",
                "write pgbackrest_repo as {method: {path: ..., ...}}, "
                "e.g. {local: {path: /pg/backup, retention_full: 2}}")
        return out
    if not isinstance(method, str) or method not in repos:
        problem("pgbackrest_method", method,
                "names no repository of pgbackrest_repo (%s)"
                % ", ".join(sorted(map(str, repos))),
                "set pgbackrest_method to one of them, or add a %r entry "
                "to pgbackrest_repo" % (method,))
        return out
    repo = repos[method]
    base = "pgbackrest_repo.%s" % method
    if not isinstance(repo, dict):
        problem(base, repo, "is not a mapping",
                "write the repository as {path: ..., retention_full: ...}")
        return out
    for key in sorted(repo, key=str):
        value = repo[key]
        where = "%s.%s" % (base, key)
        shown = "(hidden)" if key in _REPO_SECRETS else value
        if key not in REPO_OPTIONS:
            problem(where, shown, "is not a pgBackRest 2.45 repository "
                    "option", "use the option name without 'repo1-', with "
                    "'_' for '-', e.g. retention_full")
        elif key in _REPO_BOOLS:
            if repo_flag(value) is None:
                problem(where, value, "is not a boolean",
                        "write true or false without quotes, or "
                        "pgBackRest's own y or n")
        elif key in _REPO_INTS:
            if not is_int(value) or value < 1 or (
                    key in ("storage_port", "host_port") and value > 65535):
                problem(where, value, "is not a whole number >= 1",
                        "write a number without quotes")
        elif key in _REPO_CHOICES:
            if value not in _REPO_CHOICES[key]:
                problem(where, value, "is not a valid choice",
                        "use one of %s" % ", ".join(_REPO_CHOICES[key]))
        elif not isinstance(value, str) or not value or \
                any(c in value for c in "\n\r"):
            problem(where, shown, "is not a non-empty single-line string",
                    "quote the value")
    rtype = repo.get("type", "posix")
    if "host" in repo:
        host_value = repo["host"]
        if not isinstance(host_value, str) or not _REPO_HOST.match(host_value):
            problem("%s.host" % base, host_value,
                    "is not the address of a repository host",
                    "write the inventory name of the backup host, e.g. "
                    "10.10.10.10")
        if rtype != "posix":
            problem("%s.type" % base, rtype,
                    "a repository on a repository host (host) is a "
                    "directory there: pgBackRest's TLS server keeps posix "
                    "repositories only here",
                    "remove type (posix), or remove host and let every "
                    "member reach the %s store itself" % rtype)
    path = repo.get("path")
    if path is None:
        problem("%s.path" % base, None, "the repository needs a path",
                "set path, e.g. /pg/backup (posix) or /pgbackrest (s3)")
    elif isinstance(path, str) and (not _PATH.match(path) or
                                    (len(path) > 1 and path.endswith("/"))):
        problem("%s.path" % base, path, "is not an absolute path",
                "write an absolute path without a trailing slash")
    if "retention_full" not in repo:
        problem("%s.retention_full" % base, None,
                "without it pgBackRest never expires full backups and the "
                "repository grows until it is full",
                "set retention_full, e.g. 2 (with retention_full_type "
                "count) or 14 (time, in days)")
    for key in _REPO_REQUIRED.get(rtype, ()):
        if key not in repo:
            problem("%s.%s" % (base, key), None,
                    "a %s repository needs %s" % (rtype, key),
                    "set %s.%s" % (base, key))
    if rtype == "s3" and repo.get("s3_key_type", "shared") == "shared":
        for key in ("s3_key", "s3_key_secret"):
            if key not in repo:
                problem("%s.%s" % (base, key), None,
                        "an s3 repository with shared keys needs %s" % key,
                        "set %s.%s, or s3_key_type: auto (IAM role)"
                        % (base, key))
    if rtype == "azure" and "azure_key" not in repo:
        problem("%s.azure_key" % base, None,
                "an azure repository needs azure_key",
                "set %s.azure_key" % base)
    if repo.get("cipher_type", "none") == "aes-256-cbc" and \
            not repo.get("cipher_pass"):
        problem("%s.cipher_pass" % base, None,
                "an encrypted repository (cipher_type aes-256-cbc) needs a "
                "cipher_pass", "set %s.cipher_pass to a long secret (from "
                "an ansible-vault file)" % base)
    if repo_flag(repo.get("block")) and not repo_flag(repo.get("bundle")):
        problem("%s.block" % base, True,
                "block incremental backup needs bundling (pgBackRest "
                "refuses repo-block without repo-bundle)",
                "set %s.bundle: true, or remove block" % base)
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
    return ["pgbackrest_repo.%s.%s is the public default; set a secret "
            "value (e.g. in an ansible-vault file) before backups hold real "
            "data" % (method, key)
            for key, public in sorted(_REPO_SANDBOX_SECRETS.items())
            if repo.get(key) == public]


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


# ---------------------------------------------------------------- patroni

def _members_by_ip(cplan) -> Dict[str, Dict[str, Any]]:
    return {m["ip"]: m for m in cplan["members"] if m.get("ip")}


def _delay(text: Any) -> str:
    """A ``pg_delay`` in the units Patroni 3.0 parses (it knows ms, s, min,
    h and d): the largest unit that expresses it exactly. Only what
    PostgreSQL takes as ``recovery_min_apply_delay`` (:func:`model.delay_ms`,
    which validation applies) is converted."""
    ms = delay_ms(text)
    if ms is None:
        raise ValueError("pg_delay %r is not a recovery_min_apply_delay "
                         "PostgreSQL accepts" % (text,))
    return delay_text(ms)


def _cluster_parameters(cplan, iplan, s, cluster, host) -> Dict[str, str]:
    """The DCS parameters: the cluster's agreed tuning values (the
    cluster plan's ``tuning`` when it has one, else this instance's),
    fallbacks, archive settings, then pg_parameters."""
    tuned = dict(iplan.get("tuning") or {})
    tuned.update(cplan.get("tuning") or {})
    out = {name: _param_value(tuned[name]) for name in DCS_PARAMETERS
           if name in tuned}
    for name, value in _DCS_FALLBACK.items():
        out.setdefault(name, value)
    out["archive_mode"] = "on"
    if s["pgbackrest_enabled"]:
        out["archive_command"] = "pgbackrest --stanza=%s archive-push %%p" % (
            cluster)
    else:
        # Archiving stays on (changing archive_mode needs a restart), and
        # accepts every segment until pgBackRest is enabled by a reload.
        out["archive_command"] = "/bin/true"
    for name, value in s["pg_parameters"].items():
        if name in DCS_PARAMETERS:
            out[name] = _param_value(value)
    for name, floor in _PATRONI_FLOOR.items():
        current = out.get(name)
        if current is not None and (not current.isdigit() or int(current) < floor):
            raise ModelError([Problem(
                cluster, host, name, current,
                "is below %d: Patroni 3.0 ignores such a value and runs "
                "PostgreSQL with its own default, outside the memory budget "
                "of the tuning" % floor,
                "give the node more memory, or set pg_max_conn (or "
                "pg_parameters.%s) to at least %d" % (name, floor))])
    return dict(sorted(out.items()))


def _local_parameters(iplan, s) -> Dict[str, str]:
    """Instance parameters: always-on settings, the node's tuning, then
    pg_parameters; never the DCS ones (Patroni would drop them)."""
    out = {
        "unix_socket_directories": PG_SOCKET_DIR,
        "password_encryption": s["pg_pwd_enc"],
        "shared_preload_libraries": ", ".join(
            p.strip() for p in s["pg_libs"].split(",") if p.strip()),
        "ssl": "on",
        "ssl_cert_file": s["pg_ssl_cert"],
        "ssl_key_file": s["pg_ssl_key"],
        "logging_collector": "on",
        "log_destination": "csvlog",
        "log_directory": s["pg_log_dir"],
        "log_filename": "postgresql-%a.log",
        "log_truncate_on_rotation": "on",
        "log_rotation_age": "1d",
        "log_rotation_size": "0",
    }
    for name, value in (iplan.get("tuning") or {}).items():
        out[name] = _param_value(value)
    for name, value in s["pg_parameters"].items():
        out[name] = _param_value(value)
    return {k: v for k, v in sorted(out.items()) if k not in DCS_PARAMETERS}


def _tags(cplan, iplan, s) -> Dict[str, Any]:
    me = iplan["identity"]
    role = me["role"]
    leader = bool(me.get("leader"))
    offline = role == "offline"
    tags: Dict[str, Any] = {
        "nofailover": offline,
        "noloadbalance": False,
        "clonefrom": not leader and not offline,
        "nosync": offline,
    }
    upstream = ip_of(me.get("upstream"))
    if upstream and not leader:
        member = _members_by_ip(cplan).get(upstream)
        if member is not None:
            tags["replicatefrom"] = member["instance"]
    tags.update(s["patroni_tags"])
    return tags


def _standby_cluster(cplan, s) -> Optional[Dict[str, Any]]:
    ident = cplan["identity"]
    if not ident.get("standby"):
        return None
    leader = next((m for m in cplan["members"]
                   if m["host"] == ident.get("leader_host")), None)
    if leader is None or not leader.get("upstream"):
        return None
    block: Dict[str, Any] = {
        "host": ip_of(leader["upstream"]) or leader["upstream"],
        "port": s["pg_port"],
        "create_replica_methods": ["basebackup"],
    }
    if leader.get("delay") is not None:
        block["recovery_min_apply_delay"] = _delay(leader["delay"])
    return block


#: Pigsty links /usr/pgsql to the installed version and names this path in
#: its defaults (inventories that list every default carry it).
PIGSTY_BIN_DIR = "/usr/pgsql/bin"


def bin_dir(value: Any, version: int) -> str:
    """PostgreSQL's binaries: ``pg_bin_dir``, or Debian's directory of the
    version when it is unset or Pigsty's /usr/pgsql/bin link (which Debian
    does not have)."""
    if value in (None, "", PIGSTY_BIN_DIR):
        return "/usr/lib/postgresql/%d/bin" % version
    return value


# Patroni's on_role_change callback, installed by the pgbackrest role
# (roles/pgbackrest/vars/main.yml: __pgbackrest_role_change_script).
ROLE_CHANGE_CALLBACK = "/usr/local/bin/pg-role-change"


def patroni_config(cplan: Mapping[str, Any], iplan: Mapping[str, Any],
                   settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The Patroni 3.0 configuration (``patroni.yml``) of one instance."""
    s, cluster, host = _require(settings, cplan, iplan)
    me = iplan["identity"]
    ip = me["ip"]
    endpoints = list(cplan["etcd"]["endpoints"])
    if not endpoints:
        raise ModelError([Problem(
            cluster, host, "groups.etcd", [], "Patroni needs etcd and the "
            "inventory gives no etcd member with an address",
            "add a group 'etcd' with 1, 3 or 5 hosts")])
    ha = cplan["ha"]["patroni"]
    hba = [str(line) for line in iplan["pg_hba"]]
    active = [line for line in hba if line.strip()
              and not line.lstrip().startswith("#")]
    version = s["pg_version"]
    repl = {"username": s["pg_replication_username"],
            "password": _secret(s, s["pg_replication_password"])}

    etcd: Dict[str, Any] = {"hosts": endpoints,
                            "protocol": s["etcd_protocol"]}
    if s["etcd_cacert"] is not None:
        etcd["cacert"] = s["etcd_cacert"]
    if s["etcd_username"] is not None:
        etcd["username"] = s["etcd_username"]
        etcd["password"] = _secret(s, s["etcd_password"])
    elif cplan["etcd"].get("auth"):
        # the cluster's own etcd user (created by the etcd and patroni roles)
        etcd["username"] = cplan["etcd"]["username"]
        etcd["password"] = _secret(s, etcd_password(s["pg_etcd_password"],
                                                    cluster))

    dcs: Dict[str, Any] = {
        key: ha[key] for key in (
            "ttl", "loop_wait", "retry_timeout", "primary_start_timeout",
            "maximum_lag_on_failover", "synchronous_mode",
            "synchronous_mode_strict", "failsafe_mode")}
    dcs["postgresql"] = {
        "use_pg_rewind": ha["use_pg_rewind"],
        "use_slots": ha["use_slots"],
        "parameters": _cluster_parameters(cplan, iplan, s, cluster, host),
    }
    standby = _standby_cluster(cplan, s)
    if standby is not None:
        dcs["standby_cluster"] = standby

    initdb: List[Any] = []
    if s["pg_checksum"]:
        initdb.append("data-checksums")
    initdb += [{"encoding": s["pg_encoding"]}, {"locale": s["pg_locale"]}]

    postgresql: Dict[str, Any] = {
        "listen": "0.0.0.0:%d" % s["pg_port"],
        "connect_address": "%s:%d" % (ip, s["pg_port"]),
        "data_dir": s["pg_data"],
        "bin_dir": bin_dir(s["pg_bin_dir"], version),
        "config_dir": s["pg_conf_dir"],
        "pgpass": s["patroni_pgpass"],
        "use_unix_socket": True,
        "authentication": {
            "superuser": {"username": s["pg_dbsu"]},
            "replication": dict(repl),
            "rewind": dict(repl),
        },
        "parameters": _local_parameters(iplan, s),
    }
    if s["pgbackrest_enabled"]:
        postgresql["recovery_conf"] = {
            "restore_command": 'pgbackrest --stanza=%s archive-get %%f "%%p"'
                               % cluster}
        # A member that becomes the leader makes sure its repository has
        # the stanza (a local repository of a former replica has none), so
        # that archive_command works at once after a failover.
        postgresql["callbacks"] = {"on_role_change": ROLE_CHANGE_CALLBACK}
    postgresql["pg_hba"] = hba
    postgresql["create_replica_methods"] = ["basebackup"]
    postgresql["basebackup"] = {"checkpoint": "fast"}

    return {
        "scope": cluster,
        "namespace": cplan["etcd"]["namespace"],
        "name": me["instance"],
        "restapi": {
            "listen": "0.0.0.0:%d" % s["patroni_port"],
            "connect_address": "%s:%d" % (ip, s["patroni_port"]),
            "authentication": {
                "username": s["patroni_username"],
                "password": _secret(s, s["patroni_password"]),
            },
        },
        "etcd3": etcd,
        "bootstrap": {
            "dcs": dcs,
            "initdb": initdb,
            "pg_hba": active or hba,
        },
        "postgresql": postgresql,
        "watchdog": {
            "mode": _watchdog_mode(s["patroni_watchdog_mode"]),
            "safety_margin": ha.get("safety_margin", 5),
        },
        "tags": _tags(cplan, iplan, s),
        "log": {
            "dir": s["patroni_log_dir"],
            "level": "INFO",
            "file_num": 10,
            "file_size": 67108864,
        },
    }


# ---------------------------------------------------------------- pgbouncer

def _ini_name(name: str) -> str:
    """A database or user name as a pgbouncer.ini key (quoted when it has
    characters outside [0-9A-Za-z_.-])."""
    if _INI_NAME.match(name):
        return name
    return '"%s"' % name.replace('"', '""')


_LIMITS = ("max_db_connections", "max_user_connections")


def _pairs(item: Mapping[str, Any], keys: Sequence[str]) -> List[str]:
    """``key=value`` words for the keys that are set. The inventory's -1
    ("no limit") becomes pgbouncer's 0 for connection limits; for pool
    sizes it means the global default, i.e. the key is left out."""
    out = []
    for key in keys:
        value = item.get(key)
        if value is None:
            continue
        if value == -1:
            if key not in _LIMITS:
                continue
            value = 0
        out.append("%s=%s" % (key, value))
    return out


def pgbouncer_ini(cplan: Mapping[str, Any], iplan: Mapping[str, Any],
                  settings: Mapping[str, Any]) -> List[List[Any]]:
    """``pgbouncer.ini`` of one instance as ``[[section, [[key, value],
    ...]], ...]``: ``databases`` (inventory order), ``users`` (by name),
    ``pgbouncer``."""
    s, _, _ = _require(settings, cplan, iplan)
    pools = cplan["pgbouncer"]
    databases = []
    for db in pools["databases"]:
        words = ["host=%s" % PG_SOCKET_DIR, "port=%d" % s["pg_port"],
                 "dbname=%s" % db["name"]]
        words += _pairs(db, ("pool_mode", "pool_size", "min_pool_size",
                             "reserve_pool", "max_db_connections"))
        databases.append([_ini_name(db["name"]), " ".join(words)])
    users = []
    for user in pools["users"]:
        words = _pairs(user, ("pool_mode", "max_user_connections"))
        if words:
            users.append([_ini_name(user["name"]), " ".join(words)])

    conf_dir = s["pgbouncer_conf_dir"]
    main: List[List[Any]] = [
        ["listen_addr", "0.0.0.0"],
        ["listen_port", str(s["pgbouncer_port"])],
        ["unix_socket_dir", PG_SOCKET_DIR],
        ["logfile", "%s/pgbouncer.log" % s["pgbouncer_log_dir"]],
        ["pidfile", "%s/pgbouncer.pid" % PG_SOCKET_DIR],
        ["auth_type", "hba"],
        ["auth_hba_file", "%s/pgb_hba.conf" % conf_dir],
        ["auth_file", "%s/userlist.txt" % conf_dir],
    ]
    if s["pgbouncer_auth_query"]:
        main += [
            ["auth_user", s["pg_dbsu"]],
            ["auth_query", "SELECT rolname, CASE WHEN rolvaliduntil < now() "
                           "THEN NULL ELSE rolpassword END FROM pg_authid "
                           "WHERE rolname = $1 AND rolcanlogin"],
        ]
    main += [
        ["admin_users", s["pg_dbsu"]],
        ["stats_users", s["pg_monitor_username"]],
        ["pool_mode", s["pgbouncer_poolmode"]],
        ["max_client_conn", str(s["pgbouncer_max_client_conn"])],
        ["default_pool_size", str(s["pgbouncer_default_pool_size"])],
        ["reserve_pool_size", str(s["pgbouncer_reserve_pool_size"])],
        ["max_db_connections", str(s["pgbouncer_max_db_connections"])],
        ["ignore_startup_parameters", "extra_float_digits,options"],
        # After a failed server login (PostgreSQL restarting after a crash,
        # or being promoted) pgbouncer refuses every client for this many
        # seconds; its default of 15 s would outlast the restart itself.
        ["server_login_retry", "1"],
        ["client_tls_sslmode", s["pgbouncer_sslmode"]],
    ]
    if s["pgbouncer_sslmode"] != "disable":
        main += [["client_tls_cert_file", s["pg_ssl_cert"]],
                 ["client_tls_key_file", s["pg_ssl_key"]]]
        if s["pgbouncer_sslmode"] in ("verify-ca", "verify-full"):
            main.append(["client_tls_ca_file", s["pg_ssl_ca"]])
    # Server connections use the unix socket, where pgbouncer never speaks
    # TLS whatever this says: state it plainly.
    main.append(["server_tls_sslmode", "disable"])
    return [["databases", databases], ["users", users], ["pgbouncer", main]]


# ---------------------------------------------------------------- pgbackrest

def repo_flag(value: Any) -> Optional[bool]:
    """A boolean repository option as written in the inventory (true/false,
    or pgBackRest's y/n) -> True/False; None for anything else."""
    if isinstance(value, bool):
        return value
    return _REPO_FLAG_WORDS.get(value) if isinstance(value, str) else None


def _repo_value(key: str, value: Any, cluster: str) -> str:
    """A repository option's value as pgbackrest.conf spells it: booleans
    y/n, and ``${pg_cluster}`` replaced by the cluster name (as Pigsty
    does, so that a repository key derived from the name stays the same)."""
    if key in _REPO_BOOLS:
        return "y" if repo_flag(value) else "n"
    return str(value).replace(CLUSTER_PLACEHOLDER, cluster)


def _process_max(s, iplan) -> Tuple[int, int]:
    """(backup/restore, archive-push) process counts."""
    if s["pgbackrest_process_max"] != "auto":
        n = s["pgbackrest_process_max"]
        return n, min(n, 4)
    cpu = (iplan.get("node") or {}).get("cpu")
    cpu = cpu if is_int(cpu) and cpu > 0 else 2
    return max(1, min(cpu // 2, 8)), max(1, min(cpu // 4, 4))


def pgbackrest_conf(cplan: Mapping[str, Any], iplan: Mapping[str, Any],
                    settings: Mapping[str, Any]) -> List[List[Any]]:
    """``pgbackrest.conf`` of one instance as ``[[section, [[key, value],
    ...]], ...]``: ``global`` (repository ``repo1`` from
    ``pgbackrest_repo[pgbackrest_method]``), ``global:archive-push`` and the
    cluster's stanza."""
    s, cluster, _ = _require(settings, cplan, iplan)
    repo = s["pgbackrest_repo"][s["pgbackrest_method"]]
    remote = "host" in repo
    if remote:
        # the repository host keeps the repository and applies its
        # options; the member reaches it through its TLS server
        tls = _tls_files()
        glob: List[List[Any]] = [
            ["repo1-host", _repo_host(cplan, repo)["address"]],
            ["repo1-host-type", "tls"],
            ["repo1-host-port", str(repo.get("host_port",
                                             PGBACKREST_TLS_PORT))],
            ["repo1-host-ca-file", tls["ca"]],
            ["repo1-host-cert-file", tls["cert"]],
            ["repo1-host-key-file", tls["key"]],
        ]
    else:
        glob = _repo_lines(s, repo, cluster, 1)
    procs, push_procs = _process_max(s, iplan)
    glob += [
        ["compress-type", "zst"],
        ["archive-async", "y"],
        ["spool-path", s["pgbackrest_spool_dir"]],
        ["process-max", str(procs)],
        ["log-path", s["pgbackrest_log_dir"]],
        ["start-fast", "y"],
        ["delta", "y"],
    ]
    stanza = [
        ["pg1-path", s["pg_data"]],
        ["pg1-socket-path", PG_SOCKET_DIR],
        ["pg1-port", str(s["pg_port"])],
        ["pg1-user", s["pg_dbsu"]],
    ]
    out = [["global", glob],
           ["global:archive-push", [["process-max", str(push_procs)]]]]
    if remote:
        # who may ask this member's TLS server for the stanza: the
        # repository host (backups, checks); its address and files are in
        # pgbackrest_tls_server's file, shared with a repository host role
        out.append(["global:server", [
            ["tls-server-auth", "%s=%s" % (
                repo_host_cn(_repo_host(cplan, repo)["name"]), cluster)]]])
    out.append([cluster, stanza])
    return out


def _repo_lines(s: Mapping[str, Any], repo: Mapping[str, Any], cluster: str,
                index: int, only: Sequence[str] = REPO_OPTIONS
                ) -> List[List[Any]]:
    """``repoN-*`` lines of a repository definition (secrets masked when
    asked), with ``beta=y`` when it uses block incremental."""
    out: List[List[Any]] = []
    for key in REPO_OPTIONS:
        if key not in repo or key not in only or key in ("host",
                                                         "host_port"):
            continue
        value = _repo_value(key, repo[key], cluster)
        if key in _REPO_SECRETS:
            value = _secret(s, value)
        out.append(["repo%d-%s" % (index, key.replace("_", "-")), value])
    if repo_flag(repo.get("block")) and "block" in only:
        # pgBackRest 2.45 ships block incremental as a beta feature and
        # refuses repo-block unless beta features are enabled.
        out.append(["beta", "y"])
    return out


def _repo_host(cplan: Mapping[str, Any], repo: Mapping[str, Any]
               ) -> Dict[str, str]:
    """``{name, address}`` of the repository host: the cluster plan's
    (which resolves a group name such as ``infra``), else the host as
    written."""
    found = cplan.get("repo_host")
    if found:
        return dict(found)
    return {"name": repo["host"], "address": repo["host"]}


def _tls_files() -> Dict[str, str]:
    return {"ca": PGBACKREST_TLS_DIR + "/ca.crt",
            "cert": PGBACKREST_TLS_DIR + "/node.crt",
            "key": PGBACKREST_TLS_DIR + "/node.key"}


def repo_host_cn(host: str) -> str:
    """Common name of a repository host's pgBackRest certificate (the
    members' ``tls-server-auth`` names it)."""
    return "pgbackrest-repo-%s" % host


def pgbackrest_tls_server(address: str) -> List[List[Any]]:
    """The TLS server options of one node (``conf.d/pigpen-tls-server.conf``):
    the same file whether the node is a member backing up to a repository
    host, the repository host, or both."""
    tls = _tls_files()
    return [["global:server", [
        ["tls-server-address", address],
        ["tls-server-port", str(PGBACKREST_TLS_PORT)],
        ["tls-server-ca-file", tls["ca"]],
        ["tls-server-cert-file", tls["cert"]],
        ["tls-server-key-file", tls["key"]],
    ]]]


def pgbackrest_repo_host(cplan: Mapping[str, Any], iplan: Mapping[str, Any],
                         settings: Mapping[str, Any]
                         ) -> Optional[Dict[str, Any]]:
    """What the repository host of a cluster needs, or None when the
    cluster's repository has no host: ``host``, the certificate's ``cn``,
    ``stanza_conf`` (``conf.d/pigpen-<cluster>.conf``: the members it may
    serve and reach, and the repository's options, all in the stanza's
    sections so that several clusters share one host) and ``crontab``
    (the cluster's pg-backup entries, which run there)."""
    s, cluster, _ = _require(settings, cplan, iplan)
    repo = s["pgbackrest_repo"][s["pgbackrest_method"]]
    if not s["pgbackrest_enabled"] or "host" not in repo:
        return None
    tls = _tls_files()
    where = _repo_host(cplan, repo)
    auth: List[List[Any]] = []
    stanza: List[List[Any]] = []
    for n, member in enumerate(cplan["members"], 1):
        address = member.get("ip") or member["host"]
        auth.append(["tls-server-auth", "%s=%s" % (member["instance"],
                                                   cluster)])
        stanza += [
            ["pg%d-host" % n, address],
            ["pg%d-host-type" % n, "tls"],
            ["pg%d-host-port" % n, str(PGBACKREST_TLS_PORT)],
            ["pg%d-host-ca-file" % n, tls["ca"]],
            ["pg%d-host-cert-file" % n, tls["cert"]],
            ["pg%d-host-key-file" % n, tls["key"]],
            ["pg%d-path" % n, s["pg_data"]],
            ["pg%d-port" % n, str(s["pg_port"])],
            ["pg%d-socket-path" % n, PG_SOCKET_DIR],
        ]
    procs, _ = _process_max(s, iplan)
    stanza += _repo_lines(s, repo, cluster, 1, _REPO_HOST_SIDE)
    stanza += [
        ["compress-type", "zst"],
        ["process-max", str(procs)],
        ["log-path", s["pgbackrest_log_dir"]],
        ["start-fast", "y"],
    ]
    return {
        "host": where["name"],
        "address": where["address"],
        "cn": repo_host_cn(where["name"]),
        "path": _repo_value("path", repo["path"], cluster),
        "log_dir": s["pgbackrest_log_dir"],
        "stanza_conf": [["global:server", auth], [cluster, stanza]],
        "server": pgbackrest_tls_server(where["address"]),
        "crontab": repo_host_crontab(s, cluster),
    }


#: The backup command of pg_crontab entries on the members
#: (roles/pgbackrest: pgbackrest_backup_script's default) and its
#: counterpart on a repository host, which takes the stanza first.
BACKUP_COMMAND = cron.BACKUP_COMMAND
REPO_BACKUP_COMMAND = "/usr/local/bin/pg-backup-repo"


def _split_cron(line: str) -> Tuple[str, str]:
    """A cron.d line (schedule, user, command) -> (schedule and user,
    command)."""
    # crontab() writes only lines that parse
    schedule, words = cast(Tuple[str, List[str]], cron.parse(line))
    return "%s %s" % (schedule, words[0]), " ".join(words[1:])


def _is_backup(command: str) -> bool:
    return command.split()[0] in (BACKUP_COMMAND, "pg-backup")


def crontab_split(settings: Mapping[str, Any]) -> Dict[str, List[str]]:
    """The cron.d lines of ``pg_crontab`` for the members: all of them,
    or, when the repository is on a repository host (where backups must
    run), all but the pg-backup entries."""
    s = _effective(settings)
    lines = crontab(s)
    repos = s["pgbackrest_repo"]
    repo = repos.get(s["pgbackrest_method"]) if isinstance(repos, dict) \
        else None
    if not (s["pgbackrest_enabled"] and isinstance(repo, dict)
            and "host" in repo):
        return {"members": lines}
    return {"members": [line for line in lines
                        if not _is_backup(_split_cron(line)[1])]}


def repo_host_crontab(settings: Mapping[str, Any], cluster: str
                      ) -> List[str]:
    """pg_crontab's pg-backup entries as the repository host runs them:
    ``pg-backup-repo <cluster> [type]``, as root (it switches to the
    repository's user)."""
    out = []
    for line in crontab(settings):
        head, command = _split_cron(line)
        if not _is_backup(command):
            continue
        schedule = head.rsplit(None, 1)[0]
        args = command.split()[1:]
        out.append(" ".join([schedule, "root", REPO_BACKUP_COMMAND, cluster]
                            + args))
    return out


# ---------------------------------------------------------------- ini text

def ini_lines(sections: Sequence[Sequence[Any]], *,
              separator: str = " = ") -> List[str]:
    """The lines of an ini file (no header), sections separated by a blank
    line: what the pgbouncer (``" = "``) and pgBackRest (``"="``) templates
    print."""
    out: List[str] = []
    for section, pairs in sections:
        if out:
            out.append("")
        out.append("[%s]" % section)
        out.extend("%s%s%s" % (k, separator, v) for k, v in pairs)
    return out


# ------------------------------------------------------------------ etcd, VIP

def crontab(settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    """``/etc/cron.d`` lines of ``pg_crontab``, each run as ``pg_dbsu``
    (entries written with or without that user field give the same line:
    :func:`cron.pg_crontab_lines`)."""
    s = _effective(settings)
    return cron.pg_crontab_lines(s["pg_crontab"], s["pg_dbsu"])


def etcd_password(value: Any, cluster: str) -> Any:
    """The password of a cluster's etcd user: ``pg_etcd_password``, or the
    cluster name when it is the empty string (Pigsty's meaning)."""
    return cluster if value == "" else value


def etcd_user(cplan: Mapping[str, Any],
              settings: Optional[Mapping[str, Any]] = None
              ) -> Optional[Dict[str, str]]:
    """The cluster's own etcd user ({name, password, prefix}), which the
    etcd and patroni roles create; None when etcd runs without
    authentication or the inventory names an etcd user of its own
    (``etcd_username``: managed elsewhere)."""
    s = _effective(settings)
    etcd = cplan["etcd"]
    if not etcd.get("auth") or s["etcd_username"] is not None:
        return None
    return {"name": etcd["username"],
            "password": etcd_password(s["pg_etcd_password"],
                                      etcd["username"]),
            "prefix": etcd["prefix"]}


def vip_config(cplan: Mapping[str, Any], iplan: Mapping[str, Any],
               etcd: Mapping[str, Any],
               settings: Optional[Mapping[str, Any]] = None
               ) -> Optional[Dict[str, Any]]:
    """The configuration of pg-vip (roles/vip) on one member; None when the
    cluster has no VIP. ``etcd`` is the ``etcd3`` block of the member's
    Patroni configuration (same endpoints and user). Keys as
    ``roles/vip/files/pg_vip.py`` reads them."""
    s = _effective(settings)
    vip = cplan["vip"]
    if not vip["enabled"]:
        return None
    return {
        "address": vip["ip"],
        "prefix": vip["prefix"],
        "interface": vip["interface"],
        "key": cplan["etcd"]["leader_key"],
        "instance": iplan["identity"]["instance"],
        "endpoints": ["%s://%s" % (etcd["protocol"], h) for h in etcd["hosts"]],
        "username": etcd.get("username", ""),
        "password": etcd.get("password", ""),
        "patroni_url": "http://127.0.0.1:%d" % s["patroni_port"],
        "interval_ms": s["vip_interval"],
    }
