# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Which of a role's packages a node still lacks, from ``dpkg_facts``.

The roles skip their apt task when nothing is missing: a re-run then spends
no time opening apt's cache. The answer errs towards "missing": apt is
idempotent, so a false "missing" only costs time, a false "installed" would
leave a package out.
"""

from __future__ import annotations

import fnmatch
import re

# what the apt module accepts besides a bare name: name=version (with *
# wildcards), name:arch, and comparisons (name>=version) which this module
# does not judge
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9+.\-]*)(?::[A-Za-z0-9\-]+)?(?:=(?P<version>.+))?$")


def missing(wanted, installed):
    """The entries of ``wanted`` (package specs as the apt module takes them)
    that ``installed`` ({name: version}, or None when unknown) does not
    satisfy, in order, without repeats.

    A bare name (or name:arch) is satisfied by any installed version;
    ``name=version`` by a matching version (``*`` wildcards as apt allows);
    anything else (``name>=1``, a .deb path) is always reported missing so
    that apt decides.
    """
    out = []
    for spec in wanted or ():
        spec = str(spec).strip()
        if not spec or spec in out:
            continue
        if installed is None:
            out.append(spec)
            continue
        match = _PIN.match(spec)
        if match is None:
            out.append(spec)
            continue
        version = installed.get(match.group("name"))
        pin = match.group("version")
        if version is None or (pin is not None and not fnmatch.fnmatchcase(version, pin)):
            out.append(spec)
    return out
