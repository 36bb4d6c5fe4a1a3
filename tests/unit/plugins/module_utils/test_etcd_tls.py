# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""etcd_tls: the mode of a member's settings file, and the plan of the
move from plain HTTP to TLS. The settings texts are the ones the role's
template writes in each mode (roles/etcd/templates/etcd.env.j2)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import etcd_tls

TLS_LINES = (
    "ETCD_CERT_FILE=/etc/etcd/pki/node.crt\nETCD_KEY_FILE=/etc/etcd/pki/node.key\n"
    "ETCD_PEER_CERT_FILE=/etc/etcd/pki/node.crt\nETCD_PEER_KEY_FILE=/etc/etcd/pki/node.key\n"
    "ETCD_PEER_TRUSTED_CA_FILE=/etc/etcd/pki/ca.crt\nETCD_PEER_CLIENT_CERT_AUTH=true\n"
)
ENV = {
    "plain": "# managed\nETCD_NAME=etcd-1\nETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379\n"
    "ETCD_ADVERTISE_CLIENT_URLS=http://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380\n",
    "armed": "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,https://0.0.0.0:2379\n"
    "ETCD_ADVERTISE_CLIENT_URLS=http://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380\n" + TLS_LINES,
    "bridge": "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,https://0.0.0.0:2379\n"
    "ETCD_ADVERTISE_CLIENT_URLS=http://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\n" + TLS_LINES,
    "tls": "ETCD_LISTEN_CLIENT_URLS=https://0.0.0.0:2379\n"
    "ETCD_ADVERTISE_CLIENT_URLS=https://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\n" + TLS_LINES,
}
HOSTS = ["10.10.10.10", "10.10.10.11", "10.10.10.12"]


@pytest.mark.parametrize("mode", etcd_tls.MODES)
def test_mode_of_the_files_the_template_writes(mode):
    assert etcd_tls.mode_of(ENV[mode]) == mode


@pytest.mark.parametrize(
    "text", [None, "", "# nothing\n", "ETCD_NAME=x\n", "ETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380\n"]
)
def test_mode_of_no_file_or_not_ours(text):
    assert etcd_tls.mode_of(text) is None


def test_mode_of_a_peer_certificate_without_https_client_port_is_armed():
    text = ENV["plain"] + "ETCD_PEER_CERT_FILE=/x\n"
    assert etcd_tls.mode_of(text) == "armed"


@pytest.mark.parametrize(
    "enabled, allow, mode",
    [
        (True, False, "tls"),
        (True, True, "bridge"),
        (False, True, "plain"),
        ("false", False, "plain"),
        ("yes", "yes", "bridge"),
        (None, None, "tls"),
    ],
)
def test_desired_mode(enabled, allow, mode):
    assert etcd_tls.desired_mode(enabled, allow) == mode


def plan(modes, desired, members=HOSTS):
    return etcd_tls.tls_plan({h: (ENV[m] if m else None) for h, m in modes.items()}, desired, "etcd", members)


def test_a_new_cluster_starts_in_the_mode_asked_for():
    out = plan({h: None for h in HOSTS}, "tls")
    assert (out["problem"], out["steps"]) == (None, [])


def test_plain_to_bridge_arms_every_member_then_moves_each_peer():
    out = plan({h: "plain" for h in HOSTS}, "bridge")
    assert out["problem"] is None
    assert out["arm"] == HOSTS and out["move_peers"] == HOSTS
    assert out["steps"] == [{"host": h, "mode": "armed"} for h in HOSTS] + [
        {"host": h, "mode": "bridge"} for h in HOSTS
    ]


def test_a_move_that_stopped_halfway_goes_on_where_it_stopped():
    out = plan({"10.10.10.10": "bridge", "10.10.10.11": "armed", "10.10.10.12": "armed"}, "bridge")
    assert out["problem"] is None
    assert out["steps"] == [{"host": "10.10.10.11", "mode": "bridge"}, {"host": "10.10.10.12", "mode": "bridge"}]


@pytest.mark.parametrize(
    "now, desired", [("bridge", "tls"), ("tls", "bridge"), ("tls", "tls"), ("bridge", "bridge"), ("plain", "plain")]
)
def test_no_step_when_the_peers_are_where_they_belong(now, desired):
    out = plan({h: now for h in HOSTS}, desired)
    assert (out["problem"], out["steps"]) == (None, [])


def test_plain_straight_to_tls_is_refused_with_the_three_steps():
    out = plan({h: "plain" for h in HOSTS}, "tls")
    assert out["steps"] == []
    assert "etcd_tls_allow_plain=true" in out["problem"] and "pgsql.yml" in out["problem"]
    assert "Nothing was changed" in out["problem"]


@pytest.mark.parametrize("now", ["armed", "bridge", "tls"])
def test_back_to_plain_is_refused(now):
    out = plan({"10.10.10.10": now, "10.10.10.11": "plain", "10.10.10.12": "plain"}, "plain")
    assert "10.10.10.10" in out["problem"] and "back to plain HTTP" in out["problem"]


def test_a_new_member_waits_until_the_move_is_done():
    out = plan({"10.10.10.10": "plain", "10.10.10.11": "plain", "10.10.10.12": None}, "bridge")
    assert "10.10.10.12 would join" in out["problem"] and out["steps"] == []


def test_a_new_member_joins_a_cluster_on_tls():
    out = plan({"10.10.10.10": "tls", "10.10.10.11": "tls", "10.10.10.12": None}, "tls")
    assert (out["problem"], out["steps"]) == (None, [])


def test_every_member_takes_part_in_a_move():
    out = etcd_tls.tls_plan({"10.10.10.10": ENV["plain"]}, "bridge", "etcd", HOSTS)
    assert "10.10.10.11, 10.10.10.12 are not in this play" in out["problem"]


def test_a_member_left_out_is_fine_when_nothing_moves():
    out = etcd_tls.tls_plan({"10.10.10.10": ENV["tls"]}, "tls", "etcd", HOSTS)
    assert out["problem"] is None


@pytest.mark.parametrize("desired", ["armed", "https", ""])
def test_desired_must_be_a_mode_a_run_ends_in(desired):
    with pytest.raises(ValueError):
        etcd_tls.tls_plan({}, desired)


@given(
    st.dictionaries(st.sampled_from(HOSTS), st.sampled_from(list(etcd_tls.MODES) + [None]), min_size=1),
    st.sampled_from(["plain", "bridge", "tls"]),
)
def test_every_plan_is_a_refusal_or_a_safe_order_of_steps(modes, desired):
    out = plan(modes, desired, members=list(modes))
    if out["problem"] is not None:
        assert out["steps"] == []
        assert "Nothing was changed" in out["problem"]
        return
    steps = out["steps"]
    # one step per member and mode; every member is armed before any peer moves
    assert len({(s["host"], s["mode"]) for s in steps}) == len(steps)
    modes_in_order = [s["mode"] for s in steps]
    assert modes_in_order == sorted(modes_in_order)  # "armed" < "bridge"
    # only a member on plain HTTP is armed, only one behind moves its peers
    for s in steps:
        assert modes[s["host"]] in (("plain",) if s["mode"] == "armed" else ("plain", "armed"))
    # after the steps, no member is left behind the mode asked for
    if desired != "plain":
        moved = {s["host"] for s in steps if s["mode"] == "bridge"}
        assert all(m in ("bridge", "tls", None) or h in moved for h, m in modes.items())
