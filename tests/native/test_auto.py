"""--format auto (the default): the native runner where the plan lowers and the host can
execute it, pyz otherwise, with -v saying which and why; a host that cannot execute the runner
falls back to pyz in the same deployment, and the history remembers it (docs/native.md,
"Choosing the format")."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import make_plan
from ..integration.conftest import SSHD, _free_port, _wait_listening
from .test_native_runs import cli, files, seeded, workload_for


@pytest.fixture
def auto(monkeypatch: pytest.MonkeyPatch, native_cache: Path) -> Path:
    """No RUSTLE_FORMAT (the suite pins pyz): the command's own default, auto."""
    monkeypatch.delenv("RUSTLE_FORMAT", raising=False)
    return native_cache


@pytest.fixture
def noexec_sshd(sshd: Any, tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """A second sshd for the same user and keys, started in a private mount namespace where
    ``<tmp>/noexec`` is a tmpfs mounted noexec: a host whose remote dir is there cannot
    execute anything written into it. Yields (port, that directory, its known_hosts)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private mount namespace needs root and unshare (util-linux)")
    port = _free_port()
    mnt = tmp_path / "noexec"
    mnt.mkdir()
    config = tmp_path / "sshd_noexec_config"
    lines = [ln for ln in (sshd.root / "sshd_config").read_text().splitlines()
             if not ln.startswith(("Port ", "PidFile "))]
    config.write_text("\n".join([*lines, f"Port {port}", f"PidFile {tmp_path / 'sshd_noexec.pid'}", ""]))
    known = tmp_path / "known_hosts_noexec"
    known.write_text(f"[127.0.0.1]:{port} {sshd.host_pub}\n")
    log = tmp_path / "sshd_noexec.log"
    script = f'mount -t tmpfs -o noexec,mode=0755 tmpfs "$1" && exec {SSHD} -D -e -f "$2"'
    with open(log, "wb") as logf:
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                                 str(mnt), str(config)], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    try:
        _wait_listening(port, proc, log)
        yield port, mnt, known
    finally:
        proc.terminate()  # sshd itself (sh exec'd it); the namespace and its tmpfs go with it
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def fleet(tmp_path: Path, sshd: Any, noexec: tuple[int, Path, Path], tag: str) -> tuple[Path, Path, dict[str, Path]]:
    """Four workload hosts: bench-0000..2 on the sshd, bench-0003 on the noexec one."""
    port, mnt, known = noexec
    hosts, roots = {}, {}
    for i in range(4):
        name = f"bench-{i:04d}"
        roots[name] = seeded(tmp_path / tag / f"root{i}")
        if i == 3:
            h = sshd.host(name, mnt / f"{tag}-remote", ansible_port=port,
                          ansible_ssh_common_args=f"-o UserKnownHostsFile={known}")
        else:
            h = sshd.host(name, tmp_path / tag / f"remote{i}")
        hosts[name] = {**h.vars, "bench_root": str(roots[name]), "bench_role": "web"}
    inv = tmp_path / tag / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = workload_for(tmp_path / tag, sorted(hosts))
    return plan, inv, roots


def runner_failures() -> list[tuple[str, str]]:
    with closing(sqlite3.connect(Path(os.environ["HOME"]) / ".rustle" / "state.db")) as db:
        return [(str(h), str(r)) for h, r in db.execute("SELECT host, reason FROM runner_failures")]


def tree_of(roots: dict[str, Path]) -> dict[str, Any]:
    """Each host's files, its own name written HOST (the motd names the host)."""
    out = {}
    for name, root in roots.items():
        out[name] = {k: tuple(x.replace(name.encode(), b"HOST") if isinstance(x, bytes) else x for x in v)
                     for k, v in files(root).items()}
    return out


@pytest.mark.ssh
def test_a_host_that_cannot_execute_the_runner_falls_back_to_pyz_once_and_is_remembered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, noexec_sshd: tuple[int, Path, Path],
    auto: Path,
) -> None:
    # the reference: the same fleet, all pyz
    plan, inv, pyz_roots = fleet(tmp_path, sshd, noexec_sshd, "pyz")
    code, ref, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "pyz")
    assert code == 0, err

    plan, inv, roots = fleet(tmp_path, sshd, noexec_sshd, "auto")
    code, cold, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    by_name = {h["name"]: h for h in cold["hosts"]}
    # bench-0003 ran the Python agent (it reports its python), the others the runner
    assert by_name["bench-0003"]["platform"]["python"], by_name["bench-0003"]
    assert all(by_name[n]["platform"]["python"] is None for n in ("bench-0000", "bench-0001", "bench-0002"))
    assert all(h["recap"]["changed"] == 9 and h["ok"] for h in cold["hosts"]), cold
    assert "format: native for bench-0000, bench-0001, bench-0002, bench-0003: the plan lowers" in err
    assert "bench-0003: rustle-runner" in err and "cannot be executed on this host (exit 126; Linux" in err
    assert "deploying the pyz artifact" in err
    assert tree_of(roots) == tree_of(pyz_roots)  # the same files, whichever format ran
    for i in range(3):
        assert (tmp_path / "auto" / f"remote{i}" / "runners").is_dir()
    assert [h for h, _ in runner_failures()] == ["bench-0003"]
    (reason,) = [r for _, r in runner_failures()]
    assert "exit 126" in reason

    # the next deployment does not try the runner there: -v says why, no fallback line
    code, warm, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: pyz for bench-0003: it could not execute rustle-runner in deployment d-" in err
    assert "format: native for bench-0000, bench-0001, bench-0002: the plan lowers" in err
    assert "deploying the pyz artifact" not in err
    assert all(h["recap"]["changed"] == 0 and h["ok"] and not h["uploaded"] for h in warm["hosts"]), warm


@pytest.mark.ssh
def test_native_insists_and_fails_on_a_host_that_cannot_execute_the_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, noexec_sshd: tuple[int, Path, Path],
    auto: Path,
) -> None:
    plan, inv, _ = fleet(tmp_path, sshd, noexec_sshd, "native")
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native",
                         "--limit", "bench-0003")
    assert code == 1
    (host,) = doc["hosts"]
    assert "cannot be executed on this host (exit 126" in host["error"]
    assert "--format auto deploys pyz to this host instead" in host["error"]
    assert runner_failures() == []  # --format native does not decide for auto


def test_auto_says_which_format_and_why_for_plans_that_do_not_lower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], auto: Path
) -> None:
    tasks = [{"name": "remember", "module": "set_fact", "args": {"x": 1}},
             {"name": "show", "module": "debug", "args": {"msg": "{{ x }}"}}]
    plan = make_plan(tmp_path, tasks)
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: pyz for localhost: the plan does not lower to the native runner:" in err
    assert "set_fact" in err
    assert doc["hosts"][0]["platform"]["python"]
    # a plan that lowers runs native, with the same result as pyz
    root = tmp_path / "root"
    root.mkdir()
    plan = make_plan(tmp_path / "other", [{"module": "copy", "args": {"content": "x\n", "dest": f"{root}/x"}}])
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: native for localhost: the plan lowers" in err
    assert doc["hosts"][0]["platform"]["python"] is None and doc["hosts"][0]["recap"]["changed"] == 1
    assert (root / "x").read_text() == "x\n"


def test_auto_uses_pyz_without_cargo_or_a_prebuilt_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUSTLE_FORMAT", raising=False)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "cargo").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    root = tmp_path / "root"
    root.mkdir()
    plan = make_plan(tmp_path, [{"module": "copy", "args": {"content": "x\n", "dest": f"{root}/x"}}])
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: pyz for every host: the native format needs rustle-runner built for this machine, " \
           "and building it needs Rust's cargo, which is not installed" in err
    assert doc["hosts"][0]["platform"]["python"]
    assert not (rustle_home / ".rustle" / "cache" / "native").exists()


def test_the_format_setting_comes_from_the_environment_and_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTLE_FORMAT", "fast")
    plan = make_plan(tmp_path, [{"module": "ping", "args": {}}])
    code, _, err = cli(capsys, str(plan), "--run", "--output", "json")
    assert code == 2
    assert "RUSTLE_FORMAT: expected auto, pyz or native, got 'fast'" in err
    monkeypatch.setenv("RUSTLE_FORMAT", "pyz")
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format:" not in err  # pyz was asked for: nothing to explain
    assert json.dumps(doc)
