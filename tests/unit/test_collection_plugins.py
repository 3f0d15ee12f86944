"""Collections' filter and test plugins by their fully qualified names: found by ansible-core,
embedded for the host with their collection's module_utils/plugin_utils when those need only
the standard library, else run on the controller over what it knows; applied to host data,
such a plugin is refused at compile time."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rustle_deploy.compiler.ansible_plugins import host_import, support_modules
from rustle_deploy.errors import PlaybookError

from ..conftest import REPO
from .test_playbook import _compile

CASE = REPO / "tests" / "data" / "playbooks" / "collection_filters"
PLUGINS = Path("collections", "ansible_collections", "acme", "tools", "plugins")


def test_a_collection_plugin_brings_its_own_module_utils_and_plugin_utils() -> None:
    helpers = CASE / PLUGINS / "filter" / "helpers.py"
    assert host_import(str(helpers)) is None
    assert [m for m, _ in support_modules(str(helpers))] == [
        "ansible_collections.acme.tools.plugins.module_utils.text",
        "ansible_collections.acme.tools.plugins.plugin_utils.marks",
    ]
    assert host_import(str(CASE / PLUGINS / "filter" / "netaddr.py")) == (
        "from ansible.module_utils.common.network import is_mac")


def test_a_collection_helper_that_needs_ansible_keeps_its_importer_on_the_controller(tmp_path: Path) -> None:
    root = tmp_path / PLUGINS
    (root / "filter").mkdir(parents=True)
    (root / "module_utils").mkdir()
    (root / "module_utils" / "conv.py").write_text("from ansible.module_utils.six import text_type\n")
    plugin = root / "filter" / "f.py"
    plugin.write_text("from ..module_utils.conv import text_type\n")
    assert host_import(str(plugin)) == "from ..module_utils.conv import text_type"
    other = root / "filter" / "g.py"  # another collection's helper is never embedded
    other.write_text("from ansible_collections.other.coll.plugins.module_utils.x import y\n")
    assert host_import(str(other)) == "from ansible_collections.other.coll.plugins.module_utils.x import y"


def test_an_import_cycle_among_helpers_ends(tmp_path: Path) -> None:
    root = tmp_path / PLUGINS
    (root / "filter").mkdir(parents=True)
    (root / "module_utils").mkdir()
    (root / "module_utils" / "a.py").write_text("from .b import x\ny = 2\n")
    (root / "module_utils" / "b.py").write_text("from .a import y\nx = 1\n")
    plugin = root / "filter" / "f.py"
    plugin.write_text("from ..module_utils.b import x\n")
    assert host_import(str(plugin)) is None
    assert sorted(m.rsplit(".", 1)[-1] for m, _ in support_modules(str(plugin))) == ["a", "b"]


def _case(tmp_path: Path) -> None:
    shutil.copytree(CASE / "collections", tmp_path / "collections")


def test_a_controller_only_collection_filter_over_host_data_is_refused_at_its_line(tmp_path: Path) -> None:
    _case(tmp_path)
    site = ("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - command: echo hi\n      register: r\n"
            "    - debug:\n        msg: \"{{ r.stdout | acme.tools.mac_or_not }}\"\n")
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": site})
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'site.yml'}:7:")
    assert "the filter 'acme.tools.mac_or_not'" in text and "is applied to host data ('r'" in text
    assert "`from ansible.module_utils.common.network import is_mac`" in text


def test_an_unknown_collection_filter_is_refused_with_the_reason(tmp_path: Path) -> None:
    _case(tmp_path)
    site = ("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - debug:\n        msg: \"{{ 1 | acme.tools.nope }}\"\n")
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": site})
    assert ("filter 'acme.tools.nope' is not supported by rustle-deploy: no installed collection has this "
            "filter") in str(err.value)
    assert "ansible-galaxy collection install NS.COLL" in str(err.value.hint)


def test_a_collection_lookup_over_host_data_is_refused_at_its_line_an_unknown_one_named(tmp_path: Path) -> None:
    _case(tmp_path)
    site = ("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - command: echo hi\n      register: r\n"
            "    - debug:\n        msg: \"{{ q('acme.tools.stock', 'x', unit=r.stdout) }}\"\n")
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": site})
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'site.yml'}:7:")
    assert "the lookup 'acme.tools.stock' (" in text and "its terms read host data ('r'" in text
    site = ("- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            "    - debug:\n        msg: \"{{ lookup('acme.tools.nope', 1) }}\"\n")
    with pytest.raises(PlaybookError) as err:
        _compile(tmp_path, {"site.yml": site})
    assert ("lookup 'acme.tools.nope' is not supported by rustle-deploy: no installed collection has this "
            "lookup") in str(err.value)
