"""Property: no config file, RUSTLE_* variable or --parallel/--timeout value makes the command
line end other than with exit 0 or a clean exit 2; a setting that is accepted is one the run
can use (a positive whole number of hosts, a finite timeout, a path without NUL...)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from rustle_deploy.errors import ConfigError
from rustle_deploy.settings import _ENV, _SCHEMA, Settings, load_settings

from ..conftest import make_plan
from ..fuzzing import HOSTILE_TEXT, assert_clean, fuzz_settings, run_main, sandbox

pytestmark = pytest.mark.fuzz

# TOML values as written in a file, so that 1e400, inf and nan are there as users write them.
NUMBERS = ["0", "1", "-1", "8", "4.0", "1.5", "0.0", "-0.0", "1e400", "-1e400", "inf", "+inf", "-inf", "nan",
           "9223372036854775807", "99999999999999999999999", "1_000", "0x10", "0o7", "1e-400", "5e-324", "9" * 400]
STRINGS = ['"~0/x"', '"~nouser"', '""', '"auto"', '"openssh"', '"asyncssh"', '"50MB"', '"1.5GiB"', '"0"', '"-3"', '"x86_64-unknown-linux-gnu"',
           '"~/cache"', '"state.db"', '"a\\u0000b"', '"\\u001b[2J"', '"sub/dir"', '"true"', '"yes"', "'literal'"]
OTHER = ["true", "false", "[]", '["a", "b"]', "[1, 2]", "{}", "{ a = 1 }", "1979-05-27", "07:32:00",
         "1979-05-27T07:32:00Z"]


def _basic(text: str) -> str:
    """``text`` as a TOML basic string."""
    return '"' + "".join(c if c.isalnum() or c in " .-_/~:" else f"\\u{ord(c):04x}" for c in text[:40]) + '"'


toml_values = st.sampled_from(NUMBERS + STRINGS + OTHER) | st.sampled_from(HOSTILE_TEXT).map(_basic) | \
    st.integers().map(str) | st.text(max_size=10).map(_basic)
SECTIONS = sorted(_SCHEMA)
KEYS = sorted({k for keys in _SCHEMA.values() for k in keys})
BOOL = ["true", "false"]
GOOD = {  # values each key accepts, so that most files get past their first key
    "parallel_jobs": ["1", "8", "4.0"], "default_timeout_secs": ["30", "0.5", '"120"'],
    "verify_deployments": BOOL, "ssh_client": ['"auto"', '"openssh"', '"asyncssh"'],
    "cache_dir": ['"cache"', '"sub/dir"'], "output_dir": ['"out"'], "state_db": ['"state.db"'],
    "binary_size_limit_mb": ["10", '"50MB"', '"1.5GiB"'], "compression": BOOL, "optimization_level": ['"release"'],
    "strip_symbols": BOOL, "static_linking": BOOL, "default_arch": ['"x86_64-unknown-linux-gnu"', '"py3-none-any"'],
    "supported_targets": ['["x86_64-unknown-linux-gnu"]'], "use_docker": BOOL, "toolchain_auto_install": BOOL,
}


@st.composite
def config_files(draw: st.DrawFn) -> str:
    lines = []
    sections = st.sampled_from(SECTIONS) | st.sampled_from(SECTIONS) | st.sampled_from(["deploy", "Deployment", "x.y"])
    for section in draw(st.lists(sections, min_size=1, max_size=3, unique=True)):
        lines.append(f"[{section}]")
        known = sorted(_SCHEMA.get(section, {})) or KEYS
        keys = st.sampled_from(known) | st.sampled_from(known) | st.sampled_from(KEYS)
        for key in draw(st.lists(keys, min_size=1, max_size=4, unique=True)):
            good = GOOD.get(key) if draw(st.integers(0, 3)) else None
            lines.append(f"{key} = {draw(st.sampled_from(good) if good else toml_values)}")
    text = "\n".join(lines) + "\n"
    if draw(st.integers(0, 9)) == 0:  # now and then, a file that is not TOML at all
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(["[", "=", '"', "\x00", "\n=", "]]"])) + text[at:]
    return text


def _usable(s: Settings) -> None:
    assert s.parallel is None or (isinstance(s.parallel, int) and s.parallel >= 1)
    assert isinstance(s.timeout, float | int) and math.isfinite(s.timeout) and s.timeout > 0
    assert isinstance(s.binary_size_limit, int) and s.binary_size_limit > 0
    for path in (s.cache_dir, s.output_dir, s.state_db):
        assert "\x00" not in str(path)
    assert s.ssh_client in ("auto", "openssh", "asyncssh")
    assert s.target is None or isinstance(s.target, str)


_COUNT = itertools.count()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("config-fuzz")
    with sandbox(root):
        make_plan(root, [{"name": "hi", "module": "debug", "args": {"msg": "hi"}}])
        yield root


@fuzz_settings(300)
@given(config_files())
def test_config_files_are_refused_by_key_or_usable(root: Path, text: str) -> None:
    path = root / f"config-{next(_COUNT)}.toml"
    path.write_text(text)
    try:
        settings = load_settings(path, environ={})
    except ConfigError as exc:
        event("refused")
        assert str(exc).startswith(f"{path}: ")
        return
    finally:
        path.unlink()
    event("accepted")
    _usable(settings)


@fuzz_settings(80)
@given(config_files())
def test_config_files_through_the_command_line(root: Path, text: str) -> None:
    path = root / f"config-{next(_COUNT)}.toml"
    path.write_text(text)
    try:
        code, out, err = run_main([str(root / "plan" / "plan.json"), "--config", str(path), "--dry-run", "--output", "json"])
    finally:
        path.unlink()
    assert_clean(code, out, err)
    event(f"exit {code}")
    assert not list((root / "home" / ".rustle").iterdir()), "a dry run writes nothing"


@fuzz_settings(200)
@example(env={"RUSTLE_DEPLOY_CACHE_DIR": "~0"})  # found by make fuzz: RuntimeError from expanduser
@example(env={"RUSTLE_BINARY_SIZE_LIMIT": "9" * 400})  # found by make fuzz: OverflowError
@given(st.dictionaries(st.sampled_from(sorted(_ENV)), st.sampled_from(NUMBERS + HOSTILE_TEXT) | st.text(max_size=8),
                       max_size=4))
def test_environment_variables_are_refused_by_name_or_usable(root: Path, env: dict[str, str]) -> None:
    env = {k: v.replace("\x00", "") for k, v in env.items()}  # the environment cannot hold a NUL
    try:
        settings = load_settings(None, environ=env)
    except ConfigError as exc:
        event("refused")
        assert str(exc).startswith(tuple(env))
        return
    event("accepted")
    _usable(settings)


@fuzz_settings(80)
@example(flag="--timeout", value="nan")
@given(st.sampled_from(["--parallel", "--timeout"]), st.sampled_from(NUMBERS + HOSTILE_TEXT) | st.text(max_size=8))
def test_parallel_and_timeout_flags(root: Path, flag: str, value: str) -> None:
    code, out, err = run_main([str(root / "plan" / "plan.json"), flag, value, "--dry-run", "--output", "json"])
    assert_clean(code, out, err)
    event(f"exit {code}")
