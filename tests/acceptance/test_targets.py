"""ansible-core's own integration targets that pass under ansible-playbook 2.19 and under
rustle-deploy, pinned by name: a regression in any of them fails the suite.

Each runs as ansible-test runs it on a local connection (tests/acceptance/harness.py), in a
fresh directory, through the installed ``rustle-deploy --run``. ``PINNED`` ones pass when the run
exits 0 (the targets assert their own results); ``IDENTICAL`` ones are compared task by task
with ansible-playbook's run, whose results are recorded in tests/data/acceptance/ and replayed
(tests/acceptance/records.py; ``RUSTLE_ORACLE=live`` runs it again and checks the record).
``make acceptance`` runs every target under both tools and writes docs/acceptance.md, where the
others are. The sdist is fetched once into ~/.cache/rustle-deploy/acceptance/; offline, the
tier skips with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import (
    TIMING_SENSITIVE,
    UNCOMPARED,
    Run,
    _with_controller_phases,
    blocker,
    compare,
    not_run,
    recorded_oracle,
    role_targets,
    run_attempts,
    run_target,
)

pytestmark = pytest.mark.acceptance

# Passing under both in docs/acceptance.md; each takes a few seconds here.
# getent, service_facts, tempfile and want_json_modules_posix run their modules through the
# module bridge (known_hosts runs natively: the runner ports ansible-core's module);
# result_pickle_error and unexpected_executor_exception run an action plugin of their own on
# the controller with ansible-core (docs/bridge.md; shell, task-args and
# until do too, and pass under make acceptance, but each takes one or two minutes here).
# get_url runs against tests/acceptance/httptester.py's servers (harness.run_target): ~100 s of
# wall and ~11 s of CPU under rustle-deploy here (160 results), pinned without its oracle, which
# takes ~10 minutes (it passed under ansible-playbook 2.19.14 in session 9: 161 results).
PINNED = (
    "add_host",
    "ansiballz_debug",
    "ansiballz_debugging",
    "assert",
    "binary",
    "changed_when",
    "common_network",
    "facts_d",
    "failed_when",
    "filter_encryption",
    "filter_urls",
    "filter_urlsplit",
    "get_url",
    "getent",
    "ignore_errors",
    "include_import_tasks_nested",
    "include_with_templating",
    "known_hosts",
    "lookup-option-name",
    "lookup_config",
    "lookup_csvfile",
    "lookup_indexed_items",
    "lookup_items",
    "lookup_lines",
    "lookup_list",
    "lookup_nested",
    "lookup_random_choice",
    "lookup_sequence",
    "lookup_template",
    "lookup_varnames",
    "lookup_vars",
    "missing-interpreter",
    "module_utils_common.respawn",
    "module_utils_facts.system.selinux",
    "ping",
    "pkg_resources",
    "plugin_config_for_inventory",
    "plugin_namespace",
    "python_module_rlimit_nofile",
    "result_pickle_error",
    "service_facts",
    "task-esoterica",
    "task-timeout",
    "tempfile",
    "test_files",
    "test_uri",
    "undefined",
    "unexpected_executor_exception",
    "uri",  # ~4 min at load 25-30, 280 results; harness.unserved names the tasks left out
    "var_inheritance",
    "want_json_modules_posix",
    "yaml_parsing",
)

# Compared task by task with ansible-playbook's recorded run: every result the same (status,
# ignored, a failure's message), and the run ends as the oracle's did. Their CPU here under
# rustle-deploy, the oracle replayed (docs/acceptance.md "In the suite"):
IDENTICAL = (
    "add_host",  # its invalid input's message names ansible-core's tagged type (datatag.shown_type)
    "ansiballz_python",  # asserts the open-files limit ansible-test gives modules (harness.AS_ANSIBLE_TEST)
    "blockinfile",
    "command_shell",
    "copy",  # 533 results; adds an unprivileged account and its sudoers file (root); the oracle took 47 min
    "file",
    "include_vars",  # include_vars dir: over a directory tasks delegated to localhost create (docs/phases.md)
    "interpreter_discovery_python",  # a task's auto* modes, omit/undefined interpreters (PATH without pyenv shims)
    "lineinfile",
    "lookup_first_found",  # with_first_found over facts: the host chooses among the files the compiler listed
    "lookup_pipe",  # echoes $OUTPUT_DIR, which ansible-test sets (harness.AS_ANSIBLE_TEST)
    "lookup_subelements",  # its messages show a mapping in the order the playbook wrote it (pyz runtime)
    "loops",
    "module_defaults",  # its own action_plugins/debug.py replaces debug, module_defaults reach it
    "module_utils_urls",  # a library module's getpeercert against httptester.py's servers (root: a namespace of its own)
    "slurp",  # adds a test account (as root only): password_hash on the host, become_user to it
    "stat",
    "template",  # lookup('template') natively (a macro's dict); adds and removes a user (root)
    "templating",  # lookup terms' template constants, ansible-core's error words, !vault markers in to_json
    "var_reserved",  # its nested ansible-playbook warns of reserved names only (ANSIBLE_INVENTORY=/dev/null)
    "wait_for",  # its checks time background jobs: see test_target_is_identical_task_by_task_to_ansible_playbook
)

# Targets that fail under ansible-playbook here, and under rustle-deploy at the same task alike
# (compared all the same): what on this machine makes them fail.
ORACLE_FAILS = {
    "file": "`attributes: +A` after `attributes: A` reports changed on this machine's ext4 (lsattr/chattr work)",
    "lineinfile": "acls.yml's setfacl on $HOME/test.txt, where its copy wrote ~root/test.txt (harness.LEFT_IN_HOME)",
}

# become: true (to root) inside, or accounts added: as another user that needs sudo with a password
NEEDS_ROOT = frozenset({"include_import_tasks_nested", "template", "copy"})


def test_pinned_targets_are_runnable_role_targets(root: Path) -> None:
    targets = role_targets(root)
    assert all(name in targets and not_run(root, name) is None for name in PINNED)


@pytest.mark.parametrize("name", PINNED)
def test_target_passes_under_rustle_deploy(name: str, root: Path, tmp_path: Path) -> None:
    if name in NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip(f"{name} becomes root: run the suite as root")
    run = run_target(root, name, "rustle", base=tmp_path)
    assert run.passed, f"{name}: {blocker(run)}\n{run.log[-4000:]}"
    assert run.results  # it ran tasks (a rescued or ignored failure may be part of the test)


@pytest.mark.parametrize("name", IDENTICAL)
def test_target_is_identical_task_by_task_to_ansible_playbook(name: str, root: Path, tmp_path: Path) -> None:
    """The oracle is replayed from its record (a live run when there is none for these inputs).
    A timing-sensitive target's rustle-deploy run is run again only while it fails exactly as
    one of the oracle's own earlier runs did (``Run.earlier``, recorded): any other failure fails
    the test."""
    if (why := not_run(root, name)) is not None:
        pytest.skip(why)
    if name in NEEDS_ROOT and os.geteuid() != 0:
        pytest.skip(f"{name} becomes root: run the suite as root")
    oracle = recorded_oracle(root, name, base=tmp_path)
    assert oracle.code is not None, f"{name}: ansible-playbook {oracle.refused}\n{oracle.log[-4000:]}"
    assert oracle.passed == (name not in ORACLE_FAILS), (
        f"{name} under ansible-playbook: {blocker(oracle) or 'passes'}; expected "
        f"{ORACLE_FAILS.get(name, 'to pass')}\n{oracle.log[-4000:]}")
    if name in TIMING_SENSITIVE:
        run = run_attempts(root, name, "rustle", base=tmp_path, only=oracle.earlier)
    else:
        run = run_target(root, name, "rustle", base=tmp_path)
    cmp = compare(oracle, run)
    assert not cmp.refused, run.refused
    replayed = oracle.log.startswith("(the recorded oracle")
    where = (f"{oracle.log} RUSTLE_ORACLE=live runs ansible-playbook again and checks the record" if replayed
             else "(the oracle: a live ansible-playbook run)")
    assert run.passed == oracle.passed, f"{name}: {blocker(run)} {where}\n{run.log[-4000:]}"
    assert cmp.compared and cmp.compared == len([r for r in oracle.results if r["task"] not in UNCOMPARED])
    assert cmp.identical == cmp.compared and not cmp.unreached, "\n".join([where, *cmp.differences[:10]])


def _res(task: str, status: str = "ok", msg: str = "", ignored: bool = False) -> dict[str, object]:
    return {"task": task, "host": "testhost", "module": "x", "status": status, "ignored": ignored, "msg": msg}


def test_compare_aligns_by_name_and_stops_where_a_run_stops() -> None:
    a = Run("ansible", code=2, results=[
        _res("Gathering Facts"), _res("r : a"), _res("r : b", "changed"), _res("r : only ansible"),
        _res("r : c", "failed", "at /tmp/acc-ansible-r-x1/out: /tmp/ansible.abcdefgh1 gone"), _res("r : d")])
    r = Run("rustle", code=2, results=[
        _res("r : a"), _res("r : b", "ok"), _res("r : c", "failed", "at /tmp/acc-rustle-r-y2/out: /tmp/ansible.zyxwvuts2 gone")])
    cmp = compare(a, r)
    assert (cmp.compared, cmp.identical, cmp.different) == (4, 2, 2)
    assert cmp.differences == ["r : b: ansible-playbook changed; rustle-deploy ok",
                               "r : only ansible: run by ansible-playbook only (ok)"]
    assert cmp.unreached == {"ansible-playbook": 1}  # r : d, after rustle-deploy stopped
    refused = compare(a, Run("rustle", code=2, refused="error: x"))
    assert refused.refused and refused.compared == 0


def test_a_modules_temporary_directory_is_masked_and_the_rest_of_the_message_is_not() -> None:
    """uri's "failed to copy TMP to DEST": each tool's module makes its temporary file in a
    temporary directory of its own making; the destination still counts."""
    def failed(tmp: str, dest: str) -> dict[str, object]:
        return _res("r : copy", "failed", f"failed to copy {tmp}/tmpab12cd34 to {dest}: Could not replace "
                                          f"'{dest}' with '{tmp}/tmpab12cd34'", ignored=True)

    ansible = "/root/.ansible/tmp/ansible-tmp-1796697073.4604151-4989-182852593692875"
    ours = "/tmp/rustle-zzbrawf4/ansible-tmp-eb6fd3c5c59d"
    same = compare(Run("ansible", code=0, results=[failed(ansible, "/tmp/a/path")]),
                   Run("rustle", code=0, results=[failed(ours, "/tmp/a/path")]))
    other = compare(Run("ansible", code=0, results=[failed(ansible, "/tmp/a/path")]),
                    Run("rustle", code=0, results=[failed(ours, "/tmp/b/path")]))
    assert (same.identical, other.identical) == (1, 0)


def test_controller_phase_results_take_their_places_among_the_host_journals() -> None:
    """The state database holds every result of a host in run order; a host journal only those of
    its own phases: what the journal lacks is a controller phase's, put where it ran."""
    journal = [_res("r : a"), _res("r : c", "changed"), _res("r : c", "ok")]
    recorded = [_res("r : a"), _res("r : delegated before c", "changed"), _res("r : c", "changed"),
                _res("r : c", "ok"), _res("r : delegated last")]
    merged = _with_controller_phases(journal, recorded)
    assert [(r["task"], r["status"]) for r in merged] == [
        ("r : a", "ok"), ("r : delegated before c", "changed"), ("r : c", "changed"), ("r : c", "ok"),
        ("r : delegated last", "ok")]
    assert merged[0] is journal[0] and merged[2] is journal[1]  # the journal's own records, whole
    assert _with_controller_phases(journal, []) == journal  # no database (a refused run): the journals


def test_a_run_on_a_cache_of_its_own_writes_its_report_there_not_into_docs(root: Path, tmp_path: Path) -> None:
    from ..conftest import REPO

    docs = REPO / "docs" / "acceptance.md"
    before = docs.read_bytes()
    cache = tmp_path / "cache"
    cache.mkdir()
    sdist = root.parents[2]  # CACHE/ansible_core-VERSION, of the suite's cache
    (cache / sdist.name).symlink_to(sdist, target_is_directory=True)
    env = dict(os.environ, RUSTLE_ACCEPTANCE_CACHE=str(cache))
    proc = subprocess.run([sys.executable, "-m", "tests.acceptance", "--report-only"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"wrote {cache / 'acceptance.md'}"
    assert "| add_host | not run |" in (cache / "acceptance.md").read_text()  # no results in that cache
    assert docs.read_bytes() == before
    # a report named with --report is written there
    mine = tmp_path / "asked.md"
    proc = subprocess.run([sys.executable, "-m", "tests.acceptance", "--report-only", "--report", str(mine)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0 and mine.read_text() == (cache / "acceptance.md").read_text(), proc.stderr


def test_a_report_of_some_targets_is_merged_into_one_of_every_target() -> None:
    from .harness import merge

    old = ("# A\n\n| a | a hand-written row above |\n\n## Per target\n\n| a | both | 1 |\n| b | neither | 2 |\n| c | both | 3 |\n\n"
           "## Failures and differences under rustle-deploy\n\n### b\n\nold b\n\n### c\n\nold c\n\n")
    new = ("# A\n\n## Totals\n\n- new totals\n\n## Per target\n\n| a | both | 9 |\n| b | both | 8 |\n| c | not run |\n\n"
           "## Failures and differences under rustle-deploy\n\n### a\n\nnew a\n\n\n# Part 2: runme\n\n| handlers | 10 |\n")
    out = merge(old, new, ["a", "b"])
    assert "| a | both | 9 |\n| b | both | 8 |\n| c | both | 3 |" in out  # c was not run again: kept
    assert "| a | a hand-written row above |" in out  # only the per-target table's row is replaced
    assert "### a\n\nnew a\n\n### c\n\nold c" in out and "old b" not in out  # b's section gone: it passes now
    assert "Part 2" not in out  # (the totals: the next test)
    both = merge(out, new, [], runme_part=True)
    assert both.endswith("old c\n\n# Part 2: runme\n\n| handlers | 10 |\n")
    assert merge(both, new, [], runme_part=True) == both  # the part is replaced, not added again


def test_merging_counts_the_totals_and_blockers_again_from_the_rows_as_merged() -> None:
    from .harness import merge

    def report(rows: str, totals: str = "- stale totals\n") -> str:
        return ("# A\n\n## How fresh\n\nhand-written\n\n## Totals\n\n" + totals + "\n## Per target\n\n"
                "| target | passes under | ansible-playbook | rustle-deploy | compared/identical/different | blocker |\n"
                "|---|---|---|---|---|---|\n" + rows + "\n## Failures and differences under rustle-deploy\n\n")
    old = report("| a | oracle only | 10/10/0 | fail 4/3/1 | 4/3/1 | fails: a : t: x \\| y |\n"
                  "| b | oracle only | 5/5/0 | refused 0/0/0 | refused | refused: filter 'from_toml' is not supported by rustle-deploy |\n"
                  "| c | neither | 3/2/1 | fail 2/1/1 | 2/2/0 | oracle fails: fails: c : t: no |\n"
                  "| d | not run | | | | machine: adds accounts |\n")
    new = report("| a | both | 10/10/0 | pass 10/10/0 | 10/9/1 |  |\n")
    out = merge(old, new, ["a"])
    assert "hand-written" in out and "stale totals" not in out
    assert ("- role-shaped targets: 4; run: 3; not run here: 1\n"
            "- pass under both: 1; under ansible-playbook only: 1; under rustle-deploy only: 0; under neither: 1\n"
            "- task results: ansible-playbook 18, rustle-deploy 12\n"
            "- compared task by task: 12; identical: 11; different: 1; targets refused at compile time: 1; "
            "targets whose compared results are all identical: 1\n") in out
    assert "| filter from_toml on the host (fidelity) | 1 | b |\n\n## Per target\n" in out
    assert "| a | both |" in out and "fails: a" not in out.split("## Per target")[0]  # a passes now
    # b fails again, as a task: both blockers counted, and a row's escaped | is the note's own
    out = merge(out, report("| b | oracle only | 5/5/0 | fail 1/0/1 | 1/0/1 | fails: b : t: x \\| y |\n"), ["b"])
    assert "under ansible-playbook only: 1;" in out and "| a task behaves otherwise" in out and "| 1 | b |" in out


def test_what_one_tool_ran_after_the_others_host_failed_is_unreached_not_different() -> None:
    """A host that fails runs only its always: sections after: the tasks the other tool ran in
    between were never reached, and are not counted as differences (the failure itself is)."""
    a = Run("ansible", code=0, results=[_res("r : a"), _res("r : b", "changed"), _res("r : c"), _res("r : d"),
                                        _res("r : cleanup", "changed")])
    r = Run("rustle", code=2, results=[_res("r : a"), _res("r : b", "failed", "no such file"),
                                       _res("r : cleanup", "changed")])
    cmp = compare(a, r)
    assert (cmp.compared, cmp.identical, cmp.different) == (3, 2, 1)
    assert cmp.differences == ["r : b: ansible-playbook changed; rustle-deploy failed: no such file"]
    assert cmp.unreached == {"ansible-playbook": 2}
    # an ignored failure does not stop the host: what only the other tool ran still differs
    r.results[1]["ignored"] = True
    assert compare(a, r).differences[1:] == ["r : c: run by ansible-playbook only (ok)",
                                             "r : d: run by ansible-playbook only (ok)"]
