"""Magic variables in the native formats, against ansible-playbook: the playbook case
tests/data/playbooks/magic_vars reads, in conditions, the names ansible-core gives a task beside
the inventory's and the play's (``playbook_dir``, ``groups``, ``group_names``,
``inventory_hostname_short``, ``ansible_play_name``, ``role_path``/``role_name``, the loop's
``ansible_loop``/``ansible_loop_var``/``ansible_index_var``, a host list, ``hostvars``), also
through ``is defined`` and ``default``, which decide an undefined name without failing: each
task that sees its names as ansible-core does writes a file.

The native compiler lowers the names it knows at compile time and refuses those only the
Python runtime has while the play runs (the play's host lists, ``hostvars``), saying so:
``--format hybrid`` runs the case with exactly those two tasks in the host's Python, ``--format
auto`` picks pyz for it, ``--format native`` refuses it; every run leaves ansible-playbook's
files. ansible-playbook's side is test_playbooks_ansible's recorded run of the case (one
oracle run, shared with that test).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rustle_deploy.cli import main

from ..integration.test_playbooks_ansible import ANSIBLE, prepare, run_ansible, tree

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]

CASE = "magic_vars"
# the tasks the native runner does not run, and the name that makes each the Python runtime's
PYTHON_TASKS = {"a host list is defined": "'ansible_play_hosts' is the play's hosts still in it",
                "hostvars": "'hostvars' is every host's variables"}


def test_magic_variables_are_lowered_or_left_to_python_as_ansible_gives_them(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path) -> None:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    work, inv, _ = prepare(CASE, tmp_path)
    a_out = tmp_path / "a"
    a_out.mkdir()
    theirs = run_ansible(CASE, work, inv, a_out, [], tmp_path)
    assert theirs["code"] == 0, theirs["log"]
    assert len(theirs["tree"]) == 9, theirs["tree"]  # every task found its names

    def run(fmt: str) -> tuple[int, str, dict[str, object]]:
        out = tmp_path / fmt
        out.mkdir()
        code = main([str(work / "site.yml"), "-i", str(inv), "--run", "--output", "json", "-v",
                     "--format", fmt, "-e", f"out={out}"])
        stdout, stderr = capsys.readouterr()
        return code, stderr, tree(out, tmp_path)

    code, log, files = run("hybrid")
    assert code == 0, log
    assert files == theirs["tree"], log
    (line,) = [line for line in log.splitlines() if line.startswith("format: hybrid for localhost:")]
    assert set(re.findall(r"task '([^']+)' \(play-", line)) == set(PYTHON_TASKS), line
    for task, why in PYTHON_TASKS.items():
        assert f"task '{task}' (play-0/task_" in line and why in line.split(f"task '{task}'", 1)[1], line

    code, log, files = run("auto")
    assert code == 0, log
    assert files == theirs["tree"], log
    assert "format: pyz for localhost: the plan does not lower to the native runner" in log, log

    code, log, files = run("native")
    assert code == 2, log
    assert "the pyz runtime" in log and "--format pyz" in log, log
    assert files == {}, log
