"""Tests of user, group and cron on this host (real root; everything created is removed)."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess

import pytest

from .test_modules_support import FakeCtx, runtime_module

cron = runtime_module("cron")
users = runtime_module("users")

root_only = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                               reason="needs root and shadow-utils")
# Names and ids unique to this process: suites running side by side on one machine (worktrees,
# CI next to a developer) must not change each other's accounts.
USER = f"rustletest{os.getpid()}u"
GROUP = f"rustletest{os.getpid()}g"
GID = 30000 + os.getpid() % 20000


@pytest.fixture
def cleanup_accounts():
    yield
    subprocess.run(["userdel", "-r", USER], capture_output=True)
    subprocess.run(["groupdel", GROUP], capture_output=True)


@root_only
def test_group_lifecycle(cleanup_accounts):
    g = users.MODULES["group"]
    assert g(FakeCtx(check_mode=True), {"name": GROUP})["changed"] is True
    with pytest.raises(KeyError):
        grp.getgrnam(GROUP)
    res = g(FakeCtx(), {"name": GROUP, "gid": GID})
    assert res["changed"] and res["gid"] == GID and grp.getgrnam(GROUP).gr_gid == GID
    assert g(FakeCtx(), {"name": GROUP, "gid": GID})["changed"] is False
    assert g(FakeCtx(), {"name": GROUP, "gid": GID + 1})["changed"] is True
    assert grp.getgrnam(GROUP).gr_gid == GID + 1
    assert g(FakeCtx(), {"name": GROUP, "state": "absent"})["changed"] is True
    assert g(FakeCtx(), {"name": GROUP, "state": "absent"})["changed"] is False


@root_only
def test_user_lifecycle(cleanup_accounts, tmp_path):
    u, g = users.MODULES["user"], users.MODULES["group"]
    g(FakeCtx(), {"name": GROUP})
    assert u(FakeCtx(check_mode=True), {"name": USER})["changed"] is True
    with pytest.raises(KeyError):
        pwd.getpwnam(USER)
    home = str(tmp_path / "home")
    res = u(FakeCtx(), {"name": USER, "shell": "/bin/sh", "home": home, "groups": [GROUP],
                        "comment": "Rustle Test"})
    assert res["changed"] and res["shell"] == "/bin/sh" and res["groups"] == GROUP
    assert os.path.isdir(home)
    again = {"name": USER, "shell": "/bin/sh", "home": home, "groups": GROUP,
             "comment": "Rustle Test"}
    assert u(FakeCtx(), again)["changed"] is False
    assert u(FakeCtx(check_mode=True), {"name": USER, "shell": "/bin/bash"})["changed"] is True
    assert pwd.getpwnam(USER).pw_shell == "/bin/sh"
    assert u(FakeCtx(), {"name": USER, "shell": "/bin/bash"})["changed"] is True
    assert pwd.getpwnam(USER).pw_shell == "/bin/bash"
    assert u(FakeCtx(), {"name": USER, "groups": [], "append": False})["changed"] is True
    assert USER not in grp.getgrnam(GROUP).gr_mem
    missing = u(FakeCtx(), {"name": USER, "groups": ["no-such-group-x"]})
    assert missing["failed"] and "no-such-group-x" in missing["msg"]
    assert u(FakeCtx(), {"name": USER, "state": "absent", "remove": True})["changed"] is True
    assert u(FakeCtx(), {"name": USER, "state": "absent"})["changed"] is False


def test_cron_file_jobs_and_env(tmp_path):
    cf = str(tmp_path / "app")
    job = {"name": "backup", "minute": "0", "hour": "3", "job": "/usr/bin/backup",
           "user": "root", "cron_file": cf}
    assert cron.cron(FakeCtx(check_mode=True), job)["changed"] is True
    assert not os.path.exists(cf)
    res = cron.cron(FakeCtx(), job)
    assert res["changed"] and res["jobs"] == ["backup"]
    with open(cf) as handle:
        assert handle.read() == "#Ansible: backup\n0 3 * * * root /usr/bin/backup\n"
    assert cron.cron(FakeCtx(), job)["changed"] is False
    env = {"name": "PATH", "job": "/usr/bin:/bin", "env": True, "user": "root", "cron_file": cf}
    assert cron.cron(FakeCtx(), env)["changed"] is True
    assert cron.cron(FakeCtx(), env)["changed"] is False
    with open(cf) as handle:
        assert handle.read().splitlines()[0] == 'PATH="/usr/bin:/bin"'
    assert cron.cron(FakeCtx(), dict(job, hour="4"))["changed"] is True
    assert cron.cron(FakeCtx(), {"name": "PATH", "env": True, "state": "absent",
                                 "cron_file": cf})["changed"] is True
    gone = cron.cron(FakeCtx(), {"name": "backup", "state": "absent", "cron_file": cf})
    assert gone["changed"] and not os.path.exists(cf)
    bad = cron.cron(FakeCtx(), {"name": "x", "job": "y", "cron_file": cf})
    assert bad["failed"] and "must specify user" in bad["msg"]


@pytest.mark.skipif(shutil.which("crontab") is not None, reason="crontab is installed here")
def test_cron_user_crontab_without_crontab_fails_honestly():
    res = cron.cron(FakeCtx(), {"name": "x", "job": "true"})
    assert res["failed"] and "crontab" in res["msg"] and "hint" in res["msg"]
