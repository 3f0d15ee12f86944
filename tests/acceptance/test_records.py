"""The recorded oracle of the acceptance targets (tests/acceptance/records.py): a record is
replayed only for the inputs it was made from, ``live`` catches one that says otherwise, and a
record holds ansible-playbook's results alone. Two real ansible-playbook runs of a small
role-shaped target (about 5 s of CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from . import harness, records
from .harness import Run, oracle_record, recorded_oracle

TASKS = """\
- name: say hello
  debug:
    msg: hello
- name: change something
  command: "true"
- name: fail on purpose
  fail:
    msg: "failed in {{ output_dir }}"
  ignore_errors: true
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A targets directory holding one role-shaped target, ``tiny``, and a helper role it needs
(copied beside it, as ``needs/target/`` asks, not run)."""
    targets = tmp_path / "targets"
    for name, tasks in (("tiny", TASKS), ("helper", "- debug: msg=helper\n")):
        (targets / name / "tasks").mkdir(parents=True)
        (targets / name / "tasks" / "main.yml").write_text(tasks)
    (targets / "tiny" / "aliases").write_text("gather_facts/no\nneeds/target/helper\n")
    return targets


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(records, "RECORDS", tmp_path / "records")
    return tmp_path / "records"


def test_the_key_covers_the_targets_files_and_the_harness_inputs(root: Path, store: Path) -> None:
    key = oracle_record(root, "tiny").key
    assert oracle_record(root, "tiny").key == key  # the same inputs, the same key
    (root / "helper" / "tasks" / "main.yml").write_text("- debug: msg=other\n")  # a target it needs
    changed = oracle_record(root, "tiny").key
    assert changed != key
    (root / "tiny" / "files").mkdir()
    (root / "tiny" / "files" / "new.txt").write_text("x")  # a file no task names yet
    assert oracle_record(root, "tiny").key not in (key, changed)
    again = oracle_record(root, "tiny").key
    (root / "tiny" / "aliases").write_text("needs/target/helper\n")  # site.yml gathers facts now
    assert oracle_record(root, "tiny").key != again


def test_a_record_is_replayed_for_its_key_and_live_fails_on_a_doctored_one(
        root: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[str] = []
    live = harness.run_attempts

    def counted(*args: object, **kwargs: object) -> Run:
        ran.append("ansible")
        return live(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(harness, "run_attempts", counted)
    monkeypatch.delenv("RUSTLE_ORACLE", raising=False)
    # no record: ansible-playbook runs, and its results are written with their key
    first = recorded_oracle(root, "tiny", base=tmp_path)
    assert ran == ["ansible"] and first.passed
    path = store / harness.ANSIBLE_VERSION / "tiny.json"
    doc = json.loads(path.read_text())
    assert doc["key"] == oracle_record(root, "tiny").key and doc["code"] == 0
    assert [(r["task"], r["status"], r["ignored"]) for r in doc["results"]] == [
        ("tiny : say hello", "ok", False),
        ("tiny : change something", "changed", False), ("tiny : fail on purpose", "failed", True)]
    # what ansible-playbook produced, nothing else: the failure's message with the work directory masked
    assert doc["results"][2]["msg"] == "failed in WORK/output" and "msg" not in doc["results"][0]
    assert set(doc) == {"format", "key", "inputs", "seconds", "earlier", "code", "results"}

    # the key matches: replayed, nothing runs
    replayed = recorded_oracle(root, "tiny", base=tmp_path)
    assert ran == ["ansible"] and replayed.code == 0 and replayed.log.startswith("(the recorded oracle")
    assert records.normalised(replayed, harness._mask) == records.normalised(first, harness._mask)

    # a doctored record is replayed as it is (replay trusts its key), and live catches it
    doc["results"][1]["status"] = "ok"
    path.write_text(json.dumps(doc))
    assert recorded_oracle(root, "tiny", base=tmp_path).results[1]["status"] == "ok"
    monkeypatch.setenv("RUSTLE_ORACLE", "live")
    with pytest.raises(records.OracleMismatch, match=r"result 1: recorded .*\"status\":\"ok\".*now .*\"changed\""):
        recorded_oracle(root, "tiny", base=tmp_path)
    assert ran == ["ansible", "ansible"]
    assert json.loads(path.read_text())["results"][1]["status"] == "ok"  # live never rewrites

    # a changed target file: the record is of other inputs, so replay runs ansible-playbook again
    # and rewrites it (without running anything, ``record`` and the key say the same)
    monkeypatch.setenv("RUSTLE_ORACLE", "replay")
    (root / "tiny" / "tasks" / "main.yml").write_text(TASKS.replace('"true"', '"false"'))
    rerun = recorded_oracle(root, "tiny", base=tmp_path)
    assert ran == ["ansible"] * 3 and not rerun.passed
    assert json.loads(path.read_text())["key"] == oracle_record(root, "tiny").key

    monkeypatch.setenv("RUSTLE_ORACLE", "sometimes")
    with pytest.raises(ValueError, match="RUSTLE_ORACLE='sometimes': expected one of replay, live, record"):
        recorded_oracle(root, "tiny", base=tmp_path)


def test_make_acceptance_reuses_an_oracle_only_of_todays_inputs(root: Path, store: Path) -> None:
    """harness.main's cached ansible-playbook result, or the suite's record, stands for a run
    only when its key is that of the inputs a run would have now."""
    record = oracle_record(root, "tiny")
    assert harness.replay_record(record) is None  # no record
    record.write({"code": 0, "results": [{"task": "tiny : say hello", "host": "testhost", "module": "debug",
                                          "status": "ok", "ignored": False}]}, [], 3.5)
    run = harness.replay_record(record)
    assert run is not None and run.tool == "ansible" and run.passed and run.key == record.key
    assert run.summary() == {"tasks": 1, "passed": 1, "failed": 0} and run.seconds == 3.5
    # a cache's own result: finished, and of today's key (one written before keys were kept has none)
    assert harness.usable_oracle({"code": 0, "key": record.key}, record.key)
    assert not harness.usable_oracle({"code": 0}, record.key)
    assert not harness.usable_oracle({"code": None, "key": record.key}, record.key)  # timed out
    assert not harness.usable_oracle(None, record.key)
    # the target changes: neither the record nor the cached result of the old key is used
    (root / "tiny" / "tasks" / "main.yml").write_text(TASKS + "- debug: msg=more\n")
    now = oracle_record(root, "tiny")
    assert harness.replay_record(now) is None
    assert not harness.usable_oracle({"code": 0, "key": record.key}, now.key)
