"""The runtime's model of ansible-core's data tags (rustle_runtime/datatag.py), in-process."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "src" / "rustle_deploy" / "runtime"
if str(RUNTIME) not in sys.path:
    sys.path.insert(0, str(RUNTIME))

from rustle_runtime.templating import (  # noqa: E402
    Templar,
    TemplateError,
    TrustedText,
    UnsafeText,
    VarScope,
    unsafe,
)

T = Templar()
INVENTORY = '{"_meta": {"hostvars": {"h": {"a": "x", "u": {"__ansible_unsafe": "{{ y }}"}}}}, "g": {"hosts": ["h"], "vars": {"b": "z"}}}'


def scope(**extra):
    base = {"written": "in the play", "out": unsafe({"stdout": INVENTORY}), "y": "templated"}
    base.update(extra)
    return VarScope([base], T)


def trusted(expression, s=None):
    return T.evaluate(f"{expression} is ansible._protomatter.tagged_with('TrustedAsTemplate')", s or scope())


def test_written_text_is_trusted_and_host_data_is_not() -> None:
    assert trusted("written") is True
    assert trusted("out.stdout") is False
    assert trusted("out") is False  # a dict carries no trust of its own, as in ansible-core
    assert trusted("(out.stdout | ansible._protomatter.apply_trust)") is True


def test_apply_trust_survives_being_stored_as_host_data() -> None:
    value = T.template("{{ out.stdout | ansible._protomatter.apply_trust }}", scope())
    assert type(value) is TrustedText  # the template read host data, and the result kept its trust
    assert type(unsafe({"k": value})["k"]) is TrustedText
    assert type(unsafe({"k": "plain"})["k"]) is UnsafeText


def test_from_json_legacy_profiles_carry_the_inputs_trust() -> None:
    data = T.template('{{ out.stdout | ansible._protomatter.apply_trust | from_json(profile="inventory_legacy") }}',
                      scope())
    assert type(data["_meta"]["hostvars"]["h"]["a"]) is TrustedText
    assert type(data["g"]["vars"]["b"]) is TrustedText
    assert type(data["g"]["hosts"][0]) is UnsafeText  # not an inventory variable: no trust
    assert type(data["_meta"]["hostvars"]["h"]["u"]) is UnsafeText  # __ansible_unsafe: host data
    legacy = T.template('{{ out.stdout | ansible._protomatter.apply_trust | from_json(profile="legacy") }}', scope())
    assert type(legacy["g"]["hosts"][0]) is TrustedText
    # stored as a fact, host data inside stays text, never a template
    later = scope(data=unsafe(data))
    assert T.template("{{ data._meta.hostvars.h.u }}", later) == "{{ y }}"
    with pytest.raises(TemplateError, match="Unknown profile name 'bogus'"):
        T.template("{{ written | from_json(profile='bogus') }}", scope())


def test_tagged_with_other_tags_fails_with_the_reason() -> None:
    with pytest.raises(TemplateError, match="the Deprecated tag cannot be tested here: rustle-deploy keeps only"):
        T.evaluate("written is ansible._protomatter.tagged_with('Deprecated')", scope())
    with pytest.raises(TemplateError, match="Unknown tag name 'Bogus'"):
        T.evaluate("written is ansible._protomatter.tagged_with('Bogus')", scope())



def test_the_origin_filter_names_what_the_task_recorded() -> None:
    templar = Templar()
    templar.origins = {"written": "/p/site.yml:3:14", "'x' == 1": "/p/site.yml:9:13"}
    over = VarScope([{"written": "in the play", "other": "in the play too"}], templar)
    assert templar.evaluate("written | ansible._protomatter.origin", over) == "/p/site.yml:3:14"
    # a value the task recorded none for (another variable, a literal) has none; undefined stays so
    assert templar.evaluate("other | ansible._protomatter.origin", over) is None
    # the tags that follow from it
    assert templar.evaluate("written | ansible._protomatter.tag_names", over) == ["Origin", "TrustedAsTemplate"]
    assert templar.evaluate("other | ansible._protomatter.tag_names", over) == []
    assert templar.evaluate("written | ansible._protomatter.true_type", over) == "_AnsibleTaggedStr"
    assert templar.evaluate("other | ansible._protomatter.true_type", over) == "str"
    assert templar.evaluate("written is ansible._protomatter.tagged_with('Origin')", over) is True
    assert templar.evaluate("other is ansible._protomatter.tagged", over) is False
    assert templar.evaluate("1 | ansible._protomatter.unmask('PluginInfo')", over) == 1
    with pytest.raises(TemplateError, match=r"Unknown type name\(s\): BogusType"):
        templar.evaluate("[] | ansible._protomatter.unmask(['WarningSummary', 'BogusType'])", over)
    with pytest.raises(TemplateError, match="must be of type 'str' or 'list', not 'int'"):
        templar.evaluate("[] | ansible._protomatter.unmask(1)", over)
    assert templar.evaluate("'x' | ansible._protomatter.origin", over) is None
    assert templar.evaluate("missing | ansible._protomatter.origin is undefined", over) is True


@pytest.mark.parametrize("expression, expected", [
    ("'[1, 2]' | ansible._protomatter.python_literal_eval", [1, 2]),
    ("'x[1' | ansible._protomatter.python_literal_eval(ignore_errors=True)", "x[1"),
    ("missing | ansible._protomatter.python_literal_eval is undefined", True),
    ("[(1, 2), {'k': (3,)}] | ansible._protomatter.finalize", [[1, 2], {"k": [3]}]),
    ("[1, 2] | groupby('real') | ansible._protomatter.finalize", [[1, [1]], [2, [2]]]),
    ("written | ansible._protomatter.dump_object", "in the play"),
    ("missing | ansible._protomatter.apply_trust is undefined", True),
    ("out.stdout | type_debug", "str"), ("out | type_debug", "dict"),
])
def test_filters(expression, expected) -> None:
    assert T.evaluate(expression, scope()) == expected


def test_python_literal_eval_of_a_number_fails_as_ansible_core_says() -> None:
    with pytest.raises(TemplateError, match="must be a string"):
        T.evaluate("123 | ansible._protomatter.python_literal_eval", scope())
    with pytest.raises(TemplateError, match="SyntaxError"):
        T.evaluate("'x[1' | ansible._protomatter.python_literal_eval", scope())
