"""Cutting plays into phases (phases.py) and scheduling them (rollout.py); docs/phases.md."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from rustle_deploy.errors import PlanError
from rustle_deploy.model import Host
from rustle_deploy.phases import (
    HANDLER,
    HANDLER_LOCAL,
    HOSTS,
    INVENTORY,
    LOCAL,
    ONCE,
    ONCE_LOCAL,
    PLAY_HOSTS,
    REFRESH,
    file_read,
    off_host_tasks,
    plan_phases,
    play_phases,
    refusals,
)
from rustle_deploy.plan import parse_plan
from rustle_deploy.plan.validate import check_hosts, validate
from rustle_deploy.rollout import PlaySpec, Schedule, play_specs, schedule

from .. import planmaker as pm

NAMES = [f"h{i}" for i in range(4)]


def plan_of(tasks: list[dict[str, Any]], handlers: list[dict[str, Any]] | None = None,
            names: list[str] = NAMES) -> Any:
    play = pm.play("play-0", "web", names, lambda hosts: tasks)
    play["handlers"] = handlers or []
    return parse_plan(json.dumps(pm.plan([play], names)).encode(), source="plan.json", base_dir=".")


def t(i: int, **kw: Any) -> dict[str, Any]:
    return pm.task(f"t{i}", f"task {i}", "debug", {"msg": str(i)}, [], i, **kw)


def notifier(i: int, *handlers: int, **kw: Any) -> dict[str, Any]:
    """Task ``i``, notifying handlers ``t{n}`` (a handler nothing notifies gets no phase)."""
    return t(i, notify=[f"task {n}" for n in handlers], **kw)


FLUSH = pm.task("f", "flush", "meta", {"_raw_params": "flush_handlers"}, [], 0)


def test_cut_points_make_phases_and_alike_neighbours_share_one() -> None:
    plan = plan_of([t(0), t(1, run_once=True), t(2, run_once=True), t(3), t(4, delegate_to="localhost"),
                    t(5, delegate_to="localhost", run_once=True), t(6, run_once=False)])
    phases = play_phases(plan.play_tasks(plan.plays[0]))
    assert phases.kinds == (HOSTS, ONCE, HOSTS, LOCAL, ONCE_LOCAL, HOSTS)
    assert [phases.of[f"t{i}"] for i in range(7)] == [0, 1, 1, 2, 3, 4, 5]
    plain = plan_of([t(0), t(1, delegate_to="{{ inventory_hostname }}")])
    assert not play_phases(plain.play_tasks(plain.plays[0])).cut


def test_tasks_delegated_to_another_host_are_phases_run_over_its_connection() -> None:
    plan = plan_of([t(0), t(1, delegate_to="db1"), t(2, delegate_to="db1"), t(3, delegate_to="db2"),
                    t(4, delegate_to="db2", run_once=True), t(5, delegate_to="localhost"), t(6)])
    phases = play_phases(plan.play_tasks(plan.plays[0]))
    assert phases.kinds == (HOSTS, f"{LOCAL}>db1", f"{LOCAL}>db2", f"{ONCE_LOCAL}>db2", LOCAL, HOSTS)
    assert [phases.of[f"t{i}"] for i in range(7)] == [0, 1, 1, 2, 3, 4, 5]
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    stages = schedule([spec], NAMES).stages
    assert [(st.local, st.once, st.delegate, st.feeds) for st in stages] == [
        (False, False, None, True), (True, False, "db1", False), (True, False, "db2", False),
        (True, True, "db2", False), (True, False, None, False), (False, False, None, False)]
    assert "on db2" in stages[3].label and "run_once" in stages[3].label
    assert Schedule.from_json(json.loads(json.dumps(Schedule(stages).to_json()))) == Schedule(stages)


def test_a_host_each_call_names_is_a_local_phase_run_by_ansible_core_on_the_controller() -> None:
    """``delegate_to: "{{ item }}"`` (or a name over the host's data): consecutive such tasks
    share one local phase; the plan validates where ansible-core is installed."""
    plan = plan_of([t(0), t(1, delegate_to="{{ item }}", loop=["db1", "db2"]), t(2, delegate_to="{{ lb }}"),
                    t(3, delegate_to="{{ item }}", loop=["db1"], run_once=True), t(4),
                    t(5, delegate_to="jump.example", delegate_implicit=True)])
    validate(plan)
    check_hosts(plan, lambda names: set(names) - {"jump.example"})  # an implicit host: not looked for
    phases = play_phases(plan.play_tasks(plan.plays[0]))
    assert phases.kinds == (HOSTS, LOCAL, ONCE_LOCAL, HOSTS, LOCAL)
    assert [phases.of[f"t{i}"] for i in range(6)] == [0, 1, 1, 2, 3, 4]


def test_a_play_without_cut_points_is_one_stage_and_one_host_needs_no_phases() -> None:
    plan = plan_of([t(0), t(1, run_once=True), t(2)])
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert spec.phases == (HOSTS, ONCE, HOSTS)
    one = schedule([spec], NAMES[:1])
    assert len(one.stages) == 1 and one.stages[0].phase is None
    plain = schedule([PlaySpec(index=0, name="p", hosts=tuple(NAMES))], NAMES)
    assert not plain.staged


def test_each_batch_runs_every_phase_before_the_next_batch() -> None:
    spec = PlaySpec(index=0, name="p", hosts=tuple(NAMES), serial=(2,), phases=(HOSTS, ONCE, HOSTS, LOCAL))
    s = schedule([spec], NAMES)
    assert [(st.batches, st.phase, st.once, st.local, st.feeds) for st in s.stages] == [
        ((("h0", "h1"),), 0, False, False, True), ((("h0", "h1"),), 1, True, False, True),
        ((("h0", "h1"),), 2, False, False, True), ((("h0", "h1"),), 3, False, True, False),
        ((("h2", "h3"),), 0, False, False, True), ((("h2", "h3"),), 1, True, False, True),
        ((("h2", "h3"),), 2, False, False, True), ((("h2", "h3"),), 3, False, True, False),
    ]
    assert "phase 2/4 (run_once)" in s.stages[1].label and "on the controller" in s.stages[3].label
    assert Schedule.from_json(json.loads(json.dumps(s.to_json()))) == s
    assert PlaySpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@pytest.mark.parametrize(
    ("tasks", "handlers", "pointer", "needle"),
    [
        ([{**t(0, loop=[1, 2]), "module": "", "args": {}, "block": [t(1), t(2, run_once=True)], "rescue": [t(3)]}], [],
         "/plays/0/batches/0/tasks/0/block/1/run_once", "inside 'task 0' (a loop over it whose items, or whose condition for each host and item, the controller cannot know"),
        ([notifier(0, 9), {**t(1), "module": "", "args": {}, "block": [FLUSH]}], [t(9, run_once=True)],
         "/plays/0/batches/0/tasks/1/block/0/module", "meta: flush_handlers inside 'task 1'"),
        ([t(0)], [t(9, delegate_to="localhost", run_once=True, connection_vars={"h0": {"ansible_port": 2}})],
         "/plays/0/handlers/0/delegate_to", "delegate_to on handler"),
        ([t(0)], [t(9, delegate_to="db1", throttle=2)], "/plays/0/handlers/0/delegate_to", "delegate_to on handler"),
        ([{**t(0, include="include_tasks"), "module": "", "args": {}, "block": [t(1), t(2, run_once=True)],
           "include_choice": {"name": "{{ f }}", "select": {}, "found": {}}}], [],
         "/plays/0/batches/0/tasks/0/block/1/run_once", "an include whose file is chosen when it runs"),
    ],
    ids=["mixed-looped-block", "flush-in-block", "handler-over-another-connection", "handler-to-host-throttled",
         "mixed-chosen-include"],
)
def test_what_cannot_be_cut_is_refused_at_its_pointer(tasks: list[dict[str, Any]], handlers: list[dict[str, Any]],
                                                      pointer: str, needle: str) -> None:
    with pytest.raises(PlanError) as err:
        validate(plan_of(tasks, handlers))
    assert err.value.pointer == pointer and needle in err.value.message and err.value.hint


def test_force_handlers_runs_a_failed_hosts_handlers_in_the_phases_of_its_sections_end() -> None:
    """force_handlers with a run_once and a delegated handler (docs/phases.md "force_handlers"):
    a host that fails a task runs what it notified at its section's end (the implicit flush after
    pre_tasks or roles + tasks, or the play's end), skipping an explicit flush after the failure:
    each phase holding tasks names those handler phases, and each of them the phases whose failed
    hosts join it."""
    flush = {**FLUSH, "task_id": "f1", "execution_order": 1}
    implicit = {**FLUSH, "task_id": "f2", "execution_order": 3, "implicit_flush": True}
    plan = plan_of([notifier(0, 5, 6, 7), flush, t(2), implicit, notifier(4, 5, 6, 7)],
                   [t(5), t(6, run_once=True), t(7, delegate_to="localhost")])
    plan = replace(plan, plays=(replace(plan.plays[0], force_handlers=True),))
    validate(plan)  # no longer refused
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, f"{HANDLER}#1", LOCAL, HOSTS, f"{HANDLER}#1", LOCAL, HOSTS, f"{HANDLER}#1", LOCAL)
    assert [phases.of[i] for i in ("t0", "f1", "t2", "f2", "t4")] == [0, 0, 3, 3, 6]
    # a failure in phase 0 (before the explicit flush) or 3: the implicit flush's phases (its plain
    # handler in phase 3 itself); in phase 6: the play's end
    assert phases.forced == {0: (3, 4, 5), 3: (3, 4, 5), 6: (6, 7, 8)}
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    stages = schedule([spec], NAMES).stages
    assert [st.forced for st in stages] == [(), (), (), (0,), (0, 3), (0, 3), (), (6,), (6,)]
    assert Schedule.from_json(json.loads(json.dumps(Schedule(stages).to_json()))) == Schedule(stages)
    assert PlaySpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    # without force_handlers the stages name no failed hosts' phases
    plain = replace(plan, plays=(replace(plan.plays[0], force_handlers=False),))
    spec = play_specs(plain, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert all(not st.forced for st in schedule([spec], NAMES).stages)

    # plain handlers in a play cut into phases: the section's end is the phase of its implicit
    # flush (or the play's last one), when every host runs it (not a run_once phase)
    implicit = {**FLUSH, "task_id": "f2", "execution_order": 2, "implicit_flush": True}
    plan = plan_of([notifier(0, 5), t(1, run_once=True), implicit, t(3)], [t(5)])
    plan = replace(plan, plays=(replace(plan.plays[0], force_handlers=True),))
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, ONCE, HOSTS) and phases.forced == {0: (2,), 1: (2,), 2: (2,)}
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert [st.forced for st in schedule([spec], NAMES).stages] == [(), (), (0, 1)]
    last_once = plan_of([notifier(0, 5), t(1, run_once=True)], [t(5)])
    assert plan_phases(last_once)[0].forced == {0: (), 1: ()}  # a failed host runs them when it fails


def test_run_once_in_a_mixed_block_or_on_a_handler_is_not_refused_in_a_play_of_one_host() -> None:
    # a play of one host runs whole (no phases): run_once changes nothing there
    mixed = {**t(0), "module": "", "args": {}, "block": [t(1), t(2, run_once=True)], "rescue": [t(3)]}
    validate(plan_of([mixed], [t(9, run_once=True)], names=NAMES[:1]))
    # what would still cut the play of one host is refused as before
    with pytest.raises(PlanError) as err:
        validate(plan_of([t(0)], [t(9, delegate_to="db1", throttle=2)], names=NAMES[:1]))
    assert err.value.pointer == "/plays/0/handlers/0/delegate_to"


def test_a_run_once_handler_is_a_phase_of_its_own_run_by_the_first_host_it_notified() -> None:
    """The handlers of a play with a run_once handler run in phases after its tasks: the
    handlers before it in the play's last phase, it alone, the ones after it in one more."""
    plan = plan_of([notifier(0, 5, 6, 7, 8), t(1, run_once=True)],
                   [t(5), t(6, run_once=True), t(7, run_once=True), t(8)])
    validate(plan)
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, ONCE, HOSTS, f"{HANDLER}#1", f"{HANDLER}#2", HOSTS)
    assert [phases.of[f"t{i}"] for i in (0, 1, 5, 6, 7, 8)] == [0, 1, 2, 3, 4, 5]
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    stages = schedule([spec], NAMES).stages
    # every host phase before a run_once handler's sends the hosts' state back: the controller
    # reads there which host notified it first
    assert [(st.once, st.handler, st.feeds) for st in stages] == [
        (False, None, True), (True, None, True), (False, None, True), (True, 1, True), (True, 2, False),
        (False, None, False)]
    assert "run_once handler" in stages[3].label
    assert Schedule.from_json(json.loads(json.dumps(Schedule(stages).to_json()))) == Schedule(stages)
    # without a run_once handler, handlers get no phase; a play of one host runs whole
    plain = plan_of([notifier(0, 5), t(1, run_once=True)], [t(5)])
    assert plan_phases(plain)[0].kinds == (HOSTS, ONCE) and "t5" not in plan_phases(plain)[0].of
    assert [st.phase for st in schedule([spec], NAMES[:1]).stages] == [None]


def test_a_flush_runs_the_handlers_in_their_phases_and_the_next_task_starts_one() -> None:
    """meta: flush_handlers in a play with a run_once or delegated handler ends its phase; the
    handlers get their phases after it (the plain ones before the first such handler in the
    flush's own phase) and again at the end of the play; the task after it starts a phase."""
    flush = {**FLUSH, "task_id": "f1", "execution_order": 1}
    plan = plan_of([notifier(0, 5, 6, 7, 8), flush, t(2), t(3)],
                   [t(5), t(6, run_once=True), t(7, delegate_to="localhost"), t(8)])
    validate(plan)
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, f"{HANDLER}#1", LOCAL, HOSTS, HOSTS, f"{HANDLER}#1", LOCAL, HOSTS)
    assert [phases.of[i] for i in ("t0", "f1", "t2", "t3")] == [0, 0, 4, 4]
    assert phases.handlers == {"t5": (0, 4), "t6": (1, 5), "t7": (2, 6), "t8": (3, 7)}
    assert [phases.of[f"t{i}"] for i in (5, 6, 7, 8)] == [4, 5, 6, 7]
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    stages = schedule([spec], NAMES).stages
    assert [(st.handler, st.local) for st in stages] == [
        (None, False), (1, False), (None, True), (None, False), (None, False), (1, False), (None, True),
        (None, False)]
    # without such a handler a flush is a task like any other
    plain = plan_of([notifier(0, 5), flush, t(2)], [t(5)])
    assert plan_phases(plain)[0].kinds == (HOSTS,) and plan_phases(plain)[0].handlers == {}


def test_a_run_once_delegated_handler_runs_once_there_and_a_per_call_one_for_each_host() -> None:
    plan = plan_of([notifier(0, 5, 6, 7)], [t(5, delegate_to="{{ peer }}"), t(6, delegate_to="db1", run_once=True),
                            t(7, delegate_to="localhost", run_once=True)])
    validate(plan)
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, LOCAL, f"{HANDLER_LOCAL}#1>db1", f"{HANDLER_LOCAL}#2")
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    for hosts in (NAMES, NAMES[:1]):  # a play of one host is cut there too
        stages = schedule([spec], hosts).stages
        assert [(st.local, st.once, st.delegate, st.handler) for st in stages] == [
            (False, False, None, None), (True, False, None, None), (True, True, "db1", 1), (True, True, None, 2)]
    assert off_host_tasks(plan) == [f"'task {i}' (play 'web')" for i in (5, 6, 7)]


def test_a_delegated_handler_is_a_phase_run_there_for_each_host() -> None:
    plan = plan_of([notifier(0, 5, 6, 7, 8, 9)], [t(5), t(6, delegate_to="localhost"), t(7, delegate_to="localhost"),
                            t(8, delegate_to="db1"), t(9)])
    validate(plan)
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, LOCAL, f"{LOCAL}>db1", HOSTS)
    assert [phases.of[f"t{i}"] for i in range(5, 10)] == [0, 1, 1, 2, 3]
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    # rustle-exec names it among what it cannot run
    assert off_host_tasks(plan) == ["'task 6' (play 'web')", "'task 7' (play 'web')", "'task 8' (play 'web')"]
    # a play of one host is still cut there: the handler runs on the controller, not on the host
    for hosts in (NAMES, NAMES[:1]):
        stages = schedule([spec], hosts).stages
        assert [(st.local, st.delegate, st.feeds) for st in stages] == [
            (False, None, True), (True, None, False), (True, "db1", False), (False, None, False)]
    # a delegated task in a play of one host too
    one = plan_of([t(0), t(1, delegate_to="localhost")], names=NAMES[:1])
    spec = play_specs(one, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert [st.local for st in schedule([spec], NAMES[:1]).stages] == [False, True]


def test_a_handler_nothing_notifies_gets_no_phase() -> None:
    """A notify is never rendered on the host, so a handler that no notify of the play names
    (by name, ROLE : NAME or listen topic; directly or through a handler that runs) never runs:
    it gets no phase. The plain handler before a delegated one made an empty host phase, one
    more round trip (include_import runme line 31: role3's handler before the delegated one)."""
    delegated = t(6, delegate_to="localhost")
    plan = plan_of([t(0), notifier(1, 6, delegate_to="localhost")], [t(5), delegated])
    validate(plan)
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, LOCAL) and phases.handlers == {"t6": (1,)}
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert [st.local for st in schedule([spec], NAMES[:1]).stages] == [False, True]
    # notified, the plain handler needs its host phase between the two
    plan = plan_of([t(0), notifier(1, 5, 6, delegate_to="localhost")], [t(5), delegated])
    assert plan_phases(plan)[0].kinds == (HOSTS, LOCAL, HOSTS, LOCAL)
    # a handler notified by a handler that runs, or by a listen topic, runs
    chain = plan_of([notifier(0, 5)], [notifier(5, 6), delegated])
    assert plan_phases(chain)[0].handlers == {"t5": (0,), "t6": (1,)}
    topics = plan_of([t(0, notify=["topic"])], [t(5), {**delegated, "listen": "topic"}])
    assert plan_phases(topics)[0].handlers == {"t6": (1,)}
    # a run_once handler's phase names its index among all the play's handlers (the hosts'
    # notifications do), those before it notified or not
    once = plan_of([notifier(0, 6)], [t(5), t(6, run_once=True)])
    assert plan_phases(once)[0].kinds == (HOSTS, f"{HANDLER}#1")
    spec = play_specs(once, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert [st.handler for st in schedule([spec], NAMES).stages] == [None, 1]
    # nor is force_handlers refused for a run_once or delegated handler that never runs
    quiet = plan_of([t(0)], [t(9, run_once=True), t(8, delegate_to="localhost")])
    validate(replace(quiet, plays=(replace(quiet.plays[0], force_handlers=True),)))
    assert plan_phases(quiet)[0].kinds == (HOSTS,)


def test_a_task_that_may_fail_with_any_errors_fatal_ends_its_phase() -> None:
    # the play's any_errors_fatal (a plan's play keyword) or the task's own; ignore_errors and
    # failed_when: false cannot stop the hosts, so the task after them shares their phase
    tasks = [t(0), t(1, ignore_errors=True), t(2, failed_when="false"), t(3), t(4)]
    play = pm.play("play-0", "web", NAMES, lambda hosts: tasks, any_errors_fatal=True)
    plan = parse_plan(json.dumps(pm.plan([play], NAMES)).encode(), source="plan.json", base_dir=".")
    assert plan_phases(plan)[0].kinds == (HOSTS,) * 3
    assert [plan_phases(plan)[0].of[f"t{i}"] for i in range(5)] == [0, 1, 1, 1, 2]
    own = plan_of([t(0), t(1, any_errors_fatal=True), t(2), t(3)])
    assert [plan_phases(own)[0].of[f"t{i}"] for i in range(4)] == [0, 0, 1, 1]
    spec = play_specs(own, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert [st.phase for st in schedule([spec], NAMES).stages] == [0, 1]
    assert [st.phase for st in schedule([spec], NAMES[:1]).stages] == [None]  # one host: no lockstep
    # a play of one host cut for a delegated task adds no lockstep cut either
    alone = plan_of([t(0, any_errors_fatal=True), t(1, delegate_to="localhost"), t(2, any_errors_fatal=True), t(3)],
                    names=NAMES[:1])
    assert plan_phases(alone)[0].kinds == (HOSTS, LOCAL, HOSTS)
    # a notify of a handler the play lacks errors the whole run when it fires (unless the
    # task never reports changed): the hosts stop together after it as well
    missing = plan_of([t(0, notify_missing=["nobody"]), t(1), t(2, notify_missing=["x"], changed_when="false"), t(3)])
    assert [plan_phases(missing)[0].of[f"t{i}"] for i in range(4)] == [0, 1, 1, 1]


def test_whole_blocks_of_one_kind_are_cut_points() -> None:
    block = {**t(1), "module": "", "args": {}, "block": [t(2, run_once=True)], "rescue": [t(3, run_once=True)]}
    plan = plan_of([t(0), block, t(4)])
    validate(plan)
    assert play_phases(plan.play_tasks(plan.plays[0])).kinds == (HOSTS, ONCE, HOSTS)


def test_a_block_whose_tasks_run_differently_is_cut_inside_its_tasks_each_in_its_phase() -> None:
    """docs/phases.md "Blocks cut into phases": the phases follow the block's tasks in
    Ansible's lock-step order (its block, then its rescue, then its always); the block has its
    first and last phase; a run_once phase holds tasks of one block section only."""
    inner = {**t(2), "module": "", "args": {}, "block": [t(3), t(4, run_once=True)], "rescue": [t(5)]}
    outer = {**t(1), "module": "", "args": {}, "block": [inner, t(6, run_once=True)], "always": [t(7)]}
    plan = plan_of([t(0), outer, t(8)])
    validate(plan)
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, ONCE, HOSTS, ONCE, HOSTS)
    assert [phases.of[f"t{i}"] for i in range(9)] == [0, 0, 0, 0, 1, 2, 3, 4, 4]
    assert phases.last == {"t1": 4, "t2": 2}
    # a play of one host is not cut: the block runs whole
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    assert [st.phase for st in schedule([spec], NAMES[:1]).stages] == [None]
    assert [(st.phase, st.once) for st in schedule([spec], NAMES).stages][:2] == [(0, False), (1, True)]
    # any_errors_fatal inside a block with rescue: a phase ends after each task that may fail
    fatal = {**t(1), "module": "", "args": {}, "block": [t(2, any_errors_fatal=True), t(3)], "rescue": [t(4)]}
    cut = plan_phases(plan_of([t(0), fatal, t(5)]))[0]
    assert [cut.of[f"t{i}"] for i in range(6)] == [0, 0, 0, 1, 1, 1] and cut.last == {"t1": 1}
    # a notify of a handler the play lacks, inside a block: the run errors right after that task
    errs = {**t(1), "module": "", "args": {}, "block": [t(2, notify_missing=["nobody"]), t(3)]}
    cut = plan_phases(plan_of([t(0), errs, t(4)]))[0]
    assert [cut.of[f"t{i}"] for i in range(5)] == [0, 0, 0, 1, 1]


def test_reading_the_plays_live_hosts_after_a_task_that_may_fail_starts_a_phase() -> None:
    """ansible_play_hosts / ansible_play_batch / play_hosts leave out the hosts that failed:
    a task reading them after a task that may fail starts a phase (the controller sends the
    failed hosts in); not after ignore_errors on a task that does not reach the host (one that
    does may find it unreachable all the same), not ansible_play_hosts_all, not for one host."""
    def reads(i: int, name: str, **kw: Any) -> dict[str, Any]:
        return pm.task(f"t{i}", f"task {i}", "debug", {"msg": "{{ " + name + " }}"}, [], i, **kw)

    def command(i: int, **kw: Any) -> dict[str, Any]:
        return pm.task(f"t{i}", f"task {i}", "command", {"_raw_params": "true"}, [], i, **kw)

    ignored = pm.task("t1", "task 1", "assert", {"that": ["false"]}, [], 1, ignore_errors=True)
    plan = plan_of([reads(0, "ansible_play_hosts"), ignored, reads(2, "ansible_play_hosts_all"),
                    reads(3, "play_hosts | length"), command(4), reads(5, "ansible_play_batch"),
                    reads(6, "ansible_play_hosts")])
    phases = plan_phases(plan)[0]
    assert [phases.of[f"t{i}"] for i in range(7)] == [0, 0, 0, 0, 0, 1, 1]
    assert phases.reads == {1: (PLAY_HOSTS,)}
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    # the failed hosts are the controller's: the phase before sends no state back for them
    assert [(st.phase, st.feeds, st.reads) for st in schedule([spec], NAMES).stages] == [
        (0, False, ()), (1, False, (PLAY_HOSTS,))]
    assert not plan_phases(plan_of([reads(0, "x"), command(1), reads(2, "ansible_play_hosts")],
                                   names=NAMES[:1]))[0].reads
    for kw in ({"ignore_errors": True}, {"failed_when": "false"}):  # unreachable all the same
        assert plan_phases(plan_of([command(0, **kw), reads(1, "ansible_play_hosts")]))[0].of["t1"] == 1, kw


def test_a_template_whose_file_reads_the_plays_live_hosts_starts_a_phase_after_a_task_that_may_fail(
        tmp_path: Any) -> None:
    (tmp_path / "hosts.j2").write_text("{% for h in ansible_play_hosts %}{{ h }}\n{% endfor %}")
    (tmp_path / "all.j2").write_text("{{ ansible_play_hosts_all | join(',') }}\n")

    def template(i: int, name: str) -> dict[str, Any]:
        return pm.task(f"t{i}", f"task {i}", "template", {"src": str(tmp_path / name), "dest": "/tmp/x"}, [], i)

    command = pm.task("t0", "may fail", "command", {"_raw_params": "true"}, [], 0)
    play = pm.play("play-0", "web", NAMES, lambda hosts: [command, template(1, "all.j2"), template(2, "hosts.j2")])
    plan = parse_plan(json.dumps(pm.plan([play], NAMES)).encode(), source=str(tmp_path / "plan.json"),
                      base_dir=str(tmp_path))
    phases = plan_phases(plan)[0]
    assert [phases.of[f"t{i}"] for i in range(3)] == [0, 0, 1]
    assert phases.reads == {1: (PLAY_HOSTS,)}


def test_handlers_reading_the_plays_live_hosts_run_in_a_phase_of_their_own_after_a_task_that_may_fail() -> None:
    handler = pm.task("h0", "reads", "debug", {"msg": "{{ ansible_play_hosts }}"}, [], 0)
    command = pm.task("t1", "may fail", "command", {"_raw_params": "true"}, [], 1, notify=["reads"])
    phases = plan_phases(plan_of([t(0), command], [handler]))[0]
    assert (phases.kinds, phases.reads) == ((HOSTS, HOSTS), {1: (PLAY_HOSTS,)})
    # the tasks' last phase already started after the task that may fail: it reads them
    reader = pm.task("t2", "reads", "debug", {"msg": "{{ play_hosts }}"}, [], 2)
    phases = plan_phases(plan_of([command, reader], [handler]))[0]
    assert (phases.kinds, phases.reads) == ((HOSTS, HOSTS), {1: (PLAY_HOSTS,)})
    assert plan_phases(plan_of([t(0)], [handler]))[0].kinds == (HOSTS,)  # nothing may fail
    assert plan_phases(plan_of([command], [handler], names=NAMES[:1]))[0].kinds == (HOSTS,)  # one host


def test_an_include_of_a_file_known_here_is_cut_inside_as_a_block_with_or_without_a_condition() -> None:
    include = {**t(0, include="include_tasks"), "module": "", "args": {},
               "block": [t(1), t(2, run_once=True), t(3)]}
    # its condition is decided in its first phase (the runtime's includes_ran keeps what it decided)
    for cond in ({}, {"conditions": [{"When": {"expression": "x is defined"}}]}):
        plan = plan_of([{**include, **cond}])
        validate(plan)
        phases = plan_phases(plan)[0]
        assert phases.kinds == (HOSTS, ONCE, HOSTS)
        assert [phases.of[f"t{i}"] for i in range(4)] == [0, 0, 1, 2] and phases.last == {"t0": 2}
    # a loop over it, or a file a host's data names: still one unit, refused when mixed
    for extra in ({"loop": [1, 2]}, {"include_choice": {"name": "{{ f }}", "select": {}, "found": {}}}):
        with pytest.raises(PlanError, match="do not all run the same way"):
            validate(plan_of([{**include, **extra}]))


def test_a_loop_over_an_include_unrolled_per_item_is_cut_inside_each_item() -> None:
    """The playbook compiler writes a loop over an include_tasks over items it knows as one
    include per item (the loop's own carries ``include_items``): each is cut as an include."""
    def item(i: int, first: int, **extra: object) -> dict[str, object]:
        return {**t(i, include="include_tasks", **extra), "module": "", "args": {},
                "block": [t(first), t(first + 1, delegate_to="localhost"), t(first + 2)]}

    plan = plan_of([item(0, 10, loop=[1, 2], include_items=["t1"]), item(1, 20, include_item="t0")])
    validate(plan)
    phases = plan_phases(plan)[0]
    assert phases.kinds == (HOSTS, LOCAL, HOSTS, LOCAL, HOSTS)
    assert [phases.of[f"t{i}"] for i in (0, 10, 11, 12, 1, 20, 21, 22)] == [0, 0, 1, 2, 2, 2, 3, 4]
    assert phases.last == {"t0": 2, "t1": 4}


def test_refresh_inventory_ends_its_phase_and_the_next_reads_the_inventory_again_even_for_one_host() -> None:
    """The controller reads the inventory again when the phase after meta: refresh_inventory
    starts (docs/phases.md); a play of one host is cut there too, a refresh ending the play is not."""
    refresh = pm.task("r", "refresh", "meta", {"_raw_params": "refresh_inventory"}, [], 1)
    plan = plan_of([t(0), refresh, t(2), t(3)])
    phases = plan_phases(plan)[0]
    assert (phases.kinds, [phases.of[i] for i in ("t0", "r", "t2", "t3")]) == ((HOSTS, HOSTS), [0, 0, 1, 1])
    assert phases.reads == {1: (REFRESH,)}
    one = plan_of([t(0), refresh, t(2)], names=NAMES[:1])
    spec = play_specs(one, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    # the re-read is the controller's: the phase before sends no state back for it
    assert [(st.phase, st.feeds, st.reads) for st in schedule([spec], NAMES[:1]).stages] == [
        (0, False, ()), (1, False, (REFRESH,))]
    assert plan_phases(plan_of([t(0), refresh]))[0].kinds == (HOSTS,)


def test_reading_another_hosts_runtime_values_starts_a_phase_when_they_were_set_in_it() -> None:
    reads = "{{ hostvars['h1'].r.stdout }} {{ hostvars.h2.ansible_system }} {{ hostvars['h1']['ansible_host'] }}"
    plan = plan_of([t(0, register="r"), pm.task("t1", "use", "debug", {"msg": reads}, [], 1),
                    pm.task("t2", "again", "debug", {"msg": "{{ hostvars['h0'].r.rc }}"}, [], 2),
                    pm.task("t3", "setup", "setup", {}, [], 3),
                    pm.task("t4", "facts", "debug", {"msg": "{{ hostvars['h0']['ansible_facts'] }}"}, [], 4)])
    phases = play_phases(plan.play_tasks(plan.plays[0]))
    assert phases.kinds == (HOSTS, HOSTS, HOSTS) and phases.cut
    assert [phases.of[f"t{i}"] for i in range(5)] == [0, 1, 1, 1, 2]
    # ansible_host is an inventory variable: it is never sent in
    assert phases.reads == {1: ("ansible_system", "r"), 2: ("ansible_facts",)}
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    stages = schedule([spec], NAMES).stages
    assert [(st.reads, st.feeds) for st in stages] == [((), True), (("ansible_system", "r"), True),
                                                       (("ansible_facts",), False)]


def test_a_play_of_only_cross_host_tasks_is_still_cut() -> None:
    for extra in ({"run_once": True}, {"delegate_to": "localhost"}, {"throttle": 2}):
        plan = plan_of([t(0, **extra), t(1, **extra)])
        assert play_phases(plan.play_tasks(plan.plays[0])).cut, extra


def test_a_play_reading_what_an_earlier_play_set_is_a_stage_that_the_earlier_ones_feed() -> None:
    first = pm.play("play-0", "set", NAMES, lambda hosts: [t(0, register="mine")])
    second = pm.play("play-1", "plain", NAMES, lambda hosts: [t(1)])
    read = pm.task("t2", "read", "debug", {"msg": "{{ hostvars['h1'].mine.rc }}"}, [], 2)
    third = pm.play("play-2", "read", NAMES, lambda hosts: [read])
    alone = pm.play("play-3", "alone", NAMES[:1], lambda hosts: [dict(read, task_id="t3")])
    plan = parse_plan(json.dumps(pm.plan([first, second, third, alone], NAMES)).encode(),
                      source="plan.json", base_dir=".")
    cuts = plan_phases(plan)
    assert [c.cut for c in cuts] == [False, False, True, True]
    assert cuts[2].kinds == (HOSTS,) and cuts[2].reads == {0: ("mine",)}
    specs = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])
    s = schedule(specs, NAMES)
    # [plays 0-1, sending each host's state back] [play 2, sent the others' values] [play 3,
    # one host: no phases, still sent them]
    assert [(st.plays, st.phase, st.feeds, st.reads) for st in s.stages] == [
        ((0, 1), None, True, ()), ((2,), 0, True, ("mine",)), ((3,), None, False, ("mine",))]
    # registered results only: the hosts send their state as it is, gathering no facts
    assert not any(st.facts for st in s.stages)
    facts = replace(specs[2], reads=(("ansible_system",),))
    assert [st.facts for st in schedule([specs[0], specs[1], facts], NAMES).stages] == [True, False]
    # without a read of it, nothing is sent back
    assert not any(st.feeds for st in schedule(specs[:2], NAMES).stages)


def test_group_by_cuts_the_play_before_the_tasks_that_see_every_hosts_groups() -> None:
    plan = plan_of([t(0), pm.task("t1", "group", "group_by", {"key": "k"}, [], 1), t(2), t(3)])
    phases = play_phases(plan.play_tasks(plan.plays[0]))
    assert phases.kinds == (HOSTS, HOSTS) and [phases.of[f"t{i}"] for i in range(4)] == [0, 0, 1, 1]
    assert phases.reads == {1: (INVENTORY,)}
    alone = plan_of([t(0), pm.task("t1", "group", "group_by", {"key": "k"}, [], 1)])
    assert not play_phases(alone.play_tasks(alone.plays[0])).cut  # nothing after it: no cut


def test_an_action_plugin_run_on_the_controller_is_a_local_phase_even_for_one_host() -> None:
    # the task pointers bridge/policy.controller_tasks gives: their action plugin runs on the controller
    plan = plan_of([t(0), t(1), t(2, run_once=True), t(3)], handlers=[t(9)])
    tasks = plan.play_tasks(plan.plays[0])
    phases = play_phases(tasks, actions=frozenset({tasks[1].pointer, tasks[2].pointer}))
    assert phases.kinds == (HOSTS, LOCAL, ONCE_LOCAL, HOSTS)
    spec = replace(PlaySpec(index=0, name="p", hosts=tuple(NAMES), phases=phases.kinds), actions=True)
    one = schedule([spec], NAMES[:1])  # one host: still cut, the controller runs the action
    assert [(st.phase, st.local) for st in one.stages] == [(0, False), (1, True), (2, True), (3, False)]
    assert PlaySpec.from_json(spec.to_json()) == spec
    # an action plugin on a handler: handlers are never cut
    (refused,) = refusals(plan.plays[0], tasks, actions=frozenset({plan.plays[0].handlers[0].pointer}))
    assert refused.key == "module" and "an action plugin run on the controller" in refused.message


def test_a_task_reading_a_controller_file_the_play_creates_starts_a_phase_even_for_one_host(tmp_path: Any) -> None:
    made = str(tmp_path / "made.j2")
    reads = {"src": made, "dest": "/tmp/x"}
    plan = plan_of([t(0), pm.task("t1", "template", "template", reads, [], 1, run_time_files={made: [made]}), t(2)])
    phases = play_phases(plan.play_tasks(plan.plays[0]))
    assert phases.kinds == (HOSTS, HOSTS)
    assert [phases.of[f"t{i}"] for i in range(3)] == [0, 1, 1]
    assert [file_read(r) for r in phases.reads[1]] == [(made, "file", [made], {})]
    spec = play_specs(plan, lambda names: [Host(name=n, vars={}, groups=("all",)) for n in names])[0]
    stages = schedule([spec], ["h0"]).stages  # one host: still two phases, the file read between them
    assert [(st.phase, [file_read(r) for r in st.reads]) for st in stages] == [
        (0, []), (1, [(made, "file", [made], {})])]
    assert stages[0].feeds is True


def test_a_plans_become_config_round_trips_and_names_what_is_wrong() -> None:
    from rustle_deploy.plan.write import plan_document

    doc = pm.plan([pm.play("play-0", "web", NAMES, lambda hosts: [t(0)])], NAMES)
    options = doc["metadata"]["planning_options"]
    options["become_config"] = {"sudo": {"exe": "/opt/sudo", "flags": "-H -n"}}
    plan = parse_plan(json.dumps(doc).encode(), source="plan.json", base_dir=".")
    assert plan.options.become_config == {"sudo": {"exe": "/opt/sudo", "flags": "-H -n"}}
    again = parse_plan(json.dumps(plan_document(plan)).encode(), source="plan.json", base_dir=".")
    assert again.options.become_config == plan.options.become_config
    where = "/metadata/planning_options/become_config"
    for bad, pointer in (({"doas": {"exe": "x"}}, f"{where}/doas"), ({"su": {"user": "x"}}, f"{where}/su/user")):
        options["become_config"] = bad
        with pytest.raises(PlanError) as err:
            parse_plan(json.dumps(doc).encode(), source="plan.json", base_dir=".")
        assert err.value.pointer == pointer
