# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""module_utils/patroni_api.py: the PATCH /config computation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_api import (
    config_patch,
    merge,
    restart_parameters,
    same_value,
    standby_change,
)

CURRENT = {
    "ttl": 30,
    "loop_wait": 5,
    "retry_timeout": 10,
    "maximum_lag_on_failover": 1048576,
    "synchronous_mode": False,
    "failsafe_mode": True,
    "postgresql": {
        "use_pg_rewind": True,
        "use_slots": True,
        "parameters": {"max_connections": "200", "wal_level": "logical", "archive_command": "/bin/true"},
    },
}


@pytest.mark.parametrize(
    "current, desired",
    [
        ("200", 200),
        (200, "200"),
        ("on", True),
        ("off", False),
        (True, "true"),
        ("logical", "logical"),
        (1048576, "1048576"),
        (" x ", "x"),
    ],
)
def test_same_value(current, desired):
    assert same_value(current, desired)


@pytest.mark.parametrize(
    "current, desired",
    [
        ("200", 201),
        (None, False),
        (False, None),
        ("on", "off"),
        ("1", True),
        ("replica", "logical"),
        ({"a": 1}, {"a": 2}),
        ([1], [2]),
    ],
)
def test_different_value(current, desired):
    assert not same_value(current, desired)


@pytest.mark.parametrize(
    "desired, patch",
    [
        # nothing differs (types differ only in spelling)
        ({"ttl": "30", "postgresql": {"parameters": {"max_connections": 200}}}, {}),
        # a timing
        ({"ttl": 60, "loop_wait": 5}, {"ttl": 60}),
        # a new key
        ({"synchronous_mode_strict": False}, {"synchronous_mode_strict": False}),
        # nested parameter, siblings untouched
        (
            {"postgresql": {"parameters": {"max_connections": "300", "wal_level": "logical"}}},
            {"postgresql": {"parameters": {"max_connections": "300"}}},
        ),
        # remove a key that exists; ignore removing one that does not
        ({"failsafe_mode": None, "standby_cluster": None}, {"failsafe_mode": None}),
        # a whole new mapping
        (
            {"standby_cluster": {"host": "10.0.0.1", "port": 5432}},
            {"standby_cluster": {"host": "10.0.0.1", "port": 5432}},
        ),
        # synchronous mode on
        ({"synchronous_mode": True}, {"synchronous_mode": True}),
        # drop a slot from a DCS that has no slots at all: nothing to send
        ({"slots": {"standby_pg_dr": None}}, {}),
        # a new mapping is sent without the keys it removes
        (
            {"slots": {"standby_pg_dr": None, "standby_pg_x": {"type": "physical"}}},
            {"slots": {"standby_pg_x": {"type": "physical"}}},
        ),
    ],
)
def test_config_patch(desired, patch):
    assert config_patch(CURRENT, desired) == patch


def test_patch_of_empty_current_is_desired():
    desired = {"ttl": 30, "postgresql": {"parameters": {"a": "1"}}}
    assert config_patch({}, desired) == desired
    assert config_patch(None, desired) == desired


def test_a_slot_is_dropped_once():
    current = {"slots": {"standby_pg_dr": {"type": "physical"}, "standby_pg_x": {"type": "physical"}}}
    patch = config_patch(current, {"slots": {"standby_pg_dr": None}})
    assert patch == {"slots": {"standby_pg_dr": None}}
    after = merge(current, patch)
    assert after == {"slots": {"standby_pg_x": {"type": "physical"}}}
    assert config_patch(after, {"slots": {"standby_pg_dr": None}}) == {}


def test_restart_parameters():
    patch = {
        "ttl": 60,
        "postgresql": {"parameters": {"max_connections": "300", "archive_command": "x", "wal_level": "replica"}},
    }
    assert restart_parameters(patch) == ["max_connections", "wal_level"]
    assert restart_parameters({"ttl": 60}) == []


def test_merge_applies_like_patroni():
    patch = {"ttl": 60, "failsafe_mode": None, "postgresql": {"parameters": {"max_connections": "300"}}}
    out = merge(CURRENT, patch)
    assert out["ttl"] == 60 and "failsafe_mode" not in out
    assert out["postgresql"]["parameters"] == {
        "max_connections": "300",
        "wal_level": "logical",
        "archive_command": "/bin/true",
    }
    assert CURRENT["ttl"] == 30  # input untouched


_scalars = st.one_of(st.booleans(), st.integers(-5, 5), st.sampled_from(["on", "off", "a", "b", "1"]))
_configs = st.recursive(
    st.dictionaries(st.sampled_from("abcd"), _scalars, max_size=4),
    lambda inner: st.dictionaries(st.sampled_from("abcd"), st.one_of(_scalars, inner), max_size=4),
    max_leaves=12,
)


@given(_configs, _configs)
def test_patch_converges(current, desired):
    """After the patch nothing differs any more, and patching again is empty."""
    after = merge(current, config_patch(current, desired))
    assert config_patch(after, desired) == {}


@given(_configs)
def test_no_patch_against_itself(config):
    assert config_patch(config, config) == {}


# ------------------------------------------------------------ standby_change


@pytest.mark.parametrize(
    "current, desired, allow, pushed, refused",
    [
        # agree: ordinary / standby (another upstream is no change of role)
        ({"ttl": 30}, {"ttl": 30}, False, {"ttl": 30}, None),
        (
            {"standby_cluster": {"host": "a"}},
            {"standby_cluster": {"host": "b"}},
            False,
            {"standby_cluster": {"host": "b"}},
            None,
        ),
        # an empty or null standby_cluster in the DCS is no standby cluster
        ({"standby_cluster": None}, {"ttl": 1}, False, {"ttl": 1}, None),
        ({"standby_cluster": {}}, {"ttl": 1}, False, {"ttl": 1}, None),
        # promoted in the DCS, standby in the inventory
        ({}, {"standby_cluster": {"host": "a", "port": 5432}}, False, None, "ordinary cluster in its DCS"),
        (
            {},
            {"standby_cluster": {"host": "a", "port": 5432}},
            True,
            {"standby_cluster": {"host": "a", "port": 5432}},
            None,
        ),
        # standby in the DCS, ordinary in the inventory
        ({"standby_cluster": {"host": "a"}}, {"ttl": 1}, False, None, "is a standby cluster following a in its DCS"),
        ({"standby_cluster": {"host": "a"}}, {"ttl": 1}, True, {"ttl": 1, "standby_cluster": None}, None),
        # a paused standby cluster is not promoted (Patroni would drop its leader key)
        ({"standby_cluster": {"host": "a"}, "pause": True}, {"ttl": 1}, True, None, "is paused (maintenance mode)"),
    ],
)
def test_standby_change(current, desired, allow, pushed, refused):
    out, refusal = standby_change(current, desired, "pg-dr", allow)
    if refused is None:
        assert refusal is None and out == pushed
    else:
        assert refused in refusal and "pg-dr" in refusal and "Nothing was sent" in refusal


@pytest.mark.parametrize(
    "current, desired, running, refused",
    [
        # a running primary is never demoted: Patroni would stop it at once
        ({}, {"standby_cluster": {"host": "b", "port": 5432}}, "pg-dr-1", "runs its primary (pg-dr-1)"),
        ({}, {"standby_cluster": {"host": "b", "port": 5432}}, None, None),
        # a running primary of a cluster that stays ordinary, or a re-pointed standby cluster: no matter
        ({}, {"ttl": 1}, "pg-dr-1", None),
        ({"standby_cluster": {"host": "a"}}, {"standby_cluster": {"host": "b"}}, "pg-dr-1", None),
    ],
)
def test_standby_change_never_demotes_a_running_primary(current, desired, running, refused):
    out, refusal = standby_change(current, desired, "pg-dr", True, running)
    if refused is None:
        assert refusal is None and out == desired
    else:
        assert refused in refusal and "pg-dr" in refusal and "Nothing was sent" in refusal


@given(
    have=st.sampled_from([None, {}, {"host": "a"}]),
    want=st.sampled_from([None, {"host": "b"}]),
    allow=st.booleans(),
)
def test_standby_change_refuses_exactly_a_change_of_role_without_leave(have, want, allow):
    current = {} if have is None else {"standby_cluster": have}
    desired = {"ttl": 1} if want is None else {"ttl": 1, "standby_cluster": want}
    out, refusal = standby_change(current, desired, "c", allow)
    changes_role = bool(have) != bool(want)
    assert (refusal is not None) == (changes_role and not allow)
    if refusal is None:
        # what is pushed leaves the DCS exactly as the inventory says
        after = merge(current, config_patch(current, out))
        assert bool(after.get("standby_cluster")) == bool(want)
