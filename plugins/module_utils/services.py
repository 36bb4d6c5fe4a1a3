# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Services: ``pg_default_services + pg_services`` -> HAProxy backends.

A service is published on a port of every HAProxy of the cluster (or of the
``pg_service_provider`` group) and forwards to the members that its
``selector`` picks, health-checked through Patroni's REST API.

For each service:

* ``selector`` and ``backup`` are JMESPath expressions evaluated over the
  cluster's members in inventory order; a member is its host vars as written
  plus ``inventory_hostname`` (an unset variable is null). ``[]`` selects all.
* servers are the selected members (flagged ``backup`` when the ``backup``
  expression selects them too), then the backup-only members, flagged
  ``backup``;
* the destination port is ``pg_default_service_dest`` for ``dest: default``
  (``postgres`` when pgbouncer is disabled), the member's ``pg_port`` for
  ``postgres``, its ``pgbouncer_port`` for ``pgbouncer``, or a number;
* the health check is ``OPTIONS <check>`` on the member's ``patroni_port``;
* a check that any running member passes, the leader included
  (``/read-only``, ``/read-only-sync``), is split in two tiers so that the
  routing follows the members' live roles, not the inventory's: the servers
  are checked with the standby-only form of the check (``/replica``,
  ``/sync``, the query kept), and every member is listed once more at the
  end as a backup server (``<instance>.fallback``) that tracks the declared
  check in a backend of its own (``<service>.fallback``, no listener). The
  standbys take the traffic; whichever member leads takes it only while no
  standby (and no backup standby) is up, after any number of failovers;
* the weight is the member's ``pg_weight``;
* ``options`` replaces the whole default-server option string, which
  otherwise comes from the RTO plan (:func:`ha.default_server_options`).
"""

from __future__ import annotations

import functools
import re
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

try:
    import jmespath
    from jmespath import exceptions as jmespath_exceptions

    JMESPATH_MISSING = None
except ImportError as _exc:  # reported when a selector is first compiled
    jmespath = None
    JMESPATH_MISSING = str(_exc)

    class _NoJMESPath:
        class JMESPathError(Exception):
            pass

    jmespath_exceptions = _NoJMESPath

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Cluster,
    Member,
    ip_of,
    is_int,
)

SERVICE_KEYS = ("name", "port", "ip", "selector", "backup", "dest", "check", "maxconn", "balance", "options")
BALANCES = ("roundrobin", "leastconn", "first", "source", "static-rr")
DESTS = ("default", "postgres", "pgbouncer")
# Patroni REST endpoints that answer health checks (Patroni 3.0, Debian
# 12). /quorum and /read-only-quorum came with Patroni 4: 3.0 answers the
# first with 503 always and the second as /read-only, so both are refused.
CHECKS = (
    "/primary",
    "/leader",
    "/standby-leader",
    "/standby_leader",
    "/replica",
    "/read-only",
    "/read-write",
    "/async",
    "/sync",
    "/read-only-sync",
    "/health",
    "/liveness",
    "/readiness",
    "/master",
)
# Endpoints Patroni 3.0 serves to GET only (OPTIONS answers 503 even on a
# healthy member); every other check uses OPTIONS, which Patroni answers
# without building a response body.
GET_CHECKS = ("/liveness", "/readiness")
# Checks that the leader passes as well as the standbys: such a service is
# routed in two tiers, the standby-only form first (see build_services).
STANDBY_FORMS = {"/read-only": "/replica", "/read-only-sync": "/sync"}
FALLBACK = "fallback"
DEFAULT_MAXCONN = 5000
# Pigsty's check when a service gives none: Patroni answers / like /primary.
ROOT_CHECK = "/"


def check_path(check: Any) -> Optional[str]:
    """The endpoint of a check, without its ?query."""
    return check.split("?", 1)[0] if isinstance(check, str) else None


SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?\Z")


@functools.lru_cache(maxsize=1024)
def compile_selector(expression: str):
    """Compile a JMESPath expression once per distinct text.

    The vocabulary's own selectors write string literals as `primary`
    (JMESPath's older literal form), which the library flags as pending
    deprecation; that warning is silenced here since the form is expected.
    """
    if jmespath is None:
        raise RuntimeError(
            "service selectors need the jmespath Python library on the "
            "controller (%s): pip install jmespath (requirements.txt)" % JMESPATH_MISSING
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return jmespath.compile(expression)


def selector_fields(expression: str) -> Set[str]:
    """Names of the variables a selector reads (for extracting host vars).

    Returns an empty set for an expression that does not parse; the parse
    error is reported by :func:`check_services`.
    """
    return set(_reads(expression)[0])


@functools.lru_cache(maxsize=1024)
def _reads(expression: str) -> Tuple[Tuple[str, ...], bool]:
    """(fields read, whether it reads whole members through ``@``)."""
    try:
        parsed = compile_selector(expression).parsed
    except jmespath_exceptions.JMESPathError:
        return (), True
    names: Set[str] = set()
    whole = False
    stack = [parsed]
    while stack:
        node = stack.pop()
        kind = node.get("type")
        if kind == "field":
            names.add(node["value"])
        elif kind == "current":
            whole = True
        stack.extend(c for c in node.get("children", ()) if isinstance(c, dict))
    return tuple(sorted(names)), whole


# Selections depend only on the fields an expression reads, so clusters that
# look alike through those fields share one evaluation (bounded memo).
_MEMO: Dict[Any, Tuple[int, ...]] = {}
_MEMO_MAX = 8192


def _memo_key(expression: str, views: List[Dict[str, Any]]) -> Any:
    fields, whole = _reads(expression)
    if whole:
        return None
    key = (expression, tuple(tuple((type(v.get(f)), v.get(f)) for f in fields) for v in views))
    try:
        hash(key)
    except TypeError:  # a field holds a list or mapping
        return None
    return key


def _select(
    expression: Optional[str], members: Sequence[Member], views: List[Dict[str, Any]]
) -> Tuple[List[Member], Optional[str]]:
    """Members an expression selects, in result order, or an error text."""
    if expression is None or expression == "":
        return [], None
    key = _memo_key(expression, views)
    if key is not None and key in _MEMO:
        return [members[i] for i in _MEMO[key]], None
    try:
        result = compile_selector(expression).search(views)
    except jmespath_exceptions.JMESPathError as exc:
        return [], "is not a valid JMESPath expression (%s)" % (str(exc).splitlines()[0])
    if result is None:
        return [], None
    if not isinstance(result, list):
        return [], (
            "must yield a list of members (a filter such as "
            "[? pg_role == `replica`]), but yields %s" % type(result).__name__
        )
    index = {id(v): i for i, v in enumerate(views)}
    picked: List[int] = []
    for item in result:
        i = index.get(id(item))
        if i is None:
            return [], ("must yield members, but yields %r; keep the projection off (no trailing .field)" % (item,))
        if i not in picked:
            picked.append(i)
    if key is not None:
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        _MEMO[key] = tuple(picked)
    return [members[i] for i in picked], None


def _dest_port(dest: Any, member: Member, default_dest: str) -> Any:
    if dest in (None, "default"):
        dest = default_dest
    if dest == "postgres":
        return member.get("pg_port")
    if dest == "pgbouncer":
        return member.get("pgbouncer_port")
    return dest


def all_services(cluster: Cluster) -> List[Dict[str, Any]]:
    """``pg_default_services + pg_services`` of a cluster, as written."""
    defaults = cluster.setting("pg_default_services") or []
    extra = cluster.setting("pg_services") or []
    return list(defaults) + list(extra)


def default_dest(cluster: Cluster) -> str:
    if cluster.setting("pgbouncer_enabled") is False:
        return "postgres"
    return cluster.setting("pg_default_service_dest") or "pgbouncer"


def build_services(cluster: Cluster, server_options: str) -> List[Dict[str, Any]]:
    """Every service of the cluster with its resolved server list.

    The cluster must have passed :func:`check_services`.
    """
    members = cluster.members
    views = [m.jmes_view() for m in members]
    ddest = default_dest(cluster)
    out = []
    for svc in all_services(cluster):
        selected, _skip = _select(svc.get("selector", "[]"), members, views)
        backups, _skip = _select(svc.get("backup"), members, views)
        backup_ids = {id(m) for m in backups}
        selected_ids = {id(m) for m in selected}
        chosen = selected + [m for m in backups if id(m) not in selected_ids]
        dest = svc.get("dest", "default")
        name = "%s-%s" % (cluster.name, svc["name"])
        declared = svc.get("check", "/primary")
        servers = [_server(m, dest, ddest, id(m) in backup_ids) for m in chosen]
        check, fallback = declared, None
        path = check_path(declared) or ""
        standby_form = STANDBY_FORMS.get(path)
        if standby_form is not None:
            check = standby_form + declared[len(path) :]
            fallback = {
                "name": "%s.%s" % (name, FALLBACK),
                "check": declared,
                "check_method": _method(declared),
                "servers": servers,
            }
            servers = servers + [
                dict(
                    srv,
                    name="%s.%s" % (srv["name"], FALLBACK),
                    backup=True,
                    track="%s.%s/%s" % (name, FALLBACK, srv["name"]),
                )
                for srv in servers
            ]
        out.append(
            {
                "name": name,
                "service": svc["name"],
                "cluster": cluster.name,
                "ip": svc.get("ip") or "*",
                "port": svc["port"],
                "dest": ddest if dest in (None, "default") else dest,
                "check": check,
                "check_method": _method(check),
                "declared_check": declared,
                "maxconn": svc.get("maxconn", DEFAULT_MAXCONN),
                "balance": svc.get("balance", "roundrobin"),
                "options": svc.get("options") or server_options,
                "selector": svc.get("selector", "[]"),
                "backup_selector": svc.get("backup"),
                "servers": servers,
                "fallback": fallback,
            }
        )
    return out


def _method(check: str) -> str:
    return "GET" if check_path(check) in GET_CHECKS else "OPTIONS"


def _check_ssl(m: Member) -> str:
    """HAProxy's options for a health check over HTTPS to the member's
    Patroni (``patroni_ssl_enabled``): the certificate verified against
    the deployment's CA, and against the member's instance name, which its
    certificate names (``verifyhost``: HAProxy matches DNS names, not
    addresses); empty over HTTP."""
    if not m.get("patroni_ssl_enabled"):
        return ""
    return "check-ssl verify required ca-file %s verifyhost %s" % (m.get("pg_ssl_ca"), m.instance)


def _server(m: Member, dest: Any, ddest: str, backup: bool) -> Dict[str, Any]:
    return {
        "name": m.instance,
        "host": m.host,
        "ip": m.ip,
        "port": _dest_port(dest, m, ddest),
        "check_port": m.get("patroni_port"),
        "check_ssl": _check_ssl(m),
        "weight": m.weight,
        "backup": backup,
        "track": None,
    }


#: Ports that components already use on every node; a service may not take
#: one (checked here for the service's own cluster; safety.py leaves these
#: pairs to this check).
RESERVED_PORT_NAMES = (
    "pg_port",
    "pgbouncer_port",
    "patroni_port",
    "haproxy_exporter_port",
    "pg_exporter_port",
    "pgbouncer_exporter_port",
    "pgbackrest_exporter_port",
    "node_exporter_port",
    "etcd_port",
    "etcd_peer_port",
    "etcd_tls_bridge_port",
)


def _reserved_ports(cluster: Cluster) -> Dict[int, str]:
    reserved = {}
    for name in RESERVED_PORT_NAMES:
        for m in cluster.members:
            port = m.get(name)
            if is_int(port):
                reserved[port] = name
    return reserved


def check_services(cluster: Cluster) -> List[Problem]:
    """Problems with the services of one cluster (never raises)."""
    out: List[Problem] = []
    name = cluster.name
    members = cluster.members
    views = [m.jmes_view() for m in members]
    reserved = _reserved_ports(cluster)
    pgb_off = cluster.setting("pgbouncer_enabled") is False

    def problem(fld, value, what, fix):
        out.append(Problem(name, None, fld, value, what, fix))

    for var in ("pg_default_services", "pg_services"):
        value = cluster.setting(var)
        if value is not None and not isinstance(value, list):
            problem(var, value, "is not a list of services", "write %s as a YAML list of mappings" % var)
    ddest = cluster.setting("pg_default_service_dest")
    if ddest not in ("postgres", "pgbouncer"):
        problem("pg_default_service_dest", ddest, "is not a destination", "use pgbouncer or postgres")

    names: Dict[Any, str] = {}
    ports: Dict[Any, str] = {}
    defaults = cluster.setting("pg_default_services")
    defaults = defaults if isinstance(defaults, list) else []
    extra = cluster.setting("pg_services")
    extra = extra if isinstance(extra, list) else []
    indexed = [("pg_default_services", i, s) for i, s in enumerate(defaults)]
    indexed += [("pg_services", i, s) for i, s in enumerate(extra)]
    for var, i, svc in indexed:
        where = "%s[%d]" % (var, i)
        if not isinstance(svc, dict):
            problem(where, svc, "is not a mapping", "write each service as a mapping with name, port, ...")
            continue
        unknown = sorted(set(svc) - set(SERVICE_KEYS))
        for key in unknown:
            problem("%s.%s" % (where, key), svc[key], "is not a service key", "use only %s" % ", ".join(SERVICE_KEYS))
        sname = svc.get("name")
        label = "%s(%s)" % (where, sname) if isinstance(sname, str) else where
        if not isinstance(sname, str) or not SERVICE_NAME.match(sname):
            problem(
                "%s.name" % where,
                sname,
                "a service needs a name of lowercase letters, digits and '-'",
                "name it e.g. 'standby' (the service becomes %s-standby)" % name,
            )
        elif sname in names:
            problem(
                "%s.name" % where,
                sname,
                "is already the name of %s" % names[sname],
                "give every service of %s its own name" % name,
            )
        else:
            names[sname] = where
        port = svc.get("port")
        if not is_int(port) or not 1 <= port <= 65535:
            problem("%s.port" % label, port, "is not a TCP port number", "use an integer from 1 to 65535, e.g. 5440")
        elif port in ports:
            problem(
                "%s.port" % label,
                port,
                "is already the port of %s" % ports[port],
                "give every service of %s its own port" % name,
            )
        elif port in reserved:
            problem(
                "%s.port" % label,
                port,
                "is the port of %s on the members" % reserved[port],
                "pick a free port, e.g. 5440",
            )
        else:
            ports[port] = label
        ip = svc.get("ip")
        if ip is not None and ip != "*" and ip_of(ip) is None:
            problem("%s.ip" % label, ip, "is not an address to bind", "use '*' (all addresses) or an IP address")
        dest = svc.get("dest", "default")
        if dest == "pgbouncer" and pgb_off:
            problem(
                "%s.dest" % label,
                dest,
                "points at pgbouncer, but pgbouncer_enabled is false",
                "use dest: postgres, or enable pgbouncer",
            )
        elif dest not in DESTS and not (is_int(dest) and 1 <= dest <= 65535):
            problem(
                "%s.dest" % label, dest, "is not a destination", "use default, postgres, pgbouncer or a port number"
            )
        check = svc.get("check", "/primary")
        path = check_path(check)
        if path in ("/quorum", "/read-only-quorum"):
            problem(
                "%s.check" % label,
                check,
                "needs Patroni 4; Debian 12's Patroni 3.0 does not serve it",
                "use /sync or /read-only-sync",
            )
        elif path not in CHECKS and path != ROOT_CHECK:
            problem(
                "%s.check" % label,
                check,
                "is not a Patroni health-check endpoint",
                "use one of %s" % ", ".join(CHECKS[:8]),
            )
        maxconn = svc.get("maxconn", DEFAULT_MAXCONN)
        if not is_int(maxconn) or maxconn < 1:
            problem("%s.maxconn" % label, maxconn, "is not a positive integer", "e.g. maxconn: 5000")
        balance = svc.get("balance", "roundrobin")
        if balance not in BALANCES:
            problem(
                "%s.balance" % label,
                balance,
                "is not an HAProxy balance algorithm",
                "use one of %s" % ", ".join(BALANCES),
            )
        options = svc.get("options")
        if options is not None and (not isinstance(options, str) or "\n" in options):
            problem(
                "%s.options" % label,
                options,
                "must be one line of default-server options",
                "write the options on one line, e.g. 'inter 3s rise 3 fall 3'",
            )
        for key in ("selector", "backup"):
            expr = svc.get(key, "[]" if key == "selector" else None)
            if expr is None:
                continue
            if not isinstance(expr, str):
                problem(
                    "%s.%s" % (label, key),
                    expr,
                    "is not a JMESPath expression string",
                    "quote the expression, e.g. \"[? pg_role == `replica`]\"",
                )
                continue
            _skip, err = _select(expr, members, views)
            if err:
                problem(
                    "%s.%s" % (label, key),
                    expr,
                    err,
                    "write a filter over the members, e.g. "
                    "\"[? pg_role == `replica`]\"; the members carry "
                    "their host vars and inventory_hostname",
                )
    return out


def check_providers(clusters: Sequence[Cluster], groups: Mapping[str, Sequence[str]]) -> List[Problem]:
    """Service providers: the group must exist, and no host may publish two
    services on one port: clusters sharing a provider group, or a provider
    host that is also a member of a cluster publishing its own services."""
    out: List[Problem] = []
    # (host, port) -> (cluster, service) that listens there
    taken: Dict[Tuple[str, int], Tuple[str, str]] = {}
    for cluster in clusters:
        provider = cluster.setting("pg_service_provider")
        if provider and (not isinstance(provider, str) or provider not in groups):
            out.append(
                Problem(
                    cluster.name,
                    None,
                    "pg_service_provider",
                    provider,
                    "is not a group of the inventory",
                    "name an existing group of HAProxy nodes, or leave it empty "
                    "to publish on the cluster's own members",
                )
            )
            continue
        hosts = list(groups[provider]) if provider else [m.host for m in cluster.members]
        reported = set()
        for svc in all_services(cluster):
            if not isinstance(svc, dict) or not is_int(svc.get("port")):
                continue
            here = "%s-%s" % (cluster.name, svc.get("name"))
            for host in hosts:
                key = (host, svc["port"])
                if key not in taken:
                    taken[key] = (cluster.name, here)
                elif taken[key][0] != cluster.name and (here, svc["port"]) not in reported:
                    # (a clash inside one cluster is check_services' report)
                    reported.add((here, svc["port"]))
                    out.append(
                        Problem(
                            cluster.name,
                            host,
                            "pg_services",
                            svc["port"],
                            "service %s uses port %d on %s, where %s already "
                            "listens" % (here, svc["port"], host, taken[key][1]),
                            "give services published on the same HAProxy hosts "
                            "different ports (pg_default_services/pg_services), "
                            "or use a provider group of other hosts",
                        )
                    )
    return out
