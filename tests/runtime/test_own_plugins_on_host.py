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


HELPER = '''\
def reverse_words(value):
    return " ".join(reversed(str(value).split()))
'''
MARKS = '''\
from ..module_utils.text import reverse_words


def marked(value):
    return "~" + reverse_words(value) + "~"
'''
COLLECTION_FILTERS = '''\
from ansible_collections.acme.tools.plugins.module_utils.text import reverse_words

from ..plugin_utils.marks import marked


def whoami(value):
    return __name__


class FilterModule:
    def filters(self):
        return {"reverse_words": reverse_words, "marked": marked, "whoami": whoami}
'''


@pytest.mark.parametrize("version", [None, "3.8"])
def test_a_collections_filter_runs_with_its_module_utils_and_plugin_utils(tmp_path, version):
    python = None if version is None else _interpreter(version)
    if version is not None and python is None:
        pytest.skip(f"no Python {version} under /root/.pyenv/versions")
    root = "/c/ansible_collections/acme/tools/plugins"
    plan = make_plan([
        task("command", {"_raw_params": "echo hello there"}, name="out", register="r"),
        task("debug", {"msg": "{{ r.stdout | acme.tools.reverse_words }} {{ r.stdout | acme.tools.marked }}"},
             name="words"),
        task("debug", {"msg": "{{ 1 | acme.tools.whoami }}"}, name="name"),
    ])
    names = ["acme.tools.marked", "acme.tools.reverse_words", "acme.tools.whoami"]
    plan["plugins"] = {"filter": names, "files": [{
        "kind": "filter", "path": f"{root}/filter/helpers.py", "source": COLLECTION_FILTERS, "names": names,
        "module": "ansible_collections.acme.tools.plugins.filter.helpers", "prefix": "acme.tools.",
        "support": [
            {"module": "ansible_collections.acme.tools.plugins.module_utils.text",
             "path": f"{root}/module_utils/text.py", "source": HELPER},
            {"module": "ansible_collections.acme.tools.plugins.plugin_utils.marks",
             "path": f"{root}/plugin_utils/marks.py", "source": MARKS}]}]}
    artifact = build_test_artifact(tmp_path, plan)
    r = run_artifact(artifact, "run", "--host", "h1", **({"python": python} if python else {}))
    assert r.result("words")["msg"] == "there hello ~there hello~"
    assert r.result("name")["msg"] == "ansible_collections.acme.tools.plugins.filter.helpers"
