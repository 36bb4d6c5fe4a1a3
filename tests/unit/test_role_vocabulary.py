# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Every variable of the shared vocabulary (pg_*, patroni_*, pgbouncer_*,
pgbackrest_*, haproxy_*, etcd_*, node_*, vip_*, vector_*, ...) that a role
reads is declared in its meta/argument_specs.yml, so that
``ansible-doc -t role pigpen.pgsql.<role>`` shows it.

"Reads" is found in the role's own files: every Jinja expression of its
tasks, handlers, defaults, vars and templates, and the conditions of its
tasks (when, that, until, changed_when, failed_when, loop). Variables the
role defines itself (defaults, vars, set_fact, register, loop_var, task
vars, template set/for) are not inputs. Variables a role gets through the
model (the playbook computes vip_config from pg_vip_*) are listed in
MODEL_INPUTS below and must be declared too.
"""

from __future__ import annotations

import glob
import os
import re

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
ROLES_DIR = os.path.join(REPO, "roles")
ROLES = sorted(d for d in os.listdir(ROLES_DIR) if os.path.isdir(os.path.join(ROLES_DIR, d)))

VOCABULARY = re.compile(r"^(pg|pgb|patroni|pgbouncer|pgbackrest|haproxy|etcd|node|vip|vector|exporters)_")
CONDITIONS = {"when", "that", "until", "changed_when", "failed_when", "loop"}
JINJA = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
STRING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
NAME = re.compile(r"(?<![\w.])([a-z_][a-z0-9_]*)\b(?!\s*=[^=])")

# The vocabulary behind what a playbook computes for a role with the model
# (pg_instance_files, pg_instance_plan): not read by the role's files, yet what
# decides its files.
MODEL_INPUTS = {
    "vip": ["pg_vip_enabled", "pg_vip_address", "pg_vip_interface", "vip_interval", "pg_namespace"],
    "haproxy": [
        "pg_services",
        "pg_default_services",
        "pg_service_provider",
        "pg_default_service_dest",
        "pg_rto",
        "pg_weight",
        "pg_offline_query",
    ],
    "patroni": [
        "pg_conf",
        "pg_rto",
        "pg_rpo",
        "pg_parameters",
        "pg_hba_rules",
        "pg_default_hba_rules",
        "pg_upstream",
        "pg_delay",
        "pg_version",
    ],
    "pgbouncer": ["pgbouncer_poolmode", "pgb_hba_rules", "pgb_default_hba_rules", "pg_users", "pg_databases"],
    "dns": ["pg_dns_suffix", "pg_dns_target", "pg_vip_enabled", "pg_vip_address"],
    "pgbackrest": [
        "pgbackrest_method",
        "pgbackrest_repo",
        "pg_crontab",
        "pgbackrest_drill_schedule",
        "pgbackrest_drill_dir",
        "pgbackrest_drill_port",
        "pgbackrest_drill_target",
        "pgbackrest_drill_tables",
        "pgbackrest_drill_amcheck",
        "pgbackrest_drill_timeout",
    ],
}


def expressions(node, key=None):
    """Jinja expressions of a loaded YAML file (conditions are whole
    expressions, other strings hold them between braces)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from expressions(v, k)
    elif isinstance(node, list):
        for v in node:
            yield from expressions(v, key)
    elif isinstance(node, str):
        if key in CONDITIONS:
            yield node
        else:
            for m in JINJA.finditer(node):
                yield m.group(1) or m.group(2)


def names(expr):
    expr = STRING.sub("''", expr)
    out = set()
    for m in NAME.finditer(expr):
        before = expr[: m.start()].rstrip()
        if before.endswith("|") or before.endswith(" is") or before.endswith(" not"):
            continue  # a filter or a test
        out.add(m.group(1))
    return out


def defined(node, out):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("set_fact", "ansible.builtin.set_fact") and isinstance(v, dict):
                out.update(v)
            elif k in ("register", "loop_var") and isinstance(v, str):
                out.add(v)
            elif k == "vars" and isinstance(v, dict):
                out.update(v)
            defined(v, out)
    elif isinstance(node, list):
        for v in node:
            defined(v, out)


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def role_reads(role):
    base = os.path.join(ROLES_DIR, role)
    reads, own = set(), set()
    for part in ("defaults", "vars"):
        path = os.path.join(base, part, "main.yml")
        if os.path.exists(path):
            data = load(path) or {}
            own.update(data)
            for expr in expressions(data):
                reads |= names(expr)
    for path in glob.glob(os.path.join(base, "tasks", "*.yml")) + glob.glob(os.path.join(base, "handlers", "*.yml")):
        data = load(path) or []
        defined(data, own)
        for expr in expressions(data):
            reads |= names(expr)
    for path in glob.glob(os.path.join(base, "templates", "*")):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for m in re.finditer(r"\{%-?\s*(?:set|for)\s+([\w, ]+?)(?:\s+in\b|\s*=)", text):
            own.update(x.strip() for x in m.group(1).split(","))
        for m in JINJA.finditer(text):
            reads |= names(m.group(1) or m.group(2))
    return {n for n in reads if VOCABULARY.match(n)} - own


def declared(role):
    specs = load(os.path.join(ROLES_DIR, role, "meta", "argument_specs.yml")) or {}
    out = set()
    for entry in (specs.get("argument_specs") or {}).values():
        out |= set(entry.get("options") or {})
    return out


def test_the_scan_finds_what_a_role_reads():
    reads = role_reads("pgbackrest")
    assert {"pg_cluster", "pg_dbsu"} <= reads
    assert "__pgbackrest_dbsu" not in reads and "pgbackrest_conf_dir" not in reads
    found = names(
        "x | pigpen.pgsql.pg_instance_files(hostvars[inventory_hostname]) if pg_a is defined and 'pg_b' else pg_c"
    )
    assert {n for n in found if VOCABULARY.match(n)} == {"pg_a", "pg_c"}


@pytest.mark.parametrize("role", ROLES)
def test_every_variable_a_role_reads_is_declared(role):
    missing = sorted(role_reads(role) - declared(role))
    assert not missing, (
        "roles/%s reads %s, which its meta/argument_specs.yml does not declare: add each "
        "under argument_specs.main.options (type, description), then run "
        ".venv/bin/python tools/gen_role_docs.py" % (role, ", ".join(missing))
    )


@pytest.mark.parametrize("role", sorted(MODEL_INPUTS))
def test_the_vocabulary_behind_a_roles_computed_input_is_declared(role):
    missing = sorted(set(MODEL_INPUTS[role]) - declared(role))
    assert not missing, "roles/%s/meta/argument_specs.yml: %s" % (role, ", ".join(missing))
