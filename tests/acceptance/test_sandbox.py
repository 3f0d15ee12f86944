"""A run in a throwaway root (tests/acceptance/sandbox.py) changes nothing of this machine: a file,
an account, a package and a host name made inside are not seen outside, and nothing of the
sandbox (a mount, a process) is left after the run, one that timed out too."""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
from pathlib import Path

import pytest

from . import harness, sandbox
from .harness import _processes, execute, run_target

pytestmark = pytest.mark.skipif(sandbox.available() is not None, reason=str(sandbox.available()))

# Every script run inside first makes sure it is inside: its root is the sandbox's overlay (seen
# from inside its chroot: "rustle-sandbox / overlay ...") and its init is not this machine's.
# Were the sandbox ever not made, the script stops before it changes anything.
INSIDE = "grep -q '^rustle-sandbox / overlay ' /proc/self/mounts || { echo 'not in a sandbox' >&2; exit 99; }\n"


def _sandboxed(script: str, scratch: Path, work: Path, network: bool = True) -> list[str]:
    (work / "script.sh").write_text(INSIDE + script)
    return sandbox.command(["sh", "-e", str(work / "script.sh")], scratch, [work], work, network)


def _dirs(tmp_path: Path) -> tuple[Path, Path]:
    scratch, work = tmp_path / "scratch", tmp_path / "work"
    scratch.mkdir()
    work.mkdir()
    return scratch, work


def _held_by_any_process(scratch: Path) -> list[int]:
    """The processes of this machine whose mount namespace still holds a mount under ``scratch``
    (the sandbox's tmpfs and overlay)."""
    out = []
    for pid in _processes():
        try:
            if str(scratch) in Path(f"/proc/{pid}/mountinfo").read_text():
                out.append(pid)
        except OSError:
            continue
    return out


def _deb(tmp_path: Path, name: str) -> Path:
    """A package of nothing but one file, for dpkg to install."""
    tree = tmp_path / "deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "share" / name).mkdir(parents=True)
    (tree / "usr" / "share" / name / "marker").write_text("installed\n")
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0\nArchitecture: all\nMaintainer: rustle <rustle@localhost>\n"
        "Description: a package the sandbox test installs\n")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(tree), str(tmp_path / f"{name}.deb")],
                   check=True, capture_output=True)
    return tmp_path / f"{name}.deb"


def _installed(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True)
    return proc.returncode == 0 and "installed" in proc.stdout.split()


def test_a_file_an_account_a_package_and_a_host_name_made_inside_are_not_seen_outside(tmp_path: Path) -> None:
    scratch, work = _dirs(tmp_path)
    name = f"rustlesbx{os.getpid()}"
    deb = _deb(tmp_path, name)
    host = socket.gethostname()
    script = (f"echo made > /etc/{name}\n"
              f"useradd --no-create-home {name}\n"
              f"dpkg -i {deb} > /dev/null\n"
              f"hostname {name}\n"
              # what the run saw inside, in its work directory (this machine's, mounted through)
              f"cat /etc/{name} > seen; id -u {name} >> seen; dpkg-query -W -f '${{Status}}\\n' {name} >> seen; "
              "hostname >> seen\n")
    try:
        proc = subprocess.run(_sandboxed(script, scratch, work), capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        made, uid, status, inside = (work / "seen").read_text().splitlines()
        assert (made, status, inside) == ("made", "install ok installed", name) and uid.isdigit()
        assert not Path(f"/etc/{name}").exists()
        with pytest.raises(KeyError):
            pwd.getpwnam(name)
        assert not _installed(name)
        assert socket.gethostname() == host
        assert not _held_by_any_process(scratch)
    finally:  # only if the sandbox leaked: put this machine back
        Path(f"/etc/{name}").unlink(missing_ok=True)
        subprocess.run(["userdel", name], capture_output=True)
        if _installed(name):
            subprocess.run(["dpkg", "--purge", name], capture_output=True)
        if socket.gethostname() != host:
            socket.sethostname(host)


def test_a_run_has_its_own_processes_devices_and_terminals(tmp_path: Path) -> None:
    scratch, work = _dirs(tmp_path)
    script = ("ps -e -o pid= | wc -l > seen\n"  # the sandbox's init, sh, ps, wc: not this machine's
              "echo $$ >> seen\n"
              "ls /dev | tr '\\n' ' ' >> seen; echo >> seen\n"
              "python3 -c 'import os, pty; pid, fd = pty.fork(); os._exit(0) if pid == 0 else print(os.ttyname(fd))' >> seen\n")
    proc = subprocess.run(_sandboxed(script, scratch, work), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, shell, dev, tty = (work / "seen").read_text().splitlines()
    assert int(count) < 10 and int(shell) < 100
    assert {"null", "zero", "urandom", "tty", "pts", "ptmx", "shm", "fd"} <= set(dev.split())
    assert tty.startswith("/dev/pts/")


def test_a_private_network_has_only_a_loopback_interface_and_it_is_up(tmp_path: Path) -> None:
    scratch, work = _dirs(tmp_path)
    script = ("ls /sys/class/net | tr '\\n' ' ' > seen\n"
              "python3 -c 'import socket; s = socket.create_server((\"127.0.0.1\", 0)); "
              "socket.create_connection(s.getsockname()).close(); print(\" listened\")' >> seen\n")
    proc = subprocess.run(_sandboxed(script, scratch, work, network=False), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (work / "seen").read_text().split() == ["lo", "listened"]


def test_what_a_run_needs_is_installed_on_this_machines_network_before_it_runs_on_its_own(tmp_path: Path) -> None:
    """The preparation (iptables': apt-get install) runs in the new root on this machine's
    network; the run then has a network of its own, and what the preparation made is there."""
    scratch, work = _dirs(tmp_path)
    name = f"rustlesbxprep{os.getpid()}"
    (work / "script.sh").write_text(INSIDE + f"cat /etc/{name} > seen\nls /sys/class/net >> seen\n")
    prepare = f"grep -q '^rustle-sandbox / overlay ' /proc/self/mounts && echo ready > /etc/{name}"
    argv = sandbox.command(["sh", "-e", str(work / "script.sh")], scratch, [work], work, network=False, prepare=prepare)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (work / "seen").read_text().split() == ["ready", "lo"]
    assert not Path(f"/etc/{name}").exists()
    failing = sandbox.command(["sh", "-c", f"echo ran > {work}/ran"], scratch, [work], work, prepare="exit 3")
    proc = subprocess.run(failing, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 125 and "the preparation failed (exit 3): exit 3" in proc.stderr
    assert not (work / "ran").exists()


def test_a_sandboxed_run_that_times_out_leaves_no_mount_no_process_and_no_directory(tmp_path: Path) -> None:
    """The tool and a daemon of its own keep running until the harness's timeout; everything of
    the run ends, the sandbox's mounts with its last process, and the run's directory goes."""
    scratch, work = _dirs(tmp_path)
    script = ("cat /proc/self/mounts > mounts\n"
              "(setsid sleep 600 > /dev/null 2>&1 &)\n"
              "sleep 600\n")
    run = execute("rustle", _sandboxed(script, scratch, work), work, work, dict(os.environ), [work / "remote"], timeout=5)
    assert run.refused == "timed out after 5 s" and run.code is None
    assert (work / "mounts").read_text().startswith("rustle-sandbox / overlay ")  # it was made
    assert not harness._marked(_processes(), str(work))
    assert not _held_by_any_process(scratch)
    harness._remove_tree(tmp_path)
    assert not tmp_path.exists()


def _machine_target(root: Path) -> None:
    role = root / "machine"
    (role / "tasks").mkdir(parents=True)
    (role / "aliases").write_text("destructive\nneeds/root\n")
    (role / "tasks" / "main.yml").write_text(
        f"- command: sh -c {INSIDE.strip()!r}\n"  # first, as every script here: stop unless inside
        "- user: name=rustlesbxrole\n"
        "- copy: dest=/etc/rustlesbxrole content=made\n"
        "- hostname: name=rustlesbxrole\n"  # without systemd: /etc/hostname only
        "- command: hostname rustlesbxrole\n"
        "- shell: hostname; cat /etc/hostname\n  register: seen\n"
        "- assert:\n    that: seen.stdout_lines == ['rustlesbxrole', 'rustlesbxrole']\n")


@pytest.mark.parametrize("tool", ["ansible", "rustle"])
def test_a_machine_changing_target_runs_in_a_sandbox_of_its_own_under_either_tool(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str) -> None:
    _machine_target(tmp_path / "targets")
    monkeypatch.setitem(harness.MACHINE_CHANGING, "machine", "adds an account, sets the host name")
    monkeypatch.setitem(harness.SANDBOXED, "machine", "host")
    assert harness.not_run(tmp_path / "targets", "machine") is None
    host, etc_hostname = socket.gethostname(), Path("/etc/hostname").read_text()
    try:
        run = run_target(tmp_path / "targets", "machine", tool, base=tmp_path)
        assert run.code == 0, run.log[-3000:]
        assert [r["status"] for r in run.results if r["task"] != "Gathering Facts"] == ["changed"] * 6 + ["ok"]
        with pytest.raises(KeyError):
            pwd.getpwnam("rustlesbxrole")
        assert not Path("/etc/rustlesbxrole").exists() and socket.gethostname() == host
        assert not list(tmp_path.glob("acc-*"))  # its directory is gone
    finally:  # only if the sandbox leaked: put this machine back
        Path("/etc/rustlesbxrole").unlink(missing_ok=True)
        subprocess.run(["userdel", "rustlesbxrole"], capture_output=True)
        if socket.gethostname() != host:
            socket.sethostname(host)
        if Path("/etc/hostname").read_text() != etc_hostname:
            Path("/etc/hostname").write_text(etc_hostname)


def test_targets_that_need_an_init_system_say_so(root: Path) -> None:
    for name in ("service", "systemd", "reboot"):
        assert name not in harness.SANDBOXED and "throwaway root" in harness.not_run(root, name)
    assert all(harness.not_run(root, name) is None for name in harness.SANDBOXED if name in harness.role_targets(root))


def test_a_sandboxed_target_keeps_its_roles_own_account_names(root: Path) -> None:
    """Outside a sandbox each run names its accounts (``-e test_user_name=...``); inside, the
    accounts never reach this machine, and such a name would win over the role's own: become_sudo
    makes two accounts through setup_test_user, each named by its include's vars."""
    assert harness.account_names(root, "become_sudo") == {}
    assert "test_user_name" in harness.account_names(root, "slurp")
    assert harness.oracle_inputs(root, "become_sudo")["accounts"] == {}
