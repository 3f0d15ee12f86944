"""Typed reading of rustle-plan JSON into the model: shapes, types, enums, legacy keys.

This module owns the *shape* of a plan (PLAN_FORMAT.md): which keys are required, what type
each value has, the serde enum encodings (PascalCase; unit variants as bare strings, data
variants as one-key objects), durations ``{secs, nanos}``, the task and play extensions, and
the migration of legacy shapes (``task_ids`` -> ``tasks``, ``target_triple`` vs
``target_arch`` + ``target_os``, ``"SshOnly"``, ``Skip``/``Only`` conditions). Unknown keys
are ignored. Every failure is a :class:`~rustle_deploy.errors.PlanError` carrying the JSON
pointer (RFC 6901) of the offending value and a hint showing what a good value looks like.

Cross-references (hosts, notify, dependencies, modules, files) are checked afterwards by
``validate.py`` on the model this module builds.

The checks are hand-rolled rather than msgspec Structs: they are few, plans are small, and
this way every message can say what was expected *and* what was found at an exact pointer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from rustle_deploy.errors import PlanError
from rustle_deploy.model import (
    CONDITION_KINDS,
    HOST_ORDERS,
    STRATEGIES,
    Batch,
    BinaryDeployment,
    Condition,
    Plan,
    PlanningOptions,
    Play,
    Serial,
    StaticFile,
    Strategy,
    Task,
    untag_unsafe,
)

T = TypeVar("T")
D = TypeVar("D")

RISK_LEVELS = ("Low", "Medium", "High", "Critical")
EXECUTION_MODES = ("Controller", "Standalone", "Hybrid")
PLACEHOLDER_CHECKSUM = "placeholder-checksum"
MAX_NANOS = 999_999_999
_SERIAL_STEP = re.compile(r"^\s*\d+\s*%?\s*$")
_PERCENT = re.compile(r"^\s*\d+(\.\d+)?\s*%?\s*$")

_EXAMPLES = {
    "a string": '"web1"',
    "an integer": "5",
    "a boolean": "true or false",
    "an array": '["a", "b"]',
    "an array of strings": '["a", "b"]',
    "an object": '{"key": "value"}',
}


def escape(token: str | int) -> str:
    """Escape one JSON pointer reference token (RFC 6901), made printable for messages."""
    return printable(str(token).replace("~", "~0").replace("/", "~1"))


def child(pointer: str, token: str | int) -> str:
    return f"{pointer}/{escape(token)}"


def printable(text: str) -> str:
    """``text`` with control characters and lone surrogates escaped, safe to print."""
    return text if text.isprintable() else repr(text)[1:-1]


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type, with a short rendering of scalars."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}" if abs(value) < 10**15 else "a very large integer"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {json.dumps(shown)}"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__  # not reachable from JSON


class Reader:
    """Raises PlanErrors for one source; every check takes the value and its pointer."""

    def __init__(self, source: str) -> None:
        self.source = source
        # pointers of binary deployments that use the legacy key ``task_ids``
        self.legacy_task_ids: set[str] = set()

    # -- failures -------------------------------------------------------------------------

    def fail(self, pointer: str, message: str, hint: str | None = None) -> NoReturn:
        raise PlanError(message, hint, file=self.source, pointer=pointer or "/")

    def expected(self, pointer: str, what: str, value: Any, hint: str | None = None) -> NoReturn:
        if hint is None:
            example = _EXAMPLES.get(what)
            hint = f"write {what} here, e.g. {example}" if example else None
        self.fail(pointer, f"expected {what}, got {json_type(value)}", hint)

    # -- containers -----------------------------------------------------------------------

    def obj(self, value: Any, pointer: str, what: str = "an object") -> dict[str, Any]:
        if not isinstance(value, dict):
            self.expected(pointer, what, value, f"write {what} here: {{...}}")
        return value

    def arr(self, value: Any, pointer: str, what: str = "an array") -> list[Any]:
        if not isinstance(value, list):
            self.expected(pointer, what, value, f"write {what} here: [...]")
        return value

    def req(self, d: dict[str, Any], key: str, pointer: str, what: str) -> Any:
        """The value of a required key; ``what`` describes the expected value."""
        if key not in d:
            self.fail(
                child(pointer, key),
                f"missing required key '{key}' ({what})",
                f"add \"{key}\" to the object at {pointer or '/'}; rustle-plan always writes it",
            )
        return d[key]

    # -- scalars --------------------------------------------------------------------------

    def string(self, value: Any, pointer: str) -> str:
        if not isinstance(value, str):
            self.expected(pointer, "a string", value)
        return value

    def expression(self, value: Any, pointer: str) -> str | int | float:
        """A When expression: a string, or a number as a playbook may write it (``when: 1``),
        which ansible-core 2.19 fails when the task runs ("Conditional expressions must be
        strings.")."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return value
        return self.string(value, pointer)

    def opt_string(self, value: Any, pointer: str) -> str | None:
        return None if value is None else self.string(value, pointer)

    def integer(self, value: Any, pointer: str, *, minimum: int | None = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.expected(pointer, "an integer", value)
        if minimum is not None and value < minimum:
            self.fail(pointer, f"expected an integer >= {minimum}, got {value}",
                      f"write an integer of at least {minimum} here")
        return value

    def opt_integer(self, value: Any, pointer: str, *, minimum: int | None = 0) -> int | None:
        return None if value is None else self.integer(value, pointer, minimum=minimum)

    def boolean(self, value: Any, pointer: str) -> bool:
        if not isinstance(value, bool):
            self.expected(pointer, "a boolean", value)
        return value

    def number(self, value: Any, pointer: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.expected(pointer, "a number", value, "write a number here, e.g. 0.5")
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(pointer, "expected a finite number", "write a number here, e.g. 0.5")
        return float(value)

    def strings(self, value: Any, pointer: str) -> tuple[str, ...]:
        items = self.arr(value, pointer, "an array of strings")
        return tuple(self.string(v, child(pointer, i)) for i, v in enumerate(items))

    def enum(self, value: Any, pointer: str, choices: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in choices:
            self.fail(
                pointer,
                f"expected one of {', '.join(choices)}, got {json_type(value)}",
                "enum names are PascalCase, as rustle-plan writes them",
            )
        return value

    def serial(self, value: Any, pointer: str) -> Serial | None:
        """Ansible's ``serial``: a host count, a percentage, or a list of them; null for none."""
        hint = 'serial is a host count (5), a percentage ("20%") or a list of them ([1, 5, "20%"])'
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        if not items:
            self.fail(pointer, "serial is an empty list", hint)
        steps: list[int | str] = []
        for i, item in enumerate(items):
            ptr = child(pointer, i) if isinstance(value, list) else pointer
            if isinstance(item, int) and not isinstance(item, bool) and item >= 0:
                steps.append(item)
            elif isinstance(item, str) and _SERIAL_STEP.match(item):
                text = item.strip().replace(" ", "")
                steps.append(text if text.endswith("%") else int(text))
            else:
                self.fail(ptr, f"expected a host count or a percentage, got {json.dumps(item)}", hint)
        return tuple(steps)

    def percentage(self, value: Any, pointer: str) -> float:
        """A percentage 0..100, written as a number or as "N%"."""
        hint = "write a percentage from 0 to 100, e.g. 0 (stop at the first failure) or 25"
        number: Any = value
        if isinstance(value, str) and _PERCENT.match(value):
            number = float(value.strip().rstrip("%"))
        if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 100:
            self.fail(pointer, f"expected a percentage from 0 to 100, got {json.dumps(value)}", hint)
        return float(number)

    def duration(self, value: Any, pointer: str) -> float | None:
        """A serde Duration ``{secs, nanos}`` or null, in seconds."""
        if value is None:
            return None
        hint = 'a duration is {"secs": 1, "nanos": 500000000} or null'
        if not isinstance(value, dict):
            self.expected(pointer, "a duration object", value, hint)
        for key in ("secs", "nanos"):
            if key not in value:
                self.fail(child(pointer, key), f"missing required key '{key}' of a duration", hint)
        secs = self.integer(value["secs"], child(pointer, "secs"))
        nanos = self.integer(value["nanos"], child(pointer, "nanos"))
        if nanos > MAX_NANOS:
            self.fail(child(pointer, "nanos"), f"expected nanos in 0..{MAX_NANOS}, got {nanos}", hint)
        return secs + nanos / 1e9

    def opt(self, d: dict[str, Any], key: str, pointer: str, read: Callable[[Any, str], T],
            default: D) -> T | D:
        """``read`` the value of an optional key; ``default`` when it is absent."""
        if key not in d:
            return default
        return read(d[key], child(pointer, key))

    # -- serde enums with data ------------------------------------------------------------

    def variant(self, value: Any, pointer: str, choices: tuple[str, ...], what: str,
                hint: str) -> tuple[str, Any, str]:
        """Split an externally tagged enum into (name, payload, payload pointer)."""
        if isinstance(value, str):
            if value not in choices:
                self.fail(pointer, f"unknown {what} {json.dumps(value)}; expected one of "
                          f"{', '.join(choices)}", hint)
            return value, None, pointer
        if not isinstance(value, dict):
            self.expected(pointer, f"a {what}", value, hint)
        if len(value) != 1:
            self.fail(pointer, f"expected a {what} object with exactly one key, got "
                      f"{len(value)} keys", hint)
        ((name, payload),) = value.items()
        if name not in choices:
            self.fail(child(pointer, name), f"unknown {what} {json.dumps(name)}; expected one "
                      f"of {', '.join(choices)}", hint)
        return name, payload, child(pointer, name)

    def strategy(self, value: Any, pointer: str) -> Strategy:
        hint = 'e.g. "Linear", "BinaryHybrid" or {"Rolling": {"batch_size": 5}}'
        name, payload, ptr = self.variant(value, pointer, STRATEGIES, "strategy", hint)
        if name == "Rolling":
            if payload is None:
                self.fail(pointer, "the Rolling strategy needs a batch_size", hint)
            body = self.obj(payload, ptr)
            size = self.integer(self.req(body, "batch_size", ptr, "a positive integer"),
                                child(ptr, "batch_size"), minimum=1)
            return Strategy("Rolling", size)
        if payload is not None:
            self.fail(ptr, f"the {name} strategy takes no data; write it as \"{name}\"", hint)
        return Strategy(name)

    def condition(self, value: Any, pointer: str) -> Condition:
        hint = ('conditions look like {"When": {"expression": "x is defined"}}, '
                '{"Tag": {"tags": ["a"]}}, {"CheckMode": {"enabled": true}}, '
                '{"Host": {"pattern": "web*"}}, {"SkipTag": {"tags": ["a"]}}, '
                '{"Skip": {"condition": "..."}} or {"Only": {"hosts": ["web1"]}}')
        name, payload, ptr = self.variant(value, pointer, CONDITION_KINDS, "condition", hint)
        body = self.obj(payload, ptr, f"an object with the {name} condition's fields")
        field, read = {
            "When": ("expression", self.expression),
            "Tag": ("tags", self.strings),
            "SkipTag": ("tags", self.strings),
            "CheckMode": ("enabled", self.boolean),
            "Host": ("pattern", self.string),
            "Skip": ("condition", self.string),
            "Only": ("hosts", self.strings),
        }[name]
        raw = self.req(body, field, ptr, f"the {name} condition's {field}")
        return Condition(name, read(raw, child(ptr, field)))


# -- task extensions ----------------------------------------------------------------------

def _ext_kinds() -> dict[str, tuple[tuple[type, ...], str]]:
    """Extension key -> (accepted Python types, description for the message)."""
    expr_or_bool = ((bool, str), "a boolean or a Jinja2 expression string")
    cond = ((bool, str, list), "a boolean, an expression string or an array of expressions")
    count = ((int, str), "a non-negative integer or a Jinja2 expression string")
    return {
        "register": ((str,), "a variable name (string)"),
        "loop": ((list, str), "an array or a Jinja2 expression string"),
        "loop_control": ((dict,), "an object such as {\"loop_var\": \"item\"}"),
        "changed_when": cond,
        "failed_when": cond,
        "until": cond,
        "ignore_errors": expr_or_bool,
        "ignore_unreachable": expr_or_bool,
        "no_log": expr_or_bool,
        "become": expr_or_bool,
        "check_mode": expr_or_bool,
        "diff": expr_or_bool,
        "become_user": ((str,), "a user name (string)"),
        "become_method": ((str,), "a method name such as \"sudo\" (string)"),
        "become_exe": ((str,), "the become program, such as \"/usr/bin/sudo\" (string)"),
        "become_flags": ((str,), "the become program's options, such as \"-H -S -n\" (string)"),
        "environment": ((dict, str, list), "an object of variable names to values, a Jinja2 "
                        "expression string, or an array of those (merged in order)"),
        "vars": ((dict,), "an object of variable names to values"),
        "retries": count,
        "delay": ((int, float, str), "a non-negative number of seconds or a Jinja2 expression string"),
        "timeout": ((int, str), "an integer number of seconds or a Jinja2 expression string"),
        "run_once": ((bool,), "a boolean"),
        "any_errors_fatal": ((bool,), "a boolean"),
        "throttle": ((int, str), "a host count or a Jinja2 expression string"),
        "delegate_to": ((str,), "a host name (string)"),
        "delegate_facts": ((bool,), "a boolean"),
        "delegate_implicit": ((bool,), "a boolean: delegate_to names a host outside the inventory, which "
                              "ansible-core makes an implicit host of"),
        "connection_vars": ((dict,), "an object {HOST: {\"ansible_user\": USER, \"ansible_port\": PORT}}: "
                            "how the task connects to each host (a task's remote_user/port)"),
        "run_time_files": ((dict,), "an object {NAME: [PATH, ...]}: a src or vars file the task "
                           "reads from the controller when it runs (the first PATH that exists then)"),
        "run_time_render": ((dict,), "an object {NAME: {\"vars\": {...}, \"extra\": {...}}}: a run_time_files "
                            "NAME that is a template over a host's values, rendered by the controller "
                            "when the task runs over these values and the host's"),
        "loop_with": ((str,), "\"items\", \"flattened\" or a lookup the host runs "
                              "(\"sequence\", \"together\", \"nested\", ...)"),
        "role": ((str,), "a key of the play's roles"),
        "params": ((dict,), "an object of variable names to values"),
        "include": ((str,), "what the block includes (a file or role name)"),
        "include_choice": ((dict,), "an object {\"name\": TEMPLATE, \"select\": {NAME: "
                           "BLOCK_INDEX}, \"found\": {TERM: NAME}}"),
        "include_error": ((dict,), "an object {\"reason\": TEXT, \"include\": NAME, \"errored\": BOOLEAN, "
                          "\"exit\": 4, \"action\": BOOLEAN, \"when_first\": BOOLEAN}: the include fails with REASON "
                          "when it runs (the run errors when errored; exit 4: ansible-core's parser error, "
                          "the run's exit code; action: before its condition, when_first: only once its "
                          "condition is true)"),
        "include_items": ((list,), "an array of the ids of the includes that run the loop's later items, one "
                          "per item: this include (a loop) renders the items, decides each one's "
                          "condition and runs its first item"),
        "include_item": ((str,), "the id of the looped include (include_items) whose item this include runs"),
        "implicit_flush": ((bool,), "true: the meta: flush_handlers ansible-core adds at the end of pre_tasks "
                           "and of roles + tasks (under force_handlers, a host that failed a task of "
                           "that section runs its handlers there)"),
        "include_slots": ((dict,), "an object {HOST: [INDEX or null, ...]}: for each host, the include (0: this "
                          "one, N: include_items' Nth) each item of its loop runs in (null: its condition is "
                          "false), when a host's items are not the includes' order; without include_items: "
                          "each item's place in the order the host runs them"),
        "include_once": ((bool,), "true: the include (run_once) is processed by the play's first host only"),
        "role_once": ((str,), "an identity string shared by repeats of one role"),
        "public": ((str,), "a key of the play's roles: an include_role with public: true, whose role's "
                           "defaults and vars the play's tasks see once a host ran it"),
        "vars_data": ((dict,), "an object of file names to objects of variables"),
        "vars_paths": ((dict,), "an object {PATH: NAME}: the controller path of each vars_data "
                                "file NAME, by which a host-rendered name may give it"),
        "origins": ((dict,), "an object {CONDITIONAL: \"FILE:LINE:COLUMN\" or {OPERAND: ORIGIN, \"\": ORIGIN}}: where the value of each "
                             "conditional whose result may not be a boolean came from; a set_fact's also "
                             "{\"=NAME\": ORIGIN}, where each value it sets was written"),
        "include_result": ((dict,), "an object: what register on an include gets per run"),
        "vars_dir": ((dict,), "an object {\"files\": [[PATH, VARIABLES], ...], \"error\": "
                              "MESSAGE or null, \"locked\": MESSAGE}, or with \"run_time\": DIR and \"options\" "
                              "one the controller reads when the task's phase starts (locked: "
                              "a vault file in it no secret opens: the task fails with MESSAGE)"),
        "collections": ((list,), "an array of collection names such as \"community.general\""),
        "async": ((int, str), "a number of seconds (0: not in the background) or a Jinja2 "
                              "expression string"),
        "poll": ((int, str), "a number of seconds (0: do not wait) or a Jinja2 expression string"),
        "args_template": ((str,), "a Jinja2 expression string giving an object of arguments "
                                  "(below the task's own args)"),
        "action_ds": ((dict,), "an object: the task's module key (or action) and args keyword as "
                               "written, for ansible-core to parse when an action plugin runs on "
                               "the controller"),
        "notify_missing": ((list,), "an array of names no handler of the play answers to (a changed "
                                    "result that notifies them fails the host, as in Ansible)"),
        "listen": ((str, list), "a topic string or an array of them"),  # handlers only
        "unnamed": ((bool,), "true (a handler with no name of its own: its name is its module's)"),
        # handlers only: an include_role's handler, which a notify finds once that include ran
        "included_by": ((list,), "an array of the ids of the include_role tasks whose run adds the handler"),
    }


EXTENSION_TYPES = _ext_kinds()


def _host_lookups() -> frozenset[str]:
    from rustle_deploy.runtime_index import runtime_plugins

    return frozenset(n for n in runtime_plugins()["lookup"] if "." not in n) - {"file", "template"}


def read_extras(r: Reader, d: dict[str, Any], pointer: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The extension keys present on a task or handler, type-checked."""
    out: dict[str, Any] = {}
    for key in keys:
        if key not in d:
            continue
        value, ptr = d[key], child(pointer, key)
        types, what = EXTENSION_TYPES[key]
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if ok and key in ("retries", "delay", "throttle") and isinstance(value, (int, float)) and value < 0:
            ok = False
        if ok and isinstance(value, list) and key in ("changed_when", "failed_when", "until",
                                                      "listen", "collections", "notify_missing", "included_by"):
            ok = all(isinstance(v, str) for v in value)
        if ok and key == "loop_with":
            ok = value in ("items", "flattened") or value in _host_lookups()
        if ok and key == "environment" and isinstance(value, list):
            ok = all(isinstance(v, (dict, str)) for v in value)
        if ok and key in ("environment", "vars", "loop_control", "params"):
            ok = all(isinstance(k, str) for k in value) if isinstance(value, dict) else True
        if not ok:
            r.expected(ptr, what, value, f"'{key}' keeps Ansible's meaning; write {what}")
        out[key] = value
    return out


# -- plan parts ---------------------------------------------------------------------------

_TASK_EXTENSIONS: tuple[str, ...] = tuple(k for k in EXTENSION_TYPES if k not in ("listen", "unnamed", "included_by"))


def read_args(r: Reader, value: Any, pointer: str) -> dict[str, Any]:
    args = r.obj(value, pointer, "an object of module arguments")
    src = args.get("src")
    if src is not None and not isinstance(src, str):
        r.expected(child(pointer, "src"), "a string", src, "src is a path, e.g. \"files/app.conf\"")
    return dict(args)


def _block_lists(r: Reader, d: dict[str, Any], pointer: str,
                 read: Callable[[Reader, Any, str], Task]) -> dict[str, Any]:
    """``block``/``rescue``/``always`` of a block task (extension), read with ``read``."""
    out: dict[str, Any] = {}
    for key in ("block", "rescue", "always"):
        if key not in d:
            continue
        ptr = child(pointer, key)
        items = r.arr(d[key], ptr, "an array of tasks")
        out[key] = tuple(read(r, t, child(ptr, i)) for i, t in enumerate(items))
    if "block" not in out:
        for key in ("rescue", "always"):
            if key in out:
                r.fail(child(pointer, key), f"'{key}' needs a 'block' beside it",
                       'a block task is {"task_id": ..., "name": ..., "block": [...], '
                       '"rescue": [...], "always": [...]}')
    return out


def _module_and_args(r: Reader, d: dict[str, Any], pointer: str, is_block: bool) -> tuple[str, dict[str, Any]]:
    if is_block:
        return "", {}
    module = r.string(r.req(d, "module", pointer, "a module name such as \"copy\""),
                      child(pointer, "module"))
    args = read_args(r, r.req(d, "args", pointer, "an object of module arguments"),
                     child(pointer, "args"))
    return module, args


def read_task(r: Reader, value: Any, pointer: str) -> Task:
    d = r.obj(value, pointer, "a task object")
    task_id = r.string(r.req(d, "task_id", pointer, "a string such as \"task_0\""),
                       child(pointer, "task_id"))
    name = r.string(r.req(d, "name", pointer, "a string"), child(pointer, "name"))
    lists = _block_lists(r, d, pointer, read_task)
    module, args = _module_and_args(r, d, pointer, "block" in lists)
    hosts = r.opt(d, "hosts", pointer, r.strings, ())
    dependencies = r.opt(d, "dependencies", pointer, r.strings, ())
    conditions = _conditions(r, d, pointer)
    tags = r.opt(d, "tags", pointer, r.strings, ())
    notify = r.opt(d, "notify", pointer, r.strings, ())
    order = r.opt(d, "execution_order", pointer, r.integer, 0)
    r.opt(d, "can_run_parallel", pointer, r.boolean, False)
    r.opt(d, "estimated_duration", pointer, r.duration, None)
    r.opt(d, "risk_level", pointer, lambda v, p: r.enum(v, p, RISK_LEVELS), "Low")
    extras = read_extras(r, d, pointer, _TASK_EXTENSIONS)
    return Task(task_id=task_id, name=name, module=module, args=args, hosts=hosts,
                conditions=conditions, tags=tags, notify=notify, execution_order=order,
                dependencies=dependencies, extras=extras, pointer=pointer, **lists)


def read_handler(r: Reader, value: Any, pointer: str) -> Task:
    d = r.obj(value, pointer, "a handler object")
    id_key = "handler_id" if "handler_id" in d or "task_id" not in d else "task_id"
    handler_id = r.string(r.req(d, id_key, pointer, "a string such as \"handler_0\""),
                          child(pointer, id_key))
    name = r.string(r.req(d, "name", pointer, "the name that notify refers to"),
                    child(pointer, "name"))
    lists = _block_lists(r, d, pointer, read_task)
    module, args = _module_and_args(r, d, pointer, "block" in lists)
    conditions = _conditions(r, d, pointer)
    order = r.opt(d, "execution_order", pointer, r.integer, 0)
    hosts = r.opt(d, "hosts", pointer, r.strings, ())
    tags = r.opt(d, "tags", pointer, r.strings, ())
    notify = r.opt(d, "notify", pointer, r.strings, ())
    extras = read_extras(r, d, pointer, tuple(EXTENSION_TYPES))
    return Task(task_id=handler_id, name=name, module=module, args=args, hosts=hosts,
                conditions=conditions, tags=tags, notify=notify, execution_order=order,
                extras=extras, pointer=pointer, **lists)


def _conditions(r: Reader, d: dict[str, Any], pointer: str) -> tuple[Condition, ...]:
    if "conditions" not in d:
        return ()
    ptr = child(pointer, "conditions")
    items = r.arr(d["conditions"], ptr, "an array of conditions")
    return tuple(r.condition(c, child(ptr, i)) for i, c in enumerate(items))


def _parallel_group(r: Reader, value: Any, pointer: str) -> None:
    d = r.obj(value, pointer, "a parallel group object")
    r.opt(d, "group_id", pointer, r.string, "")
    r.opt(d, "tasks", pointer, r.strings, ())
    r.opt(d, "max_parallelism", pointer, r.integer, 0)
    r.opt(d, "shared_resources", pointer, r.strings, ())


def read_batch(r: Reader, value: Any, pointer: str) -> Batch:
    d = r.obj(value, pointer, "a batch object")
    batch_id = r.string(r.req(d, "batch_id", pointer, "a string such as \"binary-batch\""),
                        child(pointer, "batch_id"))
    tptr = child(pointer, "tasks")
    raw_tasks = r.arr(r.req(d, "tasks", pointer, "an array of tasks"), tptr, "an array of tasks")
    tasks = tuple(read_task(r, t, child(tptr, i)) for i, t in enumerate(raw_tasks))
    hosts = r.opt(d, "hosts", pointer, r.strings, ())
    dependencies = r.opt(d, "dependencies", pointer, r.strings, ())
    if "parallel_groups" in d:
        gptr = child(pointer, "parallel_groups")
        for i, g in enumerate(r.arr(d["parallel_groups"], gptr)):
            _parallel_group(r, g, child(gptr, i))
    r.opt(d, "estimated_duration", pointer, r.duration, None)
    return Batch(batch_id=batch_id, hosts=hosts, tasks=tasks, dependencies=dependencies,
                 pointer=pointer)


def read_play(r: Reader, value: Any, pointer: str, default_strategy: Strategy) -> Play:
    d = r.obj(value, pointer, "a play object")
    play_id = r.string(r.req(d, "play_id", pointer, "a string such as \"play-0\""),
                       child(pointer, "play_id"))
    name = r.string(r.req(d, "name", pointer, "a string"), child(pointer, "name"))
    hosts = r.strings(r.req(d, "hosts", pointer, "an array of host names"),
                      child(pointer, "hosts"))
    strategy = r.opt(d, "strategy", pointer, r.strategy, default_strategy)
    serial = r.opt(d, "serial", pointer, r.serial, None)
    max_fail = r.opt(d, "max_fail_percentage", pointer,
                     lambda v, p: None if v is None else r.percentage(v, p), None)
    fatal = r.opt(d, "any_errors_fatal", pointer, r.boolean, False)
    order = r.opt(d, "order", pointer, lambda v, p: _order(r, v, p), "inventory")
    force_handlers = r.opt(d, "force_handlers", pointer, r.boolean, False)
    pattern = r.opt(d, "hosts_pattern", pointer, r.string, None)
    fact_path = r.opt(d, "fact_path", pointer, r.string, None)
    gather_subset = r.opt(d, "gather_subset", pointer, lambda v, p: gather_subset_names(r, v, p), None)
    gather_timeout = r.opt(d, "gather_timeout", pointer, lambda v, p: r.opt_integer(v, p, minimum=1), None)
    bptr = child(pointer, "batches")
    raw_batches = r.arr(r.req(d, "batches", pointer, "an array of batches"), bptr,
                        "an array of batches")
    batches = tuple(read_batch(r, b, child(bptr, i)) for i, b in enumerate(raw_batches))
    handlers: tuple[Task, ...] = ()
    if "handlers" in d:
        hptr = child(pointer, "handlers")
        raw = r.arr(d["handlers"], hptr, "an array of handlers")
        handlers = tuple(read_handler(r, h, child(hptr, i)) for i, h in enumerate(raw))
    play_vars = _variables(r, d, "vars", pointer)
    defaults = _variables(r, d, "defaults", pointer)
    roles: dict[str, dict[str, Any]] = {}
    if "roles" in d and d["roles"] is not None:
        rptr = child(pointer, "roles")
        for key, entry in r.obj(d["roles"], rptr, "an object of role invocations").items():
            eptr = child(rptr, key)
            e = r.obj(entry, eptr, "a role object such as {\"name\": \"web\", \"defaults\": {}, "
                      "\"vars\": {}, \"params\": {}}")
            role: dict[str, Any] = {}
            for field_ in ("name", "path"):
                if field_ in e:
                    role[field_] = r.string(e[field_], child(eptr, field_))
            for field_ in ("defaults", "vars", "params"):
                role[field_] = _variables(r, e, field_, eptr)
            roles[str(key)] = role
    r.opt(d, "estimated_duration", pointer, r.duration, None)
    return Play(play_id=play_id, name=name, hosts=hosts, strategy=strategy, serial=serial,
                batches=batches, handlers=handlers, vars=play_vars, pointer=pointer,
                max_fail_percentage=max_fail, any_errors_fatal=fatal, order=order,
                force_handlers=force_handlers, defaults=defaults, roles=roles, fact_path=fact_path,
                gather_subset=gather_subset, gather_timeout=gather_timeout, pattern=pattern)


def gather_subset_names(r: Reader, value: Any, pointer: str) -> tuple[str, ...] | None:
    """A play's ``gather_subset``: a list of names, each one of ansible-core's subsets (``!``
    before it excludes it, and an exclusion of a name it does not know is ignored, as in
    ansible-core). A string is a list of that one name, as ansible-core reads the play keyword:
    ``"!all,!min,network"`` is one (unknown) exclusion, not three names."""
    if value is None:
        return None
    from ..runtime_index import gather_subsets

    names = (value,) if isinstance(value, str) else r.strings(value, pointer)
    for i, name in enumerate(names):
        if not name.startswith("!") and name not in gather_subsets():
            r.fail(pointer if isinstance(value, str) else child(pointer, i), f"bad subset {name!r} in gather_subset",
                   "gather_subset names ansible-core's subsets: all, min, hardware, network, virtual, "
                   "a collector (lsb, dns, ...) or a fact (kernel, mounts, ...), each negated with !")
    return names


def _order(r: Reader, value: Any, pointer: str) -> str:
    if not isinstance(value, str) or value not in HOST_ORDERS:
        r.fail(pointer, f"unknown play order {json.dumps(value)}",
               f"order is one of {', '.join(HOST_ORDERS)} (Ansible's play keyword)")
    return value


def _variables(r: Reader, d: dict[str, Any], key: str, pointer: str) -> dict[str, Any]:
    """An optional object of variables (play ``vars``, ``defaults``; top-level ``extra_vars``)."""
    if key not in d or d[key] is None:
        return {}
    ptr = child(pointer, key)
    value = r.obj(d[key], ptr, "an object of variables")
    for name in value:
        if not isinstance(name, str):
            r.expected(ptr, "an object with string keys", value)
    return dict(value)


def read_options(r: Reader, value: Any, pointer: str) -> PlanningOptions:
    d = r.obj(value, pointer, "a planning_options object")
    default = PlanningOptions()
    return PlanningOptions(
        limit=r.opt(d, "limit", pointer, r.opt_string, None),
        tags=r.opt(d, "tags", pointer, r.strings, ()),
        skip_tags=r.opt(d, "skip_tags", pointer, r.strings, ()),
        check_mode=r.opt(d, "check_mode", pointer, r.boolean, False),
        diff_mode=r.opt(d, "diff_mode", pointer, r.boolean, False),
        forks=r.opt(d, "forks", pointer, lambda v, p: r.integer(v, p, minimum=1), default.forks),
        serial=r.opt(d, "serial", pointer, r.serial, None),
        strategy=r.opt(d, "strategy", pointer, r.strategy, default.strategy),
        binary_threshold=r.opt(d, "binary_threshold", pointer, r.integer,
                               default.binary_threshold),
        force_binary=r.opt(d, "force_binary", pointer, r.boolean, False),
        force_ssh=r.opt(d, "force_ssh", pointer, r.boolean, False),
        allow_broken_conditionals=r.opt(d, "allow_broken_conditionals", pointer, r.boolean, False),
        deprecation_warnings=r.opt(d, "deprecation_warnings", pointer, r.boolean, True),
        become_config=r.opt(d, "become_config", pointer, lambda v, p: _become_config(r, v, p), {}),
    )


def _become_config(r: Reader, value: Any, pointer: str) -> dict[str, dict[str, str]]:
    """planning_options.become_config: {"sudo"|"su": {"exe": TEXT, "flags": TEXT}}."""
    out: dict[str, dict[str, str]] = {}
    for method, options in r.obj(value, pointer, "an object of become methods").items():
        where = f"{pointer}/{method}"
        if method not in ("sudo", "su"):
            r.fail(where, f"become method {method!r} is not one rustle-deploy runs", "sudo or su")
        out[method] = {}
        for name, text in r.obj(options, where, "an object with exe and flags").items():
            if name not in ("exe", "flags"):
                r.fail(f"{where}/{name}", f"unknown become option {name!r}", "exe or flags")
            out[method][name] = r.string(text, f"{where}/{name}")
    return out


_OS_TRIPLES = {
    "linux": "unknown-linux-gnu",
    "darwin": "apple-darwin",
    "macos": "apple-darwin",
    "windows": "pc-windows-msvc",
    "freebsd": "unknown-freebsd",
    "netbsd": "unknown-netbsd",
    "openbsd": "unknown-openbsd",
}
_ARCH_ALIASES = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}


def triple_from(arch: str, os_name: str) -> str:
    """``x86_64`` + ``linux`` -> ``x86_64-unknown-linux-gnu`` (Rust's target triple)."""
    arch = _ARCH_ALIASES.get(arch.lower(), arch.lower())
    os_name = os_name.lower()
    return f"{arch}-{_OS_TRIPLES.get(os_name, 'unknown-' + os_name)}"


def _static_file(r: Reader, value: Any, pointer: str) -> StaticFile:
    d = r.obj(value, pointer, "a static file object")
    src = r.string(r.req(d, "src_path", pointer, "a local path"), child(pointer, "src_path"))
    dest = r.string(r.req(d, "dest_path", pointer, "a remote path"), child(pointer, "dest_path"))
    checksum = r.opt(d, "checksum", pointer, r.opt_string, None)
    if checksum == PLACEHOLDER_CHECKSUM or checksum == "":
        checksum = None
    size = r.opt(d, "size", pointer, r.opt_integer, None)
    return StaticFile(src_path=src, dest_path=dest, checksum=checksum, size=size)


def _embedded_plan(r: Reader, value: Any, pointer: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, dict):  # tolerate a plan that embeds the object itself
        return value
    text = r.string(value, pointer)
    try:
        decoded = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        r.fail(pointer, f"execution_plan is not valid JSON{where}",
               "embedded_data.execution_plan is a JSON *string* holding "
               '{"group_id": ..., "hosts": [...], "tasks": [...]}')
    return r.obj(decoded, pointer, "a JSON string encoding an object")


def read_deployment(r: Reader, value: Any, pointer: str) -> BinaryDeployment:
    d = r.obj(value, pointer, "a binary deployment object")
    dep_id = r.string(r.req(d, "deployment_id", pointer, "a string such as \"group_0\""),
                      child(pointer, "deployment_id"))
    target_hosts = r.strings(r.req(d, "target_hosts", pointer, "an array of host names"),
                             child(pointer, "target_hosts"))
    binary_name = r.opt(d, "binary_name", pointer, r.string, f"rustle-runner-{dep_id}")
    key = "tasks" if "tasks" in d or "task_ids" not in d else "task_ids"  # legacy: task_ids
    if key == "task_ids":
        r.legacy_task_ids.add(pointer)
    task_ids = r.strings(r.req(d, key, pointer, "an array of task ids"), child(pointer, key))
    modules = r.opt(d, "modules", pointer, r.strings, ())
    embedded_plan: dict[str, Any] | None = None
    static_files: tuple[StaticFile, ...] = ()
    variables: dict[str, Any] = {}
    facts: tuple[str, ...] = ()
    if "embedded_data" in d and d["embedded_data"] is not None:
        eptr = child(pointer, "embedded_data")
        e = r.obj(d["embedded_data"], eptr, "an embedded_data object")
        embedded_plan = r.opt(e, "execution_plan", eptr, lambda v, p: _embedded_plan(r, v, p),
                              None)
        if "static_files" in e:
            sptr = child(eptr, "static_files")
            static_files = tuple(_static_file(r, s, child(sptr, i))
                                 for i, s in enumerate(r.arr(e["static_files"], sptr)))
        if "variables" in e and e["variables"] is not None:
            variables = dict(r.obj(e["variables"], child(eptr, "variables")))
        facts = r.opt(e, "facts_required", eptr, r.strings, ())
    mode = r.opt(d, "execution_mode", pointer, lambda v, p: r.enum(v, p, EXECUTION_MODES),
                 "Controller")
    r.opt(d, "estimated_size", pointer, r.opt_integer, None)
    triple = None
    if "compilation_requirements" in d and d["compilation_requirements"] is not None:
        triple = _triple(r, d["compilation_requirements"], child(pointer, "compilation_requirements"))
    return BinaryDeployment(
        deployment_id=dep_id, target_hosts=target_hosts, binary_name=binary_name,
        task_ids=task_ids, modules=modules, embedded_plan=embedded_plan,
        static_files=static_files, variables=variables, facts_required=facts,
        execution_mode=mode, target_triple=triple, pointer=pointer)


def _triple(r: Reader, value: Any, pointer: str) -> str | None:
    c = r.obj(value, pointer, "a compilation_requirements object")
    legacy = r.opt(c, "target_triple", pointer, r.opt_string, None)
    arch = r.opt(c, "target_arch", pointer, r.opt_string, None)
    os_name = r.opt(c, "target_os", pointer, r.opt_string, None)
    r.opt(c, "rust_version", pointer, r.opt_string, None)
    r.opt(c, "cross_compilation", pointer, r.boolean, False)
    r.opt(c, "static_linking", pointer, r.boolean, False)
    if legacy:
        return legacy
    if arch and os_name:
        return triple_from(arch, os_name)
    if arch or os_name:
        missing = "target_os" if arch else "target_arch"
        r.fail(child(pointer, missing), f"missing required key '{missing}' (target_arch and "
               "target_os go together)", 'e.g. "target_arch": "x86_64", "target_os": "linux"')
    return None


def _reject_constant(name: str) -> NoReturn:
    # json accepts NaN/Infinity, which JSON (and rustle-plan) does not have.
    raise ValueError(f"{name} is not valid JSON")


# -- the document -------------------------------------------------------------------------

_PLAY_KEYS = r"^\s*-?\s*(hosts|tasks|roles|import_playbook|include_playbook|name|vars|gather_facts)\s*:"  # re.M


def _looks_like_playbook(text: str) -> bool:
    """A YAML list of plays: what users hand over when they skip rustle-plan."""
    head = text.lstrip()
    return (head.startswith("---") or head.startswith("- ")) and bool(re.search(_PLAY_KEYS, text, re.M))


def decode(r: Reader, data: bytes) -> Any:
    """Bytes -> JSON value; a bad encoding or syntax is a PlanError at pointer "/"."""
    hint = "the file is not JSON as rustle-plan writes it (truncated or edited?); regenerate it"
    if not data.strip():
        r.fail("/", "the plan is empty", "pass the JSON file that rustle-plan wrote")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        r.fail("/", f"not UTF-8 text: invalid byte at offset {exc.start}", hint)
    try:
        return untag_unsafe(json.loads(text, parse_constant=_reject_constant))
    except json.JSONDecodeError as exc:
        if _looks_like_playbook(text):
            raise PlanError(
                "this is an Ansible playbook (YAML), not an execution plan",
                "make a plan first: rustle-parse playbook.yml | rustle-plan > plan.json; "
                "then rustle-deploy plan.json",
                file=r.source, pointer="/") from exc
        raise PlanError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                        hint, file=r.source, pointer="/") from exc
    except RecursionError as exc:
        raise PlanError("not valid JSON: nested too deeply", hint, file=r.source,
                        pointer="/") from exc
    except ValueError as exc:
        raise PlanError(f"not valid JSON: {exc}", hint, file=r.source, pointer="/") from exc


def read_document(r: Reader, doc: Any, *, base_dir: str, sha256: str) -> Plan:
    """A decoded JSON document -> Plan (shape only; cross-references are validate.py's)."""
    top = r.obj(doc, "", "a plan object with metadata, plays and total_tasks")
    mptr = "/metadata"
    meta = r.obj(r.req(top, "metadata", "", "an object"), mptr, "a metadata object")
    version = r.string(r.req(meta, "rustle_plan_version", mptr, 'a string such as "0.1.0"'),
                       child(mptr, "rustle_plan_version"))
    created_at = r.opt(meta, "created_at", mptr, r.opt_string, None)
    for key in ("playbook_hash", "inventory_hash"):
        r.opt(meta, key, mptr, r.opt_string, None)
    options = PlanningOptions()
    if "planning_options" in meta and meta["planning_options"] is not None:
        options = read_options(r, meta["planning_options"], child(mptr, "planning_options"))
    plays_raw = r.arr(r.req(top, "plays", "", "an array of plays"), "/plays", "an array of plays")
    plays = tuple(read_play(r, p, child("/plays", i), options.strategy)
                  for i, p in enumerate(plays_raw))
    deployments: tuple[BinaryDeployment, ...] = ()
    if "binary_deployments" in top and top["binary_deployments"] is not None:
        raw = r.arr(top["binary_deployments"], "/binary_deployments",
                    "an array of binary deployments")
        deployments = tuple(read_deployment(r, b, child("/binary_deployments", i))
                            for i, b in enumerate(raw))
    total = r.integer(r.req(top, "total_tasks", "", "an integer"), "/total_tasks")
    hosts = r.opt(top, "hosts", "", r.strings, ())
    extra_vars = _variables(r, top, "extra_vars", "")
    playbook_dir = r.opt(top, "playbook_dir", "", r.opt_string, None)
    playbook_dirs = tuple(r.opt(top, "playbook_dirs", "", r.strings, ()))
    for key in ("estimated_duration", "estimated_compilation_time"):
        r.opt(top, key, "", r.duration, None)
    for key in ("parallelism_score", "network_efficiency_score"):
        r.opt(top, key, "", lambda v, p: None if v is None else r.number(v, p), None)
    return Plan(source=r.source, base_dir=base_dir, sha256=sha256, rustle_plan_version=version,
                created_at=created_at, options=options, plays=plays,
                binary_deployments=deployments, total_tasks=total, hosts=hosts,
                extra_vars=extra_vars, playbook_dir=playbook_dir, playbook_dirs=playbook_dirs)
