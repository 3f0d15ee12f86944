"""Vault-encrypted controller files against ansible-playbook: a copy ``src`` (a file, and a file
inside a directory ``src``), a template and a script are decrypted on the
controller with the run's vault secrets, as ansible-core's actions read them (and a
``lookup('file')`` of a name the controller computes); ``decrypt: false``
copies the envelope as it is; a file that no secret opens, or a directory holding one, fails
its task on the host with ansible-core's words (ansible-core's copy target asserts them), also
when read as the task runs (after a task on the controller).

Both tools run the same playbook over one ``ansible_connection=local`` host with the same
``--vault-password-file``, each in its own directory (the files encrypted once, with
ansible-vault, before either runs); compared: the files that land and the results.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

from .conftest import ansible_env
from .test_playbooks_ansible import ANSIBLE

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: an encrypted file
      copy: {src: secret.txt, dest: "{{ out }}/secret.txt"}
    - name: the same, not decrypted
      copy: {src: secret.txt, dest: "{{ out }}/envelope.txt", decrypt: false}
    - name: a directory holding an encrypted file
      copy: {src: tree, dest: "{{ out }}/"}
    - name: an encrypted template
      template: {src: secret.j2, dest: "{{ out }}/rendered.txt"}
    - name: an encrypted script
      script: secret.sh
      register: script
    - name: an encrypted file read by lookup('file') under a name the controller computes
      copy: {content: "{{ lookup('file', secret_name) }}\\n", dest: "{{ out }}/looked.txt"}
      vars: {secret_name: secret.txt}
    - name: a file another password encrypted
      copy: {src: other.txt, dest: "{{ out }}/other.txt"}
      register: other
      ignore_errors: true
    - name: a task on the controller
      command: "true"
      delegate_to: localhost
      changed_when: false
    - name: after it, that file again (read when the task runs)
      copy: {src: other.txt, dest: "{{ out }}/other-late.txt"}
      register: other_late
      ignore_errors: true
    - name: after it, a directory holding a file another password encrypted
      copy: {src: othertree, dest: "{{ out }}/"}
      register: other_tree
      ignore_errors: true
    - name: the results
      copy:
        dest: "{{ out }}/results.txt"
        content: |
          {{ script.stdout | trim }}
          {{ other.failed }} {{ other.msg | replace(playbook_dir, 'P') }}
          {{ other_late.failed }} {{ other_late.msg | replace(playbook_dir, 'P') }}
          {{ other_tree.failed }} {{ other_tree.msg | replace(playbook_dir, 'P') }}
"""



def run_tool(tool: str, work: Path, args: list[str], unset: tuple[str, ...] = ()) -> tuple[int, str]:
    """``work/site.yml`` run by ansible-playbook or by rustle-deploy (in this process, with
    ``work/home`` as HOME and no ansible.cfg, state or cache of the session's, nor ``unset``):
    its exit code and console text."""
    if tool == "ansible":
        proc = subprocess.run([str(ANSIBLE), str(work / "site.yml"), *args], capture_output=True, text=True,
                              env=ansible_env(work), cwd=work, timeout=600)
        return proc.returncode, proc.stdout + proc.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("HOME", str(work / "home"))
        mp.setenv("ANSIBLE_CONFIG", str(work / "no-ansible.cfg"))
        for var in ("RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_STATE_DB", *unset):
            mp.delenv(var, raising=False)
        with open(work / "rustle.out", "w") as stream:
            mp.setattr(sys, "stdout", stream)
            mp.setattr(sys, "stderr", stream)
            code = main([str(work / "site.yml"), *args, "--run", "--output", "text"])
    return code, (work / "rustle.out").read_text()

@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    vault_cli = ANSIBLE.parent / "ansible-vault"
    if not ANSIBLE.exists() or not vault_cli.exists():
        pytest.skip("ansible-core is not installed in .venv")
    tmp = tmp_path_factory.mktemp("vault-files")
    made = tmp / "made"
    (made / "files" / "tree").mkdir(parents=True)
    (made / "templates").mkdir()
    (made / "files" / "secret.txt").write_text("the secret\n")
    (made / "files" / "tree" / "inner.txt").write_text("inner secret\n")
    (made / "files" / "tree" / "plain.txt").write_text("not encrypted\n")
    (made / "templates" / "secret.j2").write_text("rendered {{ 6 * 7 }}\n")
    (made / "files" / "secret.sh").write_text("#!/bin/sh\necho script ran\n")
    (made / "files" / "other.txt").write_text("another secret\n")
    (made / "files" / "othertree").mkdir()
    (made / "files" / "othertree" / "locked.txt").write_text("a secret in a directory\n")
    (tmp / "pw").write_text("right password\n")
    (tmp / "other-pw").write_text("another password\n")
    env = ansible_env(tmp)
    for rel, pw in (("files/secret.txt", "pw"), ("files/tree/inner.txt", "pw"), ("templates/secret.j2", "pw"),
                    ("files/secret.sh", "pw"), ("files/other.txt", "other-pw"),
                    ("files/othertree/locked.txt", "other-pw")):
        subprocess.run([str(vault_cli), "encrypt", "--vault-password-file", str(tmp / pw), str(made / rel)],
                       check=True, capture_output=True, env=env, timeout=300)
    out: dict[str, Any] = {}
    for tool in ("ansible", "rustle"):
        work = tmp / tool
        shutil.copytree(made, work)
        (work / "out").mkdir()
        (work / "site.yml").write_text(PLAYBOOK)
        (work / "inv.ini").write_text(f"h ansible_connection=local ansible_python_interpreter={sys.executable} "
                                      f"rustle_remote_dir={work / 'remote'}\n")
        args = ["-i", str(work / "inv.ini"), "-e", f"out={work / 'out'}", "--vault-password-file", str(tmp / "pw")]
        code, text = run_tool(tool, work, args)
        root = work / "out"
        out[tool] = {"code": code, "text": text,
                     "tree": {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}}
    return out


def test_vault_encrypted_files_are_decrypted_as_ansible_decrypts_them(runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    tree = ansible["tree"]
    assert tree["secret.txt"] == "the secret\n" and tree["envelope.txt"].startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert tree["tree/inner.txt"] == "inner secret\n" and tree["rendered.txt"] == "rendered 42\n"
    assert tree["looked.txt"] == "the secret\n"
    assert tree["results.txt"].startswith("script ran\nTrue ")
    assert [line.split(" ")[0] for line in tree["results.txt"].splitlines()[1:]] == ["True"] * 3
    assert rustle["tree"] == tree, rustle["text"]
