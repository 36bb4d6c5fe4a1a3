# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Inventories in the shapes of Pigsty's conf templates (our own fixtures,
tests/unit/fixtures/pigsty) through the real validate.yml and render.yml:
accepted unchanged, every file rendered, the Pigsty settings this
collection does not implement named once each in warnings, and the
rendered pg_hba.conf / HAProxy fragments as Pigsty would write them
(the active lines and server lines; comments are presentation)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from conftest import with_ca  # the integration tests' shared helpers

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
BIN = os.path.dirname(sys.executable)
FIXTURES = os.path.join(REPO, "tests", "unit", "fixtures", "pigsty")
NAMES = sorted(f[:-4] for f in os.listdir(FIXTURES) if f.endswith(".yml"))
HAPROXY = os.path.join(REPO, ".cache", "haproxy", "usr", "sbin", "haproxy")

sys.path.insert(0, os.path.join(REPO, "tests", "unit"))
import pigsty_reference as ref  # noqa: E402  pylint: disable=wrong-import-position


def playbook(name, *args):
    env = dict(
        os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ.get("PATH", "")
    )
    cmd = [os.path.join(BIN, "ansible-playbook"), os.path.join(REPO, "playbooks", name), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)


@pytest.fixture(scope="module", params=NAMES)
def rendered(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    inventory = os.path.join(FIXTURES, request.param + ".yml")
    res = playbook("render.yml", "-i", inventory, "-e", "render_dir=%s" % out)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    return request.param, inventory, out, res


def warnings_of(res):
    return [
        line.split("PIGSTY SETTING: ", 1)[1]
        for line in (res.stdout + res.stderr).splitlines()
        if "PIGSTY SETTING: " in line
    ]


def publishers(hostvars, groups, cluster):
    """The render directories that hold a cluster's HAProxy fragments: its
    members' instances, or the hosts of its pg_service_provider group."""
    members = [hv for hv in hostvars.values() if hv.get("pg_cluster") == cluster]
    provider = members[0].get("pg_service_provider")
    if provider:
        return list(groups[provider])
    return ["%s-%s" % (hv["pg_cluster"], hv["pg_seq"]) for hv in members]


def test_rendered_for_every_instance(rendered):
    _, inventory, out, _ = rendered
    hostvars, groups = ref.load_inventory(inventory)
    instances = sorted("%s-%s" % (hv["pg_cluster"], hv["pg_seq"]) for hv in hostvars.values() if "pg_cluster" in hv)
    providers = sorted(
        {h for hv in hostvars.values() if hv.get("pg_service_provider") for h in groups[hv["pg_service_provider"]]}
    )
    # beside the instances: the nodes of a pg_service_provider group (their
    # HAProxy fragments), the alerting rules and alertmanager.yml, and the
    # cluster DNS records (one file per cluster)
    assert sorted(os.listdir(out)) == sorted(instances + providers + ["dns", "prometheus"])
    assert sorted(os.listdir(out / "dns" / "etc" / "hosts.d")) == sorted(
        {hv["pg_cluster"] for hv in hostvars.values() if "pg_cluster" in hv}
    )
    for hv in hostvars.values():
        if "pg_cluster" not in hv:
            continue
        ins = "%s-%s" % (hv["pg_cluster"], hv["pg_seq"])
        for path in ("pg/conf/pg_hba.conf", "etc/pgbackrest/pgbackrest.conf", "etc/patroni/config.yml", "plan.json"):
            assert (out / ins / path).exists(), (ins, path)
        # pgbouncer's files where it runs, and only there
        for path in ("etc/pgbouncer/pgb_hba.conf", "etc/pgbouncer/pgbouncer.ini"):
            assert (out / ins / path).exists() == (hv.get("pgbouncer_enabled") is not False), (ins, path)


def test_each_pigsty_setting_is_named_once(rendered):
    _, _, _, res = rendered
    lines = warnings_of(res)
    assert len(lines) == len(set(lines))
    named = []
    for line in lines:
        head = line.split(" (not implemented by this collection; cluster(s) ")[0]
        if head.startswith("Pigsty "):
            named += [
                (n, line.rsplit("cluster(s) ", 1)[1])
                for n in head.split(" settings ", 1)[1].split(": ", 1)[0].split(", ")
            ]
    assert len(named) == len(set(named))


EXPECTED_WARNINGS = {
    "ha3": [
        "haproxy_services holds Pigsty's node services",
        "Pigsty MINIO settings",
        "Pigsty REDIS settings",
        "storage_ca_file = '/etc/pki/ca.crt'",
    ],
    "secure": [
        "pg_listen = '${ip},${vip},${lo}'",
        "pg_extensions = ['pgaudit, set_user', 'credcheck']",
    ],
    "kernels": ["pg_mode = 'citus'", "pg_mode = 'mssql'", "pg_shard = 'pg-shard'", "pg_libs loads babelfishpg_tds"],
    "single": ["patroni_mode = 'remove'", "node_packages = ['openssh-server', 'tmux']"],
}


def test_expected_warnings(rendered):
    name, _, _, res = rendered
    text = " ".join(warnings_of(res))
    for start in EXPECTED_WARNINGS[name]:
        assert start in text, start


def test_hba_files_hold_pigsty_lines(rendered):
    """pg_hba.conf and pgb_hba.conf on disk: their active lines are the ones
    of the reference model of Pigsty's rendering (the unit tests compare the
    plans; this checks the files the roles write)."""
    _, inventory, out, _ = rendered
    hostvars, groups = ref.load_inventory(inventory)
    for host, hv in hostvars.items():
        if "pg_cluster" not in hv:
            continue
        ins = out / ("%s-%s" % (hv["pg_cluster"], hv["pg_seq"]))
        for name, kind in (("pg/conf/pg_hba.conf", "postgres"), ("etc/pgbouncer/pgb_hba.conf", "pgbouncer")):
            if kind == "pgbouncer" and hv.get("pgbouncer_enabled") is False:
                continue
            lines = (ins / name).read_text().splitlines()
            assert ref.effective(lines) == ref.routed_here_hba(hostvars, groups, host, kind), (host, name)


SERVER = re.compile(r"^\s+server (\S+) (\S+):(\d+) .*weight (\d+)( backup)?$")


def test_haproxy_fragments_hold_pigsty_servers(rendered):
    _, inventory, out, _ = rendered
    hostvars, groups = ref.load_inventory(inventory)
    published = {}
    for cluster in sorted({hv["pg_cluster"] for hv in hostvars.values() if "pg_cluster" in hv}):
        expected = ref.routed_here_services(hostvars, groups, cluster)
        for where in publishers(hostvars, groups, cluster):
            published.setdefault(where, []).extend(s["name"] + ".cfg" for s in expected)
    for where in sorted(os.listdir(out)):
        frags = out / where / "etc" / "haproxy" / "conf.d"
        assert sorted(os.listdir(frags) if frags.exists() else []) == sorted(published.get(where, [])), where
    for cluster in sorted({hv["pg_cluster"] for hv in hostvars.values() if "pg_cluster" in hv}):
        for where in publishers(hostvars, groups, cluster):
            for svc in ref.routed_here_services(hostvars, groups, cluster):
                check_fragment(out / where / "etc" / "haproxy" / "conf.d", svc)


def check_fragment(frags, svc):
    text = (frags / (svc["name"] + ".cfg")).read_text()
    assert "    bind %s:%d\n" % (svc["ip"], svc["port"]) in text
    assert "    maxconn %d\n" % svc["maxconn"] in text
    assert "    balance %s\n" % svc["balance"] in text
    # the listener's checked servers; a /read-only service's
    # fallback tier (tracking servers, its own backend) comes on top
    listen = text.split("\nbackend ", 1)[0]
    servers = [m.groups() for m in map(SERVER.match, listen.splitlines()) if m and " track " not in m.string]
    assert [(n, a, int(p), int(w), bool(b)) for n, a, p, w, b in servers] == svc["servers"], svc["name"]


@pytest.mark.skipif(not os.path.exists(HAPROXY), reason="no haproxy binary (make haproxy-bin)")
def test_fragments_pass_haproxy_check(rendered, tmp_path, stand_in_ca):
    _, _, out, _ = rendered
    base = tmp_path / "base.cfg"
    base.write_text(
        "global\n    maxconn 1000\ndefaults\n    timeout connect 3s\n    timeout client 1h\n    timeout server 1h\n"
    )
    env = dict(os.environ)
    libdir = os.path.join(REPO, ".cache", "haproxy", "usr", "lib", "x86_64-linux-gnu")
    if os.path.isdir(libdir):
        env["LD_LIBRARY_PATH"] = libdir
    for ins in sorted(os.listdir(out)):
        if ins == "prometheus":
            continue
        folder = out / ins / "etc" / "haproxy" / "conf.d"
        frags = sorted(folder.iterdir()) if folder.exists() else []
        if not frags:
            continue
        # the CA that check-ssl names, as a file of this machine
        copies = []
        for frag in frags:
            copies.append(tmp_path / ("%s-%s" % (ins, frag.name)))
            copies[-1].write_text(with_ca(frag.read_text(), stand_in_ca))
        cmd = [HAPROXY, "-c", "-f", str(base)] + [x for f in copies for x in ("-f", str(f))]
        res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        assert res.returncode == 0, (ins, res.stdout + res.stderr)


def test_pgbackrest_conf_spells_the_repository_as_pigsty(tmp_path_factory):
    """y/n flags and ${pg_cluster} reach pgbackrest.conf (secrets shown)."""
    out = tmp_path_factory.mktemp("secrets")
    res = playbook(
        "render.yml", "-i", os.path.join(FIXTURES, "ha3.yml"), "-e", "render_dir=%s" % out, "-e", "render_secrets=true"
    )
    assert res.returncode == 0, res.stdout[-3000:]
    conf = (out / "pg-orders-2" / "etc" / "pgbackrest" / "pgbackrest.conf").read_text()
    for line in (
        "repo1-bundle=y",
        "repo1-block=y",
        "beta=y",
        "repo1-cipher-pass=bk.pg-orders",
        "repo1-storage-port=9002",
        "repo1-bundle-limit=20MiB",
    ):
        assert line + "\n" in conf, line


def test_haproxy_role_ignores_pigsty_node_services(tmp_path):
    """A member whose inventory haproxy_services holds Pigsty's node
    services (ha3.yml's object store) publishes its cluster's services."""
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: 10.20.0.11\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - ansible.builtin.include_role:\n"
        "        name: pigpen.pgsql.haproxy\n"
        "        tasks_from: preflight.yml\n"
        "    - ansible.builtin.debug:\n"
        "        msg: \"SERVICES {{ haproxy_services | map(attribute='name') | join(',') }}\"\n"
    )
    env = dict(
        os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1", PATH=BIN + os.pathsep + os.environ.get("PATH", "")
    )
    res = subprocess.run(
        [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(FIXTURES, "ha3.yml"), str(play)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-3000:]
    assert (
        "SERVICES pg-orders-default,pg-orders-offline,pg-orders-primary,pg-orders-replica" in res.stdout
        or "SERVICES pg-orders-primary,pg-orders-replica,pg-orders-default,pg-orders-offline" in res.stdout
    ), res.stdout[-2000:]
