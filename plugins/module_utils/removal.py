# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Which members of a removal may be the leader (``pgsql-rm.yml``).

Pure Python; nothing here imports Ansible. Each member to remove was asked
``GET /leader``: 200 means it leads (the primary, or a standby
cluster's standby leader), 503 that it does not. Any other
answer, or none (Patroni stopped or hung, status -1), does not say it is
not the leader: PostgreSQL may still run as the primary under a dead
Patroni. Such a member counts as *may be the leader*, unless a member that
stays answered ``GET /cluster`` naming a leader outside the removal, which
settles it (Patroni's answer, not the inventory's).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional

from ansible_collections.pigpen.pgsql.plugins.module_utils.patroni_ops import (
    LEADER_ROLES,
)


def _leader_named(views: Iterable[Any]) -> Optional[str]:
    """The leader a member that stays reports, or None."""
    for view in views:
        if not isinstance(view, Mapping):
            continue
        for member in view.get("members") or []:
            if isinstance(member, Mapping) and member.get("role") in LEADER_ROLES:
                return member.get("name")
    return None


def removal_leaders(
    answers: Mapping[str, Any], names: Mapping[str, str], views: Iterable[Any] = ()
) -> Dict[str, List[str]]:
    """Sort the members to remove by what their Patroni said.

    ``answers``: host -> status of ``GET /leader`` (-1: no answer);
    ``names``: host -> member name; ``views``: the ``GET /cluster`` answers
    of the members that stay (None or anything else for no answer).

    Returns ``leaders`` (answered 200), ``unknown`` (no clear answer and no
    member that stays names another leader), ``settled`` (no clear answer,
    but a member that stays names a leader outside the removal) and
    ``last`` (leaders and unknown: stopped last, after the replicas), each
    in the order of ``answers``.
    """
    hosts = list(answers)
    leaders = [h for h in hosts if _status(answers[h]) == 200]
    unclear = [h for h in hosts if _status(answers[h]) not in (200, 503)]
    named = _leader_named(views)
    removed_names = {names.get(h) for h in hosts}
    if named is not None and named not in removed_names:
        settled, unknown = unclear, []
    else:
        settled, unknown = [], unclear
    return {"leaders": leaders, "unknown": unknown, "settled": settled, "last": leaders + unknown}


def _status(value: Any) -> Optional[int]:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
