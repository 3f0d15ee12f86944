"""Property: any values of a host's connection variables are either refused before anything
happens (InventoryError, exit 2, naming host, variable and value) or usable by both
transports: the ``ssh`` command line holds what a program can be given, and asyncssh gets a
port, a timeout and an address it can use, so a connection fails only as that host's data.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

from rustle_deploy.errors import ConnectError, InventoryError
from rustle_deploy.model import Host
from rustle_deploy.transport.openssh import OpenSshConnection, connect_openssh
from rustle_deploy.transport.options import (
    MAX_TIMEOUT,
    agent_launch,
    check_connections,
    remote_command,
    ssh_argv,
    ssh_settings,
)

from ..conftest import make_plan
from ..fuzzing import (
    HOSTILE,
    HOSTILE_TEXT,
    assert_clean,
    fuzz_settings,
    hostile,
    quick_config,
    run_main,
    sandbox,
)

pytestmark = pytest.mark.fuzz

SSH_OPTIONS = ["Port", "ConnectTimeout", "StrictHostKeyChecking", "UserKnownHostsFile", "User", "IdentityFile",
               "ProxyJump", "ProxyCommand", "ControlPath", "HostKeyAlgorithms", "LogLevel"]
FLAGS = ["-p", "-l", "-i", "-J", "-F", "-o", "-C", "-q", "-v", "-4", "-T"]


@st.composite
def ssh_args(draw: st.DrawFn) -> str:
    """An ``ansible_ssh_common_args`` / ``_extra_args`` string, quoted or not."""
    words = []
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["option", "option", "flag", "junk"]))
        value = draw(st.sampled_from(HOSTILE_TEXT) | st.text(max_size=8) | st.integers(-5, 70000).map(str))
        if kind == "option":
            sep = draw(st.sampled_from(["=", " ", "="]))
            words.append(f"-o {draw(st.sampled_from(SSH_OPTIONS))}{sep}{value}")
        elif kind == "flag":
            words.append(f"{draw(st.sampled_from(FLAGS))} {value}")
        else:
            words.append(value)
    return " ".join(words)


BOOLS = st.sampled_from([True, False, "yes", "no", "True", "false", "1", "0", 1, 0, "maybe", "", None, 2])
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "ansible_host": st.sampled_from(["127.0.0.1", "::1", "web.example", "a..b", "x" * 64, ""]) | hostile(),
    "ansible_port": st.integers(-5, 70000) | st.integers(-5, 70000).map(str) | hostile(),
    "ansible_ssh_port": st.integers(-5, 70000) | hostile(),
    "ansible_user": st.sampled_from(["deploy", "root", "-oops", ""]) | hostile(),
    "ansible_ssh_user": hostile(),
    "ansible_ssh_private_key_file": st.sampled_from(["~/.ssh/id", "/nonexistent/key"]) | hostile(),
    "ansible_private_key_file": hostile(),
    "ansible_password": hostile(),
    "ansible_ssh_pass": hostile(),
    "ansible_host_key_checking": BOOLS | hostile(),
    "ansible_ssh_host_key_checking": BOOLS,
    "ansible_ssh_common_args": ssh_args() | hostile(),
    "ansible_ssh_extra_args": ssh_args(),
    "ansible_timeout": st.integers(-5, 100) | st.floats() | st.floats().map(str) | hostile(),
    "ansible_ssh_timeout": st.floats(allow_nan=True) | hostile(),
    "ansible_connection": st.sampled_from(["ssh", "ssh", "smart", "local", "docker", "paramiko", ""]) | hostile(),
    "ansible_become": BOOLS | hostile(),
    "ansible_become_method": st.sampled_from(["sudo", "su", ""]) | hostile(),
    "ansible_become_user": st.sampled_from(["nobody", "root", "a b", ""]) | hostile(),
    "ansible_become_password": st.sampled_from(["", None, "x"]),
    "ansible_python_interpreter": st.sampled_from(["/usr/bin/python3", "auto", "auto_silent", ""]) | hostile(),
    "rustle_remote_dir": st.sampled_from(["~/.rustle", "/srv/rustle", "", "rel", "~", "/"]) | hostile(),
}
NAMES = st.sampled_from(["web1", "127.0.0.1", "db-2.example", "a..b", "x" * 70]) | st.text(min_size=1, max_size=10)


@st.composite
def hosts(draw: st.DrawFn) -> Host:
    chosen = draw(st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=5, unique=True))
    return Host(name=draw(NAMES), vars={var: draw(VALUES[var]) for var in chosen}, groups=("all",))


def _usable(host: Host) -> None:
    """What the transports need of a host that passed the checks."""
    launch = agent_launch(host)
    command = remote_command(launch)
    assert "\x00" not in command
    if host.is_local:
        return
    s = ssh_settings(host)
    assert 1 <= s.port <= 65535
    assert s.connect_timeout is None or (math.isfinite(s.connect_timeout) and 0 < s.connect_timeout <= MAX_TIMEOUT)
    assert s.address and s.address.isprintable() and not any(c.isspace() for c in s.address)
    s.address.encode("idna")
    assert s.user is None or (s.user.isprintable() and "\x00" not in s.user)
    argv = ssh_argv(host, "ssh")
    assert all(isinstance(a, str) and "\x00" not in a for a in argv), argv
    try:
        conn = connect_openssh(host, "ssh")
    except ConnectError as exc:
        assert "ansible_password" in exc.message
    else:
        assert isinstance(conn, OpenSshConnection)


@fuzz_settings(800)
@example(Host("web1", {"ansible_ssh_extra_args": "-l \x1f"}))  # found by make fuzz
@example(Host("web1", {"ansible_host": "a..b"}))  # asyncssh: UnicodeError from the resolver
@example(Host("web1", {"ansible_port": "abc"}))
@example(Host("web1", {"ansible_private_key_file": "~0"}))  # make fuzz: RuntimeError inside asyncssh
@example(Host("web1", {"ansible_timeout": "inf"}))
@given(hosts())
def test_connection_variables_are_refused_up_front_or_usable(host: Host) -> None:
    try:
        check_connections([host], "inv.yml")
    except InventoryError as exc:
        event("refused")
        text = str(exc)
        assert text.startswith(f"inv.yml: {host.name}: ") and "\nhint: " in text
        assert text.endswith("nothing was touched")
        text.encode("utf-8")
        return
    event("accepted: local" if host.is_local else "accepted: ssh")
    _usable(host)


# -- through the command line --------------------------------------------------------------

_COUNT = itertools.count()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("connection-fuzz")
    with sandbox(root):
        make_plan(root, [{"name": "hi", "module": "debug", "args": {"msg": "hi"}}], hosts=("all",))
        yield root


def _ini_value(value: Any) -> str:
    """``value`` as one INI token (the line is split as shlex splits it)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = "".join(c for c in text if c not in "\n\r\x00\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e")
    if any(c.isspace() for c in text):
        return f"'{text}'" if "'" not in text and "\\" not in text else "".join("_" if c.isspace() else c for c in text)
    return text


def _yaml_safe(value: Any) -> bool:
    try:
        yaml.safe_dump(value, allow_unicode=True)
    except (yaml.YAMLError, UnicodeEncodeError):
        return False
    return not (isinstance(value, str) and any(0xD800 <= ord(c) <= 0xDFFF for c in value))


@fuzz_settings(150)
@example([Host("web1", {"ansible_become": "\x0c0"})], "ini")  # found by make fuzz (the INI writer here)
@example([Host("web1", {"ansible_port": 70000})], "yaml")
@given(st.lists(hosts(), min_size=1, max_size=3), st.sampled_from(["yaml", "ini"]))
def test_connection_variables_through_the_command_line(root: Path, chosen: list[Host], fmt: str) -> None:
    names = [f"h{i}" for i in range(len(chosen))]
    path = root / f"inv-{next(_COUNT)}.{'yml' if fmt == 'yaml' else 'ini'}"
    if fmt == "yaml":
        doc = {"all": {"hosts": {n: dict(h.vars) for n, h in zip(names, chosen, strict=True)}}}
        assume(_yaml_safe(doc))
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    else:
        path.write_text("".join(
            n + "".join(f" {k}={_ini_value(v)}" for k, v in h.vars.items() if v is not None) + "\n"
            for n, h in zip(names, chosen, strict=True)
        ))
    try:
        code, out, err = run_main([str(root / "plan" / "plan.json"), "-i", str(path), "--dry-run", "--output", "json",
                                   "--config", str(quick_config(root))])
    finally:
        path.unlink()
    assert_clean(code, out, err)
    event(f"{fmt} exit {code}")
    if code == 0:
        assert {h["name"] for h in json.loads(out)["hosts"]} == set(names)


# -- asyncssh, for real, against a closed port ------------------------------------------------


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@fuzz_settings(100)
@example(Host("web1", {"ansible_private_key_file": "~0"}))  # make fuzz: RuntimeError inside asyncssh
@given(hosts())
def test_asyncssh_fails_only_as_the_hosts_data(root: Path, closed_port: int, host: Host) -> None:
    """A host that passed the checks, pointed at a closed local port: asyncssh's connect ends
    in a ConnectError, whatever else its variables say (a proxy is not fuzzed: it would run a
    command or reach the network)."""
    from rustle_deploy.transport import ssh

    v = {**host.vars, "ansible_host": "127.0.0.1", "ansible_port": closed_port, "ansible_connection": "ssh"}
    host = Host(host.name, v, host.groups)
    try:
        check_connections([host], "inv.yml")
    except InventoryError:
        event("refused")
        return
    s = ssh_settings(host)
    assume(not s.proxy_jump and not s.proxy_command and s.config_files is None)
    with pytest.raises(ConnectError) as info:
        asyncio.run(asyncio.wait_for(ssh.connect_ssh(host), 20))
    event("connect: " + info.value.message.split(": ")[-1][:30])
    ssh._options_cache.clear()


def test_the_hostile_values_cover_what_broke_before() -> None:
    for broke in ("abc", "70000", "1e400", "inf", "\x00", "a..b"):
        assert broke in HOSTILE or broke in str(VALUES["ansible_host"])
