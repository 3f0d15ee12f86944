r"""Everything a user reads: live progress, the Ansible-style recap, JSON documents.

On a terminal progress uses rich; otherwise it is plain lines. When standard output carries
a JSON document (``--output json``, or a pipe into ``rustle-exec``), human output goes to
standard error so the JSON stays clean. The library never prints: only this module and cli.

Text output carries data from hosts, plans and inventories (task names, messages, stdout,
errors), so every line goes through ``visible``: control characters are shown as escapes
(``\x1b``, ``\r``, ``\n``) instead of reaching the terminal, and ``Reporter.line`` writes
exactly one line, so a newline in a task name cannot forge another. Multi-line output (diffs,
``-vv`` stdout) is split here and written line by line, indented under the line of its task.
JSON documents keep the exact data.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any

NO_LOG_MSG = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"


# C0 controls but tab (newline and carriage return included), DEL, C1 controls, lone surrogates
# (they cannot even be encoded), line/paragraph separators and bidirectional overrides.
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def visible(text: str) -> str:
    r"""``text`` for a terminal: every control character shown as its escape (``\x1b``), as one line."""
    return text if text.isprintable() else _UNSAFE.sub(_escape, text)


def text_lines(text: str) -> list[str]:
    r"""The lines of multi-line data (a ``\r\n`` ends a line too), for ``Reporter.line`` each."""
    return re.split(r"\r?\n", text)


@dataclass
class HostSummary:
    """What the recap shows for one host."""

    name: str
    ok: int = 0
    changed: int = 0
    failed: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0
    unreachable: bool = False
    error: str | None = None  # why the host failed, when it did (not a task failure)
    failed_tasks: list[str] = field(default_factory=list)
    deploy: str = ""  # uploaded / present / rolled back / removed ...
    cleared: bool = False  # failed tasks, then meta clear_host_errors: the host went on to the end
    # the run errored there (ansible-core aborts the whole run: a notify of no handler fired)
    errored: str | None = None

    @property
    def is_failure(self) -> bool:
        return self.unreachable or self.error is not None or (self.failed > 0 and not self.cleared)


# ansible-core 2.19's message for host data used as a template or expression (the runtime's
# templating.UNTRUSTED_CONDITION), and the help text its console adds, shown here at -v
UNTRUSTED = "Encountered untrusted template or expression."
UNTRUSTED_HINT = ("Templates and expressions must be defined by trusted sources such as playbooks or roles, "
                  "not untrusted sources such as module results.")


DEPRECATIONS_OFF = "Deprecation warnings can be disabled by setting `deprecation_warnings=False` in ansible.cfg."


_NAMED_EVENTS = ("task_start", "task_result", "handler_start", "handler_result")


class ShownNames:
    """The name each host's task result shows, as ansible-playbook 2.19 names a task.

    ansible-playbook renders a task's name once, with the variables of the first host (in the
    play's order, among those still running) that reaches the task, its registered results and
    facts included, and every host's result carries that name. The task keeps it: a later
    ``serial`` batch shows it again, and a handler shows the name of its first run; only the
    tasks of an included file are named anew in each batch (the file is loaded again). Each
    host renders the name with its own values (the runtime), so the controller picks the first
    host's: ``see`` as events arrive (before the first host reports a task, a line shows the
    host's own name), ``settle`` once every host is done, which gives every result its final
    name (what ``--output json`` and the history keep)."""

    def __init__(self, order: Iterable[str] = (), included: dict[str, dict[str, int]] | None = None) -> None:
        self.rank: dict[str, int] = {}
        for host in order:
            self.rank.setdefault(host, len(self.rank))
        self.included = included or {}  # the id of a task of an included file -> each host's batch
        self._first: dict[tuple[Any, ...], tuple[int, str]] = {}
        self._count: dict[tuple[str, str, str], int] = {}
        self._seen: list[tuple[str, dict[str, Any], tuple[Any, ...]]] = []

    def see(self, host: str, event: dict[str, Any]) -> None:
        """Give ``event`` (of ``host``) the name shown so far for its task."""
        kind = event.get("event")
        if kind not in _NAMED_EVENTS or not event.get("id") or not isinstance(event.get("task"), str):
            return
        ident = str(event["id"])
        if kind in ("handler_start", "handler_result"):
            key: tuple[Any, ...] = (kind, ident)
        else:  # a task that runs again (an include's loop, a later phase) is named again each time
            nth = self._count.get((host, kind, ident), 0)
            self._count[(host, kind, ident)] = nth + 1
            key = (kind, ident, self.included[ident].get(host, 0) if ident in self.included else None, nth)
        rank = self.rank.get(host, len(self.rank))
        first = self._first.get(key)
        if first is None or rank < first[0]:
            self._first[key] = (rank, event["task"])
        else:
            event["task"] = first[1]
        self._seen.append((host, event, key))

    def settle(self) -> set[str]:
        """Give every event seen its task's final name; the hosts whose events changed."""
        changed = set()
        for host, event, key in self._seen:
            name = self._first[key][1]
            if event["task"] != name:
                event["task"] = name
                changed.add(host)
        return changed


class Reporter:
    """Progress lines and the final recap, plain or rich."""

    def __init__(
        self, *, stream: IO[str] | None = None, verbosity: int = 0, color: bool | None = None, diff: bool = False,
        deprecations: bool = True,
    ) -> None:
        self.stream = stream or sys.stdout
        self.deprecations = deprecations  # ansible.cfg's deprecation_warnings: shown or not
        self.verbosity = verbosity
        self.show_diff = diff
        isatty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.rich = isatty if color is None else color
        self._console: Any = None
        self._progress: Any = None
        self._task_id: Any = None
        self._warned: set[str] = set()  # warning lines shown (ansible-playbook shows each once)
        self.names = ShownNames()  # the run's hosts in order are set when it starts (fleetops)
        if self.rich:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False)

    # -- lines -------------------------------------------------------------------------
    def line(self, text: str, style: str | None = None) -> None:
        """Write ``text`` as one line, control characters (newlines too) shown as escapes."""
        text = visible(text)
        if self._console is not None:
            self._console.print(text, style=style, markup=False, soft_wrap=True, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def note(self, text: str) -> None:
        self.line(text, "dim")

    # -- progress ----------------------------------------------------------------------
    def start(self, what: str, total: int) -> None:
        if self._console is not None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=self._console, transient=True,
            )
            self._progress.start()
            self._task_id = self._progress.add_task(what, total=total)
        else:
            self.line(f"{what}: {total} host{'s' if total != 1 else ''}")

    def host_done(self, host: str, summary: str, *, failed: bool = False) -> None:
        """A host finished: advance the bar on a terminal (failures printed), a line otherwise."""
        if self._progress is not None:
            self._progress.advance(self._task_id)
            if failed:
                self.line(f"{host} | {summary}", "red")
        else:
            self.line(f"{host} | {summary}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def event(self, host: str, event: dict[str, Any]) -> None:
        """One streamed runtime event of ``host`` (its task named as the run shows it: ``names``)."""
        self.names.see(host, event)
        kind = event.get("event")
        if kind == "health":
            healthy, verdict = health_verdict(event)
            text = f"{host} | health check attempt {event.get('attempt')}: {verdict}"
            output = str(event.get("output") or "").strip()
            if output and (not healthy or self.verbosity >= 1):
                text += f" | {output.splitlines()[-1]}"
            self.line(text, "green" if healthy else "red")
            return
        if kind in ("task_result", "handler_result"):
            self.warnings(host, event)
            status = str(event.get("status", "?"))
            if event.get("ignored"):
                status = f"{'unreachable' if status == 'unreachable' else 'failed'} (ignored)"
            elif event.get("rescued"):
                status = "failed (rescued)"
            is_debug = event.get("module") == "debug" and status == "ok"
            if status.startswith(("failed", "unreachable")) or status == "changed" or is_debug or self.verbosity >= 1:
                msg = ""
                if is_debug and not event.get("censored"):
                    msg = str(event.get("msg", ""))
                if status.startswith(("failed", "unreachable")):
                    msg = str(event.get("msg") or event.get("stderr") or "")
                    if event.get("censored"):
                        msg = NO_LOG_MSG
                label = "handler " if kind == "handler_result" else ""
                style = {"changed": "yellow", "ok": "green", "skipped": "cyan"}.get(status, "red")
                text = f"{host} | {status} | {label}{event.get('task', event.get('id', ''))}"
                if self.verbosity >= 1 and event.get("bridge"):
                    text += f" [bridge: {event['bridge']}]"
                if msg.strip():
                    text += f" | {text_lines(msg.strip())[-1]}"
                self.line(text, style)
                if self.verbosity >= 1 and msg.rstrip().endswith(UNTRUSTED):
                    self.line(f"  hint: {UNTRUSTED_HINT}", style)
                if self.show_diff and status == "changed" and event.get("diff") and not event.get("censored"):
                    for line in text_lines(render_diff(event["diff"])):
                        self.line(f"  {line}", style)
                if self.verbosity >= 2 and not event.get("censored"):
                    for key in ("stdout", "stderr"):
                        if event.get(key):
                            first, *rest = text_lines(str(event[key]).rstrip())
                            self.line(f"  {key}: {first}", style)
                            for line in rest:
                                self.line(f"    {line}", style)

    def warnings(self, host: str, event: dict[str, Any]) -> None:
        """A result's warnings and deprecations, as ansible-playbook prints them: each text once
        per run; deprecations unless ansible.cfg's ``deprecation_warnings`` is false."""
        if event.get("censored"):
            return
        lines = [f"[WARNING]: {warning}" for warning in event.get("warnings") or ()]
        if self.deprecations and event.get("deprecations"):
            lines.append(f"[WARNING]: {DEPRECATIONS_OFF}")  # once, before the first, as ansible-playbook
        for item in (event.get("deprecations") or ()) if self.deprecations else ():
            msg = item.get("msg") if isinstance(item, dict) else item
            version = item.get("version") if isinstance(item, dict) else None
            tail = f" This feature will be removed from ansible-core version {version}." if version else ""
            lines.append(f"[DEPRECATION WARNING]: {msg}{tail}")
        for line in lines:
            if line not in self._warned:
                self._warned.add(line)
                self.line(f"{host} | {line}", "magenta")

    # -- recap -------------------------------------------------------------------------
    def recap(self, hosts: list[HostSummary], title: str = "RECAP") -> None:
        self.stop()
        self.line("")
        self.line(f"{title} " + "*" * max(10, 70 - len(title)))
        width = max((len(visible(h.name)) for h in hosts), default=4)
        for h in hosts:
            text = (
                f"{visible(h.name):<{width}} : ok={h.ok:<4} changed={h.changed:<4} unreachable={int(h.unreachable):<4} "
                f"failed={h.failed + (1 if h.error and not h.unreachable else 0):<4} "
                f"skipped={h.skipped:<4} rescued={h.rescued:<4} ignored={h.ignored}"
            )
            style = "red" if h.is_failure else ("yellow" if h.changed else "green")
            self.line(text, style)
        for h in hosts:
            if h.errored:  # ansible-playbook prints "[ERROR]: ..." and stops every host
                self.line(f"ERROR: {visible(h.name)}: the run errored: {visible(h.errored)}", "red")
        failures = [h for h in hosts if h.is_failure]
        if failures:
            self.line("")
            self.line(f"{len(failures)} of {len(hosts)} host(s) failed:", "red")
            for h in failures:
                why = h.error or ("task failed: " + ", ".join(h.failed_tasks) if h.failed_tasks else "failed")
                self.line(f"  {h.name}: {why}", "red")


    def rollout(self, doc: dict[str, Any]) -> None:
        """How a batched rollout went: each batch, then who was updated, failed, not reached."""
        total = doc["total_batches"]
        if doc["state"] == "stopped":
            head = f"ROLLOUT stopped after batch {doc['stopped_after_batch']}/{total}: {doc['reason']}"
        elif doc["state"] == "completed":
            head = f"ROLLOUT completed: {total} batch{'es' if total != 1 else ''}"
        else:
            head = f"ROLLOUT {doc['state']} in batch {len(doc['batches'])}/{total}"
        self.line("")
        self.line(head, "red" if doc["state"] != "completed" else None)
        for b in doc["batches"]:
            failed = f", failed: {', '.join(b['failed'])}" if b["failed"] else ""
            self.line(f"  batch {b['number']}/{total} ({b['label']}, {b['serial']}): "
                      f"{len(b['ran'])} host(s){failed}", "red" if b["failed"] else None)
        for key, label, style in (("updated", "updated", "green"), ("partial", "partly updated (later plays never ran)", "yellow"),
                                  ("failed", "failed", "red"), ("not_reached", "not reached", "yellow")):
            names = doc[key]
            if names:
                shown = ", ".join(names[:50]) + (f", ... ({len(names)} in all)" if len(names) > 50 else "")
                self.line(f"  {label} ({len(names)}): {shown}", style)


def render_diff(diff: Any) -> str:
    """Ansible's ``diff`` result(s) as unified diffs, as ``ansible-playbook --diff`` shows them."""
    import difflib

    parts = []
    for d in diff if isinstance(diff, list) else [diff]:
        if not isinstance(d, dict):
            continue
        if "prepared" in d:
            parts.append(str(d["prepared"]).rstrip("\n"))
            continue
        before, after = d.get("before", ""), d.get("after", "")
        if before == after:
            continue

        def text(value: Any) -> list[str]:
            if isinstance(value, str):
                return value.splitlines(keepends=True)
            return (json.dumps(value, indent=4, sort_keys=True, default=str) + "\n").splitlines(keepends=True)

        lines = difflib.unified_diff(
            text(before), text(after),
            fromfile=visible(str(d.get("before_header", "before"))), tofile=visible(str(d.get("after_header", "after"))),
        )
        parts.append("".join(line if line.endswith("\n") else line + "\n" for line in lines).rstrip("\n"))
    return "\n".join(p for p in parts if p)


def dump_json(doc: Any, stream: IO[str] | None = None) -> None:
    """Write one JSON document (the machine-readable output) to stdout."""
    out = stream or sys.stdout
    out.write(json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n")
    out.flush()


def health_verdict(event: dict[str, Any]) -> tuple[bool, str]:
    """Whether one health check attempt passed, and how to say it: the command's exit status
    (``rc``), then the URL's HTTP status (``status``: None when nothing answered)."""
    rc = event.get("rc", 0)
    if "rc" in event and rc != 0:
        return False, "timed out" if rc is None else f"unhealthy (exit {rc})"
    if "status" in event:
        status = event["status"]
        if status is None:
            return False, "unhealthy (no answer)"
        if not 200 <= int(status) < 300:
            return False, f"unhealthy (HTTP {status})"
        return True, f"healthy (HTTP {status})"
    return True, "healthy"
