# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The programs the roles install on the nodes (roles/<role>/files/*.py),
loaded as modules for their tests."""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, os.pardir))


def path(role: str, name: str) -> str:
    """roles/<role>/files/<name> in this checkout."""
    return os.path.join(REPO, "roles", role, "files", name)


def load(role: str, name: str, register: bool = False) -> ModuleType:
    """roles/<role>/files/<name> imported as a module named after the file;
    with ``register``, also in sys.modules under that name (for what looks
    a module up by name while it runs, e.g. dataclasses)."""
    module_name = name[:-3] if name.endswith(".py") else name
    spec = importlib.util.spec_from_file_location(module_name, path(role, name))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    if register:
        sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
