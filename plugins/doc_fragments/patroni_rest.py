# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The options of every module that talks to Patroni's REST API
(plugins/module_utils/patroni_client.py REST_ARGUMENT_SPEC)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  url:
    description:
      - Base URL of a member's REST API; any member of the cluster will do.
    type: str
    default: http://127.0.0.1:8008
  username:
    description:
      - REST API user (C(restapi.authentication.username)); sent with every request that is not a GET.
    type: str
  password:
    description:
      - REST API password.
    type: str
  timeout:
    description:
      - Seconds to wait for each HTTP request.
    type: int
    default: 10
  validate_certs:
    description:
      - Check the REST API's certificate when O(url) is https.
    type: bool
    default: true
  ca_path:
    description:
      - CA that signed the REST API's certificate (the deployment's CA, C(/pg/cert/ca.crt) on the nodes) when O(url)
        is https; the system's CAs when unset.
    type: path
"""
