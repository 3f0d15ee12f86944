"""Playbook-to-plan benchmark (issue 12): what reading a playbook costs before anything ships.

    .venv/bin/python benchmarks/playbook_bench.py [--hosts 1000] [--roles 10] [--tasks 5] [--repeat 5]

Two measurements, medians of ``--repeat`` runs, in-process (no Python start-up):

* ``workload``: benchmarks/workload/site.yml (the 12-task workload the N=50 runs apply) over
  50 inventory hosts, playbook -> plan;
* ``roles``: a generated project of ``--roles`` roles with ``--tasks`` tasks each (files,
  templates, loops, handlers, defaults, a shared dependency, group_vars) over ``--hosts``
  hosts in 20 groups: playbook -> plan, and playbook -> plan -> build units (what
  ``--compile-only`` does before writing artifacts).

The whole command (``rustle-deploy site.yml --compile-only``, Python start-up included) is
timed once cold and once cached for the generated project.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def make_project(root: Path, hosts: int, roles: int, tasks: int) -> None:
    (root / "group_vars").mkdir(parents=True)
    lines = []
    for g in range(20):
        lines.append(f"[g{g:02d}]")
        lines += [f"h{i:04d} ansible_connection=local bench_root=/tmp/bench/h{i:04d}"
                  for i in range(g, hosts, 20)]
        (root / "group_vars" / f"g{g:02d}.yml").write_text(f"tier: tier{g % 4}\nport: {8000 + g}\n")
    (root / "inventory.ini").write_text("\n".join(lines) + "\n")
    base = root / "roles" / "base"
    (base / "tasks").mkdir(parents=True)
    (base / "tasks" / "main.yml").write_text("- file: {path: '{{ bench_root }}', state: directory}\n")
    for r in range(roles):
        role = root / "roles" / f"role{r:02d}"
        for d in ("tasks", "handlers", "defaults", "templates", "files", "meta"):
            (role / d).mkdir(parents=True)
        (role / "meta" / "main.yml").write_text("dependencies: [base]\n")
        (role / "defaults" / "main.yml").write_text(f"r{r}_enabled: true\nr{r}_items: [a, b, c]\n")
        (role / "files" / "data.txt").write_text(f"role {r} data\n")
        (role / "templates" / "conf.j2").write_text(
            f"role={r} host={{{{ inventory_hostname }}}} tier={{{{ tier }}}} port={{{{ port }}}}\n")
        (role / "handlers" / "main.yml").write_text(
            f"- name: reload {r}\n  command: touch {{{{ bench_root }}}}/reloaded{r}\n")
        kinds = [
            f"- name: dir {r}\n  file: {{path: '{{{{ bench_root }}}}/r{r}', state: directory, mode: '0755'}}\n",
            f"- name: data {r}\n  copy: {{src: data.txt, dest: '{{{{ bench_root }}}}/r{r}/data.txt'}}\n",
            f"- name: conf {r}\n  template: {{src: conf.j2, dest: '{{{{ bench_root }}}}/r{r}/conf'}}\n"
            f"  notify: reload {r}\n",
            f"- name: items {r}\n  lineinfile: {{path: '{{{{ bench_root }}}}/r{r}/items', line: '{{{{ item }}}}', "
            f"create: true}}\n  loop: '{{{{ r{r}_items }}}}'\n  when: r{r}_enabled\n",
            f"- name: once {r}\n  command: touch {{{{ bench_root }}}}/r{r}/once creates={{{{ bench_root }}}}/r{r}/once\n",
        ]
        (role / "tasks" / "main.yml").write_text("".join(kinds[t % len(kinds)].replace(f" {r}\n", f" {r}.{t}\n", 1)
                                                         for t in range(tasks)))
    role_list = "".join(f"    - role{r:02d}\n" for r in range(roles))
    (root / "site.yml").write_text(f"- hosts: all\n  gather_facts: false\n  roles:\n{role_list}")


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--roles", type=int, default=10)
    ap.add_argument("--tasks", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from rustle_deploy.compiler.units import plan_units
    from rustle_deploy.inventory import load_inventory
    from rustle_deploy.pipeline import _group_members
    from rustle_deploy.playbook import CompileOptions, compile_playbook

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        # the workload over 50 hosts
        inv50 = work / "inv50.ini"
        inv50.write_text("".join(f"w{i:02d} ansible_connection=local bench_root=/tmp/b{i}\n" for i in range(50)))
        inventory = load_inventory(str(inv50))
        site = str(HERE / "workload" / "site.yml")
        t_workload = median_time(lambda: compile_playbook(site, inventory, CompileOptions()), args.repeat)
        print(f"workload site.yml, 50 hosts: playbook -> plan {t_workload * 1000:.1f} ms")

        project = work / "project"
        make_project(project, args.hosts, args.roles, args.tasks)
        os.chdir(project)
        inv = load_inventory("inventory.ini")
        t_plan = median_time(lambda: compile_playbook("site.yml", inv, CompileOptions()), args.repeat)

        def to_units() -> None:
            compiled = compile_playbook("site.yml", inv, CompileOptions())
            ci = compiled.inventory
            hosts = ci.resolve(list(compiled.plan.hosts))
            plan_units(compiled.plan, hosts, resolve=ci.resolve, select=ci.select,
                       groups=_group_members(ci))

        t_units = median_time(to_units, args.repeat)
        n_tasks = args.roles * args.tasks
        print(f"{args.hosts} hosts x {n_tasks} tasks in {args.roles} roles: playbook -> plan "
              f"{t_plan * 1000:.1f} ms; -> build units {t_units * 1000:.1f} ms")
        env = dict(os.environ, HOME=str(work / "home"))
        cmd = [sys.executable, "-m", "rustle_deploy.cli", "site.yml", "--compile-only", "--output", "json",
               "-o", str(work / "out")]
        for label in ("cold", "cached"):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True, env=env, cwd=project)
            print(f"rustle-deploy site.yml --compile-only ({label}): {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
