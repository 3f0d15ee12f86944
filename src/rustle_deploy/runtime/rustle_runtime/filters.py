"""Ansible's filters and tests that Jinja2 lacks, as plain functions.

They never import Jinja2 themselves, so the small expression evaluator (``expr.py``) can use
them too; ``is_undefined`` recognises both Jinja2's Undefined and the evaluator's own.
"""

import json
import os
import re
import sys

_TRUE = ("yes", "on", "1", "true", "y", "t")


class FilterError(Exception):
    """A filter or test was used wrongly (bad argument, mandatory value missing)."""


def is_undefined(value):
    if getattr(type(value), "_rustle_undefined", False):
        return True
    jinja2 = sys.modules.get("jinja2")
    return jinja2 is not None and isinstance(value, jinja2.Undefined)


def to_bool(value):
    """Ansible's ``bool`` filter."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value == 1
    return str(value).strip().lower() in _TRUE


def _json_default(value):
    """An undefined value inside what ``to_json`` writes fails as using it would (a ``!vault``
    value no secret opened with its own error), as in ansible-core."""
    if is_undefined(value):
        value._fail_with_undefined_error()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _as_text(value):
    """ansible-core's ``fallback_to_str`` profile: what JSON cannot hold as its text."""
    if is_undefined(value):
        value._fail_with_undefined_error()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode(errors="surrogateescape")
    return str(value)


def to_json(value, profile=None, **kw):
    """Ansible's ``to_json``; ``profile``: its encoder, ``tagless`` (the default: a value JSON
    cannot hold is an error) or ``fallback_to_str`` (such a value as its text)."""
    if profile not in (None, "tagless", "fallback_to_str"):
        if profile in ("legacy", "inventory_legacy", "cache_persistence") or str(profile).startswith("module_"):
            raise FilterError(f"the serialization profile {profile!r} is not supported on the host: "
                              "to_json offers tagless and fallback_to_str")
        raise FilterError(f"Unknown profile name {profile!r}.")  # ansible-core 2.19's words
    if profile == "fallback_to_str":
        kw.setdefault("default", _as_text)
        value = _dataclasses_as_text(value)
    kw.setdefault("default", _json_default)
    return json.dumps(value, **kw)


def _dataclasses_as_text(value):
    """``value`` with each ansible-core dataclass in it (templating.MaskedDict: an unmasked
    WarningSummary, a PluginInfo) as the text ``fallback_to_str`` makes of it, its repr."""
    from .templating import MaskedDict

    def text(one):
        if isinstance(one, MaskedDict):
            return f"{type(one).__name__}({', '.join(f'{k}={text(v)}' for k, v in one.items())})"
        if isinstance(one, str):
            return repr(str(one))
        if isinstance(one, (list, tuple)):
            return f"[{', '.join(text(v) for v in one)}]"
        return repr(one)

    if isinstance(value, MaskedDict):
        return text(value)
    if isinstance(value, dict):
        return {k: _dataclasses_as_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_dataclasses_as_text(v) for v in value]
    return value


def to_nice_json(value, indent=4, sort_keys=True, **kw):
    kw.pop("separators", None)  # as ansible-core's: not the user's to set
    return to_json(value, indent=indent, sort_keys=sort_keys, separators=(",", ": "), **kw)


def from_json(value, profile=None, **kw):
    """Ansible's ``from_json``; ``profile``: its decoder, ``tagless`` (plain JSON, the default;
    a tagged value is an error) or ``legacy``/``inventory_legacy`` (``{"__ansible_unsafe": text}``
    is that text, marked as host data, as ansible-inventory's ``--export`` writes it)."""
    profile = profile or "tagless"
    if profile not in ("tagless", "legacy", "inventory_legacy"):
        if profile in ("cache_persistence",) or str(profile).startswith("module_"):
            raise FilterError(f"the serialization profile {profile!r} is not supported on the host: "
                              "it offers tagless, legacy and inventory_legacy")
        raise FilterError(f"Unknown profile name {profile!r}.")  # ansible-core 2.19's words
    from .templating import unsafe

    def hook(pairs):
        if len(pairs) == 1 and pairs[0][0] in ("__ansible_unsafe", "__ansible_vault"):
            key, text = pairs[0]
            if profile == "tagless":
                raise FilterError(f"Object of type {key!r} is not JSON deserializable by the 'tagless' profile.")
            if key == "__ansible_vault":
                raise FilterError(f"a vaulted value (__ansible_vault) cannot be decrypted on the host "
                                  f"(from_json profile {profile!r})")
            if isinstance(text, str):
                return unsafe(text)
        return dict(pairs)

    return json.loads(value, object_pairs_hook=hook, **kw)


_PLAIN = re.compile(r"^[A-Za-z_/.][A-Za-z0-9_./ -]*$")
_YAML_WORDS = {"yes", "no", "on", "off", "true", "false", "null", "y", "n", "~"}


def _yaml_scalar(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    text = str(value)
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS and not text.endswith(" "):
        return text
    return "'" + text.replace("'", "''") + "'"


def _yaml_lines(value, indent, level):
    pad = " " * (indent * level)
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        out = []
        for k, v in value.items():
            if isinstance(v, (dict, list)) and v:
                out.append(f"{pad}{_yaml_scalar(k)}:")
                out.extend(_yaml_lines(v, indent, level + (1 if isinstance(v, dict) else 0)))
            else:
                out.append(f"{pad}{_yaml_scalar(k)}: {_yaml_lines(v, indent, 0)[0]}")
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "[]"]
        out = []
        for item in value:
            sub = _yaml_lines(item, indent, 0)
            out.append(pad + "- " + sub[0])
            out.extend(pad + "  " + line for line in sub[1:])
        return out
    return [pad + _yaml_scalar(value)]


def to_yaml(value, indent=2, **_kw):
    """A small block-style YAML emitter (scalars, lists, dicts)."""
    return "\n".join(_yaml_lines(value, indent, 0)) + "\n"


def to_nice_yaml(value, indent=4, **kw):
    return to_yaml(value, indent=indent, **kw)


def _flags(ignorecase, multiline):
    return (re.I if ignorecase else 0) | (re.M if multiline else 0)


def regex_search(value, regex, *args, **kw):
    flags = _flags(kw.get("ignorecase", False), kw.get("multiline", False))
    match = re.search(regex, str(value), flags)
    if not match:
        return None
    if not args:
        return match.group()
    out = []
    for arg in args:
        if arg.startswith("\\g<"):
            out.append(match.group(arg[3:-1]))
        elif arg.startswith("\\"):
            out.append(match.group(int(arg[1:])))
        else:
            raise FilterError(f"regex_search: unknown argument {arg!r}")
    return out


def regex_replace(value="", pattern="", replacement="", ignorecase=False, multiline=False, count=0):
    return re.compile(pattern, _flags(ignorecase, multiline)).sub(replacement, str(value), count)


def regex_findall(value, regex, multiline=False, ignorecase=False):
    return re.findall(regex, str(value), _flags(ignorecase, multiline))


def regex_escape(value):
    return re.escape(str(value))


def ternary(value, true_val, false_val, none_val=None):
    if value is None and none_val is not None:
        return none_val
    return true_val if value else false_val


def _merge(a, b, recursive, list_merge):
    out = dict(a)
    for k, v in b.items():
        if recursive and isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, recursive, list_merge)
        elif isinstance(v, list) and isinstance(out.get(k), list) and list_merge != "replace":
            old = out[k]
            if list_merge == "append":
                out[k] = old + v
            elif list_merge == "prepend":
                out[k] = v + old
            elif list_merge == "append_rp":
                out[k] = [x for x in old if x not in v] + v
            elif list_merge == "prepend_rp":
                out[k] = v + [x for x in old if x not in v]
            else:
                out[k] = old if list_merge == "keep" else v
        else:
            out[k] = v
    return out


def combine(*terms, **kw):
    recursive = kw.get("recursive", False)
    list_merge = kw.get("list_merge", "replace")
    out = {}
    for term in terms:
        for d in (term if isinstance(term, list) else [term]):
            if not isinstance(d, dict):
                raise FilterError(f"combine: expected dicts, got {type(d).__name__}")
            out = _merge(out, d, recursive, list_merge)
    return out


def dict2items(value, key_name="key", value_name="value"):
    if not isinstance(value, dict):
        raise FilterError(f"dict2items requires a dictionary, got {type(value).__name__} instead.")
    return [{key_name: k, value_name: v} for k, v in value.items()]


def items2dict(value, key_name="key", value_name="value"):
    try:
        return {item[key_name]: item[value_name] for item in value}
    except (KeyError, TypeError) as exc:
        raise FilterError(f"items2dict: each item needs '{key_name}' and '{value_name}' ({exc})") from exc


def mandatory(value, msg=None):
    if is_undefined(value):
        name = getattr(value, "_undefined_name", None)
        raise FilterError(msg or "Mandatory variable %s not defined." % (f"'{name}'" if name else "is"))
    return value


def split(value, sep=None, maxsplit=-1):
    return str(value).split(sep, maxsplit)


def quote(value):
    import shlex

    return shlex.quote(str(value))


def flatten(value, levels=None, skip_nulls=True):
    out = []
    for item in value:
        if item is None and skip_nulls:
            continue
        if isinstance(item, (list, tuple)) and (levels is None or levels > 0):
            out.extend(flatten(item, None if levels is None else levels - 1, skip_nulls))
        else:
            out.append(item)
    return out


def _unique(seq):
    out = []
    for x in seq:
        if x not in out:
            out.append(x)
    return out


def unique(environment, a, case_sensitive=None, attribute=None):
    """ansible.builtin.unique: Jinja2's filter made a list, case-insensitive unless told (Ansible
    passes ``bool(case_sensitive)``); items it cannot hash fall back to keeping the first of each."""
    from jinja2.filters import do_unique

    try:
        return list(do_unique(environment, a, case_sensitive=bool(case_sensitive), attribute=attribute))
    except TypeError:
        if case_sensitive is False or attribute:
            raise FilterError("Jinja2's unique filter failed and we cannot fall back to Ansible's version "
                              "as it does not support the parameters supplied.") from None
        return _unique(a)


def difference(a, b):
    return [x for x in _unique(a) if x not in b]


def intersect(a, b):
    return [x for x in _unique(a) if x in b]


def union(a, b):
    return _unique(list(a) + list(b))


def symmetric_difference(a, b):
    return [x for x in union(a, b) if x not in intersect(a, b)]


def b64encode(value, encoding="utf-8", urlsafe=False):
    import base64

    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return encode(str(value).encode(encoding, "surrogateescape")).decode("ascii")


def b64decode(value, encoding="utf-8", urlsafe=False):
    """Ansible's: bytes that are not text in ``encoding`` are kept (surrogate escapes), so that
    ``content: "{{ latin1 | b64decode }}"`` writes the original bytes."""
    import base64

    decode = base64.urlsafe_b64decode if urlsafe else base64.b64decode
    return decode(str(value).encode("utf-8", "surrogateescape")).decode(encoding, "surrogateescape")


def hash_filter(value, algorithm="sha1"):
    from .lowlevel import hexdigest

    return hexdigest(algorithm, str(value).encode("utf-8"))


def type_debug(value):
    """The type's name; for the runtime's marked text, dicts and lists (host data, trusted
    text) the built-in type's, as ansible-core names its tagged types' base type."""
    cls = type(value)
    while getattr(cls, "_rustle_tagged", False):
        cls = cls.__mro__[1]
    return cls.__name__


def path_join(parts):
    return os.path.join(*parts)


def splitext(value):
    return list(os.path.splitext(value))


def random_filter(end, start=None, step=None, seed=None):
    """Ansible's ``random``: a number below an integer ``end``, or an item of a sequence."""
    import random

    r = random.SystemRandom() if seed is None else random.Random(seed)
    if isinstance(end, int) and not isinstance(end, bool):
        return r.randrange(start or 0, end, step or 1)
    if hasattr(end, "__iter__"):
        if start or step:
            raise FilterError("start and step can only be used with integer values")
        return r.choice(list(end))
    raise FilterError("random can only be used on sequences and integers")


def shuffle(value, seed=None):
    import random

    items = list(value)
    (random.Random(seed) if seed else random.SystemRandom()).shuffle(items)
    return items


def zip_filter(*args):
    return [list(t) for t in zip(*args)]


def zip_longest(*args, fillvalue=None):
    import itertools

    return [list(t) for t in itertools.zip_longest(*args, fillvalue=fillvalue)]


def combinations(value, n):
    import itertools

    return [list(t) for t in itertools.combinations(value, n)]


def permutations(value, n=None):
    import itertools

    return [list(t) for t in itertools.permutations(value, n)]


def product(*args, **kw):
    import itertools

    return [list(t) for t in itertools.product(*args, **kw)]


def logarithm(x, base=None):
    import math

    try:
        if base == 10:
            return math.log10(x)
        return math.log(x) if base is None else math.log(x, base)
    except TypeError as exc:
        raise FilterError(f"log() can only be used on numbers: {exc}") from exc


def power(x, y):
    import math

    try:
        return math.pow(x, y)
    except TypeError as exc:
        raise FilterError(f"pow() can only be used on numbers: {exc}") from exc


def root(x, base=2):
    import math

    try:
        return math.sqrt(x) if base == 2 else math.pow(x, 1.0 / float(base))
    except (TypeError, ValueError) as exc:
        raise FilterError(f"root() can only be used on numbers: {exc}") from exc


def strftime(fmt, second=None, utc=False):
    import time

    if second is not None:
        try:
            second = float(second)
        except (TypeError, ValueError) as exc:
            raise FilterError(f"Invalid value for epoch value ({second})") from exc
    return time.strftime(fmt, (time.gmtime if utc else time.localtime)(second))


def to_datetime(value, format="%Y-%m-%d %H:%M:%S"):  # noqa: A002 - Ansible's keyword
    import datetime

    return datetime.datetime.strptime(value, format)


def to_uuid(value, namespace="361E6D51-FAEC-444A-9079-341386DA8E2E"):
    import uuid

    ns = namespace if isinstance(namespace, uuid.UUID) else uuid.UUID(str(namespace))
    return str(uuid.uuid5(ns, str(value)))


def extract(item, container, morekeys=None):
    keys = [item] + (morekeys if isinstance(morekeys, list) else [] if morekeys is None else [morekeys])
    value = container
    for key in keys:
        value = value[key]
    return value


def subelements_filter(value, subelements, skip_missing=False):
    from .lookups import LookupError_, _subelements

    try:
        return _subelements([value, subelements, {"skip_missing": skip_missing}], None)
    except LookupError_ as exc:
        raise FilterError(str(exc)) from exc


def rekey_on_member(data, key, duplicates="error"):
    if duplicates not in ("error", "overwrite"):
        raise FilterError(f"duplicates parameter to rekey_on_member has unknown value {duplicates!r}")
    items = data.values() if isinstance(data, dict) else data
    out = {}
    for item in items:
        if not isinstance(item, dict):
            raise FilterError("List item is not a valid dict")
        if key not in item:
            raise FilterError(f"Key {key!r} was not found.")
        if out.get(item[key]) and duplicates == "error":
            raise FilterError(f"Key {item[key]!r} is not unique, cannot convert to a dict")
        out[item[key]] = item
    return out


_SIZES = {"Y": 1 << 80, "Z": 1 << 70, "E": 1 << 60, "P": 1 << 50, "T": 1 << 40, "G": 1 << 30,
          "M": 1 << 20, "K": 1 << 10, "B": 1}


def human_readable(size, isbits=False, unit=None):
    """Ansible's ``human_readable``: bytes_to_human, its failure in ansible-core's words (the
    message of the error it raises, then its cause's, as ansible-core chains them)."""
    try:
        return _bytes_to_human(size, isbits, unit)
    except TypeError as exc:
        raise FilterError(f"human_readable() failed on bad input: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - ansible-core's own catch-all, with its words
        raise FilterError(f"human_readable() can't interpret the input: {exc}") from exc


def _bytes_to_human(size, isbits, unit):
    """module_utils.common.text.formatters.bytes_to_human."""
    base = "bits" if isbits else "Bytes"
    suffix = ""
    for suffix, limit in sorted(_SIZES.items(), key=lambda kv: -kv[1]):
        if (unit is None and size >= limit) or (unit is not None and unit.upper() == suffix[0]):
            break
    if limit != 1:
        suffix += base[0]
    else:
        suffix = base
    return f"{size / limit:.2f} {suffix}"


def human_to_bytes(size, default_unit=None, isbits=False):
    m = re.search(r"^\s*(\d*\.?\d*)\s*([A-Za-z]+)?", str(size), flags=re.IGNORECASE)
    if m is None or not m.group(1):
        raise FilterError(f"human_to_bytes() can't interpret following string: {size}")
    number = float(m.group(1))
    unit = m.group(2) or default_unit
    if not unit:
        return int(round(number))
    limit = _SIZES.get(unit[0].upper())
    if limit is None:
        raise FilterError(f"human_to_bytes() failed to convert {size}. Value is not a valid string")
    return int(round(number * limit))


def urldecode(value):
    from urllib.parse import unquote_plus

    return unquote_plus(str(value))


def _ntpath(fn):
    import ntpath

    return getattr(ntpath, fn)


def win_splitdrive(value):
    return list(_ntpath("splitdrive")(value))


def password_hash(password, hashtype="sha512", salt=None, salt_size=None, rounds=None, ident=None):
    """ansible.builtin.password_hash, computed on the host (passhash.py)."""
    from . import passhash
    try:
        return passhash.password_hash(password, hashtype, salt, salt_size, rounds, ident)
    except passhash.HashError as exc:
        raise FilterError(str(exc)) from None


def hash_named(name):
    return lambda value: hash_filter(value, name)


FILTERS = {
    "bool": to_bool, "to_json": to_json, "to_nice_json": to_nice_json, "from_json": from_json,
    "to_yaml": to_yaml, "to_nice_yaml": to_nice_yaml, "regex_search": regex_search,
    "regex_replace": regex_replace, "regex_findall": regex_findall, "regex_escape": regex_escape,
    "ternary": ternary, "combine": combine, "dict2items": dict2items, "items2dict": items2dict,
    "mandatory": mandatory, "split": split, "quote": quote, "flatten": flatten,
    "difference": difference, "intersect": intersect, "union": union,
    "symmetric_difference": symmetric_difference, "b64encode": b64encode, "b64decode": b64decode,
    "hash": hash_filter, "checksum": hash_filter, "type_debug": type_debug,
    "basename": os.path.basename, "dirname": os.path.dirname, "expanduser": os.path.expanduser,
    "expandvars": os.path.expandvars, "realpath": os.path.realpath, "path_join": path_join,
    "splitext": splitext,
    "random": random_filter, "shuffle": shuffle, "zip": zip_filter, "zip_longest": zip_longest,
    "combinations": combinations, "permutations": permutations, "product": product,
    "log": logarithm, "pow": power, "root": root, "strftime": strftime,
    "to_datetime": to_datetime, "to_uuid": to_uuid, "extract": extract,
    "subelements": subelements_filter, "rekey_on_member": rekey_on_member,
    "human_readable": human_readable, "human_to_bytes": human_to_bytes, "urldecode": urldecode,
    "md5": hash_named("md5"), "sha1": hash_named("sha1"), "normpath": os.path.normpath,
    "relpath": os.path.relpath, "commonpath": os.path.commonpath,
    "win_basename": lambda p: _ntpath("basename")(p), "win_dirname": lambda p: _ntpath("dirname")(p),
    "win_splitdrive": win_splitdrive, "urlsplit": lambda value, query="": urlsplit(value, query),
    "comment": lambda text, style="plain", **kw: comment(text, style, **kw),
    "password_hash": password_hash,
}
# filters the templating environment adds (they need the task's variables): fileglob runs on
# the controller, the host reads what the compiler recorded (templating._fileglob)
CONTEXT_FILTERS = ("fileglob",)
# ansible.builtin filters the compiler refuses, and why
REFUSED_FILTERS = {
    "from_yaml": "the runtime carries no YAML parser",
    "from_yaml_all": "the runtime carries no YAML parser",
}


# ---------------------------------------------------------------- tests


def _result(value, name):
    if not isinstance(value, dict):
        raise FilterError(f"The '{name}' test expects a dictionary (a registered result)")
    return value


def failed(result):
    return to_bool(_result(result, "failed").get("failed", False))


def succeeded(result):
    return not failed(result)


def changed(result):
    result = _result(result, "changed")
    if "changed" in result:
        return to_bool(result["changed"])
    return any(to_bool(r.get("changed", False)) for r in result.get("results", []) if isinstance(r, dict))


def skipped(result):
    return to_bool(_result(result, "skipped").get("skipped", False))


def finished(result):
    return to_bool(_result(result, "finished").get("finished", True))


def _version_key(text):
    parts = []
    for piece in re.findall(r"\d+|[a-zA-Z]+", str(text)):
        parts.append((0, int(piece), "") if piece.isdigit() else (-1, 0, piece))
    return parts


_OPS = {
    "<": "lt", "lt": "lt", "<=": "le", "le": "le", ">": "gt", "gt": "gt", ">=": "ge", "ge": "ge",
    "==": "eq", "=": "eq", "eq": "eq", "!=": "ne", "<>": "ne", "ne": "ne",
}


def version_compare(value, version, operator="eq", strict=False, version_type=None):
    op = _OPS.get(operator)
    if op is None:
        raise FilterError(f"version: invalid operator {operator!r}")
    a, b = _version_key(value), _version_key(version)
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b, "eq": a == b, "ne": a != b}[op]


def _regex_test(value, pattern, ignorecase=False, multiline=False, match_type="search"):
    flags = _flags(ignorecase, multiline)
    fn = {"match": re.match, "search": re.search, "fullmatch": re.fullmatch}[match_type]
    return bool(fn(pattern, str(value), flags))


def match(value, pattern, ignorecase=False, multiline=False):
    return _regex_test(value, pattern, ignorecase, multiline, "match")


def search(value, pattern, ignorecase=False, multiline=False):
    return _regex_test(value, pattern, ignorecase, multiline, "search")


def truthy(value, convert_bool=False):
    return to_bool(value) if convert_bool else bool(value)


def falsy(value, convert_bool=False):
    return not truthy(value, convert_bool)


def contains(seq, value):
    return value in seq


def subset(a, b):
    return set(a) <= set(b)


def superset(a, b):
    return set(a) >= set(b)


TESTS = {
    "failed": failed, "failure": failed, "succeeded": succeeded, "success": succeeded,
    "successful": succeeded, "changed": changed, "change": changed, "skipped": skipped,
    "skip": skipped, "finished": finished, "version": version_compare,
    "version_compare": version_compare, "match": match, "search": search, "regex": _regex_test,
    "truthy": truthy, "falsy": falsy, "contains": contains, "subset": subset,
    "superset": superset, "any": any, "all": all,
    "exists": lambda p: os.path.exists(os.path.expanduser(str(p))),
    "file": lambda p: os.path.isfile(str(p)), "directory": lambda p: os.path.isdir(str(p)),
    "link": lambda p: os.path.islink(str(p)), "abs": lambda p: os.path.isabs(str(p)),
    "is_file": lambda p: os.path.isfile(str(p)), "is_dir": lambda p: os.path.isdir(str(p)),
    "is_link": lambda p: os.path.islink(str(p)), "is_abs": lambda p: os.path.isabs(str(p)),
    "link_exists": lambda p: os.path.lexists(str(p)), "mount": lambda p: os.path.ismount(str(p)),
    "is_mount": lambda p: os.path.ismount(str(p)),
    "same_file": lambda a, b: os.path.samefile(str(a), str(b)),
    "is_same_file": lambda a, b: os.path.samefile(str(a), str(b)),
    "nan": lambda x: isinstance(x, float) and x != x, "isnan": lambda x: isinstance(x, float) and x != x,
    "issubset": subset, "issuperset": superset,
    "reachable": lambda r: not to_bool(_result(r, "reachable").get("unreachable", False)),
    "unreachable": lambda r: to_bool(_result(r, "unreachable").get("unreachable", False)),
    "started": lambda r: to_bool(_result(r, "started").get("started", True)),
    "timedout": lambda r: bool((_result(r, "timedout").get("timedout") or {}).get("period")),
    "uri": lambda v, schemes=None: _is_uri(v, schemes), "url": lambda v, schemes=None: _is_url(v, schemes),
    "urn": lambda v: _is_uri(v, ["urn"]),
}
REFUSED_TESTS = {
    "vault_encrypted": "the controller decrypts !vault values as it loads them: they are no longer vaulted",
}


def urlsplit(value, query=""):
    """Ansible's ``urlsplit``: every public attribute of urllib's SplitResult, or the one named."""
    from urllib.parse import urlsplit as split

    parts = split(value)
    results = {k: getattr(parts, k) for k in dir(parts)
               if not k.startswith("_") and k not in ("count", "index", "geturl", "encode")}
    if not query:
        return results
    if query not in results:
        raise FilterError(f"urlsplit: unknown URL component: {query}")
    return results[query]


_COMMENT_STYLES = {
    "plain": {"decoration": "# "}, "erlang": {"decoration": "% "}, "c": {"decoration": "// "},
    "cblock": {"beginning": "/*", "decoration": " * ", "end": " */"},
    "xml": {"beginning": "<!--", "decoration": " - ", "end": "-->"},
}


def comment(text, style="plain", **kw):
    """Ansible's ``comment`` filter: ``text`` as a comment block of ``style``."""
    if style not in _COMMENT_STYLES:
        raise FilterError(f"Invalid style {style!r}.")  # Ansible's help text lists the styles
    style_params = _COMMENT_STYLES[style]
    edge = kw.get("decoration", style_params["decoration"]).rstrip()
    p = {"newline": "\n", "beginning": "", "prefix": edge, "prefix_count": 1, "decoration": "",
         "postfix": edge, "postfix_count": 1, "end": ""}
    p.update(style_params)
    p.update(kw)
    nl, deco = p["newline"], p["decoration"]
    beginning = f"{p['beginning']}{nl}" if p["beginning"] else ""
    prefix = ""
    if p["prefix"]:
        prefix = (nl if p["prefix"] == nl else f"{p['prefix']}{nl}") * int(p["prefix_count"])
    body = (deco + text.replace(nl, nl + deco)).replace(deco + nl, deco.rstrip() + nl)
    postfix = nl.join([""] + [p["postfix"]] * int(p["postfix_count"]))
    end = f"{nl}{p['end']}" if p["end"] else ""
    return beginning + prefix + body + postfix + end


def _is_uri(value, schemes=None):
    """Ansible's ``uri`` test: anything urlparse takes (junk too), in ``schemes`` when given."""
    from urllib.parse import urlparse

    try:
        scheme = urlparse(value).scheme
    except Exception:  # noqa: BLE001 - Ansible's test: anything urlparse refuses is no URI
        return False
    return not schemes or scheme in schemes


def _is_url(value, schemes=None):
    """Ansible's ``url`` test: a URI with a network location, or a file: one."""
    from urllib.parse import urlparse

    if not _is_uri(value, schemes):
        return False
    parts = urlparse(value)
    return bool(parts.netloc or parts.scheme == "file")


FILTERS["version_compare"] = version_compare
