"""What ``become_user`` costs per task: the workload as root, then every task becoming ``nobody``.

Not part of the test suite. Needs root, sudo and a Python that ``nobody`` can start
(``--python``, default /usr/bin/python3). Compiles the workload's plan twice (as is, and with
``become: true, become_user: nobody`` on every task) with ``rustle-deploy --compile-only``
(``--format pyz`` or ``native``), then
runs each artifact ``--repeat`` times on this machine, cold (a freshly seeded host directory)
and warm (the same directory again: nothing changes), and prints the medians of the run's own
``recap`` duration and of each task's ``duration`` from the event stream.

    sudo .venv/bin/python benchmarks/become.py --repeat 20 [--format native]
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from plan import WORKLOAD, build_plan

BIN = Path(sys.executable).parent
HOST = "bench-0000"


def seed(root: Path, owner: str) -> None:
    """A fresh host directory, as benchmarks/hosts.py seeds it, owned by ``owner``."""
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / "stale.txt").write_text("stale\n")
    (root / "legacy.cfg").write_text("# legacy\nworkers = 1\nmode = old\n")
    info = pwd.getpwnam(owner)
    for path in (root, root / "stale.txt", root / "legacy.cfg"):
        os.chown(path, info.pw_uid, info.pw_gid)


def compile_artifact(work: Path, name: str, become: dict[str, Any], root: Path, fmt: str) -> list[str]:
    """The command line that runs the compiled artifact (after the interpreter or runner)."""
    plan = build_plan([HOST], WORKLOAD)
    for task in plan["plays"][0]["batches"][0]["tasks"]:
        task.update(become)
    embedded = plan["binary_deployments"][0]["embedded_data"]
    embedded["execution_plan"] = json.dumps({"group_id": "group_0", "hosts": [HOST],
                                             "tasks": plan["plays"][0]["batches"][0]["tasks"]})
    d = work / name
    d.mkdir()
    (d / "plan.json").write_text(json.dumps(plan))
    (d / "inv.yml").write_text(json.dumps({"all": {"hosts": {HOST: {
        "ansible_connection": "local", "bench_root": str(root), "bench_role": "web"}}}}))
    cache = Path.home() / ".rustle" / "cache"  # the runner is built once per source (~1 min)
    out = subprocess.run([str(BIN / "rustle-deploy"), str(d / "plan.json"), "-i", str(d / "inv.yml"),
                          "--compile-only", "-o", str(d / "out"), "--output", "json", "--format", fmt,
                          "--cache-dir", str(cache)],
                         capture_output=True, text=True, check=True, env=dict(os.environ, HOME=str(d)))
    artifact = json.loads(out.stdout)["artifacts"][0]["file"]
    if fmt == "native":
        (runner,) = (d / "out").glob("rustle-runner-*")
        return [str(runner), "run", artifact]
    return [artifact, "run"]


def run_once(command: list[str], name: str) -> tuple[float, list[float]]:
    proc = subprocess.run([*command, "--host", HOST], capture_output=True, text=True)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    failed = [e for e in events if e["event"] == "task_result" and e["status"] == "failed"]
    if proc.returncode != 0 or failed:
        raise SystemExit(f"{name}: run failed: {failed or proc.stderr}")
    recap = [e for e in events if e["event"] == "recap"][0]
    return recap["duration"], [e["duration"] for e in events if e["event"] == "task_result"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--format", choices=("pyz", "native"), default="pyz")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: tasks become 'nobody' through sudo without a password")
    work = Path(tempfile.mkdtemp(prefix="rustle-become-bench-", dir="/tmp"))
    work.chmod(0o755)
    try:
        variants = {}
        for name, become, owner in (("as root", {}, "root"),
                                    ("become nobody", {"become": True, "become_user": "nobody"}, "nobody")):
            root = work / name.replace(" ", "-") / "root"
            command = compile_artifact(work, name.replace(" ", "-") + "-build", become, root, args.format)
            if args.format == "pyz":
                command = [args.python, *command]
            variants[name] = (root, owner, command)
        samples: dict[tuple[str, str], list[tuple[float, list[float]]]] = {}
        for _ in range(args.repeat):  # interleaved, so that the machine's load falls on both alike
            for phase in ("cold", "warm"):
                for name, (root, owner, command) in variants.items():
                    if phase == "cold":
                        seed(root, owner)
                    samples.setdefault((name, phase), []).append(run_once(command, name))
        print(f"{'run':<24}{'total ms':>10}  per task ms (median of {args.repeat})")
        rows = {}
        for key, runs in samples.items():
            totals = [t for t, _ in runs]
            medians = [statistics.median(col) for col in zip(*(tasks for _, tasks in runs), strict=True)]
            rows[key] = (statistics.median(totals), medians, [min(col) for col in zip(*(tasks for _, tasks in runs), strict=True)])
            print(f"{key[0] + ' ' + key[1]:<24}{rows[key][0] * 1000:>10.1f}  "
                  + " ".join(f"{m * 1000:.1f}" for m in medians))
        for phase in ("cold", "warm"):
            plain, become = rows[("as root", phase)], rows[("become nobody", phase)]
            for stat, index in (("median", 1), ("min", 2)):
                deltas = [b - p for p, b in zip(plain[index], become[index], strict=True)]
                # the first task starts the child; the last (assert) runs in the runtime's process
                later = deltas[1:-1]
                print(f"{phase} ({stat}): first become task +{deltas[0] * 1000:.1f} ms (starts the child), "
                      f"each later one +{statistics.median(later) * 1000:.2f} ms")
            print(f"{phase}: whole run +{(become[0] - plain[0]) * 1000:.1f} ms (medians)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
