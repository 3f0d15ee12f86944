"""The runtime's become command line (runtime/become.py ``command``) against the one ansible-core's
own sudo and su become plugins build, for become_exe/become_flags values of every shape: the
program, its flags (sudo's default ``-H -S -n``; ``-n`` left out when a password is given) and the
user. What follows differs by design: Ansible runs ``/bin/sh -c 'echo BECOME-SUCCESS...'``, the
runtime its child interpreter (and, with a password, ``-k -p ''`` so sudo's prompt is empty)."""

from __future__ import annotations

import shlex

import pytest

from rustle_deploy.runtime.rustle_runtime import become

ansible_loader = pytest.importorskip("ansible.plugins.loader")

CMD = ["/usr/bin/python3", "-I", "-S", "-c", "pass"]
CASES = [(None, None), ("/opt/bin/sudo", None), (None, ""), (None, "-H -S -n"), (None, "-n -E"),
         ("/x/my sudo wrapper", "-Hn -E"), (None, "--non-interactive -H -S"), (None, "-S -u-like 'a b'"),
         ("doas-ish --flag", "-n")]


def theirs(method: str, exe: str | None, flags: str | None, user: str, password: str | None = None) -> list[str]:
    plugin = ansible_loader.become_loader.get(method)
    direct = {"become_user": user}
    if exe is not None:
        direct["become_exe"] = exe
    if flags is not None:
        direct["become_flags"] = flags
    if password is not None:
        direct["become_pass"] = password
    plugin.set_options(direct=direct)
    return shlex.split(plugin.build_become_command("true", ansible_loader.shell_loader.get("sh")))


@pytest.mark.parametrize(("exe", "flags"), CASES)
def test_sudo_command_is_ansibles(exe: str | None, flags: str | None) -> None:
    want = theirs("sudo", exe, flags, "bob")  # its words split as the shell splits Ansible's command
    ours = become.command("sudo", "bob", exe, flags, CMD)
    assert ours[:ours.index("--")] == want[:-1]
    assert ours[ours.index("--") + 1:] == CMD


@pytest.mark.parametrize(("exe", "flags"), CASES)
def test_sudo_with_a_password_drops_n_as_ansible_does(exe: str | None, flags: str | None) -> None:
    want = theirs("sudo", exe, flags, "bob", password="secret")
    prompt = want.index("-p")
    ours = become.command("sudo", "bob", exe, flags, CMD, password=True)
    k = ours.index("-k")
    mine = ours[:k]
    if "-S" not in want[:prompt] and "--stdin" not in want[:prompt]:
        assert mine[-1] == "-S"  # the password travels on the child's stdin
        mine = mine[:-1]
    assert mine == want[:prompt]
    assert ours[k:ours.index("--")] == ["-k", "-p", "", "-u", "bob"]
    assert want[prompt + 2:-1] == ["-u", "bob"]


@pytest.mark.parametrize(("exe", "flags"), [("/opt/su", "-s /bin/sh"), (None, "-l"), (None, ""), ("su", "-m -s /bin/bash")])
def test_su_command_with_flags_is_ansibles(exe: str | None, flags: str) -> None:
    want = theirs("su", exe, flags, "bob")
    ours = become.command("su", "bob", exe, flags, CMD)
    assert ours[:ours.index("-c")] == want[:want.index("-c")]
    assert shlex.split(ours[-1]) == ["exec", *CMD]


def test_su_without_flags_gives_a_shell_to_users_without_one() -> None:
    """Ansible's su has no default flags; the runtime's default ``-s /bin/sh`` lets a user whose
    shell is nologin (``nobody``) run its child, as before become_flags existed."""
    assert theirs("su", None, None, "bob")[:2] == ["su", "bob"]
    assert become.command("su", "bob", None, None, CMD)[:4] == ["su", "-s", "/bin/sh", "bob"]
