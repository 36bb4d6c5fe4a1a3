# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""roles/pgbackrest/files/pg_wal_conflict.py: which segment refused by
archive-push (the archive holds it with other content) counts as archived.

The table's histories are the ones a sandbox cluster wrote over a day of
failovers (00000009.history below is copied from a member's pg_wal); the
program itself runs against a pg_wal directory made of real files."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given, strategies as st
import role_files

SCRIPT = role_files.path("pgbackrest", "pg_wal_conflict.py")


wc = role_files.load("pgbackrest", "pg_wal_conflict.py")

SEG = 16 * 1024 * 1024

# timeline 9's history: timeline 7 ended at 0/1600C7A0 (in segment 0x16),
# timeline 8 at 0/161AB1A0 (the same segment)
HISTORY_9 = (
    "1\t0/E0000A0\tno recovery target specified\n\n"
    "2\t0/F0000A0\tno recovery target specified\n\n"
    "3\t0/1100CBA0\tno recovery target specified\n\n"
    "4\t0/110A4DF8\tno recovery target specified\n\n"
    "5\t0/130000A0\tno recovery target specified\n\n"
    "6\t0/140000A0\tno recovery target specified\n\n"
    "7\t0/1600C7A0\tno recovery target specified\n\n"
    "8\t0/161AB1A0\tno recovery target specified\n"
)
HISTORIES = {9: HISTORY_9, 8: HISTORY_9.rsplit("\n\n8", 1)[0] + "\n"}


@pytest.mark.parametrize(
    "name, rc, ok, words",
    [
        # the sandbox's case: timeline 7 ended inside segment 0x16
        ("pg_wal/000000070000000000000016", 45, True, "timeline 7 ended at 0/1600C7A0"),
        ("pg_wal/000000070000000000000016.partial", 45, True, "counted as archived"),
        # a later segment of timeline 7 (the old primary wrote on)
        ("pg_wal/000000070000000000000017", 45, True, "counted as archived"),
        # before the segment in which timeline 7 ended: shared WAL
        ("pg_wal/000000070000000000000015", 45, False, "must match the archive"),
        # timeline 1's WAL before the first fork (0/E0000A0, segment 0x0E)
        ("pg_wal/00000001000000000000000D", 45, False, "must match the archive"),
        ("pg_wal/00000001000000000000000E", 45, True, "timeline 1 ended at 0/E0000A0"),
        # the current timeline: two writers on one timeline
        ("pg_wal/000000090000000000000016", 45, False, "current timeline 9"),
        ("pg_wal/0000000A0000000000000016", 45, False, "current timeline 9"),
        # other failures are passed on untouched
        ("pg_wal/000000070000000000000016", 1, False, "exit code 1"),
        ("pg_wal/000000070000000000000016", 82, False, "exit code 82"),
        # not a segment
        ("pg_wal/00000009.history", 45, False, "not a WAL segment"),
        ("pg_wal/0000000700000000000001FF", 45, False, "not a WAL segment"),
    ],
)
def test_verdict_table(name, rc, ok, words):
    got, why = wc.verdict(name, rc, HISTORIES, SEG)
    assert got is ok
    assert words in why


def test_no_history_means_timeline_1_and_no_fork():
    assert wc.verdict("000000010000000000000003", 45, {}, SEG)[0] is False


def test_timeline_outside_the_current_history_is_refused():
    # timeline 3 of a branch the member never followed
    histories = {5: "1\t0/3000000\tx\n4\t0/5000000\tx\n"}
    ok, why = wc.verdict("000000030000000000000009", 45, histories, SEG)
    assert not ok and "not in the history" in why


def test_unreadable_history_is_refused():
    ok, why = wc.verdict("000000070000000000000016", 45, {9: "7\tnot-an-lsn\n"}, SEG)
    assert not ok and "cannot be read" in why


def test_segment_numbers_follow_the_segment_size():
    # 64 MiB segments: 64 per 4 GiB log file; 0x3F is the last of log 0
    assert wc.parse_segment("000000010000000100000002", 64 * 1024 * 1024) == (1, 66)
    assert wc.parse_segment("00000001000000000000003F", 64 * 1024 * 1024) == (1, 63)
    assert wc.parse_segment("000000010000000000000040", 64 * 1024 * 1024) is None
    assert wc.parse_segment("000000010000000000000001", 3 * 1024 * 1024) is None


def test_lsn_and_history_parsing():
    assert wc.parse_lsn("0/1600C7A0") == 0x1600C7A0
    assert wc.parse_lsn("1A/0") == 0x1A << 32
    assert wc.parse_lsn("16000000") is None
    assert wc.parse_history("# comment\n\n7\t0/1600C7A0\treason\n") == {7: 0x1600C7A0}
    assert wc.parse_history("x\t0/1\n") is None


def _name(tli: int, segno: int) -> str:
    per_log = 0x100000000 // SEG
    return "%08X%08X%08X" % (tli, segno // per_log, segno % per_log)


@given(
    switches=st.lists(st.integers(min_value=0, max_value=1 << 40), min_size=1, max_size=6),
    tli=st.integers(min_value=1, max_value=8),
    segno=st.integers(min_value=0, max_value=(1 << 40) // SEG),
)
def test_only_wal_no_recovery_reads_counts_as_archived(switches, tli, segno):
    # A history with increasing switch points. Whatever the segment: it
    # counts as archived exactly when its timeline is an ancestor of the
    # current one and it lies in or after the segment where that timeline
    # ended; never for the current timeline, never for shared WAL.
    switches = sorted(switches)
    current = len(switches) + 1
    text = "".join("%d\t%X/%X\tr\n" % (i + 1, s >> 32, s & 0xFFFFFFFF) for i, s in enumerate(switches))
    ok, _ = wc.verdict(_name(tli, segno), 45, {current: text}, SEG)
    if tli >= current:
        assert not ok
    else:
        assert ok == (segno >= switches[tli - 1] // SEG)


def _pg_wal(tmp_path, histories, segment):
    wal = tmp_path / "pg_wal"
    wal.mkdir()
    for tli, text in histories.items():
        (wal / ("%08X.history" % tli)).write_text(text)
    path = wal / segment
    with open(path, "wb") as handle:
        handle.truncate(SEG)
    return wal


@pytest.mark.parametrize(
    "segment, rc_in, rc_out, stderr",
    [
        ("000000070000000000000016", "45", 0, "WARNING"),
        ("000000070000000000000015", "45", 45, "ERROR"),
        ("000000090000000000000017", "45", 45, "current timeline 9"),
        ("000000070000000000000016", "82", 82, ""),
    ],
)
def test_the_program_as_archive_command_runs_it(tmp_path, segment, rc_in, rc_out, stderr):
    # PostgreSQL runs archive_command in the data directory with %p relative
    _pg_wal(tmp_path, HISTORIES, segment)
    res = subprocess.run(
        [sys.executable, SCRIPT, "pg_wal/" + segment, rc_in],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == rc_out
    assert stderr in res.stderr


def test_the_program_through_the_shell_line_of_archive_command(tmp_path):
    # the line the model writes, with a stand-in for pgbackrest that fails
    # as pgBackRest does on a duplicate (exit 45)
    _pg_wal(tmp_path, HISTORIES, "000000070000000000000016")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "pgbackrest"
    fake.write_text("#!/bin/sh\nexit 45\n")
    fake.chmod(0o755)
    line = "pgbackrest --stanza=pg-test archive-push %p || " + sys.executable + " " + SCRIPT + " %p $?"
    for segment, want in (("000000070000000000000016", 0), ("000000070000000000000015", 45)):
        (tmp_path / "pg_wal" / segment).touch()
        res = subprocess.run(
            ["/bin/sh", "-c", line.replace("%p", "pg_wal/" + segment)],
            cwd=tmp_path,
            env={"PATH": "%s:/usr/bin:/bin" % bindir},
            capture_output=True,
            text=True,
            check=False,
        )
        assert res.returncode == want, res.stderr


def test_missing_file_keeps_the_exit_code(tmp_path):
    res = subprocess.run(
        [sys.executable, SCRIPT, "pg_wal/000000070000000000000016", "45"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 45 and "not counted as archived" in res.stderr


def test_usage():
    res = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "usage" in res.stderr
