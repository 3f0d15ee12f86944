"""Plan loading: every rustle-plan fixture, golden fields, stdin, legacy shapes, file lookup."""

from __future__ import annotations

import hashlib
import io
import json
import os
import sys
from pathlib import Path

import pytest

from rustle_deploy.errors import PlanError
from rustle_deploy.model import Condition, Strategy
from rustle_deploy.plan import load_plan, parse_plan, resolve_source
from rustle_deploy.plan.validate import check_hosts

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures" / "rustle-plan"
DATA = REPO / "tests" / "data" / "plans"
FIXTURE_PLANS = sorted(FIXTURES.glob("*.json"))


def test_fixtures_are_present() -> None:
    assert len(FIXTURE_PLANS) >= 6, f"no rustle-plan fixtures under {FIXTURES}"


@pytest.mark.parametrize("path", FIXTURE_PLANS, ids=lambda p: p.name)
def test_every_fixture_plan_is_accepted(path: Path) -> None:
    plan = load_plan(str(path))
    data = path.read_bytes()
    assert plan.sha256 == hashlib.sha256(data).hexdigest()
    assert plan.source == str(path)
    assert os.path.realpath(plan.base_dir) == str(path.parent.resolve())
    assert plan.total_tasks == sum(len(plan.play_tasks(p)) for p in plan.plays)
    for play in plan.plays:
        for batch in play.batches:
            for task in batch.tasks:
                resolved = resolve_source(plan, task)
                if task.short_module == "copy" and "src" in task.args:
                    assert resolved is not None and os.path.isfile(resolved)
                    assert resolved.startswith(str(FIXTURES.resolve()))


def test_golden_file_operations_plan() -> None:
    plan = load_plan(str(FIXTURES / "file_operations_plan.json"))
    assert plan.rustle_plan_version == "0.1.0"
    assert plan.created_at == "2025-07-12T21:56:49.488570Z"
    assert plan.options.strategy == Strategy("BinaryHybrid")
    assert plan.options.forks == 50 and plan.options.binary_threshold == 5
    assert plan.hosts == ("localhost",)
    (play,) = plan.plays
    assert (play.play_id, play.name, play.hosts) == (
        "play-0", "Comprehensive file operations playbook", ("localhost",))
    assert play.pointer == "/plays/0"
    (batch,) = play.batches
    assert batch.batch_id == "binary-batch" and len(batch.tasks) == 5
    copy_task = batch.tasks[2]
    assert copy_task.module == "copy" and copy_task.execution_order == 2
    assert copy_task.pointer == "/plays/0/batches/0/tasks/2"
    assert copy_task.args["src"] == "tests/fixtures/files/test_files/sample.conf"
    assert os.path.realpath(str(resolve_source(plan, copy_task))) == str(
        (FIXTURES / "tests/fixtures/files/test_files/sample.conf").resolve())
    link = batch.tasks[4]
    assert link.conditions == (Condition("When", 'ansible_system != "Windows"'),)
    assert resolve_source(plan, link) is None  # a file task has no local source
    assert batch.tasks[0].conditions == (
        Condition("Tag", ("ansible", "files", "copy", "permissions")),)
    (dep,) = plan.binary_deployments
    assert dep.task_ids == ("task_0", "task_1", "task_2", "task_3", "task_4")
    assert dep.target_triple == "x86_64-unknown-linux-gnu"
    assert dep.embedded_plan is not None and dep.embedded_plan["group_id"] == "group_0"
    assert len(dep.embedded_plan["tasks"]) == 5
    (static,) = dep.static_files
    assert static.checksum is None and static.size == 1024
    assert dep.facts_required == ("ansible_user_gid", "ansible_user_uid")


def test_darwin_fixture_builds_apple_triple() -> None:
    plan = load_plan(str(FIXTURES / "file_operations_playbook_with_facts_plan.json"))
    assert plan.binary_deployments[0].target_triple == "aarch64-apple-darwin"


def test_handlers_and_notify_of_example_plan() -> None:
    plan = load_plan(str(FIXTURES / "example_rustle_plan_output.json"))
    play = plan.plays[0]
    (handler,) = play.handlers
    assert (handler.task_id, handler.name, handler.module) == ("task_0", "restart service",
                                                                "service")
    assert handler.pointer == "/plays/0/handlers/0"
    assert play.batches[0].tasks[2].notify == ("restart service",)


def test_empty_play_hosts_fall_back_to_plan_hosts() -> None:
    plan = load_plan(str(FIXTURES / "package_management_plan.json"))
    assert plan.plays[0].hosts == () and plan.hosts == ("localhost",)
    doc = json.loads((FIXTURES / "package_management_plan.json").read_bytes())
    doc["plays"][0]["batches"][0]["tasks"][0]["hosts"] = ["elsewhere"]
    plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=str(FIXTURES))
    with pytest.raises(PlanError) as err:
        check_hosts(plan)
    assert err.value.pointer == "/plays/0/batches/0/tasks/0/hosts/0"
    assert "'elsewhere' is not a host of play" in err.value.message
    assert "localhost" in str(err.value.hint)


def test_rich_plan_every_feature() -> None:
    plan = load_plan(str(DATA / "good" / "rich.json"))
    web, db = plan.plays
    assert web.strategy == Strategy("Linear")
    assert db.strategy == Strategy("Rolling", 1) and db.serial == (1,)
    assert plan.options.strategy == Strategy("Rolling", 1)
    assert web.vars == {"workdir": "/srv/app", "lenient": False}
    kinds = {c.kind: c.value for b in web.batches for t in b.tasks for c in t.conditions}
    assert kinds == {
        "When": "ansible_os_family == 'Debian'", "Tag": ("pkg",), "CheckMode": True,
        "SkipTag": ("never",), "Host": "web1", "Skip": "skip_me", "Only": ("web2",)}
    tasks = plan.play_tasks(web)
    assert [t.task_id for t in tasks] == ["task_0", "task_1", "task_2", "task_3", "task_4"]
    assert tasks[0].extras == {"become": True, "retries": 3, "delay": 2,
                               "until": "result is succeeded", "register": "result"}
    assert tasks[3].extras["loop"] == ["a", "b"]
    assert tasks[3].extras["vars"] == {"greeting": "hi"}
    assert "can_run_parallel" not in tasks[3].extras  # only the extension keys
    assert tasks[1].dependencies == ("task_0",)
    # Rolling: each task repeated per host slice, counted once
    assert len(db.batches) == 2 and [t.task_id for t in plan.play_tasks(db)] == [
        "task_0", "task_1"]
    assert [t.hosts for t in plan.play_tasks(db, "db2")] == [("db2",), ("db2",)]
    assert plan.total_tasks == 7
    assert web.handlers[1].extras == {"listen": "app changed"}
    current, legacy = plan.binary_deployments
    assert current.target_triple == "x86_64-unknown-linux-gnu"
    assert current.embedded_plan == {"group_id": "group_0", "hosts": ["web1", "web2"],
                                     "tasks": [{"task_id": "task_0", "module": "apt"}]}
    assert current.variables == {"a": 1}
    assert legacy.task_ids == ("task_0", "task_1") and legacy.execution_mode == "Standalone"
    assert legacy.target_triple == "aarch64-unknown-linux-musl"
    template = tasks[2]
    assert resolve_source(plan, template) == str(
        (DATA / "files" / "templates" / "app.conf.j2").resolve())
    assert resolve_source(plan, tasks[4]) is None  # content=


def test_legacy_plan() -> None:
    plan = load_plan(str(DATA / "good" / "legacy.json"))
    assert plan.options.strategy == Strategy("SshOnly")
    assert plan.plays[0].strategy == Strategy("HostPinned")
    assert plan.created_at is None
    (dep,) = plan.binary_deployments
    assert dep.task_ids == ("t0",) and dep.embedded_plan is None
    assert dep.binary_name == "rustle-runner-group_0" and dep.execution_mode == "Controller"
    assert dep.target_triple == "x86_64-unknown-linux-musl"
    task = plan.plays[0].batches[0].tasks[0]
    assert task.conditions == (Condition("Only", ("h1",)), Condition("Skip", "x"))


def test_unknown_keys_are_ignored() -> None:
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    doc["future"] = {"x": [1]}
    doc["plays"][0]["future_play_key"] = 1
    doc["plays"][0]["batches"][0]["tasks"][0]["future_task_key"] = "x"
    plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=str(FIXTURES))
    assert plan.total_tasks == 3
    assert plan.plays[0].batches[0].tasks[0].extras == {}


def test_load_from_stdin() -> None:
    data = (FIXTURES / "test_verbose.json").read_bytes()
    plan = load_plan("-", stdin=io.BytesIO(data))
    assert plan.source == "<stdin>" and plan.base_dir == os.getcwd()
    assert plan.sha256 == hashlib.sha256(data).hexdigest()
    with pytest.raises(PlanError) as err:
        load_plan("-", stdin=io.BytesIO(data[:100]))
    assert str(err.value).startswith("<stdin>: /: not valid JSON at line")


def test_stdin_resolves_sources_against_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = (FIXTURES / "file_operations_plan.json").read_bytes()
    with pytest.raises(PlanError) as err:
        load_plan("-", stdin=io.BytesIO(data))  # cwd is not the fixtures dir
    assert err.value.pointer == "/plays/0/batches/0/tasks/2/args/src"
    monkeypatch.chdir(FIXTURES)
    assert load_plan("-", stdin=io.BytesIO(data)).base_dir == str(FIXTURES.resolve())


def test_missing_plan_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(PlanError) as err:
        load_plan(str(missing))
    assert str(err.value).startswith(f"{missing}: /: cannot read the plan: No such file")
    assert err.value.hint
    with pytest.raises(PlanError):
        load_plan(str(tmp_path))  # a directory


def test_error_names_file_pointer_expectation_and_hint() -> None:
    doc = json.loads((FIXTURES / "example_rustle_plan_output.json").read_bytes())
    doc["plays"][0]["batches"][0]["tasks"][2]["notify"] = ["restart nginx"]
    with pytest.raises(PlanError) as err:
        parse_plan(json.dumps(doc).encode(), source="plan.json", base_dir=str(FIXTURES))
    assert str(err.value) == (
        "plan.json: /plays/0/batches/0/tasks/2/notify/0: no handler named 'restart nginx' in "
        "play 'Simple test playbook'\nhint: handlers of this play: 'restart service'")
    assert err.value.exit_code == 2
    assert err.value.file == "plan.json"


def test_json_syntax_error_is_chained() -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(b'{"plays": [', source="p.json", base_dir=".")
    assert isinstance(err.value.__cause__, json.JSONDecodeError)
    assert err.value.pointer == "/"
    assert "line 1, column 12" in err.value.message


def test_deep_nesting_is_a_plan_error() -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(b"[" * 200_000, source="p.json", base_dir=".")
    assert err.value.pointer == "/"


def test_pointer_escapes_keys() -> None:
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    doc["plays"][0]["batches"][0]["tasks"][0]["conditions"] = [{"a/b~c": {}}]
    with pytest.raises(PlanError) as err:
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert err.value.pointer == "/plays/0/batches/0/tasks/0/conditions/0/a~1b~0c"


# -- static file lookup -------------------------------------------------------------------

def _one_task_plan(module: str, args: dict[str, object]) -> bytes:
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    task = doc["plays"][0]["batches"][0]["tasks"][0]
    task["module"], task["args"] = module, args
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("module", "subdir"), [
    ("copy", "files"), ("ansible.builtin.copy", "files"), ("template", "templates"),
    ("ansible.builtin.template", "templates")])
def test_search_order(tmp_path: Path, module: str, subdir: str) -> None:
    base, extra = tmp_path / "base", tmp_path / "extra"
    (extra / subdir).mkdir(parents=True)
    (extra / subdir / "a.conf").write_text("from extra/sub")
    data = _one_task_plan(module, {"src": "a.conf", "dest": "/x"})
    base.mkdir()
    with pytest.raises(PlanError) as err:
        parse_plan(data, source="p.json", base_dir=str(base))
    tried = [str(base / "a.conf"), str(base / subdir / "a.conf")]
    assert f"tried: {', '.join(tried)}" in err.value.message
    assert "--files-dir" in str(err.value.hint)

    plan = parse_plan(data, source="p.json", base_dir=str(base), files_dirs=[str(extra)])
    task = plan.plays[0].batches[0].tasks[0]
    assert resolve_source(plan, task) == str(extra / subdir / "a.conf")
    (extra / "a.conf").write_text("from extra")
    assert resolve_source(plan, task) == str(extra / "a.conf")
    (base / subdir).mkdir()
    (base / subdir / "a.conf").write_text("from base/sub")
    assert resolve_source(plan, task) == str(base / subdir / "a.conf")
    (base / "a.conf").write_text("from base")
    assert resolve_source(plan, task) == str(base / "a.conf")
    assert resolve_source(plan, task, files_dirs=()) == str(base / "a.conf")


def test_absolute_src(tmp_path: Path) -> None:
    f = tmp_path / "abs.txt"
    f.write_text("x")
    plan = parse_plan(_one_task_plan("copy", {"src": str(f), "dest": "/x"}), source="p.json",
                      base_dir="/nonexistent")
    assert resolve_source(plan, plan.plays[0].batches[0].tasks[0]) == str(f)
    with pytest.raises(PlanError) as err:
        parse_plan(_one_task_plan("copy", {"src": str(tmp_path / "no"), "dest": "/x"}),
                   source="p.json", base_dir=str(tmp_path))
    assert f"tried: {tmp_path / 'no'}" in err.value.message


@pytest.mark.parametrize("args", [
    {"content": "x", "dest": "/x"},
    {"src": "/remote/file", "dest": "/x", "remote_src": True},
    {"src": "/remote/file", "dest": "/x", "remote_src": "yes"},
    {"src": "{{ role_path }}/a.conf", "dest": "/x"},
])
def test_no_local_source_needed(args: dict[str, object]) -> None:
    plan = parse_plan(_one_task_plan("copy", args), source="p.json", base_dir="/nonexistent")
    assert resolve_source(plan, plan.plays[0].batches[0].tasks[0]) is None


def test_template_must_be_a_file(tmp_path: Path) -> None:
    (tmp_path / "templates" / "d.j2").mkdir(parents=True)
    with pytest.raises(PlanError):
        parse_plan(_one_task_plan("template", {"src": "d.j2", "dest": "/x"}), source="p.json",
                   base_dir=str(tmp_path))
    plan = parse_plan(_one_task_plan("copy", {"src": "templates/d.j2/", "dest": "/x"}),
                      source="p.json", base_dir=str(tmp_path))  # copy of a directory is fine
    assert resolve_source(plan, plan.plays[0].batches[0].tasks[0]) is not None


# -- semantics worth pinning --------------------------------------------------------------

def test_delegate_to_self_the_controller_or_an_inventory_host_is_accepted() -> None:
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    task = doc["plays"][0]["batches"][0]["tasks"][0]
    for target in ("{{ inventory_hostname }}", "{{inventory_hostname}}", "localhost"):
        task["delegate_to"] = target
        plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
        assert plan.plays[0].batches[0].tasks[0].extras["delegate_to"] == target
    task["delegate_to"] = "db1"  # another inventory host: a phase run over its connection
    plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert plan.plays[0].batches[0].tasks[0].extras["delegate_to"] == "db1"
    check_hosts(plan, set)  # every name is a host
    with pytest.raises(PlanError, match="delegate_to 'db1' .*is not a host of the inventory") as err:
        check_hosts(plan, lambda names: set() if list(names) == ["db1"] else set(names))
    assert err.value.pointer.endswith("/delegate_to")
    # a host each call names: ansible-core on the controller renders it (bridge/action.py)
    task["delegate_to"] = "{{ groups.db[0] }}"
    plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert plan.plays[0].batches[0].tasks[0].extras["delegate_to"] == "{{ groups.db[0] }}"


def test_a_host_each_call_names_without_ansible_core_is_refused_with_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ansible", None)  # the controller's Python without ansible-core
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    doc["plays"][0]["batches"][0]["tasks"][0]["delegate_to"] = "{{ item }}"
    with pytest.raises(PlanError, match="rendered by ansible-core on the controller, which is not installed") as err:
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert err.value.pointer.endswith("/delegate_to") and "pip install 'rustle-deploy[ansible]'" in str(err.value.hint)


def test_task_ids_repeat_across_plays() -> None:
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    doc["plays"].append(json.loads(json.dumps(doc["plays"][0])) | {"play_id": "play-1"})
    with pytest.raises(PlanError, match="total_tasks is 3 but the plays hold 6"):
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    doc["total_tasks"] = 6
    plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert [p.play_id for p in plan.plays] == ["play-0", "play-1"]


def test_duplicate_task_in_one_batch() -> None:
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    tasks[1]["task_id"] = "task_0"
    doc["total_tasks"] = 2
    with pytest.raises(PlanError) as err:
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert err.value.pointer == "/plays/0/batches/0/tasks/1/task_id"


def test_handler_notifies_listen_topic() -> None:
    doc = json.loads((FIXTURES / "example_rustle_plan_output.json").read_bytes())
    doc["plays"][0]["handlers"][0]["listen"] = ["web changed"]
    doc["plays"][0]["batches"][0]["tasks"][2]["notify"] = ["web changed"]
    parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")


def test_rolling_play_without_batches_is_a_lower_bound() -> None:
    # rustle-plan's Rolling strategy writes no batches when it resolved no hosts for a play,
    # but still counts the play's tasks in total_tasks.
    doc = json.loads((FIXTURES / "package_management_plan.json").read_bytes())
    doc["plays"][0]["strategy"] = {"Rolling": {"batch_size": 2}}
    doc["plays"][0]["batches"] = []
    plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert plan.plays[0].strategy == Strategy("Rolling", 2) and plan.total_tasks == 5
    doc["plays"].append(json.loads((FIXTURES / "test_verbose.json").read_bytes())["plays"][0])
    doc["total_tasks"] = 8  # 5 unseen + 3
    assert parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".").total_tasks == 8
    doc["total_tasks"] = 2  # fewer than the 3 that are there
    with pytest.raises(PlanError, match="total_tasks is 2 but the plays hold 3"):
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")


def test_unknown_dependency_is_tolerated_after_tag_filtering() -> None:
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    doc["plays"][0]["batches"][0]["tasks"][1]["dependencies"] = ["task_filtered_out"]
    with pytest.raises(PlanError, match="unknown task 'task_filtered_out'"):
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    doc["metadata"]["planning_options"]["tags"] = ["web"]
    parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")


def test_free_strategy_shape() -> None:
    # What rustle-plan writes for Free: a parallel batch, then chained sequential batches.
    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    play = doc["plays"][0]
    t0, t1, t2 = play["batches"][0]["tasks"]
    play["strategy"] = "Free"
    play["batches"] = [
        {"batch_id": "parallel-batch", "hosts": ["localhost"], "tasks": [t0],
         "parallel_groups": [], "dependencies": [], "estimated_duration": None},
        {"batch_id": "sequential-batch-0", "hosts": ["localhost"], "tasks": [t1],
         "parallel_groups": [], "dependencies": ["parallel-batch"], "estimated_duration": None},
        {"batch_id": "sequential-batch-1", "hosts": ["localhost"], "tasks": [t2],
         "parallel_groups": [], "dependencies": ["sequential-batch-0"],
         "estimated_duration": dur(1)},
    ]
    plan = parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=".")
    assert [t.task_id for t in plan.play_tasks(plan.plays[0])] == ["task_0", "task_1", "task_2"]


def dur(secs: int) -> dict[str, int]:
    return {"secs": secs, "nanos": 0}


PLAYBOOKS = FIXTURES.parent / "rustle-parse"


@pytest.mark.parametrize(
    "playbook",
    sorted(str(p.relative_to(PLAYBOOKS)) for p in PLAYBOOKS.rglob("*.yml") if p.parent.name != "inventories"),
)
def test_a_playbook_given_as_plan_gets_a_pointed_error(playbook: str) -> None:
    """Every playbook, include and role file of the upstream parser's fixtures is refused with
    a hint to run rustle-plan (playbooks as direct input are a later feature)."""
    path = PLAYBOOKS / playbook
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    assert err.value.exit_code == 2
    assert str(path) in str(err.value)
    if path.read_text().lstrip().startswith(("---", "- ")) and "hosts:" in path.read_text():
        assert "Ansible playbook" in err.value.message and "rustle-plan" in str(err.value.hint)


def test_validation_reports_every_problem_in_one_run(tmp_path: Path) -> None:
    """A plan with several problems names each with its JSON pointer, in plan order."""
    from rustle_deploy.errors import PlanErrors

    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    tasks[0]["module"] = "no_such_module"
    tasks[1].update(module="copy", args={"src": "missing.txt", "dest": "/x"})
    tasks[2]["notify"] = ["nobody"]
    with pytest.raises(PlanErrors) as err:
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=str(tmp_path))
    assert [p.pointer for p in err.value.problems] == [
        "/plays/0/batches/0/tasks/0/module", "/plays/0/batches/0/tasks/1/args/src",
        "/plays/0/batches/0/tasks/2/notify/0"]
    assert err.value.pointer == "/plays/0/batches/0/tasks/0/module"
    text = str(err.value)
    assert text.startswith("p.json: /plays/0/batches/0/tasks/0/module: unknown module")
    assert text.endswith("hint: 3 problems in the plan: fix them all, then validate again")
    assert "no such file 'missing.txt'" in text and "no handler named 'nobody'" in text


def test_refused_plugins_are_refused_and_unknown_ones_warned_with_their_pointers(tmp_path: Path) -> None:
    """A plugin ansible-core has and the runtime does not is refused; one no plugin provides
    fails only when evaluated, as in Ansible: a warning (tests/data/playbooks/late_plugin_errors)."""
    from rustle_deploy.errors import PlanErrors

    doc = json.loads((FIXTURES / "test_verbose.json").read_bytes())
    tasks = doc["plays"][0]["batches"][0]["tasks"]
    tasks[0]["args"] = {"msg": "{{ x | community.general.json_query('a') }} {{ lookup('url', 'https://x') }}"}
    tasks[1]["conditions"] = [{"When": {"expression": "x is vault_encrypted or x | no_such_filter"}}]
    tasks[2]["args"] = {"msg": "{{ [1] | zip([2]) }} {{ query('sequence', '1-3') }} {{ 1 is ansible.builtin.truthy }}"
                               " {{ lookup('ansible.builtin.nope') }}"}
    warnings: list[PlanError] = []
    with pytest.raises(PlanErrors) as err:
        parse_plan(json.dumps(doc).encode(), source="p.json", base_dir=str(tmp_path), warnings=warnings)
    found = [(p.pointer, p.detail) for p in err.value.problems]
    assert found == [
        ("/plays/0/batches/0/tasks/0/args/msg", "filter 'community.general.json_query' is not supported by "
                                                "rustle-deploy: no installed collection has this filter "
                                                "(ansible-core found none by that name)"),
        ("/plays/0/batches/0/tasks/0/args/msg", "lookup 'url' is not supported by rustle-deploy: it "
                                                "fetches from the controller"),
        ("/plays/0/batches/0/tasks/1/conditions/0", "test 'vault_encrypted' is not supported by rustle-deploy: "
                                                    "the controller decrypts !vault values as it loads them: "
                                                    "they are no longer vaulted"),
    ]
    assert [(p.pointer, p.detail) for p in warnings] == [
        ("/plays/0/batches/0/tasks/1/conditions/0", "filter 'no_such_filter' is unknown: the task fails when "
                                                    "the host evaluates it, as under ansible-playbook"),
        ("/plays/0/batches/0/tasks/2/args/msg", "lookup 'ansible.builtin.nope' is unknown: the task fails when "
                                                "the host evaluates it, as under ansible-playbook"),
    ]


@pytest.mark.ansible
def test_every_ansible_builtin_plugin_is_offered_or_refused() -> None:
    """Only a name ansible-core does not have is left to fail when evaluated: each of its
    ansible.builtin filters, tests and lookups is one the runtime offers or one it refuses."""
    loader = pytest.importorskip("ansible.plugins.loader")
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    from rustle_deploy.runtime_index import runtime_plugins

    if AnsibleCollectionConfig.collection_finder is None:  # an oracle test of this worker may have set it up
        loader.init_plugin_loader()
    known = runtime_plugins()
    kinds = {"filter": loader.filter_loader, "test": loader.test_loader, "lookup": loader.lookup_loader}
    for kind, plugins in kinds.items():
        names = {p.ansible_name.rsplit(".", 1)[-1] for p in plugins.all(class_only=kind == "lookup")}
        assert len(names) > 20, kind
        missing = sorted(n for n in names if n not in known[kind] and n not in known["refused"][kind])
        assert missing == [], f"ansible.builtin {kind}s neither offered nor refused: {missing}"
