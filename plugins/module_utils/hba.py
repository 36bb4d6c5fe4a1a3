# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""HBA rules: checking them and rendering ``pg_hba.conf`` / pgbouncer's hba.

Pure Python (stdlib and :mod:`ipaddress` only); nothing here imports Ansible.

A rule is a mapping with the keys ``user`` (default ``all``), ``db``
(default ``all``), ``addr``, ``auth``, ``title``, ``role`` (default
``common``) and ``order``, or ``rules`` (a list of raw HBA lines) in place of
``addr``/``auth``/``user``/``db``. The rules of one file are
``pg_default_hba_rules + pg_hba_rules`` (postgres) or
``pgb_default_hba_rules + pgb_hba_rules`` (pgbouncer).

* :func:`check_hba_rules` finds every mistake in a list of rules at once and
  returns :class:`Problem` values; it never raises on inventory data.
* :func:`hba_lines` renders the file of one instance. Rules whose ``role``
  does not apply to the instance are rendered commented out, so that every
  instance of a cluster shows the whole policy.

See ``docs/hba.md`` for the rule language, the alias tables and the rendered
default rules.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Dict, List, Optional, Sequence, Tuple, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import ModelError, Problem

__all__ = [
    "DEFAULT_PG_HBA_RULES",
    "DEFAULT_PGB_HBA_RULES",
    "default_pgb_hba_rules",
    "ROLES",
    "KINDS",
    "RULE_KEYS",
    "ADDR_ALIASES",
    "AUTH_ALIASES",
    "USER_ALIASES",
    "HbaContext",
    "order_rules",
    "rule_active",
    "hba_lines",
    "check_hba_rules",
]


def _rule(order, user, db, addr, auth, title):
    return {"user": user, "db": db, "addr": addr, "auth": auth, "title": title, "order": order}


#: ``pg_default_hba_rules``: the access policy of every postgres instance.
#: PostgreSQL always runs with TLS here (``ssl = on``), so every rule for the
#: network requires it (``ssl``: ``hostssl``); the admin superuser comes in
#: over the local socket, or with TLS from ``admin_ip`` only, and is denied
#: from anywhere else before the business users' rules (which it would
#: match through its dbrole_admin membership). Pigsty's defaults differ
#: (docs/pigsty.md): an inventory that sets ``pg_default_hba_rules`` gets
#: exactly what it writes.
DEFAULT_PG_HBA_RULES: Tuple[dict, ...] = (
    _rule(100, "${dbsu}", "all", "local", "ident", "dbsu via the local socket, os user ident"),
    _rule(150, "${dbsu}", "replication", "local", "ident", "dbsu replication via the local socket, os user ident"),
    _rule(200, "${repl}", "replication", "localhost", "pwd", "replicator replication from localhost"),
    _rule(250, "${repl}", "replication", "intra", "ssl", "replicator replication from intranet over ssl"),
    _rule(300, "${repl}", "postgres", "intra", "ssl", "replicator to the postgres database from intranet over ssl"),
    _rule(350, "${monitor}", "all", "localhost", "pwd", "monitor from localhost with password"),
    _rule(400, "${monitor}", "all", "infra", "ssl", "monitor from infra hosts over ssl"),
    _rule(450, "${admin}", "all", "local", "pwd", "admin via the local socket with password"),
    _rule(500, "${admin}", "all", "admin", "ssl", "admin from the admin node (admin_ip) over ssl"),
    _rule(525, "${admin}", "all", "world", "deny", "admin denied from anywhere else"),
    _rule(550, "+dbrole_readonly", "all", "localhost", "pwd", "business users from localhost with password"),
    _rule(600, "+dbrole_readonly", "all", "intra", "ssl", "business users from intranet over ssl"),
    _rule(650, "+dbrole_offline", "all", "intra", "ssl", "offline (etl) users from intranet over ssl"),
)


def default_pgb_hba_rules(tls: bool = False) -> Tuple[dict, ...]:
    """``pgb_default_hba_rules``: the access policy of every pgbouncer.
    ``tls``: pgbouncer takes TLS from clients (``pgbouncer_sslmode`` other
    than ``disable``); then every rule for the network requires it. The
    admin superuser comes in from ``admin_ip`` with TLS only (never without
    it: with ``pgbouncer_sslmode: disable`` only from the node itself), and
    is denied from anywhere else."""
    net = "ssl" if tls else "pwd"
    return (
        _rule(100, "${dbsu}", "pgbouncer", "local", "peer", "dbsu to the pgbouncer console via the local socket"),
        _rule(150, "all", "all", "localhost", "pwd", "any user from localhost with password"),
        _rule(
            200,
            "${monitor}",
            "pgbouncer",
            "intra",
            net,
            "monitor to the pgbouncer console from intranet%s" % (" over ssl" if tls else " with password"),
        ),
        _rule(250, "${monitor}", "all", "world", "deny", "monitor denied from anywhere else"),
        _rule(300, "${admin}", "all", "admin", "ssl", "admin from the admin node (admin_ip) over ssl"),
        _rule(350, "${admin}", "all", "world", "deny", "admin denied from anywhere else"),
        _rule(400, "all", "all", "intra", net, "any user from intranet%s" % (" over ssl" if tls else " with password")),
    )


#: ``pgb_default_hba_rules`` with ``pgbouncer_sslmode: disable`` (the
#: default).
DEFAULT_PGB_HBA_RULES: Tuple[dict, ...] = default_pgb_hba_rules(False)

#: Values of a rule's ``role``. ``common`` and ``default`` (and an unset
#: role) mean "every instance".
ROLES = ("common", "default", "primary", "replica", "offline", "standby", "delayed")
_ALWAYS = (None, "common", "default")
_ROLE_SET = frozenset(ROLES)

#: Kinds of file :func:`hba_lines` renders.
KINDS = ("postgres", "pgbouncer")

#: Keys a rule may have.
RULE_KEYS = ("addr", "auth", "db", "order", "role", "rules", "title", "user")
_RULE_KEY_SET = frozenset(RULE_KEYS)

#: Address aliases, in documentation order.
ADDR_ALIASES = ("local", "localhost", "admin", "infra", "cluster", "intra", "intranet", "world", "all")

#: Auth aliases and methods accepted in ``auth``.
AUTH_ALIASES = (
    "pwd",
    "ssl",
    "sha",
    "ssl-sha",
    "md5",
    "ssl-md5",
    "scram-sha-256",
    "cert",
    "os",
    "ident",
    "peer",
    "trust",
    "deny",
    "reject",
)

#: User aliases and the HbaContext field each one stands for.
USER_ALIASES = {"${dbsu}": "dbsu", "${repl}": "repl", "${monitor}": "monitor", "${admin}": "admin"}

_PWD_ENCS = ("scram-sha-256", "md5")

# Rendering: column widths of type, database and user, address.
_LINE = "%-7s %-15s %-23s %-18s %s"

# Fix texts shared by several problems.
_ADDR_FIX = (
    "use one of local, localhost, admin, infra, cluster, intra, intranet, world, all, or an IPv4/IPv6 address or CIDR"
)
_AUTH_FIX = "use one of " + ", ".join(AUTH_ALIASES)
_ROLE_FIX = "use one of " + ", ".join(ROLES)
_USER_FIX = "use ${dbsu}, ${repl}, ${monitor} or ${admin}, or a role name, +group or all"
_NAME_FIX = "write %s names without spaces, quotes or '#', separated by commas"
_BAD_NAME_CHARS = frozenset(' \t\n\r\f\v#"')


@dataclass(frozen=True)
class HbaContext:
    """What the rules of one instance are rendered against.

    Inventory sources: ``cluster`` is ``pg_cluster``; ``instance`` the
    instance name (``<pg_cluster>-<pg_seq>``); ``role`` its ``pg_role``;
    ``offline_query`` its ``pg_offline_query``; ``dbsu``, ``repl``,
    ``monitor``, ``admin`` are ``pg_dbsu``, ``pg_replication_username``,
    ``pg_monitor_username``, ``pg_admin_username``; ``pwd_enc`` is
    ``pg_pwd_enc``; ``admin_ip`` is ``admin_ip``; ``infra_ips`` the hosts of
    group ``infra``; ``cluster_ips`` the IPs of the cluster's members;
    ``intranet`` is ``node_firewall_intranet``.

    ``infra_ips``, ``cluster_ips`` and ``intranet`` are expanded in the
    order given (no sorting: the inventory order is the file order).
    Lists are accepted and stored as tuples.
    """

    cluster: str
    instance: str
    role: str
    offline_query: bool = False
    dbsu: str = "postgres"
    repl: str = "replicator"
    monitor: str = "dbuser_monitor"
    admin: str = "dbuser_dba"
    pwd_enc: str = "scram-sha-256"
    admin_ip: Optional[str] = None
    infra_ips: Tuple[str, ...] = ()
    cluster_ips: Tuple[str, ...] = ()
    intranet: Tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")

    def __post_init__(self):
        for name in ("infra_ips", "cluster_ips", "intranet"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))


# --------------------------------------------------------------------------
# Tables computed once.


def _auth_table(kind: str, pwd_enc: str) -> Dict[str, Tuple[str, bool]]:
    """alias -> (method, needs hostssl) for one kind of file."""
    pwd = "md5" if pwd_enc == "md5" else "scram-sha-256"
    os_method = "ident" if kind == "postgres" else "peer"
    return {
        "pwd": (pwd, False),
        "ssl": (pwd, True),
        "sha": ("scram-sha-256", False),
        "ssl-sha": ("scram-sha-256", True),
        "md5": ("md5", False),
        "ssl-md5": ("md5", True),
        "scram-sha-256": ("scram-sha-256", False),
        "cert": ("cert", True),
        "os": (os_method, False),
        "ident": (os_method, False),
        "peer": ("peer", False),
        "trust": ("trust", False),
        "deny": ("reject", False),
        "reject": ("reject", False),
    }


_AUTH = {(k, e): _auth_table(k, e) for k in KINDS for e in _PWD_ENCS}
_AUTH_SET = frozenset(AUTH_ALIASES)

# Address aliases that do not depend on the instance: alias -> addresses,
# None standing for the unix socket (a ``local`` line).
_STATIC_ADDR = {
    "local": (None,),
    "localhost": (None, "127.0.0.1/32", "::1/128"),
    "world": ("0.0.0.0/0", "::/0"),
    "all": ("0.0.0.0/0", "::/0"),
}
_CTX_ADDR = frozenset(("admin", "infra", "cluster", "intra", "intranet"))
_EMPTY_NOTE = {
    "admin": "# (no admin_ip)",
    "infra": "# (no infra hosts)",
    "cluster": "# (no cluster members)",
    "intra": "# (no intranet ranges)",
    "intranet": "# (no intranet ranges)",
}


@lru_cache(maxsize=1024)
def _literal_addr(text: str) -> Tuple[Optional[str], Optional[str]]:
    """A literal address -> (normalised CIDR, None) or (None, trouble).

    ``trouble`` is ``"bad"`` for text that is no address at all, or the
    corrected network when a CIDR has host bits set. IPv6 zone indices
    (``fe80::1%eth0``) are refused: neither postgres nor pgbouncer take them.
    """
    if "%" in text:
        return None, "bad"
    try:
        if "/" in text:
            return ipaddress.ip_network(text, strict=True).with_prefixlen, None
        return ipaddress.ip_network(text).with_prefixlen, None
    except ValueError:
        pass
    try:
        return None, ipaddress.ip_network(text, strict=False).with_prefixlen
    except ValueError:
        return None, "bad"


def _host_cidr(text: Any) -> Optional[str]:
    """An inventory IP address as a /32 or /128, or None if it is not one."""
    if not isinstance(text, str) or "%" in text:
        return None
    return _host_cidr_text(str(text))


@lru_cache(maxsize=65536)
def _host_cidr_text(text: str) -> Optional[str]:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return "%s/%d" % (ip.compressed, ip.max_prefixlen)


def _net_cidr(text: Any) -> Optional[str]:
    if not isinstance(text, str):
        return None
    cidr, _trouble = _literal_addr(text)
    return cidr


@lru_cache(maxsize=256)
def _ctx_addr(ctx: HbaContext) -> Dict[str, Tuple[Tuple[str, ...], Any]]:
    """alias -> (addresses, trouble) for the instance-dependent aliases.

    ``trouble`` is None, or (what, fix) when the inventory value behind the
    alias is unusable.
    """
    table: Dict[str, Tuple[Tuple[str, ...], Any]] = {}
    if ctx.admin_ip is None:
        table["admin"] = (
            (),
            (
                "admin_ip is not set, so the admin alias has no address",
                "set admin_ip in the inventory, or use another address",
            ),
        )
    else:
        cidr = _host_cidr(ctx.admin_ip)
        table["admin"] = (
            ((cidr,), None)
            if cidr
            else (
                (),
                (
                    "admin_ip %r is not an IP address" % (ctx.admin_ip,),
                    "set admin_ip to the IP address of the admin node",
                ),
            )
        )
    for alias, values, label, fix, convert in (
        ("infra", ctx.infra_ips, "infra host", "use IP addresses as the hosts of group infra", _host_cidr),
        ("cluster", ctx.cluster_ips, "cluster member", "use IP addresses as the hosts of the cluster", _host_cidr),
        (
            "intra",
            ctx.intranet,
            "node_firewall_intranet entry",
            "list network CIDRs in node_firewall_intranet",
            _net_cidr,
        ),
    ):
        cidrs = []
        trouble = None
        for value in values:
            cidr = convert(value)
            if cidr is None:
                trouble = trouble or ("%s %r is not valid" % (label, value), fix)
            else:
                cidrs.append(cidr)
        table[alias] = (tuple(cidrs), trouble)
    table["intranet"] = table["intra"]
    return table


def _ctx_table(ctx: HbaContext):
    try:
        return _ctx_addr(ctx)
    except TypeError:  # an unhashable value in the context
        return _ctx_addr.__wrapped__(ctx)


# --------------------------------------------------------------------------
# Public helpers.


def _order_of(rule: Any) -> Optional[int]:
    if isinstance(rule, Mapping):
        order = rule.get("order")
        if isinstance(order, int) and not isinstance(order, bool):
            return order
    return None


def order_rules(rules: Sequence[Any]) -> List[Any]:
    """Rules with an integer ``order`` stable-sorted by it, then the others.

    Rules without ``order`` (or with an invalid one, which
    :func:`check_hba_rules` reports) keep their given order after the
    ordered ones. Rules with equal ``order`` keep their given order.
    """
    ordered = []
    rest = []
    for rule in rules:
        order = _order_of(rule)
        if order is None:
            rest.append(rule)
        else:
            ordered.append((order, rule))
    ordered.sort(key=_first)
    return [rule for _order, rule in ordered] + rest


def _first(pair):
    return pair[0]


def rule_active(rule: Mapping, ctx: HbaContext) -> bool:
    """Whether ``rule`` applies to the instance of ``ctx``.

    Active when its role is unset, ``common`` or ``default``; equals the
    instance's role; or is ``offline`` and the instance serves offline
    queries (``pg_offline_query``).
    """
    role = rule.get("role")
    return role in _ALWAYS or role == ctx.role or (role == "offline" and bool(ctx.offline_query))


# --------------------------------------------------------------------------
# Examination of one rule: checks it and, when a context is given, resolves
# it into HBA lines. Both check_hba_rules and hba_lines go through here.


class _Where:
    __slots__ = ("field", "cluster", "host", "problems")

    def __init__(self, field, cluster, host) -> None:
        self.field = field
        self.cluster = cluster
        self.host = host
        self.problems: List[Problem] = []

    def add(self, path, value, what, fix):
        self.problems.append(Problem(self.cluster, self.host, self.field + path, value, what, fix))


def _hint(value: Any, choices: Sequence[str]) -> str:
    """``did you mean X? `` for a near miss of one of ``choices``, or ''."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value, choices, n=1)
    return "did you mean %s? " % close[0] if close else ""


def _name_trouble(value: Any) -> Optional[str]:
    """Why a user or db value cannot be written into an HBA line."""
    if not isinstance(value, str):
        return "must be a string"
    if not value:
        return "is empty"
    if not _BAD_NAME_CHARS.isdisjoint(value):
        return "contains a space, a quote or '#'"
    if "," in value and "" in value.split(","):
        return "has an empty name in its comma list"
    return None


def _examine(rule: Any, i: int, kind: str, ctx: Optional[HbaContext], table: Optional[dict], where: _Where):
    """Check one rule; return (order, title, role, lines) or None.

    ``table`` is ``_ctx_table(ctx)``, computed once per file. ``lines`` is
    None when ``ctx`` is None (nothing to resolve against). Problems go to
    ``where``.
    """
    at = "[%d]" % i
    if not isinstance(rule, Mapping):
        where.add(
            at,
            rule,
            "a rule must be a mapping",
            "write the rule as {user: ..., db: ..., addr: ..., auth: ..., title: ...}",
        )
        return None
    ok = True
    keys = rule.keys()
    if not _RULE_KEY_SET.issuperset(keys):
        for key in keys:
            if key in _RULE_KEY_SET:
                continue
            where.add(
                "%s.%s" % (at, key),
                rule[key],
                "is not a rule key",
                "%svalid keys: %s" % (_hint(key, RULE_KEYS), ", ".join(RULE_KEYS)),
            )
        ok = False

    get = rule.get
    order = get("order")
    if order is not None and (not isinstance(order, int) or isinstance(order, bool)):
        where.add(
            at + ".order",
            order,
            "must be an integer",
            "write a whole number without quotes, e.g. 500 (the default rules use 100 to 650 in steps of 50)",
        )
        ok = False
        order = None

    # As in Pigsty, an empty role, user, db or auth means its default
    # (common, all, all, pwd).
    role = get("role")
    if role == "":
        role = None
    if role is not None and (not isinstance(role, str) or role not in _ROLE_SET):
        where.add(at + ".role", role, "is not a rule role", _hint(role, ROLES) + _ROLE_FIX)
        ok = False

    title = get("title")
    if title is None:
        pass
    elif not isinstance(title, str):
        where.add(at + ".title", title, "must be a string", "quote the title")
        ok = False
    else:
        title = " ".join(title.split()) or None

    raw = get("rules")
    if raw is not None:
        return _examine_raw(rule, raw, at, order, title, role, ok, where, ctx is not None)

    user = get("user")
    if user is None or user == "":
        user = "all"
    else:
        trouble = _name_trouble(user)
        if trouble is not None:
            where.add(at + ".user", user, trouble, _NAME_FIX % "role")
            ok = False
        else:
            for item in user.split(",") if "${" in user else ():
                if "${" in item and item not in USER_ALIASES:
                    where.add(at + ".user", user, "unknown user alias %s" % item, _USER_FIX)
                    ok = False
                    break
            if kind == "pgbouncer" and (user[:1] == "+" or ",+" in user):
                where.add(
                    at + ".user",
                    user,
                    "pgbouncer's hba does not support +group membership and would skip the line",
                    "list the role names (comma separated), or all",
                )
                ok = False

    db = get("db")
    if db is None or db == "":
        db = "all"
    else:
        trouble = _name_trouble(db)
        if trouble is not None:
            where.add(at + ".db", db, trouble, _NAME_FIX % "database")
            ok = False
        elif kind == "pgbouncer":
            for item in db.split(","):
                if item in ("replication", "samerole", "samegroup"):
                    where.add(
                        at + ".db",
                        db,
                        "pgbouncer does not accept %s in its hba" % item,
                        "move the rule to pg_hba_rules, or use a database name or all",
                    )
                    ok = False
                    break

    addr = get("addr")
    addrs = None  # tuple of addresses (None = unix socket)
    socket = False  # whether the addresses include the socket
    if addr is None:
        where.add(at + ".addr", None, "is required (or give raw rules)", _ADDR_FIX)
        ok = False
    elif not isinstance(addr, str):
        where.add(at + ".addr", addr, "is not an address alias, IP address or CIDR", _ADDR_FIX)
        ok = False
    elif addr in _STATIC_ADDR:
        addrs = _STATIC_ADDR[addr]
        socket = addrs[0] is None
    elif addr in _CTX_ADDR:
        if table is not None:
            addrs, trouble = table[addr]
            if trouble is not None:
                where.add(at + ".addr", addr, trouble[0], trouble[1])
                ok = False
    else:
        cidr, trouble = _literal_addr(addr)
        if cidr is not None:
            addrs = (cidr,)
        elif trouble == "bad":
            where.add(
                at + ".addr", addr, "is not an address alias, IP address or CIDR", _hint(addr, ADDR_ALIASES) + _ADDR_FIX
            )
            ok = False
        else:
            where.add(at + ".addr", addr, "the CIDR has host bits set", "use the network %s" % trouble)
            ok = False

    auth = get("auth")
    if auth is None or auth == "":
        auth = "pwd"
    method = None
    if not isinstance(auth, str) or auth not in _AUTH_SET:
        if auth == "password":
            where.add(
                at + ".auth",
                auth,
                "cleartext password authentication is not offered",
                "use pwd (scram-sha-256, or md5 with pg_pwd_enc: md5), or ssl",
            )
        else:
            where.add(at + ".auth", auth, "is not an auth method or alias", _hint(auth, AUTH_ALIASES) + _AUTH_FIX)
        ok = False
    else:
        enc = ctx.pwd_enc if ctx is not None else "scram-sha-256"
        method, ssl = _AUTH[kind, enc if enc in _PWD_ENCS else "scram-sha-256"][auth]
        if isinstance(addr, str) and (addr in _STATIC_ADDR or addr in _CTX_ADDR or addrs):
            if method == "cert" and socket:
                where.add(
                    at + ".auth",
                    auth,
                    "cert needs TCP with TLS (hostssl) but addr %s %s the "
                    "unix socket, where PostgreSQL refuses it" % (addr, "is" if addr == "local" else "includes"),
                    "use a password method such as pwd on the socket"
                    if addr == "local"
                    else "use addr 127.0.0.1/32 and ::1/128 in two rules, or "
                    "auth ssl (a password; TLS is not required on the "
                    "loopback)",
                )
                ok = False
            elif ssl and socket:
                # As in Pigsty: the socket and the loopback addresses of
                # local/localhost take the password method over local and
                # host lines (no TLS on the machine itself).
                ssl = False
            elif method == "peer" and addr != "local":
                where.add(
                    at + ".auth",
                    auth,
                    "peer authentication works only on the unix socket (addr local)",
                    "use addr local, or a password method such as pwd",
                )
                ok = False

    if not ok or ctx is None:
        return (order, title, role, None) if ok else None

    if "${" in user:
        user = ",".join(getattr(ctx, USER_ALIASES[item]) if item in USER_ALIASES else item for item in user.split(","))
    if title is None:
        title = "%s to %s from %s by %s" % (user, db, addr, auth)
    lines = []
    if not addrs:
        # ok without addresses: addr is an alias, a string
        lines.append(_EMPTY_NOTE[cast(str, addr)])
    else:
        host_type = "hostssl" if ssl else "host"
        for address in addrs:
            if address is None:
                lines.append(_LINE % ("local", db, user, "", method))
            else:
                lines.append(_LINE % (host_type, db, user, address, method))
    return (order, title, role, tuple(lines))


def _examine_raw(rule, raw, at, order, title, role, ok, where, resolve):
    for key in ("addr", "auth", "user", "db"):
        if key in rule:
            where.add(
                "%s.%s" % (at, key),
                rule[key],
                "has no effect together with rules",
                "remove %s, or split the rule in two: the raw lines in one, addr/auth in the other" % key,
            )
            ok = False
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)) or not raw:
        where.add(
            at + ".rules",
            raw,
            "must be a non-empty list of HBA lines",
            "write rules: ['host all all 10.0.0.0/8 scram-sha-256']",
        )
        return None
    for j, line in enumerate(raw):
        if not isinstance(line, str):
            where.add("%s.rules[%d]" % (at, j), line, "an HBA line must be a string", "quote the line")
            ok = False
        elif "\n" in line or "\r" in line:
            where.add("%s.rules[%d]" % (at, j), line, "holds a line break", "give each HBA line as its own list item")
            ok = False
        elif not line.strip():
            where.add("%s.rules[%d]" % (at, j), line, "is a blank line", "remove it")
            ok = False
    if not ok:
        return None
    if title is None:
        title = "raw rules"
    return (order, title, role, tuple(raw) if resolve else None)


# --------------------------------------------------------------------------
# Entry points.


def check_hba_rules(
    rules: Any,
    kind: str,
    field: str,
    *,
    cluster: Optional[str] = None,
    host: Optional[str] = None,
    ctx: Optional[HbaContext] = None,
) -> List[Problem]:
    """Every problem of a list of HBA rules, found in one pass.

    ``kind`` is ``postgres`` or ``pgbouncer``; ``field`` names the list
    (e.g. ``pg_hba_rules``) and prefixes each problem's field, e.g.
    ``pg_hba_rules[2].addr``. With ``ctx``, the instance-dependent aliases
    (``admin``, ``infra``, ``cluster``, ``intra``) are checked against it as
    well. An unset list (None) has no rules.
    """
    if kind not in KINDS:
        raise ValueError("kind must be one of %s, not %r" % (KINDS, kind))
    where = _Where(field, cluster, host)
    if rules is None:
        rules = ()
    if isinstance(rules, (str, bytes)) or not isinstance(rules, (list, tuple)):
        where.add(
            "",
            rules,
            "must be a list of rules",
            "write a YAML list of rule mappings, e.g. - {user: all, db: all, addr: intra, auth: pwd, title: ...}",
        )
        return where.problems
    if ctx is not None and ctx.pwd_enc not in _PWD_ENCS:
        where.problems.append(
            Problem(
                cluster, host, "pg_pwd_enc", ctx.pwd_enc, "is not a password encryption", "use scram-sha-256 or md5"
            )
        )
    table = _ctx_table(ctx) if ctx is not None else None
    for i, rule in enumerate(rules):
        _examine(rule, i, kind, ctx, table, where)
    return where.problems


def hba_lines(rules: Sequence[Any], ctx: HbaContext, kind: str, *, field: Optional[str] = None) -> List[str]:
    """The lines of the hba file of the instance of ``ctx`` (no newlines).

    ``kind`` is ``postgres`` (pg_hba.conf) or ``pgbouncer``. Rules are
    ordered by :func:`order_rules`; each renders a comment naming its order,
    title and role, then its HBA lines, commented out when the rule does not
    apply to the instance (see :func:`rule_active`). Rules are separated by
    a blank line. Raises :class:`ModelError` with every problem when the
    rules do not pass :func:`check_hba_rules`.
    """
    if kind not in KINDS:
        raise ValueError("kind must be one of %s, not %r" % (KINDS, kind))
    if field is None:
        field = "pg_hba_rules" if kind == "postgres" else "pgb_hba_rules"
    where = _Where(field, ctx.cluster, ctx.instance)
    if rules is None:
        rules = ()
    if isinstance(rules, (str, bytes)) or not isinstance(rules, (list, tuple)):
        raise ModelError(check_hba_rules(rules, kind, field, cluster=ctx.cluster, host=ctx.instance))
    if ctx.pwd_enc not in _PWD_ENCS:
        raise ModelError(check_hba_rules(rules, kind, field, cluster=ctx.cluster, host=ctx.instance, ctx=ctx))
    memo = _memo_for(ctx, kind)
    table = None
    entries = []
    # An admin rule without admin_ip renders a comment: the default rules
    # name the admin node; a rule the inventory writes is refused by
    # check_hba_rules, which validation runs first.
    lenient = ctx.admin_ip is None
    for i, rule in enumerate(rules):
        try:
            key = (tuple(rule.items()), tuple(map(type, rule.values())))
            entries.append(memo[key])
            continue
        except (AttributeError, TypeError):
            key = None  # not a mapping, or unhashable values
        except KeyError:
            pass
        if table is None:
            table = _ctx_table(ctx)
            if lenient:
                table = dict(table, admin=((), None))
        entry = _examine(rule, i, kind, ctx, table, where)
        entries.append(entry)
        if entry is not None and key is not None:
            if len(memo) >= _MEMO_RULES:
                memo.clear()
            memo[key] = entry
    if where.problems:
        raise ModelError(where.problems)

    role_text = ctx.role + (", offline queries" if ctx.offline_query else "")
    out = [
        "# %s of %s, cluster %s, role %s"
        % ("pg_hba.conf" if kind == "postgres" else "pgbouncer hba", ctx.instance, ctx.cluster, role_text),
        "# generated by pigpen.pgsql; do not edit",
        "# rules for other roles are kept, commented out",
    ]
    append = out.append
    offline = bool(ctx.offline_query)
    this_role = ctx.role
    for order, title, role, lines in _order_entries(entries):
        append("")
        if order is None:
            append("# %s [%s]" % (title, role or "common"))
        else:
            append("# %d %s [%s]" % (order, title, role or "common"))
        if role in _ALWAYS or role == this_role or (offline and role == "offline"):
            out.extend(lines)
        else:
            for line in lines:
                append(line if line[:3] == "# (" else "#" + line)
    return out


# Resolved rules, memoised per kind and per the context fields that affect
# resolution (the same for every member of a cluster): key -> entry. Only
# rules that pass every check are stored; the key holds the value types so
# that, e.g., order True (invalid) never hits the entry of order 1.
_MEMO: Dict[tuple, Dict[tuple, tuple]] = {}
_MEMO_CONTEXTS = 64
_MEMO_RULES = 512


def _memo_for(ctx: HbaContext, kind: str) -> Dict[tuple, tuple]:
    key = (
        kind,
        ctx.dbsu,
        ctx.repl,
        ctx.monitor,
        ctx.admin,
        ctx.pwd_enc,
        ctx.admin_ip,
        ctx.infra_ips,
        ctx.cluster_ips,
        ctx.intranet,
    )
    try:
        return _MEMO[key]
    except KeyError:
        pass
    except TypeError:  # unhashable context value: no memo
        return {}
    if len(_MEMO) >= _MEMO_CONTEXTS:
        _MEMO.clear()
    memo = _MEMO[key] = {}
    return memo


def _order_entries(entries):
    """Like :func:`order_rules`, for examined (order, ...) tuples."""
    ordered = []
    rest = []
    for entry in entries:
        if entry[0] is None:
            rest.append(entry)
        else:
            ordered.append(entry)
    ordered.sort(key=_first)
    ordered.extend(rest)
    return ordered
