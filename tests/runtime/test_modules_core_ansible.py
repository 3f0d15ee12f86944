"""Differential tests of the core modules (command, shell, raw, debug, set_fact, assert, fail,
meta, ping) run through a REAL artifact (the runtime's executor) against ansible-core.

One plan holds every case as a task (with ``register``/``ignore_errors``/``check_mode``/
``notify`` where the case needs the executor); it is built into an artifact and run once, and
the equivalent playbook is run once with ``ansible-playbook`` and the harness's result-recording
callback. Then each task's result is compared field by field (fields listed per case), plus the
order in which tasks and handlers ran (meta flush_handlers/end_play/end_host) and the files the
commands produced in the per-side work directory.

Owns: tests/runtime/test_modules_core_ansible.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .. import oracle
from ..conftest import ORACLE_TIMEOUT
from .conftest import build_test_artifact, make_plan, run_artifact
from .oracle import _without_moments
from .test_modules_support import _CALLBACK, VENV_BIN, needs_ansible, tree

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]

BASE = ("changed", "failed", "skipped")
CMD = BASE + ("rc", "stdout", "stderr", "msg", "cmd")
EXC = BASE + ("exception", "failed_when_suppressed_exception")
# A field missing from a result compares as None; a task that reported no result at all
# (skipped by `when`, or a meta task that ran) compares as {"absent": True}.


def T(name: str, module: str, args: Any = None, fields: tuple[str, ...] = BASE,
      ours: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    """One case: ``args`` is a dict (``_raw_params`` = free-form text) or a string.

    ``fields`` are compared with ansible-core's result; ``ours`` pins the runtime's own value
    of a field left out of ``fields`` because it differs from ansible-core (documented at the
    case), so that field is still tested.
    """
    if isinstance(args, str):
        args = {"_raw_params": args}
    return {"name": name, "module": module, "args": args or {}, "fields": fields,
            "ours": ours or {}, "kw": kw}


IGN = {"ignore_errors": True}

CASES_MAIN = [
    # ------------------------------------------------------------------ command
    T("command free-form", "command", "echo hello   world", CMD, register="r_cmd"),
    T("command argv", "command", {"argv": ["printf", "%s|", "a b", "c"]}, CMD),
    T("command cmd+stdin", "command", {"cmd": "cat", "stdin": "line1"}, CMD),
    T("command stdin no newline", "command", {"_raw_params": "od -c", "stdin": "x",
                                              "stdin_add_newline": False}, CMD),
    T("command chdir", "command", {"_raw_params": "pwd", "chdir": "{{ d }}"}, CMD),
    T("command inline chdir", "command", "ls chdir={{ d }}", CMD),
    T("command creates runs", "command", {"_raw_params": "touch by_command",
                                          "chdir": "{{ d }}", "creates": "by_command"}, CMD),
    T("command creates skips", "command", {"_raw_params": "touch by_command2",
                                           "chdir": "{{ d }}", "creates": "by_command"}, CMD),
    T("command creates glob", "command", {"_raw_params": "touch by_glob",
                                          "creates": "{{ d }}/by_comm*"}, CMD),
    T("command removes absent", "command", {"_raw_params": "rm {{ d }}/nope",
                                            "removes": "{{ d }}/nope"}, CMD),
    T("command removes present", "command", {"_raw_params": "rm {{ d }}/by_command",
                                             "removes": "{{ d }}/by_command"}, CMD),
    T("command no shell syntax", "command", "echo a > b | c", CMD),
    T("command unset var kept", "command", "echo $RUSTLE_SURELY_UNSET_VAR", CMD),
    T("command strip_empty_ends off", "command", {"argv": ["printf", "a\\n\\n"],
                                                  "strip_empty_ends": False}, CMD),
    T("command nonzero", "command", "false", CMD, **IGN),
    T("command stderr", "command", "ls /nonexistent-rustle-path", CMD, **IGN),
    T("command check plain", "command", "touch {{ d }}/check_plain", CMD, check_mode=True),
    T("command check creates absent", "command", {"_raw_params": "touch {{ d }}/cc",
                                                  "creates": "{{ d }}/cc"}, CMD,
      check_mode=True),
    T("command check creates present", "command", {"_raw_params": "touch x",
                                                   "creates": "{{ d }}/by_command2"}, CMD,
      check_mode=True),
    T("command check removes absent", "command", {"_raw_params": "rm x",
                                                  "removes": "{{ d }}/nope"}, CMD,
      check_mode=True),
    T("command no command", "command", {"chdir": "{{ d }}"}, BASE + ("msg",), **IGN),
    T("command cmd and argv", "command", {"cmd": "true", "argv": ["true"]}, BASE + ("msg",),
      **IGN),
    # ------------------------------------------------------------------ shell
    T("shell pipe", "shell", "echo $((1+2)) | tr 3 X", CMD),
    T("shell streams and rc", "shell", "echo out; echo err >&2; exit 3", CMD, **IGN),
    T("shell creates runs", "shell", {"_raw_params": "echo hi > by_shell",
                                      "chdir": "{{ d }}", "creates": "by_shell"}, CMD),
    T("shell creates skips", "shell", {"_raw_params": "echo again > by_shell",
                                       "chdir": "{{ d }}", "creates": "by_shell"}, CMD),
    T("shell stdin", "shell", {"_raw_params": "read x; echo got $x", "stdin": "val"}, CMD),
    T("shell executable bash", "shell", {"_raw_params": "echo ${BASH_VERSION:+bash}",
                                         "executable": "/bin/bash"}, CMD),
    T("shell cmd", "shell", {"cmd": "echo via cmd && echo two"}, CMD, register="r_shell"),
    T("shell removes present", "shell", {"cmd": "rm by_shell && echo removed",
                                         "chdir": "{{ d }}", "removes": "by_shell"}, CMD),
    T("shell check plain", "shell", "echo x > {{ d }}/shell_check", CMD, check_mode=True),
    T("shell check removes present", "shell", {"_raw_params": "rm by_command2",
                                               "chdir": "{{ d }}",
                                               "removes": "by_command2"}, CMD, check_mode=True),
    T("shell env", "shell", "echo $RUSTLE_E", CMD, environment={"RUSTLE_E": "from-env"}),
    # ------------------------------------------------------------------ raw
    T("raw echo", "raw", "echo raw out", ("changed", "failed", "rc", "stdout", "stderr")),
    T("raw exit", "raw", "echo bad; exit 4", ("changed", "failed", "rc", "stdout", "msg"),
      **IGN),
    T("raw stderr", "raw", "echo e >&2", ("changed", "failed", "rc", "stderr")),
    T("raw writes file", "raw", "printf raw > {{ d }}/by_raw", ("changed", "failed", "rc")),
    T("raw executable", "raw", {"_raw_params": "echo ${BASH_VERSION:+bash}",
                                "executable": "/bin/bash"}, ("changed", "failed", "rc",
                                                             "stdout")),
    T("raw check", "raw", "touch {{ d }}/raw_check", ("changed", "failed", "skipped", "msg"),
      check_mode=True),
    # ------------------------------------------------------------------ debug
    T("debug msg", "debug", {"msg": "hello {{ who }}"}, BASE + ("msg",)),
    T("debug default", "debug", {}, BASE + ("msg",)),
    T("debug var", "debug", {"var": "who"}, BASE + ("who",)),
    # DIFFERENCE: ansible-core 2.19 shows "<< error 1 - 'rustle_undefined' is undefined >>"
    # (and a warning); the runtime keeps ansible-core <= 2.18's placeholder, which
    # tests/runtime/test_executor.py pins.
    T("debug var undefined", "debug", {"var": "rustle_undefined"}, BASE,
      ours={"rustle_undefined": "VARIABLE IS NOT DEFINED!"}),
    T("debug msg list", "debug", {"msg": [1, "two", {"k": "{{ who }}"}]}, BASE + ("msg",)),
    T("debug var registered", "debug", {"var": "r_cmd.stdout"}, BASE + ("r_cmd.stdout",)),
    T("debug var registered lines", "debug", {"var": "r_shell.stdout_lines"},
      BASE + ("r_shell.stdout_lines",)),
    T("debug var expression", "debug", {"var": "nums | sum"}, BASE + ("nums | sum",)),
    T("debug var failing filter", "debug", {"var": "'http://a' | urlsplit('bad_filter')"}, BASE + ("msg",),
      **IGN),
    T("debug verbosity", "debug", {"msg": "hidden", "verbosity": 2}, BASE),
    T("debug registered rc", "debug", {"msg": "rc={{ r_cmd.rc }} changed={{ r_cmd.changed }}"},
      BASE + ("msg",)),
    # ------------------------------------------------------------------ set_fact
    T("set_fact scalars", "set_fact", {"f_int": 1, "f_str": "text"}, BASE),
    T("set_fact templated", "set_fact", {"f_sum": "{{ f_int + 1 }}",
                                         "f_list": "{{ nums | map('string') | list }}"}, BASE),
    T("set_fact yes string", "set_fact", {"f_yes": "yes", "f_false": "False"}, BASE),
    T("set_fact nested", "set_fact", {"f_dict": {"k": ["{{ who }}", 2]}}, BASE),
    T("set_fact overrides play var", "set_fact", {"who": "override"}, BASE),
    T("set_fact cacheable", "set_fact", {"f_cached": "c", "cacheable": True}, BASE),
    # DIFFERENCE (msg only): ansible-core 2.19 says "Task failed: Invalid variable name
    # '1bad'."; the runtime keeps ansible-core <= 2.18's wording.
    T("set_fact bad name", "set_fact", {"1bad": 1}, BASE, **IGN,
      ours={"msg": "The variable name '1bad' is not valid. Variables must start with a letter "
                   "or underscore character, and contain only letters, numbers and "
                   "underscores."}),
    T("set_fact empty", "set_fact", {}, BASE, **IGN),
    T("see f_int", "debug", {"var": "f_int"}, BASE + ("f_int",)),
    T("see f_str", "debug", {"var": "f_str"}, BASE + ("f_str",)),
    T("see f_sum", "debug", {"var": "f_sum"}, BASE + ("f_sum",)),
    T("see f_list", "debug", {"var": "f_list"}, BASE + ("f_list",)),
    # DIFFERENCE: ansible-core <= 2.18's set_fact turned the strings yes/no/true/false into
    # booleans; 2.19 keeps them strings ("False False"). The runtime keeps the <= 2.18
    # conversion, which tests/runtime/test_executor.py pins.
    T("see f_yes", "debug", {"msg": "{{ f_yes is sameas true }} {{ f_false is sameas false }}"},
      BASE, ours={"msg": "True True"}),
    T("see f_dict", "debug", {"var": "f_dict"}, BASE + ("f_dict",)),
    T("see who", "debug", {"msg": "{{ who }}"}, BASE + ("msg",)),
    T("see f_cached", "debug", {"var": "f_cached"}, BASE + ("f_cached",)),
    # ------------------------------------------------------------------ assert
    T("assert pass", "assert", {"that": "1 == 1"}, BASE + ("msg",)),
    T("assert pass list success_msg", "assert", {"that": ["f_int == 1", "f_str == 'text'"],
                                                  "success_msg": "both ok"}, BASE + ("msg",)),
    T("assert fail default", "assert", {"that": ["f_int == 1", "f_int == 2"]},
      BASE + ("msg", "assertion", "evaluated_to"), **IGN),
    T("assert fail_msg", "assert", {"that": "who == 'nobody'", "fail_msg": "not {{ who }}"},
      BASE + ("msg", "assertion"), **IGN),
    T("assert legacy msg", "assert", {"that": ["false"], "msg": "legacy"},
      BASE + ("msg",), **IGN),
    T("assert registered", "assert", {"that": ["r_cmd is changed", "r_cmd.rc == 0",
                                               "r_shell.stdout_lines | length == 2"]},
      BASE + ("msg",)),
    T("assert quiet", "assert", {"that": "nums | length == 3", "quiet": True}, BASE + ("msg",)),
    T("assert undefined", "assert", {"that": "rustle_undefined == 1"},
      BASE + ("msg", "assertion", "exception"), **IGN),
    T("assert without that", "assert", {"quiet": True}, BASE + ("msg",), **IGN),
    T("assert that null", "assert", {"that": None}, BASE + ("msg",), **IGN),
    T("assert that empty", "assert", {"that": ["1 == 1", " "]}, BASE + ("msg",), **IGN),
    # ------------------------------------------------------------------ fail
    T("fail default", "fail", {}, BASE + ("msg",), **IGN),
    T("fail templated msg", "fail", {"msg": "boom {{ who }}"}, BASE + ("msg",), register="r_fail",
      **IGN),
    T("fail list msg", "fail", {"msg": ["a", "b"]}, BASE + ("msg",), **IGN),
    T("fail when false", "fail", {"msg": "never"}, BASE, when=["nums | length > 5"]),
    T("fail failed_when false", "fail", {"msg": "tamed"}, ("changed", "failed", "msg"),
      failed_when="false"),
    T("see r_fail", "debug", {"msg": "{{ r_fail.failed }} {{ r_fail.msg }}"}, BASE + ("msg",)),
    # ------------------------------------------------------------------ ping
    T("ping default", "ping", {}, BASE + ("ping",), register="r_ping"),
    T("ping data", "ping", {"data": "hello"}, BASE + ("ping",)),
    T("ping check", "ping", {"data": "chk"}, BASE + ("ping",), check_mode=True),
    # a module's exception in ansible-core 2.19's words: "Task failed: Module failed: boom"
    T("ping crash", "ping", {"data": "crash"}, BASE + ("msg",), **IGN),
    T("ping changed_when", "ping", {}, BASE + ("ping",), changed_when="true"),
    T("see r_ping", "debug", {"var": "r_ping.ping"}, BASE + ("r_ping.ping",)),
    # ------------------------------------------------------------------ errors as 2.19 shapes them
    # a failed result carries `exception` ("(traceback unavailable)" without tracebacks enabled);
    # a failure failed_when overrules keeps it as `failed_when_suppressed_exception`
    T("exception rc 1", "shell", "exit 1", EXC, **IGN),
    T("exception rc 0", "shell", "exit 0", EXC),
    T("exception failed_when true", "shell", "exit 0", EXC, failed_when="true", **IGN),
    T("exception failed_when false", "shell", "exit 1", EXC, failed_when="false"),
    T("exception module crash", "ping", {"data": "crash"}, EXC + ("msg",), **IGN),
    T("exception built-in failure", "file", {"path": "{{ d }}/no/such", "state": "file"},
      EXC + ("msg",), **IGN),
    T("exception loop", "shell", "exit {{ item }}", BASE, loop=[0, 1], register="r_exc", **IGN),
    T("see exception loop", "debug",
      {"msg": "{{ r_exc.exception | default('none') }} {{ r_exc.results[0].exception | default('none') }} "
              "{{ r_exc.results[1].exception }}"}, BASE + ("msg",)),
    # an undefined name: the module's own msg stays, the error is in <keyword>_result
    T("changed_when undefined", "command", "echo hi", EXC + ("msg", "changed_when_result"),
      changed_when="rustle_undefined", **IGN),
    T("failed_when undefined", "command", "echo hi", EXC + ("msg", "failed_when_result"),
      failed_when="rustle_undefined == 1", **IGN),
    T("when undefined", "debug", {"msg": "x"}, EXC + ("msg",), when=["rustle_undefined == 1"], **IGN),
    T("until undefined", "command", "echo hi", EXC + ("msg",), until="rustle_undefined == 1",
      retries=1, delay=0, **IGN),
    T("arg undefined", "copy", {"content": "{{ rustle_undefined }}", "dest": "{{ d }}/never"},
      EXC + ("msg",), **IGN),
    # a task's interpreter that does not exist: the shell's words in module_stderr, Ansible's in msg
    T("interpreter missing", "ping", {}, EXC + ("msg", "rc", "module_stdout", "module_stderr"),
      vars={"ansible_python_interpreter": "/bogus/path"}, **IGN),
    T("interpreter not on PATH", "file", {"path": "{{ d }}/never", "state": "touch"},
      EXC + ("msg", "rc", "module_stdout", "module_stderr"),
      vars={"ansible_python_interpreter": "rustle_bogus_interpreter"}, **IGN),
    T("interpreter for debug", "debug", {"msg": "runs no module"}, BASE + ("msg",),
      vars={"ansible_python_interpreter": "/bogus/path"}),
    # what AnsiballZ's wrapper does before a Python module: its open-files limit, its debugger
    T("rlimit nofile", "shell", "ulimit -n", BASE + ("stdout",),
      vars={"ansible_python_module_rlimit_nofile": "{{ 123 }}"}),
    T("rlimit omitted", "shell", "ulimit -n", BASE + ("stdout",),
      vars={"ansible_python_module_rlimit_nofile": "{{ omit }}"}),
    T("rlimit undefined", "shell", "ulimit -n", EXC + ("msg",),
      vars={"ansible_python_module_rlimit_nofile": "{{ rustle_undefined }}"}, **IGN),
    T("rlimit restored", "shell", "ulimit -n", BASE + ("stdout",)),
    T("debugger missing", "ping", {}, EXC + ("msg",),
      vars={"_ansible_ansiballz_pydevd_config": {"module": "rustle_no_such_debugger"}}, **IGN),
    T("free-form arg undefined", "command", "echo {{ rustle_undefined.x }}", EXC + ("msg",), **IGN),
    # a missing attribute or key: 2.19's "object of type 'dict' has no attribute 'x'" (Jinja2
    # alone says "'dict object' has no attribute 'x'"), in the runtime's own evaluator (a bare
    # name chain) and in Jinja2 (a filter over it), in a condition and in an argument
    T("attribute of a registered dict", "debug", {"msg": "{{ r_cmd.nope }}"}, EXC + ("msg",), **IGN),
    T("attribute in a condition", "debug", {"msg": "x"}, EXC + ("msg",), when=["r_cmd.nope == 1"], **IGN),
    T("attribute under a filter", "debug", {"msg": "{{ r_cmd.nope | lower }}"}, EXC + ("msg",), **IGN),
    T("key of a dict", "debug", {"msg": "{{ rustle_d['nope'] }}"}, EXC + ("msg",),
      vars={"rustle_d": {"a": 1}}, **IGN),
    T("attribute of a list, int, str, None", "debug",
      {"msg": "{{ [rustle_l.x | default(1), rustle_n.x | default(2)] }}{{ rustle_s.x }}"}, EXC + ("msg",),
      vars={"rustle_l": [1], "rustle_n": 3, "rustle_s": "s"}, **IGN),
    T("attribute of None", "debug", {"msg": "{{ rustle_none.x }}"}, EXC + ("msg",),
      vars={"rustle_none": None}, **IGN),
    T("index past a list's end", "debug", {"msg": "{{ rustle_l[5] }}"}, EXC + ("msg",),
      vars={"rustle_l": [1]}, **IGN),
    # DIFFERENCE (msg pinned, not compared): for a falsy index ansible-core keeps Jinja2's words,
    # naming its own lazy container's class ("ansible._internal._templating._lazy_containers.
    # _AnsibleLazyTemplateList object has no element 0"); the runtime names the list
    T("index 0 of an empty list", "debug", {"msg": "{{ rustle_l[0] }}"}, EXC, vars={"rustle_l": []},
      ours={"msg": "Task failed: Finalization of task args for 'ansible.builtin.debug' failed: "
                   "Error while resolving value for 'msg': list object has no element 0"}, **IGN),
    T("method a value lacks", "debug", {"msg": "x"}, EXC + ("msg",), when=["rustle_n.startswith('a')"],
      vars={"rustle_n": 3}, **IGN),
]

HANDLER = T("handler H", "command", "echo handled", CMD)
# meta: Ansible reports no per-host result for a meta task that ran (only for one skipped by
# its `when`), so a meta task is compared by its effect: which tasks and handlers ran, in order.
CASES_FLUSH = [
    T("flush notify", "command", "true", BASE, notify=["handler H"]),
    T("meta noop", "meta", "noop", ()),
    T("meta flush", "meta", "flush_handlers", ()),
    T("after flush", "debug", {"msg": "after"}, BASE + ("msg",), notify=["handler H"]),
    T("notify again", "command", "true", BASE, notify=["handler H"]),
    # DIFFERENCE (skip_reason/msg only, not compared): ansible-core's skipped meta says
    # "flush_handlers conditional evaluated to False, not running handlers for h1"; the
    # runtime skips it like any task ("Conditional result was False").
    T("meta flush skipped", "meta", "flush_handlers", BASE, when=["nums | length > 5"]),
    T("meta clear_host_errors", "meta", "clear_host_errors", ()),
    T("meta refresh_inventory", "meta", "refresh_inventory", ()),
    T("last in flush play", "debug", {"msg": "last"}, BASE + ("msg",)),
]
CASES_END_PLAY = [
    T("before end_play", "debug", {"msg": "before"}, BASE + ("msg",)),
    T("end_play skipped", "meta", "end_play", BASE, when=["nums | length > 5"]),  # as above
    T("between", "debug", {"msg": "between"}, BASE + ("msg",)),
    T("meta end_play", "meta", "end_play", ()),
    T("after end_play", "debug", {"msg": "never"}, BASE),
]
CASES_END_HOST = [
    T("before end_host", "command", "true", BASE, notify=["handler H"]),
    T("meta end_host", "meta", "end_host", ()),
    T("after end_host", "debug", {"msg": "never"}, BASE),
]
CASES_LAST = [
    T("next play runs", "debug", {"msg": "{{ who }} {{ f_int }}"}, BASE + ("msg",)),
    T("meta clear_facts", "meta", "clear_facts", ()),
    T("set_fact survives clear_facts", "debug", {"var": "f_str"}, BASE + ("f_str",)),
]
# Host data is data (issue 11): a file whose text is a template, read back by a command, slurp,
# set_fact and lookup('file'), is printed and copied literally; nothing in it runs (it would
# touch PWNED in the work directory, which test_files_produced_match_ansible would see).
# The refusals are compared by status only (their msg: tests/runtime/test_host_data.py).
CASES_HOST_DATA = [
    T("read payload", "command", "cat {{ d }}/payload", CMD, register="r_evil"),
    T("print payload", "debug", {"msg": "{{ r_evil.stdout }}"}, BASE + ("msg",)),
    T("print payload in text", "debug", {"msg": "got {{ r_evil.stdout }}!"}, BASE + ("msg",)),
    T("print payload var", "debug", {"var": "r_evil.stdout"}, BASE + ("r_evil.stdout",)),
    T("copy payload", "copy", {"content": "{{ r_evil.stdout }}", "dest": "{{ d }}/copied"},
      ("changed", "failed")),
    T("compare payload", "debug", {"msg": "compared"}, BASE + ("msg",),
      when=["r_evil.stdout != ''"]),
    T("loop payload", "debug", {"msg": "{{ item }}"}, BASE, loop="{{ r_evil.stdout_lines }}"),
    T("read bare", "command", "cat {{ d }}/bare", CMD, register="r_bare"),
    T("templated when", "debug", {"msg": "ran"}, BASE, when=["{{ r_bare.stdout }}"], **IGN),
    T("set_fact payload", "set_fact", {"f_evil": "{{ r_evil.stdout }}",
                                       "f_pre": "pre {{ r_evil.stdout }}",
                                       "f_bare": "{{ r_bare.stdout }}"}, BASE),
    T("print facts", "debug", {"msg": "{{ f_evil }} / {{ f_pre }}"}, BASE + ("msg",)),
    T("bare fact when", "debug", {"msg": "ran"}, BASE, when=["f_bare"], **IGN),
    T("slurp payload", "slurp", {"src": "{{ d }}/payload"}, BASE + ("encoding", "source"),
      register="r_slurp"),
    T("slurp missing", "slurp", {"src": "{{ d }}/nope"}, BASE + ("msg",), **IGN),
    T("print slurped", "debug", {"msg": "{{ r_slurp.content | b64decode }}"}, BASE + ("msg",)),
    T("set_fact slurped", "set_fact", {"f_slurped": "{{ r_slurp.content | b64decode }}"}, BASE),
    T("print slurped fact", "debug", {"msg": "{{ f_slurped }}"}, BASE + ("msg",)),
    T("print lookup", "debug", {"msg": "{{ lookup('file', d ~ '/payload') }}"}, BASE + ("msg",)),
    T("set_fact lookup", "set_fact", {"f_looked": "{{ lookup('file', d ~ '/payload') }}"}, BASE),
    T("print lookup fact", "debug", {"msg": "{{ f_looked }}"}, BASE + ("msg",)),
]
PLAYS = [("main", CASES_MAIN, []), ("flush", CASES_FLUSH, [HANDLER]),
         ("end_play", CASES_END_PLAY, []), ("end_host", CASES_END_HOST, [HANDLER]),
         ("last", CASES_LAST, []), ("host data", CASES_HOST_DATA, [])]


def _play_vars(d: Path) -> dict[str, Any]:
    return {"d": str(d), "who": "world", "nums": [1, 2, 3]}


def _setup(d: Path) -> None:
    d.mkdir(parents=True)
    (d / "seed").write_text("seed\n")
    (d / "payload").write_text(f"{{{{ lookup('pipe', 'touch {d}/PWNED') }}}}\n")
    (d / "bare").write_text(f"lookup('pipe', 'touch {d}/PWNED-bare')\n")


# ---------------------------------------------------------------- ansible side

def _ansible_task(case: dict[str, Any]) -> dict[str, Any]:
    args = dict(case["args"])
    out: dict[str, Any] = {"name": case["name"]}
    if "_raw_params" in args:
        out[case["module"]] = args.pop("_raw_params")
        if args:
            out["args"] = args
    else:
        out[case["module"]] = args
    out.update(case["kw"])
    return out


def _run_ansible(tmp: Path, d: Path) -> list[dict[str, dict[str, Any]]]:
    """ansible-playbook on the whole batch; per play, the task results in the order they came."""
    plugins = tmp / "callback_plugins"
    plugins.mkdir()
    (plugins / "rustle_collect.py").write_text(_CALLBACK)
    plays = [{"name": name, "hosts": "all", "gather_facts": False, "vars": _play_vars(d),
              "tasks": [_ansible_task(c) for c in cases],
              "handlers": [_ansible_task(h) for h in handlers]}
             for name, cases, handlers in PLAYS]
    (tmp / "inventory.ini").write_text(
        f"h1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    (tmp / "pb.yml").write_text(json.dumps(plays))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="rustle_collect", ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=str(plugins), ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_HOME=str(tmp / "ahome"), ANSIBLE_DEPRECATION_WARNINGS="False",
               ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_PIPELINING="True",
               ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory.ini", "pb.yml"],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=ORACLE_TIMEOUT)
    start = proc.stdout.find('{"plays"')
    assert start >= 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout[start:])["plays"]


# ---------------------------------------------------------------- our side

def _our_task(case: dict[str, Any], pid: int, i: int) -> dict[str, Any]:
    kw = dict(case["kw"])
    for key in ("when", "notify"):
        if key in kw and not isinstance(kw[key], list):
            kw[key] = [kw[key]]
    return {"id": f"play-{pid}/t{i}", "name": case["name"], "module": case["module"],
            "args": dict(case["args"]), "hosts": None, "when": kw.pop("when", []), "tags": [],
            "notify": kw.pop("notify", []), **kw}


def _run_ours(tmp: Path, d: Path) -> list[dict[str, dict[str, Any]]]:
    plays = [{"name": name, "hosts": ["h1"], "vars": _play_vars(d),
              "tasks": [_our_task(c, p, i) for i, c in enumerate(cases)],
              "handlers": [_our_task(h, p, 100 + i) for i, h in enumerate(handlers)]}
             for p, (name, cases, handlers) in enumerate(PLAYS)]
    artifact = build_test_artifact(tmp, make_plan([], plays=plays))
    res = run_artifact(artifact, "run", "--host", "h1", cwd=tmp)
    assert res.rc == 0, res.stdout + res.stderr
    out: list[dict[str, dict[str, Any]]] = []
    for event in res.events:
        if event["event"] == "play_start":
            out.append({})
        elif event["event"] in ("task_result", "handler_result"):
            out[-1][event["task"]] = event
    return out


# ---------------------------------------------------------------- comparison

def _norm(value: Any, d: Path) -> Any:
    if isinstance(value, str):
        return value.replace(str(d), "{d}")
    if isinstance(value, list):
        return [_norm(v, d) for v in value]
    if isinstance(value, dict):
        return {k: _norm(v, d) for k, v in value.items()}
    return value


def _fields(result: dict[str, Any] | None, fields: tuple[str, ...], d: Path) -> dict[str, Any]:
    if result is None:
        return {"absent": True}
    out = {}
    for key in fields:
        value = result.get(key)
        if key in ("changed", "failed", "skipped"):
            value = bool(value)
        elif key in ("msg", "stdout", "stderr") and value == "":
            value = None  # the event protocol always carries these keys, "" when unset
        out[key] = _norm(value, d)
    return out


def _ran(play: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The results that Ansible would report: drop our task_result for an executed meta task
    and for a task skipped by its `when` (the harness callback records neither)."""
    return {name: r for name, r in play.items()
            if not (r.get("module") == "meta" and r.get("status") != "skipped")
            and not (r.get("false_condition") and r.get("module") != "meta")}


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    needs_ansible()
    tmp = tmp_path_factory.mktemp("core_ansible")
    (tmp / "a").mkdir()
    (tmp / "o").mkdir()
    da, do = tmp / "a" / "work", tmp / "o" / "work"
    _setup(da)
    _setup(do)
    # ansible-playbook's side recorded (tests/oracle.py): keyed by the plays, the work dir's files
    # and the callback; its results without times and inodes, and the work dir it left
    places = {"{d}": da, "{tmp}": tmp}
    inputs = oracle.norm({"plays": [[name, cases, handlers] for name, cases, handlers in PLAYS],
                          "vars": _play_vars(da), "files": oracle.files(da), "callback": _CALLBACK,
                          "env": oracle.env(dict(os.environ))}, places)

    def run() -> dict[str, Any]:  # a play's results as [name, result] pairs: a record's keys are sorted
        plays = [list(play.items()) for play in _run_ansible(tmp / "a", da)]
        return oracle.norm({"plays": _without_moments(plays), "tree": jtree(da)}, places)

    ansible = oracle.recorded("core", inputs, run)
    ansible["plays"] = [dict(play) for play in ansible["plays"]]
    ours = oracle.norm(_run_ours(tmp / "o", do), {"{d}": do, "{tmp}": tmp})  # as the record is written
    return {"ansible": ansible["plays"], "ours": ours, "da": da, "do": do, "tree": ansible["tree"]}


def jtree(root: Path) -> dict[str, Any]:
    """``tree(root)`` as JSON, as a record holds it (the same for both sides)."""
    return {k: [oracle.blob(x) if isinstance(x, bytes) else x for x in v] for k, v in tree(root).items()}


def _case_ids() -> list[tuple[int, str]]:
    return [(p, c["name"]) for p, (_, cases, handlers) in enumerate(PLAYS)
            for c in [*cases, *handlers[:1]] if c["fields"]]


@pytest.mark.parametrize("play,name", _case_ids(), ids=[n for _, n in _case_ids()])
def test_task_result_matches_ansible(both, play, name):
    cases = {c["name"]: c for c in [*PLAYS[play][1], *PLAYS[play][2]]}
    fields = cases[name]["fields"]
    theirs = both["ansible"][play].get(name)
    ours = _ran(both["ours"][play]).get(name)
    assert _fields(ours, fields, both["do"]) == _fields(theirs, fields, both["da"]), (
        f"ansible={theirs!r}\nours={ours!r}")
    for key, value in cases[name]["ours"].items():
        assert ours is not None and ours.get(key) == value, (key, ours)


def test_run_order_matches_ansible(both):
    """Which tasks and handlers ran, in which order (flush_handlers, end_play, end_host)."""
    ours = [list(_ran(p)) for p in both["ours"]]
    theirs = [list(p) for p in both["ansible"]]
    assert ours == theirs


def test_files_produced_match_ansible(both):
    assert jtree(both["do"]) == both["tree"]
    assert "by_raw" in tree(both["do"])


def test_host_data_prints_literally_and_never_runs(both):
    """The register/set_fact/slurp/lookup probes: nothing ran on either side, and our messages
    are the payload itself, as ansible-core prints it."""
    ours = _ran(both["ours"][-1])
    theirs = both["ansible"][-1]
    payload = f"{{{{ lookup('pipe', 'touch {both['do']}/PWNED') }}}}"
    assert not [p for p in tree(both["do"]) if p.startswith("PWNED")]
    assert not [p for p in both["tree"] if p.startswith("PWNED")]
    for name in ("print payload", "print facts", "print slurped", "print lookup fact"):
        assert ours[name]["msg"].startswith(payload.replace(str(both["do"]), "{d}")), (name, ours[name])
        assert _norm(ours[name]["msg"], both["do"]) == _norm(theirs[name]["msg"], both["da"])
    assert (both["do"] / "copied").read_text() == payload
    for name in ("templated when", "bare fact when"):
        assert ours[name]["status"] == "failed" and theirs[name]["failed"], (name, ours[name])
