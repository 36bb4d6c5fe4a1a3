# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""bench/ha_table.py --clients: per-client outage of one result file, or
two side by side (hand-checked rows)."""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "bench"))
import ha_table  # noqa: E402


def _write(tmp_path, name, scenarios):
    path = tmp_path / name
    path.write_text(json.dumps({"series": {"molecule": {"scenarios": scenarios}}}))
    return str(path)


def test_clients_table_one_and_two_files(tmp_path):
    a = _write(
        tmp_path,
        "a.json",
        {
            "switchover": {"clients_outage_s": {"write-rw": {"median": 2.54}, "read-standby": {"median": 0.18}}},
            "pg-crash": {"clients_outage_s": {"write-rw": {"median": 3.5}}},
        },
    )
    b = _write(tmp_path, "b.json", {"switchover": {"clients_outage_s": {"write-rw": {"median": 2.96}}}})
    one = ha_table.clients_table([a])
    assert one[0].startswith("| scenario | write-rw | write-primary |")
    assert one[2] == "| switchover | 2.5 | - | - | - | 0.2 | - |"
    assert one[3] == "| pg-crash | 3.5 | - | - | - | - | - |"
    two = ha_table.clients_table([a, b])
    # rows follow the first file; a scenario missing from the second is "-"
    assert two[2] == "| switchover | 2.5 / 3.0 | - / - | - / - | - / - | 0.2 / - | - / - |"
    assert two[3].startswith("| pg-crash | 3.5 / - |")
