"""Execution plans: rustle-plan JSON -> a validated :class:`~rustle_deploy.model.Plan`.

Public API (everything else in this package is private to it)::

    load_plan(path, *, files_dirs=(), stdin=None) -> Plan      # path "-" reads standard input
    parse_plan(data, *, source, base_dir, files_dirs=()) -> Plan
    resolve_source(plan, task) -> str | None                   # a copy/template task's local file

Stages, one module each: ``schema`` (bytes -> JSON -> model: types, required keys, enums,
durations, legacy shapes, task extensions), ``validate`` (cross-references: total_tasks, hosts,
dependency cycles, notify, modules, unsupported keywords), ``files`` (where static files are
found) and ``write`` (model -> JSON, what ``--emit-plan`` prints). Any invalid input raises :class:`~rustle_deploy.errors.PlanError` naming the file and
the JSON pointer of the bad value, with a hint; no other exception escapes for any input.

Imports: errors, model, runtime_index <- plan.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Sequence
from typing import BinaryIO

from rustle_deploy.errors import PlanError
from rustle_deploy.model import Plan
from rustle_deploy.plan import files, schema, validate
from rustle_deploy.plan.files import resolve_source

__all__ = ["PlanError", "load_plan", "parse_plan", "resolve_source"]

STDIN = "<stdin>"


def load_plan(path: str, *, files_dirs: Sequence[str] = (), stdin: BinaryIO | None = None) -> Plan:
    """Read, parse and validate the plan at ``path`` ("-": standard input)."""
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        try:
            data = stream.read()
        except OSError as exc:
            raise PlanError(f"cannot read standard input: {exc}", "pipe a plan into stdin or "
                            "pass its path", file=STDIN) from exc
        return parse_plan(data, source=STDIN, base_dir=os.getcwd(), files_dirs=files_dirs)
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PlanError(f"cannot read the plan: {reason}",
                        "pass the path of the JSON file rustle-plan wrote, or - for stdin",
                        file=path) from exc
    base_dir = os.path.dirname(os.path.abspath(path))
    return parse_plan(data, source=path, base_dir=base_dir, files_dirs=files_dirs)


def parse_plan(data: bytes, *, source: str, base_dir: str, files_dirs: Sequence[str] = (),
               warnings: list[PlanError] | None = None) -> Plan:
    """Parse and validate plan bytes; ``base_dir`` anchors relative ``src`` paths; ``warnings``
    receives validate's (what fails only when a host evaluates it)."""
    reader = schema.Reader(source)
    doc = schema.decode(reader, data)
    plan = schema.read_document(reader, doc, base_dir=os.path.abspath(base_dir),
                                sha256=hashlib.sha256(data).hexdigest())
    dirs = tuple(os.path.abspath(os.path.expanduser(d)) for d in files_dirs)
    files.remember_files_dirs(plan, dirs)
    validate.validate(plan, dirs, legacy_task_ids=frozenset(reader.legacy_task_ids), warnings=warnings)
    return plan
