"""The module bridge on the host: run a module the runtime does not implement, as Ansible runs it.

The compiler embeds each bridged module once per artifact (``plan.json`` ``bridge.modules``
says how each runs): a Python module built on ``AnsibleModule`` under ``bridge/lib/`` with
exactly the ``module_utils`` it imports (an import root, as AnsiballZ's zip is), anything else as
``bridge/bin/<sha256>``. A task runs its module in a child process with Ansible's module
protocol, which is the only safe way: a module calls ``sys.exit``, reads its arguments from
module globals and may replace stdin, signals or the working directory.

- new style (``AnsibleModule``): ``python -c BOOT LIB FQN PROFILE`` with ``{"ANSIBLE_MODULE_ARGS":
  ...}`` on stdin; BOOT hands it to ansible-core's own AnsiballZ loader, which runs the module
  as ``__main__`` (``runpy``), exactly as the AnsiballZ wrapper does after unzipping;
- ``WANT_JSON`` and binary modules: the arguments as a JSON file, its path the last argument;
- old style: the arguments as a ``key=value`` file (values shell-quoted), as Ansible writes it.

The arguments carry Ansible's internal ``_ansible_*`` keys (check mode, diff, no_log, verbosity,
version, module name, tmpdir...). The result is read as Ansible reads it
(``ActionBase._parse_returned_data``): junk around the JSON is dropped with a warning, internal
keys are removed, ``failed`` defaults to ``rc != 0``. Standard library only, Python 3.8 syntax.
"""

import json
import os
import sys

# The child's preamble: what the AnsiballZ wrapper does before it runs a module.
_PREAMBLE = r"""
import os, sys
_args = sys.argv[1:]
lib = _args[0]
try:
    os.getcwd()
except OSError:
    os.chdir(os.path.expanduser("~"))
sys.argv = [_args[1] if len(_args) > 1 else "rustle-bridge"]
sys.path = [lib] + [p for p in sys.path if p not in ("", ".")]
try:
    from ansible.module_utils._internal._ansiballz import _loader
except ImportError:  # ansible-core before 2.19
    _loader = None

def run_module(params, fqn, profile):
    if _loader is not None:
        _loader.run_module(json_params=params, profile=profile, module_fqn=fqn, modlib_path=lib, extensions={})
    import runpy
    from ansible.module_utils import basic
    basic._ANSIBLE_ARGS = params
    runpy.run_module(mod_name=fqn, init_globals=dict(_module_fqn=fqn, _modlib_path=lib),
                     run_name="__main__", alter_sys=True)
    raise SystemExit("New-style module did not handle its own exit.")
"""

# One module, one process: ``python -c BOOT LIB FQN PROFILE`` with the arguments on stdin.
BOOT = _PREAMBLE + r"""
params = sys.stdin.buffer.read()
fd = os.open(os.devnull, os.O_RDONLY)
os.dup2(fd, 0)
os.close(fd)
run_module(params, _args[1], _args[2])
"""

# The fork server: ``python -c FORKSERVER LIB SOCKET KEEP PROFILE...``. It imports
# ansible.module_utils.basic once (and the serialization profiles the artifact's modules use,
# which every module imports when it reads its arguments and writes its result), then forks a
# child per request (one JSON line: params, fqn, profile, env, cwd, umask, out, err); the child
# runs the module with its stdout and stderr in those files, as BOOT would. It answers
# ``{"pid": N}`` at the fork and ``{"rc": N}`` when the child ends.
#
# SOCKET ``-``: the requests come on stdin and the answers go to stdout, for this run only.
# Otherwise the server is kept between runs (``rustle_bridge_keep``, on by default): it detaches
# (its own session, not a child of the run), listens on the unix socket SOCKET in a private
# directory, says ``{"ready": true}`` on stdout once it does, and serves each run (connection) of
# its own uid in a session forked for it, so that runs at the same time do not wait for each other,
# each greeted with ``{"ready": true, "pid": SERVER}``; it ends after KEEP seconds without a run,
# LIFETIME seconds after it started (the runs it serves then go on), when its artifact is gone,
# when its socket is no longer its own, or when a run asks ``{"exit": true}`` (--cleanup). A run
# that goes away while a module runs takes the module with it (killpg).
FORKSERVER = _PREAMBLE + r"""
import json
sock_path, keep = _args[1], float(_args[2])
kept = sock_path != "-"
conn = None
LIFETIME = 3600.0
if kept and os.fork():
    os._exit(0)  # the run reaps this one at once: the server is nobody's child
from ansible.module_utils import basic
try:
    from ansible.module_utils.common.json import Direction, get_module_decoder, get_module_encoder
    for _profile in _args[3:]:
        get_module_decoder(_profile, Direction.CONTROLLER_TO_MODULE)
        get_module_encoder(_profile, Direction.MODULE_TO_CONTROLLER)
except ImportError:  # ansible-core before 2.19
    pass
fd = os.open(os.devnull, os.O_RDWR)
if not kept:
    control = os.fdopen(os.dup(0), "rb")
    answer = os.dup(1)
else:
    import select, signal, socket, struct
    os.setsid()
    os.chdir("/")  # each module runs in the cwd its run sends
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        os.unlink(sock_path)
    except OSError:
        pass
    listener.bind(sock_path)
    os.chmod(sock_path, 0o600)
    listener.listen(4)
    listener.settimeout(min(keep, 10.0))  # a look every 10 s: is the socket still ours?
    ident = os.stat(sock_path).st_ino
    artifact = os.path.dirname(os.path.dirname(lib))
    server_pid = os.getpid()
    os.write(1, b'{"ready": true}\n')
os.dup2(fd, 0)
os.dup2(fd, 1)
os.close(fd)

def say(obj):
    data = (json.dumps(obj) + "\n").encode()
    while data:
        data = data[os.write(answer, data):]

def child(req):
    for name, fd in (("out", 1), ("err", 2)):
        f = os.open(req[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    if not kept:
        os.close(answer)
        control.close()
    else:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for f in (wake_r, wake_w):
            os.close(f)
        conn.close()
        listener.close()
        if req.get("cwd"):
            try:
                os.chdir(req["cwd"])
            except OSError:
                pass
        if req.get("umask") is not None:
            os.umask(req["umask"])
    os.setsid()
    os.environ.clear()
    os.environ.update(req["env"])
    sys.argv = [req["fqn"]]
    code = 1
    try:
        run_module(req["params"].encode(), req["fqn"], req["profile"])
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            sys.stderr.write(str(exc.code) + "\n")
    except BaseException:
        import traceback
        traceback.print_exc()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(code & 0xFF)

def exit_code(status):
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") \
        else (os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status))

def wait(pid):
    # the child's status; None when the run went away meanwhile (the child is then killed)
    if not kept:
        return os.waitpid(pid, 0)[1]
    while True:
        ended, status = os.waitpid(pid, os.WNOHANG)
        if ended:
            return status
        ready = select.select([conn, wake_r], [], [])[0]
        if wake_r in ready:
            try:
                os.read(wake_r, 512)
            except OSError:
                pass
        if conn in ready and not conn.recv(1, socket.MSG_PEEK):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:  # not yet its own session leader (setsid): the child alone
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            os.waitpid(pid, 0)
            return None

def serve(lines):
    for line in lines:
        req = json.loads(line)
        if req.get("exit"):
            return False
        pid = os.fork()
        if pid == 0:
            child(req)
        say({"pid": pid})
        status = wait(pid)
        if status is None:
            break
        say({"rc": exit_code(status)})
    return True

def ours():
    try:
        return os.stat(sock_path).st_ino == ident and os.path.exists(artifact)
    except OSError:
        return False

def session():
    # one run's connection, in a process forked for it: its modules are forked from here; it
    # never returns (whatever a request holds, it must not go on as a second server)
    global answer, wake_r, wake_w
    try:
        listener.close()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_w)
        answer = conn.fileno()
        say({"ready": True, "pid": server_pid})
        if not serve(conn.makefile("rb")):  # --cleanup: no new run reaches the server, which ends
            if ours():
                os.unlink(sock_path)
            if os.getppid() == server_pid:  # still its server (not one that ended, its pid reused)
                os.kill(server_pid, signal.SIGTERM)
    except BaseException:
        import traceback
        traceback.print_exc()  # to the server's log
    finally:
        os._exit(0)

if not kept:
    say({"ready": True})
    serve(control)
else:
    import time
    started = idle_since = time.monotonic()
    sessions = set()
    while ours():
        for pid in list(sessions):
            try:
                ended = os.waitpid(pid, os.WNOHANG)[0]
            except ChildProcessError:
                ended = pid
            if ended:
                sessions.discard(pid)
                idle_since = time.monotonic()
        now = time.monotonic()
        if now - started >= LIFETIME or (not sessions and now - idle_since >= keep):
            break
        try:
            conn, _ = listener.accept()
        except (socket.timeout, InterruptedError):
            continue
        try:
            conn.settimeout(None)
            uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid == os.getuid():
                pid = os.fork()
                if pid == 0:
                    session()
                sessions.add(pid)
        except OSError:
            pass
        finally:
            conn.close()
        listener.settimeout(1.0 if sessions else min(keep, 10.0))  # sessions are reaped between accepts
    if ours():
        os.unlink(sock_path)
# The run is over: tearing down every module ansible-core imported costs about 25 ms of CPU per
# host run and leaves nothing to flush (answers are written with os.write, children exited).
os._exit(0)
"""

# Become to another user (``python -c BECOME_BOOT`` through sudo/su): the artifact is private to
# the connecting user, so what the module needs travels on stdin, as AnsiballZ's payload does.
# One JSON line: ``files`` (name -> base64; ``up/NAME``: a file uri uploads), ``argv`` ({DIR}
# is replaced) and the module's ``stdin`` (UPLOADS_DIR, in its JSON, is replaced by the same
# directory: the paths of the uploaded files). The files go to a private directory of the
# become user's, removed at the end.
UPLOADS_DIR = "@@rustle-bridge-dir-" + os.urandom(8).hex() + "@@"
BECOME_BOOT = r"""
import base64, json, os, shutil, subprocess, sys, tempfile
req = json.loads(sys.stdin.buffer.read())
d = tempfile.mkdtemp(prefix="rustle-bridge-")
try:
    for name, data in req["files"].items():
        path = os.path.join(d, name)
        if name.startswith("up/"):
            os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))
        os.chmod(path, 0o700)
    argv = [a.replace("{DIR}", d) for a in req["argv"]]
    stdin = req["stdin"].replace(req["uploads_dir"], json.dumps(d)[1:-1]) if req.get("uploads_dir") else req["stdin"]
    proc = subprocess.run(argv, input=stdin.encode())
finally:
    shutil.rmtree(d, ignore_errors=True)
sys.exit(proc.returncode)
"""

MODULES = {}


def module_function(bridge, fqcn):
    """The module function (``fn(ctx, args)``) running ``fqcn`` as ``bridge`` in plan.json says."""
    spec = (bridge.get("modules") or {}).get(fqcn)

    def run(ctx, args):
        if spec is None:
            return {"failed": True, "changed": False,
                    "msg": f"module '{fqcn}' is not embedded in this artifact; hint: recompile it"}
        return run_module(ctx, args, spec, bridge)

    return run


def run_module(ctx, args, spec, bridge):
    name = ctx.task.get("module") or spec["fqcn"]
    if spec.get("style") == "rustle":
        return run_own(ctx, args, spec, name)
    if spec.get("style") == "action":
        return run_action(ctx, args, spec, bridge)
    if spec.get("check_mode") is False and ctx.check_mode:
        # the action plugin (uri) refuses check mode before the module runs
        return {"changed": False, "skipped": True, "_action_skip": True,
                "msg": f"This action ({name}) does not support check mode."}
    task_tmp = _mkdtemp(ctx.tmpdir)
    try:
        uploads = {}  # for a become_user who cannot read task_tmp: sent with the module (_run_elsewhere)
        if spec.get("module_fqn") == "ansible.modules.uri" and ctx.files:
            args = _uploads(ctx, args, task_tmp, uploads)
        module_args = _module_args(ctx, args, spec, bridge, name, task_tmp)
        rc, out, err = _execute(ctx, spec, module_args, task_tmp, uploads)
    finally:
        import shutil

        shutil.rmtree(task_tmp, ignore_errors=True)
    result = parse_result(rc, out, err)
    if err and getattr(ctx, "async_job", False) and "module_stderr" not in result:
        result["stderr"] = err  # ansible-core's async_wrapper puts a module's stderr in its job's result
    return result


def _uploads(ctx, args, task_tmp, uploads):
    """uri's action plugin: the controller file of ``src`` (unless ``remote_src``), else of each
    form-multipart field with a ``filename`` and no ``content`` (embedded by the compiler under
    its name as written), written into the task's temporary directory under its base name; the
    module is given that path instead. For a become_user who cannot read that directory, the
    files go into ``uploads`` instead (name -> bytes), and the path names the directory the
    module gets as that user (``_run_elsewhere``: UPLOADS_DIR there)."""
    from ._common import boolean, embedded_source

    def put(name):
        base = os.path.basename(str(name))
        if _become_elsewhere(ctx):
            uploads["up/" + base] = embedded_source(ctx, args, name)
            return UPLOADS_DIR + "/up/" + base
        path = os.path.join(task_tmp, base)
        with open(path, "wb") as fh:
            fh.write(embedded_source(ctx, args, name))
        return path

    if boolean(args.get("remote_src", False), "remote_src"):
        return args
    if args.get("src"):
        return dict(args, src=put(args["src"]))
    body = args.get("body")
    if args.get("body_format") != "form-multipart" or not isinstance(body, dict):
        return args
    body = dict(body)
    for field, value in body.items():
        if isinstance(value, dict) and value.get("filename") and not value.get("content"):
            body[field] = dict(value, filename=put(value["filename"]))
    return dict(args, body=body)


# ----------------------------------------------------------- action plugins on the controller

# set by the controller for a phase it runs itself: the command that runs one call of an
# Ansible action plugin with its ansible-core (rustle_deploy/bridge/action.py)
ACTION_RUNNER = "RUSTLE_ACTION_RUNNER"
_NOT_VARS = ("hostvars", "vars", "groups", "group_names", "omit")


def _retag(value):
    """``value`` for the request, with each ``!unsafe`` string of the playbook written as
    ``{"__ansible_unsafe": text}``: ansible-core must not render it (bridge/action.py)."""
    from ..templating import UnsafeText

    if isinstance(value, UnsafeText):
        return {"__ansible_unsafe": str(value)}
    if isinstance(value, dict):
        return {k: _retag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_retag(v) for v in value]
    return value


def _task_vars(ctx):
    """The task's (block's, role's) variables as the call sees them: the delegate's connection
    variables may be among them (an implicit host's ``ansible_connection``, ``ansible_port``...)."""
    out = {}
    for key in ctx.task.get("vars") or {}:
        try:
            out[key] = ctx.vars[key]
        except Exception:  # one that cannot be rendered now: ansible-core says so if it is used
            continue
    return untag(out)


def run_action(ctx, args, spec, bridge=None):
    """One call of an Ansible action plugin, made on the controller by its ansible-core against
    the host (or the host the task is delegated to for this call: ``delegate_to: "{{ item }}"``),
    with the task's rendered arguments and the host's variables as they are now."""
    runner = os.environ.get(ACTION_RUNNER)
    if not runner:
        return {"failed": True, "changed": False,
                "msg": f"action plugin '{spec['action']}' runs on the controller, in a phase of its own; this "
                       "run is not one (hint: run the plan with rustle-deploy --run, not the artifact alone)"}
    variables = {}
    for key in ctx.vars.keys():
        if key in _NOT_VARS or str(key).startswith("_rustle"):
            continue
        try:
            variables[key] = ctx.vars[key]
        except Exception:  # a variable that cannot be rendered now: Ansible renders lazily too
            continue
    for key in ("ansible_facts", "groups", "group_names"):
        value = ctx.vars.get(key)
        if value is not None:
            variables[key] = value
    request = {
        "action": ctx.task.get("module") or spec["fqcn"], "collections": list(spec.get("collections") or ()),
        "plugin_dirs": list(spec.get("plugin_dirs") or ()), "search_path": list(ctx.task.get("search_path") or ()),
        "host": ctx.host, "args": untag(args), "ds": _retag(ctx.task.get("action_ds")),
        "vars": untag(variables), "verbosity": ctx.verbosity, "delegate_to": ctx.task.get("delegate_to"),
        "task_vars": _task_vars(ctx) if ctx.task.get("delegate_to") else {},
        "inventory": list((bridge or {}).get("inventory") or ()), "extra_vars": ctx._runner.plan.get("extra_vars") or {},
        "task": {"name": ctx.task.get("name"), "no_log": bool(ctx.task.get("no_log")),
                 "environment": dict(ctx.environment), "check_mode": bool(ctx.check_mode),
                 "diff": bool(ctx.diff_mode), "become": ctx.become,
                 "become_user": ctx.task.get("become_user"), "become_method": ctx.task.get("become_method")},
    }
    import time

    from ..context import TaskTimeout
    from ..lowlevel import Timeout, spawn
    from ..templating import unsafe

    timeout = None if ctx.deadline is None else max(0.01, ctx.deadline - time.monotonic())
    try:  # the controller's environment: the task's goes to the host, in the request
        rc, stdout, stderr = spawn(json.loads(runner), dict(os.environ),
                                   data=json.dumps(request, default=str).encode("utf-8"), timeout=timeout)
    except Timeout as exc:
        raise TaskTimeout() from exc
    stdout, stderr = stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace")
    try:
        result = json.loads(stdout)
    except ValueError:
        return {"failed": True, "changed": False, "rc": rc,
                "msg": f"ansible-core on the controller failed to run action plugin '{spec['action']}': "
                       + (stderr.strip().splitlines() or ["no output"])[-1]}
    result.setdefault("changed", False)
    for key in ("warnings", "deprecations"):  # ansible-core's objects: their views (templating.MaskedView)
        if isinstance(result.get(key), list):
            result[key] = [unsafe(item) for item in result[key]]
    return result


# ----------------------------------------------------------------- rustle-deploy's own modules

_TRUE = ("1", "true", "yes", "on", "y", "t")
_FALSE = ("0", "false", "no", "off", "n", "f")


def run_own(ctx, args, spec, name):
    """A rustle-deploy module (docs/modules.md): its ``run(ctx, args)`` in this process, after
    the arguments are checked against its ``RUSTLE_MODULE`` declaration. As another become_user
    it runs in that user's become child instead (executor ``_call``, ``run_own_source``)."""
    return _run_loaded(ctx, args, _own_module(ctx, spec), name)


def own_source(ctx, spec):
    """The module's source text (sha256 checked), for a become child."""
    return _read(ctx, spec["entry"]).decode("utf-8")


def run_own_source(ctx, args, fqcn, source, name):
    """``run_own`` in a become child, from the source its parent sent."""
    import types

    module = types.ModuleType("rustle_module")
    module.__file__ = fqcn
    exec(compile(source, fqcn, "exec"), module.__dict__)
    return _run_loaded(ctx, args, module, name)


def _run_loaded(ctx, args, module, name):
    declared = getattr(module, "RUSTLE_MODULE", None) or {}
    params, error = check_args(name, declared.get("args") or {}, args)
    if error:
        return {"failed": True, "changed": False, "msg": error}
    if ctx.check_mode and not declared.get("check_mode"):
        return {"changed": False, "skipped": True, "msg": f"remote module ({name}) does not support check mode"}
    result = module.run(ctx, params)
    if not isinstance(result, dict):
        return {"failed": True, "changed": False,
                "msg": f"{name} returned {type(result).__name__}, not a result dictionary"}
    result = dict(result)
    result.setdefault("changed", False)
    if not (declared.get("diff") and ctx.diff_mode):
        result.pop("diff", None)
    return result


def _own_module(ctx, spec):
    """The module's code (its sha256 checked), executed once per run."""
    import types

    runner = ctx._runner
    loaded = runner.__dict__.setdefault("_own_modules", {})
    entry = spec["entry"]
    if entry not in loaded:
        data = _read(ctx, entry)
        module = types.ModuleType("rustle_module_" + entry.rsplit("/", 1)[-1][:16])
        module.__file__ = spec["fqcn"]
        exec(compile(data, spec["fqcn"], "exec"), module.__dict__)
        loaded[entry] = module
    return loaded[entry]


def check_args(name, declared, args):
    """``(params, None)`` with every declared argument (defaults filled in, values converted to
    their type), or ``(None, message)`` as Ansible's argument checks word it."""
    unknown = sorted(k for k in args if k not in declared)
    if unknown:
        return None, (f"Unsupported parameters for ({name}) module: {', '.join(unknown)}. "
                      f"Supported parameters include: {', '.join(sorted(declared))}.")
    params, missing = {}, []
    for key in sorted(declared):
        options = declared[key] or {}
        value = args.get(key)
        if value is None:
            if options.get("required"):
                missing.append(key)
            params[key] = options.get("default")
            continue
        kind = options.get("type", "str")
        try:
            value = _convert(value, kind)
        except (TypeError, ValueError) as exc:
            return None, (f"argument '{key}' is of type {type(value).__name__} and we were unable to "
                          f"convert to {kind}: {exc}")
        choices = options.get("choices")
        if choices is not None and value not in choices:
            return None, (f"value of {key} must be one of: {', '.join(str(c) for c in choices)}, "
                          f"got: {value}")
        params[key] = value
    if missing:
        return None, "missing required arguments: " + ", ".join(missing)
    return params, None


def _convert(value, kind):
    if kind == "raw":
        return value
    if kind in ("str", "path"):
        if isinstance(value, (dict, list)):
            raise TypeError(f"{value!r} is not a string")
        text = value if isinstance(value, str) else str(value)
        return os.path.expanduser(os.path.expandvars(text)) if kind == "path" else text
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{value!r} is not a valid boolean")
    if kind in ("int", "float"):
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise TypeError(f"{value!r} is not a number")
        number = float(value) if kind == "float" else int(str(value).strip()) if isinstance(value, str) else value
        if kind == "int" and not isinstance(number, int):
            if float(number) != int(number):
                raise ValueError(f"{value!r} is not an integer")
            number = int(number)
        return number
    if kind == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [v.strip() for v in value.split(",")] if value else []
        if isinstance(value, dict):
            raise TypeError(f"{value!r} is not a list")
        return [value]
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise TypeError(f"{value!r} is not a dictionary")
    raise ValueError(f"unknown type {kind!r}")


def _mkdtemp(parent):
    """A private directory for one task (Ansible's remote tmpdir, ``_ansible_tmpdir``)."""
    import binascii

    while True:
        path = os.path.join(parent, "ansible-tmp-" + binascii.hexlify(os.urandom(6)).decode())
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _become_elsewhere(ctx):
    """A become_user that cannot read the artifact nor the run's files (private to the
    connecting user): root can, anyone else gets what the module needs on stdin."""
    return bool(ctx.become) and ctx.become_user not in ("root", _me())


def _module_args(ctx, args, spec, bridge, name, task_tmp):
    """The task's arguments plus the internal ones (ActionBase._update_module_args)."""
    internal = dict(bridge.get("internal") or {})
    no_target_syslog = bool(internal.pop("_ansible_no_target_syslog", False))
    out = {}
    for key, value in args.items():
        if key not in (spec.get("drop_args") or ()):
            out[key] = value
    host_vars = ctx.vars
    out.update({
        "_ansible_check_mode": bool(ctx.check_mode),
        "_ansible_no_log": bool(ctx.task.get("no_log")) or no_target_syslog,
        "_ansible_debug": bool(internal.pop("_ansible_debug", False)),
        "_ansible_diff": bool(ctx.diff_mode),
        "_ansible_verbosity": ctx.verbosity,
        "_ansible_version": internal.pop("_ansible_version", None) or bridge.get("ansible_version") or "",
        "_ansible_module_name": name,
        "_ansible_syslog_facility": _var(host_vars, "ansible_syslog_facility")
                                    or internal.pop("_ansible_syslog_facility", "LOG_USER"),
        "_ansible_selinux_special_fs": internal.pop("_ansible_selinux_special_fs", []),
        "_ansible_socket": None,
        "_ansible_shell_executable": _var(host_vars, "ansible_shell_executable") or "/bin/sh",
        "_ansible_keep_remote_files": bool(internal.pop("_ansible_keep_remote_files", False)),
        # the become user cannot write the run's directory: the module makes its own in
        # _ansible_remote_tmp, as with Ansible's pipelining
        "_ansible_tmpdir": None if _become_elsewhere(ctx) else task_tmp,
        "_ansible_remote_tmp": _var(host_vars, "ansible_remote_tmp") or "~/.ansible/tmp",
        "_ansible_ignore_unknown_opts": False,
        "_ansible_target_log_info": internal.pop("_ansible_target_log_info", None),
        "_ansible_tracebacks_for": internal.pop("_ansible_tracebacks_for", []),
    })
    return out


OMIT = "__omit_place_holder__rustle"  # executor.OMIT: ``{{ omit }}`` rendered


def _var(scope, name):
    try:
        value = scope.get(name)
    except Exception:  # a host variable whose template cannot be rendered: not ours to report
        return None
    return value if value not in ("", None) and value != OMIT else None


def _python(ctx):
    """The interpreter Ansible would use: ansible_python_interpreter, the one discovered for a
    task's own ``auto*`` mode, else the runtime's own (the one the launcher discovered)."""
    if getattr(ctx, "python", None):
        return ctx.python
    configured = _var(ctx.vars, "ansible_python_interpreter")
    if configured and "{{" not in str(configured) and not str(configured).startswith("auto"):
        return str(configured)
    return sys.executable or "python3"


def _execute(ctx, spec, module_args, task_tmp, uploads=None):
    style = spec.get("style")
    if style == "new":
        payload = ctx._runner.payload  # the runtime's own artifact: a zip (zipimport) or a directory
        lib = os.path.join(payload.root, "bridge", "lib")
        params = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}, default=str)
        fqn, profile = spec["module_fqn"], spec.get("profile") or "legacy"
        if _become_elsewhere(ctx):
            return _run_elsewhere(ctx, {"lib.zip": _lib_zip(ctx), **(uploads or {})},
                                  [_python(ctx), "-c", BOOT, "{DIR}/lib.zip", fqn, profile], params)
        server = _fork_server(ctx, lib)
        if server is not None:
            env = dict(os.environ)
            env.update(ctx.environment)
            return server.run(params, fqn, profile, env, task_tmp)
        argv = _become_argv(ctx, [_python(ctx), "-c", BOOT, lib, fqn, profile])
        return _checked(ctx, ctx.run_command(argv, data=params, expand=False))
    if style == "old":
        import shlex

        text = "".join(f"{k}={shlex.quote(_text(v))} " for k, v in module_args.items())
    else:
        text = json.dumps(module_args, default=str)
    if _become_elsewhere(ctx):
        data = _read(ctx, spec["entry"])
        return _run_elsewhere(ctx, {"module": data, "args": text.encode("utf-8")},
                              _interpreter(ctx, spec) + ["{DIR}/module", "{DIR}/args"], "")
    path = _script(ctx, spec)
    args_path = os.path.join(task_tmp, "args")
    with open(args_path, "w") as fh:
        fh.write(text)
    argv = _become_argv(ctx, _interpreter(ctx, spec) + [path, args_path])
    return _checked(ctx, ctx.run_command(argv, expand=False))


def _run_elsewhere(ctx, files, argv, stdin):
    """``argv`` as another become_user, with ``files`` sent on stdin (BECOME_BOOT)."""
    import base64

    request = {"files": {k: base64.b64encode(v).decode("ascii") for k, v in files.items()},
               "argv": argv, "stdin": stdin}
    if any(name.startswith("up/") for name in files):
        request["uploads_dir"] = UPLOADS_DIR
    request = json.dumps(request)
    boot = _become_argv(ctx, [_python(ctx), "-c", BECOME_BOOT])
    return _checked(ctx, ctx.run_command(boot, data=request, expand=False))


def _lib_zip(ctx):
    """``bridge/lib/`` of the artifact as one zip (an import root), made once per content: kept
    in the agent's remote directory as ``bridge/lib-<key>.zip``, the key hashing each entry's
    name and sha256 from manifest.json, so that a later run (or artifact) with the same modules
    reads it instead of compressing ~1 MB again. Without that directory (run by hand), made once
    per run."""
    runner = ctx._runner
    cached = runner.__dict__.get("_bridge_lib_zip")
    if cached is not None:
        return cached
    names = [n for n in runner.payload.names() if n.startswith("bridge/lib/")]
    path = _lib_zip_path(runner, names)
    if path is not None:
        try:
            with open(path, "rb") as fh:
                cached = fh.read()
            os.utime(path)  # in use: _prune_lib_zips keeps it
        except OSError:
            cached = None
    if cached is None:
        import io
        import zipfile

        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in names:
                info = zipfile.ZipInfo(name[len("bridge/lib/"):], (1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, runner.payload.read(name))
        cached = buf.getvalue()
        if path is not None:
            _keep_lib_zip(path, cached)
    runner.__dict__["_bridge_lib_zip"] = cached
    return cached


def _lib_zip_path(runner, names):
    """Where the zip of ``names`` is kept (``state_dir/bridge/lib-<key>.zip``), or None: no
    remote directory, no manifest, or a ``bridge/`` that is not private to this user."""
    import hashlib
    import stat

    state_dir = getattr(runner, "state_dir", None)
    if not state_dir:
        return None
    try:
        entries = runner.payload.read_json("manifest.json").get("entries") or {}
    except Exception:  # an artifact without a manifest (tests, run by hand): no key to trust
        return None
    if not all(isinstance(entries.get(n), str) for n in names):
        return None
    key = hashlib.sha256(json.dumps([[n, entries[n]] for n in names]).encode()).hexdigest()
    directory = os.path.join(state_dir, "bridge")
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError:
        return None
    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return None
    return os.path.join(directory, f"lib-{key[:32]}.zip")


LIB_ZIP_KEEP_SECONDS = 7 * 86400


def _keep_lib_zip(path, data):
    """Write ``data`` at ``path`` atomically, and remove the kept zips no run used for a week."""
    import tempfile
    import time

    directory = os.path.dirname(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-lib-", dir=directory)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        return  # a full disk: the next run makes it again
    now = time.time()
    for name in os.listdir(directory):
        other = os.path.join(directory, name)
        if name.startswith(("lib-", ".tmp-lib-")) and other != path:
            try:
                if now - os.lstat(other).st_mtime > LIB_ZIP_KEEP_SECONDS:
                    os.unlink(other)
            except OSError:
                continue


def _become_argv(ctx, argv):
    """``argv`` run as the task's become_user, through sudo (or su when the runtime runs as
    root) with the task's become_exe and become_flags (become.command). Unchanged without
    become, or when the run already is that user."""
    from .. import become

    if not ctx.become or ctx.become_user == _me():
        return argv
    key = become.identity(ctx, None)
    if key is None:
        return argv
    argv = become.command(*key, argv)
    become.program(argv[0])
    return argv


def _checked(ctx, outcome):
    rc, out, err = outcome
    if ctx.become and rc != 0 and ("a password is required" in err or "a terminal is required" in err):
        from ..context import ModuleFailure

        raise ModuleFailure(f"become: sudo needs a password to run as '{ctx.become_user}' on this host; hint: "
                            f"grant NOPASSWD sudo to the deploying user, or connect as '{ctx.become_user}'",
                            rc=rc, stderr=err)
    return outcome


def _me():
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def prestart(runner):
    """Start the run's fork server before its first task when the artifact has Python modules
    for the bridge, so that its import of ansible.module_utils.basic overlaps the tasks before
    the first bridged one. Only for the runtime's own interpreter and a plain (untemplated)
    setting: anything else waits for the first bridged task, which knows its variables."""
    bridge = runner.plan.get("bridge") or {}
    new = {f for f, m in (bridge.get("modules") or {}).items() if m.get("style") == "new"}
    configured = runner.host_vars.get("ansible_python_interpreter")
    fork = runner.host_vars.get("rustle_bridge_fork")
    if not _unbecome_task(runner.plan, runner.host, new) or not hasattr(os, "fork") \
            or str(fork).lower() in ("false", "no", "0") or "{" in str(fork):
        return
    if configured not in (None, "", sys.executable) and not str(configured).startswith("auto"):
        return
    lib = os.path.join(runner.payload.root, "bridge", "lib")
    _server(runner, sys.executable or "python3", lib, runner.tmpdir())


def _unbecome_task(plan, host, fqcns):
    """Whether one of this host's tasks runs a module of ``fqcns`` without become (only those use
    the fork server; a ``become`` that is a template may be false) and will run unless a task
    before it fails: no ``when`` on it or a block around it, not in a ``rescue``, not a handler.
    A bridged task that may be skipped starts the server when it runs, so a run whose bridged
    tasks are all skipped pays nothing for it."""
    def walk(tasks):
        for task in tasks or ():
            if task.get("when") or task.get("skip_when"):
                continue
            if task.get("bridge") in fqcns:
                become = task.get("become")
                if not become or (isinstance(become, str) and ("{" in become or become.lower() in ("no", "false", "0"))):
                    return True
            for key in ("block", "always"):
                if walk(task.get(key)):
                    return True
        return False

    return any(walk(p.get("tasks")) for p in plan.get("plays") or () if host in (p.get("hosts") or ()))


def _server(runner, python, lib, tmpdir):
    servers = runner.__dict__.setdefault("_bridge_servers", {})
    key = (python, lib)
    if key not in servers:
        profiles = sorted({m.get("profile") or "legacy" for m in
                           ((runner.plan.get("bridge") or {}).get("modules") or {}).values()
                           if m.get("style") == "new"})
        try:
            servers[key] = ForkServer(python, lib, tmpdir, profiles, _kept(runner, python, lib, profiles))
        except OSError as exc:
            servers[key] = exc
        if isinstance(servers[key], ForkServer):
            runner.cleanups.append(servers[key].close)
    return servers[key]


KEEP_SECONDS = 300  # the default of rustle_bridge_keep


def _kept(runner, python, lib, profiles):
    """``(socket path, seconds)`` when the fork server is kept between runs (the host variable
    ``rustle_bridge_keep``, seconds, plain; KEEP_SECONDS when unset), under the agent's remote
    directory: ``bridge/<key>``, the key naming the interpreter (its path and the file it is,
    so that an upgraded Python never serves a run), the artifact and the profiles. None
    otherwise (turned off, run by hand, or a value or place it cannot use: ``_keep_problem``
    says why, and the first bridged task warns when the variable was set)."""
    import hashlib

    value = runner.host_vars.get("rustle_bridge_keep")
    text = str(value if value is not None else KEEP_SECONDS).strip()
    if text.lower() in ("0", "false", "no", "off", "none"):
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf") or isinstance(value, bool):
        return _keep_problem(runner, True, f"rustle_bridge_keep={text!r} is not a number of seconds (written "
                                           "plainly, not a template): the fork server is not kept")
    state_dir = getattr(runner, "state_dir", None)
    if seconds == 0 or not state_dir:
        return None
    from ..lowlevel import which

    real = os.path.realpath(which(python, os.environ) or python)
    try:
        st = os.stat(real)
    except OSError:
        return None  # no such interpreter: the server does not start either, and says so
    identity = [real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns]
    key = hashlib.sha256(json.dumps([identity, os.path.realpath(lib), profiles]).encode())
    directory = os.path.join(state_dir, "bridge")
    path = os.path.join(directory, key.hexdigest()[:16])
    asked = value is not None
    if len(path.encode()) > 100:  # sun_path holds 108 bytes
        return _keep_problem(runner, asked, f"the fork server is not kept: its socket path {path} is longer "
                                            "than a unix socket allows; hint: a shorter rustle_remote_dir")
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return _keep_problem(runner, asked, f"the fork server is not kept: cannot make {directory}: "
                                            f"{exc.strerror}")
    import stat

    st = os.lstat(directory)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        return _keep_problem(runner, True, f"the fork server is not kept: {directory} is not a directory "
                                           "private to this user")
    return path, seconds


def _keep_problem(runner, warn, message):
    if warn:
        runner.__dict__["_bridge_keep_problem"] = message
    return None


def _fork_server(ctx, lib):
    """The run's fork server for this interpreter, started on first use (or by ``prestart``);
    None where a module must start a Python of its own (become through sudo, no fork, or
    ``rustle_bridge_fork`` false, or a server that did not start)."""
    if _become_argv(ctx, []):
        return None
    if not hasattr(os, "fork") or str(_var(ctx.vars, "rustle_bridge_fork")).lower() in ("false", "no", "0"):
        return None
    if ctx._runner.rlimit_nofile_set(ctx):  # the server's limit is its own: start a Python with the task's
        return None
    runner = ctx._runner
    server = _server(runner, _python(ctx), lib, ctx.tmpdir)
    problem = runner.__dict__.pop("_bridge_keep_problem", None)
    if problem:
        ctx.warn(problem)  # once per run: popped
    if isinstance(server, ForkServer):
        try:
            server.ready()
            return server
        except OSError as exc:
            server.close()
            server = exc
        runner.__dict__["_bridge_servers"][(_python(ctx), lib)] = server
    if isinstance(server, OSError):
        ctx.warn(f"the module bridge's fork server did not start ({server}); each module runs in a new "
                 "Python")
        runner.__dict__["_bridge_servers"][(_python(ctx), lib)] = None  # warned once
    return None


class ForkServer:
    """A Python that imported ansible.module_utils.basic once and forks a child per module: this
    run's own (a child of the run, on pipes), or with ``keep`` (socket path, seconds) one kept
    between runs, reached over its unix socket (started by the first run that finds none)."""

    def __init__(self, python, lib, tmpdir, profiles=(), keep=None):
        self._sock = self._spawned = None
        self._ready = False
        if keep is not None:
            self.log = keep[0] + ".log"
            try:
                self._connect(keep[0])
                if self._answer().get("ready") is True:
                    self._ready = True
                    return
                self._out.close()
                self._sock.close()
                self._sock = None
            except (OSError, ValueError):
                if self._sock is not None:
                    self._out.close()
                    self._sock.close()
                    self._sock = None
            # none yet, or one that has ended (or is ending: its time is up): start one
        self._start(python, lib, tmpdir, profiles, keep)

    def _start(self, python, lib, tmpdir, profiles, keep):
        from ..lowlevel import which

        path = which(python, os.environ) or python
        if keep is None:
            self.log = os.path.join(tmpdir, "bridge-forkserver.log")
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        if keep is None:
            in_r, self._in = os.pipe()
        else:
            in_r = os.open(os.devnull, os.O_RDONLY)
        out_r, out_w = os.pipe()
        where = ["-", "0"] if keep is None else [keep[0], repr(keep[1])]
        try:
            self.pid = os.posix_spawn(path, [python, "-c", FORKSERVER, lib, *where, *profiles], dict(os.environ),
                                      file_actions=[(os.POSIX_SPAWN_DUP2, in_r, 0),
                                                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                                                    (os.POSIX_SPAWN_DUP2, log, 2)])
        except BaseException:
            for fd in (out_r,) if keep is not None else (self._in, out_r):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, log):
                os.close(fd)
        self._out = os.fdopen(out_r, "rb")
        if keep is not None:
            self._spawned = keep[0]

    def _connect(self, path):
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError:
            sock.close()
            raise
        self._sock, self._in, self._out = sock, sock.fileno(), sock.makefile("rb")

    def ready(self):
        """Wait for the server's import (started in the background); OSError when it failed."""
        if self._ready:
            return
        if self._spawned is not None:  # a kept server: it says it listens, then greets the run
            said = self._answer()
            self._out.close()
            try:
                os.waitpid(self.pid, 0)  # the first process, which forked the server and left
            except OSError:
                pass
            if said.get("ready") is True:
                self._connect(self._spawned)
            self._spawned = None
        if self._answer().get("ready") is not True:
            with open(self.log, "rb") as fh:
                detail = fh.read().decode("utf-8", "replace").strip().splitlines()[-1:]
            raise OSError("it could not import ansible.module_utils: " + " ".join(detail))
        self._ready = True

    def _answer(self):
        line = self._out.readline()
        if not line:
            return {}
        return json.loads(line.decode("utf-8"))

    def run(self, params, fqn, profile, env, task_tmp):
        """``(rc, stdout, stderr)`` of one module run in a forked child."""
        out, err = os.path.join(task_tmp, "stdout"), os.path.join(task_tmp, "stderr")
        umask = os.umask(0o022)
        os.umask(umask)
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = None
        request = json.dumps({"params": params, "fqn": fqn, "profile": profile, "env": env,
                              "cwd": cwd, "umask": umask, "out": out, "err": err}) + "\n"
        data = request.encode("utf-8")
        while data:
            data = data[os.write(self._in, data):]
        pid = self._answer().get("pid")
        try:
            rc = self._answer().get("rc")
        except BaseException:  # the task's timeout (TaskTimeout from the executor's alarm), ^C
            import signal

            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:  # not yet its own session leader (setsid): the child alone
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                self._answer()
            raise
        if rc is None:
            raise OSError("the module bridge's fork server ended; see " + self.log)
        return rc, _read_text(out), _read_text(err)

    def close(self):
        if self._sock is not None:  # a kept server: it stays for the next run
            self._out.close()
            self._sock.close()
            return
        if self._spawned is not None:  # started, never used: it serves the next run
            self._out.close()
            try:
                os.waitpid(self.pid, 0)
            except OSError:
                pass
            return
        try:
            os.close(self._in)
        except OSError:
            pass
        self._out.close()
        try:
            os.waitpid(self.pid, 0)
        except OSError:
            pass


def _read_text(path):
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _text(value):
    return value if isinstance(value, str) else str(value)


def _interpreter(ctx, spec):
    """The shebang's interpreter, overridden by ``ansible_<name>_interpreter`` as in Ansible."""
    shebang = list(spec.get("interpreter") or [])
    if not shebang:
        return []
    base = os.path.basename(shebang[0])
    if base.startswith("python"):
        return [_python(ctx)] + shebang[1:]
    override = _var(ctx.vars, f"ansible_{base}_interpreter")
    if override:
        return [str(override)] + shebang[1:]
    return shebang


def _script(ctx, spec):
    """The module's file, written once per run into the run's private temporary directory."""
    entry = spec["entry"]
    path = os.path.join(ctx.tmpdir, entry.replace("/", "-"))
    if not os.path.exists(path):
        data = ctx.read_file(entry.rsplit("/", 1)[-1]) if entry.startswith("files/") else _read(ctx, entry)
        tmp = path + ".tmp"
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o700)
        os.rename(tmp, path)
    return path


def _read(ctx, entry):
    from ..context import ModuleFailure
    from ..lowlevel import hexdigest
    from ..payload import PayloadError

    try:
        data = ctx._runner.payload.read(entry)
    except PayloadError as exc:
        raise ModuleFailure(f"{entry} is missing from the artifact; hint: redeploy it") from exc
    if hexdigest("sha256", data) != entry.rsplit("/", 1)[-1]:
        raise ModuleFailure(f"{entry} is corrupt (sha256 mismatch); hint: redeploy the artifact")
    return data


# ----------------------------------------------------------------------------- results

def filter_json(text):
    """The JSON object in a module's output and warnings about junk after it (Ansible's
    ``_filter_non_json_lines``)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("{")), None)
    if start is None:
        raise ValueError("No start of json char found")
    lines = lines[start:]
    offset = next((i for i, line in enumerate(reversed(lines)) if line.strip().endswith("}")), None)
    if offset is None:
        raise ValueError("No end of json char found")
    warnings = []
    if offset > 0:
        trailing = lines[len(lines) - offset:]
        if any(line.strip() for line in trailing):
            warnings.append("Module invocation had junk after the JSON data: " + "\n".join(trailing))
    return "\n".join(lines[:len(lines) - offset]), warnings


def parse_result(rc, out, err):
    """The task result from a module's exit status and output, as Ansible makes it."""
    try:
        text, warnings = filter_json(out)
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("the module's output is not a JSON object")
    except ValueError as exc:
        return {"failed": True, "changed": False,
                "msg": f"Module result deserialization failed: {exc}",
                "module_stdout": out, "module_stderr": err, "rc": rc,
                "exception": NO_TRACEBACK}
    exception = data.pop("exception", None)
    if exception or data.get("failed"):  # Ansible gives every failure one (CapturedErrorSummary)
        data["exception"] = _exception_text(exception)
    if data.get("failed") and "msg" not in data:
        # what TaskExecutor makes of a failure without msg (AnsibleTaskError from the module's
        # captured error): "Task failed: Module failed: boom"
        event = exception.get("event") if isinstance(exception, dict) else None
        inner = event if isinstance(event, dict) else {"msg": "Unknown error."}
        data["msg"] = _brief({"msg": "Task failed.", "chain": {"follow": True, "event": {
            "msg": "Module failed.", "chain": {"follow": True, "event": inner}}}})
    data = untag(data)
    if "results" in data and not isinstance(data["results"], list):
        data["ansible_module_results"] = data.pop("results")
        warnings.append("Found internal 'results' key in module return, renamed to 'ansible_module_results'.")
    for key in list(data):
        if key.startswith("_ansible_") or key in ("add_host", "add_group"):
            warnings.append(f"Removed unexpected internal key in module return: {key} = {data.pop(key)}")
    if warnings:
        data["warnings"] = list(data.get("warnings") or []) + warnings
    for key in ("warnings", "deprecations"):
        if key in data and not data[key]:
            del data[key]
    facts = data.get("ansible_facts")
    if isinstance(facts, dict):
        for key in list(facts):
            if key.startswith(("discovered_interpreter_", "ansible_discovered_interpreter_")):
                del facts[key]
    if "failed" not in data:
        data["failed"] = "rc" in data and data["rc"] not in (0, "0")
    data.setdefault("changed", False)
    return data


NO_TRACEBACK = "(traceback unavailable)"


def _exception_text(exception):
    """``exception`` as a registered result shows it: the module's traceback when the module
    captured one (tracebacks enabled), else Ansible's placeholder."""
    if isinstance(exception, str) and exception:
        return exception
    if isinstance(exception, dict):  # an ErrorSummary, as the module's profile encodes it
        event = exception.get("event")
        while isinstance(event, dict):
            if event.get("formatted_traceback"):
                return str(event["formatted_traceback"])
            event = (event.get("chain") or {}).get("event")
    return NO_TRACEBACK


def _brief(event):
    """Ansible's ``format_event_brief_message``: the messages of the followed chain."""
    parts = []
    while isinstance(event, dict):
        parts.append(str(event.get("msg", "")))
        chain = event.get("chain")
        if not isinstance(chain, dict) or not chain.get("follow"):
            break
        event = chain.get("event")
    message = parts.pop() if parts else ""
    for part in reversed(parts):
        message = part if part.endswith(message) else f"{part.rstrip('. ')}: {message}"
    return message


def untag(value):
    """Results of the module serialization profile (ansible-core 2.19: ``__ansible_type``) as a
    registered variable shows them (``ansible._internal._templating._transform``)."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__ansible_type")
    if kind == "WarningSummary":
        return _brief(value.get("event"))
    if kind == "DeprecationSummary":
        deprecator = untag(value.get("deprecator"))
        name = deprecator.get("resolved_name") if isinstance(deprecator, dict) else None
        out = {"msg": _brief(value.get("event")),
               "collection_name": ".".join(name.split(".")[:2]) if name else None}
        if value.get("date"):
            out["date"] = value["date"]
        else:
            out["version"] = value.get("version")
        out["deprecator"] = deprecator
        return out
    if kind == "ErrorSummary":
        return _exception_text(value)
    if kind == "PluginType":
        return value.get("value")
    return {k: untag(v) for k, v in value.items() if k != "__ansible_type"}
