"""The local connection (no SSH), interpreter discovery, and SSH option parsing."""

from __future__ import annotations

import asyncio
import glob
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.deploy import HostOutcome, RunOptions, deploy_fleet, deploy_host
from rustle_deploy.errors import ConnectError, RemoteError
from rustle_deploy.model import Host
from rustle_deploy.transport.options import agent_launch, remote_command, ssh_argv, ssh_settings

from .conftest import job


def local(name: str, remote_dir: Path, **extra: Any) -> Host:
    return Host(name, {"ansible_connection": "local", "rustle_remote_dir": str(remote_dir), **extra})


def test_local_connection_deploys_and_runs_without_ssh(tmp_path, build_artifact, remote):
    art = build_artifact()
    hosts = [local(f"l{i}", tmp_path / f"r{i}") for i in range(3)]
    outs: list[HostOutcome] = asyncio.run(deploy_fleet(
        [job(h, art, verify=True, run=RunOptions("r1", check=True, tags=("a", "b"))) for h in hosts],
        parallel=2, timeout=60,
    ))
    for i, o in enumerate(outs):
        assert o.ok and o.uploaded and o.activated and o.run_exit == 0, o.error
        assert o.events[0]["check"] is True
        assert remote.state(tmp_path / f"r{i}")["current"] == art[1]
    warm = asyncio.run(deploy_host(job(hosts[0], art, run=RunOptions("r2"))))
    assert warm.ok and not warm.uploaded and warm.round_trips == 1


@pytest.mark.parametrize("version", ["3.8", "3.9", "3.12", "3.13"])
def test_agent_runs_on_every_supported_python(tmp_path, build_artifact, version):
    found = sorted(glob.glob(f"/root/.pyenv/versions/{version}.*/bin/python3"))
    if not found:
        pytest.skip(f"no Python {version} here")
    h = local("old", tmp_path / "r", ansible_python_interpreter=found[0])
    out = asyncio.run(deploy_host(job(h, build_artifact(), verify=True, run=RunOptions("r1"))))
    assert out.ok, out.error
    assert out.python is not None and out.python.startswith(version + ".")


def test_python_older_than_3_8_is_a_clear_error(tmp_path, build_artifact):
    found = sorted(glob.glob("/root/.pyenv/versions/3.[67].*/bin/python3"))
    if not found:
        pytest.skip("no old Python here")
    h = local("old", tmp_path / "r", ansible_python_interpreter=found[0])
    out = asyncio.run(deploy_host(job(h, build_artifact())))
    assert isinstance(out.error, RemoteError)
    assert out.error.message == f"old: no usable Python 3.8+ on old (tried {found[0]})"
    assert "ansible_python_interpreter" in out.error.hint


def test_a_templated_interpreter_is_rendered_as_ansible_renders_it(tmp_path, build_artifact):
    """ansible-core's test inventories set ``ansible_python_interpreter="{{ ansible_playbook_python }}"``
    (the controller's Python, for a local host); a variable it cannot render is a clear error."""
    import sys

    h = local("t", tmp_path / "r", ansible_python_interpreter="{{ ansible_playbook_python }}")
    assert agent_launch(h).python_interpreter == sys.executable
    out = asyncio.run(deploy_host(job(h, build_artifact(), run=RunOptions("r1"))))
    assert out.ok and out.run_exit == 0, out.error
    with pytest.raises(ConnectError) as err:
        agent_launch(local("u", tmp_path / "u", ansible_python_interpreter="{{ nowhere }}/python3"))
    assert "ansible_python_interpreter" in err.value.message and "'nowhere' is undefined" in err.value.message


def test_discovery_prefers_real_interpreters_over_path():
    cmd = remote_command(agent_launch(Host("h", {})))
    assert cmd.index("/usr/bin/python3") < cmd.index(" python3;")
    become = remote_command(agent_launch(Host("h", {"ansible_become": "yes", "ansible_become_user": "app"})))
    assert become.startswith("sudo -H -S -n -u app -- /bin/sh -c ")  # the sudo plugin's default flags


def test_ssh_options_from_inventory_variables_and_args():
    h = Host("web", {
        "ansible_host": "10.0.0.5",
        "ansible_user": "deploy",
        "ansible_ssh_common_args": "-o UserKnownHostsFile=/tmp/kh -o StrictHostKeyChecking=accept-new -J bastion:2222",
        "ansible_ssh_extra_args": "-i ~/.ssh/extra -F /etc/rustle/ssh_config -oConnectTimeout=7 -C -p 2200",
    })
    s = ssh_settings(h)
    assert (s.address, s.port, s.user) == ("10.0.0.5", 2200, "deploy")
    assert s.known_hosts == ("/tmp/kh",) and s.strict_host_key_checking == "accept-new"
    assert s.proxy_jump == "bastion:2222" and s.identity_files == ("~/.ssh/extra",)
    assert s.config_files == ("/etc/rustle/ssh_config",) and s.connect_timeout == 7.0
    # explicit variables win over argument strings
    h2 = Host("web", {"ansible_port": 22, "ansible_ssh_common_args": "-p 2200 -o User=x",
                      "ansible_host_key_checking": False})
    s2 = ssh_settings(h2)
    assert (s2.port, s2.user, s2.strict_host_key_checking) == (22, "x", "no")


def test_ssh_command_line_puts_the_users_options_first():
    h = Host("web", {
        "ansible_host": "10.0.0.5", "ansible_port": 2201, "ansible_user": "deploy",
        "ansible_ssh_private_key_file": "~/.ssh/deploy_key",
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=accept-new -J bastion",
        "ansible_ssh_extra_args": "-o KexAlgorithms=sntrup761x25519-sha512@openssh.com",
        "ansible_ssh_timeout": 9,
    })
    argv = ssh_argv(h, "/usr/bin/ssh")
    assert argv[:6] == ["/usr/bin/ssh", "-o", "StrictHostKeyChecking=accept-new", "-J", "bastion", "-o"]
    assert argv[6] == "KexAlgorithms=sntrup761x25519-sha512@openssh.com"  # theirs before ours: theirs wins
    assert argv.index("KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org") > 6
    assert ["-o", "BatchMode=yes"] == argv[argv.index("BatchMode=yes") - 1:argv.index("BatchMode=yes") + 1]
    for flag in ("-T", "-x", "-a"):
        assert flag in argv
    assert argv[argv.index("-p") + 1] == "2201" and argv[argv.index("-l") + 1] == "deploy"
    assert argv[argv.index("-i") + 1].endswith("/.ssh/deploy_key") and "IdentitiesOnly=yes" in argv
    assert "ConnectTimeout=9" in argv and argv[-2:] == ["--", "10.0.0.5"]
    # host key checking off in the inventory, nothing in the args
    off = ssh_argv(Host("db", {"ansible_host_key_checking": False}), "ssh")
    assert "StrictHostKeyChecking=no" in off and "-p" not in off and "-l" not in off and "-i" not in off


def test_bad_ssh_options_are_host_errors():
    with pytest.raises(ConnectError, match="StrictHostKeyChecking='maybe'"):
        ssh_settings(Host("web", {"ansible_ssh_common_args": "-o StrictHostKeyChecking=maybe"}))
    with pytest.raises(ConnectError, match="cannot split"):
        ssh_settings(Host("web", {"ansible_ssh_common_args": "-o 'unterminated"}))
    with pytest.raises(ConnectError, match="ansible_become_method='doas'"):
        agent_launch(Host("web", {"ansible_become": True, "ansible_become_method": "doas"}))
    # su, or a become password: the agent starts as the connecting user, each task becomes on the host
    assert not agent_launch(Host("web", {"ansible_become": True, "ansible_become_method": "su"})).become
    assert not agent_launch(Host("web", {"ansible_become": True, "ansible_become_password": "pw"})).become
    assert agent_launch(Host("web", {"ansible_become": True})).become
    with pytest.raises(ConnectError, match="ansible_become_password is a template") as err:
        agent_launch(Host("web", {"ansible_become": True, "ansible_become_password": "{{ pw }}"}))
    assert "{{ pw }}" not in str(err.value)
