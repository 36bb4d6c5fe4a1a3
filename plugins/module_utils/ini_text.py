# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The text of an ini file from its sections.

Pure Python; nothing here imports Ansible. :func:`ini_lines` prints the
``[[section, [[key, value], ...]], ...]`` of :func:`pgbouncer_ini.pgbouncer_ini`
and :func:`pgbackrest_conf.pgbackrest_conf` as the pgbouncer and pgBackRest
templates do; the tests compare the two.
"""

from __future__ import annotations

from typing import Any, List, Sequence

__all__ = ["ini_lines"]


def ini_lines(sections: Sequence[Sequence[Any]], *, separator: str = " = ") -> List[str]:
    """The lines of an ini file (no header), sections separated by a blank
    line: what the pgbouncer (``" = "``) and pgBackRest (``"="``) templates
    print."""
    out: List[str] = []
    for section, pairs in sections:
        if out:
            out.append("")
        out.append("[%s]" % section)
        out.extend("%s%s%s" % (k, separator, v) for k, v in pairs)
    return out
