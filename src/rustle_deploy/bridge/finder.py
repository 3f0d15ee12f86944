"""ansible-core's own modules found without starting ansible-core: the common case of a first lookup.

A controller's first lookup of bridged modules used to start ``probe.py``, which imports
ansible-core (its configuration, plugin loader, ``ansible_builtin_runtime.yml``, module_common):
about 1.1 s of CPU before any host was contacted. For the common case (an ``ansible.builtin``
module named plainly, nothing configured) the answer is decided here by reading files, in the
probe's answer shape, so ``lookup.py`` treats both alike:

- where: ``ansible/modules/NAME.py`` of the installed ansible-core, unless the name is routed
  (``plugin_routing.modules`` or ``.action`` of ``ansible_builtin_runtime.yml``: redirects,
  deprecations, tombstones); its action plugin ``ansible/plugins/action/NAME.py``;
- what it carries: AnsiballZ's ``recursive_finder`` (``executor/module_common.py``) done again
  over ``ansible/module_utils`` (``_find_closure``: the same walk of the same import statements,
  the same locator, the same files), with the files AnsiballZ always adds.

Anything else is left to ansible-core (``decide`` returns no entry for it): an ``ANSIBLE_*``
setting or an ansible.cfg (they move paths and defaults), a ``library/``, ``module_utils/`` or
``action_plugins/`` beside the plan or in the configured default places, a ``collections:``
search, a collection's module, a routed name or module_util, a module that is not new-style
Python, an import that cannot be found, another ansible-core than 2.19 (the defaults below are
2.19's). tests/bridge/test_finder.py resolves every module of ``ansible.builtin`` both ways and
compares the answers, embedded files byte for byte.
"""

from __future__ import annotations

import ast
import base64
import importlib.machinery
import importlib.util
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

# Environment settings that change nothing a lookup answers (colours, warnings, ssh, roles)
_HARMLESS_ENV = frozenset({
    "ANSIBLE_NOCOLOR", "ANSIBLE_FORCE_COLOR", "ANSIBLE_HOST_KEY_CHECKING", "ANSIBLE_RETRY_FILES_ENABLED",
    "ANSIBLE_LOCALHOST_WARNING", "ANSIBLE_DEPRECATION_WARNINGS", "ANSIBLE_ROLES_PATH",
})
# what ansible-core 2.19 answers with no configuration (probe.py ``_internal``)
_INTERNAL_2_19: dict[str, Any] = {
    "_ansible_syslog_facility": "LOG_USER",
    "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
    "_ansible_no_target_syslog": False, "_ansible_debug": False, "_ansible_keep_remote_files": False,
    "_ansible_target_log_info": None, "_ansible_tracebacks_for": [],
}
_REPLACER = b"#<<INCLUDE_ANSIBLE_MODULE_COMMON>>"
_MU = ("ansible", "module_utils")
# module_utils AnsiballZ always adds (recursive_finder): its loader, basic, the legacy profile
_ALWAYS = ("ansible.module_utils._internal._ansiballz._loader", "ansible.module_utils.basic",
           "ansible.module_utils._internal._json._profiles._module_legacy_c2m",
           "ansible.module_utils._internal._json._profiles._module_legacy_m2c")

Parts = tuple[str, ...]
Entry = tuple[Parts, bool, bool, bool]  # _ModuleUtilsProcessEntry: name, ambiguous, child redirected, optional


class Undecided(Exception):
    """Something only ansible-core can answer."""


def decide(lookups: Mapping[str, Sequence[Any]], plan_dirs: Sequence[str]) -> dict[str, Any]:
    """The probe's answer (``probe.py``) for the lookups decided here: ``modules`` holds only
    those; empty when this controller's configuration leaves every lookup to ansible-core."""
    ansible = _plain_ansible(plan_dirs)
    if ansible is None:
        return {"modules": {}}
    release = _read(os.path.join(ansible, "release.py")).decode("utf-8", "replace")
    version = _assigned(release, "__version__")
    author = _assigned(release, "__author__")
    if not version.startswith("2.19.") or not author:
        return {"modules": {}}
    routed = _routed(_read(os.path.join(ansible, "config", "ansible_builtin_runtime.yml")).decode("utf-8"))
    home = os.path.expanduser("~")
    answer: dict[str, Any] = {
        "ansible_version": version, "python": sys.executable,
        "module_paths": [os.path.join(home, ".ansible/plugins/modules"), "/usr/share/ansible/plugins/modules",
                         os.path.join(ansible, "modules")],
        "collections_paths": [os.path.join(home, ".ansible/collections"), "/usr/share/ansible/collections"],
        "internal": dict(_INTERNAL_2_19), "modules": {},
    }
    seen: dict[Any, Any] = {}
    for key, (name, collections) in lookups.items():
        try:
            answer["modules"][key] = _module(ansible, version, author, routed, str(name), list(collections), seen)
        except (Undecided, OSError, SyntaxError, ValueError):
            continue
    return answer


def _plain_ansible(plan_dirs: Sequence[str]) -> str | None:
    """ansible-core's directory when nothing configures it (else None); not imported."""
    if any(k.startswith("ANSIBLE_") and k not in _HARMLESS_ENV for k in os.environ):
        return None
    home = os.path.expanduser("~")
    places = [os.path.join(os.getcwd(), "ansible.cfg"), os.path.join(home, ".ansible.cfg"), "/etc/ansible/ansible.cfg"]
    for top in (os.path.join(home, ".ansible", "plugins"), "/usr/share/ansible/plugins"):
        places += [os.path.join(top, sub) for sub in ("modules", "module_utils", "action")]
    for directory in plan_dirs:
        places += [os.path.join(directory, sub) for sub in ("library", "module_utils", "action_plugins")]
    if any(os.path.exists(p) for p in places):
        return None
    try:
        spec = importlib.util.find_spec("ansible")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith("__init__.py"):
        return None
    return os.path.dirname(spec.origin)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _assigned(source: str, name: str) -> str:
    found = re.search(rf"^{name} = '([^'\\]*)'$", source, re.M)
    return found.group(1) if found else ""


def _routed(runtime_yml: str) -> dict[str, set[str]]:
    """The names under ``plugin_routing.modules``, ``.module_utils`` and ``.action``, read from the
    file's block layout (two spaces per level, as ansible-core ships it); a line it does not
    expect there makes the whole file undecided."""
    out: dict[str, set[str]] = {"modules": set(), "module_utils": set(), "action": set()}
    section: str | None = None
    inside = False
    for line in runtime_yml.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            inside = stripped == "plugin_routing:"
            section = None
            continue
        if not inside:
            continue
        if indent == 2:
            if not re.fullmatch(r"[a-z_]+:", stripped):
                raise ValueError("ansible_builtin_runtime.yml: unexpected layout")
            section = stripped[:-1] if stripped[:-1] in out else None
        elif indent == 4 and section is not None:
            key = re.fullmatch(r"([A-Za-z0-9_.]+):", stripped)
            if key is None:
                raise ValueError("ansible_builtin_runtime.yml: unexpected layout")
            out[section].add(key.group(1))
    return out


def _module(ansible: str, version: str, author: str, routed: dict[str, set[str]], name: str,
            collections: list[str], seen: dict[Any, Any]) -> dict[str, Any]:
    if collections:
        raise Undecided("a collections: search")
    short = name
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if name.startswith(prefix):
            short = name[len(prefix):]
    if not re.fullmatch(r"[a-z][a-z0-9_]*", short) or short in routed["modules"] or short in routed["action"]:
        raise Undecided(name)
    path = os.path.join(ansible, "modules", short + ".py")
    data = _read(path)
    from .lookup import module_style

    if module_style(data) != "new":
        raise Undecided("not a new-style module")
    data = data.replace(_REPLACER, b"from ansible.module_utils.basic import *")
    fqn = "ansible.modules." + short
    files = _find_closure(ansible, version, author, routed["module_utils"], fqn, data, seen)
    files[f"ansible/modules/{short}.py"] = data
    files["ansible/modules/__init__.py"] = b""
    action = os.path.join(ansible, "plugins", "action", short + ".py")
    return {
        "found": True, "fqcn": "ansible.builtin." + short, "path": path, "style": "new",
        "action": "ansible.builtin." + short if os.path.isfile(action) else None,
        "redirects": [name], "collection": "ansible.builtin", "deprecated": False, "deprecation": [],
        "module_fqn": fqn, "profile": "legacy",
        "files": {n: base64.b64encode(d).decode() for n, d in files.items()},
    }


def _scan(name: str, source: bytes, is_package: bool, seen: dict[Any, Any]) -> tuple[set[Parts], set[Parts]]:
    """``_imports`` of one file, once per ``decide`` (modules share most of their module_utils)."""
    key = (name, source, is_package)
    if key not in seen:
        seen[key] = _imports(name, ast.parse(source, name), is_package)
    return seen[key]  # type: ignore[no-any-return]


def _find_closure(ansible: str, version: str, author: str, routed_utils: set[str], fqn: str, data: bytes,
                  seen: dict[Any, Any]) -> dict[str, bytes]:
    """``recursive_finder``: every module_utils file the module imports, by its zip name."""
    cache: dict[Parts, tuple[bytes, str]] = {
        ("ansible",): (b"from pkgutil import extend_path\n__path__=extend_path(__path__,__name__)\n"
                       b'__version__="' + version.encode() + b'"\n__author__="' + author.encode() + b'"\n',
                       "ansible/__init__.py"),
        _MU: (b"from pkgutil import extend_path\n__path__=extend_path(__path__,__name__)\n",
              "ansible/module_utils/__init__.py"),
    }
    mu_paths = [os.path.join(ansible, "module_utils")]
    submodules, optional = _scan(fqn, data, False, seen)
    todo: list[Entry] = [(m, True, False, m in optional) for m in submodules]
    for always in _ALWAYS:
        if not os.path.isfile(os.path.join(ansible, *always.split(".")[1:]) + ".py"):
            raise Undecided(always)
        todo.append((tuple(always.split(".")), False, False, False))
    while todo:
        todo.sort()
        parts, ambiguous, _child_redirected, is_optional = todo.pop(0)
        if parts in cache:
            continue
        if parts[0:2] != _MU:
            if parts[0] == "ansible_collections":
                raise Undecided("a collection's module_utils")
            continue  # ansible-core warns about it and goes on
        found = _locate(parts, ambiguous, mu_paths, routed_utils)
        if found is None:
            if is_optional:
                continue
            raise Undecided("an import ansible-core would report")
        fq, source, output, is_package = found
        if fq in cache:
            continue
        subs, opt = _scan(".".join(fq), source, is_package, seen)
        todo += [(m, True, False, m in opt) for m in subs if m not in cache]
        cache[fq] = (source, output)
        for i in range(1, len(fq)):
            if fq[:i] not in cache:
                todo.append((fq[:i], False, False, is_optional))
    return {output: source for source, output in cache.values()}


def _locate(parts: Parts, ambiguous: bool, mu_paths: list[str],
            routed_utils: set[str]) -> tuple[Parts, bytes, str, bool] | None:
    """``LegacyModuleUtilLocator``: (name found, source, zip name, is a package), or None."""
    if ambiguous and len(parts[2:]) > 1:
        candidates = [parts, parts[:-1]]
    else:
        candidates = [parts]
    if len(parts) > 2 and parts[2] == "six":
        candidates = [("ansible", "module_utils", "six")]
    for candidate in candidates:
        rel = candidate[2:]
        paths = mu_paths if len(rel) == 1 else [os.path.join(p, *rel[:-1]) for p in mu_paths]
        info = importlib.machinery.PathFinder.find_spec(".".join(candidate), paths)
        if info is not None and info.origin is not None and \
                os.path.splitext(info.origin)[1] in importlib.machinery.SOURCE_SUFFIXES:
            is_package = info.origin.endswith("/__init__.py")
            output = os.path.join(*candidate, *(("__init__",) if is_package else ())) + ".py"
            return candidate, _read(info.origin), output, is_package
        if rel and ".".join(rel) in routed_utils:
            raise Undecided("a routed module_util")
    return None


def _imports(module_fqn: str, tree: ast.Module, is_pkg_init: bool) -> tuple[set[Parts], set[Parts]]:
    """``ModuleDepFinder``: the module_utils names a module imports, and which of those are
    optional (not at the module's top level)."""
    submodules: set[Parts] = set()
    optional: set[Parts] = set()

    def visit(node: ast.AST) -> None:
        for _field, value in ast.iter_fields(node):
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.Import):
                        import_(item, node)
                    elif isinstance(item, ast.ImportFrom):
                        import_from(item, node)
                    elif isinstance(item, ast.AST):
                        visit(item)

    def import_(node: ast.Import, parent: ast.AST) -> None:
        for alias in node.names:
            if alias.name.startswith(("ansible.module_utils.", "ansible_collections.")):
                py_mod = tuple(alias.name.split("."))
                submodules.add(py_mod)
                if parent is not tree:
                    optional.add(py_mod)
        visit(node)

    def import_from(node: ast.ImportFrom, parent: ast.AST) -> None:
        if node.level > 0:
            offset = (-node.level + 1 or None) if is_pkg_init else -node.level
            if module_fqn:
                parts = tuple(module_fqn.split("."))
                node_module: str | None = ".".join(parts[:offset] + ((node.module,) if node.module else ()))
            else:
                node_module = node.module
        else:
            node_module = node.module
        py_mod: Parts | None = None
        if node.names[0].name == "_six":
            submodules.add(("_six",))
        elif (node_module or "").startswith("ansible.module_utils"):
            py_mod = tuple((node_module or "").split("."))
        elif (node_module or "").startswith("ansible_collections."):
            if (node_module or "").endswith("plugins.module_utils") or ".plugins.module_utils." in (node_module or ""):
                py_mod = tuple((node_module or "").split("."))
        if py_mod:
            for alias in node.names:
                submodules.add(py_mod + (alias.name,))
                if parent is not tree:
                    optional.add(py_mod + (alias.name,))
        visit(node)

    visit(tree)
    return submodules, optional
