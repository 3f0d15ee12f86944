"""The broken-playbook corpus: each case is refused at its file, line and column, with its message.

Cases live in tests/data/broken_playbooks/<case>/ (written by make_cases.py there); what each
must be refused with is in expected.json. Every refusal is a PlaybookError (exit code 2) whose
text starts with ``file:line:column:`` and, where the file has that line, shows it with a caret.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType

import pytest

from rustle_deploy.errors import PlaybookError
from rustle_deploy.inventory import load_inventory
from rustle_deploy.playbook import CompileOptions, compile_playbook

CORPUS = Path(__file__).resolve().parents[1] / "data" / "broken_playbooks"
EXPECTED: dict[str, dict[str, object]] = json.loads((CORPUS / "expected.json").read_text())


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_cases", CORPUS / "make_cases.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_large_and_complete() -> None:
    assert len(EXPECTED) >= 40
    on_disk = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert on_disk == set(EXPECTED)


def test_corpus_matches_its_generator() -> None:
    for rel, text in _generator().build().items():
        assert (CORPUS / rel).read_text() == text, f"{rel} is stale: run make_cases.py"


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_broken_playbook_is_refused_where_it_is_wrong(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS)
    expected = EXPECTED[case]
    inventory = load_inventory("inventory.ini")
    with pytest.raises(PlaybookError) as err:
        compile_playbook(os.path.join(case, "site.yml"), inventory, CompileOptions())
    error = err.value
    assert (error.file, error.line, error.column) == (expected["file"], expected["line"], expected["column"])
    assert str(expected["message"]) in error.detail
    text = str(error)
    where = f"{error.file}:{error.line}:{error.column}: " if error.line else f"{error.file}: "
    assert text.startswith(where)
    if error.line:
        source = (CORPUS / str(error.file)).read_text().splitlines()[error.line - 1]
        assert f"{error.line:>5} | {source.rstrip()}\n" in text
        assert "^ here" in text
    assert error.exit_code == 2
