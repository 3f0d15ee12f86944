"""The host-side deploy agent: one script, sent over stdin on every connection, run by the host's Python.

Standard library only and Python 3.8 compatible: it runs on hosts we do not control. It never
imports rustle_deploy. The controller (deploy/host.py) starts it through a tiny bootstrap that
reads this source and a JSON request from stdin (see docs/remote.md), then calls ``main``.

Protocol on stdout: one JSON object per line. Lines the agent writes carry the key "agent"
(``need_upload``, ``lock_wait``, ``error``, ``done``); lines of a run are the artifact's own
events (key "event") and pass through untouched, because the artifact inherits our stdout.
Exit status: the artifact's run status when a run happened (0 or 2, 3 on bad invocation),
else 0; ``EXIT_AGENT_ERROR`` when the agent itself reports an ``error`` line.

Remote layout under ``remote_dir`` (DESIGN.md "Remote layout")::

    artifacts/<sha256>                 content-addressed, 0700
    artifacts/.tmp-<sha256>-<pid>      an upload in progress (removed when stale)
    releases/<binary_name>/current     -> ../../artifacts/<sha256>
    releases/<binary_name>/previous    -> the release before
    history.jsonl                      one line per deployment or rollback
    runs/<run-id>.jsonl                journal of each run (written by the artifact)
    unpacked/<sha256>/                 the payload as a directory, so bytecode is cached
    runners/<sha256>                   native format: installed rustle-runner binaries
    lock                               flock()ed for the whole operation
"""

import errno
import json
import os
import sys
import time

EXIT_AGENT_ERROR = 20
CHUNK = 1 << 18
AGENT_PROTOCOL = 1


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

    def artifact(self, sha):
        return os.path.join(self.artifacts, sha)

    def release(self, name):
        return os.path.join(self.releases, name)


def _check_name(value, what):
    if not value or "/" in value or value in (".", "..") or "\0" in value:
        raise AgentError("request", f"bad {what} {value!r}")
    return value


class Lock:
    """An exclusive flock() on ``remote_dir/lock``, waited for at most ``timeout`` seconds."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self.fd = -1

    def _open(self):
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AgentError("remote_dir", f"{self.path}: cannot open lock file: {exc.strerror}") from None

    def _still_the_lock_file(self):
        """A cleanup may have removed the file we locked: then the lock guards nothing."""
        try:
            return os.fstat(self.fd).st_ino == os.stat(self.path).st_ino
        except OSError:
            return False

    def __enter__(self):
        import fcntl

        self._open()
        deadline = time.time() + self.timeout
        told = False
        delay = 0.01
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if self._still_the_lock_file():
                    return self
                os.close(self.fd)  # locked a file that was removed meanwhile: lock the new one
                if not os.path.isdir(os.path.dirname(self.path)):
                    _mkdirs(os.path.dirname(self.path))
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
    ``hashlib`` costs ~3 ms per host), else hashlib's (faster on large ones)."""
    if size < (1 << 22):
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
        os.write(fd, line)
        os.fsync(fd)
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
    try:
        names = os.listdir(layout.artifacts)
    except OSError:
        return
    for name in names:
        if name.startswith(".tmp-"):
            try:
                os.unlink(os.path.join(layout.artifacts, name))
            except OSError:
                pass


def _receive(layout, stdin, sha, size):
    """Read exactly ``size`` bytes of the artifact into a temp file, check it, rename it in place."""
    tmp = os.path.join(layout.artifacts, f".tmp-{sha}-{os.getpid()}")
    h = _sha256(size)
    got = 0
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            while got < size:
                block = stdin.read(min(CHUNK, size - got))
                if not block:
                    raise AgentError(
                        "short_read",
                        f"upload cut after {got} of {size} bytes",
                        received=got,
                        size=size,
                    )
                h.update(block)
                view = memoryview(block)
                while view:
                    n = os.write(fd, view)
                    view = view[n:]
                got += len(block)
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


def _skip(stdin, size):
    """Read and drop ``size`` bytes of an artifact this host already has."""
    left = size
    while left > 0:
        block = stdin.read(min(CHUNK, left))
        if not block:
            raise AgentError("short_read", f"upload cut after {size - left} of {size} bytes", received=size - left, size=size)
        left -= len(block)


def _watch_controller(fd):
    """End this run when ``fd`` (the channel's stdin) reaches EOF: the controller is gone.

    The run is this process and its children, in a process group of their own, so SIGTERM
    to the group stops task commands too.
    """
    import _thread
    import signal

    def watch():
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        try:
            if os.getpgrp() == os.getpid():
                os.killpg(os.getpid(), signal.SIGTERM)
            else:
                os.kill(os.getpid(), signal.SIGTERM)
        except OSError:
            pass

    _thread.start_new_thread(watch, ())  # not threading: its import costs ~2 ms per host


def _unpack(layout, sha, path):
    """The artifact's payload as a directory, ``unpacked/<sha256>/``, made once per artifact.

    zipimport cannot cache bytecode, so a zip recompiles the runtime on every run (~40 ms);
    from a directory Python keeps ``__pycache__`` and warm runs skip that. The zip stays the
    artifact of record (hashed, verified, rolled back); this is a cache beside it.
    """
    target = os.path.join(layout.unpacked, sha)
    if os.path.isfile(os.path.join(target, "__main__.py")):
        return target
    import shutil
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


def _run_artifact(layout, path, req, stdin):
    """Run the artifact's runtime inside this process, from the zip when it carries bytecode
    for this interpreter, else from its unpacked copy.

    The agent's interpreter is already up: running the runtime here instead of starting a
    second Python saves that start-up on every host. Its events go straight to fd 1.
    """
    run = req["run"]
    run_id = _check_name(str(run["run_id"]), "run id")
    _mkdirs(layout.runs)
    sha = os.path.basename(path)
    runner = _native_runner(layout, path)
    if runner is not None:
        root = path
    elif req.get("bytecode_tag") == sys.implementation.cache_tag:
        root = path  # its bytecode is for this interpreter: import straight from the zip
    else:
        root = _unpack(layout, sha, path)
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
    # The channel stays ours: tasks get /dev/null as stdin, the watcher keeps a private copy.
    watch_fd = os.dup(stdin.fileno())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        os.setpgid(0, 0)
    except OSError:
        pass  # already a group or session leader
    _watch_controller(watch_fd)
    if runner is not None:
        return _run_native(runner, path, req, options)
    sys.path.insert(0, root)
    sys.stdout.flush()
    try:
        from rustle_runtime.cli import run_payload

        code = run_payload(root, str(req["host"]), **options)
    except SystemExit as exc:
        code = exc.code
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


def op_deploy(req, layout, stdin):
    sha = _check_name(req["sha256"], "sha256")
    name = _check_name(req["binary_name"], "binary name")
    size = int(req["size"])
    release = layout.release(name)
    _mkdirs(layout.root)
    result = {"sha256": sha, "binary_name": name, "uploaded": False, "activated": False}
    with Lock(layout.lock, float(req.get("lock_timeout", 60))):
        for d in (layout.artifacts, layout.releases, release):  # under the lock: a cleanup may just have run
            _mkdirs(d)
        _remove_stale_uploads(layout)
        path = layout.artifact(sha)
        try:
            present = os.stat(path).st_size == size
        except OSError:
            present = False
        if req.get("push") and present:
            _skip(stdin, size)  # sent on spec; the copy here is the one already checked
        elif not present:
            if not req.get("push"):
                emit({"agent": "need_upload", "size": size})
            _receive(layout, stdin, sha, size)
            result["uploaded"] = True
        if req.get("verify"):
            # Verify before activation: a bad artifact never becomes current, so there is
            # nothing to roll back (docs/remote.md).
            _verify(layout, sha)
            result["verified"] = True
        current = os.path.join(release, "current")
        old = _link_sha(current)
        result["previous"] = old
        if req.get("activate") is False:
            # --stage: in place and checked, not current; the bytecode a Python of another
            # version needs is made now, so that --promote has only a rename and the run left.
            if _native_runner(layout, path) is None and req.get("bytecode_tag") != sys.implementation.cache_tag:
                _unpack(layout, sha, path)
            result["staged"] = True
            _append_history(layout, {"op": "stage", "deployment_id": req.get("deployment_id"),
                                     "binary_name": name, "sha256": sha, "current": old,
                                     "uploaded": result["uploaded"]})
            return result
        if old != sha:
            if old is not None:
                _swap_link(os.path.join(release, "previous"), old)
            _swap_link(current, sha)
            _fsync_dir(release)
            result["activated"] = True
            _prune_unpacked(layout)
        _append_history(layout, {
            "op": "deploy",
            "deployment_id": req.get("deployment_id"),
            "binary_name": name,
            "sha256": sha,
            "previous": old,
            "changed": old != sha,
            "uploaded": result["uploaded"],
        })
        if req.get("run"):
            result["run_exit"] = _run_artifact(layout, path, req, stdin)
    return result


def op_run(req, layout, stdin):
    name = _check_name(req["binary_name"], "binary name")
    current = os.path.join(layout.release(name), "current")
    if not os.path.isdir(layout.root):
        raise AgentError("not_deployed", f"{layout.root}: no such directory; nothing was deployed here")
    with Lock(layout.lock, float(req.get("lock_timeout", 60))):
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
        run_exit = _run_artifact(layout, layout.artifact(sha), req, stdin)
    return {"sha256": sha, "binary_name": name, "run_exit": run_exit}


def op_rollback(req, layout, stdin):
    names = [_check_name(req["binary_name"], "binary name")] if req.get("binary_name") else None
    if not os.path.isdir(layout.root):
        raise AgentError("not_deployed", f"{layout.root}: no such directory; nothing to roll back")
    with Lock(layout.lock, float(req.get("lock_timeout", 60))):
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


def op_cleanup(req, layout, stdin):
    import shutil

    if not os.path.isdir(layout.root):
        return {"removed": []}
    removed = []
    with Lock(layout.lock, float(req.get("lock_timeout", 60))):
        for path in (layout.artifacts, layout.releases, layout.runs, layout.unpacked, layout.runners):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
                removed.append(path)
        for path in (layout.history, layout.lock):
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    try:
        os.rmdir(layout.root)
        removed.append(layout.root)
    except OSError:
        pass  # not empty: it holds files rustle-deploy did not create
    return {"removed": removed}


def op_status(req, layout, stdin):
    if not os.path.isdir(layout.root):
        return {"remote_dir": layout.root, "releases": {}, "artifacts": [], "history": []}
    # Under the lock: an agent still finishing (say, after the controller was interrupted)
    # ends before we read, so what we report is settled.
    with Lock(layout.lock, float(req.get("lock_timeout", 60))):
        return _status(layout)


def _status(layout):
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
    return {"remote_dir": layout.root, "releases": releases, "artifacts": artifacts, "history": history[-20:]}


def op_health(req, layout, stdin):
    """A rollout's health gate (docs/rollouts.md): ``sh -c COMMAND`` until it exits 0, at most
    ``retries`` more times, ``interval`` seconds apart, all within ``timeout`` seconds. Each
    attempt is reported as it ends. Touches nothing under the remote dir."""
    import subprocess

    spec = req["health"]
    command = str(spec["command"])
    retries, interval = int(spec.get("retries", 0)), float(spec.get("interval", 0))
    deadline = time.monotonic() + float(spec.get("timeout", 60))
    attempt, rc, output = 0, None, ""
    while True:
        attempt += 1
        left = deadline - time.monotonic()
        try:
            proc = subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=max(left, 0.001))
            rc, output = proc.returncode, proc.stdout.decode("utf-8", "replace")[-2000:]
        except subprocess.TimeoutExpired as exc:
            rc = None
            output = ((exc.output or b"").decode("utf-8", "replace")[-1900:]
                      + "\n(killed at the health check's deadline)").lstrip("\n")
        emit({"agent": "health", "attempt": attempt, "rc": rc, "output": output})
        if rc == 0 or attempt > retries or time.monotonic() + interval >= deadline:
            break
        time.sleep(interval)
    return {"healthy": rc == 0, "attempts": attempt, "rc": rc, "output": output}


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
        layout = Layout(str(req["remote_dir"]))
        result = op(req, layout, stdin)
    except AgentError as exc:
        line = {"agent": "error", "kind": exc.kind, "message": exc.message}
        line.update(exc.fields)
        emit(line)
        _exit(EXIT_AGENT_ERROR)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        where = exc.filename or (req.get("remote_dir", "?") if isinstance(req, dict) else "?")
        what = "no space left on the host's disk" if full else (exc.strerror or str(exc))
        emit({"agent": "error", "kind": "disk_full" if full else "io", "message": f"{where}: {what}"})
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
    result["duration"] = round(time.time() - start, 6)
    emit(result)
    run_exit = result.get("run_exit")
    if not isinstance(run_exit, int):
        _exit(0)
    _exit(run_exit if run_exit >= 0 else 128 - run_exit)  # killed by a signal: 128+N
