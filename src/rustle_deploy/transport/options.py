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

Every value is checked where it is read, and a value that cannot be used is a ConnectError
naming the host, the variable and the value. ``check_connections`` applies the same checks to
every host of a command before anything is recorded or any host is touched, so that a bad
inventory value ends the command with exit 2 instead of failing one host after another.
"""

from __future__ import annotations

import functools
import json
import math
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ConnectError, InventoryError
from ..model import CREATED_MARKER, Host, RunnerSpec, Undecryptable

# ansible-core's INTERPRETER_PYTHON_FALLBACK (``ansible_interpreter_python_fallback``): interpreter
# discovery takes the first of these that ``command -v`` finds as an absolute path
PYTHON_CANDIDATES = ("python3.13", "python3.12", "python3.11", "python3.10", "python3.9", "python3.8",
                     "/usr/bin/python3", "python3")
DISCOVERY_MODES = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")
EXIT_NOT_FOUND = 127  # the shell's status for a candidate it cannot run (a pyenv shim without that version)
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


# Connection types reached over SSH (Ansible's names); ``local`` runs through /bin/sh.
SSH_CONNECTIONS = ("ssh", "smart", "paramiko", "paramiko_ssh", "ansible.builtin.ssh")
MAX_TIMEOUT = 2**31 - 1  # seconds: OpenSSH reads ConnectTimeout as a C int


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


def _shown(value: Any) -> str:
    """A variable's value as an error message quotes it: repr (control characters escaped), cut short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad(host: Host, var: str, value: Any, why: str, hint: str) -> ConnectError:
    return ConnectError(host.name, f"{host.name}: {var}={_shown(value)}: {why}", hint)


def _flag(host: Host, var: str) -> bool:
    """A boolean connection variable; anything that is not a boolean is an error, as in Ansible."""
    value = host.vars.get(var)
    if value is None or value == "" or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, (str, int, float)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(host, var, value, "not a boolean", "use true or false (yes/no, 1/0 also work)")


def _text(host: Host, var: str, value: Any, *, word: bool = False) -> str:
    """A string-valued connection variable as text. ``word``: a host name or user, which has no
    spaces or control characters; no value may hold a NUL (it cannot be passed to a program)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _bad(host, var, value, f"expected a string, got a {type(value).__name__}",
                   f"set {var} to a single value")
    text = str(value)
    if word and (not text or any(c.isspace() or not c.isprintable() for c in text)):
        raise _bad(host, var, value, "empty, or holds spaces or control characters",
                   f"set {var} to a plain name or address")
    if "\x00" in text:
        raise _bad(host, var, value, "holds a NUL character", f"remove it from {var}")
    return text


_PORT_HINT = "ports are whole numbers from 1 to 65535"
_TIMEOUT_HINT = f"a connect timeout is a number of seconds from 0 (no limit) to {MAX_TIMEOUT}"


def _port_number(value: Any) -> int | None:
    """A TCP port (1-65535) from an inventory value: 2222, "2222" (a whole 2222.0 too); else None."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 5:
        number = int(value)
    return number if number is not None and 1 <= number <= 65535 else None


def _seconds(value: Any) -> float | None:
    """A connect timeout in seconds (0: none, as OpenSSH's ConnectTimeout=0); else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and 0 <= number <= MAX_TIMEOUT else None


def explicit_port(host: Host) -> int | None:
    """The port the inventory sets (``ansible_port``, else ``ansible_ssh_port``), checked; None: unset."""
    var = "ansible_port" if "ansible_port" in host.vars else "ansible_ssh_port"
    value = host.vars.get(var)
    if value is None or value == "":
        return None
    port = _port_number(value)
    if port is None:
        raise _bad(host, var, value, "not a port number", _PORT_HINT)
    return port


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
    become_exe: str | None = None  # ansible_become_exe / ansible_sudo_exe; None: sudo
    become_flags: str | None = None  # ansible_become_flags / ansible_sudo_flags; None: -H -S -n
    python_interpreter: str | None = None  # None: discover
    discovery: str = "auto"  # INTERPRETER_PYTHON's mode when python_interpreter is None
    fallback: tuple[str, ...] = PYTHON_CANDIDATES  # what discovery tries, in order
    runner: RunnerRef | None = None  # native format: start this rustle-runner instead of Python


@dataclass(frozen=True)
class RunnerRef:
    """The rustle-runner a native deployment starts on the host (docs/native.md): ``size``
    bytes of it are sent (gzip'd); ``machines`` and ``glibc`` as ``model.RunnerSpec``'s."""

    sha256: str
    size: int
    remote_dir: str
    machines: tuple[str, ...] = ()
    glibc: tuple[int, ...] | None = None


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


_ARG_VARS = ("ansible_ssh_common_args", "ansible_ssh_extra_args")


def _split_args(host: Host, only: str | None = None) -> list[str]:
    words: list[str] = []
    for var in _ARG_VARS if only is None else (only,):
        value = host.vars.get(var)
        if value is None or value == "":
            continue
        text = _text(host, var, value)
        try:
            words.extend(_shlex_split(text))
        except ValueError as exc:
            raise ConnectError(
                host.name, f"{host.name}: {var}: cannot split {text!r}: {exc}", "check the quoting"
            ) from exc
    return words


def _arg_var(host: Host, key: str) -> str:
    """Which ssh argument variable set the option ``key`` (for error messages)."""
    for var in _ARG_VARS:
        if key in parse_ssh_args(host, only=var):
            return var
    return _ARG_VARS[0]


@functools.lru_cache(maxsize=256)
def _shlex_split(text: str) -> tuple[str, ...]:
    """``shlex.split``, once per text: a fleet's hosts mostly share their ssh arguments, and each
    host's are read several times on the way to its ``ssh`` command line."""
    return tuple(shlex.split(text))


def parse_ssh_args(host: Host, only: str | None = None) -> dict[str, str | list[str]]:
    """The OpenSSH options found in the host's ssh argument strings (or in the variable
    ``only``), lower-cased keys.

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

    words = _split_args(host, only)
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
                    host.name, f"{host.name}: {only or 'ansible_ssh_common_args'}: {word} needs a value",
                    f"give {word} its value, as ssh would be given it",
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
    for var, value in v.items():
        if var.startswith("ansible_") and isinstance(value, Undecryptable):
            # the controller reads these itself: a vaulted one no password opens fails the host
            raise ConnectError(host.name, f"{host.name}: {var}: {value.reason}",
                               "give its vault password: --vault-password-file, --vault-id or --ask-vault-pass")
    o = parse_ssh_args(host)

    def one(key: str) -> str | None:
        value = o.get(key)
        return value if isinstance(value, str) else None

    port = explicit_port(host)
    if port is None and one("port") is not None:
        port = _port_number(one("port"))
        if port is None:
            raise _bad(host, f"{_arg_var(host, 'port')}: Port", one("port"), "not a port number", _PORT_HINT)
    keyfile = _keyfile(host)
    identity = [keyfile] if keyfile else []
    ids = o.get("identityfile")
    if isinstance(ids, list):
        identity.extend(_local_path(host, f"{_arg_var(host, 'identityfile')}: IdentityFile", p) for p in ids)
    known = o.get("userknownhostsfile")
    if isinstance(known, list):
        known = [_local_path(host, f"{_arg_var(host, 'userknownhostsfile')}: UserKnownHostsFile", p) for p in known]
    strict = "yes"
    checking_var = "ansible_ssh_host_key_checking" if "ansible_ssh_host_key_checking" in v else "ansible_host_key_checking"
    if v.get(checking_var) is not None and v.get(checking_var) != "" and not _flag(host, checking_var):
        strict = "no"
    if one("stricthostkeychecking"):
        strict = _strict(one("stricthostkeychecking") or "", host)
    timeout: float | None = None
    if one("connecttimeout"):
        timeout = _seconds(one("connecttimeout"))
        if timeout is None:
            var = f"{_arg_var(host, 'connecttimeout')}: ConnectTimeout"
            raise _bad(host, var, one("connecttimeout"), "not a number of seconds", _TIMEOUT_HINT)
    else:
        for var in ("ansible_ssh_timeout", "ansible_timeout"):
            if v.get(var) is not None and v.get(var) != "":
                timeout = _seconds(v[var])
                if timeout is None:
                    raise _bad(host, var, v[var], "not a number of seconds", _TIMEOUT_HINT)
                break
    config = one("-f")
    if config:
        config = _local_path(host, f"{_arg_var(host, '-f')}: -F", config)
    password = v.get("ansible_ssh_pass", v.get("ansible_password"))
    password_var = "ansible_ssh_pass" if "ansible_ssh_pass" in v else "ansible_password"
    return SshSettings(
        address=_address(host),
        port=port if port is not None else 22,
        user=_user(host) or _args_user(host, one("user")),
        identity_files=tuple(identity),
        known_hosts=tuple(known) if isinstance(known, list) else (),
        strict_host_key_checking=strict,
        proxy_jump=one("proxyjump") if (one("proxyjump") or "").lower() != "none" else None,
        proxy_command=one("proxycommand") if (one("proxycommand") or "").lower() != "none" else None,
        config_files=(config,) if config else None,
        password=_text(host, password_var, password) if password not in (None, "") else None,
        connect_timeout=timeout or None,
    )


def _address(host: Host) -> str:
    """``ansible_host``, else the inventory name: what ssh connects to. It must be something a
    resolver can be asked about: the IDNA encoding Python's resolver applies rejects empty and
    over-long labels (``a..b``), and would fail the connection with an exception of its own."""
    var, value = ("ansible_host", host.vars["ansible_host"]) if "ansible_host" in host.vars else ("inventory name", host.name)
    address = _text(host, var, value, word=True)
    try:
        _idna_check(address)
    except UnicodeError as exc:
        raise _bad(host, var, value, "not a host name or address",
                   "a host name is made of labels of 1 to 63 characters between dots") from exc
    return address


def _idna_check(address: str) -> None:
    """Raise UnicodeError where ``address.encode("idna")`` would. An ASCII address (every usual
    name and IP address) is checked as the codec's own ASCII path checks it (labels of 1 to 63
    characters, the last may be empty), without importing the codec (encodings.idna, stringprep,
    unicodedata: a few ms of every run's start, docs/decisions.md); any other goes to the codec."""
    if not address.isascii():
        address.encode("idna")
        return
    *labels, last = address.split(".")
    if not address:
        return
    if any(not 0 < len(label) < 64 for label in labels) or len(last) >= 64:
        raise UnicodeError("label empty or too long")


def _user(host: Host) -> str | None:
    var = "ansible_user" if "ansible_user" in host.vars else "ansible_ssh_user"
    value = host.vars.get(var)
    return None if value is None or value == "" else _text(host, var, value, word=True)


def _args_user(host: Host, value: str | None) -> str | None:
    """``-l USER`` / ``-o User=USER`` from the ssh arguments, checked as ``ansible_user`` is."""
    return _text(host, f"{_arg_var(host, 'user')}: User", value, word=True) if value else None


def _keyfile(host: Host) -> str | None:
    for var in ("ansible_ssh_private_key_file", "ansible_private_key_file"):
        value = host.vars.get(var)
        if value:
            return _local_path(host, var, _text(host, var, value))
    return None


def _local_path(host: Host, var: str, path: str) -> str:
    """A controller path from the inventory; a ``~user`` that names no user is an error here
    (asyncssh's own expansion would raise RuntimeError when it reads the file)."""
    if path.startswith("~") and os.path.expanduser(path) == path:
        raise _bad(host, var, path, "names the home directory of no known user", "write the path without ~")
    return path


def become_password(host: Host) -> str | None:
    """The host's become password variable (``ansible_become_password``, ``ansible_become_pass``,
    ``ansible_<method>_pass``/``_password``; the last set wins, as in ansible-core), or None.
    It travels in the host's run request only (deploy/host.py), never in an artifact."""
    method = str(host.vars.get("ansible_become_method") or "sudo")
    found = become_password_variables(host, method)
    names = ("ansible_become_password", "ansible_become_pass", f"ansible_{method}_pass", f"ansible_{method}_password")
    return next((found[n] for n in reversed(names) if n in found), None)


def become_password_variables(host: Host, method: str | None = None) -> dict[str, str]:
    """The host's become password variables that are set, by name (``ansible_become_password``,
    ``ansible_become_pass``, ``ansible_sudo_pass``, ``ansible_su_pass``, and ``method``'s): the
    runtime weighs each name against the play's own, as a task's become method is known only
    there (ansible-core takes the last name of its plugin's list that is set, whatever the level).
    ConnectError for one that is not a text or is a template. A text of several lines is kept,
    as ansible-core keeps it: sudo and su read its first line (runtime/become.py)."""
    v = host.vars
    names = ["ansible_become_password", "ansible_become_pass", "ansible_sudo_pass", "ansible_su_pass"]
    if method is not None:
        names += [n for n in (f"ansible_{method}_pass", f"ansible_{method}_password") if n not in names]
    found: dict[str, str] = {}
    for var in names:
        value = v.get(var)
        if value in (None, ""):
            continue
        # never shown in a message: it is a password
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ConnectError(host.name, f"{host.name}: {var} is not a text",
                               "set it to the password itself, on one line")
        text = str(value)
        if "{{" in text or "{%" in text:
            raise ConnectError(host.name, f"{host.name}: {var} is a template, which rustle-deploy does "
                               "not render for the connection",
                               "give the password itself (a !vault value keeps it encrypted at rest), or -K")
        found[var] = text
    return found


def prompted_become(host: Host) -> bool:
    """Whether ``host``'s connection-level become (``ansible_become``) may ask for a password on
    the host: through su, or with a become password (a variable, or ``-K``), or is decided per task
    (the plan's vars set ``ansible_become`` or a become password: ``Host.become_per_task``). The
    agent then does not start as the become user: the runtime becomes per task, answering the
    prompt (pyz only)."""
    v = host.vars
    method = str(v.get("ansible_become_method") or "sudo")
    return _flag(host, "ansible_become") and (method == "su" or host.become_asked or host.become_per_task
                                               or become_password(host) is not None)


def agent_launch(host: Host, runner: RunnerSpec | None = None) -> AgentLaunch:
    """How to start the agent on ``host`` (become, interpreter)."""
    v = host.vars
    become = _flag(host, "ansible_become")
    method = _text(host, "ansible_become_method", v.get("ansible_become_method") or "sudo")
    if become and method not in ("sudo", "su"):
        raise ConnectError(
            host.name,
            f"{host.name}: ansible_become_method={method!r} is not supported",
            "rustle-deploy becomes with sudo or su; set ansible_become_method=sudo or su",
        )
    if become and prompted_become(host):
        # a password prompt: the agent runs as the connecting user, and each task's module runs
        # as the become user in a child the runtime starts through sudo -S or su, given the
        # password from the run request (runtime/become.py)
        become = False
    # the sudo become plugin's vars, the method's own name winning as in ansible-core
    exe = flags = None
    for var in ("ansible_become_exe", "ansible_sudo_exe"):
        exe = _text(host, var, v[var]) if v.get(var) is not None else exe
    for var in ("ansible_become_flags", "ansible_sudo_flags"):
        flags = _text(host, var, v[var]) if v.get(var) is not None else flags
    configured = host.become_config.get("sudo") or {}  # the sudo plugin's config, below its vars
    exe = configured.get("exe") if exe is None else exe
    flags = configured.get("flags") if flags is None else flags
    for var, value in (("ansible_become_exe", exe), ("ansible_become_flags", flags)):
        try:
            shlex.split(value or "")
        except ValueError as exc:
            raise _bad(host, var, value, f"cannot be split into words ({exc})", "close its quotes") from None
    interp = v.get("ansible_python_interpreter")
    interp_s = _interpreter(host, interp) if interp not in (None, "") else "auto"
    discovery = interp_s if interp_s in DISCOVERY_MODES else "auto"
    return AgentLaunch(
        become=become,
        become_user=_text(host, "ansible_become_user", v.get("ansible_become_user") or "root", word=True),
        become_exe=exe, become_flags=flags,
        python_interpreter=None if interp_s in DISCOVERY_MODES else interp_s,
        discovery=discovery, fallback=_fallback(host, v.get("ansible_interpreter_python_fallback")),
        runner=RunnerRef(runner.sha256, runner.size, host.remote_dir, runner.machines, runner.glibc)
        if runner else None,
    )


def _interpreter(host: Host, value: Any) -> str:
    """``ansible_python_interpreter``, templated as Ansible templates it when it is an
    expression (``{{ ansible_playbook_python }}``: the controller's Python, for a local host)."""
    text = _text(host, "ansible_python_interpreter", value)
    if "{{" not in text and "{%" not in text:
        return text
    import sys

    import jinja2

    scope = {**host.vars, "inventory_hostname": host.name, "ansible_playbook_python": sys.executable}
    try:
        return jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(text).render(scope).strip()
    except jinja2.TemplateError as exc:
        raise _bad(host, "ansible_python_interpreter", value, f"cannot be templated: {exc}",
                   "define the variables it uses in the inventory, or write the interpreter's path") from exc


def _fallback(host: Host, value: Any) -> tuple[str, ...]:
    """``ansible_interpreter_python_fallback``: a list of names or paths (a string: comma-separated,
    as Ansible's list type reads it); unset, ansible-core's default list."""
    var = "ansible_interpreter_python_fallback"
    if value is None:
        return PYTHON_CANDIDATES
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise _bad(host, var, value, "expected a list of interpreter names or paths",
                   f"{var}: ['python3.12', '/usr/bin/python3']")
    names = tuple(i.strip() for i in items if i.strip())
    for name in names:
        _text(host, var, name)
    return names or PYTHON_CANDIDATES


def check_kind(host: Host) -> None:
    """Raise ConnectError unless ``host`` is reached over SSH or locally."""
    if not host.is_local and host.connection not in SSH_CONNECTIONS:
        raise ConnectError(
            host.name,
            f"{host.name}: ansible_connection={_shown(host.vars.get('ansible_connection'))} is not supported",
            "use ssh (the default) or local",
        )


def check_connections(hosts: Iterable[Host], source: str) -> None:
    """Raise InventoryError naming every host whose connection variables cannot be used.

    Called by every mode that reaches hosts, before it records anything or touches a host:
    the checks are those the transports make when they connect (``ssh_settings``,
    ``ssh_argv``, ``agent_launch``), so a value that passes here is one they can use.
    """
    bad: list[ConnectError] = []
    for host in hosts:
        try:
            check_kind(host)
            if not host.is_local:
                ssh_argv(host)
            agent_launch(host)
        except ConnectError as exc:
            bad.append(exc)
    if not bad:
        return
    hint = f"{bad[0].hint}; nothing was touched" if bad[0].hint else "nothing was touched"
    if len(bad) == 1:
        raise InventoryError(bad[0].message, hint, file=source)
    raise InventoryError(
        f"the connection variables of {len(bad)} hosts cannot be used:\n  " + "\n  ".join(e.message for e in bad),
        hint, file=source,
    )


def remote_command(launch: AgentLaunch) -> str:
    """The sh command line that finds Python >= 3.8 and starts the bootstrap, or that starts
    the native runner (``runner_command``)."""
    if launch.runner is not None:
        line = runner_command(launch.runner)
    else:
        boot = shlex.quote(BOOTSTRAP)
        candidates: tuple[str, ...]
        if launch.python_interpreter:  # a path or a name: as written, no discovery
            candidates, found, mode = (launch.python_interpreter,), 'command -v "$P" >/dev/null 2>&1 || continue; ', ""
        else:  # ansible-core's discovery: the first absolute path `command -v` gives
            candidates, mode = launch.fallback, launch.discovery
            found = 'P=$(command -v "$P" 2>/dev/null) || continue; case "$P" in /*) ;; *) continue;; esac; '
        line = (
            f"for P in {' '.join(shlex.quote(c) for c in candidates)}; do {found}"
            f'"$P" -I -S -c {boot} "$P" {mode or "explicit"}; r=$?; '
            f'[ "$r" -eq {EXIT_TOO_OLD} ] || [ "$r" -eq {EXIT_NOT_FOUND} ] || exit "$r"; done; '
            "echo '{\"agent\": \"no_python\"}'; "
            f"exit {EXIT_TOO_OLD}"
        )
    if launch.become:
        return f"{become_prefix(launch)} /bin/sh -c {shlex.quote(line)}"
    return line


def either_command(native: str, pyz: str) -> str:
    """The sh command line of an agent not chosen yet (``--format auto`` starts it before the
    build decides whether the plan lowers: transport/early.py): it reads one line first, ``n``
    to run ``native`` (``remote_command`` with the runner) or ``p`` to run ``pyz``, whose own
    stdin follows. An empty stdin (an unused early start) exits touching nothing."""
    return f'IFS= read -r a || exit 0; case "$a" in\nn) {native}\n;;\np) {pyz}\n;;\nesac'


SUDO_FLAGS = "-H -S -n"  # ansible-core's sudo become plugin's default become_flags


def become_prefix(launch: AgentLaunch) -> str:
    """``sudo -H -S -n -u USER --`` (the sudo become plugin's default flags) with the host's
    become_exe and become_flags in place of ``sudo`` and ``-H -S -n`` (each word quoted;
    Ansible's sudo plugin joins them as they are written). ``-S`` reads no password: ``-n``
    never prompts, so the agent's request on stdin stays the agent's."""
    exe = shlex.split(launch.become_exe or "sudo") or ["sudo"]
    flags = shlex.split(SUDO_FLAGS if launch.become_flags is None else launch.become_flags)
    return " ".join(shlex.quote(w) for w in exe + flags + ["-u", launch.become_user, "--"])


EXIT_NEED_RUNNER = 21
EXIT_WRONG_RUNNER = 22  # the host's machine or C library cannot execute the runner it was sent


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
    ``ref.size`` of them: the runner gzip'd), else ``0``. A runner already installed is kept
    (the bytes are read and dropped). Else the bootstrap first asks the host what it is
    (``uname -sm``, read from ``/proc`` with the shell's own ``read`` where the kernel has it): a
    system or machine the runner was not built for gets the bytes dropped and ``wrong_runner``
    answered (with the C library too), so the controller sends the runner that fits (the other
    architecture) or pyz, without a failed install. A runner that fits is unpacked with ``gzip
    -dc`` to a temporary name, made executable and started as ``install``: it checks that it
    hashes to its sha256, renames itself into place and carries on as the agent (or removes
    itself and says why). A start that fails (exit 126 or 127: a glibc older than the one a
    dynamic runner was linked against, or none, refuses to load it) removes the file, and only
    then is ``getconf GNU_LIBC_VERSION`` asked: a glibc older than ``ref.glibc`` (or none)
    answers ``wrong_runner`` (the controller sends the static build), else the start's exit
    status is the error. A host that runs the runner starts no process to describe itself
    (each costs ~1 ms on every new host: docs/decisions.md, "A new host's install, step by step
    (hostperf, session 12)").
    Without an installed runner and without the bytes it answers ``need_runner``.
    Then the runner reads the request. An empty stdin (an unused early start) exits touching
    nothing.
    """
    sha = ref.sha256
    root = _remote_path(ref.remote_dir.rstrip("/") or "/")
    failed = shlex.quote(json.dumps({
        "agent": "error", "kind": "runner_install",
        "message": f"cannot install rustle-runner {sha[:12]} under {ref.remote_dir}/runners: "
                   "the upload was cut, the disk is full, or this host cannot execute a runner built "
                   "for the controller's platform",
    }, sort_keys=True))
    no_gzip = shlex.quote(json.dumps({
        "agent": "error", "kind": "runner_install",
        "message": f"cannot install rustle-runner {sha[:12]}: this host has no gzip, which unpacks it",
    }, sort_keys=True))
    # a new host's directories in one mkdir (the remote dir marked as made by us), else runners/ alone
    made = (f'if [ -d {root} ]; then mkdir -p -m 700 "$d"; '
            f'else mkdir -p -m 700 {root} "$d" && : >>{root}/{shlex.quote(CREATED_MARKER)}; fi')
    # the same line with the exit status of the runner's start (126: not executable here, 127:
    # not loadable; 0: the upload was cut) and the host's machine, for the controller's hint
    fmt = shlex.quote('{"agent": "error", "exit": %s, "kind": "runner_install", "machine": "%s", "message": %s}\\n')
    message = shlex.quote(json.dumps(
        f"cannot install rustle-runner {sha[:12]} under {ref.remote_dir}/runners: the upload was cut, the disk "
        "is full, or this host cannot execute it"))
    install = (
        f'[ -d "$d" ] || {{ {made}; }} || {{ echo {failed}; exit 20; }}; t="$r.tmp.$$"; c=0; '
        f'if head -c {ref.size} | gzip -dc >"$t" && chmod 700 "$t"; then "$t" install {sha} "$r"; c=$?; '
        '{ [ -e "$r" ] || [ "$c" -lt 126 ]; } && exit "$c"; fi; '  # else it could not be executed
        f'rm -f "$t"; {_libc_probe(ref)}'
        f'printf {fmt} "$c" "$(uname -m | tr -cd a-z0-9_)" {message}; exit 20'
    )
    return (
        f'd={root}/runners; r="$d"/{sha}; '
        "IFS= read -r s || exit 0; "
        'if [ "$s" = 1 ]; then '
        f'if [ -x "$r" ]; then head -c {ref.size} >/dev/null; '
        f'else {_probe(ref)}command -v gzip >/dev/null || {{ head -c {ref.size} >/dev/null; echo {no_gzip}; exit 20; }}; '
        f'{install}; fi; fi; '
        f'[ -x "$r" ] || {{ echo \'{{"agent": "need_runner"}}\'; exit {EXIT_NEED_RUNNER}; }}; '
        'exec "$r" agent'
    )


_WRONG_RUNNER = shlex.quote('{"agent": "wrong_runner", "system": "%s", "machine": "%s", "libc": "%s"}\\n')


def _wrong_runner(drop: str) -> str:
    """Answer ``wrong_runner`` with ``$u`` (``uname -sm``) and ``$g`` (the C library), after
    ``drop`` (what is left of the runner's bytes: read and dropped)."""
    return (
        f'{{ {drop}printf {_WRONG_RUNNER} '
        '"$(printf %s "${u% *}" | tr -cd a-zA-Z0-9_)" "$(printf %s "${u##* }" | tr -cd a-z0-9_)" '
        f'"$(printf %s "$g" | tr -cd a-zA-Z0-9_.\\ )"; exit {EXIT_WRONG_RUNNER}; }}'
    )


def _probe(ref: RunnerRef) -> str:
    """The bootstrap's question to a host about to get its first runner: Linux on one of
    ``ref.machines`` (``uname -sm``); else the runner's bytes are dropped and ``wrong_runner``
    is answered with the host's system, machine and C library (``runner_command``). The C
    library is asked only when a runner that needs glibc did not start (``_libc_probe``)."""
    if not ref.machines and ref.glibc is None:
        return ""
    # `uname -sm` read from /proc with the shell's own `read` (Linux 6.1+ has kernel/arch): no
    # process; else (an older kernel, no /proc) uname itself
    line = ('{ read -r u </proc/sys/kernel/ostype && read -r y </proc/sys/kernel/arch && u="$u $y"; } 2>/dev/null '
            '|| u=$(uname -sm 2>/dev/null); ')
    if not ref.machines:
        return line
    linux = "|".join(f'"Linux {m}"' for m in ref.machines)
    return (line + f'case "$u" in {linux}) ;; *) g=$(getconf GNU_LIBC_VERSION 2>/dev/null); '
            + _wrong_runner(f"head -c {ref.size} >/dev/null; ") + ';; esac; ')


def _libc_probe(ref: RunnerRef) -> str:
    """After a runner that needs glibc ``ref.glibc`` could not be executed (exit 126 or 127 of
    its start: the dynamic loader refuses a glibc older than the one it was linked against, and
    a host without glibc has no such loader), ``getconf GNU_LIBC_VERSION`` says whether that
    is why: then ``wrong_runner`` is answered (so the controller sends the static runner), else
    the start's exit status (``runner_command``). On a host that runs the runner, no process
    asks."""
    if ref.glibc is None:
        return ""
    major, minor = (tuple(ref.glibc) + (0, 0))[:2]
    return (
        '[ "$c" -lt 126 ] || { g=$(getconf GNU_LIBC_VERSION 2>/dev/null); '
        'case "$g" in "glibc "[0-9]*.[0-9]*) v=${g#glibc }; a=${v%%.*}; b=${v#*.}; b=${b%%.*}; '
        f'{{ [ "$a" -gt {major} ] || {{ [ "$a" -eq {major} ] && [ "$b" -ge {minor} ]; }}; }} 2>/dev/null || '
        + _wrong_runner("") + ';; *) ' + _wrong_runner("") + ';; esac; }; '
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
    if explicit_port(host) is not None:
        argv += ["-p", str(s.port)]
    user = _user(host)
    if user:
        argv += ["-l", user]
    keyfile = _keyfile(host)
    if keyfile:
        argv += ["-i", os.path.expanduser(keyfile), "-o", "IdentitiesOnly=yes"]
    argv += ["--", s.address]
    return argv


def known_hosts_files(s: SshSettings) -> list[str]:
    paths = s.known_hosts or ("~/.ssh/known_hosts",)
    return [os.path.expanduser(p) for p in paths]


def keyscan_hint(s: SshSettings) -> str:
    """How to trust a host key never seen before; only ever given for such a key."""
    files = " ".join(known_hosts_files(s))
    port = f"-p {s.port} " if s.port != 22 else ""
    return (
        f"check the key, then add it: ssh-keyscan {port}{s.address} >> {files}; "
        "or set ansible_ssh_common_args='-o StrictHostKeyChecking=accept-new' (or =no)"
    )


def known_hosts_pattern(s: SshSettings) -> str:
    """The host as known_hosts names it: ``address``, or ``[address]:port`` off port 22."""
    return s.address if s.port == 22 else f"[{s.address}]:{s.port}"


# Host key failures, worded alike for the OpenSSH client and asyncssh. A changed key gets
# OpenSSH's warning and no way to trust it; appending a key is suggested only for a host with
# no key recorded at all (keyscan_hint), never when it is unclear which of the two it is.
def unknown_host_key(name: str, s: SshSettings, sent: str | None = None) -> ConnectError:
    """The host's key was never seen: no key is recorded for it in known_hosts."""
    shown = f" (it sent {sent})" if sent else ""
    return ConnectError(
        name, f"{name}: {s.address}:{s.port}: host key is not trusted: no key is known for "
        f"{known_hosts_pattern(s)} in {', '.join(known_hosts_files(s))}{shown}", keyscan_hint(s),
    )


def changed_host_key(
    name: str, s: SshSettings, file: str | None = None, line: int | None = None, sent: str | None = None
) -> ConnectError:
    """known_hosts holds another key for this host: OpenSSH's warning, and no way to trust it."""
    file = file or known_hosts_files(s)[0]
    shown = f" The key it sent is {sent}." if sent else ""
    return ConnectError(
        name,
        f"{name}: {s.address}:{s.port}: WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! The host key has "
        f"CHANGED from the one recorded in {file}{f':{line}' if line else ''}. Someone could be eavesdropping "
        f"on you right now (man-in-the-middle attack), or the host key has just been changed.{shown}",
        "investigate before connecting again: compare the key's fingerprint with the one the host's "
        "administrator gives you; only if the change is known to be genuine, remove the old key with "
        f"ssh-keygen -f '{file}' -R '{known_hosts_pattern(s)}'",
    )


def unverified_host_key(name: str, s: SshSettings, detail: str) -> ConnectError:
    """Host key checking failed and it is not known whether the key is new or changed."""
    return ConnectError(
        name, f"{name}: {s.address}:{s.port}: host key verification failed ({detail})",
        f"see what {', '.join(known_hosts_files(s))} records for {known_hosts_pattern(s)} "
        f"(ssh-keygen -F '{known_hosts_pattern(s)}' -f FILE); if it records another key, investigate "
        "before replacing it: the host may be impersonated",
    )
