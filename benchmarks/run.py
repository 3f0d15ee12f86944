"""Benchmark harness: the same 12-task workload applied by ansible-playbook, pyinfra and
rustle-deploy (plus the floor no tool can beat) to N local sshd hosts, cold and warm.

    .venv/bin/python benchmarks/run.py --hosts 1,10,50 --latency 0,25 \
        --tools ansible,pyinfra,rustle,floor --repeat 3 --out benchmarks/out/

For every (latency, N) it starts one fleet (hosts.py) and then, `--repeat` times, with the
tool order rotated each time: make every host fresh, run the tool (cold), check, run it again
(warm), check. Every run records wall time, controller CPU seconds and peak RSS, and host CPU
seconds (README.md says exactly how). Results go to OUT/results.jsonl; the summary table
(medians, and rustle-deploy's ratios to Ansible and pyinfra measured in the same invocation)
to stdout and OUT/summary.md.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check import check_run  # noqa: E402
from hosts import Fleet, Host, children  # noqa: E402
from plan import WORKLOAD, write_plan  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
BASE_BIN: Path | None = None  # --base: the bin directory of another installation, run as "rustle-base"
ANSIBLE_MAX_HOSTS = 50  # ansible-core is measured up to here (forks = N), the rest beyond
FLOOR_BYTES = 200_000  # stand-in artifact size when rustle-deploy has not built one
TIMEOUT = 3600.0
# Where the runner is built once per source (seed_runner), shared by every OUT: outside OUT, so
# that a new output directory reuses the build of the same sources (ensure_runner hashes them).
RUNNER_CACHE = Path(os.environ.get("RUSTLE_BENCH_RUNNER_CACHE", f"/tmp/rustle-bench-runner-{os.getuid()}"))


@dataclass
class Result:
    tool: str
    hosts: int
    latency_ms: float
    phase: str  # cold | warm
    repeat: int
    ok: bool
    wall_s: float = 0.0
    controller_cpu_s: float = 0.0
    controller_peak_mb: float = 0.0
    host_cpu_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    load_1m: float = 0.0  # the machine's 1-minute load average when the run started


@dataclass
class Ctx:
    """What a tool function needs for one run."""

    fleet: Fleet
    hosts: list[Host]
    rundir: Path  # per tool and configuration; HOME and cwd of the tool, kept cold -> warm
    cold: bool

    @property
    def n(self) -> int:
        return len(self.hosts)


# -- measuring one subprocess ------------------------------------------------------------------
def become_subreaper() -> None:
    """Adopt orphans (ssh ControlPersist masters) so their CPU is reaped and counted here."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


@dataclass
class Run:
    """One measured tool process."""

    rc: int
    stdout: str
    stderr: str
    wall_s: float
    cpu_s: float
    peak_mb: float


def measure(argv: list[str], ctx: Ctx, env: dict[str, str] | None = None) -> Run:
    """Run argv in ctx.rundir with HOME=rundir/home and the venv first on PATH.

    CPU and peak RSS come from wait4() on the tool (which covers every descendant it reaped)
    plus wait4() on the descendants it left behind (adopted because we are a subreaper),
    which are terminated once the tool has exited. The module bridge's fork servers kept on the
    hosts (``rustle_bridge_keep``: detached, so adopted here) are left alive after a cold run, for
    the warm run to use, and ended and counted with the warm run (as controller CPU: an
    overstatement of that run's cost, never an understatement).
    """
    stem = ctx.rundir / ("cold" if ctx.cold else "warm")
    keep = {s.proc.pid for s in ctx.fleet.servers} | ({ctx.fleet.proxy.pid} if ctx.fleet.proxy else set())
    full_env = {**os.environ, "HOME": str(ctx.rundir / "home"),
                "PATH": f"{VENV_BIN}:{os.environ['PATH']}", **(env or {})}
    out_path, err_path = stem.with_suffix(".out"), stem.with_suffix(".err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=ctx.rundir, env=full_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        fd = os.pidfd_open(proc.pid)
        if not select.select([fd], [], [], TIMEOUT)[0]:
            os.killpg(proc.pid, signal.SIGKILL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        os.close(fd)
        proc.returncode = os.waitstatus_to_exitcode(status)
    cpu, rss = usage.ru_utime + usage.ru_stime, usage.ru_maxrss
    for pid in children(os.getpid()):
        if pid in keep or (ctx.cold and _kept_bridge_server(pid)):
            continue
        os.kill(pid, signal.SIGTERM)
        _, _, u = os.wait4(pid, 0)
        cpu, rss = cpu + u.ru_utime + u.ru_stime, max(rss, u.ru_maxrss)
    return Run(proc.returncode, out_path.read_text(errors="replace"),
               err_path.read_text(errors="replace"), wall, cpu, rss / 1024)


def _kept_bridge_server(pid: int) -> bool:
    """Whether ``pid`` is a fork server of the module bridge kept between runs: ``python -c
    FORKSERVER LIB SOCKET KEEP ...`` with its socket in a remote directory's ``bridge/``."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return len(argv) > 5 and argv[1] == b"-c" and b"/bridge/" in argv[4] and argv[5] != b"0"


# -- the tools: each returns (exit code, output to check) and is measured by measure() ---------
def run_ansible(ctx: Ctx) -> Run:
    inv = ctx.fleet.write_ansible_inventory(ctx.rundir / "inventory.yml", ctx.hosts)
    cfg = ctx.rundir / "ansible.cfg"
    cfg.write_text(
        "[defaults]\n"
        f"forks = {min(ctx.n, ANSIBLE_MAX_HOSTS)}\n"
        "gathering = explicit\nhost_key_checking = True\nretry_files_enabled = False\n"
        "[ssh_connection]\n"
        "pipelining = True\n"
        "ssh_args = -C -o ControlMaster=auto -o ControlPersist=60s\n"
        f"control_path_dir = /tmp/bench-cp-{os.getpid()}\n"
    )
    return measure([str(VENV_BIN / "ansible-playbook"), "-i", str(inv), str(WORKLOAD / "site.yml")],
                   ctx, {"ANSIBLE_CONFIG": str(cfg)})


def run_pyinfra(ctx: Ctx) -> Run:
    if not (VENV_BIN / "pyinfra").exists():  # the bench extra, not in requirements.lock
        return Run(127, "", f"pyinfra is not installed in {VENV_BIN}; hint: pip install -e '.[bench]' "
                            "(make bench does)", 0.0, 0.0, 0.0)
    inv = ctx.fleet.write_pyinfra_inventory(ctx.rundir / "inventory.py", ctx.hosts)
    return measure([str(VENV_BIN / "pyinfra"), "-y", "--parallel", str(ctx.n), str(inv),
                    str(WORKLOAD / "deploy.py")], ctx)


def run_rustle(ctx: Ctx, *extra: str, env: dict[str, str] | None = None,
               host_vars: dict[str, object] | None = None, python_tasks: int = 0, bin_dir: Path = VENV_BIN) -> Run:
    """rustle-deploy as a user runs it: no format flag (--format auto: the native runner where
    the plan lowers, which the workload does). The cold run's empty ~/.rustle starts with the
    runner, as an installation that ships prebuilt runners has it (``seed_runner``). ``bin_dir``:
    the installation whose rustle-deploy runs (``--base`` for rustle-base)."""
    if not extra:  # auto (the bridge runs too: they lower to nothing and use pyz)
        failed = seed_runner(ctx, bin_dir)
        if failed is not None:
            return failed
    inv = ctx.fleet.write_ansible_inventory(ctx.rundir / "inventory.yml", ctx.hosts)
    if host_vars:
        doc = json.loads(inv.read_text())
        for v in doc["all"]["hosts"].values():
            v.update(host_vars)
        inv.write_text(json.dumps(doc, indent=1))
    plan = write_plan(ctx.rundir / "plan.json", [h.name for h in ctx.hosts], WORKLOAD, python_tasks)
    return measure([str(bin_dir / "rustle-deploy"), str(plan), "-i", str(inv), "--run",
                    "--output", "json", "--parallel", str(ctx.n), *extra], ctx, env)


def run_rustle_pyz(ctx: Ctx) -> Run:
    """rustle-deploy with --format pyz: the Python runtime on every host."""
    return run_rustle(ctx, "--format", "pyz")


BRIDGED = "stat,lineinfile,file"  # the workload's modules run with Ansible's code by rustle-bridge


def run_rustle_bridge(ctx: Ctx) -> Run:
    """rustle-deploy with three of the workload's modules (stat, lineinfile, file: 6 of its 12
    tasks) run through the module bridge with ansible-core's own code instead of the built-ins."""
    return run_rustle(ctx, env={"RUSTLE_BRIDGE_MODULES": BRIDGED})


BRIDGED3 = "stat,lineinfile"  # 3 of the 12 tasks (stat, both lineinfile): rustle-bridge3


def run_rustle_bridge3(ctx: Ctx) -> Run:
    """rustle-deploy with three of the workload's tasks (the stat and both lineinfile tasks)
    run through the module bridge with ansible-core's own code."""
    return run_rustle(ctx, env={"RUSTLE_BRIDGE_MODULES": BRIDGED3})


def run_rustle_bridge3_nokeep(ctx: Ctx) -> Run:
    """rustle-bridge3 with the bridge's fork server not kept between runs (``rustle_bridge_keep:
    0``, docs/bridge.md): every host run starts one and imports ansible.module_utils.basic. By
    default (rustle-bridge3) the warm run's modules fork from the server the cold run left."""
    return run_rustle(ctx, env={"RUSTLE_BRIDGE_MODULES": BRIDGED3}, host_vars={"rustle_bridge_keep": 0})


def run_rustle_bridge3_seeded(ctx: Ctx) -> Run:
    """rustle-bridge3 whose cold run starts with the controller's bridge cache (``~/.rustle/cache/
    bridge/``: ansible-core's answers for stat and lineinfile and their module_utils, docs/bridge.md)
    from an earlier compile of the same plan from the same working directory (part of the cache's
    key: an ansible.cfg there would count) in another HOME: a controller that has used these
    modules once, against fresh hosts. Without it the cold run asks ansible-core (~1 s of CPU)."""
    if ctx.cold:
        seed = ctx.rundir.parent / "bridge-cache-seed"
        shutil.rmtree(seed, ignore_errors=True)
        (seed / "home").mkdir(parents=True)
        plan = write_plan(seed / "plan.json", [h.name for h in ctx.hosts], WORKLOAD)
        inv = ctx.fleet.write_ansible_inventory(seed / "inventory.yml", ctx.hosts)
        built = subprocess.run([str(VENV_BIN / "rustle-deploy"), str(plan), "-i", str(inv), "--compile-only",
                                "--format", "pyz", "-o", str(seed / "target")], capture_output=True, text=True, cwd=ctx.rundir,
                               env={**os.environ, "HOME": str(seed / "home"), "RUSTLE_BRIDGE_MODULES": BRIDGED3})
        if built.returncode != 0:
            return Run(built.returncode, built.stdout, built.stderr, 0.0, 0.0, 0.0)
        shutil.copytree(seed / "home" / ".rustle" / "cache" / "bridge",
                        ctx.rundir / "home" / ".rustle" / "cache" / "bridge", dirs_exist_ok=True)
    return run_rustle(ctx, env={"RUSTLE_BRIDGE_MODULES": BRIDGED3})


def seed_runner(ctx: Ctx, bin_dir: Path = VENV_BIN) -> Run | None:
    """Build the runner once per source (cargo, ~1 min idle, 8+ min under load) into a cache
    outside the cold run's empty ~/.rustle, which then starts with a copy of it: a user builds it
    once (or gets it prebuilt), not on every deployment; the cold run still uploads it to every
    host. The cache (``RUNNER_CACHE``) is shared by every output directory and checkout, and asked
    for the runner of the sources as they are now (``ensure_runner``: they are hashed, and a
    change builds again), and only that runner is copied, never one another version of the
    sources left there. A Run when it cannot be built (no cargo, say: reported as "not
    available", the rest goes on)."""
    seed = RUNNER_CACHE
    seed.mkdir(mode=0o700, exist_ok=True)
    built = subprocess.run([str(bin_dir / "python"), "-c",
                            "import sys; from pathlib import Path; from rustle_deploy.compiler.runner import "
                            "ensure_runner; from rustle_deploy.compiler.toolchain import source_key; "
                            "print(ensure_runner(Path(sys.argv[1])).sha256, source_key())", str(seed)],
                           capture_output=True, text=True)
    if built.returncode != 0:
        return Run(built.returncode, built.stdout, built.stderr, 0.0, 0.0, 0.0)
    sha, key = built.stdout.split()
    if ctx.cold:
        src, dest = seed / "native", ctx.rundir / "home" / ".rustle" / "cache" / "native"
        (dest / "index").mkdir(parents=True, exist_ok=True)
        for name in (f"rustle-runner-{sha}", f"rustle-runner-{sha}.gz", f"index/{key}"):
            shutil.copy2(src / name, dest / name)
    return None


def run_rustle_base(ctx: Ctx, python_tasks: int = 0) -> Run:
    """``rustle`` run by another installation of rustle-deploy (``--base``: its venv's bin
    directory), for an A/B comparison of two versions side by side in one run."""
    if BASE_BIN is None:
        return Run(2, "", "rustle-base needs --base BIN_DIR (another installation's venv bin directory)",
                   0.0, 0.0, 0.0)
    return run_rustle(ctx, bin_dir=BASE_BIN, python_tasks=python_tasks)


def run_rustle_bridge3_base(ctx: Ctx) -> Run:
    """rustle-bridge3 run by ``--base``'s installation (an A/B of the bridge's cost)."""
    if BASE_BIN is None:
        return Run(2, "", "rustle-bridge3-base needs --base BIN_DIR", 0.0, 0.0, 0.0)
    return run_rustle(ctx, env={"RUSTLE_BRIDGE_MODULES": BRIDGED3}, bin_dir=BASE_BIN)


def run_rustle_native(ctx: Ctx) -> Run:
    """rustle-deploy with --format native (the runner seeded as for ``run_rustle``)."""
    failed = seed_runner(ctx)
    return failed if failed is not None else run_rustle(ctx, "--format", "native")


def run_rustle_hybrid(ctx: Ctx, python_tasks: int) -> Run:
    """rustle-deploy with --format hybrid on the workload with ``python_tasks`` of its tasks in
    a form the runner cannot run (plan.PYTHON_TASKS): the runner runs the rest and hands those
    to the host's Python, started once per run."""
    failed = seed_runner(ctx)
    return failed if failed is not None else run_rustle(ctx, "--format", "hybrid", python_tasks=python_tasks)


def run_floor(ctx: Ctx) -> Run:
    """One OpenSSH connection per host, all at once: copy the artifact, run `true`."""
    artifact = ctx.rundir / "artifact.bin"
    native, runners, built = [], [], []  # what rustle-deploy (auto or native) built in this configuration
    for tool in ("rustle", "rustle-native", "rustle-pyz"):
        native += sorted((ctx.rundir.parent / tool).glob("home/.rustle/**/*.native"))
        # the runner as a cold run sends it: gzip'd (compiler.runner.packed)
        runners += sorted((ctx.rundir.parent / tool).glob("home/.rustle/**/native/rustle-runner-*.gz"))
        built += sorted((ctx.rundir.parent / tool).glob("home/.rustle/**/*.pyz"))
    if native and runners:  # what a cold native run sends: the runner, then the artifact
        artifact.write_bytes(runners[-1].read_bytes() + native[-1].read_bytes())
    elif built:
        artifact = built[-1]
    elif not artifact.exists():
        artifact.write_bytes(os.urandom(FLOOR_BYTES))
    script = ctx.rundir / "floor.sh"
    f = ctx.fleet
    lines = ["#!/bin/sh", "pids="]
    for h in ctx.hosts:
        lines.append(
            f"ssh -o BatchMode=yes -o UserKnownHostsFile={f.known_hosts} -o StrictHostKeyChecking=yes "
            f"-i {f.client_key} -p {h.port} root@127.0.0.1 'cat > {h.root.parent}/floor.bin && true' "
            f"< {artifact} & pids=\"$pids $!\"")
    lines += ["rc=0", "for p in $pids; do wait $p || rc=1; done", "exit $rc"]
    script.write_text("\n".join(lines) + "\n")
    return measure(["/bin/sh", str(script)], ctx)


TOOLS: dict[str, Callable[[Ctx], Run]] = {
    "ansible": run_ansible, "pyinfra": run_pyinfra, "rustle": run_rustle, "rustle-base": run_rustle_base,
    "rustle-pyz": run_rustle_pyz,
    "rustle-native": run_rustle_native, "rustle-bridge": run_rustle_bridge,
    "rustle-bridge3": run_rustle_bridge3, "rustle-bridge3-nokeep": run_rustle_bridge3_nokeep,
    "rustle-bridge3-seeded": run_rustle_bridge3_seeded, "rustle-bridge3-base": run_rustle_bridge3_base,
    "floor": run_floor,
    # the workload with 1 or 3 tasks the runner cannot run: hybrid, and pyz on the same plan
    "rustle-hybrid1": lambda ctx: run_rustle_hybrid(ctx, 1),
    "rustle-hybrid3": lambda ctx: run_rustle_hybrid(ctx, 3),
    "rustle-pyz3": lambda ctx: run_rustle(ctx, "--format", "pyz", python_tasks=3),
    # that plan under --format auto (the default), which gives it pyz: it does not lower; and
    # the same by --base's installation (one ssh connection per host or two: docs/remote.md)
    "rustle-auto3": lambda ctx: run_rustle(ctx, python_tasks=3),
    "rustle-base-auto3": lambda ctx: run_rustle_base(ctx, python_tasks=3),
}


# -- the matrix -------------------------------------------------------------------------------
def run_one(tool: str, ctx: Ctx, repeat: int, latency: float) -> Result:
    phase = "cold" if ctx.cold else "warm"
    host_cpu0 = ctx.fleet.host_cpu()
    load = os.getloadavg()[0]
    run = TOOLS[tool](ctx)
    host_cpu = ctx.fleet.host_cpu() - host_cpu0
    res = Result(tool, ctx.n, latency, phase, repeat, run.rc == 0, run.wall_s, run.cpu_s,
                 run.peak_mb, host_cpu, load_1m=load)
    if run.rc != 0:
        tail = [ln for ln in (run.stdout + run.stderr).splitlines() if ln.strip()][-2:]
        res.problems = [f"exit {run.rc}: " + " | ".join(tail)]
    elif tool != "floor":
        roles = {h.name: str(ctx.fleet.host_vars(h)["bench_role"]) for h in ctx.hosts}
        rustle = tool.startswith("rustle")
        report = run.stdout if rustle else run.stdout + run.stderr  # rustle: JSON only
        res.problems = check_run("rustle" if rustle else tool, report, ctx.hosts, roles, ctx.cold)
        res.ok = not res.problems
    return res


def run_config(n: int, latency: float, tools: list[str], repeats: int, out: Path,
               servers: int | None, emit: Callable[[Result], None]) -> None:
    tools = [t for t in tools if not (t == "ansible" and n > ANSIBLE_MAX_HOSTS)]
    work = out / "work" / f"n{n}-l{latency:g}"
    with Fleet(work / "fleet", n, latency, servers) as fleet:
        for r in range(repeats):
            order = tools[r % len(tools):] + tools[:r % len(tools)]  # alternate the order
            for tool in order:
                rundir = work / tool
                fleet.discard(rundir)  # as the hosts' trees (Fleet.discard)
                (rundir / "home").mkdir(parents=True)
                fleet.reset()
                for cold in (True, False):
                    res = run_one(tool, Ctx(fleet, fleet.hosts, rundir, cold), r, latency)
                    emit(res)
                    if not res.ok:
                        break  # a failed cold run leaves nothing meaningful to re-run warm


def summarize(results: list[Result]) -> str:
    """Markdown table of medians per (latency, N, phase), with rustle-deploy's ratios: the ratio of
    the medians and, with repeats, its lowest and highest value within one repeat."""
    groups: dict[tuple[float, int, str], dict[str, list[Result]]] = {}
    for r in results:
        groups.setdefault((r.latency_ms, r.hosts, r.phase), {}).setdefault(r.tool, []).append(r)
    tools = [t for t in TOOLS if any(r.tool == t for r in results)]
    head = ["latency", "N", "run"] + [f"{t} wall s (ctl CPU / host CPU / MB)" for t in tools]
    mine = [t for t in ("rustle", "rustle-base", "rustle-pyz", "rustle-native", "rustle-bridge", "rustle-bridge3",
                        "rustle-bridge3-nokeep", "rustle-bridge3-seeded", "rustle-bridge3-base") if t in tools]
    peers = {t: ("rustle", "rustle-pyz") if t.startswith("rustle-bridge") else ("ansible", "pyinfra", "floor")
             for t in mine}
    if "rustle" in peers:
        peers["rustle"] += ("rustle-base",)
    if "rustle-auto3" in tools:
        mine.append("rustle-auto3")
        peers["rustle-auto3"] = ("rustle-base-auto3", "rustle-pyz3")
    head += [f"{t}:{peer}" for t in mine for peer in peers[t]]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def med(rs: list[Result], attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in rs)

    for (lat, n, phase), by_tool in sorted(groups.items()):
        cells = [f"{lat:g} ms", str(n), phase]
        walls: dict[str, float] = {}
        for t in tools:
            ok = [r for r in by_tool.get(t, []) if r.ok]
            if ok:
                walls[t] = med(ok, "wall_s")
                cells.append(f"{walls[t]:.2f} ({med(ok, 'controller_cpu_s'):.2f} / "
                             f"{med(ok, 'host_cpu_s'):.2f} / {med(ok, 'controller_peak_mb'):.0f})")
            else:
                cells.append("failed" if by_tool.get(t) else "-")
        for t in mine:
            for peer in peers[t]:
                if t not in walls or peer not in walls:
                    cells.append("-")
                    continue
                cell = f"{walls[t] / walls[peer]:.3f}"
                pairs = _per_repeat(by_tool[t], by_tool[peer])
                if len(pairs) > 1:  # the spread of the same ratio within each repeat
                    cell += f" ({min(pairs):.2f}-{max(pairs):.2f})"
                cells.append(cell)
        rows.append("| " + " | ".join(cells) + " |")
    loads = [r.load_1m for r in results if r.load_1m]
    if loads:
        rows.append(f"\nLoad average (1 min) at the start of each run: {min(loads):.1f} to {max(loads):.1f} "
                    f"(median {statistics.median(loads):.1f}).")
    return "\n".join(rows)


def _per_repeat(mine: list[Result], peers: list[Result]) -> list[float]:
    """Wall-time ratios of runs from the same repeat (tools run back to back), both ok."""
    peer_wall = {r.repeat: r.wall_s for r in peers if r.ok}
    return [r.wall_s / peer_wall[r.repeat] for r in mine if r.ok and r.repeat in peer_wall]


def compile_installed_sources() -> None:
    """Give rustle-deploy's sources their bytecode, as ansible-core and pyinfra have theirs.

    The venv installs rustle-deploy in editable mode (`pip install -e`), which compiles
    nothing, while pip compiled ansible-core's and pyinfra's modules when it installed them.
    Python writes the missing `__pycache__` on first import unless PYTHONDONTWRITEBYTECODE is
    set, as it is on this machine: then every rustle-deploy start would compile its own
    sources (~40 ms). `compileall` writes them regardless, as a regular install does (pip
    compiles the runtime's package data too; `--format native` imports its templating on the
    controller to lower plans).
    """
    for bin_dir in (VENV_BIN, *([BASE_BIN] if BASE_BIN else [])):  # each from its own checkout
        subprocess.run([str(bin_dir / "python"), "-c", "import compileall, os, rustle_deploy; "
                        "compileall.compile_dir(os.path.dirname(rustle_deploy.__file__), quiet=1)"],
                       check=True, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", default="1,10,50", help="comma-separated host counts N")
    ap.add_argument("--latency", default="0,25", help="comma-separated one-way latencies in ms")
    ap.add_argument("--tools", default="ansible,pyinfra,rustle,rustle-native,floor")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--servers", type=int, default=None,
                    help="sshd servers shared by the N hosts (default: one per host)")
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out")
    ap.add_argument("--base", type=Path, default=None,
                    help="another installation's venv bin directory, run as the tool rustle-base (A/B)")
    args = ap.parse_args(argv)
    global BASE_BIN
    if args.base is not None:
        if not (args.base / "rustle-deploy").is_file():
            ap.error(f"--base: no rustle-deploy in {args.base}")
        BASE_BIN = args.base.resolve()
    tools = args.tools.split(",")
    if args.base is None and any(t.startswith("rustle-base") or t.endswith("-base") for t in tools):
        ap.error("--tools rustle-base needs --base BIN_DIR")
    unknown = set(tools) - set(TOOLS)
    if unknown:
        ap.error(f"--tools: unknown {sorted(unknown)}; choose from {list(TOOLS)}")
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    become_subreaper()
    compile_installed_sources()
    results: list[Result] = []
    jsonl = open(args.out / "results.jsonl", "a")  # noqa: SIM115 - closed below

    def emit(res: Result) -> None:
        results.append(res)
        jsonl.write(json.dumps(asdict(res)) + "\n")
        jsonl.flush()
        label = f"{res.tool}: not available" if res.tool.startswith("rustle") and not res.ok else res.tool
        status = "ok" if res.ok else f"FAILED ({'; '.join(res.problems[:3])})"
        print(f"{label:8} N={res.hosts:<4} {res.latency_ms:g}ms {res.phase}: "
              f"wall {res.wall_s:7.2f}s  ctl {res.controller_cpu_s:6.2f}s  "
              f"host {res.host_cpu_s:6.2f}s  {res.controller_peak_mb:5.0f}MB  load {res.load_1m:4.1f}  {status}",
              flush=True)

    try:
        for latency in [float(x) for x in args.latency.split(",")]:
            for n in [int(x) for x in args.hosts.split(",")]:
                run_config(n, latency, tools, args.repeat, args.out, args.servers, emit)
    finally:
        jsonl.close()
        shutil.rmtree(f"/tmp/bench-cp-{os.getpid()}", ignore_errors=True)
        for trash in args.out.glob("work/*/trash"):  # deleted after the last measurement (Fleet.discard)
            shutil.rmtree(trash, ignore_errors=True)
        table = summarize(results)
        (args.out / "summary.md").write_text(table + "\n")
        print("\n" + table)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
