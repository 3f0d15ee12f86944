"""Ansible's lookup plugins (``ansible.builtin``), run on the host.

``LOOKUPS`` maps each name the runtime implements to ``fn(terms, ctx, **options) -> list``; the
compiler refuses a plan that names any other lookup (``REFUSED`` says why for Ansible's own),
so no lookup is ever silently empty. ``run`` applies Ansible's calling convention: ``wantlist``,
``errors=strict|warn|ignore``, and a result of one item returned as that item, of several
strings joined with commas, else as the list.

Controller files: ``file`` and ``template`` read what the compiler embedded for the task (found
over Ansible's search path: the plan's directory, its ``files/`` or ``templates/``, and the
``--files-dir`` ones); a ``file`` name the compiler could not know (an expression) is read on
the host, which is the controller's view only for a local connection.

Controller lookups (``CONTROLLER``: env, pipe, lines, fileglob, first_found, password, csvfile,
config, and the playbook's and roles' own lookup plugins, ``PLUGINS``) run where Ansible
runs them, on the controller: the compiler calls them through ``controller`` (set only while it
compiles) for every call whose terms it can decide, and embeds each result under its
``lookup_key``; the host reads that result. A call whose terms depend on host data (a fact, a
registered result) has no embedded result and fails with a message saying so.
"""

import itertools
import os
import re


class LookupError_(Exception):  # noqa: N801 - LookupError is a builtin
    """A lookup could not give its values."""


class PluginLoadError(LookupError_):
    """The playbook's own plugin failed to load (its file, or its plugin object, raised)."""


class _Context:
    """What a lookup sees: the task's variables, the templar, the embedded files."""

    def __init__(self, scope, templar):
        self.scope = scope
        self.templar = templar

    def embedded(self, kind):
        from .templating import embedded

        return embedded(self.scope, kind) if self.scope is not None else {}

    def read(self, sha):
        if self.templar is None or self.templar.read_file is None:
            raise LookupError_("this artifact cannot read its embedded files here")
        return self.templar.read_file(sha)


def _flatten(terms):
    out = []
    for term in terms:
        if isinstance(term, (list, tuple)):
            out.extend(term)
        else:
            out.append(term)
    return out


def _file(terms, ctx, rstrip=True, lstrip=False):
    known = ctx.embedded("files")
    recorded = ctx.embedded("lookups")
    out = []
    for term in terms:
        sha = known.get(term)
        locked = ctx.embedded("locked").get(term) if sha is None else None
        if locked:  # vault-encrypted, and no secret of the run opens it (compiler/sources.py)
            raise LookupError_(f"Unable to access the file {term!r}: {locked}")
        try:
            if sha is not None:
                text = ctx.read(sha).decode("utf-8", "surrogateescape")
            elif controller is not None or lookup_key("file", [term], {}) in recorded:
                # a name the compiler computed (lookup('file', *names)): read on the controller
                text = _controller_values("file", [term], ctx, {})[0]
            else:
                with open(os.path.expanduser(str(term)), encoding="utf-8", errors="surrogateescape") as fh:
                    text = fh.read()
        except OSError as exc:
            raise LookupError_(f"Unable to access the file {term!r}.") from exc
        if lstrip:
            text = text.lstrip()
        if rstrip:
            text = text.rstrip()
        out.append(text)
    return out


def _template(terms, ctx, template_vars=None, convert_data=True, variable_start_string="{{",
              variable_end_string="}}", comment_start_string="{#", comment_end_string="#}",
              trim_blocks=True, jinja2_native=False):
    known = ctx.embedded("templates")
    sources = ctx.embedded("sources")
    out = []
    for term in terms:
        sha = known.get(term)
        if sha is None:
            raise LookupError_(f"the template file {term} could not be found for the lookup")
        text = ctx.read(sha).decode("utf-8", "surrogateescape")
        extra = template_file_vars(term, sources.get(term) or {}, None, ctx.scope)
        extra.update(template_vars or {})
        overrides = {"variable_start_string": variable_start_string, "variable_end_string": variable_end_string,
                     "comment_start_string": comment_start_string, "comment_end_string": comment_end_string,
                     "trim_blocks": trim_blocks}
        # a template that writes nothing gives None; text without template syntax is text
        nothing = None if any(m in text for m in (variable_start_string, "{%", comment_start_string)) else ""
        # ansible-core 2.19 renders it natively whatever convert_data and jinja2_native say
        out.append(ctx.templar.render(text, ctx.scope.child(extra), overrides, nothing=nothing, native=True))
    return out


def template_file_vars(path, source, dest, scope):
    """Ansible's template variables (``template_path``, ``template_fullpath``, ``template_host``,
    ``template_uid``, ``template_mtime``, ``template_run_date``, ``template_destpath``) and
    ``ansible_managed`` unless the play sets it; ``source`` is what the compiler recorded of the
    controller's file."""
    import datetime

    mtime = source.get("mtime")
    out = {
        "template_path": path,
        "template_fullpath": source.get("fullpath", path),
        "template_host": source.get("host", ""),
        "template_uid": source.get("uid", ""),
        "template_mtime": datetime.datetime.fromtimestamp(mtime) if mtime is not None else None,
        "template_run_date": datetime.datetime.now(),
        "template_destpath": dest,
    }
    if scope is None or "ansible_managed" not in scope:
        out["ansible_managed"] = "Ansible managed"
    return out


def _list(terms, ctx):
    return list(terms)


def _items(terms, ctx):
    return _flatten(terms)


def _indexed_items(terms, ctx):
    items = _flatten(terms)
    return [[i, item] for i, item in enumerate(items)]


WITH_TERMS = "__rustle_with_terms"  # the task variable holding a with_<lookup>'s terms (playbook/compile.py)


def _shown_type(value, ctx):
    """``type(value)`` as ansible-core 2.19 shows it in a with_<lookup>'s error: a value written
    in the playbook or its vars (a literal term, or a variable given whole, ``{{ a_list }}``)
    carries its Origin tag (datatag.shown_type); one a template computed is plain."""
    from .datatag import shown_type
    from .templating import _UNSAFE, _VARIABLE_ONLY, has_template

    if ctx.scope is None:
        return shown_type(value, False)
    try:
        raw = ctx.scope.raw(WITH_TERMS)
        bare = _VARIABLE_ONLY.match(raw.strip()) if isinstance(raw, str) else None
        if bare is not None and "." not in raw and "[" not in raw:
            raw = ctx.scope.raw(raw.strip()[2:-2].strip())
    except KeyError:
        return shown_type(value, False)
    return shown_type(value, not has_template(raw) and not isinstance(raw, _UNSAFE))


def _dict(terms, ctx):
    out = []
    for term in terms:
        if not isinstance(term, dict):
            raise LookupError_(f"the 'dict' lookup plugin expects a dictionary, got '{term}' of type "
                               f"{_shown_type(term, ctx)})")
        out.extend({"key": k, "value": v} for k, v in term.items())
    return out


def _together(terms, ctx):
    if not terms:
        raise LookupError_("with_together requires at least one element in each list")
    return [_flatten(x) for x in itertools.zip_longest(*terms, fillvalue=None)]


def _nested(terms, ctx):
    if not terms:
        raise LookupError_("with_nested requires at least one element in the nested list")
    result = terms[0]
    for more in terms[1:]:
        result = [_flatten([x, y]) for x in result for y in more]
    return [_flatten(x) if isinstance(x, list) else [x] for x in result]


def _random_choice(terms, ctx):
    import secrets

    return [secrets.choice(terms)] if terms else list(terms)


def _subelements(terms, ctx):
    def fail(msg=""):
        raise LookupError_("subelements lookup expects a list of two or three items, " + msg)

    if not 2 <= len(terms) <= 3:
        fail()
    if not isinstance(terms[0], (list, dict)) or not isinstance(terms[1], str):
        fail("first a dict or a list, second a string pointing to the subkey")
    keys = terms[1].split(".")
    if isinstance(terms[0], dict):
        if terms[0].get("skipped", False) is not False:
            return []
        elements = list(terms[0].values())
    else:
        elements = terms[0]
    flags = terms[2] if len(terms) == 3 else {}
    if not isinstance(flags, dict):
        fail("the optional third item must be a dict with flags skip_missing")  # Ansible's '%s' % ('skip_missing',)
    from .filters import to_bool

    skip_missing = to_bool(flags.get("skip_missing", False))
    out = []
    for item in elements:
        if not isinstance(item, dict):
            raise LookupError_(f"subelements lookup expects a dictionary, got '{item}'")
        if item.get("skipped", False) is not False:
            continue
        import copy

        item = copy.deepcopy(item)  # Ansible pops the list out of (its copy of) the item
        value = item
        sublist = []
        for n, key in enumerate(keys):
            last = n == len(keys) - 1
            if key not in value:
                if skip_missing:
                    continue
                raise LookupError_(f"could not find '{key}' key in iterated item '{value}'")
            if not last:
                if not isinstance(value[key], dict):
                    if skip_missing:
                        continue
                    raise LookupError_(f"the key {key} should point to a dictionary, got '{value[key]}'")
                value = value[key]
            elif not isinstance(value[key], list):
                raise LookupError_(f"the key {key} should point to a list, got '{value[key]}'")
            else:
                sublist = value.pop(key)
        out.extend([item, sub] for sub in sublist)
    return out


_SEQUENCE = re.compile(r"^((0?x?[0-9a-f]+)-)?(0?x?[0-9a-f]+)(/(0?x?[0-9a-f]+))?(:(.+))?$", re.I)


def _number(text, field):
    """An integer option of ``sequence`` (hex with 0x, octal with a leading 0), refused in
    the words of Ansible's option check (which names every value's origin 'Direct')."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    text = str(text)
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        if len(text) > 1 and text.startswith("0"):
            return int(text, 8)
        return int(text)
    except ValueError:
        raise LookupError_(f"Config '{field}' for 'sequence' lookup plugin from 'Direct' has an invalid "
                           f"value: Invalid value provided for 'integer': {text!r}") from None


def _sequence(terms, ctx, **options):
    out = []
    if options and not terms:
        terms = [""]
    for term in terms:
        fields = {"start": 1, "end": None, "stride": 1, "count": None, "format": "%d"}
        fields.update(options)
        match = _SEQUENCE.match(str(term)) if term else None
        if match:
            if match.group(2):
                fields["start"] = match.group(2)
            fields["end"] = match.group(3)
            if match.group(5):
                fields["stride"] = match.group(5)
            if match.group(7):
                fields["format"] = match.group(7)
        elif term:
            import shlex

            for word in shlex.split(str(term)):
                key, sep, value = word.partition("=")
                if not sep or key not in fields:
                    raise LookupError_(f"unrecognized arguments to with_sequence: [{key!r}]")
                fields[key] = value
        start, stride = _number(fields["start"], "start"), _number(fields["stride"], "stride")
        end = None if fields["end"] is None else _number(fields["end"], "end")
        count = None if fields["count"] is None else _number(fields["count"], "count")
        if count is None and end is None:
            raise LookupError_("must specify count or end in with_sequence")
        if count is not None and end is not None:
            raise LookupError_("can't specify both count and end in with_sequence")
        if count is not None:
            if count == 0:
                continue
            end = start + count * stride - 1
        if stride > 0 and end < start:
            raise LookupError_("to count backwards make stride negative")
        if stride < 0 and end > start:
            raise LookupError_("to count forward don't make stride negative")
        if stride == 0:
            continue
        fmt = str(fields["format"])
        if fmt.count("%") != 1:
            raise LookupError_(f"bad formatting string: {fmt}")
        out.extend(fmt % i for i in range(start, end + (1 if stride > 0 else -1), stride))
    return out


def _vars(terms, ctx, default=None):
    out = []
    for term in terms:
        if not isinstance(term, str):
            raise LookupError_(f"Variable name must be 'str' not '{type(term).__name__}'.")
        try:
            out.append(ctx.scope[term])
        except KeyError:
            if default is None:
                from .templating import undef

                out.append(undef(f"No variable named {term!r} was found."))
            else:
                out.append(default)
    return out


def _varnames(terms, ctx):
    names = list(ctx.scope.keys())
    out = []
    for term in terms:
        if not isinstance(term, str):
            raise LookupError_(f'Invalid setting identifier, "{term}" is not a string, it is a {type(term)}')
        try:
            pattern = re.compile(term)
        except re.error as exc:
            raise LookupError_(f'Unable to use "{term}" as a search parameter: {exc}') from exc
        out.extend(n for n in names if pattern.search(n))
    return out


def _found(scope):
    from .templating import FOUND_VAR

    try:
        return scope.raw(FOUND_VAR)
    except KeyError:
        return None


def _first_found(terms, ctx, files=None, paths=None, skip=False):
    """``first_found`` in an include's file name: the first candidate (ansible-core's order:
    each term's ``paths`` x ``files``) the compiler found on the controller, which embedded what
    each names; Ansible's search order was applied there."""
    found = _found(ctx.scope)

    def split(value, seps):
        items = value if isinstance(value, (list, tuple)) else [value]
        return [p for v in items if isinstance(v, str) for p in re.split("[" + seps + "]", v) if p]

    def candidates(term):
        if isinstance(term, dict):
            names, where = split(term.get("files") or [], ",;"), split(term.get("paths") or paths or [], ",:;")
        elif isinstance(term, str):
            names, where = split(term, ",;"), split(paths or [], ",:;")
        elif isinstance(term, (list, tuple)):
            return [c for t in term for c in candidates(t)]
        else:
            raise LookupError_("Invalid term supplied. A string, dict or list is required.")
        return [os.path.join(p, n) for p in where for n in names] if where else names

    for name in candidates(list(terms) + ([{"files": files, "paths": paths}] if files else [])):
        if name in found:
            return [found[name]]
    if skip:
        return []
    raise LookupError_("No file was found when using first_found.")


LOOKUPS = {
    "file": _file, "template": _template,
    "list": _list, "items": _items, "indexed_items": _indexed_items, "dict": _dict,
    "together": _together, "nested": _nested, "random_choice": _random_choice,
    "subelements": _subelements, "sequence": _sequence, "vars": _vars, "varnames": _varnames,
}
# ansible.builtin lookups the compiler refuses, and why (the compiler reads this dict)
REFUSED = {
    "ini": "it reads a controller file by a computed name",
    "inventory_hostnames": "it needs the inventory's host patterns on the host",
    "url": "it fetches from the controller",
}


# ansible.builtin lookups Ansible runs on the controller; the compiler embeds their results
CONTROLLER = frozenset(("env", "pipe", "lines", "fileglob", "first_found", "password", "csvfile", "config"))
# the playbook's and roles' own plugins (kind -> names), run by ansible-core on the controller
# like CONTROLLER lookups; set from the plan (templating.register_plugins)
# ansible.builtin's vault plugins are run there too (the host has no AES)
ANSIBLE_RUNS = {"lookup": frozenset(("unvault",)), "filter": frozenset(("vault", "unvault")),
                "test": frozenset(("vaulted_file",))}
PLUGINS = dict(ANSIBLE_RUNS)
# the compiler's runner of CONTROLLER lookups, fn(name, terms, options, scope) -> list; None on
# hosts, where the embedded results are read instead
controller = None


def lookup_key(name, terms, options):
    """The key of one controller lookup call's embedded result."""
    import json

    return json.dumps([name, list(terms), options], sort_keys=True, default=str)


PASSWORD_PARAMS = frozenset(("length", "encrypt", "chars", "ident", "seed"))
DEFAULT_PASSWORD_CHARS = ["ascii_letters", "digits", ".,:-_"]


def password_params(term, kwargs):
    """The password lookup's term: a path, then ``key=value`` parameters (over ``kwargs``)."""
    import shlex

    params = {"length": 20, "chars": DEFAULT_PASSWORD_CHARS, "seed": None, "encrypt": None, "ident": None}
    unknown = set(kwargs) - PASSWORD_PARAMS
    if unknown:
        raise LookupError_(f"Unrecognized parameter(s) given to password lookup: {', '.join(sorted(unknown))}")
    params.update(kwargs)
    relpath, _, rest = term.partition(" ")
    given = {}
    words = shlex.split(rest) if rest.strip() else []
    for i, word in enumerate(words):
        key, eq, value = word.partition("=")
        if not eq:
            if given:
                raise LookupError_("Unrecognized value after key=value parameters given to password lookup")
            relpath = " ".join([relpath, *words[: i + 1]])
            continue
        given[key] = value
    unknown = set(given) - PASSWORD_PARAMS
    if unknown:
        raise LookupError_(f"Unrecognized parameter(s) given to password lookup: {', '.join(sorted(unknown))}")
    params.update(given)
    return relpath, params


def random_password(params):
    """Ansible's ``random_password``: ``length`` characters of ``chars`` (``seed``: repeatable)."""
    import random
    import string

    chars = params["chars"]
    if isinstance(chars, str):  # Ansible's _gen_candidate_chars over a comma list
        specs = ([","] if ",," in chars else []) + [c for c in chars.replace(",,", ",").split(",") if c]
    else:
        specs = [str(c) for c in chars]
    named = [getattr(string, spec, spec) for spec in specs]
    text = "".join(v if isinstance(v, str) else spec for v, spec in zip(named, specs))
    text = text.replace('"', "").replace("'", "")
    if not text:
        raise LookupError_("lookup('password'): chars gives no characters to choose from")
    seed = params.get("seed")
    rng = random.SystemRandom() if seed is None else random.Random(seed)
    return "".join(rng.choice(text) for _ in range(int(params["length"])))


def _to_nowhere(name, terms):
    """Whether a call is ``lookup('password', '/dev/null ...')``: it reads and writes nothing of
    the controller, and Ansible makes a new password at each call, so the host makes it."""
    return name == "password" and bool(terms) and all(
        isinstance(t, str) and t.partition(" ")[0] == "/dev/null" for t in terms)


def _password_nowhere(terms, ctx, **options):
    import random

    from . import passhash

    out = []
    for term in terms:
        _, params = password_params(term, options)
        password = random_password(params)
        encrypt = params.get("encrypt")
        if encrypt:
            salt = "".join(random.SystemRandom().choice(passhash.SALT_CHARS)
                           for _ in range(passhash.salt_size(encrypt)))
            try:
                password = passhash.password_hash(password, encrypt, salt=salt,
                                                  ident=params.get("ident") or passhash.implicit_ident(encrypt))
            except passhash.HashError as exc:
                raise LookupError_(str(exc)) from None
        out.append(password)
    return out


def _controller_values(name, terms, ctx, options):
    if _to_nowhere(name, terms):
        return _password_nowhere(terms, ctx, **options)
    if controller is not None:
        return controller(name, terms, options, ctx.scope)
    found = ctx.embedded("lookups").get(lookup_key(name, terms, options))
    if found is None and name == "first_found" and ctx.embedded("first_found"):
        return _first_found_here(terms, ctx, **options)
    if found is None:
        kind, _, plugin = name.partition(":")
        if name == "fileglob_filter":
            what = "the fileglob filter"
        elif plugin and kind in ("filter", "test"):
            what = f"the {kind} '{plugin}' (a {kind}_plugins/ file of the playbook or a role)"
        else:
            what = f"lookup('{name}')"
        raise LookupError_(
            f"{what} runs on the controller, and the controller could not resolve "
            f"these terms when it compiled the task: {list(terms)!r} (they depend on host data: "
            "a fact, a registered result); hint: compute the terms from variables the "
            "controller knows (inventory, play, role and task variables, loop items)")
    if "error" in found:
        raise (PluginLoadError if found.get("load") else LookupError_)(found["error"])
    if "run_time_files" in found:  # lookup('file') of files the play created: sent with the phase
        return [_run_time_text(path) for path in found["run_time_files"]]
    if ctx.templar is not None:  # what the plugin deprecated or warned of: the task's result holds it
        from .templating import unsafe

        for key in ("deprecations", "warnings"):
            captured = getattr(ctx.templar, key, None)
            for item in found.get(key) or ():
                item = unsafe(item)
                if captured is not None and item not in captured:
                    captured.append(item)
    return list(found["values"])


def _first_found_here(terms, ctx, files=None, paths=None, skip=False, _subdir=None):
    """``first_found`` over terms only the host could render (a fact in a file name): ansible-core
    2.19's search (``_process_terms``, then ``path_dwim_relative_stack`` over the task's
    ``ansible_search_path``), checked against the controller's files the compiler listed
    (``first_found`` index: roots, depth, paths). A candidate the listing does not cover is
    the controller's to decide, and it could not: the lookup fails saying so."""
    index = ctx.embedded("first_found")
    existing = set(index.get("paths") or ())
    roots = [r.rstrip("/") for r in index.get("roots") or ()]
    depth = int(index.get("depth") or 0)
    base = index.get("base_dir") or "."

    def covered(path):
        for root in roots:
            if path.startswith(root + "/"):
                return len(path[len(root) + 1:].split("/")) <= depth
        return False

    search = ctx.scope.get("ansible_search_path") if ctx.scope is not None else None
    search = [str(p) for p in search] if isinstance(search, list) and search else [base]
    options = {"files": files or [], "paths": paths or [], "skip": skip}
    for needle in _first_found_terms(list(terms) or list(options["files"]), options):
        if needle.startswith(("~", "/")):
            candidates = [os.path.normpath(needle)]
        else:
            dirname = str(_subdir)  # ansible-core joins None as "None" for a lookup() call
            candidates = []
            for path in [*search, base]:
                path = os.path.normpath(path)
                if needle.split("/")[0] != dirname:
                    candidates.append(os.path.join(path, dirname, needle))
                candidates.append(os.path.join(path, needle))
        for path in dict.fromkeys(os.path.normpath(c) for c in candidates):
            if path in existing:
                return [path]
            if not covered(path):
                raise LookupError_(
                    f"lookup('first_found') runs on the controller, and the controller could not list "
                    f"{path!r} for the host to choose from when it compiled the task (the file names "
                    "depend on host data: a fact, a registered result); hint: keep the candidate files "
                    "in the role or beside the playbook")
    if options["skip"] is True or str(options["skip"]).lower() in ("yes", "true", "1", "on", "y"):
        return []
    raise LookupError_("No file was found when using first_found.")


def _first_found_terms(terms, options):
    """ansible-core's first_found ``_process_terms``: the candidate names in search order."""

    def split(value, seps):
        if isinstance(value, str):
            return re.split("[" + re.escape(seps) + "]", value)
        return [part for item in value for part in split(item, seps)]

    total = []
    for term in terms:
        if isinstance(term, dict):
            options.update({k: term[k] for k in ("files", "paths", "skip") if k in term})
            names = options["files"]
        elif isinstance(term, str):
            names = [term]
        elif isinstance(term, (list, tuple)):
            total.extend(_first_found_terms(list(term), options))
            continue
        else:
            raise LookupError_("Invalid term supplied. A string, dict or list is required, not "
                               f"{type(term).__name__!r}).")
        names, where = split(names, ",;"), split(options["paths"], ",:;")
        total.extend([os.path.join(p, n) for p in where for n in names] if where else names)
    return total


run_time_files = {}  # the controller files this phase reads (the run's inject.files), by path
run_time_locked = {}  # those no vault secret of the run opens: path -> ansible-core's words (inject.locked)


def _run_time_text(path):
    import base64

    sent = run_time_files.get(path)
    if not isinstance(sent, dict) or not isinstance(sent.get("data"), str):
        raise LookupError_(f"Unable to access the file {path!r}: {run_time_locked.get(path) or 'File not found.'}")
    return base64.b64decode(sent["data"]).decode("utf-8", "surrogateescape")


def _short(name):
    """``ansible.builtin.NAME`` (or ``ansible.legacy.NAME``) is ``NAME``."""
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if isinstance(name, str) and name.startswith(prefix):
            return name[len(prefix):]
    return name


def _accepted(fn, options):
    import inspect

    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return options
    return {k: v for k, v in options.items() if k in params and k not in ("terms", "ctx")}


def _controller_runs(name):
    """Whether ansible-core runs lookup ``name`` on the controller (compiler/ansible_plugins.py)."""
    return (name in CONTROLLER or name in PLUGINS["lookup"] or name == "fileglob_filter"
            or name.partition(":")[0] in ("filter", "test"))


def run(name, terms, scope, templar, /, wantlist=False, errors="strict", **options):
    """``lookup(name, *terms, **options)`` as Ansible calls it; the caller marks the result as
    host data. An option the lookup does not have is ignored, as Ansible's plugins ignore it
    (``lookup('vars', name='x')``); an option named ``name`` or ``terms`` is an option."""
    written, name = name, _short(name)
    fn = LOOKUPS.get(name)
    if name == "first_found" and scope is not None and _found(scope) is not None:
        fn = _first_found  # an include's name: the host picks among the files the compiler found
    if fn is None and name not in REFUSED and not _controller_runs(name):
        # no such lookup (the compiler warned): it fails when evaluated, in ansible-core's words,
        # whatever `errors=` says
        raise LookupError_(f"The lookup plugin '{written}' was not found.")
    try:
        if _controller_runs(name) and fn is not _first_found:
            values = _controller_values(name, list(terms), _Context(scope, templar), options)
        elif fn is None:
            why = REFUSED.get(name, "it is not an ansible.builtin lookup")
            raise LookupError_(f"lookup plugin '{name}' is not supported on the host: {why}")
        else:
            values = fn(list(terms), _Context(scope, templar), **_accepted(fn, options))
    except (LookupError_, TypeError, ValueError) as exc:
        if errors in ("warn", "ignore"):
            return [] if wantlist else None
        kind, _, plugin_name = name.partition(":")
        if name == "fileglob_filter":
            plugin = "filter plugin 'ansible.builtin.fileglob'"
        elif plugin_name and kind in ("filter", "test"):
            plugin = f"{kind} plugin '{plugin_name}'"
        else:
            plugin = f"lookup plugin '{written}'"
        verb = "failed to load" if isinstance(exc, PluginLoadError) else "failed"
        raise LookupError_(f"The {plugin} {verb}: {exc}") from exc  # ansible-core 2.19's words
    if wantlist or not values:
        return values
    if len(values) == 1:
        return values[0]
    if all(isinstance(v, str) for v in values):
        return ",".join(values)
    return values
