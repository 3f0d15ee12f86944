"""Facts about the shipped runtime, read as package data (the controller never imports it)."""

from __future__ import annotations

import ast
import os
import sys
from functools import cache
from pathlib import Path
from typing import Any


def runtime_root() -> Path:
    """The directory holding ``rustle_runtime/`` and ``_vendor/``."""
    return Path(__file__).resolve().parent / "runtime"


@cache
def module_families() -> dict[str, str]:
    """Supported module short name -> family file under ``rustle_runtime/modules``."""
    source = (runtime_root() / "rustle_runtime" / "modules" / "__init__.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "FAMILIES" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            assert isinstance(value, dict)
            return {str(k): str(v) for k, v in value.items()}
    raise RuntimeError("runtime/rustle_runtime/modules/__init__.py has no FAMILIES literal")


@cache
def gather_subsets() -> frozenset[str]:
    """The gather_subset names the runtime's facts.py accepts (its VALID_SUBSETS), with
    ``all`` and ``min``."""
    source = (runtime_root() / "rustle_runtime" / "facts.py").read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "VALID_SUBSETS"
                                                for t in node.targets):
            assert isinstance(node.value, ast.Call)  # frozenset((...))
            return frozenset(ast.literal_eval(node.value.args[0])) | {"all", "min"}
    raise RuntimeError("runtime/rustle_runtime/facts.py has no VALID_SUBSETS literal")


def canonical_module(name: str) -> str | None:
    """``ansible.builtin.copy`` -> ``copy``; None when the runtime does not implement it (or
    ``RUSTLE_BRIDGE_MODULES`` sends it through the module bridge: docs/bridge.md)."""
    short = name.rsplit(".", 1)[-1]
    if "." in name and not name.startswith(("ansible.builtin.", "ansible.legacy.")):
        return None  # modules of other collections are not implemented
    if short in bridged_anyway():
        return None
    if short in _overridden and not name.startswith("ansible.builtin."):
        return None  # the playbook's or a role's own action plugin of that name (ansible.legacy)
    return short if short in module_families() else None


_overridden: frozenset[str] = frozenset()


def override_builtins(names: frozenset[str]) -> None:
    """Built-in modules that the plan's own ``action_plugins/`` replace under their short and
    ``ansible.legacy.`` names, as ansible-core resolves them (``ansible.builtin.NAME`` stays the
    built-in): set when a plan is checked (plan/validate.py), read by ``canonical_module``."""
    global _overridden
    _overridden = names


def bridged_anyway() -> frozenset[str]:
    """Built-in modules the user asked to run with Ansible's own code: ``RUSTLE_BRIDGE_MODULES``
    (comma-separated short names), read when the plan is checked and compiled."""
    raw = os.environ.get("RUSTLE_BRIDGE_MODULES", "")
    return frozenset(n.strip().rsplit(".", 1)[-1] for n in raw.split(",") if n.strip())


@cache
def runtime_plugins() -> dict[str, Any]:
    """What templates may call on the host: ``filters``, ``tests`` and ``lookups`` (name sets,
    Jinja2's own and the runtime's, ``ansible.builtin.`` names included) and ``refused`` (kind
    -> ansible.builtin name -> why the runtime does not offer it). Read by importing the shipped
    runtime's filters and lookups modules, which import only the standard library."""
    import sys

    import jinja2.filters
    import jinja2.tests

    root = str(runtime_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    from rustle_runtime import datatag, filters, lookups  # type: ignore[import-not-found]

    def names(*tables: Any) -> frozenset[str]:
        out = {str(k) for t in tables for k in t}
        return frozenset(out | {"ansible.builtin." + n for n in out})

    refused: dict[str, dict[str, str]] = {
        "filter": dict(filters.REFUSED_FILTERS), "test": dict(filters.REFUSED_TESTS),
        "lookup": dict(lookups.REFUSED)}
    for table in refused.values():
        table.update({"ansible.builtin." + k: v for k, v in list(table.items())})
    for kind, table in (("filter", datatag.REFUSED_FILTERS), ("test", datatag.REFUSED_TESTS)):
        refused[kind].update({datatag.PREFIX + k: v for k, v in table.items()})
    tagged = {"filter": frozenset(datatag.PREFIX + k for k in datatag.FILTERS),
              "test": frozenset(datatag.PREFIX + k for k in datatag.TESTS)}
    ansible = lookups.ANSIBLE_RUNS  # run by ansible-core on the controller (compiler/ansible_plugins.py)
    return {"filter": names(jinja2.filters.FILTERS, filters.FILTERS, filters.CONTEXT_FILTERS,
                            ansible["filter"]) | tagged["filter"],
            "test": names(jinja2.tests.TESTS, filters.TESTS, ansible["test"]) | tagged["test"],
            "lookup": names(lookups.LOOKUPS, lookups.CONTROLLER, ansible["lookup"]), "refused": refused}


def import_runtime() -> Any:
    """The runtime's ``templating`` module, imported from the shipped sources.

    For evaluating on the controller exactly what a host would (the native lowering, the
    playbook front end's compile-time templating); the runtime itself never learns of it.
    """
    root = str(runtime_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    from rustle_runtime import templating  # type: ignore[import-not-found]

    return templating


@cache
def no_log_params() -> dict[str, tuple[str, ...]]:
    """The runtime's own modules' ``no_log`` parameters (``modules/_common.py``'s
    ``NO_LOG_PARAMS``: module -> parameter names), read as data."""
    path = runtime_root() / "rustle_runtime" / "modules" / "_common.py"
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "NO_LOG_PARAMS"
                                                for t in node.targets):
            return dict(ast.literal_eval(node.value))
    raise LookupError(f"{path}: no NO_LOG_PARAMS")
