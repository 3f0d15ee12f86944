"""Cut a play into phases at its cross-host tasks (docs/phases.md); no I/O but the reading of
the template files a play renders (whether they read ``ansible_play_hosts``).

A host runs a play on its own, in one round trip. A task that needs another place than the
host cannot run inside that round trip: ``run_once`` runs on one host and hands its result
to all; ``delegate_to: localhost`` (and ``local_action``, ``connection: local``) runs on the
controller with the host's variables, ``delegate_to`` another inventory host over that host's
connection, a task's own ``remote_user``/``port`` over another connection to the host
(``connection_vars``); ``throttle: N`` lets only N hosts run the task at once; an action
plugin that ansible-core runs on the controller (``action_plugins/``, a collection's
``synchronize``) runs there as a task delegated to the controller does, for each host,
connecting to the host itself (the task pointers in ``actions``, bridge/policy.py
``controller_tasks``). Such a task is a **cut point**: the play is cut into phases, each phase one
round trip per host (or one local run per host on the controller), and the controller
carries the hosts' state between them.

A block (or include) whose every task has the same kind is a cut point as a whole. A block
with rescue/always whose tasks mix kinds, or that holds a task that may fail with
``any_errors_fatal`` or one reading of other hosts what an earlier task of the block sets, in a
play of several hosts, is cut inside: its tasks get phases in
Ansible's lock-step order (its block, then its rescue, then its always), the block its first
and ``last`` phase, and the runtime carries each host's failures in it from phase to phase
(docs/phases.md "Blocks cut into phases"); so is an include of a file known here, with or
without a condition. A loop over an include, an include whose file a host chooses, or a repeated
role that mixes kinds cannot be cut (which tasks it runs, and how many times, is known when it
runs) and is refused, as are cross-host keywords on handlers
other than run_once and delegate_to. A play without cut points is one phase: one round trip
per host, as always.

Consecutive tasks of the same kind share one phase.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .model import Plan, Play, Task

HOSTS = "hosts"  # every host of the batch runs the phase's tasks
ONCE = "once"  # the batch's first live host runs them; the others receive what they set
LOCAL = "local"  # the controller runs them for each host of the batch, with its variables
ONCE_LOCAL = "once-local"  # the controller runs them once, for the batch's first live host
# a run_once handler: "handler#I" (I its index among the play's handlers, in execution order):
# the first host of the batch that notified it runs it; the others receive what it set
HANDLER = "handler"
# a run_once handler delegated to the controller ("local-handler#I") or to another inventory host
# ("local-handler#I>HOST"): the controller runs it once, for the first host that notified it
HANDLER_LOCAL = "local-handler"
# ``throttle: N`` adds "@N" to HOSTS or LOCAL: at most N hosts of the batch run the phase at once
# ``delegate_to`` another inventory host adds ">HOST" to LOCAL or ONCE_LOCAL: the controller runs
# the phase for each host (or once) over HOST's connection instead of here
# what delegate_to may name to run a task on the controller
CONTROLLER = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Phases:
    """A play's phases: ``kinds[k]`` is one of HOSTS, ONCE, LOCAL, ONCE_LOCAL; ``of[task_id]``
    the phase of each top-level task. One phase of kind HOSTS for a play without cut points."""

    kinds: tuple[str, ...]
    of: dict[str, int]
    # phase -> the names its tasks read of other hosts through hostvars that tasks set while
    # the play runs (registered results, set_fact, facts): the controller sends them in
    reads: dict[int, tuple[str, ...]] = field(default_factory=dict)
    # a block cut inside (``of`` then holds its tasks' phases, and its own first one): its last
    last: dict[str, int] = field(default_factory=dict)
    # handler -> every phase it runs in when notified (a play with a run_once or delegated
    # handler): one per flush (``meta: flush_handlers``, the implicit ones after pre_tasks and
    # before post_tasks) and one at the end of the play (``of``'s)
    handlers: dict[str, tuple[int, ...]] = field(default_factory=dict)
    # force_handlers (a play with a run_once or delegated handler): each phase holding tasks ->
    # the handler phases of its section's end from it on (the implicit flush after pre_tasks and
    # after roles + tasks, or the play's end): where a host that fails a task of the phase runs
    # the handlers it notified, as ansible-core's force_handlers runs them, skipping the explicit
    # flushes of the section after the failure
    forced: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def cut(self) -> bool:
        """Whether the controller schedules the play's phases (a throttled phase even alone, a
        play whose first phase reads other hosts' values: the controller sends them in)."""
        return len(self.kinds) > 1 or any(k != HOSTS for k in self.kinds) or bool(self.reads.get(0))


@dataclass(frozen=True)
class Refusal:
    """Why a task cannot be a cut point: the task (pointer) and the keyword at fault."""

    task: Task
    key: str
    message: str
    hint: str


def _leaves(task: Task) -> Iterator[Task]:
    return (t for t in task.walk() if not t.is_block)


def flushes(task: Task) -> bool:
    """Whether the task is a ``meta: flush_handlers`` (one the playbook compiler adds after
    pre_tasks and before post_tasks included)."""
    return task.short_module == "meta" and str(
        task.args.get("_raw_params", task.args.get("free_form", ""))).strip() == "flush_handlers"


def refreshes(task: Task) -> bool:
    """Whether the task is a ``meta: refresh_inventory`` (the inventory is read again)."""
    return task.short_module == "meta" and str(
        task.args.get("_raw_params", task.args.get("free_form", ""))).strip() == "refresh_inventory"


def local(task: Task) -> bool:
    """Whether the task is delegated to the controller."""
    target = task.extras.get("delegate_to")
    return isinstance(target, str) and target.strip() in CONTROLLER


def delegate(task: Task) -> str | None:
    """The inventory host (not the controller) the task is delegated to, if any."""
    target = task.extras.get("delegate_to")
    if not isinstance(target, str) or target.strip() in CONTROLLER or "{" in target or task.extras.get("delegate_implicit"):
        return None
    return target.strip() or None


# ``delegate_to: "{{ inventory_hostname }}"``: the task's own host
DELEGATE_SELF = re.compile(r"^\{\{-?\s*inventory_hostname\s*-?\}\}$")


def per_call(task: Task) -> bool:
    """Whether the task is delegated to a host each call names (``delegate_to: "{{ item }}"``, a
    name over the host's facts or registered results): ansible-core on the controller renders it
    and runs the call over that host's connection (bridge/action.py), in a local phase. So is
    a host outside the inventory (``delegate_implicit``): ansible-core makes an implicit host of
    it (its name as ``ansible_host``, the task's connection variables), as ansible-playbook does."""
    return named_per_call(task.extras.get("delegate_to")) or (
        task.extras.get("delegate_implicit") is True and isinstance(task.extras.get("delegate_to"), str))


def named_per_call(target: Any) -> bool:
    """Whether a ``delegate_to`` value names its host for each call (a template, not the host itself)."""
    return isinstance(target, str) and "{" in target and not DELEGATE_SELF.match(target.strip())


def throttle_of(task: Task) -> int | None:
    """The task's ``throttle`` as a host count (0: no limit); None when it is an expression."""
    value = task.extras.get("throttle", 0)
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        return int(value.strip()) if value.strip().isdigit() else None
    return value if isinstance(value, int) and value >= 0 else None


def _parts(kind: str) -> tuple[str, str, int]:
    head, sep, tail = kind.rpartition("@")
    body, width = (head, int(tail)) if sep and tail.isdigit() else (kind, 0)
    base, _, target = body.partition(">")
    return base.partition("#")[0], target, width


def handler_of(kind: str) -> int | None:
    """The index (among the play's handlers) of the run_once handler a phase of ``kind`` runs."""
    base, sep, index = kind.partition(">")[0].partition("#")
    return int(index) if sep and base in (HANDLER, HANDLER_LOCAL) else None


def run_once_handler(kind: str) -> bool:
    """Whether a handler's own kind (``handler_kind``) runs it once for the batch."""
    return handler_of(kind.replace("#", "#0", 1)) is not None


def split(kind: str) -> tuple[str, int]:
    """(the base kind, its throttle: 0 for none) of a phase kind such as "hosts@2" or
    "local>db1@2" (the host a phase is delegated to is ``delegate_of``'s)."""
    base, _, width = _parts(kind)
    return base, width


def delegate_of(kind: str) -> str | None:
    """The inventory host a phase of ``kind`` runs on for each host (None: the host itself,
    or the controller); ``SELF`` followed by JSON: each host itself, connected with other
    variables (``connection_vars``)."""
    return _parts(kind)[1] or None


# a phase whose tasks connect to their own host with other connection variables (a task's,
# block's or role's remote_user/port): ``SELF`` + JSON {host: {variable: value}}
SELF = "(self)"


def connection_vars(task: Task) -> dict[str, dict[str, Any]] | None:
    """Host -> the connection variables the task's own remote_user/port give it, if any."""
    value = task.extras.get("connection_vars")
    return value if isinstance(value, dict) and value else None


# ansible-core's actions that run once for the batch, on the controller (BYPASS_HOST_LOOP)
ONCE_ON_CONTROLLER = ("pause",)


def _leaf_kind(task: Task, actions: frozenset[str] = frozenset()) -> str:
    if task.short_module in ONCE_ON_CONTROLLER:
        return ONCE_LOCAL
    # add_host runs once for the play (ansible-core's BYPASS_HOST_LOOP); its change reaches
    # the other hosts with their next phase
    once = task.extras.get("run_once") is True or task.short_module == "add_host"
    if local(task) or task.pointer in actions or per_call(task):
        base = ONCE_LOCAL if once else LOCAL
    elif delegate(task) is not None:
        base = f"{ONCE_LOCAL if once else LOCAL}>{delegate(task)}"
    elif connection_vars(task) is not None:
        base = f"{ONCE_LOCAL if once else LOCAL}>{SELF}{json.dumps(connection_vars(task), sort_keys=True)}"
    else:
        base = ONCE if once else HOSTS
    width = throttle_of(task) or 0
    return f"{base}@{width}" if width and not once else base


def _kinds(task: Task, actions: frozenset[str] = frozenset()) -> set[str]:
    return {_leaf_kind(t, actions) for t in _leaves(task)} or {HOSTS}


def mixes_kinds(task: Task, one: bool = False) -> bool:
    """Whether the tasks of block ``task`` do not all run the same way (on every host, once, on
    the controller); ``one``: in a play of one host, which runs its run_once tasks in place."""
    kinds = _kinds(task)
    return len(kinds) > 1 and not (one and kinds <= {HOSTS, ONCE})


def kind_of(task: Task, actions: frozenset[str] = frozenset()) -> str:
    """The kind of a top-level task (a block: its tasks' kind when they all have the same)."""
    kinds = _kinds(task, actions)
    return kinds.pop() if len(kinds) == 1 else HOSTS


# what makes a block one unit that runs in one phase: an include (its tasks are known when it
# runs), a loop over it, a role run once
_UNIT_KEYS = ("include", "include_choice", "loop", "loop_with", "role_once")


def _plain(task: Task) -> bool:
    """Whether ``task`` is a block that a phase boundary may cross: no loop, not a role run
    once, not an include unless its file is known here (not ``include_choice``): its tasks are
    then known. An include's condition is decided in its first phase, and the host enters it in
    its later phases as it decided then (its ``includes_ran``), as ansible-core decides it once."""
    # a loop over an include unrolled into one include per item (``include_items``) is cut inside each
    ignored = ("include", "loop", "loop_with") if "include_items" in task.extras else ("include",)
    return task.is_block and not any(key in task.extras for key in _UNIT_KEYS if key not in ignored)


def splits(task: Task, actions: frozenset[str] = frozenset(), fatal_play: bool = False, lockstep: bool = True) -> bool:
    """Whether a block is cut into phases inside (docs/phases.md "Blocks cut into phases"): its
    tasks do not all run the same way (a run_once or delegated task among tasks on every host),
    or one may fail with ``any_errors_fatal`` in a play of several hosts (the other hosts go to
    their rescue right after it, as Ansible's), or may notify a handler the play lacks (the
    run errors right after it), or reads of other hosts what an earlier task of it sets."""
    return _plain(task) and bool(task.block or task.rescue or task.always) and (
        len(_kinds(task, actions)) > 1
        or (lockstep and (fails_fatally(task, fatal_play) or may_error(task) or reads_own_sets(task))))


def reads_own_sets(task: Task) -> bool:
    """Whether a task of block ``task`` reads of other hosts (hostvars) a value an earlier task
    of the block sets (in Ansible's order: block, rescue, always): the other hosts' values are
    known only after that task ran on every host, so the block is cut between them."""
    set_before: set[str] = set()

    def walk(t: Task) -> bool:
        if not t.is_block:
            wanted = hostvars_reads(t)
            if wanted & set_before or (FACTS in set_before and any(is_fact(n) for n in wanted)):
                return True
            set_before.update(_sets(t))
            return False
        return any(walk(c) for c in (*(t.block or ()), *t.rescue, *t.always))

    return task.is_block and walk(task)


def _cross_host_key(leaf: Task, kind: str, actions: frozenset[str] = frozenset()) -> tuple[str, str]:
    """The key that makes ``leaf`` a cross-host task, and how a message names it."""
    if leaf.short_module in ONCE_ON_CONTROLLER:
        return "module", f"{leaf.short_module} (run once on the controller)"
    if leaf.pointer in actions and not local(leaf):
        return "module", f"{leaf.module} (an action plugin run on the controller)"
    if per_call(leaf):
        return "delegate_to", f"delegate_to {leaf.extras['delegate_to']!r} (a host named by each call)"
    key = "delegate_to" if split(kind)[0] in (LOCAL, ONCE_LOCAL) else ("run_once" if kind == ONCE else "throttle")
    return key, key


def one_host(play: Play) -> bool:
    """Whether the play's hosts (and its batches') are one host in the inventory."""
    return len({*play.hosts, *(h for b in play.batches for h in b.hosts)}) <= 1


def refusals(play: Play, tasks: list[Task], actions: frozenset[str] = frozenset()) -> Iterator[Refusal]:
    """The cross-host keywords of ``play`` that cannot be cut at (``tasks``: its top-level
    tasks in execution order; ``actions``: the tasks whose action plugin runs on the controller).

    A play of one host runs whole (rollout.py): ``run_once`` changes nothing there, so it is
    not refused inside a block or on a handler."""
    one = one_host(play)

    def cut(kind: str, width: int) -> bool:
        return (kind != HOSTS or bool(width)) and not (one and kind == ONCE)

    for task in tasks:
        for leaf in _leaves(task):
            if throttle_of(leaf) is None:
                yield Refusal(leaf, "throttle", f"throttle on task {leaf.name!r} is an expression "
                              f"({leaf.extras.get('throttle')!r})", "where the play is cut into phases "
                              "is decided before anything runs: give throttle a number")
        unit = _unit_mixed(task, actions)
        if unit is None:
            continue
        for leaf in _leaves(unit):
            kind, width = split(_leaf_kind(leaf, actions))
            if cut(kind, width):
                key, what = _cross_host_key(leaf, kind, actions)
                why = ("a loop over it whose items, or whose condition for each host and item, the "
                       "controller cannot know before the run: they read a host's facts or registered results"
                       if any(k in unit.extras for k in ("loop", "loop_with")) else
                       "a role run once" if "role_once" in unit.extras else "an include whose file is chosen when it runs")
                yield Refusal(leaf, key,
                              f"{what} on task {leaf.name!r} inside {unit.name!r} ({why}), whose tasks "
                              "do not all run the same way (on every host, once, on the controller): "
                              "the play cannot be cut there",
                              f"put {key} on all of its tasks, or move the task out of it (a block "
                              "with rescue/always, an include of a named file, and an include_tasks or "
                              "include_role looping over items written in the playbook, taken from play, "
                              "inventory or extra vars or from a with_<lookup> are cut inside)")
                break
    # a play of one host runs a run_once handler in its phase, a delegated one in a phase of its own
    # (a handler that nothing notifies never runs: it gets no phase, and is not refused for one)
    runs = {h.task_id for h in notifiable(play.handlers, tasks)}
    staged = any((own := handler_kind(h, actions)) and not (one and split(own)[0] == HANDLER)
                 for h in play.handlers if h.task_id in runs)
    for task in tasks:  # a flush is a cut point of a play with such handlers, unless in a block
        nested = [t for t in task.walk() if t is not task and flushes(t)]
        if staged and nested:
            yield Refusal(nested[0], "module", f"meta: flush_handlers inside {task.name!r} in a play with a "
                          "run_once or delegated handler is not supported: those handlers run in phases of "
                          "their own, and a flush is a phase boundary only among the play's own tasks (a "
                          "block or include is cut into phases at cross-host tasks only)",
                          "move meta: flush_handlers out of the block or include, to the play's tasks")
    for handler in play.handlers:
        own = handler_kind(handler, actions)  # a run_once or delegated handler: a phase of its own
        for leaf in _leaves(handler):
            kind, width = split(_leaf_kind(leaf, actions))
            if cut(kind, width) and not own:
                key, what = _cross_host_key(leaf, kind, actions)
                yield Refusal(leaf, key, f"{what} on handler {leaf.name!r} is not supported",
                              f"notify a handler without {what}, or make it a task of the play")
                break


def _unit_mixed(task: Task, actions: frozenset[str]) -> Task | None:
    """The first block of ``task`` (itself included) that mixes kinds of tasks and cannot be cut
    inside (an include, a loop): a plain block is cut inside, its children are looked at."""
    if not task.is_block or len(_kinds(task, actions)) == 1:
        return None
    if not _plain(task):
        return task
    for child in (*(task.block or ()), *task.rescue, *task.always):
        found = _unit_mixed(child, actions)
        if found is not None:
            return found
    return None


# ``hostvars[HOST].NAME``, ``hostvars[HOST]['NAME']``, ``hostvars.HOST.NAME``
_HOSTVARS_READ = re.compile(r"hostvars\s*(?:\[(?:[^\[\]]|\[[^\]]*\])*\]|\.\s*[A-Za-z_][\w-]*)"
                            r"\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
# inventory and connection variables: never set by a task (not facts, despite the prefix)
_INVENTORY_PREFIXES = ("ansible_host", "ansible_port", "ansible_user", "ansible_connection",
                       "ansible_python_interpreter", "ansible_ssh", "ansible_become", "ansible_password",
                       "ansible_private_key", "ansible_shell", "ansible_remote_tmp", "ansible_timeout",
                       "ansible_sudo", "ansible_su_")
FACTS = "ansible_facts"
# what group_by sets and the tasks after it read: every host's groups (not a variable name)
INVENTORY = "(inventory)"
# a controller file a task reads when it runs (``run_time_files``: created while the play runs,
# by a task on the controller): FILE + JSON [name, "file" or "vars", [path, ...]]; the
# controller reads it when the phase starts and sends it in (not a variable name either)
FILE = "(file)"
# what a task reads that lists the play's hosts still in it (ansible_play_hosts,
# ansible_play_batch, play_hosts) after a task that may fail: the controller sends in the hosts
# of the play that failed (inject "failed_hosts"), which those names leave out (not a variable name)
PLAY_HOSTS = "(play_hosts)"
# what the first phase after a ``meta: refresh_inventory`` reads: the inventory as its sources
# hold it then; the controller reads them again when the phase starts, and the plays after the
# play are chosen over it (not a variable name either)
REFRESH = "(refresh)"
_PLAY_HOSTS_READ = re.compile(r"\b(?:ansible_play_hosts|ansible_play_batch|play_hosts)\b")


def reads_play_hosts(task: Task, templates: frozenset[str] = frozenset()) -> bool:
    """Whether ``task`` reads the play's live hosts (not ``ansible_play_hosts_all``), in its
    keywords and arguments or in the content of a template (``templates``: the pointers of
    the template tasks whose file reads them)."""
    text = json.dumps([[t.args, [c.value for c in t.conditions], t.extras] for t in task.walk()], default=str)
    return bool(_PLAY_HOSTS_READ.search(text)) or any(t.pointer in templates for t in task.walk())


def play_hosts_templates(plan: Plan, tasks: Iterable[Task]) -> frozenset[str]:
    """The pointers of the ``template`` tasks of ``tasks`` whose file (found on the controller
    as the plan names it), or a template it includes by a literal name, reads the play's live
    hosts, or may read them: a templated or run-time ``src``, a template included by a computed
    name (their text is known on the host only)."""
    from .plan.files import template_walk

    out = set()
    for top in tasks:
        for leaf in _leaves(top):
            if leaf.short_module != "template":
                continue
            texts, complete = template_walk(plan, leaf)
            if not complete or any(_PLAY_HOSTS_READ.search(t) for t in texts):
                out.add(leaf.pointer)
    return frozenset(out)


def may_fail(task: Task, quiet: tuple[str, ...] = ()) -> bool:
    """Whether a task of ``task`` may fail (not ``ignore_errors``, not ``failed_when: false``,
    not one of the ``quiet`` modules)."""
    return any(t.extras.get("ignore_errors") is not True and t.short_module not in quiet
               and str(t.extras.get("failed_when", "")).strip().lower() not in ("false", "['false']")
               for t in _leaves(task))


# modules that fail only on a templating error: a read of the play's live hosts after them is
# not cut for it (docs/phases.md)
QUIET = ("debug", "set_fact", "meta", "group_by")

# modules ansible-core runs on the controller alone: they never find their host unreachable
CONTROLLER_ONLY = (*QUIET, "add_host", "assert", "fail", "include_vars", "set_stats")


def may_drop(task: Task) -> bool:
    """Whether ``task`` may take its host out of the play's live hosts: a task of it may fail
    (``may_fail`` but for QUIET modules), or reaches the host, which may be unreachable
    (``ignore_errors`` and ``failed_when`` do not hold for that in ansible-core;
    ``ignore_unreachable`` does)."""
    return may_fail(task, QUIET) or any(t.short_module not in CONTROLLER_ONLY
                                        and t.extras.get("ignore_unreachable") is not True for t in _leaves(task))


def state_reads(reads: Iterable[str]) -> bool:
    """Whether a phase reading ``reads`` needs the hosts' state sent back before it (the failed
    hosts, PLAY_HOSTS, are the controller's own knowledge)."""
    return any(r not in (PLAY_HOSTS, REFRESH) for r in reads)


def file_reads(task: Task) -> set[str]:
    """The run-time controller files the tasks of ``task`` read, as phase reads (FILE)."""
    out: set[str] = set()
    for leaf in _leaves(task):
        listing = leaf.extras.get("vars_dir") or {}
        render = leaf.extras.get("run_time_render") or {}
        for name, paths in (leaf.extras.get("run_time_files") or {}).items():
            kind = "vars" if leaf.short_module == "include_vars" else "file"
            if listing.get("run_time") == name:  # include_vars dir: walked with its options
                out.add(FILE + json.dumps([str(name), "vars_dir", [str(p) for p in paths],
                                           listing.get("options") or {}], sort_keys=True))
                continue
            options: dict[str, Any] = {}
            if str(leaf.args.get("local_follow", True)).lower() in ("false", "no", "0", "off", "n"):
                options["follow"] = False  # a copy src directory's symlinks are copied as links
            if str(leaf.args.get("decrypt", True)).lower() in ("false", "no", "0", "off", "n"):
                options["decrypt"] = False  # a vault-encrypted file is sent as it is
            if leaf.short_module == "copy":  # ansible-core's words for a file no secret opens
                options["module"] = "copy"
            if name in render:  # a name over a host's data: the controller renders it (fleetops)
                options["render"] = render[name]
                paths = []
            out.add(FILE + json.dumps([str(name), kind, [str(p) for p in paths], *([options] if options else [])],
                                      sort_keys=True))
    return out


def file_read(read: str) -> tuple[str, str, list[str], dict[str, Any]] | None:
    """(name, kind, candidate paths, options) of a FILE read; None for any other read. The
    kind is ``file``, ``vars`` (a vars file) or ``vars_dir`` (include_vars' dir, whose walk
    takes the options); a ``file`` whose options hold ``render`` is named by a template over
    a host's data (no paths: the controller renders it for each host)."""
    if not read.startswith(FILE):
        return None
    name, kind, paths, *options = json.loads(read[len(FILE):])
    return name, kind, paths, (options[0] if options else {})


def is_fact(name: str) -> bool:
    """Whether ``name`` names a fact (``ansible_facts`` or an ``ansible_*`` fact variable)."""
    return name == FACTS or (name.startswith("ansible_") and not name.startswith(_INVENTORY_PREFIXES))


def _sets(task: Task) -> set[str]:
    """The names the tasks of ``task`` set while the play runs (FACTS for gathered facts)."""
    out: set[str] = set()
    for leaf in _leaves(task):
        if isinstance(leaf.extras.get("register"), str):
            out.add(leaf.extras["register"])
        if leaf.short_module == "set_fact":
            out.update(str(k) for k in leaf.args if k != "cacheable")
        if leaf.short_module in ("setup", "gather_facts"):
            out.add(FACTS)
        if leaf.short_module == "group_by":
            out.add(INVENTORY)
    return out


def hostvars_reads(task: Task) -> set[str]:
    """The variable names ``task`` reads of hosts through hostvars."""
    text = json.dumps([[t.args, [c.value for c in t.conditions], t.extras] for t in task.walk()], default=str)
    return {m.group(1) or m.group(2) for m in _HOSTVARS_READ.finditer(text.replace('\\"', '"'))}


def fails_fatally(task: Task, play_fatal: bool = False) -> bool:
    """Whether a task of ``task`` carries ``any_errors_fatal`` (its own, else the play's) and may
    fail (not ignore_errors, not ``failed_when: false``): Ansible's hosts stop together after it
    (docs/phases.md)."""
    return any(t.extras.get("any_errors_fatal", play_fatal) is True and may_fail(t) for t in _leaves(task))


def may_error(task: Task) -> bool:
    """Whether a task of ``task`` notifies a handler the play does not have (``notify_missing``)
    and may report changed, or is an include of a file ansible-core cannot parse (``include_error``
    errored): ansible-core then aborts the run on every host after that task."""
    return any(t.extras.get("notify_missing")
               and str(t.extras.get("changed_when", "")).strip().lower() not in ("false", "['false']")
               for t in _leaves(task)) or any(
        isinstance(t.extras.get("include_error"), dict) and t.extras["include_error"].get("errored")
        for t in task.walk())


def notifiable(handlers: Sequence[Task], tasks: Iterable[Task]) -> list[Task]:
    """The ``handlers`` (in their order) that a notify of ``tasks`` (a play's tasks, at any
    depth) or of such a handler may run: by name, ``ROLE : NAME`` or listen topic, a superset
    of the host's choice (executor._notified_handlers). A notify is never rendered on the host
    (the playbook compiler renders one over shared values; one that names no handler is
    ``notify_missing``, which notifies nothing), and every file an include may pick is
    compiled into it, so a handler no notify names never runs: it needs no phase."""
    from .plan.validate import handler_topics

    names = {n for top in tasks for t in top.walk() for n in t.notify}
    chosen: list[Task] = []
    while True:  # a handler notified by a handler that runs
        found = [h for h in handlers if handler_topics([h]) & names]
        if len(found) == len(chosen):
            return found
        chosen = found
        names.update(n for h in chosen for t in h.walk() for n in t.notify)


def play_phases(tasks: list[Task], earlier: frozenset[str] = frozenset(),
                actions: frozenset[str] = frozenset(), handlers: list[Task] | None = None,
                fatal_play: bool = False, lockstep: bool = True,
                templates: frozenset[str] = frozenset(), failed_before: bool = False) -> Phases:
    """The phases of a play whose top-level tasks, in execution order, are ``tasks``
    (``earlier``: the names the plays before it set).

    A task that reads a controller file missing when the playbook was compiled
    (``run_time_files``) starts a new phase: the controller reads the file when it starts.
    A task that reads of other hosts (hostvars) a value the play's tasks set (a registered
    result, set_fact, a fact) starts a new phase unless its phase already began after that
    value was set: the controller sends each host the others' values at the start of a phase,
    as Ansible's lock-step gives them. A task that may fail with ``any_errors_fatal`` (its own
    or ``fatal_play``, the play's) ends its phase when ``lockstep`` (a play of several hosts):
    the controller stops every host of the batch after the phase where one failed; so does a
    task that may notify a handler the play lacks (``may_error``): the run errors there. A read of a value an earlier play set is sent in the
    same way (the play is then a stage of its own, after the earlier ones). ``failed_before``: a
    task of an earlier play may fail: a host that failed there is out of this play's live hosts
    (``ansible_play_hosts``), so a read of them is sent the failed hosts from the first phase on
    (the play is then a stage of its own too)."""
    late = set(earlier).union(*(_sets(t) for t in tasks))
    every = handlers or []  # a run_once handler's kind names its index among all of them
    handlers = notifiable(every, tasks)  # a handler nothing notifies gets no phase
    runs = frozenset(h.task_id for h in handlers)
    kinds: list[str] = []
    of: dict[str, int] = {}
    last: dict[str, int] = {}
    reads: dict[int, set[str]] = {}
    set_here: set[str] = set()  # names set so far in the current phase
    grouped = False  # a group_by ran before: later tasks see every host's groups
    fatal = False  # the task before may fail with any_errors_fatal: the hosts stop together after it
    refreshed = False  # the task before refreshed the inventory: the next phase starts with it read again
    staged = any(handler_kind(h, actions) for h in handlers)
    # handlers that read the play's live hosts: a flush runs them (in its phase: not a staged play's)
    handlers_live = not staged and any(reads_play_hosts(h, templates) for h in handlers)
    # a staged play's handlers that read them: their phases are sent the failed hosts
    readers = frozenset(h.task_id for h in handlers if staged and lockstep and reads_play_hosts(h, templates))
    at: dict[str, list[int]] = {}  # handler -> the phases it runs in
    flushed = False  # the task before flushed handlers in phases of their own: the next starts one
    # force_handlers: each section's first phase, and its end's handler phases (the implicit flushes')
    starts: list[int] = [0]
    ends_of: list[list[int]] = []
    where: tuple[tuple[str, str], ...] = ()  # the block sections the task before is in
    # a task that may fail ran: in an earlier phase (or an earlier play), in the current one
    failing = [failed_before, False]

    def place(task: Task, part: tuple[tuple[str, str], ...]) -> None:
        nonlocal set_here, grouped, fatal, where, flushed, refreshed
        if splits(task, actions, fatal_play, lockstep):  # its tasks get phases of their own
            children = [(name, child) for name, part in (("block", task.block or ()), ("rescue", task.rescue),
                                                         ("always", task.always)) for child in part]
            for name, child in children:
                place(child, (*part, (task.task_id, name)))
            of[task.task_id] = of[children[0][1].task_id]
            last[task.task_id] = len(kinds) - 1
            return
        kind = kind_of(task, actions)
        wanted = {n for n in hostvars_reads(task) if n in late or is_fact(n)} | ({INVENTORY} if grouped else set())
        stale = wanted & set_here or (FACTS in set_here and any(is_fact(n) for n in wanted))
        files = file_reads(task)  # a file an earlier task may create: read when its phase starts
        wanted |= files
        # a run_once phase holds tasks of one block section: its host is the first that reaches them
        moved = kind in (ONCE, ONCE_LOCAL) and part != where
        # the play's live hosts, read after a task that may have failed on one: known at a phase's start
        live = (reads_play_hosts(task, templates) or (handlers_live and any(flushes(t) for t in task.walk()))) \
            and lockstep and (failing[0] or failing[1])
        if refreshed:
            wanted.add(REFRESH)
        if not kinds or kinds[-1] != kind or stale or files or fatal or moved or (live and failing[1]) \
                or flushed or refreshed:
            kinds.append(kind)
            set_here = set()
            failing[:] = [failing[0] or failing[1], False]
        if live:
            wanted.add(PLAY_HOSTS)
        failing[1] = failing[1] or may_drop(task)
        of[task.task_id] = len(kinds) - 1
        if wanted:
            reads.setdefault(len(kinds) - 1, set()).update(wanted)
        set_here |= _sets(task)
        grouped = grouped or INVENTORY in set_here
        fatal = lockstep and (fails_fatally(task, fatal_play) or may_error(task))
        flushed = staged and flushes(task)
        refreshed = any(refreshes(t) for t in task.walk())
        ends = _handler_phases(every, kinds, at, actions, reads, readers, failing, runs) if flushed \
            else [len(kinds) - 1]  # a play without staged handlers runs them in the flush's own phase
        if task.extras.get("implicit_flush") is True:
            starts.append(len(kinds))
            ends_of.append(ends)
        where = part

    for task in tasks:
        place(task, ())
    if lockstep and not staged and any(reads_play_hosts(h, templates) for h in handlers):
        # handlers reading the play's live hosts run in a phase of their own after a task that
        # may fail (the host's last phase flushes what its earlier ones notified)
        if failing[1]:
            kinds.append(HOSTS)
        if failing[0] or failing[1]:
            reads.setdefault(len(kinds) - 1, set()).add(PLAY_HOSTS)
    ends_of.append(_handler_phases(every, kinds, at, actions, reads, readers, failing, runs) if staged
                   else [len(kinds) - 1])
    if not staged:  # its handlers run in a phase on every host (not one host, not the controller)
        ends_of = [[e for e in ends if split(kinds[e])[0] == HOSTS] for ends in ends_of]
    held = set(of.values())  # the phases that hold tasks
    bounds = zip(starts, [*starts[1:], len(kinds)], ends_of, strict=True)
    forced = {p: tuple(e for e in ends if e >= p) for start, stop, ends in bounds
              for p in range(start, stop) if p in held}
    of.update((name, phases[-1]) for name, phases in at.items())
    return Phases(tuple(kinds) or (HOSTS,), of, {k: tuple(sorted(v)) for k, v in reads.items()}, last,
                  {name: tuple(phases) for name, phases in at.items()}, forced)


def handler_kind(handler: Task, actions: frozenset[str] = frozenset()) -> str | None:
    """The kind of the phase of its own a handler runs in: ``HANDLER#`` for a run_once handler
    (its index is added by the caller), ``HANDLER_LOCAL#`` (then ``>HOST`` when it is delegated
    to another inventory host) for a run_once handler delegated, a LOCAL kind for one delegated
    to the controller, to another inventory host or to a host each call names; None for a
    handler that runs on its host (or cannot be cut)."""
    kinds = _kinds(handler, actions)
    if kinds == {ONCE}:
        return f"{HANDLER}#"
    if len(kinds) != 1:
        return None
    kind = next(iter(kinds))
    base, width = split(kind)
    plain = all(local(t) or delegate(t) is not None or per_call(t) for t in _leaves(handler)) and not any(
        (t.pointer in actions and not per_call(t)) or connection_vars(t) is not None for t in _leaves(handler))
    if base == ONCE_LOCAL and plain:
        target = delegate_of(kind)
        return f"{HANDLER_LOCAL}#" + (f">{target}" if target else "")
    return kind if base == LOCAL and not width and plain else None


def _handler_phases(handlers: list[Task], kinds: list[str], at: dict[str, list[int]], actions: frozenset[str],
                    reads: dict[int, set[str]] | None = None, readers: frozenset[str] = frozenset(),
                    failing: Sequence[bool] = (False, False), runs: frozenset[str] | None = None) -> list[int]:
    """Give the handlers (in execution order) of a play with a run_once or delegated handler
    phases after its tasks' (or after a flush, its phase's last task): each run_once handler one
    of its own (HANDLER, HANDLER_LOCAL), consecutive handlers delegated to one place one (LOCAL,
    for each host), the handlers between them one on every host (the phase before when it runs
    on every host). A play without such handlers runs its handlers in its phases, as always.

    A handler of ``readers`` (it reads the play's live hosts) after a task or handler that may
    fail (``failing``: in an earlier phase, in the last one) gets PLAY_HOSTS in its phase's
    ``reads``, in a phase of its own when what may fail is in the phase it would join.
    ``runs``: the handlers a notify may run (``notifiable``; None: all), the others get none.
    The phases the handlers got (in order)."""
    if not any(handler_kind(h, actions) for h in handlers if runs is None or h.task_id in runs):
        return []
    given: list[int] = []
    failed, pending = failing[0] or failing[1], failing[1]
    for index, handler in enumerate(handlers):
        if runs is not None and handler.task_id not in runs:
            continue
        own = handler_kind(handler, actions) or HOSTS
        reader = handler.task_id in readers and failed
        if run_once_handler(own):
            kinds.append(own.replace("#", f"#{index}", 1))
            pending = False
        elif not kinds or kinds[-1] != own or (reader and pending):
            kinds.append(own)
            pending = False
        at.setdefault(handler.task_id, []).append(len(kinds) - 1)
        if len(kinds) - 1 not in given:
            given.append(len(kinds) - 1)
        if reader and reads is not None:
            reads.setdefault(len(kinds) - 1, set()).add(PLAY_HOSTS)
        if may_drop(handler):
            failed = pending = True
    return given


def plan_phases(plan: Plan, actions: frozenset[str] = frozenset()) -> list[Phases]:
    """The phases of each play of ``plan``: what a play reads of other hosts may have been set
    by an earlier play (registered results and ``set_fact`` values last for the playbook);
    ``actions``: the tasks whose action plugin runs on the controller."""
    out: list[Phases] = []
    earlier: set[str] = set()
    failed_before = False  # a task of an earlier play may fail (or find its host unreachable): its hosts leave the later plays
    for play in plan.plays:
        tasks = plan.play_tasks(play)
        lockstep = not one_host(play)
        out.append(play_phases(tasks, frozenset(earlier), actions,
                               sorted(play.handlers, key=lambda h: h.execution_order),
                               play.any_errors_fatal, lockstep=lockstep,
                               templates=play_hosts_templates(plan, [*tasks, *play.handlers]) if lockstep
                               else frozenset(), failed_before=failed_before))
        earlier.update(*(_sets(t) for t in [*tasks, *play.handlers]))
        failed_before = failed_before or any(may_drop(t) for t in [*tasks, *play.handlers])
    return out


def off_host_tasks(plan: Plan, actions: frozenset[str] = frozenset()) -> list[str]:
    """How a message names the plan's tasks that run elsewhere than on their host (the
    controller, another host, another connection): "'NAME' (play 'PLAY')"."""
    out = []
    for play, cut in zip(plan.plays, plan_phases(plan, actions), strict=True):
        for top in [*plan.play_tasks(play), *sorted(play.handlers, key=lambda h: h.execution_order)]:
            for task in top.walk():  # a block cut inside: each of its tasks has its phase
                if task.task_id in cut.of and task.task_id not in cut.last \
                        and split(cut.kinds[cut.of[task.task_id]])[0] in (LOCAL, ONCE_LOCAL, HANDLER_LOCAL):
                    out += [f"{leaf.name!r} (play {play.name!r})" for leaf in _leaves(task)]
    return out
