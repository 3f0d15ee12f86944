"""--format auto (the default): the native runner where the plan lowers and the host can
execute it, pyz otherwise, with -v saying which and why; a host that cannot execute the runner
falls back to pyz in the same deployment, and the history remembers it (docs/native.md,
"Choosing the format")."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.compiler.runner import RunnerBinary
from rustle_deploy.compiler.toolchain import controller_target

from ..conftest import make_plan
from ..integration.conftest import SSHD, _free_port, _wait_listening
from .test_native_runs import cli, files, seeded, workload_for
from .test_targets import AARCH64, aarch64_runner  # noqa: F401 - the fixture


@pytest.fixture
def auto(monkeypatch: pytest.MonkeyPatch, native_cache: Path) -> Path:
    """No RUSTLE_FORMAT (the suite pins pyz): the command's own default, auto."""
    monkeypatch.delenv("RUSTLE_FORMAT", raising=False)
    return native_cache


CopyPlan = Callable[..., tuple[Path, Path, Path]]


@pytest.fixture
def copy_plan(tmp_path: Path) -> CopyPlan:
    """``copy_plan(a={}, b={"rustle_target": ...})``: a plan that copies "x" to ROOT/<host> on
    local hosts (remote dir tmp_path/r<host>) with these variables of their own, and their
    inventory: (plan, inventory, ROOT)."""
    def make(**hosts: dict[str, str]) -> tuple[Path, Path, Path]:
        root = tmp_path / "root"
        root.mkdir()
        plan = make_plan(tmp_path, [{"module": "copy", "args": {"content": "x\n", "dest": f"{root}/{{{{ inventory_hostname }}}}"}}],
                         hosts=tuple(hosts))
        inv = tmp_path / "inv.yml"
        inv.write_text(yaml.safe_dump({"all": {"hosts": {
            name: {"ansible_connection": "local", "rustle_remote_dir": str(tmp_path / f"r{name}"), **own}
            for name, own in hosts.items()}}}))
        return plan, inv, root

    return make


@contextlib.contextmanager
def namespaced_sshd(sshd: Any, tmp_path: Path, name: str, setup: str, *args: str) -> Iterator[tuple[int, Path]]:
    """A second sshd for the same user and keys, started in a private mount namespace after
    the sh script ``setup`` (its arguments: ``args``) changed the mounts there. Yields (port,
    its known_hosts)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private mount namespace needs root and unshare (util-linux)")
    port = _free_port()
    config = tmp_path / f"sshd_{name}_config"
    lines = [ln for ln in (sshd.root / "sshd_config").read_text().splitlines()
             if not ln.startswith(("Port ", "PidFile "))]
    pidfile = tmp_path / f"sshd_{name}.pid"
    config.write_text("\n".join([*lines, f"Port {port}", f"PidFile {pidfile}", ""]))
    known = tmp_path / f"known_hosts_{name}"
    known.write_text(f"[127.0.0.1]:{port} {sshd.host_pub}\n")
    log = tmp_path / f"sshd_{name}.log"
    script = f'{setup} && exec {SSHD} -D -e -f "$0"'
    with open(log, "wb") as logf:
        proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                                 str(config), *args], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    try:
        _wait_listening(port, proc, log, pidfile)
        yield port, known
    finally:
        proc.terminate()  # sshd itself (sh exec'd it); the namespace and its mounts go with it
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def noexec_sshd(sshd: Any, tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    """An sshd whose sessions see ``<tmp>/noexec`` as a tmpfs mounted noexec: a host whose
    remote dir is there cannot execute anything written into it. Yields (port, that
    directory, its known_hosts)."""
    mnt = tmp_path / "noexec"
    mnt.mkdir()
    with namespaced_sshd(sshd, tmp_path, "noexec", 'mount -t tmpfs -o noexec,mode=0755 tmpfs "$1"', str(mnt)) as (
            port, known):
        yield port, mnt, known


@pytest.fixture
def no_python_sshd(sshd: Any, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An sshd whose sessions have no Python: /usr/bin is a directory of links to everything
    in it but python*, and pyenv's tree (where this suite's interpreters live) is an empty
    tmpfs, so neither PATH nor the agent's absolute candidates find one."""
    shadow = tmp_path / "usr-bin"
    setup = ('mkdir -p "$1/orig" "$1/bin" && mount --bind /usr/bin "$1/orig" && '
             'cp -as "$1/orig/." "$1/bin/" && rm -f "$1"/bin/python* && mount --bind "$1/bin" /usr/bin && '
             'for d in "$HOME/.pyenv" /root/.pyenv; do [ ! -d "$d" ] || mount -t tmpfs -o ro tmpfs "$d" || exit 1; '
             'done && ! env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c "command -v python3" '
             '&& [ ! -e /usr/bin/python3 ] && [ ! -e /usr/local/bin/python3 ]')
    with namespaced_sshd(sshd, tmp_path, "nopython", setup, str(shadow)) as found:
        yield found


def fleet(tmp_path: Path, sshd: Any, noexec: tuple[int, Path, Path], tag: str) -> tuple[Path, Path, dict[str, Path]]:
    """Four workload hosts: bench-0000..2 on the sshd, bench-0003 on the noexec one."""
    port, mnt, known = noexec
    hosts, roots = {}, {}
    for i in range(4):
        name = f"bench-{i:04d}"
        roots[name] = seeded(tmp_path / tag / f"root{i}")
        if i == 3:
            h = sshd.host(name, mnt / f"{tag}-remote", ansible_port=port,
                          ansible_ssh_common_args=f"-o UserKnownHostsFile={known}")
        else:
            h = sshd.host(name, tmp_path / tag / f"remote{i}")
        hosts[name] = {**h.vars, "bench_root": str(roots[name]), "bench_role": "web"}
    inv = tmp_path / tag / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = workload_for(tmp_path / tag, sorted(hosts))
    return plan, inv, roots


def runner_failures() -> list[tuple[str, str]]:
    with closing(sqlite3.connect(Path(os.environ["HOME"]) / ".rustle" / "state.db")) as db:
        return [(str(h), str(r)) for h, r in db.execute("SELECT host, reason FROM runner_failures")]


def tree_of(roots: dict[str, Path]) -> dict[str, Any]:
    """Each host's files, its own name written HOST (the motd names the host)."""
    out = {}
    for name, root in roots.items():
        out[name] = {k: tuple(x.replace(name.encode(), b"HOST") if isinstance(x, bytes) else x for x in v)
                     for k, v in files(root).items()}
    return out


@pytest.mark.ssh
def test_a_host_that_cannot_execute_the_runner_falls_back_to_pyz_once_and_is_remembered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, noexec_sshd: tuple[int, Path, Path],
    auto: Path,
) -> None:
    # the reference: the same fleet, all pyz
    plan, inv, pyz_roots = fleet(tmp_path, sshd, noexec_sshd, "pyz")
    code, ref, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "pyz")
    assert code == 0, err

    plan, inv, roots = fleet(tmp_path, sshd, noexec_sshd, "auto")
    code, cold, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    by_name = {h["name"]: h for h in cold["hosts"]}
    # bench-0003 ran the Python agent (it reports its python), the others the runner
    assert by_name["bench-0003"]["platform"]["python"], by_name["bench-0003"]
    assert all(by_name[n]["platform"]["python"] is None for n in ("bench-0000", "bench-0001", "bench-0002"))
    assert all(h["recap"]["changed"] == 9 and h["ok"] for h in cold["hosts"]), cold
    assert "format: native for bench-0000, bench-0001, bench-0002, bench-0003: the plan lowers" in err
    assert "bench-0003: cannot install rustle-runner" in err and "cannot execute it (exit 126 on x86_64)" in err
    assert "deploying the pyz artifact" in err
    assert "format: bench-0000: native on Linux" in err and "format: bench-0003: pyz on Linux" in err
    assert tree_of(roots) == tree_of(pyz_roots)  # the same files, whichever format ran
    for i in range(3):
        assert (tmp_path / "auto" / f"remote{i}" / "runners").is_dir()
    assert [h for h, _ in runner_failures()] == ["bench-0003"]
    (reason,) = [r for _, r in runner_failures()]
    assert "exit 126" in reason

    # the next deployment does not try the runner there: -v says why, no fallback line
    code, warm, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: pyz for bench-0003: it could not execute rustle-runner in deployment d-" in err
    assert "format: native for bench-0000, bench-0001, bench-0002: the plan lowers" in err
    assert "deploying the pyz artifact" not in err
    assert all(h["recap"]["changed"] == 0 and h["ok"] and not h["uploaded"] for h in warm["hosts"]), warm


@pytest.mark.ssh
def test_native_insists_and_fails_on_a_host_that_cannot_execute_the_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, noexec_sshd: tuple[int, Path, Path],
    auto: Path,
) -> None:
    plan, inv, _ = fleet(tmp_path, sshd, noexec_sshd, "native")
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native",
                         "--limit", "bench-0003")
    assert code == 1
    (host,) = doc["hosts"]
    assert "cannot execute it (exit 126 on" in host["error"]
    assert "--format auto deploys pyz to this host instead" in host["error"]
    assert runner_failures() == []  # --format native does not decide for auto


def test_auto_says_which_format_and_why_for_plans_that_do_not_lower(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], auto: Path
) -> None:
    tasks = [{"name": "remember", "module": "set_stats", "args": {"data": {"x": 1}}},
             {"name": "show", "module": "debug", "args": {"msg": "hi"}}]
    plan = make_plan(tmp_path, tasks)
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: pyz for localhost: the plan does not lower to the native runner:" in err
    assert "module 'set_stats' is not implemented" in err
    assert doc["hosts"][0]["platform"]["python"]
    # a plan that lowers runs native, with the same result as pyz
    root = tmp_path / "root"
    root.mkdir()
    plan = make_plan(tmp_path / "other", [{"module": "copy", "args": {"content": "x\n", "dest": f"{root}/x"}}])
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: native for localhost: the plan lowers" in err
    assert doc["hosts"][0]["platform"]["python"] is None and doc["hosts"][0]["recap"]["changed"] == 1
    assert (root / "x").read_text() == "x\n"


@pytest.mark.ssh
def test_auto_opens_one_ssh_connection_per_host_whether_the_plan_lowers_or_not(
    tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, auto: Path,
    discarded_early: list[object]
) -> None:
    """The ssh process started for each host before the build (which decides whether the plan
    lowers) starts the agent the host gets: pyz's for a plan that does not lower, the runner's
    for one that does; none is discarded for a second connection, cold or warm."""

    discarded = discarded_early
    hosts = {}
    for i in range(2):
        h = sshd.host(f"one{i}", tmp_path / f"remote{i}")
        hosts[h.name] = dict(h.vars)
    hosts["one1"]["ansible_become"] = True  # its agent starts through sudo, either one
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"children": {"fleet": {"hosts": hosts}}}}))
    root = tmp_path / "root"
    root.mkdir()
    copy = {"module": "copy", "args": {"content": "x\n", "dest": f"{root}/{{{{ inventory_hostname }}}}"}}
    # built-in modules both, but a filter the runner lacks over a registered result: only the
    # build can tell that the plan does not lower
    said = {"name": "say", "module": "command", "args": {"cmd": "echo hi"}, "register": "said"}
    shown = {"name": "show", "module": "debug", "args": {"msg": "{{ said.stdout | b64encode }}"}}
    for tag, tasks, native in (("pyz", [copy, said, shown], False), ("native", [copy], True)):
        plan = make_plan(tmp_path / tag, tasks, hosts=("fleet",))
        for attempt in ("cold", "warm"):
            code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
            assert code == 0, err
            said = "native for one0, one1: the plan lowers" if native else "pyz for one0, one1: the plan does not lower"
            assert f"format: {said}" in err, err
            assert sorted(h["name"] for h in doc["hosts"]) == ["one0", "one1"]
            for h in doc["hosts"]:
                assert h["ok"] and h["uploaded"] is (attempt == "cold"), h
                assert (h["platform"]["python"] is None) is native, h
            assert discarded == [], f"{tag} {attempt}: an early ssh process started with another agent's command"
    assert sorted(p.name for p in root.iterdir()) == ["one0", "one1"]


def test_auto_uses_pyz_without_cargo_or_a_prebuilt_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RUSTLE_FORMAT", raising=False)
    path = [p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "cargo").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    root = tmp_path / "root"
    root.mkdir()
    plan = make_plan(tmp_path, [{"module": "copy", "args": {"content": "x\n", "dest": f"{root}/x"}}])
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    # no cargo on PATH or in ~/.cargo: none at all, or Debian's /usr/bin/cargo, found anyway,
    # without the C linker cc (PATH has no /usr/bin now): refused before any build (a build
    # compiled the whole crate, 20 minutes under load, and failed to link); either way pyz
    (line,) = [ln for ln in err.splitlines() if ln.startswith("format: pyz for every host: ")]
    assert "rustle-runner" in line and "cargo" in line
    if os.path.exists("/usr/bin/cargo") and os.path.exists("/usr/bin/rustc"):
        assert "missing the C linker cc (which cargo links with) on PATH" in line
    tried = [ln for ln in err.splitlines() if ln.startswith("note: building rustle-runner for ")]
    if "failed (exit" in line:  # a build started: it said so first, naming the cargo
        (note,) = tried
        cargo = line.split(" with ", 1)[1].split(" failed", 1)[0]
        assert note == (f"note: building rustle-runner for {controller_target()} with {cargo} "
                        "(first use of these sources, about a minute)")
    else:
        assert tried == []
    assert doc["hosts"][0]["platform"]["python"]
    assert not list((rustle_home / ".rustle" / "cache").glob("native/rustle-runner-*"))


def test_the_format_setting_comes_from_the_environment_and_is_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSTLE_FORMAT", "fast")
    plan = make_plan(tmp_path, [{"module": "ping", "args": {}}])
    code, _, err = cli(capsys, str(plan), "--run", "--output", "json")
    assert code == 2
    assert "RUSTLE_FORMAT: expected auto, pyz, native or hybrid, got 'fast'" in err
    monkeypatch.setenv("RUSTLE_FORMAT", "pyz")
    code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format:" not in err  # pyz was asked for: nothing to explain
    assert json.dumps(doc)


@pytest.mark.ssh
def test_a_host_without_python_deploys_runs_and_rolls_back_through_the_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, no_python_sshd: tuple[int, Path], auto: Path,
) -> None:
    port, known = no_python_sshd
    root = seeded(tmp_path / "root")
    remote = tmp_path / "remote"
    h = sshd.host("bench-0000", remote, ansible_port=port, ansible_ssh_common_args=f"-o UserKnownHostsFile={known}")
    host_vars = {**h.vars, "bench_root": str(root), "bench_role": "web"}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"bench-0000": host_vars}}}))
    plan = workload_for(tmp_path, ["bench-0000"])
    # the pyz format cannot reach it: no Python there
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--output", "json", "--format", "pyz")
    assert code == 1
    assert "no usable Python 3.8+ on bench-0000" in doc["hosts"][0]["error"]
    # auto: native, no Python needed
    code, first, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert first["hosts"][0]["recap"]["changed"] == 9 and first["hosts"][0]["platform"]["python"] is None
    assert "Welcome to bench-0000 (role: web)" in (root / "app" / "motd").read_text()
    host_vars["bench_role"] = "db"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"bench-0000": host_vars}}}))
    code, second, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert second["hosts"][0]["previous_sha256"] == first["hosts"][0]["sha256"]
    # --rollback goes through the installed runner's agent: the Python agent could not start
    code, back, err = cli(capsys, "--rollback", "-i", str(inv), "--output", "json")
    assert code == 0, err
    current = remote / "releases" / second["hosts"][0]["binary_name"] / "current"
    assert os.readlink(current).endswith(first["hosts"][0]["sha256"])
    # rustle-exec runs the restored release through it too
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps(first))
    proc = subprocess.run([str(Path(sys.executable).parent / "rustle-exec"), str(manifest), "--output", "json"],
                          capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "Welcome to bench-0000 (role: web)" in (root / "app" / "motd").read_text()


@pytest.mark.ssh
def runner_sha(err: str) -> str:
    """The short sha256 of the x86-64 runner -v names for bench-0000."""
    return err.split("format: native for bench-0000: the plan lowers; rustle-runner ", 1)[1][:12]


def test_auto_honours_a_hosts_target_and_remembers_the_machine_it_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any,
    aarch64_runner: RunnerBinary, auto: Path,  # noqa: F811 - the fixture imported above
) -> None:
    """bench-0001 is declared aarch64: auto sends it the aarch64 runner, which the bootstrap's
    probe finds this x86-64 host cannot execute (uname -sm: Linux x86_64): nothing is installed,
    and the host gets the x86-64 runner in the same deployment; the history keeps its machine,
    and the next deployments send it the x86-64 runner at once."""
    hosts, roots = {}, {}
    for i in range(2):
        name = f"bench-{i:04d}"
        roots[name] = seeded(tmp_path / f"root{i}")
        extra = {"rustle_target": AARCH64} if i == 1 else {}
        hosts[name] = {**sshd.host(name, tmp_path / f"remote{i}").vars, "bench_root": str(roots[name]),
                       "bench_role": "web", **extra}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = workload_for(tmp_path, sorted(hosts))
    x86 = controller_target()
    machine = os.uname().machine

    code, cold, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: native for bench-0000: the plan lowers; rustle-runner " in err and f"for {x86} (" in err
    assert (f"format: native for bench-0001: the plan lowers; rustle-runner {aarch64_runner.sha256[:12]} "
            f"for {AARCH64} (") in err
    sha = aarch64_runner.sha256[:12]
    assert (f"bench-0001: cannot run rustle-runner {sha}: it is Linux {machine}, rustle-runner {sha} is built for "
            "Linux aarch64 (nothing was installed); deploying the native artifact ") in err, err
    assert f"for rustle-runner {runner_sha(err)} ({x86}) there instead" in err, err
    assert "deploying the pyz artifact" not in err
    by_name = {h["name"]: h for h in cold["hosts"]}
    assert by_name["bench-0001"]["platform"]["python"] is None and by_name["bench-0000"]["platform"]["python"] is None
    assert not list((tmp_path / "remote1" / "runners").glob(f"{aarch64_runner.sha256}*"))  # nothing of it was left
    assert all(h["recap"]["changed"] == 9 and h["ok"] for h in cold["hosts"]), cold
    with closing(sqlite3.connect(Path(os.environ["HOME"]) / ".rustle" / "state.db")) as db:
        rows = db.execute("SELECT host, sha256, machine FROM runner_failures").fetchall()
    assert rows == [("bench-0001", aarch64_runner.sha256, machine)]

    # the recorded machine picks the runner: both hosts run the x86-64 one, nothing falls back
    for _ in range(2):  # and it stays so once the x86-64 runner ran there
        code, warm, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
        assert code == 0, err
        lines = [ln for ln in err.splitlines() if ln.startswith("format: native for ")]
        assert [ln.split(":")[1] for ln in lines] == [" native for bench-0000", " native for bench-0001"], err
        assert all(f"for {x86} (a host that cannot execute it gets pyz); the target: the {machine} it reported "
                   "in deployment d-" in ln for ln in lines), lines
        assert "cannot install" not in err and "deploying the pyz artifact" not in err
        assert all(h["platform"]["python"] is None for h in warm["hosts"]), warm
        assert all(h["recap"]["changed"] == 0 and h["ok"] for h in warm["hosts"]), warm
    assert (tmp_path / "remote1" / "runners").is_dir()


def test_auto_gives_pyz_to_a_host_whose_target_has_no_runner(
    capsys: pytest.CaptureFixture[str], auto: Path, copy_plan: CopyPlan
) -> None:
    """A rustle_target no runner exists for: that host gets pyz (-v says why), the others native."""
    plan, inv, root = copy_plan(a={}, b={"rustle_target": "riscv64gc-unknown-linux-gnu"})
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "format: pyz for b: rustle_target=riscv64gc-unknown-linux-gnu: --target riscv64gc-unknown-linux-gnu: " \
           "rustle-runner is built for" in err
    assert "format: native for a: the plan lowers; rustle-runner " in err
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["b"]["platform"]["python"] and by_name["a"]["platform"]["python"] is None
    assert sorted(p.name for p in root.iterdir()) == ["a", "b"]


def test_auto_builds_for_the_machine_a_host_reported_before_without_a_failure_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], auto: Path, rustle_home: Path, copy_plan: CopyPlan
) -> None:
    """Every agent's done line reports the host's machine; the history keeps it (host_platforms),
    and the next --format auto deployment builds that host's runner for it: a host declared
    aarch64 that said x86-64 (through pyz here) gets the x86-64 runner at once, no failed
    install first, and -v says where its target came from."""
    plan, inv, _ = copy_plan(a={"rustle_target": AARCH64})
    remote = tmp_path / "ra"
    code, first, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "pyz")
    assert code == 0, err
    machine = os.uname().machine
    with closing(sqlite3.connect(rustle_home / ".rustle" / "state.db")) as db:
        rows = db.execute("SELECT host, remote_dir, system, machine, deployment_id FROM host_platforms").fetchall()
    assert rows == [("a", str(remote), "Linux", machine, first["deployment_id"])]
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    x86 = controller_target()
    assert "format: native for a: the plan lowers; rustle-runner " in err, err
    assert (f"for {x86} (a host that cannot execute it gets pyz); the target: the {machine} it reported in "
            f"deployment {first['deployment_id']}") in err, err
    assert "cannot install" not in err and "deploying the pyz artifact" not in err
    assert doc["hosts"][0]["platform"]["python"] is None and doc["hosts"][0]["ok"]
    with closing(sqlite3.connect(rustle_home / ".rustle" / "state.db")) as db:
        assert db.execute("SELECT deployment_id FROM host_platforms").fetchall() == [(doc["deployment_id"],)]
        assert db.execute("SELECT COUNT(*) FROM runner_failures").fetchone() == (0,)


def test_auto_gives_pyz_to_a_host_that_reported_a_machine_no_runner_exists_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], auto: Path, rustle_home: Path, copy_plan: CopyPlan
) -> None:
    """The history says host b could not execute a runner and is armv7l: auto gives it pyz,
    whatever its rustle_target says, and -v says why; a keeps the runner."""
    from rustle_deploy.state import History

    plan, inv, root = copy_plan(a={}, b={"rustle_target": AARCH64})
    with History(rustle_home / ".rustle" / "state.db") as history:
        history.record_runner_failure("b", str(tmp_path / "rb"), "f" * 64, "exit 126 on armv7l", "d-earlier", "armv7l")
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert ("format: pyz for b: it is armv7l (it said so in deployment d-earlier), for which no rustle-runner "
            "exists") in err
    assert "format: native for a: the plan lowers" in err and AARCH64 + " (" not in err
    by_name = {h["name"]: h for h in doc["hosts"]}
    assert by_name["b"]["platform"]["python"] and by_name["a"]["platform"]["python"] is None
    assert sorted(p.name for p in root.iterdir()) == ["a", "b"]


@pytest.mark.ssh
def test_a_host_without_python_is_cleaned_up_through_the_runner(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, no_python_sshd: tuple[int, Path], auto: Path,
) -> None:
    """--cleanup (and --dry-run) reach hosts without Python through the runner's agent: what
    rustle-deploy made goes, what it did not make stays, as with the Python agent
    (tests/integration/test_cleanup.py)."""
    port, known = no_python_sshd
    hosts = {}
    for i in range(2):
        name = f"bench-{i:04d}"
        h = sshd.host(name, tmp_path / f"remote{i}", ansible_port=port,
                      ansible_ssh_common_args=f"-o UserKnownHostsFile={known}")
        hosts[name] = {**h.vars, "bench_root": str(seeded(tmp_path / f"root{i}")), "bench_role": "web"}
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = workload_for(tmp_path, sorted(hosts))
    code, first, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert all(h["platform"]["python"] is None for h in first["hosts"])
    mixed, clean = tmp_path / "remote0", tmp_path / "remote1"
    assert os.listdir(mixed / "runners") and os.listdir(mixed / "runs") and (mixed / "history.jsonl").is_file()
    foreign = {"notes.txt": "mine\n", "artifacts/notes.txt": "mine\n", "runs/notes.jsonl": '{"not": "a run journal"}\n'}
    for rel, text in foreign.items():
        (mixed / rel).write_text(text)
    (mixed / "lock").unlink()  # a dry run must not create it

    def trees() -> dict[str, Any]:
        return {d.name: sorted(str(p.relative_to(d)) for p in d.rglob("*")) for d in (mixed, clean)}

    before = trees()
    code, dry, err = cli(capsys, "--cleanup", "--dry-run", "-i", str(inv), "--output", "json")
    assert code == 0, err
    assert trees() == before, "a dry run changes nothing"
    by_name = {h["name"]: h for h in dry["hosts"]}
    would = by_name["bench-0000"]
    assert {e["path"]: e["ours"] for e in would["would_leave"]} == {
        "notes.txt": False, "artifacts/notes.txt": False, "artifacts/": True, "runs/notes.jsonl": False, "runs/": True}
    assert "lock" not in would["would_remove"] and "lock" in by_name["bench-0001"]["would_remove"]
    assert any(p.startswith("runners/") for p in would["would_remove"]) and "history.jsonl" in would["would_remove"]
    assert by_name["bench-0001"]["would_remove_remote_dir"] is True and would["would_remove_remote_dir"] is False

    code, real, err = cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, err
    done = {h["name"]: h for h in real["hosts"]}
    for name, h in done.items():
        assert h["ok"], h
        assert sorted(h["removed"]) == sorted(by_name[name]["would_remove"])
        assert h["left"] == by_name[name]["would_leave"]
    assert not clean.exists(), "a remote dir holding only rustle-deploy's files is removed"
    assert sorted(os.listdir(mixed)) == sorted(["notes.txt", "artifacts", "runs", ".created-by-rustle-deploy"])
    assert {rel: (mixed / rel).read_text() for rel in foreign} == foreign, "what it did not make survives"
    assert os.listdir(mixed / "artifacts") == ["notes.txt"] and os.listdir(mixed / "runs") == ["notes.jsonl"]
    # a second cleanup: the runner the hosts ran is sent again, cleans, and goes again
    # (docs/native.md); the foreign entries stay, the clean host's remote dir stays away
    code, again, err = cli(capsys, "--cleanup", "-i", str(inv), "--output", "json")
    assert code == 0, (again, err)
    done = {h["name"]: h for h in again["hosts"]}
    assert all(h["ok"] for h in done.values()), done
    assert any(p.startswith("runners/") for p in done["bench-0000"]["removed"]), done["bench-0000"]
    assert not clean.exists(), "the clean host's remote dir is not made again"
    assert {rel: (mixed / rel).read_text() for rel in foreign} == foreign
    assert not (mixed / "runners").exists() and not (mixed / "history.jsonl").exists()
    assert sorted(os.listdir(mixed)) == sorted(["notes.txt", "artifacts", "runs", ".created-by-rustle-deploy"])
    # a dry run sends nothing: without Python and without a runner there it cannot be asked
    code, dry_again, err = cli(capsys, "--cleanup", "--dry-run", "-i", str(inv), "--limit", "bench-0000",
                               "--output", "json")
    assert code == 1 and "no usable Python" in dry_again["hosts"][0]["error"], (dry_again, err)
    assert not (mixed / "runners").exists()


def test_a_host_whose_glibc_is_older_than_the_runner_needs_gets_the_static_runner_and_native_refuses_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], static_runner: RunnerBinary, auto: Path, rustle_home: Path,
    runner: RunnerBinary, copy_plan: CopyPlan,
) -> None:
    """Each agent's done line says the host's C library (host_platforms.libc): the Python agent's
    and the runner's alike. A host that reported a glibc older than the one the runner was
    linked against gets the static runner of its target from --format auto (-v says why), pyz
    when -t forces the dynamic target, and is refused by --format native (exit 2, nothing run).
    The old version is a fake value written into the real history."""
    from rustle_deploy.compiler.runner import glibc_needed

    plan, inv, _ = copy_plan(a={})
    remote = tmp_path / "ra"
    db_path = rustle_home / ".rustle" / "state.db"
    libc = os.confstr("CS_GNU_LIBC_VERSION")
    code, first, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "pyz")
    assert code == 0, err
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT libc FROM host_platforms").fetchall() == [(libc,)]  # Python's agent said it
        db.execute("UPDATE host_platforms SET libc = 'glibc 2.2'")
        db.commit()
    need = glibc_needed(runner.path, runner.sha256)
    assert need is not None and need > (2, 2)
    shown = ".".join(map(str, need))
    because = (f"its C library is glibc 2.2 (it said so in deployment {first['deployment_id']}), "
               f"older than the glibc {shown} that rustle-runner {runner.sha256[:12]}")
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert (f"format: native for a: the plan lowers; rustle-runner {static_runner.sha256[:12]} for "
            f"{static_runner.target} (a host that cannot execute it gets pyz); the target: the {os.uname().machine} "
            f"it reported in deployment {first['deployment_id']}, +static because {because}") in err, err
    assert doc["hosts"][0]["platform"]["python"] is None and doc["hosts"][0]["ok"]  # the static runner ran
    assert (remote / "runners" / static_runner.sha256).is_file()
    with closing(sqlite3.connect(db_path)) as db:
        db.execute("UPDATE host_platforms SET libc = 'glibc 2.2'")
        db.commit()
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v", "-t", runner.target)
    assert code == 0, err
    assert "format: pyz for a: its C library is glibc 2.2 (it said so in deployment d-" in err, err
    assert f"older than the glibc {shown} that rustle-runner {runner.sha256[:12]}" in err, err  # -t: pyz
    assert doc["hosts"][0]["platform"]["python"] is not None and doc["hosts"][0]["ok"]  # pyz ran
    with closing(sqlite3.connect(db_path)) as db:
        db.execute("UPDATE host_platforms SET libc = 'glibc 2.2'")
        db.commit()
    runs = sorted((remote / "runs").glob("*.jsonl"))
    code, _, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native")
    assert code == 2, err
    assert "--format native cannot run on a: its C library is glibc 2.2" in err, err
    assert "use --format auto (it deploys pyz to that host), or a static runner" in err, err
    assert sorted((remote / "runs").glob("*.jsonl")) == runs  # nothing ran
    with closing(sqlite3.connect(db_path)) as db:
        db.execute("DELETE FROM host_platforms")
        db.commit()
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "--format", "native")
    assert code == 0, err
    assert doc["hosts"][0]["platform"]["python"] is None  # the runner ran, and said its C library
    with closing(sqlite3.connect(db_path)) as db:
        assert db.execute("SELECT libc FROM host_platforms").fetchall() == [(libc,)]


def test_a_new_host_with_an_older_glibc_gets_the_static_runner_in_the_same_deployment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], static_runner: RunnerBinary, auto: Path,
    runner: RunnerBinary, rustle_home: Path, monkeypatch: pytest.MonkeyPatch, copy_plan: CopyPlan,
) -> None:
    """A host never seen before whose loader refuses the dynamic runner says what it is (the
    bootstrap's getconf GNU_LIBC_VERSION after the failed start; here a chmod first on PATH
    leaves the dynamic runner not executable, so its start fails as on an old glibc, and a
    getconf answers glibc 2.17): the dynamic runner is not installed, and --format auto sends
    the static one in the same deployment, which runs the plan; the next deployment sends the
    static runner at once."""
    from rustle_deploy.compiler.runner import glibc_needed

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "getconf").write_text("#!/bin/sh\necho glibc 2.17\n")
    (fake / "chmod").write_text(f'#!/bin/sh\ncase "$2" in */{runner.sha256}.tmp.*) exit 0;; esac\n'
                                f'exec {shutil.which("chmod")} "$@"\n')
    for tool in ("getconf", "chmod"):
        (fake / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    plan, inv, root = copy_plan(a={})
    remote = tmp_path / "ra"
    need = ".".join(map(str, glibc_needed(runner.path, runner.sha256) or ()))
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    dyn, static = runner.sha256[:12], static_runner.sha256[:12]
    assert (f"a: cannot run rustle-runner {dyn}: its C library is glibc 2.17, rustle-runner {dyn} needs glibc {need} "
            "or newer (nothing was installed); deploying the native artifact ") in err, err
    assert f"for rustle-runner {static} ({static_runner.target}) there instead" in err, err
    assert doc["hosts"][0]["ok"] and doc["hosts"][0]["platform"]["python"] is None, doc  # the static runner ran
    assert (root / "a").read_text() == "x\n"
    assert sorted(p.name for p in (remote / "runners").iterdir()) == [static_runner.sha256]
    with closing(sqlite3.connect(rustle_home / ".rustle" / "state.db")) as db:
        assert db.execute("SELECT host, libc FROM host_platforms").fetchall() == [("a", "glibc 2.17")]
        assert db.execute("SELECT host, sha256 FROM runner_failures").fetchall() == [("a", runner.sha256)]
    code, doc, err = cli(capsys, str(plan), "-i", str(inv), "--run", "--output", "json", "-v")
    assert code == 0, err
    assert "cannot run" not in err and "+static because its C library is glibc 2.17 (it said so in deployment" in err, err
    assert doc["hosts"][0]["ok"] and doc["hosts"][0]["recap"]["changed"] == 0, doc
