"""Cross-reference checks on a parsed plan; every violation is reported in one run.

Each check raises a PlanError at its first violation in one place (a task, a play's graph, a
deployment); ``validate`` runs every check on every place and raises them together
(``PlanErrors``, in plan order), or the one alone. In order: ``total_tasks``; task ids, dependencies and their cycles; batch dependencies
and their cycles; modules (built in, or found for the module bridge:
``bridge/policy.py``); ``notify``; keywords the product cannot honour yet
(``delegate_to`` another host; ``run_once``, ``throttle`` where a play cannot be cut); static
files (``files.py``).

**Counting tasks.** ``total_tasks`` is the number of distinct ``task_id`` per play, summed over
plays (rustle-plan counts the tasks left after tag filtering, per play). Rolling plans repeat
every task in each host-slice batch and that repetition is not counted; ids repeat across plays
(``task_0`` in every play) and are counted per play. A play with no batches at all (rustle-plan's
Rolling strategy emits none when it resolved no hosts for the play) makes the count a lower
bound.

**Dependencies.** A task's ``dependencies`` name task ids of its play, a batch's name batch
ids of its play; cycles are errors. An unknown task id is an error unless the plan was
tag-filtered (``planning_options.tags``/``skip_tags``), since filtering may drop a task that
another one depends on; such a dependency is then ignored, as ``Plan.play_tasks`` does.

**Hosts.** Host lists hold host names: rustle-plan resolves each play's pattern against the
inventory's host names and gives every task (and Rolling batch) a subset of the play's hosts.
When it can resolve nothing (groups, for instance) it writes ``[]``, as in
``package_management_plan.json`` (play, batch and task ``hosts`` all ``[]``, plan ``hosts:
["localhost"]``); an empty list therefore means "not narrowed here". So a play's
*effective* hosts are its ``hosts``, or the plan's top-level ``hosts`` when the play's list is
empty; when both are empty the play targets whatever the inventory gives and no host check
is possible. A non-empty batch or task host list must stay inside the play's effective
hosts. Play hosts are not checked against the plan's ``hosts``. Because plan host lists may
also name inventory groups, this check (``check_hosts``) runs once the inventory is known.

**delegate_to.** ``delegate_to`` names the host itself (``{{ inventory_hostname }}``, or the
single host the task or play is pinned to: nothing to do), the controller (``localhost``) or
another inventory host (checked by ``check_hosts``): the play is cut into phases there. A
templated name is refused (the compiler renders a playbook's before it writes the plan).
``run_once`` and ``throttle`` cut the play into phases too (``phases.py``); where they cannot
(inside a block with rescue/always of other tasks, on a handler, as an expression) they are
rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rustle_deploy import phases
from rustle_deploy.errors import InventoryError, PlanError, PlanErrors
from rustle_deploy.model import Plan, Play, Task
from rustle_deploy.plan import files
from rustle_deploy.plan.schema import child, printable
from rustle_deploy.runtime_index import canonical_module, runtime_plugins

if TYPE_CHECKING:
    from rustle_deploy.bridge.lookup import Resolution

_SELF = phases.DELEGATE_SELF


def _quoted(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in list(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def all_tasks(play: Play) -> Iterator[Task]:
    """The tasks of the play's batches (blocks as one task each)."""
    for batch in play.batches:
        yield from batch.tasks


def every_task(play: Play) -> Iterator[Task]:
    """Every task and handler of the play, the tasks inside blocks included."""
    for task in (*all_tasks(play), *play.handlers):
        yield from task.walk()


def validate(plan: Plan, files_dirs: Sequence[str] = (), *,
             legacy_task_ids: frozenset[str] = frozenset(), later_plays: bool = False,
             warnings: list[PlanError] | None = None) -> None:
    """Raise every PlanError found in ``plan``'s cross-references (PlanErrors for several);
    ``later_plays``: plays may follow add_host/group_by (a playbook run with ``--run``, whose
    later plays are compiled again once the change is known: docs/phases.md); ``warnings``
    receives what is not an error but will fail when the host evaluates it (an unknown filter,
    test or lookup, as in Ansible)."""
    src = plan.source
    problems: list[PlanError] = []

    def check(fn: Callable[..., object], *args: object, **kw: object) -> None:
        try:
            fn(*args, **kw)
        except PlanErrors as exc:
            problems.extend(exc.problems)
        except PlanError as exc:
            problems.append(exc)

    from rustle_deploy.bridge.policy import overridden_builtins, plan_dirs
    from rustle_deploy.runtime_index import override_builtins

    override_builtins(overridden_builtins(plan_dirs(plan)))
    check(_total_tasks, plan)
    resolution = _bridge_resolution(plan)
    local = _local_plugins(plan)
    actions: frozenset[str] = frozenset()
    if resolution is not None:
        from rustle_deploy.bridge.policy import controller_tasks

        actions = controller_tasks(plan, resolution)
    for number, play in enumerate(plan.plays):
        if not later_plays:
            check(_inventory_changes, src, plan, number)
        check(_task_graph, src, play, filtered=bool(plan.options.tags or plan.options.skip_tags))
        check(_batch_graph, src, play)
        for task in every_task(play):
            check(_module, plan, task, resolution)
            check(_unsupported, src, plan, play, task)
            check(_role, src, play, task)
            check(files.resolve_source, plan, task, files_dirs=files_dirs)
            refused, unknown = _plugins(src, task, local)
            problems.extend(refused)
            if warnings is not None:
                warnings.extend(unknown)
        for refusal in phases.refusals(play, plan.play_tasks(play), actions):
            problems.append(PlanError(refusal.message, refusal.hint, file=src,
                                      pointer=child(refusal.task.pointer, refusal.key)))
        for task in every_task(play):
            for i, name in enumerate(task.notify):
                check(_notify_one, src, play, task, i, name)
    check(_deployments, plan, legacy_task_ids)
    for dep in plan.binary_deployments:
        for i, static in enumerate(dep.static_files):
            ptr = f"{dep.pointer}/embedded_data/static_files/{i}/src_path"
            check(files.resolve_static_file, plan, static, ptr, files_dirs)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise PlanErrors(problems)


def _total_tasks(plan: Plan) -> None:
    counted = sum(len({t.task_id for t in all_tasks(p)}) for p in plan.plays)
    if any(not p.batches for p in plan.plays):
        # rustle-plan's Rolling strategy writes no batches for a play whose hosts it could
        # not resolve, yet counts that play's tasks: only a lower bound is known.
        if plan.total_tasks >= counted:
            return
    elif plan.total_tasks == counted:
        return
    raise PlanError(
        f"total_tasks is {plan.total_tasks} but the plays hold {counted} distinct tasks",
        "total_tasks counts distinct task ids per play, summed over plays; the plan was "
        "edited or truncated: regenerate it with rustle-plan",
        file=plan.source, pointer="/total_tasks")


def check_hosts(plan: Plan, expand: Callable[[Sequence[str]], set[str]] | None = None) -> None:
    """Batch, task and handler hosts must fall within their play's hosts.

    Plan host lists may name inventory groups (rustle-plan leaves them unexpanded), so this
    check needs the inventory: ``expand`` turns names into the set of host names they stand
    for. Without it every name is taken as a host name.
    """
    for play in plan.plays:
        _hosts(plan, play, expand or set)
        if expand is None:
            continue
        for batch in play.batches:  # delegate_to another host: that host must be in the inventory
            for top in batch.tasks:
                for task in top.walk():
                    target = phases.delegate(task)
                    if target is not None and not _known(expand, target):
                        raise PlanError(f"delegate_to {target!r} ({_kind(task)} {task.name!r}) is not a host "
                                        "of the inventory", "add it to the inventory, or delegate to localhost",
                                        file=plan.source, pointer=child(task.pointer, "delegate_to"))


def _known(expand: Callable[[Sequence[str]], set[str]], name: str) -> bool:
    try:
        return bool(expand([name]))
    except InventoryError:
        return False


def _hosts(plan: Plan, play: Play, expand: Callable[[Sequence[str]], set[str]]) -> None:
    allowed = play.hosts or plan.hosts
    if not allowed:
        return
    where = "play" if play.hosts else "plan (the play lists none)"
    hint = f"hosts of this {where}: {_quoted(allowed)}"
    allowed_set = expand(allowed)

    def check(hosts: tuple[str, ...], pointer: str) -> None:
        for i, host in enumerate(hosts):
            if not expand([host]) <= allowed_set:
                raise PlanError(f"host {host!r} is not a host of play {play.name!r}", hint,
                                file=plan.source, pointer=child(pointer, i))

    for batch in play.batches:
        check(batch.hosts, child(batch.pointer, "hosts"))
        for task in batch.tasks:
            check(task.hosts, child(task.pointer, "hosts"))
    for handler in play.handlers:
        check(handler.hosts, child(handler.pointer, "hosts"))


def _find_cycle(graph: dict[str, tuple[str, ...]]) -> list[str] | None:
    """A dependency cycle as [a, b, ..., a], or None. Iterative: plans can be long chains."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    for root in graph:
        if state.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        path = [root]
        state[root] = 1
        while stack:
            node, deps = stack[-1]
            for dep in deps:
                if dep not in graph:
                    continue
                if state.get(dep) == 1:
                    return path[path.index(dep):] + [dep]
                if not state.get(dep):
                    state[dep] = 1
                    stack.append((dep, iter(graph[dep])))
                    path.append(dep)
                    break
            else:
                state[node] = 2
                stack.pop()
                path.pop()
    return None


def _task_graph(src: str, play: Play, *, filtered: bool) -> None:
    ids = {t.task_id for t in all_tasks(play)}
    graph: dict[str, tuple[str, ...]] = {}
    first: dict[tuple[str, str], str] = {}  # (task, dep) -> pointer of the dependency entry
    for batch in play.batches:
        seen: set[str] = set()
        for task in batch.tasks:
            if task.task_id in seen:
                raise PlanError(f"task id {task.task_id!r} appears twice in batch "
                                f"{batch.batch_id!r}",
                                "task ids are unique within a batch (Rolling plans repeat a "
                                "task only in another batch)",
                                file=src, pointer=child(task.pointer, "task_id"))
            seen.add(task.task_id)
            for i, dep in enumerate(task.dependencies):
                ptr = child(child(task.pointer, "dependencies"), i)
                if dep not in ids and not filtered:
                    raise PlanError(f"task {task.task_id!r} depends on unknown task {dep!r}",
                                    f"tasks of play {play.name!r}: {_quoted(sorted(ids))}",
                                    file=src, pointer=ptr)
                first.setdefault((task.task_id, dep), ptr)
            deps = graph.get(task.task_id, ())
            graph[task.task_id] = deps + tuple(d for d in task.dependencies if d not in deps)
    _check_acyclic(src, graph, first, "task", "tasks")


def _batch_graph(src: str, play: Play) -> None:
    ids: dict[str, int] = {}
    for index, batch in enumerate(play.batches):
        if batch.batch_id in ids:
            raise PlanError(f"batch id {batch.batch_id!r} appears twice in play {play.name!r}",
                            "batch ids are unique within a play",
                            file=src, pointer=child(batch.pointer, "batch_id"))
        ids[batch.batch_id] = index
    graph: dict[str, tuple[str, ...]] = {}
    first: dict[tuple[str, str], str] = {}
    for batch in play.batches:
        for i, dep in enumerate(batch.dependencies):
            ptr = child(child(batch.pointer, "dependencies"), i)
            if dep not in ids:
                raise PlanError(f"batch {batch.batch_id!r} depends on unknown batch {dep!r}",
                                f"batches of play {play.name!r}: {_quoted(list(ids))}",
                                file=src, pointer=ptr)
            first.setdefault((batch.batch_id, dep), ptr)
        graph[batch.batch_id] = batch.dependencies
    _check_acyclic(src, graph, first, "batch", "batches")


def _check_acyclic(
    src: str, graph: dict[str, tuple[str, ...]], first: dict[tuple[str, str], str], one: str, many: str
) -> None:
    """PlanError at the first edge of a dependency cycle in ``graph``, if it has one."""
    cycle = _find_cycle(graph)
    if cycle:
        shown = " -> ".join(printable(c) for c in cycle)
        raise PlanError(f"dependency cycle between {many}: {shown}",
                        f"a {one} cannot depend, directly or not, on itself; remove one of these "
                        "dependencies", file=src, pointer=first[(cycle[0], cycle[1])])


def _role(src: str, play: Play, task: Task) -> None:
    role = task.extras.get("role")
    if role is not None and role not in play.roles:
        raise PlanError(f"{_kind(task)} {task.name!r} names role {role!r}, which the play's "
                        "roles do not define",
                        f"roles of this play: {_quoted(list(play.roles)) or 'none'}",
                        file=src, pointer=child(task.pointer, "role"))


def _bridge_resolution(plan: Plan) -> Resolution | None:
    """One lookup for every module of the plan that no built-in implements (None: none)."""
    tasks = [t for play in plan.plays for t in every_task(play)
             if not t.is_block and canonical_module(t.module) is None]
    if not tasks:
        return None
    from rustle_deploy.bridge.policy import unresolved

    return unresolved(plan, tasks)


def _module(plan: Plan, task: Task, resolution: Resolution | None) -> None:
    """The module is built in, or found as Ansible finds it and runnable through the bridge."""
    if not task.is_block and canonical_module(task.module) == "pause":
        _pause(plan, task)
    if task.is_block or canonical_module(task.module) is not None or resolution is None:
        return
    from rustle_deploy.bridge.policy import bridged

    bridged(plan, task, resolution)


def _kind(task: Task) -> str:
    return "handler" if "/handlers/" in task.pointer else "task"


INVENTORY_MODULES = ("add_host", "group_by")
REFRESH = "meta: refresh_inventory"


def changes_inventory(task: Task) -> str | None:
    """How a message names what the task does to the inventory (add_host, group_by,
    ``meta: refresh_inventory``: the plays after it are chosen over the changed inventory);
    None for any other task."""
    if task.short_module in INVENTORY_MODULES:
        return task.short_module
    return REFRESH if phases.refreshes(task) else None


def inventory_change(play: Play) -> Task | None:
    """The play's first add_host, group_by or refresh_inventory task, if any."""
    return next((t for t in every_task(play) if changes_inventory(t)), None)


def _inventory_changes(src: str, plan: Plan, number: int) -> None:
    """add_host and group_by change the inventory as the hosts see it (docs/phases.md): no play
    may follow (its hosts are chosen before the run)."""
    play = plan.plays[number]
    task = inventory_change(play)
    if task is None:
        return
    if number < len(plan.plays) - 1:
        what = changes_inventory(task)
        raise PlanError(f"{what} ({_kind(task)} {task.name!r}) changes the inventory, and "
                        f"{len(plan.plays) - 1 - number} play(s) follow: a plan's later plays are "
                        "compiled already, before the change is known",
                        "give the playbook itself with --run: rustle-deploy compiles the plays after "
                        f"{what} once it has run (docs/phases.md)", file=src, pointer=task.pointer)


def _pause(plan: Plan, task: Task) -> None:
    """A pause that would wait for the operator cannot: the play runs without asking."""
    if task.args.get("prompt"):
        where, why = "prompt", "a prompt"
    elif task.args.get("seconds") is None and task.args.get("minutes") is None:
        where, why = "", "no seconds or minutes (it waits for Enter)"
    else:
        return
    raise PlanError(f"pause in {_kind(task)} {task.name!r} has {why}: it would wait for the operator, and "
                    "rustle-deploy runs the play without asking (no terminal in the run)",
                    "give seconds: or minutes: to pause for a while (docs/bridge.md)",
                    file=plan.source, pointer=child(f"{task.pointer}/args", where) if where else f"{task.pointer}/args")


def _unsupported(src: str, plan: Plan, play: Play, task: Task) -> None:
    target = task.extras.get("delegate_to")
    if target is None:
        return
    target = target.strip()
    pinned = task.hosts or play.hosts or plan.hosts
    if _SELF.match(target) or (len(pinned) == 1 and target == pinned[0]) or phases.local(task):
        return
    if target and not _TEMPLATED.search(target):
        return  # an inventory host: a phase run over its connection (checked against the inventory)
    from rustle_deploy.bridge.lookup import ansible_available

    if target and phases.per_call(task) and ansible_available():
        return  # a host each call names: ansible-core on the controller (bridge/action.py)
    raise PlanError(f"delegate_to {target!r} is not supported ({_kind(task)} {task.name!r}): a host each "
                    "call names is rendered by ansible-core on the controller, which is not installed",
                    "pip install 'rustle-deploy[ansible]', or name an inventory host, or localhost for "
                    "the controller (docs/phases.md)",
                    file=src, pointer=child(task.pointer, "delegate_to"))


# task values that are bare expressions (conditions), not templates
_EXPRESSION_KEYS = ("changed_when", "failed_when", "until")
_TEMPLATED = re.compile(r"{{|{%|{#")


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield value, pointer
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, child(pointer, str(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, child(pointer, i))


def _templates(task: Task) -> Iterator[tuple[str, str]]:
    """Each Jinja2 template of ``task`` (a bare expression wrapped as one) and its pointer."""
    for text, ptr in _strings(task.args, child(task.pointer, "args")):
        if _TEMPLATED.search(text):
            yield text, ptr
    if task.short_module == "assert":
        for text, ptr in _strings(task.args.get("that"), child(child(task.pointer, "args"), "that")):
            yield "{{ " + text + " }}", ptr
    for key, value in task.extras.items():
        if key in ("include", "include_error"):
            continue  # what the include names, for display, and why it fails: never rendered
        if key == "include_choice":  # only its name is a template; the rest is data
            value = {"name": value.get("name")} if isinstance(value, dict) else value
        for text, ptr in _strings(value, child(task.pointer, key)):
            if key in _EXPRESSION_KEYS and not _TEMPLATED.search(text):
                yield "{{ " + text + " }}", ptr
            elif _TEMPLATED.search(text):
                yield text, ptr
    for i, cond in enumerate(task.conditions):
        if cond.kind in ("When", "Skip") and isinstance(cond.value, str):
            text = cond.value if _TEMPLATED.search(cond.value) else "{{ " + cond.value + " }}"
            yield text, child(child(task.pointer, "conditions"), i)


def _local_plugins(plan: Plan) -> dict[str, frozenset[str]]:
    """The names of the playbook's and roles' own plugins (compiler/ansible_plugins.py)."""
    from rustle_deploy.bridge.policy import plan_dirs
    from rustle_deploy.compiler.ansible_plugins import KINDS, local_plugins, with_collections

    found = with_collections(local_plugins(tuple(plan_dirs(plan))), repr(plan.plays))
    return {kind: found.names(kind) for kind in KINDS}


def _plugins(src: str, task: Task, local: dict[str, frozenset[str]] | None = None
             ) -> tuple[list[PlanError], list[PlanError]]:
    """The filters, tests and lookups of ``task`` that are refused, and those that are unknown.

    One ansible-core offers and the runtime does not is refused now (the task could not do
    what it does under Ansible), never silently empty. One that is no ansible.builtin plugin
    at all (nor the playbook's own) is unknown: ansible-core fails the task when it evaluates
    the template, and so does the host (the templating and assert targets rely on it); the
    compiler only warns. A collection's plugin that no installed collection has (ansible-core
    finds them, compiler/ansible_plugins.py) is refused, and so are ansible._protomatter's
    that the runtime cannot answer (docs/playbooks.md, "Data tags")."""
    import jinja2
    from jinja2 import nodes

    from rustle_deploy.compiler.ansible_plugins import ansible_available

    known = runtime_plugins()
    local = local or {}
    env = jinja2.Environment()
    out: list[PlanError] = []
    unknown: list[PlanError] = []
    for text, ptr in _templates(task):
        try:
            tree = env.parse(text)
        except jinja2.TemplateSyntaxError:
            continue  # fails on the host with Ansible's message
        used: list[tuple[str, str]] = [("filter", n.name) for n in tree.find_all(nodes.Filter)]
        used += [("test", n.name) for n in tree.find_all(nodes.Test)]
        for call in tree.find_all(nodes.Call):
            if (isinstance(call.node, nodes.Name) and call.node.name in ("lookup", "query", "q")
                    and call.args and isinstance(call.args[0], nodes.Const)):
                used.append(("lookup", str(call.args[0].value)))
        for kind, name in used:
            if name in local.get(kind, ()):
                continue  # the playbook's or a role's own plugin: ansible-core runs it on the controller
            if kind == "lookup" and name in ("config", "ansible.builtin.config") and not ansible_available():
                out.append(PlanError(f"lookup {name!r} needs ansible-core on the controller, and the "
                                     "controller's Python cannot import ansible",
                                     "install ansible-core beside rustle-deploy (pip install ansible-core): "
                                     "its configuration manager answers lookup('config')",
                                     file=src, pointer=ptr))
                continue
            if name in known[kind]:
                continue
            if (kind, name) == ("lookup", "first_found") and ptr.startswith(
                    child(task.pointer, "include_choice")):
                continue  # the compiler found the files; the host picks (executor._choose)
            why = known["refused"][kind].get(name)
            if why is None and ("." not in name or name.startswith(("ansible.builtin.", "ansible.legacy."))):
                unknown.append(PlanError(f"{kind} {name!r} is unknown: the task fails when the host "
                                         "evaluates it, as under ansible-playbook",
                                         f"check the spelling: ansible.builtin's {kind}s, or the "
                                         f"playbook's own {kind}_plugins/", file=src, pointer=ptr))
                continue
            reason = why or _not_in_collections(kind)
            hint = (f"rustle-deploy offers ansible.builtin's {kind}s on the host, except "
                    f"{', '.join(sorted(k for k in known['refused'][kind] if '.' not in k))}")
            if name.startswith(_PROTOMATTER):
                hint = _PROTOMATTER_HINT
            elif not why:
                hint = (f"a collection's {kind} is called by its fully qualified name (NS.COLL.NAME); install "
                        "the collection (ansible-galaxy collection install NS.COLL) where collections_path, "
                        "ANSIBLE_COLLECTIONS_PATH or the playbook's collections/ directory points (docs/plugins.md)")
            out.append(PlanError(f"{kind} {name!r} is not supported by rustle-deploy: {reason}", hint,
                                 file=src, pointer=ptr))
        for test in tree.find_all(nodes.Test):
            tag = test.args[0].value if test.args and isinstance(test.args[0], nodes.Const) else None
            if test.name == _PROTOMATTER + "tagged_with" and isinstance(tag, str) and tag not in _KEPT_TAGS:
                out.append(PlanError(f"test {test.name!r} with the tag {tag!r} is not supported by rustle-deploy: "
                                     "the runtime answers only the TrustedAsTemplate, VaultedValue and Origin tags",
                                     _PROTOMATTER_HINT, file=src, pointer=ptr))
    return out, unknown


_KEPT_TAGS = ("TrustedAsTemplate", "VaultedValue", "Origin")  # the data tags the runtime answers (datatag.py)


def _not_in_collections(kind: str) -> str:
    from rustle_deploy.compiler.ansible_plugins import ansible_available

    if not ansible_available():
        return (f"a collection's {kind}s are found by ansible-core on the controller, and the controller's "
                "Python cannot import ansible")
    return f"no installed collection has this {kind} (ansible-core found none by that name)"


_PROTOMATTER = "ansible._protomatter."
_PROTOMATTER_HINT = ("of ansible-core's data tags the runtime keeps trust alone; docs/playbooks.md "
                     "(\"Data tags\") lists what ansible._protomatter offers on the host")


def handler_topics(handlers: Iterable[Task]) -> set[str]:
    """Every name a notify may use for these handlers, as Ansible matches them."""
    names: set[str] = set()
    for handler in handlers:
        listen = handler.extras.get("listen")
        own = [] if handler.extras.get("unnamed") else [handler.name]
        own += [listen] if isinstance(listen, str) else list(listen or [])
        names.update(own)
        # a role's handler answers to ROLE : NAME too (the role's FQCN or short name), as in Ansible
        role = str(handler.extras.get("role") or "").split("#")[0]
        for prefix in {role, role.rsplit(".", 1)[-1]} if role else ():
            names.update(f"{prefix} : {n}" for n in own)
    return names


def _notify_one(src: str, play: Play, task: Task, index: int, name: str) -> None:
    if name in handler_topics(play.handlers):
        return
    hint = (f"handlers of this play: {_quoted([h.name for h in play.handlers])}"
            if play.handlers else "this play has no handlers")
    raise PlanError(f"no handler named {name!r} in play {play.name!r}", hint,
                    file=src, pointer=child(child(task.pointer, "notify"), index))


def _deployments(plan: Plan, legacy_task_ids: frozenset[str]) -> None:
    known = {t.task_id for p in plan.plays for t in all_tasks(p)}
    for dep in plan.binary_deployments:
        key = "task_ids" if dep.pointer in legacy_task_ids else "tasks"
        for i, task_id in enumerate(dep.task_ids):
            if task_id not in known:
                raise PlanError(f"deployment {dep.deployment_id!r} names unknown task "
                                f"{task_id!r}",
                                "a binary deployment's tasks are task ids of the plays",
                                file=plan.source, pointer=child(child(dep.pointer, key), i))
