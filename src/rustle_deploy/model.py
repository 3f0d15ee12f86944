"""Frozen data shared by every stage: the parsed plan, hosts, artifacts. No I/O here."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# Task keywords beyond rustle-plan's own that a task or handler may carry (PLAN_FORMAT.md,
# "Extensions"). Values keep Ansible's meaning; the plan parser checks their types.
TASK_EXTENSIONS = (
    "register", "loop", "loop_control", "changed_when", "failed_when", "ignore_errors",
    "no_log", "become", "become_user", "become_method", "become_exe", "become_flags", "environment", "vars", "retries",
    "delay", "until", "check_mode", "diff", "timeout", "run_once", "delegate_to",
    "any_errors_fatal", "throttle", "ignore_unreachable", "delegate_facts",
    # what the playbook front end adds (docs/playbooks.md, "Plan extensions")
    "loop_with", "role", "params", "include", "include_choice", "include_error", "include_once", "role_once",
    "public", "include_items", "include_item", "include_slots",
    "vars_data",
    "collections", "args_template", "async", "poll", "vars_dir", "include_result", "action_ds",
    "connection_vars", "delegate_implicit", "run_time_files", "run_time_render", "vars_paths",
    "origins",
)

CONDITION_KINDS = ("When", "Tag", "CheckMode", "Host", "SkipTag", "Skip", "Only")

STRATEGIES = ("Linear", "Rolling", "Free", "HostPinned", "BinaryHybrid", "BinaryOnly", "SshOnly")

# Ansible's play ``order``: the order hosts are taken in when a play is cut into batches.
HOST_ORDERS = ("inventory", "reverse_inventory", "sorted", "reverse_sorted", "shuffle")

# Ansible's ``serial``: each step a host count or a percentage ("20%") of the play's hosts;
# the last step repeats until every host had its batch. 0 means all the hosts at once.
Serial = tuple[int | str, ...]


@dataclass(frozen=True)
class Condition:
    """One entry of a task's ``conditions``.

    kind / value: When -> expression str; Tag, SkipTag -> tuple of tags; CheckMode -> bool;
    Host -> pattern str; Skip -> condition str; Only -> tuple of host names.
    """

    kind: str
    value: Any


@dataclass(frozen=True)
class Task:
    """A task (or handler) of a play, with its JSON pointer in the plan file."""

    task_id: str
    name: str
    module: str  # as written, e.g. "ansible.builtin.copy"
    args: dict[str, Any]
    hosts: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    tags: tuple[str, ...] = ()
    notify: tuple[str, ...] = ()
    execution_order: int = 0
    dependencies: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)  # TASK_EXTENSIONS present on the task
    pointer: str = ""
    # A block instead of a module call (``module`` is then ""): its three task lists.
    block: tuple[Task, ...] | None = None
    rescue: tuple[Task, ...] = ()
    always: tuple[Task, ...] = ()

    @property
    def is_block(self) -> bool:
        return self.block is not None

    def walk(self) -> Iterator[Task]:
        """This task and, for a block, every task inside it (depth first, in order)."""
        yield self
        if self.block is not None:
            for child in (*self.block, *self.rescue, *self.always):
                yield from child.walk()

    @property
    def short_module(self) -> str:
        """The module name without a collection prefix (``ansible.builtin.copy`` -> ``copy``)."""
        return self.module.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class Batch:
    batch_id: str
    hosts: tuple[str, ...]
    tasks: tuple[Task, ...]
    dependencies: tuple[str, ...] = ()
    pointer: str = ""


@dataclass(frozen=True)
class Strategy:
    kind: str  # one of STRATEGIES
    batch_size: int | None = None  # Rolling only


@dataclass(frozen=True)
class Play:
    """A play. ``serial``, ``max_fail_percentage``, ``any_errors_fatal`` and ``order`` keep
    Ansible's meaning (docs/rollouts.md); the last three are this product's plan extensions."""

    play_id: str
    name: str
    hosts: tuple[str, ...]
    strategy: Strategy
    serial: Serial | None
    batches: tuple[Batch, ...]
    handlers: tuple[Task, ...]
    vars: dict[str, Any] = field(default_factory=dict)
    pointer: str = ""
    max_fail_percentage: float | None = None
    any_errors_fatal: bool = False
    order: str = "inventory"
    force_handlers: bool = False  # a failed host still runs the handlers notified before
    fact_path: str | None = None  # where the play's gathered facts read ansible_local from
    gather_subset: tuple[str, ...] | None = None  # the collectors the play's gathering may run
    gather_timeout: int | None = None  # bound of each command and mount a collector waits for
    # role defaults of the whole play (below inventory vars), and each role invocation's own
    # defaults/vars/params that its tasks (``role`` extension) see
    defaults: dict[str, Any] = field(default_factory=dict)
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    # a playbook play's host pattern (plan key ``hosts_pattern``): what ansible_play_hosts_all
    # lists again after meta: refresh_inventory
    pattern: str | None = None


@dataclass(frozen=True)
class StaticFile:
    src_path: str
    dest_path: str
    checksum: str | None  # None when the planner wrote "placeholder-checksum"
    size: int | None


@dataclass(frozen=True)
class BinaryDeployment:
    deployment_id: str
    target_hosts: tuple[str, ...]
    binary_name: str
    task_ids: tuple[str, ...]
    modules: tuple[str, ...]
    embedded_plan: dict[str, Any] | None  # embedded_data.execution_plan, decoded
    static_files: tuple[StaticFile, ...]
    variables: dict[str, Any]
    facts_required: tuple[str, ...]
    execution_mode: str
    target_triple: str | None  # from target_triple, or built from target_arch/target_os
    pointer: str = ""


@dataclass(frozen=True)
class PlanningOptions:
    limit: str | None = None
    tags: tuple[str, ...] = ()
    skip_tags: tuple[str, ...] = ()
    check_mode: bool = False
    diff_mode: bool = False
    forks: int = 50
    serial: Serial | None = None
    strategy: Strategy = Strategy("BinaryHybrid")
    binary_threshold: int = 5
    force_binary: bool = False
    force_ssh: bool = False
    # ansible.cfg's ALLOW_BROKEN_CONDITIONALS: a conditional whose result is not a boolean
    # takes its truth (as before ansible-core 2.19) instead of failing the task
    allow_broken_conditionals: bool = False
    # ansible.cfg's deprecation_warnings (ANSIBLE_DEPRECATION_WARNINGS): false leaves ansible-core's
    # deprecations out of task results and off the console
    deprecation_warnings: bool = True
    # ansible.cfg's and ANSIBLE_*'s become plugin settings: method ("sudo", "su") -> {"exe",
    # "flags"}, below the become_exe/become_flags keywords and variables (runtime become.py)
    become_config: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """A validated execution plan."""

    source: str  # file path as given, or "<stdin>"
    base_dir: str  # directory that relative ``src`` paths resolve against
    sha256: str  # of the plan's bytes as read
    rustle_plan_version: str
    created_at: str | None
    options: PlanningOptions
    plays: tuple[Play, ...]
    binary_deployments: tuple[BinaryDeployment, ...]
    total_tasks: int
    hosts: tuple[str, ...]
    extra_vars: dict[str, Any] = field(default_factory=dict)  # above every other variable
    # the playbook's directory: its group_vars/ and host_vars/ apply, as Ansible's playbook_dir
    playbook_dir: str | None = None
    # the directories of the playbooks it imports (import_playbook), whose library/,
    # module_utils/ and *_plugins/ Ansible searches too, as it adds each playbook's when it loads it
    playbook_dirs: tuple[str, ...] = ()

    def play_tasks(self, play: Play, host: str | None = None) -> list[Task]:
        """The distinct tasks of ``play`` (for ``host`` if given) in execution order.

        Batches run in dependency order (then file order); a task repeated across batches
        (Rolling plans repeat every task per host slice) counts once.
        """
        seen: set[str] = set()
        out: list[Task] = []
        for batch in _batches_in_order(play.batches):
            if host is not None and batch.hosts and host not in batch.hosts:
                continue
            for task in sorted(batch.tasks, key=lambda t: t.execution_order):
                if host is not None and task.hosts and host not in task.hosts:
                    continue
                if task.task_id in seen:
                    continue
                seen.add(task.task_id)
                out.append(task)
        return out


def _batches_in_order(batches: tuple[Batch, ...]) -> list[Batch]:
    """Topological order of batches by ``dependencies``, stable on file order."""
    by_id = {b.batch_id: b for b in batches}
    done: set[str] = set()
    out: list[Batch] = []

    def visit(b: Batch, stack: tuple[str, ...]) -> None:
        if b.batch_id in done or b.batch_id in stack:
            return
        for dep in b.dependencies:
            if dep in by_id:
                visit(by_id[dep], stack + (b.batch_id,))
        if b.batch_id not in done:
            done.add(b.batch_id)
            out.append(b)

    for b in batches:
        visit(b, ())
    return out


@dataclass(frozen=True)
class Host:
    """An inventory host with its merged variables (Ansible precedence already applied)."""

    name: str
    vars: dict[str, Any]
    groups: tuple[str, ...] = ()  # every group it belongs to, ``all`` included
    # each become method's program and flags from ansible.cfg and ANSIBLE_* (method -> {"exe",
    # "flags"}; AnsibleConfig.become_config), below the host's variables: what the connection-level
    # become (ansible_become) starts the agent with when no variable says
    become_config: dict[str, dict[str, str]] = field(default_factory=dict)
    # -K was given: a connection-level become may ask for that password (transport.options.prompted_become)
    become_asked: bool = False
    # the plan sets ansible_become or a become password in play, role, block or task vars, which
    # win over the inventory's: a connection-level become is then decided per task on the host
    become_per_task: bool = False
    # where the inventory wrote each of ``vars`` (ansible-core's origin tag: "FILE:LINE" in INI,
    # "FILE:LINE:COLUMN" in YAML), with the value it was written for: name -> (origin, value)
    origins: dict[str, tuple[str, Any]] = field(default_factory=dict, compare=False, repr=False)
    # the inventory source that named the host first, and its directory (ansible-core's
    # inventory_file and inventory_dir; None for the implicit localhost)
    inventory_file: str | None = None
    inventory_dir: str | None = None
    # made by add_host: ansible-core sets its inventory_file and inventory_dir, to None
    added: bool = False

    @property
    def address(self) -> str:
        return str(self.vars.get("ansible_host", self.name))

    @property
    def port(self) -> int | None:
        port = self.vars.get("ansible_port", self.vars.get("ansible_ssh_port"))
        return int(port) if port not in (None, "") else None

    @property
    def user(self) -> str | None:
        user = self.vars.get("ansible_user", self.vars.get("ansible_ssh_user"))
        return str(user) if user not in (None, "") else None

    @property
    def connection(self) -> str:
        return str(self.vars.get("ansible_connection", "ssh"))

    @property
    def is_local(self) -> bool:
        return self.connection == "local"

    @property
    def remote_dir(self) -> str:
        """``rustle_remote_dir`` as written (``~`` is expanded on the host); set to nothing, ''."""
        value = self.vars.get("rustle_remote_dir", DEFAULT_REMOTE_DIR)
        return "" if value is None else str(value)


# Connection secrets: the controller uses them to reach the host; the runtime never needs
# them, so they travel to no host, not even their own.
SECRET_VARS = frozenset({
    "ansible_password", "ansible_ssh_pass", "ansible_ssh_password", "ansible_become_pass",
    "ansible_become_password", "ansible_sudo_pass", "ansible_sudo_password", "ansible_su_pass",
    "ansible_su_password", "ansible_ssh_private_key_passphrase", "ansible_private_key_passphrase",
})


@dataclass(frozen=True)
class RunnerSpec:
    """A rustle-runner as the native bootstrap sees it (docs/native.md, "Remote side"): its
    sha256 (its name on hosts), how many bytes are sent (the runner gzip'd), the ``uname -m``
    values it runs on (empty: not checked) and the oldest glibc it loads with (None: a static
    runner, which needs no C library of the host's)."""

    sha256: str
    size: int
    machines: tuple[str, ...] = ()
    glibc: tuple[int, ...] | None = None


class Unsafe(str):
    """A string marked ``!unsafe`` (a playbook, vars file or inventory): never templated."""

    __slots__ = ()


class Vaulted(str):
    """The text of a ``!vault`` value a vault secret opened: ansible-core tags it
    ``VaultedValue`` (``tagged_with('VaultedValue')`` is true of it on the host too)."""

    __slots__ = ()


class Decrypted(str):
    """Text of a file ansible-vault encrypted as a whole (a vars file, role ``vars/``, an
    ``-e @file``, ``group_vars``): plain text to Ansible (no ``VaultedValue`` tag), and written
    as plain text, but a secret the compiler keeps out of an artifact that does not read it, as it
    does a :class:`Vaulted` value (compiler/units.py)."""

    __slots__ = ()


def mark_decrypted(value: Any) -> Any:
    """``value`` (what a whole encrypted file held) with each plain string a :class:`Decrypted`;
    ``!vault``/``!unsafe`` strings keep their own class."""
    if type(value) is str:
        return Decrypted(value)
    if isinstance(value, dict):
        for k, v in value.items():
            value[k] = mark_decrypted(v)
    elif isinstance(value, list):
        value[:] = [mark_decrypted(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    """Whether ``value`` is, or holds, decrypted vault text (:class:`Vaulted`, :class:`Decrypted`)."""
    if isinstance(value, (Vaulted, Decrypted)):
        return True
    if isinstance(value, dict):
        return any(is_secret(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_secret(v) for v in value)
    return False


class Undecryptable(str):
    """A ``!vault`` value no vault secret opens (its text is the vault envelope). As in
    ansible-core, loading it is no error: a task that uses it fails with ``reason``."""

    def __new__(cls, envelope: str, reason: str) -> Undecryptable:
        out = super().__new__(cls, envelope)
        out.reason = reason
        return out

    reason: str


# How a plan, an artifact's plan.json and a run request write an Unsafe string: Ansible's own
# JSON form (ansible-inventory --list writes it too); the runtime reads it back as host data.
UNSAFE_KEY = "__ansible_unsafe"
# an Undecryptable: Ansible's JSON form of a vaulted value, with why it stays locked
VAULT_KEY, LOCKED_KEY = "__ansible_vault", "__rustle_undecryptable"
# a Vaulted text (decrypted on the controller), with its tag
VAULTED_KEY = "__rustle_vaulted"


def tag_unsafe(value: Any) -> Any:
    """``value`` with each Unsafe string written as ``{"__ansible_unsafe": text}`` (for JSON),
    each Undecryptable as ``{"__ansible_vault": envelope, "__rustle_undecryptable": reason}``,
    each Vaulted as ``{"__rustle_vaulted": text}``;
    containers without one come back as they are."""
    if isinstance(value, Unsafe):
        return {UNSAFE_KEY: str(value)}
    if isinstance(value, Undecryptable):
        return {VAULT_KEY: str(value), LOCKED_KEY: value.reason}
    if isinstance(value, Vaulted):
        return {VAULTED_KEY: str(value)}
    if isinstance(value, dict):
        items = [(k, tag_unsafe(v)) for k, v in value.items()]
        if any(new is not value[k] for k, new in items):
            return dict(items)
        return value
    if isinstance(value, (list, tuple)):
        tagged = [tag_unsafe(v) for v in value]
        if any(new is not old for new, old in zip(tagged, value, strict=True)):
            return tagged
        return value
    return value


def untag_unsafe(value: Any) -> Any:
    """The inverse of :func:`tag_unsafe` (a plan read back)."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(UNSAFE_KEY), str):
            return Unsafe(value[UNSAFE_KEY])
        if len(value) == 2 and isinstance(value.get(VAULT_KEY), str) and isinstance(value.get(LOCKED_KEY), str):
            return Undecryptable(value[VAULT_KEY], value[LOCKED_KEY])
        if len(value) == 1 and isinstance(value.get(VAULTED_KEY), str):
            return Vaulted(value[VAULTED_KEY])
        return {k: untag_unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag_unsafe(v) for v in value]
    return value


def own_vars(host: Host) -> dict[str, Any]:
    """The variables ``host``'s run sees as its own: its merged inventory variables without
    connection secrets, ``group_names``, ``inventory_file`` and ``inventory_dir``. They travel in
    that host's run request only, never in an artifact other hosts share (docs/artifact.md,
    "Host variables")."""
    out = {k: v for k, v in host.vars.items() if k not in SECRET_VARS}
    out["group_names"] = sorted(g for g in host.groups if g != "all")  # "ungrouped" included, as Ansible
    if host.inventory_file is not None or host.added:
        out.update(inventory_file=host.inventory_file, inventory_dir=host.inventory_dir)
    return out


ORIGINS_VAR = "__rustle_origins"


def run_vars(host: Host) -> dict[str, Any]:
    """``own_vars`` as a run request carries them to the Python runtime: with, under
    ``__rustle_origins``, where the inventory wrote each (name -> "FILE:LINE[:COLUMN]"), for
    ansible-core's strict-conditional messages and ``origin`` filter. A value changed since it
    was read (``replace(host, vars=...)``) has no origin."""
    out = own_vars(host)
    origins = {k: where for k, (where, value) in host.origins.items()
               if k in out and out[k] is value}
    if origins:
        out[ORIGINS_VAR] = origins
    return out


DEFAULT_REMOTE_DIR = "~/.rustle"
# In a remote directory that rustle-deploy created (deploy/agent.py keeps the same name): a
# cleanup removes the directory only when this and nothing foreign is left in it.
CREATED_MARKER = ".created-by-rustle-deploy"


def remote_dir_problem(value: str) -> str | None:
    """Why ``value`` cannot be a host's remote directory, or None when it can.

    The remote directory is rustle-deploy's own: it must name one place whatever the login
    directory (absolute, or under ``~/`` / ``~user/``), and not a place shared with everything
    else (``/``, a home directory itself). deploy/agent.py applies the same rule on the host.
    """
    if not value.strip():
        return "is empty: it would be the login directory itself"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "contains a control character"
    if not value.startswith(("/", "~")):
        return "is relative: it would depend on the directory the connection starts in"
    parts = value.split("/")
    if ".." in parts:
        return "has a '..' segment"
    if not [p for p in parts[1:] if p not in ("", ".")]:
        if value.startswith("/"):
            return "is the filesystem root"
        return "is a home directory itself"
    return None
