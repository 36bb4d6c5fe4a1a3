# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""tools/ansible/strategy/_speedups.py: the Jinja code cache renders exactly
what Ansible renders without it, survives a round trip through its directory,
and refuses a directory that others could write to."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings, strategies as st

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PATH = os.path.join(ROOT, "tools", "ansible", "strategy", "_speedups.py")

_spec = importlib.util.spec_from_file_location("pigpen_strategy_speedups_test", PATH)
speedups = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(speedups)

# Rendered in a fresh interpreter: once without the cache, then twice with a
# cache directory (the second run reads every code object from disk).
RENDER = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {strategy!r})
    import importlib.util
    spec = importlib.util.spec_from_file_location("s", {path!r})
    s = importlib.util.module_from_spec(spec); spec.loader.exec_module(s)
    cache = None
    if {directory!r}:
        cache = s.CodeCache(s.safe_directory({directory!r}), salt="test")
        cache.load()
        s._patch_jinja(cache)
    from ansible.template import Templar
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import trust_as_template
    out = []
    for template, variables in json.load(sys.stdin):
        templar = Templar(loader=DataLoader(), variables=variables)
        trusted = trust_as_template(template)
        try:
            out.append(["ok", templar.template(trusted)])
        except Exception as ex:
            out.append(["error", type(ex).__name__])
        try:
            out.append(["cond", templar.evaluate_conditional(trust_as_template(template.strip("{{ }}") or "true"))])
        except Exception as ex:
            out.append(["cond-error", type(ex).__name__])
    print(json.dumps({{"out": out, "hits": cache.hits if cache else 0, "misses": cache.misses if cache else 0}}))
""")

CASES = [
    ["{{ a + b }}", {"a": 1, "b": 2}],
    ["{{ name | upper }}-{{ seq }}", {"name": "pg-test", "seq": 3}],
    ["{% for x in items %}{{ x }},{% endfor %}", {"items": [1, 2, 3]}],
    ["{{ items | map('int') | sum }}", {"items": ["1", "2"]}],
    ["{{ 'a\\\\b' }}", {}],
    ["{{ missing | default('d') }}", {}],
    ["{{ a > 1 }}", {"a": 2}],
    ["{{ undefined_var }}", {}],
    ["{{ a +* }}", {"a": 1}],
    ["plain text", {}],
    ["#jinja2:variable_start_string:'[%', variable_end_string:'%]'\n[% a %]", {"a": 7}],
]


def render(cases, directory=""):
    script = RENDER.format(strategy=os.path.dirname(PATH), path=PATH, directory=directory)
    import json

    proc = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(cases), capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cached_rendering_equals_plain_rendering(tmp_path):
    directory = str(tmp_path / "jinja")
    plain = render(CASES)
    first = render(CASES, directory)
    second = render(CASES, directory)
    assert first["out"] == plain["out"]
    assert second["out"] == plain["out"]
    assert first["misses"] > 0
    # the second process compiles nothing it has seen: everything comes from disk
    assert second["misses"] == 0 and second["hits"] >= first["misses"]


@settings(max_examples=10, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["{{ x }}", "{{ x | string | length }}", "{{ x ~ y }}", "{% if x %}t{% else %}f{% endif %}"]
            ),
            st.integers(-5, 5),
            st.text("ab{} ", max_size=4),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_cached_rendering_equals_plain_rendering_for_any_values(tmp_path_factory, rows):
    cases = [[template, {"x": x, "y": y}] for template, x, y in rows]
    directory = str(tmp_path_factory.mktemp("jinja"))
    assert render(cases, directory)["out"] == render(cases)["out"]


def test_code_cache_round_trip(tmp_path):
    cache = speedups.CodeCache(str(tmp_path), salt="s")
    code = compile("x = 1", "<t>", "exec")
    digest = cache.digest(("template", "{{ x }}"))
    cache.put(digest, code)
    again = speedups.CodeCache(str(tmp_path), salt="s")
    assert again.load() == 1
    assert again.get(digest) == code
    assert cache.digest("k") != speedups.CodeCache(None, salt="other").digest("k")


def test_load_prunes_the_oldest_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(speedups, "MAX_ENTRIES", 2)
    cache = speedups.CodeCache(str(tmp_path))
    for number in range(4):
        cache.put("d%d" % number, compile("x = %d" % number, "<t>", "exec"))
        os.utime(tmp_path / ("d%d" % number), (1000 + number, 1000 + number))
    assert speedups.CodeCache(str(tmp_path)).load() == 2
    assert sorted(os.listdir(tmp_path)) == ["d2", "d3"]


def test_unsafe_directories_are_refused(tmp_path):
    safe = tmp_path / "safe"
    assert speedups.safe_directory(str(safe)) == str(safe)
    assert oct(os.stat(safe).st_mode & 0o777) == "0o700"
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    assert speedups.safe_directory(str(shared)) is None
    link = tmp_path / "link"
    link.symlink_to(safe)
    assert speedups.safe_directory(str(link)) is None


@pytest.mark.parametrize(
    "value, expected",
    [
        ("off", None),
        ("0", None),
        ("/srv/cache", "/srv/cache"),
    ],
)
def test_cache_directory_from_the_environment(value, expected):
    assert speedups.cache_directory({speedups.CACHE_ENV: value}) == expected


def test_cache_directory_default_follows_xdg():
    assert speedups.cache_directory({"XDG_CACHE_HOME": "/x"}) == "/x/pigpen-pgsql/jinja"


def test_an_unsafe_directory_warns_and_keeps_the_cache_in_memory(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    script = textwrap.dedent(f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("s", {PATH!r})
        s = importlib.util.module_from_spec(spec); spec.loader.exec_module(s)
        cache = s.install({{"PIGPEN_JINJA_CACHE": {str(shared)!r}}})
        print("directory", cache.directory)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "directory None" in proc.stdout
    assert "only this user can write" in proc.stdout + proc.stderr


QUIET = textwrap.dedent("""
    import importlib.util, sys
    spec = importlib.util.spec_from_file_location("m", {path!r})
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    from ansible.utils.display import Display
    d = Display()
    d.deprecated(msg=m.STRATEGY_NOTICE + " and do not carry any guarantees.")
    d.deprecated("Some other feature is deprecated.", version="9.99")
""")


def test_strategy_drops_only_its_own_deprecation_notice():
    """mitogen_linear drops ansible-core's notice about non-builtin strategy
    plugins (printed on every run) and no other deprecation."""
    path = os.path.join(ROOT, "tools", "ansible", "strategy", "mitogen_linear.py")
    res = subprocess.run(
        [sys.executable, "-c", QUIET.format(path=path)],
        capture_output=True,
        text=True,
        check=False,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"),
    )
    assert res.returncode == 0, res.stderr
    assert "Some other feature is deprecated" in res.stderr
    assert "strategy plugins" not in res.stderr
