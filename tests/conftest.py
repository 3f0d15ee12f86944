"""Shared test helpers: where the read-only fixtures live, a private HOME, small plans."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.compiler.runner import RunnerBinary

REPO = Path(__file__).resolve().parents[1]
_STARTED = pytest.StashKey[float]()
SHARED = (REPO / ".." / "shared").resolve()
FIXTURES = SHARED / "fixtures"
PLAN_FIXTURES = FIXTURES / "rustle-plan"
EXAMPLE_PLAN = REPO / "examples" / "hello" / "plan.json"

# The environment under test's own scripts: .venv's under `make test`, .venv-latest's under
# `make test-latest`, so that the oracles are the ansible-core of the environment being tested.
ENV_BIN = Path(sys.executable).parent
ANSIBLE_PLAYBOOK = ENV_BIN / "ansible-playbook"
# How long an oracle's ansible-playbook run may take: generous, as the suite runs on 2 cores
# under loads of 20 to 60, where a module's oracle set-up has taken more than 300 s.
ORACLE_TIMEOUT = 1800

# The suite's tests are about the pyz path unless they say otherwise: --format auto (the
# default) would pick the native runner, and build it with cargo in each test's private cache.
# Tests of auto delete this (tests/native/test_auto.py); tests of native pass --format native.
os.environ.setdefault("RUSTLE_FORMAT", "pyz")


# Under ``--dist loadfile`` (make test) a test file is one unit of work, run by one worker, so
# that a module-scoped fixture (an oracle run of ansible-playbook for all of a module's cases)
# runs once. These files hold independent, slow cases and no module set-up worth sharing: each
# of their tests is a unit of its own, so that no single file is the suite's long tail.
SPREAD_FILES = frozenset({
    "tests/acceptance/test_targets.py",
    # each case runs its own oracle beside its rustle-deploy run: handlers' 13 were one unit of
    # 377 s of worker time when a target's cases were one unit
    "tests/acceptance/test_runme.py",
    "tests/integration/test_playbooks_ansible.py",
    # twenty sshd-fleet tests, each with its own fleet and oracle run (tests/integration/conftest.py's Fleet)
    "tests/integration/test_phases_ssh.py",
})


def _unit(nodeid: str) -> str:
    """The unit of work (``--dist loadfile``) a test belongs to: its file, or its own."""
    path = nodeid.partition("::")[0]
    return nodeid if path in SPREAD_FILES else path


# The files that take longest (measured with --durations: cargo builds, the wheel build, oracle
# runs), longest first: on workers they start first, so that none of them is left to run alone at
# the end.
SLOW_FILES = (
    "tests/native/test_targets.py",  # the aarch64 runner: a cross build whenever the runner's sources changed
    "tests/native/test_native_runs.py",
    "tests/native/test_auto.py",
    "tests/native/test_wheel.py",
    "tests/bridge/test_lookup.py",
    "tests/acceptance/test_runme.py",
    "tests/bridge/test_runs.py",
    "tests/integration/test_cli.py",
    "tests/integration/test_phases_ssh.py",
    "tests/runtime/test_modules_files.py",
    "tests/runtime/test_modules_lines.py",
    "tests/unit/test_inventory_ansible.py",
    "tests/runtime/test_modules_core_ansible.py",
    "tests/bridge/test_differential.py",
    "tests/bridge/test_collections_differential.py",
    "tests/runtime/test_modules_fidelity_ansible.py",
    "tests/integration/test_rollout_playbook.py",
    "tests/runtime/test_templates_ansible.py",
    # 100 to 190 s each under a load of 15-45 (/work/suite-before.xml, s7): in path order they
    # came last (runtime/, unit/), where a worker that drew one was left running it alone
    "tests/unit/test_connection_fuzz.py",
    "tests/unit/test_lint.py",
    "tests/runtime/test_modules_system.py",
    "tests/runtime/test_modules_artifact.py",
    "tests/runtime/test_executor.py",
    "tests/unit/test_config_fuzz.py",
    "tests/unit/test_inventory_fuzz.py",
)


# A checkout that does not sit beside shared/ (the rustle-plan and rustle-parse fixtures this
# suite reads from ../shared): said before the suite starts under CI, whose clone has them, and
# elsewhere as the skip reason of the tests of the modules that read them (FileNotFoundError
# errors before).
WITHOUT_SHARED = (f"the shared fixtures are not at {FIXTURES}: tests/conftest.py reads them from ../shared "
                  f"beside the checkout (clone the project next to shared/, as CI's clone is)")


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") and not FIXTURES.is_dir():
        raise pytest.UsageError(WITHOUT_SHARED)
    config.pluginmanager.register(_SessionFixtureCpu(), "rustle-session-fixture-cpu")


def _reads_shared(item: pytest.Item) -> bool:
    """Whether a test's module names a path under SHARED (FIXTURES, PLAN_FIXTURES, a directory
    of its own there)."""
    module = getattr(item, "module", None)
    return module is not None and any(
        isinstance(value, Path) and (os.path.abspath(value) + os.sep).startswith(str(SHARED) + os.sep)
        for value in vars(module).values())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not FIXTURES.is_dir():
        for item in filter(_reads_shared, items):
            item.add_marker(pytest.mark.skip(reason=WITHOUT_SHARED))
    if not hasattr(config, "workerinput"):  # in one process: the files in their usual order
        return
    rank = {path: i for i, path in enumerate(SLOW_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))  # stable


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    # pytest-xdist (3.6 on) queues the files by their number of tests, most first, unless told
    # not to: that put SLOW_FILES' one-test files (test_wheel's cargo builds, the spread cases)
    # last, where each was left running alone at the end of the suite.
    config.option.loadscopereorder = False

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _unit(nodeid)

    return FileScheduling(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_STARTED] = time.time()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say which recorded oracle results this run wrote (tests/oracle.py): new ones are to be
    committed with the test inputs that made them."""
    from . import oracle

    started = config.stash.get(_STARTED, None)
    written = oracle.written_since(started) if started is not None else []
    if written:
        terminalreporter.write_sep("-", f"{len(written)} oracle record(s) written (RUSTLE_ORACLE={oracle.mode()}): commit them")
        for p in written:
            terminalreporter.write_line(str(p.relative_to(REPO)))


def _cpu_seconds() -> float:
    """CPU time of this process and of the children it has waited for (their own waited-for
    children included: an oracle's modules, a subprocess's compiler)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# CPU seconds spent on session fixtures (set-up, and the teardown at the worker's end) since the
# worker started: pytest_runtest_protocol leaves them out of the test that happened to pay them.
_SESSION_CPU = [0.0]
_IN_SESSION_FIXTURE: list[bool] = []
# The worker's sshd (the ``sshd`` fixture; pid -> its CPU seconds, with those of the sessions it
# has reaped, as last read) and how much of that the tests' lines were given: an ssh run's remote
# side (sshd's session process, the shell and Python it starts) is reaped by that sshd, which the
# worker reaps only at its end, where the whole of it used to land on one line.
_SSHD_CPU: dict[int, float] = {}
_SSHD_GIVEN = [0.0]


def _sshd_cpu_since() -> float:
    """CPU seconds the worker's sshd and the sessions it reaped spent since the last call
    (``/proc/PID/stat``: utime, stime, cutime, cstime)."""
    spent = 0.0
    for pid, seen in list(_SSHD_CPU.items()):
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        now = sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        spent += now - seen
        _SSHD_CPU[pid] = now
    _SSHD_GIVEN[0] += spent
    return spent


def _record_cpu(seconds: float, what: str, remote: float | None = None) -> None:
    path = os.environ.get("RUSTLE_TEST_CPU")
    if path:
        with open(path, "a") as out:
            out.write(f"{seconds:.2f}\t{what}" + ("" if remote is None else f"\t{remote:.2f}") + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """RUSTLE_TEST_CPU=FILE: each test's CPU seconds (set-up, call and teardown; a module
    fixture's in its first test) appended to FILE as ``seconds<TAB>node id<TAB>remote`` lines,
    from every worker, the remote side of the test's ssh runs included (the sessions the worker's sshd
    reaped meanwhile: ``_sshd_cpu_since``); what is not one test's, each on a line of its own (its
    name in parentheses): a worker's start and collection, each session fixture's set-up, and
    the worker's end (the session fixtures' teardown). On a shared machine a test's wall time says
    more about the load than about the test; on 2 cores the suite's CPU time bounds it
    (tests/README.md, "What the suite costs")."""
    before, session_before = _cpu_seconds(), _SESSION_CPU[0]
    given_before = _SSHD_GIVEN[0]
    yield
    _sshd_cpu_since()
    remote = _SSHD_GIVEN[0] - given_before  # the remote side of this test's ssh runs
    _record_cpu(_cpu_seconds() - before - (_SESSION_CPU[0] - session_before) + remote, item.nodeid, remote)


class _SessionFixtureCpu:
    """Each session fixture's set-up CPU (RUSTLE_TEST_CPU): a plugin, as a conftest's hooks do not
    see the set-up of fixtures whose node is the session."""

    @pytest.hookimpl(hookwrapper=True)
    def pytest_fixture_setup(self, fixturedef: Any, request: pytest.FixtureRequest) -> Iterator[None]:
        outermost = fixturedef.scope == "session" and not any(_IN_SESSION_FIXTURE)
        before = _cpu_seconds()
        _IN_SESSION_FIXTURE.append(fixturedef.scope == "session")
        try:
            yield
        finally:
            _IN_SESSION_FIXTURE.pop()
        if outermost:  # one it sets up first (tmp_path_factory) is counted in it
            spent = _cpu_seconds() - before
            _SESSION_CPU[0] += spent
            _record_cpu(spent, f"(session fixture {fixturedef.argname})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    if nextitem is None:
        _sshd_cpu_since()  # the last test's share, read before the sshd is ended and reaped
    before = _cpu_seconds()
    yield
    if nextitem is None:
        spent = _cpu_seconds() - before
        _SESSION_CPU[0] += spent
        # the reaped sshd brought all its CPU: what the tests' lines were given is theirs
        _record_cpu(spent - _SSHD_GIVEN[0], f"(worker end: the session fixtures' teardown, after {item.nodeid})")


def pytest_collection_finish(session: pytest.Session) -> None:
    # make test's --collect-only before the workers start fills the bytecode cache (Makefile)
    what = "bytecode warm-up: a collection" if session.config.option.collectonly else "worker start and collection"
    _record_cpu(_cpu_seconds(), f"({what})")


@pytest.fixture(autouse=True)
def _default_sigint() -> None:
    """Each test starts with SIGINT as a fresh Python has it (KeyboardInterrupt, not blocked): a
    process a test starts inherits an ignored or blocked SIGINT, and the tests that press ctrl-c
    on a child (test_interruption.py, test_cli.py, test_rollout_ssh.py, test_ui.py) failed on
    xdist workers after other files had run there."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    if signal.getsignal(signal.SIGINT) in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _end_kept_bridge_servers(root: Path) -> int:
    """End the module bridge's fork servers kept in remote directories under ``root`` (a
    ``bridge/`` directory's sockets; docs/bridge.md): a run keeps its server for
    ``rustle_bridge_keep`` seconds (300 by default), a 30 MB process the test no longer needs.
    How many it ended."""
    import stat

    from rustle_deploy.deploy.agent import _end_kept_server

    ended = 0
    for top, dirs, _ in os.walk(root):
        if "bridge" not in dirs:
            continue
        bridge = os.path.join(top, "bridge")
        try:
            socks = [p for p in (os.path.join(bridge, n) for n in os.listdir(bridge)) if stat.S_ISSOCK(os.lstat(p).st_mode)]
        except OSError:
            continue
        for path in socks:
            _end_kept_server(path)
        ended += len(socks)
    return ended


@pytest.fixture(autouse=True)
def _no_kept_bridge_servers(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test leaves no fork server of the module bridge behind: those kept under its tmp_path
    are ended at its teardown, those of module fixtures' directories at the worker's end
    (pytest_sessionfinish). Tests of keeping end their own (bridge/test_runs.py)."""
    yield
    tmp = request.node.funcargs.get("tmp_path")
    if isinstance(tmp, Path):
        _end_kept_bridge_servers(tmp)


def pytest_sessionfinish(session: pytest.Session) -> None:
    factory = getattr(session.config, "_tmp_path_factory", None)
    basetemp = getattr(factory, "_basetemp", None)
    if basetemp is not None:
        _end_kept_bridge_servers(basetemp)


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real OpenSSH sshd on 127.0.0.1 (tests/integration/conftest.py), one per worker, shared by
    every directory: declared here, not imported into each directory's conftest, where it was
    a fixture of its own and started a second sshd on the workers that ran both."""
    from .integration.conftest import run_sshd

    for server in run_sshd(tmp_path_factory):
        _SSHD_CPU[server.pid] = 0.0
        yield server


@pytest.fixture(scope="session")
def runner() -> RunnerBinary:
    """The native runner (a RunnerBinary) for this controller, built once by cargo into the
    test runner cache (tests/native/conftest.py RUNNER_CACHE, kept between sessions and keyed by
    the runner's sources); declared here for every directory, like ``sshd``."""
    from rustle_deploy.compiler.runner import ensure_runner, find_cargo

    from .native.conftest import RUNNER_CACHE

    if find_cargo() is None:
        pytest.skip("Rust's cargo is not installed: the native runner cannot be built (CI installs it)")
    return ensure_runner(RUNNER_CACHE)


@pytest.fixture
def native_cache(runner: RunnerBinary, rustle_home: Path) -> Path:
    """The test's ~/.rustle/cache seeded with the session's runners (so no test rebuilds one):
    the index entries of these sources (every target built so far: the static one when
    ``static_runner`` came first) copied, each runner they name and its .gz hard-linked, not
    copied (a runner is 1-2 MB and the shared cache holds every runner ever built; the product
    replaces a cache file by renaming a new one over it, never by writing into it)."""
    from rustle_deploy.compiler.toolchain import source_key

    from .native.conftest import RUNNER_CACHE

    src, dest = RUNNER_CACHE / "native", rustle_home / ".rustle" / "cache" / "native"
    (dest / "index").mkdir(parents=True, exist_ok=True)
    key = source_key()
    for index in (src / "index").iterdir():
        if index.name.split(".", 1)[0] != key:
            continue
        shutil.copy2(index, dest / "index" / index.name)
        name = f"rustle-runner-{index.read_text().strip()}"
        for path in (src / name, src / f"{name}.gz"):
            if path.exists() and not (dest / path.name).exists():
                os.link(path, dest / path.name)
    return dest.parent


@pytest.fixture
def rustle_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME so cache, state and remote dirs never touch the real ~/.rustle."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("RUSTLE_DEPLOY_CACHE_DIR", "RUSTLE_BINARY_SIZE_LIMIT", "RUSTLE_DEPLOYMENT_TIMEOUT",
                "RUSTLE_PARALLEL_JOBS", "RUSTLE_VERIFY_DEPLOYMENTS", "RUSTLE_STATE_DB"):
        monkeypatch.delenv(var, raising=False)
    return home


def make_plan(tmp_path: Path, tasks: list[dict[str, Any]], play_vars: dict[str, Any] | None = None,
              handlers: list[dict[str, Any]] | None = None, hosts: tuple[str, ...] = ("localhost",)) -> Path:
    """A plan for ``hosts`` (the bundled example's shape) with these tasks (plan fields:
    ``module``, ``args``, ``register``, ``conditions``...); ``files/`` and ``templates/`` of the
    example sit beside it."""
    doc = json.loads(EXAMPLE_PLAN.read_text())
    play = doc["plays"][0]
    play["vars"] = dict(play_vars or {})
    doc["hosts"] = play["hosts"] = play["batches"][0]["hosts"] = list(hosts)

    def full(i: int, t: dict[str, Any], kind: str) -> dict[str, Any]:
        base = {"task_id": f"{kind}_{i}", "name": t.get("name", f"{kind} {i}"), "hosts": list(hosts),
                "dependencies": [], "conditions": [], "tags": [], "notify": [], "execution_order": i,
                "can_run_parallel": False, "estimated_duration": {"secs": 1, "nanos": 0}, "risk_level": "Low"}
        base.update(t)
        return base

    play["batches"][0]["tasks"] = [full(i, t, "task") for i, t in enumerate(tasks)]
    play["handlers"] = [{"handler_id": f"handler_{i}", "name": h.get("name", f"handler {i}"), "conditions": [],
                         "execution_order": i, **h} for i, h in enumerate(handlers or [])]
    doc["total_tasks"] = len(tasks)
    doc["binary_deployments"] = []
    dest = tmp_path / "plan"
    shutil.copytree(EXAMPLE_PLAN.parent, dest, dirs_exist_ok=True)
    (dest / "plan.json").write_text(json.dumps(doc))
    return dest / "plan.json"


@pytest.fixture
def discarded_early(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The argv of every early ssh process the controller threw away (transport/process.discard):
    a host that then opened a second connection."""
    from rustle_deploy.transport import process

    discarded: list[object] = []
    real_discard = process.discard

    def discard(popen: Any) -> None:
        discarded.append(popen.args)
        real_discard(popen)

    monkeypatch.setattr(process, "discard", discard)
    return discarded
