# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Restore drills: prove that the newest backup of a cluster restores.

Pure Python; nothing here imports Ansible. A drill (``pg-drill``, installed
by the pgbackrest role, run by ``playbooks/pgsql-drill.yml`` or on the
schedule ``pgbackrest_drill_schedule``) runs ``pgbackrest verify``, restores
the newest backup into a scratch directory, starts it as a throwaway
PostgreSQL (unix socket in the scratch directory only, no TCP listener, WAL
archiving off, no logical replication workers), replays the archive to its
target, promotes it, counts rows and runs ``amcheck``, then stops and
removes it. The cluster's own instances are never touched: the drill reads
the repository only.

:func:`drill_plan` says where and how: the node it runs on (the repository
host when the repository has one, else a member that reads the
repository), the scratch directory, the port, the target, the tables, the
command line and its cron line. :func:`check_drill` reports every bad
setting as a :class:`~errors.Problem`; :func:`metrics_text` is the text
the drill writes for the node exporter's textfile collector (the script on
the node prints the same lines; a test keeps the two equal).

Settings (cluster vocabulary, docs/backup.md "Restore drills"):

``pgbackrest_drill_schedule``
    cron time fields (``'30 3 * * 0'``) or a nickname (``@weekly``) at which
    the drill node runs the drill; unset (default): no schedule, the drill
    runs only from the playbook.
``pgbackrest_drill_dir``
    base directory of the scratch directory (``<dir>/drill-<cluster>``),
    default ``/pg/tmp``.
``pgbackrest_drill_port``
    port of the scratch instance (its socket file, in the scratch
    directory); unset (default): the first port from 15432 up that no
    service of the drill node uses; a port given may not be one of them.
``pgbackrest_drill_target``
    ``latest`` (default: replay the whole archive, the most recent point the
    repository holds) or ``immediate`` (stop as soon as the backup is
    consistent: proves the backup, not the archive after it).
``pgbackrest_drill_tables``
    tables whose rows are counted, ``database.schema.table`` or
    ``database.table`` (schema ``public``); empty (default): the three
    largest tables of every database.
``pgbackrest_drill_amcheck``
    check every valid B-tree index with ``amcheck`` (``bt_index_check``)
    when the extension is available (default true).
``pgbackrest_drill_timeout``
    seconds the whole drill may take (default 3600).
"""

from __future__ import annotations

import re
import shlex
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils import cron
from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import (
    MODEL_DEFAULTS,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    Problem,
)

__all__ = [
    "DEFAULTS",
    "SCRIPT",
    "TEXTFILE_DIR",
    "TARGETS",
    "check_drill",
    "drill_node",
    "drill_plan",
    "drill_port",
    "table_parts",
    "metrics_text",
    "metrics_file",
    "scratch_dir",
]

#: The settings and their defaults (the model's: defaults.MODEL_DEFAULTS).
DEFAULTS: Dict[str, Any] = {
    name: MODEL_DEFAULTS[name]
    for name in (
        "pgbackrest_drill_schedule",
        "pgbackrest_drill_dir",
        "pgbackrest_drill_port",
        "pgbackrest_drill_target",
        "pgbackrest_drill_tables",
        "pgbackrest_drill_amcheck",
        "pgbackrest_drill_timeout",
    )
}

#: Where the pgbackrest role installs the drill.
SCRIPT = "/usr/local/bin/pg-drill"
#: Debian's node exporter reads ``*.prom`` here (textfile collector).
TEXTFILE_DIR = "/var/lib/prometheus/node-exporter"
#: ``pgbackrest_drill_target`` values.
TARGETS = ("latest", "immediate")
#: Tables counted per database when none are named.
LARGEST_TABLES = 3

# An identifier the drill quotes itself: no quote, no dot, no space.
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$-]{0,62}\Z")
_SOCKET_MAX = 107  # sizeof(sun_path) - 1 on Linux
_PATH = re.compile(r"^/[A-Za-z0-9_./-]*\Z")
# Base directories that may not hold a scratch directory: the drill removes
# its directory, and a world-writable or pseudo directory lets anyone plant
# a link there first.
_FORBIDDEN = ("/proc", "/sys", "/dev", "/run", "/var/run", "/tmp", "/var/tmp", "/boot", "/etc", "/usr")
_TIMEOUT_MIN = 60
_TIMEOUT_MAX = 7 * 86400


def _setting(settings: Mapping[str, Any], name: str) -> Any:
    value = settings.get(name)
    return DEFAULTS[name] if value is None and name != "pgbackrest_drill_schedule" else value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _under(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def table_parts(spec: Any) -> Optional[List[str]]:
    """``[database, schema, table]`` of a ``pgbackrest_drill_tables`` entry
    (``db.table`` means schema ``public``); None when it is not one."""
    if not isinstance(spec, str):
        return None
    parts = spec.split(".")
    if len(parts) == 2:
        parts = [parts[0], "public", parts[1]]
    if len(parts) != 3 or not all(_IDENT.match(p) for p in parts):
        return None
    return parts


def scratch_dir(base: str, cluster: str) -> str:
    """The scratch directory of ``cluster``'s drill below ``base``."""
    return "%s/drill-%s" % (base.rstrip("/") or "", cluster)


def check_drill(
    settings: Mapping[str, Any], *, cluster: str, taken_ports: Iterable[Any] = (), protected: Iterable[Any] = ()
) -> List[Problem]:
    """Every problem of the drill settings of ``cluster``. ``taken_ports``
    are the ports of the deployment on the drill node, ``protected`` the
    directories the scratch directory may not be in or hold (the data
    directory, the repository)."""
    out: List[Problem] = []

    def problem(field, value, what, fix):
        out.append(Problem(cluster, None, field, value, what, fix))

    sched = settings.get("pgbackrest_drill_schedule")
    if sched is not None:
        fields = sched.split() if isinstance(sched, str) else None
        try:
            if not fields or "\n" in sched or "%" in sched:
                raise cron.CronError("not a schedule")
            if fields[0].startswith("@"):
                if len(fields) != 1 or fields[0] not in cron.NICKNAME_FIELDS:
                    raise cron.CronError("unknown nickname")
            else:
                cron.Schedule(fields)
                if cron.max_gap_seconds([fields]) is None:
                    raise cron.CronError("never runs")
        except cron.CronError:
            problem(
                "pgbackrest_drill_schedule",
                sched,
                "is not the time fields of a cron entry that runs",
                "write five cron time fields without a command, e.g. "
                "'30 3 * * 0' (Sundays 03:30), or a nickname such as "
                "@weekly; leave it unset for no schedule",
            )

    base = _setting(settings, "pgbackrest_drill_dir")
    if (
        not isinstance(base, str)
        or not _PATH.match(base)
        or base == "/"
        or base.endswith("/")
        or "/." in base
        or "//" in base
    ):
        problem(
            "pgbackrest_drill_dir",
            base,
            "is not an absolute directory path of letters, digits, '_', '-', '.' and '/'",
            "use a directory of this deployment's own, e.g. /pg/tmp",
        )
    else:
        for tree in _FORBIDDEN:
            if _under(base, tree):
                problem(
                    "pgbackrest_drill_dir",
                    base,
                    "is under %s, where the drill may not create and remove its scratch directory" % tree,
                    "use a directory of this deployment's own, e.g. /pg/tmp",
                )
                break
        scratch = scratch_dir(base, cluster)
        # the throwaway instance's socket, <scratch>/run/.s.PGSQL.<port>,
        # must fit a unix socket address (107 bytes), or it fails to start
        # only after the whole restore
        socket_path = "%s/run/.s.PGSQL.65535" % scratch
        if len(socket_path.encode()) > _SOCKET_MAX:
            problem(
                "pgbackrest_drill_dir",
                base,
                "makes the scratch instance's socket path %d bytes "
                "long (%s...), more than the %d a unix socket takes"
                % (len(socket_path.encode()), socket_path[:40], _SOCKET_MAX),
                "use a shorter directory, e.g. /pg/tmp",
            )
        # the default base is checked by the paths' own rules (safety.py)
        given = settings.get("pgbackrest_drill_dir") is not None
        for path in protected if given else ():
            if isinstance(path, str) and path.startswith("/") and (_under(scratch, path) or _under(path, scratch)):
                problem(
                    "pgbackrest_drill_dir",
                    base,
                    "puts the scratch directory %s in or around %s, "
                    "which the drill would overwrite or remove" % (scratch, path),
                    "use a directory apart from the data and the repository, e.g. /pg/tmp",
                )
                break

    # an unset port is chosen free (drill_port); a port given is checked
    port = settings.get("pgbackrest_drill_port")
    taken = ports_of(list(taken_ports))
    if port is not None and (not _is_int(port) or not 1024 <= port <= 65535):
        problem(
            "pgbackrest_drill_port",
            port,
            "is not a port from 1024 to 65535",
            "use a free port such as %d" % drill_port(None, taken),
        )
    elif port is not None and port in taken:
        problem(
            "pgbackrest_drill_port",
            port,
            "is a port of the deployment on the drill node (%s)" % ", ".join(map(str, taken)),
            "use a port that no service of the node uses, e.g. %d, or leave it unset" % drill_port(None, taken),
        )

    target = _setting(settings, "pgbackrest_drill_target")
    if target not in TARGETS:
        problem(
            "pgbackrest_drill_target",
            target,
            "is not a drill target",
            "use latest (replay the whole archive) or immediate (stop when the backup is consistent)",
        )

    tables = _setting(settings, "pgbackrest_drill_tables")
    if not isinstance(tables, list):
        problem(
            "pgbackrest_drill_tables",
            tables,
            "is not a list",
            "list tables as database.schema.table, e.g. [test.public.orders], or [] for the largest ones",
        )
    else:
        for i, spec in enumerate(tables):
            if table_parts(spec) is None:
                problem(
                    "pgbackrest_drill_tables[%d]" % i,
                    spec,
                    "is not database.schema.table or database.table (names of letters, digits, '_', '$' and '-')",
                    "write e.g. test.public.orders; a name that needs other characters cannot be counted by the drill",
                )

    amcheck = _setting(settings, "pgbackrest_drill_amcheck")
    if not isinstance(amcheck, bool):
        problem("pgbackrest_drill_amcheck", amcheck, "is not a boolean", "write true or false without quotes")

    timeout = _setting(settings, "pgbackrest_drill_timeout")
    if not _is_int(timeout) or not _TIMEOUT_MIN <= timeout <= _TIMEOUT_MAX:
        problem(
            "pgbackrest_drill_timeout",
            timeout,
            "is not a number of seconds from %d to %d" % (_TIMEOUT_MIN, _TIMEOUT_MAX),
            "write a whole number of seconds, e.g. 3600",
        )
    return out


def drill_port(port: Any, taken: Iterable[Any]) -> int:
    """The scratch instance's port: the one given, else the first port from
    the default (15432) up that is not in ``taken``."""
    if port is not None:
        return port
    used = set(ports_of(list(taken)))
    chosen = DEFAULTS["pgbackrest_drill_port"]
    while chosen in used:
        chosen += 1
    return chosen


def drill_node(cplan: Mapping[str, Any], repo_type: str) -> Dict[str, str]:
    """Where the drill runs: ``{host, kind, why}``. The repository host
    when there is one (it holds the repository; the members are not
    loaded); with a shared object store (``repo_type`` not posix), the first
    member that is not the model's leader (the leader is spared the load);
    with ``local`` repositories, the model's leader, whose own repository
    holds the backups it took."""
    repo_host = cplan.get("repo_host")
    if repo_host:
        return {"host": repo_host["name"], "kind": "repo_host", "why": "the repository host keeps the repository"}
    members = list(cplan.get("members") or [])
    leader = [m for m in members if m.get("leader")]
    others = [m for m in members if not m.get("leader")]
    if repo_type != "posix" and others:
        return {
            "host": others[0]["host"],
            "kind": "replica",
            "why": "a replica reads the shared repository; the leader is spared the load",
        }
    chosen = (leader or members)[0]
    if repo_type != "posix":
        why = "the cluster has no replica"
    else:
        why = "each member keeps its own repository (local); the leader's holds the backups"
    return {"host": chosen["host"], "kind": "leader", "why": why}


def metrics_file(cluster: str) -> str:
    """The textfile the drill of ``cluster`` writes."""
    return "%s/pgbackrest_drill_%s.prom" % (TEXTFILE_DIR, cluster)


def drill_plan(
    cplan: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    repo_type: str = "posix",
    dbsu: str = "postgres",
    bin_dir: str = "/usr/lib/postgresql/15/bin",
    taken_ports: Iterable[Any] = (),
) -> Dict[str, Any]:
    """What ``pg-drill`` does for the cluster of ``cplan`` (settings
    already checked by :func:`check_drill`): the node, the scratch
    directory, the port, the target, the tables, the command line
    (``argv``) and, with a schedule, the ``/etc/cron.d`` file and line."""
    cluster = cplan["identity"]["cluster"]
    node = drill_node(cplan, repo_type)
    base = _setting(settings, "pgbackrest_drill_dir")
    scratch = scratch_dir(base, cluster)
    port = drill_port(settings.get("pgbackrest_drill_port"), taken_ports)
    target = _setting(settings, "pgbackrest_drill_target")
    # check_drill has refused every entry table_parts cannot read
    tables = [".".join(cast(List[str], table_parts(t))) for t in _setting(settings, "pgbackrest_drill_tables")]
    amcheck = _setting(settings, "pgbackrest_drill_amcheck")
    timeout = _setting(settings, "pgbackrest_drill_timeout")
    argv = [
        SCRIPT,
        "--stanza",
        cluster,
        "--dir",
        scratch,
        "--port",
        str(port),
        "--target",
        target,
        "--timeout",
        str(timeout),
        "--dbsu",
        dbsu,
        "--bin-dir",
        bin_dir,
        "--metrics",
        metrics_file(cluster),
    ]
    if not amcheck:
        argv.append("--no-amcheck")
    for table in tables:
        argv += ["--table", table]
    sched = settings.get("pgbackrest_drill_schedule")
    cron_line = None
    if sched is not None:
        # root: the drill writes the textfile and switches to dbsu itself;
        # its output goes to the journal (journalctl -t pg-drill)
        # cron turns an unescaped % of the command into a newline
        cron_line = "%s root %s 2>&1 | logger -t pg-drill" % (
            " ".join(sched.split()),
            " ".join(shlex.quote(a) for a in argv).replace("%", "\\%"),
        )
    return {
        "cluster": cluster,
        "node": node["host"],
        "kind": node["kind"],
        "why": node["why"],
        "scratch": scratch,
        "port": port,
        "target": target,
        "tables": tables,
        "amcheck": amcheck,
        "timeout": timeout,
        "argv": argv,
        "metrics_file": metrics_file(cluster),
        "cron_file": "/etc/cron.d/pigpen-drill-%s" % cluster,
        "cron_line": cron_line,
        "summary": "restore drill of %s on %s (%s): verify the repository, "
        "restore the newest backup into %s, replay to %s on "
        "port %s (socket only), sanity queries%s, then remove it"
        % (
            cluster,
            node["host"],
            node["why"],
            scratch,
            "the end of the archive" if target == "latest" else "the end of the backup",
            port,
            " and amcheck" if amcheck else "",
        ),
    }


# ------------------------------------------------------------ the textfile

#: The metrics of a drill, with their help text, in the order written.
METRICS = (
    ("pgbackrest_drill_ok", "1 when the last restore drill succeeded, else 0."),
    ("pgbackrest_drill_last_run_timestamp_seconds", "Unix time the last restore drill started."),
    (
        "pgbackrest_drill_last_success_timestamp_seconds",
        "Unix time the last successful restore drill started (0: none yet).",
    ),
    ("pgbackrest_drill_duration_seconds", "Seconds the last restore drill took."),
    ("pgbackrest_drill_indexes_checked", "B-tree indexes amcheck verified in the last restore drill."),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def metrics_text(cluster: str, ok: bool, started: int, duration: int, last_success: int, indexes: int) -> str:
    """The textfile of one drill of ``cluster`` (``last_success``: the
    start of the newest successful drill, this one when ``ok``)."""
    values = (1 if ok else 0, started, started if ok else last_success, duration, indexes)
    lines: List[str] = []
    for (name, text), value in zip(METRICS, values):
        lines += [
            "# HELP %s %s" % (name, text),
            "# TYPE %s gauge" % name,
            '%s{cls="%s"} %d' % (name, _label(cluster), value),
        ]
    return "\n".join(lines) + "\n"


def ports_of(values: Sequence[Any]) -> List[int]:
    """The whole numbers of ``values`` (ports read from the inventory)."""
    return sorted({v for v in values if _is_int(v)})
