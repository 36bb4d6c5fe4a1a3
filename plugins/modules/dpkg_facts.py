#!/usr/bin/python
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The installed Debian packages as ansible_facts.dpkg_packages, read with dpkg-query."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dpkg_facts
short_description: Read the installed Debian packages into ansible_facts.dpkg_packages, fast
version_added: 0.1.0
description:
  - Sets C(ansible_facts.dpkg_packages), a dict of installed package name to version string, from one
    C(dpkg-query -W) call. For a package installed for several architectures (multiarch), the version of the first
    one dpkg lists is kept.
  - The dict is flat on purpose. Ansible deep-copies every fact of a host for every task it runs there; the
    C(ansible.builtin.package_facts) format (a list of C({name, version, arch, source}) per package) costs about
    ten times as much to copy, and the roles only ask whether a package is installed.
    C(ansible_facts.packages) of C(package_facts) is neither read nor written.
  - Only installed packages are listed (state C(i), that is C(ii), and C(hi) for a package on hold, C(ri)/C(pi) for one
    marked for removal); removed packages with leftover configuration (C(rc)) and half-installed ones are not.
  - C(package_facts) with the C(apt) manager opens apt's whole cache through python3-apt, which takes about half a
    second per node and is absent on a bare node; C(dpkg-query) answers in milliseconds and is always there.
    The roles read these facts to skip apt for packages that are already installed.
author:
  - pigpen.pgsql contributors !UNKNOWN
options: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  platform:
    support: full
    platforms: posix
  check_mode:
    support: full
  diff_mode:
    support: none
  facts:
    support: full
"""

EXAMPLES = r"""
- name: Read the installed packages
  pigpen.pgsql.dpkg_facts:

- name: Install what is missing
  ansible.builtin.apt:
    name: "{{ wanted | reject('in', ansible_facts.dpkg_packages) | list }}"
"""

RETURN = r"""
ansible_facts:
  description: C(dpkg_packages), package name to version.
  sample: {"dpkg_packages": {"patroni": "3.0.2-1", "libc6": "2.36-9+deb12u4"}}
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

FORMAT = "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n"


def parse(text):
    """dpkg-query output in FORMAT -> package_facts' ``packages`` dict."""
    packages = {}
    for line in text.splitlines():
        fields = line.split("\t")
        # the second letter is the state: i = installed, whatever is wanted
        # of it (i install, h hold, r remove, p purge)
        if len(fields) != 4 or fields[0][1:2] != "i":
            continue
        _skip, name, version, arch = fields
        packages.setdefault(name, []).append({"name": name, "version": version, "arch": arch, "source": "apt"})
    return packages


def versions(packages):
    """parse()'s dict -> {name: version} (the first architecture's version)."""
    return {name: entries[0]["version"] for name, entries in packages.items()}


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    rc, out, err = module.run_command(["dpkg-query", "-W", "-f=" + FORMAT])
    if rc != 0:
        module.fail_json(msg="dpkg-query failed (%d): %s" % (rc, err.strip()))
    module.exit_json(changed=False, ansible_facts={"dpkg_packages": versions(parse(out))})


if __name__ == "__main__":
    main()
