"""The rollout schedule: Ansible's serial batches, play order, stages, when to stop; parsing."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from rustle_deploy.errors import PlanError
from rustle_deploy.model import Host
from rustle_deploy.plan import parse_plan
from rustle_deploy.rollout import (
    PlaySpec,
    Schedule,
    Stage,
    canary_count,
    ordered,
    play_specs,
    schedule,
    serial_batches,
    stop_reason,
    with_canary,
)

from .. import planmaker as pm

HOSTS = [f"h{i:02d}" for i in range(20)]


def sizes(batches: list[tuple[str, ...]]) -> list[int]:
    return [len(b) for b in batches]


@pytest.mark.parametrize(
    ("serial", "expected"),
    [
        (None, [20]),
        ((1,), [1] * 20),
        ((5,), [5, 5, 5, 5]),
        ((6,), [6, 6, 6, 2]),
        (("20%",), [4] * 5),
        (("30%",), [6, 6, 6, 2]),  # int(0.3 * 20)
        (("1%",), [1] * 20),  # never below one host
        ((1, 5, "50%"), [1, 5, 10, 4]),  # the last step repeats
        ((0,), [20]),  # 0: every host at once
        ((2, 0), [2, 18]),
        ((100,), [20]),
    ],
)
def test_serial_batches_as_ansible_cuts_them(serial: Any, expected: list[int]) -> None:
    batches = serial_batches(HOSTS, serial)
    assert sizes(batches) == expected
    assert [h for b in batches for h in b] == HOSTS


def test_play_order() -> None:
    names = ["b", "c", "a"]
    assert ordered(names, "inventory") == ["b", "c", "a"]
    assert ordered(names, "reverse_inventory") == ["a", "c", "b"]
    assert ordered(names, "sorted") == ["a", "b", "c"]
    assert ordered(names, "reverse_sorted") == ["c", "b", "a"]
    assert sorted(ordered(names, "shuffle", random.Random(3))) == ["a", "b", "c"]


def spec(index: int, hosts: list[str] = HOSTS, **kw: Any) -> PlaySpec:
    return PlaySpec(index=index, name=f"p{index}", hosts=tuple(hosts), **kw)


def test_plain_plays_share_a_stage_and_controlled_plays_stand_alone() -> None:
    s = schedule([spec(0), spec(1), spec(2, serial=(10,)), spec(3), spec(4, max_fail_percentage=0.0)], HOSTS)
    assert [st.plays for st in s.stages] == [(0, 1), (2,), (3,), (4,)]
    assert [sizes(list(st.batches)) for st in s.stages] == [[20], [10, 10], [20], [20]]
    assert s.staged and s.batched and s.total == 5
    plain = schedule([spec(0), spec(1)], HOSTS)
    assert not plain.staged and not plain.batched and plain.first_hosts() == tuple(HOSTS)


def test_limit_and_play_hosts_shape_the_batches() -> None:
    s = schedule([spec(0, hosts=HOSTS[:10], serial=("50%",))], HOSTS[2:12])
    # percentages are of the play's chosen hosts; hosts of the plan outside every play still
    # get their artifact, after the play's batches
    assert [list(b) for b in s.stages[0].batches] == [HOSTS[2:6], HOSTS[6:10]]
    assert s.stages[1].plays == () and list(s.stages[1].batches[0]) == HOSTS[10:12]


def test_schedule_round_trips_through_json() -> None:
    s = schedule([spec(0, serial=(1, "50%"), any_errors_fatal=True, fatal_tasks=("play-0/task_1",)), spec(1)], HOSTS)
    assert Schedule.from_json(json.loads(json.dumps(s.to_json()))) == s
    p = spec(0, serial=(2,), order="sorted", max_fail_percentage=12.5)
    assert PlaySpec.from_json(json.loads(json.dumps(p.to_json()))) == p


@pytest.mark.parametrize(
    ("stage", "ran", "failed", "fatal", "stops"),
    [
        (Stage((0,), ("p",), ()), 5, 1, False, False),
        (Stage((0,), ("p",), ()), 5, 5, False, True),  # Ansible: a batch that failed entirely
        (Stage((0,), ("p",), (), max_fail_percentage=0), 5, 1, False, True),
        (Stage((0,), ("p",), (), max_fail_percentage=20), 5, 1, False, False),  # 20% is not above 20
        (Stage((0,), ("p",), (), max_fail_percentage=20), 5, 2, False, True),
        (Stage((0,), ("p",), (), any_errors_fatal=True), 5, 1, False, True),
        (Stage((0,), ("p",), ()), 5, 1, True, True),  # a task with any_errors_fatal failed
        (Stage((0,), ("p",), (), any_errors_fatal=True), 5, 0, False, False),
    ],
)
def test_stop_reason(stage: Stage, ran: int, failed: int, fatal: bool, stops: bool) -> None:
    names = HOSTS[:ran]
    assert (stop_reason(stage, names, names[:failed], fatal) is not None) is stops


def parse(doc: dict[str, Any]) -> Any:
    return parse_plan(json.dumps(doc).encode(), source="plan.json", base_dir=".")


def one_play(**extra: Any) -> dict[str, Any]:
    return pm.plan([pm.play("play-0", "web", HOSTS[:4], pm.stamp_tasks("play-0"), **extra)], HOSTS[:4])


def test_play_keywords_are_read() -> None:
    play = parse(one_play(serial=[1, "5", "20%"], max_fail_percentage="25%", any_errors_fatal=True,
                          order="reverse_sorted")).plays[0]
    assert play.serial == (1, 5, "20%")
    assert (play.max_fail_percentage, play.any_errors_fatal, play.order) == (25.0, True, "reverse_sorted")
    assert parse(one_play(serial="30%")).plays[0].serial == ("30%",)
    assert parse(one_play(serial=None)).plays[0].serial is None


@pytest.mark.parametrize(
    ("extra", "pointer", "needle"),
    [
        ({"serial": -1}, "/plays/0/serial", "a host count or a percentage"),
        ({"serial": []}, "/plays/0/serial", "empty list"),
        ({"serial": [1, "x%"]}, "/plays/0/serial/1", "a host count or a percentage"),
        ({"serial": True}, "/plays/0/serial", "a host count"),
        ({"max_fail_percentage": 101}, "/plays/0/max_fail_percentage", "0 to 100"),
        ({"max_fail_percentage": "lots"}, "/plays/0/max_fail_percentage", "0 to 100"),
        ({"any_errors_fatal": "yes"}, "/plays/0/any_errors_fatal", "a boolean"),
        ({"order": "random"}, "/plays/0/order", "inventory, reverse_inventory, sorted"),
    ],
)
def test_bad_play_keywords_name_the_pointer(extra: dict[str, Any], pointer: str, needle: str) -> None:
    with pytest.raises(PlanError) as err:
        parse(one_play(**extra))
    assert err.value.pointer == pointer
    assert needle in str(err.value)


def test_throttle_is_refused_and_zero_accepted() -> None:
    doc = one_play()
    doc["plays"][0]["batches"][0]["tasks"][1]["throttle"] = 2
    with pytest.raises(PlanError) as err:
        parse(doc)
    assert err.value.pointer == "/plays/0/batches/0/tasks/1/throttle"
    assert "serial" in str(err.value)
    doc["plays"][0]["batches"][0]["tasks"][1]["throttle"] = 0  # Ansible's "no limit"
    parse(doc)


def test_play_specs_take_rolling_batch_size_and_plan_serial() -> None:
    hosts = HOSTS[:10]
    rolling = pm.rolling_play("play-0", "roll", hosts, pm.stamp_tasks("play-0"), 3)
    plain = pm.play("play-1", "after", hosts, pm.stamp_tasks("play-1"))
    doc = pm.plan([rolling, plain], hosts, strategy={"Rolling": {"batch_size": 3}})
    doc["plays"][0]["batches"][0]["tasks"][2]["any_errors_fatal"] = True
    plan = parse(doc)

    def resolve(names: Any) -> list[Host]:
        return [Host(n, {}) for n in names]

    first, second = play_specs(plan, resolve)
    assert first.serial == (3,) and first.fatal_tasks == ("play-0/task_2",)
    assert second.serial is None  # its strategy is the play's own BinaryHybrid
    s = schedule([first, second], hosts)
    assert [sizes(list(st.batches)) for st in s.stages] == [[3, 3, 3, 1], [10]]
    doc["metadata"]["planning_options"]["serial"] = 4
    doc["plays"][1]["strategy"] = "Linear"
    _, second = play_specs(parse(doc), resolve)
    assert second.serial == (4,)  # the plan's serial is every play's default


def test_canaries_run_every_stage_first_then_the_rest_is_cut_again() -> None:
    s = schedule([spec(0, serial=(3,)), spec(1), spec(2, serial=("25%",))], HOSTS[:8])
    c = with_canary(s, canary_count("25%", 8))
    assert [(st.plays, st.canary, [list(b) for b in st.batches]) for st in c.stages] == [
        ((0,), True, [HOSTS[:2]]),
        ((1,), True, [HOSTS[:2]]),
        ((2,), True, [HOSTS[:2]]),
        ((0,), False, [HOSTS[2:5], HOSTS[5:8]]),
        ((1,), False, [HOSTS[2:8]]),
        ((2,), False, [HOSTS[2:4], HOSTS[4:6], HOSTS[6:8]]),  # 25% of the play's 8 hosts
    ]
    assert all(st.any_errors_fatal for st in c.stages if st.canary)
    assert canary_count("1", 8) == 1 and canary_count("10%", 8) == 1 and canary_count("50", 8) == 8
