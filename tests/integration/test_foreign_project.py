# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Opt-in: the collection used from someone else's repository (docs/usage.md).

The collection is built and its tarball installed into a scratch project
that has its own ansible.cfg (collections_path inside the project, none of
this repository's settings), an inventory split into group_vars/ and
host_vars/ with host names that are not addresses (``ansible_host`` gives
the address) and a group that is not a cluster, and one role of its own.
Its playbook lists this collection's roles by FQCN, with nothing but the
inventory, against the running sandbox's pg-test (``make sandbox``), which
``playbooks/pgsql.yml`` deployed: the roles compute their inputs from the
inventory themselves, find everything as it is (changed=0 apart from the
project's own role) and restart nothing.

    PIGPEN_FOREIGN_RUN=1 .venv/bin/pytest tests/integration/test_foreign_project.py

``make test-full`` runs it after ``make sandbox``. Without the variable, or
without the sandbox's SSH key, it is skipped.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import urllib.request

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)
KEY = os.path.join(REPO, ".sandbox", "ssh", "id_ed25519")
ENABLED = os.environ.get("PIGPEN_FOREIGN_RUN") == "1"

pytestmark = [
    pytest.mark.skipif(not ENABLED, reason="set PIGPEN_FOREIGN_RUN=1 to run against the sandbox"),
    pytest.mark.skipif(ENABLED and not os.path.exists(KEY), reason="no sandbox (make sandbox)"),
]

#: the sandbox's members by a name of the project's own choosing
MEMBERS = {"db-test-a": ("10.10.10.11", 1), "db-test-b": ("10.10.10.12", 2), "db-test-c": ("10.10.10.13", 3)}
INFRA = ("infra-1", "10.10.10.10")

#: the roles the project's playbook lists, in pgsql.yml's order
ROLES = [
    "pigpen.pgsql.postgres",
    "pigpen.pgsql.vip",
    "pigpen.pgsql.patroni",
    "pigpen.pgsql.pgbouncer",
    "pigpen.pgsql.haproxy",
    "pigpen.pgsql.pgbackrest",
    "pigpen.pgsql.exporters",
]


def sandbox_vars():
    with open(os.path.join(REPO, "inventory", "sandbox.yml"), encoding="utf-8") as handle:
        inv = yaml.safe_load(handle)["all"]
    return inv["vars"], inv["children"]


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        if isinstance(data, str):
            handle.write(data)
        else:
            yaml.safe_dump(data, handle, sort_keys=False)


def build_project(root):
    """The scratch project: ansible.cfg, inventory/, roles/motd, site.yml."""
    build = os.path.join(root, "build")
    os.makedirs(build)
    res = subprocess.run(
        [os.path.join(BIN, "ansible-galaxy"), "collection", "build", REPO, "--output-path", build],
        env=own_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    tarball = glob.glob(os.path.join(build, "pigpen-pgsql-*.tar.gz"))[0]
    project = os.path.join(root, "infra-repo")
    write(
        os.path.join(project, "ansible.cfg"),
        "[defaults]\ninventory = inventory\ncollections_path = collections\n"
        "roles_path = roles\nhost_key_checking = False\n",
    )
    res = subprocess.run(
        [os.path.join(BIN, "ansible-galaxy"), "collection", "install", tarball, "-p", "collections"],
        cwd=project,
        env=own_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout + res.stderr

    all_vars, children = sandbox_vars()
    test_vars = dict(children["pg-test"]["vars"])
    meta_vars = dict(children["pg-meta"]["vars"])
    inv = os.path.join(project, "inventory")
    write(
        os.path.join(inv, "hosts.yml"),
        {
            "all": {
                "children": {
                    "infra": {"hosts": {INFRA[0]: None}},
                    "etcd": {"hosts": {INFRA[0]: None}},
                    "pg-meta": {"hosts": {INFRA[0]: None}},
                    "pg-test": {"hosts": {name: None for name in MEMBERS}},
                    # a group of the project's own that is not a cluster
                    "databases": {"children": {"pg-meta": None, "pg-test": None}},
                }
            }
        },
    )
    connection = {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": KEY,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    write(os.path.join(inv, "group_vars", "all.yml"), dict(all_vars, **connection))
    write(os.path.join(inv, "group_vars", "etcd.yml"), children["etcd"]["vars"])
    write(os.path.join(inv, "group_vars", "pg-test.yml"), test_vars)
    write(os.path.join(inv, "group_vars", "pg-meta.yml"), meta_vars)
    write(
        os.path.join(inv, "host_vars", INFRA[0] + ".yml"),
        {"ansible_host": INFRA[1], "infra_seq": 1, "etcd_seq": 1, "pg_seq": 1, "pg_role": "primary"},
    )
    for name, (address, seq) in MEMBERS.items():
        write(
            os.path.join(inv, "host_vars", name + ".yml"),
            {
                "ansible_host": address,
                "pg_seq": seq,
                "pg_role": "primary" if seq == 1 else "replica",
                **({"pg_offline_query": True} if seq == 3 else {}),
            },
        )
    # the project's own role
    write(
        os.path.join(project, "roles", "motd", "tasks", "main.yml"),
        [
            {
                "name": "Say which cluster this node serves",
                "ansible.builtin.copy": {
                    "dest": "/etc/motd.d-pigpen-test",
                    "content": "{{ pg_cluster }} member {{ inventory_hostname }}\n",
                    "mode": "0644",
                },
            }
        ],
    )
    write(
        os.path.join(project, "site.yml"),
        [
            {
                "name": "Databases, with the roles of pigpen.pgsql and one of our own",
                "hosts": "pg-test",
                "become": True,
                "roles": ["motd"] + ROLES,
            }
        ],
    )
    return project


def own_env():
    """The environment without ANSIBLE_* (make exports ANSIBLE_CONFIG, the
    checkout's ansible.cfg): the scratch project's commands read its own
    ansible.cfg only, as in someone else's repository."""
    return {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}


def playbook(project, *args):
    env = own_env()
    env.update(
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DISPLAY_OK_HOSTS="false",
        ANSIBLE_DISPLAY_SKIPPED_HOSTS="false",
        PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
    )
    return subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def changed_tasks(stdout):
    # handlers are headers too: a handler's change is not its preceding task's
    heads = ("TASK [", "RUNNING HANDLER [")
    lines = [x for x in stdout.splitlines() if x.startswith(heads + ("changed:",))]
    return sorted({t for t, n in zip(lines, lines[1:]) if t.startswith(heads) and n.startswith("changed:")})


def started(address):
    # Patroni's REST API serves HTTPS with a certificate of the deployment's
    # CA, kept on the controller (docs/security.md)
    context = ssl.create_default_context(cafile=os.path.expanduser("~/.pigpen/pki/ca.crt"))
    with urllib.request.urlopen("https://%s:8008/patroni" % address, timeout=5, context=context) as resp:
        return json.load(resp)["postmaster_start_time"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("foreign"))
    yield build_project(root)
    shutil.rmtree(root, ignore_errors=True)


def test_roles_from_a_foreign_project_change_nothing_on_a_deployed_cluster(project):
    before = {name: started(address) for name, (address, _) in MEMBERS.items()}
    first = playbook(project, "site.yml")
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    # the first run may change what names the hosts: the project's own
    # role, and the node certificates and keys, kept on the controller under
    # the inventory's host names (db-test-a instead of 10.10.10.11; new keys
    # on a controller that never ran this test), with what follows from them
    # (PostgreSQL, pgbouncer and pgBackRest's TLS server reloaded), and
    # what names the repository host (infra-1 instead of 10.10.10.10:
    # pgbackrest.conf's tls-server-auth, pg-backup's message);
    # nothing that restarts PostgreSQL (checked below)
    allowed = (
        "motd",
        "certificate",
        "signing request",
        "private key",
        "Reload PostgreSQL",
        "TLS files pgbouncer",
        "Reload pgbouncer",
        "HAProxy",
        "haproxy",
        "pgBackRest",
        "pgbackrest.conf",
        "pg-backup",
        "TLS server",
    )
    unexpected = [t for t in changed_tasks(first.stdout) if not any(a in t for a in allowed)]
    assert not unexpected, "\n".join(unexpected)
    second = playbook(project, "site.yml")
    assert second.returncode == 0, second.stdout[-6000:] + second.stderr[-3000:]
    recap = [x for x in second.stdout.splitlines() if re.search(r"\bchanged=\d+", x)]
    assert len(recap) == len(MEMBERS) and all(" changed=0 " in x for x in recap), (recap, changed_tasks(second.stdout))
    # nothing restarted PostgreSQL
    assert {name: started(address) for name, (address, _) in MEMBERS.items()} == before
