"""Ansible host patterns, as ``--limit`` and a play's ``hosts:`` use them.

A port of ``InventoryManager.get_hosts``: patterns split on ``,`` (or on ``:`` when the whole
is not one host name or range), evaluated plain first, then ``&`` intersections, then ``!``
exclusions; each pattern is a name, a shell glob or a ``~regex`` matched against group names
(a matching group contributes all its hosts) and host names (when no group matched, or the
pattern is a glob or regex), with an optional ``[i]`` / ``[i:j]`` subscript. ``all`` and
``ungrouped`` are ordinary group names here, as in Ansible. ``@file`` reads names from a file.
Evaluation works on names only; the caller maps them back to hosts.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence

from rustle_deploy.inventory.ranges import RangeError, parse_address

__all__ = ["PatternError", "split_host_pattern", "order_patterns", "evaluate"]

_SUBSCRIPT = re.compile(
    r"""^
        (.+)
        \[(?:
            (-?[0-9]+)|
            ([0-9]+)([:-])
            ([0-9]*)
        )\]
        $
    """,
    re.X,
)
_COLON_SPLIT = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")


class PatternError(ValueError):
    """A pattern Ansible rejects (bad regex, subscript out of range, missing @file)."""


def split_host_pattern(pattern: str) -> list[str]:
    """``'a,b[1], c[2:3] , d'`` -> ``['a', 'b[1]', 'c[2:3]', 'd']``; ``a:b`` splits too."""
    if "," in pattern:
        parts = pattern.split(",")
    else:
        try:
            parse_address(pattern, allow_ranges=True)
            parts = [pattern]
        except RangeError:
            parts = _COLON_SPLIT.findall(pattern)
    return [p.strip() for p in parts if p.strip()]


def order_patterns(patterns: Sequence[str]) -> list[str]:
    """Plain patterns first (``all`` if there are none), then ``&``, then ``!``."""
    regular = [p for p in patterns if p and p[0] not in "!&"]
    inter = [p for p in patterns if p and p[0] == "&"]
    exclude = [p for p in patterns if p and p[0] == "!"]
    return (regular or ["all"]) + inter + exclude


def _match_list(items: Sequence[str], pattern: str) -> list[str]:
    try:
        rx = re.compile(fnmatch.translate(pattern) if pattern[0] != "~" else pattern[1:])
    except re.error as exc:
        raise PatternError(f"invalid host pattern '{pattern}': {exc}") from exc
    return [item for item in items if rx.match(item)]


def _split_subscript(pattern: str) -> tuple[str, tuple[int, int | None] | None]:
    if pattern[0] == "~":
        return pattern, None
    m = _SUBSCRIPT.match(pattern)
    if not m:
        return pattern, None
    base, idx, start, _sep, end = m.groups()
    if idx:
        return base, (int(idx), None)
    return base, (int(start), int(end) if end else -1)


def evaluate(
    pattern: str,
    *,
    group_hosts: Mapping[str, Sequence[str]],
    hosts: Sequence[str],
    implicit: Callable[[str], str | None],
    read_file: Callable[[str], str] | None = None,
) -> list[str]:
    """Host names ``pattern`` selects, in Ansible's order.

    ``group_hosts`` maps every group name (in inventory order) to all its hosts (descendants
    included); ``hosts`` lists host names in inventory order; ``implicit(name)`` returns the
    implicit localhost's name for ``localhost``/``127.0.0.1``/``::1`` when it applies.
    """
    parts: list[str] = []
    for p in split_host_pattern(pattern):
        if p[0] == "@":
            if read_file is None:
                raise PatternError(f"'@file' patterns are not allowed here: {p}")
            parts.extend(line.strip() for line in read_file(p[1:]).split("\n"))
        else:
            parts.append(p)
    host_set = set(hosts)
    cache: dict[str, list[str]] = {}
    result: list[str] = []
    for p in order_patterns(parts):
        if p in host_set:
            if p not in result:
                result.append(p)
            continue
        key = p[1:] if p[0] in "!&" else p
        if key not in cache:
            cache[key] = _match_one(key, group_hosts, hosts, implicit)
        that = cache[key]
        if p[0] == "!":
            drop = set(that)
            result = [h for h in result if h not in drop]
        elif p[0] == "&":
            keep = set(that)
            result = [h for h in result if h in keep]
        else:
            have = set(result)
            result.extend(h for h in that if h not in have)
    out: list[str] = []
    seen: set[str] = set()
    for h in result:
        if h not in seen:
            seen.add(h)
            out.append(h)
    return out


def _match_one(
    pattern: str,
    group_hosts: Mapping[str, Sequence[str]],
    hosts: Sequence[str],
    implicit: Callable[[str], str | None],
) -> list[str]:
    if pattern[:1] in ("&", "!"):
        pattern = pattern[1:]
    if not pattern:
        return []
    expr, subscript = _split_subscript(pattern)
    found: list[str] = []
    groups = _match_list(list(group_hosts), expr)
    for g in groups:
        found.extend(group_hosts[g])
    if not groups or expr[0] == "~" or any(c in expr for c in ".?*["):
        found.extend(_match_list(hosts, expr))
    if not found:
        name = implicit(expr)
        if name is not None:
            found.append(name)
    if found and subscript:
        start, end = subscript
        try:
            if end:
                if end == -1:
                    end = len(found) - 1
                found = found[start : end + 1]
            else:
                found = [found[start]]
        except IndexError as exc:
            raise PatternError(f"no hosts matched the subscripted pattern '{pattern}'") from exc
    return found
