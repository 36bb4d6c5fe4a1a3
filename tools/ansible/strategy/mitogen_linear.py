# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Ansible's linear strategy run over Mitogen (pip package ``mitogen``).

The repository's ansible.cfg selects it (``strategy = mitogen_linear``):
Mitogen keeps one Python interpreter per node alive for the whole run
instead of starting one per task, which halves the time of a run over
the sandbox (bench/results/deploy.json, README). Nothing in the collection depends on
it: with ``ANSIBLE_STRATEGY=linear`` the same playbooks run on stock
Ansible, and the Molecule scenario ``default`` does exactly that.

Loading it also installs the controller caches of ``_speedups.py`` (Jinja
code, collection paths) before the first worker is forked, and drops the
one deprecation notice ansible-core prints for any strategy that is not
its own (every other deprecation is still printed).
"""

import importlib.util
import os
import sys
from typing import Any

import ansible_mitogen.loaders
import ansible_mitogen.strategy


def _load_speedups():
    """Import _speedups.py from this directory (Ansible ignores files named _*)."""
    name = "pigpen_strategy_speedups"
    if name not in sys.modules:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_speedups.py")
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[name] = module
    return sys.modules[name]


#: The notice ansible-core (2.19) prints for every strategy plugin that is
#: not its own, each run, whatever the playbook. It tells nothing about the
#: playbooks: this strategy is a stock linear strategy with Mitogen's
#: connection, used with the ansible-core and Mitogen of requirements.txt,
#: and ANSIBLE_STRATEGY=linear runs without it.
STRATEGY_NOTICE = "Use of strategy plugins not included in ansible.builtin are deprecated"


def _quiet_strategy_notice():
    """Drop that one deprecation notice, and only that one: every other
    deprecation (of a module, a filter, a setting the playbooks use) is
    still printed, which turning deprecation_warnings off in ansible.cfg
    would hide. The notice is issued right after this module is imported."""
    from ansible.utils.display import Display

    original = Display.deprecated
    if getattr(original, "pigpen_filters", None) == STRATEGY_NOTICE:
        return

    def deprecated(self, msg, *args, **kwargs):
        if isinstance(msg, str) and msg.startswith(STRATEGY_NOTICE):
            return None
        return original(self, msg, *args, **kwargs)

    deprecated.pigpen_filters = STRATEGY_NOTICE
    deprecated.__doc__ = original.__doc__
    Display.deprecated = deprecated


_quiet_strategy_notice()

# Before the first worker is forked: the workers inherit the caches.
_load_speedups().install()

# a class found at run time: Any to the type checker
_Linear: Any = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    """The linear strategy, with Mitogen's connection and module runner."""
