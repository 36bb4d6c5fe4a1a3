# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Cron schedules of pg_crontab: hand-checked fields, gaps and backup types."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import cron

HOUR, DAY = 3600, 86400


@pytest.mark.parametrize("text, low, high, names, expected", [
    ("*/15", 0, 59, None, {0, 15, 30, 45}),
    ("1-5", 0, 23, None, {1, 2, 3, 4, 5}),
    ("10-20/5", 0, 59, None, {10, 15, 20}),
    ("5/20", 0, 59, None, {5, 25, 45}),          # from 5 to the end, every 20
    ("1,3,5", 1, 31, None, {1, 3, 5}),
    ("jan,Jul", 1, 12, cron._MONTHS, {1, 7}),
    ("mon-fri", 0, 7, cron._DAYS, {1, 2, 3, 4, 5}),
    ("*", 1, 12, None, set(range(1, 13))),
])
def test_parse_field(text, low, high, names, expected):
    assert cron.parse_field(text, low, high, names) == frozenset(expected)


@pytest.mark.parametrize("text, low, high", [
    ("60", 0, 59), ("5-1", 0, 59), ("*/0", 0, 59), ("", 0, 59), ("1,,2", 0, 59), ("x", 0, 59),
    ("0", 1, 31), ("*/x", 0, 59),
])
def test_parse_field_refuses(text, low, high):
    with pytest.raises(cron.CronError):
        cron.parse_field(text, low, high)


def test_sunday_is_0_and_7():
    for field in ("0", "7", "sun"):
        assert cron.Schedule(["0", "0", "*", "*", field]).dow == frozenset({7})


# (pg_crontab time fields, longest gap in seconds), worked out by hand
@pytest.mark.parametrize("schedules, gap", [
    ([["00", "01", "*", "*", "*"]], DAY),                                   # daily
    ([["00", "01", "*", "*", "*"], ["00", "*/4", "*", "*", "*"]], 4 * HOUR),  # + every 4 h
    ([["00", "01", "*", "*", "0"]], 7 * DAY),                               # weekly
    ([["0", "1", "*", "*", "1-5"]], 3 * DAY),                               # Friday to Monday
    ([["0", "1", "*", "*", "0"], ["0", "1", "*", "*", "1-6"]], DAY),        # full Sun + diff Mon-Sat
    ([["0", "0", "31", "*", "*"]], 61 * DAY),                               # Aug 31 -> Oct 31
    ([["0", "0", "1", "1", "*"]], 366 * DAY),                               # yearly, over 2024
    ([["0", "0", "29", "2", "*"]], 1461 * DAY),                             # Feb 29: 2024 -> 2028
    ([["0", "0", "13", "*", "5"]], 7 * DAY),                                # the 13th OR a Friday
    ([["0", "*/5", "*", "*", "*"]], 5 * HOUR),                              # 0, 5, ..., 20, then 4 h
    ([["*/7", "*", "*", "*", "*"]], 7 * 60),                                # 56 -> 60 is shorter
    ([["0", "0", "30", "2", "*"]], None),                                   # never
])
def test_max_gap(schedules, gap):
    assert cron.max_gap_seconds(schedules) == gap


def test_max_gap_does_not_depend_on_order():
    # 00:30, 01:00, 06:30, 12:30, 18:30, 00:30: at most 6 hours apart
    a, b = ["00", "01", "*", "*", "*"], ["30", "*/6", "*", "*", "*"]
    assert cron.max_gap_seconds([a, b]) == cron.max_gap_seconds([b, a]) == 6 * HOUR


@given(st.integers(min_value=1, max_value=23), st.integers(min_value=0, max_value=59))
def test_every_n_hours(n, minute):
    """``m */n * * *`` runs at 0, n, ..., k*n (k*n <= 23): gaps of n hours,
    and 24 - k*n from the last run of a day to the first of the next."""
    last = (23 // n) * n
    assert cron.max_gap_seconds([[str(minute), "*/%d" % n, "*", "*", "*"]]) == \
        max(n, 24 - last) * HOUR


@pytest.mark.parametrize("command, kind", [
    ("/usr/local/bin/pg-backup full", "full"),
    ("/usr/local/bin/pg-backup diff", "diff"),
    ("pg-backup incr", "incr"),
    ("pg-backup", "incr"),                      # incremental, or full when none exists
    ("runuser -u postgres -- /usr/local/bin/pg-backup full", "full"),
    ("pgbackrest --stanza=pg-test backup", "incr"),
    ("pgbackrest --stanza=pg-test --type=full backup", "full"),
    ("pgbackrest --stanza=pg-test --type diff backup", "diff"),
    ("pgbackrest --stanza=pg-test expire", None),
    ("pgbackrest --stanza=pg-test --type=weird backup", None),
    ("echo backup", None),
    ("vacuumdb --all", None),
])
def test_backup_type(command, kind):
    assert cron.backup_type(command) == kind


def test_backup_entries():
    entries = [
        "00 01 * * 0 /usr/local/bin/pg-backup full",
        "00 01 * * 1-6 /usr/local/bin/pg-backup diff",
        "00 */4 * * * /usr/local/bin/pg-backup",
        "@daily pgbackrest --stanza=pg-test --type=full backup",
        "@reboot /usr/local/bin/pg-backup full",     # never repeats: no schedule
        "61 * * * * /usr/local/bin/pg-backup full",  # malformed: the model reports it
        "*/5 * * * * /usr/local/bin/vacuum-something",
        42,
    ]
    assert cron.backup_entries(entries) == {
        "full": [["00", "01", "*", "*", "0"], ["0", "0", "*", "*", "*"]],
        "diff": [["00", "01", "*", "*", "1-6"]],
        "incr": [["00", "*/4", "*", "*", "*"]],
    }
    assert cron.backup_entries([]) == {} and cron.backup_entries(None) == {}


@pytest.mark.parametrize("entry", ["", "@reboot x", "@often x", "1 2 3 4"])
def test_split_entry_refuses(entry):
    with pytest.raises(cron.CronError):
        cron.split_entry(entry)
