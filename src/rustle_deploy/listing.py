"""What ``--emit-plan``, ``--syntax-check``, ``--list-hosts``, ``--list-tasks`` and
``--list-tags`` print: the input read and resolved, nothing built, no host touched.

The text follows ansible-playbook's layout (``playbook: FILE``, ``play #1 (PATTERN): NAME``,
indented hosts, tasks with their ``TAGS: [...]``); ``--output json`` gives the same as one
JSON document. Tag filtering uses the runtime's own rule (``always``, ``never``, ``tagged``...).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .inventory import Inventory
from .model import Plan
from .report import dump_json
from .runtime_index import import_runtime

if TYPE_CHECKING:
    from .pipeline import Session
    from .playbook import ListedPlay


def show(session: Session, mode: str, plan: Plan, inv: Inventory) -> int:
    if mode == "emit_plan":
        from .plan.write import dump_plan

        sys.stdout.write(dump_plan(plan))
        return 0
    source = plan.source
    if mode == "syntax_check":
        if session.json_out:
            dump_json({"syntax_check": "ok", "playbook": source})
        else:
            session.reporter.line("")  # a blank line first, as ansible-playbook prints it
            session.reporter.line(f"playbook: {source}")
        return 0
    plays = session.compiled.plays if session.compiled is not None else _from_plan(plan)
    limit = session.opts.get("limit")
    allowed = {h.name for h in inv.select(limit)} if limit else None
    only = _csv(session.opts.get("tags"))
    skip = _csv(session.opts.get("skip_tags"))
    selected = import_runtime_tags()
    doc: list[dict[str, Any]] = []
    for play in plays:
        hosts = [h for h in play.hosts if allowed is None or h in allowed]
        # --list-tags without --tags/--skip-tags shows every tag, 'never' ones included
        unfiltered = mode == "list_tags" and not only and not skip
        tasks = [t for t in play.tasks
                 if unfiltered or selected(tuple(dict.fromkeys(play.tags + t.tags)), only, skip)]
        doc.append({"play": play.number, "name": play.name, "pattern": play.pattern,
                    "tags": list(play.tags), "hosts": hosts,
                    "tasks": [{"name": t.name, "tags": sorted(set(t.tags))} for t in tasks],
                    "task_tags": sorted({tag for t in tasks for tag in (*play.tags, *t.tags)})})
    if session.json_out:
        dump_json({"playbook": source, "plays": doc})
        return 0
    line = session.reporter.line
    line("")  # Reporter.line shows a newline inside a line as an escape: blank lines apart
    line(f"playbook: {source}")
    for entry in doc:
        line("")
        line(f"  play #{entry['play']} ({entry['pattern']}): {entry['name']}\t"
             f"TAGS: [{','.join(entry['tags'])}]")
        if mode == "list_hosts":
            line(f"    pattern: {[entry['pattern']]}")
            line(f"    hosts ({len(entry['hosts'])}):")
            for host in entry["hosts"]:
                line(f"      {host}")
        elif mode == "list_tasks":
            line("    tasks:")
            for task in entry["tasks"]:
                line(f"      {task['name']}\tTAGS: [{', '.join(task['tags'])}]")
        else:
            line(f"      TASK TAGS: [{', '.join(entry['task_tags'])}]")
    return 0


def _csv(value: str | None) -> list[str]:
    return [t.strip() for t in (value or "").split(",") if t.strip()]


def import_runtime_tags() -> Any:
    """The runtime's ``tags_selected`` (the rule the host applies), imported from its sources."""
    import_runtime()
    from rustle_runtime.executor import tags_selected  # type: ignore[import-not-found]

    return tags_selected


def _from_plan(plan: Plan) -> list[ListedPlay]:
    from .playbook.compile import ListedPlay, ListedTask

    out = []
    for i, play in enumerate(plan.plays, 1):
        listed = ListedPlay(number=i, name=play.name, pattern=",".join(play.hosts),
                            hosts=list(play.hosts), tags=())
        listed.tasks = [ListedTask(t.name, t.tags) for t in plan.play_tasks(play)]
        out.append(listed)
    return out
