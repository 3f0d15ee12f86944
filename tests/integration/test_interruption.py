"""Nothing keeps running after the controller is gone: Ctrl-C, a cut connection, kill -9.

Each test starts ``rustle-deploy --run`` as a subprocess against the real sshd with a task that
runs ``sleep 300`` and starts a ``setsid`` child (a session of its own), waits until both run,
ends the run early, and checks that both are gone within the agent's grace period, that the
host's lock was released only after that, that the host's history and run journal say the run
was interrupted, and that the local history agrees (after a ``kill -9``: once a later command
reconciled it). Every test runs for the pyz runtime and for the native runner.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import make_plan
from .conftest import wait_unlocked

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]

GRACE = 5.0  # the agent's grace period between SIGTERM and SIGKILL (deploy/agent.py STOP_GRACE)
SLACK = 6.0  # scheduling on a loaded 2-core machine


@pytest.fixture(params=["pyz", "native"])
def fmt(request: pytest.FixtureRequest) -> str:
    if request.param == "native":
        request.getfixturevalue("native_cache")
    return str(request.param)


def _starttime(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat): tells it from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None  # a zombie has ended; only its exit status is left
    return fields[19]


def alive(procs: dict[int, str]) -> list[int]:
    return [pid for pid, start in procs.items() if _starttime(pid) == start]


def wait_gone(procs: dict[int, str], timeout: float) -> float:
    """Seconds until every process in ``procs`` has ended; fails after ``timeout``."""
    t0 = time.monotonic()
    while alive(procs):
        if time.monotonic() - t0 > timeout:
            left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in alive(procs)}
            for pid in left:  # do not leave them behind for the next test
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"still running {timeout:.0f}s later: {left}")
        time.sleep(0.05)
    return time.monotonic() - t0


def setup(tmp_path: Path, sshd: Any, fmt: str, trap_term: bool = False) -> dict[str, Any]:
    """A one-host inventory on the sshd and a plan whose first task never ends by itself."""
    marks = tmp_path / "marks"
    marks.mkdir()
    trap = "trap '' TERM; " if trap_term else ""  # a command that ignores SIGTERM: SIGKILL ends it
    script = (
        f"setsid sh -c '{trap}echo $$ > {marks}/child.pid; exec sleep 300' </dev/null >/dev/null 2>&1 & "
        f"{trap}echo $$ > {marks}/task.pid; sleep 300; echo finished > {marks}/finished"
    )
    plan = make_plan(tmp_path, [
        {"module": "shell", "args": {"_raw_params": script}, "name": "long task"},
        {"module": "shell", "args": {"_raw_params": f"touch {marks}/next-task-ran"}, "name": "after"},
    ], hosts=("node",))
    remote = tmp_path / "remote"
    h = sshd.host("node", remote)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"node": dict(h.vars)}}}))
    return {"plan": plan, "inv": inv, "remote": remote, "marks": marks, "fmt": fmt}


def start(s: dict[str, Any], home: Path) -> tuple[subprocess.Popen[bytes], dict[int, str]]:
    """Start the deployment; return it and the task's processes once both run."""
    bindir = Path(sys.executable).parent
    proc = subprocess.Popen(
        [str(bindir / "rustle-deploy"), str(s["plan"]), "-i", str(s["inv"]), "--run", "--output", "json",
         "--format", s["fmt"]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HOME": str(home)},
    )
    deadline = time.monotonic() + 120
    pids: dict[int, str] = {}
    while len(pids) < 2:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"the task did not start: {proc.returncode} {err.decode()} {out.decode()}")
        time.sleep(0.05)
        for name in ("task.pid", "child.pid"):
            f = s["marks"] / name
            if f.exists() and f.read_text().strip():
                pid = int(f.read_text())
                start_time = _starttime(pid)
                if start_time is not None:
                    pids[pid] = start_time
    time.sleep(0.3)  # both are in their `sleep 300` now
    sessions = set(pids)
    for entry in os.listdir("/proc"):  # the task's `sleep 300` too: everything in their sessions
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            start_time = _starttime(int(entry))
            if int(fields[3]) in sessions and start_time is not None:
                pids[int(entry)] = start_time
    assert len(pids) >= 3, pids
    return proc, pids


def lock_held(remote: Path) -> bool:
    """Whether some process holds the host's lock (taken and given back at once if not)."""
    import fcntl

    with open(remote / "lock", "rb") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return False


def remote_history(remote: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (remote / "history.jsonl").read_text().splitlines()]


def check_host_side(s: dict[str, Any], deployment_id: str | None = None) -> dict[str, Any]:
    """The host's history and run journal say the run was interrupted; returns that history line."""
    lines = remote_history(s["remote"])
    stops = [h for h in lines if h.get("op") == "interrupted"]
    assert len(stops) == 1, lines
    stop = stops[0]
    assert stop["killed"] >= 2, stop  # the task's shell/sleep and the setsid child
    if deployment_id is not None:
        assert stop["deployment_id"] == deployment_id
    (journal,) = (s["remote"] / "runs").glob("*.jsonl")
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    assert events[-1]["event"] == "run_interrupted", events[-1]
    assert not (s["marks"] / "finished").exists()
    assert not (s["marks"] / "next-task-ran").exists(), "the run went on after it was interrupted"
    return stop


def ancestor_sshd(pid: int) -> int:
    """The sshd process serving the connection that ``pid`` descends from."""
    while pid > 1:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if Path(f"/proc/{ppid}/comm").read_text().strip().startswith("sshd"):
            return ppid
        pid = ppid
    raise AssertionError("no sshd above the task")


def test_ctrl_c_ends_every_process_the_run_started(tmp_path: Path, sshd: Any, rustle_home: Path, fmt: str) -> None:
    s = setup(tmp_path, sshd, fmt)
    proc, pids = start(s, rustle_home)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    took = wait_gone(pids, GRACE + SLACK)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()
    assert took < GRACE + SLACK
    assert time.monotonic() - t0 < 60
    db = sqlite3.connect(rustle_home / ".rustle" / "state.db")
    ((did, status),) = db.execute("SELECT id, status FROM deployments").fetchall()
    assert status == "interrupted"
    ((host_status, error),) = db.execute("SELECT status, error FROM host_outcomes").fetchall()
    assert host_status == "activated", error  # activated, then the run was cut
    assert "run was interrupted" in error, error
    check_host_side(s, did)


def test_a_cut_connection_ends_every_process_the_run_started(
        tmp_path: Path, sshd: Any, rustle_home: Path, fmt: str) -> None:
    s = setup(tmp_path, sshd, fmt)
    proc, pids = start(s, rustle_home)
    os.kill(ancestor_sshd(next(iter(pids))), signal.SIGKILL)
    wait_gone(pids, GRACE + SLACK)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err.decode()
    (host,) = json.loads(out)["hosts"]
    assert host["status"] == "activated"
    assert "run was interrupted" in host["error"], host["error"]
    check_host_side(s, json.loads(out)["deployment_id"])


def test_sigterm_is_followed_by_sigkill_after_the_grace_period(
        tmp_path: Path, sshd: Any, rustle_home: Path, fmt: str) -> None:
    s = setup(tmp_path, sshd, fmt, trap_term=True)
    proc, pids = start(s, rustle_home)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    while time.monotonic() - t0 < GRACE + SLACK and alive(pids):
        # the host's lock is released only once every process of the run has ended
        if not lock_held(s["remote"]):
            assert not alive(pids), "the lock was free while the run's processes still ran"
        time.sleep(0.05)
    wait_gone(pids, 1.0)
    took = time.monotonic() - t0
    assert took >= GRACE - 1.0, "they ignore SIGTERM: only SIGKILL after the grace period ends them"
    proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert time.monotonic() - t0 < 60
    check_host_side(s)


def test_kill_9_of_the_controller_then_list_deployments_reconciles(
        tmp_path: Path, sshd: Any, rustle_home: Path, fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    s = setup(tmp_path, sshd, fmt)
    proc, pids = start(s, rustle_home)
    proc.kill()
    proc.communicate(timeout=30)
    wait_gone(pids, GRACE + SLACK)
    wait_unlocked(s["remote"], 60)
    db_path = rustle_home / ".rustle" / "state.db"
    db = sqlite3.connect(db_path)
    ((did, status),) = db.execute("SELECT id, status FROM deployments").fetchall()
    assert status == "running"  # nobody could write anything else

    code = main(["--list-deployments", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    (dep,) = json.loads(out)
    assert dep["id"] == did and dep["status"] == "interrupted", dep
    (host,) = dep["hosts"]
    assert host["host"] == "node" and host["status"] == "activated", host
    assert "run was interrupted" in host["error"], host
    check_host_side(s, did)

    # nothing was current before it: a rollback says so (not "reached no host")
    code = main(["--rollback", did, "-i", str(s["inv"]), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 1 and "nothing was current there before deployment" in out + err, out + err


def test_kill_9_then_the_next_deployment_reconciles_and_rollback_works(
        tmp_path: Path, sshd: Any, rustle_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A first release, then a deployment killed with -9 mid-run: the next command on the host
    reconciles it, and rolling it back restores the first release."""
    s = setup(tmp_path, sshd, "pyz")
    first = make_plan(tmp_path / "first", [{"module": "ping", "args": {}}], hosts=("node",))
    code = main([str(first), "-i", str(s["inv"]), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    first_current = os.readlink(next((s["remote"] / "releases").glob("*/current")))
    proc, pids = start(s, rustle_home)
    proc.kill()
    proc.communicate(timeout=30)
    wait_gone(pids, GRACE + SLACK)
    db = sqlite3.connect(rustle_home / ".rustle" / "state.db")
    (killed,) = [r[0] for r in db.execute("SELECT id FROM deployments WHERE status = 'running'")]
    code = main(["--rollback", killed, "-i", str(s["inv"]), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert os.readlink(next((s["remote"] / "releases").glob("*/current"))) == first_current
    statuses = dict(db.execute("SELECT id, status FROM deployments").fetchall())
    assert statuses[killed] == "interrupted"
    assert "running" not in statuses.values()
