"""The event stream (protocol 1): one JSON object per line on stdout and in the journal.

Every line is flushed as soon as it is written, so the controller sees progress live. Values
of ``no_log`` results never reach this module: ``censor`` replaces them first.
"""

import json
import os
import sys

from .lowlevel import check_stopped

CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"

# keys of a result that are safe to show even under no_log
_NO_LOG_KEEP = ("event", "id", "task", "module", "bridge", "status", "ignored", "duration", "handler",
                "changed", "failed", "skipped", "attempts", "rc")


def censor(event):
    """A copy of ``event`` with every value hidden but its status keys."""
    out = {k: event[k] for k in _NO_LOG_KEEP if k in event}
    out["censored"] = CENSORED
    if "results" in event:
        out["results"] = [censor(r) for r in event["results"]]
    return out


def _default(value):
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if callable(getattr(value, "flat", None)):  # a VarScope given whole ({{ vars }}, ansible_delegated_vars)
        return _plain(value, ())
    return str(value)


def _plain(value, within):
    """``value`` with each variable scope in it flattened, as JSON can hold it: ``hostvars`` in a
    scope as its host names (each host's variables hold hostvars again), and a scope met again
    inside itself (a registered result holding the variables that hold it) left out."""
    flat = getattr(value, "flat", None)
    if callable(flat):
        if id(value) in within:
            return None
        within = (*within, id(value))
        value = flat()
        if isinstance(value, dict) and "hostvars" in value:
            value = dict(value, hostvars={str(name): {} for name in value["hostvars"]})
    if isinstance(value, dict):
        return {k: _plain(v, within) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, within) for v in value]
    return value


class Emitter:
    """Write events to stdout and, when given, append them to a journal file (0600)."""

    def __init__(self, stream=None, journal=None):
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.journal_fd = None
        self.journal_path = journal
        if journal:
            parent = os.path.dirname(os.path.abspath(journal))
            os.makedirs(parent, mode=0o700, exist_ok=True)
            self.journal_fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def emit(self, event, journal=True):
        """Write ``event``; ``journal=False`` keeps it out of the journal (controller data:
        a phase's ``shared`` state, which holds the values of no_log results too)."""
        check_stopped()  # the deploy agent is ending the run: its last journal line is its own
        line = json.dumps(event, default=_default, ensure_ascii=False, sort_keys=False)
        data = line.encode("utf-8", "replace") + b"\n"
        try:
            self.stream.write(data)
            self.stream.flush()
        except BrokenPipeError:
            pass  # the controller went away; keep applying the plan and journaling it
        if self.journal_fd is not None and journal:
            try:
                if os.write(self.journal_fd, data) != len(data):
                    raise OSError(28, os.strerror(28))  # ENOSPC: the rest did not fit
            except OSError as exc:  # ends the run: the host keeps no record of it otherwise
                raise OSError(exc.errno, exc.strerror, self.journal_path) from None

    def close(self):
        if self.journal_fd is not None:
            os.close(self.journal_fd)
            self.journal_fd = None
