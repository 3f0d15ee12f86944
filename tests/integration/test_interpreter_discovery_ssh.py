"""Python interpreter discovery over a real sshd, against ansible-playbook over the same sshd.

The sshd runs in a private mount namespace whose /usr/bin has no ``python3`` (nor ``python``)
but keeps ``python3.11``: ansible-core 2.19's discovery (``command -v`` over
INTERPRETER_PYTHON_FALLBACK, the first absolute path) finds ``/usr/bin/python3.11`` there,
and so must rustle-deploy's launcher, in its one round trip. Each tool runs twice: with no
setting (the ``auto`` default), and with ``ANSIBLE_PYTHON_INTERPRETER=auto_legacy_silent``;
the hosts of each run differ in their own variables (an explicit interpreter path, a
fallback list, ``auto`` beating the environment). Compared: the facts each host wrote, and
the warning and deprecation texts.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..native.test_auto import namespaced_sshd
from .conftest import run_tool
from .test_interpreter_discovery_local import WARNING
from .test_playbooks_ansible import ANSIBLE

PLAYBOOK = """- hosts: all
  gather_facts: false
  tasks:
    - name: before any module
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.before"
        content: "{{ ansible_facts.discovered_interpreter_python | default('undefined') }}"
    - name: python
      command: python3 --version
      ignore_errors: true
    - name: after
      copy:
        dest: "{{ out }}/{{ inventory_hostname }}.after"
        content: "{{ ansible_facts.discovered_interpreter_python | default('undefined') }} {{ discovered_interpreter_python | default('undefined') }}"
"""

# /usr/bin without python3 and python (python3.11 stays), pyenv's tree hidden
SETUP = ('mkdir -p "$1/orig" "$1/bin" && mount --bind /usr/bin "$1/orig" && '
         'cp -as "$1/orig/." "$1/bin/" && rm -f "$1/bin/python3" "$1/bin/python" && mount --bind "$1/bin" /usr/bin && '
         'for d in "$HOME/.pyenv" /root/.pyenv; do [ ! -d "$d" ] || mount -t tmpfs -o ro tmpfs "$d" || exit 1; done')

DEPRECATION = re.compile(r"\[DEPRECATION WARNING\]: (The '[^']+' option for 'INTERPRETER_PYTHON' .*?2\.21\.)")


@pytest.fixture(scope="module")
def runs(sshd: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    if not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("this test expects /usr/bin/python3.11 (Debian 12's python3)")
    tmp = tmp_path_factory.mktemp("discovery")
    # a second interpreter outside /usr/bin, for the explicit path and the fallback list: the
    # namespace hides pyenv's tree, so a copy of 3.11's links lives under /tmp
    other = Path(tempfile.mkdtemp(prefix="rustle-discovery-", dir="/tmp"))
    try:
        (other / "python3.11").symlink_to("/usr/bin/python3.11")
        with namespaced_sshd(sshd, tmp, "nopython3", SETUP, str(tmp / "usr-bin")) as (port, known):
            base = {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": sshd.user,
                    "ansible_ssh_private_key_file": str(sshd.client_key),
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={known}"}
            hosts = {
                "plain": {},
                "explicit": {"ansible_python_interpreter": str(other / "python3.11")},
                "fallback": {"ansible_interpreter_python_fallback": ["python3.99", str(other / "python3.11")]},
                "auto": {"ansible_python_interpreter": "auto"},
            }
            out: dict[str, Any] = {}
            for env_mode in ("", "auto_legacy_silent"):
                for tool in ("ansible", "rustle"):
                    work = tmp / f"{tool}-{env_mode or 'default'}"
                    (work / "out").mkdir(parents=True)
                    inv = {"all": {"hosts": {
                        name: {**base, **v, "rustle_remote_dir": str(work / f"remote-{name}")}
                        for name, v in hosts.items()}}}
                    (work / "inv.yml").write_text(yaml.safe_dump(inv))
                    (work / "site.yml").write_text(PLAYBOOK)
                    env = {"ANSIBLE_DEPRECATION_WARNINGS": "True", "ANSIBLE_PYTHON_INTERPRETER": env_mode or None}
                    out[f"{tool}-{env_mode or 'default'}"] = run_tool(tool, work, ["-i", str(work / "inv.yml")], env)
        yield out
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_the_launcher_discovers_the_interpreter_ansible_discovers(runs: dict[str, Any]) -> None:
    for mode in ("default", "auto_legacy_silent"):
        ansible, rustle = runs[f"ansible-{mode}"], runs[f"rustle-{mode}"]
        assert ansible["code"] == 0, ansible["text"]
        assert rustle["code"] == 0, rustle["text"]
        assert rustle["files"] == ansible["files"], (mode, rustle["text"])
    files = runs["ansible-default"]["files"]
    assert files["plain.before"] == "undefined"  # no Python has run yet
    assert files["plain.after"] == "/usr/bin/python3.11 /usr/bin/python3.11"
    assert files["explicit.after"] == "undefined undefined"  # a configured path: no discovery
    assert files["fallback.after"].split()[0].endswith("/python3.11")


def test_the_discovery_warnings_are_ansibles(runs: dict[str, Any]) -> None:
    for mode in ("default", "auto_legacy_silent"):
        ansible, rustle = runs[f"ansible-{mode}"], runs[f"rustle-{mode}"]
        assert sorted(WARNING.findall(rustle["text"])) == sorted(WARNING.findall(ansible["text"])), mode
        assert sorted(DEPRECATION.findall(rustle["text"])) == sorted(DEPRECATION.findall(ansible["text"])), mode
    # no setting: every discovering host warns; the silent mode only the host whose own variable says auto
    assert len(WARNING.findall(runs["ansible-default"]["text"])) == 3
    assert [w.split("'")[1] for w in WARNING.findall(runs["ansible-auto_legacy_silent"]["text"])] == ["auto"]
    assert DEPRECATION.findall(runs["ansible-auto_legacy_silent"]["text"])
