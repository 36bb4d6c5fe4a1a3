# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The cluster's own etcd user and pg-vip's configuration of one member.

Pure Python; nothing here imports Ansible. Each function reads the cluster
plan (:func:`plan.cluster_plan`, keys ``etcd`` and ``vip``) plus a
*settings* mapping (:mod:`settings`)::

    etcd_user(cplan, settings)                       -> {...} or None
    vip_config(cplan, iplan, etcd3_block, settings)  -> {...} or None

Called by :func:`render.instance_configs`; :func:`etcd_password` is also
read by :func:`patroni_conf.patroni_config` and :func:`plan.etcd_users`.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from ansible_collections.pigpen.pgsql.plugins.module_utils.settings import _effective

__all__ = ["etcd_password"]


def etcd_password(value: Any, cluster: str) -> Any:
    """The password of a cluster's etcd user: ``pg_etcd_password``, or the
    cluster name when it is the empty string (Pigsty's meaning)."""
    return cluster if value == "" else value


def etcd_user(cplan: Mapping[str, Any], settings: Optional[Mapping[str, Any]] = None) -> Optional[Dict[str, str]]:
    """The cluster's own etcd user ({name, password, prefix}), which the
    etcd and patroni roles create; None when etcd runs without
    authentication or the inventory names an etcd user of its own
    (``etcd_username``: managed elsewhere)."""
    s = _effective(settings)
    etcd = cplan["etcd"]
    if not etcd.get("auth") or s["etcd_username"] is not None:
        return None
    return {
        "name": etcd["username"],
        "password": etcd_password(s["pg_etcd_password"], etcd["username"]),
        "prefix": etcd["prefix"],
    }


def hold_ms(patroni: Mapping[str, Any]) -> int:
    """pg-vip's ``hold_ms`` for Patroni's timing: half of ``ttl -
    loop_wait``, in milliseconds (0 when that is not positive)."""
    return max(0, int(patroni["ttl"]) - int(patroni["loop_wait"])) * 500


def vip_config(
    cplan: Mapping[str, Any],
    iplan: Mapping[str, Any],
    etcd: Mapping[str, Any],
    settings: Optional[Mapping[str, Any]] = None,
) -> Optional[Dict[str, Any]]:
    """The configuration of pg-vip (roles/vip) on one member; None when the
    cluster has no VIP. ``etcd`` is the ``etcd3`` block of the member's
    Patroni configuration (same endpoints and user). Keys as
    ``roles/vip/files/pg_vip.py`` reads them."""
    s = _effective(settings)
    vip = cplan["vip"]
    if not vip["enabled"]:
        return None
    out: Dict[str, Any] = {
        "address": vip["ip"],
        "prefix": vip["prefix"],
        "interface": vip["interface"],
        "key": cplan["etcd"]["leader_key"],
        "instance": iplan["identity"]["instance"],
        "endpoints": ["%s://%s" % (etcd["protocol"], h) for h in etcd["hosts"]],
        # verifies etcd's server certificate over https (etcd_tls_enabled):
        # the CA Patroni's etcd3 block names; empty over plain HTTP
        "etcd_cafile": etcd.get("cacert") or "",
        "username": etcd.get("username", ""),
        "password": etcd.get("password", ""),
        "patroni_url": "%s://127.0.0.1:%d" % ("https" if s["patroni_ssl_enabled"] else "http", s["patroni_port"]),
        # also over HTTP: while the REST API moves to HTTPS, pg-vip asks the
        # other scheme too, verified against the node's CA (installed on
        # every member by the postgres role)
        "patroni_cafile": s["pg_ssl_ca"],
        "interval_ms": s["vip_interval"],
        # with neither etcd nor the local Patroni answering, the address
        # stays this long after this node was last known to lead: half the
        # time in which its leader key cannot have expired (Patroni renews
        # it every loop_wait, and it lives ttl)
        "hold_ms": hold_ms(cplan["ha"]["patroni"]),
    }
    if cplan["identity"].get("standby"):
        # with etcd down, a standby cluster's leader is asked for its role
        # (GET /patroni), never /primary
        out["patroni_check"] = "standby_leader"
    return out
