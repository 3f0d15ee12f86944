"""What share of real tasks lowers to the native runner, and what stops the rest.

Not a test: a measurement that leads the work on ``compiler/native.py`` (issue 16, "Widen what
lowers"). Each source is compiled as ``--format native`` would compile it, and every task of
every build unit (for the unit's first host) is lowered on its own: a task lowers when
``_Lowering.task`` accepts it. A unit lowers when all its tasks do (what ``--format auto``
needs to pick native). A block or include lowers with all its tasks or none (each counted).
Each unit is also lowered for ``--format hybrid``: whether it builds, and how many of its tasks
the runner hands to the host's Python (a unit runs "mostly native" when fewer than half).

    .venv/bin/python benchmarks/lowering.py [--acceptance] [--json FILE]

Sources: the benchmark workload, examples/hello, ../shared/fixtures (rustle-plan plans and
rustle-parse playbooks), and with ``--acceptance`` the ansible-core integration targets that
pass under both tools (docs/acceptance.md), prepared as tests/acceptance/harness.py runs them.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO))


def sources(acceptance: bool, work: Path) -> list[tuple[str, str, str | None, tuple[str, ...]]]:
    """(label, plan or playbook, inventory or None, extra vars) of every source measured."""
    bench_inv = work / "bench.yml"
    bench_inv.write_text(json.dumps({"all": {"hosts": {"bench-0000": {
        "ansible_connection": "local", "bench_root": str(work / "root"), "bench_role": "web"}}}}))
    out: list[tuple[str, str, str | None, tuple[str, ...]]] = [
        ("benchmark workload", str(REPO / "benchmarks" / "workload" / "plan.json"), str(bench_inv), ()),
        ("examples/hello plan", str(REPO / "examples" / "hello" / "plan.json"), None, ()),
        ("examples/hello site.yml", str(REPO / "examples" / "hello" / "site.yml"), None, ()),
    ]
    for path in sorted((SHARED / "rustle-plan").glob("*.json")):
        out.append((f"fixtures plan {path.name}", str(path), None, ()))
    local_inv = work / "local.ini"  # the fixtures' playbooks name all or test_hosts
    local_inv.write_text("[test_hosts]\ntesthost ansible_connection=local\n")
    for path in sorted((SHARED / "rustle-parse" / "playbooks").glob("*.yml")):
        out.append((f"fixtures playbook {path.name}", str(path), str(local_inv), ()))
    out.append(("fixtures includes/main_playbook.yml", str(SHARED / "rustle-parse" / "includes" / "main_playbook.yml"),
                str(local_inv), ()))
    if acceptance:
        from tests.acceptance.harness import prepare, targets_root

        root = targets_root()
        table = (REPO / "docs" / "acceptance.md").read_text()
        for name in re.findall(r"^\| ([\w-]+) \| both \|", table, re.M):
            target = prepare(root, name, work / "acceptance" / name)
            out.append((f"acceptance {name}", str(target / "site.yml"), str(target / "inventory"),
                        (f"output_dir={target / 'output'}",)))
    return out


def leaves(task: dict[str, Any]) -> list[dict[str, Any]]:
    """The tasks inside a block (and nested blocks), or the task itself."""
    if "block" not in task:
        return [task]
    return [leaf for key in ("block", "rescue", "always") for t in task.get(key) or () for leaf in leaves(t)]


def measure(label: str, path: str, inventory: str | None, extra: tuple[str, ...]) -> dict[str, Any]:
    import os

    from rustle_deploy.compiler.native import NativeUnsupported, _Lowering, run_names
    from rustle_deploy.errors import RustleError
    from rustle_deploy.pipeline import Session

    opts: dict[str, Any] = {"execution_plan": path, "format_": "native", "output": "json",
                            "extra_vars": extra, "compile_only": True}
    if inventory:
        opts["inventory"] = inventory
    cwd = os.getcwd()
    os.chdir(os.path.dirname(path))
    try:
        s = Session.from_options(opts)
        plan, inv = s.plan(s.inventory())
        every, _ = s.hosts_for(plan, inv)
        units = s.units(plan, inv, every)
    except RustleError as exc:
        return {"source": label, "error": exc.message.splitlines()[0][:200]}
    finally:
        os.chdir(cwd)
    tasks = lowered = 0
    units_lowered = units_hybrid = units_mostly_native = python_tasks = 0
    reasons: collections.Counter[str] = collections.Counter()
    blockers: list[list[str]] = []  # per unit that does not lower: every reason that stops it
    for u in units:
        doc, host = u.plan_doc, u.host_names[0]
        registered = run_names(doc)
        try:
            lowering = _Lowering(doc, host, registered, {d: b"" for d in u.files}, u.host_vars.get(host))
        except NativeUnsupported as exc:
            n = sum(len(leaves(t)) for p in doc["plays"] for t in p["tasks"] + p["handlers"])
            tasks += n
            reasons[_kind(exc.message)] += n
            blockers.append([_kind(exc.message)])
            continue
        unit_reasons: set[str] = set()
        for play in doc["plays"]:
            if host not in (play.get("hosts") or []):
                continue
            for task in play["tasks"] + play["handlers"]:
                n = len(leaves(task))
                tasks += n
                # a handler is lowered as _Lowering.plays lowers it (a role's shows ``ROLE : NAME``,
                # a handler include no notify reaches never runs)
                lowering.handling = any(task is h for h in play["handlers"])
                try:
                    lowering.task(play, task)
                    lowered += n
                except NativeUnsupported as exc:
                    unit_reasons.add(_kind(exc.message))
                    reasons[_kind(exc.message)] += n
                except RustleError as exc:
                    kind = "compile error: " + exc.message.split(": ")[-1][:80]
                    unit_reasons.add(kind)
                    reasons[kind] += n
        units_lowered += not unit_reasons
        if unit_reasons:
            blockers.append(sorted(unit_reasons))
        # --format hybrid: the unit's program, with what does not lower left to the host's Python
        try:
            hybrid = _Lowering(doc, host, registered, {d: b"" for d in u.files}, u.host_vars.get(host), hybrid=True)
            hybrid.plays()
        except RustleError:
            continue
        n = sum(len(leaves(t)) for p in doc["plays"] if host in (p.get("hosts") or [])
                for t in p["tasks"] + p["handlers"])
        units_hybrid += 1
        units_mostly_native += 2 * len(hybrid.to_python) < n
        python_tasks += len(hybrid.to_python)
    return {"source": label, "tasks": tasks, "lowered": lowered, "units": len(units), "units_lowered": units_lowered,
            "units_hybrid": units_hybrid, "units_mostly_native": units_mostly_native, "python_tasks": python_tasks,
            "reasons": dict(reasons.most_common()), "blockers": blockers}


def _kind(message: str) -> str:
    """The reason, without the task's name and host: what to count."""
    reason = message.split(": ", 1)[-1] if message.startswith("task '") else message
    reason = re.sub(r"^[^:]*\) on [^:]+: ", "", reason)
    return re.sub(r"'[^']*' is also a variable", "'X' is also a variable", reason)[:160]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--acceptance", action="store_true", help="also the acceptance targets that pass (needs the sdist)")
    ap.add_argument("--json", metavar="FILE", help="write every source's numbers here")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "root").mkdir()
        results = [measure(*src) for src in sources(args.acceptance, work)]
    total = collections.Counter[str]()
    reasons: collections.Counter[str] = collections.Counter()
    stopping: collections.Counter[str] = collections.Counter()  # units each reason stops
    alone: collections.Counter[str] = collections.Counter()  # units that reason alone stops
    for r in results:
        if "error" in r:
            print(f"{r['source']}: not compiled: {r['error']}")
            continue
        share = r["lowered"] / r["tasks"] if r["tasks"] else 0.0
        print(f"{r['source']}: {r['lowered']}/{r['tasks']} tasks lower ({share:.0%}); "
              f"{r['units_lowered']}/{r['units']} units lower whole; hybrid: {r['units_hybrid']} units "
              f"({r['units_mostly_native']} mostly native), {r['python_tasks']} tasks in the host's Python")
        for key in ("tasks", "lowered", "units", "units_lowered", "units_hybrid", "units_mostly_native", "python_tasks"):
            total[key] += r[key]
        reasons.update(r["reasons"])
        for unit in r["blockers"]:
            stopping.update(unit)
            if len(unit) == 1:
                alone.update(unit)
    print(f"\nall: {total['lowered']}/{total['tasks']} tasks lower "
          f"({total['lowered'] / max(total['tasks'], 1):.0%}); {total['units_lowered']}/{total['units']} units lower whole")
    print(f"--format hybrid: {total['units_hybrid']}/{total['units']} units build (the runner hands "
          f"{total['python_tasks']} tasks to the host's Python); {total['units_mostly_native']} run mostly native "
          "(fewer than half their tasks in Python)")
    print("what stops the rest (tasks):")
    for reason, n in reasons.most_common(25):
        print(f"  {n:5d}  {reason}")
    print("what stops whole units (units it stops / units it alone stops):")
    for reason, n in stopping.most_common(25):
        print(f"  {n:5d} {alone[reason]:5d}  {reason}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
