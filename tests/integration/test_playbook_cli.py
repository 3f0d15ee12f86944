"""Playbooks on the command line: run, --emit-plan round trip, stdin, listings, errors, fixtures.

The behaviour of each Ansible construct is checked against ansible-playbook in
test_playbooks_ansible.py; here the command line around it: that a playbook is accepted wherever
a plan is, that the plan it compiles to runs the same, and that a bad playbook touches nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.cli import main

from ..conftest import EXAMPLE_PLAN, FIXTURES, REPO
from .test_playbooks_ansible import tree

pytestmark = pytest.mark.usefixtures("rustle_home")

HELLO = EXAMPLE_PLAN.parent / "site.yml"
CASES = REPO / "tests" / "data" / "playbooks"
PARSE_FIXTURES = FIXTURES / "rustle-parse"


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def recap(out: str) -> dict[str, int]:
    doc = json.loads(out)
    (host,) = doc["hosts"]
    return {k: v for k, v in host["recap"].items() if k in ("ok", "changed", "failed", "skipped", "rescued", "ignored")}


def local_inventory(tmp_path: Path, groups: str = "") -> Path:
    inv = tmp_path / "inventory.ini"
    inv.write_text(f"{groups}\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable} "
                   f"rustle_remote_dir={tmp_path / 'remote'}\n")
    return inv


def test_hello_playbook_runs_as_its_plan_does(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inv = local_inventory(tmp_path)
    results = {}
    for name, source in (("plan", EXAMPLE_PLAN), ("playbook", HELLO)):
        out_dir = tmp_path / name
        code, out, err = run_cli(capsys, str(source), "-i", str(inv), "--run", "--output", "json",
                                 "-e", f"workdir={out_dir}")
        assert code == 0, err
        results[name] = (recap(out), tree(out_dir, tmp_path))  # each tree's root written OUT
    assert results["plan"] == results["playbook"]


@pytest.mark.parametrize("case", ["webserver", "precedence", "blocks_and_includes", "role_dedup"])
def test_emitted_plan_runs_as_the_playbook_does(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "work"
    shutil.copytree(CASES / case, work)
    inv_rel = "inventory/hosts.ini" if (work / "inventory" / "hosts.ini").exists() else "inventory.ini"
    inv = work / inv_rel
    text = inv.read_text() if inv.exists() else ("localhost ansible_connection=local "
                                                 "ansible_python_interpreter={python} rustle_remote_dir={remote}\n")
    inv.write_text(text.format(python=sys.executable, remote=tmp_path / "remote"))
    os.chdir(work)
    extra = ["-e", "v_extra=extra-var"] if case == "precedence" else []
    code, plan_text, err = run_cli(capsys, "site.yml", "-i", inv_rel, "--emit-plan", *extra, "-e", f"out={tmp_path / 'j'}")
    assert code == 0, err
    plan_path = tmp_path / "emitted.json"
    plan_path.write_text(plan_text)
    json.loads(plan_text)  # a JSON document
    results = {}
    for label, source in (("p", "site.yml"), ("j", str(plan_path))):
        (tmp_path / label).mkdir()
        args = [source, "-i", inv_rel, "--run", "--output", "json"]
        if label == "p":
            args += [*extra, "-e", f"out={tmp_path / 'p'}"]
        code, out, err = run_cli(capsys, *args)
        results[label] = (code, recap(out), tree(tmp_path / label, tmp_path))
    assert results["p"] == results["j"]


def test_playbook_on_stdin(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    inv = local_inventory(tmp_path)
    monkeypatch.chdir(tmp_path)
    playbook = (f"- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                f"    - copy: {{content: \"from stdin\\n\", dest: {tmp_path}/out.txt}}\n")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(playbook.encode())))
    code, out, err = run_cli(capsys, "-", "-i", str(inv), "--run", "--output", "json", "-f", "3")
    assert code == 0, err
    assert (tmp_path / "out.txt").read_text() == "from stdin\n"
    assert recap(out)["changed"] == 1


def test_broken_playbook_exits_2_and_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str], rustle_home: Path) -> None:
    inv = local_inventory(tmp_path)
    pb = tmp_path / "site.yml"
    pb.write_text("- hosts: localhost\n  tasks:\n    - name: typo\n      debug: msg=hi\n      whne: true\n")
    code, out, err = run_cli(capsys, str(pb), "-i", str(inv), "--run")
    assert code == 2
    assert err.startswith(f"error: {pb}:5:7: 'whne' is not a valid keyword for a task\n")
    assert "    5 |       whne: true\n" in err and "hint: did you mean 'when'?" in err
    assert not (tmp_path / "remote").exists()
    assert not (rustle_home / ".rustle" / "state.db").exists()


def test_listings_and_syntax_check(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    shutil.copytree(CASES / "tags_always_never", work)
    monkeypatch.chdir(work)
    inv = local_inventory(tmp_path, "[app]")
    code, out, _ = run_cli(capsys, "site.yml", "-i", str(inv), "--syntax-check")
    assert (code, out) == (0, "\nplaybook: site.yml\n")
    code, out, _ = run_cli(capsys, "site.yml", "-i", str(inv), "--list-hosts")
    assert code == 0
    assert out.splitlines()[3:] == ["  play #1 (all): all\tTAGS: [play]", "    pattern: ['all']",
                                    "    hosts (1):", "      localhost"]
    code, out, _ = run_cli(capsys, "site.yml", "-i", str(inv), "--list-tasks", "--tags", "web")
    tasks = [line.strip() for line in out.splitlines()[5:]]
    assert tasks == ["copy\tTAGS: [always, play]", "copy\tTAGS: [play, web]", "copy\tTAGS: [play, web]",
                     "copy\tTAGS: [play, web]", "include_tasks\tTAGS: [play, web]"]
    code, out, _ = run_cli(capsys, "site.yml", "-i", str(inv), "--list-tags")
    assert out.splitlines()[-1].strip() == "TASK TAGS: [always, db, debugonly, never, play, web]"
    code, out, _ = run_cli(capsys, "site.yml", "-i", str(inv), "--list-hosts", "--output", "json")
    assert json.loads(out)["plays"][0]["hosts"] == ["localhost"]


# The upstream parser's fixtures: accepted (compiled into artifacts), or refused where they use
# what rustle-deploy does not support or reference files the fixtures do not ship.
FIXTURE_OUTCOMES = {
    "playbooks/file_operations_playbook.yml": "playbooks/file_operations_playbook.yml:34:9: could not find copy source",
    "playbooks/package_management.yml": None,
    "playbooks/service_management.yml": None,
    "playbooks/simple.yml": None,
    "playbooks/system_facts_playbook.yml": None,
    "includes/circular_include.yml": "includes/circular_include.yml:4:3: 'include_tasks' is not a valid keyword for a play",
    "includes/circular_test.yml": "includes/circular_test.yml:3:3: this file is a playbook",
    "includes/conditional_includes.yml": "includes/tasks/setup.yml:16:5: could not find template source 'app.conf.j2'",
    "includes/include_role_test.yml": None,
    "includes/include_vars_test.yml": None,
    "includes/main_playbook.yml": "includes/tasks/setup.yml:16:5: could not find template source 'app.conf.j2'",
    "includes/nested_includes.yml": "includes/tasks/nested_task.yml:8:18: include_tasks loop",
    "includes/sub_playbooks/database.yml": "includes/sub_playbooks/database.yml:27:9: could not find template source 'pg_hba.conf.j2'",
    "includes/sub_playbooks/web_servers.yml": "includes/sub_playbooks/web_servers.yml:17:9: could not find template source 'nginx.conf.j2'",
}


def test_every_upstream_playbook_fixture_is_covered() -> None:
    found = {str(p.relative_to(PARSE_FIXTURES)) for p in PARSE_FIXTURES.glob("playbooks/*.yml")}
    found |= {str(p.relative_to(PARSE_FIXTURES)) for p in PARSE_FIXTURES.glob("includes/**/*.yml")
              if "roles" not in p.parts and p.parent.name not in ("tasks", "vars")}
    assert found == set(FIXTURE_OUTCOMES)


@pytest.mark.parametrize("name", sorted(FIXTURE_OUTCOMES))
def test_upstream_playbook_fixture(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    inv = tmp_path / "inventory.ini"
    inv.write_text("[test_hosts]\nlocalhost ansible_connection=local\n[db_servers]\nlocalhost\n"
                   "[web_servers]\nlocalhost\n[lb_servers]\nlocalhost\n[monitoring]\nlocalhost\n")
    monkeypatch.chdir(PARSE_FIXTURES)
    code, out, err = run_cli(capsys, name, "-i", str(inv), "--dry-run", "--output", "json")
    expected = FIXTURE_OUTCOMES[name]
    if expected is None:
        assert code == 0, err
        assert json.loads(out)["artifacts"]
    else:
        assert code == 2
        assert err.startswith("error: " + expected), err


# -- over a real sshd ----------------------------------------------------------------------


@pytest.mark.ssh
def test_playbook_with_roles_over_ssh(tmp_path: Path, capsys: pytest.CaptureFixture[str], sshd: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two plays over groups of five hosts on one sshd: group patterns, group_vars beside the
    playbook, a role with a handler, a host that fails, then a warm run that changes nothing."""
    import yaml

    work = tmp_path / "pb"
    (work / "roles" / "site" / "tasks").mkdir(parents=True)
    (work / "roles" / "site" / "handlers").mkdir()
    (work / "group_vars").mkdir()
    (work / "roles" / "site" / "tasks" / "main.yml").write_text(
        "- file: {path: '{{ root }}', state: directory}\n"
        "- template: {src: site.j2, dest: '{{ root }}/site.conf'}\n"
        "  notify: reloaded\n")
    (work / "roles" / "site" / "templates").mkdir()
    (work / "roles" / "site" / "templates" / "site.j2").write_text(
        "host={{ inventory_hostname }} tier={{ tier }} peers={{ groups['web'] | length }}\n")
    (work / "roles" / "site" / "handlers" / "main.yml").write_text(
        "- name: reloaded\n  copy: {content: \"reloaded\\n\", dest: '{{ root }}/reloaded'}\n")
    (work / "group_vars" / "web.yml").write_text("tier: web\n")
    (work / "group_vars" / "db.yml").write_text("tier: db\n")
    (work / "site.yml").write_text(
        "- hosts: web\n  gather_facts: false\n  roles: [site]\n"
        "- hosts: db\n  gather_facts: false\n  roles: [site]\n"
        "  tasks:\n    - command: /bin/false\n      when: inventory_hostname == 'db1'\n")
    groups: dict[str, dict[str, Any]] = {"web": {"hosts": {}}, "db": {"hosts": {}}}
    roots = {}
    for name in ("web1", "web2", "web3", "db1", "db2"):
        roots[name] = tmp_path / "roots" / name
        h = sshd.host(name, tmp_path / "remote" / name, root=str(roots[name]))
        groups[name.rstrip("0123456789")]["hosts"][name] = dict(h.vars)
    (work / "inv.yml").write_text(yaml.safe_dump({"all": {"children": groups}}))
    monkeypatch.chdir(work)
    code, out, err = run_cli(capsys, "site.yml", "-i", "inv.yml", "--run", "--output", "json")
    assert code == 1, err
    by_name = {h["name"]: h for h in json.loads(out)["hosts"]}
    assert sorted(by_name) == ["db1", "db2", "web1", "web2", "web3"]
    assert by_name["db1"]["recap"]["failed"] == 1
    for name, root in roots.items():
        tier = "web" if name.startswith("web") else "db"
        assert (root / "site.conf").read_text() == f"host={name} tier={tier} peers=3\n"
        assert (root / "reloaded").exists() == (name != "db1")  # a failed host runs no handler
    code, out, err = run_cli(capsys, "site.yml", "-i", "inv.yml", "--run", "--output", "json", "-l", "all:!db1")
    assert code == 0, err
    for h in json.loads(out)["hosts"]:
        assert not h["uploaded"] and h["recap"]["changed"] == 0, h


def test_ansible_cfg_supplies_inventory_roles_path_and_forks(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "project"
    (work / "shared" / "greet" / "tasks").mkdir(parents=True)
    (work / "shared" / "greet" / "tasks" / "main.yml").write_text(
        "- copy: {content: \"hi from {{ inventory_hostname }}\\n\", dest: '{{ out }}/greet.txt'}\n")
    (work / "site.yml").write_text("- hosts: app\n  gather_facts: false\n  roles: [greet]\n")
    (work / "hosts.ini").write_text(f"[app]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable} "
                                    f"rustle_remote_dir={tmp_path / 'remote'}\n")
    (work / "ansible.cfg").write_text("[defaults]\ninventory = hosts.ini\nroles_path = shared\nforks = 3\n"
                                      "stdout_callback = yaml\n")
    monkeypatch.chdir(work)
    code, out, err = run_cli(capsys, "site.yml", "--run", "--output", "json", "-v", "-e", f"out={tmp_path}")
    assert code == 0, err
    assert (tmp_path / "greet.txt").read_text() == "hi from localhost\n"
    assert f"note: {work / 'ansible.cfg'}: [defaults] stdout_callback has no effect in rustle-deploy" in err
    code, out, err = run_cli(capsys, "site.yml", "--dry-run", "--output", "json")
    assert json.loads(out)["parallel"] == 3


@pytest.mark.ssh
def test_ansible_cfg_ssh_arguments_library_and_hash_behaviour(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              sshd: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """[ssh_connection] ssh_common_args reaches hosts that set none (here: the known_hosts file
    that lets the host's key be checked); a module in ansible.cfg's ``library`` runs through the module bridge;
    hash_behaviour = merge is refused before anything is touched."""
    work = tmp_path / "project"
    (work / "lib").mkdir(parents=True)
    module = work / "lib" / "my_module"
    module.write_text("#!/bin/sh\n# WANT_JSON\necho '{\"changed\": true, \"msg\": \"from lib\"}'\n")
    module.chmod(0o755)
    (work / "site.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - copy: {content: \"over ssh\\n\", dest: '{{ out }}/ssh.txt'}\n")
    (work / "custom.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - my_module: {a: 1}\n")
    (work / "hosts.ini").write_text(
        f"target ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user={sshd.user} "
        f"ansible_ssh_private_key_file={sshd.client_key} rustle_remote_dir={tmp_path / 'remote'}\n")
    cfg = work / "ansible.cfg"
    cfg.write_text(f"[defaults]\ninventory = hosts.ini\nlibrary = lib\n[ssh_connection]\n"
                   f"ssh_common_args = -o UserKnownHostsFile={sshd.known_hosts}\n")
    monkeypatch.chdir(work)
    code, out, err = run_cli(capsys, "site.yml", "--run", "--output", "json", "-e", f"out={tmp_path}")
    assert code == 0, err
    assert (tmp_path / "ssh.txt").read_text() == "over ssh\n"
    code, out, err = run_cli(capsys, "custom.yml", "--run", "--output", "json")  # found in ansible.cfg's library
    assert code == 0, err
    assert json.loads(out)["hosts"][0]["recap"]["changed"] == 1
    cfg.write_text(cfg.read_text().replace("[ssh_connection]", "hash_behaviour = merge\n[ssh_connection]"))
    (tmp_path / "ssh.txt").unlink()
    code, out, err = run_cli(capsys, "site.yml", "--run", "-e", f"out={tmp_path}")
    assert code == 2 and "hash_behaviour = merge is not supported" in err, err
    assert not (tmp_path / "ssh.txt").exists()
    # without the setting, the host's key cannot be checked: the setting is what made it work
    cfg.write_text("[defaults]\ninventory = hosts.ini\n")
    code, out, err = run_cli(capsys, "site.yml", "--run", "--output", "json", "-e", f"out={tmp_path}")
    assert code == 1 and not (tmp_path / "ssh.txt").exists(), err


def test_plays_after_group_by_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch, rustle_home: Path) -> None:
    """A playbook on stdin whose later play targets a group group_by made runs with --run (the
    text is compiled again from what was read); without --run it is refused at the group_by's
    line; listings show the later play over the inventory as it is; an error in a later play
    stops the run when that play is compiled, after the earlier one ran (exit 2)."""
    import contextlib
    import sqlite3

    inv = local_inventory(tmp_path)
    monkeypatch.chdir(tmp_path)
    playbook = ("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                "    - group_by: key=made_{{ 'here' }}\n"
                "- hosts: made_here\n  gather_facts: false\n  tasks:\n"
                f"    - copy: {{content: \"groups={{{{ group_names }}}}\\n\", dest: {tmp_path}/out.txt}}\n")

    def stdin(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))

    stdin(playbook)
    code, out, err = run_cli(capsys, "-", "-i", str(inv), "--run", "--output", "json")
    assert code == 0, err
    assert (tmp_path / "out.txt").read_text() == "groups=['made_here']\n"
    assert recap(out) == {"ok": 2, "changed": 2, "failed": 0, "skipped": 0, "rescued": 0, "ignored": 0}
    stdin(playbook)
    code, out, err = run_cli(capsys, "-", "-i", str(inv), "--compile-only")
    assert code == 2 and "<stdin>:4:7: group_by changes the inventory, and play 2" in err
    assert "run the playbook with --run" in err
    stdin(playbook)
    code, out, err = run_cli(capsys, "-", "-i", str(inv), "--list-hosts")
    assert code == 0 and "play #2 (made_here)" in out and "hosts (0):" in out
    stdin(playbook.replace("    - copy:", "    - no_such_module: {}\n    - copy:"))
    code, out, err = run_cli(capsys, "-", "-i", str(inv), "--run", "--output", "json")
    assert code == 2 and "<stdin>:8:7: unknown module 'no_such_module'" in err, err
    with contextlib.closing(sqlite3.connect(rustle_home / ".rustle" / "state.db")) as conn:
        last = conn.execute("SELECT status FROM deployments ORDER BY created_at DESC LIMIT 1").fetchone()
        ran = conn.execute("SELECT COUNT(*) FROM runs").fetchone()
    assert last == ("interrupted",) and ran == (2,)


def test_an_unknown_filter_is_a_warning_for_playbooks_and_plans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The build goes on (the task fails only if it evaluates the filter, as in Ansible), and
    says so on stderr whatever the verbosity, at the playbook's line or the plan's JSON path."""
    site = tmp_path / "site.yml"
    site.write_text("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
                    "    - debug:\n        msg: \"{{ 'x' | no_such_filter }}\"\n")
    inv = tmp_path / "inv"
    inv.write_text("localhost ansible_connection=local\n")
    code, out, err = run_cli(capsys, str(site), "-i", str(inv), "--compile-only", "-o", str(tmp_path / "t"))
    assert code == 0, err
    assert f"warning: {site}:4:7: filter 'no_such_filter' is unknown: the task fails when the host evaluates it" in err
    code, plan, err = run_cli(capsys, str(site), "-i", str(inv), "--emit-plan")
    assert code == 0, err
    (tmp_path / "plan.json").write_text(plan)
    code, out, err = run_cli(capsys, str(tmp_path / "plan.json"), "-i", str(inv), "--compile-only", "-o", str(tmp_path / "t"))
    assert code == 0, err
    assert "/plays/0/batches/0/tasks/0/args/msg: filter 'no_such_filter' is unknown" in err


def test_a_templated_action_rendering_to_a_mapping_errors_the_run_where_a_host_reaches_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # ansible-core templates the action before the task's condition and stops the run
    # ("Unexpected Exception ... unhashable type"), with no result of the task; tagged never
    # (ansible-core's include_import test_import_role.yml), it never runs
    playbook = tmp_path / "site.yml"
    playbook.write_text("""\
- hosts: localhost
  gather_facts: false
  vars:
    entire_task: {debug: {msg: hi}}
  tasks:
    - copy: {content: before, dest: "{{ out }}/before.txt"}
    - name: never selected
      action: {module: "{{ entire_task }}"}
      tags: [never]
    - name: an entire task
      action: {module: "{{ entire_task }}"}
      when: false
    - copy: {content: after, dest: "{{ out }}/after.txt"}
""")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    code, out, err = run_cli(capsys, str(playbook), "-i", str(local_inventory(tmp_path)), "--run",
                             "--output", "json", "-e", f"out={out_dir}")
    doc = json.loads(out)
    assert code == 1, err
    assert "renders to a mapping, not a module name" in doc["errored"][0]["msg"]
    (host,) = doc["hosts"]
    assert [(t["name"], t["status"]) for t in host["tasks"]] == [("copy", "changed"), ("an entire task", "failed")]
    assert sorted(p.name for p in out_dir.iterdir()) == ["before.txt"]
