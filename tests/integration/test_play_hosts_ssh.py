"""The play's live hosts (``ansible_play_hosts``, ``ansible_play_batch``, ``play_hosts``) where
only the controller knows them (docs/phases.md): a host that failed in an earlier play, a
serial play's batch, a template whose ``src`` or included name a host's data gives, the
handlers of a play with a run_once handler, a host unreachable at a task whose errors are
ignored (in the same play and in a later one). Over the shared sshd fleet, against
ansible-playbook: one playbook, one run of each tool (each play after the first has hosts of
its own, so a failure in one leaves the others alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

from .conftest import Fleet, playbook_file, recap_counts

pytestmark = [pytest.mark.ssh, pytest.mark.oracle, pytest.mark.ansible, pytest.mark.usefixtures("rustle_home")]

LISTS = "{{ ansible_play_hosts | join(',') }} {{ ansible_play_batch | join(',') }} {{ play_hosts | join(',') }}"

PLAYBOOK = f"""\
# u1 is down: ansible-core finds it unreachable at its first task that reaches it, ignore_errors
# or not, and leaves it out of the later plays (first: no play before has a task that may fail)
- hosts: u
  gather_facts: false
  tasks:
    - command: "true"
      ignore_errors: true

- hosts: u
  gather_facts: false
  tasks:
    - copy: {{content: "{{{{ ansible_play_hosts | join(',') }}}}\\n", dest: "{{{{ root }}}}/unreached.txt"}}

# v1 is down: a later task of the same play lists it no more
- hosts: v
  gather_facts: false
  tasks:
    - command: "true"
      failed_when: false
    - copy: {{content: "{{{{ ansible_play_hosts | join(',') }}}}\\n", dest: "{{{{ root }}}}/unreached.txt"}}

# p1 fails: ansible-core leaves it out of every later play
- hosts: p
  gather_facts: false
  tasks:
    - fail: {{msg: p1 stops here}}
      when: inventory_hostname == 'p1'

# a later play lists the live hosts without p1 (ansible_play_hosts_all still has it), and runs
# nothing on p1
- hosts: p
  gather_facts: false
  tasks:
    - copy: {{content: "{LISTS} {{{{ ansible_play_hosts_all | join(',') }}}}\\n", dest: "{{{{ root }}}}/live.txt"}}

# a play of the failed host alone runs nothing
- hosts: p1
  gather_facts: false
  tasks:
    - copy: {{content: "ran\\n", dest: "{{{{ root }}}}/alone.txt"}}

# serial: ansible_play_batch (and play_hosts) is the batch, less the failed host
- hosts: p
  gather_facts: false
  serial: 2
  tasks:
    - copy: {{content: "{LISTS}\\n", dest: "{{{{ root }}}}/serial.txt"}}

# a template whose src a host's data names, after a task that failed on q0
- hosts: q
  gather_facts: false
  tasks:
    - set_fact: {{tpl: live}}
    - command: /bin/false
      when: inventory_hostname == 'q0'
    - template: {{src: "{{{{ tpl }}}}.j2", dest: "{{{{ root }}}}/templated-src.txt"}}

# a template that includes another by a name a host's data gives
- hosts: r
  gather_facts: false
  tasks:
    - set_fact: {{inner: live.j2}}
    - command: /bin/false
      when: inventory_hostname == 'r0'
    - template: {{src: computed.j2, dest: "{{{{ root }}}}/computed.txt"}}

# a handler on every host that reads them, in a play with a run_once handler
- hosts: s
  gather_facts: false
  tasks:
    - command: /bin/false
      when: inventory_hostname == 's0'
    - copy: {{content: "x\\n", dest: "{{{{ root }}}}/notify.txt"}}
      notify: [live, once]
  handlers:
    - name: live
      copy: {{content: "{{{{ ansible_play_hosts | join(',') }}}}\\n", dest: "{{{{ root }}}}/handler.txt"}}
    - name: once
      copy: {{content: "once\\n", dest: "{{{{ root }}}}/once.txt"}}
      run_once: true
"""


def test_live_hosts_leave_out_hosts_failed_in_earlier_plays_and_in_hidden_reads_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 0, others={"p": ["p0", "p1", "p2"], "q": ["q0", "q1"], "r": ["r0", "r1"],
                                             "s": ["s0", "s1"], "u": ["u0", "u1"], "v": ["v0", "v1"]},
                  down=("u1", "v1"))
    playbook = playbook_file(tmp_path, PLAYBOOK)
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "live.j2").write_text("{{ ansible_play_hosts | join(',') }}\n")
    (tmp_path / "templates" / "computed.j2").write_text("{% include inner %}")
    code, doc = fleet.rustle(capsys, playbook)
    acode, arecaps = fleet.ansible(playbook)
    files = fleet.files("rustle")
    assert files == fleet.files("ansible")
    assert (code, acode) == (1, 4)  # ansible-playbook: 4 when a host was unreachable
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name in fleet.every:  # a host that was never reached has no recap
        assert recap_counts(by_name[name]["recap"] or {}) == recap_counts(arecaps.get(name, {})), name
    assert arecaps["u1"]["unreachable"] == arecaps["v1"]["unreachable"] == 1
    assert not by_name["u1"]["ok"] and not by_name["v1"]["ok"]
    assert files["p0"] == {"live.txt": "p0,p2 p0,p2 p0,p2 p0,p1,p2\n", "serial.txt": "p0,p2 p0 p0\n"}
    assert files["p2"] == {"live.txt": "p0,p2 p0,p2 p0,p2 p0,p1,p2\n", "serial.txt": "p0,p2 p2 p2\n"}
    assert files["p1"] == {}  # nothing of a later play ran on it
    assert files["q0"] == files["r0"] == {}
    assert files["q1"] == {"templated-src.txt": "q1\n"} and files["r1"] == {"computed.txt": "r1"}
    assert files["u0"] == {"unreached.txt": "u0\n"} and files["v0"] == {"unreached.txt": "v0\n"}
    assert files["u1"] == files["v1"] == {}
    assert files["s0"] == {} and files["s1"] == {"notify.txt": "x\n", "handler.txt": "s1\n", "once.txt": "once\n"}
    trips = {n: h["round_trips"] for n, h in by_name.items()}
    # p0: [play 1] [play 2, sent the failed hosts: a stage of its own] [play 4's first batch]
    # q1: [set_fact, false] [the template, sent the failed hosts]; r1 the same
    # s1: [false, notify.txt] [the handler that reads them] [the run_once handler]
    # u0: [the ignored command] [the later play, sent the unreachable host]; v0: [command] [copy]
    assert (trips["p0"], trips["p2"], trips["q1"], trips["r1"], trips["s1"]) == (3, 3, 2, 2, 3), trips
    assert (trips["u0"], trips["v0"]) == (2, 2), trips


RESUMED = f"""\
- hosts: fleet
  gather_facts: false
  tasks:
    - fail: {{msg: n01 stops here}}
      when: inventory_hostname == 'n01'

- hosts: fleet
  gather_facts: false
  serial: 1
  max_fail_percentage: 0
  tasks:
    - name: n02 fails while the marker is there
      command: test ! -e {{{{ marker }}}}
      when: inventory_hostname == 'n02'
    - copy: {{content: "{LISTS}\\n", dest: "{{{{ root }}}}/live.txt"}}
"""


def test_live_hosts_after_resume_leave_out_the_hosts_that_failed_before_as_in_ansible(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """n02's batch fails while a marker file is there: the rollout stops; --resume once it is
    gone goes on (n01, which failed in the first play, fails there again without stopping it:
    the batch is counted whole, as the first run counted it) and n02 sees n01 left out, as
    ansible-playbook's uninterrupted run (the oracle, without the marker) does. The resumed
    run's summary counts n00, which had finished, as such."""
    fleet = Fleet(sshd, tmp_path, 3)
    playbook = playbook_file(tmp_path, RESUMED)
    marker = tmp_path / "marker"
    marker.write_text("")
    code, doc = fleet.rustle(capsys, playbook, "-e", f"marker={marker}")
    assert code == 1 and doc["rollout"]["state"] == "stopped", doc["rollout"]
    assert fleet.files("rustle")["n02"] == {}
    marker.unlink()
    did = doc["deployment_id"]
    code = main([str(playbook), "-i", str(fleet.inventory), "--run", "--output", "text", "-e", f"marker={marker}",
                 "--resume", did])
    out = capsys.readouterr().out
    assert code == 1 and "ROLLOUT completed" in out, out
    # n00 finished before the resume: not run again, and not counted as not reached
    assert f"deployment {did}: 2 host(s), 1 failed, 1 finished before the resume\n" in out, out
    acode, _ = fleet.ansible(playbook, "-e", f"marker={marker}")
    assert acode == 2
    files = fleet.files("rustle")
    assert files == fleet.files("ansible")
    assert files["n02"] == {"live.txt": "n00,n02 n02 n02\n"} and files["n01"] == {}
