"""Facts about the shipped runtime, read as package data (the controller never imports it)."""

from __future__ import annotations

import ast
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


def canonical_module(name: str) -> str | None:
    """``ansible.builtin.copy`` -> ``copy``; None when the runtime does not implement it."""
    short = name.rsplit(".", 1)[-1]
    if "." in name and not name.startswith(("ansible.builtin.", "ansible.legacy.")):
        return None  # modules of other collections are not implemented
    return short if short in module_families() else None


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
