"""YAML and JSON: Ansible's data loader and its YAML inventory format.

``load_data`` reads a vars file or an inventory the way Ansible's loader does: JSON first,
then YAML 1.1 (PyYAML's safe schema: ``yes`` is a bool, ``017`` is 15, dates are dates), with
``!unsafe`` kept as :class:`Unsafe`. It remembers the line of every mapping and key so that
structural errors can name a line. ``parse_yaml_inventory`` is a port of Ansible's ``yaml``
inventory plugin (``all:``/``hosts:``/``vars:``/``children:``, host ranges in keys, the same
warnings for skipped keys). JSON inventories in that same shape go through it too, as in
Ansible; the ``--list`` shape belongs to ``script.py``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import yaml

from rustle_deploy import vault
from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory.data import DataError, InventoryData
from rustle_deploy.inventory.ranges import RangeError, expand_hostpattern
from rustle_deploy.model import Undecryptable, Unsafe, Vaulted, mark_decrypted

__all__ = ["Unsafe", "Loaded", "load_data", "parse_yaml_inventory"]



class Loaded:
    """A document and the lines of its mappings (``id(mapping)``) and keys, and where each
    mapping value starts (for ``origin``)."""

    def __init__(self, data: Any, lines: dict[int, int], key_lines: dict[tuple[int, Any], int],
                 value_starts: dict[tuple[int, Any], tuple[int, int]] | None = None, path: str = ""):
        self.data = data
        self._lines = lines
        self._key_lines = key_lines
        self._value_starts = value_starts
        self.path = os.path.abspath(path) if path else ""

    def origin(self, mapping: Any, key: Any) -> str | None:
        """Where ``mapping[key]``'s value was written, as ansible-core 2.19 tags it (its
        ``origin``): ``/abs/file.yml:LINE:COLUMN`` in YAML, the file alone in JSON."""
        if not self.path:
            return None
        if self._value_starts is None:  # JSON: ansible-core's JSON loader keeps no positions
            return self.path
        try:
            found = self._value_starts.get((id(mapping), key))
        except TypeError:
            found = None
        return None if found is None else f"{self.path}:{found[0]}:{found[1]}"

    def line(self, mapping: Any, key: Any = None) -> int | None:
        if key is not None:
            try:
                found = self._key_lines.get((id(mapping), key))
            except TypeError:
                found = None
            if found is not None:
                return found
        return self._lines.get(id(mapping))


def _make_loader(lines: dict[int, int], key_lines: dict[tuple[int, Any], int],
                 value_starts: dict[tuple[int, Any], tuple[int, int]]) -> type:
    import yaml  # only for YAML text: JSON inventories skip its import (~15 ms)

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _Loader(base):  # type: ignore[misc]
        pass

    def construct_mapping(loader: Any, node: yaml.MappingNode) -> Any:
        mapping: dict[Any, Any] = {}
        lines[id(mapping)] = node.start_mark.line + 1
        yield mapping
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError as exc:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found unhashable key", key_node.start_mark,
                ) from exc
            mapping[key] = loader.construct_object(value_node, deep=True)
            key_lines[(id(mapping), key)] = key_node.start_mark.line + 1
            value_starts[(id(mapping), key)] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)

    def construct_unsafe(loader: Any, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return Unsafe(loader.construct_scalar(node))
        if isinstance(node, yaml.SequenceNode):
            return [Unsafe(v) if isinstance(v, str) else v for v in loader.construct_sequence(node)]
        return {k: Unsafe(v) if isinstance(v, str) else v
                for k, v in loader.construct_mapping(node).items()}

    def construct_vault(loader: Any, node: yaml.Node) -> Any:
        try:
            if not isinstance(node, yaml.ScalarNode):
                raise vault.VaultFailed("!vault takes the text ansible-vault encrypt_string "
                                        "prints", "")
            envelope = loader.construct_scalar(node)
            return Vaulted(vault.decrypt(envelope))
        except vault.VaultFailed as exc:
            if exc.locked is not None:  # as ansible-core: the tasks that use it fail, not the load
                return Undecryptable(envelope, exc.locked)
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot decrypt this !vault value: {exc.message}", node.start_mark
            ) from exc

    _Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    _Loader.add_constructor("!unsafe", construct_unsafe)
    _Loader.add_constructor("!vault", construct_vault)
    _Loader.add_constructor("!vault-encrypted", construct_vault)
    return _Loader


def _json_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and "__ansible_unsafe" in obj:
        return Unsafe(obj["__ansible_unsafe"])
    if len(obj) == 1 and isinstance(obj.get("__ansible_vault"), str):
        # ansible-inventory --list writes a vaulted value so: opened as a !vault value is
        try:
            return Vaulted(vault.decrypt(obj["__ansible_vault"]))
        except vault.VaultFailed as exc:
            if exc.locked is not None:
                return Undecryptable(obj["__ansible_vault"], exc.locked)
            raise _VaultInJson(exc) from exc
    return obj


class _VaultInJson(Exception):
    """A damaged ``{"__ansible_vault": ...}`` value in a JSON inventory (load_data says where)."""

    def __init__(self, failed: vault.VaultFailed) -> None:
        super().__init__(failed.message)
        self.failed = failed


def read_utf8(path: str, what: str = "inventory and vars files") -> str:
    """A file's text; InventoryError naming the file when it cannot be read or is not UTF-8."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise InventoryError(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", f"{what} must be UTF-8", file=path,
        ) from exc
    except OSError as exc:
        raise InventoryError(f"cannot read: {exc.strerror}", file=path) from exc


def load_data(path: str, text: str | None = None) -> Loaded:
    """Read JSON or YAML as Ansible's loader does; InventoryError (file, line) if neither."""
    if text is None:
        text = read_utf8(path)
    if vault.is_encrypted(text):
        try:
            text = vault.decrypt(text)
        except vault.VaultFailed as exc:
            raise InventoryError(f"cannot decrypt this vault-encrypted file: {exc.message}",
                                 exc.hint, file=path) from exc
        loaded = load_data(path, text)  # its strings are secrets the compiler withholds
        loaded.data = mark_decrypted(loaded.data)
        return loaded
    try:
        return Loaded(json.loads(text, object_hook=_json_hook), {}, {}, path=path)
    except ValueError:
        pass
    except _VaultInJson as exc:
        raise InventoryError(f"cannot decrypt a vault-encrypted value: {exc.failed.message}",
                             exc.failed.hint, file=path) from exc
    import yaml

    lines: dict[int, int] = {}
    key_lines: dict[tuple[int, Any], int] = {}
    value_starts: dict[tuple[int, Any], tuple[int, int]] = {}
    try:
        data = yaml.load(text, Loader=_make_loader(lines, key_lines, value_starts))  # noqa: S506 - safe loader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        ctx = f" ({exc.context})" if exc.context else ""
        raise InventoryError(
            f"{problem}{ctx}" + (f", column {mark.column + 1}" if mark else ""),
            "check the YAML syntax (indentation, quotes, ':' followed by a space)",
            file=path,
            line=mark.line + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:
        raise InventoryError(f"invalid YAML: {exc}", "check the YAML syntax", file=path) from exc
    return Loaded(data, lines, key_lines, value_starts, path)


def parse_yaml_inventory(
    inv: InventoryData, path: str, loaded: Loaded, warnings: list[str]
) -> None:
    """Add the groups and hosts of a YAML (or JSON) inventory document to ``inv``."""
    data = loaded.data
    if not data:
        raise InventoryError("the YAML inventory is empty", "add an 'all:' group", file=path)
    if not isinstance(data, Mapping):
        raise InventoryError(
            f"a YAML inventory must be a mapping of groups, got {type(data).__name__}",
            "start with 'all:' and list hosts under 'hosts:'",
            file=path, line=1,
        )
    if data.get("plugin"):
        raise InventoryError(
            f"this is an inventory plugin configuration (plugin: {data.get('plugin')}), "
            "not a YAML inventory",
            "inventory plugins are not supported; run 'ansible-inventory -i FILE --list "
            "--output inv.json' and pass inv.json, or use an executable inventory script",
            file=path, line=loaded.line(data, "plugin"),
        )
    for group_name in data:
        _parse_group(inv, path, loaded, group_name, data[group_name], data, warnings)


def _parse_group(
    inv: InventoryData, path: str, loaded: Loaded, group: Any, group_data: Any,
    parent: Any, warnings: list[str],
) -> Any:
    line = loaded.line(parent, group)
    if not isinstance(group_data, (Mapping, type(None))):
        warnings.append(f"{path}:{line}: skipping '{group}' as this is not a valid group definition")
        return group

    def fail(message: str, hint: str | None, at: int | None = None) -> InventoryError:
        return InventoryError(message, hint, file=path, line=at if at is not None else line)

    try:
        group = inv.add_group(group)
    except DataError as exc:
        raise fail(f"unable to add group {group!r}: {exc}", "group names are strings") from exc
    if group_data is None:
        return group
    sections: dict[str, Any] = {}
    for section in ("vars", "children", "hosts"):
        if section in group_data:
            value = group_data[section]
            if isinstance(value, str):
                value = {value: None}
            if not isinstance(value, (Mapping, type(None))):
                raise fail(
                    f"invalid '{section}' entry for group '{group}': requires a mapping, "
                    f"found {type(value).__name__}",
                    f"write '{section}:' as a mapping, e.g. '{section}:\\n  name: ...' "
                    "(not a '- item' list)",
                    loaded.line(group_data, section),
                )
            sections[section] = value
    for key in group_data:
        value = sections.get(key, group_data[key]) if key in ("vars", "children", "hosts") else group_data[key]
        key_line = loaded.line(group_data, key)
        if not isinstance(value, (Mapping, type(None))):
            warnings.append(
                f"{path}:{key_line}: skipping key ({key}) in group ({group}) as it is not a "
                f"mapping, it is a {type(value).__name__}"
            )
            continue
        if value is None:
            continue
        try:
            if key == "vars":
                for var in value:
                    inv.set_variable(group, var, value[var], loaded.origin(value, var))
            elif key == "children":
                for sub in value:
                    sub = _parse_group(inv, path, loaded, sub, value[sub], value, warnings)
                    inv.add_child(group, sub)
            elif key == "hosts":
                for host_pattern in value:
                    host_line = loaded.line(value, host_pattern)
                    if not isinstance(host_pattern, str):
                        raise fail(
                            f"host pattern {host_pattern} must be a string",
                            "enclose integers and floats in quotation marks",
                            host_line,
                        )
                    try:
                        hosts, port = expand_hostpattern(host_pattern)
                    except RangeError as exc:
                        raise fail(
                            str(exc),
                            "host ranges are [start:end] or [start:end:step], e.g. web[01:20]",
                            host_line,
                        ) from exc
                    host_vars = value[host_pattern] or {}
                    if not isinstance(host_vars, Mapping):
                        raise fail(
                            f"host '{host_pattern}' has {type(host_vars).__name__} where its "
                            "variables should be",
                            "under 'hosts:', each host maps to a mapping of its variables "
                            "(or to nothing)",
                            host_line,
                        )
                    for host in hosts:
                        inv.add_host(host, group=group, port=port)
                        for k in host_vars:
                            inv.set_variable(host, k, host_vars[k], loaded.origin(host_vars, k))
            else:
                warnings.append(
                    f"{path}:{key_line}: skipping unexpected key ({key}) in group ({group}), "
                    "only 'vars', 'children' and 'hosts' are valid"
                )
        except DataError as exc:
            raise fail(str(exc), None, key_line) from exc
    return group
