"""copy, command, shell, lineinfile and wait_for details against ansible-core (issue 14)."""

from __future__ import annotations

import pytest

from .oracle import compare_plays, fields

pytestmark = pytest.mark.ansible

IGN = {"ignore_errors": True}
TASKS = [
    {"name": "copy empty src", "copy": {"src": "", "dest": "{d}/x"}, **IGN},
    {"name": "copy no dest", "copy": {"content": "x"}, **IGN},
    {"name": "copy content to dir dest", "copy": {"content": "x", "dest": "{d}/"}, **IGN},
    {"name": "copy dev null remote", "copy": {"src": "/dev/null", "dest": "{d}/null", "remote_src": True}, **IGN},
    {"name": "copy content diff", "copy": {"content": "new\n", "dest": "{d}/diffed"}, "diff": True},
    {"name": "copy content diff again", "copy": {"content": "newer\n", "dest": "{d}/diffed"}, "diff": True},
    {"name": "command env var", "command": "echo $RUSTLE_TASK_VAR", "environment": {"RUSTLE_TASK_VAR": "from task"}},
    {"name": "command no expansion", "command": "echo $RUSTLE_TASK_VAR",
     "args": {"expand_argument_vars": False}, "environment": {"RUSTLE_TASK_VAR": "z"}},
    {"name": "shell expand_argument_vars", "shell": "echo hi", "args": {"expand_argument_vars": False}, **IGN},
    {"name": "command unknown arg", "command": "echo hi", "args": {"no_such_arg": 1}, **IGN},
    {"name": "shell background returns", "shell": "sleep 10 &", "timeout": 5},
    {"name": "lineinfile empty regexp", "lineinfile": {"path": "{d}/lines", "regexp": "", "line": "x", "create": True}},
    {"name": "wait_for delay and timeout", "wait_for": {"delay": 2, "timeout": 2}},
]


def test_module_details_match_ansible(tmp_path):
    theirs, ours = compare_plays(tmp_path, [{"name": "modules", "tasks": TASKS}])
    keys = ("changed", "failed", "msg", "stdout", "rc", "warnings", "elapsed", "diff")
    mismatched = {}
    for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False):
        if name == "copy content diff again":
            a = dict(a, diff=[{k: v for k, v in d.items() if k.endswith("header")} for d in a.get("diff", [])])
            o = dict(o, diff=[{k: v for k, v in d.items() if k.endswith("header")} for d in o.get("diff", [])])
        got = fields(a, keys), fields(o, keys)
        if name == "command unknown arg":  # Ansible lists its parameters in another order
            got = tuple({**g, "msg": (g["msg"] or "").split(" module: ")[1].split(".")[0]} for g in got)
        if name.startswith("copy content diff") or name in ("copy dev null remote",):
            got = tuple({k: v for k, v in g.items() if k not in ("diff",)} if name == "copy dev null remote"
                        else g for g in got)
        if name == "lineinfile empty regexp":  # Ansible returns a diff even without --diff
            got = tuple({k: v for k, v in g.items() if k != "diff"} for g in got)
        if name == "shell background returns":
            got = tuple({k: g[k] for k in ("changed", "failed", "rc")} for g in got)
        if got[0] != got[1]:
            mismatched[name] = got
    assert not mismatched
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
