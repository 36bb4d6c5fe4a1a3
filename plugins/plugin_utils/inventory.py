# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Controller-side glue shared by the filter and action plugins.

Turns Ansible's ``hostvars``/``groups`` into the plain data of the model and
runs the model, so that every plugin reads the inventory the same way:
:func:`snapshot` copies out the variables the model reads,
:func:`load_checked` and :func:`load_valid` load and validate them
(:mod:`validate`). Controller only: no module imports it, so it is not
shipped to the nodes with the module_utils.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    pigsty as pigsty_mod,
    safety,
    services as svc_mod,
    validate,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Inventory,
    load,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.validate import (
    MODEL_VARS,
)


def load_checked(
    hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]], hosts: Optional[Iterable[str]] = None
) -> Tuple[Inventory, List[Problem]]:
    """Snapshot the clusters of ``hosts`` (all when None) and validate them.

    Returns the loaded inventory and every problem found (sorted).
    """
    snap = snapshot(hostvars, groups, hosts)
    inv = load(snap["hostvars"], snap["groups"], snap["clusters"])
    found = list(snap["errors"]) + validate.problems(inv)
    return inv, (ModelError(found).problems if found else [])


def load_valid(
    hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]], hosts: Optional[Iterable[str]] = None
) -> Inventory:
    """Like :func:`load_checked` but raise :class:`ModelError` on problems."""
    inv, found = load_checked(hostvars, groups, hosts)
    if found:
        raise ModelError(found)
    return inv


def load_for_clusters(
    hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]], needed: Callable[[Inventory], Iterable[str]]
) -> Inventory:
    """Load every cluster, and raise :class:`ModelError` only for the
    problems of the clusters ``needed(inventory)`` names (and those of no
    cluster). A filter that looks across clusters (the services another
    node publishes) then fails on what it computes, not on another
    cluster that a play limited with ``-l`` and its extra variables never
    validated."""
    inv, found = load_checked(hostvars, groups, None)
    if found:
        wanted = set(needed(inv))
        found = [p for p in found if p.cluster is None or p.cluster in wanted]
        if found:
            raise ModelError(found)
    return inv


# The facts the model reads, as top-level variables (inject_facts_as_vars)
# and under ansible_facts.
FACT_VARS = {"ansible_memtotal_mb": "memtotal_mb", "ansible_processor_vcpus": "processor_vcpus"}


# ---------------------------------------------------------- extraction


def snapshot(
    hostvars: Mapping[str, Mapping[str, Any]],
    groups: Mapping[str, Sequence[str]],
    hosts: Optional[Iterable[str]] = None,
) -> Dict[str, Any]:
    """Copy, into plain dicts, the variables the model reads.

    ``hostvars`` may be Ansible's lazy ``hostvars`` (reading a key templates
    it); only the variables in :data:`MODEL_VARS` and the fields that the
    clusters' service selectors read are touched, so unrelated variables of
    other modules are never templated. ``hosts`` limits the result to the
    clusters those hosts belong to (all clusters when None); infra and etcd
    hosts are always included.

    Returns ``{"hostvars": {...}, "groups": {...}, "clusters": [...],
    "errors": [Problem, ...]}`` where errors are variables that could not
    be read (e.g. a template referring to an undefined variable).
    """
    errors: List[Problem] = []
    all_hosts = list(groups.get("all") or hostvars.keys())

    def read(host: str, names: Iterable[str], into: Dict[str, Any]) -> None:
        hv = hostvars[host]
        for name in names:
            if name in into:
                continue
            try:
                if name not in hv:
                    continue
                into[name] = hv[name]
            except Exception as exc:  # undefined variables, bad templates
                errors.append(
                    Problem(
                        into.get("pg_cluster"),
                        host,
                        name,
                        None,
                        "cannot be evaluated (%s)" % str(exc).splitlines()[0],
                        "define the variables it refers to",
                    )
                )

    def read_facts(host: str, into: Dict[str, Any]) -> None:
        # with inject_facts_as_vars off, the facts are only in ansible_facts
        missing = [n for n in FACT_VARS if n not in into]
        if not missing:
            return
        hv = hostvars[host]
        facts = hv["ansible_facts"] if "ansible_facts" in hv else None
        if isinstance(facts, Mapping):
            for name in missing:
                if FACT_VARS[name] in facts:
                    into[name] = facts[FACT_VARS[name]]

    def read_pigsty(host: str, into: Dict[str, Any]) -> None:
        # names only (reading a value templates it), and the values the
        # warnings about Pigsty settings need
        try:
            names = [n for n in hostvars[host] if pigsty_mod.is_pigsty_setting(n)]
        except Exception:  # pylint: disable=broad-except
            names = []
        into[pigsty_mod.PRESENT_KEY] = tuple(sorted(names))
        wanted = [n for n in names if pigsty_mod.needs_value(n)]
        before = len(errors)
        read(host, wanted, into)
        del errors[before:]  # a value that cannot be read is not fatal

    cluster_of: Dict[str, Any] = {}

    def cluster_name(host: str) -> Any:
        if host not in cluster_of:
            try:
                hv = hostvars[host]
                name = hv["pg_cluster"] if "pg_cluster" in hv else None
                if name is not None and (not isinstance(name, str) or not name):
                    errors.append(
                        Problem(
                            None,
                            host,
                            "pg_cluster",
                            name,
                            "is not a non-empty string",
                            "set pg_cluster to the cluster name, e.g. pg-test",
                        )
                    )
                    name = None
                cluster_of[host] = name
            except Exception as exc:
                cluster_of[host] = None
                errors.append(
                    Problem(
                        None,
                        host,
                        "pg_cluster",
                        None,
                        "cannot be evaluated (%s)" % str(exc).splitlines()[0],
                        "define the variables it refers to",
                    )
                )
        return cluster_of[host]

    if hosts is None:
        candidates = all_hosts
        wanted = {cluster_name(h) for h in all_hosts}
    else:
        wanted = {cluster_name(h) for h in hosts if h in hostvars}
        # A cluster is normally the group of its name: read only that group,
        # unless some cluster has no such group (then every host is read).
        names = {c for c in wanted if isinstance(c, str)}
        if all(c in groups for c in names):
            chosen: Set[str] = set()
            for c in names:
                chosen.update(groups[c])
            candidates = [h for h in all_hosts if h in chosen]
        else:
            candidates = all_hosts
    wanted_hashable = {c for c in wanted if isinstance(c, str)}
    members = [h for h in candidates if cluster_name(h) in wanted_hashable]

    out: Dict[str, Dict[str, Any]] = {}
    for host in members:
        out[host] = {}
        read(host, MODEL_VARS, out[host])
        read(host, safety.SAFETY_VARS, out[host])
        read_facts(host, out[host])
        read_pigsty(host, out[host])
    # The fields that selectors read, per cluster (from its first member).
    fields_by_cluster: Dict[str, set] = {}
    for host in members:
        name = cluster_of[host]
        if name in fields_by_cluster:
            continue
        hv = out[host]
        svcs = list(hv.get("pg_default_services") or MODEL_DEFAULTS["pg_default_services"]) + list(
            hv.get("pg_services") or []
        )
        fields: set = set()
        for svc in svcs:
            if isinstance(svc, dict):
                for key in ("selector", "backup"):
                    if isinstance(svc.get(key), str):
                        fields |= svc_mod.selector_fields(svc[key])
        fields_by_cluster[name] = fields
    for host in members:
        read(host, sorted(fields_by_cluster[cluster_of[host]]), out[host])
    for group in ("infra", "etcd"):
        for host in groups.get(group, ()):
            out.setdefault(host, {})
            read(host, safety.NODE_VARS, out[host])
    # Every other host (infra and etcd hosts too): its address, cluster and
    # VIP, for the collisions across the whole inventory (safety.py), and
    # what a standby cluster reads of its source (upstream.py). A value
    # that cannot be read is not this validation's business.
    member_set = set(members)
    for host in all_hosts:
        if host not in member_set and host in hostvars:
            before = len(errors)
            read(host, safety.OTHER_VARS, out.setdefault(host, {}))
            del errors[before:]
    keep = ("all", "infra", "etcd", *sorted(wanted_hashable))
    plain_groups = {g: list(groups[g]) for g in keep if g in groups}
    for host in members:
        value = out[host].get("pg_service_provider")
        if isinstance(value, str) and value in groups:
            plain_groups[value] = list(groups[value])
    return {"hostvars": out, "groups": plain_groups, "clusters": sorted(wanted_hashable), "errors": errors}
