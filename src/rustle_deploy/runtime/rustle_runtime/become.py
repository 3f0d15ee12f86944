"""Run a task's module as its ``become_user``: in a child interpreter started through sudo or su.

Every module that Ansible runs on the host runs here with the identity the task asks for, not
only the commands it starts: a ``file``, ``copy``, ``template`` or ``lineinfile`` task that
becomes ``nobody`` creates files owned by ``nobody``, or fails where ``nobody`` may not write.
The modules Ansible runs on the controller (``debug``, ``set_fact``, ``assert``, ``fail``,
``meta``, ``include_vars``, ``add_host``, ``group_by``, ``set_stats``) stay in the runtime's own
process.

One child per identity (become method and user) serves every task of the run that needs it: it
is started on the first such task (``sudo -n -H -u USER -- PYTHON -I -S -c BOOT``, or ``su`` when
the runtime runs as root) and ends with the run. The artifact stays private (0700, the
connecting user's): the child reads nothing of it. It asks the parent, over its stdin/stdout,
one JSON object per line:

* ``import``: the compiled code of a runtime module (this interpreter's marshal format);
* ``read_file``: an embedded file, only one of the running task's own (copy/template ``src``);
* ``render``: one of the task's own embedded templates rendered with the task's variables, as
  Ansible renders templates on the controller (extra values are plain text, never templates).

and answers each ``task`` request with its ``result``, which the executor treats as it treats a
module's result in process (registered results, ``changed_when``, check mode, diff and
``no_log`` work as usual; ``_set_fact``/``_meta`` are never taken from a child). The child
applies the task's ``timeout`` itself; the parent gives it a few seconds more, then ends it
and starts a new one for the next task. Measured cost in docs/decisions.md.
"""

import os
import sys
import time

# Modules Ansible runs as action plugins on the controller: no become applies to them.
CONTROLLER_SIDE = frozenset(("debug", "set_fact", "assert", "fail", "meta", "include_vars", "add_host", "group_by",
                             "set_stats"))
# what a child's render request names: the template's ``src`` as written and its ``dest``; the
# parent derives the other template_* variables itself (modules/files.py template)
_TEMPLATE_VARS = ("template_path", "template_destpath")
_GRACE = 5.0  # seconds the parent waits past a task's timeout before it ends the child
_PASSWORD = [None, {}]  # the run's become password (-K, or the host's variable), in memory only, and
# the host's inventory variables of become passwords by name (which no artifact carries)


def set_password(password, variables=None):
    """The password sudo asks for when a task becomes another user: ``-K``'s or the host's
    inventory variable's; ``variables``: the host's become password variables, by name."""
    _PASSWORD[0] = password
    _PASSWORD[1] = dict(variables or {})


def password(ctx, method):
    """The become plugin's ``become_pass`` for the task, as ansible-core's config manager takes
    it: the value of the last of ``ansible_become_password``, ``ansible_become_pass`` and
    ``ansible_<method>_pass`` that is set, each name at its highest level (play, role, block and
    task ``vars``, vars files, extra vars, else the host's inventory variable of that name), so
    the inventory's ``ansible_su_pass`` beats a play's ``ansible_become_password``; else the
    run's (``-K``: ansible-core's variables win over it); None: none."""
    found = None
    for name in ("ansible_become_password", "ansible_become_pass", f"ansible_{method}_pass"):
        value = variable(ctx, name)
        value = _PASSWORD[1].get(name) if value is None else value
        if value is not None:
            found = value
    return _PASSWORD[0] if found is None or found == "" else str(found)


def _first_line(password):
    """What sudo and su read of a password of several lines: its first line, as they read what
    ansible-core sends them (the text and a newline, on a terminal where a carriage return ends
    a line too); the rest would reach the child's stdin here."""
    return password.replace("\r", "\n").split("\n", 1)[0]


_STDERR_KEEP = 1 << 16

# su asks for the password before the child starts: the child says it runs before it reads
# its first line, so that su never takes the boot line for a password (nor the child the password)
READY = b'{"op": "ready"}'
BOOT_READY = "import os\nos.write(1, %r)\n" % (READY + b"\n")

# Runs as ``python -I -S -c BOOT``: the first line on stdin carries the code of the package
# and of this module; everything else is imported through the parent (``_Finder``).
BOOT = (
    "import base64,json,marshal,os,sys,types\n"
    "r=os.fdopen(os.dup(0),'rb');w=os.fdopen(os.dup(1),'wb')\n"
    "for n,c,p in json.loads(r.readline())['modules']:\n"
    " m=types.ModuleType(n);m.__file__='<rustle>/'+n;m.__package__=n if p else n.rpartition('.')[0]\n"
    " if p:m.__path__=[]\n"
    " sys.modules[n]=m;exec(marshal.loads(base64.b64decode(c)),m.__dict__)\n"
    "sys.modules['rustle_runtime.become'].child_main(r,w)\n"
)


def _me():
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def identity(ctx, module):
    """``(method, user, exe, flags)`` when ``module`` must run in a child as another user, else
    None. ``exe``/``flags``: the become plugin's options as ansible-core resolves them
    (``option``), None for the method's defaults.

    Raises ModuleFailure for a method that would need a password prompt on the host.
    """
    from .context import ModuleFailure

    user = str(ctx.become_user)
    if not ctx.become or module in CONTROLLER_SIDE or user == _me():
        return None
    if not sys.executable:
        raise ModuleFailure(f"become: cannot tell which Python runs this artifact, to start it as '{user}'")
    if ctx.become_method == "sudo" or (ctx.become_method == "su" and (os.geteuid() == 0
                                                                       or password(ctx, "su") is not None)):
        method = ctx.become_method
        return (method, user, option(ctx, method, "exe", ctx.become_exe),
                option(ctx, method, "flags", ctx.become_flags))
    if ctx.become_method == "su":
        raise ModuleFailure(
            f"become: su needs the password of '{user}', and this run was given none; hint: pass -K "
            "(--ask-become-pass) or set ansible_become_password for the host")
    raise ModuleFailure(
        f"become_method '{ctx.become_method}' cannot be used without a password prompt on the host; "
        "hint: use become_method: sudo with NOPASSWD for this user")


def option(ctx, method, name, keyword):
    """The become plugin's ``become_<name>``: ``ansible_become_<name>`` or ``ansible_<method>_<name>``
    (the later one of those two wins, as in ansible-core's config manager) over the keyword,
    over the method's configuration (the plan's ``become_config``: ansible.cfg and ANSIBLE_*)."""
    value = variable(ctx, "ansible_become_" + name, f"ansible_{method}_{name}")
    value = keyword if value is None else value
    if value is None:
        plan = getattr(getattr(ctx, "_runner", None), "plan", None) or {}
        value = ((plan.get("become_config") or {}).get(method) or {}).get(name)
    return None if value is None else str(value)


def variable(ctx, *names):
    """The value of the last of ``names`` that is set (and not None) for the task, else None."""
    value = None
    for var in names:
        try:
            found = ctx.vars[var]
        except KeyError:
            continue
        except Exception as exc:  # an undefined variable or a template error in its value
            from .context import ModuleFailure

            raise ModuleFailure(f"become: cannot evaluate {var}: {exc}") from exc
        if found is not None:
            value = found
    return value


def command(method, user, exe, flags, cmd, password=False):
    """The argv that runs ``cmd`` as ``user``, built as ansible-core's sudo and su become plugins
    build theirs: ``EXE FLAGS -u USER`` (sudo; FLAGS default ``-H -S -n``; with a password,
    ``-n`` is left out and sudo's prompt is made empty) and ``EXE FLAGS USER -c CMD`` (su; FLAGS
    default ``-s /bin/sh``, where Ansible's are empty, so a user whose shell is nologin can still
    run it). ``exe`` and ``flags`` are split as the shell splits them in Ansible's command line."""
    import re
    import shlex

    from .context import ModuleFailure

    try:
        program = shlex.split(exe or "") or [method]
        words = shlex.split(("-H -S -n" if method == "sudo" else "-s /bin/sh") if flags is None else flags)
    except ValueError as exc:
        raise ModuleFailure(f"become: become_exe {exe!r} and become_flags {flags!r} cannot be split into "
                            f"words: {exc}") from None
    if method == "sudo":
        if password:
            words = [re.sub(r"^(-\w*)n(\w*.*)", r"\1\2", w) if not w.startswith("--") else w
                     for w in words if w not in ("-n", "--non-interactive")]
            if "-S" not in words and "--stdin" not in words:
                words.append("-S")  # the password travels on the child's stdin
            words += ["-k", "-p", ""]
        return program + words + ["-u", user, "--"] + cmd
    return program + words + [user, "-c", "exec " + " ".join(shlex.quote(a) for a in cmd)]


def program(name, env=None):
    """The path ``name`` (the become program, argv[0]) runs as; ModuleFailure when there is none."""
    from .context import ModuleFailure
    from .lowlevel import which

    path = which(name, env)
    if path is None or not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise ModuleFailure(f"become: '{name}' is not installed on this host (or not executable); "
                            "hint: check become_exe (or ansible_become_exe) for this host")
    return path


def _encode(obj):
    import json

    def default(value):
        if isinstance(value, (set, frozenset, tuple)):
            return list(value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return str(value)

    return json.dumps(obj, default=default).encode("ascii") + b"\n"


# ------------------------------------------------------------------------------------ parent

class Children:
    """The run's children, one per identity; ``close()`` ends them all."""

    def __init__(self, runner):
        self._runner = runner
        self._children = {}
        self._code = {}

    def run(self, key, ctx, module, args, timeout, own=None):
        """The result of ``module`` run with ``args`` as ``key`` = (method, user); ``own``: a
        rustle-deploy module's ``fqcn`` and ``source`` (modules/bridge.py ``run_own``)."""
        from .context import ModuleFailure, timed_out

        child = self._children.get(key)
        if child is None:
            child = self._children[key] = _Child(key, self._code, password(ctx, key[0]))
        request = {"op": "task", "module": module, "args": args, "host": ctx.host,
                   "verbosity": ctx.verbosity, "check": ctx.check_mode, "diff": ctx.diff_mode,
                   "environment": ctx.environment, "files": ctx.files,
                   "timeout": timeout or None,
                   "task": {k: ctx.task.get(k) for k in ("id", "name", "module")}}
        if own is not None:
            request["own"] = own
        deadline = time.monotonic() + float(timeout) + _GRACE if timeout else None
        try:
            result = child.call(request, ctx, deadline)
        except _Timeout:
            self._end(key)
            return timed_out(timeout)
        except BaseException:
            self._end(key)
            raise
        if not isinstance(result, dict):
            self._end(key)
            raise ModuleFailure(f"become: the process running as '{key[1]}' answered {type(result).__name__}, "
                                "not a result")
        for private in ("_set_fact", "_meta"):
            result.pop(private, None)
        return result

    def _end(self, key):
        child = self._children.pop(key, None)
        if child is not None:
            child.close(kill=True)

    def close(self, wait=True):
        """End every child: close their stdin (each exits at its end), then, with ``wait``,
        reap them; ``close(wait=False)`` first lets the run finish while they exit."""
        for child in self._children.values():
            child.hang_up()
        if wait:
            for key in list(self._children):
                self._children.pop(key).close()


class _Timeout(Exception):
    pass


class _Child:
    """One child interpreter running as ``user``, and the parent's end of its pipes."""

    def __init__(self, key, code_cache, become_pass=None):
        method, user, exe, flags = key
        self.method, self.user = method, user
        self._code = code_cache
        self.python = sys.executable
        cmd = [self.python, "-I", "-S", "-c", BOOT]
        mark = os.environ.get("RUSTLE_RUN_MARK")
        if mark:  # sudo and su reset the environment; the deploy agent finds the run's processes by it
            cmd = ["env", "RUSTLE_RUN_MARK=" + mark] + cmd
        password = become_pass if method == "sudo" or (method == "su" and os.geteuid() != 0) else None
        password = None if password is None else _first_line(password)
        if password is not None and method == "sudo" and not _sudo_asks(user, password, exe):
            password = None
        su_password = password if method == "su" else None
        if su_password is not None:
            cmd[-1] = BOOT_READY + BOOT
            password = None
        # with a password, -k: sudo asks for it whatever it has cached, so the first line of
        # the child's stdin is always its answer (checked just before: a wrong one never
        # reaches here, where sudo would read the boot line as a second try)
        argv = command(method, user, exe, flags, cmd, password=password is not None)
        self.stderr = b""
        self._out = b""
        self._pending = b""
        self._answered = False
        self.pid, self.in_w, self.out_r, self.err_r = _spawn(argv)
        if su_password is not None:
            self._su_answer(su_password)
        if password is not None:
            self._pending = (password + "\n").encode("utf-8")
        self._send({"op": "boot", "modules": [self._module_code("rustle_runtime"), self._module_code(__name__)]})

    def _su_answer(self, password):
        """Give su the password when it asks (its prompt on stderr: su reads its answer from
        stdin up to the newline, one byte at a time), then wait for the child's ready line."""
        import select

        from .context import ModuleFailure

        deadline = time.monotonic() + 60.0
        asked = False
        while b"\n" not in self._out:
            left = deadline - time.monotonic()
            if left <= 0:
                self.close(kill=True)
                raise ModuleFailure(f"become: su did not start the process as '{self.user}' within 60 s")
            ready = select.select([self.out_r] + ([self.err_r] if self.err_r is not None else []), [], [], left)[0]
            for fd in ready:
                block = os.read(fd, 1 << 16)
                if fd == self.out_r:
                    if not block:
                        self._drain_stderr()
                        self.close()
                        raise ModuleFailure(self._died())
                    self._out += block
                elif not block:
                    os.close(fd)
                    self.err_r = None
                else:
                    self.stderr = (self.stderr + block)[-_STDERR_KEEP:]
                    prompt = self.stderr.rsplit(b"\n", 1)[-1].strip()
                    if not asked and prompt.endswith((b":", "\uff1a".encode("utf-8"))):
                        asked = True
                        os.write(self.in_w, (password + "\n").encode("utf-8"))
        line, self._out = self._out.split(b"\n", 1)
        if line.strip() != READY:
            self.close(kill=True)
            raise ModuleFailure(f"become: unexpected output from su running as '{self.user}'")

    # -- the exchange ------------------------------------------------------------------------
    def call(self, request, ctx, deadline):
        """Send one task and serve the child's requests until its result comes back."""
        from .context import ModuleFailure

        self._send(request)
        while True:
            msg = self._recv(deadline)
            if msg is None:
                self.close(kill=True)
                raise ModuleFailure(self._died())
            self._answered = True
            op = msg.get("op")
            if op == "result":
                return msg.get("result")
            if op == "import":
                name = str(msg.get("name"))
                self._send({"op": "code", "module": self._module_code(name)})
            elif op == "read_file":
                self._send(_answer(lambda m=msg: {"data": _b64(_task_file(ctx, m.get("sha256")))}))
            elif op == "render":
                self._send(_answer(lambda m=msg: {"text": _render(ctx, m.get("text"), m.get("extra"),
                                                                   m.get("overrides"))}))
            else:
                raise ModuleFailure(f"become: unexpected message from the process running as '{self.user}'")

    def _module_code(self, name):
        """[name, base64 marshal of its code, is_package] for a runtime module, or None."""
        import base64
        import importlib
        import marshal

        if name != "rustle_runtime" and not name.startswith("rustle_runtime."):
            return None
        if name not in self._code:
            try:
                module = importlib.import_module(name)
                loader = module.__spec__.loader
                code = loader.get_code(name)
                is_package = bool(loader.is_package(name))
            except (ImportError, AttributeError):
                self._code[name] = None
            else:
                self._code[name] = [name, base64.b64encode(marshal.dumps(code)).decode("ascii"), is_package]
        return self._code[name]

    def _died(self):
        text = self.stderr.decode("utf-8", "replace").strip()
        if "a password is required" in text or "a terminal is required" in text:
            return (f"become: sudo needs a password to run as '{self.user}' on this host; "
                    f"hint: grant NOPASSWD sudo to the deploying user, or connect as '{self.user}'")
        last = text.splitlines()[-1] if text else "no output"
        if self.method == "su" and "Authentication failure" in text:
            return f"become: su refused the become password to run as '{self.user}': {last}"
        if not self._answered:
            return (f"become: cannot start {self.python} as '{self.user}' with {self.method}: {last}; "
                    "hint: set ansible_python_interpreter to a Python every become_user can run "
                    "(such as /usr/bin/python3)")
        return f"become: the process running as '{self.user}' ended during the task: {last}"

    # -- pipes -------------------------------------------------------------------------------
    def _send(self, obj):
        self._pending += _encode(obj)
        self._pump(None, want_line=False)

    def _recv(self, deadline):
        """The next message from the child; None when it closed its end."""
        import json

        while b"\n" not in self._out:
            if not self._pump(deadline, want_line=True):
                return None
        line, self._out = self._out.split(b"\n", 1)
        try:
            msg = json.loads(line.decode("utf-8"))
        except ValueError:
            msg = None
        if not isinstance(msg, dict):
            from .context import ModuleFailure

            raise ModuleFailure(f"become: unreadable message from the process running as '{self.user}'")
        return msg

    def _pump(self, deadline, want_line):
        """Move bytes until the pending input is written (and, with ``want_line``, until more
        output arrived). False when the child's stdout reached its end."""
        import select

        poller = select.poll()
        if self._pending:
            poller.register(self.in_w, select.POLLOUT)
        if want_line:
            poller.register(self.out_r, select.POLLIN)
        if self.err_r is not None:
            poller.register(self.err_r, select.POLLIN)
        while self._pending or want_line:
            wait = None
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise _Timeout()
                wait = left * 1000
            for fd, _event in poller.poll(wait):
                if fd == self.in_w:
                    try:
                        n = os.write(self.in_w, self._pending[:1 << 16])
                    except BrokenPipeError:
                        n = len(self._pending)  # the child is gone; its stdout tells the rest
                    self._pending = self._pending[n:]
                    if not self._pending:
                        poller.unregister(self.in_w)
                    continue
                block = os.read(fd, 1 << 16)
                if fd == self.err_r:
                    if block:
                        self.stderr = (self.stderr + block)[-_STDERR_KEEP:]
                    else:
                        poller.unregister(fd)
                        os.close(fd)
                        self.err_r = None
                    continue
                if not block:
                    self._drain_stderr()
                    return False
                self._out += block
                return True
        return True

    def _drain_stderr(self):
        import select

        while self.err_r is not None and select.select([self.err_r], [], [], 1.0)[0]:
            block = os.read(self.err_r, 1 << 16)
            if not block:
                break
            self.stderr = (self.stderr + block)[-_STDERR_KEEP:]

    def hang_up(self):
        """Close our ends of the pipes: the child reads the end of its stdin and exits."""
        for fd in (self.in_w, self.out_r, self.err_r):
            if fd is not None:
                os.close(fd)
        self.in_w = self.out_r = self.err_r = None

    def close(self, kill=False):
        """End the child and reap it; ``kill`` signals it first (sudo relays the signal)."""
        import signal

        if self.pid is None:
            return
        if kill:
            _signal(self.pid, signal.SIGTERM)
        self.hang_up()
        end = time.monotonic() + (2.0 if kill else 10.0)
        pause = 0.0005
        while not os.waitpid(self.pid, os.WNOHANG)[0]:
            if time.monotonic() > end:
                _signal(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                break
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        self.pid = None


def _signal(pid, sig):
    """Signal the child's session (sudo relays what it gets to the command it started)."""
    for target in (lambda: os.killpg(pid, sig), lambda: os.kill(pid, sig)):
        try:
            target()
        except OSError:
            pass


def _spawn(argv):
    """Start ``argv`` in a new session with pipes on 0, 1 and 2: (pid, stdin, stdout, stderr)."""
    import signal

    from .lowlevel import check_stopped

    check_stopped()

    env = dict(os.environ)
    path = program(argv[0], env)
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        if hasattr(os, "posix_spawn"):
            try:
                pid = os.posix_spawn(path, argv, env,
                                     file_actions=[(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                                                   (os.POSIX_SPAWN_DUP2, err_w, 2)],
                                     setsid=True, setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
            except NotImplementedError:  # a libc without POSIX_SPAWN_SETSID
                pid = None
        else:
            pid = None
        if pid is None:
            import subprocess

            pid = subprocess.Popen(argv, stdin=in_r, stdout=out_w, stderr=err_w, env=env,
                                   start_new_session=True).pid
    except BaseException:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    return pid, in_w, out_r, err_r


def _sudo_asks(user, password, exe=None):
    """Whether sudo wants a password to run as ``user`` (False: passwordless, ``-n`` works);
    raises ModuleFailure when it refuses ``password``."""
    import subprocess

    from .context import ModuleFailure

    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    try:
        import shlex

        sudo = shlex.split(exe) if exe else ["sudo"]
        if subprocess.run(sudo + ["-n", "-u", user, "--", "true"], stdin=subprocess.DEVNULL, **quiet).returncode == 0:
            return False
        proc = subprocess.run(sudo + ["-S", "-k", "-p", "", "-u", user, "--", "true"],
                              input=(password + "\n").encode("utf-8"), **quiet)
    except OSError as exc:
        raise ModuleFailure(f"become: cannot run sudo: {exc}") from exc
    if proc.returncode != 0:
        text = proc.stderr.decode("utf-8", "replace").strip()
        last = text.splitlines()[-1] if text else f"exit {proc.returncode}"
        raise ModuleFailure(f"become: sudo refused the become password to run as '{user}': {last}")
    return True


def _b64(data):
    import base64

    return base64.b64encode(data).decode("ascii")


def _answer(compute):
    """A reply to a child's request: ``compute()``'s fields, or the module failure it raised."""
    from .context import ModuleFailure

    try:
        reply = compute()
    except ModuleFailure as exc:
        return {"op": "error", "msg": exc.msg}
    reply["op"] = "ok"
    return reply


def _task_file(ctx, sha256):
    from .context import ModuleFailure

    if sha256 not in set(ctx.files.values()):
        raise ModuleFailure(f"embedded file {sha256} does not belong to this task")
    return ctx.read_file(sha256)


def _render(ctx, text, extra, overrides=None):
    """``ctx.render`` for a child's template module: ``text`` must be one of the task's own
    embedded files, ``extra`` names only its ``src`` and ``dest`` (plain text), and
    ``overrides`` only Jinja2 syntax options, so a child never has the parent evaluate a template
    of its own making. The template_* variables are derived here, as the module would."""
    from .context import ModuleFailure
    from .lookups import template_file_vars
    from .templating import OVERRIDE_DEFAULTS, embedded, is_template

    sources = set()
    for sha in set(ctx.files.values()):
        sources.add(ctx.read_file(sha).decode("utf-8", "surrogateescape"))
    if not isinstance(text, str) or text not in sources:
        raise ModuleFailure("become: a render request for a text that is not one of this task's templates")
    extra = extra or {}
    if not isinstance(extra, dict) or set(extra) - set(_TEMPLATE_VARS) or any(
            not isinstance(v, str) or is_template(v) for v in extra.values()):
        raise ModuleFailure("become: a render request with variables the template module does not set")
    overrides = overrides or {}
    if not isinstance(overrides, dict) or any(
            k not in OVERRIDE_DEFAULTS or not (v is None or isinstance(v, (str, bool))) for k, v in overrides.items()):
        raise ModuleFailure("become: a render request with options the template module does not set")
    path = extra.get("template_path", "")
    scope = ctx.vars if hasattr(ctx.vars, "raw") else None
    info = (embedded(scope, "sources").get(path) or {}) if scope is not None else {}
    full = template_file_vars(path, info, extra.get("template_destpath"), scope)
    return ctx.render(text, full, overrides or None)


# ------------------------------------------------------------------------------------- child

class _Channel:
    """The child's end: one JSON object per line on the parent's pipes."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer

    def send(self, obj):
        self.writer.write(_encode(obj))
        self.writer.flush()

    def recv(self):
        import json

        line = self.reader.readline()
        if not line:
            return None
        return json.loads(line.decode("utf-8"))

    def call(self, obj):
        self.send(obj)
        reply = self.recv()
        if reply is None:
            raise SystemExit(0)  # the parent went away
        return reply


class _Finder:
    """Imports ``rustle_runtime.*`` from code the parent sends (the artifact is not readable here)."""

    def __init__(self, channel):
        self.channel = channel
        self.code = {}

    def find_spec(self, name, path=None, target=None):
        from importlib.machinery import ModuleSpec

        if name != "rustle_runtime" and not name.startswith("rustle_runtime."):
            return None
        module = self.channel.call({"op": "import", "name": name}).get("module")
        if not module:
            return None
        self.code[name] = module[1]
        return ModuleSpec(name, self, origin="<rustle>/" + name, is_package=bool(module[2]))

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        import base64
        import marshal

        exec(marshal.loads(base64.b64decode(self.code.pop(module.__name__))), module.__dict__)


def child_main(reader, writer):
    """The child's loop: serve ``task`` requests until the parent closes our stdin."""
    import signal

    # keep the channel to ourselves: stray output goes to stderr, stdin reads nothing
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    channel = _Channel(reader, writer)
    sys.meta_path.append(_Finder(channel))

    def _terminate(signum, frame):
        raise SystemExit(128 + signum)  # unwinds through spawn(), which ends the task's commands

    signal.signal(signal.SIGTERM, _terminate)
    state = {"tmpdir": None, "facts": None}
    try:
        while True:
            request = channel.recv()
            if request is None:
                return
            channel.send({"op": "result", "result": _child_task(channel, request, state)})
    finally:
        if state["tmpdir"]:
            import shutil

            shutil.rmtree(state["tmpdir"], ignore_errors=True)


def _child_task(channel, request, state):
    from .context import ModuleContext, ModuleFailure, call_module

    class _Host:
        host = request.get("host")
        verbosity = request.get("verbosity") or 0

    class _ChildContext(ModuleContext):
        """ModuleContext as the become user: files and templates come from the parent."""

        def facts(self, key=None, refresh=False, collectors=None, timeout=None):
            from .facts import COLLECTOR_NAMES, collector_of, gather

            if state["facts"] is None:
                state["facts"], state["collected"] = {}, set()
            if collectors is None:
                name = key[8:] if key and key.startswith("ansible_") else None
                collectors = ({collector_of(name)} - {None}) if name else set(COLLECTOR_NAMES)
            wanted = set(collectors) if refresh else set(collectors) - state["collected"]
            if wanted:
                state["facts"].update(gather(wanted, timeout=timeout or 10, facts=state["facts"]))
                state["collected"] |= wanted
            return state["facts"]

        def read_file(self, sha256):
            reply = channel.call({"op": "read_file", "sha256": sha256})
            if reply.get("op") != "ok":
                raise ModuleFailure(str(reply.get("msg")))
            import base64

            return base64.b64decode(reply["data"])

        def render(self, text, extra_vars=None, overrides=None):
            names = {k: v for k, v in (extra_vars or {}).items() if k in _TEMPLATE_VARS and isinstance(v, str)}
            reply = channel.call({"op": "render", "text": text, "extra": names, "overrides": overrides or {}})
            if reply.get("op") != "ok":
                raise ModuleFailure(str(reply.get("msg")))
            return reply["text"]

        def template(self, value, extra_vars=None):
            raise ModuleFailure("templating is not available to a module running as the become user")

        evaluate = condition = template

        @property
        def tmpdir(self):
            if state["tmpdir"] is None:
                import tempfile

                state["tmpdir"] = tempfile.mkdtemp(prefix="rustle-")
            return state["tmpdir"]

    task = dict(request.get("task") or {}, files=request.get("files") or {})
    timeout = request.get("timeout")
    deadline = time.monotonic() + timeout if timeout else None
    ctx = _ChildContext(_Host(), task, None, request.get("check"), request.get("diff"),
                        environment=request.get("environment"), deadline=deadline)
    own = request.get("own")
    if own:
        from .modules.bridge import run_own_source

        name = str(request.get("module"))
        return call_module(name, ctx, request.get("args") or {}, timeout,
                           lambda c, a: run_own_source(c, a, own["fqcn"], own["source"], name))
    return call_module(str(request.get("module")), ctx, request.get("args") or {}, timeout)
