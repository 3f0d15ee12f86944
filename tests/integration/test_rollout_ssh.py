"""Rollouts over a real sshd fleet: serial batches, Rolling plans, failure thresholds.

Every host writes ``<play>.start`` and ``<play>.end`` timestamps; batch k+1 must start after
every host of batch k ended. Hosts a stopped rollout never reached must hold nothing from it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from .. import planmaker as pm

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]


class Fleet:
    """``n`` inventory hosts on the test sshd, each with its own remote dir and test root."""

    def __init__(self, sshd: Any, tmp_path: Path, n: int, fail: dict[str, str] | None = None) -> None:
        self.tmp = tmp_path
        self.names = [f"n{i:02d}" for i in range(n)]
        hosts = {}
        for i, name in enumerate(self.names):
            h = sshd.host(name, tmp_path / f"remote{i:02d}", rustle_test_root=str(tmp_path / f"root{i:02d}"),
                          rustle_fail=(fail or {}).get(name, ""))
            hosts[name] = dict(h.vars)
        self.inventory = tmp_path / "inv.yml"
        self.inventory.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}},
                                                 sort_keys=False))

    def root(self, name: str) -> Path:
        return self.tmp / f"root{self.names.index(name):02d}"

    def remote(self, name: str) -> Path:
        return self.tmp / f"remote{self.names.index(name):02d}"

    def stamps(self, name: str, play_id: str = "play-0") -> tuple[float, float] | None:
        root = self.root(name)
        try:
            return float((root / f"{play_id}.start").read_text()), float((root / f"{play_id}.end").read_text())
        except FileNotFoundError:
            return None

    def write_plan(self, doc: dict[str, Any]) -> Path:
        path = self.tmp / "plan.json"
        path.write_text(json.dumps(doc))
        return path

    def run(self, capsys: pytest.CaptureFixture[str], plan: Path, *args: str) -> tuple[int, dict[str, Any], str]:
        code = main([str(plan), "-i", str(self.inventory), "--run", "--output", "json", *args])
        out, err = capsys.readouterr()
        return code, json.loads(out), err


def batches_of(sizes: list[int], names: list[str]) -> list[list[str]]:
    out, i = [], 0
    for size in sizes:
        out.append(names[i:i + size])
        i += size
    assert i == len(names)
    return out


def assert_sequential(fleet: Fleet, batches: list[list[str]], play_id: str = "play-0") -> None:
    """Every host of every batch ran, and no batch started before the previous one ended."""
    previous_end = 0.0
    for k, batch in enumerate(batches):
        stamps = {n: fleet.stamps(n, play_id) for n in batch}
        assert all(stamps.values()), f"batch {k + 1}: hosts that did not run: {[n for n, s in stamps.items() if not s]}"
        starts = [s[0] for s in stamps.values() if s]
        ends = [s[1] for s in stamps.values() if s]
        assert min(starts) >= previous_end, f"batch {k + 1} started before batch {k} ended"
        previous_end = max(ends)


@pytest.mark.parametrize(
    ("serial", "sizes"),
    [
        (1, [1] * 20),
        (5, [5, 5, 5, 5]),
        ("20%", [4, 4, 4, 4, 4]),
        ([1, 5, "50%"], [1, 5, 10, 4]),
    ],
    ids=["one", "five", "20pct", "list"],
)
def test_serial_batches_run_one_after_another(serial: Any, sizes: list[int], sshd: Any, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 20)
    plan = fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.1),
                                             serial=serial)], fleet.names))
    code, doc, err = fleet.run(capsys, plan)
    assert code == 0, err
    expected = batches_of(sizes, fleet.names)
    assert_sequential(fleet, expected)
    assert [b["hosts"] for b in doc["rollout"]["batches"]] == expected
    assert doc["rollout"]["state"] == "completed"
    assert sorted(doc["rollout"]["updated"]) == fleet.names
    for h in doc["hosts"]:
        assert h["ok"] and h["recap"]["ok"] == 2 and h["recap"]["skipped"] == 1, h


def test_rustle_plan_rolling_plan_runs_on_every_host_in_batches(sshd: Any, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The shape rustle-plan emits: each rolling-batch-<i> repeats the tasks with the same ids."""
    fleet = Fleet(sshd, tmp_path, 10)
    rolling = pm.rolling_play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.1), 3)
    plan = fleet.write_plan(pm.plan([rolling], fleet.names, strategy={"Rolling": {"batch_size": 3}}))
    code, doc, err = fleet.run(capsys, plan)
    assert code == 0, err
    assert_sequential(fleet, batches_of([3, 3, 3, 1], fleet.names))
    for h in doc["hosts"]:
        assert h["recap"]["ok"] == 2 and h["recap"]["changed"] == 2, h


def test_failure_beyond_max_fail_percentage_stops_before_the_next_batch(sshd: Any, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 20, fail={"n06": "play-0"})  # in batch 2 of 5-host batches
    plan = fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.1),
                                             serial=5, max_fail_percentage=0)], fleet.names))
    code, doc, err = fleet.run(capsys, plan)
    assert code == 1, err
    first, second, third, fourth = batches_of([5, 5, 5, 5], fleet.names)
    assert_sequential(fleet, [first, second])
    rollout = doc["rollout"]
    assert rollout["state"] == "stopped"
    assert rollout["stopped_after_batch"] == 2
    assert rollout["failed"] == ["n06"]
    assert sorted(rollout["updated"]) == sorted(first + [n for n in second if n != "n06"])
    assert sorted(rollout["not_reached"]) == sorted(third + fourth)
    for name in third + fourth:
        assert fleet.stamps(name) is None
        assert not fleet.remote(name).exists(), f"{name} was touched: {list(fleet.remote(name).rglob('*'))}"
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["n15"]["rollout"] == "not_reached" and not by_name["n15"]["ok"]
    assert by_name["n06"]["rollout"] == "failed" and by_name["n06"]["batch"] == 2
    assert "not reached" in err and "n15" in err
    # the history says so too
    db = sqlite3.connect(Path.home() / ".rustle" / "state.db")
    (status,) = db.execute("SELECT status FROM deployments").fetchone()
    assert status == "stopped"
    code = main(["--list-deployments", "--output", "text"])
    out, _ = capsys.readouterr()
    assert "stopped after batch 2/4" in out


def test_failure_within_max_fail_percentage_continues(sshd: Any, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 20, fail={"n06": "play-0"})  # 1 of 5 = 20%, not above 20
    plan = fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.05),
                                             serial=5, max_fail_percentage=20)], fleet.names))
    code, doc, err = fleet.run(capsys, plan)
    assert code == 1, err  # a host failed
    assert doc["rollout"]["state"] == "completed"
    assert doc["rollout"]["failed"] == ["n06"] and not doc["rollout"]["not_reached"]
    assert all(fleet.stamps(n) for n in fleet.names)


def test_any_errors_fatal_stops_the_rollout(sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 20, fail={"n11": "play-0"})  # batch 3 of 5-host batches
    plan = fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.05),
                                             serial=5, any_errors_fatal=True)], fleet.names))
    code, doc, err = fleet.run(capsys, plan)
    assert code == 1, err
    # a stage per phase and batch (docs/rollouts.md): any_errors_fatal ends a phase after each
    # task that may fail (Ansible's lock-step), so batch 3 ends at stage 3 of 4 times those
    per_batch = doc["rollout"]["total_batches"] // 4
    assert doc["rollout"]["state"] == "stopped" and doc["rollout"]["stopped_after_batch"] == 3 * per_batch
    assert sorted(doc["rollout"]["not_reached"]) == fleet.names[15:]
    assert all(not fleet.remote(n).exists() for n in fleet.names[15:])


def test_a_batch_that_fails_entirely_stops_the_rollout(sshd: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """Ansible's default without max_fail_percentage: a batch in which every host failed ends the play."""
    fleet = Fleet(sshd, tmp_path, 6, fail={"n02": "play-0", "n03": "play-0"})
    plan = fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.05),
                                             serial=2)], fleet.names))
    code, doc, err = fleet.run(capsys, plan)
    assert code == 1, err
    assert doc["rollout"]["stopped_after_batch"] == 2
    assert sorted(doc["rollout"]["not_reached"]) == ["n04", "n05"]


def test_plays_with_serial_run_play_by_play(sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A later play starts only once the earlier one finished on every host; each play batches
    on its own; registered results carry from one play to the next on each host."""
    fleet = Fleet(sshd, tmp_path, 6)
    carry = lambda hosts: [  # noqa: E731
        pm.task("task_0", "remember", "set_fact", {"remembered": "{{ inventory_hostname }}-x"}, hosts, 0),
    ]
    check = lambda hosts: [  # noqa: E731
        pm.task("task_0", "recall", "shell",
                {"_raw_params": "echo {{ remembered }} > {{ rustle_test_root }}/recalled"}, hosts, 0),
    ]
    plays = [
        pm.play("play-0", "first", fleet.names, pm.stamp_tasks("play-0", 0.05), serial=4),
        pm.play("play-1", "carry", fleet.names, carry),
        pm.play("play-2", "second", fleet.names, pm.stamp_tasks("play-2", 0.05), serial=[1, 2]),
        pm.play("play-3", "check", fleet.names, check),
    ]
    code, doc, err = fleet.run(capsys, fleet.write_plan(pm.plan(plays, fleet.names)))
    assert code == 0, err
    assert_sequential(fleet, batches_of([4, 2], fleet.names), "play-0")
    assert_sequential(fleet, batches_of([1, 2, 2, 1], fleet.names), "play-2")
    first_end = max(fleet.stamps(n, "play-0")[1] for n in fleet.names)  # type: ignore[index]
    second_start = min(fleet.stamps(n, "play-2")[0] for n in fleet.names)  # type: ignore[index]
    assert second_start >= first_end
    for n in fleet.names:
        assert (fleet.root(n) / "recalled").read_text() == f"{n}-x\n"
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["n00"]["recap"]["ok"] == 6  # two stamp plays, set_fact, shell; summed over runs
    assert by_name["n00"]["uploaded"] is True
    carry, = (fleet.remote("n00") / "runs").glob(f"{doc['deployment_id']}-h-*.vars.json")
    assert json.loads(carry.read_text())["vars"]["remembered"] == "n00-x"  # docs/phases.md
    assert oct(carry.stat().st_mode & 0o777) == "0o600"
    # --cleanup knows the carry files: every remote dir goes, nothing is left as foreign
    assert main(["--cleanup", "-i", str(fleet.inventory), "--output", "json"]) == 0, capsys.readouterr()[1]
    capsys.readouterr()
    assert not any(fleet.remote(n).exists() for n in fleet.names)


def test_compile_only_then_deploy_only_runs_in_batches(sshd: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 6)
    plan = fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.05),
                                             serial=[2, 4])], fleet.names))
    out_dir = tmp_path / "out"
    assert main([str(plan), "-i", str(fleet.inventory), "--compile-only", "-o", str(out_dir), "--output", "json"]) == 0
    capsys.readouterr()
    code = main(["--deploy-only", "-o", str(out_dir), "-i", str(fleet.inventory), "--run", "--output", "json",
                 "-l", "fleet:!n05"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    expected = [["n00", "n01"], ["n02", "n03", "n04"]]  # serial over the limited hosts
    assert [b["hosts"] for b in doc["rollout"]["batches"]] == expected
    assert_sequential(fleet, expected)


def test_rustle_exec_runs_a_deployed_rollout_in_batches(sshd: Any, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """rustle-deploy PLAN | rustle-exec: the deploy activates everywhere at once (nothing runs),
    the manifest carries the batches, rustle-exec runs them one after another and stops as
    the plan says."""
    from rustle_deploy.cli import exec_main

    fleet = Fleet(sshd, tmp_path, 6, fail={"n02": "play-0"})
    plan = fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, pm.stamp_tasks("play-0", 0.05),
                                             serial=2, max_fail_percentage=0)], fleet.names))
    code = main([str(plan), "-i", str(fleet.inventory), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    manifest = json.loads(out)
    assert [b for st in manifest["schedule"]["stages"] for b in st["batches"]] == [
        ["n00", "n01"], ["n02", "n03"], ["n04", "n05"]]
    assert all(fleet.stamps(n) is None for n in fleet.names)  # nothing ran yet
    path = tmp_path / "manifest.json"
    path.write_text(out)
    code = exec_main([str(path), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 1, err
    doc = json.loads(out)
    assert doc["rollout"]["stopped_after_batch"] == 2 and doc["rollout"]["not_reached"] == ["n04", "n05"]
    assert_sequential(fleet, [["n00", "n01"], ["n02", "n03"]])
    assert fleet.stamps("n04") is None and fleet.stamps("n05") is None


# -- canaries and health gates ------------------------------------------------------------


def versioned(fleet: Fleet, version: str, **play_keys: Any) -> Path:
    """A plan writing ``version`` to <root>/version (after the stamps), as a new release."""

    def tasks(hosts: list[str]) -> list[dict[str, Any]]:
        return pm.stamp_tasks("play-0", 0.05)(hosts) + [
            pm.task("task_3", "write the version", "copy",
                    {"content": f"{version}\n", "dest": "{{ rustle_test_root }}/version"}, hosts, 3),
        ]

    return fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, tasks, **play_keys)], fleet.names))


def current(fleet: Fleet, name: str) -> str | None:
    links = list((fleet.remote(name) / "releases").glob("*/current"))
    return os.readlink(links[0]).rsplit("/", 1)[-1] if links else None


def test_failed_health_check_rolls_the_canaries_back_and_touches_no_other_host(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 8)
    code, doc, err = fleet.run(capsys, versioned(fleet, "v1"))
    assert code == 0, err
    v1 = {h["name"]: h["sha256"] for h in doc["hosts"]}
    before = {n: fleet.stamps(n) for n in fleet.names}
    code, doc, err = fleet.run(capsys, versioned(fleet, "v2"), "--canary", "2", "--health-check",
                               "test -e {{ rustle_test_root }}/healthy", "--health-retries", "1",
                               "--health-interval", "0.1")
    assert code == 1, err
    rollout = doc["rollout"]
    assert rollout["state"] == "stopped" and rollout["stopped_after_batch"] == 1
    assert rollout["batches"][0]["canary"] and rollout["batches"][0]["unhealthy"] == ["n00", "n01"]
    assert rollout["rolled_back"] == ["n00", "n01"]
    assert sorted(rollout["not_reached"]) == fleet.names[2:]
    assert rollout["health"]["n00"] == {"healthy": False, "attempts": 2, "rc": 1, "output": ""}
    assert "health check attempt 2: unhealthy (exit 1)" in err
    for n in fleet.names[:2]:  # back on v1, and v1 applied again
        assert current(fleet, n) == v1[n]
        assert (fleet.root(n) / "version").read_text() == "v1\n"
    for n in fleet.names[2:]:  # untouched: still v1, the new artifact never sent
        assert current(fleet, n) == v1[n]
        assert fleet.stamps(n) == before[n]
        assert os.listdir(fleet.remote(n) / "artifacts") == [v1[n]]
    with closing(sqlite3.connect(Path.home() / ".rustle" / "state.db")) as db:
        latest = db.execute("SELECT id FROM deployments ORDER BY created_at DESC LIMIT 1").fetchone()[0]
        states = dict(db.execute("SELECT host, status FROM host_outcomes WHERE deployment_id = ?", (latest,)))
        hosts = dict(db.execute("SELECT host, state FROM rollout_hosts WHERE deployment_id = ?", (latest,)))
        # what reached the canaries before they went back still counts (the metrics' bytes uploaded)
        sent = dict(db.execute("SELECT host, uploaded_bytes FROM host_outcomes WHERE deployment_id = ? "
                               "AND duration > 0", (latest,)))
    assert states == {"n00": "rolled_back", "n01": "rolled_back"}
    assert hosts["n00"] == "rolled_back" and hosts["n05"] == "not_reached"
    assert set(sent) == {"n00", "n01"} and all(size > 1000 for size in sent.values())


def test_passing_health_checks_gate_every_batch_and_complete_the_fleet(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 8)
    code, doc, err = fleet.run(capsys, versioned(fleet, "v1", serial=3), "--canary", "25%", "--health-check",
                               "test \"$(cat {{ rustle_test_root }}/version)\" = v1")
    assert code == 0, err
    rollout = doc["rollout"]
    assert [b["hosts"] for b in rollout["batches"]] == [["n00", "n01"], ["n02", "n03", "n04"], ["n05", "n06", "n07"]]
    assert rollout["batches"][0]["canary"] and not rollout["batches"][1]["canary"]
    assert sorted(rollout["updated"]) == fleet.names
    assert all(v["healthy"] and v["attempts"] == 1 for v in rollout["health"].values())
    assert_sequential(fleet, [["n00", "n01"], ["n02", "n03", "n04"], ["n05", "n06", "n07"]])


def test_a_canary_whose_run_fails_is_rolled_back(sshd: Any, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 5, fail={"n01": "play-0"})
    code, doc, err = fleet.run(capsys, versioned(fleet, "v1"), "-l", "fleet:!n01")
    assert code == 0, err
    code, doc, err = fleet.run(capsys, versioned(fleet, "v2"), "--canary", "2")
    assert code == 1, err
    rollout = doc["rollout"]
    assert rollout["failed"] == ["n01"] and rollout["rolled_back"] == ["n00"]
    assert "n01" in rollout["not_rolled_back"]  # it had nothing before this deployment
    assert (fleet.root("n00") / "version").read_text() == "v1\n"
    assert sorted(rollout["not_reached"]) == ["n02", "n03", "n04"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--canary", "2"], "--canary gates a rollout that runs the plan"),
        (["--run", "--canary", "0"], "expected a host count or a percentage"),
        (["--run", "--health-retries", "2"], "--health-retries has no effect without --health-check"),
        (["--run", "--health-check", "true", "--health-interval", "0"], "--health-interval must be greater than 0"),
        (["--run", "--health-check", "{{ nope }}"], "'nope' is undefined"),
        (["--run", "--health-check", "{{ x"], "--health-check"),
        (["--compile-only", "--canary", "1"], "--canary has no effect with --compile-only"),
    ],
)
def test_gate_flags_are_checked_before_anything_is_touched(args: list[str], needle: str, sshd: Any, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2)
    code = main([str(versioned(fleet, "v1")), "-i", str(fleet.inventory), *args])
    _, err = capsys.readouterr()
    assert code == 2 and needle in err, err
    assert not any(fleet.remote(n).exists() for n in fleet.names)


# -- resuming ----------------------------------------------------------------------------------


def breakable(fleet: Fleet, **play_keys: Any) -> Path:
    """Stamp tasks, then a task that fails on hosts whose root holds a file named ``broken``."""

    def tasks(hosts: list[str]) -> list[dict[str, Any]]:
        return pm.stamp_tasks("play-0", play_keys.pop("sleep", 0.05))(hosts) + [
            pm.task("task_3", "healthy host", "command",
                    {"_raw_params": "test ! -e {{ rustle_test_root }}/broken"}, hosts, 3),
        ]

    return fleet.write_plan(pm.plan([pm.play("play-0", "web", fleet.names, tasks, **play_keys)], fleet.names))


def test_resume_goes_on_with_the_hosts_a_stopped_rollout_did_not_finish(
        sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 6)
    fleet.root("n02").mkdir(parents=True)
    (fleet.root("n02") / "broken").write_text("")
    plan = breakable(fleet, serial=2, max_fail_percentage=0)
    code, doc, err = fleet.run(capsys, plan)
    assert code == 1 and doc["rollout"]["stopped_after_batch"] == 2, err
    did = doc["deployment_id"]
    before = {n: fleet.stamps(n) for n in fleet.names}
    (fleet.root("n02") / "broken").unlink()  # the operator mends the host
    code, doc, err = fleet.run(capsys, plan, "--resume", did)
    assert code == 0, err
    assert doc["deployment_id"] == did
    rollout = doc["rollout"]
    assert rollout["state"] == "completed" and sorted(rollout["updated"]) == fleet.names
    assert [b["ran"] for b in rollout["batches"]] == [["n02"], ["n04", "n05"]]
    for n in ("n00", "n01", "n03"):  # done before: not run again
        assert fleet.stamps(n) == before[n]
    assert fleet.stamps("n02") != before["n02"]
    assert_sequential(fleet, [["n02"], ["n04", "n05"]])
    db = sqlite3.connect(Path.home() / ".rustle" / "state.db")
    assert db.execute("SELECT status FROM deployments WHERE id = ?", (did,)).fetchone() == ("done",)
    assert dict(db.execute("SELECT host, status FROM host_outcomes WHERE deployment_id = ?", (did,))) == {
        n: "activated" for n in fleet.names}
    code = main(["--list-deployments", "--output", "text"])
    assert "rollout completed 3 batches" in capsys.readouterr()[0]
    # nothing left to resume; a different plan is refused
    code = main([str(plan), "-i", str(fleet.inventory), "--run", "--resume", did])
    assert code == 2 and "nothing to resume" in capsys.readouterr()[1]


def test_resume_refuses_another_plan_and_bad_flags(sshd: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 4)
    fleet.root("n00").mkdir(parents=True)
    (fleet.root("n00") / "broken").write_text("")
    plan = breakable(fleet, serial=1)
    code, doc, _ = fleet.run(capsys, plan)
    assert code == 1
    did = doc["deployment_id"]
    other = breakable(fleet, serial=2)
    for args, needle in (([str(other), "--run", "--resume", did], "is not the plan deployment"),
                         ([str(plan), "--resume", did], "add --run"),
                         ([str(plan), "--run", "--resume", did, "-l", "n01"], "drop --limit"),
                         ([str(plan), "--run", "--resume", "d-nope"], "no deployment 'd-nope'")):
        code = main([*args, "-i", str(fleet.inventory)])
        assert code == 2 and needle in capsys.readouterr()[1], args


@pytest.mark.parametrize("how", ["ctrl-c", "controller-lost"])
def test_resume_after_an_interruption_in_batch_three(how: str, sshd: Any, tmp_path: Path, rustle_home: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C (the controller records what it knows), or a controller killed outright (SIGKILL:
    the history still says running; resume asks the hosts of the batch in flight)."""
    import signal
    import subprocess
    import sys
    import time

    fleet = Fleet(sshd, tmp_path, 10)
    plan = breakable(fleet, serial=2, sleep=1.0)
    env = {**os.environ, "HOME": str(rustle_home)}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "rustle-deploy"), str(plan), "-i", str(fleet.inventory), "--run",
         "--output", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while not (fleet.root("n04") / "play-0.start").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == (130 if how == "ctrl-c" else -9), err.decode()
    db = sqlite3.connect(rustle_home / ".rustle" / "state.db")
    did, status = db.execute("SELECT id, status FROM deployments").fetchone()
    state = "interrupted" if how == "ctrl-c" else "running"
    assert status == state
    assert db.execute("SELECT state, done_batches FROM rollouts").fetchone() == (state, 2)
    before = {n: fleet.stamps(n) for n in fleet.names[:4]}
    assert all(before.values()) and not any((fleet.root(n) / "play-0.start").exists() for n in fleet.names[6:])
    code, doc, err = fleet.run(capsys, plan, "--resume", did)
    assert code == 0, err
    assert doc["rollout"]["state"] == "completed"
    assert [b["ran"] for b in doc["rollout"]["batches"]] == [["n04", "n05"], ["n06", "n07"], ["n08", "n09"]]
    for n in fleet.names[:4]:
        assert fleet.stamps(n) == before[n]
    assert_sequential(fleet, batches_of([2, 2, 2, 2, 2], fleet.names))
    assert dict(db.execute("SELECT host, status FROM host_outcomes WHERE deployment_id = ?", (did,))) == {
        n: "activated" for n in fleet.names}


# -- stage, then promote -----------------------------------------------------------------------


def test_stage_then_promote_then_rollback(sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 20)
    code, doc, err = fleet.run(capsys, versioned(fleet, "v1"))
    assert code == 0, err
    v1 = {h["name"]: h["sha256"] for h in doc["hosts"]}
    plan = versioned(fleet, "v2", serial=10)
    code = main([str(plan), "-i", str(fleet.inventory), "--stage", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    staged = json.loads(out)
    did = staged["deployment_id"]
    v2 = {h["name"]: h["sha256"] for h in staged["hosts"]}
    assert all(h["status"] == "staged" and h["uploaded"] for h in staged["hosts"])
    for n in fleet.names:  # uploaded and verified, not current, nothing ran
        assert current(fleet, n) == v1[n]
        assert sorted(os.listdir(fleet.remote(n) / "artifacts")) == sorted({v1[n], v2[n]})
        assert (fleet.root(n) / "version").read_text() == "v1\n"
    assert "staged" in _list_text(capsys)
    code = main(["--promote", "-i", str(fleet.inventory), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    promoted = json.loads(out)
    assert promoted["deployment_id"] == did
    assert [b["hosts"] for b in promoted["rollout"]["batches"]] == [fleet.names[:10], fleet.names[10:]]
    for h in promoted["hosts"]:
        assert h["status"] == "activated" and not h["uploaded"] and h["previous_sha256"] == v1[h["name"]], h
    for n in fleet.names:
        assert current(fleet, n) == v2[n] and (fleet.root(n) / "version").read_text() == "v2\n"
    assert_sequential(fleet, [fleet.names[:10], fleet.names[10:]])
    code = main(["--promote", did, "-i", str(fleet.inventory)])
    assert code == 2 and "not staged" in capsys.readouterr()[1]
    code = main(["--rollback", did, "-i", str(fleet.inventory), "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for n in fleet.names:
        assert current(fleet, n) == v1[n]


def _list_text(capsys: pytest.CaptureFixture[str]) -> str:
    main(["--list-deployments", "--output", "text"])
    return capsys.readouterr()[0]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--stage", "--run"], "--stage prepares a release without running it"),
        (["--promote", "--run"], "--run has no effect with --promote"),
        (["--promote"], "no staged deployment"),
    ],
)
def test_stage_and_promote_usage(args: list[str], needle: str, sshd: Any, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 1)
    plan = [str(versioned(fleet, "v1"))] if "--stage" in args else []
    code = main([*plan, "-i", str(fleet.inventory), *args])
    assert code == 2 and needle in capsys.readouterr()[1]


def test_dry_run_lists_the_batches_and_native_refuses_stages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = [f"h{i}" for i in range(5)]
    inv = tmp_path / "inv.ini"
    inv.write_text("".join(f"{n} ansible_connection=local rustle_test_root={tmp_path / n}\n" for n in names))
    plays = [pm.play("play-0", "one", names, pm.stamp_tasks("play-0"), serial=2, order="reverse_inventory"),
             pm.play("play-1", "two", names, pm.stamp_tasks("play-1"))]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(pm.plan(plays, names)))
    code = main([str(plan), "-i", str(inv), "--run", "--dry-run", "--output", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    stages = json.loads(out)["schedule"]["stages"]
    assert [st["batches"] for st in stages] == [[["h4", "h3"], ["h2", "h1"], ["h0"]], [names]]
    code = main([str(plan), "-i", str(inv), "--run", "--dry-run", "--output", "text"])
    assert "batch 1/4 (play 'one', serial 2): h4 h3" in capsys.readouterr()[0]
    code = main([str(plan), "-i", str(inv), "--run", "--format", "native"])
    assert code == 2 and "--format native cannot run this plan" in capsys.readouterr()[1]
    assert not any((tmp_path / n).exists() for n in names)


# -- --health-url: a real HTTP server per host on loopback -------------------------------------


class HealthServers:
    """One HTTP server per host on 127.0.0.1, answering GET /health with the status the test
    sets for that host (``statuses``), and recording who asked (``asked``)."""

    def __init__(self, names: list[str]) -> None:
        import http.server
        import threading

        self.statuses = dict.fromkeys(names, 200)
        self.asked: list[str] = []
        self.servers = {}
        owner = self

        for name in names:
            class Handler(http.server.BaseHTTPRequestHandler):
                host = name

                def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                    owner.asked.append(f"{self.host} {self.path}")
                    status = owner.statuses[self.host]
                    body = f"{self.host} says {status}\n".encode()
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

                def log_message(self, *args: Any) -> None:
                    pass

            server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers[name] = server

    def port(self, name: str) -> int:
        return int(self.servers[name].server_address[1])

    def close(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()


@pytest.fixture
def health_fleet(sshd: Any, tmp_path: Path) -> Any:
    """An 8-host fleet whose hosts each have ``health_port``: their own HTTP server."""
    fleet = Fleet(sshd, tmp_path, 8)
    servers = HealthServers(fleet.names)
    doc = yaml.safe_load(fleet.inventory.read_text())
    for name, hvars in doc["all"]["children"]["fleet"]["hosts"].items():
        hvars["health_port"] = servers.port(name)
    fleet.inventory.write_text(yaml.safe_dump(doc, sort_keys=False))
    yield fleet, servers
    servers.close()


HEALTH_URL = "http://127.0.0.1:{{ health_port }}/health?host={{ inventory_hostname }}"


def test_failed_health_url_rolls_the_canaries_back_and_touches_no_other_host(
        health_fleet: Any, capsys: pytest.CaptureFixture[str]) -> None:
    fleet, servers = health_fleet
    code, doc, err = fleet.run(capsys, versioned(fleet, "v1"))
    assert code == 0, err
    v1 = {h["name"]: h["sha256"] for h in doc["hosts"]}
    before = {n: fleet.stamps(n) for n in fleet.names}
    servers.statuses["n01"] = 503
    code, doc, err = fleet.run(capsys, versioned(fleet, "v2", serial=3), "--canary", "2", "--health-url", HEALTH_URL,
                               "--health-retries", "1", "--health-interval", "0.1")
    assert code == 1, err
    rollout = doc["rollout"]
    assert rollout["state"] == "stopped" and rollout["stopped_after_batch"] == 1
    assert rollout["batches"][0]["unhealthy"] == ["n01"]
    assert rollout["rolled_back"] == ["n00", "n01"]  # the whole canary batch goes back
    assert rollout["health"]["n01"] == {"healthy": False, "attempts": 2, "rc": None, "status": 503,
                                        "output": "HTTP 503 n01 says 503"}
    assert rollout["health"]["n00"]["healthy"] and rollout["health"]["n00"]["status"] == 200
    assert "n01 | health check attempt 2: unhealthy (HTTP 503)" in err, err
    assert sorted(servers.asked) == ["n00 /health?host=n00", "n01 /health?host=n01", "n01 /health?host=n01"]
    for n in fleet.names[:2]:
        assert current(fleet, n) == v1[n] and (fleet.root(n) / "version").read_text() == "v1\n"
    for n in fleet.names[2:]:
        assert current(fleet, n) == v1[n] and fleet.stamps(n) == before[n]
        assert os.listdir(fleet.remote(n) / "artifacts") == [v1[n]]


def test_passing_health_url_with_health_check_completes_the_fleet(health_fleet: Any,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Both gates on every batch: the command, then the URL."""
    fleet, servers = health_fleet
    code, doc, err = fleet.run(capsys, versioned(fleet, "v1", serial=3), "--canary", "1", "--health-url", HEALTH_URL,
                               "--health-check", "test \"$(cat {{ rustle_test_root }}/version)\" = v1", "-v")
    assert code == 0, err
    rollout = doc["rollout"]
    assert [b["hosts"] for b in rollout["batches"]] == [["n00"], ["n01", "n02", "n03"], ["n04", "n05", "n06"], ["n07"]]
    assert sorted(rollout["updated"]) == fleet.names
    assert all(v["healthy"] and v["rc"] == 0 and v["status"] == 200 for v in rollout["health"].values())
    assert sorted(servers.asked) == sorted(f"{n} /health?host={n}" for n in fleet.names)
    assert "n03 | health check attempt 1: healthy (HTTP 200) | HTTP 200 n03 says 200" in err
    assert_sequential(fleet, [["n00"], ["n01", "n02", "n03"], ["n04", "n05", "n06"], ["n07"]])


def test_health_url_with_no_answer_and_a_failing_command(health_fleet: Any,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """A server that is gone is unhealthy (no answer); a failing command skips the URL."""
    fleet, servers = health_fleet
    servers.servers["n00"].shutdown()
    servers.servers["n00"].server_close()
    code, doc, err = fleet.run(capsys, versioned(fleet, "v1"), "--canary", "1", "--health-url", HEALTH_URL,
                               "--health-retries", "0")
    assert code == 1, err
    verdict = doc["rollout"]["health"]["n00"]
    assert verdict["status"] is None and not verdict["healthy"] and "Connection refused" in verdict["output"]
    assert "n00 | health check attempt 1: unhealthy (no answer)" in err
    code, doc, err = fleet.run(capsys, versioned(fleet, "v2"), "-l", "fleet:!n00", "--canary", "1", "--health-url",
                               HEALTH_URL, "--health-check", "exit 3", "--health-retries", "0")
    assert code == 1, err
    assert doc["rollout"]["health"]["n01"] == {"healthy": False, "attempts": 1, "rc": 3, "status": None, "output": ""}
    assert not servers.asked


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--health-url", "http://{{ nope }}/"], "--health-url for n00: 'nope' is undefined"),
        (["--health-url", "ftp://{{ ansible_host }}/"], "is not an http:// or https:// URL"),
        (["--health-url", "http://{{ x"], "--health-url"),
    ],
)
def test_health_url_is_checked_before_anything_is_touched(args: list[str], needle: str, sshd: Any, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 2)
    code = main([str(versioned(fleet, "v1")), "-i", str(fleet.inventory), "--run", *args])
    _, err = capsys.readouterr()
    assert code == 2 and needle in err, err
    assert not any(fleet.remote(n).exists() for n in fleet.names)
