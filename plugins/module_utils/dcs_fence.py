# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Fence a lost source cluster in its DCS before its standby cluster is
promoted (docs/dr.md).

A standby cluster is promoted when its source is gone. Two things must be
true for that not to end with two primaries:

* the source has no leader now: its Patroni leader key (``<prefix>leader``,
  held under a lease of ``ttl`` seconds) has expired, which a running
  source renews every ``loop_wait``. A source that still holds it is
  alive, and promoting its standby cluster would give two primaries;
* when the source's nodes come back, they do not start PostgreSQL as a
  primary again: ``pause: true`` is set in the source's cluster-wide
  configuration (``<prefix>config``, the key ``patronictl pause`` writes).
  A paused Patroni does not start a stopped PostgreSQL, so the old site
  comes back with PostgreSQL down, until it is rebuilt as a standby of the
  new site.

Both are decided in one etcd transaction: the configuration is written only
if the leader key still does not exist and the configuration did not change
since it was read. :func:`fence` waits up to ``wait`` seconds for the leader
key to expire (a source killed a moment ago still has it for up to ``ttl``
seconds).

Talks to etcd through a :class:`etcd_auth.Session`; pure otherwise.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Optional, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import (
    EtcdError,
    Session,
    b64,
    unb64,
)

__all__ = ["fence", "Refused"]


class Refused(Exception):
    """The source still has a leader: nothing was written."""


def _get(session: Session, key: str) -> Tuple[Optional[str], str]:
    """(value or None, mod_revision or "0") of one key."""
    reply = session.call("/v3/kv/range", {"key": b64(key)})
    kvs = reply.get("kvs") or []
    if not kvs:
        return None, "0"
    return unb64(kvs[0].get("value")), str(kvs[0].get("mod_revision", "0"))


def _ttl(config_text: Optional[str]) -> int:
    """``ttl`` of a cluster-wide configuration, 0 when it has none."""
    try:
        ttl = json.loads(config_text or "{}").get("ttl", 0)
        return int(ttl) if not isinstance(ttl, bool) else 0
    except (ValueError, TypeError, AttributeError):
        return 0


def paused(config_text: Optional[str]) -> Dict[str, Any]:
    """The cluster-wide configuration with ``pause: true``; raises
    ValueError for a value that is no JSON object."""
    config = json.loads(config_text) if config_text else {}
    if not isinstance(config, dict):
        raise ValueError("is not a JSON object")
    return dict(config, pause=True)


def fence(
    session: Session,
    prefix: str,
    wait: float,
    check_mode: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Dict[str, Any]:
    """Pause the cluster of ``prefix`` (``/pg/pg-test/``) in its DCS once it
    has no leader. Returns ``{changed, waited, was_paused}``; raises
    :class:`Refused` when the leader key is still there after ``wait``
    seconds (at least the source's own ``ttl`` + 10 s), and ValueError for
    a configuration that is no JSON object."""
    leader_key, config_key = prefix + "leader", prefix + "config"
    # the key expires with the source's own lease: at most its ttl
    wait = max(wait, _ttl(_get(session, config_key)[0]) + 10)
    start = clock()
    while True:
        leader, _rev = _get(session, leader_key)
        if leader is None:
            break
        if clock() - start >= wait:
            raise Refused(leader)
        sleep(1)
    waited = round(clock() - start, 1)
    for _attempt in range(5):
        text, rev = _get(session, config_key)
        config = paused(text)
        if text is not None and json.loads(text).get("pause") is True:
            return {"changed": False, "waited": waited, "was_paused": True}
        if check_mode:
            return {"changed": True, "waited": waited, "was_paused": False}
        reply = session.call(
            "/v3/kv/txn",
            {
                "compare": [
                    # the leader key does not exist (it never did: version 0)
                    {"key": b64(leader_key), "target": "VERSION", "result": "EQUAL", "version": "0"},
                    # the configuration is the one read
                    {"key": b64(config_key), "target": "MOD", "result": "EQUAL", "mod_revision": rev},
                ],
                "success": [
                    {"request_put": {"key": b64(config_key), "value": b64(json.dumps(config, sort_keys=True))}}
                ],
            },
        )
        if reply.get("succeeded"):
            return {"changed": True, "waited": waited, "was_paused": False}
        leader, _rev = _get(session, leader_key)
        if leader is not None:
            raise Refused(leader)
    raise EtcdError("the configuration of %s kept changing while it was being paused" % prefix)
