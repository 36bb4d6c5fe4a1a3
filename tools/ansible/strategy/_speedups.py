# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Controller-side speed-ups for the ``mitogen_linear`` strategy.

Ansible forks one worker process per task and host. Whatever a worker
computes dies with it, so every worker of a run does the same work again:
it compiles each Jinja template and conditional of its task from source,
and Mitogen lists all installed collections before each collection module.
Three measures remove that repeated work; all are pure caches, so the
playbooks behave exactly as without them:

* **Jinja code cache.** The Python code object that Jinja generates for a
  template or expression depends only on the source text and the
  environment's syntax settings. It is kept in memory, keyed by a hash of
  both, and written to ``PIGPEN_JINJA_CACHE`` (default
  ``~/.cache/pigpen-pgsql/jinja``). The controller loads the directory
  before the first fork, so every worker inherits the code compiled by
  earlier runs and compiles only what it has never seen. The directory
  must belong to the user and be writable by no one else: its files are
  executable code. ``PIGPEN_JINJA_CACHE=off`` turns the cache off.
* **Collection paths once.** Mitogen's planner looks up the directory of
  every installed collection before it runs a collection module, in every
  worker (about 1 s on this machine with the 94 collections of the
  ``ansible`` package). The list is computed once, before the forks.
* **Core filter and test plugins once.** Each worker otherwise loads
  ansible-core's filter and test plugin files on its first template. They
  are loaded once, before the forks (not measured on its own: it ran in
  every benchmark of bench/results/deploy.json that used the caches).

If a future ansible-core or Mitogen changes the internals these rely on,
``install()`` leaves them alone and the run is only slower.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import sys
import tempfile
import threading

CACHE_ENV = "PIGPEN_JINJA_CACHE"
# Beyond this many entries the oldest (by the time they were written) are removed at load.
MAX_ENTRIES = 20000

_local = threading.local()


class CodeCache:
    """Jinja code objects by key; optionally backed by a directory."""

    def __init__(self, directory=None, salt=""):
        self.directory = directory
        self.salt = salt
        self.codes = {}
        self.hits = 0
        self.misses = 0

    def digest(self, key):
        text = repr((self.salt, key)).encode("utf-8", "surrogatepass")
        return hashlib.sha256(text).hexdigest()

    def get(self, digest):
        code = self.codes.get(digest)
        if code is not None:
            self.hits += 1
        return code

    def put(self, digest, code):
        self.misses += 1
        self.codes[digest] = code
        if self.directory is None:
            return
        try:
            data = marshal.dumps(code)
        except ValueError:  # a constant marshal cannot store: keep it in memory only
            return
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, os.path.join(self.directory, digest))
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def load(self):
        """Read every entry of the directory; prune the oldest beyond MAX_ENTRIES."""
        if self.directory is None:
            return 0
        entries = []
        with os.scandir(self.directory) as it:
            for entry in it:
                if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                    continue
                entries.append((entry.stat(follow_symlinks=False).st_mtime, entry.name))
        entries.sort(reverse=True)
        for _, name in entries[MAX_ENTRIES:]:
            try:
                os.unlink(os.path.join(self.directory, name))
            except OSError:
                pass
        for _, name in entries[:MAX_ENTRIES]:
            try:
                with open(os.path.join(self.directory, name), "rb") as handle:
                    self.codes[name] = marshal.loads(handle.read())
            except (OSError, ValueError, EOFError, TypeError):
                continue
        return len(self.codes)


def safe_directory(path):
    """Create ``path`` (0700) if needed; return it if only its owner can write it, else None."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return None
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    return path


def cache_directory(environ=os.environ):
    """The cache directory from the environment, or None when it is turned off."""
    value = environ.get(CACHE_ENV, "")
    if value.lower() in ("off", "0", "false", "no"):
        return None
    if value:
        return value
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pigpen-pgsql", "jinja")


def _patch_jinja(cache):
    """Memoise AnsibleEnvironment.compile and compile_expression through ``cache``."""
    from jinja2 import nodes
    from jinja2.environment import TemplateExpression
    from ansible._internal._templating import _jinja_bits as bits

    env_class = bits.AnsibleEnvironment
    compile_context = bits._TemplateCompileContext
    field_names = bits._TEMPLATE_OVERRIDE_FIELD_NAMES
    original_compile = env_class.compile
    original_expression = env_class.compile_expression

    def settings(env):
        ctx = compile_context.current(optional=True)
        return (
            type(env).__qualname__,
            ctx.escape_backslashes if ctx else None,
            tuple(getattr(env, name) for name in field_names),
        )

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):
        pending = getattr(_local, "expression", None)
        if pending is not None and isinstance(source, nodes.Template):
            _local.expression = None
            code = original_compile(self, source, name, filename, raw, defer_init)
            if not raw:
                cache.put(pending, code)
            return code
        if raw or not isinstance(source, str) or self._debuggable_template_source:
            return original_compile(self, source, name, filename, raw, defer_init)
        digest = cache.digest(("template", str(source), name, filename, defer_init, settings(self)))
        code = cache.get(digest)
        if code is None:
            code = original_compile(self, source, name, filename, raw, defer_init)
            cache.put(digest, code)
        return code

    def compile_expression(self, source, undefined_to_none=True):
        if self._debuggable_template_source or not isinstance(source, str):
            return original_expression(self, source, undefined_to_none)
        digest = cache.digest(("expression", str(source), settings(self)))
        code = cache.get(digest)
        if code is not None:
            template = self.template_class.from_code(self, code, self.make_globals(None), None)
            return TemplateExpression(template, undefined_to_none)
        _local.expression = digest
        try:
            return original_expression(self, source, undefined_to_none)
        finally:
            _local.expression = None

    env_class.compile = compile
    env_class.compile_expression = compile_expression


def _patch_collections():
    """Make Mitogen's planner list the collection directories once, now."""
    import ansible.collections.list
    import ansible_mitogen.planner as planner

    if not hasattr(planner, "_load_collections"):
        return
    paths = [path.decode("utf-8") for path in ansible.collections.list.list_collection_dirs()]

    def load_collections(invocation):
        invocation._extra_sys_paths.update(paths)

    planner._load_collections = load_collections


def _preload_jinja_plugins():
    """Load the filter and test plugins of ansible-core once, before the forks."""
    from ansible.plugins.loader import filter_loader, test_loader

    for loader in (filter_loader, test_loader):
        loader._ensure_non_collection_wrappers()


_installed = None


def install(environ=os.environ):
    """Apply the three measures once per controller process; return the code cache or None."""
    global _installed
    if _installed is not None:
        return _installed or None
    _installed = False
    try:
        _patch_collections()
    except Exception:  # noqa: BLE001 - an internal changed: run without the shortcut
        pass
    try:
        _preload_jinja_plugins()
    except Exception:  # noqa: BLE001 - an internal changed: run without the shortcut
        pass
    directory = cache_directory(environ)
    if directory is None:
        return None
    import jinja2
    import ansible.release

    salt = (sys.version, jinja2.__version__, ansible.release.__version__)
    safe = safe_directory(directory)
    if safe is None:
        from ansible.utils.display import Display

        Display().warning(
            f"{CACHE_ENV}: {directory} is not a directory that only this user can write (it holds executable "
            f"code), so the Jinja code cache is not kept on disk for this run: create it with mode 0700, "
            f"point {CACHE_ENV} elsewhere, or set {CACHE_ENV}=off."
        )
    cache = CodeCache(safe, salt=repr(salt))
    try:
        cache.load()
        _patch_jinja(cache)
    except Exception:  # noqa: BLE001 - an internal changed: run without the cache
        return None
    _installed = cache
    return cache
