"""rustle-deploy's own module interface (docs/modules.md): a Python file declaring RUSTLE_MODULE and
run(ctx, args), from library/ or an installed entry point, run in the runtime's process with its
arguments checked against the declaration.

The worked example of the docs, examples/modules/library/kv.py, is the module under test.
"""

from __future__ import annotations

import glob
import json
import shutil
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import BridgeRun, write_plan

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "modules" / "library" / "kv.py"


def _plan(tmp_path: Path, tasks: list[dict[str, object]], *, check_mode: bool = False) -> Path:
    plan_dir = tmp_path / "p"
    (plan_dir / "library").mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE, plan_dir / "library" / "kv.py")
    return write_plan(plan_dir, tasks, check_mode=check_mode)


def test_the_example_module_runs_with_checked_arguments_check_mode_and_diff(tmp_path: Path, bridge: BridgeRun) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("# settings\nworkers = 1\nworkers = 9\n")
    plan = _plan(tmp_path, [
        {"name": "set", "module": "kv", "args": {"path": str(conf), "key": "workers", "value": 4}},
        {"name": "again", "module": "kv", "args": {"path": str(conf), "key": "workers", "value": "4"}},
        {"name": "add", "module": "ansible.legacy.kv", "args": {"path": str(conf), "key": "port", "value": "80"}},
        {"name": "unknown arg", "module": "kv", "args": {"path": str(conf), "key": "a", "colour": "red"},
         "ignore_errors": True},
        {"name": "missing arg", "module": "kv", "args": {"path": str(conf)}, "ignore_errors": True},
        {"name": "bad choice", "module": "kv", "args": {"path": str(conf), "key": "a", "state": "gone"},
         "ignore_errors": True},
        {"name": "own failure", "module": "kv", "args": {"path": str(conf), "key": "a"}, "ignore_errors": True},
        {"name": "registered", "module": "kv", "args": {"path": str(conf), "key": "port", "state": "absent"},
         "register": "out"},
        {"name": "check", "module": "assert", "args": {"that": ["out.changed", "out.key == 'port'"]}},
    ])
    res = bridge.run(plan, "--diff", "-v")
    assert conf.read_text() == "# settings\nworkers = 4\n"
    assert (res["set"]["status"], res["again"]["status"], res["add"]["status"]) == ("changed", "ok", "changed")
    assert res["set"]["diff"]["after"] == "# settings\nworkers = 4\n"
    assert "bridge" in res["set"] and res["set"]["bridge"] == "ansible.legacy.kv"
    assert res["unknown arg"]["msg"] == ("Unsupported parameters for (kv) module: colour. Supported parameters "
                                         "include: key, path, state, value.")
    assert res["missing arg"]["msg"] == "missing required arguments: key"
    assert res["bad choice"]["msg"] == "value of state must be one of: present, absent, got: gone"
    assert res["own failure"]["msg"] == "state is present but value is missing"
    assert res["check"]["status"] == "ok"


def test_check_mode_changes_nothing_and_a_module_without_it_is_skipped(tmp_path: Path, bridge: BridgeRun) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("workers = 1\n")
    plan_dir = tmp_path / "p"
    (plan_dir / "library").mkdir(parents=True)
    (plan_dir / "library" / "touchy.py").write_text(
        "RUSTLE_MODULE = {'args': {}}\n\ndef run(ctx, args):\n    return {'changed': True}\n")
    shutil.copy(EXAMPLE, plan_dir / "library" / "kv.py")
    plan = write_plan(plan_dir, [
        {"name": "set", "module": "kv", "args": {"path": str(conf), "key": "workers", "value": "4"}},
        {"name": "touchy", "module": "touchy", "args": {}},
    ], check_mode=True)
    res = bridge.run(plan)
    assert conf.read_text() == "workers = 1\n"
    assert res["set"]["status"] == "changed"
    assert res["touchy"]["status"] == "skipped"
    assert res["touchy"]["msg"] == "remote module (touchy) does not support check mode"


def test_embedded_only_when_used_and_listed(tmp_path: Path, bridge: BridgeRun) -> None:
    used = _plan(tmp_path, [{"name": "set", "module": "kv", "args": {"path": "/tmp/x", "key": "a", "value": "b"}}])
    unused = write_plan(tmp_path / "p2", [{"name": "hi", "module": "ping", "args": {}}])
    shutil.copytree(tmp_path / "p" / "library", tmp_path / "p2" / "library")
    sizes = {}
    for label, plan in (("used", used), ("unused", unused)):
        code, _, err = bridge.main(str(plan), "-i", str(bridge.inventory()), "--compile-only", "-o",
                                   str(tmp_path / label), "-v")
        assert code == 0, err
        (artifact,) = glob.glob(str(tmp_path / label / "*.pyz"))
        with zipfile.ZipFile(artifact) as zf:
            sizes[label] = [n for n in zf.namelist() if n.startswith("bridge/")]
        if label == "used":
            assert "bridge: ansible.legacy.kv is a rustle-deploy module, run in the runtime's process" in err
    assert len(sizes["used"]) == 1 and sizes["unused"] == []
    code, out, err = bridge.main("--list-modules", str(used), "--output", "json")
    assert code == 0, err
    runs = {m["name"]: m["runs"] for m in json.loads(out)["bridge"]}
    assert runs["ansible.legacy.kv"] == "rustle-deploy module"


def test_a_broken_module_is_refused_at_compile_time(tmp_path: Path, bridge: BridgeRun) -> None:
    plan_dir = tmp_path / "p"
    (plan_dir / "library").mkdir(parents=True)
    (plan_dir / "library" / "broken.py").write_text("RUSTLE_MODULE = {'args': {'x': {'type': 'colour'}}}\n"
                                                    "def run(ctx, args):\n    return {}\n")
    plan = write_plan(plan_dir, [{"name": "b", "module": "broken", "args": {}}])
    code, _, err = bridge.main(str(plan), "-i", str(bridge.inventory()), "--run")
    assert code == 2
    assert "unknown module 'broken' in task 'b'" in err and "argument 'x' has type 'colour'" in err
    assert "docs/modules.md" in err
    assert not (tmp_path / "remote").exists()


def test_an_installed_entry_point_module(tmp_path: Path, bridge: BridgeRun, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "kvpkg").mkdir(parents=True)
    (site / "kvpkg" / "__init__.py").write_text("")
    shutil.copy(EXAMPLE, site / "kvpkg" / "kvmod.py")
    dist = site / "kvpkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: kvpkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[rustle_deploy.modules]\nkv_installed = kvpkg.kvmod\n")
    monkeypatch.syspath_prepend(str(site))
    conf = tmp_path / "c.conf"
    plan = write_plan(tmp_path / "p", [{"name": "set", "module": "kv_installed",
                                        "args": {"path": str(conf), "key": "k", "value": "v"}}])
    res = bridge.run(plan)
    assert res["set"]["status"] == "changed" and conf.read_text() == "k = v\n"
    assert sys.modules.get("kvpkg.kvmod") is None  # found by its file, never imported on the controller


def test_become_another_user_runs_the_module_as_that_user(tmp_path: Path, bridge: BridgeRun) -> None:
    """As a built-in module does: in that user's become child (runtime/become.py), which gets the
    module's source from the runtime, since the artifact is private."""
    import os
    import pwd
    import subprocess

    if os.geteuid() != 0 or not shutil.which("sudo"):
        pytest.skip("runs as root: becomes nobody through sudo without a password")
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    python = "/usr/bin/python3"  # the venv's lives under /root, which nobody cannot enter
    if subprocess.run(["sudo", "-n", "-u", "nobody", python, "-c", "pass"], capture_output=True).returncode:
        pytest.skip("no Python that nobody can start")
    shared = Path(f"/tmp/rustle-own-{os.getpid()}")
    shared.mkdir(mode=0o755)
    try:
        os.chown(shared, nobody.pw_uid, nobody.pw_gid)
        plan = _plan(tmp_path, [
            {"name": "as nobody", "module": "kv", "args": {"path": str(shared / "n.conf"), "key": "a", "value": "1"},
             "become": True, "become_user": "nobody"},
            {"name": "as root", "module": "kv", "args": {"path": str(shared / "r.conf"), "key": "a", "value": "1"},
             "become": True},
        ])
        res = bridge.run(plan, host_vars={"ansible_python_interpreter": python})
        assert res["as nobody"]["status"] == "changed" and res["as root"]["status"] == "changed"
        assert (shared / "n.conf").stat().st_uid == nobody.pw_uid
        assert (shared / "r.conf").stat().st_uid == 0
    finally:
        shutil.rmtree(shared, ignore_errors=True)
