"""The whole exception tree of rustle-deploy.

    RustleError                 .message, .hint; str() renders "message\nhint: ..."
    ├── UsageError              bad flags or flag combinations                  (exit 2)
    ├── ConfigError             config.toml / environment: .file, .key          (exit 2)
    ├── PlanError               execution plan: .file, .pointer (JSON pointer)  (exit 2)
    │   └── PlanErrors          several of them, found in one validation: .problems
    ├── PlaybookError           playbook, role, tasks or vars file: .file, .line, .column (exit 2)
    │   ├── UnknownModule       a task names a module rustle-deploy cannot run
    │   └── MissingInclude      a tasks file or role to include does not exist: .reason
    ├── InventoryError          inventory: .file, .line                         (exit 2)
    ├── CompileError            building artifacts: .task (pointer)             (exit 2)
    ├── StateError              local history database                          (exit 2)
    └── HostError               one host's failure after the fan-out: .host     (data, not raised out)
        ├── ConnectError        unreachable, refused, auth, host key
        ├── TransferError       upload failed or was cut
        ├── ChecksumMismatch    .expected, .actual
        ├── RemoteError         the host-side agent reported a failure
        │   └── RunnerNotExecutable  the host cannot execute rustle-runner (auto falls back to pyz)
        ├── PhaseError          a phased play's cross-host step failed on another host
        └── HostTimeout         the per-host deadline passed

Everything raised before the fan-out stops the run with exit code 2 and touches nothing;
after it, a HostError is recorded as that host's result.
"""

from __future__ import annotations


class RustleError(Exception):
    """Base of every error rustle-deploy reports to a user."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class UsageError(RustleError):
    """Bad command-line usage."""


class ConfigError(RustleError):
    """A bad setting in a config file, the environment or a flag."""

    def __init__(
        self, message: str, hint: str | None = None, *, file: str | None = None, key: str | None = None
    ) -> None:
        loc = ": ".join(x for x in (file, key) if x)
        super().__init__(f"{loc}: {message}" if loc else message, hint)
        self.file = file
        self.key = key


class PlanError(RustleError):
    """An execution plan that cannot be accepted."""

    def __init__(
        self, message: str, hint: str | None = None, *, file: str = "<plan>", pointer: str = ""
    ) -> None:
        super().__init__(f"{file}: {pointer or '/'}: {message}", hint)
        self.file = file
        self.pointer = pointer
        self.detail = message


class PlanErrors(PlanError):
    """Several problems in one plan, all found in one validation (``.problems``, in plan order);
    its own file, pointer and detail are the first problem's."""

    def __init__(self, problems: list[PlanError]) -> None:
        first = problems[0]
        lines = []
        for problem in problems:
            lines.append(f"{problem.file}: {problem.pointer or '/'}: {problem.detail}")
            if problem.hint:
                lines.append(f"  hint: {problem.hint}")
        RustleError.__init__(self, "\n".join(lines),
                             f"{len(problems)} problems in the plan: fix them all, then validate again")
        self.file = first.file
        self.pointer = first.pointer
        self.detail = first.detail
        self.problems = list(problems)
class PlaybookError(RustleError):
    """A playbook (or a role, tasks or vars file it uses) that cannot be accepted.

    Rendered as Ansible users expect: ``file:line:column: message``, then the offending YAML
    line with a caret under the column, then the hint.
    """

    def __init__(
        self, message: str, hint: str | None = None, *, file: str, line: int | None = None,
        column: int | None = None, source_line: str | None = None,
    ) -> None:
        where = file
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        text = f"{where}: {message}"
        if source_line is not None and line is not None:
            gutter = f"{line:>5} | "
            text += f"\n{gutter}{source_line.rstrip()}"
            if column is not None:
                text += "\n" + " " * (len(gutter) + column - 1) + "^ here"
        super().__init__(text, hint)
        self.file = file
        self.line = line
        self.column = column
        self.detail = message


class UnknownModule(PlaybookError):
    """A task names a module rustle-deploy cannot run (unknown, not built in, a collection's).

    Inside an ``include_tasks`` file it fails only the hosts that reach the include, as in
    ansible-core, which reads such a file only then (a role's Windows-only tasks file).
    """


class MissingInclude(PlaybookError):
    """A tasks file or role to include or import does not exist.

    Reached through an ``include_tasks``/``include_role`` (the file it names, or a static import
    inside that file), it fails only the hosts that reach the include, with ``reason`` (what
    ansible-core says then), as ansible-core looks for that file only when a host reaches it."""

    reason = ""


class HandlerBlock(PlaybookError):
    """A block inside a handler (ansible-core: "Using a block as a handler is not supported.").

    In a file a handler reaches through ``include_tasks`` it errors the run where a host reaches
    the include, as ansible-core parses that file only then (its parser error, exit 4)."""


class InventoryError(RustleError):
    """An inventory that cannot be read."""

    def __init__(
        self, message: str, hint: str | None = None, *, file: str = "<inventory>", line: int | None = None
    ) -> None:
        where = f"{file}:{line}" if line is not None else file
        super().__init__(f"{where}: {message}", hint)
        self.file = file
        self.line = line
        self.detail = message


class CompileError(RustleError):
    """The plan is valid but cannot be compiled into artifacts."""


class StateError(RustleError):
    """The local history database cannot be used."""


class HostError(RustleError):
    """One host's failure; after the fan-out this is data in the host's result."""

    def __init__(self, host: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.host = host


class ConnectError(HostError):
    """The host could not be reached or refused us."""


class TransferError(HostError):
    """Sending the artifact failed or was cut."""

    exit_status: int | None = None  # the remote command's, when it had ended (transport/openssh.py)


class ChecksumMismatch(HostError):
    """What landed on the host is not what was sent."""

    def __init__(self, host: str, expected: str, actual: str, hint: str | None = None) -> None:
        super().__init__(host, f"sha256 mismatch: expected {expected}, got {actual}", hint)
        self.expected = expected
        self.actual = actual


class RemoteError(HostError):
    """The host-side agent reported a failure."""


class RunnerNotExecutable(RemoteError):
    """The host could not execute the native runner (exec format, noexec mount, no loader), or
    the bootstrap found it would not (another machine, an older glibc); ``machine``: its
    ``uname -m`` as the bootstrap reported it ("" when it did not), ``libc``: its C library
    ("glibc 2.17"; "" when not reported or not glibc), ``system``: its ``uname -s`` ("" when
    not reported)."""

    def __init__(self, host: str, message: str, hint: str | None = None, machine: str = "", libc: str = "",
                 system: str = "") -> None:
        super().__init__(host, message, hint)
        self.machine = machine
        self.libc = libc
        self.system = system


class PhaseError(HostError):
    """A cross-host step of a phased play failed on another host (docs/phases.md)."""


class HostTimeout(HostError):
    """The per-host deadline passed."""
