"""The cost of a phase: the 12-task workload on N hosts, as it is and with one run_once task.

    .venv/bin/python benchmarks/phases.py --hosts 50 --repeat 3

Same harness as run.py (hosts.py fleet, measure(), check_run()): for each repeat, with the
order alternated, make every host fresh, run rustle-deploy cold then warm, check every host.
The run_once variant inserts "Pick a leader once" (``command: echo {{ inventory_hostname }}``,
``register: leader``, ``run_once: true``, ``changed_when: false``) after the stat task and adds
``leader.stdout == 'bench-0000'`` to the final assert (so every host must have received the
first host's result): the play is cut into three phases (docs/phases.md), one exchange per
host for each of the two ordinary phases, and one more for the first host. The table gives
the medians and the ratio run_once/plain (with the spread of that ratio within each repeat).

``--variant cross_play`` measures instead a read of another host's value set in an earlier
play: the final assert moves into a second play (plain: the two plays share one round trip),
and in the cross_play variant it also reads ``hostvars['bench-0000'].settings_count``: the
second play is then a stage of its own, and the first sends each host's state back.

``--variant delegate`` inserts instead "Echo on the first host" (``command: echo {{
inventory_hostname }}``, ``register: delegated``, ``delegate_to: bench-0000``) after the stat
task, and the final assert checks ``delegated.stdout == inventory_hostname``: the play is cut
into three phases, the middle one N exchanges with bench-0000 (one per host, each sending the
host's artifact), the worst case of delegation (every host to one).

``--variant per_item`` inserts instead "Echo on each of two hosts" (``delegate_to: "{{ item
}}"`` over ``[bench-0000, bench-0001]``): the play is cut into three phases, the middle one
run on the controller, where ansible-core makes each call (2 per host) over the item's ssh
connection; the final assert checks both results.

``--variant add_host`` runs the workload as a playbook (benchmarks/workload/site.yml) after a
first play on the controller's implicit localhost. In the plain variant that play runs a debug
task and the workload play targets ``all``; in the add_host variant it adds every inventory
host to a group ``added`` (``add_host`` in a loop over ``groups['all']``) and the workload
play targets ``added``: it is compiled once the first play has run (docs/phases.md).

``--variant fatal`` sets ``any_errors_fatal: true`` on the workload's play: every task that may
fail ends a phase (Ansible's hosts stop together after it), so the play is as many phases as
it has such tasks, each one exchange per host.

``--variant play_hosts`` adds to the final assert a read of the play's hosts: in the plain
variant ``ansible_play_hosts_all | length == N`` (every host of the play: one phase), in the
play_hosts variant ``ansible_play_hosts | length == N`` (the hosts still in the play: read after
tasks that may fail, so the play is cut before the assert, two exchanges per host).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as harness  # noqa: E402
from plan import WORKLOAD, build_plan  # noqa: E402
from serial import side_by_side  # noqa: E402


def with_run_once(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with a run_once task after the stat task, whose result the final assert reads."""
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    at = next(i for i, t in enumerate(tasks) if t["module"].endswith("stat")) + 1
    leader = dict(tasks[at - 1], task_id="task_leader", name="Pick a leader once", module="ansible.builtin.command",
                  args={"_raw_params": "echo {{ inventory_hostname }}"}, register="leader", run_once=True,
                  changed_when=False)
    tasks.insert(at, leader)
    for order, task in enumerate(tasks):
        task["execution_order"] = order
    tasks[-1]["args"] = dict(tasks[-1]["args"], that=[*tasks[-1]["args"]["that"], "leader.stdout == 'bench-0000'"])
    doc["total_tasks"] = len(tasks)
    return doc


def with_delegated(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with a task delegated to the first host after the stat task (each host runs it
    there, over bench-0000's connection), whose result the final assert reads."""
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    at = next(i for i, t in enumerate(tasks) if t["module"].endswith("stat")) + 1
    task = dict(tasks[at - 1], task_id="task_delegated", name="Echo on the first host",
                module="ansible.builtin.command", args={"_raw_params": "echo {{ inventory_hostname }}"},
                register="delegated", delegate_to="bench-0000", changed_when=False)
    tasks.insert(at, task)
    for order, t in enumerate(tasks):
        t["execution_order"] = order
    tasks[-1]["args"] = dict(tasks[-1]["args"], that=[*tasks[-1]["args"]["that"],
                                                      "delegated.stdout == inventory_hostname"])
    doc["total_tasks"] = len(tasks)
    return doc


def with_per_item(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with a task delegated to each of the first two hosts in turn (a loop item names
    the delegate), whose results the final assert reads."""
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    at = next(i for i, t in enumerate(tasks) if t["module"].endswith("stat")) + 1
    task = dict(tasks[at - 1], task_id="task_per_item", name="Echo on each of two hosts",
                module="ansible.builtin.command", args={"_raw_params": "echo {{ inventory_hostname }}"},
                register="delegated", delegate_to="{{ item }}", loop=["bench-0000", "bench-0001"],
                changed_when=False)
    tasks.insert(at, task)
    for order, t in enumerate(tasks):
        t["execution_order"] = order
    tasks[-1]["args"] = dict(tasks[-1]["args"], that=[
        *tasks[-1]["args"]["that"], "delegated.results | map(attribute='stdout') | list == [inventory_hostname] * 2"])
    doc["total_tasks"] = len(tasks)
    return doc


def with_play_hosts(doc: dict[str, Any], live: bool) -> dict[str, Any]:
    """``doc`` whose final assert counts the play's hosts: those still in it (``live``), or all."""
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    name = "ansible_play_hosts" if live else "ansible_play_hosts_all"
    count = len(doc["plays"][0]["hosts"])
    tasks[-1]["args"] = dict(tasks[-1]["args"], that=[*tasks[-1]["args"]["that"], f"{name} | length == {count}"])
    return doc


def split_plays(doc: dict[str, Any], read_other: bool) -> dict[str, Any]:
    """``doc`` with its final assert moved into a second play, reading (``read_other``) what
    the first host registered in the first play."""
    first = doc["plays"][0]
    tasks = first["batches"][0]["tasks"]
    last = tasks.pop()
    if read_other:
        last["args"] = dict(last["args"], that=[*last["args"]["that"],
                                                "hostvars['bench-0000'].settings_count.stdout | int == 4"])
    second = json.loads(json.dumps(first))
    second.update(play_id="play-1", name=first["name"] + " (check)")
    second["batches"][0]["tasks"] = [dict(last, execution_order=0)]
    doc["plays"].append(second)
    for dep in doc["binary_deployments"]:  # the seed's deployments name no task of another play
        dep["tasks"] = [t for t in dep["tasks"] if t != last["task_id"]]
    return doc


FIRST_PLAY = {
    "plain": {"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "On the controller",
                                                                      "debug": {"msg": "first play"}}]},
    "add_host": {"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Add every host to a group", "add_host": {"name": "{{ item }}", "groups": "added"},
        "loop": "{{ groups['all'] }}"}]},
}


def playbook(rundir: Path, variant: str) -> Path:
    """The workload playbook after a first play on localhost (``--variant add_host``), beside
    links to the workload's files and templates."""
    import yaml

    plays = yaml.safe_load((harness.WORKLOAD / "site.yml").read_text())
    if variant == "add_host":
        plays[0]["hosts"] = "added"
    for name in ("files", "templates"):
        link = rundir / name
        if not link.exists():
            link.symlink_to(harness.WORKLOAD / name)
    path = rundir / "site.yml"
    path.write_text(yaml.safe_dump([FIRST_PLAY[variant], *plays], sort_keys=False))
    return path


def rustle_with(variant: str) -> Callable[[harness.Ctx], harness.Run]:
    def tool(ctx: harness.Ctx) -> harness.Run:
        inv = ctx.fleet.write_ansible_inventory(ctx.rundir / "inventory.yml", ctx.hosts)
        if variant.startswith("playbook"):
            return harness.measure([str(harness.VENV_BIN / "rustle-deploy"), str(playbook(ctx.rundir, variant[9:])),
                                    "-i", str(inv), "--run", "--output", "json", "--parallel", str(ctx.n),
                                    "--format", "pyz"], ctx)
        doc = build_plan([h.name for h in ctx.hosts], WORKLOAD)
        if variant == "run_once":
            doc = with_run_once(doc)
        elif variant == "delegate":
            doc = with_delegated(doc)
        elif variant == "per_item":
            doc = with_per_item(doc)
        elif variant in ("two_plays", "cross_play"):
            doc = split_plays(doc, variant == "cross_play")
        elif variant == "fatal":
            doc["plays"][0]["any_errors_fatal"] = True
        elif variant in ("play_hosts_all", "play_hosts"):
            doc = with_play_hosts(doc, variant == "play_hosts")
        plan = ctx.rundir / "plan.json"
        plan.write_text(json.dumps(doc, indent=2) + "\n")
        # pyz for every variant: a play cut into phases runs pyz, so its baseline does too
        return harness.measure([str(harness.VENV_BIN / "rustle-deploy"), str(plan), "-i", str(inv), "--run",
                                "--output", "json", "--parallel", str(ctx.n), "--format", "pyz"], ctx)

    return tool


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--variant", choices=("run_once", "cross_play", "delegate", "per_item", "add_host", "fatal",
                                          "play_hosts"),
                    default="run_once",
                    help="what to compare: a run_once task with the plain play, a read of an "
                    "earlier play's values with the same two plays without it, or a task every host "
                    "delegates to the first host (per_item: to each of the first two) with the plain play")
    ap.add_argument("--out", type=Path, default=harness.REPO / "benchmarks" / "out" / "phases")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    harness.become_subreaper()
    harness.compile_installed_sources()
    if args.variant == "run_once":
        variants = {"plain": rustle_with("plain"), "run_once": rustle_with("run_once")}
    elif args.variant == "add_host":
        variants = {"plain": rustle_with("playbook-plain"), "add_host": rustle_with("playbook-add_host")}
        out = out.parent / (out.name + "-add-host")
    elif args.variant == "delegate":
        variants = {"plain": rustle_with("plain"), "delegate": rustle_with("delegate")}
        out = out.parent / (out.name + "-delegate")
    elif args.variant == "fatal":
        variants = {"plain": rustle_with("plain"), "fatal": rustle_with("fatal")}
        out = out.parent / (out.name + "-fatal")
    elif args.variant == "play_hosts":
        variants = {"plain": rustle_with("play_hosts_all"), "play_hosts": rustle_with("play_hosts")}
        out = out.parent / (out.name + "-play-hosts")
    elif args.variant == "per_item":
        variants = {"plain": rustle_with("plain"), "per_item": rustle_with("per_item")}
        out = out.parent / (out.name + "-per-item")
    else:
        variants = {"two_plays": rustle_with("two_plays"), "cross_play": rustle_with("cross_play")}
        out = out.parent / (out.name + "-cross-play")
    return side_by_side(variants, args.hosts, args.repeat, out)


if __name__ == "__main__":
    sys.exit(main())
