"""Find a module the runtime does not implement, as Ansible finds it, and what to embed for it.

Ansible's order: a short name (or ``ansible.legacy.NAME``) is looked for in ``library/`` beside the
plan, then the configured module path (``ANSIBLE_LIBRARY``, ansible.cfg's ``library``, default
``~/.ansible/plugins/modules:/usr/share/ansible/plugins/modules``), then among ansible-core's own
modules, following ansible-core's redirects (``ini_file`` -> ``community.general.ini_file``); an
FQCN names a collection found in ``ANSIBLE_COLLECTIONS_PATH`` / ``collections_path`` (or the
controller's site-packages).

With ansible-core installed on the controller (``pip install 'rustle-deploy[ansible]'``),
ansible-core answers all of it in a child process (``probe.py``), with AnsiballZ's dependency
finder collecting each Python module's ``module_utils``. Without it, ``library/`` and the module
path are searched here, and only modules that need nothing from Ansible run: scripts and
binaries (``WANT_JSON``, ``key=value`` argument files). Python modules built on
``AnsibleModule`` are then refused with the places searched and that hint.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CompileError

ANSIBLE_HINT = "install ansible-core on the controller: pip install 'rustle-deploy[ansible]'"
DEFAULT_MODULE_PATH = ("~/.ansible/plugins/modules", "/usr/share/ansible/plugins/modules")
# what ActionBase._update_module_args sends when ansible.cfg says nothing
DEFAULT_INTERNAL: dict[str, Any] = {
    "_ansible_syslog_facility": "LOG_USER",
    "_ansible_selinux_special_fs": ["fuse", "nfs", "vboxsf", "ramfs", "9p", "vfat"],
    "_ansible_version": None,
}

# executor/module_common.py: how Ansible tells a module's style from its bytes
_REPLACER = b"#<<INCLUDE_ANSIBLE_MODULE_COMMON>>"
_REPLACER_JSONARGS = b"<<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>>"
_NEW_STYLE = re.compile(
    rb"(?:from +\.{2,} *module_utils.* +import |"
    rb"from +ansible_collections\.[^.]+\.[^.]+\.plugins\.module_utils.* +import |"
    rb"import +ansible_collections\.[^.]+\.[^.]+\.plugins\.module_utils.*|"
    rb"from +ansible\.module_utils.* +import |"
    rb"import +ansible\.module_utils\.)"
)
_TEXT = bytes({7, 8, 9, 10, 12, 13, 27} | set(range(0x20, 0x100)) - {0x7F})
_NOT_MODULES = (".pyc", ".pyo", ".ps1", ".psm1", ".yml", ".yaml", ".md", ".rst", ".txt", ".json")


@dataclass(frozen=True)
class BridgedModule:
    """A module the artifact carries for the bridge, and how the runtime runs it."""

    name: str  # as the task writes it
    fqcn: str  # ansible.builtin.find, ansible.legacy.mine, community.general.ini_file
    path: str  # the controller's file
    style: str  # new (AnsibleModule), want_json, old (key=value args file), binary; action (controller)
    origin: str  # where it was found, said by -v and --list-modules
    action: str | None = None  # the Ansible action plugin the bridge reproduces, if any
    module_fqn: str | None = None  # the Python name a new-style module runs as
    profile: str = "legacy"  # its serialization profile (ansible-core 2.19)
    interpreter: tuple[str, ...] = ()  # from the shebang of a script module
    files: Mapping[str, bytes] = field(default_factory=dict)  # new style: path -> bytes
    data: bytes = b""  # script and binary modules: the file itself
    # style "action": the directories whose action_plugins/, connection_plugins/... ansible-core
    # searches on the controller (the playbook's and its roles')
    plugin_dirs: tuple[str, ...] = ()

    @property
    def bin_entry(self) -> str:
        return "bridge/bin/" + hashlib.sha256(self.data).hexdigest()

    def entries(self) -> dict[str, bytes]:
        """Artifact entries: module_utils under ``bridge/lib/`` (an import root), scripts by
        sha256 under ``bridge/bin/``; each module once, however many tasks use it."""
        if self.style == "new":
            return {"bridge/lib/" + name: data for name, data in self.files.items()}
        if self.style == "action":
            return {}  # it runs on the controller
        return {self.bin_entry: self.data}

    def spec(self) -> dict[str, Any]:
        """What ``plan.json`` says about the module (``bridge.modules``)."""
        out: dict[str, Any] = {"fqcn": self.fqcn, "style": self.style}
        if self.style == "action":
            out.update(action=self.action, plugin_dirs=list(self.plugin_dirs))
        elif self.style == "new":
            out.update(module_fqn=self.module_fqn, profile=self.profile)
        else:
            out.update(entry=self.bin_entry, interpreter=list(self.interpreter))
        if self.action == "ansible.builtin.uri":
            out["check_mode"] = False  # the uri action plugin skips in check mode
        if self.action == "ansible.builtin.assemble":
            out["drop_args"] = ["decrypt"]  # its action plugin takes this one for itself
        return out


@dataclass(frozen=True)
class Missing:
    """A module no place knows, or one the bridge cannot run; ``reason`` says which."""

    name: str
    reason: str
    searched: tuple[str, ...]
    hint: str


@dataclass(frozen=True)
class Resolution:
    """Every name asked for, resolved; plus what ``_ansible_*`` arguments modules get."""

    modules: Mapping[str, BridgedModule | Missing]
    ansible_version: str | None
    internal: Mapping[str, Any]


def ansible_available() -> bool:
    """Whether the controller's Python has ansible-core (checked without importing it)."""
    if "ansible" in sys.modules:
        return sys.modules["ansible"] is not None
    try:
        return importlib.util.find_spec("ansible") is not None
    except (ImportError, ValueError):
        return False


def search_collections(module: str, collections: Sequence[str]) -> tuple[str, ...]:
    """The collections Ansible searches for ``module`` under a ``collections:`` keyword: none for
    a fully qualified name; else the list, with ``ansible.legacy`` added when it names neither
    ``ansible.builtin`` nor ``ansible.legacy`` (``collectionsearch._ensure_default_collection``)."""
    if not collections or "." in module:
        return ()
    out = tuple(collections)
    if "ansible.builtin" not in out and "ansible.legacy" not in out:
        out += ("ansible.legacy",)
    return out


def lookup_key(module: str, collections: Sequence[str] = ()) -> str:
    """How a Resolution names one lookup: the module as written, plus the collections searched
    for it when a ``collections:`` keyword applies (``"hello in my.coll,ansible.legacy"``)."""
    searched = search_collections(module, collections)
    return f"{module} in {','.join(searched)}" if searched else module


def _split_key(key: str) -> tuple[str, list[str]]:
    name, _, colls = key.partition(" in ")
    return name, colls.split(",") if colls else []


def resolve(keys: Sequence[str], plan_dirs: Sequence[str]) -> Resolution:
    """Resolve ``keys`` (``lookup_key`` of modules no built-in implements) for a plan whose
    playbook and roles are in ``plan_dirs`` (their library/ and module_utils/ are searched)."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_")))
    own = {k: found for k in set(keys) if (found := _rustle_module(k, plan_dirs)) is not None}
    rest = _resolve(tuple(sorted(set(keys) - set(own))), tuple(dict.fromkeys(plan_dirs)), env, os.getcwd(),
                    ansible_available())
    if not own:
        return rest
    return Resolution({**rest.modules, **own}, rest.ansible_version, rest.internal)


def _rustle_module(key: str, plan_dirs: Sequence[str]) -> BridgedModule | Missing | None:
    """rustle-deploy's own module for ``key`` (``plugins.py``): a file declaring RUSTLE_MODULE
    in library/ of the plan or its roles, else an installed entry point; None when neither."""
    from . import plugins

    name, collections = _split_key(key)
    short = name[len("ansible.legacy."):] if name.startswith("ansible.legacy.") else name
    if "." in short or (collections and "ansible.legacy" not in collections):
        return None
    path = plugins.in_library(short, plan_dirs)
    origin = f"library {os.path.dirname(path)}" if path else ""
    if path is None:
        path = plugins.entry_points().get(short)
        origin = f"entry point {plugins.ENTRY_POINT_GROUP}:{short}"
        if path is None or not plugins.is_rustle_module(Path(path).read_bytes()):
            return None
    data = Path(path).read_bytes()
    wrong = plugins.problem(path, data)
    if wrong:
        return Missing(name, wrong, (path,), "see docs/modules.md for what a rustle-deploy module declares")
    return BridgedModule(name=name, fqcn="ansible.legacy." + short, path=path, style="rustle", origin=origin,
                         data=data)


@functools.lru_cache(maxsize=32)
def _resolve(keys: tuple[str, ...], plan_dirs: tuple[str, ...], env: tuple[tuple[str, str], ...],
             cwd: str, with_ansible: bool) -> Resolution:
    if not keys:
        return Resolution({}, None, DEFAULT_INTERNAL)
    if with_ansible:
        return _resolve_with_ansible(keys, plan_dirs)
    return Resolution({k: _resolve_without_ansible(k, plan_dirs) for k in keys}, None, DEFAULT_INTERNAL)


@dataclass(frozen=True)
class Visible:
    """A module the bridge can see (``--list-modules``) and how a task naming it would run."""

    fqcn: str
    path: str
    runs: str  # "built in", "bridge", or "refused: why"


def list_visible(plan_dirs: Sequence[str]) -> tuple[str | None, list[str], list[Visible]]:
    """ansible-core's version (None: not installed), the places searched, every module seen;
    rustle-deploy's own modules (``plugins.py``) in place of what Ansible would make of them."""
    from . import plugins

    version, searched, seen = _list_visible(plan_dirs)
    own: dict[str, Visible] = {}
    for name, path in plugins.entry_points().items():
        if "." not in name and plugins.is_rustle_module(Path(path).read_bytes()):
            own["ansible.legacy." + name] = Visible("ansible.legacy." + name, path, "rustle-deploy module (entry point)")
    for directory in reversed(module_path(plan_dirs)[:len(plan_dirs)]):  # library/ wins over entry points
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in entries:
            path = os.path.join(directory, entry)
            if os.path.isfile(path) and plugins.is_rustle_module(Path(path).read_bytes()):
                stem = os.path.splitext(entry)[0]
                wrong = plugins.problem(path, Path(path).read_bytes())
                own["ansible.legacy." + stem] = Visible("ansible.legacy." + stem, path,
                                                        "refused: " + wrong if wrong else "rustle-deploy module")
    seen = [v for v in seen if v.fqcn not in own] + list(own.values())
    return version, searched, seen


def _list_visible(plan_dirs: Sequence[str]) -> tuple[str | None, list[str], list[Visible]]:
    from ..runtime_index import canonical_module
    from .policy import CONTROLLER_ACTIONS, KEYWORDS

    if not ansible_available():
        seen = []
        for directory in module_path(plan_dirs):
            try:
                entries = sorted(os.listdir(directory))
            except OSError:
                continue
            for entry in entries:
                stem, ext = os.path.splitext(entry)
                if ext in _NOT_MODULES or not os.path.isfile(os.path.join(directory, entry)):
                    continue
                found = _resolve_without_ansible(stem, plan_dirs)
                runs = "bridge" if isinstance(found, BridgedModule) else "refused: " + found.reason
                seen.append(Visible("ansible.legacy." + stem, os.path.join(directory, entry), runs))
        return None, module_path(plan_dirs), seen
    answer = probe({"op": "list", "plan_dirs": list(plan_dirs)})
    out = []
    for fqcn, found in answer["modules"].items():
        short, action = fqcn.rsplit(".", 1)[-1], found.get("action")
        if fqcn.startswith(("ansible.builtin.", "ansible.legacy.")) and canonical_module(fqcn):
            runs = "built in"
        elif fqcn.startswith("ansible.builtin.") and short in KEYWORDS:
            runs = "refused: a playbook keyword"
        elif action in CONTROLLER_ACTIONS and action != "ansible.builtin.assemble":
            runs = "refused: " + CONTROLLER_ACTIONS[action]
        elif action and action not in ("ansible.builtin.uri", "ansible.builtin.assemble"):
            runs = f"controller: its action plugin {action} runs on the controller with ansible-core"
        else:
            runs = "bridge" + (" (without a controller-side src)" if action else "")
        out.append(Visible(fqcn, str(found["path"]), runs))
    searched = list(answer.get("module_paths") or ()) + [f"collections: {p}" for p in answer.get("collections_paths") or ()]
    return str(answer["ansible_version"]), searched, out


# -- without ansible-core ---------------------------------------------------------------------


def module_path(plan_dirs: Sequence[str]) -> list[str]:
    """The legacy module search path: library/ beside the plan and in its roles, ANSIBLE_LIBRARY
    (or its defaults)."""
    dirs = [os.path.join(d, "library") for d in plan_dirs]
    configured = os.environ.get("ANSIBLE_LIBRARY")
    entries = configured.split(os.pathsep) if configured else list(DEFAULT_MODULE_PATH)
    dirs += [os.path.expanduser(e) for e in entries if e]
    return dirs


def _find_file(directory: str, name: str) -> str | None:
    exact = os.path.join(directory, name)
    if os.path.isfile(exact):
        return exact
    try:
        candidates = sorted(os.listdir(directory))
    except OSError:
        return None
    for entry in candidates:
        stem, ext = os.path.splitext(entry)
        if stem == name and ext and ext not in _NOT_MODULES and os.path.isfile(os.path.join(directory, entry)):
            return os.path.join(directory, entry)
    return None


def module_style(data: bytes) -> str:
    """Ansible's classification of a module file (``module_common._find_module_utils``)."""
    if data[:1024].translate(None, _TEXT):
        return "binary"
    if _REPLACER in data or _NEW_STYLE.search(data):
        return "new"
    if b"#Requires -" in data or b"#AnsibleRequires -" in data:
        return "powershell"
    if _REPLACER_JSONARGS in data:
        return "jsonargs"
    if b"WANT_JSON" in data:
        return "want_json"
    return "old"


def shebang(data: bytes) -> tuple[str, ...]:
    first = data.split(b"\n", 1)[0]
    if not first.startswith(b"#!"):
        return ()
    import shlex

    return tuple(shlex.split(first[2:].decode("utf-8", "surrogateescape").strip()))


def _resolve_without_ansible(key: str, plan_dirs: Sequence[str]) -> BridgedModule | Missing:
    name, collections = _split_key(key)
    short = name[len("ansible.legacy."):] if name.startswith("ansible.legacy.") else name
    dirs = module_path(plan_dirs)
    searched = tuple(dirs) + ("ansible-core and its collections: ansible-core is not installed on the controller",)
    if "." in short or (collections and "ansible.legacy" not in collections):
        return Missing(name, "collections are found by ansible-core, which is not installed on the controller",
                       searched, ANSIBLE_HINT)
    for directory in dirs:
        path = _find_file(directory, short)
        if path is None:
            continue
        data = Path(path).read_bytes()
        style = module_style(data)
        if style == "new":
            return Missing(name, f"{path} is a Python module built on Ansible's module_utils, which come "
                                 "from ansible-core, not installed on the controller", searched, ANSIBLE_HINT)
        refused = _style_refusal(style, path)
        if refused:
            return Missing(name, refused, searched, "rewrite it as a Python (AnsibleModule) or WANT_JSON module")
        return BridgedModule(name=name, fqcn="ansible.legacy." + short, path=path, style=style,
                             origin=f"library {directory}", interpreter=shebang(data) if style != "binary" else (),
                             data=data)
    for directory in plan_dirs:  # as the probe says it with ansible-core (probe.py)
        action = os.path.join(directory, "action_plugins", short + ".py")
        if os.path.isfile(action):
            return Missing(name, f"it is an action plugin with no module ({action}): it runs on the controller "
                                 "with ansible-core, which is not installed there", searched, ANSIBLE_HINT)
    return Missing(name, "no module by this name", searched,
                   f"put it in library/ beside the plan, or {ANSIBLE_HINT} for ansible-core's modules and collections")


def _style_refusal(style: str, path: str) -> str | None:
    if style == "powershell":
        return f"{path} is a PowerShell module: Windows hosts are not supported"
    if style == "jsonargs":
        return f"{path} uses <<INCLUDE_ANSIBLE_MODULE_JSON_ARGS>> (arguments baked in per call), which the bridge does not do"
    return None


# -- with ansible-core ------------------------------------------------------------------------


def probe(request: dict[str, Any]) -> dict[str, Any]:
    """Run ``probe.py`` with the controller's Python; its JSON answer."""
    script = Path(__file__).with_name("probe.py")
    try:
        proc = subprocess.run([sys.executable, str(script)], input=json.dumps(request).encode(),
                              capture_output=True, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CompileError(f"asking ansible-core where modules are failed: {exc}") from exc
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]
        raise CompileError("asking ansible-core where modules are failed: " + " / ".join(tail),
                           "check that ansible-core imports in this Python: " + sys.executable)
    answer: dict[str, Any] = json.loads(proc.stdout)
    answer["warnings"] = [line for line in proc.stderr.decode("utf-8", "replace").splitlines()
                          if line.startswith("[WARNING]") or line.startswith("[DEPRECATION")]
    return answer


def _ask(lookups: dict[str, list[Any]], plan_dirs: Sequence[str]) -> dict[str, Any]:
    """The answer for ``lookups`` in ``probe``'s shape: what ``finder.py`` decides by reading
    files (ansible-core's own modules, nothing configured), the rest from ansible-core."""
    from . import finder

    fast = finder.decide(lookups, plan_dirs)
    rest = {k: v for k, v in lookups.items() if k not in fast["modules"]}
    if not rest:
        return fast
    answer = probe({"op": "resolve", "lookups": rest, "plan_dirs": list(plan_dirs)})
    answer["modules"].update(fast["modules"])
    return answer


_ANSWER_KEYS = ("ansible_version", "python", "module_paths", "collections_paths", "internal")


def _cached_lookups(keys: Sequence[str], plan_dirs: Sequence[str]) -> dict[str, Any]:
    """ansible-core's answer for ``keys`` (``probe``'s shape), each lookup from the cache when
    nothing it depends on has changed since, the others asked in one probe.

    One cache entry per lookup, so a plan naming modules another plan already used reuses them
    (``_lookup_key`` says what an entry depends on). The files a Python module carries are
    stored once by sha256 under ``blobs/`` (content-addressed: ``basic.py`` and the
    module_utils modules share are kept once however many modules and plans use them).
    """
    from .. import bridge

    cache = bridge.CACHE_DIR
    lookups = {k: list(_split_key(k)) for k in keys}
    if cache is None:
        return _ask(lookups, plan_dirs)
    entry_paths = {k: cache / f"{_lookup_key(k, plan_dirs)}.json" for k in keys}
    found: dict[str, dict[str, Any]] = {}
    for k, path in entry_paths.items():
        entry = _read_entry(cache, path)
        if entry is not None:
            found[k] = entry
    missing = [k for k in keys if k not in found]
    if missing:
        answer = _ask({k: lookups[k] for k in missing}, plan_dirs)
        for k in missing:
            module = dict(answer["modules"].get(k) or {})
            entry = {key: answer.get(key) for key in _ANSWER_KEYS}
            entry["module"] = module
            found[k] = entry
            _write_entry(cache, entry_paths[k], entry, plan_dirs)
    first = found[keys[0]]
    out: dict[str, Any] = {key: first.get(key) for key in _ANSWER_KEYS}
    out["modules"] = {k: found[k]["module"] for k in keys}
    return out


def _read_entry(cache: Path, path: Path) -> dict[str, Any] | None:
    try:
        stored = json.loads(path.read_text())
        if stored.get("trees") != _trees_fingerprint(stored.get("tree_dirs") or []):
            return None
        entry: dict[str, Any] = stored["entry"]
        module = dict(entry["module"])
        if "blobs" in module:
            module["files"] = {name: base64.b64encode(_blob(cache, sha)).decode()
                               for name, sha in module.pop("blobs").items()}
        return dict(entry, module=module)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _blob(cache: Path, sha: str) -> bytes:
    """A stored file, checked against the sha256 that names it (ValueError: damaged, a miss)."""
    data = (cache / "blobs" / sha).read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        raise ValueError(f"blob {sha}: damaged")
    return data


def _write_entry(cache: Path, path: Path, entry: dict[str, Any], plan_dirs: Sequence[str]) -> None:
    """Store one lookup. Not synced (``cache_write``), as the compiler's other cache entries: a
    blob is checked against its sha256 when read, an entry that does not parse is a miss, so a
    crash costs the next command the question again; syncing the ~60 files of a first lookup
    held up the command before any host was contacted."""
    from ..compiler.cachefiles import cache_write

    module = dict(entry["module"])
    blobs = {}
    try:
        for name, text in (module.pop("files", None) or {}).items():
            data = base64.b64decode(text)
            sha = hashlib.sha256(data).hexdigest()
            try:
                _blob(cache, sha)
            except (OSError, ValueError):  # missing or damaged
                cache_write(cache / "blobs" / sha, data)
            blobs[name] = sha
        if blobs:
            module["blobs"] = blobs
        dirs = sorted(set(_source_dirs(plan_dirs) + _collection_roots({"modules": {"m": module}})))
        stored = {"entry": dict(entry, module=module), "tree_dirs": dirs, "trees": _trees_fingerprint(dirs)}
        cache_write(path, json.dumps(stored).encode())
    except CompileError:
        pass  # an unwritable cache only costs the next command the question again


def _stat(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:-"
    return f"{path}:{st.st_mtime_ns}:{st.st_size}"


def _collection_paths() -> list[str]:
    raw = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATHS")
    entries = raw.split(os.pathsep) if raw else ["~/.ansible/collections", "/usr/share/ansible/collections"]
    return [os.path.expanduser(e) for e in entries if e] + [p for p in sys.path if p.endswith("-packages")]


def _source_dirs(plan_dirs: Sequence[str]) -> list[str]:
    utils = os.environ.get("ANSIBLE_MODULE_UTILS")
    dirs = module_path(plan_dirs) + [os.path.expanduser(e) for e in (
        utils.split(os.pathsep) if utils else ["~/.ansible/plugins/module_utils", "/usr/share/ansible/plugins/module_utils"])]
    for plan_dir in plan_dirs:
        dirs += [os.path.join(plan_dir, "module_utils"), os.path.join(plan_dir, "action_plugins")]
    return dirs


def _collection_roots(answer: dict[str, Any]) -> list[str]:
    roots = []
    for found in (answer.get("modules") or {}).values():
        path = str(found.get("path") or "")
        parts = path.split(os.sep)
        if "ansible_collections" in parts:
            i = parts.index("ansible_collections")
            roots.append(os.sep.join(parts[:i + 3]))
    return roots


def _trees_fingerprint(dirs: list[str]) -> str:
    h = hashlib.sha256()
    for top in dirs:
        h.update(_stat(top).encode())
        for root, subdirs, files in os.walk(top):
            subdirs[:] = sorted(d for d in subdirs if d != "__pycache__")
            for name in sorted(files):
                h.update(_stat(os.path.join(root, name)).encode())
    return h.hexdigest()


def _lookup_key(key: str, plan_dirs: Sequence[str]) -> str:
    """The cache key of one lookup: the name and the collections searched, the ``ANSIBLE_*``
    environment, the working directory, the Python, ansible-core's installed version, every
    ansible.cfg Ansible would read, and the directories searched (library/, module_utils/ and
    action_plugins/ of the plan and its roles, the module path, the collection roots (with
    ``collections/`` beside the playbook, the first directory) and their
    namespaces and collections) that exist: a plan in another directory with none of those
    beside it asks the same question. An entry also records a fingerprint (names, sizes, times)
    of every file under the directories its module came from: an edited module or
    module_utils file is a miss. ansible-core's own files change only with its version."""
    h = hashlib.sha256(json.dumps(list(_split_key(key))).encode())
    h.update(b"answer 2: action plugins\0")  # what an answer holds (action_fqcn, action_path)
    h.update(f"{sys.executable}\0{os.getcwd()}\0".encode())
    for k, v in sorted(os.environ.items()):
        if k.startswith("ANSIBLE_"):
            h.update(f"{k}={v}\0".encode())
    spec = importlib.util.find_spec("ansible")
    if spec is not None and spec.origin:
        h.update(_stat(os.path.join(os.path.dirname(spec.origin), "release.py")).encode())
    configs = [os.environ.get("ANSIBLE_CONFIG") or "", os.path.join(os.getcwd(), "ansible.cfg"),
               os.path.expanduser("~/.ansible.cfg"), "/etc/ansible/ansible.cfg"]
    watched = configs + _source_dirs(plan_dirs)
    for root in [os.path.join(d, "collections") for d in plan_dirs[:1]] + _collection_paths():
        top = os.path.join(root, "ansible_collections")
        watched.append(top)
        try:
            namespaces = sorted(os.listdir(top))
        except OSError:
            continue
        for ns in namespaces:
            watched.append(os.path.join(top, ns))
            try:
                watched += [os.path.join(top, ns, c) for c in sorted(os.listdir(os.path.join(top, ns)))]
            except OSError:
                continue
    for path in watched:
        if os.path.exists(path):
            h.update(_stat(path).encode() + b"\0")
    return h.hexdigest()


def _resolve_with_ansible(keys: tuple[str, ...], plan_dirs: tuple[str, ...]) -> Resolution:
    answer = _cached_lookups(keys, plan_dirs)
    version = str(answer["ansible_version"])
    # library/ of the playbook and its roles first: ansible-core lists only those that exist
    searched = tuple(dict.fromkeys([os.path.join(d, "library") for d in plan_dirs]
                                   + list(answer.get("module_paths") or ()))) + tuple(
        f"collections: {p}" for p in answer.get("collections_paths") or ())
    out: dict[str, BridgedModule | Missing] = {}
    for key in keys:
        name = _split_key(key)[0]
        found = answer["modules"].get(key) or {}
        if not found.get("found"):
            reason = str(found.get("reason") or "")
            if found.get("action_only"):  # run on the controller, in a phase of its own
                path = str(found.get("action_path") or "")
                out[key] = BridgedModule(name=name, fqcn=str(found.get("action_fqcn") or name), path=path,
                                         style="action", origin="action plugin " + path,
                                         action=str(found.get("action_fqcn") or name))
                continue
            if not reason or reason.startswith(("failed fuzzy", "no matches", "Unexpected", "found fuzzy")):
                reason = "no module by this name"  # ansible-core's internal account of its search
            redirects = [r for r in found.get("redirects") or () if r != name]
            if redirects:
                reason += " (ansible-core redirects it: " + " -> ".join([name, *redirects]) + ")"
            errors = found.get("errors") or ()
            if errors:
                reason += "; " + "; ".join(errors)
            hint = ("install the collection that holds it (ansible-galaxy collection install, or the 'ansible' "
                    "package) or set ANSIBLE_COLLECTIONS_PATH" if "." in (redirects or [name])[-1]
                    else "put it in library/ beside the plan or in ANSIBLE_LIBRARY")
            out[key] = Missing(name, reason, searched, hint)
            continue
        style = str(found["style"])
        refused = _style_refusal(style, found["path"])
        if refused:
            out[key] = Missing(name, refused, searched, "use a module for POSIX hosts")
            continue
        collection = found.get("collection")
        fqcn = str(found["fqcn"])
        if "." not in fqcn:  # a library/ module: ansible-core names it by its file
            fqcn = "ansible.legacy." + fqcn
        if collection == "ansible.builtin":
            origin = f"ansible-core {version}"
        elif collection and collection != "ansible.legacy":
            origin = f"collection {collection}"
        else:
            origin = "library " + os.path.dirname(found["path"])
        out[key] = BridgedModule(
            name=name, fqcn=fqcn, path=str(found["path"]), style=style, origin=origin,
            action=found.get("action"), module_fqn=found.get("module_fqn"),
            profile=str(found.get("profile") or "legacy"),
            interpreter=tuple(found.get("interpreter") or ()),
            files={k: base64.b64decode(v) for k, v in (found.get("files") or {}).items()},
            data=base64.b64decode(found["data"]) if found.get("data") else b"",
        )
    internal = dict(DEFAULT_INTERNAL, _ansible_version=version)
    internal.update(answer.get("internal") or {})
    return Resolution(out, version, internal)
