"""The controller pipeline behind the command line, one method per mode.

inventory -> plan (a rustle-plan document, or a playbook through ``playbook/``) -> compiler
-> deploy -> state -> report. Everything up to the fan-out raises (exit 2, nothing touched);
after it, each host's failure is data in its outcome.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .ansible_cfg import AnsibleConfig, load_ansible_config
from .errors import PlanError, RustleError, UsageError
from .inventory import absolute_sources, check_remote_dirs, inventory_sources
from .model import Host, Plan, RunnerSpec
from .phases import delegate, refreshes
from .report import Reporter, dump_json, visible
from .settings import Settings, check_flags, load_settings
from .transport.options import check_connections, explicit_port

if TYPE_CHECKING:  # the front end (inventory parsers, plan) is imported where an input is read
    from collections.abc import Callable

    from .compiler.build import Artifact
    from .compiler.runner import RunnerBinary
    from .compiler.units import BuildUnit
    from .inventory import Inventory
    from .playbook import Compiled
    from .playbook.compile import VarPrompt
    from .rollout import Schedule
    from .state import Platform, RunnerFailure
    from .tracing import Trace
    from .transport.early import EarlyStarts

# Modes that read the input and print something about it; they touch no host.
LIST_MODES = ("emit_plan", "syntax_check", "list_tasks", "list_hosts", "list_tags")
# what the schedule decides in the options (the run cache stores it)
_SCHEDULED = ("format_", "pyz_because")

@dataclass(frozen=True)
class Part:
    """Plays compiled while the run goes on (after add_host/group_by): what runs next."""

    plan: Plan
    hosts: list[Host]
    artifacts: list[Artifact]
    schedule: Schedule


@dataclass
class Session:
    opts: dict[str, Any]
    settings: Settings
    json_out: bool
    reporter: Reporter
    _runners: dict[str, RunnerBinary] = field(default_factory=dict)  # by target
    _no_runner: dict[str, RunnerFailure] = field(default_factory=dict)  # auto: hosts that failed a runner
    _platforms: dict[str, Platform] = field(default_factory=dict)  # auto: the machine each host last reported
    _target_from: dict[str, str] = field(default_factory=dict)  # auto: where a host's runner target came from
    _no_runner_for: dict[str, str] = field(default_factory=dict)  # auto: targets without a runner, and why
    _auto_choice: dict[str, tuple[RunnerBinary | None, str]] = field(default_factory=dict)  # auto_runner's
    _auto_units: dict[str, BuildUnit] = field(default_factory=dict)  # auto: a native host's unit, for pyz_fallback
    compiled: Compiled | None = None  # when the input was a playbook
    extra_vars: dict[str, Any] | None = None
    ansible_cfg: AnsibleConfig | None = None
    trace: Trace | None = None  # OpenTelemetry spans, when OTEL_* asks for them (tracing.py)
    delegates: dict[str, Host] = field(default_factory=dict)  # hosts tasks are delegated to, by name
    # a playbook run whose plays after add_host/group_by are compiled once that has run
    # (next_part): its path, the inventory as loaded, the compile options, its text (stdin)
    later: tuple[str, Inventory, Any, str | None] | None = None
    part_start: int = 0  # the plan index of the first play the last compiled part added
    refreshed: Inventory | None = None  # the inventory read again after meta: refresh_inventory

    def refresh_inventory(self) -> Inventory:
        """Read the inventory again (``meta: refresh_inventory`` ran): the plays compiled after
        this part are chosen over it (next_part)."""
        self.refreshed = self.inventory()
        return self.refreshed

    @classmethod
    def from_options(cls, opts: dict[str, Any]) -> Session:
        modes = [m for m in ("compile_only", "deploy_only", "cleanup", "dry_run", "list_deployments", "list_inventory",
                             "list_modules", *LIST_MODES) if opts.get(m)]
        for m in ("rollback", "promote"):
            if opts.get(m):
                modes.append(m)
        if "cleanup" in modes:  # --cleanup --dry-run: the cleanup says what it would do
            modes = [m for m in modes if m != "dry_run"]
        if len(modes) > 1:
            raise UsageError(
                "these options cannot be combined: " + ", ".join("--" + m.replace("_", "-") for m in modes),
                "choose one mode per command",
            )
        mode = modes[0] if modes else "deploy"
        _check_flags(opts, mode)
        if opts.get("incremental") and opts.get("rebuild"):
            raise UsageError("--incremental and --rebuild contradict each other", "pass one of them")
        check_flags(opts)
        # -i may be repeated (the sources are read in order and merged, as ansible-playbook
        # does); a history record made before that keeps one source as a string
        opts["inventory"] = inventory_sources(opts.get("inventory")) or None
        acfg = load_ansible_config()
        if mode in _READ | _HOSTS | {"list_inventory"}:
            if not opts.get("inventory") and acfg.get("inventory"):
                opts["inventory"] = list(acfg.get("inventory"))
            opts["user"] = opts.get("user") or acfg.get("remote_user")
            opts["private_key"] = opts.get("private_key") or acfg.get("private_key_file")
        settings = load_settings(
            opts.get("config"),
            overrides={
                "cache_dir": Path(opts["cache_dir"]) if opts.get("cache_dir") else None,  # load_settings expands ~
                "output_dir": Path(opts["output_dir"]) if opts.get("output_dir") else None,
                "parallel": opts.get("parallel"),
                "timeout": opts.get("timeout"),
                "verify": True if opts.get("verify") else None,
                "target": opts.get("target"),
                "ssh_client": opts.get("ssh_client"),
                "notify": _notify_urls(opts.get("notify")),
            },
        )
        opts["format_"] = opts.get("format_") or settings.artifact_format
        if opts["format_"] == "hybrid":  # the native runner, the host's Python for what does not lower
            opts["format_"], opts["hybrid"] = "native", True
        _check_format(opts, mode)
        listing = any(opts.get(m) for m in LIST_MODES)  # printouts for people, as ansible-playbook's
        output = opts.get("output") or ("text" if sys.stdout.isatty() or listing else "json")
        json_out = output == "json"
        stream = sys.stderr if json_out else sys.stdout
        reporter = Reporter(stream=stream, verbosity=opts.get("verbose") or 0, diff=bool(opts.get("diff")),
                            deprecations=acfg.get("deprecation_warnings") is not False)
        if settings.parallel is None and acfg.get("forks"):
            settings = replace(settings, parallel=acfg.get("forks"))
        if acfg.get("roles_path"):
            settings = replace(settings, roles_path=acfg.get("roles_path"))
        for note in settings.notes() + (acfg.notes() if opts.get("verbose") else []):
            print(f"note: {visible(note)}", file=sys.stderr)
        if opts.get("ask_become_pass"):
            opts["become_password"] = _ask_become_password()
        from . import vault

        vault.use_secrets(_vault_secrets(opts, acfg))
        from . import bridge

        bridge.CACHE_DIR = settings.cache_dir.expanduser() / "bridge"
        return cls(opts, settings, json_out, reporter, ansible_cfg=acfg)

    # -- inputs ----------------------------------------------------------------------------
    def inventory(self) -> Inventory:
        from .inventory import implicit_localhost, load_inventory

        sources = self.opts.get("inventory")
        inv = load_inventory(sources) if sources else implicit_localhost()
        if self.opts.get("verbose"):
            for warning in inv.warnings:
                print(f"warning: {visible(warning)}", file=sys.stderr)
        return inv

    def plan(self, inv: Inventory) -> tuple[Plan, Inventory]:
        """The plan to run, from a rustle-plan document or a playbook (told apart by content).

        A playbook needs the inventory to resolve its plays' host patterns, and brings its own
        ``group_vars/``/``host_vars/``: the inventory returned is the one to use from here on.
        """
        from .plan import STDIN, parse_plan
        from .playbook import is_playbook, parse_extra_vars

        path = self.opts.get("execution_plan")
        if path is None:
            raise UsageError("no execution plan or playbook given",
                             "usage: rustle-deploy PLAYBOOK.yml|PLAN.json [-i INVENTORY] [--run]")
        data = _read_input(path)
        extra_origins: dict[str, str] = {}
        extra = parse_extra_vars(self.opts.get("extra_vars") or (), extra_origins)
        self.extra_vars = extra
        files_dirs = tuple(self.opts.get("files_dir") or ())
        become_flags = {"become": True if self.opts.get("become") else None,
                        "become_user": self.opts.get("become_user"),
                        "become_method": self.opts.get("become_method"),
                        "force_handlers": True if self.opts.get("force_handlers") else None}
        become_flags = {k: v for k, v in become_flags.items() if v is not None}
        if not is_playbook(data):
            if self.opts.get("start_at_task"):
                raise UsageError("--start-at-task applies to playbooks",
                                 "a plan's tasks are selected with --tags/--skip-tags")
            if become_flags:
                raise UsageError("-b/--become, --become-user, --become-method and --force-handlers "
                                 "apply to playbooks", "a plan carries become and force_handlers itself")
            base_dir = os.getcwd() if path == "-" else os.path.dirname(os.path.abspath(path))
            warned: list[PlanError] = []
            plan = parse_plan(data, source=STDIN if path == "-" else path, base_dir=base_dir,
                              files_dirs=files_dirs, warnings=warned)
            for problem in warned:
                print(f"warning: {visible(problem.message)}", file=sys.stderr)
            if extra:
                plan = replace(plan, extra_vars={**plan.extra_vars, **extra})
            if (self.ansible_cfg or AnsibleConfig()).get("allow_broken_conditionals"):
                plan = replace(plan, options=replace(plan.options, allow_broken_conditionals=True))
            if (self.ansible_cfg or AnsibleConfig()).get("deprecation_warnings") is False:
                plan = replace(plan, options=replace(plan.options, deprecation_warnings=False))
            configured = (self.ansible_cfg or AnsibleConfig()).become_config()
            if configured and not plan.options.become_config:  # a plan's own wins
                plan = replace(plan, options=replace(plan.options, become_config=configured))
            if plan.playbook_dir:
                inv = inv.with_playbook_dir(plan.playbook_dir)
            return plan, inv
        from .playbook import CompileOptions, compile_playbook
        from .playbook.roles import DEFAULT_COLLECTIONS_PATH

        acfg = self.ansible_cfg or AnsibleConfig()
        become = {k: acfg.get(k) for k in ("become", "become_user", "become_method") if acfg.get(k) is not None}
        become.update(become_flags)  # the command line beats ansible.cfg
        force_handlers = bool(become.pop("force_handlers", None) or acfg.get("force_handlers"))
        options = CompileOptions(extra_vars=extra, extra_origins=extra_origins, roles_path=self.settings.roles_path,
                                 play_defaults=become, force_handlers=force_handlers,
                                 error_on_missing_handler=acfg.get("error_on_missing_handler", True) is not False,
                                 allow_broken_conditionals=bool(acfg.get("allow_broken_conditionals")),
                                 deprecation_warnings=acfg.get("deprecation_warnings") is not False,
                                 become_config=acfg.become_config(),
                                 defaults_source=acfg.path or "ANSIBLE_BECOME*",
                                 forks=self.opts.get("parallel"), check=bool(self.opts.get("check")),
                                 diff=bool(self.opts.get("diff")),
                                 start_at_task=self.opts.get("start_at_task"),
                                 library=tuple(acfg.get("library") or ()),
                                 collections_path=tuple(acfg.get("collections_path")
                                                        or DEFAULT_COLLECTIONS_PATH),
                                 prompt=_ask_var,
                                 # ansible-playbook's listings and syntax check ask nothing
                                 prompt_defaults=any(self.opts.get(m) for m in LIST_MODES[1:]))
        text = data.decode("utf-8-sig") if path == "-" else None
        if any(self.opts.get(m) for m in LIST_MODES[1:]):  # listed over the inventory as it is
            options = replace(options, later_plays="static")
        elif self.opts.get("run_") and not any(self.opts.get(m) for m in ("compile_only", "dry_run", "emit_plan")):
            options = replace(options, later_plays="stop")
        compiled = compile_playbook(path, inv, options, text=text)
        self.compiled = compiled
        if compiled.rest is not None:
            self.later = (path, inv, options, text)
        for warning in compiled.warnings:
            print(f"warning: {visible(warning)}", file=sys.stderr)
        if self.opts.get("verbose"):
            for note in compiled.notes:
                print(f"note: {note}", file=sys.stderr)
        return compiled.plan, compiled.inventory

    def hosts_for(self, plan: Plan, inv: Inventory, gone: frozenset[str] = frozenset()) -> tuple[list[Host], list[Host]]:
        """Every host of the plan (artifacts are built for all of them, so ``--limit`` does not
        change an artifact's bytes) and the hosts this command acts on (``gone``: hosts of
        plays that ran, which the inventory read again by refresh_inventory lacks)."""
        names: list[str] = list(plan.hosts)
        for play in plan.plays:
            names.extend(play.hosts)
            for batch in play.batches:
                for task in batch.tasks:
                    names.extend(task.hosts)
        from .plan.validate import check_hosts

        names = [n for n in dict.fromkeys(names) if n not in gone] or ["all"]
        every = inv.resolve(names)
        check_hosts(plan, lambda group: {h.name for h in inv.resolve([n for n in group if n not in gone])})
        hosts = every
        limit = self.opts.get("limit")
        if limit:
            allowed = {h.name for h in inv.select(limit)}
            hosts = [h for h in every if h.name in allowed]
            if not hosts:
                raise UsageError(
                    f"--limit {limit!r} matches none of the plan's hosts",
                    "plan hosts: " + ", ".join(h.name for h in every[:20]),
                )
        per_task = sets_become_vars(plan)
        return every, [replace(self.with_cli_connection(h), become_per_task=per_task) for h in hosts]

    def with_cli_connection(self, host: Host) -> Host:
        host = with_connection(host, self.opts.get("user"), self.opts.get("private_key"))
        # ansible.cfg fills in what the inventory leaves unset; extra vars outrank the inventory,
        # connection variables included (as in Ansible)
        acfg = self.ansible_cfg or AnsibleConfig()
        defaults = acfg.host_defaults()
        missing = {k: v for k, v in defaults.items() if k not in host.vars}
        conn = {k: v for k, v in (self.extra_vars or {}).items() if k.startswith("ansible_")}
        if conn or missing:
            host = replace(host, vars={**host.vars, **missing, **conn})
        configured = acfg.become_config()
        if configured and not host.become_config:
            host = replace(host, become_config=configured)
        return replace(host, become_asked=True) if self.opts.get("ask_become_pass") else host

    def units(self, plan: Plan, inv: Inventory, hosts: list[Host]) -> list[BuildUnit]:
        from .compiler.units import plan_units

        # the open-files limit of ansible.cfg or ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE is a variable of
        # the hosts that set none (with_cli_connection): the native lowering must see it to refuse
        # them (the runner does not apply it), as it refuses a host whose inventory sets it
        limit = (self.ansible_cfg or AnsibleConfig()).host_defaults().get("ansible_python_module_rlimit_nofile")
        if limit:
            hosts = [h if "ansible_python_module_rlimit_nofile" in h.vars
                     else replace(h, vars={**h.vars, "ansible_python_module_rlimit_nofile": limit}) for h in hosts]

        units = plan_units(
            plan, hosts, resolve=inv.resolve, select=inv.select, groups=_group_members(inv),
            target=self.settings.target,
            inventory_sources=absolute_sources(inv.sources),
        )
        if self.opts.get("format_") == "native":  # a native artifact's target is its runner's
            for u in units:
                u.target = self.native_target(u.hosts[0])
        return units

    def native_target(self, host: Host, seen: str | None = None) -> str:
        """The runner target of ``host``: -t, else ``seen`` (``--format auto``: the target of the
        machine the host reported), else its ``rustle_target``, else the controller's own
        platform; a target no runner can be built for is refused here (exit 2)."""
        from .compiler.toolchain import STATIC, ToolchainError, check_target, controller_target

        declared = host.vars.get("rustle_target")
        target = self.settings.target or seen or (str(declared) if declared else controller_target())
        if self.settings.static_linking and not self.opts.get("target") and not target.endswith(STATIC) \
                and target.endswith("-linux-gnu"):  # [compilation] static_linking
            target += STATIC
        try:
            check_target(target)
        except ToolchainError as exc:
            where = "" if self.settings.target else f"{host.name}: rustle_target={target}: "
            raise UsageError(where + exc.message, exc.hint) from exc
        return target

    def runner(self, target: str | None = None) -> RunnerBinary | None:
        """The native format's rustle-runner for ``target`` (default: the controller's
        platform), found or built on first use; None for pyz. With ``--format auto``, None too
        when the command needs pyz or no runner can be had (``opts["pyz_because"]`` says why)."""
        fmt = self.opts.get("format_")
        if fmt == "pyz" or (fmt == "auto" and "pyz_because" in self.opts):
            return None
        from .compiler.toolchain import controller_target

        target = target or controller_target()
        if target not in self._runners:
            from .compiler.runner import RunnerUnavailable, ensure_runner, runner_for

            if fmt == "native":
                self._runners[target] = ensure_runner(self.settings.cache_dir, target)
            elif target in self._no_runner_for:
                return None
            else:
                try:
                    self._runners[target] = runner_for(self.settings.cache_dir, target)
                except RunnerUnavailable as exc:
                    why = exc.message.replace("--format native needs", "the native format needs")
                    if target != controller_target():  # only the hosts of that target get pyz
                        self._no_runner_for[target] = why
                        return None
                    self.opts["pyz_because"] = why
                    return None
            if self.opts.get("verbose"):
                r = self._runners[target]
                print(f"native: rustle-runner for {target}: {r.path} ({r.size / 1024:.0f} KiB)", file=sys.stderr)
        return self._runners[target]

    def libc_refusal(self, host: Host, runner: RunnerBinary) -> str | None:
        """Why ``runner`` cannot run on ``host``: the glibc the host last reported
        (``host_platforms``) is older than the one the runner was linked against; else None."""
        from .compiler.runner import glibc_needed, glibc_version

        reported = self._platforms.get(host.name)
        have = glibc_version(reported.libc) if reported is not None else None
        need = glibc_needed(runner.path, runner.sha256) if have is not None else None
        if reported is None or have is None or need is None or have >= need:
            return None
        where = f"deployment {reported.deployment_id}" if reported.deployment_id else "an earlier deployment"
        return (f"its C library is {reported.libc} (it said so in {where}), older than the glibc "
                f"{'.'.join(map(str, need))} that rustle-runner {runner.sha256[:12]} for {runner.target or 'this target'} "
                "needs")

    def host_runner(self, host: Host) -> RunnerSpec | None:
        """The runner ``host`` gets (as the bootstrap knows it); None for pyz (with ``--format auto``:
        for a host the history saw unable to execute it, too)."""
        fmt = self.opts.get("format_")
        if fmt == "auto":
            runner = self.auto_runner(host)[0]
        else:
            runner = self.runner(self.native_target(host)) if fmt == "native" else None
            why = self.libc_refusal(host, runner) if runner is not None else None
            if why and runner is not None:
                raise UsageError(f"--format native cannot run on {host.name}: {why}",
                                 "use --format auto (it deploys pyz to that host), or a static runner "
                                 f"(-t {runner.target.removesuffix('+static')}+static, or [compilation] static_linking)")
        from .compiler.runner import spec

        return spec(runner.path) if runner else None

    def auto_runner(self, host: Host) -> tuple[RunnerBinary | None, str]:
        """``--format auto``: the runner ``host`` gets, or None and why it gets pyz. Its target is
        ``native_target``'s, except that the machine the host reported when it could not
        execute a runner (``no_runner_hosts``) beats a ``rustle_target`` of another
        architecture; a host gets pyz when no runner exists or can be had for that target, or
        when that very runner is the one it could not execute."""
        if host.name in self._auto_choice:
            return self._auto_choice[host.name]
        from .compiler.toolchain import STATIC, linux_target, split

        failed = self._no_runner.get(host.name)
        reported = self._platforms.get(host.name)
        seen = None
        choice: tuple[RunnerBinary | None, str] | None = None
        declared = host.vars.get("rustle_target")
        # the machine the host last reported (any agent's done line), else the one it reported
        # when it could not execute a runner
        system, machine, said = "Linux", "", None
        if reported is not None and reported.machine:
            system, machine, said = reported.system or "Linux", reported.machine, reported.deployment_id
        elif failed is not None and failed.machine:
            machine, said = failed.machine, failed.deployment_id
        where = f"deployment {said}" if said else "an earlier deployment"
        self._target_from[host.name] = ("-t" if self.settings.target else
                                        f"rustle_target={declared}" if declared else "the controller's platform")
        if machine and not self.settings.target:
            seen = linux_target(machine) if system == "Linux" else None
            if seen is None:
                shown = machine if system == "Linux" else f"{system} {machine}"
                choice = (None, f"it is {shown} (it said so in {where}), for which no rustle-runner exists")
            elif declared and split(str(declared))[0] == seen:
                seen = None  # its rustle_target fits its machine (and may ask for +static)
                self._target_from[host.name] += f", which fits the {machine} it reported in {where}"
            else:
                self._target_from[host.name] = f"the {machine} it reported in {where}"
        if choice is None:
            try:
                target = self.native_target(host, seen)
            except UsageError as exc:
                choice = (None, exc.message.removeprefix(f"{host.name}: "))
            else:
                runner = self.runner(target)
                old_libc = self.libc_refusal(host, runner) if runner is not None else None
                if old_libc and runner is not None and not self.settings.target and target.endswith("-linux-gnu"):
                    # the static build of the same target needs no glibc version (docs/native.md)
                    static = self.runner(target + STATIC)
                    if static is not None:
                        runner = static
                        self._target_from[host.name] += f", +static because {old_libc}"
                if runner is None:
                    choice = (None, self._no_runner_for.get(target) or str(self.opts.get("pyz_because")))
                elif failed is not None and failed.sha256 == runner.sha256:
                    choice = (None, f"it could not execute rustle-runner"
                                    f"{' in deployment ' + failed.deployment_id if failed.deployment_id else ''} "
                                    f"({failed.reason}); --format native tries again")
                elif self.libc_refusal(host, runner):
                    choice = (None, str(self.libc_refusal(host, runner)))
                else:
                    choice = (runner, "")
        self._auto_choice[host.name] = choice
        return choice

    def say_format(self, text: str) -> None:
        """A -v line about the format ``--format auto`` chose, and why."""
        if self.opts.get("verbose"):
            print(f"format: {visible(text)}", file=sys.stderr)

    def no_runner_hosts(self, hosts: list[Host]) -> dict[str, RunnerFailure]:
        """Hosts the history saw unable to execute a runner (``auto_runner`` decides what they get)."""
        if self.opts.get("format_") != "auto" or not self.settings.state_db.exists():
            return {}  # no history yet: it is created later, while the early handshakes run
        from .state import History

        with History(self.settings.state_db) as history:
            return history.runner_failures((h.name, h.remote_dir) for h in hosts if h.remote_dir)

    def reported_platforms(self, hosts: list[Host]) -> dict[str, Platform]:
        """The machine each host's agent last reported (``auto_runner`` builds its runner for it)."""
        from .state import History

        if not self.settings.state_db.exists():
            return {}
        with History(self.settings.state_db) as history:
            return history.platforms((h.name, h.remote_dir) for h in hosts if h.remote_dir)

    def falls_back(self, name: str) -> bool:
        """Whether host ``name`` got a native artifact from ``--format auto``, which then
        deploys pyz there if it cannot execute the runner (``pyz_fallback``)."""
        return self.opts.get("format_") == "auto" and name in self._auto_units

    def pyz_fallback(self, name: str) -> Artifact:
        """The pyz artifact for host ``name`` (``falls_back``), built now (from the cache when
        it can): what a host that cannot execute the runner gets instead, in the same deployment."""
        from .compiler.build import build_unit

        unit = self._auto_units[name]
        s = self.settings
        art = build_unit(unit, cache_dir=s.cache_dir, compression=s.compression, size_limit=s.binary_size_limit)
        return replace(art, hosts=(name,))

    def fallback(self, name: str, failure: RunnerFailure, platform: Platform | None) -> Artifact:
        """``--format auto``: what host ``name`` (``falls_back``) gets in the same deployment once
        it could not execute the runner ``failure`` names, or its bootstrap found it would not
        (``platform``: the system, machine and C library it then reported): the native artifact
        for the runner that fits (``auto_runner`` with what is now known: the static build for
        an older glibc, the runner of its architecture), else its pyz artifact."""
        from .compiler.build import build_native

        self._no_runner[name] = failure
        if platform is not None:
            self._platforms[name] = platform
        self._auto_choice.pop(name, None)
        unit = self._auto_units[name]
        runner, why = self.auto_runner(next(h for h in unit.hosts if h.name == name))
        if runner is None:
            self.say_format(f"pyz for {name}: {why}")
            return self.pyz_fallback(name)
        s = self.settings
        art = next(a for a in build_native(unit, cache_dir=s.cache_dir, runner=runner.sha256,
                                           size_limit=s.binary_size_limit) if name in a.hosts)
        self.say_format(f"native for {name}: rustle-runner {runner.sha256[:12]} for {runner.target}; the target: "
                        f"{self._target_from.get(name, 'the controller' + chr(39) + 's platform')}")
        return replace(art, hosts=(name,), target=runner.target)

    def build(self, units: list[BuildUnit]) -> list[Artifact]:
        from .compiler.build import build_native, build_unit

        if self.opts.get("verbose"):
            bridged = {m.fqcn: m for u in units for m in u.bridged.values()}
            for fqcn, m in sorted(bridged.items()):
                if m.style == "rustle":
                    print(f"bridge: {fqcn} is a rustle-deploy module, run in the runtime's process "
                          f"(from {m.origin}: {m.path})", file=sys.stderr)
                    continue
                if m.style == "action":
                    print(f"bridge: {fqcn} is an action plugin run on the controller by ansible-core, in a phase "
                          f"of its own ({m.action} from {m.path})", file=sys.stderr)
                    continue
                kind = {"new": "Python AnsibleModule", "want_json": "WANT_JSON", "old": "key=value"}.get(m.style, m.style)
                print(f"bridge: {fqcn} runs through the module bridge ({kind} module from {m.origin}: {m.path})",
                      file=sys.stderr)

        s, rebuild = self.settings, bool(self.opts.get("rebuild"))

        def pyz(u: BuildUnit) -> Artifact:
            return build_unit(u, cache_dir=s.cache_dir, rebuild=rebuild, compression=s.compression,
                              size_limit=s.binary_size_limit)

        with self.phase("compile", **{"rustle.units": len(units)}):
            if self.opts.get("format_") == "native":
                out: list[Artifact] = []
                for u in units:
                    if any(m.style == "action" for m in u.bridged.values()):
                        # ansible-core runs these tasks on the controller, from a pyz artifact: that
                        # unit falls back to pyz, as with --format auto
                        print(f"format: pyz for {_shown(u.host_names)}, not native: their plan runs tasks through "
                              "ansible-core on the controller (an action plugin, a host each call names)",
                              file=sys.stderr)
                        out.append(pyz(u))
                        continue
                    built = build_native(u, cache_dir=s.cache_dir, runner=self._unit_runner(u).sha256,
                                         rebuild=rebuild, size_limit=s.binary_size_limit,
                                         python=pyz(u) if self.opts.get("hybrid") else None)
                    for a in built if self.opts.get("hybrid") else ():
                        why = "; ".join(a.python_tasks) if a.python_tasks else "every task lowers"
                        self.say_format(f"hybrid for {_shown(list(a.hosts))}: "
                                        f"{len(a.python_tasks)} task(s) run in the host's Python: {why}")
                    out.extend(built)
                return out
            if self.opts.get("format_") == "auto" and self.runner() is not None:
                return self._build_auto(units, pyz)
            if self.opts.get("format_") == "auto":
                self.say_format(f"pyz for every host: {self.opts.get('pyz_because')}")
            return [pyz(u) for u in units]

    def _build_auto(self, units: list[BuildUnit], pyz: Callable[[BuildUnit], Artifact]) -> list[Artifact]:
        """``--format auto``: native artifacts for the units that lower, each host with the
        runner of its target (``auto_runner``); pyz for the rest (docs/native.md)."""
        from .compiler.build import build_native
        from .compiler.native import NativeUnsupported

        s, rebuild = self.settings, bool(self.opts.get("rebuild"))
        out: list[Artifact] = []
        for u in units:
            choice = {h.name: self.auto_runner(h) for h in u.hosts}
            by_runner: dict[str, tuple[RunnerBinary, list[str]]] = {}
            for n, (runner, _) in choice.items():
                if runner is not None:
                    by_runner.setdefault(runner.sha256, (runner, []))[1].append(n)
            arts: list[Artifact] = []
            try:
                for runner, names in by_runner.values():
                    arts.extend(replace(a, hosts=tuple(n for n in a.hosts if n in names), target=runner.target)
                                for a in build_native(u, cache_dir=s.cache_dir, runner=runner.sha256,
                                                      rebuild=rebuild, size_limit=s.binary_size_limit))
            except NativeUnsupported as exc:
                self.say_format(f"pyz for {_shown(u.host_names)}: the plan does not lower to the native runner: "
                                f"{exc.message}")
                out.append(pyz(u))
                continue
            avoid = [n for n, (runner, _) in choice.items() if runner is None]
            for n in avoid:
                self.say_format(f"pyz for {n}: {choice[n][1]}")
            if avoid:
                out.append(replace(pyz(u), hosts=tuple(avoid)))
            for runner, names in by_runner.values():
                whence: dict[str, list[str]] = {}
                for n in names:
                    whence.setdefault(self._target_from.get(n, "the controller's platform"), []).append(n)
                self.say_format(f"native for {_shown(names)}: the plan lowers; rustle-runner {runner.sha256[:12]} "
                                f"for {runner.target} (a host that cannot execute it gets pyz); the target: "
                                + "; ".join(f"{why} ({_shown(ns)})" if len(whence) > 1 else why
                                            for why, ns in whence.items()))
                for n in names:
                    self._auto_units[n] = u
            out.extend(a for a in arts if a.hosts)
        return out

    @contextmanager
    def phase(self, name: str, **attributes: Any) -> Iterator[None]:
        """A span of the command's trace around a step (no-op without tracing)."""
        if self.trace is None:
            yield
            return
        with self.trace.phase(name, **attributes):
            yield

    def _unit_runner(self, unit: BuildUnit) -> RunnerBinary:
        runner = self.runner(unit.target)
        assert runner is not None
        return runner

    # -- modes -----------------------------------------------------------------------------
    def execute(self) -> int:
        port = self.opts.get("metrics_port")
        if not port:
            return self._traced()
        try:
            from .ui.metrics import serving
        except ImportError as exc:
            raise UsageError(f"--metrics-port needs the ui extra ({exc.name} is not installed)",
                             "pip install 'rustle-deploy[ui]'") from exc
        with serving(self.settings.state_db, port):
            return self._traced()

    def _traced(self) -> int:
        """``_execute`` inside the command's trace, when OTEL_* asks for one (tracing.py)."""
        o = self.opts
        if o.get("dry_run") or any(o.get(m) for m in ("list_deployments", "list_inventory", "list_modules",
                                                      *LIST_MODES)):
            return self._execute()  # nothing is compiled or touched: nothing to trace
        from .tracing import start

        command = next((m.replace("_", "-") for m in ("rollback", "cleanup", "promote", "deploy_only", "compile_only",
                                                       "resume") if o.get(m)), "deploy")
        self.trace = start(command)
        if self.trace is None:
            return self._execute()
        code: int | None = None
        try:
            code = self._execute()
            return code
        except KeyboardInterrupt:
            code = 130
            raise
        except RustleError as exc:
            code = exc.exit_code
            raise
        finally:
            self.trace.end(code)

    def _execute(self) -> int:
        o = self.opts
        if o.get("list_deployments"):
            return self.list_deployments()
        if o.get("list_inventory"):
            sys.stdout.write(self.inventory().to_ansible_json() + "\n")
            return 0
        if o.get("list_modules"):
            return self.list_modules()
        if o.get("rollback"):
            return self.rollback(None if o["rollback"] == "latest" else o["rollback"])
        if o.get("promote"):
            from .fleetops import promote

            return promote(self, None if o["promote"] == "latest" else o["promote"])
        if o.get("cleanup"):
            return self.cleanup()
        if o.get("deploy_only"):
            return self.deploy_only()
        recorder, entry = self._run_cache()
        if isinstance(entry, int):
            return entry
        with self._recording(recorder):
            plan, inv = self.plan(self.inventory())
        listing = next((m for m in LIST_MODES if o.get(m)), None)
        if listing is not None:
            from .listing import show

            return show(self, listing, plan, inv)
        if not plan.plays:
            self.reporter.line("no hosts matched: nothing to do")
            return 0
        with self._recording(recorder):
            every, hosts = self.hosts_for(plan, inv)
            if self.later is not None:
                self._later_format()
            if not o.get("compile_only"):
                check_remote_dirs(hosts, inv.source)
                check_connections(hosts, inv.source)
                self.resolve_delegates(plan, inv)
        if o.get("dry_run"):
            return self.dry_run(plan, self.units(plan, inv, every), hosts, self.schedule(plan, inv, hosts))
        if o.get("compile_only"):
            return self.compile_only(plan, self.build(self.units(plan, inv, every)), inv)
        if o.get("resume"):
            from .fleetops import resume

            return resume(self, plan, hosts, self.build(self.units(plan, inv, every)), o["resume"])
        with self._recording(recorder):
            schedule = self.schedule(plan, inv, hosts)
        scheduled = {k: o[k] for k in _SCHEDULED if k in o}
        runners = self.host_runners(hosts)
        early = self.start_early(plan, hosts, schedule, runners)
        try:
            with self._recording(recorder):
                units = self.units(plan, inv, every)
                artifacts = self.build(units)
            if recorder is not None and isinstance(entry, str) and self.later is None:
                self._store_run(recorder, entry, plan, every, hosts, schedule, artifacts, scheduled,
                                any(u.bridged for u in units))
            return self.deploy(plan, hosts, artifacts, early, schedule)
        finally:  # whatever ends the command (a bad value, a full disk, Ctrl-C): no ssh left running
            if early is not None:
                early.close()

    def host_runners(self, hosts: list[Host]) -> dict[str, RunnerSpec | None]:
        """The runner each host gets (None: pyz), after what the history knows of each host."""
        o = self.opts
        if o.get("format_") == "auto" and self.runner():
            self._no_runner = self.no_runner_hosts(hosts)
            self._platforms = self.reported_platforms(hosts)
        elif o.get("format_") == "native":  # the C library each host reported (libc_refusal)
            self._platforms = self.reported_platforms(hosts)
        return {h.name: self.host_runner(h) for h in hosts}  # a bad target: exit 2 before any ssh

    def start_early(self, plan: Plan, hosts: list[Host], schedule: Schedule,
                    runners: dict[str, RunnerSpec | None]) -> EarlyStarts | None:
        """Start the ssh handshakes (OpenSSH client) while this process compiles; in a rollout,
        only the first batch's: the others are not to be touched before their turn."""
        from .transport.early import start_early

        o = self.opts
        first = set(schedule.first_hosts()) if o.get("run_") else {h.name for h in hosts}
        # --format auto: whether the plan lowers is the build's to say; a host that may get the
        # runner starts either agent on its one connection (early.start_early)
        either = [n for n, r in runners.items() if r is not None] if o.get("format_") == "auto" else []
        return start_early([h for h in hosts if h.name in first], self.settings.ssh_client,
                           self.settings.hosts_at_once(plan.options.forks), lambda h: runners[h.name], either)

    # -- the run cache (runcache.py) ----------------------------------------------------------
    @contextmanager
    def _recording(self, recorder: Any) -> Iterator[None]:
        if recorder is None:
            yield
            return
        with recorder.recording():
            yield

    def _run_cache(self) -> tuple[Any, str | int | None]:
        """The run cache's recorder for this command (None when it may not use the cache) and
        either the entry's name (a miss: the full path records) or the exit code of the
        deployment made from the stored entry (a hit)."""
        from . import runcache, vault

        if not runcache.usable(self.opts, bool(vault.secrets())):
            return None, None
        s = self.settings
        name = runcache.key(self.opts, s, self.ansible_cfg)
        entry, why = runcache.load(s.cache_dir, name)
        if entry is None and (self.opts.get("verbose") or 0) > 1:
            print(f"note: run cache: not used: {visible(why)}", file=sys.stderr)
        if entry is not None:
            code = self._deploy_stored(entry)
            if code is not None:
                return None, code
        return runcache.Recorder([s.cache_dir], s.state_db), name

    def _choices(self, every: list[Host], auto: list[str], targets: list[str]) -> dict[str, Any]:
        """What the build chose from the runners and the history: ``_store_run`` keeps it with
        the artifacts, a warm run compares it with its own."""
        by_name = {h.name: h for h in every}
        choice = {n: (r.sha256 if r is not None else None, why) for n in auto
                  for r, why in [self.auto_runner(by_name[n])]}
        runners = {t: (r.sha256 if r is not None else None) for t in targets for r in [self.runner(t)]}
        return {"auto": choice, "runners": runners, "pyz_because": self.opts.get("pyz_because")}

    def _store_run(self, recorder: Any, name: str, plan: Plan, every: list[Host], hosts: list[Host],
                   schedule: Schedule, artifacts: list[Artifact], scheduled: dict[str, Any], bridged: bool) -> None:
        import pickle

        from . import runcache

        why = runcache.withheld(plan, [*every, *hosts, *self.delegates.values()], bridged)
        if why is not None:
            if (self.opts.get("verbose") or 0) > 1:
                print(f"note: run cache: not stored: {visible(why)}", file=sys.stderr)
            return

        auto, targets = sorted(self._auto_choice), sorted(t for t in self._runners)
        state = {"plan": plan, "every": every, "hosts": hosts, "schedule": schedule, "artifacts": artifacts,
                 "delegates": self.delegates, "extra_vars": self.extra_vars, "scheduled": scheduled,
                 "choices": self._choices(every, auto, targets), "auto_targets": (auto, targets),
                 "auto_units": (sorted(self._auto_units), pickle.dumps(self._auto_units))}
        try:
            why = runcache.store(self.settings.cache_dir, name, recorder, state)
        except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
            why = f"{type(exc).__name__}: {exc}"
        if why is not None and (self.opts.get("verbose") or 0) > 1:
            print(f"note: run cache: not stored: {visible(why)}", file=sys.stderr)

    def _deploy_stored(self, entry: dict[str, Any]) -> int | None:
        """Deploy what the run cache stored (its inputs unchanged); None, with the session as it
        was, when the runners or the history now choose otherwise, or an artifact is gone."""
        from .compiler.cachefiles import sha256_file
        from .runcache import Deferred

        o = self.opts
        if any(sha256_file(a.path) != a.sha256 for a in entry["artifacts"]):
            return None
        saved = dict(o)
        for k in _SCHEDULED:
            o.pop(k, None)
        o.update(entry["scheduled"])
        hosts: list[Host] = entry["hosts"]
        runners = self.host_runners(hosts)
        now = self._choices(entry["every"], *entry["auto_targets"])
        if now != entry["choices"]:
            if (o.get("verbose") or 0) > 1:
                print(f"note: run cache: not used: the runners chosen now differ ({now} against "
                      f"{entry['choices']})", file=sys.stderr)
            o.clear()
            o.update(saved)
            for f in ("_runners", "_no_runner", "_platforms", "_target_from", "_no_runner_for", "_auto_choice"):
                getattr(self, f).clear()
            return None
        self.delegates, self.extra_vars = entry["delegates"], entry["extra_vars"]
        # the trace keeps its shape: this run's "compile" is the cache's answer
        with self.phase("compile", **{"rustle.units": len(entry["artifacts"]), "rustle.run_cache": "hit"}):
            self._auto_units = Deferred(*entry["auto_units"])
        if entry["stderr"]:
            sys.stderr.write(entry["stderr"])
        if o.get("verbose"):
            print("note: run cache: the plan, inventory and files are unchanged; deploying what the last "
                  "run compiled from them", file=sys.stderr)
        plan, schedule = entry["plan"], entry["schedule"]
        early = self.start_early(plan, hosts, schedule, runners)
        artifacts = [replace(a, cached=True) for a in entry["artifacts"]]
        try:
            return self.deploy(plan, hosts, artifacts, early, schedule)
        finally:
            if early is not None:
                early.close()

    def _later_format(self) -> None:
        """Plays compiled after add_host/group_by ran need the carry between runs: pyz."""
        why = "plays follow add_host/group_by (docs/phases.md), which only pyz runs"
        for flag in ("stage", "resume", "canary"):
            if self.opts.get(flag):
                raise UsageError(f"--{flag} cannot be used with this playbook: plays follow add_host/group_by, "
                                 "and they are compiled only once it has run (docs/phases.md)",
                                 "run it without --" + flag)
        if self.opts.get("format_") == "native":
            raise UsageError(f"--format native cannot run this playbook: {why}",
                             "use --format auto (the default) or pyz")
        if self.opts.get("format_") == "auto":
            self.opts.setdefault("pyz_because", why)

    def next_part(self, added: dict[str, Any]) -> Part | None:
        """The plays after the one holding add_host/group_by, compiled now that the inventory
        has what ``added`` records (the runtime's view: new hosts with their variables, groups,
        parent groups), over the hosts they target (``--limit`` applies to new hosts too): the
        plan, the hosts, their artifacts and the schedule of those plays alone; None when
        nothing is left to compile."""
        from .plan.validate import every_task
        from .playbook import compile_playbook
        from .rollout import Schedule, play_specs, schedule

        if self.later is None or self.compiled is None:
            return None
        path, loaded, options, text = self.later
        ran = len(self.compiled.plan.plays)
        done = dict(options.done_hosts)
        done.update((p.number, tuple(p.hosts)) for p in self.compiled.plays if p.number not in done)
        options = replace(options, done_hosts=done)
        if any(refreshes(t) for play in self.compiled.plan.plays[self.part_start:] for t in every_task(play)):
            # meta: refresh_inventory: the inventory as its sources held it when the phase after
            # the task started (or now, when it ended its play), as ansible-core reads it again;
            # what add_host/group_by made is kept, as there
            loaded = self.refreshed or self.inventory()
            # the groups group_by gave hosts the inventory no longer has are dropped with them
            made = set(added.get("hosts") or ())
            added = dict(added, groups={g: [m for m in members if m in loaded.hosts or m in made]
                                        for g, members in (added.get("groups") or {}).items()})
        self.refreshed = None
        compiled = compile_playbook(path, loaded.with_changes(added), options, text=text)
        self.compiled = compiled
        self.part_start = ran
        self.later = (path, loaded, options, text) if compiled.rest is not None else None
        if self.opts.get("verbose"):
            for note in compiled.notes:
                print(f"note: {note}", file=sys.stderr)
        plan, inv = compiled.plan, compiled.inventory
        # hosts of the plays that ran which the inventory read again lacks: they ran already
        gone = frozenset(h for names in done.values() for h in names if h not in inv.hosts)
        specs = [s for s in play_specs(plan, lambda names: inv.resolve([n for n in names if n not in gone]))
                 if s.index >= ran]
        targets = {h for s in specs for h in s.hosts}
        every, hosts = self.hosts_for(plan, inv, gone)
        hosts = [h for h in hosts if h.name in targets]
        if not hosts:
            return Part(plan, [], [], Schedule(()))
        check_remote_dirs(hosts, inv.source)
        check_connections(hosts, inv.source)
        self.resolve_delegates(plan, inv)
        artifacts = self.build(self.units(plan, inv, [h for h in every if h.name in targets]))
        return Part(plan, hosts, artifacts, schedule(specs, [h.name for h in hosts]))

    def resolve_delegates(self, plan: Plan, inv: Inventory) -> None:
        """The inventory hosts the plan delegates tasks to (``delegate_to`` another host), with
        their own connection variables, --limit or not; a bad one is exit 2 before anything
        is touched."""
        names = {d for play in plan.plays for top in [*plan.play_tasks(play), *play.handlers] for t in top.walk()
                 if (d := delegate(t)) is not None}
        for name in sorted(names):
            host = self.with_cli_connection(inv.resolve([name])[0])
            check_connections([host], inv.source)
            self.delegates[name] = host

    def schedule(self, plan: Plan, inv: Inventory, hosts: list[Host]) -> Schedule:
        """The plan's batches over the chosen hosts (rollout.py); refuses what cannot run them."""
        from .rollout import canary_count, play_specs, schedule, with_canary

        if self.opts.get("health_check") or self.opts.get("health_url"):
            # only then: fleetops is imported after the early ssh handshakes start, not before
            from .fleetops import health_checks

            # a bad --health-check/--health-url is exit 2 before the early ssh handshakes start
            health_checks(self.opts, hosts)
        plan_schedule = schedule(play_specs(plan, inv.resolve), [h.name for h in hosts])
        if self.opts.get("canary") and self.opts.get("run_"):
            plan_schedule = with_canary(plan_schedule, canary_count(self.opts["canary"].strip(), len(hosts)))
        if self.opts.get("format_") == "native" and any(st.phase is not None for st in plan_schedule.stages):
            from .bridge.policy import controller_tasks

            if controller_tasks(plan):
                # ansible-core runs those tasks on the controller, from a pyz artifact: native falls
                # back to pyz as --format auto does, and says so
                why = ("a play runs tasks through ansible-core on the controller (an action plugin, a host "
                       "each call names), in phases, which only pyz runs")
                print(f"format: pyz for every host, not native: {why}", file=sys.stderr)
                self.opts.update(format_="auto", pyz_because=why)
        if self.opts.get("format_") == "auto" and self.opts.get("run_") and "pyz_because" not in self.opts:
            if any(st.phase is not None for st in plan_schedule.stages):
                self.opts["pyz_because"] = "a play is cut into phases (docs/phases.md), which only pyz runs"
            elif plan_schedule.staged:
                self.opts["pyz_because"] = "the plan's plays run in separate stages, which only pyz runs"
        if any(st.phase is not None for st in plan_schedule.stages) and self.opts.get("format_") == "native" \
                and self.opts.get("run_"):
            raise UsageError(
                "--format native cannot run this plan: a play is cut into phases (run_once, throttle, "
                "delegate_to, hostvars of other hosts' results, a task's remote_user/port; docs/phases.md)",
                "use --format auto (the default) or pyz: the native runner has no phase selector yet",
            )
        if plan_schedule.staged and self.opts.get("format_") == "native" and self.opts.get("run_"):
            raise UsageError(
                "--format native cannot run this plan: its plays run in separate stages "
                "(serial, max_fail_percentage or any_errors_fatal on a play of a multi-play plan)",
                "use --format auto (the default) or pyz, or give every play of the plan the same batching",
            )
        return plan_schedule

    def dry_run(self, plan: Plan, units: list[BuildUnit], hosts: list[Host], schedule: Schedule) -> int:
        import hashlib

        from .compiler.build import payload_bytes
        from .fleetops import release_names

        chosen = {h.name: h for h in hosts}
        release = release_names(hosts, {n: u.binary_name for u in units for n in u.host_names if n in chosen})
        arts = []
        for u in units:
            if not any(n in chosen for n in u.host_names):
                continue
            data = payload_bytes(u, self.settings.compression)
            arts.append((u, hashlib.sha256(data).hexdigest(), len(data)))
        doc: dict[str, Any] = {
            "dry_run": True,
            "parallel": self.settings.hosts_at_once(plan.options.forks),
            "timeout": self.settings.timeout,
            "verify": self.settings.verify,
            "run": bool(self.opts.get("run_")),
            "plan": {"source": plan.source, "sha256": plan.sha256, "plays": len(plan.plays), "total_tasks": plan.total_tasks},
            "schedule": schedule.to_json() if schedule.batched else None,
            "artifacts": [
                {
                    "sha256": sha,
                    "size": size,
                    "binary_name": u.binary_name,
                    "target": u.target,
                    "modules": sorted({t["module"] for t in unit_tasks(u) if "module" in t}),
                    "with_jinja2": u.needs_jinja,
                    "files": [{"sha256": d, "path": p} for d, p in sorted(u.files.items())],
                    "hosts": [n for n in u.host_names if n in chosen],
                }
                for u, sha, size in arts
            ],
            "hosts": [
                {
                    "name": h.name,
                    "connection": h.connection,
                    "address": h.address,
                    "port": None if h.is_local else (explicit_port(h) or 22),
                    "user": h.user,
                    "target": u.target,
                    "target_source": "flag" if self.settings.target else ("inventory" if h.vars.get("rustle_target") else (
                        "the controller's platform (native runner)" if self.opts.get("format_") == "native"
                        else "portable pyz (CPython >= 3.8 checked on the host)")),
                    "remote_dir": h.remote_dir,
                    "writes": [
                        f"{h.remote_dir}/artifacts/{sha}",
                        f"{h.remote_dir}/releases/{release[h.name]}/current",
                        f"{h.remote_dir}/releases/{release[h.name]}/previous",
                        f"{h.remote_dir}/history.jsonl",
                    ] + ([f"{h.remote_dir}/runs/<run-id>.jsonl"] if self.opts.get("run_") else []),
                }
                for u, sha, _ in arts
                for h in (chosen[n] for n in u.host_names if n in chosen)
            ],
        }
        if self.json_out:
            dump_json(doc)
            return 0
        r = self.reporter
        r.line("DRY RUN: nothing will be built, uploaded or run")
        r.line(f"plan {plan.source} ({plan.sha256[:12]}): {len(plan.plays)} play(s), {plan.total_tasks} task(s)")
        r.line(f"{doc['parallel']} host(s) at a time, {doc['timeout']:g}s per host"
               f"{', verified on the host' if doc['verify'] else ''}{', then run' if doc['run'] else ''}")
        if schedule.batched:
            from .rollout import describe_serial

            r.line(f"the plays run in {schedule.total} batches, each after the previous one"
                   f"{'' if doc['run'] else ' (with --run, or when rustle-exec runs the deployment)'}:")
            number = 0
            for stage in schedule.stages:
                for batch in stage.batches:
                    number += 1
                    r.line(f"  batch {number}/{schedule.total} ({stage.label}, {describe_serial(stage.serial)}): "
                           + " ".join(batch))
        r.line(f"{len(arts)} artifact(s) would be built:")
        for a in doc["artifacts"]:
            r.line(f"  {a['binary_name']}  {a['sha256'][:12]}  {a['size'] / 1024:.0f} KiB  target {a['target']}  "
                   f"modules {','.join(a['modules']) or '-'}  jinja2 {'yes' if a['with_jinja2'] else 'no'}  "
                   f"{len(a['hosts'])} host(s)")
            for f in a["files"]:
                r.line(f"    embeds {f['path']} as files/{f['sha256'][:12]}")
        r.line(f"{len(doc['hosts'])} host(s):")
        for h in doc["hosts"]:
            where = "local" if h["connection"] == "local" else f"ssh {h['user'] or '(ssh default user)'}@{h['address']}:{h['port']}"
            r.line(f"  {h['name']}: {where}  target {h['target']} ({h['target_source']})")
            for w in h["writes"]:
                r.line(f"    would write {w}")
        return 0

    def compile_only(self, plan: Plan, artifacts: list[Artifact], inv: Inventory) -> int:
        out = self.settings.output_dir
        from .compiler.build import write_outputs
        from .rollout import play_specs

        plays = [p.to_json() for p in play_specs(plan, inv.resolve)]  # --deploy-only batches with them
        manifest = write_outputs(artifacts, out, plan.sha256, list(self._runners.values()), plays)
        doc: dict[str, Any] = {
            "compiled": True,
            "output_dir": str(out),
            "manifest": str(manifest),
            "artifacts": [
                {"sha256": a.sha256, "file": str(out / a.file_name), "size": a.size, "cached": a.cached,
                 "binary_name": a.binary_name, "target": a.target, "hosts": list(a.hosts)}
                for a in artifacts
            ],
        }
        if self.json_out:
            dump_json(doc)
        else:
            for a in doc["artifacts"]:
                self.reporter.line(
                    f"{a['file']}  {a['size'] / 1024:.0f} KiB  {'cached' if a['cached'] else 'built'}  "
                    f"{a['binary_name']}  {len(a['hosts'])} host(s)"
                )
            self.reporter.line(f"manifest: {manifest}")
        return 0

    # Modes that touch hosts live in fleetops.
    def deploy(self, plan: Plan, hosts: list[Host], artifacts: list[Artifact], early: EarlyStarts | None = None,
               schedule: Schedule | None = None) -> int:
        from .fleetops import deploy

        return deploy(self, plan, hosts, artifacts, early, schedule)

    def deploy_only(self) -> int:
        from .fleetops import deploy_only

        return deploy_only(self)

    def rollback(self, deployment_id: str | None) -> int:
        from .fleetops import rollback

        return rollback(self, deployment_id)

    def cleanup(self) -> int:
        from .fleetops import cleanup

        return cleanup(self)

    def list_modules(self) -> int:
        """The built-in modules, then every module the bridge can see and how it would run."""
        from .bridge.lookup import list_visible
        from .runtime_index import module_families

        path = self.opts.get("execution_plan")
        if path:  # the plan's or playbook's directory and each of its roles' (their library/)
            from .bridge.policy import plan_dirs

            dirs = plan_dirs(self.plan(self.inventory())[0])
        else:
            dirs = []
        version, searched, seen = list_visible(dirs)
        builtin = sorted(module_families())
        if self.json_out:
            dump_json({"builtin": builtin, "ansible_core": version, "searched": searched,
                       "bridge": [{"name": v.fqcn, "path": v.path, "runs": v.runs} for v in seen]})
            return 0
        r = self.reporter
        r.line(f"built in ({len(builtin)}): " + ", ".join(builtin))
        r.line("module bridge: " + (f"ansible-core {version}" if version else
                                     "ansible-core is not installed (pip install 'rustle-deploy[ansible]'): "
                                     "library modules that need nothing from Ansible only"))
        r.line("  searched: " + ", ".join(searched))
        width = max((len(v.fqcn) for v in seen), default=0)
        for v in sorted(seen, key=lambda v: v.fqcn):
            r.line(f"  {v.fqcn:<{width}}  {v.runs}")
        return 0

    def list_deployments(self) -> int:
        from .reconcile import settle_orphans
        from .state import History

        settle_orphans(self)  # deployments whose controller died: ask their hosts first

        with History(self.settings.state_db) as history:
            deployments = history.list()
        if self.json_out:
            dump_json([
                {"id": d.id, "created_at": d.created_at, "op": d.op, "status": d.status, "plan": d.plan_source,
                 "plan_sha256": d.plan_sha256, "target_id": d.target_id,
                 "hosts": [h.__dict__ for h in d.hosts],
                 "rollout": None if d.rollout is None else {
                     "state": d.rollout.state, "batches": d.rollout.batches, "done_batches": d.rollout.done_batches,
                     "stopped_after_batch": d.rollout.stopped_after, "reason": d.rollout.reason,
                     "hosts": {h: {"batch": b, "state": st} for h, (b, st) in d.rollout.hosts.items()}}}
                for d in deployments
            ])
            return 0
        if not deployments:
            self.reporter.line("no deployments recorded in " + str(self.settings.state_db))
        for d in deployments:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.created_at))
            failed = sum(1 for h in d.hosts if h.error)
            self.reporter.line(
                f"{d.id}  {when}  {d.op:<8} {d.status:<11} {len(d.hosts)} host(s), {failed} failed  "
                f"{d.plan_source or ''}{' (of ' + d.target_id + ')' if d.target_id else ''}"
            )
            if d.rollout is not None:
                self.reporter.line(f"    rollout {d.rollout.describe()}")
        return 0


# Which modes each flag means something in; anywhere else it is refused rather than ignored.
_HOSTS = {"deploy", "deploy_only", "cleanup", "rollback", "dry_run", "promote"}
_BUILD = {"deploy", "compile_only", "dry_run"}
_READ = _BUILD | set(LIST_MODES)
_FLAG_MODES: dict[str, tuple[str, set[str]]] = {
    "execution_plan": ("EXECUTION_PLAN", _READ | {"list_modules"}),
    "extra_vars": ("--extra-vars", _READ),
    "become": ("--become", _READ),
    "become_user": ("--become-user", _READ),
    "become_method": ("--become-method", _READ),
    "force_handlers": ("--force-handlers", _READ),
    "run_": ("--run", {"deploy", "deploy_only", "dry_run"}),
    "verify": ("--verify", {"deploy", "deploy_only", "dry_run"}),
    "rebuild": ("--rebuild", _BUILD),
    "incremental": ("--incremental", _BUILD),
    "target": ("--target", _BUILD),
    "files_dir": ("--files-dir", _BUILD),
    "output_dir": ("--output-dir", {"compile_only", "deploy_only"}),
    "limit": ("--limit", {"deploy", "deploy_only", "cleanup", "dry_run", "list_hosts", "list_tasks", "list_tags"}),
    "user": ("--user", _HOSTS),
    "private_key": ("--private-key", _HOSTS),
    "parallel": ("--parallel", _HOSTS),
    "timeout": ("--timeout", _HOSTS),
    "ssh_client": ("--ssh-client", _HOSTS - {"dry_run"}),
    "inventory": ("--inventory", _READ | _HOSTS | {"list_inventory"}),
    "canary": ("--canary", {"deploy", "deploy_only", "promote"}),
    "resume": ("--resume", {"deploy"}),
    "stage": ("--stage", {"deploy"}),
    "health_check": ("--health-check", {"deploy", "deploy_only", "promote"}),
    "health_url": ("--health-url", {"deploy", "deploy_only", "promote"}),
    "ask_become_pass": ("-K/--ask-become-pass", {"deploy", "deploy_only", "promote"}),
    "notify": ("--notify", _HOSTS - {"dry_run"}),
    "metrics_port": ("--metrics-port", _HOSTS - {"dry_run"}),
}
_RUN_FLAGS = {"check": "--check", "diff": "--diff", "tags": "--tags", "skip_tags": "--skip-tags"}
_GATE_FLAGS = {"canary": "--canary", "health_check": "--health-check", "health_url": "--health-url"}
_HEALTH_FLAGS = {"health_retries": "--health-retries", "health_interval": "--health-interval",
                 "health_timeout": "--health-timeout"}


def _notify_urls(given: Any) -> tuple[str, ...] | None:
    """``--notify`` URLs (they replace config.toml's [notify] urls), checked; None if none given."""
    from .settings import _url

    if not given:
        return None
    for url in given:
        try:
            _url(url)
        except ValueError:
            raise UsageError(f"--notify {url}: expected an http:// or https:// URL",
                             "for example --notify http://127.0.0.1:9000/hook") from None
    return tuple(given)


def _check_flags(opts: dict[str, Any], mode: str) -> None:
    """Refuse flags that would mean nothing in this mode."""
    shown = "--" + mode.replace("_", "-") if mode != "deploy" else "a deployment"
    for key, (flag, modes) in _FLAG_MODES.items():
        if opts.get(key) and mode not in modes:
            raise UsageError(
                f"{flag} has no effect with {shown}",
                f"{flag} goes with: " + ", ".join(sorted("--" + m.replace("_", "-") if m != "deploy" else "a deployment" for m in modes)),
            )
    runs = bool(opts.get("run_")) or mode == "promote"  # --promote activates and runs
    if opts.get("stage") and (opts.get("run_") or opts.get("resume")):
        raise UsageError("--stage prepares a release without running it",
                         "stage without --run, then --promote runs it" if opts.get("run_") else "drop --resume")
    for key, flag in _RUN_FLAGS.items():
        if key in ("tags", "skip_tags") and mode in ("list_tasks", "list_tags"):
            continue
        if opts.get(key) and not runs:
            raise UsageError(
                f"{flag} applies to running the plan",
                f"add --run, or pass {flag} to rustle-exec when it runs what was deployed",
            )
    if opts.get("ask_become_pass") and not runs:
        raise UsageError("-K/--ask-become-pass gives sudo a password when tasks run", "add --run")
    for key, flag in _GATE_FLAGS.items():
        if opts.get(key) and not runs:
            raise UsageError(f"{flag} gates a rollout that runs the plan", "add --run")
    for key, flag in _HEALTH_FLAGS.items():
        if opts.get(key) is not None and not (opts.get("health_check") or opts.get("health_url")):
            raise UsageError(f"{flag} has no effect without --health-check or --health-url",
                             "add --health-check CMD or --health-url URL")
    if opts.get("health_retries") is not None and opts["health_retries"] < 0:
        raise UsageError("--health-retries must be 0 or more")
    if opts.get("resume") and not opts.get("run_"):
        raise UsageError("--resume goes on with a rollout that runs the plan", "add --run")
    for key, flag in (("canary", "--canary"), ("limit", "--limit")):
        if opts.get("resume") and opts.get(key):
            raise UsageError(f"--resume goes on with the hosts and batches the deployment recorded; {flag} cannot change them",
                             f"drop {flag}")
    canary = opts.get("canary")
    if canary is not None and not re.fullmatch(r"[1-9][0-9]*%?", canary.strip()):
        raise UsageError(f"--canary {canary!r}: expected a host count or a percentage such as 10%",
                         "--canary 1 gates the first host; --canary 10% the first tenth of the hosts")


def _check_format(opts: dict[str, Any], mode: str) -> None:
    """Refuse what ``--format native`` cannot do; for ``auto``, note why it is pyz
    (``opts["pyz_because"]``) when the command needs something only pyz does."""
    native = opts.get("format_") == "native"
    if native and mode not in ("deploy", "compile_only"):
        raise UsageError(
            f"--format native cannot be used with --{mode.replace('_', '-')}",
            "--dry-run lists pyz artifacts only, --deploy-only takes the format from the compiled"
            " manifest, and the other modes build nothing",
        )
    why = None
    if opts.get("ask_become_pass"):
        why = ("-K/--ask-become-pass cannot be used with --format native yet",
               "the native runner becomes with passwordless sudo only; use --format pyz")
    elif opts.get("stage"):
        why = ("--stage cannot be used with --format native yet", "use --format pyz")
    for key, flag in _GATE_FLAGS.items():
        if why is None and opts.get(key):
            why = (f"{flag} cannot be used with --format native yet",
                   "the native runner has no health check or re-run after a rollback; use --format pyz")
    if native and why is not None:
        raise UsageError(*why)
    if opts.get("format_") != "auto":
        return
    if mode != "deploy":
        opts["pyz_because"] = f"--{mode.replace('_', '-')} builds pyz artifacts (pass --format native for native ones)"
    elif opts.get("resume"):
        opts["pyz_because"] = "--resume goes on with pyz artifacts"
    elif why is not None:
        opts["pyz_because"] = why[0].replace(" cannot be used with --format native yet", " needs the pyz format")


def _shown(names: list[str]) -> str:
    """Host names for a -v line: the first five, and how many more."""
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def unit_tasks(unit: BuildUnit) -> list[dict[str, Any]]:
    """Every compiled task and handler of a build unit, the ones inside blocks included."""
    out: list[dict[str, Any]] = []
    todo = [t for p in unit.plan_doc["plays"] for t in p["tasks"] + p["handlers"]]
    while todo:
        task = todo.pop()
        out.append(task)
        for key in ("block", "rescue", "always"):
            todo.extend(task.get(key) or ())
    return out


def _read_input(path: str) -> bytes:
    """The bytes of the plan or playbook at ``path`` (``-``: standard input)."""
    from .plan import STDIN

    if path == "-":
        try:
            return sys.stdin.buffer.read()
        except OSError as exc:
            raise PlanError(f"cannot read standard input: {exc}", "pipe a plan or playbook into "
                            "stdin, or pass its path", file=STDIN) from exc
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise PlanError(f"cannot read: {exc.strerror or exc}",
                        "pass the path of a playbook or of the JSON file rustle-plan wrote, or - "
                        "for stdin", file=path) from exc


def with_connection(host: Host, user: str | None, private_key: str | None) -> Host:
    """``-u``/``--private-key`` fill in what the inventory leaves unset, as in Ansible."""
    extra: dict[str, Any] = {}
    if user and not host.user:
        extra["ansible_user"] = user
    if private_key and not host.vars.get("ansible_ssh_private_key_file") and not host.vars.get("ansible_private_key_file"):
        extra["ansible_ssh_private_key_file"] = private_key
    return replace(host, vars={**host.vars, **extra}) if extra else host


def _group_members(inv: Inventory) -> dict[str, list[str]]:
    """Group name -> every host in it (children included), as Ansible's ``groups`` variable."""
    members: dict[str, list[str]] = {name: [] for name in inv.groups}
    members.setdefault("all", [])
    for host in inv.hosts.values():
        for g in host.groups:
            members.setdefault(g, []).append(host.name)
    return members


def run_manifest(manifest: Any, name: str, settings: Settings, opts: dict[str, Any]) -> int:
    from .fleetops import exec_manifest

    return exec_manifest(manifest, name, settings, opts)


# the variables that, set in a play's vars (or lower), decide a task's become over the inventory's
_BECOME_VARS = frozenset(("ansible_become", "ansible_become_password", "ansible_become_pass",
                          "ansible_sudo_pass", "ansible_su_pass"))


def sets_become_vars(plan: Plan) -> bool:
    """Whether a play's, role's, block's or task's vars in ``plan``, or what its ``include_vars``
    files or ``set_fact`` tasks set while it runs, set ``ansible_become`` or a become password:
    ansible-core applies them per task over the inventory's connection-level become (and extra
    vars reach the host's own variables: with_cli_connection)."""
    layers: list[Any] = []
    for play in plan.plays:
        layers += [play.vars, play.defaults, *(v for role in play.roles.values() for v in role.values())]
        tasks = [*play.handlers, *(t for batch in play.batches for t in batch.tasks)]
        for t in (t for top in tasks for t in top.walk()):
            layers.append(t.extras.get("vars"))
            if t.module.rsplit(".", 1)[-1] == "set_fact":
                layers.append(t.args)
            data = t.extras.get("vars_data")  # include_vars: each file's variables
            layers += data.values() if isinstance(data, dict) else ()
            tree = t.extras.get("vars_dir")
            files = tree.get("files") if isinstance(tree, dict) else None
            layers += [entry[1] for entry in files or () if isinstance(entry, (list, tuple)) and len(entry) == 2]
    return any(isinstance(layer, dict) and not _BECOME_VARS.isdisjoint(layer) for layer in layers)


def _ask_become_password() -> str:
    """-K: the become password, asked once on the terminal (echo off), kept in memory."""
    from .prompt import ask

    password = ask("BECOME password: ", private=True)
    if password is None:
        raise UsageError("-K/--ask-become-pass needs a terminal to ask on, and standard input is not one",
                         "run the command from a terminal, or grant NOPASSWD sudo to the deploying user")
    return password


def use_vault_secrets(opts: dict[str, Any]) -> None:
    """rustle-exec: the vault passwords its options and ansible.cfg give, for the loaders."""
    from . import vault

    vault.use_secrets(_vault_secrets(opts, load_ansible_config()))


def _vault_secrets(opts: dict[str, Any], acfg: AnsibleConfig) -> list[tuple[str, bytes]]:
    """The vault passwords of --vault-id, --vault-password-file, --ask-vault-pass and
    ansible.cfg's vault_password_file (ANSIBLE_VAULT_PASSWORD_FILE), in that order."""
    from .prompt import ask
    from .vault import secret_from_file

    def prompted(label: str) -> tuple[str, bytes]:
        password = ask(f"Vault password ({label}): " if label != "default" else "Vault password: ",
                       private=True)
        if password is None:
            raise UsageError("asking for the vault password needs a terminal, and standard input is "
                             "not one", "pass --vault-password-file FILE instead")
        return label, password.encode()

    secrets = []
    for spec in opts.get("vault_ids") or ():
        label, _, source = spec.rpartition("@")
        label = label or "default"
        secrets.append(prompted(label) if source == "prompt" else secret_from_file(source, label))
    secrets.extend(secret_from_file(path) for path in opts.get("vault_password_files") or ())
    if opts.get("ask_vault_pass"):
        secrets.append(prompted("default"))
    if acfg.get("vault_password_file"):
        secrets.append(secret_from_file(acfg.get("vault_password_file")))
    return secrets


def _ask_var(spec: VarPrompt) -> str | None:
    """A ``vars_prompt`` answer from the terminal (None without one)."""
    from .prompt import ask
    from .runcache import volatile

    volatile("vars_prompt")

    return ask(spec.message, private=spec.private, confirm=spec.confirm)
