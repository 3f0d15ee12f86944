"""Background tasks (``async``/``poll``) and their job files, as ansible-core keeps them.

A task with ``async: N`` gets a job id (``j<digits>.<pid>``) and a job file in the async
directory (the ``ansible_async_dir`` variable, ``$ANSIBLE_ASYNC_DIR`` or ``~/.ansible_async``,
as Ansible's): first
``{"started": 1, "finished": 0, "ansible_job_id": ID}``, then the module's result. With
``poll`` > 0 the task runs in the foreground for at most N seconds ("Timeout exceeded" after),
its result says ``finished``, and its job file is removed (as ansible-core's poll cleans up
after a finished job: a later ``async_status`` of it finds no job). A module's stderr, when it
wrote any, is its job result's ``stderr`` (as ansible-core's async_wrapper adds it). With ``poll: 0`` the module runs in a detached process (its
own session, no inherited descriptors, standard streams on /dev/null) that outlives the run,
and the task reports ``started``; ``async_status`` (``modules/core.py``) reads the job file, in
the same run or a later one, so Ansible's own async_status reads it too.

Modules that an Ansible action plugin runs without async support fail as Ansible fails them.
Standard library only; Python 3.8 syntax.
"""

import json
import os
import random

# ansible-core's action plugins that do not support async (the others run their module)
NO_ASYNC = frozenset({
    "add_host", "assemble", "assert", "async_status", "copy", "debug", "fail", "fetch",
    "gather_facts", "group_by", "include_vars", "pause", "raw", "reboot", "script", "set_fact",
    "set_stats", "template", "unarchive", "validate_argument_spec", "wait_for_connection",
    "meta",
})


def async_dir(ctx):
    """The task's ``ansible_async_dir``, else ``$ANSIBLE_ASYNC_DIR``, else ~/.ansible_async."""
    configured = ctx.vars.get("ansible_async_dir")
    return os.path.expanduser(str(configured or os.environ.get("ANSIBLE_ASYNC_DIR")
                                  or "~/.ansible_async"))


def _write(path, data):
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh, default=str)
    os.replace(tmp, path)


def run(ctx, module, limit, poll, call):
    """The task's result: ``call(timeout)`` runs the module (and returns its result dict)."""
    short = module.rsplit(".", 1)[-1]
    if short in NO_ASYNC:
        return {"failed": True, "changed": False,
                "msg": f"This action ({short}) does not support async."}
    jid = f"j{random.randint(0, 999999999999)}.{os.getpid()}"
    ctx.async_job = True
    directory = async_dir(ctx)
    path = os.path.join(directory, jid)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    _write(path, {"started": 1, "finished": 0, "ansible_job_id": jid})
    keys = {"ansible_job_id": jid, "results_file": path, "started": True}
    if poll > 0:
        result = _bounded(call, limit)
        os.unlink(path)  # a job polled to its end leaves no file: ansible-core's async_status cleanup
        out = dict(result)
        out.update(keys, finished=True)
        return out
    _detach(lambda: _write(path, _bounded(call, limit)))
    out = {"changed": True, "failed": False, "finished": False}
    out.update(keys)
    return out


def _bounded(call, limit):
    result = call(limit)
    if isinstance(result.get("timedout"), dict):  # the timeout keyword's wording, not async's
        result = {"failed": True, "changed": False, "msg": "Timeout exceeded",
                  "child_pid": os.getpid()}
    return result


def _detach(work):
    """Run ``work`` in a grandchild in its own session; return at once in this process."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)  # the child exits as soon as it has forked the grandchild
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        os.closerange(3, _max_fd())  # no lock, pipe or journal of the run stays open
        work()
    finally:
        os._exit(0)


def _max_fd():
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (AttributeError, ValueError, OSError):
        return 1024


def status(ctx, jid, mode="status"):
    """ansible.builtin.async_status over the job file of ``jid``."""
    path = os.path.join(async_dir(ctx), jid)
    out = {"ansible_job_id": jid, "started": False, "finished": False, "stdout": "",
           "stderr": "", "stdout_lines": [], "stderr_lines": [], "changed": False}
    if mode == "cleanup":
        if os.path.exists(path):
            os.unlink(path)
        out["erased"] = path
        return out
    out.update(results_file=path, started=True)
    if not os.path.exists(path):
        out.update(failed=True, finished=True, msg="could not find job")
        return out
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except ValueError:
        return out  # not written yet: it is running
    if not isinstance(data, dict):
        out.update(failed=True, finished=True, msg=f"Could not parse job output: {data}")
        return out
    if "started" not in data:
        data["finished"] = True
        data["ansible_job_id"] = jid
    elif "finished" not in data:
        data["finished"] = False
    out.update(data)
    for key in ("started", "finished"):
        out[key] = bool(out[key])
    return out
