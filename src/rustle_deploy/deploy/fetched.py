"""Files a ``fetch`` task brings back from a host, written on the controller.

The host's run sends a file's bytes in a ``fetched`` event (kept out of its journal: see the
runtime's executor). Where they go is never the host's to say: the path is the one the
compiler decided for this host (``compiler/units.fetch_targets``), read from the artifact's own
``plan.json``, which the controller built; the host only gives the task id and the bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import HostError


@lru_cache(maxsize=8)
def _targets(artifact: str) -> dict[str, dict[str, Any]]:
    """Task id -> {host: target} for the fetch tasks of the artifact at ``artifact``."""
    with zipfile.ZipFile(artifact) as zf:
        plan = json.loads(zf.read("plan.json"))

    def walk(tasks: Any) -> Iterator[dict[str, Any]]:
        for task in tasks or ():
            if isinstance(task, dict):
                yield task
                for key in ("block", "rescue", "always"):
                    yield from walk(task.get(key))

    return {str(t.get("id")): t["fetch"] for play in plan.get("plays") or ()
            for t in (*walk(play.get("tasks")), *walk(play.get("handlers"))) if isinstance(t.get("fetch"), dict)}


def write_fetched(artifact: Path | None, host: str, event: dict[str, Any]) -> None:
    """Write the bytes of ``event`` where the artifact says ``host``'s file goes; HostError
    when the event does not match a fetch task of the artifact or its bytes do not."""
    target = _targets(str(artifact)).get(str(event.get("id")), {}).get(host) if artifact else None
    if not isinstance(target, dict) or not isinstance(target.get("dest"), str):
        raise HostError(host, f"the host sent a fetched file for task {event.get('id')!r}, which fetches "
                              "nothing for it in the artifact", "redeploy: the host may run another artifact")
    dest = target["dest"]
    try:
        data = base64.b64decode(str(event.get("data", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HostError(host, f"the fetched file for {dest} is not base64: {exc}") from exc
    if event.get("validate", True) and hashlib.sha1(data).hexdigest() != event.get("checksum"):  # noqa: S324
        raise HostError(host, f"checksum mismatch: the file fetched for {dest} is not what the host read",
                        "run again; with validate_checksum: false the file is written as received")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.rustle-{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise HostError(host, f"Failed to fetch the file: cannot write {dest}: {exc.strerror}") from exc
