# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/etcd_vip.py: pg-vip's configuration of a member
(the keys roles/vip/files/pg_vip.py reads), over plain and TLS etcd."""

from __future__ import annotations

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    etcd_vip,
    ha,
    model as model_mod,
    plan,
    settings as settings_mod,
    validate,
)
from inv import build, cluster


def _plans(host="10.10.10.12"):
    hv, groups = build(
        cluster(
            "pg-test",
            {
                "10.10.10.11": {"pg_seq": 1, "pg_role": "primary"},
                "10.10.10.12": {"pg_seq": 2, "pg_role": "replica"},
            },
            pg_vip_enabled=True,
            pg_vip_address="10.10.10.3/24",
            pg_vip_interface="eth0",
        )
    )
    inv = validate.require(model_mod.load(hv, groups))
    return plan.cluster_plan(inv, "pg-test"), plan.instance_plan(inv, host), settings_mod.build_settings(hv[host])


ETCD3 = {"hosts": ["10.10.10.10:2379"], "protocol": "http", "username": "pg-test", "password": "DCS.Patroni"}


def test_vip_config_over_plain_etcd_has_no_etcd_ca():
    cplan, iplan, s = _plans()
    conf = etcd_vip.vip_config(cplan, iplan, ETCD3, s)
    assert conf["endpoints"] == ["http://10.10.10.10:2379"]
    assert conf["etcd_cafile"] == ""
    assert (conf["username"], conf["password"]) == ("pg-test", "DCS.Patroni")
    assert conf["instance"] == "pg-test-2" and conf["address"] == "10.10.10.3"


def test_vip_config_over_tls_etcd_verifies_with_the_etcd3_ca():
    """etcd_tls_enabled: Patroni's etcd3 block carries protocol https and
    the CA on the node; pg-vip reads etcd the same way."""
    cplan, iplan, s = _plans()
    etcd3 = dict(ETCD3, protocol="https", cacert="/pg/cert/ca.crt")
    conf = etcd_vip.vip_config(cplan, iplan, etcd3, s)
    assert conf["endpoints"] == ["https://10.10.10.10:2379"]
    assert conf["etcd_cafile"] == "/pg/cert/ca.crt"
    # the keys pg_vip.py reads, no more
    assert sorted(conf) == sorted(
        [
            "address",
            "prefix",
            "interface",
            "key",
            "instance",
            "endpoints",
            "etcd_cafile",
            "username",
            "password",
            "patroni_url",
            "patroni_cafile",
            "interval_ms",
            "hold_ms",
        ]
    )


def test_a_standby_cluster_falls_back_on_the_standby_leader_check():
    """With etcd down, pg-vip asks the local Patroni: a standby cluster's
    leader for its role on /patroni, never /primary (docs/dr.md)."""
    cplan, iplan, s = _plans()
    assert "patroni_check" not in etcd_vip.vip_config(cplan, iplan, ETCD3, s)
    standby = dict(cplan, identity=dict(cplan["identity"], standby=True))
    assert etcd_vip.vip_config(standby, iplan, ETCD3, s)["patroni_check"] == "standby_leader"


@pytest.mark.parametrize(
    "pg_rto, hold",
    [
        ("fast", None),
        ("norm", 12500),  # ttl 30, loop_wait 5
        ("safe", None),
    ],
)
def test_hold_ms_is_half_the_time_the_leader_key_outlives_its_last_renewal(pg_rto, hold):
    patroni = ha.ha_plan(pg_rto)["patroni"]
    expected = (patroni["ttl"] - patroni["loop_wait"]) * 500
    assert etcd_vip.hold_ms(patroni) == expected
    if hold is not None:
        assert expected == hold
    assert 0 < expected < patroni["ttl"] * 1000


def test_hold_ms_is_never_negative():
    assert etcd_vip.hold_ms({"ttl": 5, "loop_wait": 10}) == 0
