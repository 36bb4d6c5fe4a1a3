# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin behind ``pigpen.pgsql.pg_validate`` (docs in
``plugins/modules/pg_validate.py``). Runs on the controller only."""

from __future__ import annotations

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    safety,
    validate,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
)
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import (
    load_checked,
)
from ansible_collections.pigpen.pgsql.plugins.plugin_utils import role_options

display = Display()

ARGUMENT_SPEC = {
    "hosts": {"type": "list", "elements": "str"},
    "all_clusters": {"type": "bool", "default": False},
    "warn_pigsty_settings": {"type": "bool", "default": True},
    "role_options": {"type": "bool", "default": True},
}


class ActionModule(ActionBase):
    """Validate the cluster model of the play's hosts before any node is
    touched."""

    TRANSFERS_FILES = False
    _requires_connection = False

    @staticmethod
    def _targets(inv, hosts):
        """(host, cluster) of every instance and etcd member loaded, and of
        the other hosts of the play."""
        out = [(m.host, c.name) for c in inv.clusters.values() for m in c.members]
        seen = {h for h, _skip in out}
        for m in inv.etcd:
            if m.host not in seen:
                out.append((m.host, "etcd"))
                seen.add(m.host)
        for host in hosts or ():
            if host not in seen:
                out.append((host, None))
                seen.add(host)
        return out

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if checked.error_messages:
            raise AnsibleActionFail("pg_validate: %s" % "; ".join(checked.error_messages))
        args = checked.validated_parameters

        if args["all_clusters"]:
            hosts = None
        else:
            hosts = args["hosts"] or task_vars.get("ansible_play_hosts_all") or []
        inv, problems = load_checked(task_vars["hostvars"], task_vars["groups"], hosts)
        if args["role_options"]:
            problems = problems + role_options.check_hosts(
                task_vars["hostvars"], self._targets(inv, hosts), skip=validate.MODEL_VARS
            )
        # the host names the node role will set, for every host of the play
        # (a name the model refused already is not reported twice)
        named = {(p.cluster, p.host) for p in problems if p.field in ("nodename", "node_name", "pg_cluster", "pg_seq")}
        problems = problems + [
            p
            for p in validate.node_name_problems(self._targets(inv, hosts), task_vars["hostvars"])
            if (p.cluster, p.host) not in named and (p.cluster, None) not in named
        ]
        # The public sandbox passwords are refused outside the sandbox
        # (pigpen_sandbox: true is the one switch, docs/security.md).
        refused = safety.sandbox_password_problems(inv)
        if refused:
            problems = ModelError(problems + refused).problems

        result.update(
            {
                "changed": False,
                "clusters": sorted(inv.clusters),
                "instances": sum(len(c.members) for c in inv.clusters.values()),
            }
        )
        if problems:
            # Each problem is printed once, here. Ansible prints a failed
            # task's msg twice (the error line and the result), so msg
            # only counts them; the list of dicts is in the result from -v
            # on (registered results always hold it).
            display.display(_problem_list(problems), color=C.COLOR_ERROR)
            result["failed"] = True
            result["msg"] = "%d problem(s) in the inventory, listed above; nothing was changed" % len(problems)
            if display.verbosity > 0 or self._task.register:
                result["problems"] = [p.as_dict() for p in problems]
            return result
        result["problems"] = []

        for line in safety.empty_etcd_password_warnings(inv):
            display.warning("GUESSABLE PASSWORD: " + line)
        for line in validate.tuning_warnings(inv):
            display.warning("MEMORY: " + line)
        if args["warn_pigsty_settings"]:
            result["pigsty_settings"] = validate.pigsty_warnings(inv, own=role_options.load_specs())
            for line in result["pigsty_settings"]:
                display.warning("PIGSTY SETTING: " + line)
        result["msg"] = "%d cluster(s), %d instance(s): valid" % (len(inv.clusters), result["instances"])
        if inv.clusters:
            result["msg"] += " (%s)" % ", ".join(sorted(inv.clusters))
        # the summary without -v (the ok line alone says nothing)
        display.display(result["msg"])
        return result


def _problem_list(problems):
    """The problems as a person reads them: a count, then one line each."""
    return "\n".join(
        [
            "The inventory does not describe valid PostgreSQL clusters "
            "(%d problem(s)); nothing was changed:" % len(problems)
        ]
        + ["  - %s" % p for p in problems]
    )
