# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Error values of the cluster model.

Pure Python: nothing here imports Ansible. Every check in the model yields
:class:`Problem` values instead of raising, so that a whole inventory is
checked in one pass and every mistake is reported at once. Callers that want
an exception raise :class:`ModelError` with the collected problems.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional, Tuple

#: What a secret is shown as in every message.
HIDDEN = "(hidden)"

# A variable or key holds a secret when its last name part contains one of
# these words, ends with "_pass" (pgBackRest's cipher_pass) or is one of the
# names below (the access keys of object stores).
_SECRET_WORDS = ("password", "passwd", "secret", "token")
_SECRET_NAMES = frozenset(("s3_key", "azure_key", "access_key", "private_key", "cipher_pass"))
# Parameter names that merely talk about passwords.
_NOT_SECRET = frozenset(("password_encryption",))
_NAMED = re.compile(r"\([^)]*\)")  # the (name) of a list entry
_LAST_PART = re.compile(r"[.\[\]]+")


def is_secret_name(name: Any) -> bool:
    """Whether a variable, key or field path (``pg_users[0](x).password``)
    names a secret."""
    if not isinstance(name, str) or not name:
        return False
    parts = [p for p in _LAST_PART.split(_NAMED.sub("", name.lower())) if p]
    last = parts[-1] if parts else ""
    if last in _NOT_SECRET:
        return False
    return last in _SECRET_NAMES or last.endswith("_pass") or any(word in last for word in _SECRET_WORDS)


def mask_secrets(value: Any) -> Any:
    """``value`` with every secret inside it (the values of mapping keys
    that :func:`is_secret_name` names) replaced by :data:`HIDDEN`, at any
    depth. Other values are returned as they are."""
    if isinstance(value, dict):
        return {k: (HIDDEN if is_secret_name(k) and v is not None else mask_secrets(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_secrets(v) for v in value)
    return value


def closest(word: Any, candidates: Iterable[str], cutoff: float = 0.75) -> Optional[str]:
    """The candidate ``word`` most likely misspells (difflib's ratio of at
    least ``cutoff``, compared in lower case), or None. Ties go to the
    first candidate in sorted order, so the answer is stable."""
    if not isinstance(word, str) or not word:
        return None
    found = difflib.get_close_matches(word.lower(), sorted(candidates), n=1, cutoff=cutoff)
    return found[0] if found else None


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

    def __post_init__(self):
        # No message may show a secret: the value of a secret field is
        # hidden, and so is every secret inside a structured value (a
        # pg_users list that differs between members, a repository...).
        if is_secret_name(self.field):
            if self.value is not None:
                object.__setattr__(self, "value", HIDDEN)
        else:
            object.__setattr__(self, "value", mask_secrets(self.value))

    def __str__(self) -> str:
        where = []
        if self.cluster is not None:
            where.append("cluster %s" % self.cluster)
        if self.host is not None:
            where.append("host %s" % self.host)
        prefix = ", ".join(where) if where else "inventory"
        return "%s: %s = %s: %s; fix: %s" % (prefix, self.field, _show(self.value), self.what, self.fix)

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


def collapse_cluster_wide(hosts: Iterable[str], found: Iterable[Problem]) -> List[Problem]:
    """The problems of one cluster, each said once: repeats dropped, and a
    problem that every one of ``hosts`` (two or more members) reports alike
    (a setting of the cluster's group vars, typically) reported once, for
    the cluster, instead of once per host."""
    members = set(hosts)
    unique: List[Problem] = []
    seen = set()
    for p in found:
        key: Tuple[Any, ...] = (p.host, p.field, repr(p.value), p.what, p.fix)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    if len(members) < 2:
        return unique
    reporters: dict = {}
    for p in unique:
        if p.host is not None:
            reporters.setdefault((p.field, repr(p.value), p.what, p.fix), set()).add(p.host)
    out: List[Problem] = []
    emitted = set()
    for p in unique:
        key = (p.field, repr(p.value), p.what, p.fix)
        if p.host is not None and reporters[key] >= members:
            if key not in emitted:
                emitted.add(key)
                out.append(Problem(p.cluster, None, p.field, p.value, p.what, p.fix))
            continue
        out.append(p)
    return out
