"""What users read: diffs, recaps, progress lines."""

from __future__ import annotations

import io

from rustle_deploy.report import HostSummary, Reporter, render_diff


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
    assert "-1\n+2" in shown.getvalue()
    hidden = io.StringIO()
    Reporter(stream=hidden, color=False, diff=True).event("h", {**event, "censored": "hidden"})
    assert "+2" not in hidden.getvalue()


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
