# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Cluster DNS: records for every pg_dns_target form, validation, and the
resolv.conf the node role writes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import safety
from ansible_collections.pigpen.pgsql.plugins.module_utils import dns, validate
from inv import build, cluster, pg_meta, pg_test, sandbox

VIP = {"pg_vip_enabled": True, "pg_vip_address": "10.10.10.3/24", "pg_vip_interface": "eth0"}
MEMBERS = [("pg-test-1", "10.10.10.11"), ("pg-test-2", "10.10.10.12"), ("pg-test-3", "10.10.10.13")]


def test_records_of_the_sandbox():
    inv = model_mod.load(*sandbox())
    assert validate.problems(inv) == []
    assert dns.records(inv) == {
        "pg-meta": [("pg-meta", "10.10.10.10"), ("pg-meta-1", "10.10.10.10")],
        # auto with the VIP enabled: the VIP
        "pg-test": [("pg-test", "10.10.10.3")] + MEMBERS,
    }


# pg_dns_target, pg_dns_suffix, VIP on -> the cluster record (None: none),
# checked by hand against Pigsty's description of pg_dns_target.
CASES = [
    ("auto", "", False, ("pg-test", "10.10.10.11")),
    ("auto", "", True, ("pg-test", "10.10.10.3")),
    ("primary", "", True, ("pg-test", "10.10.10.11")),
    ("primary", ".db.example.com", False, ("pg-test.db.example.com", "10.10.10.11")),
    ("vip", "", True, ("pg-test", "10.10.10.3")),
    ("vip", ".pg", True, ("pg-test.pg", "10.10.10.3")),
    ("none", "", True, None),
    ("none", ".db", False, None),
    ("10.20.30.40", "", True, ("pg-test", "10.20.30.40")),
    # Pigsty's pattern also takes a prefix length: the address is used
    ("10.20.30.40/24", "-rw", False, ("pg-test-rw", "10.20.30.40")),
    ("fd00::5", "", False, ("pg-test", "fd00::5")),
]


@pytest.mark.parametrize("target,suffix,vip,expected", CASES)
def test_cluster_record_per_target(target, suffix, vip, expected):
    cvars = dict(VIP) if vip else {}
    cvars.update(pg_dns_target=target, pg_dns_suffix=suffix)
    inv = model_mod.load(*build(pg_test(**cvars)))
    assert validate.problems(inv) == []
    assert dns.records(inv)["pg-test"] == ([expected] if expected else []) + MEMBERS


def test_primary_is_the_inventory_leader_wherever_it_is_listed():
    inv = model_mod.load(
        *build(
            cluster(
                "pg-x",
                {
                    "10.10.10.21": {"pg_seq": 1, "pg_role": "replica"},
                    "10.10.10.22": {"pg_seq": 2, "pg_role": "primary"},
                },
                pg_dns_target="primary",
            )
        )
    )
    assert dns.records(inv)["pg-x"] == [("pg-x", "10.10.10.22"), ("pg-x-1", "10.10.10.21"), ("pg-x-2", "10.10.10.22")]


def test_standby_cluster_resolves_to_its_standby_leader():
    inv = model_mod.load(
        *build(
            pg_test(),
            cluster(
                "pg-dr",
                {
                    "10.10.10.21": {"pg_seq": 1, "pg_role": "standby", "pg_upstream": "10.10.10.11"},
                    "10.10.10.22": {"pg_seq": 2, "pg_role": "replica"},
                },
            ),
        )
    )
    assert dns.records(inv, ["pg-dr"])["pg-dr"][0] == ("pg-dr", "10.10.10.21")


def test_removed_members_leave_the_records():
    inv = model_mod.load(*build(pg_test(**VIP)))
    assert dns.records(inv, without=["10.10.10.13"])["pg-test"] == [("pg-test", "10.10.10.3")] + MEMBERS[:2]
    # ansible_host gives the address of a member named otherwise
    inv = model_mod.load(
        *build(cluster("pg-h", {"db1": {"pg_seq": 1, "pg_role": "primary", "ansible_host": "10.10.10.31"}}))
    )
    assert dns.records(inv) == {"pg-h": [("pg-h", "10.10.10.31"), ("pg-h-1", "10.10.10.31")]}


# value -> (field, what) of the one problem, checked by hand
BAD = [
    ({"pg_dns_target": "master"}, "pg_dns_target", "'master'", "is neither auto, primary, vip, none nor an IP address"),
    (
        {"pg_dns_target": "10.10.10.300"},
        "pg_dns_target",
        "'10.10.10.300'",
        "is neither auto, primary, vip, none nor an IP address",
    ),
    ({"pg_dns_target": True}, "pg_dns_target", "True", "is neither auto, primary, vip, none nor an IP address"),
    (
        {"pg_dns_target": "vip"},
        "pg_dns_target",
        "'vip'",
        "points the cluster name at the VIP, but pg_vip_enabled is not true",
    ),
    (
        {"pg_dns_suffix": ".db..example"},
        "pg_dns_suffix",
        "'.db..example'",
        "makes the cluster's DNS name 'pg-test.db..example'",
    ),
    (
        {"pg_dns_suffix": ".db.example."},
        "pg_dns_suffix",
        "'.db.example.'",
        "makes the cluster's DNS name 'pg-test.db.example.'",
    ),
    ({"pg_dns_suffix": " db"}, "pg_dns_suffix", "' db'", "makes the cluster's DNS name"),
    ({"pg_dns_suffix": ".-db"}, "pg_dns_suffix", "'.-db'", "makes the cluster's DNS name"),
    ({"pg_dns_suffix": "." + "a" * 64}, "pg_dns_suffix", "'." + "a" * 64 + "'", "makes the cluster's DNS name"),
    ({"pg_dns_suffix": 5}, "pg_dns_suffix", "5", "is not a string"),
]


@pytest.mark.parametrize("cvars,fld,shown,what", BAD)
def test_bad_values_are_refused_naming_cluster_field_value_and_fix(cvars, fld, shown, what):
    inv = model_mod.load(*build(pg_test(**cvars)))
    found = [p for p in validate.problems(inv) if p.field.startswith("pg_dns")]
    assert len(found) == 1, [str(p) for p in validate.problems(inv)]
    text = str(found[0])
    assert text.startswith("cluster pg-test: %s = %s: %s" % (fld, shown, what)), text
    assert "; fix: " in text and found[0].host is None


def test_members_must_agree_on_the_dns_settings():
    hostvars, groups = build(pg_test())
    hostvars["10.10.10.12"]["pg_dns_target"] = "primary"
    found = validate.problems(model_mod.load(hostvars, groups))
    assert any(p.field == "pg_dns_target" and "cluster-wide" in p.what for p in found)


def test_names_shared_by_two_clusters_are_refused():
    # pg-test's instance pg-test-1 and the cluster pg-test-1
    inv = model_mod.load(*build(pg_test(), cluster("pg-test-1", {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary"}})))
    found = [str(p) for p in validate.problems(inv) if "DNS name" in p.what]
    assert found == [
        "cluster pg-test-1: pg_dns_suffix = 'pg-test-1': the DNS name pg-test-1 is also an "
        "instance name of cluster pg-test; fix: give the cluster another pg_dns_suffix, rename "
        "one of the clusters, or set pg_dns_target: none"
    ]
    # a suffix that makes the cluster name one of its own instances
    inv = model_mod.load(*build(pg_test(pg_dns_suffix="-1")))
    assert [p.value for p in validate.problems(inv)] == ["pg-test-1"]
    # none: no cluster record, nothing shared
    inv = model_mod.load(
        *build(
            pg_test(), cluster("pg-test-1", {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary"}}, pg_dns_target="none")
        )
    )
    assert validate.problems(inv) == []


def test_pigsty_dns_settings_are_no_longer_reported_as_missing():
    inv = model_mod.load(*build(pg_meta(pg_dns_suffix=".db", pg_dns_target="primary")))
    assert not any("pg_dns" in line for line in validate.pigsty_warnings(inv))


# ---- property: one record per instance, DNS names, unique names

NAME = st.from_regex(r"[a-z][a-z0-9]{0,6}(-[a-z0-9]{1,4})?", fullmatch=True).filter(
    lambda n: n not in safety.RESERVED_CLUSTER_NAMES
)
TARGET = st.one_of(
    st.sampled_from(["auto", "primary", "vip", "none"]), st.builds("10.99.0.{}".format, st.integers(1, 254))
)
SUFFIX = st.sampled_from(["", ".db", ".db.example.com", "-rw", ".pg.local"])


@settings(max_examples=60, deadline=None)
@given(
    clusters=st.lists(
        st.tuples(NAME, st.integers(1, 4), TARGET, SUFFIX, st.booleans()),
        min_size=1,
        max_size=4,
        unique_by=lambda c: c[0],
    )
)
def test_every_instance_has_exactly_one_record(clusters):
    specs = []
    for i, (name, size, target, suffix, vip) in enumerate(clusters):
        # each cluster on a subnet of its own, its VIP at .3
        hosts = {
            "10.10.%d.%d" % (i + 1, 10 + seq): {"pg_seq": seq, "pg_role": "primary" if seq == 1 else "replica"}
            for seq in range(1, size + 1)
        }
        cvars = {"pg_dns_target": target, "pg_dns_suffix": suffix}
        if vip:
            cvars.update(pg_vip_enabled=True, pg_vip_address="10.10.%d.3/24" % (i + 1), pg_vip_interface="eth0")
        specs.append(cluster(name, hosts, **cvars))
    inv = model_mod.load(*build(*specs))
    found = validate.problems(inv)
    out = dns.records(inv)
    for name, size, target, suffix, vip in clusters:
        recs = out[name]
        members = inv.clusters[name].members
        # one record per instance, with the member's address
        for m in members:
            assert [ip for n, ip in recs if n == m.instance] == [m.ip]
        # and one for the cluster name, unless none (or vip without a VIP)
        has_cluster = target != "none" and (target != "vip" or vip)
        assert len(recs) == size + (1 if has_cluster else 0)
        if has_cluster:
            assert recs[0][0] == name + suffix
        for rec_name, address in recs:
            assert dns.is_dns_name(rec_name)
            assert all(re.fullmatch(r"(?!-)[a-z0-9-]{1,63}(?<!-)", label) for label in rec_name.split("."))
            assert address.count(".") == 3 or ":" in address
    # a valid inventory never serves a name twice
    if not found:
        names = [n for recs in out.values() for n, _ in recs]
        assert len(names) == len(set(names))
    else:
        assert all(p.field in ("pg_dns_target", "pg_dns_suffix", "pg_cluster") for p in found)


# ---- resolv.conf

PODMAN = "search dns.podman\nnameserver 10.10.10.1\noptions edns0\n"


@pytest.mark.parametrize(
    "method,expected",
    [
        (
            "add",
            dns.RESOLV_HEADER + "\noptions timeout:1\nnameserver 10.10.10.10\n"
            "search dns.podman\nnameserver 10.10.10.1\noptions edns0\n",
        ),
        ("overwrite", dns.RESOLV_HEADER + "\noptions timeout:1\nnameserver 10.10.10.10\n"),
        ("none", PODMAN),
    ],
)
def test_resolv_conf(method, expected):
    out = dns.resolv_conf(PODMAN, ["10.10.10.10"], ["options timeout:1"], method)
    assert out == expected
    assert dns.resolv_conf(out, ["10.10.10.10"], ["options timeout:1"], method) == out


def test_resolv_conf_moves_a_listed_server_first():
    text = "nameserver 10.10.10.1\nnameserver 10.10.10.10\n"
    assert dns.resolv_conf(text, ["10.10.10.10"]) == (
        dns.RESOLV_HEADER + "\nnameserver 10.10.10.10\nnameserver 10.10.10.1\n"
    )


def test_resolv_servers_replaces_admin_ip():
    assert dns.resolv_servers(["${admin_ip}", "10.10.10.10", " 1.1.1.1 "], "10.10.10.10") == ["10.10.10.10", "1.1.1.1"]
    assert dns.resolv_servers(["${admin_ip}"], None) == []


LINE = st.one_of(
    st.builds("nameserver {}".format, st.sampled_from(["10.0.0.1", "10.0.0.2", "10.10.10.10"])),
    st.sampled_from(["search example.com", "options edns0", "# comment", "", "domain x"]),
)


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(LINE, max_size=8),
    servers=st.lists(st.sampled_from(["10.10.10.10", "10.0.0.2", "10.0.0.9"]), min_size=1, max_size=3, unique=True),
    method=st.sampled_from(["add", "overwrite"]),
)
def test_resolv_conf_is_idempotent_and_puts_the_servers_first(lines, servers, method):
    once = dns.resolv_conf("\n".join(lines), servers, ["options timeout:1"], method)
    assert dns.resolv_conf(once, servers, ["options timeout:1"], method) == once
    found = [line.split()[1] for line in once.splitlines() if line.startswith("nameserver ")]
    assert found[: len(servers)] == servers
    assert len(found) == len(set(found)) or method == "add"
