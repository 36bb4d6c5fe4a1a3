#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Documentation of the ``pg_render`` action (controller-side only)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_render
short_description: Render the configuration files of PostgreSQL instances on the controller, or compare them
version_added: 0.1.0
description:
  - In one call on the controller, computes for every PostgreSQL instance of O(hosts) the files the roles write on its
    node, with the roles' own templates (each role's defaults, the host's variables over them, the role's private
    variables over those) - HAProxy service fragments, C(pg_hba.conf) (which Patroni writes), C(pgbouncer.ini) and
    C(pgb_hba.conf), Patroni's C(config.yml), C(pgbackrest.conf), the C(pg_crontab) cron file, C(/etc/pg-vip.json)
    when the cluster has a VIP, and C(vector.yaml). A component a host turns off (C(haproxy_enabled),
    C(pgbouncer_enabled), C(pgbackrest_enabled), C(vector_enabled)) has no file.
  - With O(dest), writes them where they sit on the node, under C(<dest>/<instance>/)
    (C(<dest>/pg-test-1/etc/patroni/config.yml)), with the model's plan in C(<dest>/<instance>/plan.json). A file is
    rewritten only when its content or mode changed; a file a previous render wrote and this one does not is removed
    (the list is kept in C(<dest>/<instance>/.rendered-files)); nothing else in O(dest) is touched.
  - With O(paths_only), returns the node paths of every instance's files and writes nothing.
  - With O(live_var), compares every file with the node's copy that C(pigpen.pgsql.pg_read_files) read (registered
    under that name on each host) and prints a unified diff for each file that differs, with every secret masked on
    both sides; the two header lines Patroni writes into C(pg_hba.conf) are not a difference.
  - Prints once which node size each instance is tuned for (the inventory's C(pg_node_mem_mb)/C(pg_node_cpu), the
    gathered facts, or the reference node of a run that gathered none).
options:
  dest:
    description:
      - The render directory on the controller (C(render_dir) of C(playbooks/render.yml)).
    type: path
  secrets:
    description:
      - Write the secrets into the files instead of C(********).
    type: bool
    default: false
  hosts:
    description:
      - Hosts whose instances are rendered. Defaults to C(ansible_play_hosts_all); hosts without C(pg_cluster) are
        left out.
    type: list
    elements: str
  paths_only:
    description:
      - Return RV(paths) only.
    type: bool
    default: false
  live_var:
    description:
      - Name of the variable holding each host's C(pigpen.pgsql.pg_read_files) result; compare instead of writing.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  platform:
    support: full
    platforms: all
notes:
  - Runs as an action plugin on the controller; use it with C(run_once=true) and C(delegate_to=localhost).
  - Contacts no node.
author:
  - pigpen.pgsql contributors !UNKNOWN
"""

EXAMPLES = r"""
- name: Render every instance's files (playbooks/render.yml)
  pigpen.pgsql.pg_render:
    dest: /tmp/render
  run_once: true
  delegate_to: localhost

- name: Compare with the nodes (playbooks/render-compare.yml)
  pigpen.pgsql.pg_render:
    live_var: __compare_live
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
msg:
  description: What was written or found, in one line.
  returned: always
  type: str
  sample: "4 instance(s) rendered into /tmp/render: 51 file(s) written, 0 unchanged (secrets masked)"
tuning:
  description: The node size each instance is tuned for.
  returned: unless paths_only
  type: str
  sample: "Tuned for pg-test-1, pg-test-2: 4096 MiB, 2 CPU(s), from the reference node (no facts gathered)"
written:
  description: Instance to the node paths (and C(plan.json)) written or removed by this run.
  returned: with dest
  type: dict
paths:
  description: Host to the node paths of its instance's files.
  returned: with paths_only
  type: dict
  sample: {"10.10.10.11": ["/etc/haproxy/conf.d/pg-test-default.cfg", "/pg/conf/pg_hba.conf"]}
compared:
  description: Instance to a list of C({path, state}); state is C(same), C(differs), C(secrets) (hidden values
    only) or C(missing) (not on the node).
  returned: with live_var
  type: dict
"""

# No code: the action plugin of the same name (plugins/action/pg_render.py) does the work on the controller.
