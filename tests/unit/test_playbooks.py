# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Every playbook checks the inventory before it touches a node: its first
entry imports validate.yml, which runs the model's validation on the
controller (tests/integration/test_render.py runs it on bad inventories),
or imports a playbook whose first entry does (install.yml: node.yml)."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
PLAYBOOKS = sorted(
    os.path.basename(path)
    for path in glob.glob(os.path.join(REPO, "playbooks", "*.yml"))
    if os.path.basename(path) != "validate.yml"
)


def test_playbooks_found():
    assert "install.yml" in PLAYBOOKS and "node.yml" in PLAYBOOKS


def first_import(playbook):
    with open(os.path.join(REPO, "playbooks", playbook), encoding="utf-8") as fh:
        return yaml.safe_load(fh)[0].get("ansible.builtin.import_playbook")


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_validates_first(playbook):
    chain = [playbook]
    while chain[-1] != "validate.yml" and first_import(chain[-1]) and len(chain) < 5:
        chain.append(first_import(chain[-1]))
    assert chain[-1] == "validate.yml", (
        f"playbooks/{playbook}: the first entry must be "
        "'ansible.builtin.import_playbook: validate.yml' (or import a playbook "
        f"that starts so), so a bad inventory fails before any node is touched; "
        f"it imports {' -> '.join(chain[1:]) or 'nothing'} first"
    )


def test_removal_takes_out_every_target_family():
    """pgsql-rm.yml removes a member's file_sd files of every family the
    exporters role writes (roles/exporters/vars/main.yml)."""
    with open(os.path.join(REPO, "roles", "exporters", "vars", "main.yml"), encoding="utf-8") as fh:
        families = yaml.safe_load(fh)["__exporters_target_families"]
    with open(os.path.join(REPO, "playbooks", "pgsql-rm.yml"), encoding="utf-8") as fh:
        text = fh.read()
    assert "product(%s)" % families in text.replace('"', "'")
