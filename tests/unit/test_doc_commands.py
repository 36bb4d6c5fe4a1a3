# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""The shell commands of README.md and docs/*.md work as written.

Every ```sh block carries a marker on the line above it:

    <!-- runnable -->                 run from the repository root, on the control host
    <!-- runnable: on 10.10.10.11 --> run on that sandbox node (ssh as root)
    <!-- runnable: destructive -->    checked, never run by the opt-in mode below
    <!-- example: why -->             not checked (a template to adapt, a prompt...)

(``on HOST`` and ``destructive`` combine: ``<!-- runnable: on HOST,
destructive -->``.) Every runnable block is checked here without any node:

- it parses (``bash -n``);
- every command it calls exists: a shell builtin, a file of the repository
  (``.venv/bin/...`` after ``make venv``, ``sandbox/sandbox.sh``), a
  ``make`` target of the Makefile, or a Debian command of the tables below
  (the control host's, or, for a node block, one the roles install);
- Ansible's commands are called from ``.venv/bin/`` (they are not on PATH
  from the repository root) unless the block sources ``.venv/bin/activate``;
- every playbook, inventory and file of the repository it names exists,
  and every ``-e name=value`` of an ``ansible-playbook`` command is a
  variable that playbook (or a role, or the model) reads;
- ``ssh`` to a sandbox node uses the sandbox's key, ``etcdctl`` passes
  ``--user`` (etcd runs with authentication), and ``curl`` is given
  ``-g`` when a URL holds braces.

``PIGPEN_DOCS_RUN=1`` also runs every runnable block that is not
destructive against the running sandbox (``make sandbox``):
tests/integration/test_doc_commands_run.py.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import shutil
import subprocess
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))
DOCS = ["README.md"] + sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
MARKER = re.compile(r"^<!--\s*(runnable|example)\s*(?::\s*(.*?))?\s*-->\s*$")
SANDBOX_KEY = ".sandbox/ssh/id_ed25519"

BUILTINS = {
    "cd",
    "echo",
    "printf",
    "export",
    "set",
    "source",
    ".",
    "test",
    "[",
    "read",
    "true",
    "false",
    "exit",
    "unset",
    "wait",
    "eval",
    "exec",
    "command",
    "type",
    "alias",
    "pwd",
}
RESERVED = {"do", "done", "then", "else", "elif", "fi", "esac", "{", "}", "!", "time"}
# Commands of the control host: Debian package that brings each (make
# host-deps installs podman, openssh-client...; docs/sandbox.md).
CONTROL = {
    "make": "make",
    "ssh": "openssh-client",
    "podman": "podman",
    "psql": "postgresql-client",
    "curl": "curl",
    "jq": "jq",
    "diff": "diffutils",
    "grep": "grep",
    "cut": "coreutils",
    "cat": "coreutils",
    "sort": "coreutils",
    "head": "coreutils",
    "tail": "coreutils",
    "ls": "coreutils",
    "mkdir": "coreutils",
    "rm": "coreutils",
    "sleep": "coreutils",
    "seq": "coreutils",
    "tr": "coreutils",
    "sed": "sed",
    "awk": "mawk",
    "find": "findutils",
    "xargs": "findutils",
    "apt-get": "apt",
    "git": "git",
    "tee": "coreutils",
    "wc": "coreutils",
    "date": "coreutils",
    "env": "coreutils",
    "python3": "python3",
}
# Commands on a node: what the roles install there (node_packages, the
# PostgreSQL, Patroni, pgBackRest, etcd packages) or Debian's base system.
NODE = dict(
    CONTROL,
    **{
        "patronictl": "patroni",
        "pgbackrest": "pgbackrest",
        "etcdctl": "etcd-client",
        "pg_dump": "postgresql-client-15",
        "pg_restore": "postgresql-client-15",
        "pg_ctl": "postgresql-15 (/usr/lib/postgresql/15/bin)",
        "pg_isready": "postgresql-client-15",
        "systemctl": "systemd",
        "journalctl": "systemd",
        "sudo": "sudo",
        "su": "login",
        "ip": "iproute2",
        "ss": "iproute2",
        "lsof": "lsof",
        "ps": "procps",
        "kill": "procps",
        "haproxy": "haproxy",
        "pgbouncer": "pgbouncer",
        "chown": "coreutils",
        "rsync": "rsync",
        "apt": "apt",
        "apt-mark": "apt",
        "/usr/lib/postgresql/15/bin/pg_ctl": "postgresql-15",
        "pg-backup": "pigpen.pgsql (pgbackrest role)",
        "/usr/local/bin/pg-backup": "pigpen.pgsql",
        "pg-role-change": "pigpen.pgsql (pgbackrest role)",
        "mktemp": "coreutils",
        "install": "coreutils",
        "du": "coreutils",
        "df": "coreutils",
        "touch": "coreutils",
        "scp": "openssh-client",
        "getent": "libc-bin",
    },
)
VENV_ONLY = {
    "ansible",
    "ansible-playbook",
    "ansible-galaxy",
    "ansible-doc",
    "ansible-lint",
    "ansible-inventory",
    "ansible-vault",
    "ansible-config",
    "molecule",
    "pytest",
}


class Block(NamedTuple):
    doc: str
    line: int
    where: Optional[str]  # None: the control host; else a node's address
    destructive: bool
    text: str

    @property
    def id(self):
        return "%s:%d" % (self.doc, self.line)


def blocks(kind: str = "runnable") -> List[Block]:
    out = []
    for doc in DOCS:
        with open(os.path.join(REPO, doc), encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        for i, line in enumerate(lines):
            if not line.lstrip().startswith("```sh"):
                continue
            m = MARKER.match(lines[i - 1].strip()) if i else None
            if not m or m.group(1) != kind:
                continue
            end = next(j for j in range(i + 1, len(lines)) if lines[j].lstrip().startswith("```"))
            words = [w.strip() for w in (m.group(2) or "").split(",") if w.strip()]
            where = next((w.split(None, 1)[1] for w in words if w.startswith("on ")), None)
            indent = len(line) - len(line.lstrip())
            out.append(
                Block(
                    doc, i + 1, where, "destructive" in words, "\n".join(x[indent:] for x in lines[i + 1 : end]) + "\n"
                )
            )
    return out


RUNNABLE = blocks()


def unmarked() -> List[str]:
    out = []
    for doc in DOCS:
        with open(os.path.join(REPO, doc), encoding="utf-8") as handle:
            lines = handle.read().split("\n")
        for i, line in enumerate(lines):
            if line.lstrip().startswith("```sh") and not (i and MARKER.match(lines[i - 1].strip())):
                out.append("%s:%d" % (doc, i + 1))
    return out


HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")


def logical_lines(text: str) -> List[str]:
    """The block's lines with continuations joined, here-document bodies
    dropped and newlines inside quotes turned into spaces."""
    text = text.replace("\\\n", " ")
    lines, heredoc = [], None
    for line in text.split("\n"):
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        lines.append(line)
        m = HEREDOC.search(line)
        if m:
            heredoc = m.group(1)
    out: List[str] = []
    quote, comment, escaped = None, False, False
    for ch in "\n".join(lines):
        if comment:
            if ch == "\n":
                comment = False
                out.append(ch)
            continue
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = None
            out.append(" " if ch == "\n" else ch)
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "#" and (not out or out[-1] in " \t\n;"):
            comment = True
            continue
        out.append(ch)
    return "".join(out).split("\n")


def simple_commands(text: str) -> Iterator[List[str]]:
    """The words of every simple command of a block (commands inside $(...)
    and the bodies of quoted strings are not looked into)."""
    for line in logical_lines(text):
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:
            continue  # bash -n reports it
        words: List[str] = []
        skip_to_separator = skip_next = False
        for tok in tokens + [";"]:
            if skip_next:
                skip_next = False
                continue
            if tok and set(tok) <= set("<>&") and set(tok) & set("<>"):
                skip_next = True  # a redirection: its word is a file (or a here-document's end)
                continue
            if tok and set(tok) <= set(";&|()<>"):
                if words:
                    yield words
                words, skip_to_separator = [], False
                continue
            if skip_to_separator:
                continue
            if not words and tok in ("for", "case", "while", "until", "if", "select"):
                skip_to_separator = tok in ("for", "case", "select")
                continue
            if not words and tok in RESERVED:
                continue
            words.append(tok)


def command_word(words: List[str]) -> Tuple[Optional[str], List[str]]:
    """The command a simple command runs (after VAR=value, sudo -u X, env)
    and its arguments."""
    i = 0
    while i < len(words) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[i]):
        i += 1
    if i < len(words) and words[i] == "sudo":
        i += 1
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in ("-u", "-g") else 1
    if i >= len(words):
        return None, []
    return words[i], words[i + 1 :]


def makefile_targets() -> set:
    with open(os.path.join(REPO, "Makefile"), encoding="utf-8") as handle:
        return set(re.findall(r"^([a-z0-9-]+):", handle.read(), re.M))


def known_variables(playbook: str) -> set:
    """Variables a playbook may be given: those its text (and its task files
    and the roles it includes) names, the model's and the roles' options."""
    names = set()
    texts = [os.path.join(REPO, playbook)] + glob.glob(os.path.join(REPO, "playbooks", "tasks", "*.yml"))
    for path in texts:
        with open(path, encoding="utf-8") as handle:
            names |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", handle.read()))
    for path in glob.glob(os.path.join(REPO, "roles", "*", "meta", "argument_specs.yml")):
        with open(path, encoding="utf-8") as handle:
            for entry in ((yaml.safe_load(handle) or {}).get("argument_specs") or {}).values():
                names |= set(entry.get("options") or {})
    from ansible_collections.pigpen.pgsql.plugins.module_utils.settings import SETTINGS_DEFAULTS
    from ansible_collections.pigpen.pgsql.plugins.module_utils.defaults import MODEL_DEFAULTS

    return names | set(MODEL_DEFAULTS) | set(SETTINGS_DEFAULTS)


def problems_of(block: Block) -> List[str]:
    out = []
    activated = "source .venv/bin/activate" in block.text or ". .venv/bin/activate" in block.text
    table = NODE if block.where else CONTROL
    targets = makefile_targets()
    for words in simple_commands(block.text):
        cmd, args = command_word(words)
        if cmd is None or cmd in BUILTINS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*\(\)$", cmd):
            continue
        shown = " ".join(words)
        if cmd in VENV_ONLY and not activated:
            out.append(
                "%r: call .venv/bin/%s (not on PATH from the repository root), or "
                "source .venv/bin/activate first" % (shown, cmd)
            )
            continue
        if "/" in cmd and not cmd.startswith("/"):
            path = os.path.join(REPO, cmd)
            if not (os.path.exists(path) or cmd.startswith(".venv/bin/")):
                out.append("%r: no file %s in the repository" % (shown, cmd))
            elif (
                cmd.startswith(".venv/bin/")
                and os.path.isdir(os.path.join(REPO, ".venv", "bin"))
                and not os.path.exists(path)
            ):
                out.append("%r: %s is not in the virtualenv (requirements.txt)" % (shown, cmd))
        elif cmd not in table and cmd not in VENV_ONLY and not cmd.startswith("/"):
            out.append(
                "%r: %s is not a command of %s this test knows (add it to the table "
                "of tests/unit/test_doc_commands.py with its Debian package)"
                % (shown, cmd, "a node" if block.where else "the control host")
            )
        base = os.path.basename(cmd)
        if base == "make":
            for target in (a for a in args if not a.startswith("-") and "=" not in a):
                if target not in targets:
                    out.append("%r: no make target %s" % (shown, target))
        if (
            base == "ssh"
            and any(re.search(r"(^|@)10\.10\.[0-9]+\.[0-9]+$", a) for a in args)
            and SANDBOX_KEY not in args
        ):
            out.append("%r: ssh to a sandbox node needs -i %s" % (shown, SANDBOX_KEY))
        if base == "etcdctl" and "--user" not in " ".join(args) and "version" not in args:
            out.append("%r: etcd runs with authentication: pass --user" % shown)
        if base == "curl":
            value_opts = {"-w", "--write-out", "-d", "--data", "--data-urlencode", "-u", "-o", "-H"}
            urls = [a for i, a in enumerate(args) if not a.startswith("-") and not (i and args[i - 1] in value_opts)]
            if any("{" in u or "}" in u for u in urls) and not ({"-g", "--globoff"} & set(args)):
                out.append("%r: a URL with braces needs curl -g (or --data-urlencode)" % shown)
        if base in ("ansible-playbook",):
            playbook = next((a for a in args if a.endswith(".yml") and "playbooks/" in a), None)
            if playbook is None:
                out.append("%r: no playbooks/*.yml" % shown)
                continue
            if not os.path.exists(os.path.join(REPO, playbook)):
                out.append("%r: no playbook %s" % (shown, playbook))
                continue
            known = known_variables(playbook)
            for i, arg in enumerate(args):
                if arg in ("-i", "--inventory") and i + 1 < len(args):
                    inv = args[i + 1]
                    if not inv.startswith(("~", "/", "$")) and not os.path.exists(os.path.join(REPO, inv)):
                        out.append("%r: no inventory %s" % (shown, inv))
                if arg in ("-e", "--extra-vars") and i + 1 < len(args):
                    value = args[i + 1]
                    if value.startswith("{"):
                        pairs = list(json.loads(value))
                    elif value.startswith("@"):
                        pairs = []
                    else:
                        pairs = [p.split("=", 1)[0] for p in value.split()]
                    for name in pairs:
                        if name not in known:
                            out.append("%r: %s does not read %s" % (shown, playbook, name))
    return out


def test_every_shell_block_is_marked():
    assert not unmarked(), (
        "mark each ```sh block with <!-- runnable --> (or <!-- runnable: on HOST -->, "
        "<!-- runnable: destructive -->) or <!-- example: why --> on the line above it: %s" % ", ".join(unmarked())
    )


def test_the_docs_have_runnable_blocks():
    assert len(RUNNABLE) >= 20
    assert {b.doc for b in RUNNABLE} >= {
        "README.md",
        "docs/operations.md",
        "docs/etcd.md",
        "docs/patroni.md",
        "docs/backup.md",
        "docs/howto.md",
    }


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_block_parses(block):
    bash = shutil.which("bash") or "/bin/bash"
    res = subprocess.run([bash, "-n"], input=block.text, capture_output=True, text=True, check=False)
    assert res.returncode == 0, "%s: %s" % (block.id, res.stderr)


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_block_calls_what_exists(block):
    found = problems_of(block)
    assert not found, "%s:\n  %s" % (block.id, "\n  ".join(found))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ansible-playbook playbooks/pgsql.yml\n", "call .venv/bin/ansible-playbook"),
        ("ssh root@10.10.10.11 patronictl list\n", "needs -i .sandbox/ssh/id_ed25519"),
        (".venv/bin/ansible-playbook playbooks/pgsql-switchover.yml -e pg_candiate=x\n", "does not read pg_candiate"),
        (".venv/bin/ansible-playbook playbooks/nope.yml\n", "no playbook playbooks/nope.yml"),
        ("make sandbox-explode\n", "no make target sandbox-explode"),
        ("curl -s 'h:9090/api/v1/query?query=up{cls=\"x\"}'\n", "needs curl -g"),
        ("frobnicate --all\n", "frobnicate is not a command"),
    ],
)
def test_the_checks_catch_what_the_docs_got_wrong(text, expected):
    found = problems_of(Block("x.md", 1, None, False, text))
    assert any(expected in p for p in found), found


def test_node_blocks_check_etcdctl_user():
    found = problems_of(
        Block("x.md", 1, "10.10.10.10", False, "etcdctl --endpoints http://10.10.10.10:2379 endpoint health\n")
    )
    assert any("pass --user" in p for p in found), found
    assert not problems_of(Block("x.md", 1, "10.10.10.10", False, "etcdctl --user root:x endpoint health\n"))


def test_commands_inside_loops_and_pipes_are_found():
    text = "for p in a b; do\n  printf '%s' $p; curl -s -o /dev/null http://h/$p | jq .\ndone\n"
    assert [command_word(w)[0] for w in simple_commands(text)] == ["printf", "curl", "jq"]


def runnable_blocks() -> Dict[str, Block]:
    return {b.id: b for b in RUNNABLE}
