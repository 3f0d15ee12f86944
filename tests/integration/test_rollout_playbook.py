"""Rollouts driven from playbooks: ``serial``, ``max_fail_percentage``, ``any_errors_fatal``
and ``order`` reach the same scheduler plans use (docs/rollouts.md).

Over the real sshd fleet (20 inventory hosts): batches checked by the timestamps each host
writes, a failure that stops the next batch, ``any_errors_fatal``, resume after a stop.
Against ansible-playbook (local connection, separate trees, one run each, recorded:
tests/oracle.py): the same recap, the same hosts touched, the same batches, the same exit status.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from .. import oracle
from ..conftest import ANSIBLE_PLAYBOOK, ORACLE_TIMEOUT
from .conftest import ansible_env, recaps
from .test_rollout_ssh import Fleet, assert_sequential, batches_of

pytestmark = pytest.mark.usefixtures("rustle_home")

ANSIBLE = ANSIBLE_PLAYBOOK  # the environment under test's (tests/conftest.py)


def stamp_play(play_id: str, sleep: float = 0.1, **keys: Any) -> dict[str, Any]:
    """A play writing ``<root>/<play_id>.start`` and ``.end``, then failing where
    ``rustle_fail`` names it (the last task, so that Ansible, which stops the other hosts of
    a batch right after the failing task, and rustle-deploy, which lets them finish the play,
    touch the same things)."""
    root = "{{ rustle_test_root }}"
    return {
        "name": play_id, "hosts": "fleet", "gather_facts": False, **keys,
        "tasks": [
            {"name": "stamp start", "shell": f"mkdir -p {root} && date +%s.%N > {root}/{play_id}.start"},
            {"name": "work", "shell": f"sleep {sleep} && date +%s.%N > {root}/{play_id}.end"},
            {"name": "fail where asked", "fail": {"msg": "asked to fail"},
             "when": f"rustle_fail == '{play_id}'"},
        ],
    }


def write_playbook(tmp_path: Path, plays: list[dict[str, Any]]) -> Path:
    path = tmp_path / "site.yml"
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


# -- over the real sshd fleet ---------------------------------------------------------------


def run_playbook(fleet: Fleet, capsys: pytest.CaptureFixture[str], playbook: Path,
                 *args: str) -> tuple[int, dict[str, Any], str]:
    code = main([str(playbook), "-i", str(fleet.inventory), "--run", "--output", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


@pytest.mark.ssh
@pytest.mark.parametrize(
    ("serial", "sizes"),
    [(1, [1] * 20), (5, [5, 5, 5, 5]), ("20%", [4, 4, 4, 4, 4]), ([1, 5, "50%"], [1, 5, 10, 4])],
    ids=["one", "five", "20pct", "list"],
)
def test_playbook_serial_batches_run_one_after_another(serial: Any, sizes: list[int], sshd: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 20)
    playbook = write_playbook(tmp_path, [stamp_play("play-0", serial=serial)])
    code, doc, err = run_playbook(fleet, capsys, playbook)
    assert code == 0, err
    expected = batches_of(sizes, fleet.names)
    assert_sequential(fleet, expected)
    assert [b["hosts"] for b in doc["rollout"]["batches"]] == expected
    assert doc["rollout"]["state"] == "completed" and sorted(doc["rollout"]["updated"]) == fleet.names
    for h in doc["hosts"]:
        assert h["recap"]["changed"] == 2 and h["recap"]["skipped"] == 1, h


@pytest.mark.ssh
def test_playbook_failure_in_batch_two_stops_batch_three_then_resume(sshd: Any, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """max_fail_percentage: 0 with serial 5: n06 fails in batch 2, batches 3 and 4 never start,
    the later play runs nowhere; --resume after mending n06 finishes the fleet, both plays."""
    fleet = Fleet(sshd, tmp_path, 20)
    fleet.root("n06").mkdir(parents=True)
    (fleet.root("n06") / "broken").write_text("")
    play = stamp_play("play-0", serial=5, max_fail_percentage=0)
    play["tasks"].append({"name": "healthy host", "command": "test ! -e {{ rustle_test_root }}/broken"})
    playbook = write_playbook(tmp_path, [play, stamp_play("play-1", sleep=0.01)])
    code, doc, err = run_playbook(fleet, capsys, playbook)
    assert code == 1, err
    first, second, third, fourth = batches_of([5, 5, 5, 5], fleet.names)
    assert_sequential(fleet, [first, second])
    rollout = doc["rollout"]
    assert rollout["state"] == "stopped" and rollout["stopped_after_batch"] == 2, rollout
    assert "above max_fail_percentage 0" in rollout["reason"]
    assert rollout["failed"] == ["n06"]
    assert sorted(rollout["not_reached"]) == sorted(third + fourth)
    for name in third + fourth:
        assert fleet.stamps(name) is None and not fleet.remote(name).exists()
    assert all(fleet.stamps(n, "play-1") is None for n in fleet.names)  # the later play: nowhere
    assert sorted(rollout["partial"]) == sorted(n for n in first + second if n != "n06")
    did = doc["deployment_id"]
    before = {n: fleet.stamps(n) for n in first}

    (fleet.root("n06") / "broken").unlink()  # the operator mends the host
    code, doc, err = run_playbook(fleet, capsys, playbook, "--resume", did)
    assert code == 0, err
    assert doc["deployment_id"] == did and doc["rollout"]["state"] == "completed"
    assert sorted(doc["rollout"]["updated"]) == fleet.names
    assert all(fleet.stamps(n) == before[n] for n in first)  # done before: not run again
    assert_sequential(fleet, [["n06"], third, fourth])
    ends = max(fleet.stamps(n)[1] for n in fleet.names)  # type: ignore[index]
    assert all(fleet.stamps(n, "play-1")[0] >= ends for n in fleet.names)  # type: ignore[index]


@pytest.mark.ssh
@pytest.mark.parametrize("where", ["play", "block", "task"])
def test_playbook_any_errors_fatal_stops_the_rollout(where: str, sshd: Any, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fleet = Fleet(sshd, tmp_path, 20, fail={"n11": "play-0"})  # batch 3 of 5-host batches
    play = stamp_play("play-0", sleep=0.05, serial=5)
    if where == "play":
        play["any_errors_fatal"] = True
    elif where == "task":
        play["tasks"][2]["any_errors_fatal"] = True
    else:
        play["tasks"] = play["tasks"][:2] + [{"block": play["tasks"][2:], "any_errors_fatal": True}]
    code, doc, err = run_playbook(fleet, capsys, write_playbook(tmp_path, [play]))
    assert code == 1, err
    rollout = doc["rollout"]
    # a stage per phase and batch (docs/rollouts.md): on the play, any_errors_fatal ends a phase
    # after each task that may fail (Ansible's lock-step), so batch 3 ends at stage 3 of 4 times those
    per_batch = rollout["total_batches"] // 4
    assert (where == "play") == (per_batch > 1), rollout
    assert rollout["state"] == "stopped" and rollout["stopped_after_batch"] == 3 * per_batch, rollout
    assert rollout["reason"].startswith("any_errors_fatal")
    assert sorted(rollout["not_reached"]) == fleet.names[15:]
    assert all(not fleet.remote(n).exists() for n in fleet.names[15:])


def test_playbook_rollout_keywords_in_the_emitted_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--emit-plan carries them (templated over play vars and -e); the plan runs the same
    batches; a task's any_errors_fatal: false overrides its play's true, as in Ansible."""
    names = [f"h{i}" for i in range(5)]
    inv = tmp_path / "inv.ini"
    inv.write_text("[fleet]\n" + "".join(f"{n} ansible_connection=local\n" for n in names))
    plays = [stamp_play("one", serial="{{ size }}", max_fail_percentage="{{ 20 + 5 }}%", order="reverse_sorted",
                        vars={"size": 2}),
             {"hosts": "fleet", "any_errors_fatal": "yes", "tasks": [
                 {"name": "fatal", "debug": {"msg": "a"}},
                 {"name": "not fatal", "debug": {"msg": "b"}, "any_errors_fatal": False}]}]
    playbook = write_playbook(tmp_path, plays)
    assert main([str(playbook), "-i", str(inv), "--emit-plan", "-e", "unused=1"]) == 0
    doc = json.loads(capsys.readouterr()[0])
    one, two = doc["plays"]
    assert (one["serial"], one["max_fail_percentage"], one["order"]) == ([2], 25.0, "reverse_sorted")
    assert "any_errors_fatal" not in one
    assert "any_errors_fatal" not in two  # overridden by a task: the tasks carry it one by one
    assert [t.get("any_errors_fatal") for t in two["batches"][0]["tasks"]] == [True, None]
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(doc))
    for source in (playbook, plan):
        assert main([str(source), "-i", str(inv), "--run", "--dry-run", "--output", "json"]) == 0
        stages = json.loads(capsys.readouterr()[0])["schedule"]["stages"]
        # the second play: its fatal task ends a phase (any_errors_fatal's lock-step), then the other
        assert [s["batches"] for s in stages] == [[["h4", "h3"], ["h2", "h1"], ["h0"]], [names], [names]]


@pytest.mark.parametrize(
    ("keys", "needle"),
    [({"serial": -1}, "expected a host count or a percentage"),
     ({"serial": "{{ nope }}"}, "'serial' depends on data only a host has"),
     ({"max_fail_percentage": 150}, "expected a percentage from 0 to 100"),
     ({"any_errors_fatal": "maybe"}, "'any_errors_fatal' takes a boolean"),
     ({"order": "random"}, "unknown host order 'random'")],
)
def test_playbook_bad_rollout_keywords_are_refused(keys: dict[str, Any], needle: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    inv = tmp_path / "inv.ini"
    inv.write_text("[fleet]\nh0 ansible_connection=local\nh1 ansible_connection=local\n")
    playbook = write_playbook(tmp_path, [stamp_play("one", **keys)])
    assert main([str(playbook), "-i", str(inv), "--run"]) == 2
    err = capsys.readouterr()[1]
    assert needle in err and "site.yml:" in err, err


# -- against ansible-playbook ----------------------------------------------------------------


def local_fleet(tmp_path: Path, tool: str, n: int, fail: dict[str, str]) -> tuple[Path, Path]:
    base = tmp_path / tool
    lines = ["[fleet]"]
    for i in range(n):
        name = f"h{i:02d}"
        lines.append(f"{name} ansible_connection=local ansible_python_interpreter={sys.executable} "
                     f"rustle_remote_dir={base / 'remote' / name} rustle_test_root={base / 'root' / name} "
                     f"rustle_fail={fail.get(name, 'none')}")
    base.mkdir()
    inv = base / "inventory.ini"
    inv.write_text("\n".join(lines) + "\n")
    return inv, base / "root"


def stamps(root: Path, name: str, play_id: str) -> tuple[float, float] | None:
    try:
        return (float((root / name / f"{play_id}.start").read_text()),
                float((root / name / f"{play_id}.end").read_text()))
    except FileNotFoundError:
        return None


def sequential(root: Path, batches: list[list[str]], play_id: str) -> bool:
    previous_end = 0.0
    for batch in batches:
        got = [stamps(root, n, play_id) for n in batch]
        if not all(got) or min(s[0] for s in got if s) < previous_end:
            return False
        previous_end = max(s[1] for s in got if s)
    return True


# name: (plays, failing hosts, expected batches of play-0)
SCENARIOS: dict[str, tuple[list[dict[str, Any]], dict[str, str], list[int]]] = {
    "serial_list_then_a_plain_play": (
        [stamp_play("play-0", serial=[1, 3, "50%"]), stamp_play("play-1", sleep=0.01)], {}, [1, 3, 4]),
    "max_fail_percentage_0_stops_after_batch_2": (
        [stamp_play("play-0", serial=2, max_fail_percentage=0), stamp_play("play-1", sleep=0.01)],
        {"h03": "play-0"}, [2, 2]),
    "within_max_fail_percentage_goes_on": (
        [stamp_play("play-0", serial=4, max_fail_percentage=25), stamp_play("play-1", sleep=0.01)],
        {"h01": "play-0"}, [4, 4]),
    "any_errors_fatal_play": (
        [stamp_play("play-0", serial=3, any_errors_fatal=True), stamp_play("play-1", sleep=0.01)],
        {"h04": "play-0"}, [3, 3]),
    "any_errors_fatal_task_without_serial": (
        [{**stamp_play("play-0"), "tasks": stamp_play("play-0")["tasks"][:2] + [
            {"block": stamp_play("play-0")["tasks"][2:], "any_errors_fatal": True}]},
         stamp_play("play-1", sleep=0.01)],
        {"h02": "play-0"}, [8]),
    "a_batch_that_fails_entirely_stops": (
        [stamp_play("play-0", serial=2), stamp_play("play-1", sleep=0.01)],
        {"h02": "play-0", "h03": "play-0"}, [2, 2]),
    "order_reverse_sorted": (
        [stamp_play("play-0", serial=3, order="reverse_sorted")], {}, [3, 3, 2]),
}


def ansible_rollout(tmp_path: Path, playbook: Path, fail: dict[str, str], names: list[str],
                    batches: list[list[str]]) -> dict[str, Any]:
    """ansible-playbook's answer for a scenario (recorded: tests/oracle.py): its exit code, recap,
    the hosts each play touched, and what its stamps say about the times: whether play-0 ran in
    ``batches``, one after another, and whether play-1 started only after play-0 had ended (the
    times themselves change every run; these answers do not)."""
    inv, root = local_fleet(tmp_path, "ansible", len(names), fail)
    argv = [str(ANSIBLE), "-i", str(inv), str(playbook)]
    env = ansible_env(tmp_path, ANSIBLE_FORKS="8")
    places = {"{tmp}": tmp_path}
    inputs = oracle.norm({"playbook": playbook.read_text(), "inventory": inv.read_text(), "argv": argv,
                          "env": oracle.env(env), "batches": batches}, places)

    def run() -> dict[str, Any]:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=ORACLE_TIMEOUT)
        return oracle.norm({"code": proc.returncode, "recap": recaps(proc.stdout),
                            "touched": {p: [n for n in names if stamps(root, n, p)] for p in ("play-0", "play-1")},
                            "sequential": sequential(root, batches, "play-0"),
                            "later_play_after": later_play_after(root, names),
                            "log": proc.stdout + proc.stderr}, places)

    result: dict[str, Any] = oracle.recorded("rollout_playbook", inputs, run, volatile=("log",))
    return result


def later_play_after(root: Path, names: list[str]) -> bool | None:
    """Whether play-1 started on every host only after play-0 had ended on all (None: no play-1)."""
    if not any(stamps(root, n, "play-1") for n in names):
        return None
    first_end = max(s[1] for n in names if (s := stamps(root, n, "play-0")))
    return min(s[0] for n in names if (s := stamps(root, n, "play-1"))) >= first_end


@pytest.mark.ansible
@pytest.mark.oracle
@pytest.mark.skipif(not ANSIBLE.exists(), reason="ansible-core is not installed in this environment")
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_playbook_rollout_matches_ansible(scenario: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plays, fail, sizes = SCENARIOS[scenario]
    names = [f"h{i:02d}" for i in range(8)]
    order = sorted(names, reverse=True) if plays[0].get("order") == "reverse_sorted" else names
    batches = batches_of(sizes, order[:sum(sizes)])
    playbook = write_playbook(tmp_path, plays)

    ansible = ansible_rollout(tmp_path, playbook, fail, names, batches)
    a_log = ansible["log"]
    a_recap = ansible["recap"]
    assert a_recap, a_log

    r_inv, r_root = local_fleet(tmp_path, "rustle", 8, fail)
    code = main([str(playbook), "-i", str(r_inv), "--run", "--output", "json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    r_log = out + err

    assert (ansible["code"] == 0) == (code == 0), f"ansible {ansible['code']}, rustle {code}\n{a_log}\n{r_log}"
    # the same hosts in the recap, with the same counts; the others never reached
    by_name = {h["name"]: h for h in doc["hosts"]}
    for name in names:
        if name in a_recap:
            ours = by_name[name]["recap"]
            for key in ("ok", "changed", "failed", "skipped"):
                assert ours.get(key, 0) == a_recap[name][key], f"{name} {key}\n{a_log}\n{r_log}"
        else:
            assert by_name[name]["rollout"] == "not_reached", f"{name}\n{a_log}\n{r_log}"
    # the same hosts touched, play by play, in the same batches
    for play_id in ("play-0", "play-1"):
        r_touched = [n for n in names if stamps(r_root, n, play_id)]
        assert ansible["touched"][play_id] == r_touched, f"{play_id}\n{a_log}\n{r_log}"
    assert ansible["sequential"], a_log
    assert sequential(r_root, batches, "play-0"), r_log
    # a later play starts once the first ended, under both
    assert later_play_after(r_root, names) == ansible["later_play_after"], f"{a_log}\n{r_log}"
    assert later_play_after(r_root, names) in (True, None), r_log
