"""Recorded oracle results of the acceptance targets the suite compares, replayed.

tests/acceptance/test_targets.py (``IDENTICAL``) and test_runme.py compare rustle-deploy's run
of an ansible-core integration target (or of one ``ansible-playbook`` line of a runme.sh) task by
task with ansible-playbook's run of the same. ansible-playbook's run depends only on its inputs
and costs minutes (copy: 47 under load), so it is recorded:
``tests/data/acceptance/<ansible-core version>/<target>.json`` (a runme invocation:
``runme/<target>/<line>.json``) holds what ansible-playbook produced (its exit code and each
task result: task, host, module, status, ignored, and for a failure its message, with the work
directory masked) and the key it was made from: a sha256 over ``inputs`` (the files of the
target and of every target it needs, as the sdist ships them; what the harness writes around
them: site.yml, the inventory, the ``ANSIBLE_*`` settings, the account names it gives; the
results callback's source; the ansible-core and Python versions; ``FORMAT``). Never edited by
hand: a record is only ever written from a run.

``RUSTLE_ORACLE`` picks the mode (the same names as tests/oracle.py's):

- unset or ``replay``: a record whose key matches is used; no record, or one of other inputs,
  runs ansible-playbook live and writes the record (to commit);
- ``live``: ansible-playbook always runs, and the test fails when a record of the same key
  says otherwise (exit code or any task result): a stale, doctored or machine-dependent record;
- ``record``: ansible-playbook always runs and the record is rewritten.

A run that timed out is never written. rustle-deploy's side always runs live. ``make
acceptance`` (harness.main) keeps running both tools live, with its own cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RECORDS = REPO / "tests" / "data" / "acceptance"
# Bumped when a record's shape or what goes into the key changes: every key changes with it.
FORMAT = 1
MODES = ("replay", "live", "record")


class OracleMismatch(AssertionError):
    """``live``: ansible-playbook's run now is not what the record says."""


def mode() -> str:
    value = os.environ.get("RUSTLE_ORACLE") or "replay"
    if value not in MODES:
        raise ValueError(f"RUSTLE_ORACLE={value!r}: expected one of {', '.join(MODES)} "
                         "(tests/acceptance/records.py)")
    return value


def tree_digest(path: Path) -> str:
    """sha256 over every file under ``path`` (relative path, then its bytes; a symbolic link's
    target instead), in path order."""
    digest = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path)).encode()
        if p.is_symlink():
            digest.update(b"L\0" + rel + b"\0" + os.readlink(p).encode() + b"\0")
        elif p.is_file():
            data = p.read_bytes()
            digest.update(b"F\0" + rel + b"\0" + str(len(data)).encode() + b"\0" + data)
    return digest.hexdigest()


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_of(inputs: dict[str, Any]) -> str:
    head = {"format": FORMAT, "python": f"{sys.version_info[0]}.{sys.version_info[1]}"}
    return hashlib.sha256(_canonical({"head": head, "inputs": inputs}).encode()).hexdigest()


def normalised(run: Any, mask: Callable[[str], str]) -> dict[str, Any]:
    """What a record keeps of an ansible-playbook run (a harness ``Run``): its exit code and, per
    task result, what the comparison reads (a failure's message and assertion, masked; not the
    output of results that did not fail, whose times and paths change from run to run)."""
    results = []
    for rec in run.results:
        out = {"task": mask(rec["task"]), "host": rec.get("host", ""), "module": rec.get("module", ""),
               "status": rec["status"], "ignored": bool(rec.get("ignored"))}
        if rec["status"] in ("failed", "unreachable"):
            out["msg"] = mask(str(rec.get("msg", "")))
            if "assertion" in rec:
                out["assertion"] = mask(str(rec["assertion"]))
        results.append(out)
    return {"code": run.code, "results": results}


@dataclass(frozen=True)
class Record:
    path: Path
    inputs: dict[str, Any]

    @property
    def key(self) -> str:
        return key_of(self.inputs)

    def load(self) -> dict[str, Any] | None:
        """The record written at ``path`` (whatever its key), or None."""
        if not self.path.is_file():
            return None
        doc: dict[str, Any] = json.loads(self.path.read_text())
        return doc

    def write(self, oracle: dict[str, Any], earlier: list[str], seconds: float) -> None:
        doc = {"format": FORMAT, "key": self.key, "inputs": self.inputs, "seconds": seconds, "earlier": earlier,
               "code": oracle["code"]}
        head = json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False)
        # one task result a line: a re-recorded target's diff shows the results that changed
        lines = ",\n".join("  " + json.dumps(r, sort_keys=True, ensure_ascii=False) for r in oracle["results"])
        text = head[:-2] + ',\n "results": [\n' + lines + "\n ]\n}\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(self.path)  # whole: a worker reading it meanwhile sees the old or the new


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def differences(recorded: dict[str, Any], live: dict[str, Any]) -> list[str]:
    """How a live run (normalised) differs from a record: its exit code, then its results in
    order (the first few)."""
    out = []
    if recorded["code"] != live["code"]:
        out.append(f"exit code: recorded {recorded['code']}, now {live['code']}")
    a, b = recorded["results"], live["results"]
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            out.append(f"result {i}: recorded {_canonical(x)}, now {_canonical(y)}")
    if len(a) != len(b):
        out.append(f"results: recorded {len(a)}, now {len(b)}")
    return out


def oracle_run(record: Record, run_live: Callable[[], Any], mask: Callable[[str], str], make_run: Callable[..., Any]) -> Any:
    """ansible-playbook's run for ``record``'s inputs: the record's (``replay`` with a matching
    key) or ``run_live()``'s, which is written (``replay`` without a matching record, ``record``)
    or checked against the record (``live``). ``make_run(code=, results=, earlier=, seconds=,
    log=)`` turns a record back into a harness ``Run``."""
    how = mode()
    doc = record.load()
    matching = doc is not None and doc.get("key") == record.key
    if how == "replay" and matching:
        assert doc is not None
        return make_run(code=doc["code"], results=doc["results"], earlier=doc.get("earlier", []),
                        seconds=doc.get("seconds", 0.0), log=f"(the recorded oracle: {_shown(record.path)})")
    run = run_live()
    if run.code is None:  # timed out: nothing to record or to check
        return run
    now = normalised(run, mask)
    if how == "live" and matching:
        assert doc is not None
        diff = differences(doc, now)
        if diff:
            raise OracleMismatch(f"{_shown(record.path)}: ansible-playbook's run now differs from the "
                                 "record (stale, doctored, or this machine answers otherwise):\n"
                                 + "\n".join(diff[:10]))
        return run
    record.write(now, run.earlier, run.seconds)
    return run
