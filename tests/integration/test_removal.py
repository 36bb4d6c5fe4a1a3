# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The removal playbooks refuse before they change anything when they
cannot be sure: etcd-rm.yml keeps the data directory when etcd did not
stop, and pgsql-rm.yml does not remove alone a member whose Patroni did not
answer (it may be the leader). Run with the real ansible-playbook against
this machine (local connection), with a stand-in for systemctl: no service
of this machine is touched."""

from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)

# systemctl as a node whose etcd runs and refuses to stop
SYSTEMCTL = """#!/bin/sh
echo "$@" >> "$(dirname "$0")/calls"
case "$1" in
  show) printf 'Id=etcd.service\\nNames=etcd.service\\nLoadState=loaded\\nActiveState=active\\nSubState=running\\nUnitFileState=enabled\\n' ;;
  is-enabled) echo enabled ;;
  is-active) echo active; exit 0 ;;
  disable|enable|daemon-reload) exit 0 ;;
  stop) echo "Job for etcd.service canceled." >&2; exit 1 ;;
  *) exit 0 ;;
esac
"""  # noqa: E501 (the unit's properties on one line, as systemctl show prints them)


def request_cleanup(path):
    atexit.register(shutil.rmtree, str(path), True)


def run(tmp_path, playbook, inventory, *extra, fake_systemctl=False):
    env = dict(
        os.environ,
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_STRATEGY="linear",
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
    )
    if fake_systemctl:
        fake = tmp_path / "bin"
        fake.mkdir()
        (fake / "systemctl").write_text(SYSTEMCTL)
        (fake / "systemctl").chmod(0o755)
        env["PATH"] = str(fake) + os.pathsep + env["PATH"]
    inv = tmp_path / "hosts.yml"
    inv.write_text(inventory)
    return subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", str(inv), os.path.join(REPO, "playbooks", playbook), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


ETCD = """\
all:
  children:
    etcd:
      hosts:
        127.0.0.1: {etcd_seq: 1}
      vars:
        etcd_cluster: etcd
        ansible_connection: local
        ansible_python_interpreter: "%s"
        etcd_root_password: Own.Etcd.Root.1
        etcd_data_dir: "%s"
"""


def test_etcd_rm_keeps_the_data_when_etcd_does_not_stop(tmp_path):
    # validation refuses a data directory under /tmp (world-writable)
    os.makedirs(os.path.join(REPO, ".cache"), exist_ok=True)
    data = pathlib.Path(tempfile.mkdtemp(prefix="etcd-rm-", dir=os.path.join(REPO, ".cache")))
    request_cleanup(data)
    (data / "member").write_text("keep me")
    res = run(
        tmp_path,
        "etcd-rm.yml",
        ETCD % (sys.executable, data),
        "-e",
        "etcd_rm_confirm=etcd",
        "-e",
        "etcd_rm_data=true",
        fake_systemctl=True,
    )
    assert res.returncode != 0, res.stdout[-3000:]
    assert (data / "member").read_text() == "keep me"
    calls = (tmp_path / "bin" / "calls").read_text()
    assert "stop etcd" in calls
    assert "Wipe the data directory" not in res.stdout


PGSQL = (
    """\
all:
  children:
    etcd: {hosts: {127.0.0.4: {etcd_seq: 1}}, vars: {etcd_cluster: etcd}}
    pg-rm:
      hosts:
        127.0.0.2: {pg_seq: 1, pg_role: primary}
        127.0.0.3: {pg_seq: 2, pg_role: replica}
      vars:
        pg_cluster: pg-rm
        patroni_port: 18008
  vars:
    ansible_connection: local
    ansible_python_interpreter: "%s"
    pigpen_sandbox: true
"""
    % sys.executable
)


def test_pgsql_rm_refuses_a_member_whose_patroni_does_not_answer(tmp_path):
    """Nothing answers on the Patroni port of 127.0.0.3 (status -1): it may
    be the leader, and no member that stays says otherwise."""
    res = run(
        tmp_path, "pgsql-rm.yml", PGSQL, "-l", "127.0.0.3", "-e", "pg_rm_confirm=pg-rm", "--check", fake_systemctl=True
    )
    text = res.stdout + res.stderr
    assert res.returncode != 0, text[-3000:]
    assert "Patroni on 127.0.0.3 did not answer whether it leads" in text
    assert "it may be the leader" in text
    assert not (tmp_path / "bin" / "calls").exists()


def test_pgsql_rm_backups_need_a_second_confirmation(tmp_path):
    """A whole cluster with pg_rm_backup: the cluster's name once is not
    enough, and nothing is changed."""
    res = run(
        tmp_path,
        "pgsql-rm.yml",
        PGSQL,
        "-l",
        "pg-rm",
        "-e",
        "pg_rm_confirm=pg-rm",
        "-e",
        "pg_rm_backup=true",
        fake_systemctl=True,
    )
    text = res.stdout + res.stderr
    assert res.returncode != 0, text[-3000:]
    assert "Deleting the backups of pg-rm was not confirmed: nothing was changed" in text
    assert not (tmp_path / "bin" / "calls").exists()
