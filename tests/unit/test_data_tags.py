"""ansible._protomatter on the compiler's side: what the runtime offers compiles, the rest is
refused at its line with the reason (docs/playbooks.md, "Data tags")."""

from __future__ import annotations

from pathlib import Path

import pytest

from rustle_deploy.errors import PlaybookError

from .test_playbook import _compile


def _site(expression: str) -> str:
    return ("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            f"    - debug:\n        msg: \"{{{{ {expression} }}}}\"\n")


@pytest.mark.parametrize("expression", [
    "x is ansible._protomatter.tagged_with('TrustedAsTemplate')",
    "x | ansible._protomatter.apply_trust | from_json(profile='inventory_legacy')",
    "x | ansible._protomatter.finalize", "x | ansible._protomatter.python_literal_eval",
    "x | ansible._protomatter.dump_object", "x | ansible._protomatter.origin",
    "x | ansible._protomatter.tag_names", "x | ansible._protomatter.true_type",
    "x is ansible._protomatter.tagged", "x is ansible._protomatter.tagged_with('Origin')",
    "x is ansible._protomatter.tagged_with('VaultedValue')", "x | ansible._protomatter.unmask('PluginInfo')",
])
def test_what_the_runtime_offers_compiles(tmp_path: Path, expression: str) -> None:
    compiled = _compile(tmp_path, {"site.yml": _site(expression)})
    assert compiled.plan.plays[0].batches[0].tasks[0].short_module == "debug"


@pytest.mark.parametrize("expression, message", [
    ("x is ansible._protomatter.tagged_with('Deprecated')",
     "test 'ansible._protomatter.tagged_with' with the tag 'Deprecated' is not supported by rustle-deploy: "
     "the runtime answers only the TrustedAsTemplate, VaultedValue and Origin tags"),
])
def test_what_it_does_not_is_refused_at_its_line(tmp_path: Path, expression: str, message: str) -> None:
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": _site(expression)})
    assert str(err.value).startswith(f"{tmp_path / 'site.yml'}:4:")
    assert message in str(err.value)
    assert "Data tags" in str(err.value.hint)


def test_an_attribute_named_hostvars_is_not_the_hostvars_variable(tmp_path: Path) -> None:
    from rustle_deploy.compiler.units import _hostvars_read

    compiled = _compile(tmp_path, {"site.yml": _site("x")})
    # inventory_script's `inventory_data._meta.hostvars`: a key of a dict, no other host's data
    assert _hostvars_read(compiled.plan, [{"msg": "{{ data._meta.hostvars == {} }}"}]) == set()
    assert _hostvars_read(compiled.plan, [{"msg": "{{ hostvars['h'].x }}"}]) == {"x"}


def test_a_variable_given_to_the_origin_filter_has_its_origin_recorded(tmp_path: Path) -> None:
    compiled = _compile(tmp_path, {"site.yml": (
        "- hosts: localhost\n  vars: {l: [1, 2]}\n  tasks:\n"
        "    - debug: {msg: \"{{ x | ansible._protomatter.origin }} {{ l[0]|ansible._protomatter.origin }}\"}\n"
        "      vars: {x: Hello}\n")})
    site = tmp_path / "site.yml"
    assert compiled.plan.plays[0].batches[0].tasks[0].extras["origins"] == {
        "x": f"{site}:5:17", "l[0]": f"{site}:2:14"}
