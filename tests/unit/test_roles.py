# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Role metadata stays in sync with role defaults and the model's defaults.

- every role has meta/argument_specs.yml;
- every variable in defaults/main.yml is documented in an entry point of
  meta/argument_specs.yml, with the same default, and every documented
  option with a default exists in defaults/main.yml;
- a role default that shares its name with a model variable or a
  configuration setting (plugins/module_utils/defaults.py, settings.py) has
  the model's value.
"""

from __future__ import annotations

import os

import pytest
import yaml

from ansible_collections.pigpen.pgsql.plugins.module_utils.settings import SETTINGS_DEFAULTS
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import MODEL_DEFAULTS

SHARED = {**SETTINGS_DEFAULTS, **MODEL_DEFAULTS}

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
ROLES_DIR = os.path.join(REPO, "roles")
ROLES = sorted(d for d in os.listdir(ROLES_DIR) if os.path.isdir(os.path.join(ROLES_DIR, d)))


def load(role, *path):
    full = os.path.join(ROLES_DIR, role, *path)
    if not os.path.exists(full):
        return None
    with open(full, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}


def spec_options(role):
    specs = (load(role, "meta", "argument_specs.yml") or {}).get("argument_specs") or {}
    options = {}
    for entry in specs.values():
        for name, opt in (entry.get("options") or {}).items():
            options.setdefault(name, opt)
    return options


@pytest.mark.parametrize("role", ROLES)
def test_role_has_argument_specs(role):
    assert load(role, "meta", "argument_specs.yml"), "roles/%s/meta/argument_specs.yml" % role


@pytest.mark.parametrize("role", ROLES)
def test_defaults_are_documented_with_the_same_value(role):
    defaults = load(role, "defaults", "main.yml") or {}
    options = spec_options(role)
    missing = sorted(set(defaults) - set(options))
    assert not missing, "roles/%s: defaults without argument_specs: %s" % (role, missing)
    for name, value in defaults.items():
        if "default" in options[name]:
            assert options[name]["default"] == value, "roles/%s: %s" % (role, name)
    undeclared = sorted(n for n, o in options.items() if "default" in o and n not in defaults)
    assert not undeclared, "roles/%s: documented defaults missing from defaults/main.yml: %s" % (role, undeclared)


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_agree_with_the_model(role):
    defaults = load(role, "defaults", "main.yml") or {}
    for name, value in defaults.items():
        if (
            name in SHARED
            and SHARED[name] is not None
            and isinstance(value, (str, int, float, bool))
            and "{{" not in str(value)
        ):
            assert value == SHARED[name], (
                "roles/%s/defaults/main.yml: %s = %r but the model's default is %r "
                "(plugins/module_utils/defaults.py, settings.py)" % (role, name, value, SHARED[name])
            )
