"""Differential tests: rustle_deploy.inventory against ansible-core's own ansible-inventory.

Every inventory of the shared fixtures and of tests/data/inventories/ is read by both; where
Ansible parses it, ``to_ansible_list()`` must equal ``ansible-inventory -i FILE --list`` group by
group, host by host and variable by variable; where Ansible cannot parse it, we must raise
InventoryError naming the file and line. Host patterns are checked against
``ansible PATTERN --list-hosts``. Ansible runs once per case per session, in parallel; its
answers are recorded and replayed (tests/oracle.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory import implicit_localhost, load_inventory

from .. import oracle as recorded_oracle
from ..conftest import ORACLE_TIMEOUT

REPO = Path(__file__).resolve().parents[2]
SHARED_INVENTORIES = REPO / ".." / "shared" / "fixtures" / "rustle-parse" / "inventories"
OWN_INVENTORIES = REPO / "tests" / "data" / "inventories"
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]


def _cases() -> dict[str, Path]:
    cases: dict[str, Path] = {}
    for f in sorted(SHARED_INVENTORIES.glob("*")):
        cases[f"shared/{f.name}"] = f
    for d in sorted(p for p in OWN_INVENTORIES.iterdir() if p.is_dir()):
        (source,) = [p for p in d.iterdir() if p.name.startswith("inventory")]
        cases[f"own/{d.name}"] = source
    return cases


CASES = _cases()

# (case, pattern) pairs checked against `ansible PATTERN --list-hosts`.
PATTERNS = [
    ("own/yaml_children", "all"),
    ("own/yaml_children", "web*"),
    ("own/yaml_children", "~web\\d+"),
    ("own/yaml_children", "webservers:&staging"),
    ("own/yaml_children", "all:!db-a"),
    ("own/yaml_children", "db-a,web-canary"),
    ("own/yaml_children", "webservers:!canary"),
    ("own/yaml_children", "webservers[1:2],databases[0]"),
    ("own/yaml_children", "*.example.com"),
    ("own/yaml_children", "ungrouped"),
    ("own/precedence", "alpha:beta"),
    ("own/precedence", "&zeta,!h2"),
    ("own/localhost_like", "localhost"),
    ("own/ini_ranges", "numeric[-1]"),
    ("own/ini_ranges", "~^(app|api)1"),
    ("own/ini_quirks", "web1"),
]

# comma-separated host lists (``-i host1,host2,``), which name no file
HOST_LISTS = ["host1,host2,", " web1:2222, 10.0.0.5,,db[1:2],localhost", "solo,"]


def _env(home: Path) -> dict[str, str]:
    cfg = home / "ansible.cfg"
    cfg.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(
        ANSIBLE_CONFIG=str(cfg),
        ANSIBLE_HOME=str(home / ".ansible"),
        ANSIBLE_LOCAL_TEMP=str(home / "tmp"),
        ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
        ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="True",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        HOME=str(home),
    )
    return env


def _prepare(case: str, source: Path, work: Path) -> Path:
    """Scripts are copied and made executable: a checkout need not keep the mode bits."""
    if source.suffix != ".py":
        return source.resolve()
    dest = work / case.replace("/", "_")
    shutil.copytree(source.parent, dest)
    copied = dest / source.name
    copied.chmod(copied.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return copied


@pytest.fixture(scope="session")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Ansible's answers for every case and pattern, computed once, in parallel, and recorded
    (tests/oracle.py: keyed by every inventory file, the command lines and the environment)."""
    home = tmp_path_factory.mktemp("ansible-home")
    work = tmp_path_factory.mktemp("inventories")
    env = _env(home)
    sources = {case: _prepare(case, src, work) for case, src in CASES.items()}
    empty = work / "empty-inventory-dir"
    empty.mkdir()

    commands: dict[Any, tuple[list[str], dict[str, str]]] = {}
    for case, src in sources.items():
        commands[("list", case)] = [str(BIN / "ansible-inventory"), "-i", str(src), "--list"], {}
    for case, pattern in PATTERNS:
        commands[("hosts", case, pattern)] = [str(BIN / "ansible"), pattern, "-i", str(sources[case]), "--list-hosts"], {}
    for hosts in HOST_LISTS:
        commands[("host-list", hosts)] = [str(BIN / "ansible-inventory"), "-i", hosts, "--list"], {}
    lenient = {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "False",
               "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "False"}
    commands[("implicit-list",)] = [str(BIN / "ansible-inventory"), "-i", str(empty), "--list"], lenient
    for case in ("own/group_host_vars", "own/precedence"):
        commands[("implicit-host", case)] = [str(BIN / "ansible-inventory"), "-i", str(sources[case]),
                                             "--host", "localhost"], {}
    commands[("implicit-host", None)] = [str(BIN / "ansible-inventory"), "-i", str(empty), "--host", "localhost"], lenient

    places: dict[str, str | Path] = {"{home}": home, "{work}": work, "{shared}": SHARED_INVENTORIES.resolve()}
    inputs = recorded_oracle.norm({
        "shared": recorded_oracle.files(SHARED_INVENTORIES), "own": recorded_oracle.files(OWN_INVENTORIES),
        "env": recorded_oracle.env(env), "commands": [[list(k), a, e] for k, (a, e) in commands.items()]}, places)

    def run_all() -> list[Any]:
        def run(args: list[str], extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                args, capture_output=True, text=True, cwd=home, env={**env, **extra_env},
                timeout=ORACLE_TIMEOUT, check=False,  # 120 s expired at a load of ~50
            )

        with ThreadPoolExecutor(max_workers=6) as pool:
            jobs = {k: pool.submit(run, *command) for k, command in commands.items()}
            done = {k: fut.result() for k, fut in jobs.items()}
        return recorded_oracle.norm({"answers": [[list(k), p.returncode, p.stdout] for k, p in done.items()],
                                     "stderr": [p.stderr for p in done.values()]}, places)

    # stderr (warnings, a parse error's wording) is kept for the checks and messages that read
    # it; `live` compares the exit codes and the answers
    answers = recorded_oracle.denorm(recorded_oracle.recorded("inventory", inputs, run_all, volatile=("stderr",)), places)
    results = {tuple(k): subprocess.CompletedProcess(commands[tuple(k)][0], code, out, err)
               for (k, code, out), err in zip(answers["answers"], answers["stderr"], strict=True)}
    return {"sources": sources, "results": results}


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}/{k}"))
        return out
    return {prefix or "/": value}


def _diff(theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    a, b = _flatten(theirs), _flatten(ours)
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key, missing), b.get(key, missing)
        if x != y or type(x) is not type(y):
            show = lambda v: "<absent>" if v is missing else json.dumps(v)  # noqa: E731
            lines.append(f"  {key}: ansible={show(x)} rustle={show(y)}")
    return lines


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 12
    kinds = {p.suffix for p in CASES.values()}
    assert {".ini", ".yml", ".json", ".py", ""} <= kinds


@pytest.mark.parametrize("case", sorted(CASES))
def test_list_matches_ansible_inventory(case: str, oracle: dict[str, Any]) -> None:
    source = oracle["sources"][case]
    proc = oracle["results"][("list", case)]
    if proc.returncode != 0:
        assert "Failed to parse" in proc.stderr or "failed to parse" in proc.stderr, proc.stderr
        with pytest.raises(InventoryError) as info:
            load_inventory(source)
        err = info.value
        assert err.file == str(source)
        assert str(err).startswith(f"{source}")
        assert err.hint, "every inventory error carries a hint"
        return
    theirs = json.loads(proc.stdout)
    inv = load_inventory(source)
    ours = json.loads(json.dumps(inv.to_ansible_list()))
    problems = _diff(theirs, ours)
    assert not problems, f"{case}: differs from ansible-inventory --list:\n" + "\n".join(problems)
    assert inv.to_ansible_json() + "\n" == proc.stdout


@pytest.mark.parametrize("hosts", HOST_LISTS)
def test_a_host_list_matches_ansible_inventory(hosts: str, oracle: dict[str, Any]) -> None:
    proc = oracle["results"][("host-list", hosts)]
    assert proc.returncode == 0, proc.stderr
    assert load_inventory(hosts).to_ansible_json() + "\n" == proc.stdout


def test_ansible_rejects_the_broken_shared_fixtures(oracle: dict[str, Any]) -> None:
    """The shared corpus has four files Ansible cannot parse; we report each at its line."""
    expected_lines = {
        "shared/complex.ini": 13, "shared/patterns.ini": 13,
        "shared/edge_cases.ini": 39, "shared/invalid.ini": 9,
    }
    for case, line in expected_lines.items():
        assert oracle["results"][("list", case)].returncode != 0, case
        with pytest.raises(InventoryError) as info:
            load_inventory(oracle["sources"][case])
        assert info.value.line == line, (case, str(info.value))


@pytest.mark.parametrize(("case", "pattern"), PATTERNS)
def test_select_matches_ansible_list_hosts(case: str, pattern: str, oracle: dict[str, Any]) -> None:
    proc = oracle["results"][("hosts", case, pattern)]
    assert proc.returncode == 0, proc.stderr
    lines = [ln.strip() for ln in proc.stdout.splitlines()]
    theirs = [ln for ln in lines[1:] if ln]  # first line is "hosts (N):"
    inv = load_inventory(oracle["sources"][case])
    ours = [h.name for h in inv.select(pattern)]
    assert ours == theirs


def test_implicit_localhost_list_matches(oracle: dict[str, Any]) -> None:
    proc = oracle["results"][("implicit-list",)]
    assert proc.returncode == 0, proc.stderr
    assert implicit_localhost().to_ansible_list() == json.loads(proc.stdout)


@pytest.mark.parametrize("case", ["own/group_host_vars", "own/precedence", None])
def test_implicit_localhost_vars_match(case: str | None, oracle: dict[str, Any]) -> None:
    proc = oracle["results"][("implicit-host", case)]
    assert proc.returncode == 0, proc.stderr
    theirs = json.loads(proc.stdout)
    inv = implicit_localhost() if case is None else load_inventory(oracle["sources"][case])
    (host,) = inv.resolve(["localhost"])
    ours = json.loads(json.dumps(host.vars))
    # Ansible reports its own interpreter; ours is this test's: the same venv, maybe another name.
    assert os.path.realpath(ours.pop("ansible_python_interpreter")) == os.path.realpath(
        theirs.pop("ansible_python_interpreter")
    )
    assert ours == theirs
