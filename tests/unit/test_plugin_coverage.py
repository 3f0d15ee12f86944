"""Every ansible.builtin lookup, filter and test plugin is either offered or refused at compile
time with a reason (issue 14): the test walks the installed ansible-core's plugins, so a plugin a
new ansible-core adds fails here until it is implemented or refused, and docs/plugins.md's table
is what ``plugin_table()`` renders (``python -m tests.unit.test_plugin_coverage`` prints it).
A refused or unknown one is refused with its location: tests/unit/test_plan.py.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any

import pytest

from rustle_deploy.runtime_index import runtime_plugins, runtime_root

pytestmark = pytest.mark.ansible

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
BEGIN, END = "<!-- plugin table: begin -->", "<!-- plugin table: end -->"


def ansible_plugins() -> dict[str, list[str]]:
    """ansible-core's ansible.builtin plugin names by kind (lookups are modules; filters and
    tests are what each module's FilterModule/TestModule returns)."""
    import ansible.plugins.filter
    import ansible.plugins.lookup
    import ansible.plugins.test

    out: dict[str, set[str]] = {"lookup": set(), "filter": set(), "test": set()}
    out["lookup"] = {m.name for m in pkgutil.iter_modules(ansible.plugins.lookup.__path__)}
    for kind, pkg, cls in (("filter", ansible.plugins.filter, "FilterModule"),
                           ("test", ansible.plugins.test, "TestModule")):
        for info in pkgutil.iter_modules(pkg.__path__):
            module = importlib.import_module(f"{pkg.__name__}.{info.name}")
            if hasattr(module, cls):
                plugin = getattr(module, cls)()
                out[kind] |= set(plugin.filters() if kind == "filter" else plugin.tests())
    return {k: sorted(v) for k, v in out.items()}


def _runtime_tables() -> tuple[Any, Any]:
    root = str(runtime_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    from rustle_runtime import filters, lookups  # type: ignore[import-not-found]

    return filters, lookups


def where(kind: str, name: str) -> str:
    """Where rustle-deploy runs ``name``, or why it refuses it."""
    filters, lookups = _runtime_tables()
    known = runtime_plugins()
    why = known["refused"][kind].get(name)
    if why is not None:
        return f"refused at compile time: {why}"
    if name not in known[kind]:
        return "MISSING"
    if name in lookups.ANSIBLE_RUNS[kind] or (kind, name) == ("lookup", "config"):
        return "controller, by ansible-core, while the task compiles (the result ships in the artifact)"
    if (kind, name) in (("filter", "fileglob"),) or (kind == "lookup" and name in lookups.CONTROLLER):
        return "controller, while the task compiles (the result ships in the artifact)"
    if (kind, name) in (("lookup", "file"), ("lookup", "template")):
        return "host, over the files the compiler embedded (found on the controller)"
    return "host"


def plugin_table() -> str:
    rows = ["| kind | plugin | where it runs |", "|---|---|---|"]
    for kind, names in ansible_plugins().items():
        rows += [f"| {kind} | `{name}` | {where(kind, name)} |" for name in names]
    return "\n".join(rows)


def test_every_ansible_builtin_plugin_is_offered_or_refused() -> None:
    missing = {kind: [n for n in names if where(kind, n) == "MISSING"]
               for kind, names in ansible_plugins().items()}
    assert missing == {"lookup": [], "filter": [], "test": []}, (
        "ansible.builtin plugins neither implemented by the runtime nor refused with a reason "
        "(runtime/rustle_runtime/filters.py REFUSED_*, lookups.py REFUSED)")


def test_the_docs_table_is_the_plugin_list() -> None:
    text = DOC.read_text()
    assert BEGIN in text and END in text
    documented = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert documented == plugin_table(), (
        "docs/plugins.md is out of date: replace its table with the output of "
        "`python -m tests.unit.test_plugin_coverage`")


if __name__ == "__main__":
    print(plugin_table())
