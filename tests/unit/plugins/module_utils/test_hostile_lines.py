# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Values that would add lines of their own to a file another program
parses (cron, dnsmasq's hosts files and configuration, resolv.conf) are
refused before any node is touched.

Python's ``$`` matches before a final newline, so every pattern of the
model ends with ``\\Z``; and an IPv6 scope ID (``fe80::1%<anything>``) is
never taken for an address."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import dns, model, validate
from inv import build, pg_test


def _fields(inv):
    return {(p.field, p.host) for p in validate.problems(inv)}


@pytest.mark.parametrize(
    "cvars, field",
    [
        ({"pgbackrest_drill_dir": "/pg/tmp\n"}, "pgbackrest_drill_dir"),
        ({"pgbackrest_drill_tables": ["test.public.orders\n"]}, "pgbackrest_drill_tables[0]"),
        ({"pg_dbsu": "postgres\n"}, "pg_dbsu"),
        ({"pg_bin_dir": "/usr/lib/postgresql/15/bin\n"}, "pg_bin_dir"),
        ({"pg_dns_suffix": ".db\n"}, "pg_dns_suffix"),
        ({"pg_dns_target": "fe80::1%x\n10.6.6.6 pg-prod"}, "pg_dns_target"),
        ({"pg_dns_target": "fe80::1%eth0"}, "pg_dns_target"),
    ],
)
def test_a_trailing_newline_or_a_scope_id_is_refused(cvars, field):
    found = {f for f, _ in _fields(model_mod.load(*build(pg_test(**cvars))))}
    assert field in found, found


def test_a_cluster_name_with_a_trailing_newline_is_refused():
    hostvars, groups = build(pg_test())
    for host in groups["pg-test"]:
        hostvars[host]["pg_cluster"] = "pg-test\n"
    assert validate.problems(model_mod.load(hostvars, groups))


def test_a_member_address_with_a_scope_id_is_not_an_address():
    assert model.ip_of("fe80::1%eth0") is None
    assert model.ip_of("fe80::1") == "fe80::1"
    assert dns.target_address("fe80::1%x\n10.6.6.6 pg-prod") is None


@given(
    st.sampled_from(["pg-test", "10.10.10.11", "/pg/tmp", "test.orders"]),
    st.sampled_from(["\n", "\r\n", "\n10.6.6.6 evil"]),
)
def test_every_model_pattern_refuses_what_follows_a_newline(good, tail):
    patterns = [model.CLUSTER_NAME, dns.LABEL]
    for pattern in patterns:
        assert not pattern.match(good + tail)


# node_dns_* (every host) and dns_* (infra hosts): hand-checked cases
NODE_BAD = [
    ({"node_dns_servers": ["10.10.10.10\nsearch evil.com"]}, "node_dns_servers[0]"),
    ({"node_dns_servers": ["infra.example"]}, "node_dns_servers[0]"),
    ({"node_dns_servers": "10.10.10.10"}, "node_dns_servers"),
    ({"node_dns_servers": ["${admin_ip}"], "admin_ip": None}, "node_dns_servers[0]"),
    ({"node_dns_options": ["options a\noptions b"]}, "node_dns_options[0]"),
    ({"node_dns_options": "options timeout:1"}, "node_dns_options"),
    ({"node_dns_method": "replace"}, "node_dns_method"),
    ({"dns_upstream_servers": ["1.1.1.1\naddress=/#/6.6.6.6"]}, "dns_upstream_servers[0]"),
    ({"dns_upstream_servers": ["1.1.1.1#70000"]}, "dns_upstream_servers[0]"),
    ({"dns_upstream_servers": ["dns.example"]}, "dns_upstream_servers[0]"),
    ({"dns_hosts_dir": "/etc"}, "dns_hosts_dir"),
    ({"dns_hosts_dir": "/etc/dnsmasq.d"}, "dns_hosts_dir"),
    ({"dns_hosts_dir": "/etc/cron.d"}, "dns_hosts_dir"),
    ({"dns_hosts_dir": "/tmp/hosts"}, "dns_hosts_dir"),
    ({"dns_hosts_dir": "etc/hosts.d"}, "dns_hosts_dir"),
    ({"dns_hosts_dir": "/etc/hosts.d\n"}, "dns_hosts_dir"),
]


@pytest.mark.parametrize("hvars, field", NODE_BAD)
def test_node_and_infra_dns_settings_refused(hvars, field):
    hostvars, groups = build(pg_test())
    hostvars["10.10.10.10"].update(hvars)
    found = [p for p in validate.problems(model_mod.load(hostvars, groups)) if p.field == field]
    assert len(found) == 1, [str(p) for p in validate.problems(model_mod.load(hostvars, groups))]
    assert found[0].host == "10.10.10.10" and found[0].fix


@pytest.mark.parametrize(
    "hvars",
    [
        {"node_dns_servers": ["${admin_ip}"]},
        {"node_dns_servers": ["10.10.10.10", " 1.1.1.1 "], "node_dns_method": "overwrite"},
        {"node_dns_options": ["options single-request-reopen timeout:1"]},
        {"node_dns_servers": [], "node_dns_method": "none"},
        {"dns_upstream_servers": ["1.1.1.1", "10.0.0.53#5353", "2001:db8::53"]},
        {"dns_hosts_dir": "/etc/hosts.d"},
        {"dns_hosts_dir": "/srv/dns/hosts"},
    ],
)
def test_node_and_infra_dns_settings_accepted(hvars):
    hostvars, groups = build(pg_test())
    hostvars["10.10.10.10"].update(hvars)
    assert validate.problems(model_mod.load(hostvars, groups)) == []
