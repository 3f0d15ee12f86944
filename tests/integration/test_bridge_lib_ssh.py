"""The module bridge's code travels once per host (docs/remote.md, "The module bridge's code"):
an artifact's ``bridge/lib/`` entries are an object of their own on the host (``libs/<sha256>``),
so a second plan with other tasks but the same modules sends only the rest of its artifact;
a host that lost the object gets the whole artifact; cleanup and pruning remove it. One host
of the shared sshd, driven through the CLI as a user runs it."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy import cli
from rustle_deploy.deploy.host import lib_block

from ..bridge.conftest import write_plan
from .conftest import assert_artifacts_whole

pytestmark = pytest.mark.ssh


def _deploy(capsys: pytest.CaptureFixture[str], plan: Path, inv: Path) -> dict[str, Any]:
    capsys.readouterr()
    code = cli.main([str(plan), "-i", str(inv), "--run", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (host,) = json.loads(out)["hosts"]
    assert host["ok"] and host["recap"]["failed"] == 0, host
    return host


def _events(remote: Path) -> dict[str, dict[str, Any]]:
    journal = sorted((remote / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)[-1]
    return {e["task"]: e for e in map(json.loads, journal.read_text().splitlines()) if e["event"] == "task_result"}


def test_the_bridge_code_is_sent_once_per_host(tmp_path: Path, sshd: Any, rustle_home: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    remote = tmp_path / "remote"
    host = sshd.host("libhost", remote)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {host.name: dict(host.vars)}}}))
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.txt").write_text("payload\n")

    def plan(name: str, message: str, modules: str = "find") -> Path:
        tasks = [{"name": "slurp", "module": "ansible.builtin.slurp", "args": {"src": str(data / "x.txt")}},
                 {"name": "say", "module": "debug", "args": {"msg": message}}]
        if modules == "find":
            tasks.insert(0, {"name": "find", "module": "find", "args": {"paths": str(data)}})
        else:
            tasks.insert(0, {"name": "getent", "module": "getent", "args": {"database": "passwd", "key": "root"}})
        return write_plan(tmp_path / name, tasks, hosts=(host.name,))

    def artifact(doc: dict[str, Any]) -> tuple[int, tuple[int, int, str]]:
        path = remote / "artifacts" / doc["sha256"]
        lib = lib_block(path)
        assert lib is not None
        return path.stat().st_size, lib

    # 1. a new host: the lib object is pushed ahead of the artifact, which arrives whole
    first = _deploy(capsys, plan("a", "one"), inv)
    size, (offset, lib_size, lib_sha) = artifact(first)
    assert first["uploaded"] and first["uploaded_bytes"] == size
    assert lib_size > size / 3  # ansible-core's module_utils: a good part of a bridged artifact
    assert (remote / "libs" / lib_sha).read_bytes() == (remote / "artifacts" / first["sha256"]).read_bytes()[
        offset:offset + lib_size]
    assert hashlib.sha256((remote / "libs" / lib_sha).read_bytes()).hexdigest() == lib_sha

    # 2. other tasks, the same modules: only the artifact without its lib travels, and the
    # artifact the host puts together is the whole one (its name is its sha256)
    second = _deploy(capsys, plan("b", "two"), inv)
    size2, lib2 = artifact(second)
    assert second["sha256"] != first["sha256"] and lib2[1:] == (lib_size, lib_sha)
    assert second["uploaded_bytes"] == size2 - lib_size
    assert_artifacts_whole(remote)
    events = _events(remote)
    assert events["find"]["matched"] == 1 and events["slurp"]["content"] == "cGF5bG9hZAo="
    assert events["say"]["msg"] == "two"

    # 3. a host that lost the object (removed by hand) asks for the whole artifact
    shutil.rmtree(remote / "libs")
    third = _deploy(capsys, plan("c", "three"), inv)
    size3, _ = artifact(third)
    assert third["uploaded_bytes"] == (size3 - lib_size) + size3
    assert (remote / "libs" / lib_sha).is_file() and _events(remote)["say"]["msg"] == "three"

    # 4. the controller knows the host holds the artifact, the host lost it: when the agent asks,
    # it asks for it without the lib it has
    (remote / "artifacts" / third["sha256"]).unlink()
    again = _deploy(capsys, plan("c", "three"), inv)
    assert again["uploaded"] and again["uploaded_bytes"] == size3 - lib_size
    assert_artifacts_whole(remote)

    # 5. other modules: a second lib; the first stays while the previous release holds it, and
    # goes once no kept release does
    other = _deploy(capsys, plan("d", "four", modules="getent"), inv)
    _, (_, _, other_lib) = artifact(other)
    assert other_lib != lib_sha and other["uploaded_bytes"] == artifact(other)[0]
    assert sorted(p.name for p in (remote / "libs").iterdir()) == sorted([lib_sha, other_lib])
    _deploy(capsys, plan("e", "five", modules="getent"), inv)
    assert [p.name for p in (remote / "libs").iterdir()] == [other_lib]

    # 6. cleanup removes the objects with the rest
    capsys.readouterr()
    assert cli.main(["--cleanup", "-i", str(inv), "--output", "json"]) == 0
    assert not remote.exists(), capsys.readouterr().out
