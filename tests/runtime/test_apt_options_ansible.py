"""apt's options against ansible-core: each option the runtime accepts does what ansible-core's
apt does with it, or is refused naming it (never accepted and ignored). Check mode only, with
the machine's real dpkg database and apt cache: nothing is installed, removed or updated (the
oracle's apt re-executes itself under the system python that has python3-apt)."""

from __future__ import annotations

import shutil

import pytest

from .oracle import compare_plays, fields
from .test_modules_support import absent_package

pytestmark = [pytest.mark.ansible, pytest.mark.oracle,
              pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt (a Debian-family host)")]

CHECK = {"check_mode": True, "ignore_errors": True}
EVERY = {"force": True, "lock_timeout": 5, "allow_unauthenticated": True, "fail_on_autoremove": True,
         "allow_change_held_packages": True, "update_cache_retries": 2, "update_cache_retry_max_delay": 3,
         "force_apt_get": True, "allow_downgrade": True, "install_recommends": False}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    absent = absent_package()
    tasks = [
        {"name": "installed, every option", "apt": {"name": "bash", **EVERY}, **CHECK},
        {"name": "absent, every option", "apt": {"name": absent, **EVERY}, **CHECK},
        {"name": "remove, force and held", "apt": {"name": absent, "state": "absent", "force": True,
                                                    "allow_change_held_packages": True}, **CHECK},
        {"name": "dash alias", "apt": {"name": "bash", "allow-unauthenticated": True}, **CHECK},
        {"name": "autoclean", "apt": {"autoclean": True}, **CHECK},
        {"name": "autoclean with force", "apt": {"autoclean": True, "force": True, "lock_timeout": 1}, **CHECK},
        {"name": "lock_timeout not an int", "apt": {"name": "bash", "lock_timeout": "soon"}, **CHECK},
        {"name": "policy_rc_d", "apt": {"name": "bash", "policy_rc_d": 101}, **CHECK},
    ]
    theirs, ours = compare_plays(tmp_path_factory.mktemp("apt"), [{"name": "apt", "tasks": tasks}])
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    return dict(theirs[0]), dict(ours[0])


@pytest.mark.parametrize("name", ["installed, every option", "absent, every option", "remove, force and held",
                                  "dash alias", "autoclean", "autoclean with force"])
def test_implemented_option_matches_ansible(runs, name):
    theirs, ours = runs
    assert fields(ours[name], ("changed", "failed")) == fields(theirs[name], ("changed", "failed")), \
        (ours[name].get("msg"), theirs[name].get("msg"))
    assert not ours[name].get("failed")


def test_a_bad_int_option_fails_like_ansible(runs):
    theirs, ours = runs
    name = "lock_timeout not an int"
    assert theirs[name]["failed"] and ours[name]["failed"]
    assert "lock_timeout" in ours[name]["msg"] and "unable to convert to int" in ours[name]["msg"]


def test_policy_rc_d_is_refused_naming_it(runs):
    theirs, ours = runs
    name = "policy_rc_d"
    assert not theirs[name].get("failed")  # ansible-core applies it; the runtime cannot
    assert ours[name]["failed"]
    assert ours[name]["msg"].startswith("apt: option 'policy_rc_d' is not supported by this runtime; hint: ")
