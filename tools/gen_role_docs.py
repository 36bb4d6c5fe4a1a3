#!/usr/bin/env python3
# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Write docs/parameters.md from every roles/*/meta/argument_specs.yml.

    python tools/gen_role_docs.py            # (re)write docs/parameters.md
    python tools/gen_role_docs.py --check    # exit 1 with a diff when it is stale

Run it with the repository's virtualenv (``.venv/bin/python``), which has
PyYAML. The output depends only on the argument specs, so running it twice
gives the same bytes; tests/unit/test_docs.py fails when the committed page
differs from what this script writes.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from typing import Any, Dict, Iterable, List, Optional, Tuple

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
OUTPUT = os.path.join("docs", "parameters.md")
COMMAND = "python tools/gen_role_docs.py"

# Roles in deployment order; any other role follows, alphabetically.
ROLE_ORDER = ("node", "etcd", "postgres", "patroni", "pgbouncer", "pgbackrest", "haproxy", "vip", "exporters", "vector")

# Inline defaults longer than this are cut (the full value is in the role's
# meta/argument_specs.yml and defaults/main.yml).
MAX_DEFAULT = 100

# Ansible's documentation markup: C(code), I(italic), B(bold), O(option),
# V(value), E(env var), P(plugin), RV(return value), M(module), U(url),
# L(text,url).
_MARKUP_CODE = re.compile(r"\b(?:C|O|V|E|P|RV|M)\(([^()]*)\)")
_MARKUP_ITALIC = re.compile(r"\bI\(([^()]*)\)")
_MARKUP_BOLD = re.compile(r"\bB\(([^()]*)\)")
_MARKUP_URL = re.compile(r"\bU\(([^()]*)\)")
_MARKUP_LINK = re.compile(r"\bL\(([^(),]*),\s*([^()]*)\)")


# ------------------------------------------------------------------ input


def role_names(roles_dir: str) -> List[str]:
    """Roles that have meta/argument_specs.yml, in documentation order."""
    found = sorted(
        d for d in os.listdir(roles_dir) if os.path.isfile(os.path.join(roles_dir, d, "meta", "argument_specs.yml"))
    )
    ordered = [r for r in ROLE_ORDER if r in found]
    return ordered + [r for r in found if r not in ROLE_ORDER]


def load_specs(roles_dir: str, role: str) -> Dict[str, Any]:
    path = os.path.join(roles_dir, role, "meta", "argument_specs.yml")
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    specs = data.get("argument_specs") or {}
    if not isinstance(specs, dict):
        raise ValueError("%s: argument_specs is not a mapping" % path)
    return specs


def entry_points(specs: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    """``main`` first, then the other entry points alphabetically."""
    names = sorted(specs, key=lambda n: (n != "main", n))
    return [(n, specs[n] or {}) for n in names]


# ----------------------------------------------------------------- format


def markup(text: Any) -> str:
    """Ansible markup to Markdown, on one line."""
    text = " ".join(str(text).split())
    text = _MARKUP_LINK.sub(lambda m: "[%s](%s)" % (m.group(1), m.group(2)), text)
    text = _MARKUP_URL.sub(lambda m: "<%s>" % m.group(1), text)
    text = _MARKUP_CODE.sub(lambda m: code(m.group(1)), text)
    text = _MARKUP_ITALIC.sub(lambda m: "*%s*" % m.group(1), text)
    text = _MARKUP_BOLD.sub(lambda m: "**%s**" % m.group(1), text)
    return text


def paragraphs(value: Any) -> List[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [markup(v) for v in value if str(v).strip()]
    return [markup(value)] if str(value).strip() else []


def code(text: str) -> str:
    """A Markdown code span that survives backticks in the text."""
    fence = "``" if "`" in text else "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return "%s%s%s%s%s" % (fence, pad, text, pad, fence)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def inline(value: Any) -> str:
    """A default value as one line of YAML (flow style for lists/dicts)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        if value == "":
            return '""'
        return value
    try:
        text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False).strip()
    except yaml.YAMLError:
        text = json.dumps(value, sort_keys=False, default=str)
    if text.endswith("\n..."):
        text = text[:-4].strip()
    return text


def truncate(text: str, limit: int = MAX_DEFAULT) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # cut at the last separator so no token is left half-written
    for sep in (", ", " "):
        pos = cut.rfind(sep)
        if pos > limit // 2:
            cut = cut[: pos + (1 if sep == ", " else 0)]
            break
    return cut.rstrip() + " …"


def type_of(opt: Dict[str, Any]) -> str:
    kind = str(opt.get("type", "str"))
    if kind == "list" and opt.get("elements"):
        kind = "list of %s" % opt["elements"]
    if opt.get("no_log"):
        kind += ", secret"
    return kind


def default_of(opt: Dict[str, Any]) -> str:
    if opt.get("required"):
        return "required"
    if "default" not in opt:
        return "-"
    return code(truncate(inline(opt["default"])))


def description_of(opt: Dict[str, Any]) -> str:
    parts = paragraphs(opt.get("description"))
    choices = opt.get("choices")
    if choices:
        parts.append("Choices: %s." % ", ".join(code(inline(c)) for c in choices))
    return " ".join(parts) if parts else "-"


def option_table(options: Dict[str, Any]) -> List[str]:
    lines = ["| variable | type | default | description |", "|---|---|---|---|"]
    for name in options:
        opt = options[name] or {}
        lines.append(
            "| %s | %s | %s | %s |" % (code(name), cell(type_of(opt)), cell(default_of(opt)), cell(description_of(opt)))
        )
    return lines


def anchor(text: str) -> str:
    """GitHub's heading anchor for simple headings."""
    slug = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return slug.replace(" ", "-")


# ----------------------------------------------------------------- output


def role_section(role: str, specs: Dict[str, Any]) -> List[str]:
    out = ["## %s" % role, ""]
    points = entry_points(specs)
    main_options = (specs.get("main") or {}).get("options") or {}
    for name, entry in points:
        options = entry.get("options") or {}
        short = markup(entry.get("short_description") or "")
        if len(points) > 1 or name != "main":
            out += ["### %s: `%s`" % (role, name), ""]
        if name == "main":
            out += ["`pigpen.pgsql.%s`%s" % (role, ": " + short if short else ""), ""]
        else:
            out += ["`tasks_from: %s.yml`%s" % (name, ": " + short if short else ""), ""]
        for para in paragraphs(entry.get("description")):
            out.append("- %s" % para)
        if entry.get("description"):
            out.append("")
        if not options:
            out += ["No options.", ""]
            continue
        if name != "main" and options == main_options:
            out += ["Options: the same as `main`.", ""]
            continue
        shared = [k for k in options if name != "main" and main_options.get(k) == options[k]]
        own = {k: v for k, v in options.items() if k not in shared}
        if own:
            out += option_table(own)
            out.append("")
        if shared:
            out += [
                "%s, as described under `main`: %s."
                % ("Also takes" if own else "Takes", ", ".join(code(k) for k in shared)),
                "",
            ]
    return out


def render(repo: str = REPO) -> str:
    """The whole text of docs/parameters.md."""
    roles_dir = os.path.join(repo, "roles")
    roles = role_names(roles_dir)
    out = [
        "# Role parameters",
        "",
        "> Generated by `%s` from `roles/*/meta/argument_specs.yml`; "
        "do not edit by hand. `%s --check` (and "
        "`tests/unit/test_docs.py`) fail when this page is out of date." % (COMMAND, COMMAND),
        "",
        "These are the variables of each role, as its argument specs declare "
        "them. The cluster vocabulary shared by every role (`pg_cluster`, "
        "`pg_seq`, `pg_role`, `pg_services`, `pg_hba_rules`, `pg_rto`, ...) "
        "is described once in [model.md](model.md), and the settings of the "
        "generated Patroni, pgbouncer and pgBackRest files in "
        "[configs.md](configs.md). A default of `-` means the role takes the "
        "model's default (named in the description); long defaults are cut "
        "with `…`, the full value is in the role's `defaults/main.yml`. "
        "Options marked *secret* are never logged.",
        "",
        "Roles (the order of play is in [architecture.md](architecture.md)):",
        "",
    ]
    sections: List[str] = []
    for role in roles:
        specs = load_specs(roles_dir, role)
        short = markup((specs.get("main") or {}).get("short_description") or "")
        out.append("- [%s](#%s)%s" % (role, anchor(role), ": " + short if short else ""))
        sections += role_section(role, specs)
    text = "\n".join(out + [""] + sections)
    return text.rstrip("\n") + "\n"


def check(repo: str = REPO, path: Optional[str] = None) -> Tuple[bool, str]:
    """(up to date, unified diff of the file against the generated text)."""
    path = path or os.path.join(repo, OUTPUT)
    wanted = render(repo)
    try:
        with open(path, encoding="utf-8") as fh:
            current = fh.read()
    except FileNotFoundError:
        current = ""
    if current == wanted:
        return True, ""
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        wanted.splitlines(keepends=True),
        fromfile="%s (in the tree)" % OUTPUT,
        tofile="%s (generated)" % OUTPUT,
    )
    return False, "".join(diff)


def main(argv: Optional[Iterable[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/parameters.md from the roles' argument specs.")
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 with a diff when the page is out of date"
    )
    parser.add_argument("--output", default=None, help="file to write or check (default: %s)" % OUTPUT)
    args = parser.parse_args(list(argv) if argv is not None else None)
    path = args.output or os.path.join(REPO, OUTPUT)
    if args.check:
        ok, diff = check(REPO, path)
        if ok:
            print("%s is up to date" % os.path.relpath(path, REPO))
            return 0
        lines = diff.splitlines()
        shown = lines[:200]
        sys.stderr.write("\n".join(shown) + "\n")
        if len(lines) > len(shown):
            sys.stderr.write("... (%d more diff lines)\n" % (len(lines) - len(shown)))
        sys.stderr.write("%s is out of date: run `%s` and commit the result\n" % (os.path.relpath(path, REPO), COMMAND))
        return 1
    text = render(REPO)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, encoding="utf-8") as fh:
            unchanged = fh.read() == text
    except FileNotFoundError:
        unchanged = False
    if not unchanged:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    print("%s %s" % (os.path.relpath(path, REPO), "unchanged" if unchanged else "written"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
