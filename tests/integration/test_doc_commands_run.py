# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Opt-in: run every runnable, non-destructive shell block of README.md and
docs/*.md against the running sandbox (``make sandbox``), so that what the
docs show still answers as they say.

    PIGPEN_DOCS_RUN=1 .venv/bin/pytest tests/integration/test_doc_commands_run.py

A block runs with ``bash -e -o pipefail``: every command must succeed,
including a ``grep`` that must find its line. Control-host blocks run from
the repository root; a block marked ``<!-- runnable: on HOST -->`` runs as
root on that node over SSH with the sandbox's key. Blocks marked
``destructive`` (deployments, switchovers, removals, restores) are only
checked statically (tests/unit/test_doc_commands.py). Without the variable,
or without the sandbox's SSH key, every case is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
sys.path.insert(0, os.path.join(REPO, "tests", "unit"))

from test_doc_commands import RUNNABLE, SANDBOX_KEY  # noqa: E402

ENABLED = os.environ.get("PIGPEN_DOCS_RUN") == "1"
KEY = os.path.join(REPO, SANDBOX_KEY)
BLOCKS = [b for b in RUNNABLE if not b.destructive]


@pytest.mark.skipif(not ENABLED, reason="set PIGPEN_DOCS_RUN=1 to run the docs' commands on the sandbox")
@pytest.mark.skipif(ENABLED and not os.path.exists(KEY), reason="no sandbox (make sandbox)")
@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_block_runs_on_the_sandbox(block):
    bash = ["bash", "-e", "-o", "pipefail", "-s"]
    if block.where:
        cmd = [
            "ssh",
            "-i",
            KEY,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "root@" + block.where,
        ] + bash
    else:
        cmd = bash
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    res = subprocess.run(
        cmd, input=block.text, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert res.returncode == 0, "%s (%s):\n%s\n--- stdout\n%s\n--- stderr\n%s" % (
        block.id,
        block.where or "control host",
        block.text,
        res.stdout[-3000:],
        res.stderr[-3000:],
    )
