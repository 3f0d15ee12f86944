"""Apply a compiled plan to one host: plays -> tasks -> handlers, with Ansible's semantics.

Owns the task keywords (``when``, ``loop``, ``register``, ``changed_when``, ``failed_when``,
``ignore_errors``, ``until``, ``no_log``, ``check_mode``, ``diff``, ``vars``, ``environment``,
``become``, ``timeout``, ``run_once``, ``tags``, ``notify``), variable precedence, handlers, the
recap and the run's exit code. Modules live in ``modules/``; the event format in ``events.py``.

Variable precedence (lowest first), as Ansible: the play's role defaults < the task's own
role defaults < inventory host vars < facts (gathered lazily, consulted only for names nothing
else defines) < play vars < the task's role vars < task vars < registered results and set_fact
< role params < include params < extra vars < loop variables.

Blocks: a task with ``block`` (and optionally ``rescue``, ``always``) runs its lists with
Ansible's failure handling; such a container's own ``when``, ``tags``, ``loop`` and
``params`` apply once, when it is reached (how Ansible treats ``include_tasks``); an
``include`` container reports itself as ``included`` and counts as ok, as Ansible does.

Registered results, facts and set_fact values are host data: they are stored through
``templating.unsafe``, so nothing in them is ever rendered or evaluated again.

"""

import re
import sys
import time

from .context import ModuleContext, ModuleFailure, call_module
from .events import censor
from .filters import to_bool
from .templating import (
    FOUND_VAR,
    Templar,
    TemplateError,
    TemplateSecurityError,
    UnsafeList,
    VarScope,
    has_template,
    is_template,
    masked_json,
    render_marked,
    rendered_untrusted,
    unsafe,
    unsafe_result,
    untag,
)

OMIT = "__omit_place_holder__rustle"
# the host variables every host has alike (Runner.__init__), which a delegate's have too
_SHARED_MAGIC = ("groups", "ansible_check_mode", "ansible_diff_mode", "ansible_verbosity", "ansible_run_tags",
                 "ansible_skip_tags", "omit", "playbook_dir")
EXIT_OK, EXIT_BUG, EXIT_FAILED, EXIT_USAGE = 0, 1, 2, 3

# result keys that are bookkeeping, not shown in events
# ansible-core's BYPASS_HOST_LOOP actions: run once for the batch, registered on its first host only
_FIRST_HOST_ONLY = ("pause",)
# modules that take free-form text (ansible-core's RAW_PARAM_MODULES); any other module's text
# arguments are one template that renders to its arguments (`assert: "{{ item }}"`)
_RAW_PARAM_MODULES = frozenset(("command", "shell", "raw", "script", "win_command", "win_shell", "meta",
                                "set_fact", "add_host", "group_by", "include_vars", "include_tasks",
                                "include_role", "import_tasks", "import_role"))
_HIDDEN = ("ansible_facts", "stdout_lines", "stderr_lines", "_meta", "_set_fact", "_include_vars",
           "_ansible_verbose_always", "invocation")



def _splat_raw(module, args, templar, scope):
    """``args`` with the text of a module that takes no free-form text, when it is one template
    (``assert: "{{ item }}"``), rendered to a mapping below the task's other arguments, as
    ansible-core finalizes task args; TemplateError when it renders to something else."""
    raw = args.get("_raw_params")
    short = module.rsplit(".", 1)[-1]
    if not (isinstance(raw, str) and is_template(raw) and raw.strip().startswith("{{")
            and raw.strip().endswith("}}") and short not in _RAW_PARAM_MODULES):
        return args
    given = templar.template(raw.strip(), scope)
    if not isinstance(given, dict):
        raise TemplateError(f"Finalization of task args for 'ansible.builtin.{short}' failed: Task args "
                            f"must resolve to a 'dict' not {type(given).__name__!r}.")
    rest = {k: v for k, v in args.items() if k != "_raw_params"}
    return dict(given, **rest)


def _loop_vars(control, items, index):
    """The variables of loop item ``index``: ``loop_var`` (item), ``index_var`` and, with
    ``extended``, ``ansible_loop``, as ansible-core sets them for tasks and includes."""
    loop_var = control.get("loop_var", "item")
    index_var = control.get("index_var")
    lv = {loop_var: items[index], "ansible_loop_var": loop_var}
    if index_var:
        lv[index_var] = index
        lv["ansible_index_var"] = index_var
    if control.get("extended"):
        n = len(items)
        lv["ansible_loop"] = {
            "allitems": items, "index": index + 1, "index0": index, "revindex": n - index,
            "revindex0": n - index - 1, "first": index == 0, "last": index == n - 1,
            "length": n,
        }
        if index:  # as Ansible: no previtem on the first item, no nextitem on the last
            lv["ansible_loop"]["previtem"] = items[index - 1]
        if index + 1 < n:
            lv["ansible_loop"]["nextitem"] = items[index + 1]
        if isinstance(items, UnsafeList):
            lv["ansible_loop"] = unsafe(lv["ansible_loop"])
    return lv

class _EndPlay(Exception):
    pass


def _prefixed(handler, names):
    """``names`` and, for a role's handler, each as ``ROLE : NAME`` (the role's FQCN and its
    short name): what Ansible lets a notify name a role's handler or listen topic by."""
    out = [str(n) for n in names]
    role = str(handler.get("role") or "").split("#")[0]
    for prefix in sorted({role, role.rsplit(".", 1)[-1]}) if role else ():
        out += [f"{prefix} : {n}" for n in names]
    return out


def _handler_topics(handler):
    names = [] if handler.get("unnamed") else [handler.get("name")]
    return set(_prefixed(handler, names + _as_list(handler.get("listen"))))


def _search_order(handlers):
    """The order Ansible searches handlers in: its handler blocks (a role's handlers, the play's
    own: here, runs of handlers from the same role or from none) last block first, and each
    block's handlers in order."""
    blocks = []
    for handler in handlers:
        if blocks and blocks[-1][0].get("role") == handler.get("role"):
            blocks[-1].append(handler)
        else:
            blocks.append([handler])
    return [h for block in reversed(blocks) for h in block]


def _notified_handlers(handlers, notification):
    """Which handlers a notification runs, as Ansible decides: in its search order
    (:func:`_search_order`), the first handler with that name, and of those listening to it, the
    first of each name."""
    found = []
    order = _search_order(handlers)
    for handler in order:
        if not handler.get("unnamed") and notification in _prefixed(handler, [handler.get("name")]):
            found.append(handler)
            break
    seen = set()
    for handler in order:
        if notification in _prefixed(handler, _as_list(handler.get("listen"))):
            name = None if handler.get("unnamed") else handler.get("name")
            if name and name in seen:
                continue
            seen.add(name)
            found.append(handler)
    return found


_BOOL_KEYWORDS = ("ignore_errors", "no_log", "check_mode", "diff", "become", "run_once", "ignore_unreachable")
_NUMBER_KEYWORDS = ("retries", "delay", "timeout")
_ITEM_KEYWORDS = ("retries", "delay")  # evaluated for each loop item, as in Ansible
# how the task variable holding a with_<lookup>'s terms begins: the playbook front end compiles
# the with_ into a loop over the lookup (playbook/compile.py)
WITH_TERMS = "__rustle_with_"
_MAX_TIMEOUT = 100000000  # ansible-core's limit on a task's timeout (seconds)
_BOOL_WORDS = ("yes", "no", "true", "false", "on", "off", "1", "0", "y", "n")
_TEXT_KEYWORDS = ("become_user", "become_method", "become_exe", "become_flags")


class _HostFailed(Exception):
    pass


def _params_layer(role, task):
    """Role params (with role_name) and the task's own include params, or None."""
    out = {}
    if role:
        if role.get("name"):
            out["role_name"] = role["name"]
        if role.get("path"):
            out["role_path"] = role["path"]
        out.update(role.get("params") or {})
    if task.get("params"):
        out.update(task["params"])
    return out or None



def tags_selected(task_tags, only_tags, skip_tags):
    """Ansible's tag selection (``always``, ``never``, ``all``, ``tagged``, ``untagged``)."""
    tags = set(task_tags or ()) or {"untagged"}
    only = set(only_tags or ()) or {"all"}
    skip = set(skip_tags or ())
    run = True
    if "always" in tags:
        run = True
    elif "all" in only and "never" not in tags:
        run = True
    elif not tags.isdisjoint(only):
        run = True
    elif "tagged" in only and tags != {"untagged"} and "never" not in tags:
        run = True
    else:
        run = False
    if run and skip:
        if "all" in skip:
            if "always" not in tags or "always" in skip:
                run = False
        elif not tags.isdisjoint(skip):
            run = False
        elif "tagged" in skip and tags != {"untagged"}:
            run = False
    return run


# ansible-core's actions that run on the controller alone: they need no connection to the host
_NO_CONNECTION = frozenset({"add_host", "assert", "debug", "fail", "group_by", "include_vars", "meta",
                            "set_fact", "set_stats", "pause"})


def _status(result):
    if result.get("unreachable"):
        return "unreachable"
    if result.get("failed"):
        return "failed"
    if result.get("skipped"):
        return "skipped"
    if result.get("changed"):
        return "changed"
    return "ok"


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _assert_that(templar, that, scope):
    """assert's ``that`` as ansible-core's assert action finalizes it: a string wholly in
    ``{{ }}`` that renders to a list is that list of conditionals; anything else stays as
    written, for the conditional evaluation to read."""
    if isinstance(that, str) and that.strip().startswith(("{{", "{%")) and that.strip().endswith(("}}", "%}")):
        name = that.strip()[2:-2].strip()
        if _NAME.match(name):  # a list variable's conditionals as written: each is evaluated (and
            try:  # deprecated when in {{ }}) as a conditional, as ansible-core's lazy list gives them
                raw = scope.raw(name)
            except KeyError:
                raw = None
            if isinstance(raw, list) and all(isinstance(c, str) for c in raw):
                return raw
        try:
            value = templar.template(that, scope)
        except TemplateError:
            return that
        if isinstance(value, list):
            return value
    return that


def _strip_omit(value):
    if isinstance(value, dict):
        # isinstance first: an Undefined in a value raises on any comparison
        return {k: _strip_omit(v) for k, v in value.items() if not (isinstance(v, str) and v == OMIT)}
    if isinstance(value, list):
        return [_strip_omit(v) for v in value if not (isinstance(v, str) and v == OMIT)]
    return value


# What ansible-core 2.19 shows of a failed result's error summary (its `exception`) unless
# tracebacks are enabled on the controller: the same text for every failure.
TRACEBACK_UNAVAILABLE = "(traceback unavailable)"


def _with_exception(result):
    """``result`` as ansible-core 2.19 hands it to ``register``: a failed one (or one that
    brought an exception) carries ``exception``; the loop's own summary result does not."""
    if result.get("failed") or result.get("exception"):
        # a bridged module's own traceback (tracebacks enabled) stays, as Ansible shows it
        given = result.get("exception")
        result["exception"] = given if isinstance(given, str) and given else TRACEBACK_UNAVAILABLE
    elif "exception" in result:  # an empty one is dropped
        del result["exception"]
    return result


# Modules that run no Python on the host under Ansible (action plugins on the controller, raw,
# script): a task's ansible_python_interpreter does not concern them.
# the play's names among a host's variables: not in its own ``hostvars`` entry
_PLAY_NAMES = frozenset(("ansible_play_batch", "ansible_play_hosts", "ansible_play_hosts_all", "ansible_play_name",
                         "play_hosts", "omit"))

_NO_PYTHON = frozenset(("debug", "set_fact", "assert", "fail", "meta", "include_vars", "add_host", "group_by",
                        "pause", "wait_for_connection", "set_stats", "raw", "script"))


_DISCOVERY_MODES = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")
# ansible-core's INTERPRETER_PYTHON_FALLBACK (transport.options.PYTHON_CANDIDATES on the controller)
_PYTHON_FALLBACK = ("python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8",
                    "/usr/bin/python3", "python3")


def _configured_interpreter(ctx):
    """The task's ``ansible_python_interpreter``; omitted (``{{ omit }}``) is not set, as in
    ansible-core (which then discovers)."""
    value = ctx.vars.get("ansible_python_interpreter")
    return None if value == OMIT else value


def _discovery_warning(host, path):
    return (f"Host {host!r} is using the discovered Python interpreter at {path!r}, but future installation of "
            "another Python interpreter could cause a different interpreter to be discovered. See "
            "https://docs.ansible.com/ansible-core/2.19/reference_appendices/interpreter_discovery.html for more "
            "information.")


def _discover_interpreter(fallback, host):
    """ansible-core's discovery (executor/interpreter_discovery.py), here on the host: its very
    shell line, ``command -v 'NAME'`` per name of ``fallback`` (a list, or a comma-separated
    string; None: the default list) between FOUND and ENDFOUND, and the first absolute path
    printed; none: /usr/bin/python3 with Ansible's warning; output it cannot read (a name with
    a quote breaks its quoting): /usr/bin/python3 with its "Unhandled error" warning. Returns
    (path, warnings)."""
    import subprocess

    names = fallback.split(",") if isinstance(fallback, str) else fallback
    names = [str(n).strip() for n in names or _PYTHON_FALLBACK if str(n).strip()]
    line = "echo FOUND; " + "; ".join(f"command -v '{n}'" for n in names) + "; echo ENDFOUND"
    try:
        out = subprocess.run(["/bin/sh", "-c", line], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=60).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as exc:
        out, problem = "", str(exc)
    else:
        problem = "unexpected output from Python interpreter discovery"
    match = re.match(r"FOUND(.*)ENDFOUND", out, re.DOTALL)
    if not match:
        return "/usr/bin/python3", [f"Unhandled error in Python interpreter discovery for host {host!r}: {problem}",
                                    _discovery_warning(host, "/usr/bin/python3")]
    found = [p.strip() for p in match.group(1).splitlines() if p.startswith("/")]
    if found:
        return found[0], [_discovery_warning(host, found[0])]
    return "/usr/bin/python3", [f"No python interpreters found for host {host!r} (tried {names!r})."]


def _runs_python(plan, ctx, delegated=False):
    """Whether the task runs its module in the discovered interpreter: not a bridged module
    whose shebang is not Python, not under a task's own ``ansible_python_interpreter`` (in a
    phase ``delegated`` to another host, that host's configuration decided)."""
    bridged = ctx.task.get("bridge")
    if bridged:
        spec = ((plan.get("bridge") or {}).get("modules") or {}).get(bridged) or {}
        if spec.get("style") not in ("new", "rustle"):
            return False
    if delegated:
        return True
    try:
        configured = _configured_interpreter(ctx)
    except Exception:  # a variable that cannot be rendered: not discovery's business
        return False
    return not configured or (isinstance(configured, str) and configured.startswith("auto"))


def _missing_interpreter(plan, ctx, module):
    """Ansible's failed result when the task's ``ansible_python_interpreter`` (a path, or a
    name looked up on PATH, as ``/bin/sh`` runs it), or the shebang's interpreter of a bridged
    module that is not Python (``ansible_<name>_interpreter`` over it), does not exist on the
    host; None when it exists or the module runs no interpreter."""
    bridged = ctx.task.get("bridge")
    try:
        if bridged:
            spec = ((plan.get("bridge") or {}).get("modules") or {}).get(bridged) or {}
            if spec.get("style") not in ("new", "rustle"):
                from .modules.bridge import _interpreter

                shebang = list(spec.get("interpreter") or [])
                if shebang:  # its override rendered here: an undefined one fails the task
                    ctx.vars.get(f"ansible_{shebang[0].rsplit('/', 1)[-1]}_interpreter")
                configured = (_interpreter(ctx, spec) or [None])[0]
            else:
                configured = _configured_interpreter(ctx)
        elif module in _NO_PYTHON:
            return None
        else:
            configured = _configured_interpreter(ctx)
    except TemplateError as exc:  # ansible-core renders the interpreter before the module starts
        return {"failed": True, "changed": False, "msg": f"Task failed: {exc}"}
    except Exception:  # a variable that cannot be rendered: the module's own problem
        return None
    if not isinstance(configured, str) or not configured or "{{" in configured or configured.startswith("auto"):
        return None
    if configured == sys.executable:
        return None
    import subprocess

    found = subprocess.run(["/bin/sh", "-c", 'command -v "$1"', "sh", configured], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60)
    if found.returncode == 0:
        return None
    # as Ansible starts it: the shell runs the configured text (stdin empty: a Python exits at once)
    try:
        proc = subprocess.run(["/bin/sh", "-c", configured], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=60)
    except subprocess.TimeoutExpired:  # it exists (and waits for something): not this check's business
        return None
    if proc.returncode != 127:
        return None
    return {"failed": True, "changed": False, "rc": 127, "module_stdout": proc.stdout.decode("utf-8", "replace"),
            "module_stderr": proc.stderr.decode("utf-8", "replace"),
            "msg": f"The module interpreter {configured!r} was not found."}


def _rlimit_nofile(scope):
    """``ansible_python_module_rlimit_nofile`` as an int (omitted: 0, no change)."""
    value = scope.get("ansible_python_module_rlimit_nofile")
    if value is None or value == OMIT or value == "":
        return 0
    return int(value)


def _start_debugger(config):
    """Attach the remote debugger ``config`` names (ansible-core's pydevd extension:
    ``{"module": ..., "settrace": {...}}``); Ansible's failed result when it cannot."""
    import importlib

    if not isinstance(config, dict):
        return {"failed": True, "changed": False,
                "msg": f"Task failed: Module failed: the pydevd configuration must be a dictionary, not {config!r}"}
    try:
        debugger = importlib.import_module(str(config.get("module", "pydevd")))
        debugger.settrace(**dict(config.get("settrace") or {}))
    except Exception as exc:
        return {"failed": True, "changed": False, "msg": f"Task failed: Module failed: {exc}",
                "exception": TRACEBACK_UNAVAILABLE}
    return None


def _flatten(items, levels):
    out = []
    for item in items:
        if isinstance(item, (list, tuple)) and (levels is None or levels > 0):
            out.extend(_flatten(item, None if levels is None else levels - 1))
        else:
            out.append(item)
    return out


def _shown(task, name, is_handler):
    """The name a result reports: Ansible names a role's handler ``ROLE : NAME`` (the compiler
    gives a role's tasks that name already; a handler keeps its own, which notify matches)."""
    if is_handler and task.get("role"):
        return f"{task['role'].split('#')[0]} : {name}"
    return name


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def merge_environment(env):
    """A task's environment once templated: a mapping, or the layers of its play, blocks and
    its own (the inner one wins per name), as ansible-core merges them."""
    if not isinstance(env, list):
        return env
    merged = {}
    for layer in env:
        if not isinstance(layer, dict):
            raise TemplateError(f"environment must be a dictionary, received {layer!r} "
                                f"({type(layer).__name__})")
        merged.update(layer)
    return merged


def _load_carry(path):
    """The state a previous stage or phase left: ``vars`` (registered results and set_fact),
    ``included`` (include_vars), ``facts`` (None: not gathered), ``notified`` (play index ->
    pending handler indexes) and ``ended`` (plays this host ended with meta). A file of the
    first format holds the vars alone."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    if data.get("__rustle_carry__") != 2:
        data = {"vars": data}
    return data


def _save_carry(path, values):
    """Write ``values`` to ``path`` atomically, readable by the SSH user only. The temporary
    name, ``<path>.tmp-<pid>``, is one the agent's cleanup knows."""
    import json
    import os

    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(values, fh, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class _DelegateScope(VarScope):
    """``ansible_delegated_vars[host]``: lazy as ansible-core's; given whole (``d: "{{
    ansible_delegated_vars[host] }}"``), the values that render, as ansible-core's lazy dict
    gives every value but one that fails when it is read (a task variable reading
    ``ansible_delegated_vars``, which the delegate's variables do not hold)."""

    def flat(self):
        out = {}
        for key in self.keys():
            try:
                out[key] = self[key]
            except (TemplateError, KeyError):
                continue
        for name, make in self._special.items():
            out.setdefault(name, make())
        return out


class Runner:
    """Run the plan's plays for one host and emit events; ``run()`` returns the exit code."""

    def __init__(self, payload, plan, host, emitter, check=False, diff=False, tags=None,
                 skip_tags=None, verbosity=0, run_id=None, plays=None, carry=None, host_vars=None,
                 phase=None, inject=None, share=None, unreachable=None, state_dir=None, interpreter=None):
        self.payload = payload
        # the Python the launcher discovered and INTERPRETER_PYTHON's mode ({"path", "mode"}), or
        # None (it ran a configured one): the fact discovered_interpreter_python, reported with
        # Ansible's warning in the first result of a task that runs Python
        self._launcher = interpreter if isinstance(interpreter, dict) and interpreter.get("path") else None
        # a hybrid run's Python side (serve.py): INTERPRETER_PYTHON's mode while the runner has
        # not reported its discovery yet; the first Python module here discovers and reports it
        self.served_discovery = None
        # a phase delegated to another inventory host, whose launcher discovered its Python: as
        # ansible-core 2.19, each Python module there discovers again and warns (naming this
        # host), and the fact is kept for neither host
        self._delegate = self._launcher.get("delegate") if self._launcher else None
        # the connection this run's tasks were to go through failed (a delegated phase): each
        # task that would use it is unreachable with this message; ignore_unreachable goes on
        self.unreachable = unreachable
        self.state_dir = state_dir  # the agent's remote directory (None when run by hand)
        plan = untag(plan)
        host_vars = untag(host_vars)
        self.plan = plan
        self.host = host
        self.emitter = emitter
        if plan.get("plugins"):  # the playbook's and roles' own plugins, answered by the controller
            from .templating import register_plugins

            register_plugins(plan["plugins"])
        self.check = bool(check or plan.get("check_mode"))
        self.diff = bool(diff or plan.get("diff_mode"))
        self.only_tags = tags or []
        self.skip_tags = skip_tags or []
        self.verbosity = verbosity
        self.run_id = run_id
        # A rollout runs a plan's plays in stages, one round trip each (docs/rollouts.md):
        # ``plays`` selects the plays (by plan index) of this stage; ``carry`` is the file
        # that keeps registered results and set_fact from one stage to the next.
        self.plays = None if plays is None else set(plays)
        self.carry = carry
        # A play cut into phases at cross-host tasks (docs/phases.md): ``phase`` selects the
        # top-level tasks of that phase; ``inject`` holds what the controller carries in from
        # another run (``vars``: a run_once task's registered result and set_fact, or what a
        # task delegated to the controller set; ``notified``: handlers it notified;
        # ``hostvars``: other hosts' values that this phase's tasks read); ``share``
        # asks for a ``shared`` event at the end: "vars" (the variables this run set) or
        # "state" (those, and the host's whole state: what a run on the controller starts from).
        self.phase = phase
        self.inject = inject or {}
        self.share = share
        self._carried_notified = {}  # play index -> handler indexes still pending
        # a play cut inside a block (docs/phases.md "Blocks cut into phases"): compiled id ->
        # [task, result] of each task of such a block that failed in an earlier phase, or that
        # another host's failure failed here (inject "failed": a run_once task's, an
        # any_errors_fatal task's); replayed so that the block's rescue/always go on from it
        self._phase_failures = {}
        self._reached = False  # this run ran a task of its phase (a run_once phase's host reached it)
        self._twice = False  # the failure being raised skips the next section of its block (_run_child)
        self._ended = set()  # plays this host ended (meta: end_play / end_host) in a phase
        # force_handlers in a play whose handlers run in phases of their own: play index -> the
        # phase where this host failed a task, while handlers it notified wait for a later phase
        # of its section's end (it runs only those there); its failed run still saves its state
        self._forced = {}
        self._keep_state = False
        # what add_host and group_by changed in this host's view of the inventory (kept in the
        # carry file): new hosts' variables, and group -> hosts added to it
        self._added = {"hosts": {}, "groups": {}}
        self._own = set()  # registered names a run_once phase does not share (add_host's)
        self.templar = Templar(read_file=self._read_embedded,
                               allow_broken_conditionals=bool(plan.get("allow_broken_conditionals")),
                               deprecation_warnings=plan.get("deprecation_warnings") is not False)
        self._facts = None
        self._collected = set()  # the fact collectors that have run (facts.COLLECTORS)
        self._fact_path = None  # the fact_path ansible_local of the facts was read from
        self._tmpdir = None
        self.runtime_vars = {}  # registered results and set_fact, across plays
        self._own_names = set()  # registered by a task whose result only the first host gets
        self.cleanups = []  # called when the run ends
        self.included_vars = {}  # include_vars, below set_fact
        # the includes (compiled ids) that ran on this host: an include_role's handlers answer a
        # notify only after it (their "included_by"), as ansible-core adds them when it loads the role
        self._includes_ran = set()
        # the public include_roles that ran on this host ([play index, role key], in order): their
        # roles' defaults and vars are the play's from then on, as ansible-core exposes them
        self._exposed = []
        self._includes_skipped = set()  # the includes cut into phases that this host skipped
        # a loop over an include unrolled into one include per item (its "include_items"): the id
        # of each include whose item runs on this host -> that item's loop variables, as the
        # loop's own include rendered them when it decided each item's condition
        self._include_layers = {}
        # facts a module returned (getent_passwd...): variables of their own name too, at the
        # host facts' precedence (above inventory, below play vars), as INJECT_FACTS_AS_VARS does
        self.module_facts = {}
        self._delegated = {}  # delegate_facts: {"facts", "vars"} of the host delegated to
        self._errors_cleared = False  # a meta: clear_host_errors ran (in an always section)
        self._roles_ended = set()  # role calls (keys) a meta: end_role ended on this host
        self._unreachable_hit = False  # a task was unreachable (or notified no handler): no rescue, no always
        # an include that could not be loaded failed this host, and a rescue went on: ansible-core
        # still counts the host failed, and it takes no part in the later plays
        self._failed_at_end = False
        # why the run errored (ansible-core aborts the whole run, "ERROR! ..."): a notify of no
        # handler fired; the recap carries it, and the controller records an errored run
        self.errored = None
        self._errored_exit = None  # 4: the error is ansible-core's parser error (include_error "exit")
        self.extra_vars = dict(plan.get("extra_vars") or {})
        self.stats = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0, "rescued": 0, "ignored": 0}
        self._params = []  # params layers of the containers being run (include vars)
        self._rescuing = 0  # how many enclosing block sections have a rescue
        self._failure = None  # (task, result) of the last failed task
        self._ran = 0  # task results that were not skipped (a repeated role's "has run")
        self._roles_done = set()
        self._children = None  # become.Children, once a task runs as another user
        # The host's own variables come with its run request (docs/artifact.md, "Host
        # variables"); plan.json holds of each host only what the plan reads through hostvars
        # (every variable in artifacts built before this split, which still run that way).
        if host_vars is None:
            host_vars = (plan.get("hosts") or {}).get(host)
        self.host_vars = dict(host_vars or {})
        # where the inventory wrote them (the controller's model.run_vars), for origins
        self.templar.host_origins = (self.host_vars, self.host_vars.pop("__rustle_origins", None) or {})
        groups = plan.get("groups") or {}
        # the play context's address, as Ansible's: the inventory's ansible_host, else the name
        self._address_given = "ansible_host" in self.host_vars
        self.host_vars.setdefault("ansible_host", host)
        self.host_vars.setdefault("group_names", sorted(
            g for g, members in groups.items() if host in members and g != "all"))
        self.host_vars.update({
            "inventory_hostname": host,
            "inventory_hostname_short": host.split(".")[0],
            "groups": groups,
            "ansible_check_mode": self.check,
            "ansible_diff_mode": self.diff,
            "ansible_verbosity": verbosity,
            "ansible_run_tags": list(self.only_tags) or ["all"],
            "ansible_skip_tags": list(self.skip_tags),
            "omit": OMIT,
        })
        if plan.get("playbook_dir"):
            self.host_vars["playbook_dir"] = plan["playbook_dir"]

    # ---------------------------------------------------------------- host state

    def facts(self, key=None, refresh=False, collectors=None, timeout=None):
        """The host's facts (``ansible_`` names), gathered per collector when first asked for:
        ``key`` (a fact's name) runs the collector that gives it (network for a name no
        collector lists: an interface's), ``collectors`` those named, neither of them every
        collector the play's ``gather_subset`` selects; ``refresh`` runs them again.
        ``timeout``: gather_timeout (the play's without it)."""
        from .facts import COLLECTOR_NAMES, collector_of, gather
        from .facts import collectors as subset_collectors

        if self._facts is None:
            self._facts = {"ansible_local": self._local_facts()}
            self._collected = set()
        if collectors is None:
            name = key[8:] if key and key.startswith("ansible_") and key != "ansible_facts" else None
            if name is None:
                collectors = set(COLLECTOR_NAMES)
            elif key in self._facts or name in self._facts:  # ansible_local, a module's fact
                collectors = set()
            else:
                collectors = {collector_of(name)} - {None}
            subset = (self._play or {}).get("gather_subset")
            if subset is not None:  # the play's gather_subset: what its gathering may run
                collectors &= subset_collectors(subset)
        wanted = set(collectors) if refresh else set(collectors) - self._collected
        if wanted:
            if timeout is None:
                timeout = (self._play or {}).get("gather_timeout", 10)
            self._facts.update(unsafe(gather(wanted, timeout=timeout, facts=self._facts)))
            self._collected |= wanted
            if self._launcher and not self._delegate and "discovered_interpreter_python" not in self._facts:
                # gathering is what runs Python first on an Ansible host (its setup module)
                self._facts["discovered_interpreter_python"] = self._launcher["path"]
                self.module_facts["discovered_interpreter_python"] = self._launcher["path"]
        return self._facts

    def _local_facts(self):
        """``ansible_local`` as the play's fact gathering reads it: its ``fact_path`` (the
        default /etc/ansible/facts.d without one)."""
        from .facts import FACT_PATH, FactsContext, local_facts

        self._fact_path = (self._play or {}).get("fact_path") or FACT_PATH
        return unsafe(local_facts(FactsContext(), self._fact_path))

    def _read_embedded(self, sha256):
        """The bytes of ``files/<sha256>`` (a template's include, a lookup's file)."""
        return self.payload.read("files/" + sha256)

    def run_time_file(self, name):
        """(sha256, bytes, controller details) of a controller file the task reads when it runs
        (``run_time_files``), as the controller sent it with this phase (``inject.files``:
        base64 ``data``, ``info`` as the compiler's ``sources``); None if it did not."""
        sent = (self.inject.get("files") or {}).get(name)
        if not isinstance(sent, dict) or not isinstance(sent.get("data"), str):
            return None
        import base64

        from .lowlevel import hexdigest

        raw = base64.b64decode(sent["data"])
        return hexdigest("sha256", raw), raw, dict(sent.get("info") or {})

    def run_time_tree(self, name):
        """(tree, {sha256: bytes}) of a copy ``src`` directory the controller sent with this
        phase (``inject.trees``: made by an earlier task on the controller); None if it did not."""
        sent = (self.inject.get("trees") or {}).get(name)
        if not isinstance(sent, dict) or not isinstance(sent.get("entries"), dict):
            return None
        import base64

        from .lowlevel import hexdigest

        blobs = {}
        for data in (sent.get("blobs") or {}).values():
            raw = base64.b64decode(data)
            blobs[hexdigest("sha256", raw)] = raw  # named by what arrived, not by the sender's word
        tree = {"path": sent.get("path"), "entries": sent["entries"], "links": sent.get("links") or {},
                "modes": sent.get("modes") or {}}
        return tree, blobs

    def tmpdir(self):
        if self._tmpdir is None:
            import tempfile

            self._tmpdir = tempfile.mkdtemp(prefix="rustle-")
        return self._tmpdir

    def _hostvars(self):
        out = {}
        # the hosts this artifact serves, then the other inventory hosts the plan reads
        served = self.plan.get("hosts") or {}
        for name, hv in [*served.items(), *(self.plan.get("other_hosts") or {}).items()]:
            if name == self.host:
                out[name] = self._own_hostvars()
            else:
                v = dict(hv)
                v.setdefault("inventory_hostname", name)
                out[name] = v
        groups = self.host_vars["groups"]
        for name, host_vars in self._added["hosts"].items():  # what add_host added or set
            out[name] = dict(out.get(name) or {}, **host_vars)
            out[name].update(inventory_hostname=name, group_names=sorted(
                g for g, members in groups.items() if name in members and g != "all"))
        # what other hosts registered, set or gathered, sent by the controller for this phase
        for name, values in (self.inject.get("hostvars") or {}).items():
            if name != self.host and isinstance(values, dict):
                out.setdefault(name, {"inventory_hostname": name}).update(unsafe(values))
        return out

    def _add_to_inventory(self, name, groups, host_vars):
        """Add host ``name`` (with ``host_vars``) to ``groups`` in this host's view of the
        inventory, as Ansible's strategy does for add_host and group_by; whether that changed
        anything."""
        known = dict(self.host_vars.get("groups") or {})
        changed = False
        if name not in known.get("all", ()) and name != self.host and name not in self._added["hosts"]:
            self._added["hosts"][name] = {}
            changed = True
        if host_vars and name != self.host:
            old = dict((self.plan.get("hosts") or {}).get(name) or {}, **self._added["hosts"].get(name, {}))
            if any(k not in old or old[k] != v for k, v in host_vars.items()):
                self._added["hosts"][name] = dict(self._added["hosts"].get(name, {}), **host_vars)
                changed = True
        for group in ["all", *groups]:
            members = list(known.get(group) or ())
            if name not in members:
                added = self._added["groups"].setdefault(group, [])
                # Ansible lists the hosts add_host put in 'all' itself before the others
                members.insert(sum(1 for m in members if m in added) if group == "all" else len(members), name)
                known[group] = members
                if name not in self._added["groups"][group]:
                    self._added["groups"][group].append(name)
                changed = changed or group != "all"
        in_groups = any(name in m for g, m in known.items() if g not in ("all", "ungrouped"))
        if in_groups and name in known.get("ungrouped", ()):  # as Ansible's reconcile_inventory
            known["ungrouped"] = [m for m in known["ungrouped"] if m != name]
        elif not in_groups and name not in known.get("ungrouped", ()):
            known["ungrouped"] = list(known.get("ungrouped") or ()) + [name]
            self._added["groups"].setdefault("ungrouped", []).append(name)
        self.host_vars["groups"] = known
        if name == self.host:
            self.host_vars["group_names"] = sorted(g for g, m in known.items() if name in m and g != "all")
        return changed

    def _refreshed(self, view):
        """The inventory as ``meta: refresh_inventory`` read it again, in place of the compiled
        one (the controller sends it with each later phase of the play; the host's own variables
        come with its run request): the groups, and the other hosts' variables the plan reads
        through hostvars. What add_host and group_by made is replayed over it (the carry file)."""
        groups = {str(g): [str(m) for m in members] for g, members in (view.get("groups") or {}).items()}
        hosts = {str(n): dict(v) for n, v in (view.get("hosts") or {}).items() if isinstance(v, dict)}
        self.plan = dict(self.plan, groups=groups, hosts=hosts, other_hosts={})
        self.host_vars["groups"] = groups
        self.host_vars["group_names"] = sorted(g for g, m in groups.items() if self.host in m and g != "all")

    def _apply_added(self, added, ordered=False):
        """Replay what add_host/group_by changed (this host's earlier runs, or other hosts':
        ``ordered``, the controller's merge over every host, whose order is Ansible's). A host
        neither in the inventory nor made by add_host was dropped by meta: refresh_inventory:
        its groups are not given back to it, as ansible-core's refresh does not."""
        known_hosts = set((self.host_vars.get("groups") or {}).get("all") or ())
        known_hosts.update((added or {}).get("hosts") or (), self._added["hosts"], [self.host])
        for group, members in ((added or {}).get("groups") or {}).items():
            members = [m for m in members if m in known_hosts]
            for name in members:
                self._add_to_inventory(name, [group], {})
            if ordered:  # the inventory's own members first, then the added ones in that order
                listed = [str(m) for m in members]  # ('all' lists the hosts add_host made first)
                known = dict(self.host_vars["groups"])
                rest = [m for m in known.get(group) or () if m not in listed]
                known[group] = listed + rest if group == "all" else rest + listed
                self.host_vars["groups"] = known
                mine = self._added["groups"].get(group)
                if mine is not None:
                    self._added["groups"][group] = [m for m in listed if m in mine] + \
                        [m for m in mine if m not in listed]
        for name, host_vars in ((added or {}).get("hosts") or {}).items():
            self._add_to_inventory(name, [], unsafe(host_vars))
        for parent, kids in ((added or {}).get("children") or {}).items():
            mine = self._added.setdefault("children", {}).setdefault(parent, [])
            merged = list(kids) + [k for k in mine if k not in kids] if ordered else \
                mine + [k for k in kids if k not in mine]
            self._added["children"][parent] = merged
        if (added or {}).get("children"):
            self._refresh_parents()

    def _change_inventory(self, result):
        """Carry out what an add_host or group_by task returned."""
        if "add_host" in result:
            new = result["add_host"]
            return self._add_to_inventory(new["host_name"], new["groups"], new["host_vars"])
        known = self.host_vars.get("groups") or {}
        key = result["add_group"]
        changed = key not in known or any(p not in known for p in result["parent_groups"])
        for parent in result["parent_groups"]:
            if parent != "all":
                kids = self._added.setdefault("children", {}).setdefault(parent, [])
                changed = changed or key not in kids
                if key not in kids:
                    kids.append(key)
        changed = self._add_to_inventory(self.host, [key], {}) or changed
        self._refresh_parents()
        return changed

    def _refresh_parents(self):
        """A parent group's hosts, as Ansible lists them: its own, then its child groups' in
        the order the children were added (group_by's parents)."""
        static = self.plan.get("groups") or {}
        known = dict(self.host_vars["groups"])
        for parent, kids in (self._added.get("children") or {}).items():
            members = list(static.get(parent) or ())
            for kid in kids:
                members.extend(m for m in known.get(kid) or () if m not in members)
            known[parent] = members
        self.host_vars["groups"] = known
        self.host_vars["group_names"] = sorted(g for g, m in known.items() if self.host in m and g != "all")

    def _exposed_roles(self):
        """The roles of the play's public include_roles that ran here, in the order they ran."""
        play = self._play or {}
        roles = play.get("roles") or {}
        return [roles[key] for index, key in self._exposed if index == play.get("index") and key in roles]

    def _own_hostvars(self):
        """This host's entry of ``hostvars``, as ansible-core's HostVars gives it: its inventory
        variables, facts, include_vars, set_fact and registered values, extra vars; not the
        play's vars (vars_files, roles' defaults and vars, the play's magic names)."""
        own = {k: v for k, v in self.host_vars.items() if k not in _PLAY_NAMES}
        if not self._address_given:
            own.pop("ansible_host", None)
        return self._scope([], own, [])

    def _base_scope(self):
        play = self._play or {}
        exposed = self._exposed_roles()
        defaults = [play["defaults"]] if play.get("defaults") else []
        defaults.extend(r["defaults"] for r in exposed if r.get("defaults"))
        play_vars = [play["vars"]] if play.get("vars") else []
        play_vars.extend(r["vars"] for r in exposed if r.get("vars"))
        return self._scope(defaults, self.host_vars, play_vars)

    def _scope(self, below, host_vars, play_vars):
        """The host's variables in ansible-core's precedence, lowest first: ``below`` (role and
        play defaults), ``host_vars``, module facts, ``play_vars``, include_vars, set_fact and
        registered values, extra vars."""
        layers = [*below, host_vars]
        if self.module_facts:
            layers.append(self.module_facts)
        layers.extend(play_vars)
        if self.included_vars:
            layers.append(self.included_vars)
        layers.append(self.runtime_vars)
        if self.extra_vars:
            layers.append(self.extra_vars)
        return VarScope(layers, self.templar, facts=self.facts, special={"hostvars": self._hostvars})

    # ---------------------------------------------------------------- run

    def run(self):
        start = time.monotonic()
        self._play = None
        self._staged = False  # whether the play runs its handlers in phases of their own
        self.emitter.emit({"event": "run_start", "host": self.host, "run_id": self.run_id,
                           "time": time.time(), "binary_name": self.plan.get("binary_name"),
                           "check": self.check, "diff": self.diff, "protocol": 1,
                           "python": ".".join(str(x) for x in sys.version_info[:3])})
        failed = False
        if self.inject.get("refreshed"):  # a phase after meta: refresh_inventory: what it read
            self._refreshed(self.inject["refreshed"])
        if self.carry:
            state = _load_carry(self.carry)
            self.runtime_vars.update(unsafe(state.get("vars") or {}))
            self.included_vars.update(state.get("included") or {})
            if isinstance(state.get("facts"), dict):
                from .facts import COLLECTOR_NAMES

                self._facts = unsafe(state["facts"])
                self._collected = set(state.get("facts_collected", COLLECTOR_NAMES))
            self._carried_notified = dict(state.get("notified") or {})
            self._phase_failures = dict(state.get("phase_failures") or {})
            self._ended = set(state.get("ended") or ())
            self._forced = dict(state.get("forced") or {})
            self._includes_ran = set(state.get("includes_ran") or ())
            self._exposed = [list(x) for x in state.get("exposed") or ()]
            self._includes_skipped = set(state.get("includes_skipped") or ())
            self._include_layers = unsafe(dict(state.get("include_layers") or {}))
            self._apply_added(state.get("inventory"))
        if self.inject.get("files") or self.inject.get("locked"):  # what lookup('file') of a file the play created reads
            from . import lookups

            lookups.run_time_files = dict(self.inject.get("files") or {})
            lookups.run_time_locked = dict(self.inject.get("locked") or {})
        if self.inject:
            self._apply_added(self.inject.get("inventory"), ordered=True)  # what other hosts changed
            self.runtime_vars.update(unsafe(self.inject.get("vars") or {}))
            # the handlers pending after a run on the controller (that started from this state),
            # or after a run_once handler ran elsewhere
            for key, indexes in (self.inject.get("notified") or {}).items():
                self._carried_notified[key] = sorted(set(indexes))
            self._forced.update(self.inject.get("forced") or {})  # it failed a task there (a run here)
        before = dict(self.runtime_vars)
        try:
            if self.plan.get("bridge"):
                from .modules.bridge import prestart

                prestart(self)
            for play in self.plan.get("plays") or []:
                if self.host not in (play.get("hosts") or []):
                    continue
                if self.plays is not None and play.get("index") not in self.plays:
                    continue
                try:
                    self._run_play(play)
                except _HostFailed:
                    failed = True
                    break
        finally:
            for close in reversed(self.cleanups):  # e.g. the module bridge's fork server
                close()
            if self._children is not None:
                self._children.close(wait=False)
            if self._tmpdir is not None:
                import shutil

                shutil.rmtree(self._tmpdir, ignore_errors=True)
        state = {"__rustle_carry__": 2, "vars": self.runtime_vars, "included": self.included_vars,
                 "facts": self._facts, "facts_collected": sorted(self._collected),
                 "notified": self._carried_notified, "ended": sorted(self._ended),
                 "inventory": self._added}
        if self._includes_ran:
            state["includes_ran"] = sorted(self._includes_ran)
        if self._exposed:
            state["exposed"] = self._exposed
        if self._includes_skipped:
            state["includes_skipped"] = sorted(self._includes_skipped)
        if self._include_layers:
            state["include_layers"] = self._include_layers
        if self._phase_failures:
            state["phase_failures"] = self._phase_failures
        if self._forced:
            state["forced"] = self._forced
        if self.carry and (not failed or self._keep_state):
            _save_carry(self.carry, masked_json(state))
        if (self.share or self._keep_state) and (not failed or self._keep_state):
            set_here = {k: v for k, v in self.runtime_vars.items() if k not in before or before[k] is not v}
            shared = {"event": "shared", "host": self.host, "notified": self._carried_notified, "vars": {
                k: v for k, v in set_here.items() if k not in self._own and k not in self._own_names}}
            own = {k: v for k, v in set_here.items() if k in self._own_names}
            if own:  # a pause's result: registered on this host only, as in ansible-core
                shared["own"] = own
            if self._added["hosts"] or self._added["groups"]:
                shared["inventory"] = self._added
            if self._delegated:
                shared["delegated"] = self._delegated
            if self.phase is not None and not self._reached:  # a run_once phase: another host runs it
                shared["reached"] = False
            if self._phase_failures:  # a run on the controller: the host goes on from them
                shared["phase_failures"] = self._phase_failures
            for key, phase in self._forced.items():  # the controller runs it in its section's end
                shared["forced"] = [int(key), phase]
            if self.share == "state":  # a run on the controller goes on from it, with these facts
                shared["state"] = dict(state, facts=self.facts(), facts_collected=sorted(self._collected))
            elif self.share == "known":  # the state as it is (facts only if gathered)
                shared["state"] = state
            self.emitter.emit(masked_json(shared), journal=False)
        recap = {"event": "recap", "host": self.host}
        recap.update(self.stats)
        if self.errored:
            recap["errored"] = self.errored
            if self._errored_exit:  # ansible-core's parser error: ansible-playbook exits 4
                recap["errored_exit"] = self._errored_exit
        recap["duration"] = round(time.monotonic() - start, 6)
        self.emitter.emit(recap)
        if self._children is not None:
            self._children.close()  # reaped after the recap: they exit while it travels
        return EXIT_FAILED if failed else EXIT_OK

    def _run_play(self, play):
        self._play = play
        if self._facts is not None and (play.get("fact_path") or "/etc/ansible/facts.d") != self._fact_path:
            self._facts["ansible_local"] = self._local_facts()  # this play gathers from its own
        tasks = play.get("tasks") or []
        first = last = True
        key = str(play.get("index"))
        if self.phase is not None and play.get("phases"):
            if key in self._ended:
                return
            tasks = [t for t in tasks if t.get("phase", 0) <= self.phase <= t.get("last_phase", t.get("phase", 0))]
            first, last = self.phase == 0, self.phase == play["phases"] - 1
        everyone = list(play.get("play_hosts") or play.get("hosts") or [])
        batch = self.inject.get("batch")  # a serial play's batch (sent with each of its runs)
        refreshed = self.inject.get("refreshed")
        if refreshed:  # after meta: refresh_inventory: the hosts it dropped left the play (and its
            # batch), the play's pattern selects the hosts it added too (they run none of its tasks)
            known = set(self.host_vars["groups"].get("all") or ())
            batch = [h for h in (everyone if batch is None else batch) if h in known]
            everyone = list(refreshed.get("play_hosts") or [h for h in everyone if h in known])
        # the hosts that failed in the play's earlier phases and in earlier plays (sent when a
        # task of this one reads them)
        gone = set(self.inject.get("failed_hosts") or ())
        live = [h for h in everyone if h not in gone]
        batch = live if batch is None else [h for h in batch if h not in gone]
        self.host_vars.update({"ansible_play_name": play.get("name", ""), "ansible_play_hosts_all": everyone,
                               "ansible_play_hosts": live, "play_hosts": batch,
                               "ansible_play_batch": batch})
        self._notified = set(self._carried_notified.pop(key, ()))  # the play's notified handlers
        self._roles_done = set()
        # what a notify may name: a handler's name, or a topic it listens to
        self._handler_names = set()
        for h in play.get("handlers") or []:
            self._handler_names.update(_handler_topics(h))
        # a play with a run_once or delegated handler runs its handlers in phases of their own
        # (each handler's "phase": the phases it runs in, one per flush and one at the end)
        self._staged = bool(self.phase is not None and play.get("phases") and any(
            "phase" in h for h in play.get("handlers") or []))
        if key in self._forced and play.get("forced"):  # it failed a task of the play: only handlers
            self._run_forced(play, key, last)
            return
        if first:
            self.emitter.emit({"event": "play_start", "play": play.get("name", ""), "host": self.host})
        try:
            try:
                for task in tasks:
                    self._run_child(task)
            except _HostFailed:
                if play.get("force_handlers") and self.phase is not None \
                        and (play.get("forced") or {}).get(str(self.phase)):  # at its section's end
                    self._force_later(play, key, last)
                elif play.get("force_handlers"):  # what was notified before the failure still runs
                    self._flush_handlers()
                raise
            # this phase's handlers, once after its tasks and again in the last phase
            staged = self._staged
            if staged:
                self._flush_handlers(self.phase)
            if not last:  # the play goes on in a later phase: its notifications wait for it
                # (a staged play's even when none is left: a run on the controller that ran the
                # last one says so, else the host's own pending ones would run again)
                if self._notified or staged:
                    self._carried_notified[key] = sorted(self._notified)
                return
            # as Ansible: a flush after the tasks and one after the (empty) post_tasks; what is
            # notified after that is forgotten
            if not staged:
                self._flush_handlers()
            self._flush_handlers(self.phase if staged else None)
        except _EndPlay:
            self._ended.add(key)
        if last and self._failed_at_end:
            raise _HostFailed()

    def _force_later(self, play, key, last):
        """force_handlers, this host failed a task of this phase of a play whose handlers run in
        phases of their own: what it notified runs at its section's end, as ansible-core's
        force_handlers runs it (docs/phases.md "force_handlers"): the handlers of this phase now
        when it is that end, the others in the later phases of it that the controller runs it in
        (without tasks: ``_run_forced``)."""
        self._keep_state = True
        self._forced[key] = self.phase
        self._run_forced(play, key, last)

    def _run_forced(self, play, key, last):
        """The handlers of this phase that a host which failed a task of the play in phase
        ``self._forced[key]`` notified, if this phase is of its section's end; what is left waits
        for its later phases there. A handler that fails ends the host's handlers."""
        self._keep_state = True
        ends = (play.get("forced") or {}).get(str(self._forced[key])) or []
        try:
            if self.phase in ends:
                self._flush_handlers(self.phase if self._staged else None)
                if last:  # as the play's end: a flush after the (empty) post_tasks too
                    self._flush_handlers(self.phase if self._staged else None)
        except _EndPlay:
            self._ended.add(key)
            self._notified.clear()
        except _HostFailed:
            self._forced.pop(key, None)
            raise
        self._carried_notified[key] = sorted(self._notified)
        if not (self._notified and any(e > self.phase for e in ends)):  # nothing left: no later phase
            self._forced.pop(key, None)

    def _notify(self, names):
        handlers = self._play.get("handlers") or []
        # an include_role's handlers are found once that include ran here
        known = [h for h in handlers if "included_by" not in h or any(
            str(h.get("id", "")).rpartition("/")[0] + "/" + i in self._includes_ran for i in h["included_by"])]
        chosen = set()
        for name in names:
            chosen.update(id(h) for h in _notified_handlers(known, name))
        for index, handler in enumerate(handlers):
            if id(handler) in chosen:
                self._notified.add(index)

    def _flush_handlers(self, phase=None):
        """One walk over the handlers in order, as Ansible's: each notified handler runs once;
        one notified during the walk runs now if it comes later, else at the next flush (so
        handlers that notify each other never loop). ``phase``: only the handlers of that phase."""
        for index, handler in enumerate(self._play.get("handlers") or []):
            if phase is not None and phase not in (handler.get("phase") or ()):
                continue
            if index in self._notified:
                self._notified.discard(index)
                self._reached = True
                self._run_task(handler, is_handler=True)

    # ---------------------------------------------------------------- blocks

    def _run_container(self, task, is_handler=False):
        """A block (block/rescue/always), or an include: its own keywords apply once."""
        include = task.get("include")
        if include is not None and not is_handler:
            if not tags_selected(task.get("tags"), self.only_tags, self.skip_tags):
                return
        live = self.host_vars.get("ansible_play_hosts") or [self.host]
        if include is not None and task.get("include_once") and live[0] != self.host:
            return  # a run_once include: ansible-core processes it for the play's first host only
        # an include cut into phases, after a phase of it that this host ran: its condition was
        # decided then, once, as ansible-core decides it (its tasks may change what it reads), and
        # reported; a host that ran none of its earlier phases (a run_once one) decides it now
        later = include is not None and self.phase is not None and task.get("phase", self.phase) < self.phase \
            and (task.get("id") in self._includes_ran or task.get("id") in self._includes_skipped)
        if later and task.get("id") in self._includes_skipped:
            return
        if task.get("include_item") is not None or (later and task.get("include_items") is not None):
            # one item of a loop over an include cut into phases: its loop's include decided it
            layer = self._include_layers.get(task.get("id"))
            if layer is not None:
                self._params.append(dict(task.get("params") or {}, **layer))
                try:
                    self._run_sections(task, is_handler)
                finally:
                    self._params.pop()
            return
        shown, warning = self._name(task, "include", is_handler)
        head = {"id": task.get("id"), "task": shown, "module": "include"}
        if warning:
            head["warnings"] = [warning]
        missing = task.get("include_error")
        if include is not None and isinstance(missing, dict) and missing.get("action"):
            # a task whose templated action renders to no module name: ansible-core stops the run
            # when it reaches the task, before its condition, with no result of the task; a
            # flush_handlers handler ("when_first") only once its condition is true: a false one
            # skips it, a meta task that the recap does not count
            if missing.get("when_first"):
                try:
                    skipped = self._skip_reason(task, self._task_scope(task))
                except TemplateError:
                    skipped = None  # ansible-core's conditional error stops the run too
                if skipped is not None:
                    event = dict(head, event="task_result", status="skipped", module="meta", ignored=False)
                    event.update(self._event_fields(skipped, {}))
                    self.emitter.emit(event)
                    return
            self._include_failed(head, task, missing, counted=False)
            return
        scope = self._task_scope(task)
        rounds = [(scope, {})]
        register = task.get("register") if include is not None else None
        try:
            if "loop" in task:
                try:
                    items = self._loop_items(task, scope)
                except TemplateError:
                    # like Ansible: a false `when` skips the include before the loop error matters
                    skipped = self._skip_reason(task, scope)
                    if skipped is None or include is None:
                        raise
                    if register:
                        self.runtime_vars[register] = unsafe(dict(skipped))
                    self._container_event(head, dict(skipped), include)
                    return
                control = self._loop_control(task, scope)
                rounds = [(scope.child(lv), lv) for lv in (_loop_vars(control, items, i) for i in range(len(items)))]
            kept = [i for i, (item_scope, _) in enumerate(rounds)
                    if later or self._skip_reason(task, item_scope) is None]
            slots = self._include_slots(task, len(rounds), kept)
            runs = [rounds[i] for i in kept]
        except TemplateError as exc:
            # as ansible-core's include task fails: its own ignore_errors applies
            ignore = task.get("ignore_errors") if include is not None else None
            if isinstance(ignore, str):
                ignore = str(self.templar.template(ignore, scope)).strip().lower() in ("true", "yes", "on", "1")
            result = {"failed": True, "changed": False, "msg": f"Task failed: {exc}" if include is not None else str(exc)}
            if register:
                self.runtime_vars[register] = unsafe(dict(result))
            self._container_event(head, result, include, ignored=ignore is True)
            return
        try:
            choice = task.get("include_choice")
            picks = [self._choose(task, item_scope) if choice else task for item_scope, _ in runs]
        except TemplateError as exc:  # no file to load: no ignore_errors applies
            self._container_event(head, {"failed": True, "changed": False, "msg": str(exc)}, include)
            return
        if later:
            include = None  # an include cut into phases: an earlier phase reported it
        if not runs:
            if include is not None and self.phase is not None and "phase" in task:
                self._includes_skipped.add(task.get("id"))  # for its later phases
            if include is not None:
                reason = {"skip_reason": "Conditional result was False"}
                if not rounds:
                    reason = {"skipped_reason": "No items in the list"}
                elif "loop" not in task:  # the condition that was false, as Ansible's result says
                    skipped = self._skip_reason(task, rounds[0][0]) or {}
                    reason = {k: v for k, v in skipped.items() if k not in ("changed", "skipped")} or reason
                if register:
                    self.runtime_vars[register] = unsafe(dict(reason, changed=False, skipped=True))
                self._container_event(head, dict(reason, changed=False, skipped=True), include)
            return
        if task.get("include") is not None:
            self._includes_ran.add(task.get("id"))
            # an include_role's role chosen by name (a role choice): its handlers wait for its block's id
            self._includes_ran.update(pick.get("id") for pick in picks if pick is not task and pick.get("id"))
            for public in [task.get("public"), *(pick.get("public") for pick in picks if pick is not task)]:
                seen = [(self._play or {}).get("index"), public]
                if public and seen not in self._exposed:
                    self._exposed.append(seen)
        if include is not None:
            if "loop" in task:  # one result for the loop, before its items run, as Ansible reports it
                self._container_event(head, {"changed": False, "msg": "All items completed",
                                             "results": [dict(layer) for _, layer in runs]}, include)
                self.stats["ok"] += len(runs) - 1  # ansible-core counts each item it included
            else:
                self._container_event(head, {"changed": False}, include)
        if register:  # what Ansible registers for an include_tasks (its include result)
            one = task.get("include_result") or {}
            self.runtime_vars[register] = unsafe(
                {"changed": False, "msg": "All items completed", "skipped": False,
                 "results": [dict(layer, **one) for _, layer in runs]} if "loop" in task
                else dict(one, changed=False))
        missing = task.get("include_error") if include is not None else None
        if missing:  # the file or role it names could not be loaded: after the include, as Ansible
            self._include_failed(head, task, missing)
        unrolled = task.get("include_items")
        if unrolled is None and slots is not None:  # ansible-core's order of the items across hosts
            order = sorted(range(len(runs)), key=lambda n: slots[kept[n]])
            runs, picks = [runs[n] for n in order], [picks[n] for n in order]
        if unrolled is not None:  # each item runs in its own include: this one runs the first
            ids = [task.get("id"), *unrolled]
            self._include_layers.update((ids[slots[i]], dict(rounds[i][1])) for i in kept)
            first = [n for n, i in enumerate(kept) if slots[i] == 0]
            if not first:
                return
            runs, picks = runs[first[0]:first[0] + 1], picks[first[0]:first[0] + 1]
        once = task.get("role_once")
        if once is not None and once in self._roles_done:
            return  # Ansible runs a repeated role once, when a task of it ran before
        ran = self._ran
        for (_, layer), pick in zip(runs, picks):
            self._params.append(dict(task.get("params") or {}, **layer))
            try:
                self._run_sections(pick, is_handler)
            finally:
                self._params.pop()
                if once is not None and self._ran > ran:
                    self._roles_done.add(once)

    def _include_slots(self, task, count, kept):
        """For a loop over an include unrolled into one include per item (``include_items``):
        the include each of this host's ``count`` items runs in (0: this one), as the controller
        placed them when it cut the play into phases (a loop that stays one include: each
        item's place in ansible-core's order); a host whose items or conditions are not what the
        controller listed fails the include."""
        unrolled = task.get("include_items")
        slots = task.get("include_slots")
        if (unrolled is None and slots is None) or "loop" not in task:
            return None
        slots = list(range(1 + len(unrolled))) if slots is None else slots.get(self.host)
        if slots is None or len(slots) != count:
            listed = "none" if slots is None else len(slots)
            raise TemplateError(f"the loop over this include has {count} items on this host, where the "
                                f"controller listed {listed} when it cut the play into phases")
        for i in kept:
            if slots[i] is None:
                raise TemplateError(f"the condition of this include holds for item {i + 1} of its loop on this "
                                    "host, where the controller decided it false when it cut the play into phases")
        return slots

    def _choose(self, task, scope):
        """The block of the file an include names with host data (``include_choice``): the
        compiler compiled every file the name could select into the include's ``block``, and
        maps each name that selects one to its index (or to why it could not be compiled);
        ``first_found`` picks among the names it found on the controller."""
        choice = task["include_choice"]
        name = self.templar.template(choice["name"], scope.child({FOUND_VAR: choice.get("found") or {}}))
        index = (choice.get("select") or {}).get(str(name))
        if index is None:
            raise TemplateError(f"Could not find or access '{name}' on the Ansible Controller.")
        if isinstance(index, str):
            raise TemplateError(index)
        return task["block"][index]

    def _include_failed(self, head, task, missing, counted=True):
        """An include whose file or role could not be loaded (``include_error``), after its
        ``included`` result: it fails the host with ansible-core's result (``include``,
        ``reason``; no ignore_errors applies, and ansible-core counts the include as failed
        only, and sets no ``ansible_failed_result`` for a rescue); one that ansible-core could
        not parse (a module nothing provides) errors the run, past any rescue, as ansible-core
        aborts it there."""
        reason = str(missing.get("reason") or "")
        result = {"failed": True, "changed": False, "reason": reason}
        if missing.get("include") is not None:  # an include_tasks': the file name as it names it
            result["include"] = missing["include"]
        if missing.get("errored"):
            self.errored = reason
            self._errored_exit = missing.get("exit") if missing.get("exit") == 4 else None
            self._unreachable_hit = True  # no rescue, no always: the run stops here
            head = dict(head, errored=True)
        if counted:  # its included result was counted ok
            self.stats["ok"] -= 1
        self._failed_at_end = True
        self._container_event(head, result, task.get("include"))

    def _container_event(self, head, result, include, ignored=False):
        """The ``included``/``skipped``/``failed`` result an include reports, counted as Ansible
        (``ignored``: a failure its ignore_errors ignores)."""
        status = _status(result)
        event = dict(head, event="task_result", status=status, ignored=ignored)
        if include is not None:
            event["include"] = include
        warnings = event.get("warnings")
        event.update(self._event_fields(result, {}))
        if warnings:  # the name's
            event["warnings"] = warnings + [w for w in event.get("warnings") or () if w not in warnings]
        self.emitter.emit(event)
        if status == "skipped":
            self.stats["skipped"] += 1
        elif status == "failed" and not ignored:
            self.stats["failed"] += 1
            raise _HostFailed()
        else:
            self.stats["ok"] += 1
            self.stats["ignored"] += ignored

    def _run_sections(self, task, is_handler):
        rescue = task.get("rescue") or []
        always = task.get("always") or []
        failed = False
        try:
            if rescue:
                self._rescuing += 1
            try:
                for child in task.get("block") or []:
                    self._run_child(child, is_handler)
            finally:
                if rescue:
                    self._rescuing -= 1
        except _HostFailed:
            if self._unreachable_hit:  # ansible-core rescues no unreachable host: it leaves the play
                raise
            failed = True
        if failed and self._twice:  # failed again at once: no rescue, or no always without one
            self._twice = False
            if not rescue:
                raise
            rescue = []
        if failed and rescue:
            failed_task, failed_result = self._failure or ({}, {})
            name = failed_task.get("name") or ""
            if is_template(name):  # another host's run_once failure, carried as written
                name = self._name(failed_task, "", False)[0]
            role = ((self._play or {}).get("roles") or {}).get(failed_task.get("role") or "")
            if role and name.startswith(role.get("name", "") + " : "):
                name = name[len(role["name"]) + 3:]  # the task's own name, as Ansible's
            self.runtime_vars["ansible_failed_task"] = {
                "name": unsafe(name), "action": failed_task.get("module"),
                "id": failed_task.get("id")}
            self.runtime_vars["ansible_failed_result"] = failed_result
            try:
                for child in rescue:
                    self._run_child(child, is_handler)
                failed = False
            except _HostFailed:
                if self._unreachable_hit:
                    raise
                failed = True
        self._errors_cleared = False
        for child in always:
            self._run_child(child, is_handler)  # a failure here propagates
        if failed and not self._errors_cleared:  # meta: clear_host_errors lets the host go on
            if self.phase is not None and any(c.get("last_phase", c.get("phase", -1)) > self.phase for c in always):
                return  # a block cut into phases: its always runs in a later phase, which fails then
            raise _HostFailed()

    def _run_child(self, task, is_handler=False):
        """A top-level task, or a task of a block, in a play cut into phases inside a block
        (docs/phases.md "Blocks cut into phases"): each carries the ``phase`` it runs in (a
        block cut inside, ``last_phase`` too). A task of an earlier phase is not run again: if
        it failed (here, or on another host as a run_once or any_errors_fatal task), it fails
        again, silently, so that its block goes to its rescue and always as it did; a task of a
        later phase waits for it."""
        if self.phase is None or "phase" not in task:
            self._run_task(task, is_handler)
            return
        first = task["phase"]
        last = task.get("last_phase", first)
        key = task.get("id")
        if last < self.phase:
            failure = self._phase_failures.get(key) or (self.inject.get("failed") or {}).get(key)
            if failure is not None:
                self._phase_failures[key] = failure
                self._failure = (failure[0], unsafe(failure[1]))
                # another host's run_once task failed: Ansible marks this host failed twice
                # (the run_once failure, then any_errors_fatal's), which fails its block's
                # rescue too (or, without one, its always)
                self._twice = len(failure) > 2 and bool(failure[2])
                raise _HostFailed()
            return
        if first > self.phase:
            return
        self._reached = self._reached or first == last
        try:
            self._run_task(task, is_handler)
        except _HostFailed:
            if first == last and not self._unreachable_hit:
                failed_task, result = self._failure or ({}, {})
                self._phase_failures[key] = [
                    {k: failed_task.get(k) for k in ("id", "name", "module", "role") if k in failed_task}, result]
            raise

    # ---------------------------------------------------------------- one task

    def _run_task(self, task, is_handler=False):
        self.templar.origins = task.get("origins") or {}
        hosts = task.get("hosts")
        if hosts is not None and self.host not in hosts:
            return
        if task.get("role") and task.get("role") in self._roles_ended:
            return  # meta: end_role ended this role call on this host
        if "block" in task:
            self._run_container(task, is_handler)
            return
        if not is_handler and not tags_selected(task.get("tags"), self.only_tags, self.skip_tags):
            return
        shown, warning = self._name(task, task.get("module", ""), is_handler)
        head = {"id": task.get("id"), "task": shown, "module": task.get("module")}
        if warning:
            head["warnings"] = [warning]
        if task.get("bridge"):
            head["bridge"] = task["bridge"]  # run through the module bridge (modules/bridge.py)
        start_event = dict(head, event="handler_start" if is_handler else "task_start")
        self.emitter.emit(start_event)
        started = time.monotonic()
        task, keyword_error = self._resolve_keywords(task)
        if keyword_error:  # each item its `when` does not skip fails with it (_execute_item)
            task = dict(task, _keyword_error=keyword_error)
        self.templar.deprecations, self.templar.warnings = [], []
        result = self._execute(task)
        # what the task's templates deprecated or warned of (ansible-core's own deprecations,
        # a controller lookup's), before the module's own, as ansible-core's TaskExecutor
        # captures them while the task runs
        for key in ("deprecations", "warnings"):
            captured = getattr(self.templar, key)
            if captured:
                own = [x for x in result.get(key) or () if x not in captured]
                result = dict(result, **{key: list(captured) + own})
        missing = _as_list(task.get("notify_missing"))
        aborted = bool(missing) and bool(result.get("changed")) and not result.get("failed")
        if aborted:  # ansible-core stops the run when this notification fires, whatever rescues it
            self.errored = (f"The requested handler '{missing[0]}' was not found in either "
                            "the main handlers list nor in the listening handlers list")
            result = dict(result, failed=True, msg=self.errored)
        for one in [result] + [r for r in result.get("results") or () if isinstance(r, dict)]:
            fetched = one.pop("_rustle_fetch", None)
            if fetched:  # a fetch's bytes go to the controller only: not registered, not journaled
                self.emitter.emit(dict(fetched, event="fetched", host=self.host, id=task.get("id")), journal=False)
        ignored = bool(result.get("failed")) and bool(task.get("ignore_errors")) and not aborted
        if result.get("unreachable"):
            ignored = bool(task.get("ignore_unreachable"))
        register = task.get("register")
        if register:
            # as ansible-core's strategy registers it: without a module's ``invocation`` (its
            # arguments as given: a bridged uri's password inside its url among them)
            self.runtime_vars[register] = unsafe_result({k: v for k, v in result.items() if k != "invocation"})
            if result.get("_include_vars") and isinstance(result.get("ansible_facts"), dict):
                # the controller's files: their values stay trusted when registered, as in Ansible
                self.runtime_vars[register]["ansible_facts"] = result["ansible_facts"]
            if task.get("module") == "add_host" and not task.get("run_once"):
                self._own.add(register)  # Ansible keeps it on the host that ran it only
            else:
                self._own.discard(register)
            if str(task.get("module") or "").rsplit(".", 1)[-1] in _FIRST_HOST_ONLY:
                self._own_names.add(register)
        status = _status(result)
        event = dict(head, event="handler_result" if is_handler else "task_result")
        event.update({"status": status, "ignored": ignored})
        if aborted:
            event["errored"] = True
        event.update(self._event_fields(result, task))
        if warning:  # the name's, shown before the task's own as ansible-playbook shows it
            event["warnings"] = [warning] + [w for w in event.get("warnings") or () if w != warning]
        event["duration"] = round(time.monotonic() - started, 6)
        rescued = status == "failed" and not ignored and self._rescuing > 0 and not aborted
        if rescued:
            event["rescued"] = True
        if task.get("no_log"):
            event = censor(event)
        self.emitter.emit(event)
        if status != "skipped":
            self._ran += 1
            if task.get("role"):  # this role call has run (a role_once "key:KEY" block skips)
                self._roles_done.add("key:" + task["role"])
        if task.get("module") == "meta" and ("_meta" in result or status == "skipped"):
            pass  # Ansible counts no meta task in the recap, run or skipped
        elif status == "skipped":
            self.stats["skipped"] += 1
        elif status == "unreachable" and not ignored:  # Ansible's "dark": the host stops here
            self.stats["unreachable"] = self.stats.get("unreachable", 0) + 1
        elif rescued:
            self.stats["rescued"] += 1
        elif status == "failed" and not ignored:
            self.stats["failed"] += 1
        else:
            self.stats["ok"] += 1
            if result.get("changed"):
                self.stats["changed"] += 1
            if ignored:
                self.stats["ignored"] += 1
        if status in ("failed", "unreachable") and not ignored:
            # ansible_failed_task's name: as shown, marked so that it is never rendered again
            self._failure = (dict(task, name=unsafe(shown)), result)
            self._unreachable_hit = status == "unreachable" or aborted
            raise _HostFailed()
        if result.get("changed") and not result.get("failed"):
            self._notify({str(n) for n in _as_list(task.get("notify"))})
        action = result.get("_meta")
        if action == "flush_handlers":  # a play whose handlers run in phases: this phase's
            self._flush_handlers(self.phase if self._staged else None)
        elif action in ("end_play", "end_host", "end_batch"):
            raise _EndPlay()
        elif action == "clear_facts":
            self._facts = None
            self._collected = set()
        elif action == "clear_host_errors":
            self._errors_cleared = True
        elif action == "end_role" and task.get("role"):
            self._roles_ended.add(task["role"])

    def _resolve_keywords(self, task):
        """Task keywords given as expressions (``ignore_errors: "{{ x }}"``) -> their values.

        Returns the task with them resolved, and an error message when one cannot be
        evaluated (the task then fails; ``no_log`` then stays on, to be safe).
        """
        pending = [k for k in _BOOL_KEYWORDS + _NUMBER_KEYWORDS + _TEXT_KEYWORDS
                   if isinstance(task.get(k), str) and (k not in _TEXT_KEYWORDS or is_template(task[k]))
                   and not (k in _ITEM_KEYWORDS and "loop" in task)]
        if not pending:
            return task, None
        task = dict(task)
        scope = self._task_scope(task)
        for key in pending:
            raw = task[key]
            try:
                if key in _BOOL_KEYWORDS and raw.strip().lower() in _BOOL_WORDS:
                    task[key] = to_bool(raw.strip().lower())
                elif key in _BOOL_KEYWORDS:
                    task[key] = self.templar.truth(raw, scope)
                elif key in _NUMBER_KEYWORDS:
                    value = self.templar.template(raw, scope) if is_template(raw) else raw
                    task[key] = float(value) if key != "retries" else int(value)
                else:
                    task[key] = str(self.templar.template(raw, scope))
            except (TemplateError, TypeError, ValueError) as exc:
                if key == "no_log":
                    task[key] = True
                return task, f"the task keyword '{key}' could not be evaluated: {exc}"
        return task, None

    def _event_fields(self, result, task):
        out = {"rc": result.get("rc"), "stdout": result.get("stdout", ""),
               "stderr": result.get("stderr", ""), "msg": result.get("msg", "")}
        for key, value in result.items():
            # a module's own "status" (uri's HTTP status) is not the event's: the event says
            # ok/changed/failed/skipped there, which the controller reads
            if key not in out and key not in _HIDDEN and key not in ("results", "status"):
                out[key] = value
        if "diff" in out and not self._task_diff(task):
            del out["diff"]
        if "results" in result:
            out["results"] = []
            for item in result["results"]:
                entry = {"status": _status(item)}
                entry.update(self._event_fields(item, task))
                out["results"].append(entry)
        return out

    def _task_check(self, task):
        value = task.get("check_mode")
        return self.check if value is None else bool(value)

    def _task_diff(self, task):
        value = task.get("diff")
        return self.diff if value is None else bool(value)

    def _name(self, task, default, is_handler):
        """The name a result reports and the warning its template errors give (None without
        any), rendered as ansible-core renders a task's name before it runs it (before its own
        loop: the item of an include's loop, play and host variables): what cannot be rendered
        shows as ``<< error N - why >>``, as ansible-core 2.19 shows it."""
        name = task.get("name") or default
        warning = None
        if task.get("banner") is not None and not is_handler:  # the first host's (compiler/units.py)
            return str(task["banner"]), None
        if is_template(name):
            name, errors = render_marked(self.templar, name, self._task_scope(task))
            if errors:
                warning = "Encountered {} template error{}. {}".format(
                    len(errors), "" if len(errors) == 1 else "s",
                    " ".join(f"error {n} - {e}" for n, e in enumerate(errors, 1)))
        return _shown(task, name, is_handler), warning

    def _task_scope(self, task):
        play = self._play or {}
        role = (play.get("roles") or {}).get(task["role"]) if task.get("role") else None
        exposed = self._exposed_roles()
        layers = [play["defaults"]] if play.get("defaults") else []
        layers.extend(r["defaults"] for r in exposed if r.get("defaults"))
        if role and role.get("defaults"):
            layers.append(role["defaults"])
        layers.append(self.host_vars)
        if self.module_facts:
            layers.append(self.module_facts)
        if play.get("vars"):
            layers.append(play["vars"])
        layers.extend(r["vars"] for r in exposed if r.get("vars"))
        if role and role.get("vars"):
            layers.append(role["vars"])
        if task.get("vars"):
            layers.append(dict(task["vars"]))  # below registered/set_fact results, as in Ansible
        if self.included_vars:
            layers.append(self.included_vars)
        layers.append(self.runtime_vars)
        params = _params_layer(role, task)
        if params:
            layers.append(params)
        layers.extend(p for p in self._params if p)
        if self.extra_vars:
            layers.append(self.extra_vars)
        special = {"hostvars": self._hostvars}
        if isinstance(task.get("delegated_to"), str):
            name = task["delegated_to"]
            special["ansible_delegated_vars"] = lambda: {name: self._delegated_scope(name, layers)}
        return VarScope(layers, self.templar, facts=self.facts, special=special)

    def _delegated_scope(self, name, layers):
        """The variables of host ``name`` a task delegated to it sees as ``ansible_delegated_vars[name]``,
        as ansible-core computes them: the task's layers with the delegate's inventory variables
        (and the facts and values the controller sent of it) in place of this host's, without
        this host's registered results, set_fact, include_vars and module facts, and
        ``inventory_hostname`` this host's. The implicit localhost has ansible-core's
        ``ansible_connection: local`` and the controller's Python."""
        own = {k: self.host_vars[k] for k in _SHARED_MAGIC if k in self.host_vars}
        known = self._hostvars().get(name)
        if known is None and name in ("localhost", "127.0.0.1", "::1"):
            known = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        own.update(known.flat() if isinstance(known, VarScope) else known or {})
        groups = own.get("groups") or {}
        own.setdefault("group_names", sorted(g for g, members in groups.items() if name in members and g != "all"))
        own.setdefault("inventory_hostname_short", name.split(".")[0])
        own.setdefault("ansible_facts", {})
        for key, value in (("ansible_host", name), ("ansible_port", None), ("ansible_user", None),
                           ("ansible_connection", "ssh")):  # the play context's, as ansible-core adds them
            own.setdefault(key, value)
        mine = (self.host_vars, self.module_facts, self.included_vars, self.runtime_vars)
        layers = [own if layer is self.host_vars else layer for layer in layers
                  if layer is self.host_vars or not any(layer is m for m in mine)]
        return _DelegateScope([*layers, {"inventory_hostname": self.host}], self.templar,
                              special={"hostvars": self._hostvars})

    def _execute(self, task):
        """The task's (registered) result, looping and retrying as asked."""
        scope = self._task_scope(task)
        # run_once is the controller's (docs/phases.md): a play of several hosts is cut and its
        # run_once phase runs on the host it chose; a play run whole has one host (after --limit
        # too, which the artifact does not know), and that host runs the task
        if self.unreachable is not None and str(task.get("module") or "").rsplit(".", 1)[-1] not in _NO_CONNECTION:
            try:
                skipped = self._skip_reason(task, scope)
            except TemplateError as exc:
                return {"failed": True, "changed": False, "msg": str(exc)}
            return skipped or {"unreachable": True, "changed": False, "msg": self.unreachable}
        if "loop" not in task:
            return self._execute_item(task, scope, None)
        loop_error = None
        items = []
        try:
            items = self._loop_items(task, scope)
        except TemplateError as exc:
            loop_error = exc
        if loop_error is not None:
            # like Ansible: a false `when` skips the task before the loop error matters
            try:
                skipped = self._skip_reason(task, scope)
            except TemplateError:
                skipped = None
            if skipped is not None:
                return skipped
            return {"failed": True, "changed": False, "msg": str(loop_error)}
        try:
            control = self._loop_control(task, scope)
        except TemplateError as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}
        loop_var = control.get("loop_var", "item")
        index_var = control.get("index_var")
        pause = float(control.get("pause", 0) or 0)
        results = []
        for index, item in enumerate(items):
            if index and pause:
                time.sleep(pause)
            lv = _loop_vars(control, items, index)
            item_scope = scope.child(lv)
            res = self._execute_item(task, item_scope, item)
            res[loop_var] = item
            res["ansible_loop_var"] = loop_var
            if index_var:
                res[index_var] = index
                res["ansible_index_var"] = index_var
            if "label" in control:
                # templated over the item's own result under the task's register, as Ansible does
                register = task.get("register")
                label_scope = item_scope.child({register: unsafe(res)}) if register else item_scope
                try:
                    res["_ansible_item_label"] = self.templar.template(control["label"], label_scope)
                except TemplateError as exc:
                    res["_ansible_item_label"] = control["label"]
                    res.update(failed=True, msg=f"Failed to template loop_control.label: {exc}")
            results.append(res)
        out = {"changed": any(r.get("changed") for r in results), "results": results,
               "skipped": bool(results) and all(r.get("skipped") for r in results)}
        if any(r.get("failed") for r in results):
            out["failed"] = True
            out["msg"] = "One or more items failed"
        elif out["skipped"]:
            out["msg"] = "All items skipped"
        else:
            out["msg"] = "All items completed"
        if not results:
            out["skipped"] = True
            out["skipped_reason"] = "No items in the list"
        return out

    def _loop_control(self, task, scope):
        """``loop_control`` with ``loop_var``/``index_var`` templated (``"{{ name }}"``)."""
        control = dict(task.get("loop_control") or {})
        for key in ("loop_var", "index_var"):
            if is_template(control.get(key)):
                control[key] = str(self.templar.template(control[key], scope))
        return control

    def _loop_items(self, task, scope):
        loop = task["loop"]
        flatten = task.get("loop_with")
        if flatten not in (None, "items", "flattened"):  # with_<lookup>: the lookup's terms
            from .lookups import LookupError_, run

            terms = self.templar.template(loop, scope)
            try:
                return unsafe(run(flatten, terms if isinstance(terms, list) else [terms], scope,
                                  self.templar, wantlist=True))  # host data, as lookup()'s
            except LookupError_ as exc:
                raise TemplateError(str(exc)) from exc
        if isinstance(loop, str):
            try:
                value = self.templar.template(loop, scope) if is_template(loop) else self.templar.evaluate(loop, scope)
            except TemplateError as exc:
                if WITH_TERMS not in loop or str(exc).startswith(("Error rendering template", "The lookup plugin")):
                    raise
                # rendering a with_<lookup>'s terms (compiled to a loop over the lookup) failed:
                # ansible-core 2.19's words
                raise TemplateError(f"Error rendering template: {exc}") from exc
        else:
            value = rendered_untrusted(loop, self.templar.template(loop, scope))
        if flatten in ("items", "flattened"):  # with_items: one level; with_flattened: all
            if not isinstance(value, (list, tuple)):
                value = [value]
            value = _flatten(value, 1 if flatten == "items" else None)
        if isinstance(value, (type({}.keys()), type({}.values()), type({}.items()))):
            value = list(value)  # ansible-core finalizes a template's dict view as a list (d.keys())
        if isinstance(value, dict) or not isinstance(value, (list, tuple)):
            raise TemplateError(f"Invalid data passed to 'loop', it requires a list, got this instead: {value}. "
                                "Hint: If you passed a list/dict of just one element, try adding "
                                "wantlist=True to your lookup invocation or use q/query instead of lookup.")
        return value if isinstance(value, list) else list(value)  # an UnsafeList stays marked

    def _skip_reason(self, task, scope):
        """None when the task should run, else its skipped result."""
        self.templar.origins = task.get("origins") or {}
        for cond in _as_list(task.get("when")):
            if not self.templar.condition(cond, scope):
                return {"changed": False, "skipped": True, "skip_reason": "Conditional result was False",
                        "false_condition": cond}
        for cond in _as_list(task.get("skip_when")):
            if self.templar.condition(cond, scope):
                return {"changed": False, "skipped": True, "skip_reason": "Skip condition was True",
                        "true_condition": cond}
        return None

    def _execute_item(self, task, scope, item):
        try:
            skipped = self._skip_reason(task, scope)
        except TemplateError as exc:
            return _with_exception({"failed": True, "changed": False, "msg": f"Task failed: {exc}"})
        if skipped is not None:
            return skipped
        if task.get("_keyword_error"):
            # ansible-core sets up the play context first and raises its error only now, for
            # a task (an item) its conditional did not skip (TaskExecutor._execute)
            return {"failed": True, "changed": False, "msg": task["_keyword_error"]}
        until = task.get("until")
        pending = [k for k in _ITEM_KEYWORDS if isinstance(task.get(k), str)]
        if pending:  # over the loop item: left for here by _resolve_keywords
            task = dict(task)
            try:
                for key in pending:
                    raw = task[key]
                    value = self.templar.template(raw, scope) if is_template(raw) else raw
                    task[key] = float(value) if key != "retries" else int(value)
            except (TemplateError, TypeError, ValueError) as exc:
                return {"failed": True, "changed": False,
                        "msg": f"the task keyword '{key}' could not be evaluated: {exc}"}
        retries = task.get("retries")
        until = _as_list(until)  # `until: false` retries too, as in Ansible
        # the first run and the retries (TaskExecutor._execute): 3 when the task gives until but
        # no retries; retries without until retry until the task succeeds
        attempts_allowed = 1 + (max(0, int(retries)) if retries is not None else (3 if until else 0))
        delay = float(task.get("delay", 5) if task.get("delay") is not None else 5)
        register = task.get("register")
        attempt = 0
        while True:
            attempt += 1
            result = self._invoke(task, scope)
            if attempts_allowed > 1:  # before changed_when/failed_when, which may read it (as in Ansible)
                result["attempts"] = attempt
            result = self._post_conditions(task, scope, result)
            if attempts_allowed == 1:
                return _with_exception(result)
            check_scope = scope.child({register: unsafe(result)}) if register else scope
            try:
                done = (all(self.templar.condition(c, check_scope) for c in until) if until
                        else not result.get("failed"))
            except TemplateError as exc:  # ansible-core reports the error alone
                return _with_exception({"failed": True, "changed": False, "msg": f"Task failed: {exc}"})
            if done:
                return _with_exception(result)
            if attempt >= attempts_allowed:
                # failed, unless failed_when said otherwise (ansible-core's is_failed reads
                # failed_when_result first); ansible-core then reports one attempt less
                result["failed"] = bool(result.get("failed_when_result", True))
                result["attempts"] = attempts_allowed - 1  # and no msg of its own, as ansible-core
                return _with_exception(result)
            self.emitter.emit({"event": "task_retry", "id": task.get("id"), "task": task.get("name"),
                               "attempts": attempt, "retries_left": attempts_allowed - attempt})
            time.sleep(delay)

    def _post_conditions(self, task, scope, result):
        register = task.get("register")
        cw, fw = task.get("changed_when"), task.get("failed_when")
        if (cw is None and fw is None) or result.get("skipped"):
            return result
        if result.get("failed"):  # a module's failure carries its (traceback) summary, as in 2.19
            _with_exception(result)
        check_scope = scope.child({register: unsafe(result)}) if register else scope
        which = "changed_when"
        try:
            if cw is not None and "_meta" not in result:
                result["changed"] = all(self.templar.condition(c, check_scope) for c in _as_list(cw))
            if fw is not None:
                which = "failed_when"
                check_scope = scope.child({register: unsafe(result)}) if register else scope
                value = all(self.templar.condition(c, check_scope) for c in _as_list(fw))
                result["failed_when_result"] = value
                result["failed"] = value
                if not value and "exception" in result:  # the failure failed_when overruled
                    result["failed_when_suppressed_exception"] = result.pop("exception")
        except TemplateError as exc:
            # ansible-core keeps the module's msg and the error in <which>_result only
            result["failed"] = True
            result[which + "_result"] = str(exc)
        return result

    def _args_error(self, task, scope, exc):
        """ansible-core 2.19's words for a task argument that cannot be templated, naming the
        first argument that fails (templated again one by one, on this error path only)."""
        module = task.get("module", "")
        fqcn = module if "." in module else "ansible.builtin." + module
        for key, value in (task.get("args") or {}).items():
            try:
                self.templar.template(value, scope)
            except TemplateError as one:
                return (f"Task failed: Finalization of task args for '{fqcn}' failed: "
                        f"Error while resolving value for '{key}': {one}")
        return f"Task failed: Finalization of task args for '{fqcn}' failed: {exc}"

    def _call(self, module, ctx, args, timeout):
        """The module's result: in this process, or in a child as the task's become_user."""
        missing = _missing_interpreter(self.plan, ctx, module)
        if missing is not None:
            return missing
        if module in _NO_PYTHON:
            return self._dispatch(module, ctx, args, timeout)
        discovery = self._discovery(ctx)
        if discovery is not None and not self._launcher:
            ctx.python = discovery[1]  # a task's own auto* mode: its bridged module runs there
        result = self._call_python(module, ctx, args, timeout)
        if isinstance(result, dict) and discovery is not None and discovery[3]:
            self._report_discovery(result, *discovery[:3])
        return result

    def _discovery(self, ctx):
        """The interpreter ansible-core would discover for this task's Python module
        (``ansible_python_interpreter`` an ``auto*`` mode, the host's or the task's), as
        ``(mode, path, warnings, new)``; None when the task names its interpreter or runs none.
        ``new``: no ``discovered_interpreter_python`` fact yet (as after ``meta: clear_facts``),
        so the result reports it. The launcher's discovery is used when it made one; a task's
        own mode discovers here."""
        if self._delegate:  # the delegate's own configuration chose the launcher's mode
            if not _runs_python(self.plan, ctx, delegated=True):
                return None
            return self._launcher["mode"], self._launcher["path"], [], True
        if not _runs_python(self.plan, ctx):
            return None
        configured = _configured_interpreter(ctx)
        if configured in (None, ""):
            mode = self._launcher["mode"] if self._launcher else self.served_discovery
            if mode is None and ctx.vars.get("ansible_python_interpreter") == OMIT:
                mode = "auto"  # omitted: no interpreter at all, INTERPRETER_PYTHON's default discovers
        else:
            mode = configured if configured in _DISCOVERY_MODES else None
        if mode is None:
            return None
        known = self.facts(collectors=set()).get("discovered_interpreter_python")
        if known:
            return mode, known, [], False
        if self._launcher:
            return mode, self._launcher["path"], [], True
        return (mode, *_discover_interpreter(ctx.vars.get("ansible_interpreter_python_fallback"), self.host), True)

    def _report_discovery(self, result, mode, path, warnings):
        """What ansible-core adds to the result of a Python module when it discovers the host's
        interpreter: the fact, the warning (not for ``*_silent``) and, for ``auto_legacy*``, the
        deprecation."""
        if not self._delegate:
            facts = result.get("ansible_facts")
            result["ansible_facts"] = dict(facts if isinstance(facts, dict) else {}, discovered_interpreter_python=path)
            self.facts(collectors=set())["discovered_interpreter_python"] = path
            self.module_facts["discovered_interpreter_python"] = path
        if not mode.endswith("_silent"):
            result.setdefault("warnings", []).extend(warnings or [_discovery_warning(self.host, path)])
        if mode.startswith("auto_legacy"):
            result.setdefault("deprecations", []).append(
                {"msg": f"The {mode!r} option for 'INTERPRETER_PYTHON' now has the same effect as 'auto'.",
                 "version": "2.21", "collection_name": "ansible.builtin"})

    def _call_python(self, module, ctx, args, timeout):
        # what AnsiballZ's wrapper does before a Python module runs: the soft limit on open
        # files, and a remote debugger (ansible_python_module_rlimit_nofile,
        # _ansible_ansiballz_pydevd_config); here, around the module run by this process
        try:
            limit = _rlimit_nofile(ctx.vars)
        except (TemplateError, TypeError, ValueError) as exc:
            return {"failed": True, "changed": False, "msg": f"Task failed: {exc}"}
        config = ctx.vars.get("_ansible_ansiballz_pydevd_config")
        if config:
            failed = _start_debugger(config)
            if failed is not None:
                return failed
        if not limit:
            return self._dispatch(module, ctx, args, timeout)
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = min(hard, limit) if hard != resource.RLIM_INFINITY else limit
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        except ValueError:  # as the wrapper: some platforms lie about their hard limit
            return self._dispatch(module, ctx, args, timeout)
        try:
            return self._dispatch(module, ctx, args, timeout)  # a bridged module: not through the fork server
        finally:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    @staticmethod
    def rlimit_nofile_set(ctx):
        """Whether the task asks for its own limit on open files (the bridge's fork server,
        started before, would not have it)."""
        try:
            return bool(_rlimit_nofile(ctx.vars))
        except (TemplateError, TypeError, ValueError):
            return False

    def _dispatch(self, module, ctx, args, timeout):
        own = None
        if ctx.task.get("bridge"):
            from .modules import bridge

            spec = ((self.plan.get("bridge") or {}).get("modules") or {}).get(ctx.task["bridge"]) or {}
            if not (ctx.become and spec.get("style") == "rustle"):
                # the module bridge runs it in a child and applies become itself
                return call_module(module, ctx, args, timeout, bridge.module_function(self.plan.get("bridge") or {},
                                                                                     ctx.task["bridge"]))
            # a rustle-deploy module runs in process: as another user, in that user's become child
            own = {"fqcn": spec["fqcn"], "source": bridge.own_source(ctx, spec)}
        if ctx.become:
            from . import become

            key = become.identity(ctx, module)
            if key is not None:
                if self._children is None:
                    self._children = become.Children(self)
                return self._children.run(key, ctx, module, args, timeout, own)
        if own is not None:
            from .modules import bridge

            return call_module(module, ctx, args, timeout, bridge.module_function(self.plan.get("bridge") or {},
                                                                                 ctx.task["bridge"]))
        return call_module(module, ctx, args, timeout)

    def _async_keywords(self, task, scope):
        """(async seconds, poll seconds) of ``task``; (0, 0) when it is not async."""
        if task.get("async") is None:
            return 0, 0
        values = []
        for key, default in (("async", 0), ("poll", 10)):
            value = task.get(key, default)
            if is_template(value):
                value = self.templar.template(value, scope)
            try:
                values.append(int(value))
            except (TypeError, ValueError):
                raise ValueError(f"the task's {key} must be a number of seconds, not {value!r}") from None
        return values[0], max(values[1], 0)

    def _invoke(self, task, scope):
        """Template the args, run the module once, normalise its result."""
        module = task.get("module", "")
        try:
            args = task.get("args") or {}
            if task.get("action_ds") is not None:
                args = {}  # ansible-core parses and renders them (modules/bridge.py run_action)
            elif task.get("args_template") is not None:  # the args keyword as a template
                given = self.templar.template(task["args_template"], scope)
                if not isinstance(given, dict):
                    return {"failed": True, "changed": False,
                            "msg": "The 'args' keyword must be a dictionary, not "
                                   f"{type(given).__name__}: {task['args_template']}"}
                args = dict(given, **args)
            if task.get("action_ds") is None:
                args = _splat_raw(module, args, self.templar, scope)
                raw_that = module.rsplit(".", 1)[-1] == "assert" and isinstance(args, dict) and "that" in args
                that = args.get("that") if raw_that else None
                # `that` is left for the conditional evaluation ('{{ x }}' in one of its string
                # constants is rendered there, an undefined x failing as the conditional)
                args = _strip_omit(self.templar.template(
                    {k: v for k, v in args.items() if k != "that"} if raw_that else args, scope))
                if raw_that:  # conditionals, as the assert action reads them (finalize_task_arg):
                    args["that"] = _assert_that(self.templar, that, scope)  # not templated first
            env = task.get("environment") or {}
            if has_template(env):  # a variable rendered to omit is not set, as in ansible-core
                env = _strip_omit(self.templar.template(env, scope))
            env = merge_environment(env)
        except TemplateSecurityError as exc:
            return {"failed": True, "changed": False,
                    "msg": f"The task includes an option with an unsafe template. The error was: {exc}"}
        except TemplateError as exc:
            return {"failed": True, "changed": False, "msg": self._args_error(task, scope, exc)}
        if task.get("become") and is_template(task.get("become_user", "")):
            try:
                task = dict(task, become_user=self.templar.template(task["become_user"], scope))
            except TemplateError as exc:
                return {"failed": True, "changed": False, "msg": str(exc)}
        timeout = task.get("timeout")
        if timeout is not None and not 0 <= timeout <= _MAX_TIMEOUT:
            return {"failed": True, "changed": False, "msg": f"Task failed: Timeout {int(timeout) if timeout == int(timeout) else timeout} is invalid, it must be between 0 "
                    f"and {_MAX_TIMEOUT}."}
        try:
            limit, poll = self._async_keywords(task, scope)
        except (TemplateError, ValueError) as exc:
            return {"failed": True, "changed": False, "msg": str(exc)}
        deadline = time.monotonic() + float(timeout) if timeout else None
        ctx = ModuleContext(self, task, scope, self._task_check(task), self._task_diff(task),
                            environment=env if isinstance(env, dict) else {}, deadline=deadline)

        def attempt(seconds):
            try:
                return self._call(module, ctx, args, seconds)
            except ModuleFailure as exc:
                failed = {"changed": False}
                failed.update(exc.result)
                failed["failed"] = True
                failed["msg"] = exc.msg
                return failed

        if limit:
            from . import jobs

            if poll == 0 and ctx.become:
                return {"failed": True, "changed": False,
                        "msg": "async with poll: 0 cannot become another user here; use poll > 0"}
            result = jobs.run(ctx, module, limit, poll, attempt)
        else:
            result = attempt(timeout)
        result.setdefault("changed", False)
        if not result.pop("_action_skip", False):  # an action plugin's skip has no 'failed' in Ansible
            result.setdefault("failed", False)
        lines = not result.pop("_no_lines", False)  # pause's result has no *_lines in Ansible
        for stream in ("stdout", "stderr"):
            if lines and isinstance(result.get(stream), str) and stream + "_lines" not in result:
                result[stream + "_lines"] = result[stream].splitlines()
        if result.pop("_inventory", False) and not result.get("failed"):
            result["changed"] = self._change_inventory(result)
        facts = result.get("ansible_facts")
        if isinstance(facts, dict) and not result.get("failed") and task.get("delegate_facts") is True:
            # facts of the host the task was delegated to: the controller gives them to it
            key = "vars" if result.get("_set_fact") else "facts"
            self._delegated.setdefault(key, {}).update(unsafe(facts))
        elif isinstance(facts, dict) and not result.get("failed"):
            if result.get("_set_fact"):
                self.runtime_vars.update(unsafe(facts))
                for key in facts:  # where set_fact's argument was written (playbook/origins.py)
                    where = (task.get("origins") or {}).get("=" + str(key))
                    if where:
                        self.templar.value_origins[key] = (where, self.runtime_vars[key])
                    else:
                        self.templar.value_origins.pop(key, None)
            elif result.get("_include_vars"):  # the controller's files: trusted, as in Ansible
                self.included_vars.update(facts)
            else:
                from .facts import FACT_COLLECTOR

                # the collectors that give these names run first: gathered later, they would
                # replace the module's values
                names = {k[8:] if k.startswith("ansible_") else k for k in facts}
                current = self.facts(collectors={FACT_COLLECTOR[n] for n in names if n in FACT_COLLECTOR})
                current.update(unsafe(facts))
                self.module_facts.update((k, v) for k, v in unsafe(facts).items() if not k.startswith("ansible_"))
        return result

