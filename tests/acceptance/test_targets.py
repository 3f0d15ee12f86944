"""ansible-core's own integration targets that pass under ansible-playbook 2.19 and under
rustle-deploy, pinned by name: a regression in any of them fails the suite.

Each runs as ansible-test runs it on a local connection (tests/acceptance/harness.py), in a
fresh directory, through the installed ``rustle-deploy --run``; it passes when the run exits 0
(the targets assert their own results). The list holds the fast ones (the whole tier takes
about a minute here); ``make acceptance`` runs every target under both tools and writes
docs/acceptance.md, where the others are. The sdist is fetched once into
~/.cache/rustle-deploy/acceptance/; offline, the tier skips with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .harness import Unavailable, blocker, not_run, role_targets, run_target, targets_root

pytestmark = pytest.mark.acceptance

# Passing under both in docs/acceptance.md; each takes a few seconds here.
# getent, known_hosts, service_facts, tempfile and want_json_modules_posix run their modules
# through the module bridge.
PINNED = (
    "filter_urls",
    "getent",
    "ignore_errors",
    "include_import_tasks_nested",
    "include_with_templating",
    "known_hosts",
    "lookup_indexed_items",
    "lookup_items",
    "lookup_lines",
    "lookup_list",
    "lookup_nested",
    "lookup_random_choice",
    "lookup_vars",
    "service_facts",
    "task-timeout",
    "tempfile",
    "undefined",
    "var_inheritance",
    "want_json_modules_posix",
    "yaml_parsing",
)

# become: true (to root) inside; as another user that needs sudo with a password
NEEDS_ROOT = frozenset({"include_import_tasks_nested"})


@pytest.fixture(scope="module")
def root() -> Path:
    try:
        return targets_root()
    except Unavailable as exc:
        pytest.skip(str(exc))


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
