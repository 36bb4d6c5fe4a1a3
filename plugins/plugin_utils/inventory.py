# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Controller-side glue shared by the filter and action plugins.

Turns Ansible's ``hostvars``/``groups`` into the plain data of the model and
runs the model, so that every plugin reads the inventory the same way.
"""

from __future__ import annotations

from typing import Any, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils import plan
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    Inventory,
)


def load_checked(hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]],
                 hosts: Optional[Iterable[str]] = None
                 ) -> Tuple[Inventory, List[Problem]]:
    """Snapshot the clusters of ``hosts`` (all when None) and validate them.

    Returns the loaded inventory and every problem found (sorted).
    """
    snap = plan.snapshot(hostvars, groups, hosts)
    inv = plan.analyze(snap["hostvars"], snap["groups"], snap["clusters"])
    found = list(snap["errors"]) + plan.problems(inv)
    return inv, (ModelError(found).problems if found else [])


def load_valid(hostvars: Mapping[str, Any], groups: Mapping[str, Sequence[str]],
               hosts: Optional[Iterable[str]] = None) -> Inventory:
    """Like :func:`load_checked` but raise :class:`ModelError` on problems."""
    inv, found = load_checked(hostvars, groups, hosts)
    if found:
        raise ModelError(found)
    return inv
