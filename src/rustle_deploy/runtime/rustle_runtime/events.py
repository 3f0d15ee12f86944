"""The event stream (protocol 1): one JSON object per line on stdout and in the journal.

The journal gets every line as it is written. Stdout gets them in batches: a line waits at most
``BATCH_WINDOW`` seconds for the lines that follow it, so the controller still sees progress
live, while a run of a dozen quick tasks costs the host's sshd, the ssh client and the
controller two or three wake-ups instead of thirty. ``close`` writes what is left. Values of
``no_log`` results never reach this module: ``censor`` replaces them first.
"""

import json
import os
import sys
import threading
import time

BATCH_WINDOW = 0.05  # seconds a line on stdout may wait for the lines after it

CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"

# keys of a result that are safe to show even under no_log
_NO_LOG_KEEP = ("event", "id", "task", "module", "status", "ignored", "duration", "handler",
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
    return str(value)


class Emitter:
    """Write events to stdout and, when given, append them to a journal file (0600)."""

    def __init__(self, stream=None, journal=None):
        self.stream = stream if stream is not None else sys.stdout.buffer
        self.journal_fd = None
        self._pending = []  # lines for stdout not written yet
        self._queued = threading.Condition()
        self._flusher = None
        self._closed = False
        if journal:
            parent = os.path.dirname(os.path.abspath(journal))
            os.makedirs(parent, mode=0o700, exist_ok=True)
            self.journal_fd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def emit(self, event):
        line = json.dumps(event, default=_default, ensure_ascii=False, sort_keys=False)
        data = line.encode("utf-8", "replace") + b"\n"
        with self._queued:
            if not self._pending:
                self._queued.notify()
            self._pending.append(data)
            if self._flusher is None:
                self._flusher = threading.Thread(target=self._flush_later, name="rustle-events", daemon=True)
                self._flusher.start()
        if self.journal_fd is not None:
            os.write(self.journal_fd, data)

    def _flush_later(self):
        while True:
            with self._queued:
                while not self._pending and not self._closed:
                    self._queued.wait()
                if self._closed:
                    return
            time.sleep(BATCH_WINDOW)
            self.flush()

    def flush(self):
        """Write the pending lines to stdout. The lock is held while writing, so lines keep their order."""
        with self._queued:
            data, self._pending = b"".join(self._pending), []
            if not data:
                return
            try:
                self.stream.write(data)
                self.stream.flush()
            except BrokenPipeError:
                pass  # the controller went away; keep applying the plan and journaling it

    def close(self):
        self.flush()
        with self._queued:
            self._closed = True
            self._queued.notify()
        if self.journal_fd is not None:
            os.close(self.journal_fd)
            self.journal_fd = None
