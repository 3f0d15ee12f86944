"""``reboot``: ansible-core's own action, on the controller, against a host that really goes away.

The host is a private sshd on 127.0.0.1 whose ``reboot_command`` is a script: after a second it
kills the sshd and every session it serves, writes a new boot id (what ``boot_time_command``
reads), and half a second later starts a new sshd on the same port. The reboot action has to see
its connection drop, wait for the boot id to change, reconnect and run ``test_command``;
rustle-deploy then runs the play's next task on the host over a new connection. The same
playbook is run by ansible-playbook against the same host, and the registered results compared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import REPO
from .conftest import SSHD, _keygen, _start_sshd

pytestmark = [pytest.mark.ssh, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

ANSIBLE = REPO / ".venv" / "bin" / "ansible-playbook"

# The host's reboot, in Python (no ps, setsid or od needed): detach from the ssh session that ran
# it, then kill the sessions and the sshd, write a new boot id, wait for the port to be free and
# start a new sshd on it. Each step is logged to reboot.log, which a failing test prints.
FAKE_REBOOT = f"""\
import os, signal, sys, time
state = sys.argv[1]
log = open(os.path.join(state, "reboot.log"), "a", buffering=1)
if os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
log.write("detached as %d\\n" % os.getpid())
time.sleep(1)
old = int(open(os.path.join(state, "sshd.pid")).read())
for entry in os.listdir("/proc"):
    try:
        stat = open("/proc/%s/stat" % entry).read() if entry.isdigit() else ""
    except OSError:
        continue
    if stat and int(stat.rsplit(")", 1)[1].split()[1]) == old:
        os.kill(int(entry), signal.SIGTERM)
os.kill(old, signal.SIGTERM)
log.write("killed sshd %d and its sessions\\n" % old)
with open(os.path.join(state, "boot_id.new"), "w") as f:
    f.write("boot-%s\\n" % os.urandom(8).hex())
os.rename(os.path.join(state, "boot_id.new"), os.path.join(state, "boot_id"))
for _ in range(100):  # until the old sshd is gone (or a zombie: the test reaps the first one)
    try:
        if open("/proc/%d/stat" % old).read().rsplit(")", 1)[1].split()[0] == "Z":
            break
    except OSError:
        break
    time.sleep(0.1)
time.sleep(0.5)
log.write("starting sshd\\n")
os.execv({SSHD!r}, [{SSHD!r}, "-f", os.path.join(state, "sshd_config"), "-E", os.path.join(state, "sshd-after.log")])
"""

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: before
      command: cat {{ state }}/boot_id
      register: before
    - name: reboot
      reboot:
        reboot_command: "{{ python }} {{ state }}/fake-reboot.py {{ state }}"
        boot_time_command: cat {{ state }}/boot_id
        test_command: cat {{ state }}/boot_id
        post_reboot_delay: 1
        reboot_timeout: 120
      register: rebooted
    - name: after, on the host that came back
      command: cat {{ state }}/boot_id
      register: after
    - name: what the host saw
      copy:
        content: "{{ {'before': before.stdout, 'rebooted': rebooted, 'after': after.stdout} | to_nice_json }}"
        dest: "{{ root }}/results-{{ tool }}.json"
"""


def _log(state: Path) -> str:
    """What the fake reboot did, and what the sshd started after it said (a port taken meanwhile, say)."""
    said = []
    for name, what in (("reboot.log", "the reboot"), ("sshd-after.log", "sshd after the reboot")):
        try:
            said.append(f"\n{what}: " + (state / name).read_text()[-2000:])
        except OSError:
            said.append(f"\n{what}: no {name}")
    return "".join(said)


def _pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def test_reboot_waits_for_the_new_boot_and_the_play_goes_on_as_in_ansible(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    if not os.path.exists(SSHD):
        pytest.skip("OpenSSH sshd is not installed (CI installs openssh-server)")
    state = tmp_path / "host"
    state.mkdir()
    for name in ("host_ed25519", "client_ed25519"):
        _keygen(state / name)
    auth = state / "authorized_keys"
    auth.write_text((state / "client_ed25519.pub").read_text())
    auth.chmod(0o600)
    user_keys = state / "user_keys"
    user_keys.mkdir()
    (state / "boot_id").write_text("boot-first\n")
    (state / "fake-reboot.py").write_text(FAKE_REBOOT)
    proc, port = _start_sshd(state, state / "host_ed25519", auth, user_keys)
    host_pub = (state / "host_ed25519.pub").read_text().split()
    known = state / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    playbook = tmp_path / "site.yml"
    playbook.write_text(textwrap.dedent(PLAYBOOK))
    monkeypatch.setenv("ANSIBLE_SSH_ARGS", "-o ControlMaster=no")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "no-ansible.cfg"))
    monkeypatch.setenv("ANSIBLE_HOME", str(tmp_path / "ansible-home"))
    monkeypatch.setenv("ANSIBLE_NOCOLOR", "1")
    # the private sshd has no sftp subsystem: pipelining sends the action's setup module on stdin
    # (without it both tools warn, and only ansible-playbook registers the warning: see the report)
    monkeypatch.setenv("ANSIBLE_PIPELINING", "True")
    results: dict[str, dict[str, Any]] = {}
    try:
        for tool in ("ansible", "rustle"):
            host = {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": os.environ.get("USER") or
                    __import__("getpass").getuser(), "ansible_ssh_private_key_file": str(state / "client_ed25519"),
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={known}",
                    "ansible_python_interpreter": sys.executable, "rustle_remote_dir": str(tmp_path / "remote"),
                    "state": str(state), "python": sys.executable, "root": str(tmp_path), "tool": tool}
            inventory = tmp_path / f"{tool}.yml"
            inventory.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": {"n00": host}}}}}))
            if tool == "ansible":
                done = subprocess.run([str(ANSIBLE), "-i", str(inventory), str(playbook)], capture_output=True,
                                      text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=600)
                assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:] + _log(state)
            else:
                code = main([str(playbook), "-i", str(inventory), "--run", "--output", "json"])
                out, err = capsys.readouterr()
                assert code == 0, out[-3000:] + err[-3000:] + _log(state)
                doc = json.loads(out)
                assert doc["hosts"][0]["recap"]["failed"] == 0
                # before; the reboot on the controller; after and the copy on the host, reconnected
                assert doc["hosts"][0]["round_trips"] == 2
            results[tool] = json.loads((tmp_path / f"results-{tool}.json").read_text())
    finally:
        for pid in {_pid(state / "sshd.pid"), proc.pid}:
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
        proc.wait(10)
    for tool, seen in results.items():
        assert seen["before"] != seen["after"], tool  # the boot id changed: the host went away and came back
        assert seen["rebooted"]["rebooted"] is True and seen["rebooted"]["changed"] is True, seen
    volatile = ("elapsed",)
    rustle = {k: v for k, v in results["rustle"]["rebooted"].items() if k not in volatile}
    ansible = {k: v for k, v in results["ansible"]["rebooted"].items() if k not in volatile}
    assert rustle == ansible
