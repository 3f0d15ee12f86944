"""The playbook front end in the small: argument splitting (against ansible-core's own code),
content sniffing, extra vars, keyword inheritance and the plan it builds."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rustle_deploy.errors import PlaybookError, UsageError
from rustle_deploy.inventory import implicit_localhost, load_inventory
from rustle_deploy.model import Unsafe
from rustle_deploy.plan import parse_plan
from rustle_deploy.plan.write import dump_plan
from rustle_deploy.playbook import CompileOptions, compile_playbook, is_playbook, parse_extra_vars
from rustle_deploy.playbook.args import parse_kv, split_args

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    try:
        from ansible.parsing.splitter import parse_kv as ansible_parse_kv
        from ansible.parsing.splitter import split_args as ansible_split_args
    except ImportError:  # pragma: no cover - ansible-core is a test dependency
        ansible_parse_kv = ansible_split_args = None

needs_ansible = pytest.mark.skipif(ansible_parse_kv is None, reason="ansible-core is not installed")

ARGS = [
    "echo hi chdir=/tmp",
    'src=a dest="b c" mode=0644',
    "msg='hello world'",
    "touch {{ out }}/x creates={{ out }}/x",
    'echo "{{ a }} b" c={{ d | default("e f") }}',
    "set -e\ncd /tmp\nprintf 'x\\ny\\n' > f\n",
    "a=1 b=2 \\\n c=3",
    "path=/x state=absent  force=yes",
    "k=v\\=w other",
    "{% if x %}a=1{% endif %} b=2",
    "",
]


@needs_ansible
@pytest.mark.parametrize("text", ARGS)
@pytest.mark.parametrize("check_raw", [False, True])
def test_parse_kv_matches_ansible(text: str, check_raw: bool) -> None:
    assert split_args(text) == [str(x) for x in ansible_split_args(text)]
    assert parse_kv(text, check_raw=check_raw) == {str(k): str(v) for k, v in ansible_parse_kv(text, check_raw=check_raw).items()}


_TOKEN = st.sampled_from(["a=1", "b='x y'", 'c="q r"', "{{ v }}", "{{ a | b('c d') }}", "word",
                          "chdir=/t", "creates=/x", "e=", "\n", "  ", "f=g\\=h", "'single'", '"dq"'])


@needs_ansible
@settings(max_examples=200, deadline=None)
@given(st.lists(_TOKEN, max_size=8), st.booleans())
def test_parse_kv_matches_ansible_on_generated_text(tokens: list[str], check_raw: bool) -> None:
    text = " ".join(tokens)
    try:
        theirs = {str(k): str(v) for k, v in ansible_parse_kv(text, check_raw=check_raw).items()}
    except Exception:  # noqa: BLE001 - ansible refuses it: so must we
        with pytest.raises(ValueError):
            parse_kv(text, check_raw=check_raw)
        return
    assert parse_kv(text, check_raw=check_raw) == theirs


def test_a_plan_is_json_object_and_anything_else_is_a_playbook() -> None:
    assert not is_playbook(b'  {"metadata": {}}')
    assert not is_playbook(b'\xef\xbb\xbf{"plays": []}')
    assert is_playbook(b"---\n- hosts: all\n")
    assert is_playbook(b'[{"hosts": "all", "tasks": []}]')  # a playbook written as JSON
    assert is_playbook(b"# just a comment\n")
    assert not is_playbook(b"")
    assert not is_playbook(b"\xff\xfe garbage")


def test_extra_vars_in_every_form(tmp_path: Path) -> None:
    (tmp_path / "vars.yml").write_text("from_file: 1\nshared: file\n")
    origins: dict[str, str] = {}
    got = parse_extra_vars(["a=1 b='two words'", '{"c": [1, 2], "shared": "json"}',
                            f"@{tmp_path / 'vars.yml'}", "g=h"], origins)
    assert got == {"a": "1", "b": "two words", "c": [1, 2], "shared": "file", "from_file": 1, "g": "h"}
    cli = "<CLI option '-e'>"  # ansible-core 2.19's origin of a value given on the command line
    assert origins == {"a": cli, "b": cli, "c": cli, "shared": f"{tmp_path}/vars.yml:2:9",
                       "from_file": f"{tmp_path}/vars.yml:1:12", "g": cli}
    with pytest.raises(UsageError, match="needs a leading '@'"):
        parse_extra_vars(["./vars.yml"])
    with pytest.raises(UsageError, match="is not name=value"):
        parse_extra_vars(["justaword"])
    with pytest.raises(UsageError, match="must be a mapping"):
        parse_extra_vars(["[1, 2]"])
    with pytest.raises(UsageError, match="no such file"):
        parse_extra_vars(["@/nonexistent/vars.yml"])


def _compile(tmp_path: Path, files: dict[str, str], inventory: str | None = None, **options: object):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    inv = implicit_localhost()
    if inventory is not None:
        (tmp_path / "inv.ini").write_text(inventory)
        inv = load_inventory(str(tmp_path / "inv.ini"))
    return compile_playbook(str(tmp_path / "site.yml"), inv, CompileOptions(**options))  # type: ignore[arg-type]


def test_notify_on_import_tasks_is_inherited_and_a_missing_handler_waits_for_the_run(tmp_path: Path) -> None:
    """ansible-core's import_tasks/inherit_notify.yml; handlers/58841.yml: a notify of no handler
    compiles, and is kept apart for the host to fail on when it fires."""
    compiled = _compile(tmp_path, {
        "site.yml": "- hosts: localhost\n  tasks:\n    - import_tasks: t.yml\n      notify: [hello, nobody]\n"
                    "  handlers:\n    - name: hello\n      debug: msg=hi\n",
        "t.yml": "- command: 'true'\n- debug: msg=x\n"})
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert [t.notify for t in tasks] == [("hello",), ("hello",)]
    assert [t.extras.get("notify_missing") for t in tasks] == [["nobody"], ["nobody"]]


def test_a_loop_over_an_include_that_mixes_kinds_is_one_include_per_item_when_the_items_are_known_here(
        tmp_path: Path) -> None:
    """docs/phases.md "Loops over includes that mix kinds": items written, from play, inventory or
    extra vars, range(), a with_<lookup>: one include per distinct item whose condition holds on
    some host; items or a condition that read a registered result keep the loop one unit, which
    the plan's phases refuse."""
    inner = "- command: 'true'\n- command: 'false'\n  delegate_to: localhost\n"
    inventory = "[web]\nw1 words='[\"a\", \"b\"]' own=1\nw2 words='[\"a\", \"b\"]' own=2\n"
    for loop, count in (("loop: [1, 2, 3]", 2), ("loop: '{{ range(2) | list }}'", 2), ("loop: '{{ words }}'", 2),
                        ("loop: '{{ play_list }}'", 1), ("loop: '{{ extra_list }}'", 3), ("loop: []", 0),
                        ("with_sequence: start=1 end=3", 2), ("with_dict: {a: 1, b: 2}", 2)):
        compiled = _compile(tmp_path, {
            "site.yml": "- hosts: web\n  vars: {play_list: [x]}\n  tasks:\n"
                        f"    - include_tasks: inner.yml\n      {loop}\n      when: item != 2 and item != '2'\n",
            "inner.yml": inner}, inventory, extra_vars={"extra_list": [1, 2, 3, 4]})
        tasks = compiled.plan.plays[0].batches[0].tasks
        head = tasks[0]
        assert len(tasks) == max(count, 1) and head.extras["include_items"] == [t.task_id for t in tasks[1:]], loop
        assert all(t.extras["include_item"] == head.task_id and "loop" not in t.extras for t in tasks[1:])
        assert all(len(t.block or ()) == 2 and t.block[1].extras["delegate_to"] == "localhost" for t in tasks)
        assert len({b.task_id for t in tasks for b in t.block or ()}) == 2 * max(count, 1)
    for loop in ("'{{ out.stdout_lines }}'", "[1, 2]\n      when: out.rc == item"):
        with pytest.raises(PlaybookError, match="a loop over it whose items, or whose condition for each host and "
                                                "item, the controller cannot know before the run"):
            _compile(tmp_path, {
                "site.yml": "- hosts: web\n  tasks:\n    - command: echo a\n      register: out\n"
                            f"    - include_tasks: inner.yml\n      loop: {loop}\n",
                "inner.yml": inner}, inventory)


@pytest.mark.parametrize(("items", "when", "includes", "slots"), [
    # ansible-core's included files: one per distinct item, in the order the hosts' results list
    # them (the first host's items first), an item a host repeats in another include
    ({"w1": ["a", "b"], "w2": ["a", "b", "c"]}, None, 3, {"w1": [0, 1], "w2": [0, 1, 2]}),
    ({"w1": ["b", "c", "b"], "w2": ["a", "b", "b"]}, None, 4, {"w1": [0, 1, 2], "w2": [3, 0, 2]}),
    # a condition false for w1's first item: w2 runs its second item first, as ansible-core does
    ({"w1": ["a", "b"], "w2": ["a", "b"]}, "item != skip", 2, {"w1": [None, 0], "w2": [1, 0]}),
])
def test_a_loop_over_an_include_whose_items_differ_between_hosts_runs_them_in_ansible_core_order(
        tmp_path: Path, items: dict[str, list[str]], when: str | None, includes: int,
        slots: dict[str, list[int | None]]) -> None:
    inner = "- command: 'true'\n- command: 'false'\n  delegate_to: localhost\n"
    inventory = "[web]\n" + "".join(f"{h} its='{json.dumps(v)}' skip={'a' if h == 'w1' else 'z'}\n"
                                    for h, v in items.items())
    condition = f"\n      when: {when}" if when else ""
    compiled = _compile(tmp_path, {
        "site.yml": f"- hosts: web\n  tasks:\n    - include_tasks: inner.yml\n      loop: '{{{{ its }}}}'{condition}\n",
        "inner.yml": inner}, inventory)
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert len(tasks) == includes
    assert tasks[0].extras["include_slots"] == slots


def test_a_loop_over_an_include_whose_items_name_its_file_is_one_include_per_file_and_item(tmp_path: Path) -> None:
    """ansible-core's included files are equal by file and loop variables: an include whose file
    the item names is one include per distinct pair, each holding its own file, in its order;
    register on it stays refused (its file name depends on the item)."""
    inventory = "[web]\nw1 steps='[\"one\", \"two\"]'\nw2 steps='[\"two\", \"one\", \"one\"]'\n"
    files = {"step_one.yml": "- command: 'true'\n- command: 'false'\n  delegate_to: localhost\n",
             "step_two.yml": "- command: 'true'\n  run_once: true\n- command: 'false'\n"}
    compiled = _compile(tmp_path, {**files, "site.yml": "- hosts: web\n  tasks:\n"
                                   "    - include_tasks: 'step_{{ item }}.yml'\n      loop: '{{ steps }}'\n"}, inventory)
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert [Path(t.extras["include"]).name for t in tasks] == ["step_one.yml", "step_two.yml", "step_one.yml"]
    assert "include_choice" not in tasks[0].extras and tasks[0].extras["include_slots"] == {"w1": [0, 1], "w2": [1, 0, 2]}
    assert [t.block[1].extras.get("delegate_to") for t in tasks] == ["localhost", None, "localhost"]
    with pytest.raises(PlaybookError, match="register on include_tasks is not supported"):
        _compile(tmp_path, {**files, "site.yml": "- hosts: web\n  tasks:\n    - include_tasks: 'step_{{ item }}.yml'\n"
                            "      loop: '{{ steps }}'\n      register: out\n"}, inventory)


def test_a_looped_include_role_whose_tasks_mix_kinds_is_one_include_per_item(tmp_path: Path) -> None:
    """A loop over an include_role whose role's tasks run differently: one include per distinct
    item, each holding its own copy of the role's tasks, in ansible-core's order."""
    inventory = "[web]\nw1 its='[\"a\", \"b\"]'\nw2 its='[\"b\"]'\n"
    compiled = _compile(tmp_path, {
        "roles/r/tasks/main.yml": "- command: 'true'\n- command: 'false'\n  run_once: true\n",
        "site.yml": "- hosts: web\n  tasks:\n    - include_role: {name: r}\n      loop: '{{ its }}'\n"}, inventory)
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert [t.extras.get("include") for t in tasks] == ["role r", "role r"]
    assert tasks[0].extras["include_items"] == [tasks[1].task_id] and tasks[1].extras["include_item"] == tasks[0].task_id
    assert tasks[0].extras["include_slots"] == {"w1": [0, 1], "w2": [1]}
    assert len({b.task_id for t in tasks for b in t.walk()}) == len([b for t in tasks for b in t.walk()])


def test_hosts_whose_loop_variable_is_a_template_over_their_own_values_are_told_apart(tmp_path: Path) -> None:
    """The controller renders a loop once for hosts holding the same values of what it reads,
    following a variable that is itself a template to the names that one reads."""
    inventory = "[web]\nw1 words='{{ mine }}' mine='[\"a\", \"b\"]'\nw2 words='{{ mine }}' mine='[\"b\"]'\n"
    compiled = _compile(tmp_path, {"inner.yml": "- command: 'true'\n- command: 'false'\n  run_once: true\n",
                                   "site.yml": "- hosts: web\n  tasks:\n    - include_tasks: inner.yml\n"
                                               "      loop: '{{ words }}'\n"}, inventory)
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert len(tasks) == 2 and tasks[0].extras["include_slots"] == {"w1": [0, 1], "w2": [1]}


def test_a_loop_over_an_include_that_stays_one_unit_runs_its_items_in_ansible_core_order(tmp_path: Path) -> None:
    """A looped include whose tasks all run on the hosts stays one include; when the hosts'
    items differ, each host runs them in ansible-core's included files' order (include_slots);
    when they are the same, or only a host knows them, nothing is added."""
    inventory = "[web]\nw1 its='[\"b\", \"c\"]'\nw2 its='[\"a\", \"b\"]'\n"
    for loop, slots in (("'{{ its }}'", {"w1": [0, 1], "w2": [2, 0]}), ("[a, b]", None),
                        ("'{{ ansible_facts.x }}'", None)):
        compiled = _compile(tmp_path, {"inner.yml": "- command: 'true'\n",
                                       "site.yml": f"- hosts: web\n  tasks:\n    - include_tasks: inner.yml\n"
                                                   f"      loop: {loop}\n"}, inventory)
        tasks = compiled.plan.plays[0].batches[0].tasks
        assert len(tasks) == 1 and tasks[0].extras.get("include_slots") == slots, loop


def test_a_missing_copy_source_fails_at_run_time_only_where_the_task_ignores_errors(tmp_path: Path) -> None:
    """ansible-core's copy target names a missing src under ``ignore_errors`` and asserts the
    failure: such a task fails when it runs (its controller paths in ``run_time_files``); a
    task that would stop the host is refused at compile time, exit 2."""
    task = "    - copy: {src: no_such_src, dest: /tmp/x}\n"
    compiled = _compile(tmp_path, {"site.yml": "- hosts: localhost\n  tasks:\n" + task + "      ignore_errors: true\n"})
    tried = compiled.plan.plays[0].batches[0].tasks[0].extras["run_time_files"]["no_such_src"]
    assert tried and all(t.endswith("no_such_src") for t in tried)
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": "- hosts: localhost\n  tasks:\n" + task})
    assert "could not find copy source 'no_such_src'" in str(err.value)


def test_a_missing_copy_source_after_a_task_on_the_controller_is_read_when_it_runs(tmp_path: Path) -> None:
    """ansible-core's copy target makes ``source_recursive`` with tasks delegated to localhost,
    then copies it by that relative name: after a task that runs on the controller, a missing
    relative src is read when its task runs (``run_time_files``), not refused."""
    made = "    - file: {path: made, state: directory}\n      delegate_to: localhost\n"
    copy = "    - copy: {src: made, dest: /tmp/x}\n"
    compiled = _compile(tmp_path, {"site.yml": "- hosts: all\n  tasks:\n" + made + copy},
                        inventory="web ansible_host=127.0.0.1\n")
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert tasks[1].args["src"] == "made" and "made" in tasks[1].extras["run_time_files"]
    with pytest.raises(PlaybookError):  # the copy before the controller's task: refused
        _compile(tmp_path, {"site.yml": "- hosts: all\n  tasks:\n" + copy + made}, inventory="web ansible_host=127.0.0.1\n")


def test_a_copy_directory_after_a_task_on_the_controller_is_read_when_it_runs(tmp_path: Path) -> None:
    """ansible-core's copy target adds symlinks and an empty directory to its role's
    ``files/subdir`` with delegated tasks, then copies it: after a task on the controller a
    directory src found when compiling is read when the task runs; before one, it is embedded."""
    made = "    - file: {path: files/tree/sub, state: directory}\n      delegate_to: localhost\n"
    copy = "    - copy: {src: tree/, dest: /tmp/x, local_follow: false}\n"
    files = {"files/tree/f": "x"}
    compiled = _compile(tmp_path, {"site.yml": "- hosts: all\n  tasks:\n" + made + copy, **files},
                        inventory="web ansible_host=127.0.0.1\n")
    task = compiled.plan.plays[0].batches[0].tasks[1]
    assert task.args["src"] == "tree/" and task.extras["run_time_files"] == {"tree/": [str(tmp_path / "files/tree")]}
    compiled = _compile(tmp_path, {"site.yml": "- hosts: all\n  tasks:\n" + copy + made, **files},
                        inventory="web ansible_host=127.0.0.1\n")
    task = compiled.plan.plays[0].batches[0].tasks[0]
    assert task.args["src"] == str(tmp_path / "files/tree") + "/" and "run_time_files" not in task.extras


def test_a_copy_source_over_a_value_the_play_sets_is_rendered_by_the_controller_when_it_runs(tmp_path: Path) -> None:
    """ansible-core's copy target copies ``{{ local_temp_dir }}/source1``, ``local_temp_dir`` set
    from a delegated ``mktemp``'s result: after a task on the controller, such a src (one that
    may be absolute) is rendered by the controller when its phase starts (``run_time_render``,
    with the values every host shares baked in); one over facts alone, or a relative one, is
    not read from the controller (no phase of its own)."""
    play = ("- hosts: all\n  vars: {sub: tree}\n  tasks:\n"
            "    - command: mktemp -d\n      delegate_to: localhost\n      register: made\n"
            "    - set_fact: {made_dir: '{{ made.stdout }}'}\n"
            "    - copy: {src: '{{ made_dir }}/{{ sub }}/', dest: /tmp/x}\n"
            "    - copy: {src: '{{ ansible_distribution }}.txt', dest: /tmp/x}\n"
            "    - copy: {src: 'files/{{ made_dir | basename }}', dest: /tmp/x}\n      ignore_errors: true\n")
    compiled = _compile(tmp_path, {"site.yml": play, "Debian.txt": "x"}, inventory="web ansible_host=127.0.0.1\n")
    tasks = compiled.plan.plays[0].batches[0].tasks
    name = "{{ made_dir }}/{{ sub }}/"
    assert tasks[2].extras["run_time_files"] == {name: []}
    assert tasks[2].extras["run_time_render"] == {name: {"vars": {"sub": "tree"}, "extra": {}}}
    assert "run_time_render" not in tasks[3].extras and "run_time_render" not in tasks[4].extras


def test_an_empty_copy_source_is_left_for_the_task_to_fail(tmp_path: Path) -> None:
    """ansible-core's copy target: ``src: ''`` fails "src (or content) is required" when it runs
    (it named the role's files/ directory itself, copied as a tree)."""
    compiled = _compile(tmp_path, {"site.yml": "- hosts: localhost\n  tasks:\n    - copy: {src: '', dest: /tmp/x}\n"
                                                "      ignore_errors: true\n", "files/f": "x"})
    task = compiled.plan.plays[0].batches[0].tasks[0]
    assert task.args["src"] == "" and "run_time_files" not in task.extras


def test_templated_tags_of_plays_blocks_roles_and_tasks_are_rendered_before_selection(tmp_path: Path) -> None:
    """ansible-core's tags target (test_template_{parent,play,role}_tags.yml)."""
    compiled = _compile(tmp_path, {
        "site.yml": "- hosts: localhost\n  vars: {t: tag1, many: [a, b]}\n  tags: '{{ t }}'\n"
                    "  roles: [{role: r, tags: '{{ many }}'}]\n  tasks:\n"
                    "    - block:\n        - {debug: msg=x, tags: [own, '{{ hostvars.x.y }}']}\n"
                    "      tags: '{{ many }}'\n",
        "roles/r/tasks/main.yml": "- debug: msg=r\n"})
    role_task, inner = compiled.plan.plays[0].batches[0].tasks  # the block is flattened
    assert set(role_task.tags) == {"tag1", "a", "b"}
    assert set(inner.tags) == {"tag1", "a", "b", "own", "{{ hostvars.x.y }}"}  # host data: kept as written


def test_keywords_are_inherited_as_ansible_does(tmp_path: Path) -> None:
    compiled = _compile(tmp_path, {
        "site.yml": """
- hosts: localhost
  become: true
  tags: [p]
  environment: {A: play}
  roles:
    - role: r
      when: on_role
      tags: [r]
      vars: {rv: 1}
  tasks:
    - block:
        - command: echo hi
          become: false
          environment: {B: task}
      when: on_block
      ignore_errors: true
      vars: {bv: 2}
    - include_tasks: inc.yml
      when: on_include
      tags: [inc]
      vars: {iv: 3}
      ignore_errors: true
""",
        "inc.yml": "- debug: msg=in\n",
        "roles/r/tasks/main.yml": "- debug: msg=role\n",
        "roles/r/defaults/main.yml": "d: 1\n",
    })
    play = compiled.plan.plays[0]
    role_task, cmd, include = play.batches[0].tasks
    assert role_task.name == "r : debug"
    assert [c.value for c in role_task.conditions] == ["on_role"]
    assert role_task.tags == ("p", "r")
    assert role_task.extras["become"] is True and role_task.extras["vars"] == {"rv": 1}
    assert role_task.extras["role"] == "r" and play.roles["r"]["defaults"] == {"d": 1}
    assert play.defaults == {"d": 1}
    assert [c.value for c in cmd.conditions] == ["on_block"]
    assert cmd.extras["become"] is False and cmd.extras["ignore_errors"] is True
    assert cmd.extras["environment"] == {"A": "play", "B": "task"} and cmd.extras["vars"] == {"bv": 2}
    # an include keeps its own when, tags and vars; what it includes does not inherit them
    assert include.is_block and include.extras["include"].endswith("inc.yml")
    assert [c.value for c in include.conditions] == ["on_include"]
    assert include.tags == ("p", "inc") and include.extras["params"] == {"iv": 3}
    (inner,) = include.block or ()
    assert inner.conditions == () and inner.tags == ("p",) and "ignore_errors" not in inner.extras


def test_the_plan_round_trips_through_json(tmp_path: Path) -> None:
    compiled = _compile(tmp_path, {
        "site.yml": """
- hosts: web
  vars: {a: 1}
  roles: [{role: r, p: 2}]
  tasks:
    - block:
        - command: /bin/false
      rescue:
        - debug: msg=r
      always:
        - debug: msg=a
    - command: echo {{ item }}
      with_items: [[1, 2], 3]
      notify: h
  handlers:
    - name: h
      debug: msg=h
      listen: topic
""",
        "roles/r/tasks/main.yml": "- copy: {src: f.txt, dest: /tmp/f.txt}\n",
        "roles/r/files/f.txt": "x\n",
        "roles/r/handlers/main.yml": "- name: rh\n  debug: msg=rh\n",
    }, inventory="[web]\nw1 ansible_connection=local\nw2 ansible_connection=local\n",
        extra_vars={"e": 1})
    text = dump_plan(compiled.plan)
    again = parse_plan(text.encode(), source="emitted.json", base_dir=str(tmp_path))
    assert json.loads(dump_plan(again)) == json.loads(text)
    doc = json.loads(text)
    assert doc["extra_vars"] == {"e": 1} and doc["playbook_dir"] == str(tmp_path)
    play = doc["plays"][0]
    assert play["hosts"] == ["w1", "w2"] and play["roles"]["r"]["params"] == {"p": 2}
    tasks = play["batches"][0]["tasks"]
    assert tasks[0]["args"]["src"] == str(tmp_path / "roles" / "r" / "files" / "f.txt")
    assert set(tasks[1]) >= {"block", "rescue", "always"} and "module" not in tasks[1]
    assert tasks[2]["loop_with"] == "items"
    assert [h["name"] for h in play["handlers"]] == ["rh", "h"]
    assert play["handlers"][0]["listen"] == ["r : rh"]


def test_unsafe_strings_are_marked_in_the_plan_and_read_back_marked(tmp_path: Path) -> None:
    """--emit-plan writes an !unsafe string as Ansible's {"__ansible_unsafe": text}, the plan
    loader reads it back as Unsafe, and the controller never renders it (a host pattern over
    it stays what it says)."""
    compiled = _compile(tmp_path, {"site.yml": """
- hosts: localhost
  vars:
    raw: !unsafe "{{ undefined_here }}"
    name_var: "{{ raw }}"
  tasks:
    - debug: {msg: !unsafe "{% if x %}"}
      name: "{{ name_var }}"
"""})
    text = dump_plan(compiled.plan)
    doc = json.loads(text)
    assert doc["plays"][0]["vars"]["raw"] == {"__ansible_unsafe": "{{ undefined_here }}"}
    task = doc["plays"][0]["batches"][0]["tasks"][0]
    assert task["args"]["msg"] == {"__ansible_unsafe": "{% if x %}"}
    again = parse_plan(text.encode(), source="emitted.json", base_dir=str(tmp_path))
    assert isinstance(again.plays[0].vars["raw"], Unsafe)
    assert json.loads(dump_plan(again)) == doc


def test_an_unsafe_vars_prompt_answer_stays_data(tmp_path: Path) -> None:
    """vars_prompt with unsafe: true: the answer is carried as an !unsafe string."""
    compiled = _compile(tmp_path, {"site.yml": """
- hosts: localhost
  vars_prompt:
    - {name: raw, prompt: Raw, unsafe: true}
    - {name: cooked, prompt: Cooked}
  tasks:
    - debug: {msg: hi}
"""}, prompt=lambda spec: "{{ lookup('pipe', 'id') }}")
    play_vars = compiled.plan.plays[0].vars
    assert isinstance(play_vars["raw"], Unsafe) and not isinstance(play_vars["cooked"], Unsafe)
    assert json.loads(dump_plan(compiled.plan))["plays"][0]["vars"]["raw"] == {
        "__ansible_unsafe": "{{ lookup('pipe', 'id') }}"}


def test_plays_without_hosts_are_left_out(tmp_path: Path) -> None:
    compiled = _compile(tmp_path, {"site.yml": "- hosts: nomatch\n  tasks:\n    - debug: msg=x\n"})
    assert compiled.plan.plays == () and compiled.plays[0].hosts == []
    assert any("no hosts matched" in n for n in compiled.notes)


def test_positions_survive_in_errors_from_plan_validation(tmp_path: Path) -> None:
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": "- hosts: localhost\n  tasks:\n    - debug:\n"
                                        "        msg: '{{ x | community.general.json_query(\"a\") }}'\n"})
    assert (err.value.line, err.value.column) == (3, 7)  # the task's module, whose argument it is


def test_an_unknown_filter_is_a_warning_at_its_task(tmp_path: Path) -> None:
    """It fails when the host evaluates it, as ansible-core fails it (late_plugin_errors)."""
    compiled = _compile(tmp_path, {"site.yml": "- hosts: localhost\n  tasks:\n    - debug:\n"
                                               "        msg: '{{ x | nosuchfilter }}'\n"})
    assert compiled.warnings == [f"{tmp_path}/site.yml:3:7: filter 'nosuchfilter' is unknown: the task fails when the "
                                 "host evaluates it, as under ansible-playbook"]



def test_become_from_the_command_line_is_where_plays_start(tmp_path: Path) -> None:
    compiled = _compile(tmp_path, {"site.yml": """
- hosts: localhost
  tasks: [{command: id}]
- hosts: localhost
  become: false
  tasks: [{command: id}]
"""}, play_defaults={"become": True, "become_user": "app"})
    first, second = (p.batches[0].tasks[0].extras for p in compiled.plan.plays)
    assert first["become"] is True and first["become_user"] == "app"
    assert second["become"] is False and second["become_user"] == "app"


def test_run_once_and_throttle_expressions_over_shared_values_are_rendered_when_compiling(tmp_path: Path) -> None:
    site = """
- hosts: all
  vars: {width: 2}
  tasks:
    - command: /bin/true
      run_once: "{{ once }}"
    - command: /bin/true
      throttle: "{{ width }}"
    - command: /bin/true
      run_once: "{{ inventory_hostname == 'a' }}"
"""
    inventory = "a ansible_connection=local\nb ansible_connection=local\n"
    with pytest.raises(PlaybookError) as err:  # a host's own data decides nothing here
        _compile(tmp_path, {"site.yml": site}, inventory, extra_vars={"once": True})
    assert (err.value.line, err.value.column) == (10, 17)
    assert "'run_once' depends on data only a host has" in err.value.message
    compiled = _compile(tmp_path, {"site.yml": site.rsplit("    - command", 1)[0]}, inventory,
                        extra_vars={"once": "yes"})
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert [t.extras.get("run_once") for t in tasks] == [True, None]
    assert tasks[1].extras["throttle"] == 2


def test_templated_strategy_handler_names_and_notify_render_as_ansible_renders_them(tmp_path: Path) -> None:
    """Play and extra vars, never a host's: ansible-core's blocks and handlers targets use each."""
    compiled = _compile(tmp_path, {"site.yml": """
- hosts: localhost
  strategy: "{{ test_strategy | default('linear') }}"
  vars: {h: first, hs: [second, third]}
  tasks:
    - {command: id, notify: ["{{ h }}", "{{ hs }}"]}
  handlers:
    - {name: "{{ h }}", debug: {}}
    - {name: second, debug: {}}
    - {name: third, debug: {}}
    - {name: "with {{ nowhere }}", debug: {}}
"""}, extra_vars={"test_strategy": "free"})
    play = compiled.plan.plays[0]
    assert play.batches[0].tasks[0].notify == ("first", "second", "third")
    assert [h.name for h in play.handlers] == ["first", "second", "third", "with {{ nowhere }}"]
    assert any("'with {{ nowhere }}' is unusable" in n for n in compiled.notes)
    with pytest.raises(PlaybookError, match="strategy 'bogus' is not supported"):
        _compile(tmp_path, {}, extra_vars={"test_strategy": "bogus"})


def test_a_plays_gather_subset_and_timeout_reach_the_plan_and_a_bad_one_is_refused(tmp_path: Path) -> None:
    compiled = _compile(tmp_path, {"site.yml": """
- hosts: localhost
  gather_subset: ["!all", "!min", network]
  gather_timeout: 5
  tasks: [{debug: {}}]
- hosts: localhost
  gather_subset: "!all,!min,hardware"
  tasks: [{debug: {}}]
"""})
    first, second = compiled.plan.plays
    assert (first.gather_subset, first.gather_timeout) == (("!all", "!min", "network"), 5)
    # a string is one name, as ansible-core reads the keyword (an exclusion of a name it does not know)
    assert (second.gather_subset, second.gather_timeout) == (("!all,!min,hardware",), None)
    with pytest.raises(PlaybookError, match="bad subset 'bogus' in gather_subset"):
        _compile(tmp_path, {"site.yml": "- {hosts: localhost, gather_subset: [network, bogus], tasks: []}\n"})
    with pytest.raises(PlaybookError, match="bad subset 'network,hardware'"):
        _compile(tmp_path, {"site.yml": "- {hosts: localhost, gather_subset: 'network,hardware', tasks: []}\n"})
    with pytest.raises(PlaybookError, match="gather_timeout"):
        _compile(tmp_path, {"site.yml": "- {hosts: localhost, gather_timeout: soon, tasks: []}\n"})


@pytest.mark.parametrize(("handler", "message"), [
    ("{name: h, block: [{debug: {}}, {block: [{debug: {}}]}]}", "Using a block as a handler is not supported."),
    ("{name: h, import_tasks: inner.yml}", "Using a block as a handler is not supported."),
])
def test_handlers_ansible_refuses_are_refused(tmp_path: Path, handler: str, message: str) -> None:
    files = {"site.yml": f"- hosts: localhost\n  tasks: [{{command: id, notify: h}}]\n  handlers: [{handler}]\n",
             "inner.yml": "- block: [{debug: {}}]\n"}
    with pytest.raises(PlaybookError, match=re.escape(message)):
        _compile(tmp_path, files)
    # a block in the handlers list is fine, as in Ansible (its tasks are the handlers)
    _compile(tmp_path, {"site.yml": "- hosts: localhost\n  tasks: [{command: id, notify: h}]\n"
                                    "  handlers: [{block: [{name: h, debug: {}}]}]\n"})


def test_what_ansible_core_refuses_only_when_a_handler_runs_errors_the_run_there(tmp_path: Path) -> None:
    """A ``meta: flush_handlers`` handler, and a block inside a block of a file a handler
    includes: ansible-core loads the play and aborts the run when the handler runs (runme
    handlers:156, 183); the handler is compiled to fail there with its words, erroring the run."""
    files = {"site.yml": "- hosts: localhost\n  tasks: [{command: id, notify: [f, i, ok]}]\n  handlers:\n"
                         "    - {name: f, meta: flush_handlers}\n    - {name: i, include_tasks: inner.yml}\n"
                         "    - {name: ok, include_tasks: top.yml}\n",
             "inner.yml": "- block: [{debug: {}}, {block: [{debug: {}}]}]\n",
             "top.yml": "- block: [{debug: {}}]\n"}
    flush, include, fine = _compile(tmp_path, files).plan.plays[0].handlers
    assert flush.extras["include_error"] == {"reason": "flush_handlers cannot be used as a handler",
                                             "errored": True, "action": True, "when_first": True}
    assert include.extras["include_error"] == {"reason": "Using a block as a handler is not supported.",
                                               "include": "inner.yml", "errored": True, "exit": 4}
    # a block at the top of a handler's include_tasks file is its implicit one, as in ansible-core
    assert "include_error" not in fine.extras and fine.block


PER_CALL_SITE = """
- hosts: web
  tasks:
    - set_fact: {lb: lb1}
    - shell: echo {{ item }}
      delegate_to: "{{ item }}"
      loop: "{{ groups['lbs'] }}"
    - command: /bin/true
      delegate_to: "{{ lb }}"
"""
PER_CALL_INVENTORY = "[web]\nw1 ansible_host=10.0.0.1\nw2 ansible_host=10.0.0.2\n[lbs]\nlb1 ansible_host=10.0.0.9\n"


def test_a_host_each_call_names_is_kept_for_ansible_core_with_the_task_as_written(tmp_path: Path) -> None:
    """A loop item or the host's data (a set_fact value) names the delegate: the template is
    kept for ansible-core on the controller, with the module and arguments as written."""
    tasks = _compile(tmp_path, {"site.yml": PER_CALL_SITE}, PER_CALL_INVENTORY).plan.plays[0].batches[0].tasks
    assert [t.extras.get("delegate_to") for t in tasks] == [None, "{{ item }}", "{{ lb }}"]
    assert tasks[1].extras["action_ds"] == {"shell": "echo {{ item }}"}
    assert "action_ds" not in tasks[0].extras


def test_a_host_each_call_names_without_ansible_core_is_refused_at_its_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ansible", None)  # the controller's Python without ansible-core
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": PER_CALL_SITE}, PER_CALL_INVENTORY)
    assert str(err.value).startswith(f"{tmp_path / 'site.yml'}:6:7: delegate_to '{{{{ item }}}}' names a loop item: "
                                     "a task delegated to a host each call names runs through ansible-core")
    assert "pip install 'rustle-deploy[ansible]'" in str(err.value.hint)


def test_a_host_outside_the_inventory_is_an_implicit_host_for_ansible_core(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    site = "- hosts: web\n  tasks:\n    - command: /bin/true\n      delegate_to: jump.example\n"
    task = _compile(tmp_path, {"site.yml": site}, PER_CALL_INVENTORY).plan.plays[0].batches[0].tasks[0]
    assert (task.extras["delegate_to"], task.extras["delegate_implicit"]) == ("jump.example", True)
    assert task.extras["action_ds"] == {"command": "/bin/true"}
    monkeypatch.setitem(sys.modules, "ansible", None)  # the controller's Python without ansible-core
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": site}, PER_CALL_INVENTORY)
    assert str(err.value).startswith(f"{tmp_path / 'site.yml'}:4:7: delegate_to 'jump.example' is not a host of "
                                     "the inventory: a task delegated to an implicit host runs through ansible-core")


def test_delegation_and_a_tasks_own_connection_compile_to_where_each_task_runs(tmp_path: Path) -> None:
    site = """
- hosts: web
  vars: {lb: lb1}
  tasks:
    - command: /bin/true
      delegate_to: "{{ lb }}"
    - command: /bin/true
      delegate_to: "{{ groups['lbs'][0] }}"
      delegate_facts: true
    - remote_user: deploy
      port: 2222
      block:
        - command: /bin/true
    - command: /bin/true
      connection: local
"""
    inventory = ("[web]\nbare ansible_host=10.0.0.1\npinned ansible_host=10.0.0.2 ansible_user=me\n"
                 "here ansible_connection=local\n[lbs]\nlb1 ansible_host=10.0.0.9\n")
    tasks = _compile(tmp_path, {"site.yml": site}, inventory).plan.plays[0].batches[0].tasks
    leaves = [leaf for t in tasks for leaf in t.walk() if not leaf.is_block]
    assert [t.extras.get("delegate_to") for t in leaves] == ["lb1", "lb1", None, "localhost"]
    assert leaves[1].extras["delegate_facts"] is True
    # the inventory's ansible_user wins; a local connection has no user or port
    assert leaves[2].extras["connection_vars"] == {
        "bare": {"ansible_user": "deploy", "ansible_port": 2222}, "pinned": {"ansible_port": 2222}}


def test_plays_after_add_host_are_compiled_once_the_change_is_known(tmp_path: Path) -> None:
    """later_plays="stop" compiles up to the play that changes the inventory; compiled again
    over the inventory with the change (with_changes), the plays that ran keep their hosts
    and plan indexes, and the later ones target the new hosts and groups (docs/phases.md)."""
    files = {"site.yml": """
- hosts: web
  gather_facts: false
  tasks:
    - add_host: name=new1 groups=fresh ansible_host=10.0.0.9 ansible_port=2200 ansible_user=u
    - group_by: key=env_{{ app_env }} parents=envs
- hosts: fresh:env_prod
  gather_facts: false
  tasks:
    - debug: msg="{{ groups['fresh'] }} {{ hostvars['new1'].ansible_host }}"
- hosts: all
  gather_facts: false
  tasks:
    - group_by: key=again
- hosts: again
  gather_facts: false
  tasks:
    - debug: msg=last
"""}
    inventory = "[web]\nweb1 ansible_connection=local app_env=prod\n[group_vars_host]\n"
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "fresh.yml").write_text("from_group_vars: yes\n")
    with pytest.raises(PlaybookError, match="add_host changes the inventory, and play 2") as err:
        _compile(tmp_path, files, inventory)
    assert (err.value.line, err.value.column) == (5, 7)
    first = _compile(tmp_path, files, inventory, later_plays="stop")
    assert first.rest == 2 and [p.name for p in first.plan.plays] == ["web"]
    loaded = load_inventory(str(tmp_path / "inv.ini"))
    changed = loaded.with_changes({"hosts": {"new1": {"ansible_host": "10.0.0.9", "ansible_port": 2200,
                                                      "ansible_user": "u"}},
                                   "groups": {"fresh": ["new1"], "env_prod": ["web1"]},
                                   "children": {"envs": ["env_prod"]}})
    assert [h.name for h in loaded.select("all")] == ["web1"]
    new1 = changed.hosts["new1"]
    assert (new1.address, new1.port, new1.user) == ("10.0.0.9", 2200, "u")
    assert set(changed.hosts["web1"].groups) >= {"env_prod", "envs", "web"}
    done = {p.number: tuple(p.hosts) for p in first.plays}
    second = compile_playbook(str(tmp_path / "site.yml"), changed,
                              CompileOptions(later_plays="stop", done_hosts=done))
    assert second.rest == 4  # stops again after the next group_by
    assert [(p.name, p.hosts) for p in second.plan.plays] == [
        ("web", ("web1",)), ("fresh:env_prod", ("new1", "web1")), ("all", ("web1", "new1"))]
    debug = second.plan.plays[1].batches[0].tasks[0]
    assert debug.hosts == () and "hostvars['new1']" in json.dumps(debug.args)
    # group_vars/ beside the inventory reach a group add_host made
    assert changed.hosts["new1"].vars["from_group_vars"] is True
    # listings see the later plays over the inventory as it is, as ansible-playbook lists them
    static = _compile(tmp_path, files, inventory, later_plays="static")
    assert static.rest is None and [p.hosts for p in static.plays] == [["web1"], [], ["web1"], []]


def test_args_nested_in_an_action_mapping_are_the_modules_arguments(tmp_path: Path) -> None:
    """ansible-core's conditionals target (output_validation_tests.yml): ``action: {module: M,
    args: {...}}`` (or ``args: k=v``) gives M those arguments, as ModuleArgsParser merges them."""
    compiled = _compile(tmp_path, {
        "site.yml": "- hosts: localhost\n  tasks:\n"
                    "    - action: {module: ansible.legacy.assert, args: {that: '{{ 1 + 1 == 2 }}'}}\n"
                    "    - action: {module: copy dest=/tmp/x, args: 'content=hi mode=0600'}\n"})
    tasks = compiled.plan.plays[0].batches[0].tasks
    assert tasks[0].args == {"that": "{{ 1 + 1 == 2 }}"}
    assert tasks[1].args == {"dest": "/tmp/x", "content": "hi", "mode": "0600"}


def test_conditionals_that_may_not_be_booleans_record_where_their_value_came_from(tmp_path: Path) -> None:
    """ansible-core 2.19 names a broken conditional's origin: the variable's definition (play,
    task and role vars, role defaults, vars files), else where the conditional was written;
    only conditionals whose result may not be a boolean are recorded (the plan stays small)."""
    compiled = _compile(tmp_path, {
        "site.yml": ("- hosts: localhost\n"
                     "  vars_files: [v.yml]\n"
                     "  vars: {word: 'yes'}\n"
                     "  roles: [r]\n"
                     "  tasks:\n"
                     "    - debug: msg=a\n"
                     "      when: [word, word == 'yes', \"'x'\", from_file.key, word | bool, registered.rc]\n"
                     "    - command: 'true'\n"
                     "      changed_when: word and from_file\n"
                     "      failed_when: x is defined\n"
                     "    - assert: {that: [word, 1 == 1]}\n"
                     "    - debug: msg=n\n"
                     "      when: 1\n"
                     "    - debug: msg=u\n"
                     "      when: !unsafe 1 == 0\n"),
        "v.yml": "from_file:\n  key: [1]\n",
        "roles/r/defaults/main.yml": "role_default: 'no'\n",
        "roles/r/tasks/main.yml": "- debug: msg=r\n  when: role_default\n"})
    site, v = tmp_path / "site.yml", tmp_path / "v.yml"
    tasks = [t for t in compiled.plan.plays[0].batches[0].tasks if t.module]
    assert tasks[0].extras["origins"] == {"role_default": f"{tmp_path}/roles/r/defaults/main.yml:1:15"}
    assert tasks[1].extras["origins"] == {
        "word": f"{site}:3:16", "'x'": f"{site}:7:35", "from_file.key": f"{v}:2:8", "registered.rc": f"{site}:7:70"}
    assert tasks[2].extras["origins"] == {
        "word and from_file": {"": f"{site}:9:21", "word": f"{site}:3:16", "from_file": f"{v}:2:3"}}
    assert tasks[3].extras["origins"] == {"word": f"{site}:3:16"}
    when = [[c.value for c in t.conditions if c.kind == "When"] for t in tasks[4:6]]
    assert when == [[1], ["1 == 0"]] and isinstance(when[1][0], Unsafe)
    assert "origins" not in tasks[4].extras and "origins" not in tasks[5].extras
    # the plan carries them: a number stays a number, !unsafe text stays unsafe
    plan = parse_plan(dump_plan(compiled.plan).encode(), source="plan.json", base_dir=str(tmp_path))
    again = [t for t in plan.plays[0].batches[0].tasks if t.module]
    assert again[1].extras["origins"] == tasks[1].extras["origins"]
    assert [[c.value for c in t.conditions if c.kind == "When"] for t in again[4:6]] == when
    assert isinstance(again[5].conditions[-1].value, Unsafe)


def test_a_module_in_library_beside_an_imported_playbook_is_found_and_its_dir_kept_in_the_plan(tmp_path: Path) -> None:
    module = ("#!/usr/bin/python\nfrom ansible.module_utils.basic import AnsibleModule\n"
              "AnsibleModule(argument_spec={}).exit_json(changed=False)\n")
    files = {"site.yml": "- import_playbook: sub/sub.yml\n",
             "sub/sub.yml": "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - hello:\n",
             "sub/library/hello.py": module}
    compiled = _compile(tmp_path, files)
    # ansible-core adds each playbook's directory to its plugin paths when it loads it
    assert compiled.plan.playbook_dirs == (str(tmp_path / "sub"),)
    text = dump_plan(compiled.plan)
    again = parse_plan(text.encode(), source="emitted.json", base_dir=str(tmp_path))
    assert again.playbook_dirs == compiled.plan.playbook_dirs
    # library/ beside neither playbook: no module by that name
    files["other/library/hello.py"] = files.pop("sub/library/hello.py")
    with pytest.raises(PlaybookError, match="unknown module 'hello'"):
        _compile(tmp_path / "without", files)


def test_include_role_names_over_loop_items_and_host_vars_compile_each_role_they_select(tmp_path: Path) -> None:
    files = {"site.yml": """\
- hosts: all
  gather_facts: false
  tasks:
    - include_role: {name: "{{ item }}"}
      loop: [a, b]
    - include_role: {name: "{{ which }}"}
    - include_role: {name: "{{ which }}", public: true}
""", "roles/a/tasks/main.yml": "- debug: msg=a\n", "roles/b/tasks/main.yml": "- debug: msg=b\n",
        "roles/b/vars/main.yml": "b_var: 1\n"}
    compiled = _compile(tmp_path, files, "h1 which=a\nh2 which=c\n")
    looped, by_host, public = compiled.plan.plays[0].batches[0].tasks
    assert looped.extras["include_choice"]["select"] == {"a": 0, "b": 1}
    assert [t.block[0].name for t in looped.block or () if t.block] == ["a : debug", "b : debug"]
    # h2's role does not exist: only a host that selects it fails, with ansible-core's reason
    select = by_host.extras["include_choice"]["select"]
    assert select["a"] == 0 and "the role 'c' was not found" in select["c"]
    # a public include_role's vars are the play's once it ran, not from the play's start
    assert public.extras["include_choice"] and "b_var" not in compiled.plan.plays[0].vars
    assert any(t.extras.get("public") for t in public.block or ())


def test_a_public_include_role_is_exposed_when_it_runs_and_an_import_role_from_the_start(tmp_path: Path) -> None:
    files = {"site.yml": """\
- hosts: localhost
  gather_facts: false
  tasks:
    - include_role: {name: dyn, public: true}
    - import_role: {name: stat}
""", "roles/dyn/tasks/main.yml": "- debug: msg=d\n", "roles/dyn/vars/main.yml": "dyn_var: 1\n",
        "roles/stat/tasks/main.yml": "- debug: msg=s\n", "roles/stat/vars/main.yml": "stat_var: 1\n"}
    play = _compile(tmp_path, files).plan.plays[0]
    assert "stat_var" in play.vars and "dyn_var" not in play.vars
    include = play.batches[0].tasks[0]
    assert play.roles[include.extras["public"]]["vars"] == {"dyn_var": 1}


def test_a_templated_action_rendering_to_a_mapping_errors_the_run_when_reached(tmp_path: Path) -> None:
    files = {"site.yml": """\
- hosts: localhost
  gather_facts: false
  vars:
    entire_task: {include_role: {name: role1}}
  tasks:
    - name: Include an entire task
      action:
        module: "{{ entire_task }}"
      tags: [never]
"""}
    (task,) = _compile(tmp_path, files).plan.plays[0].batches[0].tasks
    error = task.extras["include_error"]
    assert error["errored"] and error["action"] and "renders to a mapping" in error["reason"]


@pytest.mark.parametrize("module", ["include_role", "import_role"])
def test_a_role_as_a_handler_is_refused_with_ansible_cores_words(tmp_path: Path, module: str) -> None:
    files = {"site.yml": f"""\
- hosts: localhost
  gather_facts: false
  tasks:
    - command: "true"
      notify: h
  handlers:
    - name: h
      {module}: {{name: anything}}
"""}
    with pytest.raises(PlaybookError, match=f"Using '{module}' as a handler is not supported.") as err:
        _compile(tmp_path, files)
    assert err.value.line == 7
