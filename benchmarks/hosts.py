"""Local benchmark hosts: real OpenSSH sshd servers on 127.0.0.1, one inventory per tool.

A `Fleet` starts S sshd processes (each with its own host key, port, config and working
directory), a generated client key and a known_hosts file, and optionally one delay proxy
process in front of every server.  N inventory hosts are spread round-robin over the S
servers (S = N unless asked otherwise); each host gets its own directory `bench_root`, seeded
with `stale.txt` (for the workload to remove) and `legacy.cfg` (to edit).

Every server is configured the same way for every tool:
- only `curve25519-sha256` key exchange is offered (OpenSSH's default post-quantum hybrid
  costs ~0.1 CPU s per side per connection and asyncssh/paramiko may not offer it);
- `SetEnv SHLVL=1` so the login bash skips root's ~/.bashrc (its `pyenv init` adds ~0.3 s
  to every command; see PERF_NOTES.md);
- MaxStartups/MaxSessions high enough for hundreds of simultaneous connections.

Host-side CPU is read from /proc: each sshd listener is started in the foreground (`-D`) and
reaps its per-connection children, so once those have exited the listener's
utime+stime+cutime+cstime covers every process that served a connection (privsep
monitors, sessions, shells, remote Pythons).  `Fleet.host_cpu()` waits for the connection
children to finish before reading.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = "/usr/sbin/sshd"
REMOTE_PYTHON = "/usr/bin/python3"  # a real interpreter, not root's pyenv shim
CLK_TCK = os.sysconf("SC_CLK_TCK")
HERE = Path(__file__).resolve().parent
STALE = "left over from an older release\n"  # every fresh host has these two files
LEGACY = "# legacy settings\nworkers = 1\ntimeout = 30\n"

SSHD_CONFIG = """\
Port {port}
ListenAddress 127.0.0.1
HostKey {hostkey}
PidFile {workdir}/sshd.pid
AuthorizedKeysFile {authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
UseDNS no
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
SetEnv SHLVL=1
MaxStartups 2000
MaxSessions 100
LogLevel ERROR
Subsystem sftp internal-sftp
"""


def free_port(taken: set[int]) -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago and is not in ``taken`` (which
    gets it): the kernel may hand out a port again before the sshd or proxy it was picked for
    has bound it (at 200 hosts and 25 ms, 400 picks collided)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"127.0.0.1:{port}: nothing listening after {timeout} s") from None
            time.sleep(0.02)


def children(pid: int) -> list[int]:
    """Direct children of `pid` (via /proc/<pid>/task/*/children)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            out += [int(p) for p in task.read_text().split()]
        except OSError:
            pass
    return out


def proc_cpu(pid: int, reaped_children: bool = True) -> float:
    """CPU seconds of `pid` itself plus (by default) its reaped descendants."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # after the ")" field 3 (state) is index 0: utime=14, stime=15, cutime=16, cstime=17
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


@dataclass(frozen=True)
class Host:
    name: str
    port: int  # where clients connect (the proxy's port when latency > 0)
    root: Path  # bench_root: the host's own workload directory


@dataclass
class Server:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes]


class Fleet:
    """N inventory hosts on S local sshd servers, optionally behind a delay proxy."""

    def __init__(self, workdir: Path, n_hosts: int, latency_ms: float = 0, n_servers: int | None = None):
        self.workdir = workdir.resolve()
        self.n_hosts = n_hosts
        self.latency_ms = latency_ms
        self.n_servers = min(n_servers or n_hosts, n_hosts)
        self.servers: list[Server] = []
        self.hosts: list[Host] = []
        self.proxy: subprocess.Popen[bytes] | None = None
        self.client_key = workdir / "client" / "id_ed25519"
        self.known_hosts = workdir / "client" / "known_hosts"

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Fleet:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.discard(self.workdir)
        (self.workdir / "client").mkdir(parents=True)
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        keygen(self.client_key)
        authorized = self.workdir / "client" / "authorized_keys"
        shutil.copy(self.client_key.with_suffix(".pub"), authorized)
        connect_ports: list[int] = []
        taken: set[int] = set()
        known: list[str] = []
        routes: list[str] = []
        for i in range(self.n_servers):
            sdir = self.workdir / "servers" / f"s{i:03d}"
            sdir.mkdir(parents=True)
            hostkey = sdir / "ssh_host_ed25519_key"
            keygen(hostkey)
            port = free_port(taken)
            config = sdir / "sshd_config"
            config.write_text(SSHD_CONFIG.format(port=port, hostkey=hostkey, workdir=sdir,
                                                 authorized_keys=authorized))
            log = open(sdir / "sshd.log", "wb")  # noqa: SIM115 - lives as long as sshd
            proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log,
                                    stderr=subprocess.STDOUT, cwd=sdir)
            self.servers.append(Server(port, sdir, proc))
            cport = port
            if self.latency_ms:
                cport = free_port(taken)
                routes.append(f"{cport}:{port}")
            connect_ports.append(cport)
            pub = hostkey.with_suffix(".pub").read_text().split()[:2]
            known.append(f"[127.0.0.1]:{cport} {' '.join(pub)}")
        self.known_hosts.write_text("\n".join(known) + "\n")
        if routes:
            self.proxy = subprocess.Popen(
                [sys.executable, str(HERE / "delayproxy.py"), "--delay-ms", str(self.latency_ms),
                 *routes], stdout=subprocess.DEVNULL, stderr=open(self.workdir / "proxy.log", "wb"))
        for server in self.servers:
            if server.proc.poll() is not None:
                log = (server.workdir / "sshd.log").read_text().strip()
                raise RuntimeError(f"{server.workdir}: sshd exited with {server.proc.returncode}: {log}")
            wait_port(server.port)
        for port in connect_ports:
            wait_port(port)
        for i in range(self.n_hosts):
            name = f"bench-{i:04d}"
            root = self.workdir / "hosts" / name / "root"
            self.hosts.append(Host(name, connect_ports[i % self.n_servers], root))
        self.reset()

    def discard(self, path: Path) -> None:
        """Move ``path`` into ``trash/`` beside the fleet's directory; `run.py` deletes the trash
        after the last measurement, not now.

        The hosts share one filesystem. On this machine's ext4 (no journal), every new inode
        allocated within minutes of a mass deletion first skips the inodes just freed, one by
        one (`find_inode_bit`/`recently_deleted` in `perf`): deleting the last run's trees right
        before a cold run charged each tool for every file it creates, ~10 ms per host for
        rustle-native. A fresh host has no such history."""
        if path.exists():
            trash = self.workdir.parent / "trash"
            trash.mkdir(parents=True, exist_ok=True)
            path.rename(trash / f"{time.time_ns()}-{path.name}")

    def reset(self) -> None:
        """Make every host fresh: a bench_root holding only stale.txt and legacy.cfg."""
        self.discard(self.workdir / "hosts")
        for host in self.hosts:
            host.root.mkdir(parents=True)
            (host.root / "stale.txt").write_text(STALE)
            (host.root / "legacy.cfg").write_text(LEGACY)

    def stop(self) -> None:
        procs = [s.proc for s in self.servers] + ([self.proxy] if self.proxy else [])
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.servers.clear()
        self.proxy = None

    # -- measurement -----------------------------------------------------------------------
    def host_cpu(self, settle: float = 10.0) -> float:
        """CPU seconds spent so far by every sshd and all it served (connections must be closed)."""
        deadline = time.monotonic() + settle
        while any(children(s.proc.pid) for s in self.servers) and time.monotonic() < deadline:
            time.sleep(0.05)
        return sum(proc_cpu(s.proc.pid) for s in self.servers)

    # -- inventories -----------------------------------------------------------------------
    def host_vars(self, host: Host) -> dict[str, object]:
        """The one description every tool's inventory is derived from."""
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": host.port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.client_key),
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={self.known_hosts} "
                                       "-o StrictHostKeyChecking=yes",
            "ansible_python_interpreter": REMOTE_PYTHON,
            "bench_root": str(host.root),
            "bench_role": "web" if int(host.name.rsplit("-", 1)[1]) % 2 == 0 else "db",
            "rustle_remote_dir": str(host.root.parent / "rustle"),
        }

    def write_ansible_inventory(self, path: Path, hosts: list[Host] | None = None) -> Path:
        """YAML inventory (read by ansible-playbook and rustle-deploy)."""
        inv = {"all": {"hosts": {h.name: self.host_vars(h) for h in hosts or self.hosts}}}
        path.write_text(json.dumps(inv, indent=1))  # JSON is YAML
        return path

    def write_pyinfra_inventory(self, path: Path, hosts: list[Host] | None = None) -> Path:
        """pyinfra inventory module: (name, data) tuples with pyinfra's ssh_* connection keys."""
        rows = []
        for h in hosts or self.hosts:
            v = self.host_vars(h)
            data = {
                "ssh_hostname": v["ansible_host"], "ssh_port": v["ansible_port"],
                "ssh_user": v["ansible_user"], "ssh_key": v["ansible_ssh_private_key_file"],
                "ssh_known_hosts_file": str(self.known_hosts), "ssh_strict_host_key_checking": "yes",
                "bench_root": v["bench_root"], "bench_role": v["bench_role"],
            }
            rows.append((h.name, data))
        path.write_text("bench = " + repr(rows) + "\n")
        return path


def keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(path)],
                   check=True, stdout=subprocess.DEVNULL)
