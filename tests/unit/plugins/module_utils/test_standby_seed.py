# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""pg_standby_seed: a standby cluster's leader seeded by a restore from its
source's pgBackRest repository. Hand-checked refusals and files (Patroni's
replica method and standby_cluster block, pgbackrest.conf of a member and
of the repository host), and a property: the plan seeds from the
repository exactly when the setting asks for it and nothing refuses it."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.module_utils import (
    model as model_mod,
    patroni_conf,
    pgbackrest_conf,
    plan,
    settings as settings_mod,
    upstream,
    validate,
)
from ansible_collections.pigpen.pgsql.plugins.plugin_utils.inventory import snapshot
from inv import build, cluster, pg_test

S3 = {
    "type": "s3",
    "s3_endpoint": "s3.example.com",
    "s3_region": "eu-west-1",
    "s3_bucket": "backups",
    "s3_key": "backup",
    "s3_key_secret": "a-secret-from-the-vault",
    "path": "/pgbackrest",
    "cipher_type": "aes-256-cbc",
    "cipher_pass": "key.${pg_cluster}",
    "retention_full_type": "count",
    "retention_full": 2,
}


def dr(base=20, up="10.10.10.3", **cvars):
    """pg-dr: a standby cluster of pg-test through its VIP (10.10.10.3)."""
    hosts = {
        "10.10.10.%d" % (base + 1): {"pg_seq": 1, "pg_role": "primary", "pg_upstream": up},
        "10.10.10.%d" % (base + 2): {"pg_seq": 2, "pg_role": "replica"},
    }
    if up is None:
        del hosts["10.10.10.%d" % (base + 1)]["pg_upstream"]
    return cluster("pg-dr", hosts, **cvars)


def source(**cvars):
    return pg_test(pg_vip_enabled=True, pg_vip_address="10.10.10.3/24", **cvars)


def problems(*clusters):
    hostvars, groups = build(*clusters)
    inv = model_mod.load(hostvars, groups)
    return [str(p) for p in validate.problems(inv) if p.field in ("pg_standby_seed", "pgbackrest_method")]


def configs(src=None, standby=None, host="10.10.10.21"):
    hostvars, groups = build(
        src or source(pgbackrest_method="backup"),
        standby or dr(pgbackrest_method="backup", pg_standby_seed="pgbackrest"),
    )
    inv = model_mod.load(hostvars, groups)
    assert [str(p) for p in validate.problems(inv)] == []
    cplan, iplan = plan.cluster_plan(inv, "pg-dr"), plan.instance_plan(inv, host)
    s = settings_mod.build_settings(hostvars[host])
    return cplan, iplan, s


@pytest.mark.parametrize(
    "clusters, expected",
    [
        pytest.param(
            (source(), cluster("pg-dr", {"10.10.10.21": {"pg_seq": 1, "pg_role": "primary"}}, pg_standby_seed="x")),
            "cluster pg-dr, host 10.10.10.21: pg_standby_seed = 'x': is not a way to seed a standby cluster; fix: "
            "use one of basebackup, pgbackrest (pgbackrest restores the source's latest backup from its repository)",
            id="unknown value",
        ),
        pytest.param(
            (source(), dr(up=None, pg_standby_seed="pgbackrest")),
            "cluster pg-dr, host 10.10.10.21: pg_standby_seed = 'pgbackrest': pg-dr is no standby cluster (its "
            "leader has no pg_upstream): there is no source to restore from; fix: remove pg_standby_seed, or give "
            "the leader pg_upstream (docs/dr.md)",
            id="no standby cluster",
        ),
        pytest.param(
            (source(), dr(up="192.168.5.1", pg_standby_seed="pgbackrest")),
            "cluster pg-dr, host 10.10.10.21: pg_standby_seed = 'pgbackrest': the source of pg-dr (pg_upstream "
            "192.168.5.1) is no cluster of the inventory: its stanza and repository are unknown; fix: add the "
            "source cluster to the inventory, or use pg_standby_seed: basebackup",
            id="source outside the inventory",
        ),
        pytest.param(
            (source(), dr(pg_standby_seed="pgbackrest")),
            "cluster pg-dr, host 10.10.10.21: pg_standby_seed = 'pgbackrest': the repository of pg-test "
            "(pgbackrest_method local) is on its own nodes, which pg-dr cannot read; fix: back pg-test up to a "
            "repository host or an object store (pgbackrest_method, docs/backup.md), or use pg_standby_seed: "
            "basebackup",
            id="local repository",
        ),
        pytest.param(
            (source(pgbackrest_method="backup"), dr(pg_standby_seed="pgbackrest")),
            "cluster pg-dr, host 10.10.10.21: pgbackrest_method = 'local': pg-dr reads the backups of pg-test "
            "through its own repository settings, but its repository (pgbackrest_method local) is not that of "
            "pg-test (pgbackrest_method backup); fix: give pg-dr the repository of pg-test (the same "
            "pgbackrest_repo entry), or use pg_standby_seed: basebackup",
            id="other repository",
        ),
        pytest.param(
            (
                source(pgbackrest_method="backup", pgbackrest_enabled=False),
                dr(pgbackrest_method="backup", pg_standby_seed="pgbackrest"),
            ),
            "cluster pg-dr, host 10.10.10.21: pg_standby_seed = 'pgbackrest': pg-dr seeds from the pgBackRest "
            "repository of pg-test, but pgbackrest_enabled is off in pg-test; fix: turn pgbackrest_enabled on in "
            "both clusters, or use pg_standby_seed: basebackup",
            id="no backups on the source",
        ),
    ],
)
def test_refused(clusters, expected):
    assert expected in problems(*clusters)


def test_basebackup_is_the_default_and_needs_nothing():
    assert problems(source(), dr()) == []
    cplan, iplan, s = configs(standby=dr(pgbackrest_method="backup"))
    assert cplan["standby"]["seed"] is None
    patroni = patroni_conf.patroni_config(cplan, iplan, s)
    assert patroni["bootstrap"]["dcs"]["standby_cluster"]["create_replica_methods"] == ["basebackup"]
    assert "restore_command" not in patroni["bootstrap"]["dcs"]["standby_cluster"]
    assert "pgbackrest" not in patroni["postgresql"]
    assert [section for section, _ in pgbackrest_conf.pgbackrest_conf(cplan, iplan, s)][-1] == "pg-dr"


def test_seed_from_a_repository_host():
    cplan, iplan, s = configs()
    assert cplan["standby"]["seed"] == "pg-test"
    patroni = patroni_conf.patroni_config(cplan, iplan, s)
    block = patroni["bootstrap"]["dcs"]["standby_cluster"]
    assert block["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert block["restore_command"] == 'pgbackrest --stanza=pg-test archive-get %f "%p"'
    assert patroni["postgresql"]["pgbackrest"] == {
        "command": "pgbackrest --stanza=pg-test --type=none --delta restore",
        "keep_data": True,
        "no_params": True,
        "no_master": True,
    }
    # the members' own replicas still clone from their leader
    assert patroni["postgresql"]["create_replica_methods"] == ["basebackup"]
    conf = dict((section, lines) for section, lines in pgbackrest_conf.pgbackrest_conf(cplan, iplan, s))
    assert conf["pg-test"] == conf["pg-dr"]
    assert ["pg1-path", "/pg/data"] in conf["pg-test"]
    repo = pgbackrest_conf.pgbackrest_repo_host(cplan, iplan, s)
    assert repo is not None
    assert repo["stanza_conf"][0] == [
        "global:server",
        [["tls-server-auth", "pg-dr-1=pg-dr,pg-test"], ["tls-server-auth", "pg-dr-2=pg-dr,pg-test"]],
    ]


def test_seed_from_an_object_store_names_the_source_where_the_repository_does():
    repos = {"s3": S3}
    cplan, iplan, s = configs(
        src=source(pgbackrest_method="s3", pgbackrest_repo=repos),
        standby=dr(pgbackrest_method="s3", pgbackrest_repo=repos, pg_standby_seed="pgbackrest"),
    )
    conf = dict((section, lines) for section, lines in pgbackrest_conf.pgbackrest_conf(cplan, iplan, s))
    assert ["repo1-cipher-pass", "key.pg-dr"] in conf["global"]
    # only what differs: the source's key
    assert conf["pg-test"] == conf["pg-dr"] + [["repo1-cipher-pass", "key.pg-test"]]
    assert pgbackrest_conf.pgbackrest_repo_host(cplan, iplan, s) is None


METHODS = st.sampled_from(["local", "backup", "s3"])


@given(
    seed=st.sampled_from([None, "basebackup", "pgbackrest"]),
    up=st.sampled_from([None, "10.10.10.3", "192.168.5.1"]),
    src_method=METHODS,
    dr_method=METHODS,
    src_on=st.booleans(),
)
def test_seeded_exactly_when_asked_and_not_refused(seed, up, src_method, dr_method, src_on):
    repos = dict(settings_mod.PGBACKREST_REPO_DEFAULTS, s3=S3)
    cvars = {"pgbackrest_method": dr_method, "pgbackrest_repo": repos}
    if seed is not None:
        cvars["pg_standby_seed"] = seed
    hostvars, groups = build(
        source(pgbackrest_method=src_method, pgbackrest_repo=repos, pgbackrest_enabled=src_on), dr(up=up, **cvars)
    )
    inv = model_mod.load(hostvars, groups)
    refused = upstream.seed_problems(inv.clusters["pg-dr"], hostvars)
    stanza = plan.cluster_plan(inv, "pg-dr")["standby"]["seed"]
    assert (stanza is not None) == (seed == "pgbackrest" and not refused)
    if seed != "pgbackrest":
        assert refused == []
    expected_ok = up == "10.10.10.3" and src_on and src_method == dr_method and src_method != "local"
    assert (seed == "pgbackrest" and not refused) == (seed == "pgbackrest" and expected_ok)
    if stanza is not None:
        assert stanza == "pg-test"


def cascade(up_of_dr="10.10.10.3", **dr_vars):
    """pg-dr (a standby cluster of ``up_of_dr``, VIP 10.10.10.4) and pg-dr2,
    a standby cluster of pg-dr through that VIP, seeded from the repository."""
    first = dr(up=up_of_dr, pg_vip_enabled=True, pg_vip_address="10.10.10.4/24", pgbackrest_method="backup", **dr_vars)
    second = cluster(
        "pg-dr2",
        {"10.10.10.31": {"pg_seq": 1, "pg_role": "primary", "pg_upstream": "10.10.10.4"}},
        pgbackrest_method="backup",
        pg_standby_seed="pgbackrest",
    )
    return first, second


def test_a_standby_cluster_of_a_standby_cluster_restores_the_head_of_the_chain():
    hostvars, groups = build(source(pgbackrest_method="backup"), *cascade())
    inv = model_mod.load(hostvars, groups)
    assert [str(p) for p in validate.problems(inv)] == []
    assert upstream.seed_root("10.10.10.21", hostvars) == "10.10.10.11"
    cplan = plan.cluster_plan(inv, "pg-dr2")
    assert cplan["standby"]["seed"] == "pg-test"
    patroni = patroni_conf.patroni_config(
        cplan, plan.instance_plan(inv, "10.10.10.31"), settings_mod.build_settings(hostvars["10.10.10.31"])
    )
    # it streams from pg-dr, and restores pg-test's backup
    assert patroni["bootstrap"]["dcs"]["standby_cluster"]["host"] == "10.10.10.4"
    assert patroni["postgresql"]["pgbackrest"]["command"].startswith("pgbackrest --stanza=pg-test ")


def test_a_chain_that_leaves_the_inventory_has_no_backups_to_restore():
    hostvars, groups = build(source(pgbackrest_method="backup"), *cascade(up_of_dr="192.168.5.1"))
    found = [str(p) for p in validate.problems(model_mod.load(hostvars, groups)) if p.field == "pg_standby_seed"]
    assert found == [
        "cluster pg-dr2, host 10.10.10.31: pg_standby_seed = 'pgbackrest': the data of pg-dr2 comes from pg-dr, a "
        "standby cluster whose own source is outside the inventory: no cluster of the inventory has its backups; "
        "fix: use pg_standby_seed: basebackup, or add the cluster at the head of the chain to the inventory"
    ]


def test_a_circle_is_left_to_the_circle_check():
    hostvars, _groups = build(source(), *cascade(up_of_dr="10.10.10.31"))
    assert upstream.seed_root("10.10.10.21", hostvars) is None


def test_a_run_limited_to_the_standby_cluster_plans_the_same_seed():
    # -l pg-dr reads only some variables of pg-test's hosts (safety.OTHER_VARS):
    # enough to find its repository, so the plan is the full run's
    hostvars, groups = build(
        source(pgbackrest_method="backup"), dr(pgbackrest_method="backup", pg_standby_seed="pgbackrest")
    )
    snap = snapshot(hostvars, groups, ["10.10.10.21"])
    limited = model_mod.load(snap["hostvars"], snap["groups"], snap["clusters"])
    full = model_mod.load(hostvars, groups)
    assert [str(p) for p in validate.problems(limited)] == []
    assert plan.cluster_plan(limited, "pg-dr")["standby"] == plan.cluster_plan(full, "pg-dr")["standby"]
    assert plan.cluster_plan(limited, "pg-dr")["standby"]["seed"] == "pg-test"
