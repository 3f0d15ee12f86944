"""The core family: debug, set_fact, include_vars, assert, fail, meta, ping, setup.

``include_vars`` reads files the compiler embedded in the task (``vars_data``: file name as
the task may render it -> variables, read from YAML on the controller); the executor keeps
what it loads in its own layer, below ``set_fact``.

``meta`` only names the action (``_meta`` in its result); the executor carries it out
(flush_handlers, end_play, end_host, noop, clear_facts, ...).
"""

import fnmatch
import re

from ..context import ModuleFailure

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
            raise ModuleFailure("Error while resolving `var` expression: Encountered untrusted template or "
                                "expression (host data is never evaluated); hint: name the variable, e.g. "
                                "var: r.stdout")
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

    that = args.get("that")
    if that is None:
        raise ModuleFailure("conditional required in \"that\" string")
    conditions = that if isinstance(that, list) else [that]
    fail_msg = args.get("fail_msg", args.get("msg"))
    success_msg = args.get("success_msg", "All assertions passed")
    quiet = bool(args.get("quiet", False))
    for cond in conditions:
        try:
            ok = ctx.condition(cond)
        except TemplateError as exc:
            raise ModuleFailure(str(exc), assertion=cond) from exc
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
    facts = dict(ctx.facts(refresh=True))
    facts["ansible_local"] = _local_facts(ctx, args.get("fact_path") or "/etc/ansible/facts.d")
    patterns = args.get("filter") or []
    if isinstance(patterns, str):
        patterns = [p.strip() for p in patterns.split(",") if p.strip()]
    if patterns:
        facts = {k: v for k, v in facts.items()
                 if any(fnmatch.fnmatch(k, p) or fnmatch.fnmatch(k, "ansible_" + p) for p in patterns)}
    return {"changed": False, "ansible_facts": facts}


def _local_facts(ctx, fact_path):
    """Ansible's local facts (``ansible_local``): each ``*.fact`` of ``fact_path``, run when
    executable, read as JSON or else INI; a bad one is its error message (and a warning)."""
    import configparser
    import glob
    import json
    import os
    import stat

    local = {}
    if not os.path.exists(fact_path):
        return local
    for fn in sorted(glob.glob(fact_path + "/*.fact")):
        base = os.path.basename(fn).replace(".fact", "")
        try:
            executable = stat.S_IXUSR & os.stat(fn).st_mode
        except OSError as exc:
            local[base] = f"Could not stat fact ({fn}): {exc}"
            ctx.warn(local[base])
            continue
        if executable:
            try:
                rc, out, err = ctx.run_command([fn], expand=False)
                failed = None if rc == 0 else f"Failure executing fact script ({fn}), rc: {rc}, err: {err}"
            except OSError as exc:
                failed = f"Could not execute fact script ({fn}): {exc}"
            if failed is not None:
                local[base] = failed
                ctx.warn(failed)
                continue
        else:
            try:
                with open(fn, "rb") as fh:
                    out = fh.read().decode("utf-8", "surrogateescape").strip()  # get_file_content
            except OSError:
                out = ""
        try:
            fact = json.loads(out)
        except ValueError:
            parser = configparser.ConfigParser()
            try:
                parser.read_string(out)
            except configparser.Error:
                fact = f"error loading facts as JSON or ini - please check content: {fn}"
                ctx.warn(fact)
            else:
                fact = {}
                for section in parser.sections():
                    fact.setdefault(section, {})
                    for option in parser.options(section):
                        try:
                            fact[section][option] = parser.get(section, option)
                        except configparser.Error as exc:
                            fact = f"error loading facts as ini - please check content: {fn} ({exc})"
                            ctx.warn(fact)
                            break
                    if isinstance(fact, str):
                        break
        local[base] = fact
    return local


def include_vars(ctx, args):
    name = args.get("file", args.get("_raw_params"))
    if not isinstance(name, str) or not name.strip():
        raise ModuleFailure("include_vars needs a file name")
    data = (ctx.task.get("vars_data") or {}).get(name.strip())
    if data is None:
        known = ", ".join(sorted(ctx.task.get("vars_data") or {})) or "none"
        raise ModuleFailure(f"Could not find or access '{name}' (the files embedded for this task: {known})")
    if args.get("name"):
        data = {str(args["name"]): data}
    return {"changed": False, "ansible_facts": dict(data), "_include_vars": True,
            "ansible_included_var_files": [name.strip()]}


MODULES = {"debug": debug, "set_fact": set_fact, "include_vars": include_vars, "assert": assert_, "fail": fail, "meta": meta,
           "ping": ping, "setup": setup}
