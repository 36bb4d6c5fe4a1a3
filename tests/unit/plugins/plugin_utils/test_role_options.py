# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Role variables from the inventory, checked against the roles' real
argument_specs before any node is touched."""

from __future__ import annotations

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import validate
from ansible_collections.pigpen.pgsql.plugins.plugin_utils import role_options

SPECS = role_options.load_specs()


def test_every_role_documents_its_variables():
    roles = {role for role, _ in SPECS.values()}
    assert roles == {
        "node",
        "etcd",
        "postgres",
        "patroni",
        "pgbouncer",
        "pgbackrest",
        "haproxy",
        "vip",
        "exporters",
        "vector",
        "dns",
    }
    assert SPECS["etcd_heartbeat_interval"] == ("etcd", SPECS["etcd_heartbeat_interval"][1])


@pytest.mark.parametrize(
    "name, value, role, expected",
    [
        ("etcd_heartbeat_interval", "fast", "etcd", "int"),
        ("patroni_start_timeout", "5 minutes", "patroni", "int"),
        ("exporters_node_enabled", "maybe", "exporters", "bool"),
        ("vip_packages", "iproute2", None, None),  # a string is a one-element list: fine
    ],
)
def test_wrong_types_are_reported_with_the_role(name, value, role, expected):
    found = role_options.check_host("10.10.10.11", "pg-test", {name: value}, SPECS)
    if role is None:
        assert found == []
        return
    assert [(p.cluster, p.host, p.field, p.value) for p in found] == [("pg-test", "10.10.10.11", name, value)]
    assert found[0].fix.startswith("give a value of type %s (roles/%s/meta/argument_specs.yml" % (expected, role))


def test_secrets_are_hidden_and_templates_and_model_vars_left_alone():
    secret = {"x_pin": ("x", {"type": "int", "no_log": True})}
    found = role_options.check_host("h", "etcd", {"x_pin": "1234x"}, secret)
    assert [(p.field, p.value) for p in found] == [("x_pin", "(hidden)")]
    assert "1234x" not in str(found[0])
    assert role_options.check_host("h", None, {"patroni_start_timeout": "{{ x }}"}, SPECS) == []
    assert role_options.check_host("h", None, {"haproxy_maxconn": "lots"}, SPECS, skip=validate.MODEL_VARS) == []


def test_good_values_pass():
    assert (
        role_options.check_host(
            "h",
            None,
            {
                "etcd_heartbeat_interval": 100,
                "patroni_start_timeout": "300",
                "exporters_node_enabled": "yes",
                "vip_packages": ["iproute2"],
            },
            SPECS,
        )
        == []
    )
