"""No built-in module accepts an option and ignores it: every name in a module's argument set
(``*_ARGS``) is read by the runtime's code, or refused when given a value other than Ansible's
default (``_common.refuse``, named there), or listed below with why it has no effect. A static
audit of the runtime's source (a new option in an argument set must be applied or refused), and
the refusal itself on a real module call."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .test_modules_support import FakeCtx, runtime_module

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime" / "rustle_runtime"
MODULES = RUNTIME / "modules"
# where the code that reads a module's options lives besides the module files
READERS = (MODULES / "_common.py", RUNTIME / "templating.py")

# option -> why accepting it without code that reads it is what Ansible does
NO_EFFECT = {
    ("unarchive", "io_buffer_size"): "a read buffer size: no observable effect",
    ("unarchive", "decrypt"): "the controller's: a vault file is embedded decrypted unless it is false "
                            "(compiler/sources.py; integration/test_vault_files_local.py)",
    ("copy", "decrypt"): "the controller's: a vault file is embedded decrypted unless it is false "
                            "(compiler/sources.py; integration/test_vault_files_local.py)",
    ("copy", "local_follow"): "the controller's: how a src directory is walked (compiler/sources.walk_tree; "
                              "integration/test_copy_made_dir_local.py)",
    ("script", "decrypt"): "the controller's: a vault file is embedded decrypted unless it is false "
                            "(compiler/sources.py; integration/test_vault_files_local.py)",
    ("user", "ssh_key_bits"): "only with generate_ssh_key, which is refused",
    ("user", "ssh_key_comment"): "only with generate_ssh_key, which is refused",
    ("user", "ssh_key_file"): "only with generate_ssh_key, which is refused",
    ("user", "ssh_key_type"): "only with generate_ssh_key, which is refused",
    ("user", "ssh_key_passphrase"): "only with generate_ssh_key, which is refused",
    ("apt", "force_apt_get"): "this apt always runs apt-get (ansible-core's runs aptitude only for upgrade, refused)",
    ("file", "_diff_peek"): "an internal option of ansible-core's action plugins",
}


def _argument_sets() -> dict[tuple[str, str], list[str]]:
    """(file, set name) -> the option names of every ``*_ARGS`` set of the modules."""
    out = {}
    for path in sorted(MODULES.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id.endswith("_ARGS") and isinstance(node.value, (ast.Set, ast.Tuple))):
                out[(path.name, node.targets[0].id)] = [str(e.value) for e in node.value.elts if isinstance(e, ast.Constant)]
    return out


def _literals_outside_argument_sets(path: Path) -> set[str]:
    """Every string literal of a module file and of READERS, the argument sets left out."""
    found: set[str] = set()
    for p in (path, *READERS):
        tree = ast.parse(p.read_text())
        skip = {id(e) for node in tree.body if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.endswith("_ARGS") for e in ast.walk(node.value)}
        found.update(n.value for n in ast.walk(tree)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip)
    return found


def _module_name(set_name: str) -> str:
    return {"RPM_ARGS": "dnf", "_COMMAND_ARGS": "command", "_SCRIPT_ARGS": "script",
            "WAIT_ARGS": "wait_for"}.get(set_name, set_name.removesuffix("_ARGS").lower())


def test_every_accepted_option_is_read_refused_or_without_effect() -> None:
    ignored = []
    for (file, s), names in _argument_sets().items():
        read = _literals_outside_argument_sets(MODULES / file)
        ignored += [f"{_module_name(s)}: {name}" for name in names
                    if name not in read and (_module_name(s), name) not in NO_EFFECT]
    assert not ignored, ("options accepted and ignored (apply them, or refuse them with _common.refuse "
                         f"naming Ansible's default): {ignored}")


@pytest.mark.parametrize(("module", "family", "args", "option"), [
    ("apt", "packages", {"name": "bash", "policy_rc_d": 101}, "policy_rc_d"),
    ("dnf", "packages", {"name": "bash", "security": True}, "security"),
    ("git", "git", {"repo": "/nonexistent", "dest": "/nonexistent", "track_submodules": True}, "track_submodules"),
    ("user", "users", {"name": "rustle-never-created", "login_class": "staff"}, "login_class"),
    ("group", "users", {"name": "rustle-never-created", "gid_min": 5000}, "gid_min"),
    ("unarchive", "archive", {"src": "/nonexistent.tgz", "dest": "/nonexistent", "extra_opts": ["-v"]}, "extra_opts"),
])
def test_a_refused_option_fails_naming_it(module: str, family: str, args: dict, option: str) -> None:
    res = runtime_module(family).MODULES[module](FakeCtx(check_mode=True), args)
    assert res["failed"], res
    assert res["msg"].startswith(f"{module}: option '{option}' is not supported by this runtime"), res["msg"]
    assert "hint: " in res["msg"]


def test_an_option_at_ansibles_default_is_not_refused() -> None:
    res = runtime_module("packages").MODULES["apt"](FakeCtx(check_mode=True), {"name": "bash", "policy_rc_d": None})
    assert not res.get("failed"), res
    res = runtime_module("users").MODULES["group"](FakeCtx(check_mode=True), {"name": "root", "gid_min": None})
    assert not res.get("failed"), res
