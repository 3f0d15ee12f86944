"""Tasks run with the identity they ask for: ``become_user`` over the real ``sudo`` (and ``su``).

A built artifact runs in a subprocess as root, from a private (0700) directory, with an
interpreter that ``nobody`` can start; its tasks become ``nobody``. Every module, not only
external commands, must then act as ``nobody``: files it creates are owned by ``nobody``, and
where ``nobody`` may not write the task fails as it does under Ansible. Registered results,
check mode, diff, ``no_log``, loops and timeouts work through the child process that does it.
The same cases run under ``ansible-playbook`` (local connection) as the reference.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..conftest import ORACLE_TIMEOUT
from .conftest import RunResult, build_test_artifact, make_plan, run_artifact, task
from .test_modules_support import _CALLBACK, VENV_BIN

USER = "nobody"


def _python_for(user: str) -> str | None:
    """An interpreter ``user`` can start through sudo (the venv's lives under /root)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3", "/bin/python3"):
        if os.path.exists(candidate) and subprocess.run(
                ["sudo", "-n", "-u", user, candidate, "-c", "pass"], capture_output=True).returncode == 0:
            return candidate
    return None


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to become 'nobody' without a password"
    if not shutil.which("sudo"):
        return "sudo is not installed"
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return "no user 'nobody'"
    if _python_for(USER) is None:
        return "no Python that 'nobody' can start"
    return None


_SKIP = _skip_reason()
sudo = pytest.mark.skipif(_SKIP is not None, reason=_SKIP or "")
PY = "" if _SKIP else (_python_for(USER) or "")

STATIC = b"static content\n"
TEMPLATE = b"hello {{ who }} from {{ inventory_hostname }}\n"
FILES = {hashlib.sha256(STATIC).hexdigest(): STATIC, hashlib.sha256(TEMPLATE).hexdigest(): TEMPLATE}
FILE_MAP = {"static.txt": hashlib.sha256(STATIC).hexdigest(), "hello.j2": hashlib.sha256(TEMPLATE).hexdigest()}
BECOME = {"become": True, "become_user": USER}


@pytest.fixture
def place() -> Iterator[Path]:
    """A directory every user can reach: ``ro/`` (root's, 0755) and ``rw/`` (nobody's)."""
    base = Path(tempfile.mkdtemp(prefix="rustle-become-pyz-", dir="/tmp"))  # not the runner's rustle-become-PID-*
    base.chmod(0o755)
    info = pwd.getpwnam(USER)
    for side in ("ours", "ansible"):
        (base / side / "ro").mkdir(parents=True)
        (base / side / "rw").mkdir()
        os.chown(base / side / "rw", info.pw_uid, info.pw_gid)
        for d in (base / side, base / side / "ro", base / side / "rw"):
            d.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def run(tmp_path: Path):
    """Build an artifact into a private directory and run it as root with an interpreter
    ``nobody`` can start; ``nobody`` cannot read the artifact itself."""
    private = tmp_path / "private"
    private.mkdir(mode=0o700)

    def _run(tasks: list[dict[str, Any]], *run_args: str, python: str = PY, **plan_kw: Any) -> RunResult:
        plan = make_plan(tasks, play_vars={"who": "world"}, **plan_kw)
        artifact = build_test_artifact(private, plan, FILES)
        artifact.chmod(0o700)
        assert subprocess.run(["sudo", "-n", "-u", USER, "cat", str(artifact)],
                              capture_output=True).returncode != 0, "the artifact must stay private"
        return run_artifact(artifact, "run", "--host", "h1", *run_args, python=python, cwd=tmp_path)

    return _run


def owners(root: Path) -> dict[str, tuple[str, str, str]]:
    """Every path under ``root``: (type, owner, mode)."""
    out = {}
    for p in sorted(root.rglob("*")):
        kind = "dir" if p.is_dir() else "file"
        out[str(p.relative_to(root))] = (kind, pwd.getpwuid(p.lstat().st_uid).pw_name,
                                         oct(p.lstat().st_mode & 0o777))
    return out


# The cases of issue 11: each module into a directory nobody may not write (ro) and into one
# it owns (rw). (name, module, args with {d} for the side's directory, embeds files)
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("file touch ro", "file", {"path": "{d}/ro/touched", "state": "touch"}),
    ("file directory ro", "file", {"path": "{d}/ro/dir", "state": "directory"}),
    ("copy src ro", "copy", {"src": "static.txt", "dest": "{d}/ro/copied"}),
    ("copy content ro", "copy", {"content": "inline\n", "dest": "{d}/ro/inline"}),
    ("template ro", "template", {"src": "hello.j2", "dest": "{d}/ro/rendered"}),
    ("lineinfile ro", "lineinfile", {"path": "{d}/ro/lines", "line": "one", "create": True}),
    ("file touch rw", "file", {"path": "{d}/rw/touched", "state": "touch"}),
    ("file directory rw", "file", {"path": "{d}/rw/dir", "state": "directory"}),
    ("copy src rw", "copy", {"src": "static.txt", "dest": "{d}/rw/copied"}),
    ("copy content rw", "copy", {"content": "inline\n", "dest": "{d}/rw/inline"}),
    ("template rw", "template", {"src": "hello.j2", "dest": "{d}/rw/rendered"}),
    ("lineinfile rw", "lineinfile", {"path": "{d}/rw/lines", "line": "one", "create": True}),
]


def _subst(args: dict[str, Any], d: Path) -> dict[str, Any]:
    return {k: v.replace("{d}", str(d)) if isinstance(v, str) else v for k, v in args.items()}


def our_tasks(d: Path, **extra: Any) -> list[dict[str, Any]]:
    out = []
    for name, module, args in CASES:
        kw = dict(BECOME, ignore_errors=True, **extra)
        if "src" in args:
            kw["files"] = FILE_MAP
        out.append(task(module, _subst(args, d), name=name, **kw))
    return out


def _head(msg: str) -> str:
    """A failure message without ansible-core 2.19's wrapper and the OS error's detail."""
    msg = msg.removeprefix("Task failed: Module failed: ")
    return re.split(r": \[Errno |\.$", msg)[0]


@sudo
def test_file_modules_act_as_the_become_user(run, place: Path) -> None:
    d = place / "ours"
    r = run(our_tasks(d))
    assert r.rc == 0, r.stdout + r.stderr
    msgs = {name: r.result(name)["msg"] for name, _, _ in CASES if name.endswith(" ro")}
    for name in msgs:
        assert r.result(name)["status"] == "failed", (name, r.result(name))
    assert msgs["file touch ro"].startswith("Error, could not touch target: [Errno 13] Permission denied")
    assert msgs["file directory ro"].startswith(f"There was an issue creating {d}/ro/dir as requested: "
                                                "[Errno 13] Permission denied")
    assert msgs["copy src ro"] == msgs["copy content ro"] == msgs["template ro"] == f"Destination {d}/ro not writable"
    assert msgs["lineinfile ro"].startswith(f"The destination directory '{d}/ro' is not writable by the "
                                            "current user: [Errno 13] Permission denied")
    for name, _, _ in CASES:
        if name.endswith(" rw"):
            assert r.result(name)["status"] == "changed", (name, r.result(name))
    assert owners(d / "ro") == {}
    assert owners(d / "rw") == {
        "copied": ("file", USER, "0o644"), "dir": ("dir", USER, "0o755"), "inline": ("file", USER, "0o644"),
        "lines": ("file", USER, "0o644"), "rendered": ("file", USER, "0o644"), "touched": ("file", USER, "0o644"),
    }
    assert (d / "rw" / "rendered").read_text() == "hello world from h1\n"
    assert (d / "rw" / "copied").read_bytes() == STATIC


def run_ansible(tmp: Path, d: Path, *, python: str) -> dict[str, dict[str, Any]]:
    """The CASES under ansible-playbook with a local connection; the result of each task."""
    srcdir = tmp / "controller"
    srcdir.mkdir(parents=True)
    (srcdir / "static.txt").write_bytes(STATIC)
    (srcdir / "hello.j2").write_bytes(TEMPLATE)
    plugins = tmp / "callback_plugins"
    plugins.mkdir()
    (plugins / "rustle_collect.py").write_text(_CALLBACK)
    tasks = []
    for name, module, args in CASES:
        args = _subst(args, d)
        if "src" in args:
            args["src"] = str(srcdir / args["src"])
        tasks.append({"name": name, module: args, "ignore_errors": True})
    play = {"hosts": "h1", "gather_facts": False, "become": True, "become_user": USER,
            "vars": {"who": "world"}, "tasks": tasks}
    (tmp / "pb.yml").write_text(json.dumps([play]))
    (tmp / "inventory.ini").write_text(f"h1 ansible_connection=local ansible_python_interpreter={python}\n")
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="rustle_collect", ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=str(plugins), ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_HOME=str(tmp / "ahome"), ANSIBLE_DEPRECATION_WARNINGS="False",
               ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_PIPELINING="True")
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "-i", "inventory.ini", "pb.yml"],
                          capture_output=True, text=True, env=env, cwd=tmp, timeout=ORACLE_TIMEOUT)
    start = proc.stdout.find('{"plays"')
    assert start >= 0, proc.stdout + proc.stderr
    return dict(json.loads(proc.stdout[start:])["plays"][0])


@sudo
@pytest.mark.ansible
def test_file_modules_as_the_become_user_match_ansible(run, place: Path, tmp_path: Path) -> None:
    if not (VENV_BIN / "ansible-playbook").exists():
        pytest.skip("ansible-core is not installed in this environment")
    theirs = run_ansible(tmp_path / "ansible", place / "ansible", python=PY)
    r = run(our_tasks(place / "ours"))
    for name, _, _ in CASES:
        ours, ref = r.result(name), theirs[name]
        assert bool(ours["status"] == "failed") == bool(ref.get("failed")), (name, ours, ref)
        assert bool(ours.get("changed")) == bool(ref.get("changed")), (name, ours, ref)
        if ref.get("failed"):
            mine = _head(ours["msg"]).replace(str(place / "ours"), "D")
            assert mine == _head(ref["msg"]).replace(str(place / "ansible"), "D"), name
    assert owners(place / "ours") == owners(place / "ansible")


@sudo
def test_check_mode_and_diff_through_the_child(run, place: Path) -> None:
    d = place / "ours"
    (d / "rw" / "lines").write_text("zero\n")
    os.chown(d / "rw" / "lines", pwd.getpwnam(USER).pw_uid, -1)
    r = run(our_tasks(d), "--check", "--diff")
    assert r.rc == 0, r.stdout + r.stderr
    for name in ("copy src rw", "template rw", "lineinfile rw", "file touch rw"):
        assert r.result(name)["status"] == "changed", (name, r.result(name))
    assert r.result("template rw")["diff"][0]["after"] == "hello world from h1\n"
    assert r.result("lineinfile rw")["diff"][0]["after"] == "zero\none\n"
    assert sorted(p.name for p in (d / "rw").iterdir()) == ["lines"], "check mode changed nothing"
    assert (d / "rw" / "lines").read_text() == "zero\n"


@sudo
def test_registered_results_loops_and_no_log_through_the_child(run, place: Path) -> None:
    d = place / "ours"
    secret = "s3cr3t-value"
    r = run([
        task("command", {"_raw_params": "id -un"}, name="who", register="whoami", **BECOME),
        task("file", {"path": f"{d}/rw/{{{{ item }}}}", "state": "touch"}, name="loop", loop=["a", "b"],
             when=["whoami.stdout == 'nobody'"], **BECOME),
        task("copy", {"content": secret, "dest": f"{d}/ro/secret"}, name="hidden failure", no_log=True,
             ignore_errors=True, register="hidden", **BECOME),
        task("copy", {"content": secret, "dest": f"{d}/rw/secret"}, name="hidden", no_log=True, **BECOME),
        task("assert", {"that": ["hidden is failed", "'not writable' in hidden.msg"]}, name="check", **BECOME),
        task("template", {"src": "hello.j2", "dest": f"{d}/rw/from-registered"}, name="vars",
             files=FILE_MAP, vars={"who": "{{ whoami.stdout }}"}, **BECOME),
    ])
    assert r.rc == 0, r.stdout + r.stderr
    assert r.result("who")["stdout"] == USER
    assert [i["status"] for i in r.result("loop")["results"]] == ["changed", "changed"]
    assert owners(d / "rw")["a"][1] == owners(d / "rw")["b"][1] == USER
    assert r.result("hidden failure")["status"] == "failed" and "censored" in r.result("hidden failure")
    assert secret not in r.stdout and secret not in r.stderr
    assert (d / "rw" / "secret").read_text() == secret
    assert r.result("check")["status"] == "ok"
    assert (d / "rw" / "from-registered").read_text() == "hello nobody from h1\n"
    assert owners(d / "rw")["from-registered"][1] == USER


@sudo
def test_become_user_that_is_the_current_user_and_su(run, place: Path) -> None:
    d = place / "ours"
    r = run([
        task("file", {"path": f"{d}/rw/as-root", "state": "touch"}, name="root", become=True, become_user="root"),
        task("file", {"path": f"{d}/rw/via-su", "state": "touch"}, name="su", become=True, become_user=USER,
             become_method="su"),
        task("command", {"_raw_params": "id -un"}, name="su command", become=True, become_user=USER,
             become_method="su"),
        task("file", {"path": f"{d}/rw/never", "state": "touch"}, name="doas", become=True, become_user=USER,
             become_method="doas", ignore_errors=True),
    ])
    assert r.rc == 0, r.stdout + r.stderr
    assert owners(d / "rw")["as-root"][1] == "root"
    assert owners(d / "rw")["via-su"][1] == USER
    assert r.result("su command")["stdout"] == USER
    assert "without a password prompt" in r.result("doas")["msg"]
    assert not (d / "rw" / "never").exists()


@sudo
def test_a_timeout_ends_the_child_and_the_next_task_gets_a_new_one(run) -> None:
    r = run([
        task("command", {"_raw_params": "sleep 30"}, name="slow", timeout=1, ignore_errors=True, **BECOME),
        task("command", {"_raw_params": "id -un"}, name="after", **BECOME),
    ])
    assert r.rc == 0, r.stdout + r.stderr
    assert r.result("slow")["msg"] == "Task failed: Timed out after 1 second(s)." and r.result("slow")["timedout"]["period"] == 1
    assert r.result("after")["stdout"] == USER
    if shutil.which("pgrep"):
        left = subprocess.run(["pgrep", "-u", USER, "-f", "sleep 30"], capture_output=True, text=True).stdout
        assert not left.strip(), "the timed-out task's processes are gone"


@sudo
def test_an_interpreter_the_become_user_cannot_start_is_a_clear_failure(run, place: Path) -> None:
    import sys

    if subprocess.run(["sudo", "-n", "-u", USER, sys.executable, "-c", "pass"], capture_output=True).returncode == 0:
        pytest.skip(f"{USER} can start {sys.executable}")
    r = run([task("file", {"path": f"{place}/ours/rw/x", "state": "touch"}, name="t", ignore_errors=True, **BECOME)],
            python=sys.executable)
    msg = r.result("t")["msg"]
    assert f"cannot start {sys.executable} as '{USER}'" in msg, msg
    assert "ansible_python_interpreter" in msg
    assert not (place / "ours" / "rw" / "x").exists()


@sudo
def test_sudo_that_needs_a_password_is_a_clear_failure(place: Path, tmp_path: Path) -> None:
    """The runtime itself runs as nobody, whose sudo asks for a password."""
    plan = make_plan([task("file", {"path": f"{place}/ours/rw/x", "state": "touch"}, name="t",
                           become=True, ignore_errors=True)])
    shared = place / "artifact"
    shared.mkdir(mode=0o755)
    artifact = build_test_artifact(shared, plan)
    artifact.chmod(0o644)
    proc = subprocess.run(["sudo", "-n", "-u", USER, PY, str(artifact), "run", "--host", "h1"],
                          capture_output=True, text=True, timeout=60, cwd="/")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    (result,) = [e for e in events if e["event"] == "task_result"]
    assert "become: sudo needs a password to run as 'root' on this host" in result["msg"], result
    assert "NOPASSWD" in result["msg"]


class _ParentContext:
    """The parent's ModuleContext as become.py's request handlers use it."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files

    def read_file(self, sha256: str) -> bytes:
        return {hashlib.sha256(d).hexdigest(): d for d in FILES.values()}[sha256]

    vars: dict[str, Any] = {}  # not a VarScope: no controller-side template sources

    def render(self, text: str, extra: dict[str, Any], overrides: dict[str, Any] | None = None) -> str:
        return f"rendered {text!r} with {sorted(extra)} {overrides}"


def test_a_child_gets_only_its_own_files_and_templates() -> None:
    """The child runs as a less privileged user: its requests are checked, not trusted."""
    import importlib

    become = importlib.import_module("rustle_runtime.become")  # the runtime is on sys.path (runtime_module)
    ModuleFailure = importlib.import_module("rustle_runtime.context").ModuleFailure  # noqa: N806
    ctx = _ParentContext({"hello.j2": FILE_MAP["hello.j2"]})
    assert become._task_file(ctx, FILE_MAP["hello.j2"]) == TEMPLATE
    with pytest.raises(ModuleFailure, match="does not belong to this task"):
        become._task_file(ctx, FILE_MAP["static.txt"])
    own = TEMPLATE.decode()
    rendered = become._render(ctx, own, {"template_path": "hello.j2", "template_destpath": "/d"},
                              {"lstrip_blocks": True})
    assert rendered.startswith(f"rendered {own!r} with ['ansible_managed', 'template_destpath', ")
    assert rendered.endswith("{'lstrip_blocks': True}")  # the template_* variables derived by the parent
    for text, extra, overrides in [
            ("{{ lookup('pipe', 'id') }}", {}, {}), (STATIC.decode(), {}, {}),
            (own, {"template_path": "{{ lookup('pipe', 'id') }}"}, {}), (own, {"who": "x"}, {}),
            (own, {"template_host": "h1"}, {}), (own, {"template_path": 1}, {}), (None, {}, {}),
            (own, {}, {"finalize": "x"}), (own, {}, {"trim_blocks": ["x"]})]:
        with pytest.raises(ModuleFailure, match="render request"):
            become._render(ctx, text, extra, overrides)
