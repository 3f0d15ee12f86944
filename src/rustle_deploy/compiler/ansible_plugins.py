"""Plugins Ansible runs on the controller, run by ansible-core itself while a plan compiles.

Two kinds: ``lookup('config', ...)`` (ansible-core's configuration: ansible.cfg, ``ANSIBLE_*``,
its defaults, the task's variables), and the playbook's and roles' own plugins
(``lookup_plugins/``, ``filter_plugins/``, ``test_plugins/`` beside the playbook and in each
role, as ``ansible-playbook`` adds them). Lookups run on the controller in Ansible; so do these
filters and tests here: the compiler calls each with the values it knows (inventory, play,
role and task variables, loop items) and embeds the result for the host, exactly as
``lookups.py`` does for ``env``, ``pipe`` and the rest. A call whose input only a host knows
has no embedded result and fails on the host saying so.

The calls go to one child process (``plugin_host.py``) per set of plugin directories, started
on first use with the controller's Python and kept until the controller exits.
"""

from __future__ import annotations

import ast
import atexit
import base64
import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Plan

KINDS = ("lookup", "filter", "test")
_TABLE_METHOD = {"filter": "filters", "test": "tests"}


@dataclass(frozen=True)
class LocalPlugins:
    """The playbook's and roles' plugins: kind -> name -> the file that provides it."""

    dirs: tuple[str, ...] = ()
    found: dict[str, dict[str, str]] = field(default_factory=dict)

    def names(self, kind: str) -> frozenset[str]:
        return frozenset(self.found.get(kind, {}))

    @functools.cached_property
    def pattern(self) -> re.Pattern[str] | None:
        """What a template that calls one of them contains (a superset: a name in a string
        matches too, which only costs a render on the controller)."""
        names = sorted({n for kind in KINDS for n in self.names(kind)})
        if not names:
            return None
        return re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b")


@functools.lru_cache(maxsize=32)
def local_plugins(dirs: tuple[str, ...]) -> LocalPlugins:
    """Scan ``DIR/lookup_plugins``, ``DIR/filter_plugins`` and ``DIR/test_plugins`` of each
    directory. A lookup is named by its file; a filter or test file's names are the string keys
    of the dict its ``filters()``/``tests()`` method returns (read, not imported)."""
    found: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    for directory in dirs:
        for kind in KINDS:
            sub = os.path.join(directory, f"{kind}_plugins")
            try:
                entries = sorted(os.listdir(sub))
            except OSError:
                continue
            for entry in entries:
                path = os.path.join(sub, entry)
                if not entry.endswith(".py") or entry.startswith("_") or not os.path.isfile(path):
                    continue
                names = [entry[:-3]] if kind == "lookup" else _declared(path, _TABLE_METHOD[kind])
                for name in names:
                    found[kind].setdefault(name, path)  # the first directory wins, as in Ansible
    return LocalPlugins(dirs, found)


def plan_plugins(plan: Plan) -> LocalPlugins:
    """The plugins of ``plan``'s playbook and roles, offered to the runtime's templates (each
    call answered on the controller); registered with the runtime the compiler renders with."""
    from ..bridge.policy import plan_dirs
    from ..runtime_index import import_runtime

    found = with_collections(local_plugins(tuple(plan_dirs(plan))), repr(plan.plays))
    if any(found.found.values()):
        import_runtime().register_plugins({k: sorted(v) for k, v in found.found.items()})
    return found


# a collection's filter or test as a template calls it: by its fully qualified name (the
# `collections:` keyword does not apply to Jinja2 plugins, in ansible-core either)
_USED_FQCN = re.compile(r"(?:\||\bis\s+(?:not\s+)?)\s*([A-Za-z_]\w*\.[A-Za-z_]\w*\.[A-Za-z_]\w*)\b")
# a collection's lookup as a template calls it: lookup('ns.coll.name', ...), query(...), q(...)
_USED_LOOKUP = re.compile(r"""\b(?:lookup|query|q)\(\s*['"]([A-Za-z_]\w*\.[A-Za-z_]\w*\.[A-Za-z_]\w*)['"]""")
_NOT_COLLECTIONS = ("ansible.builtin.", "ansible.legacy.", "ansible._protomatter.")


@functools.lru_cache(maxsize=1024)
def collection_plugin(dirs: tuple[str, ...], kind: str, name: str) -> str | None:
    """The file of the collection's lookup, filter or test ``name``
    (``community.general.json_query``) as ansible-core finds it (collections_path,
    ANSIBLE_COLLECTIONS_PATH, routing), or None when no installed collection has it or
    ansible-core is not installed."""
    if name.startswith(_NOT_COLLECTIONS) or not ansible_available():
        return None
    path = call(dirs, kind, name, [], {}, {}, where=True).get("path")
    return str(path) if path else None


def with_collections(found: LocalPlugins, text: str) -> LocalPlugins:
    """``found`` plus the collections' lookups, filters and tests that ``text`` (templates)
    calls. A lookup runs on the controller, by ansible-core, as the playbook's own do."""
    names = {n for n in _USED_FQCN.findall(text) if not n.startswith(_NOT_COLLECTIONS)}
    lookups = {n for n in _USED_LOOKUP.findall(text) if not n.startswith(_NOT_COLLECTIONS)}
    if not names and not lookups:
        return found
    merged = {kind: dict(found.found.get(kind, {})) for kind in KINDS}
    wanted = [(kind, name) for name in sorted(names) for kind in ("filter", "test")]
    for kind, name in [*wanted, *(("lookup", n) for n in sorted(lookups))]:
        path = collection_plugin(found.dirs, kind, name)
        if path is not None:
            merged[kind].setdefault(name, path)
    return LocalPlugins(found.dirs, merged)


def collection_module(path: str) -> tuple[str, str] | None:
    """For a collection's plugin file, the module name ansible-core gives it and the prefix of
    its names (``ansible_collections.ns.coll.plugins.filter.words``, ``ns.coll.``); None for
    the playbook's and roles' own files."""
    name = _module_name(path)
    if name is None:
        return None
    ns, coll = name.split(".")[1:3]
    return name, f"{ns}.{coll}."


# what a filter or test file may import to run on the host: the runtime's Python has the
# standard library and the vendored Jinja2 (with MarkupSafe), nothing of Ansible
_HOST_IMPORTS = frozenset(("__future__", "jinja2", "markupsafe"))


@functools.lru_cache(maxsize=256)
def host_import(path: str) -> str | None:
    """The first import of the plugin file ``path`` that the host's runtime cannot satisfy
    (``"from ansible.module_utils.common.network import is_mac"``), or None when the file needs
    only the standard library and Jinja2 (and, for a collection's plugin, its collection's own
    ``module_utils``/``plugin_utils`` files that need no more): it can then run on the host. A
    file that cannot be read or parsed names that instead."""
    return _host_needs(path, _module_name(path))[0]


def support_modules(path: str) -> tuple[tuple[str, str], ...]:
    """The collection's ``module_utils``/``plugin_utils`` files the plugin file ``path`` imports
    (directly or through each other), dependencies first: ``(module name, file)``."""
    return _host_needs(path, _module_name(path))[1]


def _module_name(path: str) -> str | None:
    """The Python module name of a file inside a collection (``ansible_collections.ns.coll.plugins
    .module_utils.helpers``), None outside one."""
    parts = os.path.abspath(path).split(os.sep)
    if "ansible_collections" not in parts:
        return None
    i = len(parts) - 1 - parts[::-1].index("ansible_collections")
    names = parts[i:-1] + ([] if parts[-1] == "__init__.py" else [os.path.splitext(parts[-1])[0]])
    return ".".join(names)


def _collection_file(importer: str, module: str) -> str | None:
    """The file of ``module`` when it is a ``module_utils``/``plugin_utils`` module of the same
    collection as ``importer`` (a file path), else None."""
    parts = os.path.abspath(importer).split(os.sep)
    i = len(parts) - 1 - parts[::-1].index("ansible_collections")
    names = module.split(".")
    if names[:3] != ["ansible_collections", parts[i + 1], parts[i + 2]] or len(names) < 6 or (
            names[3] != "plugins" or names[4] not in ("module_utils", "plugin_utils")):
        return None
    base = os.path.join(os.sep.join(parts[:i]), *names)
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


_VISITING: set[str] = set()  # the helper files being read (a cycle of imports ends there)


@functools.lru_cache(maxsize=256)
def _host_needs(path: str, name: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, ValueError) as exc:
        return f"(the file cannot be read: {exc})", ()
    stdlib = sys.stdlib_module_names
    package = (name if path.endswith("__init__.py") else name.rpartition(".")[0]) if name else ""
    support: list[tuple[str, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots = [(alias.name, f"import {alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = ", ".join(alias.name for alias in node.names)
            absolute = node.module or ""
            if node.level and package:  # relative: inside a collection it has a name
                up = package.split(".")
                base = up[:len(up) - node.level + 1] if node.level > 1 else up
                absolute = ".".join(base + ([node.module] if node.module else []))
            elif node.level:
                absolute = ""
            roots = [(absolute, f"from {module} import {names}")]
        else:
            continue
        for module, text in roots:
            root = module.split(".")[0]
            if root == "ansible_collections" and name:
                found = _collection_file(path, module)
                if found is not None and found in _VISITING:
                    continue  # an import cycle among the collection's helpers: added already
                if found is not None:  # the collection's own helper: embedded when it can run
                    _VISITING.add(found)
                    try:
                        needs, more = _host_needs(found, _module_name(found))
                    finally:
                        _VISITING.discard(found)
                    if needs is not None:
                        return text, ()
                    support += [m for m in (*more, (module, found)) if m not in support]
                    continue
            if not root or (root not in stdlib and root not in _HOST_IMPORTS):
                return text, ()
    return None, tuple(support)


@dataclass(frozen=True)
class HostPlugins:
    """The filter and test plugin files a compiled plan's templates may call: those the host
    runs (embedded, ``plan["plugins"]["files"]``) and those only the controller can run
    (name -> the import the host lacks), whose calls must have been decided at compile time."""

    files: tuple[dict[str, Any], ...] = ()
    controller_only: dict[str, str] = field(default_factory=dict)  # "filter:NAME" -> import


def host_plugins(plugins: LocalPlugins, texts: Iterable[str]) -> HostPlugins:
    """Sort the filter and test plugins named in ``texts`` (the compiled plan and the templates it
    embeds): a file needing only what the runtime has is embedded whole, under the Python module
    name ansible-core gives it (``ansible.plugins.filter.<file>_<number>``); the others stay on
    the controller."""
    import hashlib

    if not plugins.found.get("filter") and not plugins.found.get("test"):
        return HostPlugins()
    joined = "\n".join(texts)
    files: list[dict[str, Any]] = []
    controller_only: dict[str, str] = {}
    for kind in ("filter", "test"):
        by_path: dict[str, list[str]] = {}
        for name, path in sorted(plugins.found.get(kind, {}).items()):
            if re.search(r"\b" + re.escape(name) + r"\b", joined):
                by_path.setdefault(path, []).append(name)
        for path, names in sorted(by_path.items()):
            needs = host_import(path)
            if needs is not None:
                controller_only.update({f"{kind}:{n}": needs for n in names})
                continue
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                source = fh.read()
            stem = os.path.splitext(os.path.basename(path))[0]
            number = int(hashlib.sha256(path.encode()).hexdigest()[:15], 16)
            entry: dict[str, Any] = {"kind": kind, "path": path, "source": source, "names": names,
                                     "module": f"ansible.plugins.{kind}.{stem}_{number}"}
            in_collection = collection_module(path)
            if in_collection is not None:  # its names are fully qualified: ns.coll.NAME
                entry.update(module=in_collection[0], prefix=in_collection[1])
                entry["support"] = [{"module": module, "path": file, "source": _read(file)}
                                    for module, file in support_modules(path)]
            files.append(entry)
    return HostPlugins(tuple(files), controller_only)


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        return fh.read()


def _declared(path: str, method: str) -> list[str]:
    try:
        with open(path, "rb") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, ValueError):
        return []
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == method:
            for inner in ast.walk(node):
                if isinstance(inner, ast.Dict):
                    out += [k.value for k in inner.keys
                            if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return out


def ansible_available() -> bool:
    """Whether the controller's Python can import ansible-core."""
    return importlib.util.find_spec("ansible") is not None


class PluginHostError(Exception):
    """The child process running Ansible's plugins could not answer."""


class _Host:
    def __init__(self, dirs: Sequence[str]):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugin_host.py")
        self.proc = subprocess.Popen(  # noqa: S603 - our own script, the controller's Python
            [sys.executable, "-W", "ignore", script, json.dumps(list(dirs))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8")

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(request, default=str) + "\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        except OSError as exc:
            raise PluginHostError(f"ansible-core's plugin runner stopped: {exc}") from exc
        if not line:
            raise PluginHostError(f"ansible-core's plugin runner exited ({self.proc.wait()})")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


_HOSTS: dict[tuple[str, ...], _Host] = {}


def call(dirs: Iterable[str], kind: str, name: str, args: list[Any], kwargs: dict[str, Any],
         variables: dict[str, Any], with_secrets: bool = False, where: bool = False) -> dict[str, Any]:
    """Ask ansible-core to run plugin ``name`` of ``kind``: ``{"value": ...}`` or ``{"error": msg}``.
    ``with_secrets``: hand it this command's vault secrets (``lookup('unvault')``), on its stdin.
    ``where``: only find it (``{"path": FILE, "module": NAME}``)."""
    key = tuple(dirs)
    host = _HOSTS.get(key)
    if host is None or host.proc.poll() is not None:
        host = _HOSTS[key] = _Host(key)
    request = {"kind": kind, "name": name, "args": args, "kwargs": kwargs, "variables": variables,
               "where": where}
    if with_secrets:
        from ..vault import secrets

        request["secrets"] = [[label, base64.b64encode(pw).decode()] for label, pw in secrets()]
    return host.call(request)


@atexit.register
def _close_all() -> None:
    while _HOSTS:
        _HOSTS.popitem()[1].close()
