"""Property: no input, however mangled, makes the plan parser raise anything but PlanError,
and a mangled plan that parses compiles (``--dry-run``) or ends in a clean exit 2."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from rustle_deploy.errors import PlanError
from rustle_deploy.model import Plan
from rustle_deploy.plan import parse_plan, resolve_source

from ..fuzzing import assert_clean, fuzz_settings, quick_config, run_main, sandbox

pytestmark = pytest.mark.fuzz

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / ".." / "shared" / "fixtures" / "rustle-plan"
DATA = REPO / "tests" / "data" / "plans"
SEEDS: list[tuple[Path, bytes]] = [
    (p, p.read_bytes())
    for p in sorted(FIXTURES.glob("*.json")) + sorted((DATA / "good").glob("*.json"))
]

# Keys the parser gives meaning to, so that inserted keys hit real checks.
KEYS = [
    "task_id", "name", "module", "args", "hosts", "dependencies", "conditions", "tags",
    "notify", "execution_order", "estimated_duration", "risk_level", "register", "loop",
    "loop_control", "changed_when", "failed_when", "ignore_errors", "no_log", "become",
    "environment", "vars", "retries", "delay", "until", "check_mode", "timeout", "run_once",
    "delegate_to", "listen", "strategy", "serial", "batches", "handlers", "handler_id",
    "task_ids", "tasks", "target_triple", "target_arch", "target_os", "execution_plan",
    "static_files", "src", "src_path", "remote_src", "content", "batch_size", "When", "Rolling",
    "secs", "nanos", "total_tasks", "plays", "metadata", "planning_options", "forks",
]

scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["Linear", "Rolling", "HostPinned", "When", "task_0", "localhost",
                       "copy", "{{ x }}", "../files/nginx.conf", "{\"a\":", "", "\x00", "\ud800"])
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for tok in path:
        node = node[tok]
    return node


@st.composite
def mangled(draw: st.DrawFn) -> tuple[Path, bytes]:
    path, raw = draw(st.sampled_from(SEEDS))
    op = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "flip", "several"]))
    if op == "truncate":
        return path, raw[: draw(st.integers(0, len(raw)))]
    if op == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        return path, raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    doc = json.loads(raw)
    for _ in range(draw(st.integers(2, 5)) if op == "several" else 1):
        kind = op if op != "several" else draw(st.sampled_from(["replace", "delete", "insert"]))
        target = draw(st.sampled_from(_paths(doc)))
        if kind == "replace":
            if not target:
                doc = draw(json_values)
                continue
            _get(doc, target[:-1])[target[-1]] = draw(json_values)
        elif kind == "delete" and target:
            parent = _get(doc, target[:-1])
            del parent[target[-1]]
        elif kind == "insert":
            node = _get(doc, target)
            if isinstance(node, dict):
                node[draw(st.sampled_from(KEYS))] = draw(json_values)
            elif isinstance(node, list):
                node.insert(draw(st.integers(0, len(node))), draw(json_values))
    return path, json.dumps(doc).encode()


def _parse(path: Path, data: bytes) -> Plan | PlanError:
    try:
        plan = parse_plan(data, source=path.name, base_dir=str(path.parent))
    except PlanError as exc:
        return exc
    # what the compiler does next must not blow up either
    for play in plan.plays:
        plan.play_tasks(play)
        for batch in play.batches:
            for task in batch.tasks:
                resolve_source(plan, task)
    return plan


@fuzz_settings(400)
@given(mangled())
def test_mangled_plans_raise_only_plan_error(case: tuple[Path, bytes]) -> None:
    path, data = case
    result = _parse(path, data)
    if isinstance(result, PlanError):
        assert str(result).startswith(f"{path.name}: /")
        assert result.pointer.startswith("/")
        assert result.hint
        str(result).encode("utf-8")  # printable: no lone surrogates from the input


@fuzz_settings(150)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_plan_error(data: bytes) -> None:
    result = _parse(DATA / "good" / "rich.json", data)
    assert isinstance(result, PlanError)


@fuzz_settings(150)
@given(json_values)
def test_random_json_documents_raise_only_plan_error(doc: Any) -> None:
    result = _parse(DATA / "good" / "rich.json", json.dumps(doc).encode())
    assert isinstance(result, PlanError)


_COUNT = itertools.count()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("plan-fuzz")
    with sandbox(root):
        yield root


@fuzz_settings(100)
@given(mangled())
def test_mangled_plans_compile_or_end_in_a_clean_exit_2(root: Path, case: tuple[Path, bytes]) -> None:
    seed, data = case
    path = root / f"plan-{next(_COUNT)}.json"
    path.write_bytes(data)
    try:
        code, out, err = run_main([str(path), "--dry-run", "--output", "json", "--files-dir", str(seed.parent),
                                   "--config", str(quick_config(root))])
    finally:
        path.unlink()
    assert_clean(code, out, err)
    event(f"exit {code}")
