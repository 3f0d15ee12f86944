"""Where a conditional's value came from, for ansible-core 2.19's strict-conditional message.

ansible-core tags every value it loads with its origin (file, line, column) and names it when a
conditional's result is not a boolean: "Conditional result (True) was derived from value of
type 'str' at '/abs/site.yml:4:8'". The runtime does not carry origins on values; the compiler
records them per task instead, in the task's ``origins`` extension ({CONDITIONAL: ORIGIN}), and
only for the conditionals whose result may not be a boolean (a comparison, a test, ``not`` or
``| bool`` always is one, so most tasks get none):

* a conditional that reads one variable (``when: flag``, ``when: "{{ d.key }}"``) whose
  definition the compiler read (play, block, task and role vars, role defaults, vars files):
  where that value was written, as ansible-core keeps the tag on the value;
* ``a and b``, ``a or b``, ``a if c else b`` give one of their operands: {"": where the
  conditional was written, OPERAND: where that variable's value was written}, and the host
  names the operand whose value the result is;
* any other: where the conditional itself was written, as ansible-core tags a result that has
  no origin of its own with the expression's.

A variable the task passes to ansible-core's ``origin`` filter (``x | ansible._protomatter.origin``)
gets its entry too ({PATH: ORIGIN}), for the host's filter to name (runtime datatag.origin).
"""

from __future__ import annotations

import functools
import re
from typing import Any

from rustle_deploy.playbook.yamlsrc import Source, value_origin

__all__ = ["Cond", "condition_origins", "filter_origins", "written_at"]

_WHOLE = re.compile(r"^\{\{\s*(.*?)\s*\}\}$", re.S)
_PATH = re.compile(r"""^([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*|\[(?:'[^']*'|"[^"]*"|\d+)\])*)$""")
_STEP = re.compile(r"""\.([A-Za-z_]\w*)|\[(?:'([^']*)'|"([^"]*)"|(\d+))\]""")


class Cond(str):
    """A conditional's text (``when``) that knows where it was written (``origin``)."""

    __slots__ = ("origin",)
    origin: str | None

    def __new__(cls, text: str, origin: str | None) -> Cond:
        out = super().__new__(cls, text)
        out.origin = origin
        return out


def written_at(src: Source, container: Any, key: Any) -> str | None:
    """``/abs/file.yml:LINE:COLUMN`` of ``container[key]``'s value, as ansible-core names it."""
    found = src.origin(container, key, value=True)
    return None if found.line is None else f"{src.path}:{found.line}:{found.column}"


def condition_origins(conditions: list[Any], layers: list[dict[str, Any]],
                      named: dict[str, str] | None = None) -> dict[str, Any]:
    """{conditional text: origin} for the ``conditions`` (``Cond`` for those whose place is
    known) whose result may not be a boolean; ``layers``: the variables the compiler knows at
    the task, lowest precedence first; ``named``: where the last layer's variables came from,
    by name, for those no YAML the compile read holds (extra vars)."""
    out: dict[str, Any] = {}
    for cond in conditions:
        if not isinstance(cond, str):
            continue
        text = cond.strip()
        operands = _operands(text)
        if operands is None:
            continue
        written = getattr(cond, "origin", None)
        # an operand unknown here (None) may be a value set_fact gives while the play runs
        found = {p: _variable_origin(p, layers, named) for p in operands}
        if any(found.values()) or (operands and written):
            out[text] = {"": written, **found} if written else found
        elif origin := _variable_origin(text, layers, named) or written:
            out[text] = origin
    return out


# `PATH | ansible._protomatter.origin` (or tag_names, true_type) and `PATH is [not] ...tagged[_with]`
_ORIGIN_FILTER = re.compile(r"""([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[(?:'[^']*'|"[^"]*"|\d+)\])*)\s*"""
                            r"(?:\|\s*ansible\._protomatter\.(?:origin|tag_names|true_type)\b"
                            r"|is\s+(?:not\s+)?ansible\._protomatter\.tagged(?:_with)?\b)")


def filter_origins(texts: list[str], layers: list[dict[str, Any]],
                   named: dict[str, str] | None = None) -> dict[str, str | None]:
    """{variable path: origin} for each variable the task's ``texts`` pass to ansible-core's
    ``origin`` filter (``some_var | ansible._protomatter.origin``), where the compiler read it."""
    out: dict[str, str | None] = {}
    for text in texts:
        if "_protomatter." not in text:
            continue
        for match in _ORIGIN_FILTER.finditer(text):
            # None: unknown here, a value set_fact gives while the play runs may have one
            out[match.group(1)] = _variable_origin(match.group(1), layers, named) or out.get(match.group(1))
    return out


def _variable_origin(text: str, layers: list[dict[str, Any]], named: dict[str, str] | None = None) -> str | None:
    whole = _WHOLE.match(text)
    match = _PATH.match(whole.group(1) if whole else text)
    if match is None:
        return None
    name = match.group(1)
    holder = next((layer for layer in reversed(layers) if name in layer), None)
    if holder is None:
        return None
    value, key = holder[name], name
    for step in _STEP.finditer(match.group(2)):
        attr, single, double, index = step.groups()
        key = int(index) if index is not None else next(k for k in (attr, single, double) if k is not None)
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            return None
    found = value_origin(value, key)
    if found is None and named and holder is layers[-1]:
        return named.get(name)  # an extra var: its file's place of the variable, or the -e option
    return found


@functools.lru_cache(maxsize=4096)
def _operands(text: str) -> tuple[str, ...] | None:
    """None when the expression's result is a boolean whatever the variables hold; else the
    variables (as paths) of an ``and``/``or``/``if else`` whose value the result may be."""
    import jinja2
    from jinja2 import nodes

    whole = _WHOLE.match(text)
    expression = whole.group(1) if whole else text
    if not whole and ("{{" in text or "{%" in text):
        return ()
    try:
        node = jinja2.Environment().parse("{{ " + expression + " }}").body[0]
    except jinja2.TemplateSyntaxError:
        return ()
    if not isinstance(node, nodes.Output) or len(node.nodes) != 1:
        return ()

    def boolean(n: Any) -> bool:
        if isinstance(n, (nodes.Compare, nodes.Test, nodes.Not)):
            return True
        if isinstance(n, nodes.Const):
            return isinstance(n.value, bool)
        if isinstance(n, nodes.Filter):
            return n.name == "bool"
        if isinstance(n, (nodes.And, nodes.Or)):
            return boolean(n.left) and boolean(n.right)
        if isinstance(n, nodes.CondExpr):
            return n.expr2 is not None and boolean(n.expr1) and boolean(n.expr2)
        return False

    def path(n: Any) -> str | None:
        if isinstance(n, nodes.Name):
            return str(n.name)
        if isinstance(n, nodes.Getattr):
            base = path(n.node)
            return None if base is None else f"{base}.{n.attr}"
        if isinstance(n, nodes.Getitem) and isinstance(n.arg, nodes.Const):
            base = path(n.node)
            return None if base is None else f"{base}[{n.arg.value!r}]"
        return None

    def leaves(n: Any) -> list[Any]:
        if isinstance(n, (nodes.And, nodes.Or)):
            return leaves(n.left) + leaves(n.right)
        if isinstance(n, nodes.CondExpr):
            return leaves(n.expr1) + (leaves(n.expr2) if n.expr2 is not None else [])
        return [n]

    top = node.nodes[0]
    if boolean(top):
        return None
    if not isinstance(top, (nodes.And, nodes.Or, nodes.CondExpr)):
        return ()
    return tuple(p for p in (path(n) for n in leaves(top) if not boolean(n)) if p is not None)
