#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Converge etcd v3 users, roles and authentication."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: etcd_auth
short_description: Per-cluster etcd users and roles, and etcd v3 authentication
version_added: 0.1.0
description:
  - Gives every user in O(users) a role of the same name that may read and write only below its O(users[].prefix)
    (for a PostgreSQL cluster, C(<pg_namespace>/<pg_cluster>/)), creates missing users and roles, revokes other
    permissions of those roles, and resets a password only when etcd refuses the wanted one.
  - With O(enable), creates C(root) with O(root_password) and switches authentication on (once; afterwards every call
    authenticates as C(root)).
  - Talks to etcd's v3 JSON gateway (C(/v3/auth/...)); runs on any host that reaches O(endpoint), usually an etcd
    member itself. Users and roles not named in O(users) are left alone.
  - An C(https://) O(endpoint) is verified against O(ca_cert); no client certificate is sent (the module
    authenticates as C(root)).
  - While etcd elects a leader (etcd answers C(leader changed), C(no leader), C(request timed out), ...) the whole
    convergence is run again, for up to 20 s; it reads the state before it changes anything.
author:
  - pigpen.pgsql contributors !UNKNOWN
options:
  endpoint:
    description: Client URL of an etcd member, e.g. C(https://10.10.10.10:2379).
    type: str
    default: http://127.0.0.1:2379
  ca_cert:
    description:
      - CA certificate file (PEM) that verifies the server certificate of an C(https://) O(endpoint), e.g. the
        deployment's own etcd CA, which is not in the system's trust store.
      - Without it, an C(https://) endpoint is verified against the system's trust store. An C(http://) endpoint
        ignores it.
    type: path
  root_password:
    description: Password of etcd's C(root) user.
    type: str
    required: true
  users:
    description: The users (one per PostgreSQL cluster) and the key prefix each may use.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: User and role name (the cluster name).
        type: str
        required: true
      password:
        description: The user's password.
        type: str
        required: true
      prefix:
        description: Key prefix the user's role may read and write, ending with C(/).
        type: str
        required: true
  enable:
    description:
      - Create C(root) and switch authentication on when it is off.
      - With V(false), authentication is left as found.
    type: bool
    default: true
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
  - etcd 3.4 and later (Debian 12 ships 3.4).
"""

EXAMPLES = r"""
- name: Users of every PostgreSQL cluster, then authentication on
  pigpen.pgsql.etcd_auth:
    root_password: "{{ etcd_root_password }}"
    users:
      - name: pg-test
        password: "{{ pg_etcd_password }}"
        prefix: /pg/pg-test/
  no_log: true

- name: The same over TLS, verified against the deployment's etcd CA
  pigpen.pgsql.etcd_auth:
    endpoint: https://10.10.10.10:2379
    ca_cert: /etc/etcd/ssl/ca.crt
    root_password: "{{ etcd_root_password }}"
    enable: false
  no_log: true
"""

RETURN = r"""
actions:
  description: What was changed (or would be, in check mode), without passwords.
  returned: always
  type: list
  elements: str
  sample: ["add role pg-test", "grant READWRITE /pg/pg-test/ to role pg-test", "enable authentication"]
auth_enabled:
  description: Whether authentication is on afterwards.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import (
    EtcdError,
    converge,
    make_post,
    retrying,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "endpoint": {"type": "str", "default": "http://127.0.0.1:2379"},
            "ca_cert": {"type": "path"},
            "root_password": {"type": "str", "required": True, "no_log": True},
            "users": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "name": {"type": "str", "required": True},
                    "password": {"type": "str", "required": True, "no_log": True},
                    "prefix": {"type": "str", "required": True},
                },
            },
            "enable": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    for user in params["users"]:
        if not user["prefix"].endswith("/"):
            module.fail_json(
                msg="users[%s].prefix %r must end with / (e.g. /pg/%s/)" % (user["name"], user["prefix"], user["name"])
            )
    try:
        # converge reads before it writes: run again during an etcd election
        post = make_post(params["endpoint"], params["timeout"], ca_path=params["ca_cert"])
        result = retrying(
            lambda: converge(post, params["root_password"], params["users"], params["enable"], module.check_mode)
        )
    except EtcdError as exc:
        module.fail_json(msg="etcd %s: %s" % (params["endpoint"], exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
