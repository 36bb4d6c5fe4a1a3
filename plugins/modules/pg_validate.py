#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Documentation of the ``pg_validate`` action (controller-side only)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_validate
short_description: Validate the PostgreSQL cluster model before touching any node
version_added: 0.1.0
description:
  - Reads the inventory on the controller (C(hostvars) and C(groups)), builds the
    cluster model of the clusters that the play's hosts belong to (whole
    clusters, even under C(--limit)), and checks identity, services, HBA rules,
    HA plan, tuning inputs, VIP, business objects and etcd membership.
  - Fails with every problem at once; each names the cluster, host, field, bad
    value and the fix, and is printed once. Contacts no node.
  - Prints its summary (clusters and instances checked) on success, without C(-v).
  - Refuses the public sandbox passwords (and the public secrets of the default object store repository), unset
    or as published, on hosts without C(pigpen_sandbox=true), the one switch that accepts them (for a throwaway test
    bed only, docs/security.md). Each is named with the clusters that use it and the setting to change.
  - Warns when C(pg_etcd_password) is empty (Pigsty's meaning, the cluster name is the etcd password).
  - Warns (C(MEMORY)) when C(pg_parameters) ask more than a member's node has, where the node's memory is only
    the reference node's (no facts, no C(pg_node_mem_mb)); with a known memory that is a problem.
  - Names, in warnings, the Pigsty settings of the clusters' hosts that this
    collection does not implement (other kernels, extension packages, other
    Pigsty modules such as INFRA, MINIO or REDIS...). A Pigsty inventory is
    accepted as it is and nothing it sets is dropped silently (docs/pigsty.md).
options:
  hosts:
    description:
      - Hosts whose clusters are checked. Defaults to C(ansible_play_hosts_all).
    type: list
    elements: str
  all_clusters:
    description:
      - Check every cluster of the inventory instead of those of the play's hosts.
    type: bool
    default: false
  warn_pigsty_settings:
    description:
      - Warn about the Pigsty settings this collection does not implement, once per setting (or group of another
        module's settings), naming the clusters.
    type: bool
    default: true
  role_options:
    description:
      - Also check every role variable the inventory sets for the checked hosts (and the etcd members) against the
        C(main) entry point of that role's C(meta/argument_specs.yml) (type, elements, choices, sub-options). Variables
        of the cluster vocabulary are checked by the model instead.
    type: bool
    default: true
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    support: full
    platforms: all
notes:
  - Runs as an action plugin on the controller; use it with C(run_once=true).
author:
  - pigpen.pgsql contributors !UNKNOWN
"""

EXAMPLES = r"""
- name: Validate the cluster model (controller only)
  pigpen.pgsql.pg_validate:
  run_once: true

- name: Validate every cluster of the inventory
  pigpen.pgsql.pg_validate:
    all_clusters: true
  run_once: true
"""

RETURN = r"""
clusters:
  description: Names of the clusters that were checked.
  returned: always
  type: list
  elements: str
  sample: [pg-meta, pg-test]
instances:
  description: Number of PostgreSQL instances checked.
  returned: always
  type: int
  sample: 4
problems:
  description:
    - Every problem found, each with cluster, host, field, value, what, fix and message. Empty when the inventory is
      valid.
    - On failure the problems are printed once, one line each, and C(msg) only counts them; this list is in the
      result when the task is registered or run with C(-v).
  returned: always, on failure with -v or when registered
  type: list
  elements: dict
  sample:
    - cluster: pg-test
      host: 10.10.10.12
      field: pg_seq
      value: 1
      what: is already used by host 10.10.10.11 (instance pg-test-1)
      fix: give every instance of pg-test its own pg_seq
      message: "cluster pg-test, host 10.10.10.12: pg_seq = 1: is already used by ..."
pigsty_settings:
  description: The warnings about Pigsty settings this collection does not implement.
  returned: when the inventory is valid and I(warn_pigsty_settings) is true
  type: list
  elements: str
  sample:
    - "pg_mode = 'citus': other PostgreSQL kernels (Citus, Babelfish, ...) are not implemented: the cluster runs
      Debian's PostgreSQL (not implemented by this collection; cluster(s) pg-citus1)"
"""

# No code: the action plugin of the same name (plugins/action/pg_validate.py) does the work on the controller.
