"""Cheap stand-ins for standard modules whose import costs milliseconds on every host.

A run starts one Python per host, so each import on the hot path is paid once per host:
``hashlib`` loads OpenSSL (~3 ms), ``tempfile`` pulls in ``random``, ``shutil`` and the
compression modules (~5 ms), ``subprocess`` brings ``threading``, ``selectors``, ``locale``
and ``signal`` (~5 ms). This module offers what the runtime needs of them from built-in
modules: hashes of small data, ``mkstemp``, and running a command with ``posix_spawn``.
Large data and unusual requests fall back to the standard module (docs/decisions.md).
"""

import errno
import os
import time

SMALL = 1 << 22  # below this many bytes the built-in hash modules beat loading OpenSSL

_STOPPED = []  # non-empty once ``stop()`` was called


class Stopped(BaseException):
    """The run is being ended from outside (the deploy agent's controller went away): it starts
    no more commands and writes no more events. A BaseException, so that no module's error
    handling turns it into a task result."""


def stop():
    """Called by the deploy agent, from another thread, when it ends the run."""
    _STOPPED.append(True)


def check_stopped():
    if _STOPPED:
        raise Stopped()


def _builtin_hash(algorithm):
    """The constructor from CPython's built-in hash modules, or None."""
    try:
        if algorithm == "sha1":
            from _sha1 import sha1 as ctor
        elif algorithm == "md5":
            from _md5 import md5 as ctor
        elif algorithm == "sha256":
            try:
                from _sha256 import sha256 as ctor  # Python <= 3.11
            except ImportError:
                from _sha2 import sha256 as ctor  # Python >= 3.12
        else:
            return None
    except ImportError:
        return None
    return ctor


def new_hash(algorithm, size_hint=0):
    """A hash object for ``algorithm``; built-in for small inputs, else ``hashlib``'s."""
    if size_hint < SMALL:
        ctor = _builtin_hash(algorithm)
        if ctor is not None:
            return ctor()
    import hashlib

    return hashlib.new(algorithm)


def hexdigest(algorithm, data):
    h = new_hash(algorithm, len(data))
    h.update(data)
    return h.hexdigest()


def mkstemp(directory, prefix):
    """``tempfile.mkstemp(prefix=prefix, dir=directory)``: a new 0600 file, opened O_EXCL."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        path = os.path.join(directory, prefix + os.urandom(6).hex())
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", os.path.join(directory, prefix))


def which(name, env=None):
    """The executable ``name`` runs as, searched in ``env``'s PATH (as subprocess does), or None."""
    if "/" in name:
        return name
    for d in os.get_exec_path(env):
        path = os.path.join(d, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


class Timeout(Exception):
    """The command ran past its deadline and was killed (its whole session)."""

    def __init__(self, stdout, stderr):
        Exception.__init__(self, "timed out")
        self.stdout, self.stderr = stdout, stderr


def _close(*fds):
    for fd in fds:
        if fd is not None:
            os.close(fd)


def _exit_code(status):
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def spawn(argv, env, data=None, cwd=None, timeout=None):
    """Run ``argv`` in a new session with ``env``; feed ``data`` (bytes or None: /dev/null)
    on stdin; return ``(returncode, stdout bytes, stderr bytes)``.

    Like ``subprocess.run(..., start_new_session=True)``: SIGPIPE and SIGXFSZ are reset to
    their defaults in the child, and a timeout kills the child's session. ``cwd`` needs a
    chdir in the child, which ``posix_spawn`` cannot do before Python 3.13: those runs go
    through ``subprocess``. Raises ``Stopped`` once the run is being ended.
    """
    check_stopped()
    if cwd is not None or not hasattr(os, "posix_spawn"):
        return _spawn_subprocess(argv, env, data, cwd, timeout)
    import signal

    path = which(argv[0], env)
    if path is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if data is None:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC), None
    else:
        in_r, in_w = os.pipe()
    try:
        pid = os.posix_spawn(
            path, argv, env,
            file_actions=[(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                          (os.POSIX_SPAWN_DUP2, err_w, 2)],
            setsid=True, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
        )
    except NotImplementedError:  # a libc without POSIX_SPAWN_SETSID
        pid = None
    except BaseException:
        _close(out_r, err_r, in_w)
        raise
    finally:
        _close(in_r, out_w, err_w)
    if pid is None:
        _close(out_r, err_r, in_w)
        return _spawn_subprocess(argv, env, data, cwd, timeout)
    try:
        out, err, status = _communicate(pid, in_w, data, out_r, err_r, timeout)
    except BaseException:
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        os.waitpid(pid, 0)
        raise
    if status is None:
        _, status = os.waitpid(pid, 0)
    return _exit_code(status), out, err


def _communicate(pid, in_w, data, out_r, err_r, timeout):
    """Feed stdin and read stdout/stderr until both close, or, as Ansible's run_command, until
    the child has exited and a second passes with nothing to read (a process it started in the
    background may hold the pipes open). Returns (stdout, stderr, wait status or None)."""
    import select

    deadline = None if timeout is None else time.monotonic() + timeout
    chunks = {out_r: [], err_r: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    pending = memoryview(data) if in_w is not None else None
    if in_w is not None:
        if pending:
            os.set_blocking(in_w, False)
            poller.register(in_w, select.POLLOUT)
        else:
            os.close(in_w)
            in_w = None
    open_fds = set(chunks) | ({in_w} if in_w is not None else set())
    status = None
    try:
        while open_fds:
            wait = 1000
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Timeout(b"".join(chunks[out_r]), b"".join(chunks[err_r]))
                wait = min(wait, left * 1000)
            events = poller.poll(wait)
            if not events and in_w is None:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                status = None
            for fd, ev in events:
                if fd == in_w:
                    try:
                        n = os.write(in_w, pending[:65536])
                    except BrokenPipeError:
                        n = len(pending)
                    pending = pending[n:]
                    if not pending:
                        poller.unregister(in_w)
                        os.close(in_w)
                        open_fds.discard(in_w)
                        in_w = None
                    continue
                block = os.read(fd, 65536)
                if block:
                    chunks[fd].append(block)
                elif ev & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    poller.unregister(fd)
                    open_fds.discard(fd)
    finally:
        for fd in (out_r, err_r, in_w):
            if fd is not None:
                os.close(fd)
    return b"".join(chunks[out_r]), b"".join(chunks[err_r]), status


def _spawn_subprocess(argv, env, data, cwd, timeout):
    import subprocess

    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
        start_new_session=True, close_fds=True)
    try:
        out, err = proc.communicate(data, timeout=timeout)
    except subprocess.TimeoutExpired:
        import signal

        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = proc.communicate()
        raise Timeout(out or b"", err or b"") from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc.returncode, out, err
