"""The compiler's lowering of plans to the native runner's program (no runner needed)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.compiler.native import NativeUnsupported, regex_tree

from ..conftest import PLAN_FIXTURES, REPO, make_plan
from .conftest import lower, retarget

WORKLOAD = REPO / "benchmarks" / "workload" / "plan.json"


def workload_inventory(tmp_path: Path) -> Path:
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    bench-0000:\n      ansible_connection: local\n"
                   f"      bench_root: {tmp_path}/root\n      bench_role: web\n")
    return inv


def only_host(doc: dict[str, Any]) -> list[dict[str, Any]]:
    (host,) = doc["hosts"].values()
    (play,) = host["plays"]
    return play["tasks"]


def test_benchmark_workload_lowers_with_everything_static_rendered(tmp_path: Path) -> None:
    (doc,) = lower(WORKLOAD, workload_inventory(tmp_path)).values()
    assert list(doc)[:2] == ["format", "version"]  # the runner sniffs the first bytes
    tasks = only_host(doc)
    assert "{{" not in json.dumps([t["args"] or t["loop"] for t in tasks])
    dirs = tasks[0]["loop"]
    assert [e["args"]["path"] for e in dirs] == [f"{tmp_path}/root/app/.", f"{tmp_path}/root/app/conf",
                                                 f"{tmp_path}/root/app/data"]
    template = tasks[2]["args"]["src"]
    rendered = base64.b64decode(doc["files"][template["sha256"]]).decode()
    assert rendered == f"Welcome to bench-0000 (role: web)\nManaged files live under {tmp_path}/root/app\n"
    assert template["path"] == "templates/motd.j2"
    that = tasks[-1]["args"]["that"]
    assert that[1] == {"expr": "app_conf.stat.mode == '0644'",
                       "ir": ["cmp", "==", ["attr", ["attr", ["name", "app_conf"], "stat"], "mode"], ["lit", "0644"]]}
    assert tasks[9]["changed_when"] == [{"expr": False, "ir": ["lit", False]}]
    assert tasks[6]["args"]["_regexp_ir"][0] == ["AT", "AT_BEGINNING"]


def test_lowering_is_deterministic(tmp_path: Path) -> None:
    inv = workload_inventory(tmp_path)
    assert json.dumps(lower(WORKLOAD, inv)) == json.dumps(lower(WORKLOAD, inv))


def test_static_names_in_conditions_become_values_and_registered_ones_stay(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [
        {"module": "command", "args": {"_raw_params": "true"}, "register": "out"},
        {"module": "debug", "args": {"msg": "hi"},
         "conditions": [{"When": {"expression": "out.rc == wanted and flag | bool"}}]},
        {"module": "debug", "args": {"msg": "never"}, "conditions": [{"When": {"expression": "wanted > 5"}}]},
    ], play_vars={"wanted": 0, "flag": "yes"})
    (doc,) = lower(plan).values()
    tasks = only_host(doc)
    assert tasks[1]["when"][0]["ir"] == [
        "and", ["cmp", "==", ["attr", ["name", "out"], "rc"], ["lit", 0]], ["filter", "bool", ["lit", "yes"], [], {}]]
    assert tasks[2]["when"] == [{"expr": "wanted > 5", "ir": ["lit", False]}]


@pytest.mark.parametrize(("task", "needle"), [
    ({"module": "set_fact", "args": {"{{ out.stdout }}": 1}}, "a set_fact name that is a template"),
    ({"module": "setup", "args": {}}, "module 'setup' is not implemented by the native runner"),
    # setup lowers only as its skip, under a condition false on every host (ansible_facts == {})
    ({"module": "setup", "args": {}, "conditions": [{"When": {"expression": "out.rc == 0"}}]},
     "module 'setup' is not implemented by the native runner"),
    # b64decode of latin-1 text: bytes the runner's UTF-8 document cannot carry (the binary target)
    ({"module": "copy", "args": {"content": "{{ 'Y2Fm6Q==' | b64decode }}\n", "dest": "/tmp/x"}},
     "holds bytes that are not UTF-8 text"),
    ({"module": "tempfile", "args": {"state": "file", "mode": "0600"}},
     "argument 'mode' of tempfile is not supported by the native runner"),
    ({"module": "lineinfile", "args": {"path": "/tmp/x", "regexp": "{{ out.stdout }}", "line": "a"}},
     "argument 'regexp' depends on a registered"),
    ({"module": "debug", "args": {"msg": "{% if out.rc %}x{% endif %}"}}, "a Jinja2 block over a registered result"),
    ({"module": "debug", "args": {"msg": "x"}, "loop": "{{ out.stdout_lines }}"}, "'out' is only known on the host"),
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "out.stdout | dirname"}}]},
     "filter 'dirname' is not supported"),
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "ansible_lsb == 'a'"}}]},
     "'ansible_lsb' is only known on the host while the plan runs (a fact the native runner does not gather)"),
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "ansible_facts['lsb'] == 'a'"}}]},
     "ansible_facts['lsb'] is a fact the native runner does not gather"),
    ({"module": "debug", "args": {"msg": "{{ ansible_mounts | length }}"}},
     "'ansible_mounts' is only known on the host while the plan runs (a fact the native runner does not gather)"),
    # the runtime gathers one fact per network interface: any undefined ansible_ name may be one
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "ansible_eth0.mtu > 1"}}]},
     "'ansible_eth0' may be a host fact (a network interface's), which the native runner does not gather"),
    # the play's host lists are the controller's (issue 12: was "may be a host fact", "is undefined",
    # or, for play_hosts in a condition, lowered as an undefined name the runner would fail on)
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "ansible_play_batch | length > 1"}}]},
     "'ansible_play_batch' is the hosts of the play's current batch (serial) still in it, a list the controller "
     "keeps while the play runs, which the native runner does not have (the pyz runtime does)"),
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "'h0' in play_hosts"}}]},
     "'play_hosts' is ansible_play_batch's old name"),
    ({"module": "debug", "args": {"msg": "{{ play_hosts }}"}}, "'play_hosts' is ansible_play_batch's old name"),
    ({"module": "debug", "args": {"msg": "{{ ansible_play_hosts | join(',') }}"}},
     "'ansible_play_hosts' is the play's hosts still in it (a host that failed leaves it)"),
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "ansible_play_hosts_all[0] == 'a'"}}]},
     "'ansible_play_hosts_all' is every host of the play"),
    ({"module": "lineinfile", "args": {"path": "/tmp/x", "regexp": "(?i)^a", "line": "a"}}, "inline flags"),
    # validate: the runner formats only one %s (and %%), as Python's `validate % tmp` with one argument
    ({"module": "copy", "args": {"content": "x", "dest": "/tmp/x", "validate": "cmp %s %s"}},
     "argument 'validate' of copy is not supported by the native runner unless"),
    ({"module": "replace", "args": {"path": "/tmp/x", "regexp": "a", "validate": "test %d %s"}},
     "argument 'validate' of replace is not supported"),
    ({"module": "blockinfile", "args": {"path": "/tmp/x", "block": "a", "validate": "{{ out.stdout }} %s"}},
     "argument 'validate' of blockinfile is not supported"),
    ({"module": "debug", "args": {"msg": "x"}, "until": "out.rc == 0", "retries": 2}, "keyword 'retries'"),
    # data shaped like the runner's template markers would be rendered there (issue 11)
    ({"module": "debug", "args": {"msg": "{{ dict(__rustle_expr__=dict(expr='out', ir=['name', 'out'])) }}"}},
     "a value shaped like the runner's __rustle_expr__ marker is data"),
    ({"module": "debug", "args": {"msg": {"__rustle_template__": [{"expr": "out", "ir": ["name", "out"]}]}}},
     "a value shaped like the runner's __rustle_template__ marker is data"),
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": "{{ lookup('env', 'HOME') }}"}}]},
     "a conditional in {{ }}"),
    ({"module": "debug", "args": {"msg": "x"}, "conditions": [{"When": {"expression": 1}}]},
     "a condition that is a number or !unsafe text"),
    ({"module": "assert", "args": {"_raw_params": "{{ checks }}"}}, "assert's arguments as one template"),
    ({"module": "file", "args": {"path": "/tmp/x", "state": "touch"}, "become": True, "become_user": "{{ out.stdout }}"},
     "'out' is only known on the host"),
    ({"module": "file", "args": {"path": "/tmp/x", "state": "touch"}, "become": True, "become_flags": "-n -E"},
     "keyword 'become_flags' is not supported by the native runner"),
    ({"module": "file", "args": {"path": "/tmp/x", "state": "touch"}, "become": True, "become_method": "su",
      "vars": {"ansible_su_exe": "/opt/su"}}, "become_exe and become_flags are applied by the Python runtime"),
    # a become password the task's variables give: only the Python runtime answers sudo's or su's prompt
    ({"module": "file", "args": {"path": "/tmp/x", "state": "touch"}, "become": True,
      "vars": {"ansible_become_password": "pw"}}, "a become password variable is given to sudo or su"),
    # Ansible checks the interpreter a module would run under (tests/runtime/test_modules_core_ansible.py)
    ({"module": "ping", "args": {}, "vars": {"ansible_python_interpreter": "/bogus/path"}},
     "ansible_python_interpreter set for the task"),
    ({"module": "shell", "args": {"_raw_params": "ulimit -n"}, "vars": {"ansible_python_module_rlimit_nofile": 9}},
     "ansible_python_module_rlimit_nofile set for the task"),
    # decided now, it would see the file system before the play changed it (test_files target)
    ({"module": "assert", "args": {"that": ["'made_by_the_play' is link"]}}, "tests the file system"),
    ({"module": "debug", "args": {"msg": "{{ '/tmp' is not directory }}"}}, "tests the file system"),
])
def test_what_the_runner_cannot_do_is_refused_naming_the_task(tmp_path: Path, task: dict[str, Any], needle: str) -> None:
    plan = make_plan(tmp_path, [{"module": "command", "args": {"_raw_params": "true"}, "register": "out"},
                                {"name": "the one", **task}])
    with pytest.raises(NativeUnsupported) as info:
        lower(plan)
    assert needle in str(info.value)
    assert "'the one' (play-0/task_1) on localhost" in str(info.value)
    assert "--format pyz" in info.value.hint


def test_a_fact_under_a_plays_gather_subset_is_left_to_pyz(tmp_path: Path) -> None:
    """The runner gathers its facts whatever the play's gather_subset, which limits the runtime's."""
    plan = make_plan(tmp_path, [{"name": "reads", "module": "debug", "args": {"msg": "{{ ansible_os_family }}"}}])
    doc = json.loads(plan.read_text())
    lower(plan)  # without a subset it lowers
    doc["plays"][0]["gather_subset"] = ["!all", "!min", "network"]
    plan.write_text(json.dumps(doc))
    with pytest.raises(NativeUnsupported, match="the play's gather_subset limits its facts"):
        lower(plan)


def test_a_play_with_force_handlers_is_left_to_pyz(tmp_path: Path) -> None:
    """The runner does not run a failed host's notified handlers (the runtime's force_handlers)."""
    plan = make_plan(tmp_path, [{"name": "notifies", "module": "command", "args": {"_raw_params": "true"},
                                 "notify": ["h"]}])
    doc = json.loads(plan.read_text())
    doc["plays"][0]["handlers"] = [dict(doc["plays"][0]["batches"][0]["tasks"][0], id="handler_0", name="h",
                                        notify=[])]
    plan.write_text(json.dumps(doc))
    lower(plan)  # without force_handlers it lowers
    doc["plays"][0]["force_handlers"] = True
    plan.write_text(json.dumps(doc))
    with pytest.raises(NativeUnsupported, match="has force_handlers") as info:
        lower(plan)
    assert "--format pyz" in info.value.hint


@pytest.mark.parametrize("plan", sorted(p.name for p in PLAN_FIXTURES.glob("*.json")))
def test_every_fixture_plan_lowers_or_is_refused_clearly(plan: str) -> None:
    try:
        docs = lower(PLAN_FIXTURES / plan)
    except NativeUnsupported as exc:
        assert re.search(r"task '.+' \(.+\) on localhost: ", str(exc)), exc
        return
    assert all(d["format"] == "rustle-native" for d in docs.values())


@pytest.mark.parametrize(("pattern", "tree"), [
    ("^a.b$", [["AT", "AT_BEGINNING"], ["LITERAL", 97], ["ANY", None], ["LITERAL", 98], ["AT", "AT_END"]]),
    (r"x{2,}?", [["MIN_REPEAT", [2, -1, [["LITERAL", 120]]]]]),
    (r"[^a-c\d]", [["IN", [["NEGATE", None], ["RANGE", [97, 99]], ["CATEGORY", "CATEGORY_DIGIT"]]]]),
    (r"(a|bc)", [["SUBPATTERN", [1, [["BRANCH", [[["LITERAL", 97]], [["LITERAL", 98], ["LITERAL", 99]]]]]]]]),
    # global (?m), (?s), (?x): as re compiles them (^/$ at every line, . takes a newline, spaces ignored)
    ("(?m)^a$", [["AT", "AT_BEGINNING_LINE"], ["LITERAL", 97], ["AT", "AT_END_LINE"]]),
    ("(?sx) a . ", [["LITERAL", 97], ["IN", [["CATEGORY", "CATEGORY_DIGIT"], ["CATEGORY", "CATEGORY_NOT_DIGIT"]]]]),
])
def test_regex_tree_is_pythons_own_parse(pattern: str, tree: list[Any]) -> None:
    assert regex_tree(pattern) == tree


@pytest.mark.parametrize(("pattern", "needle"), [
    ("(?P<x>a)", "named groups"), (r"(a)\1", "groupref"), ("(?i)^a", "inline flags other than (?m), (?s) and (?x)"),
    ("(?mu)^a", "inline flags"), ("(?a)a", "inline flags"), ("(?m:a)", "scoped flags"), ("(", "does not compile"),
])
def test_regex_features_the_runner_lacks_are_refused(pattern: str, needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        regex_tree(pattern)


def test_facts_run_names_and_templated_arguments_are_left_to_the_runner(tmp_path: Path) -> None:
    plan = make_plan(tmp_path, [
        {"module": "command", "args": {"_raw_params": "echo hi"}, "register": "out"},
        {"module": "debug", "args": {"msg": "{{ greeting }} {{ out.stdout }} on {{ ansible_facts.os_family }}!"},
         "conditions": [{"When": {"expression": "ansible_system == 'Linux' and not ansible_check_mode"}}]},
        {"module": "copy", "args": {"content": "{{ out.stdout_lines }}", "dest": "/tmp/x"}},
    ], play_vars={"greeting": "hello"})
    (doc,) = lower(plan).values()
    (host,) = doc["hosts"].values()
    assert host["facts"] is True
    debug, copy = host["plays"][0]["tasks"][1:]
    assert debug["when"][0]["ir"] == ["and", ["cmp", "==", ["name", "ansible_system"], ["lit", "Linux"]],
                                      ["not", ["name", "ansible_check_mode"]]]
    assert debug["args"]["msg"] == {"__rustle_template__": [
        "hello ", {"expr": "out.stdout", "ir": ["attr", ["name", "out"], "stdout"]}, " on ",
        {"expr": "ansible_facts.os_family", "ir": ["attr", ["name", "ansible_facts"], "os_family"]}, "!"]}
    assert copy["args"]["content"] == {"__rustle_expr__": {
        "expr": "out.stdout_lines", "ir": ["attr", ["name", "out"], "stdout_lines"]}}


def test_a_plan_without_facts_does_not_ask_the_runner_to_gather_them(tmp_path: Path) -> None:
    (doc,) = lower(WORKLOAD, workload_inventory(tmp_path)).values()
    assert [h["facts"] for h in doc["hosts"].values()] == [False]


def test_the_facts_the_runner_gathers_are_facts_the_runtime_gathers() -> None:
    import sys

    from rustle_deploy.compiler.native import NATIVE_FACTS
    from rustle_deploy.runtime_index import runtime_root

    sys.path.insert(0, str(runtime_root()))
    from rustle_runtime.facts import FACT_COLLECTOR  # type: ignore[import-not-found]

    assert NATIVE_FACTS <= set(FACT_COLLECTOR)


def test_each_host_gets_an_artifact_with_its_own_program_only(tmp_path: Path) -> None:
    """The programs are specialised per host: an artifact holding every host's would grow with
    the fleet, and every host would receive all of it."""
    from rustle_deploy.compiler.native import lower_unit
    from rustle_deploy.pipeline import Session

    plan = make_plan(tmp_path, [{"module": "ping", "args": {}},
                                {"module": "debug", "args": {"msg": "{{ role }}"}}])
    plan.write_text(json.dumps(retarget(json.loads(plan.read_text()), ["a1", "a2", "b1"])))
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    a1: {role: app}\n    a2: {role: app}\n    b1: {role: db}\n")
    s = Session.from_options({"execution_plan": str(plan), "inventory": str(inv), "format_": "native", "output": "json"})
    p, inventory = s.plan(s.inventory())
    every, _ = s.hosts_for(p, inventory)
    (unit,) = s.units(p, inventory, every)
    built = {tuple(hosts): json.loads(data) for hosts, data, _ in lower_unit(unit, "0" * 64)}
    assert set(built) == {("a1", "a2"), ("b1",)}  # a1 and a2 come out the same: they share
    assert list(built[("b1",)]["hosts"]) == ["b1"]


def _units(tmp_path: Path, tasks: list[dict[str, Any]], hosts: dict[str, str],
           handlers: list[dict[str, Any]] | None = None) -> tuple[Any, list[Any]]:
    """(the unit of every host in ``hosts``, the unit of each host alone) of a plan of ``tasks``
    over an inventory whose host NAME has the variables of YAML mapping ``hosts[NAME]``."""
    from rustle_deploy.pipeline import Session

    plan = make_plan(tmp_path, tasks, handlers=handlers)
    plan.write_text(json.dumps(retarget(json.loads(plan.read_text()), list(hosts))))
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n" + "".join(f"    {name}: {spec}\n" for name, spec in hosts.items()))
    s = Session.from_options({"execution_plan": str(plan), "inventory": str(inv), "format_": "native", "output": "json"})
    p, inventory = s.plan(s.inventory())
    every, _ = s.hosts_for(p, inventory)
    (unit,) = s.units(p, inventory, every)
    return unit, [u for h in every for u in s.units(p, inventory, [h])]


def test_hosts_lowered_together_get_what_each_lowered_alone_gets_and_only_their_own_values(tmp_path: Path) -> None:
    """What lowering works out once for a unit's hosts (its tasks' own checks, the handlers a
    notify runs, parsed conditions) changes no host's program: each artifact is byte for byte
    the one the host gets lowered alone, and holds its own variables' values, no other host's."""
    from rustle_deploy.compiler.native import lower_unit

    tasks = [{"module": "debug", "args": {"msg": "key {{ secret }}"}, "notify": ["restart"]},
             {"module": "copy", "args": {"content": "{{ role }} {{ inventory_hostname }}\n", "dest": "{{ root }}/f"},
              "register": "out"},
             {"module": "debug", "args": {"msg": "{{ out.changed }} {{ secret }}"}, "when": "role == 'app'"},
             {"module": "command", "args": {"cmd": "echo {{ secret }}"}, "when": "out.changed and role != 'db'",
              "loop": ["{{ secret }}-1", "{{ role }}-2"]}]
    hosts = {name: f"{{secret: s3cr3t-{name}, role: {role}, root: /srv/{name}}}"
             for name, role in (("alpha", "app"), ("beta", "app"), ("gamma", "db"))}
    unit, alone = _units(tmp_path, tasks, hosts, handlers=[{"name": "restart", "module": "debug", "args": {}}])
    together = {tuple(names): data for names, data, _ in lower_unit(unit, "0" * 64)}
    separately = {tuple(names): data for u in alone for names, data, _ in lower_unit(u, "0" * 64)}
    assert together == separately and set(together) == {("alpha",), ("beta",), ("gamma",)}
    for (name,), data in together.items():
        assert f"s3cr3t-{name}".encode() in data and f"/srv/{name}/f".encode() in data
        assert [other for other in hosts if other != name and other.encode() in data] == []
        assert json.loads(data)["hosts"][name]["plays"][0]["tasks"][0]["notify"] == ["rustle handler #0"]


def test_a_refusal_met_on_a_later_host_names_that_host(tmp_path: Path) -> None:
    """What passed on the first host is not taken for what a later host's variables decide: an
    integer beyond the runner's 64 bits that only b1 has refuses the unit on b1."""
    from rustle_deploy.compiler.native import lower_unit

    unit, _ = _units(tmp_path, [{"module": "debug", "args": {"msg": "{{ big }}"}, "notify": ["h"]}],
                     {"a1": "{big: 5}", "b1": "{big: 99999999999999999999}"},
                     handlers=[{"name": "h", "module": "debug", "args": {}}])
    with pytest.raises(NativeUnsupported, match=r"on b1: the integer 99999999999999999999 is beyond"):
        lower_unit(unit, "0" * 64)


def test_a_name_set_while_the_plan_runs_that_is_also_a_plan_variable_is_the_variable_until_it_may_be_set(
        tmp_path: Path) -> None:
    """Until the set_fact runs, pyz sees the play's value: before the first task that may set
    the name it is decided now; after it, the runner takes the run's value or, failing that,
    the play's (a handler's set_fact counts from the play's start)."""
    plan = make_plan(tmp_path, [{"module": "debug", "args": {"msg": "{{ where }}"}},
                                {"module": "set_fact", "args": {"where": "here"}},
                                {"module": "debug", "args": {"msg": "{{ where }}"}},
                                {"module": "debug", "args": {"msg": "{{ other }}"}}],
                     play_vars={"where": "there", "other": "o"})
    tasks = only_host(next(iter(lower(plan).values())))
    assert tasks[0]["args"]["msg"] == "there"
    assert tasks[2]["args"]["msg"] == {"__rustle_expr__": {"expr": "where", "ir": ["name", "where", ["lit", "there"]]}}
    assert tasks[3]["args"]["msg"] == "o"
    plan = make_plan(tmp_path / "h", [{"module": "debug", "args": {"msg": "{{ other }}"}}], play_vars={"other": "o"},
                     handlers=[{"module": "set_fact", "args": {"other": 1}}])
    (tasks[3],) = only_host(next(iter(lower(plan).values())))
    assert tasks[3]["args"]["msg"]["__rustle_expr__"]["ir"] == ["name", "other", ["lit", "o"]]


def test_blocks_and_set_fact_lower_to_sections_and_run_time_names(tmp_path: Path) -> None:
    book = tmp_path / "site.yml"
    book.write_text("""
- hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - set_fact: {word: hi, cacheable: false}
    - name: guarded
      when: word == 'hi'
      block:
        - debug: {msg: "{{ word }}"}
      rescue:
        - debug: {msg: "{{ ansible_failed_task.name }}"}
""")
    (doc,) = lower(book).values()
    tasks = only_host(doc)
    assert tasks[0]["module"] == "set_fact" and tasks[0]["args"] == {"word": "hi", "cacheable": False}
    block = tasks[1]
    assert block["when"] == []  # the playbook compiler gives a block's when to each of its tasks
    assert block["include"] is None and block["always"] == []
    (inner,) = block["block"]
    assert inner["when"][0]["ir"] == ["cmp", "==", ["name", "word"], ["lit", "hi"]]  # Ansible's inherited when
    assert inner["args"]["msg"] == {"__rustle_expr__": {"expr": "word", "ir": ["name", "word"]}}
    assert block["rescue"][0]["args"]["msg"]["__rustle_expr__"]["ir"] == ["attr", ["name", "ansible_failed_task"], "name"]


def test_a_task_timeout_lowers_and_integers_beyond_64_bits_are_refused(tmp_path: Path) -> None:
    """The runner's integers are i64: a value Python would carry as a big int goes to pyz, never
    a wrapped one to the runner. A task's timeout travels with the task (every process the
    module starts ends at its deadline); one ansible-core rejects is left to pyz's words."""
    plan = make_plan(tmp_path, [{"module": "command", "args": {"_raw_params": "sleep 5"}, "timeout": 2}])
    (task,) = only_host(next(iter(lower(plan).values())))
    assert task["timeout"] == 2
    for i, (tasks, why) in enumerate([
        ([{"module": "debug", "args": {"msg": "{{ 2 ** 64 }}"}}], "the integer 18446744073709551616 is beyond"),
        ([{"module": "debug", "args": {"msg": "{{ r.rc + big }}"}, "register": "r"}], "9223372036854775808 is beyond"),
        ([{"module": "command", "args": {"_raw_params": "true"}, "timeout": -1}], "timeout -1 is not a number"),
    ]):
        with pytest.raises(NativeUnsupported) as info:
            lower(make_plan(tmp_path / str(i), tasks, play_vars={"big": 2**63}))
        assert why in str(info.value)


def test_integers_at_the_edges_of_64_bits_and_long_digit_strings(tmp_path: Path) -> None:
    """The i64 bounds themselves lower (19 digits, as does a string of digits); one past either
    bound is refused, in a nested argument too."""
    fits = {"lo": -2**63, "hi": 2**63 - 1, "text": "1" * 25}
    plan = make_plan(tmp_path / "fits", [{"module": "debug", "args": {"msg": {"v": ["{{ lo }}", "{{ hi }}", "{{ text }}"]}}}],
                     play_vars=fits)
    (task,) = only_host(next(iter(lower(plan).values())))
    assert task["args"]["msg"] == {"v": [-2**63, 2**63 - 1, "1" * 25]}
    for i, value in enumerate([-2**63 - 1, 2**63]):
        with pytest.raises(NativeUnsupported, match=f"the integer {value} is beyond"):
            lower(make_plan(tmp_path / str(i), [{"module": "debug", "args": {"msg": {"v": ["{{ big }}"]}}}],
                            play_vars={"big": value}))


@pytest.mark.parametrize("var", ["ansible_python_module_rlimit_nofile: 123", "_ansible_ansiballz_pydevd_config: {module: x}"])
def test_a_hosts_own_module_wrapper_variable_is_refused_for_pyz(tmp_path: Path, var: str) -> None:
    """The open-files limit (also from ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE or ansible.cfg, which
    set the host's variable) and the debugger are applied by the Python runtime around each
    module, not by the runner: such a host is refused, and --format auto deploys pyz to it."""
    plan = make_plan(tmp_path, [{"module": "command", "args": {"_raw_params": "true"}}])
    plan.write_text(json.dumps(retarget(json.loads(plan.read_text()), ["a1"])))
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    a1: {" + var + "}\n")
    with pytest.raises(NativeUnsupported) as info:
        lower(plan, inv)
    assert f"a1: {var.split(':')[0]} is set for the host" in str(info.value)
    inv.write_text("all:\n  hosts:\n    a1: {ansible_python_module_rlimit_nofile: 0}\n")  # 0: no change
    assert lower(plan, inv)


def test_the_open_files_setting_of_the_environment_is_refused_for_pyz_too(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    plan = make_plan(tmp_path, [{"module": "command", "args": {"_raw_params": "true"}}])
    plan.write_text(json.dumps(retarget(json.loads(plan.read_text()), ["a1", "a2"])))
    inv = tmp_path / "inv.yml"
    inv.write_text("all:\n  hosts:\n    a1: {}\n    a2: {ansible_python_module_rlimit_nofile: 0}\n")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "none.cfg"))
    monkeypatch.setenv("ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE", "123")
    with pytest.raises(NativeUnsupported) as info:
        lower(plan, inv)
    assert "a1: ansible_python_module_rlimit_nofile is set for the host" in str(info.value)
    monkeypatch.delenv("ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE")
    assert lower(plan, inv)  # a2's own 0 (no change) wins over the setting, as in ansible-core
