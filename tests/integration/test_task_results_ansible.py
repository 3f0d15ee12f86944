"""What users see of each task, against ansible-playbook 2.19: the names it shows (a name that
cannot be rendered shows ``<< error N - why >>`` and warns, an include is named as it names it,
``ansible_failed_task.name`` is the name shown), each host's status per task (``--output json``
and the state database's ``ignored``), ansible.cfg's ``deprecation_warnings``, and the origin a
strict conditional's message and the origin filter name for an extra var (``-e name=value``,
``-e @file``) and a set_fact value; a name over
what only the run knows (a registered result, a fact, a handler's) is the first host's, in later
``serial`` batches too, but for an included file's tasks.

One ansible-playbook run (``-f 1``, two local hosts) and two rustle-deploy runs serve every test."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from typing import Any

import pytest

from .conftest import ANSIBLE, ansible_env

pytestmark = pytest.mark.ansible

BOOK = """\
- hosts: all
  gather_facts: false
  vars:
    word: play
  tasks:
    - name: "hello {{ word }}"
      command: echo hi
    - name: "first host's {{ who }}"
      debug: msg=h
    - name: "broken {{ nope }}"
      debug: msg=y
    - name: "loop {{ item }}"
      debug: msg=z
      loop: [1, 2]
    - name: "two {{ nope }} and {{ word }} {{ other | default('dflt') }} {{ 1 + 'a' }} {{ word }}"
      debug: msg=t
    - include_tasks: inc.yml
    - name: "include {{ word }}"
      include_tasks: inc.yml
    - name: skipped on b
      debug: msg=s
      when: inventory_hostname == 'a'
    - name: ignored failure
      fail: msg=ignored
      ignore_errors: true
    - name: extra var from the command line
      debug: msg=x
      when: eflag
      ignore_errors: true
    - name: extra var from a file
      debug: msg=x
      when: fflag
      ignore_errors: true
    - name: deprecated conditional
      debug: msg=d
      when: "{{ word == 'play' }}"
    - block:
        - name: "fail {{ word }} {{ nope }}"
          fail: msg=boom
      rescue:
        - name: rescued
          debug: msg="failed task {{ ansible_failed_task.name }}"
    - block:
        - name: "fail on {{ who }}"
          fail: msg=again
      rescue:
        - name: rescued again
          debug: msg="failed task {{ ansible_failed_task.name }}"
- hosts: all
  gather_facts: false
  serial: 1
  tasks:
    - command: echo {{ who }}
      register: r
    - set_fact:
        mine: "{{ who | lower }}"
    - name: a set_fact value in a conditional
      debug: msg=x
      when: mine
      ignore_errors: true
    - name: origin of a set_fact value
      debug: msg="{{ mine | ansible._protomatter.origin }} {{ mine | ansible._protomatter.tag_names }}"
    - name: "registered {{ r.stdout }} and fact {{ mine }}"
      debug: msg=r
    - name: "looped {{ who }} {{ item }}"
      debug: msg=l
      loop: [1]
    - include_tasks: inc2.yml
    - name: notify
      command: echo
      notify: h
  handlers:
    - name: "handler {{ r.stdout }}"
      listen: h
      debug: msg=h
"""
INC = '- name: "in {{ word }}"\n  debug: msg=i\n'
INC2 = '- name: "in2 {{ r.stdout }}"\n  debug: msg=i\n'
# ansible-playbook's per-host result lines, and what --output json calls them
_LINE = re.compile(r"^(ok|changed|skipping|fatal|included): (?:\[(\w+)\]|.* for ([\w, ]+)$)")
_STATUS = {"ok": "ok", "changed": "changed", "skipping": "skipped", "fatal": "failed", "included": "ok"}


def _oracle_results(stdout: str) -> dict[str, list[tuple[str, str]]]:
    """{host: [(banner, status)]} of ansible-playbook's default output (``-f 1``), a loop's
    result by its first item's line (all of them agree here)."""
    out: dict[str, list[tuple[str, str]]] = {}
    banner = ""
    last: tuple[str, int] | None = None
    for line in stdout.splitlines():
        m = re.match(r"^(?:TASK|RUNNING HANDLER) \[(.*)\] \*+$", line)
        if m:
            banner = m.group(1)
            continue
        if line == "...ignoring" and last is not None:
            host, i = last
            out[host][i] = (out[host][i][0], "ignored")
            continue
        m = _LINE.match(line)
        if m:
            for host in ([m.group(2)] if m.group(2) else [h.strip() for h in m.group(3).split(",")]):
                if "=> (item=" in line and out.get(host) and out[host][-1][0] == banner:
                    continue  # a loop's later item: one result per host and task
                out.setdefault(host, []).append((banner, _STATUS[m.group(1)]))
                last = (host, len(out[host]) - 1)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("task-results")
    (work / "site.yml").write_text(BOOK)
    (work / "inc.yml").write_text(INC)
    (work / "inc2.yml").write_text(INC2)
    (work / "ev.yml").write_text("# extra vars\nfflag: word\n")
    extra = ["-e", "eflag=word", "-e", f"@{work}/ev.yml"]
    (work / "inv.ini").write_text("".join(
        f"{h} who={h.upper()} ansible_connection=local ansible_python_interpreter={sys.executable} "
        f"rustle_remote_dir={work}/r-{h}\n" for h in ("a", "b")))
    oracle = subprocess.run([str(ANSIBLE), "-i", str(work / "inv.ini"), "-f", "1", *extra, str(work / "site.yml")],
                            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
                            env=ansible_env(work, ANSIBLE_DEPRECATION_WARNINGS="True"))
    assert oracle.returncode == 0, oracle.stdout + oracle.stderr
    home = work / "home"
    home.mkdir()
    (work / "quiet.cfg").write_text("[defaults]\ndeprecation_warnings = False\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUSTLE_", "ANSIBLE_"))}
    rustle = {}
    for name, config in (("default", work / "none.cfg"), ("quiet", work / "quiet.cfg")):
        proc = subprocess.run(
            [sys.executable, "-m", "rustle_deploy.cli", str(work / "site.yml"), "-i", str(work / "inv.ini"),
             "--run", "--output", "json", "-f", "1", *extra],
            capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, cwd=work,
            env=dict(env, HOME=str(home), RUSTLE_STATE_DB=str(work / f"{name}.db"), ANSIBLE_CONFIG=str(config)))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        rustle[name] = {"doc": json.loads(proc.stdout), "text": proc.stderr, "db": work / f"{name}.db"}
    return {"oracle": oracle.stdout, "oracle_warnings": oracle.stderr, "rustle": rustle, "work": work}


def test_each_hosts_task_names_and_statuses_in_the_json_output_are_ansible_playbooks(runs: dict[str, Any]) -> None:
    oracle = _oracle_results(runs["oracle"])
    assert oracle["a"][2] == ("broken << error 1 - 'nope' is undefined >>", "ok")  # the oracle as expected
    doc = runs["rustle"]["default"]["doc"]
    for host in doc["hosts"]:
        seen = [(t["name"], t["status"]) for t in host["tasks"]]
        assert seen == oracle[host["name"]], host["name"]
        assert {t["action"] for t in host["tasks"]} >= {"command", "debug", "include", "fail"}
    tasks = {t["name"]: t for t in doc["hosts"][0]["tasks"]}
    assert tasks["ignored failure"]["msg"] == "ignored"
    assert tasks["rescued"]["msg"] == "failed task fail play << error 1 - 'nope' is undefined >>"
    assert tasks["fail play << error 1 - 'nope' is undefined >>"] == {
        "name": "fail play << error 1 - 'nope' is undefined >>", "action": "fail", "status": "failed",
        "rescued": True, "msg": "boom"}
    assert "failed task fail play << error 1 - 'nope' is undefined >>" in runs["oracle"]
    # the banner, and so ansible_failed_task.name, is rendered with the first host's values
    assert oracle["b"][1] == ("first host's A", "ok")
    assert runs["oracle"].count('"msg": "failed task fail on A"') == 2
    for host in doc["hosts"]:
        assert {t["name"]: t.get("msg") for t in host["tasks"]}["rescued again"] == "failed task fail on A"


def test_a_name_over_what_the_run_knows_is_the_first_hosts_in_every_batch_but_an_included_files(
        runs: dict[str, Any]) -> None:
    # serial 1: b runs alone in the second batch, yet shows a's registered result and fact, a's
    # values in a looped task's name and a handler's; only an included file's task is named
    # again, by the batch's first host (ansible-core loads the file again)
    oracle = _oracle_results(runs["oracle"])
    expected = ["command", "set_fact", "a set_fact value in a conditional", "origin of a set_fact value",
                "registered A and fact a", "looped A << error 1 - 'item' is undefined >>",
                "include_tasks", "in2 {}", "notify", "handler A"]
    for host in ("a", "b"):
        shown = [name for name, _ in oracle[host][-len(expected):]]
        assert shown == [n.format(host.upper()) for n in expected], host
    for host in runs["rustle"]["default"]["doc"]["hosts"]:
        ours = [t["name"] for t in host["tasks"]][-len(expected):]
        assert ours == [n.format(host["name"].upper()) for n in expected], host["name"]


def test_a_name_that_cannot_be_rendered_warns_as_ansible_playbook_does(runs: dict[str, Any]) -> None:
    def warnings(text: str) -> list[str]:
        """Each warning's first line and its "error N - ..." lines, each text once (rustle-deploy
        shows a warning once per run, ansible-playbook once per task)."""
        found = re.findall(r"\[WARNING\]: (Encountered \d+ template errors?\.(?:\s*error \d+ - [^\n]*)*)", text)
        return list(dict.fromkeys(" ".join(w.split()) for w in found))

    assert warnings(runs["rustle"]["default"]["text"]) == warnings(runs["oracle_warnings"]) == [
        "Encountered 1 template error. error 1 - 'nope' is undefined",
        "Encountered 1 template error. error 1 - 'item' is undefined",
        "Encountered 3 template errors. error 1 - 'nope' is undefined error 2 - Error rendering template: "
        "unsupported operand type(s) for +: 'int' and 'str' error 3 - template potentially truncated",
    ]


def test_ignored_failures_are_recorded_as_such_in_the_history(runs: dict[str, Any]) -> None:
    with closing(sqlite3.connect(runs["rustle"]["default"]["db"])) as db:
        rows = db.execute("SELECT host, task, status, ignored FROM task_results WHERE status = 'failed' "
                          "ORDER BY host, seq").fetchall()
    assert rows == [(h, n, "failed", i) for h in ("a", "b")
                    for n, i in (("ignored failure", 1), ("extra var from the command line", 1),
                                 ("extra var from a file", 1), ("fail play << error 1 - 'nope' is undefined >>", 0),
                                 ("fail on A", 0), ("a set_fact value in a conditional", 1))]


def test_deprecations_show_as_ansible_playbook_shows_them_unless_ansible_cfg_turns_them_off(
        runs: dict[str, Any]) -> None:
    def shown(text: str) -> list[str]:
        return re.findall(r"^(?:\w+ \| )?(\[DEPRECATION WARNING\]: .*|\[WARNING\]: Deprecation warnings .*)$",
                          text, re.M)

    expected = ["[WARNING]: Deprecation warnings can be disabled by setting `deprecation_warnings=False` in "
                "ansible.cfg.",
                "[DEPRECATION WARNING]: Conditionals should not be surrounded by templating delimiters such as "
                "{{ }} or {% %}. This feature will be removed from ansible-core version 2.23."]
    assert shown(runs["oracle_warnings"]) == shown(runs["rustle"]["default"]["text"]) == expected
    assert shown(runs["rustle"]["quiet"]["text"]) == []
    quiet = {t["name"]: t for t in runs["rustle"]["quiet"]["doc"]["hosts"][0]["tasks"]}
    assert quiet["deprecated conditional"]["status"] == "ok"


def test_a_strict_conditionals_message_names_where_an_extra_var_came_from(runs: dict[str, Any]) -> None:
    oracle: dict[str, str] = {}
    banner = ""
    for line in runs["oracle"].splitlines():
        if line.startswith("TASK ["):
            banner = line[6:line.index("] *")]
        elif line.startswith("fatal: [a]: FAILED! => ") and banner.startswith(("extra var", "a set_fact")):
            oracle[banner] = json.loads(line.split("=> ", 1)[1])["msg"]
    assert oracle["extra var from the command line"].endswith(
        "derived from value of type 'str' at \"<CLI option '-e'>\". Conditionals must have a boolean result.")
    assert "ev.yml:2:8'" in oracle["extra var from a file"]
    # a set_fact value: where set_fact's argument was written, in the message and the origin filter
    assert "site.yml:56:15'" in oracle["a set_fact value in a conditional"]
    ours_b = {t["name"]: t.get("msg") for t in runs["rustle"]["default"]["doc"]["hosts"][1]["tasks"]}
    assert ours_b["origin of a set_fact value"].startswith(f"{runs['work']}/site.yml:56:15 [")
    assert "'Origin'" in ours_b["origin of a set_fact value"]
    assert f'"msg": {json.dumps(ours_b["origin of a set_fact value"])}' in runs["oracle"]
    ours = {t["name"]: t.get("msg") for t in runs["rustle"]["default"]["doc"]["hosts"][0]["tasks"]}
    assert {name: ours[name] for name in oracle} == oracle
