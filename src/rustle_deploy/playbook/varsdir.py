"""``include_vars: {dir: ...}`` read as ansible-core's include_vars action reads it.

The compiler reads a directory that exists when it compiles; one that is missing then (an
earlier task on the controller creates it) is read by the controller when the task's phase
starts (``fleetops``, docs/phases.md), with the same walk: both call ``read_vars_dir``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from .. import vault
from ..errors import PlaybookError


def read_vars_dir(root: str, options: dict[str, Any],
                  load: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """``{"files": [[path, vars], ...], "error": why the task fails or None}``, in ansible-core's
    load order, with ``"locked"``: ansible-core's words for a vault-encrypted file in it that no
    secret of the run opens (the task fails with them, in ansible-core's shape). ``options`` are the checked ones (``vars_dir_options``); ``load`` reads one
    vars file (a mapping; PlaybookError when it is not one)."""
    if not os.path.exists(root):
        return {"files": [], "error": f"{root} directory does not exist"}
    if not os.path.isdir(root):
        return {"files": [], "error": f"{root} is not a directory"}
    depth = int(options.get("depth") or 0)
    matcher = re.compile(options["files_matching"]) if options.get("files_matching") else None
    ignored = [re.compile(f"{pattern}$") for pattern in options.get("ignore_files") or []]
    extensions = list(options.get("extensions") or [])
    files: list[list[Any]] = []
    for current, _dirs, names in sorted(os.walk(root, followlinks=True), key=lambda w: w[0]):
        level = len(os.path.relpath(current, root).split(os.sep)) + 1 if current != root else 1
        if depth and level > depth:
            continue
        loaded: list[list[Any]] = []
        for fname in sorted(names):
            if matcher is not None and not matcher.search(fname):
                continue
            if any(p.search(fname) for p in ignored):
                continue
            valid = os.path.splitext(fname)[1][1:] in extensions
            if options.get("lenient") and not valid:
                continue
            path = os.path.join(current, fname)
            if not valid:
                return {"files": files, "error": f"{path} does not have a valid extension: "
                                                 + ", ".join(extensions)}
            try:
                loaded.append([path, load(path)])
            except PlaybookError:
                locked = vault.file_locked(path)
                if locked is not None:  # the task fails with ansible-core's words for it
                    from ..compiler.sources import locked_message

                    return {"files": files, "error": None, "locked": locked_message(path, locked, "include_vars")}
                return {"files": files, "error": f"{path} must be stored as a dictionary/hash"}
        files.extend(loaded)
    return {"files": files, "error": None}


def load_vars_file(path: str) -> dict[str, Any]:
    """One vars file's variables (PlaybookError when it is not YAML or not a mapping)."""
    from .yamlsrc import read_yaml

    data = read_yaml(path, what="vars file").data
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PlaybookError("a vars file must be a mapping of variable names to values", file=path)
    return {str(k): v for k, v in data.items()}
