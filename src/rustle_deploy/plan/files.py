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
from collections.abc import Iterator, Sequence
from typing import Any

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


def template_references(path: str) -> list[str | None]:
    """The template names ``path`` includes, imports or extends; None for a computed one."""
    import jinja2
    from jinja2 import meta

    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except OSError:
        return []
    options: dict[str, Any] = {}
    if text.startswith("#jinja2:"):
        import ast

        line, _, text = text.partition("\n")
        for pair in line[len("#jinja2:"):].split(","):
            key, _, value = pair.partition(":")
            try:
                options[key.strip()] = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                return []
    try:
        env = jinja2.Environment(**{k: v for k, v in options.items() if k != "newline_sequence"})
        return list(meta.find_referenced_templates(env.parse(text)))
    except Exception:  # noqa: BLE001 - a template that does not parse fails on the host, as in Ansible
        return []


# how many templates template_texts reads for one task (its src and what that includes)
_MAX_INCLUDES = 32


def template_texts(plan: Plan, task: Task) -> Iterator[str]:
    """The text of a ``template`` task's local ``src`` and of the templates it includes, imports
    or extends by a literal name, found as Ansible's template search path finds them (the play's
    directory, the files directories, the including template's own, each with its
    ``templates/`` first); nothing for a templated or run-time ``src``."""
    yield from template_walk(plan, task)[0]


def template_walk(plan: Plan, task: Task) -> tuple[list[str], bool]:
    """(``template_texts``, whether they are all the task may render): not when its ``src`` is
    templated or read at run time, or a template reached includes, imports or extends a
    computed name (a host renders it: its text is not known here)."""
    if task.short_module != "template":
        return [], True
    try:
        first = resolve_source(plan, task)
    except PlanError:
        return [], False
    texts: list[str] = []
    complete = first is not None or not isinstance(task.args.get("src"), str)
    todo = [first] if first else []
    seen: set[str] = set()
    while todo and len(seen) < _MAX_INCLUDES:
        path = todo.pop(0)
        if path in seen:
            continue
        seen.add(path)
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                texts.append(fh.read())
        except OSError:
            continue
        roots = [p for root in (plan.base_dir, *files_dirs_of(plan), os.path.dirname(path))
                 for p in (os.path.join(root, "templates"), root)]
        for ref in template_references(path):
            found = next((c for c in (os.path.join(r, *ref.split("/")) for r in roots) if os.path.isfile(c)), None) \
                if ref is not None else None
            if found is not None:
                todo.append(found)
            elif ref is None:
                complete = False
    return texts, complete


def resolve_static_file(plan: Plan, static: StaticFile, pointer: str,
                        files_dirs: Sequence[str] | None = None) -> str | None:
    """Absolute path of a binary deployment's static file; None for a templated path."""
    if "{{" in static.src_path or "{%" in static.src_path or not static.src_path:
        return None
    dirs = files_dirs_of(plan) if files_dirs is None else tuple(files_dirs)
    return find(static.src_path, "both", source=plan.source, pointer=pointer,
                base_dir=plan.base_dir, files_dirs=dirs)
