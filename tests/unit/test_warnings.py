"""Third-party deprecation notices stay out of users' terminals and the suite; ours do not."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _quiet_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)  # what a user's shell has: Python's default filters
    return env


def test_importing_the_ssh_transport_prints_no_warning() -> None:
    # asyncssh's import touches cryptography's deprecated DSA classes; a user must not see that
    result = subprocess.run([sys.executable, "-c", "import rustle_deploy.transport.ssh"],
                            capture_output=True, text=True, env=_quiet_env())
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_cli_on_the_asyncssh_path_prints_no_warning(tmp_path: Path) -> None:
    # --help of a command that loads the asyncssh transport through the same imports as a run
    code = "import rustle_deploy.transport.ssh, rustle_deploy.cli as c; c.main(['--version'])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=_quiet_env(), cwd=tmp_path)
    assert "Warning" not in result.stderr, result.stderr


def test_own_warnings_still_fail_the_suite() -> None:
    filters = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]
    assert filters[0] == "error"
    for entry in filters[1:]:
        action, _message, category, *module = (entry.split(":") + [""])[:4]
        assert action == "ignore", entry
        assert "rustle" not in entry, f"{entry}: our own warnings must stay errors"
        # a third-party filter names the module that raises, or a category of its own package
        assert module[0] or category.split(".")[0] not in ("", "DeprecationWarning", "UserWarning", "Warning") \
            or category == "ResourceWarning", entry
