# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Typos said once, with the likely intended name: a host-level pg_cluster,
keys of pg_users / pg_databases items; and the Pigsty keys accepted but not
applied, each named once in a warning."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import objects, pigsty, validate
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import closest
from inv import build, cluster, pg_test


def problems(hv, groups):
    return [str(p) for p in validate.problems(model_mod.load(hv, groups))]


def test_replica_with_a_mistyped_pg_cluster():
    hv, groups = build(pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24"))
    hv["10.10.10.13"]["pg_cluster"] = "pg-tst"
    # not "cluster pg-tst has no primary", nor the group's or the VIP's echo
    assert problems(hv, groups) == [
        "cluster pg-test, host 10.10.10.13: pg_cluster = 'pg-tst': differs from pg_cluster "
        "pg-test of the other hosts of its group pg-test, so the host would be alone in a "
        "cluster pg-tst; fix: set pg_cluster: pg-test on 10.10.10.13 (a typo?), or give a "
        "cluster pg-tst of its own a group of that name"
    ]


def test_primary_with_a_mistyped_pg_cluster():
    """pg-test itself would have no primary: said by the typo only."""
    hv, groups = build(pg_test())
    hv["10.10.10.11"]["pg_cluster"] = "pg-tset"
    (p,) = validate.problems(model_mod.load(hv, groups))
    assert (p.cluster, p.host, p.field, p.value) == ("pg-test", "10.10.10.11", "pg_cluster", "pg-tset")


def test_the_typo_does_not_hide_a_second_primary():
    hv, groups = build(pg_test())
    hv["10.10.10.12"]["pg_role"] = "primary"
    hv["10.10.10.13"]["pg_cluster"] = "pg-tset"
    # the name fixed, pg-test still has two primaries: said now too
    assert sorted(p.field for p in validate.problems(model_mod.load(hv, groups))) == ["pg_cluster", "pg_role"]


def test_cluster_defined_host_by_host():
    hv, groups = build(
        cluster(
            "pgs",
            {
                "10.10.10.11": {"pg_seq": 1, "pg_role": "primary"},
                "10.10.10.12": {"pg_seq": 2, "pg_role": "replica"},
                "10.10.10.13": {"pg_seq": 3, "pg_role": "replica"},
            },
        )
    )
    for host in groups.pop("pgs"):
        hv[host]["pg_cluster"] = "pg-test"
    hv["10.10.10.13"]["pg_cluster"] = "pg-tst"
    assert problems(hv, groups) == [
        "cluster pg-tst, host 10.10.10.13: pg_cluster = 'pg-tst': cluster pg-tst has no "
        "primary and no group of its name, and the name is close to cluster pg-test's; fix: "
        "did you mean pg_cluster: pg-test? (or give cluster pg-tst a primary)"
    ]


def test_a_cluster_with_a_group_of_its_own_is_meant():
    hv, groups = build(pg_test(), cluster("pg-tst", {"10.10.10.21": {"pg_seq": 1, "pg_role": "replica"}}))
    (p,) = validate.problems(model_mod.load(hv, groups))
    assert (p.cluster, p.what) == ("pg-tst", "the cluster has no primary")


def test_unrelated_names_are_not_guessed():
    hv, groups = build(pg_test())
    hv["10.10.10.21"] = dict(hv["10.10.10.13"], pg_cluster="orders", pg_seq=1)
    groups["all"].append("10.10.10.21")
    (p,) = validate.problems(model_mod.load(hv, groups))
    assert (p.cluster, p.what) == ("orders", "the cluster has no primary")


@pytest.mark.parametrize(
    "var, item, key, fix",
    [
        (
            "pg_users",
            {"name": "app", "pool_size_reserve": 10},
            "pool_size_reserve",
            "did you mean pool_reserve of a pg_databases item? (move it to the entry it belongs to there)",
        ),
        (
            "pg_users",
            {"name": "app", "pool_max_db_conn": 10},
            "pool_max_db_conn",
            "did you mean pool_connlimit of a pg_databases item? (move it to the entry it belongs to there)",
        ),
        (
            "pg_users",
            {"name": "app", "pool_auth_user": "app"},
            "pool_auth_user",
            "pool_auth_user is a key of pg_databases items: move it to the entry it belongs to there",
        ),
        ("pg_users", {"name": "app", "pool_max_user_conn": 10}, "pool_max_user_conn", "did you mean pool_connlimit?"),
        ("pg_users", {"name": "app", "pasword": "x"}, "pasword", "did you mean password?"),
        ("pg_users", {"name": "app", "superusr": True}, "superusr", "did you mean superuser?"),
        ("pg_users", {"name": "app", "Login": True}, "Login", "write it in lower case: login"),
        (
            "pg_users",
            {"name": "app", "owner": "x"},
            "owner",
            "owner is a key of pg_databases items: move it to the entry it belongs to there",
        ),
        ("pg_databases", {"name": "app", "pool_size_reserve": 10}, "pool_size_reserve", "did you mean pool_reserve?"),
        ("pg_databases", {"name": "app", "pool_max_db_conn": 100}, "pool_max_db_conn", "did you mean pool_connlimit?"),
        ("pg_databases", {"name": "app", "extention": []}, "extention", "did you mean extensions?"),
        (
            "pg_databases",
            {"name": "app", "superuser": True},
            "superuser",
            "superuser is a key of pg_users items: move it to the entry it belongs to there",
        ),
    ],
)
def test_unknown_keys_get_the_accepted_one(var, item, key, fix):
    hv, groups = build(pg_test(**{var: [item]}))
    found = [p for p in validate.problems(model_mod.load(hv, groups)) if p.field.endswith(key)]
    assert [(p.field, p.fix) for p in found] == [("%s[0](app).%s" % (var, key), fix)]
    assert found[0].what == "is not a key of a %s entry" % ("user" if var == "pg_users" else "database")


def test_a_key_without_a_close_one_lists_them():
    fix = objects.key_suggestion(
        "zzz", objects.USER_KEYS, objects.USER_KEY_ALIASES, objects.DB_KEYS, objects.DB_KEY_ALIASES, "pg_databases"
    )
    assert fix == "use only " + ", ".join(objects.USER_KEYS)


@given(st.sampled_from(objects.USER_KEYS + objects.DB_KEYS), st.integers(0, 40))
def test_a_dropped_letter_finds_the_key(key, at):
    """One letter dropped from a key of eight letters or more is matched
    back to a key of the same list."""
    if len(key) < 8:
        return
    at %= len(key)
    typo = key[:at] + key[at + 1 :]
    keys = objects.USER_KEYS if key in objects.USER_KEYS else objects.DB_KEYS
    assert closest(typo, keys, cutoff=0.6) is not None


def test_pigsty_database_keys_not_applied_are_named_once_each():
    dbs = [
        {"name": "meta", "baseline": "cmdb.sql", "allowconn": True, "revokeconn": False, "register_datasource": True},
        {"name": "arch", "allowconn": False, "revokeconn": True, "register_datasource": False},
    ]
    members = [{"pg_databases": dbs}, {"pg_databases": dbs}]
    lines = pigsty.warnings([("pg-meta", members), ("pg-test", members)])
    named = sorted(line.split(": not applied")[0] for line in lines)
    assert named == [
        "pg_databases(arch).allowconn = False",
        "pg_databases(arch).revokeconn = True",
        "pg_databases(meta).baseline = 'cmdb.sql'",
        "pg_databases(meta).register_datasource = True",
    ]
    assert all(line.endswith("(not implemented by this collection; cluster(s) pg-meta, pg-test)") for line in lines)


def test_node_etc_hosts_is_named():
    (line,) = pigsty.warnings([("pg-test", [{"node_etc_hosts": ["10.0.0.9 objects"]}])])
    assert line.startswith("node_etc_hosts = ['10.0.0.9 objects']: these /etc/hosts lines are not written")
    assert pigsty.warnings([("pg-test", [{"node_etc_hosts": []}])]) == []
