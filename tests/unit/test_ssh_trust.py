# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""SSH host keys are checked for every inventory but the sandbox's: the
repository's ansible.cfg does not turn the check off, the sandbox inventory
does it for its own nodes only (its group ``sandbox``)."""

from __future__ import annotations

import configparser
import os

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))


def test_ansible_cfg_checks_host_keys():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "ansible.cfg"))
    for section in cfg.sections():
        assert cfg.get(section, "host_key_checking", fallback="true").lower() in ("true", "yes", "1"), (
            "ansible.cfg [%s] turns host key checking off" % section
        )
        for option in ("ssh_args", "ssh_common_args", "ssh_extra_args"):
            assert "StrictHostKeyChecking" not in cfg.get(section, option, fallback="")


def test_only_the_sandbox_group_skips_the_check():
    with open(os.path.join(REPO, "inventory", "sandbox.yml"), encoding="utf-8") as fh:
        inv = yaml.safe_load(fh)["all"]
    assert "ansible_host_key_checking" not in inv.get("vars", {})
    assert "ansible_ssh_common_args" not in inv.get("vars", {})
    sandbox = inv["children"]["sandbox"]
    assert sandbox["vars"]["ansible_host_key_checking"] is False
    assert "StrictHostKeyChecking=no" in sandbox["vars"]["ansible_ssh_common_args"]
    clusters = {name for name, group in inv["children"].items() if name != "sandbox" and "hosts" in group}
    assert set(sandbox["children"]) == clusters
