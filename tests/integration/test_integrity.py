"""Integrity that repairs itself, over a real sshd, for the pyz runtime and the native runner.

- an artifact changed on the host after its upload is replaced by the next deployment (and a
  run of it is refused until then), and the report says so;
- an artifact whose payload no longer matches its manifest refuses to run, also when started
  by hand on the host; the unpacked cache is checked against the artifact it came from;
- a disk that fills during the run (the artifact fits, the journal does not): the error says
  what happened (the new release is current), and the local and remote histories agree.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import exec_main, main

from ..conftest import make_plan

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]


@pytest.fixture(params=["pyz", "native"])
def fmt(request: pytest.FixtureRequest) -> str:
    if request.param == "native":
        request.getfixturevalue("native_cache")
    return str(request.param)


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip().startswith(("{", "[")) else {}), err


def inventory(tmp_path: Path, sshd: Any, remote: Path, **extra: Any) -> Path:
    h = sshd.host("node", remote, **extra)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"node": dict(h.vars)}}}))
    return inv


def plan_for(tmp_path: Path, marks: Path, word: str = "one") -> Path:
    return make_plan(tmp_path / word, [
        {"module": "shell", "args": {"_raw_params": f"echo {word} >> {marks}/ran"}, "name": "mark"},
    ], hosts=("node",))


def flip(path: Path, where: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if where is None else where] ^= 0x01
    os.chmod(path, 0o700)
    path.write_bytes(bytes(data))


def ssh(sshd: Any, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-T", "-p", str(sshd.port), "-i", str(sshd.client_key), "-o", "BatchMode=yes",
         "-o", f"UserKnownHostsFile={sshd.known_hosts}", f"{sshd.user}@127.0.0.1", command],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )


# -- a copy changed on the host -------------------------------------------------------------


def test_a_copy_changed_on_the_host_is_replaced_by_the_next_deployment(
        tmp_path: Path, sshd: Any, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    remote = tmp_path / "remote"
    inv = inventory(tmp_path, sshd, remote)
    plan = plan_for(tmp_path, marks)
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
    assert code == 0, err
    (host,) = doc["hosts"]
    art = remote / "artifacts" / host["sha256"]
    flip(art)
    damaged_sha = hashlib.sha256(art.read_bytes()).hexdigest()

    # the next deployment notices and replaces it (before, only --verify noticed; nothing repaired it)
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--output", "json", "--format", fmt)
    assert code == 0, err
    (host,) = doc["hosts"]
    assert host["uploaded"], "a copy that changed on the host is uploaded again"
    assert host["repaired"] and "changed since its upload" in host["repaired"], host
    assert damaged_sha[:12] in host["repaired"]
    assert hashlib.sha256(art.read_bytes()).hexdigest() == host["sha256"]
    remote_lines = [json.loads(x) for x in (remote / "history.jsonl").read_text().splitlines()]
    assert remote_lines[-1]["damaged"]["sha256"] == damaged_sha
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--output", "json", "--verify", "--run",
                         "--format", fmt)
    assert code == 0, err
    assert not doc["hosts"][0]["uploaded"] and not doc["hosts"][0]["repaired"]

    # a run of a changed copy (rustle-exec) is refused, and names the problem
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(doc))
    flip(art)
    code = exec_main([str(manifest), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 1
    (run,) = json.loads(out)["hosts"]
    assert "changed on the host since its upload" in run["error"], run
    assert (marks / "ran").read_text().count("one") == 2, "the changed copy did not run"
    # ... and the next deployment repairs it
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--output", "json", "--run", "--format", fmt)
    assert code == 0, err
    assert doc["hosts"][0]["uploaded"] and doc["hosts"][0]["repaired"]
    assert (marks / "ran").read_text().count("one") == 3


# -- a payload that does not match its manifest ---------------------------------------------


def rewrite_entry(path: Path, name: str, change: Any) -> None:
    """Rewrite the zip payload of the pyz at ``path`` with entry ``name`` changed (a valid zip)."""
    data = path.read_bytes()
    start = data.index(b"PK\x03\x04")
    head, old = data[:start], zipfile.ZipFile(io.BytesIO(data[start:]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as new:
        for info in old.infolist():
            body = old.read(info)
            new.writestr(info, change(body) if info.filename == name else body)
    path.write_bytes(head + buf.getvalue())


def test_a_pyz_with_an_edited_entry_refuses_to_run(tmp_path: Path, sshd: Any,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    inv = inventory(tmp_path, sshd, tmp_path / "remote")
    out_dir = tmp_path / "out"
    code, doc, err = cli(capsys, str(plan_for(tmp_path, marks)), "-i", str(inv), "--compile-only", "-o",
                         str(out_dir), "--output", "json")
    assert code == 0, err
    (art,) = doc["artifacts"]
    path = Path(art["file"])
    good = ssh(sshd, f"python3 {path} run --host node")
    assert good.returncode == 0, good.stderr
    assert (marks / "ran").read_text() == "one\n"

    edited = tmp_path / "edited.pyz"
    shutil.copy(path, edited)
    rewrite_entry(edited, "plan.json", lambda b: b.replace(b"echo one", b"echo EDITED"))
    bad = ssh(sshd, f"python3 {edited} run --host node")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "does not match its manifest: plan.json: sha256" in bad.stderr, bad.stderr
    assert "refusing to run it" in bad.stderr
    assert (marks / "ran").read_text() == "one\n", "the edited plan did not run"
    # an edited runtime module is refused the same way
    shutil.copy(path, edited)
    rewrite_entry(edited, "rustle_runtime/executor.py", lambda b: b + b"\nimport os\nos.system('touch /tmp/x')\n")
    bad = ssh(sshd, f"python3 {edited} run --host node")
    assert bad.returncode == 3 and "rustle_runtime/executor.py: sha256" in bad.stderr, bad.stderr


def test_a_native_artifact_with_an_edited_program_refuses_to_run(
        tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("native_cache")
    binary = request.getfixturevalue("runner").path
    marks = tmp_path / "marks"
    marks.mkdir()
    inv = inventory(tmp_path, sshd, tmp_path / "remote")
    out_dir = tmp_path / "out"
    code, doc, err = cli(capsys, str(plan_for(tmp_path, marks)), "-i", str(inv), "--compile-only", "-o",
                         str(out_dir), "--output", "json", "--format", "native")
    assert code == 0, err
    (art,) = doc["artifacts"]
    path = Path(art["file"])
    good = ssh(sshd, f"{binary} run {path} --host node")
    assert good.returncode == 0, good.stderr
    assert (marks / "ran").read_text() == "one\n"
    edited = tmp_path / "edited.native"
    edited.write_bytes(path.read_bytes().replace(b"echo one", b"echo two"))  # still valid JSON
    bad = ssh(sshd, f"{binary} run {edited} --host node")
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert "does not match its digest" in bad.stderr and "refusing to run it" in bad.stderr, bad.stderr
    assert (marks / "ran").read_text() == "one\n"
    verify = ssh(sshd, f"{binary} verify {edited}")
    assert verify.returncode == 3 and "does not match its digest" in verify.stderr


def _python(version: str) -> Path | None:
    found = sorted(Path("/root/.pyenv/versions").glob(f"{version}.*/bin/python3"))
    return found[-1] if found else None


def test_the_unpacked_cache_is_checked_against_its_artifact(tmp_path: Path, sshd: Any,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A host whose Python is not the controller's runs the artifact from unpacked/<sha>/; a
    change there is noticed and the cache made again from the artifact."""
    python = _python("3.12")
    if python is None:
        pytest.skip("no CPython 3.12 under /root/.pyenv/versions: the artifact would run from its zip")
    marks = tmp_path / "marks"
    marks.mkdir()
    remote = tmp_path / "remote"
    inv = inventory(tmp_path, sshd, remote, ansible_python_interpreter=str(python))
    plan = plan_for(tmp_path, marks)
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    sha = doc["hosts"][0]["sha256"]
    unpacked = remote / "unpacked" / sha
    assert (unpacked / "rustle_runtime" / "cli.py").is_file()
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0 and not doc["hosts"][0]["repaired"], (err, doc)  # its own bytecode is no change

    evil = marks / "edited-code-ran"
    with open(unpacked / "rustle_runtime" / "cli.py", "a") as f:
        f.write(f"\nopen({str(evil)!r}, 'w').close()\n")
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert not evil.exists(), "the edited cache ran"
    (host,) = doc["hosts"]
    assert host["repaired"] and "unpacked the artifact again" in host["repaired"], host
    assert "rustle_runtime/cli.py" in host["repaired"]
    with zipfile.ZipFile(remote / "artifacts" / sha) as zf:
        assert (unpacked / "rustle_runtime" / "cli.py").read_bytes() == zf.read("rustle_runtime/cli.py")
    assert (marks / "ran").read_text().count("one") == 3


# -- a disk that fills during the run -------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of its own (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_during_the_run_is_reported_as_it_happened(
        tmp_path: Path, sshd: Any, fmt: str, small_disk: Path, capsys: pytest.CaptureFixture[str],
        rustle_home: Path) -> None:
    """The new artifact fits, the run's journal does not: the error says the new release is
    current (not "unchanged"), and the local history, the JSON report and the host agree."""
    marks = tmp_path / "marks"
    marks.mkdir()
    remote = small_disk / "remote"
    inv = inventory(tmp_path, sshd, remote)
    code, first, err = cli(capsys, str(plan_for(tmp_path, marks)), "-i", str(inv), "--run", "--output", "json",
                           "--format", fmt)
    assert code == 0, err
    out_dir = tmp_path / "out"
    code, doc, err = cli(capsys, str(plan_for(tmp_path, marks, "two")), "-i", str(inv), "--compile-only", "-o",
                         str(out_dir), "--output", "json", "--format", fmt)
    assert code == 0, err
    (art,) = doc["artifacts"]
    pages = -(-art["size"] // 4096) * 4096
    used = shutil.disk_usage(small_disk).used
    remount = subprocess.run(["mount", "-o", f"remount,size={(used + pages) // 1024}k", str(small_disk)],
                             capture_output=True, text=True)
    assert remount.returncode == 0, remount.stderr
    assert shutil.disk_usage(small_disk).free == pages, shutil.disk_usage(small_disk)

    code, doc, err = cli(capsys, "--deploy-only", "-o", str(out_dir), "-i", str(inv), "--run", "--output", "json")
    assert code == 1, err
    (host,) = doc["hosts"]
    assert "no space left" in host["error"], host
    assert "current release is unchanged" not in host["error"] + err, host["error"]
    assert f"release {art['sha256'][:12]} had been activated and is current" in host["error"], host["error"]
    assert host["status"] == "activated", host
    # the host: the new release is current and its history says it was activated
    (current,) = (remote / "releases").glob("*/current")
    assert os.readlink(current).endswith(art["sha256"])
    lines = [json.loads(x) for x in (remote / "history.jsonl").read_text().splitlines()]
    assert lines[-1]["sha256"] == art["sha256"] and lines[-1]["changed"], lines[-1]
    assert lines[-1]["deployment_id"] == doc["deployment_id"]
    # the local history agrees
    db = sqlite3.connect(rustle_home / ".rustle" / "state.db")
    ((status, sha, previous),) = db.execute(
        "SELECT status, sha256, previous_sha256 FROM host_outcomes WHERE deployment_id = ?", (doc["deployment_id"],))
    assert (status, sha, previous) == ("activated", art["sha256"], first["hosts"][0]["sha256"])
    assert not (marks / "ran").read_text().count("two"), "the run did not happen"
