"""Plays cut into phases at run_once (docs/phases.md), over a real sshd fleet.

The playbooks are also applied by ansible-playbook (the oracle) to the same host names on a
local connection, each host writing into its own directory: both must leave the same files and
report the same recap counts. Round trips are counted: a play without cross-host tasks keeps
one exchange per host; each phase adds one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

from .. import planmaker as pm
from .conftest import Fleet
from .conftest import playbook_file as _playbook  # the names other files import from here
from .conftest import recap_counts as _counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.usefixtures("rustle_home")]

# Each host writes what it saw into {{ root }}/out.txt: the run_once results must be the first
# host's on every host; handlers notified before a phase boundary run at the end of the play.
RUN_ONCE = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: before
      copy: {content: "{{ inventory_hostname }}\\n", dest: "{{ root }}/before.txt"}
      notify: early handler
    - name: pick a leader
      command: echo {{ inventory_hostname }}
      register: leader
      run_once: true
      notify: leader handler
    - name: remember it
      set_fact: {chosen: "{{ leader.stdout }}-{{ inventory_hostname }}"}
      run_once: true
    - name: what every host saw
      copy:
        content: "{{ leader.stdout }} {{ chosen }} {{ inventory_hostname }} {{ leader.changed }}\\n"
        dest: "{{ root }}/out.txt"
    - name: once more
      command: echo second
      register: second
      run_once: true
      changed_when: false
    - name: after
      copy: {content: "{{ second.stdout }}\\n", dest: "{{ root }}/after.txt"}
  handlers:
    - name: early handler
      copy: {content: "early\\n", dest: "{{ root }}/early.txt"}
    - name: leader handler
      copy: {content: "leader\\n", dest: "{{ root }}/leader.txt"}
"""

PLAIN = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: write
      copy: {content: "{{ inventory_hostname }}\\n", dest: "{{ root }}/plain.txt"}
"""

# Tasks delegated to the controller run outside the host's agent: no RUSTLE_RUN_MARK there
# (docs/remote.md, "Ending a run early"); ansible-playbook has none anywhere.
DELEGATED = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: on the host
      shell: echo "${RUSTLE_RUN_MARK:+host}"
      register: here
      changed_when: false
    - name: on the controller
      shell: echo "[${RUSTLE_RUN_MARK:-controller}] {{ inventory_hostname }} {{ here.stdout }}"
      delegate_to: localhost
      register: there
      notify: delegated handler
    - local_action: command echo local {{ inventory_hostname }}
      register: old_form
    - name: once, on the controller
      command: echo once from {{ inventory_hostname }}
      delegate_to: localhost
      run_once: true
      register: once
    - name: what every host saw
      copy:
        content: "{{ there.stdout }}|{{ old_form.stdout }}|{{ once.stdout }}\\n"
        dest: "{{ root }}/out.txt"
  handlers:
    - name: delegated handler
      copy: {content: "changed={{ there.changed }}\\n", dest: "{{ root }}/handler.txt"}
"""

FAILING = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: before
      copy: {content: "x\\n", dest: "{{ root }}/before.txt"}
    - name: the leader fails
      command: /bin/false
      run_once: true
    - name: after
      copy: {content: "x\\n", dest: "{{ root }}/after.txt"}
"""


@pytest.mark.ansible
def test_run_once_result_reaches_every_host_as_in_ansible(sshd: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3)  # the leader and two others: every host beyond n00 is alike
    playbook = _playbook(tmp_path, RUN_ONCE)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0)
    assert fleet.files("rustle") == fleet.files("ansible")
    assert fleet.files("rustle")["n02"]["out.txt"] == "n00 n00-n00 n02 True\n"
    assert "leader.txt" in fleet.files("rustle")["n00"] and "leader.txt" not in fleet.files("rustle")["n01"]
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]
    # phases: [before] [leader, remember] [what every host saw] [once more] [after]: five, of
    # which the two run_once ones run on n00 alone; one exchange each (the ssh client opens
    # the channel itself, docs/remote.md "Round trips")
    trips = {h["name"]: h["round_trips"] for h in doc["hosts"]}
    assert trips["n00"] == 5
    assert all(trips[n] == 3 for n in fleet.names[1:]), trips


def test_play_without_cross_host_tasks_keeps_one_round_trip(sshd: Any, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 4)
    code, doc = fleet.rustle(capsys, _playbook(tmp_path, PLAIN))
    assert code == 0
    assert "rollout" not in doc
    assert {h["round_trips"] for h in doc["hosts"]} == {1}


@pytest.mark.ansible
def test_failing_run_once_stops_every_host_of_the_batch(sshd: Any, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3)
    playbook = _playbook(tmp_path, FAILING)
    code, doc = fleet.rustle(capsys, playbook)
    acode, _ = fleet.ansible(playbook)
    assert code == 1 and acode == 2
    assert fleet.files("rustle") == fleet.files("ansible")
    assert all(set(files) == {"before.txt"} for files in fleet.files("rustle").values())
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["n00"]["recap"]["failed"] == 1
    assert "run_once phase failed on n00" in by_name["n01"]["error"]
    assert doc["rollout"]["failed"] == fleet.names


def test_run_once_in_a_plan_with_a_handler_across_phases(sshd: Any, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The same from a rustle-plan JSON plan: the registered result on every host, and a
    handler notified in the first phase runs once, at the end of the play."""
    fleet = Fleet(sshd, tmp_path, 3)
    root = "{{ root }}"

    def tasks(hosts: list[str]) -> list[dict[str, Any]]:
        return [
            pm.task("t0", "first", "copy", {"content": "a\n", "dest": f"{root}/a.txt"}, [], 0, notify=["h"]),
            pm.task("t1", "leader", "command", {"cmd": "echo {{ inventory_hostname }}"}, [], 1,
                    register="leader", run_once=True),
            pm.task("t2", "saw", "copy", {"content": "{{ leader.stdout }}\n", "dest": f"{root}/saw.txt"}, [], 2),
        ]

    play = pm.play("play-0", "web", fleet.names, tasks)
    play["handlers"] = [pm.task("h0", "h", "copy", {"content": "{{ leader.stdout }}\n", "dest": f"{root}/h.txt"},
                                [], 0)]
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(pm.plan([play], fleet.names)))
    code, doc = fleet.rustle(capsys, path)
    assert code == 0, doc
    for name, files in fleet.files("rustle").items():
        assert files == {"a.txt": "a\n", "saw.txt": "n00\n", "h.txt": "n00\n"}, name


@pytest.mark.ansible
def test_delegate_to_localhost_runs_on_the_controller_as_in_ansible(sshd: Any, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 4)
    playbook = _playbook(tmp_path, DELEGATED)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0)
    files = fleet.files("rustle")
    assert files["n02"]["out.txt"] == "[controller] n02 host|local n02|once from n00\n"
    assert {n: {k: v.replace(" host|", " |") for k, v in f.items()} for n, f in files.items()} == fleet.files("ansible")
    assert all(f["handler.txt"] == "changed=True\n" for f in files.values())
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]
    # phases: [on the host] [controller, local_action] [once on the controller] [saw]: two
    # exchanges with each host; the controller's phases cost none
    assert {h["round_trips"] for h in doc["hosts"]} == {2}


THROTTLED = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: before
      copy: {content: "x\\n", dest: "{{ root }}/before.txt"}
    - name: two at a time
      shell: date +%s.%N > {{ root }}/start; sleep 0.3; date +%s.%N > {{ root }}/end
      throttle: 2
    - name: after
      copy: {content: "y\\n", dest: "{{ root }}/after.txt"}
"""


def test_throttle_runs_the_task_on_at_most_n_hosts_at_once(sshd: Any, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 6)
    code, doc = fleet.rustle(capsys, _playbook(tmp_path, THROTTLED))
    assert code == 0
    spans = []
    for name in fleet.names:
        root = fleet.root(name, "rustle")
        spans.append((float((root / "start").read_text()), float((root / "end").read_text())))
        assert (root / "after.txt").exists()
    # at every host's start, at most two hosts (itself included) have started and not ended
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2, spans
    assert [b["label"] for b in doc["rollout"]["batches"]][1].endswith("phase 2/3 (throttle 2)")


# Each host reads what the others registered and gathered.
HOSTVARS = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: each host registers its name
      command: echo reg-{{ inventory_hostname }}
      register: mine
      changed_when: false
    - name: gather facts
      setup:
    - name: read the others
      copy:
        content: "{{ hostvars['n00'].mine.stdout }},{{ hostvars['n01'].mine.stdout }},{{ hostvars.n02.mine.stdout }}\\n"
        dest: "{{ root }}/all.txt"
    - name: one by one
      copy:
        content: "{{ hostvars['n01']['mine'].stdout }} {{ hostvars['n00']['ansible_system'] }}\\n"
        dest: "{{ root }}/one.txt"
"""


@pytest.mark.ansible
def test_hostvars_of_other_hosts_registered_results_and_facts_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3)
    playbook = _playbook(tmp_path, HOSTVARS)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0), doc
    assert fleet.files("rustle") == fleet.files("ansible")
    assert fleet.files("rustle")["n02"] == {"all.txt": "reg-n00,reg-n01,reg-n02\n", "one.txt": "reg-n01 Linux\n"}
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]
    assert {h["round_trips"] for h in doc["hosts"]} == {2}  # cut once: before the first read


# Values set in earlier plays (registered results, set_fact, facts) read through hostvars in
# later plays, including a play of one host and one of a host the earlier play did not reach.
CROSS_PLAY = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: each host registers its name
      command: echo reg-{{ inventory_hostname }}
      register: mine
      changed_when: false
    - name: and sets a fact
      set_fact: {color: "c-{{ inventory_hostname }}"}
    - name: gather facts
      setup:
- hosts: n01
  gather_facts: false
  tasks:
    - name: one host only
      set_fact: {late: "from-{{ inventory_hostname }}"}
- hosts: fleet
  gather_facts: false
  tasks:
    - name: read what the earlier plays left
      copy:
        content: "{{ hostvars['n00'].mine.stdout }} {{ hostvars['n02'].color }} {{ hostvars.n01.late }} {{ hostvars['n01']['ansible_system'] }}\\n"
        dest: "{{ root }}/cross.txt"
- hosts: n02
  gather_facts: false
  tasks:
    - name: a play of one host reads the others
      copy: {content: "{{ hostvars.n00.color }} {{ hostvars['n01'].mine.rc }}\\n", dest: "{{ root }}/one.txt"}
"""


@pytest.mark.ansible
def test_hostvars_set_in_earlier_plays_reach_later_plays_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3)
    playbook = _playbook(tmp_path, CROSS_PLAY)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0), doc
    assert fleet.files("rustle") == fleet.files("ansible")
    assert fleet.files("rustle")["n02"] == {"cross.txt": "reg-n00 c-n02 from-n01 Linux\n", "one.txt": "c-n00 0\n"}
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]
    # [plays 1-2] [play 3, sent the others' values] [play 4, n02 alone]
    assert {h["name"]: h["round_trips"] for h in doc["hosts"]} == {"n00": 2, "n01": 2, "n02": 3}


NOTIFY_ONCE = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: announce, once, from the controller
      command: echo announced-by-{{ inventory_hostname }}
      run_once: true
      delegate_to: localhost
      register: note
- hosts: fleet
  gather_facts: false
  tasks:
    - name: every host has it in the next play
      copy: {content: "{{ note.stdout }}\\n", dest: "{{ root }}/note.txt"}
"""


def test_a_play_of_one_run_once_task_on_the_controller_feeds_the_next_play(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3)
    code, doc = fleet.rustle(capsys, _playbook(tmp_path, NOTIFY_ONCE))
    assert code == 0, doc
    assert {n: f["note.txt"] for n, f in fleet.files("rustle").items()} == {
        n: "announced-by-n00\n" for n in fleet.names}
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert (by_name["n00"]["recap"]["changed"], by_name["n01"]["recap"]["changed"]) == (2, 1)  # as Ansible
    assert {h["round_trips"] for h in doc["hosts"]} == {1}  # the first play never reached the hosts


def test_dry_run_lists_the_phases_and_native_refuses_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"h{i}" for i in range(3)]
    inv = tmp_path / "inv.ini"
    inv.write_text("[fleet]\n" + "".join(
        f"{n} ansible_connection=local rustle_remote_dir={tmp_path / 'remote' / n} root={tmp_path / n}\n"
        for n in names))
    playbook = _playbook(tmp_path, RUN_ONCE)
    code = main([str(playbook), "-i", str(inv), "--run", "--dry-run", "--output", "text"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "batch 2/5 (play 'fleet', phase 2/5 (run_once), all at once): h0 h1 h2" in out
    code = main([str(playbook), "-i", str(inv), "--run", "--format", "native"])
    assert code == 2 and "a play is cut into phases" in capsys.readouterr()[1]
    assert not (tmp_path / "remote").exists() and not any((tmp_path / n).exists() for n in names)


# Tasks delegated to another inventory host (gw, outside the play) run over gw's connection
# (SSH_CONNECTION is set there; ansible-playbook's local connection has none) with the
# delegating host's variables; what they register is the delegating host's.
DELEGATED_TO_HOST = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: on the host
      command: echo {{ inventory_hostname }}
      register: here
      changed_when: false
    - name: on the gateway, for each host
      copy:
        content: "{{ here.stdout }} {{ inventory_hostname }} {{ group_names }}\\n"
        dest: "{{ hostvars['gw'].root }}/{{ inventory_hostname }}.txt"
      delegate_to: gw
      register: copied
      notify: delegated handler
    - name: how it got there
      shell: echo "${SSH_CONNECTION:+ssh}"
      delegate_to: "{{ groups['gateways'][0] }}"
      register: via
      changed_when: false
    - name: once, on the gateway
      command: echo once from {{ inventory_hostname }}
      delegate_to: gw
      run_once: true
      register: once
    - name: a delegated block
      delegate_to: gw
      block:
        - name: in the block
          file: {path: "{{ hostvars['gw'].root }}/{{ inventory_hostname }}.dir", state: directory}
        - name: fails on n01 only
          command: /bin/false
          when: inventory_hostname == 'n01'
          ignore_errors: true
          register: failing
    - name: what every host saw
      copy:
        content: "{{ copied.changed }}|{{ via.stdout }}|{{ once.stdout }}|{{ failing.failed | default('-') }}\\n"
        dest: "{{ root }}/out.txt"
    - import_role: {name: on_gateway}
  handlers:
    - name: delegated handler
      copy: {content: "changed={{ copied.changed }}\\n", dest: "{{ root }}/handler.txt"}
"""


@pytest.mark.ansible
def test_delegate_to_another_inventory_host_runs_there_with_the_hosts_variables_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3, {"gateways": ["gw"]})
    role = tmp_path / "roles" / "on_gateway" / "tasks"
    role.mkdir(parents=True)
    (role / "main.yml").write_text(
        "- name: a role's task, delegated\n"
        "  copy: {content: \"{{ inventory_hostname }}\\n\", dest: \"{{ hostvars['gw'].root }}/{{ inventory_hostname }}.role\"}\n"
        "  delegate_to: gw\n")
    playbook = _playbook(tmp_path, DELEGATED_TO_HOST)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0), doc
    files = fleet.files("rustle")
    assert files["n02"]["out.txt"] == "True|ssh|once from n00|-\n"
    assert files["gw"]["n01.txt"] == "n01 n01 ['fleet']\n" and files["gw"]["n01.role"] == "n01\n"
    assert {n: {k: v.replace("|ssh|", "||") for k, v in f.items()} for n, f in files.items()} == fleet.files("ansible")
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]
    assert "gw" not in {h["name"] for h in doc["hosts"]}  # not a host of the play: nothing deployed there
    # phases: [on the host] [gw: copy, how] [gw once] [gw block] [saw] [gw: the role]: two
    # exchanges with each host, one with gw per host and delegated phase (and the run_once
    # one for n00)
    trips = {h["name"]: h["round_trips"] for h in doc["hosts"]}
    assert trips == {"n00": 6, "n01": 5, "n02": 5}


# connection: local on a play (or a task) over hosts the inventory reaches by ssh: their tasks
# run on the controller with each host's variables (no SSH_CONNECTION there), as in Ansible.
CONNECTION_LOCAL = """\
- hosts: fleet
  connection: local
  gather_facts: false
  tasks:
    - name: on the controller
      shell: echo "${SSH_CONNECTION:+ssh}controller {{ inventory_hostname }}"
      register: where
    - copy: {content: "{{ where.stdout }}\\n", dest: "{{ root }}/play.txt"}
- hosts: fleet
  gather_facts: false
  tasks:
    - name: on the host
      shell: echo "${SSH_CONNECTION:+ssh}"
      register: here
      changed_when: false
    - name: one task on the controller
      shell: echo "${SSH_CONNECTION:+ssh}controller"
      connection: local
      register: local_one
      changed_when: false
    - copy: {content: "{{ here.stdout }}|{{ local_one.stdout }}\\n", dest: "{{ root }}/task.txt"}
"""


@pytest.mark.ansible
def test_connection_local_over_ssh_hosts_runs_their_tasks_on_the_controller_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 3)
    playbook = _playbook(tmp_path, CONNECTION_LOCAL)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0), doc
    files = fleet.files("rustle")
    assert files["n01"] == {"play.txt": "controller n01\n", "task.txt": "ssh|controller\n"}
    assert {n: {k: v.replace("ssh|", "|") for k, v in f.items()} for n, f in files.items()} == fleet.files("ansible")
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]


# A task delegated to a host that is down is unreachable for the delegating host: with
# ignore_unreachable it registers the unreachable result and the host goes on (counted ok and
# ignored, as ansible-core counts it); without, the host stops there (unreachable).
DELEGATED_UNREACHABLE = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: on a host that is down
      command: echo hi
      delegate_to: down
      register: r
      ignore_unreachable: true
    - name: what it registered
      copy: {content: "{{ r.unreachable }}|{{ r.changed }}\\n", dest: "{{ root }}/out.txt"}
- hosts: fleet
  gather_facts: false
  tasks:
    - name: not ignored
      command: echo hi
      delegate_to: down
    - copy: {content: "not reached\\n", dest: "{{ root }}/after.txt"}
"""


@pytest.mark.ansible
def test_a_task_delegated_to_an_unreachable_host_is_unreachable_or_ignored_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2, {"gateways": ["down"]}, down=("down",))
    playbook = _playbook(tmp_path, DELEGATED_UNREACHABLE)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (1, 4), doc
    assert fleet.files("rustle") == fleet.files("ansible"), json.dumps(doc["hosts"])[:6000]
    assert fleet.files("rustle")["n01"] == {"out.txt": "True|False\n"}
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]
        assert h["recap"].get("unreachable") == arecaps[h["name"]]["unreachable"] == 1, h


# delegate_facts: what a delegated setup gathers or set_fact sets is the delegate's (its
# hostvars, and its own variables in a later play), not the delegating host's.
DELEGATE_FACTS = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: facts of the gateway
      setup:
      delegate_to: gw
      delegate_facts: true
      run_once: true
    - name: a value for the gateway
      set_fact: {gw_role: "gateway of {{ inventory_hostname }}"}
      delegate_to: gw
      delegate_facts: true
    - copy:
        content: "{{ hostvars['gw'].gw_role }}|{{ hostvars['gw'].ansible_system }}|{{ gw_role | default('unset') }}\\n"
        dest: "{{ root }}/out.txt"
- hosts: gateways
  gather_facts: false
  tasks:
    - copy: {content: "{{ gw_role }}\\n", dest: "{{ root }}/role.txt"}
"""


@pytest.mark.ansible
def test_delegate_facts_give_the_delegate_its_facts_and_values_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2, {"gateways": ["gw"]})
    playbook = _playbook(tmp_path, DELEGATE_FACTS)
    code, doc = fleet.rustle(capsys, playbook)
    # both hosts set the gateway's gw_role; the last result processed wins. ansible-playbook
    # processes results as its forks finish them: one fork makes that host order (n00, then n01)
    acode, arecaps = fleet.ansible(playbook, "-f", "1")
    assert (code, acode) == (0, 0), doc
    assert fleet.files("rustle") == fleet.files("ansible")
    assert fleet.files("rustle")["n00"]["out.txt"] == "gateway of n01|Linux|unset\n"
    assert fleet.files("rustle")["gw"] == {"role.txt": "gateway of n01\n"}
    for h in doc["hosts"]:
        assert _counts(h["recap"]) == _counts(arecaps[h["name"]]), h["name"]


# A delegate that holds the delegating host's artifact (deployed there by this run) runs its
# own copy: the artifact is not sent again.
DELEGATED_TO_A_PLAY_HOST = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - {copy: {content: "x\\n", dest: "{{ root }}/first.txt"}}
    - name: on n00, from the artifact it holds
      shell: tr '\\0' ' ' < /proc/$PPID/cmdline
      delegate_to: n00
      register: how
      changed_when: false
    - {copy: {content: "{{ how.stdout }}\\n", dest: "{{ root }}/how.txt"}}
"""


def test_a_delegate_holding_the_artifact_runs_its_own_copy(sshd: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """...with the delegate's own interpreter (its ansible_python_interpreter: the oldest
    Python installed, when there is one)."""
    import glob

    oldest = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python")))
    fleet = Fleet(sshd, tmp_path, 2, extra={"n00": {"ansible_python_interpreter": oldest[0]}} if oldest else None)
    code, doc = fleet.rustle(capsys, _playbook(tmp_path, DELEGATED_TO_A_PLAY_HOST))
    assert code == 0, doc
    shas = {h["sha256"] for h in doc["hosts"]}
    assert len(shas) == 1
    sha = shas.pop()
    for name in fleet.names:  # the runtime that ran the task is n00's copy, for each host
        how = fleet.files("rustle")[name]["how.txt"]
        assert f"{{tmp}}/remote00/artifacts/{sha} run --host {name}" in how, how  # files(): the tmp dir as {tmp}
        assert not oldest or how.startswith(oldest[0]), how


def test_a_plan_delegating_to_another_host_runs_there_and_an_unknown_one_is_refused(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The same from a rustle-plan JSON plan: delegate_to names an inventory host (outside
    the play here); one that is not in the inventory is exit 2, nothing touched."""
    fleet = Fleet(sshd, tmp_path, 2, {"gateways": ["gw"]})

    def tasks(hosts: list[str]) -> list[dict[str, Any]]:
        return [pm.task("t0", "on gw", "copy", {"content": "{{ inventory_hostname }}\n",
                                                 "dest": "{{ hostvars['gw'].root }}/{{ inventory_hostname }}.txt"},
                        [], 0, delegate_to="gw", register="put"),
                pm.task("t1", "saw", "copy", {"content": "changed={{ put.changed }}\n", "dest": "{{ root }}/saw.txt"}, [], 1)]

    path = tmp_path / "plan.json"
    path.write_text(json.dumps(pm.plan([pm.play("play-0", "fleet", fleet.names, tasks)], fleet.names)))
    code, doc = fleet.rustle(capsys, path)
    assert code == 0, doc
    files = fleet.files("rustle")
    assert files["gw"] == {"n00.txt": "n00\n", "n01.txt": "n01\n"}
    assert files["n01"] == {"saw.txt": "changed=True\n"}
    path.write_text(path.read_text().replace('"delegate_to": "gw"', '"delegate_to": "gw9"'))
    code = main([str(path), "-i", str(fleet.inventory), "--run"])
    err = capsys.readouterr().err
    assert code == 2 and "delegate_to 'gw9' (task 'on gw') is not a host of the inventory" in err, err
    assert "/plays/0/batches/0/tasks/0/delegate_to" in err


# run_once inside a block whose other tasks run on every host, and on a handler: a play of one
# host runs whole, in one round trip
ONE_HOST_RUN_ONCE = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - block:
        - name: on every host
          copy: {content: "x\\n", dest: "{{ root }}/every.txt"}
          notify: once handler
        - name: once, and failing
          command: /bin/false
          register: failing
          run_once: true
        - name: not reached
          copy: {content: "x\\n", dest: "{{ root }}/not.txt"}
      rescue:
        - name: rescued
          copy: {content: "{{ failing.rc }}\\n", dest: "{{ root }}/rescued.txt"}
          run_once: true
  handlers:
    - name: once handler
      copy: {content: "handled\\n", dest: "{{ root }}/handler.txt"}
      run_once: true
"""


@pytest.mark.ansible
def test_run_once_in_a_mixed_block_and_on_a_handler_in_a_play_of_one_host_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 1)
    playbook = _playbook(tmp_path, ONE_HOST_RUN_ONCE)
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    assert (code, acode) == (0, 0)
    assert fleet.files("rustle") == fleet.files("ansible")
    assert fleet.files("rustle")["n00"] == {"every.txt": "x\n", "rescued.txt": "1", "handler.txt": "handled\n"}
    (host,) = doc["hosts"]
    assert _counts(host["recap"]) == _counts(arecaps["n00"])
    assert host["round_trips"] == 1
    # the same play over two hosts is cut inside its block: test_blocks_phases_ssh (play b)


LIMITED = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: once
      command: echo {{ inventory_hostname }}
      register: once
      run_once: true
    - copy: {content: "{{ once.stdout | default('none') }}\\n", dest: "{{ root }}/out.txt"}
"""


@pytest.mark.ansible
def test_run_once_under_a_limit_to_one_host_runs_on_that_host_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the play runs whole on the one host --limit leaves (not the play's first host): run_once
    # runs there (it was skipped, "runs on n00", and its result never came)
    fleet = Fleet(sshd, tmp_path, 2)
    playbook = _playbook(tmp_path, LIMITED)
    code, doc = fleet.rustle(capsys, playbook, "--limit", "n01")
    acode, arecaps = fleet.ansible(playbook, "--limit", "n01")
    assert (code, acode) == (0, 0)
    assert fleet.files("rustle") == fleet.files("ansible") == {"n00": {}, "n01": {"out.txt": "n01\n"}}
    (host,) = doc["hosts"]
    assert _counts(host["recap"]) == _counts(arecaps["n01"]) and host["round_trips"] == 1
