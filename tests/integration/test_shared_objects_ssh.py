"""What artifacts share travels once per host (docs/remote.md, "Objects artifacts share"): the
module bridge's code (``bridge/lib/``) and the runtime are objects of their own on the host
(``objects/<sha256>``), so a second plan with other tasks but the same modules sends only the
rest of its artifact; a host that lost them gets what it lacks; cleanup and pruning remove them.
One host of the shared sshd, driven through the CLI as a user runs it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy import cli
from rustle_deploy.deploy.host import artifact_objects

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

    def artifact(doc: dict[str, Any]) -> tuple[int, dict[str, tuple[int, int]]]:
        """The artifact's size and its shared runs of bytes, sha256 -> (offset, size)."""
        path = remote / "artifacts" / doc["sha256"]
        return path.stat().st_size, {sha: (offset, size) for offset, size, sha in artifact_objects(path)}

    def held() -> set[str]:
        return {p.name for p in (remote / "objects").iterdir()} if (remote / "objects").is_dir() else set()

    # 1. a new host: the whole artifact; the host keeps its shared parts (module_utils, runtime)
    first = _deploy(capsys, plan("a", "one"), inv)
    size, objects = artifact(first)
    lib_sha = next(sha for sha, (offset, _) in objects.items()
                   if zip_names(remote / "artifacts" / first["sha256"], offset)[0].startswith("bridge/lib/"))
    assert first["uploaded"] and first["uploaded_bytes"] == size
    assert held() == set(objects) and len(objects) >= 2  # the bridge's code, the runtime
    whole = (remote / "artifacts" / first["sha256"]).read_bytes()
    for sha, (offset, length) in objects.items():
        assert (remote / "objects" / sha).read_bytes() == whole[offset:offset + length]
        assert hashlib.sha256(whole[offset:offset + length]).hexdigest() == sha
    assert objects[lib_sha][1] > size / 3  # ansible-core's module_utils: a good part of it

    # 2. other tasks, the same modules: only what differs travels, and the artifact the host puts
    # together is the whole one (its name is its sha256)
    second = _deploy(capsys, plan("b", "two"), inv)
    size2, objects2 = artifact(second)
    assert second["sha256"] != first["sha256"]
    assert {sha: n for sha, (_, n) in objects2.items()} == {sha: n for sha, (_, n) in objects.items()}
    assert second["uploaded_bytes"] == size2 - sum(length for _, length in objects.values())
    assert second["uploaded_bytes"] < size2 / 10
    assert_artifacts_whole(remote)
    events = _events(remote)
    assert events["find"]["matched"] == 1 and events["slurp"]["content"] == "cGF5bG9hZAo="
    assert events["say"]["msg"] == "two"

    # 3. a host whose copy of one object changed (and that lost the others, removed by hand)
    # asks for what it lacks: all of it; and one that lost only one asks for that one
    lib_copy = remote / "objects" / lib_sha
    lib_copy.write_bytes(bytes(lib_copy.stat().st_size))
    for sha in set(objects) - {lib_sha}:
        (remote / "objects" / sha).unlink()
    third = _deploy(capsys, plan("c", "three"), inv)
    size3, objects3 = artifact(third)
    shared = sum(length for _, length in objects3.values())
    assert third["uploaded_bytes"] == (size3 - shared) + size3
    assert held() == set(objects3) and _events(remote)["say"]["msg"] == "three"
    lib_copy.unlink()
    third = _deploy(capsys, plan("c2", "three and a half"), inv)
    size3b, _ = artifact(third)
    assert third["uploaded_bytes"] == (size3b - shared) + (size3b - shared + objects[lib_sha][1])
    assert held() == set(objects3)

    # 4. the controller knows the host holds the artifact, the host lost it: the agent asks
    # for it without the objects it has
    (remote / "artifacts" / third["sha256"]).unlink()
    again = _deploy(capsys, plan("c2", "three and a half"), inv)
    assert again["uploaded"] and again["uploaded_bytes"] == size3b - shared
    assert_artifacts_whole(remote)

    # 5. other modules: another bridge code object; the first stays while the previous
    # release holds it, and goes once no kept release does
    before = held()
    other = _deploy(capsys, plan("d", "four", modules="getent"), inv)
    size4, objects4 = artifact(other)
    assert lib_sha not in objects4
    assert other["uploaded_bytes"] == size4 - sum(length for sha, (_, length) in objects4.items() if sha in before)
    assert held() == set(objects3) | set(objects4)
    _deploy(capsys, plan("e", "five", modules="getent"), inv)
    assert held() == set(objects4)

    # 6. cleanup removes the objects with the rest
    capsys.readouterr()
    assert cli.main(["--cleanup", "-i", str(inv), "--output", "json"]) == 0
    assert not remote.exists(), capsys.readouterr().out


def zip_names(path: Path, offset: int) -> list[str]:
    """The names of the entries whose local header starts at ``offset``."""
    with zipfile.ZipFile(path) as zf:
        return [i.filename for i in zf.infolist() if i.header_offset == offset]
