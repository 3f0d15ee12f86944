"""A throwaway root for one acceptance run of a target that changes the machine.

``command(argv, ...)`` wraps a tool's command line so that it runs as root in namespaces of its
own: mount, PID, UTS and IPC (and network, where asked), in a root made fresh for the run: an
overlay whose lower layer is this machine's root file system and whose upper layer is a tmpfs of
the run's mount namespace. A package installed, an account added, a file written under /etc or a
host name set inside land in that tmpfs and are gone with it; the host's own root is never
written. Only the run's directory (``binds``: its work directory, where each tool leaves its
results) is this machine's own, mounted through.

The command line is ``unshare --mount --propagation private --pid --fork --kill-child --uts
--ipc python sandbox.py SCRATCH [--bind DIR]... [--prepare SHELL] [--private-network] [--cwd DIR]
-- ARGV``: ``unshare`` (util-linux) makes the namespaces and forks; this file's ``main`` then runs
as PID 1 of the new PID namespace, still in the machine's root, and

1. mounts a tmpfs on ``SCRATCH`` (an empty directory of the run's own: the mount is seen only in
   the run's mount namespace), and in it the overlay (``lowerdir=/``) as the new root;
2. mounts each ``--bind`` directory through, a fresh /proc (the PID namespace's), a /dev of its
   own (a tmpfs with the machine's null, zero, full, random, urandom and tty nodes, a devpts
   instance of its own for pseudo-terminals, a tmpfs /dev/shm);
3. runs ``--prepare`` in the new root (still on this machine's network: apt-get fetches what a
   target needs before its firewall rules are made in a network of its own), then with
   ``--private-network`` moves into a network namespace of its own (a loopback interface, up),
   and mounts a read-only /sys (its class/net that namespace's);
4. chroots into it, and runs ARGV as its child, reaping every orphan the run leaves (it is the
   namespace's init) until ARGV exits; it exits with ARGV's code.

When it exits, the kernel ends every process left in the PID namespace, and with the last of them
the mount namespace and its tmpfs (the overlay's upper layer) are freed: nothing of the run is
left but its work directory, which the harness removes. The harness's own isolation holds as
before: the processes inside are this machine's processes too (their pids in /proc, the run's
mark in their environment, descendants of the tool's ``unshare``), so ``end_run`` ends a run that
timed out the same way. Only ``/`` is layered: a file system mounted below it (/proc, /sys, /dev
here) is not in the lower layer; on this machine /tmp, /var, /etc, /usr, /root and /work are all
on the root file system.

No init system runs inside (PID 1 is this file's ``main``, not systemd): a target that starts a
service, talks to systemd or reboots cannot run here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

# the machine's device nodes a run gets in its own /dev
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def available() -> str | None:
    """Why no sandbox can be made here (``None``: it can): it needs root, util-linux's
    ``unshare`` and ``mount``, and a kernel that can mount an overlay over a tmpfs."""
    if os.geteuid() != 0:
        return "a throwaway root needs root"
    for tool in ("unshare", "mount", "chroot"):
        if shutil.which(tool) is None:
            return f"a throwaway root needs util-linux's {tool}"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "a throwaway root needs the kernel's overlay file system"
    return None


def command(argv: list[str], scratch: Path, binds: list[Path], cwd: Path, network: bool = True,
            prepare: str = "") -> list[str]:
    """``argv`` run in a fresh throwaway root: ``scratch`` is an empty directory of the run's own
    (the tmpfs is mounted there, in the run's mount namespace only), ``binds`` the directories of
    this machine the run writes to for real, ``cwd`` where ``argv`` starts. ``network=False``
    gives the run a network namespace of its own (only a loopback interface, brought up);
    ``prepare``, a shell command run in the new root before ``argv`` and still on this
    machine's network (to install what the run needs from the package registries), must succeed."""
    ns = ["--mount", "--propagation", "private", "--pid", "--fork", "--kill-child", "--uts", "--ipc"]
    out = [shutil.which("unshare") or "unshare", *ns, sys.executable, "-I", str(Path(__file__).resolve()), str(scratch)]
    for path in binds:
        out += ["--bind", str(path)]
    if prepare:
        out += ["--prepare", prepare]
    if not network:
        out.append("--private-network")
    return [*out, "--cwd", str(cwd), "--", *argv]


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, stdin=subprocess.DEVNULL)


def _make_root(scratch: Path, binds: list[Path]) -> Path:
    """The new root under ``scratch``, every mount of it made (this process's mount namespace)."""
    _mount("-t", "tmpfs", "-o", "mode=0700", "rustle-sandbox", str(scratch))
    upper, work, root = scratch / "upper", scratch / "work", scratch / "root"
    for path in (upper, work, root):
        path.mkdir()
    _mount("-t", "overlay", "rustle-sandbox", "-o", f"lowerdir=/,upperdir={upper},workdir={work}", str(root))
    for path in binds:
        inside = root / path.relative_to("/")
        inside.mkdir(parents=True, exist_ok=True)  # a directory on another file system than / is not in the overlay
        _mount("--bind", str(path), str(inside))
    _mount("-t", "proc", "proc", str(root / "proc"))
    dev = root / "dev"
    _mount("-t", "tmpfs", "-o", "mode=0755,nosuid", "rustle-sandbox-dev", str(dev))
    for name in DEVICES:
        (dev / name).touch()
        _mount("--bind", f"/dev/{name}", str(dev / name))
    (dev / "pts").mkdir()
    _mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666,mode=0620", "devpts", str(dev / "pts"))
    (dev / "ptmx").symlink_to("pts/ptmx")
    (dev / "shm").mkdir()
    _mount("-t", "tmpfs", "-o", "mode=1777,nosuid,nodev", "shm", str(dev / "shm"))
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        (dev / name).symlink_to(target)
    return root


def _private_network() -> None:
    """Move this process (and the children it starts from now on) into a network namespace of
    its own, and bring its loopback interface up (``ip link set lo up``, without needing
    iproute2): unshare(CLONE_NEWNET), then SIOCGIFFLAGS and SIOCSIFFLAGS with IFF_UP."""
    import ctypes
    import fcntl
    import socket
    import struct

    clone_newnet = 0x40000000
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(clone_newnet) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, req))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def _run_as_init(argv: list[str], cwd: str) -> int:
    """Run ``argv`` in ``cwd`` and wait for it, reaping every other process that ends meanwhile
    (this process is PID 1: orphans are its children); ``argv``'s exit code (128 + a signal)."""
    child = os.fork()
    if child == 0:
        try:
            os.chdir(cwd)
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"sandbox: cannot run {argv[0]}: {exc}", file=sys.stderr)
        os._exit(127)
    while True:
        pid, status = os.wait()
        if pid == child:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def main(args: list[str]) -> int:
    split = args.index("--")
    head, argv = args[:split], args[split + 1:]
    scratch, binds, cwd, prepare, private = Path(head[0]), [], "/", "", False
    rest = iter(head[1:])
    for flag in rest:
        if flag == "--bind":
            binds.append(Path(next(rest)))
        elif flag == "--cwd":
            cwd = next(rest)
        elif flag == "--prepare":
            prepare = next(rest)
        elif flag == "--private-network":
            private = True
        else:
            raise SystemExit(f"sandbox: unknown option {flag}")
    root = _make_root(scratch, binds)
    if prepare:
        proc = subprocess.run(["chroot", str(root), "sh", "-c", prepare], stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            print(f"sandbox: the preparation failed (exit {proc.returncode}): {prepare}", file=sys.stderr)
            return 125
    if private:
        _private_network()
    # /sys after the network namespace: its class/net is the namespace's mounting it
    _mount("-t", "sysfs", "-o", "ro,nosuid,nodev,noexec", "sysfs", str(root / "sys"))
    os.chroot(root)
    os.chdir("/")
    return _run_as_init(argv, cwd)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
