# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg_crontab and node_crontab: the cron.d lines and the refused entries."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import cron


@pytest.mark.parametrize("entry, dbsu, line", [
    # the collection's own form: schedule and command
    ("00 01 * * * /usr/local/bin/pg-backup full", "postgres",
     "00 01 * * * postgres /usr/local/bin/pg-backup full"),
    # Pigsty's form, with the dbsu as user field and Pigsty's backup path
    ("00 01 * * * postgres /pg/bin/pg-backup full", "postgres",
     "00 01 * * * postgres /usr/local/bin/pg-backup full"),
    ("00 01 * * * /pg/bin/pg-backup full", "postgres",
     "00 01 * * * postgres /usr/local/bin/pg-backup full"),
    ("@hourly  pg-backup incr", "postgres", "@hourly postgres pg-backup incr"),
    ("@daily postgres psql -c 'select 1'", "postgres",
     "@daily postgres psql -c 'select 1'"),
    # another dbsu: its name is the user field
    ("*/5 * * * 1-5 dbsu /usr/local/bin/pg-backup incr", "dbsu",
     "*/5 * * * 1-5 dbsu /usr/local/bin/pg-backup incr"),
    # a command merely starting like Pigsty's path is left alone
    ("0 0 * * * /pg/bin/pg-backup2 full", "postgres",
     "0 0 * * * postgres /pg/bin/pg-backup2 full"),
])
def test_pg_crontab_lines(entry, dbsu, line):
    assert cron.pg_crontab_lines([entry], dbsu) == [line]
    assert cron.pg_crontab_problems("pg-test", [entry], dbsu) == []


@pytest.mark.parametrize("entries, field, what", [
    ("00 01 * * * x", "pg_crontab", "is not a list"),
    (["01 * * pg-backup"], "pg_crontab[0]", "is not a cron entry"),
    (["@often pg-backup"], "pg_crontab[0]", "is not a cron entry"),
    (["00 01 * * *"], "pg_crontab[0]", "is not a cron entry"),
    ([["00 01 * * * x"]], "pg_crontab[0]", "is not a one-line string"),
    (["00 01 * * * x\n00 02 * * * y"], "pg_crontab[0]", "is not a one-line string"),
    (["00 01 * * * root /usr/local/bin/pg-backup full"], "pg_crontab[0]",
     "names root as its user, but pg_crontab entries run as pg_dbsu (postgres)"),
    (["00 01 * * * postgres"], "pg_crontab[0]", "has a user (postgres) but no command"),
])
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
        "entry to run it as postgres, or move it to node_crontab, whose entries name their user")


@pytest.mark.parametrize("entry, line", [
    ("00 01 * * * postgres /pg/bin/pg-backup full",
     "00 01 * * * postgres /usr/local/bin/pg-backup full"),
    ("@reboot root /usr/bin/true", "@reboot root /usr/bin/true"),
    ("0  3 * * 0  root  /sbin/fstrim -a", "0 3 * * 0 root /sbin/fstrim -a"),
])
def test_node_crontab_lines(entry, line):
    assert cron.node_crontab_lines([entry]) == [line]
    assert cron.node_crontab_problems("pg-test", "10.10.10.11", [entry]) == []


@pytest.mark.parametrize("entry, what", [
    ("00 01 * * * /pg/bin/pg-backup full", "has no user field"),
    ("00 01 * * * postgres", "has no user field"),
    ("00 01 * *", "is not a cron entry"),
])
def test_node_crontab_refused(entry, what):
    (p,) = cron.node_crontab_problems("pg-test", "10.10.10.11", [entry])
    assert (p.host, p.field) == ("10.10.10.11", "node_crontab[0]")
    assert p.what.startswith(what)
    assert cron.node_crontab_lines([entry]) == []


_field = st.sampled_from(["*", "0", "00", "*/5", "1-5", "1,15", "30"])
_word = st.from_regex(r"[a-z/][a-z0-9/._-]{0,12}", fullmatch=True)


@given(st.lists(_field, min_size=5, max_size=5), st.lists(_word, min_size=1, max_size=4),
       st.sampled_from(["postgres", "dbsu"]))
def test_both_forms_give_one_line(fields, words, dbsu):
    """With or without the dbsu as user field, an entry gives the same
    line, which names the dbsu exactly once after the schedule."""
    assume(words[0] != dbsu)    # a bare command starting with the dbsu's name is ambiguous
    schedule = " ".join(fields)
    command = " ".join(words)
    bare = cron.pg_crontab_lines(["%s %s" % (schedule, command)], dbsu)
    with_user = cron.pg_crontab_lines(["%s %s %s" % (schedule, dbsu, command)], dbsu)
    assert bare == with_user
    (line,) = bare
    assert line.startswith("%s %s " % (schedule, dbsu))
    assert line.split()[6:] == words
