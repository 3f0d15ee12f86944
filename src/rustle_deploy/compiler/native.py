"""Lower a build unit to a native artifact: the program rustle-runner applies (docs/native.md).

The runner does not evaluate Jinja2, so everything that is known at compile time is evaluated
here, per host, with the runtime's own templating code (the same code a pyz artifact runs on the
host, so the values are the same): task arguments, loop items, templates, static conditions.
What depends on the run itself (registered results) stays as an expression tree for the runner.
A task that needs more (facts, ``set_fact``, a module the runner lacks, a templated argument over a
registered result...) makes the whole unit unsupported: ``NativeUnsupported`` names the task and
why, and ``--format pyz`` runs it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from ..errors import CompileError
from ..model import tag_unsafe
from ..runtime_index import runtime_root
from ..transport.options import prompted_become
from .units import BuildUnit

NATIVE_FORMAT = "rustle-native"
NATIVE_VERSION = 1
TEMPLATE_KEY = "__rustle_template__"  # an argument the runner renders: literal text and expressions
EXPR_KEY = "__rustle_expr__"  # an argument that is one expression's value
# facts the runner gathers itself (facts.rs, the same values as the runtime's facts.py)
NATIVE_FACTS = frozenset({
    "system", "kernel", "kernel_version", "machine", "architecture", "hostname", "nodename", "pkg_mgr",
    "service_mgr", "env", "processor_vcpus", "processor_nproc", "processor_count", "memtotal_mb",
    "fips", "distribution", "os_family", "distribution_version", "distribution_major_version",
    "distribution_release", "user_id", "user_uid", "user_gid", "user_dir", "user_shell", "user_gecos",
    "machine_id", "distribution_minor_version", "swaptotal_mb", "fqdn", "domain", "userspace_bits",
    "userspace_architecture", "date_time",
})
MODULES = frozenset({"file", "copy", "template", "lineinfile", "blockinfile", "replace", "command", "shell",
                     "stat", "assert", "debug", "fail", "ping", "set_fact", "tempfile", "known_hosts", "apt"})
# the options of modules whose argument spec the runner does not check itself (tempfile.rs,
# known_hosts.rs)
_SPEC = {"tempfile": frozenset({"state", "path", "prefix", "suffix"}),
         "known_hosts": frozenset({"name", "key", "path", "hash_host", "state"}),
         # packages.rs: the options the runtime's packages.apt applies (deb, upgrade and the ones
         # it accepts without applying: pyz)
         "apt": frozenset({"name", "pkg", "package", "state", "update_cache", "update-cache", "cache_valid_time",
                           "purge", "autoremove", "clean", "install_recommends", "default_release",
                           "allow_downgrade", "only_upgrade", "dpkg_options"})}
_APT_STATES = ("present", "installed", "latest", "absent", "removed")
# ``lookup('first_found', NAME)`` as an include's whole file name: chosen on the host
_FIRST_FOUND = re.compile(r"^\s*\{\{\s*lookup\(\s*(['\"])first_found\1\s*,\s*([A-Za-z_]\w*)\s*\)\s*\}\}\s*$")
# a condition that holds only before any fact is gathered: the runner gathers facts, and so does
# the pyz runtime when the name is read (lazily), so it is false on every host
_NO_FACTS_YET = re.compile(r"^\s*ansible_facts\s*==\s*\{\s*\}\s*$")
# task keys the runner understands (everything else makes the task unsupported); ``origins``
# goes into each COND that has one
_KNOWN = frozenset({"id", "name", "module", "args", "hosts", "when", "tags", "notify", "listen",
                    "register", "loop", "loop_control", "ignore_errors", "no_log", "changed_when",
                    "failed_when", "check_mode", "diff", "environment", "vars", "files", "become",
                    "become_user", "become_method", "role", "unnamed", "bridge", "origins", "loop_with", "timeout",
                    "banner", "included_by"})
# keys of a block or an include (a task with ``block``) the runner understands
_CONTAINER = frozenset({"id", "name", "block", "rescue", "always", "when", "include", "include_choice",
                        "include_result", "params", "register", "role_once", "tags", "hosts", "role", "vars",
                        "origins", "banner", "included_by", "ignore_errors", "listen", "include_error"})
# what a rescue section sees of the failure (executor._run_sections)
_FAILURE_NAMES = frozenset({"ansible_failed_task", "ansible_failed_result"})
_BOOL_KEYS = ("ignore_errors", "no_log", "check_mode", "diff")
# Jinja2 tests that look at the file system (ansible.builtin's files tests): deciding them while
# compiling would see the file system before the play changed it
# ``vars`` given whole (not ``vars.x`` or ``vars['x']``): ansible-core 2.19 flattens it to a dict
# holding hostvars, which the compile-time scope does not have
# the play's host lists, which the controller keeps while the play runs (a host that fails leaves
# the first three): the pyz runtime has them, the native runner does not
_HOST_LISTS = {
    "ansible_play_hosts": "the play's hosts still in it (a host that failed leaves it)",
    "ansible_play_batch": "the hosts of the play's current batch (serial) still in it",
    "play_hosts": "ansible_play_batch's old name (the hosts of the play's current batch still in it)",
    "ansible_play_hosts_all": "every host of the play",
}
_HOST_LIST_READ = re.compile(r"\b(" + "|".join(sorted(_HOST_LISTS, key=len, reverse=True)) + r")\b")
_WHOLE_VARS = re.compile(r"(?<![\w.'\"])vars\b(?!\s*[\[.'\"])")
_PATH_TEST = re.compile(r"\bis\s+(?:not\s+)?(?:is_)?(?:link|link_exists|file|directory|dir|exists|mount|same_file)\b")


def _handler_topic(index: int) -> str:
    """The listen topic that names the play's handler ``index`` alone, which a lowered notify
    lists: the runner matches no name or topic of the playbook's own."""
    return f"rustle handler #{index}"


_LOOP_CONTROL = frozenset({"loop_var", "label", "index_var", "extended"})  # pause: not yet
_MAX_TIMEOUT = 100000000  # ansible-core's limit on a task's timeout (executor._MAX_TIMEOUT)
# names whose value is decided by the run's options, not by the inventory
_RUN_NAMES = frozenset({"ansible_check_mode", "ansible_diff_mode", "ansible_verbosity",
                        "ansible_run_tags", "ansible_skip_tags"})
_FILTERS = frozenset({"bool", "int", "float", "length", "count", "lower", "upper", "string", "trim",
                      "first", "last", "default", "d", "basename", "split", "expanduser"})
_TESTS = frozenset({"defined", "undefined", "none", "number", "string", "mapping", "boolean", "true",
                    "false", "in", "eq", "ne", "equalto", "failed", "failure", "succeeded", "success",
                    "successful", "changed", "change", "skipped", "skip", "finished", "timedout", "truthy",
                    "falsy", "contains"})
_RE_CATEGORIES = frozenset({"CATEGORY_DIGIT", "CATEGORY_NOT_DIGIT", "CATEGORY_SPACE",
                            "CATEGORY_NOT_SPACE", "CATEGORY_WORD", "CATEGORY_NOT_WORD"})
_RE_AT = frozenset({"AT_BEGINNING", "AT_END", "AT_BEGINNING_STRING", "AT_END_STRING", "AT_BOUNDARY",
                    "AT_NON_BOUNDARY"})


def run_names(doc: dict[str, Any]) -> set[str]:
    """The names a plan's run sets on the host: registered results (of tasks and includes) and
    ``set_fact`` names (what the runner keeps, docs/native.md); the lowering leaves them to the
    runner."""
    names = set()
    stack = [t for play in doc["plays"] for t in play["tasks"] + play["handlers"]]
    while stack:
        task = stack.pop()
        if task.get("register"):
            names.add(task["register"])
        if "block" in task:
            stack.extend(t for key in ("block", "rescue", "always") for t in task.get(key) or () if isinstance(t, dict))
        elif task.get("module") == "set_fact" and isinstance(task.get("args"), dict):
            names.update(str(k) for k in task["args"] if k != "cacheable")
    return names


def _included_by(handler: dict[str, Any]) -> list[str] | None:
    """The ids of the includes (as the containers the runner reports carry them) whose run makes
    ``handler`` notifiable, or None for a handler notifiable from the play's start
    (executor._notify)."""
    if handler.get("included_by") is None:
        return None
    parent = str(handler.get("id", "")).rpartition("/")[0]
    return [f"{parent}/{i}" for i in handler["included_by"]]


def _leaves(play: dict[str, Any]) -> list[dict[str, Any]]:
    """Every task of ``play`` that is not a block, its handlers too, at any depth."""
    out, stack = [], list(play["tasks"]) + list(play["handlers"])
    while stack:
        task = stack.pop()
        if not isinstance(task, dict):
            continue
        if "block" in task:
            stack.extend(t for key in ("block", "rescue", "always") for t in task.get(key) or ())
        else:
            out.append(task)
    return out


def _utf8(text: str) -> bool:
    """Whether ``text`` is UTF-8 text the runner's JSON can carry (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_LONG_DIGITS = re.compile(r"[0-9]{19}")  # the fewest digits of an int outside -2**63 .. 2**63 - 1


def _big_int(value: Any) -> int | None:
    """An int in ``value`` (at any depth) that does not fit the runner's i64, or None."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, int) and not isinstance(item, bool) and not -2**63 <= item < 2**63:
            return item
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return None


def _marker(value: Any) -> bool:
    """Whether ``value`` is a dict the runner would render (docs/native.md)."""
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in (TEMPLATE_KEY, EXPR_KEY)


class NativeUnsupported(CompileError):
    """The unit needs something the native runner does not do."""


def _host_list(name: str) -> str:
    return (f"'{name}' is {_HOST_LISTS[name]}, a list the controller keeps while the play runs, which "
            "the native runner does not have (the pyz runtime does)")


# names the pyz runtime gives a task from the run's own state, which a program cannot hold
_RUNTIME_ONLY = {
    "hostvars": "every host's variables with what the run set of them (facts, set_fact, registered "
                "results), which the pyz runtime gives a task",
}


def _run_time(name: str) -> str:
    """Why a task reading ``name`` (a ``_Dynamic``) is the pyz runtime's."""
    if name in _HOST_LISTS:
        return _host_list(name)
    if name in _RUNTIME_ONLY:
        return f"'{name}' is {_RUNTIME_ONLY[name]}; the native runner does not have it"
    return f"'{name}' is only known on the host while the plan runs"


def _not_static(value: Any, exc: Exception) -> str:
    """Why a value that failed to render at compile time makes its task the pyz runtime's."""
    found = _HOST_LIST_READ.search(value if isinstance(value, str) else json.dumps(value, default=str))
    return _host_list(found.group(1)) if found else f"cannot be evaluated at compile time: {exc}"


class _Dynamic(BaseException):  # noqa: N818 - a signal, not an error; BaseException so Jinja2 passes it on
    """A name whose value is only known on the host while the plan runs."""

    def __init__(self, name: str):
        BaseException.__init__(self, name)
        self.name = name


@functools.cache
def _runtime() -> Any:
    """The runtime's templating module, imported from the shipped sources (once: every host's
    lowering asks)."""
    root = str(runtime_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    from rustle_runtime import executor, expr, templating  # type: ignore[import-not-found]

    return templating, expr, executor


@functools.cache
def _fact_names() -> frozenset[str]:
    """Every fact the runtime's facts.py gathers (``ansible_`` names), and ``ansible_local``."""
    _runtime()
    from rustle_runtime.facts import FACT_COLLECTOR  # type: ignore[import-not-found]

    return frozenset("ansible_" + name for name in [*FACT_COLLECTOR, "local"])


def lower_unit(unit: BuildUnit, runner_sha: str,
               python: bytes | None = None) -> list[tuple[list[str], bytes, list[str]]]:
    """The native artifacts for ``unit``: (hosts, bytes, why) each; ``why`` says, for a hybrid
    build, which tasks the host's Python runs and why (the first host's).

    The compiler specialises the program per host, so hosts get artifacts of their own: a host
    receives its own program, not every host's (at 1,000 hosts that is 8 KB instead of 6 MB).
    Hosts whose programs come out the same share one artifact.

    ``python``: the unit's pyz artifact, for a hybrid build (docs/native.md, "Hybrid
    artifacts"): a task that does not lower (and ``hybrid_refusal`` allows) is left to that
    runtime on the host, which the runner starts at the first such task; a host's program
    with no such task is a plain native one, without the pyz.
    """
    doc = unit.plan_doc
    for host in unit.hosts:
        if prompted_become(host):
            raise NativeUnsupported(
                f"{host.name}: become through su, or with a become password, asks for the password on "
                "the host, which only the Python runtime answers",
                "use --format pyz for this plan (--format auto, the default, picks it)")
    blobs: dict[str, bytes] = {}
    for digest, path in sorted(unit.files.items()):
        data = unit.blobs[digest] if digest in unit.blobs else Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise CompileError(f"{path}: changed while compiling", "run again")
        blobs[digest] = data
    registered = run_names(doc)
    groups: dict[str, tuple[list[str], dict[str, Any], set[str], list[str]]] = {}
    python_sha = hashlib.sha256(python).hexdigest() if python is not None else None
    # the plan as the runtime sees it, made once for every host (no host's lowering changes it)
    untagged = _runtime()[2].untag(tag_unsafe(doc))
    shared = _Shared(untagged)
    for name in unit.host_names:
        lowering = _Lowering(untagged, name, registered, blobs, unit.host_vars.get(name), hybrid=python is not None,
                             shared=shared)
        program: dict[str, Any] = {"plays": lowering.plays(), "facts": lowering.uses_facts}
        discovery = _discovery(lowering.executor, unit.host_vars.get(name))
        if discovery is not None:
            program["discovery"] = discovery
        if lowering.to_python:
            assert python is not None and python_sha is not None
            blobs[python_sha] = python
            lowering.embedded.add(python_sha)
            program["python"] = {"runtime": python_sha, "interpreters": _interpreter(unit.host_vars.get(name)),
                                 "host_vars": tag_unsafe(unit.host_vars.get(name) or {})}
        key = json.dumps(program, sort_keys=True, default=str)
        why = [reason for _, reason in lowering.to_python]
        groups.setdefault(key, ([], program, lowering.embedded, why))[0].append(name)
    out = []
    for names, program, embedded, why in groups.values():
        used = sorted(embedded)
        artifact = {
            "format": NATIVE_FORMAT,
            "version": NATIVE_VERSION,
            "runner": runner_sha,
            "binary_name": doc["binary_name"],
            "check_mode": bool(doc.get("check_mode")),
            "diff_mode": bool(doc.get("diff_mode")),
            "hosts": {name: program for name in names},
            "files": {d: base64.b64encode(blobs[d]).decode() for d in used},
        }
        try:
            document = json.dumps(artifact, ensure_ascii=False, default=str).encode()
        except UnicodeEncodeError as exc:  # text that is not UTF-8 somewhere _Lowering.data did not see
            raise NativeUnsupported(f"{', '.join(names)}: the program holds bytes that are not UTF-8 text ({exc})",
                                    "use --format pyz for this plan (--format auto, the default, picks it)") from None
        out.append((names, seal(document), why))
    return out


# The runner takes the first of these that exists (a name without a slash: at once, from PATH)
HYBRID_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/libexec/platform-python", "python3")


def _discovery(executor: Any, host_vars: dict[str, Any] | None) -> dict[str, Any] | None:
    """What the runner needs to discover the host's Python as the pyz launcher does and report
    it as ansible-core does (``discovered_interpreter_python`` and its warning in the first
    Python module's result): the host's INTERPRETER_PYTHON mode, its fallback list, and the
    modules that run no Python under Ansible. None when the host names its interpreter."""
    value = (host_vars or {}).get("ansible_python_interpreter")
    mode = "auto" if value in (None, "") else value
    if mode not in executor._DISCOVERY_MODES:
        return None
    fallback = (host_vars or {}).get("ansible_interpreter_python_fallback")
    names = fallback.split(",") if isinstance(fallback, str) else fallback
    return {"mode": mode, "fallback": [str(n).strip() for n in names or executor._PYTHON_FALLBACK if str(n).strip()],
            "no_python": sorted(executor._NO_PYTHON)}


def _interpreter(host_vars: dict[str, Any] | None) -> list[str]:
    """The Pythons a hybrid program's tasks may run in on the host, the first one present is
    used: the inventory's ``ansible_python_interpreter`` when it names a path, else
    HYBRID_PYTHONS."""
    value = (host_vars or {}).get("ansible_python_interpreter")
    if isinstance(value, str) and value.startswith("/") and "{{" not in value:
        return [value]
    return list(HYBRID_PYTHONS)


# What a task left to the host's Python may not do: change what the lowering decided at compile
# time (variables, the inventory, facts beyond the runner's), or the run's flow (meta, phases).
_HYBRID_REFUSED = frozenset({"include_vars", "add_host", "group_by", "meta", "set_stats", "setup", "gather_facts",
                             "pause", "fetch", "include_role", "import_role", "include_tasks", "import_tasks",
                             "getent"})  # getent: its facts become variables (executor.module_facts)
_HYBRID_KEYWORDS = ("delegate_to", "delegate_facts", "run_once", "phase")


def hybrid_refusal(task: dict[str, Any]) -> str | None:
    """Why ``task`` cannot be left to the host's Python in a hybrid program, or None."""
    module = str(task.get("module") or "").rsplit(".", 1)[-1]
    if module in _HYBRID_REFUSED or module.endswith("_facts"):
        return f"module '{module}' changes what the rest of the program was compiled with"
    for key in _HYBRID_KEYWORDS:
        if task.get(key) not in (None, False, "", [], {}):
            return f"keyword '{key}'"
    if module == "set_fact" and any(not isinstance(k, str) or "{" in k for k in task.get("args") or {}):
        return "a set_fact name that is a template (the runner must know the names the run sets)"
    return None


def seal(document: bytes) -> bytes:
    """``document`` (a JSON object) with a last key, ``payload_sha256``: the sha256 of every
    byte before it. rustle-runner refuses to run or verify a document that does not match it
    (payload.rs ``check_digest``), so a program edited after the build never runs."""
    if not document.endswith(b"}"):
        raise ValueError("not a JSON object")
    head = document[:-1]
    return head + b', "payload_sha256": "' + hashlib.sha256(head).hexdigest().encode() + b'"}'



class _Shared:
    """What lowering a unit works out once for all its hosts: what reads the plan alone, never a
    host's variables (``lower_unit`` lowers each host's program with the same plan objects).
    Only what passed is kept: a refusal is worked out again on the host that meets it, so its
    message names that host, as before."""

    def __init__(self, doc: dict[str, Any]):
        # every play and role variable's name (see _Lowering.__init__)
        self.plan_names: set[str] = set()
        for play in doc["plays"]:
            layers = [play.get("vars"), play.get("defaults")]
            layers += [r.get(k) for r in (play.get("roles") or {}).values() for k in ("vars", "defaults")]
            self.plan_names.update(k for layer in layers if layer for k in layer)
        # by the ids of (play, task), each holding the two (so that an id is never another's):
        self.checked: dict[tuple[int, int], Any] = {}  # whose own keywords and arguments passed
        self.notified: dict[tuple[int, int], Any] = {}  # (play, task, the handlers its notify runs)
        self.parsed: dict[str, Any] = {}  # an expression's text: its parse (expr._Parser), never changed

    @staticmethod
    def seen(memo: dict[tuple[int, int], Any], play: dict[str, Any], task: dict[str, Any]) -> Any:
        """``memo``'s entry for this play's ``task`` (these very objects), or None."""
        entry = memo.get((id(play), id(task)))
        return entry if entry is not None and entry[0] is play and entry[1] is task else None


class _Lowering:
    """One host's program: plays of concrete module calls and conditions over registered results."""

    def __init__(self, doc: dict[str, Any], host: str, registered: set[str], blobs: dict[str, bytes],
                 own: dict[str, Any] | None = None, hybrid: bool = False, shared: _Shared | None = None):
        """``doc``: the plan already through ``executor.untag(tag_unsafe(...))`` (``lower_unit``
        does it once for all hosts); ``shared``: what the unit's other hosts' lowerings of the
        same ``doc`` worked out."""
        self.shared = shared if shared is not None else _Shared(doc)
        templating, expr, executor = _runtime()
        self.templating, self.expr, self.executor = templating, expr, executor
        # a string marked !unsafe is the runtime's UnsafeText here, as on the host: never a template
        own = None if own is None else executor.untag(tag_unsafe(own))
        self.doc, self.host, self.blobs = doc, host, blobs
        # an extra variable beats a registered result or set_fact (executor._task_scope): its
        # value is known now
        registered = registered - set(doc.get("extra_vars") or {})
        self.dynamic = registered | _RUN_NAMES
        self.templar = templating.Templar(allow_broken_conditionals=bool(doc.get("allow_broken_conditionals")))
        # the host's own variables (BuildUnit.host_vars); plan_doc carries only what the plan
        # reads of other hosts through hostvars
        host_vars = dict(own if own is not None else (doc.get("hosts") or {}).get(host) or {})
        groups = doc.get("groups") or {}
        host_vars.setdefault("group_names", sorted(
            g for g, members in groups.items() if host in members and g != "all"))
        host_vars.setdefault("ansible_host", host)  # the play context's address, as executor.Runner's
        host_vars.update({"inventory_hostname": host, "inventory_hostname_short": host.split(".")[0],
                          "groups": groups, "omit": executor.OMIT})
        if doc.get("playbook_dir"):  # the runtime's magic, over an inventory variable of the name
            host_vars["playbook_dir"] = doc["playbook_dir"]
        # what AnsiballZ's wrapper does before a Python module (its open-files limit, a debugger),
        # which the runtime does around each module (docs/remote.md) and the runner does not
        wrapper = [k for k in ("ansible_python_module_rlimit_nofile", "_ansible_ansiballz_pydevd_config")
                   if host_vars.get(k) not in (None, 0, "0", "", {})]
        if wrapper:
            raise NativeUnsupported(f"{host}: {wrapper[0]} is set for the host (ansible.cfg's python_module_rlimit_nofile "
                                    "and ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE set it too): the native runner does not "
                                    "apply it", "use --format pyz (--format auto picks it)")
        clash = sorted(registered & set(host_vars))
        if clash:
            raise NativeUnsupported(f"{host}: register name '{clash[0]}' is also a variable of the host",
                                    "rename the registered variable, or use --format pyz")
        # a name the run sets (set_fact, register) that is also a play or role variable has the
        # variable's value until it is set (executor._task_scope: the run's names lie above them).
        # Before the first task that may set it (in program order, the play's handlers counted
        # from its start) it is the variable; after it, the runner takes the run's value and
        # falls back on the variable's (``["name", X, DEFAULT]``, expr.rs)
        self.shadowed = registered & self.shared.plan_names
        self.dynamic -= self.shadowed  # until a task that sets one is lowered (mark_set)
        self.host_vars = host_vars
        self.dynamic |= _FAILURE_NAMES
        self.params: list[dict[str, Any]] = []  # the params of the includes being lowered (executor._params)
        self.uses_facts = False  # set when a condition or argument needs the host's facts
        self.subset: list[str] | None = None  # the gather_subset of the play being lowered
        self.handling = False  # lowering a handler (and what it includes)
        self.embedded: set[str] = set()  # the sha256 of every file the program names (copy/template src)
        self.hybrid = hybrid
        self.to_python: list[tuple[str, str]] = []  # (task id, why) of the tasks left to the host's Python

    # -- scopes ----------------------------------------------------------------------------------
    def scope(self, play: dict[str, Any], task: dict[str, Any] | None = None) -> Any:
        """The runtime's layers (executor._task_scope) without the run's own results."""
        task = task or {}
        role = (play.get("roles") or {}).get(task["role"]) if task.get("role") else None
        # the play's name: what executor._run_play adds to the host's variables for each play
        layers = [play.get("defaults") or {}, (role or {}).get("defaults") or {}, self.host_vars,
                  {"ansible_play_name": play.get("name", "")}, play.get("vars") or {},
                  (role or {}).get("vars") or {}, dict(task.get("vars") or {}),
                  self.executor._params_layer(role, task) or {}, *self.params, self.doc.get("extra_vars") or {}]
        return self.scope_class([layer for layer in layers if layer], self.templar)

    @functools.cached_property
    def scope_class(self) -> Any:
        """VarScope that raises ``_Dynamic`` for names only known while the plan runs."""
        dynamic = self.dynamic
        base = self.templating.VarScope
        fact_names = _fact_names()

        class _Scope(base):  # type: ignore[misc,valid-type]
            def child(self, *layers: Any) -> Any:
                return _Scope(self.layers + [dict(layer) for layer in layers if layer], self.templar)

            def raw(self, key: str) -> Any:
                # the play's host lists: the runtime sets them for each play, over any variable
                # of the name, and they change as the play runs (so `is defined` is not decided now)
                if key in dynamic or key in _HOST_LISTS:
                    raise _Dynamic(key)
                try:
                    return base.raw(self, key)
                except KeyError:
                    if key in fact_names or key in ("ansible_facts", "hostvars"):
                        raise _Dynamic(key) from None  # facts are gathered on the host
                    raise

        return _Scope

    # -- plays and tasks -------------------------------------------------------------------------
    def mark_set(self, names: Any) -> None:
        """From here on in the program, ``names`` may have been set by the run."""
        self.dynamic.update(self.shadowed & set(names))

    def plays(self) -> list[dict[str, Any]]:
        out = []
        for play in self.doc["plays"]:
            if self.host not in (play.get("hosts") or []):
                continue
            self.subset = play.get("gather_subset")
            if play.get("force_handlers") and play["handlers"]:  # the runner has no force_handlers
                raise NativeUnsupported(f"{self.host}: play {play.get('name', '')!r} has force_handlers: a host "
                                        "whose task fails must still run its notified handlers",
                                        "use --format pyz for this plan (--format auto, the default, picks it)")
            # handlers run after the tasks (or at a flush among them): what they set counts from
            # the play's start, and they see everything its tasks set
            before = set(self.dynamic)
            self.mark_set(run_names({"plays": [{"tasks": play["tasks"], "handlers": play["handlers"]}]}))
            lowered_handlers = []
            for index, handler in enumerate(play["handlers"]):
                self.handling = True  # a role's handler reports ``ROLE : NAME`` (executor._shown)
                try:
                    lowered = self.task(play, handler)
                finally:
                    self.handling = False
                if lowered is not None:  # named by a topic only it has: see notified()
                    lowered["listen"] = [_handler_topic(index)]
                    if handler.get("included_by") is not None:  # notifiable once one of them ran
                        lowered["included_by"] = _included_by(handler)
                    lowered_handlers.append(lowered)
            self.dynamic.intersection_update(before)
            self.mark_set(run_names({"plays": [{"tasks": [], "handlers": play["handlers"]}]}))
            out.append({"name": play.get("name", ""),
                        "tasks": [t for t in (self.task(play, t) for t in play["tasks"]) if t is not None],
                        "handlers": lowered_handlers})
        return out

    def notified(self, task: dict[str, Any], handlers: list[dict[str, Any]], notify: Any) -> list[str]:
        """A notify as the handlers it runs (Ansible's choice among names, ``ROLE : NAME`` and
        listen topics, made by the pyz runtime's own rule), each named by a topic only it has.

        An include_role's handlers (``included_by``) answer only once that include ran on the
        host (executor._notify): the runner leaves such a handler out until then. That is the
        pyz rule only when no handler the include adds changes which other handler a name
        finds (one of the same name would shadow the play's own once the include ran), which
        is checked here for every combination of the includes that may have run."""
        chosen: set[int] = set()
        late = sorted({i for h in handlers for i in _included_by(h) or ()})
        if len(late) > 6:
            raise self.fail(task, "more than 6 include_role tasks add handlers to the play")
        for name in self.executor._as_list(notify):
            every = self.executor._notified_handlers(handlers, str(name))
            chosen.update(id(h) for h in every)
            for mask in range(1 << len(late)) if late else ():
                ran = {i for n, i in enumerate(late) if mask >> n & 1}
                known = [h for h in handlers if _included_by(h) is None or ran & set(_included_by(h) or ())]
                got = {id(h) for h in self.executor._notified_handlers(known, str(name))}
                if got != {id(h) for h in every if any(h is k for k in known)}:
                    raise self.fail(task, f"which handler the notify {str(name)!r} runs depends on which "
                                          "include_role tasks ran (one of their handlers shadows another)")
        return [_handler_topic(i) for i, h in enumerate(handlers) if id(h) in chosen]

    def task_notify(self, play: dict[str, Any], task: dict[str, Any]) -> list[str]:
        """``notified`` for the task's own notify: the play's handlers alone decide it, so it is
        chosen once for all the unit's hosts."""
        entry = self.shared.seen(self.shared.notified, play, task)
        if entry is None:
            entry = self.shared.notified[id(play), id(task)] = (
                play, task, self.notified(task, play["handlers"], task.get("notify")))
        return list(entry[2])

    def notifiable(self, play: dict[str, Any]) -> list[dict[str, Any]]:
        """The play's handlers that some notify of the play (its tasks' and handlers', at any
        depth) may run, by the pyz runtime's rule, as if every include_role had run."""
        found: list[dict[str, Any]] = []
        for leaf in _leaves(play):
            for name in self.executor._as_list(leaf.get("notify")):
                found += self.executor._notified_handlers(play["handlers"], str(name))
        return found

    def fail(self, task: dict[str, Any], reason: str) -> NativeUnsupported:
        return NativeUnsupported(
            f"task '{task.get('name') or task.get('module')}' ({task.get('id')}) on {self.host}: {reason}",
            "the native runner does not do this; use --format pyz for this plan (--format auto, the default, picks it)",
        )

    def task(self, play: dict[str, Any], task: dict[str, Any]) -> dict[str, Any] | None:
        if task.get("hosts") is not None and self.host not in task["hosts"]:
            return None
        # what the task sets counts from the task itself on (a loop's next item sees it); a
        # block's tasks mark theirs as they are lowered
        own = [task["register"]] if task.get("register") else []
        if task.get("module") == "set_fact" and isinstance(task.get("args"), dict) and "block" not in task:
            own += [str(k) for k in task["args"] if k != "cacheable"]
        self.mark_set(own)
        if "block" in task:
            return self.container(play, task)
        if not self.hybrid:
            return self.checked(task, self.module_task(play, task))
        try:
            return self.checked(task, self.module_task(play, task))
        except NativeUnsupported as exc:
            refusal = hybrid_refusal(task)
            if refusal is not None:
                raise self.fail(task, f"{exc.message}; and it cannot run in the host's Python within the "
                                      f"runner's run: {refusal}") from exc
            ids = [t.get("id") for t in _leaves(play)]
            if ids.count(task.get("id")) != 1:
                raise
            self.to_python.append((str(task.get("id")), exc.message))
            return {"id": task.get("id"), "name": task.get("name") or task["module"], "module": task["module"],
                    "tags": list(task.get("tags") or []),
                    "python": {"play": self.doc["plays"].index(play), "id": task.get("id")}}

    def checked(self, task: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
        """``out`` when every value in it is data: a value Jinja2 left undefined at compile time
        (a lookup of a name only the host's run defines) makes the task unsupported, instead of
        failing when the program is written."""
        try:
            text = json.dumps(out, default=str)
        except Exception as exc:  # noqa: BLE001 - Jinja2's Undefined raises its own error from str()
            raise self.fail(task, f"a value is undefined at compile time: {exc}") from exc
        # an int beyond i64 has 19 digits or more, so JSON without such a run of digits holds none
        # (the walk, per task and host, was most of what lowering spent here)
        big = _big_int(out) if _LONG_DIGITS.search(text) else None
        if big is not None:  # Python's ints are unbounded; the runner's are i64 (json.rs)
            raise self.fail(task, f"the integer {big} is beyond the native runner's 64-bit integers")
        return out

    def module_task(self, play: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        module = task["module"]
        self.templar.origins = task.get("origins") or {}  # what the origin filter names, as on the host
        if module == "setup" and "loop" not in task:
            return self.never_run(play, task)
        if not self.shared.seen(self.shared.checked, play, task):  # the same for every host
            self.check_task(play, task)
            self.shared.checked[id(play), id(task)] = (play, task)
        timeout = task.get("timeout")
        control = task.get("loop_control") or {}
        scope = self.scope(play, task)
        out: dict[str, Any] = {
            "id": task.get("id"), "name": self.name(task, scope, module), "module": module,
            "tags": list(task.get("tags") or []), "register": task.get("register"),
            "args": None, "when": [], "loop": None, "loop_var": control.get("loop_var", "item"),
            "changed_when": self.conds(task, scope, task.get("changed_when")),
            "failed_when": self.conds(task, scope, task.get("failed_when")),
            # the handlers its notify runs, chosen here by the pyz runtime's rule
            "notify": self.task_notify(play, task),
            "listen": [str(n) for n in self.executor._as_list(task.get("listen"))],
            "environment": {str(k): str(v) for k, v in self.executor.merge_environment(
                self.static(task, scope, task.get("environment") or {})).items()},
        }
        if timeout:  # every process the module starts ends there (command.rs with_deadline)
            out["timeout"] = timeout
        for key in _BOOL_KEYS:
            value = task.get(key)
            if isinstance(value, str):
                value = self.static_condition(task, scope, value)
            out[key] = None if value is None and key in ("check_mode", "diff") else bool(value)
        out["become"] = self.become(task, scope)
        if module == "set_fact":
            keys = [k for k in (task.get("args") or {}) if k != "cacheable"]
            if any(not isinstance(k, str) or self.templating.is_template(k) for k in keys):
                raise self.fail(task, "a set_fact name that is a template (the runner must know its names)")
        failed_name = self.failed_name(play, dict(task, name=out["name"]))
        if failed_name != out["name"]:
            out["failed_name"] = failed_name
        if "loop" not in task:
            out["when"] = self.conds(task, scope, task.get("when")) or []
            out["args"] = self.args(task, scope)
            return out
        flatten = task.get("loop_with")
        if flatten not in (None, "items", "flattened"):
            raise self.fail(task, f"with_{flatten} is not supported by the native runner")
        items = self.static(task, scope, task["loop"], evaluate=isinstance(task["loop"], str))
        if not isinstance(task["loop"], str):  # text a template made is not trusted (as executor's)
            items = self.templating.rendered_untrusted(task["loop"], items)
        if flatten is not None:  # with_items: one level flattened; with_flattened: all (executor._loop_items)
            items = self.executor._flatten(items if isinstance(items, list | tuple) else [items],
                                           1 if flatten == "items" else None)
        if not isinstance(items, list):
            raise self.fail(task, "loop does not give a list at compile time")
        loop = []
        index_var = control.get("index_var")
        for index, item in enumerate(items):
            # as executor._run_loop: the index and ansible_loop are known here, the items being static
            lv = {out["loop_var"]: item, "ansible_loop_var": out["loop_var"]}
            shown = {index_var: index, "ansible_index_var": index_var} if index_var else {}
            if control.get("extended"):
                n = len(items)
                lv["ansible_loop"] = {"allitems": items, "index": index + 1, "index0": index, "revindex": n - index,
                                      "revindex0": n - index - 1, "first": index == 0, "last": index == n - 1,
                                      "length": n}
                if index:
                    lv["ansible_loop"]["previtem"] = items[index - 1]
                if index + 1 < n:
                    lv["ansible_loop"]["nextitem"] = items[index + 1]
            item_scope = scope.child({**lv, **shown})
            entry = {"item": item, "when": self.conds(task, item_scope, task.get("when")) or [],
                     "args": self.args(task, item_scope)}
            if shown:
                entry["result"] = shown  # keys the item's result carries (loop_control.index_var)
            if "label" in control:
                entry["label"] = self.static(task, item_scope, control["label"])
            loop.append(entry)
        out["loop"] = loop
        return out

    def check_task(self, play: dict[str, Any], task: dict[str, Any]) -> None:
        """Refuse what the native runner lacks in the task's own keywords and arguments: what
        reads the plan alone, so it is checked once for all the unit's hosts."""
        module = task["module"]
        if module not in MODULES:
            raise self.fail(task, f"module '{module}' is not implemented by the native runner")
        if task.get("bridge") not in (None, f"ansible.builtin.{module}", f"ansible.legacy.{module}"):
            raise self.fail(task, f"module '{task['bridge']}' is not implemented by the native runner")
        given: dict[str, Any] = task["args"] if isinstance(task.get("args"), dict) else {}
        if module in _SPEC and set(given) - _SPEC[module]:
            raise self.fail(task, f"argument '{sorted(set(given) - _SPEC[module])[0]}' of {module} is not "
                                  "supported by the native runner")
        args = task.get("args")
        if isinstance(args, dict) and any(args.get(k) not in (None, "") for k in ("attributes", "attr")) \
                and module != "stat":
            raise self.fail(task, "argument 'attributes' (file attributes, chattr) is not implemented by "
                                  "the native runner")
        # what the runtime refuses (_common.check_unknown): the runner accepts these and does not
        # apply them (stat's removed options it refuses in its own words), so such a task is
        # left to pyz, which refuses it naming the option as ansible-core does
        unapplied = [k for k in ("seuser", "serole", "setype", "selevel") if given.get(k) is not None]
        unapplied += [k for k in ("unsafe_writes",) if given.get(k) not in (None, False, "no", "false", "False")]
        unapplied += [k for k in ("get_md5", "get_selinux_context") if module == "stat" and k in given]
        if module == "copy" and any(given.get(k) is not None for k in ("_original_basename", "_diff_peek")):
            raise self.fail(task, "copy's internal arguments (_original_basename, _diff_peek) are refused by the "
                                  "Python runtime, in ansible-core's words")
        environment = task.get("environment")
        if isinstance(environment, dict) and "ANSIBLE_UNSAFE_WRITES" in environment:
            unapplied.append("unsafe_writes")  # its environment fallback: pyz honours it
        if unapplied:
            raise self.fail(task, f"argument '{unapplied[0]}' of {module} is not applied by the native runner")
        unknown = sorted(k for k, v in task.items() if k not in _KNOWN and v not in (None, False, [], {}))
        if unknown:
            raise self.fail(task, f"keyword '{unknown[0]}' is not supported by the native runner")
        python_var = self.python_var(play, task) if module not in self.executor._NO_PYTHON else None
        if python_var:
            raise self.fail(task, f"{python_var} set for the task (how Ansible runs a Python module: its "
                                  "interpreter, open-files limit or debugger) is not supported by the native runner")
        timeout = task.get("timeout")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                    or not 0 <= timeout <= _MAX_TIMEOUT):
            raise self.fail(task, f"timeout {timeout!r} is not a number from 0 to {_MAX_TIMEOUT} (the pyz runtime "
                                  "fails the task in ansible-core's words)")
        if timeout and module == "known_hosts":
            raise self.fail(task, "a timeout on known_hosts is applied by the Python runtime")
        control = task.get("loop_control") or {}
        if set(control) - _LOOP_CONTROL:
            raise self.fail(task, f"loop_control.{sorted(set(control) - _LOOP_CONTROL)[0]} is not supported")

    def never_run(self, play: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        """A task of a module the runner lacks whose condition is false on every host at compile
        time (``setup`` when ``ansible_facts == {}``): lowered as its skip, with the module
        that never runs. Any other such task is refused."""
        scope = self.scope(play, task)
        when = self.conds(task, scope, task.get("when")) or []
        static = [c["ir"][1] for c in when if c["ir"][0] == "lit"]
        if not any(not value for value in static):
            raise self.fail(task, f"module '{task['module']}' is not implemented by the native runner")
        unknown = sorted(k for k, v in task.items() if k not in _KNOWN and v not in (None, False, [], {}))
        if unknown:
            raise self.fail(task, f"keyword '{unknown[0]}' is not supported by the native runner")
        return {"id": task.get("id"), "name": self.name(task, scope, task["module"]), "module": task["module"],
                "tags": list(task.get("tags") or []), "register": task.get("register"), "args": None,
                "when": when, "loop": None, "loop_var": "item", "changed_when": None, "failed_when": None,
                "notify": [], "listen": [str(n) for n in self.executor._as_list(task.get("listen"))],
                "environment": {}, "ignore_errors": False, "no_log": False, "check_mode": None, "diff": None,
                "become": None}

    def name(self, task: dict[str, Any], scope: Any, default: str) -> str:
        """The name a result reports, rendered now as the pyz runtime renders it when the task
        runs (executor._name); a name over what only the run knows (a registered result, a fact),
        or one that cannot be rendered (pyz shows error markers and warns), is left to pyz."""
        name = task.get("name") or default
        if task.get("banner") is not None and not self.handling:  # the first host's (units._banners)
            return self.shown(task, str(task["banner"]))
        if self.templating.is_template(name):
            try:
                name, errors = self.templating.render_marked(self.templar, name, scope)
            except _Dynamic:
                raise self.fail(task, f"the name {name!r} depends on a registered result or a fact") from None
            if errors:  # shown with error markers and a warning, which pyz gives
                raise self.fail(task, f"the name {task.get('name')!r} cannot be rendered: {errors[0]}")
        return self.shown(task, name)

    def shown(self, task: dict[str, Any], name: str) -> str:
        """The name a result reports: a role's handler's is ``ROLE : NAME`` (executor._shown)."""
        return str(self.executor._shown(task, name, self.handling))

    def python_var(self, play: dict[str, Any], task: dict[str, Any]) -> str | None:
        """The variable about running a Python module (its interpreter, open-files limit,
        debugger) that a layer other than the host's own variables sets, if any."""
        role = (play.get("roles") or {}).get(task["role"]) if task.get("role") else None
        layers = [play.get("defaults"), (role or {}).get("defaults"), play.get("vars"), (role or {}).get("vars"),
                  task.get("vars"), self.executor._params_layer(role, task), self.doc.get("extra_vars")]
        for name in ("ansible_python_interpreter", "ansible_python_module_rlimit_nofile",
                     "_ansible_ansiballz_pydevd_config"):
            if any(isinstance(layer, dict) and name in layer for layer in layers):
                return name
        return None

    def failed_name(self, play: dict[str, Any], task: dict[str, Any]) -> str:
        """The name ``ansible_failed_task`` gives the task: its own as shown (rendered), without
        its role's prefix."""
        name = task.get("name") or ""
        role = (play.get("roles") or {}).get(task.get("role") or "")
        if role and name.startswith(role.get("name", "") + " : "):
            name = name[len(role["name"]) + 3:]
        return str(name)

    def container(self, play: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
        """A block (block/rescue/always) or an include expanded at compile time: its sections
        lowered, its own ``when`` for the runner (executor._run_container)."""
        unknown = sorted(k for k, v in task.items() if k not in _CONTAINER and v not in (None, False, [], {}))
        if unknown:
            what = "an include" if task.get("include") is not None else "a block"
            raise self.fail(task, f"keyword '{unknown[0]}' on {what} is not supported by the native runner")
        scope = self.scope(play, task)
        if task.get("include_error"):  # a file that could not be loaded: the host fails (errors) there
            if not self.handling or any(h is task for h in self.notifiable(play)):
                raise self.fail(task, "an include whose file could not be loaded fails the host where the "
                                      "Python runtime reaches it (the native runner does not)")
            # a handler no notify of the play can reach (setup_remote_tmp_dir's windows cleanup
            # on Linux): it never runs
            return {"id": task.get("id"), "name": self.name(task, scope, "include"), "block": [], "rescue": [],
                    "always": [], "when": [], "tags": list(task.get("tags") or []), "include": task.get("include"),
                    "register": None, "include_result": {}, "role_once": None}
        body = task
        choose = None
        if task.get("include_choice"):  # the file named with data: chosen now when the name is known now
            choice = task["include_choice"]
            found = scope.child({self.executor.FOUND_VAR: choice.get("found") or {}})
            try:
                name = self.static(task, found, choice["name"])
            except NativeUnsupported:
                choose = self.choose_on_host(task, found, choice)  # a fact or a run's name: the host chooses
            else:
                index = (choice.get("select") or {}).get(str(name))
                if isinstance(index, str):  # a file that could not be compiled: the host fails with why
                    choose = {"name": str(name), "select": {str(name): index}, "found": {}, "first_found": None}
                elif not isinstance(index, int):
                    raise self.fail(task, f"the included file {name!r} cannot be chosen at compile time")
                else:
                    body = task["block"][index]
        include = task.get("include")
        self.params.append(dict(task.get("params") or {}))
        try:
            if choose is not None:  # every file the host may choose, each one lowered
                choices = [self.sections(play, child) for child in task["block"]]
                sections: dict[str, list[dict[str, Any]]] = {"block": [], "rescue": [], "always": []}
            else:
                sections = self.sections(play, body)
        finally:
            self.params.pop()
        out: dict[str, Any] = {
            "id": task.get("id"), "name": self.name(task, scope, "include"), **sections,
            "when": self.conds(task, scope, task.get("when")) or [],
            "tags": list(task.get("tags") or []), "include": include,
            "register": task.get("register") if include is not None else None,
            "include_result": self.data(task, task.get("include_result") or {}),
            "role_once": task.get("role_once"),
        }
        if include is not None:  # ignores a failure of its own condition (executor._run_container)
            ignore = task.get("ignore_errors")
            if isinstance(ignore, str):
                ignore = str(self.static(task, scope, ignore)).strip().lower() in ("true", "yes", "on", "1")
            out["ignore_errors"] = ignore is True
        elif task.get("ignore_errors") not in (None, False):  # a block's own is its tasks' (compiled so)
            raise self.fail(task, "keyword 'ignore_errors' on a block is not supported by the native runner")
        if choose is not None:
            out.update(choose=choose, choices=choices)
        return out

    def sections(self, play: dict[str, Any], body: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
        return {key: [t for t in (self.task(play, child) for child in body.get(key) or ()) if t is not None]
                for key in ("block", "rescue", "always")}

    def choose_on_host(self, task: dict[str, Any], scope: Any, choice: dict[str, Any]) -> dict[str, Any]:
        """How the runner picks the included file (executor.rs ``choose``): the name rendered on
        the host, or ``lookup('first_found', NAME)`` with NAME's list rendered there and matched
        against what the compiler found; the runtime's own error when nothing is found."""
        out: dict[str, Any] = {"select": self.data(task, choice.get("select") or {}),
                               "found": self.data(task, choice.get("found") or {}), "first_found": None}
        first = _FIRST_FOUND.match(str(choice["name"]))
        if first:
            try:
                raw = scope.raw(first.group(2))
            except KeyError:
                raise self.fail(task, f"the included file's first_found names '{first.group(2)}', "
                                      "which is not defined at compile time") from None
            except _Dynamic as exc:
                raise self.fail(task, _run_time(exc.name)) from None
            terms = raw if isinstance(raw, list) else [raw]
            if not all(isinstance(t, str) for t in terms):
                raise self.fail(task, "first_found's terms must be file names for the native runner")
            out["first_found"] = [self.value(task, scope, t) for t in terms]
            try:
                self.templar.template("{{ lookup('first_found', ['__rustle_none__']) }}",
                                      scope.child({self.executor.FOUND_VAR: {}}))
            except self.templating.TemplateError as exc:
                out["none_found"] = str(exc)
            return out
        if "lookup(" in str(choice["name"]) or "query(" in str(choice["name"]):
            raise self.fail(task, f"the included file {choice['name']!r} needs a lookup on the host")
        out["name"] = self.value(task, scope, choice["name"])
        return out

    def become(self, task: dict[str, Any], scope: Any) -> dict[str, str] | None:
        """``{"user", "method"}`` when the task becomes another user (the runner decides, as the
        runtime does, whether that is the user it runs as), else None. Both are compile-time
        values: a become_user that depends on the run is refused."""
        value = task.get("become")
        if isinstance(value, str):
            value = self.static_condition(task, scope, value)
        # the ansible_become* variables beat the keywords (context.ModuleContext._become_settings)
        if "ansible_become" in scope:
            value = self.static(task, scope, "ansible_become | bool", evaluate=True)
        if not value:
            return None
        method = str(self.static(task, scope, task.get("become_method") or "sudo"))
        if "ansible_become_method" in scope:
            method = str(self.static(task, scope, "ansible_become_method", evaluate=True))
        # (the become_exe/become_flags keywords are refused with the other keywords the runner lacks)
        if any(f"ansible_{who}_{what}" in scope for who in ("become", method) for what in ("exe", "flags")) \
                or (self.doc.get("become_config") or {}).get(method):  # ansible.cfg's, ANSIBLE_*'s
            raise self.fail(task, "become_exe and become_flags are applied by the Python runtime")
        if any(name in scope for name in ("ansible_become_password", "ansible_become_pass", f"ansible_{method}_pass")):
            raise self.fail(task, "a become password variable is given to sudo or su by the Python runtime")
        user = self.static(task, scope, task.get("become_user") or "root")
        for name in ("ansible_become_user", f"ansible_{method}_user"):
            if name in scope:
                found = self.static(task, scope, name, evaluate=True)
                user = user if found is None else found
        return {"user": str(user), "method": method}

    # -- values ----------------------------------------------------------------------------------
    def static(self, task: dict[str, Any], scope: Any, value: Any, evaluate: bool = False) -> Any:
        """``value`` templated now; unsupported when it depends on the run."""
        try:
            if evaluate and not self.templating.is_template(value):
                return self.templar.evaluate(value, scope)
            return self.templar.template(value, scope)
        except _Dynamic as exc:
            raise self.fail(task, _run_time(exc.name)) from None
        except self.templating.TemplateError as exc:
            raise self.fail(task, _not_static(value, exc)) from None

    def static_condition(self, task: dict[str, Any], scope: Any, text: str) -> bool:
        try:
            return bool(self.templar.condition(text, scope))
        except _Dynamic as exc:
            raise self.fail(task, _run_time(exc.name)) from None
        except self.templating.TemplateError as exc:
            raise self.fail(task, str(exc)) from None

    def args(self, task: dict[str, Any], scope: Any) -> dict[str, Any]:
        module = task["module"]
        raw = dict(task.get("args") or {})
        if module == "assert":  # `that` holds conditions; fail_msg and the rest are templates
            if "_raw_params" in raw:  # `assert: "{{ item }}"`: its conditions are known on the host only
                raise self.fail(task, "assert's arguments as one template ('assert: \"{{ args }}\"')")
            that = raw.pop("that", None)
            raw = self.value(task, scope, raw)
            raw["that"] = self.conds(task, scope, that) or []
            return raw
        if module == "debug" and "var" in raw:
            var = raw.pop("var")
            raw = self.value(task, scope, raw)
            raw["var"] = self.cond(task, scope, str(var), as_value=True)
            return raw
        args = self.executor._strip_omit(self.value(task, scope, raw))
        # a path decided on the host is rendered before the module runs, as any argument (file's
        # src, the link's target, too); an embedded src is not, nor a template's dest when the
        # template reads it (template_destpath) as it is rendered here
        run_time = ("regexp", "regex", "insertafter", "insertbefore") + (("src",) if module != "file" else ()) \
            + (("after", "before", "encoding") if module == "replace" else ())
        if module == "template" and isinstance(raw.get("src"), str):
            digest = (task.get("files") or {}).get(raw["src"])
            if digest is None or b"template_destpath" in self.blobs.get(digest, b"template_destpath"):
                run_time += ("dest",)
        for key in run_time:
            if isinstance(args.get(key), dict) and (set(args[key]) & {TEMPLATE_KEY, EXPR_KEY}):
                raise self.fail(task, f"argument '{key}' depends on a registered result or a fact")
        if module in ("copy", "template") and isinstance(args.get("src"), str):
            digest = (task.get("files") or {}).get(raw.get("src"))
            if digest is None:
                raise self.fail(task, f"src '{args['src']}' was not embedded")
            if module == "copy" and args.get("mode") == "preserve":
                raise self.fail(task, "copy mode=preserve of an embedded src (the source's mode: pyz)")
            if module == "template":
                digest = self.render_template(task, scope, args, digest)
            args["src"] = {"sha256": digest, "path": args["src"]}
            self.embedded.add(digest)
        validate = args.get("validate")
        if module in ("lineinfile", "blockinfile", "replace", "copy", "template") and validate and not (
                isinstance(validate, str) and (re.fullmatch(r"(?:[^%]|%%)*%s(?:[^%]|%%)*", validate)
                                               or ("%s" not in validate and "%" not in validate))):
            # the runner formats it as Python's `validate % tmp` does with these only
            raise self.fail(task, f"argument 'validate' of {module} is not supported by the native runner unless it "
                                  "is known when compiling and its only % signs are one %s and any %%")
        if module == "lineinfile":
            for key in ("regexp", "regex", "insertafter", "insertbefore"):
                value = args.get(key)
                if isinstance(value, str) and not (key.startswith("insert") and value in ("EOF", "BOF")):
                    args[f"_{key}_ir"] = self.regex(task, value)
        if module == "blockinfile":  # lines.blockinfile: insertafter EOF and insertbefore BOF are no pattern
            after, before = args.get("insertafter"), args.get("insertbefore")
            if after is not None and after != "EOF":
                args["_insertafter_ir"] = self.regex(task, str(after))
                args["_insert_multiline"] = regex_multiline(str(after))
            elif after is None and before is not None and before != "BOF":
                args["_insertbefore_ir"] = self.regex(task, str(before))
                args["_insert_multiline"] = regex_multiline(str(before))
        if module == "replace":
            self.replace_patterns(task, args)
        if module == "apt" and args.get("state", "present") not in _APT_STATES:
            raise self.fail(task, f"apt with state {args['state']!r} is not supported by the native runner (only "
                                  "present/installed/latest/absent/removed known at compile time)")
        return args

    def replace_patterns(self, task: dict[str, Any], args: dict[str, Any]) -> None:
        """replace's patterns as lines.replace compiles them: ``regexp`` with re.MULTILINE, the
        section that ``after``/``before`` choose with re.DOTALL and its named group's number."""
        encoding = args.get("encoding")
        if encoding and str(encoding).lower().replace("_", "-") not in ("utf-8", "utf8"):
            raise self.fail(task, f"encoding {encoding!r} of replace is not supported by the native runner (only utf-8)")
        replacement = args.get("replace")
        if isinstance(replacement, str) and re.search(r"\\g<(?!\d+>)", replacement):
            raise self.fail(task, "a named group in replace's template is not supported by the native runner")
        if args.get("regexp") is not None:
            args["_regexp_ir"] = _with_flags(self.regex(task, str(args["regexp"])), multiline=True)
        after, before = args.get("after"), args.get("before")
        if after or before:
            if after and before:
                pattern = f"{after}(?P<subsection>.*?){before}"
            elif after:
                pattern = f"{after}(?P<subsection>.*)"
            else:
                pattern = f"(?P<subsection>.*){before}"
            try:
                tree, group = regex_tree(pattern, named="subsection")
            except ValueError as exc:
                raise self.fail(task, f"regular expression {pattern!r}: {exc}") from None
            args["_section_ir"] = _with_flags(tree, dotall=True)
            args["_section_group"] = group

    def value(self, task: dict[str, Any], scope: Any, value: Any) -> Any:
        """``value`` templated now where it can be; a string that needs the run (a registered
        result, a fact) becomes a template the runner renders (docs/native.md)."""
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                new_key = self.value(task, scope, key)
                if not isinstance(new_key, str | int | float | bool) and new_key is not None:
                    raise self.fail(task, f"the key {key!r} depends on a registered result or a fact")
                out[new_key] = self.value(task, scope, item)
            if _marker(out):  # the plan's own dict, shaped like a marker the compiler makes
                raise self.fail(task, f"a value shaped like the runner's {next(iter(out))} marker is data, "
                                      "and the native format cannot carry it")
            return out
        if isinstance(value, list):
            return [self.value(task, scope, item) for item in value]
        if not self.templating.is_template(value):
            return value
        if _WHOLE_VARS.search(value):
            raise self.fail(task, f"{value!r} reads 'vars' whole, which holds hostvars (known on the host only)")
        if _PATH_TEST.search(value):
            raise self.fail(task, f"{value!r} tests the file system, which Ansible does when the task runs; "
                                  "the native runner does not evaluate path tests")
        try:
            return self.data(task, self.templar.template(value, scope))
        except _Dynamic as exc:
            if exc.name in _HOST_LISTS or exc.name in _RUNTIME_ONLY:  # never the runner's
                raise self.fail(task, _run_time(exc.name)) from None
        except self.templating.TemplateError as exc:
            raise self.fail(task, _not_static(value, exc)) from None
        if "{%" in value or "{#" in value:
            raise self.fail(task, f"a Jinja2 block over a registered result or a fact ({value!r})")
        # Jinja2 drops one trailing newline first: "{{ x }}\n" is x's own value, with the
        # newline put back when it is text that lacks one (Templar.template)
        body = value[:-1] if value.endswith("\n") else value
        single = self.templating._SINGLE.match(body)
        if single and "{#" not in value:
            expression = self.cond(task, scope, single.group(1), as_value=True)
            if body is not value:
                expression["newline"] = True
            return {EXPR_KEY: expression}
        parts: list[Any] = []
        last = 0
        for match in self.templating._SEGMENT.finditer(value):
            parts.append(value[last:match.start()])
            parts.append(self.cond(task, scope, match.group(1), as_value=True, as_text=True))
            last = match.end()
        rest = value[last:]
        if "{{" in rest or "}}" in rest:
            raise self.fail(task, f"a template the native runner cannot split ({value!r})")
        parts.append(rest)
        merged: list[Any] = []
        for part in parts:  # text decided now joins its neighbours
            if isinstance(part, str) and merged and isinstance(merged[-1], str):
                merged[-1] += part
            elif part != "":
                merged.append(part)
        return {TEMPLATE_KEY: merged}

    def data(self, task: dict[str, Any], value: Any) -> Any:
        """``value``, decided now, as data for the runner: a dict shaped like its template
        markers (from a variable or a file, say) would be rendered there, so it is refused."""
        if _marker(value):
            raise self.fail(task, f"a value shaped like the runner's {next(iter(value))} marker is data, "
                                  "and the native format cannot carry it")
        if isinstance(value, str) and not _utf8(value):
            raise self.fail(task, f"{value[:40]!r}... holds bytes that are not UTF-8 text (decoded with "
                                  "surrogateescape, as b64decode of latin-1 gives), which the native format "
                                  "cannot carry")
        if isinstance(value, dict):
            for item in value.values():
                self.data(task, item)
        elif isinstance(value, list):
            for item in value:
                self.data(task, item)
        return value

    def render_template(self, task: dict[str, Any], scope: Any, args: dict[str, Any], digest: str) -> str:
        """Render the template now, as the runtime's template module would; the result's sha256."""
        source = self.blobs[digest].decode("utf-8", "surrogateescape")
        if "template_run_date" in source:
            raise self.fail(task, "the template uses template_run_date, which is only known on the host")
        try:
            overrides = self.templating.template_overrides(args)
        except self.templating.TemplateError as exc:
            raise self.fail(task, str(exc)) from None
        for option in (*self.templating.TEMPLATE_SYNTAX_OPTIONS, "newline_sequence"):
            args.pop(option, None)
        src = args["src"]
        from rustle_runtime.lookups import template_file_vars  # type: ignore[import-not-found]

        info = self.templating.embedded(scope, "sources").get(src) or {}
        dest = args.get("dest")
        extra = template_file_vars(src, info, None if _marker(dest) else dest, scope)  # not read: see args()
        templar = self.templating.Templar(read_file=self.blobs.__getitem__)
        try:
            rendered = templar.render(source, scope.child(extra), overrides)
        except _Dynamic as exc:
            raise self.fail(task, f"the template uses '{exc.name}', only known on the host") from None
        except self.templating.TemplateError as exc:
            raise self.fail(task, f"the template cannot be rendered at compile time: {exc}") from None
        data = rendered.encode(args.pop("output_encoding", None) or "utf-8", "surrogateescape")
        out = hashlib.sha256(data).hexdigest()
        self.blobs[out] = data
        return out

    # -- conditions ------------------------------------------------------------------------------
    def conds(self, task: dict[str, Any], scope: Any, value: Any) -> list[dict[str, Any]] | None:
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        allow_broken = self.templar.allow_broken_conditionals
        if not allow_broken and any(c is None for c in items):
            raise self.fail(task, "an empty condition (ansible-core 2.19 fails the task: "
                                  "\"Empty conditional expressions are not allowed.\")")
        out = [self.cond(task, scope, c) for c in items]
        if allow_broken:  # ALLOW_BROKEN_CONDITIONALS: the runner takes a result's truth
            out = [dict(c, allow_broken=True) if isinstance(c, dict) else c for c in out]
        return out

    def cond(self, task: dict[str, Any], scope: Any, text: Any, as_value: bool = False,
             as_text: bool = False) -> Any:
        """A condition (or with ``as_value`` an expression): decided now when it can be, else its
        expression tree for the runner. With ``as_text``, a value decided now is returned as the
        text a template would render it to."""
        if isinstance(text, bool) or text is None:
            return {"expr": text, "ir": ["lit", True if text is None else text]}
        if not isinstance(text, str) or getattr(text, "_rustle_tagged", False):
            raise self.fail(task, "a condition that is a number or !unsafe text (ansible-core 2.19 fails "
                                  "the task: the pyz runtime says it in Ansible's words)")
        source = str(text)
        if self.templating.is_template(source) and not as_value:
            raise self.fail(task, "a conditional in {{ }} (ansible-core 2.19 deprecates it in the task's result: "
                                  "the pyz runtime reports it)")
        if _NO_FACTS_YET.match(source) and not self.scope_has(scope, "ansible_facts"):
            return {"expr": source, "ir": ["lit", False]}
        if _PATH_TEST.search(source):
            raise self.fail(task, f"'{source}' tests the file system, which Ansible does when the task runs; "
                                  "the native runner does not evaluate path tests")
        try:
            if as_value:
                value = self.templar.evaluate(source, scope)
            else:
                value = self.templar.condition(source, scope)
            if as_text:
                return value if isinstance(value, str) else str(value)
            return {"expr": source, "ir": ["lit", value]}
        except _Dynamic as exc:
            if exc.name in _HOST_LISTS or exc.name in _RUNTIME_ONLY:  # never the runner's
                raise self.fail(task, _run_time(exc.name)) from None
        except self.templating.TemplateError as exc:
            if self.templating.is_template(source):  # the runner has no templates: say why now
                raise self.fail(task, str(exc)) from None
            # otherwise undefined now: the runner fails the task with the same message
        if self.templating.is_template(source):
            raise self.fail(task, f"a templated condition over a registered result ('{source}')")
        tree = self.shared.parsed.get(source)
        if tree is None:
            try:
                tree = self.expr._Parser(source.strip()).parse()
            except self.expr._Unsupported:
                raise self.fail(task, f"the expression '{source}' is outside what the native runner evaluates") from None
            self.shared.parsed[source] = tree
        out = {"expr": source, "ir": self.tree(task, scope, tree)}
        # where a broken conditional's value came from (playbook/origins.py); for `a and b`
        # the runner cannot tell which operand the result is: the conditional's own place
        origin = (task.get("origins") or {}).get(source.strip())
        origin = origin.get("") if isinstance(origin, dict) else origin
        if origin:
            out["origin"] = origin
        return out

    def need_facts(self, task: dict[str, Any]) -> None:
        """The task reads a fact the runner gathers: the program asks for them."""
        if self.subset is not None:
            raise self.fail(task, "the play's gather_subset limits its facts, and the native runner gathers "
                                  "its facts whatever the subset")
        self.uses_facts = True

    def tree(self, task: dict[str, Any], scope: Any, node: Any) -> Any:
        op = node[0]
        if op == "lit":
            return ["lit", node[1]]
        if op == "name":
            if node[1] in self.dynamic and node[1] in self.shadowed:
                default = self.plan_value(task, scope, node[1])
                return ["name", node[1]] if default is None else ["name", node[1], default]
            if node[1] in self.dynamic:
                return ["name", node[1]]
            if node[1] in _HOST_LISTS:
                raise self.fail(task, _host_list(node[1]))
            try:
                return ["lit", scope[node[1]]]
            except KeyError:
                if node[1].startswith("ansible_"):  # the runtime gathers a fact per network interface
                    raise self.fail(task, f"'{node[1]}' may be a host fact (a network interface's), which "
                                          "the native runner does not gather") from None
                return ["name", node[1]]  # undefined: the runner says so as the runtime would
            except self.templating.TemplateError as exc:  # a variable whose own template fails
                raise self.fail(task, f"'{node[1]}' cannot be evaluated at compile time: {exc}") from None
            except _Dynamic as exc:
                if exc.name == node[1] and node[1][8:] in NATIVE_FACTS and node[1].startswith("ansible_"):
                    self.need_facts(task)
                    return ["name", node[1]]
                if exc.name == node[1] == "ansible_facts":
                    raise self.fail(task, "ansible_facts is only supported as ansible_facts.NAME or "
                                          "ansible_facts['NAME'] by the native runner") from None
                fact = exc.name.startswith("ansible_") and exc.name not in _HOST_LISTS
                raise self.fail(task, _run_time(exc.name)
                                + (" (a fact the native runner does not gather)" if fact else "")) from None
        key = node[2] if op == "attr" else (node[2][1] if op == "item" and node[2][0] == "lit" else None)
        if op in ("attr", "item") and node[1] == ("name", "ansible_facts") and "ansible_facts" not in self.dynamic:
            if not self.scope_has(scope, "ansible_facts"):
                if key not in NATIVE_FACTS:
                    raise self.fail(task, f"ansible_facts[{key!r}] is a fact the native runner does not gather")
                self.need_facts(task)
                return [op, ["name", "ansible_facts"], node[2] if op == "attr" else ["lit", key]]
        if op == "attr":
            return ["attr", self.tree(task, scope, node[1]), node[2]]
        if op == "slice":  # x[a:b] (expr.rs: a list's or a str's, as Python slices them)
            return ["slice", self.tree(task, scope, node[1])] + [
                None if n is None else self.tree(task, scope, n) for n in node[2:]]
        if op == "call":  # str.startswith/endswith with one argument, split/strip, splitlines() (expr.rs call_method)
            if len(node[3]) != 1 and node[2] in ("startswith", "endswith") or len(node[3]) > 2 \
                    or node[3] and node[2] == "splitlines":
                raise self.fail(task, f"{node[2]}() with {len(node[3])} arguments is not supported by the native runner")
            return ["call", self.tree(task, scope, node[1]), node[2], [self.tree(task, scope, n) for n in node[3]]]
        if op == "list":
            return ["list", [self.tree(task, scope, n) for n in node[1]]]
        if op == "test" and node[1] in ("search", "match", "regex"):
            return self.regex_test(task, scope, node)
        if op in ("filter", "test"):
            allowed = _FILTERS if op == "filter" else _TESTS
            if node[1] not in allowed:
                raise self.fail(task, f"{op} '{node[1]}' is not supported by the native runner")
            return [op, node[1], self.tree(task, scope, node[2]), [self.tree(task, scope, n) for n in node[3]],
                    {k: self.tree(task, scope, n) for k, n in node[4].items()}]
        if op == "cmp":
            return ["cmp", node[1], self.tree(task, scope, node[2]), self.tree(task, scope, node[3])]
        if op == "chain":  # a < b < c (expr.rs: each operand once, while the chain holds)
            return ["chain", self.tree(task, scope, node[1]), [[cmp, self.tree(task, scope, n)] for cmp, n in node[2]]]
        if op == "concat":  # a ~ b ~ c: str() of each, joined
            return ["concat", [self.tree(task, scope, n) for n in node[1]]]
        return [op] + [self.tree(task, scope, n) for n in node[1:]]  # item, or, and, not, in, add

    def plan_value(self, task: dict[str, Any], scope: Any, name: str) -> Any:
        """What ``name``, which the run may have set by now, is when the run has not set it: the
        plan's variable, as a NODE; None when the task's scope has none (undefined then, in the
        runner as in the runtime)."""
        self.dynamic.discard(name)
        try:
            return ["lit", self.data(task, scope[name])]
        except KeyError:
            return None
        except _Dynamic as exc:
            raise self.fail(task, f"'{name}' is set while the plan runs and its plan value depends on "
                                  f"'{exc.name}', only known on the host") from None
        except self.templating.TemplateError as exc:
            raise self.fail(task, f"'{name}' cannot be evaluated at compile time: {exc}") from None
        finally:
            self.dynamic.add(name)

    def regex_test(self, task: dict[str, Any], scope: Any, node: Any) -> Any:
        """``value is search(pattern, ...)``, ``match`` or ``regex`` (filters._regex_test) as
        ``["re", KIND, value, tree]``: the pattern and the flags must be known now; the runner
        matches ``str(value)``."""
        name, positional, named = node[1], node[3], node[4]
        params = ["pattern", "ignorecase", "multiline"] + (["match_type"] if name == "regex" else [])
        if len(positional) > len(params) or set(named) - set(params):
            raise self.fail(task, f"test '{name}' with these arguments is not supported by the native runner")
        given = {**dict(zip(params, positional, strict=False)), **named}
        values = {}
        for key, arg in given.items():
            ir = self.tree(task, scope, arg)
            if ir[0] != "lit":
                raise self.fail(task, f"the {key} of test '{name}' must be known at compile time for the native runner")
            values[key] = ir[1]
        pattern = values.get("pattern")
        kind = name if name != "regex" else values.get("match_type", "search")
        if not isinstance(pattern, str) or kind not in ("search", "match", "fullmatch"):
            raise self.fail(task, f"test '{name}' needs a text pattern (and a known match_type) for the native runner")
        if values.get("ignorecase"):
            raise self.fail(task, f"test '{name}' with ignorecase is not supported by the native runner")
        tree = _with_flags(self.regex(task, pattern), multiline=bool(values.get("multiline")))
        return ["re", kind, self.tree(task, scope, node[2]), tree]

    @staticmethod
    def scope_has(scope: Any, name: str) -> bool:
        try:
            return name in scope
        except _Dynamic:
            return False

    def regex(self, task: dict[str, Any], pattern: str) -> list[Any]:
        try:
            return regex_tree(pattern)
        except ValueError as exc:
            raise self.fail(task, f"regular expression {pattern!r}: {exc}") from None


@functools.lru_cache(maxsize=256)
def regex_tree(pattern: str, named: str | None = None) -> Any:
    """Python's own parse of ``pattern`` as the runner's matcher reads it (docs/native.md).
    Parsed once per pattern, as every host's program usually has the same ones; the tree is
    shared between programs, so nothing may change it. With ``named``, the one named group
    allowed, and the result is (tree, that group's number)."""
    import re

    try:
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse  # type: ignore[no-redef]
    try:
        parsed = sre_parse.parse(pattern, 0)
    except re.error as exc:
        raise ValueError(f"does not compile: {exc}") from None
    flags = parsed.state.flags & ~re.UNICODE
    if flags & ~(re.MULTILINE | re.DOTALL | re.VERBOSE) or _UNICODE_FLAG.search(pattern):
        raise ValueError("inline flags other than (?m), (?s) and (?x) are not supported by the native runner")
    if set(parsed.state.groupdict) - {named}:
        raise ValueError("named groups are not supported by the native runner")
    # (?x) is the parser's alone; (?m) and (?s) change what ^, $ and . match, as re compiles them
    tree = _with_flags(_sre(parsed), multiline=bool(flags & re.MULTILINE), dotall=bool(flags & re.DOTALL))
    if named is not None:
        return tree, parsed.state.groupdict[named]
    return tree


# (?u): refused in the bytes patterns of lineinfile and blockinfile, where Python's re refuses it
_UNICODE_FLAG = re.compile(r"\(\?[aiLmsx]*u[aiLmsux]*[):]")


@functools.lru_cache(maxsize=256)
def regex_multiline(pattern: str) -> bool:
    """Whether ``pattern`` (that ``regex_tree`` read) sets ``(?m)``: blockinfile then searches
    the whole file instead of each line (lines.blockinfile)."""
    try:
        from re import _parser as sre_parse  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse  # type: ignore[no-redef]
    return bool(sre_parse.parse(pattern, 0).state.flags & re.MULTILINE)


def _with_flags(tree: Any, multiline: bool = False, dotall: bool = False) -> Any:
    """A copy of ``tree`` as re compiles it with re.MULTILINE (``^``/``$`` at every line) or
    re.DOTALL (``.`` takes a newline too, written as ``[\\d\\D]``)."""
    if isinstance(tree, list):
        if multiline and tree in (["AT", "AT_BEGINNING"], ["AT", "AT_END"]):
            return ["AT", tree[1] + "_LINE"]
        if dotall and tree == ["ANY", None]:
            return ["IN", [["CATEGORY", "CATEGORY_DIGIT"], ["CATEGORY", "CATEGORY_NOT_DIGIT"]]]
        return [_with_flags(item, multiline, dotall) for item in tree]
    return tree


def _sre(sub: Any) -> list[Any]:
    out = []
    for op, arg in sub:
        name = str(op)
        if name in ("LITERAL", "NOT_LITERAL"):
            out.append([name, arg])
        elif name == "ANY":
            out.append(["ANY", None])
        elif name == "IN":
            out.append(["IN", [_sre_set_item(o, a) for o, a in arg]])
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            lo, hi, body = arg
            out.append([name, [lo, -1 if hi >= sre_max_repeat() else hi, _sre(body)]])
        elif name == "SUBPATTERN":
            group, add, dele, body = arg
            if add or dele:
                raise ValueError("scoped flags are not supported by the native runner")
            out.append(["SUBPATTERN", [group, _sre(body)]])
        elif name == "ATOMIC_GROUP":
            out.append(["ATOMIC_GROUP", _sre(arg)])
        elif name == "BRANCH":
            out.append(["BRANCH", [_sre(b) for b in arg[1]]])
        elif name == "AT" and str(arg) in _RE_AT:
            out.append(["AT", str(arg)])
        elif name == "CATEGORY" and str(arg) in _RE_CATEGORIES:
            out.append(["CATEGORY", str(arg)])
        else:
            raise ValueError(f"{name.lower()} is not supported by the native runner")
    return out


def sre_max_repeat() -> int:
    try:
        from re._constants import MAXREPEAT  # type: ignore[import-not-found]
    except ImportError:  # pragma: no cover - Python < 3.11
        from sre_constants import MAXREPEAT  # type: ignore[no-redef]
    return int(MAXREPEAT)


def _sre_set_item(op: Any, arg: Any) -> list[Any]:
    name = str(op)
    if name == "LITERAL":
        return ["LITERAL", arg]
    if name == "RANGE":
        return ["RANGE", list(arg)]
    if name == "NEGATE":
        return ["NEGATE", None]
    if name == "CATEGORY" and str(arg) in _RE_CATEGORIES:
        return ["CATEGORY", str(arg)]
    raise ValueError(f"{name.lower()} in a character set is not supported by the native runner")
