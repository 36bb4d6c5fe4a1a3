# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""What Pigsty v4.5 would render, written independently from its documented
behaviour, to compare this collection's output with.

Only what takes effect is modelled: the *active* HBA lines of an instance
(connection type, database, user, address, method), in file order, and the
HAProxy services of a cluster (bind address, port, maxconn, balance and the
servers with address, port, weight and backup flag). Comments, titles,
column widths and disabled lines are presentation.

Pigsty's rules, as its documentation and role templates state them:

* HBA rules are ``pg_default_hba_rules + pg_hba_rules`` (``pgb_...`` for
  pgbouncer), stably sorted by ``order`` (a rule without one counts as 1000);
  a rule with an empty or missing ``role`` applies everywhere, else on the
  instances of that ``pg_role`` (``offline`` also where ``pg_offline_query``);
* ``user``/``db`` default to ``all``, ``auth`` to ``pwd``; a user that *is* one
  of ``${dbsu}``, ``${repl}``, ``${monitor}``, ``${admin}`` is replaced;
* auth: ``pwd``/``ssl`` -> the ``pg_pwd_enc`` method, ``sha``/``ssl-sha`` ->
  scram-sha-256, ``md5``/``ssl-md5`` -> md5, ``deny`` -> reject, ``os`` and
  ``ident`` -> ident (peer in pgbouncer); ``ssl*`` and ``cert`` make
  ``hostssl`` lines;
* addr: ``local`` -> a local line; ``localhost`` -> a local line and two
  ``host`` lines (127.0.0.1/32, ::1/128) whatever the auth; ``admin`` ->
  admin_ip/32; ``infra`` -> the infra group's hosts, sorted, /32;
  ``cluster`` -> the members, sorted, /32; ``intra``/``intranet`` ->
  ``node_firewall_intranet`` in its order; ``world``/``all`` -> 0.0.0.0/0 and
  ::/0; anything else is written as given;
* raw ``rules`` lines are written as they are;
* a service binds ``ip`` (default ``*``) on ``port``, with ``maxconn`` (5000)
  and ``balance`` (roundrobin); its servers are the members its ``selector``
  picks (flagged backup when its ``backup`` expression picks them too), then
  the other members ``backup`` picks, flagged backup; the port is
  ``pg_default_service_dest`` for ``dest: default``, the member's
  ``pg_port``/``pgbouncer_port`` for ``postgres``/``pgbouncer``, or the
  number; the weight is the member's ``pg_weight`` (100).
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import jmespath

Line = Tuple[str, ...]

_ORDER_DEFAULT = 1000


def _method(auth: str, kind: str, pwd_enc: str) -> str:
    pwd = "md5" if pwd_enc == "md5" else "scram-sha-256"
    table = {
        "deny": "reject",
        "pwd": pwd,
        "ssl": pwd,
        "sha": "scram-sha-256",
        "cert": "cert",
        "ssl-md5": "md5",
        "ssl-sha": "scram-sha-256",
        "md5": "md5",
        "os": "ident",
        "ident": "ident",
        "peer": "peer",
        "trust": "trust",
        "reject": "reject",
        "scram-sha-256": "scram-sha-256",
    }
    if kind == "pgbouncer":
        table.update({"os": "peer", "ident": "peer"})
    return table[auth]


def hba(rules: Sequence[Mapping[str, Any]], instance: Mapping[str, Any], kind: str) -> List[Line]:
    """The active lines of one instance. ``instance`` holds pg_role,
    pg_offline_query, pg_pwd_enc, users {alias: name}, admin_ip, infra
    (host names), members (IPs) and intranet (CIDRs)."""
    ranked = sorted(enumerate(rules), key=lambda pair: (pair[1].get("order", _ORDER_DEFAULT), pair[0]))
    out: List[Line] = []
    for _, rule in ranked:
        role = rule.get("role") or "default"
        if not (
            role in ("default", "common")
            or role == instance["pg_role"]
            or (role == "offline" and instance.get("pg_offline_query"))
        ):
            continue
        if rule.get("rules"):
            out.extend(tuple(line.split()) for line in rule["rules"])
            continue
        addr = rule["addr"]
        user = rule.get("user") or "all"
        user = instance["users"].get(user, user)
        db = rule.get("db") or "all"
        auth = rule.get("auth") or "pwd"
        method = _method(auth, kind, instance.get("pg_pwd_enc", "scram-sha-256"))
        ctype = "hostssl" if auth in ("ssl", "ssl-md5", "ssl-sha", "cert") else "host"
        if addr == "local":
            out.append(("local", db, user, method))
        elif addr == "localhost":
            out += [
                ("local", db, user, method),
                ("host", db, user, "127.0.0.1/32", method),
                ("host", db, user, "::1/128", method),
            ]
        elif addr == "admin":
            out.append((ctype, db, user, "%s/32" % instance["admin_ip"], method))
        elif addr == "infra":
            out += [(ctype, db, user, "%s/32" % ip, method) for ip in sorted(instance["infra"])]
        elif addr == "cluster":
            out += [(ctype, db, user, "%s/32" % ip, method) for ip in instance["members"]]
        elif addr in ("intra", "intranet"):
            out += [(ctype, db, user, cidr, method) for cidr in instance["intranet"]]
        elif addr in ("world", "all"):
            out += [(ctype, db, user, "0.0.0.0/0", method), (ctype, db, user, "::/0", method)]
        else:
            out.append((ctype, db, user, addr, method))
    return out


def _select(expression: Any, members: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    if not expression:
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return jmespath.search(expression, members) or []


def services(
    specs: Sequence[Mapping[str, Any]], members: List[Dict[str, Any]], default_dest: str
) -> List[Dict[str, Any]]:
    """The services of one cluster; ``members`` are the member host vars
    (with inventory_hostname), in inventory order."""
    out = []
    for svc in specs:
        chosen = _select(svc.get("selector", "[]"), members)
        backups = _select(svc.get("backup"), members)
        backup_names = [m["inventory_hostname"] for m in backups]
        chosen_names = [m["inventory_hostname"] for m in chosen]

        def server(member, backup):
            dest = svc.get("dest", "default")  # noqa: B023 (called within this iteration only)
            if dest == "default":
                dest = default_dest
            if isinstance(dest, int):
                port = dest
            elif dest == "postgres":
                port = member.get("pg_port", 5432)
            elif dest == "pgbouncer":
                port = member.get("pgbouncer_port", 6432)
            else:
                port = 5432
            return (
                "%s-%s" % (member["pg_cluster"], member["pg_seq"]),
                member["inventory_hostname"],
                port,
                member.get("pg_weight", 100),
                backup,
            )

        servers = [server(m, m["inventory_hostname"] in backup_names) for m in chosen]
        servers += [server(m, True) for m in backups if m["inventory_hostname"] not in chosen_names]
        out.append(
            {
                "name": "%s-%s" % (members[0]["pg_cluster"], svc["name"]),
                "ip": svc.get("ip", "*"),
                "port": svc["port"],
                "maxconn": svc.get("maxconn", 5000),
                "balance": svc.get("balance", "roundrobin"),
                "servers": servers,
            }
        )
    return out


# ---------------------------------------------------------------- inputs


def _rule(order, user, db, addr, auth):
    return {"user": user, "db": db, "addr": addr, "auth": auth, "order": order}


# Pigsty v4.5's role defaults (pg_default_hba_rules, pgb_default_hba_rules),
# the reference for inventories that do not set them.
PIGSTY_PG_DEFAULTS = [
    _rule(100, "${dbsu}", "all", "local", "ident"),
    _rule(150, "${dbsu}", "replication", "local", "ident"),
    _rule(200, "${repl}", "replication", "localhost", "pwd"),
    _rule(250, "${repl}", "replication", "intra", "pwd"),
    _rule(300, "${repl}", "postgres", "intra", "pwd"),
    _rule(350, "${monitor}", "all", "localhost", "pwd"),
    _rule(400, "${monitor}", "all", "infra", "pwd"),
    _rule(450, "${admin}", "all", "intra", "pwd"),
    _rule(500, "${admin}", "all", "world", "ssl"),
    _rule(550, "+dbrole_readonly", "all", "localhost", "pwd"),
    _rule(600, "+dbrole_readonly", "all", "intra", "pwd"),
    _rule(650, "+dbrole_offline", "all", "intra", "pwd"),
]
PIGSTY_PGB_DEFAULTS = [
    _rule(100, "${dbsu}", "pgbouncer", "local", "peer"),
    _rule(150, "all", "all", "localhost", "pwd"),
    _rule(200, "${monitor}", "pgbouncer", "intra", "pwd"),
    _rule(250, "${monitor}", "all", "world", "deny"),
    _rule(300, "${admin}", "all", "intra", "pwd"),
    _rule(350, "${admin}", "all", "world", "deny"),
    _rule(400, "all", "all", "intra", "pwd"),
]
PIGSTY_SERVICES = [
    {"name": "primary", "port": 5433, "dest": "default", "check": "/primary", "selector": "[]"},
    {
        "name": "replica",
        "port": 5434,
        "dest": "default",
        "check": "/read-only",
        "selector": "[]",
        "backup": "[? pg_role == `primary` || pg_role == `offline` ]",
    },
    {"name": "default", "port": 5436, "dest": "postgres", "check": "/primary", "selector": "[]"},
    {
        "name": "offline",
        "port": 5438,
        "dest": "postgres",
        "check": "/replica",
        "selector": "[? pg_role == `offline` || pg_offline_query ]",
        "backup": "[? pg_role == `replica` && !pg_offline_query]",
    },
]


#: The documented difference of the default rules (docs/pigsty.md, "HBA";
#: docs/hba.md, "The default policy"): every rule for the network over TLS
#: (pgbouncer: unless pgbouncer_sslmode is disable), the admin superuser
#: over the local socket or with TLS from admin_ip only, denied elsewhere.
#: An inventory that sets pg_default_hba_rules / pgb_default_hba_rules
#: gets Pigsty's rendering of what it writes.
HERE_PG_DEFAULTS = [
    _rule(100, "${dbsu}", "all", "local", "ident"),
    _rule(150, "${dbsu}", "replication", "local", "ident"),
    _rule(200, "${repl}", "replication", "localhost", "pwd"),
    _rule(250, "${repl}", "replication", "intra", "ssl"),
    _rule(300, "${repl}", "postgres", "intra", "ssl"),
    _rule(350, "${monitor}", "all", "localhost", "pwd"),
    _rule(400, "${monitor}", "all", "infra", "ssl"),
    _rule(450, "${admin}", "all", "local", "pwd"),
    _rule(500, "${admin}", "all", "admin", "ssl"),
    _rule(525, "${admin}", "all", "world", "deny"),
    _rule(550, "+dbrole_readonly", "all", "localhost", "pwd"),
    _rule(600, "+dbrole_readonly", "all", "intra", "ssl"),
    _rule(650, "+dbrole_offline", "all", "intra", "ssl"),
]


def here_pgb_defaults(tls: bool) -> List[Dict[str, Any]]:
    net = "ssl" if tls else "pwd"
    return [
        _rule(100, "${dbsu}", "pgbouncer", "local", "peer"),
        _rule(150, "all", "all", "localhost", "pwd"),
        _rule(200, "${monitor}", "pgbouncer", "intra", net),
        _rule(250, "${monitor}", "all", "world", "deny"),
        _rule(300, "${admin}", "all", "admin", "ssl"),
        _rule(350, "${admin}", "all", "world", "deny"),
        _rule(400, "all", "all", "intra", net),
    ]


def routed_here_hba(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]], host: str, kind: str
) -> List[Line]:
    """``reference_hba`` with the documented difference of the default
    rules applied (an inventory's own default lists are taken as written)."""
    hv = hostvars[host]
    if kind == "postgres":
        defaults = HERE_PG_DEFAULTS
    else:
        defaults = here_pgb_defaults(hv.get("pgbouncer_sslmode", "prefer") != "disable")
    prefix = "pg" if kind == "postgres" else "pgb"
    rules = list(hv.get(prefix + "_default_hba_rules", defaults)) + list(hv.get(prefix + "_hba_rules", []))
    return hba(rules, instance_of(hostvars, groups, host, {}), kind)


def reference_hba(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]], host: str, kind: str
) -> List[Line]:
    """The active lines Pigsty renders for one host of an inventory."""
    hv = hostvars[host]
    defaults = PIGSTY_PG_DEFAULTS if kind == "postgres" else PIGSTY_PGB_DEFAULTS
    prefix = "pg" if kind == "postgres" else "pgb"
    rules = list(hv.get(prefix + "_default_hba_rules", defaults)) + list(hv.get(prefix + "_hba_rules", []))
    return hba(rules, instance_of(hostvars, groups, host, {}), kind)


def reference_services(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]], cluster: str
) -> List[Dict[str, Any]]:
    """The services Pigsty renders for one cluster of an inventory."""
    members = [
        dict(hostvars[h], inventory_hostname=h) for h in groups["all"] if hostvars[h].get("pg_cluster") == cluster
    ]
    hv = members[0]
    specs = list(hv.get("pg_default_services", PIGSTY_SERVICES)) + list(hv.get("pg_services", []))
    return services(specs, members, hv.get("pg_default_service_dest", "pgbouncer"))


#: The one deliberate difference in the default services (docs/services.md):
#: the replica service does not name the inventory's primary as a backup,
#: since after a failover that member is a standby like the others. (Its
#: /read-only check is also routed in two tiers; the tests compare the
#: checked tier, the servers that track nothing.)
ROUTED_HERE_SERVICES = [
    dict(s, backup="[? pg_role == `offline` ]") if s["name"] == "replica" else s for s in PIGSTY_SERVICES
]


def routed_here_services(
    hostvars: Mapping[str, Mapping[str, Any]], groups: Mapping[str, Sequence[str]], cluster: str
) -> List[Dict[str, Any]]:
    """``reference_services`` with the documented difference of the default
    replica service applied (an inventory's own pg_default_services are
    taken as written)."""
    members = [
        dict(hostvars[h], inventory_hostname=h) for h in groups["all"] if hostvars[h].get("pg_cluster") == cluster
    ]
    hv = members[0]
    specs = list(hv.get("pg_default_services", ROUTED_HERE_SERVICES)) + list(hv.get("pg_services", []))
    return services(specs, members, hv.get("pg_default_service_dest", "pgbouncer"))


def instance_of(
    hostvars: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    host: str,
    defaults: Mapping[str, Any],
) -> Dict[str, Any]:
    """The reference's view of one instance, from the inventory."""
    hv = dict(defaults, **hostvars[host])
    cluster = hv["pg_cluster"]
    members = [h for h in groups["all"] if hostvars[h].get("pg_cluster") == cluster]
    return {
        "pg_role": hv["pg_role"],
        "pg_offline_query": hv.get("pg_offline_query", False),
        "pg_pwd_enc": hv.get("pg_pwd_enc", "scram-sha-256"),
        "users": {
            "${dbsu}": hv.get("pg_dbsu", "postgres"),
            "${repl}": hv.get("pg_replication_username", "replicator"),
            "${monitor}": hv.get("pg_monitor_username", "dbuser_monitor"),
            "${admin}": hv.get("pg_admin_username", "dbuser_dba"),
        },
        "admin_ip": hv.get("admin_ip"),
        "infra": list(groups.get("infra", ())),
        "members": sorted(members),
        "intranet": list(hv.get("node_firewall_intranet", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])),
    }


def effective(lines: Sequence[str]) -> List[Line]:
    """The active lines of a rendered hba file, as the reference gives them."""
    return [tuple(line.split()) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def load_inventory(path: str) -> Tuple[Dict[str, Dict[str, Any]], Dict[str, List[str]]]:
    """(hostvars, groups) of a YAML inventory, with Ansible's own variable
    precedence (all vars, group vars by depth, host vars)."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[path])
    variables = VariableManager(loader=loader, inventory=inventory)
    hostvars = {}
    for host in inventory.get_hosts():
        hv = variables.get_vars(host=host, include_hostvars=False)
        hostvars[host.name] = {k: v for k, v in hv.items() if k not in ("groups", "hostvars", "vars", "environment")}
    return hostvars, inventory.get_groups_dict()
