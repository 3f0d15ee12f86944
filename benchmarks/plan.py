"""Build the workload's rustle-plan execution plan (what rustle-plan emits for site.yml).

rustle-plan lists concrete host names everywhere (play, batch, task, binary deployment), so
the harness builds one plan per host list; `python benchmarks/plan.py` rewrites the sample
`workload/plan.json` (one host, `src` paths relative to the plan's directory).  Keys beyond
rustle-plan's own (`loop`, `register`, `changed_when`) are the product's documented
extensions (PLAN_FORMAT.md, "Extensions").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WORKLOAD = Path(__file__).resolve().parent / "workload"
R = "{{ bench_root }}"

# (name, module, args, extensions) - the same 12 tasks as workload/site.yml
TASKS: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("Directories with modes", "ansible.builtin.file",
     {"path": R + "/app/{{ item.path }}", "state": "directory", "mode": "{{ item.mode }}"},
     {"loop": [{"path": ".", "mode": "0755"}, {"path": "conf", "mode": "0750"},
               {"path": "data", "mode": "0700"}]}),
    ("Copy a file from the controller", "ansible.builtin.copy",
     {"src": "files/app.conf", "dest": R + "/app/conf/app.conf", "mode": "0644"}, {}),
    ("Template with host variables", "ansible.builtin.template",
     {"src": "templates/motd.j2", "dest": R + "/app/motd", "mode": "0644"}, {}),
    ("File with inline content", "ansible.builtin.copy",
     {"content": "managed inline\nhost={{ inventory_hostname }}\n",
      "dest": R + "/app/conf/inline.txt", "mode": "0600"}, {}),
    ("lineinfile creates a file", "ansible.builtin.lineinfile",
     {"path": R + "/app/conf/settings.ini", "line": "owner = {{ inventory_hostname }}",
      "create": True, "mode": "0644"}, {}),
    ("One-time backup of the legacy config", "ansible.builtin.command",
     {"_raw_params": f"cp {R}/legacy.cfg {R}/app/data/legacy.cfg.orig",
      "creates": R + "/app/data/legacy.cfg.orig"}, {}),
    ("lineinfile replaces a line", "ansible.builtin.lineinfile",
     {"path": R + "/legacy.cfg", "regexp": r"^workers\s*=", "line": "workers = 4"}, {}),
    ("Symlink", "ansible.builtin.file",
     {"src": R + "/app/conf/app.conf", "dest": R + "/app/current.conf", "state": "link"}, {}),
    ("Stat the copied file", "ansible.builtin.stat",
     {"path": R + "/app/conf/app.conf", "get_checksum": False, "get_mime": False,
      "get_attributes": False}, {"register": "app_conf"}),
    ("Count settings with a shell pipeline", "ansible.builtin.shell",
     {"_raw_params": f"grep -v '^#' {R}/app/conf/app.conf | grep -c ' = '"},
     {"register": "settings_count", "changed_when": False}),
    ("Remove a stale file", "ansible.builtin.file",
     {"path": R + "/stale.txt", "state": "absent"}, {}),
    ("Assert on the registered results", "ansible.builtin.assert",
     {"that": ["app_conf.stat.exists", "app_conf.stat.mode == '0644'",
               "settings_count.stdout | int == 4"]}, {}),
]
# The same work with tasks the native runner cannot run (--format hybrid hands them to the
# host's Python; docs/native.md, "Hybrid artifacts"): a filter it lacks over a registered result,
# a condition over one, a module it lacks. Index -> (args, extensions) replacing the task's own.
PYTHON_TASKS: list[tuple[int, str, dict[str, Any], dict[str, Any]]] = [
    (11, "ansible.builtin.assert",
     {"that": ["app_conf.stat.exists", "app_conf.stat.mode == '0644'",
               "settings_count.stdout | regex_replace('\\s', '') | int == 4"]}, {}),
    (10, "ansible.builtin.file", {"path": R + "/stale.txt", "state": "absent"},
     {"conditions": [{"When": {"expression": "settings_count.stdout | regex_search('4') is not none"}}]}),
    (6, "ansible.builtin.replace", {"path": R + "/legacy.cfg", "regexp": r"^workers\s*=.*$",
                                    "replace": "workers = 4"}, {}),
]
STATIC = [("files/app.conf", R + "/app/conf/app.conf"), ("templates/motd.j2", R + "/app/motd")]
OPTIONS = {"limit": None, "tags": [], "skip_tags": [], "check_mode": False, "diff_mode": False,
           "forks": 50, "serial": None, "strategy": "BinaryHybrid", "binary_threshold": 5,
           "force_binary": False, "force_ssh": False}


def build_plan(hosts: list[str], src_base: Path | None = None, python_tasks: int = 0) -> dict[str, Any]:
    """The plan for `hosts`; `src_base` makes static `src` paths absolute (else relative);
    `python_tasks` (0 to 3): how many tasks to replace by their PYTHON_TASKS form."""
    def src(path: str) -> str:
        return str(src_base / path) if src_base else path

    hosts = list(hosts)
    tasks = []
    workload = list(TASKS)
    for index, module, args, ext in PYTHON_TASKS[:python_tasks]:
        workload[index] = (workload[index][0], module, args, ext)
    for i, (name, module, args, ext) in enumerate(workload):
        args = dict(args)
        if "src" in args and module.endswith(("copy", "template")):
            args["src"] = src(args["src"])
        tasks.append({
            "task_id": f"task_{i}", "name": name, "module": module, "args": args,
            "hosts": hosts, "dependencies": [], "conditions": [], "tags": [], "notify": [],
            "execution_order": i, "can_run_parallel": True,
            "estimated_duration": {"secs": 1, "nanos": 0},
            "risk_level": "High" if module.endswith(("command", "shell")) else "Medium",
            **ext,
        })
    embedded = {"group_id": "group_0", "hosts": hosts, "tasks": tasks}
    return {
        "metadata": {"created_at": "2026-11-27T08:00:00.000000Z", "rustle_plan_version": "0.1.0",
                     "playbook_hash": "benchmark-site-yml", "inventory_hash": "benchmark",
                     "planning_options": OPTIONS},
        "plays": [{
            "play_id": "play-0", "name": "Benchmark workload", "strategy": "BinaryHybrid",
            "serial": None, "hosts": hosts,
            "batches": [{"batch_id": "binary-batch", "hosts": hosts, "tasks": tasks,
                         "parallel_groups": [], "dependencies": [], "estimated_duration": None}],
            "handlers": [], "estimated_duration": None,
        }],
        "binary_deployments": [{
            "deployment_id": "group_0", "target_hosts": hosts,
            "binary_name": "rustle-runner-group_0", "tasks": [t["task_id"] for t in tasks],
            "modules": [t["module"] for t in tasks],
            "embedded_data": {
                "execution_plan": json.dumps(embedded, sort_keys=True, separators=(",", ":")),
                "static_files": [{"src_path": src(s), "dest_path": d,
                                  "checksum": "placeholder-checksum",
                                  "size": (WORKLOAD / s).stat().st_size} for s, d in STATIC],
                "variables": {}, "facts_required": [],
            },
            "execution_mode": "Controller", "estimated_size": 5258240,
            "compilation_requirements": {"target_arch": "x86_64", "target_os": "linux",
                                         "rust_version": "1.70.0", "cross_compilation": False,
                                         "static_linking": True},
        }],
        "total_tasks": len(tasks),
        "estimated_duration": {"secs": len(tasks), "nanos": 0},
        "estimated_compilation_time": {"secs": 30, "nanos": 0},
        "parallelism_score": 1.0, "network_efficiency_score": 1.0,
        "hosts": hosts,
    }


def write_plan(path: Path, hosts: list[str], src_base: Path | None = None, python_tasks: int = 0) -> Path:
    path.write_text(json.dumps(build_plan(hosts, src_base, python_tasks), indent=2) + "\n")
    return path


if __name__ == "__main__":
    write_plan(WORKLOAD / "plan.json", ["bench-0000"])
