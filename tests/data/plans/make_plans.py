"""Generate the plan test corpus: good plans in good/, broken plans in broken/.

Run ``python tests/data/plans/make_plans.py`` after changing this file; the files it writes
are committed (they are real inputs) and ``tests/unit/test_plan_corpus.py`` checks that they
still match what this script produces.

good/rich.json exercises every feature: two plays, Linear and Rolling strategies, every
condition kind, task extensions, play vars, handlers (one with ``listen``), task and batch
dependencies, copy and template sources, and binary deployments in the current and the
legacy shape. good/legacy.json is an older planner's output (``SshOnly``, ``task_ids``,
``target_triple``, ``Skip``/``Only``). Each broken plan is rich.json with one mutation;
broken/expected.json maps its file name to the JSON pointer and a message fragment that
the PlanError must carry.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def dur(secs: int, nanos: int = 0) -> dict[str, int]:
    return {"secs": secs, "nanos": nanos}


def task(task_id: str, name: str, module: str, args: dict[str, Any], hosts: list[str],
         order: int, **extra: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "task_id": task_id, "name": name, "module": module, "args": args, "hosts": hosts,
        "dependencies": [], "conditions": [], "tags": [], "notify": [],
        "execution_order": order, "can_run_parallel": False, "estimated_duration": dur(1),
        "risk_level": "Medium",
    }
    t.update(extra)
    return t


def options(strategy: Any = "BinaryHybrid") -> dict[str, Any]:
    return {"limit": None, "tags": [], "skip_tags": [], "check_mode": False, "diff_mode": False,
            "forks": 50, "serial": None, "strategy": strategy, "binary_threshold": 5,
            "force_binary": False, "force_ssh": False}


def rich() -> dict[str, Any]:
    web = ["web1", "web2"]
    web_tasks = [
        task("task_0", "Install nginx", "ansible.builtin.apt", {"name": "nginx"}, web, 0,
             conditions=[{"When": {"expression": "ansible_os_family == 'Debian'"}},
                         {"Tag": {"tags": ["pkg"]}}],
             tags=["pkg"], become=True, retries=3, delay=2, until="result is succeeded",
             register="result"),
        task("task_1", "Configure nginx", "copy",
             {"src": "../files/nginx.conf", "dest": "/etc/nginx/nginx.conf", "mode": "0644"},
             web, 1, dependencies=["task_0"], notify=["restart nginx"],
             conditions=[{"CheckMode": {"enabled": True}}, {"SkipTag": {"tags": ["never"]}}],
             diff=True, no_log=False),
        task("task_2", "Render app config", "template",
             {"src": "../files/templates/app.conf.j2", "dest": "/etc/app.conf"}, ["web1"], 2,
             dependencies=["task_1"], notify=["app changed"],
             conditions=[{"Host": {"pattern": "web1"}}],
             delegate_to="{{ inventory_hostname }}"),
        task("task_3", "Greet", "debug", {"msg": "{{ greeting }} from {{ item }}"}, web, 3,
             loop=["a", "b"], loop_control={"label": "{{ item }}"}, changed_when=False,
             failed_when=["false"], ignore_errors="{{ lenient }}", vars={"greeting": "hi"},
             environment={"LANG": "C"}, timeout=30, check_mode=False, run_once=False,
             become_user="root", become_method="sudo"),
        task("task_4", "Inline content", "copy", {"content": "x\n", "dest": "/tmp/x"}, web, 4,
             conditions=[{"Skip": {"condition": "skip_me"}}, {"Only": {"hosts": ["web2"]}}]),
    ]
    web_batches = []
    for i, t in enumerate(web_tasks):
        web_batches.append({"batch_id": f"batch-{i}", "hosts": web, "tasks": [t],
                            "parallel_groups": [], "dependencies": [f"batch-{i - 1}"] if i else [],
                            "estimated_duration": None})
    web_play = {
        "play_id": "play-0", "name": "web", "strategy": "Linear", "serial": None, "hosts": web,
        "vars": {"workdir": "/srv/app", "lenient": False},
        "batches": web_batches,
        "handlers": [
            {"handler_id": "handler_0", "name": "restart nginx", "module": "service",
             "args": {"name": "nginx", "state": "restarted"}, "conditions": [],
             "execution_order": 0},
            {"handler_id": "handler_1", "name": "reload app", "module": "command",
             "args": {"_raw_params": "true"}, "conditions": [], "execution_order": 1,
             "listen": "app changed"},
        ],
        "estimated_duration": None,
    }
    db = ["db1", "db2"]
    db_batches = []
    for i, host in enumerate(db):
        db_batches.append({
            "batch_id": f"rolling-{i}", "hosts": [host],
            "tasks": [task("task_0", "Ping", "ping", {}, [host], 0),
                      task("task_1", "Uptime", "command", {"_raw_params": "uptime"}, [host], 1,
                           dependencies=["task_0"])],
            "parallel_groups": [{"group_id": "g0", "tasks": ["task_0"], "max_parallelism": 1,
                                 "shared_resources": []}],
            "dependencies": [f"rolling-{i - 1}"] if i else [],
            "estimated_duration": dur(2),
        })
    db_play = {"play_id": "play-1", "name": "db", "strategy": {"Rolling": {"batch_size": 1}},
               "serial": 1, "hosts": db, "batches": db_batches, "handlers": [],
               "estimated_duration": dur(4)}
    embedded = {"group_id": "group_0", "hosts": web,
                "tasks": [{"task_id": "task_0", "module": "apt"}]}
    return {
        "metadata": {"created_at": "2025-07-13T01:51:24.742760Z", "rustle_plan_version": "0.1.0",
                     "playbook_hash": "0" * 32, "inventory_hash": "1" * 32,
                     "planning_options": options({"Rolling": {"batch_size": 1}})},
        "plays": [web_play, db_play],
        "binary_deployments": [
            {"deployment_id": "group_0", "target_hosts": web,
             "binary_name": "rustle-runner-group_0", "tasks": ["task_0", "task_1"],
             "modules": ["apt", "copy"],
             "embedded_data": {
                 "execution_plan": json.dumps(embedded, separators=(",", ":")),
                 "static_files": [{"src_path": "../files/nginx.conf",
                                   "dest_path": "/etc/nginx/nginx.conf",
                                   "checksum": "placeholder-checksum", "size": 1024}],
                 "variables": {"a": 1}, "facts_required": ["ansible_os_family"]},
             "execution_mode": "Controller", "estimated_size": 5258240,
             "compilation_requirements": {"target_arch": "x86_64", "target_os": "linux",
                                          "rust_version": "1.70.0", "cross_compilation": False,
                                          "static_linking": True}},
            {"deployment_id": "group_1", "target_hosts": db, "binary_name": "rustle-runner-group_1",
             "task_ids": ["task_0", "task_1"], "modules": ["ping", "command"],
             "embedded_data": {"execution_plan": "{\"group_id\":\"group_1\",\"hosts\":[],"
                               "\"tasks\":[]}", "static_files": [], "variables": {},
                               "facts_required": []},
             "execution_mode": "Standalone", "estimated_size": 1,
             "compilation_requirements": {"target_triple": "aarch64-unknown-linux-musl"}},
        ],
        "total_tasks": 7,
        "estimated_duration": dur(12, 10_000_000),
        "estimated_compilation_time": None,
        "parallelism_score": 0.5,
        "network_efficiency_score": 1,
        "hosts": ["web1", "web2", "db1", "db2"],
        "some_future_key": {"ignored": True},
    }


def legacy() -> dict[str, Any]:
    hosts = ["h1"]
    return {
        "metadata": {"created_at": None, "rustle_plan_version": "0.0.9",
                     "planning_options": options("SshOnly")},
        "plays": [{
            "play_id": "p", "name": "legacy", "strategy": "HostPinned", "serial": None,
            "hosts": hosts,
            "batches": [{"batch_id": "b", "hosts": hosts, "tasks": [
                task("t0", "Only here", "shell", {"_raw_params": "echo hi"}, hosts, 0,
                     conditions=[{"Only": {"hosts": ["h1"]}}, {"Skip": {"condition": "x"}}]),
            ], "dependencies": []}],
            "handlers": [],
        }],
        "binary_deployments": [{
            "deployment_id": "group_0", "target_hosts": hosts, "task_ids": ["t0"],
            "modules": ["shell"],
            "embedded_data": {"execution_plan": None, "static_files": [], "variables": {},
                              "facts_required": []},
            "compilation_requirements": {"target_triple": "x86_64-unknown-linux-musl"},
        }],
        "total_tasks": 1,
        "hosts": hosts,
    }


# -- broken plans: (name, mutation, expected pointer, message fragment) --------------------

Mutation = Callable[[dict[str, Any]], Any]
T1 = "/plays/0/batches/1/tasks/0"  # rich(): the copy task with notify


def setp(path: str, value: Any) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = _tokens(path)
        node: Any = d
        for tok in parents:
            node = node[int(tok)] if isinstance(node, list) else node[tok]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


def delp(path: str) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        *parents, last = _tokens(path)
        node: Any = d
        for tok in parents:
            node = node[int(tok)] if isinstance(node, list) else node[tok]
        del node[last]
    return mutate


def _tokens(path: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:]]


def both(*ms: Mutation) -> Mutation:
    def mutate(d: dict[str, Any]) -> None:
        for m in ms:
            m(d)
    return mutate


BROKEN: list[tuple[str, Mutation, str, str]] = [
    ("missing_plays", delp("/plays"), "/plays", "missing required key 'plays'"),
    ("missing_metadata", delp("/metadata"), "/metadata", "missing required key 'metadata'"),
    ("missing_version", delp("/metadata/rustle_plan_version"),
     "/metadata/rustle_plan_version", "missing required key"),
    ("plays_not_array", setp("/plays", {"play-0": {}}), "/plays", "expected an array of plays"),
    ("total_tasks_string", setp("/total_tasks", "7"), "/total_tasks",
     'expected an integer, got string "7"'),
    ("total_tasks_bool", setp("/total_tasks", True), "/total_tasks", "got boolean true"),
    ("total_tasks_mismatch", setp("/total_tasks", 9), "/total_tasks",
     "total_tasks is 9 but the plays hold 7 distinct tasks"),
    ("missing_task_module", delp(f"{T1}/module"), f"{T1}/module",
     "missing required key 'module'"),
    ("task_args_array", setp(f"{T1}/args", ["src=x"]), f"{T1}/args",
     "expected an object of module arguments"),
    ("task_hosts_string", setp(f"{T1}/hosts", "web1"), f"{T1}/hosts",
     "expected an array of strings"),
    ("task_tag_number", setp(f"{T1}/tags", ["ok", 3]), f"{T1}/tags/1", "got integer 3"),
    ("notify_unknown_handler", setp(f"{T1}/notify", ["restart apache"]), f"{T1}/notify/0",
     "no handler named 'restart apache' in play 'web'"),
    ("task_dependency_cycle", setp("/plays/0/batches/0/tasks/0/dependencies", ["task_2"]),
     "/plays/0/batches/0/tasks/0/dependencies/0",
     "dependency cycle between tasks: task_0 -> task_2 -> task_1 -> task_0"),
    ("task_self_dependency", setp(f"{T1}/dependencies", ["task_1"]), f"{T1}/dependencies/0",
     "task_1 -> task_1"),
    ("task_unknown_dependency", setp(f"{T1}/dependencies", ["task_9"]), f"{T1}/dependencies/0",
     "depends on unknown task 'task_9'"),
    ("batch_dependency_cycle", setp("/plays/1/batches/0/dependencies", ["rolling-1"]),
     "/plays/1/batches/0/dependencies/0", "dependency cycle between batches"),
    ("batch_unknown_dependency", setp("/plays/0/batches/2/dependencies", ["nope"]),
     "/plays/0/batches/2/dependencies/0", "unknown batch 'nope'"),
    ("task_host_outside_play", setp(f"{T1}/hosts", ["web1", "db1"]), f"{T1}/hosts/1",
     "host 'db1' is not a host of play 'web'"),
    ("batch_host_outside_play", setp("/plays/1/batches/1/hosts", ["web2"]),
     "/plays/1/batches/1/hosts/0", "host 'web2' is not a host of play 'db'"),
    ("unknown_module", setp(f"{T1}/module", "community.general.nmcli"), f"{T1}/module",
     "unknown module 'community.general.nmcli'"),
    ("unknown_short_module", setp("/plays/0/handlers/0/module", "servicex"),
     "/plays/0/handlers/0/module", "unknown module 'servicex' in handler 'restart nginx'"),
    ("missing_static_file", setp(f"{T1}/args/src", "missing.conf"), f"{T1}/args/src",
     "no such file 'missing.conf'; tried:"),
    ("missing_template", setp("/plays/0/batches/2/tasks/0/args/src", "nope.j2"),
     "/plays/0/batches/2/tasks/0/args/src", "templates/nope.j2"),
    ("missing_deployment_static_file",
     setp("/binary_deployments/0/embedded_data/static_files/0/src_path", "gone.bin"),
     "/binary_deployments/0/embedded_data/static_files/0/src_path", "no such file 'gone.bin'"),
    ("delegate_to_throttled_handler", both(setp("/plays/0/handlers/0/delegate_to", "localhost"),
                                           setp("/plays/0/handlers/0/throttle", 2)),
     "/plays/0/handlers/0/delegate_to", "on handler 'restart nginx' is not supported"),
    ("ext_register_number", setp(f"{T1}/register", 5), f"{T1}/register",
     "expected a variable name"),
    ("ext_loop_object", setp(f"{T1}/loop", {"a": 1}), f"{T1}/loop", "expected an array or"),
    ("ext_retries_negative", setp(f"{T1}/retries", -1), f"{T1}/retries",
     "expected a non-negative integer"),
    ("ext_become_number", setp(f"{T1}/become", 1), f"{T1}/become", "expected a boolean or"),
    ("play_vars_array", setp("/plays/0/vars", [1]), "/plays/0/vars",
     "expected an object of variables"),
    ("unknown_strategy", setp("/plays/0/strategy", "Parallel"), "/plays/0/strategy",
     'unknown strategy "Parallel"'),
    ("rolling_without_size", setp("/plays/1/strategy", {"Rolling": {}}),
     "/plays/1/strategy/Rolling/batch_size", "missing required key 'batch_size'"),
    ("rolling_zero_size", setp("/plays/1/strategy", {"Rolling": {"batch_size": 0}}),
     "/plays/1/strategy/Rolling/batch_size", "expected an integer >= 1"),
    ("strategy_lowercase", setp("/metadata/planning_options/strategy", "linear"),
     "/metadata/planning_options/strategy", 'unknown strategy "linear"'),
    ("unknown_condition", setp(f"{T1}/conditions/0", {"Unless": {"expression": "x"}}),
     f"{T1}/conditions/0/Unless", 'unknown condition "Unless"'),
    ("condition_two_keys", setp(f"{T1}/conditions/0", {"When": {"expression": "x"},
                                                     "Tag": {"tags": []}}),
     f"{T1}/conditions/0", "exactly one key"),
    ("when_without_expression", setp(f"{T1}/conditions/0", {"When": {"expr": "x"}}),
     f"{T1}/conditions/0/When/expression", "missing required key 'expression'"),
    ("checkmode_string", setp(f"{T1}/conditions/0", {"CheckMode": {"enabled": "yes"}}),
     f"{T1}/conditions/0/CheckMode/enabled", "expected a boolean"),
    ("duration_nanos_too_big", setp(f"{T1}/estimated_duration", {"secs": 1, "nanos": 10**9}),
     f"{T1}/estimated_duration/nanos", "expected nanos in 0..999999999"),
    ("duration_missing_secs", setp("/estimated_duration", {"nanos": 0}),
     "/estimated_duration/secs", "missing required key 'secs'"),
    ("risk_level_lowercase", setp(f"{T1}/risk_level", "low"), f"{T1}/risk_level",
     "expected one of Low, Medium, High, Critical"),
    ("execution_plan_not_json",
     setp("/binary_deployments/0/embedded_data/execution_plan", "{\"group_id\": \"group_0\","),
     "/binary_deployments/0/embedded_data/execution_plan", "execution_plan is not valid JSON"),
    ("execution_plan_array",
     setp("/binary_deployments/0/embedded_data/execution_plan", "[1, 2]"),
     "/binary_deployments/0/embedded_data/execution_plan", "encoding an object"),
    ("deployment_unknown_task", setp("/binary_deployments/1/task_ids", ["task_0", "task_7"]),
     "/binary_deployments/1/task_ids/1", "names unknown task 'task_7'"),
    ("deployment_missing_tasks", delp("/binary_deployments/0/tasks"),
     "/binary_deployments/0/tasks", "missing required key 'tasks'"),
    ("execution_mode_unknown", setp("/binary_deployments/0/execution_mode", "Remote"),
     "/binary_deployments/0/execution_mode", "expected one of Controller, Standalone, Hybrid"),
    ("target_arch_without_os",
     delp("/binary_deployments/0/compilation_requirements/target_os"),
     "/binary_deployments/0/compilation_requirements/target_os", "missing required key"),
    ("forks_zero", setp("/metadata/planning_options/forks", 0),
     "/metadata/planning_options/forks", "expected an integer >= 1"),
    ("score_string", setp("/parallelism_score", "high"), "/parallelism_score",
     "expected a number"),
    ("duplicate_batch_id", setp("/plays/0/batches/1/batch_id", "batch-0"),
     "/plays/0/batches/1/batch_id", "batch id 'batch-0' appears twice"),
    ("handler_missing_name", delp("/plays/0/handlers/0/name"), "/plays/0/handlers/0/name",
     "missing required key 'name'"),
    ("src_number", setp(f"{T1}/args/src", 42), f"{T1}/args/src", "expected a string"),
]

# Raw byte-level breakage: (name, bytes from rich.json -> bytes, pointer, fragment)
RAW: list[tuple[str, Callable[[bytes], bytes], str, str]] = [
    ("truncated", lambda b: b[: len(b) // 2], "/", "not valid JSON at line"),
    ("truncated_last_brace", lambda b: b.rstrip()[:-1], "/", "not valid JSON at line"),
    ("empty", lambda b: b"", "/", "the plan is empty"),
    ("not_utf8", lambda b: b"\xff\xfe" + b"\x00" * 3 + b, "/", "not UTF-8"),
    ("nan", lambda b: b.replace(b'"parallelism_score": 0.5', b'"parallelism_score": NaN'), "/",
     "NaN is not valid JSON"),
    ("top_is_array", lambda b: b"[" + b + b"]", "/", "expected a plan object"),
    ("trailing_garbage", lambda b: b + b"\n}", "/", "Extra data"),
]


def dump(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2) + "\n").encode()


def build() -> dict[str, bytes]:
    """Relative path -> file content, for every generated file."""
    out: dict[str, bytes] = {"good/rich.json": dump(rich()), "good/legacy.json": dump(legacy())}
    expected: dict[str, dict[str, str]] = {}
    for name, mutate, pointer, fragment in BROKEN:
        doc = copy.deepcopy(rich())
        mutate(doc)
        out[f"broken/{name}.json"] = dump(doc)
        expected[f"{name}.json"] = {"pointer": pointer, "message": fragment}
    base = out["good/rich.json"]
    for name, mangle, pointer, fragment in RAW:
        out[f"broken/{name}.json"] = mangle(base)
        expected[f"{name}.json"] = {"pointer": pointer, "message": fragment}
    out["broken/expected.json"] = (json.dumps(expected, indent=2, sort_keys=True) + "\n").encode()
    return out


def main() -> int:
    for rel, content in build().items():
        path = HERE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    print(f"wrote {len(build())} files under {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
