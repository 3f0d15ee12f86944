"""What the lowering learnt from benchmarks/lowering.py's measurement, each run through both
formats: the same files, recaps and task results."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..conftest import make_plan
from .test_native_runs import cli, files


def test_loop_control_index_var_and_extended_lower_and_match_pyz(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], native_cache: Path
) -> None:
    tasks = [
        {"name": "numbered", "module": "copy", "loop": ["a", "b", "c"],
         "loop_control": {"index_var": "idx", "extended": True, "label": "{{ idx }}:{{ item }}"},
         "args": {"content": "{{ idx }} {{ ansible_loop.index }}/{{ ansible_loop.length }} "
                             "{{ ansible_loop.first }} {{ ansible_loop.last }} "
                             "{{ ansible_loop.previtem | default('-') }}\n",
                  "dest": "{{ root }}/{{ item }}.txt"},
         "register": "made", "conditions": [{"When": {"expression": "idx != 1"}}]},
        {"name": "check", "module": "assert", "args": {"that": [
            "made.results | length == 3", "made.results[0].idx == 0", "made.results[2].idx == 2",
            "made.results[1] is skipped", "made.results[0].ansible_index_var == 'idx'"]}},
    ]
    outcomes = {}
    for fmt in ("pyz", "native"):
        root = tmp_path / fmt / "root"
        root.mkdir(parents=True)
        plan = make_plan(tmp_path / fmt, tasks, play_vars={"root": str(root)})
        code, doc, err = cli(capsys, str(plan), "--run", "--output", "json", "--format", fmt, "-v")
        assert code == 0, err
        host = doc["hosts"][0]
        outcomes[fmt] = ({k: host["recap"][k] for k in ("ok", "changed", "failed", "skipped")}, files(root))
    assert outcomes["native"] == outcomes["pyz"]
    assert (tmp_path / "native" / "root" / "c.txt").read_text() == "2 3/3 False True b\n"
    assert not (tmp_path / "native" / "root" / "b.txt").exists()
