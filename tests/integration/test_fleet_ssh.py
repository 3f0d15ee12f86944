"""Fleet deployment over a real sshd: many hosts, warm round trips, history, rollback, cleanup,
locking, cancellation, leaks."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from rustle_deploy.deploy import HostJob, HostOutcome, RunOptions, deploy_fleet, deploy_host

from .conftest import BIN, job

pytestmark = pytest.mark.ssh


def fleet(jobs: list[HostJob], **kw: Any) -> list[HostOutcome]:
    kw.setdefault("parallel", 25)
    kw.setdefault("timeout", 60)
    return asyncio.run(deploy_fleet(jobs, **kw))


def test_fleet_of_twenty_deploys_runs_and_warm_redeploys_in_two_round_trips(sshd, tmp_path, build_artifact, remote):
    fds_before = remote.open_fds()
    kids_before = remote.child_pids(exclude={sshd.pid})
    art = build_artifact(pad=100_000)
    hosts = [sshd.host(f"web{i:02d}", tmp_path / f"h{i}") for i in range(20)]
    seen: dict[str, list[str]] = {}

    def on_event(host: str, ev: dict[str, Any]) -> None:
        seen.setdefault(host, []).append(ev["event"])

    finished: list[str] = []
    cold = fleet([job(h, art, run=RunOptions(run_id="run-1")) for h in hosts], on_event=on_event,
                 on_outcome=lambda o: finished.append(o.host))
    assert [o.host for o in cold] == [h.name for h in hosts]
    assert sorted(finished) == sorted(h.name for h in hosts)
    for o in cold:
        assert o.ok, o.error
        assert (o.uploaded, o.activated, o.run_exit, o.sha256) == (True, True, 0, art[1])
        assert o.recap is not None and o.recap["ok"] == 1
        assert o.round_trips == 3  # channel open; exec + request; upload
    assert set(seen) == {h.name for h in hosts}
    assert seen["web00"] == ["run_start", "play_start", "task_start", "task_result", "recap"]

    warm = fleet([job(h, art, run=RunOptions(run_id="run-2")) for h in hosts])
    for o in warm:
        assert o.ok, o.error
        assert (o.uploaded, o.activated, o.run_exit) == (False, False, 0)
        assert o.round_trips == 2  # the promise of docs/remote.md
    for i, _h in enumerate(hosts):
        d = tmp_path / f"h{i}"
        st = remote.state(d)
        assert st["current"] == art[1] and st["previous"] is None
        assert st["artifacts"] == [art[1]]
        assert [e["changed"] for e in st["history"]] == [True, False]
        assert sorted(os.listdir(d / "runs")) == ["run-1.jsonl", "run-2.jsonl"]
        assert (d / "artifacts").stat().st_mode & 0o777 == 0o700
        assert (d / "artifacts" / art[1]).stat().st_mode & 0o777 == 0o700
        remote.assert_whole(d)
    assert remote.open_fds() == fds_before
    assert remote.child_pids(exclude={sshd.pid}) == kids_before


def test_status_run_rollback_after_two_deployments(sshd, tmp_path, build_artifact, remote):
    v1 = build_artifact("v1", version="1")
    v2 = build_artifact("v2", version="2")
    d = tmp_path / "h"
    h = sshd.host("app1", d)

    async def go() -> list[HostOutcome]:
        outs = [await deploy_host(job(h, v1, deployment_id="dep-1"))]
        outs.append(await deploy_host(job(h, v2, deployment_id="dep-2")))
        outs.append(await deploy_host(HostJob(h, "run", binary_name=BIN, run=RunOptions("r-after"))))
        outs.append(await deploy_host(HostJob(h, "rollback", binary_name=BIN, deployment_id="dep-2")))
        outs.append(await deploy_host(HostJob(h, "status")))
        outs.append(await deploy_host(HostJob(h, "rollback", binary_name=BIN, rollback_to=v2[1])))
        return outs

    first, second, run, back, status, forward = asyncio.run(go())
    assert first.ok and second.ok and second.previous_sha256 == v1[1]
    assert run.ok and run.events[0]["version"] == "2" and run.round_trips == 2
    assert back.ok and back.rolled_back and back.sha256 == v1[1] and back.previous_sha256 == v2[1]
    assert status.ok and status.agent is not None
    assert status.agent["releases"][BIN] == {"current": v1[1], "previous": v2[1]}
    assert forward.ok and forward.sha256 == v2[1]
    st = remote.state(d)
    assert (st["current"], st["previous"]) == (v2[1], v1[1])
    assert [(e["op"], e["sha256"], e["previous"]) for e in st["history"]] == [
        ("deploy", v1[1], None),
        ("deploy", v2[1], v1[1]),
        ("rollback", v1[1], v2[1]),
        ("rollback", v2[1], v1[1]),
    ]


def test_rollback_without_previous_release_is_a_clear_error(sshd, tmp_path, build_artifact):
    h = sshd.host("app1", tmp_path / "h")

    async def go() -> HostOutcome:
        await deploy_host(job(h, build_artifact()))
        return await deploy_host(HostJob(h, "rollback", binary_name=BIN))

    out = asyncio.run(go())
    assert not out.ok and "no previous release" in out.error.message
    assert out.error.hint


def test_cleanup_leaves_nothing_and_spares_foreign_files(sshd, tmp_path, build_artifact):
    a, b = tmp_path / "a", tmp_path / "b"
    ha, hb = sshd.host("a", a), sshd.host("b", b)
    art = build_artifact()
    outs = fleet([job(ha, art, run=RunOptions("r1")), job(hb, art)])
    assert all(o.ok for o in outs)
    (b / "notes.txt").write_text("mine")
    outs = fleet([HostJob(ha, "cleanup"), HostJob(hb, "cleanup")])
    assert all(o.ok for o in outs)
    assert not a.exists()
    # b is kept for the foreign file, with the mark that rustle-deploy created it
    assert sorted(os.listdir(b)) == [".created-by-rustle-deploy", "notes.txt"]
    assert [e["path"] for e in outs[1].agent["left"]] == ["notes.txt"]
    again = fleet([HostJob(ha, "cleanup")])  # nothing there: still fine
    assert again[0].ok and again[0].agent["removed"] == []


def test_two_deployments_to_one_host_at_once_are_serialised(sshd, tmp_path, build_artifact, remote):
    v1 = build_artifact("v1", version="1", pad=300_000)
    v2 = build_artifact("v2", version="2", pad=300_000)
    d = tmp_path / "h"
    h = sshd.host("same", d)

    async def go() -> list[HostOutcome]:
        return list(await asyncio.gather(
            deploy_host(job(h, v1, deployment_id="d1", run=RunOptions("r1"))),
            deploy_host(job(h, v2, deployment_id="d2", run=RunOptions("r2"))),
        ))

    outs = asyncio.run(go())
    assert all(o.ok for o in outs), [o.error for o in outs]
    st = remote.state(d)
    h1, h2 = st["history"]
    assert h1["previous"] is None and h2["previous"] == h1["sha256"]
    assert {h1["sha256"], h2["sha256"]} == {v1[1], v2[1]}
    assert st["current"] == h2["sha256"] and st["previous"] == h1["sha256"]
    assert sorted(st["artifacts"]) == sorted([v1[1], v2[1]])
    remote.assert_whole(d)


def test_cancelling_a_fleet_leaves_every_host_on_its_old_or_new_release(sshd, tmp_path, build_artifact, remote):
    fds_before = remote.open_fds()
    kids_before = remote.child_pids(exclude={sshd.pid})
    v1 = build_artifact("v1", version="1")
    v2 = build_artifact("v2", version="2", pad=3_000_000, tasks=[{"name": "slow", "sleep": 0.5}])
    dirs = [tmp_path / f"h{i}" for i in range(20)]
    hosts = [sshd.host(f"n{i:02d}", d) for i, d in enumerate(dirs)]
    assert all(o.ok for o in fleet([job(h, v1) for h in hosts]))

    async def go() -> None:
        started = asyncio.Event()

        def on_event(host: str, ev: dict[str, Any]) -> None:
            started.set()

        task = asyncio.ensure_future(deploy_fleet(
            [job(h, v2, deployment_id="dep-2", run=RunOptions("r2")) for h in hosts],
            parallel=6, timeout=60, on_event=on_event,
        ))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    currents = []
    for d in dirs:
        remote.wait_unlocked(d)
        st = remote.state(d)
        assert st["current"] in (v1[1], v2[1])
        assert st["history"][-1]["sha256"] == st["current"]
        if st["current"] == v2[1]:
            assert st["previous"] == v1[1]
        currents.append(st["current"])
        remote.assert_whole(d)
    assert v1[1] in currents  # the cancel came before every host had switched
    # the next deployment completes everywhere
    assert all(o.ok for o in fleet([job(h, v2, deployment_id="dep-3") for h in hosts]))
    assert remote.open_fds() == fds_before
    assert remote.child_pids(exclude={sshd.pid}) == kids_before
