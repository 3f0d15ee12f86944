"""YAML files of a playbook, read with the line and column of every mapping, key and item.

Ansible's loader is PyYAML's safe schema (YAML 1.1: ``yes`` is a boolean) with ``!unsafe``
kept as a never-templated string; so is this one. Positions live beside the data, keyed by the
identity of the container that holds a value (``id(mapping), key`` or ``id(list), index``), so
the values themselves stay plain ``dict``/``list``/``str`` that the rest of the pipeline (and
``json.dumps``) treat as any other. Every error about a file's content is raised through
:meth:`Source.error`, which renders file, line, column and the offending line.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rustle_deploy import vault
from rustle_deploy.errors import PlaybookError
from rustle_deploy.model import Decrypted, Undecryptable, Unsafe, Vaulted

__all__ = ["Origin", "Source", "Unsafe", "read_yaml", "recording", "value_origin"]

_NO_KEY = object()

# the Sources read while a playbook compiles (recording()): where a value was written
_SOURCES: list[Source] | None = None


@contextlib.contextmanager
def recording() -> Iterator[None]:
    """Keep every Source read inside the block, for value_origin (one compile's files)."""
    global _SOURCES
    saved, _SOURCES = _SOURCES, []
    try:
        yield
    finally:
        _SOURCES = saved


@dataclass(frozen=True)
class Origin:
    """Where something was written: file (as shown to the user), 1-based line and column."""

    file: str
    line: int | None = None
    column: int | None = None
    text: str | None = None  # the source line

    def error(self, message: str, hint: str | None = None,
              kind: type[PlaybookError] = PlaybookError) -> PlaybookError:
        return kind(message, hint, file=self.file, line=self.line, column=self.column,
                    source_line=self.text)

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        return f"{self.file}:{self.line}:{self.column}"


class Source:
    """One YAML document with the positions of its containers, keys and values."""

    def __init__(self, path: str, text: str, shown: str | None = None) -> None:
        self.path = os.path.abspath(path)
        self.shown = shown if shown is not None else path
        self.lines = text.splitlines()
        self._start: dict[int, tuple[int, int]] = {}
        self._key: dict[tuple[int, Any], tuple[int, int]] = {}
        self._value: dict[tuple[int, Any], tuple[int, int]] = {}
        self._keep: list[Any] = []  # the containers whose ids are keys above stay alive
        # id(value) -> [(line, column, key it is the value of)], for value_origin
        self._by_id: dict[int, list[tuple[int, int, Any]]] = {}
        self.data: Any = None
        self.encrypted = False  # the file was encrypted as a whole: its strings are Decrypted
        if _SOURCES is not None:
            _SOURCES.append(self)

    @property
    def dir(self) -> str:
        return os.path.dirname(self.path)

    def origin(self, container: Any, key: Any = _NO_KEY, *, value: bool = False) -> Origin:
        """Where ``container`` starts, or its ``key`` (``value=True``: the key's value)."""
        pos: tuple[int, int] | None = None
        if key is not _NO_KEY:
            table = self._value if value else self._key
            try:
                pos = table.get((id(container), key))
            except TypeError:
                pos = None
            if pos is None and value:
                pos = self._key.get((id(container), key)) if _hashable(key) else None
        if pos is None:
            pos = self._start.get(id(container))
        if pos is None:
            return Origin(self.shown)
        line, col = pos
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        return Origin(self.shown, line, col, text)

    def error(self, message: str, hint: str | None, container: Any, key: Any = _NO_KEY,
              *, value: bool = False) -> PlaybookError:
        return self.origin(container, key, value=value).error(message, hint)


def value_origin(value: Any, key: Any = _NO_KEY) -> str | None:
    """Where ``value`` (this very object) was written in a YAML file read so far, as
    ansible-core 2.19 names a value's origin: ``/abs/file.yml:LINE:COLUMN``; None when no file
    holds it (or outside ``recording()``). Objects Python shares (small numbers, booleans) are told apart by ``key``, the
    mapping key or list index they were written under."""
    for src in reversed(_SOURCES or ()):
        found = src._by_id.get(id(value))
        if not found:
            continue
        pick = next((f for f in found if key is _NO_KEY or f[2] == key), None)
        if pick is not None:
            return f"{src.path}:{pick[0]}:{pick[1]}"
    return None


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _loader_class(src: Source) -> type:
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class _Loader(base):  # type: ignore[misc]
        pass

    def mark(node: Any) -> tuple[int, int]:
        return node.start_mark.line + 1, node.start_mark.column + 1

    def construct_mapping(loader: Any, node: Any) -> Any:
        mapping: dict[Any, Any] = {}
        src._start[id(mapping)] = mark(node)
        src._keep.append(mapping)
        yield mapping
        loader.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not _hashable(key):
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark,
                    "found an unhashable key", key_node.start_mark)
            mapping[key] = value = _plain(loader.construct_object(value_node, deep=True))
            src._key[(id(mapping), key)] = mark(key_node)
            src._value[(id(mapping), key)] = mark(value_node)
            src._by_id.setdefault(id(value), []).append((*mark(value_node), key))
            src._keep.append(value)

    def construct_sequence(loader: Any, node: Any) -> Any:
        items: list[Any] = []
        src._start[id(items)] = mark(node)
        src._keep.append(items)
        yield items
        for index, child in enumerate(node.value):
            items.append(value := _plain(loader.construct_object(child, deep=True)))
            src._value[(id(items), index)] = mark(child)
            src._by_id.setdefault(id(value), []).append((*mark(child), index))
            src._keep.append(value)

    def _plain(value: Any) -> Any:
        return Decrypted(value) if src.encrypted and type(value) is str else value

    def construct_unsafe(loader: Any, node: Any) -> Any:
        # the plan and the artifact carry it as {"__ansible_unsafe": text} (model.tag_unsafe)
        if isinstance(node, yaml.ScalarNode):
            return Unsafe(loader.construct_scalar(node))
        if isinstance(node, yaml.SequenceNode):
            return [Unsafe(v) if isinstance(v, str) else v for v in loader.construct_sequence(node)]
        return {k: Unsafe(v) if isinstance(v, str) else v
                for k, v in loader.construct_mapping(node).items()}

    def construct_vault(loader: Any, node: Any) -> Any:
        line, col = mark(node)
        text = src.lines[line - 1] if 0 < line <= len(src.lines) else None
        if not isinstance(node, yaml.ScalarNode):
            raise Origin(src.shown, line, col, text).error(
                "!vault takes the text ansible-vault encrypt_string prints",
                "secret: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  ...")
        envelope = loader.construct_scalar(node)
        try:
            return Vaulted(vault.decrypt(envelope))
        except vault.VaultFailed as exc:
            if exc.locked is not None:  # as ansible-core: the tasks that use it fail, not the load
                return Undecryptable(envelope, exc.locked)
            raise Origin(src.shown, line, col, text).error(
                f"cannot decrypt this !vault value: {exc.message}", exc.hint) from exc

    _Loader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    _Loader.add_constructor("tag:yaml.org,2002:seq", construct_sequence)
    _Loader.add_constructor("!unsafe", construct_unsafe)
    _Loader.add_constructor("!vault", construct_vault)
    _Loader.add_constructor("!vault-encrypted", construct_vault)
    return _Loader


def read_text(path: str, shown: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError as exc:
        raise PlaybookError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                            f"{what} must be UTF-8 text", file=shown) from exc
    except IsADirectoryError as exc:
        raise PlaybookError(f"is a directory, not a {what}", None, file=shown) from exc
    except OSError as exc:
        raise PlaybookError(f"cannot read the {what}: {exc.strerror}", None, file=shown) from exc


def read_yaml(path: str, *, shown: str | None = None, text: str | None = None,
              what: str = "YAML file") -> Source:
    """Parse one YAML file (``text`` when already read); PlaybookError at the syntax error."""
    import yaml

    shown = shown if shown is not None else path
    if text is None:
        text = read_text(path, shown, what)
    encrypted = vault.is_encrypted(text)
    if encrypted:
        try:
            text = vault.decrypt(text)
        except vault.VaultFailed as exc:
            raise PlaybookError(f"cannot decrypt this vault-encrypted {what}: {exc.message}",
                                exc.hint, file=shown) from exc
    src = Source(path, text, shown)
    src.encrypted = encrypted
    try:
        src.data = yaml.load(text, Loader=_loader_class(src))  # noqa: S506 - a safe loader
    except yaml.MarkedYAMLError as exc:
        m = exc.problem_mark or exc.context_mark
        problem = exc.problem or "invalid YAML"
        context = f" ({exc.context})" if exc.context else ""
        line = m.line + 1 if m else None
        hint = ("check the indentation, the quoting, and that every ':' is followed by a "
                "space; a value that starts with {{ must be quoted")
        raise PlaybookError(
            f"YAML syntax error: {problem}{context}",
            hint,
            file=shown, line=line, column=m.column + 1 if m else None,
            source_line=src.lines[line - 1] if line and 0 < line <= len(src.lines) else None,
        ) from exc
    except yaml.YAMLError as exc:
        raise PlaybookError(f"YAML syntax error: {exc}", "check the YAML syntax",
                            file=shown) from exc
    return src
