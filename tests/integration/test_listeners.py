# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""What the roles' templates make listen where: HAProxy's stats page and
metrics, the exporters and Prometheus bind the node's address on the
cluster network (not every interface) by default, and the stats page's
admin actions are opt-in. The templates are rendered with the real
ansible-playbook, with the roles' own defaults and vars, on the controller
(no node is contacted); HAProxy's configuration goes through haproxy -c."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from conftest import with_ca  # the integration tests' shared helpers

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)
HAPROXY = shutil.which("haproxy") or os.path.join(REPO, ".cache", "haproxy", "usr", "sbin", "haproxy")

INVENTORY = (
    """\
all:
  hosts:
    10.10.10.10: {ansible_connection: local, ansible_python_interpreter: "%s"}
"""
    % sys.executable
)
# the same host as the infra group (Prometheus, Alertmanager, the recorder)
INFRA_INVENTORY = (
    INVENTORY
    + """\
  children:
    infra:
      hosts:
        10.10.10.10: {}
"""
)


def render(tmp_path, role, templates, extra_vars=None, inventory=INVENTORY):
    """Render ``templates`` (name -> output file) of ``role`` with its
    defaults and vars, plus ``extra_vars``; return {name: text}."""
    role_dir = os.path.join(REPO, "roles", role)
    tasks = [
        {
            "ansible.builtin.template": {
                "src": os.path.join(role_dir, "templates", name),
                "dest": str(tmp_path / out),
                "mode": "0600",
            }
        }
        for name, out in templates.items()
    ]
    play = [
        {
            "hosts": "all",
            "gather_facts": False,
            "vars_files": [os.path.join(role_dir, "defaults", "main.yml"), os.path.join(role_dir, "vars", "main.yml")],
            "tasks": tasks,
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play))
    # extra vars: above the defaults and vars loaded as vars_files
    (tmp_path / "extra.yml").write_text(yaml.safe_dump(dict(extra_vars or {})))
    (tmp_path / "hosts.yml").write_text(inventory)
    env = dict(
        os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ.get("PATH", "")
    )
    res = subprocess.run(
        [
            os.path.join(BIN, "ansible-playbook"),
            "-i",
            str(tmp_path / "hosts.yml"),
            "-e",
            "@" + str(tmp_path / "extra.yml"),
            str(tmp_path / "play.yml"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return {name: (tmp_path / out).read_text() for name, out in templates.items()}


PLAN = {"pg_plan": {"identity": {"ip": "10.10.10.11"}}}


def haproxy_check(tmp_path, text):
    """haproxy -c on the main configuration (without the user and group,
    which this machine need not have)."""
    cfg = tmp_path / "check.cfg"
    cfg.write_text(
        "\n".join(line for line in text.splitlines() if line.strip() not in ("user haproxy", "group haproxy")) + "\n"
    )
    env = dict(os.environ)
    libdir = os.path.join(REPO, ".cache", "haproxy", "usr", "lib", "x86_64-linux-gnu")
    if os.path.isdir(libdir):
        env["LD_LIBRARY_PATH"] = libdir
    res = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_haproxy_stats_on_the_node_address_without_admin(tmp_path):
    text = render(tmp_path, "haproxy", {"haproxy.cfg.j2": "haproxy.cfg"}, PLAN)["haproxy.cfg.j2"]
    assert "    bind 10.10.10.11:9101\n" in text
    assert "stats admin" not in text.replace("no 'stats admin'", "")
    # a reload starts from the servers' state that haproxy-state saved
    # (tests/integration/test_haproxy_reload.py)
    assert "    server-state-file /var/lib/haproxy/server-state\n" in text
    assert "    load-server-state-from-file global\n" in text
    if os.path.exists(HAPROXY):
        haproxy_check(tmp_path, text)


def test_haproxy_stats_admin_and_bind_are_opt_in(tmp_path):
    text = render(
        tmp_path,
        "haproxy",
        {"haproxy.cfg.j2": "haproxy.cfg"},
        dict(PLAN, haproxy_stats_admin=True, haproxy_admin_bind="*"),
    )["haproxy.cfg.j2"]
    assert "    bind *:9101\n" in text
    assert "    stats admin if TRUE\n" in text
    if os.path.exists(HAPROXY):
        haproxy_check(tmp_path, text)


EXPORTERS = {
    "prometheus-node-exporter.default.j2": "node",
    "prometheus-postgres-exporter.default.j2": "pg",
    "prometheus-pgbouncer-exporter.conf.j2": "pgbouncer",
    "pgbackrest-exporter.service.j2": "pgbackrest",
    "prometheus.yml.j2": "prometheus",
    "pigpen-alert-recorder.service.j2": "recorder",
}
IDENTITY = {
    "__exporters_identity": {"ip": "10.10.10.11"},
    "pg_cluster": "pg-test",
    "item": "10.10.10.10",
    "__exporters_rule_groups": [{"name": "pigpen-node"}],
    "__exporters_etcd_targets": [],
}


def test_exporters_listen_on_the_node_address(tmp_path):
    """The address of the node's scrape targets (targets.yml), not every
    interface; Prometheus on the infra host's address, scraping itself
    there."""
    out = render(tmp_path, "exporters", EXPORTERS, IDENTITY, INFRA_INVENTORY)
    assert 'ARGS="--web.listen-address=10.10.10.11:9100"' in out["prometheus-node-exporter.default.j2"]
    assert (
        'ARGS="--web.listen-address=10.10.10.11:9630 '
        '--extend.query-path=/etc/prometheus-postgres-exporter.queries.yml"'
        in out["prometheus-postgres-exporter.default.j2"]
    )
    assert "\nhost = 10.10.10.11\n" in out["prometheus-pgbouncer-exporter.conf.j2"]
    assert "--listen 10.10.10.11:9854 " in out["pgbackrest-exporter.service.j2"]
    prometheus = yaml.safe_load(out["prometheus.yml.j2"])
    scrape = prometheus["scrape_configs"][0]
    assert scrape["static_configs"][0]["targets"] == ["10.10.10.10:9090"]
    # Alertmanager and the webhook recorder on the same address
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["10.10.10.10:9093"]
    assert prometheus["rule_files"] == ["/etc/prometheus/rules/pigpen-*.yml"]
    assert "--listen 10.10.10.10:9095 " in out["pigpen-alert-recorder.service.j2"]
    assert [c["job_name"] for c in prometheus["scrape_configs"]] == [
        "prometheus",
        "pgsql",
        "node",
        "patroni",
        "haproxy",
    ]


def test_exporters_listen_where_asked(tmp_path):
    out = render(
        tmp_path,
        "exporters",
        EXPORTERS,
        dict(IDENTITY, exporters_listen_address="0.0.0.0", exporters_prometheus_listen_address="fd00::10"),
        INFRA_INVENTORY,
    )
    assert 'ARGS="--web.listen-address=0.0.0.0:9100"' in out["prometheus-node-exporter.default.j2"]
    assert "\nhost = 0.0.0.0\n" in out["prometheus-pgbouncer-exporter.conf.j2"]
    prometheus = yaml.safe_load(out["prometheus.yml.j2"])
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == ["[fd00::10]:9090"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["[fd00::10]:9093"]
    assert "--listen [fd00::10]:9095 " in out["pigpen-alert-recorder.service.j2"]


def _etcd_target(n, tls):
    """A group as pg_etcd_targets computes it (alerting.etcd_targets)."""
    ip = "10.10.10.%d" % (9 + n)
    labels = {"cls": "etcd", "ins": "etcd-%d" % n, "ip": ip, "job": "etcd", "__scheme__": "https" if tls else "http"}
    return {"targets": ["%s:2379" % ip], "labels": labels, "tls": tls}


@pytest.mark.parametrize("schemes", [(True, False), (False, False)], ids=["tls-and-plain", "plain"])
def test_prometheus_without_alerting(tmp_path, schemes):
    """exporters_alerting and exporters_alertmanager off: no rule files, no
    Alertmanager; the etcd members are scraped as a static job, over the
    scheme of each (label __scheme__), with the deployment's CA when one
    serves TLS (etcd_tls_enabled)."""
    etcd = [_etcd_target(n, tls) for n, tls in enumerate(schemes, 1)]
    out = render(
        tmp_path,
        "exporters",
        {"prometheus.yml.j2": "prometheus"},
        dict(IDENTITY, exporters_alertmanager=False, __exporters_rule_groups=[], __exporters_etcd_targets=etcd),
        INFRA_INVENTORY,
    )
    prometheus = yaml.safe_load(out["prometheus.yml.j2"])
    assert "alerting" not in prometheus and "rule_files" not in prometheus
    expected = {"job_name": "etcd", "static_configs": [{k: g[k] for k in ("targets", "labels")} for g in etcd]}
    if any(schemes):
        expected["tls_config"] = {"ca_file": "/etc/pigpen/ca.crt"}
    assert prometheus["scrape_configs"][-1] == expected


VICTORIA = shutil.which("victoria-metrics") or os.path.join(
    REPO, ".cache", "prometheus", "usr", "bin", "victoria-metrics"
)


def test_victoriametrics_scrapes_the_same_targets(tmp_path, stand_in_ca):
    """infra_metrics: victoriametrics: the scrape configuration has the same
    jobs without what VictoriaMetrics refuses (rule_files, alerting,
    evaluation_interval, refresh_interval), passes its own check, and vmalert
    evaluates the rule files on it and sends to Alertmanager."""
    etcd = [_etcd_target(1, True)]
    out = render(
        tmp_path,
        "exporters",
        {"prometheus.yml.j2": "scrape", "pigpen-vmalert.service.j2": "vmalert"},
        dict(IDENTITY, infra_metrics="victoriametrics", __exporters_etcd_targets=etcd),
        INFRA_INVENTORY,
    )
    scrape = yaml.safe_load(out["prometheus.yml.j2"])
    assert scrape["global"] == {"scrape_interval": "10s"}
    assert "alerting" not in scrape and "rule_files" not in scrape
    assert [c["job_name"] for c in scrape["scrape_configs"]] == [
        "victoriametrics",
        "pgsql",
        "node",
        "patroni",
        "haproxy",
        "etcd",
    ]
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["10.10.10.10:8428"]
    assert scrape["scrape_configs"][-1]["tls_config"] == {"ca_file": "/etc/pigpen/ca.crt"}
    assert scrape["scrape_configs"][-1]["static_configs"][0]["labels"]["__scheme__"] == "https"
    assert scrape["scrape_configs"][1]["file_sd_configs"] == [{"files": ["/etc/prometheus/targets/pgsql/*.yml"]}]
    unit = out["pigpen-vmalert.service.j2"]
    for flag in (
        "-rule=/etc/prometheus/rules/pigpen-*.yml",
        "-datasource.url=http://10.10.10.10:8428",
        "-remoteWrite.url=http://10.10.10.10:8428",
        "-notifier.url=http://10.10.10.10:9093",
        "-httpListenAddr=10.10.10.10:8880",
        "-evaluationInterval=10s",
    ):
        assert " %s \\\n" % flag in unit, flag
    if os.access(VICTORIA, os.X_OK):
        # the CA of the patroni and etcd jobs' tls_config, as a file of this machine
        path = tmp_path / "scrape-ca"
        path.write_text(with_ca((tmp_path / "scrape").read_text(), stand_in_ca))
        res = subprocess.run(
            [VICTORIA, "-promscrape.config=%s" % path, "-promscrape.config.dryRun", "-loggerLevel=ERROR"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("address, expected", [("", "10.10.10.11:9598"), ("0.0.0.0", "0.0.0.0:9598")])
def test_vector_metrics_on_the_node_address(tmp_path, address, expected):
    labels = {"cls": "pg-test", "ins": "pg-test-1", "ip": "10.10.10.11", "job": "pgsql"}
    out = render(
        tmp_path,
        "vector",
        {"vector.yaml.j2": "vector.yaml"},
        {"__vector_labels": labels, "vector_listen_address": address, "groups": {"infra": []}},
    )
    conf = yaml.safe_load(out["vector.yaml.j2"])
    assert conf["sinks"]["vector_metrics_out"]["address"] == expected
