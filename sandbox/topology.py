#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Node list and inventories of the sandbox, derived from one inventory.

inventory/sandbox.yml is the single description of the sandbox topology.
This tool

* ``inventory``: writes a copy of it moved to another subnet (every address
  of the source subnet, in keys and values, is mapped to the same offset in
  the target subnet: hosts, admin_ip, pg_vip_address, ...), so a test
  scenario can run the same topology next to a running sandbox; with
  ``--extra``, the groups of another inventory (e.g. inventory/dr.yml: a
  standby cluster of pg-test on two more nodes) are added first;
* ``nodes``: prints the nodes of an inventory, one ``ADDRESS HOSTNAME`` per
  line, with the hostname the node role gives the node (``node_name``, else
  ``<pg_cluster>-<pg_seq>``, else the inventory name).

It needs PyYAML and, for ``nodes``, ansible-inventory (both in .venv).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ADDRESS = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def remap_text(text: str, source: ipaddress.IPv4Network, target: ipaddress.IPv4Network) -> str:
    """Map every IPv4 address of ``source`` found in ``text`` into ``target``."""

    def one(match: re.Match[str]) -> str:
        try:
            address = ipaddress.IPv4Address(match.group(1))
        except ValueError:
            return match.group(1)
        if address not in source:
            return match.group(1)
        offset = int(address) - int(source.network_address)
        return str(target.network_address + offset)

    return ADDRESS.sub(one, text)


def remap(value: Any, source: ipaddress.IPv4Network, target: ipaddress.IPv4Network) -> Any:
    """Walk a loaded YAML document and remap addresses in keys and strings."""
    if isinstance(value, dict):
        return {remap(k, source, target): remap(v, source, target) for k, v in value.items()}
    if isinstance(value, list):
        return [remap(v, source, target) for v in value]
    if isinstance(value, str):
        return remap_text(value, source, target)
    return value


def set_key(value: Any, key: str) -> None:
    """Point every ansible_ssh_private_key_file at ``key`` (the source's path
    is relative to its own directory, which the copy does not share)."""
    if isinstance(value, dict):
        for name, item in value.items():
            if name == "ansible_ssh_private_key_file":
                value[name] = key
            else:
                set_key(item, key)
    elif isinstance(value, list):
        for item in value:
            set_key(item, key)


def add_groups(data: dict[str, Any], extra: dict[str, Any], name: str) -> None:
    """Add the groups of ``extra``'s ``all.children`` to ``data``'s: a new
    group is added whole; a group both have gets the extra one's hosts and
    children added (a host or child both name is refused: an extra
    inventory adds nodes, it does not change the source's)."""
    into = data["all"]["children"]
    for group, body in ((extra.get("all") or {}).get("children") or {}).items():
        if group not in into:
            into[group] = body
            continue
        have = into[group] if isinstance(into[group], dict) else {}
        into[group] = have
        for key in ("hosts", "children"):
            add = (body or {}).get(key) or {}
            both = sorted(set(add) & set(have.get(key) or {}))
            if both:
                sys.exit(f"topology: {name}: group {group} {key} {', '.join(map(str, both))} exist in the source")
            if add:
                have[key] = {**(have.get(key) or {}), **add}
        if (body or {}).get("vars"):
            sys.exit(f"topology: {name}: group {group} exists in the source: its vars stay the source's")


def cmd_inventory(args: argparse.Namespace) -> int:
    source = ipaddress.IPv4Network(args.source_subnet)
    target = ipaddress.IPv4Network(args.subnet)
    if source.prefixlen != target.prefixlen:
        sys.exit(f"topology: {args.subnet} must have the prefix length of {args.source_subnet}")
    data = yaml.safe_load(Path(args.source).read_text(encoding="utf-8"))
    sources = args.source
    if args.extra:
        add_groups(data, yaml.safe_load(Path(args.extra).read_text(encoding="utf-8")) or {}, args.extra)
        sources += f" and {args.extra}"
    moved = remap(data, source, target)
    if args.key:
        set_key(moved, str(Path(args.key).resolve()))
    header = (
        f"# Generated from {sources} by sandbox/topology.py: the same nodes\n"
        f"# and variables, moved from {source} to {target}. Do not edit.\n"
    )
    body = yaml.safe_dump(moved, default_flow_style=False, sort_keys=False, width=120)
    text = "---\n" + header + body
    out = Path(args.output)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return 0


def node_hostname(name: str, hostvars: dict[str, Any]) -> str:
    """Hostname the node role sets (same rule as its node_name default)."""
    for var in ("node_name", "nodename"):
        if hostvars.get(var):
            return str(hostvars[var])
    if "pg_cluster" in hostvars and "pg_seq" in hostvars:
        return f"{hostvars['pg_cluster']}-{hostvars['pg_seq']}"
    return name


def cmd_nodes(args: argparse.Namespace) -> int:
    listing = subprocess.run(
        [args.ansible_inventory, "--inventory", args.inventory, "--list"],
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(listing.stdout)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    rows = []
    for name in hostvars:
        hv = hostvars[name]
        address = str(hv.get("ansible_host", name))
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            sys.exit(f"topology: host {name}: address {address!r} is not an IPv4 address")
        rows.append((ipaddress.IPv4Address(address), node_hostname(name, hv)))
    for address, hostname in sorted(rows):
        print(address, hostname)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    inv = sub.add_parser("inventory", help="write the source inventory moved to another subnet")
    inv.add_argument("--source", default="inventory/sandbox.yml")
    inv.add_argument("--extra", help="an inventory whose groups are added to the source's")
    inv.add_argument("--source-subnet", default="10.10.10.0/24")
    inv.add_argument("--subnet", required=True, help="target subnet, e.g. 10.10.20.0/24")
    inv.add_argument("--key", help="SSH private key the copy points at")
    inv.add_argument("--output", required=True)
    inv.set_defaults(func=cmd_inventory)

    nodes = sub.add_parser("nodes", help="print ADDRESS HOSTNAME for each host")
    nodes.add_argument("--inventory", required=True)
    nodes.add_argument("--ansible-inventory", default="ansible-inventory")
    nodes.set_defaults(func=cmd_nodes)

    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
