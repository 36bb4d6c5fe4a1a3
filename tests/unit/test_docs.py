# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""docs/parameters.md is what tools/gen_role_docs.py writes from the roles'
meta/argument_specs.yml: a changed argument spec must come with the
regenerated page."""

from __future__ import annotations

import importlib.util
import os

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
GENERATOR = os.path.join(REPO, "tools", "gen_role_docs.py")
PAGE = os.path.join(REPO, "docs", "parameters.md")


@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("gen_role_docs", GENERATOR)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parameters_page_is_up_to_date(gen):
    ok, diff = gen.check(REPO, PAGE)
    if not ok:
        lines = diff.splitlines()
        shown = "\n".join(lines[:60])
        more = "\n... (%d more diff lines)" % (len(lines) - 60) if len(lines) > 60 else ""
        pytest.fail(
            "docs/parameters.md differs from what tools/gen_role_docs.py generates "
            "from roles/*/meta/argument_specs.yml. Regenerate it with\n\n"
            "    .venv/bin/python tools/gen_role_docs.py\n\n"
            "and commit the result. Difference:\n%s%s" % (shown, more),
            pytrace=False,
        )


def test_every_role_has_a_section(gen):
    text = gen.render(REPO)
    roles = sorted(
        d
        for d in os.listdir(os.path.join(REPO, "roles"))
        if os.path.isfile(os.path.join(REPO, "roles", d, "meta", "argument_specs.yml"))
    )
    for role in roles:
        assert "\n## %s\n" % role in text, "docs/parameters.md has no section for role %s" % role
    order = [r for r in gen.ROLE_ORDER if r in roles]
    positions = [text.index("\n## %s\n" % r) for r in order]
    assert positions == sorted(positions), "roles are not in the documented order %s" % order


def test_rendering_is_deterministic(gen):
    assert gen.render(REPO) == gen.render(REPO)


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, "null"),
        (True, "true"),
        ("", '""'),
        (3600, "3600"),
        (["etcd-server", "etcd-client"], "[etcd-server, etcd-client]"),
        ({"a": 1, "b": "x y"}, "{a: 1, b: x y}"),
        ({}, "{}"),
    ],
)
def test_defaults_are_inline_yaml(gen, value, expected):
    assert gen.inline(value) == expected


def test_option_rows(gen):
    rows = gen.option_table(
        {
            "x_password": {
                "type": "str",
                "no_log": True,
                "default": "a|b",
                "description": ["Secret of I(x_user).", "See C(docs/x.md)."],
            },
            "x_mode": {"type": "str", "required": True, "choices": ["on", "off"], "description": "Mode."},
            "x_list": {"type": "list", "elements": "str", "default": ["v%d" % i for i in range(40)]},
        }
    )
    assert rows[2] == ("| `x_password` | str, secret | `a\\|b` | Secret of *x_user*. See `docs/x.md`. |")
    assert rows[3] == "| `x_mode` | str | required | Mode. Choices: `on`, `off`. |"
    default = rows[4].split(" | ")[2]
    assert default.endswith(" …`") and len(default) <= gen.MAX_DEFAULT + 4


def test_check_reports_a_stale_page(gen, tmp_path):
    stale = tmp_path / "parameters.md"
    stale.write_text("# Role parameters\n", encoding="utf-8")
    ok, diff = gen.check(REPO, str(stale))
    assert not ok
    assert diff.startswith("--- docs/parameters.md (in the tree)")
    assert gen.main(["--check", "--output", str(stale)]) == 1
