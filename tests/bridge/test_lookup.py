"""The controller side of the module bridge: lookup as Ansible does, refusals, what is embedded."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rustle_deploy.bridge import lookup, policy
from rustle_deploy.errors import PlanError
from rustle_deploy.plan import load_plan

from .conftest import BridgeRun, write_plan

WANT_JSON_SH = b"#!/bin/sh\n# WANT_JSON\necho '{\"changed\": false, \"msg\": \"hi\"}'\n"
ANSIBLE_MODULE = b"""#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
def main():
    m = AnsibleModule(argument_spec=dict(name=dict(type='str', required=True)), supports_check_mode=True)
    m.exit_json(changed=False, greeting='hello ' + m.params['name'])
main()
"""


_ANSIBALLZ_FILES = """
import base64, json, sys, zipfile, io
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader()
from ansible.executor import module_common as mc
built = mc._find_module_utils(module_name="find", b_module_data=open(sys.argv[1], "rb").read(), module_path=sys.argv[1],
    module_args={}, task_vars={"ansible_python_interpreter": "/usr/bin/python3"}, templar=__import__("ansible.template").template.Templar(loader=None),
    module_compression="ZIP_STORED", async_timeout=0, become_plugin=None, environment={})
wrapper = built.b_module_data.decode()
zip_data = wrapper.split("zip_data=")[1].split(",\\n")[0]
zf = zipfile.ZipFile(io.BytesIO(base64.b64decode(eval(zip_data))))
print(json.dumps({n: base64.b64encode(zf.read(n)).decode() for n in zf.namelist()}))
"""


@pytest.fixture
def no_ansible(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller as without ansible-core installed."""
    monkeypatch.setitem(sys.modules, "ansible", None)
    lookup._resolve.cache_clear()


def _library(tmp_path: Path, name: str, data: bytes) -> Path:
    (tmp_path / "library").mkdir(exist_ok=True)
    path = tmp_path / "library" / name
    path.write_bytes(data)
    return path


def test_without_ansible_a_library_script_module_is_found(tmp_path: Path, no_ansible: None) -> None:
    assert not lookup.ansible_available()
    path = _library(tmp_path, "hello.sh", WANT_JSON_SH)
    res = lookup.resolve(["hello"], [str(tmp_path)])
    mod = res.modules["hello"]
    assert isinstance(mod, lookup.BridgedModule)
    assert (mod.fqcn, mod.style, mod.path, mod.interpreter) == ("ansible.legacy.hello", "want_json", str(path), ("/bin/sh",))
    assert mod.entries() == {mod.bin_entry: WANT_JSON_SH}


def test_without_ansible_ansible_modules_are_refused_with_places_and_hint(
        tmp_path: Path, no_ansible: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANSIBLE_LIBRARY", str(tmp_path / "mylib"))
    _library(tmp_path, "greet.py", ANSIBLE_MODULE)
    for name, reason in [("find", "no module by this name"), ("greet", "built on Ansible's module_utils"),
                         ("community.general.ini_file", "collections are found by ansible-core")]:
        path = write_plan(tmp_path, [{"name": "t", "module": name, "args": {}}])
        with pytest.raises(PlanError) as err:
            load_plan(str(path))
        assert f"unknown module '{name}' in task 't'" in err.value.message
        assert reason in err.value.message
        assert str(tmp_path / "library") in str(err.value.hint)
        assert str(tmp_path / "mylib") in str(err.value.hint)
        assert "ansible-core is not installed" in str(err.value.hint)
        assert "pip install 'rustle-deploy[ansible]'" in str(err.value.hint)


def test_an_action_plugin_without_a_module_runs_on_the_controller(tmp_path: Path) -> None:
    # ansible-core's shell and until targets name action plugins of their own action_plugins/
    lookup._resolve.cache_clear()
    (tmp_path / "action_plugins").mkdir()
    (tmp_path / "action_plugins" / "probe_shell.py").write_text("from ansible.plugins.action import ActionBase\n")
    res = lookup.resolve(["probe_shell"], [str(tmp_path)])
    mod = res.modules["probe_shell"]
    assert isinstance(mod, lookup.BridgedModule), mod
    assert (mod.style, mod.action, mod.path) == (
        "action", "probe_shell", str(tmp_path / "action_plugins" / "probe_shell.py"))
    assert mod.entries() == {}  # nothing of it goes to the host
    plan = load_plan(str(write_plan(tmp_path, [{"name": "t", "module": "probe_shell", "args": {}}])))
    assert policy.controller_tasks(plan) == frozenset(t.pointer for p in plan.plays for t in plan.play_tasks(p))


def test_an_action_plugin_delegated_to_another_host_is_refused_to_localhost_accepted(tmp_path: Path) -> None:
    lookup._resolve.cache_clear()
    (tmp_path / "action_plugins").mkdir()
    (tmp_path / "action_plugins" / "probe_shell.py").write_text("from ansible.plugins.action import ActionBase\n")
    path = write_plan(tmp_path, [{"name": "t", "module": "probe_shell", "args": {}, "delegate_to": "db1"}])
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    assert "delegate_to on task 't', whose action plugin 'probe_shell' runs on the controller, is not " \
           "supported yet" in err.value.message
    assert err.value.pointer == "/plays/0/batches/0/tasks/0/delegate_to"
    # ansible-core delegates the call to its implicit localhost itself (bridge/action.py)
    plan = load_plan(str(write_plan(tmp_path, [{"name": "t", "module": "probe_shell", "args": {},
                                                "delegate_to": "localhost"}])))
    assert policy.controller_tasks(plan) == frozenset(t.pointer for p in plan.plays for t in plan.play_tasks(p))


def test_an_action_plugin_of_a_builtin_name_replaces_the_builtin(tmp_path: Path) -> None:
    from rustle_deploy.runtime_index import canonical_module

    lookup._resolve.cache_clear()
    (tmp_path / "action_plugins").mkdir()
    (tmp_path / "action_plugins" / "debug.py").write_text("from ansible.plugins.action import ActionBase\n")
    tasks = [{"name": n, "module": n, "args": {}} for n in ("debug", "ansible.legacy.debug", "ansible.builtin.debug")]
    plan = load_plan(str(write_plan(tmp_path, tasks)))
    short, legacy, builtin = plan.play_tasks(plan.plays[0])
    assert policy.controller_tasks(plan) == {short.pointer, legacy.pointer}
    assert canonical_module("ansible.builtin.debug") == "debug" and canonical_module("debug") is None
    (tmp_path / "action_plugins" / "debug.py").unlink()
    load_plan(str(write_plan(tmp_path, tasks)))  # the next plan's own: none replaced
    assert canonical_module("debug") == "debug"


def test_an_action_plugin_without_ansible_core_is_refused_with_the_hint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ansible", None)
    lookup._resolve.cache_clear()
    (tmp_path / "action_plugins").mkdir()
    (tmp_path / "action_plugins" / "probe_shell.py").write_text("from ansible.plugins.action import ActionBase\n")
    path = write_plan(tmp_path, [{"name": "t", "module": "probe_shell", "args": {}}])
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    lookup._resolve.cache_clear()
    assert "unknown module 'probe_shell' in task 't'" in err.value.message
    assert f"it is an action plugin with no module ({tmp_path / 'action_plugins' / 'probe_shell.py'})" \
        in err.value.message
    assert "it runs on the controller with ansible-core, which is not installed there" in err.value.message
    assert "pip install 'rustle-deploy[ansible]'" in str(err.value.hint)


def test_with_ansible_builtin_module_is_embedded_with_exactly_its_module_utils(tmp_path: Path) -> None:
    res = lookup.resolve(["find", "ansible.builtin.slurp"], [str(tmp_path)])
    find = res.modules["find"]
    assert isinstance(find, lookup.BridgedModule)
    assert (find.fqcn, find.style, find.module_fqn, find.profile) == (
        "ansible.builtin.find", "new", "ansible.modules.find", "legacy")
    assert find.origin.startswith("ansible-core 2.19")
    assert res.ansible_version and res.internal["_ansible_version"] == res.ansible_version
    # the same files AnsiballZ zips for it: ansible-core's own builder, asked in a fresh process
    oracle = subprocess.run([sys.executable, "-c", _ANSIBALLZ_FILES, find.path], capture_output=True, check=True,
                            env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp")})
    expected = {n: base64.b64decode(d) for n, d in json.loads(oracle.stdout).items()}
    assert dict(find.files) == expected
    assert "ansible/module_utils/basic.py" in find.files and "ansible/modules/slurp.py" not in find.files
    assert set(find.entries()) == {"bridge/lib/" + n for n in expected}


@pytest.mark.parametrize(("name", "args", "reason"), [
    ("validate_argument_spec", {"argument_spec": {}}, "checks role arguments on the controller"),
    ("include_tasks", {"file": "x.yml"}, "is a playbook keyword"),
    ("uri", {"url": "http://127.0.0.1/", "src": "{{ name }}.json"},
     "uri uploads '{{ name }}.json' from the controller (its action plugin): its name must be known when compiling"),
    ("uri", {"url": "http://127.0.0.1/", "body_format": "form-multipart", "body": {"f": {"filename": "{{ x }}"}}},
     "uri uploads '{{ x }}' from the controller"),
])
def test_controller_side_action_plugins_are_refused_naming_the_task(
        tmp_path: Path, name: str, args: dict[str, object], reason: str) -> None:
    path = write_plan(tmp_path, [{"name": "the task", "module": name, "args": args}])
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    assert f"module '{name}' in task 'the task' cannot run through the module bridge" in err.value.message
    assert reason in err.value.message
    assert err.value.pointer == "/plays/0/batches/0/tasks/0/module"


def test_host_side_action_plugins_are_accepted(tmp_path: Path) -> None:
    path = write_plan(tmp_path, [
        {"name": "u", "module": "uri", "args": {"url": "http://127.0.0.1:1/"}},
        {"name": "a", "module": "assemble", "args": {"src": "/tmp/frags", "dest": "/tmp/x"}},
    ])
    load_plan(str(path))


def test_a_uri_upload_missing_on_the_controller_is_a_compile_error_naming_where_it_was_looked_for(
        tmp_path: Path) -> None:
    from rustle_deploy.compiler.build import payload_bytes
    from rustle_deploy.compiler.units import plan_units
    from rustle_deploy.inventory import load_inventory
    from rustle_deploy.pipeline import _group_members

    path = write_plan(tmp_path, [{"name": "post", "module": "uri",
                                  "args": {"url": "http://127.0.0.1:1/", "src": "body.json"}}])
    plan = load_plan(str(path))  # the name is written out: accepted, looked for when compiling
    (tmp_path / "inventory.ini").write_text("localhost ansible_connection=local\n")
    inv = load_inventory(tmp_path / "inventory.ini")
    with pytest.raises(PlanError) as err:
        for unit in plan_units(plan, list(inv.hosts.values()), resolve=inv.resolve, select=inv.select,
                               groups=_group_members(inv)):
            payload_bytes(unit, compression=False)
    assert "uri in task 'post': could not find 'body.json' to upload; tried: " in err.value.message
    assert str(path.parent / "files" / "body.json") in err.value.message
    assert err.value.pointer.endswith("/args/src")


def test_assemble_of_controller_fragments_is_accepted_and_a_missing_directory_is_a_compile_error(
        tmp_path: Path) -> None:
    from rustle_deploy.compiler import assemble
    from rustle_deploy.errors import CompileError

    (tmp_path / "files" / "frags").mkdir(parents=True)
    (tmp_path / "files" / "frags" / "a").write_text("a")
    (tmp_path / "files" / "frags" / "b").write_text("b\n")
    path = write_plan(tmp_path, [
        {"name": "a", "module": "assemble", "args": {"src": "frags", "dest": "/tmp/x", "remote_src": False}},
        {"name": "b", "module": "assemble", "args": {"src": "nothing", "dest": "/tmp/x", "remote_src": "no"}},
    ])
    plan = load_plan(str(path))
    tasks = plan.play_tasks(plan.plays[0])
    assert all(map(assemble.is_local, tasks))
    copy, data = assemble.assembled(plan, tasks[0])
    assert copy.module == "ansible.builtin.copy" and copy.args == {"src": assemble.NAME, "dest": "/tmp/x"}
    assert data == b"a\nb\n"
    with pytest.raises(CompileError) as err:
        assemble.assembled(plan, tasks[1])
    assert "/plays/0/batches/0/tasks/1/args/src: Source (nothing) is not a directory" in err.value.message


def test_redirected_short_name_says_where_ansible_sends_it(tmp_path: Path) -> None:
    path = write_plan(tmp_path, [{"name": "t", "module": "ini_file", "args": {}}])
    with pytest.raises(PlanError) as err:
        load_plan(str(path))
    assert "ini_file -> ansible.builtin.ini_file -> community.general.ini_file" in err.value.message
    assert "install the collection" in str(err.value.hint)


def test_library_module_shadows_nothing_built_in_and_wins_over_ansible_core(tmp_path: Path) -> None:
    # Ansible looks in library/ before its own modules: a library/ getent is the one used
    _library(tmp_path, "getent.py", ANSIBLE_MODULE)
    res = lookup.resolve(["getent"], [str(tmp_path)])
    mod = res.modules["getent"]
    assert isinstance(mod, lookup.BridgedModule)
    assert mod.fqcn == "ansible.legacy.getent" and mod.origin == f"library {tmp_path / 'library'}"
    assert mod.module_fqn == "ansible.legacy.getent"
    assert "ansible/legacy/getent.py" in mod.files


def test_collection_module_and_its_module_utils(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    coll = tmp_path / "colls" / "ansible_collections" / "rustletest" / "demo"
    (coll / "plugins" / "modules").mkdir(parents=True)
    (coll / "plugins" / "module_utils").mkdir(parents=True)
    (coll / "galaxy.yml").write_text("namespace: rustletest\nname: demo\nversion: 1.0.0\n")
    (coll / "plugins" / "module_utils" / "shout.py").write_text("def shout(s):\n    return s.upper() + '!'\n")
    (coll / "plugins" / "modules" / "hello.py").write_bytes(ANSIBLE_MODULE.replace(
        b"from ansible.module_utils.basic import AnsibleModule",
        b"from ansible.module_utils.basic import AnsibleModule\n"
        b"from ansible_collections.rustletest.demo.plugins.module_utils.shout import shout"))
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(tmp_path / "colls"))
    res = lookup.resolve(["rustletest.demo.hello"], [])
    mod = res.modules["rustletest.demo.hello"]
    assert isinstance(mod, lookup.BridgedModule), mod
    assert mod.origin == "collection rustletest.demo"
    assert mod.module_fqn == "ansible_collections.rustletest.demo.plugins.modules.hello"
    assert "ansible_collections/rustletest/demo/plugins/module_utils/shout.py" in mod.files


def test_collection_action_plugin_runs_on_the_controller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    coll = tmp_path / "colls" / "ansible_collections" / "rustletest" / "demo"
    (coll / "plugins" / "modules").mkdir(parents=True)
    (coll / "plugins" / "action").mkdir(parents=True)
    (coll / "plugins" / "modules" / "push.py").write_bytes(ANSIBLE_MODULE)
    (coll / "plugins" / "action" / "push.py").write_text(
        "from ansible.plugins.action import ActionBase\nclass ActionModule(ActionBase):\n    pass\n")
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(tmp_path / "colls"))
    plan = load_plan(str(write_plan(tmp_path, [{"name": "t", "module": "rustletest.demo.push", "args": {}}])))
    (task,) = [t for p in plan.plays for t in plan.play_tasks(p)]
    assert policy.controller_tasks(plan) == {task.pointer}
    resolution = policy.unresolved(plan, [task])
    module = policy.bridged(plan, task, resolution)
    assert (module.style, module.action, module.plugin_dirs) == ("action", "rustletest.demo.push", (str(tmp_path),))
    assert module.spec() == {"fqcn": "rustletest.demo.push", "style": "action", "action": "rustletest.demo.push",
                             "plugin_dirs": [str(tmp_path)]}


def test_native_format_refuses_a_bridged_task_naming_it(tmp_path: Path, bridge: BridgeRun, native_cache: Path) -> None:
    # native_cache: the session's runner, which the native format needs before it lowers the plan (a
    # cargo build of its own in this test's private cache took 546 s of the suite under load)
    path = write_plan(tmp_path / "p", [{"name": "find them", "module": "find", "args": {"paths": str(tmp_path)}}])
    code, _, err = bridge.main(str(path), "-i", str(bridge.inventory()), "--compile-only", "--format", "native",
                               "-o", str(tmp_path / "out"))
    assert code == 2
    assert "task 'find them'" in err and "module 'find' is not implemented by the native runner" in err


def test_compiled_artifact_carries_bridge_entries_once_and_is_reproducible(tmp_path: Path, bridge: BridgeRun) -> None:
    path = write_plan(tmp_path / "p", [
        {"name": "a", "module": "find", "args": {"paths": str(tmp_path)}},
        {"name": "b", "module": "ansible.builtin.find", "args": {"paths": "/"}},
        {"name": "c", "module": "stat", "args": {"path": "/"}},
    ])
    shas = []
    for out in ("o1", "o2"):
        code, stdout, err = bridge.main(str(path), "-i", str(bridge.inventory()), "--compile-only", "--output", "json",
                                        "-o", str(tmp_path / out), "--rebuild")
        assert code == 0, err
        shas.append(json.loads(stdout)["artifacts"][0]["sha256"])
    assert shas[0] == shas[1]
    art = tmp_path / "o1" / f"{shas[0]}.pyz"
    with zipfile.ZipFile(art) as zf:
        names = zf.namelist()
        plan = json.loads(zf.read("plan.json"))
    assert "bridge/lib/ansible/modules/find.py" in names and "bridge/lib/ansible/modules/find.pyc" in names
    assert "bridge/lib/ansible/module_utils/basic.py" in names
    assert "rustle_runtime/modules/bridge.py" in names
    assert set(plan["bridge"]["modules"]) == {"ansible.builtin.find"}
    tasks = plan["plays"][0]["tasks"]
    assert [t.get("bridge") for t in tasks] == ["ansible.builtin.find", "ansible.builtin.find", None]
    assert policy.CONTROLLER_ACTIONS  # documented in docs/bridge.md


def test_list_modules_shows_built_ins_and_what_the_bridge_sees(tmp_path: Path, bridge: BridgeRun) -> None:
    _library(tmp_path, "hello.sh", WANT_JSON_SH)
    plan = write_plan(tmp_path, [{"name": "t", "module": "ping", "args": {}}])
    code, out, err = bridge.main("--list-modules", str(plan), "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert "copy" in doc["builtin"] and doc["ansible_core"].startswith("2.19")
    runs = {m["name"]: m["runs"] for m in doc["bridge"]}
    assert runs["ansible.builtin.find"] == "bridge"
    assert runs["ansible.builtin.copy"] == "built in"
    assert runs["ansible.builtin.fetch"] == "built in"
    assert runs["ansible.builtin.reboot"] == ("controller: its action plugin ansible.builtin.reboot runs on the "
                                             "controller with ansible-core")
    assert runs["ansible.builtin.validate_argument_spec"].startswith("refused: validate_argument_spec checks")
    assert runs["ansible.legacy.hello"] == "bridge"
    assert str(tmp_path / "library") in doc["searched"]
    code, out, _ = bridge.main("--list-modules", "--output", "text")
    assert code == 0 and "ansible.builtin.getent" in out and "built in (" in out


def test_list_modules_without_ansible(tmp_path: Path, bridge: BridgeRun, no_ansible: None) -> None:
    _library(tmp_path, "hello.sh", WANT_JSON_SH)
    _library(tmp_path, "greet.py", ANSIBLE_MODULE)
    code, out, err = bridge.main("--list-modules", str(write_plan(tmp_path, [])), "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ansible_core"] is None
    runs = {m["name"]: m["runs"] for m in doc["bridge"]}
    assert runs["ansible.legacy.hello"] == "bridge"
    assert runs["ansible.legacy.greet"].startswith("refused: ") and "module_utils" in runs["ansible.legacy.greet"]


def test_ansible_cores_answer_is_cached_until_a_module_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rustle_deploy import bridge as bridge_pkg

    monkeypatch.setattr(bridge_pkg, "CACHE_DIR", tmp_path / "cache")
    lib = _library(tmp_path, "greet.py", ANSIBLE_MODULE)
    calls = []
    real = lookup.probe
    monkeypatch.setattr(lookup, "probe", lambda request: calls.append(1) or real(request))

    def greeting() -> bytes:
        lookup._resolve.cache_clear()
        mod = lookup.resolve(["greet", "find"], [str(tmp_path)]).modules["greet"]
        assert isinstance(mod, lookup.BridgedModule)
        return mod.files["ansible/legacy/greet.py"]

    assert b"hello " in greeting() and len(calls) == 1
    assert b"hello " in greeting() and len(calls) == 1  # from the cache
    lib.write_bytes(ANSIBLE_MODULE.replace(b"hello ", b"bonjour "))
    os.utime(lib, ns=(1, 1))  # even with an old time: its size changed
    assert b"bonjour " in greeting() and len(calls) == 2
    monkeypatch.setenv("ANSIBLE_LIBRARY", str(tmp_path / "elsewhere"))
    greeting()
    assert len(calls) == 3  # another configuration, another question


def test_a_second_plan_reuses_each_cached_module_and_files_are_stored_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rustle_deploy import bridge as bridge_pkg

    cache = tmp_path / "cache"
    monkeypatch.setattr(bridge_pkg, "CACHE_DIR", cache)
    requests: list[dict[str, object]] = []
    real = lookup._ask  # what is not cached is asked (of finder.py, else of ansible-core)
    monkeypatch.setattr(lookup, "_ask", lambda lookups, plan_dirs: requests.append(lookups) or real(lookups, plan_dirs))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = lookup.resolve(["find", "ansible.builtin.slurp"], [str(tmp_path / "a")])
    lookup._resolve.cache_clear()
    # another plan, in another directory with no library/ beside it: only the new module is asked for
    second = lookup.resolve(["find", "tempfile"], [str(tmp_path / "b")])
    assert [sorted(r) for r in requests] == [["ansible.builtin.slurp", "find"], ["tempfile"]]
    assert first.modules["find"] == second.modules["find"]
    find = second.modules["find"]
    assert isinstance(find, lookup.BridgedModule) and "ansible/module_utils/basic.py" in find.files
    blobs = sorted(p.name for p in (cache / "blobs").iterdir())
    shared = {hashlib.sha256(d).hexdigest() for m in (first.modules["find"], second.modules["tempfile"])
              for d in m.files.values()}  # type: ignore[union-attr]
    assert set(blobs) >= shared and len(blobs) == len(set(blobs))
    lookup._resolve.cache_clear()
    lookup.resolve(["tempfile", "ansible.builtin.slurp", "find"], [str(tmp_path / "b")])
    assert len(requests) == 2  # everything from the cache
    # the cache is not synced: a blob a crash damaged is a miss, asked for again and stored again
    basic = hashlib.sha256(find.files["ansible/module_utils/basic.py"]).hexdigest()
    (cache / "blobs" / basic).write_bytes(b"")
    lookup._resolve.cache_clear()
    again = lookup.resolve(["find"], [str(tmp_path / "b")])
    assert len(requests) == 3 and again.modules["find"] == find
    assert hashlib.sha256((cache / "blobs" / basic).read_bytes()).hexdigest() == basic
