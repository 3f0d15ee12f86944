"""Ask the operator on the terminal: ``vars_prompt`` values and ``-K``'s become password.

The only module that reads the keyboard. A private answer is read with the terminal's echo
off (``getpass``, on ``/dev/tty``); every prompt is written on stderr (or the terminal), never
on stdout, which may carry JSON for ``rustle-exec``. Without a terminal on standard input
nothing is asked: the caller decides (a default, or a clear error).
"""

from __future__ import annotations

import sys

__all__ = ["ask", "interactive"]

MISMATCH = "***** VALUES ENTERED DO NOT MATCH ****"


def interactive() -> bool:
    """Whether standard input is a terminal to ask on (as ansible-playbook decides)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # a closed stdin
        return False


def ask(message: str, *, private: bool, confirm: bool = False) -> str | None:
    """The operator's answer to ``message``; None without a terminal. ``confirm``: ask twice
    until both answers are the same, as Ansible's ``confirm: true``."""
    if not interactive():
        return None
    while True:
        first = _read(message, private)
        if not confirm:
            return first
        if _read("confirm " + message, private) == first:
            return first
        print(MISMATCH, file=sys.stderr, flush=True)


def _read(message: str, private: bool) -> str:
    if private:
        import getpass  # termios: only when a password is asked

        return getpass.getpass(message, stream=sys.stderr)
    sys.stderr.write(message)
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:  # Ctrl-D: an empty answer
        sys.stderr.write("\n")
    return line.rstrip("\r\n")
