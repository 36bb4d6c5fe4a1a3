# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""playbooks/render.yml end to end with the real ansible-playbook.

These run the playbook the way a user does (repo ansible.cfg, sandbox or
test inventories) and check the files it writes. No node is contacted: the
sandbox nodes need not exist.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)
PLAYBOOK = os.path.join(REPO, "playbooks", "render.yml")
SANDBOX = os.path.join(REPO, "inventory", "sandbox.yml")


def run(inventory, render_dir, *extra):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, PLAYBOOK,
           "-e", "render_dir=%s" % render_dir, *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def recap(stdout):
    """host -> {ok, changed, failed, ...} from the PLAY RECAP."""
    out = {}
    for line in stdout.split("PLAY RECAP", 1)[-1].splitlines()[1:]:
        if ":" not in line:
            continue
        host, stats = line.split(":", 1)
        out[host.strip()] = {k: int(v) for k, v in
                             (kv.split("=") for kv in stats.split())}
    return out


@pytest.fixture(scope="module")
def sandbox_render(tmp_path_factory):
    out = tmp_path_factory.mktemp("render")
    first = run(SANDBOX, str(out))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    second = run(SANDBOX, str(out))
    assert second.returncode == 0, second.stdout[-3000:]
    return out, first, second


HAPROXY_DIR = os.path.join("etc", "haproxy", "conf.d")


def tree(root):
    """Every file under root, as a path relative to it."""
    return sorted(os.path.relpath(os.path.join(folder, name), root)
                  for folder, _, names in os.walk(root) for name in names)


def test_files_for_every_instance(sandbox_render):
    """The render mirrors each node's tree: <instance>/<path on the node>."""
    out, _, _ = sandbox_render
    assert sorted(os.listdir(out)) == ["pg-meta-1", "pg-test-1", "pg-test-2", "pg-test-3", "prometheus"]
    for ins in sorted(os.listdir(out)):
        if ins == "prometheus":
            continue
        cls = ins.rsplit("-", 1)[0]
        expected = [".rendered-files", "etc/cron.d/pigpen-pgsql", "etc/patroni/config.yml",
                    "etc/pgbackrest/pgbackrest.conf", "etc/pgbouncer/pgb_hba.conf",
                    "etc/pgbouncer/pgbouncer.ini", "etc/vector/vector.yaml",
                    "pg/conf/pg_hba.conf", "plan.json"]
        expected += ["etc/haproxy/conf.d/%s-%s.cfg" % (cls, s)
                     for s in ("default", "offline", "primary", "replica")]
        if cls == "pg-test":   # pg_vip_enabled
            expected.append("etc/pg-vip.json")
            # backups on the infra node (pgbackrest_method: backup): the
            # member's TLS server options, and pg_crontab's pg-backup
            # entries (its only ones) run on the repository host
            expected.append("etc/pgbackrest/conf.d/pigpen-tls-server.conf")
            expected.remove("etc/cron.d/pigpen-pgsql")
        assert tree(out / ins) == sorted(expected), ins
    assert oct(os.stat(out / "pg-test-1" / "etc" / "patroni" / "config.yml").st_mode & 0o777) \
        == "0o600"


def test_console_names_the_tuning_once_and_no_handler(sandbox_render):
    _, first, second = sandbox_render
    for res in (first, second):
        assert res.stdout.count("Tuned for pg-meta-1, pg-test-1, pg-test-2, pg-test-3: "
                                "1024 MiB, 1 CPU(s), from pg_node_mem_mb/pg_node_cpu "
                                "of the inventory") == 1
        assert "RUNNING HANDLER" not in res.stdout
        assert "DEPRECATION" not in res.stdout + res.stderr
    assert "4 instance(s) rendered into" in first.stdout
    # validate.yml's summary, without -v
    assert first.stdout.count("2 cluster(s), 4 instance(s): valid (pg-meta, pg-test)\n") == 1
    assert "0 file(s) written, 51 unchanged (secrets masked)" in second.stdout


def test_removed_files_are_removed_from_the_render(tmp_path):
    """A file the render no longer produces (a service, the VIP, the cron
    file) leaves the render too; nothing else in the directory is touched."""
    inv = tmp_path / "inv.yml"
    inv.write_text(MIXED.replace("pg_rto: fast}", "pg_rto: fast, pg_vip_enabled: true, "
                                 "pg_vip_address: 192.168.9.3/24, pg_vip_interface: eth0}"))
    out = tmp_path / "out"
    assert run(str(inv), str(out)).returncode == 0
    assert (out / "pg-app-1" / "etc" / "pg-vip.json").exists()
    (out / "pg-app-1" / "notes.txt").write_text("mine\n")
    inv.write_text(MIXED)
    res = run(str(inv), str(out))
    assert res.returncode == 0, res.stdout[-3000:]
    assert not (out / "pg-app-1" / "etc" / "pg-vip.json").exists()
    assert (out / "pg-app-1" / "notes.txt").read_text() == "mine\n"


def test_second_render_changes_nothing(sandbox_render):
    _, first, second = sandbox_render
    assert any(v["changed"] > 0 for v in recap(first.stdout).values())
    assert all(v["changed"] == 0 and v["failed"] == 0 for v in recap(second.stdout).values())
    # one action on the controller, no task per host
    assert list(recap(second.stdout)) == ["10.10.10.10"]


def test_replica_service_fragment(sandbox_render):
    out, _, _ = sandbox_render
    text = (out / "pg-test-2" / HAPROXY_DIR / "pg-test-replica.cfg").read_text()
    assert text == textwrap.dedent("""\
        # pg-test-replica: generated by pigpen.pgsql; do not edit
        # selector: []
        # backup:   [? pg_role == `offline` ]
        # check:    /read-only, in two tiers: /replica first, then
        #           any member that passes /read-only (the *.fallback servers)
        listen pg-test-replica
            bind *:5434
            mode tcp
            # clients: the networks the servers' HBA rules let in (PostgreSQL and
            # pgbouncer see this node, not the client: docs/services.md)
            acl clients src 10.0.0.0/8
            acl clients src 127.0.0.1/32
            acl clients src 172.16.0.0/12
            acl clients src 192.168.0.0/16
            acl clients src ::1/128
            tcp-request connection reject unless clients
            maxconn 5000
            balance roundrobin
            option httpchk
            option http-keep-alive
            http-check send meth OPTIONS uri /replica
            http-check expect status 200
            default-server inter 2s fastinter 1s downinter 2s rise 3 fall 3 on-marked-down shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100
            server pg-test-1 10.10.10.11:6432 check port 8008 weight 100
            server pg-test-2 10.10.10.12:6432 check port 8008 weight 100
            server pg-test-3 10.10.10.13:6432 check port 8008 weight 100
            server pg-test-1.fallback 10.10.10.11:6432 track pg-test-replica.fallback/pg-test-1 weight 100 backup
            server pg-test-2.fallback 10.10.10.12:6432 track pg-test-replica.fallback/pg-test-2 weight 100 backup
            server pg-test-3.fallback 10.10.10.13:6432 track pg-test-replica.fallback/pg-test-3 weight 100 backup

        # pg-test-replica.fallback: health of the fallback tier of pg-test-replica (no listener)
        backend pg-test-replica.fallback
            mode tcp
            option httpchk
            option http-keep-alive
            http-check send meth OPTIONS uri /read-only
            http-check expect status 200
            default-server inter 2s fastinter 1s downinter 2s rise 3 fall 3 on-marked-down shutdown-sessions slowstart 30s maxconn 3000 maxqueue 128 weight 100
            server pg-test-1 10.10.10.11:6432 check port 8008 weight 100
            server pg-test-2 10.10.10.12:6432 check port 8008 weight 100
            server pg-test-3 10.10.10.13:6432 check port 8008 weight 100
        """)
    # every member renders the same service definitions
    for ins in ("pg-test-1", "pg-test-3"):
        assert (out / ins / HAPROXY_DIR / "pg-test-replica.cfg").read_text() == text


def test_hba_files_match_the_plan(sandbox_render):
    out, _, _ = sandbox_render
    plan = json.loads((out / "pg-test-3" / "plan.json").read_text())
    assert (out / "pg-test-3" / "pg" / "conf" / "pg_hba.conf").read_text() == "\n".join(plan["pg_hba"]) + "\n"
    assert (out / "pg-test-3" / "etc" / "pgbouncer" / "pgb_hba.conf").read_text() == "\n".join(plan["pgb_hba"]) + "\n"
    assert plan["identity"]["labels"] == {"cls": "pg-test", "ins": "pg-test-3",
                                          "ip": "10.10.10.13", "job": "pgsql"}


def test_vector_config(sandbox_render):
    """vector.yaml tails the four logs and labels each record with the
    instance's identity; the sink ships them to the infra host's Loki."""
    out, _, _ = sandbox_render
    conf = yaml.safe_load((out / "pg-test-3" / "etc" / "vector" / "vector.yaml").read_text())
    logs = {"postgres": "/pg/log/postgres/*.csv", "patroni": "/pg/log/patroni/*.log",
            "pgbouncer": "/pg/log/pgbouncer/*.log", "pgbackrest": "/pg/log/pgbackrest/*.log"}
    assert {k: v["include"] for k, v in conf["sources"].items() if v["type"] == "file"} == \
        {k: [v] for k, v in logs.items()}
    for name in logs:
        remap = conf["transforms"][name + "_labelled"]
        assert remap["inputs"] == [name]
        assert '.ins = "pg-test-3"' in remap["source"] and '.ip = "10.10.10.13"' in remap["source"]
        assert '.cls = "pg-test"' in remap["source"] and '.src = "%s"' % name in remap["source"]
    sink = conf["sinks"]["pgsql_logs_out"]
    assert sink["type"] == "loki" and sink["endpoint"] == "http://10.10.10.10:3100"
    assert sorted(sink["inputs"]) == sorted(n + "_labelled" for n in logs)
    assert {k: sink["labels"][k] for k in ("cls", "ins", "ip")} == \
        {"cls": "pg-test", "ins": "pg-test-3", "ip": "10.10.10.13"}


HAPROXY = shutil.which("haproxy") or (
    os.path.join(REPO, ".cache", "haproxy", "usr", "sbin", "haproxy")
    if os.path.exists(os.path.join(REPO, ".cache", "haproxy", "usr", "sbin", "haproxy"))
    else None)


@pytest.mark.skipif(HAPROXY is None, reason="no haproxy binary (make deps extracts one)")
def test_fragments_pass_haproxy_check(sandbox_render, tmp_path):
    out, _, _ = sandbox_render
    base = tmp_path / "base.cfg"
    base.write_text("global\n    maxconn 1000\ndefaults\n    timeout connect 3s\n"
                    "    timeout client 1h\n    timeout server 1h\n")
    cmd = [HAPROXY, "-c", "-f", str(base)]
    for frag in sorted((out / "pg-test-1" / HAPROXY_DIR).iterdir()):
        cmd += ["-f", str(frag)]
    env = dict(os.environ)
    libdir = os.path.join(REPO, ".cache", "haproxy", "usr", "lib", "x86_64-linux-gnu")
    if os.path.isdir(libdir):
        env["LD_LIBRARY_PATH"] = libdir
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(HAPROXY is None, reason="no haproxy binary (make deps extracts one)")
@pytest.mark.parametrize("plan", ["fast", "norm", "safe", "wide", 25, 600])
def test_every_rto_plan_passes_haproxy_check(plan, tmp_path):
    # the default-server line of every plan (and of legacy seconds) is a
    # valid HAProxy line: durations are whole numbers (500ms, not 0.5s)
    sys.path.insert(0, os.path.join(REPO, ".collections"))
    from ansible_collections.pigpen.pgsql.plugins.module_utils import ha
    cfg = tmp_path / "plan.cfg"
    cfg.write_text("global\n    maxconn 1000\ndefaults\n    timeout connect 3s\n"
                   "    timeout client 1h\n    timeout server 1h\n"
                   "listen x\n    bind 127.0.0.1:15433\n    mode tcp\n    option httpchk\n"
                   "    default-server %s\n    server a 127.0.0.1:6432 check port 8008\n"
                   % ha.ha_plan(plan, 1048576, "oltp")["server_options"])
    env = dict(os.environ)
    libdir = os.path.join(REPO, ".cache", "haproxy", "usr", "lib", "x86_64-linux-gnu")
    if os.path.isdir(libdir):
        env["LD_LIBRARY_PATH"] = libdir
    res = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], capture_output=True, text=True,
                         env=env, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


BAD = """\
all:
  children:
    etcd: {hosts: {10.10.10.10: {etcd_seq: 1}}}
    pg-bad:
      hosts:
        10.10.10.21: {pg_seq: 1, pg_role: primary}
        10.10.10.22: {pg_seq: 1, pg_role: replca}
      vars:
        pg_cluster: pg-bad
        pg_rto: quick
"""


def test_invalid_inventory_fails_and_writes_nothing(tmp_path):
    inv = tmp_path / "bad.yml"
    inv.write_text(BAD)
    out = tmp_path / "out"
    res = run(str(inv), str(out))
    assert res.returncode != 0
    assert not out.exists()
    text = res.stdout + res.stderr
    for line in (
        "cluster pg-bad: pg_rto = 'quick': is not a known RTO plan; fix: use one of fast, "
        "norm, safe, wide",
        "cluster pg-bad, host 10.10.10.22: pg_role = 'replca': is not a known role; fix: "
        "use one of primary, replica, offline, standby, delayed",
        "cluster pg-bad, host 10.10.10.22: pg_seq = 1: is already used by host 10.10.10.21 "
        "(instance pg-bad-1); fix: give every instance of pg-bad its own pg_seq",
    ):
        assert text.count(line) == 1, (line, text)   # each problem printed once
    assert "problem(s) in the inventory, listed above; nothing was changed" in text
    assert "DEPRECATION" not in text


MIXED = """\
all:
  children:
    infra: {hosts: {admin-node: {ansible_host: 192.168.9.10, infra_seq: 1}}}
    etcd: {hosts: {admin-node: {etcd_seq: 1}}}
    minio: {hosts: {s3-node: {ansible_host: 192.168.9.20, minio_seq: 1}}, vars: {minio_cluster: minio}}
    redis: {hosts: {cache-node: {ansible_host: 192.168.9.30}}, vars: {redis_conf: "{{ undefined_elsewhere }}"}}
    pg-app:
      hosts:
        db-1: {ansible_host: 192.168.9.41, pg_seq: 1, pg_role: primary}
        db-2: {ansible_host: 192.168.9.42, pg_seq: 2, pg_role: replica}
      vars: {pg_cluster: pg-app, pg_rto: fast}
  vars:
    admin_ip: 192.168.9.10
    some_infra_setting: {nested: [1, 2, 3]}
    pigpen_sandbox: true    # a test inventory: the public passwords are accepted
"""


def test_hostnames_and_unrelated_groups(tmp_path):
    inv = tmp_path / "mixed.yml"
    inv.write_text(MIXED)
    out = tmp_path / "out"
    res = run(str(inv), str(out))
    assert res.returncode == 0, res.stdout[-3000:]
    assert sorted(os.listdir(out)) == ["pg-app-1", "pg-app-2", "prometheus"]
    frag = (out / "pg-app-1" / HAPROXY_DIR / "pg-app-primary.cfg").read_text()
    assert "server pg-app-2 192.168.9.42:6432 check port 8008 weight 100" in frag
    assert "default-server inter 1s fastinter 500ms downinter 1s rise 3 fall 3" in frag
    hba = (out / "pg-app-2" / "pg" / "conf" / "pg_hba.conf").read_text()
    assert "192.168.9.10/32" in hba  # infra alias from ansible_host of admin-node


def test_limit_still_validates_the_whole_cluster(tmp_path):
    inv = tmp_path / "bad.yml"
    inv.write_text(BAD)
    res = run(str(inv), str(tmp_path / "out"), "-l", "10.10.10.21")
    assert res.returncode != 0
    assert "pg_role = 'replca'" in res.stdout + res.stderr


PUBLIC = """\
all:
  children:
    etcd: {hosts: {10.10.10.10: {etcd_seq: 1}}}
    pg-prod:
      hosts:
        10.10.10.21: {pg_seq: 1, pg_role: primary}
      vars:
        pg_cluster: pg-prod
        pg_admin_password: Own.Admin.Secret
  vars:
    admin_ip: 10.10.10.10
"""


def validate(inventory, *extra):
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", inventory,
           os.path.join(REPO, "playbooks", "validate.yml"), *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def test_sandbox_passwords_are_refused_outside_the_sandbox(tmp_path):
    """The public passwords stop the run (they used to be warnings with rc
    0), each named once with the setting to change; pigpen_sandbox: true is
    the one switch that accepts them."""
    inv = tmp_path / "public.yml"
    inv.write_text(PUBLIC)
    res = validate(str(inv))
    text = res.stdout + res.stderr
    assert res.returncode != 0
    for var in ("pg_replication_password", "pg_monitor_password", "patroni_password",
                "haproxy_admin_password", "pg_etcd_password", "etcd_root_password"):
        assert "%s = '(hidden)': is unset or the public sandbox default" % var in text, var
        assert "fix: set %s to a secret of your own" % var in text, var
    assert "pg_admin_password = '(hidden)': is unset" not in text
    assert "set pigpen_sandbox: true in the inventory instead" in text
    assert validate(str(inv), "-e", "pigpen_sandbox=true").returncode == 0


PROM_TOOLS = os.path.join(REPO, ".cache", "prometheus", "usr", "bin")


def _prom_tool(name):
    path = shutil.which(name) or os.path.join(PROM_TOOLS, name)
    if os.access(path, os.X_OK):
        return path
    if os.environ.get("PIGPEN_REQUIRE_PROMTOOL"):
        pytest.fail("%s is missing: run make prometheus-bin" % path, pytrace=False)
    pytest.skip("no %s (make prometheus-bin)" % name)
    return None


def test_rendered_alerting_rules_and_alertmanager_config(sandbox_render):
    """The exporters role's templates, rendered by Ansible from the sandbox
    inventory, are what promtool and amtool accept; the annotations keep
    Prometheus' own template syntax (Ansible does not expand it)."""
    out, _, _ = sandbox_render
    rules = sorted((out / "prometheus" / "rules").iterdir())
    assert [r.name for r in rules] == ["pigpen-%s.yml" % g for g in (
        "certificates", "etcd", "haproxy", "node", "patroni", "pgbackrest", "pgbouncer", "postgres")]
    proc = subprocess.run([_prom_tool("promtool"), "check", "rules", "--lint=all", "--lint-fatal"]
                          + [str(r) for r in rules], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    postgres = yaml.safe_load((out / "prometheus" / "rules" / "pigpen-postgres.yml").read_text())
    lag = [r for r in postgres["groups"][0]["rules"] if r.get("alert") == "PgsqlReplicaLag"]
    assert [r["expr"] for r in lag] == ["ins:pg_replica_lag:bytes > 1048576"]
    assert lag[0]["annotations"]["summary"] == \
        "Replica {{ $labels.ins }} is {{ $value | humanize1024 }}B behind its leader"
    # the sandbox's backup schedule: incremental every 4 hours, full daily
    backup = yaml.safe_load((out / "prometheus" / "rules" / "pigpen-pgbackrest.yml").read_text())
    limits = {r["alert"]: r["expr"] for r in backup["groups"][0]["rules"] if "alert" in r}
    assert limits["PgbackrestBackupTooOld"] == "cls:pgbackrest_backup_age:seconds > 18000"
    assert limits["PgbackrestFullBackupTooOld"] == "cls:pgbackrest_full_backup_age:seconds > 90000"
    am = out / "prometheus" / "alertmanager.yml"
    proc = subprocess.run([_prom_tool("amtool"), "check-config", str(am)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
