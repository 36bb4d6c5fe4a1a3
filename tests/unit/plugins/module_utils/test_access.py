# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The client networks each HAProxy service accepts: those its servers' HBA
rules let in (access.py), since PostgreSQL and pgbouncer see the HAProxy
node instead of the client."""

from __future__ import annotations

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import access, plan, validate
from inv import build, pg_test, sandbox

INTRA = ["10.0.0.0/8", "127.0.0.1/32", "172.16.0.0/12", "192.168.0.0/16", "::1/128"]


def sources(lines, tls=True):
    found = access.hba_sources(lines, tls)
    return None if found is None else [n.with_prefixlen for n in found]


@pytest.mark.parametrize(
    "lines, tls, expected",
    [
        (["# comment", "local all all scram-sha-256", "host all all 10.0.0.0/8 scram-sha-256"], True, ["10.0.0.0/8"]),
        (["host all app 10.1.0.0 255.255.0.0 md5"], True, ["10.1.0.0/16"]),
        (["host all app 0.0.0.0/0 reject", "host all all 10.9.0.0/16 md5"], True, ["10.9.0.0/16"]),
        (["hostssl all all 10.9.0.0/16 scram-sha-256"], False, []),
        (["hostssl all all 10.9.0.0/16 scram-sha-256"], True, ["10.9.0.0/16"]),
        (["hostnossl all all 10.9.0.0/16 reject", "host all all all md5"], True, None),
        (["#host all all 10.1.0.0/16 md5"], True, []),
    ],
)
def test_hba_sources(lines, tls, expected):
    assert sources(lines, tls) == expected


def test_host_names_cannot_be_enforced():
    with pytest.raises(access.Unknown):
        access.hba_sources(["host all all db.example.org md5"])
    with pytest.raises(access.Unknown):
        access.hba_sources(["host all all samenet md5"])


def test_collapse():
    assert access.collapse([]) == []
    assert access.collapse(
        access.hba_sources(
            [
                "host all all 10.10.10.10/32 md5",
                "host all all 10.0.0.0/8 md5",
                "host all all ::1/128 md5",
                "host all all 192.168.0.0/16 md5",
            ]
        )
    ) == ["10.0.0.0/8", "192.168.0.0/16", "::1/128"]
    assert access.collapse(access.hba_sources(["host all all 0.0.0.0/0 md5", "host all all ::/0 md5"])) is None


def services(hostvars, groups, cluster="pg-test"):
    inv = validate.require(model_mod.load(hostvars, groups))
    return {s["service"]: (s["sources"], s["sources_note"]) for s in plan.cluster_plan(inv, cluster)["services"]}


def test_sandbox_services():
    """pgbouncer (5433, 5434) and postgres (5436, 5438) let in the intranet
    and the loopback; the admin node is inside the intranet."""
    assert services(*sandbox()) == {name: (INTRA, None) for name in ("primary", "replica", "default", "offline")}


def test_rules_narrow_the_services():
    """An inventory that lets its users in from one network only: the
    services accept that network and the loopback (and the admin node on
    postgres, over TLS)."""
    rules = [{"user": "+dbrole_readonly", "db": "all", "addr": "10.50.0.0/16", "auth": "ssl", "order": 600}]
    pg = [
        r
        for r in plan.hba_mod.DEFAULT_PG_HBA_RULES
        if r["addr"] == "local" or r["addr"] == "localhost" or r["auth"] == "deny"
    ] + rules
    pgb = [
        {"user": "all", "db": "all", "addr": "localhost", "auth": "pwd", "order": 150},
        {"user": "all", "db": "all", "addr": "10.50.0.0/16", "auth": "pwd", "order": 400},
        {"user": "${admin}", "db": "all", "addr": "admin", "auth": "ssl", "order": 300},
    ]
    got = services(*build(pg_test(pg_default_hba_rules=pg, pgb_default_hba_rules=pgb, pgbouncer_sslmode="disable")))
    # pgbouncer without TLS: the admin's hostssl line never matches there
    assert got["primary"] == (["10.50.0.0/16", "127.0.0.1/32", "::1/128"], None)
    assert got["default"] == (["10.50.0.0/16", "127.0.0.1/32", "::1/128"], None)
    # with pgbouncer's client TLS on (the default) it does
    got = services(*build(pg_test(pg_default_hba_rules=pg, pgb_default_hba_rules=pgb)))
    assert got["primary"] == (["10.10.10.10/32", "10.50.0.0/16", "127.0.0.1/32", "::1/128"], None)
    assert got["default"] == (["10.50.0.0/16", "127.0.0.1/32", "::1/128"], None)


def test_open_rules_and_other_programs_leave_the_service_open():
    world = [{"user": "all", "db": "all", "addr": "world", "auth": "ssl", "order": 900}]
    got = services(
        *build(pg_test(pg_hba_rules=world, pg_services=[{"name": "tds", "port": 5440, "dest": 1433, "selector": "[]"}]))
    )
    assert got["default"] == (None, "the HBA rules let in every address")
    assert got["primary"] == (INTRA, None)
    assert got["tds"] == (None, "port 1433 of server pg-test-1 is neither postgres nor pgbouncer")
