"""Recorded oracle results: ansible-core's answers to the differential tests, replayed.

A differential test runs the same input under ansible-playbook (the oracle) and under
rustle-deploy, and compares. ansible-core's answer depends only on its inputs, and it is most of
the suite's CPU time (an ansible-playbook run costs seconds), so the oracle side goes through
``recorded(kind, inputs, run)``:

- ``inputs`` is everything that decides ansible-core's answer, normalised (a playbook's and its
  files' text, the inventory, the command line, the environment variables that matter; the
  test's temporary directory, the Python and the checkout written as placeholders: ``norm``).
  The key is a sha256 over them, the ansible-core and Python versions and ``FORMAT``.
- ``run()`` runs ansible-core live and returns its normalised results (JSON-able).
- The record, ``tests/data/oracle/<kind>/<key>.json`` (sorted keys, committed), holds those
  results and nothing else: never edited by hand (tests/data/oracle/README.md).

``RUSTLE_ORACLE`` picks the mode:

- unset or ``replay``: a record present is used; a missing one is made by running ``run()``
  and written (a changed input is a new key, so it re-runs the oracle by itself and leaves a new
  file to commit; the run says so at its end);
- ``live``: ``run()`` always, and a record that differs from it fails the test (stale, doctored
  or non-deterministic);
- ``record``: ``run()`` always, and the record rewritten (``make oracle-record``, which then
  removes the records no test used).

Our own side (rustle-deploy) always runs live: only the oracle's side is recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "tests" / "data" / "oracle"
# Bumped when a record's shape or the normalisation changes: every key changes with it.
FORMAT = 1
MODES = ("replay", "live", "record")
# The environment variables that a test's oracle run may read: ansible-core's own, those the
# tests' playbooks look up ($USER, $RUSTLE_CONTROLLER_VAR) and the locale; the rest of the
# environment decides nothing recorded. The suite's own switches are left out.
ENV_PREFIXES = ("ANSIBLE_", "RUSTLE_")
ENV_VARS = ("USER", "LANG", "LC_ALL")
ENV_IGNORED = ("RUSTLE_ORACLE", "RUSTLE_TEST_CPU")


def mode() -> str:
    value = os.environ.get("RUSTLE_ORACLE") or "replay"
    if value not in MODES:
        raise ValueError(f"RUSTLE_ORACLE={value!r}: expected one of {', '.join(MODES)}")
    return value


def _places(places: dict[str, str | Path]) -> list[tuple[str, str]]:
    """Placeholders, longest path first (a tmp dir inside the checkout is replaced before it)."""
    every = {**{str(v): k for k, v in places.items()}, str(REPO): "{repo}", sys.executable: "{python}",
             str(Path(sys.executable).parent): "{bin}"}
    return sorted(every.items(), key=lambda kv: -len(kv[0]))


def norm(value: Any, places: dict[str, str | Path]) -> Any:
    """``value`` (JSON-able) with each of ``places``' paths (placeholder -> path) and the
    checkout, the Python and its bin directory written as placeholders, in strings and keys."""
    table = _places(places)

    def one(v: Any) -> Any:
        if isinstance(v, str):
            for path, name in table:
                v = v.replace(path, name)
            return v
        if isinstance(v, (list, tuple)):
            return [one(x) for x in v]
        if isinstance(v, dict):
            return {one(k): one(x) for k, x in v.items()}
        return v

    return one(value)


def denorm(value: Any, places: dict[str, str | Path]) -> Any:
    """``norm`` undone: a replayed record's placeholders written as this run's paths, as a live
    run's results name them."""
    table = _places(places)

    def one(v: Any) -> Any:
        if isinstance(v, str):
            for path, name in table:
                v = v.replace(name, path)
            return v
        if isinstance(v, list):
            return [one(x) for x in v]
        if isinstance(v, dict):
            return {one(k): one(x) for k, x in v.items()}
        return v

    return one(value)


def blob(data: bytes) -> str | dict[str, str]:
    """A file's bytes as JSON: its text, or ``{"base64": ...}`` when it is not UTF-8."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every file under ``root`` (relative path -> text or blob; a link -> ``{"link": target}``)
    but those under a top-level entry named in ``skip`` (what the tools write; ``name*``: every
    name starting so) and bytecode caches: the input files of a case, for the key."""
    exact = {s for s in skip if not s.endswith("*")}
    prefixes = tuple(s[:-1] for s in skip if s.endswith("*"))
    out: dict[str, Any] = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        top = rel.split(os.sep, 1)[0]
        if top in exact or (prefixes and top.startswith(prefixes)) or "__pycache__" in p.parts:
            continue
        if p.is_symlink():
            out[rel] = {"link": os.readlink(p)}
        elif p.is_file():
            out[rel] = blob(p.read_bytes())
    return out


def env(full: dict[str, str]) -> dict[str, str]:
    """The part of an oracle run's environment that can decide its answer (``ENV_*``;
    normalise it with the test's places before it goes into the inputs)."""
    return {k: v for k, v in sorted(full.items())
            if (k.startswith(ENV_PREFIXES) or k in ENV_VARS) and k not in ENV_IGNORED}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def key(kind: str, inputs: Any) -> str:
    head = {"format": FORMAT, "kind": kind, "ansible-core": version("ansible-core"),
            "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    return hashlib.sha256(_canonical({"head": head, "inputs": inputs}).encode()).hexdigest()


def path(kind: str, inputs: Any) -> Path:
    return RECORDS / kind / f"{key(kind, inputs)}.json"


def _write(target: Path, result: Any) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as out:
        out.write(_canonical(result))
    os.chmod(tmp, 0o644)  # mkstemp's 0600: a committed file, readable as any other
    os.replace(tmp, target)  # atomic: another worker reading the same record sees all or nothing


# ansible-core's temporary names (a time stamp, a pid, random digits): the same answer each run
_RANDOM = ((re.compile(r"ansible-tmp-[0-9.]+-[0-9]+-[0-9]+"), "ansible-tmp-RANDOM"),
           (re.compile(r"ansible-local-[0-9]+[A-Za-z0-9_]+"), "ansible-local-RANDOM"))


def _unrandom(value: Any) -> Any:
    if isinstance(value, str):
        for pattern, name in _RANDOM:
            value = pattern.sub(name, value)
        return value
    if isinstance(value, list):
        return [_unrandom(v) for v in value]
    if isinstance(value, dict):
        return {_unrandom(k): _unrandom(v) for k, v in value.items()}
    return value


def _stable(result: Any, volatile: tuple[str, ...]) -> Any:
    """What ``live`` compares: the result without its ``volatile`` entries and temporary names."""
    return _unrandom({k: v for k, v in result.items() if k not in volatile} if isinstance(result, dict) else result)


class OracleMismatch(AssertionError):
    pass


def recorded(kind: str, inputs: Any, run: Callable[[], Any], volatile: tuple[str, ...] = ()) -> Any:
    """ansible-core's results for ``inputs``: the record's, or ``run()``'s (see the module's
    doc for the modes). ``run()`` must return normalised, deterministic, JSON-able results;
    ``volatile`` names entries of its dict that are kept for failure messages only (the console
    log, whose command results carry times) and that ``live`` does not compare."""
    target = path(kind, inputs)
    how = mode()
    if how == "replay" and target.exists():
        return json.loads(target.read_text())
    result = _unrandom(json.loads(_canonical(run())))  # what a replay reads back: lists, not tuples
    if how == "live" and target.exists():
        old = json.loads(target.read_text())
        if _stable(old, volatile) != _stable(result, volatile):
            raise OracleMismatch(
                f"the recorded oracle result {target} differs from ansible-core's "
                f"live answer (a stale, edited or non-deterministic record):\nrecorded: {_canonical(old)}"
                f"live:     {_canonical(result)}")
        return result
    _write(target, result)
    return result


def written_since(start: float) -> list[Path]:
    """The records written (made or rewritten) since ``start`` (a time.time())."""
    if not RECORDS.is_dir():
        return []
    return sorted(p for p in RECORDS.rglob("*.json") if p.stat().st_mtime >= start)
