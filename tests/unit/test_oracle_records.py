"""tests/oracle.py, the recorded oracle results: a record is keyed by every byte of its inputs,
replayed when present, made by a live ansible-playbook run when missing, and ``live`` fails on a
record that ansible-core does not reproduce. Records go to a tmp dir here, never to
tests/data/oracle/. Four small ansible-playbook runs (~8 s of CPU)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .. import oracle
from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT

pytestmark = pytest.mark.skipif(not ANSIBLE_PLAYBOOK.exists(), reason="ansible-core is not installed")

PLAYBOOK = """\
- hosts: localhost
  gather_facts: false
  tasks:
    - copy:
        dest: "{{ out }}/said"
        content: "{{ word }}\\n"
"""


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "records"
    monkeypatch.setattr(oracle, "RECORDS", root)
    monkeypatch.delenv("RUSTLE_ORACLE", raising=False)
    return root


class Oracle:
    """A real ansible-playbook run of PLAYBOOK with ``-e word=WORD``: what it wrote, as a
    differential test's oracle side would record it; ``runs`` counts the live runs."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.runs = 0

    def inputs(self, word: str) -> dict[str, Any]:
        return oracle.norm({"playbook": PLAYBOOK, "argv": ["-e", f"word={word}", "-e", f"out={self.tmp}/out"]},
                           {"{tmp}": self.tmp})

    def answer(self, word: str) -> Any:
        def run() -> dict[str, Any]:
            self.runs += 1
            out = self.tmp / "out"
            out.mkdir(exist_ok=True)
            (self.tmp / "site.yml").write_text(PLAYBOOK)
            proc = subprocess.run(
                [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(self.tmp / "site.yml"),
                 "-e", f"word={word}", "-e", f"out={out}"],
                capture_output=True, text=True, timeout=ORACLE_TIMEOUT,
                env={"PATH": "/usr/bin:/bin", "HOME": str(self.tmp), "ANSIBLE_LOCALHOST_WARNING": "False"})
            said = (out / "said").read_text() if (out / "said").exists() else None
            return oracle.norm({"code": proc.returncode, "said": said, "log": proc.stdout}, {"{tmp}": self.tmp})

        return oracle.recorded("selftest", self.inputs(word), run, volatile=("log",))


def test_missing_record_runs_live_then_replays(records: Path, tmp_path: Path) -> None:
    o = Oracle(tmp_path)
    first = o.answer("hello")
    assert o.runs == 1 and first["code"] == 0 and first["said"] == "hello\n"
    made = oracle.path("selftest", o.inputs("hello"))
    assert made.parent == records / "selftest" and json.loads(made.read_text()) == first
    assert o.answer("hello") == first and o.runs == 1  # replayed: no second run


def test_one_changed_input_byte_is_a_new_key(records: Path, tmp_path: Path) -> None:
    o = Oracle(tmp_path)
    assert oracle.key("selftest", o.inputs("hello")) != oracle.key("selftest", o.inputs("hellp"))
    assert oracle.key("selftest", o.inputs("hello")) != oracle.key("other", o.inputs("hello"))
    o.answer("hello")
    assert o.answer("hellp")["said"] == "hellp\n" and o.runs == 2  # a miss: ansible-core ran again
    assert len(list((records / "selftest").iterdir())) == 2


def test_live_fails_on_a_doctored_record(records: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    o = Oracle(tmp_path)
    made = oracle.path("selftest", o.inputs("hello"))
    o.answer("hello")
    doc = json.loads(made.read_text())
    made.write_text(json.dumps(dict(doc, log="a console log is not compared")))
    monkeypatch.setenv("RUSTLE_ORACLE", "live")
    assert o.answer("hello")["said"] == "hello\n" and o.runs == 2
    made.write_text(json.dumps(dict(doc, said="goodbye\n")))
    with pytest.raises(oracle.OracleMismatch, match="differs from ansible-core's live answer"):
        o.answer("hello")
    assert json.loads(made.read_text())["said"] == "goodbye\n"  # live writes nothing over it
    monkeypatch.setenv("RUSTLE_ORACLE", "replay")
    assert o.answer("hello")["said"] == "goodbye\n"  # what replay trusts: hence make oracle-check
    monkeypatch.setenv("RUSTLE_ORACLE", "record")
    assert o.answer("hello")["said"] == "hello\n" and json.loads(made.read_text())["said"] == "hello\n"
    assert o.runs == 4


def test_unknown_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSTLE_ORACLE", "replays")
    with pytest.raises(ValueError, match="expected one of replay, live, record"):
        oracle.mode()


def test_norm_writes_places_longest_first(tmp_path: Path) -> None:
    inner = tmp_path / "work"
    assert oracle.norm({f"{inner}/a": [str(tmp_path), f"x {inner}/b"]}, {"{tmp}": tmp_path, "{work}": inner}) == \
        {"{work}/a": ["{tmp}", "x {work}/b"]}


def test_live_compares_without_ansible_cores_temporary_names() -> None:
    one = {"src": "/h/.ansible/tmp/ansible-tmp-1796677941.888079-9323-79157164357142/.source.txt", "log": "a"}
    two = {"src": "/h/.ansible/tmp/ansible-tmp-1796677999.1-9400-1/.source.txt", "log": "b"}
    assert oracle._stable(one, ("log",)) == oracle._stable(two, ("log",)) == \
        {"src": "/h/.ansible/tmp/ansible-tmp-RANDOM/.source.txt"}
    assert oracle._stable(one, ()) != oracle._stable(two, ())
