"""The run cache: what a deployment computes before its first ssh, keyed before anything is parsed.

A deployment whose plan or playbook, inventory and files have not changed since the last one
computes the same plan, hosts, schedule and artifacts again: reading the inventory, parsing
and validating the plan (Jinja2), the per-host compile. The first run records what it read
while it computed them (``Recorder``: every file it opened for reading, every directory it
listed, every path it looked at, through an audit hook and ``os.stat``) and stores the result
under a key made of everything known before the first read (``key``: this rustle-deploy's code,
Python, the working directory, the environment, the command's options, the settings and
ansible.cfg values already loaded). A later run with the same key checks that manifest (each
file's sha256, each listing, each looked-at path's kind) and, when all of it holds, deploys
from the stored state without importing the parsers or Jinja2. Any difference, a missing or
unreadable entry, or an error falls back to the full path, which records again.

Each file is hashed when the compile first opens it, before the compile reads it: a change
after that is a miss next time. What is never stored: a compile that ran a command or opened a
socket (an inventory script, ``lookup('pipe')``, an executable vault password file), ran a
controller lookup (``env``, ``password``, ...: ``volatile``), asked something on the terminal,
read something other than a regular file, or read a file that names a filter or function
whose answer changes between runs (``random``, ``shuffle``, ``now()``, ``strftime``,
``password_hash``). Runs with vault secrets, ``-K``,
``--rebuild``, ``--resume``, standard input or plays compiled after ``add_host`` do not use it,
and a deployment that would store a second copy of a secret is not stored (``withheld``).

The entries live in ``<cache_dir>/run/`` (0700; each file 0600), hold nothing a host sent, and
are read only when that directory and the file belong to this user and nobody else can write
them (they are pickles of the controller's own objects: as trusted as the cache directory).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from threading import get_ident
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .model import Host, Plan

FORMAT = 1
# filters and functions whose answer changes from one run to the next (and template_mtime, the
# only use of a hashed file's mtime): a file that names one is not cached (a conservative test on the text: a task merely named "random" falls back too)
_VOLATILE_TEXT = re.compile(rb"random|shuffle|\bnow\s*\(|strftime|password_hash|template_mtime")
# environment variables that change between two identical commands and mean nothing to a compile
_SHELL_NOISE = frozenset(("_", "OLDPWD", "PWD", "SHLVL"))
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_MAX_SCAN = 1 << 20  # files above 1 MiB are hashed, not searched for volatile names

KEEP = 32  # entries kept in <cache_dir>/run/ (each command line, working directory, environment: one)
_ENTRY = re.compile(r"[0-9a-f]{64}")  # an entry's name (temporary files start with a dot)

_RECORDER: Recorder | None = None
_HOOKED = False


def volatile(reason: str) -> None:
    """What is being compiled depends on more than its files (a controller lookup, a prompt):
    the run that compiles it stores no cache entry."""
    if _RECORDER is not None and _RECORDER.active and _RECORDER.volatile is None:
        _RECORDER.volatile = reason


def _code_digest() -> str:
    """This installation's code: every file of the rustle_deploy package (size, mtime), the
    Python version; the versions of what the compile imports are looked at per file
    (``Recorder``: an imported module's source is a looked-at path)."""
    h = hashlib.sha256(f"{FORMAT} {__version__} {sys.version} {sys.executable}\0".encode())
    root = os.path.dirname(os.path.abspath(__file__))
    todo = [root]
    while todo:
        d = todo.pop()
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            if e.name == "__pycache__" or e.name == "target":
                continue
            if e.is_dir(follow_symlinks=False):
                todo.append(e.path)
            else:
                st = e.stat(follow_symlinks=False)
                h.update(f"{e.path}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return h.hexdigest()


def key(opts: dict[str, Any], settings: Any, ansible_cfg: Any) -> str:
    """The entry's name: everything a deployment's compile depends on that is known before it
    reads its first input file."""
    h = hashlib.sha256(_code_digest().encode())
    h.update(f"{os.getcwd()}\0{os.uname()}\0".encode())  # the controller's name: template_host
    for name in sorted(os.environ):
        if name not in _SHELL_NOISE:
            h.update(f"{name}={os.environ[name]}\0".encode(errors="surrogateescape"))
    h.update(repr(sorted((k, repr(v)) for k, v in opts.items())).encode(errors="surrogateescape"))
    h.update(repr(settings).encode(errors="surrogateescape"))
    h.update(repr(ansible_cfg).encode(errors="surrogateescape"))
    return h.hexdigest()


def usable(opts: dict[str, Any], secrets: bool) -> bool:
    """Whether this command may use the run cache (docstring above: which commands do not)."""
    plan = opts.get("execution_plan")
    if not plan or plan == "-" or secrets or os.environ.get("RUSTLE_RUN_CACHE", "1") == "0":
        return False
    return not any(opts.get(k) for k in ("rebuild", "resume", "ask_become_pass", "ask_vault_pass", "vault_ids",
                                         "vault_password_files", "compile_only", "dry_run", "deploy_only",
                                         "cleanup", "rollback", "promote", "emit_plan", "syntax_check",
                                         "list_tasks", "list_hosts", "list_tags", "list_deployments",
                                         "list_inventory", "list_modules"))


# -- recording -----------------------------------------------------------------------------


def _audit(event: str, args: tuple[Any, ...]) -> None:
    rec = _RECORDER
    if rec is None or not rec.active or get_ident() != rec.thread:  # another thread's work is not the compile's
        return
    if event == "open":
        path, mode, flags = (tuple(args) + (None, None, None))[:3]
        if isinstance(path, (str, bytes, os.PathLike)):
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else \
                bool(isinstance(flags, int) and flags & _WRITE_FLAGS)
            if not writes:
                rec.read(path)
    elif event in ("os.listdir", "os.scandir"):
        path = args[0] if args else "."
        if isinstance(path, (str, bytes, os.PathLike)):
            rec.note(rec.dirs, path)
    elif event in ("subprocess.Popen", "os.system", "os.posix_spawn", "os.exec", "os.fork", "os.spawn",
                   "socket.connect", "socket.getaddrinfo"):
        if rec.volatile is None:
            rec.volatile = f"it ran {event}"


class Recorder:
    """The inputs a compile reads while it is ``active`` (see the module's docstring)."""

    def __init__(self, private: Sequence[Path], history: Path):
        """``private``: directories this run writes (the caches); ``history``: the state
        database (and its -wal, -shm): neither is an input."""
        own = os.path.dirname(os.path.abspath(__file__))  # in _code_digest
        dirs = [os.path.abspath(p) for p in private]
        self.skip = tuple(d + os.sep for d in [*dirs, own]) + ("/proc/", "/dev/", "/sys/", os.path.abspath(history))
        # the private directories themselves and their parents: made by this run, not inputs
        self.made = {str(q) for d in [*dirs, os.path.abspath(history)] for q in Path(d).parents} | set(dirs)
        # where imported code lives (sys.path)
        self.code = tuple(os.path.abspath(p) + os.sep for p in sys.path if p and os.path.isabs(p))
        self.files: dict[str, str] = {}  # path -> sha256 when first read
        self.dirs: dict[str, str] = {}  # path -> _listing
        self.looked: dict[str, str] = {}  # path -> _kind
        self.volatile: str | None = None
        self.active = False
        self.thread = 0  # the recording thread
        self.stderr: list[str] = []

    def note(self, into: dict[str, str], path: Any) -> None:
        """A directory listed (``dirs``) or a path looked at (``looked``): what it is now, before
        the compile sees it (a change after this is a miss next time)."""
        p = os.path.abspath(os.fsdecode(path))
        if p.startswith(self.skip) or p in self.made or p in into:
            return
        self.active = False  # looking is not an input
        try:
            into[p] = _listing(p) if into is self.dirs else _kind(p)
        finally:
            self.active = True

    def read(self, path: Any) -> None:
        """A file opened for reading: an input, hashed; a module's code (Python imports
        through the same event) is looked at instead (its source's size and mtime)."""
        p = os.fsdecode(path)
        if p.endswith(".pyc"):  # DIR/__pycache__/NAME.TAG.pyc: its source is DIR/NAME.py
            head, _, base = p.rpartition(os.sep)
            if head.endswith(os.sep + "__pycache__"):
                p = head[: -len("__pycache__")] + base.split(".", 1)[0] + ".py"
            self.note(self.looked, p)
        elif p.endswith((".py", ".so")) and p.startswith(self.code):
            self.note(self.looked, p)
        else:
            p = os.path.abspath(p)
            if p.startswith(self.skip) or p in self.files:
                return
            # hashed now, before the compile reads it: a change after this is a miss next time
            self.active = False  # this read is not an input
            try:
                sig = _file_sig(p)
            finally:
                self.active = True
            if sig is None and not os.path.exists(p):  # a missing file tried: looked at
                self.note(self.looked, p)
            elif sig is None:
                self.volatile = self.volatile or f"it read {p}, which is not a regular file"
            elif sig[1] and _VOLATILE_TEXT.search(sig[1]):
                self.volatile = self.volatile or f"{p} names a filter or function whose answer changes"
            else:
                self.files[p] = sig[0]

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Record what the block reads; what it prints on stderr is kept too (``replay``)."""
        global _RECORDER, _HOOKED
        if not _HOOKED:  # an audit hook cannot be removed: one per process, idle unless recording
            sys.addaudithook(_audit)
            _HOOKED = True
        real_stat, real_lstat, real_err = os.stat, os.lstat, sys.stderr

        def looked(fn: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(path: Any, *a: Any, **kw: Any) -> Any:
                if self.active and get_ident() == self.thread and isinstance(path, (str, bytes, os.PathLike)) \
                        and not kw.get("dir_fd"):
                    self.note(self.looked, path)
                return fn(path, *a, **kw)
            return wrapper

        _RECORDER, self.active, self.thread = self, True, get_ident()
        os.stat, os.lstat = looked(real_stat), looked(real_lstat)  # type: ignore[assignment]
        sys.stderr = _Tee(real_err, self.stderr)
        try:
            yield
        finally:
            self.active = False
            os.stat, os.lstat, sys.stderr = real_stat, real_lstat, real_err  # type: ignore[assignment]

    def manifest(self) -> dict[str, Any] | None:
        """The inputs and what they held, or None when they cannot be trusted to say it all."""
        if self.volatile is not None:
            return None
        # a file whose content is hashed: its mode and owner still count, its mtime does not (a
        # plan rustle-plan writes again, unchanged, is still a hit)
        looked = {p: _shallow(kind) if p in self.files else kind for p, kind in self.looked.items()}
        return {"files": dict(self.files), "dirs": dict(self.dirs), "looked": looked}


class _Tee:
    """stderr while recording: written through, and kept for the warm run to print again."""

    def __init__(self, real: Any, kept: list[str]):
        self._real, self._kept = real, kept

    def write(self, text: str) -> int:
        self._kept.append(text)
        return int(self._real.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _file_sig(path: str) -> tuple[str, bytes] | None:
    """sha256 of the file and its text when small enough to search; None if unreadable or
    not a regular file."""
    try:
        with open(path, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            data = fh.read()
    except OSError:
        return None
    return hashlib.sha256(data).hexdigest(), data if len(data) <= _MAX_SCAN else b""


def _listing(path: str) -> str:
    try:
        return hashlib.sha256("\0".join(sorted(os.listdir(path))).encode(errors="surrogateescape")).hexdigest()
    except OSError as exc:
        return f"error {exc.errno}"


def _shallow(kind: str) -> str:
    """``_kind`` without size and mtime: what a file whose content is hashed adds to it."""
    return " ".join(kind.split(" ")[:3])


def _kind(path: str) -> str:
    """What ``path`` is: missing, a directory, or a file with its mode, owner, size and mtime
    (a module's source the compile imported: a new version of it changes these)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"error {exc.errno}"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    # mode and owner too: a copy keeps a source's mode, a template may read its owner
    return f"{st.st_mode:o} {st.st_uid} {st.st_gid} {st.st_size} {st.st_mtime_ns}"


def _changed(manifest: dict[str, Any]) -> str | None:
    """The first input that no longer holds what the manifest says, or None."""
    for p, digest in manifest["files"].items():
        sig = _file_sig(p)
        if sig is None or sig[0] != digest:
            return p
    for p, listing in manifest["dirs"].items():
        if _listing(p) != listing:
            return p + "/"
    files = manifest["files"]
    return next((p for p, kind in manifest["looked"].items()
                 if (_shallow(_kind(p)) if p in files else _kind(p)) != kind), None)


# -- entries -------------------------------------------------------------------------------


def _entry_path(cache_dir: Path, name: str) -> Path:
    return cache_dir.expanduser() / "run" / name


def _private(path: Path) -> bool:
    """Ours alone: owned by this user, nobody else may write it."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o022


def load(cache_dir: Path, name: str) -> tuple[dict[str, Any] | None, str]:
    """The stored state under ``name`` if its manifest still holds; else None and why not."""
    path = _entry_path(cache_dir, name)
    if not path.exists():
        return None, "no entry for these options, environment and code"
    if not (_private(path.parent) and _private(path)):
        return None, f"{path} or its directory is not this user's alone"
    try:
        with open(path, "rb") as fh:
            entry = pickle.load(fh)  # noqa: S301 - our own private cache (module docstring)
    except Exception as exc:  # noqa: BLE001 - a damaged or older entry is a miss: the full path rebuilds it
        return None, f"{path}: {exc}"
    if not isinstance(entry, dict) or entry.get("format") != FORMAT:
        return None, f"{path}: another format"
    changed = _changed(entry["manifest"])
    if changed is not None:
        return None, f"{changed} changed"
    return entry, ""


def withheld(plan: Plan, hosts: Iterable[Host], bridged: bool) -> str | None:
    """Why this deployment's state is not stored, or None: it would be a second copy of a
    secret (a connection password; what a ``no_log`` task or a ``no_log`` parameter is given,
    which only the artifact, which needs it, may hold; a bridged module's parameters, whose
    ``no_log`` is ansible-core's to know)."""
    from .model import SECRET_VARS
    from .runtime_index import no_log_params

    for host in hosts:
        if not SECRET_VARS.isdisjoint(host.vars):
            return f"{host.name} has a connection password"
    if bridged:
        return "a module runs through the module bridge"
    secret_params = no_log_params()
    for play in plan.plays:
        for top in [*plan.play_tasks(play), *play.handlers]:
            for task in top.walk():
                if task.extras.get("no_log"):
                    return f"task {task.name!r} is no_log"
                if not set(secret_params.get(task.module.rsplit(".", 1)[-1], ())).isdisjoint(task.args):
                    return f"task {task.name!r} passes a no_log parameter"
    return None


def store(cache_dir: Path, name: str, recorder: Recorder, state: dict[str, Any]) -> str | None:
    """Store ``state`` under ``name`` with what ``recorder`` saw; or why not (it saw something
    that makes the compile's result more than a function of its files). The oldest entries
    beyond ``KEEP`` are removed."""
    manifest = recorder.manifest()
    if manifest is None:
        return recorder.volatile
    from .compiler.cachefiles import cache_write

    data = pickle.dumps({"format": FORMAT, "manifest": manifest, "stderr": "".join(recorder.stderr), **state},
                        protocol=pickle.HIGHEST_PROTOCOL)
    path = _entry_path(cache_dir, name)
    cache_write(path, data)
    entries = sorted((e.stat().st_mtime_ns, e.path) for e in os.scandir(path.parent) if _ENTRY.fullmatch(e.name))
    for _, old in entries[:-KEEP]:
        with contextlib.suppress(FileNotFoundError):  # another command removed it first
            os.unlink(old)
    return None


class Deferred(dict):  # type: ignore[type-arg]
    """``Session._auto_units`` from a stored entry: the names now, the build units (which only
    a host that cannot execute its runner needs) unpickled when one is first read."""

    def __init__(self, names: list[str], blob: bytes):
        super().__init__(dict.fromkeys(names))
        self._blob: bytes | None = blob

    def __getitem__(self, name: str) -> Any:
        if self._blob is not None:
            units = pickle.loads(self._blob)  # noqa: S301 - from the same private entry
            self._blob = None
            self.update(units)
        return super().__getitem__(name)
