"""What a host prints reaches the operator's terminal only as visible text (issue 11): escape
sequences in command output, debug messages, failure messages and task names are shown as
``\\x1b``, a newline in a task name cannot forge a line, and JSON keeps the exact data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import make_plan
from .test_cli import run_cli

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]

FORGED = "box | ok | all is well"
TASKS = [
    {"name": f"print\n{FORGED}", "module": "shell",
     "args": {"_raw_params": r"printf 'out\033[2J\033]0;owned\007\n" + FORGED + r"\r\n'"}, "register": "r"},
    {"name": "say", "module": "debug", "args": {"msg": "{{ r.stdout_lines[0] }}"}},
    {"name": "fail", "module": "shell", "args": {"_raw_params": r"printf 'bad\033[31m\033[2J' >&2; exit 3"}},
]


def raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f]


def setup(tmp_path: Path, sshd: Any) -> tuple[Path, Path]:
    plan = make_plan(tmp_path, TASKS, hosts=("box",))
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"box": dict(sshd.host("box", tmp_path / "remote").vars)}}}))
    return plan, inv


@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
def test_host_output_and_task_names_are_shown_visibly(
    client: str, tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    plan, inv = setup(tmp_path, sshd)
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "-vv", "--output", "text", "--ssh-client", client)
    assert code == 1, out + err
    for text in (out, err):
        assert not raw_controls(text), repr(text)
        assert not [line for line in text.splitlines() if line.startswith(FORGED)], text
    assert f"box | changed | print\\n{FORGED}" in out
    assert "out\\x1b[2J\\x1b]0;owned\\x07" in out  # -vv stdout
    assert "box | ok | say | out\\x1b[2J\\x1b]0;owned\\x07\n" in out  # the debug message
    assert "bad\\x1b[31m\\x1b[2J" in out  # the failure message (its stderr)
    assert "task failed: fail" in out


def test_json_output_keeps_the_exact_data(tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]) -> None:
    plan, inv = setup(tmp_path, sshd)
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "-v", "--output", "json")
    assert code == 1
    assert not raw_controls(err), repr(err)  # the human output, on stderr
    doc = json.loads(out)
    assert doc["hosts"][0]["recap"]["failed"] == 1
    (journal,) = (tmp_path / "remote" / "runs").glob("*.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    printed = next(e for e in events if e.get("event") == "task_result" and e.get("module") == "shell")
    assert printed["task"] == f"print\n{FORGED}"
    assert "\x1b[2J\x1b]0;owned\x07" in printed["stdout"]
