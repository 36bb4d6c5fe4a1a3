# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The alerting rules, checked and unit-tested by Prometheus' own promtool.

The rules are what pigpen.pgsql.pg_alert_rules computes for the inventory
``inv.alerting()`` (two clusters with different plans, RPOs and backup
schedules, three etcd members). ``tests/unit/fixtures/promtool/`` holds one
``promtool test rules`` file per rule group, each alert with series that
make it fire and series that must not: those run on copies of the rule files
without annotations; ``annotations.test.yml`` runs on the files as the infra
hosts get them and checks the expanded annotations.

promtool and amtool are Debian's (``make prometheus-bin`` unpacks them into
.cache/prometheus). Without them these tests are skipped, unless
PIGPEN_REQUIRE_PROMTOOL is set (make unit sets it), where they fail.

Every metric name a rule reads must be one the deployed exporters emit:
tests/unit/fixtures/metrics/ records them per exporter and version (with
how each list was obtained), plus the collection's own exporters and
queries.
"""

from __future__ import annotations

import copy
import glob
import importlib.util
import json
import os
import re
import shutil
import subprocess

import jinja2
import pytest
import yaml

import inv
from ansible_collections.pigpen.pgsql.plugins.module_utils import alerting, validate
from ansible_collections.pigpen.pgsql.plugins.module_utils import model as model_mod

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
PROMTOOL_TESTS = sorted(glob.glob(os.path.join(FIXTURES, "promtool", "*.test.yml")))
TOOLS = os.path.join(REPO, ".cache", "prometheus", "usr", "bin")
PROMTOOL = shutil.which("promtool") or os.path.join(TOOLS, "promtool")
AMTOOL = shutil.which("amtool") or os.path.join(TOOLS, "amtool")
VMALERT = shutil.which("vmalert") or os.path.join(TOOLS, "vmalert")
ROLE = os.path.join(REPO, "roles", "exporters")


def _tool(path):
    if os.access(path, os.X_OK):
        return path
    if os.environ.get("PIGPEN_REQUIRE_PROMTOOL"):
        pytest.fail("%s is missing: run make prometheus-bin (tests/tools/fetch-prometheus.sh)" % path, pytrace=False)
    pytest.skip("no %s (make prometheus-bin)" % os.path.basename(path))
    return None


def _groups():
    hostvars, groups = inv.alerting()
    return alerting.alert_rules(validate.require(model_mod.load(hostvars, groups)))


def _write(path, group):
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(
            {"groups": [{"name": group["name"], "rules": group["rules"]}]}, handle, sort_keys=False, width=200
        )


@pytest.fixture(scope="module")
def rule_groups():
    return _groups()


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory, rule_groups):
    """The rule files (full/ as deployed, the top directory without
    annotations) beside the promtool test files."""
    out = tmp_path_factory.mktemp("rules")
    (out / "full").mkdir()
    for group in rule_groups:
        _write(str(out / "full" / ("%s.yml" % group["name"])), group)
        bare = copy.deepcopy(group)
        for rule in bare["rules"]:
            rule.pop("annotations", None)
        _write(str(out / ("%s.yml" % group["name"])), bare)
    for path in PROMTOOL_TESTS:
        shutil.copy(path, str(out))
    return out


def _tests(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# ---------------------------------------------------------------- promtool


def test_promtool_checks_every_rule_file(rules_dir):
    promtool = _tool(PROMTOOL)
    files = sorted(glob.glob(str(rules_dir / "full" / "*.yml")))
    proc = subprocess.run(
        [promtool, "check", "rules", "--lint=all", "--lint-fatal"] + files, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout + proc.stderr


def test_vmalert_checks_every_rule_file(rules_dir):
    """infra_metrics: victoriametrics evaluates the same files with vmalert
    (MetricsQL): its dry run parses every group and expression."""
    vmalert = _tool(VMALERT)
    for path in sorted(glob.glob(str(rules_dir / "full" / "*.yml"))):
        proc = subprocess.run(
            [vmalert, "-dryRun", "-loggerLevel=ERROR", "-rule=" + path], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, (path, proc.stdout + proc.stderr)


@pytest.mark.parametrize("test_file", [os.path.basename(p) for p in PROMTOOL_TESTS])
def test_promtool_unit_tests(rules_dir, test_file):
    promtool = _tool(PROMTOOL)
    proc = subprocess.run(
        [promtool, "test", "rules", test_file], cwd=str(rules_dir), capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]


def _expectations():
    """(firing, quiet): the (alert, severity, threshold) triples some test
    expects firing, and the alert names some test expects quiet."""
    firing, quiet = set(), set()
    for path in PROMTOOL_TESTS:
        for case in _tests(path).get("tests") or []:
            for check in case.get("alert_rule_test") or []:
                name = check["alertname"]
                if not check.get("exp_alerts"):
                    quiet.add(name)
                for alert in check.get("exp_alerts") or []:
                    labels = alert.get("exp_labels") or {}
                    firing.add((name, labels.get("severity"), labels.get("threshold")))
    return firing, quiet


def test_every_alert_is_tested_firing_and_quiet(rule_groups):
    firing, quiet = _expectations()
    wanted = {
        (r["alert"], r["labels"]["severity"], r["labels"].get("threshold"))
        for g in rule_groups
        for r in g["rules"]
        if "alert" in r
    }
    assert sorted(wanted - firing, key=str) == [], "no promtool test makes these fire"
    names = {w[0] for w in wanted}
    assert sorted(names - quiet) == [], "no promtool test expects these quiet"
    assert len(names) == 36


# ------------------------------------------------------------ metric names

_KEYWORDS = {
    "by",
    "on",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "group_left",
    "group_right",
    "ignoring",
    "without",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
}
_GROUPING = {"by", "on", "without", "ignoring", "group_left", "group_right"}
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def metric_names(expr):
    """The metric names a PromQL expression reads: identifiers outside
    strings, label matchers, ranges and grouping lists, that are neither
    keywords, aggregations nor function names."""
    out, i = set(), 0
    while i < len(expr):
        char = expr[i]
        if char == '"':
            i += 1
            while expr[i] != '"':
                i += 2 if expr[i] == "\\" else 1
            i += 1
        elif char in "{[":
            close = "}" if char == "{" else "]"
            i += 1
            while expr[i] != close:
                if expr[i] == '"':
                    i += 1
                    while expr[i] != '"':
                        i += 2 if expr[i] == "\\" else 1
                i += 1
            i += 1
        elif _IDENT.match(expr, i) and not (i > 0 and (expr[i - 1].isalnum() or expr[i - 1] in "._")):
            word = _IDENT.match(expr, i).group(0)
            i += len(word)
            rest = expr[i:].lstrip()
            if word in _GROUPING and rest.startswith("("):
                i = expr.index(")", i) + 1
            elif rest.startswith("(") or word in _KEYWORDS:
                continue
            else:
                out.add(word)
        else:
            i += 1
    return out


def test_metric_names_parser():
    assert metric_names('max by (cls, ins) (a{x="b{c}"}) - on (cls) group_right () (b and c == 1)') == {"a", "b", "c"}
    assert metric_names("histogram_quantile(0.99, sum by (cls, le) (rate(x_bucket{job=\"e\"}[5m]))) > 0.5") == {
        "x_bucket"
    }
    assert metric_names("time() - y{file=~\".*/p[.]prom\"} > 1e3") == {"y"}


def _listed(name):
    with open(os.path.join(FIXTURES, "metrics", name), encoding="utf-8") as handle:
        return {line.strip() for line in handle if line.strip() and not line.startswith("#")}


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def known_metrics(rule_groups):
    known = {"up"}  # Prometheus' own, per target
    for name in os.listdir(os.path.join(FIXTURES, "metrics")):
        known |= _listed(name)
    with open(os.path.join(ROLE, "files", "postgres_exporter_queries.yml"), encoding="utf-8") as handle:
        for namespace, query in yaml.safe_load(handle).items():
            for column in query["metrics"]:
                ((col, spec),) = column.items()
                if spec["usage"] in ("GAUGE", "COUNTER"):
                    known.add("%s_%s" % (namespace, col))
    known |= set(_load(os.path.join(ROLE, "files", "pgbackrest_exporter.py"), "pgbr_exp").METRICS)
    known |= set(_load(os.path.join(ROLE, "files", "cert_metrics.py"), "cert_metrics").HELP)
    known |= {r["record"] for g in rule_groups for r in g["rules"] if "record" in r}
    return known


def test_rules_read_only_metrics_the_exporters_emit(rule_groups):
    known = known_metrics(rule_groups)
    used = {}
    for group in rule_groups:
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                used.setdefault(name, rule.get("alert") or rule.get("record"))
    assert {n: r for n, r in used.items() if n not in known} == {}
    # the custom queries' metrics and the recorded exporters' are all in use somewhere
    assert {
        "pg_wraparound_xid_age",
        "pg_wraparound_mxid_age",
        "haproxy_backend_status",
        "etcd_server_has_leader",
        "patroni_primary",
        "pgbouncer_waiting_clients",
        "pgbackrest_backup_last_time_seconds",
        "pigpen_cert_not_after_seconds",
        "node_filesystem_avail_bytes",
    } <= set(used)


def test_recording_rules_come_before_their_alerts(rule_groups):
    for group in rule_groups:
        seen = set()
        records = {r["record"] for r in group["rules"] if "record" in r}
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]) & records:
                assert name in seen, "%s reads %s before it is recorded" % (rule.get("alert"), name)
            if "record" in rule:
                seen.add(rule["record"])


# --------------------------------------------------------------- template


def test_rule_template_renders_the_data(rule_groups):
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(ROLE, "templates")), trim_blocks=True, keep_trailing_newline=True
    )
    env.filters["to_json"] = json.dumps
    for group in rule_groups:
        text = env.get_template("rules.yml.j2").render(__exporters_rule_group=group)
        assert yaml.safe_load(text) == {"groups": [{"name": group["name"], "rules": group["rules"]}]}
        assert text.startswith("# %s: generated by pigpen.pgsql" % group["name"])


def test_alertmanager_config_passes_amtool(tmp_path):
    amtool = _tool(AMTOOL)
    config = alerting.alertmanager_config(
        receivers=[{"name": "oncall", "webhook_configs": [{"url": "http://10.10.10.99:8080/page"}]}],
        routes=[{"receiver": "oncall", "matchers": ['severity="critical"']}],
        receiver="",
        recorder_urls=["http://10.10.10.10:9095/"],
    )
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and it routes as documented: a critical alert to oncall and the recorder
    proc = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            "--config.file",
            str(path),
            "alertname=PgsqlNoLeader",
            "severity=critical",
            "cls=pg-test",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.split() == ["pigpen-recorder,oncall"], proc.stdout + proc.stderr
    proc = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            "--config.file",
            str(path),
            "alertname=PgsqlReplicaLag",
            "severity=warning",
            "cls=pg-test",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.stdout.split() == ["pigpen-recorder,default"], proc.stdout + proc.stderr


def test_every_alert_and_tunable_is_documented(rule_groups):
    """docs/monitoring.md has a section per alert (the runbook annotation
    points at it) and names every tunable; no section is left over."""
    with open(os.path.join(REPO, "docs", "monitoring.md"), encoding="utf-8") as handle:
        text = handle.read()
    sections = set(re.findall(r"^#### ([A-Za-z]+)$", text, re.M))
    assert sections == set(alerting.alert_names(rule_groups))
    for key in alerting.TUNABLES:
        assert "`%s`" % key in text, key
    for link in set(re.findall(r"\(troubleshooting\.md#([a-z0-9-]+)\)", text)):
        with open(os.path.join(REPO, "docs", "troubleshooting.md"), encoding="utf-8") as handle:
            anchors = {
                re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
                for h in re.findall(r"^## (.+)$", handle.read(), re.M)
            }
        assert link in anchors, link
