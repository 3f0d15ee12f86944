"""Ansible's templating of task arguments, variables and conditions.

* A string without ``{{``/``{%`` is returned untouched and never imports Jinja2.
* A string that is exactly ``{{ expr }}`` keeps the native type of ``expr``.
* ``when``/``changed_when``/``failed_when``/``until``/``assert that`` are bare expressions.
* Simple expressions (``foo is defined``, ``x == "y"``, ``r.rc != 0``, ``v | bool`` ...) are
  evaluated by ``expr.py`` without Jinja2; anything else goes to the vendored Jinja2, imported
  lazily on first need.
* Undefined variables raise ``TemplateError`` (Ansible's behaviour), except where a test such as
  ``is defined`` or a filter such as ``default`` handles them.

``VarScope`` is the layered variable mapping a task sees; facts are gathered only when a name
that is not otherwise defined (``ansible_*``, ``ansible_facts``) is looked up.

Host data is data, never a template (as ansible-core marks it unsafe): registered results,
facts, ``set_fact`` values and lookup results are stored through ``unsafe()``, which marks
every string in them ``UnsafeText`` (and their dicts and lists ``UnsafeDict``/``UnsafeList``).
``is_template`` is false for marked text, so it is never rendered again, and a conditional
never evaluates it as an expression (``Encountered untrusted template or expression.``). The mark survives
string operations the way ansible-core's does: a template or expression that read marked data
(or called a lookup) returns its result marked. Jinja2 runs sandboxed, so templates cannot
walk into Python's internals (``''.__class__``).
"""

import functools
import re
import sys
import types

from . import expr as _expr
from .filters import FILTERS, TESTS, FilterError, to_bool, unique

# a conditional that is one variable: ``name`` or ``{{ name }}``
_BARE_NAME = re.compile(r"^\s*(?:\{\{\s*)?([A-Za-z_]\w*)\s*(?:\}\}\s*)?$")
_SINGLE = re.compile(r"^\{\{\s*((?:(?!\{\{|\}\}|\{%|%\}).)+?)\s*\}\}\Z", re.S)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a template that is one variable, or an attribute or key of one: `{{ x }}`, `{{ a.b['c'] }}`
_VARIABLE_ONLY = re.compile(r"""^\{\{\s*[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[(?:'[^']*'|"[^"]*"|\d+)\])*\s*\}\}$""")
_SEGMENT = re.compile(r"\{\{\s*((?:(?!\{\{|\}\}).)+?)\s*\}\}", re.S)


class TemplateError(Exception):
    """A template or expression could not be evaluated (undefined variable, syntax, filter)."""

    @property
    def message(self):  # as ansible-core's errors (a captured one's, ansible._protomatter.dump_object)
        return str(self)


class BrokenConditional(TemplateError):
    """A conditional that is empty, not a string, or whose result is not a boolean
    (ansible-core 2.19's AnsibleBrokenConditionalError)."""


def broken_conditional_message(value, origin=None):
    """ansible-core 2.19's words for a conditional result that is not a boolean. Ansible names
    where the value came from (the file:line:column it tracks on every value); the runtime has
    the origin the compiler recorded for the conditional (the task's ``origins``: where the
    variable it reads was defined, else where it was written), or says '<unknown>', as Ansible
    does for a value without one."""
    return (f"Conditional result ({bool(value)}) was derived from value of type "
            f"{_expr.native_type_name(value)!r} at {origin or '<unknown>'!r}. "
            "Conditionals must have a boolean result.")


class UndefinedVariable(TemplateError):
    """The template used a variable (or key, attribute) that is not defined."""


class UndecryptableVariable(TemplateError):
    """A ``!vault`` value no secret opened was used; the template or expression that used it
    fails with "Error rendering KIND: " before it (``Templar._tracked``), as ansible-core's."""


class TemplateSecurityError(TemplateError):
    """A template reached for Python's internals (``''.__class__``); the sandbox refused."""


class UnsafeText(str):
    """Text from the host (a result, a fact, a file): never a template, never an expression."""

    __slots__ = ()
    _rustle_tagged = True  # type_debug names the base type, as ansible-core's does


class TrustedText(str):
    """Text made trusted as a template on purpose (``ansible._protomatter.apply_trust``): it
    stays trusted where host data is marked (``unsafe()`` leaves it as it is), as ansible-core's
    TrustedAsTemplate tag stays on the string it was put on (docs/playbooks.md, data tags)."""

    __slots__ = ()
    _rustle_tagged = True


class VaultedText(str):
    """The text of a ``!vault`` value the controller decrypted (``{"__rustle_vaulted": text}``
    in a plan), or the ``vault`` filter's result with ``wrap_object``: ansible-core's
    ``VaultedValue`` tag, which ``ansible._protomatter.tagged_with`` tests. Trusted as any
    text the playbook wrote; what is computed from it is plain text."""

    __slots__ = ()
    _rustle_tagged = True


class UnsafeDict(dict):
    """A dict from the host; its keys and values are marked too."""

    __slots__ = ()
    _rustle_tagged = True


class LazyFacts(UnsafeDict):
    """``ansible_facts``: the facts without their prefix, each gathered when it is first read
    (``facts(NAME)``: ``ansible_NAME``'s collector only), all of them once it is iterated,
    printed, compared or copied (``facts("ansible_facts")``). A read of
    ``ansible_facts.os_family`` so costs what ``ansible_os_family`` costs."""

    __slots__ = ("_source", "_all")

    def __init__(self, source):
        super().__init__()
        self._source = source
        self._all = False
        # what is gathered already (ansible_local at least): json's encoder, seeing no items in
        # the dict itself, would print {} without asking
        self._load("ansible_local")
        if not dict.__len__(self):
            self._load()

    def _load(self, key=None):
        if self._all or (key is not None and dict.__contains__(self, key)):
            return
        from .facts import unprefixed

        if key is None:
            self._all = True
            facts = self._source("ansible_facts")
        else:
            facts = self._source(key if key.startswith("ansible_") else "ansible_" + key)
        dict.update(self, unprefixed(facts))

    def __getitem__(self, key):
        self._load(key)
        return dict.__getitem__(self, key)

    def __contains__(self, key):
        self._load(key)
        return dict.__contains__(self, key)

    def get(self, key, default=None):
        self._load(key)
        return dict.get(self, key, default)

    def _whole(name):  # noqa: N805 - a method maker, run in the class body
        def method(self, *args):
            self._load()
            return getattr(dict, name)(self, *args)

        method.__name__ = name
        return method

    for _name in ("__iter__", "__len__", "__eq__", "__ne__", "__repr__", "keys", "items", "values", "copy"):
        locals()[_name] = _whole(_name)
    del _name, _whole

    def __reduce__(self):  # a copy (deepcopy, pickle) is a plain snapshot of every fact
        return (UnsafeDict, (dict(self.items()),))


class MaskedDict(UnsafeDict):
    """An ansible-core dataclass a controller plugin returned (``PluginInfo``), as the plugin
    host sends it (``{"__rustle_dataclass": NAME, "fields": {...}}``): host data, a dict of its
    fields whose type is named NAME (``type_debug``); ``dump_object`` makes it a plain dict."""

    __slots__ = ()
    _rustle_tagged = False  # type_debug names the subclass itself

    def __reduce__(self):  # a copy (deepcopy, pickle) of a class made at run time
        return masked, (type(self).__name__, dict(self))


_MASKED_TYPES = {}  # NAME -> its MaskedDict subclass


def masked(name, fields):
    """``fields`` as a MaskedDict whose type is named ``name``."""
    cls = _MASKED_TYPES.get(name)
    if cls is None:
        cls = _MASKED_TYPES[name] = type(name, (MaskedDict,), {"__slots__": ()})
    return cls(fields)


class UnsafeList(list):
    """A list from the host; its items are marked too."""

    __slots__ = ()
    _rustle_tagged = True


_UNSAFE = (UnsafeText, UnsafeDict, UnsafeList)

_MASKED = "__rustle_masked"  # compiler/plugin_host.py's MASKED


class MaskedView(UnsafeDict):
    """ansible-core's view of one of its objects that templates see otherwise (its
    ``_transform``): a task result's DeprecationSummary as a dict, a PluginInfo as a dict of its
    fields. ``unmask`` gives the object back (:func:`unmasked`); ``masked_type`` is its type's
    name, ``masked_fields`` its fields."""

    __slots__ = ("masked_type", "masked_fields")

    def __reduce__(self):
        return _view, (self.masked_type, dict(self), self.masked_fields)


class MaskedViewText(UnsafeText):
    """The same for an object ansible-core shows as text (a result's WarningSummary)."""

    def __reduce__(self):
        return _view, (self.masked_type, str(self), self.masked_fields)


_JSON_MASKED = [False]  # whether this process made a masked view or dataclass (masked_json's work)


def _view(name, view, fields):
    _JSON_MASKED[0] = True
    out = MaskedView(view) if isinstance(view, dict) else MaskedViewText(view)
    out.masked_type, out.masked_fields = name, fields
    return out


def _fields(pairs):
    """A dataclass's fields as masked_json writes them, ``[[NAME, VALUE], ...]``, in order."""
    return UnsafeDict((str(pair[0]), _from_json(pair[1])) for pair in pairs if isinstance(pair, list) and len(pair) == 2)


def _from_json(value):
    """An ansible-core object as JSON carries it (compiler/plugin_host.py ``masked_json``):
    ``{MASKED: NAME, "view": ..., "fields": [[NAME, VALUE], ...]}`` as a MaskedView (or
    MaskedViewText), ``{DATACLASS: NAME, "fields": [...]}`` as a MaskedDict named NAME; the rest
    host data."""
    if isinstance(value, dict) and set(value) == {_MASKED, "view", "fields"} and isinstance(value["fields"], list):
        return _view(str(value[_MASKED]), _from_json(value["view"]), _fields(value["fields"]))
    if isinstance(value, dict) and set(value) == {_DATACLASS, "fields"} and isinstance(value["fields"], list):
        _JSON_MASKED[0] = True
        return masked(str(value[_DATACLASS]), _fields(value["fields"]))
    if isinstance(value, dict):
        return UnsafeDict((unsafe(k), _from_json(v)) for k, v in value.items())
    if isinstance(value, list):
        return UnsafeList(_from_json(v) for v in value)
    return unsafe(value)


def masked_json(value):
    """``value`` with the ansible-core objects in it (masked views, dataclasses) as JSON carries
    them to the next phase (``unsafe`` reads them back); the value itself when this process made
    none."""
    if not _JSON_MASKED[0]:
        return value
    if isinstance(value, (MaskedView, MaskedViewText)):
        return {_MASKED: value.masked_type, "fields": [[k, masked_json(v)] for k, v in value.masked_fields.items()],
                "view": masked_json(dict(value)) if isinstance(value, dict) else str(value)}
    if isinstance(value, MaskedDict):
        return {_DATACLASS: type(value).__name__, "fields": [[k, masked_json(v)] for k, v in value.items()]}
    if type(value) in (dict, UnsafeDict):
        return {k: masked_json(v) for k, v in value.items()}
    if type(value) in (list, tuple, UnsafeList):
        return [masked_json(v) for v in value]
    return value


def unmasked(value, names):
    """``value`` with the ansible-core objects of the types ``names`` given back where their
    views are, at any depth (``ansible._protomatter.unmask``)."""
    if isinstance(value, (MaskedView, MaskedViewText)):
        if value.masked_type in names:
            return masked(value.masked_type, unmasked(value.masked_fields, names))
        if isinstance(value, MaskedViewText):
            return value
        return _view(value.masked_type, unmasked(dict(value), names), value.masked_fields)
    if isinstance(value, MaskedDict):
        return masked(type(value).__name__, unmasked(dict(value), names))
    if type(value) in (dict, UnsafeDict, list, UnsafeList, tuple):
        items = value.items() if isinstance(value, dict) else value
        made = [(k, unmasked(v, names)) for k, v in items] if isinstance(value, dict) else \
            [unmasked(v, names) for v in items]
        return (UnsafeList if type(value) is tuple else type(value))(made)
    return value


# ansible-core 2.19's words, exactly; its console adds the help text below, which the
# controller shows at -v (report.UNTRUSTED_HINT)
UNTRUSTED_CONDITION = "Encountered untrusted template or expression."


def _one_expression(body):
    """The expression of a template that is one ``{{ }}`` whose expression holds ``{{`` or
    ``}}`` in a string literal (``{{ x == "{{ y }}" }}``, which _SINGLE leaves out), so that it
    keeps its native type too; None for anything else."""
    if not (body.startswith("{{") and body.endswith("}}")) or body.count("{{") + body.count("}}") < 3:
        return None
    env = _environment()
    found = env.rustle_cache.get(("one", body), False)
    if found is False:
        from jinja2 import nodes

        found = None
        try:
            out = env.parse(body).body
        except Exception:  # noqa: BLE001 - a syntax error: rendering says it
            out = []
        if (len(out) == 1 and isinstance(out[0], nodes.Output) and len(out[0].nodes) == 1
                and not isinstance(out[0].nodes[0], nodes.TemplateData)):
            found = body[2:-2].strip()
        env.rustle_cache[("one", body)] = found
    return found


def rendered_untrusted(written, value):
    """``value`` (``written`` templated) with each string a template made marked as host data:
    ansible-core 2.19 trusts as a template or expression only text as the playbook holds it, or
    a variable's value passed through (``{{ var }}``), never text Jinja2 produced (so an assert
    ``that`` rendered inside a loop item is "untrusted")."""
    if isinstance(written, str):
        if type(value) is str and is_template(written) and not _VARIABLE_ONLY.match(written.strip()):
            return UnsafeText(value)
        return value
    if isinstance(written, list) and type(value) is list and len(written) == len(value):
        return [rendered_untrusted(w, v) for w, v in zip(written, value)]
    if isinstance(written, dict) and type(value) is dict and len(written) == len(value):
        return {k: rendered_untrusted(w, v) for w, (k, v) in zip(written.values(), value.items())}
    return value


CONDITIONAL_AS_TEMPLATE = "Conditionals should not be surrounded by templating delimiters such as {{ }} or {% %}."


def is_unsafe(value):
    return isinstance(value, _UNSAFE)


def unsafe(value):
    """``value`` marked as host data, recursively (what registered results, facts and lookups
    are stored as); numbers, booleans and None stay what they are, and so does text trusted on
    purpose (``apply_trust``)."""
    if isinstance(value, (_UNSAFE, TrustedText, VaultedText)):
        return value  # VaultedText: the vault filter's wrap_object result keeps its tag
    if isinstance(value, str):
        return UnsafeText(value)
    if isinstance(value, dict):
        if _MASKED in value or _DATACLASS in value:  # an ansible-core object, as a phase or the controller sends it
            return _from_json(value)
        return UnsafeDict((unsafe(k), unsafe(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return UnsafeList(unsafe(v) for v in value)
    return value


def unsafe_result(result):
    """A registered result marked as host data, except the loop items it holds
    (``results[N].item``), which keep the trust the loop gave them, as ansible-core keeps a loop
    item's tags in the result (``that: "{{ item.item.checks }}"`` over it is trusted)."""
    marked = unsafe(result)
    items = result.get("results") if isinstance(result, dict) else None
    if isinstance(items, list) and isinstance(marked.get("results"), list):
        for given, kept in zip(items, marked["results"]):
            if isinstance(given, dict) and "item" in given and isinstance(kept, dict):
                dict.__setitem__(kept, "item", given["item"])
    return marked


class _Taint:
    """Whether the template or expression being evaluated has read host data (a marked value
    from a VarScope, a lookup). One evaluation runs at a time (the runtime and the compiler
    template on one thread); ``Templar._tracked`` saves and restores it around each.
    ``depth``: how many evaluations are under way; an undecryptable value met inside another
    (a variable's nested template read by an expression) is named by the outermost, as
    ansible-core's "Error rendering expression: ..." for ``debug: var: d`` whose ``d`` holds one."""

    read = False
    depth = 0


_TAINT = _Taint()


class _Rendering:
    """The VarScope of the template being rendered: a lookup in a template imported without
    context (``{% from 'x.j2' import macro %}``) has none in its Jinja2 context, and ansible-core
    runs it over the task's variables all the same."""

    scope = None


_RENDERING = _Rendering()


class Undecryptable(UnsafeText):
    """A ``!vault`` value the controller could not decrypt (no vault secret opens it): reading
    it fails the task that reads it, with ansible-core's words; other tasks never notice."""

    __slots__ = ()

    def error(self):
        return UndecryptableVariable(LOCKED_USE + _LOCKED.get(self, "it is locked"))


LOCKED_USE = "Attempt to use undecryptable variable: "  # ansible-core's words


_LOCKED = {}  # Undecryptable -> why (a str subclass with __slots__ cannot hold it)


def _locked_in(value):
    """The first Undecryptable in ``value`` (through dicts and lists), or None."""
    if isinstance(value, Undecryptable):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _locked_in(item)
            if found is not None:
                return found
    return None


_VAULTED = "__rustle_vaulted"  # model.VAULTED_KEY


def untag(value):
    """A plan or run request as JSON carries a string marked ``!unsafe`` on the controller as
    ``{"__ansible_unsafe": text}`` (Ansible's JSON form): it comes back as host data, never a
    template, wherever it flows (vars, set_fact, register). A ``!vault`` value the controller
    could not decrypt comes as ``{"__ansible_vault": envelope, "__rustle_undecryptable": why}``
    and is an :class:`Undecryptable`."""
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get("__ansible_unsafe"), str):
            return UnsafeText(value["__ansible_unsafe"])
        if (len(value) == 2 and isinstance(value.get("__ansible_vault"), str)
                and isinstance(value.get("__rustle_undecryptable"), str)):
            locked = Undecryptable(value["__ansible_vault"])
            _LOCKED[locked] = value["__rustle_undecryptable"]
            return locked
        if len(value) == 1 and isinstance(value.get(_VAULTED), str):
            return VaultedText(value[_VAULTED])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def is_template(value):
    return (isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)
            and not isinstance(value, UnsafeText))


# a {{ }} block, its string literals skipped whole (a "}}" inside one does not end it)
_VAR_BLOCK = re.compile(r"""\{\{(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^'"}]|\}(?!\}))*\}\}""", re.S)
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'" + r'|"(?:[^"\\]|\\.)*"', re.S)


def render_marked(templar, text, scope):
    """``text`` rendered as ansible-core 2.19 renders a task's name: each ``{{ }}`` that cannot
    be rendered shows as ``<< error N - why >>``; an error other than an undefined value ends
    the text there (``template potentially truncated``), as does any error in a text with
    ``{% %}``. Returns the text and the errors' messages (empty when it rendered whole)."""
    try:
        return str(templar.template(text, scope)), []
    except TemplateError:
        pass
    errors = []

    def marker(exc):
        errors.append(str(exc))  # a Python error's says "Error rendering template: ..." (_error)
        return f"<< error {len(errors)} - {errors[-1]} >>"

    def truncated():
        errors.append("template potentially truncated")
        return f"<< error {len(errors)} - {errors[-1]} >>"

    if "{%" in text or "{#" in text:
        try:
            templar.template(text, scope)
        except TemplateError as exc:
            return marker(exc) + truncated(), errors
    parts, last = [], 0
    for match in _VAR_BLOCK.finditer(text):
        parts.append(text[last:match.start()])
        last = match.end()
        try:
            value = templar.template(match.group(), scope)
            parts.append("" if value is None else str(value))
        except TemplateError as exc:
            parts.append(marker(exc))
            if not isinstance(exc, UndefinedVariable):
                parts.append(truncated())
                return "".join(parts), errors
    parts.append(text[last:])
    return "".join(parts), errors


def escape_backslashes(text):
    """ansible-core's escape_backslashes for a template written in YAML (task arguments,
    variables; not template files, not conditionals): a backslash in a string literal inside
    {{ }} stands for itself (``regex_search(r, '\\1')`` receives backslash-one, and
    ``'a\\nb'`` is four characters). Text inside {% raw %} is left as it is."""
    if "\\" not in text or "{% raw" in text or "{%- raw" in text:
        return text
    return _VAR_BLOCK.sub(lambda m: _STRING.sub(lambda s: s.group().replace("\\", "\\\\"), m.group()), text)


def has_template(value):
    if isinstance(value, str):
        return is_template(value)
    if isinstance(value, _UNSAFE):
        return False
    if isinstance(value, dict):
        return any(has_template(k) or has_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(has_template(v) for v in value)
    return False


_UNDEFINED_TERM = object()  # VarScope._lenient: what is left of a value that is all undefined


def _omit_undefined(value):
    """``value`` with its undefined values left out of every dict, list and tuple in it
    (ansible-core's first_found, under with_first_found, drops them the same way)."""
    if isinstance(value, dict):
        return type(value)((k, _omit_undefined(v)) for k, v in value.items() if not _expr.is_undefined(v))
    if isinstance(value, (list, tuple)):
        return type(value)(_omit_undefined(v) for v in value if not _expr.is_undefined(v))
    return value


_INTERPRETER_VAR = re.compile(r"^ansible_.*_interpreter$")


class VarScope:
    """Layered variables (lowest precedence first) with lazy facts and lazy templating.

    Behaves as a read-only mapping. ``facts`` is a callable returning the prefixed facts dict
    (gathered on first call); ``special`` maps names computed on demand (``hostvars``).
    """

    def __init__(self, layers, templar, facts=None, special=None):
        self.layers = layers
        self.templar = templar
        self._facts = facts
        self._special = special or {}
        self._depth = 0

    def child(self, *layers):
        return VarScope(self.layers + [dict(layer) for layer in layers if layer], self.templar, self._facts,
                        self._special)

    def raw(self, key):
        for layer in reversed(self.layers):
            if key in layer:
                return layer[key]
        if key == "vars":
            return self
        if key in self._special:
            return self._special[key]()
        # a module's fact named like ansible_<x>_interpreter stays in ansible_facts (as
        # <x>_interpreter) but is no variable: ansible-core's clean_facts drops it
        if self._facts is not None and key.startswith("ansible_") and not _INTERPRETER_VAR.match(key):
            if key == "ansible_facts":
                return LazyFacts(self._facts)  # its values are marked already
            facts = self._facts(key)
            if key in facts:
                return facts[key]
        raise KeyError(key)

    def __getitem__(self, key):
        value = self.raw(key)
        if key == FOUND_TERMS and isinstance(value, list):
            return self._defined(value)
        if key == FOUND_TERMS and has_template(value):  # one template: its undefined values left out
            return _omit_undefined(self.templar.template(value, self))
        if _LOCKED:  # a !vault value no secret opened: reading it (or what holds it) fails
            locked = _locked_in(value)
            if locked is not None:
                raise locked.error()
        if isinstance(value, _UNSAFE):
            _TAINT.read = True  # what is computed from it is host data too
            return value
        if has_template(value):
            if self._depth > 30:
                raise TemplateError("Recursive loop detected in template: maximum recursion depth exceeded")  # ansible-core's words
            self._depth += 1
            try:
                return self.templar.template(value, self)
            finally:
                self._depth -= 1
        return value

    def _defined(self, terms):
        """with_first_found's terms, each rendered on its own: one that is undefined is left
        out, as ansible-core's first_found ignores undefined terms."""
        return [t for t in (self._lenient(term) for term in terms) if t is not _UNDEFINED_TERM]

    def _lenient(self, value):
        """``value`` rendered with its undefined parts left out, as ansible-core's lazy
        containers leave them to first_found (``files: "{{ files }}"`` over a list var with an
        undefined item keeps the other items); _UNDEFINED_TERM when all of it is undefined."""
        if isinstance(value, dict):
            pairs = ((k, self._lenient(v)) for k, v in value.items())
            return type(value)((k, v) for k, v in pairs if v is not _UNDEFINED_TERM)
        if isinstance(value, (list, tuple)):
            return type(value)(v for v in (self._lenient(v) for v in value) if v is not _UNDEFINED_TERM)
        if not has_template(value):
            return value
        try:
            return _omit_undefined(self.templar.template(value, self))
        except TemplateError as exc:
            if "is undefined" not in str(exc):
                raise
        single = _SINGLE.match(value.strip())
        name = single.group(1).strip() if single else ""
        if _IDENT.match(name) and name in self and isinstance(self.raw(name), (dict, list)):
            return self._lenient(self.raw(name))  # a variable holding templates: item by item
        return _UNDEFINED_TERM

    def __contains__(self, key):
        try:
            self.raw(key)
        except KeyError:
            return False
        return True

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def keys(self):
        seen = set()
        for layer in self.layers:
            seen.update(layer)
        return sorted(seen, key=str)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def items(self):
        return [(k, self[k]) for k in self.keys()]

    def values(self):
        return [self[k] for k in self.keys()]

    def flat(self):
        """A plain dict of every layered variable, templated (no facts), and ``hostvars``: what
        ansible-core 2.19 gives for ``{{ vars }}`` or ``{{ hostvars[host] }}`` as a whole value."""
        out = dict(self.items())
        for name, make in self._special.items():
            out.setdefault(name, make())
        return out


_ENV = None
_VAULT_MARKER = None  # the environment's VaultMarker class, once it exists
_ERROR_MARKER = None  # its ErrorMarker class


def _environment():
    """The shared Jinja2 environment with Ansible's filters and tests (imports Jinja2)."""
    global _ENV
    if _ENV is not None:
        return _ENV
    try:
        import jinja2
        from jinja2.sandbox import SandboxedEnvironment
    except ImportError as exc:
        raise TemplateError(
            f"this artifact carries no Jinja2, but an expression needs it ({exc}); "
            "hint: rebuild the artifact with a rustle-deploy that marks this task as templated"
        ) from exc
    from collections.abc import Mapping

    class Environment(SandboxedEnvironment):
        """No attribute starting with ``_``, no Python internals; ``vars`` and a host's
        ``hostvars`` entry are mappings, not objects whose insides a template may reach."""

        def is_safe_attribute(self, obj, attr, value):
            if isinstance(obj, VarScope):
                return attr in ("get", "keys", "items", "values")
            return SandboxedEnvironment.is_safe_attribute(self, obj, attr, value)

        def _generate(self, source, name, filename, defer_init=False):
            # the string constants written in the expression that hold a template: a lookup
            # renders those of its terms, and no other string (_lookup)
            for node in source.find_all(jinja2.nodes.Const):
                if isinstance(node.value, str) and is_template(node.value):
                    node.value = Written(node.value)
            return SandboxedEnvironment._generate(self, source, name, filename, defer_init)

    class AnsibleUndefined(jinja2.StrictUndefined):
        """Chained attribute access stays undefined (``a.b.c is defined`` is False)."""

        def __getattr__(self, name):
            if name[:2] == "__":
                raise AttributeError(name)
            return self

        def __getitem__(self, key):
            return self

        @property
        def _undefined_message(self):
            if self._undefined_hint is None and self._undefined_obj is not jinja2.runtime.missing:
                return _expr.no_attribute(self._undefined_obj, self._undefined_name)
            return jinja2.StrictUndefined._undefined_message.fget(self)

    class RaisingMarker(AnsibleUndefined):
        """A variable whose any use raises ``error`` (an error, not an undefined value: ``debug:
        var:`` shows no "VARIABLE IS NOT DEFINED!"); only a test (``is defined``) looks at it
        without using it. An undefined value's class, so that Jinja2 and the filters that take
        undefined values leave it alone, but no attribute of it is another undefined value."""

        def __init__(self, error):
            super().__init__(hint=str(error))
            self.error = error

        def _fail_with_undefined_error(self, *args, **kwargs):
            raise self.error

        def __getattr__(self, name):
            if name[:2] == "__":
                raise AttributeError(name)
            self._fail_with_undefined_error()

        __iter__ = __str__ = __len__ = __eq__ = __ne__ = __bool__ = __hash__ = __contains__ = \
            __getitem__ = __call__ = _fail_with_undefined_error

    class VaultMarker(RaisingMarker):
        """A variable that holds a ``!vault`` value no secret opened (ansible-core's
        VaultExceptionMarker): any use fails with why, but the ``unvault`` filter takes its
        ``envelope`` (None when the value only holds one) and decrypts it with the password given."""

        def __init__(self, hint, envelope=None):
            super().__init__(UndecryptableVariable(hint))
            self.envelope = envelope

    class ErrorMarker(RaisingMarker):
        """A variable whose value failed to template, read by a text that captures errors
        (``_CAPTURING``): a ``_CAPTURING`` filter's argument gives its error's marker; any other
        use fails with that error, as reading the variable would have."""

    class JinjaVars(Mapping):
        lazy = False  # a variable whose value fails to template is an ErrorMarker

        def __init__(self, scope, globals_):
            self.scope = scope
            self.globals = globals_

        def __getitem__(self, key):
            try:
                return self.scope[key]
            except KeyError:
                return self.globals[key]
            except TemplateError as exc:
                # read lazily, as ansible-core does: it fails where it is used
                raw = _raw_or_none(self.scope, key)
                if not _LOCKED or _locked_in(raw) is None:
                    if self.lazy:
                        return ErrorMarker(exc)
                    raise
                return VaultMarker(str(exc), str(raw) if isinstance(raw, Undecryptable) else None)

        def __contains__(self, key):
            return key in self.scope or key in self.globals

        def __iter__(self):
            return iter(list(self.scope.keys()) + list(self.globals))

        def __len__(self):
            return len(self.scope) + len(self.globals)

    class EmbeddedLoader(jinja2.BaseLoader):
        """``{% include %}``/``{% import %}``/``{% extends %}`` over the templates the compiler
        embedded for the task being rendered (``SEARCH_VAR`` names them)."""

        def __init__(self):
            self.names = {}
            self.read_file = None

        def get_source(self, environment, template):
            sha = self.names.get(template)
            if sha is None or self.read_file is None:
                raise jinja2.TemplateNotFound(template)
            source = self.read_file(sha).decode("utf-8", "surrogateescape")
            names = self.names
            return source, template, lambda: self.names is names or self.names.get(template) == sha

    # Ansible's environment: trim_blocks on, Jinja2's keep_trailing_newline off (the
    # template's own trailing newlines are put back after rendering, see _trailing_newlines)
    # ansible-core 2.19 drops None-valued output nodes (``a{{ none }}b`` is ``ab``, not ``aNoneb``)
    from jinja2.compiler import CodeGenerator

    Environment.code_generator_class = _capturing(CodeGenerator)
    env = Environment(undefined=AnsibleUndefined, keep_trailing_newline=False, trim_blocks=True,
                      autoescape=False, loader=EmbeddedLoader(), finalize=_none_as_nothing)
    env.rustle_capture = _capture
    env.rustle_written = Written
    for name in _LAZY_FILTERS:
        env.filters[name] = _listed(env.filters[name])
    env.filters.update(FILTERS)
    env.filters["unique"] = functools.partial(unique, env)
    env.tests.update(TESTS)
    for table in (env.filters, env.tests):  # the fully qualified names too
        table.update({"ansible.builtin." + k: v for k, v in list(table.items())})
    from . import datatag

    datatag.install(env.filters, env.tests)  # ansible._protomatter's, and from_json's profiles
    for name in ("from_json", "ansible.builtin.from_json"):
        env.filters[name] = _json_errors(env.filters[name])

    @jinja2.pass_context
    def lookup(context, name, /, *terms, **kw):
        return _lookup(name, *terms, _context=context, **kw)

    @jinja2.pass_context
    def query(context, name, /, *terms, **kw):
        return _lookup(name, *terms, _context=context, wantlist=True, **kw)

    @jinja2.pass_context
    def fileglob(context, pathname):
        return _lookup("fileglob_filter", pathname, _context=context, wantlist=True)

    env.filters["fileglob"] = env.filters["ansible.builtin.fileglob"] = fileglob
    for name, fn in list(env.filters.items()):  # Jinja2's, the runtime's, ansible._protomatter's
        env.filters[name] = _named(name if "." in name else "ansible.builtin." + name, fn)
    env.globals.update(lookup=lookup, query=query, q=query, now=now, undef=undef)
    env.rustle_vars = JinjaVars
    # Jinja2 reads a template's variables where its code starts: for a text with a _CAPTURING
    # filter a variable's error waits for its use, which the filter may capture
    env.rustle_lazy_vars = type("LazyJinjaVars", (JinjaVars,), {"lazy": True})
    global _ERROR_MARKER
    _ERROR_MARKER = ErrorMarker
    global _VAULT_MARKER
    _VAULT_MARKER = VaultMarker
    env.rustle_cache = {}
    env.rustle_overlays = {}
    _ENV = env
    _add_plugins(env)
    return env


# the playbook's and roles' own filters and tests that run here (kind -> name -> function),
# loaded from the files the compiler embedded (the plan's ``plugins.files``)
LOADED = {"filter": {}, "test": {}}


def register_plugins(plugins):
    """Offer the playbook's and roles' own plugins (``{"lookup"|"filter"|"test": [NAME, ...]}``,
    the plan's ``plugins``): a filter or test whose file the compiler embedded (``files``) runs
    here; each other call is answered with what the controller computed for it."""
    from . import lookups

    for kind in ("lookup", "filter", "test"):
        lookups.PLUGINS[kind] = lookups.PLUGINS[kind] | frozenset((plugins or {}).get(kind) or ())
    for entry in (plugins or {}).get("files") or ():
        for name, fn in _load_plugin_file(entry).items():
            LOADED[entry["kind"]].setdefault(name, fn)  # the first directory wins, as in Ansible
    if _ENV is not None:
        _add_plugins(_ENV)


def _load_plugin_file(entry):
    """The filters (or tests) of one embedded plugin file, as ansible-core loads it: the module
    runs under the name Ansible gives it and its ``FilterModule().filters()`` (``TestModule``)
    is the table. A file that fails to load gives functions that fail with its error."""
    kind, name = entry["kind"], entry["module"]
    try:
        for support in entry.get("support") or ():  # a collection's module_utils it imports
            _exec_module(support["module"], support["path"], support["source"])
        module = _exec_module(name, entry["path"], entry["source"])
        holder = getattr(module, "FilterModule" if kind == "filter" else "TestModule")
        table = dict(getattr(holder(), "filters" if kind == "filter" else "tests")())
    except Exception as exc:  # noqa: BLE001 - each call reports it
        message = f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc)

        def broken(*args, **kwargs):
            raise FilterError(f"the {kind} plugin file {entry['path']} failed to load: {message}")

        return {n: broken for n in entry.get("names") or ()}
    prefix = entry.get("prefix") or ""  # a collection's: called as ns.coll.NAME
    return {prefix + n: _plugin_call(kind, prefix + n, fn) for n, fn in table.items() if callable(fn)}


def _exec_module(name, path, source):
    """The module ``name`` run from ``source`` once (``sys.modules`` keeps it), its parent
    packages made first so that its own and its importers' absolute and relative imports of
    the embedded modules resolve (``ansible_collections.ns.coll.plugins.module_utils.x``)."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    parts = name.split(".") if name.startswith("ansible_collections.") else [name]  # never a fake ansible
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if parent not in sys.modules:
            package = types.ModuleType(parent)
            package.__path__ = []
            sys.modules[parent] = package
    module = types.ModuleType(name)
    module.__file__ = path
    if len(parts) > 1:
        module.__package__ = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        if path.endswith("__init__.py"):
            module.__path__ = []
    sys.modules[name] = module
    try:
        exec(compile(source, path, "exec"), module.__dict__)  # noqa: S102 - the playbook's or a collection's plugin
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _plugin_call(kind, name, fn):
    """An embedded plugin function whose failure names it, in ansible-core 2.19's words."""

    @functools.wraps(fn)  # keeps jinja2's pass_context / pass_environment marks
    def call(*args, **kwargs):
        try:
            value = fn(*args, **kwargs)
        except FilterError as exc:
            if str(exc).startswith(f"The {kind} plugin "):
                raise
            raise FilterError(f"The {kind} plugin '{name}' failed: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - the plugin's own failure fails the template
            raise FilterError(f"The {kind} plugin '{name}' failed: {exc}") from exc
        return bool(value) if kind == "test" else value

    return call


def _add_plugins(env):
    import jinja2

    from .lookups import ANSIBLE_RUNS, PLUGINS

    def proxy(kind, name):
        @jinja2.pass_context
        def call(context, *args, **kw):
            return _lookup(kind + ":" + name, *args, _context=context, wantlist=True, **kw)[0]

        @jinja2.pass_context
        def test(context, *args, **kw):
            return bool(call(context, *args, **kw))

        return test if kind == "test" else call

    for kind, table in (("filter", env.filters), ("test", env.tests)):
        for name in PLUGINS[kind]:
            written = [name, "ansible.builtin." + name] if name in ANSIBLE_RUNS[kind] else [name]
            for key in written:
                if key not in table or getattr(table[key], "rustle_plugin", False):
                    table[key] = LOADED[kind].get(name) or proxy(kind, name)
                    table[key].rustle_plugin = True


def now(utc=False, fmt=None):
    """Ansible's ``now()`` global: the current local (or UTC) time, or it formatted."""
    import datetime

    if utc:
        value = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    else:
        value = datetime.datetime.now()
    return value.strftime(fmt) if fmt else value


def undef(hint=None):
    """Ansible's ``undef()`` global: an undefined value, with ``hint`` as its message."""
    if hint is not None and not isinstance(hint, str):  # a Python error: "Error rendering template: ..."
        raise TypeError(f"The 'hint' argument must be of type 'str' or 'NoneType', not {type(hint).__name__!r}.")
    return _environment().undefined(hint=hint or "Mandatory variable has not been overridden")


# filters that receive what their argument's evaluation raised instead of failing with it:
# ansible-core's captured exception markers (``x | ansible._protomatter.dump_object``)
_CAPTURING = frozenset(("ansible._protomatter.dump_object", "ansible._protomatter.true_type"))


class CapturedExceptionMarker:
    """ansible-core's CapturedExceptionMarker: the error a ``_CAPTURING`` filter's argument
    raised, which that filter shows (``dump_object`` as ``{"exception": ...}``)."""

    def __init__(self, exception):
        # a Python error in its own words: ansible-core captures the error itself, which the
        # task's failure would word "Error rendering template: ..."
        self.exception = exception if isinstance(exception, TemplateError) else _error(exception, rendering=False)


def _capture(evaluate):
    """``evaluate()``, or the marker of what it raised (or of the variable that failed); an
    undefined value is no error there (ansible-core's UndefinedMarker): it stays undefined."""
    jinja2 = sys.modules["jinja2"]
    try:
        value = evaluate()
    except (UndefinedVariable, jinja2.UndefinedError):
        raise
    except Exception as exc:  # noqa: BLE001 - any error is captured, as ansible-core's markers
        return CapturedExceptionMarker(exc)
    if _ERROR_MARKER is not None and isinstance(value, _ERROR_MARKER) \
            and not isinstance(value.error, UndefinedVariable):
        return CapturedExceptionMarker(value.error)
    return value


def _vars_class(env, text):
    """The JinjaVars class that ``text`` reads its variables through."""
    return env.rustle_lazy_vars if any(name in text for name in _CAPTURING) else env.rustle_vars


class Written(str):
    """A string constant written in a Jinja2 expression that holds a template (``lookup('pipe',
    'echo {{ x }}')``): ansible-core 2.19 renders such constants among a lookup's terms, and no
    other string (a value computed, read from a variable, a host or a registered result is data)."""

    __slots__ = ()


def _written(value):
    if isinstance(value, Written):
        return True
    if isinstance(value, dict):
        return any(_written(k) or _written(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_written(v) for v in value)
    return False


def _written_source(value):
    """Python source for constant ``value`` that makes its Written strings Written again."""
    if isinstance(value, Written):
        return f"environment.rustle_written({str(value)!r})"
    if isinstance(value, list):
        return "[" + ", ".join(map(_written_source, value)) + "]"
    if isinstance(value, tuple):
        return "(" + "".join(_written_source(v) + ", " for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_written_source(k)}: {_written_source(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _render_written(templar, value, scope):
    """The Written strings of a lookup's term rendered (in a list or dict too), the rest as it is."""
    if isinstance(value, Written):
        return _lookup_term(templar, str(value), scope)
    if isinstance(value, dict):
        return {k: _render_written(templar, v, scope) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_render_written(templar, v, scope) for v in value)
    return value


def _capturing(generator):
    """Jinja2 code generator class ``generator``, whose code for ``X | FILTER`` (a ``_CAPTURING``
    filter) evaluates X through ``_capture``: the filter receives an error's marker."""

    class Capturing(generator):
        def visit_Const(self, node, frame):
            value = node.as_const(frame.eval_ctx)
            if not _written(value):
                return super().visit_Const(node, frame)
            self.write(_written_source(value))  # a Written constant stays one when the code runs
            return None

        def visit_Filter(self, node, frame):
            if node.name not in _CAPTURING or node.node is None:
                return super().visit_Filter(node, frame)
            with self._filter_test_common(node, frame, True):
                self.write("environment.rustle_capture(lambda: ")
                self.visit(node.node, frame)
                self.write(")")
            return None

    return Capturing


# What a template may change of Jinja2's syntax: task options (template module and lookup) and a
# first line ``#jinja2: key: value, ...`` in the template itself (which wins), as in Ansible.
OVERRIDE_DEFAULTS = {
    "block_start_string": "{%", "block_end_string": "%}",
    "variable_start_string": "{{", "variable_end_string": "}}",
    "comment_start_string": "{#", "comment_end_string": "#}",
    "line_statement_prefix": None, "line_comment_prefix": None,
    "trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n",
    "keep_trailing_newline": False,
}
JINJA2_OVERRIDE = "#jinja2:"
# the compiled task variable naming what the compiler embedded for it (docs/artifact.md)
SEARCH_VAR = "__rustle_search"
# set while an include's host-dependent file name renders: ``first_found`` term -> the file the
# compiler found for it (the host cannot search the controller's files itself)
FOUND_VAR = "__rustle_found"
# the task variable holding with_first_found's terms (playbook/compile.py): its undefined terms
# are left out
FOUND_TERMS = "__rustle_with_found_terms"


TEMPLATE_SYNTAX_OPTIONS = ("trim_blocks", "lstrip_blocks", "block_start_string", "block_end_string",
                           "variable_start_string", "variable_end_string", "comment_start_string",
                           "comment_end_string")


def template_overrides(args):
    """The template module's syntax options in ``args`` as render overrides (``newline_sequence``
    as Ansible accepts it, escaped or not); TemplateError for a bad one, in Ansible's words."""
    for key in ("newline_sequence",) + TEMPLATE_SYNTAX_OPTIONS[2:]:
        if args.get(key) is not None and not isinstance(args[key], str):
            raise TemplateError(f"{key} is expected to be a string, but got {type(args[key])} instead")
    newline = args.get("newline_sequence", "\n")
    newline = {"\\n": "\n", "\\r": "\r", "\\r\\n": "\r\n"}.get(newline, newline)
    if newline not in ("\n", "\r", "\r\n"):
        raise TemplateError("newline_sequence needs to be one of: \n, \r or \r\n")
    overrides = {"newline_sequence": newline}
    for option in TEMPLATE_SYNTAX_OPTIONS:
        if option in args:
            value = args[option]
            overrides[option] = to_bool(value) if option.endswith("blocks") else value
    return overrides


def split_overrides(text, overrides=None):
    """``text`` without its ``#jinja2:`` line, and the syntax options it renders with
    (``overrides`` updated by that line); Ansible's rules and messages."""
    merged = dict(overrides or {})
    if not text.startswith(JINJA2_OVERRIDE):
        return text, merged
    import ast

    eol = text.find("\n")
    if eol == -1:
        raise TemplateError(f"Syntax error in template: Missing newline after {JINJA2_OVERRIDE!r} override.")
    line, text = text[len(JINJA2_OVERRIDE):eol], text[eol + 1:]
    for pair in line.split(","):
        if not pair.strip():
            raise TemplateError(f"Syntax error in template: Empty {JINJA2_OVERRIDE!r} override pair not allowed.")
        if ":" not in pair:
            raise TemplateError(f"Syntax error in template: Missing key-value separator `:` in {JINJA2_OVERRIDE!r} override pair {pair!r}.")
        key, value = pair.split(":", 1)
        key = key.strip()
        if key not in OVERRIDE_DEFAULTS:
            raise TemplateError(f"Syntax error in template: Invalid {JINJA2_OVERRIDE!r} override key {key!r}.")
        try:
            merged[key] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError) as exc:
            raise TemplateError(f"Syntax error in template: Invalid {JINJA2_OVERRIDE!r} override value for {key!r}: {exc}") from exc
    return text, merged


def _none_as_nothing(value):
    """Jinja2's finalize for text output: a None-valued node writes nothing, as in ansible-core
    2.19 (its _flatten_nodes skips them)."""
    return "" if value is None else value


def _native_concat(nodes):
    """ansible-core 2.19's concat: None-valued nodes left out; no output is None, one node is
    its value, more are text."""
    nodes = [n for n in nodes if n is not None]
    if not nodes:
        return None
    if len(nodes) == 1:
        return nodes[0]
    return "".join(str(v) for v in nodes)


def _effective(overrides):
    """The overrides that differ from Ansible's defaults, as a sorted tuple (a cache key)."""
    return tuple(sorted((k, v) for k, v in (overrides or {}).items()
                        if k in OVERRIDE_DEFAULTS and v != OVERRIDE_DEFAULTS[k]))


def _trailing_newlines(text):
    return len(text) - len(text.rstrip("\n"))


def _restore_newlines(source, result, newline):
    """Ansible renders with Jinja2's keep_trailing_newline off, then appends the newlines the
    template ended with that the result lacks (so ``{% include %}`` text keeps none)."""
    missing = _trailing_newlines(source) - _trailing_newlines(result)
    return result + newline * missing if missing > 0 else result


# Jinja2's filters that return generators: ansible-core 2.19 hands their results on as lists,
# so `select(...) | default([x], true)` sees an empty one as false and errors surface in the task
_LAZY_FILTERS = ("map", "select", "reject", "selectattr", "rejectattr")


def _named(name, fn):
    """Filter ``fn`` (fully qualified ``name``) whose failure names it, as ansible-core 2.19
    names any failing filter plugin, Jinja2's own too (``1 | join``: "The filter plugin
    'ansible.builtin.join' failed: 'int' object is not iterable"); an undefined value's error
    and the runtime's template errors (a variable read on the way) stay as they are."""

    @functools.wraps(fn)  # keeps jinja2's pass_context / pass_environment marks
    def named(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (TemplateError, RecursionError):
            raise
        except Exception as exc:  # noqa: BLE001 - any error of a filter plugin, as ansible-core
            jinja2 = sys.modules.get("jinja2")
            msg = getattr(exc, "message", None) or str(exc)
            if (jinja2 is not None and isinstance(exc, jinja2.UndefinedError)) or msg.startswith("The filter plugin "):
                raise
            raise FilterError(f"The filter plugin '{name}' failed: {msg}") from exc

    return named


def _json_errors(fn):
    """``fn`` (from_json), whose text that is no JSON fails as a FilterError (``_named``)."""

    @functools.wraps(fn)  # keeps jinja2's pass_context / pass_environment marks
    def parsed(*args, **kwargs):
        import json

        try:
            return fn(*args, **kwargs)
        except json.JSONDecodeError as exc:
            raise FilterError(str(exc)) from exc

    return parsed


def _listed(fn):
    """Jinja2's filter ``fn`` whose generator is made a list (its errors, an unknown test's
    "No test named 'nope'." among them, raised in the filter's call: ``_named`` names it)."""

    @functools.wraps(fn)  # keeps jinja2's pass_context / pass_environment marks
    def listed(*args, **kwargs):
        value = fn(*args, **kwargs)
        if not isinstance(value, types.GeneratorType):
            return value
        from jinja2 import Undefined  # loaded: only Jinja2 calls these filters

        out = list(value)
        for item in out:  # ansible-core 2.19 fails here, not when the list is used
            if isinstance(item, Undefined):
                item._fail_with_undefined_error()
        return out

    return listed


def _lookup(name, /, *terms, _context=None, **kw):
    """A lookup plugin (``lookups.py``), run on the host; the result is host data (marked)."""
    from .lookups import LookupError_, run

    _TAINT.read = True
    scope = getattr(_context.parent, "scope", None) if _context is not None else None
    if scope is None:
        scope = _RENDERING.scope
    templar = scope.templar if scope is not None else None
    if templar is not None and any(_written(t) for t in terms):
        # ansible-core 2.19 renders the string constants written in the call that hold a
        # template, in a list or dict term too (`lookup('pipe', 'echo {{ x }}')`,
        # `lookup('list', ['{{ 1 }}'])`), and no other string: a value computed or read (a
        # host's output, a registered result, `'{' ~ '{ x }}'`) is data; its name is never rendered
        terms = tuple(_render_written(templar, t, scope) for t in terms)
    jinja2 = sys.modules.get("jinja2")
    undefined = jinja2.Undefined if jinja2 is not None else ()
    if name in ("filter:unvault", "filter:ansible.builtin.unvault") and terms:
        # ansible-core's unvault takes an undecryptable !vault value and opens it with the
        # password it is given (on the controller, with the envelope)
        envelope = getattr(terms[0], "envelope", None) if isinstance(terms[0], undefined) else None
        if isinstance(envelope, str):
            terms = (envelope, *terms[1:])
    marker = next((v for v in [*terms, *kw.values()] if isinstance(v, undefined)), None)
    if marker is not None:
        if not _controller_plugin(name):
            return marker  # ansible-core's plugins take no marker: the lookup is undefined too
        # the playbook's own plugin: ansible-core passes the marker when the plugin sets
        # `accept_args_markers` (compiler/plugin_host.py decides)
        terms = tuple(_marker_out(t) for t in terms)
        kw = {k: _marker_out(v) for k, v in kw.items()}
    try:
        return _markers_back(unsafe(run(name, terms, scope, templar, **kw)))
    except LookupError_ as exc:
        raise FilterError(str(exc)) from exc


def _raw_or_none(scope, key):
    try:
        return scope.raw(key)
    except (KeyError, AttributeError):
        return None


def _lookup_term(templar, term, scope):
    """Trusted text in a lookup's term (or a conditional's constant) rendered; undefined as a
    Jinja2 undefined value, ansible-core's marker."""
    try:
        return templar.template(term, scope)
    except UndefinedVariable as exc:
        return _environment().undefined(hint=str(exc))


_MARKER = "__rustle_undefined"  # an undefined value sent to or from the controller's plugin host
_DATACLASS = "__rustle_dataclass"  # compiler/plugin_host.py's DATACLASS


def _controller_plugin(name):
    from .lookups import CONTROLLER, PLUGINS, _short

    name = _short(name)
    return name in PLUGINS["lookup"] and name not in CONTROLLER


def _marker_out(value):
    jinja2 = sys.modules.get("jinja2")
    if jinja2 is not None and isinstance(value, jinja2.Undefined):
        return {_MARKER: value._undefined_message}
    return value


def _markers_back(value):
    """``{_MARKER: MESSAGE}`` in a plugin's answer (an item of its list) as an undefined value,
    ``{_VAULTED: TEXT}`` (the ``vault`` filter's ``wrap_object``) as VaultedText, ``{_DATACLASS:
    NAME, "fields": {...}}`` (an ansible-core dataclass) as a MaskedDict named NAME."""
    if isinstance(value, dict) and set(value) == {_MARKER}:
        return _environment().undefined(hint=str(value[_MARKER]))
    if isinstance(value, dict) and set(value) == {_VAULTED}:
        return VaultedText(value[_VAULTED])
    if isinstance(value, dict) and set(value) == {_DATACLASS, "fields"} and isinstance(value["fields"], dict):
        return masked(str(value[_DATACLASS]), {k: _markers_back(v) for k, v in value["fields"].items()})
    if isinstance(value, list) and any(isinstance(v, dict) and set(v) & {_MARKER, _VAULTED, _DATACLASS} for v in value):
        return type(value)(_markers_back(v) for v in value)
    return value


def embedded(scope, kind):
    """What the compiler embedded for the task ``scope`` belongs to: ``kind`` is "templates"
    (includes, lookup('template')), "files" (lookup('file')), "locked" (lookup('file') names
    of vault files no secret opens: ansible-core's words) or "sources" (their controller
    paths, mtimes and owners); {} when nothing."""
    try:
        search = scope.raw(SEARCH_VAR)
    except KeyError:
        return {}
    return (search or {}).get(kind) or {}


def _error(exc, kind="template", rendering=True):
    """The TemplateError for what Jinja2, a filter or user data raised, in ansible-core's words,
    naming the ``kind`` of text (a template, or a bare expression such as a condition): Jinja2's
    syntax errors (an unknown filter or test among them) as syntax errors; a Python error that is
    no template error of Ansible's (``1 + 'a'``, ``undef(0)``) "Error rendering KIND: ...", as
    ansible-core's create_template_error words it (unless not ``rendering``: a captured one); a
    filter's or plugin's as it is."""
    msg = getattr(exc, "message", None) or str(exc)
    jinja2 = sys.modules.get("jinja2")
    if jinja2 is not None and isinstance(exc, jinja2.exceptions.TemplateSyntaxError):
        return TemplateError(f"Syntax error in {kind}: {msg}")
    if jinja2 is not None and isinstance(exc, jinja2.exceptions.SecurityError):
        return TemplateSecurityError(f"{msg} (templates run in Jinja2's sandbox)")
    if jinja2 is not None and isinstance(exc, jinja2.exceptions.UndefinedError):
        return UndefinedVariable(msg)
    if isinstance(exc, RecursionError):
        return TemplateError(f"Recursive loop detected in {kind}: {msg}")
    if not rendering or isinstance(exc, (FilterError, TemplateError)) \
            or (jinja2 is not None and isinstance(exc, jinja2.TemplateError)):
        return TemplateError(msg)
    return TemplateError(f"Error rendering {kind}: {msg}")


class Templar:
    """Template values and evaluate expressions against a VarScope.

    A template or expression that reads host data (a marked value, a lookup) returns its result
    marked, so host data stays marked through filters and string operations
    (``{{ r.stdout | trim }}``, ``"x {{ r.stdout }}"``), as ansible-core's does.
    """

    @staticmethod
    def _tracked(kind, fn, *args):
        outer = _TAINT.read
        _TAINT.read = False
        _TAINT.depth += 1
        try:
            value = fn(*args)
            if _VAULT_MARKER is not None and isinstance(value, _VAULT_MARKER):
                value._fail_with_undefined_error()  # an undecryptable value, as it is
            return unsafe(value) if _TAINT.read else value
        except UndecryptableVariable as exc:  # ansible-core's marker trips: a rendering error
            if _TAINT.depth > 1:
                raise  # the outermost evaluation names it
            raise TemplateError(f"Error rendering {kind}: {exc}") from exc
        finally:
            _TAINT.depth -= 1
            _TAINT.read = outer or _TAINT.read

    def _passed_through(self, path, scope):
        """A variable's value (or a key's, an attribute's: ``{{ a.b }}``), with the trust it
        has itself: nothing is computed from what was read on the way, so reading host data
        that holds it (a registered result's ``item``) does not mark it, as in ansible-core."""
        outer = _TAINT.read
        _TAINT.read = False
        try:
            value = self._evaluate(path, scope, "template")
        except UndecryptableVariable as exc:
            if _TAINT.depth:
                raise  # the outermost evaluation names it
            raise TemplateError(f"Error rendering template: {exc}") from exc
        finally:
            _TAINT.read = outer
        if isinstance(value, _UNSAFE):  # what is computed from it is host data too
            _TAINT.read = True
        return value

    def template(self, value, scope):
        """Template ``value`` recursively (dict keys and values, list items, strings); dicts and
        lists come back as new ones (modules may change their arguments). Each string is marked
        on its own: one argument over host data leaves its neighbours trusted."""
        if isinstance(value, str):
            if not is_template(value):
                return value
            value = escape_backslashes(value)
            # Jinja2 drops one trailing newline before it renders: "{{ [1] }}\n" is one
            # expression, so ansible-core 2.19 returns its native value (a list here); text
            # gets its newline back unless it ends with one ("{{ 'a' }}\n" is "a\n")
            body = value[:-1] if value.endswith("\n") else value
            single = _SINGLE.match(body)
            expression = single.group(1) if single else _one_expression(body)
            if expression is not None and "{#" not in value:
                if _VARIABLE_ONLY.match(body.strip()):
                    result = self._passed_through(expression, scope)
                else:
                    result = self.evaluate(expression, scope, kind="template")
                if body is not value and isinstance(result, str) and not result.endswith("\n"):
                    result = unsafe(result + "\n") if isinstance(result, UnsafeText) else result + "\n"
                return result.flat() if isinstance(result, VarScope) else result
            return self.render(value, scope)
        if isinstance(value, _UNSAFE):
            return value
        if isinstance(value, dict):
            return {self.template(k, scope): self.template(v, scope) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.template(v, scope) for v in value]
        return value

    def __init__(self, read_file=None, allow_broken_conditionals=False, deprecation_warnings=True):
        self.read_file = read_file  # sha256 -> bytes of an embedded file (include, lookup)
        # ansible.cfg's ALLOW_BROKEN_CONDITIONALS: a conditional's truth instead of a bool
        self.allow_broken_conditionals = allow_broken_conditionals
        # ansible.cfg's DEPRECATION_WARNINGS (below the ansible_deprecation_warnings variable)
        self.deprecation_warnings = deprecation_warnings
        # the running task's ``origins`` (conditional text -> "file:line:column"), which the
        # executor sets before each task: where a broken conditional's value came from
        self.origins = {}
        # where each value set while the play runs was written (set_fact's arguments): name ->
        # (origin, the value itself); the value names it only while it is the one in scope
        self.value_origins = {}
        # where the inventory wrote the host's variables: (the host's variables layer, name ->
        # "FILE:LINE[:COLUMN]"), which the executor sets (model.run_vars on the controller)
        self.host_origins = ({}, {})
        # what the running task deprecated or warned of, for its result's ``deprecations`` and
        # ``warnings`` (ansible-core's)
        self.deprecations = []
        self.warnings = []

    def render(self, text, scope, overrides=None, nothing="", native=False):
        """Render ``text`` as a full Jinja2 template to a string (host data as it is), with
        Ansible's syntax ``overrides`` (OVERRIDE_DEFAULTS) and the ``#jinja2:`` line;
        ``nothing`` when a template writes no output at all (lookup('template') gives None).
        ``native``: as ansible-core 2.19's template engine, a template whose output is one node
        (one expression, a macro call) gives that node's value, not its text (a macro's own
        output likewise); more nodes are joined as text."""
        if isinstance(text, UnsafeText):
            return text
        return self._tracked("template", self._render, text, scope, overrides, nothing, native)

    def _render(self, text, scope, overrides=None, nothing="", native=False):
        if text.startswith(JINJA2_OVERRIDE):
            text, overrides = split_overrides(text, overrides)
        effective = _effective(overrides)
        if not effective and not native:
            fast = self._render_simple(text, scope)
            if fast is not None:
                return fast
        env = _environment()
        if native:
            env = self._native(env, effective)
        elif effective:
            env = self._overlay(env, effective)
        loader = env.loader
        saved = loader.names, loader.read_file, _RENDERING.scope
        loader.names = embedded(scope, "templates")
        loader.read_file = self.read_file
        _RENDERING.scope = scope
        key = ("n" if native else "t", text, effective)
        try:
            tmpl = env.rustle_cache.get(key)
            if tmpl is None:
                tmpl = env.rustle_cache[key] = env.from_string(text)
            ctx = tmpl.new_context(_vars_class(env, text)(scope, env.globals), shared=True)
            chunks = list(tmpl.root_render_func(ctx))
        except TemplateError:
            raise
        except Exception as exc:  # jinja2.TemplateError, filter errors, TypeError from user data
            raise _error(exc) from exc
        finally:
            loader.names, loader.read_file, _RENDERING.scope = saved
        if not chunks:
            return nothing
        if native:
            result = _native_concat(chunks)
            if not isinstance(result, str):
                return result
        else:
            result = "".join(chunks)
        options = dict(effective)
        if options.get("keep_trailing_newline"):
            return result
        return _restore_newlines(text, result, options.get("newline_sequence", "\n"))

    @classmethod
    def _native(cls, env, effective):
        """``env`` (with the syntax ``effective``) rendering native values, as ansible-core
        2.19's engine does for lookup('template'): Jinja2's native code generator, which leaves
        output nodes unstringified, and Ansible's concat, which does not literal_eval joined
        text as Jinja2's NativeEnvironment would."""
        native = env.rustle_overlays.get(("native", effective))
        if native is None:
            from jinja2.nativetypes import NativeCodeGenerator

            class CodeGenerator(_capturing(NativeCodeGenerator)):
                def _output_const_repr(self, group):
                    group = list(group)  # one constant stays itself (ansible-core's generator)
                    return repr(group[0]) if len(group) == 1 else repr("".join(map(str, group)))

            # None nodes are dropped by the concat: one `{{ none }}` is None, not ""
            native = (cls._overlay(env, effective) if effective else env).overlay(finalize=None)
            native.code_generator_class = CodeGenerator
            native.concat = _native_concat
            native.rustle_cache = {}
            env.rustle_overlays[("native", effective)] = native
        return native

    @staticmethod
    def _overlay(env, effective):
        overlay = env.rustle_overlays.get(effective)
        if overlay is None:
            options = dict(OVERRIDE_DEFAULTS)
            options.update(effective)
            try:
                overlay = env.overlay(**options)
            except Exception as exc:  # Jinja2 refuses clashing delimiters
                raise _error(exc) from exc
            env.rustle_overlays[effective] = overlay
        return overlay

    def _render_simple(self, text, scope):
        """Text with only ``{{ expr }}`` substitutions that ``expr.py`` can evaluate, without
        Jinja2 (which costs ~90 ms to import, ~200 ms from a zip); None when Jinja2 must do it.
        Newlines as Jinja2 and Ansible treat them: the last one dropped, then put back."""
        if "{%" in text or "{#" in text or "\r" in text:
            return None
        body = text[:-1] if text.endswith("\n") else text
        parts = []
        last = 0
        for match in _SEGMENT.finditer(body):
            if "{{" in body[last:match.start()] or "}}" in body[last:match.start()]:
                return None  # a template in a string constant (`{{ f('{{ x }}') }}`)
            value = _expr.evaluate(match.group(1), scope, self)
            if value is _expr.UNSUPPORTED:
                return None
            if _expr.is_undefined(value):
                value._fail_with_undefined_error()
            parts.append(body[last:match.start()])
            if value is not None:  # ansible-core 2.19 writes nothing for a None-valued node
                parts.append(value if isinstance(value, str) else str(value))
            last = match.end()
        rest = body[last:]
        if "{{" in rest or "}}" in rest:
            return None  # something the simple splitter did not understand
        parts.append(rest)
        return _restore_newlines(text, "".join(parts), "\n")

    def evaluate(self, expression, scope, kind="expression"):
        """Evaluate a bare Jinja2 expression; keep the native type; undefined raises; ``kind``:
        what its syntax errors call it (``template`` for the one expression of ``{{ x }}``)."""
        if isinstance(expression, UnsafeText):
            raise TemplateError(UNTRUSTED_CONDITION)
        return self._tracked(kind, self._evaluate, expression, scope, kind)

    def _evaluate(self, expression, scope, kind="expression"):
        value = _expr.evaluate(expression, scope, self)
        if value is not _expr.UNSUPPORTED:
            if _expr.is_undefined(value):
                value._fail_with_undefined_error()
            return value
        env = _environment()
        try:
            tmpl = env.rustle_cache.get(("e", expression))
            if tmpl is None:
                tmpl = env.rustle_cache[("e", expression)] = self._compiled(env, expression, kind)
            ctx = tmpl.new_context(_vars_class(env, expression)(scope, env.globals), shared=True)
            for _ in tmpl.root_render_func(ctx):
                pass
            value = ctx.vars["result"]
            if _expr.is_undefined(value):
                value._fail_with_undefined_error()
            return value
        except TemplateError:
            raise
        except Exception as exc:
            raise _error(exc, kind) from exc

    @staticmethod
    def _compiled(env, expression, kind):
        """``expression`` compiled; one that does not compile, when it is the one expression of
        a ``{{ }}`` template (``kind``), fails as that template does (ansible-core compiles the
        template: its syntax error's words, a Python error's line in the generated code)."""
        try:
            return env.compile_expression(expression, undefined_to_none=False)._template
        except Exception:
            if kind == "template":
                env.from_string("{{ " + expression + " }}")
            raise

    def condition(self, expression, scope):
        """ansible-core 2.19's conditional (``when``, ``changed_when``, ``failed_when``, ``until``,
        ``assert that``): True or False. A result that is not a boolean (a string, a list, a
        number, None), an empty expression or one that is not a string raise
        :class:`BrokenConditional`, unless ``allow_broken_conditionals`` (ansible.cfg's
        ``ALLOW_BROKEN_CONDITIONALS``), which takes the result's truth as Ansible did before 2.19.
        Other errors raise TemplateError."""
        value = self._conditional_value(expression, scope)
        if isinstance(value, bool):
            return value
        if self.allow_broken_conditionals:
            return bool(value)
        # None takes no tag in ansible-core: it has no origin
        origin = None if value is None else self._origin(expression, value, scope)
        raise BrokenConditional(broken_conditional_message(value, origin))

    def _origin(self, expression, value, scope):
        """Where a conditional's ``value`` came from: the task's ``origins`` for it, which for
        ``a and b`` (one of its operands) names each operand's, with "" for the rest."""
        found = self.origins.get(expression.strip()) if isinstance(expression, str) else None
        bare = _BARE_NAME.match(expression) if isinstance(expression, str) else None
        own = self.value_origin(bare.group(1), value, scope) if bare else None
        if own is not None:
            return own
        if not isinstance(found, dict):
            return found
        for operand, origin in found.items():
            if not operand:
                continue
            try:
                if self._evaluate(operand, scope) is value:
                    return self.value_origin(operand, value, scope) or origin or found.get("")
            except TemplateError:
                continue
        return found.get("")

    def value_origin(self, name, value, scope=None):
        """Where variable ``name``'s ``value`` was written, when a set_fact of this run set it to
        this very object (``value_origins``), or when it is the inventory's value that ``scope``
        gives (``host_origins``); else None."""
        held = self.value_origins.get(name)
        if held is not None and held[1] is value:
            return held[0]
        layer, where = self.host_origins
        if scope is None or name not in where:
            return None
        # the inventory's value only where no higher layer (play vars, set_fact, -e ...) has one
        holder = next((found for found in reversed(scope.layers) if name in found), None)
        return where[name] if holder is layer and layer[name] is value else None

    def truth(self, expression, scope):
        """A templated boolean keyword (``ignore_errors``, ``no_log``, ``become``, ...): its
        truth, as before ansible-core 2.19 (a string such as ``"yes"`` is true); the strict
        conditional rule applies to conditionals only."""
        if isinstance(expression, bool):
            return expression
        if expression is None:
            return True
        text = str(expression).strip()
        if isinstance(expression, UnsafeText):
            return self._string_truth(expression, scope)
        if is_template(text):
            value = self.template(text, scope)
            return self._string_truth(value, scope) if isinstance(value, str) else bool(value)
        value = self.evaluate(text, scope)
        if _IDENT.match(text) and isinstance(value, str):
            return self._string_truth(value, scope)
        return bool(value)

    def _string_truth(self, value, scope):
        """Booleans as Ansible spells them, else an expression; host data is never evaluated."""
        low = value.strip().lower()
        if low in ("true", "false", "yes", "no", "on", "off", "1", "0", "y", "n", ""):
            return to_bool(low)
        if isinstance(value, UnsafeText):
            raise TemplateError(UNTRUSTED_CONDITION)
        try:
            return bool(self.evaluate(value, scope))
        except TemplateError:
            return bool(value)

    def _conditional_value(self, expression, scope):
        """The value of a conditional before the boolean check (TemplateEngine's
        ``_normalize_and_evaluate_conditional``): a conditional wholly in ``{{ }}`` is rendered,
        and a string it renders to is the expression; host data is never an expression."""
        text = expression.strip() if isinstance(expression, str) else expression
        if text is None or text == "":
            return self._empty_conditional()
        if type(text) is bool:  # noqa: E721 - a bool, not an int
            return text
        try:
            if not isinstance(text, str):
                if self.allow_broken_conditionals:
                    return self.template(text, scope)
                raise BrokenConditional("Conditional expressions must be strings.")
            if isinstance(expression, UnsafeText):  # `that: "{{ r.stdout }}"`: templated to host data
                raise TemplateError(UNTRUSTED_CONDITION)
            if not is_template(text):
                return self.evaluate(text, scope)
            whole = text.startswith(("{{", "{%")) and text.endswith(("}}", "%}"))
            if not whole:  # an expression: only its string constants may hold templates
                return self._evaluate_const_templates(text, scope)
            # ansible-core 2.19 renders natively: a template whose output is one node (after
            # `{% set %}` blocks) gives that node's value
            value = self.render(text, scope, native=True) if "{%" in text else self.template(text, scope)
            if not isinstance(value, str):
                self._deprecate(CONDITIONAL_AS_TEMPLATE, scope)
                return value
            if isinstance(value, UnsafeText) or (whole and not _VARIABLE_ONLY.match(text)):
                # ansible-core trusts a string as an expression only when it came from the
                # playbook or inventory as it is: `"{{ some_var }}"`, not one Jinja2 made
                # (`"{{ '1 == 1' }}"`, a filter's result)
                raise TemplateError(UNTRUSTED_CONDITION)
            if not value.strip():
                return self._empty_conditional()
            return self.evaluate(value.strip(), scope)
        except UndefinedVariable as exc:  # ansible-core 2.19's words; other errors as they are
            raise UndefinedVariable(f"Error while evaluating conditional: {exc}") from exc

    def _deprecate(self, msg, scope):
        """A deprecation of ansible-core's own (removed in 2.23), once per task, unless the
        ``ansible_deprecation_warnings`` variable (or, without it, ansible.cfg's
        ``deprecation_warnings``) turns them off."""
        try:
            enabled = to_bool(scope["ansible_deprecation_warnings"])
        except (KeyError, TemplateError):
            enabled = self.deprecation_warnings
        if not enabled:
            return
        entry = {"msg": msg, "collection_name": "ansible.builtin", "version": "2.23",
                 "deprecator": {"resolved_name": "ansible.builtin", "type": None}}
        if entry not in self.deprecations:
            self.deprecations.append(entry)

    def _evaluate_const_templates(self, text, scope):
        """ansible-core 2.19's conditional whose Jinja string constants hold templates
        (``'"{{ homedir }}/x.txt" in found'``): each such constant is rendered, its result a value
        (host data stays data, never an expression), and the expression evaluated over them
        (2.19's deprecation warning is not repeated). Delimiters outside a constant are a syntax error, in its words."""
        consts = {}

        def name_of(match):
            literal = match.group(0)
            if not is_template(literal):
                return literal
            value = self.evaluate(literal, scope)  # the constant, as Jinja2 unescapes it
            if not is_template(value):
                return literal
            name = f"__rustle_const_{len(consts)}"
            # undefined, it is a marker: it fails where it is used, not where it is written
            # (a lookup plugin that accepts markers takes it: `lookup('p', '{{ nope }}')`)
            consts[name] = _lookup_term(self, value, scope)
            return name

        expression = _STRING.sub(name_of, text)
        if "{{" in expression or "{%" in expression:
            message = "Template delimiters are not supported in expressions"
            try:
                self.evaluate(expression, scope)
            except TemplateError as exc:
                message = f"{message}: {str(exc).split(': ', 1)[-1]}"
            raise TemplateError(f"Syntax error in expression. {message}")
        return self.evaluate(expression, scope.child(consts) if hasattr(scope, "child") else {**scope, **consts})

    def _empty_conditional(self):
        if self.allow_broken_conditionals:
            return True
        raise BrokenConditional("Empty conditional expressions are not allowed.")
