"""Bridged modules run on the host: Ansible's module protocol inside the one run of the plan.

Every test compiles a real plan and runs it over the local connection through ``cli.main``.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ..conftest import _end_kept_bridge_servers
from .conftest import BridgeRun, write_plan

ANSIBLE_MODULE = '''#!/usr/bin/python
import time
from ansible.module_utils.basic import AnsibleModule
def main():
    m = AnsibleModule(argument_spec=dict(name=dict(type='str', required=True),
                                         sleep=dict(type='float', default=0),
                                         secret=dict(type='str', no_log=True)),
                      supports_check_mode=True)
    time.sleep(m.params['sleep'])
    if m.params['name'] == 'warn':
        m.warn('careful')
        m.deprecate('old thing', version='9.9')
    if m.params['name'] == 'fail':
        m.fail_json(msg='asked to fail', detail=1)
    if m.params['name'] == 'exit':
        raise SystemExit(3)
    m.exit_json(changed=not m.check_mode, greeting='hello ' + m.params['name'], check=m.check_mode,
                diff=dict(before='a\\n', after='b\\n') if m._diff else None)
main()
'''
WANT_JSON = '''#!/bin/sh
# WANT_JSON
name=$(sed -e 's/.*"name": "\\([^"]*\\)".*/\\1/' "$1")
echo "junk before"
printf '{"changed": true, "msg": "hi %s", "args_file": "%s"}\\n' "$name" "$1"
'''
OLD_STYLE = '''#!/bin/sh
. "$1"
if [ "$_ansible_check_mode" = "True" ]; then checked=true; else checked=false; fi
echo "{\\"changed\\": false, \\"msg\\": \\"old $name\\", \\"checked\\": $checked}"
'''


def _library(directory: Path, files: dict[str, str]) -> None:
    (directory / "library").mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / "library" / name).write_text(text)


def test_ansible_core_modules_run_in_the_same_run(tmp_path: Path, bridge: BridgeRun) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.txt").write_text("hello\n")
    plan = write_plan(tmp_path / "p", [
        {"name": "find", "module": "ansible.builtin.find", "args": {"paths": str(data)}, "register": "found"},
        {"name": "slurp", "module": "slurp", "args": {"src": str(data / "a.txt")}, "register": "slurped"},
        {"name": "use", "module": "debug", "args": {"msg": "{{ found.matched }} {{ slurped.content | b64decode }}"}},
        # registered as ansible-core's strategy registers it: without the module's invocation
        {"name": "invocation", "module": "debug", "args": {"msg": "{{ found.invocation is defined }}"}},
        {"name": "missing", "module": "find", "args": {}, "ignore_errors": True},
        {"name": "secret", "module": "slurp", "args": {"src": str(data / "a.txt")}, "no_log": True},
        {"name": "tmp", "module": "tempfile", "args": {"path": str(data), "suffix": ".x"}},
    ])
    res = bridge.run(plan)
    assert res["find"]["status"] == "ok" and res["find"]["matched"] == 1
    assert res["find"]["files"][0]["path"] == str(data / "a.txt")
    assert res["find"]["bridge"] == "ansible.builtin.find"
    assert res["use"]["msg"] == "1 hello\n"
    assert res["invocation"]["msg"] is False
    assert res["missing"]["status"] == "failed" and res["missing"]["msg"] == "missing required arguments: paths"
    assert "content" not in res["secret"] and res["secret"]["censored"]
    assert res["tmp"]["status"] == "changed" and res["tmp"]["path"].endswith(".x")
    assert Path(res["tmp"]["path"]).is_file()


def test_check_mode_diff_warnings_and_failures_of_a_library_module(tmp_path: Path, bridge: BridgeRun) -> None:
    _library(tmp_path / "p", {"greet.py": ANSIBLE_MODULE})
    plan = write_plan(tmp_path / "p", [
        {"name": "plain", "module": "greet", "args": {"name": "you"}},
        {"name": "warn", "module": "greet", "args": {"name": "warn"}},
        {"name": "fail", "module": "greet", "args": {"name": "fail"}, "ignore_errors": True},
        {"name": "exit", "module": "greet", "args": {"name": "exit"}, "ignore_errors": True},
        {"name": "bad arg", "module": "greet", "args": {"name": "x", "nope": 1}, "ignore_errors": True},
        {"name": "uri", "module": "uri", "args": {"url": "http://127.0.0.1:9/"}},
    ])
    res = bridge.run(plan, "--check", "--diff")
    assert res["plain"]["status"] == "ok" and res["plain"]["greeting"] == "hello you" and res["plain"]["check"] is True
    assert res["plain"]["diff"] == {"before": "a\n", "after": "b\n"}
    assert res["warn"]["warnings"] == ["careful"]
    assert res["warn"]["deprecations"][0]["msg"] == "old thing"
    assert res["fail"]["status"] == "failed" and res["fail"]["msg"] == "asked to fail" and res["fail"]["detail"] == 1
    assert res["exit"]["status"] == "failed"
    assert res["exit"]["msg"].startswith("Module result deserialization failed: No start of json char found")
    assert res["exit"]["rc"] == 3
    assert res["bad arg"]["msg"].startswith("Unsupported parameters for (greet) module: nope.")
    # ansible-core's uri action plugin does not support check mode: Ansible skips it
    assert res["uri"]["status"] == "skipped" and res["uri"]["msg"] == "This action (uri) does not support check mode."


def test_script_modules_get_want_json_and_key_value_argument_files(tmp_path: Path, bridge: BridgeRun) -> None:
    _library(tmp_path / "p", {"hello.sh": WANT_JSON, "oldie": OLD_STYLE})
    plan = write_plan(tmp_path / "p", [
        {"name": "json", "module": "hello", "args": {"name": "world"}},
        {"name": "old", "module": "ansible.legacy.oldie", "args": {"name": "timer"}},
    ])
    res = bridge.run(plan, "--check")
    assert res["json"]["status"] == "changed" and res["json"]["msg"] == "hi world"
    assert res["json"]["bridge"] == "ansible.legacy.hello"
    assert not Path(res["json"]["args_file"]).exists()  # the task's private directory is removed
    assert res["old"]["msg"] == "old timer" and res["old"]["checked"] is True


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_binary_module(tmp_path: Path, bridge: BridgeRun) -> None:
    src = tmp_path / "bin.c"
    src.write_text('#include <stdio.h>\nint main(int c, char **v) {'
                   ' printf("{\\"changed\\": false, \\"argc\\": %d}\\n", c); return 0; }\n')
    (tmp_path / "p" / "library").mkdir(parents=True)
    subprocess.run(["cc", "-o", str(tmp_path / "p" / "library" / "native_mod"), str(src)], check=True)
    res = bridge.run(write_plan(tmp_path / "p", [{"name": "bin", "module": "native_mod", "args": {}}]))
    assert res["bin"]["status"] == "ok" and res["bin"]["argc"] == 2  # the module, then its args file


# a module that says which process it is (its /proc stat line: pid and start time), then sleeps an hour
SLEEPER = '''#!/usr/bin/python
import time
from ansible.module_utils.basic import AnsibleModule
m = AnsibleModule(argument_spec=dict(mark=dict(type='path', required=True)))
with open(m.params['mark'] + '.tmp', 'w') as f:
    f.write(open('/proc/self/stat').read())
__import__('os').rename(m.params['mark'] + '.tmp', m.params['mark'])
time.sleep(3600)
m.exit_json(changed=False)
'''


def _alive(stat_line: str) -> bool:
    """Whether the process a /proc stat line was read from still runs (not a new one with its pid)."""
    pid, rest = stat_line.split(" ", 1)
    try:
        now = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields, then = now.rsplit(")", 1)[1].split(), rest.rsplit(")", 1)[1].split()
    return fields[19] == then[19] and fields[0] != "Z"  # the same start time, not a zombie


@pytest.mark.parametrize("fork", [True, False])
def test_a_task_timeout_kills_the_module_and_the_next_one_runs(tmp_path: Path, bridge: BridgeRun, fork: bool) -> None:
    _library(tmp_path / "p", {"greet.py": ANSIBLE_MODULE, "sleeper.py": SLEEPER})
    mark = tmp_path / "sleeper.stat"
    # no timing assertion: the module would sleep an hour, so the run ending proves the timeout cut
    # it, and the module's process, when it got as far as saying which it is, is gone
    plan = write_plan(tmp_path / "p", [
        {"name": "slow", "module": "sleeper", "args": {"mark": str(mark)}, "timeout": 2, "ignore_errors": True},
        {"name": "next", "module": "greet", "args": {"name": "y"}},
    ])
    res = bridge.run(plan, host_vars={"rustle_bridge_fork": fork})
    assert res["slow"]["status"] == "failed" and res["slow"]["msg"] == "Task failed: Timed out after 2 second(s)."
    assert res["next"]["greeting"] == "hello y"
    if mark.exists():
        assert not _alive(mark.read_text()), "the timed-out module still runs"


def test_environment_reaches_the_module(tmp_path: Path, bridge: BridgeRun) -> None:
    _library(tmp_path / "p", {"envmod.py": ANSIBLE_MODULE.replace(
        "greeting='hello ' + m.params['name']", "greeting=__import__('os').environ.get('GREETING')")})
    plan = write_plan(tmp_path / "p", [
        {"name": "env", "module": "envmod", "args": {"name": "x"}, "environment": {"GREETING": "salut"}},
        {"name": "no env", "module": "envmod", "args": {"name": "x"}},
    ])
    res = bridge.run(plan)
    assert res["env"]["greeting"] == "salut" and res["no env"]["greeting"] is None


@pytest.mark.parametrize("version", ["3.8", "3.13"])
def test_bridged_modules_run_on_other_host_pythons(tmp_path: Path, bridge: BridgeRun, version: str) -> None:
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python3"))
    if not found:
        pytest.skip(f"no Python {version} here")
    (tmp_path / "d").mkdir()
    plan = write_plan(tmp_path / "p", [
        {"name": "stat", "module": "find", "args": {"paths": str(tmp_path / "d")}},
        {"name": "getent", "module": "getent", "args": {"database": "passwd", "key": "root"}},
    ])
    res = bridge.run(plan, host_vars={"ansible_python_interpreter": found[0]})
    assert res["stat"]["status"] == "ok" and res["stat"]["matched"] == 0
    assert res["getent"]["status"] == "ok"
    assert sys.executable != found[0]


def test_verbose_output_names_the_bridged_modules(tmp_path: Path, bridge: BridgeRun) -> None:
    plan = write_plan(tmp_path / "p", [
        {"name": "look", "module": "find", "args": {"paths": str(tmp_path)}},
        {"name": "fast", "module": "stat", "args": {"path": str(tmp_path)}},
    ])
    code, out, err = bridge.main(str(plan), "-i", str(bridge.inventory()), "--run", "--output", "text", "-v")
    assert code == 0, err
    assert "bridge: ansible.builtin.find runs through the module bridge (Python AnsibleModule module from " \
           "ansible-core 2.19" in err + out
    assert "look [bridge: ansible.builtin.find]" in out
    assert "fast [bridge" not in out and "bridge: ansible.builtin.stat" not in err + out


WHOAMI = """#!/usr/bin/python
import os, pwd, tempfile
from ansible.module_utils.basic import AnsibleModule
m = AnsibleModule(argument_spec=dict())
m.exit_json(user=pwd.getpwuid(os.geteuid()).pw_name, tmp_owner=pwd.getpwuid(os.stat(m.tmpdir).st_uid).pw_name)
"""
WHOAMI_SH = """#!/bin/sh
# WANT_JSON
test -r "$1" || exit 3
echo "{\\"user\\": \\"$(id -un)\\"}"
"""


def test_become_root_and_another_user_run_the_module_as_that_user(tmp_path: Path, bridge: BridgeRun) -> None:
    """As built-in modules do (runtime/become.py), a bridged module runs as its become_user,
    though that user cannot read the artifact: what it needs reaches it on stdin."""
    import os
    import pwd

    if os.geteuid() != 0 or not shutil.which("sudo"):
        pytest.skip("runs as root: becomes nobody through sudo without a password")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    python = "/usr/bin/python3"  # the venv's lives under /root, which nobody cannot enter
    if subprocess.run(["sudo", "-n", "-u", "nobody", python, "-c", "pass"], capture_output=True).returncode:
        pytest.skip("no Python that nobody can start")
    plan_dir = tmp_path / "p"
    _library(plan_dir, {"whoami.py": WHOAMI, "whoami_sh": WHOAMI_SH})
    plan = write_plan(plan_dir, [
        {"name": "as root", "module": "getent", "args": {"database": "passwd", "key": "root"}, "become": True},
        {"name": "root whoami", "module": "whoami", "args": {}, "become": True},
        {"name": "nobody whoami", "module": "whoami", "args": {}, "become": True, "become_user": "nobody"},
        {"name": "nobody script", "module": "whoami_sh", "args": {}, "become": True, "become_user": "nobody"},
        {"name": "nobody getent", "module": "getent", "args": {"database": "passwd", "key": "nobody"},
         "become": True, "become_user": "nobody"},
    ])
    res = bridge.run(plan, host_vars={"ansible_python_interpreter": python})
    assert res["as root"]["status"] == "ok"
    assert res["root whoami"]["user"] == "root"
    assert (res["nobody whoami"]["user"], res["nobody whoami"]["tmp_owner"]) == ("nobody", "nobody")
    assert res["nobody script"]["user"] == "nobody"
    assert res["nobody getent"]["status"] == "ok"
    # the zip of bridge/lib/ sent to the become user is made once per content and kept
    kept = list((bridge.tmp / "remote" / "bridge").glob("lib-*.zip"))
    assert len(kept) == 1 and oct(kept[0].stat().st_mode & 0o777) == "0o600"
    inode = kept[0].stat().st_ino
    again = bridge.run(plan, "--rebuild", host_vars={"ansible_python_interpreter": python})
    assert again["nobody whoami"]["user"] == "nobody"
    assert list((bridge.tmp / "remote" / "bridge").glob("lib-*.zip")) == kept
    assert kept[0].stat().st_ino == inode  # read, not made again


def test_the_fork_server_is_started_early_only_for_tasks_that_will_use_it() -> None:
    """The run starts the fork server before its first task only when one of the host's bridged
    Python tasks runs without become (with become, each runs in a new Python through sudo) and
    is sure to run (no when, not in a rescue, not a handler): a skipped one starts nothing."""
    from rustle_deploy.runtime_index import runtime_root

    sys.path.insert(0, str(runtime_root()))
    try:
        from rustle_runtime.modules.bridge import _unbecome_task  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(runtime_root()))
    fqcns = {"ansible.builtin.find"}

    def plan(*tasks: dict[str, object], host: str = "h1") -> dict[str, object]:
        return {"plays": [{"hosts": [host], "tasks": list(tasks)}]}

    find = {"bridge": "ansible.builtin.find"}
    assert _unbecome_task(plan(find), "h1", fqcns)
    assert not _unbecome_task(plan(dict(find, become=True)), "h1", fqcns)
    assert _unbecome_task(plan(dict(find, become="{{ as_root }}")), "h1", fqcns)
    assert not _unbecome_task(plan({"block": [{"module": "ping"}], "rescue": [find]}), "h1", fqcns)
    assert _unbecome_task(plan({"block": [{"module": "ping"}], "always": [find]}), "h1", fqcns)
    assert not _unbecome_task(plan(dict(find, when=["false"])), "h1", fqcns)
    assert not _unbecome_task(plan({"block": [find], "when": ["x is defined"]}), "h1", fqcns)
    assert not _unbecome_task({"plays": [{"hosts": ["h1"], "tasks": [], "handlers": [find]}]}, "h1", fqcns)
    assert not _unbecome_task(plan(find, host="h2"), "h1", fqcns)
    assert not _unbecome_task(plan({"bridge": "ansible.legacy.mine"}), "h1", fqcns)  # a script module


def test_uri_uploads_a_controller_file_as_another_become_user(tmp_path: Path, bridge: BridgeRun) -> None:
    """uri's ``src`` and a form-multipart ``filename`` (controller files, embedded) reach a module
    that runs as ``nobody``, who cannot read the run's directory: they travel with the module on
    stdin, into that user's private directory, and the module is given their paths there."""
    import http.server
    import json
    import os
    import pwd
    import threading

    if os.geteuid() != 0 or not shutil.which("sudo"):
        pytest.skip("runs as root: becomes nobody through sudo without a password")
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user 'nobody'")
    python = "/usr/bin/python3"  # the venv's lives under /root, which nobody cannot enter
    if subprocess.run(["sudo", "-n", "-u", "nobody", python, "-c", "pass"], capture_output=True).returncode:
        pytest.skip("no Python that nobody can start")
    bodies: list[bytes] = []

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps({"size": len(bodies[-1])}).encode())

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/post"
        plan_dir = tmp_path / "p"
        (plan_dir / "files").mkdir(parents=True)
        (plan_dir / "files" / "body.json").write_text('["from the controller"]\n')
        (plan_dir / "files" / "form.txt").write_text("form file\n")
        plan = write_plan(plan_dir, [
            {"name": "src", "module": "uri", "become": True, "become_user": "nobody",
             "args": {"url": url, "method": "POST", "src": "body.json", "body_format": "json",
                      "return_content": True}},
            {"name": "multipart", "module": "uri", "become": True, "become_user": "nobody",
             "args": {"url": url, "method": "POST", "body_format": "form-multipart",
                      "body": {"f": {"filename": "form.txt"}, "t": "text"}}},
        ])
        res = bridge.run(plan, host_vars={"ansible_python_interpreter": python})
    finally:
        server.shutdown()
        server.server_close()
    assert (res["src"]["status"], res["multipart"]["status"]) == ("ok", "ok"), res
    assert bodies[0] == b'["from the controller"]\n'
    import base64

    assert b"form.txt" in bodies[1] and base64.b64encode(b"form file\n") in bodies[1] and b"@@" not in bodies[1]


def test_facts_a_module_returns_are_variables_of_their_own_name(tmp_path: Path, bridge: BridgeRun) -> None:
    """As INJECT_FACTS_AS_VARS: getent's ``getent_passwd`` is a variable (ansible-core's getent
    target asserts it), at the facts' precedence: a play variable of the same name wins."""
    plan = write_plan(tmp_path / "p", [
        {"name": "getent", "module": "getent", "args": {"database": "passwd", "key": "root"}},
        {"name": "group", "module": "getent", "args": {"database": "group", "key": "root"}},
        {"name": "use", "module": "debug",
         "args": {"msg": "{{ getent_passwd.root[4] }} {{ ansible_facts.getent_group.root[1] }} {{ getent_group }}"}},
    ], play_vars={"getent_group": "play wins"})
    res = bridge.run(plan)
    assert res["use"]["msg"] == "/root 0 play wins"


def _kept_servers(remote: Path) -> dict[Path, int]:
    """Each kept fork server under ``remote``: its socket and the pid it greets a run with."""
    import json
    import socket

    out = {}
    for path in sorted((remote / "bridge").glob("*")):
        if path.suffix == ".log":
            continue
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(path))
            with sock.makefile("rb") as reader:
                out[path] = json.loads(reader.readline())["pid"]
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def short_bridge(rustle_home: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], BridgeRun]]:
    """BridgeRuns (one per call) each in a directory of its own with a short path, removed at the
    end: a unix socket path must stay short, and tmp_path on a pytest-xdist worker
    (.../popen-gw0/...) makes the kept server's socket path too long, where the server is then
    (rightly) not kept. Each test of keeping ends the servers it kept (--cleanup); any left over
    (a failed test) are ended here."""
    made: list[Path] = []

    def new() -> BridgeRun:
        made.append(Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp")))
        return BridgeRun(made[-1], capsys)

    yield new
    for path in made:
        _end_kept_bridge_servers(path)
        shutil.rmtree(path, ignore_errors=True)


def _ends(pid: int) -> None:
    """Wait (up to 30 s) for the kept server ``pid`` to end as soon as it has answered --cleanup
    (reaped by init); fails if it does not."""
    for _ in range(300):
        if not _alive(pid):
            return
        time.sleep(0.1)
    assert not _alive(pid)


def test_a_kept_fork_server_serves_the_next_runs_until_cleanup_ends_it(short_bridge: Callable[[], BridgeRun]) -> None:
    """``rustle_bridge_keep``: the first run leaves its fork server (ansible.module_utils.basic
    imported) listening in the remote directory, the next run's modules are forked from that same
    process, with that run's working directory, umask and environment; a timeout still kills the
    module; --cleanup ends the server and removes its socket."""
    bridge = short_bridge()
    tmp_path = bridge.tmp
    _library(tmp_path / "p", {"greet.py": ANSIBLE_MODULE, "where.py": WHERE_MODULE})
    plan = write_plan(tmp_path / "p", [
        {"name": "where", "module": "where", "args": {"path": str(tmp_path / "made")}},
        {"name": "slow", "module": "greet", "args": {"name": "x", "sleep": 30}, "timeout": 1, "ignore_errors": True},
        {"name": "next", "module": "greet", "args": {"name": "y"}, "environment": {"RUSTLE_TEST_VAR": "v"}},
    ])
    remote = tmp_path / "remote"
    first = bridge.run(plan, host_vars={"rustle_bridge_keep": 120})
    servers = _kept_servers(remote)
    assert len(servers) == 1 and oct((remote / "bridge").stat().st_mode & 0o777) == "0o700"
    (pid,) = servers.values()
    assert _alive(pid)
    second = bridge.run(plan, host_vars={"rustle_bridge_keep": 120})
    assert _kept_servers(remote) == servers  # the same process served the second run
    for res in (first, second):
        assert res["where"]["cwd"] == str(Path.cwd()) and res["where"]["umask"] == oct(_umask())
        assert res["where"]["grandparent"] == pid  # forked by the run's session, which the server forked
        assert res["slow"]["msg"] == "Task failed: Timed out after 1 second(s)."
        assert res["next"]["greeting"] == "hello y"
    # a run that goes away while its module runs (an interrupted controller) takes the module with it
    (socket_path,) = servers
    slow = _start_module_and_leave(socket_path, tmp_path, {"name": "slow", "sleep": 60})
    for _ in range(300):
        if not _alive(slow):
            break
        time.sleep(0.1)
    assert not _alive(slow)
    assert _kept_servers(remote) == servers  # and the server serves the next run
    inv = bridge.inventory(rustle_bridge_keep=120)
    code, out, err = bridge.main("--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err + out
    assert not remote.exists()
    _ends(pid)


def _start_module_and_leave(socket_path: Path, tmp_path: Path, args: dict[str, object]) -> int:
    """Ask the kept server at ``socket_path`` to run the library module greet, then hang up while
    it runs; the module's pid."""
    import json
    import os
    import socket

    out = tmp_path / "left"
    out.mkdir()
    params = json.dumps({"ANSIBLE_MODULE_ARGS": args})
    request = {"params": params, "fqn": "ansible.legacy.greet", "profile": "legacy", "env": dict(os.environ),
               "cwd": str(tmp_path), "umask": 0o022, "out": str(out / "stdout"), "err": str(out / "stderr")}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(socket_path))
        with sock.makefile("rb") as reader:
            assert json.loads(reader.readline())["ready"] is True
            sock.sendall((json.dumps(request) + "\n").encode())
            pid = int(json.loads(reader.readline())["pid"])
            assert _alive(pid)
    return pid


def test_the_fork_server_is_kept_by_default_serves_runs_at_once_and_zero_turns_it_off(
        short_bridge: Callable[[], BridgeRun]) -> None:
    """Without ``rustle_bridge_keep`` the server is kept (KEEP_SECONDS); a run is served while
    another run's connection is open (each run has a session of its own); ``0`` keeps none."""
    import socket

    run, off = short_bridge(), short_bridge()
    for each in (run, off):
        _library(each.tmp / "p", {"where.py": WHERE_MODULE})
    plan = write_plan(run.tmp / "p", [{"name": "where", "module": "where", "args": {"path": str(run.tmp)}}])
    first = run.run(plan)
    servers = _kept_servers(run.tmp / "remote")
    assert len(servers) == 1
    (socket_path, pid), = servers.items()
    assert first["where"]["grandparent"] == pid and "warnings" not in first["where"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as held:  # another run, still connected
        held.settimeout(30)
        held.connect(str(socket_path))
        assert b'"ready": true' in held.recv(4096)
        second = run.run(plan)
    assert second["where"]["grandparent"] == pid and second["where"]["parent"] != first["where"]["parent"]
    plan = write_plan(off.tmp / "p", [{"name": "where", "module": "where", "args": {"path": str(off.tmp)}}])
    res = off.run(plan, host_vars={"rustle_bridge_keep": 0})
    assert res["where"]["changed"] is False and not (off.tmp / "remote" / "bridge").exists()
    code, out, err = run.main("--cleanup", "-i", str(run.inventory()), "--output", "json")
    assert code == 0, err + out
    _ends(pid)


def test_a_keep_value_that_is_not_seconds_is_warned_about_and_keeps_nothing(tmp_path: Path, bridge: BridgeRun) -> None:
    _library(tmp_path / "p", {"greet.py": ANSIBLE_MODULE})
    plan = write_plan(tmp_path / "p", [{"name": "one", "module": "greet", "args": {"name": "a"}},
                                       {"name": "two", "module": "greet", "args": {"name": "b"}}])
    res = bridge.run(plan, host_vars={"rustle_bridge_keep": "a while"})
    assert res["one"]["greeting"] == "hello a" and res["two"]["greeting"] == "hello b"
    assert res["one"]["warnings"] == ["rustle_bridge_keep='a while' is not a number of seconds (written plainly, "
                                      "not a template): the fork server is not kept"]
    assert "warnings" not in res["two"]  # said once per run
    assert not (tmp_path / "remote" / "bridge").exists()


def _umask() -> int:
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    return mask


WHERE_MODULE = '''#!/usr/bin/python
import os
from ansible.module_utils.basic import AnsibleModule
m = AnsibleModule(argument_spec=dict(path=dict(type='path')))
mask = os.umask(0)
with open('/proc/%d/stat' % os.getppid()) as fh:
    grandparent = int(fh.read().rsplit(')', 1)[1].split()[1])
m.exit_json(changed=False, cwd=os.getcwd(), umask=oct(mask), parent=os.getppid(), grandparent=grandparent)
'''



def test_a_host_python_of_another_version_compiles_the_bridged_code_once(tmp_path: Path, bridge: BridgeRun,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The artifact's bytecode is the controller's Python's. On a host Python of another version
    the agent runs the artifact from its unpacked copy (docs/remote.md), so the fork server
    imports ``bridge/lib/`` from a directory where Python keeps its own bytecode: the second
    run's server (a server per run here) compiles nothing of ansible-core's code again."""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    other = next((p for v in ("3.12", "3.13", "3.10", "3.9") if v != mine
                  for p in sorted(glob.glob(f"/root/.pyenv/versions/{v}.*/bin/python3"))), None)
    if other is None:
        pytest.skip("no Python of another version here")
    tag = subprocess.run([other, "-c", "import sys; print(sys.implementation.cache_tag)"], capture_output=True,
                         text=True, check=True).stdout.strip()
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)  # the host's environment reaches the server
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)  # make test sets it for the suite's own Pythons
    plan = write_plan(tmp_path / "p", [{"name": "look", "module": "find", "args": {"paths": str(tmp_path / "p")}}])
    found = []
    for _ in range(2):
        res = bridge.run(plan, host_vars={"ansible_python_interpreter": other, "rustle_bridge_keep": 0})
        assert res["look"]["status"] == "ok" and res["look"]["matched"] >= 1
        found.append({p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in
                      (tmp_path / "remote" / "unpacked").glob(f"*/bridge/lib/ansible/**/__pycache__/*.{tag}.pyc")})
    assert any(p.name == f"basic.{tag}.pyc" for p in found[0])
    assert any(p.name == f"find.{tag}.pyc" for p in found[0])  # the module itself, compiled by its child
    assert found[0] == found[1]
