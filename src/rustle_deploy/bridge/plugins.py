"""rustle-deploy's own module interface: a Python file that runs inside the host's runtime.

A module of this kind (docs/modules.md) is a Python file that declares ``RUSTLE_MODULE`` (its
arguments, and whether it supports check mode and diff mode) and a function
``run(ctx, args)`` returning the result dictionary. It is found in ``library/`` beside the
plan or playbook and in its roles (a file there that declares ``RUSTLE_MODULE``), or from an
installed Python package's entry point in the group ``rustle_deploy.modules`` (name -> a
module whose file declares it). It is embedded only in artifacts whose tasks use it, and the
runtime calls it in its own process after checking the arguments against the declaration:
no Ansible, no interpreter start, the speed of a built-in module.

What this file checks on the controller: the file compiles (Python 3.8 grammar is the
module author's to keep), and declares both ``RUSTLE_MODULE`` and ``run``.
"""

from __future__ import annotations

import ast
import functools
import os
import re
from collections.abc import Sequence
from pathlib import Path

ENTRY_POINT_GROUP = "rustle_deploy.modules"
_MARKER = re.compile(rb"^RUSTLE_MODULE\s*=", re.M)
ARG_TYPES = frozenset({"str", "int", "float", "bool", "list", "dict", "path", "raw"})


def is_rustle_module(data: bytes) -> bool:
    """Whether a module file is one of rustle-deploy's own (it assigns ``RUSTLE_MODULE``)."""
    return bool(_MARKER.search(data))


def problem(path: str, data: bytes) -> str | None:
    """What is wrong with a rustle-deploy module file, or None."""
    try:
        tree = ast.parse(data, path)
    except (SyntaxError, ValueError) as exc:
        return f"{path} does not compile: {exc}"
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    if "RUSTLE_MODULE" not in names:
        return f"{path} does not assign RUSTLE_MODULE at its top level"
    if "run" not in functions:
        return f"{path} declares RUSTLE_MODULE but defines no run(ctx, args) function"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "RUSTLE_MODULE"
                                                for t in node.targets):
            try:
                spec = ast.literal_eval(node.value)
            except ValueError:
                return f"{path}: RUSTLE_MODULE must be a literal dictionary"
            return _spec_problem(path, spec)
    return None


def _spec_problem(path: str, spec: object) -> str | None:
    if not isinstance(spec, dict):
        return f"{path}: RUSTLE_MODULE must be a dictionary"
    unknown = sorted(set(spec) - {"args", "check_mode", "diff", "description"})
    if unknown:
        return f"{path}: RUSTLE_MODULE has unknown keys {unknown} (args, check_mode, diff, description)"
    args = spec.get("args") or {}
    if not isinstance(args, dict):
        return f"{path}: RUSTLE_MODULE['args'] must map argument names to their options"
    for name, options in args.items():
        if not isinstance(options, dict):
            return f"{path}: argument {name!r} must be a dictionary of options"
        bad = sorted(set(options) - {"type", "required", "default", "choices"})
        if bad:
            return f"{path}: argument {name!r} has unknown options {bad} (type, required, default, choices)"
        if options.get("type", "str") not in ARG_TYPES:
            return f"{path}: argument {name!r} has type {options.get('type')!r}; one of {sorted(ARG_TYPES)}"
    return None


def in_library(name: str, plan_dirs: Sequence[str]) -> str | None:
    """The rustle-deploy module file for short ``name`` in library/ of the plan and its roles."""
    for d in plan_dirs:
        directory = os.path.join(d, "library")
        for candidate in (os.path.join(directory, name + ".py"), os.path.join(directory, name)):
            if os.path.isfile(candidate) and is_rustle_module(Path(candidate).read_bytes()):
                return candidate
    return None


def entry_points() -> dict[str, str]:
    """Installed modules: entry point name -> the file of the module it names (read once per
    command and ``sys.path``)."""
    import sys

    return dict(_entry_points(tuple(sys.path)))


@functools.lru_cache(maxsize=4)
def _entry_points(path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    import importlib.metadata
    import importlib.util

    out: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            spec = importlib.util.find_spec(ep.value.split(":", 1)[0])
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.origin and os.path.isfile(spec.origin):
            out.setdefault(ep.name, spec.origin)
    return tuple(out.items())
