"""Resuming a rollout from the web UI, over the real local sshd: a playbook rollout stopped
after its first batch is resumed through the confirmation page and a CSRF-protected POST; the
command line's --resume runs in its own process and finishes the fleet (checked on the hosts),
recorded with who asked. A deployment given a value with -e keeps no trace of it and can only
be resumed from the command line, which the page shows."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("starlette")

from starlette.testclient import TestClient  # noqa: E402

from rustle_deploy.cli import main  # noqa: E402
from rustle_deploy.ui.app import UiConfig, create_app  # noqa: E402
from rustle_deploy.ui.data import HistoryReader  # noqa: E402

from .test_rollout_playbook import stamp_play, write_playbook  # noqa: E402
from .test_rollout_ssh import Fleet  # noqa: E402

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]

SECRET = "resume-secret-81b2e0"  # given with -e: never kept in the history


def format_option() -> str:
    """The ``--format`` a resume command carries: the format the tests pin (tests/conftest.py),
    kept so that the resume runs the hosts as the deployment did."""
    fmt = os.environ.get("RUSTLE_FORMAT", "auto")
    return "" if fmt == "auto" else f" --format {fmt}"


def _stopped_rollout(fleet: Fleet, playbook: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    """Deploy with n00 broken: batch 1 (n00) fails, max_fail_percentage 0 stops the rollout."""
    (fleet.root("n00") / "broken").write_text("")
    code = main([str(playbook), "-i", str(fleet.inventory), "--run", "--output", "json", *extra])
    out, err = capsys.readouterr()
    assert code == 1, err
    doc = __import__("json").loads(out)
    assert doc["rollout"]["state"] == "stopped" and doc["rollout"]["stopped_after_batch"] == 1, doc["rollout"]
    return str(doc["deployment_id"])


def _wait_gone(pid: int, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"the resumed deployment (process {pid}) did not end: {log.read_text()[-2000:]}")


def test_a_stopped_rollout_is_resumed_from_the_ui_and_finishes_on_the_hosts(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "state.db"
    monkeypatch.setenv("RUSTLE_STATE_DB", str(db))
    fleet = Fleet(sshd, tmp_path, 4)
    for name in fleet.names:
        fleet.root(name).mkdir(parents=True)
    play = stamp_play("play-0", serial=1, max_fail_percentage=0)
    play["tasks"].append({"name": "healthy host", "command": "test ! -e {{ rustle_test_root }}/broken"})
    play["tasks"].append({"name": "note", "copy": {"content": "{{ note }}\n", "dest": "{{ rustle_test_root }}/note"}})
    playbook = write_playbook(tmp_path, [play])
    (tmp_path / "vars.yml").write_text("note: from the vars file\n")

    # Given a value on the command line: the history keeps no trace of it; the page says to resume by hand.
    secret = _stopped_rollout(fleet, playbook, capsys, "-e", f"note={SECRET}")
    for path in tmp_path.glob("state.db*"):
        assert SECRET.encode() not in path.read_bytes()
    c = TestClient(create_app(UiConfig(state_db=db)), follow_redirects=False)
    page = c.get(f"/deployments/{secret}/resume")
    assert page.status_code == 200 and 'id="confirm"' not in page.text
    assert "-e with values on the command line (the history never keeps them" in page.text
    assert f"{playbook} -i {fleet.inventory}{format_option()} --run --resume {secret}" in page.text
    csrf = c.cookies.get("rustle_csrf")
    refused = c.post(f"/deployments/{secret}/resume", data={"csrf": csrf, "operator": "ada"})
    assert refused.status_code == 409 and "cannot be resumed from here" in refused.text

    # Extra variables from a file: kept as its path; resumed from the UI.
    did = _stopped_rollout(fleet, playbook, capsys, "-e", f"@{tmp_path / 'vars.yml'}")
    assert [fleet.stamps(n) is not None for n in fleet.names] == [True, False, False, False]
    deployment = c.get(f"/deployments/{did}").text
    assert "stopped after batch 1/4" in deployment and f'href="/deployments/{did}/resume"' in deployment
    page = c.get(f"/deployments/{did}/resume")
    assert page.status_code == 200 and 'id="confirm"' in page.text
    shown = re.search(r'<pre id="command">([^<]+)</pre>', page.text)
    assert shown is not None
    assert shown[1] == (f"rustle-deploy {playbook} -i {fleet.inventory}{format_option()} -e @{tmp_path / 'vars.yml'} "
                        f"--run --resume {did}")
    assert re.findall(r'<tr data-host="([^"]+)">', page.text) == ["n00", "n01", "n02", "n03"]
    assert c.post(f"/deployments/{did}/resume", data={"operator": "ada"}).status_code == 403  # no CSRF field
    assert [a.op for a in HistoryReader(db).actions_on(did)] == []  # nothing was started

    (fleet.root("n00") / "broken").unlink()  # the operator mends the host, then resumes
    done = c.post(f"/deployments/{did}/resume", data={"csrf": c.cookies.get("rustle_csrf"), "operator": "ada"})
    assert done.status_code == 200, done.text
    started = re.search(r"as process (\d+); its output goes to (\S+\.log)", done.text)
    assert started is not None, done.text
    _wait_gone(int(started[1]), Path(started[2]))

    log = Path(started[2]).read_text()
    reader = HistoryReader(db)
    rollout = reader.rollout(did)
    assert rollout is not None and rollout.state == "completed", log
    assert all(st == "updated" for _, st in rollout.hosts.values()), rollout.hosts
    for name in fleet.names:  # on the hosts: every one ran the play, with the vars file's value
        assert fleet.stamps(name) is not None
        assert (fleet.root(name) / "note").read_text() == "from the vars file\n"
    assert f'"deployment_id": "{did}"' in log and '"state": "completed"' in log  # the command's JSON
    (action,) = reader.actions_on(did)
    assert action.op == "resume" and action.status == "done"
    assert action.user is not None and action.user.startswith("ada (web UI from testclient")
    again = c.get(f"/deployments/{did}/resume").text
    assert "its rollout completed: there is nothing to resume" in again and 'id="confirm"' not in again
    page = c.get(f"/deployments/{did}").text
    assert "resume " + action.id in page and "by ada (web UI" in page
    assert yaml.safe_load((tmp_path / "vars.yml").read_text()) == {"note": "from the vars file"}
