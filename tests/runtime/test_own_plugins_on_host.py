"""The playbook's own filter and test plugins embedded in an artifact run on the host (under
Python 3.8, the runtime's floor, too), over host data, with ansible-core's module names; a file
that fails to load fails the tasks that call it, naming the file."""

from __future__ import annotations

import pytest

from .conftest import build_test_artifact, make_plan, run_artifact, task
from .test_interpreters import _interpreter

FILTERS = '''\
from __future__ import annotations

import re

from jinja2.filters import do_upper


def first_word(value, sep=" "):
    return do_upper(re.split(sep, value)[0])


def whoami(value):
    return __name__


def boom(value):
    raise ValueError("boom on " + value)


class FilterModule:
    def filters(self):
        return {"first_word": first_word, "whoami": whoami, "boom": boom}
'''
TESTS = '''\
class TestModule:
    def tests(self):
        return {"longer_than": lambda value, n: len(value) > n}
'''


def _plan(files):
    plan = make_plan([
        task("command", {"_raw_params": "echo hello there"}, name="out", register="r"),
        task("debug", {"msg": "{{ r.stdout | first_word }} {{ r.stdout | first_word(sep='l+') }}"}, name="word"),
        task("debug", {"msg": "{{ 1 | whoami }}"}, name="name"),
        task("debug", {"msg": "{{ r.stdout is longer_than(3) }} {{ r.stdout is longer_than(30) }}"}, name="test"),
        task("debug", {"msg": "{{ r.stdout | boom }}"}, name="boom", ignore_errors=True),
    ])
    plan["plugins"] = {"filter": ["boom", "first_word", "whoami"], "test": ["longer_than"], "files": files}
    return plan


def _files(filters=FILTERS):
    return [{"kind": "filter", "path": "/pb/filter_plugins/words.py", "source": filters,
             "names": ["first_word", "whoami", "boom"], "module": "ansible.plugins.filter.words_42"},
            {"kind": "test", "path": "/pb/test_plugins/size.py", "source": TESTS,
             "names": ["longer_than"], "module": "ansible.plugins.test.size_7"}]


@pytest.mark.parametrize("version", [None, "3.8"])
def test_embedded_filters_and_tests_run_on_the_host_over_host_data(tmp_path, version):
    python = None if version is None else _interpreter(version)
    if version is not None and python is None:
        pytest.skip(f"no Python {version} under /root/.pyenv/versions")
    artifact = build_test_artifact(tmp_path, _plan(_files()))
    r = run_artifact(artifact, "run", "--host", "h1", **({"python": python} if python else {}))
    assert r.result("word")["msg"] == "HELLO HE"
    assert r.result("name")["msg"] == "ansible.plugins.filter.words_42"
    assert r.result("test")["msg"] == "True False"
    boom = r.result("boom")
    assert boom["status"] == "failed"
    assert "The filter plugin 'boom' failed: boom on hello there" in boom["msg"]


def test_a_plugin_file_that_fails_to_load_fails_the_tasks_that_call_it(tmp_path):
    plan = _plan(_files(filters="import not_on_this_host\n"))
    for broken in plan["plays"][0]["tasks"][1:3]:
        broken["ignore_errors"] = True
    artifact = build_test_artifact(tmp_path, plan)
    r = run_artifact(artifact, "run", "--host", "h1")
    word = r.result("word")
    assert word["status"] == "failed"
    assert "/pb/filter_plugins/words.py failed to load" in word["msg"]
    assert "not_on_this_host" in word["msg"]
    assert r.result("test")["msg"] == "True False"  # the other file still runs
