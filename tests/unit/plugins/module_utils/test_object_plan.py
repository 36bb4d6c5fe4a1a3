# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""objects.object_plan: what the postgres role creates on the leader
(roles/postgres/tasks/objects.yml loops over it), hand-checked on the
sandbox's objects, plus properties of any valid input."""

from __future__ import annotations

from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import objects
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import DEFAULT_ROLES

PASSWORDS = {"replicator": "Repl.1", "dbuser_dba": "Dba.1", "dbuser_monitor": "Mon.1"}


def test_the_default_roles_with_the_system_passwords():
    plan = objects.object_plan(None, [], [], PASSWORDS, "postgres")
    assert [r["name"] for r in plan["roles"]] == [
        "dbrole_readonly",
        "dbrole_offline",
        "dbrole_readwrite",
        "dbrole_admin",
        "postgres",
        "replicator",
        "dbuser_dba",
        "dbuser_monitor",
    ]
    assert {r["name"]: r.get("password") for r in plan["roles"]} == {
        "dbrole_readonly": None,
        "dbrole_offline": None,
        "dbrole_readwrite": None,
        "dbrole_admin": None,
        "postgres": None,
        "replicator": "Repl.1",
        "dbuser_dba": "Dba.1",
        "dbuser_monitor": "Mon.1",
    }
    assert plan["memberships"] == [
        {"name": "dbrole_readwrite", "grant": ["dbrole_readonly"], "revoke": []},
        {"name": "dbrole_admin", "grant": ["pg_monitor", "dbrole_readwrite"], "revoke": []},
        {"name": "replicator", "grant": ["pg_monitor", "dbrole_readonly"], "revoke": []},
        {"name": "dbuser_dba", "grant": ["dbrole_admin"], "revoke": []},
        {"name": "dbuser_monitor", "grant": ["pg_monitor", "dbrole_readonly"], "revoke": []},
    ]
    assert plan["databases"] == plan["schemas"] == plan["extensions"] == []
    assert plan["db_parameters"] == plan["db_schemas"] == []
    # the model's defaults are not changed by filling in passwords
    assert all("password" not in r for r in DEFAULT_ROLES)


def test_the_sandbox_objects():
    users = [
        {
            "name": "dbuser_meta",
            "password": "DBUser.Meta",
            "pgbouncer": True,
            "roles": [
                "dbrole_admin",
                {"name": "dbrole_offline", "state": "absent"},
                {"name": "dbrole_readonly", "admin": True},
            ],
        },
        {"name": "gone", "state": "absent", "roles": ["dbrole_admin"]},
        # a password given for a system user stays the entry's
        {"name": "dbuser_monitor", "password": "Own.1"},
    ]
    databases = [
        {
            "name": "meta",
            "owner": "dbuser_meta",
            "schemas": ["pigsty"],
            "extensions": [{"name": "pg_stat_statements"}, "pg_trgm", {"name": "vector", "schema": "pigsty"}],
            "parameters": {"work_mem": "8MB", "jit": False, "geqo_threshold": 14},
        },
        {"name": "old", "state": "absent", "schemas": ["x"]},
        {"name": "kept", "state": "create"},
        {"name": "test"},
    ]
    plan = objects.object_plan([], users, databases, PASSWORDS, "postgres")
    assert [r["name"] for r in plan["roles"]] == ["dbuser_meta", "gone", "dbuser_monitor"]
    assert plan["roles"][2]["password"] == "Own.1"
    assert plan["memberships"] == [
        {"name": "dbuser_meta", "grant": ["dbrole_admin", "dbrole_readonly"], "revoke": ["dbrole_offline"]}
    ]
    # databases without state first, then those kept with a state
    assert [d["name"] for d in plan["databases"]] == ["meta", "test", "kept"]
    assert plan["schemas"] == [{"db": "meta", "name": "pigsty", "owner": "dbuser_meta"}]
    assert plan["extensions"] == [
        {"db": "meta", "name": "pg_stat_statements", "schema": None},
        {"db": "meta", "name": "pg_trgm", "schema": None},
        {"db": "meta", "name": "vector", "schema": "pigsty"},
    ]
    assert plan["db_parameters"] == [
        {"db": "meta", "key": "work_mem", "value": "8MB"},
        {"db": "meta", "key": "jit", "value": "False"},
        {"db": "meta", "key": "geqo_threshold", "value": "14"},
    ]
    assert plan["db_schemas"] == [
        {"db": "meta", "name": "public", "owner": "dbuser_meta"},
        {"db": "meta", "name": "pigsty", "owner": "dbuser_meta"},
        {"db": "test", "name": "public", "owner": None},
        {"db": "kept", "name": "public", "owner": None},
    ]


def test_a_schema_without_database_owner_belongs_to_the_dbsu():
    plan = objects.object_plan([], [], [{"name": "app", "schemas": ["a"]}], {}, "pgadmin")
    assert plan["schemas"] == [{"db": "app", "name": "a", "owner": "pgadmin"}]


NAMES = st.text(alphabet="abcdefghij_", min_size=1, max_size=6)
DBS = st.lists(
    st.fixed_dictionaries(
        {"name": NAMES, "schemas": st.lists(NAMES, max_size=3)},
        optional={"state": st.sampled_from(["create", "absent"])},
    ),
    max_size=6,
)


@given(DBS)
def test_every_kept_database_and_only_those(databases):
    plan = objects.object_plan([], [], databases, {}, "postgres")
    kept = [d for d in databases if d.get("state") != "absent"]
    assert sorted(d["name"] for d in plan["databases"]) == sorted(d["name"] for d in kept)
    assert len(plan["db_schemas"]) == sum(1 + len(d["schemas"]) for d in kept)
    assert len(plan["schemas"]) == sum(len(d["schemas"]) for d in kept)
    assert all(s["db"] in {d["name"] for d in kept} for s in plan["db_schemas"])
