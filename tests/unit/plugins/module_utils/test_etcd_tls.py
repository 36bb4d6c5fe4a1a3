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
    "armed": "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,https://0.0.0.0:2382\n"
    "ETCD_ADVERTISE_CLIENT_URLS=http://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=http://0.0.0.0:2380\n" + TLS_LINES,
    "bridge": "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,https://0.0.0.0:2382\n"
    "ETCD_ADVERTISE_CLIENT_URLS=http://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\n" + TLS_LINES,
    "closing": "ETCD_LISTEN_CLIENT_URLS=https://0.0.0.0:2379,https://0.0.0.0:2382\n"
    "ETCD_ADVERTISE_CLIENT_URLS=https://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\n" + TLS_LINES,
    "tls": "ETCD_LISTEN_CLIENT_URLS=https://0.0.0.0:2379\n"
    "ETCD_ADVERTISE_CLIENT_URLS=https://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\n" + TLS_LINES,
}
# an earlier release served both schemes on the client port
OLD_BRIDGE = (
    "ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379,https://0.0.0.0:2379\n"
    "ETCD_ADVERTISE_CLIENT_URLS=http://10.10.10.10:2379\nETCD_LISTEN_PEER_URLS=https://0.0.0.0:2380\n" + TLS_LINES
)
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


def plan(modes, desired, members=HOSTS, clients=None):
    return etcd_tls.tls_plan(
        {h: (ENV[m] if m else None) for h, m in modes.items()}, desired, "etcd", members, clients or {}, 2382
    )


def steps(out):
    return [(s["host"], s["mode"]) for s in out["steps"]]


def test_a_new_cluster_starts_in_the_mode_asked_for():
    out = plan({h: None for h in HOSTS}, "tls")
    assert (out["problem"], out["steps"]) == (None, [])


def test_plain_to_bridge_arms_every_member_then_moves_each_peer():
    out = plan({h: "plain" for h in HOSTS}, "bridge")
    assert out["problem"] is None
    assert steps(out) == [(h, "armed") for h in HOSTS] + [(h, "bridge") for h in HOSTS]
    assert out["steps"][0]["after"] == {HOSTS[0]: "armed", HOSTS[1]: "plain", HOSTS[2]: "plain"}
    assert out["final"] == {h: "bridge" for h in HOSTS}
    assert out["client"] == {"scheme": "https", "bridge": True}


def test_a_move_that_stopped_halfway_goes_on_where_it_stopped():
    out = plan({"10.10.10.10": "bridge", "10.10.10.11": "armed", "10.10.10.12": "armed"}, "bridge")
    assert out["problem"] is None
    assert steps(out) == [("10.10.10.11", "bridge"), ("10.10.10.12", "bridge")]


@pytest.mark.parametrize(
    "now, desired",
    [("tls", "bridge"), ("closing", "bridge"), ("tls", "tls"), ("bridge", "bridge"), ("plain", "plain")],
)
def test_no_step_when_the_members_are_where_they_belong(now, desired):
    out = plan({h: now for h in HOSTS}, desired)
    assert (out["problem"], out["steps"]) == (None, [])
    assert out["final"] == {h: now for h in HOSTS}


def test_allow_plain_does_not_open_plain_http_again():
    out = plan({h: "closing" for h in HOSTS}, "bridge")
    assert "closed already" in out["notice"]


@pytest.mark.parametrize("route", ["http", "unknown"])
def test_closing_plain_http_is_refused_while_a_patroni_uses_it(route):
    out = plan({h: "bridge" for h in HOSTS}, "tls", clients={"10.10.10.21": "bridge", "10.10.10.22": route})
    assert "would cut off Patroni on 10.10.10.22" in out["problem"] and "pgsql.yml" in out["problem"]
    assert out["steps"] == [] and out["final"] == {h: "bridge" for h in HOSTS}


def test_plain_http_closes_and_the_bridge_port_stays_while_patroni_uses_it():
    out = plan({h: "bridge" for h in HOSTS}, "tls", clients={"10.10.10.21": "bridge", "10.10.10.22": "none"})
    assert out["problem"] is None
    assert steps(out) == [(h, "closing") for h in HOSTS]
    assert out["final"] == {h: "closing" for h in HOSTS}
    assert "10.10.10.21" in out["notice"] and "2382" in out["notice"]
    assert out["client"] == {"scheme": "https", "bridge": False}


def test_the_bridge_port_closes_once_no_patroni_uses_it():
    out = plan({h: "closing" for h in HOSTS}, "tls", clients={"10.10.10.21": "https"})
    assert steps(out) == [(h, "tls") for h in HOSTS] and out["notice"] is None


@pytest.mark.parametrize("route", ["bridge", "unknown"])
def test_the_bridge_port_stays_while_a_patroni_may_use_it(route):
    out = plan({h: "closing" for h in HOSTS}, "tls", clients={"10.10.10.21": route})
    assert (out["problem"], out["steps"]) == (None, []) and out["notice"]
    assert out["final"] == {h: "closing" for h in HOSTS}


def test_without_clients_bridge_goes_to_tls_in_one_run():
    out = plan({h: "bridge" for h in HOSTS}, "tls")
    assert steps(out) == [(h, "closing") for h in HOSTS] + [(h, "tls") for h in HOSTS]
    assert out["final"] == {h: "tls" for h in HOSTS}


OLD_ARMED = OLD_BRIDGE.replace("ETCD_LISTEN_PEER_URLS=https://", "ETCD_LISTEN_PEER_URLS=http://")


def test_a_file_of_an_earlier_release_with_both_schemes_on_one_port():
    assert etcd_tls.mode_of(OLD_BRIDGE) == "bridge-shared"
    assert etcd_tls.mode_of(OLD_ARMED) == "armed-shared"


def shared_plan(desired, clients):
    texts = {HOSTS[0]: OLD_BRIDGE, HOSTS[1]: OLD_BRIDGE, HOSTS[2]: ENV["bridge"]}
    return etcd_tls.tls_plan(texts, desired, "etcd", HOSTS, clients, 2382)


def test_an_earlier_release_s_bridge_is_rewritten_to_the_bridge_port_while_patroni_uses_plain_http():
    out = shared_plan("bridge", {"p1": "http"})
    assert out["problem"] is None
    assert [(s["host"], s["mode"], s["before"]) for s in out["steps"]] == [
        (HOSTS[0], "bridge", "bridge-shared"),
        (HOSTS[1], "bridge", "bridge-shared"),
    ]
    assert out["final"] == {h: "bridge" for h in HOSTS}


def test_an_earlier_release_s_bridge_goes_to_closing_while_patroni_uses_https_on_the_client_port():
    out = shared_plan("tls", {"p1": "https"})
    assert [(s["host"], s["mode"]) for s in out["steps"]] == [
        (HOSTS[0], "closing"),
        (HOSTS[1], "closing"),
        (HOSTS[2], "closing"),
        (HOSTS[0], "tls"),
        (HOSTS[1], "tls"),
        (HOSTS[2], "tls"),
    ]


def test_an_earlier_release_s_bridge_with_patroni_on_both_schemes_is_refused():
    out = shared_plan("tls", {"p1": "https", "p2": "http"})
    assert "no single step keeps both" in out["problem"] and out["steps"] == []


def test_an_earlier_release_s_armed_member_is_rewritten_to_armed():
    out = etcd_tls.tls_plan({HOSTS[0]: OLD_ARMED, HOSTS[1]: ENV["plain"]}, "bridge", "etcd", HOSTS[:2])
    assert [(s["host"], s["mode"]) for s in out["steps"]] == [
        (HOSTS[0], "armed"),
        (HOSTS[1], "armed"),
        (HOSTS[0], "bridge"),
        (HOSTS[1], "bridge"),
    ]


@pytest.mark.parametrize("running, joins", [("tls", "tls"), ("closing", "closing")])
def test_a_new_member_never_opens_plain_http_again(running, joins):
    out = plan({HOSTS[0]: running, HOSTS[1]: running, HOSTS[2]: None}, "bridge")
    assert out["problem"] is None and out["steps"] == []
    assert out["final"][HOSTS[2]] == joins
    assert out["client"] == {"scheme": "https", "bridge": False}


def test_a_new_member_of_a_bridged_cluster_joins_in_bridge():
    out = plan({HOSTS[0]: "bridge", HOSTS[1]: "bridge", HOSTS[2]: None}, "bridge")
    assert out["problem"] is None and out["final"][HOSTS[2]] == "bridge"
    assert out["client"] == {"scheme": "https", "bridge": True}


@pytest.mark.parametrize(
    "etcd3, route",
    [
        (None, "none"),
        ({}, "none"),
        ({"protocol": "http", "hosts": ["10.0.0.1:2379"]}, "http"),
        ({"hosts": ["10.0.0.1:2379"]}, "http"),
        ({"protocol": "https", "hosts": ["10.0.0.1:2379", "10.0.0.2:2379"]}, "https"),
        ({"protocol": "https", "hosts": ["10.0.0.1:2382"], "use_proxies": True}, "bridge"),
        ({"protocol": "https", "hosts": "10.0.0.1:2382,10.0.0.2:2382"}, "bridge"),
    ],
)
def test_client_route(etcd3, route):
    assert etcd_tls.client_route(etcd3, 2382) == route


@pytest.mark.parametrize(
    "modes, port",
    [
        (["bridge", "bridge"], "bridge"),
        (["armed", "bridge"], "bridge"),
        (["bridge", "closing"], "bridge"),
        (["closing", "closing"], "client"),
        (["closing", "tls"], "client"),
        ([None, None], "client"),
        (["tls"], "client"),
    ],
)
def test_clients_port(modes, port):
    assert etcd_tls.clients_port(modes) == port


def test_plain_straight_to_tls_is_refused_with_the_three_steps():
    out = plan({h: "plain" for h in HOSTS}, "tls")
    assert out["steps"] == []
    assert "etcd_tls_allow_plain=true" in out["problem"] and "pgsql.yml" in out["problem"]
    assert "Nothing was changed" in out["problem"]


@pytest.mark.parametrize("now", ["armed", "bridge", "closing", "tls"])
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


@pytest.mark.parametrize("desired", ["armed", "closing", "https", ""])
def test_desired_must_be_a_mode_a_run_ends_in(desired):
    with pytest.raises(ValueError):
        etcd_tls.tls_plan({}, desired)


ORDER = {"armed": 0, "bridge": 1, "closing": 2, "tls": 3}


@given(
    st.dictionaries(st.sampled_from(HOSTS), st.sampled_from(list(etcd_tls.MODES) + [None]), min_size=1),
    st.sampled_from(["plain", "bridge", "tls"]),
    st.dictionaries(st.sampled_from(["c1", "c2"]), st.sampled_from(etcd_tls.ROUTES)),
)
def test_every_plan_is_a_refusal_or_a_safe_order_of_steps(modes, desired, clients):
    out = plan(modes, desired, members=list(modes), clients=clients)
    if out["problem"] is not None:
        assert out["steps"] == []
        assert "Nothing was changed" in out["problem"]
        return
    steps_ = out["steps"]
    # one step per member and mode, in the order of the move
    assert len({(s["host"], s["mode"]) for s in steps_}) == len(steps_)
    order = [ORDER[s["mode"]] for s in steps_]
    assert order == sorted(order)
    now = {h: m for h, m in modes.items()}
    for s in steps_:
        # a member only goes forward, one mode at a time
        before = now[s["host"]]
        assert (
            before
            in {"armed": ("plain",), "bridge": ("plain", "armed"), "closing": ("bridge",), "tls": ("closing",)}[
                s["mode"]
            ]
        )
        assert s["before"] == before
        now[s["host"]] = s["mode"]
        assert {h: m for h, m in s["after"].items() if modes[h] is not None} == {
            h: m for h, m in now.items() if m is not None
        }
        # no step takes away what a client uses: plain HTTP while a Patroni
        # uses it, the bridge port while one may use it
        if s["mode"] == "closing":
            assert not any(r in ("http", "unknown") for r in clients.values())
        if s["mode"] == "tls":
            assert not any(r in ("bridge", "unknown") for r in clients.values())
    # after the steps, no member is left behind the mode asked for
    if desired != "plain":
        assert all(m not in ("plain", "armed") for m in out["final"].values())
