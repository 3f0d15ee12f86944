"""The executor's task semantics, run as a real artifact in a subprocess."""

from __future__ import annotations

import json

from .conftest import task


def test_when_skip_and_undefined_fails(apply, tmp_path):
    r = apply([
        task("command", {"_raw_params": "touch ran"}, name="runs", when=["flag == 'yes'"]),
        task("command", {"_raw_params": "touch skipped"}, name="skips", when=["flag == 'no'"]),
        task("debug", {"msg": "x"}, name="all must hold", when=["flag == 'yes'", "other is defined"]),
        task("debug", {"msg": "x"}, name="legacy skip", skip_when=["flag == 'yes'"]),
        task("debug", {"msg": "x"}, name="undefined", when=["nope == 1"]),
        task("debug", {"msg": "x"}, name="never reached"),
    ], play_vars={"flag": "yes"})
    assert (tmp_path / "ran").exists() and not (tmp_path / "skipped").exists()
    assert r.result("runs")["status"] == "changed"
    assert r.result("skips")["status"] == "skipped"
    assert r.result("all must hold")["status"] == "skipped"
    assert r.result("legacy skip")["status"] == "skipped"
    bad = r.result("undefined")
    assert bad["status"] == "failed" and "'nope' is undefined" in bad["msg"]
    assert not [e for e in r.events if e.get("task") == "never reached"]
    assert r.rc == 2
    assert r.recap["failed"] == 1 and r.recap["skipped"] == 3


def test_loop_register_and_later_use(apply, tmp_path):
    r = apply([
        task("shell", {"_raw_params": "echo {{ item }} > {{ item }}.txt; echo {{ idx }}"},
             name="loop", loop=["a", "b", "c"], loop_control={"index_var": "idx"}, register="out"),
        task("debug", {"msg": "{{ out.results | map(attribute='stdout') | join(',') }}"}, name="show"),
        task("debug", {"msg": "{{ item.key }}={{ item.value }}"}, name="dict loop",
             loop="{{ {'x': 1} | dict2items }}"),
        # a dict's keys() is finalized as a list, as ansible-core 2.19 does (get_url's hashlib.yml)
        task("debug", {"msg": "{{ item }}"}, name="keys loop", loop="{{ {'k1': 1, 'k2': 2}.keys() }}"),
        task("command", {"_raw_params": "echo {{ item }}"}, name="loop when", loop=[1, 2, 3],
             when=["item != 2"], register="lw"),
        task("assert", {"that": ["lw.results[1] is skipped", "lw.results[0] is changed",
                                 "lw.results[2].stdout == '3'", "out.results | length == 3",
                                 "out.results[0].stdout_lines == ['0']"]}, name="check"),
    ])
    assert r.rc == 0, r.stdout + r.stderr
    assert [(tmp_path / f"{x}.txt").read_text() for x in "abc"] == ["a\n", "b\n", "c\n"]
    assert r.result("show")["msg"] == "0,1,2"
    assert r.result("dict loop")["results"][0]["msg"] == "x=1"
    assert [i["msg"] for i in r.result("keys loop")["results"]] == ["k1", "k2"]
    statuses = [i["status"] for i in r.result("loop when")["results"]]
    assert statuses == ["changed", "skipped", "changed"]
    assert r.result("check")["status"] == "ok"


def test_loop_of_non_list_fails(apply):
    r = apply([task("debug", {"msg": "{{ item }}"}, name="bad", loop="{{ 'text' }}")])
    assert r.rc == 2 and "requires a list" in r.result("bad")["msg"]


def test_changed_when_failed_when_ignore_errors(apply):
    r = apply([
        task("command", {"_raw_params": "true"}, name="never changes", changed_when=["false"]),
        task("shell", {"_raw_params": "echo boom; exit 1"}, name="not a failure", register="res",
             failed_when=["res.rc not in [0, 1]"]),
        task("shell", {"_raw_params": "echo fine"}, name="is a failure", register="res2",
             failed_when=["'fine' in res2.stdout"]),
        task("shell", {"_raw_params": "exit 4"}, name="ignored", ignore_errors=True, register="ig"),
        task("assert", {"that": ["ig is failed", "ig.rc == 4", "res is succeeded"]}, name="after"),
    ])
    assert r.result("never changes")["status"] == "ok"
    assert r.result("not a failure")["status"] == "changed"
    bad = r.result("is a failure")
    assert bad["status"] == "failed" and bad["ignored"] is False
    assert not [e for e in r.events if e.get("task") == "ignored"]
    assert r.rc == 2


def test_ignored_failure_counts_and_continues(apply):
    r = apply([
        task("shell", {"_raw_params": "exit 4"}, name="ignored", ignore_errors=True, register="ig"),
        task("assert", {"that": ["ig is failed", "ig.rc == 4"]}, name="after"),
    ])
    assert r.rc == 0
    assert r.result("ignored")["ignored"] is True
    assert r.result("after")["status"] == "ok"
    assert r.recap["ignored"] == 1 and r.recap["failed"] == 0


def test_handlers_once_in_order_flush_and_no_change(apply, tmp_path):
    log = tmp_path / "log"
    h = lambda name: task("shell", {"_raw_params": f"echo {name} >> {log}"}, name=name)  # noqa: E731
    r = apply([
        task("command", {"_raw_params": "true"}, name="t1", notify=["h2", "h1"]),
        task("command", {"_raw_params": "true"}, name="t2", notify=["h1"]),
        task("command", {"_raw_params": "true"}, name="unchanged", notify=["h3"], changed_when=["false"]),
        task("meta", {"_raw_params": "flush_handlers"}, name="flush"),
        task("shell", {"_raw_params": f"echo mid >> {log}"}, name="mid", notify=["h1"]),
    ], [h("h1"), h("h2"), h("h3")])
    assert r.rc == 0, r.stderr
    assert log.read_text().split() == ["h1", "h2", "mid", "h1"]
    assert len(r.of("handler_result")) == 3


def test_failed_task_stops_host_and_handlers(apply, tmp_path):
    r = apply([
        task("command", {"_raw_params": "true"}, name="notifies", notify=["h"]),
        task("fail", {"msg": "stop here"}, name="fails"),
        task("command", {"_raw_params": f"touch {tmp_path / 'after'}"}, name="after"),
    ], [task("command", {"_raw_params": f"touch {tmp_path / 'handler'}"}, name="h")])
    assert r.rc == 2
    assert r.result("fails")["msg"] == "stop here"
    assert not (tmp_path / "after").exists() and not (tmp_path / "handler").exists()
    assert r.recap == {**r.recap, "ok": 1, "changed": 1, "failed": 1}


def test_clear_host_errors_in_always_lets_the_failed_host_go_on(apply, tmp_path):
    """blocks/72725.yml of ansible-core: a failure in a block, then meta: clear_host_errors in its
    always section: the host goes on with the next task, its recap still counts the failure."""
    def block(always):
        return {"id": f"play-0/b{len(always)}", "name": "block", "hosts": None, "when": [], "tags": [],
                "block": [task("fail", {"msg": "first"}, name="fails")], "rescue": [], "always": always}

    r = apply([block([task("meta", {"_raw_params": "clear_host_errors"}, name="clear")]),
               task("command", {"_raw_params": f"touch {tmp_path / 'after'}"}, name="after")])
    assert r.rc == 0 and (tmp_path / "after").exists()
    assert r.recap == {**r.recap, "failed": 1, "changed": 1}
    (tmp_path / "after").unlink()
    r = apply([block([task("debug", {"msg": "no clearing"}, name="always")]),
               task("command", {"_raw_params": f"touch {tmp_path / 'after'}"}, name="after")])
    assert r.rc == 2 and not (tmp_path / "after").exists()


def test_end_role_ends_the_role_call_on_the_host(apply, tmp_path):
    """meta: end_role (ansible-core's roles/end_role*.yml): the rest of that role call is skipped,
    the tasks after it and another call of the role run."""
    def touch(name, role):
        return task("command", {"_raw_params": f"touch {tmp_path / name}"}, name=name, role=role)

    tasks = [touch("a1", "a"), task("meta", {"_raw_params": "end_role"}, name="end", role="a"),
             touch("a2", "a"), touch("b1", "b"), touch("after", None)]
    roles = {k: {"name": "r", "path": str(tmp_path), "defaults": {}, "vars": {}, "params": {}} for k in "ab"}
    r = apply(tasks, plays=[{"name": "play", "hosts": ["h1"], "vars": {}, "tasks": tasks, "handlers": [],
                             "roles": roles}])
    assert r.rc == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if not p.suffix) == ["a1", "after", "b1"]


def test_tags(apply, tmp_path):
    tasks = [
        task("command", {"_raw_params": "touch a"}, name="a", tags=["a"]),
        task("command", {"_raw_params": "touch b"}, name="b", tags=["b"]),
        task("command", {"_raw_params": "touch always"}, name="always", tags=["always"]),
        task("command", {"_raw_params": "touch never"}, name="never", tags=["never", "special"]),
        task("command", {"_raw_params": "touch untagged"}, name="untagged"),
    ]
    r = apply(tasks, None, "--tags", "a,special")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.suffix) == ["a", "always", "never"]
    for p in tmp_path.iterdir():
        if not p.suffix:
            p.unlink()
    r = apply(tasks, None, "--skip-tags", "a")
    assert r.rc == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.suffix) == ["always", "b", "untagged"]


def test_check_mode(apply, tmp_path):
    (tmp_path / "exists").write_text("")
    tasks = [
        task("command", {"_raw_params": "touch plain"}, name="plain", register="p"),
        task("command", {"_raw_params": "touch c", "creates": "exists"}, name="creates"),
        task("command", {"_raw_params": "touch forced"}, name="forced", check_mode=False),
        task("debug", {"msg": "{{ ansible_check_mode }}"}, name="flag"),
        task("assert", {"that": ["p is skipped"]}, name="registered"),
    ]
    r = apply(tasks, None, "--check")
    assert r.rc == 0, r.stdout
    assert not (tmp_path / "plain").exists() and (tmp_path / "forced").exists()
    assert r.result("plain")["status"] == "skipped"
    assert r.result("creates")["status"] == "ok"
    assert "Would not run" in r.result("creates")["msg"]
    assert r.result("flag")["msg"] is True
    assert r.of("run_start")[0]["check"] is True


def test_check_mode_forced_on_task(apply, tmp_path):
    r = apply([task("command", {"_raw_params": "touch x"}, name="t", check_mode=True)])
    assert r.rc == 0 and not (tmp_path / "x").exists()


def test_no_log_hides_values(apply, tmp_path):
    secret = "s3cr3t-VALUE-42"
    journal = tmp_path / "j" / "run.jsonl"
    r = apply([
        task("shell", {"_raw_params": f"echo {secret}"}, name="quiet", no_log=True, register="q"),
        task("debug", {"msg": "{{ item }}"}, name="quiet loop", loop=[secret], no_log=True),
        task("fail", {"msg": secret}, name="quiet fail", no_log=True, ignore_errors=True),
        task("assert", {"that": [f"q.stdout == '{secret}'"]}, name="registered still usable"),
    ], None, "--journal", str(journal))
    assert r.rc == 0
    assert secret not in r.stdout and secret not in journal.read_text()
    assert "censored" in r.result("quiet") and r.result("quiet")["status"] == "changed"
    assert r.result("registered still usable")["status"] == "ok"


def test_journal_matches_stdout_and_is_private(apply, tmp_path):
    journal = tmp_path / "runs" / "r1.jsonl"
    r = apply([task("ping", {})], None, "--journal", str(journal), "--run-id", "r1")
    assert journal.read_text() == r.stdout
    assert journal.stat().st_mode & 0o777 == 0o600
    assert journal.parent.stat().st_mode & 0o777 == 0o700
    assert r.of("run_start")[0]["run_id"] == "r1"


def test_set_fact_and_precedence(apply):
    r = apply([
        task("set_fact", {"x": "from set_fact", "n": "{{ 40 + 2 }}", "b": "yes"}, name="sf"),
        task("debug", {"msg": "{{ x }} {{ n + 1 }} {{ b }}"}, name="show"),
        task("debug", {"msg": "{{ x }}"}, name="task vars lose", vars={"x": "task"}),
        task("debug", {"msg": "{{ y }}-{{ z }}"}, name="task vars win over play", vars={"y": "task"}),
    ], hosts={"h1": {"y": "host", "z": "host"}}, play_vars={"y": "play", "z": "{{ 'pl' + 'ay' }}"})
    assert r.rc == 0, r.stdout
    assert r.result("show")["msg"] == "from set_fact 43 True"
    assert r.result("task vars lose")["msg"] == "from set_fact"
    assert r.result("task vars win over play")["msg"] == "task-play"


def test_native_types_and_omit(apply, tmp_path):
    r = apply([
        task("set_fact", {"lst": "{{ [1, 2] }}", "d": "{{ {'a': 1} }}", "s": "{{ 'x' }}y"}, name="sf"),
        task("assert", {"that": ["lst is sequence", "lst | length == 2", "d.a == 1", "s == 'xy'"]}, name="a"),
        task("command", {"_raw_params": "touch o", "chdir": "{{ omit }}"}, name="omitted"),
    ])
    assert r.rc == 0, r.stdout
    assert (tmp_path / "o").exists()


def test_until_retries(apply, tmp_path):
    counter = tmp_path / "n"
    r = apply([
        task("shell", {"_raw_params": f"echo x >> {counter}; wc -l < {counter}"}, name="retry",
             register="c", until=["c.stdout | int >= 3"], retries=5, delay=0),
        task("shell", {"_raw_params": "echo no"}, name="gives up", register="g",
             until=["g.stdout == 'yes'"], retries=1, delay=0, ignore_errors=True),
        # no retries: ansible-core's default of 3, after the first run (TaskExecutor._execute)
        task("shell", {"_raw_params": f"echo x >> {counter}.default"}, name="default retries", register="d",
             until=["false"], delay=0, ignore_errors=True),
        # retries without until: until the task succeeds (TaskExecutor._execute)
        task("shell", {"_raw_params": f"echo x >> {counter}.plain; test $(wc -l < {counter}.plain) -ge 2"},
             name="until it succeeds", register="s", retries=3, delay=0),
        task("fail", {}, name="never succeeds", register="f", retries=2, delay=0, ignore_errors=True),
    ])
    assert r.result("retry")["attempts"] == 3
    # ansible-core reports attempts == retries once they are exhausted (one less than it ran)
    assert r.result("gives up")["status"] == "failed" and r.result("gives up")["attempts"] == 1
    assert r.result("default retries")["attempts"] == 3
    assert (tmp_path / "n.default").read_text() == "x\n" * 4
    assert r.result("until it succeeds")["status"] == "changed" and r.result("until it succeeds")["attempts"] == 2
    assert r.result("never succeeds")["status"] == "failed" and r.result("never succeeds")["attempts"] == 2
    # exhausted retries add no message (TaskExecutor._execute): the last run's is kept
    assert r.result("default retries").get("msg") in (None, "")
    assert r.result("never succeeds")["msg"] == "Failed as requested from task"
    assert len(r.of("task_retry")) == 3 + 3 + 1 + 2


def test_environment_and_timeout(apply):
    r = apply([
        task("shell", {"_raw_params": "echo $GREETING"}, name="env", environment={"GREETING": "{{ 'hi' }}"}),
        task("command", {"_raw_params": "sleep 10"}, name="slow", timeout=1, ignore_errors=True),
    ])
    assert r.result("env")["stdout"] == "hi"
    slow = r.result("slow")
    assert slow["status"] == "failed" and slow["msg"].startswith("Task failed: Timed out after ")


def test_unknown_module_and_crash(apply):
    r = apply([
        task("frobnicate", {}, name="unknown", ignore_errors=True),
        task("ping", {"data": "crash"}, name="crash", ignore_errors=True),
        task("ping", {"data": "x"}, name="fine", register="p"),
        task("assert", {"that": "p.ping == 'x'", "success_msg": "ok!"}, name="check"),
    ])
    assert "couldn't resolve module/action 'frobnicate'" in r.result("unknown")["msg"]
    assert "boom" in r.result("crash")["msg"]
    assert r.result("check")["msg"] == "ok!"
    assert r.rc == 0


def test_assert_fail_msg(apply):
    r = apply([task("assert", {"that": ["1 == 1", "2 == 3"], "fail_msg": "nope"}, name="a")])
    res = r.result("a")
    assert r.rc == 2 and res["msg"] == "nope" and res["assertion"] == "2 == 3"


def test_meta_end_play_and_plays(apply, tmp_path):
    plays = [
        {"name": "p1", "hosts": ["h1"], "vars": {}, "handlers": [],
         "tasks": [task("meta", {"_raw_params": "end_play"}, name="end"),
                   task("command", {"_raw_params": "touch no"}, name="no")]},
        {"name": "p2", "hosts": ["h1"], "vars": {}, "handlers": [],
         "tasks": [task("command", {"_raw_params": "touch yes"}, name="yes")]},
        {"name": "p3", "hosts": ["other"], "vars": {}, "handlers": [],
         "tasks": [task("command", {"_raw_params": "touch other"}, name="other")]},
    ]
    r = apply([], plays=plays)
    assert r.rc == 0
    assert [e["play"] for e in r.of("play_start")] == ["p1", "p2"]
    assert (tmp_path / "yes").exists() and not (tmp_path / "no").exists()


def test_facts_are_lazy_and_setup(apply):
    r = apply([
        task("debug", {"msg": "{{ ansible_facts.system }} {{ ansible_system }}"}, name="facts",
             when=["ansible_os_family is defined"]),
        task("setup", {"filter": "ansible_python*"}, name="setup", register="s"),
        task("debug", {"var": "s.ansible_facts.ansible_python_version"}, name="var"),
        task("debug", {"var": "missing"}, name="missing"),
        task("debug", {"msg": "{{ inventory_hostname }} {{ group_names }} {{ groups.web }}"}, name="magic"),
    ])
    assert r.rc == 0, r.stdout
    assert r.result("facts")["msg"] == "Linux Linux"
    assert r.result("var")["s.ansible_facts.ansible_python_version"].count(".") == 2
    assert r.result("missing")["missing"] == "VARIABLE IS NOT DEFINED!"
    assert r.result("magic")["msg"] == "h1 ['web'] ['h1']"


def test_command_module_details(apply, tmp_path):
    (tmp_path / "sub").mkdir()
    r = apply([
        task("command", {"cmd": "pwd", "chdir": str(tmp_path / "sub")}, name="chdir"),
        task("command", {"argv": ["printf", "%s|", "a b", "$HOME"]}, name="argv"),
        task("command", {"_raw_params": "cat", "stdin": "in"}, name="stdin"),
        task("command", {"_raw_params": "touch r removes=nothing-here"}, name="inline removes"),
        task("shell", {"_raw_params": "echo $0", "executable": "/bin/bash"}, name="executable"),
        task("raw", {"_raw_params": "echo raw; echo err >&2"}, name="raw"),
        task("command", {"_raw_params": "/no/such/binary"}, name="missing", ignore_errors=True),
    ])
    assert r.result("chdir")["stdout"] == str(tmp_path / "sub")
    assert r.result("argv")["stdout"].startswith("a b|/")
    assert r.result("stdin")["stdout"] == "in"
    assert r.result("inline removes")["status"] == "ok" and not (tmp_path / "r").exists()
    assert r.result("executable")["stdout"] == "/bin/bash"
    assert r.result("raw")["stdout"] == "raw\n" and r.result("raw")["stderr"] == "err\n"
    missing = r.result("missing")
    assert missing["status"] == "failed" and "No such file" in missing["msg"]


def test_event_stream_shape(apply):
    r = apply([task("ping", {}, name="p")])
    kinds = [e["event"] for e in r.events]
    assert kinds == ["run_start", "play_start", "task_start", "task_result", "recap"]
    for line in r.stdout.splitlines():
        json.loads(line)
    res = r.result("p")
    for key in ("id", "task", "module", "status", "ignored", "rc", "stdout", "stderr", "msg", "duration"):
        assert key in res


def test_ansible_host_defaults_to_the_inventory_name(apply):
    # ansible-core's play context: lookup('vars', 'ansible_host') is the host's own name when
    # the inventory gives no address (its integration target lookup_vars reads it so)
    r = apply([task("debug", {"msg": "{{ lookup('vars', 'ansible_host') }} {{ ansible_host }}"}, name="h")])
    assert r.result("h")["msg"] == "h1 h1"


def test_a_roles_handler_reports_role_and_name_as_ansible_does(apply, tmp_path):
    # ansible-playbook reports "web : restart"; notify names the handler without its role
    r = apply([task("command", {"_raw_params": "true"}, name="web : t", role="web", notify=["restart", "tidy"])],
              [task("command", {"_raw_params": "true"}, name="restart", role="web"),
               {"name": "tidy", "role": "web", "block": [task("command", {"_raw_params": "true"}, name="inner",
                                                              role="web")]}])
    assert r.rc == 0, r.stderr
    assert [e["task"] for e in r.of("handler_result")] == ["web : restart", "web : inner"]
