"""``reboot``: ansible-core's own action, on the controller, against a host that really goes away.

The host is a private sshd on 127.0.0.1 whose ``reboot_command`` asks for a reboot by writing a
file. The test itself is the host's "machine": a thread that sees the request kills the sshd and
every session it serves, writes a new boot id (what ``boot_time_command`` reads), and starts a
new sshd on the same port. (A reboot script that detached itself from the ssh session, tried
first, was sometimes never scheduled under CI's load before the action gave up.) The reboot
action has to see its connection drop, wait for the boot id to change, reconnect and run
``test_command``; rustle-deploy then runs the play's next task on the host over a new
connection. The same playbook is run by ansible-playbook against the same host, and the
registered results compared.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT
from .conftest import SSHD, _keygen, _start_sshd, _wait_listening

pytestmark = [pytest.mark.ssh, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

ANSIBLE = ANSIBLE_PLAYBOOK  # the environment under test's (tests/conftest.py)

class Machine:
    """The host's machine: its sshd, and a thread that reboots it when ``reboot-requested`` appears
    in ``state`` (sessions and sshd killed, a new boot id, a new sshd on the same port). Each step
    is logged to ``reboot.log``, which a failing test prints."""

    def __init__(self, state: Path, proc: subprocess.Popen[bytes], port: int) -> None:
        self.state, self.proc, self.port = state, proc, port
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _say(self, line: str) -> None:
        with open(self.state / "reboot.log", "a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def _watch(self) -> None:
        request = self.state / "reboot-requested"
        while not self.done.is_set():
            if request.exists():
                request.unlink()
                try:
                    self._reboot()
                except Exception as exc:  # noqa: BLE001 - said in reboot.log, which the test prints
                    self._say(f"reboot failed: {exc!r}")
            time.sleep(0.1)

    def _reboot(self) -> None:
        self._say("reboot requested")
        time.sleep(1)  # the reboot command's session ends first, as with a real delayed reboot
        old = self.proc.pid
        for entry in os.listdir("/proc"):  # the sessions: the listener's children
            try:
                stat = (Path("/proc") / entry / "stat").read_text() if entry.isdigit() else ""
                if stat and int(stat.rsplit(")", 1)[1].split()[1]) == old:
                    os.kill(int(entry), signal.SIGKILL)
            except (OSError, ValueError):
                continue
        self.proc.kill()
        self.proc.wait()
        self._say(f"killed sshd {old} and its sessions")
        (self.state / "boot_id.new").write_text(f"boot-{os.urandom(8).hex()}\n")
        (self.state / "boot_id.new").replace(self.state / "boot_id")
        log = self.state / "sshd-after.log"
        for attempt in range(60):  # the port is ours: retry while the old listener's socket lingers
            with open(log, "ab") as logf:
                proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.state / "sshd_config")],
                                        stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
            try:
                _wait_listening(self.port, proc, log, self.state / "sshd.pid")
            except RuntimeError as exc:
                proc.kill()
                proc.wait()
                self._say(f"new sshd, attempt {attempt + 1}: {exc}")
                time.sleep(0.5)
                continue
            self.proc = proc
            self._say(f"new sshd {proc.pid} listening")
            return

    def stop(self) -> None:
        self.done.set()
        self.thread.join(30)
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: before
      command: cat {{ state }}/boot_id
      register: before
    - name: reboot
      reboot:
        reboot_command: touch {{ state }}/reboot-requested
        boot_time_command: cat {{ state }}/boot_id
        test_command: cat {{ state }}/boot_id
        post_reboot_delay: 1
        reboot_timeout: 900  # generous: the suite runs under loads of 20-60 (120 s ran out once)
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
    """What the machine did at the reboot, and what the sshd started after it said (a port taken meanwhile, say)."""
    said = []
    for name, what in (("reboot.log", "the reboot"), ("sshd-after.log", "sshd after the reboot")):
        try:
            said.append(f"\n{what}: " + (state / name).read_text()[-2000:])
        except OSError:
            said.append(f"\n{what}: no {name}")
    return "".join(said)


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
    proc, port = _start_sshd(state, state / "host_ed25519", auth, user_keys)
    machine = Machine(state, proc, port)
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
                    "state": str(state), "root": str(tmp_path), "tool": tool}
            inventory = tmp_path / f"{tool}.yml"
            inventory.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": {"n00": host}}}}}))
            if tool == "ansible":
                done = subprocess.run([str(ANSIBLE), "-i", str(inventory), str(playbook)], capture_output=True,
                                      text=True, env=dict(os.environ, PYTHONWARNINGS="ignore"), timeout=ORACLE_TIMEOUT)
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
        machine.stop()
    for tool, seen in results.items():
        assert seen["before"] != seen["after"], tool  # the boot id changed: the host went away and came back
        assert seen["rebooted"]["rebooted"] is True and seen["rebooted"]["changed"] is True, seen
    volatile = ("elapsed",)
    rustle = {k: v for k, v in results["rustle"]["rebooted"].items() if k not in volatile}
    ansible = {k: v for k, v in results["ansible"]["rebooted"].items() if k not in volatile}
    assert rustle == ansible
