"""Several inventory sources (repeated ``-i``) against ansible-core's ``ansible-inventory``.

The sources are read in order into one inventory: hosts and groups united, a later source's
inline variables winning, each source's own ``group_vars/``/``host_vars/`` read beside it (a
later source's files winning whatever the groups' depth), host lists and directories as
sources. ``to_ansible_json()`` must print exactly what ``ansible-inventory -i A -i B --list``
prints. The oracle runs once for the module, its cases in parallel (about 2 s of CPU each).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory import absolute_sources, inventory_sources, load_inventory

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.ansible

# name -> the files of one tree; the cases below name sources inside it
TREE = {
    "a/hosts.ini": "h1 x=a1 only_a=1\n[web]\nh1\nh2 y=a2\n[web:vars]\ngv=a_web\n[db]\nh3\n"
                   "[zz]\nh1\n[zz:vars]\nshared=a_zz\n",
    "a/group_vars/all.yml": "gall: a\nfromall_a: 1\n",
    "a/group_vars/web.yml": "gw: a\norder: a_web\n",
    "a/group_vars/db.yml": "gdb: a\n",
    "a/host_vars/h2.yml": "hv: a\n",
    # a YAML source: h1 again (its x replaced), a new host in web, vars for db
    "b/hosts.yml": "all:\n  hosts:\n    h1: {x: b1}\n  children:\n    web:\n      hosts:\n        h4: {}\n"
                   "      vars: {gv: b_web}\n    db:\n      vars: {dbv: b}\n    zz:\n      hosts:\n"
                   "        h4: {}\n",
    "b/group_vars/all.yml": "gall: b\n",
    # 'zz' sorts after 'web' (same depth): in one source its file would win; across
    # sources, the later source's 'web' file wins over the earlier source's 'zz'
    "b/group_vars/web.yml": "order: b_web\n",
    "b/group_vars/db.yml": "gdb: b\ngw: b\n",
    "b/host_vars/h1.yml": "hv: b\n",
    "a/group_vars/zz.yml": "order: a_zz\n",
    # a directory source of two files, with its own group_vars
    "c/10-first.ini": "[app]\nh5 z=c1\n[web]\nh2 y=c2\n",
    "c/20-second.yml": "app:\n  hosts:\n    h6: {}\n  vars: {appv: c}\n",
    "c/group_vars/app.yml": "appfile: c\n",
}

CASES = {
    "ini+yaml": ["a/hosts.ini", "b/hosts.yml"],
    "yaml+ini": ["b/hosts.yml", "a/hosts.ini"],
    "ini+dir+hostlist": ["a/hosts.ini", "c", "z1,z2:2222,h1,"],
    "hostlist+yaml": ["h4,z9,", "b/hosts.yml"],
    "three": ["c", "b/hosts.yml", "a/hosts.ini"],
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sources")
    for name, text in TREE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _sources(root: Path, names: list[str]) -> list[str]:
    return [n if "," in n else str(root / n) for n in names]


@pytest.fixture(scope="module")
def oracle(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    home = tmp_path_factory.mktemp("ansible-home")
    (home / "ansible.cfg").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(home / "ansible.cfg"), ANSIBLE_HOME=str(home / ".ansible"),
               ANSIBLE_LOCAL_TEMP=str(home / "tmp"), ANSIBLE_NOCOLOR="1", HOME=str(home),
               ANSIBLE_DEPRECATION_WARNINGS="False", ANSIBLE_INVENTORY_UNPARSED_FAILED="True",
               ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED="True")

    def run(names: list[str]) -> subprocess.CompletedProcess[str]:
        args = [a for s in _sources(tree, names) for a in ("-i", s)]
        return subprocess.run([str(BIN / "ansible-inventory"), *args, "--list"], capture_output=True,
                              text=True, cwd=home, env=env, timeout=300, check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = {case: pool.submit(run, names) for case, names in CASES.items()}
        return {case: job.result() for case, job in jobs.items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_several_sources_list_as_ansible_inventory_lists_them(
        case: str, tree: Path, oracle: dict[str, subprocess.CompletedProcess[str]]) -> None:
    theirs = oracle[case]
    assert theirs.returncode == 0, theirs.stderr
    ours = load_inventory(_sources(tree, CASES[case]))
    assert ours.to_ansible_json() + "\n" == theirs.stdout


def test_the_merge_is_the_one_the_oracle_checks(tree: Path) -> None:
    """What the cases above pin, spelled out (so a wrong oracle run cannot pass unnoticed)."""
    inv = load_inventory(_sources(tree, CASES["ini+yaml"]))
    h1, h2, h3 = inv.hosts["h1"].vars, inv.hosts["h2"].vars, inv.hosts["h3"].vars
    assert (h1["x"], h1["only_a"], h1["hv"], h1["gall"], h1["gv"]) == ("b1", 1, "b", "b", "b_web")
    assert h1["order"] == "b_web"  # b's group_vars/web outranks a's group_vars/zz
    assert (h2["hv"], h3["gdb"], h3["gw"]) == ("a", "b", "b")
    assert list(inv.select("web")) == [inv.hosts[n] for n in ("h1", "h2", "h4")]
    assert inv.sources == tuple(_sources(tree, CASES["ini+yaml"]))


def test_each_host_knows_the_source_that_named_it_first(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``inventory_file``/``inventory_dir`` as ansible-playbook 2.19 gives them (checked by hand;
    test_cli's several-sources case compares them with its run): the first source that named the
    host, absolute and normalised with symbolic links kept, a directory source's own file, a host
    list as given with the directory "None" (ansible-core's basedir of a non-path)."""
    (tree / "link").mkdir(exist_ok=True)
    if not (tree / "link" / "a").exists():
        (tree / "link" / "a").symlink_to(tree / "a")
    monkeypatch.chdir(tree / "link")
    inv = load_inventory(["a/../a/hosts.ini", str(tree / "c"), "z1,z2:2222,h1,"])
    where = {n: (h.inventory_file, h.inventory_dir) for n, h in inv.hosts.items()}
    assert where["h1"] == where["h2"] == (str(tree / "link/a/hosts.ini"), str(tree / "link/a"))
    assert where["h5"] == (str(tree / "c/10-first.ini"), str(tree / "c"))
    assert where["h6"] == (str(tree / "c/20-second.yml"), str(tree / "c"))
    assert where["z1"] == ("z1,z2:2222,h1,", "None")
    assert "inventory_dir" not in inv.hosts["h1"].vars  # not an inventory variable (ansible-inventory)


def test_one_source_is_read_as_before(tree: Path) -> None:
    one = load_inventory(str(tree / "a/hosts.ini"))
    assert one.to_ansible_json() == load_inventory([str(tree / "a/hosts.ini")]).to_ansible_json()
    assert one.source == str(tree / "a/hosts.ini") and "h4" not in one.hosts


def test_a_missing_source_among_several_is_named(tree: Path) -> None:
    with pytest.raises(InventoryError) as err:
        load_inventory([str(tree / "a/hosts.ini"), str(tree / "nope.ini")])
    assert str(tree / "nope.ini") in str(err.value) and "no such inventory file" in str(err.value)


def test_records_keep_sources_absolute_and_read_old_ones(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    assert absolute_sources(["a/hosts.ini", "c", "x,y,"]) == [str(tree / "a/hosts.ini"), str(tree / "c"), "x,y,"]
    assert inventory_sources("/inv.yml") == ["/inv.yml"]  # a record made before several sources
    assert inventory_sources(["/a", "/b"]) == ["/a", "/b"]
    assert inventory_sources(None) == [] and inventory_sources("") == []


def test_the_oracle_saw_every_host(oracle: dict[str, subprocess.CompletedProcess[str]]) -> None:
    listed = json.loads(oracle["three"].stdout)
    assert set(listed["_meta"]["hostvars"]) == {"h1", "h2", "h3", "h4", "h5", "h6"}


def test_resume_command_carries_every_source(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--resume`` from the web UI re-runs the command with each -i, absolute, host lists as given."""
    from rustle_deploy.fleetops import recorded_sources, resume_spec

    monkeypatch.chdir(tree)
    spec = resume_spec({"execution_plan": "site.yml", "inventory": ["a/hosts.ini", "c", "x,y,"]})
    assert spec["argv"] == [str(tree / "site.yml"), "-i", str(tree / "a/hosts.ini"), "-i", str(tree / "c"),
                            "-i", "x,y,", "--run"]
    assert recorded_sources(["a/hosts.ini"]) == str(tree / "a/hosts.ini")  # one: as older records hold it
    assert recorded_sources(["a/hosts.ini", "c"]) == [str(tree / "a/hosts.ini"), str(tree / "c")]
    assert recorded_sources(None) is None
