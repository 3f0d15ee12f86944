"""Templating and expressions in-process: Ansible's filters/tests, native types, laziness."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime"
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))

from rustle_runtime import expr  # noqa: E402
from rustle_runtime.templating import (  # noqa: E402
    Templar,
    TemplateError,
    TemplateSecurityError,
    UnsafeText,
    VarScope,
    is_template,
    rendered_untrusted,
    unsafe,
    unsafe_result,
)

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
    ("r is skipped", False), ("yes_str | bool", True), ("false_str | bool", False), ("not none", True),
    ("none is none", True), ("l | length == 3", True), ("s | lower == 'hello'", True),
    ("missing | default('x') == 'x'", True), ("'1.10' is version('1.9', '>')", True),
    ("'2.0' is version_compare('2.0.1', 'lt')", True), ("nested == 'Hello world'", True),
    ("(n == 3) or missing", True), ("r.rc == 0 and r.stdout_lines is not defined", True),
])
def test_conditions(expression, expected):
    assert T.condition(expression, scope()) is expected


# ansible-core 2.19: a conditional whose result is not a boolean fails (tests/integration's
# strict_conditionals playbook case holds ansible-playbook's own results)
@pytest.mark.parametrize("expression, message", [
    ("false_str", "Conditional result (True) was derived from value of type 'str' at '<unknown>'. "
                  "Conditionals must have a boolean result."),
    ("l", "Conditional result (True) was derived from value of type 'list' at '<unknown>'."),
    ("n", "Conditional result (True) was derived from value of type 'int'"),
    ("none", "Conditional result (False) was derived from value of type 'NoneType'"),
    ("r.results", "Conditional result (False) was derived from value of type 'list'"),
    ("n == 3 and s", "Conditional result (True) was derived from value of type 'str'"),
    ("{{ yes_str }}", "'yes' is undefined"),  # a wholly templated conditional is an expression
    # ... when the string came from the playbook as it is; not one Jinja2 made (conditionals:5)
    ("{{ 'n == 3' }}", "Encountered untrusted template or expression."),
    ("{{ s | lower }}", "Encountered untrusted template or expression."),
    ("", "Empty conditional expressions are not allowed."),
    ("  ", "Empty conditional expressions are not allowed."), (None, "Empty conditional"),
    (1, "Conditional expressions must be strings."), ([], "Conditional expressions must be strings."),
])
def test_a_conditional_that_is_not_a_boolean_fails_as_in_ansible_2_19(expression, message):
    with pytest.raises(TemplateError) as info:
        T.condition(expression, scope())
    assert message in str(info.value)


@pytest.mark.parametrize("expression, origins, origin", [
    ("yes_str", {"yes_str": "/p/site.yml:4:8"}, "/p/site.yml:4:8"),
    (" yes_str ", {"yes_str": "/p/site.yml:4:8"}, "/p/site.yml:4:8"),  # stripped, as Ansible does
    ("none", {"none": "/p/site.yml:5:8"}, "<unknown>"),  # None takes no origin in ansible-core
    ("n and yes_str", {"n and yes_str": {"": "/p/site.yml:9:13", "n": "/p/v.yml:1:4", "yes_str": "/p/v.yml:2:10"}},
     "/p/v.yml:2:10"),  # the operand whose value the result is
    ("n and 'x'", {"n and 'x'": {"": "/p/site.yml:9:13", "n": "/p/v.yml:1:4"}}, "/p/site.yml:9:13"),
    ("l", {}, "<unknown>"),
])
def test_a_broken_conditional_names_the_origin_the_task_recorded(expression, origins, origin):
    templar = Templar()
    templar.origins = origins
    with pytest.raises(TemplateError) as info:
        templar.condition(expression, scope())
    assert f"at '{origin}'. Conditionals must" in str(info.value)


def test_a_number_or_unsafe_text_as_a_condition_fails_as_in_ansible_2_19():
    with pytest.raises(TemplateError, match=r"^Conditional expressions must be strings\.$"):
        T.condition(1, scope())
    with pytest.raises(TemplateError, match="^Encountered untrusted template or expression"):
        T.condition(UnsafeText("1 == 1"), scope())


def test_text_a_template_made_in_a_loop_is_not_trusted_but_a_variable_passed_through_is():
    written = [{"that": "'a' == '{{ s }}'"}, {"that": "{{ s }}"}, {"that": "n == 3"}, "{{ n }}"]
    items = rendered_untrusted(written, T.template(written, scope()))
    assert items == [{"that": "'a' == 'Hello'"}, {"that": "Hello"}, {"that": "n == 3"}, 3]
    assert [type(i["that"]) for i in items[:3]] == [UnsafeText, str, str]
    with pytest.raises(TemplateError, match="untrusted"):
        T.condition(items[0]["that"], scope())


def test_a_registered_loop_keeps_its_items_trust_and_a_path_template_passes_it_through():
    item = {"checks": ["n == 3", "s == 'Hello'"]}
    registered = unsafe_result({"changed": False, "results": [{"stdout": "x", "item": item}]})
    assert isinstance(registered["results"][0]["stdout"], UnsafeText)
    over = scope(result=registered, item=registered["results"][0])
    that = T.template("{{ item.item.checks }}", over)
    assert that == item["checks"] and not any(isinstance(c, UnsafeText) for c in that)
    assert all(T.condition(c, over) for c in that)
    # host data stays host data, and what is computed from it too
    assert isinstance(T.template("{{ item.stdout }}", over), UnsafeText)
    assert isinstance(T.template("{{ item.stdout ~ 'y' }}", over), UnsafeText)


@pytest.mark.parametrize("expression, expected", [
    ("false_str", True), ("l", True), ("none", False), ("", True), (None, True), (1, True), (0, False),
    ("n == 3", True), ("{{ n }}", True),
])
def test_allow_broken_conditionals_takes_the_truth_of_the_result(expression, expected):
    assert Templar(allow_broken_conditionals=True).condition(expression, scope()) is expected


@pytest.mark.parametrize("expression, expected", [
    ("{{ false_str }}", False), ("{{ d['k'] == 'v' }}", True), ("{{ n == 3 }}", True), (True, True), (" x ", False),
])
def test_a_conditional_wholly_in_braces_is_the_expression_it_renders_to(expression, expected):
    assert T.condition(expression, scope(x=False)) is expected


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


@pytest.mark.parametrize("expression", ["a - 1", "n * 2", "x if y else z", "l | map('int') | list",
                                        "lookup('env', 'HOME')", "x[1:]", "s + n", "1 in l == True"])
def test_other_expressions_fall_back_to_jinja(expression):
    assert expr.evaluate(expression, scope()) is expr.UNSUPPORTED


@pytest.mark.parametrize("expression", [
    "1 < n < 4", "1 < n < 3", "0 <= n <= 3 == n", "n == 3 != 4", "3 < n < missing", "s ~ n ~ none ~ d",
    "s ~ '!' == 'Hello!'", "n + 1 == 4", "s + ' world' ~ n", "l + [1] == [3, 1, 3, 1]", "n + 0.5",
    "True + 1 < n < 3 + 1", "s ~ n | string",
    # a test's one bare argument (Jinja2's `x is test arg`)
    "n is eq 3", "s is in 'Hello world' and n is ne 'x'", "not n is eq 2 or false", "s is eq 'Hello' == true",
])
def test_chains_plus_and_tilde_are_jinja2s(expression):
    """Chained comparisons, ``+``, ``~`` and a test's bare argument in the fast path give what
    Jinja2 gives."""
    import jinja2

    env = jinja2.Environment()
    values = {"s": "Hello", "n": 3, "l": [3, 1, 3], "d": {"k": "v"}, "none": None}
    assert expr._Parser(expression).parse()[0] != "unsupported"
    assert expr.evaluate(expression, scope()) == env.compile_expression(expression)(**values)


@pytest.mark.parametrize("template, expected", [
    ("{{ l }}", [3, 1, 3]), ("{{ n }}", 3), ("{{ d }}", {"k": "v"}), ("n={{ n }}", "n=3"),
    ("{{ l | unique | list }}", [3, 1]), ("{{ s | regex_replace('l+', 'L') }}", "HeLo"),
    # '\\1' as YAML writes it: escape_backslashes hands the filter backslash-one
    ("{{ s | regex_search('e(l+)', '\\1') }}", ["ll"]), ("{{ 'a b' | quote }}", "'a b'"),
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

    def facts(key):  # the scope says which name it needs: the executor gathers only its collector
        calls.append(key)
        return {"ansible_system": "Linux", "ansible_os_family": "Debian"}

    s = VarScope([{"x": 1}], T, facts=facts)
    assert T.condition("x == 1", s) and not calls
    assert T.condition("ansible_os_family == 'Debian'", s) and calls == ["ansible_os_family"]
    assert T.template("{{ ansible_facts.system }}", s) == "Linux"  # one fact of ansible_facts: its own
    assert "ansible_facts" not in calls
    assert T.template("{{ ansible_facts | to_json }}", s) == '{"system": "Linux", "os_family": "Debian"}'
    assert calls[-1] == "ansible_facts"


# ---------------------------------------------------------------- host data is data (issue 11)

EVIL = "{{ 7 * 6 }}"


def host_scope():
    r = unsafe({"stdout": EVIL, "stdout_lines": [EVIL], "bare": "n + 1", "word": "yes", "rc": 0})
    return VarScope([{"n": 1, "via": "{{ r.stdout }}", "joined": "{{ r.stdout_lines | join }}"}, {"r": r}], Templar())


def test_unsafe_marks_every_string_and_is_never_a_template():
    r = unsafe({"k": ["{{ x }}", {"{{ y }}": "{{ z }}"}], "n": 1, "b": True, "none": None})
    assert isinstance(r["k"][0], UnsafeText) and not is_template(r["k"][0])
    (key, value), = r["k"][1].items()
    assert isinstance(key, UnsafeText) and isinstance(value, UnsafeText)
    assert r["n"] == 1 and r["b"] is True and r["none"] is None
    assert unsafe(r) is r


@pytest.mark.parametrize("template", ["{{ r.stdout }}", "{{ r }}", "{{ via }}", "x{{ r.stdout }}",
                                      "{{ r.stdout_lines | join }}", "{{ joined }}",
                                      "{% for l in r.stdout_lines %}{{ l }}{% endfor %}"])
def test_host_data_is_not_rendered_again(template):
    value = T.template(template, host_scope())
    assert "42" not in str(value) and EVIL in str(value)


@pytest.mark.parametrize("template", ["{{ r.stdout | trim }}", "pre {{ r.stdout }}", "{{ via }}",
                                      "{{ r.stdout ~ '' }}", "{{ r.stdout_lines | join }}",
                                      "{{ [r.stdout] | first }}", "{{ lookup('list', 'HOME') | lower }}"])
def test_what_is_computed_from_host_data_stays_marked(template):
    assert isinstance(T.template(template, host_scope()), UnsafeText)


def test_trusted_values_stay_trusted_beside_host_data():
    args = T.template({"that": "n == 1", "msg": "{{ r.stdout }}", "n": "{{ n }}"}, host_scope())
    assert type(args["that"]) is str and isinstance(args["msg"], UnsafeText) and args["n"] == 1


@pytest.mark.parametrize("condition", ["{{ r.bare }}", "{{ r.stdout }}", "{{ r.bare | trim }}"])
def test_host_data_is_never_evaluated_as_a_condition(condition):
    with pytest.raises(TemplateError, match="^Encountered untrusted template or expression\\.$"):
        T.condition(condition, host_scope())
    with pytest.raises(TemplateError, match="^Encountered untrusted template or expression\\.$"):
        T.condition(T.template(condition, host_scope()), host_scope())  # assert's templated `that`


def test_host_data_reads_as_a_value_in_conditions():
    s = host_scope()
    assert T.condition("r.stdout == '{{ 7 * 6 }}'", s) is False  # a literal in the expression: not a template
    assert T.condition("r.stdout != ''", s) and T.condition("r.word | bool", s)
    # 2.19: even a word Ansible reads as true
    with pytest.raises(TemplateError, match="^Encountered untrusted template or expression\\.$"):
        T.condition("{{ r.word }}", s)
    assert T.condition("r.bare | length > 0", s) and T.condition("r.rc == 0", s)


@pytest.mark.parametrize("expression", [
    "''.__class__.__mro__[1].__subclasses__()", "''.__class__", "n.__class__.__bases__",
    "lookup.__globals__", "cycler.__init__.__globals__", "r.__class__", "vars.templar",
    "vars.layers", "hostvars_like.raw('n')", "'{0.__class__}'.format(n)",
])
def test_the_jinja2_sandbox_refuses_python_internals(expression):
    s = host_scope().child({"hostvars_like": host_scope()})
    with pytest.raises(TemplateError, match="unsafe|not safely callable") as exc:
        T.template("{{ " + expression + " }}", s)
    assert "subclass" not in str(exc.value) and "<class" not in str(exc.value)


def test_sandbox_errors_say_so():
    with pytest.raises(TemplateSecurityError, match=r"access to attribute '__class__' of 'str' object is unsafe"):
        T.template("{{ ''.__class__.__mro__[1].__subclasses__() }}", host_scope())


def test_a_conditional_in_braces_that_is_no_string_is_deprecated_in_the_tasks_result():
    templar = Templar()
    assert templar.condition("{{ n == 3 }}", scope()) is True
    assert templar.condition("{{ n == 3 }}", scope()) is True  # once per task
    assert [d["msg"] for d in templar.deprecations] == [
        "Conditionals should not be surrounded by templating delimiters such as {{ }} or {% %}."]
    quiet = Templar()
    quiet.condition("{{ n == 3 }}", scope(ansible_deprecation_warnings=False))
    quiet.condition("n == 3", scope())
    assert quiet.deprecations == []


@pytest.mark.parametrize("text, expected", [
    ('{{ dict({"k": "{{ 1 }}"})["k"] == "{" + "{ 1 }}" }}\n', True),  # ansible-core's assert target
    ('{{ "{{" }}', "{{"), ("{{ n }} and {{ n }}", "3 and 3"), ("{{ n }}{{ n }}", "33"),
])
def test_one_expression_holding_braces_in_a_string_keeps_its_native_type(text, expected):
    assert T.template(text, scope()) == expected


def test_a_lookups_trusted_string_terms_are_rendered_its_host_data_terms_are_not():
    assert T.evaluate("lookup('vars', '{{ \"s\" }}')", scope()) == "Hello"
    with pytest.raises(TemplateError, match="No variable named \"{{ 's' }}\" was found"):
        T.evaluate("lookup('vars', t)", scope(t=UnsafeText("{{ 's' }}")))


def test_assert_over_a_list_variable_takes_its_conditionals_as_written():
    from rustle_runtime.executor import _assert_that

    templar = Templar()
    over = VarScope([{"thats": ["{{ 1 == 1 }}", "2 == 2"]}], templar)
    that = _assert_that(templar, "{{ thats }}", over)
    assert that == ["{{ 1 == 1 }}", "2 == 2"]
    assert all(templar.condition(c, over) for c in that)
    assert [d["msg"].split(" such as")[0] for d in templar.deprecations] == [
        "Conditionals should not be surrounded by templating delimiters"]
