"""Action plugins run on the controller with ansible-core, over a real sshd (docs/phases.md,
docs/bridge.md "Action plugins on the controller").

The same playbook is run by ansible-playbook and by rustle-deploy against the same sshd, each
host writing under its own root per tool: a playbook-local action plugin (what it reads on the
host comes back over Ansible's ssh connection), ``until``/``retries`` and ``loop`` over one,
``ignore_errors`` and ``notify`` on a failing one, and ``ansible.posix.synchronize`` from the
``ansible`` 12.3.0 package (rsync between two directories over ssh). Registered results, files
and recap counts must be the same.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..bridge.conftest import pypi_collections  # noqa: F401 (a fixture)
from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT

pytestmark = [pytest.mark.ssh, pytest.mark.ansible, pytest.mark.collections,
              pytest.mark.usefixtures("rustle_home")]

ANSIBLE = ANSIBLE_PLAYBOOK  # the environment under test's (tests/conftest.py)

# reads the host over the task's connection: which sshd it came through, and what it was given
REMOTE_ECHO = '''\
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        text = self._task.args["text"]
        if text == "fail":
            return dict(result, failed=True, msg="asked to fail")
        res = self._low_level_execute_command("echo %s; echo ${SSH_CONNECTION##* }" % text)
        out = res["stdout"].splitlines()
        result.update(changed=text != "same", echoed=out[0], port=out[1], rc=res["rc"],
                      user=task_vars["ansible_user"])
        return result
'''

# a counter on the host: until it reaches 3
COUNTER = '''\
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        path = self._task.args["path"]
        res = self._low_level_execute_command(
            "n=$(cat %s 2>/dev/null || echo 0); n=$((n+1)); echo $n > %s; echo $n" % (path, path))
        result.update(changed=True, n=int(res["stdout"].strip()))
        return result
'''

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: on the host
      command: echo {{ inventory_hostname }}
      register: before
    - name: a playbook-local action plugin
      remote_echo: {text: "{{ before.stdout }}-x"}
      register: echoed
    - name: until with an action plugin
      counter: {path: "{{ root }}/count"}
      register: counted
      until: counted.n >= 3
      retries: 5
      delay: 0
    - name: a loop over an action plugin
      remote_echo: {text: "{{ item }}"}
      loop: [same, b]
      register: looped
    - name: a failing action plugin
      remote_echo: {text: fail}
      register: failing
      ignore_errors: true
    - name: notify from an action plugin
      remote_echo: {text: notify}
      notify: handler
    - name: synchronize two directories
      ansible.posix.synchronize:
        src: "{{ root }}/src/"
        dest: "{{ root }}/dst/"
      register: synced
    - name: synchronize again
      ansible.posix.synchronize:
        src: "{{ root }}/src/"
        dest: "{{ root }}/dst/"
      register: resynced
    - name: what the host saw
      copy:
        content: "{{ {'echoed': echoed, 'counted': counted, 'looped': looped, 'failing': failing,
                      'synced': synced, 'resynced': resynced} | to_nice_json }}"
        dest: "{{ root }}/results.json"
  handlers:
    - name: handler
      copy: {content: "handled\\n", dest: "{{ root }}/handled.txt"}
"""

# what differs between two runs of the same task by its nature
_VOLATILE = ("start", "end", "delta", "invocation", "cmd")


def _normal(value: Any, root: str) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v, root) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_normal(v, root) for v in value]
    if isinstance(value, str):
        return re.sub(r"/\S*?/(ansible|rustle)/(n\d\d)", r"ROOT/\2", value.replace(root, "ROOT"))
    return value


def _counts(recap: dict[str, Any]) -> dict[str, int]:
    return {k: int(recap.get(k, 0)) for k in ("ok", "changed", "failed", "skipped", "rescued", "ignored")}


def test_action_plugins_run_on_the_controller_against_each_host_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        pypi_collections: Path) -> None:  # noqa: F811
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed (.ci/run installs Debian's rsync)")
    names = ["n00", "n01"]
    site = tmp_path / "play"
    (site / "action_plugins").mkdir(parents=True)
    (site / "action_plugins" / "remote_echo.py").write_text(REMOTE_ECHO)
    (site / "action_plugins" / "counter.py").write_text(COUNTER)
    playbook = site / "site.yml"
    playbook.write_text(textwrap.dedent(PLAYBOOK))
    # no ssh master left behind by either tool; the same Ansible configuration for both
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "no-ansible.cfg"))
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(pypi_collections))
    monkeypatch.setenv("ANSIBLE_NOCOLOR", "1")
    recaps: dict[str, dict[str, dict[str, int]]] = {}
    results: dict[str, dict[str, Any]] = {}
    for tool in ("ansible", "rustle"):
        hosts = {}
        for i, name in enumerate(names):
            root = tmp_path / tool / name
            (root / "src" / "sub").mkdir(parents=True)
            (root / "src" / "a.txt").write_text(f"a of {name}\n")
            (root / "src" / "sub" / "b.txt").write_text("b\n")
            (root / "dst").mkdir()
            # rsync lists "./" when the two directories' mtimes differ in the second: made alike,
            # so that neither tool's output depends on a second boundary between them
            for d in ("src", "dst"):
                os.utime(root / d, (1_700_000_000, 1_700_000_000))
            h = sshd.host(name, tmp_path / f"remote-{tool}{i}", root=str(root),
                          ansible_python_interpreter=sys.executable)
            hosts[name] = dict(h.vars)
        inventory = tmp_path / f"{tool}.yml"
        inventory.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
        if tool == "ansible":
            proc = subprocess.run([str(ANSIBLE), "-i", str(inventory), str(playbook)], capture_output=True,
                                  text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=ORACLE_TIMEOUT)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
            recaps[tool] = {}
            for line in proc.stdout.splitlines():
                name, sep, rest = line.partition(" : ")
                if sep and name.strip() in names:
                    recaps[tool][name.strip()] = {k: int(v) for k, v in (kv.split("=") for kv in rest.split())}
        else:
            code = main([str(playbook), "-i", str(inventory), "--run", "--output", "json"])
            out, err = capsys.readouterr()
            assert code == 0, err
            doc = json.loads(out)
            recaps[tool] = {h["name"]: h["recap"] for h in doc["hosts"]}
            # on the host, before; on the controller x 5 tasks; on the host: copy and the handler
            assert {h["round_trips"] for h in doc["hosts"]} == {2}
        results[tool] = {}
        for name in names:
            root = tmp_path / tool / name
            results[tool][name] = _normal(json.loads((root / "results.json").read_text()), str(root))
            assert (root / "dst" / "a.txt").read_text() == f"a of {name}\n"
            assert (root / "dst" / "sub" / "b.txt").read_text() == "b\n"
            assert (root / "handled.txt").read_text() == "handled\n"
            assert (root / "count").read_text() == "3\n"
    for name in names:
        r, a = results["rustle"][name], results["ansible"][name]
        assert r["echoed"]["echoed"] == f"{name}-x" and r["echoed"]["port"] == str(sshd.port)
        assert r["counted"]["attempts"] == 3 and r["failing"]["failed"] is True
        assert r["synced"]["changed"] is True and r["resynced"]["changed"] is False
        for key in a:
            assert r[key] == a[key], f"{name} {key}:\n ansible {a[key]}\n rustle  {r[key]}"
        assert _counts(recaps["rustle"][name]) == _counts(recaps["ansible"][name]), name
