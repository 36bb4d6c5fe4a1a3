# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Patroni's configuration (``patroni.yml``) of one instance.

Pure Python; nothing here imports Ansible. :func:`patroni_config` turns the
model's plans (:func:`plan.cluster_plan`, :func:`plan.instance_plan`) plus a
*settings* mapping (:mod:`settings`) into the file's content, as a dict that
a template only has to print (``to_nice_yaml``)::

    patroni_config(cplan, iplan, settings)   -> dict

Called by :func:`render.instance_configs`; :func:`bin_dir` is also read by
:func:`plan.drill_plan`.

Design decisions (docs/configs.md has the long form):

* **pg_hba is managed by Patroni.** ``postgresql.pg_hba`` carries every line
  of the instance's computed policy (:func:`hba.hba_lines`, comments and
  inactive rules included), so Patroni writes ``pg_hba.conf`` into its
  ``config_dir`` (``pg_conf_dir``) and reloads PostgreSQL when the list
  changes: an HBA change is a reload, never a restart, and a freshly cloned
  replica gets the file before it first starts. No other writer may touch
  that file on a node. Patroni 3.0.2's ``--validate-config`` insists on
  ``bootstrap.pg_hba``; it gets the active lines only and is ignored by
  Patroni while ``postgresql.pg_hba`` is set.
* **Patroni's superuser has no password.** ``superuser`` is ``pg_dbsu``
  with ``use_unix_socket: true``: Patroni (running as the OS user
  ``pg_dbsu``) connects through the first directory of
  ``unix_socket_directories`` and the default rule ``${dbsu} all local
  ident`` lets it in by peer authentication.
* **pg_rewind uses the replication user.** ``rewind`` connects over TCP to
  the *new leader* (database ``postgres``), where peer authentication
  cannot work; the replication user (with its password) is allowed there by
  the default rule ``${repl} postgres intra ssl``, and Patroni grants it the
  four functions pg_rewind needs when it bootstraps the cluster.
* **Cluster-wide parameters live in the DCS.** Patroni 3.0 takes
  ``max_connections``, ``max_worker_processes``, ``max_wal_senders``,
  ``max_replication_slots``, ``max_prepared_transactions``,
  ``max_locks_per_transaction``, ``track_commit_timestamp``, ``wal_level``,
  ``wal_log_hints``, ``hot_standby`` and ``wal_keep_size`` only from its
  cluster-wide configuration (a local value is dropped), so they go to
  ``bootstrap.dcs.postgresql.parameters`` with the archive settings, and
  never to the local ``parameters``. Patroni silently replaces a value below
  its floor (e.g. ``max_connections`` < 25) with its own default; such a
  value is an error here.
* **Offline instances** (``pg_role: offline``) get ``nofailover`` and
  ``nosync`` but *not* ``noloadbalance``: Patroni answers 503 on
  ``/replica`` and ``/read-only`` for ``noloadbalance`` members, which
  would take them out of the ``offline`` service (checked on ``/replica``)
  and out of the ``replica`` service's fallback. Which service an instance
  serves is decided by the HAProxy selectors. Plain replicas get
  ``clonefrom`` so that new replicas clone from them rather than from the
  primary; a cascading replica (``pg_upstream`` inside the cluster) gets
  ``replicatefrom`` naming its upstream instance.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import PATHS
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
    Problem,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_vip import etcd_password
from ansible_collections.pigpen.pgsql.plugins.module_utils.model import (
    delay_ms,
    delay_text,
    ip_of,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.settings import (
    _PATRONI_FLOOR,
    PG_SOCKET_DIR,
    _param_value,
    _require,
    _secret,
    _watchdog_mode,
)

__all__ = ["DCS_PARAMETERS", "patroni_config", "patroni_api"]

#: Parameters Patroni 3.0 takes only from the cluster-wide (DCS)
#: configuration, plus the archive settings, which must agree on every
#: member. ``listen_addresses``, ``port`` and ``cluster_name`` are derived
#: by Patroni itself.
DCS_PARAMETERS = (
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_replication_slots",
    "max_prepared_transactions",
    "max_locks_per_transaction",
    "track_commit_timestamp",
    "wal_level",
    "wal_log_hints",
    "hot_standby",
    "wal_keep_size",
    "archive_mode",
    "archive_command",
)

#: Values of DCS parameters when neither the tuning nor pg_parameters give
#: one. ``hot_standby`` and ``wal_log_hints`` are forced on by Patroni.
_DCS_FALLBACK = {
    "hot_standby": "on",
    "max_locks_per_transaction": "64",
    "max_prepared_transactions": "0",
    "track_commit_timestamp": "off",
    "wal_log_hints": "on",
}


def _members_by_ip(cplan) -> Dict[str, Dict[str, Any]]:
    return {m["ip"]: m for m in cplan["members"] if m.get("ip")}


def _delay(text: Any) -> str:
    """A ``pg_delay`` in the units Patroni 3.0 parses (it knows ms, s, min,
    h and d): the largest unit that expresses it exactly. Only what
    PostgreSQL takes as ``recovery_min_apply_delay`` (:func:`model.delay_ms`,
    which validation applies) is converted."""
    ms = delay_ms(text)
    if ms is None:
        raise ValueError("pg_delay %r is not a recovery_min_apply_delay PostgreSQL accepts" % (text,))
    return delay_text(ms)


def _cluster_parameters(cplan, iplan, s, cluster, host) -> Dict[str, str]:
    """The DCS parameters: the cluster's agreed tuning values (the
    cluster plan's ``tuning`` when it has one, else this instance's),
    fallbacks, archive settings, then pg_parameters."""
    tuned = dict(iplan.get("tuning") or {})
    tuned.update(cplan.get("tuning") or {})
    out = {name: _param_value(tuned[name]) for name in DCS_PARAMETERS if name in tuned}
    for name, value in _DCS_FALLBACK.items():
        out.setdefault(name, value)
    out["archive_mode"] = "on"
    if s["pgbackrest_enabled"]:
        # A segment the archive holds already with other content is
        # counted as archived only when no recovery along this member's
        # history reads it (a segment of an older timeline from the one in
        # which that timeline ended): pg-wal-conflict decides, and passes
        # every other failure on (docs/backup.md, "A segment the archive
        # holds already").
        out["archive_command"] = "pgbackrest --stanza=%s archive-push %%p || %s %%p $?" % (
            cluster,
            PATHS["wal_conflict"],
        )
    else:
        # Archiving stays on (changing archive_mode needs a restart), and
        # accepts every segment until pgBackRest is enabled by a reload.
        out["archive_command"] = "/bin/true"
    for name, value in s["pg_parameters"].items():
        if name in DCS_PARAMETERS:
            out[name] = _param_value(value)
    for name, floor in _PATRONI_FLOOR.items():
        current = out.get(name)
        if current is not None and (not current.isdigit() or int(current) < floor):
            raise ModelError(
                [
                    Problem(
                        cluster,
                        host,
                        name,
                        current,
                        "is below %d: Patroni 3.0 ignores such a value and runs "
                        "PostgreSQL with its own default, outside the memory budget "
                        "of the tuning" % floor,
                        "give the node more memory, or set pg_max_conn (or "
                        "pg_parameters.%s) to at least %d" % (name, floor),
                    )
                ]
            )
    return dict(sorted(out.items()))


def _local_parameters(iplan, s) -> Dict[str, str]:
    """Instance parameters: always-on settings, the node's tuning, then
    pg_parameters; never the DCS ones (Patroni would drop them)."""
    out = {
        "unix_socket_directories": PG_SOCKET_DIR,
        "password_encryption": s["pg_pwd_enc"],
        "shared_preload_libraries": ", ".join(p.strip() for p in s["pg_libs"].split(",") if p.strip()),
        "ssl": "on",
        "ssl_cert_file": s["pg_ssl_cert"],
        "ssl_key_file": s["pg_ssl_key"],
        # clients may present certificates of the deployment's CA (HBA auth: cert)
        "ssl_ca_file": s["pg_ssl_ca"],
        "logging_collector": "on",
        "log_destination": "csvlog",
        "log_directory": s["pg_log_dir"],
        "log_filename": "postgresql-%a.log",
        "log_truncate_on_rotation": "on",
        "log_rotation_age": "1d",
        "log_rotation_size": "0",
    }
    for name, value in (iplan.get("tuning") or {}).items():
        out[name] = _param_value(value)
    for name, value in s["pg_parameters"].items():
        out[name] = _param_value(value)
    return {k: v for k, v in sorted(out.items()) if k not in DCS_PARAMETERS}


def _tags(cplan, iplan, s) -> Dict[str, Any]:
    me = iplan["identity"]
    role = me["role"]
    leader = bool(me.get("leader"))
    offline = role == "offline"
    tags: Dict[str, Any] = {
        "nofailover": offline,
        "noloadbalance": False,
        "clonefrom": not leader and not offline,
        "nosync": offline,
    }
    upstream = ip_of(me.get("upstream"))
    if upstream and not leader:
        member = _members_by_ip(cplan).get(upstream)
        if member is not None:
            tags["replicatefrom"] = member["instance"]
    tags.update(s["patroni_tags"])
    return tags


def replication_tls(s, standby: bool) -> Dict[str, str]:
    """The TLS options of Patroni's replication and rewind connections
    (``pg_replication_sslmode``): the server certificate checked against
    the deployment's CA (``pg_ssl_ca``), its names too unless the cluster
    is a standby cluster."""
    mode = s["pg_replication_sslmode"] or ("verify-ca" if standby else "verify-full")
    out = {"sslmode": mode}
    if mode.startswith("verify"):
        out["sslrootcert"] = s["pg_ssl_ca"]
    return out


def archive_get(stanza: str) -> str:
    """``restore_command`` that reads WAL from ``stanza``'s archive."""
    return 'pgbackrest --stanza=%s archive-get %%f "%%p"' % stanza


def seed_method(stanza: str) -> Dict[str, Any]:
    """Patroni's ``postgresql.pgbackrest`` replica method: a delta restore
    of ``stanza``'s latest backup into the (kept, empty) data directory.
    ``--type=none`` writes no recovery settings into
    ``postgresql.auto.conf``, where they would outrank Patroni's, and no
    signal file; Patroni writes its own. It reads the repository only: the source's primary
    sends nothing but the WAL written since that backup (``no_master``:
    Patroni may use it with no member to clone from)."""
    return {
        "command": "pgbackrest --stanza=%s --type=none --delta restore" % stanza,
        "keep_data": True,
        "no_params": True,
        "no_master": True,
    }


def _standby_cluster(cplan, s) -> Optional[Dict[str, Any]]:
    ident = cplan["identity"]
    if not ident.get("standby"):
        return None
    leader = next((m for m in cplan["members"] if m["host"] == ident.get("leader_host")), None)
    if leader is None or not leader.get("upstream"):
        return None
    block: Dict[str, Any] = {
        "host": ip_of(leader["upstream"]) or leader["upstream"],
        # the source's pg_port when it is a cluster of the inventory
        "port": leader.get("upstream_port") or s["pg_port"],
        "create_replica_methods": ["basebackup"],
    }
    seed = (cplan.get("standby") or {}).get("seed")
    if seed:
        # pg_standby_seed: pgbackrest. The leader restores the source's
        # latest backup from the source's repository (the method of
        # seed_method), pg_basebackup from the source if that fails (no
        # backup yet); it then reads the source's WAL archive as well as
        # its stream, so a leader that fell behind what the source keeps
        # catches up from the archive.
        block["create_replica_methods"] = ["pgbackrest", "basebackup"]
        block["restore_command"] = archive_get(seed)
    slot = (cplan.get("standby") or {}).get("slot")
    if slot:
        # a permanent slot on the source (its DCS "slots", standby_plan);
        # Patroni then also asks for target_session_attrs=read-write
        block["primary_slot_name"] = slot
    if leader.get("delay") is not None:
        block["recovery_min_apply_delay"] = _delay(leader["delay"])
    return block


#: Pigsty links /usr/pgsql to the installed version and names this path in
#: its defaults (inventories that list every default carry it).
PIGSTY_BIN_DIR = "/usr/pgsql/bin"


def bin_dir(value: Any, version: int) -> str:
    """PostgreSQL's binaries: ``pg_bin_dir``, or Debian's directory of the
    version when it is unset or Pigsty's /usr/pgsql/bin link (which Debian
    does not have)."""
    if value in (None, "", PIGSTY_BIN_DIR):
        return "/usr/lib/postgresql/%d/bin" % version
    return value


# Patroni's on_role_change callback, installed by the pgbackrest role
# (roles/pgbackrest/vars/main.yml: __pgbackrest_role_change_script).
ROLE_CHANGE_CALLBACK = PATHS["role_change_callback"]


def patroni_config(cplan: Mapping[str, Any], iplan: Mapping[str, Any], settings: Mapping[str, Any]) -> Dict[str, Any]:
    """The Patroni 3.0 configuration (``patroni.yml``) of one instance."""
    s, cluster, host = _require(settings, cplan, iplan)
    me = iplan["identity"]
    ip = me["ip"]
    endpoints = list(cplan["etcd"]["endpoints"])
    if not endpoints:
        raise ModelError(
            [
                Problem(
                    cluster,
                    host,
                    "groups.etcd",
                    [],
                    "Patroni needs etcd and the inventory gives no etcd member with an address",
                    "add a group 'etcd' with 1, 3 or 5 hosts",
                )
            ]
        )
    ha = cplan["ha"]["patroni"]
    hba = [str(line) for line in iplan["pg_hba"]]
    active = [line for line in hba if line.strip() and not line.lstrip().startswith("#")]
    version = s["pg_version"]
    repl = {
        "username": s["pg_replication_username"],
        "password": _secret(s, s["pg_replication_password"]),
        **replication_tls(s, bool(cplan["identity"].get("standby"))),
    }

    # the etcd group's own TLS (etcd_tls_enabled) is verified against the
    # deployment's CA; an etcd_protocol of the inventory (an etcd managed
    # elsewhere) against etcd_cacert, or the system's CAs
    protocol = s["etcd_protocol"] or cplan["etcd"].get("protocol", "http")
    etcd: Dict[str, Any] = {"hosts": endpoints, "protocol": protocol}
    if cplan["etcd"].get("use_proxies"):
        etcd["use_proxies"] = True
    if s["etcd_cacert"] is not None:
        etcd["cacert"] = s["etcd_cacert"]
    elif protocol == "https" and s["etcd_protocol"] is None:
        etcd["cacert"] = s["pg_ssl_ca"]
    if s["etcd_username"] is not None:
        etcd["username"] = s["etcd_username"]
        etcd["password"] = _secret(s, s["etcd_password"])
    elif cplan["etcd"].get("auth"):
        # the cluster's own etcd user (created by the etcd and patroni roles)
        etcd["username"] = cplan["etcd"]["username"]
        etcd["password"] = _secret(s, etcd_password(s["pg_etcd_password"], cluster))

    dcs: Dict[str, Any] = {
        key: ha[key]
        for key in (
            "ttl",
            "loop_wait",
            "retry_timeout",
            "primary_start_timeout",
            "maximum_lag_on_failover",
            "synchronous_mode",
            "synchronous_mode_strict",
            "failsafe_mode",
        )
    }
    dcs["postgresql"] = {
        "use_pg_rewind": ha["use_pg_rewind"],
        "use_slots": ha["use_slots"],
        "parameters": _cluster_parameters(cplan, iplan, s, cluster, host),
    }
    followers = (cplan.get("standby") or {}).get("followers") or []
    if followers:
        # the standby clusters that follow this one keep their WAL here
        # (bounded by max_slot_wal_keep_size)
        dcs["slots"] = {slot: {"type": "physical"} for slot in followers}
    standby = _standby_cluster(cplan, s)
    if standby is not None:
        dcs["standby_cluster"] = standby
        # A standby leader has no synchronous standbys to name (Patroni
        # 3.0.2 does not manage /sync for it), and with synchronous_mode on
        # it refuses a switchover to any member; the inventory's setting
        # comes back with the DCS push of the run that promotes it.
        dcs["synchronous_mode"] = False
        dcs["synchronous_mode_strict"] = False

    initdb: List[Any] = []
    if s["pg_checksum"]:
        initdb.append("data-checksums")
    initdb += [{"encoding": s["pg_encoding"]}, {"locale": s["pg_locale"]}]

    postgresql: Dict[str, Any] = {
        "listen": "0.0.0.0:%d" % s["pg_port"],
        "connect_address": "%s:%d" % (ip, s["pg_port"]),
        "data_dir": s["pg_data"],
        "bin_dir": bin_dir(s["pg_bin_dir"], version),
        "config_dir": s["pg_conf_dir"],
        "pgpass": s["patroni_pgpass"],
        "use_unix_socket": True,
        "authentication": {
            "superuser": {"username": s["pg_dbsu"]},
            "replication": dict(repl),
            "rewind": dict(repl),
        },
        "parameters": _local_parameters(iplan, s),
    }
    if s["pgbackrest_enabled"] and standby is None:
        # (a standby cluster's stanza is created when it is promoted: until
        # then its members stream only)
        postgresql["recovery_conf"] = {"restore_command": archive_get(cluster)}
    if s["pgbackrest_enabled"]:
        # A member that becomes the leader makes sure its repository has
        # the stanza (a local repository of a former replica has none), so
        # that archive_command works at once after a failover.
        postgresql["callbacks"] = {"on_role_change": ROLE_CHANGE_CALLBACK}
    if standby is not None and "recovery_min_apply_delay" in standby:
        # A delayed cluster: the standby leader applies its delay
        # (standby_cluster), and its replicas, which receive the WAL from it
        # as soon as it does, apply the same delay themselves.
        postgresql.setdefault("recovery_conf", {})["recovery_min_apply_delay"] = standby["recovery_min_apply_delay"]
    postgresql["pg_hba"] = hba
    postgresql["create_replica_methods"] = ["basebackup"]
    postgresql["basebackup"] = {"checkpoint": "fast"}
    if standby is not None and (cplan.get("standby") or {}).get("seed"):
        postgresql["pgbackrest"] = seed_method(cplan["standby"]["seed"])

    restapi: Dict[str, Any] = {
        "listen": "0.0.0.0:%d" % s["patroni_port"],
        "connect_address": "%s:%d" % (ip, s["patroni_port"]),
        "authentication": {
            "username": s["patroni_username"],
            "password": _secret(s, s["patroni_password"]),
        },
    }
    ctl: Dict[str, Any] = {}
    if s["patroni_ssl_enabled"]:
        # HTTPS with the node's certificate, which names the member's
        # address (connect_address); patronictl verifies it against the CA
        restapi.update(certfile=s["pg_ssl_cert"], keyfile=s["pg_ssl_key"])
        ctl = {"cacert": s["pg_ssl_ca"]}
    out: Dict[str, Any] = {
        "scope": cluster,
        "namespace": cplan["etcd"]["namespace"],
        "name": me["instance"],
        "restapi": restapi,
        "etcd3": etcd,
        "bootstrap": {
            "dcs": dcs,
            "initdb": initdb,
            "pg_hba": active or hba,
        },
        "postgresql": postgresql,
        "watchdog": {
            "mode": _watchdog_mode(s["patroni_watchdog_mode"]),
            "safety_margin": ha.get("safety_margin", 5),
        },
        "tags": _tags(cplan, iplan, s),
        "log": {
            "dir": s["patroni_log_dir"],
            "level": "INFO",
            "file_num": 10,
            "file_size": 67108864,
        },
    }
    if ctl:
        out["ctl"] = ctl
    return out


def patroni_api(iplan: Mapping[str, Any], settings: Mapping[str, Any]) -> Dict[str, Any]:
    """How the playbooks, HAProxy and the exporters reach one member's REST
    API: ``url`` (``https://<address>:<patroni_port>``, ``http://`` with
    ``patroni_ssl_enabled: false``), ``ca_path`` (the CA on the node that
    verifies the member's certificate, None over HTTP), and the credentials
    of the unsafe endpoints (``username``, ``password``)."""
    s = settings
    url = iplan["identity"]["patroni_url"]
    return {
        "url": url,
        "ca_path": s["pg_ssl_ca"] if url.startswith("https:") else None,
        "username": s["patroni_username"],
        "password": _secret(s, s["patroni_password"]),
    }


def api_scheme_moves(
    members: Sequence[Mapping[str, Any]], current: Mapping[str, Any], to: Optional[str] = None
) -> List[str]:
    """The members whose REST API a run of pgsql.yml moves between HTTP and
    HTTPS: ``current`` maps a host to the scheme its configuration in place
    serves (``http``, ``https``; anything else, such as ``none`` for a
    member not configured yet or no answer, counts as no move), and each
    member of ``members`` (the cluster plan's, with ``patroni_url``) says
    the scheme the model gives it. Per member, so that a member added to a
    cluster (no configuration yet) is not counted. With ``to``, only the
    members that move to that scheme: ``http`` are the ones whose Patroni
    must restart (Patroni 3.0.2 keeps its TLS client settings across a
    reload, and then cannot ask other members over HTTP)."""
    out = []
    for member in members:
        now = current.get(member["host"])
        new = str(member["patroni_url"]).split("://", 1)[0]
        if now in ("http", "https") and now != new and to in (None, new):
            out.append(member["host"])
    return out
