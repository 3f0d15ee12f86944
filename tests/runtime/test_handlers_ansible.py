"""Handlers against ansible-core: which handlers run, how often, in which order.

Ansible's rule (its play iterator): a flush walks the play's handlers once, in order, running
each notified one; a handler notified during the walk runs in it only when it comes later in
the list, otherwise at the next flush. A play flushes after its tasks and again after its
(here empty) post_tasks, and forgets what is still notified when it ends. So handlers that
notify each other run a bounded number of times (ansible-core's
``test_handlers_infinite_loop.yml``: each handler twice).
"""

from __future__ import annotations

import pytest

from .oracle import compare_plays

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]


def _order(play):
    return [name for name, _ in play]


def test_handlers_that_notify_each_other_stop_as_in_ansible(tmp_path):
    plays = [{
        "name": "loop",
        "tasks": [{"name": "start", "command": "echo", "notify": ["handler1", "self_notify"]}],
        "handlers": [
            {"name": "handler1", "debug": {"msg": "handler1 ran"}, "changed_when": True,
             "notify": "handler2"},
            {"name": "handler2", "debug": {"msg": "handler2 ran"}, "changed_when": True,
             "notify": "handler1"},
            {"name": "self_notify", "debug": {"msg": "self_notify ran"}, "changed_when": True,
             "notify": "self_notify"},
        ],
    }, {
        "name": "flushes",
        "tasks": [
            {"name": "t1", "command": "true", "notify": "second"},
            {"name": "flush", "meta": "flush_handlers"},
            {"name": "t2", "command": "true", "notify": ["second", "first"]},
        ],
        "handlers": [
            {"name": "first", "debug": {"msg": "first"}, "changed_when": True, "notify": "second"},
            {"name": "second", "debug": {"msg": "second"}, "changed_when": True, "notify": "first"},
        ],
    }]
    theirs, ours = compare_plays(tmp_path, plays)
    assert [_order(p) for p in ours] == [_order(p) for p in theirs]
    assert _order(theirs[0]).count("handler1") == 2
