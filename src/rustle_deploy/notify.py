"""Webhooks: POST a JSON document to each ``--notify`` URL on deployment start, each host's
outcome, and the end (docs/ui.md, "Notifications", has the schema).

Sending never delays or fails a deployment: each URL has its own thread and queue, a POST
that fails is retried (``RETRIES`` more times, after 0.5 s, then 1 s), each attempt is bounded
by the timeout, and at the end the deployment waits for what is still queued at most one
timeout in all, then goes on; what was not delivered is reported as a note. Standard library
only (urllib): the deploy path does not need the ``ui`` extra.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Sequence
from typing import Any

from . import __version__

SCHEMA = "rustle-deploy.notify/1"
RETRIES = 2
_BACKOFF = (0.5, 1.0)
_STOP = object()


class _Sender(threading.Thread):
    """POST each queued document to one URL, in order."""

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__(name=f"notify {url}", daemon=True)  # never keeps the process alive
        self.url = url
        self.timeout = timeout
        self.queue: queue.Queue[Any] = queue.Queue()
        self.queued = 0
        self.delivered = 0
        self.last_error: str | None = None

    def run(self) -> None:
        while True:
            doc = self.queue.get()
            if doc is _STOP:
                return
            self._post(json.dumps(doc, default=str).encode())

    def _post(self, body: bytes) -> None:
        import urllib.error  # here: a deployment without --notify never loads http/ssl/email (~10 ms)
        import urllib.request

        for attempt in range(RETRIES + 1):
            request = urllib.request.Request(
                self.url, data=body, method="POST",
                headers={"Content-Type": "application/json", "User-Agent": f"rustle-deploy/{__version__}"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                    response.read()
                self.delivered += 1
                return
            except urllib.error.HTTPError as exc:
                self.last_error = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    break  # the receiver refuses this document: sending it again changes nothing
            except (OSError, ValueError) as exc:  # refused, reset, timed out, bad answer
                self.last_error = str(getattr(exc, "reason", None) or exc)
            if attempt < RETRIES:
                time.sleep(_BACKOFF[attempt])


class Notifier:
    """Send deployment events to ``urls``; ``close`` at the end (bounded by ``timeout``)."""

    def __init__(self, urls: Sequence[str], timeout: float) -> None:
        self.timeout = timeout
        self._senders = [_Sender(u, timeout) for u in dict.fromkeys(urls)]
        for s in self._senders:
            s.start()

    def send(self, doc: dict[str, Any]) -> None:
        for s in self._senders:
            s.queued += 1
            s.queue.put(doc)

    def close(self) -> list[str]:
        """Let the queues drain for at most one timeout; return a note per URL that missed some."""
        deadline = time.monotonic() + self.timeout
        for s in self._senders:
            s.queue.put(_STOP)
        for s in self._senders:
            s.join(max(0.0, deadline - time.monotonic()))
        notes = []
        for s in self._senders:
            if s.delivered < s.queued:
                notes.append(f"--notify {s.url}: {s.queued - s.delivered} of {s.queued} notification(s) not delivered"
                             f" ({s.last_error or 'no answer within ' + format(self.timeout, 'g') + ' s'})")
        return notes


def _text(emoji: str, message: str) -> str:
    return f"{emoji} rustle-deploy: {message}"


def start_doc(deployment_id: str, op: str, plan: str | None, user: str, hosts: Sequence[str]) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "event": "deployment_start", "time": time.time(), "deployment_id": deployment_id,
        "op": op, "plan": plan, "user": user, "hosts": list(hosts),
        "text": _text("🚀", f"{op} {deployment_id} started by {user} on {len(hosts)} host(s)"
                      + (f" ({plan})" if plan else "")),
    }


def host_doc(deployment_id: str, op: str, host: str, status: str, ok: bool, error: str | None,
             recap: dict[str, Any] | None, duration: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA, "event": "host_outcome", "time": time.time(), "deployment_id": deployment_id,
        "op": op, "host": host, "status": status, "ok": ok, "error": error, "recap": recap,
        "duration": round(duration, 3),
        "text": _text("✅" if ok else "❌", f"{op} {deployment_id}: {host} {status}"
                      + (f": {error.splitlines()[0]}" if error else "")),
    }


def end_doc(deployment_id: str, op: str, status: str, hosts: dict[str, bool], duration: float) -> dict[str, Any]:
    failed = sorted(h for h, ok in hosts.items() if not ok)
    return {
        "schema": SCHEMA, "event": "deployment_end", "time": time.time(), "deployment_id": deployment_id,
        "op": op, "status": status, "ok": not failed and status in ("done", "staged"),
        "hosts": len(hosts), "failed_hosts": failed, "duration": round(duration, 3),
        "text": _text("✅" if not failed and status == "done" else "⚠️",
                      f"{op} {deployment_id} {status}: {len(hosts) - len(failed)}/{len(hosts)} host(s) ok"
                      + (f", failed: {', '.join(failed[:10])}" if failed else "")),
    }
