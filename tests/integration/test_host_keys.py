"""Host keys over a real sshd, through the command line, for the OpenSSH client and asyncssh:
a changed key gets OpenSSH's warning and no suggestion to trust it; only a key never seen
before gets the hint to append it (issue 11, "Smaller, same class")."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from rustle_deploy.cli import main

from ..conftest import EXAMPLE_PLAN

pytestmark = [pytest.mark.ssh, pytest.mark.usefixtures("rustle_home")]


def run(tmp_path: Path, sshd: Any, client: str, known_hosts: Path, mode: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, dict[str, Any]]:
    """Deploy the example plan to one host of the sshd; (exit code, stderr, the host's JSON entry)."""
    args = f"-o UserKnownHostsFile={known_hosts} -o StrictHostKeyChecking={mode}"
    host = dict(sshd.host("web1", tmp_path / "remote", ansible_ssh_common_args=args).vars)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {"web1": host}}}))
    plan = json.loads(EXAMPLE_PLAN.read_text())
    plan["hosts"] = plan["plays"][0]["hosts"] = plan["plays"][0]["batches"][0]["hosts"] = ["web1"]
    for task in plan["plays"][0]["batches"][0]["tasks"]:
        task["hosts"] = ["web1"]
    plan["plays"][0]["vars"]["workdir"] = str(tmp_path / "work")
    mine = tmp_path / "plan"
    shutil.copytree(EXAMPLE_PLAN.parent, mine, dirs_exist_ok=True)
    (mine / "plan.json").write_text(json.dumps(plan))
    code = main([str(mine / "plan.json"), "-i", str(inv), "--ssh-client", client, "--output", "json", "--run"])
    out, err = capsys.readouterr()
    assert out, err
    (entry,) = json.loads(out)["hosts"]
    return code, err, entry


def other_key_line(sshd: Any, kind: str, tmp_path: Path) -> str:
    """A known_hosts line for the sshd's address with a key that is not its key."""
    if kind == "ed25519":
        typ, data = (sshd.root / "other_ed25519.pub").read_text().split()[:2]
    else:
        subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "ecdsa")], check=True)
        typ, data = (tmp_path / "ecdsa.pub").read_text().split()[:2]
    return f"[127.0.0.1]:{sshd.port} {typ} {data}\n"


@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
@pytest.mark.parametrize("mode", ["yes", "accept-new"])
@pytest.mark.parametrize("hashed", [False, True], ids=["plain", "hashed"])
def test_a_changed_host_key_gets_the_openssh_warning_and_no_way_to_trust_it(
    client: str, mode: str, hashed: bool, tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("[10.9.9.9]:22 " + sshd.host_pub + "\n" + other_key_line(sshd, "ed25519", tmp_path))
    if hashed:
        subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    before = known.read_text()
    code, err, entry = run(tmp_path, sshd, client, known, mode, capsys)
    assert code == 1 and not entry["ok"]
    error = entry["error"]
    assert "WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED" in error
    assert "the host key has CHANGED".lower() in error.lower() and str(known) in error
    assert "man-in-the-middle" in error and "investigate" in error
    assert "SHA256:" in error, "the fingerprint of the key the host sent, as OpenSSH shows it"
    for trusting in ("ssh-keyscan", ">>", "accept-new", "StrictHostKeyChecking=no"):
        assert trusting not in error, f"a changed key must not come with a way to trust it: {trusting}"
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in err and "ssh-keyscan" not in err
    assert known.read_text() == before, "nothing is added to known_hosts"
    assert not (tmp_path / "remote").exists()


@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
def test_a_known_key_of_another_type_is_a_changed_key_too(
    client: str, tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """OpenSSH warns when known_hosts holds only a key of another type for the host; whatever
    the transport makes of it, it never suggests appending the key it was sent."""
    known = tmp_path / "known_hosts"
    known.write_text(other_key_line(sshd, "ecdsa", tmp_path))
    code, err, entry = run(tmp_path, sshd, client, known, "yes", capsys)
    assert code == 1 and not entry["ok"]
    assert "ssh-keyscan" not in entry["error"] and "accept-new" not in entry["error"]
    if client == "openssh":
        assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in entry["error"]


@pytest.mark.parametrize("client", ["openssh", "asyncssh"])
@pytest.mark.parametrize("content", ["", "elsewhere"])
def test_a_never_seen_key_gets_the_hint_to_check_and_append_it(
    client: str, content: str, tmp_path: Path, sshd: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    known = tmp_path / "known_hosts"
    known.write_text("" if not content else f"[127.0.0.1]:{sshd.port + 1} {sshd.host_pub}\n10.9.9.9 {sshd.host_pub}\n")
    code, err, entry = run(tmp_path, sshd, client, known, "yes", capsys)
    assert code == 1 and not entry["ok"]
    error = entry["error"]
    assert "host key is not trusted" in error and "no key is known for" in error
    assert "CHANGED" not in error and "WARNING" not in error
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1 >> {known}" in error
    # accept-new records it, and the next run checks against it
    code, err, entry = run(tmp_path, sshd, client, known, "accept-new", capsys)
    assert code == 0 and entry["ok"], err
    assert sshd.host_pub in known.read_text()
    code, err, entry = run(tmp_path, sshd, client, known, "yes", capsys)
    assert code == 0 and entry["ok"], err
