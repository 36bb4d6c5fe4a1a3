#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Add a member to, promote it in, move its peer URL in, or remove it from a running etcd cluster."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_member
short_description: Join, promote, move or remove one etcd member, through the members that stay
version_added: 0.1.0
description:
  - V(present) asks the first of O(endpoints) that answers for the member list. When none answers there is no
    running cluster, and the member bootstraps a new one (RV(cluster_found) false, RV(initial_cluster_state) C(new)).
    Otherwise the member is added, as a learner by default, unless it is listed already; RV(initial_cluster) is then
    what its first start needs with C(ETCD_INITIAL_CLUSTER_STATE=existing).
  - V(voting) promotes a learner once it has caught up with the leader, retrying for up to O(wait) seconds.
  - V(absent) removes the member through one of O(endpoints), which must be members that stay. The last member is
    never removed.
  - V(moved) makes the started member O(name) listen for peers at O(peer_url) (e.g. moving from C(http://) to
    C(https://)); its advertised peer URLs are updated through one of O(endpoints), which may include the member
    itself (it is running). The member is found by name, not by peer URL. The member itself must be restarted with
    the matching listener by the caller.
  - With authentication on, membership changes are made as C(root) (O(root_password)).
  - While etcd elects a leader (etcd answers C(leader changed), C(no leader), C(request timed out), ...) the action
    is run again, for up to 20 s; it reads the member list before it changes anything.
  - C(https://) endpoints are verified against O(ca_cert); no client certificate is sent (clients authenticate as
    etcd users).
  - The logic lives in C(module_utils/etcd_members.py); this module only wires it to HTTP.
author:
  - pigpen.pgsql contributors !UNKNOWN
options:
  endpoints:
    description:
      - Client URLs of the other members (never the member itself), tried in order.
      - Except with V(moved), where the member itself may be among them (it is running).
    type: list
    elements: str
    required: true
  name:
    description: The member's name (C(etcd_name)).
    type: str
    required: true
  peer_url:
    description:
      - The member's peer URL, e.g. C(https://10.10.10.11:2380).
      - With V(moved), the peer URL it is to advertise from now on (its only one).
    type: str
    required: true
  state:
    description: What to make of the member.
    type: str
    choices: [present, voting, moved, absent]
    default: present
  learner:
    description: With V(present), add a missing member as a learner (promote it later with V(voting)).
    type: bool
    default: true
  root_password:
    description: Password of etcd's C(root) user; needed once authentication is on.
    type: str
  ca_cert:
    description:
      - CA certificate file (PEM) that verifies the server certificates of C(https://) O(endpoints), e.g. the
        deployment's own etcd CA, which is not in the system's trust store.
      - Without it, C(https://) endpoints are verified against the system's trust store. C(http://) endpoints ignore
        it.
    type: path
  wait:
    description: With V(voting), seconds to keep retrying while the learner catches up.
    type: int
    default: 60
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
notes:
  - etcd 3.4 and later (learners and their promotion appeared in 3.4).
"""

EXAMPLES = r"""
- name: Join the running cluster as a learner
  pigpen.pgsql.etcd_member:
    endpoints: [http://10.10.10.10:2379]
    name: etcd-2
    peer_url: http://10.10.10.11:2380
    root_password: "{{ etcd_root_password }}"
  register: join
  no_log: true

- name: Advertise the member's https peer URL (restart it with the https peer listener afterwards)
  pigpen.pgsql.etcd_member:
    endpoints: [https://10.10.10.10:2379, https://10.10.10.11:2379]
    name: etcd-2
    peer_url: https://10.10.10.11:2380
    state: moved
    ca_cert: /etc/etcd/ssl/ca.crt
    root_password: "{{ etcd_root_password }}"
  no_log: true

- name: Remove a member through those that stay
  pigpen.pgsql.etcd_member:
    endpoints: [http://10.10.10.10:2379]
    name: etcd-2
    peer_url: http://10.10.10.11:2380
    state: absent
    root_password: "{{ etcd_root_password }}"
  no_log: true
"""

RETURN = r"""
cluster_found:
  description: With V(present), whether one of O(endpoints) answered (a running cluster to join).
  returned: state is present
  type: bool
initial_cluster:
  description: ETCD_INITIAL_CLUSTER for the member's first start in the running cluster, or null.
  returned: state is present
  type: str
  sample: etcd-1=http://10.10.10.10:2380,etcd-2=http://10.10.10.11:2380
initial_cluster_state:
  description: C(existing) to join the running cluster, C(new) to bootstrap one.
  returned: state is present
  type: str
learner:
  description: Whether the member is a learner now.
  returned: state is present
  type: bool
members:
  description: The member list afterwards (id, name, peer_urls, client_urls, learner).
  returned: state is present, moved or absent
  type: list
  elements: dict
old_peer_urls:
  description: With V(moved), the peer URLs the member advertised before.
  returned: state is moved
  type: list
  elements: str
  sample: [http://10.10.10.11:2380]
endpoint:
  description: The endpoint that answered.
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import (
    EtcdError,
    make_post,
    retrying,
    transient,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_members import (
    ensure_member,
    move_peer,
    promote,
    remove_member,
)


def run(params, check_mode, sleep=time.sleep, clock=time.monotonic, post_for=None):
    """The module's work, separated from AnsibleModule for the tests. Each
    action reads the member list before it changes anything, so it is run
    again when etcd answers that it is electing a leader (a member was just
    killed or restarted)."""
    post_for = post_for or (lambda url: make_post(url, params["timeout"], ca_path=params.get("ca_cert")))
    endpoints = [(url, post_for(url)) for url in params["endpoints"]]
    args = (endpoints, params["name"], params["peer_url"], params["root_password"])
    if params["state"] == "present":
        return retrying(
            lambda: ensure_member(*args, learner=params["learner"], check_mode=check_mode), sleep=sleep, clock=clock
        )
    if params["state"] == "absent":
        return retrying(lambda: remove_member(*args, check_mode=check_mode), sleep=sleep, clock=clock)
    if params["state"] == "moved":
        return retrying(lambda: move_peer(*args, check_mode=check_mode), sleep=sleep, clock=clock)
    deadline = clock() + params["wait"]
    while True:
        try:
            return promote(*args, check_mode=check_mode)
        except EtcdError as exc:
            if not (getattr(exc, "retry", False) or transient(exc)) or clock() >= deadline:
                raise
            sleep(1)


def main():
    module = AnsibleModule(
        argument_spec={
            "endpoints": {"type": "list", "elements": "str", "required": True},
            "name": {"type": "str", "required": True},
            "peer_url": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": ["present", "voting", "moved", "absent"]},
            "learner": {"type": "bool", "default": True},
            "root_password": {"type": "str", "no_log": True},
            "ca_cert": {"type": "path"},
            "wait": {"type": "int", "default": 60},
            "timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    try:
        result = run(module.params, module.check_mode)
    except EtcdError as exc:
        module.fail_json(msg="etcd member %s: %s" % (module.params["name"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
