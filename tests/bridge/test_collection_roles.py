"""Roles of collections (``namespace.collection.role``) in ``roles:``, ``include_role`` and
``import_role``, found as ansible-playbook finds them, each searching its own collection for its
modules' short names; the same playbook under ansible-playbook gives the same results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import BridgeRun
from .test_playbook import _collection

pytestmark = pytest.mark.ansible


def _roles(root: Path) -> Path:
    """rustletest.demo (test_playbook's, with its module ``hello``) plus two roles: ``web``
    (a short-named module and a template of its own, and the dependency ``base`` by short name,
    found in its own collection) and ``base``."""
    coll = _collection(root) / "ansible_collections" / "rustletest" / "demo"
    web, base = coll / "roles" / "web", coll / "roles" / "base"
    for d in (web / "tasks", web / "meta", web / "templates", web / "defaults", base / "tasks"):
        d.mkdir(parents=True)
    (web / "meta" / "main.yml").write_text("dependencies: [{role: base, who: dep}]\n")
    (web / "defaults" / "main.yml").write_text("site: demo\n")
    (web / "templates" / "page.j2").write_text("site {{ site }} for {{ who }}\n")
    (web / "tasks" / "main.yml").write_text(
        "- name: module of the role's collection by its short name\n"
        "  hello: {name: '{{ who }}'}\n"
        "  register: web_hello\n"
        "- name: the role's own template\n"
        "  template: {src: page.j2, dest: '{{ out }}/page-{{ who }}.txt'}\n")
    (base / "tasks" / "main.yml").write_text(
        "- name: base of the collection\n"
        "  rustletest.demo.hello: {name: 'base {{ who }}'}\n"
        "  register: base_hello\n")
    return root


def _playbook(work: Path, out: Path, results: Path) -> Path:
    # a legacy role whose name has dots, as ansible-core's module_utils_facts.system.selinux
    legacy = work / "roles" / "dotted.legacy.role" / "tasks"
    legacy.mkdir(parents=True)
    (legacy / "main.yml").write_text("- name: legacy role with dots\n  set_fact: {legacy_ran: true}\n")
    play = [
        {"hosts": "localhost", "gather_facts": False, "vars": {"out": str(out)},
         "roles": [{"role": "rustletest.demo.web", "who": "fq"}, "dotted.legacy.role"]},
        {"hosts": "localhost", "gather_facts": False, "vars": {"out": str(out)},
         "collections": ["rustletest.demo"],
         "roles": [{"role": "web", "who": "short"}],
         "tasks": [
             {"name": "import a collection role", "import_role": {"name": "web"}, "vars": {"who": "imp"}},
             {"name": "include a collection role", "include_role": {"name": "rustletest.demo.base"},
              "vars": {"who": "inc"}},
             {"name": "write results", "copy": {"dest": str(results), "content": "{{ {'web': web_hello, "
                                                "'base': base_hello, 'legacy': legacy_ran} | to_json }}"}},
         ]},
    ]
    (work / "site.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    return work / "site.yml"


def _normal(doc: dict[str, object]) -> dict[str, object]:
    return {k: {kk: vv for kk, vv in v.items() if kk != "invocation"} if isinstance(v, dict) else v
            for k, v in doc.items()}


@pytest.mark.parametrize("where", ["collections_path", "beside the playbook"])
def test_roles_of_collections_run_as_under_ansible_playbook(
        tmp_path: Path, bridge: BridgeRun, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    got = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        out = work / "out"
        out.mkdir(parents=True)
        if where == "collections_path":
            monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(_roles(work / "colls")))
        else:
            monkeypatch.delenv("ANSIBLE_COLLECTIONS_PATH", raising=False)
            _roles(work / "collections")
        site = _playbook(work, out, work / "results.json")
        if tool == "rustle":
            events = bridge.run(site)
            assert events["rustletest.demo.web : module of the role's collection by its short name"][
                "bridge"] == "rustletest.demo.hello"
            assert events["rustletest.demo.base : base of the collection"]["status"] == "changed"
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RUSTLE_")}
            env.update(ANSIBLE_HOME=str(work / "ahome"), ANSIBLE_LOCAL_TEMP=str(work / "atmp"),
                       ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0")
            proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
                                   "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}", str(site)],
                                  cwd=work, env=env, capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        got[tool] = _normal(json.loads((work / "results.json").read_text()))
        assert sorted(p.name for p in out.iterdir()) == ["page-fq.txt", "page-imp.txt", "page-short.txt"]
        assert (out / "page-imp.txt").read_text() == "site demo for imp\n"
    assert got["rustle"] == got["ansible"]
    assert got["rustle"]["web"]["greeting"] == "IMP!" and got["rustle"]["base"]["greeting"] == "BASE INC!"


def test_a_collection_role_not_found_names_the_collection_roots(
        tmp_path: Path, bridge: BridgeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(_roles(tmp_path / "colls")))
    site = tmp_path / "site.yml"
    site.write_text("- hosts: localhost\n  gather_facts: false\n  roles: [rustletest.demo.nope]\n")
    code, _, err = bridge.main(str(site), "-i", str(bridge.inventory()), "--run")
    assert code == 2
    assert f"{site}:3:11: the role 'rustletest.demo.nope' was not found" in err, err
    assert "as a role of the collection rustletest.demo in: " in err and str(tmp_path / "colls") in err
    # a collection role's dependency that its collection lacks is looked for in roles/
    deps = tmp_path / "colls" / "ansible_collections" / "rustletest" / "demo" / "roles" / "base" / "meta"
    deps.mkdir()
    (deps / "main.yml").write_text("dependencies: [elsewhere]\n")
    (tmp_path / "roles" / "elsewhere" / "tasks").mkdir(parents=True)
    (tmp_path / "roles" / "elsewhere" / "tasks" / "main.yml").write_text("- name: legacy dep\n  debug: msg=hi\n")
    site.write_text("- hosts: localhost\n  gather_facts: false\n  vars: {who: x}\n  roles: [rustletest.demo.base]\n")
    events = bridge.run(site)
    assert events["elsewhere : legacy dep"]["status"] == "ok"
    assert events["rustletest.demo.base : base of the collection"]["greeting"] == "BASE X!"
