"""The run cache's key (runcache.key): what is known before a compile reads its first input.
Each part, changed alone, changes the key; the same command in the same place keeps it."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustle_deploy import runcache
from rustle_deploy.ansible_cfg import AnsibleConfig
from rustle_deploy.settings import Settings

OPTS = {"execution_plan": "plan.json", "inventory": ["inv.yml"], "run_": True, "verbose": 0}


def _key(**opts: object) -> str:
    return runcache.key({**OPTS, **opts}, Settings(), AnsibleConfig())


def test_each_part_of_the_key_counts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    base = _key()
    assert _key() == base
    assert _key(limit="web*") != base  # an option
    assert runcache.key(OPTS, Settings(parallel=7), AnsibleConfig()) != base  # a setting
    assert runcache.key(OPTS, Settings(), AnsibleConfig(path="/x/ansible.cfg", values={"forks": 3})) != base
    monkeypatch.setenv("RUSTLE_KEY_TEST", "1")  # the environment
    assert _key() != base
    monkeypatch.delenv("RUSTLE_KEY_TEST")
    monkeypatch.setenv("OLDPWD", "/somewhere/else")  # but not what a shell changes between commands
    assert _key() == base
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # the working directory
    assert _key() != base
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runcache, "__version__", "0.0.0-other")  # the tool's version
    assert _key() != base


def test_commands_that_must_compile_do_not_use_it() -> None:
    assert runcache.usable(OPTS, secrets=False)
    assert not runcache.usable(OPTS, secrets=True)
    for opt in ("rebuild", "resume", "ask_become_pass", "compile_only", "dry_run", "emit_plan"):
        assert not runcache.usable({**OPTS, opt: True}, secrets=False), opt
    assert not runcache.usable({**OPTS, "execution_plan": "-"}, secrets=False)
