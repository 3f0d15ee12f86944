"""Host data is data (issue 11), over a real sshd: what the host sends back is never a template.

A command's output, a fact set from it, a file read by ``slurp`` and by ``lookup('file')`` hold a
template that would create a marker file if it ran; the run prints them literally, as
ansible-core does, and the marker never appears.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import make_plan
from .test_cli import run_cli

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]  # a private ~/.rustle


def when(expression: str) -> list[dict[str, Any]]:
    return [{"When": {"expression": expression}}]


def _journal(remote: Path) -> dict[str, dict[str, Any]]:
    (path,) = (remote / "runs").glob("*.jsonl")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    return {e["task"]: e for e in events if e["event"] == "task_result"}


def test_host_data_is_printed_never_run_over_ssh(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 sshd: Any) -> None:
    mark = tmp_path / "PWNED"
    payload = f"{{{{ lookup('pipe', 'touch {mark}') }}}}"
    bare = f"lookup('pipe', 'touch {mark}-bare')"
    src = tmp_path / "payload.txt"
    src.write_text(payload + "\n")
    (tmp_path / "bare.txt").write_text(bare + "\n")
    tasks = [
        {"name": "read", "module": "command", "args": {"_raw_params": "cat {{ src }}"}, "register": "r"},
        {"name": "print", "module": "debug", "args": {"msg": "{{ r.stdout }}"}},
        {"name": "copy", "module": "copy", "args": {"content": "{{ r.stdout }}", "dest": f"{tmp_path}/copied"}},
        {"name": "compare", "module": "debug", "args": {"msg": "compared"}, "conditions": when("r.stdout != ''")},
        {"name": "set", "module": "set_fact", "args": {"fact": "pre {{ r.stdout }}"}},
        {"name": "print fact", "module": "debug", "args": {"msg": "{{ fact }}"}},
        {"name": "slurp", "module": "slurp", "args": {"src": "{{ src }}"}, "register": "s"},
        {"name": "print slurped", "module": "debug", "args": {"msg": "{{ s.content | b64decode }}"}},
        {"name": "lookup", "module": "debug", "args": {"msg": "{{ lookup('file', src) }}"}},
        {"name": "read bare", "module": "command", "args": {"_raw_params": f"cat {tmp_path}/bare.txt"},
         "register": "b"},
        {"name": "templated when", "module": "debug", "args": {"msg": "ran"}, "ignore_errors": True,
         "conditions": when("{{ b.stdout }}")},
    ]
    plan = make_plan(tmp_path, tasks, play_vars={"src": str(src)}, hosts=("box",))
    remote = tmp_path / "remote"
    h = sshd.host("box", remote)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {h.name: dict(h.vars)}}}))
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert json.loads(out)["hosts"][0]["recap"]["failed"] == 0
    assert not list(tmp_path.glob("PWNED*")), "host data ran as a template"
    results = _journal(remote)
    for name in ("print", "print slurped", "lookup"):
        assert results[name]["msg"].rstrip("\n") == payload, results[name]
    assert results["print fact"]["msg"] == f"pre {payload}"
    assert results["compare"]["status"] == "ok"
    assert (tmp_path / "copied").read_text() == payload
    bad = results["templated when"]
    assert bad["status"] == "failed" and bad["ignored"] and bad["msg"].endswith("Encountered untrusted template or expression.")
