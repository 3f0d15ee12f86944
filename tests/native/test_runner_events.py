"""The runner's event lines on stdout (native/src/events.rs) are live: a task that blocks is seen
to start before it ends, and every line of the journal reaches stdout, in the journal's order.
A guard for any buffering of those lines (session 11 measured one that wrote a run's quick
tasks' lines together: no CPU saved, not kept; docs/decisions.md)."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.compiler.runner import RunnerBinary

from .test_native_runs import cli

GUARD = 120.0  # seconds a line may take before the test gives up (a hang, not a timing check)

PLAYBOOK = """
- hosts: all
  gather_facts: false
  tasks:
    - name: before
      debug:
        msg: quick
    - name: blocked
      command: cat FIFO
    - name: after
      debug:
        msg: done
"""


def read_lines(fd: int, until: str) -> list[dict[str, Any]]:
    """The lines read from ``fd`` up to the ``task_start`` of the task named ``until`` (the
    runner may write several lines at once: read as they come, not through a buffered reader)."""
    data = b""
    lines: list[dict[str, Any]] = []
    while not (lines and lines[-1].get("event") == "task_start" and lines[-1].get("task") == until):
        ready, _, _ = select.select([fd], [], [], GUARD)
        assert ready, f"no event line from the runner; so far {lines}"
        chunk = os.read(fd, 65536)
        assert chunk, f"the runner's stdout ended; so far {lines}"
        data += chunk
        *done, data = data.split(b"\n")
        lines += [json.loads(line) for line in done]
    assert data == b"", "the blocked task's start line is the last one made"
    return lines


def test_a_blocked_task_is_seen_to_start_and_every_journal_line_reaches_stdout_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], runner: RunnerBinary, native_cache: Path
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    book = tmp_path / "site.yml"
    book.write_text(PLAYBOOK.replace("FIFO", str(fifo)))
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    code, _, err = cli(capsys, str(book), "-i", str(inv), "--compile-only", "--format", "native",
                       "-o", str(tmp_path / "out"), "--output", "json")
    assert code == 0, err
    (art,) = json.loads((tmp_path / "out" / "manifest.json").read_text())["artifacts"]
    journal = tmp_path / "journal.jsonl"
    proc = subprocess.Popen([str(runner.path), "run", str(tmp_path / "out" / art["file"]), "--host", "localhost",
                             "--journal", str(journal), "--run-id", "r1"], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = read_lines(proc.stdout.fileno(), "blocked")
        # the task is blocked on the fifo until it is opened here: its start line came without it
        assert proc.poll() is None
        with open(fifo, "w") as pipe:
            pipe.write("released\n")
        rest = proc.communicate(timeout=GUARD)[0].decode().splitlines()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    lines = [json.dumps(e, sort_keys=True) for e in seen + [json.loads(line) for line in rest]]
    assert lines == [json.dumps(json.loads(line), sort_keys=True) for line in journal.read_text().splitlines()]
    results = [e for e in seen + [json.loads(line) for line in rest] if e.get("event") == "task_result"]
    assert [(e["task"], e["status"]) for e in results] == [("before", "ok"), ("blocked", "changed"),
                                                           ("after", "ok")]
    assert results[1]["stdout"] == "released"
