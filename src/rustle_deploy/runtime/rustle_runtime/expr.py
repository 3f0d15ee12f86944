"""A small evaluator for the common Jinja2 expressions of conditions, without Jinja2.

Importing Jinja2 costs ~90 ms per host start (PERF_NOTES.md), so ``foo is defined``,
``x == "y"``, ``result.rc != 0``, ``flag | bool``, ``'a' in groups['web']``,
``r is changed and not other is skipped`` and the like are evaluated here with Jinja2's
semantics (strict undefined, attribute-then-item lookup). ``evaluate`` returns ``UNSUPPORTED``
for anything outside this subset, and the caller falls back to Jinja2; since expressions have
no side effects, trying here first is always safe.
"""

import re
import warnings

from . import filters as _f

UNSUPPORTED = object()
is_undefined = _f.is_undefined

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.\d+|\d+)|(?P<str>'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>==|!=|<=|>=|<|>|\(|\)|\[|\]|\.|,|\||=|-|\+|~|:))",
    re.S,
)
_LITERALS = {"true": True, "True": True, "false": False, "False": False, "none": None, "None": None}
_GLOBAL_NAMES = ("range", "dict", "lipsum", "cycler", "joiner", "namespace", "lookup", "query", "q")
_COMPARE = ("==", "!=", "<", "<=", ">", ">=")


class _Unsupported(Exception):
    pass


def native_type_name(value):
    """ansible-core's ``native_type_name``: the built-in type a value is (a subclass's base)."""
    for kind in (str, dict, list, bool, int, float):
        if isinstance(value, kind):
            return kind.__name__
    return type(value).__name__


def no_attribute(obj, name):
    """ansible-core 2.19's words for a missing attribute or key of ``obj`` (its Marker's hint);
    a falsy ``name`` (``l[0]``) keeps Jinja2's, as ansible-core does."""
    if not name:
        shown = "None" if obj is None else f"{type(obj).__name__} object"
        return f"{shown} has no {'attribute' if isinstance(name, str) else 'element'} {name!r}"
    return f"object of type {native_type_name(obj)!r} has no attribute {name!r}"


class Undefined:
    """Jinja2's StrictUndefined, minus Jinja2: any use but a test raises."""

    _rustle_undefined = True

    def __init__(self, hint):
        self._undefined_hint = hint
        self._undefined_name = hint

    def fail(self):
        from .templating import UndefinedVariable

        raise UndefinedVariable(self._undefined_hint)

    _fail_with_undefined_error = fail


def _jinja_default(value, default_value="", boolean=False):
    if is_undefined(value) or (boolean and not value):
        return default_value
    return value


def _int(value, default=0, base=10):
    try:
        if isinstance(value, str):
            return int(value, base)
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def _float(value, default=0.0):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _first(seq):
    for item in seq:
        return item
    return Undefined("No first item, sequence was empty.")


def _last(seq):
    items = list(seq)
    return items[-1] if items else Undefined("No last item, sequence was empty.")


def _join(seq, d="", attribute=None):
    if attribute is not None:
        raise _Unsupported()
    return d.join(str(x) for x in seq)


_FILTERS = {
    "bool": _f.to_bool, "int": _int, "float": _float, "length": len, "count": len,
    "lower": lambda s: str(s).lower(), "upper": lambda s: str(s).upper(),
    "string": lambda s: s if isinstance(s, str) else str(s),
    "trim": lambda s, chars=None: str(s).strip(chars), "first": _first, "last": _last,
    "join": _join, "default": _jinja_default, "d": _jinja_default,
    "basename": _f.FILTERS["basename"], "dirname": _f.FILTERS["dirname"], "expanduser": _f.FILTERS["expanduser"],
    "version_compare": _f.version_compare, "ternary": _f.ternary, "split": _f.split,
}
_HANDLES_UNDEFINED = ("default", "d")
# method calls the parser reads (into a "call" node, which _eval leaves to Jinja2)
_METHODS = ("startswith", "endswith", "split", "strip", "splitlines")

_TESTS = dict(_f.TESTS)
_TESTS.update({
    "none": lambda v: v is None, "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str), "mapping": lambda v: isinstance(v, dict),
    "boolean": lambda v: isinstance(v, bool), "true": lambda v: v is True, "false": lambda v: v is False,
    "in": lambda v, seq: v in seq, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "equalto": lambda a, b: a == b,
})


def _string(body):
    """A string literal's value as Jinja2's lexer makes it: newlines normalized, then
    ``unicode-escape`` over the ASCII text (``\\n``, ``\\'``; an unknown escape such as ``\\d`` stays)."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    if "\\" not in body:
        return body
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "invalid escape sequence", as Jinja2 leaves it
            return body.encode("ascii", "backslashreplace").decode("unicode-escape")
    except UnicodeDecodeError:
        raise _Unsupported() from None  # let Jinja2 word the error


def _tokens(text):
    pos, out = 0, []
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _Unsupported()
        pos = m.end()
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
    return out


class _Parser:
    def __init__(self, text):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, value=None, kind=None):
        if self.i >= len(self.toks):
            return False
        k, v = self.toks[self.i]
        if kind is not None and k != kind:
            return False
        return value is None or (v == value and k in ("op", "name"))

    def take(self, value=None, kind=None):
        if not self.peek(value, kind):
            raise _Unsupported()
        self.i += 1
        return self.toks[self.i - 1][1]

    def parse(self):
        node = self.or_expr()
        if self.i != len(self.toks):
            raise _Unsupported()
        return node

    def or_expr(self):
        node = self.and_expr()
        while self.peek("or", "name"):
            self.take()
            node = ("or", node, self.and_expr())
        return node

    def and_expr(self):
        node = self.not_expr()
        while self.peek("and", "name"):
            self.take()
            node = ("and", node, self.not_expr())
        return node

    def not_expr(self):
        if self.peek("not", "name"):
            self.take()
            return ("not", self.not_expr())
        return self.compare()

    def compare(self):
        node = self.add()
        while True:
            if self.i < len(self.toks) and self.toks[self.i][0] == "op" and self.toks[self.i][1] in _COMPARE:
                if node[0] in ("in", "not"):
                    raise _Unsupported()  # `in` in a chain: left to Jinja2
                op = self.take()
                if node[0] in ("cmp", "chain"):  # 1 < x < 3: Python's chain, as Jinja2 compiles it
                    links = [(node[1], node[3])] if node[0] == "cmp" else list(node[2])
                    node = ("chain", node[2] if node[0] == "cmp" else node[1], tuple(links) + ((op, self.add()),))
                else:
                    node = ("cmp", op, node, self.add())
            elif self.peek("in", "name"):
                self.take()
                node = ("in", node, self.add())
            elif self.peek("not", "name") and self.i + 1 < len(self.toks) and self.toks[self.i + 1] == ("name", "in"):
                self.i += 2
                node = ("not", ("in", node, self.add()))
            else:
                return node

    def add(self):
        """``a + b`` (Jinja2's math1, without ``-``) over ``~`` chains (its concat)."""
        node = self.concat()
        while self.peek("+", "op"):
            self.take()
            node = ("add", node, self.concat())
        return node

    def concat(self):
        nodes = [self.postfix()]
        while self.peek("~", "op"):
            self.take()
            nodes.append(self.postfix())
        return nodes[0] if len(nodes) == 1 else ("concat", tuple(nodes))

    def args(self):
        args, kwargs = [], {}
        if not self.peek("(", "op"):
            return args, kwargs
        self.take("(")
        while not self.peek(")", "op"):
            if self.peek(kind="name") and self.i + 1 < len(self.toks) and self.toks[self.i + 1] == ("op", "="):
                key = self.take()
                self.take("=")
                kwargs[key] = self.or_expr()
            else:
                args.append(self.or_expr())
            if not self.peek(")", "op"):
                self.take(",")
        self.take(")")
        return args, kwargs

    def postfix(self):
        node = self.primary()
        while True:
            if self.peek(".", "op"):
                self.take()
                if self.peek(kind="num"):  # x.0 is Jinja2's x[0]
                    index = self.take(kind="num")
                    if not index.isdigit():
                        raise _Unsupported()
                    node = ("item", node, ("lit", int(index)))
                    continue
                name = self.take(kind="name")
                if self.peek("(", "op") and name in _METHODS:  # a str method call: evaluated by Jinja2
                    args, kwargs = self.args()  # here (_eval has no "call"), by the native runner there
                    if kwargs:
                        raise _Unsupported()
                    node = ("call", node, name, args)
                else:
                    node = ("attr", node, name)
            elif self.peek("[", "op"):
                self.take()
                key = None if self.peek(":", "op") else self.or_expr()
                if self.peek(":", "op"):  # x[a:b]: evaluated by Jinja2 here (_eval has no "slice")
                    self.take()
                    stop = None if self.peek("]", "op") else self.or_expr()
                    self.take("]")
                    node = ("slice", node, key, stop)
                    continue
                self.take("]")
                node = ("item", node, key)
            elif self.peek("|", "op"):
                self.take()
                name = self.take(kind="name")
                if name not in _FILTERS:
                    raise _Unsupported()
                args, kwargs = self.args()
                node = ("filter", name, node, args, kwargs)
            elif self.peek("is", "name"):
                self.take()
                negate = False
                if self.peek("not", "name"):
                    self.take()
                    negate = True
                name = self.take(kind="name")
                if name not in _TESTS and name not in ("defined", "undefined"):
                    raise _Unsupported()
                if self.peek(kind="str") or self.peek(kind="num"):  # `x is contains 'a'`: one bare argument
                    args, kwargs = [self.primary()], {}
                    if self.peek(".", "op") or self.peek("[", "op") or self.peek("(", "op"):
                        raise _Unsupported()  # Jinja2 would bind them to the argument
                else:
                    args, kwargs = self.args()
                node = ("test", name, node, args, kwargs)
                if negate:
                    node = ("not", node)
            else:
                return node

    def primary(self):
        if self.i >= len(self.toks):
            raise _Unsupported()
        kind, value = self.toks[self.i]
        self.i += 1
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "str":
            return ("lit", _string(value[1:-1]))
        if value == "-" and self.peek(kind="num"):  # a negative number (Jinja2's unary minus)
            number = self.primary()
            return ("lit", -number[1])
        if kind == "name":
            if value in _LITERALS:
                return ("lit", _LITERALS[value])
            if value in ("and", "or", "not", "in", "is", "if", "else") or value in _GLOBAL_NAMES:
                raise _Unsupported()
            return ("name", value)
        if value == "(":
            node = self.or_expr()
            self.take(")")
            return node
        if value == "[":
            items = []
            while not self.peek("]", "op"):
                items.append(self.or_expr())
                if not self.peek("]", "op"):
                    self.take(",")
            self.take("]")
            return ("list", items)
        raise _Unsupported()


def _use(value):
    if is_undefined(value):
        if getattr(type(value), "_rustle_undefined", False):
            value.fail()
        # Jinja2's undefined (a marker from a string constant's template): the same error as ours
        from .templating import UndefinedVariable

        raise UndefinedVariable(value._undefined_message)
    return value


def _getattr(obj, name):
    if is_undefined(obj):
        return obj
    if isinstance(obj, dict) or (hasattr(obj, "raw") and hasattr(obj, "layers")):
        try:
            return obj[name]
        except KeyError:
            if hasattr(obj, name):
                raise _Unsupported() from None
            return Undefined(no_attribute(obj, name))
    if isinstance(obj, (str, int, float, bool, list, type(None))):
        if hasattr(obj, name):
            raise _Unsupported()
        return Undefined(no_attribute(obj, name))
    raise _Unsupported()


def _getitem(obj, key):
    if is_undefined(obj):
        return obj
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError):
        if isinstance(key, str):
            return _getattr(obj, key)
        return Undefined(no_attribute(obj, key))


def _eval(node, scope):
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "name":
        try:
            return scope[node[1]]
        except KeyError:
            return Undefined(f"'{node[1]}' is undefined")
    if op == "attr":
        return _getattr(_eval(node[1], scope), node[2])
    if op == "item":
        return _getitem(_eval(node[1], scope), _use(_eval(node[2], scope)))
    if op == "list":
        return [_use(_eval(n, scope)) for n in node[1]]
    if op == "or":
        left = _use(_eval(node[1], scope))
        return left if left else _use(_eval(node[2], scope))
    if op == "and":
        left = _use(_eval(node[1], scope))
        return _use(_eval(node[2], scope)) if left else left
    if op == "not":
        return not _use(_eval(node[1], scope))
    if op == "cmp":
        return _compare(node[1], _use(_eval(node[2], scope)), _use(_eval(node[3], scope)))
    if op == "chain":  # a < b < c: each operand evaluated once, and only while the chain holds
        left = _use(_eval(node[1], scope))
        for cmp, right_node in node[2]:
            right = _use(_eval(right_node, scope))
            if not _compare(cmp, left, right):
                return False
            left = right
        return True
    if op == "add":
        try:
            return _use(_eval(node[1], scope)) + _use(_eval(node[2], scope))
        except TypeError:
            raise _Unsupported() from None  # let Jinja2 word the error
    if op == "concat":  # Jinja2's str_join
        return "".join(str(_use(_eval(n, scope))) for n in node[1])
    if op == "in":
        item, seq = _use(_eval(node[1], scope)), _use(_eval(node[2], scope))
        try:
            return item in seq
        except TypeError:
            raise _Unsupported() from None
    if op == "filter":
        name = node[1]
        value = _eval(node[2], scope)
        if name not in _HANDLES_UNDEFINED:
            value = _use(value)
        args = [_use(_eval(n, scope)) for n in node[3]]
        kwargs = {k: _use(_eval(n, scope)) for k, n in node[4].items()}
        try:
            return _FILTERS[name](value, *args, **kwargs)
        except (TypeError, ValueError, _f.FilterError):
            raise _Unsupported() from None
    if op == "test":
        name = node[1]
        value = _eval(node[2], scope)
        if name == "defined":
            return not is_undefined(value)
        if name == "undefined":
            return is_undefined(value)
        value = _use(value)
        args = [_use(_eval(n, scope)) for n in node[3]]
        kwargs = {k: _use(_eval(n, scope)) for k, n in node[4].items()}
        try:
            return _TESTS[name](value, *args, **kwargs)
        except (TypeError, ValueError, _f.FilterError):
            raise _Unsupported() from None
    raise _Unsupported()


def _compare(op, a, b):
    try:
        return {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b,
                "<=": lambda: a <= b, ">": lambda: a > b, ">=": lambda: a >= b}[op]()
    except TypeError:
        raise _Unsupported() from None  # let Jinja2 word the error


_CACHE = {}


def evaluate(expression, scope, templar=None):
    """The value of ``expression``, or ``UNSUPPORTED`` when Jinja2 must evaluate it."""
    node = _CACHE.get(expression)
    if node is None:
        try:
            node = _Parser(expression).parse()
        except _Unsupported:
            node = ("unsupported",)
        _CACHE[expression] = node
    if node[0] == "unsupported":
        return UNSUPPORTED
    try:
        return _eval(node, scope)
    except _Unsupported:
        return UNSUPPORTED
