"""Turn a host's Ansible connection variables into SSH settings (no I/O, no asyncssh).

Reads ``ansible_host``, ``ansible_port``, ``ansible_user``, ``ansible_ssh_private_key_file``
(or ``ansible_private_key_file``), ``ansible_password``/``ansible_ssh_pass``,
``ansible_host_key_checking``/``ansible_ssh_host_key_checking``, ``ansible_ssh_common_args``
and ``ansible_ssh_extra_args``. In those argument strings the OpenSSH flags ``-o KEY=VALUE``
(``UserKnownHostsFile``, ``StrictHostKeyChecking``, ``ProxyJump``, ``ProxyCommand``, ``Port``,
``User``, ``IdentityFile``, ``ConnectTimeout``), ``-J``, ``-i``, ``-F``, ``-p`` and ``-l`` are
honoured; other flags are accepted and ignored, as they only tune OpenSSH's own client.
Explicit inventory variables win over the argument strings. Also decides how the agent is
started on the host: ``ansible_become*`` and ``ansible_python_interpreter``.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
from dataclasses import dataclass
from typing import Any

from ..errors import ConnectError
from ..model import CREATED_MARKER, Host

PYTHON_CANDIDATES = ("/usr/bin/python3", "/usr/local/bin/python3", "/usr/libexec/platform-python", "python3")
EXIT_TOO_OLD = 86  # the bootstrap's status on Python < 3.8: try the next candidate

# Python-3.0-parseable: it must run far enough on an old interpreter to say "too old".
# The header is ``RUSTLE-AGENT <source len> <request len> <code len> <cache tag>``: after the
# source comes the agent compiled by the controller's Python (marshal), used when the host's
# interpreter has the same cache tag (saves ~7 ms of compiling per host), then the request.
BOOTSTRAP = (
    "import sys\n"
    f"if sys.version_info<(3,8):sys.exit({EXIT_TOO_OLD})\n"
    "i=sys.stdin.buffer\n"
    "h=i.readline().split()\n"
    "if not h:sys.exit(0)\n"
    "s=i.read(int(h[1]))\n"
    "c=i.read(int(h[3]))\n"
    "g={'__name__':'rustle_agent'}\n"
    "if c and h[4].decode()==sys.implementation.cache_tag:\n"
    " import marshal;k=marshal.loads(c)\n"
    "else:\n"
    " k=compile(s,'rustle_agent.py','exec')\n"
    "exec(k,g)\n"
    "g['main'](i.read(int(h[2])),i)\n"
)

_KEX_FIRST = "KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org"

# OpenSSH client flags that take an argument we do not use (so it must be skipped too).
_FLAGS_WITH_ARG = set("bcDEeIiLlmOoQRSWwBJFp")
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f"}


def as_bool(value: Any, default: bool = False) -> bool:
    """Ansible's boolean reading of a variable value."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return default


@dataclass(frozen=True)
class SshSettings:
    """Everything that decides how one host is reached; hashable, so it keys an options cache."""

    address: str
    port: int = 22
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    known_hosts: tuple[str, ...] = ()  # empty: ~/.ssh/known_hosts
    strict_host_key_checking: str = "yes"  # yes | no | accept-new
    proxy_jump: str | None = None
    proxy_command: str | None = None
    config_files: tuple[str, ...] | None = None  # None: ~/.ssh/config
    password: str | None = None
    connect_timeout: float | None = None


@dataclass(frozen=True)
class AgentLaunch:
    """How the agent is started on the host: privilege escalation and interpreter choice."""

    become: bool = False
    become_user: str = "root"
    python_interpreter: str | None = None  # None: discover
    runner: RunnerRef | None = None  # native format: start this rustle-runner instead of Python


@dataclass(frozen=True)
class RunnerRef:
    """The rustle-runner a native deployment starts on the host (docs/native.md)."""

    sha256: str
    size: int
    remote_dir: str


def _strict(value: str, host: Host) -> str:
    text = value.strip().lower()
    if text in ("yes", "true", "ask"):
        return "yes"
    if text in ("no", "false", "off"):
        return "no"
    if text == "accept-new":
        return "accept-new"
    raise ConnectError(
        host.name,
        f"{host.name}: ansible_ssh_common_args: StrictHostKeyChecking={value!r} is not understood",
        "use yes, no or accept-new",
    )


def _split_args(host: Host) -> list[str]:
    words: list[str] = []
    for var in ("ansible_ssh_common_args", "ansible_ssh_extra_args"):
        text = host.vars.get(var)
        if not text:
            continue
        try:
            words.extend(_shlex_split(str(text)))
        except ValueError as exc:
            raise ConnectError(
                host.name, f"{host.name}: {var}: cannot split {text!r}: {exc}", "check the quoting"
            ) from exc
    return words


@functools.lru_cache(maxsize=256)
def _shlex_split(text: str) -> tuple[str, ...]:
    """``shlex.split``, once per text: a fleet's hosts mostly share their ssh arguments, and each
    host's are read several times on the way to its ``ssh`` command line."""
    return tuple(shlex.split(text))


def parse_ssh_args(host: Host) -> dict[str, str | list[str]]:
    """The OpenSSH options found in the host's ssh argument strings, lower-cased keys.

    ``identityfile`` and ``userknownhostsfile`` collect lists; for the rest the first value
    wins, as in OpenSSH.
    """
    found: dict[str, str | list[str]] = {}

    def put(key: str, value: str) -> None:
        key = key.lower()
        if key in ("identityfile", "userknownhostsfile"):
            current = found.setdefault(key, [])
            assert isinstance(current, list)
            current.extend(value.split() if key == "userknownhostsfile" else [value])
        else:
            found.setdefault(key, value)

    words = _split_args(host)
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-") or len(word) < 2:
            continue
        flag, rest = word[1], word[2:]
        if flag not in _FLAGS_WITH_ARG:
            continue  # -C, -q, -T, -v, ...: no argument
        if not rest:
            if i >= len(words):
                raise ConnectError(
                    host.name, f"{host.name}: ansible_ssh_common_args: {word} needs a value", None
                )
            rest = words[i]
            i += 1
        if flag == "o":
            key, sep, value = rest.partition("=")
            if not sep:
                key, _, value = rest.partition(" ")
            put(key.strip(), value.strip())
        elif flag == "J":
            put("proxyjump", rest)
        elif flag == "i":
            put("identityfile", rest)
        elif flag == "F":
            found.setdefault("-f", rest)
        elif flag == "p":
            put("port", rest)
        elif flag == "l":
            put("user", rest)
    return found


def ssh_settings(host: Host) -> SshSettings:
    """The SSH settings of ``host``; raises ConnectError for values that cannot be used."""
    v = host.vars
    o = parse_ssh_args(host)

    def one(key: str) -> str | None:
        value = o.get(key)
        return value if isinstance(value, str) else None

    port_text = host.port if host.port is not None else one("port")
    try:
        port = int(port_text) if port_text is not None else 22
    except ValueError as exc:
        raise ConnectError(host.name, f"{host.name}: bad port {port_text!r}", "ports are numbers") from exc
    keyfile = v.get("ansible_ssh_private_key_file") or v.get("ansible_private_key_file")
    identity = [str(keyfile)] if keyfile else []
    ids = o.get("identityfile")
    if isinstance(ids, list):
        identity.extend(ids)
    known = o.get("userknownhostsfile")
    strict = "yes"
    checking = v.get("ansible_ssh_host_key_checking", v.get("ansible_host_key_checking"))
    if checking is not None and not as_bool(checking, True):
        strict = "no"
    if one("stricthostkeychecking"):
        strict = _strict(one("stricthostkeychecking") or "", host)
    timeout = one("connecttimeout") or v.get("ansible_ssh_timeout") or v.get("ansible_timeout")
    config = one("-f")
    password = v.get("ansible_ssh_pass", v.get("ansible_password"))
    return SshSettings(
        address=host.address,
        port=port,
        user=host.user or one("user"),
        identity_files=tuple(identity),
        known_hosts=tuple(known) if isinstance(known, list) else (),
        strict_host_key_checking=strict,
        proxy_jump=one("proxyjump") if (one("proxyjump") or "").lower() != "none" else None,
        proxy_command=one("proxycommand") if (one("proxycommand") or "").lower() != "none" else None,
        config_files=(config,) if config else None,
        password=str(password) if password not in (None, "") else None,
        connect_timeout=float(timeout) if timeout not in (None, "") else None,
    )


def agent_launch(host: Host, runner: tuple[str, int] | None = None) -> AgentLaunch:
    """How to start the agent on ``host`` (become, interpreter)."""
    v = host.vars
    become = as_bool(v.get("ansible_become"))
    method = str(v.get("ansible_become_method") or "sudo")
    if become and method != "sudo":
        raise ConnectError(
            host.name,
            f"{host.name}: ansible_become_method={method!r} is not supported",
            "rustle-deploy becomes with 'sudo -n'; set ansible_become_method=sudo",
        )
    if become and (v.get("ansible_become_password") or v.get("ansible_become_pass")):
        raise ConnectError(
            host.name,
            f"{host.name}: ansible_become_password is not supported",
            "allow passwordless sudo (NOPASSWD) for the connecting user, or connect as the target user",
        )
    interp = v.get("ansible_python_interpreter")
    interp_s = str(interp) if interp not in (None, "") else None
    if interp_s is not None and interp_s.startswith("auto"):
        interp_s = None  # auto, auto_silent, auto_legacy: our own discovery
    return AgentLaunch(
        become=become,
        become_user=str(v.get("ansible_become_user") or "root"),
        python_interpreter=interp_s,
        runner=RunnerRef(runner[0], runner[1], host.remote_dir) if runner else None,
    )


def remote_command(launch: AgentLaunch) -> str:
    """The sh command line that finds Python >= 3.8 and starts the bootstrap, or that starts
    the native runner (``runner_command``)."""
    if launch.runner is not None:
        line = runner_command(launch.runner)
    else:
        candidates = (launch.python_interpreter,) if launch.python_interpreter else PYTHON_CANDIDATES
        boot = shlex.quote(BOOTSTRAP)
        line = (
            f"for P in {' '.join(shlex.quote(c) for c in candidates)}; do "
            'command -v "$P" >/dev/null 2>&1 || continue; '
            f'"$P" -I -S -c {boot}; r=$?; [ "$r" -eq {EXIT_TOO_OLD} ] || exit "$r"; done; '
            "echo '{\"agent\": \"no_python\"}'; "
            f"exit {EXIT_TOO_OLD}"
        )
    if launch.become:
        return f"sudo -n -u {shlex.quote(launch.become_user)} -- /bin/sh -c {shlex.quote(line)}"
    return line


EXIT_NEED_RUNNER = 21


def _remote_path(path: str) -> str:
    """``path`` for sh: quoted, with a leading ``~/`` as ``"$HOME"/`` (as the agent's expanduser)."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    if path.startswith("~"):
        raise ConnectError(path, f"rustle_remote_dir {path!r}: '~user' paths are not supported by --format native",
                           "write the directory's absolute path")
    return shlex.quote(path)


def runner_command(ref: RunnerRef) -> str:
    """The sh bootstrap of the native format (docs/native.md, "Remote side").

    Its stdin starts with a line ``1`` when the runner's bytes follow (then exactly
    ``ref.size`` of them), else ``0``. A runner already installed is kept (the bytes are read
    and dropped); a new one is written to a temporary name and started as ``install``: it checks
    its own sha256, renames itself into place and carries on as the agent (or removes itself
    and says why). Without an installed runner and without the bytes it answers
    ``need_runner``. Then the runner reads the request. An empty stdin (an unused early start)
    exits touching nothing.
    """
    sha = ref.sha256
    root = _remote_path(ref.remote_dir.rstrip("/") or "/")
    failed = shlex.quote(json.dumps({
        "agent": "error", "kind": "runner_install",
        "message": f"cannot install rustle-runner {sha[:12]} under {ref.remote_dir}/runners: "
                   "the upload was cut, the disk is full, or this host cannot execute a runner built "
                   "for the controller's platform",
    }, sort_keys=True))
    made = f'[ -d {root} ] || {{ mkdir -p -m 700 {root} && : >>{root}/{shlex.quote(CREATED_MARKER)}; }}'
    install = (
        f'[ -d "$d" ] || {{ {made} && mkdir -p -m 700 "$d"; }} || {{ echo {failed}; exit 20; }}; t="$r.tmp.$$"; '
        f'if head -c {ref.size} >"$t" && chmod 700 "$t"; then "$t" install {sha} "$r"; c=$?; '
        '{ [ -e "$r" ] || [ "$c" -lt 126 ]; } && exit "$c"; fi; '  # else it could not be executed
        f'rm -f "$t"; echo {failed}; exit 20'
    )
    return (
        f'd={root}/runners; r="$d"/{sha}; '
        "IFS= read -r s || exit 0; "
        'if [ "$s" = 1 ]; then '
        f'if [ -x "$r" ]; then head -c {ref.size} >/dev/null; else {install}; fi; fi; '
        f'[ -x "$r" ] || {{ echo \'{{"agent": "need_runner"}}\'; exit {EXIT_NEED_RUNNER}; }}; '
        'exec "$r" agent'
    )


def ssh_argv(host: Host, binary: str = "ssh") -> list[str]:
    """The ``ssh`` command line for ``host``, without the remote command."""
    s = ssh_settings(host)  # validates the variables (port, quoting, StrictHostKeyChecking)
    argv = [binary, *_split_args(host)]
    if s.strict_host_key_checking == "no":
        argv += ["-o", "StrictHostKeyChecking=no"]
    elif s.strict_host_key_checking == "accept-new":
        argv += ["-o", "StrictHostKeyChecking=accept-new"]
    else:
        argv += ["-o", "StrictHostKeyChecking=yes"]
    argv += ["-o", "BatchMode=yes", "-o", _KEX_FIRST, "-o", "LogLevel=ERROR", "-T", "-x", "-a"]
    if s.connect_timeout:
        argv += ["-o", f"ConnectTimeout={max(1, round(s.connect_timeout))}"]
    if host.port is not None:
        argv += ["-p", str(s.port)]
    if host.user:
        argv += ["-l", host.user]
    keyfile = host.vars.get("ansible_ssh_private_key_file") or host.vars.get("ansible_private_key_file")
    if keyfile:
        argv += ["-i", os.path.expanduser(str(keyfile)), "-o", "IdentitiesOnly=yes"]
    argv += ["--", s.address]
    return argv


def known_hosts_files(s: SshSettings) -> list[str]:
    paths = s.known_hosts or ("~/.ssh/known_hosts",)
    return [os.path.expanduser(p) for p in paths]


def keyscan_hint(s: SshSettings) -> str:
    files = " ".join(known_hosts_files(s))
    port = f"-p {s.port} " if s.port != 22 else ""
    return (
        f"check the key, then add it: ssh-keyscan {port}{s.address} >> {files}; "
        "or set ansible_ssh_common_args='-o StrictHostKeyChecking=accept-new' (or =no)"
    )
