# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The systemd hardening of the units (docs/security.md lists it): every
unit gets exactly the options below, the drop-ins of Debian's units are
read by systemd before the unit's next start without restarting a running
service, and pg-vip keeps only the capabilities it needs."""

from __future__ import annotations

import os
import re

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, os.pardir))

# unit -> (file, task name or None for a template) -> options
EXPECTED = {
    "patroni.service": (
        "roles/patroni/tasks/configure.yml",
        "Harden Patroni's unit",
        {"NoNewPrivileges": "true", "ProtectSystem": "full"},
    ),
    "pgbouncer.service": (
        "roles/pgbouncer/tasks/configure.yml",
        "Harden pgbouncer's unit",
        {"NoNewPrivileges": "true", "ProtectSystem": "full", "PrivateTmp": "true"},
    ),
    "haproxy.service": (
        "roles/haproxy/tasks/configure.yml",
        "Harden HAProxy's unit",
        {"NoNewPrivileges": "true", "ProtectSystem": "full", "ProtectHome": "true", "PrivateTmp": "true"},
    ),
    "etcd.service": (
        "roles/etcd/tasks/configure.yml",
        "Harden etcd's unit",
        {"NoNewPrivileges": "true", "ProtectSystem": "full", "ProtectHome": "true", "PrivateTmp": "true"},
    ),
    "patroni-watch.service": (
        "roles/patroni/templates/patroni-watch.service.j2",
        None,
        {"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true"},
    ),
    "pgbouncer-watch.service": (
        "roles/pgbouncer/templates/pgbouncer-watch.service.j2",
        None,
        {"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true"},
    ),
    "pg-vip.service": (
        "roles/vip/templates/pg-vip.service.j2",
        None,
        {
            "NoNewPrivileges": "true",
            "CapabilityBoundingSet": "CAP_NET_ADMIN CAP_NET_RAW",
            "ProtectSystem": "strict",
            "ProtectHome": "true",
            "PrivateTmp": "true",
        },
    ),
    "pgbackrest-exporter.service": (
        "roles/exporters/templates/pgbackrest-exporter.service.j2",
        None,
        {"NoNewPrivileges": "true", "ProtectSystem": "full", "ProtectHome": "read-only", "PrivateTmp": "false"},
    ),
    "pigpen-cert-metrics.service": (
        "roles/exporters/templates/pigpen-cert-metrics.service.j2",
        None,
        {
            "NoNewPrivileges": "true",
            "ProtectSystem": "strict",
            "ReadWritePaths": "{{ __exporters_textfile_dir }}",
            "ProtectHome": "true",
            "PrivateTmp": "true",
        },
    ),
    "pigpen-vmalert.service": (
        "roles/exporters/templates/pigpen-vmalert.service.j2",
        None,
        {"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true"},
    ),
    "pigpen-alert-recorder.service": (
        "roles/exporters/templates/pigpen-alert-recorder.service.j2",
        None,
        {"NoNewPrivileges": "true", "ProtectSystem": "strict", "ProtectHome": "true", "PrivateTmp": "true"},
    ),
}
HARDENING = (
    "NoNewPrivileges",
    "ProtectSystem",
    "ProtectHome",
    "PrivateTmp",
    "CapabilityBoundingSet",
    "ReadWritePaths",
    "PrivateDevices",
)


def unit_text(path, task):
    with open(os.path.join(REPO, path), encoding="utf-8") as fh:
        if task is None:
            return fh.read()
        tasks = {t.get("name"): t for t in yaml.safe_load(fh)}
    return tasks[task]["ansible.builtin.copy"]["content"]


def hardening(text):
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+)=(.*)$", line.strip())
        if m and m.group(1) in HARDENING:
            out[m.group(1)] = m.group(2)
    return out


@pytest.mark.parametrize("unit", sorted(EXPECTED))
def test_unit_hardening(unit):
    path, task, expected = EXPECTED[unit]
    assert hardening(unit_text(path, task)) == expected


@pytest.mark.parametrize(
    "role, register, start",
    [
        ("patroni", "__patroni_hardening", "Enable Patroni"),
        ("pgbouncer", "__pgbouncer_hardening", None),
        ("haproxy", "__haproxy_hardening", None),
        ("etcd", "__etcd_hardening", None),
    ],
)
def test_debian_units_read_before_their_start_without_a_restart(role, register, start):
    """The drop-in registers its result, and the task that enables or
    starts the unit has systemd read it (daemon_reload); no handler
    restarts the service for it."""
    with open(os.path.join(REPO, "roles", role, "tasks", "configure.yml"), encoding="utf-8") as fh:
        configure = yaml.safe_load(fh)
    task = [t for t in configure if t.get("register") == register]
    assert len(task) == 1 and "notify" not in task[0]
    with open(os.path.join(REPO, "roles", role, "tasks", "service.yml"), encoding="utf-8") as fh:
        service = yaml.safe_load(fh)
    reloads = [
        t
        for t in service
        if "ansible.builtin.systemd_service" in t
        and register in str(t["ansible.builtin.systemd_service"].get("daemon_reload", ""))
    ]
    assert reloads, "%s/tasks/service.yml does not reload systemd for %s" % (role, register)
    if start:
        assert reloads[0]["name"] == start


def test_docs_list_every_hardened_unit():
    with open(os.path.join(REPO, "docs", "security.md"), encoding="utf-8") as fh:
        text = fh.read()
    for unit, (_, _, options) in EXPECTED.items():
        row = [line for line in text.splitlines() if line.startswith("| `%s`" % unit)]
        assert row, "docs/security.md has no row for %s" % unit
        for name, value in options.items():
            assert "%s=%s" % (name, value) in row[0], (unit, name)
