"""Decide which tasks run on which host and group hosts that share a target and task list.

Every host gets one artifact holding the whole plan as it applies to that host. Hosts with
the same target and the same applicable tasks share an artifact. A host's own variables do
not travel inside it: they go in that host's run request (``model.own_vars``), so a shared
artifact never shows one host another's secrets and its sha256 does not depend on host
variables. Of the other hosts, the artifact carries only the variables the plan reads through
``hostvars[HOST].NAME``; a use of ``hostvars`` whose variable name cannot be read off the plan
is refused. The compiled ``plan.json`` shape is in docs/artifact.md.

A module the runtime does not implement goes through the module bridge (``bridge/``): it is
resolved once per plan, and each unit records the bridged modules its tasks use
(``BuildUnit.bridged``), which the builder embeds once each.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import CompileError
from ..model import (
    SECRET_VARS,
    Decrypted,
    Host,
    Plan,
    Play,
    Task,
    Undecryptable,
    Unsafe,
    Vaulted,
    is_secret,
    own_vars,
)
from ..phases import Phases, per_call, plan_phases
from ..runtime_index import canonical_module, module_families
from . import assemble
from .ansible_plugins import LocalPlugins, host_plugins, plan_plugins
from .lookups import ControllerLookups, record_task, running, uses_controller_lookups
from .sources import SEARCH_VAR, Embedder, _static_values, static_scopes

if TYPE_CHECKING:
    from ..bridge.lookup import BridgedModule, Resolution

PYZ_TARGET = "py3-none-any"  # a pyz artifact runs on any host with CPython >= 3.8

_TEMPLATED = re.compile(r"{{|{%|{#")

__all__ = ["BuildUnit", "plan_units", "SECRET_VARS", "PYZ_TARGET"]

_EXPRESSION_KEYS = ("changed_when", "failed_when", "until")


@dataclass
class BuildUnit:
    """One artifact to build: its hosts and the exact compiled plan they share."""

    target: str
    binary_name: str
    hosts: list[Host]
    plan_doc: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # sha256 -> local path
    blobs: dict[str, bytes] = field(default_factory=dict)  # sha256 -> bytes made here (assemble)
    families: set[str] = field(default_factory=set)
    needs_jinja: bool = False
    # each host's own variables (model.own_vars): not in plan_doc, so not in a pyz artifact;
    # the native lowering specialises each host's program with them (compiler/native.py)
    host_vars: dict[str, dict[str, Any]] = field(default_factory=dict)
    # whether a variable the tasks may read (host, play, role, extra) calls a controller lookup
    vars_call_controller: bool = False
    # controller lookup results of this unit's compilation (compiler/lookups.py)
    lookup_cache: dict[tuple[str, ...], dict[str, Any]] = field(default_factory=dict)
    # the playbook's and roles' own lookup, filter and test plugins (compiler/ansible_plugins.py)
    plugins: LocalPlugins = field(default_factory=LocalPlugins)
    bridged: dict[str, BridgedModule] = field(default_factory=dict)  # fqcn -> module (bridge/)
    # a template of the plan names ansible_delegated_vars: a task delegated to a host by name
    # keeps that name (``delegated_to``), for the runtime to give it the delegate's variables
    delegated_vars: bool = False

    @property
    def host_names(self) -> list[str]:
        return [h.name for h in self.hosts]


Resolver = Callable[[Sequence[str]], list[Host]]
Selector = Callable[[str], list[Host]]


def plan_units(
    plan: Plan,
    hosts: Sequence[Host],
    *,
    resolve: Resolver,
    select: Selector,
    groups: dict[str, list[str]],
    target: str | None = None,
    inventory_sources: Sequence[str] = (),
) -> list[BuildUnit]:
    """Group ``hosts`` (already limited) into build units.

    ``resolve`` turns plan host names (or group names) into inventory hosts; ``select``
    evaluates an Ansible host pattern (``Host`` conditions).
    """
    from ..bridge.policy import controller_tasks

    plays = [_PlayView(plan, i, play, resolve, select, cut)
             for i, (play, cut) in enumerate(zip(plan.plays, plan_phases(plan, controller_tasks(plan)), strict=True))]
    file_cache: dict[str, tuple[str, str]] = {}  # local path -> (sha256, path)
    resolution = _bridge_resolution(plan, plays)
    plugins = plan_plugins(plan)

    groups_by_key: dict[tuple[Any, ...], list[Host]] = {}
    for host in hosts:
        key = (
            _host_target(host, target, plan),
            tuple((p.index, tuple(p.applicable(host.name))) for p in plays),
        )
        groups_by_key.setdefault(key, []).append(host)

    magic = _magic_vars(plan, inventory_sources, hosts)
    delegated_vars = _reads_delegated_vars(plan)
    inventory_hosts: list[Host] | None = None  # every inventory host, once a unit needs them
    units = []
    for (unit_target, per_play), unit_hosts in groups_by_key.items():
        names = [h.name for h in unit_hosts]
        unit = BuildUnit(
            target=unit_target,
            binary_name=_binary_name(plan, names),
            hosts=unit_hosts,
            plan_doc={},
            host_vars={h.name: own_vars(h) for h in unit_hosts},
            plugins=plugins,
            delegated_vars=delegated_vars,
        )
        unit.vars_call_controller = uses_controller_lookups(
            [plan.extra_vars, list(unit.host_vars.values()),
             [(p.play.vars, p.play.defaults, p.play.roles) for p in plays]], plugins)
        doc_plays = []
        for play_view, (_, task_ids) in zip(plays, per_play, strict=True):
            play_hosts = [n for n in names if n in play_view.host_names]
            if not play_hosts:
                continue
            tasks = [play_view.tasks[t] for t in task_ids]
            play_vars: dict[str, Any] = dict(magic)
            play_vars.update(play_view.play.vars)
            compiled = [_compile_task(plan, play_view, t, unit, file_cache, resolution) for t in tasks]
            if play_view.phases.cut:  # docs/phases.md: what a run's phase selector names
                for task, out in zip(tasks, compiled, strict=True):
                    _mark_phases(task, out, play_view.phases)
            doc_play: dict[str, Any] = {
                "index": play_view.index,  # what a run's play selector names (docs/rollouts.md)
                "name": play_view.play.name,
                "hosts": play_hosts,
                "play_hosts": play_view.host_list,
                "vars": play_vars if magic else play_view.play.vars,
                "tasks": compiled,
                "handlers": [
                    _compile_task(plan, play_view, h, unit, file_cache, resolution)
                    for h in sorted(play_view.play.handlers, key=lambda h: h.execution_order)
                ],
            }
            if play_view.phases.cut:
                doc_play["phases"] = len(play_view.phases.kinds)
                handlers = sorted(play_view.play.handlers, key=lambda h: h.execution_order)
                for handler, out in zip(handlers, doc_play["handlers"], strict=True):
                    if handler.task_id in play_view.phases.handlers:  # a play with a run_once handler
                        out["phase"] = list(play_view.phases.handlers[handler.task_id])
            if play_view.play.force_handlers:
                doc_play["force_handlers"] = True
                if play_view.phases.cut and play_view.phases.forced:  # docs/phases.md "force_handlers"
                    doc_play["forced"] = {str(p): list(e) for p, e in play_view.phases.forced.items()}
            if play_view.play.fact_path:
                doc_play["fact_path"] = play_view.play.fact_path
            if play_view.play.gather_subset is not None:
                doc_play["gather_subset"] = list(play_view.play.gather_subset)
            if play_view.play.gather_timeout is not None:
                doc_play["gather_timeout"] = play_view.play.gather_timeout
            if play_view.play.defaults:
                doc_play["defaults"] = play_view.play.defaults
            if play_view.play.roles:
                doc_play["roles"] = play_view.play.roles
            doc_plays.append(doc_play)
        unit.plan_doc = {
            "format": 1,
            "binary_name": unit.binary_name,
            "check_mode": plan.options.check_mode,
            "diff_mode": plan.options.diff_mode,
            "hosts": {},
            "groups": groups,
            "plays": doc_plays,
        }
        if plan.options.allow_broken_conditionals:
            unit.plan_doc["allow_broken_conditionals"] = True
        if not plan.options.deprecation_warnings:
            unit.plan_doc["deprecation_warnings"] = False
        if plan.options.become_config:  # runtime become.option
            unit.plan_doc["become_config"] = plan.options.become_config
        if plugins.found and any(plugins.found.values()):
            unit.plan_doc["plugins"] = {k: sorted(v) for k, v in plugins.found.items() if v}
        read = _hostvars_read(plan, [doc_plays, list(unit.host_vars.values())])
        every = EVERY_NAME in read
        unit.plan_doc["hosts"] = {
            n: {k: v for k, v in unit.host_vars[n].items() if every or k in read} for n in names
        }
        if read:  # what the plan reads of the other inventory hosts (another play's hosts)
            if inventory_hosts is None:
                inventory_hosts = resolve(["all"])
            others = {h.name: {k: v for k, v in own_vars(h).items() if every or k in read}
                      for h in inventory_hosts if h.name not in unit.plan_doc["hosts"]}
            if others:
                unit.plan_doc["other_hosts"] = others
        if plan.extra_vars:
            unit.plan_doc["extra_vars"] = plan.extra_vars
        if plan.playbook_dir:
            unit.plan_doc["playbook_dir"] = plan.playbook_dir
        if unit.bridged:
            unit.plan_doc["bridge"] = {
                "ansible_version": resolution.ansible_version if resolution else None,
                "internal": dict(resolution.internal) if resolution else {},
                "modules": {fqcn: m.spec() for fqcn, m in sorted(unit.bridged.items())},
            }
            if any(m.style == "action" for m in unit.bridged.values()):
                # what ansible-core on the controller loads for hostvars and delegate_to (bridge/action.py)
                unit.plan_doc["bridge"]["inventory"] = list(inventory_sources)
        if unit.plan_doc.get("plugins"):
            embedded = host_plugins(plugins, _plan_texts(unit))
            if embedded.files:
                unit.plan_doc["plugins"]["files"] = list(embedded.files)
        _withhold_unread_secrets(unit, doc_plays, read)
        if _TEMPLATED.search(str(plan.extra_vars)):
            unit.needs_jinja = True
        if any(_TEMPLATED.search(str((p["vars"], p.get("defaults"), p.get("roles")))) for p in doc_plays):
            unit.needs_jinja = True
        if any(_TEMPLATED.search(str(v)) for v in unit.host_vars.values()):
            unit.needs_jinja = True
        _banners(unit.plan_doc, hosts)
        units.append(unit)
    return units


def _banners(doc: dict[str, Any], hosts: Sequence[Host]) -> None:
    """Give each task whose name is a template the name ansible-playbook's banner shows, rendered
    once with the play's first host's values (``banner``, which every host reports and
    ``ansible_failed_task`` takes: executor._name), where the controller knows them all: a name
    over a registered result or a fact, over an include's item or parameters, a looped task's,
    or one that cannot be rendered (the host shows the error markers and warns) is left to each
    host."""
    by_name = {h.name: h for h in hosts}
    for index, play in enumerate(doc["plays"]):
        first = by_name.get(next(iter(play.get("play_hosts") or ()), ""))
        if first is None or not any(_templated_name(t) for t in play["tasks"]):
            continue
        from .native import NativeUnsupported, _Lowering, run_names

        try:
            lowering = _Lowering(doc, first.name, run_names(doc), {}, own_vars(first))
        except NativeUnsupported:
            continue
        seen = lowering.doc["plays"][index]
        for task, mirror in zip(play["tasks"], seen["tasks"], strict=True):
            _banner(lowering, seen, task, mirror)


def _templated_name(task: dict[str, Any]) -> bool:
    """Whether ``task``'s name, or a name in its block sections (not an include's), is a template."""
    name = task.get("name")
    if isinstance(name, str) and ("{{" in name or "{%" in name):
        return True
    return "include" not in task and any(_templated_name(c) for k in ("block", "rescue", "always")
                                         for c in task.get(k) or ())


def _banner(lowering: Any, play: dict[str, Any], task: dict[str, Any], mirror: dict[str, Any]) -> None:
    """``_banners`` for ``task`` and its block sections; ``mirror``: the task as ``lowering``
    reads it (the runtime's values)."""
    from .native import NativeUnsupported

    name = task.get("name")
    if isinstance(name, str) and ("{{" in name or "{%" in name) and "loop" not in task:
        default = "include" if "block" in task else str(task.get("module") or "")
        try:
            task["banner"] = lowering.name(mirror, lowering.scope(play, mirror), default)
        except NativeUnsupported:
            pass
    if "include" not in task:
        for key in ("block", "rescue", "always"):
            for child, twin in zip(task.get(key) or (), mirror.get(key) or (), strict=True):
                _banner(lowering, play, child, twin)


# a template that may read a variable it does not name: every play variable is read
_READS_ANY_VAR = re.compile(r"\b(?:vars|varnames|hostvars)\b")
# what ansible-core's sudo and su become plugins read as ``become_pass``
BECOME_PASS_VARS = ("ansible_become_password", "ansible_become_pass", "ansible_sudo_pass", "ansible_su_pass")
WITHHELD = ("withheld from the artifact: no template of this plan names this vault-encrypted "
            "variable (rustle-deploy ships a decrypted vault value only to a plan that reads it)")


def _withhold_unread_secrets(unit: BuildUnit, doc_plays: list[dict[str, Any]], read: set[str]) -> None:
    """Leave out of ``unit``'s plan.json the decrypted vault values (``!vault`` text and what a
    whole encrypted file held: :func:`~rustle_deploy.model.is_secret`) of variables no template
    or expression of the artifact names: play and block/task ``vars``, vars files, role
    ``vars``/``defaults``/parameters, include_vars files, extra vars. They stay on the
    controller, and a read the compiler could not see fails with :data:`WITHHELD`. A plan that
    may read variables by a computed name (``vars[...]``, ``lookup('vars', ...)``, ``varnames``,
    ``hostvars``) keeps those. Each layer changed is a copy: the plan's own stays whole."""
    doc = unit.plan_doc
    if EVERY_NAME in read:
        _refuse_other_hosts_secrets(unit, read)
    layers: list[tuple[Any, Any, str | None]] = []  # (owner, key or index, include_vars name)
    as_names: list[str] = []  # each include_vars name=NAME: a text that names NAME once more
    for play in doc_plays:
        layers += [(play, "vars", None), (play, "defaults", None)]
        for role in (play.get("roles") or {}).values():
            layers += [(role, k, None) for k in ("vars", "defaults", "params")]
        for task in _all_tasks([*play.get("tasks", ()), *play.get("handlers", ())]):
            layers += [(task, "vars", None), (task, "params", None)]
            args = task.get("args")
            name = args.get("name") if isinstance(args, dict) and ("vars_data" in task or "vars_dir" in task) else None
            name = name if isinstance(name, str) and not _TEMPLATED.search(name) else None
            if name is not None:
                as_names.append(name)
            for file in task.get("vars_data") or {}:
                layers.append((task["vars_data"], file, name))
            for entry in (task.get("vars_dir") or {}).get("files") or ():
                layers.append((entry, 1, name))  # [path, vars]
    if doc.get("extra_vars"):
        layers.append((doc, "extra_vars", None))
    layers = [(o, k, n) for o, k, n in layers
              if isinstance(o.get(k) if isinstance(o, dict) else o[k], dict) and is_secret(o[k])]
    if not layers:
        return
    texts = [*_strings_in([doc_plays, doc.get("extra_vars"), doc.get("other_hosts")]),
             *_strings_in(list(unit.host_vars.values())), *_plan_texts(unit, with_doc=False)]
    if any(_READS_ANY_VAR.search(t) for t in texts):
        return
    if _may_become(unit, doc_plays):  # the runtime reads them for a task that becomes (runtime/become.py)
        texts.append(" ".join(BECOME_PASS_VARS))
    unread = _unnamed(texts, as_names)
    for owner, key, as_name in layers:
        if as_name is None:
            owner[key] = _without(owner[key], unread, WITHHELD)
        elif unread(as_name):  # include_vars name=NAME: the file's variables are NAME's
            owner[key] = {k: Undecryptable("", WITHHELD) for k in owner[key]}


_BECOME_VAR = re.compile(r"\bansible_become\b")


def _may_become(unit: BuildUnit, doc_plays: list[dict[str, Any]]) -> bool:
    """Whether a task of ``unit``'s artifact may run as another user, and so read a become
    password variable: a task whose ``become`` keyword is not false, or an ``ansible_become``
    variable anywhere (the hosts' variables, any vars of the plan, a set_fact or include_vars
    that may set it, extra vars), as the runtime decides per task (runtime/context.py)."""
    for play in doc_plays:
        for task in _all_tasks([*play.get("tasks", ()), *play.get("handlers", ())]):
            if task.get("become") not in (None, False):
                return True
    return any(_BECOME_VAR.search(json.dumps(part, default=str))
               for part in (doc_plays, unit.plan_doc.get("extra_vars"), unit.host_vars))


def _refuse_other_hosts_secrets(unit: BuildUnit, read: set[str]) -> None:
    """A whole ``hostvars`` read (``read`` holds EVERY_NAME) would carry every inventory host's
    variables in the shared artifact: a decrypted vault value of a host no template names is
    refused (a host's own values reach it in its run request, so a one-host artifact drops its
    own); a named one (``hostvars[host].NAME``) travels as other named values do."""
    doc = unit.plan_doc
    named = {n for n in read if n not in (EVERY_NAME, ANY_HOST)}
    for key in ("hosts", "other_hosts"):
        for host, hv in list((doc.get(key) or {}).items()):
            secret = sorted(k for k, v in hv.items() if k not in named and is_secret(v))
            if not secret:
                continue
            if key == "hosts" and len(doc["hosts"]) == 1:  # the host's own: its run request has them
                doc["hosts"] = {host: {k: v for k, v in hv.items() if k not in secret}}
                continue
            readers = ", ".join(n for n in doc["hosts"] if n != host)
            raise CompileError(
                f"a template of this plan reads hostvars as a whole ({{{{ hostvars }}}}, hostvars[host] "
                f"without a variable name, or a computed name), and the artifact of {readers} would then "
                f"carry host '{host}''s decrypted vault-encrypted variable '{secret[0]}'"
                + (f" (and {len(secret) - 1} more)" if len(secret) > 1 else ""),
                "rustle-deploy ships another host's vault value only where a template names it: read "
                "hostvars[host].NAME (or hostvars[host]['NAME']) for the variables you need")


def _unnamed(texts: list[str], defined: list[str]) -> Callable[[str], bool]:
    """Whether no text of ``texts`` names a variable (as a word), but the ``defined`` ones
    (an include_vars ``name:``, one text each)."""
    cache: dict[str, bool] = {}

    def unread(name: str) -> bool:
        if name not in cache:
            pattern = re.compile(rf"\b{re.escape(name)}\b")
            cache[name] = sum(1 for t in texts if pattern.search(t)) <= defined.count(name)
        return cache[name]
    return unread


def _without(layer: dict[str, Any], drop: Callable[[str], bool], why: str) -> dict[str, Any]:
    """``layer`` with each secret value whose name ``drop`` says replaced by a marker that fails
    when read with ``why`` (``layer`` itself when none is)."""
    if not any(is_secret(v) and drop(k) for k, v in layer.items()):
        return layer
    return {k: Undecryptable("", why) if is_secret(v) and drop(k) else v for k, v in layer.items()}


def _all_tasks(tasks: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for task in tasks:
        yield task
        for key in ("block", "rescue", "always"):
            yield from _all_tasks(task.get(key) or ())


def _strings_in(value: Any) -> Iterator[str]:
    """The strings of ``value`` (dict values, not keys), but decrypted vault text (what a whole
    encrypted file held only when it is a template: it may name other variables)."""
    if isinstance(value, str):
        if not isinstance(value, Vaulted) and not (isinstance(value, Decrypted) and not _TEMPLATED.search(value)):
            yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings_in(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings_in(v)


def _plan_texts(unit: BuildUnit, with_doc: bool = True) -> Iterator[str]:
    """What the templates of ``unit``'s artifact may be: its compiled plan (but the plugin
    table), its hosts' variables and the text of each file it embeds (a template's source)."""
    if with_doc:
        yield json.dumps({k: v for k, v in unit.plan_doc.items() if k != "plugins"}, default=str)
        yield json.dumps(unit.host_vars, default=str)
    for digest, path in unit.files.items():
        if digest in unit.blobs:  # assembled, or a vault file decrypted
            yield unit.blobs[digest].decode("utf-8", "replace")
            continue
        try:
            if os.path.getsize(path) <= 1 << 20:
                with open(path, encoding="utf-8", errors="replace") as fh:
                    yield fh.read()
        except OSError:
            continue


def _bridge_resolution(plan: Plan, plays: list[_PlayView]) -> Resolution | None:
    """One lookup for every module of the plan that no built-in implements (None: there are none)."""
    tasks = [t for p in plays for top in (*p.tasks.values(), *p.play.handlers) for t in top.walk()
             if not t.is_block and canonical_module(t.module) is None]
    if not tasks:
        return None
    from ..bridge.policy import unresolved

    return unresolved(plan, tasks)


def _magic_vars(plan: Plan, inventory_sources: Sequence[str] = (), hosts: Sequence[Host] = ()) -> dict[str, Any]:
    """Ansible's controller-side magic variables that the plan or the hosts' variables use
    (``ansible_python_interpreter="{{ ansible_playbook_python }}"`` in an inventory; ``playbook_dir``,
    ``ansible_search_path``: the plan's directory, as the playbook's would be;
    ``ansible_playbook_python``: the controller's Python, which runs rustle-deploy;
    ``ansible_inventory_sources``: the inventory's absolute paths)."""
    text = repr(plan.plays) + repr([h.vars for h in hosts])
    magic = {"playbook_dir": plan.base_dir, "ansible_search_path": [plan.base_dir],
             "ansible_playbook_python": sys.executable, "ansible_inventory_sources": list(inventory_sources)}
    return {k: v for k, v in magic.items() if k in text}



# not an attribute (x._meta.hostvars); ansible_delegated_vars[H] is H's variables too
_HOSTVARS = re.compile(r"(?<![.\w])(?:hostvars|ansible_delegated_vars)\b")
DELEGATED_VARS = "ansible_delegated_vars"
_JINJA_SEGMENT = re.compile(r"\{\{(.*?)\}\}|\{%(.*?)%\}", re.S)
_NAME = re.compile(r"\s*(?:\.\s*([A-Za-z_]\w*)|\[\s*(?:'([^']*)'|\"([^\"]*)\")\s*\])")
_EXISTS = re.compile(r"\s+is\s+(?:not\s+)?(?:defined|undefined)\b")
# what _hostvars_read adds for ``hostvars[H] is defined``: every host's entry, no variable
ANY_HOST = ""
EVERY_NAME = "\0every"  # hostvars read as a whole: every variable of every host
# bare Jinja expressions (no braces): a ``hostvars`` there is a use, not prose
_BARE_EXPRESSIONS = frozenset({"when", "skip_when", "changed_when", "failed_when", "until", "that", "var",
                               "loop"})


def _hostvars_read(plan: Plan, docs: list[Any]) -> set[str]:
    """The variable names the plan reads of a host through ``hostvars``: what the artifact
    carries of each host besides that host's own run request.

    ``hostvars[H].NAME``, ``hostvars[H]['NAME']`` and ``hostvars.H.NAME`` name NAME;
    ``hostvars[inventory_hostname]`` alone is the host's own scope; ``hostvars[H] is defined``
    (or ``is not defined``, ``is undefined``) names no variable (ANY_HOST). Any other use (the whole
    ``hostvars``, a computed variable name) cannot say which variables it needs: EVERY_NAME, and
    the artifact carries every variable of every inventory host (each host of it can read the
    others', as the controller can in Ansible: docs/artifact.md, "Host variables").
    ``ansible_delegated_vars`` (the delegate's variables in a delegated task) is read as
    ``hostvars`` is; ``ansible_delegated_vars is defined`` names no variable.
    """
    names: set[str] = set()

    def scan(text: str, bare: bool) -> None:
        for m in _HOSTVARS.finditer(text):
            end = _subscript_end(text, m.end())
            if end is not None:
                if re.fullmatch(r"\[\s*inventory_hostname\s*\]", text[m.end():end].strip()):
                    continue  # the host's own scope: its run request has every variable
                got = _NAME.match(text, end)
                if got:
                    names.add(next(g for g in got.groups() if g is not None))
                    continue
                if _EXISTS.match(text, end):  # hostvars[H] is defined: whether H is a host
                    names.add(ANY_HOST)
                    continue
            elif not (bare or _TEMPLATED.search(text)):
                continue  # prose, such as a task name
            elif m.group() == DELEGATED_VARS and _EXISTS.match(text, m.end()):
                names.add(ANY_HOST)  # whether the task is delegated
                continue
            names.add(EVERY_NAME)

    def walk(value: Any, bare: bool) -> None:
        if isinstance(value, str):
            if "hostvars" not in value and DELEGATED_VARS not in value:
                return
            if bare:
                scan(value, True)
            else:  # only what Jinja evaluates: a path such as '{{ out }}/hostvars.txt' is text
                for match in _JINJA_SEGMENT.finditer(value):
                    segment = match.group(1) or match.group(2) or ""
                    if "hostvars" in segment or DELEGATED_VARS in segment:
                        scan(segment, True)
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, bare or k in _BARE_EXPRESSIONS)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, bare)

    walk(docs, False)
    return names


def plan_hostvars_read(plan: Plan) -> set[str]:
    """The variable names the plan's tasks and handlers read of hosts through ``hostvars``
    (``_hostvars_read``'s names, EVERY_NAME and ANY_HOST included)."""
    docs = [[(t.args, [c.value for c in t.conditions], t.extras) for top in [*plan.play_tasks(play), *play.handlers]
             for t in top.walk()] for play in plan.plays]
    return _hostvars_read(plan, docs)


def _reads_delegated_vars(plan: Plan) -> bool:
    """Whether a task, handler, play, role or extra variable of ``plan`` names
    ``ansible_delegated_vars`` (the variables of the host a task is delegated to)."""
    tasks = [(t.args, [c.value for c in t.conditions], t.extras) for play in plan.plays
             for top in [*plan.play_tasks(play), *play.handlers] for t in top.walk()]
    plays = [(p.vars, p.defaults, p.roles) for p in plan.plays]
    return any(DELEGATED_VARS in text for text in _strings_in([tasks, plays, plan.extra_vars]))


def _subscript_end(text: str, pos: int) -> int | None:
    """The index after ``[HOST]`` or ``.HOST`` at ``pos`` (brackets balanced), else None."""
    i = pos
    while i < len(text) and text[i].isspace():
        i += 1
    if i < len(text) and text[i] == ".":
        m = re.compile(r"\.\s*[A-Za-z_][\w-]*").match(text, i)
        return m.end() if m else None
    if i >= len(text) or text[i] != "[":
        return None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "[":
            depth += 1
        elif text[j] == "]":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _host_target(host: Host, override: str | None, plan: Plan) -> str:
    if override:
        return override
    declared = host.vars.get("rustle_target")
    return str(declared) if declared else PYZ_TARGET


def _binary_name(plan: Plan, host_names: list[str]) -> str:
    """The seed's ``rustle-runner-<deployment_id>`` when one deployment covers these hosts."""
    for deployment in plan.binary_deployments:
        if set(host_names) <= set(deployment.target_hosts) and deployment.binary_name:
            return _safe_name(deployment.binary_name)
    first = plan.plays[0].name if plan.plays else "plan"
    return "rustle-runner-" + (_safe_name(first.lower()) or "plan")


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:80]


class _PlayView:
    """A play with its tasks de-duplicated and each task's hosts resolved."""

    def __init__(self, plan: Plan, index: int, play: Play, resolve: Resolver, select: Selector,
                 phases: Phases):
        self.index = index
        self.play = play
        self.play_id = play.play_id or f"play-{index}"
        declared = list(play.hosts) or list(plan.hosts)
        ordered = plan.play_tasks(play)
        if not declared:  # the planner sometimes leaves play hosts empty: use the tasks'
            declared = sorted({h for t in ordered for h in t.hosts})
        self.host_list = [h.name for h in resolve(declared)] if declared else []
        self.host_names = set(self.host_list)
        self.tasks: dict[str, Task] = {t.task_id: t for t in ordered}
        self.order = [t.task_id for t in ordered]
        self.phases = phases
        self._hosts_of: dict[str, set[str]] = {}
        # Rolling plans repeat each task once per host slice, same id, ``hosts`` narrowed to
        # that slice: a task runs on the union of its copies' hosts.
        copy_hosts: dict[str, set[str]] = {}
        for batch in play.batches:
            names = {h.name for h in resolve(batch.hosts)} if batch.hosts else self.host_names
            for task in batch.tasks:
                mine = names & {h.name for h in resolve(task.hosts)} if task.hosts else names
                copy_hosts.setdefault(task.task_id, set()).update(mine)
        for task_id, task in self.tasks.items():
            names = set(copy_hosts.get(task_id, self.host_names))
            for cond in task.conditions:
                if cond.kind == "Host":
                    names &= {h.name for h in select(str(cond.value))}
                elif cond.kind == "Only":
                    names &= {h.name for h in resolve(list(cond.value))}
            self._hosts_of[task_id] = names & self.host_names

    def applicable(self, host: str) -> list[str]:
        if host not in self.host_names:
            return []
        return [t for t in self.order if host in self._hosts_of[t]]


def _compile_task(
    plan: Plan,
    play: _PlayView,
    task: Task,
    unit: BuildUnit,
    file_cache: dict[str, tuple[str, str]],
    resolution: Resolution | None,
) -> dict[str, Any]:
    if task.is_block:
        return _compile_block(plan, play, task, unit, file_cache, resolution)
    assembled_data = None
    if assemble.is_local(task):  # assembled here, copied there (compiler/assemble.py)
        task, assembled_data = assemble.assembled(plan, task)
    module = canonical_module(task.module)
    bridged = None
    if per_call(task):  # a host each call names: ansible-core on the controller (bridge/action.py)
        from ..bridge.policy import delegated_per_call

        bridged = delegated_per_call(plan, task)
        unit.bridged[bridged.fqcn] = bridged
        unit.families.add("bridge")
        module = task.module
    elif module is None:  # not built in: the module bridge runs it (bridge/)
        from ..bridge.policy import bridged as bridged_module

        assert resolution is not None
        bridged = bridged_module(plan, task, resolution)
        unit.bridged[bridged.fqcn] = bridged
        unit.families.add("bridge")
        module = task.module
    else:
        unit.families.add(module_families()[module])
    out: dict[str, Any] = {
        "id": f"{play.play_id}/{task.task_id}",
        "name": task.name or module,
        "module": module,
        "args": task.args,
        "hosts": None,
        "when": [],
        "tags": list(task.tags),
        "notify": list(task.notify),
    }
    skip_when: list[str] = []
    for cond in task.conditions:
        if cond.kind == "When":
            out["when"].append(_when(cond.value))
        elif cond.kind == "Skip":
            skip_when.append(str(cond.value))
        elif cond.kind == "CheckMode":
            out["check_mode"] = bool(cond.value)
        elif cond.kind in ("Tag", "SkipTag"):
            out["tags"] = sorted(set(out["tags"]) | set(cond.value))
    if skip_when:
        out["skip_when"] = skip_when
    if bridged is not None:
        out["bridge"] = bridged.fqcn
        if bridged.style == "action":
            # where its action plugin looks for files (ActionBase._find_needle): the role's
            # directory first, then the playbook's, as Task.get_search_path gives them
            role = play.play.roles.get(str(task.extras.get("role"))) if task.extras.get("role") else None
            role_path = role.get("path") if isinstance(role, Mapping) else None
            out["search_path"] = [p for p in (role_path, plan.playbook_dir or plan.base_dir) if p]
    for key, value in task.extras.items():
        if key == "delegate_to" and per_call(task):
            out[key] = value  # rendered by ansible-core for each call (bridge/action.py)
            continue
        if key == "delegate_to" and unit.delegated_vars and isinstance(value, str):
            out["delegated_to"] = value  # executor: ansible_delegated_vars
            continue
        if key in ("delegate_to", "any_errors_fatal", "throttle", "collections", "connection_vars", "delegate_implicit"):
            # delegation: the plan parser only lets through delegation to the host itself;
            # the others are the controller's (rollout.py; throttle is 0 or refused);
            # collections only served to find a bridged module
            continue
        if key == "check_mode" and "check_mode" in out:
            continue  # an explicit CheckMode condition wins
        if key == "action_ds" and (bridged is None or bridged.style != "action"):
            continue  # only ansible-core on the controller reads it (bridge/action.py)
        out[key] = value
    embedder = Embedder(plan, unit, file_cache)
    scopes: list[Any] = []
    runner = None
    if unit.vars_call_controller or module == "template" or uses_controller_lookups(
            [task.args, task.extras, [c.value for c in task.conditions]], unit.plugins):
        # a template file may call them too (Embedder.embed runs its literal calls)
        runner = ControllerLookups(plan.base_dir, every_template=unit.vars_call_controller,
                                   cache=unit.lookup_cache, plugins=unit.plugins)
    with running(runner):
        if runner is not None or (module in ("copy", "template")
                                  and _TEMPLATED.search(str(task.args.get("src", "")))):
            host_vars = [dict(unit.host_vars.get(h.name) or own_vars(h), inventory_hostname=h.name)
                         for h in unit.hosts]
            magic = {"playbook_dir": plan.playbook_dir or plan.base_dir}
            scopes = static_scopes(host_vars, {**magic, **(play.play.vars or {})}, task, play.play,
                                   plan.extra_vars)
        if assembled_data is not None:
            sha = assemble.digest(assembled_data)
            unit.files[sha] = assemble.NAME
            unit.blobs[sha] = assembled_data
            out["files"] = {assemble.NAME: sha}
            out["assembled"] = True  # the copy stands for assemble (its diff is one, not a list)
            embedder.embed(replace(task, args={k: v for k, v in task.args.items() if k != "src"}),
                           module, out, scopes, runner)
        else:
            embedder.embed(task, module, out, scopes, runner)
    if bridged is not None and bridged.action == "ansible.builtin.uri":
        _embed_uploads(plan, play, task, embedder, out)
    if module == "fetch":
        known = {h.name: dict(unit.host_vars.get(h.name) or own_vars(h), inventory_hostname=h.name,
                              inventory_hostname_short=h.name.split(".")[0]) for h in unit.hosts}
        out["fetch"] = fetch_targets(plan, task, known, {"playbook_dir": plan.playbook_dir or plan.base_dir,
                                                         **(play.play.vars or {})})
    if (
        out["when"]
        or skip_when
        or module in ("template", "assert")
        or any(k in out for k in _EXPRESSION_KEYS)
        or isinstance(out.get("loop"), str)
        or _TEMPLATED.search(str(out))  # args, loop items, vars, environment, become_user ...
        or (module == "debug" and "var" in task.args)
    ):
        unit.needs_jinja = True
    return out


def _embed_uploads(plan: Plan, play: _PlayView, task: Task, embedder: Embedder, out: dict[str, Any]) -> None:
    """Embed the controller files uri's action plugin would upload for ``task`` (its ``src``, or its
    form-multipart body's files: bridge/policy.py), under their names as written: the host writes
    each into the task's temporary directory and gives the module that path (modules/bridge.py)."""
    from ..bridge.policy import upload_file, uploads
    from ..errors import PlanError

    names = uploads(task.args)
    if not names:
        return
    role = play.play.roles.get(str(task.extras.get("role"))) if task.extras.get("role") else None
    role_path = role.get("path") if isinstance(role, Mapping) else None
    search = [p for p in (role_path, plan.playbook_dir or plan.base_dir) if p]
    where = "src" if task.args.get("src") else "body"
    for name in names:
        path = upload_file(str(name), search)
        if path is None:
            raise PlanError(f"uri in task {task.name!r}: could not find {name!r} to upload; tried: "
                            + ", ".join(os.path.join(d, sub, str(name)) for d in search for sub in ("files", "")),
                            "put it in the role's files/ directory or in files/ beside the playbook",
                            file=plan.source, pointer=f"{task.pointer}/args/{where}")
        out.setdefault("files", {})[str(name)] = embedder.digest(path, task)


def fetch_targets(plan: Plan, task: Task, host_vars: dict[str, dict[str, Any]],
                  play_vars: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Where ``fetch`` writes each host's file on the controller, decided here and never by the
    host (as ansible-core's fetch action: ``dest/HOST/SRC``, or ``dest`` itself with ``flat``,
    relative to the playbook's directory), with the checksum of what is there now: the host
    compares and sends the bytes back only when they differ. A path outside ``dest/HOST`` is
    refused; ``src`` and ``dest`` must be known now: written out, or templates of what the
    controller knows of each host (``inventory_hostname``, inventory and play variables)."""
    import hashlib
    import os

    from ..errors import PlanError

    src_arg, dest_arg = task.args.get("src"), task.args.get("dest")
    if not isinstance(src_arg, str) or not isinstance(dest_arg, str):
        return {}  # the runtime's fetch says what is missing, as Ansible's does
    given = {"src": src_arg, "dest": dest_arg}
    flat = str(task.args.get("flat", False)).strip().lower() in ("1", "true", "yes", "on", "y", "t")
    base = plan.playbook_dir or plan.base_dir
    out: dict[str, dict[str, Any]] = {}
    for host, known in host_vars.items():
        scopes = static_scopes([known], play_vars, task)
        values: dict[str, str] = {}
        for key, value in given.items():
            rendered = {value} if not _TEMPLATED.search(value) else set(_static_values(value, scopes))
            if len(rendered) != 1 or len(scopes) != 1 and _TEMPLATED.search(value):
                raise PlanError(f"fetch in task {task.name!r}: {key} {value!r} is a template over what only the "
                                "host knows" + (" or over loop items" if len(scopes) > 1 else ""),
                                "the controller decides where each host's file goes before the run: use "
                                "inventory or play variables (dest/<inventory_hostname>/src is added per host)",
                                file=plan.source, pointer=f"{task.pointer}/args/{key}")
            values[key] = rendered.pop()
        src, dest = values["src"], values["dest"]
        target: dict[str, Any] = {}
        if flat:
            path = os.path.join(base, os.path.expanduser(dest))
            if os.path.isdir(path) and not dest.endswith("/"):
                target["error"] = ("dest is an existing directory, use a trailing slash if you want to fetch "
                                   "src into that directory")
            if dest.endswith("/"):
                path = os.path.join(path, os.path.basename(src))
            path = os.path.normpath(path)
        else:
            root = os.path.normpath(os.path.join(base, os.path.expanduser(dest), host))
            path = os.path.normpath(os.path.join(root, src.lstrip("/")))
            if not path.startswith(root + os.sep):
                raise PlanError(f"fetch in task {task.name!r}: src {src!r} would be written outside {root}",
                                "name the file on the host without '..'", file=plan.source,
                                pointer=f"{task.pointer}/args/src")
        target["dest"] = path
        try:
            with open(path, "rb") as fh:
                target["checksum"] = hashlib.sha1(fh.read()).hexdigest()  # noqa: S324 (Ansible's checksum)
        except OSError:
            target["checksum"] = None
        out[host] = target
    return out


def _when(value: Any) -> Any:
    """A When condition for the runtime: its text (``!unsafe`` text stays Unsafe, which the
    host never evaluates), or a number, which the host refuses as ansible-core 2.19 does."""
    if isinstance(value, Unsafe) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    return str(value)


def _mark_phases(task: Task, out: dict[str, Any], phases: Phases) -> None:
    """Give a compiled top-level task its phase; a block cut inside (``phases.last``) its last
    phase too, and each of its tasks its own (docs/phases.md "Blocks cut into phases")."""
    out["phase"] = phases.of[task.task_id]
    if task.task_id not in phases.last:
        return
    out["last_phase"] = phases.last[task.task_id]
    for key, children in (("block", task.block or ()), ("rescue", task.rescue), ("always", task.always)):
        for child, compiled in zip(children, out.get(key) or [], strict=True):
            _mark_phases(child, compiled, phases)


def _compile_block(
    plan: Plan,
    play: _PlayView,
    task: Task,
    unit: BuildUnit,
    file_cache: dict[str, tuple[str, str]],
    resolution: Resolution | None,
) -> dict[str, Any]:
    """A block: its lists compiled, its own keywords (applied once, when it is reached) kept."""
    assert task.block is not None
    out: dict[str, Any] = {"id": f"{play.play_id}/{task.task_id}", "name": task.name, "hosts": None,
                           "when": [_when(c.value) for c in task.conditions if c.kind == "When"],
                           "tags": list(task.tags)}
    for key, value in task.extras.items():
        if key not in ("delegate_to", "connection_vars"):
            out[key] = value
    if "include_items" in out:  # the other items' includes, by the ids the host knows them by
        out["include_items"] = [f"{play.play_id}/{i}" for i in out["include_items"]]
    if "include_item" in out:
        out["include_item"] = f"{play.play_id}/{out['include_item']}"
    if "include_slots" in out:  # each host's own
        out["include_slots"] = {h.name: out["include_slots"].get(h.name) for h in unit.hosts}
    looped = {k: task.extras[k] for k in ("loop", "vars") if k in task.extras}
    if "loop" in looped and uses_controller_lookups(looped["loop"], unit.plugins):
        # an include's loop over a controller lookup (with_first_found): run and recorded here,
        # as for a task (Embedder.embed), for the host to find when it reaches the include
        runner = ControllerLookups(plan.base_dir, cache=unit.lookup_cache, plugins=unit.plugins)
        with running(runner):
            host_vars = [dict(unit.host_vars.get(h.name) or own_vars(h), inventory_hostname=h.name)
                         for h in unit.hosts]
            scopes = static_scopes(host_vars, {"playbook_dir": plan.playbook_dir or plan.base_dir,
                                               **(play.play.vars or {})}, task, play.play, plan.extra_vars)
            record_task(runner, [looped["loop"]], [], scopes)
        if runner.recorded:
            own = dict(out.get("vars") or {})
            own[SEARCH_VAR] = dict(own.get(SEARCH_VAR) or {}, lookups=dict(runner.recorded))
            out["vars"] = own
    for key, tasks in (("block", task.block), ("rescue", task.rescue), ("always", task.always)):
        if tasks or key == "block":
            out[key] = [_compile_task(plan, play, t, unit, file_cache, resolution) for t in tasks]
    if (out["when"] or isinstance(out.get("loop"), str) or "include_choice" in out
            or _TEMPLATED.search(str(out.get("params", "")))):
        unit.needs_jinja = True
    return out

