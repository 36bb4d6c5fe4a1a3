# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Make ``ansible_collections.pigpen.pgsql`` importable from the repo."""

import os
import sys

_COLLECTIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, ".collections")
_COLLECTIONS = os.path.normpath(_COLLECTIONS)
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)

# Test helpers (inv.py) live beside this file.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

# Hypothesis's per-example deadline (200 ms) measures the machine, not the
# code: on a loaded CI machine it failed a property test. Speed is measured
# by the benchmarks (make bench), so the unit tests run without it.
from hypothesis import settings  # noqa: E402

settings.register_profile("pigpen", deadline=None)
settings.load_profile("pigpen")
