"""Differential test of the module bridge over collections from PyPI: ansible.posix and
community.general (from the ``ansible`` package, fetched once in set-up: ``pypi_collections``),
the same playbook run by ansible-playbook and by rustle-deploy on copies of the same targets.

Every task registers its result and a last task writes them all as JSON; the two files are
compared task by task after test_differential's normalisation (the target root, times and
inodes, random names, ``invocation``). The collections are found each way Ansible finds them:
``ANSIBLE_COLLECTIONS_PATH`` and ansible.cfg's ``collections_path``; FQCNs, short names under a
play's ``collections:`` keyword, and short names ansible-core redirects (``ini_file``,
``authorized_key``, ``sysctl``, ``mount``).

``sysctl`` and ``mount`` with ``state: mounted`` change the kernel's state: both tools run them
inside a private network and mount namespace (``unshare -n -m``), so the machine is untouched
(checked after). Not covered, and why: ``timezone`` (sets the machine's clock zone: no path
option), ``modprobe`` (loads kernel modules), ``ufw`` (the machine's firewall), ``locale_gen``
(edits /etc/locale.gen and generates locales), ``alternatives`` (writes /etc/alternatives),
``xml`` (needs lxml, not installed). ``patch`` is an action plugin of ansible.posix: it runs on
the controller with ansible-core (checked below); ``synchronize`` is compared over the real sshd
(tests/integration/test_action_phase_ssh.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..conftest import ORACLE_TIMEOUT
from .conftest import BridgeRun
from .test_differential import KEY, _normal, _subst, web  # noqa: F401  (web: the HTTP server fixture)

pytestmark = [pytest.mark.ansible, pytest.mark.collections]

UNSHARE = shutil.which("unshare")
BIN = Path(sys.executable).parent


def _cases(port: int) -> list[dict[str, Any]]:
    """Tasks over the target root ``{T}``, run in the machine's namespaces."""
    check = {"check_mode": True}
    acl = "ansible.posix.acl"
    return [
        {"module": "ini_file", "args": {"path": "{T}/app.ini", "section": "main", "option": "level", "value": "1"}},
        {"module": "ini_file", "args": {"path": "{T}/app.ini", "section": "main", "option": "level", "value": "1"}},
        {"module": "community.general.ini_file",
         "args": {"path": "{T}/app.ini", "section": "main", "option": "level", "value": "2"}, **check},
        {"module": "community.general.ini_file",
         "args": {"path": "{T}/app.ini", "section": "other", "option": "x", "value": "y", "create": False}},
        {"module": "pam_limits", "args": {"domain": "*", "limit_type": "soft", "limit_item": "nofile",
                                          "value": "4096", "dest": "{T}/limits.conf"}},
        {"module": "pam_limits", "args": {"domain": "*", "limit_type": "soft", "limit_item": "nofile",
                                          "value": "4096", "dest": "{T}/limits.conf"}},
        {"module": "kernel_blacklist", "args": {"name": "rustle_dummy", "blacklist_file": "{T}/blacklist.conf"}},
        {"module": "kernel_blacklist", "args": {"name": "rustle_dummy", "state": "absent",
                                                "blacklist_file": "{T}/blacklist.conf"}, **check},
        {"module": "archive", "args": {"path": ["{T}/data/a.txt", "{T}/data/b.log"], "dest": "{T}/data.zip",
                                       "format": "zip"}},
        {"module": "archive", "args": {"path": "{T}/nope/*", "dest": "{T}/none.tgz"}},
        {"module": "filesize", "args": {"path": "{T}/blob", "size": "10KB"}},
        {"module": "filesize", "args": {"path": "{T}/blob", "size": "10KB"}},
        {"module": "read_csv", "args": {"path": "{T}/users.csv", "key": "name"}},
        {"module": "read_csv", "args": {"path": "{T}/nope.csv"}},
        {"module": "make", "args": {"chdir": "{T}/mk", "target": "out.txt"}},
        {"module": "make", "args": {"chdir": "{T}/mk", "target": "out.txt"}},
        {"module": "git_config", "args": {"scope": "file", "file": "{T}/gitconfig", "name": "user.name",
                                          "value": "rustle"}},
        {"module": "git_config", "args": {"scope": "file", "file": "{T}/gitconfig", "name": "user.name"}},
        {"module": "cronvar", "args": {"name": "RUSTLE", "value": "yes", "cron_file": "{T}/cronvars"}},
        {"module": "cronvar", "args": {"name": "RUSTLE", "value": "yes", "cron_file": "{T}/cronvars"}},
        {"module": "python_requirements_info", "args": {"dependencies": ["pyyaml", "jinja2>=2", "no-such-pkg"]}},
        {"module": "authorized_key", "args": {"user": "root", "key": KEY.split(" ", 1)[1], "path": "{T}/ak",
                                              "manage_dir": False}},
        {"module": "authorized_key", "args": {"user": "root", "key": KEY.split(" ", 1)[1], "path": "{T}/ak",
                                              "manage_dir": False}},
        {"module": "ansible.posix.authorized_key", "args": {"user": "root", "key": KEY.split(" ", 1)[1],
                                                            "path": "{T}/ak", "manage_dir": False,
                                                            "state": "absent"}, **check},
        {"module": acl, "args": {"path": "{T}/data/a.txt", "entity": "nobody", "etype": "user",
                                 "permissions": "r", "state": "present"}},
        {"module": acl, "args": {"path": "{T}/data/a.txt", "entity": "nobody", "etype": "user",
                                 "permissions": "r", "state": "present"}},
        {"module": acl, "args": {"path": "{T}/data/a.txt", "state": "query"}},
        {"module": "ansible.posix.mount", "args": {"path": "{T}/mnt", "src": "tmpfs", "fstype": "tmpfs",
                                                   "state": "present", "fstab": "{T}/fstab"}},
        {"module": "ansible.builtin.get_url", "args": {"url": f"http://127.0.0.1:{port}/index.json",
                                                       "dest": "{T}/index.json"}},
        {"module": "ansible.builtin.get_url", "args": {"url": f"http://127.0.0.1:{port}/index.json",
                                                       "dest": "{T}/index.json"}},
    ]


def _private_cases() -> list[dict[str, Any]]:
    """Tasks that change the kernel's state: run in a private network and mount namespace."""
    mnt = {"path": "{T}/mnt", "src": "tmpfs", "fstype": "tmpfs", "opts": "size=1m", "fstab": "{T}/fstab"}
    return [
        {"module": "sysctl", "args": {"name": "net.ipv4.ip_forward", "value": "1", "sysctl_file": "{T}/sysctl.conf"}},
        {"module": "sysctl", "args": {"name": "net.ipv4.ip_forward", "value": "1", "sysctl_file": "{T}/sysctl.conf"}},
        {"module": "ansible.posix.sysctl", "args": {"name": "net.ipv4.ip_forward", "value": "0",
                                                    "sysctl_file": "{T}/sysctl.conf"}, "check_mode": True},
        {"module": "mount", "args": {**mnt, "state": "mounted"}},
        {"module": "mount", "args": {**mnt, "state": "mounted"}},
        {"module": "ansible.posix.mount", "args": {**mnt, "state": "absent"}},
    ]


def _tree(root: Path) -> None:
    """The target tree, identical for both tools (contents and modification times)."""
    files = {"data/a.txt": "hello\n", "data/b.log": "world\n", "users.csv": "name,uid\nann,1\nbob,2\n",
             "mk/Makefile": "out.txt:\n\techo made > out.txt\n", "limits.conf": "", "ak": ""}
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
        os.utime(path, (1_700_000_000, 1_700_000_000))
    (root / "mnt").mkdir()
    for d in ("data", "mk", "mnt"):
        os.utime(root / d, (1_700_000_000, 1_700_000_000))


def _playbook(work: Path, cases: list[dict[str, Any]], root: Path) -> Path:
    """site.yml: one play with ``collections: [community.general]``, every case registered and
    ignored on failure, then the results written as JSON to work/results.json."""
    tasks = []
    for i, case in enumerate(cases):
        task = {"name": f"t{i:02d} {case['module']}", case["module"]: _subst(case["args"], root),
                "register": f"r{i}", "ignore_errors": True}
        if case.get("check_mode"):
            task["check_mode"] = True
        tasks.append(task)
    names = ", ".join(f"'r{i}': r{i}" for i in range(len(cases)))
    tasks.append({"name": "write results",
                  "copy": {"dest": str(work / "results.json"), "content": "{{ {" + names + "} | to_json }}"}})
    play = [{"hosts": "localhost", "gather_facts": False, "collections": ["community.general"], "tasks": tasks}]
    (work / "site.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    return work / "site.yml"


def _env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_HOME=str(work / "ahome"), ANSIBLE_LOCAL_TEMP=str(work / "atmp"),
               ANSIBLE_REMOTE_TEMP=str(work / "rtmp"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_RETRY_FILES_ENABLED="0",
               PATH=os.environ.get("PATH", "") if os.environ.get("PATH", "").startswith(f"{BIN}:")
               else f"{BIN}:{os.environ.get('PATH', '')}")
    return env


# volatile beyond test_differential's: dd's timing (filesize), the temporary file a download
# went through (get_url: Ansible's remote tmp, the bridge's per-task tmpdir), and the module's
# own import root (python_requirements_info: AnsiballZ's payload zip, the artifact's bridge/lib)
_DD = re.compile(r"copied, [0-9.e+-]+ s, [0-9.,]+ [kMGT]?B/s")
_TMP = re.compile(r"/\S*/ansible-tmp-[^/]+/tmp\w+$")


def _volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _volatile(v) for k, v in value.items() if k != "python_system_path"}
    if isinstance(value, list):
        return [_volatile(v) for v in value]
    if isinstance(value, str):
        return _TMP.sub("TMP", _DD.sub("copied, TIME", value))
    return value


def _compare(cases: list[dict[str, Any]], results: dict[str, dict[str, Any]]) -> None:
    mismatches = []
    for i, case in enumerate(cases):
        a, r = _volatile(results["ansible"][f"r{i}"]), _volatile(results["rustle"][f"r{i}"])
        if a != r:
            mismatches.append(f"r{i} {case['module']}:\n  ansible: {json.dumps(a, sort_keys=True)[:1500]}\n"
                              f"  rustle:  {json.dumps(r, sort_keys=True)[:1500]}")
    assert not mismatches, "\n".join(mismatches)


def test_collection_modules_give_ansibles_results(tmp_path: Path, bridge: BridgeRun, web: int,  # noqa: F811
                                                  pypi_collections: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cases = _cases(web)
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(pypi_collections))
    monkeypatch.setenv("PATH", _env(tmp_path)["PATH"])  # the modules of both tools see the same PATH
    results = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        root = work / "target"
        _tree(root)
        site = _playbook(work, cases, root)
        if tool == "ansible":
            env = dict(_env(work), ANSIBLE_COLLECTIONS_PATH=str(pypi_collections))
            proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                                   "-e", f"ansible_python_interpreter={sys.executable}", str(site)],
                                  cwd=work, env=env, capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        else:
            monkeypatch.setenv("RUSTLE_BRIDGE_MODULES", "get_url")
            events = bridge.run(site)
            assert not [n for n, e in events.items() if not e.get("bridge") and n != "write results"], events
            assert events["t00 ini_file"]["bridge"] == "community.general.ini_file"
            assert events["t04 pam_limits"]["bridge"] == "community.general.pam_limits"  # through collections:
            assert events["t21 authorized_key"]["bridge"] == "ansible.posix.authorized_key"
        raw = json.loads((work / "results.json").read_text())
        results[tool] = {k: _normal(v, root) for k, v in raw.items()}
    _compare(cases, results)
    modules = {c["module"].rsplit(".", 1)[-1] for c in cases + _private_cases()}
    assert len(modules) >= 15, sorted(modules)  # with test_differential's 28 ansible.builtin ones: 43
    for rel in ("app.ini", "limits.conf", "blacklist.conf", "gitconfig", "ak", "fstab", "mk/out.txt",
                "index.json"):
        a, r = (tmp_path / tool / "target" / rel for tool in ("ansible", "rustle"))
        assert a.read_text().replace(str(a.parents[rel.count("/")]), "{T}") == (
            r.read_text().replace(str(r.parents[rel.count("/")]), "{T}")), rel
    assert os.path.getsize(tmp_path / "rustle" / "target" / "blob") == 10_000
    assert (tmp_path / "ansible" / "target" / "fstab").read_text().split() == (
        f"tmpfs {tmp_path / 'ansible' / 'target' / 'mnt'} tmpfs defaults 0 0".split())


@pytest.mark.skipif(UNSHARE is None or os.geteuid() != 0, reason="needs unshare(1) and root for private namespaces")
def test_sysctl_and_mount_in_private_namespaces_give_ansibles_results(
        tmp_path: Path, rustle_home: Path, pypi_collections: Path) -> None:
    cases = _private_cases()
    forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    results = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        root = work / "target"
        _tree(root)
        _playbook(work, cases, root)
        # found through ansible.cfg's collections_path this time (both tools read ./ansible.cfg)
        (work / "ansible.cfg").write_text(f"[defaults]\ncollections_path = {pypi_collections}\n")
        (work / "inventory").write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"
                                        f" rustle_remote_dir={work / 'remote'}\n")
        argv = ([str(BIN / "ansible-playbook"), "-i", "inventory", "site.yml"] if tool == "ansible" else
                [str(BIN / "rustle-deploy"), "site.yml", "-i", "inventory", "--run", "--output", "json"])
        proc = subprocess.run([str(UNSHARE), "--net", "--mount", "--propagation", "private", *argv],
                              cwd=work, env=_env(work), capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        raw = json.loads((work / "results.json").read_text())
        results[tool] = {k: _normal(v, root) for k, v in raw.items()}
        assert not os.path.ismount(root / "mnt")  # mounted only inside the namespace
    _compare(cases, results)
    r = results["rustle"]
    assert r["r0"]["changed"] is True and r["r1"]["changed"] is False and r["r3"]["changed"] is True
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == forward  # the machine is untouched
    assert (tmp_path / "rustle" / "target" / "sysctl.conf").read_text() == "net.ipv4.ip_forward=1\n"


# Known defect (session 13): the bridge now registers an action plugin's deprecations with its
# result, as ansible-core does, but also the one the plugin's import raises ("Importing
# '_AnsibleAction...'"), which ansible-core does not register (not verified why: likely the plugin is
# imported before the worker's capture starts). When fixed, this passes, and strict xfail fails.
@pytest.mark.xfail(strict=True, reason="bridge registers an action plugin's import-time deprecation")
def test_a_collections_action_plugin_runs_on_the_controller_as_in_ansible(
        tmp_path: Path, bridge: BridgeRun, pypi_collections: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ansible.posix.patch: its action plugin finds the patch in files/ on the controller and runs
    # the module on the host; rustle-deploy runs that action with ansible-core (a controller phase)
    monkeypatch.setenv("ANSIBLE_COLLECTIONS_PATH", str(pypi_collections))
    monkeypatch.setenv("PATH", _env(tmp_path)["PATH"])
    results = {}
    for tool in ("ansible", "rustle"):
        work = tmp_path / tool
        (work / "files").mkdir(parents=True)
        (work / "target.txt").write_text("one\ntwo\n")
        (work / "files" / "x.patch").write_text("--- a/target.txt\n+++ b/target.txt\n@@ -1,2 +1,2 @@\n one\n-two\n+TWO\n")
        tasks = [{"name": f"apply {i}", "ansible.posix.patch": {"src": "x.patch", "dest": str(work / "target.txt")},
                  "register": f"r{i}"} for i in range(2)]
        tasks.append({"copy": {"content": "{{ {'r0': r0, 'r1': r1} | to_json }}", "dest": str(work / "results.json")}})
        site = work / "site.yml"
        site.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
        if tool == "ansible":
            proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                                   "-e", f"ansible_python_interpreter={sys.executable}", str(site)],
                                  cwd=work, env=dict(_env(work), ANSIBLE_COLLECTIONS_PATH=str(pypi_collections)),
                                  capture_output=True, text=True, timeout=ORACLE_TIMEOUT)
            assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        else:
            code, _, err = bridge.main(str(site), "-i", str(bridge.inventory(ansible_python_interpreter=sys.executable)),
                                       "--run")
            assert code == 0, err
        assert (work / "target.txt").read_text() == "one\nTWO\n"
        results[tool] = json.loads((work / "results.json").read_text())
    for i, changed in ((0, True), (1, False)):
        a, r = (_volatile(results[tool][f"r{i}"]) for tool in ("ansible", "rustle"))
        assert a["changed"] is r["changed"] is changed, (a, r)
        assert {k: v for k, v in a.items() if k != "invocation"} == \
            {k: v for k, v in r.items() if k != "invocation"}, (a, r)
