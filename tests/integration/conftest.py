"""Integration fixtures: a real OpenSSH sshd on 127.0.0.1 and small test artifacts.

The sshd (session scope) gets generated host and client keys, its own known_hosts, a random
free port, ``PermitRootLogin yes`` and ``SetEnv SHLVL=1`` (so root's .bashrc skips its slow
``pyenv init``; PERF_NOTES.md). Many inventory hosts share it, each with its own
``rustle_remote_dir``. ``make_artifact`` writes a valid artifact (launcher line + zip with a
``__main__.py`` implementing ``run``/``verify`` by emitting the documented events) whose
behaviour per host is set by the test: fail on some hosts, sleep, pad to a size.
"""

from __future__ import annotations

import gc
import hashlib
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main
from rustle_deploy.deploy import HostJob
from rustle_deploy.model import Host

from .. import oracle
from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

# A stand-in runtime: the agent imports rustle_runtime.cli from the unpacked payload and calls
# main(argv); `python ARTIFACT verify` goes through __main__.py.
FAKE_CLI = r'''
import hashlib, json, os, sys, time, zipfile

def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root = sys.argv[0]
    if os.path.isdir(root):  # run in-process by the agent, from its unpacked copy

        def read(name):
            with open(os.path.join(root, name), "rb") as fh:
                return fh.read()
    else:
        read = zipfile.ZipFile(root).read
    cfg = json.loads(read("test.json").decode())
    if argv[:1] == ["verify"]:
        man = json.loads(read("manifest.json").decode())
        for name, sha in sorted(man["entries"].items()):
            if hashlib.sha256(read(name)).hexdigest() != sha:
                print("entry %s does not match the manifest" % name)
                sys.exit(3)
        sys.exit(0)
    if argv[:1] != ["run"]:
        sys.exit(3)
    opts, flags, i = {}, set(), 1
    while i < len(argv):
        a = argv[i]
        if a in ("--host", "--journal", "--run-id", "--tags", "--skip-tags"):
            opts[a] = argv[i + 1]
            i += 2
        else:
            flags.add(a)
            i += 1
    host = opts["--host"]
    journal = None
    if opts.get("--journal"):
        d = os.path.dirname(opts["--journal"])
        os.makedirs(d, mode=0o700, exist_ok=True)
        journal = open(opts["--journal"], "a")

    def emit(obj):
        line = json.dumps(obj)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        if journal:
            journal.write(line + "\n")
            journal.flush()

    t0 = time.time()
    emit({"event": "run_start", "host": host, "run_id": opts.get("--run-id"), "time": t0,
          "binary_name": cfg["binary_name"], "check": "--check" in flags, "diff": "--diff" in flags,
          "version": cfg["version"]})
    emit({"event": "play_start", "play": "test play"})
    counts = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0, "ignored": 0}
    for n, task in enumerate(cfg["tasks"]):
        tid = "play-0/task_%d" % n
        emit({"event": "task_start", "id": tid, "task": task["name"], "module": "command"})
        if task.get("sleep"):
            time.sleep(task["sleep"])
        failed = host in task.get("fail_on", [])
        status = "failed" if failed else "ok"
        counts[status] += 1
        emit({"event": "task_result", "id": tid, "task": task["name"], "module": "command",
              "status": status, "ignored": False, "rc": 1 if failed else 0, "stdout": "",
              "stderr": "", "msg": "boom" if failed else "", "duration": 0.0})
        if failed:
            break
    rec = {"event": "recap", "host": host, "duration": time.time() - t0}
    rec.update(counts)
    emit(rec)
    sys.exit(2 if counts["failed"] else 0)

'''

FAKE_CLI += r'''

def run_payload(root, host, check=False, diff=False, tags=(), skip_tags=(), journal=None,
                run_id=None, verbosity=0):
    sys.argv = [root]
    argv = ["run", "--host", host] + (["--check"] if check else []) + (["--diff"] if diff else [])
    argv += (["--journal", journal] if journal else []) + (["--run-id", run_id] if run_id else [])
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0
'''

FAKE_MAIN = r'''
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rustle_runtime.cli import main
main()
'''


def make_artifact(
    path: Path,
    *,
    version: str = "1",
    binary_name: str = "rustle-runner-test",
    tasks: list[dict[str, Any]] | None = None,
    pad: int = 0,
    corrupt_manifest: bool = False,
) -> tuple[Path, str, int]:
    """Write a test artifact; return (path, sha256, size)."""
    cfg = {"binary_name": binary_name, "version": version,
           "tasks": tasks if tasks is not None else [{"name": "say hello"}]}
    entries: dict[str, bytes] = {
        "__main__.py": FAKE_MAIN.encode(),
        "rustle_runtime/__init__.py": b"",
        "rustle_runtime/cli.py": FAKE_CLI.encode(),
        "test.json": json.dumps(cfg, sort_keys=True).encode(),
    }
    if pad:
        entries["pad.bin"] = random.Random(version).randbytes(pad)
    manifest = {"format": 1, "protocol": 1, "binary_name": binary_name,
                "entries": {k: hashlib.sha256(v).hexdigest() for k, v in entries.items()}}
    if corrupt_manifest:  # the artifact's own ``verify`` must then fail
        manifest["entries"]["test.json"] = "0" * 64
    entries["manifest.json"] = json.dumps(manifest, sort_keys=True).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name == "pad.bin" else zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name])
    data = b"#!/usr/bin/env python3\n" + buf.getvalue()
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest(), len(data)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rustle-test", "-f", str(path)],
        check=True, stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Sshd:
    port: int
    pid: int
    root: Path
    client_key: Path
    other_key: Path  # a valid key that is not authorized
    known_hosts: Path
    host_pub: str
    user: str
    user_keys: Path  # a world-readable dir: <user_keys>/<login> authorizes other local users

    def host(self, name: str, remote_dir: Path | str, **extra: Any) -> Host:
        """An inventory host pointing at this sshd, with its own remote dir."""
        v: dict[str, Any] = {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.port,
            "ansible_user": self.user,
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts}",
            "rustle_remote_dir": str(remote_dir),
        }
        v.update(extra)
        return Host(name=name, vars=v, groups=("all",))


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, pidfile: Path | None = None) -> None:
    """Wait until ``proc`` (an sshd) answers on ``port``. With ``pidfile``, first until sshd has
    written its pid there, which it does once it listens: the banner then comes from this sshd,
    not from another test worker's that holds the same port (this one then exits: EADDRINUSE).
    Up to 120 s: under a load of 20-60 a start behind a set-up script (tests/native/test_auto.py's
    namespaced sshds, which first link all of /usr/bin) took more than the 10 s this once had."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited {proc.returncode}: {log.read_text()}")
        try:
            if pidfile is not None and pidfile.read_text().strip() != str(proc.pid):
                raise FileNotFoundError(pidfile)
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                if s.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not start: {log.read_text()}")


def run_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """The ``sshd`` fixture's body (tests/conftest.py): one sshd per worker for every directory."""
    if not os.path.exists(SSHD):
        pytest.skip("OpenSSH sshd is not installed (CI installs openssh-server)")
    root = tmp_path_factory.mktemp("sshd")
    host_key = root / "host_ed25519"
    client_key = root / "client_ed25519"
    other_key = root / "other_ed25519"
    for k in (host_key, client_key, other_key):
        _keygen(k)
    auth = root / "authorized_keys"
    auth.write_text((root / "client_ed25519.pub").read_text())
    auth.chmod(0o600)
    host_pub = (root / "host_ed25519.pub").read_text().split()
    user = os.environ.get("USER") or __import__("getpass").getuser()
    # sshd reads it as the logging-in user; one per sshd (test workers run an sshd each)
    user_keys = Path(tempfile.mkdtemp(prefix="rustle-sshd-keys-", dir="/tmp"))
    user_keys.chmod(0o755)
    try:
        proc, port = _start_sshd(root, host_key, auth, user_keys)
    except BaseException:
        shutil.rmtree(user_keys, ignore_errors=True)
        raise
    known = root / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    try:
        yield Sshd(port, proc.pid, root, client_key, other_key, known, f"{host_pub[0]} {host_pub[1]}", user, user_keys)
    finally:
        shutil.rmtree(user_keys, ignore_errors=True)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_sshd(root: Path, host_key: Path, auth: Path, user_keys: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start sshd on a free port (another one when a concurrent test worker took that one
    between the probe and sshd's bind); return the process and its port."""
    for attempt in range(5):
        port = _free_port()
        config = root / "sshd_config"
        config.write_text(sshd_config(port, host_key, root / "sshd.pid", auth, user_keys))
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        log = root / "sshd.log"
        (root / "sshd.pid").unlink(missing_ok=True)
        with open(log, "wb") as logf:
            proc = subprocess.Popen(
                [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf
            )
        try:
            _wait_listening(port, proc, log, root / "sshd.pid")
            return proc, port
        except RuntimeError:
            proc.kill()
            proc.wait()
            if attempt == 4 or "Address already in use" not in log.read_text():
                raise
    raise AssertionError("unreachable")


def sshd_config(port: int, host_key: Path, pidfile: Path, auth: Path, user_keys: Path) -> str:
    """The test sshd's configuration: key authentication only, root allowed, quiet."""
    return "\n".join([
        "ListenAddress 127.0.0.1",
        f"Port {port}",
        f"HostKey {host_key}",
        f"PidFile {pidfile}",
        f"AuthorizedKeysFile {auth} {user_keys}/%u",
        "StrictModes no",
        "PermitRootLogin yes",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "SetEnv SHLVL=1",
        "MaxStartups 500:30:1000",
        "MaxSessions 50",
        "LogLevel ERROR",
        "",
    ])


@pytest.fixture
def artifact_dir(tmp_path: Path) -> Path:
    d = tmp_path / "artifacts"
    d.mkdir()
    return d


@pytest.fixture
def build_artifact(artifact_dir: Path) -> Any:
    """``build_artifact(name, **make_artifact_kwargs) -> (path, sha256, size)`` in a temp dir."""

    def build(name: str = "artifact", **kwargs: Any) -> tuple[Path, str, int]:
        return make_artifact(artifact_dir / name, **kwargs)

    return build


def open_fds() -> set[str]:
    """This process's open file descriptors, as 'fd -> target' strings. Garbage is collected
    first: an earlier test's unreferenced SQLite connection is not a leak of the code under test."""
    gc.collect()
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            continue  # the fd listdir itself used
    return out


def child_pids(exclude: set[int] = frozenset()) -> set[int]:  # type: ignore[assignment]
    """Live child processes of this process (zombies included), minus ``exclude``."""
    me = os.getpid()
    out: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me and int(entry) not in exclude:
            out.add(int(entry))
    return out


def remote_state(remote_dir: Path, binary_name: str = "rustle-runner-test") -> dict[str, Any]:
    """What a host's remote dir says: current/previous sha256, history lines, artifact names."""
    rel = remote_dir / "releases" / binary_name

    def link(name: str) -> str | None:
        try:
            return os.path.basename(os.readlink(rel / name))
        except OSError:
            return None

    history = []
    if (remote_dir / "history.jsonl").exists():
        history = [json.loads(x) for x in (remote_dir / "history.jsonl").read_text().splitlines()]
    arts = sorted(os.listdir(remote_dir / "artifacts")) if (remote_dir / "artifacts").is_dir() else []
    return {"current": link("current"), "previous": link("previous"), "history": history, "artifacts": arts}


def assert_artifacts_whole(remote_dir: Path) -> None:
    """Every file under artifacts/ has the content its name promises; no upload temp is left."""
    d = remote_dir / "artifacts"
    for name in os.listdir(d) if d.is_dir() else []:
        assert not name.startswith(".tmp-"), f"leftover upload temp {name}"
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == name, f"{name} is not whole"


def wait_unlocked(remote_dir: Path, timeout: float = 20.0) -> None:
    """Block until no agent holds the remote lock (a cut agent may still be finishing)."""
    import fcntl

    lock = remote_dir / "lock"
    if not lock.exists():
        return
    deadline = time.monotonic() + timeout
    with open(lock, "rb") as f:
        while True:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture(scope="session")
def remote() -> Any:
    """Helpers to inspect remote dirs and this process, as a fixture."""
    import types

    return types.SimpleNamespace(
        state=remote_state,
        assert_whole=assert_artifacts_whole,
        wait_unlocked=wait_unlocked,
        open_fds=open_fds,
        child_pids=child_pids,
    )


BIN = "rustle-runner-test"  # make_artifact's default binary name


def job(host: Host, art: tuple[Path, str, int], op: str = "deploy", **kw: Any) -> HostJob:
    """A HostJob for ``art`` (as ``build_artifact`` returns it) with the tests' defaults."""
    path, sha, size = art
    kw.setdefault("binary_name", BIN)
    kw.setdefault("deployment_id", "dep-1")
    return HostJob(host=host, op=op, artifact=path, sha256=sha, size=size, **kw)


# ---------------------------------------------------------------- the ansible-playbook oracle

ANSIBLE = ANSIBLE_PLAYBOOK  # the environment under test's (tests/conftest.py)
_RECAP = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", re.M)


def recaps(stdout: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of ansible-playbook's default output: {host: {"ok": 1, "changed": 0, ...}}."""
    return {m.group(1): {k: int(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
            for m in _RECAP.finditer(stdout)}


def ansible_env(work: Path, **extra: str) -> dict[str, str]:
    """ansible-playbook's environment for an oracle run: its own home under ``work``, no
    ansible.cfg, no colour, no retry files, no deprecation warnings; ``extra`` adds to it or
    replaces (an ANSIBLE_CONFIG of the case's own)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOME=str(work / "ansible-home"),
               ANSIBLE_CONFIG=str(work / "no-ansible.cfg"), ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_DEPRECATION_WARNINGS="False", PYTHONWARNINGS="ignore")
    env.update(extra)
    return env


def local_inventory(work: Path, **hosts: str) -> list[str]:
    """``-i WORK/inv.ini`` for ``ansible_connection=local`` hosts (name -> more of its line:
    variables written ``k=v``), each with its own remote dir under ``work``."""
    (work / "inv.ini").write_text("".join(
        f"{name} ansible_connection=local {extra} rustle_remote_dir={work / f'remote-{name}'}\n".replace("  ", " ")
        for name, extra in hosts.items()))
    return ["-i", str(work / "inv.ini")]


def run_tool(tool: str, work: Path, args: list[str], env: dict[str, str | None], cwd: bool = False) -> dict[str, Any]:
    """``work``'s site.yml run with ``args`` and ``-e out=WORK/out -f 1`` by ansible-playbook
    (tool "ansible") or rustle-deploy --run (in this process, HOME under ``work``), neither
    reading an ansible.cfg, with ``env`` over the environment (None: unset), in ``work`` when
    ``cwd``: the exit code, the console's text and the files the hosts wrote into WORK/out
    (name -> text)."""
    argv = [str(work / "site.yml"), *args, "-e", f"out={work / 'out'}", "-f", "1"]
    if tool == "ansible":
        full: dict[str, str | None] = {**ansible_env(work), **env}
        proc = subprocess.run([str(ANSIBLE_PLAYBOOK), *argv], capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                              env={k: v for k, v in full.items() if v is not None}, cwd=work if cwd else None)
        code, text = proc.returncode, proc.stdout + proc.stderr
    else:
        with pytest.MonkeyPatch.context() as mp:
            if cwd:
                mp.chdir(work)
            mp.setenv("HOME", str(work / "home"))
            mp.setenv("ANSIBLE_CONFIG", str(work / "no-ansible.cfg"))
            for var in ("RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_STATE_DB"):
                mp.delenv(var, raising=False)
            for var, value in env.items():
                if value is None:
                    mp.delenv(var, raising=False)
                else:
                    mp.setenv(var, value)
            with open(work / "rustle.out", "w") as stream:
                mp.setattr(sys, "stdout", stream)
                mp.setattr(sys, "stderr", stream)
                code = main([*argv, "--run", "--output", "text"])
        text = (work / "rustle.out").read_text()
    return {"code": code, "text": text, "files": {p.name: p.read_text() for p in sorted((work / "out").iterdir())
                                                  if p.is_file()}}


def playbook_file(tmp_path: Path, text: str, name: str = "site.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def recap_counts(recap: dict[str, Any]) -> dict[str, int]:
    """The counts both tools must agree on."""
    return {k: int(recap.get(k, 0)) for k in ("ok", "changed", "failed", "skipped", "rescued", "ignored")}


class Fleet:
    """``n`` hosts in group fleet (n00, n01, ...), and ``others`` (a group name -> its hosts)
    outside it, all on the one sshd, each with its own remote dir and ``root`` (a directory per
    host and tool that the playbooks write into). ``inventory`` reaches them over ssh for
    rustle-deploy; ``local_inventory`` names the same hosts on local connections for
    ansible-playbook, the oracle; ``down`` hosts are unreachable for both tools."""

    def __init__(self, sshd: Sshd, tmp_path: Path, n: int, others: dict[str, list[str]] | None = None,
                 extra: dict[str, dict[str, Any]] | None = None, down: tuple[str, ...] = ()) -> None:
        self.tmp = tmp_path
        self.down = down
        self.sshd_port = str(sshd.port)
        self.oracle_files: dict[str, dict[str, str]] | None = None
        self.names = [f"n{i:02d}" for i in range(n)]
        groups = {"fleet": self.names, **(others or {})}
        every = [h for members in groups.values() for h in members]
        hosts = {}
        for i, name in enumerate(every):
            h = sshd.host(name, tmp_path / f"remote{i:02d}", root=str(self.root(name, "rustle")))
            hosts[name] = {**h.vars, **(extra or {}).get(name, {})}
            self.root(name, "rustle").mkdir(parents=True)
            self.root(name, "ansible").mkdir(parents=True)
        self.every = every
        for name in down:  # nothing listens on port 1: unreachable for both tools
            hosts[name]["ansible_port"] = 1
        self.inventory = tmp_path / "inv.yml"
        self.inventory.write_text(yaml.safe_dump({"all": {"children": {
            g: {"hosts": {h: hosts[h] for h in members}} for g, members in groups.items()}}}))
        local = {n: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                     "root": str(self.root(n, "ansible"))} for n in every}
        for name in down:
            local[name] = dict(hosts[name], root=str(self.root(name, "ansible")))
        self.local_inventory = tmp_path / "local.yml"
        self.local_inventory.write_text(yaml.safe_dump({"all": {"children": {
            g: {"hosts": {h: local[h] for h in members}} for g, members in groups.items()}}}))

    def root(self, name: str, tool: str) -> Path:
        return self.tmp / tool / name

    def files(self, tool: str) -> dict[str, dict[str, str]]:
        """What each host wrote into its root, the test's tmp dir written ``{tmp}`` (the same
        for both tools); ansible-playbook's as its last ``ansible()`` recorded them."""
        if tool == "ansible" and self.oracle_files is not None:
            return self.oracle_files
        found = {n: {p.name: "<dir>" if p.is_dir() else p.read_text() for p in sorted(self.root(n, tool).iterdir())}
                 for n in self.every}
        return oracle.norm(found, {"{tmp}": self.tmp})

    def rustle(self, capsys: pytest.CaptureFixture[str], playbook: Path, *args: str) -> tuple[int, dict[str, Any]]:
        code = main([str(playbook), "-i", str(self.inventory), "--run", "--output", "json", *args])
        out, err = capsys.readouterr()
        assert out, err
        return code, json.loads(out)

    # what the tools write under the test's tmp dir: not inputs of ansible-playbook's answer
    OUTPUTS = ("rustle", "ansible", "remote*", "home", "ansible-home", "inv.yml")

    def ansible(self, playbook: Path, *args: str) -> tuple[int, dict[str, dict[str, int]]]:
        """ansible-playbook's exit code and recaps, over the local inventory; what its hosts
        wrote is ``files("ansible")``. Recorded (tests/oracle.py), keyed by the inventory, the
        files under the tmp dir (the playbook, its roles and vars files), the command line and
        the environment; a fleet with ``down`` hosts, or inputs naming the sshd's port (a test's
        own inventory of ssh hosts), runs live: those name this run's sshd (port, keys)."""
        argv = [str(ANSIBLE), "-i", str(self.local_inventory), str(playbook), *args]
        env = ansible_env(self.tmp)
        places = {"{tmp}": self.tmp}

        def run() -> dict[str, Any]:
            self.oracle_files = None
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=ORACLE_TIMEOUT)
            return oracle.norm({"code": proc.returncode, "files": self.files("ansible"), "log": proc.stdout + proc.stderr,
                                "recap": {h: r for h, r in recaps(proc.stdout).items() if h in self.every}}, places)

        inputs = oracle.norm({"files": oracle.files(self.tmp, self.OUTPUTS), "argv": argv,
                              "inventory": self.local_inventory.read_text(), "env": oracle.env(env)}, places)
        if self.down or self.sshd_port in json.dumps(inputs):  # this run's sshd: new inputs each run
            result = run()
        else:
            result = oracle.recorded("fleet", inputs, run, volatile=("log",))
        self.oracle_files = result["files"]
        return result["code"], result["recap"]
