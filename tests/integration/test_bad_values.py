"""Every bad inventory or config value is exit 2 with a message naming where it is, before any
deployment is recorded or any host touched (issue 11, "Every bad value is a clear error").

The hosts point at the suite's real sshd, so a value that slipped through would reach it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import EXAMPLE_PLAN

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]


def deployments(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    capsys.readouterr()
    assert main(["--list-deployments", "--output", "json"]) == 0
    out = capsys.readouterr().out
    return list(json.loads(out))


def inventory(tmp_path: Path, sshd: Any, name: str = "web1", **bad: Any) -> tuple[Path, Path]:
    """A YAML inventory with one host on the sshd, its variables overridden by ``bad``."""
    remote = tmp_path / "remote"
    host = dict(sshd.host(name, remote).vars)
    host.update(bad)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {name: host}}}))
    return inv, remote


def plan_for(tmp_path: Path, host: str) -> Path:
    doc = json.loads(EXAMPLE_PLAN.read_text())
    doc["hosts"] = doc["plays"][0]["hosts"] = doc["plays"][0]["batches"][0]["hosts"] = [host]
    for task in doc["plays"][0]["batches"][0]["tasks"]:
        task["hosts"] = [host]
    doc["plays"][0]["vars"]["workdir"] = str(tmp_path / "work")
    dest = tmp_path / "plan"
    dest.mkdir()
    for sub in ("files", "templates"):
        src = EXAMPLE_PLAN.parent / sub
        if src.is_dir():
            (dest / sub).mkdir()
            for f in src.iterdir():
                (dest / sub / f.name).write_bytes(f.read_bytes())
    (dest / "plan.json").write_text(json.dumps(doc))
    return dest / "plan.json"


@pytest.mark.parametrize(
    ("var", "value", "shown"),
    [
        ("ansible_port", "abc", "ansible_port='abc'"),
        ("ansible_port", 70000, "ansible_port=70000"),
        ("ansible_port", 0, "ansible_port=0"),
        ("ansible_port", [22], "ansible_port=[22]"),
        ("ansible_timeout", "abc", "ansible_timeout='abc'"),
        ("ansible_timeout", "inf", "ansible_timeout='inf'"),
        ("ansible_ssh_timeout", "ten", "ansible_ssh_timeout='ten'"),
        ("ansible_ssh_timeout", -3, "ansible_ssh_timeout=-3"),
        ("ansible_become", "maybe", "ansible_become='maybe'"),
        ("ansible_host", "", "ansible_host=''"),
        ("ansible_host", "127.0.0.1\x00", "ansible_host='127.0.0.1\\x00'"),
        ("ansible_user", {"name": "x"}, "ansible_user={'name': 'x'}"),
    ],
)
@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
def test_bad_connection_variable_is_exit_2_and_recorded_nowhere(
    client: str, var: str, value: Any, shown: str, tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, remote = inventory(tmp_path, sshd, **{var: value})
    plan = plan_for(tmp_path, "web1")
    code = main([str(plan), "-i", str(inv), "--run", "--ssh-client", client, "--output", "text"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {inv}: web1: {shown}"), err
    assert "hint:" in err and "Traceback" not in err
    assert deployments(capsys) == []
    assert not remote.exists(), "no host may be touched"
    assert not (tmp_path / "work").exists()


def test_port_in_the_ssh_arguments_and_every_bad_host_is_named(
    tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    remote = tmp_path / "remote"
    web1 = {k: v for k, v in sshd.host("web1", remote).vars.items() if k != "ansible_port"}  # the args' port counts
    hosts = {
        "web1": {**web1, "ansible_ssh_extra_args": "-p 99999"},
        "web2": {**sshd.host("web2", remote).vars, "ansible_ssh_common_args": "-o ConnectTimeout=soon"},
        "web3": dict(sshd.host("web3", remote).vars),
    }
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    plan = plan_for(tmp_path, "all")
    code = main([str(plan), "-i", str(inv), "--run", "--output", "text"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "web1: ansible_ssh_extra_args: Port='99999': not a port number" in err
    assert "web2: ansible_ssh_common_args: ConnectTimeout='soon': not a number of seconds" in err
    assert "web3" not in err
    assert deployments(capsys) == []
    assert not remote.exists()


@pytest.mark.parametrize(
    ("mode", "needs_plan"),
    [(["--dry-run"], True), (["--cleanup"], False), (["--cleanup", "--dry-run"], False)],
)
def test_every_mode_that_reaches_hosts_checks_first(
    mode: list[str], needs_plan: bool, tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, remote = inventory(tmp_path, sshd, ansible_port="twenty-two")
    args = ([str(plan_for(tmp_path, "web1"))] if needs_plan else []) + ["-i", str(inv), *mode]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "web1: ansible_port='twenty-two': not a port number" in err
    assert deployments(capsys) == []
    assert not remote.exists()


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("parallel_jobs = 1e400", "deployment.parallel_jobs: expected a positive integer, got inf"),
        ("parallel_jobs = inf", "deployment.parallel_jobs: expected a positive integer, got inf"),
        ("parallel_jobs = -inf", "deployment.parallel_jobs: expected a positive integer, got -inf"),
        ("default_timeout_secs = inf", "deployment.default_timeout_secs: expected a finite number"),
        ("default_timeout_secs = 1e400", "deployment.default_timeout_secs: expected a finite number"),
        ('state_db = "a\\u0000b"', "deployment.state_db: expected a path without NUL characters"),
    ],
)
def test_bad_config_values_are_exit_2_and_recorded_nowhere(
    line: str, needle: str, tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    inv, remote = inventory(tmp_path, sshd)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f"[deployment]\n{line}\n")
    code = main([str(plan_for(tmp_path, "web1")), "-i", str(inv), "--config", str(cfg), "--run", "--output", "text"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith(f"error: {cfg}: {needle}"), err
    assert deployments(capsys) == []
    assert not remote.exists()


@pytest.mark.parametrize("flag", [["--timeout", "nan"], ["--timeout", "inf"], ["--health-interval", "nan"],
                                  ["--health-timeout", "inf"]])
def test_non_finite_flags_are_usage_errors(flag: list[str], tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]) -> None:
    inv, remote = inventory(tmp_path, sshd)
    gate = ["--health-check", "true"] if flag[0].startswith("--health") else []
    code = main([str(plan_for(tmp_path, "web1")), "-i", str(inv), "--run", *gate, *flag])
    err = capsys.readouterr().err
    assert code == 2 and f"error: {flag[0]} must be a finite number greater than 0, got {flag[1]}" in err, err
    assert deployments(capsys) == []
    assert not remote.exists()


def test_an_error_quoting_inventory_data_shows_control_characters_visibly(
    tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "web\x1bc\rweb2"  # ESC c resets the terminal
    inv, remote = inventory(tmp_path, sshd, name=name, ansible_port="2\x1b]0;x\x07")
    code = main([str(plan_for(tmp_path, name)), "-i", str(inv), "--run", "--output", "text"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert not [c for c in err if ord(c) < 32 and c != "\n"], repr(err)
    assert "web\\x1bc\\rweb2: ansible_port='2\\x1b]0;x\\x07': not a port number" in err
    assert not remote.exists()


def test_rollback_and_deploy_only_check_before_recording(tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """With a real deployment in the history, a bad value in the inventory adds nothing to it."""
    inv, remote = inventory(tmp_path, sshd)
    plan = plan_for(tmp_path, "web1")
    assert main([str(plan), "-i", str(inv), "--output", "json"]) == 0, capsys.readouterr().err
    before = deployments(capsys)
    assert len(before) == 1
    bad, _ = inventory(tmp_path, sshd, ansible_port="22x")
    out = tmp_path / "compiled"
    assert main([str(plan), "-i", str(bad), "--compile-only", "-o", str(out), "--output", "json"]) == 0
    for args in (["--rollback", "-i", str(bad)], ["--deploy-only", "-o", str(out), "-i", str(bad)]):
        capsys.readouterr()
        code = main([*args, "--output", "json"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "web1: ansible_port='22x': not a port number" in err
        assert deployments(capsys) == before
