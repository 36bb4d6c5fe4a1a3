# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The pgbackrest role's renew entry point (playbooks/pgsql-cert.yml) on a
cluster whose repository has no host: there is no TLS server, so it must
skip every task without touching anything. Run on localhost with a
one-member inventory, the way pgsql-cert.yml includes it; no node is
contacted. (Ansible templates a loop's items and delegate_to before it
reads when: a value that cannot be templated without a repository host
failed here once, on Molecule default's pg-meta.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)

INVENTORY = {
    "all": {
        "children": {
            "etcd": {"hosts": {"127.0.0.1": {"etcd_seq": 1}}, "vars": {"etcd_cluster": "etcd"}},
            "pg-x": {
                "hosts": {"127.0.0.1": {"pg_seq": 1, "pg_role": "primary"}},
                "vars": {"pg_cluster": "pg-x"},
            },
        },
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "pigpen_sandbox": True},
    }
}

PLAY = [
    {
        "name": "Renew pgBackRest's certificates as pgsql-cert.yml does",
        "hosts": "all",
        "gather_facts": False,
        "tasks": [
            {
                "name": "Renew",
                "ansible.builtin.include_role": {"name": "pigpen.pgsql.pgbackrest", "tasks_from": "renew"},
                "vars": {"pgbackrest_cert_renew_all": True},
            }
        ],
    }
]


def test_renew_skips_a_cluster_without_a_repository_host(tmp_path):
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(INVENTORY))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PLAY))
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ["PATH"])
    cmd = [
        os.path.join(BIN, "ansible-playbook"),
        "-i",
        str(tmp_path / "inventory.yml"),
        str(tmp_path / "play.yml"),
    ]
    run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    recap = re.search(r"127\.0\.0\.1\s+: ok=\d+\s+changed=(\d+)", run.stdout)
    assert recap and recap.group(1) == "0", run.stdout[-2000:]
    assert "Read the TLS servers' main process" in run.stdout
