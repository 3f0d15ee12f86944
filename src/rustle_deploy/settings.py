"""Settings: defaults < ``~/.rustle/config.toml`` (or ``--config``) < ``RUSTLE_*`` env < flags.

The config file keeps the seed's sections (``[deployment]``, ``[compilation]``, ``[targets]``,
``[cross_compilation]``). Unknown sections or keys and values of the wrong type are errors
naming the file and the key. Keys that only meant something to the seed's Rust compiler
(``optimization_level``, ``strip_symbols``, ``use_docker``,
``toolchain_auto_install``) are accepted so existing files keep working, and reported by
:func:`Settings.notes` as having no effect.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, UsageError

DEFAULT_CONFIG = "~/.rustle/config.toml"


@dataclass(frozen=True)
class Settings:
    cache_dir: Path = Path("~/.rustle/cache")
    output_dir: Path = Path("target")
    state_db: Path = Path("~/.rustle/state.db")
    parallel: int | None = None  # None: the plan's planning_options.forks, else 50
    timeout: float = 120.0
    verify: bool = False
    binary_size_limit: int = 50 * 1024 * 1024  # bytes
    compression: bool = True
    target: str | None = None
    static_linking: bool = False  # native format: runners without -t are the +static build
    ssh_client: str = "auto"  # auto | openssh | asyncssh (transport/__init__.py)
    artifact_format: str = "auto"  # auto | pyz | native | hybrid (--format; docs/native.md, "Choosing the format")
    # where playbooks find roles (ansible.cfg roles_path / ANSIBLE_ROLES_PATH)
    roles_path: tuple[str, ...] = ("~/.ansible/roles", "/usr/share/ansible/roles", "/etc/ansible/roles")
    # webhooks POSTed JSON on deployment start, each host's outcome and the end (notify.py)
    notify: tuple[str, ...] = ()
    notify_timeout: float = 5.0
    ignored_keys: tuple[str, ...] = field(default=(), compare=False)

    def hosts_at_once(self, forks: int = 0) -> int:
        """How many hosts a run handles at once: --parallel, else the plan's forks, else 50."""
        return self.parallel or (forks if forks > 0 else 50)

    def notes(self) -> list[str]:
        """Human notes about accepted settings that have no effect."""
        return [
            f"config key '{key}' has no effect in rustle-deploy (artifacts are Python zip apps)"
            for key in self.ignored_keys
        ]


# section -> key -> (Settings field or None when accepted without effect, parser)
def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a positive integer")
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: inf, and 1e400 (TOML reads it as inf)
        raise ValueError("expected a positive integer") from None
    if number < 1 or (isinstance(value, float) and value != number):
        raise ValueError("expected a positive integer")
    return number


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number of seconds")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError("expected a number of seconds") from None
    if not (number > 0 and math.isfinite(number)):
        raise ValueError("expected a finite number of seconds greater than 0")
    return number


def _path(value: Any) -> Path:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a path")
    if "\x00" in value:
        raise ValueError("expected a path without NUL characters")
    try:
        return Path(value).expanduser()
    except RuntimeError:  # ~nosuchuser, or no home directory to be found
        raise ValueError("cannot expand its ~ (no such user, or no home directory)") from None


def expand_path(value: str | os.PathLike[str], what: str) -> Path:
    """``value`` with a leading ``~``/``~user`` expanded; ConfigError naming ``what`` if it cannot be."""
    try:
        return Path(value).expanduser()
    except RuntimeError:
        raise ConfigError(f"cannot expand {str(value)!r}: no such user, or no home directory",
                          "write the path without ~, or set HOME", key=what) from None


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)


def parse_size(value: Any, default_unit: str = "MB") -> int:
    """``50`` (in ``default_unit``), ``"50MB"``, ``"1.5GiB"``, ``"800kB"`` -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 50MB")
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError("expected a size such as 50MB")
    unit = (match.group(2) or default_unit).upper().rstrip("B").rstrip("I") or "B"
    scale = {"B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}[unit]
    number = float(match.group(1)) * scale
    if not math.isfinite(number):  # 400 digits: float() says inf
        raise ValueError("expected a size such as 50MB")
    size = int(number)
    if size <= 0:
        raise ValueError("expected a size greater than 0")
    return size


def _size_mb(value: Any) -> int:
    return parse_size(value, "MB")


def _ssh_client(value: Any) -> str:
    if value not in ("auto", "openssh", "asyncssh"):
        raise ValueError("expected auto, openssh or asyncssh")
    return str(value)


def _format(value: Any) -> str:
    if value not in ("auto", "pyz", "native", "hybrid"):
        raise ValueError("expected auto, pyz, native or hybrid")
    return str(value)


def _url(value: Any) -> str:
    """An http(s) URL (``--notify``, ``[notify] urls``)."""
    from urllib.parse import urlsplit

    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc:
        raise ValueError("expected an http:// or https:// URL")
    return value


def _urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ValueError("expected a list of http:// or https:// URLs")
    return tuple(_url(v) for v in value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a string")
    return value


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return value


_SCHEMA: dict[str, dict[str, tuple[str | None, Any]]] = {
    "deployment": {
        "cache_dir": ("cache_dir", _path),
        "output_dir": ("output_dir", _path),
        "state_db": ("state_db", _path),
        "parallel_jobs": ("parallel", _positive_int),
        "default_timeout_secs": ("timeout", _seconds),
        "verify_deployments": ("verify", _bool),
        "ssh_client": ("ssh_client", _ssh_client),
    },
    "compilation": {
        "binary_size_limit_mb": ("binary_size_limit", _size_mb),
        "compression": ("compression", _bool),
        "format": ("artifact_format", _format),
        "optimization_level": (None, _string),
        "strip_symbols": (None, _bool),
        "static_linking": ("static_linking", _bool),  # native runners: the +static build
    },
    "targets": {
        "default_arch": ("target", _string),
        "supported_targets": (None, _string_list),
    },
    "notify": {
        "urls": ("notify", _urls),
        "timeout_secs": ("notify_timeout", _seconds),
    },
    "cross_compilation": {
        "use_docker": (None, _bool),
        "toolchain_auto_install": (None, _bool),
    },
}

_ENV: dict[str, tuple[str, Any]] = {
    "RUSTLE_DEPLOY_CACHE_DIR": ("cache_dir", _path),
    "RUSTLE_BINARY_SIZE_LIMIT": ("binary_size_limit", _size_mb),
    "RUSTLE_DEPLOYMENT_TIMEOUT": ("timeout", _seconds),
    "RUSTLE_PARALLEL_JOBS": ("parallel", _positive_int),
    "RUSTLE_VERIFY_DEPLOYMENTS": ("verify", _bool),
    "RUSTLE_STATE_DB": ("state_db", _path),
    "RUSTLE_SSH_CLIENT": ("ssh_client", _ssh_client),
    "RUSTLE_FORMAT": ("artifact_format", _format),
}


def _from_file(path: Path, required: bool) -> tuple[dict[str, Any], list[str]]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError("no such file", "check the --config path", file=str(path)) from None
        return {}, []
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from exc
    import tomllib  # only when there is a file: every command pays this import otherwise

    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid TOML: {exc}", "see README.md, 'Configuration'", file=str(path)) from exc
    values: dict[str, Any] = {}
    ignored: list[str] = []
    for section, table in doc.items():
        if section not in _SCHEMA:
            raise ConfigError(
                "unknown section",
                f"known sections: {', '.join(sorted(_SCHEMA))}",
                file=str(path),
                key=f"[{section}]",
            )
        if not isinstance(table, dict):
            raise ConfigError("expected a table", file=str(path), key=section)
        for key, value in table.items():
            name = f"{section}.{key}"
            if key not in _SCHEMA[section]:
                raise ConfigError(
                    "unknown key",
                    f"keys of [{section}]: {', '.join(sorted(_SCHEMA[section]))}",
                    file=str(path),
                    key=name,
                )
            target, parse = _SCHEMA[section][key]
            try:
                parsed = parse(value)
            except ValueError as exc:
                raise ConfigError(f"{exc}, got {value!r}", file=str(path), key=name) from None
            if target is None:
                ignored.append(name)
            else:
                values[target] = parsed
    return values, ignored


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for var, (target, parse) in _ENV.items():
        if var in environ and environ[var] != "":
            try:
                values[target] = parse(environ[var])
            except ValueError as exc:
                raise ConfigError(f"{exc}, got {environ[var]!r}", key=var) from None
    return values


def check_flags(flags: Mapping[str, Any]) -> None:
    """Refuse numeric flag values no run can use (0 or less, inf, nan), naming the flag."""
    for name in ("parallel", "timeout", "health_interval", "health_timeout"):
        value = flags.get(name)
        if value is None or 0 < value < math.inf:
            continue
        flag = "--" + name.replace("_", "-")
        if value <= 0:
            raise UsageError(f"{flag} must be greater than 0")
        raise UsageError(f"{flag} must be a finite number greater than 0, got {value}")


def load_settings(
    config: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults, the config file, the environment and flag ``overrides`` (None = unset)."""
    env = os.environ if environ is None else environ
    required = config is not None
    path = expand_path(config if config is not None else DEFAULT_CONFIG, "--config")
    file_values, ignored = _from_file(path, required)
    merged: dict[str, Any] = {**file_values, **_from_env(env)}
    known = {f.name for f in fields(Settings)}
    for key, value in (overrides or {}).items():
        if key not in known:
            raise ConfigError("unknown setting", key=key)
        if value is not None:
            merged[key] = value
    settings = replace(Settings(), **merged, ignored_keys=tuple(ignored))
    return replace(
        settings,
        cache_dir=expand_path(settings.cache_dir, "cache_dir"),
        output_dir=expand_path(settings.output_dir, "output_dir"),
        state_db=expand_path(settings.state_db, "state_db"),
    )
