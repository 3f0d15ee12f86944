"""Property: no inventory, however mangled (INI, YAML, JSON, an executable script, with
group_vars), makes the command line end other than with exit 0 or a clean exit 2.

Each example is read by ``--list-inventory`` and then by a ``--dry-run`` of a plan for
``all`` hosts, which resolves them and checks every host's connection variables.
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, example, given
from hypothesis import strategies as st

from ..conftest import FIXTURES, make_plan
from ..fuzzing import assert_clean, fuzz_settings, hostile, quick_config, run_main, sandbox

pytestmark = pytest.mark.fuzz

DATA = Path(__file__).resolve().parents[1] / "data" / "inventories"
SEEDS = sorted(
    p for p in [*DATA.glob("*/inventory*"), *(FIXTURES / "rustle-parse" / "inventories").glob("*.ini")]
    if p.is_file()
)
TEXT_SEEDS = [(p.name, p.read_text()) for p in SEEDS if not p.name.endswith(".py")]
DATA_SEEDS: list[Any] = []
for _p in SEEDS:
    try:
        _doc = json.loads(_p.read_text()) if _p.suffix == ".json" else yaml.safe_load(_p.read_text())
    except (ValueError, yaml.YAMLError):
        continue
    if isinstance(_doc, dict):
        DATA_SEEDS.append(_doc)
SCRIPT_SEEDS: list[Any] = [
    {"web": {"hosts": ["w1", "w2"], "vars": {"http_port": 80}}, "db": ["d1"],
     "_meta": {"hostvars": {"w1": {"ansible_host": "10.0.0.1", "ansible_port": 2200}}}},
    {"all": {"children": ["web"]}, "web": {"hosts": ["a"]}},
]

CONNECTION_VARS = [
    "ansible_host", "ansible_port", "ansible_ssh_port", "ansible_user", "ansible_ssh_user",
    "ansible_ssh_private_key_file", "ansible_private_key_file", "ansible_password", "ansible_ssh_pass",
    "ansible_host_key_checking", "ansible_ssh_host_key_checking", "ansible_ssh_common_args",
    "ansible_ssh_extra_args", "ansible_timeout", "ansible_ssh_timeout", "ansible_connection",
    "ansible_become", "ansible_become_method", "ansible_become_user", "ansible_become_password",
    "ansible_python_interpreter", "rustle_remote_dir", "rustle_target",
]
KEYS = ["all", "hosts", "children", "vars", "web", "db", "w1", "localhost", "plugin", "_meta", "hostvars",
        "ansible_group_priority", *CONNECTION_VARS]
NAMES = st.sampled_from(["web", "db", "w1", "web[01:03]", "web[a:c]", "h:2222", "all", "ungrouped", "localhost",
                         "127.0.0.1", "[::1]", "x-y.example", "web[1:0]", "a b"]) | st.text(max_size=8)

values = st.recursive(
    hostile(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
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
def mangled_data(draw: st.DrawFn, seeds: list[Any]) -> Any:
    """A seed inventory document with a few subtrees replaced, deleted or inserted (drawn values
    are copied: they may be HOSTILE's own lists, which the next insertion would change)."""
    doc = json.loads(json.dumps(draw(st.sampled_from(seeds)), default=str))
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(_paths(doc)))
        kind = draw(st.sampled_from(["replace", "delete", "insert", "insert"]))
        if kind == "replace":
            if not target:
                doc = copy.deepcopy(draw(values))
                continue
            _get(doc, target[:-1])[target[-1]] = copy.deepcopy(draw(values))
        elif kind == "delete" and target:
            del _get(doc, target[:-1])[target[-1]]
        elif kind == "insert":
            node = _get(doc, target)
            if isinstance(node, dict):
                node[draw(st.sampled_from(KEYS) | NAMES)] = copy.deepcopy(draw(values))
            elif isinstance(node, list):
                node.insert(draw(st.integers(0, len(node))), copy.deepcopy(draw(values)))
    return doc


def _ini_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("\n", " ").replace("\r", " ")


@st.composite
def ini_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["host", "host", "section", "vars", "children", "var", "junk"]))
    if kind == "section":
        return f"[{draw(NAMES)}]"
    if kind == "vars":
        return f"[{draw(NAMES)}:vars]"
    if kind == "children":
        return f"[{draw(NAMES)}:children]"
    pairs = " ".join(
        f"{draw(st.sampled_from(CONNECTION_VARS) | st.text(max_size=5))}={_ini_value(draw(hostile()))}"
        for _ in range(draw(st.integers(0, 3)))
    )
    if kind == "var":
        return pairs or "x=1"
    if kind == "junk":
        return draw(st.text(max_size=20)).replace("\n", " ")
    return f"{draw(NAMES)} {pairs}".replace("\n", " ")


@st.composite
def mangled_ini(draw: st.DrawFn) -> str:
    name, text = draw(st.sampled_from(TEXT_SEEDS))
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["insert", "insert", "delete", "replace_value", "flip"]))
        at = draw(st.integers(0, len(lines)))
        if op == "insert":
            lines.insert(at, draw(ini_lines()))
        elif op == "delete" and lines:
            del lines[min(at, len(lines) - 1)]
        elif op == "replace_value" and lines:
            line = lines[min(at, len(lines) - 1)]
            if "=" in line:
                key, _, _rest = line.rpartition("=")
                lines[min(at, len(lines) - 1)] = f"{key}={_ini_value(draw(hostile()))}"
        elif op == "flip" and lines:
            i = min(at, len(lines) - 1)
            line = lines[i]
            pos = draw(st.integers(0, len(line)))
            lines[i] = line[:pos] + draw(st.sampled_from(["[", "]", ":", "=", "\x00", "'", '"', "#", " ", "\\"])) + line[pos:]
    return "\n".join(lines) + "\n"


@st.composite
def inventories(draw: st.DrawFn) -> tuple[str, str | bytes, Any]:
    """(file name, content, group_vars/all content or None)."""
    fmt = draw(st.sampled_from(["ini", "ini", "yaml", "json", "script", "noext", "bytes"]))
    group_vars = copy.deepcopy(draw(st.none() | st.none() | values))
    if fmt == "ini":
        return "inventory.ini", draw(mangled_ini()), group_vars
    if fmt in ("yaml", "noext"):
        doc = draw(mangled_data(DATA_SEEDS))
        return ("inventory.yml" if fmt == "yaml" else "inventory"), yaml.safe_dump(doc, allow_unicode=True), group_vars
    if fmt == "json":
        return "inventory.json", json.dumps(draw(mangled_data(DATA_SEEDS)), default=str), group_vars
    if fmt == "script":
        doc = draw(mangled_data(SCRIPT_SEEDS))
        status = draw(st.sampled_from([0, 0, 0, 1]))
        body = json.dumps(doc, default=str) if draw(st.booleans()) or status else json.dumps(doc)[: draw(st.integers(0, 40))]
        return "inventory.sh", f"#!/bin/sh\ncat <<'RUSTLE_EOF'\n{body}\nRUSTLE_EOF\nexit {status}\n", group_vars
    name, text = draw(st.sampled_from(TEXT_SEEDS))
    raw = bytearray(text.encode())
    for _ in range(draw(st.integers(1, 3))):
        if raw:
            raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return name, bytes(raw), group_vars


_COUNT = itertools.count()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("inventory-fuzz")
    with sandbox(root):
        yield root


@fuzz_settings(400)
@example(("inventory.sh", '#!/bin/sh\ncat <<\'RUSTLE_EOF\'\n{"all": ["\\u0000"]}\nRUSTLE_EOF\n', None))  # make fuzz
@example(("inventory.ini", "localhost ansible_connection=local\n", {"ansible_port": []}))  # make fuzz: dry-run port
@example(("inventory.sh", '#!/bin/sh\ncat <<\'RUSTLE_EOF\'\n{"web": {"children": 0}}\nRUSTLE_EOF\n', None))
@given(inventories())
def test_mangled_inventories_end_in_exit_0_or_a_clean_exit_2(root: Path, case: tuple[str, str | bytes, Any]) -> None:
    name, content, group_vars = case
    folder = root / f"inv-{next(_COUNT)}"
    folder.mkdir()
    try:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, errors="surrogateescape")
        if name.endswith(".sh"):
            path.chmod(0o755)
        if group_vars is not None:
            (folder / "group_vars").mkdir()
            (folder / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars, allow_unicode=True))
        code, out, err = run_main(["-i", str(path), "--list-inventory"])
        assert_clean(code, out, err)
        event(f"{name.rsplit('.', 1)[-1]} list-inventory exit {code}")
        if code == 0:
            json.loads(out)
            plan = root / "plan" / "plan.json"
            code, out, err = run_main([str(plan), "-i", str(path), "--dry-run", "--output", "json",
                                       "--config", str(quick_config(root))])
            assert_clean(code, out, err)
            event(f"dry-run exit {code}")
            if code == 0:
                assert json.loads(out)["dry_run"] is True
    finally:
        shutil.rmtree(folder)


@pytest.fixture(scope="module", autouse=True)
def _plan(root: Path) -> None:
    make_plan(root, [{"name": "hi", "module": "debug", "args": {"msg": "hi"}}], hosts=("all",))
    assert (root / "plan" / "plan.json").is_file()
