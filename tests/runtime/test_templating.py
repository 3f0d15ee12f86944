"""Templating and expressions in-process: Ansible's filters/tests, native types, laziness."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime"
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))

from rustle_runtime import expr  # noqa: E402
from rustle_runtime.templating import Templar, TemplateError, VarScope  # noqa: E402

T = Templar()
RESULT = {"changed": True, "failed": False, "rc": 0, "stdout": "a\nb", "results": []}


def scope(**extra):
    base = {"s": "Hello", "n": 3, "l": [3, 1, 3], "d": {"k": "v"}, "r": RESULT, "yes_str": "yes",
            "false_str": "false", "nested": "{{ s }} world", "none": None}
    base.update(extra)
    return VarScope([base], T)


@pytest.mark.parametrize("expression, expected", [
    ("s == 'Hello'", True), ("n > 2 and n < 4", True), ("missing is defined", False),
    ("missing is undefined", True), ("d.k == 'v'", True), ("d['k'] == 'v'", True),
    ("d.nope is defined", False), ("missing.deep.er is defined", False), ("3 in l", True),
    ("4 not in l", True), ("r is changed", True), ("r is succeeded", True), ("r is failed", False),
    ("r is skipped", False), ("yes_str | bool", True), ("false_str", False), ("not none", True),
    ("none is none", True), ("l | length == 3", True), ("s | lower == 'hello'", True),
    ("missing | default('x') == 'x'", True), ("'1.10' is version('1.9', '>')", True),
    ("'2.0' is version_compare('2.0.1', 'lt')", True), ("nested == 'Hello world'", True),
    ("(n == 3) or missing", True), ("r.rc == 0 and r.stdout_lines is not defined", True),
])
def test_conditions(expression, expected):
    assert T.condition(expression, scope()) is expected


@pytest.mark.parametrize("expression", ["missing == 1", "missing", "d.nope == 1", "missing and true"])
def test_undefined_in_conditions_raises(expression):
    with pytest.raises(TemplateError, match="undefined|no attribute"):
        T.condition(expression, scope())


@pytest.mark.parametrize("expression", [
    "foo is defined", "x == 'y'", "r.rc != 0", "v | bool", "a and not b", "'w' in groups['web']",
    "r is changed", "x is version('1.2', '>=')",
])
def test_simple_expressions_need_no_jinja(expression):
    assert expr._Parser(expression).parse()[0] != "unsupported"


@pytest.mark.parametrize("expression", ["x ~ y", "a + 1", "x if y else z", "l | map('int') | list",
                                        "lookup('env', 'HOME')", "x[1:]"])
def test_other_expressions_fall_back_to_jinja(expression):
    assert expr.evaluate(expression, scope()) is expr.UNSUPPORTED


@pytest.mark.parametrize("template, expected", [
    ("{{ l }}", [3, 1, 3]), ("{{ n }}", 3), ("{{ d }}", {"k": "v"}), ("n={{ n }}", "n=3"),
    ("{{ l | unique | list }}", [3, 1]), ("{{ s | regex_replace('l+', 'L') }}", "HeLo"),
    ("{{ s | regex_search('e(l+)', '\\\\1') }}", ["ll"]), ("{{ 'a b' | quote }}", "'a b'"),
    ("{{ '/a/b.c' | basename }}", "b.c"), ("{{ '/a/b.c' | dirname }}", "/a"),
    ("{{ {'a': 1} | combine({'b': 2}) }}", {"a": 1, "b": 2}),
    ("{{ [{'key': 'a', 'value': 1}] | items2dict }}", {"a": 1}),
    ("{{ d | to_json }}", '{"k": "v"}'), ("{{ '{\"x\": 1}' | from_json }}", {"x": 1}),
    ("{{ d | to_nice_json }}", '{\n    "k": "v"\n}'), ("{{ {'a': [1, 'x']} | to_yaml }}", "a:\n- 1\n- x\n"),
    ("{{ true | ternary('y', 'n') }}", "y"), ("{{ ' x ' | trim }}", "x"), ("{{ 'a,b' | split(',') }}", ["a", "b"]),
    ("{{ l | first }}-{{ l | last }}", "3-3"), ("{{ '5' | int + 1 }}", 6), ("{{ 'x' | mandatory }}", "x"),
    ("{% for i in l %}{{ i }}{% endfor %}\nend\n", "313end\n"), ("{{ s | d('z') }}", "Hello"),
])
def test_templates(template, expected):
    assert T.template(template, scope()) == expected


def test_recursive_templating_of_args():
    assert T.template({"a": ["{{ n }}", "x{{ s }}"], "{{ s }}": 1}, scope()) == {"a": [3, "xHello"], "Hello": 1}


def test_undefined_in_templates_raises():
    with pytest.raises(TemplateError, match="'missing' is undefined"):
        T.template("x {{ missing }}", scope())
    with pytest.raises(TemplateError, match="Mandatory variable"):
        T.template("{{ missing | mandatory }}", scope())


def test_plain_strings_are_untouched():
    assert T.template("no template here", scope()) == "no template here"


def test_facts_are_gathered_only_when_referenced():
    calls = []

    def facts():
        calls.append(1)
        return {"ansible_system": "Linux", "ansible_os_family": "Debian"}

    s = VarScope([{"x": 1}], T, facts=facts)
    assert T.condition("x == 1", s) and not calls
    assert T.condition("ansible_os_family == 'Debian'", s) and calls
    assert T.template("{{ ansible_facts.system }}", s) == "Linux"
