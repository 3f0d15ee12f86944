"""``group_vars/`` and ``host_vars/`` beside an inventory, and Ansible's variable precedence.

Files are found as Ansible's ``host_group_vars`` plugin finds them: ``group_vars/NAME`` (a
directory, read recursively in sorted order, skipping hidden and ``~`` files and files with
other extensions), else ``NAME``, ``NAME.yml``, ``NAME.yaml`` or ``NAME.json``; the first that
exists wins. Later files override earlier ones key by key (Ansible's default
``hash_behaviour=replace``).

A host's variables are merged in Ansible's default ``VARIABLE_PRECEDENCE`` order:
``all`` inline vars < other groups' inline vars < ``group_vars/all`` < other groups'
``group_vars`` < the host's inline vars < ``host_vars/HOST``, groups ordered by depth (distance
from ``all``), then ``ansible_group_priority``, then name.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory.data import GroupData, HostData, InventoryData
from rustle_deploy.inventory.yaml_json import load_data

__all__ = ["VarsFiles", "sort_groups", "host_vars", "INTERNAL_VARS"]

_EXTENSIONS = (".yml", ".yaml", ".json")

# Variables ansible-inventory leaves out of its output (ansible.constants.INTERNAL_STATIC_VARS).
INTERNAL_VARS = frozenset({
    "ansible_async_path", "ansible_collection_name", "ansible_config_file",
    "ansible_dependent_role_names", "ansible_diff_mode", "ansible_facts", "ansible_forks",
    "ansible_inventory_sources", "ansible_limit", "ansible_play_batch", "ansible_play_hosts",
    "ansible_play_hosts_all", "ansible_play_role_names", "ansible_playbook_python",
    "ansible_role_name", "ansible_role_names", "ansible_run_tags", "ansible_skip_tags",
    "ansible_verbosity", "ansible_version", "inventory_dir", "inventory_file",
    "inventory_hostname", "inventory_hostname_short", "groups", "group_names", "hostvars",
    "playbook_dir", "play_hosts", "role_name", "role_names", "role_path", "role_uuid",
})


def sort_groups(groups: Iterable[GroupData]) -> list[GroupData]:
    """Ansible's precedence order of groups: depth, then priority, then name."""
    return sorted(groups, key=lambda g: (g.depth, g.priority, g.name))


class VarsFiles:
    """The ``group_vars``/``host_vars`` beside the inventory sources (one directory per source,
    in source order, as Ansible's ``host_group_vars`` plugin reads them), read once each.

    The methods that merge them fill ``origins`` (name -> where the winning value was written,
    ``/abs/file.yml:LINE:COLUMN`` or a JSON file's path) when given one."""

    def __init__(self, basedir: str | None | Sequence[str]) -> None:
        given = [] if basedir is None else [basedir] if isinstance(basedir, str) else list(basedir)
        self.basedirs = [os.path.realpath(b) for b in given]
        self._cache: dict[tuple[int, str, str], tuple[dict[str, Any], dict[str, str]]] = {}
        self.files_read: list[str] = []

    def group(self, name: str, origins: dict[str, str] | None = None) -> dict[str, Any]:
        return self.groups([name], origins)

    def groups(self, names: Sequence[str], origins: dict[str, str] | None = None) -> dict[str, Any]:
        """The ``group_vars`` of ``names`` (lowest precedence first) merged as Ansible merges
        them: source by source, and within one source group by group; a later source's file
        wins over an earlier source's, whatever the groups' order."""
        merged: dict[str, Any] = {}
        for i in range(len(self.basedirs)):
            for name in names:
                merge(merged, origins, *self._vars(i, "group_vars", name))
        return merged

    def host(self, name: str, origins: dict[str, str] | None = None) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for i in range(len(self.basedirs)):
            merge(merged, origins, *self._vars(i, "host_vars", name))
        return merged

    def _vars(self, index: int, subdir: str, name: str) -> tuple[dict[str, Any], dict[str, str]]:
        key = (index, subdir, name)
        if key not in self._cache:
            data: dict[str, Any] = {}
            origins: dict[str, str] = {}
            if name and not name.startswith(os.path.sep):
                top = os.path.join(self.basedirs[index], subdir)
                if os.path.isdir(top):
                    for found in find_vars_files(top, name):
                        merge(data, origins, *_load_vars_file(found))
                        self.files_read.append(found)
            self._cache[key] = (data, origins)
        return self._cache[key]


def merge(merged: dict[str, Any], origins: dict[str, str] | None, values: dict[str, Any],
          where: dict[str, str]) -> None:
    """``merged.update(values)``, and ``origins`` follows: each name's origin is that of the
    value that won (``where``), or none."""
    merged.update(values)
    if origins is not None:
        for name in values:
            if name in where:
                origins[name] = where[name]
            else:
                origins.pop(name, None)


def find_vars_files(path: str, name: str) -> list[str]:
    """Files for entity ``name`` under ``path``, in the order Ansible reads them."""
    base = os.path.join(path, name)
    for ext in ("", *_EXTENSIONS):
        full = base + ext
        if os.path.exists(full):
            if os.path.isdir(full):
                return _dir_vars_files(full)
            return [full]
    return []


def _dir_vars_files(path: str) -> list[str]:
    found: list[str] = []
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry.endswith("~"):
            continue
        ext = os.path.splitext(entry)[1]
        full = os.path.join(path, entry)
        if os.path.isdir(full) and not ext:
            found.extend(_dir_vars_files(full))
        elif os.path.isfile(full) and (not ext or ext in _EXTENSIONS):
            found.append(full)
    return found


def _load_vars_file(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    loaded = load_data(path)
    data = loaded.data
    if not data:
        return {}, {}
    if not isinstance(data, dict):
        raise InventoryError(
            f"variables file holds a {type(data).__name__}, not a mapping",
            "a group_vars/host_vars file is a YAML mapping of variable names to values",
            file=path, line=1,
        )
    values = {str(k): v for k, v in data.items()}
    origins = {str(k): o for k in data if (o := loaded.origin(data, k)) is not None}
    return values, origins


def host_vars(inv: InventoryData, host: HostData, files: VarsFiles,
              playbook: VarsFiles | None = None,
              origins: dict[str, str] | None = None) -> dict[str, Any]:
    """The variables of ``host`` after Ansible's precedence rules, internal ones removed;
    ``origins`` (when given) gets where each was written, as far as known.

    ``playbook``: the ``group_vars/``/``host_vars/`` beside the playbook, each level just
    above its inventory counterpart (group_vars/all, group_vars/*, host_vars/*).
    """
    all_group = inv.groups["all"]
    groups = sort_groups(g for g in host.groups if g.name != "all")
    merged: dict[str, Any] = {}
    merge(merged, origins, all_group.vars, all_group.origins)
    for g in groups:
        merge(merged, origins, g.vars, g.origins)
    names = [g.name for g in groups]
    merged.update(files.group("all", origins))
    if playbook is not None:
        merged.update(playbook.group("all", origins))
    merged.update(files.groups(names, origins))
    if playbook is not None:
        merged.update(playbook.groups(names, origins))
    merge(merged, origins, host.vars, host.origins)
    merged.update(files.host(host.name, origins))
    if playbook is not None:
        merged.update(playbook.host(host.name, origins))
    for name in INTERNAL_VARS.intersection(merged):
        del merged[name]
        if origins is not None:
            origins.pop(name, None)
    return merged
