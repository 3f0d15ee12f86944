"""Host names with ranges and ports, as Ansible reads them (``web[01:20].example.com:2222``).

A port of ``ansible.parsing.utils.addresses.parse_address`` and
``ansible.plugins.inventory.expand_hostname_range``: the same regular expressions, the same
quirks (an unparsable name is kept as written; ``[x,y,z]`` lists are not ranges and fail).
Errors are :class:`RangeError` (a ``ValueError``); the parsers turn them into InventoryError
with the file and line.
"""

from __future__ import annotations

import re
import string
from functools import cache

__all__ = ["RangeError", "expand_hostpattern", "parse_address", "expand_hostname_range"]


class RangeError(ValueError):
    """A host pattern or range Ansible would reject."""


_NUMERIC_RANGE = r"""
    \[
        (?:[0-9]+:[0-9]+)
        (?::[0-9]+)?
    \]
"""
_HEX_RANGE = r"""
    \[
        (?:[0-9a-f]+:[0-9a-f]+)
        (?::[0-9]+)?
    \]
"""
_ALNUM_RANGE = r"""
    \[
        (?:
            [a-z]:[a-z]|
            [0-9]+:[0-9]+
        )
        (?::[0-9]+)?
    \]
"""
_IPV6_COMPONENT = rf"""
    (?:
        [0-9a-f]{{1,4}}|
        {_HEX_RANGE}
    )
"""
_IPV4_COMPONENT = rf"""
    (?:
        [01]?[0-9]{{1,2}}|
        2[0-4][0-9]|
        25[0-5]|
        {_NUMERIC_RANGE}
    )
"""
_LABEL = rf"""
    (?:[\w]|{_ALNUM_RANGE})
    (?:[\w_-]|{_ALNUM_RANGE})*
    (?<![_-])
"""

_SOURCES = {
    "bracketed_hostport": (r"^\[(.+)\]:([0-9]+)$", 0),
    "hostport": (
        r"""^
            ((?:
                [^:\[\]]
                |
                \[[^\]]*\]
            )*)
            :([0-9]+)
            $
        """,
        re.X,
    ),
    "ipv4": (
        rf"""^(?:{_IPV4_COMPONENT}\.){{3}}{_IPV4_COMPONENT}$""", re.X | re.I
    ),
    "ipv6": (
        rf"""^
            ((?:{_IPV6_COMPONENT}:){{7}}{_IPV6_COMPONENT}|
            (?:{_IPV6_COMPONENT}:){{1,6}}:|
            (?:{_IPV6_COMPONENT}:)(?::{_IPV6_COMPONENT}){{1,6}}|
            (?:{_IPV6_COMPONENT}:){{2}}(?::{_IPV6_COMPONENT}){{1,5}}|
            (?:{_IPV6_COMPONENT}:){{3}}(?::{_IPV6_COMPONENT}){{1,4}}|
            (?:{_IPV6_COMPONENT}:){{4}}(?::{_IPV6_COMPONENT}){{1,3}}|
            (?:{_IPV6_COMPONENT}:){{5}}(?::{_IPV6_COMPONENT}){{1,2}}|
            (?:{_IPV6_COMPONENT}:){{6}}(?::{_IPV6_COMPONENT})|
            :(?::{_IPV6_COMPONENT}){{1,6}}|
            {_IPV6_COMPONENT}?::|
            (?:0:){{6}}(?:{_IPV6_COMPONENT}\.){{3}}{_IPV6_COMPONENT}|
            ::(?:ffff:)?(?:{_IPV6_COMPONENT}\.){{3}}{_IPV6_COMPONENT}|
            (?:0:){{5}}ffff:(?:{_IPV6_COMPONENT}\.){{3}}{_IPV6_COMPONENT})
            $
        """,
        re.X | re.I,
    ),
    "hostname": (
        rf"""^{_LABEL}(?:\.{_LABEL})*$""", re.X | re.I | re.UNICODE
    ),
}


@cache
def _pattern(kind: str) -> re.Pattern[str]:
    """The compiled pattern ``kind``, compiled on first use (~10 ms less at start-up)."""
    source, flags = _SOURCES[kind]
    return re.compile(source, flags)


def parse_address(address: str, allow_ranges: bool = False) -> tuple[str, int | None]:
    """Split ``host[:port]`` the way Ansible does; raise RangeError if it is no host name."""
    port: int | None = None
    for kind in ("bracketed_hostport", "hostport"):
        m = _pattern(kind).match(address)
        if m:
            address, port_text = m.groups()
            port = int(port_text)
    host = None
    for kind in ("hostname", "ipv4", "ipv6"):  # any match will do; the IPv6 pattern, which
        if _pattern(kind).match(address):      # takes ~5 ms to compile, is left for last
            host = address
            break
    if not host:
        raise RangeError(f"not a valid network hostname: {address}")
    if not allow_ranges and "[" in host:
        raise RangeError("detected range in host but was asked to ignore ranges")
    return host, port


def expand_hostname_range(line: str) -> list[str]:
    """Expand every ``[begin:end(:step)]`` in ``line`` (numeric, zero-padded or one letter)."""
    parts = line.replace("[", "|", 1).replace("]", "|", 1).split("|")
    if len(parts) != 3:
        raise RangeError(f"unbalanced '[' in host pattern '{line}'")
    head, nrange, tail = parts
    bounds = nrange.split(":")
    if len(bounds) not in (2, 3):
        raise RangeError(f"host range [{nrange}] must be begin:end or begin:end:step")
    beg, end = bounds[0], bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not beg:
        beg = "0"
    if not end:
        raise RangeError(f"host range [{nrange}] must specify an end value")
    rlen = 0
    if beg[0] == "0" and len(beg) > 1:
        rlen = len(beg)
        if rlen != len(end):
            raise RangeError(
                f"host range [{nrange}] must specify equal-length begin and end formats"
            )
    fill = (lambda x: str(x).zfill(rlen)) if rlen else str
    seq: list[str]
    try:
        # str.index on purpose: Ansible accepts any substring of ascii_letters here.
        i_beg = string.ascii_letters.index(beg)
        i_end = string.ascii_letters.index(end)
        alpha = True
    except ValueError:
        alpha = False
    try:
        if alpha:
            if i_beg > i_end:
                raise RangeError(f"host range [{nrange}] must have begin <= end")
            try:
                seq = [fill(c) for c in string.ascii_letters[i_beg : i_end + 1 : int(step_text)]]
            except ValueError:
                alpha = False
        if not alpha:
            seq = [fill(n) for n in range(int(beg), int(end) + 1, int(step_text))]
    except RangeError:
        raise
    except ValueError as exc:
        raise RangeError(f"host range [{nrange}] is not a valid numeric or letter range") from exc
    hosts: list[str] = []
    for item in seq:
        name = f"{head}{item}{tail}"
        if "[" in name:
            hosts.extend(expand_hostname_range(name))
        else:
            hosts.append(name)
    return hosts


def expand_hostpattern(hostpattern: str) -> tuple[list[str], int | None]:
    """Return the host names a pattern stands for and the port it names (or None)."""
    try:
        pattern, port = parse_address(hostpattern, allow_ranges=True)
    except RangeError:
        pattern, port = hostpattern, None
    if "[" in pattern:
        return expand_hostname_range(pattern), port
    return [pattern], port
