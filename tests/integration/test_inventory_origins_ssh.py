"""Where the inventory wrote a host's variables, as ansible-playbook 2.19 names it: the ``origin``
filter, ``tag_names`` and a strict conditional's message give ``FILE:LINE`` for an INI host line
or ``[group:vars]`` line, ``FILE:LINE:COLUMN`` for a YAML inventory, ``group_vars/`` and
``host_vars/`` (beside the inventory and beside the playbook), the file alone for JSON; a
variable that play vars or set_fact override has their origin instead. (The host's variables
reach only the Python runtime's run request: the pyz format.)

The inventory's variables are in three sources both tools read (INI, YAML, their group_vars and
host_vars); a fourth, of connection variables only, differs: rustle-deploy reaches the hosts
over the real sshd, ansible-playbook (the oracle, one run) on local connections. Each host's
messages must be the oracle's, word for word.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import ANSIBLE, ansible_env

pytestmark = pytest.mark.ssh

HOSTS = ("o1", "o2")
INI = """\
# origins
[web]
o1 a=hello n=3 shadow=inv
o2 a=world n=4 shadow=inv

[web:vars]
gv=groupval
"""
MORE = """\
all:
  hosts:
    o1:
      yv: "fromyaml"
  vars:
    yall: yall
"""
ORIGIN = "ansible._protomatter.origin"
BOOK = f"""\
- hosts: web
  gather_facts: false
  vars:
    shadow: play
  tasks:
    - name: origins
      debug:
        msg: "a={{{{ a | {ORIGIN} }}}} n={{{{ n | {ORIGIN} }}}} gv={{{{ gv | {ORIGIN} }}}} ga={{{{ ga | {ORIGIN} }}}} gj={{{{ gj | {ORIGIN} }}}} yall={{{{ yall | {ORIGIN} }}}} pg={{{{ pg | {ORIGIN} }}}} shadow={{{{ shadow | {ORIGIN} }}}}"
    - name: tags
      debug:
        msg: "{{{{ a | ansible._protomatter.tag_names }}}} {{{{ gj | ansible._protomatter.tag_names }}}}"
    - name: when a
      debug: msg=x
      when: a
      ignore_errors: true
    - name: when gv
      debug: msg=x
      when: gv
      ignore_errors: true
    - name: when yall or a
      debug: msg=x
      when: yall or a
      ignore_errors: true
    - name: when shadow
      debug: msg=x
      when: shadow
      ignore_errors: true
    - set_fact:
        ga: again
    - name: when ga after set_fact
      debug: msg=x
      when: ga
      ignore_errors: true
"""
# ansible-playbook's default output: a debug task's message, a failed task's JSON line
_SHOWN = re.compile(r'^TASK \[(?P<task>[^\]]*)\]|^ok: \[(?P<ok>\w+)\] => \{\n\s+"msg": (?P<msg>".*")\n\}'
                    r"|^fatal: \[(?P<fatal>\w+)\]: FAILED! => (?P<json>\{.*\})$", re.M)


def _oracle_messages(stdout: str) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    task = ""
    for m in _SHOWN.finditer(stdout):
        if m.group("task") is not None:
            task = m.group("task")
        elif m.group("ok"):
            out.setdefault(m.group("ok"), {})[task] = json.loads(m.group("msg"))
        else:
            out.setdefault(m.group("fatal"), {})[task] = json.loads(m.group("json"))["msg"]
    return out


@pytest.fixture(scope="module")
def runs(sshd: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("origins")
    inv = work / "inv"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "hosts.ini").write_text(INI)
    (inv / "more.yml").write_text(MORE)
    (inv / "group_vars" / "all.yml").write_text("---\nga: gall\n")
    (inv / "group_vars" / "web.json").write_text('{"gj": "json"}\n')
    (inv / "host_vars" / "o2.yml").write_text("# wins over the INI line\na:   'from host_vars'\n")
    (work / "group_vars").mkdir()
    (work / "group_vars" / "all.yml").write_text("pg: beside the playbook\n")
    (work / "site.yml").write_text(BOOK)
    ssh = {h: sshd.host(h, work / f"remote-{h}").vars for h in HOSTS}
    (work / "ssh.yml").write_text(yaml.safe_dump({"all": {"hosts": ssh}}))
    local = {h: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable} for h in HOSTS}
    (work / "local.yml").write_text(yaml.safe_dump({"all": {"hosts": local}}))
    shared = ["-i", str(inv / "hosts.ini"), "-i", str(inv / "more.yml")]
    oracle = subprocess.run([str(ANSIBLE), *shared, "-i", str(work / "local.yml"), "-f", "1", str(work / "site.yml")],
                            capture_output=True, text=True, timeout=ORACLE_TIMEOUT, stdin=subprocess.DEVNULL,
                            env=ansible_env(work))
    assert oracle.returncode == 0, oracle.stdout + oracle.stderr
    (work / "home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUSTLE_", "ANSIBLE_"))}
    proc = subprocess.run([sys.executable, "-m", "rustle_deploy.cli", str(work / "site.yml"), *shared,
                           "-i", str(work / "ssh.yml"), "--run", "--output", "json", "--format", "pyz"],
                          capture_output=True, text=True, timeout=ORACLE_TIMEOUT, stdin=subprocess.DEVNULL, cwd=work,
                          env=dict(env, HOME=str(work / "home"), ANSIBLE_CONFIG=str(work / "none.cfg")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ours = {h["name"]: {t["name"]: t.get("msg") for t in h["tasks"]} for h in json.loads(proc.stdout)["hosts"]}
    return {"work": work, "oracle": _oracle_messages(oracle.stdout), "ours": ours}


def test_origin_filter_names_where_the_inventory_wrote_each_value(runs: dict[str, Any]) -> None:
    inv = runs["work"] / "inv"
    expected = {
        "o1": f"a={inv}/hosts.ini:3 n={inv}/hosts.ini:3 gv={inv}/hosts.ini:7 ga={inv}/group_vars/all.yml:2:5 "
              f"gj={inv}/group_vars/web.json yall={inv}/more.yml:6:11 pg={runs['work']}/group_vars/all.yml:1:5 "
              f"shadow={runs['work']}/site.yml:4:13",
        "o2": f"a={inv}/host_vars/o2.yml:2:6",
    }
    assert runs["oracle"]["o1"]["origins"] == expected["o1"]
    assert runs["oracle"]["o2"]["origins"].startswith(expected["o2"] + " ")
    for host in HOSTS:
        assert runs["ours"][host]["origins"] == runs["oracle"][host]["origins"], host
        assert runs["ours"][host]["tags"] == runs["oracle"][host]["tags"], host


@pytest.mark.parametrize("task", ["when a", "when gv", "when yall or a", "when shadow", "when ga after set_fact"])
def test_strict_conditional_messages_name_the_inventory_files_place(runs: dict[str, Any], task: str) -> None:
    for host in HOSTS:
        assert "Conditionals must have a boolean result" in runs["oracle"][host][task]
        assert runs["ours"][host][task] == runs["oracle"][host][task], host
