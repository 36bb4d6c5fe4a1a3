# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Every plugin's documentation is valid YAML with the keys ansible-doc needs.

A stray ``: `` in a description line turns it into a mapping key, and
ansible-doc (and ansible-lint, which only prints an error) can no longer
show the module. This catches it before anyone runs ``ansible-doc``."""

from __future__ import annotations

import ast
import glob
import os

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
PY_PLUGINS = sorted(
    glob.glob(os.path.join(REPO, "plugins", "modules", "*.py"))
    + glob.glob(os.path.join(REPO, "plugins", "action", "*.py"))
)
FILTER_DOCS = sorted(glob.glob(os.path.join(REPO, "plugins", "filter", "*.yml")))


def _doc_blocks(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), filename=path)
    blocks = {}
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN")
            and isinstance(node.value, ast.Constant)
        ):
            blocks[node.targets[0].id] = node.value.value
    return blocks


def _load(text, where):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        pytest.fail("%s is not valid YAML (quote or reword a line holding ': '):\n%s" % (where, exc), pytrace=False)


@pytest.mark.parametrize("path", PY_PLUGINS, ids=lambda p: os.path.relpath(p, REPO))
def test_python_plugin_docs_parse(path):
    blocks = _doc_blocks(path)
    name = os.path.splitext(os.path.basename(path))[0]
    if os.path.basename(os.path.dirname(path)) == "action" and "DOCUMENTATION" not in blocks:
        # an action plugin may leave its documentation to the module of its name
        assert os.path.exists(os.path.join(REPO, "plugins", "modules", name + ".py"))
        return
    assert "DOCUMENTATION" in blocks, "%s has no DOCUMENTATION" % path
    parsed = {key: _load(text, "%s %s" % (os.path.relpath(path, REPO), key)) for key, text in blocks.items()}
    doc = parsed["DOCUMENTATION"]
    assert doc["module"] == name
    assert doc.get("short_description")
    assert isinstance(doc.get("description"), (list, str))
    for option, spec in (doc.get("options") or {}).items():
        assert isinstance(spec, dict) and spec.get("description"), "%s: option %s has no description" % (path, option)
    # ansible-doc fails on a description item that YAML read as a mapping
    # (a list item holding ': ')
    for where, text in _descriptions(parsed):
        assert isinstance(text, str), "%s %s: a description item is not a string (reword its ': '): %r" % (
            os.path.relpath(path, REPO),
            where,
            text,
        )


def _descriptions(node, where=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "description":
                for item in value if isinstance(value, list) else [value]:
                    yield where, item
            else:
                yield from _descriptions(value, "%s/%s" % (where, key))
    elif isinstance(node, list):
        for item in node:
            yield from _descriptions(item, where)


@pytest.mark.parametrize("path", FILTER_DOCS, ids=lambda p: os.path.relpath(p, REPO))
def test_filter_docs_parse(path):
    data = _load(open(path, encoding="utf-8").read(), os.path.relpath(path, REPO))
    name = os.path.splitext(os.path.basename(path))[0]
    assert data["DOCUMENTATION"]["name"] == name
    assert data["DOCUMENTATION"].get("short_description")
    for key in ("EXAMPLES", "RETURN"):
        if isinstance(data.get(key), str):
            _load(data[key], "%s %s" % (path, key))


def test_every_filter_has_its_documentation():
    # ansible-doc -t filter pigpen.pgsql.<name> shows only filters with a .yml beside pgsql.py
    from ansible_collections.pigpen.pgsql.plugins.filter import pgsql

    documented = {os.path.splitext(os.path.basename(p))[0] for p in FILTER_DOCS}
    missing = sorted(set(pgsql.FilterModule().filters()) - documented)
    assert not missing, "write plugins/filter/<name>.yml for %s" % ", ".join(missing)
