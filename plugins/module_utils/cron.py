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
"""

from __future__ import annotations

import re
from typing import Any, List, Optional, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    OS_ACCOUNTS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
)

__all__ = ["NICKNAMES", "BACKUP_COMMAND", "PIGSTY_BACKUP_COMMAND", "parse",
           "pg_crontab_lines", "pg_crontab_problems", "node_crontab_lines",
           "node_crontab_problems"]

NICKNAMES = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly",
             "@daily", "@midnight", "@hourly")

#: The backup command the pgbackrest role installs
#: (``pgbackrest_backup_script``'s default) ...
BACKUP_COMMAND = "/usr/local/bin/pg-backup"
#: ... and Pigsty's path of its own, which means the same here.
PIGSTY_BACKUP_COMMAND = "/pg/bin/pg-backup"

_FIELD = re.compile(r"^[0-9A-Za-z*/,-]+$")
# a user name as useradd takes it (Debian's NAME_REGEX, plus '.')
_USER = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}\$?$")

_PG_FIX = ("write each entry as 'minute hour day month weekday command' "
           "(it runs as pg_dbsu), e.g. '00 01 * * * /usr/local/bin/pg-backup "
           "full'")
_NODE_FIX = ("write each entry as 'minute hour day month weekday user "
             "command', as in /etc/crontab, e.g. '00 01 * * * postgres "
             "/usr/local/bin/pg-backup full'")


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
    for _ in schedule.split(" "):
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
        if command is not None:
            out.append("%s %s %s" % (parse(entry)[0], dbsu, command))
    return out


def pg_crontab_problems(cluster: Optional[str], entries: Any, dbsu: Any
                        ) -> List[Problem]:
    """Every ``pg_crontab`` entry that cannot become a line run as
    ``dbsu``."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [Problem(cluster, None, "pg_crontab", entries, "is not a list",
                        _PG_FIX)]
    out: List[Problem] = []
    for i, entry in enumerate(entries):
        fld = "pg_crontab[%d]" % i
        if not isinstance(entry, str) or "\n" in entry or "\r" in entry:
            out.append(Problem(cluster, None, fld, entry,
                               "is not a one-line string", _PG_FIX))
            continue
        parsed = parse(entry)
        if parsed is None:
            out.append(Problem(cluster, None, fld, entry,
                               "is not a cron entry", _PG_FIX))
            continue
        words = parsed[1]
        if len(words) >= 2 and words[0] != dbsu and (
                words[0] in OS_ACCOUNTS or words[0] == "postgres"):
            out.append(Problem(
                cluster, None, fld, entry,
                "names %s as its user, but pg_crontab entries run as "
                "pg_dbsu (%s)" % (words[0], dbsu),
                "remove %s from the entry to run it as %s, or move it to "
                "node_crontab, whose entries name their user"
                % (words[0], dbsu)))
        elif len(words) == 1 and words[0] == dbsu:
            out.append(Problem(cluster, None, fld, entry,
                               "has a user (%s) but no command" % dbsu,
                               _PG_FIX))
    return out


def node_crontab_lines(entries: Any) -> List[str]:
    """The ``/etc/cron.d`` lines of ``node_crontab``: ``schedule user
    command`` for each entry, Pigsty's backup path translated (entries that
    :func:`node_crontab_problems` reports are left out)."""
    out = []
    for entry in entries if isinstance(entries, list) else ():
        parsed = parse(entry)
        if parsed is None or len(parsed[1]) < 2 or \
                not _USER.match(parsed[1][0]):
            continue
        command = _command_words(entry, parsed[0]).split(None, 1)[1]
        out.append("%s %s %s" % (parsed[0], parsed[1][0],
                                 _translated(command)))
    return out


def node_crontab_problems(cluster: Optional[str], host: Optional[str],
                          entries: Any) -> List[Problem]:
    """Every ``node_crontab`` entry that is not ``schedule user
    command``."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        return [Problem(cluster, host, "node_crontab", entries,
                        "is not a list", _NODE_FIX)]
    out: List[Problem] = []
    for i, entry in enumerate(entries):
        fld = "node_crontab[%d]" % i
        parsed = parse(entry)
        if parsed is None:
            out.append(Problem(cluster, host, fld, entry,
                               "is not a cron entry", _NODE_FIX))
        elif len(parsed[1]) < 2 or not _USER.match(parsed[1][0]):
            out.append(Problem(
                cluster, host, fld, entry,
                "has no user field (node_crontab entries are /etc/crontab "
                "lines: schedule, user, command)", _NODE_FIX))
    return out
