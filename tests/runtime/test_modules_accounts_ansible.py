"""The user module against ansible-core's: its warnings, a bad ``expires``, the keys of its
check-mode results, ``password_lock``, ``generate_ssh_key`` (with a passphrase, forced, in check
mode), ``password_expire_*`` and ``local`` (issue 14). One oracle run; the account is named after this process and
removed by the play (and again after the test, whatever the play did)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from .oracle import compare_plays, fields

pytestmark = [pytest.mark.ansible, pytest.mark.oracle,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("useradd") is None,
                                 reason="adds an account: needs root and shadow-utils")]

USER = f"rustlefid{os.getpid()}"
LOCAL = f"rustlefidl{os.getpid()}"
IGN = {"ignore_errors": True}
SHA512 = ("$6$rounds=656000$TT4O7jz2M57npccl$33LF6FcUMSW11qrESXL1HX0BS.bsiT6aenFLLiVpsQh6hDtI9pJh5iY7x8J7ePkN4fP8"
          "hmElidHXaeD51pbGS.")
SHA512_OTHER = ("$6$GTHYqeZ.qgKxwvMG$ZeGSiOb4vs.6OtgR5aszgLMfmXqSt5aoJd4Rn7PDUygsbqEmjXB5chi3uOtRWTqRnq0R5"
                "nfwlHDnZNSEqvT1d0")
KEY = "{d}/keys/id_test"  # {d}: each side's own directory
CHECK = {"check_mode": True}
TASKS = [
    {"name": "absent first", "user": {"name": USER, "state": "absent", "remove": True}},
    {"name": "local absent first", "user": {"name": LOCAL, "state": "absent"}},
    {"name": "its group absent first", "group": {"name": LOCAL, "state": "absent"}},
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
    {"name": "a password again", "user": {"name": USER, "password": SHA512}},
    {"name": "lock", "user": {"name": USER, "password_lock": True}},
    {"name": "lock again", "user": {"name": USER, "password_lock": True}},
    {"name": "unlock", "user": {"name": USER, "password_lock": False}},
    {"name": "another password, locked", "user": {"name": USER, "password": SHA512_OTHER, "password_lock": True}},
    {"name": "lock in check mode", "user": {"name": USER, "password_lock": False}, **CHECK},
    {"name": "key in check mode", "user": {"name": USER, "generate_ssh_key": True, "ssh_key_file": KEY}, **CHECK},
    {"name": "key", "user": {"name": USER, "generate_ssh_key": True, "ssh_key_file": KEY}},
    {"name": "key again", "user": {"name": USER, "generate_ssh_key": True, "ssh_key_file": KEY}},
    {"name": "key with a passphrase", "user": {"name": USER, "generate_ssh_key": True, "ssh_key_file": KEY + "_pass",
                                               "ssh_key_type": "ed25519", "ssh_key_comment": "c",
                                               "ssh_key_passphrase": "a secret phrase"}},
    {"name": "key forced over the old one", "user": {"name": USER, "generate_ssh_key": True, "ssh_key_file": KEY,
                                                     "force": True, "ssh_key_bits": 1024}},
    {"name": "key in a missing home", "user": {"name": USER, "generate_ssh_key": True}, **IGN},
    {"name": "bad key bits", "user": {"name": USER, "ssh_key_bits": "many"}, **IGN},
    {"name": "password ageing", "user": {"name": USER, "password_expire_max": 90, "password_expire_min": 1,
                                         "password_expire_warn": 7}},
    {"name": "password ageing again", "user": {"name": USER, "password_expire_max": 90, "password_expire_min": 1,
                                               "password_expire_warn": 7}},
    {"name": "append without groups", "user": {"name": USER, "append": True}},
    {"name": "local with uid_min", "user": {"name": USER, "local": True, "uid_min": 1000}, **IGN},
    {"name": "local", "user": {"name": USER, "local": True, "shell": "/bin/bash"}, **IGN},
    # libuser's commands where installed (luseradd, lchage, lgroupmod); else both fail naming them
    {"name": "local account", "user": {"name": LOCAL, "local": True, "groups": [USER], "expires": 1700000000,
                                       "create_home": False}, **IGN},
    {"name": "local account changed", "user": {"name": LOCAL, "local": True, "groups": [], "expires": 1800000000,
                                               "comment": "x"}, **IGN},
    {"name": "local account absent", "user": {"name": LOCAL, "local": True, "state": "absent"}, **IGN},
    {"name": "its group absent", "group": {"name": LOCAL, "state": "absent"}},
    {"name": "absent in check mode", "user": {"name": USER, "state": "absent"}, **CHECK},
    {"name": "absent", "user": {"name": USER, "state": "absent", "remove": True}},
]


def _key_shape(result: dict) -> tuple:
    """What the generated key's fields say, without the key: its size and type, the public
    key's type and comment."""
    fingerprint, public = result.get("ssh_fingerprint"), result.get("ssh_public_key")
    return ("ssh_fingerprint" in result, "ssh_public_key" in result,
            (fingerprint.split()[:1] + fingerprint.split()[-1:]) if fingerprint else fingerprint,
            (public.split()[:1] + public.split()[2:]) if public else public)


@pytest.fixture
def account():
    yield USER
    subprocess.run(["userdel", "-r", "-f", LOCAL], capture_output=True, check=False)
    subprocess.run(["groupdel", LOCAL], capture_output=True, check=False)
    subprocess.run(["userdel", "-r", "-f", USER], capture_output=True, check=False)
    subprocess.run(["groupdel", USER], capture_output=True, check=False)


def test_user_results_match_ansible(tmp_path, account):
    # live: the accounts are named with this process's id (new inputs each run)
    theirs, ours = compare_plays(tmp_path, [{"name": "accounts", "tasks": TASKS}], record=False)
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    skip = {"invocation", "_ansible_no_log", "changed", "failed", "warnings", "msg", "deprecations", "stdout_lines",
            "stderr_lines", "ssh_fingerprint", "ssh_public_key"}
    for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False):  # each tool makes its own keys
        assert _key_shape(a) == _key_shape(o), (name, a, o)
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
