"""Each acceptance run keeps to itself: its processes end with it (a timed-out one too), its
accounts are its own and removed after it, and a timing-sensitive target is run again while it
fails (tests/acceptance/harness.py)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from . import harness
from .harness import RUN_MARK, Run, _processes, execute, run_attempts, run_target


def _marked_now(work: Path) -> set[int]:
    return harness._marked(_processes(), str(work))


def test_a_timed_out_run_ends_every_process_it_started_before_its_directory_is_removed(tmp_path: Path) -> None:
    """A run's children in sessions of their own (setsid, as sudo makes) and a daemon that left
    its tree all keep writing into the work directory; a timeout ends every one of them."""
    work = tmp_path / "work"
    work.mkdir()
    loop = f"while :; do date >> {work}/$0.log; sleep 0.2; done"
    script = (f"setsid sh -c '{loop}' own-session & "
              f"(sh -c '{loop}' daemon &) ; "
              f"sh -c '{loop}' child")
    run = execute("rustle", ["sh", "-c", script], work, work, dict(os.environ), [work / "remote"], timeout=2)
    assert run.refused == "timed out after 2 s" and run.code is None
    assert not _marked_now(work)
    harness._remove_tree(work)
    assert not work.exists()


def test_a_run_that_exits_leaves_no_daemon_behind(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    run = execute("rustle", ["sh", "-c", f"(setsid sleep 600 >/dev/null 2>&1 &) ; echo started > {work}/out"], work, work,
                  dict(os.environ), [work / "remote"])
    assert run.code == 0 and (work / "out").read_text() == "started\n"
    assert not _marked_now(work)


def test_rustle_deploys_per_host_deadline_is_the_runs_own_timeout(tmp_path: Path) -> None:
    """rustle-deploy's --timeout defaults to 120 s per host, ansible-playbook has none: a long target
    (uri: 300+ s under load) was cut at 120 s, "no result within 120s", at whatever task it had reached."""
    work = tmp_path / "work"
    work.mkdir()
    run = execute("rustle", ["sh", "-c", f"echo $RUSTLE_DEPLOYMENT_TIMEOUT > {work}/deadline"], work, work,
                  dict(os.environ), [work / "remote"], timeout=777)
    assert run.code == 0 and (work / "deadline").read_text() == "777\n"


def test_a_marked_process_of_another_run_is_left_alone(tmp_path: Path) -> None:
    import subprocess

    other = subprocess.Popen(["sleep", "600"], env=dict(os.environ, **{RUN_MARK: str(tmp_path / "other")}))
    try:
        execute("rustle", ["true"], tmp_path, tmp_path, dict(os.environ), [tmp_path / "remote"])
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def _target(root: Path) -> Path:
    role = root / "accounts"
    (role / "tasks").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "aliases").write_text("needs/root\n")
    (role / "defaults" / "main.yml").write_text(
        "remote_unprivileged_user: tmp_ansible_test_user\nremote_unprivileged_user_group: test_ansible_test_group\n")
    (role / "tasks" / "main.yml").write_text(
        "- group: name={{ remote_unprivileged_user_group }}\n"
        "- user: name={{ remote_unprivileged_user }} group={{ remote_unprivileged_user_group }}\n"
        "- copy:\n    dest: /etc/sudoers.d/{{ remote_unprivileged_user }}\n"
        "    content: \"{{ remote_unprivileged_user }} ALL=(ALL) NOPASSWD: ALL\\n\"\n    mode: '0440'\n"
        "- fail: msg='left {{ remote_unprivileged_user }} in {{ remote_unprivileged_user_group }}'\n")
    return root


@pytest.mark.skipif(os.geteuid() != 0, reason="adds an account: run the suite as root")
def test_accounts_a_target_adds_are_the_runs_own_and_removed_after_a_failed_run(tmp_path: Path) -> None:
    """copy and file add `remote_unprivileged_user` (copy: its group and a sudoers file too) and
    leave them when they stop early: each run gets names of its own, removed after the run, and
    its results say the role's defaults (an oracle run and a later run compare)."""
    root = _target(tmp_path / "targets")
    names = harness.account_names(root, "accounts")
    assert {var: default for var, (default, _ours) in names.items()} == {
        "remote_unprivileged_user": "tmp_ansible_test_user", "remote_unprivileged_user_group": "test_ansible_test_group"}
    assert harness.account_names(root, "accounts") != names  # another run, other names
    run = run_target(root, "accounts", "ansible", base=tmp_path)
    assert run.code == 2
    assert run.failures[-1]["msg"] == "left tmp_ansible_test_user in test_ansible_test_group"
    assert [r["status"] for r in run.results if r["task"] != "Gathering Facts"] == ["changed"] * 3 + ["failed"]
    prefix = f"rustleacc{os.getpid()}n"
    assert not [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(prefix)]
    assert not list(Path("/etc/sudoers.d").glob(prefix + "*"))
    assert not list(tmp_path.glob("acc-ansible-accounts-*"))  # its directory is gone


def test_a_timing_sensitive_target_runs_again_while_it_fails_under_either_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, str]] = []

    def fake(root: Path, name: str, tool: str) -> Run:
        calls.append((name, tool))
        n = len(calls)
        return Run(tool, code=2, results=[{"task": "t", "status": "failed", "msg": f"try {n}"}])

    monkeypatch.setattr(harness, "run_target", fake)
    run = run_attempts(Path("/nowhere"), "wait_for", "ansible")
    assert calls == [("wait_for", "ansible")] * harness.ATTEMPTS
    assert run.earlier == ["fails: t: try 1", "fails: t: try 2"] and run.failures[0]["msg"] == "try 3"
    calls.clear()
    assert run_attempts(Path("/nowhere"), "stat", "rustle").earlier == [] and calls == [("stat", "rustle")]
    calls.clear()
    monkeypatch.setattr(harness, "run_target", lambda root, name, tool: calls.append((name, tool)) or Run(tool, code=0))
    assert run_attempts(Path("/nowhere"), "wait_for", "rustle").earlier == [] and len(calls) == 1


def test_an_ansible_playbook_a_target_runs_adds_no_result_to_the_oracles(tmp_path: Path) -> None:
    """copy's no_log.yml runs ansible-playbook through `command`: that child inherits the
    harness's callback settings, and its results ("copy" on localhost) were recorded as the
    oracle's own, six results rustle-deploy could never match."""
    role = tmp_path / "targets" / "nested"
    (role / "tasks").mkdir(parents=True)
    (role / "tasks" / "main.yml").write_text(
        "- copy:\n    dest: '{{ output_dir }}/inner.yml'\n"
        "    content: \"- hosts: localhost\\n  gather_facts: false\\n  tasks:\\n    - debug: msg=inner\\n\"\n"
        f"- command: {harness.BIN / 'ansible-playbook'} {{{{ output_dir }}}}/inner.yml\n"
        "  register: inner\n"
        "- assert:\n    that: \"'msg\\\": \\\"inner' in inner.stdout\"\n")
    run = run_target(tmp_path / "targets", "nested", "ansible", base=tmp_path)
    assert run.code == 0, run.log[-2000:]
    assert [(r["task"], r["host"]) for r in run.results if r["task"] != "Gathering Facts"] == [
        ("nested : copy", "testhost"), ("nested : command", "testhost"), ("nested : assert", "testhost")]
