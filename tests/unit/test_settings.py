"""Settings precedence and strictness: defaults < config file < environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustle_deploy.errors import ConfigError
from rustle_deploy.settings import load_settings, parse_size


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults_without_file(tmp_path: Path) -> None:
    s = load_settings(None, environ={"HOME": str(tmp_path)})
    assert s.timeout == 120
    assert s.parallel is None
    assert s.verify is False
    assert s.binary_size_limit == 50 * 1024 * 1024


def test_precedence_file_env_flags(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[deployment]\nparallel_jobs = 8\ndefault_timeout_secs = 30\nverify_deployments = true\n")
    s = load_settings(cfg, environ={})
    assert (s.parallel, s.timeout, s.verify) == (8, 30, True)
    s = load_settings(cfg, environ={"RUSTLE_PARALLEL_JOBS": "16"})
    assert (s.parallel, s.timeout) == (16, 30)
    s = load_settings(cfg, environ={"RUSTLE_PARALLEL_JOBS": "16"}, overrides={"parallel": 4, "timeout": None})
    assert (s.parallel, s.timeout) == (4, 30)


def test_seed_sections_accepted_with_notes(tmp_path: Path) -> None:
    cfg = write(
        tmp_path,
        '[compilation]\noptimization_level = "release"\nstrip_symbols = true\nbinary_size_limit_mb = 10\n'
        '[targets]\ndefault_arch = "x86_64-unknown-linux-gnu"\nsupported_targets = ["a"]\n'
        "[cross_compilation]\nuse_docker = false\n",
    )
    s = load_settings(cfg, environ={})
    assert s.binary_size_limit == 10 * 1024 * 1024
    assert s.target == "x86_64-unknown-linux-gnu"
    assert any("compilation.strip_symbols" in n for n in s.notes())


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[deployment]\nparalel_jobs = 3\n", "deployment.paralel_jobs"),
        ("[deploy]\nx = 1\n", "[deploy]"),
        ('[deployment]\nparallel_jobs = "many"\n', "deployment.parallel_jobs"),
        ("[deployment]\nparallel_jobs = 0\n", "deployment.parallel_jobs"),
        ('[deployment]\nverify_deployments = "perhaps"\n', "deployment.verify_deployments"),
        ("[compilation]\nbinary_size_limit_mb = -1\n", "compilation.binary_size_limit_mb"),
        ('[compilation]\nbinary_size_limit_mb = "' + "9" * 400 + '"\n', "compilation.binary_size_limit_mb"),
        ("[deployment]\nparallel_jobs = 1e400\n", "deployment.parallel_jobs"),
        ("[deployment]\nparallel_jobs = -inf\n", "deployment.parallel_jobs"),
        ("[deployment]\ndefault_timeout_secs = inf\n", "deployment.default_timeout_secs"),
        ("[deployment]\ndefault_timeout_secs = nan\n", "deployment.default_timeout_secs"),
        ('[deployment]\ncache_dir = "a\\u0000b"\n', "deployment.cache_dir"),
    ],
)
def test_bad_file_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    cfg = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg, environ={})
    assert key in str(info.value)
    assert str(cfg) in str(info.value)


def test_bad_toml_names_file(tmp_path: Path) -> None:
    cfg = write(tmp_path, "[deployment\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, environ={})


def test_missing_explicit_config_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml", environ={})


@pytest.mark.parametrize("var", ["RUSTLE_PARALLEL_JOBS", "RUSTLE_DEPLOYMENT_TIMEOUT", "RUSTLE_BINARY_SIZE_LIMIT", "RUSTLE_VERIFY_DEPLOYMENTS"])
def test_bad_env_values_name_the_variable(var: str) -> None:
    for value in ("lots", "inf", *(["9" * 400] if var == "RUSTLE_BINARY_SIZE_LIMIT" else [])):
        with pytest.raises(ConfigError) as info:
            load_settings(None, environ={var: value, "HOME": "/nonexistent"})
        assert var in str(info.value)


@pytest.mark.parametrize(("text", "size"), [("50MB", 50 << 20), ("50", 50 << 20), ("1GiB", 1 << 30), ("800kB", 800 << 10), ("1.5MB", int(1.5 * (1 << 20)))])
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_ssh_client_from_file_env_and_flag(tmp_path: Path) -> None:
    assert load_settings(None, environ={"HOME": str(tmp_path)}).ssh_client == "auto"
    cfg = write(tmp_path, '[deployment]\nssh_client = "asyncssh"\n')
    assert load_settings(cfg, environ={}).ssh_client == "asyncssh"
    assert load_settings(cfg, environ={"RUSTLE_SSH_CLIENT": "openssh"}).ssh_client == "openssh"
    s = load_settings(cfg, environ={"RUSTLE_SSH_CLIENT": "openssh"}, overrides={"ssh_client": "auto"})
    assert s.ssh_client == "auto"
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, '[deployment]\nssh_client = "putty"\n'), environ={})
    assert "deployment.ssh_client" in str(info.value) and "openssh" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"HOME": str(tmp_path), "RUSTLE_SSH_CLIENT": "plink"})
    assert "RUSTLE_SSH_CLIENT" in str(info.value)


def test_hosts_at_once() -> None:
    s = load_settings(None, environ={})
    assert (s.hosts_at_once(), s.hosts_at_once(0), s.hosts_at_once(7)) == (50, 50, 7)
    assert load_settings(None, environ={}, overrides={"parallel": 3}).hosts_at_once(7) == 3
