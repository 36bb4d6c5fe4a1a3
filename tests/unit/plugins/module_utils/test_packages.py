# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/module_utils/packages.py: which packages a node still lacks."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.filter import pgsql
from ansible_collections.pigpen.pgsql.plugins.module_utils.packages import missing

INSTALLED = {"patroni": "3.0.2-1", "postgresql-15": "15.14-0+deb12u1", "libc6": "2.36-9+deb12u4"}


@pytest.mark.parametrize("wanted, expected", [
    (["patroni", "postgresql-15"], []),
    (["patroni", "haproxy"], ["haproxy"]),
    (["haproxy", "haproxy", "pgbouncer"], ["haproxy", "pgbouncer"]),     # no repeats, order kept
    (["libc6:amd64"], []),                                                # an architecture qualifier
    (["patroni=3.0.2-1"], []),                                            # the pinned version is there
    (["patroni=3.0.*"], []),                                              # apt's wildcard
    (["patroni=3.1.0-1"], ["patroni=3.1.0-1"]),                           # another version is there
    (["patroni>=3.0"], ["patroni>=3.0"]),                                 # apt judges comparisons
    (["/tmp/pkg.deb"], ["/tmp/pkg.deb"]),                                 # so a path
    (["", " patroni "], []),                                              # blanks are ignored
    ([], []),
    (None, []),
])
def test_missing_table(wanted, expected):
    assert missing(wanted, INSTALLED) == expected


def test_unknown_facts_mean_everything_is_missing():
    assert missing(["patroni", "haproxy"], None) == ["patroni", "haproxy"]


def test_filter_reads_the_dpkg_fact():
    facts = {"dpkg_packages": INSTALLED}
    assert pgsql.pkgs_missing(["patroni", "haproxy"], facts) == ["haproxy"]
    assert pgsql.pkgs_missing("patroni", facts) == []
    # before dpkg_facts ran (or on a host where it could not): apt decides
    assert pgsql.pkgs_missing(["patroni"], {}) == ["patroni"]
    assert pgsql.pkgs_missing(["patroni"], None) == ["patroni"]


NAMES = st.from_regex(r"[a-z0-9][a-z0-9+.\-]{0,12}", fullmatch=True)


@given(st.dictionaries(NAMES, st.from_regex(r"[0-9][0-9a-z.+~\-]{0,8}", fullmatch=True)), st.lists(NAMES))
def test_missing_is_exactly_the_names_not_installed(installed, wanted):
    out = missing(wanted, installed)
    assert out == list(dict.fromkeys(n for n in wanted if n not in installed))
    # installing what is missing leaves nothing missing
    assert missing(wanted, {**installed, **{n: "1" for n in out}}) == []
