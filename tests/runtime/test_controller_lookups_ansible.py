"""Controller lookups (env, pipe, fileglob, first_found, password, csvfile; the fileglob filter) against ansible-core: run on
the controller while the task compiles, their results embedded (issue 12)."""

from __future__ import annotations

import os

import pytest

from .oracle import compare_plays, fields

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]

FILES = {
    "files/a.txt": "a\n", "files/b.txt": "b\n", "files/sub/c.txt": "c\n", "top.txt": "top\n",
    "vars/default.yml": "x: 1\n", "templates/t.j2": "t\n", "creds/enc": "secretpw salt=abcdefghijklmnop\n",
    "payload.txt": "{{ lookup('pipe', 'touch PWNED') }}\n",
    "files/people.csv": 'Smith,Jane,1\n"""The Rock"" Johnson",Dwayne,2\nx,{{ lookup(\'pipe\', \'touch PWNED2\') }},3\n',
}
PARAMS = {"files": ["nope.yml", "default.yml"], "paths": ["{d}/vars"]}
TASKS = [
    {"name": "env", "debug": {"msg": "{{ lookup('env', 'RUSTLE_CONTROLLER_VAR') }}"}},
    {"name": "env default", "debug": {"msg": "{{ lookup('env', 'RUSTLE_NO_SUCH_VAR', default='dflt') }}"}},
    {"name": "env two", "debug": {"msg": "{{ query('env', 'RUSTLE_CONTROLLER_VAR', 'RUSTLE_NO_SUCH_VAR') }}"}},
    {"name": "pipe", "debug": {"msg": "{{ lookup('pipe', 'echo $RUSTLE_CONTROLLER_VAR; pwd') }}"}},
    {"name": "lines", "debug": {"msg": "{{ query('lines', 'printf \"x\\\\ny\\\\n\"; ls files') }}"}},
    {"name": "pipe output is data", "debug": {"msg": "{{ lookup('pipe', 'cat payload.txt') }}"}},
    {"name": "pipe fails", "debug": {"msg": "{{ lookup('pipe', 'exit 3') }}"}, "ignore_errors": True},
    {"name": "fileglob", "debug": {"msg": "{{ query('fileglob', '*.txt') | map('basename') | sort }}"}},
    {"name": "fileglob dir", "debug": {"msg": "{{ query('fileglob', 'files/sub/*.txt') | map('basename') | list }}"}},
    {"name": "fileglob none", "debug": {"msg": "{{ query('fileglob', 'nothing/*.zip') }}"}},
    {"name": "fileglob loop", "debug": {"msg": "{{ item | basename }}"}, "loop": "{{ query('fileglob', '{d}/files/*.txt') | sort }}"},
    {"name": "fileglob filter", "debug": {"msg": "{{ '{d}/files/*' | fileglob | map('basename') | sort }}"}},
    {"name": "fileglob filter none", "debug": {"msg": "{{ '{d}/nothing/*.zip' | ansible.builtin.fileglob }}"}},
    {"name": "csvfile", "debug": {"msg": "{{ [lookup('csvfile', 'Smith file=people.csv delimiter=,'), "
                                         "lookup('csvfile', '\"The Rock\" Johnson', file='people.csv', delimiter=',', col=2), "
                                         "lookup('csvfile', 'x file=people.csv delimiter=,')] }}"}},
    {"name": "csvfile default", "debug": {"msg": "{{ query('csvfile', 'nope', file='people.csv', delimiter=',', default=['a', 'b']) }}"}},
    {"name": "registered seven", "command": "echo 7", "register": "seven"},
    # a call with literal terms beside host data (python_module_rlimit_nofile target)
    {"name": "pipe beside host data", "assert": {"that": ["seven.stdout | int == lookup('pipe', 'echo 7') | int"]}},
    {"name": "csvfile in assert", "assert": {"that": ["lookup('csvfile', 'Smith file=people.csv delimiter=, col=2') == '1'"]}},
    {"name": "csvfile bad col", "debug": {"msg": "{{ lookup('csvfile', 'Smith file=people.csv delimiter=, col=2,') }}"},
     "ignore_errors": True},
    {"name": "csvfile missing file", "debug": {"msg": "{{ lookup('csvfile', 'Smith file=nope.csv') }}"}, "ignore_errors": True},
    {"name": "first_found", "debug": {"msg": "{{ lookup('first_found', params) }}"}},
    {"name": "first_found list", "debug": {"msg": "{{ lookup('first_found', ['missing.txt', 'top.txt']) }}"}},
    {"name": "first_found kwargs", "debug": {"msg": "{{ lookup('first_found', files=['x', 'default.yml'], paths=['{d}/vars']) }}"}},
    {"name": "first_found skip", "debug": {"msg": "{{ query('first_found', {'files': ['nope'], 'skip': True}) }}"}},
    {"name": "first_found missing", "debug": {"msg": "{{ lookup('first_found', 'nope.txt') }}"}, "ignore_errors": True},
    {"name": "first_found src", "template": {"src": "{{ lookup('first_found', ['{d}/templates/x.j2', '{d}/templates/t.j2']) }}",
                                             "dest": "{d}/out.txt"}},
    {"name": "password seeded", "debug": {"msg": "{{ lookup('password', '/dev/null length=12 seed=rustle') }}"}},
    {"name": "password chars", "debug": {"msg": "{{ lookup('password', '/dev/null', length=8, seed='x', chars=['digits']) }}"}},
    {"name": "password file", "debug": {"msg": "{{ lookup('password', 'creds/pw seed=abc length=10') }}"}},
    {"name": "password file again", "debug": {"msg": "{{ lookup('password', 'creds/pw length=30') }}"}},
    # encrypt=: the hash of the stored password with the stored salt (passhash.py, passlib's strings)
    {"name": "password encrypt", "debug": {"msg": "{{ lookup('password', 'creds/enc encrypt=sha512_crypt') }}"}},
    {"name": "password encrypt new", "debug": {"msg": "{{ lookup('password', 'creds/new seed=s encrypt=md5_crypt')[:3] }}"}},
    # /dev/null stores nothing: each call is a new password, as Ansible makes one per call
    {"name": "password nowhere 1", "set_fact": {"newpass": "{{ lookup('password', '/dev/null') }}"}},
    {"name": "password nowhere 2", "set_fact": {"newpass2": "{{ lookup('password', '/dev/null') }}"}},
    {"name": "password nowhere loop", "debug": {"msg": "{{ lookup('password', '/dev/null encrypt=sha256_crypt') }}"},
     "loop": [1, 2, 3], "register": "nowhere"},
    {"name": "password nowhere differ", "assert": {"that": [
        "newpass != newpass2", "newpass | length == 20",
        "nowhere.results | map(attribute='msg') | unique | length == 3",
        "nowhere.results | map(attribute='msg') | select('match', '[$]5[$]rounds=535000[$]') | list | length == 3"]}},
    {"name": "password bad param", "debug": {"msg": "{{ lookup('password', '/dev/null nope=1') }}"}, "ignore_errors": True},
    {"name": "env via play var", "debug": {"msg": "{{ via_var }}"}},
    {"name": "env in when", "debug": {"msg": "yes"}, "when": "lookup('env', 'RUSTLE_CONTROLLER_VAR') == 'from the controller'"},
    {"name": "play hosts", "debug": {"msg": "{{ play_hosts }} {{ ansible_play_hosts_all }} {{ ansible_play_hosts }}"}},
    {"name": "omit", "file": {"path": "{d}/omitted", "state": "touch", "mode": "{{ omit }}"}},
]


def test_controller_lookups_match_ansible(tmp_path, monkeypatch):
    monkeypatch.setenv("RUSTLE_CONTROLLER_VAR", "from the controller")
    plays = [{"name": "lookups", "vars": {"params": PARAMS, "via_var": "{{ lookup('env', 'RUSTLE_CONTROLLER_VAR') | upper }}"}, "tasks": TASKS}]
    theirs, ours = compare_plays(tmp_path, plays, FILES)
    keys = ("changed", "failed", "msg")
    mismatched = {}
    for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False):
        got = fields(a, keys), fields(o, keys)
        if got[0]["failed"] and got[1]["failed"]:  # "The lookup plugin 'x' failed: ...", each task's wrapping
            got = tuple({**g, "msg": g["msg"].split("The lookup plugin ", 1)[-1]} for g in got)
        if name in ("first_found src", "password nowhere loop"):
            got = tuple({k: g[k] for k in ("changed", "failed")} for g in got)
        if got[0] != got[1]:
            mismatched[name] = got
    assert not mismatched, "\n".join(f"{n}:\n  {a}\n  {o}" for n, (a, o) in mismatched.items())
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    got = dict(ours[0])
    assert got["env"]["msg"] == "from the controller"
    assert got["pipe fails"]["failed"]
    # the stored password files are Ansible's format (the same seeded password on both sides):
    # ours on disk, ansible-playbook's as its recorded project directory holds it (tests/oracle.py)
    path = tmp_path / "o" / "proj" / "creds" / "pw"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert path.read_text() == got["password file"]["msg"] + "\n"
    assert theirs.tree["creds/pw"][1:3] == ["0o600", got["password file"]["msg"] + "\n"]
    assert (tmp_path / "o" / "proj" / "out.txt").read_text() == "t\n"
    assert got["pipe output is data"]["msg"] == "{{ lookup('pipe', 'touch PWNED') }}"
    assert not list(tmp_path.rglob("PWNED")) and not list(tmp_path.rglob("PWNED2"))
    assert got["csvfile"]["msg"] == ["Jane", "2", "{{ lookup('pipe'"]  # a file's text is data (cut at its comma)
    assert os.environ["RUSTLE_CONTROLLER_VAR"] == "from the controller"


def test_a_controller_lookup_over_host_data_fails_clearly(tmp_path):
    from .oracle import _write_project, run_ours

    d = tmp_path / "o" / "proj"
    _write_project(d, {})
    tasks = [{"name": "registered", "command": "echo HOME", "register": "r"},
             {"name": "env of host data", "debug": {"msg": "{{ lookup('env', r.stdout) }}"}, "ignore_errors": True}]
    ours = dict(run_ours(d, [{"name": "host data", "tasks": tasks}])[0])
    res = ours["env of host data"]
    assert res["status"] == "failed"
    assert "lookup('env') runs on the controller, and the controller could not resolve these terms" in res["msg"]
    assert "['HOME']" in res["msg"]
