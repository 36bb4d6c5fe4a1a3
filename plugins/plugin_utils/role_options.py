# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Role variables set in the inventory, checked against the roles' own
``meta/argument_specs.yml`` on the controller, before any node is touched.

The roles validate their arguments again when they run (Ansible does it at
role entry), but by then earlier plays may have changed nodes. Here every
role variable an inventory sets for a host (type, choices, elements,
sub-options) is checked in one pass, and each wrong value is reported like
a model problem: cluster, host, field, value and the fix, naming the role
whose argument_specs describes the variable. Variables of the cluster
vocabulary are left to the model, which knows more about them.
"""

from __future__ import annotations

import copy
import glob
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import yaml

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import Problem

ROLES_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "roles"))

Spec = Dict[str, Dict[str, Any]]


def load_specs(roles_dir: str = ROLES_DIR) -> Dict[str, Tuple[str, Dict[str, Any]]]:
    """{variable: (role, option spec)} of the ``main`` entry point of every
    role. A variable several roles document keeps the first role's spec."""
    out: Dict[str, Tuple[str, Dict[str, Any]]] = {}
    for path in sorted(glob.glob(os.path.join(roles_dir, "*", "meta", "argument_specs.yml"))):
        role = path.split(os.sep)[-3]
        with open(path, encoding="utf-8") as handle:
            doc = yaml.safe_load(handle) or {}
        options = ((doc.get("argument_specs") or {}).get("main") or {}).get("options") or {}
        for name, spec in options.items():
            out.setdefault(name, (role, spec))
    return out


def _validator_spec(spec: Mapping[str, Any]) -> Dict[str, Any]:
    """The option spec as ArgumentSpecValidator takes it: documentation
    keys dropped, no default or required (only given values are checked)."""
    keep = ("type", "elements", "choices", "no_log", "options")
    out = {k: copy.deepcopy(v) for k, v in spec.items() if k in keep}
    if "options" in out:
        out["options"] = {k: _validator_spec(v) for k, v in out["options"].items()}
    return out


def _shown(spec: Mapping[str, Any], value: Any) -> Any:
    return "(hidden)" if spec.get("no_log") else value


def check_host(
    host: str,
    cluster: Optional[str],
    host_vars: Mapping[str, Any],
    specs: Mapping[str, Tuple[str, Dict[str, Any]]],
    skip: Iterable[str] = (),
) -> List[Problem]:
    """Problems of the role variables ``host_vars`` sets for one host."""
    out: List[Problem] = []
    skipped = set(skip)
    for name, value in host_vars.items():
        if name in skipped or name not in specs or value is None:
            continue
        if isinstance(value, str) and "{{" in value:
            continue  # still a template: the role checks it when it runs
        role, spec = specs[name]
        checked = ArgumentSpecValidator({name: _validator_spec(spec)}).validate({name: value})
        if checked.error_messages:
            expected = spec.get("type", "str")
            if spec.get("elements"):
                expected += " of %s" % spec["elements"]
            if spec.get("choices"):
                expected += ", one of %s" % ", ".join(map(str, spec["choices"]))
            if spec.get("no_log"):
                what = "is not a valid %s" % expected  # the messages quote the value
            else:
                what = "; ".join(m.replace("argument '%s'" % name, "it") for m in checked.error_messages)
            out.append(
                Problem(
                    cluster,
                    host,
                    name,
                    _shown(spec, value),
                    what,
                    "give a value of type %s (roles/%s/meta/argument_specs.yml, docs/parameters.md)" % (expected, role),
                )
            )
    return out


def check_hosts(
    hostvars: Mapping[str, Any],
    hosts: Iterable[Tuple[str, Optional[str]]],
    skip: Iterable[str] = (),
    specs: Optional[Mapping[str, Tuple[str, Dict[str, Any]]]] = None,
) -> List[Problem]:
    """Check ``[(host, cluster)]``; ``hostvars`` may be Ansible's lazy
    hostvars: only the variables a role documents are read."""
    specs = load_specs() if specs is None else specs
    skipped = set(skip)
    names = [n for n in specs if n not in skipped]
    out: List[Problem] = []
    for host, cluster in hosts:
        hv = hostvars.get(host) if hasattr(hostvars, "get") else hostvars[host]
        if hv is None:
            continue
        given = {n: hv[n] for n in names if n in hv}
        out.extend(check_host(host, cluster, given, specs))
    return out
