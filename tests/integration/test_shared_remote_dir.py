"""Several inventory hosts that reach one account with one remote dir (aliases of one machine,
hosts on a local connection): each keeps a release of its own (releases/<name>.<host>/), so a
later phase or play finds its own release there and --rollback restores each host's own.

Before, the second host's activation replaced the first's ``current`` link, and the first host's
next phase failed with "current release is X, not Y".
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.fleetops import release_names
from rustle_deploy.model import Host

pytestmark = pytest.mark.usefixtures("rustle_home")

# a phase at the run_once task: each host runs its release twice; play 2 is for group a only,
# so h1 and h2 get different artifacts
PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - command: echo {{ inventory_hostname }} {{ version }}
      register: first
    - command: echo leader
      run_once: true
    - copy:
        content: "{{ first.stdout }}\\n"
        dest: "{{ root }}/{{ inventory_hostname }}.txt"
- hosts: a
  gather_facts: false
  tasks:
    - copy: {content: "a only\\n", dest: "{{ root }}/a-only.txt"}
"""


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    from rustle_deploy.cli import main

    code = main([*args, "--output", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def _current(remote: Path, release: str) -> str:
    return os.path.basename(os.readlink(remote / "releases" / release / "current"))


def _check_shared(capsys: pytest.CaptureFixture[str], tmp_path: Path, inventory: Path, remote: Path) -> None:
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK)
    root = tmp_path / "out"
    root.mkdir()
    shas = []
    for version in ("v1", "v2"):
        code, doc = _cli(capsys, str(playbook), "-i", str(inventory), "--run", "-e", f"root={root} version={version}")
        assert code == 0, doc
        assert {h["name"]: h["ok"] for h in doc["hosts"]} == {"h1": True, "h2": True}, doc
        assert (root / "h1.txt").read_text() == f"h1 {version}\n"
        assert (root / "h2.txt").read_text() == f"h2 {version}\n"
        by_name = {h["name"]: h for h in doc["hosts"]}
        shas.append({n: by_name[n]["sha256"] for n in ("h1", "h2")})
        assert shas[-1]["h1"] != shas[-1]["h2"], "the hosts run different plays: different artifacts"
        assert {n: _current(remote, f"rustle-runner-all.{n}") for n in ("h1", "h2")} == shas[-1]
    assert (root / "a-only.txt").exists()
    assert sorted(p.name for p in (remote / "releases").iterdir()) == ["rustle-runner-all.h1", "rustle-runner-all.h2"]

    code, doc = _cli(capsys, "--rollback", "-i", str(inventory))
    assert code == 0, doc
    assert {n: _current(remote, f"rustle-runner-all.{n}") for n in ("h1", "h2")} == shas[0], "each host back on its own v1"


@pytest.mark.ssh
def test_aliases_of_one_sshd_account_sharing_a_remote_dir_keep_their_own_releases(
    sshd: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    remote = tmp_path / "remote"
    conn = {k: v for k, v in sshd.host("x", remote).vars.items()}
    inventory = tmp_path / "inv.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"a": {"hosts": {"h1": conn}}, "b": {"hosts": {"h2": conn}}}}}))
    _check_shared(capsys, tmp_path, inventory, remote)


def test_hosts_on_a_local_connection_keep_their_own_releases(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    remote = tmp_path / "remote"
    inventory = tmp_path / "inv.ini"
    inventory.write_text(f"[a]\nh1\n[b]\nh2\n[all:vars]\nansible_connection=local\nrustle_remote_dir={remote}\n")
    _check_shared(capsys, tmp_path, inventory, remote)


def test_release_names_apart_only_where_an_account_and_remote_dir_are_shared() -> None:
    def host(name: str, **v: Any) -> Host:
        return Host(name=name, vars={"ansible_host": "10.0.0.1", "ansible_user": "deploy", **v})

    hosts = [
        host("a1"), host("a2"),  # the same account and dir: apart
        host("b", ansible_user="other"),  # another account on that machine
        host("c", rustle_remote_dir="/srv/rustle"),  # another dir
        host("d", ansible_port=2222),  # another sshd
        host("web 1", ansible_connection="local"), host("web2", ansible_connection="local"),
    ]
    names = release_names(hosts, {h.name: "site" for h in hosts})
    assert names == {"a1": "site.a1", "a2": "site.a2", "b": "site", "c": "site", "d": "site",
                     "web 1": "site.web-1", "web2": "site.web2"}
    # only the hosts of this deployment count: one alias alone keeps the plain name
    assert release_names(hosts, {"a1": "site"}) == {"a1": "site"}
