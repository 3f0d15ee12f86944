"""Where the local files of ``copy``, ``template`` and ``script`` tasks are found.

A task's ``src`` is looked up, first hit wins, in:

1. the path itself when it is absolute;
2. ``base_dir/src`` (the plan file's directory; the current directory for standard input);
3. ``base_dir/files/src`` for ``copy`` and ``script``, ``base_dir/templates/src`` for ``template``
   (Ansible's role layout);
4. each ``--files-dir`` given, as in 2 and 3.

No local file is needed when the task has no ``src`` (``content=``), when ``remote_src`` is
true, or when ``src`` contains a Jinja2 expression (``{{``) that only the host can resolve.
A missing file is a PlanError that lists every path tried.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence

from rustle_deploy.errors import PlanError
from rustle_deploy.model import Plan, StaticFile, Task
from rustle_deploy.plan.schema import printable

SOURCE_MODULES = ("copy", "template", "script")

# Plan has no field for --files-dir (yet); parse_plan registers it here, keyed by id(plan),
# and forgets it when the plan is collected.
_FILES_DIRS: dict[int, tuple[str, ...]] = {}


def remember_files_dirs(plan: Plan, files_dirs: Sequence[str]) -> None:
    key = id(plan)
    _FILES_DIRS[key] = tuple(files_dirs)
    weakref.finalize(plan, _FILES_DIRS.pop, key, None)


def files_dirs_of(plan: Plan) -> tuple[str, ...]:
    return _FILES_DIRS.get(id(plan), ())


def _truthy(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("yes", "true", "1", "on", "y")
    return bool(value)


def _is_source_task(task: Task) -> bool:
    module = task.module
    if "." in module and not module.startswith(("ansible.builtin.", "ansible.legacy.")):
        return False
    return task.short_module in SOURCE_MODULES


def candidates(src: str, kind: str, base_dir: str, files_dirs: Sequence[str]) -> list[str]:
    """Every path ``src`` may be at, in search order (``kind``: copy, template or both)."""
    src = os.path.expanduser(src)
    if os.path.isabs(src):
        return [os.path.normpath(src)]
    subdirs = {"copy": ("files",), "script": ("files",), "template": ("templates",)}.get(kind, ("files", "templates"))
    out: list[str] = []
    for root in (base_dir, *files_dirs):
        root = os.path.abspath(os.path.expanduser(root))
        for path in (os.path.join(root, src), *(os.path.join(root, s, src) for s in subdirs)):
            path = os.path.normpath(path)
            if path not in out:
                out.append(path)
    return out


def _exists(path: str, kind: str) -> bool:
    """A template must be a file; a copy source may also be a directory."""
    try:
        return os.path.isfile(path) if kind == "template" else os.path.exists(path)
    except (ValueError, OSError):  # NUL bytes, unencodable names
        return False


def find(src: str, kind: str, *, source: str, pointer: str, base_dir: str,
         files_dirs: Sequence[str]) -> str:
    """The first existing candidate for ``src``, or a PlanError listing all of them."""
    tried = candidates(src, kind, base_dir, files_dirs)
    for path in tried:
        if _exists(path, kind):
            return path
    raise PlanError(
        f"no such file {src!r}; tried: {', '.join(printable(t) for t in tried)}",
        "relative paths resolve against the plan's directory (and its files/ or templates/); "
        "pass --files-dir to search elsewhere",
        file=source, pointer=pointer)


def script_source(args: dict[str, object]) -> tuple[str, str] | None:
    """A ``script`` task's script as written (the first word of its free-form text or
    ``cmd``, as ansible-core's script action splits it) and the argument holding it."""
    import shlex

    key = "_raw_params" if args.get("_raw_params") else "cmd"
    text = args.get(key)
    if not isinstance(text, str):
        return None
    try:
        words = shlex.split(text.strip())
    except ValueError:
        return None
    return (words[0], key) if words else None


def needs_local_source(task: Task) -> str | None:
    """The ``src`` to look up on the controller, or None when the task needs no local file."""
    if not _is_source_task(task):
        return None
    if task.short_module == "script":
        if task.extras.get("async") not in (None, 0, "0"):
            return None  # ansible-core's script fails an async task before it looks for the script
        found = script_source(task.args)
        return found[0] if found and "{{" not in found[0] and "{%" not in found[0] else None
    src = task.args.get("src")
    if not isinstance(src, str) or not src:
        return None
    if task.short_module == "copy" and _truthy(task.args.get("remote_src", False)):
        return None
    if "{{" in src or "{%" in src:
        return None
    if src in (task.extras.get("run_time_files") or {}):
        return None  # created while the play runs: the controller sends it with the task's phase
    return src


def resolve_source(plan: Plan, task: Task, *, files_dirs: Sequence[str] | None = None) -> str | None:
    """Absolute path of a copy/template task's local ``src``; None when it has none.

    ``files_dirs`` defaults to the ones given to ``parse_plan``/``load_plan`` for this plan.
    """
    src = needs_local_source(task)
    if src is None:
        return None
    dirs = files_dirs_of(plan) if files_dirs is None else tuple(files_dirs)
    where = "src" if task.short_module != "script" else (script_source(task.args) or ("", "_raw_params"))[1]
    return find(src, task.short_module, source=plan.source, pointer=f"{task.pointer}/args/{where}",
                base_dir=plan.base_dir, files_dirs=dirs)


def template_text(plan: Plan, task: Task) -> str | None:
    """The text of a ``template`` task's local ``src`` as the controller has it now; None for a
    templated or run-time ``src``, or a file that cannot be found or read."""
    if task.short_module != "template":
        return None
    try:
        path = resolve_source(plan, task)
        if path is None:
            return None
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except (PlanError, OSError):
        return None


def resolve_static_file(plan: Plan, static: StaticFile, pointer: str,
                        files_dirs: Sequence[str] | None = None) -> str | None:
    """Absolute path of a binary deployment's static file; None for a templated path."""
    if "{{" in static.src_path or "{%" in static.src_path or not static.src_path:
        return None
    dirs = files_dirs_of(plan) if files_dirs is None else tuple(files_dirs)
    return find(static.src_path, "both", source=plan.source, pointer=pointer,
                base_dir=plan.base_dir, files_dirs=dirs)
