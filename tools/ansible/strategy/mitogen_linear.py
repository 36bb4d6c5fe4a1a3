# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Ansible's linear strategy run over Mitogen (pip package ``mitogen``).

The repository's ansible.cfg selects it (``strategy = mitogen_linear``):
Mitogen keeps one Python interpreter per node alive for the whole run
instead of starting one per task, which halves the time of a run over
the sandbox (bench/results/deploy.json, README). Nothing in the collection depends on
it: with ``ANSIBLE_STRATEGY=linear`` the same playbooks run on stock
Ansible, and the Molecule scenario ``default`` does exactly that.
"""

import ansible_mitogen.loaders
import ansible_mitogen.strategy

_Linear = ansible_mitogen.loaders.strategy_loader.get("linear", class_only=True)


class StrategyModule(ansible_mitogen.strategy.StrategyMixin, _Linear):
    """The linear strategy, with Mitogen's connection and module runner."""
