"""Whether a task may run through the bridge: Ansible's action plugins, reproduced or refused.

In Ansible a module may come with an action plugin that runs on the controller first. Most of
ansible-core's are built into the runtime (copy, template, command, ...). For the others:

- ``uri`` and ``assemble`` only run their module when every file is already on the host
  (``uri`` without ``src``, ``assemble`` with ``remote_src``, its default): the bridge runs the
  module the same way, with the action plugin's check-mode rule. The controller files ``uri``
  uploads (``src``, or a ``form-multipart`` field's ``filename`` without ``content``) are found
  here, as the action finds them, and embedded (``uploads``); the host puts each in the task's
  temporary directory and gives the module that path, as the action does. ``assemble`` with
  ``remote_src: false`` is assembled by the compiler and copied (compiler/assemble.py);
- ansible-core's that act on the controller in ways a phase cannot carry are refused
  at compile time, each with its reason;
- any other action plugin (one of a collection, such as ``ansible.posix.synchronize``, or of
  ``action_plugins/`` beside the playbook or in a role), and ansible-core's ``reboot``, runs on
  the controller with ansible-core, in a phase of its own (``runs_on_controller``; docs/bridge.md, bridge/action.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import PlanError
from ..model import Plan, Task
from .lookup import BridgedModule, Missing, Resolution, lookup_key, resolve

_TRUE = ("1", "true", "yes", "on", "y", "t")

# ansible-core's controller-side actions of modules the runtime does not implement
CONTROLLER_ACTIONS: dict[str, str] = {
    "ansible.builtin.assemble": "assemble with remote_src: false reads its fragments on the controller",
    "ansible.builtin.include_vars": "include_vars reads variable files on the controller while the play runs",
    "ansible.builtin.gather_facts": "gather_facts runs fact modules from the controller; use setup (built in)",
    "ansible.builtin.validate_argument_spec": "validate_argument_spec checks role arguments on the controller",
}
# playbook keywords that look like modules (their module files only hold documentation)
KEYWORDS = frozenset({"import_playbook", "import_role", "import_tasks", "include_role", "include_tasks",
                      "include", "async_wrapper"})


# ansible-core's action plugins whose module the bridge runs on the host (with the rules above)
REPRODUCED = ("ansible.builtin.uri", "ansible.builtin.assemble")


def runs_on_controller(module: BridgedModule) -> bool:
    """Whether ``module`` is an action plugin ansible-core runs on the controller for the task."""
    if module.style == "action":
        return True
    return module.action is not None and module.action not in REPRODUCED and module.action not in CONTROLLER_ACTIONS


def _true(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in _TRUE


def refusal(module: BridgedModule, args: Mapping[str, Any]) -> str | None:
    """Why this task cannot run through the bridge, or None."""
    short = module.fqcn.rsplit(".", 1)[-1]
    if module.fqcn.startswith(("ansible.builtin.", "ansible.legacy.")) and short in KEYWORDS:
        return (f"{short} is a playbook keyword, not a module: the plan must hold the tasks it "
                "includes (rustle-plan expands static imports)")
    action = module.action
    if action is None:
        return None
    if action == "ansible.builtin.uri":
        for name in uploads(args):
            if not isinstance(name, str) or "{{" in name or "{%" in name:
                return (f"uri uploads {name!r} from the controller (its action plugin): its name must be known "
                        "when compiling (written out, not a template); hint: copy the file to the host first "
                        "and set remote_src: true")
        return None
    if action == "ansible.builtin.assemble":
        return None  # remote_src: false is assembled by the compiler (compiler/assemble.py)
    if action in CONTROLLER_ACTIONS:
        return CONTROLLER_ACTIONS[action] + " (an action plugin the bridge does not reproduce)"
    return None  # runs on the controller (runs_on_controller)


def uploads(args: Mapping[str, Any]) -> list[Any]:
    """The controller files uri's action plugin uploads for these arguments, as it chooses them:
    ``src`` (unless ``remote_src``), else the ``filename`` of each ``form-multipart`` body field
    that is a mapping with a ``filename`` and no ``content``, in the body's order."""
    if _true(args.get("remote_src"), False):
        return []
    if args.get("src"):
        return [args["src"]]
    body = args.get("body")
    if args.get("body_format") != "form-multipart" or not isinstance(body, Mapping):
        return []
    return [v["filename"] for v in body.values() if isinstance(v, Mapping) and v.get("filename") and not v.get("content")]


def upload_file(name: str, search_path: Sequence[str]) -> str | None:
    """Where uri's action plugin finds ``name`` (``_find_needle('files', name)``):
    an absolute path as it is, else ``files/NAME`` then ``NAME`` under each of the task's search
    directories (its role's, then the playbook's), as ``path_dwim_relative_stack`` looks."""
    name = os.path.expanduser(name)
    if os.path.isabs(name):
        return name if os.path.isfile(name) else None
    for root in search_path:
        for path in (os.path.join(root, "files", name), os.path.join(root, name)):
            if os.path.isfile(path):
                return os.path.normpath(path)
    return None


def _kind(task: Task) -> str:
    return "handler" if "/handlers/" in task.pointer else "task"


_COLLECTION_ROLE = re.compile(r"/ansible_collections/[^/]+/[^/]+/roles/[^/]+/?$")


def plan_dirs(plan: Plan) -> list[str]:
    """The directories whose library/ and module_utils/ Ansible searches for this plan: the
    playbook's (or the plan's) and every role's, as ansible-playbook adds them when it loads them."""
    dirs = [d for d in (plan.playbook_dir, plan.base_dir) if d]  # an emitted plan keeps its playbook's
    for play in plan.plays:
        # a collection's role brings no library/ (Ansible adds plugin dirs of other roles only)
        dirs += [str(r["path"]) for r in play.roles.values() if isinstance(r, Mapping) and r.get("path")
                 and not _COLLECTION_ROLE.search(str(r["path"]))]
    return list(dict.fromkeys(dirs))


def overridden_builtins(dirs: Sequence[str]) -> frozenset[str]:
    """The built-in modules that an ``action_plugins/NAME.py`` of ``dirs`` (the playbook's, its
    roles') replaces: ansible-core finds a short or ``ansible.legacy.`` name there first, so
    ``debug:`` runs the playbook's own debug action, on the controller (``ansible.builtin.debug``
    stays the built-in)."""
    from ..runtime_index import module_families

    names: set[str] = set()
    for directory in dirs:
        try:
            entries = os.listdir(os.path.join(directory, "action_plugins"))
        except OSError:
            continue
        names.update(e[:-3] for e in entries if e.endswith(".py") and e[:-3] in module_families())
    return frozenset(names)


def task_key(task: Task) -> str:
    """The lookup ``task`` needs: its module, with the ``collections`` keyword it carries."""
    collections = task.extras.get("collections") or ()
    return lookup_key(task.module, [str(c) for c in collections])


def unresolved(plan: Plan, tasks: Sequence[Task]) -> Resolution:
    """Resolve, in one lookup, every module of ``tasks`` that no built-in implements."""
    from ..runtime_index import canonical_module

    keys = sorted({task_key(t) for t in tasks if canonical_module(t.module) is None})
    return resolve(keys, plan_dirs(plan))


def pyz_hosts(plan: Plan) -> frozenset[str]:
    """The hosts of the plays that hold a task no built-in implements (run through the bridge,
    or on the controller): the native runner runs none of them (compiler/native.py), so
    ``--format auto`` gives these hosts pyz. The ssh process started for each host before the
    build (transport/early.py) runs the pyz agent's command for them: one started for the
    native runner would be discarded and a second connection made (a key exchange and an agent
    start more per host, on both sides)."""
    from ..runtime_index import canonical_module

    hosts: set[str] = set()
    for play in plan.plays:
        tasks = (*(t for batch in play.batches for t in batch.tasks), *play.handlers)
        if any(not t.is_block and canonical_module(t.module) is None for task in tasks for t in task.walk()):
            hosts.update(play.hosts)
    return frozenset(hosts)


def bridged(plan: Plan, task: Task, resolution: Resolution) -> BridgedModule:
    """The module ``task`` runs through the bridge; PlanError naming the task when it cannot."""
    found = resolution.modules.get(task_key(task))
    pointer = f"{task.pointer}/module"
    if found is None or isinstance(found, Missing):
        import difflib

        from ..runtime_index import module_families

        reason = found.reason if found else "not resolved"
        searched = "; ".join(found.searched) if found else ""
        own = "." not in task.module or task.module.startswith(("ansible.builtin.", "ansible.legacy."))
        close = difflib.get_close_matches(task.short_module, sorted(module_families()), n=1, cutoff=0.75) if own else []
        raise PlanError(
            f"unknown module {task.module!r} in {_kind(task)} {task.name!r}: {reason}",
            (f"did you mean '{close[0]}'? " if close else "")
            + (f"searched: {searched}; " if searched else "") + (found.hint if found else ""),
            file=plan.source, pointer=pointer)
    why = refusal(found, task.args)
    if why:
        raise PlanError(f"module {task.module!r} in {_kind(task)} {task.name!r} cannot run through the "
                        f"module bridge: {why}",
                        "see docs/bridge.md for what the bridge runs and what it refuses",
                        file=plan.source, pointer=pointer)
    if runs_on_controller(found):
        from ..phases import connection_vars, delegate

        # ansible-core would connect to the controller, another host, or with other connection
        # variables: its own delegation
        # (delegate_to localhost is ansible-core's to make: bridge/action.py hands it the task's
        # delegate_to, and it runs the action over the controller's implicit localhost)
        key = "delegate_to" if delegate(task) is not None else (
            "connection_vars" if connection_vars(task) is not None else None)
        if key is not None:
            what = "delegate_to" if key == "delegate_to" else "remote_user/port"
            raise PlanError(f"{what} on {_kind(task)} {task.name!r}, whose action plugin "
                            f"'{found.action}' runs on the controller, is not supported yet",
                            f"remove {what} (the action then connects to the task's host), or run "
                            "this play with ansible-playbook",
                            file=plan.source, pointer=f"{task.pointer}/{key}")
        return replace(found, style="action", plugin_dirs=tuple(plan_dirs(plan)))
    return found


def delegated_per_call(plan: Plan, task: Task) -> BridgedModule:
    """How ``task``, delegated to a host each call names (``delegate_to: "{{ item }}"``), runs:
    ansible-core on the controller renders the name and runs the call over that host's
    connection (bridge/action.py), whatever its module."""
    from ..runtime_index import canonical_module

    name = task.module if "." in task.module else f"ansible.builtin.{canonical_module(task.module) or task.module}"
    return BridgedModule(name=task.module, fqcn=f"{name} (delegated per call)", path="", style="action",
                         origin="ansible-core on the controller (delegate_to per call)", action=name,
                         plugin_dirs=tuple(plan_dirs(plan)))


def controller_tasks(plan: Plan, resolution: Resolution | None = None) -> frozenset[str]:
    """The pointers of the plan's tasks (unique, where task ids repeat across the plays of a
    playbook) whose action plugin runs on the controller, or that are delegated to a host each
    call names (ansible-core makes those calls too): each is a phase
    of its own (phases.py), run by the controller for each host, even in a play of one host
    (``resolution``: the plan's, when the caller has it)."""
    from ..phases import per_call
    from ..plan.validate import every_task
    from ..runtime_index import canonical_module

    leaves = [t for play in plan.plays for t in every_task(play) if not t.is_block]
    delegated = frozenset(t.pointer for t in leaves if per_call(t))
    tasks = [t for t in leaves if canonical_module(t.module) is None]
    if not tasks:
        return delegated
    if resolution is None:
        resolution = unresolved(plan, tasks)
    return delegated | frozenset(t.pointer for t in tasks if isinstance(m := resolution.modules.get(task_key(t)),
                                                                          BridgedModule) and runs_on_controller(m))
