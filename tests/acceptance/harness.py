"""ansible-core's own integration targets as the acceptance test of the playbook front end.

The role-shaped targets of ansible-core's sdist (``test/integration/targets/*`` with
``tasks/main.yml`` and an ``aliases`` file) are run the way ansible-test runs them on a local
connection (a ``site.yml`` with the target as its only role, an inventory with ``testhost``,
``roles_path`` at the targets, ``-e output_dir=...``), once under ``ansible-playbook`` (the
oracle) and once under ``rustle-deploy --run``, each in a fresh temporary directory with a
private HOME (holding ``~/.ssh/authorized_keys``, as ansible-test's test host has). The two
runs' task results are compared one by one (:func:`compare`).

The sdist is fetched with pip into ``~/.cache/rustle-deploy/acceptance/`` (or
``$RUSTLE_ACCEPTANCE_CACHE``), keyed by the installed ansible-core version, and never
committed. When it cannot be fetched, :class:`Unavailable` says why (the tests skip with it).

``python -m tests.acceptance`` (``make acceptance``) runs every target and writes
``docs/acceptance.md`` (with ``$RUSTLE_ACCEPTANCE_CACHE`` set, ``acceptance.md`` in that cache,
unless ``--report`` names the file); ``tests/acceptance/test_targets.py`` runs the fast ones
that pass under both, pinned by name.
"""

from __future__ import annotations

import difflib
import functools
import grp
import importlib.metadata
import itertools
import json
import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import yaml

from ..cachelock import cache_lock

BIN = Path(sys.executable).parent
ANSIBLE_VERSION = importlib.metadata.version("ansible-core")
CACHE = Path(os.environ.get("RUSTLE_ACCEPTANCE_CACHE")
             or Path.home() / ".cache" / "rustle-deploy" / "acceptance")
CALLBACKS = Path(__file__).parent / "callback"
RUN_TIMEOUT = 900  # ansible-playbook takes minutes for some targets on a loaded 2-core machine
# Targets that need longer: the two longest. copy (about 450 task results, most of them
# ansible-playbook's slowest kind: a file transferred and stat'ed again) did not hang but ran out
# of 900 s after 251 results under load 20-60 (it finished in 642 s once); lineinfile (265) ran
# out of 900 s after 236 under load 30-50 (692 s at load 6-60 the session before).
# uri (about 280 results, each an HTTP request through ansible-core's module) had 25 after 8
# minutes under load 25-35 (session 13).
RUN_TIMEOUTS = {"copy": 3600, "lineinfile": 1800, "uri": 3600}


def run_timeout(name: str) -> int:
    return RUN_TIMEOUTS.get(name, RUN_TIMEOUT)

# Targets run here whose oracle fails for what this machine or the sdist lacks, not for what the
# harness does otherwise than ansible-test: the report's row says why (``render``).
ORACLE_FAILS_HERE = {
    "module_no_log": "no syslog and no journal here: the module's log lines go nowhere its grep reads",
    "preflight_encoding": "no en_US.UTF-8 locale here (locale -a: C, C.utf8, POSIX), which its vars name",
    "ansible-test-debugging": "its `ansible-test env` must run inside an ansible-core source tree, where ansible-test "
                              "runs targets (test/integration); the harness runs them in a temporary directory",
    "ansible-galaxy-role": "the sdist ships files/safe-symlinks' symbolic links as plain files, so no stat has a "
                           "lnk_source",
    "file": "`attributes: +A` after `attributes: A` reports changed on this machine's ext4",
    "lineinfile": "acls.yml copies to ~root/test.txt (ansible-core's `~` is the remote user's home) and runs setfacl "
                  "on $HOME/test.txt, the harness's private HOME (ACCOUNT_HOME would give it ansible-test's)",
}
# Targets this harness does not run, with the reason. The aliases file says most of it
# (windows, cloud, httptester, disabled); these change the shared machine itself (packages,
# services, accounts, the host name, the firewall) beyond a temporary directory.
MACHINE_CHANGING = {
    "apt": "installs and removes system packages", "apt_key": "changes apt's trusted keys",
    "apt_repository": "changes apt's sources", "deb822_repository": "changes apt's sources",
    "debconf": "changes debconf answers", "dnf": "needs dnf (not on Debian)",
    "dnf-oldest": "needs dnf (not on Debian)", "dnf-latest": "needs dnf (not on Debian)",
    "yum_repository": "needs yum (not on Debian)", "package": "installs system packages",
    "package_facts": "installs system packages", "pip": "installs Python packages system-wide",
    "service": "starts a system service: no init system runs in the throwaway root (sandbox.py)",
    "systemd": "needs systemd as PID 1: the throwaway root's PID 1 is the harness's (sandbox.py)",
    "hostname": "changes the machine's host name", "reboot": "reboots the machine: no init system in the throwaway root",
    "iptables": "changes the firewall", "cron": "installs cron and edits crontabs",
    "mount_facts": "mounts file systems", "facts_linux_network": "changes network interfaces",
    "hardware_facts": "needs privileged hardware access", "user": "adds and removes accounts",
    "group": "adds and removes groups", "become": "adds accounts, installs passlib",
    "become_su": "adds accounts, installs pexpect", "become_sudo": "adds accounts",
    "expect": "installs pexpect with pip", "unarchive": "removes and reinstalls zip/unzip",
}
# Role-shaped targets with a runme.sh (ansible-test runs the script, not the role) whose role,
# run alone as site.yml, fails under ansible-playbook for what only the script gives it. Their
# playbooks are runme.py's to run (Part 2 of the report). The other role-shaped targets with a
# runme.sh (template, include_vars, ...) are run as roles too: their roles pass alone.
RUNME_ONLY = {
    "test_core": "it passes --vault-password-file and the target's own inventory, which the role's vaulted values need",
    "filter_mathstuff": "its playbook runs the role on localhost, whose host_vars/localhost.yml the role reads",
    "filter_core": "its playbook runs the role on localhost, whose host_vars/localhost the role's template reads",
    "ansible-inventory": "it runs test.yml on localhost in a virtualenv and diffs ansible-inventory's output",
    "missing_required_lib": "its playbook runs the role through `ansible localhost -m import_role`, expecting each "
                            "run to fail (the library is missing by design)",
    "lookup_password": "it runs in a virtualenv, after ansible-test's setup target setup_passlib_controller "
                       "installs passlib with pip (the role's encrypt= needs it)",
}

# Of MACHINE_CHANGING's targets, those run in a throwaway root of their own (tests/acceptance/sandbox.py: an
# overlay over this machine's root, its writes in a tmpfs of the run's mount namespace, its own
# PID, UTS and IPC namespaces), under both tools alike: what they install, add or set is gone
# with the run. target -> its network: "host" (this machine's: apt and pip fetch from the package
# registries) or "private" (a namespace of its own with only a loopback interface). The others
# stay above with their reason: no init system runs in the sandbox (service, systemd, reboot),
# and dnf and yum are not Debian's.
SANDBOXED = {
    "apt": "host", "apt_key": "host", "apt_repository": "host", "deb822_repository": "host",
    "debconf": "host", "package": "host", "package_facts": "host", "pip": "host", "hostname": "host",
    "cron": "host", "mount_facts": "host", "hardware_facts": "host", "user": "host", "group": "host",
    "become": "host", "become_su": "host", "become_sudo": "host", "expect": "host", "unarchive": "host",
    "iptables": "private",
}
# What a sandboxed target needs installed before it runs, fetched on this machine's network (a
# target on a private one cannot reach the registries): iptables installs iptables itself (its
# task then finds it there, under both tools alike) before its rules, which must not reach this
# machine's firewall. target -> a shell command run in its throwaway root first.
SANDBOX_PREPARE = {
    "iptables": "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y --no-install-recommends "
                "iptables > /dev/null",
}
# The helper role that adds a test account (find, slurp). It needs root.
ACCOUNT_ROLE = "setup_test_user"
_ACCOUNTS = itertools.count()
ACCOUNT_PYTHON = "/usr/bin/python3"
# Accounts a target adds under a name its role defaults give (setup_test_user's test_user_name;
# copy's and file's remote_unprivileged_user, with copy's group and its sudoers file named after
# the user): the harness gives each run names of its own (``-e NAME=``, so that runs side by side,
# and a run after one that timed out or failed before its cleanup, never share an account or find
# one left behind), removes them after the run whatever it did, and writes the defaults back in
# the results (a cached oracle run and a new run compare). variable -> user or group.
ACCOUNT_VARS = {"test_user_name": "user", "remote_unprivileged_user": "user",
                "remote_unprivileged_user_group": "group"}
SUDOERS_DIRS = (Path("/etc/sudoers.d"), Path("/usr/local/etc/sudoers.d"))


class Unavailable(Exception):
    """The sdist could not be fetched (offline, PyPI down); the message says why."""


@dataclass
class Run:
    """One tool's run of one target."""

    tool: str
    code: int | None = None
    seconds: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)
    refused: str = ""
    log: str = ""
    earlier: list[str] = field(default_factory=list)  # why each earlier attempt failed (TIMING_SENSITIVE)
    key: str = ""  # ansible-playbook's: the key of the inputs it ran with (oracle_inputs; records.key_of)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["status"] in ("failed", "unreachable") and not r.get("ignored")]

    @property
    def passed(self) -> bool:
        return self.code == 0

    def summary(self) -> dict[str, int]:
        return {"tasks": len(self.results), "failed": len(self.failures),
                "passed": len(self.results) - len(self.failures)}


# The results: one file per target and tool, and per runme invocation (results-VERSION/<ansible|
# rustle|runme>/<name>.json), each written whole and renamed into place, so that runs side by side
# (the targets of one run, two people's runs on one cache) never overwrite each other's results;
# results-VERSION.json, the single file that earlier versions rewrote after each target, is read first.
RESULTS = CACHE / f"results-{ANSIBLE_VERSION}"


def load_results() -> dict[str, dict[str, Any]]:
    legacy = CACHE / f"results-{ANSIBLE_VERSION}.json"
    data: dict[str, dict[str, Any]] = json.loads(legacy.read_text()) if legacy.exists() else {}
    data.setdefault("ansible", {})
    data.setdefault("rustle", {})
    for path in sorted(RESULTS.glob("*/*.json")):
        data.setdefault(path.parent.name, {})[unquote(path.stem)] = json.loads(path.read_text())
    return data


def save_result(section: str, name: str, doc: dict[str, Any]) -> None:
    path = RESULTS / section / f"{quote(name, safe='')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    tmp.replace(path)


def prebuild_runner() -> None:
    """Build the native runner into the cache every target's run shares (``_env``) before any
    target runs, when a run may use it (--format auto, make acceptance's): else the first target
    pays for cargo's build within its RUN_TIMEOUT."""
    if os.environ.get("RUSTLE_FORMAT", "auto") == "pyz":
        return
    from rustle_deploy.compiler.runner import ensure_runner, find_cargo
    from rustle_deploy.errors import CompileError

    if find_cargo() is None:
        return  # no runner: --format auto deploys pyz
    try:
        ensure_runner(CACHE)
    except CompileError as exc:  # each target's run says it again, and deploys pyz
        print(f"acceptance: the native runner cannot be built: {exc}", file=sys.stderr)


def targets_root(version: str = ANSIBLE_VERSION) -> Path:
    """The sdist's ``test/integration/targets`` directory, fetched once into the cache, with
    the sdist's ``test/lib/.../constraints.txt`` that ``setup_remote_constraints`` copies
    (``run_target``: a dependency of prepare_http_tests, so of uri and get_url, and of pip)."""
    test = CACHE / f"ansible_core-{version}" / "test"
    root = test / "integration" / "targets"
    if root.is_dir() and (test / CONSTRAINTS).is_file():
        return root
    with cache_lock(CACHE / f"ansible_core-{version}.lock"):  # one fetch among test workers
        if not root.is_dir():
            _fetch_targets(version)
        if not (test / CONSTRAINTS).is_file():  # also in a cache filled before it was extracted
            _extract_constraints(version)
    return root


def _extract_constraints(version: str) -> None:
    name = f"ansible_core-{version}/test/{CONSTRAINTS}"
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp, tarfile.open(CACHE / f"ansible_core-{version}.tar.gz") as tar:
        tar.extractall(tmp, members=[tar.getmember(name)], filter="data")
        (CACHE / name).parent.mkdir(parents=True, exist_ok=True)
        Path(tmp, name).replace(CACHE / name)


def _fetch_targets(version: str) -> None:
    sdist = CACHE / f"ansible_core-{version}.tar.gz"
    if not sdist.exists():
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            try:
                proc = subprocess.run(
                    [sys.executable, "-m", "pip", "download", "-q", "--no-binary", ":all:",
                     "--no-deps", "--disable-pip-version-check", f"ansible-core=={version}", "-d", tmp],
                    capture_output=True, text=True, timeout=300)
            except subprocess.TimeoutExpired as exc:
                raise Unavailable(f"pip download ansible-core=={version} timed out (offline?)") from exc
            got = list(Path(tmp).glob("ansible_core-*.tar.gz"))
            if proc.returncode != 0 or not got:
                tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                raise Unavailable(f"cannot fetch the ansible-core {version} sdist from PyPI: {tail}")
            got[0].replace(sdist)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp, tarfile.open(sdist) as tar:
        prefix = f"ansible_core-{version}/test/integration/targets/"
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        tar.extractall(tmp, members=members, filter="data")
        (CACHE / f"ansible_core-{version}").mkdir(exist_ok=True)
        Path(tmp, f"ansible_core-{version}", "test").replace(CACHE / f"ansible_core-{version}" / "test")


def aliases(root: Path, name: str) -> list[str]:
    path = root / name / "aliases"
    lines = path.read_text().splitlines() if path.exists() else []
    return [ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()]


def role_targets(root: Path) -> list[str]:
    """Targets shaped as a role: ``tasks/main.yml`` and an ``aliases`` file (helper roles
    such as ``setup_remote_tmp_dir`` have no aliases and run only as dependencies)."""
    return sorted(p.name for p in root.iterdir()
                  if (p / "tasks" / "main.yml").is_file() and (p / "aliases").is_file())


def not_run(root: Path, name: str) -> str | None:
    """Why this target is not run here (``None``: it is run)."""
    al = aliases(root, name)
    if "windows" in al or any(a.startswith("shippable/windows") for a in al) or name.startswith("win"):
        return "windows: needs a Windows host"
    if any(a.startswith("cloud/") for a in al):
        return "service: needs a cloud service (" + ", ".join(a for a in al if a.startswith("cloud/")) + ")"
    if "needs/httptester" in al and name not in HTTPTESTER_TARGETS:
        return "network: needs ansible-test's HTTP test server"
    if name in NEEDS_NAMESPACE and not namespaced():
        return "network: needs a network namespace of its own (run as root)"
    if "needs/ssh" in al:
        return "service: needs an ssh-agent set up by ansible-test"
    if "disabled" in al or "disabled/yes" in al or "unsupported" in al:
        return "disabled upstream"
    if "hidden" in al:
        return "hidden: ansible-test never runs it on its own, only as a part of another target"
    if name in RUNME_ONLY:
        return "script: ansible-test runs its runme.sh, not the role: " + RUNME_ONLY[name]
    if name in MACHINE_CHANGING:
        from .sandbox import available

        if name not in SANDBOXED:
            return "machine: " + MACHINE_CHANGING[name]
        if (why := available()) is not None:
            return f"machine: {MACHINE_CHANGING[name]} ({why})"
    if ACCOUNT_ROLE in roles_of(root, name):
        if os.geteuid() != 0:
            return f"machine: adds a test account ({ACCOUNT_ROLE}): run as root"
        if not os.access(ACCOUNT_PYTHON, os.X_OK):
            return f"machine: its test account needs a Python every account can run: {ACCOUNT_PYTHON}"
    return None


def _deps(root: Path, name: str) -> list[str]:
    out: list[str] = []
    meta = root / name / "meta" / "main.yml"
    if meta.exists():
        doc = yaml.safe_load(meta.read_text()) or {}
        for dep in doc.get("dependencies") or []:
            dep_name = dep if isinstance(dep, str) else dep.get("role") or dep.get("name")
            if isinstance(dep_name, str):
                out.append(dep_name)
    out += [a.split("/", 2)[2] for a in aliases(root, name) if a.startswith("needs/target/")]
    return out


def roles_of(root: Path, name: str) -> list[str]:
    """The target and every target it needs (meta dependencies, ``needs/target/``)."""
    seen: list[str] = []
    todo = [name]
    while todo:
        cur = todo.pop()
        if cur in seen or not (root / cur).is_dir():
            continue
        seen.append(cur)
        todo += _deps(root, cur)
    return seen


def site_yml(root: Path, name: str) -> str:
    gather = "gather_facts/no" not in aliases(root, name)
    return f"- hosts: testhost\n  gather_facts: {gather}\n  roles:\n    - role: {name}\n"


def inventory(python: str, remote: Path | str) -> str:
    return ("[testgroup]\ntesthost ansible_connection=local ansible_pipelining=yes "
            f"ansible_python_interpreter={python} rustle_remote_dir={remote}\n")


def prepare(root: Path, name: str, work: Path) -> Path:
    """Write site.yml, the inventory and a roles directory for ``name`` under ``work``."""
    roles = work / "roles"
    roles.mkdir(parents=True)
    for role in roles_of(root, name):
        shutil.copytree(root / role, roles / role, symlinks=True)
    (work / "site.yml").write_text(site_yml(root, name))
    (work / "inventory").write_text(inventory(_python(root, name), work / "remote"))
    (work / "output").mkdir()
    # a private HOME, as ansible-test's test host has its own: targets write there (~/test.txt)
    # and copy's reads ~/.ssh/authorized_keys, which ansible-test's ssh set-up provides
    ssh = work / "home" / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "acceptance", "-f", str(ssh / "id_ed25519")],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    shutil.copyfile(ssh / "id_ed25519.pub", ssh / "authorized_keys")
    return work


# Targets that run tasks as other accounts without the helper role: copy adds its own
# unprivileged user and runs tests.yml as it (remote_user), and becomes ``nobody``.
OTHER_ACCOUNTS = frozenset({"copy"})


def _python(root: Path, name: str) -> str:
    """The hosts' Python: this one, or for a target that runs tasks as other accounts one every
    account can start (a virtualenv's often links into a private home: ansible-playbook failed
    copy's "Overwrite the file as user nobody" with "Permission denied" on it)."""
    if ACCOUNT_ROLE in roles_of(root, name) or name in OTHER_ACCOUNTS:
        return ACCOUNT_PYTHON
    return sys.executable


def _unshimmed(path: str) -> list[str]:
    """``path``'s directories without pyenv's shims: a shim of a version pyenv does not select
    (``shims/python3.13``) exits 127, and ansible-core's interpreter discovery takes it all the
    same (``interpreter_discovery_python`` failed under both tools on that alone)."""
    return [d for d in path.split(":") if d and not (d.endswith("/shims") and ".pyenv" in d)]


# ansible-core's settings every run of either tool gets (the recorded oracle's key holds them)
ANSIBLE_SETTINGS = {"ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_LOCALHOST_WARNING": "False",
                    "ANSIBLE_DEPRECATION_WARNINGS": "False", "ANSIBLE_RETRY_FILES_ENABLED": "False",
                    "ANSIBLE_HOST_KEY_CHECKING": "False"}


def _env(work: Path) -> dict[str, str]:
    # The native runner is built once for every target (its cache is keyed by its sources), not in
    # each target's private cache: a cargo build costs a minute or more of CPU.
    native = work / "home" / "cache" / "native"
    if not native.exists():
        (CACHE / "native").mkdir(parents=True, exist_ok=True)
        native.parent.mkdir(parents=True, exist_ok=True)
        native.symlink_to(CACHE / "native", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "RUSTLE_"))}
    env.update(HOME=str(work / "home"), ANSIBLE_HOME=str(work / "home" / ".ansible"), RUSTLE_STATE_DB=str(work / "home" / "state.db"),
               RUSTLE_DEPLOY_CACHE_DIR=str(work / "home" / "cache"),
               PATH=":".join([str(BIN), *_unshimmed(os.environ.get("PATH", ""))]),
               ANSIBLE_ROLES_PATH=str(work / "roles"), PYTHONWARNINGS="ignore", **ANSIBLE_SETTINGS)
    if os.environ.get("RUSTLE_FORMAT"):  # the suite pins pyz (tests/conftest.py); make acceptance runs auto
        env["RUSTLE_FORMAT"] = os.environ["RUSTLE_FORMAT"]
    return env


# What ansible-test sets around a target's run (ansible_test/_internal/ansible_util.py's
# ansible_environment, commands/integration/__init__.py's integration_environment) that the
# targets of AS_ANSIBLE_TEST read: ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE (ansiballz_python asserts
# the 1024 it gives), ANSIBLE_INVENTORY=/dev/null (var_reserved's nested ansible-playbook, run
# without -i, must warn of nothing but its reserved names), $OUTPUT_DIR and $INVENTORY_PATH
# (lookup_pipe echoes $OUTPUT_DIR). Every other target runs as before: each committed record's
# key (tests/acceptance/records.py) is of the settings it ran with, and copy's oracle alone takes
# 2,363 s to record again.
ANSIBLE_TEST_SETTINGS = {"ANSIBLE_PYTHON_MODULE_RLIMIT_NOFILE": "1024", "ANSIBLE_INVENTORY": "/dev/null",
                         "ANSIBLE_HOST_PATTERN_MISMATCH": "error"}
AS_ANSIBLE_TEST = frozenset({"ansiballz_python", "var_reserved", "lookup_pipe"})
# Targets whose tasks name the account's home two ways: async_wrapper expands `~/.ansible_async`
# with $HOME on the host, async_status with `echo ~root` (ansible-core's _remote_expand_user asks
# for the remote user's home): under the private HOME the job is never found ("could not find
# job"). ansible-test's HOME is the account's own, as these targets get.
ACCOUNT_HOME = frozenset({"async", "async_fail"})


def env_set(root: Path, name: str) -> dict[str, str]:
    """The variables a target's ``env/set/NAME/VALUE`` aliases set (ansible-test's env_set)."""
    return dict(a.split("/", 3)[2:] for a in aliases(root, name) if a.startswith("env/set/") and a.count("/") >= 3)


def as_ansible_test(root: Path, name: str, work: Path) -> dict[str, str]:
    """What ansible-test's environment gives ``name`` over ``_env``'s (``work``: the run's
    directory)."""
    env = env_set(root, name)
    if name in AS_ANSIBLE_TEST:
        env.update(ANSIBLE_TEST_SETTINGS, OUTPUT_DIR=str(work / "output"), INVENTORY_PATH=str(work / "inventory"))
    if name in ACCOUNT_HOME:
        env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    return env


def _argv(tool: str, work: Path) -> list[str]:
    common = ["site.yml", "-i", "inventory", "-e", f"output_dir={work / 'output'}"]
    if tool == "ansible":
        return [str(BIN / "ansible-playbook"), *common]
    return [str(BIN / "rustle-deploy"), *common, "--run"]


CONSTRAINTS_ROLE = "setup_remote_constraints"
CONSTRAINTS = Path("lib/ansible_test/_data/requirements/constraints.txt")
# needs/httptester targets run against tests/acceptance/httptester.py's local servers. As root,
# each run of them is in network, mount and pid namespaces of its own (httptester.run_in_namespace:
# the servers on the real ports of addresses that a private /etc/hosts gives the names, as under
# ansible-test; the machine's files unchanged; whatever the run leaves ends with its namespace).
# lookup_url and module_utils_urls need that (a .netrc in the account's home that the url lookup
# reads from $HOME, `openssl s_client` to a name); uri and get_url otherwise reach the servers
# through a proxy on a port the kernel picks. Each of those two also starts a file server of its
# own with `async` on the port its `http_port` fact names (15260, 27617): through the proxy, the
# harness gives each run a port of its own instead (`-e http_port=N`, which wins over the target's
# set_fact, in both tools), so that a run never fetches from another run's server and runs side by
# side do not meet. The server's `async` window (180 and 90 s) is a wall-time budget that
# ansible-playbook overruns on a loaded machine (its server is gone before the last tasks that
# fetch from it: Connection refused): the copies get the run's timeout instead, and whatever still
# listens on the port when the run ends is ended (kill_listeners).
HTTPTESTER_TARGETS = frozenset({"uri", "get_url", "lookup_url", "module_utils_urls"})
NEEDS_NAMESPACE = frozenset({"lookup_url", "module_utils_urls"})
_FILE_SERVER_ASYNC = re.compile(r"^(\s+async:\s*)(?:90|180)\b", re.MULTILINE)


@functools.cache
def namespaced() -> bool:
    from .httptester import namespaces_work

    return namespaces_work()


# Tasks of those targets that no stand-in can serve, left out of the copy both tools run: uri's
# unix socket test installs socat with the machine's package manager (and the namespace has no
# network to fetch it); and without the namespace, uri's request with `use_proxy: no` goes to
# ansible.http.tests:443 without the proxy, which no resolver knows.
_UNSERVED = {"uri": ("Test unix socket",)}
_UNRESOLVED = {"uri": ("Testing use_proxy=no is honored",)}


def unserved(name: str) -> tuple[str, ...]:
    return _UNSERVED.get(name, ()) + (() if namespaced() else _UNRESOLVED.get(name, ()))


def _widen_file_server_window(work: Path, name: str) -> None:
    tasks = work / "roles" / name / "tasks" / "main.yml"
    text = _FILE_SERVER_ASYNC.sub(rf"\g<1>{run_timeout(name)}", tasks.read_text(), count=1)
    for task in unserved(name):
        # the task, from its "- name:" line to the next top-level task
        text, n = re.subn(rf"^- name: {re.escape(task)}\n(?:(?!- ).*\n|\n)*", "", text, count=1, flags=re.MULTILINE)
        assert n == 1, f"{name}: no task {task!r} to leave out"
    tasks.write_text(text)


def kill_listeners(port: int) -> list[int]:
    """End the processes that listen on TCP ``port`` of this machine (found in /proc: the
    socket's inode in /proc/net/tcp, then the process holding it); their pids."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            held = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if held & inodes:
            pids.append(int(proc.name))
            try:
                os.kill(int(proc.name), signal.SIGKILL)
            except OSError:
                pass
    return pids


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice). Another process
    may take it before the target binds it: the kernel picks among ~28,000 ephemeral ports, and a
    lingering server of an earlier run holds its own port, so a collision is unlikely, not ruled out
    (a run that meets one fails its own wait_for or its checks and is visibly wrong)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Files a target leaves in the running account's own home, outside its work directory:
# lineinfile's acls.yml copies "TEST" to ~/test.txt, and copy's `~` is the remote user's home
# (~root: the account's, not $HOME), while its clean-up removes $HOME/test.txt; the file stays,
# and every later run on the machine finds it ("Create file" ok, where the first run says
# changed). The harness writes it as that first run leaves it when it is missing (never over a
# file that is there), so that every run, the recorded oracle's and one on a fresh machine,
# starts alike. target -> (name in the account's home, content, mode)
LEFT_IN_HOME = {"lineinfile": ("test.txt", "TEST", 0o644)}

# Likewise outside any home: copy writes /tmp/ansible-test-abs-link (content "target") and makes
# /tmp/ansible-test-abs-link-dir with delegate_to: localhost, and never removes them, so every
# run after the machine's first says "ok" where the first says "changed" (the committed oracle
# record was made on a machine that had them: its first such results are ok). target -> (path,
# content or None for a directory, mode)
LEFT_ON_MACHINE = {"copy": (("/tmp/ansible-test-abs-link", "target", 0o644),
                            ("/tmp/ansible-test-abs-link-dir", None, 0o755))}


def _as_earlier_runs_left(name: str) -> None:
    for path, text, mode in LEFT_ON_MACHINE.get(name, ()):
        if text is None:
            os.makedirs(path, mode=mode, exist_ok=True)
        elif not os.path.lexists(path):
            Path(path).write_text(text)
            os.chmod(path, mode)
    if name not in LEFT_IN_HOME:
        return
    file, content, mode = LEFT_IN_HOME[name]
    path = Path(pwd.getpwuid(os.getuid()).pw_dir) / file
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(content)
    os.chmod(path, mode)


def run_target(root: Path, name: str, tool: str, base: Path | None = None) -> Run:
    """Run ``name`` under ``tool`` (``ansible`` or ``rustle``) in a fresh directory."""
    _as_earlier_runs_left(name)
    tmp = tempfile.mkdtemp(prefix=f"acc-{tool}-{name}-", dir=base)
    try:
        if CONSTRAINTS_ROLE in roles_of(root, name):
            # its copy reads "{{ role_path }}/../../../lib/ansible_test/...", as laid out in the sdist
            work = prepare(root, name, Path(tmp) / "target")
            where = Path(tmp) / CONSTRAINTS
            where.parent.mkdir(parents=True)
            shutil.copyfile(root.parents[1] / CONSTRAINTS, where)
        else:
            work = prepare(root, name, Path(tmp))
        argv = _argv(tool, work)
        env = dict(_env(work), **as_ansible_test(root, name, work))
        if name in HTTPTESTER_TARGETS:
            from .httptester import HttpTester

            _widen_file_server_window(work, name)
            http = HttpTester(work / "httptester", namespaced=namespaced())
            if http.namespaced:
                return execute(tool, [*http.wrapper(), *argv, "-e", json.dumps(http.extra_vars)], work, work,
                               _env(work), [work / "remote"], run_timeout(name))
            port = free_port()
            try:
                with http:
                    extra = dict(http.extra_vars, http_port=port)
                    return execute(tool, [*argv, "-e", json.dumps(extra)], work, work,
                                   dict(env, **http.env), [work / "remote"], run_timeout(name))
            finally:
                kill_listeners(port)
        if name in SANDBOXED:
            from .sandbox import command

            scratch = Path(tmp) / "sandbox"
            scratch.mkdir()
            argv = command(argv, scratch, [Path(tmp)], work, network=SANDBOXED[name] == "host",
                           prepare=SANDBOX_PREPARE.get(name, ""))
        names = account_names(root, name)
        if not names:
            return execute(tool, argv, work, work, env, [work / "remote"], run_timeout(name))
        own = [a for var, (_default, ours) in names.items() for a in ("-e", f"{var}={ours}")]
        try:
            run = execute(tool, [*argv, *own], work, work, env, [work / "remote"], run_timeout(name))
        finally:
            for var, (_default, ours) in names.items():
                _remove_account(ours, ACCOUNT_VARS[var])
        for _default, ours in names.values():
            for rec in run.results:
                rec["msg"] = re.sub(rf"\b{ours}\b", _default, rec["msg"])
            run.log = re.sub(rf"\b{ours}\b", _default, run.log)
        return run
    finally:
        _remove_tree(Path(tmp))


def account_names(root: Path, name: str) -> dict[str, tuple[str, str]]:
    """The account variables (``ACCOUNT_VARS``) the roles of ``name`` default, each with its
    default and a name of this run's own (unique among processes and threads). None for a
    target run in a throwaway root (``SANDBOXED``): its accounts never reach this machine, and
    an extra variable would win over the role's own (become_sudo's setup_become_user_pair makes
    two accounts through setup_test_user, each with its own ``test_user_name``: -e made them one)."""
    out: dict[str, tuple[str, str]] = {}
    if name in SANDBOXED:
        return out
    for role in roles_of(root, name):
        path = root / role / "defaults" / "main.yml"
        doc = (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}
        for var in ACCOUNT_VARS:
            if var in doc and var not in out:
                out[var] = (str(doc[var]), f"rustleacc{os.getpid()}n{next(_ACCOUNTS)}")
    return out


# Targets whose own checks time what their background jobs do: wait_for starts `sleep 3 && rm`
# with async and asserts that the next task waited at least 2 s, which a tool that takes more
# than a second between two tasks (ansible-playbook on a loaded machine) fails on its own. Such
# a target is run again while it fails, under either tool alike, up to ATTEMPTS runs; the run
# kept is the last, and the report lists why each earlier one failed.
TIMING_SENSITIVE = {"wait_for": "asserts `waitfor.elapsed >= 2` after a 3 s background job",
                    "async": "callback_test.yml's `sleep 5` under `async: 6` leaves a second for the job's start",
                    "async_fail": "its job, a module that fails its first reads and then recovers, has `async: 10`"}
ATTEMPTS = 3


def run_attempts(root: Path, name: str, tool: str, base: Path | None = None, only: list[str] | None = None) -> Run:
    """``run_target``, again while it fails for a ``TIMING_SENSITIVE`` target (with ``only``:
    while it fails with one of those blockers, the ones the oracle's own earlier runs had)."""
    earlier: list[str] = []
    run = run_target(root, name, tool, base)
    while not run.passed and name in TIMING_SENSITIVE and len(earlier) + 1 < ATTEMPTS \
            and (only is None or blocker(run) in only):
        earlier.append(blocker(run) or f"exit {run.code}")
        run = run_target(root, name, tool, base)
    run.earlier = earlier
    return run


def oracle_inputs(root: Path, name: str) -> dict[str, Any]:
    """What decides ansible-playbook's run of ``name`` here (the key of its record,
    tests/acceptance/records.py): the files of the target and of every target it needs, as the
    sdist ships them, and what the harness writes and sets around them."""
    from .records import file_digest, tree_digest

    roles = roles_of(root, name)
    python = _python(root, name)
    extra = as_ansible_test(root, name, Path("{work}"))
    return {
        "ansible-core": ANSIBLE_VERSION, "target": name,
        "roles": {role: tree_digest(root / role) for role in sorted(roles)},
        "constraints": file_digest(root.parents[1] / CONSTRAINTS) if CONSTRAINTS_ROLE in roles else None,
        "site.yml": site_yml(root, name),
        "inventory": inventory("{python}" if python == sys.executable else python, "{work}/remote"),
        "argv": _argv("ansible", Path("{work}"))[1:], "settings": ANSIBLE_SETTINGS,
        "accounts": {var: default for var, (default, _ours) in account_names(root, name).items()},
        "httptester": {"unserved": list(unserved(name)), "window": run_timeout(name), "namespace": namespaced(),
                       "server": file_digest(Path(__file__).with_name("httptester.py"))}
        if name in HTTPTESTER_TARGETS else None,
        "left_in_home": list(LEFT_IN_HOME[name]) if name in LEFT_IN_HOME else None,
        "callback": file_digest(CALLBACKS / "results_jsonl.py"),
        # only where it gives something: the other targets' keys stay those of their records
        **({"ansible-test": dict(extra, **({"HOME": "{account's home}"} if "HOME" in extra else {}))} if extra else {}),
        # only where it applies: the other targets' keys (their committed records) stay as they were
        **({"sandbox": {"network": SANDBOXED[name], "prepare": SANDBOX_PREPARE.get(name, "")}}
           if name in SANDBOXED else {}),
    }


def refresh_record(record: Any, run: Run) -> None:
    """``make acceptance``'s live oracle run written over the committed record of a target the
    suite compares (one that has a record), unless it timed out."""
    from .records import normalised

    if record.path.is_file() and run.code is not None:
        record.write(normalised(run, _mask), run.earlier, run.seconds)


def _mask(text: str) -> str:
    return _NOISE.sub("WORK", text)


def oracle_record(root: Path, name: str) -> Any:
    from . import records

    return records.Record(records.RECORDS / ANSIBLE_VERSION / f"{name}.json", oracle_inputs(root, name))


def recorded_oracle(root: Path, name: str, base: Path | None = None) -> Run:
    """ansible-playbook's run of ``name``: its committed record, or a live run (``RUSTLE_ORACLE``;
    tests/acceptance/records.py)."""
    from . import records

    return records.oracle_run(oracle_record(root, name), lambda: run_attempts(root, name, "ansible", base),
                              _mask, lambda **kw: Run("ansible", **kw))


def usable_oracle(cached: dict[str, Any] | None, key: str) -> bool:
    """Whether a cache's ansible-playbook result can stand for a run now: it finished (did not
    time out) and was made from the inputs a run would have now (a result without a key, from a
    harness before keys were kept, is not)."""
    return cached is not None and cached.get("code") is not None and cached.get("key") == key


def replay_record(record: Any) -> Run | None:
    """The suite's committed record of ansible-playbook's run (tests/data/acceptance/) when it
    was made from the inputs a run would have now, as a ``Run``; else None."""
    doc = record.load()
    if doc is None or doc.get("key") != record.key:
        return None
    return Run("ansible", code=doc["code"], results=doc["results"], earlier=doc.get("earlier", []),
               seconds=doc.get("seconds", 0.0), log=f"(the recorded oracle: {record.path.name})", key=record.key)


def _remove_account(name: str, kind: str = "user") -> None:
    """Remove this run's account if the run left it: a user with its home, its own group and a
    sudoers file named after it (copy's), or a group."""
    if kind == "user":
        for sudoers in SUDOERS_DIRS:
            (sudoers / name).unlink(missing_ok=True)
        try:
            pwd.getpwnam(name)
        except KeyError:
            pass
        else:
            subprocess.run(["userdel", "-r", "-f", name], capture_output=True, stdin=subprocess.DEVNULL, check=False)
    try:
        grp.getgrnam(name)
    except KeyError:
        return
    subprocess.run(["groupdel", name], capture_output=True, stdin=subprocess.DEVNULL, check=False)


def _remove_tree(path: Path) -> None:
    """Remove a run's temporary directory. Every process of the run has ended (``execute``);
    what a file system still refuses is reported, not raised: the results are already taken."""
    for _ in range(3):
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            return
        time.sleep(1)
    print(f"acceptance: could not remove all of {path}", file=sys.stderr)


def execute(tool: str, argv: list[str], cwd: Path, work: Path, env: dict[str, str],
            remotes: list[Path], timeout: int = RUN_TIMEOUT) -> Run:
    """Run ``argv`` (one tool's command) in ``cwd`` and collect its task results: ansible-playbook's
    through the results callback (into ``work``), rustle-deploy's from the journals under
    ``remotes``; a rustle-deploy run that exits 2 without results was refused (why, in
    ``refused``). Both harnesses run every command through here. When it returns, no process of
    the run is left (``end_run``): none writes into ``work`` once the caller removes it."""
    results_file = work / "results.jsonl"
    if tool == "ansible":
        env = dict(env, ANSIBLE_CALLBACK_PLUGINS=str(CALLBACKS), ANSIBLE_CALLBACKS_ENABLED="results_jsonl",
                   RUSTLE_ACCEPTANCE_RESULTS=str(results_file))
    # rustle-deploy's own per-host deadline (120 s by default) is this run's: ansible-playbook has none
    env = dict(env, **{RUN_MARK: str(work)}, RUSTLE_DEPLOYMENT_TIMEOUT=str(timeout))
    run = Run(tool)
    start = time.monotonic()
    # a session of its own, so that a timeout ends everything the run started (a cargo build of the
    # native runner, a module's children), not only the tool's own process
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        run.code = proc.returncode
    except subprocess.TimeoutExpired:
        end_run(proc.pid, str(work))
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # a daemon of its own session holds the output open
            proc.kill()
            proc.wait()
            out, err = "", ""
        run.refused = f"timed out after {timeout} s"
    end_run(None, str(work))  # what the run left running (a daemon, an async job)
    run.log = ((out or "") + (err or ""))[-20000:]
    run.seconds = round(time.monotonic() - start, 1)
    if tool == "ansible":
        if results_file.exists():
            run.results = [json.loads(ln) for ln in results_file.read_text().splitlines()]
    else:
        run.results = _with_controller_phases([rec for remote in remotes for rec in _journal(remote)],
                                              _recorded(Path(env.get("RUSTLE_STATE_DB", work / "home" / "state.db"))))
        if run.code == 2 and not run.results:
            run.refused = _refusal(run.log, work)
    return run


# Every process a run starts carries its work directory in this variable (sudo and su clear it:
# those stay the run's descendants, ``_descendants``).
RUN_MARK = "RUSTLE_ACCEPTANCE_WORK"


def _processes() -> dict[int, int]:
    """Every process of this machine -> its parent."""
    out = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            out[int(proc.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return out


def _descendants(root: int, parents: dict[int, int]) -> set[int]:
    found = {root} if root in parents else set()
    grew = True
    while grew:
        more = {pid for pid, ppid in parents.items() if ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def _marked(pids: dict[int, int], work: str) -> set[int]:
    mark = f"{RUN_MARK}={work}".encode()
    out = set()
    for pid in pids:
        try:
            if mark in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                out.add(pid)
        except OSError:
            continue
    return out


def end_run(root: int | None, work: str) -> set[int]:
    """End every process of a run: ``root`` (the tool, still running: not yet reaped, so its pid
    is its own) and its descendants, whatever session or process group they made (sudo, su,
    ssh), and any that left the tree but carry the run's mark (``RUN_MARK``: a daemonised job;
    after the tool exited, only those). Each is stopped first (a stopped process forks no more),
    until no new one is found, then killed. The pids ended."""
    stopped: set[int] = set()
    while True:
        parents = _processes()
        tree = _descendants(root, parents) if root is not None else set()
        new = (tree | _marked(parents, work)) - stopped - {os.getpid()}
        if not new:
            break
        for pid in new:
            try:
                os.kill(pid, signal.SIGSTOP)
            except OSError:
                pass
        # a signal is delivered when its process next runs: until then it may still fork, after
        # the next look (a busy machine), so the next look waits for every one to have stopped
        _settle(new, "TtZX")
        stopped |= new
    for pid in stopped:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    _settle(stopped, "ZX")  # gone, or dead and waiting for its parent: no longer running
    return stopped


def _settle(pids: set[int], states: str, seconds: float = 10.0) -> None:
    """Wait (at most ``seconds``) until each of ``pids`` is gone or in one of ``states``."""
    deadline = time.monotonic() + seconds
    waiting = set(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                state = "X"
            if state in states:
                waiting.discard(pid)
        if waiting:
            time.sleep(0.01)


HOST = "testhost"  # the inventory's only host: the journal under remote/ is its own


def _journal(remote: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted((remote / "runs").glob("*.jsonl"), key=lambda p: p.stat().st_mtime):
        host = HOST
        for line in path.read_text().splitlines():
            ev = json.loads(line)
            if ev.get("event") == "run_start":  # hosts sharing one remote directory: whose run
                host = ev.get("host") or HOST
            if ev.get("event") in ("task_result", "handler_result"):
                rec = {"task": ev.get("task", ""), "host": host, "module": ev.get("module", ""),
                       "status": ev.get("status", ""), "ignored": bool(ev.get("ignored")),
                       "msg": str(ev.get("msg", ""))[:2000]}
                if "assertion" in ev:
                    rec["assertion"] = str(ev["assertion"])
                if ev.get("errored"):  # the run errored there (ansible-core aborts it: "[ERROR]: ...")
                    rec["errored"] = True
                out.append(rec)
    return out


# ansible-core's error for a notify of no handler: raised while it takes the task's result in,
# before the result is reported (it prints only the error)
_MISSING_HANDLER = "The requested handler "


def _aborted(rec: dict[str, Any]) -> bool:
    """Whether ``rec`` is the result of a task whose notify of no handler errored the run, or the
    failure of an include whose file ansible-core could not parse (after its ok result): where
    ansible-playbook aborts and reports no result, only the error (not compared)."""
    return bool(rec.get("errored")) and (str(rec.get("msg", "")).startswith(_MISSING_HANDLER)
                                         or rec.get("module") == "include")


def _recorded(db: Path) -> list[dict[str, Any]]:
    """Every task and handler result the controller recorded for the run (its state database, in
    run order per host): those of the host's phases, which its journal holds too, and those of the
    controller's phases (a task delegated to localhost, an action plugin run on the controller;
    docs/phases.md), which no host journal holds."""
    if not db.is_file():
        return []
    with closing(sqlite3.connect(db)) as con:
        rows = con.execute(
            "SELECT t.host, t.task, t.module, t.status, t.msg, t.ignored FROM task_results t "
            "JOIN deployments d ON d.id = t.deployment_id ORDER BY d.created_at, t.run_id, t.host, t.seq").fetchall()
    return [{"task": task or "", "host": host, "module": module or "", "status": status or "", "ignored": bool(ignored),
             "msg": (msg or "")[:2000], "phase": "controller"} for host, task, module, status, msg, ignored in rows]


def _with_controller_phases(journal: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The host journals' results (``journal``) with the controller phases' results put in their
    places: ``recorded`` holds every result of a host in run order, the journal those of its own
    phases; a recorded result that is not the host's next journal entry is a controller phase's."""
    pending: dict[str, list[dict[str, Any]]] = {}
    for rec in journal:
        pending.setdefault(rec["host"], []).append(rec)
    before: dict[int, list[dict[str, Any]]] = {}  # id of a journal entry -> controller results before it
    after: list[dict[str, Any]] = []  # controller results after the host's last journal entry
    for rec in recorded:
        queue = pending.get(rec["host"], [])
        if queue and (queue[0]["task"], queue[0]["status"]) == (rec["task"], rec["status"]):
            queue.pop(0)
        elif queue:
            before.setdefault(id(queue[0]), []).append(rec)
        else:
            after.append(rec)
    out: list[dict[str, Any]] = []
    for rec in journal:
        out += before.get(id(rec), []) + [rec]
    return out + after


def _refusal(log: str, work: Path) -> str:
    text = log.replace(str(work) + "/", "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return "\n".join(lines[:12])


# --- task by task ----------------------------------------------------------------------------

# ansible-playbook reports its fact gathering as a task; rustle-deploy gathers facts in its
# runtime's set-up, not as a task, so that result has no counterpart to compare with
UNCOMPARED = frozenset({"Gathering Facts"})
# ansible-playbook's strategy runs a meta task itself and sends the callback no result for it
# unless it is skipped; rustle-deploy's journal has one: that result is not compared either
_META = frozenset({"meta", "ansible.builtin.meta", "ansible.legacy.meta"})


def _compared(rec: dict[str, Any]) -> bool:
    return rec["task"] not in UNCOMPARED and not (rec.get("module") in _META and rec["status"] != "skipped") \
        and not _aborted(rec)
# what differs between two runs of the same target by construction: the work directory and the
# names tempfile makes (``/tmp/ansible.XXXXXXXX...``), a module's temporary directory with a file
# tempfile made in it (ansible-core's ``~/.ansible/tmp/ansible-tmp-TIME-PID-N/tmpXXXXXXXX``, the
# runtime's ``/tmp/rustle-X/ansible-tmp-Y/tmpXXXXXXXX``: uri's "failed to copy TMP to DEST"), and
# the ports of the local HTTP servers
_NOISE = re.compile(r"/[^\s'\"]*?acc-(?:ansible|rustle)-[^/\s'\"]*|(?<=/)ansible\.\w+"
                    r"|/[^\s'\"]*/ansible-tmp-[^/\s'\"]+(?:/tmp\w{8}\b)?|(?<=localhost:)\d+")


@dataclass
class Comparison:
    """Two runs of one target aligned task by task (by task name and host, in order)."""

    compared: int = 0
    identical: int = 0
    differences: list[str] = field(default_factory=list)  # in run order
    unreached: dict[str, int] = field(default_factory=dict)  # tool -> results after the other stopped
    refused: bool = False

    @property
    def different(self) -> int:
        return self.compared - self.identical


def outcome(rec: dict[str, Any]) -> str:
    """A task result as compared: its status, ``(ignored)``, and for a failure its message."""
    text = rec["status"] + (" (ignored)" if rec.get("ignored") else "")
    if rec["status"] in ("failed", "unreachable"):
        why = rec.get("assertion") or rec.get("msg") or ""
        text += ": " + _NOISE.sub("WORK", why).strip()[:300]
    return text


def compare(a: Run, r: Run) -> Comparison:
    """Align ansible-playbook's results (``a``) with rustle-deploy's (``r``) and compare each
    pair. A task only one tool ran counts as different, except after the point where the other
    tool stopped (it ran nothing more, or a failure that was not ignored stopped its host, which
    then ran only its ``always:`` sections): those are ``unreached`` (a target that stops under
    both is compared up to where each stops; the failure itself is compared)."""
    out = Comparison(refused=bool(r.refused))
    if r.refused:
        return out
    # a role named by its path shows its work directory in its tasks' names: masked too
    ra = [dict(x, task=_NOISE.sub("WORK", x["task"])) for x in a.results if _compared(x)]
    rr = [dict(x, task=_NOISE.sub("WORK", x["task"])) for x in r.results if _compared(x)]
    keys_a = [(x["task"], x.get("host", HOST)) for x in ra]
    keys_r = [(x["task"], x.get("host", HOST)) for x in rr]
    matcher = difflib.SequenceMatcher(None, keys_a, keys_r, autojunk=False)
    for _tag, i1, i2, j1, j2 in matcher.get_opcodes():
        pairs = list(zip(ra[i1:i2], rr[j1:j2], strict=False))
        for x, y in pairs:
            out.compared += 1
            ox, oy = outcome(x), outcome(y)
            if (x["task"], ox) == (y["task"], oy):
                out.identical += 1
            elif x["task"] == y["task"]:
                out.differences.append(f"{x['task']}: ansible-playbook {ox}; rustle-deploy {oy}")
            else:
                out.differences.append(f"ansible-playbook ran {x['task']!r} ({ox}) where rustle-deploy "
                                       f"ran {y['task']!r} ({oy})")
        for tool, rest, end, total, before in (
                ("ansible-playbook", ra[i1 + len(pairs):i2], j2, len(rr), rr[:j1 + len(pairs)]),
                ("rustle-deploy", rr[j1 + len(pairs):j2], i2, len(ra), ra[:i1 + len(pairs)])):
            if not rest:
                continue
            # the other tool had stopped: it ran nothing more, or its host had failed just before
            # (what it ran next was its always: sections, aligned with the end of this one's run)
            if end == total or (before and before[-1]["status"] in ("failed", "unreachable")
                                and not before[-1].get("ignored")):
                out.unreached[tool] = out.unreached.get(tool, 0) + len(rest)
                continue
            for x in rest:
                out.compared += 1
                out.differences.append(f"{x['task']}: run by {tool} only ({outcome(x)})")
    return out


# --- the report ---------------------------------------------------------------------------

# what stops a target -> the kind of gap and who owns it (the engineers' areas)
_BLOCKERS = [
    (r"(delegate_to|run_once|add_host|group_by|throttle|delegate_facts|any_errors_fatal|serial)",
     "cross-host construct: {} (phases)"),
    (r"module '([\w.]+)' is not supported by rustle-deploy|couldn't resolve module/action '([^']+)'"
     r"|module '([\w.]+)' belongs to a collection", "module not built in: {} (bridge)"),
    (r"lookup '([^']+)' is not supported|'with_(\w+)' is not supported", "controller lookup: {} (fidelity)"),
    (r"(filter|test) '([^']+)' is not supported", "{} {} on the host (fidelity)"),
    (r"(!unsafe|vault|'async'|module_defaults|args given as a template|include_vars option)",
     "playbook front end: {}"),
    (r"template source|copy source", "copy/template src over host data or a directory (fidelity)"),
]


def blocker(run: Run) -> str:
    """One line saying what stops this target under rustle-deploy."""
    if run.refused:
        first = run.refused.splitlines()[0]
        return "refused: " + re.sub(r"^(error: )?\S+:\d+:\d+: ", "", first)
    if run.failures:
        f = run.failures[-1]  # the one that stopped the host (earlier ones were rescued)
        why = _NOISE.sub("WORK", f.get("assertion") or f.get("msg") or f["status"])
        return f"fails: {f['task']}: {why}"[:300]
    if run.code not in (0, None):
        tail = [ln for ln in run.log.splitlines() if ln.strip()][-1:] or ["?"]
        return f"exit {run.code}: {tail[0]}"[:300]
    return ""


def report_path() -> Path:
    """Where the report goes unless ``--report`` says: docs/acceptance.md; with a cache of one's
    own (``$RUSTLE_ACCEPTANCE_CACHE``, whose results are one's own runs) beside those results,
    so that such a run never rewrites the checkout's report with them."""
    if os.environ.get("RUSTLE_ACCEPTANCE_CACHE"):
        return CACHE / "acceptance.md"
    return Path(__file__).resolve().parents[2] / "docs" / "acceptance.md"


def main(argv: list[str] | None = None) -> int:
    import argparse
    from concurrent.futures import ThreadPoolExecutor

    ap = argparse.ArgumentParser(prog="python -m tests.acceptance", description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="*", help="only these targets (default: every role-shaped one)")
    ap.add_argument("--oracle", action="store_true", help="re-run ansible-playbook even where its result is cached")
    ap.add_argument("--jobs", type=int, default=2, help="targets run at once [2]")
    ap.add_argument("--report-only", action="store_true", help="write the report from the cached results; run nothing")
    ap.add_argument("--runme", action="store_true",
                    help="the named targets are runme.sh ones: run their ansible-playbook invocations (tests/acceptance/runme.py)")
    ap.add_argument("--merge-into", type=Path, default=None, metavar="REPORT",
                    help="also put the named targets' rows and sections (with --runme, the invocations' part) "
                         "into REPORT, an earlier report of every target, leaving the other targets' as they are")
    ap.add_argument("--report", type=Path, default=None,
                    help="write the report there [docs/acceptance.md; acceptance.md in $RUSTLE_ACCEPTANCE_CACHE "
                         "when that is set]")
    args = ap.parse_args(argv)
    args.report = args.report or report_path()
    try:
        root = targets_root()
    except Unavailable as exc:
        print(f"acceptance: {exc}", file=sys.stderr)
        return 2
    data = load_results()
    if not args.report_only:
        prebuild_runner()
    if args.runme:
        from . import runme

        if not args.report_only:
            runme.run_all(root, args.targets or runme.runme_targets(root), data, args.oracle, args.jobs,
                          lambda key, entry: save_result("runme", key, entry))
        args.report.write_text(render(root, data))
        print(f"wrote {args.report}")
        if args.merge_into:
            args.merge_into.write_text(merge(args.merge_into.read_text(), render(root, data), [], runme_part=True))
            print(f"merged the runme part into {args.merge_into}")
        return 0
    names = args.targets or role_targets(root)
    todo = [] if args.report_only else [n for n in names if not_run(root, n) is None]

    def one(name: str) -> None:
        record = oracle_record(root, name)
        if args.oracle or not usable_oracle(data["ansible"].get(name), record.key):
            replayed = None if args.oracle else replay_record(record)
            run = replayed or run_attempts(root, name, "ansible")
            run.key = record.key
            data["ansible"][name] = asdict(run)
            save_result("ansible", name, data["ansible"][name])
            if replayed is None:
                refresh_record(record, run)
        data["rustle"][name] = asdict(run_attempts(root, name, "rustle"))
        save_result("rustle", name, data["rustle"][name])
        a, r = _load(data["ansible"][name]), _load(data["rustle"][name])
        print(f"{name:40} ansible {'pass' if a.passed else 'FAIL'} {a.seconds:6.1f}s   "
              f"rustle {'pass' if r.passed else 'FAIL'} {r.seconds:6.1f}s  {blocker(r)[:80]}", flush=True)

    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(one, todo))
    args.report.write_text(render(root, data))
    print(f"wrote {args.report}")
    if args.merge_into:
        args.merge_into.write_text(merge(args.merge_into.read_text(), render(root, data), names))
        print(f"merged {', '.join(names)} into {args.merge_into}")
    return 0


_PART2 = "\n# Part 2"  # where a report's second part (runme.render) starts
_PER_TARGET = "\n## Per target\n"


def _section(text: str, name: str) -> re.Match[str] | None:
    return re.search(rf"^### {re.escape(name)}\n.*?(?=^### |^## |^# |\Z)", text, re.MULTILINE | re.DOTALL)


def merge(old: str, new: str, names: list[str], runme_part: bool = False) -> str:
    """``old`` (a report of every target) with the per-target rows and sections of ``names`` taken
    from ``new`` (a report of fresh runs), and with ``runme_part``, ``new``'s runme.sh part in
    place of ``old``'s. The totals and blockers at the top are counted again from the per-target
    table as merged (``summary``): the rows not run again keep their numbers."""
    out = old
    for name in names:
        # the per-target table's row (a hand-written table above it may name the target first)
        row = re.compile(rf"^\| {re.escape(name)} \|.*$", re.MULTILINE)
        fresh, old_row = row.search(new, new.find(_PER_TARGET) + 1), row.search(out, out.find(_PER_TARGET) + 1)
        if fresh and old_row:
            out = out[:old_row.start()] + fresh.group(0) + out[old_row.end():]
        stale, found = _section(out, name), _section(new, name)
        section = found.group(0).rstrip("\n") + "\n\n" if found else ""
        if stale:
            out = out[:stale.start()] + section + out[stale.end():]
        elif section:  # in name order among the others, before the second part
            later = [m for m in re.finditer(r"^### (\S+)\n", out, re.MULTILINE) if m.group(1) > name]
            end = out.find(_PART2)
            at = later[0].start() if later and (end < 0 or later[0].start() < end) else (end if end >= 0 else len(out))
            out = out[:at] + section + out[at:]
    if runme_part and _PART2 in new:
        cut = out.find(_PART2)
        out = (out if cut < 0 else out[:cut]).rstrip("\n") + "\n" + new[new.find(_PART2):]
    start, end = out.find(_TOTALS), out.find(_PER_TARGET)
    if names and 0 <= start < end:
        table = out[end:out.find("\n## ", end + 1)]
        rows = [ln for ln in table.splitlines() if ln.startswith("| ") and not ln.startswith("| target |")]
        out = out[:start + 1] + summary(rows) + out[end:]
    return out


_TOTALS = "\n## Totals\n"
_ROW_CELL = re.compile(r"(?<!\\)\|")


def summary(rows: list[str]) -> str:
    """The report's Totals and blockers sections, counted from its per-target rows (``render``'s,
    or a merged report's: the same numbers either way)."""
    counts = {"both": 0, "oracle only": 0, "rustle only": 0, "neither": 0, "not run": 0}
    tasks = {"ansible": 0, "rustle": 0}
    same = {"compared": 0, "identical": 0, "different": 0, "refused": 0, "all identical": 0}
    blockers: dict[str, list[str]] = {}
    for row in rows:
        name, verdict, ansible, rustle, compared, note = (c.strip() for c in _ROW_CELL.split(row)[1:7])
        counts[verdict] += 1
        if verdict == "not run":
            continue
        tasks["ansible"] += int(ansible.split("/")[0])
        tasks["rustle"] += int(rustle.split()[1].split("/")[0])
        if compared == "refused":
            same["refused"] += 1
        else:
            c, i, d = (int(n) for n in compared.split("/"))
            same["compared"] += c
            same["identical"] += i
            same["different"] += d
            same["all identical"] += bool(c) and not d
        if verdict == "oracle only":
            blockers.setdefault(_blocker_kind(note.replace("\\|", "|")), []).append(name)
    ran = len(rows) - counts["not run"]
    lines = [
        "## Totals",
        "",
        f"- role-shaped targets: {len(rows)}; run: {ran}; not run here: {counts['not run']}",
        f"- pass under both: {counts['both']}; under ansible-playbook only: {counts['oracle only']}; "
        f"under rustle-deploy only: {counts['rustle only']}; under neither: {counts['neither']}",
        f"- task results: ansible-playbook {tasks['ansible']}, rustle-deploy {tasks['rustle']}",
        f"- compared task by task: {same['compared']}; identical: {same['identical']}; different: "
        f"{same['different']}; targets refused at compile time: {same['refused']}; targets whose "
        f"compared results are all identical: {same['all identical']}",
        "",
        "## What blocks the targets that pass under ansible-playbook only",
        "",
        "| blocker | targets | which |",
        "|---|---|---|",
    ]
    for kind, names in sorted(blockers.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        lines.append(f"| {_cell(kind)} | {len(names)} | {', '.join(names)} |")
    return "\n".join(lines) + "\n"


def _load(doc: dict[str, Any]) -> Run:
    return Run(**doc)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(root: Path, data: dict[str, dict[str, Any]]) -> str:
    """The markdown report over every role-shaped target."""
    rows: list[str] = []
    details: list[str] = []
    for name in role_targets(root):
        why = not_run(root, name)
        if why or name not in data["rustle"] or name not in data["ansible"]:
            rows.append(f"| {name} | not run | | | | {_cell(why or 'not run yet')} |")
            continue
        a, r = _load(data["ansible"][name]), _load(data["rustle"][name])
        sa, sr = a.summary(), r.summary()
        verdict = {(True, True): "both", (True, False): "oracle only", (False, True): "rustle only",
                   (False, False): "neither"}[(a.passed, r.passed)]
        state = "refused" if r.refused else ("pass" if r.passed else "fail")
        cmp = compare(a, r)
        note, here = ("" if r.passed else blocker(r)), ""
        if not a.passed:
            here = f" here ({ORACLE_FAILS_HERE[name]})" if name in ORACLE_FAILS_HERE else ""
            note = f"oracle fails{here}: " + blocker(a)
        rows.append(f"| {name} | {verdict} | {sa['tasks']}/{sa['passed']}/{sa['failed']} "
                    f"| {state} {sr['tasks']}/{sr['passed']}/{sr['failed']} "
                    f"| {'refused' if cmp.refused else f'{cmp.compared}/{cmp.identical}/{cmp.different}'} "
                    f"| {_cell(note)[:240 + len(here)]} |")
        if r.failures or r.refused or cmp.different or cmp.unreached or a.earlier or r.earlier:
            details.append(f"### {name}\n")
            for tool, run in (("ansible-playbook", a), ("rustle-deploy", r)):
                if run.earlier:
                    details.append(f"{tool} was run {len(run.earlier) + 1} times ({TIMING_SENSITIVE.get(name, '')}); "
                                   "the earlier runs failed: " + "; ".join(_cell(e) for e in run.earlier) + "\n")
            if cmp.different:
                details.append(f"{cmp.different} of {cmp.compared} task results differ; the first:\n")
                details += [f"- {_cell(d)[:400]}" for d in cmp.differences[:5]]
                details.append("")
            for tool, n in sorted(cmp.unreached.items()):
                details.append(f"{tool} ran {n} more task results after the other tool stopped.\n")
            if r.refused:
                details.append("Refused at compile time:\n\n```\n" + r.refused + "\n```\n")
            for f in r.failures:
                details.append(f"- `{_cell(f['task'])}`: {_cell(f.get('assertion') or '')} "
                               f"{_cell(_NOISE.sub('WORK', f.get('msg') or ''))[:300]}")
            details.append("")
    head = [
        "# Acceptance: ansible-core's own integration targets",
        "",
        f"Generated by `make acceptance` (tests/acceptance/harness.py) from the role-shaped targets "
        f"of the ansible-core {ANSIBLE_VERSION} sdist, each run as `site.yml` with the target as its "
        "only role on a local connection (`testhost`), under `ansible-playbook` (the oracle) and under "
        "`rustle-deploy --run`, each in a fresh temporary directory with a private HOME (holding "
        "`~/.ssh/authorized_keys`) and accounts of its own (a target's test user, group and sudoers "
        "file get per-run names, removed after the run); every process of a run ends with it. "
        "copy and lineinfile get longer timeouts (`RUN_TIMEOUTS`); wait_for, async and async_fail, whose "
        "own checks time a background job, are run again while they fail (under both tools, at most 3 "
        "runs: the report says why each earlier run failed). Do not edit by hand.",
        "",
        "A target passes when the tool exits 0 (ansible-core's targets assert their own results, so "
        "a wrong behaviour fails an assertion). Columns: tasks/passed/failed, where tasks counts "
        "task and handler results and failed counts failures that were not ignored (a failure a "
        "`rescue` handled is counted: the ansible-playbook callback cannot tell it apart).",
        "",
        "Each target's task results are also compared one by one (column compared/identical/"
        "different): the two runs are aligned by task name and host, in order, and a pair is "
        "identical when both say the same of it (ok, changed, skipped or failed, ignored or not, "
        "and for a failure the message, with the work directory and temporary names masked). A "
        "task only one tool ran counts as different, unless the other tool had stopped before it "
        "(it ran nothing more, or a failure that was not ignored had stopped its host, which then "
        "ran only its `always:` sections; a target that stops under both is compared up to where "
        "each stops). `Gathering Facts` "
        "is not compared: rustle-deploy gathers facts without a task result; nor is a meta task's "
        "result unless it is skipped: ansible-playbook's strategy runs meta tasks itself and "
        "reports none.",
        "",
        summary(rows).rstrip("\n"),
        "",
        "## Per target",
        "",
        "| target | passes under | ansible-playbook | rustle-deploy | compared/identical/different | blocker |",
        "|---|---|---|---|---|---|",
    ]
    from . import runme

    part2 = runme.render(root, data) if data.get("runme") else ""
    return "\n".join(head + rows + ["", "## Failures and differences under rustle-deploy", ""] + details) + "\n" \
        + ("\n" + part2 if part2 else "")


def _blocker_kind(note: str) -> str:
    for pattern, kind in _BLOCKERS:
        match = re.search(pattern, note)
        if match:
            return kind.format(*(g for g in match.groups() if g is not None))
    if note.startswith("fails: "):
        return "a task behaves otherwise (module or runtime fidelity): see the failures below"
    return re.sub(r"'[^']*'", "'…'", note)[:120]
