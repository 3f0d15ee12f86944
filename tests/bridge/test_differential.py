"""Differential test of the module bridge: the same tasks through rustle-deploy and ansible-playbook.

Each tool gets its own copy of the same target tree (files with the same contents and times, a
known_hosts file, fragments to assemble, a yum repos dir) and a local HTTP server on 127.0.0.1
for ``uri``. Every task registers its result; a last task writes them all as JSON (the same
``copy`` + ``to_json`` in both tools), and the two files are compared task by task: result,
``changed``, ``failed``, messages. Some tasks run in check mode (the ``check_mode`` keyword), and
modules that cannot work on this machine are kept: their failures must be the same failures.

Normalised before comparing, and why: the target root (each tool has its own); names that
``tempfile`` draws at random; ``atime``/``ctime``/``inode`` (reading and copying change them) and
the inode generation ``stat`` calls ``version``;
``elapsed`` (``uri`` timing); the ``invocation`` Ansible adds only at higher verbosity.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import BridgeRun, write_plan

pytestmark = pytest.mark.ansible

KEY = "example.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
# Every module of the cases runs through the bridge: those built into the runtime (stat,
# lineinfile, file, and any the runtime implements later) are sent to it with
# RUSTLE_BRIDGE_MODULES, so the count of bridged modules does not shrink as built-ins grow.


def _cases(port: int) -> list[dict[str, Any]]:
    """The tasks, over the target root ``{T}`` (substituted per tool): 28 ansible.builtin modules."""
    url = f"http://127.0.0.1:{port}"
    check = {"check_mode": True}
    return [
        {"module": "ansible.builtin.find", "args": {"paths": "{T}/data", "recurse": True, "patterns": "*.txt"}},
        {"module": "find", "args": {"paths": "{T}/data", "contains": "wor"}},
        {"module": "find", "args": {"paths": "{T}/nope"}},
        {"module": "find", "args": {}},
        {"module": "slurp", "args": {"src": "{T}/data/a.txt"}},
        {"module": "slurp", "args": {"src": "{T}/nope"}},
        {"module": "tempfile", "args": {"path": "{T}/data", "suffix": ".tmp"}},
        {"module": "tempfile", "args": {"path": "{T}", "state": "directory"}, **check},
        {"module": "getent", "args": {"database": "passwd", "key": "root"}},
        {"module": "getent", "args": {"database": "passwd", "key": "no-such-user-here"}},
        {"module": "known_hosts", "args": {"path": "{T}/known_hosts", "name": "example.test", "key": KEY}},
        {"module": "known_hosts", "args": {"path": "{T}/known_hosts", "name": "example.test", "key": KEY}},
        {"module": "known_hosts", "args": {"path": "{T}/known_hosts", "name": "example.test", "state": "absent"},
         **check},
        {"module": "uri", "args": {"url": f"{url}/index.json", "return_content": True}},
        {"module": "uri", "args": {"url": f"{url}/missing"}},
        {"module": "uri", "args": {"url": f"{url}/missing", "status_code": 404}},
        {"module": "uri", "args": {"url": f"{url}/index.json"}, **check},
        {"module": "assemble", "args": {"src": "{T}/frags", "dest": "{T}/assembled"}},
        {"module": "assemble", "args": {"src": "{T}/frags", "dest": "{T}/assembled"}},
        {"module": "yum_repository", "args": {"name": "rustle", "description": "rustle test", "baseurl": url,
                                              "reposdir": "{T}/repos"}},
        {"module": "yum_repository", "args": {"name": "other", "description": "x", "baseurl": url,
                                              "reposdir": "{T}/repos"}, **check},
        {"module": "deb822_repository", "args": {"name": "rustle", "types": "deb", "uris": url, "suites": "stable",
                                                 "components": "main"}, **check},
        {"module": "apt_repository", "args": {"repo": f"deb {url} stable main", "install_python_apt": False},
         **check},
        {"module": "apt_key", "args": {"id": "0xDEADBEEFDEADBEEF", "state": "absent"}, **check},
        {"module": "rpm_key", "args": {"key": "DEADBEEF", "state": "absent"}, **check},
        {"module": "dnf5", "args": {"name": "rustle-nothing"}, **check},
        {"module": "dpkg_selections", "args": {"name": "bash", "selection": "hold"}, **check},
        {"module": "debconf", "args": {"name": "tzdata"}},
        {"module": "pip", "args": {"name": "pip", "executable": str(Path(sys.executable).with_name("pip"))}, **check},
        {"module": "expect", "args": {"command": "true", "responses": {"x": "y"}}},
        {"module": "subversion", "args": {"repo": "file:///nonexistent/svn", "dest": "{T}/svn"}, **check},
        {"module": "sysvinit", "args": {"name": "rustle-no-such-service", "state": "started"}, **check},
        {"module": "hostname", "args": {"name": socket.gethostname()}, **check},
        {"module": "iptables", "args": {"chain": "INPUT", "source": "127.0.0.9", "jump": "ACCEPT"}, **check},
        {"module": "mount_facts", "args": {"devices": ["/dev/nonexistent*"]}},
        {"module": "package_facts", "args": {"manager": "rpm"}},
        {"module": "service_facts", "args": {}},
        {"module": "stat", "args": {"path": "{T}/data/a.txt", "get_checksum": True}},
        {"module": "lineinfile", "args": {"path": "{T}/data/a.txt", "line": "added"}},
        {"module": "lineinfile", "args": {"path": "{T}/data/a.txt", "line": "again"}, **check},
        {"module": "file", "args": {"path": "{T}/data/b.log", "mode": "0600"}},
        {"module": "ping", "args": {"data": "crash"}},  # an exception: 2.19's "Task failed: Module failed: boom"
        {"module": "nocheck", "args": {"name": "x"}, **check},  # library/: a module without check mode
        {"module": "nocheck", "args": {"name": "x", "bogus": 1}},
    ]


NOCHECK = """#!/usr/bin/python
from ansible.module_utils.basic import AnsibleModule
m = AnsibleModule(argument_spec=dict(name=dict(type='str', required=True)), supports_check_mode=False)
m.exit_json(changed=True, name=m.params['name'])
"""


def _tree(root: Path) -> None:
    """The target tree, identical for both tools (contents and modification times)."""
    for rel, text in {"data/a.txt": "hello\n", "data/b.log": "world\n", "data/sub/c.txt": "deep\n",
                      "frags/01": "one\n", "frags/02": "two\n", "known_hosts": ""}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (root / "repos").mkdir()
    for d in ("data", "data/sub", "frags"):
        os.utime(root / d, (1_700_000_000, 1_700_000_000))


class _Handler(http.server.SimpleHTTPRequestHandler):
    server_version = "rustle-test"
    sys_version = ""

    def date_time_string(self, timestamp: float | None = None) -> str:
        return "Thu, 01 Jan 2026 00:00:00 GMT"

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def web(tmp_path: Path) -> Iterator[int]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.json").write_text('{"hello": "world"}\n')
    os.utime(root / "index.json", (1_700_000_000, 1_700_000_000))
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a: _Handler(*a, directory=str(root)))  # type: ignore[misc]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()
    thread.join()


def _subst(value: Any, root: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{T}", str(root))
    if isinstance(value, dict):
        return {k: _subst(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, root) for v in value]
    return value


def _tasks(cases: list[dict[str, Any]], root: Path, out: Path) -> list[dict[str, Any]]:
    tasks = []
    for i, case in enumerate(cases):
        task = {"name": f"t{i:02d} {case['module']}", "module": case["module"], "args": _subst(case["args"], root),
                "register": f"r{i}", "ignore_errors": True}
        if case.get("check_mode"):
            task["check_mode"] = True
        tasks.append(task)
    names = ", ".join(f"'r{i}': r{i}" for i in range(len(cases)))
    tasks.append({"name": "write results", "module": "copy",
                  "args": {"dest": str(out), "content": "{{ {" + names + "} | to_json }}"}})
    return tasks


_DROP = frozenset({"atime", "ctime", "inode", "version", "elapsed", "invocation"})
_RANDOM = re.compile(r"ansible\.[A-Za-z0-9_]{8}")


def _normal(value: Any, root: Path) -> Any:
    if isinstance(value, dict):
        return {_normal(k, root): _normal(v, root) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list):
        return [_normal(v, root) for v in value]
    if isinstance(value, str):
        return _RANDOM.sub("ansible.RANDOM", value.replace(str(root), "{T}"))
    return value


def _ansible(tmp: Path, tasks: list[dict[str, Any]]) -> None:
    play = [{"hosts": "localhost", "gather_facts": False,
             "tasks": [{"name": t["name"], t["module"]: t["args"],
                        **{k: t[k] for k in ("register", "ignore_errors", "check_mode") if k in t}} for t in tasks]}]
    (tmp / "site.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RUSTLE_"))}
    env.update(HOME=str(tmp / "ahome"), ANSIBLE_LOCAL_TEMP=str(tmp / "atmp"), ANSIBLE_REMOTE_TEMP=str(tmp / "rtmp"),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
                           "-e", f"ansible_python_interpreter={sys.executable}", str(tmp / "site.yml")],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_bridged_modules_give_ansibles_results(tmp_path: Path, bridge: BridgeRun, web: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _cases(web)
    modules = {c["module"].rsplit(".", 1)[-1] for c in cases} - {"nocheck"}
    assert len(modules) >= 25, sorted(modules)
    results = {}
    for tool in ("ansible", "rustle"):
        root = tmp_path / tool / "target"
        _tree(root)
        out = tmp_path / tool / "results.json"
        tasks = _tasks(cases, root, out)
        library = tmp_path / tool / ("library" if tool == "ansible" else "plan/library")
        library.mkdir(parents=True)
        (library / "nocheck.py").write_text(NOCHECK)
        if tool == "ansible":
            _ansible(tmp_path / tool, tasks)
        else:
            monkeypatch.setenv("RUSTLE_BRIDGE_MODULES", ",".join(sorted(modules)))
            events = bridge.run(write_plan(tmp_path / tool / "plan", tasks))
            assert [n for n, e in events.items() if not e.get("bridge")] == ["write results"], events
        raw = json.loads(out.read_text())
        results[tool] = {k: _normal(v, root) for k, v in raw.items()}
    mismatches = []
    for i, case in enumerate(cases):
        a, r = results["ansible"][f"r{i}"], results["rustle"][f"r{i}"]
        if a != r:
            mismatches.append(f"r{i} {case['module']}:\n  ansible: {json.dumps(a, sort_keys=True)[:1500]}\n"
                              f"  rustle:  {json.dumps(r, sort_keys=True)[:1500]}")
    assert not mismatches, "\n".join(mismatches)
    # the targets were changed alike (tempfile names aside)
    for rel in ("data/a.txt", "assembled", "repos/rustle.repo", "known_hosts"):
        assert (tmp_path / "ansible" / "target" / rel).read_text() == (tmp_path / "rustle" / "target" / rel).read_text()
    assert shutil.which("true")
