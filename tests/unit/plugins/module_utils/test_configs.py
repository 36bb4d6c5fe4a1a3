# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Tests of the configuration files of plugins/module_utils (settings.py,
patroni_conf.py, pgbouncer_ini.py, pgbackrest_conf.py, etcd_vip.py,
ini_text.py): the Patroni, pgbouncer and pgBackRest files of the sandbox,
hand-checked; the settings checks; the templates rendered through Ansible's
own templar; and properties (determinism, Patroni's timing rule) over
generated clusters."""

from __future__ import annotations

import copy
import glob
import os

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    etcd_vip,
    ini_text,
    patroni_conf,
    pgbackrest_conf,
    pgbouncer_ini,
    plan,
    settings as settings_mod,
    validate,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
)
from inv import build, cluster

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir, os.pardir))


# ---------------------------------------------------------------- fixtures


def pg_meta(**cvars):
    return cluster(
        "pg-meta",
        {"10.10.10.10": {"pg_seq": 1, "pg_role": "primary"}},
        pg_conf="tiny",
        pg_users=[
            {"name": "dbuser_meta", "password": "DBUser.Meta", "pgbouncer": True, "roles": ["dbrole_admin"]},
            {"name": "dbuser_view", "password": "DBUser.Viewer", "pgbouncer": True, "roles": ["dbrole_readonly"]},
        ],
        pg_databases=[
            {
                "name": "meta",
                "owner": "dbuser_meta",
                "schemas": ["pigsty"],
                "extensions": [{"name": "pg_stat_statements"}],
            }
        ],
        **cvars,
    )


def pg_test(hosts=None, **cvars):
    hosts = hosts or {
        "10.10.10.11": {"pg_seq": 1, "pg_role": "primary"},
        "10.10.10.12": {"pg_seq": 2, "pg_role": "replica"},
        "10.10.10.13": {"pg_seq": 3, "pg_role": "replica", "pg_offline_query": True},
    }
    base = {
        "pg_conf": "tiny",
        "pg_vip_enabled": True,
        "pg_vip_address": "10.10.10.3/24",
        "pg_vip_interface": "eth0",
        "pg_users": [{"name": "test", "password": "test", "pgbouncer": True, "roles": ["dbrole_admin"]}],
        "pg_databases": [{"name": "test", "owner": "test"}],
    }
    base.update(cvars)
    return cluster("pg-test", hosts, **base)


def sandbox(*extra, meta=None, test=None):
    """The sandbox of inventory/sandbox.yml: 10.10.10.10 is infra, etcd and
    pg-meta's primary; pg-test is .11 primary, .12 replica, .13 replica
    with offline queries; admin_ip 10.10.10.10."""
    return build(meta or pg_meta(), test or pg_test(), *extra, common={"pigpen_sandbox": True})


def files(inventory, host, **overrides):
    """(patroni dict, pgbouncer sections, pgbackrest sections, settings) of
    one host; ``overrides`` are settings laid over the host's vars."""
    hostvars, groups = inventory
    inv = validate.require(model_mod.load(hostvars, groups))
    cplan, iplan = plans(inv, host)
    s = settings_mod.build_settings(hostvars[host])
    s.update(overrides)
    return (
        patroni_conf.patroni_config(cplan, iplan, s),
        pgbouncer_ini.pgbouncer_ini(cplan, iplan, s),
        pgbackrest_conf.pgbackrest_conf(cplan, iplan, s),
        s,
    )


def plans(inv, host):
    name = inv.cluster_of(host).name
    return plan.cluster_plan(inv, name), plan.instance_plan(inv, host)


def section(sections, name):
    found = [pairs for sec, pairs in sections if sec == name]
    assert len(found) == 1, name
    return found[0]


# ---------------------------------------------------------------- patroni


def test_patroni_identity_restapi_etcd():
    p, _, _, _ = files(sandbox(), "10.10.10.11")
    assert list(p) == [
        "scope",
        "namespace",
        "name",
        "restapi",
        "etcd3",
        "bootstrap",
        "postgresql",
        "watchdog",
        "tags",
        "log",
        "ctl",
    ]
    assert p["scope"] == "pg-test"
    assert p["namespace"] == "/pg"
    assert p["name"] == "pg-test-1"
    # HTTPS with the node certificate (it names 10.10.10.11); patronictl
    # verifies it against the CA
    assert p["restapi"] == {
        "listen": "0.0.0.0:8008",
        "connect_address": "10.10.10.11:8008",
        "authentication": {"username": "postgres", "password": "Patroni.API"},
        "certfile": "/pg/cert/server.crt",
        "keyfile": "/pg/cert/server.key",
    }
    assert p["ctl"] == {"cacert": "/pg/cert/ca.crt"}
    # etcd_auth (default true): the cluster's own etcd user; over HTTPS
    # (the etcd group's etcd_tls_enabled, default true), verified against
    # the deployment's CA
    assert p["etcd3"] == {
        "hosts": ["10.10.10.10:2379"],
        "protocol": "https",
        "cacert": "/pg/cert/ca.crt",
        "username": "pg-test",
        "password": "DCS.Patroni",
    }
    assert p["watchdog"] == {"mode": "off", "safety_margin": 5}
    assert p["log"]["dir"] == "/pg/log/patroni"

    meta, _, _, _ = files(sandbox(), "10.10.10.10")
    assert (meta["scope"], meta["name"]) == ("pg-meta", "pg-meta-1")
    assert meta["postgresql"]["connect_address"] == "10.10.10.10:5432"

    # patroni_ssl_enabled: false keeps Pigsty's plain HTTP
    plain, _, _, _ = files(sandbox(), "10.10.10.11", patroni_ssl_enabled=False)
    assert "certfile" not in plain["restapi"] and "ctl" not in plain


def test_patroni_three_etcd_members_and_auth():
    hv, groups = build(pg_test(), etcd=("10.10.10.10", "10.10.10.21", "10.10.10.22"))
    inv = validate.require(model_mod.load(hv, groups))
    cplan, iplan = plans(inv, "10.10.10.12")
    s = settings_mod.build_settings(hv["10.10.10.12"])
    s.update(
        etcd_username="pg-test", etcd_password="Etcd.Secret", etcd_protocol="https", etcd_cacert="/etc/etcd/ca.crt"
    )
    p = patroni_conf.patroni_config(cplan, iplan, s)
    assert p["etcd3"] == {
        "hosts": ["10.10.10.10:2379", "10.10.10.21:2379", "10.10.10.22:2379"],
        "protocol": "https",
        "cacert": "/etc/etcd/ca.crt",
        "username": "pg-test",
        "password": "Etcd.Secret",
    }


def test_patroni_empty_etcd_password_is_the_cluster_name():
    hv, groups = build(pg_test(pg_etcd_password=""))
    inv = validate.require(model_mod.load(hv, groups))
    cplan, iplan = plans(inv, "10.10.10.12")
    s = settings_mod.build_settings(hv["10.10.10.12"])
    p = patroni_conf.patroni_config(cplan, iplan, s)
    assert p["etcd3"]["password"] == "pg-test"
    assert etcd_vip.etcd_user(cplan, s)["password"] == "pg-test"
    s["mask_secrets"] = True
    assert patroni_conf.patroni_config(cplan, iplan, s)["etcd3"]["password"] == settings_mod.MASK


def test_patroni_dcs_norm_plan():
    p, _, _, _ = files(sandbox(), "10.10.10.12")
    dcs = p["bootstrap"]["dcs"]
    assert {k: dcs[k] for k in dcs if k != "postgresql"} == {
        "ttl": 30,
        "loop_wait": 5,
        "retry_timeout": 10,
        "primary_start_timeout": 25,
        "maximum_lag_on_failover": 1048576,
        "synchronous_mode": False,
        "synchronous_mode_strict": False,
        "failsafe_mode": True,
    }
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["postgresql"]["use_pg_rewind"] is True
    assert dcs["postgresql"]["use_slots"] is True
    assert "standby_cluster" not in dcs


@pytest.mark.parametrize(
    "rto, expect",
    [
        ("fast", (20, 5, 5, 15)),
        ("norm", (30, 5, 10, 25)),
        ("safe", (60, 10, 20, 45)),
        ("wide", (120, 20, 30, 95)),
    ],
)
def test_patroni_rto_plans(rto, expect):
    p, _, _, _ = files(sandbox(test=pg_test(pg_rto=rto)), "10.10.10.11")
    dcs = p["bootstrap"]["dcs"]
    assert (dcs["ttl"], dcs["loop_wait"], dcs["retry_timeout"], dcs["primary_start_timeout"]) == expect


def test_patroni_rpo_zero_is_synchronous():
    p, _, _, _ = files(sandbox(test=pg_test(pg_rpo=0)), "10.10.10.11")
    dcs = p["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["synchronous_mode_strict"] is False
    assert dcs["maximum_lag_on_failover"] == 1048576

    p, _, _, _ = files(sandbox(test=pg_test(pg_rpo=65536)), "10.10.10.11")
    assert p["bootstrap"]["dcs"]["synchronous_mode"] is False
    assert p["bootstrap"]["dcs"]["maximum_lag_on_failover"] == 65536


def test_patroni_crit_is_strict():
    p, _, _, _ = files(sandbox(test=pg_test(pg_conf="crit")), "10.10.10.11")
    dcs = p["bootstrap"]["dcs"]
    assert dcs["synchronous_mode"] is True
    assert dcs["synchronous_mode_strict"] is True


def test_patroni_dcs_parameters_sandbox():
    # Reference node (no facts): 4096 MiB, 2 CPUs, profile tiny.
    p, _, _, _ = files(sandbox(), "10.10.10.11")
    assert p["bootstrap"]["dcs"]["postgresql"]["parameters"] == {
        "archive_command": "pgbackrest --stanza=pg-test archive-push %p || /usr/local/bin/pg-wal-conflict %p $?",
        "archive_mode": "on",
        "hot_standby": "on",
        "max_connections": "200",
        "max_locks_per_transaction": "64",
        "max_prepared_transactions": "0",
        "max_replication_slots": "10",
        "max_wal_senders": "10",
        "max_worker_processes": "9",
        "track_commit_timestamp": "off",
        "wal_level": "logical",
        "wal_log_hints": "on",
    }
    local = p["postgresql"]["parameters"]
    assert not set(local) & set(patroni_conf.DCS_PARAMETERS)
    assert list(local) == sorted(local)


def test_patroni_cluster_tuning_wins_over_the_instance():
    hv, groups = sandbox()
    inv = validate.require(model_mod.load(hv, groups))
    cplan, iplan = plans(inv, "10.10.10.12")
    cplan = dict(cplan, tuning={"max_connections": "150", "max_worker_processes": "12"})
    p = patroni_conf.patroni_config(cplan, iplan, settings_mod.build_settings(hv["10.10.10.12"]))
    params = p["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert params["max_connections"] == "150"
    assert params["max_worker_processes"] == "12"
    assert params["max_wal_senders"] == "10"  # from the instance


def test_patroni_local_parameters():
    p, _, _, _ = files(sandbox(), "10.10.10.11")
    local = p["postgresql"]["parameters"]
    assert {
        k: local[k]
        for k in (
            "unix_socket_directories",
            "password_encryption",
            "shared_preload_libraries",
            "ssl",
            "ssl_cert_file",
            "ssl_key_file",
            "logging_collector",
            "log_destination",
            "log_directory",
            "shared_buffers",
            "work_mem",
        )
    } == {
        "unix_socket_directories": "/var/run/postgresql",
        "password_encryption": "scram-sha-256",
        "shared_preload_libraries": "pg_stat_statements",
        "ssl": "on",
        "ssl_cert_file": "/pg/cert/server.crt",
        "ssl_key_file": "/pg/cert/server.key",
        "logging_collector": "on",
        "log_destination": "csvlog",
        "log_directory": "/pg/log/postgres",
        "shared_buffers": "1024MB",
        "work_mem": "6MB",
    }
    assert all(isinstance(v, str) for v in local.values())


def test_patroni_pg_parameters_override():
    p, _, _, _ = files(
        sandbox(),
        "10.10.10.11",
        pg_parameters={
            "work_mem": "16MB",
            "hot_standby_feedback": True,
            "max_connections": 300,
            "random_page_cost": 4,
        },
        pg_libs="pg_stat_statements,  auto_explain",
        pg_pwd_enc="md5",
    )
    local = p["postgresql"]["parameters"]
    assert local["work_mem"] == "16MB"
    assert local["hot_standby_feedback"] == "on"
    assert local["random_page_cost"] == "4"
    assert local["password_encryption"] == "md5"
    assert local["shared_preload_libraries"] == "pg_stat_statements, auto_explain"
    assert "max_connections" not in local
    assert p["bootstrap"]["dcs"]["postgresql"]["parameters"]["max_connections"] == "300"


@pytest.mark.parametrize(
    "libs, preload",
    [
        (
            "$libdir/passwordcheck, pg_stat_statements, auto_explain",
            "$libdir/passwordcheck, pg_stat_statements, auto_explain",
        ),
        ("pg_stat_statements,auto_explain,", "pg_stat_statements, auto_explain"),
        ("plpgsql", "plpgsql"),
    ],
)
def test_patroni_preload_libraries(libs, preload):
    p, _, _, s = files(sandbox(), "10.10.10.11", pg_libs=libs)
    assert settings_mod.check_config_settings(s) == []
    assert p["postgresql"]["parameters"]["shared_preload_libraries"] == preload


@pytest.mark.parametrize(
    "value, expect",
    [
        (None, "/usr/lib/postgresql/15/bin"),
        ("/usr/pgsql/bin", "/usr/lib/postgresql/15/bin"),  # Pigsty's link
        ("/opt/pg/bin", "/opt/pg/bin"),
    ],
)
def test_patroni_bin_dir(value, expect):
    p, _, _, _ = files(sandbox(), "10.10.10.11", pg_bin_dir=value)
    assert p["postgresql"]["bin_dir"] == expect


def test_patroni_postgresql_section():
    p, _, _, _ = files(sandbox(), "10.10.10.12")
    pg = p["postgresql"]
    assert {
        k: pg[k]
        for k in (
            "listen",
            "connect_address",
            "data_dir",
            "bin_dir",
            "config_dir",
            "pgpass",
            "use_unix_socket",
            "create_replica_methods",
            "basebackup",
            "recovery_conf",
        )
    } == {
        "listen": "0.0.0.0:5432",
        "connect_address": "10.10.10.12:5432",
        "data_dir": "/pg/data",
        "bin_dir": "/usr/lib/postgresql/15/bin",
        "config_dir": "/pg/conf",
        "pgpass": "/pg/tmp/pgpass",
        "use_unix_socket": True,
        "create_replica_methods": ["basebackup"],
        "basebackup": {"checkpoint": "fast"},
        "recovery_conf": {"restore_command": 'pgbackrest --stanza=pg-test archive-get %f "%p"'},
    }
    # Superuser over the socket by peer authentication: no password.
    # Replication and rewind check the server's certificate and names.
    tls = {"sslmode": "verify-full", "sslrootcert": "/pg/cert/ca.crt"}
    assert pg["authentication"] == {
        "superuser": {"username": "postgres"},
        "replication": {"username": "replicator", "password": "DBUser.Replicator", **tls},
        "rewind": {"username": "replicator", "password": "DBUser.Replicator", **tls},
    }
    # A new leader makes sure its repository holds the stanza.
    assert pg["callbacks"] == {"on_role_change": "/usr/local/bin/pg-role-change"}
    assert p["bootstrap"]["initdb"] == ["data-checksums", {"encoding": "UTF8"}, {"locale": "C.UTF-8"}]

    p, _, _, _ = files(
        sandbox(),
        "10.10.10.12",
        pg_checksum=False,
        pg_version=16,
        pg_version_repo="pgdg",
        pg_locale="en_US.UTF-8",
        pg_data="/data/pg",
        pg_bin_dir="/opt/pg/bin",
    )
    assert p["bootstrap"]["initdb"] == [{"encoding": "UTF8"}, {"locale": "en_US.UTF-8"}]
    assert p["postgresql"]["data_dir"] == "/data/pg"
    assert p["postgresql"]["bin_dir"] == "/opt/pg/bin"


def test_patroni_pg_hba_is_the_whole_policy():
    hv, groups = sandbox()
    inv = validate.require(model_mod.load(hv, groups))
    cplan, iplan = plans(inv, "10.10.10.13")
    p = patroni_conf.patroni_config(cplan, iplan, settings_mod.build_settings(hv["10.10.10.13"]))
    assert p["postgresql"]["pg_hba"] == iplan["pg_hba"]
    boot = p["bootstrap"]["pg_hba"]
    assert boot == [line for line in iplan["pg_hba"] if line and not line.startswith("#")]
    assert boot[0].split() == ["local", "all", "postgres", "ident"]
    assert ["hostssl", "postgres", "replicator", "10.0.0.0/8", "scram-sha-256"] in [line.split() for line in boot]


def test_patroni_tags():
    hosts = {
        "10.10.10.11": {"pg_seq": 1, "pg_role": "primary"},
        "10.10.10.12": {"pg_seq": 2, "pg_role": "replica"},
        "10.10.10.13": {"pg_seq": 3, "pg_role": "offline"},
        "10.10.10.14": {"pg_seq": 4, "pg_role": "replica", "pg_upstream": "10.10.10.12"},
        "10.10.10.15": {"pg_seq": 5, "pg_role": "replica", "pg_offline_query": True},
    }
    inventory = sandbox(test=pg_test(hosts))
    tags = {h: files(inventory, h)[0]["tags"] for h in hosts}
    assert tags["10.10.10.11"] == {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False}
    assert tags["10.10.10.12"] == {"nofailover": False, "noloadbalance": False, "clonefrom": True, "nosync": False}
    # Offline: never promoted, never the synchronous standby, but still
    # answers /replica so that the offline service keeps it.
    assert tags["10.10.10.13"] == {"nofailover": True, "noloadbalance": False, "clonefrom": False, "nosync": True}
    assert tags["10.10.10.14"] == {
        "nofailover": False,
        "noloadbalance": False,
        "clonefrom": True,
        "nosync": False,
        "replicatefrom": "pg-test-2",
    }
    assert tags["10.10.10.15"] == tags["10.10.10.12"]

    p, _, _, _ = files(inventory, "10.10.10.12", patroni_tags={"nofailover": True, "dc": "east"})
    assert p["tags"] == {"nofailover": True, "noloadbalance": False, "clonefrom": True, "nosync": False, "dc": "east"}


def standby_cluster(leader_vars):
    return cluster(
        "pg-dr",
        {
            "10.10.10.21": {"pg_seq": 1, **leader_vars},
            "10.10.10.22": {"pg_seq": 2, "pg_role": "replica"},
        },
        pg_conf="tiny",
    )


@pytest.mark.parametrize(
    "leader, expect",
    [
        (
            {"pg_role": "primary", "pg_upstream": "10.10.10.11"},
            {"host": "10.10.10.11", "port": 5432, "create_replica_methods": ["basebackup"]},
        ),
        (
            {"pg_role": "standby", "pg_upstream": "10.10.10.11"},
            {"host": "10.10.10.11", "port": 5432, "create_replica_methods": ["basebackup"]},
        ),
        (
            {"pg_role": "delayed", "pg_upstream": "10.10.10.11", "pg_delay": "1h"},
            {
                "host": "10.10.10.11",
                "port": 5432,
                "create_replica_methods": ["basebackup"],
                "recovery_min_apply_delay": "1h",
            },
        ),
        (
            {"pg_role": "primary", "pg_upstream": "10.10.10.11", "pg_delay": 0},
            {"host": "10.10.10.11", "port": 5432, "create_replica_methods": ["basebackup"]},
        ),
        (
            {"pg_role": "delayed", "pg_upstream": "10.10.10.11", "pg_delay": 5400000},
            {
                "host": "10.10.10.11",
                "port": 5432,
                "create_replica_methods": ["basebackup"],
                "recovery_min_apply_delay": "90min",
            },
        ),
    ],
)
def test_patroni_standby_cluster(leader, expect):
    inventory = sandbox(standby_cluster(leader))
    for host in ("10.10.10.21", "10.10.10.22"):
        p, _, _, _ = files(inventory, host)
        assert p["bootstrap"]["dcs"]["standby_cluster"] == expect
        assert p["scope"] == "pg-dr"
        # The leader replicates from another cluster: no replicatefrom.
        assert "replicatefrom" not in p["tags"]
        # no stanza of its own until it is promoted: no archive to read
        assert "restore_command" not in p["postgresql"].get("recovery_conf", {})
        assert p["postgresql"]["callbacks"]["on_role_change"].endswith("pg-role-change")
    p, _, _, _ = files(inventory, "10.10.10.11")
    assert "standby_cluster" not in p["bootstrap"]["dcs"]
    assert p["postgresql"]["recovery_conf"]["restore_command"].startswith("pgbackrest --stanza=pg-test ")
    # pg-dr follows one member, whatever its role: no slot on pg-test
    assert "slots" not in p["bootstrap"]["dcs"]


def test_a_standby_cluster_that_follows_the_source_vip_replicates_through_a_slot():
    inventory = sandbox(standby_cluster({"pg_role": "primary", "pg_upstream": "10.10.10.3"}))
    for host in ("10.10.10.21", "10.10.10.22"):
        p, _, _, _ = files(inventory, host)
        assert p["bootstrap"]["dcs"]["standby_cluster"]["primary_slot_name"] == "standby_pg_dr"
    # every member of pg-test has the slot in its bootstrap.dcs (the
    # primary creates it)
    for host in ("10.10.10.11", "10.10.10.12"):
        p, _, _, _ = files(inventory, host)
        assert p["bootstrap"]["dcs"]["slots"] == {"standby_pg_dr": {"type": "physical"}}


@pytest.mark.parametrize(
    "upstream, test_vars, expect",
    [
        # a member of pg-test, which runs on 6543: its port, not pg-dr's
        ("10.10.10.11", {"pg_port": 6543}, 6543),
        # pg-test's VIP: pg-test's port
        ("10.10.10.3", {"pg_port": 6543}, 6543),
        # another member, pg-test on the default port
        ("10.10.10.12", {}, 5432),
        # an address outside the inventory: pg-dr's own port
        ("192.168.5.21", {"pg_port": 6543}, 5999),
    ],
)
def test_a_standby_leader_reaches_its_source_on_the_source_port(upstream, test_vars, expect):
    dr = cluster(
        "pg-dr",
        {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": upstream}},
        pg_conf="tiny",
        pg_port=5999 if upstream == "192.168.5.21" else 5432,
    )
    inventory = sandbox(dr, test=pg_test(**test_vars))
    p, _, _, _ = files(inventory, "10.10.10.21")
    assert p["bootstrap"]["dcs"]["standby_cluster"]["port"] == expect
    assert p["postgresql"]["listen"].endswith(":5999" if upstream == "192.168.5.21" else ":5432")


@pytest.mark.parametrize("pg_rpo", [0, 1048576])
def test_a_standby_cluster_runs_without_synchronous_mode(pg_rpo):
    """A standby leader names no synchronous standby, and Patroni refuses a
    switchover in a standby cluster with synchronous_mode on."""
    inventory = sandbox(standby_cluster({"pg_role": "primary", "pg_upstream": "10.10.10.11"}))
    for host in ("10.10.10.21", "10.10.10.22"):
        p, _, _, _ = files(inventory, host)
        dcs = p["bootstrap"]["dcs"]
        assert (dcs["synchronous_mode"], dcs["synchronous_mode_strict"]) == (False, False)


def test_every_member_of_a_delayed_cluster_applies_the_delay():
    inventory = sandbox(standby_cluster({"pg_role": "delayed", "pg_upstream": "10.10.10.11", "pg_delay": "1h"}))
    for host in ("10.10.10.21", "10.10.10.22"):
        p, _, _, _ = files(inventory, host)
        assert p["postgresql"]["recovery_conf"]["recovery_min_apply_delay"] == "1h"
        assert p["bootstrap"]["dcs"]["standby_cluster"]["recovery_min_apply_delay"] == "1h"
    # a standby cluster without a delay, and the source, apply none
    for inv, host in (
        (sandbox(standby_cluster({"pg_role": "primary", "pg_upstream": "10.10.10.11"})), "10.10.10.22"),
        (inventory, "10.10.10.11"),
    ):
        p, _, _, _ = files(inv, host)
        assert "recovery_min_apply_delay" not in p["postgresql"].get("recovery_conf", {})


@pytest.mark.parametrize(
    "delay, expect",
    [
        ("1h", "1h"),
        ("90 min", "90min"),
        ("1.5h", "90min"),
        ("7d", "7d"),
        ("30s", "30s"),
        ("45 s", "45s"),
        ("1500", "1500ms"),
        (5400000, "90min"),
        ("250ms", "250ms"),
        ("1500us", "2ms"),
        ("0", "0ms"),
        ("24d", "24d"),
        ("2147483647", "2147483647ms"),
    ],
)
def test_delay_in_patroni_units(delay, expect):
    assert patroni_conf._delay(delay) == expect


@pytest.mark.parametrize(
    "delay",
    [
        "soon",
        "90 minutes",
        "1w",
        "2 days",
        "45 sec",
        "1H",
        "25d",
        -1,
        2147483648,
        True,
        1.5,
        None,
    ],
)
def test_delay_rejects_what_postgresql_refuses(delay):
    """Only what PostgreSQL takes as recovery_min_apply_delay is rendered
    (validation refuses the rest first, test_upstream.py)."""
    with pytest.raises(ValueError):
        patroni_conf._delay(delay)


def test_patroni_without_pgbackrest():
    p, _, _, _ = files(sandbox(), "10.10.10.11", pgbackrest_enabled=False)
    params = p["bootstrap"]["dcs"]["postgresql"]["parameters"]
    assert params["archive_mode"] == "on"
    assert params["archive_command"] == "/bin/true"
    assert "recovery_conf" not in p["postgresql"]
    assert "callbacks" not in p["postgresql"]


def test_role_change_callback_is_the_script_the_role_installs():
    # patroni.yml names the path; roles/pgbackrest installs the script at
    # the same entry of defaults.PATHS (the pg_path filter).
    with open(os.path.join(REPO, "roles", "pgbackrest", "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    assert role_vars["__pgbackrest_role_change_script"] == "{{ 'role_change_callback' | pigpen.pgsql.pg_path }}"
    assert patroni_conf.ROLE_CHANGE_CALLBACK == "/usr/local/bin/pg-role-change"


def test_wal_conflict_is_the_program_the_role_installs():
    # archive_command names it after archive-push; roles/pgbackrest installs
    # it at the same entry of defaults.PATHS
    with open(os.path.join(REPO, "roles", "pgbackrest", "vars", "main.yml"), encoding="utf-8") as handle:
        role_vars = yaml.safe_load(handle)
    assert role_vars["__pgbackrest_wal_conflict_script"] == "{{ 'wal_conflict' | pigpen.pgsql.pg_path }}"
    p, _, _, _ = files(sandbox(), "10.10.10.11")
    command = p["bootstrap"]["dcs"]["postgresql"]["parameters"]["archive_command"]
    assert command.endswith(" || /usr/local/bin/pg-wal-conflict %p $?")


def test_every_fixed_path_is_written_once():
    # the literal appears only in defaults.PATHS (and the module's
    # documentation of its default); roles and playbooks use pg_path
    from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import PATHS

    for path in PATHS.values():
        found = []
        for top in ("roles", "playbooks", "molecule", "plugins"):
            for dirpath, _dirs, names in os.walk(os.path.join(REPO, top)):
                for name in names:
                    full = os.path.join(dirpath, name)
                    with open(full, encoding="utf-8", errors="replace") as handle:
                        text = handle.read()
                    if path in text:
                        found.append(os.path.relpath(full, REPO))
        assert sorted(found) in (
            ["plugins/module_utils/defaults.py"],
            ["plugins/module_utils/defaults.py", "plugins/modules/haproxy_primary.py"],
            [
                "plugins/module_utils/defaults.py",
                "plugins/modules/haproxy_health.py",
                "plugins/modules/haproxy_primary.py",
            ],
        ), found


def test_patroni_floor_of_max_connections():
    with pytest.raises(ModelError) as err:
        files(sandbox(), "10.10.10.11", pg_parameters={"max_connections": 20})
    assert "pg_parameters.max_connections" in str(err.value)

    hv, groups = sandbox()
    inv = validate.require(model_mod.load(hv, groups))
    cplan, iplan = plans(inv, "10.10.10.11")
    cplan = dict(cplan, tuning={"max_connections": "20"})
    with pytest.raises(ModelError) as err:
        patroni_conf.patroni_config(cplan, iplan, settings_mod.build_settings(hv["10.10.10.11"]))
    assert "max_connections = '20'" in str(err.value)
    assert "cluster pg-test, host 10.10.10.11" in str(err.value)


def test_patroni_secrets_masked():
    hv, groups = build(pg_test(), common={"etcd_username": "u", "etcd_password": "Etcd.Secret"})
    inv = validate.require(model_mod.load(hv, groups))
    cplan, iplan = plans(inv, "10.10.10.11")
    s = settings_mod.build_settings(hv["10.10.10.11"])
    s["mask_secrets"] = True
    p = patroni_conf.patroni_config(cplan, iplan, s)
    text = yaml.safe_dump(p)
    for secret in ("Patroni.API", "DBUser.Replicator", "Etcd.Secret"):
        assert secret not in text
    assert p["restapi"]["authentication"]["password"] == settings_mod.MASK
    assert p["etcd3"]["password"] == settings_mod.MASK
    assert p["postgresql"]["authentication"]["rewind"]["password"] == settings_mod.MASK


# ---------------------------------------------------------------- pgbouncer

PGBOUNCER_MAIN = [
    ["listen_addr", "0.0.0.0"],
    ["listen_port", "6432"],
    ["unix_socket_dir", "/var/run/postgresql"],
    ["logfile", "/pg/log/pgbouncer/pgbouncer.log"],
    ["pidfile", "/var/run/postgresql/pgbouncer.pid"],
    ["auth_type", "hba"],
    ["auth_hba_file", "/etc/pgbouncer/pgb_hba.conf"],
    ["auth_file", "/etc/pgbouncer/userlist.txt"],
    ["admin_users", "postgres"],
    ["stats_users", "dbuser_monitor"],
    ["pool_mode", "transaction"],
    ["max_client_conn", "20000"],
    ["default_pool_size", "50"],
    ["reserve_pool_size", "30"],
    ["max_db_connections", "100"],
    ["ignore_startup_parameters", "extra_float_digits,options"],
    ["server_login_retry", "1"],
    # TLS offered to every client by default, with the node's certificate
    ["client_tls_sslmode", "prefer"],
    ["client_tls_cert_file", "/pg/cert/server.crt"],
    ["client_tls_key_file", "/pg/cert/server.key"],
    ["server_tls_sslmode", "disable"],
]


def test_pgbouncer_sandbox():
    _, pgb, _, _ = files(sandbox(), "10.10.10.10")
    assert pgb == [
        [
            "databases",
            [
                ["postgres", "host=/var/run/postgresql port=5432 dbname=postgres"],
                ["meta", "host=/var/run/postgresql port=5432 dbname=meta"],
            ],
        ],
        [
            "users",
            [
                ["dbuser_dba", "pool_mode=session max_user_connections=16"],
                ["dbuser_monitor", "pool_mode=session max_user_connections=8"],
            ],
        ],
        ["pgbouncer", PGBOUNCER_MAIN],
    ]
    _, pgb, _, _ = files(sandbox(), "10.10.10.12")
    assert section(pgb, "databases") == [
        ["postgres", "host=/var/run/postgresql port=5432 dbname=postgres"],
        ["test", "host=/var/run/postgresql port=5432 dbname=test"],
    ]
    assert section(pgb, "pgbouncer") == PGBOUNCER_MAIN


def test_pgbouncer_pool_settings():
    test = pg_test(
        pg_users=[
            {"name": "test", "password": "test", "pgbouncer": True, "pool_mode": "statement", "pool_connlimit": 64},
            {"name": "app$ro", "pgbouncer": True, "pool_connlimit": 4},
            {"name": "hidden", "pgbouncer": False, "pool_mode": "session"},
        ],
        pg_databases=[
            {
                "name": "test",
                "owner": "test",
                "pool_mode": "session",
                "pool_size": 20,
                "pool_size_min": 5,
                "pool_reserve": 10,
                "pool_connlimit": 80,
            },
            {"name": "app.v2", "pool_size": 8},
            {"name": "big", "pool_size": -1, "pool_connlimit": -1},
            {"name": "etl", "pgbouncer": False},
            {"name": "gone", "state": "absent"},
        ],
        pgbouncer_poolmode="session",
        pgbouncer_port=16432,
        pg_port=15432,
    )
    _, pgb, _, _ = files(sandbox(test=test), "10.10.10.11")
    assert section(pgb, "databases") == [
        ["postgres", "host=/var/run/postgresql port=15432 dbname=postgres"],
        [
            "test",
            "host=/var/run/postgresql port=15432 dbname=test "
            "pool_mode=session pool_size=20 min_pool_size=5 "
            "reserve_pool=10 max_db_connections=80",
        ],
        ["app.v2", "host=/var/run/postgresql port=15432 dbname=app.v2 pool_size=8"],
        ["big", "host=/var/run/postgresql port=15432 dbname=big max_db_connections=0"],
    ]
    assert section(pgb, "users") == [
        ['"app$ro"', "max_user_connections=4"],
        ["dbuser_dba", "pool_mode=session max_user_connections=16"],
        ["dbuser_monitor", "pool_mode=session max_user_connections=8"],
        ["test", "pool_mode=statement max_user_connections=64"],
    ]
    main = dict(section(pgb, "pgbouncer"))
    assert main["pool_mode"] == "session"
    assert main["listen_port"] == "16432"


def test_pgbouncer_auth_query_and_tls():
    _, pgb, _, _ = files(
        sandbox(),
        "10.10.10.11",
        pgbouncer_auth_query=True,
        pgbouncer_sslmode="require",
        pgbouncer_max_client_conn=5000,
        pgbouncer_conf_dir="/etc/pgb",
    )
    main = section(pgb, "pgbouncer")
    keys = [k for k, _ in main]
    assert keys.index("auth_user") == keys.index("auth_file") + 1
    main = dict(main)
    assert main["auth_user"] == "postgres"
    assert main["auth_query"].startswith("SELECT rolname, ")
    assert "$1" in main["auth_query"]
    assert main["auth_hba_file"] == "/etc/pgb/pgb_hba.conf"
    assert main["client_tls_sslmode"] == "require"
    assert main["client_tls_cert_file"] == "/pg/cert/server.crt"
    assert main["client_tls_key_file"] == "/pg/cert/server.key"
    assert "client_tls_ca_file" not in main
    assert main["server_tls_sslmode"] == "disable"
    assert main["max_client_conn"] == "5000"

    _, pgb, _, _ = files(sandbox(), "10.10.10.11", pgbouncer_sslmode="verify-full")
    assert dict(section(pgb, "pgbouncer"))["client_tls_ca_file"] == "/pg/cert/ca.crt"
    _, pgb, _, _ = files(sandbox(), "10.10.10.11")
    assert "auth_user" not in dict(section(pgb, "pgbouncer"))
    _, pgb, _, _ = files(sandbox(), "10.10.10.11", pgbouncer_sslmode="disable")
    main = dict(section(pgb, "pgbouncer"))
    assert main["client_tls_sslmode"] == "disable"
    assert not [k for k in main if k.startswith("client_tls_") and k != "client_tls_sslmode"]


@pytest.mark.parametrize(
    "mode, expected",
    [
        ("disable", []),
        ("allow", ["/pg/cert/server.crt", "/pg/cert/server.key"]),
        ("prefer", ["/pg/cert/server.crt", "/pg/cert/server.key"]),
        ("require", ["/pg/cert/server.crt", "/pg/cert/server.key"]),
        ("verify-ca", ["/pg/cert/server.crt", "/pg/cert/server.key", "/pg/cert/ca.crt"]),
        ("verify-full", ["/pg/cert/server.crt", "/pg/cert/server.key", "/pg/cert/ca.crt"]),
    ],
)
def test_pgbouncer_tls_files(mode, expected):
    """The files the role checksums to reload pgbouncer after a renewal:
    exactly the client_tls_*_file values of pgbouncer.ini, in its order."""
    s = settings_mod.build_settings({"pgbouncer_sslmode": mode})
    assert pgbouncer_ini.tls_files(s) == expected
    _, pgb, _, _ = files(sandbox(), "10.10.10.11", pgbouncer_sslmode=mode)
    ini = [v for k, v in section(pgb, "pgbouncer") if k.startswith("client_tls_") and k.endswith("_file")]
    assert ini == expected


def test_pgbouncer_tls_default_follows_postgres():
    """Client TLS is on by default: PostgreSQL always has the node's
    certificate, and pgbouncer serves the same one."""
    assert settings_mod.build_settings({})["pgbouncer_sslmode"] == settings_mod.PGBOUNCER_SSLMODE == "prefer"


# ---------------------------------------------------------------- pgbackrest


def test_pgbackrest_local():
    _, _, conf, _ = files(sandbox(), "10.10.10.11")
    assert conf == [
        [
            "global",
            [
                ["repo1-path", "/pg/backup"],
                ["repo1-retention-full-type", "count"],
                ["repo1-retention-full", "2"],
                ["compress-type", "zst"],
                ["archive-async", "y"],
                ["spool-path", "/pg/spool"],
                ["process-max", "1"],
                ["log-path", "/pg/log/pgbackrest"],
                ["start-fast", "y"],
                ["delta", "y"],
            ],
        ],
        ["global:archive-push", [["process-max", "1"]]],
        [
            "pg-test",
            [
                ["pg1-path", "/pg/data"],
                ["pg1-socket-path", "/var/run/postgresql"],
                ["pg1-port", "5432"],
                ["pg1-user", "postgres"],
            ],
        ],
    ]


def test_pgbackrest_minio():
    _, _, conf, _ = files(sandbox(), "10.10.10.10", pgbackrest_method="minio")
    assert section(conf, "global")[:18] == [
        ["repo1-type", "s3"],
        ["repo1-path", "/pgbackrest"],
        ["repo1-s3-endpoint", "sss.pigsty"],
        ["repo1-s3-region", "us-east-1"],
        ["repo1-s3-bucket", "pgsql"],
        ["repo1-s3-uri-style", "path"],
        ["repo1-s3-key", "pgbackrest"],
        ["repo1-s3-key-secret", "S3User.Backup"],
        ["repo1-storage-port", "9000"],
        ["repo1-storage-ca-file", "/pg/cert/ca.crt"],
        ["repo1-storage-verify-tls", "y"],
        ["repo1-bundle", "y"],
        ["repo1-block", "y"],
        ["repo1-cipher-type", "aes-256-cbc"],
        ["repo1-cipher-pass", "pgBackRest"],
        ["repo1-retention-full-type", "time"],
        ["repo1-retention-full", "14"],
        # block incremental is a beta feature of pgBackRest 2.45
        ["beta", "y"],
    ]
    assert section(conf, "global")[18][0] == "compress-type"
    _, _, conf, _ = files(sandbox(), "10.10.10.10")
    assert "beta" not in dict(section(conf, "global"))
    assert section(conf, "pg-meta")[0] == ["pg1-path", "/pg/data"]

    _, _, conf, _ = files(sandbox(), "10.10.10.10", pgbackrest_method="minio", mask_secrets=True)
    glob_ = dict(section(conf, "global"))
    assert glob_["repo1-s3-key-secret"] == settings_mod.MASK
    assert glob_["repo1-cipher-pass"] == settings_mod.MASK
    assert glob_["repo1-s3-key"] == settings_mod.MASK
    assert glob_["repo1-s3-bucket"] == "pgsql"


def test_pgbackrest_custom_repo_and_process_max():
    repo = {
        "nas": {
            "type": "cifs",
            "path": "/mnt/nas/pgbackrest",
            "retention_full": 4,
            "retention_diff": 7,
            "bundle": False,
        }
    }
    test = pg_test(ansible_memtotal_mb=65536, ansible_processor_vcpus=16)
    _, _, conf, _ = files(sandbox(test=test), "10.10.10.11", pgbackrest_repo=repo, pgbackrest_method="nas")
    glob_ = section(conf, "global")
    assert glob_[:5] == [
        ["repo1-type", "cifs"],
        ["repo1-path", "/mnt/nas/pgbackrest"],
        ["repo1-bundle", "n"],
        ["repo1-retention-full", "4"],
        ["repo1-retention-diff", "7"],
    ]
    assert dict(glob_)["process-max"] == "8"
    assert section(conf, "global:archive-push") == [["process-max", "4"]]

    _, _, conf, _ = files(sandbox(), "10.10.10.11", pgbackrest_process_max=6)
    assert dict(section(conf, "global"))["process-max"] == "6"
    assert section(conf, "global:archive-push") == [["process-max", "4"]]


# A repository on the sandbox's infra node, reached over pgBackRest's TLS
# server (docs/backup.md "Repository host").
BACKUP_REPO = {
    "backup": {
        "host": "10.10.10.10",
        "path": "/pg/backup",
        "retention_full_type": "count",
        "retention_full": 2,
        "cipher_type": "aes-256-cbc",
        "cipher_pass": "s3cr3t.${pg_cluster}",
    }
}
TLS = ["/etc/pgbackrest/tls/ca.crt", "/etc/pgbackrest/tls/node.crt", "/etc/pgbackrest/tls/node.key"]


def test_pgbackrest_member_of_a_repository_host():
    _, _, conf, s = files(sandbox(), "10.10.10.12", pgbackrest_method="backup", pgbackrest_repo=BACKUP_REPO)
    assert conf == [
        [
            "global",
            [
                ["repo1-host", "10.10.10.10"],
                ["repo1-host-type", "tls"],
                ["repo1-host-port", "8432"],
                ["repo1-host-ca-file", TLS[0]],
                ["repo1-host-cert-file", TLS[1]],
                ["repo1-host-key-file", TLS[2]],
                # the repository's own options (path, retention, cipher) stay
                # on the repository host
                ["compress-type", "zst"],
                ["archive-async", "y"],
                ["spool-path", "/pg/spool"],
                ["process-max", "1"],
                ["log-path", "/pg/log/pgbackrest"],
                ["start-fast", "y"],
                ["delta", "y"],
            ],
        ],
        ["global:archive-push", [["process-max", "1"]]],
        ["global:server", [["tls-server-auth", "pgbackrest-repo-10.10.10.10=pg-test"]]],
        [
            "pg-test",
            [
                ["pg1-path", "/pg/data"],
                ["pg1-socket-path", "/var/run/postgresql"],
                ["pg1-port", "5432"],
                ["pg1-user", "postgres"],
            ],
        ],
    ]
    assert pgbackrest_conf.pgbackrest_tls_server("10.10.10.12") == [
        [
            "global:server",
            [
                ["tls-server-address", "10.10.10.12"],
                ["tls-server-port", "8432"],
                ["tls-server-ca-file", TLS[0]],
                ["tls-server-cert-file", TLS[1]],
                ["tls-server-key-file", TLS[2]],
            ],
        ]
    ]


def repo_host(inventory, host, **overrides):
    hostvars, groups = inventory
    inv = validate.require(model_mod.load(hostvars, groups))
    cplan, iplan = plans(inv, host)
    s = settings_mod.build_settings(hostvars[host])
    s.update(overrides)
    return pgbackrest_conf.pgbackrest_repo_host(cplan, iplan, s)


def test_pgbackrest_repository_host_of_a_cluster():
    assert repo_host(sandbox(), "10.10.10.11") is None
    rh = repo_host(
        sandbox(),
        "10.10.10.11",
        pgbackrest_method="backup",
        pgbackrest_repo=BACKUP_REPO,
        pg_crontab=["00 01 * * * /usr/local/bin/pg-backup full", "@hourly pg-backup", "*/5 * * * * /bin/true"],
    )
    assert rh["host"] == "10.10.10.10"
    assert rh["cn"] == "pgbackrest-repo-10.10.10.10"
    assert rh["port"] == 8432
    assert rh["path"] == "/pg/backup"
    auth, stanza = rh["stanza_conf"]
    assert auth == [
        "global:server",
        [
            ["tls-server-auth", "pg-test-1=pg-test"],
            ["tls-server-auth", "pg-test-2=pg-test"],
            ["tls-server-auth", "pg-test-3=pg-test"],
        ],
    ]
    assert stanza[0] == "pg-test"
    lines = stanza[1]
    assert lines[:9] == [
        ["pg1-host", "10.10.10.11"],
        ["pg1-host-type", "tls"],
        ["pg1-host-port", "8432"],
        ["pg1-host-ca-file", TLS[0]],
        ["pg1-host-cert-file", TLS[1]],
        ["pg1-host-key-file", TLS[2]],
        ["pg1-path", "/pg/data"],
        ["pg1-port", "5432"],
        ["pg1-socket-path", "/var/run/postgresql"],
    ]
    assert [k for k, _ in lines].count("pg3-host") == 1
    assert lines[27:] == [
        ["repo1-path", "/pg/backup"],
        ["repo1-cipher-type", "aes-256-cbc"],
        ["repo1-cipher-pass", "s3cr3t.pg-test"],
        ["repo1-retention-full-type", "count"],
        ["repo1-retention-full", "2"],
        ["compress-type", "zst"],
        ["process-max", "1"],
        ["log-path", "/pg/log/pgbackrest"],
        ["start-fast", "y"],
    ]
    assert rh["server"] == pgbackrest_conf.pgbackrest_tls_server("10.10.10.10")
    # the pg-backup entries run on the repository host, the rest stays
    assert rh["crontab"] == [
        "00 01 * * * root /usr/local/bin/pg-backup-repo pg-test full",
        "@hourly root /usr/local/bin/pg-backup-repo pg-test",
    ]
    s = settings_mod.build_settings(
        {
            "pgbackrest_method": "backup",
            "pgbackrest_repo": BACKUP_REPO,
            "pg_crontab": ["00 01 * * * /usr/local/bin/pg-backup full", "*/5 * * * * /bin/true"],
        }
    )
    assert pgbackrest_conf.crontab_split(s) == {"members": ["*/5 * * * * postgres /bin/true"]}
    s["pgbackrest_method"] = "local"
    assert len(pgbackrest_conf.crontab_split(s)["members"]) == 2
    masked = repo_host(
        sandbox(), "10.10.10.11", pgbackrest_method="backup", pgbackrest_repo=BACKUP_REPO, mask_secrets=True
    )
    assert dict(masked["stanza_conf"][1][1])["repo1-cipher-pass"] == settings_mod.MASK


@pytest.mark.parametrize(
    "repo, field, what",
    [
        (
            {"host": "10.10.10.10;rm", "path": "/pg/backup", "retention_full": 2},
            "pgbackrest_repo.backup.host",
            "is not the address of a repository host",
        ),
        (
            {
                "host": "10.10.10.10",
                "type": "s3",
                "s3_endpoint": "x",
                "s3_region": "r",
                "s3_bucket": "b",
                "s3_key": "k",
                "s3_key_secret": "k3y.s3cr3t",
                "path": "/pgbackrest",
                "retention_full": 2,
            },
            "pgbackrest_repo.backup.type",
            "posix repositories only",
        ),
        (
            {"host": "10.10.10.10", "host_port": 70000, "path": "/pg/backup", "retention_full": 2},
            "pgbackrest_repo.backup.host_port",
            "is not a whole number",
        ),
    ],
)
def test_pgbackrest_repository_host_refused(repo, field, what):
    s = settings_mod.build_settings({"pgbackrest_method": "backup", "pgbackrest_repo": {"backup": repo}})
    found = settings_mod.check_config_settings(s, cluster="pg-test", host="10.10.10.11")
    assert [p.field for p in found] == [field]
    assert what in found[0].what


# A repository written the way Pigsty's templates write it: pgBackRest's own
# y/n for booleans, and the cluster name through ${pg_cluster}.
PIGSTY_REPO = {
    "type": "s3",
    "s3_endpoint": "objects.example",
    "s3_region": "eu-west-1",
    "s3_bucket": "backups",
    "s3_key": "pgb",
    "s3_key_secret": "k3y.s3cr3t",
    "s3_uri_style": "path",
    "path": "/pgbackrest",
    "storage_port": 9000,
    "block": "y",
    "bundle": "y",
    "bundle_limit": "20MiB",
    "bundle_size": "128MiB",
    "cipher_type": "aes-256-cbc",
    "cipher_pass": "key.${pg_cluster}",
    "retention_full_type": "time",
    "retention_full": 14,
}


@pytest.mark.parametrize(
    "flags, bundle, block, beta",
    [
        ({"bundle": "y", "block": "y"}, "y", "y", True),
        ({"bundle": "y", "block": "n"}, "y", "n", False),
        ({"bundle": True, "block": False}, "y", "n", False),
        ({"bundle": "n"}, "n", None, False),
    ],
)
def test_pgbackrest_repo_flags_in_pgbackrest_spelling(flags, bundle, block, beta):
    repo = dict(PIGSTY_REPO, **flags)
    if "block" not in flags:
        del repo["block"]
    _, _, conf, _ = files(sandbox(), "10.10.10.11", pgbackrest_method="obj", pgbackrest_repo={"obj": repo})
    glob_ = dict(section(conf, "global"))
    assert glob_["repo1-bundle"] == bundle
    assert glob_.get("repo1-block") == block
    assert ("beta" in glob_) is beta


def test_pgbackrest_repo_cluster_placeholder():
    for host, cls in (("10.10.10.11", "pg-test"), ("10.10.10.10", "pg-meta")):
        _, _, conf, _ = files(sandbox(), host, pgbackrest_method="obj", pgbackrest_repo={"obj": PIGSTY_REPO})
        glob_ = dict(section(conf, "global"))
        assert glob_["repo1-cipher-pass"] == "key.%s" % cls
        assert glob_["repo1-bundle-limit"] == "20MiB"
    _, _, conf, _ = files(
        sandbox(), "10.10.10.11", pgbackrest_method="obj", pgbackrest_repo={"obj": PIGSTY_REPO}, mask_secrets=True
    )
    assert dict(section(conf, "global"))["repo1-cipher-pass"] == settings_mod.MASK


@pytest.mark.parametrize(
    "value, flag",
    [
        (True, True),
        (False, False),
        ("y", True),
        ("n", False),
        ("yes", None),
        ("Y", None),
        (1, None),
        (None, None),
        ("", None),
    ],
)
def test_repo_flag(value, flag):
    assert settings_mod.repo_flag(value) is flag


# ---------------------------------------------------------------- settings


def test_defaults_are_clean_and_shared_names_agree():
    assert settings_mod.check_config_settings({}) == []
    assert settings_mod.check_config_settings(settings_mod.SETTINGS_DEFAULTS) == []
    for name, value in settings_mod.SETTINGS_DEFAULTS.items():
        if name in MODEL_DEFAULTS:
            assert MODEL_DEFAULTS[name] == value, name
    for method in ("local", "minio"):
        assert settings_mod.check_config_settings({"pgbackrest_method": method}) == []


def test_role_defaults_agree_with_settings_defaults():
    """A role default that repeats a setting name must have its value."""
    for path in sorted(glob.glob(os.path.join(REPO, "roles", "*", "defaults", "main.yml"))):
        with open(path) as handle:
            defaults = yaml.safe_load(handle) or {}
        for name, value in defaults.items():
            if name in settings_mod.SETTINGS_DEFAULTS:
                assert value == settings_mod.SETTINGS_DEFAULTS[name], (path, name)


def test_build_settings():
    s = settings_mod.build_settings({"pg_port": 15432, "pg_data": None, "unrelated": 1, "pgbouncer_sslmode": "require"})
    assert s["pg_port"] == 15432
    assert s["pg_data"] == "/pg/data"
    assert s["pgbouncer_sslmode"] == "require"
    assert "unrelated" not in s
    assert set(s) == set(settings_mod.SETTINGS_DEFAULTS)
    s["pgbackrest_repo"]["local"]["path"] = "/elsewhere"
    s["pg_parameters"]["work_mem"] = "1MB"
    assert settings_mod.PGBACKREST_REPO_DEFAULTS["local"]["path"] == "/pg/backup"
    assert settings_mod.SETTINGS_DEFAULTS["pg_parameters"] == {}


@pytest.mark.parametrize(
    "version, repo, found",
    [
        (15, "", []),
        (15, "pgdg", []),
        (16, "pgdg", []),
        (18, "http://apt.example/pgdg", []),
        (
            17,
            "",
            [
                "cluster pg-test, host 10.10.10.11: pg_version = 17: Debian 12 ships PostgreSQL 15 "
                "only: apt would find no postgresql-17 and the deployment would stop midway; fix: "
                "set pg_version: 15, or configure an apt repository that carries postgresql-17 on "
                "the nodes (the PostgreSQL project's, PGDG) and name it in pg_version_repo"
            ],
        ),
        (
            16,
            None,
            [
                "cluster pg-test, host 10.10.10.11: pg_version = 16: Debian 12 ships PostgreSQL 15 "
                "only: apt would find no postgresql-16 and the deployment would stop midway; fix: "
                "set pg_version: 15, or configure an apt repository that carries postgresql-16 on "
                "the nodes (the PostgreSQL project's, PGDG) and name it in pg_version_repo"
            ],
        ),
    ],
)
def test_pg_version_needs_a_repository_beyond_debian(version, repo, found):
    settings = {"pg_version": version, "pg_version_repo": repo}
    assert [
        str(p) for p in settings_mod.check_config_settings(settings, cluster="pg-test", host="10.10.10.11")
    ] == found


@pytest.mark.parametrize("field, value", [("pg_version", "15"), ("pg_port", "5433"), ("patroni_port", " 8008")])
def test_a_number_given_as_a_string_says_how_to_pass_it(field, value):
    """-e pg_version=15 passes the string '15': the fix says how to pass
    the number (hand-written expectation for pg_version)."""
    found = [str(p) for p in settings_mod.check_config_settings({field: value}, cluster="pg-test")]
    assert len(found) == 1
    assert found[0].endswith(
        "%r is a string: write it without quotes in the inventory, or on the command line "
        "as JSON (-e '{\"%s\": %s}'), since -e %s=... always passes a string" % (value, field, value.strip(), field)
    )
    if field == "pg_version":
        assert found[0] == (
            "cluster pg-test: pg_version = '15': is not a supported PostgreSQL major version; "
            "fix: use a major version such as 15 (Debian 12 ships 15); '15' is a string: write "
            "it without quotes in the inventory, or on the command line as JSON "
            "(-e '{\"pg_version\": 15}'), since -e pg_version=... always passes a string"
        )


BAD_SETTINGS = [
    ({"pg_port": "5432"}, "pg_port"),
    ({"pg_port": 70000}, "pg_port"),
    ({"pgbouncer_port": 5432}, "pg_port"),
    ({"pg_version": 9}, "pg_version"),
    ({"pg_version": 17}, "pg_version"),
    ({"pg_version": 15, "pg_version_repo": ["pgdg"]}, "pg_version_repo"),
    ({"pg_dbsu": "post gres"}, "pg_dbsu"),
    ({"pg_data": "pg/data"}, "pg_data"),
    ({"pg_data": "/"}, "pg_data"),
    ({"pg_conf_dir": "/pg/conf/"}, "pg_conf_dir"),
    ({"pg_log_dir": "/pg/my logs"}, "pg_log_dir"),
    ({"pg_bin_dir": "bin"}, "pg_bin_dir"),
    ({"pg_checksum": "yes"}, "pg_checksum"),
    ({"pg_replication_password": ""}, "pg_replication_password"),
    ({"patroni_password": 12345}, "patroni_password"),
    ({"patroni_username": "a:b"}, "patroni_username"),
    ({"pg_pwd_enc": "sha"}, "pg_pwd_enc"),
    ({"pg_locale": "en US"}, "pg_locale"),
    ({"pg_encoding": "utf-8"}, "pg_encoding"),
    ({"pg_libs": "pg_stat_statements; drop"}, "pg_libs"),
    ({"pg_libs": "/usr/lib/x.so"}, "pg_libs"),
    ({"pg_libs": "$libdir/../x"}, "pg_libs"),
    ({"pg_libs": "$PGLIB/x"}, "pg_libs"),
    ({"pg_parameters": ["work_mem=1MB"]}, "pg_parameters"),
    ({"pg_parameters": {"Work Mem": "1MB"}}, "pg_parameters.Work Mem"),
    ({"pg_parameters": {"port": 5433}}, "pg_parameters.port"),
    ({"pg_parameters": {"work_mem": None}}, "pg_parameters.work_mem"),
    ({"pg_parameters": {"max_connections": 10}}, "pg_parameters.max_connections"),
    ({"pg_parameters": {"wal_level": "minimal"}}, "pg_parameters.wal_level"),
    ({"pg_parameters": {"track_commit_timestamp": "maybe"}}, "pg_parameters.track_commit_timestamp"),
    ({"patroni_watchdog_mode": "on"}, "patroni_watchdog_mode"),
    ({"patroni_tags": {"nofailover": "yes"}}, "patroni_tags.nofailover"),
    ({"patroni_tags": {"replicatefrom": 3}}, "patroni_tags.replicatefrom"),
    ({"patroni_tags": "nofailover"}, "patroni_tags"),
    ({"etcd_protocol": "grpc"}, "etcd_protocol"),
    ({"etcd_username": "u"}, "etcd_password"),
    ({"etcd_password": "p"}, "etcd_username"),
    ({"etcd_cacert": "ca.crt"}, "etcd_cacert"),
    ({"pgbouncer_poolmode": "txn"}, "pgbouncer_poolmode"),
    ({"pgbouncer_sslmode": "on"}, "pgbouncer_sslmode"),
    ({"pgbouncer_auth_query": "true"}, "pgbouncer_auth_query"),
    ({"pgbouncer_default_pool_size": 0}, "pgbouncer_default_pool_size"),
    ({"pgbouncer_max_client_conn": "many"}, "pgbouncer_max_client_conn"),
    ({"pgbackrest_process_max": 0}, "pgbackrest_process_max"),
    ({"pgbackrest_enabled": "no"}, "pgbackrest_enabled"),
    ({"mask_secrets": 1}, "mask_secrets"),
    ({"pgbackrest_method": "nas"}, "pgbackrest_method"),
    ({"pgbackrest_repo": ["local"]}, "pgbackrest_repo"),
    ({"pgbackrest_repo": {"local": "/pg/backup"}}, "pgbackrest_repo.local"),
    ({"pgbackrest_repo": {"local": {"retention_full": 2}}}, "pgbackrest_repo.local.path"),
    ({"pgbackrest_repo": {"local": {"path": "backup", "retention_full": 2}}}, "pgbackrest_repo.local.path"),
    ({"pgbackrest_repo": {"local": {"path": "/b"}}}, "pgbackrest_repo.local.retention_full"),
    ({"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 0}}}, "pgbackrest_repo.local.retention_full"),
    (
        {"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "retention-full-type": "count"}}},
        "pgbackrest_repo.local.retention-full-type",
    ),
    (
        {"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "retention_full_type": "days"}}},
        "pgbackrest_repo.local.retention_full_type",
    ),
    (
        {"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "bundle": "yes"}}},
        "pgbackrest_repo.local.bundle",
    ),
    ({"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "bundle": 1}}}, "pgbackrest_repo.local.bundle"),
    (
        {"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "bundle": "n", "block": "y"}}},
        "pgbackrest_repo.local.block",
    ),
    ({"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "block": True}}}, "pgbackrest_repo.local.block"),
    (
        {"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "bundle": False, "block": True}}},
        "pgbackrest_repo.local.block",
    ),
    (
        {"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "cipher_type": "aes-256-cbc"}}},
        "pgbackrest_repo.local.cipher_pass",
    ),
    (
        {
            "pgbackrest_method": "minio",
            "pgbackrest_repo": {
                "minio": {
                    "type": "s3",
                    "path": "/p",
                    "retention_full": 7,
                    "s3_region": "r",
                    "s3_bucket": "b",
                    "s3_key": "k",
                    "s3_key_secret": "s",
                }
            },
        },
        "pgbackrest_repo.minio.s3_endpoint",
    ),
    (
        {
            "pgbackrest_method": "minio",
            "pgbackrest_repo": {
                "minio": {
                    "type": "s3",
                    "path": "/p",
                    "retention_full": 7,
                    "s3_endpoint": "e",
                    "s3_region": "r",
                    "s3_bucket": "b",
                }
            },
        },
        "pgbackrest_repo.minio.s3_key_secret",
    ),
    (
        {
            "pgbackrest_method": "minio",
            "pgbackrest_repo": {
                "minio": {
                    "type": "s3",
                    "path": "/p",
                    "retention_full": 7,
                    "s3_endpoint": "e",
                    "s3_region": "r",
                    "s3_bucket": "b",
                    "s3_key_type": "auto",
                    "storage_port": 0,
                }
            },
        },
        "pgbackrest_repo.minio.storage_port",
    ),
    ({"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "type": "nfs"}}}, "pgbackrest_repo.local.type"),
]


@pytest.mark.parametrize("bad, field", BAD_SETTINGS, ids=[f for _, f in BAD_SETTINGS])
def test_check_config_settings_finds(bad, field):
    found = settings_mod.check_config_settings(bad, cluster="pg-test", host="10.10.10.11")
    assert field in [p.field for p in found], [str(p) for p in found]
    for p in found:
        assert p.cluster == "pg-test" and p.host == "10.10.10.11"
        assert p.what and p.fix
        assert str(p).startswith("cluster pg-test, host 10.10.10.11: ")


def test_check_config_settings_accepts():
    good = {
        "patroni_watchdog_mode": False,  # YAML's reading of `off`
        "pg_parameters": {
            "max_connections": 25,
            "wal_level": "replica",
            "hot_standby_feedback": True,
            "work_mem": 8192,
            "auto_explain.log_min_duration": "1s",
            "track_commit_timestamp": True,
        },
        "patroni_tags": {"nofailover": True, "replicatefrom": "pg-test-2", "zone": "b"},
        "etcd_username": "root",
        "etcd_password": "x",
        "pgbackrest_method": "minio",
        "pgbackrest_repo": {
            "minio": {
                "type": "s3",
                "path": "/p",
                "retention_full": 7,
                "s3_endpoint": "e",
                "s3_region": "r",
                "s3_bucket": "b",
                "s3_key_type": "auto",
            }
        },
        "pgbackrest_process_max": 4,
        "pg_bin_dir": "/usr/lib/postgresql/15/bin",
    }
    assert settings_mod.check_config_settings(good) == []


def test_secrets_are_hidden_in_problems():
    found = settings_mod.check_config_settings(
        {"pgbackrest_repo": {"local": {"path": "/b", "retention_full": 2, "cipher_pass": ["Sekrit"]}}}
    )
    assert found and all("Sekrit" not in str(p) for p in found)


def test_generators_raise_with_every_problem():
    hv, groups = sandbox()
    inv = validate.require(model_mod.load(hv, groups))
    cplan, iplan = plans(inv, "10.10.10.12")
    bad = settings_mod.build_settings(hv["10.10.10.12"])
    bad.update(pg_port="5432", pgbouncer_sslmode="on")
    for fn in (patroni_conf.patroni_config, pgbouncer_ini.pgbouncer_ini, pgbackrest_conf.pgbackrest_conf):
        with pytest.raises(ModelError) as err:
            fn(cplan, iplan, bad)
        text = str(err.value)
        assert "2 problem(s)" in text
        assert "cluster pg-test, host 10.10.10.12: pg_port = '5432'" in text
        assert "pgbouncer_sslmode = 'on'" in text


def test_secret_warnings():
    assert settings_mod.secret_warnings({}) == []
    warned = settings_mod.secret_warnings({"pgbackrest_method": "minio"})
    assert [w.split()[0] for w in warned] == [
        "pgbackrest_repo.minio.cipher_pass",
        "pgbackrest_repo.minio.s3_key_secret",
    ]
    assert settings_mod.secret_warnings({"pgbackrest_method": "minio", "pgbackrest_enabled": False}) == []


def test_ini_lines():
    sections = [["a", [["k", "v"], ["x", "1"]]], ["b", []], ["c", [["y", "z"]]]]
    assert ini_text.ini_lines(sections) == ["[a]", "k = v", "x = 1", "", "[b]", "", "[c]", "y = z"]
    assert ini_text.ini_lines(sections, separator="=")[1] == "k=v"


# ---------------------------------------------------------------- templates


def render(template, **variables):
    """Render a role template through Ansible's own templar (the template
    module's engine, trim_blocks on)."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    with open(os.path.join(REPO, template)) as handle:
        source = handle.read()
    templar = Templar(loader=DataLoader(), variables=variables)
    return templar.template(trust_as_template(source))


HEADER = "generated by pigpen.pgsql; do not edit"


@pytest.mark.parametrize("host", ["10.10.10.10", "10.10.10.11", "10.10.10.13"])
def test_patroni_template_round_trip(host):
    p, _, _, _ = files(sandbox(), host, mask_secrets=True)
    text = render("roles/patroni/templates/patroni.yml.j2", patroni_config=p)
    lines = text.splitlines()
    assert lines[0] == "# Patroni configuration of %s, cluster %s" % (p["name"], p["scope"])
    assert lines[1] == "# " + HEADER
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert yaml.safe_load(text) == p
    # One line per entry: long HBA lines are not folded.
    assert "  - local   all             postgres" in text
    assert "mode: 'off'" in text


def test_pgbouncer_template():
    _, pgb, _, _ = files(sandbox(), "10.10.10.10")
    text = render("roles/pgbouncer/templates/pgbouncer.ini.j2", pgbouncer_ini=pgb)
    assert text == "# pgbouncer.ini: %s\n\n%s\n" % (HEADER, "\n".join(ini_text.ini_lines(pgb)))
    assert "\nmeta = host=/var/run/postgresql port=5432 dbname=meta\n" in text


def test_pgbackrest_template():
    _, _, conf, _ = files(sandbox(), "10.10.10.11", pgbackrest_method="minio", mask_secrets=True)
    text = render("roles/pgbackrest/templates/pgbackrest.conf.j2", pgbackrest_conf=conf)
    assert text == "# pgbackrest.conf: %s\n\n%s\n" % (HEADER, "\n".join(ini_text.ini_lines(conf, separator="=")))
    assert "\n[pg-test]\npg1-path=/pg/data\n" in text
    assert "repo1-cipher-pass=%s\n" % settings_mod.MASK in text


def test_render_tasks_use_the_templates():
    for role, template, var in (
        ("patroni", "patroni.yml.j2", "patroni_conf_dir"),
        ("pgbackrest", "pgbackrest.conf.j2", "pgbackrest_conf_dir"),
    ):
        with open(os.path.join(REPO, "roles", role, "tasks", "render.yml")) as handle:
            tasks = yaml.safe_load(handle)
        args = tasks[0]["ansible.builtin.template"]
        assert args["src"] == template
        assert var in args["dest"]
        assert args["mode"] == "0600"


# ---------------------------------------------------------------- properties

ROLES = st.sampled_from(["replica", "replica", "offline"])


@st.composite
def clusters(draw):
    """A pg-test cluster with a random HA plan, profile, size and members,
    plus random settings."""
    rto = draw(st.one_of(st.sampled_from(["fast", "norm", "safe", "wide"]), st.integers(10, 3600)))
    rpo = draw(st.one_of(st.just(0), st.integers(0, 1 << 30)))
    conf = draw(st.sampled_from(["oltp", "olap", "crit", "tiny"]))
    n = draw(st.integers(1, 5))
    hosts = {"10.10.10.11": {"pg_seq": 1, "pg_role": "primary"}}
    for i in range(2, n + 1):
        hosts["10.10.10.%d" % (10 + i)] = {"pg_seq": i, "pg_role": draw(ROLES), "pg_offline_query": draw(st.booleans())}
    cvars = {
        "pg_rto": rto,
        "pg_rpo": rpo,
        "pg_conf": conf,
        "ansible_memtotal_mb": draw(st.sampled_from([1024, 4096, 16384, 262144])),
        "ansible_processor_vcpus": draw(st.sampled_from([1, 2, 8, 64])),
    }
    overrides = {
        "pgbackrest_method": draw(st.sampled_from(["local", "minio"])),
        "pgbouncer_auth_query": draw(st.booleans()),
        "pgbouncer_sslmode": draw(st.sampled_from(settings_mod.SSL_MODES)),
        "pgbackrest_enabled": draw(st.booleans()),
        "mask_secrets": draw(st.booleans()),
    }
    return pg_test(hosts, **cvars), overrides


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(clusters())
def test_property_deterministic_and_timing_rule(case):
    test, overrides = case
    inventory = sandbox(test=test)
    snapshot = copy.deepcopy(inventory)
    for host in test["hosts"]:
        first = files(inventory, host, **overrides)[:3]
        again = files(copy.deepcopy(snapshot), host, **overrides)[:3]
        assert first == again
        p = first[0]
        assert yaml.safe_dump(p, sort_keys=False) == yaml.safe_dump(again[0], sort_keys=False)
        dcs = p["bootstrap"]["dcs"]
        assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
        params = dcs["postgresql"]["parameters"]
        assert int(params["max_connections"]) >= 25
        assert list(params) == sorted(params)
        local = p["postgresql"]["parameters"]
        assert list(local) == sorted(local)
        assert not set(local) & set(params)
        assert p["tags"]["nofailover"] == (test["hosts"][host]["pg_role"] == "offline")
        assert yaml.safe_load(yaml.safe_dump(p)) == p
    assert inventory == snapshot


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["fast", "norm", "safe", "wide"]) | st.integers(10, 3600))
def test_property_timing_rule_every_rto(rto):
    p, _, _, _ = files(sandbox(test=pg_test(pg_rto=rto)), "10.10.10.12")
    dcs = p["bootstrap"]["dcs"]
    assert dcs["loop_wait"] + 2 * dcs["retry_timeout"] <= dcs["ttl"]
    assert dcs["primary_start_timeout"] <= dcs["ttl"]


@pytest.mark.parametrize(
    "mode, rto, expected",
    [
        ("automatic", "norm", {"mode": "automatic", "safety_margin": 5}),
        ("required", "wide", {"mode": "required", "safety_margin": 15}),
        (False, "norm", {"mode": "off", "safety_margin": 5}),  # YAML's unquoted off
    ],
)
def test_patroni_watchdog_mode_and_margin(mode, rto, expected):
    """patroni_watchdog_mode reaches Patroni with the RTO plan's safety
    margin (docs/patroni.md#watchdog)."""
    hv, groups = sandbox()
    for host in hv:
        hv[host].update({"patroni_watchdog_mode": mode, "pg_rto": rto})
    p, _, _, _ = files((hv, groups), "10.10.10.11")
    assert p["watchdog"] == expected


@pytest.mark.parametrize(
    "host, what",
    [
        ("10.10.10.12", "is a member of the cluster it backs up"),
        ("10.10.10.99", "is not a host of the inventory"),
    ],
)
def test_repository_host_must_be_another_inventory_host(host, what):
    repos = {"backup": dict(BACKUP_REPO["backup"], host=host)}
    hostvars, groups = sandbox(test=pg_test(pgbackrest_method="backup", pgbackrest_repo=repos))
    found = validate.problems(model_mod.load(hostvars, groups))
    assert [(p.cluster, p.field, p.value) for p in found] == [("pg-test", "pgbackrest_repo.backup.host", host)]
    assert what in found[0].what


def test_repository_host_on_the_infra_node_is_accepted():
    hostvars, groups = sandbox(test=pg_test(pgbackrest_method="backup", pgbackrest_repo=BACKUP_REPO))
    assert validate.problems(model_mod.load(hostvars, groups)) == []


def test_default_backup_repository_is_on_the_first_infra_node():
    inventory = sandbox(test=pg_test(pgbackrest_method="backup"))
    _, _, conf, _ = files(inventory, "10.10.10.13")
    assert section(conf, "global")[0] == ["repo1-host", "10.10.10.10"]
    assert section(conf, "global:server") == [["tls-server-auth", "pgbackrest-repo-10.10.10.10=pg-test"]]
    rh = repo_host(inventory, "10.10.10.13")
    assert (rh["host"], rh["address"], rh["path"]) == ("10.10.10.10", "10.10.10.10", "/pg/backup")
    hostvars, groups = inventory
    groups = dict(groups, infra=[])
    found = validate.problems(model_mod.load(hostvars, groups))
    assert [(p.field, p.value, p.what) for p in found] == [
        ("pgbackrest_repo.backup.host", "infra", "names a group without hosts")
    ]


@pytest.mark.parametrize(
    "etcd_vars, pg_vars, expected",
    [
        # the etcd group on plain HTTP: Patroni too
        ({"etcd_tls_enabled": False}, {}, {"protocol": "http"}),
        # an etcd managed elsewhere: the inventory's protocol and CA
        (
            {},
            {"etcd_protocol": "https", "etcd_cacert": "/etc/ssl/etcd-ca.pem"},
            {"protocol": "https", "cacert": "/etc/ssl/etcd-ca.pem"},
        ),
        # its protocol without a CA: the system's CAs
        ({"etcd_tls_enabled": False}, {"etcd_protocol": "https"}, {"protocol": "https"}),
    ],
)
def test_patroni_etcd_protocol_and_ca(etcd_vars, pg_vars, expected):
    hostvars, groups = sandbox()
    hostvars["10.10.10.10"].update(etcd_vars)  # the etcd member
    p = files((hostvars, groups), "10.10.10.11", **pg_vars)[0]
    assert {k: v for k, v in p["etcd3"].items() if k in ("protocol", "cacert")} == expected
