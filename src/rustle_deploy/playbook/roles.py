"""Roles on disk: where Ansible finds them, and what their directories hold.

A role name is looked up, first hit wins, in ``roles/`` beside the playbook, each directory of
``roles_path`` (ansible.cfg / ``ANSIBLE_ROLES_PATH``, else ``~/.ansible/roles``,
``/usr/share/ansible/roles``, ``/etc/ansible/roles``), the directory of the role that depends
on it (for ``meta/main.yml`` dependencies), and the playbook's directory itself; a name with
a ``/`` is a path (relative to the playbook's directory).

A role of a collection, as Ansible's ``RoleDefinition._load_role_path`` finds it: a fully
qualified name (``namespace.collection.role``) is first looked for as ``roles/ROLE`` of that
collection, and a short name in each collection of the ``collections`` keyword in effect (the
play's, the task's for ``include_role``, the depending role's for a dependency); the first
collection root that holds ``namespace/collection`` is that collection's: ``collections/``
beside the playbook, then ``collections_path`` (ansible.cfg, ``ANSIBLE_COLLECTIONS_PATH``; by
default ``~/.ansible/collections``, ``/usr/share/ansible/collections``), then the Python
path's ``site-packages`` (where the ``ansible`` package installs its collections). When no
collection holds it, the roles directories are searched (ansible-core 2.19 always falls back). A
collection's role searches its own collection first for its modules' short names, then its
``meta/main.yml`` collections, then ``ansible.builtin`` (not ``library/``).

A role directory's ``tasks/``, ``handlers/``, ``defaults/`` and ``vars/`` each hold
``main.yml`` (or ``main.yaml``, ``main.json``, ``main``, or a ``main/`` directory of files read
in sorted order), or the file ``tasks_from``/``handlers_from``/``vars_from``/``defaults_from``
names; ``meta/main.yml`` holds ``dependencies`` and ``allow_duplicates``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from rustle_deploy.errors import MissingInclude, PlaybookError
from rustle_deploy.playbook.keywords import suggest
from rustle_deploy.playbook.yamlsrc import Origin, Source, read_yaml

__all__ = ["DEFAULT_COLLECTIONS_PATH", "DEFAULT_ROLES_PATH", "RoleDir", "RoleFinder", "display_path",
           "collection_roots"]

DEFAULT_ROLES_PATH = ("~/.ansible/roles", "/usr/share/ansible/roles", "/etc/ansible/roles")
DEFAULT_COLLECTIONS_PATH = ("~/.ansible/collections", "/usr/share/ansible/collections")
_EXTS = ("", ".yml", ".yaml", ".json")
_FQCR = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)$")
_SYNTHETIC = ("ansible.builtin", "ansible.legacy")


def collection_roots(playbook_dir: str, configured: tuple[str, ...]) -> tuple[str, ...]:
    """The ``ansible_collections`` directories Ansible's collection finder searches, in order:
    beside the playbook, the configured paths, then the Python path's site-packages."""
    out: list[str] = []
    for p in [os.path.join(playbook_dir, "collections"), *configured,
              *(p for p in sys.path if p.endswith("-packages"))]:
        p = os.path.abspath(os.path.expanduser(p))
        out.append(p if os.path.basename(p) == "ansible_collections" else os.path.join(p, "ansible_collections"))
    return tuple(dict.fromkeys(out))


def display_path(path: str) -> str:
    """``path`` relative to the working directory when it is below it, else absolute."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _path_role_name(name: str, path: str) -> str:
    """A role's name as ansible-core 2.19 gives it: a name found under a search path (the
    playbook's directory; an absolute path always is) stays as written, path and all (its
    tasks show as ``/srv/roles/web : task``); one with ``~`` is its directory's name."""
    return os.path.basename(path) if name.startswith("~") else name


@dataclass
class RoleDir:
    """One role directory, read once per compilation."""

    name: str
    path: str
    meta: Source | None = None
    dependencies: list[Any] = field(default_factory=list)
    allow_duplicates: bool = False
    argument_specs: bool = False
    collection: str | None = None  # the collection holding it (namespace.collection), if any
    _files: dict[tuple[str, str], Source | None] = field(default_factory=dict)

    def file(self, subdir: str, name: str = "main") -> str | None:
        """The file a role section reads (``tasks``, ``main``), or None when there is none."""
        base = os.path.join(self.path, subdir, name)
        for ext in _EXTS:
            if os.path.isfile(base + ext):
                return base + ext
        return None

    def source(self, subdir: str, name: str = "main") -> Source | None:
        """The parsed file of a section, or None when the role has none."""
        key = (subdir, name)
        if key not in self._files:
            path = self.file(subdir, name)
            self._files[key] = (read_yaml(path, shown=display_path(path), what=f"role {subdir} file")
                                if path else None)
        return self._files[key]

    def variables(self, subdir: str, name: str = "main") -> dict[str, Any]:
        """``defaults/`` or ``vars/``: a mapping, from one file or a ``main/`` directory."""
        out: dict[str, Any] = {}
        folder = os.path.join(self.path, subdir, name)
        sources: list[Source] = []
        if os.path.isdir(folder) and self.file(subdir, name) is None:
            for entry in sorted(os.listdir(folder)):
                full = os.path.join(folder, entry)
                if entry.startswith(".") or not os.path.isfile(full):
                    continue
                if os.path.splitext(entry)[1] not in _EXTS:
                    continue
                sources.append(read_yaml(full, shown=display_path(full), what="role vars file"))
        else:
            src = self.source(subdir, name)
            if src is not None:
                sources.append(src)
        for src in sources:
            if src.data is None:
                continue
            if not isinstance(src.data, dict):
                raise src.error(f"a role's {subdir} file must be a mapping of variable names to "
                                f"values, not a {type(src.data).__name__}", None, src.data)
            out.update({str(k): v for k, v in src.data.items()})
        return out


class RoleFinder:
    """Finds role directories by name and reads each once."""

    def __init__(self, basedir: str, roles_path: tuple[str, ...],
                 collections_path: tuple[str, ...] = DEFAULT_COLLECTIONS_PATH) -> None:
        self.basedir = basedir
        self.roles_path = tuple(os.path.abspath(os.path.expanduser(p)) for p in roles_path)
        self.collection_roots = collection_roots(basedir, collections_path)
        self._cache: dict[str, RoleDir] = {}

    def collection_dir(self, collection: str) -> str | None:
        """Where ``namespace.collection`` lives: the first root that holds it."""
        ns, _, coll = collection.partition(".")
        for root in self.collection_roots:
            path = os.path.join(root, ns, coll)
            if os.path.isdir(path):
                return path
        return None

    def in_collections(self, name: str, collections: tuple[str, ...]) -> RoleDir | None:
        """The role ``name`` names in a collection: its FQCN's, else the first of ``collections``
        (the search list in effect) that has it."""
        match = _FQCR.match(name)
        search = [f"{match[1]}.{match[2]}"] if match else [c for c in collections if c not in _SYNTHETIC]
        resource = match[3] if match else name
        for coll in search:
            top = self.collection_dir(coll)
            path = os.path.join(top, "roles", resource) if top else None
            if path and os.path.isdir(path):
                return self._load(f"{coll}.{resource}", path, collection=coll)
        return None

    def search_dirs(self, role_basedir: str | None, playbook_dir: str | None = None) -> list[str]:
        base = playbook_dir or self.basedir
        dirs = [os.path.join(base, "roles"), *self.roles_path]
        if role_basedir:
            dirs.append(role_basedir)
        dirs.append(base)
        return dirs

    def find(self, name: str, origin: Origin, role_basedir: str | None = None,
             playbook_dir: str | None = None, collections: tuple[str, ...] = ()) -> RoleDir:
        """The role directory ``name`` refers to; PlaybookError naming every place tried.

        ``playbook_dir``: the directory of the playbook file the play is in (an imported
        playbook finds roles beside itself, as in Ansible); ``collections``: the collection
        search list in effect, its default (``ansible.legacy`` or ``ansible.builtin``) included."""
        if not isinstance(name, str) or not name.strip():
            raise origin.error("a role needs a name", "write - role: NAME")
        name = name.strip()
        if "{{" in name or "{%" in name:
            raise origin.error(f"the role name {name!r} is a template: role names must be "
                               "known when the playbook is compiled",
                               "write the role's name literally")
        tried: list[str] = []
        if name.startswith("~"):
            candidates = [os.path.expanduser(name)]
        else:
            if "/" not in name and (collections or _FQCR.match(name)):
                found = self.in_collections(name, collections)
                if found is not None:
                    return found
            # a name with a path in it too is looked for under each search path first (ansible-core's
            # "nested/role" beside the playbook, in roles_path, beside the including role)
            candidates = [os.path.join(d, name) for d in self.search_dirs(role_basedir, playbook_dir)]
        for path in candidates:
            path = os.path.normpath(path)
            tried.append(path)
            if os.path.isdir(path) and (os.path.isdir(os.path.join(path, "tasks"))
                                        or os.path.isdir(os.path.join(path, "meta"))
                                        or os.path.isdir(os.path.join(path, "handlers"))
                                        or os.path.isdir(os.path.join(path, "defaults"))
                                        or os.path.isdir(os.path.join(path, "vars"))):
                return self._load(_path_role_name(name, path), path)
            if os.path.isdir(path) and "/" in name:
                return self._load(_path_role_name(name, path), path)
        known = self._known(self.search_dirs(role_basedir, playbook_dir))
        close = suggest(name, known)
        hint = f"did you mean '{close}'? " if close else ""
        hint += "roles are looked up in: " + ", ".join(display_path(t) for t in
                                                     dict.fromkeys(os.path.dirname(t) for t in tried))
        match = _FQCR.match(name)
        if match:
            hint += (f"; and as a role of the collection {match[1]}.{match[2]} in: "
                     + ", ".join(display_path(r) for r in self.collection_roots))
        exc = MissingInclude(f"the role '{name}' was not found", hint, file=origin.file, line=origin.line,
                             column=origin.column, source_line=origin.text)
        exc.reason = f"the role '{name}' was not found in " + ":".join(
            dict.fromkeys(os.path.dirname(t) for t in tried))  # as ansible-core says it, when included
        raise exc

    def _known(self, dirs: list[str]) -> list[str]:
        names: list[str] = []
        for d in dirs:
            try:
                names.extend(e for e in os.listdir(d) if os.path.isdir(os.path.join(d, e)))
            except OSError:
                continue
        return names

    def _load(self, name: str, path: str, collection: str | None = None) -> RoleDir:
        real = os.path.realpath(path)
        if real in self._cache:
            return self._cache[real]
        role = RoleDir(name=name, path=path, collection=collection)
        meta = role.source("meta")
        role.meta = meta
        if meta is not None and meta.data is not None:
            if not isinstance(meta.data, dict):
                raise meta.error("meta/main.yml must be a mapping", "e.g. dependencies: [common]",
                                 meta.data)
            deps = meta.data.get("dependencies") or []
            if not isinstance(deps, list):
                raise meta.error("dependencies must be a list of roles", "e.g. dependencies: "
                                 "[common, {role: web, port: 80}]", meta.data, "dependencies",
                                 value=True)
            role.dependencies = deps
            role.allow_duplicates = bool(meta.data.get("allow_duplicates", False))
            role.argument_specs = "argument_specs" in meta.data
        if role.file("meta", "argument_specs") is not None:
            role.argument_specs = True
        self._cache[real] = role
        return role


def role_error(role: RoleDir, message: str, hint: str | None = None) -> PlaybookError:
    return PlaybookError(message, hint, file=display_path(role.path))
