"""What ansible-test does around a target that the harness does too (tests/acceptance/harness.py):
the targets it never runs as roles (hidden ones, runme.sh ones whose role fails alone), the
environment it gives (``env/set/`` aliases, ``ANSIBLE_TEST_SETTINGS`` and ``$OUTPUT_DIR`` for
``AS_ANSIBLE_TEST``, the account's home for ``ACCOUNT_HOME``), and that the committed records'
keys stand. Real ansible-playbook and rustle-deploy runs of small role-shaped targets (about
15 s of CPU)."""

from __future__ import annotations

import json
import os
import pwd
from pathlib import Path

import pytest

from . import harness, runme
from .harness import as_ansible_test, env_set, not_run, oracle_record, run_target

ENV_TASKS = """\
- name: the environment ansible-test gives
  assert:
    that:
      - lookup('env', 'OUTPUT_DIR') == output_dir
      - lookup('env', 'RUSTLE_ALIAS_SET') == 'from aliases'
      - lookup('env', 'ANSIBLE_INVENTORY') == '/dev/null'
- name: the open-files limit of a module
  shell: ulimit -n
  register: limit
- assert:
    that: limit.stdout == '1024'
"""
ASYNC_TASKS = """\
- name: a job polled where it was started
  shell: sleep 1; echo done
  async: 30
  poll: 1
  register: job
- assert:
    that: job.stdout == 'done'
"""


def _targets(tmp_path: Path) -> Path:
    targets = tmp_path / "targets"
    for name, tasks, al in (("envtarget", ENV_TASKS, "gather_facts/no\nenv/set/RUSTLE_ALIAS_SET/from aliases\n"),
                            ("asynctarget", ASYNC_TASKS, "gather_facts/no\n")):
        (targets / name / "tasks").mkdir(parents=True)
        (targets / name / "tasks" / "main.yml").write_text(tasks)
        (targets / name / "aliases").write_text(al)
    return targets


def test_what_ansible_test_never_runs_as_a_role_is_not_run_with_the_reason(root: Path) -> None:
    assert (not_run(root, "include_parent_role_vars") or "").startswith("hidden: ")  # special_vars runs it
    assert not_run(root, "special_vars") is None
    for name in harness.RUNME_ONLY:
        assert (root / name / "runme.sh").is_file() and (root / name / "tasks" / "main.yml").is_file()
        assert (not_run(root, name) or "").startswith("script: ansible-test runs its runme.sh"), name
    assert set(harness.RUNME_ONLY) <= set(runme.runme_targets(root))  # Part 2 runs their playbooks
    assert not_run(root, "template") is None  # a runme.sh target whose role passes alone is still run


def test_a_targets_environment_is_ansible_tests_where_the_harness_gives_it(root: Path, tmp_path: Path) -> None:
    assert env_set(root, "module-serialization-profiles") == {"_ANSIBLE_MODULE_METADATA": "1"}
    assert env_set(root, "task-esoterica") == {"ANSIBLE_DEPRECATION_WARNINGS": "yes"}
    work = tmp_path / "w"
    assert as_ansible_test(root, "lookup_pipe", work) == {**harness.ANSIBLE_TEST_SETTINGS, "OUTPUT_DIR": str(work / "output"),
                                                         "INVENTORY_PATH": str(work / "inventory")}
    assert as_ansible_test(root, "async", work) == {"HOME": pwd.getpwuid(os.getuid()).pw_dir}
    assert as_ansible_test(root, "copy", work) == {}
    inputs = oracle_record(root, "async").inputs
    assert inputs["ansible-test"] == {"HOME": "{account's home}"}  # no machine's path in a key
    assert "ansible-test" not in oracle_record(root, "copy").inputs


def test_the_committed_records_keys_stand(root: Path) -> None:
    """Every record the suite replays was made from the inputs a run has now: a harness change
    that gives the recorded targets something new must record them again."""
    from .records import RECORDS

    stale = [p.stem for p in sorted((RECORDS / harness.ANSIBLE_VERSION).glob("*.json"))
             if json.loads(p.read_text())["key"] != oracle_record(root, p.stem).key]
    assert not stale, f"records made from other inputs than a run's now: {stale}"


@pytest.mark.parametrize("tool", ["ansible", "rustle"])
def test_both_tools_get_the_environment_and_a_jobs_home(tool: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    targets = _targets(tmp_path)
    monkeypatch.setattr(harness, "AS_ANSIBLE_TEST", frozenset({"envtarget"}))
    run = run_target(targets, "envtarget", tool, base=tmp_path)
    assert run.passed, harness.blocker(run) + run.log[-3000:]
    monkeypatch.setattr(harness, "ACCOUNT_HOME", frozenset())
    run = run_target(targets, "asynctarget", tool, base=tmp_path)
    if tool == "ansible":  # the private HOME: async_status looks under ~root, the job wrote under $HOME
        assert not run.passed and "could not find job" in harness.blocker(run), run.log[-3000:]
    monkeypatch.setattr(harness, "ACCOUNT_HOME", frozenset({"asynctarget"}))
    run = run_target(targets, "asynctarget", tool, base=tmp_path)
    assert run.passed, harness.blocker(run) + run.log[-3000:]
