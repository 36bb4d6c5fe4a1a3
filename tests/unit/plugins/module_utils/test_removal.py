# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pgsql-rm.yml: a member whose Patroni gives no clear answer may be the
leader (removal.py)."""

from __future__ import annotations

import pytest

from ansible_collections.pigpen.pgsql.plugins.module_utils.removal import removal_leaders

NAMES = {"10.10.10.11": "pg-test-1", "10.10.10.12": "pg-test-2", "10.10.10.13": "pg-test-3"}


def view(leader):
    return {
        "members": [
            {"name": leader, "role": "leader", "state": "running"},
            {"name": "pg-test-2", "role": "replica", "state": "running"},
        ]
    }


@pytest.mark.parametrize(
    "answers, views, expected",
    [
        # clear answers
        ({"10.10.10.13": 503}, [], ([], [], [])),
        ({"10.10.10.11": 200, "10.10.10.13": 503}, [], (["10.10.10.11"], [], [])),
        # no answer: may be the leader (it was "not the leader" before)
        ({"10.10.10.13": -1}, [], ([], ["10.10.10.13"], [])),
        ({"10.10.10.13": 500}, [None, "timeout"], ([], ["10.10.10.13"], [])),
        # a member that stays names another leader: settled
        ({"10.10.10.13": -1}, [view("pg-test-1")], ([], [], ["10.10.10.13"])),
        # ... but not when the leader it names is one being removed
        ({"10.10.10.13": -1}, [view("pg-test-3")], ([], ["10.10.10.13"], [])),
        ({"10.10.10.12": 503, "10.10.10.13": "-1"}, [{"members": []}], ([], ["10.10.10.13"], [])),
    ],
)
def test_removal_leaders(answers, views, expected):
    got = removal_leaders(answers, NAMES, views)
    assert (got["leaders"], got["unknown"], got["settled"]) == expected
    assert got["last"] == got["leaders"] + got["unknown"]
