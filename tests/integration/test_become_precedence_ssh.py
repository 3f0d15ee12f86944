"""Which user a task becomes, and with which become password, when the ``become*`` keywords and the
``ansible_become*`` variables disagree: ansible-playbook 2.19 and rustle-deploy run one playbook
(a matrix of plays, one host name each, all on the real sshd as a login without sudo that may
become another user only through su and that user's password) and must leave the same files.

What ansible-core 2.19 decides (PlayContext.set_task_and_variable_override, TaskExecutor's
``_set_become_plugin`` and the su plugin's ``become_pass`` option; checked by this oracle run):

* an ``ansible_become`` variable, whatever its level (inventory, play or task ``vars``), wins over
  the ``become`` keyword: ``become: false`` on a task does not stop the inventory's
  ``ansible_become: true``; a task's ``vars: {ansible_become: false}`` does;
* ``ansible_become_password`` is an ordinary variable: a play's ``vars`` beat the inventory's,
  a task's ``vars`` beat the play's, group_vars work as the host's own. A wrong password is set at
  the level that must lose, so a tool that picks it fails its task;
* of the names a become plugin reads (su: ``ansible_become_password``, ``ansible_become_pass``,
  ``ansible_su_pass``) the last one set wins whatever its level (the config manager's
  ``_loop_entries``): the inventory's ``ansible_su_pass`` beats a play's ``ansible_become_password``.

Every password is ``!vault`` text, so none is in a file as written; after the run the password is
searched for in every file rustle-deploy wrote (test_vault_secrets_ssh's way) and on the console:
only the private artifact's plan.json (0700) may hold it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import ANSIBLE, ansible_env
from .test_cli import run_cli
from .test_playbook_options import SUDO_USER, sudo_user  # noqa: F401  (the fixture)
from .test_su_become_ssh import su_users  # noqa: F401  (the fixture)
from .test_vault_secrets_ssh import PASSWORD, _encrypt, _inline, _views

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]

WHO = "      shell: id -un > {{ out }}/{{ inventory_hostname }}-%s\n"


def _playbook(target: str, good: str, bad: str, sudo_good: str) -> str:
    def task(case: str, extra: str = "") -> str:
        return f"    - name: {case}\n" + WHO % case + extra

    return (
        # the inventory sets ansible_become (su) and a wrong password; the play's vars the right one
        "- hosts: inv\n  gather_facts: false\n  vars:\n    ansible_become_password: " + _inline(good, 6)
        + "  tasks:\n"
        + task("default")
        + task("keyword-false", "      become: false\n")
        + task("var-false", "      vars: {ansible_become: false}\n")
        # keywords only: the play's vars hold a wrong password, the task's vars the right one
        + f"- hosts: kw\n  gather_facts: false\n  become: true\n  become_method: su\n  become_user: {target}\n"
        + "  vars:\n    ansible_become_password: " + _inline(bad, 6)
        + "  tasks:\n"
        + task("task-password", "      vars:\n        ansible_become_pass: " + _inline(good, 10))
        + task("keyword-false", "      become: false\n")
        + task("var-true", "      become: false\n      vars:\n        ansible_become: true\n"
                           "        ansible_become_password: " + _inline(good, 10))
        # the password from the inventory's group_vars/, become from the play's keywords
        + f"- hosts: grp\n  gather_facts: false\n  become: true\n  become_method: su\n  become_user: {target}\n"
        + "  tasks:\n"
        + task("group-password")
        # the inventory's ansible_become (sudo) for a login whose sudo asks its password: the password
        # from the play's vars; the agent cannot start as root, and a task's vars may say no become
        + "- hosts: sudo\n  gather_facts: false\n  vars:\n    ansible_become_password: " + _inline(sudo_good, 6)
        + "  tasks:\n"
        + task("default")
        + task("var-false", "      vars: {ansible_become: false}\n")
        # the inventory's ansible_su_pass (right) beats the play's ansible_become_password (wrong):
        # the later name of the su plugin's list wins, whatever the level
        + f"- hosts: late\n  gather_facts: false\n  become: true\n  become_method: su\n  become_user: {target}\n"
        + "  vars:\n    ansible_become_password: " + _inline(bad, 6)
        + "  tasks:\n"
        + task("later-name")
    )


def _inventory(inv_dir: Path, sshd: Any, login: str, target: str, work: Path, tool: str, out: Path,
               bad: str, sudo_work: Path, good: str) -> Path:
    """Hosts ``inv`` (ansible_become with su, and a wrong ansible_become_password), ``kw``, ``grp``
    (of group ``pwgroup``, whose group_vars/ hold the right password) and ``sudo`` (the login whose
    sudo asks its password, with the inventory's ansible_become), all the same sshd."""
    def host(name: str, **more: Any) -> dict[str, Any]:
        return {"ansible_host": "127.0.0.1", "ansible_port": sshd.port, "ansible_user": login,
                "ansible_ssh_private_key_file": str(sshd.client_key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={sshd.known_hosts}",
                "ansible_python_interpreter": "/usr/bin/python3",
                "rustle_remote_dir": str(work / f"rustle-{tool}-{name}"),
                "ansible_remote_tmp": str(work / f"ansible-tmp-{name}"), "out": str(out), **more}

    inventory = inv_dir / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {
            "hosts": {"inv": host("inv", ansible_become=True, ansible_become_method="su", ansible_become_user=target),
                      "kw": host("kw"), "late": host("late"),
                      "sudo": {**host("sudo", ansible_user=SUDO_USER, ansible_become=True),
                               "rustle_remote_dir": str(sudo_work / f"rustle-{tool}"),
                               "ansible_remote_tmp": str(sudo_work / "ansible-tmp")}},
            "children": {"pwgroup": {"hosts": {"grp": host("grp")}}}}})
        .replace("    inv:\n", "    inv:\n      ansible_become_password: " + _inline(bad, 8), 1)
        .replace("    late:\n", "    late:\n      ansible_su_pass: " + _inline(good, 8), 1))
    return inventory


def test_become_precedence_and_passwords(su_users: tuple[str, str, str, Path],  # noqa: F811
                                         sudo_user: tuple[str, Path],  # noqa: F811
                                         tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]) -> None:
    login, target, password, work = su_users
    sudo_password, sudo_work = sudo_user
    envelopes = _encrypt({"good": password, "bad": "not-" + password, "sudo": sudo_password})
    (tmp_path / "pw.txt").write_text(PASSWORD + "\n")
    playbook = tmp_path / "site.yml"
    playbook.write_text(_playbook(target, envelopes["good"], envelopes["bad"], envelopes["sudo"]))
    expected = {
        "inv-default": target, "inv-keyword-false": target, "inv-var-false": login,
        "kw-task-password": target, "kw-keyword-false": login, "kw-var-true": target,
        "grp-group-password": target, "sudo-default": "root", "sudo-var-false": SUDO_USER,
        "late-later-name": target,
    }
    results = {}
    for tool in ("ansible", "rustle"):
        out = work / tool
        out.mkdir(mode=0o777)
        out.chmod(0o777)  # both users write here
        inv_dir = tmp_path / tool
        (inv_dir / "group_vars").mkdir(parents=True)
        (inv_dir / "group_vars" / "pwgroup.yml").write_text("ansible_become_password: " + _inline(envelopes["good"], 2))

        inventory = _inventory(inv_dir, sshd, login, target, work, tool, out, envelopes["bad"], sudo_work,
                               envelopes["good"])
        args = ["-i", str(inventory), str(playbook), "--vault-password-file", str(tmp_path / "pw.txt")]
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), *args], capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                                  cwd=tmp_path, env=ansible_env(tmp_path, ANSIBLE_SHELL_ALLOW_WORLD_READABLE_TEMP="1",
                                                    ANSIBLE_SSH_ARGS="-o ControlMaster=no"))
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        else:
            code, stdout, err = run_cli(capsys, *args, "--run", "--output", "json", "-vvv")
            assert code == 0, stdout[-3000:] + err[-3000:]
            assert password not in stdout + err and sudo_password not in stdout + err
        results[tool] = {p.name: p.read_text().strip() for p in out.iterdir()}
    assert results["ansible"] == expected  # what ansible-core 2.19 does, as the docstring says
    assert results["rustle"] == results["ansible"]
    # ~/.rustle and its history, the remote dirs: the play's and task's passwords travel in the
    # private artifact's plan.json only (as any vault value a plan reads), the group's in the run request
    for top in (Path(os.environ["HOME"]), work, sudo_work, tmp_path):
        for path in sorted(top.rglob("*")):
            if path.is_file() and not path.is_symlink():
                hits = {w for w, blob in _views(path) for pw in (password, sudo_password) if pw.encode() in blob}
                assert hits <= {"zip:plan.json"}, (path, hits)
                assert not hits or path.stat().st_mode & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_an_ansible_become_only_include_vars_sets_is_decided_per_task(
        su_users: tuple[str, str, str, Path], tmp_path: Path, sshd: Any,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    """The inventory's connection-level become (sudo without a password) and an include_vars file
    that sets ``ansible_become: false``: the tasks after it run as the login, as in
    ansible-playbook (the agent must not start as root for the whole run)."""
    login, _target, _password, work = su_users
    if not Path("/etc/sudoers.d").is_dir():
        pytest.skip("needs /etc/sudoers.d for a NOPASSWD rule")
    rule = Path(f"/etc/sudoers.d/rustle-nopw-{os.getpid()}")
    rule.write_text(f"{login} ALL=(ALL) NOPASSWD: ALL\n")
    rule.chmod(0o440)
    try:
        (tmp_path / "nobecome.yml").write_text("ansible_become: false\n")
        playbook = tmp_path / "site.yml"
        playbook.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                            + "    - name: before\n" + WHO % "before" + "    - include_vars: nobecome.yml\n"
                            + "    - name: after\n" + WHO % "after")
        results = {}
        for tool in ("ansible", "rustle"):
            out = work / f"{tool}-nb"
            out.mkdir(mode=0o777)
            out.chmod(0o777)
            inventory = tmp_path / f"{tool}.yml"
            inventory.write_text(yaml.safe_dump({"all": {"hosts": {"nb": {
                "ansible_host": "127.0.0.1", "ansible_port": sshd.port, "ansible_user": login,
                "ansible_ssh_private_key_file": str(sshd.client_key),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={sshd.known_hosts}",
                "ansible_python_interpreter": "/usr/bin/python3", "ansible_become": True,
                "rustle_remote_dir": str(work / f"rustle-{tool}-nb"),
                "ansible_remote_tmp": str(work / "ansible-tmp-nb"), "out": str(out)}}}}))
            args = ["-i", str(inventory), str(playbook)]
            if tool == "ansible":
                proc = subprocess.run([str(ANSIBLE), *args], capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                                      cwd=tmp_path, env=ansible_env(tmp_path, ANSIBLE_SSH_ARGS="-o ControlMaster=no"))
                assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            else:
                code, stdout, err = run_cli(capsys, *args, "--run", "--output", "json")
                assert code == 0, stdout[-3000:] + err[-3000:]
            results[tool] = {p.name: p.read_text().strip() for p in out.iterdir()}
        assert results["ansible"] == {"nb-before": "root", "nb-after": login}
        assert results["rustle"] == results["ansible"]
    finally:
        rule.unlink()
