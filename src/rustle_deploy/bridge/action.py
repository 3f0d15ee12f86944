"""Run one call of an Ansible action plugin with ansible-core, on the controller; run in a child.

A task whose module is an action plugin the runtime cannot run on the host (one of
``action_plugins/`` beside the playbook or in a role, or a collection's such as
``ansible.posix.synchronize``) runs in a phase of its own on the controller (docs/phases.md,
docs/bridge.md "Action plugins on the controller"). There the runtime runs the task as it runs
any other (variables, ``when``, ``loop``, ``until``, ``register``, ``changed_when``...) and, for
each call of the module, starts this file with the controller's Python, writes one JSON request
on its stdin and reads one JSON result from its stdout.

Here ansible-core does what its worker process does for one task on one host: a ``Task`` of
that action with the arguments as the runtime rendered them (data, never templates: nothing
read from JSON is trusted as a template), ansible-core's ``TaskExecutor`` with the host's
variables, which builds Ansible's own connection to the host from them (``ansible_connection``,
``ansible_host``, ``ansible_user``, ``ansible_ssh_private_key_file``, ``ansible_ssh_common_args``;
host key checking as configured, on by default), runs the action plugin and closes the
connection; then the result is checked as the worker sends it (a result that cannot be pickled
fails as in ansible-core).

The task's arguments come either rendered (``args``, a plan's task) or as the playbook wrote
them (``ds``: the module key or ``action`` and the ``args`` keyword), which ansible-core then
parses and renders itself, as ansible-playbook would: variable params (``echo: "{{ vp }}"``),
``k=v`` strings, ``omit``.

Request: ``{"action": NAME, "ds": {...} or null, "collections": [...], "plugin_dirs": [DIR, ...], "host": NAME,
"search_path": [DIR, ...], "args": {...}, "vars": {...}, "inventory": [SOURCE, ...], "extra_vars": {...},
"delegate_to": TEMPLATE or null, "task_vars": {...}, "task": {"name", "no_log", "environment", "check_mode", "diff", "become", "become_user",
"become_method"},
"verbosity": N}``. Answer: the task result as a JSON object. Nothing here is imported by the
controller.
"""

from __future__ import annotations

import json
import os
import pickle
import sys
from typing import Any

from rustle_deploy.bridge.ansible_start import plugin_loader

NO_TRACEBACK = "(traceback unavailable)"
# what the host's variables hold that ansible-core computes for each host itself
_MAGIC = frozenset({"hostvars", "inventory_hostname", "inventory_hostname_short", "group_names", "groups",
                    "playbook_dir", "ansible_play_hosts", "ansible_play_hosts_all", "play_hosts",
                    "ansible_check_mode", "ansible_diff_mode", "ansible_verbosity", "omit"})


class _Queue:
    """What TaskExecutor sends to the strategy while one call runs (per-item callbacks, retries):
    nothing listens, the runtime reports the task itself."""

    def send_callback(self, *args: Any, **kwargs: Any) -> None:
        return None

    def send_display(self, *args: Any, **kwargs: Any) -> None:
        return None




def _plain(value: Any) -> Any:
    """``value`` as JSON can carry it: an error summary as the text a registered result shows."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    event = getattr(value, "event", None)
    if event is not None:  # ErrorSummary
        while event is not None:
            if getattr(event, "formatted_traceback", None):
                return str(event.formatted_traceback)
            chain = getattr(event, "chain", None)
            event = getattr(chain, "event", None) if chain is not None else None
        return NO_TRACEBACK
    return str(value)


def _trusted(value: Any) -> Any:
    """``value`` with each string marked as a template, as ansible-core marks a playbook's; a
    string the playbook marked ``!unsafe`` (``{"__ansible_unsafe": text}``) stays plain text,
    which ansible-core never renders."""
    from ansible._internal._datatag._tags import TrustedAsTemplate

    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("__ansible_unsafe"), str):
            return str(value["__ansible_unsafe"])
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    if isinstance(value, str):
        return TrustedAsTemplate().tag(value)
    return value


def run(request: dict[str, Any]) -> dict[str, Any]:
    """The result of one call of the request's action plugin against its host."""
    from ansible import context
    from ansible.cli.playbook import PlaybookCLI
    from ansible.executor.task_executor import TaskExecutor
    from ansible.inventory.manager import InventoryManager
    from ansible.module_utils.common.collections import ImmutableDict
    from ansible.parsing.dataloader import DataLoader
    from ansible.playbook.play import Play
    from ansible.playbook.play_context import PlayContext
    from ansible.vars.hostvars import HostVars
    from ansible.vars.manager import VariableManager

    task = dict(request.get("task") or {})
    # ansible-playbook's defaults for every command-line option (connection, become method...)
    PlaybookCLI(["ansible-playbook", "rustle-deploy"]).parse()
    context.CLIARGS = ImmutableDict(dict(context.CLIARGS, check=bool(task.get("check_mode")),
                                         diff=bool(task.get("diff")), verbosity=int(request.get("verbosity") or 0)))
    loader_mod = plugin_loader(list(request.get("plugin_dirs") or ()))
    loader = DataLoader()
    # the controller's inventory, as ansible-playbook loads it: hostvars of every host, and the
    # connection of a host the task is delegated to (an implicit one when it is not there)
    inventory = InventoryManager(loader=loader, sources=list(request.get("inventory") or ()))
    manager = VariableManager(loader=loader, inventory=inventory)
    manager._extra_vars = dict(request.get("extra_vars") or {})
    if request.get("ds"):
        # the task's action and args keyword as the playbook wrote them: ansible-core's own
        # parser and templating (variable params, k=v, omit) over the host's variables (data)
        ds: dict[str, Any] = _trusted(dict(request["ds"]))
    else:
        ds = {request["action"]: dict(request.get("args") or {})}
    if task.get("name"):
        ds["name"] = str(task["name"])
    if task.get("no_log"):
        ds["no_log"] = True
    if task.get("environment"):
        ds["environment"] = dict(task["environment"])
    if request.get("collections"):
        ds["collections"] = list(request["collections"])
    for key in ("become", "become_user", "become_method"):
        if task.get(key):
            ds[key] = task[key]
    if request.get("delegate_to"):  # a host each call names: ansible-core renders it (the loop item...)
        ds["delegate_to"] = _trusted(str(request["delegate_to"]))
        # the task's (block's, role's) vars, rendered (data): the delegate's connection variables
        # among them, for an implicit host above all (ansible_connection, ansible_port...)
        ds["vars"] = dict(request.get("task_vars") or {})
    ds["check_mode"] = bool(task.get("check_mode"))
    ds["diff"] = bool(task.get("diff"))
    play = Play.load({"name": "rustle-deploy action", "hosts": [request["host"]], "gather_facts": False,
                      "tasks": [ds]}, variable_manager=manager, loader=loader)
    the_task = play.get_tasks()[0][0]
    search_path = [str(p) for p in request.get("search_path") or ()]
    # the playbook's directory: the last of the search path, the first of the plugin directories
    loader.set_basedir((search_path[-1:] or list(request.get("plugin_dirs") or ())[:1] or [os.getcwd()])[0])
    if search_path:  # the task's role and playbook directories: where its files are found
        the_task.get_search_path = lambda: list(search_path)  # type: ignore[method-assign]
    if inventory.get_host(request["host"]) is None:  # an inventory ansible-core could not read (a host list)
        inventory.add_host(request["host"], group="all")
    host = inventory.get_host(request["host"])
    # ansible-core's magic variables (playbook_dir, ansible_playbook_python, omit...) below the host's
    variables = dict(manager._get_magic_variables(play=None, host=host, task=None, include_hostvars=False))
    variables.update(request.get("vars") or {})
    variables.update(inventory_hostname=request["host"], inventory_hostname_short=request["host"].split(".")[0],
                     ansible_check_mode=bool(task.get("check_mode")), ansible_diff_mode=bool(task.get("diff")),
                     ansible_verbosity=int(request.get("verbosity") or 0))
    # hostvars: every inventory host's variables as ansible-core computes them (the implicit
    # localhost's too, which synchronize runs rsync from); the host's own entry is what the
    # runtime knows of it now (registered results, set_fact, facts), as ansible-core keeps those
    manager.set_nonpersistent_facts(host.name, {k: v for k, v in variables.items() if k not in _MAGIC})
    variables["hostvars"] = HostVars(inventory=inventory, variable_manager=manager, loader=loader)
    play_context = PlayContext(play=play)
    result = TaskExecutor(host, the_task, variables, play_context, loader, loader_mod, _Queue(), manager).run()
    try:  # what the worker process does with it: it sends it to the strategy through a queue
        pickle.dumps(result)
    except Exception as ex:
        from ansible._internal._errors import _error_utils
        from ansible.errors import AnsibleError

        try:
            raise AnsibleError("Task result omitted due to queue send failure.") from ex
        except Exception as wrapper:
            result = _error_utils.result_dict_from_exception(wrapper)
    from ansible.vars.clean import strip_internal_keys

    from rustle_deploy.compiler.plugin_host import masked_json

    # the action's warnings and deprecations (WarningSummary, DeprecationSummary) are the task
    # result's, registered with it as in ansible-core, whose templates see them as text and
    # dicts (the host keeps both the view and the object, for ansible._protomatter.unmask)
    for key in ("warnings", "deprecations"):
        if result.get(key):
            result[key] = masked_json(result[key])
    return dict(_plain(strip_internal_keys(result)))


def main() -> int:
    request = json.load(sys.stdin)
    result = run(request)
    out = json.dumps(result).encode()
    # fd 1 itself: ansible may have wrapped sys.stdout
    while out:
        out = out[os.write(1, out):]
    return 0


if __name__ == "__main__":
    sys.exit(main())
