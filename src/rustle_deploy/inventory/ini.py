"""Ansible INI inventories: sections, ``:vars``, ``:children``, host lines and value typing.

A port of ``ansible.plugins.inventory.ini``: the same section grammar, forward references to
child groups resolved at the end, ``shlex`` host lines with ``key=value`` pairs, and values
typed with ``ast.literal_eval`` in host lines and ``:vars`` sections alike: ``80`` is an int
(so is ``"80"`` on a host line, where shlex strips the quotes), ``true`` and ``yes`` are
strings, ``True`` is a bool, ``[1, 2]`` a list. Group names are kept as written (Ansible's
default ``TRANSFORM_INVALID_GROUP_CHARS=never``), so ``[web-servers]`` is ``web-servers``.
Every failure is an InventoryError with the file and line.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import warnings
from typing import Any

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory.data import DataError, InventoryData
from rustle_deploy.inventory.ranges import RangeError, expand_hostpattern
from rustle_deploy.inventory.yaml_json import Unsafe

__all__ = ["parse_ini", "parse_value"]

_SECTION = re.compile(
    r"""^\[
        ([^:\]\s]+)             # group name
        (?::(\w+))?             # optional :tag
    \]
    \s*(?:\#.*)?$
    """,
    re.X,
)
_GROUPNAME = re.compile(r"^([^:\]\s]+)\s*(?:\#.*)?$")
_COMMENT_MARKERS = (";", "#")

_HINT_SECTION = "sections are [group], [group:vars] or [group:children]"
_HINT_RANGE = (
    "host ranges are [start:end] or [start:end:step] with numbers or single letters, "
    "e.g. web[01:20] or db-[a:c]; list other hosts one per line"
)


def parse_value(text: str) -> Any:
    """Type an INI value as Ansible does: a Python literal if it is one, else the string."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes warn (3.11: DeprecationWarning)
            value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = text
    return _coerce(value)


def _coerce(value: Any) -> Any:
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_coerce(v) for v in value]
    if isinstance(value, dict):
        return {k: _coerce(v) for k, v in value.items()}
    if value is ...:
        return "..."
    if isinstance(value, complex):
        return str(value)
    if isinstance(value, bytes):
        # Ansible loses the value's template trust in this conversion: it comes out unsafe.
        return Unsafe(value.decode("utf-8", errors="surrogateescape"))
    return value


def parse_ini(inv: InventoryData, path: str, text: str) -> None:
    """Add the groups, hosts and variables of an INI inventory to ``inv``."""
    lineno = 0
    where = os.path.abspath(path)  # a value's origin, as ansible-core 2.19 tags it: FILE:LINE

    def fail(message: str, hint: str | None = None, line: int | None = None) -> InventoryError:
        return InventoryError(message, hint, file=path, line=line if line is not None else lineno)

    pending: dict[str, dict[str, Any]] = {}
    groupname = "ungrouped"
    state = "hosts"
    for raw in text.splitlines():
        lineno += 1
        line = raw.strip()
        if not line or line[0] in _COMMENT_MARKERS:
            continue
        try:
            m = _SECTION.match(line)
            if m:
                name, tag = m.groups()
                groupname = name
                state = tag or "hosts"
                if state not in ("hosts", "children", "vars"):
                    raise fail(
                        f"section [{name}:{tag}] has unknown type: {tag}", _HINT_SECTION
                    )
                if groupname not in inv.groups:
                    if state == "vars" and groupname not in pending:
                        pending[groupname] = {"line": lineno, "state": state, "name": groupname}
                    inv.add_group(groupname)
                if groupname in pending and state != "vars":
                    if pending[groupname]["state"] == "children":
                        _add_pending_children(inv, groupname, pending)
                    elif pending[groupname]["state"] == "vars":
                        del pending[groupname]
                continue
            if line.startswith("[") and line.endswith("]"):
                raise fail(
                    f"invalid section entry: '{line}'",
                    "a section header may not contain spaces or other invalid characters; "
                    + _HINT_SECTION,
                )
            if state == "hosts":
                hosts, port, variables = _parse_host_definition(line, fail)
                for host in hosts:
                    inv.add_host(host, group=groupname, port=port)
                    for k, v in variables.items():
                        inv.set_variable(host, k, v, f"{where}:{lineno}")
            elif state == "vars":
                if "=" not in line:
                    raise fail(
                        f"expected key=value, got: {line}",
                        f"lines of a [{groupname}:vars] section are key=value",
                    )
                k, v = (e.strip() for e in line.split("=", 1))
                inv.set_variable(groupname, k, parse_value(v), f"{where}:{lineno}")
            else:  # children
                cm = _GROUPNAME.match(line)
                if not cm:
                    raise fail(
                        f"expected group name, got: {line}",
                        f"lines of a [{groupname}:children] section name one group each",
                    )
                child = cm.group(1)
                if child not in inv.groups:
                    if child not in pending:
                        pending[child] = {
                            "line": lineno, "state": state, "name": child, "parents": [groupname]
                        }
                    else:
                        pending[child].setdefault("parents", []).append(groupname)
                else:
                    inv.add_child(groupname, child)
        except DataError as exc:
            raise fail(str(exc), _hint_for(str(exc))) from exc
        except RangeError as exc:
            if line.startswith("[") and "]" not in line:
                raise fail(
                    f"'{line}' is neither a section header (it has no closing ']') "
                    "nor a host name",
                    _HINT_SECTION,
                ) from exc
            raise fail(str(exc), _HINT_RANGE) from exc

    for decl in pending.values():
        if decl["state"] == "vars":
            raise fail(
                f"section [{decl['name']}:vars] is not valid for undefined group '{decl['name']}'",
                f"declare the group with a [{decl['name']}] or [{decl['name']}:children] section",
                line=decl["line"],
            )
        raise fail(
            f"section [{decl['parents'][-1]}:children] includes undefined group '{decl['name']}'",
            f"declare it with a [{decl['name']}] section, or check the spelling",
            line=decl["line"],
        )


def _add_pending_children(inv: InventoryData, group: str, pending: dict[str, dict[str, Any]]) -> None:
    for parent in pending[group]["parents"]:
        inv.add_child(parent, group)
        if parent in pending and pending[parent]["state"] == "children":
            _add_pending_children(inv, parent, pending)
    del pending[group]


def _parse_host_definition(line: str, fail: Any) -> tuple[list[str], int | None, dict[str, Any]]:
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError as exc:
        raise fail(
            f"error parsing host definition '{line}': {exc}",
            "check the quotes on this line; values with spaces need matching quotes",
        ) from exc
    if not tokens:
        raise fail(f"expected a host name, got: {line}")
    pattern = tokens[0]
    hostnames, port = expand_hostpattern(pattern)
    if pattern.strip().endswith(":") and port is None:
        raise fail(
            f"invalid host pattern '{pattern}': ending in ':' is not allowed",
            "':' introduces a port number, as in host:2222",
        )
    if any(h.strip() == "---" for h in hostnames):
        raise fail(
            f"invalid host pattern '{pattern}': '---' is normally a sign this is a YAML file",
            "name YAML inventories *.yml or *.yaml",
        )
    variables: dict[str, Any] = {}
    for tok in tokens[1:]:
        if "=" not in tok:
            raise fail(
                f"expected key=value host variable assignment, got: {tok}",
                "host lines are: NAME [key=value ...]; quote values that contain spaces",
            )
        k, v = tok.split("=", 1)
        variables[k] = parse_value(v)
    return hostnames, port, variables


def _hint_for(message: str) -> str | None:
    if "recursive dependency loop" in message or "child of itself" in message:
        return "a group cannot be its own ancestor; remove one of the :children entries"
    if "empty host name" in message:
        return "give the host a name"
    return None
