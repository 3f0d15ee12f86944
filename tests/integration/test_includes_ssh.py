"""Includes and imports over the real sshd, against ansible-playbook: what their keywords and
arguments do, and an include whose file or role cannot be loaded (docs/playbooks.md "Includes
that cannot be loaded").

The keywords and arguments (play 2, on n05 and n06): a role named by a path under ``roles/``; include_role's
``allow_duplicates: false`` (a repeat that ran is skipped) and templated ``public``,
``allow_duplicates`` and ``tasks_from`` (rendered with the include's own vars; ``{{ omit }}``
is no argument); an import_tasks file named by its own vars; include handlers notified by a
``listen`` topic and by name; an include whose ``when`` errors, ignored and registered; a
``run_once`` include, which only the play's first host processes; include_role names rendered
from a loop's items and from a host variable (each role the name may select is compiled, the
host picks one; a chosen role's handler answers a notify); a ``public: true`` include_role, whose
role's defaults and vars the play's tasks see only after it ran.

ansible-core loads what an ``include_tasks``/``include_role`` names only when a host reaches it:
a missing file, a missing role, a static import of a missing file inside the included file or
role, or a missing role dependency fails the hosts that reach the include (after its ``ok``
result, past ``ignore_errors``; a rescue still runs, but the host is counted failed and takes
no part in later plays), and a false ``when`` skips the include before its file, or an undefined
loop, is looked at. A file naming a module nothing provides is a parse error that aborts the
run there, past any rescue, and no host runs a later task. One playbook holds every case, each
on its own host; one
ansible-playbook run (with the acceptance harness's result callback) is the oracle.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

from .. import oracle
from .conftest import ANSIBLE, ORACLE_TIMEOUT, Fleet, ansible_env, playbook_file

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

CALLBACKS = Path(__file__).resolve().parents[1] / "acceptance" / "callback"

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - include_tasks: nope.yml
      when: false
    - name: a loop over nothing defined, skipped
      include_tasks: nope.yml
      loop: "{{ not_defined_anywhere }}"
      when: false
      register: skipped_include
    - copy: {content: "{{ skipped_include is skipped }} {{ skipped_include.results is undefined }}", dest: "{{ root }}/skip.txt"}
    - block:
        - include_tasks: "{{ playbook_dir }}/missing.yml"
          when: inventory_hostname == 'n00'
      rescue:
        - copy: {content: "rescued", dest: "{{ root }}/rescued.txt"}
    - include_role: {name: not_a_role}
      when: inventory_hostname == 'n01'
      ignore_errors: true
    - include_tasks: imports_missing.yml
      when: inventory_hostname == 'n02'
    - include_role: {name: has_missing}
      when: inventory_hostname == 'n03'
    - include_role: {name: dep_missing}
      when: inventory_hostname == 'n04'
    - copy: {content: "after", dest: "{{ root }}/after.txt"}

- hosts: n05:n06  # (ansible_play_hosts of a later play still lists the hosts an earlier one failed)
  gather_facts: false
  handlers:
    - include_tasks: {file: handler_tasks.yml}
      listen: [topic]
    - name: named include handler
      include_tasks: handler_named.yml
  tasks:
    - name: a role named by its path under roles/
      import_role: {name: nested/deep}
    - include_role: {name: dup, allow_duplicates: false}
    - include_role: {name: dup}
    - include_role: {name: dup, allow_duplicates: "{{ False | bool }}"}
    - include_role: {name: dup, tasks_from: "{{ omit }}"}
    - include_role: {name: dup, tasks_from: "{{ which }}.yml"}
      vars: {which: other}
    - include_role: {name: leaky, public: "{{ False | bool }}"}
    - copy: {content: "{{ leaky_var | default('private') }}", dest: "{{ root }}/leak.txt"}
    - import_tasks: "{{ tasks_file }}"
      vars: {tasks_file: imported.yml}
    - include_tasks: nothing.yml
      when: not_defined_either == 'yes'
      ignore_errors: true
      register: broken_when
    - copy: {content: "{{ broken_when is failed }}", dest: "{{ root }}/broken_when.txt"}
    - include_tasks: once.yml
      run_once: true
    - name: roles named by a loop's items
      include_role: {name: "{{ item }}"}
      loop: [pick_a, pick_b]
    - name: a role named by a host variable
      include_role: {name: "{{ my_role }}"}
    - copy: {content: "{{ pub_var | default('unset') }}", dest: "{{ root }}/pub_before.txt"}
    - include_role: {name: pub, public: true}
    - copy: {content: "{{ pub_var | default('unset') }} {{ pub_default | default('unset') }}", dest: "{{ root }}/pub_after.txt"}
    - command: "true"
      notify: [topic, named include handler]
    - copy: {content: "later", dest: "{{ root }}/later.txt"}

- hosts: fleet
  gather_facts: false
  tasks:
    - block:
        - include_tasks: bad_module.yml
          when: inventory_hostname == 'n05'
      rescue:
        - copy: {content: "SHOULD_NOT", dest: "{{ root }}/should_not.txt"}
    - name: after the run errored on n05 (no host runs it, as in ansible-core's lock-step)
      copy: {content: "SHOULD_NOT", dest: "{{ root }}/should_not.txt"}

- hosts: fleet
  gather_facts: false
  tasks:
    - copy: {content: "never", dest: "{{ root }}/never.txt"}
"""

FILES = {
    "imports_missing.yml": "- import_tasks: not-there.yml\n",
    "bad_module.yml": "- wrong.wrong.wrong:\n    x: 1\n",
    "roles/has_missing/tasks/main.yml": "- import_tasks: nothere.yml\n",
    "roles/dep_missing/meta/main.yml": "dependencies:\n  - role: not_a_role\n",
    "roles/dep_missing/tasks/main.yml": "- debug: msg=x\n",
    "roles/nested/deep/tasks/main.yml": "- copy: {content: deep, dest: '{{ root }}/deep.txt'}\n",
    "roles/dup/tasks/main.yml": "- shell: echo run >> {{ root }}/dup.txt\n",
    "roles/dup/tasks/other.yml": "- copy: {content: other, dest: '{{ root }}/other.txt'}\n",
    "roles/leaky/vars/main.yml": "leaky_var: leaked\n",
    "roles/leaky/tasks/main.yml": "- debug: msg=leaky\n",
    "imported.yml": "- copy: {content: imported, dest: '{{ root }}/imported.txt'}\n",
    "once.yml": "- copy: {content: once, dest: '{{ root }}/once.txt'}\n",
    "handler_tasks.yml": "- copy: {content: topic, dest: '{{ root }}/topic.txt'}\n",
    "handler_named.yml": "- copy: {content: named, dest: '{{ root }}/named.txt'}\n",
    "roles/pick_a/tasks/main.yml": "- shell: echo a >> {{ root }}/picks.txt\n",
    "roles/pick_b/tasks/main.yml": "- shell: echo b >> {{ root }}/picks.txt\n  notify: picked b\n",
    "roles/pick_b/handlers/main.yml": "- name: picked b\n  shell: echo handler >> {{ root }}/picked.txt\n",
    "host_vars/n05.yml": "my_role: pick_a\n",
    "host_vars/n06.yml": "my_role: pick_b\n",
    "roles/pub/vars/main.yml": "pub_var: exposed\n",
    "roles/pub/defaults/main.yml": "pub_default: dflt\n",
    "roles/pub/tasks/main.yml": "- debug: msg=pub\n",
}


@pytest.fixture(scope="module")
def runs(sshd: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Both tools' runs of the playbook: exit codes, per-host results, files, the JSON document."""
    tmp = tmp_path_factory.mktemp("include-errors")
    for name, text in FILES.items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)
    playbook = playbook_file(tmp, PLAYBOOK)
    fleet = Fleet(sshd, tmp, 7)
    with pytest.MonkeyPatch.context() as mp, open(tmp / "rustle.json", "w") as out, \
            open(tmp / "rustle.err", "w") as err:
        mp.setenv("HOME", str(tmp / "home"))  # this run's own ~/.rustle
        mp.setenv("ANSIBLE_CONFIG", str(tmp / "no-ansible.cfg"))
        for var in ("RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_STATE_DB"):
            mp.delenv(var, raising=False)
        mp.setattr(sys, "stdout", out)
        mp.setattr(sys, "stderr", err)
        code = main([str(playbook), "-i", str(fleet.inventory), "--run", "--output", "json"])
    doc = json.loads((tmp / "rustle.json").read_text())
    results = tmp / "ansible-results.jsonl"
    env = ansible_env(tmp, ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS), ANSIBLE_CALLBACKS_ENABLED="results_jsonl",
                      RUSTLE_ACCEPTANCE_RESULTS=str(results))
    argv = [str(ANSIBLE), "-i", str(fleet.local_inventory), str(playbook)]

    def run() -> dict[str, Any]:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=ORACLE_TIMEOUT)
        by_host: dict[str, list[tuple[str, str]]] = {}
        for line in results.read_text().splitlines():
            rec = json.loads(line)
            by_host.setdefault(rec["host"], []).append((rec["task"], rec["status"]))
        return oracle.norm({"code": proc.returncode, "ansible": by_host, "files": fleet.files("ansible"),
                            "log": proc.stdout}, {"{tmp}": tmp})

    # recorded (tests/oracle.py): keyed by the playbook and its files, the callback, the command line
    inputs = oracle.norm({"files": oracle.files(tmp, (*Fleet.OUTPUTS, "rustle.json", "rustle.err", "ansible-results.jsonl")), "argv": argv,
                          "callback": oracle.files(CALLBACKS), "env": oracle.env(env)}, {"{tmp}": tmp})
    a = oracle.recorded("includes", inputs, run, volatile=("log",))
    ansible = {host: [(task, status) for task, status in rows] for host, rows in a["ansible"].items()}
    # rustle-deploy's JSON says "ignored" where the callback says failed (ignored)
    rustle = {h["name"]: [(t["name"], "failed" if t["status"] == "ignored" else t["status"])
                          for t in h.get("tasks") or []] for h in doc["hosts"]}
    return {"codes": (code, a["code"]), "ansible": ansible, "rustle": rustle, "doc": doc,
            "files": (fleet.files("rustle"), a["files"]),
            "log": (tmp / "rustle.err").read_text() + a["log"]}


def test_each_host_reports_the_include_as_ansible_playbook_does(runs: dict[str, Any]) -> None:
    rustle, ansible = runs["rustle"], runs["ansible"]
    # the host where the run errored reports the include failed (errored) where ansible-playbook
    # stopped after its ok result
    assert rustle["n05"][-2:] == [("include_tasks", "ok"), ("include_tasks", "failed")]
    for host, results in {**rustle, "n05": rustle["n05"][:-1]}.items():
        assert results == ansible[host], (host, runs["log"][-3000:])
    # the include's ok result, then its failure (the callback sees both, as rustle-deploy's JSON)
    assert runs["rustle"]["n01"][-2:] == [("include_role : not_a_role", "ok"), ("include_role : not_a_role", "failed")]


def test_what_each_host_wrote_is_what_it_wrote_under_ansible_playbook(runs: dict[str, Any]) -> None:
    rustle, ansible = runs["files"]
    assert rustle == ansible
    # skipped before its undefined loop was looked at; rescued, but failed for the later plays
    assert rustle["n00"] == {"skip.txt": "True True", "rescued.txt": "rescued", "after.txt": "after"}
    assert {**rustle["n05"], "once.txt": "-", "picks.txt": "-"} == {**rustle["n06"], "once.txt": "-", "picks.txt": "-"} == {
        "skip.txt": "True True", "after.txt": "after", "deep.txt": "deep", "dup.txt": "run\nrun\nrun\n",
        "other.txt": "other", "leak.txt": "private", "imported.txt": "imported", "broken_when.txt": "True",
        "topic.txt": "topic", "named.txt": "named", "later.txt": "later", "once.txt": "-",
        "picks.txt": "-", "picked.txt": "handler\n", "pub_before.txt": "unset", "pub_after.txt": "exposed dflt"}
    # roles named by a loop's items, then by a host variable (n05: pick_a, n06: pick_b)
    assert (rustle["n05"]["picks.txt"], rustle["n06"]["picks.txt"]) == ("a\nb\na\n", "a\nb\nb\n")
    # a run_once include: processed by the play's first host only, its task not run_once
    assert (rustle["n05"]["once.txt"], "once.txt" in rustle["n06"]) == ("once", False)


def test_a_module_nothing_provides_in_an_included_file_errors_the_run(runs: dict[str, Any]) -> None:
    # ansible-playbook aborts with a parse error (exit 4); rustle-deploy's run is recorded as
    # errored, and exits as ansible-playbook does
    assert runs["codes"] == (4, 4)
    errored = runs["doc"]["errored"]
    assert [e["host"] for e in errored] == ["n05"]
    assert "unknown module 'wrong.wrong.wrong'" in errored[0]["msg"]
    recaps = {h["name"]: h["recap"] for h in runs["doc"]["hosts"]}
    # counted failed, not ok (ansible-core's recap), and no rescue ran
    assert {k: recaps["n01"][k] for k in ("ok", "failed", "rescued")} == {"ok": 1, "failed": 1, "rescued": 0}
