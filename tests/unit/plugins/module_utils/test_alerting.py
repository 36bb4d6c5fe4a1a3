# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Alert rules from the model: thresholds per cluster (hand-checked),
matchers, tunables and the Alertmanager configuration. promtool runs the
rules themselves (tests/unit/test_alert_rules.py)."""

from __future__ import annotations

import pytest

import inv
from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import alerting, validate


def load(hostvars_groups):
    hostvars, groups = hostvars_groups
    return validate.require(model_mod.load(hostvars, groups))


def rules_by_alert(groups):
    out = {}
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                out.setdefault(rule["alert"], []).append(rule)
    return out


# ------------------------------------------------------------ tunables


def test_settings_defaults_and_overrides():
    tun = alerting.settings()
    assert tun["connections_ratio"] == 0.9 and tun["backup_grace"] == 3600
    assert alerting.settings({"backup_grace": 7200})["backup_grace"] == 7200


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"backup_grease": 1}, "exporters_alert_settings.backup_grease: unknown key: use one of "),
        ({"connections_ratio": 1.5}, "exporters_alert_settings.connections_ratio = 1.5: write a ratio"),
        ({"connections_ratio": True}, "exporters_alert_settings.connections_ratio = True: write a ratio"),
        ({"backup_grace": 1.5}, "exporters_alert_settings.backup_grace = 1.5: write a whole number of seconds"),
        ({"cert_warning_days": 0}, "exporters_alert_settings.cert_warning_days = 0: write a whole number of days"),
        ({"xid_warning": 0.8}, "xid_critical (0.75) must be above xid_warning (0.8)"),
        ({"disk_free_critical": 0.2}, "disk_free_critical (0.2) must be below disk_free_warning (0.1)"),
        ({"cert_critical_days": 40}, "cert_critical_days (40) must be below cert_warning_days (30)"),
    ],
)
def test_settings_refuse(overrides, message):
    with pytest.raises(alerting.AlertingError) as err:
        alerting.settings(overrides)
    assert message in str(err.value)


@pytest.mark.parametrize(
    "seconds, text",
    [
        (41, "41s"),
        (60, "1m"),
        (90, "1m30s"),
        (3600, "1h"),
        (18000, "5h"),
        (90000, "1d1h"),
        (608400, "7d1h"),
        (0, "0s"),
        (27.2, "28s"),
    ],
)
def test_duration(seconds, text):
    assert alerting.duration(seconds) == text


def test_parse_duration():
    assert [alerting.parse_duration(t) for t in ("10s", "1m", "2h", "1d", "500ms")] == [10, 60, 7200, 86400, 0.5]
    for bad in ("10", "1m30s", "", None):
        with pytest.raises(alerting.AlertingError):
            alerting.parse_duration(bad)


# ------------------------------------------------------------ matchers


def test_by_value_one_value_needs_no_matcher():
    assert alerting.by_value({"a": 1, "b": 1}, "cls") == [(1, "")]


def test_by_value_largest_group_takes_the_rest():
    out = alerting.by_value({"a": 1, "b": 2, "c": 2, "d": 3}, "cls")
    assert out == [(1, 'cls=~"a"'), (2, 'cls!~"a|d"'), (3, 'cls=~"d"')]


def test_by_value_tie_goes_to_the_smaller_value_and_none_is_left_out():
    assert alerting.by_value({"a": 5, "b": 1, "c": None}, "cls") == [(1, 'cls!~"a|c"'), (5, 'cls=~"a"')]
    assert alerting.by_value({"a": None}, "cls") == []


def test_by_value_excludes_and_escapes():
    out = alerting.by_value(
        {"pg.x-primary": 41, "pg-y-primary": 41, "pg-z-offline": None}, "proxy", exclude=("admin", ".+[.]fallback")
    )
    assert out == [(41, 'proxy!~"pg-z-offline|admin|.+[.]fallback"')]
    out = alerting.by_value({"pg.x-primary": 28, "pg-y-primary": 41, "pg-y-replica": 41}, "proxy")
    assert out == [(28, 'proxy=~"pg\\\\.x-primary"'), (41, 'proxy!~"pg\\\\.x-primary"')]


def test_sel():
    assert alerting.sel("up", 'job="node"', "") == 'up{job="node"}'
    assert alerting.sel("up") == "up"


def test_endpoints():
    hosts = [("10.10.10.10", None), ("infra-2", "10.10.10.20"), ("infra-3", "fd00::3")]
    assert alerting.endpoints(hosts, 9093) == ["10.10.10.10:9093", "10.10.10.20:9093", "[fd00::3]:9093"]
    assert alerting.endpoints(hosts[:1], 9095, "0.0.0.0") == ["0.0.0.0:9095"]


# --------------------------------------------------- facts of the model


def test_cluster_facts_of_the_alerting_inventory():
    """pg-meta: fast plan (20 + 5 + 3 x 1 s = 28 s, ttl 20), pg_rpo 4 MiB,
    1 member, a weekly full backup (7 d + 1 h of grace = 608400 s), and
    its offline service selects nobody; pg-test: norm (30 + 5 + 3 x 2 s =
    41 s, ttl 30), 1 MiB, 3 members, incremental every 4 h (4 h + 1 h =
    18000 s) and full daily (24 h + 1 h = 90000 s)."""
    facts = alerting.cluster_facts(load(inv.alerting()), alerting.settings())
    assert facts["pg-meta"] == {
        "bound_s": 28,
        "ttl": 20,
        "lag_bytes": 4194304,
        "members": 1,
        "backup_s": 608400,
        "full_backup_s": 608400,
        "services": {
            "pg-meta-primary": True,
            "pg-meta-replica": True,
            "pg-meta-default": True,
            "pg-meta-offline": False,
        },
    }
    assert facts["pg-test"] == {
        "bound_s": 41,
        "ttl": 30,
        "lag_bytes": 1048576,
        "members": 3,
        "backup_s": 18000,
        "full_backup_s": 90000,
        "services": {
            "pg-test-primary": True,
            "pg-test-replica": True,
            "pg-test-default": True,
            "pg-test-offline": True,
        },
    }


def test_a_standby_cluster_has_no_service_down_alert_for_its_primary_services():
    """Until it is promoted, a standby cluster's members all fail /primary:
    PgsqlServiceDown would fire for its primary and default services for
    ever."""
    dr = inv.cluster(
        "pg-dr",
        {
            "10.10.10.21": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.11"},
            "10.10.10.22": {"pg_seq": 2, "pg_role": "replica"},
        },
    )
    loaded = load(inv.build(inv.pg_test(), dr))
    facts = alerting.cluster_facts(loaded, alerting.settings())
    assert facts["pg-dr"]["services"] == {
        "pg-dr-primary": False,
        "pg-dr-replica": True,
        "pg-dr-default": False,
        "pg-dr-offline": True,
    }
    assert facts["pg-test"]["services"]["pg-test-primary"] is True
    exprs = [r["expr"] for r in rules_by_alert(alerting.alert_rules(loaded))["PgsqlServiceDown"]]
    # one threshold for every service: those without servers are left out
    assert exprs == [
        'haproxy_backend_status{job="haproxy", state="UP", proxy!~"pg-dr-default|pg-dr-primary|admin|.+[.]fallback"}'
        " == 0"
    ]


def test_synchronous_clusters_keep_the_failover_lag():
    """pg_rpo 0 is synchronous mode; maximum_lag_on_failover stays 1 MiB, and
    so does the lag alert's threshold."""
    facts = alerting.cluster_facts(load(inv.build(inv.pg_test(pg_rpo=0))), alerting.settings())
    assert facts["pg-test"]["lag_bytes"] == 1048576


def test_no_backup_threshold_without_schedule_or_pgbackrest():
    tun = alerting.settings()
    facts = alerting.cluster_facts(
        load(
            inv.build(
                inv.pg_test(pg_crontab=["00 01 * * * /usr/local/bin/pg-backup diff"]),
                inv.pg_meta(pg_crontab=["00 01 * * * /usr/local/bin/pg-backup full"], pgbackrest_enabled=False),
            )
        ),
        tun,
    )
    assert (facts["pg-test"]["backup_s"], facts["pg-test"]["full_backup_s"]) == (90000, None)
    assert (facts["pg-meta"]["backup_s"], facts["pg-meta"]["full_backup_s"]) == (None, None)
    rules = rules_by_alert(alerting.alert_rules(load(inv.build(inv.pg_test()))))
    assert "PgbackrestBackupTooOld" not in rules and "PgbackrestStanzaError" in rules


@pytest.mark.parametrize("members, quorum", [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_etcd_quorum(members, quorum):
    ips = tuple("10.10.10.%d" % (10 + i) for i in range(members))
    # the model refuses an even number of members; the arithmetic holds anyway
    hostvars, groups = inv.build(inv.pg_test(), etcd=ips)
    facts = alerting.etcd_facts(model_mod.load(hostvars, groups))
    assert (facts["members"], facts["quorum"], facts["election_timeout_ms"]) == (members, quorum, 1000)


def test_etcd_targets_and_timeout():
    hostvars, groups = inv.build(inv.pg_test(), etcd=("10.10.10.10", "10.10.10.11", "10.10.10.12"))
    hostvars["10.10.10.11"].update(etcd_name="etcd-b", etcd_election_timeout=2000, etcd_port=2389)
    i = load((hostvars, groups))
    assert alerting.etcd_facts(i)["election_timeout_ms"] == 2000
    # etcd_tls_enabled (default true): /metrics over https, verified
    # against the deployment's CA (the template's tls_config)
    assert alerting.etcd_targets(i) == [
        {
            "targets": ["10.10.10.10:2379"],
            "labels": {"cls": "etcd", "ins": "etcd-1", "ip": "10.10.10.10", "job": "etcd", "__scheme__": "https"},
            "tls": True,
        },
        {
            "targets": ["10.10.10.12:2379"],
            "labels": {"cls": "etcd", "ins": "etcd-3", "ip": "10.10.10.12", "job": "etcd", "__scheme__": "https"},
            "tls": True,
        },
        {
            "targets": ["10.10.10.11:2389"],
            "labels": {"cls": "etcd", "ins": "etcd-b", "ip": "10.10.10.11", "job": "etcd", "__scheme__": "https"},
            "tls": True,
        },
    ]
    rules = rules_by_alert(alerting.alert_rules(i))
    assert [r["expr"] for r in rules["EtcdSlowFsync"]] == [
        'histogram_quantile(0.99, sum by (cls, ins, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket'
        '{job="etcd"}[5m]))) > %s' % v
        for v in ("1", "2")
    ]


@pytest.mark.parametrize(
    "value, scheme",
    [(False, "http"), ("false", "http"), ("no", "http"), (True, "https"), ("true", "https"), (None, "https")],
)
def test_etcd_targets_follow_each_members_etcd_tls_enabled(value, scheme):
    """Members with etcd_tls_enabled false (the whole group: validation
    refuses members that disagree) serve /metrics over plain HTTP; absent
    (None here: the variable unset), or true, over HTTPS."""
    members = ("10.10.10.10", "10.10.10.11", "10.10.10.12")
    hostvars, groups = inv.build(inv.pg_test(), etcd=members)
    if value is not None:
        for host in members:
            hostvars[host]["etcd_tls_enabled"] = value
    targets = alerting.etcd_targets(load((hostvars, groups)))
    assert sorted(g["labels"]["ip"] for g in targets) == list(members)
    assert {(g["labels"]["__scheme__"], g["tls"]) for g in targets} == {(scheme, scheme == "https")}


# --------------------------------------------------------------- rules


def test_rule_groups_in_order_and_deterministic():
    i = load(inv.alerting())
    groups = alerting.alert_rules(i)
    assert [g["name"] for g in groups] == ["pigpen-%s" % n for n, _ in alerting.GROUPS]
    assert groups == alerting.alert_rules(i)
    assert len(alerting.alert_names(groups)) == 36
    for group in groups:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["labels"]["component"] == group["component"]
                assert rule["labels"]["severity"] in ("warning", "critical")
                assert rule["annotations"]["runbook"] == "docs/monitoring.md#" + rule["alert"].lower()


def test_sandbox_thresholds():
    """The sandbox: both clusters on the norm plan with pg_rpo 1 MiB: one
    rule each, no cluster matcher (a cluster added later gets them too)."""
    rules = rules_by_alert(alerting.alert_rules(load(inv.sandbox())))
    assert [(r["expr"], r["for"], r["labels"]["threshold"]) for r in rules["PgsqlReplicaLag"]] == [
        ("ins:pg_replica_lag:bytes > 1048576", "1m", "1 MiB")
    ]
    assert [(r["expr"], r["for"]) for r in rules["PgsqlNoLeader"]] == [
        ('count by (cls) (up{job="patroni"}) unless on (cls) (cls:patroni_leaders:sum > 0)', "41s")
    ]
    assert [r["expr"] for r in rules["PgsqlServiceDown"]] == [
        'haproxy_backend_status{job="haproxy", state="UP", proxy!~"pg-meta-offline|admin|.+[.]fallback"} == 0'
    ]
    assert [r["expr"] for r in rules["EtcdQuorumLost"]] == ["cls:etcd_members_up:sum < 1"]
    assert [r["labels"]["threshold"] for r in rules["PgsqlClusterDegraded"]] == ["1 member, 41s", "3 members, 41s"]


def test_overrides_reach_the_rules():
    rules = rules_by_alert(
        alerting.alert_rules(
            load(inv.sandbox()), {"connections_ratio": 0.8, "exporter_down_for": 120, "cert_warning_days": 60}
        )
    )
    assert rules["PgsqlConnectionsHigh"][0]["expr"] == "ins:pg_connections:ratio > 0.8"
    assert rules["NodeDown"][0]["for"] == "2m"
    assert rules["CertificateExpiring"][0]["expr"] == 'pigpen_cert_not_after_seconds{job="node"} - time() < 5184000'


def test_scrape_and_check_intervals():
    rules = rules_by_alert(alerting.alert_rules(load(inv.sandbox()), scrape_interval="30s", cert_interval="30m"))
    assert rules["PgsqlMultipleLeaders"][0]["for"] == "1m30s"  # three scrapes
    assert "> 5400" in rules["CertificateCheckFailing"][0]["expr"]  # three checks


def test_no_etcd_group_no_etcd_rules():
    hostvars, groups = inv.build(inv.pg_test(), etcd=())
    groups = alerting.alert_rules(model_mod.load(hostvars, groups))
    assert "pigpen-etcd" not in [g["name"] for g in groups]


# --------------------------------------------------------- Alertmanager


def test_alertmanager_defaults():
    config = alerting.alertmanager_config()
    assert config["route"] == {
        "receiver": "default",
        "group_by": ["alertname", "cls"],
        "group_wait": "30s",
        "group_interval": "5m",
        "repeat_interval": "4h",
    }
    assert config["receivers"] == [{"name": "default"}]
    assert config["inhibit_rules"] == alerting.inhibit_rules()


def test_alertmanager_with_recorder_and_routes():
    config = alerting.alertmanager_config(
        receivers=[{"name": "oncall", "email_configs": [{"to": "dba@example.org"}]}],
        routes=[{"receiver": "oncall", "matchers": ['severity="critical"']}],
        receiver="oncall",
        recorder_urls=["http://10.10.10.10:9095/"],
        extra_inhibit_rules=[{"source_matchers": ['alertname="X"'], "target_matchers": ['alertname="Y"']}],
    )
    assert config["route"]["receiver"] == "oncall"
    assert config["route"]["routes"] == [
        {"receiver": "pigpen-recorder", "continue": True},
        {"receiver": "oncall", "matchers": ['severity="critical"']},
        {"receiver": "oncall"},
    ]
    assert config["receivers"][-1] == {
        "name": "pigpen-recorder",
        "webhook_configs": [{"url": "http://10.10.10.10:9095/", "send_resolved": True}],
    }
    assert len(config["inhibit_rules"]) == len(alerting.inhibit_rules()) + 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"receivers": [{"webhook_configs": []}]}, "every receiver needs a name"),
        ({"receivers": [{"name": "a"}, {"name": "a"}]}, "receiver names repeat: a"),
        ({"receivers": [{"name": "default"}]}, "default is the collection's own receiver name"),
        ({"receiver": "oncall"}, "exporters_alertmanager_receiver: 'oncall' is not the name of a receiver"),
        ({"group_wait": "soon"}, "exporters_alertmanager_group_wait = 'soon': write a duration"),
    ],
)
def test_alertmanager_refuses(kwargs, message):
    with pytest.raises(alerting.AlertingError) as err:
        alerting.alertmanager_config(**kwargs)
    assert message in str(err.value)


def test_rules_of_one_alert_never_share_their_labels():
    """Clusters that differ in one value and agree in another (same member
    count, other plan; same plan, other pg_rpo...): every rule still has
    labels of its own (promtool's lint refuses duplicates)."""
    clusters = []
    for n, (rto, rpo, size) in enumerate(
        [
            ("fast", 1048576, 3),
            ("norm", 1048576, 3),
            ("safe", 0, 3),
            ("norm", 4194304, 2),
            ("fast", 1048576, 1),
            (45, 1048576, 3),
        ]
    ):
        hosts = {
            "10.10.%d.%d" % (30 + n, i + 1): {"pg_seq": i + 1, "pg_role": "primary" if i == 0 else "replica"}
            for i in range(size)
        }
        clusters.append(
            inv.cluster(
                "pg-c%d" % n,
                hosts,
                pg_rto=rto,
                pg_rpo=rpo,
                pg_crontab=["00 0%d * * * /usr/local/bin/pg-backup full" % n],
            )
        )
    seen = set()
    for group in alerting.alert_rules(load(inv.build(*clusters))):
        for rule in group["rules"]:
            key = (rule.get("alert") or rule["record"], tuple(sorted(rule.get("labels", {}).items())))
            assert key not in seen, key
            seen.add(key)
