"""--format native end to end: the real rustle-runner, on localhost and over a real sshd.

Every run here is compared with the pyz format on the same plan: the files the two leave behind
and the recaps must be the same (the Python runtime is the reference for the runner).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import REPO, make_plan
from ..integration.test_cli import tree
from .conftest import retarget

WORKLOAD = REPO / "benchmarks" / "workload"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip().startswith("{") else {}), err


def seeded(root: Path) -> Path:
    """A fresh benchmark host root: what benchmarks/hosts.py seeds."""
    root.mkdir(parents=True)
    (root / "stale.txt").write_text("stale\n")
    (root / "legacy.cfg").write_text("# legacy\nworkers = 1\nmode = old\n")
    return root


def workload(tmp_path: Path, fmt: str) -> tuple[Path, Path, Path]:
    """The benchmark workload's plan for one local host named bench-0000, in its own root."""
    root = seeded(tmp_path / fmt / "root")
    inv = tmp_path / fmt / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"bench-0000": {
        "ansible_connection": "local", "bench_root": str(root), "bench_role": "web",
        "rustle_remote_dir": str(tmp_path / fmt / "remote")}}}}))
    return WORKLOAD / "plan.json", inv, root


def files(root: Path) -> dict[str, Any]:
    """``tree(root)`` with ``root`` itself written ROOT in links and files (each format has its own root)."""
    out = {}
    for key, value in tree(root).items():
        if value[0] == "link":
            value = ("link", value[1].replace(str(root), "ROOT"))
        elif value[0] == "file":
            value = (*value[:2], value[2].replace(str(root).encode(), b"ROOT"))
        out[key] = value
    return out


def workload_for(tmp_path: Path, names: list[str]) -> Path:
    """The benchmark workload's plan for these inventory hosts."""
    plan = tmp_path / "plan" / "plan.json"
    plan.parent.mkdir()
    for sub in ("files", "templates"):
        (plan.parent / sub).symlink_to(WORKLOAD / sub)
    plan.write_text(json.dumps(retarget(json.loads((WORKLOAD / "plan.json").read_text()), names)))
    return plan


def recap(doc: dict[str, Any]) -> dict[str, int]:
    (host,) = doc["hosts"]
    return {k: host["recap"][k] for k in ("ok", "changed", "failed", "skipped")}


def test_workload_native_equals_pyz_cold_warm_and_check(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        native_cache: Path) -> None:
    results = {}
    for fmt in ("pyz", "native"):
        plan, inv, root = workload(tmp_path, fmt)
        # check mode on a fresh host: the symlink's target does not exist yet, so it fails (as in Ansible)
        code, check, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--check", "--output", "json", "--format", fmt)
        assert code == 1, err
        assert sorted(p.name for p in root.iterdir()) == ["legacy.cfg", "stale.txt"], "check mode changed files"
        code, cold, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        after_cold = files(root)
        code, warm, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        assert files(root) == after_cold
        results[fmt] = (recap(check), recap(cold), recap(warm), after_cold)
    assert results["native"] == results["pyz"]
    assert results["native"][1]["changed"] == 9 and results["native"][2]["changed"] == 0
    remote = tmp_path / "native" / "remote"
    (runner,) = (remote / "runners").iterdir()
    assert oct(runner.stat().st_mode & 0o777) == "0o700"
    (art,) = (remote / "artifacts").iterdir()
    assert art.read_bytes().startswith(b'{"format": "rustle-native"')


def test_registered_results_conditions_handlers_and_failures_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    tasks = [
        {"module": "command", "args": {"_raw_params": "echo hello"}, "register": "out", "changed_when": False},
        {"module": "copy", "args": {"content": "x={{ value }}\n", "dest": "{{ root }}/x.conf"}, "notify": ["say"]},
        {"module": "debug", "args": {"msg": "skipped"}, "conditions": [{"When": {"expression": "out.stdout != 'hello'"}}]},
        {"module": "file", "args": {"path": "{{ root }}/d/{{ item }}", "state": "directory"}, "loop": ["a", "b"],
         "conditions": [{"When": {"expression": "item != 'b' and out.rc == 0"}}]},
        {"module": "shell", "args": {"_raw_params": "exit 3"}, "register": "bad", "ignore_errors": True},
        {"module": "assert", "args": {"that": ["bad is failed", "bad.rc == 3", "out.stdout_lines | length == 1",
                                                "'hell' in out.stdout", "missing is not defined"]}},
        {"module": "stat", "args": {"path": "{{ root }}/x.conf"}, "register": "st"},
        {"module": "assert", "args": {"that": ["st.stat.exists", "st.stat.size == 4"], "fail_msg": "size is {{ value }}"}},
        {"module": "command", "args": {"_raw_params": "false"}, "failed_when": "out.rc != 0"},
        {"module": "command", "args": {"_raw_params": "false"}},
        {"module": "debug", "args": {"msg": "never reached"}},
    ]
    handlers = [{"name": "say", "module": "debug", "args": {"msg": "changed"}}]
    outcomes = {}
    for fmt in ("pyz", "native"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        plan = make_plan(tmp_path / fmt, tasks, play_vars={"root": str(root), "value": 1}, handlers=handlers)
        code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "--format", fmt)
        assert code == 1, err  # the second to last task fails the host
        outcomes[fmt] = (recap(doc), files(root))
    assert outcomes["native"] == outcomes["pyz"]


@pytest.mark.ssh
@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
def test_fleet_over_ssh_installs_the_runner_once_and_resends_it_when_lost(
    client: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, native_cache: Path
) -> None:
    hosts = {}
    roots = {}
    for i in range(6):
        name = f"bench-{i:04d}"
        roots[name] = seeded(tmp_path / f"root{i}")
        h = sshd.host(name, tmp_path / f"remote{i}", bench_root=str(roots[name]), bench_role="web" if i % 2 == 0 else "db")
        hosts[name] = dict(h.vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = workload_for(tmp_path, sorted(hosts))
    code, cold, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native",
                          "--ssh-client", client)
    assert code == 0, err
    assert all(h["uploaded"] and h["recap"]["changed"] == 9 for h in cold["hosts"]), cold
    for name, root in roots.items():
        role = hosts[name]["bench_role"]
        assert (root / "app" / "motd").read_text().startswith(f"Welcome to {name} (role: {role})")
    db = sqlite3.connect(Path(os.environ["HOME"]) / ".rustle" / "state.db")
    assert db.execute("SELECT count(*) FROM runners").fetchone()[0] == 6
    # host 3 lost its runner: it says so, gets it on a second connection, and runs
    (runner,) = (tmp_path / "remote3" / "runners").iterdir()
    runner.unlink()
    code, warm, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native",
                          "--ssh-client", client)
    assert code == 0, err
    assert all(not h["uploaded"] and h["recap"]["changed"] == 0 for h in warm["hosts"]), warm
    assert (tmp_path / "remote3" / "runners" / runner.name).is_file()


def test_rollback_from_native_to_pyz_then_cleanup(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   native_cache: Path) -> None:
    """Releases of both formats live side by side; each agent runs either."""
    plan, inv, root = workload(tmp_path, "both")
    code, first, err = cli(capsys, str(plan), "-i", str(inv), "--output", "json", "--format", "pyz")
    assert code == 0, err
    code, second, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native")
    assert code == 0, err
    assert second["hosts"][0]["previous_sha256"] == first["hosts"][0]["sha256"]
    code, back, err = cli(capsys, "--rollback", "-i", str(inv), "--output", "json")
    assert code == 0, err
    current = tmp_path / "both" / "remote" / "releases" / second["hosts"][0]["binary_name"] / "current"
    assert os.readlink(current).endswith(first["hosts"][0]["sha256"])
    code, _, err = cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    assert not (tmp_path / "both" / "remote").exists(), "cleanup removes installed runners too"


def test_a_remote_dir_a_native_deployment_created_is_removed_by_cleanup(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """The sh bootstrap that installs the runner creates the remote dir: it marks it as
    rustle-deploy's, as the Python agent does, so that cleanup may remove it."""
    from rustle_deploy.model import CREATED_MARKER

    plan, inv, _ = workload(tmp_path, "first")
    remote = tmp_path / "first" / "remote"
    code, _, err = cli(capsys, str(plan), "-i", str(inv), "--output", "json", "--format", "native")
    assert code == 0, err
    assert (remote / CREATED_MARKER).is_file() and len(list((remote / "runners").iterdir())) == 1
    code, doc, err = cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    assert not remote.exists(), doc


def test_a_plan_the_runner_cannot_run_is_refused_before_anything_is_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    from ..conftest import PLAN_FIXTURES

    remote = Path(os.environ["HOME"]) / ".rustle"
    before = sorted(p.name for p in remote.iterdir())
    code, _, err = cli(capsys, str(PLAN_FIXTURES / "package_management_plan.json"), "--run", "--format", "native")
    assert code == 2
    assert ("task 'Install curl package' (play-0/task_1) on localhost: module 'package' is not implemented by the "
            "native runner") in err
    assert "use --format pyz" in err
    assert sorted(p.name for p in remote.iterdir()) == before  # no artifact, release or state


def test_a_runner_that_arrives_changed_is_not_installed(tmp_path: Path, runner: Any) -> None:
    """A cut or changed upload of the runner: it removes itself, says why, nothing is left."""
    import asyncio

    from rustle_deploy.deploy import HostJob, RunOptions
    from rustle_deploy.deploy.host import deploy_host
    from rustle_deploy.model import Host

    good = runner.path
    bad = tmp_path / "bad" / good.name  # the same name (sha256), other bytes
    bad.parent.mkdir()
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    art = tmp_path / "art"
    art.write_bytes(b'{"format": "rustle-native"}')
    remote = tmp_path / "remote"
    host = Host(name="h1", vars={"ansible_connection": "local", "rustle_remote_dir": str(remote)}, groups=("all",))
    job = HostJob(host=host, op="deploy", artifact=art, sha256="0" * 64, size=art.stat().st_size,
                  binary_name="b", deployment_id="d-1", run=RunOptions(run_id="r-1"), push=True,
                  runner=bad, push_runner=True)
    out = asyncio.run(deploy_host(job))
    assert out.error is not None
    assert f"not {good.name.rsplit('-', 1)[1]}: the upload was cut or changed" in str(out.error)
    assert list((remote / "runners").iterdir()) == []
    assert not (remote / "artifacts").exists(), "nothing else was touched"


def journal(remote: Path, root: Path | None = None) -> list[tuple[Any, ...]]:
    """(event, task, status, msg) of every task result in the remote dir's run journals, in
    order; ``root`` is written ROOT in them (each format runs in its own directory)."""
    out = []
    for path in sorted((remote / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime_ns):
        text = path.read_text().replace(str(root), "ROOT") if root else path.read_text()
        for line in text.splitlines():
            e = json.loads(line)
            if e["event"] in ("task_result", "handler_result"):
                out.append((e["event"], e["task"], e["status"], e.get("msg"), e.get("skip_reason"), e.get("diff")))
    return out


def same_in_both_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Run ``tasks`` on localhost as pyz and as native; assert the recaps and journals are the
    same; each task's message."""
    outcomes = {}
    for fmt in ("pyz", "native"):
        plan = make_plan(tmp_path / fmt, tasks)
        remote = tmp_path / fmt / "remote"
        inv = local_inventory(tmp_path / fmt / "inv.ini", remote)
        code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        outcomes[fmt] = (recap(doc), journal(remote))
    assert outcomes["native"] == outcomes["pyz"]
    return {task: msg for (_, task, _, msg, _, _) in outcomes["native"][1]}


def local_inventory(path: Path, remote: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"localhost ansible_connection=local rustle_remote_dir={remote}\n")
    return path


def test_the_bundled_example_native_equals_pyz(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               native_cache: Path) -> None:
    """Facts in conditions, a run-option name, and a message over a registered result."""
    from ..integration.test_cli import example

    outcomes = {}
    for fmt in ("pyz", "native"):
        work = tmp_path / fmt / "work"
        plan = example(tmp_path / fmt, work)
        inv = local_inventory(tmp_path / fmt / "inv.ini", tmp_path / fmt / "remote")
        runs = []
        for flags in (["--diff", "--verify"], []):  # cold (with diffs, verified before activation), then warm
            code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt, *flags)
            assert code == 0, err
            runs.append(recap(doc))
        outcomes[fmt] = (runs, files(work), journal(tmp_path / fmt / "remote", tmp_path / fmt))
    assert outcomes["native"] == outcomes["pyz"]
    messages = [m for (_, task, _, m, _, _) in outcomes["native"][2] if task == "Say hello"]
    assert messages[0].startswith("hello on localhost: ") and messages[0].endswith(" settings")


@pytest.mark.parametrize("plan", ["file_operations_plan.json", "file_operations_playbook_with_facts_plan.json"])
def test_fixture_plans_the_runner_can_run_match_pyz_in_check_mode(
    plan: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    from ..conftest import PLAN_FIXTURES

    existed = Path("/tmp/rustle_file_test").exists()
    outcomes = {}
    for fmt in ("pyz", "native"):
        inv = local_inventory(tmp_path / fmt / "inv.ini", tmp_path / fmt / "remote")
        code, doc, err = cli(capsys, str(PLAN_FIXTURES / plan), "-i", str(inv), "--run", "--check",
                             "--output", "json", "--format", fmt)
        outcomes[fmt] = (code, recap(doc), journal(tmp_path / fmt / "remote"))
    assert outcomes["native"] == outcomes["pyz"]
    if not existed:
        assert not Path("/tmp/rustle_file_test").exists(), "check mode must not create files"


@pytest.mark.ssh
def test_become_starts_the_runner_through_sudo(tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any,
                                               native_cache: Path) -> None:
    import shutil

    if not shutil.which("sudo"):
        pytest.skip("sudo is not installed")
    root = seeded(tmp_path / "root")
    h = sshd.host("bench-0000", tmp_path / "remote dir", bench_root=str(root), bench_role="web",
                  ansible_become=True, ansible_become_user=sshd.user)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {h.name: dict(h.vars)}}}))
    plan = workload_for(tmp_path, [h.name])
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native")
    assert code == 0, err
    assert doc["hosts"][0]["recap"]["changed"] == 9
    (runner,) = (tmp_path / "remote dir" / "runners").iterdir()
    assert oct((tmp_path / "remote dir").stat().st_mode & 0o777) == "0o700"


def test_console_scripts_pipeline_with_a_native_release(tmp_path: Path, native_cache: Path) -> None:
    """rustle-deploy --format native --verify | rustle-exec: the run goes through the host's
    Python agent, which hands the native release to its installed runner."""
    import subprocess
    import sys

    from ..integration.test_cli import example

    work = tmp_path / "work"
    plan = example(tmp_path, work)
    bindir = Path(sys.executable).parent
    env = {**os.environ}
    deploy = subprocess.Popen([str(bindir / "rustle-deploy"), str(plan), "--verify", "--format", "native"],
                              stdout=subprocess.PIPE, env=env)
    result = subprocess.run([str(bindir / "rustle-exec")], stdin=deploy.stdout, capture_output=True, text=True,
                            env=env, timeout=120)
    assert deploy.wait(60) == 0
    assert result.returncode == 0, result.stderr + result.stdout
    assert "PLAY RECAP" in result.stdout and "localhost" in result.stdout
    assert (work / "etc" / "app.conf").is_file()
    runs = list((Path(os.environ["HOME"]) / ".rustle" / "runs").glob("*.jsonl"))
    assert runs and '"runner": "0.1.0"' in runs[0].read_text(), "the native runner applied the plan"


def test_compile_only_writes_the_runner_beside_the_artifacts_and_deploy_only_sends_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path, runner: Any
) -> None:
    from ..integration.test_cli import example

    work = tmp_path / "work"
    plan = example(tmp_path, work)
    out_dir = tmp_path / "out"
    remote = tmp_path / "remote"
    inv = local_inventory(tmp_path / "inv.ini", remote)
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--compile-only", "-o", str(out_dir),
                         "--format", "native", "--output", "json")
    assert code == 0, err
    copy = out_dir / f"rustle-runner-{runner.sha256}"
    assert copy.read_bytes() == runner.path.read_bytes()
    assert copy.stat().st_mode & 0o777 == 0o700
    assert [a["runner"] for a in json.loads((out_dir / "manifest.json").read_text())["artifacts"]] == [runner.sha256]
    shutil.rmtree(native_cache / "native")  # --deploy-only needs nothing but the output directory
    code, doc, err = cli(capsys, "--deploy-only", "-o", str(out_dir), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert doc["hosts"][0]["recap"]["failed"] == 0
    assert (work / "etc" / "app.conf").is_file()
    assert [p.name for p in (remote / "runners").iterdir()] == [runner.sha256]


def test_assert_and_debug_messages_over_registered_results_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    tasks = [
        {"module": "shell", "args": {"_raw_params": "echo out; exit 3"}, "register": "bad", "ignore_errors": True},
        {"name": "fails", "module": "assert", "ignore_errors": True,
         "args": {"that": ["bad.rc == 0"], "fail_msg": "rc was {{ bad.rc }} ({{ bad.stdout }}) on {{ inventory_hostname }}"}},
        {"name": "holds", "module": "assert",
         "args": {"that": ["bad.rc == 3"], "success_msg": "rc {{ bad.rc }} as expected", "quiet": "{{ bad.rc > 0 }}"}},
        {"name": "shows", "module": "debug", "args": {"var": "bad.stdout", "verbosity": "{{ 0 }}"}},
        {"name": "undefined", "module": "assert", "ignore_errors": True,
         "args": {"that": ["bad.rc == 0"], "fail_msg": "{{ bad.nope }}"}},
    ]
    messages = same_in_both_formats(tmp_path, capsys, tasks)
    assert messages["fails"] == "rc was 3 (out) on localhost"
    assert messages["holds"] == "rc 3 as expected"
    assert "nope" in messages["undefined"]


def test_host_data_is_data_in_both_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           native_cache: Path) -> None:
    """Issue 11: a command's output and a file read by lookup('file') (on the controller at
    compile time for native, on the host for pyz) that hold a template are printed and copied
    literally by both formats; nothing in them runs. A fact's string is never evaluated as a
    condition."""
    mark = tmp_path / "PWNED"
    payload = f"{{{{ lookup('pipe', 'touch {mark}') }}}}"
    src = tmp_path / "payload.txt"
    src.write_text(payload + "\n")
    tasks = [
        {"name": "read", "module": "command", "args": {"_raw_params": f"cat {src}"}, "register": "r",
         "changed_when": False},
        {"name": "print", "module": "debug", "args": {"msg": "{{ r.stdout }}"}},
        {"name": "print in text", "module": "debug", "args": {"msg": "got {{ r.stdout }}!"}},
        {"name": "copy", "module": "copy", "args": {"content": "{{ r.stdout }}", "dest": "{{ root }}/copied"}},
        {"name": "compare", "module": "debug", "args": {"msg": "compared"},
         "conditions": [{"When": {"expression": "r.stdout != ''"}}]},
        {"name": "lookup", "module": "debug", "args": {"msg": "{{ lookup('file', src) }}"}},
        {"name": "fact", "module": "debug", "args": {"msg": "ran"}, "ignore_errors": True,
         "conditions": [{"When": {"expression": "ansible_system"}}]},
    ]
    outcomes = {}
    for fmt in ("pyz", "native"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        plan = make_plan(tmp_path / fmt, tasks, play_vars={"root": str(root), "src": str(src)})
        remote = tmp_path / fmt / "remote"
        inv = local_inventory(tmp_path / fmt / "inv.ini", remote)
        code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        outcomes[fmt] = (recap(doc), files(root), journal(remote))
        assert not mark.exists(), f"{fmt}: host data ran as a template"
    assert outcomes["native"] == outcomes["pyz"]
    messages = {task: msg for (_, task, _, msg, _, _) in outcomes["native"][2]}
    assert messages["print"] == messages["lookup"] == payload
    assert messages["print in text"] == f"got {payload}!"
    assert messages["compare"] == "compared"
    # a fact's string is data, never an expression; ansible-core 2.19 fails it as a conditional
    # whose result is not a boolean
    assert "derived from value of type 'str'" in messages["fact"]
    assert outcomes["native"][1]["copied"][2] == payload.encode()


def test_a_controller_file_in_a_condition_is_never_evaluated(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               native_cache: Path) -> None:
    """A condition templated from lookup('file') holds data, not an expression: the native
    compiler (which decides it on the controller) refuses it with the reason, pyz fails the task."""
    mark = tmp_path / "PWNED"
    src = tmp_path / "bare.txt"
    src.write_text(f"lookup('pipe', 'touch {mark}')\n")
    tasks = [{"name": "evaluated", "module": "debug", "args": {"msg": "ran"},
              "conditions": [{"When": {"expression": "{{ lookup('file', src) }}"}}]}]
    for fmt, expected in (("native", 2), ("pyz", 1)):
        plan = make_plan(tmp_path / fmt, tasks, play_vars={"src": str(src)})
        inv = local_inventory(tmp_path / fmt / "inv.ini", tmp_path / fmt / "remote")
        code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
        assert code == expected, err
        assert not mark.exists(), f"{fmt}: a file's contents ran as an expression"
        if fmt == "native":  # ansible-core 2.19 deprecates a conditional in {{ }}: left to pyz
            assert "a conditional in {{ }}" in err
        else:
            assert "Encountered untrusted template or expression." in json.dumps(journal(tmp_path / fmt / "remote"))


def test_handlers_that_notify_each_other_stop_as_the_pyz_runtime_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """ansible-core's test_handlers_infinite_loop.yml: each handler runs twice, then the play
    ends (tests/runtime/test_handlers_ansible.py compares the pyz runtime with Ansible)."""
    tasks = [{"module": "command", "args": {"_raw_params": "echo"}, "notify": ["handler1", "self_notify"]}]
    handlers = [
        {"name": "handler1", "module": "debug", "args": {"msg": "1"}, "changed_when": True, "notify": ["handler2"]},
        {"name": "handler2", "module": "debug", "args": {"msg": "2"}, "changed_when": True, "notify": ["handler1"]},
        {"name": "self_notify", "module": "debug", "args": {"msg": "s"}, "changed_when": True,
         "notify": ["self_notify"]},
    ]
    recaps = {}
    for fmt in ("pyz", "native"):
        plan = make_plan(tmp_path / fmt, tasks, handlers=handlers)
        code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        recaps[fmt] = recap(doc)
    assert recaps["native"] == recaps["pyz"] == {"ok": 7, "changed": 7, "failed": 0, "skipped": 0}


def test_command_and_shell_arguments_and_background_children_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """$VAR over the task's environment, expand_argument_vars, unknown arguments, and a shell
    whose background child holds the pipes (issue 14's command/shell items, both formats)."""
    env = {"RUSTLE_TASK_VAR": "from task"}
    tasks = [
        {"name": "env var", "module": "command", "args": {"_raw_params": "echo $RUSTLE_TASK_VAR ${RUSTLE_TASK_VAR} $NO_SUCH_VAR_X"},
         "environment": env, "register": "r1"},
        {"name": "show env var", "module": "debug", "args": {"msg": "{{ r1.stdout }}"}},
        {"name": "no expansion", "module": "command", "environment": env, "register": "r2",
         "args": {"_raw_params": "echo $RUSTLE_TASK_VAR", "expand_argument_vars": False}},
        {"name": "show no expansion", "module": "debug", "args": {"msg": "{{ r2.stdout }}"}},
        {"name": "unknown arg", "module": "command", "args": {"_raw_params": "echo hi", "no_such_arg": 1},
         "ignore_errors": True},
        {"name": "shell expand_argument_vars", "module": "shell", "ignore_errors": True,
         "args": {"_raw_params": "echo hi", "expand_argument_vars": False}},
        # returns once the shell has exited and its pipes are quiet, before the child writes
        {"name": "background", "module": "shell", "args": {"_raw_params": "echo started; (sleep 5; echo late) &"},
         "register": "r3"},
        {"name": "show background", "module": "debug", "args": {"msg": "{{ r3.rc }} {{ r3.stdout }}"}},
    ]
    messages = same_in_both_formats(tmp_path, capsys, tasks)
    assert messages["show env var"] == "from task from task $NO_SUCH_VAR_X"
    assert messages["show no expansion"] == "$RUSTLE_TASK_VAR"
    assert messages["unknown arg"].startswith("Unsupported parameters for (command) module: no_such_arg.")
    assert messages["shell expand_argument_vars"] == "Unsupported parameters for (shell) module: expand_argument_vars"
    assert messages["show background"] == "0 started"


def test_file_and_stat_details_and_controller_lookups_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14's file and stat items and a controller lookup, in both formats."""
    monkeypatch.setenv("RUSTLE_CONTROLLER_VAR", "from the controller")
    tasks = [
        {"module": "file", "args": {"path": "{{ root }}/sub1", "state": "directory"}},
        {"module": "copy", "args": {"content": "x\n", "dest": "{{ root }}/file_to_link"}},
        {"name": "hard into dir", "module": "file", "args": {"src": "{{ root }}/file_to_link", "dest": "{{ root }}/sub1",
                                                             "state": "hard", "force": False}},
        {"name": "hard missing src", "module": "file", "ignore_errors": True,
         "args": {"src": "no-such-file.txt", "dest": "{{ root }}/hard.txt", "state": "hard"}},
        {"name": "check mode owner", "module": "file", "check_mode": True,
         "args": {"path": "{{ root }}/cm", "state": "touch", "owner": "rustle_no_such_user"}},
        {"module": "file", "args": {"path": "{{ root }}/rec", "state": "directory", "mode": "0755"}},
        {"module": "file", "args": {"path": "{{ root }}/target_dir", "state": "directory", "mode": "0700"}},
        {"module": "file", "args": {"path": "{{ root }}/target_dir/foo", "state": "touch", "mode": "0700"}},
        {"module": "file", "args": {"path": "{{ root }}/rec/link_dir", "state": "link", "src": "../target_dir"}},
        {"name": "dangling", "module": "file", "args": {"path": "{{ root }}/rec/dangling", "state": "link",
                                                        "src": "nowhere", "force": True}},
        {"name": "recurse follow", "module": "file", "args": {"path": "{{ root }}/rec", "mode": "a-x", "recurse": True}},
        {"module": "copy", "args": {"content": "plain\n", "dest": "{{ root }}/a:b.txt"}},
        {"module": "stat", "args": {"path": "{{ root }}/a:b.txt"}, "register": "st"},
        {"name": "stat keys", "module": "debug",
         "args": {"msg": "{{ st.stat.mimetype }} {{ st.stat.charset }} {{ st.stat.attributes }} {{ st.stat.attr_flags }}"}},
        {"name": "controller env", "module": "debug", "args": {"msg": "{{ lookup('env', 'RUSTLE_CONTROLLER_VAR') }}"}},
    ]
    outcomes = {}
    for fmt in ("pyz", "native"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        plan = make_plan(tmp_path / fmt, tasks, play_vars={"root": str(root)})
        remote = tmp_path / fmt / "remote"
        inv = local_inventory(tmp_path / fmt / "inv.ini", remote)
        code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        outcomes[fmt] = (recap(doc), journal(remote, root), files(root))
    assert outcomes["native"] == outcomes["pyz"]
    messages = {task: msg for (_, task, _, msg, _, _) in outcomes["native"][1]}
    assert messages["hard missing src"] == "src does not exist"
    assert messages["controller env"] == "from the controller"
    assert messages["stat keys"].startswith("text/plain us-ascii [")
    tree_ = outcomes["native"][2]
    assert tree_["sub1/file_to_link"][0] == "file"
    assert tree_["target_dir/foo"][1] == "0o600"


def test_failed_results_and_error_messages_have_ansible_core_2_19_shapes_in_both_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    """`exception` on a failed result, `failed_when_suppressed_exception` when failed_when
    overrules a failure, and 2.19's words for an undefined name in a condition or a task argument
    (tests/runtime/test_modules_core_ansible.py compares the pyz runtime with ansible-core)."""
    undefined = "object of type 'dict' has no attribute 'nope'"  # a registered result's: the runner decides it on the host
    tasks = [
        {"module": "shell", "args": {"_raw_params": "exit 1"}, "register": "r1", "ignore_errors": True},
        {"module": "shell", "args": {"_raw_params": "exit 1"}, "register": "r2", "failed_when": "false"},
        {"name": "changed_when", "module": "command", "args": {"_raw_params": "echo hi"}, "register": "r3",
         "changed_when": "r1.nope", "ignore_errors": True},
        {"name": "argument", "module": "copy", "ignore_errors": True,
         "args": {"content": "{{ r1.nope }}", "dest": str(tmp_path / "never")}},
        {"name": "assert", "module": "assert", "args": {"that": "r1.nope == 1"}, "ignore_errors": True},
        {"name": "when", "module": "debug", "args": {"msg": "x"},
         "conditions": [{"When": {"expression": "r1.nope == 1"}}],
         "ignore_errors": True},
        {"name": "shapes", "module": "debug", "args": {"msg": (
            "{{ r1.exception }}|{{ r2.failed_when_suppressed_exception }}|{{ r2.exception is defined }}|"
            "{{ r3.changed_when_result }}|{{ r3.msg }}|{{ r3.exception }}")}},
    ]
    messages = same_in_both_formats(tmp_path, capsys, tasks)
    assert messages["shapes"] == (f"(traceback unavailable)|(traceback unavailable)|False|"
                                  f"Error while evaluating conditional: {undefined}||(traceback unavailable)")
    assert messages["argument"] == ("Task failed: Finalization of task args for 'ansible.builtin.copy' failed: "
                                    f"Error while resolving value for 'content': {undefined}")
    assert messages["assert"] == messages["when"] == f"Task failed: Error while evaluating conditional: {undefined}"


@pytest.mark.ansible
def test_content_of_one_expression_and_a_newline_is_written_as_ansible_writes_it_by_plans_in_both_formats(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path) -> None:
    """``content: "{{ r.changed }}\\n"``: ansible-core 2.19 writes ``True`` (no newline); the
    same task in a rustle-plan JSON, run in pyz and in native, writes the same files (native as
    hybrid: the case's lookup('template') tasks do not lower, the runner runs the rest)."""
    from ..integration.test_playbooks_ansible import ANSIBLE, prepare, run_ansible
    from ..integration.test_playbooks_ansible import tree as ansible_tree

    if not ANSIBLE.exists():
        pytest.skip("ansible-core is not installed in .venv")
    work, inv, _ = prepare("content_native_values", tmp_path)
    oracle = tmp_path / "a"
    oracle.mkdir()
    result = run_ansible("content_native_values", work, inv, oracle, [], tmp_path)
    assert result["code"] == 0, result["log"]
    expected = result["tree"]  # ansible-playbook's files (OUT for its root), as recorded: tests/oracle.py
    assert expected["registered_bool.txt"][2] == "True" and expected["text.txt"][2] == "true\n"
    for fmt in ("pyz", "hybrid"):
        out = tmp_path / fmt
        out.mkdir()
        assert main(["--emit-plan", str(work / "site.yml"), "-i", str(inv), "-e", f"out={out}"]) == 0
        plan = tmp_path / f"{fmt}.json"
        plan.write_text(capsys.readouterr().out)
        code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--format", fmt, "--output", "json",
                             "-e", f"out={out}")
        assert code == 0, (err, doc)
        assert ansible_tree(out, tmp_path) == expected, fmt


def test_conditionals_that_are_not_booleans_fail_or_take_their_truth_as_in_pyz(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible-core 2.19's strict conditionals in the runner: a registered string, a number
    from the host and a string variable fail with the runtime's words; under
    ANSIBLE_ALLOW_BROKEN_CONDITIONALS each takes its truth. Both formats give the same results."""
    book = tmp_path / "site.yml"
    book.write_text("""\
- hosts: all
  gather_facts: false
  vars: {word: "false"}
  tasks:
    - {name: echo, command: echo hi, register: r}
    - {name: registered string, debug: msg=a, when: r.stdout, ignore_errors: true}
    - {name: registered number, debug: msg=b, when: r.rc, ignore_errors: true}
    - {name: a string variable, debug: msg=c, when: word, ignore_errors: true}
    - {name: changed_when, command: echo, changed_when: r.stdout, ignore_errors: true}
    - {name: a boolean, debug: msg=d, when: r.rc == 0}
""")
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "none.cfg"))
    seen: dict[tuple[str, str], Any] = {}
    for allow in ("false", "true"):
        monkeypatch.setenv("ANSIBLE_ALLOW_BROKEN_CONDITIONALS", allow)
        for fmt in ("pyz", "native"):
            remote = tmp_path / f"{fmt}-{allow}"
            inv = tmp_path / f"{fmt}-{allow}.ini"
            inv.write_text(f"localhost ansible_connection=local rustle_remote_dir={remote}\n")
            code, doc, err = cli(capsys, str(book), "-i", str(inv), "--run", "--format", fmt, "--output", "json")
            assert code == 0, (fmt, err, doc)
            events = [json.loads(line) for p in sorted((remote / "runs").glob("*.jsonl"))
                      for line in p.read_text().splitlines()]
            seen[(fmt, allow)] = [(e.get("task"), e.get("status"), e.get("msg") or e.get("changed_when_result"))
                                  for e in events if e.get("event") == "task_result"]
    assert seen[("native", "false")] == seen[("pyz", "false")]
    assert seen[("native", "true")] == seen[("pyz", "true")]
    strict = {task: (status, msg) for task, status, msg in seen[("pyz", "false")]}
    # host data has no origin of its own: the conditional's place (where ansible-core tags it too)
    assert strict["registered string"] == ("failed", "Task failed: Conditional result (True) was derived from "
                                           f"value of type 'str' at '{book}:6:53'. Conditionals must have a boolean result.")
    assert strict["registered number"][1].startswith("Task failed: Conditional result (False) was derived from value of type 'int'")
    assert "value of type 'str'" in strict["a string variable"][1]
    assert strict["changed_when"][0] == "failed" and "value of type 'str'" in strict["changed_when"][1]
    allowed = {task: status for task, status, _ in seen[("pyz", "true")]}
    assert allowed == {"echo": "changed", "registered string": "ok", "registered number": "skipped",
                       "a string variable": "ok", "changed_when": "changed", "a boolean": "ok"}


NAMES_BOOK = """\
- hosts: all
  gather_facts: false
  vars: {who: world}
  tasks:
    - name: "outer {{ who }} on {{ inventory_hostname }}"
      debug: {msg: hi}
    - include_tasks: inc.yml
      loop: [a, b]
    - include_tasks: other.yml
      loop: [x]
      loop_control: {loop_var: thing}
"""
NAMES_INC = """\
- name: "inner {{ item }} of {{ who }}"
  debug: {msg: "{{ item }}"}
- name: "its own loop, the include's {{ item }}"
  debug: {msg: "{{ item }}"}
  loop: [1]
"""


@pytest.mark.ansible
def test_task_names_are_rendered_as_ansible_playbook_prints_them_in_both_formats(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path) -> None:
    """A task's name is rendered before it runs, with the item of the include_tasks loop it is
    in (not its own loop's), play and host variables: the journal of both formats names each
    result as ansible-playbook's banners do (its json callback is ansible.posix's, not installed)."""
    import subprocess
    import sys

    from ..integration.conftest import ANSIBLE, ansible_env

    (tmp_path / "site.yml").write_text(NAMES_BOOK)
    (tmp_path / "inc.yml").write_text(NAMES_INC)
    (tmp_path / "other.yml").write_text('- name: "other {{ thing }}"\n  command: echo {{ thing }}\n')
    inv = tmp_path / "oracle.ini"
    inv.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    proc = subprocess.run([str(ANSIBLE), "-i", str(inv), str(tmp_path / "site.yml")], capture_output=True,
                          text=True, env=ansible_env(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    oracle = [n for n in re.findall(r"^TASK \[(.*)\] \*+$", proc.stdout, re.M) if n != "include_tasks"]
    assert oracle == ["outer world on localhost", "inner a of world", "its own loop, the include's a",
                      "inner b of world", "its own loop, the include's b", "other x"]
    # the native runner does not loop over includes: it renders the names of a playbook without
    # one at compile time, as the pyz runtime does when it runs them
    (tmp_path / "plain.yml").write_text(NAMES_BOOK.split("    - include_tasks")[0]
                                        + "    - import_tasks: other.yml\n      vars: {thing: y}\n")
    seen = {}
    for fmt, book in (("pyz", "site.yml"), ("pyz", "plain.yml"), ("native", "plain.yml")):
        remote = tmp_path / fmt / book / "remote"
        code, _, err = cli(capsys, str(tmp_path / book), "-i", str(local_inventory(tmp_path / fmt / book / "inv.ini", remote)),
                           "--run", "--output", "json", "--format", fmt)
        assert code == 0, err
        seen[(fmt, book)] = [e[1] for e in journal(remote) if e[1] != "include_tasks"]
    assert seen[("pyz", "site.yml")] == oracle
    assert seen[("native", "plain.yml")] == seen[("pyz", "plain.yml")] == ["outer world on localhost", "other y"]
