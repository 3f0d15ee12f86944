"""ansible-core 2.19's data tags as the runtime models them, and the filters and tests of its
internal ``ansible._protomatter`` collection that read them (docs/playbooks.md, "Data tags").

ansible-core tags values: ``TrustedAsTemplate`` on text written in the playbook, its vars files
and the inventory; ``Origin`` (file:line:column) on what it loaded from YAML; ``VaultedValue``
on decrypted ``!vault`` text, and others. The runtime keeps one of them, trust, in the form it
already has: host data (results, facts, lookups, ``!unsafe``) is marked ``UnsafeText`` and is
never a template; any other text is trusted, and ``TrustedText`` is text made trusted with
``apply_trust`` (it stays so inside host data). Origins are recorded by the compiler where a
task passes a variable to the ``origin`` filter (the task's ``origins``); no vault tag is kept,
so the filters and tests that would need one fail with a message saying so instead of
answering wrongly. A string literal inside a template counts as trusted here (ansible-core gives it no
tag): the limit of this model.
"""

import ast
import re

from .filters import FilterError, is_undefined
from .templating import TrustedText, UnsafeDict, UnsafeList, UnsafeText, VaultedText

PREFIX = "ansible._protomatter."

# ansible-core's tag names (module_utils/_internal/_datatag: _known_tag_type_map)
_TAGS = ("TrustedAsTemplate", "Origin", "VaultedValue", "Deprecated", "SourceWasEncrypted",
         "NotATemplate")
_NOT_KEPT = ("rustle-deploy keeps only the TrustedAsTemplate tag (text written in the playbook, its "
             "vars files and the inventory, not host data) and VaultedValue (decrypted !vault text); "
             "it does not record where a value was written (Origin) nor which values were "
             "deprecated or encrypted")


def _trusted(value):
    return isinstance(value, str) and not isinstance(value, UnsafeText)


def tagged_with(context, value, tag_name):
    """ansible-core's ``tagged_with`` test for the tags the runtime keeps or the task recorded."""
    if tag_name not in _TAGS:
        raise FilterError(f"Unknown tag name {tag_name!r}.")
    if tag_name == "VaultedValue":
        return isinstance(value, VaultedText)
    if tag_name == "Origin":
        return not is_undefined(value) and origin(context, value) is not None
    if tag_name != "TrustedAsTemplate":
        raise FilterError(f"the {tag_name} tag cannot be tested here: {_NOT_KEPT}")
    return _trusted(value)


def tag_names(context, value):
    """ansible-core's ``tag_names``: the tags on ``value`` the runtime knows, sorted: ``Origin``
    for a variable the task passes by name whose definition the compiler read (the task's
    ``origins``), ``TrustedAsTemplate`` for such text (what YAML loaded) and for ``apply_trust``'s,
    ``VaultedValue`` for decrypted ``!vault`` text. A literal has none; undefined stays so."""
    if is_undefined(value):
        return value
    names = set()
    if origin(context, value) is not None:
        names.add("Origin")
        if _trusted(value):
            names.add("TrustedAsTemplate")
    if isinstance(value, TrustedText):
        names.add("TrustedAsTemplate")
    if isinstance(value, VaultedText):
        names.add("VaultedValue")
    return sorted(names)


def true_type(context, value):
    """ansible-core's ``true_type``: the Python type's name, ``_AnsibleTagged<Type>`` for a
    value with tags (``tag_names``), ``UndefinedMarker`` for an undefined one,
    ``CapturedExceptionMarker`` when its argument failed (a ``_CAPTURING`` filter)."""
    from .templating import CapturedExceptionMarker

    if is_undefined(value):
        return "UndefinedMarker"
    if isinstance(value, CapturedExceptionMarker):  # what its argument raised (templating._CAPTURING)
        return "CapturedExceptionMarker"
    cls = type(value)
    while getattr(cls, "_rustle_tagged", False):  # the runtime's marked values: their built-in type
        cls = cls.__mro__[1]
    if tag_names(context, value):
        return "_AnsibleTagged" + cls.__name__.capitalize()
    return cls.__name__


_TAGGABLE = (str, int, float, list, dict)  # the types a tag sticks to (bool and None take none)


def shown_type(value, tagged):
    """``type(value)`` as ansible-core 2.19 shows it in a message (``%s`` of the type): a value
    with a tag (``tagged``: one written in the playbook or its vars, or what a template written
    there rendered, which ansible-core tags with the template's Origin) of a type tags stick to
    is ``_AnsibleTagged<Type>``, any other its plain class."""
    cls = type(value)
    while getattr(cls, "_rustle_tagged", False):  # the runtime's marked values: their built-in type
        cls = cls.__mro__[1]
    if tagged and cls in _TAGGABLE:
        return f"<class 'ansible.module_utils._internal._datatag._AnsibleTagged{cls.__name__.capitalize()}'>"
    return str(cls)


# ansible-core's masked types (_transform._type_transform_mapping), which unmask names
_MASKED = ("CapturedErrorSummary", "DeprecationSummary", "EncryptedString", "ErrorSummary", "PluginInfo",
           "PluginType", "WarningSummary")


def unmask(value, type_names):
    """ansible-core's ``unmask``: the value with the ansible-core objects of the types named
    given back where templates see their views, at any depth (a registered result's
    DeprecationSummary, seen as a dict, as that object; its deprecator's PluginInfo), after its
    checks of ``type_names``. The runtime holds such objects where ansible-core made them on
    the controller (a lookup's or an action plugin's warnings and deprecations); a warning or
    deprecation the host made stays text or a dict."""
    from .templating import unmasked

    if is_undefined(value):
        return value
    if not isinstance(type_names, (str, list)):
        raise FilterError("The 'type_names' argument must be of type 'str' or 'list', not "
                          f"{type(type_names).__name__!r}.")
    names = [type_names] if isinstance(type_names, str) else type_names
    unknown = [str(n) for n in names if n not in _MASKED]
    if unknown:
        raise FilterError(f"Unknown type name(s): {', '.join(unknown)}")
    return unmasked(value, frozenset(names))


def tagged(context, value):
    """ansible-core's ``tagged`` test: whether ``value`` has any tag (``tag_names``)."""
    return not is_undefined(value) and bool(tag_names(context, value))


def apply_trust(value):
    """Text trusted as a template (an undefined value, a number or a container as it is)."""
    return TrustedText(value) if isinstance(value, str) else value


def finalize(value):
    """ansible-core's top-level finalize: what a template's result becomes when it leaves
    Jinja2 (tuples, sets and generators as lists, mappings as dicts, recursively)."""
    if is_undefined(value):
        str(value)  # raises the undefined error, as ansible-core's finalize does
    if isinstance(value, (UnsafeText, TrustedText, UnsafeDict, UnsafeList)):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return {finalize(k): finalize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)) or hasattr(value, "__next__"):
        return [finalize(v) for v in value]
    return value


def python_literal_eval(value, ignore_errors=False):
    """A Python literal's value (``ast.literal_eval``); the text itself with ``ignore_errors``."""
    if is_undefined(value):
        return value
    try:
        if not isinstance(value, str):
            raise FilterError("The `value` to eval must be a string.")
        return ast.literal_eval(value)
    except Exception as exc:  # noqa: BLE001 - ansible-core's filter: any failure, or the text back
        if ignore_errors:
            return value
        if isinstance(exc, FilterError):
            raise
        raise FilterError(f"{type(exc).__name__}: {exc}") from exc


def dump_object(value):
    """Values JSON cannot hold as plain ones; the runtime's values are plain already, but the
    marker of an error its argument raised (templating's CapturedExceptionMarker), which is
    ``{"exception": ERROR}`` (its ``message``), as in ansible-core, and an ansible-core
    dataclass a controller plugin returned (a MaskedDict), which is a plain dict."""
    from .templating import CapturedExceptionMarker, MaskedDict

    if isinstance(value, CapturedExceptionMarker):
        return {"exception": value.exception}
    if isinstance(value, MaskedDict):  # an ansible-core dataclass: its fields
        return {k: dump_object(v) for k, v in value.items()}
    return value


_PATH = re.compile(r"""^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[(?:'[^']*'|"[^"]*"|\d+)\])*$""")


def origin(context, value):
    """ansible-core's ``origin`` filter: where ``value`` was written ("FILE:LINE:COLUMN"), for
    the variables the compiler saw passed to it in this task (the task's ``origins``: play,
    block, task and role vars, role defaults, vars files); None for any other value (a
    literal, host data, a value set while the play runs); an undefined value as it is."""
    if is_undefined(value):
        return value
    scope = getattr(context.parent, "scope", None)
    if scope is None:
        return None
    from .templating import _TAINT, TemplateError

    outer = _TAINT.read
    try:
        for path, where in scope.templar.origins.items():
            if (where is None or isinstance(where, str)) and _PATH.match(path):
                try:
                    if scope.templar._evaluate(path, scope) is value:
                        # a set_fact value's or the inventory's first
                        found = scope.templar.value_origin(path, value, scope) or where
                        if found:
                            return found
                except TemplateError:
                    continue
        return None
    finally:
        _TAINT.read = outer


def _refused(name, why):
    def refuse(*_args, **_kwargs):
        raise FilterError(f"{PREFIX}{name} is not supported by rustle-deploy: {why}")

    return refuse


FILTERS = {
    "apply_trust": apply_trust, "finalize": finalize, "python_literal_eval": python_literal_eval,
    "dump_object": dump_object, "origin": origin, "tag_names": tag_names, "true_type": true_type,
    "unmask": unmask,
}
TESTS = {"tagged_with": tagged_with, "tagged": tagged}
# the collection's other plugins, refused (also at compile time: plan/validate.py)
REFUSED_FILTERS = {}
REFUSED_TESTS = {}


def _named(name, fn):
    """Filter ``fn`` whose error names it, as ansible-core names a failing plugin."""
    import functools

    @functools.wraps(fn)
    def named(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FilterError as exc:
            if str(exc).startswith("The filter plugin "):
                raise
            raise FilterError(f"The filter plugin '{PREFIX}{name}' failed: {exc}") from exc

    return named


def install(filters, tests):
    """Add the collection's filters and tests (by their full names) to a Jinja2 environment's
    tables; ``from_json`` there reads ansible-core's legacy profiles' trust."""
    import jinja2

    filters.update({PREFIX + k: _named(k, v) for k, v in FILTERS.items()})
    for name, fn in (("origin", origin), ("tag_names", tag_names), ("true_type", true_type)):
        filters[PREFIX + name] = jinja2.pass_context(_named(name, fn))  # they read the task's origins
    tests[PREFIX + "tagged_with"] = jinja2.pass_context(tagged_with)
    tests[PREFIX + "tagged"] = jinja2.pass_context(tagged)
    filters.update({PREFIX + k: _refused(k, why) for k, why in REFUSED_FILTERS.items()})
    tests.update({PREFIX + k: _refused(k, why) for k, why in REFUSED_TESTS.items()})
    for name in ("from_json", "ansible.builtin.from_json"):
        filters[name] = from_json


def from_json(value, profile=None, **kw):
    """ansible-core's ``from_json`` (``filters.from_json`` decodes: ``{"__ansible_unsafe": text}``
    is host data under the ``legacy`` and ``inventory_legacy`` profiles) carrying the input's
    trust to the text it decodes, as those profiles do (``inventory_legacy`` only to inventory
    variables: ``_meta.hostvars.H.*`` and ``G.vars.*``); ``tagless`` returns plain values."""
    from .filters import from_json as decode

    data = decode(value, profile=profile, **kw)
    if profile in ("legacy", "inventory_legacy") and isinstance(value, TrustedText):
        return _trusted_copy(data, profile, [])
    return data


def _trusted_copy(value, profile, path):
    if isinstance(value, UnsafeText):
        return value  # __ansible_unsafe: host data
    if isinstance(value, str):
        allowed = profile == "legacy" or (len(path) >= 4 and path[:2] == ["_meta", "hostvars"]) or (
            len(path) >= 3 and path[1] == "vars")
        return TrustedText(value) if allowed else value
    if isinstance(value, dict):
        return {k: _trusted_copy(v, profile, path + [k]) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted_copy(v, profile, path + [i]) for i, v in enumerate(value)]
    return value
