# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The node names the node role sets, checked on the controller before any
node is touched (validate.node_name, validate.node_name_problems)."""

import os

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import validate

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def test_patterns_are_the_node_roles():
    with open(os.path.join(REPO, "roles", "node", "vars", "main.yml"), encoding="utf-8") as handle:
        role = yaml.safe_load(handle)
    assert role["__node_name_pattern"] == validate.NODE_NAME.pattern
    assert role["__node_address_pattern"] == validate.NODE_ADDRESS.pattern


@pytest.mark.parametrize(
    "host, hv, name",
    [
        # nodename first, then the instance name, then a name-like inventory name
        ("10.10.10.11", {"nodename": "db1", "pg_cluster": "pg-test", "pg_seq": 1}, "db1"),
        ("10.10.10.11", {"pg_cluster": "pg-test", "pg_seq": 1}, "pg-test-1"),
        ("10.10.10.11", {"node_name": "n1", "nodename": "db1"}, "n1"),
        ("admin-node", {}, "admin-node"),
        ("db1.example.com", {}, "db1.example.com"),
        # an address (Pigsty's infra and etcd hosts) keeps the name it has
        ("10.10.10.10", {}, None),
        ("fd00::10", {}, None),
        ("Admin_Node", {}, None),
        ("10.10.10.10", {"nodename": ""}, None),
    ],
)
def test_node_name(host, hv, name):
    assert validate.node_name(host, hv) == name


def messages(hostvars, clusters=None):
    clusters = clusters or {}
    return [str(p) for p in validate.node_name_problems([(h, clusters.get(h)) for h in hostvars], hostvars)]


def test_pigsty_shaped_hosts_pass():
    hv = {
        "10.10.10.10": {"infra_seq": 1, "etcd_seq": 1},
        "10.10.10.11": {"pg_cluster": "pg-test", "pg_seq": 1},
        "10.10.10.12": {"pg_cluster": "pg-test", "pg_seq": 2, "nodename": "db-2"},
    }
    assert messages(hv) == []


def test_bad_names_are_named_with_their_fix():
    hv = {
        "10.10.10.11": {"nodename": "DB1"},
        "10.10.10.12": {"pg_cluster": "PG-Test", "pg_seq": 2},
        "10.10.10.13": {"node_name": "bad name", "node_hostname_manage": True},
    }
    assert messages(hv, {"10.10.10.12": "PG-Test"}) == [
        "host 10.10.10.11: nodename = 'DB1': is not a lower-case host name, which the node role sets as the "
        "hostname; fix: write it in lower-case letters, digits, '-' and '.' (labels of 1 to 63 characters, "
        "no '-' at either end), or set node_hostname_manage: false to keep the host's name",
        "cluster PG-Test, host 10.10.10.12: pg_cluster = 'PG-Test': makes the instance name PG-Test-2, which "
        "the node role cannot set as a host name; fix: set nodename on the host (lower-case letters, digits, "
        "'-' and '.')",
        "host 10.10.10.13: node_name = 'bad name': is not a lower-case host name, which the node role sets as "
        "the hostname; fix: write it in lower-case letters, digits, '-' and '.' (labels of 1 to 63 characters, "
        "no '-' at either end), or set node_hostname_manage: false to keep the host's name",
    ]


def test_unmanaged_and_templated_names_are_left_alone():
    hv = {
        "10.10.10.11": {"nodename": "DB1", "node_hostname_manage": False},
        "10.10.10.12": {"nodename": "{{ lookup('env', 'X') }}"},
    }
    assert messages(hv) == []


def test_a_shared_name_is_refused():
    hv = {
        "10.10.10.11": {"pg_cluster": "pg-test", "pg_seq": 1},
        "10.10.10.12": {"nodename": "pg-test-1"},
    }
    assert messages(hv) == [
        "host 10.10.10.12: nodename = 'pg-test-1': is also the node name of 10.10.10.11; /etc/hosts would "
        "name two hosts the same; fix: give each host its own nodename"
    ]


label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(st.lists(st.one_of(label, st.text(max_size=12)), min_size=1, max_size=6, unique=True))
def test_every_name_reported_is_one_the_role_would_refuse_or_a_repeat(names):
    """A problem is reported exactly for the names the node role's rule
    refuses and for the second and later holders of a name."""
    hv = {"10.0.0.%d" % i: {"nodename": n} for i, n in enumerate(names)}
    found = validate.node_name_problems([(h, None) for h in hv], hv)
    bad = {h for h, v in hv.items() if v["nodename"] != "" and not validate.NODE_NAME.match(v["nodename"])}
    assert {p.host for p in found} == bad
