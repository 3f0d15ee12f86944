"""The runme.sh harness (tests/acceptance/runme.py): which ansible-playbook lines it runs, how,
and what it refuses to translate; the per-host comparison."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .harness import Run
from .runme import compare_hosts, exit_class, invocations, outcome, run_invocation

# ansible-core 2.19.14's runme.sh invocations (target:line) that behave under rustle-deploy as
# under ansible-playbook, task by task and in how the run ends, one per fix of this harness's
# findings (each takes half a minute to a minute under ansible-playbook):
# handlers: a templated interpreter in inventory.handlers (10, and every other), --force-handlers
# (30) and a play's force_handlers: false beating it (50), listen topics by role prefix, unnamed
# listeners and Ansible's handler search order (70), error_on_missing_handler (82), a templated
# handler name (113), handlers notifying each other (167), a block inside a handler refused (180),
# a notify of no handler that never fires, behind a tag (107), and a looped include_tasks over
# with_first_found, as a handler (94; its lookup was not run on the controller); tags: templated tags of a block
# (80) and of a play (89); blocks: an inline host list and meta clear_host_errors (112);
# import_tasks: notify on import_tasks (5); roles: meta end_role, nested, on a host list (59);
# blocks: run_once on a nested block rescued by its parent's always, in a play of one host, under
# the linear, free and host_pinned strategies (11, 19, 27); handlers: a run_once handler in a play
# of hosts A, B and C, run by the first host that notified it (200); any_errors_fatal: every host
# stops after the task (an import's, a block's) that failed on one (11, 37), and after a
# meta: flush_handlers whose handler failed on one (handlers: 89, 138); blocks cut into phases
# in plays of two hosts: run_once inside nested blocks with rescue, run by the host still at it
# (blocks: 91), any_errors_fatal sending the other host to the block's rescue (any_errors_fatal:
# 46) or failing it with the rescue (blocks: 116), and ansible_play_hosts without the host that
# failed (blocks: 123); conditionals: host data as a conditional fails with ansible-core's exact
# words, "Encountered untrusted template or expression." (7); include_import: a role named
# nested/role found under ANSIBLE_ROLES_PATH and beside its depending role (57), an included
# file naming a module nothing provides, which aborts the run as ansible-playbook's parse error (150),
# a module in library/ beside an imported playbook (21), include_role names from loop items and
# host vars (43), a public include_role's vars seen only once it ran (100), the handler of a role
# imported with delegate_to delegated too, seeing ansible_delegated_vars (31); handlers: include_role
# as a handler refused before anything runs (125); handlers: a meta: flush_handlers handler (156) and a
# block inside a block of a file a handler includes (183), which error the run when the handler runs.
PINNED = (
    "handlers:10", "handlers:30", "handlers:50", "handlers:70", "handlers:82", "handlers:113",
    "handlers:167", "handlers:180", "handlers:94", "handlers:107", "tags:80", "tags:89", "blocks:112",
    "import_tasks:5", "roles:59", "blocks:11", "blocks:19", "blocks:27", "handlers:200",
    "any_errors_fatal:11", "any_errors_fatal:37", "handlers:89", "handlers:138",
    "blocks:91", "blocks:116", "blocks:123", "any_errors_fatal:46", "conditionals:7", "handlers:129",
    "include_import:57", "include_import:150", "include_import:21", "include_import:43", "include_import:100",
    "handlers:125", "include_import:31", "handlers:156", "handlers:183",
)


@pytest.mark.acceptance
@pytest.mark.parametrize("key", PINNED)
def test_runme_invocation_is_the_same_as_under_ansible_playbook(key: str, root: Path, tmp_path: Path) -> None:
    """Each case is a unit of work of its own under ``make test`` (tests/conftest.py's
    SPREAD_FILES), and runs ansible-playbook (the oracle) and rustle-deploy at the same time,
    each in a directory of its own."""
    target = key.split(":")[0]
    inv = next(i for i in invocations(root, target) if i.key == key)
    assert not inv.skipped, inv.skipped
    with ThreadPoolExecutor(2) as pool:
        oracle, run = pool.map(lambda tool: run_invocation(root, inv, tool, base=tmp_path), ("ansible", "rustle"))
    # each pinned playbook runs tasks under ansible-playbook, or is refused by it before any
    assert oracle.results or exit_class(oracle) == "error", f"{key}: ansible-playbook ran no task\n{oracle.log[-3000:]}"
    res = outcome(oracle, run)
    assert res.same, (f"{key} {inv.text}: {res.exits}, unreached {res.cmp.unreached}\n"
                      + "\n".join(res.cmp.differences[:10]) + "\n" + (run.refused or run.log[-3000:]))
    assert res.cmp.compared or res.exits == ("error", "error")


SCRIPT = r"""#!/usr/bin/env bash
set -eux
export ANSIBLE_FORCE_HANDLERS
ANSIBLE_FORCE_HANDLERS=false
# a comment naming ansible-playbook x.yml
ansible-playbook plain.yml -i inventory.handlers -v "$@" --tags scenario1

[ "$(ansible-playbook piped.yml -i inventory.handlers -vv "$@" -l A \
| grep -E -o 'RUNNING HANDLER')" = "RUNNING HANDLER" ]

for strategy in linear free; do
  export ANSIBLE_STRATEGY=$strategy
  ansible-playbook looped.yml -i inventory.handlers "$@" -t normal --force-handlers -e fail_all=yes
  unset ANSIBLE_STRATEGY
done

output_dir=/tmp/out
ANSIBLE_ERROR_ON_MISSING_HANDLER=false ansible-playbook envd.yml -e output_dir=$output_dir "$@" 2>&1 | tee out.txt
ansible-playbook odd.yml --flush-cache "$@"
ansible-playbook "$PLAYBOOK" "$@"
ansible localhost -m include_role -a "name=r1" "$@"
"""


def test_runme_lines_become_invocations_or_recorded_skips(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "runme.sh").write_text(SCRIPT)
    got = {inv.playbook or inv.text.split()[1]: inv for inv in invocations(tmp_path, "t")}
    assert list(got) == ["plain.yml", "piped.yml", "looped.yml", "envd.yml", "odd.yml", '"$PLAYBOOK"']
    plain = got["plain.yml"]
    assert (plain.line, plain.args, plain.env) == (
        6, ("-i", "inventory.handlers", "--tags", "scenario1"), (("ANSIBLE_FORCE_HANDLERS", "false"),))
    assert got["piped.yml"].args == ("-i", "inventory.handlers", "-l", "A")
    looped = got["looped.yml"]  # a shell loop's body once, with its first value
    assert dict(looped.env) == {"ANSIBLE_FORCE_HANDLERS": "false", "ANSIBLE_STRATEGY": "linear"}
    assert looped.argv("ansible")[1:] == ["looped.yml", "-i", "inventory.handlers", "-t", "normal",
                                          "--force-handlers", "-e", "fail_all=yes"]
    # ansible-playbook's -t is --tags; rustle-deploy's -t is --target
    assert looped.argv("rustle")[1:] == ["looped.yml", "-i", "inventory.handlers", "--tags", "normal",
                                         "--force-handlers", "-e", "fail_all=yes", "--run"]
    envd = got["envd.yml"]
    assert envd.args == ("-e", "output_dir=/tmp/out")
    assert dict(envd.env)["ANSIBLE_ERROR_ON_MISSING_HANDLER"] == "false"
    assert got["odd.yml"].skipped == "flag --flush-cache is not translated"
    assert "$PLAYBOOK" in got['"$PLAYBOOK"'].skipped
    assert all(not inv.skipped for name, inv in got.items() if name.endswith(".yml") and name != "odd.yml")


def _res(task: str, host: str, status: str = "ok") -> dict[str, object]:
    return {"task": task, "host": host, "module": "x", "status": status, "ignored": False, "msg": ""}


def test_hosts_are_compared_each_in_its_own_order() -> None:
    # ansible-playbook interleaves hosts task by task; rustle-deploy runs each host on its own
    a = Run("ansible", code=2, results=[_res("t1", "A"), _res("t1", "B"), _res("t2", "A", "changed"),
                                        _res("t2", "B", "failed")])
    r = Run("rustle", code=1, results=[_res("t1", "B"), _res("t2", "B", "failed"), _res("t1", "A"),
                                       _res("t2", "A", "ok")])
    cmp = compare_hosts(a, r)
    assert (cmp.compared, cmp.identical) == (4, 3)
    assert cmp.differences == ["[A] t2: ansible-playbook changed; rustle-deploy ok"]
    assert exit_class(a) == exit_class(r) == "hosts failed"
    # a run ansible-core aborts ("[ERROR]: ...", exit 1 or 4) is one rustle-deploy records as errored
    errored = Run("rustle", code=1, results=[_res("t1", "A"), dict(_res("t2", "A", "failed"), errored=True,
                                                                     module="include")])
    assert exit_class(errored) == exit_class(Run("ansible", code=4)) == "error"
    # an include whose file ansible-core could not parse: after its ok result, ansible-playbook
    # reported no failure, only the error: compared up to there
    aborted = outcome(Run("ansible", code=4, results=[_res("t1", "A")]), errored)
    assert aborted.same and aborted.cmp.compared == 1
    # both refuse the playbook before any task: they agree, nothing is compared
    both = compare_hosts(Run("ansible", code=4), Run("rustle", code=2, refused="error: x"))
    assert not both.refused and both.compared == 0
    assert compare_hosts(a, Run("rustle", code=2, refused="error: x")).refused
    assert not outcome(Run("ansible", code=4, results=a.results[:1]), Run("rustle", code=2, refused="error: x")).same


def test_the_task_whose_notify_of_no_handler_errored_the_run_is_not_compared() -> None:
    # ansible-playbook prints the error and reports no result for that task (runme handlers:77,
    # 118, 129); rustle-deploy fails the task with the error, recorded errored
    msg = "The requested handler 'h' was not found in either the main handlers list nor in the listening handlers list"
    r = Run("rustle", code=1, results=[_res("t1", "A"), dict(_res("t2", "A", "failed"), msg=msg, errored=True)])
    res = outcome(Run("ansible", code=1, results=[_res("t1", "A")]), r)
    assert res.same and res.exits == ("error", "error")
    # another errored task is compared
    other = Run("rustle", code=1, results=[_res("t1", "A"), dict(_res("t2", "A", "failed"), msg="x", errored=True)])
    assert not outcome(Run("ansible", code=1, results=[_res("t1", "A")]), other).same
