"""Differential tests of lineinfile, blockinfile and replace against ansible-core."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .test_modules_support import (
    Case,
    Differential,
    FakeCtx,
    assert_same,
    assert_same_diff,
    needs_ansible,
    runtime_module,
)

lines = runtime_module("lines")

pytestmark = pytest.mark.ansible

CONF = "# comment\nPort 22\nPermitRootLogin yes\n#ListenAddress 0.0.0.0\nUsePAM yes\n"


def _conf(text: str = CONF, rel: str = "f.conf", mode: int | None = None):
    def setup(d: Path) -> None:
        (d / rel).write_text(text)
        if mode is not None:
            os.chmod(d / rel, mode)
    return setup


F = "{d}/f.conf"
LINEINFILE_CASES = [
    Case("append at EOF", {"path": F, "line": "MaxAuthTries 3"}, setup=_conf()),
    Case("regexp replaces", {"path": F, "regexp": "^PermitRootLogin", "line": "PermitRootLogin no"},
         setup=_conf()),
    Case("insertafter regex", {"path": F, "line": "Port 2222", "insertafter": "^Port"},
         setup=_conf()),
    Case("insertbefore BOF", {"path": F, "line": "# managed", "insertbefore": "BOF"},
         setup=_conf()),
    Case("absent regexp", {"path": F, "regexp": "^Use", "state": "absent", "backup": True},
         setup=_conf()),
    Case("backrefs no match", {"path": F, "regexp": "^Nope(.*)", "line": "x\\1", "backrefs": True},
         setup=_conf(), check=False),
    Case("backrefs match", {"path": F, "regexp": "^Port (\\d+)", "line": "Port \\g<1>0",
                            "backrefs": True}, setup=_conf()),
    Case("create new file", {"path": "{d}/sub/new.conf", "line": "a=1", "create": True,
                             "mode": "0600"}),
    Case("missing without create", {"path": "{d}/none.conf", "line": "a=1"}, check=False),
    Case("search_string", {"path": F, "search_string": "ListenAddress",
                           "line": "ListenAddress 127.0.0.1"}, setup=_conf()),
    Case("firstmatch insertafter", {"path": F, "line": "after-first", "insertafter": "yes$",
                                    "firstmatch": True}, setup=_conf()),
    Case("no trailing newline", {"path": F, "line": "last"}, setup=_conf("one\ntwo")),
    Case("insertbefore regex", {"path": F, "line": "before-use", "insertbefore": "^UsePAM"},
         setup=_conf()),
    Case("line already present", {"path": F, "line": "Port 22"}, setup=_conf(), check=False),
    Case("mode only", {"path": F, "line": "Port 22", "mode": "0600"}, setup=_conf(mode=0o644)),
    Case("absent line exact", {"path": F, "line": "Port 22", "state": "absent"}, setup=_conf()),
    Case("state absent missing file", {"path": "{d}/none", "line": "x", "state": "absent"},
         check=False),
]

B = "{d}/b.conf"
BLOCK_OLD = "top\n# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\nbottom\n"
BLOCKINFILE_CASES = [
    Case("insert at EOF", {"path": B, "block": "a=1\nb=2"}, setup=_conf(CONF, "b.conf")),
    Case("update existing block", {"path": B, "block": "new"}, setup=_conf(BLOCK_OLD, "b.conf")),
    Case("insertbefore BOF custom marker", {"path": B, "block": "x", "insertbefore": "BOF",
                                            "marker": "// {mark} app"},
         setup=_conf(CONF, "b.conf")),
    Case("remove block", {"path": B, "state": "absent", "backup": True},
         setup=_conf(BLOCK_OLD, "b.conf")),
    Case("create file", {"path": "{d}/n/b.conf", "block": "z", "create": True}),
    Case("insertafter regex", {"path": B, "block": "after port", "insertafter": "^Port"},
         setup=_conf(CONF, "b.conf")),
    Case("marker begin end", {"path": B, "block": "k", "marker_begin": "START",
                              "marker_end": "STOP"}, setup=_conf(CONF, "b.conf")),
    Case("empty block removes", {"path": B, "block": ""}, setup=_conf(BLOCK_OLD, "b.conf")),
    Case("missing without create", {"path": "{d}/none", "block": "x"}, check=False),
    Case("prepend and append newline", {"path": B, "block": "mid", "insertafter": "^Port",
                                        "prepend_newline": True, "append_newline": True},
         setup=_conf(CONF, "b.conf")),
]

R = "{d}/r.conf"
REPLACE_CASES = [
    Case("simple", {"path": R, "regexp": "yes$", "replace": "no"}, setup=_conf(CONF, "r.conf")),
    Case("backrefs", {"path": R, "regexp": "^Port (\\d+)", "replace": "Port \\1\\1"},
         setup=_conf(CONF, "r.conf")),
    Case("after before", {"path": R, "regexp": "yes", "replace": "maybe", "after": "Port",
                          "before": "ListenAddress"}, setup=_conf(CONF, "r.conf")),
    Case("no match", {"path": R, "regexp": "^Nothing", "replace": "x"},
         setup=_conf(CONF, "r.conf"), check=False),
    Case("missing file", {"path": "{d}/none", "regexp": "a", "replace": "b"}, check=False),
    Case("mode only", {"path": R, "regexp": "^Nothing", "replace": "x", "mode": "0600"},
         setup=_conf(CONF, "r.conf", 0o644)),
    Case("backup", {"path": R, "regexp": "^#", "replace": ";", "backup": True},
         setup=_conf(CONF, "r.conf")),
    Case("after unmatched", {"path": R, "regexp": "yes", "replace": "no", "after": "NOPE"},
         setup=_conf(CONF, "r.conf"), check=False),
]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    needs_ansible()
    for module, cases in (("lineinfile", LINEINFILE_CASES), ("blockinfile", BLOCKINFILE_CASES),
                          ("replace", REPLACE_CASES)):
        for case in cases:
            case.module = module
            if not case.name.startswith(module):
                case.name = f"{module}: {case.name}"
    cases = LINEINFILE_CASES + BLOCKINFILE_CASES + REPLACE_CASES
    return Differential(tmp_path_factory.mktemp("lines"), "lineinfile", lines.MODULES).run(cases)


def _names(cases, module):
    return [c.name if c.name.startswith(module) else f"{module}: {c.name}" for c in cases]


@pytest.mark.parametrize("name", _names(LINEINFILE_CASES, "lineinfile"))
def test_lineinfile_matches_ansible(outcomes, name):
    assert_same(outcomes[name], compare_msg=True)
    assert_same_diff(outcomes[name])


@pytest.mark.parametrize("name", _names(BLOCKINFILE_CASES, "blockinfile"))
def test_blockinfile_matches_ansible(outcomes, name):
    assert_same(outcomes[name], compare_msg=True)
    assert_same_diff(outcomes[name])


@pytest.mark.parametrize("name", _names(REPLACE_CASES, "replace"))
def test_replace_matches_ansible(outcomes, name):
    assert_same(outcomes[name], compare_msg=True)
    assert_same_diff(outcomes[name])


def test_lineinfile_diff_mode_shows_before_and_after(tmp_path):
    f = tmp_path / "f"
    f.write_text("a\n")
    res = lines.lineinfile(FakeCtx(diff_mode=True), {"path": str(f), "line": "b"})
    assert res["diff"][0]["before"] == "a\n" and res["diff"][0]["after"] == "a\nb\n"


def test_lineinfile_validate_failure_keeps_file(tmp_path):
    f = tmp_path / "f"
    f.write_text("a\n")
    res = lines.lineinfile(FakeCtx(), {"path": str(f), "line": "b", "validate": "false %s"})
    assert res["failed"] and "failed to validate" in res["msg"]
    assert f.read_text() == "a\n" and os.listdir(tmp_path) == ["f"]


def test_edits_follow_symlinks(tmp_path):
    real = tmp_path / "real"
    real.write_text("x=1\n")
    os.symlink("real", tmp_path / "ln")
    res = lines.replace(FakeCtx(), {"path": str(tmp_path / "ln"), "regexp": "1", "replace": "2"})
    assert res["changed"] and real.read_text() == "x=2\n" and (tmp_path / "ln").is_symlink()
