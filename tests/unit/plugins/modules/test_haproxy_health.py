# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pigpen.pgsql.haproxy_health and its logic (module_utils/haproxy_admin.py
cluster_backends, health_commands): which servers' checks are stopped or
resumed, idempotence, check mode, a refusal. Against the real HAProxy:
tests/integration/test_haproxy_reload.py."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import haproxy_admin as admin
from ansible_collections.pigpen.pgsql.plugins.modules import haproxy_health as mod

SERVICES = [
    {"name": "pg-test-primary", "cluster": "pg-test", "check": "/primary"},
    {
        "name": "pg-test-replica",
        "cluster": "pg-test",
        "check": "/replica",
        "fallback": {"name": "pg-test-replica.fallback"},
    },
    {"name": "pg-meta-primary", "cluster": "pg-meta", "check": "/primary"},
]

# show servers state, as HAProxy 2.6 answers it (the columns this reads)
HEADER = "1\n# be_id be_name srv_id srv_name srv_op_state srv_admin_state srv_check_state\n"
RUNNING, STOPPED, NONE = 6, 2, 0  # srv_check_state: a running check, a stopped one, no check of its own


def row(backend, server, check=RUNNING, admin_state=0):
    return {"be_name": backend, "srv_name": server, "srv_check_state": str(check), "srv_admin_state": str(admin_state)}


def test_cluster_backends_include_the_fallback_tiers():
    assert admin.cluster_backends(SERVICES, "pg-test") == [
        "pg-test-primary",
        "pg-test-replica",
        "pg-test-replica.fallback",
    ]
    assert admin.cluster_backends(SERVICES, "pg-meta") == ["pg-meta-primary"]
    assert admin.cluster_backends(SERVICES, "pg-none") == []


ROWS = [
    row("pg-test-primary", "pg-test-1"),
    row("pg-test-primary", "pg-test-2"),
    # tracks pg-test-replica.fallback/pg-test-2: no check of its own
    row("pg-test-replica", "pg-test-2", NONE),
    row("pg-test-replica.fallback", "pg-test-2"),
    # in maintenance (removed from the cluster), its check configured
    row("pg-test-primary", "pg-test-3", 14, admin_state=1),
    row("pg-meta-primary", "pg-meta-1"),
]


def test_freezing_stops_every_check_of_the_cluster_once():
    backends = admin.cluster_backends(SERVICES, "pg-test")
    assert admin.health_commands(ROWS, backends, frozen=True) == [
        "disable health pg-test-primary/pg-test-1",
        "disable health pg-test-primary/pg-test-2",
        "disable health pg-test-replica.fallback/pg-test-2",
        "disable health pg-test-primary/pg-test-3",
    ]

    def stop(r):
        state = int(r["srv_check_state"])
        return dict(r, srv_check_state=str(state & ~admin.CHECK_ENABLED))

    stopped = [stop(r) if r["srv_name"].startswith("pg-test-") else r for r in ROWS]
    assert admin.health_commands(stopped, backends, frozen=True) == []
    assert admin.health_commands(stopped, backends, frozen=False) == [
        "enable health pg-test-primary/pg-test-1",
        "enable health pg-test-primary/pg-test-2",
        "enable health pg-test-replica.fallback/pg-test-2",
        "enable health pg-test-primary/pg-test-3",
    ]
    # resuming where nothing was stopped does nothing (pgsql.yml resumes on every run)
    assert admin.health_commands(ROWS, backends, frozen=False) == []
    # servers without a check (no check configured, or tracking) are never sent anything
    bare = [row("pg-test-primary", "x", NONE), row("pg-test-primary", "y", "junk")]
    assert admin.health_commands(bare, backends, frozen=True) == []
    assert admin.health_commands(bare, backends, frozen=False) == []


def test_parse_servers_state_reads_haproxy_26_output():
    text = (
        "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
        "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state\n"
        "3 pg-test-primary 1 pg-test-1 10.10.10.11 2 0 1 1 12 6 3 4 6\n"
        "3 pg-test-primary 2 pg-test-2 10.10.10.12 0 0 1 1 12 6 3 0 2\n\n"
    )
    rows = admin.parse_servers_state(text)
    assert [(r["be_name"], r["srv_name"], r["srv_check_state"]) for r in rows] == [
        ("pg-test-primary", "pg-test-1", "6"),
        ("pg-test-primary", "pg-test-2", "2"),
    ]
    assert admin.health_commands(rows, ["pg-test-primary"], frozen=False) == ["enable health pg-test-primary/pg-test-2"]
    with pytest.raises(ValueError, match="not the output of 'show servers state'"):
        admin.parse_servers_state("Unknown command\n")


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["s1", "s2"])),
        st.sampled_from([0, 2, 6, 10, 14]),
        max_size=6,
    )
)
def test_a_frozen_node_has_nothing_left_to_freeze(servers):
    """Applying the commands, then asking again, gives nothing to do; the
    same for resuming; servers without a check are never touched."""
    rows = [row(b, s, check) for (b, s), check in servers.items()]
    for frozen in (True, False):
        commands = admin.health_commands(rows, ["a", "b"], frozen=frozen)
        done = {tuple(c.split()[2].split("/")) for c in commands}

        def apply(r, frozen=frozen):
            state = int(r["srv_check_state"])
            state = state & ~admin.CHECK_ENABLED if frozen else state | admin.CHECK_ENABLED
            return dict(r, srv_check_state=str(state))

        after = [apply(r) if (r["be_name"], r["srv_name"]) in done else r for r in rows]
        assert admin.health_commands(after, ["a", "b"], frozen=frozen) == []
        assert all(c.split()[2].split("/")[0] in ("a", "b") for c in commands)
        assert not any(int(r["srv_check_state"]) == 0 and (r["be_name"], r["srv_name"]) in done for r in rows)


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = {"services": SERVICES, "cluster": "pg-test", "state": "frozen", "socket": "/x.sock"}
        self.params.update(params)
        self.check_mode = check_mode

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs["msg"])


class FakeHaproxy:
    """The admin socket: show servers state, and enable/disable health."""

    def __init__(self, answer=""):
        self.checking = {("pg-test-primary", "pg-test-1"): True, ("pg-test-primary", "pg-test-2"): True}
        self.sent, self.answer = [], answer

    def __call__(self, path, command):
        self.sent.append(command)
        if command == "show servers state":
            lines = [
                "3 %s 1 %s 0 0 %d" % (b, s, RUNNING if on else STOPPED) for (b, s), on in sorted(self.checking.items())
            ]
            return HEADER + "\n".join(lines) + "\n\n"
        verb, _, target = command.split()
        self.checking[tuple(target.split("/"))] = verb == "enable"
        return self.answer


def test_module_freezes_then_has_nothing_to_do_then_thaws():
    haproxy = FakeHaproxy()
    result = mod.run(FakeModule(), asker=haproxy)
    assert result["changed"] is True and len(result["commands"]) == 2
    assert mod.run(FakeModule(), asker=haproxy)["changed"] is False
    thawed = mod.run(FakeModule(state="checked"), asker=haproxy)
    assert thawed["commands"] == ["enable health pg-test-primary/pg-test-1", "enable health pg-test-primary/pg-test-2"]
    assert all(haproxy.checking.values())


def test_module_check_mode_sends_nothing_and_refusals_fail():
    haproxy = FakeHaproxy()
    assert mod.run(FakeModule(check_mode=True), asker=haproxy)["changed"] is True
    assert haproxy.sent == ["show servers state"]
    with pytest.raises(AssertionError, match="HAProxy refused 'disable health pg-test-primary/pg-test-1'"):
        mod.run(FakeModule(), asker=FakeHaproxy(answer="No such server.\n"))
    other = FakeHaproxy()
    assert mod.run(FakeModule(cluster="pg-none"), asker=other)["changed"] is False
    assert other.sent == []
