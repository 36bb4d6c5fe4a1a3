# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Error values of the cluster model.

Pure Python: nothing here imports Ansible. Every check in the model yields
:class:`Problem` values instead of raising, so that a whole inventory is
checked in one pass and every mistake is reported at once. Callers that want
an exception raise :class:`ModelError` with the collected problems.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, List, Optional


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the inventory.

    ``cluster`` and ``host`` locate it (either may be ``None`` for
    inventory-wide problems), ``field`` is the variable (with a path such as
    ``pg_services[1].port``), ``value`` the offending value, ``fix`` what to
    do about it, and ``what`` a short statement of the rule that is broken.
    """

    cluster: Optional[str]
    host: Optional[str]
    field: str
    value: Any
    what: str
    fix: str

    def __str__(self) -> str:
        where = []
        if self.cluster is not None:
            where.append("cluster %s" % self.cluster)
        if self.host is not None:
            where.append("host %s" % self.host)
        prefix = ", ".join(where) if where else "inventory"
        return "%s: %s = %s: %s; fix: %s" % (
            prefix, self.field, _show(self.value), self.what, self.fix)

    def as_dict(self) -> dict:
        return {
            "cluster": self.cluster,
            "host": self.host,
            "field": self.field,
            "value": self.value,
            "what": self.what,
            "fix": self.fix,
            "message": str(self),
        }


def _show(value: Any) -> str:
    """Render a value the way a user wrote it in YAML, short."""
    if value is None:
        return "(unset)"
    text = repr(value) if isinstance(value, str) else str(value)
    if len(text) > 120:
        text = text[:117] + "..."
    return text


class ModelError(ValueError):
    """Raised when an inventory does not pass validation.

    ``problems`` holds every problem found, sorted, so the message is stable.
    """

    def __init__(self, problems: Iterable[Problem]):
        unique = {str(p): p for p in problems}
        self.problems: List[Problem] = sorted(unique.values(), key=_sort_key)
        lines = ["%d problem(s) in the inventory:" % len(self.problems)]
        lines += ["  - %s" % p for p in self.problems]
        super().__init__("\n".join(lines))


def _sort_key(p: Problem):
    return (p.cluster or "", p.host or "", p.field, p.what)
