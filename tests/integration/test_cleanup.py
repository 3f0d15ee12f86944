"""--cleanup removes only what rustle-deploy made (issue 11): over a real sshd, several inventory
hosts sharing one server with distinct remote dirs, and over the local connection.

What rustle-deploy writes under a remote dir is listed in deploy/agent.py's docstring; anything
else (a foreign file or directory, a symlink we did not make) stays and is reported per host.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.deploy import HostJob, RunOptions, agent, deploy_fleet
from rustle_deploy.state import History

from .conftest import BIN, job
from .test_cli import example, run_cli, tree

pytestmark = pytest.mark.usefixtures("rustle_home")

SHA_A, SHA_B = "a" * 64, "b" * 64


def write_inventory(tmp_path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    return inv


def ssh_hosts(sshd: Any, tmp_path: Path, names: list[str]) -> dict[str, dict[str, Any]]:
    """Inventory vars for ``names`` on the shared sshd, each with remote dir tmp_path/<name>."""
    return {n: dict(sshd.host(n, tmp_path / n, rustle_test_root=str(tmp_path / f"{n}-root")).vars) for n in names}


def deploy_twice(capsys: pytest.CaptureFixture[str], tmp_path: Path, inv: Path, *extra: str) -> dict[str, Any]:
    """Deploy and run the example plan, then a changed one: two artifacts, current and previous
    links, run journals. Returns the second deployment's manifest."""
    plan = example(tmp_path, tmp_path, hosts=["fleet"])
    code, _, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", *extra)
    assert code == 0, err
    doc = json.loads(plan.read_text())
    doc["plays"][0]["batches"][0]["tasks"][4]["args"]["content"] = "release=2\n"
    plan.write_text(json.dumps(doc))
    code, out, err = run_cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", *extra)
    assert code == 0, err
    manifest: dict[str, Any] = json.loads(out)
    assert all(h["previous_sha256"] for h in manifest["hosts"])
    return manifest


def plant_foreign(d: Path, binary_name: str) -> dict[str, str]:
    """Files and directories rustle-deploy did not make, inside its directories and beside
    them; returns {relative path: kind} as the cleanup should report them."""
    (d / "notes.txt").write_text("mine\n")
    (d / "mine").mkdir()
    (d / "mine" / "keep.txt").write_text("mine\n")
    (d / "artifacts" / "notes.txt").write_text("mine\n")
    (d / "artifacts" / "mine").mkdir()
    (d / "artifacts" / ("0" * 64)).mkdir()  # an artifact's name, but a directory
    (d / "releases" / "notes.txt").write_text("mine\n")
    (d / "releases" / "mine").mkdir()  # a release's name, but never a release
    (d / "releases" / binary_name / "notes.txt").write_text("mine\n")
    (d / "runs" / "notes.txt").write_text("mine\n")
    (d / "runs" / "mine").mkdir()
    (d / "runs" / "mine" / "keep.txt").write_text("mine\n")
    (d / "runs" / "notes.jsonl").write_text('{"not": "a run journal"}\n')
    return {
        "notes.txt": "file", "mine/": "dir",
        "artifacts/notes.txt": "file", "artifacts/mine/": "dir", f"artifacts/{'0' * 64}/": "dir",
        "releases/notes.txt": "file", "releases/mine/": "dir", f"releases/{binary_name}/notes.txt": "file",
        "runs/notes.txt": "file", "runs/mine/": "dir", "runs/notes.jsonl": "file",
    }


def foreign_tree(d: Path, foreign: dict[str, str]) -> dict[str, Any]:
    """tree() of ``d`` restricted to the foreign entries and what is inside them."""
    return {k: v for k, v in tree(d).items() if any(k == f.rstrip("/") or k.startswith(f) for f in foreign)}


def deployments(rustle_home: Path) -> list[tuple[str, str]]:
    db = rustle_home / ".rustle" / "state.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as c:
        return list(c.execute("SELECT id, op FROM deployments ORDER BY rowid"))


# -- foreign entries survive and are reported -------------------------------------------------


@pytest.mark.ssh
def test_foreign_files_and_directories_survive_cleanup_and_are_reported(
    sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hosts = ssh_hosts(sshd, tmp_path, ["mixed", "clean"])
    inv = write_inventory(tmp_path, hosts)
    manifest = deploy_twice(capsys, tmp_path, inv)
    binary_name = manifest["hosts"][0]["binary_name"]
    mixed, clean = tmp_path / "mixed", tmp_path / "clean"
    foreign = plant_foreign(mixed, binary_name)
    before = foreign_tree(mixed, foreign)

    code, out, err = run_cli(capsys, "--cleanup", "-i", str(inv), "--output", "text")
    assert code == 0, err
    assert foreign_tree(mixed, foreign) == before, "foreign entries are left exactly as they were"
    assert not clean.exists(), "a remote dir holding only rustle-deploy's files is removed"
    assert sorted(os.listdir(mixed / "artifacts")) == sorted(["notes.txt", "mine", "0" * 64])
    assert sorted(os.listdir(mixed / "releases")) == sorted(["notes.txt", "mine", binary_name])
    assert os.listdir(mixed / "releases" / binary_name) == ["notes.txt"]
    assert sorted(os.listdir(mixed / "runs")) == sorted(["notes.txt", "mine", "notes.jsonl"])
    for ours in ("history.jsonl", "lock", "unpacked", "runners"):
        assert not (mixed / ours).exists(), ours
    assert sorted(os.listdir(mixed)) == sorted(["notes.txt", "mine", "artifacts", "releases", "runs", agent.CREATED_MARKER])
    # text: one note per host that kept something, naming what was left
    notes = [line for line in out.splitlines() if line.startswith("note: mixed:")]
    assert notes, out
    for path in foreign:
        assert path in out, (path, out)
    assert "note: clean:" not in out

    # JSON: the same cleanup again (nothing of ours left) still reports what stays
    code, out, err = run_cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["mixed"]["ok"] and by_name["mixed"]["removed"] == []
    left = {e["path"]: e["kind"] for e in by_name["mixed"]["left"]}
    for path, kind in foreign.items():
        assert left.get(path) == kind, (path, left)
    assert by_name["mixed"]["remote_dir_removed"] is False
    assert by_name["mixed"]["notes"]
    assert by_name["clean"]["left"] == [] and by_name["clean"]["notes"] == []


@pytest.mark.ssh
def test_symlinks_are_removed_as_links_or_left_and_never_followed(sshd: Any, tmp_path: Path, build_artifact: Any) -> None:
    outside = tmp_path / "outside"
    (outside / "dir").mkdir(parents=True)
    (outside / "victim.txt").write_text("precious\n")
    (outside / "dir" / "keep.txt").write_text("precious\n")
    (outside / "dir" / SHA_A).write_text("looks like an artifact\n")
    (outside / "r-0123456789ab.jsonl").write_text('{"event": "run_start", "run_id": "r-0123456789ab"}\n')
    outside_before = tree(outside)
    d = tmp_path / "h"
    host = sshd.host("links", d)
    art = build_artifact()
    outs = asyncio.run(deploy_fleet([job(host, art, run=RunOptions("r-00000000000a"))], parallel=1, timeout=60))
    assert outs[0].ok, outs[0].error
    release = d / "releases" / BIN
    (release / "previous").symlink_to(outside / "victim.txt")  # ours by name and kind: unlinked
    (d / "artifacts" / SHA_B).symlink_to(outside / "victim.txt")  # an artifact's name, but a link
    (d / "unpacked").mkdir(exist_ok=True)
    (d / "unpacked" / SHA_A).symlink_to(outside / "dir")
    (d / "runners").symlink_to(outside / "dir")  # the whole directory as a link
    (d / "runs" / "r-0123456789ab.jsonl").symlink_to(outside / "r-0123456789ab.jsonl")
    (d / "link-out").symlink_to(outside)

    outs = asyncio.run(deploy_fleet([HostJob(host, "cleanup")], parallel=1, timeout=60))
    assert outs[0].ok, outs[0].error
    agent = outs[0].agent
    assert agent is not None
    assert tree(outside) == outside_before, "no symlink target is touched"
    assert not os.path.lexists(release / "previous") and not os.path.lexists(release / "current")
    assert "releases/" + BIN + "/previous" in agent["removed"]
    left = {e["path"]: e["kind"] for e in agent["left"]}
    expected = {f"artifacts/{SHA_B}": "symlink", f"unpacked/{SHA_A}": "symlink", "runners": "symlink",
                "runs/r-0123456789ab.jsonl": "symlink", "link-out": "symlink"}
    for path, kind in expected.items():
        assert left.get(path) == kind, (path, left)
        assert (d / path).is_symlink(), path
    assert not (d / "artifacts" / art[1]).exists() and not (d / "history.jsonl").exists()


# -- unusable remote dirs ---------------------------------------------------------------------


@pytest.mark.ssh
@pytest.mark.parametrize("value", ["", "/", "relative/dir", "~", "~/", "/tmp/../etc", "/srv/a\nb"])
def test_unusable_remote_dirs_are_refused_before_any_host_is_touched(
    value: str, sshd: Any, tmp_path: Path, build_artifact: Any, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    good = [sshd.host(n, tmp_path / n) for n in ("good1", "good2")]
    outs = asyncio.run(deploy_fleet([job(h, build_artifact(), run=RunOptions("r-00000000000b")) for h in good],
                                    parallel=2, timeout=60))
    assert all(o.ok for o in outs)
    hosts = {h.name: dict(h.vars) for h in good}
    hosts["bad"] = {**hosts["good1"], "rustle_remote_dir": value}
    inv = write_inventory(tmp_path, dict(sorted(hosts.items())))
    login = Path(pwd.getpwnam(sshd.user).pw_dir)
    login_before = sorted(os.listdir(login))
    remote_before = {n: tree(tmp_path / n) for n in ("good1", "good2")}
    history_before = deployments(rustle_home)

    for args in (["--cleanup"], ["--cleanup", "--dry-run"]):
        code, out, err = run_cli(capsys, *args, "-i", str(inv), "--output", "json")
        assert code == 2, (args, out, err)
        assert "bad" in err and "rustle_remote_dir" in err and repr(value) in err, err
        assert "hint:" in err
        assert out == ""
    assert {n: tree(tmp_path / n) for n in ("good1", "good2")} == remote_before
    assert sorted(os.listdir(login)) == login_before
    assert deployments(rustle_home) == history_before, "nothing is recorded in history"


def test_unusable_remote_dir_is_refused_by_every_mode_that_touches_hosts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty rustle_remote_dir resolves to the login directory: no mode may use it."""
    monkeypatch.chdir(rustle_home)  # the local connection's login directory
    (rustle_home / "artifacts").mkdir()
    (rustle_home / "artifacts" / "keep.txt").write_text("precious\n")
    (rustle_home / "runs").mkdir()
    (rustle_home / "runs" / "r-0123456789ab.jsonl").write_text("precious\n")
    (rustle_home / "history.jsonl").write_text("precious\n")
    before = tree(rustle_home)
    plan = example(tmp_path, tmp_path / "w")
    for value in ("", "~"):
        inv = tmp_path / "inv.yml"
        inv.write_text(yaml.safe_dump({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "rustle_remote_dir": value}}}}))
        for args in (["--cleanup"], ["--cleanup", "--dry-run"], [str(plan)], [str(plan), "--dry-run"],
                     [str(plan), "--run"]):
            code, _, err = run_cli(capsys, *args, "-i", str(inv), "--output", "json")
            assert code == 2, (value, args, err)
            assert f"localhost: rustle_remote_dir {value!r}" in err, err
        assert tree(rustle_home) == before, "the login directory is left alone"
    assert deployments(rustle_home) == []


# -- dry run ----------------------------------------------------------------------------------


@pytest.mark.ssh
def test_cleanup_dry_run_lists_per_host_and_changes_nothing(
    sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    hosts = ssh_hosts(sshd, tmp_path, ["mixed", "clean"])
    inv = write_inventory(tmp_path, hosts)
    manifest = deploy_twice(capsys, tmp_path, inv)
    foreign = plant_foreign(tmp_path / "mixed", manifest["hosts"][0]["binary_name"])
    (tmp_path / "mixed" / "lock").unlink()  # a dry run must not create the lock either
    before = {n: tree(tmp_path / n) for n in hosts}
    history_before = deployments(rustle_home)

    code, out, err = run_cli(capsys, "--cleanup", "--dry-run", "-i", str(inv), "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["dry_run"] is True
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert {n: tree(tmp_path / n) for n in hosts} == before, "a dry run changes nothing"
    assert deployments(rustle_home) == history_before, "a dry run records nothing"
    mixed, clean = by_name["mixed"], by_name["clean"]
    would_leave = {e["path"]: e["kind"] for e in mixed["would_leave"]}
    for path, kind in foreign.items():
        assert would_leave.get(path) == kind, (path, would_leave)
    for h in (mixed, clean):
        assert any(p.startswith("artifacts/") for p in h["would_remove"])
        assert any(p.startswith("runs/r-") for p in h["would_remove"])
        assert "history.jsonl" in h["would_remove"]
    assert "lock" in clean["would_remove"] and "lock" not in mixed["would_remove"]
    assert clean["would_leave"] == [] and clean["would_remove_remote_dir"] is True
    assert mixed["would_remove_remote_dir"] is False

    code, text, err = run_cli(capsys, "--cleanup", "--dry-run", "-i", str(inv), "--output", "text")
    assert code == 0, err
    assert "DRY RUN" in text
    assert "would remove" in text and "would leave" in text
    for path in foreign:
        assert path in text
    assert {n: tree(tmp_path / n) for n in hosts} == before

    # the real cleanup then removes exactly what the dry run listed
    code, out, err = run_cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    real = {h["name"]: h for h in json.loads(out)["hosts"]}
    for name in hosts:
        assert sorted(real[name]["removed"]) == sorted(by_name[name]["would_remove"])
        assert real[name]["left"] == by_name[name]["would_leave"]


def test_cleanup_dry_run_with_other_modes_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--cleanup", "--dry-run", "--compile-only", "-i", "inv")
    assert code == 2 and "cannot be combined" in err


# -- what rustle-deploy made is all removed ---------------------------------------------------


@pytest.mark.ssh
def test_deploy_then_cleanup_removes_everything_rustle_deploy_made(
    sshd: Any, tmp_path: Path, build_artifact: Any, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    hosts = ssh_hosts(sshd, tmp_path, ["web1", "web2", "web3"])
    inv = write_inventory(tmp_path, hosts)
    manifest = deploy_twice(capsys, tmp_path, inv)
    # an unpacked copy (artifacts without bytecode for the host's Python are run from one)
    web3 = [sshd.host("web3", tmp_path / "web3")]
    outs = asyncio.run(deploy_fleet([job(h, build_artifact(), run=RunOptions("r-00000000000c")) for h in web3],
                                    parallel=1, timeout=60))
    assert outs[0].ok, outs[0].error
    assert (tmp_path / "web3" / "unpacked").is_dir()
    # what a cut upload, a crash mid-swap or a native deployment leave behind
    d = tmp_path / "web2"
    (d / "artifacts" / f".tmp-{SHA_A}-4242").write_bytes(b"half")
    (d / "runners").mkdir(mode=0o700)
    (d / "runners" / SHA_A).write_bytes(b"runner")
    (d / "runners" / f"{SHA_A}.tmp.77").write_bytes(b"half")
    (d / "unpacked").mkdir(mode=0o700)
    (d / "unpacked" / SHA_B).mkdir()
    (d / "unpacked" / SHA_B / "__main__.py").write_text("")
    (d / "unpacked" / f"{SHA_B}.tmp-55").mkdir()
    (d / "releases" / "rustle-runner-other").mkdir()
    (d / "releases" / "rustle-runner-other" / "current.tmp-99").symlink_to(f"../../artifacts/{SHA_A}")

    code, out, err = run_cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    doc = json.loads(out)
    for name in hosts:
        assert not (tmp_path / name).exists(), name
    for h in doc["hosts"]:
        assert h["ok"] and h["left"] == [] and h["notes"] == [] and h["remote_dir_removed"] is True, h
    # the history says what happened, and keeps what came before
    code, out, err = run_cli(capsys, "--list-deployments", "--output", "json")
    listed = json.loads(out)
    assert [d["op"] for d in listed][:3] == ["cleanup", "deploy", "deploy"]
    assert {(h["host"], h["status"], h["remote_dir"]) for h in listed[0]["hosts"]} == {
        (n, "cleanup", str(tmp_path / n)) for n in hosts}
    # the history no longer thinks those hosts hold the artifacts: the next deployment pushes
    # them with the request instead of waiting to be asked
    with History(rustle_home / ".rustle" / "state.db") as history:
        assert history.holders({h["sha256"] for h in manifest["hosts"]}) == set()
    code, out, err = run_cli(capsys, str(tmp_path / "plan" / "plan.json"), "-i", str(inv), "--output", "json")
    assert code == 0, err
    assert all(h["uploaded"] and h["status"] == "activated" for h in json.loads(out)["hosts"])


# -- the local connection ---------------------------------------------------------------------


def _pythons() -> list[str | None]:
    import glob

    found = sorted(glob.glob("/root/.pyenv/versions/3.8.*/bin/python3"))
    return [None, *found[:1]]


@pytest.mark.parametrize("python", _pythons())
def test_cleanup_on_a_local_host_keeps_foreign_entries_and_the_local_history(
    python: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    """The default remote dir of a local host is the controller's own ~/.rustle, beside its
    history and cache: those stay, and so does anything foreign; the agent runs on 3.8 too."""
    host: dict[str, Any] = {"ansible_connection": "local", "rustle_test_root": str(tmp_path / "root")}
    if python:
        host["ansible_python_interpreter"] = python
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": {"localhost": host}}}}}))
    manifest = deploy_twice(capsys, tmp_path, inv)
    d = rustle_home / ".rustle"
    foreign = plant_foreign(d, manifest["hosts"][0]["binary_name"])
    before = foreign_tree(d, foreign)

    code, out, err = run_cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    (h,) = json.loads(out)["hosts"]
    assert h["ok"], h
    assert foreign_tree(d, foreign) == before
    left = {e["path"] for e in h["left"]}
    assert set(foreign) <= left
    assert "state.db" in left and "cache/" in left
    assert not (d / "history.jsonl").exists() and not (d / "releases" / manifest["hosts"][0]["binary_name"] / "current").exists()
    assert not any(p.name != "0" * 64 and len(p.name) == 64 for p in (d / "artifacts").iterdir())
    code, out, err = run_cli(capsys, "--list-deployments", "--output", "json")
    assert [x["op"] for x in json.loads(out)] == ["cleanup", "deploy", "deploy"], "the local history is intact"
    # the history knows the release is gone: a rollback of that deployment says so
    code, out, err = run_cli(capsys, "--rollback", "-i", str(inv), "--output", "json")
    assert code == 1
    (refused,) = json.loads(out)["hosts"]
    assert "cleanup d-" in refused["error"] and "removed what deployment" in refused["error"], refused
