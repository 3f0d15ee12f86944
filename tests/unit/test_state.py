"""The SQLite history: deployments, per-host outcomes, runs."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from rustle_deploy.errors import StateError
from rustle_deploy.state import History


def test_records_and_reads_back(tmp_path: Path) -> None:
    db = tmp_path / "state" / "state.db"
    with History(db) as h:
        first = h.begin("deploy", plan_source="a.json", plan_sha256="aa")
        h.record_host(first, "web1", "activated", sha256="s1", previous_sha256=None, binary_name="b")
        h.record_host(first, "web2", "failed", error="unreachable")
        h.finish(first, "done")
        second = h.begin("deploy", plan_source="b.json")
        h.record_host(second, "web1", "activated", sha256="s2", previous_sha256="s1")
        h.record_run(second, "web1", "r1", 0, {"ok": 3, "changed": 1, "failed": 0, "skipped": 0})
        h.finish(second, "done")
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    with History(db) as h:  # survives reopening
        latest = h.get()
        assert latest is not None and latest.id == second
        assert latest.hosts[0].previous_sha256 == "s1"
        old = h.get(first)
        assert old is not None
        assert {r.host: r.status for r in old.hosts} == {"web1": "activated", "web2": "failed"}
        assert [d.id for d in h.list()] == [second, first]
        assert h.get("nope") is None


def test_task_results_keep_ignored_and_an_older_database_keeps_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with closing(sqlite3.connect(db)) as con, con:  # task_results as it was before the column
        con.execute("CREATE TABLE task_results (deployment_id TEXT NOT NULL, host TEXT NOT NULL, run_id TEXT NOT "
                    "NULL, seq INTEGER NOT NULL, handler INTEGER NOT NULL, task TEXT, module TEXT, status TEXT, rc "
                    "INTEGER, msg TEXT, stdout TEXT, stderr TEXT, diff TEXT, duration REAL, censored INTEGER NOT "
                    "NULL, PRIMARY KEY (run_id, host, seq))")
        con.execute("INSERT INTO task_results VALUES ('d0', 'web1', 'r0', 0, 0, 'old', 'ping', 'ok', NULL, NULL, "
                    "NULL, NULL, NULL, 0.1, 0)")
    with History(db) as h:
        did = h.begin("deploy")
        h.record_tasks(did, "web1", "r1", [
            {"event": "task_start", "task": "t"},
            {"event": "task_result", "task": "t", "module": "fail", "status": "failed", "ignored": True, "msg": "no"},
            {"event": "handler_result", "task": "h", "module": "debug", "status": "ok", "ignored": False},
        ])
    with closing(sqlite3.connect(db)) as con:
        rows = con.execute("SELECT run_id, task, status, handler, ignored FROM task_results "
                           "ORDER BY run_id, seq").fetchall()
    assert rows == [("r0", "old", "ok", 0, None), ("r1", "t", "failed", 0, 1), ("r1", "h", "ok", 1, 0)]


def test_unusable_path_is_a_state_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot open the history database"):
        History(blocker / "state.db")


def _web1_together_web2_cut(h: History, did: str) -> None:
    """web1's outcome and runner recorded together; web2's outcome in a together() that an error
    cuts short (undone)."""
    with h.together():
        h.record_host(did, "web1", "activated", sha256="s1")
        h.record_runner("web1", "/r", "r" * 64)
    with pytest.raises(RuntimeError), h.together():
        h.record_host(did, "web2", "activated", sha256="s2")
        raise RuntimeError("cut")


def test_records_made_together_commit_or_roll_back_together(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with History(db) as h:
        did = h.begin("deploy")
        _web1_together_web2_cut(h, did)
    with History(db) as h:
        deployment = h.get(did)
        assert deployment is not None
        assert [r.host for r in deployment.hosts] == ["web1"]
        assert h.runner_holders("r" * 64) == {("web1", "/r")}


def test_grouped_records_commit_together_and_a_failed_one_alone_is_undone(tmp_path: Path) -> None:
    db = tmp_path / "state.db"

    def seen() -> list[tuple[str, str]]:  # what another process reads: the committed rows only
        with closing(sqlite3.connect(db)) as con:
            return con.execute("SELECT host, status FROM host_outcomes ORDER BY host").fetchall()

    with History(db) as h:
        did = h.begin("deploy")
        h.pending(did, [("web1", "b", "s", "/r"), ("web2", "b", "s", "/r"), ("web3", "b", "s", "/r")])
        with h.grouped():
            _web1_together_web2_cut(h, did)
            assert seen() == [("web1", "pending"), ("web2", "pending"), ("web3", "pending")]
            h.commit()
            assert seen() == [("web1", "activated"), ("web2", "pending"), ("web3", "pending")]
            h.record_host(did, "web3", "failed", error="unreachable")
            assert seen()[2] == ("web3", "pending")
        assert seen() == [("web1", "activated"), ("web2", "pending"), ("web3", "failed")]
        assert h.runner_holders("r" * 64) == {("web1", "/r")}


def test_a_cleanup_ends_what_the_history_thinks_a_host_holds(tmp_path: Path) -> None:
    """After a cleanup the host has neither artifacts nor runners: the next deployment must
    push them; the rows that came before stay."""
    with History(tmp_path / "state.db") as h:
        dep = h.begin("deploy")
        for host in ("web1", "web2"):
            h.record_host(dep, host, "activated", sha256="s1", remote_dir="/r")
            h.record_runner(host, "/r", "n1")
        h.record_host(dep, "web3", "activated", sha256="s1", remote_dir="/other")
        clean = h.begin("cleanup")
        h.record_host(clean, "web1", "cleanup", remote_dir="/r")
        h.record_host(clean, "web2", "failed", remote_dir="/r", error="unreachable")
        h.record_host(clean, "web3", "cleanup", remote_dir="/elsewhere")
        assert h.holders({"s1"}) == {("web2", "/r", "s1"), ("web3", "/other", "s1")}
        assert h.runner_holders("n1") == {("web2", "/r")}
        again = h.begin("deploy")
        h.record_host(again, "web1", "activated", sha256="s1", remote_dir="/r")
        h.record_runner("web1", "/r", "n1")
        assert ("web1", "/r", "s1") in h.holders({"s1"})
        assert ("web1", "/r") in h.runner_holders("n1")
        deployed = h.get(dep)
        assert deployed is not None and len(deployed.hosts) == 3


def test_a_deployment_whose_controller_is_gone_is_an_orphan(tmp_path: Path) -> None:
    """Open while its controller runs; an orphan once that process is gone (a reused pid,
    another boot); finishing closes it."""
    import json
    import os
    import socket
    import subprocess

    from rustle_deploy.state import controller_identity, owner_alive

    with History(tmp_path / "state.db") as h:
        mine = h.begin("deploy", context={"inventory": "/inv.yml", "user": None, "private_key": None})
        h.pending(mine, [("web1", "b", "s1", "~/.rustle"), ("web2", "b", "s1", "~/.rustle")])
        h.record_host(mine, "web2", "activated", sha256="s1", binary_name="b")
        h.pending(mine, [("web2", "b", "s1", "~/.rustle")])  # a recorded outcome is never made pending again
        assert h.orphans() == [], "this process owns it"
        dep = h.get(mine)
        assert dep is not None and {r.host: r.status for r in dep.hosts} == {"web1": "pending", "web2": "activated"}

        gone = subprocess.Popen(["true"])
        gone.wait()
        dead = json.loads(controller_identity())
        dead["pid"] = gone.pid
        h._db.execute("UPDATE open_deployments SET owner = ? WHERE deployment_id = ?", (json.dumps(dead), mine))
        (orphan,) = h.orphans()
        assert orphan.deployment.id == mine and [r.host for r in orphan.pending] == ["web1"]
        assert orphan.context["inventory"] == "/inv.yml"
        h.finish(mine, "interrupted")
        assert h.orphans() == []

    me = json.loads(controller_identity())
    assert owner_alive(controller_identity())
    assert not owner_alive(json.dumps({**me, "start": "1"})), "a reused pid is another process"
    assert not owner_alive(json.dumps({**me, "boot": "another-boot"}))
    assert owner_alive(json.dumps({**me, "host": socket.gethostname() + "-other", "pid": 1 << 30})), \
        "another machine's controller: cannot tell, so it counts as running"
    assert not owner_alive("not json")
    assert me["pid"] == os.getpid()
