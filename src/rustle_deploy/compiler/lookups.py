"""Ansible's controller lookups, run on the controller while a task compiles.

``env``, ``pipe``, ``lines``, ``fileglob``, ``first_found`` and ``password`` (and the ``fileglob``
filter) read (or write) the controller in Ansible. The compiler renders each task that calls one under every variable scope it knows
(``sources.static_scopes``: inventory, play and task variables, static loop items) with
``ControllerLookups`` installed as the runtime's ``lookups.controller``; each call's result (or
its error) is recorded under ``lookups.lookup_key`` and embedded in the task
(``__rustle_search.lookups``, docs/artifact.md), where the host reads it. What they read is
embedded; nothing of the controller is read on the host.

Each follows ansible-core 2.19's plugin: the search path is the task's ``ansible_search_path``
(the plan's directory when unset), Ansible's ``path_dwim_relative_stack`` order, ``pipe`` runs in
the plan's directory, ``password`` stores the plain password in its file (0600, directories
0700) exactly as Ansible does, so that Ansible and rustle-deploy share the stored passwords.
"""

from __future__ import annotations

import glob
import json
import os
import random
import re
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .ansible_plugins import LocalPlugins

CONTROLLER_CALL = re.compile(
    r"""\b(?:lookup|query|q)\(\s*['"](?:ansible\.builtin\.)?(env|pipe|lines|fileglob|first_found|password|csvfile|config|unvault)['"]"""
    r"""|\|\s*(?:ansible\.builtin\.)?(?:fileglob|vault|unvault)\b|\bis\s+(?:not\s+)?(?:ansible\.builtin\.)?vaulted_file\b"""  # the fileglob filter globs the controller too
    r"""|\b(?:lookup|query|q)\(\s*['"](?:ansible\.builtin\.)?file['"]\s*,\s*[^'"\s]""")  # a computed file name
_KV_WORD = re.compile(r"""(?:[^\s"']|"[^"]*"|'[^']*')+""")
_KV = re.compile(r"^\w+=")


class LookupFailed(Exception):
    """A controller lookup failed as Ansible's would (the message is Ansible's); ``load``: the
    plugin failed to load (ansible-core says "failed to load", not "failed")."""

    def __init__(self, message: str, load: bool = False):
        super().__init__(message)
        self.load = load


class _Late(Exception):
    """``lookup('file')`` of absolute paths missing now: read when the task runs."""

    def __init__(self, paths: list[str]):
        super().__init__(paths)
        self.paths = paths


class ControllerLookups:
    """Runs controller lookups for one compilation and records each call's result."""

    def __init__(self, base_dir: str, every_template: bool = False,
                 cache: dict[tuple[str, ...], dict[str, Any]] | None = None,
                 plugins: LocalPlugins | None = None):
        self.base_dir = base_dir
        # the playbook's and roles' own plugins, and the directories ansible-core adds
        self.plugins = plugins or LocalPlugins()
        # render every template of the task, not only those that call a controller lookup
        # themselves (a variable they read may call one)
        self.every_template = every_template
        self.recorded: dict[str, dict[str, Any]] = {}
        # each distinct call (with its search path) runs once per compilation: one pipe
        # command for 1,000 hosts, not 1,000 (shared by the tasks of a build unit)
        self.cache = {} if cache is None else cache

    def __call__(self, name: str, terms: list[Any], options: dict[str, Any], scope: Any) -> list[Any]:
        from ..runcache import volatile

        volatile(f"a controller lookup ({name})")  # its answer may change while no file does
        lookups = _runtime_lookups()
        key = lookups.lookup_key(name, terms, options)
        by_ansible = self._by_ansible(name)
        # a lookup plugin reads the task's variables; a filter or test only its arguments
        reads_vars = by_ansible is not None and by_ansible[0] == "lookup"
        variables = _variables(scope) if reads_vars else None
        cache_key = (key, *self._search_path(scope), json.dumps(variables, sort_keys=True, default=str))
        found = self.cache.get(cache_key)
        if found is None:
            try:
                if by_ansible is not None:
                    found = self._ansible(by_ansible, terms, options, variables or {})
                else:
                    found = {"values": getattr(self, "_" + name)(terms, scope, **options)}
            except (LookupFailed, lookups.LookupError_, TypeError) as exc:  # TypeError: an option it does not have
                found = {"error": str(exc), **({"load": True} if getattr(exc, "load", False) else {})}
            except _Late as late:  # the host reads what the controller sends with the phase
                found = {"run_time_files": late.paths}
            self.cache[cache_key] = found
        earlier = self.recorded.get(key)
        if earlier is not None and earlier != found and reads_vars:
            # one embedded result per call serves every host of the artifact
            found = {"error": f"{name!r} gives a different result for each host of this artifact "
                              "(it reads their variables); rustle-deploy embeds one result per call"}
        self.recorded[key] = found
        if "error" in found:
            raise (lookups.PluginLoadError if found.get("load") else lookups.LookupError_)(found["error"])
        if "run_time_files" in found:
            raise lookups.LookupError_("read when the task runs")
        return list(found["values"])

    # -- ansible-core's plugins -------------------------------------------------------------------
    def _by_ansible(self, name: str) -> tuple[str, str] | None:
        """(kind, name) when ansible-core runs ``name``: ``config``, a local plugin."""
        kind, _, plugin = name.partition(":")
        ansible = _runtime_lookups().ANSIBLE_RUNS
        if plugin and kind in ("filter", "test") and (plugin in self.plugins.names(kind) or plugin in ansible[kind]):
            return kind, plugin
        if name == "config" or name in self.plugins.names("lookup") or name in ansible["lookup"]:
            return "lookup", name
        return None

    def _ansible(self, which: tuple[str, str], terms: list[Any], options: dict[str, Any],
                 variables: dict[str, Any]) -> dict[str, Any]:
        """``{"values": [...]}``, with the ``deprecations`` and ``warnings`` a lookup raised
        (the host adds them to the task's result, as ansible-core does)."""
        from .ansible_plugins import PluginHostError, ansible_available, call

        kind, name = which
        if not ansible_available():
            raise LookupFailed(f"{kind} {name!r} is run by ansible-core on the controller, and the "
                               "controller's Python cannot import ansible (pip install ansible-core)")
        try:
            answer = call(self.plugins.dirs, kind, name, terms, options, variables,
                          with_secrets=(kind, name) == ("lookup", "unvault"))
        except PluginHostError as exc:
            raise LookupFailed(str(exc)) from exc
        if "error" in answer:
            raise LookupFailed(str(answer["error"]), load=bool(answer.get("load")))
        value = answer.get("value")
        if kind != "lookup":
            return {"values": [value]}
        return {"values": list(value or []), **{k: answer[k] for k in ("deprecations", "warnings") if answer.get(k)}}

    # -- search paths ----------------------------------------------------------------------------
    def _search_path(self, scope: Any) -> list[str]:
        paths = scope.get("ansible_search_path") if scope is not None else None
        if isinstance(paths, list) and paths:
            return [str(p) for p in paths]
        return [self.base_dir]

    def _find(self, scope: Any, subdir: str | None, needle: str) -> str | None:
        """Ansible's ``path_dwim_relative_stack``: the first existing candidate, or None."""
        if needle.startswith(("~", "/")):
            path = os.path.normpath(os.path.expanduser(needle))
            return path if os.path.exists(path) else None
        # Ansible joins its subdir as bytes: a lookup() call (no subdir) searches "None/"
        dirname = str(subdir)
        search: list[str] = []
        for path in self._search_path(scope):
            upath = os.path.normpath(os.path.abspath(os.path.expanduser(path)))
            if needle.split("/")[0] != dirname:
                search.append(os.path.join(upath, dirname, needle))
            search.append(os.path.join(upath, needle))
        if needle.split("/")[0] != dirname:
            search.append(os.path.join(self.base_dir, dirname, needle))
        search.append(os.path.join(self.base_dir, needle))
        return next((p for p in search if os.path.exists(p)), None)

    # -- the lookups ------------------------------------------------------------------------------
    def _env(self, terms: list[Any], scope: Any, default: Any = "") -> list[Any]:
        return [os.environ.get(str(term).split()[0], default) for term in terms]

    def _pipe(self, terms: list[Any], scope: Any) -> list[Any]:
        out = []
        for term in terms:
            proc = subprocess.run(str(term), shell=True, cwd=self.base_dir, stdin=subprocess.PIPE,  # noqa: S602
                                  stdout=subprocess.PIPE, check=False)
            if proc.returncode != 0:
                raise LookupFailed(f"lookup_plugin.pipe({term}) returned {proc.returncode}")
            out.append(proc.stdout.decode("utf-8").rstrip())
        return out

    def _lines(self, terms: list[Any], scope: Any) -> list[Any]:
        out: list[Any] = []
        for term in terms:
            proc = subprocess.run(str(term), shell=True, cwd=self.base_dir, stdout=subprocess.PIPE,  # noqa: S602
                                  check=False)
            if proc.returncode != 0:
                raise LookupFailed(f"lookup_plugin.lines({term}) returned {proc.returncode}")
            out.extend(proc.stdout.decode("utf-8").splitlines())
        return out

    def _fileglob(self, terms: list[Any], scope: Any) -> list[Any]:
        out: list[Any] = []
        for term in map(str, terms):
            base = os.path.basename(term)
            if base != term:
                found = [self._find(scope, "files", os.path.dirname(term))]
            else:
                found = [p for root in self._search_path(scope) for p in (os.path.join(root, "files"), root)]
            for path in found:
                if path:
                    hits = [g for g in glob.glob(os.path.join(path, base)) if os.path.isfile(g)]
                    if hits:
                        out.extend(hits)
                        break
        return out

    def _file(self, terms: list[Any], scope: Any) -> list[Any]:
        """``lookup('file')`` of a name the compiler computed (a literal one is embedded as a
        file, compiler/sources.py): the text of the file on the ``files`` search path."""
        out = []
        names = [str(t) for t in terms]
        if names and all(os.path.isabs(n) for n in names) and not all(map(os.path.isfile, names)):
            # the play may create them (a task on the controller, a local host): the controller
            # reads them when the task's phase starts (run_time_files, docs/phases.md)
            raise _Late(names)
        from .. import vault
        from .sources import locked_message

        for term in names:
            path = self._find(scope, "files", term)
            if path is None or not os.path.isfile(path):
                raise LookupFailed(f"Unable to access the file {term!r}: File not found.")
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
            if vault.is_encrypted(text):  # decrypted with the run's secrets, as ansible-core's loader
                try:
                    text = vault.decrypt_bytes(text).decode("utf-8", "surrogateescape")
                except vault.VaultFailed as exc:
                    if exc.locked is None:  # damaged: ansible-core's own words for it
                        raise LookupFailed(f"Unable to access the file {term!r}: {exc.message}") from None
                    raise LookupFailed(f"Unable to access the file {term!r}: "
                                       f"{locked_message(path, exc, 'lookup')}") from None
            out.append(text)
        return out

    def _csvfile(self, terms: list[Any], scope: Any, **options: Any) -> list[Any]:
        """``csvfile``: the ``col`` column of the row whose ``keycol`` column is the term's key,
        in ``file`` (found on the ``files`` search path); options as keywords or ``k=v`` in
        the term, as ansible-core 2.19."""
        import csv

        params: dict[str, Any] = {"file": "ansible.csv", "delimiter": "TAB", "col": 1, "keycol": 0,
                                  "default": None, "encoding": "utf-8"}
        for name in options:
            if name not in params:
                raise LookupFailed(f"{name!r} is not a valid option")
        params.update(options)
        if not terms:
            raise LookupFailed("Search key is required but was not found")
        out: list[Any] = []
        for term in map(str, terms):
            # ansible's parse_kv: key=value words (the value unquoted); the rest, quotes and
            # all, is the search key
            words = _KV_WORD.findall(term)
            key = " ".join(w for w in words if not _KV.match(w))
            if not key:
                raise LookupFailed("Search key is required but was not found")
            these = dict(params)
            for name, _, value in (w.partition("=") for w in words if _KV.match(w)):
                value = "".join(shlex.split(value)) if value else value
                if name not in these:
                    raise LookupFailed(f"{name!r} is not a valid option")
                these[name] = value
            for name in ("col", "keycol"):
                try:
                    these[name] = int(these[name])
                except (TypeError, ValueError):
                    raise LookupFailed(f"Config '{name}' for 'csvfile' lookup plugin from 'Direct' has an invalid "
                                       f"value: Invalid value provided for 'int': {these[name]!r}") from None
            delimiter = "\t" if these["delimiter"] == "TAB" else str(these["delimiter"])
            path = self._find(scope, "files", str(these["file"]))
            if path is None:  # ansible-core opens None: Python's own message
                raise LookupFailed("expected str, bytes or os.PathLike object, not NoneType")
            value = these["default"]
            try:
                with open(path, encoding=str(these["encoding"])) as fh:
                    for row in csv.reader(fh, dialect=csv.excel, delimiter=delimiter):
                        if row and row[these["keycol"]] == key:
                            value = row[these["col"]]
                            break
            except (OSError, ValueError, IndexError, csv.Error) as exc:
                raise LookupFailed(str(exc)) from exc
            if isinstance(value, list):  # a list default is spread, as Ansible's MutableSequence
                out.extend(value)
            elif value is not None:
                out.append(value)
        return out

    def _fileglob_filter(self, terms: list[Any], scope: Any) -> list[Any]:
        """The ``fileglob`` filter: the controller's files matching the pattern, relative to the
        working directory (ansible-core's ``glob.glob``, directories left out)."""
        return [g for g in glob.glob(str(terms[0])) if os.path.isfile(g)]

    def _first_found(self, terms: list[Any], scope: Any, files: Any = None, paths: Any = None,
                     skip: Any = False, _subdir: str | None = None) -> list[Any]:
        """``_subdir``: the playbook front end's with_first_found (the task action's
        subdirectory, as Ansible's with_ invocation searches)."""
        options = {"files": files or [], "paths": paths or [], "skip": skip}
        if not terms:
            terms = list(options["files"])
        search = _first_found_terms(terms, options)
        for name in search:
            path = self._find(scope, _subdir, name)
            if path is not None:
                return [os.path.normpath(os.path.abspath(path))]
        if _truthy(options["skip"]):
            return []
        raise LookupFailed("No file was found when using first_found.")

    def _password(self, terms: list[Any], scope: Any, **kwargs: Any) -> list[Any]:
        out = []
        for term in map(str, terms):
            relpath, params = _runtime_lookups().password_params(term, kwargs)
            path = relpath if os.path.isabs(os.path.expanduser(relpath)) else os.path.join(self.base_dir, relpath)
            path = os.path.expanduser(path)
            content = None
            if os.path.exists(path):
                with open(path, "rb") as fh:
                    content = fh.read().rstrip().decode("utf-8", "surrogateescape")
            changed = content is None or path == "/dev/null"
            salt = ident = None
            if changed:
                password = _runtime_lookups().random_password(params)
            else:
                assert content is not None
                password, salt, ident = _password_content(content)
            # as ansible-core's password lookup: with encrypt, the salt (and bcrypt's ident) are
            # kept in the file beside the password, and the hash is what is returned
            encrypt = params.get("encrypt")
            passhash = _passhash()
            if encrypt and not salt:
                changed = True
                salt = "".join(random.SystemRandom().choice(passhash.SALT_CHARS)
                               for _ in range(passhash.salt_size(encrypt)))
            if not ident:
                ident = params.get("ident")
            elif params.get("ident") and ident != params["ident"]:
                raise LookupFailed(f"The ident parameter provided ({params['ident']}) does not match "
                                   f"the stored one ({ident}).")
            if encrypt and not ident:
                ident = passhash.implicit_ident(encrypt)
                changed = changed or bool(ident)
            if changed and path != "/dev/null":
                line = password if not salt else f"{password} salt={salt}" + (f" ident={ident}" if ident else "")
                os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
                with open(path, "wb") as fh:
                    os.chmod(path, 0o600)
                    fh.write(line.encode("utf-8", "surrogateescape") + b"\n")
            if encrypt:
                try:
                    password = passhash.password_hash(password, encrypt, salt=salt, ident=ident)
                except passhash.HashError as exc:
                    raise LookupFailed(str(exc)) from None
            out.append(password)
        return out


_COLLECTING: list[bool] = []  # set while _variables renders: a lookup inside gets none


def _variables(scope: Any) -> dict[str, Any]:
    """The variables of ``scope`` the controller can compute, as plain data (what Ansible hands a
    lookup plugin as ``variables``); one it cannot compute (a fact, a result) is left out. A
    variable that itself calls such a lookup (``x: "{{ q('config', ...) }}"``) renders it with
    no variables, instead of collecting them again (which would never end)."""
    if scope is None or _COLLECTING:
        return {}
    out: dict[str, Any] = {}
    _COLLECTING.append(True)
    try:
        for name in scope.keys():
            if not isinstance(name, str) or name.startswith("__"):
                continue
            try:
                out[name] = json.loads(json.dumps(scope[name], default=str))
            except Exception:  # noqa: BLE001, S112 - what needs host data is the host's
                continue
    finally:
        _COLLECTING.pop()
    return out


def _truthy(value: Any) -> bool:
    return value is True or str(value).lower() in ("yes", "true", "1", "on", "y")


def _split_on(value: Any, splitters: str) -> list[str]:
    if isinstance(value, str):
        return re.split("[" + re.escape(splitters) + "]", value)
    return [part for item in value for part in _split_on(item, splitters)]


def _first_found_terms(terms: list[Any], options: dict[str, Any]) -> list[str]:
    """first_found's ``_process_terms``: the candidate names in search order."""
    total: list[str] = []
    for term in terms:
        if isinstance(term, dict):
            options.update({k: term[k] for k in ("files", "paths", "skip") if k in term})
            files = options["files"]
        elif isinstance(term, str):
            files = [term]
        elif isinstance(term, (list, tuple)):
            total.extend(_first_found_terms(list(term), options))
            continue
        else:
            raise LookupFailed("Invalid term supplied. A string, dict or list is required, not "
                               f"{type(term).__name__!r}).")
        filelist = _split_on(files, ",;")
        pathlist = _split_on(options["paths"], ",:;")
        if pathlist:
            total.extend(os.path.join(path, fn) for path in pathlist for fn in filelist)
        else:
            total.extend(filelist)
    return total


def _password_content(content: str) -> tuple[str, str | None, str | None]:
    """ansible-core's ``_parse_content``: ``password[ salt=SALT[ ident=IDENT]]``."""
    password, sep, rest = content.rpartition(" salt=")
    if not sep:
        return content, None, None
    salt, sep, ident = rest.rpartition(" ident=")
    return (password, salt, ident) if sep else (password, rest or None, None)


def _passhash() -> Any:
    """The runtime's password_hash (rustle_runtime/passhash.py): crypt, else Python."""
    _runtime()
    from rustle_runtime import passhash  # type: ignore[import-not-found]

    return passhash


def _runtime() -> Any:
    from .native import _runtime as runtime  # native imports units, which imports this module

    return runtime()


def _runtime_lookups() -> Any:
    _runtime()
    from rustle_runtime import lookups  # type: ignore[import-not-found]

    return lookups


def uses_controller_lookups(value: Any, plugins: LocalPlugins | None = None) -> bool:
    """Whether any string in ``value`` calls a controller lookup (or may call one of ``plugins``)."""
    extra = plugins.pattern if plugins is not None else None
    return any(CONTROLLER_CALL.search(text) or (extra is not None and extra.search(text))
               for text in _strings(value))


@contextmanager
def running(runner: ControllerLookups | None) -> Iterator[ControllerLookups | None]:
    """Install ``runner`` as the runtime's controller lookups for the block (None: no change)."""
    if runner is None:
        yield None
        return
    lookups = _runtime_lookups()
    saved = lookups.controller
    lookups.controller = runner
    try:
        yield runner
    finally:
        lookups.controller = saved


def record_task(runner: ControllerLookups, values: list[Any], conditions: list[str], scopes: list[Any],
                when: list[Any] | None = None, loop: Any = None) -> None:
    """Render every template in ``values`` and every condition under each scope, so that each
    controller lookup call the controller can decide is run and recorded. A template that needs
    host data stops there; the calls it made before are kept.

    ``when``: the task's conditions. Where the controller can decide them and one is false, the
    task does not run there, and Ansible templates neither its arguments nor its other
    expressions: only the conditions themselves (and ``loop``, which Ansible renders before
    them) are rendered, so that a lookup with effects (``pipe``, ``password``) does not run."""
    templating, _, _ = _runtime()
    templar = templating.Templar()
    strings = [s for s in _strings(values)
               if templating.is_template(s) and (runner.every_template or uses_controller_lookups(s, runner.plugins))]
    conditions = [c for c in conditions if runner.every_template or uses_controller_lookups(c, runner.plugins)]
    when = [w for w in when or () if not isinstance(w, bool) or not w]
    loop_strings = {s for s in _strings(loop) if s in strings}
    names = sorted(_referenced_names([*strings, *("{{ " + c + " }}" for c in conditions),
                                      *("{{ " + str(w) + " }}" for w in when if isinstance(w, str))]))
    seen: set[str] = set()
    with running(runner):
        for scope in scopes or [templating.VarScope([{}], templar)]:
            # scopes that agree on every variable the templates read render the same calls
            key = _values_key(scope, names)
            if key in seen:
                continue
            seen.add(key)
            if when and _decided_false(templar, when, scope):
                # the task is skipped here: its loop and conditions are rendered (with the
                # lookups they call), the rest never is
                _render_all(templar, templating, [s for s in strings if s in loop_strings], scope)
                _render_conditions(templar, templating,
                                   [c for c in conditions if c in {str(w) for w in when}], scope)
                continue
            _render_all(templar, templating, strings, scope)
            _render_conditions(templar, templating, conditions, scope)


def _decided_false(templar: Any, when: list[Any], scope: Any) -> bool:
    """Whether the controller can tell that ``when`` (evaluated in order, as Ansible does, up to
    the first false one) skips the task under ``scope``; False when it needs host data."""
    for cond in when:
        try:
            if not templar.condition(cond, scope):
                return True
        except Exception:  # noqa: BLE001 - host data: the host decides
            return False
    return False


def _render_all(templar: Any, templating: Any, strings: list[str], scope: Any) -> None:
    for text in strings:
        try:
            templar.template(text, scope)
        except Exception:  # noqa: BLE001, S112 - what needs host data is the host's
            continue


def _render_conditions(templar: Any, templating: Any, conditions: list[str], scope: Any) -> None:
    for cond in conditions:
        try:  # a condition written "{{ ... }}" is templated, as Ansible does
            text = cond.strip()
            if templating.is_template(text) and not (text.startswith(("{{", "{%")) and text.endswith(("}}", "%}"))):
                templar._evaluate_const_templates(text, scope)  # templates in its string constants
            elif templating.is_template(cond):
                templar.template(cond, scope)
            else:
                templar.evaluate(cond, scope)
        except Exception:  # noqa: BLE001 - what needs host data is the host's
            # ... but a call with literal terms beside it runs the same when the
            # condition does (`r.stdout | int == lookup('pipe', 'ulimit -n') | int`)
            for call in _literal_calls(cond):
                try:
                    templar.evaluate(call, scope)
                except Exception:  # noqa: BLE001, S112 - the host reports it
                    continue


def record_template_file(runner: ControllerLookups, text: str, scopes: list[Any]) -> None:
    """Run and record each controller lookup call with literal arguments in the template file
    ``text`` (one the template module renders, or one it includes or imports): the host renders
    the file, and finds the result of such a call among the recorded ones."""
    if not (runner.every_template or uses_controller_lookups(text, runner.plugins)):
        return
    templating, _, _ = _runtime()
    templar = templating.Templar()
    calls = _literal_calls(text, template=True)
    with running(runner):
        for scope in (scopes or [templating.VarScope([{}], templar)])[:1]:  # literal: one scope does
            for call in calls:
                try:
                    templar.evaluate(call, scope)
                except Exception:  # noqa: BLE001, S112 - the host reports it when it renders the file
                    continue


def _literal_calls(text: str, template: bool = False) -> list[str]:
    """Each ``lookup``/``query``/``q`` call in the expression ``text`` (a whole template with
    ``template``) whose arguments are all literals, as an expression of its own."""
    import jinja2
    from jinja2 import nodes

    try:
        tree = jinja2.Environment().parse(text if template else "{{ " + text + " }}")
    except jinja2.TemplateSyntaxError:
        return []
    out = []
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name in ("lookup", "query", "q")):
            continue
        if call.dyn_args is not None or call.dyn_kwargs is not None:
            continue
        if not all(isinstance(a, nodes.Const) for a in call.args) \
                or not all(isinstance(k.value, nodes.Const) for k in call.kwargs):
            continue
        words = [repr(a.value) for a in call.args if isinstance(a, nodes.Const)]
        words += [f"{k.key}={k.value.value!r}" for k in call.kwargs if isinstance(k.value, nodes.Const)]
        out.append(f"{call.node.name}({', '.join(words)})")
    return out


def _referenced_names(texts: list[str]) -> set[str]:
    import jinja2
    from jinja2 import meta

    class AnyName(dict[str, Any]):
        """Every filter and test name is known: the playbook's own plugins included."""

        def __contains__(self, key: object) -> bool:
            return True

        def get(self, key: str, default: Any = None) -> Any:
            return dict.get(self, key) or (lambda *args, **kwargs: None)

    env = jinja2.Environment()
    env.filters, env.tests = AnyName(env.filters), AnyName(env.tests)
    out: set[str] = set()
    for text in texts:
        try:
            out |= meta.find_undeclared_variables(env.parse(text))
        except jinja2.TemplateSyntaxError:
            out.add("\0" + text)  # never equal across scopes: render under each
    return out


def _values_key(scope: Any, names: list[str]) -> str:
    import json

    values = []
    for name in names:
        try:
            values.append(scope.get(name))
        except Exception:  # noqa: BLE001 - an undefined or failing value keys as its error
            values.append("\0error")
    return json.dumps(values, sort_keys=True, default=repr)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)

