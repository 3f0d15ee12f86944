"""Which values of ``rustle_remote_dir`` a host may have, checked before any host is touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustle_deploy.errors import InventoryError
from rustle_deploy.inventory import check_remote_dirs
from rustle_deploy.model import Host, remote_dir_problem


@pytest.mark.parametrize(
    "value",
    ["~/.rustle", "/var/lib/rustle", "~deploy/.rustle", "/opt/rustle/", "~/a b/c", "/srv/./rustle", "~/.x"],
)
def test_usable_remote_dirs(value: str) -> None:
    assert remote_dir_problem(value) is None


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("relative/dir", "relative"),
        (".rustle", "relative"),
        ("/", "filesystem root"),
        ("//", "filesystem root"),
        ("/./", "filesystem root"),
        ("~", "home directory"),
        ("~/", "home directory"),
        ("~/.", "home directory"),
        ("~deploy", "home directory"),
        ("/srv/../etc", "'..'"),
        ("~/..", "'..'"),
        ("~/x/../..", "'..'"),
        ("/srv/a\nb", "control character"),
        ("/srv/a\x00b", "control character"),
        ("/srv/a\tb", "control character"),
        ("/srv/a\x7fb", "control character"),
    ],
)
def test_unusable_remote_dirs(value: str, why: str) -> None:
    problem = remote_dir_problem(value)
    assert problem is not None and why in problem


def test_a_remote_dir_set_to_nothing_is_empty_not_the_word_none() -> None:
    assert Host("h", {"rustle_remote_dir": None}).remote_dir == ""
    assert Host("h", {}).remote_dir == "~/.rustle"


def test_every_bad_host_is_named_with_the_variable_the_value_and_a_hint() -> None:
    hosts = [Host("ok", {}), Host("web1", {"rustle_remote_dir": ""}), Host("web2", {"rustle_remote_dir": "/"})]
    with pytest.raises(InventoryError) as info:
        check_remote_dirs(hosts, "inv.yml")
    text = str(info.value)
    assert text.startswith("inv.yml: ")
    assert "web1: rustle_remote_dir '' " in text and "web2: rustle_remote_dir '/' " in text
    assert "ok:" not in text
    assert info.value.hint and "~/.rustle" in info.value.hint
    check_remote_dirs(hosts[:1], "inv.yml")  # fine: no error


def test_the_agents_and_the_controller_agree_on_the_marker() -> None:
    from rustle_deploy.deploy import agent
    from rustle_deploy.model import CREATED_MARKER

    assert agent.CREATED_MARKER == CREATED_MARKER
    native = (Path(agent.__file__).parents[1] / "native" / "src" / "agent.rs").read_text()
    assert f'const CREATED_MARKER: &str = "{CREATED_MARKER}";' in native


@pytest.mark.parametrize(
    ("value", "why"),
    [("", "empty"), ("rel", "relative"), ("/", "filesystem root"), ("~", "home directory"), ("/a/../b", "'..'"),
     ("/a\nb", "control character"), ("~no-such-user-here/x", "does not know")],
)
def test_the_agent_applies_the_same_rule(value: str, why: str) -> None:
    from rustle_deploy.deploy import agent

    with pytest.raises(agent.AgentError) as info:
        agent.check_remote_dir(value)
    assert info.value.kind == "remote_dir" and why in info.value.message
    for good in ("~/.rustle", "/var/lib/rustle", "/srv/./r"):
        agent.check_remote_dir(good)
