"""Module arguments as Ansible reads them: ``k=v`` strings, free-form commands, ``action:``.

A port of ansible-core's ``parsing/splitter.py`` (``split_args``, ``parse_kv``) and the parts
of ``parsing/mod_args.py`` (``ModuleArgsParser``) that decide which key of a task names the
module and what its arguments are: ``copy: src=a dest=b``, ``command: echo hi chdir=/tmp``
(only ``creates``, ``removes``, ``chdir``, ``executable``, ``warn``, ``stdin``,
``stdin_add_newline`` and ``strip_empty_ends`` are split off a free-form command),
``action: copy src=a``, ``local_action: ...`` and ``args:`` merged in.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

__all__ = ["ArgsError", "split_args", "parse_kv", "split_module_string", "FREEFORM_MODULES"]

# modules whose bare words are the command itself (ansible.constants.MODULE_REQUIRE_ARGS)
FREEFORM_MODULES = frozenset({"command", "shell", "raw", "script", "win_command", "win_shell"})
_COMMAND_OPTIONS = ("creates", "removes", "chdir", "executable", "warn", "stdin",
                    "stdin_add_newline", "strip_empty_ends")

_HEX = "[a-fA-F0-9]"
_ESCAPE = re.compile(rf"""( \\U{_HEX * 8} | \\u{_HEX * 4} | \\x{_HEX * 2} | \\N\{{[^}}]+\}}
                          | \\[\\'"abfnrtv] )""", re.UNICODE | re.VERBOSE)


class ArgsError(ValueError):
    """Arguments that cannot be split (unbalanced quotes or Jinja2 blocks)."""


def _decode_escapes(text: str) -> str:
    return _ESCAPE.sub(lambda m: codecs.decode(m.group(0), "unicode-escape"), text)


def _is_quoted(data: str) -> bool:
    return len(data) > 1 and data[0] == data[-1] and data[0] in ('"', "'") and data[-2] != "\\"


def unquote(data: str) -> str:
    return data[1:-1] if _is_quoted(data) else data


def _quote_state(token: str, quote_char: str | None) -> str | None:
    prev = None
    for idx, cur in enumerate(token):
        if idx > 0:
            prev = token[idx - 1]
        if cur in "\"'" and prev != "\\":
            if quote_char:
                if cur == quote_char:
                    quote_char = None
            else:
                quote_char = cur
    return quote_char


def _depth(token: str, depth: int, opening: str, closing: str) -> int:
    opened, closed = token.count(opening), token.count(closing)
    if opened != closed:
        depth = max(0, depth + opened - closed)
    return depth


def _join(parts: list[str]) -> str:
    out = ""
    for p in parts:
        out = out + p if not out or out.endswith("\n") else out + " " + p
    return out


def split_args(args: str) -> list[str]:
    """Split on whitespace, keeping quoted strings and Jinja2 blocks whole (Ansible's rules)."""
    if not args:
        return []
    params: list[str] = []
    items = args.split("\n")
    quote_char: str | None = None
    inside_quotes = False
    print_depth = block_depth = comment_depth = 0
    for itemidx, item in enumerate(items):
        tokens = item.split(" ")
        continuation = False
        for idx, token in enumerate(tokens):
            if len(token) == 0 and idx != 0:
                if not params:
                    params.append("")
                params[-1] += " "
                continue
            if token == "\\" and not inside_quotes:
                continuation = True
                continue
            was_inside = inside_quotes
            quote_char = _quote_state(token, quote_char)
            inside_quotes = quote_char is not None
            appended = False
            if inside_quotes and not was_inside and not (print_depth or block_depth or comment_depth):
                params.append(token)
                appended = True
            elif print_depth or block_depth or comment_depth or inside_quotes or was_inside:
                if idx == 0 and was_inside:
                    params[-1] = f"{params[-1]}{token}"
                else:
                    params[-1] = f"{params[-1]}{' ' if idx > 0 else ''}{token}"
                appended = True
            for opening, closing, which in (("{{", "}}", 0), ("{%", "%}", 1), ("{#", "#}", 2)):
                before = (print_depth, block_depth, comment_depth)[which]
                after = _depth(token, before, opening, closing)
                if which == 0:
                    print_depth = after
                elif which == 1:
                    block_depth = after
                else:
                    comment_depth = after
                if after != before and not appended:
                    params.append(token)
                    appended = True
            if not (print_depth or block_depth or comment_depth) and not inside_quotes \
                    and not appended and token != "":
                params.append(token)
        if len(items) > 1 and itemidx != len(items) - 1 and not continuation:
            if not params:
                params.append("")
            params[-1] += "\n"
    if print_depth or block_depth or comment_depth or inside_quotes:
        raise ArgsError("failed at splitting arguments, either an unbalanced jinja2 block or "
                        f"quotes: {args}")
    return params


def parse_kv(args: str | None, check_raw: bool = False) -> dict[str, Any]:
    """``a=1 b="x y"`` -> ``{"a": "1", "b": "x y"}``; other words go to ``_raw_params``.

    With ``check_raw`` (free-form modules) only the command options are split off.
    """
    options: dict[str, Any] = {}
    if args is None:
        return options
    raw: list[str] = []
    for orig in split_args(args):
        x = _decode_escapes(orig)
        if "=" in x:
            pos = 0
            try:
                while True:
                    pos = x.index("=", pos + 1)
                    if pos > 0 and x[pos - 1] != "\\":
                        break
            except ValueError:
                raw.append(x.replace("\\=", "="))
                continue
            k, v = x[:pos], x[pos + 1:]
            if check_raw and k not in _COMMAND_OPTIONS:
                raw.append(orig)
            else:
                options[k.strip()] = unquote(v.strip())
        else:
            raw.append(orig)
    if raw:
        options["_raw_params"] = _join(raw)
    return options


def split_module_string(text: str) -> tuple[str, str]:
    """``copy src=a dest=b`` -> (``copy``, ``src=a dest=b``)."""
    tokens = split_args(text)
    if not tokens:
        return "", ""
    return tokens[0].strip(), " ".join(tokens[1:])
