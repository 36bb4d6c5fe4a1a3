# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pgBackRest's files of one instance and of its repository host, and the
cron lines of ``pg_crontab``.

Pure Python; nothing here imports Ansible. Each function turns the model's
plans (:func:`plan.cluster_plan`, :func:`plan.instance_plan`) plus a
*settings* mapping (:mod:`settings`) into the content of one file, as data
that a template only has to print (:func:`ini_text.ini_lines` prints the
same)::

    pgbackrest_conf(cplan, iplan, settings)  -> [[section, [[key, value]]]]
    pgbackrest_tls_server(address)           -> [[section, [[key, value]]]]
    pgbackrest_repo_host(cplan, iplan, settings) -> {...} or None
    crontab(settings) / crontab_split(settings)  -> cron.d lines

Called by :func:`render.instance_configs`; :data:`PGBACKREST_TLS_PORT` is
also read by :mod:`plan` (the ports of the restore drill's node).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, cast

from ansible_collections.pigpen.pgsql.plugins.module_utils import cron
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import is_int
from ansible_collections.pigpen.pgsql.plugins.module_utils.settings import (
    _REPO_BOOLS,
    _REPO_SECRETS,
    PG_SOCKET_DIR,
    REPO_OPTIONS,
    _effective,
    _require,
    _secret,
    repo_flag,
)

__all__ = [
    "pgbackrest_conf",
    "pgbackrest_repo_host",
    "pgbackrest_tls_server",
    "crontab",
]

#: pgBackRest's TLS server port (``tls-server-port``'s default).
PGBACKREST_TLS_PORT = 8432
#: Where the pgbackrest role puts each node's pgBackRest TLS certificate,
#: key and the deployment's CA (pgbackrest_repo with a host).
PGBACKREST_TLS_DIR = "/etc/pgbackrest/tls"
#: Options of the repository host itself, which the members' pgbackrest.conf
#: does not carry (the repository host applies them): its path and the
#: options from hardlink on in REPO_OPTIONS (bundling, encryption, retention).
_REPO_HOST_SIDE = ("path",) + REPO_OPTIONS[REPO_OPTIONS.index("hardlink") :]
#: Placeholder Pigsty replaces by the cluster name in repository values
#: (e.g. ``cipher_pass: 'pgBR.${pg_cluster}'``: one key per cluster).
CLUSTER_PLACEHOLDER = "${pg_cluster}"


def _repo_value(key: str, value: Any, cluster: str) -> str:
    """A repository option's value as pgbackrest.conf spells it: booleans
    y/n, and ``${pg_cluster}`` replaced by the cluster name (as Pigsty
    does, so that a repository key derived from the name stays the same)."""
    if key in _REPO_BOOLS:
        return "y" if repo_flag(value) else "n"
    return str(value).replace(CLUSTER_PLACEHOLDER, cluster)


def _process_max(s, iplan) -> Tuple[int, int]:
    """(backup/restore, archive-push) process counts."""
    if s["pgbackrest_process_max"] != "auto":
        n = s["pgbackrest_process_max"]
        return n, min(n, 4)
    cpu = (iplan.get("node") or {}).get("cpu")
    cpu = cpu if is_int(cpu) and cpu > 0 else 2
    return max(1, min(cpu // 2, 8)), max(1, min(cpu // 4, 4))


def pgbackrest_conf(cplan: Mapping[str, Any], iplan: Mapping[str, Any], settings: Mapping[str, Any]) -> List[List[Any]]:
    """``pgbackrest.conf`` of one instance as ``[[section, [[key, value],
    ...]], ...]``: ``global`` (repository ``repo1`` from
    ``pgbackrest_repo[pgbackrest_method]``), ``global:archive-push`` and the
    cluster's stanza."""
    s, cluster, _skip = _require(settings, cplan, iplan)
    repo = s["pgbackrest_repo"][s["pgbackrest_method"]]
    remote = "host" in repo
    if remote:
        # the repository host keeps the repository and applies its
        # options; the member reaches it through its TLS server
        tls = _tls_files()
        glob: List[List[Any]] = [
            ["repo1-host", _repo_host(cplan, repo)["address"]],
            ["repo1-host-type", "tls"],
            ["repo1-host-port", str(repo.get("host_port", PGBACKREST_TLS_PORT))],
            ["repo1-host-ca-file", tls["ca"]],
            ["repo1-host-cert-file", tls["cert"]],
            ["repo1-host-key-file", tls["key"]],
        ]
    else:
        glob = _repo_lines(s, repo, cluster, 1)
    procs, push_procs = _process_max(s, iplan)
    glob += [
        ["compress-type", "zst"],
        ["archive-async", "y"],
        ["spool-path", s["pgbackrest_spool_dir"]],
        ["process-max", str(procs)],
        ["log-path", s["pgbackrest_log_dir"]],
        ["start-fast", "y"],
        ["delta", "y"],
    ]
    stanza = [
        ["pg1-path", s["pg_data"]],
        ["pg1-socket-path", PG_SOCKET_DIR],
        ["pg1-port", str(s["pg_port"])],
        ["pg1-user", s["pg_dbsu"]],
    ]
    out = [["global", glob], ["global:archive-push", [["process-max", str(push_procs)]]]]
    if remote:
        # who may ask this member's TLS server for the stanza: the
        # repository host (backups, checks); its address and files are in
        # pgbackrest_tls_server's file, shared with a repository host role
        out.append(
            ["global:server", [["tls-server-auth", "%s=%s" % (repo_host_cn(_repo_host(cplan, repo)["name"]), cluster)]]]
        )
    out.append([cluster, stanza])
    seed = (cplan.get("standby") or {}).get("seed")
    if seed:
        # a standby cluster seeded from its source's repository
        # (pg_standby_seed): the source's stanza, restored into this
        # member's data directory, and its archive read by the standby
        # leader; the repository is the same (upstream.seed_problems),
        # only options that name the cluster (${pg_cluster}) differ
        theirs = [] if remote else [line for line in _repo_lines(s, repo, seed, 1) if line not in glob]
        out.append([seed, stanza + theirs])
    return out


def _repo_lines(
    s: Mapping[str, Any], repo: Mapping[str, Any], cluster: str, index: int, only: Sequence[str] = REPO_OPTIONS
) -> List[List[Any]]:
    """``repoN-*`` lines of a repository definition (secrets masked when
    asked), with ``beta=y`` when it uses block incremental."""
    out: List[List[Any]] = []
    for key in REPO_OPTIONS:
        if key not in repo or key not in only or key in ("host", "host_port"):
            continue
        value = _repo_value(key, repo[key], cluster)
        if key in _REPO_SECRETS:
            value = _secret(s, value)
        out.append(["repo%d-%s" % (index, key.replace("_", "-")), value])
    if repo_flag(repo.get("block")) and "block" in only:
        # pgBackRest 2.45 ships block incremental as a beta feature and
        # refuses repo-block unless beta features are enabled.
        out.append(["beta", "y"])
    return out


def _repo_host(cplan: Mapping[str, Any], repo: Mapping[str, Any]) -> Dict[str, str]:
    """``{name, address}`` of the repository host: the cluster plan's
    (which resolves a group name such as ``infra``), else the host as
    written."""
    found = cplan.get("repo_host")
    if found:
        return dict(found)
    return {"name": repo["host"], "address": repo["host"]}


def _tls_files() -> Dict[str, str]:
    return {
        "ca": PGBACKREST_TLS_DIR + "/ca.crt",
        "cert": PGBACKREST_TLS_DIR + "/node.crt",
        "key": PGBACKREST_TLS_DIR + "/node.key",
    }


def repo_host_cn(host: str) -> str:
    """Common name of a repository host's pgBackRest certificate (the
    members' ``tls-server-auth`` names it)."""
    return "pgbackrest-repo-%s" % host


def pgbackrest_tls_server(address: str) -> List[List[Any]]:
    """The TLS server options of one node (``conf.d/pigpen-tls-server.conf``):
    the same file whether the node is a member backing up to a repository
    host, the repository host, or both."""
    tls = _tls_files()
    return [
        [
            "global:server",
            [
                ["tls-server-address", address],
                ["tls-server-port", str(PGBACKREST_TLS_PORT)],
                ["tls-server-ca-file", tls["ca"]],
                ["tls-server-cert-file", tls["cert"]],
                ["tls-server-key-file", tls["key"]],
            ],
        ]
    ]


def pgbackrest_repo_host(
    cplan: Mapping[str, Any], iplan: Mapping[str, Any], settings: Mapping[str, Any]
) -> Optional[Dict[str, Any]]:
    """What the repository host of a cluster needs, or None when the
    cluster's repository has no host: ``host``, the certificate's ``cn``,
    ``port`` (of the TLS servers, the members' and the repository host's),
    ``stanza_conf`` (``conf.d/pigpen-<cluster>.conf``: the members it may
    serve and reach, and the repository's options, all in the stanza's
    sections so that several clusters share one host) and ``crontab``
    (the cluster's pg-backup entries, which run there)."""
    s, cluster, _skip = _require(settings, cplan, iplan)
    repo = s["pgbackrest_repo"][s["pgbackrest_method"]]
    if not s["pgbackrest_enabled"] or "host" not in repo:
        return None
    tls = _tls_files()
    where = _repo_host(cplan, repo)
    auth: List[List[Any]] = []
    stanza: List[List[Any]] = []
    # a standby cluster seeded from its source's repository also reads
    # the source's stanza (restore, archive-get)
    seed = (cplan.get("standby") or {}).get("seed")
    stanzas = ",".join([cluster, seed] if seed else [cluster])
    for n, member in enumerate(cplan["members"], 1):
        address = member.get("ip") or member["host"]
        auth.append(["tls-server-auth", "%s=%s" % (member["instance"], stanzas)])
        stanza += [
            ["pg%d-host" % n, address],
            ["pg%d-host-type" % n, "tls"],
            ["pg%d-host-port" % n, str(PGBACKREST_TLS_PORT)],
            ["pg%d-host-ca-file" % n, tls["ca"]],
            ["pg%d-host-cert-file" % n, tls["cert"]],
            ["pg%d-host-key-file" % n, tls["key"]],
            ["pg%d-path" % n, s["pg_data"]],
            ["pg%d-port" % n, str(s["pg_port"])],
            ["pg%d-socket-path" % n, PG_SOCKET_DIR],
        ]
    procs, _procs_why = _process_max(s, iplan)
    stanza += _repo_lines(s, repo, cluster, 1, _REPO_HOST_SIDE)
    stanza += [
        ["compress-type", "zst"],
        ["process-max", str(procs)],
        ["log-path", s["pgbackrest_log_dir"]],
        ["start-fast", "y"],
    ]
    return {
        "host": where["name"],
        "address": where["address"],
        "cn": repo_host_cn(where["name"]),
        "port": PGBACKREST_TLS_PORT,
        "path": _repo_value("path", repo["path"], cluster),
        "log_dir": s["pgbackrest_log_dir"],
        "stanza_conf": [["global:server", auth], [cluster, stanza]],
        "server": pgbackrest_tls_server(where["address"]),
        "crontab": repo_host_crontab(s, cluster),
    }


# ---------------------------------------------------------------- pg_crontab


def crontab(settings: Optional[Mapping[str, Any]] = None) -> List[str]:
    """``/etc/cron.d`` lines of ``pg_crontab``, each run as ``pg_dbsu``
    (entries written with or without that user field give the same line:
    :func:`cron.pg_crontab_lines`)."""
    s = _effective(settings)
    return cron.pg_crontab_lines(s["pg_crontab"], s["pg_dbsu"])


#: The backup command of pg_crontab entries on the members
#: (roles/pgbackrest: pgbackrest_backup_script's default) and its
#: counterpart on a repository host, which takes the stanza first.
BACKUP_COMMAND = cron.BACKUP_COMMAND
REPO_BACKUP_COMMAND = "/usr/local/bin/pg-backup-repo"


def _split_cron(line: str) -> Tuple[str, str]:
    """A cron.d line (schedule, user, command) -> (schedule and user,
    command)."""
    # crontab() writes only lines that parse
    schedule, words = cast(Tuple[str, List[str]], cron.parse(line))
    return "%s %s" % (schedule, words[0]), " ".join(words[1:])


def _is_backup(command: str) -> bool:
    return command.split()[0] in (BACKUP_COMMAND, "pg-backup")


def crontab_split(settings: Mapping[str, Any]) -> Dict[str, List[str]]:
    """The cron.d lines of ``pg_crontab`` for the members: all of them,
    or, when the repository is on a repository host (where backups must
    run), all but the pg-backup entries."""
    s = _effective(settings)
    lines = crontab(s)
    repos = s["pgbackrest_repo"]
    repo = repos.get(s["pgbackrest_method"]) if isinstance(repos, dict) else None
    if not (s["pgbackrest_enabled"] and isinstance(repo, dict) and "host" in repo):
        return {"members": lines}
    return {"members": [line for line in lines if not _is_backup(_split_cron(line)[1])]}


def repo_host_crontab(settings: Mapping[str, Any], cluster: str) -> List[str]:
    """pg_crontab's pg-backup entries as the repository host runs them:
    ``pg-backup-repo <cluster> [type]``, as root (it switches to the
    repository's user)."""
    out = []
    for line in crontab(settings):
        head, command = _split_cron(line)
        if not _is_backup(command):
            continue
        schedule = head.rsplit(None, 1)[0]
        args = command.split()[1:]
        out.append(" ".join([schedule, "root", REPO_BACKUP_COMMAND, cluster] + args))
    return out
