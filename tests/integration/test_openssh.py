"""The OpenSSH client transport, early starts and pushed uploads, over a real sshd.

The failure classes run through both clients in test_failures_ssh.py; this file covers what is
particular to the ``ssh`` binary: choosing it, starting it before the artifacts exist (and ending
it cleanly when it is not used), and sending the artifact without waiting to be asked.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.deploy import HostOutcome, RunOptions, deploy_fleet, deploy_host
from rustle_deploy.errors import ConnectError, UsageError
from rustle_deploy.transport import OPENSSH_MAX_WIDTH, make_connect, ssh_binary_for
from rustle_deploy.transport.early import start_early
from rustle_deploy.transport.openssh import OpenSshConnection
from rustle_deploy.transport.ssh import SshConnection

from .conftest import job

pytestmark = pytest.mark.ssh


def _ssh_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if stat[1] == me and exe.endswith("/ssh"):
            found.append(int(pid))
    return found


def test_auto_picks_the_ssh_binary_for_small_widths_and_asyncssh_beyond():
    assert ssh_binary_for("auto", 1) is not None
    assert ssh_binary_for("auto", OPENSSH_MAX_WIDTH) is not None
    assert ssh_binary_for("auto", OPENSSH_MAX_WIDTH + 1) is None
    assert ssh_binary_for("asyncssh", 1) is None
    assert ssh_binary_for("openssh", 10_000) is not None


def test_openssh_without_an_ssh_binary_is_a_usage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError) as exc:
        ssh_binary_for("openssh", 1)
    assert "no ssh command" in exc.value.message and "asyncssh" in (exc.value.hint or "")
    assert ssh_binary_for("auto", 1) is None  # auto falls back to asyncssh


def test_connect_chooses_per_host(sshd, tmp_path):
    plain = sshd.host("plain", tmp_path / "a")
    secret = sshd.host("secret", tmp_path / "b", ansible_password="s3cret")

    async def go(client: str, host: Any) -> Any:
        conn = await make_connect(client)(host)
        await conn.close()
        return conn

    assert isinstance(asyncio.run(go("auto", plain)), OpenSshConnection)
    assert isinstance(asyncio.run(go("asyncssh", plain)), SshConnection)
    # a password needs asyncssh: auto takes it there, an explicit openssh says why not
    with pytest.raises(ConnectError) as exc:
        asyncio.run(go("openssh", secret))
    assert "ansible_password" in exc.value.message and "asyncssh" in (exc.value.hint or "")


@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
def test_pushed_artifact_saves_the_round_trip_and_is_skipped_when_present(client, sshd, tmp_path, build_artifact, remote):
    art = build_artifact(pad=50_000)
    d = tmp_path / "r"
    h = sshd.host("pushy", d)
    connect = make_connect(client)
    turns = {"openssh": 1, "asyncssh": 2}[client]  # asyncssh also counts the channel open

    def one(**kw: Any) -> HostOutcome:
        return asyncio.run(deploy_host(job(h, art, **kw), connect=connect))

    cold = one(push=True, run=RunOptions("r1"))
    assert cold.ok, cold.error
    assert (cold.uploaded, cold.activated, cold.run_exit) == (True, True, 0)
    assert cold.round_trips == turns  # not turns + 1: the agent never had to ask
    # pushed again although the host has it: the agent reads and drops it, nothing changes
    again = one(push=True, run=RunOptions("r2"))
    assert again.ok, again.error
    assert (again.uploaded, again.activated, again.run_exit) == (False, False, 0)
    assert again.agent is not None and again.agent["uploaded"] is False
    st = remote.state(d)
    assert st["current"] == art[1] and st["artifacts"] == [art[1]]
    remote.assert_whole(d)
    # not pushed and present: the warm path
    warm = one(run=RunOptions("r3"))
    assert warm.ok and warm.round_trips == turns and not warm.uploaded


def test_early_starts_are_adopted_by_the_fleet(sshd, tmp_path, build_artifact, remote):
    art = build_artifact(pad=20_000)
    hosts = [sshd.host(f"e{i}", tmp_path / f"r{i}") for i in range(6)]
    early = start_early(hosts, "auto", width=4)
    assert early is not None
    started = _ssh_children()
    assert len(started) == 4  # only the hosts the fan-out takes first
    time.sleep(0.3)  # the "compile": handshakes go on meanwhile
    connect = make_connect("auto", 4, early)
    outs = asyncio.run(deploy_fleet([job(h, art, push=True, run=RunOptions("r1")) for h in hosts],
                                    parallel=4, timeout=60, connect=connect))
    for o in outs:
        assert o.ok, o.error
        assert (o.uploaded, o.activated, o.run_exit) == (True, True, 0)
    assert early.take("e0") is None  # every early process was used
    early.close()
    assert _ssh_children() == []
    for i in range(6):
        assert remote.state(tmp_path / f"r{i}")["current"] == art[1]


def test_unused_early_starts_end_and_touch_nothing(sshd, tmp_path):
    hosts = [sshd.host(f"u{i}", tmp_path / f"r{i}") for i in range(3)]
    early = start_early(hosts, "openssh", width=3)
    assert early is not None and len(_ssh_children()) == 3
    time.sleep(0.5)  # let the handshakes finish and the agents start waiting for a request
    early.close()  # e.g. the build failed
    assert _ssh_children() == []
    for i in range(3):
        assert not (tmp_path / f"r{i}").exists()  # the agents read EOF and wrote nothing


def test_no_early_starts_with_asyncssh_or_local_hosts(sshd, tmp_path):
    from rustle_deploy.model import Host

    assert start_early([sshd.host("a", tmp_path / "a")], "asyncssh", width=5) is None
    early = start_early([Host("localhost", {"ansible_connection": "local"})], "auto", width=5)
    assert early is not None and _ssh_children() == []
    early.close()


@pytest.mark.parametrize("early_start", [True, False])
def test_ssh_failing_before_the_request_is_a_connect_error_even_when_pushing(early_start, sshd, tmp_path, build_artifact):
    """ssh may already have died (connection refused, bad key) when the request and the pushed
    artifact are written: that is a ConnectError naming the cause, not a broken pipe."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    art = build_artifact(pad=400_000)  # more than a pipe holds: the write must notice ssh is gone
    hosts = [
        sshd.host("refused", tmp_path / "a", ansible_port=port),
        sshd.host("badkey", tmp_path / "b", ansible_ssh_private_key_file=str(sshd.other_key)),
    ]
    early = start_early(hosts, "openssh", width=2) if early_start else None
    if early_start:
        time.sleep(0.5)  # both ssh processes have failed by now
    outs = asyncio.run(deploy_fleet([job(h, art, push=True) for h in hosts], parallel=2, timeout=60,
                                    connect=make_connect("openssh", 2, early)))
    by = {o.host: o for o in outs}
    assert isinstance(by["refused"].error, ConnectError), by["refused"].error
    assert "connection refused" in by["refused"].error.message
    assert isinstance(by["badkey"].error, ConnectError), by["badkey"].error
    assert "authentication failed" in by["badkey"].error.message
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_adopted_processes_end_without_pidfd(monkeypatch, sshd, tmp_path, build_artifact):
    """A controller without os.pidfd_open (not Linux) waits for early ssh processes by polling."""
    monkeypatch.delattr(os, "pidfd_open")
    art = build_artifact()
    hosts = [sshd.host(f"p{i}", tmp_path / f"r{i}") for i in range(2)]
    early = start_early(hosts, "openssh", width=2)
    outs = asyncio.run(deploy_fleet([job(h, art, push=True, run=RunOptions("r1")) for h in hosts],
                                    parallel=2, timeout=60, connect=make_connect("openssh", 2, early)))
    assert all(o.ok and o.run_exit == 0 for o in outs), [o.error for o in outs]
    assert _ssh_children() == []


def test_control_persist_from_the_users_options_neither_hangs_nor_leaks(sshd, tmp_path, build_artifact):
    """ControlMaster/ControlPersist (as in many ~/.ssh/config files and Ansible's defaults):
    the backgrounded master must not hold the agent's pipes open, and later runs reuse it."""
    import shutil
    import subprocess
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="cm", dir="/tmp"))  # a socket path must stay short
    cp = short / "%C"
    args = f"-o UserKnownHostsFile={sshd.known_hosts} -o ControlMaster=auto -o ControlPath={cp} -o ControlPersist=10"
    h = sshd.host("persist", tmp_path / "r", ansible_ssh_common_args=args)
    art = build_artifact()
    try:
        for run_id in ("r1", "r2"):
            out = asyncio.run(asyncio.wait_for(
                deploy_host(job(h, art, push=run_id == "r1", run=RunOptions(run_id)), connect=make_connect("openssh")), 30))
            assert out.ok and out.run_exit == 0, out.error
        assert list(short.iterdir()), "the master's socket exists: the second run went through it"
    finally:
        subprocess.run(["ssh", "-o", f"ControlPath={cp}", "-O", "exit", "-p", str(sshd.port), "127.0.0.1"],
                       capture_output=True, timeout=10)
        shutil.rmtree(short, ignore_errors=True)


def test_no_early_ssh_to_hosts_of_other_connection_types(sshd, tmp_path):
    """A host with an unsupported ansible_connection gets its ConnectError at its turn, and no
    ssh is started towards it in the meantime."""
    other = sshd.host("container", tmp_path / "c", ansible_connection="docker")
    early = start_early([other, sshd.host("plain", tmp_path / "p")], "auto", width=2)
    assert early is not None
    try:
        assert len(_ssh_children()) == 1 and early.take("container") is None
    finally:
        early.close()
