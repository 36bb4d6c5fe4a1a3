# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""module_utils/haproxy_admin.py and the haproxy_primary module.

The ``show stat`` text is shaped like HAProxy 2.6's answer (the header's
first columns, then one row per server). The module runs against real
HAProxy in playbooks/pgsql-switchover.yml, which the chaos suite's
switchover scenario drives (molecule/ha)."""

from __future__ import annotations

import pytest
from fake_etcd import Clock
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import haproxy_admin as admin
from ansible_collections.pigpen.pgsql.plugins.modules import haproxy_primary as mod

HEADER = (
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n"
)


def stat(*rows):
    """``show stat`` text from (backend, server, status) triples."""
    lines = ["%s,%s,0,0,0,0,3000,0,0,0,,0,,0,0,0,0,%s,100" % row for row in rows]
    return HEADER + "\n".join(lines) + "\n\n"


SERVICES = [
    {"name": "pg-test-primary", "cluster": "pg-test", "check": "/primary"},
    {"name": "pg-test-replica", "cluster": "pg-test", "check": "/read-only"},
    {"name": "pg-test-default", "cluster": "pg-test", "check": "/primary"},
    {"name": "pg-test-offline", "cluster": "pg-test", "check": "/replica"},
    {"name": "pg-test-standby", "cluster": "pg-test", "check": "/primary?lag=0"},
    {"name": "pg-meta-primary", "cluster": "pg-meta", "check": "/primary"},
]


def test_primary_backends_of_one_cluster():
    assert admin.primary_backends(SERVICES, "pg-test") == ["pg-test-default", "pg-test-primary", "pg-test-standby"]
    assert admin.primary_backends(SERVICES, "pg-meta") == ["pg-meta-primary"]
    assert admin.primary_backends(SERVICES, "pg-none") == []
    assert admin.primary_backends([{"name": "x-primary", "cluster": "x"}], "x") == ["x-primary"]  # default check


def test_parse_stat():
    rows = admin.parse_stat(stat(("pg-test-primary", "pg-test-1", "UP"), ("pg-test-primary", "BACKEND", "UP")))
    assert [(r["pxname"], r["svname"], r["status"]) for r in rows] == [
        ("pg-test-primary", "pg-test-1", "UP"),
        ("pg-test-primary", "BACKEND", "UP"),
    ]
    with pytest.raises(ValueError, match="show stat"):
        admin.parse_stat("Unknown command\n")


# After pg-test-1 -> pg-test-2: what each state of the old and new primary needs.
@pytest.mark.parametrize(
    "old,new,expected",
    [
        ("UP", "DOWN", ["set server b/pg-test-1 health down", "set server b/pg-test-2 health up"]),
        ("UP 1/3", "DOWN 1/2", ["set server b/pg-test-1 health down", "set server b/pg-test-2 health up"]),
        ("DOWN", "DOWN 2/3", ["set server b/pg-test-2 health up"]),
        ("DOWN", "UP", []),  # HAProxy agrees already: nothing sent
        ("MAINT", "UP", []),  # an operator's maintenance stays
        ("DRAIN", "DOWN", ["set server b/pg-test-2 health up"]),
        ("NOLB", "UP", ["set server b/pg-test-1 health down"]),
        ("DOWN", "MAINT", []),  # nor is the new primary taken out of maintenance
    ],
)
def test_primary_commands(old, new, expected):
    rows = admin.parse_stat(
        stat(
            ("b", "pg-test-1", old),
            ("b", "pg-test-2", new),
            ("b", "pg-test-3", "DOWN"),
            ("b", "BACKEND", "UP"),
            ("other", "pg-test-1", "UP"),
        )
    )
    assert sorted(admin.primary_commands(rows, ["b"], "pg-test-2")) == expected


STATUS = st.sampled_from(["UP", "DOWN", "MAINT", "DRAIN", "NOLB", "no check", "UP 1/3", "DOWN 1/2"])


@given(
    st.lists(
        st.tuples(st.sampled_from(["pg-test-1", "pg-test-2", "pg-test-3"]), STATUS),
        min_size=1,
        max_size=3,
        unique_by=lambda t: t[0],
    )
)
def test_after_the_commands_only_the_primary_is_up(servers):
    rows = admin.parse_stat(stat(*[("b", name, status) for name, status in servers]))
    commands = admin.primary_commands(rows, ["b"], "pg-test-2")
    state = {name: status for name, status in servers}
    for command in commands:
        target, health = command.split()[2], command.split()[-1]
        state[target.split("/")[1]] = health.upper()
    for name, status in state.items():
        if status.startswith(("MAINT", "DRAIN")):
            continue
        assert (status == "UP") == (name == "pg-test-2") or status == "no check"
    # applying them changes nothing more
    after = admin.parse_stat(stat(*[("b", name, status) for name, status in state.items()]))
    assert admin.primary_commands(after, ["b"], "pg-test-2") == []


def test_standby_backends_take_the_effective_check():
    services = SERVICES + [
        {
            "name": "pg-test-reads",
            "cluster": "pg-test",
            "check": "/replica?lag=1MB",
            "declared_check": "/read-only?lag=1MB",
        },
        {"name": "pg-test-sync", "cluster": "pg-test", "check": "/sync"},
        {"name": "pg-meta-offline", "cluster": "pg-meta", "check": "/replica"},
    ]
    assert admin.standby_backends(services, "pg-test") == ["pg-test-offline", "pg-test-reads", "pg-test-sync"]
    assert admin.standby_backends(services, "pg-none") == []


@pytest.mark.parametrize(
    "status,expected",
    [
        ("UP", ["set server r/pg-test-2 health down"]),
        ("UP 2/3", ["set server r/pg-test-2 health down"]),  # going down: say it now
        ("NOLB", ["set server r/pg-test-2 health down"]),
        ("DOWN", []),
        ("DOWN 1/3", []),  # HAProxy agrees already
        ("MAINT", []),
        ("DRAIN", []),  # an operator's state stays
    ],
)
def test_standby_commands(status, expected):
    rows = admin.parse_stat(
        stat(
            ("r", "pg-test-1", "DOWN"),
            ("r", "pg-test-2", status),
            ("r", "pg-test-3", "UP"),
            ("other", "pg-test-2", "UP"),
        )
    )
    assert admin.standby_commands(rows, ["r"], "pg-test-2") == expected


def test_missing_backends():
    rows = admin.parse_stat(stat(("pg-test-primary", "pg-test-1", "UP")))
    assert admin.missing_backends(rows, ["pg-test-primary", "pg-test-default"], "pg-test-1") == ["pg-test-default"]


# ---- the module, with a fake admin socket --------------------------------


class FakeModule:
    def __init__(self, check_mode=False, **params):
        self.params = {
            "services": SERVICES,
            "cluster": "pg-test",
            "primary": "pg-test-2",
            "socket": "/run/haproxy/admin.sock",
            "patroni_url": None,
            "wait": 0,
        }
        self.params.update(params)
        self.check_mode = check_mode
        self.warnings = []

    def warn(self, text):
        self.warnings.append(text)

    def fail_json(self, **kwargs):
        raise AssertionError(kwargs["msg"])


class FakeHaproxy:
    def __init__(self, answer=""):
        self.status = {
            ("pg-test-primary", "pg-test-1"): "UP",
            ("pg-test-primary", "pg-test-2"): "DOWN",
            ("pg-test-default", "pg-test-1"): "UP",
            ("pg-test-default", "pg-test-2"): "DOWN",
            ("pg-test-offline", "pg-test-2"): "UP",
            ("pg-test-offline", "pg-test-3"): "UP",
        }
        self.sent, self.answer = [], answer

    def __call__(self, path, command):
        self.sent.append(command)
        if command.startswith("show stat"):
            return stat(*[(b, s, st_) for (b, s), st_ in sorted(self.status.items())])
        backend, server = command.split()[2].split("/")
        self.status[(backend, server)] = command.split()[-1].upper()
        return self.answer


def test_module_sends_then_has_nothing_to_do():
    haproxy = FakeHaproxy()
    result = mod.run(FakeModule(), asker=haproxy)
    assert result["changed"] is True and len(result["commands"]) == 5
    assert result["commands"][-1] == "set server pg-test-offline/pg-test-2 health down"
    assert result["backends"] == ["pg-test-default", "pg-test-primary", "pg-test-standby"]
    again = mod.run(FakeModule(), asker=haproxy)
    assert (again["changed"], again["commands"]) == (False, [])


def test_module_check_mode_sends_nothing():
    haproxy = FakeHaproxy()
    module = FakeModule(check_mode=True)
    assert mod.run(module, asker=haproxy)["changed"] is True
    assert haproxy.sent == ["show stat -1 4 -1"]
    assert module.warnings == [
        "HAProxy on this node has no server pg-test-2 in pg-test-standby; left to the health checks"
    ]


def test_module_reports_a_refusal():
    with pytest.raises(AssertionError, match="HAProxy refused 'set server pg-test-default/pg-test-1 health down'"):
        mod.run(FakeModule(), asker=FakeHaproxy(answer="No such server.\n"))


def test_module_without_primary_backends_asks_nothing():
    haproxy = FakeHaproxy()
    result = mod.run(FakeModule(cluster="pg-other"), asker=haproxy)
    assert (result["changed"], haproxy.sent) == (False, [])


# ---- waiting for the leader (the async form started before a switchover) -


def _cluster(leader, state="running"):
    return {
        "members": [
            {
                "name": name,
                "role": "leader" if leader == name else "replica",
                "state": state if leader == name else "running",
                "api_url": "http://10.10.10.1%s:8008/patroni" % name[-1],
            }
            for name in ("pg-test-1", "pg-test-2")
        ]
    }


def test_wait_for_leader_returns_when_the_candidate_leads():
    clock = Clock()
    answers = iter(
        [
            None,
            _cluster("pg-test-1"),
            _cluster("pg-test-2", "starting"),
            _cluster("pg-test-2"),
            _cluster("pg-test-2"),
            _cluster("pg-test-2"),
        ]
    )
    # it holds the lock before PostgreSQL is promoted: /primary says 503 twice, then 200
    asked = []
    primary = iter([False, False, True])
    assert (
        mod.wait_for_leader(
            "http://x:8008",
            "pg-test-2",
            10,
            reader=lambda url: next(answers),
            is_primary=lambda url: asked.append(url) or next(primary),
            clock=clock,
            sleep=clock.sleep,
        )
        is True
    )
    assert round(clock.now, 1) == 0.5  # five pauses of 0.1 s
    assert asked == ["http://10.10.10.12:8008/patroni"] * 3  # the candidate's own API, only once it leads


def test_api_base_is_the_root_of_the_api_url():
    assert mod.api_base("http://10.10.10.12:8008/patroni") == "http://10.10.10.12:8008"
    assert mod.api_base("https://pg-test-2:8008/patroni") == "https://pg-test-2:8008"


def test_wait_for_leader_gives_up():
    clock = Clock()
    assert (
        mod.wait_for_leader(
            "http://x:8008",
            "pg-test-2",
            1,
            reader=lambda url: _cluster("pg-test-1"),
            is_primary=lambda url: True,
            clock=clock,
            sleep=clock.sleep,
        )
        is False
    )
    # leading but never promoted: gives up too
    assert (
        mod.wait_for_leader(
            "http://x:8008",
            "pg-test-2",
            1,
            reader=lambda url: _cluster("pg-test-2"),
            is_primary=lambda url: False,
            clock=clock,
            sleep=clock.sleep,
        )
        is False
    )


def test_module_with_wait_touches_nothing_when_no_switchover_happens(monkeypatch):
    haproxy = FakeHaproxy()
    monkeypatch.setattr(mod, "wait_for_leader", lambda *args, **kwargs: False)
    result = mod.run(FakeModule(wait=5, patroni_url="http://x:8008"), asker=haproxy)
    assert (result["changed"], result["led"], haproxy.sent) == (False, False, [])


def test_module_with_wait_acts_once_the_candidate_leads():
    haproxy = FakeHaproxy()
    result = mod.run(
        FakeModule(wait=5, patroni_url="http://x:8008"),
        asker=haproxy,
        reader=lambda url: _cluster("pg-test-2"),
        is_primary=lambda url: True,
    )
    assert (result["changed"], result["led"]) == (True, True) and len(result["commands"]) == 5


@pytest.mark.parametrize(
    "status,expected",
    [
        ({"state": "running", "role": "master"}, True),  # Patroni 3
        ({"state": "running", "role": "primary"}, True),  # Patroni 4
        # /primary already answers 200 here (leader lock taken), PostgreSQL is
        # still in recovery: measured 0.36-0.43 s on Patroni 3.0.2
        ({"state": "running", "role": "replica"}, False),
        ({"state": "starting", "role": "master"}, False),
        ({"role": "master"}, False),
        ({}, False),
    ],
)
def test_promoted_reads_the_role_patroni_takes_from_postgres(status, expected):
    assert admin.promoted(status) is expected


def test_the_documented_socket_is_the_one_haproxy_cfg_names():
    import yaml
    from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import PATHS

    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc["options"]["socket"]["default"] == PATHS["haproxy_admin_socket"]
