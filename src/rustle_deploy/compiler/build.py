"""Build an artifact from a BuildUnit: deterministic zip payload, launcher line, cache.

The cache lives in ``cache_dir``: ``index/<input key>`` names the artifact built from those
inputs and ``artifacts/<sha256>.pyz`` holds it. An entry is re-hashed before use; a corrupt
one is rebuilt. Writes go to a temporary name and are renamed into place, so concurrent
builds never see half an entry.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import io
import json
import marshal
import sys
import warnings
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__
from .._fs import private_dir
from ..errors import CompileError
from ..model import tag_unsafe
from ..runtime_index import runtime_root
from .cachefiles import atomic_write, cache_write, sha256_file

if TYPE_CHECKING:  # a warm run's stored artifacts come without the compiler (runcache.py)
    from .runner import RunnerBinary
    from .units import BuildUnit

FORMAT = 1
PROTOCOL = 1
LAUNCHER = b"#!/usr/bin/env python3\n"
_EPOCH = (1980, 1, 1, 0, 0, 0)
_MAIN = (
    "import os, sys\n"
    "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
    "from rustle_runtime.cli import main\n"
    "main()\n"
)


@dataclass(frozen=True)
class Artifact:
    sha256: str
    path: Path
    size: int
    binary_name: str
    target: str
    hosts: tuple[str, ...]
    files: tuple[str, ...]  # embedded static files (sha256)
    families: tuple[str, ...]
    with_jinja: bool
    cached: bool
    bytecode_tag: str | None = sys.implementation.cache_tag  # the runtime's .pyc files are for this
    runner: str | None = None  # native format: the sha256 of the rustle-runner it needs
    python_tasks: tuple[str, ...] = ()  # hybrid: the tasks the host's Python runs, and why

    @property
    def format(self) -> str:
        return "pyz" if self.runner is None else "native"

    @property
    def file_name(self) -> str:
        return f"{self.sha256}.{self.format}"


def _runtime_entries(families: set[str], with_jinja: bool) -> list[tuple[str, Path]]:
    root = runtime_root()
    entries = []
    core = root / "rustle_runtime"
    for path in sorted(core.glob("*.py")):
        entries.append((f"rustle_runtime/{path.name}", path))
    for path in sorted((core / "modules").glob("*.py")):
        stem = path.stem
        if stem.startswith("_") or stem in families:
            entries.append((f"rustle_runtime/modules/{path.name}", path))
    if with_jinja:
        vendor = root / "_vendor"
        for package in ("jinja2", "markupsafe"):
            for path in sorted((vendor / package).glob("*.py")):
                entries.append((f"{package}/{path.name}", path))
    return entries


def _bridge_entries(unit: BuildUnit) -> dict[str, bytes]:
    """The module bridge's entries: each bridged module once, with the module_utils it imports."""
    out: dict[str, bytes] = {}
    for module in unit.bridged.values():
        out.update(module.entries())
    return out


def input_key(unit: BuildUnit, plan_bytes: bytes, compression: bool, runner: str | None = None) -> str:
    """Hash of everything that determines the artifact's bytes."""
    h = hashlib.sha256()
    h.update(f"rustle-deploy {__version__} format {FORMAT} z{int(compression)} {sys.implementation.cache_tag}\0".encode())
    h.update(f"runner {runner}\0".encode())
    h.update(_compiler_digest().encode() + b"\0")
    h.update(unit.target.encode() + b"\0")
    for name, path in _runtime_entries(unit.families, unit.needs_jinja):
        st = path.stat()
        h.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    h.update(plan_bytes)
    for name, data in sorted(_bridge_entries(unit).items()):
        h.update(f"{name}\0{hashlib.sha256(data).hexdigest()}\0".encode())
    for digest in sorted(unit.files):
        h.update(digest.encode())
    return h.hexdigest()


@functools.cache
def _compiler_digest() -> str:
    """The compiler's own code is an input too: a changed compiler must not serve old entries."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def _plan_bytes(unit: BuildUnit) -> bytes:
    # keys in the order they were written: a mapping of the playbook's or the inventory's keeps
    # its order on the host, as in Ansible (the plan is built in a fixed order: same bytes each time)
    return json.dumps(tag_unsafe(unit.plan_doc), separators=(",", ":"), default=str).encode()


def _bytecode(source: bytes, name: str) -> bytes:
    """An unchecked hash-based ``.pyc`` of ``source`` for this interpreter (PEP 552).

    A host whose Python has this cache tag imports the runtime straight from the zip with
    these (zipimport cannot cache bytecode: without them every run compiles the runtime,
    ~40 ms per host); other versions ignore them and the agent unpacks the payload so that
    Python caches its own bytecode.
    """
    key = (name, hashlib.sha256(source).hexdigest())  # the name is compiled in (tracebacks)
    cached = _PYC_CACHE.get(key)
    if cached is None:
        code = compile(source, name, "exec", dont_inherit=True)
        header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + importlib.util.source_hash(source)
        cached = _PYC_CACHE[key] = header + marshal.dumps(code)
    return cached


_PYC_CACHE: dict[tuple[str, str], bytes] = {}


def _bridge_bytecode(source: bytes, name: str) -> bytes:
    """``_bytecode`` of a file the module bridge embeds (ansible-core's ``module_utils``, ~60 files
    and ~80 ms of compiling for ``basic`` alone), kept between commands in the bridge's cache
    (``cache_dir/bridge/pyc/``) under the sha256 of what it is made of: this interpreter's magic
    number and optimization level, the name compiled in, the source. A plan that changes while
    its modules do not builds its next artifact without compiling them again."""
    from .. import bridge

    if bridge.CACHE_DIR is None:
        return _bytecode(source, name)
    key = hashlib.sha256(importlib.util.MAGIC_NUMBER + str(sys.flags.optimize).encode() + b"\0"
                         + name.encode() + b"\0" + source).hexdigest()
    path = bridge.CACHE_DIR / "pyc" / key
    try:
        data = path.read_bytes()
        header = importlib.util.MAGIC_NUMBER + (0b01).to_bytes(4, "little") + importlib.util.source_hash(source)
        if data[:16] == header:
            marshal.loads(data[16:])  # a damaged entry is compiled again
            return data
    except (OSError, ValueError, EOFError, TypeError):
        pass
    data = _bytecode(source, name)
    try:
        cache_write(path, data)
    except CompileError:
        pass  # an unwritable cache only costs the next artifact the compiling
    return data


def _payload(unit: BuildUnit, plan_bytes: bytes, compression: bool) -> bytes:
    entries: dict[str, bytes] = {"__main__.py": _MAIN.encode(), "plan.json": plan_bytes}
    for name, runtime_file in _runtime_entries(unit.families, unit.needs_jinja):
        entries[name] = runtime_file.read_bytes()
        if name.startswith("rustle_runtime/"):  # the hot path; Jinja2 is imported only when a task
            # needs it on the host. Its bytecode here would save that run ~100 ms of the host's CPU
            # but adds ~300 KB to every artifact that embeds it, most of which never import it
            # (measured: docs/native.md, "Jinja2 on the host")
            # beside the source, where zipimport looks (it cannot use __pycache__)
            entries[name[:-3] + ".pyc"] = _bytecode(entries[name], name)
    for name, data in _bridge_entries(unit).items():
        entries[name] = data
        if name.startswith("bridge/lib/") and name.endswith(".py"):
            try:  # a host whose Python has this cache tag imports module_utils without compiling them
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # Ansible's code, not ours: its invalid escapes...
                    entries[name[:-3] + ".pyc"] = _bridge_bytecode(data, name)
            except (SyntaxError, ValueError):
                pass  # not Python this interpreter compiles: the host compiles it (or says why not)
    for digest, path in unit.files.items():
        data = unit.blobs[digest] if digest in unit.blobs else Path(path).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise CompileError(f"{path}: changed while compiling", "run again")
        entries[f"files/{digest}"] = data
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "protocol": PROTOCOL,
        "rustle_deploy_version": __version__,
        "target": unit.target,
        "binary_name": unit.binary_name,
        "plan_sha256": hashlib.sha256(plan_bytes).hexdigest(),
        "bytecode_tag": sys.implementation.cache_tag,
        "entries": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(entries.items())},
    }
    entries["manifest.json"] = json.dumps(manifest, sort_keys=True, indent=1).encode()
    buf = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compression else zipfile.ZIP_STORED
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.create_system = 3
            info.compress_type = method
            zf.writestr(info, entries[name], compress_type=method, compresslevel=6 if compression else None)
    return LAUNCHER + buf.getvalue()


def payload_bytes(unit: BuildUnit, compression: bool = True) -> bytes:
    """The artifact's bytes, built in memory (``--dry-run`` uses this and writes nothing)."""
    return _payload(unit, _plan_bytes(unit), compression)


def build_unit(
    unit: BuildUnit,
    *,
    cache_dir: Path,
    rebuild: bool = False,
    compression: bool = True,
    size_limit: int | None = None,
) -> Artifact:
    """Build ``unit`` (or take it from the cache) and return the artifact in the cache."""
    plan_bytes = _plan_bytes(unit)
    key = input_key(unit, plan_bytes, compression)
    index = cache_dir / "index" / key
    if not rebuild and index.is_file():
        digest = index.read_text().strip()
        candidate = cache_dir / "artifacts" / f"{digest}.pyz"
        if len(digest) == 64 and sha256_file(candidate) == digest:
            return _artifact(unit, candidate, digest, unit.host_names, True, None, size_limit)
    data = _payload(unit, plan_bytes, compression)
    sha = _store(cache_dir, data, "pyz")
    cache_write(index, sha.encode())
    return _artifact(unit, cache_dir / "artifacts" / f"{sha}.pyz", sha, unit.host_names, False, None, size_limit)


def build_native(
    unit: BuildUnit,
    *,
    cache_dir: Path,
    runner: str,
    rebuild: bool = False,
    size_limit: int | None = None,
    python: Artifact | None = None,
) -> list[Artifact]:
    """The native artifacts of ``unit`` for rustle-runner ``runner`` (docs/native.md), from the
    cache when its inputs are unchanged. One per host, or per group of hosts whose programs are
    the same: ``compiler.native.lower_unit``. ``python``: the unit's pyz artifact, for a hybrid
    build (the tasks that do not lower run in it, on the host)."""
    # a native program is specialised per host: its host variables are inputs too
    own = json.dumps(unit.host_vars, sort_keys=True, separators=(",", ":"), default=str).encode()
    hybrid = b"" if python is None else b"\0hybrid " + python.sha256.encode()
    key = input_key(unit, _plan_bytes(unit) + b"\0" + own + hybrid, False, runner)
    index = cache_dir / "index" / key
    if not rebuild and index.is_file():
        try:
            entries = json.loads(index.read_text())
            found = [(cache_dir / "artifacts" / f"{e['sha256']}.native", e["sha256"], list(e["hosts"]),
                      tuple(e.get("python") or ())) for e in entries]
        except (ValueError, KeyError, TypeError):
            found = []
        if found and all(sha256_file(path) == sha for path, sha, _, _ in found):
            return [replace(_artifact(unit, path, sha, hosts, True, runner, size_limit), python_tasks=why)
                    for path, sha, hosts, why in found]
    from .native import lower_unit

    built = []
    for hosts, data, why in lower_unit(unit, runner, None if python is None else python.path.read_bytes()):
        sha = _store(cache_dir, data, "native")
        built.append(replace(_artifact(unit, cache_dir / "artifacts" / f"{sha}.native", sha, hosts, False, runner,
                                       size_limit), python_tasks=tuple(why)))
    cache_write(index, json.dumps([{"sha256": a.sha256, "hosts": list(a.hosts), "python": list(a.python_tasks)}
                                    for a in built]).encode())
    return built


def _store(cache_dir: Path, data: bytes, suffix: str) -> str:
    sha = hashlib.sha256(data).hexdigest()
    path = cache_dir / "artifacts" / f"{sha}.{suffix}"
    if sha256_file(path) != sha:
        cache_write(path, data, 0o700)
    return sha


def _artifact(
    unit: BuildUnit, path: Path, sha: str, hosts: list[str], cached: bool, runner: str | None, size_limit: int | None
) -> Artifact:
    size = path.stat().st_size
    if size_limit is not None and size > size_limit:
        raise CompileError(
            f"artifact for {', '.join(hosts[:3])}{'…' if len(hosts) > 3 else ''} "
            f"is {size / 1048576:.1f} MiB, over the limit of {size_limit / 1048576:.1f} MiB",
            "raise RUSTLE_BINARY_SIZE_LIMIT or [compilation] binary_size_limit_mb, or embed fewer/smaller files",
        )
    return Artifact(
        sha256=sha,
        path=path,
        size=size,
        binary_name=unit.binary_name,
        target=unit.target,
        hosts=tuple(hosts),
        files=tuple(sorted(unit.files)),
        families=tuple(sorted(unit.families)),
        with_jinja=unit.needs_jinja and runner is None,
        cached=cached,
        bytecode_tag=sys.implementation.cache_tag if runner is None else None,
        runner=runner,
    )


def write_outputs(artifacts: list[Artifact], output_dir: Path, plan_sha256: str,
                  runners: list[RunnerBinary] | None = None, plays: list[dict[str, Any]] | None = None) -> Path:
    """Copy artifacts to ``output_dir`` with ``manifest.json`` saying which host gets which;
    native artifacts also get a copy of the rustle-runner (of ``runners``) they were compiled for.
    ``plays``: what scheduling needs of each play (``rollout.PlaySpec``), for --deploy-only."""
    try:
        private_dir(output_dir)
    except OSError as exc:
        raise CompileError(f"{output_dir}: cannot create the output directory: {exc.strerror or exc}",
                           "pass -o/--output-dir a directory you can write") from exc
    copied: set[str] = set()  # each runner once, not once per artifact (per host): ~1 MB to hash
    for art in artifacts:
        target = output_dir / art.file_name
        if sha256_file(target) != art.sha256:
            atomic_write(target, art.path.read_bytes(), 0o700)
        if art.runner is not None and art.runner not in copied:  # --deploy-only sends it with the artifact
            runner = next((r for r in runners or () if r.sha256 == art.runner), None)
            if runner is None:
                raise CompileError(f"{art.file_name} needs rustle-runner {art.runner[:12]}, which is not at hand",
                                   "compile again with --format native")
            copy = output_dir / f"rustle-runner-{art.runner}"
            if sha256_file(copy) != art.runner:
                atomic_write(copy, runner.path.read_bytes(), 0o700)
            copied.add(art.runner)
    manifest = {
        "format": FORMAT,
        "rustle_deploy_version": __version__,
        "plan_sha256": plan_sha256,
        "artifacts": [
            {
                "sha256": a.sha256,
                "file": a.file_name,
                "size": a.size,
                "binary_name": a.binary_name,
                "target": a.target,
                "bytecode_tag": a.bytecode_tag,
                "runner": a.runner,
                "hosts": list(a.hosts),
            }
            for a in artifacts
        ],
    }
    if plays is not None:
        manifest["plays"] = plays
    path = output_dir / "manifest.json"
    atomic_write(path, json.dumps(manifest, indent=2).encode() + b"\n", 0o600)
    return path
