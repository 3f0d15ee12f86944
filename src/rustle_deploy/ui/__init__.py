"""``rustle-deploy ui``: a web application over the history database (docs/ui.md).

Pages list deployments, show one (hosts, outcomes, releases, recap, failed tasks), a host's
releases and runs, a host's task results, and a running deployment live (server-sent
events). Its actions, rollback and stopping a running deployment, go through the command
line's own code paths. ``/metrics`` serves the
history in the Prometheus format. The UI only reads the history (read-only connections); a
deployment never needs it running.

Needs the ``ui`` extra (starlette, uvicorn, prometheus-client). Imports: ``cli`` -> ``ui`` ->
``ui.app`` -> (``ui.data``, ``ui.security``, ``ui.metrics``, ``ui.actions`` -> ``fleetops``).
"""

from __future__ import annotations

import ipaddress
import sys
import threading
import time
from typing import Any

from ..errors import UsageError
from ..settings import load_settings


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def _open_when_started(server: Any, url: str) -> None:
    """Open ``url`` in a web browser once ``server`` accepts connections."""
    import webbrowser

    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started:
        webbrowser.open(url)


def serve(host: str, port: int, token: str | None, open_browser: bool, config: str | None) -> int:
    """Serve the UI until interrupted; refuse a non-loopback bind without a token."""
    if token is not None and len(token) < 16:
        raise UsageError("--token must be at least 16 characters", "for example: export RUSTLE_UI_TOKEN=$(openssl rand -hex 24)")
    if not is_loopback(host) and token is None:
        raise UsageError(
            f"--host {host} is not a loopback address: anyone who reaches it could read the history and roll back",
            "pass --token (or set RUSTLE_UI_TOKEN), or put an authenticating reverse proxy in front of a loopback "
            "bind (docs/ui.md)",
        )
    try:
        import uvicorn

        from .app import UiConfig, create_app
    except ImportError as exc:
        raise UsageError(f"the web UI needs the ui extra ({exc.name} is not installed)",
                         "pip install 'rustle-deploy[ui]'") from exc
    settings = load_settings(config)
    from .security import LOOPBACK_NAMES

    # Without a token, only requests that name this machine (not a rebound DNS name) are served.
    app = create_app(UiConfig(state_db=settings.state_db, token=token, config=config,
                              hosts=None if token is not None else LOOPBACK_NAMES))
    server_config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                   timeout_graceful_shutdown=2)
    try:
        sock = server_config.bind_socket()
    except SystemExit:  # uvicorn logs why (address in use, ...) and exits 1
        raise UsageError(f"cannot listen on {host}:{port}", "choose another --port, or --port 0 for any free one") from None
    sock.listen(server_config.backlog)  # a client that reads the URL below may connect at once
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}/"
    print(f"rustle-deploy ui: serving {settings.state_db} at {url} (Ctrl-C stops)", file=sys.stderr, flush=True)
    server = uvicorn.Server(server_config)
    if open_browser:
        threading.Thread(target=_open_when_started, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0


__all__ = ["is_loopback", "serve"]
