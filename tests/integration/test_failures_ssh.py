"""One test per failure class over a real sshd: each failure is data in the host's outcome.

Every test runs twice: through the OpenSSH client and through asyncssh (``ssh_client``)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.deploy import HostJob, HostOutcome, RunOptions, deploy_fleet, deploy_host
from rustle_deploy.errors import (
    ChecksumMismatch,
    ConnectError,
    HostTimeout,
    RemoteError,
    TransferError,
)
from rustle_deploy.transport import ConnectFn, make_connect

from .conftest import job

pytestmark = pytest.mark.ssh


CONNECT: dict[str, ConnectFn] = {}


@pytest.fixture(autouse=True, params=["openssh", "asyncssh"])
def ssh_client(request: pytest.FixtureRequest) -> Any:
    CONNECT["fn"] = make_connect(request.param)
    yield request.param
    CONNECT.clear()


def one(j: HostJob) -> HostOutcome:
    return asyncio.run(deploy_host(j, connect=CONNECT["fn"]))


def recording_sudo(path: Path, log: Path) -> Path:
    """An executable at ``path`` that appends its argv to ``log`` (a JSON list a line), then
    runs the real sudo with the same arguments; skips the test where sudo is not installed."""
    import shutil
    import sys

    sudo = shutil.which("sudo")
    if not sudo:
        pytest.skip("sudo is not installed")
    path.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                    f"with open({str(log)!r}, 'a') as fh:\n    fh.write(json.dumps(sys.argv) + '\\n')\n"
                    f"os.execv({sudo!r}, [{sudo!r}] + sys.argv[1:])\n")
    path.chmod(0o755)
    return path


def sudo_plugin_argv(options: dict[str, str]) -> list[str]:
    """The sudo command line ansible-core's sudo become plugin builds with these options, up to
    the command it runs."""
    import shlex

    from ansible.plugins.loader import become_loader, shell_loader

    plugin = become_loader.get("sudo")
    plugin.set_options(direct=options)
    return shlex.split(plugin.build_become_command("true", shell_loader.get("sh")))[:-1]


def sudo_calls_were(log: Path, argv: list[str]) -> None:
    """Assert the recording sudo ran, each time as ``argv`` then ``-- /bin/sh`` (the agent)."""
    import json

    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls and all(call[:len(argv)] == argv and call[len(argv):len(argv) + 2] == ["--", "/bin/sh"]
                         for call in calls), calls


def test_closed_port_is_a_connect_error(sshd, tmp_path, build_artifact):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = one(job(sshd.host("closed", tmp_path / "r", ansible_port=port), build_artifact()))
    assert isinstance(out.error, ConnectError) and not out.ok
    assert out.error.message.startswith(f"closed: 127.0.0.1:{port}: connection refused")
    assert "ansible_port" in out.error.hint


def test_wrong_client_key_is_an_auth_error(sshd, tmp_path, build_artifact):
    h = sshd.host("wrongkey", tmp_path / "r", ansible_ssh_private_key_file=str(sshd.other_key))
    out = one(job(h, build_artifact()))
    assert isinstance(out.error, ConnectError)
    assert "authentication failed" in out.error.message
    assert "ansible_ssh_private_key_file" in out.error.hint
    assert not (tmp_path / "r").exists()


def test_unknown_host_key_is_refused_with_a_way_to_accept_it(sshd, tmp_path, build_artifact):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    args = f"-o UserKnownHostsFile={empty}"
    out = one(job(sshd.host("stranger", tmp_path / "r", ansible_ssh_common_args=args), build_artifact()))
    assert isinstance(out.error, ConnectError)
    assert "host key is not trusted" in out.error.message
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {empty}" in out.error.hint
    assert "StrictHostKeyChecking=accept-new" in out.error.hint
    assert not (tmp_path / "r").exists()

    # accept-new records the key, then checks against it
    accept = f"{args} -o StrictHostKeyChecking=accept-new"
    out = one(job(sshd.host("stranger", tmp_path / "r", ansible_ssh_common_args=accept), build_artifact()))
    assert out.ok, out.error
    assert sshd.host_pub in empty.read_text()
    out = one(job(sshd.host("stranger", tmp_path / "r", ansible_ssh_common_args=args), build_artifact()))
    assert out.ok, out.error


def test_changed_host_key_is_refused_even_with_accept_new(sshd, tmp_path, build_artifact):
    wrong = tmp_path / "known_hosts"
    other = (sshd.root / "other_ed25519.pub").read_text().split()
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {other[0]} {other[1]}\n")
    for mode in ("yes", "accept-new"):
        args = f"-o UserKnownHostsFile={wrong} -o StrictHostKeyChecking={mode}"
        out = one(job(sshd.host("changed", tmp_path / "r", ansible_ssh_common_args=args), build_artifact()))
        assert isinstance(out.error, ConnectError), mode
    no = f"-o UserKnownHostsFile={wrong} -o StrictHostKeyChecking=no"
    assert one(job(sshd.host("changed", tmp_path / "r", ansible_ssh_common_args=no), build_artifact())).ok


def test_remote_dir_that_cannot_be_created(sshd, tmp_path, build_artifact):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = one(job(sshd.host("ro", blocker / "rustle"), build_artifact()))
    assert isinstance(out.error, RemoteError)
    assert out.error.message.startswith(f"ro: {blocker / 'rustle'}: cannot create directory")
    assert "rustle_remote_dir" in out.error.hint


def test_cut_in_the_middle_of_an_upload_leaves_nothing_partial(sshd, tmp_path, build_artifact, remote):
    art = build_artifact(pad=2_000_000)
    d = tmp_path / "r"
    h = sshd.host("cut", d)

    def cut(offset: int, chunk: bytes) -> bytes | None:
        return None if offset >= 600_000 else chunk

    out = one(job(h, art, upload_filter=cut))
    assert isinstance(out.error, TransferError) and not out.activated
    remote.wait_unlocked(d)
    assert remote.state(d)["current"] is None
    remote.assert_whole(d)
    assert remote.state(d)["artifacts"] == []

    again = one(job(h, art, run=RunOptions("r1")))
    assert again.ok and again.uploaded and again.activated
    remote.assert_whole(d)
    assert remote.state(d)["current"] == art[1]


def test_byte_flipped_in_transit_is_caught_by_the_host_side_hash(sshd, tmp_path, build_artifact, remote):
    art = build_artifact()
    d = tmp_path / "r"

    def flip(offset: int, chunk: bytes) -> bytes:
        b = bytearray(chunk)
        b[100 - offset] ^= 0x01
        return bytes(b)

    out = one(job(sshd.host("flip", d), art, upload_filter=flip))
    assert isinstance(out.error, ChecksumMismatch)
    assert out.error.expected == art[1] and out.error.actual != art[1]
    assert out.error.message.startswith("flip: ")
    st = remote.state(d)
    assert st["current"] is None and st["artifacts"] == [] and st["history"] == []


def test_verify_catches_a_corrupt_artifact_and_keeps_the_old_release(sshd, tmp_path, build_artifact, remote):
    v1 = build_artifact("v1", version="1")
    v2 = build_artifact("v2", version="2")
    d = tmp_path / "r"
    h = sshd.host("verify", d)
    assert one(job(h, v1, verify=True)).ok
    # v2 lands damaged on the host's disk with the right size: the deployment notices, replaces
    # it with a fresh upload and says so; verify then passes
    damaged = bytearray(v2[0].read_bytes())
    damaged[-10] ^= 0xFF
    target = d / "artifacts" / v2[1]
    target.write_bytes(bytes(damaged))
    bad_sha = __import__("hashlib").sha256(bytes(damaged)).hexdigest()
    out = one(job(h, v2, verify=True, run=RunOptions("r2")))
    assert out.ok and out.uploaded and out.activated, out.error
    assert out.agent is not None and out.agent["damaged"] == {"size": v2[2], "sha256": bad_sha}
    assert remote.state(d)["current"] == v2[1]
    remote.assert_whole(d)
    assert one(job(h, v1, verify=True)).ok

    # an artifact whose own check fails (manifest mismatch): RemoteError, old release kept
    bad = build_artifact("bad", version="3", corrupt_manifest=True)
    out = one(job(h, bad, verify=True))
    assert isinstance(out.error, RemoteError) and "verify exited 3" in out.error.message
    assert remote.state(d)["current"] == v1[1]


def test_a_task_failing_on_one_host_leaves_the_others_fine(sshd, tmp_path, build_artifact):
    art = build_artifact(tasks=[{"name": "risky", "fail_on": ["h1"]}, {"name": "after"}])
    hosts = [sshd.host(f"h{i}", tmp_path / f"r{i}") for i in range(3)]
    outs = asyncio.run(deploy_fleet(
        [job(h, art, run=RunOptions("r1")) for h in hosts], parallel=3, timeout=60, connect=CONNECT["fn"]
    ))
    by = {o.host: o for o in outs}
    assert not by["h1"].ok and by["h1"].run_exit == 2 and by["h1"].error is None
    assert by["h1"].recap["failed"] == 1
    for name in ("h0", "h2"):
        assert by[name].ok and by[name].run_exit == 0 and by[name].recap["ok"] == 2


def test_hosts_exceeding_the_timeout(sshd, tmp_path, build_artifact):
    slow = build_artifact("slow", tasks=[{"name": "nap", "sleep": 30}])
    fast = build_artifact("fast")
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(1)  # accepts the TCP handshake, never speaks SSH
    try:
        jobs = [
            job(sshd.host("sleepy", tmp_path / "a"), slow, run=RunOptions("r1")),
            job(sshd.host("hole", tmp_path / "b", ansible_port=blackhole.getsockname()[1]), fast),
            job(sshd.host("quick", tmp_path / "c"), fast, run=RunOptions("r1")),
        ]
        outs = asyncio.run(deploy_fleet(jobs, parallel=3, timeout=3, connect=CONNECT["fn"]))
    finally:
        blackhole.close()
    by = {o.host: o for o in outs}
    assert isinstance(by["sleepy"].error, HostTimeout)
    assert by["sleepy"].activated is False and by["sleepy"].events  # it got as far as the run
    assert "within 3s" in by["sleepy"].error.message
    assert isinstance(by["hole"].error, HostTimeout) and "while connecting" in by["hole"].error.message
    assert by["quick"].ok


def test_become_runs_the_agent_through_sudo(sshd, tmp_path, build_artifact):
    import shutil

    if not shutil.which("sudo"):
        pytest.skip("sudo is not installed")
    h = sshd.host("sudo", tmp_path / "r", ansible_become=True, ansible_become_user=sshd.user)
    out = one(job(h, build_artifact(), run=RunOptions("r1")))
    assert out.ok, out.error


def test_become_exe_and_flags_start_the_agent_as_ansible_builds_the_command(sshd, tmp_path, build_artifact):
    """ansible_sudo_exe (over ansible_become_exe) and ansible_become_flags on the connection-level
    become, and the plugin's default flags when none are set: the program, its flags and the
    user are the ones ansible-core's sudo plugin builds;
    a become_exe that does not exist fails its host, naming it."""
    wrap = tmp_path / "wrap"
    wrap.mkdir()
    log = wrap / "argv.jsonl"
    rec = recording_sudo(wrap / "sudo-rec", log)
    h = sshd.host("wrapped", tmp_path / "r", ansible_become=True, ansible_become_user=sshd.user,
                  ansible_become_exe="/nonexistent/sudo", ansible_sudo_exe=str(rec),
                  ansible_become_flags="-n -H")
    out = one(job(h, build_artifact(), run=RunOptions("r1")))
    assert out.ok, out.error
    theirs = sudo_plugin_argv({"become_exe": str(rec), "become_flags": "-n -H", "become_user": sshd.user})
    assert theirs == [str(rec), "-n", "-H", "-u", sshd.user]
    sudo_calls_were(log, theirs)

    # no flags set: the sudo plugin's default, -H -S -n (real sudo, over the private sshd)
    log.unlink()
    plain = sshd.host("default-flags", tmp_path / "r3", ansible_become=True, ansible_become_user=sshd.user,
                      ansible_sudo_exe=str(rec))
    out = one(job(plain, build_artifact(), run=RunOptions("r3")))
    assert out.ok, out.error
    theirs = sudo_plugin_argv({"become_exe": str(rec), "become_user": sshd.user})
    assert theirs == [str(rec), "-H", "-S", "-n", "-u", sshd.user]
    sudo_calls_were(log, theirs)

    bad = sshd.host("missing", tmp_path / "r2", ansible_become=True, ansible_become_user=sshd.user,
                    ansible_become_exe="/nonexistent/sudo")
    out = one(job(bad, build_artifact(), run=RunOptions("r2")))
    assert not out.ok
    assert "the become program '/nonexistent/sudo' was not found on the host" in out.error.message, out.error
    assert "ansible_become_exe" in (out.error.hint or ""), out.error


def test_the_connection_level_become_reads_the_sudo_plugins_config_as_ansible_does(
        sshd: Any, tmp_path: Path, rustle_home: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """ansible_become=true in the inventory: the agent starts through ansible.cfg's
    [sudo_become_plugin] executable and flags (over [privilege_escalation] become_exe), and
    ANSIBLE_SUDO_FLAGS beats the file; the command line is the one ansible-core's sudo plugin
    builds from the same configuration (a real sudo, over the private sshd)."""
    import yaml

    from rustle_deploy.cli import main

    log = tmp_path / "argv.jsonl"
    rec = recording_sudo(tmp_path / "sudo-rec", log)
    cfg = tmp_path / "ansible.cfg"
    cfg.write_text(f"[privilege_escalation]\nbecome_exe = /nonexistent/generic-sudo\nbecome_flags = -E\n"
                   f"[sudo_become_plugin]\nexecutable = {rec}\nflags = -n -H\n")
    host = sshd.host("cfgbecome", tmp_path / "remote", ansible_become=True, ansible_become_user=sshd.user)
    (tmp_path / "inv.yml").write_text(yaml.safe_dump({"all": {"hosts": {host.name: host.vars}}}))
    (tmp_path / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - ping:\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(cfg))

    def ours_and_theirs(flags: str) -> list[str]:
        log.unlink(missing_ok=True)
        code = main([str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.yml"), "--run", "--output", "json"])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        return sudo_plugin_argv({"become_exe": str(rec), "become_flags": flags, "become_user": sshd.user})

    theirs = ours_and_theirs("-n -H")
    assert theirs == [str(rec), "-n", "-H", "-u", sshd.user]
    sudo_calls_were(log, theirs)
    monkeypatch.setenv("ANSIBLE_SUDO_FLAGS", "-H -n")
    theirs = ours_and_theirs("-H -n")
    assert theirs == [str(rec), "-H", "-n", "-u", sshd.user]
    sudo_calls_were(log, theirs)


def test_become_that_needs_a_password_is_a_clear_error(sshd, tmp_path, build_artifact):
    """A user whose sudo asks for a password: refused with a hint, nothing half-done."""
    import os
    import pwd
    import shutil
    import subprocess

    if os.geteuid() != 0 or not shutil.which("sudo") or not shutil.which("useradd"):
        pytest.skip("needs root, sudo and useradd to create a user without passwordless sudo")
    user = "rustle-nopw"
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/bin/sh", user], check=True)
    subprocess.run(["usermod", "-p", "*", user], check=True)  # no password, but not locked for sshd
    key = sshd.user_keys / user
    key.write_text((sshd.root / "client_ed25519.pub").read_text())
    key.chmod(0o644)
    home = Path(f"/tmp/{user}-{os.getpid()}")
    home.mkdir(mode=0o700, exist_ok=True)
    info = pwd.getpwnam(user)
    os.chown(home, info.pw_uid, info.pw_gid)
    try:
        h = sshd.host("pw", home / "rustle", ansible_user=user, ansible_become=True)
        art = build_artifact()
        shutil.copy(art[0], home / "art")
        os.chown(home / "art", info.pw_uid, info.pw_gid)
        out = one(job(h, art, run=RunOptions("r1")))
        assert isinstance(out.error, RemoteError), out
        assert "asks for a password" in out.error.message
        assert "NOPASSWD" in (out.error.hint or "")
        assert not (home / "rustle").exists(), "nothing was written under the remote dir"
    finally:
        shutil.rmtree(home, ignore_errors=True)
