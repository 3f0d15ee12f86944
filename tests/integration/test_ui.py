"""The web UI over a real history (deployments made by the command line on local hosts),
through its real ASGI app (Starlette's test client speaks HTTP to it in process): pages,
filters, escaping, no_log, the token, CSRF, CSP, the rollback action, /metrics, and the
history's schema migration."""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from rustle_deploy.cli import main  # noqa: E402
from rustle_deploy.state import History  # noqa: E402
from rustle_deploy.ui.app import UiConfig, create_app  # noqa: E402
from rustle_deploy.ui.security import CSP, session_value  # noqa: E402

SECRET = "topsecret-value-7f3a9"  # printed by a no_log task: must never reach a page

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: write the config
      copy:
        content: "version {{ ver }} <script>alert(1)</script>\\n"
        dest: "{{ out }}"
    - name: secret
      shell: echo SECRET
      no_log: true
    - name: say
      command: echo "hello <b>world</b>"
    - name: maybe fail
      shell: "echo failing on purpose >&2; exit 3"
      when: fail_me is defined
""".replace("SECRET", SECRET)


def make_fleet(root: Path) -> tuple[Path, Path]:
    """A playbook and an inventory of two local hosts (h2's last task fails)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "site.yml").write_text(PLAYBOOK)
    (root / "inv.ini").write_text(
        f"h1 ansible_connection=local rustle_remote_dir={root}/r1 out={root}/h1.conf\n"
        f"h2 ansible_connection=local rustle_remote_dir={root}/r2 out={root}/h2.conf fail_me=1\n"
    )
    return root / "site.yml", root / "inv.ini"


def deploy(root: Path, ver: int) -> int:
    site, inv = make_fleet(root)
    return main([str(site), "-i", str(inv), "--run", "--diff", "-e", f"ver={ver}", "--output", "json"])


def ids(db_path: Path) -> list[str]:
    with closing(sqlite3.connect(db_path)) as db:
        return [str(r[0]) for r in db.execute("SELECT id FROM deployments ORDER BY created_at, rowid")]


def _two_deployments(root: Path, mp: pytest.MonkeyPatch) -> dict[str, Any]:
    """Two deployments (ver=1, then ver=2) of the playbook to h1 and h2, in a private history."""
    home = root / "home"
    home.mkdir(parents=True)
    mp.setenv("HOME", str(home))
    db = root / "state.db"
    mp.setenv("RUSTLE_STATE_DB", str(db))
    assert deploy(root / "fleet", 1) == 1  # h2's last task fails
    assert deploy(root / "fleet", 2) == 1
    first, second = ids(db)
    return {"db": db, "root": root / "fleet", "first": first, "second": second}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``_two_deployments`` once for the tests that only read them."""
    with pytest.MonkeyPatch.context() as mp:
        yield _two_deployments(tmp_path_factory.mktemp("ui"), mp)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``_two_deployments`` of its own, for a test that changes them."""
    return _two_deployments(tmp_path, monkeypatch)


def client(db: Path, token: str | None = None) -> TestClient:
    return TestClient(create_app(UiConfig(state_db=db, token=token)), follow_redirects=False)


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.append(str(a["href"]))
        if tag == "script":
            self.scripts.append(a)
        self.handlers += [k for k in a if k.startswith("on")]


def crawl(c: TestClient, start: list[str]) -> dict[str, Any]:
    """Every page reachable from ``start`` on this server (GET only), by path."""
    seen: dict[str, Any] = {}
    todo = list(start)
    while todo:
        path = todo.pop()
        if path in seen or not path.startswith("/") or path.startswith("/static/"):
            continue
        r = c.get(path)
        seen[path] = r
        if "text/html" in r.headers.get("content-type", ""):
            p = Links()
            p.feed(r.text)
            todo += [link for link in p.links if link not in seen]
    return seen


def test_pages_show_the_history_escaped_and_never_a_no_log_value(shared: dict[str, Any]) -> None:
    c = client(shared["db"])
    first, second = shared["first"], shared["second"]
    pages = crawl(c, ["/", f"/api/deployments/{second}", f"/api/deployments/{first}", "/api/deployments", "/metrics"])
    assert {f"/deployments/{first}", f"/deployments/{second}", "/hosts/h1", f"/deployments/{second}/hosts/h2",
            f"/deployments/{second}/rollback", f"/deployments/{second}/rollback?host=h1"} <= set(pages)
    for path, r in pages.items():
        assert r.status_code == 200, path
        assert SECRET not in r.text, path
        assert r.headers["content-security-policy"] == CSP, path
        if "text/html" in r.headers["content-type"]:
            p = Links()
            p.feed(r.text)
            assert all(s.get("src") for s in p.scripts) and not p.handlers, f"{path}: inline script"
            assert "<script>alert(1)" not in r.text and "<b>world" not in r.text, f"{path}: host data not escaped"
    with closing(sqlite3.connect(shared["db"])) as db:  # nor is it kept anywhere in the history
        assert not [r for r in db.execute("SELECT * FROM task_results") if SECRET in repr(r)]
        (censored,) = db.execute("SELECT count(*) FROM task_results WHERE task = 'secret' AND censored = 1").fetchone()
        assert censored == 4

    listing = pages["/"].text
    assert first in listing and second in listing
    page = pages[f"/deployments/{second}"].text
    h1_sha1 = _release(shared["db"], first, "h1")
    h1_sha2 = _release(shared["db"], second, "h1")
    assert h1_sha1 != h1_sha2
    row = _row(page, "h1")
    assert "activated" in row and h1_sha1[:12] in row and h1_sha2[:12] in row and "ok=3 changed=3 failed=0" in row
    row = _row(page, "h2")
    assert "task “maybe fail” failed: non-zero return code" in row
    assert "ok=6 changed=6 failed=1 skipped=1" in page  # the recap, summed over the hosts

    tasks = pages[f"/deployments/{second}/hosts/h2"].text
    assert "hello &lt;b&gt;world&lt;/b&gt;" in tasks  # stdout, escaped
    assert "failing on purpose" in tasks and "rc=3" in tasks  # the failed task's stderr and rc
    assert "-version 1 &lt;script&gt;alert(1)&lt;/script&gt;" in tasks  # the diff, unified, escaped
    assert "+version 2 &lt;script&gt;alert(1)&lt;/script&gt;" in tasks
    assert "output hidden: no_log is set on this task" in tasks

    host = pages["/hosts/h1"].text
    assert h1_sha2[:12] in re.search(r'id="current">(.*?)</dd>', host).group(1)  # type: ignore[union-attr]
    assert h1_sha1[:12] in re.search(r'id="previous">(.*?)</dd>', host).group(1)  # type: ignore[union-attr]
    runs = re.search(r'id="runs".*?</table>', host, re.S).group(0)  # type: ignore[union-attr]
    assert runs.count("<tr>") == 1 + 2  # the header, and a run per deployment

    api = pages[f"/api/deployments/{second}"].json()
    assert [t["task"] for t in api["tasks"]["h2"]] == ["write the config", "secret", "say", "maybe fail"]
    assert api["tasks"]["h2"][1]["censored"] and not api["tasks"]["h2"][1]["stdout"]


def _row(page: str, host: str) -> str:
    m = re.search(rf'<tr data-host="{host}".*?</tr>', page, re.S)
    assert m, host
    return m.group(0)


def _release(db_path: Path, did: str, host: str) -> str:
    with closing(sqlite3.connect(db_path)) as db:
        (sha,) = db.execute("SELECT sha256 FROM host_outcomes WHERE deployment_id = ? AND host = ?", (did, host)).fetchone()
    return str(sha)


def test_list_filters(shared: dict[str, Any]) -> None:
    c = client(shared["db"])
    both = {shared["first"], shared["second"]}

    def listed(query: str) -> set[str]:
        r = c.get("/?" + query)
        assert r.status_code == 200, r.text
        return set(re.findall(r'<tr data-id="([^"]+)"', r.text))

    user = os.environ.get("SUDO_USER") or __import__("getpass").getuser()
    assert listed("") == both
    assert listed("state=done") == both and listed("state=running") == set()
    assert listed("plan=site.yml") == both and listed("plan=other.yml") == set()
    assert listed(f"user={user}") == both and listed("user=nobody-such") == set()
    assert listed("since=2000-01-01&until=2999-01-01") == both and listed("since=2999-01-01") == set()
    assert listed("op=rollback") == set()
    r = c.get("/?since=yesterday")
    assert r.status_code == 400 and "expected a date, YYYY-MM-DD" in r.text
    assert c.get("/deployments/d-nope").status_code == 404
    assert c.get("/hosts/nope").status_code == 404


def test_token_required_off_loopback_and_checked_on_every_request(
    shared: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ui", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--host 0.0.0.0 is not a loopback address" in capsys.readouterr().err
    assert main(["ui", "--host", "0.0.0.0", "--port", "0", "--token", "short"]) == 2
    assert "at least 16 characters" in capsys.readouterr().err

    token = "t0ken-for-the-ui-tests-1234"
    c = client(shared["db"], token)
    r = c.get("/")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and shared["first"] not in r.text
    assert r.headers["content-security-policy"] == CSP
    assert c.get("/metrics").status_code == 401
    assert c.get(f"/api/deployments/{shared['first']}").status_code == 401
    assert c.get(f"/deployments/{shared['first']}/events").status_code == 401
    r = c.get("/deployments/x", headers={"accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/deployments/x"
    assert c.get("/", headers={"authorization": "Bearer wrong-token-of-some-length"}).status_code == 401
    r = c.get("/", headers={"authorization": f"Bearer {token}"})
    assert r.status_code == 200 and shared["first"] in r.text
    assert c.get("/metrics", headers={"authorization": f"Bearer {token}"}).status_code == 200

    login = c.get("/login?next=/hosts/h1")
    assert login.status_code == 200
    csrf = login.cookies.get("rustle_csrf") or c.cookies.get("rustle_csrf")
    assert csrf
    bad = c.post("/login", data={"token": "nope", "csrf": csrf, "next": "/hosts/h1"})
    assert bad.status_code == 401 and "rustle_session" not in c.cookies
    assert c.post("/login", data={"token": token, "next": "/"}).status_code == 403  # no CSRF field
    ok = c.post("/login", data={"token": token, "csrf": csrf, "next": "//evil.example/"})
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # never off this server
    cookie = c.cookies.get("rustle_session")
    assert cookie == session_value(token) and token not in cookie
    assert c.get("/hosts/h1").status_code == 200  # the cookie now
    assert c.post("/logout", data={"csrf": csrf}).status_code == 303
    c.cookies.delete("rustle_session")
    assert c.get("/hosts/h1").status_code == 401


def test_without_a_token_only_loopback_host_names_are_served(shared: dict[str, Any]) -> None:
    from rustle_deploy.ui.security import LOOPBACK_NAMES

    c = TestClient(create_app(UiConfig(state_db=shared["db"], hosts=LOOPBACK_NAMES)), follow_redirects=False)
    for host in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765", "127.0.0.1"):
        assert c.get("/", headers={"host": host}).status_code == 200, host
    for host in ("evil.example:8765", "evil.example", "127.0.0.1.evil.example:8765"):
        r = c.get("/", headers={"host": host})  # DNS rebinding: a name resolved to 127.0.0.1
        assert r.status_code == 400 and shared["first"] not in r.text, host
        r = c.post(f"/deployments/{shared['second']}/rollback", headers={"host": host}, data={})
        assert r.status_code == 400 and r.headers["content-security-policy"] == CSP
    assert len(ids(shared["db"])) == 2


def test_rollback_needs_a_csrf_post_then_rolls_back_through_the_command_line_code(
    fleet: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    c = client(fleet["db"])
    second, root = fleet["second"], fleet["root"]
    sha1, sha2 = _release(fleet["db"], fleet["first"], "h1"), _release(fleet["db"], fleet["second"], "h1")

    def current(host: str) -> str:
        links = list((root / f"r{host[1]}" / "releases").glob("*/current"))
        assert len(links) == 1
        return os.readlink(links[0]).rsplit("/", 1)[1].split(".")[0]

    assert current("h1") == current("h2") == sha2
    confirm = c.get(f"/deployments/{second}/rollback?host=h1")
    assert confirm.status_code == 200
    assert sha2[:12] in _row(confirm.text, "h1") and sha1[:12] in _row(confirm.text, "h1")
    assert 'data-host="h2"' not in confirm.text
    csrf = c.cookies["rustle_csrf"]
    url = f"/deployments/{second}/rollback"
    for data, headers in (
        ({"host": "h1"}, {}),  # no token
        ({"host": "h1", "csrf": "0" * 64}, {}),  # not the cookie's
        ({"host": "h1", "csrf": csrf}, {"origin": "http://evil.example"}),  # another site
        ({"host": "h1", "csrf": csrf}, {"origin": "null"}),
    ):
        r = c.post(url, data=data, headers=headers)
        assert r.status_code == 403 and "Refused" in r.text, data
    assert len(ids(fleet["db"])) == 2 and current("h1") == sha2  # nothing happened

    r = c.post(url, data={"host": "h1", "csrf": csrf, "operator": "Ada <admin>"},
               headers={"origin": "http://testserver"})
    assert r.status_code == 200, r.text
    assert 'id="outcome">done' in r.text and "ROLLBACK RECAP" in r.text
    assert current("h1") == sha1 and current("h2") == sha2  # only the host asked for
    assert "Ada &lt;admin&gt; (web UI from testclient" in r.text
    rollback_id = ids(fleet["db"])[-1]
    with History(fleet["db"]) as h:
        dep = h.get(rollback_id, op=None)
    assert dep is not None and dep.op == "rollback" and dep.target_id == second
    assert [(x.host, x.status, x.sha256) for x in dep.hosts] == [("h1", "rollback", sha1)]
    page = c.get(f"/deployments/{second}").text
    assert rollback_id in page and "by Ada &lt;admin&gt; (web UI" in page  # recorded with who did it
    families = {f.name: f for f in text_string_to_metric_families(c.get("/metrics").text)}
    assert [s.value for s in families["rustle_rollbacks"].samples if s.name == "rustle_rollbacks_total"] == [1.0]
    release = {s.labels["host"]: s.labels["sha256"] for s in families["rustle_host_release_info"].samples}
    assert release == {"h1": sha1, "h2": sha2}


def test_metrics_scrape_parses_with_the_official_parser(shared: dict[str, Any]) -> None:
    text = client(shared["db"]).get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("rustle_deployments_total", (("op", "deploy"), ("status", "done")))] == 2
    assert samples[("rustle_host_outcomes_total", (("op", "deploy"), ("status", "activated")))] == 4
    assert samples[("rustle_deployments_running", ())] == 0
    assert samples[("rustle_deployment_duration_seconds_count", (("op", "deploy"),))] == 2
    assert samples[("rustle_host_duration_seconds_count", (("op", "deploy"),))] == 4
    assert samples[("rustle_host_duration_seconds_bucket", (("le", "+Inf"), ("op", "deploy")))] == 4
    assert families["rustle_deployment_duration_seconds"].type == "histogram"
    with closing(sqlite3.connect(shared["db"])) as db:  # two artifacts, each sent to both hosts
        sizes = [r[0] for r in db.execute("SELECT uploaded_bytes FROM host_outcomes")]
    assert len(sizes) == 4 and all(s > 1000 for s in sizes)
    assert samples[("rustle_uploaded_bytes_total", ())] == sum(sizes)
    assert samples[("rustle_host_release_info", (("binary_name", _binary(shared["db"])), ("host", "h1"),
                                                 ("sha256", _release(shared["db"], shared["second"], "h1"))))] == 1


def _binary(db_path: Path) -> str:
    with closing(sqlite3.connect(db_path)) as db:
        return str(db.execute("SELECT binary_name FROM host_outcomes LIMIT 1").fetchone()[0])


def test_live_feed_streams_snapshots_until_the_deployment_ends(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with History(db) as h:
        did = h.begin("deploy", plan_source="site.yml")
        h.pending(did, [("a", "bin", "f" * 64, "/r"), ("b", "bin", "f" * 64, "/r")])
        h.record_host(did, "a", "activated", binary_name="bin", sha256="f" * 64, duration=1.5)
        h.record_progress(did, {"a": ("done already", 3), "b": ("install <pkg>", 2)})
    page = client(db).get(f"/deployments/{did}").text
    assert 'data-live="/deployments/' in page and "running “install &lt;pkg&gt;” (2 done)" in page
    assert "done already" not in page  # a finished host shows its outcome, not its last task
    with History(db) as h:
        h.finish(did, "done")
    with client(db).stream("GET", f"/deployments/{did}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        body = "".join(r.iter_text())
    assert body.startswith("event: snapshot\ndata: {") and body.endswith("event: end\ndata: {}\n\n")
    assert '"host": "a", "status": "activated"' in body and '"host": "b", "status": "pending"' in body
    assert '"task": "install <pkg>", "tasks_done": 2' in body


OLD_SCHEMA = """
CREATE TABLE deployments (id TEXT PRIMARY KEY, created_at REAL NOT NULL, op TEXT NOT NULL, plan_source TEXT,
    plan_sha256 TEXT, status TEXT NOT NULL, target_id TEXT);
CREATE TABLE host_outcomes (deployment_id TEXT NOT NULL, host TEXT NOT NULL, status TEXT NOT NULL, binary_name TEXT,
    sha256 TEXT, previous_sha256 TEXT, remote_dir TEXT, error TEXT, updated_at REAL NOT NULL,
    PRIMARY KEY (deployment_id, host));
CREATE TABLE runs (deployment_id TEXT NOT NULL, host TEXT NOT NULL, run_id TEXT NOT NULL, exit_code INTEGER,
    ok INTEGER, changed INTEGER, failed INTEGER, skipped INTEGER, recorded_at REAL NOT NULL, PRIMARY KEY (run_id, host));
INSERT INTO deployments VALUES ('d-old', 1700000000, 'deploy', 'old.json', 'abc', 'done', NULL);
INSERT INTO host_outcomes VALUES ('d-old', 'web1', 'activated', 'bin', 'aa', 'bb', '/r', NULL, 1700000001);
"""


def test_a_database_of_the_earlier_schema_is_read_then_migrated(tmp_path: Path) -> None:
    db_path = tmp_path / "state.db"
    with closing(sqlite3.connect(db_path)) as db:
        db.executescript(OLD_SCHEMA)
    c = client(db_path)
    r = c.get("/deployments/d-old")  # the UI reads it as it is (read-only: it cannot migrate it)
    assert r.status_code == 200 and "web1" in r.text and c.get("/hosts/web1").status_code == 200
    assert c.get("/metrics").status_code == 200
    with History(db_path) as h:  # the next command adds the new columns, old rows keep theirs
        dep = h.get("d-old")
        did = h.begin("deploy", plan_source="new.json")
        h.record_host(did, "web1", "activated", sha256="cc", previous_sha256="aa", duration=2.0)
        h.finish(did, "done")
    assert dep is not None and dep.hosts[0].sha256 == "aa"
    with closing(sqlite3.connect(db_path)) as db:
        cols = {r[1] for r in db.execute("PRAGMA table_info(deployments)")}
        assert {"user", "finished_at", "context"} <= cols
        assert db.execute("SELECT user, finished_at FROM deployments WHERE id = 'd-old'").fetchone() == (None, None)
    page = c.get("/hosts/web1").text
    assert "d-old" in page and did in page
    # how d-old reached its hosts is not recorded: its rollback is left to the command line
    confirm = c.get("/deployments/d-old/rollback")
    assert confirm.status_code == 200 and 'id="confirm"' not in confirm.text
    assert "rustle-deploy --rollback d-old -i INVENTORY" in confirm.text
    refused = c.post("/deployments/d-old/rollback", data={"csrf": c.cookies.get("rustle_csrf")})
    assert refused.status_code == 409 and "recorded by an earlier version" in refused.text
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT count(*) FROM deployments WHERE op = 'rollback'").fetchone() == (0,)


def test_a_plan_file_named_ui_is_given_as_dot_slash_ui(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    site, inv = make_fleet(tmp_path / "f")
    monkeypatch.chdir(tmp_path / "f")
    (tmp_path / "f" / "ui").write_text(site.read_text())
    assert main(["./ui", "-i", str(inv), "--dry-run", "-e", "ver=1", "--output", "json"]) == 0
    assert '"dry_run": true' in capsys.readouterr().out
    assert main(["ui", "--help"]) == 0
    assert "Serve the web UI" in capsys.readouterr().out


def test_metrics_port_serves_the_history_while_a_deployment_runs(tmp_path: Path, rustle_home: Path) -> None:
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    site = tmp_path / "site.yml"
    site.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - shell: 'while [ ! -e {{ gate }} ]; do sleep 0.05; done'\n")
    (tmp_path / "inv.ini").write_text(f"h1 ansible_connection=local rustle_remote_dir={tmp_path}/r1\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gate = tmp_path / "go"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rustle_deploy.cli", str(site), "-i", str(tmp_path / "inv.ini"), "--run",
         "-e", f"gate={gate}", "--metrics-port", str(port), "--output", "json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        running = None
        deadline = time.monotonic() + 90
        while running != 1.0 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.1)
                continue
            samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
            running = samples.get("rustle_deployments_running")
        assert running == 1.0  # scraped while the deployment runs
    finally:
        gate.touch()
        out = proc.communicate(timeout=90)[0]
    assert proc.returncode == 0, out
    with pytest.raises(OSError):  # and served only while it runs
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)


def test_the_console_script_serves_and_opens_a_browser(tmp_path: Path, rustle_home: Path) -> None:
    """``rustle-deploy ui --port 0 --open``: the URL printed is served, and handed to the
    browser ($BROWSER, as the webbrowser module reads it: here a script that writes it down)."""
    import stat
    import subprocess
    import sys
    import time
    import urllib.request

    opened = tmp_path / "opened"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "ui.log"
    env = {**os.environ, "BROWSER": str(browser), "RUSTLE_STATE_DB": str(tmp_path / "none.db")}
    with open(log, "wb") as err:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "rustle-deploy"), "ui", "--port", "0", "--open"],
                                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 90
        while not (opened.exists() and opened.read_text().strip()) and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        url = opened.read_text().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", url) and url in log.read_text()
        with urllib.request.urlopen(url, timeout=30) as r:
            page = r.read().decode()
        assert "No deployments" in page and str(tmp_path / "none.db") in page  # no history yet: empty
        assert not (tmp_path / "none.db").exists()  # and reading it created nothing
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_running_deployment_is_stopped_from_the_ui_as_ctrl_c_would(tmp_path: Path, rustle_home: Path) -> None:
    import subprocess
    import sys
    import time

    site = tmp_path / "site.yml"
    site.write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                    "    - shell: 'while [ ! -e {{ gate }} ]; do sleep 0.05; done'\n")
    (tmp_path / "inv.ini").write_text(f"h1 ansible_connection=local rustle_remote_dir={tmp_path}/r1\n")
    gate = tmp_path / "go"
    db_path = rustle_home / ".rustle" / "state.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rustle_deploy.cli", str(site), "-i", str(tmp_path / "inv.ini"), "--run",
         "-e", f"gate={gate}", "--output", "json"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        c = client(db_path)
        did = None
        deadline = time.monotonic() + 90
        while did is None and time.monotonic() < deadline:
            if db_path.exists():
                with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
                    try:
                        row = db.execute("SELECT d.id FROM deployments d JOIN host_progress p ON p.deployment_id = d.id "
                                         "WHERE d.status = 'running'").fetchone()
                    except sqlite3.OperationalError:
                        row = None
                did = row[0] if row else None
            time.sleep(0.1)
        assert did is not None  # running, and its host is at its task
        assert 'id="stop"' in c.get(f"/deployments/{did}").text
        confirm = c.get(f"/deployments/{did}/stop")
        assert confirm.status_code == 200 and f"process {proc.pid} on" in confirm.text
        assert c.post(f"/deployments/{did}/stop", data={}).status_code == 403  # CSRF first
        assert proc.poll() is None
        r = c.post(f"/deployments/{did}/stop", data={"csrf": c.cookies["rustle_csrf"], "operator": "Lin"})
        assert r.status_code == 200 and f"sent an interrupt (SIGINT) to process {proc.pid}" in r.text
        out = proc.communicate(timeout=90)[0]
    finally:
        gate.touch()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    with History(db_path) as h:
        dep = h.get(did)
        stops = [d for d in h.list() if d.op == "stop"]
    assert dep is not None and dep.status == "interrupted"
    assert len(stops) == 1 and stops[0].target_id == did
    page = c.get(f"/deployments/{did}").text
    assert "stop " in page and "by Lin (web UI from testclient" in page
    r = c.post(f"/deployments/{did}/stop", data={"csrf": c.cookies["rustle_csrf"]})
    assert r.status_code == 409 and "cannot be stopped: it is not running" in r.text


def test_the_list_pages_through_what_the_filters_match(tmp_path: Path) -> None:
    """120 deployments recorded through History (60 of a.yml): 50 a page, newest first, the
    page links keep the filters, the last page has no "older" link."""
    db = tmp_path / "state.db"
    made: dict[str, list[str]] = {"a.yml": [], "b.yml": []}
    order: list[str] = []
    with History(db) as history:
        for n in range(120):
            plan = "a.yml" if n % 2 else "b.yml"
            did = history.begin("deploy", plan_source=f"/srv/{plan}", user=f"user{n % 3}")
            history.finish(did, "done")
            made[plan].append(did)
            order.append(did)
    c = client(db)

    def page(url: str) -> tuple[list[str], str | None, str | None]:
        r = c.get(url)
        assert r.status_code == 200, r.text
        older = re.search(r'<a href="([^"]+)" id="older"', r.text)
        newer = re.search(r'<a href="([^"]+)" id="newer"', r.text)
        unescape = __import__("html").unescape
        return (re.findall(r'<tr data-id="([^"]+)"', r.text), older and unescape(older[1]),
                newer and unescape(newer[1]))

    rows, older, newer = page("/")
    assert newer is None and older == "/?page=2"
    seen = rows
    rows, older, newer = page("/?page=2")
    assert newer == "/" and older == "/?page=3"
    seen += rows
    rows, older, newer = page("/?page=3")
    assert older is None and newer == "/?page=2" and len(rows) == 20
    seen += rows
    assert seen == order[::-1]  # each once, newest first
    rows, older, newer = page("/?plan=a.yml")
    assert rows == made["a.yml"][::-1][:50] and older == "/?plan=a.yml&page=2" and newer is None
    rows, older, newer = page(older)
    assert rows == made["a.yml"][::-1][50:] and older is None and newer == "/?plan=a.yml"
    rows, older, _ = page("/?plan=a.yml&user=user1")  # n odd and n % 3 == 1: 20 of them
    assert rows == [d for n, d in enumerate(made["a.yml"]) if (2 * n + 1) % 3 == 1][::-1] and older is None
    assert page("/?page=9")[0] == []
    for bad in ("0", "x", "-1"):
        r = c.get(f"/?page={bad}")
        assert r.status_code == 400 and "expected a page number" in r.text


def test_compilation_cache_hits_are_recorded_shown_and_scraped(fleet: dict[str, Any]) -> None:
    """Deploying ver=1 again finds its artifact in the compilation cache: the history counts
    the hit, the deployment page and /metrics show it; the first two compiled theirs."""
    assert deploy(fleet["root"], 1) == 1
    third = ids(fleet["db"])[-1]
    with closing(sqlite3.connect(fleet["db"])) as db:
        counts = dict((str(r[0]), (r[1], r[2])) for r in db.execute(
            "SELECT id, artifacts, artifacts_cached FROM deployments"))
        sent = db.execute("SELECT sum(uploaded_bytes) FROM host_outcomes WHERE deployment_id = ?",
                          (third,)).fetchone()[0]
    assert counts == {fleet["first"]: (1, 0), fleet["second"]: (1, 0), third: (1, 1)}
    c = client(fleet["db"])
    assert "1 (1 from the compilation cache, 0 compiled)" in c.get(f"/deployments/{third}").text
    page = c.get(f"/deployments/{fleet['first']}").text
    assert "1 (0 from the compilation cache, 1 compiled)" in page
    assert sent == 0 and "(0 bytes)" in c.get(f"/deployments/{third}").text  # the hosts held it already
    samples = {s.name: s.value for f in text_string_to_metric_families(c.get("/metrics").text) for s in f.samples}
    assert samples["rustle_artifacts_total"] == 3 and samples["rustle_artifact_cache_hits_total"] == 1


LIVE_PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: first step
      command: echo first-output
    - name: failing but ignored
      shell: "echo oops >&2; exit 4"
      ignore_errors: true
    - name: wait for the gate
      shell: "while [ ! -e {{ gate }} ]; do sleep 0.1; done"
    - name: last
      command: echo last-output
"""


def test_task_results_reach_the_ui_while_the_host_runs(tmp_path: Path, rustle_home: Path) -> None:
    """A deployment in its own process holds its host at a gate: the results before it are in
    the history, on the host's task page and in the live view before the host ends; at the end
    each result is there once, under the same numbers."""
    import subprocess
    import sys
    import time

    db = tmp_path / "state.db"
    (tmp_path / "site.yml").write_text(LIVE_PLAYBOOK)
    (tmp_path / "inv.ini").write_text(f"h1 ansible_connection=local rustle_remote_dir={tmp_path}/r1\n")
    gate = tmp_path / "gate"
    env = dict(os.environ, RUSTLE_STATE_DB=str(db))
    with open(tmp_path / "deploy.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rustle_deploy.cli", str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.ini"),
             "--run", "-e", f"gate={gate}", "--output", "json"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        from rustle_deploy.ui.data import HistoryReader

        reader = HistoryReader(db)
        deadline = time.monotonic() + 120
        did = None
        while time.monotonic() < deadline:
            try:
                rows = reader.deployments()
                did = rows[0].id if rows else None
                hosts = reader.hosts(did) if did else []
                if hosts and hosts[0].task == "wait for the gate" and len(reader.tasks(did, "h1")) == 2:
                    break
            except sqlite3.OperationalError:
                pass  # the deploy is creating the schema
            assert proc.poll() is None, (tmp_path / "deploy.log").read_text()
            time.sleep(0.1)
        else:
            raise AssertionError("the first two results never reached the history")
        assert did is not None
        first, second = reader.tasks(did, "h1")
        assert (first.seq, first.task, first.stdout) == (0, "first step", "first-output")
        assert (second.seq, second.task, second.status, second.rc, second.ignored) == \
            (1, "failing but ignored", "failed", 4, True)
        (h1,) = reader.hosts(did)
        assert h1.status == "pending" and h1.recent == [("first step", "changed"), ("failing but ignored", "failed")]
        c = client(db)
        page = c.get(f"/deployments/{did}/hosts/h1").text
        assert "first-output" in page and "oops" in page and 'data-refresh="2"' in page and "last-output" not in page
        assert "failed (ignored)</span>" in page
        page = c.get(f"/deployments/{did}").text
        assert ("running “wait for the gate” (2 done) · “first step” changed · “failing but ignored” failed"
                in page)
        live = c.get(f"/api/deployments/{did}").json()
        assert live["rows"][0]["recent"][-1] == {"task": "failing but ignored", "status": "failed"}
        assert live["rows"][0]["failed_tasks"] == []  # ignored: no failed task of the host
        gate.touch()
        assert proc.wait(120) == 0  # an ignored failure fails nothing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    tasks = reader.tasks(did, "h1")
    assert [(t.seq, t.task) for t in tasks] == [(0, "first step"), (1, "failing but ignored"),
                                               (2, "wait for the gate"), (3, "last")]
    assert tasks[0].stdout == "first-output" and tasks[3].stdout == "last-output"
    assert 'data-refresh' not in client(db).get(f"/deployments/{did}/hosts/h1").text


def test_the_key_a_deployment_used_is_recorded_as_an_absolute_path(
    tmp_path: Path, rustle_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    """The UI's rollback reaches the hosts with it from its own working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RUSTLE_STATE_DB", str(tmp_path / "state.db"))
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id").write_text("not used by a local host\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo hi\n")
    (tmp_path / "inv.ini").write_text(f"h1 ansible_connection=local rustle_remote_dir={tmp_path}/r1\n")
    assert main(["site.yml", "-i", "inv.ini", "--run", "--private-key", "keys/id", "--output", "json"]) == 0, \
        capsys.readouterr().err
    with closing(sqlite3.connect(tmp_path / "state.db")) as db:
        (context,) = db.execute("SELECT context FROM deployments").fetchone()
    assert __import__("json").loads(context) == {"inventory": str(tmp_path / "inv.ini"), "user": None,
                                                 "private_key": str(tmp_path / "keys" / "id")}


def test_metrics_tell_running_deployments_from_orphaned_ones(tmp_path: Path) -> None:
    """One deployment run by this process, one whose controller is gone: both are recorded as
    running until a command settles the second; /metrics says which is which."""
    import json
    import socket

    db_path = tmp_path / "state.db"
    with History(db_path) as h:
        alive = h.begin("deploy", plan_source="a.yml")
        gone = h.begin("deploy", plan_source="b.yml")
    dead = {"host": socket.gethostname(), "pid": os.getpid(), "start": -1}  # this pid, another start: gone
    with closing(sqlite3.connect(db_path)) as db, db:
        db.execute("UPDATE open_deployments SET owner = ? WHERE deployment_id = ?", (json.dumps(dead), gone))
    text = client(db_path).get("/metrics").text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["rustle_deployments_running"] == 2 and samples["rustle_deployments_orphaned"] == 1
    page = client(db_path).get(f"/deployments/{gone}").text
    assert 'id="orphaned"' in page and 'id="stop"' not in page
    page = client(db_path).get(f"/deployments/{alive}").text
    assert 'id="orphaned"' not in page and 'id="stop"' in page
    with History(db_path) as h:
        h.finish(alive, "done")
        h.finish(gone, "interrupted")
    text = client(db_path).get("/metrics").text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["rustle_deployments_running"] == 0 and samples["rustle_deployments_orphaned"] == 0
