"""The core family: debug, set_fact, include_vars, assert, fail, meta, ping, setup, async_status
(over the job files of ``jobs.py``), add_host, group_by, and the controller actions pause,
wait_for_connection and set_stats.

``add_host`` and ``group_by`` only read their arguments (as Ansible's action plugins do); the
executor changes its view of the inventory (``groups``, ``group_names``, ``hostvars``) and
says whether that changed anything.

``include_vars`` reads files the compiler embedded in the task (``vars_data``: file name as
the task may render it -> variables, read from YAML on the controller; a file the play
creates is read by the controller when the task's phase starts: ``run_time_files``, its
variables in ``inject.vars_files``); the executor keeps
what it loads in its own layer, below ``set_fact``.

``meta`` only names the action (``_meta`` in its result); the executor carries it out
(flush_handlers, end_play, end_host, noop, clear_facts, ...).
"""

import fnmatch
import os
import re

from ..context import ModuleFailure
from ..datatag import shown_type

_VALID_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
META_ACTIONS = ("noop", "flush_handlers", "refresh_inventory", "clear_facts", "clear_host_errors",
                "end_play", "end_host", "end_batch", "end_role", "reset_connection")


def _int(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def debug(ctx, args):
    if "msg" in args and "var" in args:
        raise ModuleFailure("parameters are mutually exclusive: msg|var")
    verbosity = _int(args.get("verbosity", 0), 0)
    if ctx.verbosity < verbosity:
        return {"changed": False, "skipped": True, "skipped_reason": "Verbosity threshold not met."}
    if "var" in args:
        from ..templating import TemplateError, UndefinedVariable, is_unsafe

        name = args["var"]
        if not isinstance(name, str):
            return {"changed": False, str(name): name}
        if is_unsafe(name):  # `var: "{{ r.stdout }}"`: the name itself came from the host
            raise ModuleFailure("Task failed: Error while resolving `var` expression: Encountered untrusted "
                                "template or expression.")
        try:
            value = ctx.evaluate(name)
        except UndefinedVariable:
            value = "VARIABLE IS NOT DEFINED!"
        except TemplateError as exc:  # a failing filter, a syntax error: Ansible fails the task
            raise ModuleFailure(f"Task failed: Error while resolving `var` expression: {exc}") from exc
        return {"changed": False, name: value}
    return {"changed": False, "msg": args.get("msg", "Hello world!")}


def set_fact(ctx, args):
    facts = {}
    for key, value in args.items():
        if key == "cacheable":
            continue
        if not _VALID_NAME.match(str(key)):
            raise ModuleFailure(f"The variable name '{key}' is not valid. Variables must start with a "
                                "letter or underscore character, and contain only letters, numbers "
                                "and underscores.")
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no"):
            value = value.lower() in ("true", "yes")
        facts[key] = value
    if not facts:
        raise ModuleFailure("No key/value pairs provided, at least one is required for this action to succeed")
    return {"changed": False, "ansible_facts": facts, "_set_fact": True}


def assert_(ctx, args):
    from ..templating import TemplateError

    if "that" not in args:  # ansible-core 2.19's words for each
        raise ModuleFailure("missing required arguments: that")
    that = args["that"]
    conditions = that if isinstance(that, list) else [that]
    if any(c is None or (isinstance(c, str) and not c.strip()) for c in conditions):
        raise ModuleFailure("Task failed: Empty conditional expressions are not allowed.")
    fail_msg = args.get("fail_msg", args.get("msg"))
    success_msg = args.get("success_msg", "All assertions passed")
    quiet = bool(args.get("quiet", False))
    for cond in conditions:
        try:
            ok = ctx.condition(cond)
        except TemplateError as exc:  # ansible-core 2.19: no `assertion`, the task failed
            raise ModuleFailure(f"Task failed: {exc}") from exc
        if not ok:
            msg = fail_msg if fail_msg is not None else "Assertion failed"
            return {"changed": False, "failed": True, "assertion": cond, "evaluated_to": False, "msg": msg}
    out = {"changed": False, "msg": success_msg}
    if quiet:
        out["_ansible_verbose_always"] = False
    return out


def fail(ctx, args):
    return {"changed": False, "failed": True, "msg": args.get("msg", "Failed as requested from task")}


def meta(ctx, args):
    action = str(args.get("_raw_params", "")).strip()
    if action not in META_ACTIONS:
        raise ModuleFailure(f"invalid meta action requested: {action}")
    return {"changed": False, "_meta": action, "msg": ""}


def ping(ctx, args):
    data = args.get("data", "pong")
    if data == "crash":
        raise Exception("boom")
    return {"changed": False, "ping": data}


def setup(ctx, args):
    from .. import facts as collect

    subset = args.get("gather_subset")
    if subset is None:
        subset = ["all"]
    elif isinstance(subset, str):
        subset = [s.strip() for s in subset.split(",") if s.strip()]
    elif not isinstance(subset, list):
        raise ModuleFailure(f"argument 'gather_subset' is of type {type(subset).__name__} and we were unable to "
                            "convert to list")
    timeout = args.get("gather_timeout", 10)
    try:  # bounds each command a collector runs (lsb_release, ip, capsh...) and each mount's statvfs
        timeout = int(timeout)
    except (TypeError, ValueError):
        raise ModuleFailure(f"argument 'gather_timeout' is of type {type(timeout).__name__} and we were unable "
                            "to convert to int: " + repr(timeout)) from None
    try:
        chosen = collect.collectors(subset)
    except ValueError as exc:
        raise ModuleFailure(str(exc)) from None
    known = set(collect.COLLECTOR_NAMES) & chosen
    facts = collect.select(dict(ctx.facts(refresh=True, collectors=known, timeout=timeout)), chosen)
    if "local" in chosen:
        facts["ansible_local"] = collect.local_facts(ctx, args.get("fact_path") or collect.FACT_PATH)
    facts.update(gather_subset=subset, module_setup=True)  # as ansible-core's metadata collector
    patterns = args.get("filter") or []
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    if patterns:
        facts = {k: v for k, v in facts.items()
                 if any(fnmatch.fnmatch(k, p) or fnmatch.fnmatch(k, "ansible_" + p) for p in patterns)}
    return {"changed": False, "ansible_facts": facts}


# ansible-core's words for an action's failure that has no msg (include_vars says `message`)
_NO_MSG = "Task failed: Action failed: Unknown error."


def include_vars(ctx, args):
    listing = ctx.task.get("vars_dir")
    if listing is not None and listing.get("run_time"):
        # a directory the play created: the controller read it when this phase started
        listing = (ctx._runner.inject.get("vars_dirs") or {}).get(listing["run_time"]) or {
            "error": f"{listing['run_time']} directory does not exist"}
    if listing is not None:  # dir: what the compiler (or the controller) read, in ansible-core's order
        if listing.get("locked"):  # a vault file in it that no secret of the run opens
            return {"failed": True, "changed": False, "msg": f"Task failed: {listing['locked']}"}
        if listing.get("error"):
            return {"failed": True, "changed": False, "message": listing["error"], "msg": _NO_MSG,
                    "ansible_included_var_files": []}
        data, files = {}, []
        for path, values in listing.get("files") or []:
            data.update(values)
            files.append(path)
    else:
        name = args.get("file", args.get("_raw_params"))
        if not isinstance(name, str) or not name.strip():  # rendered to nothing: ansible-core's words
            return {"failed": True, "changed": False, "ansible_included_var_files": [], "msg": _NO_MSG,
                    "message": "Could not find file on the Ansible Controller.\nIf you are using a module "
                               "and expect the file to exist on the remote, see the remote_src option"}
        embedded = ctx.task.get("vars_data") or {}
        data = embedded.get(name.strip())
        if data is None:  # named by its controller path
            data = embedded.get((ctx.task.get("vars_paths") or {}).get(os.path.normpath(name.strip())))
        if data is None and name.strip() in (ctx.task.get("run_time_files") or {}):
            # a vars file the play created: the controller read it when this phase started
            data = (ctx._runner.inject.get("vars_files") or {}).get(name.strip())
            locked = (getattr(ctx, "late_locked", None) or {}).get(name.strip())
            if data is None and locked:  # vault-encrypted, and no secret of the run opens it
                return {"failed": True, "changed": False, "ansible_facts": {}, "ansible_included_var_files": [],
                        "message": locked, "msg": _NO_MSG}
        if data is None:
            known = ", ".join(sorted(ctx.task.get("vars_data") or {})) or "none"
            raise ModuleFailure(f"Could not find or access '{name}' (the files embedded for this task: {known})")
        # the path the controller read it from, as ansible-core reports it
        files = [next((path for path, key in (ctx.task.get("vars_paths") or {}).items() if key == name.strip()),
                      name.strip())]
    if args.get("name"):
        data = {str(args["name"]): data}
    if args.get("hash_behaviour") == "merge":  # merged into the values the variables have now
        from ..filters import combine

        existing = {k: ctx.vars[k] for k in data if k in ctx.vars}
        data = combine(existing, data, recursive=True)
    return {"changed": False, "ansible_facts": dict(data), "_include_vars": True,
            "ansible_included_var_files": files}


def add_host(ctx, args):
    args = dict(args)
    raw = args.pop("_raw_params", {})
    if not isinstance(raw, dict):  # written in the task: a template's result has its Origin tag
        raise ModuleFailure("Invalid raw parameters passed, requires a dictionary/mapping got a  "
                            f"{shown_type(raw, True)}")
    args = dict(raw, **args)
    name = args.get("name", args.get("hostname", args.get("host")))
    if name is None:
        raise ModuleFailure("name, host or hostname needs to be provided")
    name = str(name)
    host, sep, port = name.rpartition(":")
    if sep and host and port.isdigit() and ":" not in host:  # "host:port", as parse_address reads it
        name = host
        args["ansible_ssh_port"] = int(port)
    groups = args.get("groupname", args.get("groups", args.get("group", "")))
    if isinstance(groups, str):
        groups = groups.split(",") if groups else []
    elif not isinstance(groups, list):
        raise ModuleFailure("Groups must be specified as a list.")
    new_groups = []
    for group in groups:
        if str(group).strip() not in new_groups:
            new_groups.append(str(group).strip())
    host_vars = {k: v for k, v in args.items() if k not in ("name", "hostname", "groupname", "groups")}
    return {"changed": False, "add_host": {"host_name": name, "groups": new_groups, "host_vars": host_vars},
            "_inventory": True}


def group_by(ctx, args):
    unknown = sorted(set(args) - {"key", "parents"})
    if unknown:
        raise ModuleFailure(f"Invalid options for group_by: {', '.join(unknown)}")
    if "key" not in args:
        raise ModuleFailure("the 'key' param is required when using group_by")
    parents = args.get("parents", ["all"])
    if isinstance(parents, str):
        parents = [parents]
    return {"changed": False, "add_group": str(args["key"]).replace(" ", "-"),
            "parent_groups": [str(p).replace(" ", "-") for p in parents], "_inventory": True}



def _whole(args, name, default=None):
    """An integer argument as ansible-core's ``int`` callable takes it (1.5 -> 1)."""
    value = args.get(name, default)
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise ModuleFailure(f"argument '{name}' is of type {type(value).__name__} and we were unable to "
                            f"convert to int: {exc}") from None


def pause(ctx, args):
    """ansible-core's pause for a while (``seconds``/``minutes``; at least one second). The
    controller runs it once for the batch (phases.py: a run_once task on the controller);
    a ``prompt`` or a pause without a duration is refused when the plan is checked."""
    import datetime
    import time

    unknown = sorted(set(args) - {"seconds", "minutes", "prompt", "echo"})
    if unknown:
        raise ModuleFailure("Unsupported parameters for (pause) module: {}. Supported parameters include: "
                            "echo, minutes, prompt, seconds.".format(", ".join(unknown)))
    minutes, seconds = _whole(args, "minutes"), _whole(args, "seconds")
    if minutes is not None and seconds is not None:
        raise ModuleFailure("parameters are mutually exclusive: minutes|seconds")
    if args.get("prompt") or (minutes is None and seconds is None):
        raise ModuleFailure("pause waits for the operator only with a terminal on the controller; "
                            "give seconds or minutes")
    echo = args.get("echo", True)
    echo = echo if isinstance(echo, bool) else str(echo).strip().lower() in ("yes", "on", "1", "true", "y", "t")
    unit = "minutes" if minutes is not None else "seconds"
    wait = max(1, minutes * 60 if minutes is not None else seconds)
    start = time.time()
    started = str(datetime.datetime.now())
    time.sleep(wait)
    duration = time.time() - start
    shown = round(duration / 60.0, 2) if unit == "minutes" else round(duration, 2)
    return {"changed": False, "rc": 0, "stderr": "", "stdout": f"Paused for {shown} {unit}",
            "start": started, "stop": str(datetime.datetime.now()), "delta": int(duration), "echo": echo,
            "user_input": "", "_no_lines": True}


def wait_for_connection(ctx, args):
    """ansible-core's wait_for_connection, where the task runs: on the host, whose run is the
    connection (and its Python the module test) the action waits for; ``delay`` is waited."""
    import time

    unknown = sorted(set(args) - {"connect_timeout", "delay", "sleep", "timeout"})
    if unknown:
        raise ModuleFailure("Invalid options for wait_for_connection: " + ",".join(unknown))
    delay = _whole(args, "delay", 0)
    if ctx.check_mode:
        return {"skipped": True, "changed": False}
    start = time.time()
    if delay:
        time.sleep(delay)
    return {"changed": False, "elapsed": int(time.time() - start)}


def set_stats(ctx, args):
    """ansible-core's set_stats: the custom statistics, in the task's result (``ansible_stats``)
    as the action returns them; rustle-deploy shows no custom stats at the end of the run."""
    unknown = sorted(set(args) - {"aggregate", "data", "per_host"})
    if unknown:
        raise ModuleFailure("Invalid options for set_stats: " + ",".join(unknown))
    stats = {"data": {}, "per_host": False, "aggregate": True}
    data = args.get("data", {})
    if not isinstance(data, dict):
        return {"failed": True, "changed": False, "msg": "The 'data' option needs to be a dictionary/hash"}
    for opt in ("per_host", "aggregate"):
        value = args.get(opt)
        if value is not None:
            stats[opt] = value if isinstance(value, bool) else \
                str(value).strip().lower() in ("y", "yes", "on", "1", "true", "t", "1.0")
    for key, value in data.items():
        if not (isinstance(key, str) and key.isidentifier() and key.isascii()
                and key not in ("true", "false", "none", "True", "False", "None", "not")):
            raise ModuleFailure(f"Task failed: Invalid variable name {str(key)!r}.")
        stats["data"][key] = value
    return {"changed": False, "ansible_stats": stats}



def async_status(ctx, args):
    from ..jobs import status

    jid = args.get("jid")
    if not jid:
        raise ModuleFailure("missing required arguments: jid")
    mode = args.get("mode", "status")
    if mode not in ("status", "cleanup"):
        raise ModuleFailure(f"value of mode must be one of: status, cleanup, got: {mode}")
    return status(ctx, str(jid), mode)


MODULES = {"async_status": async_status, "debug": debug, "set_fact": set_fact, "include_vars": include_vars,
           "assert": assert_, "fail": fail, "meta": meta, "ping": ping, "setup": setup, "add_host": add_host,
           "group_by": group_by, "pause": pause, "wait_for_connection": wait_for_connection, "set_stats": set_stats}
