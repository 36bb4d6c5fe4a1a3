# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The filter wrappers: plain inputs in, model output or AnsibleFilterError out."""

from __future__ import annotations

import base64
import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.pigpen.pgsql.plugins.filter import pgsql
from inv import build, cluster, pg_meta, pg_test, sandbox


def test_filters_are_registered():
    assert sorted(pgsql.FilterModule().filters()) == [
        "pg_alert_rules",
        "pg_alertmanager_config",
        "pg_api_moves",
        "pg_cert_renewal",
        "pg_cluster_plan",
        "pg_configs",
        "pg_dcs_source",
        "pg_dns_records",
        "pg_drill_plan",
        "pg_endpoints",
        "pg_etcd_modes",
        "pg_etcd_targets",
        "pg_etcd_tls_plan",
        "pg_etcd_users",
        "pg_ha_plan",
        "pg_host_services",
        "pg_instance_files",
        "pg_instance_plan",
        "pg_later_role_packages",
        "pg_limit_problems",
        "pg_live_role_checks",
        "pg_node_crontab",
        "pg_objects",
        "pg_outside_services",
        "pg_packages_after_postgres",
        "pg_path",
        "pg_patroni_problems",
        "pg_peer_services",
        "pg_pitr_plan",
        "pg_pitr_source",
        "pg_pitr_start_options",
        "pg_problems",
        "pg_replayed_past",
        "pg_resolv_conf",
        "pg_reversal",
        "pg_reversal_stop",
        "pg_rm_leaders",
        "pg_role_drift",
        "pg_tune",
        "pkgs_missing",
    ]


def test_limit_problems_filter():
    good = {
        "haproxy_maxconn": 4000,
        "haproxy_limit_nofile": 65536,
        "haproxy_client_timeout": "24h",
        "haproxy_server_timeout": "24h",
        "haproxy_connect_timeout": 100,
    }
    assert pgsql.pg_limit_problems(good, "h1", ["haproxy"]) == []
    found = pgsql.pg_limit_problems(
        dict(good, haproxy_limit_nofile=2000, haproxy_client_timeout="1 day", pg_cluster="pg-test"), "h1", ["haproxy"]
    )
    assert found == [
        "cluster pg-test, host h1: haproxy_limit_nofile = 2000: is below 2 x haproxy_maxconn (4000) + 100: "
        "HAProxy needs about two files per connection and would not start; fix: lower haproxy_maxconn or "
        "raise haproxy_limit_nofile to at least 8100",
        "cluster pg-test, host h1: haproxy_client_timeout = '1 day': is not an HAProxy duration; fix: write a "
        "number with an optional unit (us, ms, s, m, h, d), e.g. 24h",
    ]
    # pgbouncer: clients + servers + 100 files, the model's defaults when unset
    assert (
        pgsql.pg_limit_problems(
            {"pgbouncer_limit_nofile": 1024, "pgbouncer_max_client_conn": 1000, "pgbouncer_max_db_connections": 100},
            "h1",
            ["pgbouncer"],
        )
        != []
    )
    assert pgsql.pg_limit_problems({"pgbouncer_limit_nofile": 65536}, "h1", ["pgbouncer"]) == []
    with pytest.raises(AnsibleFilterError, match="unknown part nginx"):
        pgsql.pg_limit_problems({}, "h1", ["nginx"])


def test_path_filter():
    assert pgsql.pg_path("haproxy_admin_socket") == "/run/haproxy/admin.sock"
    with pytest.raises(AnsibleFilterError, match="unknown path 'nope': use one of haproxy_admin_socket"):
        pgsql.pg_path("nope")


def test_rm_leaders_filter():
    out = pgsql.pg_rm_leaders({"10.10.10.13": -1}, {"10.10.10.13": "pg-test-3"}, None)
    assert out == {"leaders": [], "unknown": ["10.10.10.13"], "settled": [], "last": ["10.10.10.13"]}


def test_peer_services_filter():
    hv, groups = sandbox()
    out = pgsql.pg_outside_services(hv, groups, ["10.10.10.13"])
    assert sorted({e["host"] for e in out}) == ["10.10.10.11", "10.10.10.12"]
    assert pgsql.pg_outside_services(hv, groups, groups["pg-test"]) == []


def test_pitr_filters():
    plan = pgsql.pg_pitr_plan({"lsn": "0/7000028"}, "pg-test")
    assert plan["restore_argv"][-3:] == ["--target=0/7000028", "--target-action=promote", "restore"]
    with pytest.raises(AnsibleFilterError, match=r"(?s)pg_pitr of pg-test: .*pg_pitr.lsn = '7000028'"):
        pgsql.pg_pitr_plan({"lsn": "7000028"}, "pg-test")
    assert pgsql.pg_pitr_start_options(None, None) == "-c listen_addresses='' -c port=5432 -c hot_standby=on"


def test_crontab_lines():
    hv, groups = sandbox()
    for h in groups["pg-test"]:
        hv[h]["pg_crontab"] = ["00 01 * * * /usr/local/bin/pg-backup full", "@hourly  pg-backup incr"]
    files = pgsql.pg_instance_files(pgsql.pg_instance_plan(hv, groups, "10.10.10.11"), hv["10.10.10.11"])
    assert files["crontab"] == ["00 01 * * * postgres /usr/local/bin/pg-backup full", "@hourly postgres pg-backup incr"]
    # Pigsty's habit: the user field (the dbsu) and Pigsty's backup path
    for h in groups["pg-test"]:
        hv[h]["pg_crontab"] = ["00 01 * * * postgres /pg/bin/pg-backup full"]
    files = pgsql.pg_instance_files(pgsql.pg_instance_plan(hv, groups, "10.10.10.11"), hv["10.10.10.11"])
    assert files["crontab"] == ["00 01 * * * postgres /usr/local/bin/pg-backup full"]
    hv["10.10.10.11"]["pg_crontab"] = ["01 * * pg-backup"]
    with pytest.raises(AnsibleFilterError, match=r"pg_crontab\[0\] = '01 \* \* pg-backup': is not a cron entry"):
        pgsql.pg_instance_plan(hv, groups, "10.10.10.11")


def test_node_crontab_filter():
    assert pgsql.pg_node_crontab(["00 01 * * * postgres /pg/bin/pg-backup full", "@reboot  root /bin/true"]) == [
        "00 01 * * * postgres /usr/local/bin/pg-backup full",
        "@reboot root /bin/true",
    ]
    assert pgsql.pg_node_crontab([]) == []
    with pytest.raises(AnsibleFilterError, match=r"node_crontab\[0\] = '0 1 \* \* \* /bin/true': has no user field"):
        pgsql.pg_node_crontab(["0 1 * * * /bin/true"])


def test_cluster_and_instance_plan():
    hv, groups = sandbox()
    cplan = pgsql.pg_cluster_plan(hv, groups, "pg-test")
    assert cplan["identity"]["leader"] == "pg-test-1"
    iplan = pgsql.pg_instance_plan(hv, groups, "10.10.10.12")
    assert iplan["identity"]["instance"] == "pg-test-2"
    assert iplan["cluster"]["services"] == cplan["services"]


def test_invalid_cluster_raises_with_every_problem():
    hv, groups = build(
        cluster(
            "pg-test",
            {
                "10.10.10.11": {"pg_seq": 1, "pg_role": "primary"},
                "10.10.10.12": {"pg_seq": 1, "pg_role": "primery"},
            },
        )
    )
    with pytest.raises(AnsibleFilterError) as err:
        pgsql.pg_instance_plan(hv, groups, "10.10.10.11")
    text = str(err.value)
    assert "pg_instance_plan(10.10.10.11): 2 problem(s) in the inventory:" in text
    assert "pg_role = 'primery': is not a known role" in text
    assert "pg_seq = 1: is already used by host 10.10.10.11" in text
    assert len(pgsql.pg_problems(hv, groups)) == 2
    assert pgsql.pg_problems(*sandbox()) == []


def test_host_outside_clusters():
    hv, groups = sandbox()
    hv["10.10.10.99"] = {"inventory_hostname": "10.10.10.99"}
    groups["all"].append("10.10.10.99")
    with pytest.raises(AnsibleFilterError, match="has no pg_cluster"):
        pgsql.pg_instance_plan(hv, groups, "10.10.10.99")


def test_ha_plan_and_tune():
    assert pgsql.pg_ha_plan("fast", 0)["patroni"]["synchronous_mode"] is True
    with pytest.raises(AnsibleFilterError, match="pg_rto = 'fastest'"):
        pgsql.pg_ha_plan("fastest")
    params = pgsql.pg_tune("oltp", 16384, 8)
    assert params["shared_buffers"] == "4096MB"
    with pytest.raises(AnsibleFilterError, match="pg_conf = 'oltpp'"):
        pgsql.pg_tune("oltpp", 16384, 8)


def test_configs_from_plan_and_settings():
    hv, groups = sandbox()
    iplan = pgsql.pg_instance_plan(hv, groups, "10.10.10.11")
    files = pgsql.pg_instance_files(iplan, {"patroni_password": "s3cret"}, mask_secrets=True)
    assert files["patroni"]["name"] == "pg-test-1"
    assert files["patroni"]["restapi"]["authentication"]["password"] == "********"
    assert files["pgbouncer_ini"][0][0] == "databases"
    plain = pgsql.pg_instance_files(iplan, {"patroni_password": "s3cret"})
    assert plain["patroni"]["restapi"]["authentication"]["password"] == "s3cret"
    with pytest.raises(AnsibleFilterError, match="pg_instance_files"):
        pgsql.pg_instance_files(iplan, {"pg_data": "relative/path"})


def test_live_role_checks_read_only_the_targeted_clusters():
    """`pgsql-user.yml -l pg-test -e '{"pg_users": [...]}'`: the extra
    pg_users reach pg-meta too, whose database owner they no longer define;
    the targeted cluster is still compared, and nothing fails."""
    hv, groups = sandbox()
    for host in hv:
        hv[host]["pg_users"] = [{"name": "test", "password": "test"}]
    checks = pgsql.pg_live_role_checks(hv, groups, ["10.10.10.11", "10.10.10.12", "10.10.10.13"])
    assert [c["cluster"] for c in checks] == ["pg-test"]
    hv["10.10.10.12"]["pg_role"] = "leader"  # invalid: no entry, no failure
    assert pgsql.pg_live_role_checks(hv, groups, ["10.10.10.12"]) == []


def test_live_role_checks_and_drift():
    hv, groups = sandbox()
    checks = pgsql.pg_live_role_checks(hv, groups, ["10.10.10.12"])
    # the REST API's scheme follows patroni_ssl_enabled (HTTPS by default)
    assert [(c["cluster"], c["url"]) for c in checks] == [("pg-test", "https://10.10.10.11:8008/cluster")]
    plain = {h: dict(v, patroni_ssl_enabled=False) for h, v in hv.items()}
    assert pgsql.pg_live_role_checks(plain, groups, ["10.10.10.12"])[0]["url"] == "http://10.10.10.11:8008/cluster"
    assert [(m["instance"], m["role"]) for m in checks[0]["members"]] == [
        ("pg-test-1", "primary"),
        ("pg-test-2", "replica"),
        ("pg-test-3", "replica"),
    ]
    answer = {
        "members": [
            {"name": "pg-test-1", "role": "replica", "state": "streaming"},
            {"name": "pg-test-2", "role": "replica", "state": "streaming"},
            {"name": "pg-test-3", "role": "leader", "state": "running"},
        ]
    }
    lines = pgsql.pg_role_drift(
        [{"json": answer, "item": checks[0]}, {"status": -1, "msg": "timed out", "item": checks[0]}]
    )
    assert lines == [
        "pg-test: pg-test-3 leads, while pg_role names pg-test-1 as primary: expected after a "
        "failover or switchover (services, VIP and pgbouncer follow the live roles, and pgsql.yml "
        "never moves the leader back); set pg_role: primary on pg-test-3 when convenient"
    ]


def test_alerting_filters():
    from ansible.errors import AnsibleFilterError

    hv, groups = sandbox()
    rule_groups = pgsql.pg_alert_rules(hv, groups, {"backup_grace": 7200}, "10s", "1h")
    assert [g["name"] for g in rule_groups][:2] == ["pigpen-postgres", "pigpen-patroni"]
    with pytest.raises(AnsibleFilterError, match="pg_alert_rules: exporters_alert_settings.nope: unknown key"):
        pgsql.pg_alert_rules(hv, groups, {"nope": 1})
    bad, bad_groups = build(cluster("pg-x", {"10.10.10.21": {"pg_seq": 1, "pg_role": "boss"}}))
    with pytest.raises(AnsibleFilterError, match="(?s)pg_alert_rules: .*pg_role"):
        pgsql.pg_alert_rules(bad, bad_groups)
    assert pgsql.pg_etcd_targets(hv, groups)[0]["targets"] == ["10.10.10.10:2379"]
    config = pgsql.pg_alertmanager_config([], recorder_urls=["http://10.10.10.10:9095/"])
    assert config["route"]["routes"][0] == {"receiver": "pigpen-recorder", "continue": True}
    with pytest.raises(AnsibleFilterError, match="pg_alertmanager_config: .*names repeat"):
        pgsql.pg_alertmanager_config([{"name": "a"}, {"name": "a"}])
    hv["10.10.10.10"]["ansible_host"] = "192.168.0.10"
    assert pgsql.pg_endpoints(hv, ["10.10.10.10", "10.10.10.11"], 9093) == ["192.168.0.10:9093", "10.10.10.11:9093"]


def test_dns_records_filter():
    hostvars, groups = sandbox()
    groups["other"] = ["10.10.10.99"]
    hostvars["10.10.10.99"] = {}
    # the play's clusters only; a host of no cluster is ignored
    assert pgsql.pg_dns_records(hostvars, groups, ["10.10.10.12", "10.10.10.99"]) == {
        "pg-test": [
            {"name": "pg-test", "address": "10.10.10.3", "host": None},
            {"name": "pg-test-1", "address": "10.10.10.11", "host": "10.10.10.11"},
            {"name": "pg-test-2", "address": "10.10.10.12", "host": "10.10.10.12"},
            {"name": "pg-test-3", "address": "10.10.10.13", "host": "10.10.10.13"},
        ]
    }
    # removing the whole of pg-meta: no instance record left
    assert pgsql.pg_dns_records(hostvars, groups, ["10.10.10.10"], ["10.10.10.10"]) == {
        "pg-meta": [{"name": "pg-meta", "address": "10.10.10.10", "host": None}]
    }
    assert sorted(pgsql.pg_dns_records(hostvars, groups)) == ["pg-meta", "pg-test"]
    hostvars["10.10.10.11"]["pg_dns_target"] = "master"
    with pytest.raises(AnsibleFilterError, match="pg_dns_target"):
        pgsql.pg_dns_records(hostvars, groups)


def test_resolv_conf_filter():
    out = pgsql.pg_resolv_conf("nameserver 10.10.10.1\n", ["${admin_ip}"], [], "add", "10.10.10.10")
    assert out.splitlines()[1:] == ["nameserver 10.10.10.10", "nameserver 10.10.10.1"]
    with pytest.raises(AnsibleFilterError, match="node_dns_method"):
        pgsql.pg_resolv_conf("", ["10.10.10.10"], [], "append")


def test_services_of_one_cluster_ignore_another_clusters_problems():
    """pgsql.yml -l pg-test validates pg-test only; another cluster made
    invalid by the run's extra variables (here pg-meta with a port that
    pgbouncer also uses) must not stop pg-test's services halfway, but
    still stops the node that publishes pg-meta's."""
    hv, groups = build(pg_meta(pg_port=6432), pg_test())
    services = pgsql.pg_host_services(hv, groups, "10.10.10.11")
    assert [s["name"] for s in services] == ["pg-test-primary", "pg-test-replica", "pg-test-default", "pg-test-offline"]
    assert pgsql.pg_outside_services(hv, groups, ["10.10.10.13"])
    with pytest.raises(AnsibleFilterError, match="pg-meta"):
        pgsql.pg_host_services(hv, groups, "10.10.10.10")


def test_limit_problems_filter_takes_extra_vars_strings():
    # ansible-playbook -e haproxy_maxconn=4000 passes a string
    assert (
        pgsql.pg_limit_problems(
            {
                "haproxy_maxconn": "4000",
                "haproxy_limit_nofile": "65536",
                "haproxy_client_timeout": "24h",
                "haproxy_server_timeout": "30",
                "haproxy_connect_timeout": "3s",
            },
            "h1",
            ["haproxy"],
        )
        == []
    )


@pytest.mark.parametrize(
    "value, protocol",
    [(None, "https"), (True, "https"), (False, "http"), ("false", "http"), ("true", "https")],
)
def test_patroni_reaches_etcd_as_the_etcd_group_serves(value, protocol):
    # read from the etcd member's own variables (an extra variable
    # -e etcd_tls_enabled=false arrives as a string)
    hv, groups = build(pg_meta(), pg_test())
    if value is not None:
        hv["10.10.10.10"]["etcd_tls_enabled"] = value
    files = pgsql.pg_instance_files(pgsql.pg_instance_plan(hv, groups, "10.10.10.11"), hv["10.10.10.11"])
    assert files["patroni"]["etcd3"]["protocol"] == protocol
    assert ("cacert" in files["patroni"]["etcd3"]) == (protocol == "https")
    assert files["vip"] is None or files["vip"]["endpoints"][0].startswith(protocol + "://")


def test_etcd_tls_plan_filter_reads_slurp_results_and_the_patroni_loop():
    bridge = (
        "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,https://0.0.0.0:2382\n"
        "ETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\nETCD_PEER_CERT_FILE=/x\n"
    )
    reads = {"e1": {"content": base64.b64encode(bridge.encode()).decode()}, "e2": bridge}
    assert pgsql.pg_etcd_modes(reads) == {"e1": "bridge", "e2": "bridge"}
    clients = [
        {"item": "p1", "rc": 0, "stdout": json.dumps({"protocol": "https", "hosts": ["e1:2382"]})},
        {"item": "p2", "rc": 0, "stdout": "null"},
        {"item": "p3", "unreachable": True},
        {"item": "p4", "skipped": True},
        {"item": "p5", "rc": 1, "stdout": ""},
    ]
    out = pgsql.pg_etcd_tls_plan(reads, "tls", "etcd", ["e1", "e2"], clients, 2382)
    assert "would cut off Patroni on p3, p5" in out["problem"]
    out = pgsql.pg_etcd_tls_plan(reads, "tls", "etcd", ["e1", "e2"], clients[:2], 2382)
    assert [s["mode"] for s in out["steps"]] == ["closing", "closing"] and "p1" in out["notice"]
    with pytest.raises(AnsibleFilterError):
        pgsql.pg_etcd_tls_plan(reads, "closing")


APIS = ["https://10.10.10.11:8008", "https://10.10.10.12:8008", "https://10.10.10.13:8008"]


@pytest.mark.parametrize(
    "address, expect",
    [
        # pg-test's VIP and a member: pg-test, with its namespace
        ("10.10.10.3", {"cluster": "pg-test", "prefix": "/svc/pg-test/", "apis": APIS}),
        ("10.10.10.12", {"cluster": "pg-test", "prefix": "/svc/pg-test/", "apis": APIS}),
        # pg-dr's own member is never its source; an address outside the inventory
        ("10.10.10.21", {}),
        ("192.168.5.1", {}),
        (None, {}),
    ],
)
def test_dcs_source_filter(address, expect):
    dr = cluster("pg-dr", {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.3"}})
    hv, groups = build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24", pg_namespace="/svc/"), dr)
    assert pgsql.pg_dcs_source(hv, groups, address, "pg-dr") == expect


def test_reversal_filters_read_ansible_results():
    dr = cluster("pg-dr", {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.3"}})
    hv, groups = build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24"), dr)
    test_member, dr_member = {"cluster": "pg-test", "name": "pg-test-1"}, {"cluster": "pg-dr", "name": "pg-dr-1"}
    # the results of a uri loop over [member, path]
    results = [
        {"item": [test_member, "config"], "json": {"ttl": 30}},
        {
            "item": [test_member, "cluster"],
            "json": {"members": [{"name": "pg-test-1", "role": "leader", "state": "running"}]},
        },
        {"item": [dr_member, "config"], "json": {"standby_cluster": {"host": "10.10.10.3", "port": 5432}}},
        {
            "item": [dr_member, "cluster"],
            "json": {"members": [{"name": "pg-dr-1", "role": "standby_leader", "state": "running"}]},
        },
    ]
    hosts = {"pg-test-1": "10.10.10.11", "pg-dr-1": "10.10.10.21"}
    out = pgsql.pg_reversal(results, "pg-test", "pg-dr", hv, groups, hosts)
    assert out["phase"] == "start" and out["source"]["primary"] == "10.10.10.11"
    assert out["target"]["standby_leader"] == "10.10.10.21"
    # a command loop over hosts (pg_controldata)
    stop = pgsql.pg_reversal_stop(
        [{"item": "10.10.10.11", "stdout": "Database cluster state: shut down\nLatest checkpoint location: 0/5000028"}]
    )
    assert stop == {"host": "10.10.10.11", "checkpoint": "0/5000028"}
    assert pgsql.pg_replayed_past("0/50000A0", "0/5000028") is True
    assert pgsql.pg_replayed_past("0/5000028", "0/5000028", True) is True
