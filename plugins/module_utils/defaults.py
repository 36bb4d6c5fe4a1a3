# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Defaults of the cluster vocabulary (docs/model.md).

This is the single place where the model's defaults live: a variable that an
inventory leaves unset takes the value below. Role defaults that repeat one of
these names are checked against this table by the unit tests, so the two
cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Dict

# Ports of the components on every node.
PORTS = {
    "pg_port": 5432,
    "pgbouncer_port": 6432,
    "patroni_port": 8008,
    "haproxy_exporter_port": 9101,
    "pg_exporter_port": 9630,
    "pgbouncer_exporter_port": 9631,
    "pgbackrest_exporter_port": 9854,
    "node_exporter_port": 9100,
    "vector_port": 9598,
    "etcd_port": 2379,
    "etcd_peer_port": 2380,
    # HTTPS only while a running etcd moves to TLS (etcd_tls.py)
    "etcd_tls_bridge_port": 2382,
}

DEFAULT_SERVICES = (
    {"name": "primary", "port": 5433, "dest": "default", "check": "/primary", "selector": "[]"},
    # /read-only is routed in two tiers by the live roles (services.py): the
    # standbys first, the leader only while none is up. The primary is not
    # named as a backup: after a failover the inventory's primary is a
    # standby like the others.
    {
        "name": "replica",
        "port": 5434,
        "dest": "default",
        "check": "/read-only",
        "selector": "[]",
        "backup": "[? pg_role == `offline` ]",
    },
    {"name": "default", "port": 5436, "dest": "postgres", "check": "/primary", "selector": "[]"},
    {
        "name": "offline",
        "port": 5438,
        "dest": "postgres",
        "check": "/replica",
        "selector": "[? pg_role == `offline` || pg_offline_query ]",
        "backup": "[? pg_role == `replica` && !pg_offline_query]",
    },
)

# Fixed paths that two components must agree on; roles and playbooks read
# them with the pg_path filter ("haproxy_admin_socket" | pigpen.pgsql.pg_path).
PATHS = {
    # Patroni's on_role_change callback (patroni.yml), installed by the
    # pgbackrest role
    "role_change_callback": "/usr/local/bin/pg-role-change",
    # what archive_command runs when pgbackrest archive-push fails
    # (roles/pgbackrest/files/pg_wal_conflict.py), installed by the
    # pgbackrest role
    "wal_conflict": "/usr/local/bin/pg-wal-conflict",
    # HAProxy's admin socket (haproxy.cfg), used by the haproxy_primary
    # module and the playbooks that drain a server
    "haproxy_admin_socket": "/run/haproxy/admin.sock",
    # HAProxy's servers' state, saved before a reload or a stop and loaded
    # by the new process (roles/haproxy/files/haproxy_state.py)
    "haproxy_state_file": "/var/lib/haproxy/server-state",
}

DEFAULT_INTRANET = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

# Default roles (users without login) and system users of every cluster.
DEFAULT_ROLES = (
    {"name": "dbrole_readonly", "login": False, "comment": "role for global read-only access"},
    {"name": "dbrole_offline", "login": False, "comment": "role for restricted read-only access"},
    {
        "name": "dbrole_readwrite",
        "login": False,
        "roles": ["dbrole_readonly"],
        "comment": "role for global read-write access",
    },
    {
        "name": "dbrole_admin",
        "login": False,
        "roles": ["pg_monitor", "dbrole_readwrite"],
        "comment": "role for object creation",
    },
    {"name": "postgres", "superuser": True, "comment": "system superuser"},
    {
        "name": "replicator",
        "replication": True,
        "roles": ["pg_monitor", "dbrole_readonly"],
        "comment": "system replicator",
    },
    {
        "name": "dbuser_dba",
        "superuser": True,
        "roles": ["dbrole_admin"],
        "pgbouncer": True,
        "pool_mode": "session",
        "pool_connlimit": 16,
        "comment": "pgsql admin user",
    },
    {
        "name": "dbuser_monitor",
        "roles": ["pg_monitor", "dbrole_readonly"],
        "pgbouncer": True,
        "parameters": {"log_min_duration_statement": 1000},
        "pool_mode": "session",
        "pool_connlimit": 8,
        "comment": "pgsql monitor user",
    },
)

# Roles that PostgreSQL itself provides (15): users may be granted these.
BUILTIN_ROLES = frozenset(
    (
        "pg_monitor",
        "pg_read_all_settings",
        "pg_read_all_stats",
        "pg_stat_scan_tables",
        "pg_read_server_files",
        "pg_write_server_files",
        "pg_execute_server_program",
        "pg_signal_backend",
        "pg_checkpoint",
        "pg_read_all_data",
        "pg_write_all_data",
        "pg_database_owner",
        "public",
    )
)

# Passwords that exist for the sandbox only. A deployment that still uses one
# of them outside the sandbox is warned loudly.
SANDBOX_PASSWORDS = {
    "pg_replication_password": "DBUser.Replicator",
    "pg_admin_password": "DBUser.DBA",
    "pg_monitor_password": "DBUser.Monitor",
    "patroni_password": "Patroni.API",
    "haproxy_admin_password": "HAProxy.Admin",
    # etcd: the cluster's own etcd user (Patroni, pg-vip) and etcd's root
    "pg_etcd_password": "DCS.Patroni",
    "etcd_root_password": "Etcd.Root",
    # the passphrase of the deployment CA's key (postgres_pki_dir/ca.key)
    "pg_ca_passphrase": "Pigpen.CA",
}

# Everything else the model reads, with its default.
MODEL_DEFAULTS: Dict[str, Any] = {
    **PORTS,
    "pg_version": 15,
    "pg_role": None,
    "pg_seq": None,
    "pg_weight": 100,
    "pg_offline_query": False,
    "pg_upstream": None,
    "pg_delay": None,
    "pg_conf": "oltp",
    "pg_rto": "norm",
    "pg_rpo": 1048576,
    "pg_namespace": "/pg",
    "pg_dbsu": "postgres",
    # HAProxy checks Patroni over HTTPS, verified against the CA at this
    # path on its node (docs/security.md)
    "patroni_ssl_enabled": True,
    "pg_ssl_ca": "/pg/cert/ca.crt",
    "pg_replication_username": "replicator",
    "pg_monitor_username": "dbuser_monitor",
    "pg_admin_username": "dbuser_dba",
    "pg_pwd_enc": "scram-sha-256",
    "pg_shared_buffer_ratio": 0.25,
    "pg_max_conn": "auto",
    "pg_default_services": [dict(s) for s in DEFAULT_SERVICES],
    "pg_services": [],
    "pg_default_service_dest": "pgbouncer",
    "pg_service_provider": "",
    "pg_default_roles": [dict(r) for r in DEFAULT_ROLES],
    "pg_users": [],
    "pg_databases": [],
    "pg_default_hba_rules": None,  # filled from hba.DEFAULT_PG_HBA_RULES
    "pg_hba_rules": [],
    "pgb_default_hba_rules": None,  # filled from hba.DEFAULT_PGB_HBA_RULES
    "pgb_hba_rules": [],
    "pgbouncer_enabled": True,
    "pgbouncer_poolmode": "transaction",
    "pg_vip_enabled": False,
    "pg_vip_address": "127.0.0.1/24",
    # auto: on each member, the interface with an address in the VIP's
    # subnet (Pigsty's default)
    "pg_vip_interface": "auto",
    # cluster DNS (dnsmasq on the infra hosts, module_utils/dns.py): the
    # cluster name + pg_dns_suffix resolves per pg_dns_target
    "pg_dns_suffix": "",
    "pg_dns_target": "auto",
    # etcd authentication (read from the etcd group's members): each
    # PostgreSQL cluster gets an etcd user and role named after it, allowed
    # only below <pg_namespace>/<pg_cluster>/
    "etcd_auth": True,
    # etcd over TLS (read from the etcd group's members, the etcd role's
    # etcd_tls_enabled): Patroni and pg-vip reach it over HTTPS, verified
    # against the deployment's CA (pg_ssl_ca)
    "etcd_tls_enabled": True,
    "pgbackrest_method": "local",
    "pg_safeguard": False,
    # cron entries ("m h dom mon dow command") run as pg_dbsu on every
    # member (pg-backup acts on the leader only)
    "pg_crontab": [],
    # restore drills (drill.py, docs/backup.md): no schedule by default
    "pgbackrest_drill_schedule": None,
    "pgbackrest_drill_dir": "/pg/tmp",
    # unset: the first free port from 15432 up (drill.drill_port)
    "pgbackrest_drill_port": 15432,
    "pgbackrest_drill_target": "latest",
    "pgbackrest_drill_tables": [],
    "pgbackrest_drill_amcheck": True,
    "pgbackrest_drill_timeout": 3600,
    "node_firewall_intranet": list(DEFAULT_INTRANET),
    # limits of the access-layer roles (roles/haproxy, roles/pgbouncer,
    # roles/vip), checked here so a bad value stops the play before any node
    # is touched
    "haproxy_maxconn": 20000,
    "haproxy_limit_nofile": 65536,
    "haproxy_client_timeout": "24h",
    "haproxy_server_timeout": "24h",
    "haproxy_connect_timeout": "3s",
    "pgbouncer_limit_nofile": 65536,
    "vip_interval": 1000,
    "admin_ip": None,
}

# Settings that describe the cluster as a whole: every member must agree on
# them (they normally come from the cluster's group vars).
CLUSTER_WIDE = (
    "pg_version",
    "pg_rto",
    "pg_rpo",
    "pg_namespace",
    "pg_dbsu",
    "pg_replication_username",
    "pg_monitor_username",
    "pg_admin_username",
    "pg_pwd_enc",
    "pg_default_services",
    "pg_services",
    "pg_default_service_dest",
    "pg_service_provider",
    "pg_default_roles",
    "pg_users",
    "pg_databases",
    "pgbouncer_enabled",
    "pg_vip_enabled",
    "pg_vip_address",
    "pgbackrest_method",
    "pg_etcd_password",
    "pg_dns_suffix",
    "pg_dns_target",
    "pgbackrest_drill_schedule",
    "pgbackrest_drill_dir",
    "pgbackrest_drill_port",
    "pgbackrest_drill_target",
    "pgbackrest_drill_tables",
    "pgbackrest_drill_amcheck",
    "pgbackrest_drill_timeout",
    # Patroni 3.0.2 with its REST API over HTTPS cannot ask a member that
    # serves plain HTTP (its client keeps TLS-only connection settings), so
    # a switchover to that member is refused and a failover cannot compare
    # the members: one scheme per cluster
    "patroni_ssl_enabled",
)

#: Operating system accounts of a Debian node and of the deployment's
#: services: none may be the database superuser, and a pg_crontab entry that
#: names one as its user would run as someone other than pg_dbsu.
OS_ACCOUNTS = frozenset(
    (
        "root",
        "daemon",
        "bin",
        "sys",
        "sync",
        "games",
        "man",
        "lp",
        "mail",
        "news",
        "uucp",
        "proxy",
        "www-data",
        "backup",
        "list",
        "irc",
        "gnats",
        "nobody",
        "_apt",
        "messagebus",
        "sshd",
        "systemd-network",
        "systemd-resolve",
        "systemd-timesync",
        "haproxy",
        "etcd",
        "prometheus",
        "vector",
        "_chrony",
    )
)
