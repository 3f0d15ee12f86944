"""A vault-encrypted file the play itself makes on the controller while it runs, which no vault
secret of the run opens (the run has none), against ansible-playbook: read afterwards as a copy
``src``, a template ``src``, an ``include_vars`` file and by ``lookup('file')``, each task fails
with ansible-core's words for its kind (copy names the file; the others say "Attempting to
decrypt but no vault secrets found."), not as a missing file (issue 14).

Both tools run the same playbook over one ``ansible_connection=local`` host, each in its own
directory (the file encrypted once, with ansible-vault, before either runs); compared: the
registered results, written by the play into a file.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from typing import Any

import pytest

from .conftest import ansible_env
from .test_playbooks_ansible import ANSIBLE
from .test_vault_files_local import run_tool

READS = ("copy_src", "template_src", "vars_file", "file_lookup")

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: the play makes a directory on the controller
      file: {path: "{{ made }}", state: directory}
      delegate_to: localhost
    - name: and puts an encrypted file in it, as it is
      copy: {src: vaulted.txt, dest: "{{ made }}/v.yml", decrypt: false}
      delegate_to: localhost
    - name: a copy src
      copy: {src: "{{ made }}/v.yml", dest: "{{ out }}/copied"}
      register: copy_src
      ignore_errors: true
    - name: a template src
      template: {src: "{{ made }}/v.yml", dest: "{{ out }}/rendered"}
      register: template_src
      ignore_errors: true
    - name: an include_vars file
      include_vars: {file: "{{ made }}/v.yml"}
      register: vars_file
      ignore_errors: true
    - name: a file lookup
      debug: {msg: "{{ lookup('file', made ~ '/v.yml') }}"}
      register: file_lookup
      ignore_errors: true
    - name: the results
      copy:
        dest: "{{ out }}/results.txt"
        content: |
          {% for r in [copy_src, template_src, vars_file, file_lookup] %}
          {{ r.failed }} {{ r.msg | replace(made, 'M') }} {{ r.message | default('') }}
          {% endfor %}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    vault_cli = ANSIBLE.parent / "ansible-vault"
    if not ANSIBLE.exists() or not vault_cli.exists():
        pytest.skip("ansible-core is not installed in .venv")
    tmp = tmp_path_factory.mktemp("vault-made")
    source = tmp / "source"
    (source / "files").mkdir(parents=True)
    (source / "files" / "vaulted.txt").write_text("a: 1\n")
    (tmp / "pw").write_text("a password this run does not have\n")
    subprocess.run([str(vault_cli), "encrypt", "--vault-password-file", str(tmp / "pw"),
                    str(source / "files" / "vaulted.txt")], check=True, capture_output=True,
                   env=ansible_env(tmp), timeout=300)
    out: dict[str, Any] = {}
    for tool in ("ansible", "rustle"):
        work = tmp / tool
        shutil.copytree(source, work)
        (work / "out").mkdir()
        (work / "site.yml").write_text(PLAYBOOK)
        (work / "inv.ini").write_text(f"h ansible_connection=local ansible_python_interpreter={sys.executable} "
                                      f"rustle_remote_dir={work / 'remote'}\n")
        # the file's directory is named by an extra variable: the controller knows it when it compiles
        args = ["-i", str(work / "inv.ini"), "-e", f"out={work / 'out'}", "-e", f"made={work / 'made'}"]
        code, text = run_tool(tool, work, args, unset=("ANSIBLE_VAULT_PASSWORD_FILE",))
        results = work / "out" / "results.txt"
        out[tool] = {"code": code, "text": text,
                     "results": results.read_text().splitlines() if results.is_file() else None}
    return out


def test_a_vault_file_the_play_made_that_no_secret_opens_fails_each_read_in_ansible_cores_words(
        runs: dict[str, Any]) -> None:
    ansible, rustle = runs["ansible"], runs["rustle"]
    assert ansible["code"] == 0, ansible["text"]
    assert rustle["code"] == 0, rustle["text"]
    lines = ansible["results"]
    assert len(lines) == len(READS) and all(line.startswith("True ") for line in lines), lines
    assert "A vault password or secret must be specified to decrypt M/v.yml" in lines[0]
    assert all("Attempting to decrypt but no vault secrets found." in line for line in lines[1:]), lines
    for read, want, got in zip(READS, lines, rustle["results"] or [None] * len(READS), strict=True):
        assert got == want, f"{read}\n{rustle['text'][-3000:]}"
