"""The web UI in a real headless Chromium (Debian's chromium + chromium-driver, through
Selenium), served by ``rustle-deploy ui`` in its own process, over deployments that the
command line makes to a 10-host fleet on the real local sshd: the list, a deployment page
updating live without reload while hosts report, a failed host's task with its diff, a
rollback from the UI checked on the hosts, and a no_log value absent from every page; and a
stopped rollout resumed by clicking through its confirmation page, checked on the hosts.

``RUSTLE_UI_SCREENSHOTS=DIR`` saves a PNG of each main page there (docs/ has them).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("selenium")
pytest.importorskip("starlette")

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from rustle_deploy.cli import main  # noqa: E402

from .test_rollout_playbook import stamp_play, write_playbook  # noqa: E402
from .test_rollout_ssh import Fleet  # noqa: E402
from .test_ui_resume import _stopped_rollout, _wait_gone, format_option  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SECRET = "nolog-secret-5d1e0c"
PATIENCE = 90  # seconds any one wait may take on a loaded machine (a bound, not a measurement)

PLAYBOOK = """\
- hosts: fleet
  gather_facts: false
  tasks:
    - name: write the release file
      copy:
        content: "release {{ ver }} of {{ inventory_hostname }}\\n"
        dest: "{{ rustle_test_root }}/app.conf"
    - name: secret
      shell: echo SECRET
      no_log: true
    - name: wait for the test's go-ahead
      shell: "while [ ! -e {{ gate_dir }}/{{ inventory_hostname }} ]; do sleep 0.05; done"
      when: gate_dir is defined
    - name: check the service
      shell: "echo 'service check failed: port 8080 closed' >&2; exit 4"
      when: inventory_hostname == 'web09' and ver == '2'
""".replace("SECRET", SECRET)

pytestmark = [pytest.mark.ssh, pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="Chromium is not installed (CI installs Debian's chromium and chromium-driver)")]


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,860"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _ui(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``rustle-deploy ui --port 0`` in its own process, and the URL it prints."""
    err = open(log, "wb")  # noqa: SIM115 - closed with the process below
    proc = subprocess.Popen([sys.executable, "-m", "rustle_deploy.cli", "ui", "--port", "0"],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    err.close()
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        m = re.search(r"at (http://127\.0\.0\.1:\d+)/", log.read_text())
        if m:
            return proc, m.group(1)
        assert proc.poll() is None, log.read_text()
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"rustle-deploy ui printed no URL: {log.read_text()}")


def _db_rows(db_path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    if not db_path.exists():
        return []
    with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        try:
            return db.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # the schema is being created by the deploy right now
            return []


def test_live_page_failed_task_rollback_and_no_log_in_chromium(
    browser: Any, sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shots = os.environ.get("RUSTLE_UI_SCREENSHOTS")
    db_path = tmp_path / "state.db"
    monkeypatch.setenv("RUSTLE_STATE_DB", str(db_path))
    names = [f"web{i:02d}" for i in range(10)]
    hosts = {}
    for n in names:
        h = sshd.host(n, tmp_path / "remote" / n, rustle_test_root=str(tmp_path / "root" / n))
        hosts[n] = dict(h.vars)
        (tmp_path / "root" / n).mkdir(parents=True)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    site = tmp_path / "site.yml"
    site.write_text(PLAYBOOK)
    assert main([str(site), "-i", str(inv), "--run", "-e", "ver=1", "--output", "json"]) == 0
    capsys.readouterr()
    ((first,),) = _db_rows(db_path, "SELECT id FROM deployments")
    release1 = dict(_db_rows(db_path, "SELECT host, sha256 FROM host_outcomes WHERE deployment_id = ?", first))

    seen: list[str] = []  # every page's source, for the no_log check

    def visit(url: str) -> None:
        browser.get(url)
        seen.append(browser.page_source)

    def shot(name: str) -> None:
        if shots:
            browser.save_screenshot(str(Path(shots) / f"ui-{name}.png"))

    def wait(what: str, predicate: Any) -> None:
        WebDriverWait(browser, PATIENCE, poll_frequency=0.1).until(lambda d: predicate(), what)

    env = dict(os.environ)
    ui, url = _ui(env, tmp_path / "ui.log")
    gates = tmp_path / "gates"
    gates.mkdir()
    deploy_log = open(tmp_path / "deploy2.log", "wb")  # noqa: SIM115
    second_run = subprocess.Popen(
        [sys.executable, "-m", "rustle_deploy.cli", str(site), "-i", str(inv), "--run", "--diff", "-e", "ver=2",
         "-e", f"gate_dir={gates}", "--output", "json"],
        env=env, stdin=subprocess.DEVNULL, stdout=deploy_log, stderr=subprocess.STDOUT)
    deploy_log.close()
    try:
        deadline = time.monotonic() + PATIENCE
        second = None
        while second is None and time.monotonic() < deadline:
            rows = _db_rows(db_path, "SELECT id FROM deployments WHERE id != ? AND status = 'running'", first)
            pending = _db_rows(db_path, "SELECT count(*) FROM host_outcomes WHERE deployment_id = ?",
                               rows[0][0]) if rows else [(0,)]
            second = rows[0][0] if rows and pending[0][0] == 10 else None
            time.sleep(0.1)
        assert second is not None, (tmp_path / "deploy2.log").read_text()

        # -- the live view: hosts flip as they report, without a reload ---------------------
        visit(f"{url}/deployments/{second}")
        assert browser.find_element(By.ID, "status").text == "running"
        browser.execute_script("window.rustleMarker = 'same page';")

        def statuses() -> dict[str, str]:
            rows = browser.find_elements(By.CSS_SELECTOR, "#hosts tbody tr")
            return {r.get_attribute("data-host"): r.find_element(By.CSS_SELECTOR, ".c-status").text for r in rows}

        assert set(statuses()) == set(names) and set(statuses().values()) == {"pending"}

        def recap(host: str) -> str:
            return str(browser.find_element(By.CSS_SELECTOR, f'#hosts tr[data-host="{host}"] .c-recap').text)

        # the task each host runs now and the results it reported, as the terminal's progress shows them
        wait("web07's current task and its results so far", lambda: recap("web07") == (
            "running “wait for the test's go-ahead” (2 done) · “write the release file” changed · “secret” changed"))
        for n in names[:5]:
            (gates / n).touch()
        wait("five hosts activated", lambda: sum(s == "activated" for s in statuses().values()) == 5)
        assert browser.find_element(By.ID, "status").text == "running"
        assert browser.execute_script("return window.rustleMarker") == "same page"
        shot("live")
        for n in names[5:]:
            (gates / n).touch()
        wait("the deployment ends", lambda: browser.find_element(By.ID, "status").text == "done")
        assert second_run.wait(PATIENCE) == 1, (tmp_path / "deploy2.log").read_text()
        wait("the feed ends", lambda: browser.find_element(By.TAG_NAME, "body").get_attribute("data-live-ended") == "1")
        assert browser.execute_script("return window.rustleMarker") == "same page"  # never reloaded
        assert set(statuses().values()) == {"activated"}
        failed_row = browser.find_element(By.CSS_SELECTOR, '#hosts tr[data-host="web09"]').text
        assert "check the service" in failed_row and "failed=1" in failed_row
        seen.append(browser.page_source)
    finally:
        if second_run.poll() is None:
            for n in names:
                (gates / n).touch()
            second_run.wait(PATIENCE)

    try:
        # -- the list, and the pages after the deployment ------------------------------------
        visit(url + "/")
        listed = [r.get_attribute("data-id") for r in browser.find_elements(By.CSS_SELECTOR, "#deployments tbody tr")]
        assert listed == [second, first]
        shot("deployments")
        visit(f"{url}/deployments/{second}")
        shot("deployment")

        # -- the failed host's task, with its diff --------------------------------------------
        browser.find_element(By.CSS_SELECTOR, '#hosts tr[data-host="web09"] td.c-links a').click()
        seen.append(browser.page_source)
        failed = browser.find_element(By.CSS_SELECTOR, "section.task.state-failed").text
        assert "check the service" in failed and "service check failed: port 8080 closed" in failed and "rc=4" in failed
        diff = browser.find_element(By.CSS_SELECTOR, "pre.diff").text
        assert "-release 1 of web09" in diff and "+release 2 of web09" in diff
        assert "output hidden: no_log" in browser.page_source
        shot("tasks")
        visit(f"{url}/hosts/web03")
        assert browser.find_element(By.ID, "previous").text == release1["web03"][:12]
        shot("host")

        # -- roll the deployment back from the UI; the hosts say where they are ----------------
        visit(f"{url}/deployments/{second}")
        browser.find_element(By.ID, "rollback").click()
        seen.append(browser.page_source)
        plan = browser.find_elements(By.CSS_SELECTOR, "#plan tbody tr.will")
        assert len(plan) == 10
        browser.find_element(By.ID, "operator").send_keys("Grace")
        shot("rollback")
        browser.find_element(By.ID, "confirm-rollback").click()
        WebDriverWait(browser, PATIENCE).until(lambda d: d.find_elements(By.ID, "outcome") or d.find_elements(
            By.CSS_SELECTOR, "p.error"), "the rollback's result page")
        assert not browser.find_elements(By.CSS_SELECTOR, "p.error"), browser.page_source
        seen.append(browser.page_source)
        assert browser.find_element(By.ID, "outcome").text == "done", browser.find_element(By.ID, "output").text
        for n in names:
            (current,) = (tmp_path / "remote" / n / "releases").glob("*/current")
            assert os.readlink(current).rsplit("/", 1)[1].split(".")[0] == release1[n], n
        ((who,),) = _db_rows(db_path, "SELECT user FROM deployments WHERE op = 'rollback' AND target_id = ?", second)
        assert who.startswith("Grace (web UI from 127.0.0.1")
        visit(f"{url}/deployments/{second}")
        assert "by Grace (web UI" in browser.find_element(By.ID, "actions").text
    finally:
        ui.terminate()
        ui.wait(PATIENCE)

    assert len(seen) >= 9
    for source in seen:
        assert SECRET not in source


def test_a_stopped_rollout_is_resumed_by_clicking_through_its_confirmation_page(
    browser: Any, sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    shots = os.environ.get("RUSTLE_UI_SCREENSHOTS")
    db_path = tmp_path / "state.db"
    monkeypatch.setenv("RUSTLE_STATE_DB", str(db_path))
    fleet = Fleet(sshd, tmp_path, 3)
    for name in fleet.names:
        fleet.root(name).mkdir(parents=True)
    play = stamp_play("play-0", serial=1, max_fail_percentage=0)
    play["tasks"].append({"name": "healthy host", "command": "test ! -e {{ rustle_test_root }}/broken"})
    play["tasks"].append({"name": "note", "copy": {"content": "{{ note }}\n", "dest": "{{ rustle_test_root }}/note"}})
    playbook = write_playbook(tmp_path, [play])
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("note: from the vars file\n")
    did = _stopped_rollout(fleet, playbook, capsys, "-e", f"@{vars_file}")  # n00 broken: stops after batch 1
    assert [fleet.stamps(n) is not None for n in fleet.names] == [True, False, False]
    (fleet.root("n00") / "broken").unlink()  # the operator mends the host, then resumes in the browser

    ui, url = _ui(dict(os.environ), tmp_path / "ui.log")
    try:
        browser.get(f"{url}/deployments/{did}")
        assert "stopped after batch 1/3" in browser.find_element(By.ID, "rollout").text
        browser.find_element(By.ID, "resume").click()
        assert browser.current_url == f"{url}/deployments/{did}/resume"
        left = {r.get_attribute("data-host"): r.text for r in browser.find_elements(By.CSS_SELECTOR, "#left tbody tr")}
        assert left == {"n00": "n00 1 failed", "n01": "n01 — not_reached", "n02": "n02 — not_reached"}, left
        assert browser.find_element(By.ID, "command").text == (
            f"rustle-deploy {playbook} -i {fleet.inventory}{format_option()} -e @{vars_file} --run --resume {did}")
        browser.find_element(By.ID, "operator").send_keys("Linus")
        if shots:
            browser.save_screenshot(str(Path(shots) / "ui-resume.png"))
        browser.find_element(By.ID, "confirm-resume").click()
        WebDriverWait(browser, PATIENCE).until(lambda d: d.find_elements(By.ID, "outcome") or d.find_elements(
            By.CSS_SELECTOR, "p.error"), "the resume's result page")
        assert browser.find_element(By.ID, "outcome").text == "started", browser.page_source
        started = re.search(r"as process (\d+); its output goes to (\S+\.log)", browser.find_element(By.ID, "what").text)
        assert started is not None, browser.page_source
        _wait_gone(int(started[1]), Path(started[2]))
        log = Path(started[2]).read_text()

        browser.find_element(By.ID, "follow").click()
        assert browser.current_url == f"{url}/deployments/{did}"
        assert "completed" in browser.find_element(By.ID, "rollout").text, log
        assert not browser.find_elements(By.ID, "resume")  # nothing left to resume
        assert "by Linus (web UI" in browser.find_element(By.ID, "actions").text
    finally:
        ui.terminate()
        ui.wait(PATIENCE)
    for name in fleet.names:  # on the hosts: every one ran the play, with the vars file's value
        assert fleet.stamps(name) is not None, log
        assert (fleet.root(name) / "note").read_text() == "from the vars file\n"
    ((who,),) = _db_rows(db_path, "SELECT user FROM deployments WHERE op = 'resume' AND target_id = ?", did)
    assert who.startswith("Linus (web UI from 127.0.0.1"), who
