# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Business objects: ``pg_default_roles``, ``pg_users``, ``pg_databases``.

Checks them (every reference must resolve, every field must have the type
PostgreSQL will accept) and derives the pgbouncer user and database lists.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List

from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    BUILTIN_ROLES,
    DEFAULT_ROLES,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
    closest,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import is_int

USER_KEYS = (
    "name",
    "state",
    "password",
    "login",
    "superuser",
    "createdb",
    "createrole",
    "inherit",
    "replication",
    "bypassrls",
    "connlimit",
    "expire_in",
    "expire_at",
    "comment",
    "roles",
    "parameters",
    "pgbouncer",
    "pool_mode",
    "pool_connlimit",
)
DB_KEYS = (
    "name",
    "state",
    "owner",
    "template",
    "encoding",
    "locale",
    "lc_collate",
    "lc_ctype",
    "tablespace",
    "allowconn",
    "revokeconn",
    "register_datasource",
    "connlimit",
    "comment",
    "schemas",
    "extensions",
    "parameters",
    "pgbouncer",
    "pool_mode",
    "pool_size",
    "pool_reserve",
    "pool_size_min",
    "pool_connlimit",
    "baseline",
    *("strategy", "locale_provider", "icu_locale", "icu_rules", "builtin_locale", "is_template", "pool_auth_user"),
)
#: Database keys of Pigsty's vocabulary that this collection accepts but does
#: not implement (validation names them in warnings, plugins/module_utils/
#: pigsty.py).
DB_KEYS_NOT_IMPLEMENTED = DB_KEYS[-7:]
#: Database keys of Pigsty's vocabulary that are accepted but not applied
#: when they ask for something (any value of ``baseline``, the value given
#: otherwise): key -> (value that asks for it or None for any, what does not
#: happen). Named in warnings (pigsty.py), each once.
DB_KEYS_NOT_APPLIED = {
    "baseline": (None, "the SQL file is not run: run it once the database exists (psql -d DB -f FILE on the leader)"),
    "allowconn": (
        False,
        "the database keeps accepting connections: ALTER DATABASE ... ALLOW_CONNECTIONS false yourself if it must not",
    ),
    "revokeconn": (
        True,
        "CONNECT stays granted to PUBLIC: REVOKE CONNECT ON "
        "DATABASE ... FROM PUBLIC yourself, and grant it to the "
        "users that need it, if it must be",
    ),
    "register_datasource": (True, "no Grafana is deployed here, so nothing registers the database as a data source"),
}

#: Spellings of other tools (Pigsty's older or mistaken keys, pgbouncer's
#: own names) for the keys of a pg_users / pg_databases item.
USER_KEY_ALIASES = {
    "pool_max_conn": "pool_connlimit",
    "pool_max_user_conn": "pool_connlimit",
    "max_user_connections": "pool_connlimit",
    "pool_max_user_connections": "pool_connlimit",
    "conn_limit": "connlimit",
    "connection_limit": "connlimit",
    "expire": "expire_in",
    "expires": "expire_at",
    "valid_until": "expire_at",
    "member_of": "roles",
    "groups": "roles",
    "in_role": "roles",
    "pool": "pgbouncer",
}
DB_KEY_ALIASES = {
    "pool_size_reserve": "pool_reserve",
    "reserve_pool_size": "pool_reserve",
    "reserve_pool": "pool_reserve",
    "pool_reserve_size": "pool_reserve",
    "pool_max_db_conn": "pool_connlimit",
    "max_db_connections": "pool_connlimit",
    "pool_max_db_connections": "pool_connlimit",
    "pool_max_conn": "pool_connlimit",
    "min_pool_size": "pool_size_min",
    "pool_min_size": "pool_size_min",
    "default_pool_size": "pool_size",
    "pool_size_default": "pool_size",
    "conn_limit": "connlimit",
    "connection_limit": "connlimit",
    "allow_conn": "allowconn",
    "allow_connections": "allowconn",
    "revoke_conn": "revokeconn",
    "schema": "schemas",
    "extension": "extensions",
    "lc_collation": "lc_collate",
    "collate": "lc_collate",
    "ctype": "lc_ctype",
}


def key_suggestion(key: str, keys, aliases, other_keys, other_aliases, other_var: str) -> str:
    """The fix for an unknown ``key`` of an item whose keys are ``keys``:
    the key it is another spelling of, else the same in the other list's
    vocabulary (a database key on a user), else the closest key, else the
    list of keys."""
    low = key.lower() if isinstance(key, str) else key
    if low in keys:
        return "write it in lower case: %s" % low
    if low in aliases:
        return "did you mean %s?" % aliases[low]
    if low in other_keys:
        return "%s is a key of %s items: move it to the entry it belongs to there" % (low, other_var)
    if low in other_aliases:
        return "did you mean %s of a %s item? (move it to the entry it belongs to there)" % (
            other_aliases[low],
            other_var,
        )
    guess = closest(key, keys, cutoff=0.6)
    if guess is not None:
        return "did you mean %s?" % guess
    return "use only %s" % ", ".join(keys)


USER_BOOLS = ("login", "superuser", "createdb", "createrole", "inherit", "replication", "bypassrls", "pgbouncer")
DB_BOOLS = ("allowconn", "revokeconn", "pgbouncer", "register_datasource")
POOL_MODES = ("transaction", "session", "statement")
USER_STATES = ("create", "absent")
DB_STATES = ("create", "absent", "recreate")
IDENT = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_$.-]{0,62}\Z")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}\Z")


def _named(items: Any) -> List[Dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def defined_roles(default_roles: Any, users: Any) -> Dict[str, str]:
    """Every role the cluster will have: name -> where it is defined."""
    names = {r: "PostgreSQL" for r in BUILTIN_ROLES}
    for var, items in (("pg_default_roles", default_roles), ("pg_users", users)):
        for item in _named(items):
            name = item.get("name")
            if isinstance(name, str) and item.get("state") != "absent":
                names[name] = var
    return names


def check_objects(cluster: str, default_roles: Any, users: Any, databases: Any, dbsu: str) -> List[Problem]:
    """Problems with the cluster's roles, users and databases."""
    out: List[Problem] = []

    def problem(fld, value, what, fix):
        out.append(Problem(cluster, None, fld, value, what, fix))

    roles = defined_roles(default_roles, users)
    roles.setdefault(dbsu, "pg_dbsu")
    for var, items in (("pg_default_roles", default_roles), ("pg_users", users)):
        if not isinstance(items, list):
            problem(var, items, "is not a list", "write %s as a YAML list of mappings with at least a name" % var)
            continue
        seen: Dict[str, int] = {}
        for i, user in enumerate(items):
            where = "%s[%d]" % (var, i)
            if not isinstance(user, dict):
                problem(
                    where,
                    user,
                    "is not a mapping",
                    "write each user as a mapping, e.g. {name: dbuser_app, password: ...}",
                )
                continue
            name = user.get("name")
            if isinstance(name, str):
                where = "%s(%s)" % (where, name)
            _check_user(problem, where, user, roles, seen, i)
    _check_databases(problem, databases, roles)
    return out


def _check_common(problem, where, item, keys, bools, states):
    user = keys is USER_KEYS
    for key in sorted(set(item) - set(keys), key=str):
        fix = key_suggestion(
            key,
            keys,
            USER_KEY_ALIASES if user else DB_KEY_ALIASES,
            DB_KEYS if user else USER_KEYS,
            DB_KEY_ALIASES if user else USER_KEY_ALIASES,
            "pg_databases" if user else "pg_users",
        )
        problem("%s.%s" % (where, key), item[key], "is not a key of a %s entry" % ("user" if user else "database"), fix)
    for key in bools:
        if key in item and not isinstance(item[key], bool):
            problem("%s.%s" % (where, key), item[key], "is not a boolean", "write true or false without quotes")
    state = item.get("state", states[0])
    if state not in states:
        problem("%s.state" % where, state, "is not a known state", "use one of %s" % ", ".join(states))
    mode = item.get("pool_mode")
    if mode is not None and mode not in POOL_MODES:
        problem("%s.pool_mode" % where, mode, "is not a pgbouncer pool mode", "use one of %s" % ", ".join(POOL_MODES))
    params = item.get("parameters")
    if params is not None and not isinstance(params, dict):
        problem("%s.parameters" % where, params, "is not a mapping", "write parameters as {name: value, ...}")
    if "comment" in item and not isinstance(item["comment"], str):
        problem("%s.comment" % where, item["comment"], "is not a string", "quote the comment")
    for key in ("connlimit", "pool_connlimit", "pool_size", "pool_reserve", "pool_size_min"):
        value = item.get(key)
        if value is not None and (not is_int(value) or value < -1):
            problem(
                "%s.%s" % (where, key),
                value,
                "is not an integer (-1 means no limit)",
                "write a whole number such as 100",
            )


def _check_user(problem, where, user, roles, seen, index):
    name = user.get("name")
    if not isinstance(name, str) or not IDENT.match(name):
        problem(
            "%s.name" % where,
            name,
            "is not a valid role name",
            "use 1-63 letters, digits or _ starting with a letter, e.g. dbuser_app",
        )
    elif name in seen:
        problem(
            "%s.name" % where,
            name,
            "is defined twice in the same list (entry %d)" % seen[name],
            "merge the two entries into one",
        )
    else:
        seen[name] = index
    _check_common(problem, where, user, USER_KEYS, USER_BOOLS, USER_STATES)
    password = user.get("password")
    if password is not None and not isinstance(password, str):
        problem("%s.password" % where, "(hidden)", "is not a string", "quote the password")
    if "expire_in" in user and (not is_int(user["expire_in"]) or user["expire_in"] < 0):
        problem("%s.expire_in" % where, user["expire_in"], "is not a number of days", "e.g. expire_in: 365")
    if "expire_at" in user and not (isinstance(user["expire_at"], str) and DATE.match(user["expire_at"])):
        problem(
            "%s.expire_at" % where, user["expire_at"], "is not a date YYYY-MM-DD", "quote a date such as '2030-12-31'"
        )
    granted = user.get("roles", [])
    if not isinstance(granted, list):
        problem("%s.roles" % where, granted, "is not a list", "write roles as a list, e.g. [dbrole_readwrite]")
        return
    for j, grant in enumerate(granted):
        role = grant.get("name") if isinstance(grant, dict) else grant
        if not isinstance(role, str):
            problem(
                "%s.roles[%d]" % (where, j),
                grant,
                "is neither a role name nor {name, admin, state}",
                "write a role name such as dbrole_readonly",
            )
        elif role not in roles:
            problem(
                "%s.roles[%d]" % (where, j),
                role,
                "grants a role that is not defined",
                "define %s in pg_users or pg_default_roles, or use one "
                "of dbrole_readonly, dbrole_readwrite, dbrole_admin, "
                "dbrole_offline, pg_monitor" % role,
            )
        elif role == name:
            problem(
                "%s.roles[%d]" % (where, j), role, "a role cannot be a member of itself", "remove it from its own roles"
            )


def _check_databases(problem, databases, roles) -> None:
    if not isinstance(databases, list):
        problem("pg_databases", databases, "is not a list", "write pg_databases as a YAML list of mappings")
        return
    seen: Dict[str, int] = {}
    for i, db in enumerate(databases):
        where = "pg_databases[%d]" % i
        if not isinstance(db, dict):
            problem(
                where, db, "is not a mapping", "write each database as a mapping, e.g. {name: app, owner: dbuser_app}"
            )
            continue
        name = db.get("name")
        if isinstance(name, str):
            where = "%s(%s)" % (where, name)
        if not isinstance(name, str) or not IDENT.match(name):
            problem(
                "%s.name" % where,
                name,
                "is not a valid database name",
                "use 1-63 letters, digits or _ starting with a letter",
            )
        elif name in ("template0", "template1") and db.get("state", "create") != "create":
            problem(
                "%s.state" % where,
                db.get("state"),
                "template databases cannot be dropped or recreated",
                "remove this entry",
            )
        elif name in seen:
            problem(
                "%s.name" % where, name, "is defined twice (entry %d)" % seen[name], "merge the two entries into one"
            )
        else:
            seen[name] = i
        _check_common(problem, where, db, DB_KEYS, DB_BOOLS, DB_STATES)
        owner = db.get("owner")
        if owner is not None and owner not in roles:
            problem(
                "%s.owner" % where,
                owner,
                "is not a defined role",
                "define the owner in pg_users (or use an existing role such as dbuser_dba)",
            )
        schemas = db.get("schemas", [])
        if not isinstance(schemas, list) or not all(isinstance(s, str) and IDENT.match(s) for s in schemas):
            problem(
                "%s.schemas" % where,
                schemas,
                "is not a list of schema names",
                "write schemas as a list, e.g. [app, audit]",
            )
        exts = db.get("extensions", [])
        if not isinstance(exts, list):
            problem(
                "%s.extensions" % where, exts, "is not a list", "write extensions as a list, e.g. [{name: postgis}]"
            )
            exts = []
        for j, ext in enumerate(exts):
            ename = ext.get("name") if isinstance(ext, dict) else ext
            if not isinstance(ename, str) or not IDENT.match(ename):
                problem(
                    "%s.extensions[%d]" % (where, j),
                    ext,
                    "is not an extension",
                    "write {name: EXT, schema: SCHEMA} or just the extension name",
                )
            elif isinstance(ext, dict):
                for key in sorted(set(ext) - {"name", "schema", "version", "state", "cascade"}):
                    problem(
                        "%s.extensions[%d].%s" % (where, j, key),
                        ext[key],
                        "is not an extension key",
                        "use name, schema, version, state, cascade",
                    )


def pgbouncer_users(default_roles: Any, users: Any) -> List[Dict[str, Any]]:
    """Users that pgbouncer knows (``pgbouncer: true``), later entries of
    ``pg_users`` overriding defaults, sorted by name for stable files."""
    merged: Dict[str, Dict[str, Any]] = {}
    for item in _named(default_roles) + _named(users):
        name = item.get("name")
        if isinstance(name, str):
            merged[name] = item
    out = []
    for name in sorted(merged):
        item = merged[name]
        if item.get("pgbouncer") and item.get("state", "create") != "absent":
            out.append(
                {"name": name, "pool_mode": item.get("pool_mode"), "max_user_connections": item.get("pool_connlimit")}
            )
    return out


def pgbouncer_databases(databases: Any) -> List[Dict[str, Any]]:
    """Databases exposed through pgbouncer (``pgbouncer`` defaults to true),
    in inventory order, after the ``postgres`` maintenance database (which
    every cluster has; list it with ``pgbouncer: false`` to keep it out)."""
    out = []
    named = _named(databases)
    if not any(db.get("name") == "postgres" for db in named):
        named = [{"name": "postgres"}] + named
    for db in named:
        name = db.get("name")
        if not isinstance(name, str) or db.get("state", "create") == "absent":
            continue
        if db.get("pgbouncer", True) is False:
            continue
        out.append(
            {
                "name": name,
                "pool_mode": db.get("pool_mode"),
                "pool_size": db.get("pool_size"),
                "min_pool_size": db.get("pool_size_min"),
                "reserve_pool": db.get("pool_reserve"),
                "max_db_connections": db.get("pool_connlimit"),
            }
        )
    return out


def object_plan(
    default_roles: Any, users: Any, databases: Any, passwords: Dict[str, str], dbsu: str
) -> Dict[str, List[Dict[str, Any]]]:
    """What the postgres role creates, changes or drops on the leader
    (roles/postgres/tasks/objects.yml loops over each list):

    - ``roles``: ``default_roles`` (``pg_default_roles``; None means the
      model's defaults) then ``users``, in that order, a system user's
      password from ``passwords`` (name -> password) filled in where the
      entry gives none;
    - ``memberships``: ``{name, grant, revoke}`` of every kept role with
      ``roles`` (an entry is a name, or ``{name, admin, state}``; ``state:
      absent`` revokes);
    - ``databases``: the kept databases (no ``state`` first, then those
      whose ``state`` is not ``absent``, each in inventory order);
    - ``schemas``: ``{db, name, owner}`` (owner: the database's, else
      ``dbsu``) of their schemas;
    - ``extensions``: ``{db, name, schema}`` (schema None unless given);
    - ``db_parameters``: ``{db, key, value}`` with the value as a string;
    - ``db_schemas``: ``{db, name, owner}`` (owner None unless given) of
      ``public`` and their schemas, which get the default privileges.

    Inputs are the validated inventory's (check_objects)."""
    if default_roles is None:
        default_roles = [dict(r) for r in DEFAULT_ROLES]
    roles = []
    for role in list(default_roles) + list(users or []):
        if "password" not in role and role.get("name") in passwords:
            role = dict(role, password=passwords[role["name"]])
        roles.append(role)
    memberships = []
    for role in roles:
        if role.get("state", "create") == "absent" or not role.get("roles"):
            continue
        grant, revoke = [], []
        for member_of in role["roles"]:
            if isinstance(member_of, dict) and member_of.get("state", "present") == "absent":
                revoke.append(member_of["name"])
            else:
                grant.append(member_of["name"] if isinstance(member_of, dict) else member_of)
        memberships.append({"name": role["name"], "grant": grant, "revoke": revoke})
    databases = list(databases or [])
    kept = [db for db in databases if "state" not in db] + [
        db for db in databases if "state" in db and db["state"] != "absent"
    ]
    return {
        "roles": roles,
        "memberships": memberships,
        "databases": kept,
        "schemas": [
            {"db": db["name"], "name": schema, "owner": db.get("owner", dbsu)}
            for db in kept
            for schema in db.get("schemas", [])
        ],
        "extensions": [
            {
                "db": db["name"],
                "name": ext["name"] if isinstance(ext, dict) else ext,
                "schema": ext.get("schema") if isinstance(ext, dict) else None,
            }
            for db in kept
            for ext in db.get("extensions", [])
        ],
        "db_parameters": [
            {"db": db["name"], "key": key, "value": str(value)}
            for db in kept
            for key, value in (db.get("parameters") or {}).items()
        ],
        "db_schemas": [
            {"db": db["name"], "name": schema, "owner": db.get("owner")}
            for db in kept
            for schema in ["public"] + list(db.get("schemas", []))
        ],
    }
