# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/packages.py: which packages a node still lacks."""

from __future__ import annotations

import os

import pytest
import yaml
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.filter import pgsql
from ansible_collections.pigpen.pgsql.plugins.module_utils.packages import (
    _AFTER_POSTGRES,
    after_postgres,
    missing,
)

ROLES = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4, "roles"))


def role_default(role, variable):
    with open(os.path.join(ROLES, role, "meta", "argument_specs.yml"), encoding="utf-8") as fh:
        specs = yaml.safe_load(fh)["argument_specs"]["main"]["options"]
    return specs[variable]["default"]


INSTALLED = {"patroni": "3.0.2-1", "postgresql-15": "15.14-0+deb12u1", "libc6": "2.36-9+deb12u4"}


@pytest.mark.parametrize(
    "wanted, expected",
    [
        (["patroni", "postgresql-15"], []),
        (["patroni", "haproxy"], ["haproxy"]),
        (["haproxy", "haproxy", "pgbouncer"], ["haproxy", "pgbouncer"]),  # no repeats, order kept
        (["libc6:amd64"], []),  # an architecture qualifier
        (["patroni=3.0.2-1"], []),  # the pinned version is there
        (["patroni=3.0.*"], []),  # apt's wildcard
        (["patroni=3.1.0-1"], ["patroni=3.1.0-1"]),  # another version is there
        (["patroni>=3.0"], ["patroni>=3.0"]),  # apt judges comparisons
        (["/tmp/pkg.deb"], ["/tmp/pkg.deb"]),  # so a path
        (["", " patroni "], []),  # blanks are ignored
        ([], []),
        (None, []),
    ],
)
def test_missing_table(wanted, expected):
    assert missing(wanted, INSTALLED) == expected


def test_unknown_facts_mean_everything_is_missing():
    assert missing(["patroni", "haproxy"], None) == ["patroni", "haproxy"]


def test_filter_reads_the_dpkg_fact():
    facts = {"dpkg_packages": INSTALLED}
    assert pgsql.pkgs_missing(["patroni", "haproxy"], facts) == ["haproxy"]
    assert pgsql.pkgs_missing("patroni", facts) == []
    # before dpkg_facts ran (or on a host where it could not): apt decides
    assert pgsql.pkgs_missing(["patroni"], {}) == ["patroni"]
    assert pgsql.pkgs_missing(["patroni"], None) == ["patroni"]


NAMES = st.from_regex(r"[a-z0-9][a-z0-9+.\-]{0,12}", fullmatch=True)


@given(st.dictionaries(NAMES, st.from_regex(r"[0-9][0-9a-z.+~\-]{0,8}", fullmatch=True)), st.lists(NAMES))
def test_missing_is_exactly_the_names_not_installed(installed, wanted):
    out = missing(wanted, installed)
    assert out == list(dict.fromkeys(n for n in wanted if n not in installed))
    # installing what is missing leaves nothing missing
    assert missing(wanted, {**installed, **{n: "1" for n in out}}) == []


# ------------------------------------------------ packages after PostgreSQL's

EXPORTERS = ["prometheus-node-exporter", "prometheus-postgres-exporter", "prometheus-pgbouncer-exporter"]
DEFAULT_AFTER = ["patroni", "pgbouncer", "python3-psycopg2", "haproxy", *EXPORTERS]
VIP = ["iproute2", "iputils-arping"]


@pytest.mark.parametrize(
    "host_vars, expected",
    [
        ({}, DEFAULT_AFTER),
        ({"pg_vip_enabled": True}, ["patroni", "pgbouncer", "python3-psycopg2", "haproxy", *VIP, *EXPORTERS]),
        ({"pg_vip_enabled": "yes"}, ["patroni", "pgbouncer", "python3-psycopg2", "haproxy", *VIP, *EXPORTERS]),
        # no pgbouncer: no pgbouncer exporter either, whatever its switch says
        ({"pgbouncer_enabled": False}, ["patroni", "haproxy", *EXPORTERS[:2]]),
        ({"pgbouncer_enabled": False, "pgbouncer_exporter_enabled": True}, ["patroni", "haproxy", *EXPORTERS[:2]]),
        (
            {"pgbouncer_exporter_enabled": False},
            ["patroni", "pgbouncer", "python3-psycopg2", "haproxy", *EXPORTERS[:2]],
        ),
        ({"haproxy_enabled": "false"}, ["patroni", "pgbouncer", "python3-psycopg2", *EXPORTERS]),
        ({"exporters_enabled": False}, ["patroni", "pgbouncer", "python3-psycopg2", "haproxy"]),
        # the role's own switch wins over the vocabulary's
        ({"node_exporter_enabled": False}, ["patroni", "pgbouncer", "python3-psycopg2", "haproxy", *EXPORTERS[1:]]),
        ({"node_exporter_enabled": False, "exporters_node_enabled": True}, DEFAULT_AFTER),
        (
            {"pg_exporter_enabled": False},
            ["patroni", "pgbouncer", "python3-psycopg2", "haproxy", EXPORTERS[0], EXPORTERS[2]],
        ),
        ({"pgbouncer_exporter_enabled": False, "exporters_pgbouncer_enabled": "yes"}, DEFAULT_AFTER),
        # a role's list from the inventory replaces its default; repeats dropped
        (
            {"patroni_packages": ["patroni", "python3-etcd3"], "haproxy_packages": ["haproxy=2.6.*"]},
            ["patroni", "python3-etcd3", "pgbouncer", "python3-psycopg2", "haproxy=2.6.*", *EXPORTERS],
        ),
        (
            {"pg_vip_enabled": True, "vip_packages": ["iproute2"], "patroni_packages": ["iproute2", "patroni"]},
            ["iproute2", "patroni", "pgbouncer", "python3-psycopg2", "haproxy", *EXPORTERS],
        ),
        ({"patroni_packages": []}, DEFAULT_AFTER[1:]),
        ({"haproxy_enabled": None}, DEFAULT_AFTER),  # unset as null: the default
    ],
)
def test_after_postgres_table(host_vars, expected):
    assert after_postgres(host_vars) == expected
    assert pgsql.pg_later_role_packages(host_vars) == expected


@given(
    st.fixed_dictionaries(
        {},
        optional={
            "pgbouncer_enabled": st.booleans(),
            "haproxy_enabled": st.booleans(),
            "pg_vip_enabled": st.booleans(),
            "exporters_enabled": st.booleans(),
            "node_exporter_enabled": st.booleans(),
            "pg_exporter_enabled": st.booleans(),
            "pgbouncer_exporter_enabled": st.booleans(),
        },
    )
)
def test_after_postgres_properties(host_vars):
    out = after_postgres(host_vars)
    assert len(out) == len(set(out))
    assert "patroni" in out  # every PostgreSQL node runs Patroni
    assert ("pgbouncer" in out) == host_vars.get("pgbouncer_enabled", True)
    assert ("haproxy" in out) == host_vars.get("haproxy_enabled", True)
    assert ("iputils-arping" in out) == host_vars.get("pg_vip_enabled", False)
    if "prometheus-pgbouncer-exporter" in out:  # only beside pgbouncer
        assert "pgbouncer" in out
    if not host_vars.get("exporters_enabled", True):
        assert not [p for p in out if p.startswith("prometheus-")]


def test_after_postgres_defaults_are_the_roles():
    """The defaults here are the roles' own (argument_specs), and the
    exporter packages are the ones the exporters role installs."""
    for variable, default, _switches in _AFTER_POSTGRES:
        if variable is None:
            continue
        role = variable.rsplit("_packages", 1)[0]
        assert list(default) == role_default(role, variable), variable
    with open(os.path.join(ROLES, "exporters", "tasks", "install.yml"), encoding="utf-8") as fh:
        install = fh.read()
    for _variable, default, _switches in _AFTER_POSTGRES:
        for package in default:
            if package.startswith("prometheus-"):
                assert "'%s'" % package in install, package
