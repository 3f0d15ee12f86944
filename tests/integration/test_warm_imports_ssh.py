"""What a warm deployment's controller process imports (issue 16): a run whose artifact is cached,
over the real sshd, in a fresh interpreter each time, as a user's ``rustle-deploy`` starts.

The IDNA codec (encodings.idna, stringprep, unicodedata) and getpass (termios) are imported only
when needed: a non-ASCII host name, a password asked on the terminal. A warm run is served by the
run cache (runcache.py): it neither parses the plan nor compiles it, so Jinja2, YAML, the
runtime's templating, the playbook front end and the per-host compiler stay unimported. A
changed plan is still compiled again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.transport.options import _idna_check

from ..conftest import make_plan
from .test_cleanup import ssh_hosts, write_inventory

NOT_ON_A_WARM_RUN = ("encodings.idna", "stringprep", "unicodedata", "getpass", "termios",
                     "jinja2", "yaml", "rustle_runtime", "rustle_deploy.playbook", "rustle_deploy.compiler.units",
                     "rustle_deploy.compiler.native", "rustle_deploy.compiler.lookups", "rustle_deploy.plan",
                     "rustle_deploy.inventory.yaml_json", "rustle_deploy.inventory.ini")


def _deploy(plan: Path, inv: Path, home: Path) -> dict[str, Any]:
    """``rustle-deploy PLAN -i INV --run --output json`` in a fresh interpreter: its exit code,
    the report and which of NOT_ON_A_WARM_RUN it imported."""
    code = (
        "import json, sys\nfrom rustle_deploy.cli import main\n"
        f"rc = main([{str(plan)!r}, '-i', {str(inv)!r}, '--run', '--output', 'json'])\n"
        f"print('\\nMODULES', json.dumps({{'rc': rc, 'modules': [m for m in {NOT_ON_A_WARM_RUN!r} "
        "if m in sys.modules]}))\n"
    )
    env = {**os.environ, "HOME": str(home), "RUSTLE_STATE_DB": str(home / "state.db")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          stdin=subprocess.DEVNULL)
    report, _, tail = done.stdout.rpartition("\nMODULES ")
    assert tail, done.stderr
    return {**json.loads(tail), "report": json.loads(report), "stderr": done.stderr}


def test_a_warm_run_imports_neither_the_parsers_nor_the_idna_codec_and_a_changed_plan_compiles_again(
        sshd: Any, tmp_path: Path, rustle_home: Path, native_cache: Path) -> None:
    """--format auto (the native runner, seeded as an installation that ships it has it)."""
    inv = write_inventory(tmp_path, ssh_hosts(sshd, tmp_path, ["w1", "w2"]))
    plan = make_plan(tmp_path, [{"module": "command", "args": {"cmd": "echo one"}}], hosts=("w1", "w2"))
    cold = _deploy(plan, inv, rustle_home)
    assert cold["rc"] == 0, cold["stderr"]
    warm = _deploy(plan, inv, rustle_home)
    assert warm["rc"] == 0, warm["stderr"]
    assert warm["modules"] == []
    hashes = {h["name"]: h["sha256"] for h in warm["report"]["hosts"]}
    assert hashes == {h["name"]: h["sha256"] for h in cold["report"]["hosts"]}  # the cached artifacts
    assert all(h["uploaded"] is False for h in warm["report"]["hosts"])

    doc = json.loads(plan.read_text())
    doc["plays"][0]["batches"][0]["tasks"][0]["args"]["cmd"] = "echo two"
    plan.write_text(json.dumps(doc))
    changed = _deploy(plan, inv, rustle_home)
    assert changed["rc"] == 0, changed["stderr"]
    assert all(h["uploaded"] is True for h in changed["report"]["hosts"])
    assert not {h["sha256"] for h in changed["report"]["hosts"]} & set(hashes.values())


@pytest.mark.parametrize("address", ["", ".", "a.", "a..b", ".a", "x" * 63, "x" * 64, "a." + "x" * 63,
                                     "a." + "x" * 64, "x" * 64 + ".b", "127.0.0.1", "::1", "web-1.example.com",
                                     "bücher.example", "b\u00fccher..example", "\u00e9" * 70])
def test_the_host_name_check_refuses_what_the_idna_codec_refuses(address: str) -> None:
    try:
        address.encode("idna")
    except UnicodeError:
        with pytest.raises(UnicodeError):
            _idna_check(address)
    else:
        _idna_check(address)


@pytest.mark.parametrize("env", [{}, {"LOGNAME": "ann"}, {"USER": "bob"}, {"LNAME": "cy", "USERNAME": "dee"},
                                 {"USERNAME": "dee"}, {"LOGNAME": "", "USER": "eve"}, {"SUDO_USER": "fay"}])
def test_the_history_names_the_user_as_getpass_does(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import getpass

    from rustle_deploy.state import login_name

    for var in ("LOGNAME", "USER", "LNAME", "USERNAME", "SUDO_USER"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    name = getpass.getuser()
    assert login_name() == (f"fay (as {name})" if env.get("SUDO_USER") else name)
