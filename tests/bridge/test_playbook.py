"""Playbooks that name modules no built-in implements: found as ansible-playbook finds them
(library/ beside the playbook and in roles, collections by FQCN or through the ``collections``
keyword) and run through the module bridge; refused at the task's line when nothing is found.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path

import pytest

from .conftest import BridgeRun
from .test_runs import ANSIBLE_MODULE


def _collection(root: Path) -> Path:
    """A collection rustletest.demo with a module ``hello`` that uses its own module_utils."""
    coll = root / "ansible_collections" / "rustletest" / "demo"
    (coll / "plugins" / "modules").mkdir(parents=True)
    (coll / "plugins" / "module_utils").mkdir(parents=True)
    (coll / "galaxy.yml").write_text("namespace: rustletest\nname: demo\nversion: 1.0.0\n")
    (coll / "plugins" / "module_utils" / "shout.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    (coll / "plugins" / "modules" / "hello.py").write_text(ANSIBLE_MODULE.replace(
        "greeting='hello ' + m.params['name']", "greeting=shout(m.params['name'])").replace(
        "from ansible.module_utils.basic import AnsibleModule",
        "from ansible.module_utils.basic import AnsibleModule\n"
        "from ansible_collections.rustletest.demo.plugins.module_utils.shout import shout"))
    return root


def test_library_role_library_and_collections_run_from_a_playbook(
        tmp_path: Path, bridge: BridgeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    (work / "library").mkdir(parents=True)
    (work / "library" / "greet.py").write_text(ANSIBLE_MODULE)
    role = work / "roles" / "greeter"
    (role / "library").mkdir(parents=True)
    (role / "tasks").mkdir()
    (role / "library" / "role_greet.py").write_text(ANSIBLE_MODULE.replace("'hello '", "'role hello '"))
    (role / "tasks" / "main.yml").write_text("- name: from the role's library\n  role_greet: {name: r}\n"
                                            "- name: through the role's collections\n  hello: {name: m}\n")
    (role / "meta").mkdir()
    (role / "meta" / "main.yml").write_text("collections: [rustletest.demo]\n")
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(_collection(tmp_path / "colls")))
    (work / "site.yml").write_text(
        "- hosts: localhost\n"
        "  gather_facts: false\n"
        "  roles: [greeter]\n"
        "  tasks:\n"
        "    - name: library beside the playbook\n"
        "      greet: {name: a}\n"
        "    - name: library as ansible.legacy\n"
        "      ansible.legacy.greet: name=b\n"
        "    - block:\n"
        "        - name: short name through collections\n"
        "          hello: {name: c}\n"
        "      collections: [rustletest.demo]\n"
        "    - name: fully qualified\n"
        "      rustletest.demo.hello: {name: d}\n"
        "      register: out\n"
        "    - name: the registered result is the module's\n"
        "      assert: {that: [\"out.greeting == 'D!'\", \"out.changed\"]}\n")
    results = bridge.run(work / "site.yml", "-v")
    assert results["greeter : from the role's library"]["greeting"] == "role hello r"
    assert results["greeter : through the role's collections"]["greeting"] == "M!"
    assert results["library beside the playbook"]["greeting"] == "hello a"
    assert results["library as ansible.legacy"]["greeting"] == "hello b"
    assert results["short name through collections"]["greeting"] == "C!"
    assert results["fully qualified"]["greeting"] == "D!"
    assert results["the registered result is the module's"]["status"] == "ok"
    assert results["short name through collections"]["bridge"] == "rustletest.demo.hello"
    assert results["library beside the playbook"]["bridge"] == "ansible.legacy.greet"


def test_emitted_plan_keeps_the_collections_keyword(tmp_path: Path, bridge: BridgeRun,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(_collection(tmp_path / "colls")))
    pb = tmp_path / "site.yml"
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "greet.py").write_text(ANSIBLE_MODULE)
    pb.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                  "    - name: short\n      hello: {name: x}\n      collections: rustletest.demo\n"
                  "    - name: builtin\n      debug: msg=hi\n      collections: [rustletest.demo]\n"
                  "    - name: library\n      greet: {name: y}\n")
    code, out, err = bridge.main(str(pb), "-i", str(bridge.inventory()), "--emit-plan")
    assert code == 0, err
    tasks = json.loads(out)["plays"][0]["batches"][0]["tasks"]
    assert tasks[0]["collections"] == ["rustletest.demo"]
    assert "collections" not in tasks[1]  # a built-in module needs no lookup
    (tmp_path / "elsewhere").mkdir()
    plan = tmp_path / "elsewhere" / "emitted.json"  # its library/ is still the playbook's
    plan.write_text(out)
    results = bridge.run(plan)
    assert results["short"]["greeting"] == "X!" and results["library"]["greeting"] == "hello y"


def test_a_module_nothing_provides_is_refused_at_its_line(tmp_path: Path, bridge: BridgeRun,
                                                          rustle_home: Path) -> None:
    pb = tmp_path / "site.yml"
    pb.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - debug: msg=first\n"
                  "    - name: nowhere\n      not_a_module_anywhere: {x: 1}\n")
    code, out, err = bridge.main(str(pb), "-i", str(bridge.inventory()), "--run")
    assert code == 2
    assert err.startswith(f"error: {pb}:6:7: unknown module 'not_a_module_anywhere' in task 'nowhere'"), err
    assert "searched: " + str(tmp_path / "library") in err
    assert "hint: " in err and "library/ beside the plan" in err
    assert not (tmp_path / "remote").exists()
    assert not (rustle_home / ".rustle" / "state.db").exists()


def test_a_misspelled_keyword_is_still_a_keyword_error(tmp_path: Path, bridge: BridgeRun) -> None:
    pb = tmp_path / "site.yml"
    pb.write_text("- hosts: localhost\n  tasks:\n    - name: typo\n      debug: msg=hi\n      whne: true\n")
    code, _, err = bridge.main(str(pb), "-i", str(bridge.inventory()), "--syntax-check")
    assert code == 2
    assert "'whne' is not a valid keyword for a task" in err and "did you mean 'when'?" in err


def test_collections_keyword_takes_collection_names(tmp_path: Path, bridge: BridgeRun) -> None:
    pb = tmp_path / "site.yml"
    pb.write_text("- hosts: localhost\n  collections: [notacollection]\n  tasks:\n    - debug: msg=hi\n")
    code, _, err = bridge.main(str(pb), "-i", str(bridge.inventory()), "--syntax-check")
    assert code == 2
    assert "collections takes collection names such as 'community.general', not 'notacollection'" in err


def test_list_modules_of_a_playbook_includes_its_roles_library(tmp_path: Path, bridge: BridgeRun) -> None:
    role = tmp_path / "roles" / "greeter"
    (role / "library").mkdir(parents=True)
    (role / "tasks").mkdir()
    (role / "library" / "role_greet.py").write_text(ANSIBLE_MODULE)
    (role / "tasks" / "main.yml").write_text("- role_greet: {name: r}\n")
    (tmp_path / "library").mkdir()
    (tmp_path / "library" / "greet.py").write_text(ANSIBLE_MODULE)
    pb = tmp_path / "site.yml"
    pb.write_text("- hosts: localhost\n  gather_facts: false\n  roles: [greeter]\n")
    code, out, err = bridge.main("--list-modules", str(pb), "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    paths = {m["name"]: m["path"] for m in doc["bridge"]}
    assert paths["ansible.legacy.role_greet"] == str(role / "library" / "role_greet.py")
    assert paths["ansible.legacy.greet"] == str(tmp_path / "library" / "greet.py")
    assert str(role / "library") in doc["searched"]


def test_a_roles_action_plugin_runs_on_the_controller_with_the_hosts_variables(
        tmp_path: Path, bridge: BridgeRun) -> None:
    role = tmp_path / "roles" / "r"
    (role / "tasks").mkdir(parents=True)
    (role / "action_plugins").mkdir()
    # runs on the controller: writes where the controller is, reads a variable the host set
    (role / "action_plugins" / "on_controller.py").write_text(
        "import os\nfrom ansible.plugins.action import ActionBase\n\n"
        "class ActionModule(ActionBase):\n    def run(self, tmp=None, task_vars=None):\n"
        "        user = self._low_level_execute_command('id -un', sudoable=True)['stdout'].strip()\n"
        "        return {'changed': True, 'pid': os.getpid(), 'word': self._task.args['word'], 'user': user,\n"
        "                'seen': task_vars['before']['stdout'], 'host': task_vars['inventory_hostname']}\n")
    (role / "tasks" / "main.yml").write_text(
        "- command: echo from-the-host\n  register: before\n"
        "- name: controller side\n  on_controller: {word: '{{ before.stdout }}!'}\n  register: r\n"
        "- name: as another user\n  on_controller: {word: x}\n  become: true\n  become_user: nobody\n"
        "  register: other\n"
        "- copy: {content: '{{ r | to_json }}', dest: '" + str(tmp_path / "out.json") + "'}\n"
        "- copy: {content: '{{ other.user }} {{ r.user }}', dest: '" + str(tmp_path / "users.txt") + "'}\n")
    if os.geteuid() != 0 or not shutil.which("sudo"):  # no become without sudo as root
        (role / "tasks" / "main.yml").write_text((role / "tasks" / "main.yml").read_text().replace(
            "  become: true\n", ""))
    pb = tmp_path / "site.yml"
    pb.write_text("- hosts: localhost\n  gather_facts: false\n  roles: [r]\n")
    code, _, err = bridge.main(str(pb), "-i", str(bridge.inventory()), "--run")
    assert code == 0, err
    result = json.loads((tmp_path / "out.json").read_text())
    assert result["word"] == "from-the-host!" and result["seen"] == "from-the-host"
    assert result["host"] == "localhost" and result["changed"] is True
    assert result["pid"] != os.getpid()  # ansible-core ran it in a child of its own
    # become, as the task says, on the action's connection (sudo as root, without a password)
    if os.geteuid() == 0 and shutil.which("sudo"):
        assert (tmp_path / "users.txt").read_text() == f"nobody {pwd.getpwuid(os.getuid()).pw_name}"
