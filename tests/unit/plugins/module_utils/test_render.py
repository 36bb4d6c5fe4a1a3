# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Tests of plugins/module_utils/render.py: where a rendered file goes,
what a node adds to pg_hba.conf, secrets masked on both sides of a
comparison, and the tuning line of the console."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import render, settings as settings_mod

PATRONI = """\
# Patroni configuration of pg-test-1, cluster pg-test
postgresql:
  authentication:
    replication:
      username: replicator
      password: '********'
  parameters:
    max_connections: 100
restapi:
  authentication:
    username: patroni
    password: '********'
"""
PATRONI_FULL = PATRONI.replace("'********'", "'Repl.Secret'", 1).replace("'********'", "Api.Secret")


def test_mask_is_the_models():
    assert render.MASK == settings_mod.MASK


@pytest.mark.parametrize(
    "node_path, expected",
    [
        ("/etc/patroni/config.yml", "out/pg-test-1/etc/patroni/config.yml"),
        ("/pg/conf/pg_hba.conf", "out/pg-test-1/pg/conf/pg_hba.conf"),
        ("/etc//haproxy/conf.d/./a.cfg", "out/pg-test-1/etc/haproxy/conf.d/a.cfg"),
    ],
)
def test_render_path_mirrors_the_node(node_path, expected):
    assert render.render_path("out", "pg-test-1", node_path) == expected


@pytest.mark.parametrize("node_path", ["etc/patroni/config.yml", "/", "/pg/.."])
def test_render_path_refuses_what_is_not_a_file_path(node_path):
    with pytest.raises(ValueError):
        render.render_path("out", "pg-test-1", node_path)


def test_patroni_header_is_not_a_difference():
    lines = "host all all 10.0.0.0/8 scram-sha-256\n"
    live = "\n".join(render.PATRONI_HBA_HEADER) + "\n" + lines
    assert render.normalize_live("/pg/conf/pg_hba.conf", live) == lines
    assert render.compare("/pg/conf/pg_hba.conf", lines, lines, live)["state"] == "same"
    # only pg_hba.conf, and only the two lines on top
    assert render.normalize_live("/etc/pgbouncer/pgb_hba.conf", live) == live
    assert render.normalize_live("/pg/conf/pg_hba.conf", lines + live) == lines + live


def test_secret_lines_of_a_masked_file():
    assert render.secret_lines(PATRONI) == {
        "      password: ": "      password: '********'",
        "    password: ": "    password: '********'",
    }


def test_a_changed_secret_is_said_but_never_shown():
    live = PATRONI_FULL.replace("Api.Secret", "Changed.By.Hand")
    found = render.compare(
        "/etc/patroni/config.yml", PATRONI_FULL, PATRONI, live, secrets={"Repl.Secret", "Api.Secret"}
    )
    assert found == {"path": "/etc/patroni/config.yml", "state": "secrets", "diff": ""}


def test_a_diff_masks_both_sides():
    live = (
        PATRONI_FULL.replace("Api.Secret", "Changed.By.Hand").replace("max_connections: 100", "max_connections: 200")
        + "  note: Repl.Secret\n"
    )
    found = render.compare(
        "/etc/patroni/config.yml",
        PATRONI_FULL,
        PATRONI,
        live,
        secrets={"Repl.Secret", "Api.Secret"},
        label="pg-test-1:x",
    )
    assert found["state"] == "differs"
    assert "-    max_connections: 100\n+    max_connections: 200\n" in found["diff"]
    assert "+  note: ********\n" in found["diff"]
    for secret in ("Repl.Secret", "Api.Secret", "Changed.By.Hand"):
        assert secret not in found["diff"]
    assert found["diff"].startswith("--- render:pg-test-1:x\n+++ node:pg-test-1:x\n")


def test_a_secret_the_render_does_not_know_is_masked_by_its_key():
    shown = render.mask_like("repo1-s3-key-secret=AbC123\nrepo1-path=/pg\n  \"password\": \"xyz\",\n", "")
    assert shown == 'repo1-s3-key-secret=********\nrepo1-path=/pg\n  "password": ********\n'


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_mask_like_never_shows_a_known_secret(text):
    secret = "S3cr3t-Value"
    assert secret not in render.mask_like(text + secret + text, PATRONI, {secret})


def test_missing_and_same():
    assert render.compare("/a", "x\n", "x\n", None)["state"] == "missing"
    assert render.compare("/a", "x\n", "x\n", "x\n")["state"] == "same"


def test_tuning_note_groups_instances_by_size_and_source():
    note = render.tuning_note(
        {
            "pg-test-2": {"source": "reference", "mem_mb": 4096, "cpu": 2},
            "pg-test-1": {"source": "reference", "mem_mb": 4096, "cpu": 2},
            "pg-meta-1": {"source": "facts", "mem_mb": 7982, "cpu": 4},
        }
    )
    assert note == (
        "Tuned for pg-meta-1: 7982 MiB, 4 CPU(s), from the gathered facts; "
        "pg-test-1, pg-test-2: 4096 MiB, 2 CPU(s), from the reference node "
        "(no facts gathered)"
    )
