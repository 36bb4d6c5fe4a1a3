# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Dangerous inputs refused before any node is touched (safety.py): each
case changes one thing of a valid inventory and lists every message the
validation prints for it."""

from __future__ import annotations

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import safety, validate
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import snapshot
from inv import build, cluster, pg_meta, pg_test, sandbox

T1, T2, T3 = "10.10.10.11", "10.10.10.12", "10.10.10.13"
OWN = "fix: use a directory of this deployment's own, e.g. "
SYSTEM = (
    "is a system directory, which the roles would chown to the service's user and pgsql-rm.yml or PITR would empty; "
)
PORTS = "fix: give every component of a node its own port (docs/architecture.md lists them)"
VIP_FIX = "fix: give the VIP a free address of the members' subnet that no host and no other cluster uses"
NODES = "nodes 10.10.10.11, 10.10.10.12, 10.10.10.13"


def messages(hostvars, groups):
    return [str(p) for p in validate.problems(model_mod.load(hostvars, groups))]


def one(name, **hvars):
    return cluster(name, {T1: {"pg_seq": 1, "pg_role": "primary", **hvars}})


def with_group_member_without_cluster():
    hostvars, groups = build(pg_test())
    hostvars["10.10.10.14"] = {"inventory_hostname": "10.10.10.14"}
    groups["pg-test"].append("10.10.10.14")
    groups["all"].append("10.10.10.14")
    return hostvars, groups


def with_member_outside_its_group():
    hostvars, groups = build(pg_test())
    groups["pg-test"].remove(T3)
    return hostvars, groups


CASES = [
    # ---------------------------------------------------------------- paths
    (
        "pg_data /etc",
        build(pg_test(pg_data="/etc")),
        ["cluster pg-test: pg_data = '/etc': " + SYSTEM + OWN + "/pg/data"],
    ),
    (
        "pg_data /var",
        build(pg_test(pg_data="/var")),
        ["cluster pg-test: pg_data = '/var': " + SYSTEM + OWN + "/pg/data"],
    ),
    (
        "pg_data on one host",
        build(
            cluster(
                "pg-test",
                {T1: {"pg_seq": 1, "pg_role": "primary", "pg_data": "/srv"}, T2: {"pg_seq": 2, "pg_role": "replica"}},
            )
        ),
        ["cluster pg-test, host 10.10.10.11: pg_data = '/srv': " + SYSTEM + OWN + "/pg/data"],
    ),
    (
        "pg_log_dir in /var/log",
        build(pg_test(pg_log_dir="/var/log/postgresql")),
        [
            "cluster pg-test: pg_log_dir = '/var/log/postgresql': its parent /var/log is a system "
            "directory, which the roles would create and chown to the service's user; " + OWN + "/pg/log/postgres"
        ],
    ),
    (
        "Patroni's sample pgpass",
        build(pg_test(patroni_pgpass="/tmp/pgpass0")),
        [
            "cluster pg-test: patroni_pgpass = '/tmp/pgpass0': is under /tmp, a pseudo, volatile or "
            "world-writable directory where nothing of a deployment may live; " + OWN + "/pg/tmp/pgpass"
        ],
    ),
    (
        "pg_data is the base directory",
        build(pg_test(pg_data="/pg")),
        [
            "cluster pg-test: pg_data = '/pg': holds pgbackrest_repo (/pg/backup), which pgsql-rm.yml "
            "and PITR would empty with the data; fix: use a directory of its own below the base "
            "directory, e.g. /pg/data",
            "cluster pg-test: pg_data = '/pg': holds postgres_base_dir (/pg), which pgsql-rm.yml and "
            "PITR would empty with the data; fix: use a directory of its own below the base "
            "directory, e.g. /pg/data",
        ],
    ),
    (
        "pg_data read-only for the service",
        build(pg_test(pg_data="/usr/local/pgdata")),
        [
            "cluster pg-test: pg_data = '/usr/local/pgdata': is under /usr, which systemd keeps "
            "read-only for the services (ProtectSystem=full, docs/security.md); " + OWN + "/pg/data"
        ],
    ),
    (
        "certificate in /etc/ssl",
        build(pg_test(pg_ssl_cert="/etc/ssl/server.crt")),
        [
            "cluster pg-test: pg_ssl_cert = '/etc/ssl/server.crt': its parent /etc/ssl is a system "
            "directory, which the roles would create and chown to the service's user; " + OWN + "/pg/cert/server.crt"
        ],
    ),
    (
        "dot-dot",
        build(pg_test(pg_data="/pg/../etc")),
        [
            "cluster pg-test: pg_data = '/pg/../etc': holds '.', '..' or '//': the directory the "
            "roles would change is not the one written; " + OWN + "/pg/data"
        ],
    ),
    (
        "etcd data in /var/lib",
        build(pg_test(), common={"etcd_data_dir": "/var/lib"}),
        [
            "cluster etcd, host 10.10.10.10: etcd_data_dir = '/var/lib': "
            + SYSTEM
            + "fix: use a directory of its own, e.g. /var/lib/etcd/data"
        ],
    ),
    (
        "backup repository /var",
        build(pg_test(pgbackrest_repo={"local": {"path": "/var", "retention_full": 2}})),
        ["cluster pg-test: pgbackrest_repo.local.path = '/var': " + SYSTEM + OWN + "/pg/backup"],
    ),
    # ------------------------------------------------------------------ SQL
    (
        "database parameter key",
        build(pg_test(pg_databases=[{"name": "app", "parameters": {'x" = 1; DROP TABLE t; --': 1}}])),
        [
            "cluster pg-test: pg_databases[0](app).parameters = 'x\" = 1; DROP TABLE t; --': is not a "
            "parameter name (it is written into ALTER ... SET as an identifier); fix: use the "
            "parameter's name as in postgresql.conf, e.g. search_path or "
            "auto_explain.log_min_duration"
        ],
    ),
    (
        "user parameter key",
        build(pg_test(pg_users=[{"name": "app", "parameters": {'search_path"; DROP ROLE x; --': "a"}}])),
        [
            "cluster pg-test: pg_users[0](app).parameters = 'search_path\"; DROP ROLE x; --': is not a "
            "parameter name (it is written into ALTER ... SET as an identifier); fix: use the "
            "parameter's name as in postgresql.conf, e.g. search_path or "
            "auto_explain.log_min_duration"
        ],
    ),
    (
        "extension schema",
        build(
            pg_test(
                pg_databases=[
                    {"name": "app", "extensions": [{"name": "postgis", "schema": 'public"; DROP TABLE t; --'}]}
                ]
            )
        ),
        [
            "cluster pg-test: pg_databases[0](app).extensions[0].schema = 'public\"; DROP TABLE t; --': "
            "is not an extension schema (it is written into CREATE EXTENSION as text); fix: write "
            "e.g. schema: public"
        ],
    ),
    (
        "template and tablespace",
        build(
            pg_test(pg_databases=[{"name": "app", "template": 'template1" OWNER x; --', "tablespace": "fast space"}])
        ),
        [
            "cluster pg-test: pg_databases[0](app).tablespace = 'fast space': is not a tablespace name "
            "(letters, digits, _ and -); fix: name an existing tablespace, e.g. pg_default",
            "cluster pg-test: pg_databases[0](app).template = 'template1\" OWNER x; --': is not a "
            "template name (letters, digits, _ and -); fix: name an existing template, e.g. "
            "template1",
        ],
    ),
    # ------------------------------------------------------- system objects
    (
        "drop the postgres database",
        build(pg_test(pg_databases=[{"name": "postgres", "state": "absent"}])),
        [
            "cluster pg-test: pg_databases[0](postgres).state = 'absent': would drop the postgres "
            "database, which Patroni, pgbouncer, the exporters and pg_rewind connect to; fix: remove "
            "this entry"
        ],
    ),
    (
        "drop the replicator",
        build(pg_test(pg_users=[{"name": "replicator", "state": "absent"}])),
        [
            "cluster pg-test: pg_users[0](replicator).state = 'absent': would drop replicator "
            "(pg_replication_username), which the cluster needs; fix: remove this entry"
        ],
    ),
    (
        "drop the admin and dbsu, lock out the monitor",
        build(
            pg_test(
                pg_users=[
                    {"name": "dbuser_dba", "state": "absent"},
                    {"name": "dbuser_monitor", "login": False},
                    {"name": "postgres", "state": "absent"},
                ]
            )
        ),
        [
            "cluster pg-test: pg_users[0](dbuser_dba).state = 'absent': would drop dbuser_dba "
            "(pg_admin_username), which the cluster needs; fix: remove this entry",
            "cluster pg-test: pg_users[1](dbuser_monitor).login = False: would stop dbuser_monitor "
            "(pg_monitor_username) from logging in, which the cluster needs; fix: remove login: "
            "false from this entry",
            "cluster pg-test: pg_users[2](postgres).state = 'absent': would drop postgres (pg_dbsu), "
            "which the cluster needs; fix: remove this entry",
        ],
    ),
    (
        "pg_dbsu root",
        build(pg_test(pg_dbsu="root")),
        [
            "cluster pg-test: pg_dbsu = 'root': is an operating system account: PostgreSQL, Patroni "
            "and pgbouncer would run as it (PostgreSQL refuses to run as root); fix: keep pg_dbsu: "
            "postgres (the user Debian's packages create)"
        ],
    ),
    (
        "reserved pg_ prefix",
        build(pg_test(pg_users=[{"name": "pg_app"}], pg_replication_username="pg_repl")),
        [
            "cluster pg-test: pg_replication_username = 'pg_repl': starts with pg_, a prefix "
            "PostgreSQL reserves for its own roles; fix: use another name, e.g. replicator",
            "cluster pg-test: pg_users[0](pg_app).name = 'pg_app': starts with pg_, a prefix "
            "PostgreSQL reserves for its own roles (CREATE ROLE refuses it); fix: rename the user, "
            "e.g. app",
        ],
    ),
    # -------------------------------------------------------- cluster names
    (
        "cluster named root",
        build(one("root")),
        [
            "cluster root: pg_cluster = 'root': is a reserved name: etcd's root user, and each "
            "cluster gets an etcd user of its name; fix: rename the cluster, e.g. pg-root"
        ],
    ),
    (
        "cluster named infra",
        build(one("infra"), infra=("10.10.10.10",)),
        [
            "cluster infra: pg_cluster = 'infra': is a reserved name: it is the name of an inventory "
            "group the playbooks read; fix: rename the cluster, e.g. pg-infra",
            "cluster infra, host 10.10.10.10: pg_cluster = (unset): the host is in group infra but "
            "has no pg_cluster, so it is not a member and would be silently left out; fix: set "
            "pg_cluster: infra in the group's vars, or move the host out of group infra",
        ],
    ),
    (
        "upper-case cluster name",
        build(one("Pg-Test")),
        [
            "cluster Pg-Test: pg_cluster = 'Pg-Test': holds upper-case letters: it becomes the "
            "members' host names, which the node role writes in lower case, and DNS names do not "
            "tell cases apart; fix: write the cluster name in lower case, e.g. pg-test"
        ],
    ),
    # --------------------------------------------------------------- groups
    (
        "group member without pg_cluster",
        with_group_member_without_cluster(),
        [
            "cluster pg-test, host 10.10.10.14: pg_cluster = (unset): the host is in group pg-test "
            "but has no pg_cluster, so it is not a member and would be silently left out; fix: set "
            "pg_cluster: pg-test in the group's vars, or move the host out of group pg-test"
        ],
    ),
    (
        "member outside its group",
        with_member_outside_its_group(),
        [
            "cluster pg-test, host 10.10.10.13: groups.pg-test = ['10.10.10.11', '10.10.10.12']: the "
            "member is not in group pg-test, which the playbooks limit to (-l pg-test); fix: add the "
            "host to group pg-test"
        ],
    ),
    # ----------------------------------------------------------------- VIPs
    (
        "VIP on the infra node",
        build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.10/24")),
        ["cluster pg-test: pg_vip_address = '10.10.10.10/24': is the address of host 10.10.10.10; " + VIP_FIX],
    ),
    (
        "two clusters, one VIP",
        build(
            pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24"),
            cluster(
                "pg-b",
                {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary"}},
                pg_vip_enabled=True,
                pg_vip_address="10.10.10.3/24",
            ),
        ),
        [
            "cluster pg-b: pg_vip_address = '10.10.10.3/24': is also the VIP of cluster pg-test; " + VIP_FIX,
            "cluster pg-test: pg_vip_address = '10.10.10.3/24': is also the VIP of cluster pg-b; " + VIP_FIX,
        ],
    ),
    # ---------------------------------------------------------------- ports
    (
        "pg_port on the node exporter's",
        build(pg_test(pg_port=9100)),
        [
            "cluster pg-test: pg_port = 9100: pg_port and node_exporter_port both listen on port "
            "9100 of " + NODES + "; " + PORTS
        ],
    ),
    (
        "a service on sshd's port",
        build(pg_test(pg_services=[{"name": "ssh", "port": 22}])),
        [
            "cluster pg-test: pg_services = 22: ansible_port (ssh) and service pg-test-ssh both "
            "listen on port 22 of " + NODES + "; " + PORTS
        ],
    ),
    (
        "pgbouncer on etcd's port",
        build(pg_meta(pgbouncer_port=2379)),
        [
            "cluster pg-meta, host 10.10.10.10: pgbouncer_port = 2379: pgbouncer_port and etcd_port "
            "both listen on port 2379 of node 10.10.10.10; " + PORTS
        ],
    ),
    (
        "postgres on Prometheus' port",
        build(pg_meta(pg_port=9090)),
        [
            "cluster pg-meta, host 10.10.10.10: pg_port = 9090: pg_port and exporters_prometheus_port "
            "(Prometheus) both listen on port 9090 of node 10.10.10.10; " + PORTS
        ],
    ),
    (
        "postgres on Alertmanager's port",
        build(pg_meta(pg_port=9093)),
        [
            "cluster pg-meta, host 10.10.10.10: pg_port = 9093: pg_port and exporters_alertmanager_port "
            "(Alertmanager) both listen on port 9093 of node 10.10.10.10; " + PORTS
        ],
    ),
    (
        "pgbouncer on the webhook recorder's port",
        build(pg_meta(pgbouncer_port=9095), common={"exporters_alert_recorder": True}),
        [
            "cluster pg-meta, host 10.10.10.10: pgbouncer_port = 9095: pgbouncer_port and "
            "exporters_alert_recorder_port (webhook recorder) both listen on port 9095 of node "
            "10.10.10.10; " + PORTS
        ],
    ),
    (
        "postgres on VictoriaMetrics' port",
        build(pg_meta(pg_port=8428), common={"infra_metrics": "victoriametrics"}),
        [
            "cluster pg-meta, host 10.10.10.10: pg_port = 8428: pg_port and "
            "exporters_victoriametrics_port (VictoriaMetrics) both listen on port 8428 of node "
            "10.10.10.10; " + PORTS
        ],
    ),
    (
        "pgbouncer on vmalert's port",
        build(pg_meta(pgbouncer_port=8880), common={"infra_metrics": "victoriametrics"}),
        [
            "cluster pg-meta, host 10.10.10.10: pgbouncer_port = 8880: pgbouncer_port and "
            "exporters_vmalert_port (vmalert) both listen on port 8880 of node 10.10.10.10; " + PORTS
        ],
    ),
    # ------------------------------------------------------- metrics store
    # (an unknown store: the exporters role's argument_specs, test_validation)
    (
        "a retention that breaks the ARGS line",
        build(pg_test(), common={"exporters_victoriametrics_retention": '15d" -x="'}),
        [
            "inventory: exporters_victoriametrics_retention = '15d\" -x=\"': is not a retention "
            "VictoriaMetrics takes (on 10.10.10.10, 10.10.10.11, 10.10.10.12 and 1 more); it goes "
            "into the ARGS line of /etc/default/victoria-metrics; fix: write a whole number with h, "
            "d, w or y (hours, days, weeks, years), such as 15d or 1y"
        ],
    ),
    (
        "two metrics stores",
        build(pg_test(infra_metrics="victoriametrics")),
        [
            "inventory: infra_metrics = ['prometheus', 'victoriametrics']: differs between hosts (prometheus "
            "on 10.10.10.10; victoriametrics on 10.10.10.11, 10.10.10.12, 10.10.10.13); fix: set "
            "it once, in the inventory's all.vars"
        ],
    ),
    # ------------------------------------------------------------ passwords
    (
        "replication password in pgpass",
        build(pg_test(pg_replication_password="a:b\\c")),
        [
            "cluster pg-test: pg_replication_password = '(hidden)': holds ':', '\\\\', which breaks "
            "the pgpass file Patroni writes (host:port:db:user:password); fix: use a password "
            "without ':' '\\\\'"
        ],
    ),
    (
        "newline in a password",
        build(pg_test(pg_monitor_password="abc\ndef")),
        [
            "cluster pg-test: pg_monitor_password = '(hidden)': holds a line break or another "
            "control character, which splits the line of the files it is written into (Patroni's "
            "configuration and pgpass, the exporters' environment files); fix: use printable "
            "characters only"
        ],
    ),
    (
        "HAProxy's stats auth line",
        build(pg_test(haproxy_admin_password="a b#c", haproxy_admin_username="ad:min")),
        [
            "cluster pg-test: haproxy_admin_password = '(hidden)': holds ' ', '#', which breaks "
            "haproxy.cfg's 'stats auth user:password' line; fix: use a password without ' ' '\\t' "
            "'#' \"'\" '\"' '\\\\'",
            "cluster pg-test: haproxy_admin_username = 'ad:min': is not a user name haproxy.cfg's "
            "'stats auth user:password' line can hold; fix: use letters, digits, - and _",
        ],
    ),
]


@pytest.mark.parametrize("name, inventory, expected", CASES, ids=[c[0] for c in CASES])
def test_refused(name, inventory, expected):
    assert messages(*inventory) == expected, name


@pytest.mark.parametrize(
    "name, inventory",
    [
        ("the sandbox", sandbox()),
        (
            "Debian's own layout",
            build(pg_test(pg_data="/var/lib/postgresql/15/main", pg_log_dir="/var/lib/postgresql/15/log")),
        ),
        (
            "another base",
            build(
                pg_test(pg_data="/data/pg/data", postgres_base_dir="/data/pg", pg_ssl_cert="/data/pg/cert/server.crt")
            ),
        ),
        ("configuration in /etc", build(pg_test(pgbouncer_conf_dir="/etc/pgbouncer", patroni_conf_dir="/etc/patroni"))),
        (
            "parameters and schemas",
            build(
                pg_test(
                    pg_users=[
                        {
                            "name": "app",
                            "parameters": {"search_path": "app, public", "auto_explain.log_min_duration": "1s"},
                        }
                    ],
                    pg_databases=[
                        {
                            "name": "app",
                            "owner": "app",
                            "template": "template0",
                            "parameters": {"work_mem": "64MB"},
                            "extensions": [{"name": "postgis", "schema": "gis"}, "uuid-ossp"],
                        }
                    ],
                )
            ),
        ),
        (
            "system users kept as they are",
            build(
                pg_test(
                    pg_users=[
                        {"name": "dbuser_monitor", "password": "Mon.Pw.1", "connlimit": 10},
                        {"name": "app", "state": "absent"},
                    ],
                    pg_databases=[{"name": "old", "state": "absent"}],
                )
            ),
        ),
        ("own ports", build(pg_test(pg_port=15432, pgbouncer_port=16432, patroni_port=18008))),
        (
            "cluster defined host by host, no group of its name",
            ({**build(pg_test())[0]}, {k: v for k, v in build(pg_test())[1].items() if k != "pg-test"}),
        ),
    ],
)
def test_accepted(name, inventory):
    assert messages(*inventory) == [], name


def test_other_clusters_vip_seen_under_limit():
    """Validation limited to one cluster still sees the VIP of another."""
    hostvars, groups = build(
        pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24"),
        cluster(
            "pg-b",
            {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary"}},
            pg_vip_enabled=True,
            pg_vip_address="10.10.10.3/24",
        ),
    )
    snap = snapshot(hostvars, groups, ["10.10.10.21"])
    inv = model_mod.load(snap["hostvars"], snap["groups"], snap["clusters"])
    assert list(inv.clusters) == ["pg-b"]
    assert [str(p) for p in safety.vip_problems(inv)] == [
        "cluster pg-b: pg_vip_address = '10.10.10.3/24': is also the VIP of cluster pg-test; " + VIP_FIX
    ]


# ------------------------------------------------------- sandbox passwords


def sandbox_refusals(hostvars, groups):
    return [str(p) for p in safety.sandbox_password_problems(model_mod.load(hostvars, groups))]


def refusal(var, clusters, public):
    return (
        "cluster %s: %s = '(hidden)': is %s, which everyone can read in this collection's "
        "sources; fix: set %s to a secret of your own (e.g. in an ansible-vault file); only "
        "for a throwaway test bed, set pigpen_sandbox: true in the inventory instead"
        % (
            clusters,
            var,
            "unset or the public sandbox default %r" % public
            if public
            else "the public default of the object store repository",
            var,
        )
    )


OWN_SECRETS = {
    "pg_replication_password": "R.own.1",
    "pg_admin_password": "A.own.1",
    "pg_monitor_password": "M.own.1",
    "patroni_password": "P.own.1",
    "haproxy_admin_password": "H.own.1",
    "pg_etcd_password": "E.own.1",
    "etcd_root_password": "Root.own.1",
    "pg_ca_passphrase": "CA.own.1",
}


def test_sandbox_passwords_refused_outside_the_sandbox():
    hostvars, groups = build(pg_meta(), pg_test(pg_admin_password="Own.Secret.1"))
    assert sandbox_refusals(hostvars, groups) == [
        refusal("etcd_root_password", "pg-meta, pg-test, etcd", "Etcd.Root"),
        refusal("haproxy_admin_password", "pg-meta, pg-test", "HAProxy.Admin"),
        refusal("patroni_password", "pg-meta, pg-test", "Patroni.API"),
        refusal("pg_admin_password", "pg-meta", "DBUser.DBA"),
        refusal("pg_ca_passphrase", "pg-meta, pg-test", "Pigpen.CA"),
        refusal("pg_etcd_password", "pg-meta, pg-test", "DCS.Patroni"),
        refusal("pg_monitor_password", "pg-meta, pg-test", "DBUser.Monitor"),
        refusal("pg_replication_password", "pg-meta, pg-test", "DBUser.Replicator"),
    ]


def test_public_repository_secrets_refused():
    hostvars, groups = build(pg_test(pgbackrest_method="minio"), common=OWN_SECRETS)
    assert sandbox_refusals(hostvars, groups) == [
        refusal("pgbackrest_repo.minio.cipher_pass", "pg-test", None),
        refusal("pgbackrest_repo.minio.s3_key_secret", "pg-test", None),
    ]


def test_own_secrets_or_the_switch_are_accepted():
    assert sandbox_refusals(*build(pg_test(), common=OWN_SECRETS)) == []
    assert sandbox_refusals(*sandbox()) == []
    # without etcd authentication, the etcd passwords are not used
    no_auth = dict(OWN_SECRETS, etcd_auth=False)
    del no_auth["pg_etcd_password"], no_auth["etcd_root_password"]
    assert sandbox_refusals(*build(pg_test(), common=no_auth)) == []


def test_empty_etcd_password_is_a_warning():
    inv = model_mod.load(*build(pg_test(), common=dict(OWN_SECRETS, pg_etcd_password="")))
    assert safety.sandbox_password_problems(inv) == []
    assert safety.empty_etcd_password_warnings(inv) == [
        "pg_etcd_password is empty in cluster(s) pg-test: as in Pigsty, each cluster's etcd user "
        "gets the cluster name as its password, which anyone can guess; set a secret value "
        "(e.g. in an ansible-vault file)"
    ]
