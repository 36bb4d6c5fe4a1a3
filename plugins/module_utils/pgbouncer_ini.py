# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""``pgbouncer.ini`` of one instance.

Pure Python; nothing here imports Ansible. :func:`pgbouncer_ini` turns the
model's plans (:func:`plan.cluster_plan`, :func:`plan.instance_plan`) plus a
*settings* mapping (:mod:`settings`) into the file's sections, as data that
a template only has to print (:func:`ini_text.ini_lines` prints the same)::

    pgbouncer_ini(cplan, iplan, settings)    -> [[section, [[key, value]]]]
    tls_files(settings)                      -> [path, ...]

Called by :func:`render.instance_configs`.
"""

from __future__ import annotations

import re
from typing import Any, List, Mapping, Sequence

from ansible_collections.pigpen.pgsql.plugins.module_utils.settings import (
    PG_SOCKET_DIR,
    _require,
)

__all__ = ["pgbouncer_ini", "tls_files"]

_INI_NAME = re.compile(r"^[0-9A-Za-z_.-]+\Z")


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


def pgbouncer_ini(cplan: Mapping[str, Any], iplan: Mapping[str, Any], settings: Mapping[str, Any]) -> List[List[Any]]:
    """``pgbouncer.ini`` of one instance as ``[[section, [[key, value],
    ...]], ...]``: ``databases`` (inventory order), ``users`` (by name),
    ``pgbouncer``."""
    s, _skip, _skip = _require(settings, cplan, iplan)
    pools = cplan["pgbouncer"]
    databases = []
    for db in pools["databases"]:
        words = ["host=%s" % PG_SOCKET_DIR, "port=%d" % s["pg_port"], "dbname=%s" % db["name"]]
        words += _pairs(db, ("pool_mode", "pool_size", "min_pool_size", "reserve_pool", "max_db_connections"))
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
            [
                "auth_query",
                "SELECT rolname, CASE WHEN rolvaliduntil < now() "
                "THEN NULL ELSE rolpassword END FROM pg_authid "
                "WHERE rolname = $1 AND rolcanlogin",
            ],
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
        main += [["client_tls_cert_file", s["pg_ssl_cert"]], ["client_tls_key_file", s["pg_ssl_key"]]]
        if s["pgbouncer_sslmode"] in ("verify-ca", "verify-full"):
            main.append(["client_tls_ca_file", s["pg_ssl_ca"]])
    # Server connections use the unix socket, where pgbouncer never speaks
    # TLS whatever this says: state it plainly.
    main.append(["server_tls_sslmode", "disable"])
    return [["databases", databases], ["users", users], ["pgbouncer", main]]


def tls_files(settings: Mapping[str, Any]) -> List[str]:
    """The files pgbouncer reads for its client TLS, in the order
    ``pgbouncer.ini`` names them: the node's certificate and key, and the
    CA when clients must present a certificate; none with
    ``pgbouncer_sslmode: disable``. pgbouncer reads them again at a reload,
    so the role reloads it when one of them changed (a renewed
    certificate)."""
    mode = settings["pgbouncer_sslmode"]
    if mode == "disable":
        return []
    files = [settings["pg_ssl_cert"], settings["pg_ssl_key"]]
    if mode in ("verify-ca", "verify-full"):
        files.append(settings["pg_ssl_ca"])
    return files
