"""ansible.cfg and ANSIBLE_* variables: which file is read, what applies, what is only noted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rustle_deploy.ansible_cfg import find_config, load_ansible_config
from rustle_deploy.errors import ConfigError

CFG = """\
[defaults]
inventory = hosts.ini
roles_path = roles:/opt/roles
remote_user = deploy
private_key_file = ~/.ssh/deploy_key
forks = 7   ; Ansible allows comments after ';'
host_key_checking = False
timeout = 30
stdout_callback = yaml
retry_files_enabled = no

[privilege_escalation]
become = yes
become_user = app

[ssh_connection]
pipelining = True
"""


def test_the_first_file_found_is_read_in_ansibles_order(tmp_path: Path) -> None:
    home, cwd, env_dir = tmp_path / "home", tmp_path / "cwd", tmp_path / "envdir"
    for d in (home, cwd, env_dir):
        d.mkdir()
    (home / ".ansible.cfg").write_text("[defaults]\nforks = 1\n")
    assert find_config({"HOME": str(home)}, str(cwd)) == str(home / ".ansible.cfg")
    (cwd / "ansible.cfg").write_text("[defaults]\nforks = 2\n")
    assert find_config({"HOME": str(home)}, str(cwd)) == str(cwd / "ansible.cfg")
    (env_dir / "ansible.cfg").write_text("[defaults]\nforks = 3\n")
    assert find_config({"HOME": str(home), "ANSIBLE_CONFIG": str(env_dir)}, str(cwd)) == str(env_dir / "ansible.cfg")
    os.chmod(cwd, 0o777)  # a world-writable working directory: its ansible.cfg is not trusted
    try:
        assert find_config({"HOME": str(home)}, str(cwd)) == str(home / ".ansible.cfg")
    finally:
        os.chmod(cwd, 0o755)


def test_settings_that_apply_and_notes_for_the_rest(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text(CFG)
    cfg = load_ansible_config({"HOME": str(tmp_path / "nohome")}, str(tmp_path))
    assert cfg.path == str(tmp_path / "ansible.cfg")
    assert cfg.get("inventory") == (str(tmp_path / "hosts.ini"),)
    assert cfg.get("roles_path") == (str(tmp_path / "roles"), "/opt/roles")
    assert cfg.get("remote_user") == "deploy" and cfg.get("forks") == 7
    assert cfg.get("private_key_file") == os.path.expanduser("~/.ssh/deploy_key")
    assert cfg.get("become") is True and cfg.get("become_user") == "app"
    assert cfg.host_defaults() == {"ansible_host_key_checking": False, "ansible_timeout": 30}
    assert cfg.notes() == [f"{cfg.path}: [defaults] stdout_callback has no effect in rustle-deploy",
                           f"{cfg.path}: [defaults] retry_files_enabled has no effect in rustle-deploy",
                           f"{cfg.path}: [ssh_connection] pipelining has no effect in rustle-deploy"]


def test_environment_beats_the_file(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text(CFG)
    cfg = load_ansible_config({"HOME": str(tmp_path), "ANSIBLE_FORKS": "12", "ANSIBLE_ROLES_PATH": "a:b",
                               "ANSIBLE_BECOME": "false", "ANSIBLE_INVENTORY": "x.ini,y.ini"}, str(tmp_path))
    assert cfg.get("forks") == 12 and cfg.get("become") is False
    assert cfg.get("roles_path") == (str(tmp_path / "a"), str(tmp_path / "b"))
    assert cfg.get("inventory") == (str(tmp_path / "x.ini"), str(tmp_path / "y.ini"))


def test_a_bad_value_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[defaults]\nforks = many\n")
    with pytest.raises(ConfigError, match=r"\[defaults\] forks: expected an integer"):
        load_ansible_config({"HOME": str(tmp_path)}, str(tmp_path))


def test_ssh_arguments_gathering_library_and_hash_behaviour(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\ngathering = explicit\nlibrary = lib:/opt/lib\ncollections_path = colls\n"
        "hash_behaviour = replace\n[ssh_connection]\nssh_args = -C -o ControlMaster=auto\n"
        "ssh_common_args = -o ConnectTimeout=5\nssh_extra_args = -o ServerAliveInterval=9\n")
    cfg = load_ansible_config({"HOME": str(tmp_path / "nohome")}, str(tmp_path))
    assert cfg.host_defaults() == {"ansible_ssh_common_args": "-C -o ControlMaster=auto -o ConnectTimeout=5",
                                   "ansible_ssh_extra_args": "-o ServerAliveInterval=9"}
    assert cfg.get("library") == (str(tmp_path / "lib"), "/opt/lib")
    assert cfg.get("gathering") == "explicit" and cfg.get("hash_behaviour") == "replace"
    notes = "\n".join(cfg.notes())
    assert "gathering = explicit: facts are gathered on the host when a task first uses one" in notes
    assert f"library = {tmp_path / 'lib'}:/opt/lib: searched for modules that are not built in" in notes
    assert "collections_path = " in notes
    assert "has no effect" not in notes  # each of these is read, none ignored
    env = {"HOME": str(tmp_path / "nohome"), "ANSIBLE_SSH_COMMON_ARGS": "-o Port=2", "ANSIBLE_GATHERING": "smart"}
    cfg = load_ansible_config(env, str(tmp_path))
    assert cfg.host_defaults()["ansible_ssh_common_args"] == "-C -o ControlMaster=auto -o Port=2"
    assert cfg.get("gathering") == "smart"


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [("[defaults]\nhash_behaviour = merge\n", {}, "[defaults] hash_behaviour: hash_behaviour = merge is not supported"),
     ("", {"ANSIBLE_HASH_BEHAVIOUR": "merge"}, "ANSIBLE_HASH_BEHAVIOUR: hash_behaviour = merge is not supported"),
     ("[defaults]\ngathering = sometimes\n", {}, "expected one of implicit, explicit, smart, got 'sometimes'")],
)
def test_settings_that_would_change_results_are_refused(text: str, env: dict[str, str], needle: str,
                                                         tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text(text)
    with pytest.raises(ConfigError) as info:
        load_ansible_config({"HOME": str(tmp_path / "nohome"), **env}, str(tmp_path))
    assert needle in str(info.value)


BECOME_CFG = """\
[privilege_escalation]
become_exe = /usr/bin/generic
become_flags = -G
[sudo_become_plugin]
flags = -H -S -n -E
[su_become_plugin]
executable = /bin/su
[doas_become_plugin]
executable = /usr/bin/doas
"""


@pytest.mark.parametrize(("env", "expected"), [
    ({}, {"sudo": {"exe": "/usr/bin/generic", "flags": "-H -S -n -E"}, "su": {"exe": "/bin/su", "flags": "-G"}}),
    # the environment over the file; the method's own variable over ANSIBLE_BECOME_*
    ({"ANSIBLE_BECOME_FLAGS": "-B", "ANSIBLE_SU_FLAGS": "-s /bin/sh", "ANSIBLE_SUDO_EXE": "/opt/sudo"},
     {"sudo": {"exe": "/opt/sudo", "flags": "-B"}, "su": {"exe": "/bin/su", "flags": "-s /bin/sh"}}),
], ids=["file", "environment"])
def test_each_become_methods_program_and_flags_as_its_plugin_reads_them(
        tmp_path: Path, env: dict[str, str], expected: dict[str, dict[str, str]]) -> None:
    (tmp_path / "ansible.cfg").write_text(BECOME_CFG)
    cfg = load_ansible_config({"HOME": str(tmp_path), **env}, str(tmp_path))
    assert cfg.become_config() == expected
    # a method rustle-deploy does not run is ignored, with a note (shown at -v)
    assert any("[doas_become_plugin] executable: become method 'doas' is not one rustle-deploy runs" in n
               for n in cfg.notes())


def test_become_flags_that_cannot_be_split_are_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "ansible.cfg").write_text("[sudo_become_plugin]\nflags = -H 'open\n")
    with pytest.raises(ConfigError, match=r"\[sudo_become_plugin\] flags: .*cannot be split into words"):
        load_ansible_config({"HOME": str(tmp_path)}, str(tmp_path))


def test_interpreter_python_is_the_default_of_hosts_that_set_no_interpreter(tmp_path: Path) -> None:
    from rustle_deploy.errors import ConnectError
    from rustle_deploy.model import Host
    from rustle_deploy.transport.options import PYTHON_CANDIDATES, agent_launch, remote_command

    (tmp_path / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")
    cfg = load_ansible_config({"HOME": str(tmp_path / "nohome")}, str(tmp_path))
    assert cfg.host_defaults() == {"ansible_python_interpreter": "auto_silent"}
    env = {"HOME": str(tmp_path / "nohome"), "ANSIBLE_PYTHON_INTERPRETER": "/opt/py/bin/python3"}
    assert load_ansible_config(env, str(tmp_path)).host_defaults() == {"ansible_python_interpreter": "/opt/py/bin/python3"}
    # the launcher: a discovery mode tries ansible-core's fallback list; a path is run as written
    silent = agent_launch(Host("h", {"ansible_python_interpreter": "auto_silent"}))
    assert (silent.python_interpreter, silent.discovery, silent.fallback) == (None, "auto_silent", PYTHON_CANDIDATES)
    assert "for P in python3.13 python3.12" in remote_command(silent) and '"$P" auto_silent;' in remote_command(silent)
    path = agent_launch(Host("h", {"ansible_python_interpreter": "/opt/py/bin/python3"}))
    assert path.python_interpreter == "/opt/py/bin/python3" and '"$P" explicit;' in remote_command(path)
    listed = agent_launch(Host("h", {"ansible_interpreter_python_fallback": "python3.12, /usr/bin/python3"}))
    assert listed.fallback == ("python3.12", "/usr/bin/python3")
    with pytest.raises(ConnectError) as err:
        agent_launch(Host("h", {"ansible_interpreter_python_fallback": {"a": 1}}))
    assert "ansible_interpreter_python_fallback" in err.value.message and "expected a list" in err.value.message


def test_the_runtime_discovers_over_the_launchers_fallback_list() -> None:
    """The runtime (stdlib only, it cannot import the controller) keeps its own copy."""
    import ast

    import rustle_deploy
    from rustle_deploy.transport.options import PYTHON_CANDIDATES

    source = Path(rustle_deploy.__file__).parent / "runtime" / "rustle_runtime" / "executor.py"
    tree = ast.parse(source.read_text())
    values = [ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
              and any(isinstance(t, ast.Name) and t.id == "_PYTHON_FALLBACK" for t in n.targets)]
    assert values == [PYTHON_CANDIDATES]
