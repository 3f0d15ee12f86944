"""The compiler: grouping hosts into artifacts, deterministic payloads, the cache, limits."""

from __future__ import annotations

import json
import threading
import zipfile
from pathlib import Path

import pytest

from rustle_deploy.compiler.build import build_unit, payload_bytes
from rustle_deploy.compiler.units import plan_units
from rustle_deploy.errors import CompileError
from rustle_deploy.inventory import implicit_localhost, load_inventory
from rustle_deploy.pipeline import _group_members
from rustle_deploy.plan import load_plan, parse_plan

from ..conftest import EXAMPLE_PLAN, PLAN_FIXTURES

DATA = Path(__file__).resolve().parents[1] / "data" / "compiler"


def units_for(plan, inv, hosts=None):
    hosts = hosts if hosts is not None else list(inv.hosts.values())
    return plan_units(plan, hosts, resolve=inv.resolve, select=inv.select, groups=_group_members(inv))


def fleet_plan(tmp_path: Path, hosts: list[str], task_hosts: dict[str, list[str]] | None = None):
    plan = json.loads(EXAMPLE_PLAN.read_text())
    plan["hosts"] = hosts
    play = plan["plays"][0]
    play["hosts"] = hosts
    batch = play["batches"][0]
    batch["hosts"] = hosts
    for task in batch["tasks"]:
        task["hosts"] = (task_hosts or {}).get(task["task_id"], hosts)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    for sub in ("files", "templates"):
        (tmp_path / sub).mkdir(exist_ok=True)
        for f in (EXAMPLE_PLAN.parent / sub).iterdir():
            (tmp_path / sub / f.name).write_bytes(f.read_bytes())
    return load_plan(str(path))


def test_hosts_with_same_tasks_share_one_artifact(tmp_path: Path) -> None:
    inv = load_inventory(DATA / "fleet.yml")
    plan = fleet_plan(tmp_path, ["web", "db"])
    units = units_for(plan, inv)
    # db2 declares another target: it gets its own artifact; everyone else shares one.
    assert sorted(len(u.hosts) for u in units) == [1, 7]
    shared = next(u for u in units if len(u.hosts) == 7)
    assert shared.host_vars["web01"]["role"] == "web"
    assert shared.host_vars["web01"]["app_port"] == 8080
    assert "web" in shared.host_vars["web01"]["group_names"]
    assert set(shared.plan_doc["groups"]["web"]) == {f"web0{i}" for i in range(1, 7)}


def test_task_hosts_split_artifacts(tmp_path: Path) -> None:
    inv = load_inventory(DATA / "fleet.yml")
    plan = fleet_plan(tmp_path, ["web"], task_hosts={"task_4": ["web01", "web02"]})
    units = units_for(plan, inv, inv.resolve(["web"]))
    by_size = sorted(units, key=lambda u: len(u.hosts))
    assert [len(u.hosts) for u in by_size] == [2, 4]
    small, big = by_size
    ids = lambda u: [t["id"] for t in u.plan_doc["plays"][0]["tasks"]]  # noqa: E731
    assert "play-0/task_4" in ids(small) and "play-0/task_4" not in ids(big)


def test_payload_is_deterministic_and_complete(tmp_path: Path, rustle_home: Path) -> None:
    plan = load_plan(str(EXAMPLE_PLAN))
    inv = implicit_localhost()
    (unit,) = units_for(plan, inv)
    first, second = payload_bytes(unit), payload_bytes(units_for(load_plan(str(EXAMPLE_PLAN)), inv)[0])
    assert first == second
    assert first.startswith(b"#!/usr/bin/env python3\n")
    art = tmp_path / "a.pyz"
    art.write_bytes(first)
    with zipfile.ZipFile(art) as zf:
        names = zf.namelist()
        manifest = json.loads(zf.read("manifest.json"))
    assert names == sorted(names)
    assert "plan.json" in names and "__main__.py" in names
    assert any(n.startswith("jinja2/") for n in names)  # the example templates
    assert "rustle_runtime/modules/files.py" in names
    assert "rustle_runtime/modules/packages.py" not in names  # only the families used
    assert len([n for n in names if n.startswith("files/")]) == 2
    assert set(manifest["entries"]) == set(names) - {"manifest.json"}


def test_no_jinja_when_nothing_needs_it(tmp_path: Path) -> None:
    plan_json = json.loads((PLAN_FIXTURES / "test_verbose.json").read_text())
    plan = parse_plan(json.dumps(plan_json).encode(), source="t.json", base_dir=str(PLAN_FIXTURES))
    (unit,) = units_for(plan, implicit_localhost())
    art = tmp_path / "a.pyz"
    art.write_bytes(payload_bytes(unit))
    with zipfile.ZipFile(art) as zf:
        assert not any(n.startswith("jinja2/") for n in zf.namelist())


def test_cache_hit_rebuild_and_corruption(tmp_path: Path) -> None:
    plan = load_plan(str(EXAMPLE_PLAN))
    (unit,) = units_for(plan, implicit_localhost())
    cache = tmp_path / "cache"
    a = build_unit(unit, cache_dir=cache)
    assert not a.cached and a.path.is_file()
    assert oct(a.path.stat().st_mode & 0o777) == "0o700"
    b = build_unit(unit, cache_dir=cache)
    assert b.cached and b.sha256 == a.sha256
    c = build_unit(unit, cache_dir=cache, rebuild=True)
    assert not c.cached and c.sha256 == a.sha256
    data = bytearray(a.path.read_bytes())
    data[-10] ^= 0xFF
    a.path.write_bytes(bytes(data))
    d = build_unit(unit, cache_dir=cache)
    assert not d.cached, "a corrupted cache entry must be rebuilt, not served"
    assert d.path.read_bytes() == payload_bytes(unit)


def test_concurrent_builds_share_the_cache(tmp_path: Path) -> None:
    plan = load_plan(str(EXAMPLE_PLAN))
    (unit,) = units_for(plan, implicit_localhost())
    cache = tmp_path / "cache"
    results, errors = [], []

    def work() -> None:
        try:
            results.append(build_unit(unit, cache_dir=cache, rebuild=True).sha256)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(results)) == 1
    assert not [p for p in (cache / "artifacts").iterdir() if p.name.startswith(".")]


def test_size_limit(tmp_path: Path) -> None:
    plan = load_plan(str(EXAMPLE_PLAN))
    (unit,) = units_for(plan, implicit_localhost())
    with pytest.raises(CompileError, match="over the limit") as info:
        build_unit(unit, cache_dir=tmp_path, size_limit=1024)
    assert "RUSTLE_BINARY_SIZE_LIMIT" in str(info.value)


def test_connection_secrets_never_enter_an_artifact(tmp_path: Path) -> None:
    inv_file = tmp_path / "inv.ini"
    inv_file.write_text(
        "[web]\nweb1 ansible_password=S3cretA ansible_become_password=RootA token=keep\n"
        "web2 ansible_ssh_pass=S3cretB\n"
    )
    inv = load_inventory(inv_file)
    plan = fleet_plan(tmp_path, ["web"])
    (unit,) = units_for(plan, inv)
    data = payload_bytes(unit)
    for secret in (b"S3cretA", b"RootA", b"S3cretB"):
        assert secret not in data
    assert unit.host_vars["web1"]["token"] == "keep"


def test_rolling_plan_gives_every_batch_its_tasks(tmp_path: Path) -> None:
    """rustle-plan's Rolling shape repeats the tasks per host slice, same ids: every host of
    every slice gets them (the first slice's copy used to decide for all)."""
    from .. import planmaker as pm

    hosts = [f"h{i}" for i in range(10)]
    doc = pm.plan([pm.rolling_play("play-0", "roll", hosts, pm.stamp_tasks("play-0"), 3)], hosts,
                  strategy={"Rolling": {"batch_size": 3}})
    inv_path = tmp_path / "inv.ini"
    inv_path.write_text("".join(f"{h} ansible_connection=local\n" for h in hosts))
    inv = load_inventory(inv_path)
    plan = parse_plan(json.dumps(doc).encode(), source="plan.json", base_dir=str(tmp_path))
    (unit,) = units_for(plan, inv)
    assert unit.host_names == hosts
    (compiled,) = unit.plan_doc["plays"]
    assert compiled["hosts"] == hosts
    assert [t["id"] for t in compiled["tasks"]] == ["play-0/task_0", "play-0/task_1", "play-0/task_2"]


def test_a_shared_artifact_holds_no_host_variables(tmp_path: Path) -> None:
    """Host variables travel in each host's run request: two hosts with different secrets and
    the same tasks share one artifact whose bytes hold neither secret."""
    inv_file = tmp_path / "inv.ini"
    inv_file.write_text("[web]\nweb1 db_password=PwOne\nweb2 db_password=PwTwo\n")
    inv = load_inventory(inv_file)
    (unit,) = units_for(fleet_plan(tmp_path, ["web"]), inv)
    data = payload_bytes(unit, compression=False)
    assert b"PwOne" not in data and b"PwTwo" not in data
    assert unit.plan_doc["hosts"] == {"web1": {}, "web2": {}}
    assert unit.host_vars["web2"]["db_password"] == "PwTwo"
    inv_file.write_text("[web]\nweb1 db_password=Other1\nweb2 db_password=Other2\n")
    (again,) = units_for(fleet_plan(tmp_path, ["web"]), load_inventory(inv_file))
    assert payload_bytes(again) == payload_bytes(unit), "host variables are not inputs of a pyz artifact"


@pytest.mark.parametrize(("expr", "read"), [
    ("{{ hostvars['web2'].port }}", {"port"}),
    ("{{ hostvars[groups['web'][0]]['port'] }}", {"port"}),
    ('{{ hostvars["web2"]["port"] }} {{ hostvars.web1.addr }}', {"port", "addr"}),
    ("{{ hostvars[inventory_hostname].db_password }}", set()),
    ("{{ hostvars[inventory_hostname] | length }}", set()),
    ("show hostvars", set()),  # prose, not a template
    ("{{ out }}/hostvars.txt", set()),  # text beside a template, not a use
    ("{% for h in play_hosts %}{{ hostvars[h].port }}{% endfor %} hostvars", {"port"}),
    # a delegated task's ansible_delegated_vars[H] is H's variables, as hostvars[H]
    ("{{ ansible_delegated_vars['web2'].port }}", {"port"}),
    ("{{ ansible_delegated_vars.localhost.ansible_connection }}", {"ansible_connection"}),
    ("{{ ansible_delegated_vars is defined }}", {""}),  # ANY_HOST: no variable
])
def test_only_the_variables_read_through_hostvars_travel(tmp_path: Path, expr: str, read: set[str]) -> None:
    from rustle_deploy.compiler.units import _hostvars_read

    plan = fleet_plan(tmp_path, ["web"])
    assert _hostvars_read(plan, [{"msg": expr}]) == read


@pytest.mark.parametrize("expr", [
    "{{ hostvars | dict2items }}", "{{ hostvars[h][name] }}", "{{ hostvars['web2'] | to_json }}", "{{ hostvars }}",
    "{{ ansible_delegated_vars['web2'] | to_json }}",
])
def test_hostvars_without_a_name_reads_every_variable(tmp_path: Path, expr: str) -> None:
    from rustle_deploy.compiler.units import EVERY_NAME, _hostvars_read

    assert EVERY_NAME in _hostvars_read(fleet_plan(tmp_path, ["web"]), [{"msg": expr}])
    assert EVERY_NAME in _hostvars_read(fleet_plan(tmp_path, ["web"]), [{"when": ["hostvars is defined"]}])


def test_bridged_bytecode_is_kept_between_commands_and_a_damaged_entry_is_compiled_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import marshal

    from rustle_deploy import bridge
    from rustle_deploy.compiler import build

    monkeypatch.setattr(bridge, "CACHE_DIR", tmp_path / "bridge")
    source, name = b"VALUE = 1\n", "bridge/lib/ansible/module_utils/x.py"
    first = build._bridge_bytecode(source, name)
    assert first == build._bytecode(source, name)
    assert marshal.loads(first[16:]).co_filename == name
    (entry,) = (tmp_path / "bridge" / "pyc").iterdir()
    # what the next command reads is the entry, not a new compile: give it other (valid) code
    header = first[:16]
    entry.write_bytes(header + marshal.dumps(compile("VALUE = 2\n", name, "exec")))
    assert build._bridge_bytecode(source, name) == entry.read_bytes()
    # the same source under another name, or another source, is another entry
    other = build._bridge_bytecode(source, "bridge/lib/other.py")
    assert marshal.loads(other[16:]).co_filename == "bridge/lib/other.py"  # not the first one's
    build._bridge_bytecode(b"VALUE = 3\n", name)
    assert len(list((tmp_path / "bridge" / "pyc").iterdir())) == 3
    # a damaged entry (cut short) or one for another source is compiled again and replaced
    entry.write_bytes(header + b"\xe3\x00")
    assert build._bridge_bytecode(source, name) == first
    entry.write_bytes(importlib.util.MAGIC_NUMBER + b"\x01\x00\x00\x00" + b"\x00" * 8 + first[16:])
    assert build._bridge_bytecode(source, name) == first and entry.read_bytes() == first



def test_output_dir_gets_each_runner_once_whatever_the_number_of_artifacts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--compile-only of a native build writes one artifact per host (or group) and one copy of
    each runner they need: a damaged copy is written again, and the ~1 MB runner is hashed
    once, not once per artifact (1,000 hosts: ~1 s of CPU)."""
    import hashlib

    from rustle_deploy.compiler import build
    from rustle_deploy.compiler.build import Artifact, write_outputs
    from rustle_deploy.compiler.runner import RunnerBinary

    runner_bytes = b"\x7fELF runner" * 1000
    runner_path = tmp_path / "runner"
    runner_path.write_bytes(runner_bytes)
    runner = RunnerBinary(runner_path, hashlib.sha256(runner_bytes).hexdigest(), len(runner_bytes), "t")
    arts = []
    for host in ("h1", "h2", "h3"):
        data = f'{{"hosts": {{"{host}": {{}}}}}}'.encode()
        path = tmp_path / f"{host}.native"
        path.write_bytes(data)
        arts.append(Artifact(sha256=hashlib.sha256(data).hexdigest(), path=path, size=len(data), binary_name="b",
                             target="t", hosts=(host,), files=(), families=(), with_jinja=False, cached=False,
                             runner=runner.sha256))
    out = tmp_path / "out"
    out.mkdir()
    copy = out / f"rustle-runner-{runner.sha256}"
    copy.write_bytes(b"damaged")
    hashed: list[Path] = []

    def counted(path: Path) -> str | None:
        hashed.append(path)
        return sha256_file(path)

    sha256_file = build.sha256_file
    monkeypatch.setattr(build, "sha256_file", counted)
    manifest = json.loads(write_outputs(arts, out, "p" * 64, [runner]).read_text())
    assert copy.read_bytes() == runner_bytes and copy.stat().st_mode & 0o777 == 0o700
    assert hashed.count(copy) == 1
    assert [(a["hosts"], (out / a["file"]).read_bytes()) for a in manifest["artifacts"]] == \
        [([a.hosts[0]], a.path.read_bytes()) for a in arts]
    with pytest.raises(CompileError, match="needs rustle-runner"):
        write_outputs(arts, out, "p" * 64, [])
