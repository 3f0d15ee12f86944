"""The host-side deploy agent: one script, sent over stdin on every connection, run by the host's Python.

Standard library only and Python 3.8 compatible: it runs on hosts we do not control. It never
imports rustle_deploy. The controller (deploy/host.py) starts it through a tiny bootstrap that
reads this source and a JSON request from stdin (see docs/remote.md), then calls ``main``.

Protocol on stdout: one JSON object per line. Lines the agent writes carry the key "agent"
(``need_upload``, ``lock_wait``, ``error``, ``done``); lines of a run are the artifact's own
events (key "event") and pass through untouched, because the artifact inherits our stdout.
Exit status: the artifact's run status when a run happened (0 or 2, 3 on bad invocation),
else 0; ``EXIT_AGENT_ERROR`` when the agent itself reports an ``error`` line (it carries what the
operation had done: ``PROGRESS``); ``EXIT_INTERRUPTED`` when the controller went away during a
run and ``_RunGuard`` ended it and every process it had started.

Integrity: the artifact a deploy activates, a run runs and a rollback restores is re-hashed
against its name first (a copy changed on the host is uploaded again, or refused); its unpacked
copy is checked against the seal written when it was made.

Remote layout under ``remote_dir`` (DESIGN.md "Remote layout"), every name and kind rustle-deploy
writes there (file, directory, symlink)::

    artifacts/                          dir, 0700
    artifacts/<sha256>                  file: content-addressed, 0700
    artifacts/.tmp-<sha256>-<pid>       file: an upload in progress (removed when stale)
    releases/<binary_name>/             dir, made when a release is first activated
    releases/<binary_name>/current      symlink -> ../../artifacts/<sha256>
    releases/<binary_name>/previous     symlink -> the release before
    releases/<binary_name>/{current,previous}.tmp-<pid>   symlink: a swap in progress
    history.jsonl                       file: one line per deployment, rollback or interrupted run
    runs/<run-id>.jsonl                 file: journal of each run (written by the artifact)
    runs/<deployment-id>[-<run-id>][-h-<host hash>].vars.json   file: a host's state between
                                        the stages and phases of a rollout (written by the artifact)
    runs/<...>.vars.json.tmp-<pid>      file: one being written
    unpacked/<sha256>/                  dir: the payload unpacked, so bytecode is cached
    unpacked/<sha256>/.rustle-unpacked.json   file: its seal (what each file was when made)
    unpacked/<sha256>.tmp-<pid>/        dir: an unpacking in progress
    objects/<sha256>                    file: a run of an artifact's bytes that other artifacts
                                        share (its runtime, Jinja2, the module bridge's code),
                                        kept so that the next artifact holding it travels
                                        without it (docs/remote.md)
    objects/.tmp-<sha256>-<pid>         file: one being written
    pyc/<sha256>/                       dir: the Jinja2 object's sources copied by a run from a
                                        zip, so Python keeps their bytecode (the runtime's
                                        pycache.py); removed with that object
    pyc/<sha256>.tmp-<pid>/             dir: a copy being made
    runners/<sha256>                    file: native format, an installed rustle-runner
    runners/<sha256>.tmp.<pid>          file: a runner being installed (transport/options.py)
    bridge/                             dir, 0700: the module bridge's kept fork servers
                                        (``rustle_bridge_keep``, made by the artifact)
    bridge/<16 hex>                     unix socket of one (cleanup asks it to end first)
    bridge/<16 hex>.log                 file: its stderr
    lock                                file: flock()ed for the whole operation
    .created-by-rustle-deploy           file: rustle-deploy created the directory itself

``cleanup`` removes exactly these (a release directory only when it holds a ``current`` or
``previous`` link or history names it; a journal only when its name is a controller run id or
its first line is that run's ``run_start``), never follows a symlink, and leaves and reports
anything else; the directory itself goes only when it is then empty and carries the marker.
"""

import errno
import json
import os
import sys
import time

EXIT_AGENT_ERROR = 20
CHUNK = 1 << 18
AGENT_PROTOCOL = 1
CREATED_MARKER = ".created-by-rustle-deploy"


class AgentError(Exception):
    """A failure the controller turns into a host error; ``kind`` names the class."""

    def __init__(self, kind, message, **fields):
        Exception.__init__(self, message)
        self.kind = kind
        self.message = message
        self.fields = fields


def emit(obj):
    """Write one JSON line straight to fd 1 (shared with the artifact we may start)."""
    data = (json.dumps(obj, sort_keys=True) + "\n").encode("utf-8")
    while data:
        n = os.write(1, data)
        data = data[n:]


def _mkdirs(path):
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise AgentError(
            "remote_dir",
            f"{path}: cannot create directory: {exc.strerror or exc}",
            path=path,
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise AgentError("remote_dir", f"{path}: directory is not writable", path=path)


def check_remote_dir(value):
    """Refuse a remote directory that is not rustle-deploy's own place (model.remote_dir_problem;
    the controller checks first, this guards every other caller)."""
    problem = None
    if not value.strip():
        problem = "is empty: it would be the login directory itself"
    elif any(ord(c) < 32 or ord(c) == 127 for c in value):
        problem = "contains a control character"
    elif not value.startswith(("/", "~")):
        problem = "is relative: it would depend on the directory the connection starts in"
    elif ".." in value.split("/"):
        problem = "has a '..' segment"
    elif not [p for p in value.split("/")[1:] if p not in ("", ".")]:
        problem = "is the filesystem root" if value.startswith("/") else "is a home directory itself"
    elif os.path.expanduser(value).startswith("~"):
        problem = "names the home directory of a user this host does not know"
    elif os.path.abspath(os.path.expanduser(value)) == "/":
        problem = "is the filesystem root"
    if problem is not None:
        raise AgentError("remote_dir", f"remote directory {value!r} {problem}", path=value)


class Layout:
    """Paths under the remote directory."""

    def __init__(self, remote_dir):
        self.root = os.path.abspath(os.path.expanduser(remote_dir))
        self.artifacts = os.path.join(self.root, "artifacts")
        self.releases = os.path.join(self.root, "releases")
        self.runs = os.path.join(self.root, "runs")
        self.history = os.path.join(self.root, "history.jsonl")
        self.lock = os.path.join(self.root, "lock")
        self.unpacked = os.path.join(self.root, "unpacked")
        self.runners = os.path.join(self.root, "runners")  # native format (docs/native.md)
        self.objects = os.path.join(self.root, "objects")  # parts artifacts share (docs/remote.md)
        self.pyc = os.path.join(self.root, "pyc")  # Jinja2's bytecode, by object (runtime pycache.py)
        self.marker = os.path.join(self.root, CREATED_MARKER)

    def artifact(self, sha):
        return os.path.join(self.artifacts, sha)

    def release(self, name):
        return os.path.join(self.releases, name)


def _make_root(layout):
    """Create the remote directory (0700) if it is missing, marked as made by rustle-deploy so
    that a cleanup may remove it once it is empty again."""
    if not os.path.isdir(layout.root):
        _mkdirs(layout.root)
        fd = os.open(layout.marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        os.close(fd)
    elif not os.access(layout.root, os.W_OK | os.X_OK):
        raise AgentError("remote_dir", f"{layout.root}: directory is not writable", path=layout.root)


def _check_name(value, what):
    if not value or "/" in value or value in (".", "..") or "\0" in value:
        raise AgentError("request", f"bad {what} {value!r}")
    return value


class Lock:
    """An exclusive flock() on ``remote_dir/lock``, waited for at most ``timeout`` seconds.

    ``create=False`` (a dry run) creates nothing: without a lock file there is nothing to wait
    for. A ``lock`` that is a symlink is not ours and is never opened (its target stays untouched).
    """

    def __init__(self, layout, timeout, create=True):
        self.layout = layout
        self.path = layout.lock
        self.timeout = timeout
        self.create = create
        self.fd = -1

    def _open(self):
        flags = (os.O_RDWR | os.O_CREAT if self.create else os.O_RDONLY) | os.O_NOFOLLOW
        try:
            self.fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            if os.path.islink(self.path):
                raise AgentError("remote_dir", f"{self.path}: the lock file is a symbolic link, which "
                                               "rustle-deploy never makes; remove it") from None
            if not self.create and exc.errno == errno.ENOENT:
                return
            raise AgentError("remote_dir", f"{self.path}: cannot open lock file: {exc.strerror}") from None

    def _still_the_lock_file(self):
        """A cleanup may have removed the file we locked: then the lock guards nothing."""
        try:
            return os.fstat(self.fd).st_ino == os.lstat(self.path).st_ino
        except OSError:
            return False

    def __enter__(self):
        import fcntl

        self._open()
        if self.fd < 0:
            return self
        deadline = time.time() + self.timeout
        told = False
        delay = 0.01
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if self._still_the_lock_file():
                    return self
                os.close(self.fd)  # locked a file that was removed meanwhile: lock the new one
                self.fd = -1
                if not self.create:
                    return self
                _make_root(self.layout)
                self._open()
                continue
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if time.time() >= deadline:
                os.close(self.fd)
                self.fd = -1
                raise AgentError(
                    "lock_busy",
                    f"{self.path}: another deployment has held the lock for more than {self.timeout}s",
                )
            if not told:
                emit({"agent": "lock_wait", "path": self.path})
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def __exit__(self, *exc):
        if self.fd >= 0:
            os.close(self.fd)  # closing releases the flock
            self.fd = -1


def _link_sha(path):
    """The artifact sha256 a release link points at, or None."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _swap_link(path, sha):
    """Point ``path`` at ../../artifacts/<sha> atomically (symlink to a temp name, then rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        os.unlink(tmp)
    except OSError:
        pass
    os.symlink(os.path.join("..", "..", "artifacts", sha), tmp)
    os.replace(tmp, path)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(size):
    """A sha256 object: CPython's built-in one for small inputs (loading OpenSSL for
    ``hashlib`` costs 3-5 ms per host), else hashlib's. The built-in one hashes ~4-8 ms per MB
    here, OpenSSL's ~0.5 ms: they break even near 1 MB (docs/decisions.md)."""
    if size < (1 << 20):
        try:
            from _sha256 import sha256  # Python <= 3.11
        except ImportError:
            try:
                from _sha2 import sha256  # Python >= 3.12
            except ImportError:
                from hashlib import sha256
    else:
        from hashlib import sha256
    return sha256()


def _hash_file(path):
    h = _sha256(os.path.getsize(path))
    with open(path, "rb") as f:
        while True:
            block = f.read(CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def _append_history(layout, entry):
    entry = dict(entry)
    entry.setdefault("time", time.time())
    line = (json.dumps(entry, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(layout.history, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), layout.history)
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, size)  # no torn line for the next one to run into
            except OSError:
                pass
            raise OSError(exc.errno, exc.strerror, layout.history) from None
    finally:
        os.close(fd)


def _read_history(layout):
    out = []
    try:
        with open(layout.history, "rb") as f:
            for raw in f:
                try:
                    out.append(json.loads(raw.decode("utf-8")))
                except ValueError:
                    continue  # a torn last line from a crash: ignore it
    except OSError:
        pass
    return out


def _remove_stale_uploads(layout):
    for folder in (layout.artifacts, layout.objects):
        for name in _listdir(folder):
            if name.startswith(".tmp-"):
                try:
                    os.unlink(os.path.join(folder, name))
                except OSError:
                    pass


def _receive(layout, stdin, sha, size, have=()):
    """Read the artifact into a temp file, check it, rename it in place: ``size`` bytes from
    stdin but those of the objects in ``have`` (sorted by offset: docs/remote.md), which the
    host's copies supply at their offsets."""
    tmp = os.path.join(layout.artifacts, f".tmp-{sha}-{os.getpid()}")
    h = _sha256(size)
    expected = size - sum(o["size"] for o in have)  # what stdin carries
    got = [0]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def write(block):
        h.update(block)
        view = memoryview(block)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    def read(count):
        while count > 0:
            block = stdin.read(min(CHUNK, count))
            if not block:
                raise AgentError(
                    "short_read",
                    f"upload cut after {got[0]} of {expected} bytes",
                    received=got[0],
                    size=expected,
                )
            write(block)
            got[0] += len(block)
            count -= len(block)

    try:
        try:
            at = 0
            for obj in have:
                read(obj["offset"] - at)
                with open(obj["path"], "rb") as f:
                    while True:
                        block = f.read(CHUNK)
                        if not block:
                            break
                        write(block)
                at = obj["offset"] + obj["size"]
            read(size - at)
            os.fsync(fd)
        finally:
            os.close(fd)
        actual = h.hexdigest()
        if actual != sha:
            raise AgentError(
                "checksum",
                f"uploaded artifact hashes to {actual}, expected {sha}",
                expected=sha,
                actual=actual,
            )
        os.chmod(tmp, 0o700)
        os.replace(tmp, layout.artifact(sha))
        _fsync_dir(layout.artifacts)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _objects_request(req, layout):
    """The request's ``objects``: runs of the artifact's bytes that are the same in other
    artifacts (the module bridge's code, the runtime: docs/remote.md), each ``offset``,
    ``size``, ``sha256``, checked and sorted, with the path of the host's copy."""
    out = []
    end = 0
    for obj in sorted((o for o in req.get("objects") or () if isinstance(o, dict)), key=lambda o: int(o["offset"])):
        one = {"sha256": _check_name(str(obj.get("sha256")), "object sha256"), "offset": int(obj["offset"]),
               "size": int(obj["size"])}
        if one["offset"] < end or one["size"] <= 0 or one["offset"] + one["size"] > int(req["size"]):
            raise AgentError("request", f"object {one} overlaps another or lies outside the artifact")
        end = one["offset"] + one["size"]
        one["path"] = os.path.join(layout.objects, one["sha256"])
        out.append(one)
    return out


def _object_present(obj):
    """Whether the host's copy of the object is whole (a changed one is removed)."""
    if os.path.exists(obj["path"]) and _damage(obj["path"], obj["sha256"], obj["size"]) is None:
        return True
    try:
        os.unlink(obj["path"])
    except OSError:
        pass
    return False


def _keep_objects(layout, path, objects):
    """After an artifact arrived: keep the objects the host lacks, read from the artifact, so
    that the next artifact holding them travels without them. A cache: a failure to write one
    (a full disk) costs only that."""
    for obj in objects:
        if os.path.exists(obj["path"]):
            continue
        tmp = os.path.join(layout.objects, f".tmp-{obj['sha256']}-{os.getpid()}")
        try:
            with open(path, "rb") as f:
                f.seek(obj["offset"])
                data = f.read(obj["size"])
            h = _sha256(len(data))
            h.update(data)
            if h.hexdigest() != obj["sha256"]:
                continue  # the request described the artifact wrongly: keep nothing
            _mkdirs(layout.objects)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)
            os.replace(tmp, obj["path"])
        except (OSError, AgentError):
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _prune_objects(layout, new):
    """Keep the objects of the artifacts current and previous releases hold (as history
    records them, and ``new``: this deployment's, not yet in history), as ``_prune_unpacked``
    keeps their unpacked copies; remove the others."""
    present = [n for n in _listdir(layout.objects) if not n.startswith(".")]
    copies = _listdir(layout.pyc)  # Jinja2's bytecode, by object (and a copy a run left half made)
    if not present and not copies:
        return
    held = set()
    for name in _listdir(layout.releases):
        for link in ("current", "previous"):
            sha = _link_sha(os.path.join(layout.release(name), link))
            if sha:
                held.add(sha)
    keep = set(new)
    for h in _read_history(layout):
        if isinstance(h, dict) and h.get("sha256") in held and isinstance(h.get("objects"), list):
            keep.update(h["objects"])
    for entry in present:
        if entry not in keep:
            try:
                os.unlink(os.path.join(layout.objects, entry))
            except OSError:
                pass
    if copies:
        import shutil

        for entry in copies:
            if entry not in keep:
                shutil.rmtree(os.path.join(layout.pyc, entry), ignore_errors=True)


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _skip(stdin, size):
    """Read and drop ``size`` bytes of an artifact this host already has."""
    left = size
    while left > 0:
        block = stdin.read(min(CHUNK, left))
        if not block:
            raise AgentError("short_read", f"upload cut after {size - left} of {size} bytes", received=size - left, size=size)
        left -= len(block)


RUN_MARK = "RUSTLE_RUN_MARK"  # in the environment of every process a run starts
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL when a run is ended early
EXIT_INTERRUPTED = 143  # 128 + SIGTERM: the run was ended because the controller went away
INTERRUPTED_WHY = "the controller went away (the connection closed) during the run"


def _run_processes(mark):
    """Every process of the run but this one: those whose environment carries ``mark``, and
    every descendant of this process or of those.

    The marker finds what left the process tree (a ``setsid`` child, a daemonised one); the
    tree finds what does not carry the marker or whose environment we may not read (sudo).
    """
    me = os.getpid()
    needle = (RUN_MARK + "=" + mark).encode()
    parent = {}
    marked = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/" + entry + "/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields[0] == b"Z":
            continue  # it has ended; what is left is its exit status
        pid = int(entry)
        parent[pid] = int(fields[1])
        try:
            with open("/proc/" + entry + "/environ", "rb") as f:
                if needle in f.read().split(b"\0"):
                    marked.add(pid)
        except OSError:
            pass  # another user's process: found through the tree, if at all
    children = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    found = []  # breadth first: a parent before its children
    seen = set()
    todo = [me] + sorted(marked)
    while todo:
        pid = todo.pop(0)
        if pid not in seen:
            seen.add(pid)
            found.append(pid)
            todo.extend(sorted(children.get(pid, ())))
    return [pid for pid in found if pid != me]


def _end_run(mark, grace):
    """End every process of the run; return (how many, how many could not be ended).

    They are all stopped first (SIGSTOP, until a look finds none that is new), so that none
    reacts to another's end (a shell going on to its next command when its child dies); then
    each gets SIGTERM and SIGCONT, and after ``grace`` seconds SIGKILL.
    """
    import signal

    def send(pids, sig):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass

    stopped = []
    for _ in range(50):
        new = [pid for pid in _run_processes(mark) if pid not in stopped]
        if not new:
            break
        send(new, signal.SIGSTOP)
        stopped.extend(new)
    send(stopped, signal.SIGTERM)
    send(stopped, signal.SIGCONT)
    ended = set(stopped)
    kill_at = time.monotonic() + grace
    give_up = kill_at + 10.0
    killed = set()
    while True:
        time.sleep(0.05)
        pids = _run_processes(mark)
        now = time.monotonic()
        if not pids or now >= give_up:
            return len(ended | set(pids)), len(pids)
        if now >= kill_at:
            send([pid for pid in pids if pid not in killed], signal.SIGKILL)
            killed.update(pids)
        else:
            new = [pid for pid in pids if pid not in ended]  # started by a handler meanwhile
            send(new, signal.SIGTERM)
        ended.update(pids)


class _RunGuard:
    """Ends a run whose controller went away, before the lock is released.

    A watcher thread reads a private copy of the channel's stdin; the controller never closes
    it, so EOF means the controller is gone (Ctrl-C, a cut connection, a killed controller, a
    host deadline). Then the runtime is told to start nothing more, every process of the run
    (``_run_processes``) gets SIGTERM and, after ``STOP_GRACE`` seconds, SIGKILL; the host's
    history and the run's journal say the run was interrupted; and only then does the agent
    exit, which releases the lock. A run that finishes first claims the guard, and the watcher
    does nothing.
    """

    def __init__(self, layout, req, sha, journal, unpacked=None):
        import _thread  # not threading: its import costs ~2 ms per host

        self.layout, self.req, self.sha, self.journal = layout, req, sha, journal
        self.unpacked = unpacked
        self.grace = float(req.get("stop_grace") or STOP_GRACE)
        self.mark = f"{req['run']['run_id']}.{os.getpid()}.{os.urandom(6).hex()}"
        os.environ[RUN_MARK] = self.mark
        self.claim = _thread.allocate_lock()
        self._thread = _thread

    def watch(self, fd):
        def watch():
            try:
                while os.read(fd, 4096):
                    pass
            except OSError:
                pass
            if self.claim.acquire(False):
                self._stop()

        self._thread.start_new_thread(watch, ())

    def finished(self):
        """The run returned: keep the watcher from ending it; wait for it if it already is."""
        if not self.claim.acquire(False):
            self.wait()

    def wait(self):
        """Block until the watcher ends this process."""
        while True:
            time.sleep(3600)

    def _stop(self):
        try:
            lowlevel = sys.modules.get("rustle_runtime.lowlevel")
            stop = getattr(lowlevel, "stop", None)
            if stop is not None:
                stop()  # the runtime starts no more commands and writes no more events
            killed, left = _end_run(self.mark, self.grace)
            if self.unpacked is not None:
                _reseal(self.unpacked, self.sha)
            run_id = self.req["run"]["run_id"]
            note = {"why": INTERRUPTED_WHY, "killed": killed, "left": left, "grace": self.grace}
            try:
                fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    event = {"event": "run_interrupted", "host": self.req.get("host"), "run_id": run_id,
                             "time": time.time()}
                    event.update(note)
                    os.write(fd, (json.dumps(event, sort_keys=True) + "\n").encode("utf-8"))
                finally:
                    os.close(fd)
            except OSError:
                pass  # a full disk: history.jsonl below still says it
            entry = {"op": "interrupted", "deployment_id": self.req.get("deployment_id"),
                     "binary_name": self.req.get("binary_name"), "sha256": self.sha, "run_id": run_id}
            entry.update(note)
            try:
                _append_history(self.layout, entry)
            except OSError:
                pass
        finally:
            os._exit(EXIT_INTERRUPTED)  # closing the lock file releases the lock


UNPACKED_SEAL = ".rustle-unpacked.json"  # in unpacked/<sha256>/: what the agent made there


def _tree_stats(root):
    """{path: [mode, size, mtime_ns, ctime_ns, inode]} of everything under ``root`` but its
    directories and the seal. Any write, chmod or replacement changes one of these (ctime
    cannot be set back by a user)."""
    out = {}
    for dirpath, dirs, names in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in names + [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]:
            rel = name if rel_dir == "." else rel_dir + "/" + name
            if rel in (UNPACKED_SEAL, UNPACKED_SEAL + ".tmp"):
                continue
            st = os.lstat(os.path.join(dirpath, name))
            out[rel] = [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
    return out


def _write_seal(target, sha, files):
    tmp = os.path.join(target, UNPACKED_SEAL + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, json.dumps({"artifact": sha, "files": files}, sort_keys=True).encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, os.path.join(target, UNPACKED_SEAL))


def _read_seal(target):
    try:
        with open(os.path.join(target, UNPACKED_SEAL), "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("files"), dict) else None


def _unpacked_problem(target, sha):
    """Why ``unpacked/<sha>/`` is not what the agent extracted from artifact ``sha`` (plus the
    bytecode Python cached there during completed runs), or None. Checked on every run: ~1 ms."""
    seal = _read_seal(target)
    if seal is None:
        return "it has no seal (made by an older agent, or cut while being made)"
    if seal.get("artifact") != sha:
        return "it was made from another artifact"
    now = _tree_stats(target)
    changed = sorted(k for k in set(now) | set(seal["files"]) if now.get(k) != seal["files"].get(k))
    if changed:
        return f"{len(changed)} file(s) changed since it was made from the artifact, such as {changed[0]}"
    return None


def _reseal(target, sha):
    """After a run: add the bytecode files Python cached meanwhile to the seal, nothing else
    (a changed or added file of any other kind stays a difference the next run sees)."""
    seal = _read_seal(target)
    if seal is None or seal.get("artifact") != sha:
        return
    files = seal["files"]
    added = {k: v for k, v in _tree_stats(target).items()
             if k not in files and "__pycache__" in k.split("/")[:-1] and k.endswith(".pyc")}
    if added:
        files.update(added)
        try:
            _write_seal(target, sha, files)
        except OSError:
            pass  # a full disk: the next run rebuilds the cache


def _unpack(layout, sha, path):
    """The artifact's payload as a directory, ``unpacked/<sha256>/``, made once per artifact.

    zipimport cannot cache bytecode, so a zip recompiles the runtime on every run (~40 ms);
    from a directory Python keeps ``__pycache__`` and warm runs skip that. The zip stays the
    artifact of record (hashed, verified, rolled back); this is a cache beside it, sealed
    with what it held when it was made (``_unpacked_problem``) and made again from the
    artifact (already hashed against its name) when it differs.
    """
    target = os.path.join(layout.unpacked, sha)
    import shutil

    if os.path.lexists(target):
        why = _unpacked_problem(target, sha)
        if why is None:
            return target
        PROGRESS["unpacked_rebuilt"] = why
        shutil.rmtree(target, ignore_errors=True)
        if os.path.lexists(target):
            os.unlink(target)  # a symlink or a file by that name
    import zipfile

    _mkdirs(layout.unpacked)
    tmp = f"{target}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.mkdir(tmp, 0o700)
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                parts = info.filename.split("/")
                if info.filename.startswith("/") or ".." in parts or "\\" in info.filename:
                    raise AgentError("artifact", f"{path}: entry {info.filename!r} escapes the payload")
                zf.extract(info, tmp)
        _write_seal(tmp, sha, _tree_stats(tmp))
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _prune_unpacked(layout):
    """Keep unpacked copies of current and previous releases only."""
    import shutil

    try:
        present = os.listdir(layout.unpacked)
    except OSError:
        return
    keep = set()
    try:
        names = os.listdir(layout.releases)
    except OSError:
        names = []
    for name in names:
        for link in ("current", "previous"):
            sha = _link_sha(os.path.join(layout.release(name), link))
            if sha:
                keep.add(sha)
    for entry in present:
        if entry not in keep:
            shutil.rmtree(os.path.join(layout.unpacked, entry), ignore_errors=True)


NATIVE_MAGIC = b'{"format": "rustle-native"'


def _native_runner(layout, path):
    """The runner command of a native artifact (docs/native.md), or None for a pyz one."""
    with open(path, "rb") as f:
        if f.read(len(NATIVE_MAGIC)) != NATIVE_MAGIC:
            return None
        head = f.read(4096)
    import re

    m = re.search(rb'"runner": "([0-9a-f]{64})"', head)
    if m is None:
        raise AgentError("artifact", f"{path}: a native artifact without its runner's sha256")
    runner = os.path.join(layout.root, "runners", m.group(1).decode())
    if not os.access(runner, os.X_OK):
        raise AgentError("not_deployed", f"{runner}: the native runner this artifact needs is not installed; "
                                         "deploy again with --format native")
    return runner


def _run_native(runner, path, req, options):
    """Hand a native artifact to its runner; its events go straight to our stdout."""
    import subprocess

    argv = [runner, "run", path, "--host", str(req["host"]), "--journal", options["journal"],
            "--run-id", options["run_id"]]
    argv += ["--check"] if options["check"] else []
    argv += ["--diff"] if options["diff"] else []
    argv += ["--tags=" + t for t in options["tags"]] + ["--skip-tags=" + t for t in options["skip_tags"]]
    sys.stdout.flush()
    return subprocess.call(argv, stdin=subprocess.DEVNULL)


def _discovered_interpreter():
    """The interpreter the launcher discovered and INTERPRETER_PYTHON's mode, from the bootstrap's
    arguments (``-c BOOTSTRAP PATH MODE``); None when it ran a configured one."""
    args = sys.argv[1:]
    if len(args) >= 2 and args[1].startswith("auto"):
        return {"path": args[0], "mode": args[1]}
    return None


def _run_artifact(layout, path, req, stdin):
    """Run the artifact's runtime inside this process, from the zip when it carries bytecode
    for this interpreter, else from its unpacked copy.

    The agent's interpreter is already up: running the runtime here instead of starting a
    second Python saves that start-up on every host. Its events go straight to fd 1. If the
    controller goes away meanwhile, ``_RunGuard`` ends the run and everything it started.
    """
    run = req["run"]
    run_id = _check_name(str(run["run_id"]), "run id")
    _mkdirs(layout.runs)
    sha = os.path.basename(path)
    runner = _native_runner(layout, path)
    unpacked = None
    if runner is not None:
        root = path
    elif req.get("bytecode_tag") == sys.implementation.cache_tag:
        root = path  # its bytecode is for this interpreter: import straight from the zip
    else:
        root = unpacked = _unpack(layout, sha, path)
    options = {
        "check": bool(run.get("check")),
        "diff": bool(run.get("diff")),
        "tags": list(run.get("tags") or ()),
        "skip_tags": list(run.get("skip_tags") or ()),
        "journal": os.path.join(layout.runs, run_id + ".jsonl"),
        "run_id": run_id,
        "verbosity": int(run.get("verbosity") or 0),
    }
    # A rollout stage (docs/rollouts.md): only these plays, with registered results and
    # set_fact carried in a file from one stage to the next. Passed only when set, so an
    # artifact built before rollouts existed still runs whole.
    if run.get("plays") is not None:
        if runner is not None:
            raise AgentError("artifact", "the native runner cannot run a selection of plays (a rollout stage)")
        options["plays"] = [int(i) for i in run["plays"]]
    if run.get("carry"):
        options["carry"] = os.path.join(layout.runs, _check_name(str(run["carry"]), "carry id") + ".vars.json")
    # A phase of a play cut at cross-host tasks (docs/phases.md): that phase's tasks, what the
    # controller carries in from other hosts, and whether to send back what the run set.
    if run.get("phase") is not None:
        if runner is not None:
            raise AgentError("artifact", "the native runner cannot run a phase of a play (docs/phases.md)")
        options["phase"] = int(run["phase"])
    if isinstance(run.get("inject"), dict) and run["inject"]:
        options["inject"] = run["inject"]
    if run.get("share") in ("vars", "state", "known"):
        options["share"] = run["share"]
    guard = _RunGuard(layout, req, sha, options["journal"], unpacked)
    # The channel stays ours: tasks get /dev/null as stdin, the guard keeps a private copy.
    watch_fd = os.dup(stdin.fileno())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    guard.watch(watch_fd)
    if runner is not None:
        code = _run_native(runner, path, req, options)
        guard.finished()
        return code
    sys.path.insert(0, root)
    sys.stdout.flush()
    try:
        from rustle_runtime.cli import run_payload

        # The host's own variables travel in this request, never in the shared artifact; a
        # runtime built before that carries them itself and takes no such argument.
        if isinstance(run.get("vars"), dict) and "host_vars" in run_payload.__code__.co_varnames:
            options["host_vars"] = run["vars"]
        if run.get("become_password") is not None:  # -K: handed over in memory, never written
            if "become_password" not in run_payload.__code__.co_varnames:
                raise AgentError("artifact", "this artifact's runtime cannot take a become password (-K); rebuild it")
            options["become_password"] = str(run["become_password"])
        if isinstance(run.get("become_passwords"), dict) and "become_passwords" in run_payload.__code__.co_varnames:
            options["become_passwords"] = {str(k): str(v) for k, v in run["become_passwords"].items()}
        if "state_dir" in run_payload.__code__.co_varnames:  # the bridge's kept fork server
            options["state_dir"] = layout.root
        discovered = _discovered_interpreter()
        if discovered is not None and "interpreter" in run_payload.__code__.co_varnames:
            options["interpreter"] = discovered
        code = run_payload(root, str(req["host"]), **options)
    except SystemExit as exc:
        code = exc.code
    except BaseException:
        if guard.claim.locked():
            guard.wait()  # being ended from outside: the guard exits for us
        raise
    guard.finished()
    if unpacked is not None:
        _reseal(unpacked, sha)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _verify(layout, sha):
    import subprocess

    path = layout.artifact(sha)
    actual = _hash_file(path)
    if actual != sha:
        raise AgentError(
            "verify_failed",
            f"{path}: content hashes to {actual}",
            expected=sha,
            actual=actual,
        )
    runner = _native_runner(layout, path)
    proc = subprocess.run(
        [runner, "verify", path] if runner else [sys.executable, path, "verify"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    if proc.returncode != 0:
        out = proc.stdout.decode("utf-8", "replace").strip()
        raise AgentError(
            "verify_failed",
            f"{path} verify exited {proc.returncode}: {out[-2000:]}",
            expected=sha,
            actual=actual,
        )


# What the current operation has done so far; an error line carries it, so that the controller
# reports what happened (a run that fails after activation leaves the new release current).
PROGRESS: "dict[str, object]" = {}


def _damage(path, sha, size):
    """What is wrong with the copy of artifact ``sha`` at ``path``: None when it is whole or
    absent, else ``{"size": ...}`` and, when the size is right, ``{"sha256": ...}`` (it was
    modified on the host after its upload, or the disk damaged it)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if st.st_size != size:
        return {"size": st.st_size}
    actual = _hash_file(path)
    return None if actual == sha else {"size": st.st_size, "sha256": actual}


def _forget_unpacked(layout, sha):
    import shutil

    shutil.rmtree(os.path.join(layout.unpacked, sha), ignore_errors=True)


def _stage(req, result, name):
    """Enter stage ``name`` of an operation; with ``trace`` in the request, say so at once (the
    controller times its trace spans by these lines)."""
    result["stage"] = name
    if req.get("trace"):
        emit({"agent": "stage", "stage": name})


def op_deploy(req, layout, stdin):
    sha = _check_name(req["sha256"], "sha256")
    name = _check_name(req["binary_name"], "binary name")
    size = int(req["size"])
    release = layout.release(name)
    _make_root(layout)
    result = PROGRESS
    result.update({"sha256": sha, "binary_name": name, "uploaded": False, "activated": False})
    _stage(req, result, "upload")
    with Lock(layout, float(req.get("lock_timeout", 60))):
        _mkdirs(layout.artifacts)  # under the lock: a cleanup may just have run
        _remove_stale_uploads(layout)
        path = layout.artifact(sha)
        present = os.path.exists(path)
        # Every deployment re-hashes the copy it is about to activate and run (~1 ms per MB):
        # one changed on the host since its upload is replaced, not trusted.
        damaged = _damage(path, sha, size) if present else None
        if damaged is not None:
            result["damaged"] = damaged
            present = False
            _forget_unpacked(layout, sha)  # made from the damaged copy
        objects = _objects_request(req, layout)
        without = [o for o in objects if o["sha256"] in set(req.get("without") or ())]
        pushed = size - sum(o["size"] for o in without)  # what a push sends
        if req.get("push") and present:
            _skip(stdin, pushed)  # sent on spec; the copy here is whole
        elif not present:
            result["uploaded"] = True
            have = [o for o in objects if _object_present(o)]  # re-hashed: only when needed
            if req.get("push") and all(o in have for o in without):
                _receive(layout, stdin, sha, size, without)  # sent without what the host has
            else:
                if req.get("push"):
                    _skip(stdin, pushed)  # sent without an object this host no longer has
                # all of it but the objects this host has
                emit({"agent": "need_upload", "size": size - sum(o["size"] for o in have),
                      "without": [o["sha256"] for o in have]})
                _receive(layout, stdin, sha, size, have)
        if objects:
            if result["uploaded"]:
                _keep_objects(layout, path, objects)
            result["objects"] = [o["sha256"] for o in objects if os.path.exists(o["path"])]
        if req.get("verify"):
            # Verify before activation: a bad artifact never becomes current, so there is
            # nothing to roll back (docs/remote.md).
            _stage(req, result, "verify")
            _verify(layout, sha)
            result["verified"] = True
        current = os.path.join(release, "current")
        previous = os.path.join(release, "previous")
        old = _link_sha(current)
        before = _link_sha(previous)
        result["previous"] = old
        if req.get("activate") is False:
            # --stage: in place and checked, not current; the bytecode a Python of another
            # version needs is made now, so that --promote has only a rename and the run left.
            if _native_runner(layout, path) is None and req.get("bytecode_tag") != sys.implementation.cache_tag:
                _unpack(layout, sha, path)
            result["staged"] = True
            _stage(req, result, "history")
            _append_history(layout, {"op": "stage", "deployment_id": req.get("deployment_id"),
                                     "binary_name": name, "sha256": sha, "current": old,
                                     "uploaded": result["uploaded"], "damaged": damaged,
                                     "objects": result.get("objects")})
            return dict(result)
        _stage(req, result, "activate")
        if old != sha:
            # The release directory is made only here, so every one holds a link (cleanup
            # tells a release from a foreign directory by that).
            _mkdirs(layout.releases)
            _mkdirs(release)
            if old is not None:
                _swap_link(previous, old)
            _swap_link(current, sha)
            _fsync_dir(release)
            result["activated"] = True
            _prune_unpacked(layout)
        _prune_objects(layout, result.get("objects") or ())
        _stage(req, result, "history")
        try:
            _append_history(layout, {
                "op": "deploy",
                "deployment_id": req.get("deployment_id"),
                "binary_name": name,
                "sha256": sha,
                "previous": old,
                "changed": old != sha,
                "uploaded": result["uploaded"],
                "damaged": damaged,
                "objects": result.get("objects"),
            })
        except OSError:
            # history.jsonl must name the current release: put the links back as they were
            if result["activated"] and _restore_links(release, old, before):
                result["activated"] = False
            raise
        if req.get("run"):
            _stage(req, result, "run")
            result["run_exit"] = _run_artifact(layout, path, req, stdin)
    return dict(result)


def _restore_links(release, current, previous):
    """Point ``current`` and ``previous`` back at these (None: no link); True if done."""
    try:
        for link, target in (("current", current), ("previous", previous)):
            path = os.path.join(release, link)
            if target is None:
                if os.path.lexists(path):
                    os.unlink(path)
            elif _link_sha(path) != target:
                _swap_link(path, target)
        _fsync_dir(release)
    except OSError:
        return False
    return True


def op_run(req, layout, stdin):
    name = _check_name(req["binary_name"], "binary name")
    current = os.path.join(layout.release(name), "current")
    if not os.path.isdir(layout.root):
        raise AgentError("not_deployed", f"{layout.root}: no such directory; nothing was deployed here")
    with Lock(layout, float(req.get("lock_timeout", 60))):
        sha = _link_sha(current)
        if sha is None or not os.path.exists(current):
            raise AgentError("not_deployed", f"{current}: no current release of {name}")
        want = req.get("sha256")
        if want and want != sha:
            raise AgentError(
                "not_deployed",
                f"{current}: current release is {sha}, not {want}",
                expected=want,
                actual=sha,
            )
        path = layout.artifact(sha)
        _refuse_damaged(path, sha, "run")
        _stage(req, {}, "run")
        run_exit = _run_artifact(layout, path, req, stdin)
    return {"sha256": sha, "binary_name": name, "run_exit": run_exit}


def _refuse_damaged(path, sha, what):
    damaged = _damage(path, sha, os.path.getsize(path))
    if damaged is not None:
        raise AgentError(
            "damaged",
            f"{path}: changed on the host since its upload (it hashes to {damaged.get('sha256')}, its name says "
            f"{sha}); refusing to {what} it",
            expected=sha,
            actual=damaged.get("sha256"),
        )


def op_rollback(req, layout, stdin):
    names = [_check_name(req["binary_name"], "binary name")] if req.get("binary_name") else None
    if not os.path.isdir(layout.root):
        raise AgentError("not_deployed", f"{layout.root}: no such directory; nothing to roll back")
    with Lock(layout, float(req.get("lock_timeout", 60))):
        if names is None:
            try:
                names = sorted(os.listdir(layout.releases))
            except OSError:
                names = []
        done = {}
        for name in names:
            release = layout.release(name)
            current = os.path.join(release, "current")
            old = _link_sha(current)
            target = req.get("rollback_to") or _link_sha(os.path.join(release, "previous"))
            if target is None:
                raise AgentError("no_previous", f"{release}: no previous release to roll back to")
            _check_name(target, "sha256")
            if not os.path.isfile(layout.artifact(target)):
                raise AgentError(
                    "no_previous", f"{layout.artifacts}: artifact {target} is no longer on the host"
                )
            _refuse_damaged(layout.artifact(target), target, "roll back to")
            if old != target:
                if old is not None:
                    _swap_link(os.path.join(release, "previous"), old)
                _swap_link(current, target)
                _fsync_dir(release)
            _append_history(layout, {
                "op": "rollback",
                "deployment_id": req.get("deployment_id"),
                "binary_name": name,
                "sha256": target,
                "previous": old,
                "changed": old != target,
            })
            done[name] = {"sha256": target, "previous": old}
        out = {"releases": done, "rolled_back": bool(done)}
        if len(done) == 1:
            (only,) = done.values()
            out.update(only)
            if req.get("run"):  # apply the restored release again (a rollout's failed gate)
                out["run_exit"] = _run_artifact(layout, layout.artifact(only["sha256"]), req, stdin)
    return out


# What rustle-deploy writes, per directory (the module docstring's layout): name pattern, kind,
# and what a cleanup does with it. Patterns are compiled only when a cleanup runs (``re`` costs
# an import on every other operation).
_HEX = "[0-9a-f]{64}"
# A rollout's carry id (fleetops): the deployment id (state.new_id), for rustle-exec followed by its run id,
# then (since hosts may share a remote dir) -h- and 12 hex digits of the host's name hashed.
_CARRY = "d-[0-9]{8}T[0-9]{6}-[0-9a-f]{6}(-r-[0-9a-f]{12})?(-h-[0-9a-f]{12})?"
_OURS = {
    "": (
        ("artifacts", "dir", "artifacts"),
        ("releases", "dir", "releases"),
        ("runs", "dir", "runs"),
        ("unpacked", "dir", "unpacked"),
        ("runners", "dir", "runners"),
        ("objects", "dir", "objects"),
        ("pyc", "dir", "pyc"),
        ("bridge", "dir", "bridge"),
        ("history[.]jsonl", "file", "remove"),
        ("lock", "file", "lock"),
        (CREATED_MARKER.replace(".", "[.]"), "file", "marker"),
    ),
    "artifacts": ((_HEX, "file", "remove"), ("[.]tmp-" + _HEX + "-[0-9]+", "file", "remove")),
    "releases": (("[A-Za-z0-9_][A-Za-z0-9._-]*", "dir", "release"),),
    "release": (("(current|previous)([.]tmp-[0-9]+)?", "symlink", "remove"),),
    "runs": (("[^/]+[.]jsonl", "file", "journal"),
             (_CARRY + "[.]vars[.]json([.]tmp-[0-9]+)?", "file", "remove")),
    "unpacked": ((_HEX + "([.]tmp-[0-9]+)?", "dir", "tree"),),
    "runners": ((_HEX + "([.]tmp[.][0-9]+)?", "file", "remove"),),
    "objects": ((_HEX, "file", "remove"), ("[.]tmp-" + _HEX + "-[0-9]+", "file", "remove")),
    "pyc": ((_HEX + "([.]tmp-[0-9]+)?", "dir", "tree"),),
    "bridge": (("[0-9a-f]{16}", "other", "server"), ("[0-9a-f]{16}[.]log", "file", "remove")),
}
_CONTROLLER_RUN_ID = "r-[0-9a-f]{12}"  # fleetops: f"r-{secrets.token_hex(6)}"
_FOREIGN = "not made by rustle-deploy"
_KEPT = "holds entries rustle-deploy did not make"


def _kind(path):
    """file, dir, symlink or other, without following a symlink; None if it is gone."""
    import stat

    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "dir"
    return "file" if stat.S_ISREG(mode) else "other"


class _Sweep:
    """What a cleanup removes and leaves under one remote directory; changes nothing itself.

    ``remove`` lists (relative path, action) children first; ``left`` the entries that stay,
    each with its kind and why. Directories are only entered when they are real directories.
    """

    def __init__(self, layout):
        import re

        self.root = layout.root
        self.rules = {
            where: [(re.compile(pattern), kind, action) for pattern, kind, action in rules]
            for where, rules in _OURS.items()
        }
        self.run_id = re.compile(_CONTROLLER_RUN_ID)
        self.remove = []
        self.left = []
        self.lock = False
        self.marker = False
        self.released = set()  # binary names history.jsonl mentions
        if _kind(layout.history) == "file":
            self.released = {str(h.get("binary_name")) for h in _read_history(layout) if isinstance(h, dict)}

    def _leave(self, rel, kind, why, ours=False):
        """``ours``: one of rustle-deploy's directories, kept for what it holds."""
        self.left.append({"path": rel + "/" if kind == "dir" else rel, "kind": kind, "why": why, "ours": ours})

    def walk(self, rel, where):
        """Plan the directory ``rel`` ('' for the root) with the rules of ``where``; True when
        nothing would be left in it."""
        empty = True
        for name in sorted(os.listdir(os.path.join(self.root, rel) if rel else self.root)):
            path_rel = rel + "/" + name if rel else name
            path = os.path.join(self.root, path_rel)
            kind = _kind(path)
            if kind is None:
                continue
            rule = next((r for r in self.rules[where] if r[0].fullmatch(name)), None)
            if rule is None:
                self._leave(path_rel, kind, _FOREIGN)
                empty = False
                continue
            want, action = rule[1], rule[2]
            if kind != want:
                self._leave(path_rel, kind, f"{_FOREIGN} (it writes a {want}, not a {kind}, by this name)")
                empty = False
            elif action == "remove":
                self.remove.append((path_rel, "unlink"))
            elif action == "tree":
                self.remove.append((path_rel + "/", "tree"))
            elif action == "lock":
                self.lock = True
            elif action == "marker":
                self.marker = True
            elif action == "journal" and not self._is_journal(path, name[: -len(".jsonl")]):
                self._leave(path_rel, kind, _FOREIGN + " (not one of its run journals)")
                empty = False
            elif action == "journal":
                self.remove.append((path_rel, "unlink"))
            elif action == "server":
                self.remove.append((path_rel, "server"))
            elif action == "release" and not self._is_release(path, name):
                # A directory by a release's name that holds no release link and that no history
                # line names: not ours (a deploy makes one only to activate). What is in it is
                # still listed, so that the report is the same after a cleanup emptied it.
                self.walk(path_rel, action)
                self._leave(path_rel, kind, _FOREIGN + " (no release link in it, and no deployment names it)")
                empty = False
            elif not self.walk(path_rel, action):
                self._leave(path_rel, kind, _KEPT, ours=True)
                empty = False
            else:
                self.remove.append((path_rel + "/", "rmdir"))
        return empty

    def _is_journal(self, path, run_id):
        """A controller run id, or a file whose first line is that run's run_start event."""
        if self.run_id.fullmatch(run_id):
            return True
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as f:
                first = json.loads(f.readline(1 << 16).decode("utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(first, dict) and first.get("event") == "run_start" and first.get("run_id") == run_id

    def _is_release(self, path, name):
        if name in self.released:
            return True
        links = self.rules["release"][0][0]
        return any(links.fullmatch(n) and _kind(os.path.join(path, n)) == "symlink" for n in os.listdir(path))


def _end_kept_server(path):
    """Ask the module bridge's fork server kept at the unix socket ``path`` to end (it removes
    its socket as it goes), then remove the socket if it is still there."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(path)
        reader = sock.makefile("rb")
        if json.loads(reader.readline().decode("utf-8") or "{}").get("ready") is True:
            sock.sendall(b'{"exit": true}\n')
            reader.read()  # it closes the connection as it ends
        reader.close()
    except (OSError, ValueError):
        pass  # no server there any more: only its socket file is left
    finally:
        sock.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def op_cleanup(req, layout, stdin):
    """Remove what rustle-deploy wrote under the remote directory and nothing else (see the
    module docstring); with ``dry_run`` only say what would go and what would stay.

    Reply: ``removed`` (relative paths, directories ending in ``/``), ``left`` (path, kind,
    why, ours: one of its directories kept for what it holds), ``failed`` (our entries that could not be removed), ``remote_dir_removed`` and
    ``remote_dir_kept`` (why not). In a dry run they describe what a cleanup would do.
    """
    import shutil

    dry = bool(req.get("dry_run"))
    out = {"remote_dir": layout.root, "dry_run": dry, "removed": [], "left": [], "failed": [],
           "remote_dir_removed": False, "remote_dir_kept": None}
    if not os.path.isdir(layout.root):
        if os.path.lexists(layout.root):
            out["remote_dir_kept"] = "not a directory: nothing of rustle-deploy's can be in it"
        return out
    lock_existed = _kind(layout.lock) == "file"
    with Lock(layout, float(req.get("lock_timeout", 60)), create=not dry):
        sweep = _Sweep(layout)
        empty = sweep.walk("", "")
        out["left"] = sweep.left
        for rel, action in sweep.remove:
            path = os.path.join(layout.root, rel.rstrip("/"))
            try:
                if dry:
                    pass
                elif action == "tree":
                    shutil.rmtree(path)
                elif action == "rmdir":
                    os.rmdir(path)
                elif action == "server":
                    _end_kept_server(path)
                else:
                    os.unlink(path)
                out["removed"].append(rel)
            except OSError as exc:
                out["failed"].append({"path": rel, "error": exc.strerror or str(exc)})
        if out["failed"]:
            out["remote_dir_kept"] = "some of rustle-deploy's entries could not be removed"
        elif not empty:
            out["remote_dir_kept"] = "it holds entries rustle-deploy did not make"
        elif os.path.islink(layout.root):
            out["remote_dir_kept"] = "it is a symbolic link; what it points to was cleaned"
        elif not sweep.marker:
            out["remote_dir_kept"] = "rustle-deploy did not create it (it has no " + CREATED_MARKER + ")"
        # The lock goes last, while we still hold it; the marker only with the directory.
        last = [("lock", sweep.lock or not dry)]
        last.append((CREATED_MARKER, sweep.marker and out["remote_dir_kept"] is None))
        for name, wanted in last:
            if not wanted:
                continue
            try:
                if not dry:
                    os.unlink(os.path.join(layout.root, name))
                if name != "lock" or lock_existed:  # a lock made by this cleanup was never there
                    out["removed"].append(name)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    out["failed"].append({"path": name, "error": exc.strerror or str(exc)})
    if out["remote_dir_kept"] is None and not out["failed"]:
        try:
            if not dry:
                os.rmdir(layout.root)
            out["remote_dir_removed"] = True
        except OSError:
            out["remote_dir_kept"] = "something appeared in it during the cleanup"
    return out


def op_status(req, layout, stdin):
    if not os.path.isdir(layout.root):
        out = {"remote_dir": layout.root, "releases": {}, "artifacts": [], "history": []}
        if req.get("deployment_id"):
            out["deployment"] = []
        return out
    # Under the lock: an agent still finishing (say, after the controller was interrupted)
    # ends before we read, so what we report is settled.
    with Lock(layout, float(req.get("lock_timeout", 60))):
        return _status(layout, req.get("deployment_id"))


def _status(layout, deployment_id=None):
    releases = {}
    try:
        names = sorted(os.listdir(layout.releases))
    except OSError:
        names = []
    for name in names:
        release = layout.release(name)
        releases[name] = {
            "current": _link_sha(os.path.join(release, "current")),
            "previous": _link_sha(os.path.join(release, "previous")),
        }
    try:
        artifacts = sorted(n for n in os.listdir(layout.artifacts) if not n.startswith("."))
    except OSError:
        artifacts = []
    history = _read_history(layout)
    out = {"remote_dir": layout.root, "releases": releases, "artifacts": artifacts, "history": history[-20:]}
    if deployment_id:  # every line of that deployment, however old (the controller reconciles it)
        out["deployment"] = [h for h in history if isinstance(h, dict) and h.get("deployment_id") == deployment_id]
    return out


def op_health(req, layout, stdin):
    """A rollout's health gate (docs/rollouts.md): each attempt runs ``sh -c COMMAND`` (exit 0)
    and/or fetches ``URL`` from this host (a 2xx answer), until it is healthy, at most
    ``retries`` more times, ``interval`` seconds apart, all within ``timeout`` seconds. Each
    attempt is reported as it ends. Touches nothing under the remote dir."""
    spec = req["health"]
    command = str(spec.get("command") or "")
    url = str(spec.get("url") or "")
    retries, interval = int(spec.get("retries", 0)), float(spec.get("interval", 0))
    deadline = time.monotonic() + float(spec.get("timeout", 60))
    attempt = 0
    while True:
        attempt += 1
        verdict = _health_attempt(command, url, deadline)
        emit(dict(verdict, agent="health", attempt=attempt))
        if verdict["healthy"] or attempt > retries or time.monotonic() + interval >= deadline:
            break
        time.sleep(interval)
    verdict["attempts"] = attempt
    return verdict


def _health_attempt(command, url, deadline):
    """One attempt: the command first (when given), then the URL (when given, and the command
    passed). ``rc``: the command's exit status (None: killed at the deadline); ``status``: the
    URL's HTTP status (None: no answer, ``output`` says why)."""
    import subprocess

    out = {"healthy": True, "output": ""}
    if command:
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=max(deadline - time.monotonic(), 0.001))
            out["rc"], out["output"] = proc.returncode, proc.stdout.decode("utf-8", "replace")[-2000:]
        except subprocess.TimeoutExpired as exc:
            out["rc"] = None
            out["output"] = ((exc.output or b"").decode("utf-8", "replace")[-1900:]
                             + "\n(killed at the health check's deadline)").lstrip("\n")
        out["healthy"] = out["rc"] == 0
    if url:
        out["status"] = None
        if out["healthy"]:
            out["status"], text = _fetch_status(url, max(deadline - time.monotonic(), 0.001))
            out["output"] = (out["output"] + "\n" + text).lstrip("\n")[-2000:]
            out["healthy"] = out["status"] is not None and 200 <= out["status"] < 300
    return out


def _fetch_status(url, timeout):
    """GET ``url`` from this host, without proxies (the service itself is asked), following
    redirects: (HTTP status or None, a line that says what came back)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"User-Agent": "rustle-deploy-health"})
    try:
        with opener.open(request, timeout=timeout) as resp:
            body = resp.read(2000).decode("utf-8", "replace")
            return resp.status, f"HTTP {resp.status} {body.strip()}".strip()
    except urllib.error.HTTPError as exc:
        body = exc.read(2000).decode("utf-8", "replace") if exc.fp is not None else ""
        return exc.code, f"HTTP {exc.code} {body.strip()}".strip()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, f"GET {url}: {reason}"


OPS = {
    "deploy": op_deploy,
    "run": op_run,
    "rollback": op_rollback,
    "cleanup": op_cleanup,
    "status": op_status,
    "health": op_health,
}


def _exit(code):
    """End the process at once: files are closed or fsynced and the lock released by now, and
    the controller waits for the channel to close after the last line (interpreter teardown
    would add ~5 ms to every host's reply)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _progress():
    """What the failed operation had done: the keys of PROGRESS an error line carries."""
    keys = ("stage", "uploaded", "activated", "previous", "damaged")
    out = {k: PROGRESS[k] for k in keys if k in PROGRESS}
    if PROGRESS.get("sha256"):
        out["sha256"] = PROGRESS["sha256"]
    return out


def main(raw_request, stdin=None):
    """Run one request (JSON bytes) and exit with the status described in the module docstring."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    start = time.time()
    req = None
    try:
        req = json.loads(raw_request.decode("utf-8"))
        op = OPS.get(req.get("op"))
        if op is None:
            raise AgentError("request", f"unknown op {req.get('op')!r}")
        check_remote_dir(str(req["remote_dir"]))
        layout = Layout(str(req["remote_dir"]))
        result = op(req, layout, stdin)
        if "unpacked_rebuilt" in PROGRESS:
            result["unpacked_rebuilt"] = PROGRESS["unpacked_rebuilt"]
    except AgentError as exc:
        line = {"agent": "error", "kind": exc.kind, "message": exc.message}
        line.update(exc.fields)
        line.update(_progress())
        emit(line)
        _exit(EXIT_AGENT_ERROR)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        where = exc.filename or (req.get("remote_dir", "?") if isinstance(req, dict) else "?")
        what = "no space left on the host's disk" if full else (exc.strerror or str(exc))
        line = {"agent": "error", "kind": "disk_full" if full else "io", "message": f"{where}: {what}"}
        line.update(_progress())
        emit(line)
        _exit(EXIT_AGENT_ERROR)
    except (KeyError, ValueError, TypeError) as exc:
        emit({"agent": "error", "kind": "internal", "message": f"{type(exc).__name__}: {exc}"})
        _exit(EXIT_AGENT_ERROR)
    result["agent"] = "done"
    result["op"] = req["op"]
    result["protocol"] = AGENT_PROTOCOL
    result["python"] = ".".join(str(n) for n in sys.version_info[:3])
    result["python_path"] = sys.executable
    uname = os.uname()
    result["system"] = uname.sysname
    result["machine"] = uname.machine
    try:  # "glibc 2.36": the controller ships no runner that needs a newer one
        result["libc"] = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):  # another C library (musl), or no confstr
        result["libc"] = ""
    result["duration"] = round(time.time() - start, 6)
    emit(result)
    run_exit = result.get("run_exit")
    if not isinstance(run_exit, int):
        _exit(0)
    _exit(run_exit if run_exit >= 0 else 128 - run_exit)  # killed by a signal: 128+N
