# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The entry points of roles/pgsql_ops check their declared inputs.

Each case calls one entry point the way the operation playbooks do
(include_role with tasks_from) on localhost, with an input missing or of the
wrong kind, and expects Ansible's argument check to refuse it before the
entry point's first task runs. No node is contacted.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)
SPECS = os.path.join(REPO, "roles", "pgsql_ops", "meta", "argument_specs.yml")
TASKS = os.path.join(REPO, "roles", "pgsql_ops", "tasks")

API = {"connect_address": "127.0.0.1:1", "authentication": {"username": "u", "password": "p"}}


def call(tmp_path, entry, variables):
    play = [
        {
            "name": "Call one entry point",
            "hosts": "localhost",
            "connection": "local",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "Call %s" % entry,
                    "ansible.builtin.include_role": {"name": "pigpen.pgsql.pgsql_ops", "tasks_from": entry},
                    "vars": variables,
                }
            ],
        }
    ]
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ["PATH"])
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(path)]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


CASES = [
    # (entry point, inputs, what the refusal names)
    ("primary_moved", {"pgsql_ops_patroni_api": API}, "pgsql_ops_new_primary"),
    ("primary_moved", {"pgsql_ops_new_primary": "pg-test-2"}, "pgsql_ops_patroni_api"),
    ("restart_member", {"pgsql_ops_member": "pg-test-1", "pgsql_ops_patroni_api": API}, "pgsql_ops_member"),
    (
        "rm_stop",
        {"pgsql_ops_rm_phase": "all", "pgsql_ops_rm_last": [], "pgsql_ops_rm_member": {}, "pgsql_ops_rm_dbsu": "x"},
        "pgsql_ops_rm_phase",
    ),
    ("one_object", {}, "pgsql_ops_objects"),
    ("pitr_prove", {"pgsql_ops_pitr": {}}, "pgsql_ops_pitr_member"),
]


@pytest.mark.parametrize("entry,variables,named", CASES, ids=["%s-%s" % (c[0], c[2]) for c in CASES])
def test_an_entry_point_refuses_inputs_it_does_not_declare_as_given(tmp_path, entry, variables, named):
    result = call(tmp_path, entry, variables)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Validating arguments against arg spec '%s'" % entry in result.stdout, result.stdout[-2000:]
    assert named in result.stdout, result.stdout[-2000:]
    # refused by the check: none of the entry point's own tasks ran
    with open(os.path.join(TASKS, entry + ".yml"), encoding="utf-8") as handle:
        first = yaml.safe_load(handle)[0]["name"].split("{{")[0].strip()
    assert "TASK [pigpen.pgsql.pgsql_ops : %s" % first not in result.stdout


def test_every_entry_point_has_a_task_file_and_every_task_file_called_from_outside_an_entry_point():
    with open(SPECS, encoding="utf-8") as handle:
        entries = set(yaml.safe_load(handle)["argument_specs"]) - {"main"}
    files = {name[: -len(".yml")] for name in os.listdir(TASKS) if name.endswith(".yml")}
    assert entries <= files, sorted(entries - files)
    called = set()
    for root, _dirs, names in os.walk(os.path.join(REPO, "playbooks")):
        for name in names:
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                text = handle.read()
            called |= {f for f in files if "tasks_from: %s\n" % f in text}
    assert called, "no playbook calls pgsql_ops"
    assert called <= entries, "called without a declared entry point: %s" % sorted(called - entries)
