# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Restore drills (module_utils/drill.py): where they run, their command and
schedule, the refused settings, and the textfile, which the script on the
node (roles/pgbackrest/templates/pg-drill.j2) must write byte for byte."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import jinja2
import pytest
from hypothesis import given, strategies as st

import inv
from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod
from ansible_collections.pigpen.pgsql.plugins.module_utils import drill, plan, validate
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import MODEL_DEFAULTS

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 4))
TEMPLATE = os.path.join(REPO, "roles", "pgbackrest", "templates", "pg-drill.j2")

MEMBERS = [
    {"host": "10.10.10.11", "instance": "pg-test-1", "leader": True},
    {"host": "10.10.10.12", "instance": "pg-test-2", "leader": False},
    {"host": "10.10.10.13", "instance": "pg-test-3", "leader": False},
]


def cplan(repo_host=None, members=MEMBERS):
    return {"identity": {"cluster": "pg-test"}, "members": members, "repo_host": repo_host}


@pytest.mark.parametrize(
    "repo_host, repo_type, members, node, kind",
    [
        ({"name": "10.10.10.10", "address": "10.10.10.10"}, "posix", MEMBERS, "10.10.10.10", "repo_host"),
        (None, "s3", MEMBERS, "10.10.10.12", "replica"),
        (None, "posix", MEMBERS, "10.10.10.11", "leader"),
        (None, "s3", MEMBERS[:1], "10.10.10.11", "leader"),
        # the model's leader is not the first member
        (None, "posix", [dict(MEMBERS[1], leader=True), dict(MEMBERS[0], leader=False)], "10.10.10.12", "leader"),
        (None, "s3", [dict(MEMBERS[1], leader=True), dict(MEMBERS[0], leader=False)], "10.10.10.11", "replica"),
    ],
)
def test_drill_node(repo_host, repo_type, members, node, kind):
    got = drill.drill_node(cplan(repo_host, members), repo_type)
    assert (got["host"], got["kind"]) == (node, kind)


def test_plan_on_the_repository_host_with_a_schedule():
    settings = dict(
        drill.DEFAULTS,
        pgbackrest_drill_schedule="30  3 * * 0",
        pgbackrest_drill_tables=["test.orders", "test.sales.items"],
        pgbackrest_drill_amcheck=False,
    )
    p = drill.drill_plan(cplan({"name": "10.10.10.10", "address": "10.10.10.10"}), settings)
    assert p["node"] == "10.10.10.10"
    assert p["scratch"] == "/pg/tmp/drill-pg-test"
    assert p["argv"] == [
        "/usr/local/bin/pg-drill",
        "--stanza",
        "pg-test",
        "--dir",
        "/pg/tmp/drill-pg-test",
        "--port",
        "15432",
        "--target",
        "latest",
        "--timeout",
        "3600",
        "--dbsu",
        "postgres",
        "--bin-dir",
        "/usr/lib/postgresql/15/bin",
        "--metrics",
        "/var/lib/prometheus/node-exporter/pgbackrest_drill_pg-test.prom",
        "--no-amcheck",
        "--table",
        "test.public.orders",
        "--table",
        "test.sales.items",
    ]
    assert p["cron_file"] == "/etc/cron.d/pigpen-drill-pg-test"
    assert p["cron_line"] == (
        "30 3 * * 0 root /usr/local/bin/pg-drill --stanza pg-test --dir /pg/tmp/drill-pg-test "
        "--port 15432 --target latest --timeout 3600 --dbsu postgres --bin-dir "
        "/usr/lib/postgresql/15/bin --metrics "
        "/var/lib/prometheus/node-exporter/pgbackrest_drill_pg-test.prom --no-amcheck "
        "--table test.public.orders --table test.sales.items 2>&1 | logger -t pg-drill"
    )


def test_plan_without_schedule_has_no_cron_line():
    p = drill.drill_plan(cplan(), dict(drill.DEFAULTS), repo_type="s3")
    assert p["cron_line"] is None
    assert p["node"] == "10.10.10.12"
    assert "--no-amcheck" not in p["argv"]


def test_table_with_a_dollar_is_quoted_in_the_cron_line():
    p = drill.drill_plan(
        cplan(), dict(drill.DEFAULTS, pgbackrest_drill_schedule="@weekly", pgbackrest_drill_tables=["db.s.t$1"])
    )
    assert p["cron_line"].startswith("@weekly root ")
    assert "--table 'db.s.t$1'" in p["cron_line"]


@pytest.mark.parametrize(
    "spec, parts",
    [
        ("test.orders", ["test", "public", "orders"]),
        ("test.sales.items", ["test", "sales", "items"]),
        ("my-db.public.t_1", ["my-db", "public", "t_1"]),
        ("orders", None),
        ("a.b.c.d", None),
        ('test."odd name"', None),
        ("test.x;drop", None),
        (3, None),
    ],
)
def test_table_parts(spec, parts):
    assert drill.table_parts(spec) == parts


def fields(settings, **kw):
    return [(p.field, p.value) for p in drill.check_drill(settings, cluster="pg-test", **kw)]


def test_defaults_are_accepted_and_the_model_s():
    assert drill.check_drill({}, cluster="pg-test") == []
    assert drill.check_drill(dict(drill.DEFAULTS), cluster="pg-test") == []
    for name, value in drill.DEFAULTS.items():
        assert MODEL_DEFAULTS[name] == value


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"pgbackrest_drill_schedule": "30 3 * *"}, [("pgbackrest_drill_schedule", "30 3 * *")]),
        ({"pgbackrest_drill_schedule": "30 3 * * 0 pg-drill"}, [("pgbackrest_drill_schedule", "30 3 * * 0 pg-drill")]),
        ({"pgbackrest_drill_schedule": "@reboot"}, [("pgbackrest_drill_schedule", "@reboot")]),
        ({"pgbackrest_drill_schedule": "0 0 30 2 *"}, [("pgbackrest_drill_schedule", "0 0 30 2 *")]),
        ({"pgbackrest_drill_schedule": "61 3 * * *"}, [("pgbackrest_drill_schedule", "61 3 * * *")]),
        (
            {"pgbackrest_drill_schedule": "0 3 * * *\n* * * * * rm"},
            [("pgbackrest_drill_schedule", "0 3 * * *\n* * * * * rm")],
        ),
        ({"pgbackrest_drill_schedule": 5}, [("pgbackrest_drill_schedule", 5)]),
        ({"pgbackrest_drill_dir": "pg/tmp"}, [("pgbackrest_drill_dir", "pg/tmp")]),
        ({"pgbackrest_drill_dir": "/"}, [("pgbackrest_drill_dir", "/")]),
        ({"pgbackrest_drill_dir": "/tmp"}, [("pgbackrest_drill_dir", "/tmp")]),
        ({"pgbackrest_drill_dir": "/pg/../etc"}, [("pgbackrest_drill_dir", "/pg/../etc")]),
        ({"pgbackrest_drill_dir": "/pg/my tmp"}, [("pgbackrest_drill_dir", "/pg/my tmp")]),
        ({"pgbackrest_drill_port": 80}, [("pgbackrest_drill_port", 80)]),
        ({"pgbackrest_drill_port": "15432"}, [("pgbackrest_drill_port", "15432")]),
        ({"pgbackrest_drill_target": "time"}, [("pgbackrest_drill_target", "time")]),
        ({"pgbackrest_drill_tables": "test.orders"}, [("pgbackrest_drill_tables", "test.orders")]),
        ({"pgbackrest_drill_tables": ["test.orders", "x"]}, [("pgbackrest_drill_tables[1]", "x")]),
        ({"pgbackrest_drill_amcheck": "yes"}, [("pgbackrest_drill_amcheck", "yes")]),
        ({"pgbackrest_drill_timeout": 10}, [("pgbackrest_drill_timeout", 10)]),
        ({"pgbackrest_drill_timeout": True}, [("pgbackrest_drill_timeout", True)]),
    ],
)
def test_refused(settings, expected):
    assert fields(settings) == expected


def test_port_of_the_node_and_protected_directories():
    assert fields({"pgbackrest_drill_port": 5432}, taken_ports=[5432, 8008]) == [("pgbackrest_drill_port", 5432)]
    found = drill.check_drill({"pgbackrest_drill_port": 8008}, cluster="pg-test", taken_ports=[8008, 5432, "x"])
    assert str(found[0]) == (
        "cluster pg-test: pgbackrest_drill_port = 8008: is a port of the deployment on the drill "
        "node (5432, 8008); fix: use a port that no service of the node uses, e.g. 15432, or leave "
        "it unset"
    )
    assert fields({"pgbackrest_drill_dir": "/pg/backup"}, protected=["/pg/backup"]) == [
        ("pgbackrest_drill_dir", "/pg/backup")
    ]
    assert fields({"pgbackrest_drill_dir": "/pg"}, protected=["/pg/drill-pg-test/x"]) == [
        ("pgbackrest_drill_dir", "/pg")
    ]
    assert fields({"pgbackrest_drill_dir": "/pg/tmp"}, protected=["/pg/data", None]) == []


@pytest.mark.parametrize(
    "given_, taken, port",
    [
        (None, [], 15432),
        (None, [5432, 15432], 15433),
        (None, [15432, 15433, 15434], 15435),
        (16000, [15432], 16000),
    ],
)
def test_drill_port(given_, taken, port):
    assert drill.drill_port(given_, taken) == port


def test_unset_port_moves_past_a_cluster_on_15432():
    hv, groups = inv.build(
        inv.cluster(
            "pg-test",
            {"10.10.10.11": {"pg_seq": 1, "pg_role": "primary"}},
            pg_port=15432,
            pgbouncer_port=16432,
            patroni_port=18008,
        )
    )
    model = model_mod.load(hv, groups)
    assert validate.problems(model) == []
    assert plan.drill_plan(model, "pg-test")["port"] == 15433


@given(st.lists(st.sampled_from(["a", "b-c", "d_e", "x$", "T"]), min_size=2, max_size=3))
def test_valid_tables_always_go_to_the_command(parts):
    spec = ".".join(parts)
    assert drill.table_parts(spec) is not None
    p = drill.drill_plan(cplan(), dict(drill.DEFAULTS, pgbackrest_drill_tables=[spec]))
    full = spec if len(parts) == 3 else "%s.public.%s" % tuple(parts)
    assert p["argv"][-2:] == ["--table", full]


@given(st.integers(0, 59), st.integers(0, 23), st.sampled_from(["*", "0", "1-5", "*/2"]))
def test_every_schedule_that_runs_is_accepted_and_written_as_given(minute, hour, dow):
    sched = "%d %d * * %s" % (minute, hour, dow)
    assert fields({"pgbackrest_drill_schedule": sched}) == []
    line = drill.drill_plan(cplan(), dict(drill.DEFAULTS, pgbackrest_drill_schedule=sched))["cron_line"]
    assert line.startswith(sched + " root /usr/local/bin/pg-drill ")


def test_metrics_text():
    text = drill.metrics_text("pg-test", True, 1700000000, 42, 1600000000, 17)
    assert text.splitlines()[2] == 'pgbackrest_drill_ok{cls="pg-test"} 1'
    assert 'pgbackrest_drill_last_success_timestamp_seconds{cls="pg-test"} 1700000000' in text
    failed = drill.metrics_text("pg-test", False, 1700000000, 42, 1600000000, 0)
    assert 'pgbackrest_drill_ok{cls="pg-test"} 0' in failed
    assert 'pgbackrest_drill_last_success_timestamp_seconds{cls="pg-test"} 1600000000' in failed
    assert 'pgbackrest_drill_duration_seconds{cls="pg-test"} 42' in failed
    assert len(text.splitlines()) == 15 and text.endswith("\n")


def rendered_script(tmp_path):
    env = jinja2.Environment(keep_trailing_newline=True)
    env.filters["quote"] = shlex.quote  # Ansible's quote filter
    text = env.from_string(open(TEMPLATE, encoding="utf-8").read()).render(pgbackrest_conf_dir="/etc/pgbackrest")
    path = tmp_path / "pg-drill"
    path.write_text(text)
    return path, text


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("ok", [True, False])
def test_the_script_writes_the_model_s_textfile(tmp_path, ok):
    _, text = rendered_script(tmp_path)
    func = re.search(r"# BEGIN write_metrics\n(.*?)# END write_metrics", text, re.S).group(1)
    out = tmp_path / "m.prom"
    subprocess.run(
        [
            "bash",
            "-c",
            'set -euo pipefail; %s\nSTANZA=pg-test METRICS="$1"; '
            'write_metrics %d 1700000000 42 1600000000 17' % (func, 1 if ok else 0),
            "x",
            str(out),
        ],
        check=True,
    )
    assert out.read_text() == drill.metrics_text("pg-test", ok, 1700000000, 42, 1600000000, 17)
    assert oct(out.stat().st_mode & 0o777) == "0o644"


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize(
    "args, message",
    [
        (["--stanza", "pg test", "--dir", "/pg/tmp/drill-pg test", "--port", "15432"], "is not a cluster name"),
        (["--stanza", "pg-test", "--dir", "/pg/tmp/x", "--port", "15432"], "must end in /drill-pg-test"),
        (["--stanza", "pg-test", "--dir", "/pg/../drill-pg-test", "--port", "15432"], "is not an absolute path"),
        (["--stanza", "pg-test", "--dir", "/drill-pg-test;rm", "--port", "15432"], "is not an absolute path"),
        (["--stanza", "pg-test", "--dir", "/pg/tmp/drill-pg-test", "--port", "80"], "is not a port"),
        (
            ["--stanza", "pg-test", "--dir", "/pg/tmp/drill-pg-test", "--port", "15432", "--target", "x"],
            "use latest or immediate",
        ),
        (
            ["--stanza", "pg-test", "--dir", "/pg/tmp/drill-pg-test", "--port", "15432", "--dbsu", "$(id)"],
            "is not a user of this node",
        ),
        (["--stanza"], "--stanza needs a value"),
        (["--bogus"], "unknown argument"),
    ],
)
def test_the_script_refuses_bad_arguments_before_doing_anything(tmp_path, args, message):
    path, _ = rendered_script(tmp_path)
    run = subprocess.run(["bash", str(path)] + args, capture_output=True, text=True)
    assert run.returncode == 2
    assert message in run.stderr


def test_model_validation_names_cluster_field_value_and_fix():
    hv, groups = inv.build(
        inv.cluster(
            "pg-test",
            {"10.10.10.11": {"pg_seq": 1, "pg_role": "primary"}, "10.10.10.12": {"pg_seq": 2, "pg_role": "replica"}},
            pgbackrest_method="backup",
            pgbackrest_drill_schedule="every sunday",
            pgbackrest_drill_port=8432,
        )
    )
    found = [str(p) for p in validate.problems(model_mod.load(hv, groups))]
    assert any(
        p.startswith("cluster pg-test: pgbackrest_drill_schedule = 'every sunday': is not the time fields")
        and "fix: write five cron time fields" in p
        for p in found
    ), found
    assert any(
        p.startswith("cluster pg-test: pgbackrest_drill_port = 8432: is a port of the deployment") for p in found
    ), found


def test_model_plan_of_the_sandbox_layout():
    hv, groups = inv.build(
        inv.cluster("pg-meta", {"10.10.10.10": {"pg_seq": 1, "pg_role": "primary"}}),
        inv.cluster(
            "pg-test",
            {"10.10.10.11": {"pg_seq": 1, "pg_role": "primary"}, "10.10.10.12": {"pg_seq": 2, "pg_role": "replica"}},
            pgbackrest_method="backup",
            pgbackrest_drill_schedule="@weekly",
        ),
    )
    model = model_mod.load(hv, groups)
    assert validate.problems(model) == []
    p = plan.drill_plan(model, "pg-test")
    assert (p["node"], p["kind"], p["port"]) == ("10.10.10.10", "repo_host", 15432)
    assert p["cron_line"].startswith("@weekly root /usr/local/bin/pg-drill --stanza pg-test ")
    local = plan.drill_plan(model, "pg-meta")
    assert (local["node"], local["kind"], local["cron_line"]) == ("10.10.10.10", "leader", None)


def test_a_percent_in_the_cron_line_is_escaped_for_cron():
    """cron turns a bare % of the command into a newline."""
    hostvars, groups = inv.build(inv.pg_test(pgbackrest_drill_schedule="30 3 * * 0", pg_bin_dir="/opt/pg%15/bin"))
    line = plan.drill_plan(model_mod.load(hostvars, groups), "pg-test")["cron_line"]
    assert "/opt/pg\\%15/bin" in line and "%15" not in line.replace("\\%", "")


def test_a_drill_dir_too_long_for_the_socket_is_refused():
    hostvars, groups = inv.build(inv.pg_test(pgbackrest_drill_dir="/pg/" + "d" * 100))
    found = [p for p in validate.problems(model_mod.load(hostvars, groups)) if p.field == "pgbackrest_drill_dir"]
    assert len(found) == 1 and "unix socket" in found[0].what
