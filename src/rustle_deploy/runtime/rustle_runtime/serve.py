"""``serve``: run single tasks for rustle-runner, in one process for the whole run (the hybrid
format, docs/native.md "Hybrid artifacts").

rustle-runner runs the tasks it can and starts this once, at the first task it cannot run. The
first line on stdin says how the run goes (``host``, ``check``, ``diff``, ``tags``,
``skip_tags``, ``verbosity``, ``run_id``, ``host_vars``); each later line asks for one task:
``play`` (index in plan.json), ``id`` (the task's id), ``handler``, ``vars`` (every name the
run has set so far: registered results, set_fact, ``ansible_failed_*``) and ``rescuing`` (how many enclosing sections have a rescue). The answer
is one line: the task's ``events`` (for the runner to emit, in order), the ``vars`` it set,
the handlers it ``notify``-ed (each as the topic the runner's program names it by), the
``stats`` and ``ran`` it adds, and, when it failed the host, ``failed_task``/``failed_result``
(what a rescue's ``ansible_failed_*`` shows). The executor's own ``_run_task`` runs the task,
so its keywords, loop, conditions, register, check/diff and no_log are those of a pyz run.
"""

import json
import sys

from .events import _default
from .executor import Runner, _HostFailed
from .templating import unsafe


class _Collect:
    """An emitter that keeps the task's events for the runner (which writes them and the journal)."""

    def __init__(self):
        self.events = []

    def emit(self, event, journal=True):
        if journal:
            self.events.append(event)

    def close(self):
        pass


def _find(tasks, task_id, params=()):
    """(task, params) for the task with ``task_id`` among ``tasks`` and their blocks (an
    include's alternatives too): params are the layers of the containers around it, as
    ``_run_container`` stacks them."""
    for task in tasks:
        if not isinstance(task, dict):
            continue
        if "block" in task:
            inner = [t for key in ("block", "rescue", "always") for t in task.get(key) or ()]
            found = _find(inner, task_id, params + (dict(task.get("params") or {}),))
            if found is not None:
                return found
        elif task.get("id") == task_id:
            return task, list(params)
    return None


def serve(payload, stdin=None, stdout=None):
    """Answer task requests until stdin ends; returns the exit code (0, or 3 for a bad start)."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    stdout = stdout if stdout is not None else sys.stdout.buffer
    start = json.loads(stdin.readline().decode("utf-8") or "{}")
    plan = payload.read_json("plan.json")
    collect = _Collect()
    runner = Runner(payload, plan, start["host"], collect, check=start.get("check"), diff=start.get("diff"),
                    tags=start.get("tags") or [], skip_tags=start.get("skip_tags") or [],
                    verbosity=start.get("verbosity") or 0, run_id=start.get("run_id"),
                    host_vars=start.get("host_vars"))
    runner._play = None  # as run() starts
    try:
        for line in stdin:
            request = json.loads(line.decode("utf-8"))
            answer = _one(runner, plan, collect, request)
            stdout.write(json.dumps(answer, default=_default, ensure_ascii=False).encode("utf-8", "replace") + b"\n")
            stdout.flush()
    finally:
        for close in reversed(runner.cleanups):
            close()
        if runner._children is not None:
            runner._children.close()
        if runner._tmpdir is not None:
            import shutil

            shutil.rmtree(runner._tmpdir, ignore_errors=True)
    return 0


def _one(runner, plan, collect, request):
    play = plan["plays"][request["play"]]
    handlers = play.get("handlers") or []
    is_handler = bool(request.get("handler"))
    found = _find(handlers if is_handler else play.get("tasks") or [], request["id"])
    if found is None:
        raise ValueError(f"no task {request['id']!r} in play {request['play']}")
    task, params = found
    if runner._play is not play:  # as _run_play: the play's names, its handlers
        everyone = list(play.get("play_hosts") or play.get("hosts") or [])
        runner.host_vars.update({"ansible_play_name": play.get("name", ""), "ansible_play_hosts_all": everyone,
                                 "ansible_play_hosts": everyone, "play_hosts": everyone,
                                 "ansible_play_batch": everyone})
        runner._play = play
        runner._roles_done = set()
    runner.runtime_vars = unsafe(dict(request.get("vars") or {}))
    before = dict(runner.runtime_vars)
    runner._params = params
    runner._rescuing = int(request.get("rescuing") or 0)
    runner._notified = set()
    runner._failure = None
    runner.stats = dict.fromkeys(runner.stats, 0)
    runner._ran = 0
    discovery = request.get("discovery")
    runner.served_discovery = discovery.get("mode") if isinstance(discovery, dict) else None
    known = runner.facts(collectors=set()).get("discovered_interpreter_python")
    collect.events = []
    answer = {"failed": False}
    try:
        runner._run_task(task, is_handler)
    except _HostFailed:
        failed_task, failed_result = runner._failure or ({}, {})
        name = failed_task.get("name") or ""
        role = (play.get("roles") or {}).get(failed_task.get("role") or "")
        if role and name.startswith(role.get("name", "") + " : "):
            name = name[len(role["name"]) + 3:]
        answer.update(failed=True, failed_task={"failed_name": name, "module": failed_task.get("module"),
                                                "id": failed_task.get("id")},
                      failed_result=failed_result)
    answer.update(
        events=collect.events,
        vars={k: v for k, v in runner.runtime_vars.items() if k not in before or before[k] is not v},
        # the runner's program names each handler by a topic only it has: its index in the play
        notify=[f"rustle handler #{i}" for i in sorted(runner._notified)],
        stats=runner.stats,
        ran=runner._ran,
    )
    found = runner.facts(collectors=set()).get("discovered_interpreter_python")
    if runner.served_discovery is not None and found and found != known:
        answer["discovered"] = found  # reported on this task's result: the runner reports it no more
    return answer

