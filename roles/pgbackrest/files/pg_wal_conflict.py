#!/usr/bin/python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg-wal-conflict: decide whether a WAL segment that pgBackRest refused to
archive because the archive already holds it with other content may be
counted as archived.

PostgreSQL runs it from ``archive_command`` only after ``pgbackrest
archive-push`` failed, with the segment's path and pgBackRest's exit code::

    pgbackrest --stanza=S archive-push %p || pg-wal-conflict %p $?

(with the program's full path, defaults.PATHS ``wal_conflict``).

How such a segment comes about: a member that was the primary on timeline
T loses the leadership (a failover, an isolation) while another member
promotes and starts timeline T+1 in the middle of a segment. Both keep a
segment of timeline T with the same name: the one archived first (often
the old primary's, which wrote past the fork before it stepped down) and
the other member's copy, whose content after the fork differs. After
pg_rewind, Patroni clears the archive status of the rewound member's WAL,
so the next checkpoint on that member, once it leads, marks its copy
``.ready`` again. pgBackRest refuses it (error 45, "already exists in the
archive with a different checksum"), and PostgreSQL's archiver retries the
oldest ready segment forever: nothing newer is archived, pg_wal grows and
point-in-time recovery past that point fails.

Such a segment is never read by a recovery along this member's history:
for the segment in which timeline T ended (its switch point in the history
file of the current timeline) and every later segment of T, recovery reads
the newer timeline's file, which begins with the same WAL up to the fork.
So exactly that case is counted as archived (exit 0, with a warning in
PostgreSQL's log). Every other refusal keeps pgBackRest's exit code:

* any exit code other than 45;
* a segment of the current timeline (the one of the newest history file
  in pg_wal), or of timeline 1 without any history: a real conflict, such
  as two primaries on one timeline, which an operator must look at;
* a segment of an older timeline before the segment in which that timeline
  ended (the WAL both histories share: different content there is damage);
* a timeline that is not in the current history, and anything that cannot
  be read with certainty (a name that is not a segment, a history that
  cannot be parsed).

The program reads pg_wal only; it never writes there and never touches the
archive. Its decision is a pure function (``verdict``), tested in
tests/unit/roles/test_pg_wal_conflict.py.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Dict, List, Optional, Tuple

# pgBackRest's ArchiveDuplicateError: the segment is in the archive already,
# with a different checksum
DUPLICATE = 45

SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})(\.partial)?$")
HISTORY_RE = re.compile(r"^([0-9A-F]{8})\.history$")
LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def parse_segment(name: str, segment_size: int) -> Optional[Tuple[int, int]]:
    """(timeline, segment number) of a WAL segment's file name
    (``.partial`` allowed), or None. The segment number counts segments of
    ``segment_size`` bytes from LSN 0."""
    m = SEGMENT_RE.match(name)
    if not m or segment_size <= 0 or 0x100000000 % segment_size:
        return None
    per_log = 0x100000000 // segment_size
    log, seg = int(m.group(2), 16), int(m.group(3), 16)
    if seg >= per_log:
        return None
    return int(m.group(1), 16), log * per_log + seg


def parse_lsn(text: str) -> Optional[int]:
    """An LSN written ``X/Y`` as a number, or None."""
    m = LSN_RE.match(text.strip())
    if not m:
        return None
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def parse_history(text: str) -> Optional[Dict[int, int]]:
    """A timeline history file's ``{parent timeline: switch point}``, or None
    when a line that is neither blank nor a comment cannot be read."""
    out: Dict[int, int] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) < 2 or not fields[0].isdigit():
            return None
        lsn = parse_lsn(fields[1])
        if lsn is None:
            return None
        out[int(fields[0])] = lsn
    return out


def verdict(name: str, rc: int, histories: Dict[int, str], segment_size: int) -> Tuple[bool, str]:
    """Whether segment ``name``, refused by archive-push with exit code
    ``rc``, counts as archived, and why. ``histories`` maps each timeline
    whose history file is in pg_wal to the file's text; the newest is the
    member's current timeline."""
    if rc != DUPLICATE:
        return False, "archive-push failed with exit code %d" % rc
    seg = parse_segment(name.rsplit("/", 1)[-1], segment_size)
    if seg is None:
        return False, "%s is not a WAL segment of %d bytes" % (name, segment_size)
    tli, segno = seg
    current = max(histories) if histories else 1
    if tli >= current:
        return False, (
            "%s belongs to the current timeline %d: two servers wrote this segment on one timeline; "
            "compare both copies before anything is removed" % (name, current)
        )
    history = parse_history(histories[current])
    if history is None:
        return False, "the history file of timeline %d cannot be read" % current
    if tli not in history:
        return False, "timeline %d is not in the history of the current timeline %d" % (tli, current)
    switch = history[tli]
    fork = switch // segment_size
    if segno < fork:
        return False, (
            "%s holds WAL of timeline %d from before it ended at %X/%X: its content must match the archive's"
            % (name, tli, switch >> 32, switch & 0xFFFFFFFF)
        )
    return True, (
        "%s is in the archive already with other content; timeline %d ended at %X/%X (history of timeline %d), "
        "and recovery reads the next timeline's copy from that segment on: counted as archived"
        % (name, tli, switch >> 32, switch & 0xFFFFFFFF, current)
    )


def read_histories(wal_dir: str) -> Dict[int, str]:
    """Every timeline history file in ``wal_dir``, by timeline."""
    out: Dict[int, str] = {}
    for entry in os.listdir(wal_dir):
        m = HISTORY_RE.match(entry)
        if m:
            with open(os.path.join(wal_dir, entry), encoding="utf-8", errors="replace") as handle:
                out[int(m.group(1), 16)] = handle.read()
    return out


def main(argv: List[str]) -> int:
    if len(argv) != 3 or not argv[2].isdigit():
        sys.stderr.write("usage: pg-wal-conflict SEGMENT_PATH EXIT_CODE\n")
        return 2
    path, rc = argv[1], int(argv[2])
    if rc != DUPLICATE:
        return rc
    try:
        size = os.stat(path).st_size
        histories = read_histories(os.path.dirname(path) or ".")
    except OSError as exc:
        sys.stderr.write("pg-wal-conflict: %s: %s; not counted as archived\n" % (path, exc))
        return rc
    ok, why = verdict(path, rc, histories, size)
    sys.stderr.write("pg-wal-conflict: %s: %s\n" % ("WARNING" if ok else "ERROR", why))
    return 0 if ok else rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
