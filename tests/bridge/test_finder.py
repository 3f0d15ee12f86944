"""finder.py against ansible-core: the modules it decides by reading files, and what it leaves.

One probe (ansible-core's own answer, ``probe.py``) over every module of ``ansible.builtin``,
shared by the module's tests; each module's answer (where, action plugin, module_fqn, profile,
redirects, and every embedded file byte for byte) must be the probe's.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.bridge import finder, lookup

ANSIBLE = Path(importlib.util.find_spec("ansible").origin or "").parent  # type: ignore[union-attr]
BUILTIN = sorted(p.stem for p in (ANSIBLE / "modules").glob("*.py") if p.name != "__init__.py")
# each way of naming a module that resolves as Ansible's legacy search does, for a few
FORMS = [f"{prefix}{name}" for name in ("stat", "uri", "ping") for prefix in ("ansible.builtin.", "ansible.legacy.")]


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """HOME, cwd and environment with nothing that configures ansible-core."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("finder")
    (root / "home").mkdir()
    (root / "plan").mkdir()
    mp.setenv("HOME", str(root / "home"))
    for key in list(os.environ):
        if key.startswith("ANSIBLE_"):
            mp.delenv(key)
    mp.chdir(root)
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def both(plain: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    lookups: dict[str, list[Any]] = {name: [name, []] for name in BUILTIN + FORMS}
    plan_dirs = [str(plain / "plan")]
    return finder.decide(lookups, plan_dirs), lookup.probe({"op": "resolve", "lookups": lookups, "plan_dirs": plan_dirs})


def test_every_builtin_module_it_decides_is_answered_as_ansible_core_answers(both: tuple[dict[str, Any], dict[str, Any]]) -> None:
    fast, probe = both
    for key in ("ansible_version", "python", "module_paths", "collections_paths", "internal"):
        assert fast[key] == probe[key], key
    decided = fast["modules"]
    # every module ansible-core runs as new-style Python is decided; the others are left to it
    new_style = {k for k, m in probe["modules"].items() if m.get("found") and m.get("style") == "new"}
    assert set(decided) == new_style
    assert len(decided) > 40 and set(FORMS) <= set(decided)
    for key, mine in decided.items():
        theirs = probe["modules"][key]
        assert set(mine["files"]) == set(theirs["files"]), key
        for name, data in mine["files"].items():
            assert data == theirs["files"][name], f"{key}: {name}"
        assert mine == theirs, key
    assert decided["uri"]["action"] == "ansible.builtin.uri" and decided["stat"]["action"] is None


def test_what_only_ansible_core_can_answer_is_left_to_it(plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = [str(plain / "plan")]
    names = {
        "community.general.ini_file": [],  # a collection's
        "ini_file": [],  # routed by ansible_builtin_runtime.yml to community.general
        "stat in my.coll": ["my.coll", "ansible.legacy"],  # a collections: search
        "add_host": [],  # no module code (an action of the strategy)
        "no_such_module": [],
    }
    answer = finder.decide({k: [k.split(" ")[0], c] for k, c in names.items()}, plan)
    assert answer["modules"] == {}
    assert set(finder.decide({"stat": ["stat", []]}, plan)["modules"]) == {"stat"}
    # a setting or a directory ansible-core would read: nothing is decided here
    monkeypatch.setenv("ANSIBLE_LIBRARY", str(plain / "lib"))
    assert finder.decide({"stat": ["stat", []]}, plan) == {"modules": {}}
    monkeypatch.delenv("ANSIBLE_LIBRARY")
    for place in (plain / "plan" / "library", plain / "plan" / "module_utils", plain / "home" / ".ansible" / "plugins" / "modules"):
        place.mkdir(parents=True)
        assert finder.decide({"stat": ["stat", []]}, plan) == {"modules": {}}, place
        place.rmdir()
    (plain / "ansible.cfg").write_text("[defaults]\n")
    try:
        assert finder.decide({"stat": ["stat", []]}, plan) == {"modules": {}}
    finally:
        (plain / "ansible.cfg").unlink()


def test_a_lookup_it_decides_does_not_start_ansible_core(plain: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_probe(request: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError(f"ansible-core was asked: {request}")

    monkeypatch.setattr(lookup, "probe", no_probe)
    answer = lookup._ask({"stat": ["stat", []], "lineinfile": ["lineinfile", []]}, [str(plain / "plan")])
    assert set(answer["modules"]) == {"stat", "lineinfile"}
    with pytest.raises(AssertionError, match="ansible-core was asked"):
        lookup._ask({"stat": ["stat", []], "ini_file": ["ini_file", []]}, [str(plain / "plan")])


def test_the_routing_reader_sees_ansible_cores_routed_names() -> None:
    routed = finder._routed((ANSIBLE / "config" / "ansible_builtin_runtime.yml").read_text())
    assert {"ini_file", "authorized_key", "sysctl"} <= routed["modules"]
    assert "formerly_core" in routed["module_utils"]
    assert not {"stat", "uri", "lineinfile"} & routed["modules"]
    with pytest.raises(ValueError, match="unexpected layout"):
        finder._routed("plugin_routing:\n  modules:\n    - a list\n")
