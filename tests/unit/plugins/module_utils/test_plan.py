# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Identity, plans and the extraction of Ansible's lazy hostvars."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import plan, safety, validate
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import snapshot
from inv import build, cluster, pg_test, sandbox


def test_sandbox_identity():
    inv = model_mod.load(*sandbox())
    assert sorted(inv.clusters) == ["pg-meta", "pg-test"]
    assert inv.infra_ips == ["10.10.10.10"]
    test = plan.cluster_plan(inv, "pg-test")
    assert test["identity"] == {
        "cluster": "pg-test",
        "members": ["pg-test-1", "pg-test-2", "pg-test-3"],
        "hosts": ["10.10.10.11", "10.10.10.12", "10.10.10.13"],
        "ips": ["10.10.10.11", "10.10.10.12", "10.10.10.13"],
        "leader": "pg-test-1",
        "leader_host": "10.10.10.11",
        "standby": False,
    }
    assert [s["name"] for s in test["services"]] == [
        "pg-test-primary",
        "pg-test-replica",
        "pg-test-default",
        "pg-test-offline",
    ]
    assert test["etcd"] == {
        "namespace": "/pg",
        "leader_key": "/pg/pg-test/leader",
        "endpoints": ["10.10.10.10:2379"],
        "prefix": "/pg/pg-test/",
        "auth": True,
        # etcd_tls_enabled (default true on the etcd group)
        "protocol": "https",
        "use_proxies": False,
        "username": "pg-test",
    }
    assert test["vip"] == {
        "enabled": True,
        "address": "10.10.10.3/24",
        "ip": "10.10.10.3",
        "prefix": 24,
        "interface": "eth0",
    }
    assert test["pgbouncer"]["users"] == [
        {"name": "dbuser_dba", "pool_mode": "session", "max_user_connections": 16},
        {"name": "dbuser_monitor", "pool_mode": "session", "max_user_connections": 8},
        {"name": "test", "pool_mode": None, "max_user_connections": None},
    ]
    assert [d["name"] for d in test["pgbouncer"]["databases"]] == ["postgres", "test"]

    ident = plan.instance_plan(inv, "10.10.10.13")["identity"]
    assert ident == {
        "cluster": "pg-test",
        "seq": 3,
        "role": "replica",
        "instance": "pg-test-3",
        "nodename": "pg-test-3",
        "host": "10.10.10.13",
        "ip": "10.10.10.13",
        "offline_query": True,
        "weight": 100,
        "upstream": None,
        "upstream_port": None,
        "delay": None,
        "leader": False,
        "labels": {"cls": "pg-test", "ins": "pg-test-3", "ip": "10.10.10.13", "job": "pgsql"},
        "patroni_url": "https://10.10.10.13:8008",
    }


def test_hostname_inventory_with_ansible_host():
    hv, groups = build(
        cluster(
            "pg-app",
            {
                "db-a": {"pg_seq": 1, "pg_role": "primary", "ansible_host": "192.168.5.21", "nodename": "db-a.prod"},
                "db-b": {"pg_seq": 2, "pg_role": "replica", "ansible_host": "192.168.5.22"},
            },
        ),
        infra=(),
        etcd=("192.168.5.20",),
    )
    inv = validate.require(model_mod.load(hv, groups))
    ip = plan.instance_plan(inv, "db-a")
    assert ip["identity"]["ip"] == "192.168.5.21"
    assert ip["identity"]["nodename"] == "db-a.prod"
    assert ip["identity"]["labels"] == {"cls": "pg-app", "ins": "pg-app-1", "ip": "192.168.5.21", "job": "pgsql"}
    svc = plan.cluster_plan(inv, "pg-app")["services"][0]
    assert [(s["name"], s["host"], s["ip"]) for s in svc["servers"]] == [
        ("pg-app-1", "db-a", "192.168.5.21"),
        ("pg-app-2", "db-b", "192.168.5.22"),
    ]
    # the cluster alias of the HBA rules lists the members' IPs
    hba = plan.instance_plan(inv, "db-b")["pg_hba"]
    assert all("db-a" not in line for line in hba)


def test_standby_cluster_with_upstream():
    hv, groups = build(
        pg_test(),
        cluster(
            "pg-test2",
            {
                "10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.11"},
                "10.10.10.22": {"pg_seq": 2, "pg_role": "replica"},
                "10.10.10.23": {"pg_seq": 3, "pg_role": "replica", "pg_upstream": "10.10.10.22"},
            },
        ),
        cluster(
            "pg-delay",
            {
                "10.10.10.31": {"pg_seq": 1, "pg_role": "delayed", "pg_upstream": "10.10.10.11", "pg_delay": "1h"},
            },
        ),
    )
    inv = validate.require(model_mod.load(hv, groups))
    standby = plan.cluster_plan(inv, "pg-test2")
    assert standby["identity"]["standby"] is True
    assert standby["identity"]["leader"] == "pg-test2-1"
    members = {m["instance"]: m for m in standby["members"]}
    assert members["pg-test2-1"]["upstream"] == "10.10.10.11"
    assert members["pg-test2-3"]["upstream"] == "10.10.10.22"  # cascade
    delayed = plan.cluster_plan(inv, "pg-delay")
    assert delayed["identity"]["leader"] == "pg-delay-1"
    assert delayed["members"][0]["delay"] == "1h"
    # role-specific HBA rules: the delayed leader activates `delayed` rules
    rules = [
        {"user": "all", "db": "all", "addr": "intra", "auth": "pwd", "role": "delayed", "title": "delayed readers"}
    ]
    hv["10.10.10.31"]["pg_hba_rules"] = rules
    inv = validate.require(model_mod.load(hv, groups))
    lines = plan.instance_plan(inv, "10.10.10.31")["pg_hba"]
    assert "host    all             all                     10.0.0.0/8         scram-sha-256" in lines


def test_tuning_uses_facts_when_present():
    hv, groups = build(pg_test())
    inv = model_mod.load(hv, groups)
    assert plan.instance_plan(inv, "10.10.10.11")["node"] == {
        "mem_mb": 4096,
        "cpu": 2,
        "disk_gb": None,
        "source": "reference",
    }
    hv["10.10.10.11"].update({"ansible_memtotal_mb": 16384, "ansible_processor_vcpus": 8})
    inv = model_mod.load(hv, groups)
    node = plan.instance_plan(inv, "10.10.10.11")["node"]
    assert node == {"mem_mb": 16384, "cpu": 8, "disk_gb": None, "source": "facts"}
    # shared_buffers is a quarter of memory by default
    assert plan.instance_plan(inv, "10.10.10.11")["tuning"]["shared_buffers"] == "4096MB"
    # an explicit size wins over the facts (containers see the host's memory)
    hv["10.10.10.11"].update({"pg_node_mem_mb": 1024, "pg_node_cpu": 1})
    inv = model_mod.load(hv, groups)
    assert plan.instance_plan(inv, "10.10.10.11")["node"]["source"] == "inventory"
    assert plan.instance_plan(inv, "10.10.10.11")["tuning"]["shared_buffers"] == "256MB"


class Undefined(Exception):
    """Stands in for AnsibleUndefinedVariable."""


class LazyVars(Mapping):
    """Mimics Ansible's HostVarsVars: reading a key templates it, while
    membership tests look at the raw variables."""

    def __init__(self, data, log):
        self._data, self._log = data, log

    def __getitem__(self, key):
        self._log.append(key)
        value = self._data[key]
        if value == "{{ undefined_thing }}":
            raise Undefined("'undefined_thing' is undefined")
        return value

    def __contains__(self, key):
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


def test_snapshot_reads_only_model_vars_and_selector_fields():
    hv, groups = build(
        pg_test(pg_services=[{"name": "rack", "port": 5441, "selector": "[? rack == 'a']"}]),
        extra_groups={"minio": ["10.10.10.50"]},
    )
    hv["10.10.10.11"].update({"rack": "a", "secret_of_other_module": "{{ undefined_thing }}"})
    hv["10.10.10.50"]["minio_thing"] = "{{ undefined_thing }}"
    log = []
    lazy = {h: LazyVars(v, log) for h, v in hv.items()}
    snap = snapshot(lazy, groups, ["10.10.10.12"])
    assert snap["errors"] == []
    assert snap["clusters"] == ["pg-test"]
    assert sorted(snap["hostvars"]) == ["10.10.10.10", "10.10.10.11", "10.10.10.12", "10.10.10.13", "10.10.10.50"]
    # of the other hosts, only the address, cluster and VIP (for the
    # inventory-wide collisions, safety.py)
    assert snap["hostvars"]["10.10.10.50"] == {}
    assert snap["hostvars"]["10.10.10.11"]["rack"] == "a"
    assert "secret_of_other_module" not in log and "minio_thing" not in log
    assert set(log) <= set(validate.MODEL_VARS) | set(safety.SAFETY_VARS) | set(safety.NODE_VARS) | set(
        safety.OTHER_VARS
    ) | {"rack"}
    inv = model_mod.load(snap["hostvars"], snap["groups"], snap["clusters"])
    assert validate.problems(inv) == []


def test_snapshot_reports_unevaluable_model_vars():
    hv, groups = build(pg_test())
    hv["10.10.10.12"]["pg_weight"] = "{{ undefined_thing }}"
    lazy = {h: LazyVars(v, []) for h, v in hv.items()}
    snap = snapshot(lazy, groups)
    assert [str(p) for p in snap["errors"]] == [
        "cluster pg-test, host 10.10.10.12: pg_weight = (unset): cannot be evaluated "
        "('undefined_thing' is undefined); fix: define the variables it refers to"
    ]


def test_unknown_cluster_and_host_raise_key_error():
    inv = model_mod.load(*sandbox())
    with pytest.raises(KeyError):
        plan.cluster_plan(inv, "pg-nope")
    with pytest.raises(KeyError):
        plan.instance_plan(inv, "10.9.9.9")


def test_peer_services_cover_the_nodes_a_limited_run_leaves_out():
    hv, groups = build(
        pg_test(),
        cluster(
            "pg-x",
            {
                "10.10.10.21": {"pg_seq": 1, "pg_role": "primary"},
                "10.10.10.22": {"pg_seq": 2, "pg_role": "replica"},
            },
            pg_service_provider="proxy",
            pg_services=[],
        ),
        extra_groups={"proxy": ["10.10.10.10"]},
    )
    inv = validate.require(model_mod.load(hv, groups))
    # a new pg-test member: the two other members get their four fragments,
    # each naming the new member as a server
    out = plan.peer_services(inv, ["10.10.10.13"])
    assert [(e["host"], e["service"]["name"]) for e in out] == [
        (h, "pg-test-" + n)
        for h in ("10.10.10.11", "10.10.10.12")
        for n in ("primary", "replica", "default", "offline")
    ]
    assert all("10.10.10.13" in [s["ip"] for s in e["service"]["servers"]] for e in out)
    # a cluster with a provider: the provider node, not the other member
    out = plan.peer_services(inv, ["10.10.10.22"])
    assert {e["host"] for e in out} == {"10.10.10.10"}
    assert [e["service"]["name"] for e in out] == ["pg-x-primary", "pg-x-replica", "pg-x-default", "pg-x-offline"]
    # the whole cluster, or a host of no cluster: nothing outside
    assert plan.peer_services(inv, groups["pg-test"]) == []
    assert plan.peer_services(inv, ["10.9.9.9"]) == []


def test_host_services_with_and_without_provider():
    hv, groups = build(
        pg_test(),
        cluster(
            "pg-x",
            {
                "10.10.10.21": {"pg_seq": 1, "pg_role": "primary"},
            },
            pg_service_provider="proxy",
            pg_services=[],
        ),
        extra_groups={"proxy": ["10.10.10.10"]},
    )
    # pg-x's default ports clash with nothing on the proxy group (pg-test has no provider)
    inv = validate.require(model_mod.load(hv, groups))
    assert [s["name"] for s in plan.host_services(inv, "10.10.10.11")] == [
        "pg-test-primary",
        "pg-test-replica",
        "pg-test-default",
        "pg-test-offline",
    ]
    assert plan.host_services(inv, "10.10.10.21") == []  # its provider publishes
    assert [s["name"] for s in plan.host_services(inv, "10.10.10.10")] == [
        "pg-x-primary",
        "pg-x-replica",
        "pg-x-default",
        "pg-x-offline",
    ]


def test_snapshot_reads_the_tuning_facts_from_ansible_facts_too():
    hv, groups = build(pg_test())
    # inject_facts_as_vars off: the facts are only under ansible_facts
    hv["10.10.10.11"]["ansible_facts"] = {"memtotal_mb": 8192, "processor_vcpus": 4, "packages": {}}
    # both present: the top-level variable wins, as Ansible's own precedence does
    hv["10.10.10.12"].update(
        {
            "ansible_memtotal_mb": 2048,
            "ansible_processor_vcpus": 1,
            "ansible_facts": {"memtotal_mb": 9999, "processor_vcpus": 9},
        }
    )
    snap = snapshot({h: LazyVars(v, []) for h, v in hv.items()}, groups)
    got = {
        h: (v.get("ansible_memtotal_mb"), v.get("ansible_processor_vcpus"))
        for h, v in snap["hostvars"].items()
        if h != "10.10.10.10"
    }
    assert got == {"10.10.10.11": (8192, 4), "10.10.10.12": (2048, 1), "10.10.10.13": (None, None)}


def test_infra_alias_sorted_by_name_and_intranet_in_given_order():
    """As Pigsty: the infra hosts in name order, the intranet CIDRs in the
    order of node_firewall_intranet."""
    hv, groups = build(
        pg_test(node_firewall_intranet=["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"]),
        infra=("10.10.10.9", "10.10.10.10", "10.10.10.100"),
    )
    lines = plan.instance_plan(validate.require(model_mod.load(hv, groups)), "10.10.10.12")["pg_hba"]
    at = lines.index("# 400 monitor from infra hosts over ssl [common]")
    assert [line.split()[3] for line in lines[at + 1 : at + 4]] == [
        "10.10.10.10/32",
        "10.10.10.100/32",
        "10.10.10.9/32",
    ]
    at = lines.index("# 250 replicator replication from intranet over ssl [common]")
    assert [line.split()[3] for line in lines[at + 1 : at + 4]] == ["10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"]


@pytest.mark.parametrize(
    "modes, port, proxies",
    [
        ([None, None, None], 2379, False),
        (["tls", "tls", "tls"], 2379, False),
        (["bridge", "bridge", "armed"], 2382, True),
        (["closing", "bridge", "closing"], 2382, True),
        (["closing", "closing", "tls"], 2379, False),
    ],
)
def test_patroni_reaches_etcd_on_the_bridge_port_while_the_members_move(modes, port, proxies):
    """etcd_tls_mode_now (read by pgsql.yml from each member's settings):
    while a member serves plain HTTP on the client port, Patroni uses HTTPS
    on the bridge port, and only the endpoints it is given."""
    etcd = ("10.10.10.10", "10.10.10.11", "10.10.10.12")
    hv, groups = build(pg_test(), etcd=etcd)
    for host, mode in zip(etcd, modes):
        hv[host]["etcd_tls_mode_now"] = mode
    out = plan.cluster_plan(model_mod.load(hv, groups), "pg-test")["etcd"]
    assert {e.rsplit(":", 1)[1] for e in out["endpoints"]} == {str(port)}
    assert (out["protocol"], out["use_proxies"]) == ("https", proxies)


@pytest.mark.parametrize("protocol", ["http", "https"])
def test_an_etcd_protocol_of_the_inventory_never_goes_to_the_bridge_port(protocol):
    etcd = ("10.10.10.10", "10.10.10.11", "10.10.10.12")
    hv, groups = build(pg_test(etcd_protocol=protocol), etcd=etcd)
    for host in etcd:
        hv[host]["etcd_tls_mode_now"] = "bridge"
    out = plan.cluster_plan(model_mod.load(hv, groups), "pg-test")["etcd"]
    assert {e.rsplit(":", 1)[1] for e in out["endpoints"]} == {"2379"} and out["use_proxies"] is False
