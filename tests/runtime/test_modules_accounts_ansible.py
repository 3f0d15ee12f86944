"""The user module against ansible-core's: its warnings, a bad ``expires`` and the keys of its
check-mode results (issue 14). One oracle run; the account is named after this process and
removed by the play (and again after the test, whatever the play did)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .oracle import compare_plays, fields

pytestmark = [pytest.mark.ansible,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                 reason="adds an account: needs root and shadow-utils")]

USER = f"rustlefid{os.getpid()}"
IGN = {"ignore_errors": True}
SHA512 = ("$6$rounds=656000$TT4O7jz2M57npccl$33LF6FcUMSW11qrESXL1HX0BS.bsiT6aenFLLiVpsQh6hDtI9pJh5iY7x8J7ePkN4fP8"
          "hmElidHXaeD51pbGS.")
CHECK = {"check_mode": True}
TASKS = [
    {"name": "absent first", "user": {"name": USER, "state": "absent", "remove": True}},
    {"name": "bad expires", "user": {"name": USER, "expires": "bad"}, **IGN},
    {"name": "expires out of range", "user": {"name": USER, "expires": 1e30}, **IGN},
    {"name": "new in check mode, plain password", "user": {"name": USER, "password": "plain"}, **CHECK},
    {"name": "create", "user": {"name": USER, "password": SHA512, "create_home": False, "shell": "/bin/sh",
                                "expires": 1700000000}},
    {"name": "modify in check mode", "user": {"name": USER, "shell": "/bin/bash"}, **CHECK},
    {"name": "modify with groups", "user": {"name": USER, "groups": [USER], "append": True}},
    {"name": "same expires", "user": {"name": USER, "expires": 1700000000}},
    {"name": "other expires", "user": {"name": USER, "expires": 1800000000}},
    {"name": "bad hash chars", "user": {"name": USER, "password": "$6$salt$" + "+" * 86}},
    {"name": "locked password", "user": {"name": USER, "password": "!"}},
    {"name": "absent in check mode", "user": {"name": USER, "state": "absent"}, **CHECK},
    {"name": "absent", "user": {"name": USER, "state": "absent", "remove": True}},
]


@pytest.fixture
def account():
    yield USER
    subprocess.run(["userdel", "-r", "-f", USER], capture_output=True, check=False)
    subprocess.run(["groupdel", USER], capture_output=True, check=False)


def test_user_results_match_ansible(tmp_path, account):
    theirs, ours = compare_plays(tmp_path, [{"name": "accounts", "tasks": TASKS}])
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    skip = {"invocation", "_ansible_no_log", "changed", "failed", "warnings", "msg", "deprecations", "stdout_lines", "stderr_lines"}
    mismatched = {}
    for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False):
        got = fields(a, ("changed", "failed", "msg", "warnings")), fields(o, ("changed", "failed", "msg", "warnings"))
        # the module's own keys: the event carries the protocol's too (task, status, rc, ...)
        keys = sorted(k for k in a if k not in skip and not k.startswith("_ansible")), \
            sorted(k for k in a if k in o and k not in skip and not k.startswith("_ansible"))
        # the ids: each tool makes the account anew, and another test may take an id between
        if got[0] != got[1] or keys[0] != keys[1] or any(a[k] != o[k] for k in keys[0] if k not in ("uid", "group")):
            mismatched[name] = (got, keys, {k: (a[k], o.get(k)) for k in keys[0] if a[k] != o.get(k)})
        if name.endswith("check mode") and name.startswith(("new", "absent")):
            assert set(a) - skip <= {"changed"}, a  # changed alone, as ansible-core
            assert not {"name", "state", "uid", "system"} & set(o), o
    assert not mismatched, "\n".join(f"{k}: {v}" for k, v in mismatched.items())
