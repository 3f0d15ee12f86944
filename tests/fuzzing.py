"""Shared pieces of the fuzz tests (``-m fuzz``): example counts, hostile values, a sandbox.

Each fuzz test asks for a CI-sized number of examples through ``fuzz_settings`` (2,910 in
all, with test_plan_fuzz.py); the environment variable ``RUSTLE_FUZZ_SCALE`` multiplies them
all. ``make fuzz`` sets it to 35: about a hundred thousand examples (README.md, "Development").

The property everywhere: whatever the input, the command line ends with exit 0, or exit 2 and
a message (``error: ...``, or click's usage text); never with an exception, and never with a
host touched: the commands fuzzed here (``--list-inventory``, ``--dry-run``) reach no host.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from rustle_deploy.cli import main

SCALE = float(os.environ.get("RUSTLE_FUZZ_SCALE") or 1)


def fuzz_settings(examples: int) -> settings:
    """Hypothesis settings for ``examples`` examples in CI, times RUSTLE_FUZZ_SCALE."""
    return settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )


# Values that broke or could break a parser, a conversion or a program's argv.
HOSTILE_TEXT = [
    "", " ", "abc", "0", "-1", "22", "65535", "65536", "70000", "99999999999999999999999", "1e400", "-1e400",
    "inf", "-inf", "nan", "1.5", "0x16", "٢٢", "²", "true", "no", "maybe", "None", "null", "~", "-", "--",
    "-oProxyCommand=touch /tmp/x", "'unterminated", '"', "a b", "\x00", "a\x00b", "\x1b[2J", "line\nbreak",
    "\r", "\t", "\u202e", "日本", "{{ x }}", "{% raw %}", "[", "]", "a:b", "[::1]:22", "@", "/", "~/x", "~0",
    "../../etc", "$HOME", "`id`", "$(id)", ";", "|", "&&", "#", "=", "a=b",
]
HOSTILE = [*HOSTILE_TEXT, 0, 1, -1, 22, 65535, 65536, 2**63, -(2**70), 1.5, 22.0, float("inf"), float("-inf"),
           float("nan"), 1e308, True, False, None, [], [22], {}, {"a": 1}]


def hostile(text_size: int = 12) -> st.SearchStrategy[Any]:
    """One value of any shape: a hostile one, or random text or numbers."""
    return (
        st.sampled_from(HOSTILE)
        | st.integers(4290, 4310).map(lambda n: "9" * n)  # past int()'s limit on digits
        | st.text(max_size=text_size)
        | st.integers()
        | st.floats()
        | st.lists(st.sampled_from(HOSTILE_TEXT), max_size=2)
    )


def run_main(argv: list[str]) -> tuple[int, str, str]:
    """``cli.main(argv)`` with its output captured; an exception escapes (a failure)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_clean(code: int, out: str, err: str) -> None:
    """Exit 0, or exit 2 with a message (never a traceback)."""
    assert code in (0, 2), f"exit {code}\n{err}"
    assert "Traceback" not in err
    if code == 2:
        assert err.startswith(("error: ", "Usage: ", "Error: ")), err


@contextlib.contextmanager
def sandbox(root: Path) -> Iterator[Path]:
    """HOME, the working directory and RUSTLE_* variables set aside for a fuzz test."""
    home = root / "home"
    (home / ".rustle").mkdir(parents=True, exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        for var in list(os.environ):
            if var.startswith("RUSTLE_"):
                mp.delenv(var)
        mp.chdir(root)
        yield home


def quick_config(root: Path) -> Path:
    """A config that makes dry runs cheap: the payload is stored, not compressed."""
    path = root / "quick.toml"
    path.write_text("[compilation]\ncompression = false\n")
    return path
