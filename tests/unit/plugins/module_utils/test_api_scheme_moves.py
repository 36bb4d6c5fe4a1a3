# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""patroni_conf.api_scheme_moves and the pg_api_moves filter: which members'
REST API a run of pgsql.yml moves between HTTP and HTTPS (hand-checked
cases and a property)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.filter import pgsql
from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_conf import api_scheme_moves

MEMBERS = [
    {"host": "10.10.10.11", "patroni_url": "https://10.10.10.11:8008"},
    {"host": "10.10.10.12", "patroni_url": "https://10.10.10.12:8008"},
    # the function compares member by member (validation keeps one scheme
    # per cluster: patroni_ssl_enabled is cluster-wide)
    {"host": "10.10.10.13", "patroni_url": "http://10.10.10.13:8008"},
]


def test_moves_are_per_member():
    # as configured: nothing moves, although the members serve different schemes
    assert api_scheme_moves(MEMBERS, {"10.10.10.11": "https", "10.10.10.12": "https", "10.10.10.13": "http"}) == []
    # an upgrade of a cluster deployed on HTTP: the two HTTPS members move
    everyone_http = dict.fromkeys(["10.10.10.11", "10.10.10.12", "10.10.10.13"], "http")
    assert api_scheme_moves(MEMBERS, everyone_http) == ["10.10.10.11", "10.10.10.12"]
    # a new member (no configuration) with HTTP members: the old ones still move
    assert api_scheme_moves(MEMBERS, {"10.10.10.11": "none", "10.10.10.12": "http"}) == ["10.10.10.12"]
    # unreadable or unknown answers are no move
    assert api_scheme_moves(MEMBERS, {"10.10.10.11": "", "10.10.10.12": None, "10.10.10.13": "garbage"}) == []
    assert pgsql.pg_api_moves(MEMBERS, everyone_http) == ["10.10.10.11", "10.10.10.12"]
    assert pgsql.pg_api_moves(None, None) == []


def test_moves_to_one_scheme():
    # back to HTTP: those members' Patroni restarts (with the cluster paused)
    everyone_https = dict.fromkeys(["10.10.10.11", "10.10.10.12", "10.10.10.13"], "https")
    assert api_scheme_moves(MEMBERS, everyone_https, "http") == ["10.10.10.13"]
    assert api_scheme_moves(MEMBERS, everyone_https, "https") == []
    everyone_http = dict.fromkeys(["10.10.10.11", "10.10.10.12", "10.10.10.13"], "http")
    assert api_scheme_moves(MEMBERS, everyone_http, "http") == []
    assert pgsql.pg_api_moves(MEMBERS, everyone_http, "https") == ["10.10.10.11", "10.10.10.12"]
    with pytest.raises(AnsibleFilterError, match="to must be http or https"):
        pgsql.pg_api_moves(MEMBERS, everyone_http, "ftp")


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["http", "https", "none", ""])), min_size=1, max_size=5))
def test_a_member_moves_exactly_when_it_serves_the_other_scheme(spec):
    members = [
        {"host": "h%d" % i, "patroni_url": ("https" if tls else "http") + "://h%d:8008" % i}
        for i, (tls, _) in enumerate(spec)
    ]
    current = {"h%d" % i: now for i, (_, now) in enumerate(spec)}
    moved = api_scheme_moves(members, current)
    for i, (tls, now) in enumerate(spec):
        assert ("h%d" % i in moved) == (now in ("http", "https") and (now == "https") != tls)
    # the moves to each scheme split the moves
    assert sorted(api_scheme_moves(members, current, "http") + api_scheme_moves(members, current, "https")) == sorted(
        moved
    )
    # once every member serves what the model says, nothing moves
    done = {m["host"]: m["patroni_url"].split(":", 1)[0] for m in members}
    assert api_scheme_moves(members, done) == []
