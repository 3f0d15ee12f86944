"""copy, command, shell, lineinfile and wait_for details against ansible-core (issue 14)."""

from __future__ import annotations

import pytest

from .oracle import compare_plays, fields

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]

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
    # a timeout far above a task's cost under load (ansible-core's own took over 5 s at load 40),
    # far below the background job's: a shell that waited for it would time out
    {"name": "shell background returns", "shell": "sleep 30 &", "timeout": 15},
    {"name": "lineinfile empty regexp", "lineinfile": {"path": "{d}/lines", "regexp": "", "line": "x", "create": True}},
    {"name": "wait_for delay and timeout", "wait_for": {"delay": 2, "timeout": 2}},
    # a rewrite keeps the file's extended attributes (its POSIX ACL), as atomic_move's copystat
    # (the lineinfile target's acls.yml; without setfacl both sides fail the same)
    {"name": "acl file", "copy": {"content": "TEST", "dest": "{d}/acl.txt", "mode": "0644"}},
    {"name": "acl set", "shell": "setfacl -m nobody:rwx {d}/acl.txt", **IGN},
    {"name": "lineinfile keeps acls", "lineinfile": {"path": "{d}/acl.txt", "regexp": "TEST", "line": "UPDATE"}},
    {"name": "acl after lineinfile", "shell": "getfacl -c {d}/acl.txt", **IGN},
    # remote_src copies of a directory holding links (to a file, to a directory, broken) with
    # local_follow true, false and unset, into existing and new dests (the copy target's
    # testcase1_local_follow_*: a link copied as a link only with local_follow false)
    {"name": "remote tree", "shell": "mkdir -p {d}/rs/sub && echo 12 > {d}/rs/sub/f12 && echo 1 > {d}/rs/f1"
                                     " && ln -s sub/f12 {d}/rs/l12 && ln -s sub {d}/rs/lsub && ln -s nowhere {d}/rs/gone"
                                     " && mkdir {d}/lf_true {d}/lf_false {d}/lf_unset"},
    {"name": "remote dir follow", "copy": {"src": "{d}/rs/", "dest": "{d}/lf_true", "remote_src": True,
                                           "local_follow": True}, **IGN},
    {"name": "remote dir no follow", "copy": {"src": "{d}/rs/", "dest": "{d}/lf_false", "remote_src": True,
                                              "local_follow": False}, **IGN},
    {"name": "remote dir unset", "copy": {"src": "{d}/rs/", "dest": "{d}/lf_unset", "remote_src": True}, **IGN},
    {"name": "remote dir new dest", "copy": {"src": "{d}/rs", "dest": "{d}/fresh", "remote_src": True,
                                             "mode": "0750"}, **IGN},
    {"name": "remote dir new dest again", "copy": {"src": "{d}/rs", "dest": "{d}/fresh", "remote_src": True,
                                                   "mode": "0750"}, **IGN},
    {"name": "remote dir listing", "shell": "cd {d} && find lf_true lf_false lf_unset fresh -printf '%p %y %l %m\\n' | sort"},
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
        if name in ("lineinfile empty regexp", "acl file", "lineinfile keeps acls"):  # a diff even without --diff
            got = tuple({k: v for k, v in g.items() if k != "diff"} for g in got)
        if name == "shell background returns":
            got = tuple({k: g[k] for k in ("changed", "failed", "rc")} for g in got)
        if got[0] != got[1]:
            mismatched[name] = got
    assert not mismatched
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]


def _attrs_supported(d) -> bool:
    """chattr/lsattr work on the test's file system (Ansible's own target checks the same)."""
    import subprocess

    probe = d / "attr_probe"
    probe.write_text("")
    ok = subprocess.run(["chattr", "+A", str(probe)], capture_output=True).returncode == 0
    probe.unlink()
    return ok


FILE_TASKS = [
    {"name": "dir for hard", "file": {"path": "{d}/sub1", "state": "directory"}},
    {"name": "file to link", "copy": {"content": "x\n", "dest": "{d}/file_to_link"}},
    {"name": "hard into dir", "file": {"src": "{d}/file_to_link", "dest": "{d}/sub1", "state": "hard",
                                       "force": False}, **IGN},
    {"name": "hard into dir again", "file": {"src": "{d}/file_to_link", "dest": "{d}/sub1", "state": "hard"}},
    {"name": "hard missing src", "file": {"src": "no-such-file.txt", "dest": "{d}/hard.txt", "state": "hard"}, **IGN},
    {"name": "hard relative src", "file": {"src": "file_to_link", "dest": "{d}/hard2.txt", "state": "hard"}, **IGN},
    {"name": "hard no src on hard", "file": {"path": "{d}/file_to_link", "state": "hard"}},
    {"name": "check mode unknown owner", "file": {"path": "{d}/cm", "state": "touch",
                                                  "owner": "rustle_no_such_user", "group": "rustle_no_such_group"},
     "check_mode": True},
    {"name": "check mode unknown uid", "file": {"path": "{d}/cm", "state": "directory", "owner": "54321"},
     "check_mode": True},
    {"name": "follow top", "file": {"path": "{d}/rec", "state": "directory", "mode": "0755"}},
    {"name": "follow target file", "file": {"path": "{d}/rec_target_file", "state": "touch", "mode": "0700"}},
    {"name": "follow target dir", "file": {"path": "{d}/rec_target_dir", "state": "directory", "mode": "0700"}},
    {"name": "follow file in dir", "file": {"path": "{d}/rec_target_dir/foo", "state": "touch", "mode": "0700"}},
    {"name": "follow link file", "file": {"path": "{d}/rec/test_link", "state": "link", "src": "../rec_target_file"}},
    {"name": "follow link dir", "file": {"path": "{d}/rec/test_link_dir", "state": "link", "src": "../rec_target_dir"}},
    {"name": "follow dangling", "file": {"path": "{d}/rec/nonexistent", "state": "link", "src": "does_not_exist",
                                         "force": True}},
    {"name": "recurse no follow", "file": {"path": "{d}/rec", "follow": False, "mode": "a-x", "recurse": True}},
    {"name": "stat after no follow", "stat": {"path": "{d}/rec_target_dir/foo"}},
    {"name": "recurse follow", "file": {"path": "{d}/rec", "follow": True, "mode": "a-x", "recurse": True}},
    {"name": "stat target file", "stat": {"path": "{d}/rec_target_file"}},
    {"name": "stat target dir", "stat": {"path": "{d}/rec_target_dir"}},
    {"name": "stat file in dir", "stat": {"path": "{d}/rec_target_dir/foo"}},
    {"name": "colon file", "copy": {"content": "plain text\n", "dest": "{d}/a:b.txt"}},
    {"name": "stat colon", "stat": {"path": "{d}/a:b.txt"}},
    {"name": "stat no attributes", "stat": {"path": "{d}/a:b.txt", "get_attributes": False}},
]

ATTR_TASKS = [
    {"name": "attr file", "file": {"path": "{d}/attr.txt", "state": "touch"}},
    {"name": "attr set A", "file": {"path": "{d}/attr.txt", "attributes": "A"}, "diff": True},
    {"name": "attr add A", "file": {"path": "{d}/attr.txt", "attributes": "+A"}},
    {"name": "attr stat", "stat": {"path": "{d}/attr.txt"}},
    {"name": "attr remove A", "file": {"path": "{d}/attr.txt", "attributes": "-A"}},
    {"name": "attr remove A again", "file": {"path": "{d}/attr.txt", "attributes": "-A"}},
    {"name": "attr empty", "file": {"path": "{d}/attr.txt", "attributes": ""}},
    {"name": "attr copy", "copy": {"content": "c\n", "dest": "{d}/attr2.txt", "attributes": "+A"}},
    {"name": "attr copy again", "copy": {"content": "c\n", "dest": "{d}/attr2.txt", "attributes": "+A"}},
    {"name": "attr stat copy", "stat": {"path": "{d}/attr2.txt"}},
    {"name": "attr check mode", "file": {"path": "{d}/attr2.txt", "attributes": "-A"}, "check_mode": True},
]


def test_file_and_stat_details_match_ansible(tmp_path):
    from .oracle import jtree

    tmp_path.mkdir(exist_ok=True)
    tasks = FILE_TASKS + (ATTR_TASKS if _attrs_supported(tmp_path) else [])
    by_name = {t["name"]: t for t in tasks}
    theirs, ours = compare_plays(tmp_path, [{"name": "files", "tasks": tasks}])
    keys = ("changed", "failed", "msg", "src", "dest", "path", "warnings", "diff", "mode")
    stat_keys = ("exists", "mode", "mimetype", "charset", "attributes", "attr_flags", "isreg")
    mismatched = {}
    for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False):
        task = by_name[name]
        # Ansible's copy reports its temporary copy as src; a diff only where asked for
        drop = ("src",) * ("copy" in task) + ("diff",) * ("diff" not in task)
        got = tuple({k: v for k, v in fields(r, keys).items() if k not in drop} for r in (a, o))
        if "stat" in a:
            got = ({**got[0], **fields(a["stat"], stat_keys), "version": type(a["stat"].get("version")).__name__},
                   {**got[1], **fields(o.get("stat") or {}, stat_keys),
                    "version": type((o.get("stat") or {}).get("version")).__name__})
        if got[0] != got[1]:
            mismatched[name] = got
    assert not mismatched, "\n".join(f"{n}:\n  {a}\n  {o}" for n, (a, o) in mismatched.items())
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    assert jtree(tmp_path / "o" / "proj") == theirs.tree


def test_wait_for_drained_matches_ansible(tmp_path):
    import socket
    from contextlib import ExitStack

    with ExitStack() as stack:
        busy, idle = (stack.enter_context(socket.socket()) for _ in range(2))
        for server in (busy, idle):
            server.bind(("127.0.0.1", 0))
            server.listen()
        client = stack.enter_context(socket.create_connection(busy.getsockname()))
        stack.enter_context(busy.accept()[0])
        assert client.fileno() >= 0
        p_busy, p_idle = busy.getsockname()[1], idle.getsockname()[1]
        tasks = [
            {"name": "drained idle", "wait_for": {"port": p_idle, "state": "drained", "timeout": 5}},
            {"name": "drained busy", "wait_for": {"port": p_busy, "state": "drained", "timeout": 1}, **IGN},
            {"name": "drained busy msg", "wait_for": {"port": p_busy, "state": "drained", "timeout": 1,
                                                      "msg": "still busy"}, **IGN},
            {"name": "drained excluded", "wait_for": {"port": p_busy, "state": "drained", "timeout": 5,
                                                      "exclude_hosts": ["127.0.0.1"]}},
            {"name": "drained other states", "wait_for": {"port": p_busy, "state": "drained", "timeout": 5,
                                                          "active_connection_states": ["TIME_WAIT"]}},
            {"name": "exclude without drained", "wait_for": {"port": p_idle, "exclude_hosts": ["x"]}, **IGN},
            {"name": "unknown connection state", "wait_for": {"port": p_idle, "state": "drained",
                                                              "active_connection_states": ["BOGUS"]}, **IGN},
            # a success reports every parameter it waited on and the match (wait_for target)
            {"name": "port started", "wait_for": {"port": p_idle, "timeout": 5}},
            {"name": "keyword in file", "wait_for": {"path": "{d}/log", "search_regex": r"completed (?P<how>\w+)"}},
            {"name": "keyword without groups", "wait_for": {"path": "{d}/log", "search_regex": "completed"}},
            {"name": "file present", "wait_for": {"path": "{d}/log"}},
            {"name": "file absent", "wait_for": {"path": "{d}/nothing", "state": "absent"}},
        ]
        # live: the ports are free ones, new each run (tests/oracle.py keys by every input)
        theirs, ours = compare_plays(tmp_path, [{"name": "drained", "tasks": tasks}], {"log": "run completed fine\n"},
                                     record=False)
    keys = ("changed", "failed", "msg", "port", "state", "search_regex", "match_groups", "match_groupdict", "path")
    mismatched = {name: (fields(a, keys), fields(o, keys))
                  for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False)
                  if fields(a, keys) != fields(o, keys)}
    assert not mismatched, "\n".join(f"{n}:\n  {a}\n  {o}" for n, (a, o) in mismatched.items())
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    assert dict(ours[0])["drained busy"]["failed"]


def test_fips_fact_matches_ansible(tmp_path):
    tasks = [{"name": "setup", "setup": {"gather_subset": ["!all", "!min", "fips"]}},
             {"name": "fips", "debug": {"msg": "{{ ansible_fips }} {{ ansible_facts.fips }}"}}]
    theirs, ours = compare_plays(tmp_path, [{"name": "facts", "tasks": tasks}])
    assert dict(ours[0])["fips"]["msg"] == dict(theirs[0])["fips"]["msg"]
    assert dict(ours[0])["fips"]["msg"] in ("False False", "True True")


def test_local_facts_match_ansible(tmp_path):
    """setup's fact_path: JSON, INI, an executable fact, a failing one, a bad one, a dangling link."""
    files = {"facts.d/prefs.fact": "[general]\nbar=loaded\n", "facts.d/data.fact": '{"a": [1, 2]}\n',
             "facts.d/good.fact": "#!/bin/sh\necho '{\"script_ran\": true}'\n",
             "facts.d/bad_script.fact": "#!/bin/sh\necho oops >&2\nexit 3\n",
             "facts.d/bad.fact": "[section\nnope\n", "facts.d/notes.txt": "not a fact\n"}
    tasks = [
        {"name": "modes", "file": {"path": "{d}/facts.d/{{ item }}.fact", "mode": "0755"},
         "loop": ["good", "bad_script"]},
        {"name": "dangling", "file": {"path": "{d}/facts.d/dead.fact", "src": "{d}/nowhere", "state": "link",
                                      "force": True}},
        {"name": "setup", "setup": {"fact_path": "{d}/facts.d", "filter": "ansible_local"}, "register": "s"},
        {"name": "local", "debug": {"msg": "{{ ansible_local | to_json }} {{ s.ansible_facts.keys() | list }}"}},
        {"name": "none", "setup": {"fact_path": "{d}/no-such-dir", "filter": "ansible_local"}, "register": "n"},
        {"name": "empty", "debug": {"msg": "{{ n.ansible_facts }}"}},
    ]
    theirs, ours = compare_plays(tmp_path, [{"name": "facts", "tasks": tasks}], files)
    keys = ("changed", "failed", "msg", "warnings")
    mismatched = {n: (fields(a, keys), fields(o, keys)) for (n, a), (_, o) in zip(theirs[0], ours[0], strict=True)
                  if fields(a, keys) != fields(o, keys)}
    assert not mismatched, "\n".join(f"{n}:\n  {a}\n  {o}" for n, (a, o) in mismatched.items())
    assert '"general": {"bar": "loaded"}' in dict(ours[0])["local"]["msg"]


SUBSETS = {"selinux only": ["!all", "!min", "selinux"], "min": ["!all"], "hardware": ["!all", "!min", "hardware"],
           "network": ["!all", "!min", "network"], "any is no name": ["!all", "!any", "selinux"],
           "fine-grained": ["!all", "!min", "kernel", "os_family", "user_id"], "comma string": "!all,!min,python"}


def test_setup_gather_subset_selects_the_facts_ansible_does(tmp_path):
    """For each gather_subset, every fact setup returns is one ansible-core returns for it too (the
    runtime gathers fewer kinds: docs/runtime.md lists them); selinux facts, the metadata facts
    and a bad subset's message are equal."""
    tasks = []
    for name, subset in SUBSETS.items():
        tasks += [{"name": name, "setup": {"gather_subset": subset}, "register": "r"},
                  {"name": "keys " + name, "debug": {"msg": "{{ r.ansible_facts.keys() | sort | join(' ') }}"}},
                  {"name": "subset " + name, "debug": {"msg": "{{ r.ansible_facts.gather_subset }}"}}]
    tasks += [{"name": "bad subset", "setup": {"gather_subset": ["bogus"]}, **IGN},
              {"name": "bad timeout", "setup": {"gather_timeout": "soon"}, **IGN},
              {"name": "selinux", "setup": {"gather_subset": ["!all", "!min", "selinux"]}, "register": "s"},
              {"name": "selinux facts", "debug": {"msg": "{{ s.ansible_facts | to_json }}"}}]
    theirs, ours = compare_plays(tmp_path, [{"name": "setup", "tasks": tasks}])
    a, o = dict(theirs[0]), dict(ours[0])
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    keys = {}
    for name in SUBSETS:
        mine, oracle = set(o["keys " + name]["msg"].split()), set(a["keys " + name]["msg"].split())
        assert mine <= oracle, (name, sorted(mine - oracle))
        assert o["subset " + name]["msg"] == a["subset " + name]["msg"]
        keys[name] = mine
    # the platform collector's facts come with hardware and network, not with selinux alone
    assert "ansible_kernel" in keys["hardware"] and "ansible_kernel" not in keys["selinux only"]
    assert "ansible_distribution" in keys["network"] and "ansible_distribution" not in keys["hardware"]
    assert "ansible_user_id" in keys["fine-grained"] and "ansible_python" not in keys["fine-grained"]
    assert keys["selinux only"] == {"ansible_selinux", "ansible_selinux_python_present", "gather_subset",
                                    "module_setup"}
    assert fields(o["bad subset"], ("failed", "msg")) == fields(a["bad subset"], ("failed", "msg"))
    assert o["bad timeout"]["failed"] and a["bad timeout"]["failed"]
    assert o["selinux facts"]["msg"] == a["selinux facts"]["msg"]
    assert '"ansible_selinux": {"status": ' in o["selinux facts"]["msg"]
