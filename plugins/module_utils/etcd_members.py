# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""etcd cluster membership: join a running cluster, promote, move, leave.

A member with an empty data directory either bootstraps a new cluster
(nobody else answers) or joins the running one. Joining follows etcd's safe
path: the member is added as a *learner* (it does not count towards the
quorum, so adding it never stops the cluster), started, and promoted to a
voting member once it has caught up with the leader. Leaving goes through
a member that stays. Moving a started member's peer URL (from ``http://``
to ``https://``) goes through any member that answers, itself included.
Every step first reads the member list and does only
what is missing, so a run that failed half way can simply be repeated.

Talking to etcd goes through ``post(path, body, headers) -> dict`` callables
(one per endpoint, see :func:`etcd_auth.make_post`) that raise
:class:`EtcdError`; a reply without HTTP status means the member did not
answer.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.pigpen.pgsql.plugins.module_utils.etcd_auth import (
    EtcdError,
    Post,
    Session,
    not_enabled,
)

Endpoint = Tuple[str, Post]


def members_of(reply: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """A /v3/cluster/member/list (or add/remove) reply's members. A member
    that was added but never started has no name yet."""
    return [
        {
            "id": str(m.get("ID", "")),
            "name": m.get("name", ""),
            "peer_urls": list(m.get("peerURLs") or []),
            "client_urls": list(m.get("clientURLs") or []),
            "learner": bool(m.get("isLearner", False)),
        }
        for m in reply.get("members") or []
    ]


def find(members: Sequence[Mapping[str, Any]], name: str, peer_url: str) -> Optional[Mapping[str, Any]]:
    """The member with this peer URL, else the one with this name.

    Raises :class:`EtcdError` when the name belongs to a member with other
    peer URLs (another host already uses it)."""
    for member in members:
        if peer_url in member["peer_urls"]:
            if member["name"] not in ("", name):
                raise EtcdError(
                    "peer URL %s belongs to member %s, not %s: the member was "
                    "renamed (etcd_seq changed?). Fix: give it back its etcd_seq, "
                    "or remove it first with etcd-rm.yml and add it again." % (peer_url, member["name"], name)
                )
            return member
    for member in members:
        if member["name"] == name:
            raise EtcdError(
                "member %s already exists with peer URLs %s, not %s: two hosts "
                "share etcd_seq, or the member moved. Fix: give each host its own "
                "etcd_seq, or remove the old member with etcd-rm.yml first."
                % (name, ",".join(member["peer_urls"]), peer_url)
            )
    return None


def initial_cluster(members: Sequence[Mapping[str, Any]], name: str, peer_url: str) -> str:
    """ETCD_INITIAL_CLUSTER for a member joining ``members``: every
    member's ``name=peer_url``, this one (which has no name yet) under
    ``name``, in the cluster's order."""
    parts = []
    for member in members:
        mine = peer_url in member["peer_urls"]
        for url in member["peer_urls"]:
            parts.append("%s=%s" % (name if mine else member["name"], url))
    if not any(peer_url in m["peer_urls"] for m in members):
        parts.append("%s=%s" % (name, peer_url))
    return ",".join(parts)


def first_answer(endpoints: Sequence[Endpoint]) -> Tuple[Optional[str], Optional[Post], List[str]]:
    """The first endpoint that lists the members, and why those before it
    failed: ``(endpoint, post, failures)``; ``(None, None, failures)`` when
    none answers."""
    failures: List[str] = []
    for endpoint, post in endpoints:
        try:
            post("/v3/cluster/member/list", {}, {})
            return endpoint, post, failures
        except EtcdError as exc:
            failures.append("%s: %s" % (endpoint, exc))
    return None, None, failures


def admin_session(post: Post, root_password: Optional[str]) -> Session:
    """A session that authenticates as root when authentication is on."""
    session = Session(post)
    if root_password:
        try:
            session.token = session.authenticate("root", root_password)
        except EtcdError as exc:
            if not not_enabled(exc):
                raise
    return session


def _member_list(session: Session) -> List[Dict[str, Any]]:
    return members_of(session.call("/v3/cluster/member/list"))


def _members_or_fail(
    endpoints: Sequence[Endpoint], root_password: Optional[str], unanswered: str
) -> Tuple[Optional[str], Session, List[Dict[str, Any]]]:
    """The first endpoint that answers, an admin session through it and
    the member list; ``unanswered`` (with ``%s`` for the failures) is
    raised when none answers."""
    endpoint, post, failures = first_answer(endpoints)
    if post is None:
        raise EtcdError(unanswered % ("; ".join(failures) or "none given",))
    session = admin_session(post, root_password)
    return endpoint, session, _member_list(session)


def ensure_member(
    endpoints: Sequence[Endpoint],
    name: str,
    peer_url: str,
    root_password: Optional[str],
    learner: bool = True,
    check_mode: bool = False,
) -> Dict[str, Any]:
    """Make ``name`` (``peer_url``), a member with an empty data
    directory, a member of the cluster that one of ``endpoints`` (the other
    members' client URLs) answers for.

    Returns ``{"changed", "cluster_found", "endpoint", "initial_cluster",
    "initial_cluster_state", "members", "learner"}``. Without any answer
    the member bootstraps: ``cluster_found`` false and state ``new`` (the
    caller knows the initial cluster from its inventory)."""
    endpoint, post, failures = first_answer(endpoints)
    result: Dict[str, Any] = {
        "changed": False,
        "cluster_found": endpoint is not None,
        "endpoint": endpoint,
        "unreachable": failures,
        "initial_cluster": None,
        "initial_cluster_state": "new",
        "members": [],
        "learner": False,
    }
    if post is None:
        return result
    session = admin_session(post, root_password)
    members = _member_list(session)
    mine = find(members, name, peer_url)
    if mine is not None and mine["name"]:
        raise EtcdError(
            "%s is a started member of the cluster at %s, but its data directory "
            "here is empty (lost or wiped), so it cannot start again under its old "
            "identity. Fix: remove it with etcd-rm.yml -l <this host>, then add it "
            "again with etcd.yml -l <this host>." % (name, endpoint)
        )
    if mine is None:
        others = [m for m in members if not m["name"]]
        if others:
            raise EtcdError(
                "member with peer URLs %s was added to the cluster but never "
                "started; etcd admits one such member at a time. Fix: start it "
                "(etcd.yml -l <that host>) or remove it (etcdctl member remove %s)."
                % (",".join(others[0]["peer_urls"]), others[0]["id"])
            )
        result["changed"] = True
        if not check_mode:
            reply = session.call("/v3/cluster/member/add", {"peerURLs": [peer_url], "isLearner": learner})
            members = members_of(reply) or _member_list(session)
        else:
            members = members + [{"id": "", "name": "", "peer_urls": [peer_url], "client_urls": [], "learner": learner}]
        mine = find(members, name, peer_url)
    result.update(
        initial_cluster=initial_cluster(members, name, peer_url),
        initial_cluster_state="existing",
        members=members,
        learner=bool(mine and mine["learner"]),
    )
    return result


def promote(
    endpoints: Sequence[Endpoint], name: str, peer_url: str, root_password: Optional[str], check_mode: bool = False
) -> Dict[str, Any]:
    """Promote the learner ``name`` to a voting member (nothing to do when
    it votes already). etcd refuses while the learner lags behind the
    leader; that refusal is raised with ``retry`` set, for the caller to
    try again."""
    endpoint, post, failures = first_answer(endpoints)
    if post is None:
        raise EtcdError("no member answers to promote %s: %s" % (name, "; ".join(failures)))
    session = admin_session(post, root_password)
    mine = find(_member_list(session), name, peer_url)
    if mine is None:
        raise EtcdError(
            "%s (%s) is not a member of the cluster at %s; run etcd.yml on it first" % (name, peer_url, endpoint)
        )
    if not mine["learner"]:
        return {"changed": False, "endpoint": endpoint}
    if not check_mode:
        try:
            session.call("/v3/cluster/member/promote", {"ID": mine["id"]})
        except EtcdError as exc:
            # ErrLearnerNotReady: the learner has not caught up yet
            if "in sync with leader" in str(exc):
                exc.retry = True  # type: ignore[attr-defined]
            raise
    return {"changed": True, "endpoint": endpoint}


def remove_member(
    endpoints: Sequence[Endpoint], name: str, peer_url: str, root_password: Optional[str], check_mode: bool = False
) -> Dict[str, Any]:
    """Remove ``name`` through one of ``endpoints`` (members that stay).

    Refuses to remove the last member: that is the end of the cluster,
    not a membership change."""
    endpoint, session, members = _members_or_fail(
        endpoints,
        root_password,
        "none of the members that stay answers (%s), so " + name + " cannot be removed "
        "safely. Fix: bring them back first, or remove the whole cluster.",
    )
    mine = find(members, name, peer_url)
    if mine is None:
        return {"changed": False, "endpoint": endpoint, "members": members}
    if len(members) == 1:
        raise EtcdError("%s is the last member of the cluster; remove the whole cluster instead" % name)
    if not check_mode:
        reply = session.call("/v3/cluster/member/remove", {"ID": mine["id"]})
        members = members_of(reply) or _member_list(session)
    else:
        members = [m for m in members if m is not mine]
    return {"changed": True, "endpoint": endpoint, "members": members}


def move_peer(
    endpoints: Sequence[Endpoint], name: str, peer_url: str, root_password: Optional[str], check_mode: bool = False
) -> Dict[str, Any]:
    """Advertise ``peer_url`` as the only peer URL of the started member
    ``name`` (e.g. its move from ``http://`` to ``https://``), through the
    first of ``endpoints`` that answers (which may be the member itself:
    it is running).

    The member is found by name, as its peer URL is what changes. Only the
    cluster's record changes: the caller restarts the member with the
    matching peer listener. Returns ``{"changed", "endpoint", "members",
    "old_peer_urls"}``."""
    endpoint, session, members = _members_or_fail(
        endpoints,
        root_password,
        "no member answers (%s), so the peer URL of " + name + " cannot be changed. Fix: start the "
        "cluster's members (a quorum must answer), or check endpoints and ca_cert.",
    )
    mine = next((m for m in members if name and m["name"] == name), None)
    if mine is None:
        raise EtcdError(
            "%s is not a started member of the cluster at %s (started: %s). Fix: check its "
            "etcd_name, or add it with etcd.yml -l <that host> first."
            % (name, endpoint, ", ".join(m["name"] for m in members if m["name"]) or "none")
        )
    old = list(mine["peer_urls"])
    result: Dict[str, Any] = {"changed": False, "endpoint": endpoint, "members": members, "old_peer_urls": old}
    if old == [peer_url]:
        return result
    for member in members:
        if member is not mine and peer_url in member["peer_urls"]:
            raise EtcdError(
                "peer URL %s belongs to member %s, not %s. Fix: give %s its own address "
                "(etcd_seq and host), or remove the other member with etcd-rm.yml first."
                % (peer_url, member["name"] or member["id"], name, name)
            )
    if not check_mode:
        reply = session.call("/v3/cluster/member/update", {"ID": mine["id"], "peerURLs": [peer_url]})
        members = members_of(reply) or _member_list(session)
    else:
        members = [dict(m, peer_urls=[peer_url]) if m is mine else m for m in members]
    result.update(changed=True, members=members)
    return result
