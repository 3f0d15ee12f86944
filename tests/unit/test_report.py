"""What users read: diffs, recaps, progress lines."""

from __future__ import annotations

import io
import json
import re

import pytest

from rustle_deploy.report import HostSummary, Reporter, ShownNames, dump_json, render_diff, visible


def test_render_diff_of_text_and_state() -> None:
    out = render_diff([
        {"before": "a\nb\n", "after": "a\nc\n", "before_header": "/etc/x", "after_header": "x.j2"},
        {"before": {"state": "absent"}, "after": {"state": "directory"}},
        {"before": "same", "after": "same"},
    ])
    assert "--- /etc/x\n+++ x.j2\n" in out
    assert "-b\n+c" in out
    assert '-    "state": "absent"' in out and '+    "state": "directory"' in out
    assert "same" not in out


def test_changed_task_shows_its_diff_only_with_diff_and_never_when_censored() -> None:
    event = {"event": "task_result", "task": "t", "status": "changed", "diff": {"before": "1\n", "after": "2\n"}}
    plain = io.StringIO()
    Reporter(stream=plain, color=False).event("h", event)
    assert "+2" not in plain.getvalue() and "h | changed | t" in plain.getvalue()
    shown = io.StringIO()
    Reporter(stream=shown, color=False, diff=True).event("h", event)
    assert "  -1\n  +2" in shown.getvalue()
    hidden = io.StringIO()
    Reporter(stream=hidden, color=False, diff=True).event("h", {**event, "censored": "hidden"})
    assert "+2" not in hidden.getvalue()


def test_an_untrusted_template_failure_says_ansibles_words_and_its_help_only_at_v() -> None:
    event = {"event": "task_result", "task": "t", "status": "failed",
             "msg": "Task failed: Encountered untrusted template or expression."}
    quiet, verbose = io.StringIO(), io.StringIO()
    Reporter(stream=quiet, color=False).event("h", event)
    Reporter(stream=verbose, color=False, verbosity=1).event("h", event)
    assert quiet.getvalue() == "h | failed | t | Task failed: Encountered untrusted template or expression.\n"
    assert verbose.getvalue() == quiet.getvalue() + (
        "  hint: Templates and expressions must be defined by trusted sources such as playbooks or roles, "
        "not untrusted sources such as module results.\n")


def test_recap_names_failed_hosts_and_why() -> None:
    out = io.StringIO()
    Reporter(stream=out, color=False).recap([
        HostSummary("web1", ok=3, changed=1),
        HostSummary("web2", unreachable=True, error="web2: connection refused"),
        HostSummary("web3", ok=1, failed=1, failed_tasks=["Install nginx"]),
    ])
    text = out.getvalue()
    assert "web1" in text and "unreachable=1" in text
    assert "2 of 3 host(s) failed" in text
    assert "web2: web2: connection refused" in text and "web3: task failed: Install nginx" in text


# -- host data never reaches the terminal raw (issue 11) ------------------------------------

ESC = "\x1b[2J\x1b]0;owned\x07"  # clear the screen, set the window title, ring the bell
FORGED = "web9 | ok | forged"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _hostile_run(reporter: Reporter) -> None:
    reporter.event("web1", {
        "event": "task_result", "task": f"install\n{FORGED}", "status": "changed", "module": "shell",
        "stdout": f"one{ESC}\r\n{FORGED}\ntwo\rthree", "stderr": "\x9b2J\u202eevil",
        "diff": {"before": f"a{ESC}\n", "after": "b\n", "before_header": f"/etc/x\n{FORGED}"},
    })
    reporter.event("web1", {"event": "task_result", "task": "say", "status": "ok", "module": "debug",
                            "msg": f"hello{ESC}"})
    reporter.event("web1", {"event": "task_result", "task": "fail", "status": "failed", "msg": f"boom{ESC}\r"})
    reporter.event("web1", {"event": "handler_result", "task": "h\x08\x08\x08\x08", "status": "changed"})
    reporter.host_done("web\x1b[1m2", f"FAILED: {ESC}", failed=True)
    reporter.recap([
        HostSummary("web\x1b[1m2", error=f"web2: {ESC}"),
        HostSummary("web1", failed=1, failed_tasks=[f"install\n{FORGED}"]),
    ])


@pytest.mark.parametrize("stream", [io.StringIO, _Tty], ids=["plain", "terminal"])
def test_host_data_reaches_the_terminal_only_as_visible_escapes(stream: type[io.StringIO]) -> None:
    out = stream()
    _hostile_run(Reporter(stream=out, verbosity=2, diff=True))
    text = out.getvalue()
    # rich colours a terminal with SGR sequences (ESC [ ... m); nothing else may be raw
    bare = re.sub(r"\x1b\[[0-9;]*m", "", text)
    assert not [c for c in bare if (ord(c) < 32 and c != "\n") or 0x7f <= ord(c) <= 0x9f or c == "\u202e"], repr(bare)
    assert "\\x1b[2J\\x1b]0;owned\\x07" in bare
    assert "\\x9b2J\\u202eevil" in bare and "h\\x08\\x08\\x08\\x08" in bare
    for line in bare.splitlines():
        assert not line.startswith(FORGED), f"a forged line: {line!r}"
    assert f"install\\n{FORGED}" in bare  # the task name, on its own line
    assert "  stdout: one\\x1b[2J\\x1b]0;owned\\x07" in bare
    assert f"    {FORGED}" in bare and "    two\\rthree" in bare  # continuation lines indented
    assert "fail | boom\\x1b[2J\\x1b]0;owned\\x07\n" in bare


def test_visible_leaves_ordinary_text_alone() -> None:
    text = "déjà vu — 日本語 ✓\ttab"
    assert visible(text) == text
    assert visible("a\nb\r\x00\x7f\ud800") == "a\\nb\\r\\x00\\x7f\\ud800"


def test_json_documents_keep_the_exact_data() -> None:
    doc = {"hosts": [{"name": "web1", "error": f"x{ESC}\n{FORGED}", "task": "\ud7ff\u202e"}]}
    out = io.StringIO()
    dump_json(doc, out)
    assert json.loads(out.getvalue()) == doc


def test_a_tasks_name_is_its_first_hosts_even_when_a_later_host_reports_first() -> None:
    """Hosts run at once: b's result arrives before a's. Its line shows b's own name, and once
    the run is done (settle) every result carries a's, the first host's, as ansible-playbook's
    banner; a task run again (an include's loop) is named again, a handler keeps its first name,
    an included file's task is named again in each batch."""
    names = ShownNames(["a", "b", "c"], included={"p/inc": {"a": 0, "b": 0, "c": 1}})

    def event(host: str, ident: str, name: str, kind: str = "task_result") -> dict[str, object]:
        ev: dict[str, object] = {"event": kind, "id": ident, "task": name}
        names.see(host, ev)
        return ev

    b1 = event("b", "p/t", "reg B")
    assert b1["task"] == "reg B"  # a has not reported yet
    a1, c1 = event("a", "p/t", "reg A"), event("c", "p/t", "reg C")
    a2, b2 = event("a", "p/t", "again A"), event("b", "p/t", "again B")
    h = [event(host, "p/h", f"handler {n}", "handler_result") for host, n in (("a", 1), ("b", 2), ("a", 3))]
    inc = [event(host, "p/inc", f"in {host}") for host in ("a", "b", "c")]
    assert (a1["task"], c1["task"], b2["task"]) == ("reg A", "reg A", "again A")
    assert names.settle() == {"b"}
    assert [e["task"] for e in (b1, a1, c1, a2, b2, *h, *inc)] == [
        "reg A", "reg A", "reg A", "again A", "again A", "handler 1", "handler 1", "handler 1", "in a", "in a", "in c"]
    assert names.settle() == set()
    untouched = {"event": "task_retry", "id": "p/t", "task": "{{ raw }}"}
    names.see("b", untouched)
    assert untouched["task"] == "{{ raw }}"
