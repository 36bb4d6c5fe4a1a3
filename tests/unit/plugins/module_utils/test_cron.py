# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg_crontab and node_crontab: the cron.d lines and the refused entries;
the schedules of pg_crontab: hand-checked fields, gaps and backup types."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import cron


@pytest.mark.parametrize(
    "entry, dbsu, line",
    [
        # the collection's own form: schedule and command
        ("00 01 * * * /usr/local/bin/pg-backup full", "postgres", "00 01 * * * postgres /usr/local/bin/pg-backup full"),
        # Pigsty's form, with the dbsu as user field and Pigsty's backup path
        (
            "00 01 * * * postgres /pg/bin/pg-backup full",
            "postgres",
            "00 01 * * * postgres /usr/local/bin/pg-backup full",
        ),
        ("00 01 * * * /pg/bin/pg-backup full", "postgres", "00 01 * * * postgres /usr/local/bin/pg-backup full"),
        ("@hourly  pg-backup incr", "postgres", "@hourly postgres pg-backup incr"),
        ("@daily postgres psql -c 'select 1'", "postgres", "@daily postgres psql -c 'select 1'"),
        # another dbsu: its name is the user field
        (
            "*/5 * * * 1-5 dbsu /usr/local/bin/pg-backup incr",
            "dbsu",
            "*/5 * * * 1-5 dbsu /usr/local/bin/pg-backup incr",
        ),
        # a command merely starting like Pigsty's path is left alone
        ("0 0 * * * /pg/bin/pg-backup2 full", "postgres", "0 0 * * * postgres /pg/bin/pg-backup2 full"),
    ],
)
def test_pg_crontab_lines(entry, dbsu, line):
    assert cron.pg_crontab_lines([entry], dbsu) == [line]
    assert cron.pg_crontab_problems("pg-test", [entry], dbsu) == []


@pytest.mark.parametrize(
    "entries, field, what",
    [
        ("00 01 * * * x", "pg_crontab", "is not a list"),
        (["01 * * pg-backup"], "pg_crontab[0]", "is not a cron entry"),
        (["@often pg-backup"], "pg_crontab[0]", "is not a cron entry"),
        (["00 01 * * *"], "pg_crontab[0]", "is not a cron entry"),
        ([["00 01 * * * x"]], "pg_crontab[0]", "is not a one-line string"),
        (["00 01 * * * x\n00 02 * * * y"], "pg_crontab[0]", "is not a one-line string"),
        (
            ["00 01 * * * root /usr/local/bin/pg-backup full"],
            "pg_crontab[0]",
            "names root as its user, but pg_crontab entries run as pg_dbsu (postgres)",
        ),
        (["00 01 * * * postgres"], "pg_crontab[0]", "has a user (postgres) but no command"),
    ],
)
def test_pg_crontab_refused(entries, field, what):
    found = cron.pg_crontab_problems("pg-test", entries, "postgres")
    assert [(p.cluster, p.field, p.what) for p in found] == [("pg-test", field, what)]
    assert "fix: " in str(found[0])


def test_pg_crontab_of_another_dbsu_refuses_postgres_as_user():
    (p,) = cron.pg_crontab_problems("pg-test", ["0 1 * * * postgres /pg/bin/pg-backup full"], "dbsu")
    assert p.what == "names postgres as its user, but pg_crontab entries run as pg_dbsu (dbsu)"


def test_pg_crontab_other_user_names_the_fix():
    (p,) = cron.pg_crontab_problems("pg-test", ["0 1 * * * root /sbin/fstrim -a"], "postgres")
    assert str(p) == (
        "cluster pg-test: pg_crontab[0] = '0 1 * * * root /sbin/fstrim -a': names root as its "
        "user, but pg_crontab entries run as pg_dbsu (postgres); fix: remove root from the "
        "entry to run it as postgres, or move it to node_crontab, whose entries name their user"
    )


@pytest.mark.parametrize(
    "entry, line",
    [
        ("00 01 * * * postgres /pg/bin/pg-backup full", "00 01 * * * postgres /usr/local/bin/pg-backup full"),
        ("@reboot root /usr/bin/true", "@reboot root /usr/bin/true"),
        ("0  3 * * 0  root  /sbin/fstrim -a", "0 3 * * 0 root /sbin/fstrim -a"),
    ],
)
def test_node_crontab_lines(entry, line):
    assert cron.node_crontab_lines([entry]) == [line]
    assert cron.node_crontab_problems("pg-test", "10.10.10.11", [entry]) == []


@pytest.mark.parametrize(
    "entry, what",
    [
        ("00 01 * * * /pg/bin/pg-backup full", "has no user field"),
        ("00 01 * * * postgres", "has no user field"),
        ("00 01 * *", "is not a cron entry"),
    ],
)
def test_node_crontab_refused(entry, what):
    (p,) = cron.node_crontab_problems("pg-test", "10.10.10.11", [entry])
    assert (p.host, p.field) == ("10.10.10.11", "node_crontab[0]")
    assert p.what.startswith(what)
    assert cron.node_crontab_lines([entry]) == []


_field = st.sampled_from(["*", "0", "00", "*/5", "1-5", "1,15", "30"])
_word = st.from_regex(r"[a-z/][a-z0-9/._-]{0,12}", fullmatch=True)


@given(
    st.lists(_field, min_size=5, max_size=5),
    st.lists(_word, min_size=1, max_size=4),
    st.sampled_from(["postgres", "dbsu"]),
)
def test_both_forms_give_one_line(fields, words, dbsu):
    """With or without the dbsu as user field, an entry gives the same
    line, which names the dbsu exactly once after the schedule."""
    assume(words[0] != dbsu)  # a bare command starting with the dbsu's name is ambiguous
    schedule = " ".join(fields)
    command = " ".join(words)
    bare = cron.pg_crontab_lines(["%s %s" % (schedule, command)], dbsu)
    with_user = cron.pg_crontab_lines(["%s %s %s" % (schedule, dbsu, command)], dbsu)
    assert bare == with_user
    (line,) = bare
    assert line.startswith("%s %s " % (schedule, dbsu))
    assert line.split()[6:] == words


HOUR, DAY = 3600, 86400


@pytest.mark.parametrize(
    "text, low, high, names, expected",
    [
        ("*/15", 0, 59, None, {0, 15, 30, 45}),
        ("1-5", 0, 23, None, {1, 2, 3, 4, 5}),
        ("10-20/5", 0, 59, None, {10, 15, 20}),
        ("5/20", 0, 59, None, {5, 25, 45}),  # from 5 to the end, every 20
        ("1,3,5", 1, 31, None, {1, 3, 5}),
        ("jan,Jul", 1, 12, cron._MONTHS, {1, 7}),
        ("mon-fri", 0, 7, cron._DAYS, {1, 2, 3, 4, 5}),
        ("*", 1, 12, None, set(range(1, 13))),
    ],
)
def test_parse_field(text, low, high, names, expected):
    assert cron.parse_field(text, low, high, names) == frozenset(expected)


@pytest.mark.parametrize(
    "text, low, high",
    [
        ("60", 0, 59),
        ("5-1", 0, 59),
        ("*/0", 0, 59),
        ("", 0, 59),
        ("1,,2", 0, 59),
        ("x", 0, 59),
        ("0", 1, 31),
        ("*/x", 0, 59),
    ],
)
def test_parse_field_refuses(text, low, high):
    with pytest.raises(cron.CronError):
        cron.parse_field(text, low, high)


def test_sunday_is_0_and_7():
    for field in ("0", "7", "sun"):
        assert cron.Schedule(["0", "0", "*", "*", field]).dow == frozenset({7})


# (pg_crontab time fields, longest gap in seconds), worked out by hand
@pytest.mark.parametrize(
    "schedules, gap",
    [
        ([["00", "01", "*", "*", "*"]], DAY),  # daily
        ([["00", "01", "*", "*", "*"], ["00", "*/4", "*", "*", "*"]], 4 * HOUR),  # + every 4 h
        ([["00", "01", "*", "*", "0"]], 7 * DAY),  # weekly
        ([["0", "1", "*", "*", "1-5"]], 3 * DAY),  # Friday to Monday
        ([["0", "1", "*", "*", "0"], ["0", "1", "*", "*", "1-6"]], DAY),  # full Sun + diff Mon-Sat
        ([["0", "0", "31", "*", "*"]], 61 * DAY),  # Aug 31 -> Oct 31
        ([["0", "0", "1", "1", "*"]], 366 * DAY),  # yearly, over 2024
        ([["0", "0", "29", "2", "*"]], 1461 * DAY),  # Feb 29: 2024 -> 2028
        ([["0", "0", "13", "*", "5"]], 7 * DAY),  # the 13th OR a Friday
        ([["0", "*/5", "*", "*", "*"]], 5 * HOUR),  # 0, 5, ..., 20, then 4 h
        ([["*/7", "*", "*", "*", "*"]], 7 * 60),  # 56 -> 60 is shorter
        ([["0", "0", "30", "2", "*"]], None),  # never
    ],
)
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
    assert cron.max_gap_seconds([[str(minute), "*/%d" % n, "*", "*", "*"]]) == max(n, 24 - last) * HOUR


@pytest.mark.parametrize(
    "command, kind",
    [
        ("/usr/local/bin/pg-backup full", "full"),
        ("/usr/local/bin/pg-backup diff", "diff"),
        ("pg-backup incr", "incr"),
        ("pg-backup", "incr"),  # incremental, or full when none exists
        ("runuser -u postgres -- /usr/local/bin/pg-backup full", "full"),
        ("pgbackrest --stanza=pg-test backup", "incr"),
        ("pgbackrest --stanza=pg-test --type=full backup", "full"),
        ("pgbackrest --stanza=pg-test --type diff backup", "diff"),
        ("pgbackrest --stanza=pg-test expire", None),
        ("pgbackrest --stanza=pg-test --type=weird backup", None),
        ("echo backup", None),
        ("vacuumdb --all", None),
    ],
)
def test_backup_type(command, kind):
    assert cron.backup_type(command) == kind


def test_backup_entries():
    entries = [
        "00 01 * * 0 /usr/local/bin/pg-backup full",
        "00 01 * * 1-6 /usr/local/bin/pg-backup diff",
        "00 */4 * * * /usr/local/bin/pg-backup",
        "@daily pgbackrest --stanza=pg-test --type=full backup",
        "@reboot /usr/local/bin/pg-backup full",  # never repeats: no schedule
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
