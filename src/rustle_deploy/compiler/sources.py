"""Embed what a task reads from the controller's disk: sources, directories, includes, lookups.

Ansible reads these on the controller while the task runs; an artifact runs on the host, so the
compiler finds them now and embeds them (``files/<sha256>``), and the compiled task says which
name stands for which file (docs/artifact.md):

* ``files``: a copy/template/unarchive ``src`` -> sha256. A literal ``src`` is the file
  ``plan.files`` finds. A templated one (``"{{ item }}.j2"``) is every candidate the controller
  can resolve: its value under the variables known now (inventory, play and task variables, each
  static loop item), and every file its shape matches (each ``{{ }}`` a wildcard) in the places a
  literal ``src`` is searched; the host templates ``src`` and picks the matching entry.
* ``trees``: a copy ``src`` that is a directory -> its files and directories (``local_follow``).
* task variable ``__rustle_search`` (templating.SEARCH_VAR): ``lookups`` (each controller
  lookup call's result, compiler/lookups.py), ``templates`` (what a template
  includes, imports or extends, found over Ansible's template search path, and
  ``lookup('template', 'name')``), ``files`` (``lookup('file', 'name')`` over the ``files``
  search path), ``locked`` (such a file that no vault secret of the run opens -> ansible-core's
  words: the lookup fails with them when the host renders it, as ansible-core fails the task
  only when it runs) and ``sources`` (each template's controller path, mtime, owner and mode,
  for ``template_*`` variables and ``ansible_managed``).

A name computed from host data (a registered result, a fact) can only be resolved on the host,
among the files embedded for the task's shape; one with no candidate fails there as Ansible's
"Could not find or access" does.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import re
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import vault
from ..errors import CompileError
from ..model import Plan, Play, Task
from ..plan import files as plan_files
from ..plan import resolve_source
from .lookups import ControllerLookups, record_task, record_template_file

if TYPE_CHECKING:
    from .units import BuildUnit

SEARCH_VAR = "__rustle_search"  # the runtime's templating.SEARCH_VAR
_TEMPLATED = re.compile(r"{{|{%|{#")
_SHAPE = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
# lookup('file', 'a', 'b', lstrip=True): the literal names (group 3), up to the first other argument
_LOOKUP = re.compile(r"""\b(?:lookup|query|q)\(\s*(['"])(?:ansible\.builtin\.)?(template|file)\1"""
                     r"""((?:\s*,\s*(['"])[^'"{}]+\4(?=\s*[,)]))+)""")
_LITERAL = re.compile(r"""(['"])([^'"{}]+)\1""")
MAX_TREE_FILES = 10_000
MAX_INCLUDE_DEPTH = 50


class Embedder:
    """Embeds the files of one build unit's tasks, each file read once per compilation."""

    def __init__(self, plan: Plan, unit: BuildUnit, file_cache: dict[str, tuple[str, str]]):
        self.plan = plan
        self.unit = unit
        self.cache = file_cache
        self.dirs = plan_files.files_dirs_of(plan)

    # -- one file ------------------------------------------------------------------------------
    def digest(self, path: str, task: Task) -> str:
        """The sha256 the file is embedded under. A vault-encrypted one is embedded decrypted
        with the run's vault secrets, as ansible-core's actions read it on the controller
        (copy, script and unarchive unless ``decrypt: false``; templates and lookups always);
        :class:`VaultLocked` when no secret opens it."""
        decrypt = task.short_module not in ("copy", "script", "unarchive") or \
            str(task.args.get("decrypt", True)).lower() not in ("false", "no", "0", "off", "n")
        if path not in self.cache:
            try:
                with open(path, "rb") as fh:
                    digest = hashlib.file_digest(fh, "sha256").hexdigest()
                    fh.seek(0)
                    encrypted = fh.read(len(vault.HEADER)) == vault.HEADER.encode()
            except OSError as exc:
                raise CompileError(f"{self.plan.source}: {task.pointer}/args/src: cannot read {path}: "
                                   f"{exc.strerror}") from exc
            self.cache[path] = (digest, path if not encrypted else vault.HEADER)
        digest, kind = self.cache[path]
        if decrypt and kind == vault.HEADER:
            with open(path, "rb") as fh:
                envelope = fh.read().decode("ascii", "replace")
            try:
                plain = vault.decrypt_bytes(envelope)
            except vault.VaultFailed as exc:
                if exc.locked is None:
                    raise CompileError(f"{path}: {exc.message}", exc.hint) from None
                raise VaultLocked(locked_message(path, exc, task.short_module)) from None
            digest = hashlib.sha256(plain).hexdigest()
            self.unit.blobs[digest] = plain
        self.unit.files[digest] = path
        return digest

    # -- a task --------------------------------------------------------------------------------
    def embed(self, task: Task, module: str, out: dict[str, Any], scopes: list[Any],
              controller: ControllerLookups | None = None) -> None:
        """Fill ``out`` (the compiled task) with what ``task`` reads from the controller;
        ``controller`` (installed by the caller) runs and records its controller lookups."""
        search: dict[str, dict[str, Any]] = {"templates": {}, "files": {}, "sources": {},
                                             "lookups": {}}
        if controller is not None:
            when = [c.value for c in task.conditions if c.kind == "When"]
            if any(_names(w) & runtime_names(self.plan) or _names(w) & {"ansible_facts", "hostvars"}
                   for w in when):
                when = []  # a task may set what it reads while the plan runs: the host decides
            record_task(controller, [task.args, task.extras], _bare_expressions(task, module), scopes,
                        when=when, loop=task.extras.get("loop"))
        src = task.args.get("src")
        try:
            if module == "script":  # the script itself, under its name as written
                path = resolve_source(self.plan, task)
                found = plan_files.script_source(task.args)
                if path is not None and found is not None:
                    try:
                        out.setdefault("files", {})[found[0]] = self.digest(path, task)
                    except VaultLocked as exc:  # the task fails when it runs, in ansible-core's words
                        out.setdefault("vault_locked", {})[found[0]] = str(exc)
            if module in ("copy", "template", "unarchive") and isinstance(src, str) and src:
                if not (module == "unarchive" and task.args.get("remote_src")):
                    self._sources(task, module, src, out, search, scopes)
            self._lookups(task, search)
        except VaultLocked as exc:  # a template's include
            raise CompileError(f"{self.plan.source}: {task.pointer}: {exc}",
                               "pass --vault-password-file FILE, --vault-id or --ask-vault-pass") from None
        if _FIRST_FOUND.search(repr((task.args, task.extras, [c.value for c in task.conditions]))):
            index = first_found_index(self.plan.base_dir, task)
            if index is not None:
                search["first_found"] = index
        if controller is not None:
            if module == "template" and isinstance(src, str) and src and not _TEMPLATED.search(src) \
                    and (out.get("files") or {}).get(src):
                self._template_lookups(controller, self.unit.files[out["files"][src]], scopes)
            search["lookups"] = dict(controller.recorded)
        search = {k: v for k, v in search.items() if v}
        if search:
            out["vars"] = dict(out.get("vars") or {}, **{SEARCH_VAR: search})

    def _sources(self, task: Task, module: str, src: str, out: dict[str, Any],
                 search: dict[str, dict[str, Any]], scopes: list[Any]) -> None:
        kind = "template" if module == "template" else "copy"
        if not _TEMPLATED.search(src):
            path = resolve_source(self.plan, task)
            if path is None:
                return
            found = {src: path}
        else:
            found = self._candidates(src, kind, scopes)
        for name, path in found.items():
            try:
                if os.path.isdir(path):
                    if module == "copy":
                        out.setdefault("trees", {})[name] = self._tree(task, name, path)
                    continue
                out.setdefault("files", {})[name] = self.digest(path, task)
            except VaultLocked as exc:  # the task fails on the host, in ansible-core's words
                out.setdefault("vault_locked", {})[name] = f"Task failed: {exc}"
                continue
            if module == "template":
                self._template(task, name, path, search)
            elif task.args.get("mode") == "preserve":  # copy keeps the controller file's mode
                search["sources"][name] = source_info(path)

    def _candidates(self, src: str, kind: str, scopes: list[Any]) -> dict[str, str]:
        """Every file a templated ``src`` may name that the controller can resolve."""
        found: dict[str, str] = {}
        for value in _static_values(src, scopes):
            for path in plan_files.candidates(value, kind, self.plan.base_dir, self.dirs):
                if plan_files._exists(path, kind):
                    found.setdefault(value, path)
                    break
        shape = _SHAPE.sub("*", src)
        if os.path.isabs(os.path.expanduser(shape)):
            for path in sorted(glob.glob(os.path.expanduser(shape))):
                found.setdefault(path, path)
            return found
        roots = plan_files.candidates("", kind, self.plan.base_dir, self.dirs)  # the search dirs
        for root in roots:
            for path in sorted(glob.glob(os.path.join(root, shape))):
                if plan_files._exists(path, kind):
                    found.setdefault(os.path.relpath(path, root), path)
                    # and as the host may name it: a lookup (first_found) gives the controller's path
                    found.setdefault(os.path.normpath(path), path)
        return found

    def _tree(self, task: Task, name: str, path: str) -> dict[str, Any]:
        """A directory ``src`` of copy: its files and directories, as Ansible's copy walks them
        (``src/`` copies the contents, ``src`` the directory itself)."""
        follow = str(task.args.get("local_follow", True)).lower() not in ("false", "no", "0", "off", "n")
        try:
            return walk_tree(name, path, follow, lambda full: self.digest(full, task))
        except TreeTooLarge as exc:
            raise CompileError(f"{self.plan.source}: {task.pointer}/args/src: {exc}",
                               "copy a smaller directory, or use unarchive") from None

    # -- templates -----------------------------------------------------------------------------
    def _template_roots(self, path: str) -> list[str]:
        """Ansible's template search path: the play's directory, then the template's own, each
        with its ``templates/`` first (the --files-dir ones after the play's directory)."""
        out: list[str] = []
        for root in (self.plan.base_dir, *self.dirs, os.path.dirname(path)):
            for p in (os.path.join(root, "templates"), root):
                if p not in out:
                    out.append(p)
        return out

    def _template(self, task: Task, name: str, path: str, search: dict[str, dict[str, Any]],
                  depth: int = 0) -> None:
        """Record ``path``'s controller facts and embed what it includes, recursively."""
        if depth == 0:
            search["sources"][name] = source_info(path)
        if depth > MAX_INCLUDE_DEPTH:
            raise CompileError(f"{self.plan.source}: {task.pointer}: templates include each other more than "
                               f"{MAX_INCLUDE_DEPTH} levels deep (from {path})",
                               "a template that includes itself never ends; break the cycle")
        roots = self._template_roots(path)
        for ref in plan_files.template_references(path):
            names = [ref] if ref is not None else _all_templates(roots)
            for ref_name in names:
                if ref_name in search["templates"]:
                    continue
                for root in roots:
                    candidate = os.path.join(root, *ref_name.split("/"))
                    if os.path.isfile(candidate):
                        search["templates"][ref_name] = self.digest(candidate, task)
                        self._template(task, ref_name, candidate, search, depth + 1)
                        break

    def _template_lookups(self, controller: ControllerLookups, path: str, scopes: list[Any],
                          seen: set[str] | None = None) -> None:
        """The controller lookups with literal terms in the template file ``path`` and in the
        templates it names literally (include, import, extends), run now: only files the task
        renders for certain (a computed name or src may name any, and must not run them)."""
        seen = set() if seen is None else seen
        if path in seen or len(seen) > MAX_INCLUDE_DEPTH:
            return
        seen.add(path)
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except OSError:
            return  # digest() read it already; a file gone since fails on the host
        record_template_file(controller, text, scopes)
        roots = self._template_roots(path)
        for ref in plan_files.template_references(path):
            if ref is None:
                continue
            found = next((c for c in (os.path.join(root, *ref.split("/")) for root in roots) if os.path.isfile(c)), None)
            if found is not None:
                self._template_lookups(controller, found, scopes, seen)

    def _lookups(self, task: Task, search: dict[str, dict[str, Any]]) -> None:
        """``lookup('template'|'file', 'literal name', ...)`` anywhere in the task."""
        text = repr((task.args, task.extras, [c.value for c in task.conditions]))
        calls = [(m.group(2), n.group(2)) for m in _LOOKUP.finditer(text) for n in _LITERAL.finditer(m.group(3))]
        for kind, name in calls:
            key = "templates" if kind == "template" else "files"
            if name in search[key]:
                continue
            for path in [*_role_candidates(task, name, "files" if kind == "file" else "templates"),
                         *plan_files.candidates(name, "copy" if kind == "file" else "template",
                                                self.plan.base_dir, self.dirs),
                         # an emitted plan read from elsewhere: its playbook's directory
                         *(plan_files.candidates(name, "copy" if kind == "file" else "template",
                                                 self.plan.playbook_dir, ()) if self.plan.playbook_dir else ())]:
                if os.path.isfile(path):
                    if kind == "file":
                        try:
                            search[key][name] = self.digest(path, task)
                        except VaultLocked as exc:  # the lookup fails when the host renders it
                            search.setdefault("locked", {})[name] = str(exc)
                        break
                    search[key][name] = self.digest(path, task)
                    if kind == "template":
                        search["sources"][name] = source_info(path)
                        self._template(task, name, path, search, depth=1)
                    break


_FIRST_FOUND = re.compile(r"""\b(?:lookup|query|q)\(\s*(['"])(?:ansible\.builtin\.)?first_found\1""")
_INDEX_LIMIT = 5000  # paths: more, and the host cannot decide (the lookup fails saying so)
_INDEX_DEPTH = 4  # levels below each root (roles/r/vars/x.yml is 3 below the playbook's directory)


def first_found_index(base_dir: str, task: Task) -> dict[str, Any] | None:
    """What the host needs to run ``first_found`` over terms only it can render (a fact in a
    file name): the controller's files and directories down to ``depth`` levels under the
    task's search path and the plan's directory (``roots``), as absolute paths; the host then
    searches as ansible-core's plugin does, and a candidate elsewhere fails saying the
    controller could not decide it. None when there are more than _INDEX_LIMIT of them."""
    search = (task.extras.get("vars") or {}).get("ansible_search_path")
    roots = [str(p) for p in search] if isinstance(search, list) else []
    roots = [r for r in dict.fromkeys(os.path.normpath(os.path.abspath(r)) for r in [*roots, base_dir])
             if os.path.isdir(r)]
    paths: set[str] = set()
    for root in roots:
        for current, dirs, files in os.walk(root):
            paths.update(os.path.join(current, n) for n in [*dirs, *files])
            level = 0 if current == root else len(os.path.relpath(current, root).split(os.sep))
            if level + 1 >= _INDEX_DEPTH:
                dirs[:] = []
            if len(paths) > _INDEX_LIMIT:
                return None
    return {"base_dir": base_dir, "roots": roots, "depth": _INDEX_DEPTH, "paths": sorted(paths)}


_RUNTIME_NAMES: dict[int, tuple[Plan, frozenset[str]]] = {}


def runtime_names(plan: Plan) -> frozenset[str]:
    """The names a task of ``plan`` may set while it runs: registered results, set_fact and
    include_vars names (a condition reading one is the host's to decide)."""
    known = _RUNTIME_NAMES.get(id(plan))
    if known is not None and known[0] is plan:
        return known[1]
    out: set[str] = set()
    for play in plan.plays:
        for top in [t for batch in play.batches for t in batch.tasks] + list(play.handlers):
            for task in top.walk():
                if task.extras.get("register"):
                    out.add(str(task.extras["register"]))
                if task.short_module == "set_fact":
                    out.update(str(k) for k in task.args)
                if task.short_module == "include_vars":
                    datas = list((task.extras.get("vars_data") or {}).values())
                    datas += [data for _, data in (task.extras.get("vars_dir") or {}).get("files") or ()]
                    out.update(str(k) for data in datas if isinstance(data, dict) for k in data)
                    if task.args.get("name"):
                        out.add(str(task.args["name"]))
    if len(_RUNTIME_NAMES) > 8:
        _RUNTIME_NAMES.clear()
    _RUNTIME_NAMES[id(plan)] = (plan, frozenset(out))
    return frozenset(out)


def _names(condition: Any) -> set[str]:
    """The variables a condition reads (every name, for one that does not parse)."""
    import jinja2
    from jinja2 import meta

    if not isinstance(condition, str):
        return set()
    text = condition if _TEMPLATED.search(condition) else "{{ " + condition + " }}"
    try:
        return set(meta.find_undeclared_variables(jinja2.Environment().parse(text)))
    except jinja2.TemplateSyntaxError:
        return {"\0"}


def _bare_expressions(task: Task, module: str) -> list[str]:
    """The task's expressions written without braces: its conditions, assert's ``that``, debug's ``var``,
    ``changed_when``/``failed_when``/``until`` (a controller lookup there runs at compile time)."""
    out = [str(c.value) for c in task.conditions if c.kind in ("When", "Skip")]
    sources = [task.extras.get(k) for k in ("changed_when", "failed_when", "until")]
    if module == "assert":
        sources.append(task.args.get("that"))
    if module == "debug":  # `var:` is an expression (`var: lookup('x')`)
        sources.append(task.args.get("var"))
    for value in sources:
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str) and not _wholly_templated(text):
                out.append(text)  # templates in its string constants are rendered as values
    return out


def _wholly_templated(text: str) -> bool:
    """A conditional written in braces (``"{{ x == 1 }}"``): templated, not evaluated."""
    text = text.strip()
    return bool(_TEMPLATED.search(text)) and text.startswith(("{{", "{%")) and text.endswith(("}}", "%}"))


def _role_candidates(task: Task, name: str, subdir: str) -> list[str]:
    """Where a role's task finds ``name`` first: its ``ansible_search_path`` (the playbook front
    end sets it for a role's task that calls a lookup), each path's ``subdir`` then itself."""
    paths = (task.extras.get("vars") or {}).get("ansible_search_path")
    if os.path.isabs(os.path.expanduser(name)) or not isinstance(paths, list):
        return []
    nested = name.split("/")[0] != subdir  # Ansible adds no subdir the name already starts with
    return [c for p in map(str, paths)
            for c in ([os.path.join(p, subdir, name)] * nested + [os.path.join(p, name)])]


def static_scopes(host_vars: list[dict[str, Any]], play_vars: dict[str, Any], task: Task,
                  play: Play | None = None, extra_vars: dict[str, Any] | None = None) -> list[Any]:
    """The variable scopes the controller knows for ``task``: one per host and static loop item
    (no facts, no registered results: what needs them is decided on the host). With ``play``,
    its role defaults, and the task's role's defaults, vars and parameters, are layered as the
    runtime layers them (executor ``_task_scope``); ``extra_vars`` above all."""
    from .native import _runtime

    templating, _, _ = _runtime()
    templar = templating.Templar()
    loop = task.extras.get("loop")
    control = task.extras.get("loop_control") or {}
    loop_var = control.get("loop_var", "item") if isinstance(control, dict) else "item"
    role_name = task.extras.get("role")
    role = (play.roles.get(role_name) if play is not None and isinstance(role_name, str) else None) or {}
    params: dict[str, Any] = {}
    if role:
        params.update({k: v for k, v in (("role_name", role.get("name")), ("role_path", role.get("path"))) if v})
        params.update(role.get("params") or {})
    params.update(task.extras.get("params") or {})
    out: list[Any] = []
    for hv in host_vars:
        layers = [play.defaults if play is not None else {}, role.get("defaults") or {}, hv, play_vars or {},
                  role.get("vars") or {}, dict(task.extras.get("vars") or {}), params, extra_vars or {}]
        scope = templating.VarScope([dict(layer) for layer in layers if layer], templar)
        items: Any = None
        if isinstance(loop, list):
            items = loop
        elif isinstance(loop, str):
            try:
                items = templar.template(loop, scope) if templating.is_template(loop) else templar.evaluate(loop, scope)
            except Exception:  # noqa: BLE001 - a loop over host data: its items are the host's
                items = None
        if isinstance(items, list):
            out.extend(scope.child({loop_var: item}) for item in items)
        else:
            out.append(scope)
    return out


def _static_values(src: str, scopes: list[Any]) -> list[str]:
    """``src`` templated under each scope where the controller knows every variable it uses."""
    from .native import _runtime

    templating, _, _ = _runtime()
    templar = templating.Templar()
    out: list[str] = []
    for scope in scopes:
        try:
            value = templar.template(src, scope)
        except Exception:  # noqa: BLE001 - anything the controller cannot decide is the host's
            continue
        if isinstance(value, str) and value and value not in out and not _TEMPLATED.search(value):
            out.append(value)
    return out


def source_info(path: str) -> dict[str, Any]:
    st = os.stat(path)
    try:
        uid: Any = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        uid = st.st_uid
    info: dict[str, Any] = {"fullpath": path, "uid": uid, "host": os.uname()[1],
                            "mode": "0%03o" % (st.st_mode & 0o7777)}
    # The mtime goes in only when the template reads it: otherwise touching a file (a checkout,
    # a copy) would change the artifact's sha and redeploy an unchanged template everywhere.
    with open(path, "rb") as fh:
        if b"template_mtime" in fh.read():
            info["mtime"] = st.st_mtime
    return info


def _all_templates(roots: list[str]) -> list[str]:
    """Every file under the ``templates/`` search directories: the candidates of a computed
    include name."""
    names: list[str] = []
    for root in roots:
        if os.path.basename(root) != "templates" or not os.path.isdir(root):
            continue
        for dirpath, _dirs, filenames in os.walk(root):
            for f in filenames:
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                if rel not in names:
                    names.append(rel)
            if len(names) > MAX_TREE_FILES:
                break
    return names


# the actions that read their source with ansible-core's DataLoader.get_real_file, whose words
# without any secret name the file; templates, include_vars and lookups decrypt the text itself
_REAL_FILE_READERS = ("copy", "script", "unarchive")


def locked_message(path: str, exc: Any, module: str = "copy") -> str:
    """ansible-core's words for a vault-encrypted controller file that no secret of the run
    opens (``exc``: the :class:`vault.VaultFailed`), as ``module`` (the reading task's) words
    them; its actions prefix them with "Task failed: "."""
    from .. import vault

    if not vault.secrets():
        if module in _REAL_FILE_READERS:
            return f"A vault password or secret must be specified to decrypt {path}"
        return "Attempting to decrypt but no vault secrets found."
    return str(exc.locked)


class VaultLocked(Exception):
    """A vault-encrypted file no secret of the run opens (ansible-core's words as the message)."""


class TreeTooLarge(Exception):
    """A directory ``src`` holds more than MAX_TREE_FILES entries."""


def walk_tree(name: str, path: str, follow: bool, digest: Callable[[str], str]) -> dict[str, Any]:
    """A directory copy ``src`` as Ansible's copy action walks it (``_walk_dirs``): ``entries``
    (relative path -> ``digest(file)``, or None for a directory), ``links`` (relative path ->
    target: every link without ``follow``; with it, a link that cannot be followed, broken or to
    itself, and a link to a directory the copy is already in, which would loop) and ``path``;
    ``name`` ending in ``/`` copies the contents, else the directory itself. Used when compiling
    and, for a directory read when the task runs, when the task's phase starts (fleetops)."""
    top = os.path.normpath(path)
    prefix = "" if name.endswith("/") else os.path.basename(top)
    entries: dict[str, Any] = {}
    links: dict[str, str] = {}
    modes: dict[str, str] = {}  # each file's mode, for mode=preserve
    if prefix:
        entries[prefix] = None

    def add(rel: str, full: str) -> None:
        entries[rel] = digest(full)
        modes[rel] = f"0{stat.S_IMODE(os.stat(full).st_mode):03o}"

    def key(where: str) -> tuple[int, int]:
        found = os.stat(where)
        return found.st_dev, found.st_ino

    def walk(folder: str, base: str, parents: frozenset[tuple[int, int]]) -> None:
        for root, dirs, filenames in os.walk(folder):  # links to directories are not entered
            dirs.sort()
            rel_root = os.path.relpath(root, folder)
            for f in sorted(filenames):
                full = os.path.join(root, f)
                rel = os.path.normpath(os.path.join(base, rel_root, f))
                if os.path.islink(full):
                    if follow and os.path.isfile(os.path.realpath(full)):
                        add(rel, os.path.realpath(full))
                    else:
                        links[rel] = os.readlink(full)
                elif os.path.isfile(full):
                    add(rel, full)
            for d in dirs:
                full = os.path.join(root, d)
                rel = os.path.normpath(os.path.join(base, rel_root, d))
                if not os.path.islink(full):
                    entries[rel] = None
                    continue
                real = os.path.realpath(full)
                if not follow or key(real) in parents:
                    links[rel] = os.readlink(full)
                    continue
                # the directories between this one and those the copy is known to be in: a
                # link to one of them is circular, kept as a link (as ansible-core)
                chain = os.path.dirname(full).split(os.sep)
                new: set[tuple[int, int]] = set()
                for n in range(len(chain), 0, -1):
                    step = key(os.sep.join(chain[:n]) or os.sep)
                    if step in parents:
                        break
                    new.add(step)
                if key(real) in new:
                    links[rel] = os.readlink(full)
                else:
                    entries[rel] = None
                    walk(real, rel, parents | new)
            if len(entries) + len(links) > MAX_TREE_FILES:
                raise TreeTooLarge(f"{path} holds more than {MAX_TREE_FILES} entries")

    walk(top, prefix, frozenset({key(top)}))
    full_path = top + "/" if name.endswith("/") else top
    return {"path": full_path, "entries": entries, "links": links, "modes": modes}
