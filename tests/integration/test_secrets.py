# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""No secret in any output: an inventory whose every secret holds a marker
string goes through validate.yml, render.yml (masked and with
render_secrets=true) and a failing validation, and the marker appears in
no console output, no plan.json and no rendered file but the three that must
hold secrets when they are asked for (Patroni's configuration,
pgbackrest.conf and pg-vip's configuration)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)
MARK = "Mk7SecretZ"

# Every secret the collection and Pigsty's vocabulary know, each a marker.
INVENTORY = """\
all:
  children:
    infra: {hosts: {10.10.10.10: {infra_seq: 1}}}
    etcd: {hosts: {10.10.10.10: {etcd_seq: 1}}, vars: {etcd_cluster: etcd}}
    pg-mark:
      hosts:
        10.10.10.11: {pg_seq: 1, pg_role: primary%(host1)s}
        10.10.10.12: {pg_seq: 2, pg_role: replica%(host2)s}
      vars:
        pg_cluster: pg-mark
        pg_users:
          - {name: app, password: %(m)s-user-app, pgbouncer: true, roles: [dbrole_readwrite]}
          - {name: etl, password: 'md5%(m)s', roles: [dbrole_offline]}
        pg_databases: [{name: app, owner: app}]
        pgbackrest_method: minio
        pgbackrest_repo:
          minio:
            type: s3
            s3_endpoint: s3.example.org
            s3_region: us-east-1
            s3_bucket: pgsql
            s3_key: %(m)s-s3-key
            s3_key_secret: %(m)s-s3-secret
            path: /pgbackrest
            cipher_type: aes-256-cbc
            cipher_pass: %(m)s-cipher
            retention_full_type: time
            retention_full: 14
        pg_vip_enabled: true
        pg_vip_address: 10.10.10.3/24
  vars:
    admin_ip: 10.10.10.10
    pg_replication_password: %(m)s-repl
    pg_admin_password: %(m)s-admin
    pg_monitor_password: %(m)s-monitor
    patroni_password: %(m)s-patroni
    haproxy_admin_password: %(m)s-haproxy
    pg_etcd_password: %(m)s-etcd
    etcd_root_password: %(m)s-etcd-root
    pg_ca_passphrase: %(m)s-ca
    # Pigsty's secrets of other modules, named in its warnings
    pg_dbsu_password: %(m)s-dbsu
    grafana_admin_password: %(m)s-grafana
    minio_secret_key: %(m)s-minio
    redis_password: %(m)s-redis
"""


def inventory(tmp_path, name, host1="", host2=""):
    path = tmp_path / (name + ".yml")
    path.write_text(INVENTORY % {"m": MARK, "host1": host1, "host2": host2})
    return str(path)


def playbook(name, inv, *extra):
    env = dict(
        os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ.get("PATH", "")
    )
    cmd = [os.path.join(BIN, "ansible-playbook"), "-v", "-i", inv, os.path.join(REPO, "playbooks", name), *extra]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


def marked_files(root):
    out = []
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8", errors="replace") as fh:
                if MARK in fh.read():
                    out.append(os.path.relpath(path, root))
    return sorted(out)


def leaks(res):
    """The console lines holding the marker."""
    return [line for line in (res.stdout + res.stderr).splitlines() if MARK in line]


def test_validate_shows_no_secret(tmp_path):
    res = playbook("validate.yml", inventory(tmp_path, "valid"))
    assert res.returncode == 0, res.stdout[-3000:]
    assert leaks(res) == []


@pytest.mark.parametrize("secrets", [False, True])
def test_render_shows_no_secret(tmp_path, secrets):
    out = tmp_path / "render"
    res = playbook(
        "render.yml",
        inventory(tmp_path, "valid"),
        "-e",
        "render_dir=%s" % out,
        *(["-e", "render_secrets=true"] if secrets else []),
    )
    assert res.returncode == 0, res.stdout[-3000:]
    assert leaks(res) == []
    files = marked_files(out)
    assert not [f for f in files if f.endswith("plan.json")]
    if secrets:
        # only the files that must hold them, and they do
        assert files == sorted(
            "%s/%s" % (ins, f)
            for ins in ("pg-mark-1", "pg-mark-2")
            for f in ("etc/patroni/config.yml", "etc/pgbackrest/pgbackrest.conf", "etc/pg-vip.json")
        )
    else:
        assert files == []


def test_failing_validation_shows_no_secret(tmp_path):
    """pg_users that differ between members (the message shows both lists),
    passwords that break their files, a repository option next to its
    secrets: every problem is printed, no secret."""
    inv = inventory(
        tmp_path,
        "bad",
        host1=", pg_users: [{name: app, password: %s-one}]" % MARK,
        host2=(
            ", pg_users: [{name: app, password: %s-two}], "
            "pg_replication_password: '%s:repl', "
            "pgbackrest_repo: {minio: {type: s3, s3_key: %s-k, cipher_pass: %s-c, "
            "bogus_option: 1}}" % (MARK, MARK, MARK, MARK)
        ),
    )
    res = playbook("validate.yml", inv)
    assert res.returncode != 0
    text = res.stdout + res.stderr
    assert "pg_users" in text and "differs from" in text
    assert "pg_replication_password = '(hidden)'" in text
    assert "bogus_option" in text
    assert leaks(res) == []
    # and render.yml stops with the same messages, writing nothing
    out = tmp_path / "render"
    res = playbook("render.yml", inv, "-e", "render_dir=%s" % out)
    assert res.returncode != 0 and not out.exists()
    assert leaks(res) == []
