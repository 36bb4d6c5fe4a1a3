# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Pigsty settings this collection does not implement: named in warnings,
once per setting (or group of another module's settings) and cluster."""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import pigsty, validate
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import snapshot
from ansible_collections.pigpen.pgsql.plugins.plugin_utils import role_options
from inv import build, cluster, pg_test

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4))
OWN = role_options.load_specs()
TAIL = " (not implemented by this collection; cluster(s) %s)"


def lines_of(hostvars, groups):
    return validate.pigsty_warnings(model_mod.load(hostvars, groups), own=OWN)


# (cluster vars, expected warning lines for cluster pg-test)
CASES = [
    ("nothing", {}, []),
    (
        "same-values",
        {
            "pg_mode": "pgsql",
            "pg_listen": "0.0.0.0",
            "patroni_ssl_enabled": False,
            "pg_extensions": [],
            "pg_exporters": {},
            "patroni_mode": "default",
            "pg_packages": ["pgsql-main pgsql-common"],
            "pg_reload": True,
            "grafana_enabled": False,
            "etcd_safeguard": False,
            "pg_lc_collate": "C.UTF-8",
            "version": "v4.5.0",
            "pg_rto_plan": {
                "fast": [20, 5, 5, 15, 5, "1s", "500ms", "1s", 3, 3],
                "norm": [30, 5, 10, 25, 5, "2s", "1s", "2s", 3, 3],
            },
        },
        [],
    ),
    (
        "kernel",
        {"pg_mode": "polar"},
        [
            "pg_mode = 'polar': other PostgreSQL kernels (Citus, Babelfish, IvorySQL, PolarDB, "
            "OrioleDB, Percona, ...) are not implemented: the cluster runs Debian's PostgreSQL" + TAIL % "pg-test"
        ],
    ),
    (
        "listen-placeholders",
        {"pg_listen": "${ip},${vip},${lo}"},
        [
            "pg_listen = '${ip},${vip},${lo}': PostgreSQL and pgbouncer listen on every address "
            "(0.0.0.0)" + TAIL % "pg-test"
        ],
    ),
    (
        "libraries",
        {"pg_libs": "$libdir/passwordcheck_cracklib, pg_stat_statements, auto_explain, timescaledb"},
        [
            "pg_libs loads passwordcheck_cracklib, timescaledb, which Debian's "
            "postgresql-<pg_version> package does not ship: PostgreSQL starts only once a "
            "package provides them (postgres_packages_extra)" + TAIL % "pg-test"
        ],
    ),
    (
        "pigsty-ca",
        {"pgbackrest_method": "minio", "pgbackrest_repo": {"minio": {"storage_ca_file": "/etc/pki/ca.crt"}}},
        [
            "pgbackrest_repo.minio.storage_ca_file = '/etc/pki/ca.crt' is Pigsty's CA path, "
            "which this collection does not create: put the object store's CA there, or point "
            "storage_ca_file at pg_ssl_ca (/pg/cert/ca.crt)" + TAIL % "pg-test"
        ],
    ),
    (
        "other-modules",
        {
            "grafana_admin_password": "x",
            "infra_portal": {},
            "minio_seq": 1,
            "redis_node": 1,
            "vip_vrid": 20,
            "docker_enabled": True,
            "grafana_enabled": False,
        },
        [
            "Pigsty DOCKER/APP settings docker_enabled: Docker and its applications are not "
            "deployed" + TAIL % "pg-test",
            "Pigsty INFRA settings grafana_admin_password, infra_portal: Grafana, "
            "VictoriaMetrics/Logs/Traces, Alertmanager, Blackbox, nginx, dnsmasq's static records, "
            "the local package repository and the CA are not deployed" + TAIL % "pg-test",
            "Pigsty MINIO settings minio_seq: MinIO is not deployed: the backup repository is "
            "any S3-compatible endpoint of pgbackrest_repo" + TAIL % "pg-test",
            "Pigsty NODE settings vip_vrid: node identity, tuning, admin user, firewall, "
            "/etc/hosts, crontab, keepalived VIP, node exporter options and log shipping are "
            "not managed (the node role has its own settings, docs/parameters.md)" + TAIL % "pg-test",
            "Pigsty REDIS settings redis_node: Redis is not deployed" + TAIL % "pg-test",
        ],
    ),
    (
        "node-services",
        {
            "haproxy_services": [
                {"name": "minio", "port": 9002, "servers": [{"name": "m1", "ip": "10.10.10.10", "port": 9000}]}
            ]
        },
        [
            "haproxy_services holds Pigsty's node services (e.g. MinIO's): they are not "
            "published; the HAProxy of a member publishes its cluster's services only" + TAIL % "pg-test"
        ],
    ),
    (
        "node-packages",
        {"node_packages": ["openssh-server"]},
        [
            "node_packages = ['openssh-server']: here the base package list of every node, "
            "which the value replaces (in Pigsty: packages added to the defaults): keep acl, "
            "ca-certificates, curl, gnupg, iproute2, jq, less, locales, lsof, procps, "
            "python3-psycopg2, rsync, sudo, tzdata in it and put extra packages in "
            "node_packages_extra" + TAIL % "pg-test"
        ],
    ),
    (
        "database-keys",
        {"pg_databases": [{"name": "app", "strategy": "FILE_COPY", "locale_provider": "icu", "icu_locale": "en-US"}]},
        [
            "pg_databases(app).icu_locale = 'en-US': not applied (the database is created with "
            "PostgreSQL's defaults for it)" + TAIL % "pg-test",
            "pg_databases(app).locale_provider = 'icu': not applied (the database is created "
            "with PostgreSQL's defaults for it)" + TAIL % "pg-test",
            "pg_databases(app).strategy = 'FILE_COPY': not applied (the database is created "
            "with PostgreSQL's defaults for it)" + TAIL % "pg-test",
        ],
    ),
    (
        "own-role-variables",
        {
            "node_timezone": "Asia/Hong_Kong",
            "vip_interval": 500,
            "haproxy_maxconn": 4000,
            "vector_port": 9598,
            "node_packages_extra": ["tmux"],
        },
        [],
    ),
]


@pytest.mark.parametrize("cvars, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_warnings(cvars, expected):
    assert lines_of(*build(pg_test(**cvars))) == expected


def test_each_setting_once_per_cluster_with_every_cluster_named():
    hv, groups = build(
        pg_test(pg_mode="citus", minio_seq=1),
        cluster(
            "pg-a",
            {
                "10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_mode": "citus"},
                "10.10.10.22": {"pg_seq": 2, "pg_role": "replica", "pg_mode": "citus", "minio_seq": 2},
            },
        ),
    )
    lines = lines_of(hv, groups)
    assert [line for line in lines if line.startswith("pg_mode")] == [
        "pg_mode = 'citus': other PostgreSQL kernels (Citus, Babelfish, IvorySQL, PolarDB, "
        "OrioleDB, Percona, ...) are not implemented: the cluster runs Debian's PostgreSQL" + TAIL % "pg-test, pg-a"
    ]
    assert [line for line in lines if "MINIO" in line] == [
        "Pigsty MINIO settings minio_seq: MinIO is not deployed: the backup repository is "
        "any S3-compatible endpoint of pgbackrest_repo" + TAIL % "pg-test, pg-a"
    ]


NAMES = sorted(pigsty.SETTINGS) + [
    "grafana_port",
    "minio_users",
    "redis_mode",
    "node_tune",
    "docker_data",
    "app",
    "juice_instances",
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["pg-test", "pg-a"]),
            st.sampled_from(["10.10.10.11", "10.10.10.12", "10.10.10.21"]),
            st.sampled_from(NAMES),
            st.sampled_from([1, "x", True, None]),
        ),
        max_size=12,
    )
)
def test_property_a_setting_is_named_once_per_cluster(assignments):
    hv, groups = build(pg_test(), cluster("pg-a", {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary"}}))
    for _, host, name, value in assignments:
        hv[host][name] = value
    lines = lines_of(hv, groups)
    named = {}
    for line in lines:
        head, clusters = line.rsplit("; cluster(s) ", 1)
        settings_ = head.split(" = ", 1)[0].split(":", 1)[0]
        if settings_.startswith("Pigsty "):
            settings_ = settings_.split(" settings ", 1)[1]
        for setting in settings_.split(", "):
            for name in clusters.rstrip(")").split(", "):
                named.setdefault((setting, name), 0)
                named[(setting, name)] += 1
    # a setting whose values differ between hosts gets a line per value
    values = {}
    for cls, host, name, value in assignments:
        cls = "pg-a" if host == "10.10.10.21" else "pg-test"
        values.setdefault((name, cls), set()).add(repr(value))
    for (setting, name), count in named.items():
        assert count <= max(1, len(values.get((setting, name), ()))), (setting, name, lines)


def test_role_and_model_variables_are_never_reported():
    for name in list(OWN) + list(validate.MODEL_VARS):
        if name in pigsty.DIFFERENT or name == "haproxy_services":
            continue
        assert pigsty.area_of(name, own=set(OWN) | set(validate.MODEL_VARS)) is None, name


def test_base_packages_are_the_node_role_defaults():
    with open(os.path.join(REPO, "roles", "node", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    assert tuple(defaults["node_packages"]) == pigsty.NODE_BASE_PACKAGES


class LazyHostvars(dict):
    """Like Ansible's hostvars: reading a value may fail (an undefined
    template), listing the names never does."""

    def __init__(self, values, broken=()):
        super().__init__(values)
        self.broken = set(broken)
        self.read = set()

    def __getitem__(self, name):
        self.read.add(name)
        if name in self.broken:
            raise ValueError("undefined variable in %s" % name)
        return super().__getitem__(name)


def test_snapshot_keeps_names_and_reads_only_the_values_it_needs():
    hv, groups = build(
        pg_test(
            grafana_admin_password="{{ vault_grafana }}",
            pg_mode="citus",
            minio_users=[{"access_key": "k"}],
            pg_listen="{{ broken }}",
        )
    )
    lazy = {h: LazyHostvars(v, broken=("pg_listen",)) for h, v in hv.items()}
    snap = snapshot(lazy, groups)
    assert snap["errors"] == []
    member = snap["hostvars"]["10.10.10.11"]
    assert member[pigsty.PRESENT_KEY] == ("grafana_admin_password", "minio_users", "pg_listen", "pg_mode")
    assert "grafana_admin_password" not in lazy["10.10.10.11"].read
    assert "minio_users" not in lazy["10.10.10.11"].read
    assert member["pg_mode"] == "citus"
    inv = model_mod.load(snap["hostvars"], snap["groups"])
    lines = validate.pigsty_warnings(inv, own=OWN)
    assert any(line.startswith("pg_mode = 'citus'") for line in lines)
    assert any(line.startswith("pg_listen = (not evaluated): ") for line in lines)
    assert any(line.startswith("Pigsty INFRA settings grafana_admin_password") for line in lines)
