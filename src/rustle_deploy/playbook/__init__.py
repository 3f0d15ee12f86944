"""Ansible playbooks in: playbook + roles + inventory + extra vars -> the Plan model.

The front end of the pipeline for people who arrive with Ansible content rather than a
rustle-plan document. It owns everything Ansible decides before a task runs: reading the
playbook's YAML with positions (``yamlsrc``), module arguments in all their forms (``args``),
which keyword goes where (``keywords``), finding and reading roles (``roles``), templating what
must be known on the controller (``render``), and turning plays, roles, blocks and includes into
plays of tasks with plan extensions (``compile``). Everything after it (compiler, runtime,
deploy, history) is the one a plan goes through; ``--emit-plan`` prints the plan it builds
(``plan.write``).

Public API::

    is_playbook(data) -> bool                     content sniffing: a YAML list, not a JSON plan
    parse_extra_vars(values) -> dict              -e/--extra-vars, as ansible-playbook reads them
    compile_playbook(path, inventory, options, text=None) -> Compiled
                                                  .plan, .inventory (with the playbook's
                                                  group_vars/host_vars), .plays (for --list-*),
                                                  .notes

Every problem is a :class:`~rustle_deploy.errors.PlaybookError` with the file, line, column and
the offending line, raised before anything is touched.

Imports: errors, model, inventory, runtime_index, plan <- playbook.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from rustle_deploy.errors import PlaybookError, UsageError
from rustle_deploy.playbook.args import ArgsError, parse_kv

if TYPE_CHECKING:
    from rustle_deploy.playbook.compile import (
        Compiled,
        CompileOptions,
        ListedPlay,
        compile_playbook,
    )

__all__ = ["CompileOptions", "Compiled", "ListedPlay", "PlaybookError", "compile_playbook",
           "is_playbook", "parse_extra_vars"]

_COMPILE_NAMES = ("CompileOptions", "Compiled", "ListedPlay", "compile_playbook")


def __getattr__(name: str) -> Any:
    """The compiler's names, imported on first use: a run from a rustle-plan document (which
    needs only ``is_playbook`` and ``parse_extra_vars``) does not load the playbook compiler."""
    if name in _COMPILE_NAMES:
        from rustle_deploy.playbook import compile as compiler

        return getattr(compiler, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_playbook(data: bytes) -> bool:
    """True for a playbook (a YAML or JSON list of plays), False for a rustle-plan JSON object.

    Decided by content, never by the file's name: a plan is a JSON object (``{``); anything
    else that is text is read as a playbook, whose own parser then says what is wrong with it.
    """
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(head)


def parse_extra_vars(values: Iterable[str], origins: dict[str, str] | None = None) -> dict[str, Any]:
    """``-e`` values merged in order (later wins): ``k=v`` text, YAML/JSON, or ``@file``;
    ``origins`` receives where each variable's value came from, as ansible-core 2.19 names it
    (``/abs/vars.yml:LINE:COLUMN`` for a file's, ``<CLI option '-e'>`` for the others)."""
    out: dict[str, Any] = {}
    for value in values:
        if not value:
            continue
        data: Any
        if value.startswith("@"):
            path = os.path.expanduser(value[1:])
            if not os.path.isfile(path):
                raise UsageError(f"-e {value}: no such file", "-e @FILE reads a YAML or JSON file "
                                 "of variables")
            from rustle_deploy.playbook.origins import written_at
            from rustle_deploy.playbook.yamlsrc import read_yaml

            src = read_yaml(os.path.abspath(path), shown=path, what="extra vars file")
            data = src.data
            if origins is not None and isinstance(data, dict):
                origins.update({str(k): written_at(src, data, k) or "<CLI option '-e'>" for k in data})
        elif value[0] in "/.":
            raise UsageError(f"-e {value}: a file name needs a leading '@'",
                             f"write -e @{value}")
        elif value[0] in "[{":
            try:
                data = json.loads(value)
            except ValueError:
                from rustle_deploy.playbook.yamlsrc import read_yaml

                data = read_yaml("<extra vars>", shown="-e", text=value).data
        else:
            try:
                data = parse_kv(value)
            except ArgsError as exc:
                raise UsageError(f"-e {value}: {exc}", "write -e name=value") from exc
            if "_raw_params" in data:
                raise UsageError(f"-e {value}: {data['_raw_params']!r} is not name=value",
                                 "write -e name=value, -e '{\"name\": ...}' or -e @vars.yml")
        if not isinstance(data, dict):
            raise UsageError(f"-e {value}: extra vars must be a mapping, not a "
                             f"{type(data).__name__}", "write -e name=value or -e '{...}'")
        if origins is not None and not value.startswith("@"):
            origins.update({str(k): "<CLI option '-e'>" for k in data})
        out.update({str(k): v for k, v in data.items()})
    return out
