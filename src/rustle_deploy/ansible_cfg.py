"""``ansible.cfg`` and the ``ANSIBLE_*`` environment, read as Ansible reads them.

Ansible uses the first file that exists of: ``$ANSIBLE_CONFIG`` (a file, or a directory holding
``ansible.cfg``), ``./ansible.cfg`` (not when the working directory is world-writable),
``~/.ansible.cfg``, ``/etc/ansible/ansible.cfg``; an ``ANSIBLE_*`` variable beats the file.
Relative paths in the file are relative to the file's directory.

The settings that apply to rustle-deploy:

    [defaults] inventory, roles_path, remote_user, private_key_file, forks,
               host_key_checking, timeout, hash_behaviour, gathering, library,
               collections_path, force_handlers, error_on_missing_handler,
               allow_broken_conditionals, deprecation_warnings, interpreter_python,
               python_module_rlimit_nofile
    [privilege_escalation] become, become_user, become_method, become_exe, become_flags
    [sudo_become_plugin] executable, flags; [su_become_plugin] executable, flags
    [ssh_connection] ssh_args, ssh_common_args, ssh_extra_args

They sit below rustle-deploy's own settings and flags: ``-i``, ``-u``, ``--private-key``,
``-f``/``--parallel`` (and ``RUSTLE_PARALLEL_JOBS``, ``config.toml``) win; ``remote_user``,
``private_key_file``, ``host_key_checking``, ``timeout`` and the ssh arguments apply to hosts
whose inventory sets no ``ansible_user``/``ansible_ssh_private_key_file``/
``ansible_host_key_checking``/``ansible_timeout``/``ansible_ssh_common_args`` (``ssh_args``
then ``ssh_common_args``)/``ansible_ssh_extra_args``/``ansible_python_interpreter``
(``interpreter_python``: a path, or a discovery mode such as ``auto_silent``)/
``ansible_python_module_rlimit_nofile`` (``python_module_rlimit_nofile``: the soft limit on
open files while a module runs, 0 leaving it); ``become``,
``become_user`` and ``become_method`` are what a playbook's plays start from. The become program
and its flags are the become plugin's, per method (``become_config``): ``ANSIBLE_SUDO_EXE`` over
``ANSIBLE_BECOME_EXE`` over ``[sudo_become_plugin] executable`` over ``[privilege_escalation]
become_exe`` (flags alike; ``su`` alike), below the ``become_exe``/``become_flags`` keywords and
the ``ansible_become_exe``/``ansible_sudo_exe`` variables; a ``*_become_plugin`` section of a
method rustle-deploy does not run (doas, pbrun, ...) is ignored with a note. ``hash_behaviour`` must be ``replace`` (Ansible's default): ``merge`` would change
what variables hold, and is refused. ``gathering``, ``library`` and ``collections_path`` are
read and checked: ``gathering`` changes nothing (facts are gathered on the host when first
used, said in a note); ``library`` and ``collections_path`` are where the module bridge's
ansible-core finds modules that are not built in (docs/bridge.md). Every
other setting is ignored; :meth:`AnsibleConfig.notes` names them (shown at ``-v``). Nothing
here is an error except a value of the wrong type for a setting that applies.
"""

from __future__ import annotations

import configparser
import os
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

__all__ = ["AnsibleConfig", "find_config", "load_ansible_config"]

_TRUE = ("y", "yes", "on", "1", "true", "t")
_FALSE = ("n", "no", "off", "0", "false", "f", "")

# (section, key) or env var -> (setting, kind)
_INI: dict[tuple[str, str], tuple[str, str]] = {
    ("defaults", "inventory"): ("inventory", "pathlist"),
    ("defaults", "hostfile"): ("inventory", "pathlist"),
    ("defaults", "roles_path"): ("roles_path", "pathspec"),
    ("defaults", "remote_user"): ("remote_user", "str"),
    ("defaults", "private_key_file"): ("private_key_file", "path"),
    ("defaults", "forks"): ("forks", "int"),
    ("defaults", "host_key_checking"): ("host_key_checking", "bool"),
    ("defaults", "timeout"): ("timeout", "int"),
    ("defaults", "hash_behaviour"): ("hash_behaviour", "choice:replace,merge"),
    ("defaults", "gathering"): ("gathering", "choice:implicit,explicit,smart"),
    ("defaults", "library"): ("library", "pathspec"),
    ("defaults", "collections_path"): ("collections_path", "pathspec"),
    ("defaults", "collections_paths"): ("collections_path", "pathspec"),
    ("defaults", "vault_password_file"): ("vault_password_file", "path"),
    ("ssh_connection", "ssh_args"): ("ssh_args", "str"),
    ("ssh_connection", "ssh_common_args"): ("ssh_common_args", "str"),
    ("ssh_connection", "ssh_extra_args"): ("ssh_extra_args", "str"),
    ("defaults", "force_handlers"): ("force_handlers", "bool"),
    ("defaults", "error_on_missing_handler"): ("error_on_missing_handler", "bool"),
    ("defaults", "allow_broken_conditionals"): ("allow_broken_conditionals", "bool"),
    ("defaults", "deprecation_warnings"): ("deprecation_warnings", "bool"),
    ("defaults", "interpreter_python"): ("interpreter_python", "str"),
    ("defaults", "python_module_rlimit_nofile"): ("python_module_rlimit_nofile", "int"),
    ("privilege_escalation", "become"): ("become", "bool"),
    ("privilege_escalation", "become_user"): ("become_user", "str"),
    ("privilege_escalation", "become_method"): ("become_method", "str"),
    ("privilege_escalation", "become_exe"): ("become_exe", "str"),
    ("privilege_escalation", "become_flags"): ("become_flags", "str"),
    ("sudo_become_plugin", "executable"): ("sudo_exe", "str"),
    ("sudo_become_plugin", "flags"): ("sudo_flags", "str"),
    ("su_become_plugin", "executable"): ("su_exe", "str"),
    ("su_become_plugin", "flags"): ("su_flags", "str"),
}
_ENV: dict[str, tuple[str, str]] = {
    "ANSIBLE_INVENTORY": ("inventory", "pathlist"),
    "ANSIBLE_ROLES_PATH": ("roles_path", "pathspec"),
    "ANSIBLE_REMOTE_USER": ("remote_user", "str"),
    "ANSIBLE_PRIVATE_KEY_FILE": ("private_key_file", "path"),
    "ANSIBLE_FORKS": ("forks", "int"),
    "ANSIBLE_HOST_KEY_CHECKING": ("host_key_checking", "bool"),
    "ANSIBLE_TIMEOUT": ("timeout", "int"),
    "ANSIBLE_HASH_BEHAVIOUR": ("hash_behaviour", "choice:replace,merge"),
    "ANSIBLE_GATHERING": ("gathering", "choice:implicit,explicit,smart"),
    "ANSIBLE_LIBRARY": ("library", "pathspec"),
    "ANSIBLE_COLLECTIONS_PATH": ("collections_path", "pathspec"),
    "ANSIBLE_COLLECTIONS_PATHS": ("collections_path", "pathspec"),
    "ANSIBLE_VAULT_PASSWORD_FILE": ("vault_password_file", "path"),
    "ANSIBLE_SSH_ARGS": ("ssh_args", "str"),
    "ANSIBLE_SSH_COMMON_ARGS": ("ssh_common_args", "str"),
    "ANSIBLE_SSH_EXTRA_ARGS": ("ssh_extra_args", "str"),
    "ANSIBLE_FORCE_HANDLERS": ("force_handlers", "bool"),
    "ANSIBLE_ERROR_ON_MISSING_HANDLER": ("error_on_missing_handler", "bool"),
    "ANSIBLE_ALLOW_BROKEN_CONDITIONALS": ("allow_broken_conditionals", "bool"),
    "ANSIBLE_DEPRECATION_WARNINGS": ("deprecation_warnings", "bool"),
    "ANSIBLE_PYTHON_INTERPRETER": ("interpreter_python", "str"),
    "ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE": ("python_module_rlimit_nofile", "int"),
    "ANSIBLE_BECOME": ("become", "bool"),
    "ANSIBLE_BECOME_USER": ("become_user", "str"),
    "ANSIBLE_BECOME_METHOD": ("become_method", "str"),
    "ANSIBLE_BECOME_EXE": ("become_exe", "str"),
    "ANSIBLE_BECOME_FLAGS": ("become_flags", "str"),
    "ANSIBLE_SUDO_EXE": ("sudo_exe", "str"),
    "ANSIBLE_SUDO_FLAGS": ("sudo_flags", "str"),
    "ANSIBLE_SU_EXE": ("su_exe", "str"),
    "ANSIBLE_SU_FLAGS": ("su_flags", "str"),
}
# the become methods rustle-deploy runs (runtime become.py): each one's program and flags
BECOME_METHODS = ("sudo", "su")


@dataclass(frozen=True)
class AnsibleConfig:
    path: str | None = None  # the file read, if any
    values: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()  # "[section] key" of the file that has no effect here
    from_env: frozenset[str] = frozenset()  # the settings an ANSIBLE_* variable gave

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def notes(self) -> list[str]:
        where = self.path or "ANSIBLE_*"
        out = []
        for key in self.ignored:
            section = key[1:].split("]", 1)[0]
            if section.endswith("_become_plugin"):
                out.append(f"{self.path}: {key}: become method {section[:-len('_become_plugin')]!r} is not one "
                           f"rustle-deploy runs ({', '.join(BECOME_METHODS)}): ignored")
            else:
                out.append(f"{self.path}: {key} has no effect in rustle-deploy")
        if "gathering" in self.values:
            out.append(f"{where}: gathering = {self.values['gathering']}: facts are gathered on "
                       "the host when a task first uses one, whatever this says")
        for key in ("library", "collections_path"):
            if key in self.values:
                value = self.values[key]
                shown = ":".join(value) if isinstance(value, (list, tuple)) else str(value)
                out.append(f"{where}: {key} = {shown}: searched for modules that are not built "
                           "in (the module bridge, docs/bridge.md)")
        return out

    def become_config(self) -> dict[str, dict[str, str]]:
        """Each become method's program and flags (``exe``, ``flags``) as its ansible-core become
        plugin reads them from the configuration: an ``ANSIBLE_*`` variable over the file, the
        method's own setting over ``become_exe``/``become_flags`` of each."""
        out: dict[str, dict[str, str]] = {}
        for method in BECOME_METHODS:
            for option in ("exe", "flags"):
                ranked = [n for n in (f"{method}_{option}", f"become_{option}") if n in self.values]
                ranked.sort(key=lambda n: n not in self.from_env)  # the environment first, then the file
                if ranked:
                    out.setdefault(method, {})[option] = str(self.values[ranked[0]])
        return out

    def host_defaults(self) -> dict[str, Any]:
        """Connection variables for hosts whose inventory leaves them unset."""
        out: dict[str, Any] = {}
        common = " ".join(self.values[k] for k in ("ssh_args", "ssh_common_args") if self.values.get(k))
        if common:
            out["ansible_ssh_common_args"] = common
        if self.values.get("ssh_extra_args"):
            out["ansible_ssh_extra_args"] = self.values["ssh_extra_args"]
        if "host_key_checking" in self.values:
            out["ansible_host_key_checking"] = self.values["host_key_checking"]
        if "timeout" in self.values:
            out["ansible_timeout"] = self.values["timeout"]
        if self.values.get("interpreter_python"):
            out["ansible_python_interpreter"] = self.values["interpreter_python"]
        if "python_module_rlimit_nofile" in self.values:
            out["ansible_python_module_rlimit_nofile"] = self.values["python_module_rlimit_nofile"]
        return out


def find_config(environ: Mapping[str, str], cwd: str) -> str | None:
    """The file Ansible would read, or None."""
    candidates = []
    env = environ.get("ANSIBLE_CONFIG")
    if env:
        path = os.path.expanduser(env)
        if os.path.isdir(path):
            path = os.path.join(path, "ansible.cfg")
        candidates.append(path)
    try:
        mode = os.stat(cwd).st_mode
        if not mode & stat.S_IWOTH:  # Ansible ignores ./ansible.cfg in a world-writable dir
            candidates.append(os.path.join(cwd, "ansible.cfg"))
    except OSError:
        pass
    home = environ.get("HOME") or os.path.expanduser("~")
    candidates += [os.path.join(home, ".ansible.cfg"), "/etc/ansible/ansible.cfg"]
    for path in candidates:
        if os.path.isfile(path):
            return path
    return None


def _convert(raw: str, kind: str, base: str, where: str) -> Any:
    value = raw.strip()
    if len(value) > 1 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if kind == "bool":
        low = value.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"expected a boolean, got {raw!r}", "yes/no, true/false, on/off",
                          key=where)
    if kind == "int":
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"expected an integer, got {raw!r}", key=where) from None
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split(",")
        if value.lower() not in choices:
            raise ConfigError(f"expected one of {', '.join(choices)}, got {raw!r}", key=where)
        return value.lower()
    if kind == "path":
        return os.path.normpath(os.path.join(base, os.path.expanduser(value)))
    if kind == "pathlist":
        return tuple(os.path.normpath(os.path.join(base, os.path.expanduser(p.strip())))
                     for p in value.split(",") if p.strip())
    if kind == "pathspec":
        return tuple(os.path.normpath(os.path.join(base, os.path.expanduser(p)))
                     for p in value.split(os.pathsep) if p)
    return value


def _applies(name: str, value: Any, where: str) -> Any:
    """``value`` of setting ``name``, refused when it would change results in a way that is
    not implemented."""
    if name.endswith(("_exe", "_flags")):
        try:
            shlex.split(str(value))
        except ValueError as exc:
            raise ConfigError(f"{value!r} cannot be split into words as a shell splits it: {exc}",
                              "close the quote", key=where) from None
    if name == "hash_behaviour" and value == "merge":
        raise ConfigError("hash_behaviour = merge is not supported: dictionaries of different "
                          "variable levels replace each other here",
                          "remove the setting (replace is Ansible's default, and merge is "
                          "deprecated there); use the combine filter where you need merged "
                          "dictionaries", key=where)
    return value


def load_ansible_config(environ: Mapping[str, str] | None = None,
                        cwd: str | None = None) -> AnsibleConfig:
    env = os.environ if environ is None else environ
    cwd = os.getcwd() if cwd is None else cwd
    path = find_config(env, cwd)
    values: dict[str, Any] = {}
    ignored: list[str] = []
    if path is not None:
        parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
        try:
            with open(path, encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, UnicodeDecodeError, configparser.Error) as exc:
            raise ConfigError(f"cannot read: {exc}", "ansible.cfg is an INI file", file=path) from exc
        base = os.path.dirname(os.path.abspath(path))
        for section in parser.sections():
            for key, raw in parser.items(section, raw=True):
                spec = _INI.get((section, key))
                if spec is None:
                    ignored.append(f"[{section}] {key}")
                    continue
                values[spec[0]] = _applies(spec[0], _convert(raw, spec[1], base, f"{path}: [{section}] {key}"),
                                           f"{path}: [{section}] {key}")
    from_env = set()
    for var, (name, kind) in _ENV.items():
        if env.get(var):
            values[name] = _applies(name, _convert(env[var], kind, cwd, var), var)
            from_env.add(name)
    return AnsibleConfig(path=path, values=values, ignored=tuple(ignored), from_env=frozenset(from_env))
