"""Shared harness for the module-family tests, plus tests of ``modules/_common``.

``FakeCtx`` stands in for the executor's ModuleContext (same attribute names) so a module
function can be called directly. ``Differential`` runs a batch of cases through ansible-core
(one ``ansible-playbook`` call for the whole batch: a normal run, a second run for
idempotence, and a check-mode run) and through our module function against twin directories,
and returns both sides' results and resulting trees for comparison.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .. import oracle
from ..conftest import ENV_BIN, ORACLE_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "src" / "rustle_deploy" / "runtime"
VENV_BIN = ENV_BIN  # the environment under test's scripts (tests/conftest.py)
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))



def absent_package() -> str:
    """A package apt knows but that is not installed (cowsay on this image); the test is skipped
    when there is none."""
    for name in ("cowsay", "sl", "fortune-mod", "hello"):
        out = subprocess.run(["apt-cache", "policy", name], capture_output=True, text=True).stdout
        if "Installed: (none)" in out and "Candidate: (none)" not in out:
            return name
    pytest.skip("no known-but-absent package in the apt cache")


def runtime_module(family: str) -> Any:
    """Import ``rustle_runtime.modules.<family>`` from the source tree (runtime on sys.path)."""
    import importlib

    return importlib.import_module(f"rustle_runtime.modules.{family}")


_common = runtime_module("_common")


class FakeCtx:
    """Minimal ModuleContext: the attributes the module families use."""

    def __init__(self, *, check_mode: bool = False, diff_mode: bool = False,
                 files: dict[str, bytes] | None = None, variables: dict[str, Any] | None = None,
                 environment: dict[str, str] | None = None):
        self.check_mode = check_mode
        self.environment = dict(environment or {})
        self.diff_mode = diff_mode
        self.host = "localhost"
        self.vars = dict(variables or {})
        self.blobs = dict(files or {})
        self.warnings: list[str] = []
        self.tmpdir = "/tmp"

    def facts(self) -> dict[str, Any]:
        return {}

    def read_file(self, sha256: str) -> bytes:
        return self.blobs[sha256]

    def render(self, text: str, extra_vars: dict[str, Any] | None = None,
               overrides: dict[str, Any] | None = None) -> str:
        import jinja2

        env = jinja2.Environment(**{"trim_blocks": True, "keep_trailing_newline": True,
                                    "undefined": jinja2.StrictUndefined, **(overrides or {})})
        return env.from_string(text).render({**self.vars, **(extra_vars or {})})

    def run_command(self, args, *, shell=False, cwd=None, data=None, env=None, expand=False):
        proc = subprocess.run(args, shell=shell, cwd=cwd, input=data, env=env,
                              capture_output=True)
        return proc.returncode, proc.stdout.decode(), proc.stderr.decode()

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree(root: Path) -> dict[str, Any]:
    """Everything under ``root``: type, mode, content or link target (``root`` in them written
    ``{d}``); backups collapsed."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if name.endswith("~"):  # Ansible's backup name has a pid and a time stamp
                rel = rel.rsplit(".", 2)[0] + ".BACKUP~"
            st = p.lstat()
            mode = oct(stat.S_IMODE(st.st_mode))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(p).replace(str(root), "{d}"))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode)
            else:
                out[rel] = ("file", mode, p.read_bytes().replace(str(root).encode(), b"{d}"), st.st_nlink)
    return out


@dataclass
class Case:
    """One differential case: args may contain ``{d}`` (the case directory) and ``{src}``."""

    name: str
    args: dict[str, Any]
    setup: Callable[[Path], None] = lambda d: None
    module: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    check: bool = True


def _subst(value: Any, d: Path, src: Path) -> Any:
    if isinstance(value, str):
        return value.replace("{d}", str(d)).replace("{src}", str(src))
    if isinstance(value, dict):
        return {k: _subst(v, d, src) for k, v in value.items()}
    if isinstance(value, list):
        return [_subst(v, d, src) for v in value]
    return value


def _strip_runtime(result: dict[str, Any]) -> dict[str, Any]:
    msg = re.sub(r"/(ansible|ours)/(run|check)/c\d+", "/{d}", str(result.get("msg", "")))
    return {"changed": bool(result.get("changed")), "failed": bool(result.get("failed")),
            "skipped": bool(result.get("skipped")), "msg": msg}


_CALLBACK = """
import json
from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "rustle_collect"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({})

    def _add(self, result, **extra):
        data = dict(result._result)
        data.update(extra)
        self.plays[-1][result._task.get_name()] = data

    def v2_runner_on_ok(self, result):
        self._add(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._add(result, failed=True)

    def v2_runner_on_skipped(self, result):
        if result._result.get("false_condition") or "Conditional result was False" in str(
                result._result.get("skip_reason", "")):
            return  # the task runs on another host of the batch
        self._add(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._add(result, failed=True, unreachable=True)

    def v2_playbook_on_stats(self, stats):
        self._display.display(json.dumps({"plays": self.plays}, default=str))
"""


def run_playbook(tmp: Path, plays: list[dict[str, Any]], width: int = 2
                 ) -> list[list[dict[str, Any]]]:
    """Run plays with ansible-playbook on localhost; per play, per task, the result dict.

    Tasks are spread over ``width`` local host aliases under the ``free`` strategy so that
    ansible-core works on several cases at once; each task runs on exactly one alias.
    """
    plugins = tmp / "callback_plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "rustle_collect.py").write_text(_CALLBACK)
    hosts = [f"h{i}" for i in range(width)]
    names = []
    for p, play in enumerate(plays):
        play["hosts"] = "all"
        play["strategy"] = "free"
        row = []
        for i, task in enumerate(play["tasks"]):
            task["name"] = f"p{p}-t{i:03d} {task.get('name', '')}"
            task["when"] = f"inventory_hostname == '{hosts[i % width]}'"
            row.append(task["name"])
        names.append(row)
    inventory = tmp / "inventory.ini"
    inventory.write_text("".join(
        f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}\n"
        for h in hosts))
    pb = tmp / "pb.yml"
    pb.write_text(json.dumps(plays))
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="rustle_collect", ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_PLUGINS=str(plugins), ANSIBLE_FORKS=str(width),
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_HOME=str(tmp / "ahome"),
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_RETRY_FILES_ENABLED="False",
               ANSIBLE_PIPELINING="True", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(pb)],
        capture_output=True, text=True, env=env, cwd=tmp, timeout=ORACLE_TIMEOUT)
    start = proc.stdout.find('{"plays"')
    assert start >= 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout[start:])
    return [[play[name] for name in row] for play, row in zip(report["plays"], names, strict=False)]


class Differential:
    """Run cases under ansible-core and under our module; collect results and trees."""

    def __init__(self, tmp: Path, module: str, functions: dict[str, Callable],
                 play_vars: dict[str, Any] | None = None):
        self.tmp = tmp
        self.module = module
        self.functions = functions
        self.play_vars = play_vars or {}

    def run(self, cases: list[Case]) -> dict[str, dict[str, Any]]:
        srcdir = self.tmp / "controller_files"
        srcdir.mkdir()
        blobs: dict[str, bytes] = {}
        for case in cases:
            for rel, data in case.files.items():
                (srcdir / rel).parent.mkdir(parents=True, exist_ok=True)
                (srcdir / rel).write_bytes(data)
                blobs[sha(data)] = data
        for side in ("ansible", "ours"):
            for phase in ("run", "check"):
                for i, case in enumerate(cases):
                    d = self.tmp / side / phase / f"c{i:02d}"
                    d.mkdir(parents=True)
                    case.setup(d)
        # ansible-core: play 1 = first run, play 2 = second run, play 3 = check mode
        plays = []
        for phase, check in (("run", False), ("run", False), ("check", True)):
            tasks = []
            for i, case in enumerate(cases):
                if check and not case.check:
                    continue
                d = self.tmp / "ansible" / phase / f"c{i:02d}"
                args = _subst(case.args, d, srcdir)
                tasks.append({"name": case.name, case.module or self.module: args,
                              "ignore_errors": True, "check_mode": check, "diff": True})
            plays.append({"hosts": "localhost", "gather_facts": False,
                          "vars": self.play_vars, "tasks": tasks})
        ansible = self._ansible(plays, srcdir, len(cases))
        ansible_results = ansible["raw"]
        checked = iter(ansible_results[2])
        ansible_results[2] = [next(checked) if case.check else {} for case in cases]
        # ours: the same sequence through the module function
        ours_results: list[list[dict[str, Any]]] = []
        for phase, check in (("run", False), ("run", False), ("check", True)):
            row = []
            for i, case in enumerate(cases):
                if check and not case.check:
                    row.append({})
                    continue
                d = self.tmp / "ours" / phase / f"c{i:02d}"
                args = _subst(case.args, d, srcdir)
                if case.files:
                    args["_rustle_files"] = {str(srcdir / k) if not k.startswith("/") else k:
                                             sha(v) for k, v in case.files.items()}
                    args["_rustle_files"].update({k: sha(v) for k, v in case.files.items()})
                ctx = FakeCtx(check_mode=check, diff_mode=True, files=blobs,
                              variables=self.play_vars)
                fn = self.functions[case.module or self.module]
                row.append(fn(ctx, args))
            ours_results.append(row)
        out = {}
        for i, case in enumerate(cases):
            out[case.name] = {
                "ansible": [_strip_runtime(r[i]) for r in ansible_results],
                "ours": [_strip_runtime(r[i]) for r in ours_results],
                "ansible_raw": [r[i] for r in ansible_results],
                "ours_raw": [r[i] for r in ours_results],
                "ansible_tree": ansible["trees"][f"run/c{i:02d}"],
                "ours_tree": tree(self.tmp / "ours" / "run" / f"c{i:02d}"),
                "ansible_check_tree": ansible["trees"][f"check/c{i:02d}"],
                "ours_check_tree": tree(self.tmp / "ours" / "check" / f"c{i:02d}"),
            }
        return out


    def _ansible(self, plays: list[dict[str, Any]], srcdir: Path, count: int) -> dict[str, Any]:
        """ansible-core's side of ``run``, recorded (tests/oracle.py): keyed by the plays and
        every case directory as its set-up left it (and the controller's files); the results of
        each play's tasks and each case directory's tree after the runs. The raw results are
        kept for the content diffs and the failure messages; ``live`` compares what the tests
        compare (changed, failed, msg, the diffs' texts, the trees), as a raw result holds
        times (a backup's name)."""
        places: dict[str, str | Path] = {"{tmp}": self.tmp}
        dirs = [f"{phase}/c{i:02d}" for phase in ("run", "check") for i in range(count)]
        inputs = oracle.norm({"plays": plays, "width": 2, "callback": _CALLBACK,
                              "controller_files": _json_tree(tree(srcdir)),
                              "start": {d: _json_tree(tree(self.tmp / "ansible" / d)) for d in dirs}}, places)

        def run() -> dict[str, Any]:
            raw = run_playbook(self.tmp, json.loads(json.dumps(plays)))
            return oracle.norm({
                "raw": raw,
                "compared": [[[_strip_runtime(r), _content_diffs(r)] for r in row] for row in raw],
                "trees": {d: _json_tree(tree(self.tmp / "ansible" / d)) for d in dirs}}, places)

        result = oracle.denorm(oracle.recorded("modules_differential", inputs, run, volatile=("raw",)), places)
        result["trees"] = {d: _tree_from_json(t) for d, t in result["trees"].items()}
        return result


def _json_tree(t: dict[str, Any]) -> dict[str, Any]:
    """``tree``'s answer as JSON (a file's bytes as ``oracle.blob``)."""
    return {rel: [*v[:2], oracle.blob(v[2]), v[3]] if v[0] == "file" else list(v) for rel, v in t.items()}


def _tree_from_json(t: dict[str, Any]) -> dict[str, Any]:
    def data(b: Any) -> bytes:
        return base64.b64decode(b["base64"]) if isinstance(b, dict) else b.encode()

    return {rel: (v[0], v[1], data(v[2]), v[3]) if v[0] == "file" else tuple(v) for rel, v in t.items()}


def _content_diffs(result: dict[str, Any]) -> list[tuple[str, str]]:
    diff = result.get("diff") or []
    if isinstance(diff, dict):
        diff = [diff]
    return [(d.get("before"), d.get("after")) for d in diff
            if isinstance(d.get("before"), str) and (d.get("before") or d.get("after"))]


def assert_same_diff(outcome: dict[str, Any]) -> None:
    """The text diffs (before/after content) of every run match ansible-core's.

    Failed results are left out: ansible-core's action plugins attach the diff they computed
    before the module failed, ours report the failure alone.
    """
    for run, (a, o) in enumerate(zip(outcome["ansible_raw"], outcome["ours_raw"], strict=True)):
        if a.get("failed"):
            continue
        assert _content_diffs(o) == _content_diffs(a), f"run {run}"


def assert_same(outcome: dict[str, Any], compare_msg: bool = False) -> None:
    """changed/failed of all three runs, and the resulting trees, must match ansible-core."""
    for run, (a, o) in enumerate(zip(outcome["ansible"], outcome["ours"], strict=False)):
        keys = ("changed", "failed", "msg") if compare_msg else ("changed", "failed")
        assert {k: a[k] for k in keys} == {k: o[k] for k in keys}, (
            f"run {run}: ansible={outcome['ansible_raw'][run]!r} "
            f"ours={outcome['ours_raw'][run]!r}")
    assert outcome["ours_tree"] == outcome["ansible_tree"]
    assert outcome["ours_check_tree"] == outcome["ansible_check_tree"]


def needs_ansible() -> None:
    if not (VENV_BIN / "ansible-playbook").exists():
        pytest.skip("ansible-core is not installed in this environment")


# --------------------------------------------------------------------------- _common tests

@pytest.mark.parametrize("mode,is_dir,start", [
    ("u+rwx,g-w", False, 0o664), ("u=rw,g=r,o=", False, 0o777), ("a+X", False, 0o644),
    ("a+X", True, 0o644), ("g+s,o+t", True, 0o755), ("+x", False, 0o600), ("u=g", False, 0o640),
    ("o-rwx", False, 0o777), ("ug=rwx,o=rx", False, 0),
])
def test_symbolic_modes_match_ansible(tmp_path, mode, is_dir, start):
    from ansible.module_utils.basic import AnsibleModule

    target = tmp_path / "t"
    if is_dir:
        target.mkdir()
    else:
        target.write_text("x")
    os.chmod(target, start)
    st = os.stat(target)
    expected = AnsibleModule._symbolic_mode_to_octal(st, mode)
    assert _common.symbolic_mode_to_octal(st, mode) == expected


def test_parse_mode_forms_and_errors(tmp_path):
    assert _common.parse_mode("0640") == 0o640
    assert _common.parse_mode("640") == 0o640
    assert _common.parse_mode(0o600) == 0o600
    with pytest.raises(_common.ModuleFail, match="octal or symbolic"):
        _common.parse_mode("u+q", os.stat(tmp_path))
    with pytest.raises(_common.ModuleFail, match="only permission info"):
        _common.parse_mode("177777")


def test_atomic_write_keeps_mode_and_leaves_no_temp(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    os.chmod(target, 0o600)
    _common.atomic_write(str(target), b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_atomic_write_failed_validation_leaves_target(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    with pytest.raises(_common.ModuleFail, match="failed to validate"):
        _common.atomic_write(str(target), b"new", validate="false %s", ctx=FakeCtx())
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_backup_name_is_ansibles(tmp_path):
    target = tmp_path / "f"
    target.write_text("old")
    name = _common.backup_local(FakeCtx(), str(target))
    assert name.startswith(str(target) + f".{os.getpid()}.") and name.endswith("~")
    assert Path(name).read_text() == "old"


def test_module_wrapper_turns_failures_into_results():
    @_common.module
    def broken(ctx, args):
        _common.fail("boom", rc=3)

    assert broken(FakeCtx(), {}) == {"failed": True, "msg": "boom", "rc": 3, "changed": False}


def test_boolean_accepts_ansible_spellings():
    assert _common.boolean("yes") is True and _common.boolean("off") is False
    with pytest.raises(_common.ModuleFail, match="not a valid boolean"):
        _common.boolean("maybe", "force")


@pytest.mark.parametrize(("family", "name", "args", "msg"), [
    ("git", "git", {}, "missing required arguments: dest, repo"),
    ("git", "git", {"repo": "https://example.invalid/x.git"}, "missing required arguments: dest"),
    ("net", "get_url", {"dest": "/tmp/x"}, "missing required arguments: url"),
    ("net", "get_url", {}, "missing required arguments: dest, url"),
    ("archive", "unarchive", {"dest": "/tmp/x"}, "missing required arguments: src"),
    ("archive", "unarchive", {}, "missing required arguments: dest, src"),
])
def test_missing_required_arguments_are_named_as_ansible_does(family, name, args, msg):
    fn = runtime_module(family).MODULES[name]
    assert fn(FakeCtx(), args) == {"failed": True, "msg": msg, "changed": False}


def test_remove_values_follows_ansible_cores_rules() -> None:
    """ansible-core 2.19's ``remove_values``/``_list_no_log_values``: no minimum length, nested
    values flattened, numbers holding a secret replaced whole, keys/booleans/None kept."""
    values = _common.no_log_values("user", {"password": ["ab", {"k": 42}], "ssh_key_passphrase": True,
                                            "name": "x"})
    assert values == {"ab", "42"}  # a boolean no_log value hides nothing, as ansible-core's
    assert _common.no_log_values("get_url", {"password": "", "url_password": None}) == set()
    assert _common.no_log_values("copy", {"content": "s3cret"}) == set()  # copy's action strips it
    result = {"ab": "ab", "msg": "grab 42", "n": 1423, "ok": True, "none": None, "l": ["xabx", 42.0]}
    assert _common.remove_values(result, values) == {
        "ab": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER", "msg": "gr******** ********", "n": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER",
        "ok": True, "none": None, "l": ["x********x", "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"]}
    from ansible.module_utils.common import parameters  # the oracle, ansible-core's own functions

    spec = {"password": {"no_log": True}, "ssh_key_passphrase": {"no_log": True}, "name": {}}
    assert parameters._list_no_log_values(spec, {"password": ["ab", {"k": 42}], "ssh_key_passphrase": True,
                                                  "name": "x"}) == values
    assert parameters.remove_values(result, values) == _common.remove_values(result, values)
