#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Read several files of a node in one module run (render-compare.yml)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pg_read_files
short_description: Read a list of files of a node, base64-encoded, in one run
version_added: 0.1.0
description:
  - Returns the content of every file of O(paths) that exists and is readable, base64-encoded, and null for the
    others (with the reason under RV(errors)). Changes nothing.
  - One module run for all the files of a node, where C(ansible.builtin.slurp) takes one run (and one output line) per
    file. C(playbooks/render-compare.yml) reads the files the roles write with it and compares them with the dry
    render on the controller.
  - The files may hold passwords, so use it with C(no_log=true).
options:
  paths:
    description: Absolute paths of the files to read.
    type: list
    elements: path
    required: true
  max_size:
    description: Files larger than this many bytes are not read (null, with the reason under RV(errors)).
    type: int
    default: 1048576
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
author:
  - pigpen.pgsql contributors !UNKNOWN
"""

EXAMPLES = r"""
- name: Read the files the roles write
  pigpen.pgsql.pg_read_files:
    paths: [/etc/patroni/config.yml, /etc/pgbouncer/pgbouncer.ini]
  register: live
  no_log: true
"""

RETURN = r"""
files:
  description: Path to base64-encoded content, null when the file could not be read.
  returned: always
  type: dict
  sample: {"/etc/pgbouncer/pgbouncer.ini": "IyBwZ2JvdW5jZXIuaW5p...", "/etc/pg-vip.json": null}
errors:
  description: Path to the reason a file was not read (absent, not a regular file, too large, no permission).
  returned: always
  type: dict
  sample: {"/etc/pg-vip.json": "absent"}
"""

import base64
import os
import stat

from ansible.module_utils.basic import AnsibleModule


def read_files(paths, max_size):
    """({path: base64 or None}, {path: reason}) of every path."""
    files, errors = {}, {}
    for path in paths:
        files[path] = None
        try:
            info = os.stat(path)
        except FileNotFoundError:
            errors[path] = "absent"
            continue
        except OSError as exc:
            errors[path] = exc.strerror or str(exc)
            continue
        if not stat.S_ISREG(info.st_mode):
            errors[path] = "not a regular file"
        elif info.st_size > max_size:
            errors[path] = "larger than %d bytes" % max_size
        else:
            try:
                with open(path, "rb") as handle:
                    files[path] = base64.b64encode(handle.read()).decode("ascii")
            except OSError as exc:
                errors[path] = exc.strerror or str(exc)
    return files, errors


def main():
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "required": True},
            "max_size": {"type": "int", "default": 1048576},
        },
        supports_check_mode=True,
    )
    files, errors = read_files(module.params["paths"], module.params["max_size"])
    module.exit_json(changed=False, files=files, errors=errors)


if __name__ == "__main__":
    main()
