# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Action plugin behind ``pigpen.pgsql.pg_render`` (docs in
``plugins/modules/pg_render.py``). Runs on the controller only.

One call computes the files of every instance: the model's plans, the
roles' own templates (read from the collection's ``roles/``, with each
role's defaults, the host's variables over them and the role's private
variables over those, as a role run would see them), then writes them
under ``dest`` or compares them with the node copies that the playbook read
(``playbooks/render-compare.yml``)."""

from __future__ import annotations

import base64
import json
import os
import tempfile

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template
from ansible.utils.display import Display

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    plan,
    render,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
)
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import (
    load_valid,
)

display = Display()

ARGUMENT_SPEC = {
    "dest": {"type": "path"},
    "secrets": {"type": "bool", "default": False},
    "hosts": {"type": "list", "elements": "str"},
    "paths_only": {"type": "bool", "default": False},
    "live_var": {"type": "str"},
}

ROLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")

#: Files a node may lack without a difference: the vector role writes
#: nothing where no vector package can be installed (docs/vector.md).
OPTIONAL = ("vector.yaml",)

#: The list of files the render wrote last, per instance directory: a file
#: of it that the next render does not produce is removed.
MANIFEST = ".rendered-files"


class ActionModule(ActionBase):
    """Render (or compare) the configuration files of the play's
    PostgreSQL instances in one call on the controller."""

    TRANSFERS_FILES = False
    _requires_connection = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._role_cache = {}
        self._text_cache = {}

    # ---- the roles' data and templates ----

    def _role(self, name):
        if name not in self._role_cache:
            data = []
            for part in ("defaults", "vars"):
                path = os.path.join(ROLES, name, part, "main.yml")
                loaded = self._loader.load_from_file(path, trusted_as_template=True) if os.path.exists(path) else None
                data.append(dict(loaded or {}))
            self._role_cache[name] = tuple(data)
        return self._role_cache[name]

    def _setting(self, role, var, host_vars):
        """A role variable as a run of the role on the host sees it."""
        defaults, _skip = self._role(role)
        if var in host_vars:
            return host_vars[var]
        return self._templar.template(defaults.get(var))

    def _template(self, role, name, host, task_vars, extra):
        defaults, private = self._role(role)
        host_vars = task_vars["hostvars"][host]
        names = dict(defaults)
        for var in defaults:
            if var in host_vars:
                names[var] = host_vars[var]
        names.update(private)
        names.update(hostvars=task_vars["hostvars"], groups=task_vars["groups"], inventory_hostname=host)
        names.update(extra)
        path = os.path.join(ROLES, role, "templates", name)
        if path not in self._text_cache:
            self._text_cache[path] = trust_as_template(self._loader.get_text_file_contents(path))
        templar = self._templar.copy_with_new_env(searchpath=[os.path.dirname(path)], available_variables=names)
        out = templar.template(
            self._text_cache[path],
            escape_backslashes=False,
            overrides=dict(trim_blocks=True, lstrip_blocks=False, newline_sequence="\n"),
        )
        return "" if out is None else str(out)

    # ---- the files of one instance ----

    def _files(self, inv, iplan, host, task_vars, mask):
        """[(node path, mode, text)] of one instance, as the roles write
        them (playbooks/pgsql.yml)."""
        host_vars = task_vars["hostvars"][host]
        files = render.instance_configs(iplan, host_vars, mask)
        out = []

        def add(role, template, path, mode, **extra):
            out.append((path, mode, self._template(role, template, host, task_vars, extra)))

        if self._bool(self._setting("haproxy", "haproxy_enabled", host_vars)):
            conf_dir = self._setting("haproxy", "haproxy_conf_dir", host_vars)
            for svc in plan.host_services(inv, host):
                add("haproxy", "service.cfg.j2", "%s/%s.cfg" % (conf_dir, svc["name"]), 0o644, haproxy_service=svc)
        # Patroni writes pg_hba.conf into its config_dir (pg_conf_dir)
        add(
            "postgres",
            "pg_hba.conf.j2",
            "%s/pg_hba.conf" % files["patroni"]["postgresql"]["config_dir"],
            0o640,
            postgres_hba_lines=iplan["pg_hba"],
        )
        if self._bool(self._setting("pgbouncer", "pgbouncer_enabled", host_vars)):
            conf_dir = self._setting("pgbouncer", "pgbouncer_conf_dir", host_vars)
            add(
                "pgbouncer",
                "pgbouncer.ini.j2",
                conf_dir + "/pgbouncer.ini",
                0o640,
                pgbouncer_ini=files["pgbouncer_ini"],
            )
            add("pgbouncer", "pgb_hba.conf.j2", conf_dir + "/pgb_hba.conf", 0o640, pgbouncer_hba_lines=iplan["pgb_hba"])
        add(
            "patroni",
            "patroni.yml.j2",
            "%s/config.yml" % self._setting("patroni", "patroni_conf_dir", host_vars),
            0o600,
            patroni_config=files["patroni"],
        )
        if self._bool(self._setting("pgbackrest", "pgbackrest_enabled", host_vars)):
            add(
                "pgbackrest",
                "pgbackrest.conf.j2",
                "%s/pgbackrest.conf" % (self._setting("pgbackrest", "pgbackrest_conf_dir", host_vars)),
                0o600,
                pgbackrest_conf=files["pgbackrest_conf"],
            )
            if files["pgbackrest_repo_host"]:
                # the member's TLS server, which the repository host dials
                # (the repository host's own files are not rendered)
                add(
                    "pgbackrest",
                    "pgbackrest.conf.j2",
                    "%s/conf.d/pigpen-tls-server.conf" % self._setting("pgbackrest", "pgbackrest_conf_dir", host_vars),
                    0o640,
                    pgbackrest_conf=files["pgbackrest_tls_server"],
                )
            if files["crontab"]:
                add(
                    "pgbackrest",
                    "pg-crontab.j2",
                    self._setting("pgbackrest", "pgbackrest_cron_file", host_vars),
                    0o644,
                    __pgbackrest_crontab=files["crontab"],
                )
        if files["vip"]:
            add("vip", "pg-vip.json.j2", self._role("vip")[1]["__vip_conf_file"], 0o600, vip_config=files["vip"])
        if self._bool(self._setting("vector", "vector_enabled", host_vars)):
            add(
                "vector",
                "vector.yaml.j2",
                "%s/vector.yaml" % self._setting("vector", "vector_conf_dir", host_vars),
                0o644,
                __vector_labels=iplan["identity"]["labels"],
            )
        return out

    def _publisher_files(self, services, host, task_vars):
        """[(node path, mode, text)] of a node that is no PostgreSQL member
        but publishes clusters' services (a ``pg_service_provider`` group):
        its HAProxy fragments, as ``playbooks/pgsql.yml`` writes them."""
        host_vars = task_vars["hostvars"][host]
        if not self._bool(self._setting("haproxy", "haproxy_enabled", host_vars)):
            return []
        conf_dir = self._setting("haproxy", "haproxy_conf_dir", host_vars)
        return [
            (
                "%s/%s.cfg" % (conf_dir, svc["name"]),
                0o644,
                self._template("haproxy", "service.cfg.j2", host, task_vars, {"haproxy_service": svc}),
            )
            for svc in services
        ]

    @staticmethod
    def _bool(value):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on", "y")
        return bool(value)

    # ---- writing ----

    @staticmethod
    def _write(path, text, mode):
        """Write ``text`` unless the file already holds it (with ``mode``);
        True when the file changed."""
        data = text.encode("utf-8")
        try:
            with open(path, "rb") as handle:
                same = handle.read() == data
            if same and (os.stat(path).st_mode & 0o7777) == mode:
                return False
        except FileNotFoundError:
            pass
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".render-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.chmod(tmp, mode)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return True

    def _write_instance(self, dest, instance, iplan, files):
        changed = []
        kept = []
        for node_path, mode, text in files:
            path = render.render_path(dest, instance, node_path)
            kept.append(path)
            if self._write(path, text, mode):
                changed.append(node_path)
        if iplan is not None:
            plan_path = os.path.join(dest, instance, "plan.json")
            if self._write(plan_path, json.dumps(iplan, indent=4, sort_keys=True) + "\n", 0o644):
                changed.append("plan.json")
        manifest = os.path.join(dest, instance, MANIFEST)
        before = []
        if os.path.exists(manifest):
            with open(manifest, encoding="utf-8") as handle:
                before = [line.rstrip("\n") for line in handle if line.strip()]
        for old in sorted(set(before) - set(kept)):
            if os.path.isfile(old) and os.path.commonpath([old, os.path.join(dest, instance)]) == os.path.join(
                dest, instance
            ):
                os.unlink(old)
                changed.append("(removed) " + old)
        self._write(manifest, "".join(p + "\n" for p in sorted(kept)), 0o644)
        return changed

    # ---- comparing ----

    @staticmethod
    def _live(task_vars, host, var):
        """{node path: text or None} of the files the playbook read on
        ``host`` (``pigpen.pgsql.pg_read_files`` registered as ``var``);
        None when the host was not read."""
        registered = task_vars["hostvars"][host].get(var) or {}
        if "files" not in registered:
            return None
        return {
            path: None if data is None else base64.b64decode(data).decode("utf-8", "replace")
            for path, data in registered["files"].items()
        }

    # ---- the action ----

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        checked = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if checked.error_messages:
            raise AnsibleActionFail("pg_render: %s" % "; ".join(checked.error_messages))
        args = checked.validated_parameters
        if not (args["dest"] or args["paths_only"] or args["live_var"]):
            raise AnsibleActionFail(
                "pg_render: dest is not set: pass -e render_dir=DIR (a directory on the controller)"
            )

        hostvars = task_vars["hostvars"]
        hosts = [
            h for h in (args["hosts"] or task_vars.get("ansible_play_hosts_all") or []) if "pg_cluster" in hostvars[h]
        ]
        try:
            inv = load_valid(hostvars, task_vars["groups"], hosts)
        except ModelError as exc:
            raise AnsibleActionFail(
                "pg_render: the inventory is not valid (run playbooks/validate.yml):\n%s" % exc
            ) from exc
        cplans = {}
        instances = {}
        for host in hosts:
            cluster = inv.cluster_of(host)
            if cluster is None:
                continue
            iplan = plan.instance_plan(inv, host)
            if cluster.name not in cplans:
                cplans[cluster.name] = plan.cluster_plan(inv, cluster.name)
            iplan["cluster"] = cplans[cluster.name]
            instances[host] = iplan

        if args["paths_only"]:
            result.update(
                changed=False,
                paths={
                    host: [p for p, _skip, _skip in self._files(inv, iplan, host, task_vars, True)]
                    for host, iplan in instances.items()
                },
            )
            return result

        result["tuning"] = render.tuning_note(
            {iplan["identity"]["instance"]: iplan["node"] for iplan in instances.values()}
        )
        display.display(result["tuning"])

        if args["live_var"]:
            return self._compare(result, inv, instances, task_vars, args["live_var"])

        dest = args["dest"]
        written = {}
        total = 0
        for host, iplan in instances.items():
            files = self._files(inv, iplan, host, task_vars, not args["secrets"])
            total += len(files) + 1
            changed = self._write_instance(dest, iplan["identity"]["instance"], iplan, files)
            if changed:
                written[iplan["identity"]["instance"]] = changed
        # nodes of a pg_service_provider group that hold no instance: their
        # HAProxy fragments, under RENDER_DIR/<inventory host>/
        # (plan.peer_hosts, not peer_services: the other members' services
        # are not needed here, only those of nodes that hold no instance)
        publishers = {
            host: plan.host_services(inv, host)
            for host in plan.peer_hosts(inv, list(instances))
            if inv.cluster_of(host) is None
        }
        for host, services in sorted(publishers.items()):
            if "/" in host or host.startswith(".") or host in ("dns", "prometheus"):
                raise AnsibleActionFail(
                    "pg_render: inventory host %r publishes services but its "
                    "name cannot be a directory of the render; rename it" % host
                )
            files = self._publisher_files(services, host, task_vars)
            total += len(files)
            changed = self._write_instance(dest, host, None, files)
            if changed:
                written[host] = changed
        count = sum(len(v) for v in written.values())
        result.update(
            changed=bool(written),
            written=written,
            msg=(
                "%d instance(s)%s rendered into %s: %d file(s) written, %d "
                "unchanged%s"
                % (
                    len(instances),
                    " and %d service publisher(s)" % len(publishers) if publishers else "",
                    dest,
                    count,
                    total - count,
                    "" if args["secrets"] else " (secrets masked)",
                )
            ),
        )
        display.display(result["msg"])
        return result

    def _compare(self, result, inv, instances, task_vars, var):
        report = {}
        lines = []
        differ = 0
        for host, iplan in sorted(instances.items(), key=lambda kv: kv[1]["identity"]["instance"]):
            instance = iplan["identity"]["instance"]
            live = self._live(task_vars, host, var)
            if live is None:
                report[instance] = []
                differ += 1
                lines.append("%s: not compared (its files were not read)" % instance)
                continue
            masked = {p: t for p, _skip, t in self._files(inv, iplan, host, task_vars, True)}
            full = self._files(inv, iplan, host, task_vars, False)
            secrets = set()
            for path, _skip, text in full:
                for want, got in zip(masked[path].split("\n"), text.split("\n")):
                    if want != got and render.MASK in want:
                        secrets.update(self._secret_values(want, got))
            report[instance] = []
            for path, _skip, text in full:
                found = render.compare(
                    path, text, masked[path], live.get(path), secrets, label="%s:%s" % (instance, path)
                )
                if found["state"] == "missing" and os.path.basename(path) in OPTIONAL:
                    found["state"] = "absent"
                report[instance].append({"path": path, "state": found["state"]})
                if found["state"] in ("same", "absent"):
                    continue
                differ += 1
                what = {"missing": "not on the node", "secrets": "differs in hidden values only", "differs": "differs"}[
                    found["state"]
                ]
                lines.append("%s %s: %s" % (instance, path, what))
                if found["diff"]:
                    lines.append(found["diff"].rstrip("\n"))
        absent = sum(1 for v in report.values() for f in v if f["state"] == "absent")
        total = sum(len(v) for v in report.values()) - absent
        result.update(
            changed=differ > 0,
            compared=report,
            msg=(
                "%d of %d file(s) of %d instance(s) differ from the render" % (differ, total, len(instances))
                if differ
                else "all %d file(s) of %d instance(s) match the render" % (total, len(instances))
            ),
        )
        if absent:
            result["msg"] += " (%d vector.yaml absent: no Vector on those nodes, docs/vector.md)" % absent
        for line in lines:
            display.display(line)
        display.display(result["msg"])
        return result

    @staticmethod
    def _secret_values(masked_line, full_line):
        """The secret strings of a line, from its masked and full forms."""
        before, _skip, after = masked_line.partition(render.MASK)
        if full_line.startswith(before) and full_line.endswith(after):
            value = full_line[len(before) : len(full_line) - len(after) if after else None]
            return {value} if value else set()
        return set()
