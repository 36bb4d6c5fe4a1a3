# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Filters over the cluster model. Each is a thin wrapper around
``plugins/module_utils``; documentation lives in the YAML file of the same
name beside this one."""

from __future__ import annotations

import base64
import json

from ansible.errors import AnsibleFilterError

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    alerting,
    cron as cron_mod,
    defaults as defaults_mod,
    dns as dns_mod,
    etcd_tls,
    ha as ha_mod,
    objects as objects_mod,
    packages as packages_mod,
    patroni_conf,
    patroni_ops,
    pitr as pitr_mod,
    pki,
    plan,
    removal,
    render as render_mod,
    reversal,
    tuning as tuning_mod,
    upstream,
    validate as validate_mod,
)
from ansible_collections.pigpen.pgsql.plugins.module_utils.errors import (
    ModelError,
)
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import (
    load_checked,
    load_for_clusters,
    load_valid,
    snapshot,
)


def _fail(exc: Exception, what: str):
    raise AnsibleFilterError("%s: %s" % (what, exc)) from exc


def pg_cluster_plan(hostvars, groups, cluster):
    """Services, HA plan, pools and etcd keys of one cluster."""
    try:
        inv = load_valid(hostvars, groups, list(groups.get(cluster, ())) or None)
        return plan.cluster_plan(inv, cluster)
    except (ModelError, KeyError) as exc:
        _fail(exc, "pg_cluster_plan(%s)" % cluster)


def pg_drill_plan(hostvars, groups, cluster):
    """Where and how the restore drill of one cluster runs."""
    try:
        inv = load_valid(hostvars, groups, list(groups.get(cluster, ())) or None)
        return plan.drill_plan(inv, cluster)
    except (ModelError, KeyError) as exc:
        _fail(exc, "pg_drill_plan(%s)" % cluster)


def pg_instance_plan(hostvars, groups, host):
    """Identity, HBA lines and tuning of one instance (plus its cluster's
    plan under ``cluster``)."""
    try:
        inv = load_valid(hostvars, groups, [host])
        cluster = inv.cluster_of(host)
        if cluster is None:
            raise KeyError("host %r has no pg_cluster" % host)
        out = plan.instance_plan(inv, host)
        out["cluster"] = plan.cluster_plan(inv, cluster.name)
        return out
    except (ModelError, KeyError) as exc:
        _fail(exc, "pg_instance_plan(%s)" % host)


def pg_instance_files(pg_plan, host_vars, mask_secrets=False):
    """Patroni config, pgbouncer.ini and pgbackrest.conf sections, the
    cluster's etcd user and the pg-vip config of one instance, from its
    plan (``pg_instance_plan``) and its settings."""
    try:
        return render_mod.instance_configs(pg_plan, host_vars, mask_secrets)
    except (ModelError, KeyError, TypeError) as exc:
        _fail(exc, "pg_instance_files")


def pg_host_services(hostvars, groups, host):
    """Services the HAProxy of ``host`` publishes (own cluster, or clusters
    whose ``pg_service_provider`` group holds it)."""
    try:
        # another cluster's problems (an extra variable of a run limited
        # to this one) do not stop this node's services
        inv = load_for_clusters(hostvars, groups, lambda inv: plan.published_clusters(inv, host))
        return plan.host_services(inv, host)
    except ModelError as exc:
        _fail(exc, "pg_host_services(%s)" % host)


def pg_outside_services(hostvars, groups, hosts):
    """Service fragments of the HAProxy nodes outside ``hosts`` that route
    to a cluster with a member in ``hosts``: ``[{host, service}, ...]``."""
    try:
        hosts = list(hosts or ())

        def needed(inv):
            return [name for peer in plan.peer_hosts(inv, hosts) for name in plan.published_clusters(inv, peer)]

        return plan.peer_services(load_for_clusters(hostvars, groups, needed), hosts)
    except ModelError as exc:
        _fail(exc, "pg_outside_services")


def pg_problems(hostvars, groups, hosts=None):
    """Every problem of the clusters of ``hosts`` (all when omitted), as
    messages; empty when the inventory is valid."""
    _skip, found = load_checked(hostvars, groups, hosts)
    return [str(p) for p in found]


def pg_etcd_users(hostvars, groups):
    """The etcd user of every PostgreSQL cluster: name, password and the
    key prefix its role may use."""
    try:
        return plan.etcd_users(load_valid(hostvars, groups, None))
    except ModelError as exc:
        _fail(exc, "pg_etcd_users")


def pg_patroni_problems(cluster, max_lag=None):
    """Why a Patroni cluster (``GET /cluster``) is not healthy enough for a
    planned operation; empty when it is."""
    return patroni_ops.problems(cluster or {}, max_lag)


def pg_rm_leaders(answers, names, views=None):
    """Which members of a removal lead, or may lead (no clear answer from
    their Patroni and no member that stays naming another leader)."""
    return removal.removal_leaders(answers or {}, names or {}, views or [])


def pg_api_moves(members, current, to=None):
    """The members whose REST API changes scheme in this run
    (patroni_conf.api_scheme_moves): ``members`` of the cluster plan,
    ``current`` host -> the scheme served now; ``to`` keeps the moves to
    that scheme only."""
    if to not in (None, "http", "https"):
        raise AnsibleFilterError("pg_api_moves: to must be http or https, not %r" % (to,))
    return patroni_conf.api_scheme_moves(members or [], current or {}, to)


def pg_limit_problems(values, host, parts):
    """The model's rule for a role's limits (validate.limit_problems) over
    the values the role was given: ``parts`` is a list of haproxy,
    pgbouncer, vip; empty when they are fine."""
    unknown = [p for p in parts if p not in validate_mod.LIMIT_PARTS]
    if unknown:
        raise AnsibleFilterError(
            "pg_limit_problems: unknown part %s: use %s"
            % (", ".join(unknown), ", ".join(sorted(validate_mod.LIMIT_PARTS)))
        )
    # -e key=value gives strings: a role takes "4000" as 4000
    values = {
        k: int(v) if isinstance(v, str) and v.isdigit() and not k.endswith("_timeout") else v
        for k, v in dict(values or {}).items()
    }
    return [str(p) for p in validate_mod.limit_problems(values.get, values.get("pg_cluster"), host, parts)]


def pg_path(name):
    """A fixed path two components must agree on (defaults.PATHS), e.g.
    ``'haproxy_admin_socket' | pigpen.pgsql.pg_path``."""
    if name not in defaults_mod.PATHS:
        raise AnsibleFilterError(
            "pg_path: unknown path %r: use one of %s" % (name, ", ".join(sorted(defaults_mod.PATHS)))
        )
    return defaults_mod.PATHS[name]


def pg_ha_plan(pg_rto="norm", pg_rpo=ha_mod.DEFAULT_RPO, pg_conf="oltp"):
    """Patroni and HAProxy timings of an RTO/RPO plan."""
    found = ha_mod.check_ha(pg_rto, pg_rpo)
    if found:
        raise AnsibleFilterError(str(ModelError(found)))
    return ha_mod.ha_plan(pg_rto, pg_rpo, pg_conf)


def pg_tune(profile, mem_mb, cpu, disk_gb=None, shared_buffer_ratio=0.25, max_connections="auto", pg_version=15):
    """PostgreSQL parameters for a node size and a pg_conf profile."""
    found = tuning_mod.check_tuning(profile, mem_mb, cpu, disk_gb, shared_buffer_ratio, max_connections)
    if found:
        raise AnsibleFilterError(str(ModelError(found)))
    return tuning_mod.tune(
        profile,
        mem_mb,
        cpu,
        disk_gb,
        shared_buffer_ratio=shared_buffer_ratio,
        max_connections=max_connections,
        pg_version=pg_version,
    )


def pg_pitr_plan(pg_pitr, cluster, pg_data="/pg/data", repo_type="posix"):
    """The checked point-in-time recovery plan of ``pg_pitr``."""
    try:
        return pitr_mod.pitr_plan(pg_pitr, cluster=cluster, pg_data=pg_data, repo_type=repo_type)
    except ModelError as exc:
        _fail(exc, "pg_pitr of %s" % cluster)


def pg_pitr_source(infos, plan, leader=None, shared=False, now=0, archive_current=False):
    """Which member's repository can take the cluster to the plan's target:
    ``{"member": name or None, "reaches": {member: reach}}`` from each
    member's ``pgbackrest info --output=json`` text or parsed list."""
    reaches = {}
    for member, text in (infos or {}).items():
        try:
            data = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            data = None
        reaches[member] = pitr_mod.reach(data, plan or {}, now=int(now), archive_current=bool(archive_current))
    return {"member": pitr_mod.choose_member(reaches, leader, bool(shared)), "reaches": reaches}


def pg_live_role_checks(hostvars, groups, hosts):
    """One entry per cluster with a member in ``hosts``: its name, the
    ``GET /cluster`` URL of its first member's Patroni and the model's
    member identities (for ``pg_role_drift``). Only the targeted
    clusters are read: an extra variable such as ``-e pg_users=...`` that
    fits the targeted cluster may not fit the others. Information only: a
    model that does not load (pg_validate has said why) gives no entry."""
    wanted = set(hosts or ())
    try:
        inv = load_valid(hostvars, groups, sorted(wanted))
    except ModelError:
        return []
    out = []
    for name, cluster in sorted(inv.clusters.items()):
        if not any(m.host in wanted for m in cluster.members):
            continue
        first = cluster.members[0]
        out.append(
            {
                "cluster": name,
                "url": first.patroni_url + "/cluster",
                "members": [m.identity() for m in cluster.members],
            }
        )
    return out


def pg_cert_renewal(info, renew_all=False):
    """Whether to re-issue a node certificate now (``pki.needs_renewal``):
    ``renew_all``, or ``x509_certificate_info``'s ``valid_at.renew`` is
    false (it expires within the renewal window)."""
    return pki.needs_renewal(info, renew_all)


def _etcd_env_texts(reads):
    texts = {}
    for host, read in (reads or {}).items():
        if isinstance(read, dict):
            content = read.get("content")
            texts[host] = base64.b64decode(content).decode("utf-8", "replace") if content else None
        else:
            texts[host] = read
    return texts


def _etcd_client_routes(results, bridge_port):
    """host -> how its Patroni reaches etcd, from the results of a command
    loop (``item``: the host) that printed the ``etcd3`` block's
    ``protocol`` and ``hosts`` as JSON (``null``: no configuration)."""
    routes = {}
    for result in results or []:
        if not isinstance(result, dict) or result.get("skipped"):
            continue
        host = result.get("item")
        try:
            if result.get("rc") != 0 or result.get("unreachable"):
                raise ValueError("not read")
            routes[host] = etcd_tls.client_route(json.loads(result.get("stdout") or ""), bridge_port)
        except (ValueError, TypeError, AttributeError):
            routes[host] = "unknown"
    return routes


def pg_etcd_tls_plan(reads, desired, cluster="etcd", members=(), clients=None, bridge_port=2382):
    """What a run of the etcd role does about TLS (``etcd_tls.tls_plan``).
    ``reads`` maps each member of the play to ``slurp``'s result for its
    settings file (a failed read: no file), or to the file's text;
    ``clients`` is the registered loop that read how each PostgreSQL
    host's Patroni reaches etcd (``_etcd_client_routes``)."""
    try:
        return etcd_tls.tls_plan(
            _etcd_env_texts(reads),
            desired,
            cluster,
            list(members or []),
            _etcd_client_routes(clients, bridge_port),
            bridge_port,
        )
    except ValueError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def pg_etcd_modes(reads):
    """host -> the mode of its etcd settings file (``etcd_tls.mode_of``;
    None without a file), from ``slurp`` results or texts."""
    return {host: etcd_tls.mode_of(text) for host, text in _etcd_env_texts(reads).items()}


def pg_dcs_source(hostvars, groups, address, cluster):
    """The cluster of the inventory a standby cluster follows
    (``upstream.dcs_source``): ``{cluster, prefix}`` for the address in its
    DCS's ``standby_cluster.host``, or ``{}``."""
    return upstream.dcs_source(snapshot(hostvars, groups)["hostvars"], address, cluster)


def pg_reversal(answers, source, target, hostvars, groups, hosts):
    """Where a role reversal of ``source`` and its standby cluster
    ``target`` stands (``reversal.plan``), from the answers of their members
    to ``GET /config`` and ``GET /cluster`` (each ``{cluster, path,
    json}``); ``hosts`` maps member names to inventory hosts."""
    hv = snapshot(hostvars, groups)["hostvars"]

    def source_of(block, owner):
        return upstream.dcs_source(hv, (block or {}).get("host"), owner).get("cluster")

    return reversal.plan(source, target, [_answer(a) for a in answers or []], hosts or {}, source_of)


def _answer(result):
    """A ``uri`` loop's result over ``[member, path]`` items as ``{cluster,
    path, json}``; other mappings as they are."""
    if isinstance(result, dict) and isinstance(result.get("item"), (list, tuple)) and len(result["item"]) == 2:
        member, path = result["item"]
        return {"cluster": (member or {}).get("cluster"), "path": path, "json": result.get("json")}
    return result


def pg_reversal_stop(answers):
    """Where a stopped source ended (``reversal.stop_point``), from
    ``pg_controldata`` of its members: each ``{host, stdout}``, or a
    ``command`` loop's result over hosts (``item``, ``stdout``)."""
    rows = [
        {"host": a.get("item"), "stdout": a.get("stdout")} if isinstance(a, dict) and "host" not in a else a
        for a in answers or []
    ]
    return reversal.stop_point(rows)


def pg_replayed_past(replayed, mark, inclusive=False):
    """Whether the replay position ``replayed`` is past LSN ``mark``
    (``reversal.replayed_past``)."""
    return reversal.replayed_past(replayed, mark, bool(inclusive))


def pg_role_drift(results):
    """Lines saying where Patroni's live roles differ from the inventory's
    (``patroni_ops.role_drift``), from the results of a ``uri`` loop over
    ``pg_live_role_checks`` (each with ``json`` and ``item.members``); a
    cluster whose Patroni did not answer is left out."""
    out = []
    for result in results or []:
        if isinstance(result, dict) and isinstance(result.get("json"), dict):
            out.extend(patroni_ops.role_drift(result["json"], (result.get("item") or {}).get("members") or []))
    return out


def pg_pitr_start_options(controldata, parameters, port=5432):
    """``pg_ctl -o`` options that start a restored data directory outside
    Patroni (local socket only, hot standby settings high enough)."""
    return pitr_mod.start_options(controldata or "", parameters or {}, port)


def pg_alert_rules(hostvars, groups, overrides=None, scrape_interval="10s", cert_interval="1h"):
    """Prometheus rule groups (one per component) with the thresholds the
    cluster model gives each cluster (``alerting.alert_rules``)."""
    try:
        inv = load_valid(hostvars, groups, None)
        return alerting.alert_rules(inv, overrides or {}, scrape_interval, cert_interval)
    except (ModelError, alerting.AlertingError) as exc:
        _fail(exc, "pg_alert_rules")


def pg_etcd_targets(hostvars, groups):
    """Prometheus static target groups of the inventory's etcd members."""
    try:
        return alerting.etcd_targets(load_valid(hostvars, groups, None))
    except ModelError as exc:
        _fail(exc, "pg_etcd_targets")


def pg_alertmanager_config(
    receivers,
    routes=None,
    receiver="",
    group_by=("alertname", "cls"),
    group_wait="30s",
    group_interval="5m",
    repeat_interval="4h",
    recorder_urls=None,
    inhibit_rules=None,
):
    """``alertmanager.yml`` as data (``alerting.alertmanager_config``)."""
    try:
        return alerting.alertmanager_config(
            receivers or [],
            routes or [],
            receiver or "",
            list(group_by or []),
            group_wait,
            group_interval,
            repeat_interval,
            list(recorder_urls or []),
            inhibit_rules or [],
        )
    except alerting.AlertingError as exc:
        _fail(exc, "pg_alertmanager_config")


def pg_endpoints(hostvars, hosts, port, listen_address=""):
    """``address:port`` of each host of ``hosts``: ``listen_address`` when
    set, else its ``ansible_host``, else its inventory name."""
    pairs = []
    for host in hosts or []:
        hv = hostvars[host] if host in hostvars else {}
        pairs.append((host, hv.get("ansible_host")))
    return alerting.endpoints(pairs, port, listen_address or "")


def pkgs_missing(wanted, facts):
    """The packages of ``wanted`` that the node's ``dpkg_packages`` fact
    (set by ``pigpen.pgsql.dpkg_facts``) does not show installed; all of
    them when the fact is not there."""
    installed = (facts or {}).get("dpkg_packages")
    if isinstance(wanted, str):
        wanted = [wanted]
    return packages_mod.missing(wanted, installed)


def pg_later_role_packages(host_vars):
    """The packages of the roles that follow PostgreSQL's on this node
    (Patroni, pgbouncer, HAProxy, VIP, exporters), as those roles would
    install them: the postgres role installs them with its own on a new node."""
    return packages_mod.after_postgres(host_vars or {})


def pg_node_crontab(entries):
    """The ``/etc/cron.d`` lines of ``node_crontab`` (``schedule user
    command``); fails on an entry that is not one."""
    found = cron_mod.node_crontab_problems(None, None, entries)
    if found:
        raise AnsibleFilterError(str(ModelError(found)))
    return cron_mod.node_crontab_lines(entries)


def pg_objects(default_roles, users, databases, passwords, dbsu):
    """What the postgres role creates on the leader: roles (system users'
    passwords filled in), memberships, kept databases, schemas, extensions,
    database parameters and the schemas that get default privileges
    (``objects.object_plan``)."""
    return objects_mod.object_plan(default_roles, users, databases, dict(passwords or {}), dbsu)


def pg_dns_records(hostvars, groups, hosts=None, without=None):
    """The cluster DNS records of the clusters with a member in ``hosts``
    (every cluster when omitted), leaving out the members of ``without``:
    ``{cluster: [{name, address, host}, ...]}`` (``dns.records``)."""
    try:
        inv = load_valid(hostvars, groups, list(hosts) if hosts else None)
        wanted = None
        if hosts:
            wanted = {c.name for c in inv.clusters.values() if any(m.host in set(hosts) for m in c.members)}
        out = {}
        for cluster, found in dns_mod.records(inv, wanted, list(without or ())).items():
            hosts = {m.instance: m.host for m in inv.clusters[cluster].members}
            out[cluster] = [{"name": name, "address": address, "host": hosts.get(name)} for name, address in found]
        return out
    except ModelError as exc:
        _fail(exc, "pg_dns_records")


def pg_resolv_conf(existing, servers, options=None, method="add", admin_ip=None):
    """The text of ``/etc/resolv.conf`` with ``node_dns_servers`` first
    (``dns.resolv_conf``; ``${admin_ip}`` is replaced by ``admin_ip``)."""
    if method not in ("add", "overwrite", "none"):
        raise AnsibleFilterError("pg_resolv_conf: node_dns_method = %r: is not add, overwrite or none" % (method,))
    return dns_mod.resolv_conf(existing or "", dns_mod.resolv_servers(servers or [], admin_ip), options or [], method)


class FilterModule:
    """pigpen.pgsql cluster model filters."""

    def filters(self):
        return {
            "pg_alert_rules": pg_alert_rules,
            "pg_api_moves": pg_api_moves,
            "pg_alertmanager_config": pg_alertmanager_config,
            "pg_cluster_plan": pg_cluster_plan,
            "pg_drill_plan": pg_drill_plan,
            "pg_endpoints": pg_endpoints,
            "pg_etcd_targets": pg_etcd_targets,
            "pg_instance_files": pg_instance_files,
            # the name before 0.1.0's rename (now the name of the fact pgsql.yml keeps it in)
            "pg_configs": pg_instance_files,
            "pg_dns_records": pg_dns_records,
            "pg_resolv_conf": pg_resolv_conf,
            "pg_instance_plan": pg_instance_plan,
            "pg_problems": pg_problems,
            "pg_etcd_users": pg_etcd_users,
            "pg_patroni_problems": pg_patroni_problems,
            "pg_rm_leaders": pg_rm_leaders,
            "pg_pitr_plan": pg_pitr_plan,
            "pg_pitr_start_options": pg_pitr_start_options,
            "pg_pitr_source": pg_pitr_source,
            "pg_live_role_checks": pg_live_role_checks,
            "pg_role_drift": pg_role_drift,
            "pg_reversal": pg_reversal,
            "pg_reversal_stop": pg_reversal_stop,
            "pg_replayed_past": pg_replayed_past,
            "pg_dcs_source": pg_dcs_source,
            "pg_cert_renewal": pg_cert_renewal,
            "pg_etcd_tls_plan": pg_etcd_tls_plan,
            "pg_etcd_modes": pg_etcd_modes,
            "pg_ha_plan": pg_ha_plan,
            "pg_path": pg_path,
            "pg_limit_problems": pg_limit_problems,
            "pg_host_services": pg_host_services,
            "pg_outside_services": pg_outside_services,
            # the name before 0.1.0's rename (it clashed with HAProxy's own "peers")
            "pg_peer_services": pg_outside_services,
            "pg_tune": pg_tune,
            "pg_later_role_packages": pg_later_role_packages,
            # the name before 0.1.0's rename
            "pg_packages_after_postgres": pg_later_role_packages,
            "pkgs_missing": pkgs_missing,
            "pg_node_crontab": pg_node_crontab,
            "pg_objects": pg_objects,
        }
