"""ModuleContext: everything a module function may use on the host, and nothing more.

A module is ``fn(ctx, args) -> dict`` (see ``modules/__init__.py``). It reads the task's state
from ``ctx`` (check/diff mode, variables, facts, embedded files), runs commands through
``ctx.run_command`` (which applies the task's ``environment`` and ``timeout``), and reports a
failure either by returning ``{"failed": True, "msg": ...}`` or by raising ``ModuleFailure``.
``call_module`` runs one and turns whatever it raises into Ansible's failed result; the
executor calls it in process, ``become.py`` in a child running as the task's become_user.
"""

import os
import sys
import time

_VAR = None


def _expandvars(text, env):
    """``os.path.expandvars`` over ``env`` instead of this process's environment."""
    global _VAR
    if "$" not in text:
        return text
    if _VAR is None:
        import re

        _VAR = re.compile(r"\$(\w+|\{[^}]*\})", re.ASCII)
    out, i = [], 0
    for match in _VAR.finditer(text):
        name = match.group(1)
        name = name[1:-1] if name.startswith("{") else name
        if name in env:
            out.append(text[i:match.start()])
            out.append(env[name])
            i = match.end()
    out.append(text[i:])
    return "".join(out)


class ModuleFailure(Exception):
    """Raise from a module to fail the task: ``raise ModuleFailure("msg", rc=1)``."""

    def __init__(self, msg, **result):
        Exception.__init__(self, msg)
        self.msg = msg
        self.result = result


class TaskTimeout(Exception):
    """The task's ``timeout`` passed."""


class ModuleContext:
    """The host-side API a module is given; one per task (per loop item)."""

    def __init__(self, runner, task, scope, check_mode, diff_mode, environment=None,
                 deadline=None):
        self._runner = runner
        self.task = task
        self.host = runner.host
        self.vars = scope
        self.check_mode = bool(check_mode)
        self.diff_mode = bool(diff_mode)
        self.verbosity = runner.verbosity
        self.files = dict(task.get("files") or {})
        self._late = {}  # sha256 -> bytes of the run_time_files the controller sent
        self.late_sources = {}  # their name -> controller details (a template's ``sources``)
        self.late_trees = {}  # their name -> a copy src directory (compiler/sources.walk_tree)
        self.late_names = set()  # those named over the host's data, as rendered here
        self.late_locked = {}  # their name -> ansible-core's words for a vault file no secret opened
        render = task.get("run_time_render") or {}
        for name in task.get("run_time_files") or ():
            if name in render:  # the controller rendered it as the host does (fleetops)
                name = self._late_name(name, scope)
                if name is None:
                    continue
                self.late_names.add(name)
            found = runner.run_time_file(name)
            if found is not None:
                self.files.setdefault(name, found[0])
                self._late[found[0]] = found[1]
                self.late_sources[name] = found[2]
                continue
            tree = runner.run_time_tree(name)
            if tree is not None:
                self.late_trees[name] = tree[0]
                self._late.update(tree[1])
                continue
            locked = (runner.inject.get("locked") or {}).get(name)
            if isinstance(locked, str):
                self.late_locked[name] = locked
        self.environment = {str(k): str(v) for k, v in (environment or {}).items()}
        self.python = None  # the interpreter discovered for a task's own auto* mode (modules/bridge.py)
        self._become_keywords = (bool(task.get("become", False)), task.get("become_user") or "root",
                                 task.get("become_method") or "sudo")
        self._become = None  # (become, user, method) once the variables are read
        self.become_exe = task.get("become_exe")  # None: the method's own program
        self.become_flags = task.get("become_flags")  # None: the method's default flags
        self.deadline = deadline
        self.warnings = []
        self.async_job = False  # the module runs as an async job (jobs.run): its stderr joins its result

    def _late_name(self, name, scope):
        """A ``run_time_render`` name rendered over the task's variables; None when it does
        not render (the task's module then says so in its own words)."""
        from .templating import TemplateError

        try:
            rendered = self._runner.templar.template(name, scope)
        except (TemplateError, KeyError):
            return None
        return rendered if isinstance(rendered, str) else None

    # ---------------------------------------------------------------- become

    def _become_settings(self):
        """``(become, become_user, become_method)``: the ``ansible_become``,
        ``ansible_become_method`` and ``ansible_become_user`` (or ``ansible_<method>_user``)
        variables over the task's keywords, as ansible-core's PlayContext applies them."""
        if self._become is None:
            from .become import variable
            from .filters import to_bool

            become, user, method = self._become_keywords
            found = variable(self, "ansible_become")
            become = become if found is None else to_bool(found)
            found = variable(self, "ansible_become_method")
            method = method if found is None else str(found)
            found = variable(self, "ansible_become_user", f"ansible_{method}_user")
            self._become = (become, user if found is None else str(found), method)
        return self._become

    @property
    def become(self):
        return self._become_settings()[0]

    @property
    def become_user(self):
        return self._become_settings()[1]

    @property
    def become_method(self):
        return self._become_settings()[2]

    # ---------------------------------------------------------------- data

    def facts(self, key=None, refresh=False, collectors=None, timeout=None):
        """The host's facts, ``ansible_``-prefixed, gathered when first asked for (``key``: the
        one fact needed; ``collectors``: those to run; neither: all)."""
        return self._runner.facts(key=key, refresh=refresh, collectors=collectors, timeout=timeout)

    def read_file(self, sha256):
        """The bytes of the embedded file ``files/<sha256>``; checked against its name."""
        from .lowlevel import hexdigest
        from .payload import PayloadError

        if sha256 in self._late:
            return self._late[sha256]
        try:
            data = self._runner.payload.read("files/" + sha256)
        except PayloadError as exc:
            raise ModuleFailure(f"embedded file {sha256} is missing from the artifact") from exc
        if hexdigest("sha256", data) != sha256:
            raise ModuleFailure(f"embedded file {sha256} is corrupt (sha256 mismatch); "
                                "hint: redeploy the artifact")
        return data

    def source(self, src):
        """The bytes of a ``copy``/``template`` ``src`` as written in the task."""
        sha = self.files.get(src)
        if sha is None:
            raise ModuleFailure("src '{}' was not embedded in the artifact (embedded: {})".format(src, ", ".join(sorted(self.files)) or "none"))
        return self.read_file(sha)

    # ---------------------------------------------------------------- templating

    def render(self, text, extra_vars=None, overrides=None):
        """Render ``text`` as a Jinja2 template with the task's variables (+ ``extra_vars``)
        and Jinja2 syntax ``overrides`` (templating.OVERRIDE_DEFAULTS)."""
        from .templating import TemplateError

        scope = self.vars.child(extra_vars) if extra_vars else self.vars
        try:
            return self._runner.templar.render(text, scope, overrides)
        except TemplateError as exc:
            if str(exc).startswith("Syntax error in template:"):  # ansible-core 2.19's words
                raise ModuleFailure(f"Task failed: {exc}") from exc
            raise ModuleFailure(f"AnsibleUndefinedVariable: {exc}" if "undefined" in str(exc)
                                else f"template error: {exc}") from exc

    def template(self, value, extra_vars=None):
        """Template ``value`` (any structure) as task arguments are templated."""
        scope = self.vars.child(extra_vars) if extra_vars else self.vars
        return self._runner.templar.template(value, scope)

    def evaluate(self, expression):
        """The value of a bare Jinja2 expression; TemplateError when it cannot be evaluated."""
        return self._runner.templar.evaluate(expression, self.vars)

    def condition(self, expression):
        """Ansible's conditional evaluation (``when``, ``assert that``)."""
        return self._runner.templar.condition(expression, self.vars)

    # ---------------------------------------------------------------- effects

    @property
    def tmpdir(self):
        """A private temporary directory, removed when the run ends."""
        return self._runner.tmpdir()

    def warn(self, msg):
        self.warnings.append(str(msg))

    def atomic_write(self, path, data, mode=None):
        """Write ``data`` to ``path`` atomically (temp file beside it, rename; as Ansible's
        ``atomic_move``, not fsynced)."""
        from .lowlevel import mkstemp

        directory = os.path.dirname(os.path.abspath(path)) or "."
        fd, tmp = mkstemp(directory, f".{os.path.basename(path)}.")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            if mode is not None:
                os.chmod(tmp, mode)
            elif os.path.exists(path):
                os.chmod(tmp, os.stat(path).st_mode & 0o7777)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(tmp, 0o666 & ~umask)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def run_command(self, args, shell=False, cwd=None, data=None, env=None, executable=None,
                    expand=True):
        """Run ``args`` (a list, or a string split like a shell would) and return
        ``(rc, stdout, stderr)`` as text. ``shell=True`` runs a string through ``/bin/sh -c``
        (or ``executable``). ``data`` (bytes or str) is fed on stdin. Honours the task's
        ``environment`` and ``timeout``; ``become`` is already applied: a module that needs
        another user runs as that user (``become.py``).
        """
        import shlex

        from .lowlevel import Timeout, spawn

        full_env = dict(os.environ)
        full_env.update(self.environment)
        if env:
            full_env.update({str(k): str(v) for k, v in env.items()})
        if shell:
            if not isinstance(args, str):
                args = " ".join(shlex.quote(str(a)) for a in args)
            argv = [executable or "/bin/sh", "-c", args]
        else:
            argv = shlex.split(args) if isinstance(args, str) else [str(a) for a in args]
            if expand:  # as the command module, whose environment holds the task's
                argv = [os.path.expanduser(_expandvars(a, full_env)) for a in argv]
        if isinstance(data, str):
            data = data.encode("utf-8")
        timeout = None
        if self.deadline is not None:
            timeout = max(0.01, self.deadline - time.monotonic())
        try:
            returncode, out, err = spawn(argv, full_env, data=data, cwd=cwd, timeout=timeout)
        except Timeout as exc:
            raise TaskTimeout() from exc
        except OSError as exc:
            raise ModuleFailure(f"[Errno {exc.errno}] {exc.strerror}: {argv[0]!r}",
                                rc=exc.errno or 2, cmd=argv, stdout="", stderr="") from exc
        return returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def module_function(name):
    """The function implementing module ``name``; ModuleFailure when there is none here."""
    from .modules import FAMILIES

    family = FAMILIES.get(name)
    if family is None:
        raise ModuleFailure("couldn't resolve module/action '{}'. This runtime implements: {}".format(name, ", ".join(sorted(FAMILIES))))
    import importlib

    try:
        mod = importlib.import_module(".modules." + family, __package__)
    except ImportError as exc:
        raise ModuleFailure(f"module '{name}' (family '{family}') is not included in this artifact; "
                            f"hint: rebuild it, the compiler only embeds the families the plan uses ({exc})") from exc
    fn = getattr(mod, "MODULES", {}).get(name)
    if fn is None:
        raise ModuleFailure(f"module '{name}' is listed in family '{family}' but not implemented there")
    return fn


def timed_out(timeout):
    """The result of a task its ``timeout`` keyword stopped, as ansible-core words it."""
    period = int(timeout) if float(timeout) == int(timeout) else timeout
    return {"failed": True, "changed": False, "msg": f"Task failed: Timed out after {period} second(s).",
            "timedout": {"frame": "Configure `DISPLAY_TRACEBACK` to see a traceback on timeout errors.",
                         "period": period}}


def call_module(name, ctx, args, timeout=None, fn=None):
    """Run module ``name`` (``fn``, else the runtime's own implementation) with ``args``; its
    result dict, or Ansible's failed result for whatever it raised (``timeout`` seconds end it
    with TaskTimeout's message; the runtime's own modules' no_log parameter values hidden in it)."""
    own = fn is None  # a bridged module (ansible-core's code) hides them itself
    alarm = _Alarm(timeout)
    try:
        fn = fn or module_function(name)
        with alarm:
            result = fn(ctx, args)
        if not isinstance(result, dict):
            raise TypeError(f"module {name} returned {type(result).__name__!r}, not a dict")
    except ModuleFailure as exc:
        result = {"changed": False}
        result.update(exc.result)
        result["failed"] = True
        result["msg"] = exc.msg
    except TaskTimeout:
        result = timed_out(timeout)
    except Exception as exc:
        templating = sys.modules.get(__package__ + ".templating")  # only raised once it is loaded
        if templating is not None and isinstance(exc, templating.TemplateError):
            result = {"failed": True, "changed": False, "msg": str(exc)}
        else:  # ansible-core 2.19's words; `exception` as it shows without tracebacks enabled
            result = {"failed": True, "changed": False, "msg": f"Task failed: Module failed: {exc}",
                      "exception": "(traceback unavailable)"}
    if ctx.warnings:
        result.setdefault("warnings", []).extend(ctx.warnings)
    if own:  # as AnsibleModule: the values of no_log parameters never leave the module
        from .modules import _common

        result = _common.remove_values(result, _common.no_log_values(name, args))
    return result


class _Alarm:
    """Raise TaskTimeout in the main thread when ``timeout`` seconds pass (no-op without one)."""

    def __init__(self, timeout):
        self.timeout = float(timeout) if timeout else None
        self.previous = None

    def _fire(self, signum, frame):
        raise TaskTimeout()

    def __enter__(self):
        if self.timeout and hasattr(os, "getpid"):
            import signal

            self.previous = signal.signal(signal.SIGALRM, self._fire)
            signal.setitimer(signal.ITIMER_REAL, self.timeout)
        return self

    def __exit__(self, *exc):
        if self.timeout:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous or signal.SIG_DFL)
        return False
