# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Fault scenarios against a running cluster, measured from the client side.

For each scenario of the configuration (YAML, see ``sandbox.yml``):

1. wait until Patroni reports the cluster healthy (one leader, every member
   running, replicas within ``max_lag`` bytes);
2. start the load generator (``loadgen.py``) with the configuration's
   ``clients`` (name -> ``{kind, dsn}``, kinds ``write``, ``read``,
   ``read-standby``: writers with libpq multi-host DSNs and
   ``target_session_attrs``, through the VIP, straight to pgbouncer;
   readers of the replica service), and, when ``probe_dsn`` is set, direct
   writes to every member;
3. run the scenario's ``inject`` commands (the fault), wait ``hold_s``
   seconds and until writes are acknowledged again (and, with ``wait_for:
   new_leader``, until another member leads), run its ``heal``
   commands, and wait until the cluster is healthy with every member back
   (and at least ``observe_s`` seconds after the fault);
4. stop the load and compute, for every client on its own: its outage
   (writes or reads), its errors, its sessions and those that landed on the
   wrong role (a writer on a standby, a ``read-standby`` reader on the
   primary); then acknowledged rows lost (RPO, over every writer), split
   brain (nodes beyond one accepting direct writes within one second),
   whether the leader changed, time until healthy, when each of the
   scenario's ``watch`` endpoints (``{name: x_s, tcp: ip:port}`` or
   ``http: url``) answered again, and from every member's
   ``GET /patroni`` (polled twice a second) the longest time a member went
   without reaching the DCS and how many members ran in failsafe mode;
   compare with the targets (the configuration's ``targets``, then the
   scenario's). ``write_outage_s``, ``read_outage_s`` and
   ``wrong_role_sessions`` hold for each client of their kind, and a miss
   names the client.

The configuration is checked before any load starts: an unknown client
kind, a client without a DSN, an unknown scenario (``--scenario``), scenario
key or target, a ``patroni_ca`` that cannot be read while a member's API is
https, is refused with what to write instead.

A scenario may also have ``setup`` commands (run once before its runs, e.g.
to grow etcd), ``wait_dcs_discovery: true`` (after the setup, wait until
every Patroni has read the etcd member list again: it does so every
10 x ttl seconds, and a reload does not change the etcd hosts it was started
with) and ``teardown`` commands (run once after its runs, even when one
failed). When a run misses a target, its ``diagnose`` commands (the
scenario's, else the configuration's) run and their output is logged and
kept in the result (``diagnosis``), e.g. the leader's Patroni log. With
``--retry-time-misses N``, a run that missed time targets only (never rows
lost or split brain) is measured again, at most N times per scenario; the
missed runs are kept under ``retried_runs`` and named in the summary.

With the configuration's ``alerts.enabled`` (or ``--check-alerts``), a
scenario's ``alerts: {raise: [...], clear: true, within_s: N}`` is checked
against the infra node's webhook recorder (``alerts.py``; the file is what
the ``alerts.record`` command prints): before the fault, no alert may be
firing (waiting up to ``alerts.quiet_timeout_s``; with ``alerts.active``,
the command that prints Alertmanager's ``/api/v2/alerts``, an alert
Alertmanager no longer holds does not count, whatever the recorder last
received of it); after it, each alert of
``raise`` must have been received firing within ``within_s`` of the fault
and, with ``clear``, resolved within ``clear_within_s`` (default
``within_s``) of the heal, and no alert outside ``raise`` and ``allow`` may
have started. A miss is a missed target of the run (``alert ...``). Off by
default: the suite then runs exactly as without alerting.

Commands are shell lines with ``${name}`` placeholders: the configuration's
``vars`` (overridable with ``--var name=value``), ``bindir`` (the directory
of the Python running this, e.g. the venv's ``ansible-playbook``), and per run ``leader``,
``replica`` (the healthy replica with the least lag, not the offline one
when another exists), ``<role>_ip``, ``<role>_container``, ``<role>_api``,
``peers_of_leader`` (the addresses of the other members and of etcd) and
``etcd_leader_ip`` / ``etcd_leader_container`` (the etcd member that leads
the etcd cluster, asked over etcd's HTTP API: https verified against
``patroni_ca``, the deployment's CA that also signs etcd's server
certificates, then plain http for etcd without ``etcd_tls_enabled``;
containers from ``members`` and ``containers``).

Patroni's REST API (the members' ``api``, ``http`` watches) is asked over
the URLs' scheme: an ``https`` URL is verified against the configuration's
``patroni_ca``, the deployment's CA on this machine (``~`` expanded; the
system's CAs when it is not set). A configuration whose members' APIs are
all ``http`` (``patroni_ssl_enabled: false``) needs no CA file.

    python tools/chaos/run.py tools/chaos/sandbox.yml [--scenario node-crash] [--runs 3]
        [--var prefix=pigpen-molecule --var net=10.10.20] [--tolerance 1.5] [--retry-time-misses 1]
        [--check-alerts] --output ha.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import socket
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, ".collections"))

import alerts  # noqa: E402
import loadgen  # noqa: E402
import measure  # noqa: E402
from ansible_collections.pigpen.pgsql.plugins.module_utils import patroni_ops as ops  # noqa: E402


def expand(value: Any, names: Dict[str, str]) -> Any:
    if isinstance(value, str):
        return string.Template(value).safe_substitute(names)
    if isinstance(value, list):
        return [expand(v, names) for v in value]
    if isinstance(value, dict):
        return {expand(k, names): expand(v, names) for k, v in value.items()}
    return value


def log(message: str) -> None:
    print("chaos: %s %s" % (time.strftime("%H:%M:%S"), message), flush=True)


def https_apis(conf: Dict[str, Any]) -> bool:
    """Whether a member's ``api`` is an https URL."""
    members = conf.get("members")
    if not isinstance(members, dict):
        return False
    return any(isinstance(m, dict) and str(m.get("api", "")).startswith("https://") for m in members.values())


def api_context(conf: Dict[str, Any]) -> Optional[ssl.SSLContext]:
    """How the https URLs of Patroni's REST API are verified: against
    ``patroni_ca`` (``~`` expanded). None, urllib's default (the system's
    CAs), when no member's API is https or no CA is set. Raises OSError
    when the CA cannot be read."""
    ca = conf.get("patroni_ca")
    if not ca or not https_apis(conf):
        return None
    return ssl.create_default_context(cafile=os.path.expanduser(str(ca)))


def etcd_context(conf: Dict[str, Any]) -> Optional[ssl.SSLContext]:
    """How etcd's https client URLs are verified: against ``patroni_ca``
    (``~`` expanded), the deployment's CA, which signs etcd's server
    certificates too (``etcd_tls_enabled``). Unlike :func:`api_context`
    never raises: without a readable CA (or none set) the system's CAs, and
    :func:`etcd_leader` falls back to plain http."""
    ca = conf.get("patroni_ca")
    if ca:
        try:
            return ssl.create_default_context(cafile=os.path.expanduser(str(ca)))
        except OSError:
            pass
    return None


class Cluster:
    def __init__(self, conf: Dict[str, Any]) -> None:
        self.conf = conf
        self.members: Dict[str, Dict[str, str]] = conf["members"]
        self.context = api_context(conf)
        self.etcd_context = etcd_context(conf)

    def state(self) -> Optional[Dict[str, Any]]:
        for url in [m["api"] for m in self.members.values()]:
            try:
                with urllib.request.urlopen(url + "/cluster", timeout=2, context=self.context) as resp:
                    return json.loads(resp.read())
            except (OSError, ValueError):
                continue
        return None

    def healthy(self) -> bool:
        state = self.state()
        if not state:
            return False
        return ops.healthy(state, list(self.members)) and not ops.problems(state, self.conf.get("max_lag", 1048576))

    def wait_healthy(self, timeout: float) -> Optional[float]:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.healthy():
                return time.monotonic()
            time.sleep(0.5)
        return None

    def roles(self) -> Dict[str, str]:
        state = self.state() or {}
        leader = ops.leader_of(state)
        if leader is None:
            raise SystemExit("chaos: the cluster has no leader: %s" % json.dumps(state))
        replicas = [
            m for m in ops.members(state) if m["name"] != leader["name"] and m.get("state") in ops.HEALTHY_STATES
        ]
        offline = set(self.conf.get("offline", []))
        # in synchronous mode Patroni promotes only the synchronous standby
        replicas.sort(
            key=lambda m: (m.get("role") != "sync_standby", m["name"] in offline, ops.lag_of(m) or 0, m["name"])
        )
        names = {"leader": leader["name"], "replica": replicas[0]["name"] if replicas else ""}
        out = dict(names)
        for role, name in names.items():
            for key, value in self.members.get(name, {}).items():
                out["%s_%s" % (role, key)] = value
        peers = [m["ip"] for n, m in self.members.items() if n != leader["name"]]
        out["peers_of_leader"] = " ".join(peers + list(self.conf.get("etcd_ips", [])))
        containers = dict(self.conf.get("containers") or {})
        containers.update({m["ip"]: m.get("container", "") for m in self.members.values()})
        etcd_ip = etcd_leader(
            list(self.conf.get("etcd_ips", [])) + [m["ip"] for m in self.members.values()], context=self.etcd_context
        )
        out["etcd_leader_ip"] = etcd_ip or ""
        out["etcd_leader_container"] = containers.get(etcd_ip, "") if etcd_ip else ""
        return out


def post_json(url: str, body: Dict[str, Any], timeout: float = 2, context: Optional[ssl.SSLContext] = None) -> Any:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
        return json.loads(resp.read())


def etcd_leader(ips: List[str], context: Optional[ssl.SSLContext] = None, port: int = 2379) -> Optional[str]:
    """The client address of the etcd member that leads, asked of the
    members at ``ips`` (``/v3/maintenance/status`` and
    ``/v3/cluster/member/list`` need no credentials): over https first,
    verified with ``context`` (:func:`etcd_context`; None: the system's
    CAs), then over plain http (etcd without ``etcd_tls_enabled``)."""
    for ip in ips:
        found = None
        for scheme in ("https", "http"):
            base = "%s://%s:%d" % (scheme, ip, port)
            ctx = context if scheme == "https" else None
            try:
                leader = post_json(base + "/v3/maintenance/status", {}, context=ctx)["leader"]
                found = (leader, post_json(base + "/v3/cluster/member/list", {}, context=ctx)["members"])
                break
            except (OSError, ValueError, KeyError, http.client.HTTPException):
                continue
        if found is None:
            continue
        leader, members = found
        for member in members:
            if member.get("ID") == leader and member.get("clientURLs"):
                return urllib.parse.urlsplit(member["clientURLs"][0]).hostname
    return None


class DcsWatch(threading.Thread):
    """Polls every member's ``GET /patroni``: when it last reached the DCS
    (``dcs_last_seen``) and whether it runs in failsafe mode."""

    def __init__(self, apis: Dict[str, str], interval: float = 0.5, context: Optional[ssl.SSLContext] = None) -> None:
        super().__init__(name="dcs-watch", daemon=True)
        self.apis = apis
        self.interval = interval
        self.context = context
        self.stopping = threading.Event()
        self.samples: Dict[str, List[Any]] = {name: [] for name in apis}
        self.failsafe: set = set()

    def run(self) -> None:
        while not self.stopping.is_set():
            for name, api in self.apis.items():
                try:
                    with urllib.request.urlopen(api + "/patroni", timeout=1, context=self.context) as resp:
                        status = json.loads(resp.read())
                    seen = status.get("dcs_last_seen")
                    if status.get("failsafe_mode_is_active"):
                        self.failsafe.add(name)
                except Exception:  # noqa: BLE001 (a node dying mid-answer: any error is "no answer")
                    seen = None
                self.samples[name].append((time.monotonic(), seen if isinstance(seen, int) else None))
            self.stopping.wait(self.interval)

    def stop(self) -> Dict[str, Any]:
        self.stopping.set()
        self.join(timeout=10)
        gaps = {n: measure.dcs_gap(s) for n, s in self.samples.items()}
        known = [g for g in gaps.values() if g is not None]
        return {
            "dcs_gap_s": max(known) if known else None,
            "dcs_gap_by_member_s": gaps,
            "failsafe_members": len(self.failsafe),
        }


class Reachable(threading.Thread):
    """Polls one endpoint every 0.1 s from the fault on (``tcp: ip:port``
    connects, ``http: url`` expects 200; an https URL verified with
    ``context``) and tells when it came back: the time from the fault to
    the first success after its last failure."""

    def __init__(self, spec: Dict[str, str], interval: float = 0.1, context: Optional[ssl.SSLContext] = None) -> None:
        super().__init__(name="watch-" + spec["name"], daemon=True)
        self.label = spec["name"]
        self.spec = spec
        self.interval = interval
        self.context = context
        self.stopping = threading.Event()
        self.samples: List[Any] = []

    def ok(self) -> bool:
        try:
            if "tcp" in self.spec:
                host, port = self.spec["tcp"].rsplit(":", 1)
                with socket.create_connection((host, int(port)), timeout=0.5):
                    return True
            with urllib.request.urlopen(self.spec["http"], timeout=0.5, context=self.context) as resp:
                return resp.status == 200
        except (OSError, ValueError):
            return False

    def run(self) -> None:
        while not self.stopping.is_set():
            self.samples.append((time.monotonic(), self.ok()))
            self.stopping.wait(self.interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)

    def back_after(self, start: float) -> Optional[float]:
        return measure.back_after(self.samples, start)


def dcs_discovery_s(cluster: "Cluster") -> float:
    """How long until every Patroni has read the etcd member list again:
    10 x ttl (its cache of etcd members), plus two HA loops."""
    for url in [m["api"] for m in cluster.members.values()]:
        try:
            with urllib.request.urlopen(url + "/config", timeout=2, context=cluster.context) as resp:
                config = json.loads(resp.read())
            return 10 * config.get("ttl", 30) + 2 * config.get("loop_wait", 10)
        except (OSError, ValueError):
            continue
    raise SystemExit("chaos: no member answered GET /config")


def sh_quiet(commands: List[str]) -> None:
    """Run ``commands`` after a failure: log their errors, raise none."""
    try:
        sh(commands)
    except SystemExit as exc:
        log("after the failure: %s" % exc)


def sh(commands: List[str]) -> None:
    for cmd in commands:
        log("$ " + cmd)
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(
                "chaos: '%s' failed (%d): %s" % (cmd, proc.returncode, (proc.stdout + proc.stderr).strip()[-3000:])
            )


SCENARIO_KEYS = {
    "setup",
    "inject",
    "hold_s",
    "heal",
    "teardown",
    "wait_for",
    "observe_s",
    "targets",
    "diagnose",
    "wait_dcs_discovery",
    "watch",
    "alerts",
}
TARGETS = {
    "write_outage_s",
    "read_outage_s",
    "lost_rows",
    "split_brain",
    "dcs_gap_s",
    "dcs_gap_s_min",
    "failsafe_members",
    "wrong_role_sessions",
    "leader_changes",
}


def check_config(conf: Dict[str, Any], chosen: Optional[List[str]] = None) -> List[str]:
    """Problems with a configuration (after expansion) and the scenarios
    asked for, each saying what to fix; [] when it can run. Checked before
    any load starts or any command runs."""
    out = ["%s (in %s)" % (p, "the configuration") for p in loadgen.check_clients(conf.get("clients"))]
    out += alerts.check_conf(conf.get("alerts"))
    scenarios = conf.get("scenarios")
    if not isinstance(scenarios, dict) or not scenarios:
        return out + ["scenarios: %r is not a mapping of scenario names to their steps" % (scenarios,)]
    for name in chosen or []:
        if name not in scenarios:
            out.append("--scenario %s: no such scenario: use one of %s" % (name, ", ".join(scenarios)))
    for name, sc in scenarios.items():
        if not isinstance(sc, dict):
            out.append("scenarios.%s: %r is not a mapping" % (name, sc))
            continue
        for key in sorted(set(sc) - SCENARIO_KEYS):
            out.append("scenarios.%s.%s: unknown key: use %s" % (name, key, ", ".join(sorted(SCENARIO_KEYS))))
        clients = conf.get("clients")
        if not isinstance(clients, dict):
            clients = {}
        own = {"%s[%s]" % (t, c) for t in CLIENT_TARGETS for c in clients}
        for key in sorted(
            set(sc.get("targets") or {})
            - TARGETS
            - own
            - {w.get("name") for w in sc.get("watch") or [] if isinstance(w, dict)}
        ):
            out.append(
                "scenarios.%s.targets.%s: not a measurement: use %s, a watch name, or "
                "<target>[<client>] for one client's own bound" % (name, key, ", ".join(sorted(TARGETS)))
            )
        if "alerts" in sc:
            out += alerts.check_spec(sc["alerts"], "scenarios.%s.alerts" % name)
        for i, watch in enumerate(sc.get("watch") or []):
            if (
                not isinstance(watch, dict)
                or not isinstance(watch.get("name"), str)
                or not watch["name"].endswith("_s")
                or len(set(watch) & {"tcp", "http"}) != 1
                or set(watch) - {"name", "tcp", "http"}
            ):
                out.append(
                    "scenarios.%s.watch[%d]: %r: write {name: <something>_s, tcp: 'ip:port'} or "
                    "{name: <something>_s, http: 'http://ip:port/path'}" % (name, i, watch)
                )
    return out


def ca_problems(conf: Dict[str, Any]) -> List[str]:
    """A ``patroni_ca`` that cannot be read while a member's API is https;
    [] otherwise. Apart from ``check_config``: it depends on this machine."""
    try:
        api_context(conf)
    except OSError as exc:
        return [
            "patroni_ca: %s: %s: the deployment's CA on this machine (postgres_pki_dir/ca.crt) verifies the "
            "members' https APIs; a cluster with patroni_ssl_enabled: false has http:// ones"
            % (conf.get("patroni_ca"), exc)
        ]
    return []


def missed(result: Dict[str, Any], targets: Dict[str, Any], slack: float = 1.0) -> List[str]:
    """The targets a run missed. ``name: bound`` is an upper bound; time
    bounds (``*_s``) are relaxed by ``slack`` (--tolerance), counts (rows
    lost, split brain) never are. ``name_min: bound`` is a lower bound,
    never relaxed: it proves that the fault took effect (etcd really was
    unreachable for so long)."""
    out = []
    per_client = result.get("clients") or {}
    for key, bound in targets.items():
        if key.endswith("_min"):
            value = result.get(key[:-4])
            if value is None or value < bound:
                out.append("%s %s < %g" % (key[:-4], value, bound))
            continue
        if key.endswith("_s"):
            bound = bound * slack
        if "[" in key:
            continue  # a client's own bound (below, with its target)
        # a client target holds for every client it applies to, each named;
        # "write_outage_s[write-pgbouncer]: 8" gives one client its own bound
        applies = {
            n: c[CLIENT_TARGETS[key]]
            for n, c in per_client.items()
            if key in CLIENT_TARGETS and CLIENT_TARGETS[key] in c
        }
        if applies:
            for client, value in applies.items():
                own = targets.get("%s[%s]" % (key, client))
                limit = bound if own is None else (own * slack if key.endswith("_s") else own)
                if value is None or value > limit:
                    out.append("%s[%s] %s > %g" % (key, client, value, limit))
            continue
        value = result.get(key)
        if value is None or value > bound:
            out.append("%s %s > %g" % (key, value, bound))
    return out


# Targets that apply to each client of a kind (result["clients"][name][field]).
CLIENT_TARGETS = {
    "write_outage_s": "write_outage_s",
    "read_outage_s": "read_outage_s",
    "wrong_role_sessions": "wrong_role_sessions",
}


def time_only(failed: List[str]) -> bool:
    """Whether every missed target of a run (``missed`` output) is a time
    upper bound (``*_s ... > ...``): rows lost, split brain and the lower
    bounds that prove a fault took effect never are."""
    return bool(failed) and all(f.split(" ", 1)[0].split("[", 1)[0].endswith("_s") and " > " in f for f in failed)


def alert_checking(conf: Dict[str, Any], sc: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The scenario's normalized ``alerts`` when the configuration's
    ``alerts.enabled`` is on and the scenario declares some; else None."""
    aconf = conf.get("alerts") or {}
    if not aconf.get("enabled") or sc.get("alerts") is None:
        return None
    return alerts.normalize(sc["alerts"], aconf.get("allow") or [])


def _output_of(cmd: str) -> str:
    try:
        proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        raise SystemExit("chaos: '%s' did not answer within 30 s" % cmd) from None
    if proc.returncode != 0:
        raise SystemExit("chaos: '%s' failed (%d): %s" % (cmd, proc.returncode, (proc.stdout + proc.stderr)[-1000:]))
    return proc.stdout


def read_alert_records(conf: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The webhook recorder's notifications, printed by ``alerts.record``."""
    return alerts.read_lines(_output_of(conf["alerts"]["record"]))


def read_active_alerts(conf: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The alerts Alertmanager holds, printed by ``alerts.active``."""
    cmd = conf["alerts"]["active"]
    try:
        return alerts.read_active(_output_of(cmd))
    except ValueError as exc:
        raise SystemExit("chaos: '%s': %s" % (cmd, exc)) from None


def wait_quiet(conf: Dict[str, Any], spec: Dict[str, Any], name: str) -> None:
    """Before a fault: wait until no alert is firing (but the allowed ones),
    at most ``alerts.quiet_timeout_s``; an alert still firing would hide or
    fake this fault's. With ``alerts.active``, Alertmanager says what still
    fires (``alerts.reconcile``): an alert the recorder last received
    firing but Alertmanager no longer holds (it resolved while inhibited,
    and no resolved notification was sent) is logged, not waited for.
    Without it, the recorder's last notification of each alert."""
    timeout = conf["alerts"].get("quiet_timeout_s", 300)
    poll = conf["alerts"].get("poll_s", 5)
    start = time.monotonic()
    told = set()
    while True:
        if conf["alerts"].get("active"):
            left, stale = alerts.reconcile(read_alert_records(conf), read_active_alerts(conf), allow=spec["allow"])
            for e in stale:
                key = json.dumps(e["labels"], sort_keys=True)
                if key not in told:
                    told.add(key)
                    log(
                        "%s: alerts: %s %s is firing at the recorder, but Alertmanager no longer holds it "
                        "(resolved; no resolved notification may ever come): not waited for" % (name, e["name"], key)
                    )
        else:
            left = alerts.firing(read_alert_records(conf), allow=spec["allow"])
        if not left:
            return
        if time.monotonic() - start > timeout:
            raise SystemExit(
                "chaos: %s: alerts still firing before the fault after %d s: %s"
                % (name, timeout, ", ".join(sorted({e["name"] for e in left})))
            )
        time.sleep(poll)


def check_alerts(conf: Dict[str, Any], spec: Dict[str, Any], t_fault: float, t_heal: float) -> Dict[str, Any]:
    """After a run: wait until the scenario's alerts had their time
    (``alerts.deadline``), then evaluate what the recorder received."""
    stop = alerts.deadline(spec, t_fault, t_heal)
    if stop > time.time():
        log("alerts: waiting %d s for the notifications" % (stop - time.time()))
        time.sleep(stop - time.time())
    return alerts.evaluate(read_alert_records(conf), spec, t_fault, t_heal)


def run_once(conf: Dict[str, Any], name: str, sc: Dict[str, Any]) -> Dict[str, Any]:
    cluster = Cluster(conf)
    if cluster.wait_healthy(conf.get("healthy_timeout_s", 180)) is None:
        raise SystemExit(
            "chaos: %s: the cluster is not healthy before the fault: %s" % (name, json.dumps(cluster.state()))
        )
    names = cluster.roles()
    sc = expand(sc, names)
    alert_spec = alert_checking(conf, sc)
    if alert_spec is not None:
        wait_quiet(conf, alert_spec, name)
    probes = (
        {n: string.Template(conf["probe_dsn"]).safe_substitute(ip=m["ip"]) for n, m in conf["members"].items()}
        if conf.get("probe_dsn")
        else None
    )
    gen = loadgen.LoadGen(conf["clients"], probes, conf.get("interval", 0.05)).start()
    watch = DcsWatch({n: m["api"] for n, m in conf["members"].items()}, context=cluster.context)
    watch.start()
    watches = [Reachable(w, context=cluster.context) for w in sc.get("watch") or []]
    time.sleep(conf.get("warmup_s", 5))
    log(
        "%s: leader %s, replica %s, etcd leader %s"
        % (name, names["leader"], names["replica"], names["etcd_leader_ip"] or "unknown")
    )
    t_fault = time.monotonic()
    t_fault_wall = time.time()  # the recorder's notifications carry wall-clock times
    load_at_fault = round(os.getloadavg()[0], 2)  # this machine's: the nodes share its CPUs
    deadline = t_fault + conf.get("recover_timeout_s", 120)
    resumed = t_fault + sc.get("hold_s", 0)

    def recovered() -> bool:
        if not all(any(t > resumed for t, _ in w.acks[-20:]) for w in gen.writers()):
            return False  # writes are not acknowledged again yet (by every writer)
        if sc.get("wait_for") == "new_leader":
            leader = ops.leader_of(cluster.state() or {})
            if not leader:
                return False
            return leader["name"] != names["leader"]
        return True

    for w in watches:
        w.start()
    try:
        sh(sc.get("inject", []))
        time.sleep(sc.get("hold_s", 0))
        while time.monotonic() < deadline and not recovered():
            time.sleep(0.2)
    except BaseException:  # a failed inject, an interrupt: undo what took effect
        sh_quiet(sc.get("heal", []))
        raise
    t_heal = time.monotonic()
    t_heal_wall = time.time()
    sh(sc.get("heal", []))
    t_healthy = cluster.wait_healthy(conf.get("healthy_timeout_s", 180))
    # observe at least observe_s after the fault: a crash may show only at
    # Patroni's next loop
    time.sleep(
        max(conf.get("cooldown_s", 3), t_fault + sc.get("observe_s", conf.get("observe_s", 0)) - time.monotonic())
    )
    gen.stop()
    dcs = watch.stop()
    for w in watches:
        w.stop()
    rec = gen.record()
    end = time.monotonic()
    present = None
    for _ in range(30):  # the primary service may still refuse for a moment
        try:
            present = loadgen.present_ids(gen.write_dsn, rec["first_id"], rec["last_id"])
            break
        except loadgen.psycopg.Error as exc:
            log("%s: reading the rows back: %s" % (name, exc))
            time.sleep(1)
    if present is None:
        raise SystemExit("chaos: %s: could not read the rows back through %s" % (name, gen.write_dsn))
    after = cluster.roles() if t_healthy else {}
    clients = {n: measure.client_result(c, t_fault, end) for n, c in rec["clients"].items()}
    writes = [c["write_outage_s"] for c in clients.values() if "write_outage_s" in c]
    reads = [c["read_outage_s"] for c in clients.values() if "read_outage_s" in c]
    result = {
        "leader_before": names["leader"],
        "leader_after": after.get("leader"),
        "leader_changes": int(bool(after.get("leader")) and after.get("leader") != names["leader"]),
        # the worst client of each kind; every client's figures are under "clients"
        "write_outage_s": measure.worst(writes),
        "read_outage_s": measure.worst(reads) if reads else None,
        "wrong_role_sessions": sum(c["wrong_role_sessions"] for c in clients.values()),
        "writes_acked": len(rec["acked_ids"]),
        "lost_rows": len(measure.lost(rec["acked_ids"], present)),
        "split_brain": measure.split_brain(rec["probe_acks"]) if probes else None,
        "heal_after_s": round(t_heal - t_fault, 1),
        "healthy_after_s": round(t_healthy - t_fault, 1) if t_healthy else None,
        "etcd_leader_before": names["etcd_leader_ip"] or None,
        "load_at_fault": load_at_fault,
        "clients": clients,
    }
    result.update({w.label: w.back_after(t_fault) for w in watches})
    result.update(dcs)
    targets = dict(conf.get("targets") or {}, **(sc.get("targets") or {}))
    result["failed_targets"] = missed(result, targets, conf.get("tolerance", 1.0))
    if t_healthy is None:
        # a member that never rejoins (a replica stuck on an old timeline,
        # a node that does not come back) is a failure whatever the outage
        result["failed_targets"].append(
            "not healthy %s s after the heal: %s"
            % (
                conf.get("healthy_timeout_s", 180),
                "; ".join(ops.problems(cluster.state() or {}, conf.get("max_lag", 1048576)))
                or "no leader, or a member missing",
            )
        )
    if alert_spec is not None:
        result["alerts"] = check_alerts(conf, alert_spec, t_fault_wall, t_heal_wall)
        result["failed_targets"] += result["alerts"]["failed"]
        log("%s: alerts: %s" % (name, "; ".join(alerts.summary(result["alerts"])) or "none"))
    log("%s: %s" % (name, json.dumps(result)))
    if result["failed_targets"]:
        result["diagnosis"] = diagnose(expand(sc.get("diagnose", conf.get("diagnose", [])), names))
    return result


def failed_run(reason: str) -> Dict[str, Any]:
    """The result of a run that could not be measured (a fault command
    failed, the cluster never became healthy): every figure unknown, and
    the reason as its missed target, so the scenario fails and the next one
    still runs."""
    keys = (
        "leader_before",
        "leader_after",
        "write_outage_s",
        "read_outage_s",
        "healthy_after_s",
        "split_brain",
        "dcs_gap_s",
    )
    out: Dict[str, Any] = {k: None for k in keys}
    out.update(
        {
            "leader_changes": 0,
            "wrong_role_sessions": 0,
            "lost_rows": 0,
            "failsafe_members": 0,
            "clients": {},
            "alerts": None,
            "failed_targets": ["not measured: %s" % reason],
        }
    )
    return out


def override_targets(conf: Dict[str, Any], overrides: List[str]) -> List[str]:
    """Apply ``--target scenario.name=value`` to ``conf``; the problems."""
    problems = []
    for item in overrides:
        key, _, value = item.partition("=")
        scenario, _, name = key.partition(".")
        sc = (conf.get("scenarios") or {}).get(scenario)
        if sc is None or not name or not value:
            problems.append("--target %s: use SCENARIO.NAME=VALUE with one of the scenarios" % item)
            continue
        try:
            number = float(value)
        except ValueError:
            problems.append("--target %s: %r is not a number" % (item, value))
            continue
        sc["targets"] = dict(sc.get("targets") or {}, **{name: number})
    return problems


def settle(max_s: float, below: float) -> float:
    """Wait until this machine's 1-minute load average is below ``below``,
    for at most ``max_s`` seconds; returns the load average then."""
    started = time.monotonic()
    load = os.getloadavg()[0]
    while load >= below and time.monotonic() - started < max_s:
        time.sleep(2)
        load = os.getloadavg()[0]
    log(
        "load average %.2f after %.0f s of settling (wanted below %.2f, for at most %.0f s)"
        % (load, time.monotonic() - started, below, max_s)
    )
    return load


def guarded_run(conf: Dict[str, Any], name: str, sc: Dict[str, Any]) -> Dict[str, Any]:
    """``run_once``, turning a run that stopped half-way into a failed run."""
    try:
        return run_once(conf, name, sc)
    except SystemExit as exc:
        log("%s: the run stopped: %s" % (name, exc))
        return failed_run(str(exc)[:500])


def diagnose(commands: List[str], timeout: float = 30, keep: int = 4000) -> List[Dict[str, str]]:
    """Run a missed run's ``diagnose`` commands (e.g. the tail of the
    leader's Patroni log) and log what they print; never raises. Each
    output is cut to its last ``keep`` characters."""
    out = []
    for cmd in commands:
        try:
            proc = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout, check=False)
            text = (proc.stdout + proc.stderr)[-keep:]
        except subprocess.TimeoutExpired:
            text = "(no answer within %g s)" % timeout
        log("diagnose $ %s\n%s" % (cmd, text.rstrip()))
        out.append({"command": cmd, "output": text})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="Run fault scenarios against a cluster and measure them.")
    parser.add_argument("config")
    parser.add_argument("--scenario", action="append", help="run only these (default: all)")
    parser.add_argument("--skip", action="append", default=[], help="run all the others (or of --scenario) but these")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--var", action="append", default=[], help="name=value for the config's vars")
    parser.add_argument("--label", default="", help="label of this series in the output (e.g. fast/async)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=1.0,
        help="multiply the time targets by this (e.g. 1.5 on a busy machine); counts stay exact",
    )
    parser.add_argument(
        "--retry-time-misses",
        type=int,
        default=0,
        metavar="N",
        help="measure a run again (at most N times) when it missed time targets only; "
        "the missed runs are kept under retried_runs",
    )
    parser.add_argument(
        "--check-alerts",
        action="store_true",
        help="check each scenario's alerts against the webhook recorder (alerts.enabled)",
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=0,
        metavar="S",
        help="before each scenario, wait at most S seconds for this machine's 1-minute load average "
        "to fall below --settle-load (nodes just deployed, or the last scenario's playbooks, kept it busy)",
    )
    parser.add_argument("--settle-load", type=float, default=2.0, metavar="L")
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="SCENARIO.NAME=VALUE",
        help="replace one target of a scenario (e.g. pg-crash.write_outage_s=7.5); --tolerance still applies",
    )
    parser.add_argument("--output", help="write (or extend) this JSON file")
    args = parser.parse_args()

    with open(args.config, encoding="utf-8") as handle:
        raw = yaml.safe_load(handle)
    # bindir: where this Python's scripts live (ansible-playbook of the same venv)
    names = {"bindir": os.path.dirname(sys.executable)}
    names.update({k: str(v) for k, v in (raw.get("vars") or {}).items()})
    names.update(v.split("=", 1) for v in args.var)
    names = {k: expand(v, names) for k, v in names.items()}  # vars may use other vars
    conf = expand({k: v for k, v in raw.items() if k != "vars"}, names)
    conf["tolerance"] = args.tolerance
    if args.check_alerts:
        conf["alerts"] = dict(conf.get("alerts") or {}, enabled=True)
    problems = check_config(conf, args.scenario) + [
        "--skip %s: no such scenario: use one of %s" % (name, ", ".join(conf.get("scenarios") or {}))
        for name in args.skip
        if name not in (conf.get("scenarios") or {})
    ]
    problems += ca_problems(conf)
    problems += override_targets(conf, args.target)
    if problems:
        parser.error("%s cannot run:\n  " % args.config + "\n  ".join(problems))
    chosen = [name for name in args.scenario or list(conf["scenarios"]) if name not in args.skip]
    results: Dict[str, Any] = {}
    for name in chosen:
        sc = conf["scenarios"][name]
        if args.settle_s > 0:
            settle(args.settle_s, args.settle_load)
        try:
            sh(sc.get("setup", []))
            if sc.get("wait_dcs_discovery"):
                wait = dcs_discovery_s(Cluster(conf))
                log("%s: waiting %d s until every Patroni has read the etcd member list again" % (name, wait))
                time.sleep(wait)
            runs: List[Dict[str, Any]] = []
            retried: List[Dict[str, Any]] = []
            for _ in range(args.runs):
                result = guarded_run(conf, name, sc)
                while len(retried) < args.retry_time_misses and time_only(result["failed_targets"]):
                    retried.append(result)
                    log(
                        "%s: only time targets missed (%s): measuring once more (retry %d of %d)"
                        % (name, "; ".join(result["failed_targets"]), len(retried), args.retry_time_misses)
                    )
                    result = guarded_run(conf, name, sc)
                runs.append(result)
        finally:
            sh(sc.get("teardown", []))
        results[name] = {
            "runs": runs,
            "write_outage_s": measure.summary([r["write_outage_s"] for r in runs]),
            "read_outage_s": measure.summary([r["read_outage_s"] for r in runs]),
            # per client: the worst outage of its kind over the runs
            "clients_outage_s": {
                c: measure.summary(
                    [
                        r["clients"].get(c, {}).get("write_outage_s", r["clients"].get(c, {}).get("read_outage_s"))
                        for r in runs
                    ]
                )
                for c in sorted({c for r in runs for c in r["clients"]})
            },
            "wrong_role_sessions_max": max(r["wrong_role_sessions"] for r in runs),
            "healthy_after_s": measure.summary([r["healthy_after_s"] for r in runs]),
            "lost_rows_max": max(r["lost_rows"] for r in runs),
            "split_brain_max": max((r["split_brain"] or 0) for r in runs),
            "dcs_gap_s": measure.summary([r["dcs_gap_s"] for r in runs]),
            "failsafe_members_max": max(r["failsafe_members"] for r in runs),
            "load_at_fault_max": max(r.get("load_at_fault") or 0.0 for r in runs),
            "failed_targets": sorted({f for r in runs for f in r["failed_targets"]}),
            "targets": conf["scenarios"][name].get("targets", {}),
            "alerts": [r.get("alerts") for r in runs] if alert_checking(conf, conf["scenarios"][name]) else None,
            "retried_runs": retried,
        }
    failed = {n: r["failed_targets"] for n, r in results.items() if r["failed_targets"]}
    if args.output:
        doc: Dict[str, Any] = {}
        if os.path.exists(args.output):
            with open(args.output, encoding="utf-8") as handle:
                doc = json.load(handle)
        now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        for res in results.values():
            res["date"] = now
        # a run of some scenarios keeps the series' other scenarios
        series = doc.setdefault("series", {}).setdefault(args.label or "default", {})
        series.update({"date": now, "runs_per_scenario": args.runs})
        series.setdefault("scenarios", {}).update(results)
        with open(args.output, "w", encoding="utf-8") as handle:
            json.dump(doc, handle, indent=2)
            handle.write("\n")
    for name, res in results.items():
        log(
            "%-16s write outage %s s, read outage %s s, lost %s, split brain %s, wrong role %s, "
            "healthy after %s s, DCS gap %s s, failsafe %s, load %s; per client (max s): %s%s%s"
            % (
                name,
                res["write_outage_s"]["max"],
                res["read_outage_s"]["max"],
                res["lost_rows_max"],
                res["split_brain_max"],
                res["wrong_role_sessions_max"],
                res["healthy_after_s"]["max"],
                res["dcs_gap_s"]["max"],
                res["failsafe_members_max"],
                res["load_at_fault_max"],
                ", ".join("%s %s" % (c, v["max"]) for c, v in res["clients_outage_s"].items()),
                "  (measured again after: %s)" % "; ".join(f for r in res["retried_runs"] for f in r["failed_targets"])
                if res["retried_runs"]
                else "",
                "  FAILED: " + "; ".join(res["failed_targets"]) if res["failed_targets"] else "",
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
