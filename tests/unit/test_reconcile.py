"""What a host's status reply says about a deployment (reconcile.read_finding)."""

from __future__ import annotations

from rustle_deploy.reconcile import read_finding

DID = "d-20261206T000000-abcdef"


def reply(*lines: dict, current: str | None = "new") -> dict:
    return {"releases": {"b": {"current": current, "previous": "old"}},
            "history": [{"op": "deploy", "deployment_id": "d-other", "binary_name": "b", "sha256": "x"}],
            "deployment": list(lines)}


def test_activated_then_interrupted() -> None:
    f = read_finding(reply(
        {"op": "deploy", "deployment_id": DID, "binary_name": "b", "sha256": "new", "previous": "old", "changed": True},
        {"op": "interrupted", "deployment_id": DID, "binary_name": "b", "why": "the controller went away",
         "killed": 3, "left": 0},
    ), DID, "b")
    assert (f.status, f.sha256, f.previous_sha256) == ("activated", "new", "old")
    assert f.note == "the run was interrupted on the host: the controller went away; it ended 3 process(es) the run had started"


def test_already_current_is_unchanged_and_none_without_a_line() -> None:
    f = read_finding(reply({"op": "deploy", "deployment_id": DID, "binary_name": "b", "sha256": "new",
                            "previous": "new", "changed": False}), DID, "b")
    assert f.status == "unchanged" and f.note is None
    f = read_finding(reply(current="old"), DID, "b")
    assert (f.status, f.sha256) == (None, "old"), "it never got as far as activating"


def test_an_older_agent_without_deployment_lines_is_read_from_recent_history() -> None:
    agent = reply()
    del agent["deployment"]
    agent["history"].append({"op": "deploy", "deployment_id": DID, "binary_name": "b", "sha256": "new",
                             "previous": None, "changed": True})
    f = read_finding(agent, DID, "b")
    assert (f.status, f.previous_sha256) == ("activated", None)
    other = read_finding(agent, DID, "another-binary")
    assert other.status is None
