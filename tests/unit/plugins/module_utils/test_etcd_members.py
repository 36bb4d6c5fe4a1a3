# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""etcd_members against a small in-memory model of etcd 3.4's cluster API
(the calls, replies and error texts of its JSON gateway), and the
etcd_member module's retry loop. The real etcd is exercised by the
lifecycle Molecule scenario (a member joins and leaves the sandbox's etcd)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import etcd_members as em
from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import EtcdError
from ansible_collections.pigpen.pgsql.plugins.modules import etcd_member as mod


class FakeCluster:
    """Members keyed by id; ``down`` endpoints do not answer."""

    def __init__(self, names=("etcd-1",), auth=True, lagging=0):
        self.members = {}
        self.next_id = 100
        for name in names:  # etcd-N has the address 10.0.0.N
            self._add("http://10.0.0.%s:2380" % name.split("-")[1], name=name)
        self.auth = auth
        self.lagging = lagging  # promote refusals before the learner is in sync
        self.down = set()
        self.writes = []

    def _add(self, peer, name="", learner=False):
        self.next_id += 1
        self.members[str(self.next_id)] = {
            "ID": str(self.next_id),
            "name": name,
            "peerURLs": [peer],
            "isLearner": learner,
        }

    def reply(self):
        return {"members": [dict(m) for m in self.members.values()]}

    def post_for(self, endpoint):
        def post(path, body, headers):
            if endpoint in self.down:
                raise EtcdError("%s%s failed: connection refused" % (endpoint, path))
            if path == "/v3/auth/authenticate":
                if not self.auth:
                    raise EtcdError("etcdserver: authentication is not enabled", 400)
                if body != {"name": "root", "password": "Root.Pw"}:
                    raise EtcdError("etcdserver: authentication failed, invalid user ID or password", 400)
                return {"token": "tok"}
            if path == "/v3/cluster/member/list":
                return self.reply()
            if self.auth and headers.get("Authorization") != "tok":
                raise EtcdError("etcdserver: permission denied", 403)
            self.writes.append(path)
            if path == "/v3/cluster/member/add":
                self._add(body["peerURLs"][0], learner=body["isLearner"])
            elif path == "/v3/cluster/member/promote":
                if self.lagging:
                    self.lagging -= 1
                    raise EtcdError("etcdserver: can only promote a learner member which is in sync with leader", 400)
                self.members[body["ID"]]["isLearner"] = False
            elif path == "/v3/cluster/member/remove":
                del self.members[body["ID"]]
            elif path == "/v3/cluster/member/update":
                if body["ID"] not in self.members:
                    raise EtcdError("etcdserver: member not found", 404)
                self.members[body["ID"]]["peerURLs"] = list(body["peerURLs"])
            return self.reply()

        return post

    def endpoints(self, *urls):
        return [(u, self.post_for(u)) for u in urls]


E1 = "http://10.0.0.1:2379"
NEW = ("etcd-2", "http://10.0.0.2:2380")


def test_no_answer_means_bootstrap():
    cluster = FakeCluster()
    cluster.down.add(E1)
    result = em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    assert result["cluster_found"] is False
    assert result["initial_cluster_state"] == "new"
    assert result["changed"] is False and cluster.writes == []
    assert result["unreachable"] == ["%s: %s/v3/cluster/member/list failed: connection refused" % (E1, E1)]


def test_join_adds_a_learner_once():
    cluster = FakeCluster()
    first = em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    assert first["changed"] and first["learner"] and first["cluster_found"]
    assert first["initial_cluster"] == "etcd-1=http://10.0.0.1:2380,etcd-2=http://10.0.0.2:2380"
    assert first["initial_cluster_state"] == "existing"
    # a repeated run (the member failed to start) adds nothing
    again = em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    assert not again["changed"] and again["initial_cluster"] == first["initial_cluster"]
    assert cluster.writes == ["/v3/cluster/member/add"]


def test_join_in_check_mode_writes_nothing():
    cluster = FakeCluster()
    result = em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw", check_mode=True)
    assert result["changed"] and result["initial_cluster_state"] == "existing"
    assert result["initial_cluster"].endswith("etcd-2=http://10.0.0.2:2380")
    assert cluster.writes == []


def test_join_skips_a_member_that_does_not_answer():
    cluster = FakeCluster(names=("etcd-1", "etcd-3"), auth=False)
    cluster.down.add(E1)
    result = em.ensure_member(cluster.endpoints(E1, "http://10.0.0.3:2379"), *NEW, None)
    assert result["endpoint"] == "http://10.0.0.3:2379" and result["changed"]
    assert len(result["unreachable"]) == 1
    assert result["initial_cluster"] == (
        "etcd-1=http://10.0.0.1:2380,etcd-3=http://10.0.0.3:2380,etcd-2=http://10.0.0.2:2380"
    )


def test_join_without_authentication():
    cluster = FakeCluster(auth=False)
    result = em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw", learner=False)
    assert result["changed"] and not result["learner"]


def test_wrong_root_password_is_an_error():
    cluster = FakeCluster()
    with pytest.raises(EtcdError, match="authentication failed"):
        em.ensure_member(cluster.endpoints(E1), *NEW, "wrong")


def test_a_second_unstarted_member_is_refused():
    cluster = FakeCluster()
    em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    with pytest.raises(EtcdError, match="never started"):
        em.ensure_member(cluster.endpoints(E1), "etcd-3", "http://10.0.0.3:2380", "Root.Pw")


def test_a_started_member_without_data_must_be_removed_first():
    cluster = FakeCluster(names=("etcd-1", "etcd-2"))
    with pytest.raises(EtcdError, match="data directory here is empty"):
        em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")


@pytest.mark.parametrize(
    "name,peer,message",
    [
        ("etcd-1", "http://10.0.0.9:2380", "already exists with peer URLs http://10.0.0.1:2380"),
        ("etcd-7", "http://10.0.0.1:2380", "belongs to member etcd-1, not etcd-7"),
    ],
)
def test_name_or_url_taken(name, peer, message):
    cluster = FakeCluster()
    with pytest.raises(EtcdError, match=message):
        em.ensure_member(cluster.endpoints(E1), name, peer, "Root.Pw")


def test_promote_after_catching_up():
    cluster = FakeCluster(lagging=2)
    em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    with pytest.raises(EtcdError) as caught:
        em.promote(cluster.endpoints(E1), *NEW, "Root.Pw")
    assert caught.value.retry
    sleeps = []
    params = {
        "endpoints": [E1],
        "name": NEW[0],
        "peer_url": NEW[1],
        "root_password": "Root.Pw",
        "state": "voting",
        "learner": True,
        "wait": 30,
        "timeout": 1,
    }
    result = mod.run(params, False, sleep=sleeps.append, clock=lambda: 0, post_for=cluster.post_for)
    assert result["changed"] and sleeps == [1]
    assert not any(m["isLearner"] for m in cluster.members.values())
    again = mod.run(params, False, post_for=cluster.post_for)
    assert again["changed"] is False


def test_promote_gives_up_after_wait():
    cluster = FakeCluster(lagging=99)
    em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    times = iter([0, 5, 61])
    params = {
        "endpoints": [E1],
        "name": NEW[0],
        "peer_url": NEW[1],
        "root_password": "Root.Pw",
        "state": "voting",
        "learner": True,
        "wait": 60,
        "timeout": 1,
    }
    with pytest.raises(EtcdError, match="in sync"):
        mod.run(params, False, sleep=lambda s: None, clock=lambda: next(times), post_for=cluster.post_for)


def test_promote_an_unknown_member_is_an_error():
    cluster = FakeCluster()
    with pytest.raises(EtcdError, match="is not a member"):
        em.promote(cluster.endpoints(E1), *NEW, "Root.Pw")


def test_remove_through_a_member_that_stays():
    cluster = FakeCluster(names=("etcd-1", "etcd-2"))
    result = em.remove_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    assert result["changed"] and [m["name"] for m in result["members"]] == ["etcd-1"]
    again = em.remove_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    assert again["changed"] is False
    assert cluster.writes == ["/v3/cluster/member/remove"]


def test_remove_in_check_mode_and_refusals():
    cluster = FakeCluster(names=("etcd-1", "etcd-2"))
    assert em.remove_member(cluster.endpoints(E1), *NEW, "Root.Pw", check_mode=True)["changed"]
    assert cluster.writes == []
    with pytest.raises(EtcdError, match="last member"):
        em.remove_member(FakeCluster().endpoints(E1), "etcd-1", "http://10.0.0.1:2380", "Root.Pw")
    cluster.down.add(E1)
    with pytest.raises(EtcdError, match="none of the members that stay answers"):
        em.remove_member(cluster.endpoints(E1), *NEW, "Root.Pw")
    with pytest.raises(EtcdError, match="none given"):
        em.remove_member([], *NEW, "Root.Pw")


def test_members_of_reads_the_gateway_reply():
    reply = {
        "members": [
            {
                "ID": "9981843453934057947",
                "name": "etcd-1",
                "peerURLs": ["http://10.10.10.10:2380"],
                "clientURLs": ["http://10.10.10.10:2379"],
            }
        ]
    }
    assert em.members_of(reply) == [
        {
            "id": "9981843453934057947",
            "name": "etcd-1",
            "peer_urls": ["http://10.10.10.10:2380"],
            "client_urls": ["http://10.10.10.10:2379"],
            "learner": False,
        }
    ]
    assert em.members_of({}) == []


@given(
    st.lists(st.integers(min_value=1, max_value=250), min_size=1, max_size=7, unique=True),
    st.integers(min_value=1, max_value=250),
)
def test_initial_cluster_lists_every_member_once(octets, mine):
    members = [{"name": "etcd-%d" % o, "peer_urls": ["http://10.0.0.%d:2380" % o]} for o in octets]
    peer = "http://10.0.0.%d:2380" % mine
    text = em.initial_cluster(members, "etcd-%d" % mine, peer)
    pairs = text.split(",")
    assert len(pairs) == len(set(octets) | {mine})
    assert "etcd-%d=%s" % (mine, peer) in pairs
    assert len(set(p.split("=")[0] for p in pairs)) == len(pairs)


class Electing:
    """Wraps a FakeCluster: the first ``times`` calls get etcd's election reply."""

    def __init__(self, cluster, times, reply="etcdserver: leader changed"):
        self.cluster, self.times, self.reply = cluster, times, reply

    def post_for(self, endpoint):
        post = self.cluster.post_for(endpoint)

        def flaky(path, body, headers):
            if self.times:
                self.times -= 1
                raise EtcdError("%s: %s" % (path, self.reply), 503)
            return post(path, body, headers)

        return flaky


def test_remove_runs_again_while_etcd_elects_a_leader():
    cluster = FakeCluster(names=("etcd-1", "etcd-2", "etcd-3"))
    params = {
        "endpoints": [E1],
        "name": "etcd-3",
        "peer_url": "http://10.0.0.3:2380",
        "root_password": "Root.Pw",
        "state": "absent",
        "learner": True,
        "wait": 30,
        "timeout": 1,
    }
    sleeps = []
    result = mod.run(params, False, sleep=sleeps.append, clock=lambda: 0, post_for=Electing(cluster, 2).post_for)
    assert result["changed"] is True and sleeps == [1, 1]
    assert sorted(m["name"] for m in cluster.members.values()) == ["etcd-1", "etcd-2"]


def test_other_errors_and_a_long_election_are_not_retried():
    cluster = FakeCluster(names=("etcd-1", "etcd-2"))
    params = {
        "endpoints": [E1],
        "name": "etcd-2",
        "peer_url": "http://10.0.0.2:2380",
        "root_password": "Root.Pw",
        "state": "absent",
        "learner": True,
        "wait": 30,
        "timeout": 1,
    }
    with pytest.raises(EtcdError, match="permission denied"):
        mod.run(
            params,
            False,
            sleep=lambda s: None,
            clock=lambda: 0,
            post_for=Electing(cluster, 1, "etcdserver: permission denied").post_for,
        )
    times = iter([0, 5, 30])  # start, then past the 20 s
    with pytest.raises(EtcdError, match="no leader"):
        mod.run(
            params,
            False,
            sleep=lambda s: None,
            clock=lambda: next(times),
            post_for=Electing(cluster, 5, "etcdserver: no leader").post_for,
        )
    assert len(cluster.members) == 2


HTTPS2 = "https://10.0.0.2:2380"


def _moved(cluster, name="etcd-2", peer=HTTPS2, check_mode=False, endpoints=(E1, "http://10.0.0.2:2379")):
    return em.move_peer(cluster.endpoints(*endpoints), name, peer, "Root.Pw", check_mode=check_mode)


@pytest.mark.parametrize(
    "case, peer, check_mode, changed, writes, now",
    [
        ("unchanged", "http://10.0.0.2:2380", False, False, [], "http://10.0.0.2:2380"),
        ("changed", HTTPS2, False, True, ["/v3/cluster/member/update"], HTTPS2),
        ("check mode", HTTPS2, True, True, [], "http://10.0.0.2:2380"),
    ],
)
def test_move_peer(case, peer, check_mode, changed, writes, now):
    cluster = FakeCluster(names=("etcd-1", "etcd-2", "etcd-3"))
    result = _moved(cluster, peer=peer, check_mode=check_mode)
    assert result["changed"] is changed, case
    assert result["endpoint"] == E1 and result["old_peer_urls"] == ["http://10.0.0.2:2380"]
    assert cluster.writes == writes
    assert cluster.members["102"]["peerURLs"] == [now]
    # the reported members show the wanted state, in check mode too
    assert {m["name"]: m["peer_urls"] for m in result["members"]}["etcd-2"] == [peer]
    if changed and not check_mode:  # found by name: a second run has nothing to do
        again = _moved(cluster, peer=peer)
        assert again["changed"] is False and again["old_peer_urls"] == [peer]
        assert cluster.writes == writes


def test_move_peer_through_the_member_itself_and_without_authentication():
    cluster = FakeCluster(names=("etcd-1", "etcd-2"), auth=False)
    cluster.down.add(E1)
    result = _moved(cluster)
    assert result["changed"] and result["endpoint"] == "http://10.0.0.2:2379"
    assert cluster.members["102"]["peerURLs"] == [HTTPS2]


@pytest.mark.parametrize(
    "case, name, peer, down, message",
    [
        ("unknown name", "etcd-7", HTTPS2, (), "etcd-7 is not a started member.*started: etcd-1, etcd-2.*Fix:"),
        ("empty name", "", HTTPS2, (), "is not a started member"),
        ("no answer", "etcd-2", HTTPS2, (E1, "http://10.0.0.2:2379"), "no member answers.*connection refused.*Fix:"),
        ("taken URL", "etcd-2", "http://10.0.0.1:2380", (), "belongs to member etcd-1, not etcd-2.*Fix:"),
    ],
)
def test_move_peer_refusals(case, name, peer, down, message):
    cluster = FakeCluster(names=("etcd-1", "etcd-2"))
    cluster.down.update(down)
    with pytest.raises(EtcdError, match=message):
        _moved(cluster, name=name, peer=peer)
    assert cluster.writes == [], case


def test_move_peer_skips_an_unstarted_member():
    cluster = FakeCluster(names=("etcd-1",))
    em.ensure_member(cluster.endpoints(E1), *NEW, "Root.Pw")  # added, never started: no name
    with pytest.raises(EtcdError, match="etcd-2 is not a started member"):
        _moved(cluster, endpoints=(E1,))
    with pytest.raises(EtcdError, match="none given"):
        em.move_peer([], "etcd-2", HTTPS2, "Root.Pw")


def moved_params(**over):
    """The module's parameters for state moved of etcd-2 to HTTPS2."""
    params = {"name": "etcd-2", "peer_url": HTTPS2, "root_password": "Root.Pw", "state": "moved"}
    params.update(learner=True, wait=30, **over)
    return params


def test_moved_runs_again_while_etcd_elects_a_leader():
    cluster = FakeCluster(names=("etcd-1", "etcd-2", "etcd-3"))
    params = moved_params(endpoints=[E1], timeout=1, ca_cert=None)
    sleeps = []
    result = mod.run(params, False, sleep=sleeps.append, clock=lambda: 0, post_for=Electing(cluster, 2).post_for)
    assert result["changed"] is True and sleeps == [1, 1]
    assert cluster.members["102"]["peerURLs"] == [HTTPS2]


def test_run_builds_posts_with_the_ca_cert(monkeypatch):
    cluster = FakeCluster(names=("etcd-1", "etcd-2"))
    made = []

    def fake_make_post(url, timeout, ca_path=None):
        made.append((url, timeout, ca_path))
        return cluster.post_for(url)

    monkeypatch.setattr(mod, "make_post", fake_make_post)
    params = moved_params(endpoints=["https://10.0.0.1:2379"], timeout=3, ca_cert="/etc/etcd/ca.crt")
    assert mod.run(params, True)["changed"] is True
    assert made == [("https://10.0.0.1:2379", 3, "/etc/etcd/ca.crt")]
