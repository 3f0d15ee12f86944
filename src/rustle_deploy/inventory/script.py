"""Executable dynamic-inventory scripts: ``SCRIPT --list`` (and ``--host NAME`` without _meta).

A port of Ansible's ``script`` inventory plugin: groups map to ``{"hosts": [...], "vars":
{...}, "children": [...]}`` (a bare list is the hosts; a mapping without any of those keys is
a group that is its own sole host), host variables come from ``_meta.hostvars`` or, when the
script gives no ``_meta``, from one ``--host`` call per host. Host names are not range-expanded.
"""

from __future__ import annotations

import json
from typing import Any

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory.data import DataError, InventoryData
from rustle_deploy.inventory.yaml_json import Unsafe, _json_hook

__all__ = ["parse_script"]

_HINT_SHAPE = (
    "an inventory script prints, for --list, a JSON object of groups "
    '({"web": {"hosts": ["a"], "vars": {}, "children": []}}) and "_meta": {"hostvars": {...}}'
)


def _run(path: str, args: list[str]) -> str:
    import os
    import subprocess

    if any("\x00" in arg for arg in args):  # a host name from the script's own output
        raise InventoryError(
            f"inventory script output names a host with a NUL character: {args[-1]!r}",
            "host names are printable text", file=path,
        )
    try:
        proc = subprocess.run(
            [os.path.abspath(path), *args], capture_output=True, check=False  # a relative path is not looked up in PATH
        )
    except OSError as exc:
        raise InventoryError(
            f"cannot execute inventory script: {exc.strerror}",
            "check the script's #! line and that its interpreter exists",
            file=path,
        ) from exc
    stderr = proc.stderr.decode(errors="replace").strip()
    if proc.returncode != 0:
        raise InventoryError(
            f"inventory script '{path} {' '.join(args)}' exited with code {proc.returncode}"
            + (f": {stderr}" if stderr else ""),
            "run the script by hand with the same arguments to see what fails",
            file=path,
        )
    try:
        return proc.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(
            f"output of '{path} {' '.join(args)}' is not UTF-8", None, file=path
        ) from exc


def _decode(path: str, args: list[str], text: str) -> Any:
    try:
        return json.loads(text, object_hook=_json_hook)
    except ValueError as exc:
        where = (
            f" (line {exc.lineno}, column {exc.colno} of its output)"
            if isinstance(exc, json.JSONDecodeError) else ""
        )
        raise InventoryError(
            f"output of '{path} {' '.join(args)}' is not JSON: {exc}{where}",
            _HINT_SHAPE,
            file=path,
        ) from exc


def parse_script(inv: InventoryData, path: str, warnings: list[str]) -> None:
    """Run ``path --list`` and add what it prints to ``inv``."""
    processed = _decode(path, ["--list"], _run(path, ["--list"]))
    if not isinstance(processed, dict):
        raise InventoryError(
            f"'--list' output is {type(processed).__name__}, not a JSON object",
            _HINT_SHAPE, file=path,
        )
    meta = processed.get("_meta")
    if meta is not None and not isinstance(meta, dict):
        raise InventoryError("'_meta' is not a JSON object", _HINT_SHAPE, file=path)
    profile = (meta or {}).get("profile")
    if profile is not None and (not isinstance(profile, str) or not profile.startswith("inventory_")):
        raise InventoryError(f"non-inventory profile {profile!r} in '_meta.profile'", None, file=path)

    hostvars: dict[str, Any] | None = None
    names: dict[str, None] = {}
    try:
        for group, gdata in processed.items():
            if group == "_meta":
                hostvars = gdata.get("hostvars")
                if not isinstance(hostvars, dict):
                    raise InventoryError(
                        f"'_meta.hostvars' is {type(hostvars).__name__}, not a JSON object",
                        _HINT_SHAPE, file=path,
                    )
            else:
                _parse_group(inv, path, group, gdata, names, warnings)
        if hostvars is None:
            warnings.append(
                f"{path}: inventory scripts should provide '_meta.hostvars'; "
                "ran the script with --host for each host"
            )
        for host in names:
            if hostvars is None:
                text = _run(path, ["--host", host])
                got = _decode(path, ["--host", host], text) if text.strip() else {}
            else:
                got = hostvars.get(host, {})
            if not isinstance(got, dict):
                raise InventoryError(
                    f"variables of host '{host}' are {type(got).__name__}, not a JSON object",
                    _HINT_SHAPE, file=path,
                )
            for k, v in got.items():
                inv.set_variable(host, k, v)
    except DataError as exc:
        raise InventoryError(str(exc), _HINT_SHAPE, file=path) from exc


def _unsafe(value: Any) -> Any:
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, dict):
        return {k: _unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unsafe(v) for v in value]
    return value


def _parse_group(
    inv: InventoryData, path: str, group: str, data: Any, names: dict[str, None], warnings: list[str]
) -> None:
    group = inv.add_group(group)
    if not isinstance(data, dict):
        data = {"hosts": data}
        warnings.append(f"{path}: group '{group}' was converted to a mapping from a list")
    elif not any(k in data for k in ("hosts", "vars", "children")):
        # Ansible cannot template variables given this way: they come out unsafe.
        data = {"hosts": [group], "vars": _unsafe(data)}
        warnings.append(f"{path}: treating malformed group '{group}' as the sole host of that group")
    if "hosts" in data:
        hosts = data["hosts"]
        if not isinstance(hosts, list):
            raise InventoryError(
                f"'{group}.hosts' is {type(hosts).__name__}, not a list", _HINT_SHAPE, file=path
            )
        for hostname in hosts:
            if not isinstance(hostname, str):
                raise InventoryError(
                    f"'{group}.hosts' holds a {type(hostname).__name__}, not a host name", _HINT_SHAPE, file=path
                )
            inv.add_host(hostname, group)
            names[hostname] = None
    if "vars" in data:
        gvars = data["vars"]
        if not isinstance(gvars, dict):
            raise InventoryError(
                f"'{group}.vars' is {type(gvars).__name__}, not a JSON object", _HINT_SHAPE, file=path
            )
        for k, v in gvars.items():
            inv.set_variable(group, k, v)
    if "children" in data:
        children = data["children"]
        if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
            raise InventoryError(
                f"'{group}.children' is {type(children).__name__}, not a list of group names", _HINT_SHAPE, file=path
            )
        for child in children:
            child = inv.add_group(child)
            inv.add_child(group, child)
