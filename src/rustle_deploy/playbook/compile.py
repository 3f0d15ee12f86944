"""Playbook -> Plan: plays, roles, includes and keywords resolved the way ansible-core does.

What is decided here, once, on the controller:

* which hosts each play targets (its pattern over the inventory, groups expanded);
* every static file: ``import_playbook``, ``vars_files``, ``import_tasks``/``include_tasks``
  and ``import_role``/``include_role`` with names known on the controller, roles and their
  ``meta/main.yml`` dependencies, copy/template sources (with Ansible's search paths);
* keyword inheritance: a play's, block's, role's or import's keywords land on the tasks inside
  (``when`` and ``tags`` add up, parents first), while an ``include_*`` keeps its own ``when``,
  ``tags``, ``loop`` and ``vars`` and is evaluated once on the host, as Ansible does;
* variable layers: play ``vars`` + ``vars_files`` + the roles' exported vars, role defaults
  (play-wide and per role), role params and include params, extra vars (plan extensions).

What is refused, with file, line and column: unknown keywords and modules, missing files and
roles, and what a one-round-trip run cannot do yet (``keywords.REFUSED``, cross-host
keywords on plays of several hosts, ``delegate_to`` another host, file names that depend
on a host's data).
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import shlex
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from rustle_deploy import vault
from rustle_deploy.bridge.policy import overridden_builtins
from rustle_deploy.errors import (
    HandlerBlock,
    InventoryError,
    MissingInclude,
    PlanError,
    PlaybookError,
    UnknownModule,
)
from rustle_deploy.inventory import Inventory
from rustle_deploy.inventory.data import LOCALHOST_NAMES
from rustle_deploy.model import (
    HOST_ORDERS,
    Batch,
    Condition,
    Plan,
    PlanningOptions,
    Play,
    Serial,
    Strategy,
    Task,
    Unsafe,
    tag_unsafe,
)
from rustle_deploy.phases import CONTROLLER, DELEGATE_SELF, mixes_kinds, named_per_call
from rustle_deploy.plan.files import remember_files_dirs, script_source
from rustle_deploy.plan.schema import Reader, gather_subset_names
from rustle_deploy.plan.validate import changes_inventory
from rustle_deploy.playbook import keywords as kw
from rustle_deploy.playbook.args import (
    FREEFORM_MODULES,
    ArgsError,
    parse_kv,
    split_module_string,
)
from rustle_deploy.playbook.origins import Cond, condition_origins, filter_origins, written_at
from rustle_deploy.playbook.render import Renderer, TemplateFailed, has_template, referenced_names
from rustle_deploy.playbook.roles import (
    DEFAULT_COLLECTIONS_PATH,
    DEFAULT_ROLES_PATH,
    RoleDir,
    RoleFinder,
    display_path,
)
from rustle_deploy.playbook.varsdir import read_vars_dir
from rustle_deploy.playbook.yamlsrc import Origin, Source, read_yaml, recording
from rustle_deploy.runtime_index import (
    canonical_module,
    module_families,
    override_builtins,
    runtime_plugins,
)

__all__ = ["CompileOptions", "Compiled", "ListedPlay", "VarPrompt", "compile_playbook"]

_INCLUDES = ("include_tasks", "import_tasks", "include_role", "import_role")
_PREFIXES = ("ansible.builtin.", "ansible.legacy.")
# ansible-core 2.19's own modules: a name from this list that the runtime lacks is "not
# supported yet", any other unknown name is a misspelling or a collection's module
ANSIBLE_BUILTIN_MODULES = frozenset("""
add_host apt apt_key apt_repository assemble assert async_status blockinfile command copy cron
deb822_repository debconf debug dnf dnf5 dpkg_selections expect fail fetch file find gather_facts
get_url getent git group group_by hostname import_playbook import_role import_tasks include_role
include_tasks include_vars iptables known_hosts lineinfile meta mount_facts package package_facts
pause ping pip raw reboot replace rpm_key script service service_facts set_fact set_stats setup
shell slurp stat subversion systemd systemd_service sysvinit tempfile template unarchive uri user
validate_argument_spec wait_for wait_for_connection yum_repository include
""".split())
# ansible-core 2.19's own lookup plugins (what a with_<name> loop may name)
BUILTIN_LOOKUPS = frozenset("""
config csvfile dict env file fileglob first_found indexed_items ini inventory_hostnames items
lines list nested password pipe random_choice sequence subelements template together unvault
url varnames vars
""".split())
_LOOKUP_CALL = re.compile(r"\b(?:lookup|query|q)\(|\bwith_\w+")
# modules whose arguments the compiler reads (files to embed, variable names, includes)
_ARGS_KNOWN_HERE = frozenset({"copy", "template", "include_vars", "set_fact", "meta", "script",
                              "gather_facts", "setup", "assemble", "unarchive"}) | set(_INCLUDES)
_SRC_SHAPE = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)  # a templated name's shape: each part a wildcard
# lookup('file', EXPR) of one computed name (compiler/lookups.py runs it)
_FILE_LOOKUP = re.compile(r"""\b(?:lookup|query|q)\(\s*['"](?:ansible\.builtin\.)?file['"]\s*,\s*([^()'"]*?(?:(['"])[^'"]*\2[^()'"]*?)*)\s*\)""")
_INCLUDE_VARS_DIR = frozenset({"depth", "files_matching", "ignore_files", "extensions",
                               "ignore_unknown_extensions"})
_MAX_CHOICES = 200  # tasks files an include with a host-dependent name may choose from
_PROMPT_KEYS = frozenset({"name", "prompt", "default", "private", "confirm", "encrypt", "salt",
                          "salt_size", "unsafe"})
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SELF = DELEGATE_SELF
_LOCALHOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class CompileOptions:
    extra_vars: dict[str, Any] = field(default_factory=dict)
    # where each extra var came from (parse_extra_vars' origins), for strict-conditional messages
    extra_origins: dict[str, str] = field(default_factory=dict)
    roles_path: tuple[str, ...] = DEFAULT_ROLES_PATH
    forks: int | None = None
    check: bool = False
    diff: bool = False
    play_defaults: dict[str, Any] = field(default_factory=dict)  # become* from ansible.cfg
    defaults_source: str = "ansible.cfg"
    start_at_task: str | None = None  # --start-at-task: a task name or an fnmatch pattern
    library: tuple[str, ...] = ()  # ansible.cfg's library: where custom modules live
    # ansible.cfg's collections_path / ANSIBLE_COLLECTIONS_PATH: where roles of collections are
    collections_path: tuple[str, ...] = DEFAULT_COLLECTIONS_PATH
    # vars_prompt: asks the operator (None: no terminal, a prompt without default is an error);
    # with prompt_defaults, nothing is asked and the defaults are used (listings, syntax check)
    prompt: Callable[[VarPrompt], str | None] | None = None
    prompt_defaults: bool = False
    # --force-handlers / ansible.cfg's force_handlers: a play's own force_handlers wins
    force_handlers: bool = False
    # ansible.cfg's error_on_missing_handler: false drops a notify of no handler, with a note
    error_on_missing_handler: bool = True
    # ansible.cfg's allow_broken_conditionals (ANSIBLE_ALLOW_BROKEN_CONDITIONALS): a
    # conditional whose result is not a boolean takes its truth instead of failing the task
    allow_broken_conditionals: bool = False
    # ansible.cfg's deprecation_warnings (PlanningOptions.deprecation_warnings)
    deprecation_warnings: bool = True
    # each become method's program and flags from ansible.cfg and ANSIBLE_* (AnsibleConfig.become_config)
    become_config: dict[str, dict[str, str]] = field(default_factory=dict)
    # plays after one holding add_host/group_by (docs/phases.md): "refuse" them; "stop" before
    # them (--run compiles them again once the change is known, Compiled.rest); "static": over
    # the inventory as it is (listings and --syntax-check, as ansible-playbook lists them)
    later_plays: str = "refuse"
    # play number -> its hosts, for the plays an earlier compile of this run chose hosts for
    # (they ran already: the same plan indexes, and their changes are not noted again)
    done_hosts: dict[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class VarPrompt:
    """One ``vars_prompt`` entry of a play, as Ansible reads it."""

    name: str
    prompt: str
    default: Any = None
    private: bool = True
    confirm: bool = False

    @property
    def message(self) -> str:
        """What ansible-playbook prints before the answer."""
        if self.default is not None:
            return f"{self.prompt} [{self.default}]: "
        return f"{self.prompt}: "


@dataclass
class ListedTask:
    name: str
    tags: tuple[str, ...]


@dataclass
class ListedPlay:
    """What ``--list-hosts``/``--list-tasks``/``--list-tags`` show for one play."""

    number: int
    name: str
    pattern: str
    hosts: list[str]
    tags: tuple[str, ...]
    tasks: list[ListedTask] = field(default_factory=list)


@dataclass
class Compiled:
    plan: Plan
    inventory: Inventory  # with the group_vars/host_vars beside the playbook
    plays: list[ListedPlay]
    notes: list[str]
    origins: dict[str, Origin]  # plan JSON pointer -> where the playbook says it
    # shown whatever the verbosity: what will fail when a host evaluates it (validate.py)
    warnings: list[str] = field(default_factory=list)
    # later_plays="stop": the compile stopped after the play holding add_host/group_by, and
    # the plays from number ``rest`` on are to be compiled once it has run (None: it did not)
    rest: int | None = None

    def locate(self, exc: PlanError) -> PlaybookError:
        """A PlanError about this plan, re-addressed to the playbook line it came from."""
        pointer = exc.pointer
        while pointer and pointer not in self.origins:
            pointer = pointer.rsplit("/", 1)[0]
        origin = self.origins.get(pointer, Origin(self.plan.source))
        return origin.error(exc.detail, exc.hint)


@dataclass(frozen=True)
class Ctx:
    """What the tasks of a list inherit from the plays, blocks, roles and imports around them."""

    src: Source
    task_dir: str
    when: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    kws: tuple[tuple[str, Any, Origin], ...] = ()  # inherited keywords, innermost last
    env: tuple[tuple[Any, Origin], ...] = ()
    vars: tuple[tuple[str, Any], ...] = ()
    role: RoleCall | None = None
    handler: bool = False
    include_stack: tuple[str, ...] = ()
    listed: bool = True  # tasks inside dynamic includes are not listed (as ansible-playbook)
    nested: bool = False  # inside a handler's block or a file a handler includes: no block here

    def keyword(self, name: str) -> tuple[Any, Origin] | None:
        for key, value, origin in reversed(self.kws):
            if key == name:
                return value, origin
        return None


@dataclass
class RoleCall:
    """One invocation of a role in a play (a ``roles:`` entry, a dependency, an import)."""

    key: str
    role: RoleDir
    params: dict[str, Any]
    origin: Origin
    identity: str
    parent: RoleCall | None = None
    tasks_from: str = "main"
    handlers_from: str = "main"
    vars_from: str = "main"
    defaults_from: str = "main"
    public: bool = True
    # an import_role/include_role's own allow_duplicates (None: not given)
    allow_duplicates: bool | None = None
    defaults: dict[str, Any] = field(default_factory=dict)  # deps' then its own
    vars: dict[str, Any] = field(default_factory=dict)

    def chain(self) -> Iterator[RoleCall]:
        call: RoleCall | None = self
        while call is not None:
            yield call
            call = call.parent


class _PlayState:
    def __init__(self, index: int, hosts: list[str], play_vars: dict[str, Any],
                 play_dir: str) -> None:
        self.index = index
        self.play_dir = play_dir  # the directory of the playbook file the play is in
        self.hosts = hosts
        self.vars = play_vars
        self.next_id = 0
        self.roles: dict[str, RoleCall] = {}
        self.dependent_roles: dict[str, None] = {}  # names of the roles: entries' dependencies
        self.imported_roles: list[str] = []  # each import_role's role, in order
        self.role_keys: Counter[str] = Counter()
        self.identities: Counter[str] = Counter()  # roles: entries and deps, to deduplicate
        self.handlers: list[Task] = []
        self.handler_identities: set[str] = set()
        # the handlers of import_role/include_role (task ids), which ansible-core appends to the
        # play's handlers (after its own and its roles:'), in task order; for an include_role's,
        # the ids of the includes whose run adds them (None: an import_role's, there from the start)
        self.late_handlers: dict[str, list[str] | None] = {}
        # an import_role/include_role's role and handlers file -> its handlers (task ids): one set
        # for every include of them, as ansible-core runs a notified handler of theirs once
        self.include_handlers: dict[str, list[str]] = {}
        self.listed: list[ListedTask] = []
        self._connections: set[str] | None = None
        # the play's rollout keywords (docs/rollouts.md)
        self.serial: Serial | None = None
        self.max_fail_percentage: float | None = None
        self.any_errors_fatal = False
        self.order = "inventory"
        self.force_handlers = False
        self.fact_path: str | None = None  # the play's fact_path (its gathered ansible_local)
        self.gather_subset: tuple[str, ...] | None = None  # what the play's gathering may run
        self.gather_timeout: int | None = None
        self.connection_origins: list[Origin] = []  # where the play's remote_user/port are
        self.fatal_override = False  # a task says any_errors_fatal: false under the play's true

    def connections(self, inv: Inventory) -> set[str]:
        if self._connections is None:
            self._connections = {h.connection for h in inv.resolve(self.hosts)} if self.hosts else set()
        return self._connections

    @property
    def single_host(self) -> bool:
        return len(self.hosts) <= 1

    def new_id(self) -> str:
        self.next_id += 1
        return f"task_{self.next_id - 1}"


def compile_playbook(path: str, inventory: Inventory, options: CompileOptions, *,
                     text: str | None = None) -> Compiled:
    """Read the playbook at ``path`` (``text``: its content, for standard input)."""
    with recording():  # where each value was written (playbook/origins.py)
        return _Compiler(path, inventory, options).run(text)


class _Compiler:
    def __init__(self, path: str, inventory: Inventory, options: CompileOptions) -> None:
        self.path = path
        self.shown = "<stdin>" if path == "-" else display_path(os.path.abspath(path))
        self.basedir = os.getcwd() if path == "-" else os.path.dirname(os.path.abspath(path))
        self.inv = inventory.with_playbook_dir(self.basedir)
        self.options = options
        self.extra = dict(options.extra_vars)
        self.finder = RoleFinder(self.basedir, options.roles_path, options.collections_path)
        self.renderer = Renderer(self.basedir)
        # roles whose tasks have a templated copy/template src the host renders: the compiler
        # searches their directories for the files it may name (compiler/sources.py)
        self.source_roots: dict[str, None] = {}
        # a task compiled so far runs on the controller (delegate_to: localhost): a copy or
        # template src missing now may be what it creates (beside the playbook, as Ansible's
        # copy finds it), read when the task that names it runs
        self.controller_tasks = False
        self.origins: dict[str, Origin] = {}
        self.notes: list[str] = []
        self.plays: list[Play] = []
        self.listing: list[ListedPlay] = []
        self.play_count = 0
        self.started = options.start_at_task is None  # --start-at-task found (or not asked)
        self._sources: dict[str, Source] = {}
        # names tasks may set while the plan runs (register, set_fact, include_vars): a name
        # the host evaluates (an include's file, a copy source) that reads one of them cannot
        # be rendered on the controller, even when a default exists there
        self.runtime_names: set[str] = set()
        # the directories of the roles met so far, whose filter_plugins/ and test_plugins/ a
        # task's templates may call (with the playbook's own)
        self.plugin_role_dirs: dict[str, None] = {}
        self.playbook_dirs: dict[str, None] = {}  # the imported playbooks' directories (Plan.playbook_dirs)
        self.choosing = False  # compiling the candidates of an include_choice (not nested)
        # the first add_host/group_by task: no play may follow it (its hosts are chosen now)
        self.inventory_changed: tuple[Origin, str] | None = None
        self.rest: int | None = None  # later_plays="stop": the play number it stopped at
        # a play's remote_user/port for the hosts whose inventory sets none: host -> {var: value}
        self.connection_vars: dict[str, dict[str, Any]] = {}

    # -- files -------------------------------------------------------------------------------
    def read(self, path: str, what: str) -> Source:
        real = os.path.realpath(path)
        if real not in self._sources:
            self._sources[real] = read_yaml(path, shown=display_path(path), what=what)
        return self._sources[real]

    def run(self, text: str | None) -> Compiled:
        override_builtins(frozenset())  # a plan compiled before in this process set its own
        if self.path == "-":
            src = read_yaml(os.path.join(self.basedir, "<stdin>"), shown="<stdin>", text=text or "",
                            what="playbook")
        else:
            src = read_yaml(self.path, shown=self.shown, text=text, what="playbook")
        self.playbook(src, _Import(), ())
        if not self.started and self.rest is None:  # (else it may be in the plays compiled later)
            raise PlaybookError(f"no task matches --start-at-task {self.options.start_at_task!r}",
                                "give a task's name (or 'role : name', or a pattern with * and ?) "
                                "as --list-tasks shows it; tasks inside include_tasks/include_role "
                                "cannot be started at, as in Ansible: only static imports are "
                                "followed", file=self.shown)
        hosts = list(dict.fromkeys(h for p in self.plays for h in p.hosts))
        plan = Plan(
            source=self.shown, base_dir=self.basedir, sha256="", rustle_plan_version="0.1.0",
            created_at=None,
            options=PlanningOptions(forks=self.options.forks or 50, check_mode=False,
                                    diff_mode=False, strategy=Strategy("Linear"),
                                    allow_broken_conditionals=self.options.allow_broken_conditionals,
                                    deprecation_warnings=self.options.deprecation_warnings,
                                    become_config=self.options.become_config),
            plays=tuple(self.plays), binary_deployments=(),
            total_tasks=sum(len(p.batches[0].tasks) if p.batches else 0 for p in self.plays),
            hosts=tuple(hosts), extra_vars=self.extra, playbook_dir=self.basedir,
            playbook_dirs=tuple(self.playbook_dirs),
        )
        from rustle_deploy.plan.write import plan_document

        doc = plan_document(plan)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
        plan = replace(plan, sha256=digest)
        remember_files_dirs(plan, tuple(self.source_roots))
        inventory = self.inv.with_host_vars(self.connection_vars) if self.connection_vars else self.inv
        compiled = Compiled(plan=plan, inventory=inventory, plays=self.listing, notes=self.notes,
                            origins=self.origins, rest=self.rest)
        from rustle_deploy.plan import validate

        warned: list[PlanError] = []
        try:
            validate.validate(plan, later_plays=self.options.later_plays != "refuse", warnings=warned)
        except PlanError as exc:
            raise compiled.locate(exc) from exc
        compiled.warnings.extend(compiled.locate(w).message.split("\n", 1)[0] for w in warned)
        return compiled

    # -- playbooks and plays -----------------------------------------------------------------
    def playbook(self, src: Source, imp: _Import, stack: tuple[str, ...]) -> None:
        data = src.data
        if data is None:
            raise src.error("the playbook is empty", "a playbook is a list of plays: - hosts: all",
                            data)
        if not isinstance(data, list):
            raise src.error(f"a playbook is a list of plays, not a {_kind(data)}",
                            "start each play with '- hosts: PATTERN'", data)
        for i, entry in enumerate(data):
            origin = src.origin(data, i, value=True)
            if not isinstance(entry, dict):
                raise origin.error(f"a play is a mapping, not a {_kind(entry)}",
                                   "start each play with '- hosts: PATTERN'")
            key = next((k for k in entry if isinstance(k, str) and _short(k) == "import_playbook"
                        and (k == "import_playbook" or k.startswith(_PREFIXES))), None)
            if key is not None:
                self.import_playbook(src, entry, key, imp, stack)
            else:
                self.play(src, entry, imp)

    def import_playbook(self, src: Source, ds: dict[str, Any], key: str, imp: _Import,
                        stack: tuple[str, ...]) -> None:
        self.check_keys(src, ds, kw.IMPORT_PLAYBOOK | {key}, "an import_playbook", ds)
        target = ds[key]
        if not isinstance(target, str) or not target.strip():
            raise src.error("import_playbook needs a file name", "- import_playbook: other.yml",
                            ds, key, value=True)
        own_vars = self.vars_mapping(src, ds, "vars", "import_playbook")
        name = self.controller_value(src, ds, key, target, [imp.vars, own_vars])
        path = os.path.normpath(os.path.join(src.dir, os.path.expanduser(str(name).strip())))
        if not os.path.isfile(path):
            raise src.error(f"the playbook {name!r} to import was not found (looked for "
                            f"{display_path(path)})", "paths are relative to the importing "
                            "playbook's directory", ds, key, value=True)
        real = os.path.realpath(path)
        if real in stack:
            raise src.error(f"import_playbook loop: {display_path(path)} imports itself",
                            "remove the import that closes the loop", ds, key, value=True)
        when = imp.when + tuple(self.conditions(src, ds))
        tags = imp.tags + self.tags(src, ds)
        merged = dict(imp.vars)
        merged.update(own_vars)
        sub = read_yaml(path, shown=display_path(path), what="playbook")
        if sub.dir != self.basedir:  # its library/ and plugins, as ansible-core adds them when it loads it
            self.playbook_dirs[sub.dir] = None
        self.playbook(sub, _Import(vars=merged, tags=tags, when=when), stack + (real,))

    def play(self, src: Source, ds: dict[str, Any], imp: _Import) -> None:
        self.play_count += 1
        number = self.play_count
        if self.rest is not None:
            return
        self.check_keys(src, ds, kw.PLAY, "a play", ds)
        if self.inventory_changed is not None and self.options.later_plays == "stop":
            self.rest = number
            return
        if self.inventory_changed is not None and self.options.later_plays == "refuse":
            origin, module = self.inventory_changed
            where = src.origin(ds)
            raise origin.error(f"{module} changes the inventory, and play {number} ({where}) follows: "
                               "its hosts can only be chosen once the change has run",
                               "run the playbook with --run: rustle-deploy compiles the plays after "
                               f"{module} once it has run (docs/phases.md); --compile-only, --emit-plan, "
                               "--dry-run and a deploy without --run compile every play beforehand")
        if "hosts" not in ds or ds["hosts"] in (None, "", []):
            raise src.error("the play has no 'hosts'", "every play names its hosts: "
                            "hosts: all, hosts: webservers, hosts: web1:web2", ds)
        play_vars = self.vars_mapping(src, ds, "vars", "play")
        play_vars.update(imp.vars)
        play_vars.update(self.vars_prompt(src, ds))
        pattern_raw = ds["hosts"]
        if isinstance(pattern_raw, list):
            if not all(isinstance(p, str) for p in pattern_raw):
                raise src.error("hosts must be a pattern or a list of patterns", None, ds,
                                "hosts", value=True)
            pattern_raw = ",".join(pattern_raw)
        if not isinstance(pattern_raw, str):
            raise src.error(f"hosts must be a host pattern (a string), not a {_kind(pattern_raw)}",
                            "hosts: all", ds, "hosts", value=True)
        pattern = str(self.controller_value(src, ds, "hosts", pattern_raw, [play_vars]))
        try:
            hosts = [h.name for h in self.inv.select(pattern)]
        except InventoryError as exc:
            raise src.error(f"bad host pattern {pattern!r}: {exc.detail}", exc.hint, ds, "hosts",
                            value=True) from exc
        done = number in self.options.done_hosts
        if done:  # it ran already, over the hosts the inventory had then (less those that
            # meta: refresh_inventory dropped from it: they take no part in the plays after it)
            hosts = [h for h in self.options.done_hosts[number] if h in self.inv.hosts or h in LOCALHOST_NAMES]
        name = ds.get("name") if isinstance(ds.get("name"), str) and ds.get("name") else pattern
        listed = ListedPlay(number=number, name=str(name), pattern=pattern, hosts=hosts,
                            tags=imp.tags + self.tags(src, ds))
        self.listing.append(listed)
        st = _PlayState(len(self.plays), hosts, play_vars, src.dir)
        st.force_handlers = self.options.force_handlers
        self.check_play_keywords(src, ds, st)
        self.rollout_keywords(src, ds, play_vars, st)
        self.play_connection(src, ds, play_vars, st)
        ctx = Ctx(src=src, task_dir=src.dir, when=imp.when, tags=listed.tags,
                  kws=tuple((k, v, Origin(self.options.defaults_source))
                            for k, v in self.options.play_defaults.items()))
        # -b, --become-user and ansible.cfg's become* are where plays start from: a play's own
        # keywords (below, in inherit) come after them and win
        ctx = self.inherit(src, ds, ctx, st, include_when=False, include_tags=False,
                           include_vars=False)
        # vars_files, then the roles' exported vars, above play vars
        for path, data in self.vars_files(src, ds, play_vars):
            play_vars.update(data)
            self.notes.append(f"vars_files: read {display_path(path)}")
        role_calls = self.role_entries(src, ds, st, ctx)
        # ansible-core's magic role variables (VariableManager._get_magic_variables)
        # (import_role adds its role when the play is parsed: appended below, to the same lists;
        # include_role adds its own when it runs, which is not reflected)
        play_roles = [call.role.name for call, _ in role_calls]
        all_roles = list(dict.fromkeys([*st.dependent_roles, *play_roles]))
        play_vars.update({"ansible_play_role_names": play_roles, "role_names": play_roles,
                          "ansible_dependent_role_names": list(st.dependent_roles),
                          "ansible_role_names": all_roles})
        st.vars = play_vars
        tasks: list[Task] = []
        base = f"/plays/{st.index}/batches/0/tasks"
        self.task_list(src, ds, "pre_tasks", ctx, st, tasks, base)
        pre_count = len(tasks)
        for call, call_ctx in role_calls:
            self.compile_role(call, call_ctx, st, tasks, base)
        self.task_list(src, ds, "tasks", ctx, st, tasks, base)
        main_count = len(tasks)
        self.task_list(src, ds, "post_tasks", ctx, st, tasks, base)
        play_roles.extend(st.imported_roles)
        all_roles.extend(n for n in dict.fromkeys(st.imported_roles) if n not in all_roles)
        handler_ctx = replace(ctx, handler=True)
        for call, call_ctx in role_calls:
            self.role_handlers(call, call_ctx, st, handler_ctx)
        self.handler_list(src, ds, handler_ctx, st)
        self.order_handlers(st)
        if st.handlers:
            # Ansible flushes handlers after pre_tasks and after roles + tasks too
            if len(tasks) > main_count > pre_count:
                tasks.insert(main_count, self.flush_task(st, base, main_count))
            if len(tasks) > pre_count > 0:
                tasks.insert(pre_count, self.flush_task(st, base, pre_count))
            tasks = self.renumber(tasks, base)
        listed.tasks = st.listed
        if not self.started:
            kept = self.start_at(tasks, base)
            if kept is None:
                self.notes.append(f"play {number} ({name}): skipped, --start-at-task is in a later "
                                  "play")
                return
            tasks = self.renumber(kept, base)
        if not done:
            self.inventory_changes(tasks, st)
        if not hosts:
            self.notes.append(f"play {number} ({name}): no hosts matched {pattern!r}; skipped")
            return
        defaults: dict[str, Any] = {}
        exported: dict[str, Any] = {}
        for call in st.roles.values():
            if call.public:
                defaults.update(call.defaults)
                exported.update(call.vars)
        play_vars = {**play_vars, **exported}
        tasks = self.missing_notify(tasks, st, str(name))
        st.handlers = self.missing_notify(st.handlers, st, str(name))
        roles_table = {
            k: {"name": c.role.name, "path": c.role.path, "defaults": c.defaults, "vars": c.vars,
                "params": c.params}
            for k, c in st.roles.items()
        }
        pointer = f"/plays/{st.index}"
        self.origins[pointer] = src.origin(ds)
        self.plays.append(Play(
            play_id=f"play-{st.index}", name=str(name), hosts=tuple(hosts),
            strategy=Strategy("Linear"), serial=st.serial,
            batches=(Batch(batch_id="batch-0", hosts=(), tasks=tuple(tasks),
                           pointer=f"{pointer}/batches/0"),),
            handlers=tuple(st.handlers), vars=play_vars, pointer=pointer, defaults=defaults,
            roles=roles_table, max_fail_percentage=st.max_fail_percentage,
            # a task's own any_errors_fatal: false wins over the play's (Ansible reads the
            # task's inherited value): then the tasks that keep it carry it one by one
            any_errors_fatal=st.any_errors_fatal and not st.fatal_override, order=st.order,
            force_handlers=st.force_handlers, fact_path=st.fact_path, gather_subset=st.gather_subset,
            gather_timeout=st.gather_timeout, pattern=pattern))

    def missing_notify(self, tasks: list[Task], st: _PlayState, play: str) -> list[Task]:
        """A notify that names no handler of the play is Ansible's error only when it fires (a
        changed result): it moves to ``notify_missing``, which fails the host then. With
        ``error_on_missing_handler = false`` it is dropped with a warning note, as Ansible warns
        and goes on."""
        from ..plan.validate import handler_topics

        topics = handler_topics(st.handlers)
        drop = not self.options.error_on_missing_handler

        def fix(task: Task) -> Task:
            missing = [n for n in task.notify if n not in topics]
            for n in missing if drop else ():
                self.notes.append(f"[WARNING]: The requested handler {n!r} was not found in either the "
                                  f"main handlers list nor in the listening handlers list (play {play!r})")
            extras = task.extras
            if missing and not drop:
                extras = {**extras, "notify_missing": missing}
                self.notes.append(f"notify {', '.join(map(repr, missing))} names no handler of play {play!r}: "
                                  "the host fails if the task reports changed, as with ansible-playbook")
            return replace(
                task, notify=tuple(n for n in task.notify if n in topics), extras=extras,
                block=None if task.block is None else tuple(fix(t) for t in task.block),
                rescue=tuple(fix(t) for t in task.rescue), always=tuple(fix(t) for t in task.always))

        return [fix(t) for t in tasks]

    def inventory_changes(self, tasks: list[Task], st: _PlayState) -> None:
        """Note the first add_host/group_by task: no play may follow it (plan/validate.py
        refuses the rest: docs/phases.md)."""
        for task in [*tasks, *st.handlers]:
            for leaf in task.walk():
                what = changes_inventory(leaf)
                if self.inventory_changed is None and what:
                    self.inventory_changed = (self.origins.get(leaf.pointer, Origin(self.shown)), what)

    def order_handlers(self, st: _PlayState) -> None:
        """The play's handlers in ansible-core's order: its roles:' and its own, then those of its
        import_role and include_role tasks, which ansible-core appends when it loads the task (an
        include_role's when it runs: only then can a notify find them, ``included_by``)."""
        late = [h for h in st.handlers if h.task_id in st.late_handlers]
        if not late:
            return
        ordered = [h for h in st.handlers if h.task_id not in st.late_handlers] + late
        base = f"/plays/{st.index}/handlers"
        # through a pointer no task has, so that no origin is overwritten before it moved
        moved = [_repoint(h, h.pointer, f"{base}~/{i}", self.origins) for i, h in enumerate(ordered)]
        st.handlers = [
            replace(_repoint(h, h.pointer, f"{base}/{i}", self.origins), execution_order=i,
                    extras={**h.extras, "included_by": list(st.late_handlers[h.task_id] or ())}
                    if st.late_handlers.get(h.task_id) is not None else h.extras)
            for i, h in enumerate(moved)]

    def renumber(self, tasks: list[Task], base: str) -> list[Task]:
        """Pointers of the top-level list after implicit tasks were inserted (last first, so
        that no origin is overwritten before it moved)."""
        out: list[Task] = []
        for i in range(len(tasks) - 1, -1, -1):
            task, pointer = tasks[i], f"{base}/{i}"
            if task.pointer != pointer:
                task = _repoint(task, task.pointer, pointer, self.origins)
            out.append(replace(task, execution_order=i))
        out.reverse()
        return out

    def start_at(self, tasks: list[Task], base: str) -> list[Task] | None:
        """``tasks`` from the first one ``--start-at-task`` names, as Ansible's play iterator
        finds it: in order, into blocks (their ``block`` part, then ``always``; not ``rescue``,
        which runs only on a failure) and statically imported tasks and roles, not into the
        tasks of ``include_tasks``/``include_role`` (the include itself can be named); None
        when no task of the list matches."""
        pattern = str(self.options.start_at_task)
        for i, task in enumerate(tasks):
            if task.block is None or "include" in task.extras:
                full = task.name
                own = full.split(" : ", 1)[1] if "role" in task.extras and " : " in full else full
                if any(n == pattern or fnmatch.fnmatchcase(n, pattern) for n in (own, full)):
                    self.started = True
                    return tasks[i:]
                continue
            for part in ("block", "always"):
                children = list(getattr(task, part))
                inner = self.start_at(children, f"{task.pointer}/{part}")
                if inner is None:
                    continue
                moved = tuple(
                    replace(_repoint(c, c.pointer, f"{task.pointer}/{part}/{j}", self.origins),
                            execution_order=j) if c.pointer != f"{task.pointer}/{part}/{j}" else c
                    for j, c in enumerate(inner))
                if part == "block":
                    trimmed = replace(task, block=moved)
                else:  # the block part was passed over: only the rest of always runs
                    trimmed = replace(task, block=(), rescue=(), always=moved)
                return [trimmed, *tasks[i + 1:]]
        return None

    def flush_task(self, st: _PlayState, base: str, index: int) -> Task:
        # marked: under force_handlers a host that failed in the section runs its handlers here
        return Task(task_id=st.new_id(), name="meta: flush_handlers", module="meta",
                    args={"_raw_params": "flush_handlers"}, hosts=(), tags=("always",),
                    pointer=f"{base}/{index}",
                    extras={"implicit_flush": True} if st.force_handlers else {})

    def check_play_keywords(self, src: Source, ds: dict[str, Any], st: _PlayState) -> None:
        strategy = ds.get("strategy")
        if has_template(strategy):  # "{{ test_strategy | default('linear') }}", as Ansible renders it
            strategy = self.controller_value(src, ds, "strategy", strategy, [st.vars], "'strategy'")
        if strategy not in (None, "linear", "free", "host_pinned", "ansible.builtin.linear",
                            "ansible.builtin.free", "ansible.builtin.host_pinned"):
            raise src.error(f"strategy {strategy!r} is not supported",
                            "each host runs its play on its own, as the free strategy does; "
                            "linear and free are accepted", ds, "strategy", value=True)
        gather = ds.get("gather_facts")
        if gather not in (None, True, False) and not isinstance(gather, str):
            raise src.error("gather_facts takes a boolean", None, ds, "gather_facts", value=True)

    def play_connection(self, src: Source, ds: dict[str, Any], play_vars: dict[str, Any],
                        st: _PlayState) -> None:
        """A play's ``remote_user`` and ``port``: for its hosts whose inventory sets no
        ``ansible_user``/``ansible_port`` (which win, as in Ansible), the connection's. A host
        keeps one connection for the whole run: plays that disagree for a host are refused."""
        for key, var, spelled in (("remote_user", "ansible_user", ("ansible_user", "ansible_ssh_user")),
                                  ("port", "ansible_port", ("ansible_port", "ansible_ssh_port"))):
            if ds.get(key) is None:
                continue
            value = self.controller_value(src, ds, key, ds[key], [play_vars], f"'{key}'")
            if key == "port":
                if isinstance(value, bool) or not str(value).strip().isdigit():
                    raise src.error(f"port takes a port number, not {value!r}", "port: 2222", ds, key,
                                    value=True)
                value = int(str(value).strip())
            else:
                value = str(value)
            st.connection_origins.append(src.origin(ds, key))
            for name in st.hosts:
                host = self.inv.hosts.get(name)
                if host is None or any(v in host.vars for v in spelled):
                    continue
                earlier = self.connection_vars.get(name, {}).get(var)
                if earlier is not None and earlier != value:
                    raise src.error(f"{key} {value!r} for host {name!r} differs from an earlier "
                                    f"play's ({earlier!r}): a host keeps one connection for the whole run",
                                    f"set {var} for {name} in the inventory, or give every play the same "
                                    f"{key}", ds, key, value=True)
                self.connection_vars.setdefault(name, {})[var] = value

    def vars_prompt(self, src: Source, ds: dict[str, Any]) -> dict[str, Any]:
        """The play's ``vars_prompt`` answers (play vars), asked in order, as Ansible asks them:
        a name given with ``-e`` is not asked; an empty answer takes the default; without a
        terminal the default is used, and a prompt without one is an error."""
        entries = ds.get("vars_prompt")
        if entries is None:
            return {}
        if isinstance(entries, dict):
            entries = [entries]
        if not isinstance(entries, list):
            raise src.error(f"vars_prompt is a list of prompts, not a {_kind(entries)}",
                            "vars_prompt:\n  - name: password\n    prompt: Password?", ds,
                            "vars_prompt", value=True)
        out: dict[str, Any] = {}
        for i, entry in enumerate(entries):
            origin = src.origin(entries, i, value=True)
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                    or not _VAR_NAME.match(entry["name"]):
                raise origin.error("a vars_prompt entry is a mapping with a variable 'name'",
                                   "- name: password\n  prompt: Password?")
            for key in entry:
                if key not in _PROMPT_KEYS:
                    close = kw.suggest(key, _PROMPT_KEYS)
                    raise src.error(f"'{key}' is not a vars_prompt option",
                                    f"did you mean '{close}'?" if close else
                                    "options: " + ", ".join(sorted(_PROMPT_KEYS)), entry, key)
            for key in ("encrypt", "salt", "salt_size"):
                if entry.get(key) is not None:
                    raise src.error(f"vars_prompt '{key}' is not supported",
                                    "hash the value yourself and pass it with -e", entry, key)
            name = entry["name"]
            try:
                spec = VarPrompt(name=name, prompt=str(entry.get("prompt") or f"input for {name}"),
                                 default=entry.get("default"),
                                 private=_boolean(entry.get("private", True), "private"),
                                 confirm=_boolean(entry.get("confirm", False), "confirm"))
                unsafe = _boolean(entry.get("unsafe", False), "unsafe")
            except PlanError as exc:
                raise origin.error(exc.detail, exc.hint) from exc
            if name in self.extra:
                continue
            if self.options.prompt_defaults:
                value = spec.default
            else:
                answer = self.options.prompt(spec) if self.options.prompt is not None else None
                if answer is None and spec.default is None:
                    raise origin.error(f"vars_prompt '{name}' needs a value, and standard input "
                                       "is not a terminal to ask on",
                                       f"pass it with -e {name}=VALUE, or give the prompt a "
                                       "default")
                value = answer if answer or spec.default is None else spec.default
            out[name] = Unsafe(value) if unsafe and isinstance(value, str) else value
        return out

    def rollout_keywords(self, src: Source, ds: dict[str, Any], play_vars: dict[str, Any],
                         st: _PlayState) -> None:
        """``serial``, ``max_fail_percentage``, ``any_errors_fatal``, ``order`` and
        ``force_handlers`` of the play (templated over play and extra vars, as Ansible does),
        checked with the plan's rules."""
        reader = Reader(self.shown)
        for key in ("serial", "max_fail_percentage", "any_errors_fatal", "order", "force_handlers", "fact_path",
                    "gather_subset", "gather_timeout"):
            if ds.get(key) is None:
                continue
            value = self.controller_value(src, ds, key, ds[key], [play_vars], f"'{key}'")
            try:
                if key == "serial":
                    st.serial = reader.serial(value, f"/{key}")
                elif key == "max_fail_percentage":
                    st.max_fail_percentage = reader.percentage(value, f"/{key}")
                elif key == "any_errors_fatal":
                    st.any_errors_fatal = _boolean(value, key)
                elif key == "force_handlers":
                    st.force_handlers = _boolean(value, key)
                elif key == "fact_path":
                    st.fact_path = reader.string(value, f"/{key}")
                elif key == "gather_subset":
                    st.gather_subset = gather_subset_names(reader, value, f"/{key}")
                elif key == "gather_timeout":
                    st.gather_timeout = reader.integer(value, f"/{key}", minimum=1)
                elif value not in HOST_ORDERS:
                    raise PlanError(f"unknown host order {value!r}",
                                    f"order is one of {', '.join(HOST_ORDERS)}")
                else:
                    st.order = str(value)
            except PlanError as exc:
                raise src.error(exc.detail, exc.hint, ds, key, value=True) from exc

    # -- variables ---------------------------------------------------------------------------
    def vars_mapping(self, src: Source, ds: dict[str, Any], key: str, what: str) -> dict[str, Any]:
        value = ds.get(key)
        if value is None:
            return {}
        items: list[tuple[Any, Any]] = []
        if isinstance(value, dict):
            items = [(value, value)]
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            items = [(v, v) for v in value]
        else:
            raise src.error(f"{what} vars must be a mapping of variable names to values, not a "
                            f"{_kind(value)}", "vars:\n  name: value", ds, key, value=True)
        out: dict[str, Any] = {}
        for mapping, _ in items:
            for name, val in mapping.items():
                if not isinstance(name, str) or not _VAR_NAME.match(name):
                    raise src.error(f"invalid variable name {name!r} in {what} vars",
                                    "variable names are letters, digits and underscores, not "
                                    "starting with a digit", mapping, name)
                out[name] = val
        return out

    def vars_files(self, src: Source, ds: dict[str, Any],
                   play_vars: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        entries = ds.get("vars_files")
        if entries is None:
            return
        if isinstance(entries, str):
            entries = [entries]
        if not isinstance(entries, list):
            raise src.error("vars_files is a list of file names", "vars_files: [vars/main.yml]",
                            ds, "vars_files", value=True)
        for i, entry in enumerate(entries):
            choices = entry if isinstance(entry, list) else [entry]
            found = None
            tried = []
            for choice in choices:
                if not isinstance(choice, str):
                    raise src.error("a vars_files entry is a file name", None, entries, i,
                                    value=True)
                name = self.controller_value(src, entries, i, choice, [play_vars])
                path = os.path.normpath(os.path.join(src.dir, os.path.expanduser(str(name))))
                tried.append(display_path(path))
                if os.path.isfile(path):
                    found = path
                    break
            if found is None:
                raise src.error(f"vars file not found: {', '.join(tried)}",
                                "vars_files paths are relative to the playbook's directory",
                                entries, i, value=True)
            data = read_yaml(found, shown=display_path(found), what="vars file")
            if data.data is None:
                yield found, {}
                continue
            if not isinstance(data.data, dict):
                raise data.error("a vars file must be a mapping of variable names to values",
                                 "name: value, one variable per line", data.data)
            yield found, {str(k): v for k, v in data.data.items()}

    def controller_value(self, src: Source, container: Any, key: Any, value: Any,
                         layers: list[dict[str, Any]], what: str = "this value",
                         dynamic: bool = False, role: RoleCall | None = None) -> Any:
        """``value`` rendered now, with only the variables every host shares.

        ``dynamic``: the host would render it while the plan runs (an include's file name), so
        a name some task sets on the way (register, set_fact, include_vars) is host data.
        """
        if not has_template(value):
            return value
        late = sorted(referenced_names(value) & self.runtime_names) if dynamic else []
        if late:
            raise src.error(
                f"{what} reads '{late[0]}', which a task sets while the play runs: it must be "
                "known when the playbook is compiled", "use extra vars (-e), play vars or role "
                "vars here, or import_tasks/import_role with a literal name", container, key,
                value=True)
        magic = {"playbook_dir": self.basedir, "inventory_dir": self.inventory_dir(),
                 "groups": self.groups(), "ansible_check_mode": self.options.check,
                 "ansible_diff_mode": self.options.diff}
        if role is not None:  # "{{ role_path }}/tests/main.yml"
            magic.update(role_path=role.role.path, role_name=role.role.name)
        try:
            return self.renderer.render(value, [magic, *layers, self.extra])
        except TemplateFailed as exc:
            raise src.error(
                f"{what} depends on data only a host has ({exc}): it must be known when the "
                "playbook is compiled", "use extra vars (-e), play vars or role vars here, not "
                "inventory host vars, facts or registered results", container, key,
                value=True) from exc

    def check_controller_plugins(self, src: Source, ds: dict[str, Any], ctx: Any) -> None:
        """Refuse a filter or test of the playbook's or a role's own plugins that the task applies
        to host data (a registered result, a fact, a set_fact) when its file imports what the
        host's runtime does not have: only the controller could run it, and the controller does
        not have that data when it compiles (compiler/ansible_plugins.py embeds the others)."""
        if ctx.role is not None:
            self.plugin_role_dirs[ctx.role.role.path] = None
        from ..compiler.ansible_plugins import host_import, local_plugins, with_collections

        found = with_collections(local_plugins((self.basedir, *self.playbook_dirs, *self.plugin_role_dirs)),
                                 "\n".join(_strings_of(ds)))
        kinds = {kind: found.names(kind) for kind in ("filter", "test")}
        # a collection's lookup runs on the controller (by ansible-core), never on the host
        kinds["lookup"] = frozenset(n for n in found.names("lookup") if n.count(".") >= 2)
        if not any(kinds.values()) or found.pattern is None:
            return
        host_data = set(self.runtime_names) | {"ansible_facts"}
        loop = next((ds[k] for k in ds if k == "loop" or str(k).startswith("with_")), None)
        if referenced_names(loop) & self.runtime_names or _reads_facts(referenced_names(loop)):
            control = ds.get("loop_control")
            host_data.add(str(control.get("loop_var", "item")) if isinstance(control, dict) else "item")
        for key, value in ds.items():
            if key in ("name", "register", "tags", "notify", "listen"):
                continue
            bare = key in ("when", "changed_when", "failed_when", "until")
            for text in _strings_of(value):
                if not found.pattern.search(text):
                    continue
                hit = _host_data_call(text if not bare or has_template(text) else "{{ " + text + " }}",
                                      kinds, host_data)
                if hit is None:
                    continue
                kind, plugin, read = hit
                path = found.found[kind][plugin]
                if kind == "lookup":
                    raise src.error(
                        f"the lookup '{plugin}' ({display_path(path)}) runs on the controller, while "
                        f"the playbook compiles, and its terms read host data ('{read}': a fact or a "
                        "value a task sets while the play runs), which the controller does not have then",
                        "compute its terms from variables the controller knows (inventory, play, role "
                        "and extra vars)", ds, key, value=True)
                needs = host_import(path)
                if needs is None:
                    continue  # it runs on the host
                raise src.error(
                    f"the {kind} '{plugin}' ({display_path(path)}) is applied to host data "
                    f"('{read}': a fact or a value a task sets while the play runs), so it must "
                    f"run on the host, and its file needs `{needs}`, which the host's runtime does "
                    "not have (the standard library and Jinja2)",
                    "compute its input from variables the controller knows (inventory, play, "
                    "role and extra vars), or make the plugin file need only the standard library",
                    ds, key, value=True)

    def inventory_dir(self) -> str | None:
        if not self.inv.sources:  # the implicit localhost
            return None
        source = self.inv.sources[0]  # several -i: the first (Ansible's is the host's own)
        if "," in source and not os.path.exists(source):  # a host list
            return None
        return source if os.path.isdir(source) else os.path.dirname(os.path.abspath(source))

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for host in self.inv.hosts.values():
            for g in host.groups:
                out.setdefault(g, []).append(host.name)
        return out

    # -- keyword checks ----------------------------------------------------------------------
    def check_keys(self, src: Source, ds: dict[str, Any], allowed: frozenset[str], what: str,
                   container: Any) -> None:
        for key in ds:
            if not isinstance(key, str):
                raise src.error(f"{what} has a key that is not a string: {key!r}", None, ds, key)
            if key in allowed:
                continue
            close = kw.suggest(key, allowed)
            hint = f"did you mean '{close}'?" if close else ("keywords of " + what + ": "
                                                             + ", ".join(sorted(allowed)))
            if key == "include_playbook":
                raise src.error("'include_playbook' is not a valid keyword (Ansible removed it)",
                                "use import_playbook", ds, key)
            raise src.error(f"'{key}' is not a valid keyword for {what}", hint, ds, key)

    def tags(self, src: Source, ds: dict[str, Any], key: str = "tags") -> tuple[str, ...]:
        value = ds.get(key)
        if value is None:
            return ()
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return tuple(t.strip() for t in str(value).split(",") if t.strip())
        if isinstance(value, list) and all(isinstance(t, (str, int, float)) for t in value):
            return tuple(str(t) for t in value)
        raise src.error("tags must be a string or a list of strings", "tags: [web, config]", ds,
                        key, value=True)

    def conditions(self, src: Source, ds: dict[str, Any], key: str = "when") -> list[Any]:
        """The ``when`` conditions as written: text (a ``Cond`` that knows where it was written;
        ``!unsafe`` text stays Unsafe, which the host never evaluates), or a number, which
        ansible-core 2.19 refuses when the task runs ("Conditional expressions must be
        strings.")."""
        value = ds.get(key)
        if value is None:
            return []
        values = value if isinstance(value, list) else [value]
        out: list[Any] = []
        for i, v in enumerate(values):
            at = written_at(src, values, i) if isinstance(value, list) else written_at(src, ds, key)
            if isinstance(v, bool):
                out.append("True" if v else "False")
            elif isinstance(v, Unsafe):
                out.append(v)
            elif isinstance(v, str):
                out.append(Cond(v, at))
            elif isinstance(v, (int, float)):
                out.append(v)
            else:
                where = (values, i) if isinstance(value, list) else (ds, key)
                raise src.error(f"a {key} condition is an expression (a string), not a "
                                f"{_kind(v)}", f"{key}: x is defined", *where, value=True)
        return out

    def inherit(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState, *,
                include_when: bool = True, include_tags: bool = True,
                include_vars: bool = True) -> Ctx:
        """``ctx`` extended with the keywords ``ds`` (a play, block, role entry or import) sets."""
        kws = list(ctx.kws)
        for key in kw.INHERITED + ("notify",):
            if key in ds and ds[key] is not None:
                kws.append((key, ds[key], src.origin(ds, key)))
        env = ctx.env
        if ds.get("environment") is not None:
            env = env + ((ds["environment"], src.origin(ds, "environment", value=True)),)
        new_vars = ctx.vars
        if include_vars and "vars" in ds:
            new_vars = new_vars + tuple(self.vars_mapping(src, ds, "vars", "block").items())
        return replace(
            ctx, kws=tuple(kws), env=env, vars=new_vars,
            when=ctx.when + (tuple(self.conditions(src, ds)) if include_when else ()),
            tags=ctx.tags + (self.tags(src, ds) if include_tags else ()),
        )

    # -- roles -------------------------------------------------------------------------------
    def role_entries(self, src: Source, ds: dict[str, Any], st: _PlayState,
                     ctx: Ctx) -> list[tuple[RoleCall, Ctx]]:
        entries = ds.get("roles")
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise src.error("roles is a list of roles", "roles: [common, {role: web, port: 80}]",
                            ds, "roles", value=True)
        calls = []
        search = _search_list(self.collections(src, ds, ctx), "ansible.legacy")
        for i, entry in enumerate(entries):
            origin = src.origin(entries, i, value=True)
            call, call_ctx = self.role_call(src, entries, i, entry, origin, st, ctx, parent=None,
                                            collections=search)
            calls.append((call, call_ctx))
        # count identities (entries and their dependencies) to deduplicate repeated roles
        for call, _ in calls:
            self.count_identities(call, st)
        return calls

    def count_identities(self, call: RoleCall, st: _PlayState) -> None:
        st.identities[call.identity] += 1
        for i, dep in enumerate(call.role.dependencies):
            meta = call.role.meta
            assert meta is not None
            dep_call, _ = self.role_call(meta, call.role.dependencies, i, dep,
                                         meta.origin(call.role.dependencies, i, value=True), st,
                                         None, parent=call, register=False)
            st.dependent_roles.setdefault(dep_call.role.name)
            self.count_identities(dep_call, st)

    def role_call(self, src: Source, container: Any, index: Any, entry: Any, origin: Origin,
                  st: _PlayState, ctx: Ctx | None, *, parent: RoleCall | None,
                  register: bool = True, collections: tuple[str, ...] = ()) -> tuple[RoleCall, Any]:
        """``collections``: the collection search list for the role's name (a dependency's is
        the depending role's, :func:`_role_search`)."""
        if isinstance(entry, str):
            entry = {"role": entry}
            entry_src_ok = False
        elif isinstance(entry, dict):
            entry_src_ok = True
        else:
            raise origin.error(f"a role entry is a name or a mapping, not a {_kind(entry)}",
                               "- role: web")
        name_key = "role" if "role" in entry else ("name" if "name" in entry else None)
        if name_key is None:
            raise origin.error("the role entry names no role", "write - role: NAME")
        params = {k: v for k, v in entry.items() if k not in kw.ROLE}
        for k in params:
            if not isinstance(k, str) or not _VAR_NAME.match(k):
                raise origin.error(f"invalid role parameter name {k!r}", None)
        name_origin = src.origin(entry, name_key, value=True) if entry_src_ok else origin
        base = os.path.dirname(parent.role.path) if parent else None
        role_name = entry[name_key]
        if isinstance(role_name, str) and has_template(role_name):
            role_name = self.controller_value(src, entry if entry_src_ok else container,
                                              name_key if entry_src_ok else index, role_name,
                                              [st.vars], "the role name", role=parent)
        if parent is not None:
            collections = _role_search(parent.role, dependencies=True)
        role = self.finder.find(role_name, name_origin, base, st.play_dir, collections)
        if parent is not None and any(os.path.realpath(c.role.path) == os.path.realpath(role.path)
                                      for c in parent.chain()):
            raise origin.error(f"role dependency loop: '{role.name}' depends on itself through "
                               + " -> ".join(c.role.name for c in reversed(list(parent.chain()))),
                               "remove one of these dependencies")
        entry_vars = self.vars_mapping(src, entry, "vars", "role") if entry_src_ok else {}
        identity = _identity(role.path, params, entry.get("when"), entry.get("tags"), entry_vars,
                             {}, False)
        call = RoleCall(key="", role=role, params=params, origin=origin, identity=identity,
                        parent=parent)
        self.load_role_vars(call, st)
        call_ctx = ctx
        if ctx is not None and entry_src_ok:
            call_ctx = self.inherit(src, entry, ctx, st)
        if register:
            self.register_role(call, st)
        return call, call_ctx

    def register_role(self, call: RoleCall, st: _PlayState) -> None:
        for existing in st.roles.values():
            if existing.identity == call.identity and existing.tasks_from == call.tasks_from:
                call.key = existing.key
                return
        st.role_keys[call.role.name] += 1
        n = st.role_keys[call.role.name]
        call.key = call.role.name if n == 1 else f"{call.role.name}#{n}"
        st.roles[call.key] = call

    def load_role_vars(self, call: RoleCall, st: _PlayState) -> None:
        role = call.role
        defaults: dict[str, Any] = {}
        exported: dict[str, Any] = {}
        for i, dep in enumerate(role.dependencies):
            meta = role.meta
            assert meta is not None
            dep_call, _ = self.role_call(meta, role.dependencies, i, dep,
                                         meta.origin(role.dependencies, i, value=True), st, None,
                                         parent=call, register=False)
            defaults.update(dep_call.defaults)
            exported.update(dep_call.vars)
        defaults.update(self.role_vars(role, "defaults", call.defaults_from, call.origin))
        exported.update(self.role_vars(role, "vars", call.vars_from, call.origin))
        call.defaults = defaults
        call.vars = exported

    def role_vars(self, role: RoleDir, subdir: str, name: str, origin: Origin) -> dict[str, Any]:
        if name != "main" and role.file(subdir, name) is None:
            raise origin.error(f"the role '{role.name}' has no {subdir} file {name!r}",
                               f"files in {display_path(os.path.join(role.path, subdir))}: "
                               + ", ".join(_listdir(os.path.join(role.path, subdir))))
        return role.variables(subdir, name)

    def compile_role(self, call: RoleCall, ctx: Ctx, st: _PlayState, out: list[Task],
                     base: str, dedupe: bool = True, imported: bool = False,
                     dep_of_import: bool = False) -> None:
        """The role's dependencies, then its own tasks, into ``out``. ``imported``: the role of
        an import_role/include_role, which always runs; its dependencies (``dep_of_import``) run
        only when no task of the same role call ran before in the play (as ansible-core's role
        cache: a dependency the play's ``roles:`` ran already is not run again)."""
        role = call.role
        if role.argument_specs:
            self.notes.append(f"role {role.name}: argument_specs are not validated")
        for i, dep in enumerate(role.dependencies):
            meta = role.meta
            assert meta is not None
            dep_call, dep_ctx = self.role_call(meta, role.dependencies, i, dep,
                                               meta.origin(role.dependencies, i, value=True), st,
                                               replace(ctx, role=call), parent=call)
            self.compile_role(dep_call, dep_ctx, st, out, base, dep_of_import=imported or dep_of_import)
        src = role.source("tasks", call.tasks_from)
        if src is None:
            if call.tasks_from != "main":
                raise call.origin.error(
                    f"the role '{role.name}' has no tasks file {call.tasks_from!r}",
                    f"files in {display_path(os.path.join(role.path, 'tasks'))}: "
                    + ", ".join(_listdir(os.path.join(role.path, "tasks"))))
            return
        role_ctx = self.role_collections(role, replace(ctx, src=src, task_dir=src.dir, role=call))
        repeated = (call.allow_duplicates is False
                    or (not role.allow_duplicates and (dep_of_import or (dedupe and st.identities[call.identity] > 1))))
        # the runtime marks "key:KEY" done when a task of the role call KEY runs (executor)
        once = f"key:{call.key}" if dep_of_import else call.identity
        if not repeated:
            self.tasks_from_source(src, role_ctx, st, out, base)
            return
        children: list[Task] = []
        pointer = f"{base}/{len(out)}"
        task_id = st.new_id()
        self.tasks_from_source(src, role_ctx, st, children, f"{pointer}/block")
        self.origins[pointer] = call.origin
        out.append(Task(task_id=task_id, name=f"role {role.name}", module="", args={},
                        hosts=(), execution_order=len(out), block=tuple(children),
                        extras={"role_once": once}, pointer=pointer))

    def role_handlers(self, call: RoleCall, ctx: Ctx, st: _PlayState, hctx: Ctx, key: str | None = None) -> None:
        role = call.role
        for i, dep in enumerate(role.dependencies):
            meta = role.meta
            assert meta is not None
            dep_call, dep_ctx = self.role_call(meta, role.dependencies, i, dep,
                                               meta.origin(role.dependencies, i, value=True), st,
                                               replace(ctx, role=call), parent=call,
                                               register=False)
            self.register_role(dep_call, st)
            self.role_handlers(dep_call, dep_ctx, st, hctx)
        identity = (key or call.identity, call.handlers_from)
        if identity in st.handler_identities:
            return
        st.handler_identities.add(identity)  # type: ignore[arg-type]
        src = role.source("handlers", call.handlers_from)
        if src is None:
            return
        hctx2 = self.role_collections(role, replace(ctx, src=src, task_dir=src.dir, role=call, handler=True))
        self.handler_items(src, src.data, hctx2, st)

    @staticmethod
    def role_collections(role: RoleDir, ctx: Ctx) -> Ctx:
        """A role's own ``collections`` (meta/main.yml) for its tasks and handlers: searched for
        their modules' short names before what the play says (docs/bridge.md). A collection's
        role searches its own collection first and ``ansible.builtin`` last, never ``library/``."""
        meta = role.meta
        has_meta = meta is not None and isinstance(meta.data, dict) and meta.data.get("collections") is not None
        if role.collection is not None:
            origin = (meta.origin(meta.data, "collections") if has_meta and meta is not None
                      else ctx.role.origin if ctx.role is not None else None)
            if origin is not None:
                return replace(ctx, kws=(*ctx.kws, ("collections", list(_role_search(role)), origin)))
        if not has_meta or meta is None:
            return ctx
        found = ("collections", meta.data["collections"], meta.origin(meta.data, "collections"))
        return replace(ctx, kws=(*ctx.kws, found))

    # -- task lists ----------------------------------------------------------------------------
    def task_list(self, src: Source, ds: dict[str, Any], key: str, ctx: Ctx, st: _PlayState,
                  out: list[Task], base: str) -> None:
        items = ds.get(key)
        if items is None:
            return
        if not isinstance(items, list):
            raise src.error(f"{key} is a list of tasks, not a {_kind(items)}",
                            f"{key}:\n  - name: ...", ds, key, value=True)
        self.items(src, items, ctx, st, out, base)

    def tasks_from_source(self, src: Source, ctx: Ctx, st: _PlayState, out: list[Task],
                          base: str) -> None:
        if src.data is None:
            return
        if not isinstance(src.data, list):
            raise src.error(f"a tasks file is a list of tasks, not a {_kind(src.data)}",
                            "- name: ...\n  module: args", src.data)
        first = src.data[0] if src.data else None
        if isinstance(first, dict) and "hosts" in first:
            raise src.error("this file is a playbook (its entries are plays with hosts:), not a "
                            "list of tasks", "import it with import_playbook, at the top level "
                            "of a playbook", first)
        self.items(src, src.data, ctx, st, out, base)

    def items(self, src: Source, items: list[Any], ctx: Ctx, st: _PlayState, out: list[Task],
              base: str) -> None:
        for i, ds in enumerate(items):
            origin = src.origin(items, i, value=True)
            if not isinstance(ds, dict):
                raise origin.error(f"a task is a mapping, not a {_kind(ds)}",
                                   "- name: say hello\n  debug: msg=hello")
            if not ds:
                raise origin.error("empty task", "a task names a module: - debug: msg=hi")
            if "block" in ds:
                self.block(src, ds, origin, ctx, st, out, base)
            else:
                self.task(src, ds, origin, ctx, st, out, base)

    def handler_list(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState) -> None:
        items = ds.get("handlers")
        if items is None:
            return
        if not isinstance(items, list):
            raise src.error("handlers is a list of tasks", None, ds, "handlers", value=True)
        self.handler_items(src, items, ctx, st)

    def handler_items(self, src: Source, items: Any, ctx: Ctx, st: _PlayState) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            raise src.error(f"a handlers file is a list of tasks, not a {_kind(items)}", None,
                            items)
        # appended to the play's handlers, numbered after the ones already collected
        self.items(src, items, replace(ctx, handler=True), st, st.handlers,
                   f"/plays/{st.index}/handlers")

    # -- blocks --------------------------------------------------------------------------------
    def block(self, src: Source, ds: dict[str, Any], origin: Origin, ctx: Ctx, st: _PlayState,
              out: list[Task], base: str) -> None:
        self.check_keys(src, ds, kw.BLOCK, "a block", ds)
        if ctx.handler and ctx.nested:
            raise src.origin(ds, "block").error(
                "Using a block as a handler is not supported.",
                "a handler's own block: is its only one (ansible-core refuses a block inside it, in a "
                "file a handler imports, and inside a block of a file a handler includes)", HandlerBlock)
        for key in ("block", "rescue", "always"):
            if key in ds and ds[key] is not None and not isinstance(ds[key], list):
                raise src.error(f"'{key}' is a list of tasks, not a {_kind(ds[key])}", None, ds,
                                key, value=True)
        inner = self.inherit(src, ds, ctx, st)
        inner = replace(inner, nested=ctx.handler)
        self.check_inherited(src, ds, inner, st)
        if not ds.get("rescue") and not ds.get("always"):
            self.items(src, ds.get("block") or [], inner, st, out, base)  # nothing to catch
            return
        pointer = f"{base}/{len(out)}"
        self.origins[pointer] = origin
        task_id = st.new_id()
        lists: dict[str, tuple[Task, ...]] = {}
        for key in ("block", "rescue", "always"):
            children: list[Task] = []
            self.items(src, ds.get(key) or [], inner, st, children, f"{pointer}/{key}")
            lists[key] = tuple(children)
        name = str(ds.get("name") or "block")
        out.append(Task(task_id=task_id, name=name, module="", args={}, hosts=(),
                        execution_order=len(out), pointer=pointer, block=lists["block"],
                        rescue=lists["rescue"], always=lists["always"]))

    # -- tasks ---------------------------------------------------------------------------------
    def task(self, src: Source, ds: dict[str, Any], origin: Origin, ctx: Ctx, st: _PlayState,
             out: list[Task], base: str) -> None:
        module, args, delegate, action_key = self.action(src, ds, ctx)
        if has_template(module):  # `action: "{{ name }}"`: ansible-core templates it per host
            layers = [*self._layers(ctx, st), ds["vars"] if isinstance(ds.get("vars"), dict) else {}]
            rendered = self.controller_value(src, ds, action_key, module, layers, "a templated module name",
                                             dynamic=True)
            if not isinstance(rendered, str):  # `action: {module: "{{ entire_task }}"}` over a mapping
                self.check_task_keys(src, ds, kw.HANDLER if ctx.handler else kw.TASK, action_key)
                reason = (f"the task's action {module!r} renders to a {_kind(rendered)}, not a module name: "
                          "ansible-core stops the run here (\"Unexpected Exception, this is probably a bug\")")
                self.failed_include(src, ds, origin, module, ctx, st, out, base, module,
                                    {"reason": reason, "errored": True, "action": True}, {},
                                    name=self.display_name(ds, module, ctx))
                return
            module = str(rendered).strip()
        short = _short(module)
        if short in _INCLUDES:
            if short.endswith("_tasks"):
                self.include_tasks(src, ds, origin, module, action_key, args, ctx, st, out, base,
                                   static=short == "import_tasks")
            else:
                self.include_role(src, ds, origin, module, action_key, args, ctx, st, out, base,
                                  static=short == "import_role")
            return
        if short == "include":
            raise src.error("'include' was removed from Ansible", "use include_tasks (dynamic) "
                            "or import_tasks (static)", ds, action_key)
        allowed = kw.HANDLER if ctx.handler else kw.TASK
        self.check_task_keys(src, ds, allowed, action_key)
        if ctx.handler and _short(module) == "meta" and str(args.get("_raw_params", "")).strip() == "flush_handlers":
            # ansible-core loads it, and aborts the run when the handler runs (exit 1), after its
            # condition: a false one skips it
            self.failed_include(src, ds, origin, module, ctx, st, out, base, module,
                                {"reason": "flush_handlers cannot be used as a handler", "errored": True,
                                 "action": True, "when_first": True}, {},
                                name=self.display_name(ds, module, ctx))
            return
        # a module no built-in implements is found and checked by the module bridge when the
        # plan is validated (bridge/policy.py), which refuses it at this task's line
        canonical = canonical_module(module)
        if canonical is not None and not module.startswith("ansible.builtin."):
            roles = [c.role.path for c in ctx.role.chain() if c.role.collection is None] if ctx.role else []
            if canonical in overridden_builtins((self.basedir, *roles)):
                canonical = None  # the playbook's or the role's own action plugin (bridge/policy.py)
        if canonical is None and _short(module) == "gather_facts" and canonical_module("setup"):
            # ansible-core's gather_facts action runs the setup module (FACTS_MODULES=smart)
            canonical = "setup"
        pointer = f"{base}/{len(out)}"
        self.origins[pointer] = origin
        if action_key is not None:  # where a module the bridge cannot find is reported
            self.origins[f"{pointer}/module"] = src.origin(ds, action_key)
        extras, conditions, tags, notify = self.task_keywords(src, ds, ctx, st, delegate, module)
        if isinstance(ds.get("args"), str):  # args: "{{ mapping }}", below the module's own
            extras["args_template"] = ds["args"]
        if (canonical is None or named_per_call(extras.get("delegate_to")) or "delegate_implicit" in extras) \
                and action_key is not None:
            # as written: if it is an action plugin run on the controller, ansible-core parses
            # and renders its arguments itself (bridge/action.py; dropped for any other module)
            action_ds = {"action" if action_key == "local_action" else action_key: ds[action_key]}
            if "args" in ds:
                action_ds["args"] = ds["args"]
            defaults = self.module_defaults(src, ds, ctx, module, {})
            if defaults:  # the merged ones in effect: ansible-core renders and applies them itself
                action_ds["module_defaults"] = {module: defaults}
            extras["action_ds"] = json.loads(json.dumps(tag_unsafe(action_ds), default=str))
        if canonical is None:
            collections = self.collections(src, ds, ctx)
            if collections:
                extras["collections"] = collections
            if ctx.include_stack:
                self.check_bridged(src, ds, action_key, module, collections, ctx)
        args = self.module_defaults(src, ds, ctx, module, args)
        args = self.sources(src, ds, action_key, canonical or module, args, ctx, pointer, extras,
                            self._layers(ctx, st))
        self.file_lookups([args, conditions, {k: v for k, v in extras.items() if k != "vars"}], ctx, extras,
                          [*self._layers(ctx, st), extras.get("vars") or {}])
        if canonical == "include_vars" and "dir" in args:
            extras["vars_dir"] = self.include_vars_dir(src, ds, action_key, args, ctx, st, extras)
            self.runtime_names.update(k for _, data in extras["vars_dir"]["files"] for k in data)
            if args.get("name"):
                self.runtime_names.add(str(args["name"]))
        elif canonical == "include_vars":
            extras["vars_data"] = self.include_vars(src, ds, action_key, args, ctx, st, extras)
            self.runtime_names.update(k for data in extras["vars_data"].values() for k in data)
            if args.get("name"):
                self.runtime_names.add(str(args["name"]))
        if canonical == "set_fact":
            self.runtime_names.update(str(k) for k in args if k not in ("cacheable", "_raw_params"))
        if extras.get("register"):
            self.runtime_names.add(str(extras["register"]))
        self.check_controller_plugins(src, ds, ctx)
        name = self.display_name(ds, module, ctx)
        if ctx.handler and has_template(name):
            name = self.handler_name(src, ds, name, ctx, st)
        if ctx.role is not None:
            extras["role"] = self.role_key(ctx.role, st)
        self.record_notify(src, ds, ctx, pointer)
        origins = self.condition_origins(src, ds, ctx, st, conditions, extras,
                                         ds.get(action_key) if canonical == "assert" and action_key else None)
        if canonical == "set_fact" and action_key and isinstance(ds.get(action_key), dict):
            # where each value was written: a conditional or the origin filter over the fact names it
            given = ds[action_key]
            origins.update((f"={k}", where) for k in given if (where := written_at(src, given, k)))
        if origins:
            extras["origins"] = origins
        task = Task(task_id=st.new_id(), name=name,
                    module="setup" if _short(module) == "gather_facts" else module, args=args, hosts=(),
                    conditions=tuple(Condition("When", c) for c in conditions), tags=tags,
                    notify=notify, execution_order=len(out), extras=extras, pointer=pointer)
        out.append(task)
        if not ctx.handler and ctx.listed:
            st.listed.append(ListedTask(name, tuple(dict.fromkeys(tags))))

    def condition_origins(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState,
                          conditions: list[str], extras: dict[str, Any], assert_args: Any) -> dict[str, str]:
        """Where each conditional of the task whose result may not be a boolean got its value
        (playbook/origins.py), for ansible-core 2.19's message."""
        written: list[str] = list(conditions)
        places = [(ds, k) for k in ("changed_when", "failed_when", "until")]
        if isinstance(assert_args, dict):
            places.append((assert_args, "that"))
        for container, key in places:
            value = container.get(key)
            if isinstance(value, list):
                written += [Cond(v, written_at(src, value, i)) for i, v in enumerate(value) if isinstance(v, str)]
            elif isinstance(value, str):
                written.append(Cond(value, written_at(src, container, key)))
        layers = [*self._layers(ctx, st), extras.get("vars") or {}, self.extra]
        named = self.options.extra_origins
        return {**filter_origins(_strings_of(ds), layers, named), **condition_origins(written, layers, named)}

    def record_notify(self, src: Source, ds: dict[str, Any], ctx: Ctx, pointer: str) -> None:
        """Where each ``notify`` name was written (a missing handler is reported there)."""
        found = self.effective(src, ds, ctx, "notify")
        if found is None:
            return
        value = ds.get("notify")
        if isinstance(value, list):
            for i in range(len(value)):
                self.origins[f"{pointer}/notify/{i}"] = src.origin(value, i, value=True)
        elif value is not None:
            self.origins[f"{pointer}/notify/0"] = src.origin(ds, "notify", value=True)
        else:
            self.origins[f"{pointer}/notify"] = found[1]

    def role_key(self, call: RoleCall, st: _PlayState) -> str:
        if not call.key:
            self.register_role(call, st)
        return call.key

    def rendered_tags(self, src: Source, ds: dict[str, Any], tags: tuple[str, ...], ctx: Ctx,
                      st: _PlayState) -> tuple[str, ...]:
        """Templated tags (a task's, or a block's, role's or play's it inherits) rendered now with
        the values every host shares, as Ansible renders them before it selects; a list adds each
        of its items. One that needs a host's data keeps its text (no tag selects it)."""
        out: list[str] = []
        for tag in tags:
            try:
                got = self.controller_value(src, ds, "tags" if "tags" in ds else _NO_KEY, tag,
                                            self._layers(ctx, st), "tags", dynamic=True)
            except PlaybookError:
                got = tag
            out += [str(t) for t in got] if isinstance(got, list) else [str(got)]
        return tuple(out)

    def _layers(self, ctx: Ctx, st: _PlayState) -> list[dict[str, Any]]:
        if ctx.role is not None:
            return [ctx.role.defaults, st.vars, ctx.role.vars, dict(ctx.vars), ctx.role.params]
        return [st.vars, dict(ctx.vars)]

    def handler_name(self, src: Source, ds: dict[str, Any], name: str, ctx: Ctx, st: _PlayState) -> str:
        """A handler's templated name, rendered as Ansible renders it: with the play's (and its
        role's) variables and extra vars, no host's. One it cannot render is unusable: it keeps
        its text, which no notify matches, and Ansible's warning is a note."""
        try:
            return str(self.controller_value(src, ds, "name", name, self._layers(ctx, st), "a handler's name"))
        except PlaybookError as exc:
            if not ds.get("listen"):
                self.notes.append(f"[WARNING]: Handler {name!r} is unusable because it has no listen topics "
                                  f"and the name could not be templated ({exc.message})")
            return name

    def display_name(self, ds: dict[str, Any], module: str, ctx: Ctx) -> str:
        name = ds.get("name")
        text = str(name) if name not in (None, "") else module
        if ctx.role is not None and not ctx.handler:
            return f"{ctx.role.role.name} : {text}"
        return text

    def check_task_keys(self, src: Source, ds: dict[str, Any], allowed: frozenset[str],
                        action_key: str | None) -> None:
        for key in ds:
            if key == action_key or key in allowed or key in ("action", "local_action"):
                continue
            if isinstance(key, str) and key.startswith("with_"):
                continue
            close = kw.suggest(key, allowed)
            raise src.error(f"'{key}' is not a valid keyword for a task",
                            f"did you mean '{close}'?" if close else
                            "a task has one module and Ansible's task keywords", ds, key)

    def check_bridged(self, src: Source, ds: dict[str, Any], key: str | None, module: str,
                      collections: list[str], ctx: Ctx) -> None:
        """In an included tasks file, a module nothing provides is UnknownModule here (the
        include then fails only the hosts that reach it, as ansible-core reads such a file only
        then); elsewhere the plan's validation refuses it (bridge/policy.py)."""
        from rustle_deploy.bridge.lookup import Missing, lookup_key, resolve

        dirs = [self.basedir, *self.playbook_dirs] + ([ctx.role.role.path] if ctx.role is not None else [])
        found = resolve([lookup_key(module, collections)], [str(d) for d in dirs]).modules
        missing = next(iter(found.values()), None)
        if isinstance(missing, Missing):
            raise src.origin(ds, key if key is not None else _NO_KEY).error(
                f"unknown module '{module}': {missing.reason}",
                "; ".join(filter(None, ["searched: " + "; ".join(missing.searched)
                                        if missing.searched else "", missing.hint])) or None,
                UnknownModule)

    def collections(self, src: Source, ds: dict[str, Any], ctx: Ctx) -> list[str]:
        """The ``collections`` keyword in effect (a list of collection names), checked."""
        found = self.effective(src, ds, ctx, "collections")
        if found is None:
            return []
        colls = found[0] if isinstance(found[0], list) else [found[0]]
        for c in colls:
            if not isinstance(c, str) or c.count(".") != 1 or has_template(c):
                raise found[1].error(f"collections takes collection names such as "
                                     f"'community.general', not {c!r}",
                                     "collections: [community.general]")
        return list(colls)

    def action(self, src: Source, ds: dict[str, Any], ctx: Ctx) -> tuple[str, dict[str, Any],
                                                                        str | None, str | None]:
        """(module as written, args, delegate_to from local_action, the key naming the module)."""
        allowed = kw.HANDLER if ctx.handler else kw.TASK
        extra_args = ds.get("args")
        if extra_args is not None and not isinstance(extra_args, dict):
            if isinstance(extra_args, str) and has_template(extra_args):
                extra_args = None  # the host renders it (task(): args_template)
            else:
                raise src.error("the value of the task 'args' keyword must be a mapping", None,
                                ds, "args", value=True)
        module: str | None = None
        args: dict[str, Any] = {}
        delegate: str | None = None
        key: str | None = None
        for old in ("action", "local_action"):
            if old in ds:
                if module is not None:
                    raise src.error("action and local_action are mutually exclusive", None, ds,
                                    old)
                module, args = self.old_style(src, ds, old)
                key = old
                if old == "local_action":
                    delegate = "localhost"
        candidates = [k for k in ds if isinstance(k, str) and k not in allowed
                      and k not in ("local_action", "static") and not k.startswith("with_")]
        for cand in candidates:
            if not self.is_module_name(cand):
                continue
            if module is not None:
                raise src.error(f"conflicting action statements: {module}, {cand}",
                                "a task calls exactly one module", ds, cand)
            module = cand
            key = cand
            args = self.new_style(src, ds, cand)
        if module is None:
            if candidates:
                bad = candidates[0]
                close = kw.suggest(bad, allowed)
                if close:
                    raise src.error(f"'{bad}' is not a valid keyword for a task and not a "
                                    "module", f"did you mean '{close}'?", ds, bad)
                if len(candidates) > 1:
                    raise src.error(f"conflicting action statements: {', '.join(candidates)}",
                                    "a task calls exactly one module", ds, candidates[1])
                # a module no built-in implements: the module bridge looks for it (library/,
                # ANSIBLE_LIBRARY, ansible-core and its collections) when the plan is validated
                module = key = bad
                args = self.new_style(src, ds, bad)
            else:
                raise src.error("no module/action detected in task", "a task names a module: "
                                "- debug: msg=hi", ds)
        if isinstance(ds.get("args"), str) and _short(module) in _ARGS_KNOWN_HERE:
            raise src.error(f"args given as a template cannot be used with {module}: its "
                            "arguments must be known when the playbook is compiled",
                            "write the arguments as a mapping", ds, "args", value=True)
        final = dict(extra_args or {})
        final.update(args)
        return module, final, delegate, key

    @staticmethod
    def is_module_name(name: str) -> bool:
        short = _short(name)
        if "." in name and not name.startswith(_PREFIXES):
            return name.count(".") >= 2  # namespace.collection.module
        return short in module_families() or short in ANSIBLE_BUILTIN_MODULES

    def old_style(self, src: Source, ds: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
        thing = ds[key]
        try:
            if isinstance(thing, str):
                module, rest = split_module_string(thing)
                return module, parse_kv(rest, check_raw=_short(module) in FREEFORM_MODULES)
            if isinstance(thing, dict) and "module" in thing:
                module, rest = split_module_string(str(thing["module"]))
                args = {k: v for k, v in thing.items() if k != "module"}
                args.update(parse_kv(rest, check_raw=_short(module) in FREEFORM_MODULES))
                if "args" in args:  # `action: {module: m, args: {...}}`, as ModuleArgsParser merges it
                    nested = args.pop("args")
                    args.update(parse_kv(nested) if isinstance(nested, str) else dict(nested or {}))
                return module, args
        except ArgsError as exc:
            raise src.error(str(exc), "check the quotes and the {{ }} pairs", ds, key,
                            value=True) from exc
        raise src.error(f"{key} needs a module and its arguments", f"{key}: copy src=a dest=b",
                        ds, key, value=True)

    def new_style(self, src: Source, ds: dict[str, Any], key: str) -> dict[str, Any]:
        thing = ds[key]
        if thing is None:
            return {}
        if isinstance(thing, dict):
            return dict(thing)
        if isinstance(thing, (str, int, float)) and not isinstance(thing, bool):
            try:
                return parse_kv(str(thing), check_raw=_short(key) in FREEFORM_MODULES)
            except ArgsError as exc:
                raise src.error(str(exc), "check the quotes and the {{ }} pairs", ds, key,
                                value=True) from exc
        raise src.error(f"the arguments of '{key}' must be a mapping or k=v text, not a "
                        f"{_kind(thing)}", None, ds, key, value=True)

    # -- keywords onto a task -----------------------------------------------------------------
    def effective(self, src: Source, ds: dict[str, Any], ctx: Ctx,
                  key: str) -> tuple[Any, Origin] | None:
        if key in ds and ds[key] is not None:
            return ds[key], src.origin(ds, key)
        return ctx.keyword(key)

    def check_inherited(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState,
                        delegate: str | None = None) -> None:
        """Refuse what the task would inherit or set that a one-round-trip run cannot do."""
        for key, reason in kw.REFUSED.items():
            if key in ("vars_prompt", "fact_path", "remote_user", "port"):
                continue  # remote_user, port: the task's connection (task_connection)
            found = self.effective(src, ds, ctx, key)
            if found is not None and found[1] in st.connection_origins:
                continue  # the play's remote_user/port: its hosts' connection (play_connection)
            if found is not None and found[0] not in (None, "", [], {}):
                raise found[1].error(f"'{key}' is not supported", reason)
        found = self.effective(src, ds, ctx, "debugger")
        if found is not None and found[0] not in ("never", None):
            raise found[1].error("the task debugger is not supported", "drop 'debugger'")
        self.collections(src, ds, ctx)
        found = self.effective(src, ds, ctx, "connection")
        if found is not None:
            conn = str(found[0])
            wanted = st.connections(self.inv)
            # connection: local over hosts reached by ssh runs their tasks on the controller,
            # as delegate_to: localhost does (delegate_target)
            ok = conn in ("local", "ansible.builtin.local")
            ok = ok or (conn in ("ssh", "smart", "ansible.builtin.ssh") and "local" not in wanted)
            if not ok:
                raise found[1].error(f"connection {conn!r} differs from the inventory's for "
                                     "these hosts", "set ansible_connection in the inventory")
        self.delegate_target(src, ds, ctx, st, delegate)

    def local_target(self, target: str) -> bool:
        """Whether a task delegated to ``target`` runs over a local connection (the controller,
        or an inventory host with ``ansible_connection=local``): it has no user or port, so a
        task's ``remote_user``/``port`` change nothing there, as in Ansible."""
        host = self.inv.hosts.get(target)
        return host.is_local if host is not None else target in CONTROLLER

    def task_connection(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState,
                        delegated: bool) -> dict[str, dict[str, Any]]:
        """Host -> the connection variables a task's (its block's, role's) own ``remote_user``
        and ``port`` give it where they change how it connects: not where the inventory sets
        ``ansible_user``/``ansible_port`` (which win, as in Ansible), nor where they are the
        play's, nor on a local connection (which has neither). Such tasks are a phase run over
        that connection (phases.py)."""
        out: dict[str, dict[str, Any]] = {}
        for key, var, spelled in (("remote_user", "ansible_user", ("ansible_user", "ansible_ssh_user")),
                                  ("port", "ansible_port", ("ansible_port", "ansible_ssh_port"))):
            found = self.effective(src, ds, ctx, key)
            if found is None or found[0] is None or found[1] in st.connection_origins:
                continue
            if delegated:
                raise found[1].error(f"{key} on a task delegated to another host is not supported yet",
                                     f"set {var} for the delegate host in the inventory")
            # a local connection has no user or port, and the inventory's win (as in Ansible)
            affected = [n for n in st.hosts if (h := self.inv.hosts.get(n)) is not None and not h.is_local
                        and not any(v in h.vars for v in spelled)]
            if not affected:
                continue
            try:
                value: Any = self.controller_value(src, {}, key, found[0], [st.vars], f"'{key}'")
            except PlaybookError as exc:
                raise found[1].error(exc.detail, exc.hint) from exc
            if key == "port":
                if isinstance(value, bool) or not str(value).strip().isdigit():
                    raise found[1].error(f"port takes a port number, not {value!r}", "port: 2222")
                value = int(str(value).strip())
            else:
                value = str(value)
            for name in affected:
                if self.connection_vars.get(name, {}).get(var) == value:
                    continue  # the play's already
                out.setdefault(name, {})[var] = value
        return out

    def delegate_target(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState,
                        delegate: str | None) -> str | None:
        """Where the task runs when not on its own host: the controller (``localhost``) or an
        inventory host, a phase of its own either way (phases.py); None: on its own host.
        A templated name is rendered now, over what every host shares."""
        if delegate is not None:
            return delegate
        found = self.effective(src, ds, ctx, "delegate_to")
        if found is None or found[0] is None:
            conn = self.effective(src, ds, ctx, "connection")
            if conn is not None and str(conn[0]) in ("local", "ansible.builtin.local") and not (
                    st.connections(self.inv) <= {"local"}):
                return "localhost"  # connection: local over ssh hosts: on the controller
            return None
        value, origin = found
        target = str(value).strip()
        if _SELF.match(target):
            return None
        if has_template(target):
            loop_var = (ds.get("loop_control") or {}).get("loop_var", "item") if isinstance(
                ds.get("loop_control"), dict) else "item"
            why = f"delegate_to {target!r} names a loop item" if loop_var in referenced_names(target) else None
            if why is None:
                try:
                    target = str(self.controller_value(src, {}, "delegate_to", target, [st.vars],
                                                       "'delegate_to'")).strip()
                except PlaybookError as exc:
                    why = exc.detail
            if why is not None:
                # a host each call names (a loop item, the host's facts or registered results):
                # ansible-core on the controller renders it for each call and runs the call over
                # that host's connection, as ansible-playbook does (phases.per_call)
                from rustle_deploy.bridge.lookup import ansible_available

                if not ansible_available():
                    raise origin.error(f"{why}: a task delegated to a host each call names runs "
                                       "through ansible-core on the controller, which is not installed",
                                       "pip install 'rustle-deploy[ansible]', or write one task per "
                                       "delegate host")
                return target
        if target in CONTROLLER or (len(st.hosts) == 1 and target == st.hosts[0]):
            return target
        if target not in self.inv.hosts:
            from rustle_deploy.bridge.lookup import ansible_available

            if not ansible_available():
                raise origin.error(f"delegate_to {target!r} is not a host of the inventory: a task delegated "
                                   "to an implicit host runs through ansible-core on the controller, which "
                                   "is not installed",
                                   "add it to the inventory (its connection variables say how to reach it), "
                                   "or pip install 'rustle-deploy[ansible]'")
        return target

    def task_keywords(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState,
                      delegate: str | None, module: str) -> tuple[dict[str, Any], list[str], tuple[str, ...],
                                                     tuple[str, ...]]:
        self.check_inherited(src, ds, ctx, st, delegate)
        extras: dict[str, Any] = {}
        for key in kw.CARRIED:
            if key in ("vars", "environment", "listen"):
                continue
            found = self.effective(src, ds, ctx, key) if key in kw.INHERITED else (
                (ds[key], src.origin(ds, key)) if ds.get(key) is not None else None)
            if found is not None and key in ("run_once", "throttle") and has_template(found[0]):
                # where the play is cut is decided now: an expression over what every host
                # shares (play vars, extra vars) is rendered here, host data is refused
                found = (self.controller_value(src, ds, key, found[0], [st.vars], f"'{key}'"), found[1])
            if found is not None:
                extras[key] = self.keyword_value(src, ds, key, found[0], found[1])
        found = self.effective(src, ds, ctx, "any_errors_fatal")
        if found is not None:
            try:
                fatal = _boolean(self.controller_value(src, ds, "any_errors_fatal", found[0],
                                                       [st.vars], "'any_errors_fatal'"),
                                 "any_errors_fatal")
            except PlanError as exc:
                raise found[1].error(exc.detail, exc.hint) from exc
            if fatal:
                extras["any_errors_fatal"] = True
            elif st.any_errors_fatal:
                st.fatal_override = True
        if ctx.handler and not ds.get("name"):
            extras["unnamed"] = True  # notify cannot name it; listeners are not told apart by it
        if ctx.handler and ds.get("listen") is not None:
            listen = ds["listen"]
            extras["listen"] = [str(x) for x in listen] if isinstance(listen, list) else str(listen)
        if ctx.handler and ctx.role is not None and ds.get("name"):
            alias = f"{ctx.role.role.name} : {ds['name']}"
            current = extras.get("listen", [])
            current = [current] if isinstance(current, str) else list(current)
            extras["listen"] = current + [alias]
        env = self.environment(src, ds, ctx)
        if env is not None:
            extras["environment"] = env
        task_vars = dict(ctx.vars)
        task_vars.update(self.vars_mapping(src, ds, "vars", "task"))
        if (ctx.role is not None or os.path.normpath(ctx.task_dir) != os.path.normpath(self.basedir)) \
                and (_LOOKUP_CALL.search(repr(ds)) or "ansible_search_path" in repr(ds)):
            # Ansible's ansible_search_path of a role's task, or of one in a tasks file of another
            # directory: what its lookups search (a play's own task has the playbook's directory)
            task_vars.setdefault("ansible_search_path", self.search_path_var(ctx))
        if task_vars:
            extras["vars"] = task_vars
        self.loop(src, ds, extras, module)
        conditions = list(ctx.when) + self.conditions(src, ds)
        tags = self.rendered_tags(src, ds, ctx.tags + self.tags(src, ds), ctx, st)
        found_notify = self.effective(src, ds, ctx, "notify")
        notify: tuple[str, ...] = ()
        if found_notify is not None:
            value = found_notify[0]
            values = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) for v in values):
                raise found_notify[1].error("notify names handlers (strings)", None)
            notify = ()
            for v in values:  # "{{ name }}": rendered now, as far as every host shares it
                got = self.controller_value(src, ds, "notify" if "notify" in ds else _NO_KEY, v,
                                            self._layers(ctx, st), "notify", dynamic=True)
                notify += tuple(str(n) for n in got) if isinstance(got, list) else (str(got),)
        target = self.delegate_target(src, ds, ctx, st, delegate)
        if target in CONTROLLER:
            self.controller_tasks = True
        if target is not None and not (len(st.hosts) == 1 and target == st.hosts[0]):
            extras["delegate_to"] = target
            if not named_per_call(target) and target not in CONTROLLER and target not in self.inv.hosts:
                # an implicit host, as ansible-core makes one (phases.per_call)
                extras["delegate_implicit"] = True
        connection = self.task_connection(src, ds, ctx, st, target is not None and not self.local_target(target))
        if connection:
            extras["connection_vars"] = connection
        found = self.effective(src, ds, ctx, "delegate_facts")
        if found is not None and found[0] not in (None, False):
            if found[0] is not True:
                raise found[1].error(f"delegate_facts takes true or false, not {found[0]!r}", "delegate_facts: true")
            if target is None or target in CONTROLLER:
                raise found[1].error("delegate_facts needs delegate_to another inventory host",
                                     "delegate the task to the host whose facts it gathers or sets")
            if named_per_call(target) or "delegate_implicit" in extras:
                raise found[1].error(f"delegate_facts with delegate_to {target!r}, "
                                     + ("a host outside the inventory" if "delegate_implicit" in extras
                                        else "a host each call names") + ", is not supported yet",
                                     "delegate to an inventory host by name, or drop delegate_facts")
            if "delegate_to" in extras:  # (a play of that one host: its own facts anyway)
                extras["delegate_facts"] = True
        for key in ("changed_when", "failed_when", "until"):
            if key in extras and isinstance(extras[key], list):
                extras[key] = [str(c) if not isinstance(c, bool) else ("True" if c else "False")
                               for c in extras[key]]
            elif key in extras and not isinstance(extras[key], (str, bool)):
                extras[key] = str(extras[key])
        return extras, conditions, tags, notify

    def keyword_value(self, src: Source, ds: dict[str, Any], key: str, value: Any,
                      origin: Origin) -> Any:
        if key in ("ignore_errors", "no_log", "become", "check_mode", "diff", "ignore_unreachable"):
            if isinstance(value, bool) or (isinstance(value, str) and value):
                return value
            if isinstance(value, int):
                return bool(value)
            raise origin.error(f"'{key}' takes a boolean, not a {_kind(value)}", f"{key}: true")
        if key == "throttle":
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value.strip())
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise origin.error(f"throttle takes a number of hosts, not {value!r}",
                                   "the controller decides where the play is cut into phases "
                                   "before anything runs, so throttle cannot be an expression")
            return value
        if key == "run_once":
            if isinstance(value, str) and value.strip().lower() in ("yes", "no", "true", "false"):
                return value.strip().lower() in ("yes", "true")
            if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1):
                return bool(value)
            if not isinstance(value, bool):
                raise origin.error(f"run_once takes true or false, not {value!r}",
                                   "the controller decides where the play is cut into phases "
                                   "before anything runs, so run_once cannot be an expression")
            return value
        if key in ("async", "poll"):
            if isinstance(value, bool) or not isinstance(value, (int, str)) or \
                    (isinstance(value, str) and not has_template(value)
                     and not value.strip().isdigit()):
                raise origin.error(f"'{key}' takes a number of seconds, not {value!r}",
                                   f"{key}: 30")
            return int(value) if isinstance(value, str) and not has_template(value) else value
        if key in ("retries", "delay", "timeout"):
            number = (int, float, str) if key == "delay" else (int, str)  # delay: seconds, 0.5
            if isinstance(value, bool) or not isinstance(value, number) or \
                    (isinstance(value, (int, float)) and value < 0 and key != "timeout"):
                what = {"delay": "a non-negative number", "retries": "a non-negative integer",
                        "timeout": "an integer"}[key]  # a bad timeout fails its task, as in Ansible
                raise origin.error(f"'{key}' takes {what}", f"{key}: 3")
            return value
        if key == "register":
            if not isinstance(value, str) or not _VAR_NAME.match(value):
                raise origin.error(f"register takes a variable name, not {value!r}",
                                   "register: result")
            return value
        if key in ("become_exe", "become_flags") and not has_template(str(value)):
            try:
                shlex.split(str(value))
            except ValueError as exc:
                raise origin.error(f"{key} is split into words as a shell splits it, and {str(value)!r} "
                                   f"cannot be: {exc}", f'{key}: "-H -S -n"') from None
        if key in ("become_user", "become_method", "become_exe", "become_flags"):
            return str(value)
        if key == "loop_control":
            if not isinstance(value, dict):
                raise origin.error("loop_control is a mapping", "loop_control: {loop_var: x}")
            return value
        if key == "loop":
            if not isinstance(value, (list, str)):
                raise origin.error("loop takes a list or an expression", "loop: [a, b]")
            return value
        return value

    def environment(self, src: Source, ds: dict[str, Any], ctx: Ctx) -> Any:
        layers = list(ctx.env)
        if ds.get("environment") is not None:
            layers.append((ds["environment"], src.origin(ds, "environment", value=True)))
        if not layers:
            return None
        if len(layers) == 1 and isinstance(layers[0][0], str):
            return layers[0][0]
        flat: list[Any] = []
        for value, origin in layers:
            for v in value if isinstance(value, list) else [value]:
                if not isinstance(v, (dict, str)):
                    raise origin.error(f"environment is a mapping of names to values (or a "
                                       f"template that gives one), not a {_kind(v)}",
                                       "environment: {PATH: /opt/bin}")
                flat.append({str(k): v2 for k, v2 in v.items()} if isinstance(v, dict) else v)
        if any(isinstance(v, str) for v in flat):
            return flat  # the host renders each layer and merges them, the inner one winning
        merged: dict[str, Any] = {}
        for v in flat:
            merged.update(v)
        return merged

    def loop(self, src: Source, ds: dict[str, Any], extras: dict[str, Any], action: str = "") -> None:
        """The task's loop keyword; ``action``: its module (with_first_found searches the
        subdirectory the action's name says, as ansible-core's task executor picks it)."""
        withs = [k for k in ds if isinstance(k, str) and k.startswith("with_")]
        if withs and "loop" in ds:
            raise src.error("a task has one loop: 'loop' and " + withs[0] + " together",
                            "keep one of them", ds, withs[0])
        if len(withs) > 1:
            raise src.error(f"a task has one loop: {withs[0]} and {withs[1]} together", None, ds,
                            withs[1])
        if not withs:
            return
        key = withs[0]
        value = ds[key]
        kind = key[len("with_"):]
        if kind == "items":
            extras["loop"] = value if isinstance(value, (list, str)) else [value]
            extras["loop_with"] = kind
        elif kind not in BUILTIN_LOOKUPS:
            raise src.error(f"'{key}' is not a valid keyword for a task: '{kind}' is not one of "
                            "ansible-core's lookups", "write it as loop: with a filter", ds, key)
        elif kind in _with_lookups():
            # Ansible's with_<lookup>: the lookup's terms are the (templated) value, a list
            # spread as terms; first_found searches the task action's subdirectory
            terms = "__rustle_with_found_terms" if kind == "first_found" else "__rustle_with_terms"
            extras["vars"] = dict(extras.get("vars") or {}, **{terms: value})
            options = ""
            if kind == "first_found":
                subdir = next((d for d in ("template", "var", "file") if d in action), "file")
                options = f", _subdir='{subdir}s'"
            extras["loop"] = (f"{{{{ query('{kind}', *({terms} if {terms} is sequence and {terms} is not "
                              f"string and {terms} is not mapping else [{terms}]){options}) }}}}")
        else:
            supported = ", ".join(f"with_{k}" for k in ("items", *sorted(_with_lookups())))
            raise src.error(f"'{key}' is not supported yet",
                            f"supported: {supported}; or write it as loop: with a filter "
                            "(Ansible's 'Migrating from with_X to loop')", ds, key)

    # -- copy/template sources ---------------------------------------------------------------------
    def sources(self, src: Source, ds: dict[str, Any], key: str | None, module: str,
                args: dict[str, Any], ctx: Ctx, pointer: str,
                extras: dict[str, Any], layers: list[dict[str, Any]]) -> dict[str, Any]:
        """A copy/template ``src`` (a script's first word) found with Ansible's search paths,
        made absolute. A templated or absolute one that does not exist yet is read when the
        task runs (``run_time_files``): an earlier task may create it on the controller; so is
        one named by a host's data after a task that ran on the controller (``layers``: the
        variables every host shares, for :meth:`render_at_run_time`)."""
        if _short(module) == "script":
            return self.script_source(src, ds, key, args, ctx)
        if _short(module) == "assemble" and isinstance(args.get("src"), str) \
                and str(args.get("remote_src", "yes")).lower() in ("no", "false", "0", "off", "n"):
            # its action plugin assembles the fragments on the controller (compiler/assemble.py)
            found, tried = self.find_file(str(self.renderer_try(args["src"], ctx) or args["src"]), "files", ctx)
            if found is None or not os.path.isdir(found):
                raise src.error(f"assemble: Source ({args['src']}) is not a directory; tried: "
                                + ", ".join(display_path(t) for t in tried),
                                "put the fragments in the role's files/ directory", ds,
                                key if key is not None else _NO_KEY, value=True)
            out = dict(args, src=found)
            for name in ("delimiter", "regexp", "ignore_hidden"):  # what the controller reads
                if has_template(out.get(name)):
                    rendered = self.renderer_try(str(out[name]), ctx)
                    if rendered is None:
                        raise src.error(f"assemble {name} depends on data only a host has: the "
                                        "fragments are assembled when the playbook is compiled",
                                        "write it over play, role or extra vars", ds,
                                        key if key is not None else _NO_KEY, value=True)
                    out[name] = rendered
            return out
        if module not in ("copy", "template") or not isinstance(args.get("src"), str) or not args["src"]:
            return args  # an empty src fails when the task runs, with the module's words
        value = args["src"]
        if module == "copy" and str(args.get("remote_src", "")).lower() in ("yes", "true", "1",
                                                                            "on", "y"):
            return args
        templated = has_template(value)
        if templated:
            control = ds.get("loop_control")
            control = control if isinstance(control, dict) else {}
            looped = "loop" in ds or any(isinstance(k, str) and k.startswith("with_") for k in ds)
            # a loop variable is each item's (undefined here: "{{ item | default('x') }}" must
            # not become 'x' for every item)
            per_item = looped and str(control.get("loop_var", "item")) in referenced_names(value)
            rendered = None if per_item else self.renderer_try(value, ctx)
            if rendered is None:
                # the host renders it; the compiler embeds every file it may name, found
                # beside the playbook and in the task's roles (compiler/sources.py)
                if ctx.role is not None:
                    self.source_roots.update(dict.fromkeys(c.role.path for c in ctx.role.chain()))
                if not per_item and self.controller_tasks and value.lstrip().startswith(("{", "/", "~")) \
                        and (referenced_names(value) & self.runtime_names
                             or self.missing_now(value, [*layers, extras.get("vars") or {}], ctx)):
                    # it may name a file an earlier task made on the controller: only then
                    # does the task start a phase (a name over facts alone, or relative, does not)
                    self.render_at_run_time(value, layers, ctx, extras)
                elif module == "copy" and self.controller_tasks:
                    self.directories_at_run_time(value, ctx, extras)
                return args
            value = str(rendered)
        found, tried = self.find_file(value, "files" if module == "copy" else "templates", ctx)
        # a task whose failure is ignored may name a missing source on purpose (ansible-core's
        # own tests do): it fails when it runs, as under Ansible
        if found is None and self.read_at_run_time(
                value, templated or ds.get("ignore_errors") is True or self.controller_tasks, tried, extras):
            return dict(args, src=value)
        if found is None:
            raise src.error(f"could not find {module} source {value!r}; tried: "
                            + ", ".join(display_path(t) for t in tried),
                            f"put it in the role's {'files' if module == 'copy' else 'templates'}/ "
                            "directory or beside the playbook", ds,
                            key if key is not None else _NO_KEY, value=True)
        if module == "copy" and self.controller_tasks and os.path.isdir(found):
            # a directory an earlier task on the controller may have changed (ansible-core's copy
            # target adds symlinks and an empty directory to its role's files/ so): read when the
            # task runs, as Ansible reads it, with the task's local_follow (fleetops)
            extras["run_time_files"] = dict(extras.get("run_time_files") or {}, **{value: [found]})
            return dict(args, src=value)
        out = dict(args)
        # a directory copies itself, or with a trailing slash its contents (as Ansible's copy)
        out["src"] = found + "/" if os.path.isdir(found) and value.endswith("/") else found
        return out

    def missing_now(self, value: str, layers: list[dict[str, Any]], ctx: Ctx) -> bool:
        """Whether ``value`` (a templated controller path) renders, over the variables every host
        shares (play, role, block and task vars), to an absolute path that does not exist now:
        a file an earlier task may make on the controller, which Ansible reads when the task
        runs (``made: "{{ playbook_dir }}/made"`` as a play var)."""
        rendered = self.renderer_try_layers(value, layers, ctx)
        if not isinstance(rendered, str):
            return False
        path = os.path.expanduser(rendered)
        return os.path.isabs(path) and not os.path.exists(path)

    def directories_at_run_time(self, value: str, ctx: Ctx, extras: dict[str, Any]) -> None:
        """A relative copy ``src`` only the host can render (``{{ item.src }}`` over an include
        loop's items), after a task that ran on the controller: each directory of a ``files/``
        search directory its shape matches is read when the task's phase starts, as Ansible
        reads it then (an earlier delegated task may have added links or files to it), under
        both the names the host may render (``dir``: the directory itself, ``dir/``: its
        contents). Files, and directories elsewhere on the search path, stay embedded as
        compiled (compiler/sources.py): sending every directory beside the playbook with each
        phase would cost more than it is worth."""
        if value.lstrip().startswith(("/", "~")):
            return
        shape = os.path.normpath(_SRC_SHAPE.sub("*", value))
        _, tried = self.find_file(shape, "files", ctx)
        found: dict[str, list[str]] = {}
        for pattern in tried:
            root = pattern[: len(pattern) - len(shape)].rstrip("/")
            if os.path.basename(root) != "files":
                continue
            for path in sorted(glob.glob(pattern)):
                if os.path.isdir(path):
                    name = os.path.relpath(path, root)
                    found.setdefault(name, [path])
                    found.setdefault(name + "/", [path])
        if found:
            extras["run_time_files"] = dict(extras.get("run_time_files") or {}, **found)

    def file_lookups(self, values: Any, ctx: Ctx, extras: dict[str, Any],
                     layers: list[dict[str, Any]]) -> None:
        """``lookup('file', EXPR)`` of an absolute path missing now (``output_dir ~ '/x'``, the
        name over extra vars or, after a task that ran on the controller, over the ``layers``
        every host shares): read when the task runs (``run_time_files``), as a missing
        template src is."""
        for match in _FILE_LOOKUP.finditer(json.dumps(values, default=str).replace('\\"', '"')):
            expression = "{{ " + match.group(1) + " }}"
            rendered = self.renderer_try(expression, ctx)
            if rendered is None and self.controller_tasks:
                rendered = self.renderer_try_layers(expression, layers, ctx)
            if isinstance(rendered, str) and os.path.isabs(rendered) and not os.path.isfile(rendered):
                self.read_at_run_time(rendered, True, [rendered], extras)

    def render_at_run_time(self, value: str, layers: list[dict[str, Any]], ctx: Ctx,
                           extras: dict[str, Any]) -> None:
        """A ``src`` a value the play sets names (``{{ made.stdout }}/dir``, a delegated ``mktemp``'s
        result), after a task that ran on the controller: the file may be one the play made
        there, which Ansible reads when the task runs. The controller renders the name when
        the task's phase starts, over the host's values then (its registered results and
        set_fact values) and the ones every host shares, known now (``run_time_render``:
        NAME -> {"vars": ..., "extra": ...}, extra vars above the host's values, as in Ansible),
        and sends the file it names (fleetops); the host renders the same name and finds it."""
        shared: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        layers = [*layers, extras.get("vars") or {}]  # the task's own vars too
        for name in sorted(referenced_names(value)):
            if name in self.extra:
                extra[name] = self.extra[name]
            elif name not in self.runtime_names:
                known = self.renderer_try_layers("{{ " + name + " }}", layers, ctx)
                if known is not None:
                    shared[name] = known
        extras["run_time_files"] = dict(extras.get("run_time_files") or {}, **{value: []})
        render = {"vars": json.loads(json.dumps(tag_unsafe(shared), default=str)),
                  "extra": json.loads(json.dumps(tag_unsafe(extra), default=str))}
        extras["run_time_render"] = dict(extras.get("run_time_render") or {}, **{value: render})

    @staticmethod
    def read_at_run_time(value: str, templated: bool, tried: list[str],
                         extras: dict[str, Any]) -> bool:
        """Whether a controller file missing now is read when its task runs: a name that was
        templated (``{{ output_dir }}/x.j2``) or is absolute may be created by an earlier task
        on the controller (``delegate_to: localhost``, a local host), as Ansible reads it only
        then; the controller sends it with the task's phase (docs/phases.md). A plain relative
        name (a file of the role or beside the playbook) missing is a mistake, refused now,
        unless ``templated`` says otherwise (the caller's: the task ignores its errors, or an
        earlier task ran on the controller and may have made it). A directory found then is a
        copy of a directory (fleetops' ``trees``)."""
        if not (templated or os.path.isabs(os.path.expanduser(value))) or not tried:
            return False
        extras["run_time_files"] = dict(extras.get("run_time_files") or {}, **{value: list(tried)})
        return True

    def script_source(self, src: Source, ds: dict[str, Any], key: str | None, args: dict[str, Any],
                      ctx: Ctx) -> dict[str, Any]:
        """A script's path (its free-form text's or ``cmd``'s first word) found in ``files/`` as
        ansible-core's script action finds it, written absolute in the text (the arguments and
        their quoting stay as written)."""
        found = script_source(args)
        if found is None:
            return args  # the runtime's script says what is missing
        if ds.get("async") not in (None, 0, "0"):
            return args  # Ansible fails it before looking for the script: "does not support async"
        word, where = found
        name = word
        if has_template(word):
            rendered = self.renderer_try(word, ctx)
            if rendered is None:
                raise src.error(f"the script {word!r} is named from host data",
                                "name the script with variables known on the controller (the "
                                "script is embedded in the artifact at compile time)", ds,
                                key if key is not None else _NO_KEY, value=True)
            name = str(rendered)
        path, tried = self.find_file(name, "files", ctx)
        if path is None or not os.path.isfile(path):
            raise src.error(f"could not find script {name!r}; tried: "
                            + ", ".join(display_path(t) for t in tried),
                            "put it in the role's files/ directory or beside the playbook", ds,
                            key if key is not None else _NO_KEY, value=True)
        out = dict(args)
        bare = word == shlex.quote(word)  # written without quotes: the path may need them
        out[where] = str(args[where]).replace(word, shlex.quote(path) if bare else path, 1)
        return out

    def module_defaults(self, src: Source, ds: dict[str, Any], ctx: Ctx, module: str,
                        args: dict[str, Any]) -> dict[str, Any]:
        """``args`` over the ``module_defaults`` in effect, as ansible-core merges them.

        The play's, blocks', roles' and the task's own are one list, outermost first; an entry
        for a module replaces the same module's entry of an enclosing level. A module's
        defaults win over its groups' (``group/NAME``), the task's own arguments over both.
        """
        layers = [(value, origin) for key, value, origin in ctx.kws if key == "module_defaults"]
        if ds.get("module_defaults") is not None:
            layers.append((ds["module_defaults"], src.origin(ds, "module_defaults")))
        if not layers:
            return args
        merged: dict[str, tuple[Any, Origin]] = {}
        for value, origin in layers:
            for entry in value if isinstance(value, list) else [value]:
                if not isinstance(entry, dict):
                    raise origin.error("module_defaults is a mapping (or a list of mappings) of "
                                       f"module or group names to arguments, not a {_kind(entry)}",
                                       "module_defaults: {file: {mode: '0644'}}")
                for name, defaults in entry.items():
                    merged[_defaults_key(str(name), origin)] = (defaults, origin)
        action = _defaults_key(module, None)
        chosen = [merged[f"group/{g}"] for g in sorted(_ACTION_GROUPS)
                  if action in _ACTION_GROUPS[g] and f"group/{g}" in merged]
        if action in merged:
            chosen.append(merged[action])
        if not chosen:
            return args
        out: dict[str, Any] = {}
        for defaults, origin in chosen:
            if defaults is None:
                continue
            if not isinstance(defaults, dict):
                hint = ("write the arguments as a mapping; a template that gives the whole "
                        "mapping is not supported yet" if has_template(defaults)
                        else "module_defaults: {file: {mode: '0644'}}")
                raise origin.error(f"the module_defaults of {module!r} must be a mapping of its "
                                   f"arguments, not a {_kind(defaults)}", hint)
            out.update(defaults)
        out.update(args)
        return out

    def include_vars(self, src: Source, ds: dict[str, Any], key: str | None, args: dict[str, Any],
                     ctx: Ctx, st: _PlayState, extras: dict[str, Any]) -> dict[str, Any]:
        """The variables files an include_vars may read, by the name the host renders.

        A name known on the controller embeds that one file; a name over a host's data
        (``"{{ ansible_os_family }}.yml"``) embeds every vars file it could name.
        """
        where = key if key is not None else _NO_KEY
        unknown = sorted(set(args) - {"file", "_raw_params", "name", "hash_behaviour"})
        if unknown:
            raise src.error(f"include_vars option '{unknown[0]}' goes with dir:, not with a file"
                            if unknown[0] in _INCLUDE_VARS_DIR else
                            f"'{unknown[0]}' is not a valid option in include_vars",
                            "include_vars: {file: FILE, name: NAME, hash_behaviour: merge} or "
                            "{dir: DIR, depth: N, files_matching: RE, ignore_files: [RE], "
                            "extensions: [yml], ignore_unknown_extensions: BOOL}", ds, where,
                            value=True)
        self.check_hash_behaviour(src, ds, where, args)
        name = args.get("file", args.get("_raw_params"))
        if not isinstance(name, str) or not name.strip():
            raise src.error("include_vars needs a file name", "- include_vars: vars/main.yml", ds,
                            where, value=True)
        name = name.strip()
        layers = [st.vars, dict(ctx.vars)]
        if ctx.role is not None:
            layers = [ctx.role.defaults, st.vars, ctx.role.vars, dict(ctx.vars), ctx.role.params]
        rendered = name
        if has_template(name):
            rendered = self.renderer_try_layers(name, layers, ctx)
        if rendered is not None:
            found, tried = self.find_file(str(rendered), "vars", ctx)
            if found is None and self.read_at_run_time(str(rendered), has_template(name), tried, extras):
                return {}
            if found is None or not os.path.isfile(found):
                raise src.error(f"could not find the vars file {rendered!r}; tried: "
                                + ", ".join(display_path(t) for t in tried),
                                "in a role: its vars/ directory; else beside the task file or the "
                                "playbook", ds, where, value=True)
            try:
                data = self.vars_file(found)
            except PlaybookError:
                if vault.file_locked(found) is None:
                    raise
                # no vault secret of the run opens it: ansible-core fails the task when it runs
                # (not when it is skipped), so the controller reads it then, as a file the play
                # made, and the task fails with ansible-core's words (fleetops, inject.locked)
                self.read_at_run_time(str(rendered), True, [found], extras)
                return {}
            extras["vars_paths"] = {os.path.abspath(found): str(rendered)}  # ansible_included_var_files
            return {str(rendered): data}
        out: dict[str, Any] = {}
        paths: dict[str, str] = {}
        for root in self.vars_roots(ctx):
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = [d for d in sorted(dirnames) if not d.startswith(".")] \
                    if os.path.relpath(dirpath, root) == "." else []
                for fname in sorted(filenames):
                    if os.path.splitext(fname)[1] not in (".yml", ".yaml", ".json"):
                        continue
                    rel = os.path.relpath(os.path.join(dirpath, fname), root)
                    if rel in out:
                        continue
                    try:
                        out[rel] = self.vars_file(os.path.join(dirpath, fname))
                    except PlaybookError:
                        continue  # not a vars file (a tasks list, a playbook): it cannot be meant
                    # the host may name it by its controller path ("{{ role_path }}/vars/x.yml",
                    # a with_first_found item): that path is this entry
                    paths[os.path.join(dirpath, fname)] = rel
        if not out or len(out) > 200:
            raise src.error(f"the include_vars name {name!r} depends on data only a host has, and "
                            f"{'no' if not out else 'too many'} vars files could be embedded for it",
                            "put the candidate files in the role's vars/ directory", ds, where,
                            value=True)
        extras["vars_paths"] = paths
        return out

    def check_hash_behaviour(self, src: Source, ds: dict[str, Any], where: Any,
                             args: dict[str, Any]) -> None:
        if args.get("hash_behaviour") not in (None, "replace", "merge"):
            raise src.error(f"hash_behaviour is replace or merge, not {args['hash_behaviour']!r}",
                            "hash_behaviour: merge", ds, where, value=True)

    def include_vars_dir(self, src: Source, ds: dict[str, Any], key: str | None,
                         args: dict[str, Any], ctx: Ctx, st: _PlayState,
                         extras: dict[str, Any]) -> dict[str, Any]:
        """``include_vars: {dir: ...}`` read as ansible-core's action reads it, on the controller:
        ``{"files": [[path, vars], ...], "error": why the task fails or None}``, in load order."""
        where = key if key is not None else _NO_KEY
        unknown = sorted(set(args) - _INCLUDE_VARS_DIR - {"dir", "name", "hash_behaviour"})
        if unknown:
            raise src.error(f"include_vars option '{unknown[0]}' cannot be used with dir:"
                            if unknown[0] in ("file", "_raw_params") else
                            f"'{unknown[0]}' is not a valid option in include_vars",
                            "You are mixing file only and dir only arguments, these are "
                            "incompatible" if unknown[0] in ("file", "_raw_params") else None,
                            ds, where, value=True)
        self.check_hash_behaviour(src, ds, where, args)
        layers = [st.vars, dict(ctx.vars)]
        if ctx.role is not None:
            layers = [ctx.role.defaults, st.vars, ctx.role.vars, dict(ctx.vars), ctx.role.params]
        options: dict[str, Any] = {}
        for name in ("dir", "depth", "files_matching", "ignore_files", "extensions",
                     "ignore_unknown_extensions"):
            value = args.get(name)
            if has_template(value):
                value = self.renderer_try_layers(value, layers, ctx) \
                    if isinstance(value, str) else None
                if value is None:
                    raise src.error(f"include_vars {name} depends on data only a host has: it "
                                    "must be known when the playbook is compiled",
                                    "write it literally or over play/role/extra vars", ds, where,
                                    value=True)
            options[name] = value
        source = str(options["dir"] or "")
        if ctx.role is not None:
            if source.split("/")[0] == "vars" and os.path.exists(
                    os.path.join(ctx.role.role.path, source)):
                root = os.path.join(ctx.role.role.path, source)
            else:
                root = os.path.join(ctx.role.role.path, "vars", source)
        else:
            root = os.path.join(os.path.dirname(src.path), source)
        try:
            ignore = options["ignore_files"] or []
            checked: dict[str, Any] = {
                "depth": int(options["depth"] or 0),
                "files_matching": str(options["files_matching"]) if options["files_matching"] else None,
                "ignore_files": ignore.split() if isinstance(ignore, str) else [str(i) for i in ignore]}
            for pattern in [checked["files_matching"] or "", *checked["ignore_files"]]:
                re.compile(pattern)
        except (TypeError, ValueError, re.error) as exc:
            raise src.error(f"include_vars: {exc}", "depth is a number, files_matching and "
                            "ignore_files regular expressions", ds, where, value=True) from exc
        extensions = options["extensions"]
        if extensions is None:
            extensions = ["yaml", "yml", "json"]
        elif isinstance(extensions, str):
            extensions = list(extensions)  # as ansible-core: each character
        if not isinstance(extensions, list):
            raise src.error('Invalid type for "extensions" option, it must be a list', None, ds,
                            where, value=True)
        checked["extensions"] = [str(e) for e in extensions]
        checked["lenient"] = _boolean(options["ignore_unknown_extensions"] or False,
                                      "ignore_unknown_extensions")
        if not os.path.exists(root) and (has_template(args.get("dir")) or os.path.isabs(source)):
            # an earlier task on the controller may create it (delegate_to: localhost): the
            # controller reads it when this task's phase starts, as ansible-core reads it at
            # the task's turn (docs/phases.md)
            self.read_at_run_time(root, True, [root], extras)
            return {"files": [], "error": None, "run_time": root, "options": checked}
        return read_vars_dir(root, checked, self.vars_file)

    def vars_roots(self, ctx: Ctx) -> list[str]:
        roots = []
        if ctx.role is not None:
            roots += [os.path.join(ctx.role.role.path, "vars"), ctx.role.role.path]
        roots += [os.path.join(ctx.task_dir, "vars"), ctx.task_dir,
                  os.path.join(self.basedir, "vars"), self.basedir]
        return [r for r in dict.fromkeys(roots) if os.path.isdir(r)]

    def vars_file(self, path: str) -> dict[str, Any]:
        data = self.read(path, "vars file")
        if data.data is None:
            return {}
        if not isinstance(data.data, dict):
            raise data.error("a vars file must be a mapping of variable names to values",
                             "name: value, one variable per line", data.data)
        return {str(k): v for k, v in data.data.items()}

    def renderer_try_layers(self, value: str, layers: list[dict[str, Any]], ctx: Ctx) -> Any:
        """``value`` rendered as the host would, or None when it reads a host's own data."""
        if referenced_names(value) & self.runtime_names:
            return None
        try:
            return self.renderer.render(value, [self.magic(ctx), *layers, self.extra])
        except TemplateFailed:
            return None

    def magic(self, ctx: Ctx) -> dict[str, Any]:
        """The magic variables a task's templates read that the controller knows."""
        magic: dict[str, Any] = {"playbook_dir": self.basedir}
        if ctx.role is not None:
            magic["role_path"] = ctx.role.role.path
            magic["role_name"] = ctx.role.role.name
            magic["ansible_search_path"] = self.search_path_var(ctx)
        return magic

    def renderer_try(self, value: str, ctx: Ctx) -> Any:
        # a name set while the play runs (set_fact, register) is still known here when extra
        # vars give it: they win over both in Ansible
        if (referenced_names(value) - set(self.extra)) & self.runtime_names:
            return None
        try:
            return self.renderer.render(value, [self.magic(ctx), self.extra])
        except TemplateFailed:
            return None

    def search_path_var(self, ctx: Ctx) -> list[str]:
        """ansible-core's ``ansible_search_path`` variable of a task: its search path, then the
        playbook's directory (its TaskExecutor appends the loader's basedir)."""
        paths = self.search_path(ctx)
        return paths if self.basedir in paths else [*paths, self.basedir]

    def search_path(self, ctx: Ctx) -> list[str]:
        """Ansible's ``ansible_search_path`` of a task: its roles' paths, then its own directory."""
        paths = [c.role.path for c in ctx.role.chain()] if ctx.role is not None else []
        return paths if ctx.task_dir in paths else [*paths, ctx.task_dir]

    def find_file(self, name: str, subdir: str, ctx: Ctx) -> tuple[str | None, list[str]]:
        """Ansible's ``path_dwim_relative_stack`` for a copy/template source."""
        name = os.path.expanduser(name)
        if os.path.isabs(name):
            return (name if os.path.exists(name) else None), [name]
        paths = self.search_path(ctx)
        search: list[str] = []
        first = name.split("/")[0]
        for path in paths:
            parent = os.path.dirname(path)
            is_role = ctx.role is not None and any(path == c.role.path for c in ctx.role.chain())
            if (is_role or os.path.basename(path) == "tasks") and path.endswith("/tasks"):
                search.append(os.path.join(parent, subdir, name))
                search.append(os.path.join(path, subdir, name))
            if first != subdir:
                search.append(os.path.join(path, subdir, name))
            search.append(os.path.join(path, name))
        if first != subdir:
            search.append(os.path.join(self.basedir, subdir, name))
        search.append(os.path.join(self.basedir, name))
        search = list(dict.fromkeys(os.path.normpath(s) for s in search))
        for candidate in search:
            if os.path.exists(candidate):
                return candidate, search
        return None, search

    # -- includes and imports ------------------------------------------------------------------
    def include_paths(self, name: str, ctx: Ctx) -> list[str]:
        """Where ansible-core looks for an included tasks file, in order."""
        name = os.path.expanduser(name)
        tried: list[str] = []
        if os.path.isabs(name):
            tried.append(name)
        else:
            if ctx.role is not None:
                rp = ctx.role.role.path
                tried += [os.path.join(rp, "tasks", name), os.path.join(rp, name)]
            tried += [os.path.join(ctx.task_dir, name), os.path.join(self.basedir, name)]
        return list(dict.fromkeys(os.path.normpath(t) for t in tried))

    def include_file(self, src: Source, ds: dict[str, Any], key: str | None, name: str,
                     ctx: Ctx) -> str:
        tried = self.include_paths(name, ctx)
        for t in tried:
            if os.path.isfile(t):
                return t
        at = src.origin(ds, key if key is not None else _NO_KEY, value=True)
        exc = MissingInclude(f"the tasks file {name!r} was not found; tried: " + ", ".join(display_path(t) for t in tried),
                             "paths are relative to the including file's directory (in a role: its tasks/ directory)",
                             file=at.file, line=at.line, column=at.column, source_line=at.text)
        # ansible-core names the last place it looked (beside the playbook, or the absolute name)
        exc.reason = f"Could not find or access '{tried[-1]}' on the Ansible Controller."
        raise exc

    def include_tasks(self, src: Source, ds: dict[str, Any], origin: Origin, module: str,
                      key: str | None, args: dict[str, Any], ctx: Ctx, st: _PlayState,
                      out: list[Task], base: str, *, static: bool) -> None:
        what = "import_tasks" if static else "include_tasks"
        allowed = kw.IMPORT_TASKS if static else kw.INCLUDE_TASKS | ({"listen"} if ctx.handler else set())
        for k in ds:
            if k == key or k in allowed or (not static and isinstance(k, str)
                                            and k.startswith("with_")):
                continue
            if static and isinstance(k, str) and (k.startswith("with_") or k == "loop"):
                raise src.error("you cannot use loops on 'import_tasks' statements",
                                "use include_tasks instead", ds, k)
            close = kw.suggest(k, allowed)
            raise src.error(f"'{k}' is not a valid keyword for {what}",
                            f"did you mean '{close}'?" if close else
                            f"{what} accepts: {', '.join(sorted(allowed))}", ds, k)
        if static and ("loop" in ds):
            raise src.error("you cannot use loops on 'import_tasks' statements",
                            "use include_tasks instead", ds, "loop")
        bad = set(args) - {"_raw_params", "file", "apply"}
        if bad:
            raise src.error(f"invalid options for {what}: {', '.join(sorted(bad))}",
                            f"{what}: FILE (or file: FILE)", ds, key if key else _NO_KEY,
                            value=True)
        if static and "apply" in args:
            raise src.error("'apply' works with include_tasks only", None, ds, key or _NO_KEY,
                            value=True)
        target = args.get("file", args.get("_raw_params"))
        if not isinstance(target, str) or not target.strip():
            raise src.error(f"{what} needs a file name", f"- {what}: other.yml", ds,
                            key or _NO_KEY, value=True)
        layers = [st.vars, dict(ctx.vars)]
        if ctx.role is not None:
            layers = [ctx.role.defaults, st.vars, ctx.role.vars, dict(ctx.vars), ctx.role.params]
        layers.append(ds["vars"] if isinstance(ds.get("vars"), dict) else {})  # its own vars last
        try:
            name = str(self.controller_value(src, ds, key, target.strip(), layers,
                                             f"the {what} file name", dynamic=not static,
                                             role=ctx.role))
        except PlaybookError:
            if static or self.choosing:
                raise
            self.include_choice(src, ds, origin, module, key, target.strip(), args, ctx, st,
                                out, base, layers)
            self.unrolled_choice(src, ds, origin, module, key, args, ctx, st, out, base, layers)
            return
        try:
            path = self.include_file(src, ds, key, name, ctx)
        except MissingInclude as exc:
            if static or self.choosing:
                raise
            self.failed_include(src, ds, origin, module, ctx, st, out, base, name,
                                {"reason": exc.reason, "include": name}, {"include": name, "include_args": {}})
            return
        real = os.path.realpath(path)
        if real in ctx.include_stack:
            raise src.error(f"{what} loop: {display_path(path)} includes itself",
                            "an include that always includes its own file never ends", ds,
                            key or _NO_KEY, value=True)
        child = self.read(path, "tasks file")
        if static:
            inner = self.inherit(src, ds, ctx, st)
            self.check_inherited(src, ds, inner, st)
            inner = replace(inner, src=child, task_dir=child.dir,
                            include_stack=ctx.include_stack + (real,), nested=ctx.handler)
            self.tasks_from_source(child, inner, st, out, base)
            return
        pointer = f"{base}/{len(out)}"
        self.origins[pointer] = origin
        # a handler's include_tasks file may hold blocks (ansible-core loads it as a list of
        # blocks), not blocks inside those
        inner = replace(ctx, src=child, task_dir=child.dir, include_stack=ctx.include_stack + (real,),
                        listed=False, nested=False)
        apply = args.get("apply")
        if apply is not None:
            if not isinstance(apply, dict):
                raise src.error("apply is a mapping of block keywords", None, ds, key or _NO_KEY,
                                value=True)
            self.check_keys(src, apply, kw.BLOCK - {"block", "rescue", "always"}, "apply", apply)
            inner = self.inherit(src, apply, inner, st)
        task_id = st.new_id()
        children: list[Task] = []
        deferred: dict[str, Any] | None = None
        try:
            self.tasks_from_source(child, inner, st, children, f"{pointer}/block")
        except (UnknownModule, MissingInclude, HandlerBlock) as exc:
            if self.choosing:
                raise
            # ansible-core reads an include_tasks file only when a host reaches it: a file that
            # names a module nothing provides (a Windows-only one) aborts the run there, as a
            # parse error; one that imports a missing file fails the hosts that include it
            if isinstance(exc, MissingInclude):
                deferred = {"reason": exc.reason, "include": name}
            elif isinstance(exc, HandlerBlock):  # ansible-core's parser error (exit 4), as it words it
                deferred = {"reason": exc.detail, "include": name, "errored": True, "exit": 4}
            else:
                deferred = {"reason": f"rustle-deploy cannot include {display_path(path)}: {exc}",
                            "include": name, "errored": True, "exit": 4}
            children = []
        self.container(src, ds, ctx, st, out, pointer, children, display_path(path), module,
                       task_id, registered={"include": name, "include_args": {}})
        if deferred is not None:
            out[-1] = replace(out[-1], extras=dict(out[-1].extras, include_error=deferred))
            return
        unrolled = self.unrolled_items(ds, out[-1], layers, ctx, st)
        if unrolled is None:
            self.item_order(ds, out, layers, ctx, st)
            return
        # a loop over an include whose tasks run differently, over items the controller knows:
        # one include per distinct item, so that the play is cut inside each (docs/phases.md
        # "Loops over includes that mix kinds"); the first (the loop's own) renders the items and
        # decides each item's condition, reports the loop, and runs its item; the others run
        # theirs; a host whose items are not the include order's (``include_slots``) runs each
        # item in the include the controller placed it in
        def copy(at: str, copy_id: str) -> None:
            kids: list[Task] = []
            self.tasks_from_source(child, inner, st, kids, f"{at}/block")
            self.container(src, ds, replace(ctx, listed=False), st, out, at, kids, display_path(path), module,
                           copy_id, registered={"include": name, "include_args": {}})

        self.unroll(out, base, origin, st, *unrolled, copy)

    def item_order(self, ds: dict[str, Any], out: list[Task], layers: list[dict[str, Any]], ctx: Ctx,
                   st: _PlayState, name: str | None = None) -> None:
        """A looped include that stays one unit (``out[-1]``; its tasks all run the same way),
        over items the controller knows per host: ansible-core runs the items in its included
        files' order (:meth:`unrolled_items`), which is not a host's own order when the hosts'
        items or conditions differ; the host then runs them in that order (``include_slots``)."""
        include = out[-1]
        if len(st.hosts) <= 1 or "loop" not in include.extras:
            return
        # items, condition and file name the same on every host: each host's own order
        control = ds.get("loop_control") if isinstance(ds.get("loop_control"), dict) else {}
        read = referenced_names([include.extras["loop"], include.extras.get("vars") or {}, name or "", control,
                                 *("{{ " + str(c.value) + " }}" for c in include.conditions if c.kind == "When")])
        hosts = [self.inv.hosts.get(h) for h in st.hosts]
        if not read & {"inventory_hostname", "inventory_hostname_short", "group_names", "hostvars", "groups",
                       *(k for h in hosts if h is not None for k in h.vars)}:
            return
        found = self.unrolled_items(ds, include, layers, ctx, st, name=name, unmixed=True)
        if found is None:
            return
        slots = found[1]
        if any(kept != sorted(kept) for kept in ([p for p in places if p is not None] for places in slots.values())):
            out[-1] = replace(include, extras=dict(include.extras, include_slots=slots))

    def unroll(self, out: list[Task], base: str, origin: Origin, st: _PlayState, paths: list[str | None],
               slots: dict[str, list[int | None]], copy: Callable[[str, str], None]) -> None:
        """``out[-1]``, a looped include, as one include per item (:meth:`unrolled_items`): it
        keeps the loop and runs its item; ``copy(pointer, id)`` appends each other one."""
        head = len(out) - 1
        copies: list[str] = []
        for _ in range(1, len(paths)):
            at = f"{base}/{len(out)}"
            self.origins[at] = origin
            copy_id = st.new_id()
            copy(at, copy_id)
            extras = {k: v for k, v in out[-1].extras.items()
                      if k not in ("loop", "loop_control", "loop_with", "register", "include_result", "public")}
            out[-1] = replace(out[-1], extras=dict(extras, include_item=out[head].task_id))
            copies.append(copy_id)
        extras = dict(out[head].extras, include_items=copies)
        if any(places != list(range(len(paths))) for places in slots.values()):
            extras["include_slots"] = slots
        out[head] = replace(out[head], extras=extras)

    def unrolled_items(self, ds: dict[str, Any], include: Task, layers: list[dict[str, Any]], ctx: Ctx,
                       st: _PlayState, name: str | None = None, unmixed: bool = False
                       ) -> tuple[list[str | None], dict[str, list[int | None]]] | None:
        """The includes a loop over ``include`` (an include_tasks of a file known here) becomes,
        when it is to be one include per item: its tasks run differently (on every host, once,
        on the controller: the play is cut inside it) and the controller renders each host's
        items (a written list, play/role/inventory/extra vars, range(), a vars_files list, a
        with_<lookup>) and decides the include's condition for each host and item. ansible-core
        runs a looped include's items in lock-step across the hosts: one included file per
        distinct item (file, loop variables), in the order the hosts' results list them, each
        for the hosts whose items it equals (its ``IncludedFile.process_include_results``).
        Returns the includes (with ``name``, the include's file name as a template over the
        loop's variables: each one's file, found here), and for each host the include each item
        runs in (None: its condition is false). None otherwise: a loop whose items, condition or
        file names read facts or registered results stays one unit (phases.refusals).
        ``unmixed``: the same for a loop whose tasks all run the same way (it stays one unit:
        :meth:`item_order`)."""
        if ctx.handler or self.choosing or "loop" not in include.extras \
                or mixes_kinds(include, len(st.hosts) <= 1) is unmixed:
            return None
        loop = include.extras["loop"]
        control: dict[str, Any] = ds["loop_control"] if isinstance(ds.get("loop_control"), dict) else {}
        if has_template({k: v for k, v in control.items() if k != "label"}):
            return None
        loop_var, index_var = str(control.get("loop_var") or "item"), control.get("index_var")
        conditions = [c.value for c in include.conditions if c.kind == "When"]
        own_vars: dict[str, Any] = include.extras["vars"] if isinstance(include.extras.get("vars"), dict) else {}
        # hosts that hold the same values of what the loop reads have the same items: rendered once
        read = referenced_names([loop, own_vars, name or "", control.get("label") or "",
                                 *("{{ " + str(c) + " }}" for c in conditions)])
        shared = not read & {"lookup", "query", "q", "vars", "hostvars", "inventory_hostname",
                             "inventory_hostname_short"}
        seen: dict[str, list[tuple[str | None, str] | None] | None] = {}

        def host_items(host: str) -> list[tuple[str | None, str] | None] | None:
            """Each item's file (with ``name``) and loop variables (as JSON) on ``host``, None
            for an item whose condition is false; None when the controller cannot tell."""
            found = self.inv.hosts.get(host)
            own = {**(found.vars if found is not None else {}), "inventory_hostname": host}
            signature = host
            if shared:  # what the names it reads read in turn (a variable that is a template) too
                names, todo = set(read), list(read)
                while todo:
                    at = todo.pop()
                    for layer in (own, *layers, own_vars, self.extra):
                        if at in layer and has_template(layer[at]):
                            todo += [n for n in referenced_names(layer[at]) - names]
                            names.update(todo)
                if not names & {"lookup", "query", "q", "vars", "hostvars", "inventory_hostname",
                                "inventory_hostname_short"}:
                    signature = json.dumps({k: own.get(k) for k in sorted(names)}, default=str)
            if signature in seen:
                return seen[signature]
            seen[signature] = None
            scope = [own, *layers, own_vars]
            items = self.controller_items(loop, scope, include.extras.get("loop_with") == "items", ctx)
            if items is None:
                return None
            listed: list[tuple[str | None, str] | None] = []
            for index, item in enumerate(items):
                lv: dict[str, Any] = {loop_var: item, "ansible_loop_var": loop_var}
                if index_var:
                    lv.update({str(index_var): index, "ansible_index_var": index_var})
                if control.get("extended"):
                    lv["ansible_loop"] = [items, index]  # what ansible_loop is made of
                if "label" in control:
                    lv["_ansible_item_label"] = self.renderer_try_layers(control["label"], [*scope, lv], ctx) \
                        if has_template(control["label"]) else control["label"]
                    if lv["_ansible_item_label"] is None:
                        return None
                kept = self.controller_condition(conditions, [*scope, lv], len(st.hosts), ctx)
                if kept is None:
                    return None
                if not kept:
                    listed.append(None)
                    continue
                path = None
                if name is not None:  # the file this item names, as ansible-core finds it
                    rendered = self.renderer_try_layers(name, [*scope, lv], ctx)
                    path = next((t for t in self.include_paths(str(rendered), ctx) if os.path.isfile(t)), None) \
                        if isinstance(rendered, str) else None
                    if path is None:
                        return None
                listed.append((path, json.dumps([path, lv], sort_keys=True, default=str)))
            seen[signature] = listed
            return listed

        keys: list[str] = []
        paths: list[str | None] = []
        hosts_of: list[set[str]] = []
        slots: dict[str, list[int | None]] = {}
        for host in st.hosts:
            listed = host_items(host)
            if listed is None:
                return None
            slots[host] = []
            for entry in listed:
                if entry is None:
                    slots[host].append(None)
                    continue
                # ansible-core's IncludedFile equality: the first include of this file and these
                # loop variables that this host is not yet in, or a new one
                path, key = entry
                at = next((i for i, k in enumerate(keys) if k == key and host not in hosts_of[i]), None)
                if at is None:
                    keys.append(key)
                    paths.append(path)
                    hosts_of.append(set())
                    at = len(keys) - 1
                hosts_of[at].add(host)
                slots[host].append(at)
        return paths or [None], slots

    def controller_items(self, loop: Any, scope: list[dict[str, Any]], flatten: bool, ctx: Ctx) -> list[Any] | None:
        """A loop's items as a host renders them, when they need none of its own data."""
        value: Any = loop
        if isinstance(loop, str):
            value = self.renderer_try_layers(loop, scope, ctx) if has_template(loop) else None
        elif isinstance(loop, list):
            value = []
            for element in loop:
                rendered = self.renderer_try_layers(element, scope, ctx) \
                    if isinstance(element, str) and has_template(element) else element
                if rendered is None and element is not None:
                    return None
                value.append(rendered)
        if not isinstance(value, list):
            return None
        if flatten:  # with_items flattens one level
            value = [x for e in value for x in (e if isinstance(e, list) else [e])]
        return value

    def controller_condition(self, conditions: list[Any], scope: list[dict[str, Any]], hosts: int,
                             ctx: Ctx) -> bool | None:
        """Whether ``conditions`` (an include's ``when``) hold for one host and item, decided
        here when they read only what the controller knows; True for a play of one host, whose
        includes run in its own items' order whatever each item's condition."""
        if hosts <= 1:
            return True
        known = {"playbook_dir", "role_path", "role_name", "ansible_search_path", *self.extra}
        for layer in scope:
            known.update(layer)
        for cond in conditions:
            if not isinstance(cond, str) or isinstance(cond, Unsafe):
                return None
            if referenced_names("{{ " + cond + " }}") - known:
                return None
            if referenced_names("{{ " + cond + " }}") & self.runtime_names:
                return None
            try:
                if not self.renderer.condition(cond, [self.magic(ctx), *scope, self.extra]):
                    return False
            except TemplateFailed:
                return None
        return True

    def failed_include(self, src: Source, ds: dict[str, Any], origin: Origin, module: str, ctx: Ctx,
                       st: _PlayState, out: list[Task], base: str, include: str, error: dict[str, Any],
                       registered: dict[str, Any] | None, name: str | None = None) -> None:
        """An include_tasks/include_role whose file or role cannot be loaded (``error``: its
        ``include_error``): ansible-core loads it when a host reaches the include, and the
        include fails there (docs/playbooks.md)."""
        pointer = f"{base}/{len(out)}"
        self.origins[pointer] = origin
        self.container(src, ds, ctx, st, out, pointer, [], include, module, st.new_id(), registered, name=name)
        out[-1] = replace(out[-1], extras=dict(out[-1].extras, include_error=error))

    def unrolled_choice(self, src: Source, ds: dict[str, Any], origin: Origin, module: str, key: str | None,
                        args: dict[str, Any], ctx: Ctx, st: _PlayState, out: list[Task], base: str,
                        layers: list[dict[str, Any]]) -> None:
        """A loop over an include_tasks whose file name the loop's items give (the include
        choice just compiled, ``out[-1]``), whose files mix kinds and whose items, condition and
        file names the controller knows per host: one include per distinct file and item, in
        ansible-core's order, each holding its own file (docs/phases.md "Loops over includes
        that mix kinds"), as :meth:`include_tasks` does for a named file."""
        choice = out[-1]
        unrolled = self.unrolled_items(ds, choice, layers, ctx, st, name=choice.extras["include_choice"]["name"])
        if unrolled is None:
            self.item_order(ds, out, layers, ctx, st, name=choice.extras["include_choice"]["name"])
            return
        paths, slots = unrolled
        out.pop()

        def one(at: str, task_id: str) -> None:
            path = paths[len(out) - head]
            assert path is not None
            self.origins[at] = origin
            child = self.read(path, "tasks file")
            inner = replace(ctx, src=child, task_dir=child.dir,
                            include_stack=ctx.include_stack + (os.path.realpath(path),), listed=False, nested=False)
            if isinstance(args.get("apply"), dict):
                inner = self.inherit(src, args["apply"], inner, st)
            kids: list[Task] = []
            self.tasks_from_source(child, inner, st, kids, f"{at}/block")
            self.container(src, ds, ctx if len(out) == head else replace(ctx, listed=False), st, out, at, kids,
                           display_path(path), module, task_id)

        head = len(out)
        one(f"{base}/{head}", st.new_id())
        self.unroll(out, base, origin, st, paths, slots, one)

    def include_choice(self, src: Source, ds: dict[str, Any], origin: Origin, module: str,
                       key: str | None, name: str, args: dict[str, Any], ctx: Ctx,
                       st: _PlayState, out: list[Task], base: str,
                       layers: list[dict[str, Any]]) -> None:
        """An include_tasks whose file name depends on a host's data (facts, loop items,
        registered results, ``lookup('first_found', ...)`` over those): every tasks file the
        name could select (the role's ``tasks/`` and the including file's directory) is
        compiled as one block of the include, each under the names that select it, and the
        host renders the name and runs that block. A file that cannot be compiled fails the
        include only on a host that selects it, with the reason."""
        dirs = [ctx.task_dir]
        if ctx.role is not None:
            dirs.insert(0, os.path.join(ctx.role.role.path, "tasks"))
        # the literal text around the template narrows the candidates: "tasks/{{ x }}.yml"
        head, tail = re.split(r"\{[{%]", name, maxsplit=1)[0], re.split(r"[}%]\}", name)[-1]
        files: list[str] = []
        names: set[str] = set()
        for d in dict.fromkeys(os.path.normpath(d) for d in dirs):
            top = os.path.join(d, os.path.dirname(head))
            for dirpath, subdirs, filenames in os.walk(top):
                subdirs[:] = sorted(x for x in subdirs if not x.startswith("."))
                for fn in sorted(filenames):
                    path = os.path.normpath(os.path.join(dirpath, fn))
                    rel = os.path.relpath(path, d)
                    if (os.path.splitext(fn)[1] in (".yml", ".yaml", ".json")
                            and rel.startswith(os.path.normpath(head) if "/" in head else "")
                            and rel.endswith(tail)):
                        files.append(path)
                        names.add(rel)
                        if ctx.role is not None:  # first_found's paths: [tasks] -> tasks/x.yml
                            names.add(os.path.relpath(path, ctx.role.role.path))
                if len(files) > _MAX_CHOICES:
                    raise src.error(
                        f"the {module} file name {name!r} depends on a host's data, and more "
                        f"than {_MAX_CHOICES} files under {display_path(top)} could be the one",
                        "put the files it chooses from in a directory of their own and name "
                        "it in the include: \"tasks/{{ ansible_os_family }}.yml\"", ds,
                        key or _NO_KEY, value=True)
        # a loop the controller can render names its files itself ("{{ role_path }}/x.yml")
        loop = ds.get("loop", ds.get("with_items"))
        loop_var = (ds.get("loop_control") or {}).get("loop_var", "item") \
            if isinstance(ds.get("loop_control"), dict) else "item"
        for element in loop if isinstance(loop, list) else []:
            value = self.renderer_try_layers(element, layers, ctx) \
                if isinstance(element, str) and has_template(element) else element
            rendered = self.renderer_try_layers(name, [*layers, {loop_var: value}], ctx) \
                if value is not None else None
            hit = next((t for t in self.include_paths(str(rendered), ctx) if os.path.isfile(t)),
                       None) if isinstance(rendered, str) else None
            if hit is not None:
                files.append(hit)
        files = list(dict.fromkeys(files))
        pointer = f"{base}/{len(out)}"
        self.origins[pointer] = origin
        apply = args.get("apply")
        inner0 = replace(ctx, listed=False)
        if apply is not None:
            if not isinstance(apply, dict):
                raise src.error("apply is a mapping of block keywords", None, ds, key or _NO_KEY,
                                value=True)
            self.check_keys(src, apply, kw.BLOCK - {"block", "rescue", "always"}, "apply", apply)
            inner0 = self.inherit(src, apply, inner0, st)
        task_id = st.new_id()
        children: list[Task] = []
        index: dict[str, int] = {}
        refused: dict[str, str] = {}
        self.choosing = True
        try:
            for path in files:
                real = os.path.realpath(path)
                try:
                    if real in ctx.include_stack:
                        raise src.error(f"{display_path(path)} includes itself", None, ds,
                                        key or _NO_KEY, value=True)
                    child = self.read(path, "tasks file")
                    inner = replace(inner0, src=child, task_dir=child.dir,
                                    include_stack=ctx.include_stack + (real,))
                    kids: list[Task] = []
                    at = f"{pointer}/block/{len(children)}"
                    self.tasks_from_source(child, inner, st, kids, f"{at}/block")
                except PlaybookError as exc:
                    refused[path] = f"rustle-deploy cannot include {display_path(path)}: {exc}"
                    continue
                self.origins[at] = origin
                index[path] = len(children)
                children.append(Task(task_id=st.new_id(), name=display_path(path), module="",
                                     args={}, hosts=(), execution_order=len(children),
                                     pointer=at, block=tuple(kids)))
        finally:
            self.choosing = False
        select: dict[str, Any] = {}
        found: dict[str, str] = {}
        for candidate in sorted(names) + files:
            hit = next((t for t in self.include_paths(candidate, ctx) if os.path.isfile(t)), None)
            if hit is not None and hit in index:
                select[candidate] = index[hit]
            elif hit is not None and hit in refused:
                select[candidate] = refused[hit]
            ff = self.find_file(candidate, "files", ctx)[0]
            if ff is not None and (ff in index or ff in refused):
                found[candidate] = ff
        for path in files:  # first_found answers with the controller's path, as in Ansible
            select[path] = index[path] if path in index else refused[path]
        self.container(src, ds, ctx, st, out, pointer, children, name, module, task_id)
        out[-1] = replace(out[-1], extras=dict(out[-1].extras, include_choice={
            "name": name, "select": select, "found": found}))

    def container(self, src: Source, ds: dict[str, Any], ctx: Ctx, st: _PlayState,
                  out: list[Task], pointer: str, children: list[Task], include: str,
                  module: str, task_id: str, registered: dict[str, Any] | None = None,
                  name: str | None = None) -> None:
        """An include_* as a block the host evaluates once (its own when, tags, loop, vars);
        ``registered``: what ``register`` on it gets (include_tasks of a file known here)."""
        self.check_inherited(src, ds, ctx, st)
        extras: dict[str, Any] = {"include": include}
        if ds.get("register") is not None:
            if registered is None:
                raise src.error(f"register on {_short(module)} is not supported"
                                + (" when the file name depends on a host's data"
                                   if module.endswith("include_tasks") else
                                   " when its arguments are templates"),
                                "register works on include_tasks of a file named on the "
                                "controller and on include_role with arguments written out",
                                ds, "register")
            extras["register"] = self.keyword_value(src, ds, "register", ds["register"],
                                                    src.origin(ds, "register"))
            extras["include_result"] = registered
            self.runtime_names.add(extras["register"])
        for key in ("loop", "loop_control"):
            if ds.get(key) is not None:
                extras[key] = self.keyword_value(src, ds, key, ds[key], src.origin(ds, key))
        once = ds.get("run_once")
        if once is not None and self.keyword_value(src, ds, "run_once", once, src.origin(ds, "run_once")) is True:
            # ansible-core processes the include for the play's first host only; its tasks are
            # not run_once themselves (apply: {run_once: true} makes them so)
            extras["include_once"] = True
        ignore = self.effective(src, ds, ctx, "ignore_errors")
        if ignore is not None and ignore[0] is not False:  # the include's own failure (a condition's error)
            extras["ignore_errors"] = self.keyword_value(src, ds, "ignore_errors", ignore[0], ignore[1])
        self.loop(src, ds, extras)
        params = self.vars_mapping(src, ds, "vars", module)
        if params:
            extras["params"] = params
        if ctx.role is not None:
            extras["role"] = self.role_key(ctx.role, st)
        conditions = list(ctx.when) + self.conditions(src, ds)
        origins = condition_origins(conditions, [*self._layers(ctx, st), extras.get("params") or {}, self.extra],
                                    self.options.extra_origins)
        if origins:
            extras["origins"] = origins
        tags = self.rendered_tags(src, ds, ctx.tags + self.tags(src, ds), ctx, st)
        name = name or self.display_name(ds, module, ctx)
        if ctx.handler:  # an include as a handler: notified by its name or its listen topics
            if not ds.get("name"):
                extras["unnamed"] = True
            listen = ds.get("listen")
            topics = [] if listen is None else [str(x) for x in listen] if isinstance(listen, list) else [str(listen)]
            if ctx.role is not None and ds.get("name"):
                topics.append(f"{ctx.role.role.name} : {ds['name']}")
            if topics:
                extras["listen"] = topics
        out.append(Task(task_id=task_id, name=name, module="", args={}, hosts=(),
                        conditions=tuple(Condition("When", c) for c in conditions), tags=tags,
                        execution_order=len(out), extras=extras, pointer=pointer,
                        block=tuple(children)))
        if not ctx.handler and ctx.listed:
            st.listed.append(ListedTask(name, tuple(dict.fromkeys(tags))))

    def include_role(self, src: Source, ds: dict[str, Any], origin: Origin, module: str,
                     key: str | None, args: dict[str, Any], ctx: Ctx, st: _PlayState,
                     out: list[Task], base: str, *, static: bool, chosen: str | None = None) -> None:
        """An import_role/include_role; ``chosen``: the role name one candidate of a role choice
        renders to (:meth:`role_choice`)."""
        what = "import_role" if static else "include_role"
        if ctx.handler:  # ansible-core refuses it when it loads the handlers
            raise src.error(f"Using '{module}' as a handler is not supported.",
                            "make the handler a task, or an include_tasks of a tasks file", ds)
        allowed = kw.IMPORT_TASKS if static else (kw.INCLUDE_TASKS | kw.BLOCK) - {"block", "rescue", "always"}
        for k in ds:
            if k == key or k in allowed or (not static and isinstance(k, str)
                                            and k.startswith("with_")):
                continue
            if static and isinstance(k, str) and (k.startswith("with_") or k == "loop"):
                raise src.error("you cannot use loops on 'import_role' statements",
                                "use include_role instead", ds, k)
            close = kw.suggest(k, allowed)
            raise src.error(f"'{k}' is not a valid keyword for {what}",
                            f"did you mean '{close}'?" if close else None, ds, k)
        bad = set(args) - kw.INCLUDE_ROLE_ARGS
        if bad:
            raise src.error(f"invalid options for {what}: {', '.join(sorted(bad))}",
                            f"{what} takes: {', '.join(sorted(kw.INCLUDE_ROLE_ARGS))}", ds,
                            key or _NO_KEY, value=True)
        name = args.get("name", args.get("role"))
        arg_holder = ds[key] if key and isinstance(ds.get(key), dict) else ds
        name_key = "name" if "name" in arg_holder else ("role" if "role" in arg_holder else key)
        if not isinstance(name, str) or not name.strip():
            raise src.error(f"{what} needs the role's name", f"{what}:\n  name: web", ds,
                            key or _NO_KEY, value=True)
        # its arguments are rendered with the variables every host shares, its own vars last
        layers = [st.vars, dict(ctx.vars)]
        if ctx.role is not None:
            layers = [ctx.role.defaults, st.vars, ctx.role.vars, dict(ctx.vars), ctx.role.params]
        layers.append(ds["vars"] if isinstance(ds.get("vars"), dict) else {})

        def arg(key: str, default: Any, label: str = "") -> Any:
            value = args.get(key, default)
            if isinstance(value, str) and _OMIT.match(value):
                return default  # an omitted argument is not given (ansible-core's omit)
            return self.controller_value(src, arg_holder, key if key in arg_holder else _NO_KEY, value, layers,
                                         label or f"{what}'s {key}", dynamic=not static, role=ctx.role)

        if chosen is not None:
            name = chosen
        elif has_template(name):
            try:
                name = str(arg(name_key if name_key in ("name", "role") else "name", name, "the role name"))
            except PlaybookError:
                if static or self.choosing or not self.role_choice(src, ds, origin, module, key, name, args, ctx,
                                                                   st, out, base, layers):
                    raise
                return
        base_dir = os.path.dirname(ctx.role.role.path) if ctx.role else None
        # what register gets: ansible-core's include_role result holds its arguments as given
        # (templated ones are the host's to render: not offered)
        registered = None if re.search(r"\{\{|\{%", json.dumps(args, default=str)) else {"include_args": dict(args)}
        # Ansible's name for an include_role: its own, else ACTION : ROLE (never a role prefix)
        shown = str(ds["name"]) if ds.get("name") else f"{module} : {name}"
        try:
            role = self.finder.find(name, src.origin(arg_holder, name_key, value=True), base_dir,
                                    st.play_dir, _search_list(self.collections(src, ds, ctx), "ansible.legacy"))
        except MissingInclude as exc:
            if static or self.choosing:
                raise
            self.failed_include(src, ds, origin, module, ctx, st, out, base, f"role {name}",
                                {"reason": exc.reason}, registered, shown)
            return
        froms = {f: str(arg(f"{f}_from", "main")) for f in ("tasks", "handlers", "vars", "defaults")}
        for f, v in froms.items():
            froms[f] = os.path.splitext(v)[0] if os.path.splitext(v)[1] in (".yml", ".yaml",
                                                                          ".json") else v
        public = _boolean(arg("public", static), "public")
        # given false, a repeat of the role (same role, arguments and vars) that ran on a host
        # is skipped there, as ansible-core's role cache; not given, the role runs again
        duplicates = None if args.get("allow_duplicates") is None else _boolean(
            arg("allow_duplicates", True), "allow_duplicates")
        arg("rolespec_validate", True)  # rendered as ansible-core does: argument_specs are not validated
        if static and "apply" in args:
            raise src.error("'apply' works with include_role only", None, ds, key or _NO_KEY,
                            value=True)
        own_vars = self.vars_mapping(src, ds, "vars", what)
        identity = _identity(role.path, {}, ds.get("when"), ds.get("tags"), own_vars, froms,
                             not static)
        params: dict[str, Any] = {}
        if ctx.role is not None:  # ansible-core's IncludeRole.get_include_params
            parent = ctx.role.params
            params = {**parent,
                      "ansible_parent_role_names": [ctx.role.role.name,
                                                    *parent.get("ansible_parent_role_names", [])],
                      "ansible_parent_role_paths": [ctx.role.role.path,
                                                    *parent.get("ansible_parent_role_paths", [])]}
        call = RoleCall(key="", role=role, params=params, origin=origin, identity=identity,
                        parent=ctx.role, tasks_from=froms["tasks"],
                        handlers_from=froms["handlers"], vars_from=froms["vars"],
                        defaults_from=froms["defaults"], public=public and static, allow_duplicates=duplicates)
        hctx = replace(ctx, handler=True, role=None, when=(), tags=(), vars=())
        if static:  # an import_role's handlers are its children in ansible-core: its keywords
            # (delegate_to, become...), condition and vars reach them, as its tasks (not tags, notify)
            inner = self.inherit(src, ds, hctx, st, include_tags=False)
            hctx = replace(inner, kws=tuple(k for k in inner.kws if k[0] != "notify"))
        known = len(st.handlers)
        # not the include's vars, condition or tasks_from: ansible-core notifies one handler of them all
        key = _identity(role.path, {}, None, None, {}, {"handlers": froms["handlers"]}, False)
        try:
            self.load_role_vars(call, st)
            self.register_role(call, st)
            self.role_handlers(call, hctx, st, hctx, key)
        except MissingInclude as exc:  # a dependency: the hosts that include the role fail
            if static or self.choosing:
                raise
            self.failed_include(src, ds, origin, module, ctx, st, out, base, f"role {role.name}",
                                {"reason": exc.reason}, registered, shown)
            return
        late = st.include_handlers.setdefault(key, [h.task_id for h in st.handlers[known:]])
        for handler_id in late:
            if static:
                st.late_handlers[handler_id] = None
            else:
                st.late_handlers.setdefault(handler_id, [])
        if static:
            st.imported_roles.append(role.name)
            inner = self.inherit(src, ds, ctx, st)
            self.check_inherited(src, ds, inner, st)
            self.compile_role(call, inner, st, out, base, dedupe=False, imported=True)
            return
        pointer = f"{base}/{len(out)}"
        self.origins[pointer] = origin
        inner = replace(ctx, listed=False)
        apply = args.get("apply")
        if apply is not None:
            if not isinstance(apply, dict):
                raise src.error("apply is a mapping of block keywords", None, ds, key or _NO_KEY,
                                value=True)
            inner = self.inherit(src, apply, inner, st)
        task_id = st.new_id()
        for handler_id in late:  # notifiable once one of its includes ran
            includes = st.late_handlers[handler_id]
            if includes is not None:
                includes.append(task_id)
        children: list[Task] = []
        try:
            self.compile_role(call, inner, st, children, f"{pointer}/block", dedupe=False, imported=True)
        except MissingInclude as exc:  # a file or role it imports: the hosts that include it fail
            if self.choosing:
                raise
            self.failed_include(src, ds, origin, module, ctx, st, out, base, f"role {role.name}",
                                {"reason": exc.reason}, registered, shown)
            return
        self.container(src, ds, ctx, st, out, pointer, children, f"role {role.name}", module,
                       task_id, registered, name=shown)
        if public:  # its defaults and vars are the play's once a host ran the include, not before
            out[-1] = replace(out[-1], extras=dict(out[-1].extras, public=call.key))
        unrolled = self.unrolled_items(ds, out[-1], layers, ctx, st)
        if unrolled is None:
            self.item_order(ds, out, layers, ctx, st)
            return

        # a loop over it whose role's tasks run differently: one include per item, as include_tasks
        def copy(at: str, copy_id: str) -> None:
            kids: list[Task] = []
            self.compile_role(call, inner, st, kids, f"{at}/block", dedupe=False, imported=True)
            self.container(src, ds, replace(ctx, listed=False), st, out, at, kids, f"role {role.name}", module,
                           copy_id, registered, name=shown)

        self.unroll(out, base, origin, st, *unrolled, copy)


    def role_choice(self, src: Source, ds: dict[str, Any], origin: Origin, module: str,
                    key: str | None, name: str, args: dict[str, Any], ctx: Ctx, st: _PlayState,
                    out: list[Task], base: str, layers: list[dict[str, Any]]) -> bool:
        """An include_role whose role name depends on a loop's items or on the play's hosts'
        inventory variables (``name: "{{ item }}"``, ``name: "{{ host_var_role_name }}"``): the
        name is rendered here over each item and each host's inventory variables, every role it
        could select is compiled as one block of the include, and the host renders the name and
        runs that block (an ``include_choice``, as for a tasks file named with host data). A
        role that cannot be loaded fails the include only on a host that selects it. False (and
        nothing compiled) when the name reads a fact or a registered result, or could select
        too many roles: no host's value is known here."""
        loop: Any = ds.get("loop", ds.get("with_items"))
        if isinstance(loop, str) and has_template(loop):
            loop = self.renderer_try_layers(loop, layers, ctx)
        control = ds.get("loop_control")
        loop_var = str(control.get("loop_var", "item")) if isinstance(control, dict) else "item"
        items: list[dict[str, Any]] = [{}]
        if isinstance(loop, list):
            items = [{loop_var: self.renderer_try_layers(e, layers, ctx) if isinstance(e, str) and has_template(e)
                      else e} for e in loop]
        names: dict[str, None] = {}
        for host in st.hosts:
            found = self.inv.hosts.get(host)
            own = {**(found.vars if found is not None else {}), "inventory_hostname": host}
            for item in items:
                rendered = self.renderer_try_layers(name, [own, *layers[:-1], item, layers[-1]], ctx)
                if isinstance(rendered, str) and rendered.strip() and not has_template(rendered):
                    names[rendered.strip()] = None
        if not names or len(names) > _MAX_CHOICES:
            return False
        pointer = f"{base}/{len(out)}"
        self.origins[pointer] = origin
        task_id = st.new_id()
        children: list[Task] = []
        select: dict[str, Any] = {}
        self.choosing = True
        try:
            for role_name in names:
                try:
                    self.include_role(src, ds, origin, module, key, args, ctx, st, children,
                                      f"{pointer}/block", static=False, chosen=role_name)
                except MissingInclude as exc:
                    select[role_name] = exc.reason or str(exc)
                    continue
                except PlaybookError as exc:
                    select[role_name] = f"rustle-deploy cannot include the role {role_name!r}: {exc}"
                    continue
                # its block only: the include's own keywords (when, loop, tags, vars) are this one's;
                # the block keeps the candidate's id, which its role's handlers wait for (included_by)
                one = children[-1]
                children[-1] = Task(task_id=one.task_id, name=one.name, module="", args={}, hosts=(),
                                    execution_order=len(children) - 1, pointer=one.pointer, block=one.block,
                                    extras={k: v for k, v in one.extras.items() if k == "public"})
                select[role_name] = len(children) - 1
        finally:
            self.choosing = False
        self.container(src, ds, ctx, st, out, pointer, children, name, module, task_id,
                       name=str(ds["name"]) if ds.get("name") else f"{module} : {name}")
        out[-1] = replace(out[-1], extras=dict(out[-1].extras, include_choice={
            "name": name, "select": select, "found": {}}))
        return True


@dataclass(frozen=True)
class _Import:
    """What an import_playbook hands to the plays it imports."""

    vars: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    when: tuple[str, ...] = ()


class _NoKey:
    pass


_NO_KEY: Any = _NoKey()


def _with_lookups() -> frozenset[str]:
    """The lookups a with_<name> loop may name: those the runtime offers or the controller runs."""

    return frozenset(n for n in runtime_plugins()["lookup"] if "." not in n) & BUILTIN_LOOKUPS


# ansible.builtin's action groups (ansible-core's config/ansible_builtin_runtime.yml)
_ACTION_GROUPS = {"testgroup": frozenset({"ping"})}


def _defaults_key(name: str, origin: Origin | None) -> str:
    """A module_defaults entry (or a task's module) by the name it matches: ansible.builtin's
    and ansible.legacy's modules by their short name, a group by its short name."""
    if name.startswith("group/"):
        group = name[len("group/"):]
        short = group[len("ansible.builtin."):] if group.startswith("ansible.builtin.") else group
        if short not in _ACTION_GROUPS and origin is not None:
            raise origin.error(f"could not resolve the module_defaults group {group!r}",
                               "rustle-deploy knows ansible.builtin's action groups ("
                               + ", ".join(sorted(_ACTION_GROUPS)) + "); name the modules "
                               "instead")
        return f"group/{short}"
    return _short(name)


def _short(name: str) -> str:
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


# a value that is ansible-core's omit and nothing else
_OMIT = re.compile(r"^\{\{-?\s*omit\s*-?\}\}$")


def _boolean(value: Any, key: str) -> bool:
    """Ansible's boolean: true/false, yes/no, on/off, 1/0 (any case)."""
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1", "y", "t"):
        return True
    if text in ("false", "no", "off", "0", "n", "f", ""):
        return False
    raise PlanError(f"'{key}' takes a boolean, not {value!r}", f"{key}: true")


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", int: "number", float: "number",
            bool: "boolean", type(None): "null"}.get(type(value), type(value).__name__)


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path)) or ["(none)"]
    except OSError:
        return ["(no such directory)"]


def _identity(path: str, params: dict[str, Any], when: Any, tags: Any, vars_: dict[str, Any],
              froms: dict[str, str], from_include: bool) -> str:
    text = json.dumps([os.path.realpath(path), params, when, tags, vars_, froms, from_include],
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _repoint(task: Task, old: str, new: str, origins: dict[str, Origin]) -> Task:
    """``task`` (and what it contains) moved from pointer ``old`` to ``new``."""
    for key in [k for k in origins if k == old or k.startswith(old + "/")]:
        origins[new + key[len(old):]] = origins.pop(key)

    def move(t: Task) -> Task:
        pointer = new + t.pointer[len(old):] if t.pointer.startswith(old) else t.pointer
        if t.block is None:
            return replace(t, pointer=pointer)
        return replace(t, pointer=pointer, block=tuple(move(c) for c in t.block),
                       rescue=tuple(move(c) for c in t.rescue),
                       always=tuple(move(c) for c in t.always))

    return move(task)


def _search_list(collections: list[str] | tuple[str, ...], default: str) -> tuple[str, ...]:
    """A ``collections`` list as Ansible searches it: ``default`` appended unless it names
    ``ansible.builtin`` or ``ansible.legacy`` (``_ensure_default_collection``); empty stays empty."""
    out = tuple(collections)
    if out and "ansible.builtin" not in out and "ansible.legacy" not in out:
        out += (default,)
    return out


def _role_search(role: RoleDir, dependencies: bool = False) -> tuple[str, ...]:
    """The collection search list inside ``role`` for its tasks' modules: a collection's role
    starts with its own collection and ends with ``ansible.builtin`` (``Role._load_role_data``),
    another role has its ``meta/main.yml`` collections only. For its dependencies' names
    ``ansible.legacy`` always ends it (``RoleMetadata._load_dependencies``: roles/ is searched)."""
    meta = role.meta.data if role.meta is not None and isinstance(role.meta.data, dict) else {}
    listed = meta.get("collections") or []
    listed = [c for c in (listed if isinstance(listed, list) else [listed]) if isinstance(c, str)]
    if role.collection is not None:
        listed = [role.collection, *(c for c in listed if c != role.collection)]
    if dependencies:
        return (*listed, "ansible.legacy") if "ansible.legacy" not in listed else tuple(listed)
    return _search_list(listed, "ansible.builtin" if role.collection else "ansible.legacy")


# ansible_* names the controller knows (magic and connection variables): the others are facts
_NOT_FACTS = re.compile(r"ansible_(?:check_mode|diff_mode|play_\w+|inventory_sources|version|config_file|"
                        r"playbook_python|search_path|verbosity|run_tags|skip_tags|forks|limit|"
                        r"\w*role_names|collection_name|loop|loop_var|index_var|host|port|user|"
                        r"connection|python_interpreter|become\w*|ssh_\w+|password|private_key_file)$")


def _reads_facts(names: set[str]) -> bool:
    return any(n == "ansible_facts" or (n.startswith("ansible_") and not _NOT_FACTS.match(n))
               for n in names)


def _strings_of(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings_of(k), *_strings_of(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings_of(v)]
    return []


def _host_data_call(text: str, kinds: dict[str, frozenset[str]],
                    host_data: set[str]) -> tuple[str, str, str] | None:
    """(kind, plugin, name read) of the first call in ``text`` of a filter or test of ``kinds``
    whose input reads one of ``host_data`` or a fact; None when there is none."""
    import jinja2
    from jinja2 import nodes

    try:
        tree = jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError:
        return None
    for kind, node_type in (("filter", nodes.Filter), ("test", nodes.Test)):
        for node in tree.find_all(node_type):
            if node.name not in kinds[kind]:
                continue
            names = {n.name for n in node.find_all(nodes.Name)}
            read = sorted(n for n in names if n in host_data or _reads_facts({n}))
            if read:
                return kind, node.name, read[0]
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name in ("lookup", "query", "q")
                and call.args and isinstance(call.args[0], nodes.Const)
                and call.args[0].value in kinds.get("lookup", ())):
            continue
        names = {n.name for arg in [*call.args[1:], *(k.value for k in call.kwargs)]
                 for n in arg.find_all(nodes.Name)}
        names |= {n.name for n in (call.dyn_args, call.dyn_kwargs) if isinstance(n, nodes.Name)}
        read = sorted(n for n in names if n in host_data or _reads_facts({n}))
        if read:
            return "lookup", str(call.args[0].value), read[0]
    return None
