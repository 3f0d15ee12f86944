"""Inventories, read exactly as Ansible reads them: INI, YAML, JSON and executable scripts.

Public API (everything else in this package is internal)::

    load_inventory(path) -> Inventory       a file, a directory of inventory files, a host
                                            list, or a list of these (repeated -i), merged
    inventory_sources(value) / absolute_sources(sources)
                                            the sources a record keeps; as ansible names them
    implicit_localhost() -> Inventory       what Ansible uses when no inventory is given
    Inventory.hosts / .groups               hosts with fully merged vars; groups
    Inventory.select(pattern)               --limit / play ``hosts:`` pattern semantics
    Inventory.resolve(names)                plan host (or group) names -> hosts, or an error
    Inventory.with_playbook_dir(path)       the same inventory plus the group_vars/host_vars
                                            beside a playbook, at Ansible's precedence
    Inventory.to_ansible_list()             the JSON ``ansible-inventory -i FILE --list`` prints
    Inventory.to_ansible_json()             ... as text, byte for byte (without the final newline)
    check_remote_dirs(hosts, source)        refuse hosts whose rustle_remote_dir cannot be used

Modules: ``ranges`` (host names with ``[a:b]`` ranges and ports), ``data`` (the mutable
structure the parsers fill, with Ansible's group-depth and reconcile rules), ``ini``,
``yaml_json`` (the loader and the YAML inventory format), ``script`` (``--list``), ``vars``
(``group_vars/``/``host_vars/`` and the precedence merge), ``patterns`` (host patterns).
Imports: errors, model <- ranges <- data <- yaml_json <- ini, script, vars; ranges <- patterns.

Which parser reads a file follows Ansible's plugin order: an executable file is run as a
script; ``.yml``/``.yaml``/``.json`` and extension-less files are tried as YAML; anything but
``.toml`` is tried as INI; the first that succeeds wins. Two deliberate differences: an
executable with a ``#!`` line is only ever a script (Ansible falls back to reading a failed
script as INI, which accepts most scripts as a list of odd host names), and where Ansible only
warns that it could not parse a source (going on with an empty inventory) this raises
InventoryError with the file, the line and a hint.

Variables ``ansible-inventory`` leaves out (``inventory_hostname``, ``group_names``,
``inventory_dir``...) are not in ``Host.vars`` either; derive them from ``Host.name``,
``Host.groups``, ``Host.inventory_file`` and ``Host.inventory_dir`` (``model.own_vars``). Host.vars values may share nested objects between hosts:
treat them as read-only.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory.data import LOCALHOST_NAMES, DataError, InventoryData
from rustle_deploy.inventory.patterns import PatternError, evaluate
from rustle_deploy.inventory.ranges import RangeError, parse_address
from rustle_deploy.model import DEFAULT_REMOTE_DIR, Host, Unsafe, remote_dir_problem

# The parsers (ini, script, yaml_json, vars) are imported by what reads a source: a deployment
# served by the run cache (runcache.py) reads none, and needs only the helpers below.
if TYPE_CHECKING:
    from rustle_deploy.inventory.vars import VarsFiles
    from rustle_deploy.inventory.yaml_json import Loaded

__all__ = ["Inventory", "Group", "load_inventory", "implicit_localhost", "check_remote_dirs",
           "inventory_sources", "absolute_sources"]

# What Ansible skips when it reads a directory of inventory sources.
_IGNORED_NAMES = ("host_vars", "group_vars", "vars_plugins")
_IGNORED_EXTS = (".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst",
                 ".orig", ".cfg", ".retry")
_YAML_EXTS = (".yml", ".yaml", ".json")


@dataclass(frozen=True)
class Group:
    """An inventory group: its direct hosts and child groups, and its own variables.

    ``vars`` are the group's inline variables with its ``group_vars/`` files applied on top.
    ``depth`` and ``priority`` order groups in variable precedence.
    """

    name: str
    hosts: tuple[str, ...] = ()
    children: tuple[str, ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    parents: tuple[str, ...] = ()
    depth: int = 0
    priority: int = 1


class Inventory:
    """Hosts and groups of the inventory sources, with Ansible's semantics."""

    def __init__(
        self,
        source: str,
        hosts: dict[str, Host],
        groups: dict[str, Group],
        *,
        group_hosts: dict[str, list[str]],
        localhost_factory: Any,
        implicit: Iterable[str] = (),
        warnings: Iterable[str] = (),
        rebuild: Any = None,
        change: Any = None,
        sources: tuple[str, ...] = (),
    ) -> None:
        self.source = source  # for messages: the sources, comma-separated
        self.sources = sources  # as given (-i), in order; none for the implicit localhost
        self._rebuild = rebuild
        self._change = change
        self.hosts = hosts
        self.groups = groups
        self.warnings = list(warnings)
        self._group_hosts = group_hosts
        self._implicit: dict[str, Host] = {n: hosts[n] for n in implicit}
        self._localhost_factory = localhost_factory

    def __repr__(self) -> str:
        return f"Inventory({self.source!r}, {len(self.hosts)} hosts, {len(self.groups)} groups)"

    def with_playbook_dir(self, path: str) -> Inventory:
        """This inventory with the ``group_vars/``/``host_vars/`` of a playbook's directory.

        Ansible reads them beside the (first) playbook as well as beside the inventory; the
        playbook's files sit just above the inventory's at each level. The same inventory
        when ``path`` holds neither directory.
        """
        if self._rebuild is None or not any(
            os.path.isdir(os.path.join(path, d)) for d in ("group_vars", "host_vars")
        ):
            return self
        from rustle_deploy.inventory.vars import VarsFiles

        rebuilt: Inventory = self._rebuild(VarsFiles(path))
        return rebuilt

    def with_changes(self, added: dict[str, Any]) -> Inventory:
        """This inventory with what ``add_host`` and ``group_by`` changed while the run went on
        (the runtime's ``inventory`` state: ``hosts`` name -> variables, ``groups`` group ->
        hosts, ``children`` parent -> child groups), as Ansible's in-memory inventory has it:
        new hosts and groups, their ``group_vars/``/``host_vars/`` files included."""
        if self._change is None:
            raise InventoryError("this inventory cannot take the hosts and groups add_host and group_by made",
                                 "pass the inventory with -i", file=self.source)
        changed: Inventory = self._change(added)
        return changed

    def with_host_vars(self, updates: dict[str, dict[str, Any]]) -> Inventory:
        """This inventory with ``updates`` (host name -> variables) set on those hosts."""
        hosts = {n: replace(h, vars={**h.vars, **updates[n]}) if n in updates else h
                 for n, h in self.hosts.items()}
        return Inventory(self.source, hosts, self.groups, group_hosts=self._group_hosts,
                         localhost_factory=self._localhost_factory,
                         implicit=[n for n in self._implicit if n in self.hosts],
                         warnings=self.warnings, sources=self.sources)

    # -- selection ---------------------------------------------------------------------

    def _implicit_host(self, name: str) -> Host | None:
        """The host Ansible uses for ``localhost``/``127.0.0.1``/``::1`` absent from inventory."""
        if name not in LOCALHOST_NAMES:
            return None
        for other in self.hosts:
            if other in LOCALHOST_NAMES and other not in self._implicit:
                return self.hosts[other]  # Ansible reuses the first localhost-like host
        if name not in self._implicit:
            self._implicit[name] = self._localhost_factory(name)
        return self._implicit[name]

    def _host(self, name: str) -> Host:
        if name in self.hosts:
            return self.hosts[name]
        host = self._implicit_host(name)
        assert host is not None
        return host

    def select(self, pattern: str | None) -> list[Host]:
        """Hosts an Ansible host pattern selects (``None`` means ``all``), in Ansible's order."""
        if pattern is None:
            pattern = "all"
        real = [n for n in self.hosts if n not in self._implicit]

        def implicit(name: str) -> str | None:
            host = self._implicit_host(name)
            return host.name if host is not None else None

        def read_file(path: str) -> str:
            try:
                with open(path, encoding="utf-8") as fh:
                    return fh.read()
            except OSError as exc:
                raise InventoryError(
                    f"cannot read limit file '{path}': {exc.strerror}",
                    "'@FILE' in a host pattern names a file with one host per line",
                    file=self.source,
                ) from exc

        try:
            names = evaluate(
                pattern, group_hosts=self._group_hosts, hosts=real,
                implicit=implicit, read_file=read_file,
            )
        except PatternError as exc:
            raise InventoryError(
                str(exc),
                "patterns are names, globs (web*), ~regex, group:&other, all:!excluded, "
                "a,b lists and group[0:2] subscripts",
                file=self.source,
            ) from exc
        return [self._host(n) for n in names]

    def resolve(self, names: Iterable[str], *, what: str = "plan") -> list[Host]:
        """Host or group names (or patterns) -> hosts, de-duplicated in order.

        Unknown names raise one InventoryError that lists all of them.
        """
        out: list[Host] = []
        seen: set[str] = set()
        unknown: list[str] = []

        def add(host: Host) -> None:
            if host.name not in seen:
                seen.add(host.name)
                out.append(host)

        for name in names:
            if name in self.hosts and name not in self._implicit:
                add(self.hosts[name])
            elif name in self._group_hosts:
                for member in self._group_hosts[name]:
                    add(self.hosts[member])
            elif (local := self._implicit_host(name)) is not None:
                add(local)
            else:
                matched = self.select(name) if name else []
                if matched:
                    for host in matched:
                        add(host)
                elif name not in unknown:
                    unknown.append(name)
        if unknown:
            raise InventoryError(
                f"the {what} names {len(unknown)} host(s) not in the inventory: "
                + ", ".join(unknown),
                self._unknown_hint(unknown),
                file=self.source,
            )
        return out

    def _unknown_hint(self, unknown: list[str]) -> str:
        if not [n for n in self.hosts if n not in self._implicit]:
            return ("no inventory was given, so only 'localhost' is known; pass the inventory "
                    "that defines these hosts with -i FILE")
        known = [n for n in self.hosts if n not in self._implicit] + list(self.groups)
        guesses = []
        for name in unknown:
            import difflib

            close = difflib.get_close_matches(name, known, n=1)
            if close:
                guesses.append(f"'{close[0]}' for '{name}'")
        hint = "add them to the inventory or pass the inventory that defines them with -i"
        if guesses:
            hint = "did you mean " + ", ".join(guesses) + "? " + hint
        return hint

    # -- output ------------------------------------------------------------------------

    def to_ansible_list(self) -> dict[str, Any]:
        """The inventory in the JSON shape of ``ansible-inventory -i SOURCE --list``."""
        all_hosts = self._group_hosts.get("all", [])
        available = frozenset(all_hosts)
        seen: set[str] = set()

        def fmt(group: Group) -> dict[str, Any]:
            results: dict[str, Any] = {}
            entry: dict[str, Any] = {}
            results[group.name] = entry
            if group.name != "all":
                entry["hosts"] = [h for h in group.hosts if h in available]
            entry["children"] = []
            for sub in group.children:
                entry["children"].append(sub)
                if sub not in seen:
                    results.update(fmt(self.groups[sub]))
                    seen.add(sub)
            for key in ("hosts", "vars", "children"):
                if key in entry and not entry[key]:
                    del entry[key]
            if not entry:
                del results[group.name]
            return results

        results = fmt(self.groups["all"]) if "all" in self.groups else {}
        hostvars: dict[str, Any] = {}
        for name in all_hosts:
            hvars = self.hosts[name].vars
            if hvars:
                hostvars[name] = _jsonable(hvars)
        results["_meta"] = {"hostvars": hostvars, "profile": "inventory_legacy"}
        return results

    def to_ansible_json(self) -> str:
        """``to_ansible_list()`` as text, byte for byte what ``ansible-inventory --list`` prints."""
        return json.dumps(self.to_ansible_list(), sort_keys=True, indent=4, ensure_ascii=False)


def _jsonable(value: Any) -> Any:
    """Values as ansible-inventory's JSON encoder writes them."""
    if isinstance(value, Unsafe):
        return {"__ansible_unsafe": str(value)}
    if isinstance(value, dict):
        return {_json_key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        try:
            items = sorted(value)
        except TypeError:
            items = list(value)
        return [_jsonable(v) for v in items]
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, (_dt.date, _dt.datetime)):
        return key.isoformat()
    return str(key)


def check_remote_dirs(hosts: Iterable[Host], source: str) -> None:
    """Raise InventoryError naming every host whose ``rustle_remote_dir`` cannot be used.

    Called before any host is touched by every mode that reaches hosts: an empty value would
    resolve to the login directory, and a cleanup there removes what it recognises as its own.
    """
    bad = [f"{h.name}: rustle_remote_dir {h.remote_dir!r} {problem}"
           for h in hosts if (problem := remote_dir_problem(h.remote_dir)) is not None]
    if not bad:
        return
    raise InventoryError(
        bad[0] if len(bad) == 1 else f"rustle_remote_dir cannot be used for {len(bad)} hosts:\n  " + "\n  ".join(bad),
        "set rustle_remote_dir to a directory rustle-deploy can have to itself: an absolute path or "
        f"one under ~/ such as {DEFAULT_REMOTE_DIR} (the default when the variable is not set); "
        "nothing was touched",
        file=source,
    )


# -- loading ---------------------------------------------------------------------------


def implicit_localhost() -> Inventory:
    """The inventory Ansible uses without ``-i``: only an implicit ``localhost``."""
    from rustle_deploy.inventory.vars import VarsFiles

    return _build(InventoryData(), "<implicit localhost>", VarsFiles(None), [], implicit=True)


def load_inventory(path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> Inventory:
    """Read an inventory file (INI, YAML, JSON, executable script) or a directory of them, or
    a comma-separated host list (``-i host1,host2,``) that names no file; or several of these
    (repeated ``-i``), read in order into one inventory as ansible-playbook reads them: hosts
    and groups united, a later source's variables winning, each source's ``group_vars/`` and
    ``host_vars/`` read beside it (a later source's files winning too)."""
    given = [os.fspath(path)] if isinstance(path, (str, os.PathLike)) else [os.fspath(p) for p in path]
    if not given:
        return implicit_localhost()
    shown = ", ".join(given)
    data = InventoryData()
    warnings: list[str] = []
    basedirs: list[str] = []
    for source in given:
        if not os.path.exists(source) and "," in source:
            data.current_source = source
            _host_list(data, source)  # no vars files beside a host list
        elif not os.path.exists(source):
            raise InventoryError(
                "no such inventory file or directory",
                "pass an INI, YAML or JSON inventory file, an executable inventory script, a "
                "directory of them, or a host list 'a,b,' with -i",
                file=source,
            )
        elif os.path.isdir(source):
            _parse_dir(data, source, warnings)
            basedirs.append(source)
        else:
            _parse_file(data, source, warnings)
            basedirs.append(os.path.dirname(os.path.abspath(source)))
    data.current_source = None  # hosts add_host makes come from no source
    try:
        for name in data.reconcile():
            warnings.append(f"{shown}: found both group and host with same name: {name}")
    except DataError as exc:
        raise InventoryError(str(exc), None, file=shown) from exc
    from rustle_deploy.inventory.vars import VarsFiles

    return _build(data, shown, VarsFiles(basedirs), warnings, sources=tuple(given))


def inventory_sources(value: Any) -> list[str]:
    """The inventory sources a history record or manifest keeps: a list of them, or one as a
    string (what records made before several sources were read hold), or nothing."""
    if not value:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def absolute_sources(sources: Iterable[str]) -> list[str]:
    """The sources as ansible-playbook names them (``ansible_inventory_sources``) and as a
    command run in another directory can read them again: paths made absolute, a host list
    kept as given."""
    return [s if "," in s and not os.path.exists(s) else os.path.abspath(os.path.expanduser(s))
            for s in sources]


def _host_list(data: InventoryData, source: str) -> None:
    """``host1,host2:2222,`` as Ansible's host_list plugin reads it: each name (with an optional
    port) a host of ``ungrouped``, empty entries ignored."""
    for entry in source.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            name, port = parse_address(entry, allow_ranges=False)
        except RangeError:
            name, port = entry, None
        data.add_host(name, "ungrouped", port)


def _parse_dir(data: InventoryData, path: str, warnings: list[str]) -> None:
    for entry in sorted(os.listdir(path)):
        if entry.startswith(".") or entry in _IGNORED_NAMES or entry.endswith(_IGNORED_EXTS):
            continue
        full = os.path.join(path, entry)
        if os.path.isdir(full):
            _parse_dir(data, full, warnings)
        else:
            _parse_file(data, full, warnings)


def _parse_file(data: InventoryData, path: str, warnings: list[str]) -> None:
    from rustle_deploy.inventory.ini import parse_ini
    from rustle_deploy.inventory.script import parse_script
    from rustle_deploy.inventory.yaml_json import load_data, parse_yaml_inventory, read_utf8

    # as ansible-core names a source: absolute, normalised, symbolic links kept
    data.current_source = os.path.normpath(os.path.abspath(os.path.expandvars(os.path.expanduser(path))))
    ext = os.path.splitext(path)[1]
    errors: list[tuple[str, InventoryError]] = []
    loaded: Loaded | None = None
    text: str | None = None

    def read_text() -> str:
        nonlocal text
        if text is None:
            text = read_utf8(path, "inventory files")
        return text

    if _is_executable(path):
        try:
            parse_script(data, path, warnings)
            return
        except InventoryError as exc:
            # Ansible goes on with the file parsers (right for a chmod +x hosts.ini), and the
            # INI parser then accepts most scripts as a list of odd host names: a file with a
            # #! line is a script, and its failure is the error.
            if _has_shebang(path):
                raise
            errors.append(("script", exc))
    if ext in ("", *_YAML_EXTS):
        try:
            loaded = load_data(path, read_text())
            parse_yaml_inventory(data, path, loaded, warnings)
            return
        except InventoryError as exc:
            errors.append(("yaml", exc))
    if ext == ".toml":
        if errors:
            raise errors[0][1]
        raise InventoryError(
            "TOML inventories are not supported",
            "convert it with 'ansible-inventory -i FILE --list --output inv.json' "
            "or write it as INI or YAML",
            file=path,
        )
    try:
        parse_ini(data, path, read_text())
        return
    except InventoryError as exc:
        errors.append(("ini", exc))
    by_kind = dict(errors)
    looks_yaml = ext in _YAML_EXTS or (loaded is not None and isinstance(loaded.data, dict))
    if looks_yaml and "yaml" in by_kind:
        raise by_kind["yaml"]
    raise by_kind.get("ini") or by_kind.get("yaml") or errors[0][1]


def _has_shebang(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"#!"
    except OSError:
        return False


def _is_executable(path: str) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISREG(mode) and os.access(path, os.X_OK)


def _localhost_vars(data: InventoryData, files: VarsFiles, name: str,
                    playbook: VarsFiles | None = None) -> dict[str, Any]:
    from rustle_deploy.inventory.vars import INTERNAL_VARS

    merged: dict[str, Any] = dict(data.groups["all"].vars)
    merged.update(files.group("all"))
    if playbook is not None:
        merged.update(playbook.group("all"))
    merged["ansible_python_interpreter"] = sys.executable or "/usr/bin/python"
    merged["ansible_connection"] = "local"
    merged.update(files.host(name))
    if playbook is not None:
        merged.update(playbook.host(name))
    for key in INTERNAL_VARS.intersection(merged):
        del merged[key]
    return merged


def _build(
    data: InventoryData, source: str, files: VarsFiles, warnings: list[str],
    *, implicit: bool = False, playbook: VarsFiles | None = None, sources: tuple[str, ...] = (),
) -> Inventory:
    from rustle_deploy.inventory.vars import host_vars, sort_groups

    hosts: dict[str, Host] = {}
    for h in data.hosts.values():
        order = [g.name for g in sort_groups(g for g in h.groups if g.name != "all")]
        where: dict[str, str] = {}
        values = host_vars(data, h, files, playbook, where)
        origins = {k: (w, values[k]) for k, w in where.items()}  # run_vars drops a value changed since
        if h.implicit:  # the implicit localhost, put in a group by add_host/group_by (_add)
            values = {**values, **_localhost_vars(data, files, h.name, playbook), **h.vars}
        named_in, folder = _source_of(h)
        hosts[h.name] = Host(name=h.name, vars=values, groups=("all", *order), origins=origins,
                             inventory_file=named_in, inventory_dir=folder, added=h.added and not h.implicit)
    groups: dict[str, Group] = {}
    for g in data.groups.values():
        gvars = dict(g.vars)
        gvars.update(files.group(g.name))
        groups[g.name] = Group(
            name=g.name,
            hosts=tuple(h.name for h in g.hosts),
            children=tuple(c.name for c in g.child_groups),
            vars=gvars,
            parents=tuple(p.name for p in g.parent_groups),
            depth=g.depth,
            priority=g.priority,
        )
    group_hosts = {name: [h.name for h in g.all_hosts()] for name, g in data.groups.items()}

    def factory(name: str) -> Host:
        return Host(name=name, vars=_localhost_vars(data, files, name, playbook), groups=())

    def rebuild(extra: VarsFiles) -> Inventory:
        return _build(data, source, files, warnings, implicit=implicit, playbook=extra, sources=sources)

    def change(added: dict[str, Any]) -> Inventory:
        copy = deepcopy(data)
        try:
            _add(copy, added)
        except DataError as exc:
            raise InventoryError(f"add_host/group_by: {exc}", None, file=source) from exc
        return _build(copy, source, files, warnings, implicit=implicit, playbook=playbook, sources=sources)

    implicit_names = [h.name for h in data.hosts.values() if h.implicit]
    if implicit:
        hosts["localhost"] = factory("localhost")
        implicit_names.append("localhost")
    return Inventory(
        source, hosts, groups, group_hosts=group_hosts, localhost_factory=factory,
        implicit=implicit_names, warnings=warnings, rebuild=rebuild, change=change, sources=sources,
    )


def _source_of(host: Any) -> tuple[str | None, str | None]:
    """``inventory_file`` and ``inventory_dir`` of a host read from a source (None for the
    implicit localhost and the hosts add_host makes), as ansible-core sets them: the source that
    named it first, and its directory (``basedir``: the source itself when a directory, "None"
    for a host list)."""
    source = host.source
    if source is None or host.implicit:
        return None, None
    if os.path.isdir(source):
        folder: str | None = os.path.abspath(source)
    elif os.path.isfile(source):
        folder = os.path.abspath(os.path.dirname(source))
    else:
        folder = None
    return source, str(folder)


def _add(data: InventoryData, added: dict[str, Any]) -> None:
    """Apply the runtime's record of add_host/group_by (``with_changes``) to ``data``. The
    implicit localhost joins groups as Ansible's does, and stays implicit (not in ``all``)."""
    def host(name: str) -> None:
        if name not in data.hosts:
            data.add_host(name)
            data.hosts[name].implicit = name in LOCALHOST_NAMES
            data.hosts[name].added = True

    for name, values in (added.get("hosts") or {}).items():
        host(name)
        for key, value in (values or {}).items():
            data.hosts[name].set_variable(str(key), value)
    for group, members in (added.get("groups") or {}).items():
        data.add_group(group)
        for name in members:
            host(name)
            data.add_host(name, group)
    for parent, kids in (added.get("children") or {}).items():
        data.add_group(parent)
        for kid in kids:
            data.add_group(kid)
            data.add_child(parent, kid)
    data.reconcile()
