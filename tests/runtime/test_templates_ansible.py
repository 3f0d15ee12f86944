"""Templates against ansible-core: includes, imports, extends, syntax options and ``#jinja2:``
lines, ``ansible_managed``, trailing newlines, ``lookup('template')``, templated ``src`` and
copies of directories; results and the files written are compared."""

from __future__ import annotations

import pytest

from .oracle import compare_plays, fields, jtree

pytestmark = [pytest.mark.ansible, pytest.mark.oracle]

FILES = {
    "templates/main.j2": "head\n{% include 'inc.j2' %}\n{% import 'macros.j2' as m %}{{ m.greet(who) }}\ntail\n",
    "templates/inc.j2": "included {{ who }}\n",
    "templates/macros.j2": "{% macro greet(n) %}hello {{ n }}{% endmacro %}\n",
    "templates/child.j2": "{% extends 'parent.j2' %}{% block body %}child {{ who }}{% endblock %}\n",
    "templates/parent.j2": "<{% block body %}{% endblock %}>\n",
    "templates/dynamic.j2": "{% for n in ['a', 'b'] %}{% include 'part_' ~ n ~ '.j2' %}{% endfor %}",
    "templates/part_a.j2": "A\n",
    "templates/part_b.j2": "B\n",
    "templates/header.j2": "#jinja2:variable_start_string:'<<' , variable_end_string:'>>'\nvar: << who >> {{ kept }}\n",
    "templates/lstrip.j2": "#jinja2: lstrip_blocks: True\n  {% if true %}\nline\n  {% endif %}\n",
    "templates/trim.j2": "{% if true %}\nkept\n{% endif %}\nend\n",
    "templates/managed.j2": "# {{ ansible_managed }}\n{{ template_path }} {{ template_destpath | basename }}\n",
    "templates/newlines.j2": "{{ multi }}\n\n\n",
    "templates/none.j2": "{{ multi }}",
    "templates/nones.j2": "a{{ nothing }}b\n{{ nothing }}\nc {{ [nothing] }} {{ 'x' ~ nothing }}\n",
    "templates/comment.j2": "[# hidden #]{{ who }}\n",
    "templates/one.j2": "one {{ item }}\n",
    "templates/two.j2": "two {{ item }}\n",
    "files/tree/a.txt": "a\n",
    "files/tree/sub/b.txt": "b\n",
    "files/tree/empty/.keep": "",
}


def _tasks():
    t = []
    for name in ("main", "child", "dynamic", "header", "lstrip", "trim", "managed", "newlines",
                 "none", "nones"):
        t.append({"name": f"template {name}", "template": {"src": f"{name}.j2", "dest": f"{{d}}/out/{name}"}})
    t += [
        {"name": "template trim off", "template": {"src": "trim.j2", "dest": "{d}/out/trim_off", "trim_blocks": False}},
        {"name": "template lstrip on", "template": {"src": "lstrip.j2", "dest": "{d}/out/lstrip_on", "lstrip_blocks": True}},
        {"name": "template comment delimiters", "template": {
            "src": "comment.j2", "dest": "{d}/out/comment", "comment_start_string": "[#",
            "comment_end_string": "#]"}},
        {"name": "template newline crlf", "template": {"src": "newlines.j2", "dest": "{d}/out/crlf",
                                                         "newline_sequence": "\r\n"}},
        {"name": "templated src", "template": {"src": "{{ item }}.j2", "dest": "{d}/out/loop_{{ item }}"},
         "loop": ["one", "two"]},
        {"name": "lookup template", "copy": {"content": "{{ lookup('template', 'inc.j2') }}", "dest": "{d}/out/lookup"}},
        {"name": "copy tree with slash", "copy": {"src": "tree/", "dest": "{d}/out/slash"}},
        {"name": "copy tree without slash", "copy": {"src": "tree", "dest": "{d}/out/noslash"}},
        {"name": "copy tree again", "copy": {"src": "tree", "dest": "{d}/out/noslash"}},
        {"name": "None inside text", "copy": {"content": "c{{ nothing }}d", "dest": "{d}/out/content_none"}},
        {"name": "debug None inside text", "debug": {"msg": "a{{ nothing }}b{{ nothing }}"}},
        {"name": "string trailing newline", "copy": {"content": "{{ multi }}\n", "dest": "{d}/out/content_nl"}},
    ]
    return t


def test_templates_match_ansible(tmp_path):
    plays = [{"name": "templates", "vars": {"who": "world", "kept": "x", "multi": "m\n", "nothing": None},
              "tasks": [{"name": "out dir", "file": {"path": "{d}/out", "state": "directory"}}] + _tasks()}]
    theirs, ours = compare_plays(tmp_path, plays, FILES)
    keys = ("changed", "failed", "msg")
    mismatched = {}
    for (name, a), (_, o) in zip(theirs[0], ours[0], strict=False):
        if fields(a, keys) != fields(o, keys):
            mismatched[name] = (fields(a, keys), fields(o, keys))
    assert not mismatched
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]]
    ours_tree = {k.removeprefix("out/"): v for k, v in jtree(tmp_path / "o" / "proj").items() if k.startswith("out/")}
    assert ours_tree == {k.removeprefix("out/"): v for k, v in theirs.tree.items() if k.startswith("out/")}
    for path in ("main", "child", "dynamic", "loop_one", "loop_two", "lookup", "slash/sub/b.txt",
                 "noslash/tree/empty/.keep", "crlf"):
        assert ours_tree[path][0] == "file", path
