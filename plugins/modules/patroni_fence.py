#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Pause a lost Patroni cluster in its DCS once it has no leader."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: patroni_fence
short_description: Pause a lost Patroni cluster in etcd, once its leader key has expired
version_added: 0.1.0
description:
  - Used before a standby cluster is promoted because its source is gone (docs/dr.md). Waits up to O(wait) seconds
    for the source's leader key (C(<prefix>leader)) to expire, then sets C(pause) to V(true) in its cluster-wide
    configuration (C(<prefix>config)), in one etcd transaction that succeeds only while the leader key does not
    exist and the configuration is the one read.
  - A paused Patroni does not start a stopped PostgreSQL. When the source's nodes come back, PostgreSQL stays down
    instead of starting as a second primary.
  - Fails, writing nothing, when the leader key is still there after O(wait) seconds. The source is then alive (a
    running Patroni renews the key every C(loop_wait) seconds), and promoting its standby cluster would give two
    primaries.
  - Talks to etcd's v3 JSON gateway as C(root) (or without authentication when etcd has none).
author:
  - pigpen.pgsql contributors !UNKNOWN
options:
  endpoints:
    description:
      - Client URLs of the etcd members of the source's DCS, e.g. C(https://10.10.10.10:2379), tried in turn until
        one answers (a member at the lost site does not).
    type: list
    elements: str
    required: true
  ca_cert:
    description: CA certificate file (PEM) that verifies C(https://) O(endpoints).
    type: path
  root_password:
    description: Password of etcd's C(root) user (ignored when etcd has no authentication).
    type: str
    required: true
  prefix:
    description: The source cluster's keys, C(<pg_namespace>/<pg_cluster>/), e.g. C(/pg/pg-test/).
    type: str
    required: true
  wait:
    description: Seconds to wait for the leader key to expire (the source's C(ttl) and a little more).
    type: int
    default: 40
  timeout:
    description: Seconds to wait for each request.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  platform:
    support: full
    platforms: posix
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Pause pg-test, which was lost, before its standby cluster is promoted
  pigpen.pgsql.patroni_fence:
    endpoints: [https://10.10.10.10:2379]
    ca_cert: /pg/cert/ca.crt
    root_password: "{{ etcd_root_password }}"
    prefix: /pg/pg-test/
  no_log: true
"""

RETURN = r"""
waited:
  description: Seconds spent waiting for the leader key to expire.
  returned: success
  type: float
was_paused:
  description: Whether the configuration had C(pause) already.
  returned: success
  type: bool
refused:
  description: V(true) when the source still has a leader (then nothing was written).
  returned: failure
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils.dcs_fence import Refused, fence
from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import (
    EtcdError,
    Session,
    auth_failed,
    make_post,
    not_enabled,
)


def run(module, posts, **clock):
    """The fence through the first of ``posts`` (endpoint -> etcd's
    gateway) that answers; ``clock``: ``sleep`` and ``clock`` for
    :func:`dcs_fence.fence` (tests)."""
    params = module.params
    prefix = params["prefix"]
    if not prefix.startswith("/") or not prefix.endswith("/"):
        module.fail_json(msg="prefix %r must start and end with / (e.g. /pg/pg-test/)" % prefix)
    unanswered = []
    for endpoint, post in posts:
        session = Session(post)
        try:
            try:
                session.token = session.authenticate("root", params["root_password"])
            except EtcdError as exc:
                if auth_failed(exc):
                    module.fail_json(msg="etcd %s refused root's password (etcd_root_password)" % endpoint)
                if not not_enabled(exc):
                    raise
            return fence(session, prefix, params["wait"], module.check_mode, **clock)
        except Refused as exc:
            module.fail_json(
                msg="%s still has a leader in etcd (%s) after its key had time to expire (%d s, or its ttl + 10 s): it "
                "is running, and promoting its standby cluster would give two primaries. Nothing was changed. Stop "
                "the source's Patroni first, then run again." % (prefix.strip("/"), exc, params["wait"]),
                refused=True,
            )
        except ValueError as exc:
            module.fail_json(msg="%sconfig in etcd %s; nothing was changed" % (prefix, exc))
        except EtcdError as exc:
            if exc.status is not None:  # etcd answered: another member would answer the same
                module.fail_json(msg="etcd %s: %s" % (endpoint, exc))
            unanswered.append("%s: %s" % (endpoint, exc))
    module.fail_json(msg="no etcd endpoint answered, nothing was changed: %s" % "; ".join(unanswered))
    return None


def main():
    module = AnsibleModule(
        argument_spec={
            "endpoints": {"type": "list", "elements": "str", "required": True},
            "ca_cert": {"type": "path"},
            "root_password": {"type": "str", "required": True, "no_log": True},
            "prefix": {"type": "str", "required": True},
            "wait": {"type": "int", "default": 40},
            "timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    posts = [(e, make_post(e, params["timeout"], ca_path=params["ca_cert"])) for e in params["endpoints"]]
    module.exit_json(**run(module, posts))


if __name__ == "__main__":
    main()
