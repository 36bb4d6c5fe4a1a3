# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""plugins/modules/dpkg_facts.py: dpkg-query's lines into package_facts' format.
The module itself runs in every deployment (node role, pgsql.yml)."""

from __future__ import annotations

from hypothesis import given, strategies as st

from ansible_collections.pigpen.pgsql.plugins.modules import dpkg_facts as mod

SAMPLE = (
    "ii \tpatroni\t3.0.2-1\tall\n"
    "ii \tlibc6\t2.36-9+deb12u4\tamd64\n"
    "ii \tlibc6\t2.36-9+deb12u4\ti386\n"
    "hi \tetcd-server\t3.4.23-4\tamd64\n"  # installed, on hold
    "ri \tleaving\t1.0\tall\n"  # installed, marked for removal
    "rc \tpostgresql-14\t14.10-1\tamd64\n"  # removed, configuration left
    "iU \thalf\t1.0\tall\n"  # unpacked, not configured
    "un \tnever\t\t\n"  # known, not installed
    "garbage line\n"
)


def test_parse_keeps_installed_packages_only():
    packages = mod.parse(SAMPLE)
    assert sorted(packages) == ["etcd-server", "leaving", "libc6", "patroni"]
    assert packages["patroni"] == [{"name": "patroni", "version": "3.0.2-1", "arch": "all", "source": "apt"}]
    assert [p["arch"] for p in packages["libc6"]] == ["amd64", "i386"]  # multiarch: one entry each


NAME = st.from_regex(r"[a-z0-9][a-z0-9+.-]{0,20}", fullmatch=True)


@given(st.lists(st.tuples(st.sampled_from(["ii ", "hi ", "ri ", "rc ", "iU ", "un ", "pn "]), NAME), max_size=20))
def test_parse_lists_exactly_the_installed_names(rows):
    text = "".join("%s\t%s\t1.0\tall\n" % row for row in rows)
    assert set(mod.parse(text)) == {name for status, name in rows if status in ("ii ", "hi ", "ri ")}


def test_versions_is_flat_and_keeps_the_first_architecture():
    assert mod.versions(mod.parse(SAMPLE)) == {
        "patroni": "3.0.2-1",
        "libc6": "2.36-9+deb12u4",
        "etcd-server": "3.4.23-4",
        "leaving": "1.0",
    }


@given(st.lists(st.tuples(st.sampled_from(["ii ", "hi ", "rc "]), NAME), max_size=20))
def test_versions_lists_the_same_names_as_parse(rows):
    packages = mod.parse("".join("%s\t%s\t1.0\tall\n" % row for row in rows))
    assert set(mod.versions(packages)) == set(packages)
    assert all(isinstance(version, str) for version in mod.versions(packages).values())
