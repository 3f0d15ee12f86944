"""Which of the playbook's and roles' own filter and test plugin files an artifact embeds: those
its templates call whose files need only the standard library and Jinja2 (compiler/ansible_plugins.py)."""

from __future__ import annotations

import os
from pathlib import Path

from rustle_deploy.compiler.ansible_plugins import host_import
from rustle_deploy.compiler.units import plan_units
from rustle_deploy.inventory import load_inventory
from rustle_deploy.pipeline import _group_members
from rustle_deploy.playbook import CompileOptions, compile_playbook

CASE = Path(__file__).resolve().parents[1] / "data" / "playbooks" / "own_plugins_on_host"


def test_the_artifact_embeds_the_plugin_files_its_templates_call_and_no_other(tmp_path: Path) -> None:
    (tmp_path / "inv.ini").write_text("localhost ansible_connection=local\n")
    compiled = compile_playbook(str(CASE / "site.yml"), load_inventory(str(tmp_path / "inv.ini")),
                                CompileOptions())
    units = plan_units(compiled.plan, list(compiled.inventory.hosts.values()),
                       resolve=compiled.inventory.resolve, select=compiled.inventory.select,
                       groups=_group_members(compiled.inventory))
    files = units[0].plan_doc["plugins"]["files"]
    embedded = {(f["kind"], os.path.relpath(f["path"], CASE)): f for f in files}
    assert set(embedded) == {("filter", "filter_plugins/words.py"), ("test", "test_plugins/mac.py"),
                             ("filter", "roles/words/filter_plugins/short.py"),
                             ("test", "roles/words/test_plugins/short.py")}
    words = embedded["filter", "filter_plugins/words.py"]
    assert words["source"] == (CASE / "filter_plugins" / "words.py").read_text()
    assert words["module"].startswith("ansible.plugins.filter.words_")
    assert words["module"].rsplit("_", 1)[1].isdigit()
    assert set(words["names"]) == {"sorted_words", "shout", "module_name", "title_words", "refuse_it"}
    # filter_plugins/unused.py (import yaml) is called by no template: neither embedded nor refused
    assert "never_called" in units[0].plan_doc["plugins"]["filter"]


def test_host_import_names_the_first_import_the_host_lacks(tmp_path: Path) -> None:
    plugin = tmp_path / "net.py"
    plugin.write_text("from __future__ import annotations\nimport re, json\nfrom jinja2 import pass_context\n"
                      "def f():\n    from ansible.module_utils.common.network import is_mac, to_bits\n")
    assert host_import(str(plugin)) == "from ansible.module_utils.common.network import is_mac, to_bits"
    plain = tmp_path / "plain.py"
    plain.write_text("import collections.abc\nfrom markupsafe import Markup\nfrom jinja2.filters import do_upper\n")
    assert host_import(str(plain)) is None
    relative = tmp_path / "rel.py"
    relative.write_text("from .helpers import x\n")
    assert host_import(str(relative)) == "from .helpers import x"
