"""--notify: real deployments (local hosts) POST to real HTTP receivers on loopback, one that
answers, one that fails before it answers, one that hangs; bad URLs are usage errors."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

pytestmark = pytest.mark.usefixtures("rustle_home")

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - command: echo hi
    - shell: exit 3
      when: fail_me is defined
"""


def fleet(root: Path) -> list[str]:
    root.mkdir(parents=True, exist_ok=True)
    (root / "site.yml").write_text(PLAYBOOK)
    (root / "inv.ini").write_text(
        f"h1 ansible_connection=local rustle_remote_dir={root}/r1\n"
        f"h2 ansible_connection=local rustle_remote_dir={root}/r2 fail_me=1\n"
    )
    return [str(root / "site.yml"), "-i", str(root / "inv.ini"), "--run", "--output", "json"]


class Receiver:
    def __init__(self, fail_first: int = 0, hang: bool = False) -> None:
        self.docs: list[dict[str, Any]] = []
        self.attempts = 0
        self.fail_first = fail_first
        self.hang = hang
        self.release = threading.Event()
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.attempts += 1
                receiver.arrived.set()
                if receiver.hang:
                    receiver.release.wait(60)
                    return
                if receiver.attempts <= receiver.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                assert self.headers["Content-Type"] == "application/json"
                receiver.docs.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"


@contextmanager
def receiving(**kw: Any) -> Iterator[Receiver]:
    r = Receiver(**kw)
    thread = threading.Thread(target=r.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield r
    finally:
        r.release.set()
        r.server.shutdown()
        r.server.server_close()
        thread.join(10)


def test_start_each_host_and_end_are_posted_with_the_documented_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    with receiving() as one, receiving() as two:
        code = main([*fleet(tmp_path), "--notify", one.url, "--notify", two.url])
        out, err = capsys.readouterr()
    assert code == 1  # h2's task fails: the deployment still ran, and said so
    did = json.loads(out)["deployment_id"]
    assert one.docs == two.docs
    docs = one.docs
    assert [d["event"] for d in docs] == ["deployment_start", "host_outcome", "host_outcome", "deployment_end"]
    assert all(d["schema"] == "rustle-deploy.notify/1" and d["deployment_id"] == did and d["op"] == "deploy"
               and isinstance(d["text"], str) and did in d["text"] for d in docs)
    assert docs[0]["hosts"] == ["h1", "h2"] and docs[0]["plan"].endswith("site.yml") and docs[0]["user"]
    outcome = {d["host"]: d for d in docs[1:3]}
    assert outcome["h1"]["ok"] is True and outcome["h1"]["status"] == "activated"
    assert outcome["h2"]["ok"] is False and outcome["h2"]["recap"]["failed"] == 1
    assert docs[3]["status"] == "done" and docs[3]["failed_hosts"] == ["h2"] and docs[3]["hosts"] == 2
    assert docs[3]["ok"] is False and "failed: h2" in docs[3]["text"]
    assert "not delivered" not in err


def test_a_failing_receiver_gets_retries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with receiving(fail_first=2) as r:
        main([*fleet(tmp_path), "--notify", r.url])
        err = capsys.readouterr().err
    assert [d["event"] for d in r.docs][0] == "deployment_start" and len(r.docs) == 4
    assert r.attempts == 4 + 2
    assert "not delivered" not in err


def test_a_hanging_receiver_neither_fails_nor_holds_the_deployment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    (rustle_home / ".rustle").mkdir()
    config = rustle_home / ".rustle" / "config.toml"
    with receiving(hang=True) as r:
        config.write_text(f'[notify]\nurls = ["{r.url}"]\ntimeout_secs = 0.5\n')
        code = main(fleet(tmp_path))
        out, err = capsys.readouterr()
        # the deployment is over, though the receiver never answered (it answers nothing
        # until the test lets it, below): it did get the deployment's first request
        assert r.arrived.wait(30) and not r.release.is_set() and r.docs == []
    assert code == 1
    assert f"--notify {r.url}: " in err and "notification(s) not delivered" in err
    did = json.loads(out)["deployment_id"]
    db_path = rustle_home / ".rustle" / "state.db"
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT status FROM deployments WHERE id = ?", (did,)).fetchone() == ("done",)
        assert db.execute("SELECT count(*) FROM host_outcomes WHERE deployment_id = ? AND status = 'activated'",
                          (did,)).fetchone() == (2,)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://"])
def test_a_bad_notify_url_is_a_usage_error_that_touches_nothing(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path
) -> None:
    assert main([*fleet(tmp_path), "--notify", url]) == 2
    assert f"--notify {url}: expected an http:// or https:// URL" in capsys.readouterr().err
    assert not (rustle_home / ".rustle" / "state.db").exists()
    assert not (tmp_path / "r1").exists()


def test_bad_notify_config_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[notify]\nurls = "http://127.0.0.1:1/"\n')
    assert main([*fleet(tmp_path), "--config", str(config)]) == 2
    assert "notify.urls" in capsys.readouterr().err
    config.write_text('[notify]\nurls = ["http://127.0.0.1:1/"]\ntimeout_secs = 0\n')
    assert main([*fleet(tmp_path), "--config", str(config)]) == 2
    assert "notify.timeout_secs" in capsys.readouterr().err
