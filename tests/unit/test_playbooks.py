# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Every playbook checks the inventory before it touches a node: its first
entry imports validate.yml, which runs the model's validation on the
controller (tests/integration/test_render.py runs it on bad inventories)."""

from __future__ import annotations

import glob
import os

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
PLAYBOOKS = sorted(
    os.path.basename(path) for path in glob.glob(os.path.join(REPO, "playbooks", "*.yml"))
    if os.path.basename(path) != "validate.yml"
)


def test_playbooks_found():
    assert "install.yml" in PLAYBOOKS and "node.yml" in PLAYBOOKS


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_validates_first(playbook):
    with open(os.path.join(REPO, "playbooks", playbook), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    assert plays[0].get("ansible.builtin.import_playbook") == "validate.yml", (
        f"playbooks/{playbook}: the first entry must be "
        "'ansible.builtin.import_playbook: validate.yml', so a bad inventory "
        "fails before any node is touched"
    )
