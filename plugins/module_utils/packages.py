# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Which of a role's packages a node still lacks, from ``dpkg_facts``; and
which packages the roles after PostgreSQL's will install on a node.

The roles skip their apt task when nothing is missing: a re-run then spends
no time opening apt's cache. The answer errs towards "missing": apt is
idempotent, so a false "missing" only costs time, a false "installed" would
leave a package out.
"""

from __future__ import annotations

import fnmatch
import re

from ansible.module_utils.parsing.convert_bool import boolean

# what the apt module accepts besides a bare name: name=version (with *
# wildcards), name:arch, and comparisons (name>=version) which this module
# does not judge
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9+.\-]*)(?::[A-Za-z0-9\-]+)?(?:=(?P<version>.+))?\Z")


def missing(wanted, installed):
    """The entries of ``wanted`` (package specs as the apt module takes them)
    that ``installed`` ({name: version}, or None when unknown) does not
    satisfy, in order, without repeats.

    A bare name (or name:arch) is satisfied by any installed version;
    ``name=version`` by a matching version (``*`` wildcards as apt allows);
    anything else (``name>=1``, a .deb path) is always reported missing so
    that apt decides.
    """
    out = []
    for spec in wanted or ():
        spec = str(spec).strip()
        if not spec or spec in out:
            continue
        if installed is None:
            out.append(spec)
            continue
        match = _PIN.match(spec)
        if match is None:
            out.append(spec)
            continue
        version = installed.get(match.group("name"))
        pin = match.group("version")
        if version is None or (pin is not None and not fnmatch.fnmatchcase(version, pin)):
            out.append(spec)
    return out


# The packages that the roles after PostgreSQL's install on a PostgreSQL
# node, with their defaults (the roles' argument_specs; a unit test keeps
# them equal) and the switches that turn each on: (variable holding the
# list or None, default list, [(switch names, first set wins; default)]).
# The exporters role runs the pgbouncer exporter only where pgbouncer's
# binary is, hence its second switch.
_EXPORTERS_ON = (("exporters_enabled",), True)
_PGBOUNCER_ON = (("pgbouncer_enabled",), True)
_AFTER_POSTGRES = (
    ("patroni_packages", ("patroni",), ()),
    ("pgbouncer_packages", ("pgbouncer", "python3-psycopg2"), (_PGBOUNCER_ON,)),
    ("haproxy_packages", ("haproxy",), ((("haproxy_enabled",), True),)),
    ("vip_packages", ("iproute2", "iputils-arping"), ((("pg_vip_enabled",), False),)),
    (None, ("prometheus-node-exporter",), (_EXPORTERS_ON, (("exporters_node_enabled", "node_exporter_enabled"), True))),
    (None, ("prometheus-postgres-exporter",), (_EXPORTERS_ON, (("exporters_pg_enabled", "pg_exporter_enabled"), True))),
    (
        None,
        ("prometheus-pgbouncer-exporter",),
        (
            _EXPORTERS_ON,
            _PGBOUNCER_ON,
            (("exporters_pgbouncer_enabled", "pgbouncer_exporter_enabled", "pgbouncer_enabled"), True),
        ),
    ),
)


def _switch(host_vars, names, default):
    """The first of ``names`` that ``host_vars`` sets, read as the roles'
    ``| bool`` reads it; ``default`` when none is set."""
    for name in names:
        if name in host_vars and host_vars[name] is not None:
            return boolean(host_vars[name], strict=False)
    return default


def after_postgres(host_vars):
    """The packages the roles that follow PostgreSQL's (Patroni, pgbouncer,
    HAProxy, the VIP, the exporters) will install on this PostgreSQL node,
    from its variables: a role's own list where the inventory sets it
    (``haproxy_packages``...), otherwise the role's default; only the roles
    that the node's switches leave on (``haproxy_enabled``,
    ``pg_vip_enabled``...). In order, without repeats.

    The postgres role installs them with PostgreSQL's on a new node, so that
    apt runs once there instead of once per role; each role still installs
    whatever it finds missing, so a list that differs from the roles' only
    costs an apt run.
    """
    out = []
    for variable, default, switches in _AFTER_POSTGRES:
        if not all(_switch(host_vars, names, on) for names, on in switches):
            continue
        listed = host_vars.get(variable) if variable else None
        for spec in default if listed is None else listed:
            if spec not in out:
                out.append(spec)
    return out
