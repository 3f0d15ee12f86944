"""``assemble`` with ``remote_src: false``: the fragments are assembled here, as ansible-core's
action plugin assembles them on the controller, and the task becomes the ``copy`` of the result.

The action plugin then copies the assembled file to ``dest`` with the copy module (or runs
the file module when ``dest`` already holds it: copy of the same content changes nothing
either), passing every argument but its own (``remote_src``, ``regexp``, ``delimiter``,
``ignore_hidden``, ``decrypt``). The assembled bytes are embedded like any copy ``src``.
"""

from __future__ import annotations

import codecs
import hashlib
import os
import re
from dataclasses import replace
from typing import Any

from ..errors import CompileError
from ..model import Plan, Task
from ..plan import files as plan_files

_OWN = ("remote_src", "regexp", "delimiter", "ignore_hidden", "decrypt")
_FALSE = ("no", "false", "0", "off", "n")
NAME = "(assembled fragments)"  # the copy src the embedded result is known by


def is_local(task: Task) -> bool:
    """Whether ``task`` is ansible-core's assemble with its fragments on the controller."""
    return (task.short_module == "assemble" and not task.is_block
            and (task.module.startswith(("ansible.builtin.", "ansible.legacy.")) or "." not in task.module)
            and str(task.args.get("remote_src", "yes")).strip().lower() in _FALSE)


def assembled(plan: Plan, task: Task) -> tuple[Task, bytes]:
    """The copy task that stands for ``task``, and the bytes it writes."""
    args = task.args
    src, where = args.get("src"), f"{plan.source}: {task.pointer}/args"
    if not isinstance(src, str) or args.get("dest") is None:
        raise CompileError(f"{where}: assemble: src and dest are required", "assemble: {src: DIR, dest: FILE}")
    if "{{" in src or "{%" in src:
        raise CompileError(f"{where}/src: assemble reads its fragments on the controller when the playbook "
                           f"is compiled: {src!r} must be known then", "name the directory literally")
    found = next((p for p in plan_files.candidates(src, "copy", plan.base_dir, plan_files.files_dirs_of(plan))
                  if os.path.isdir(p)), None)
    if found is None:
        raise CompileError(f"{where}/src: Source ({src}) is not a directory",
                           "relative paths resolve against the plan's directory (and its files/)")
    try:
        pattern = re.compile(str(args["regexp"])) if args.get("regexp") is not None else None
    except re.error as exc:
        raise CompileError(f"{where}/regexp: not a regular expression: {exc}", None) from exc
    hidden = str(args.get("ignore_hidden", False)).strip().lower() not in ("false", *_FALSE)
    data = fragments(found, args.get("delimiter"), pattern, hidden)
    copy_args = {k: v for k, v in args.items() if k not in _OWN}
    copy_args["src"] = NAME
    return replace(task, module="ansible.builtin.copy", args=copy_args), data


def fragments(path: str, delimiter: Any, pattern: re.Pattern[str] | None, ignore_hidden: bool) -> bytes:
    """ansible-core's ``_assemble_from_fragments``, byte for byte (its delimiter is unescaped
    again for each fragment, and is always followed by a newline: it compares an int with
    bytes)."""
    out = bytearray()
    delimit = add_newline = False
    for name in sorted(os.listdir(path)):
        if pattern is not None and not pattern.search(name):
            continue
        fragment = os.path.join(path, name)
        if not os.path.isfile(fragment) or (ignore_hidden and name.startswith(".")):
            continue
        with open(fragment, "rb") as fh:
            content = fh.read()
        if content.startswith(b"$ANSIBLE_VAULT"):
            raise CompileError(f"{fragment}: a vault-encrypted assemble fragment is not supported yet",
                               "decrypt the fragment, or assemble on the host (remote_src: true)")
        if add_newline:
            out += b"\n"
        if delimit and delimiter:
            delimiter = codecs.escape_decode(delimiter)[0]
            out += delimiter + b"\n"
        out += content
        delimit = True
        add_newline = not content.endswith(b"\n")
    return bytes(out)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
