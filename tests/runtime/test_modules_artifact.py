"""The file modules inside a real artifact (real ModuleContext and executor) against ansible-core.

One plan of copy/template/file/lineinfile/blockinfile/replace/stat tasks runs three times
(apply, apply again, check mode) as an artifact under the oldest and newest installed Pythons
and as an ansible-core playbook on twin directories; the per-task statuses and the resulting
trees must agree.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from .conftest import build_test_artifact, make_plan, run_artifact, task
from .test_modules_support import needs_ansible, run_playbook, tree

pytestmark = pytest.mark.ansible

TEMPLATE = b"[{{ section }}]\n{% for k in keys %}\n{{ k }} = {{ loop.index }}\n{% endfor %}\n"
CONF = b"listen 80\nworkers 2\n"
PY_VERSIONS = sorted(Path("/root/.pyenv/versions").glob("3.*/bin/python3"))


def _python(version_prefix: str) -> str | None:
    for path in PY_VERSIONS:
        if path.parts[-3].startswith(version_prefix):
            return str(path)
    return None


def _tasks(src: Path) -> list[tuple[str, dict[str, Any], dict[str, str] | None]]:
    """(module, args, files) for the workload; ``{{ d }}`` is the per-side directory."""
    conf, tmpl = str(src / "app.conf"), str(src / "app.j2")
    sha = lambda b: hashlib.sha256(b).hexdigest()  # noqa: E731
    return [
        ("file", {"path": "{{ d }}/etc/app", "state": "directory", "mode": "0750"}, None),
        ("copy", {"src": conf, "dest": "{{ d }}/etc/app/app.conf", "mode": "0640"},
         {conf: sha(CONF)}),
        ("template", {"src": tmpl, "dest": "{{ d }}/etc/app/app.ini"}, {tmpl: sha(TEMPLATE)}),
        ("copy", {"content": "inline {{ section }}\n", "dest": "{{ d }}/etc/app/inline"}, None),
        ("lineinfile", {"path": "{{ d }}/etc/app/app.conf", "regexp": "^workers",
                        "line": "workers 4"}, None),
        ("blockinfile", {"path": "{{ d }}/etc/app/app.conf", "block": "gzip on"}, None),
        ("replace", {"path": "{{ d }}/etc/app/app.conf", "regexp": "^listen 80$",
                     "replace": "listen 8080"}, None),
        ("file", {"src": "app.conf", "path": "{{ d }}/etc/app/current", "state": "link"}, None),
        ("file", {"path": "{{ d }}/etc/app/inline", "state": "absent"}, None),
        ("stat", {"path": "{{ d }}/etc/app/app.conf"}, None),
    ]


def _ansible_statuses(results: list[dict[str, Any]]) -> list[str]:
    return ["failed" if r.get("failed") else "changed" if r.get("changed") else "ok"
            for r in results]


def _setup_controller(tmp_path: Path) -> list[tuple[str, dict[str, Any], dict[str, str] | None]]:
    src = tmp_path / "controller"
    src.mkdir(exist_ok=True)
    (src / "app.conf").write_bytes(CONF)
    (src / "app.j2").write_bytes(TEMPLATE)
    return _tasks(src)


PLAY_VARS = {"section": "main", "keys": ["a", "b"]}


@pytest.fixture(scope="module")
def ansible_side(tmp_path_factory):
    """ansible-core's statuses (apply, apply again, check) and resulting trees, run once."""
    needs_ansible()
    tmp = tmp_path_factory.mktemp("artifact_ansible")
    work = _setup_controller(tmp)
    run_dir, check_dir = tmp / "run", tmp / "check"
    run_dir.mkdir()
    check_dir.mkdir()

    def play(d: Path, check: bool) -> dict[str, Any]:
        return {"hosts": "all", "gather_facts": False, "vars": {**PLAY_VARS, "d": str(d)},
                "tasks": [{"name": f"t{i}", module: dict(args), "check_mode": check,
                           "ignore_errors": True}
                          for i, (module, args, _) in enumerate(work)]}

    runs = run_playbook(tmp, [play(run_dir, False), play(run_dir, False),
                              play(check_dir, True)], width=1)
    return [_ansible_statuses(r) for r in runs], tree(run_dir), tree(check_dir)


@pytest.mark.parametrize("python", sorted({p for p in (_python("3.8"), _python("3.13")) if p}))
def test_file_modules_in_artifact_match_ansible(tmp_path, python, ansible_side):
    statuses, run_tree, check_tree = ansible_side
    work = _setup_controller(tmp_path)
    ours = tmp_path / "ours"
    (ours / "run").mkdir(parents=True)
    (ours / "check").mkdir(parents=True)
    files: dict[str, bytes] = {hashlib.sha256(b).hexdigest(): b for b in (CONF, TEMPLATE)}
    our_runs = []
    for d, check in ((ours / "run", False), (ours / "run", False), (ours / "check", True)):
        tasks = []
        for i, (module, args, embedded) in enumerate(work):
            extra = {"files": embedded} if embedded else {}
            tasks.append(task(module, dict(args), name=f"t{i}", ignore_errors=True, **extra))
        plan = make_plan(tasks, play_vars={**PLAY_VARS, "d": str(d)})
        artifact = build_test_artifact(tmp_path, plan, files)
        flags = ("--check",) if check else ()
        res = run_artifact(artifact, "run", "--host", "h1", *flags, python=python, cwd=tmp_path)
        our_runs.append([res.result(f"t{i}")["status"] for i in range(len(work))])
    assert our_runs == statuses
    assert tree(ours / "run") == run_tree
    assert tree(ours / "check") == check_tree
