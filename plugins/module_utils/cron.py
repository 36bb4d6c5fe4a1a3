# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Cron entries of the inventory: ``pg_crontab`` and ``node_crontab``.

Pure Python; nothing here imports Ansible. Both become ``/etc/cron.d``
files, whose lines are ``schedule user command``; the schedule is five
time fields (``00 01 * * *``) or one ``@nickname`` (``@daily``).

* ``pg_crontab`` (cluster vocabulary) runs as ``pg_dbsu`` on every member.
  An entry is written either without a user (``'00 01 * * *
  /usr/local/bin/pg-backup full'``) or, as Pigsty's ``node_crontab`` habit
  has it, with the database superuser as the user field (``'00 01 * * *
  postgres /pg/bin/pg-backup full'``); both give the same line. An entry
  whose user field names another operating system account (``root``, or
  ``postgres`` when the dbsu is someone else) is refused: it would run as
  ``pg_dbsu`` anyway. Pigsty's path of the backup
  command, ``/pg/bin/pg-backup``, is this collection's ``pg-backup``
  (:data:`BACKUP_COMMAND`, installed by the pgbackrest role).
* ``node_crontab`` (Pigsty's NODE vocabulary, ``/etc/crontab`` lines) runs
  on the node as the user each entry names, so the user field is required.

:func:`pg_crontab_lines` and :func:`node_crontab_lines` give the lines of
the files; :func:`pg_crontab_problems` and :func:`node_crontab_problems`
report every entry that cannot become one, as :class:`~errors.Problem`.

How often the backups of ``pg_crontab`` run, for the alert rules
(:mod:`alerting`): :func:`backup_entries` and :func:`max_gap_seconds`. A
cluster whose newest backup is older than the longest gap of its schedule
(plus a grace for the backup's own duration) has missed a backup.
Fields follow cron(8) as Debian runs it: ``minute hour day-of-month month
day-of-week``, each ``*``, a number, a range ``a-b``, a step ``*/n`` or
``a-b/n``, a comma list of those, month and day names (``jan``, ``mon``),
day-of-week 0 or 7 for Sunday, and the nicknames (``@reboot`` never
repeats). When both day-of-month and day-of-week are restricted (neither
starts with ``*``), a day matches when either does, as in cron(8). The gap
is measured between the runs of eight calendar years (2024 to 2031, two
leap years: every pattern of weekdays, month lengths and February 29
occurs inside), in the node's local time without daylight-saving shifts (a
node on UTC has none).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import shlex
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    OS_ACCOUNTS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
)

__all__ = [
    "NICKNAMES",
    "BACKUP_COMMAND",
    "PIGSTY_BACKUP_COMMAND",
    "parse",
    "pg_crontab_lines",
    "pg_crontab_problems",
    "node_crontab_lines",
    "node_crontab_problems",
    "CronError",
    "backup_type",
    "backup_entries",
    "max_gap_seconds",
]

NICKNAMES = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")

#: The backup command the pgbackrest role installs
#: (``pgbackrest_backup_script``'s default) ...
BACKUP_COMMAND = "/usr/local/bin/pg-backup"
#: ... and Pigsty's path of its own, which means the same here.
PIGSTY_BACKUP_COMMAND = "/pg/bin/pg-backup"

_FIELD = re.compile(r"^[0-9A-Za-z*/,-]+\Z")
# a user name as useradd takes it (Debian's NAME_REGEX, plus '.')
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?\Z")

_PG_FIX = (
    "write each entry as 'minute hour day month weekday command' "
    "(it runs as pg_dbsu), e.g. '00 01 * * * /usr/local/bin/pg-backup "
    "full'"
)
_NODE_FIX = (
    "write each entry as 'minute hour day month weekday user "
    "command', as in /etc/crontab, e.g. '00 01 * * * postgres "
    "/usr/local/bin/pg-backup full'"
)


def parse(entry: Any) -> Optional[Tuple[str, List[str]]]:
    """``(schedule, [word, ...])`` of a cron entry: the five time fields (or
    the ``@nickname``) joined by one space, and the rest split on
    whitespace; None when ``entry`` is not a one-line string with a
    schedule and at least one more word."""
    if not isinstance(entry, str) or "\n" in entry or "\r" in entry:
        return None
    parts = entry.split()
    if parts and parts[0] in NICKNAMES:
        head = 1
    elif len(parts) >= 5 and all(_FIELD.match(f) for f in parts[:5]):
        head = 5
    else:
        return None
    if len(parts) <= head:
        return None
    return " ".join(parts[:head]), parts[head:]


def _command_words(entry: str, schedule: str) -> str:
    """The command of ``entry`` as written (its own spacing kept), after
    the schedule."""
    rest = entry.strip()
    for _skip in schedule.split(" "):
        rest = rest.split(None, 1)[1]
    return rest


def _pg_command(entry: str, dbsu: Any) -> Optional[str]:
    """The command of a pg_crontab entry, without a user field that names
    the database superuser, with Pigsty's backup path translated; None when
    the entry is not one."""
    parsed = parse(entry)
    if parsed is None:
        return None
    schedule, words = parsed
    command = _command_words(entry, schedule)
    if len(words) >= 2 and words[0] == dbsu:
        command = command.split(None, 1)[1]
    return _translated(command)


def _translated(command: str) -> str:
    """The command with Pigsty's path of the backup command replaced by
    this collection's."""
    first = command.split(None, 1)
    if first[0] == PIGSTY_BACKUP_COMMAND:
        return " ".join([BACKUP_COMMAND] + first[1:])
    return command


def pg_crontab_lines(entries: Any, dbsu: str) -> List[str]:
    """The ``/etc/cron.d`` lines of ``pg_crontab``: ``schedule dbsu
    command`` for each entry (entries that are not cron entries, which
    :func:`pg_crontab_problems` reports, are left out)."""
    out = []
    for entry in entries if isinstance(entries, list) else ():
        command = _pg_command(entry, dbsu)
        if command is not None:  # so the entry parses
            schedule = cast(Tuple[str, List[str]], parse(entry))[0]
            out.append("%s %s %s" % (schedule, dbsu, command))
    return out


def pg_crontab_problems(cluster: Optional[str], entries: Any, dbsu: Any) -> List[Problem]:
    """Every ``pg_crontab`` entry that cannot become a line run as
    ``dbsu``."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [Problem(cluster, None, "pg_crontab", entries, "is not a list", _PG_FIX)]
    out: List[Problem] = []
    for i, entry in enumerate(entries):
        fld = "pg_crontab[%d]" % i
        if not isinstance(entry, str) or "\n" in entry or "\r" in entry:
            out.append(Problem(cluster, None, fld, entry, "is not a one-line string", _PG_FIX))
            continue
        parsed = parse(entry)
        if parsed is None:
            out.append(Problem(cluster, None, fld, entry, "is not a cron entry", _PG_FIX))
            continue
        words = parsed[1]
        if len(words) >= 2 and words[0] != dbsu and (words[0] in OS_ACCOUNTS or words[0] == "postgres"):
            out.append(
                Problem(
                    cluster,
                    None,
                    fld,
                    entry,
                    "names %s as its user, but pg_crontab entries run as pg_dbsu (%s)" % (words[0], dbsu),
                    "remove %s from the entry to run it as %s, or move it to "
                    "node_crontab, whose entries name their user" % (words[0], dbsu),
                )
            )
        elif len(words) == 1 and words[0] == dbsu:
            out.append(Problem(cluster, None, fld, entry, "has a user (%s) but no command" % dbsu, _PG_FIX))
    return out


def node_crontab_lines(entries: Any) -> List[str]:
    """The ``/etc/cron.d`` lines of ``node_crontab``: ``schedule user
    command`` for each entry, Pigsty's backup path translated (entries that
    :func:`node_crontab_problems` reports are left out)."""
    out = []
    for entry in entries if isinstance(entries, list) else ():
        parsed = parse(entry)
        if parsed is None or len(parsed[1]) < 2 or not _USER.match(parsed[1][0]):
            continue
        command = _command_words(entry, parsed[0]).split(None, 1)[1]
        out.append("%s %s %s" % (parsed[0], parsed[1][0], _translated(command)))
    return out


def node_crontab_problems(cluster: Optional[str], host: Optional[str], entries: Any) -> List[Problem]:
    """Every ``node_crontab`` entry that is not ``schedule user
    command``."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [Problem(cluster, host, "node_crontab", entries, "is not a list", _NODE_FIX)]
    out: List[Problem] = []
    for i, entry in enumerate(entries):
        fld = "node_crontab[%d]" % i
        parsed = parse(entry)
        if parsed is None:
            out.append(Problem(cluster, host, fld, entry, "is not a cron entry", _NODE_FIX))
        elif len(parsed[1]) < 2 or not _USER.match(parsed[1][0]):
            out.append(
                Problem(
                    cluster,
                    host,
                    fld,
                    entry,
                    "has no user field (node_crontab entries are /etc/crontab lines: schedule, user, command)",
                    _NODE_FIX,
                )
            )
    return out


# ------------------------------------------------ schedules and their gaps

NICKNAME_FIELDS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    name: i
    for i, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_DAYS = {name: i for i, name in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (low, high, names) of minute, hour, day of month, month, day of week
_FIELDS: Tuple[Tuple[int, int, Dict[str, int]], ...] = (
    (0, 59, {}),
    (0, 23, {}),
    (1, 31, {}),
    (1, 12, _MONTHS),
    (0, 7, _DAYS),
)
BACKUP_TYPES = ("full", "diff", "incr")
#: The horizon over which gaps are measured (start, days).
HORIZON_START = dt.date(2024, 1, 1)
HORIZON_DAYS = (dt.date(2032, 1, 1) - HORIZON_START).days
DAY = 86400


class CronError(ValueError):
    """A cron entry that cron(8) would not run."""


def _value(text: str, low: int, high: int, names: Dict[str, int]) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise CronError("%r is neither a number nor a name" % text)
    value = int(text)
    if not low <= value <= high:
        raise CronError("%d is outside %d-%d" % (value, low, high))
    return value


def parse_field(text: str, low: int, high: int, names: Optional[Dict[str, int]] = None) -> FrozenSet[int]:
    """The values one cron field matches (``low``..``high``)."""
    names = names or {}
    out: Set[int] = set()
    for part in text.split(","):
        if not part:
            raise CronError("empty list element in %r" % text)
        body, _skip, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise CronError("step %r is not a positive number" % step_text)
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _skip, b = body.partition("-")
            first, last = _value(a, low, high, names), _value(b, low, high, names)
            if first > last:
                raise CronError("range %r runs backwards" % body)
        else:
            first = _value(body, low, high, names)
            last = high if step_text else first
        out.update(range(first, last + 1, step))
    return frozenset(out)


class Schedule:
    """One parsed cron entry: the minutes of the day it runs at, and which
    days."""

    def __init__(self, fields: Sequence[str]) -> None:
        if len(fields) != 5:
            raise CronError("expected 5 time fields, got %d" % len(fields))
        sets = [parse_field(f, lo, hi, names) for f, (lo, hi, names) in zip(fields, _FIELDS)]
        minutes, hours, self.dom, self.months, dow = sets
        self.dow = frozenset(7 if d == 0 else d for d in dow)  # isoweekday
        self.minutes = tuple(sorted(h * 60 + m for h in hours for m in minutes))
        # cron(8): with both day fields restricted, either may match
        self.either = not fields[2].startswith("*") and not fields[4].startswith("*")
        self.dom_any = fields[2].startswith("*")
        self.dow_any = fields[4].startswith("*")

    def runs_on(self, day: dt.date) -> bool:
        if day.month not in self.months:
            return False
        in_dom = day.day in self.dom
        in_dow = day.isoweekday() in self.dow
        if self.either:
            return in_dom or in_dow
        return (self.dom_any or in_dom) and (self.dow_any or in_dow)


def split_entry(entry: str) -> Tuple[List[str], str]:
    """(the five time fields, the command) of a ``pg_crontab`` entry; raises
    :class:`CronError` for ``@reboot`` and malformed entries."""
    parts = entry.split()
    if not parts:
        raise CronError("empty entry")
    if parts[0].startswith("@"):
        if parts[0] not in NICKNAME_FIELDS:
            raise CronError("%s never repeats or is unknown" % parts[0])
        return NICKNAME_FIELDS[parts[0]].split(), " ".join(parts[1:])
    if len(parts) < 6:
        raise CronError("expected 5 time fields and a command")
    return parts[:5], " ".join(parts[5:])


def backup_type(command: str) -> Optional[str]:
    """The pgBackRest backup type a cron command takes, or None when it takes
    no backup: ``pg-backup [full|diff|incr]`` (no type: ``incr``, which is a
    full backup when the repository has none) and ``pgbackrest ... backup``
    with ``--type=``/``--type`` (pgBackRest's default: ``incr``)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    names = [w.rsplit("/", 1)[-1] for w in words]
    if "pg-backup" in names:
        rest = names[names.index("pg-backup") + 1 :]
        return rest[0] if rest and rest[0] in BACKUP_TYPES else "incr"
    if "pgbackrest" in names and "backup" in names[names.index("pgbackrest") + 1 :]:
        for i, word in enumerate(words):
            if word.startswith("--type="):
                value = word.split("=", 1)[1]
                return value if value in BACKUP_TYPES else None
            if word == "--type" and i + 1 < len(words):
                return words[i + 1] if words[i + 1] in BACKUP_TYPES else None
        return "incr"
    return None


def backup_entries(entries: Iterable[Any]) -> Dict[str, List[List[str]]]:
    """The time fields of the backup entries of ``pg_crontab``, by backup
    type; entries that take no backup or that cron would not run are left
    out (the model reports malformed ones)."""
    out: Dict[str, List[List[str]]] = {}
    for entry in entries or []:
        if not isinstance(entry, str):
            continue
        try:
            fields, command = split_entry(entry)
            Schedule(fields)
        except CronError:
            continue
        kind = backup_type(command)
        if kind is not None:
            out.setdefault(kind, []).append(fields)
    return out


@functools.lru_cache(maxsize=256)
def _max_gap(schedules: Tuple[Tuple[str, ...], ...]) -> Optional[int]:
    parsed = [Schedule(list(f)) for f in schedules]
    first_run: Optional[int] = None  # seconds from the horizon's start
    last_run: Optional[int] = None
    gap = 0
    day_gaps: Dict[FrozenSet[int], Tuple[int, int, int]] = {}
    for n in range(HORIZON_DAYS):
        day = HORIZON_START + dt.timedelta(days=n)
        which = frozenset(i for i, s in enumerate(parsed) if s.runs_on(day))
        if not which:
            continue
        if which not in day_gaps:
            minutes = sorted({m for i in which for m in parsed[i].minutes})
            inner = max((b - a for a, b in zip(minutes, minutes[1:])), default=0)
            day_gaps[which] = (minutes[0] * 60, minutes[-1] * 60, inner * 60)
        start, end, inner = day_gaps[which]
        base = n * DAY
        if last_run is not None:
            gap = max(gap, base + start - last_run)
        else:
            first_run = base + start
        gap = max(gap, inner)
        last_run = base + end
    if first_run is None or last_run is None:
        return None
    if first_run == last_run:
        return HORIZON_DAYS * DAY  # one run in eight years: at least that
    return gap


def max_gap_seconds(schedules: Iterable[Sequence[str]]) -> Optional[int]:
    """The longest time, in seconds, between two consecutive runs of any of
    ``schedules`` (each the five time fields of an entry); None when they
    never run (e.g. ``0 0 30 2 *``)."""
    key = tuple(sorted(tuple(f) for f in schedules))
    if not key:
        return None
    return _max_gap(key)
