"""What every request goes through: the access token, the CSRF cookie, the security headers.

- With a token (required for a non-loopback bind), every request but the login form and the
  static files must carry it: ``Authorization: Bearer TOKEN`` (scripts, Prometheus), or the
  session cookie the login form sets (browsers; HttpOnly, SameSite=Strict). The cookie holds
  an HMAC of the token, never the token itself.
- Every POST must carry a ``csrf`` form field equal to the ``rustle_csrf`` cookie (double
  submit; the cookie is SameSite=Strict, so another site can neither read nor send it), and an
  ``Origin`` header, when the browser sends one, naming this server.
- Without a token (loopback only), a request must name this machine in its ``Host`` header
  (127.0.0.1, localhost, ::1): a web page whose own name an attacker resolves to 127.0.0.1
  (DNS rebinding) is refused, so it can neither read the pages nor post a rollback.
- Every response gets a strict Content-Security-Policy (scripts, styles and fetches from this
  server only, no inline script, no framing) and the usual companions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any
from urllib.parse import quote, urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE = "rustle_csrf"
SESSION_COOKIE = "rustle_session"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make browsers send "Origin: null" on our own POSTs
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cache-Control": "no-store",
}
_CSRF_FORMAT = re.compile(r"^[0-9a-f]{64}$")
OPEN_PATHS = ("/login",)


def session_value(token: str) -> str:
    """What the session cookie holds for ``token``: an HMAC, so the cookie is not the token."""
    return hmac.new(token.encode(), b"rustle-deploy ui session", hashlib.sha256).hexdigest()


def authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    given = request.headers.get("authorization", "")
    if given.startswith("Bearer ") and hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        return True
    cookie = request.cookies.get(SESSION_COOKIE, "")
    return hmac.compare_digest(cookie.encode(), session_value(token).encode())


def safe_next(value: str | None) -> str:
    """A path on this server to go to after logging in (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def check_csrf(request: Request) -> str | None:
    """Why this POST is refused as a possible cross-site request, None when it is fine."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        if urlsplit(origin).netloc != request.headers.get("host", ""):
            return f"the request comes from another site ({origin})"
    elif origin == "null":
        return "the request comes from an opaque origin"
    cookie = request.cookies.get(CSRF_COOKIE, "")
    form = await request.form()
    field = form.get("csrf")
    if not cookie or not isinstance(field, str) or not hmac.compare_digest(cookie.encode(), field.encode()):
        return "the form's CSRF token is missing or does not match (reload the page and try again)"
    return None


class Guard:
    """ASGI middleware: token check, CSRF cookie, security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp, token: str | None, hosts: tuple[str, ...] | None = None) -> None:
        self.app = app
        self.token = token
        self.hosts = hosts  # the Host header names accepted; None: any

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        csrf = request.cookies.get(CSRF_COOKIE, "")
        fresh = None
        if not _CSRF_FORMAT.match(csrf):
            csrf = fresh = secrets.token_hex(32)
        scope.setdefault("state", {})["csrf"] = csrf
        secure = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in HEADERS.items():
                    headers[key] = value
                if fresh is not None:
                    headers.append("set-cookie", f"{CSRF_COOKIE}={fresh}; Path=/; HttpOnly; SameSite=Strict"
                                   + ("; Secure" if secure else ""))
            await send(message)

        path = scope.get("path", "/")
        if self.hosts is not None and _host_name(request.headers.get("host", "")) not in self.hosts:
            refused = PlainTextResponse(
                "400: this server answers to its loopback address only (127.0.0.1, localhost, ::1); "
                "start it with --token to serve other names\n", status_code=400)
            await refused(scope, receive, send_with_headers)
            return
        if not authorized(request, self.token) and path not in OPEN_PATHS and not path.startswith("/static/"):
            response: Response
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
            else:
                response = PlainTextResponse(
                    "401: this server needs its access token: send 'Authorization: Bearer TOKEN', "
                    "or log in at /login\n", status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _host_name(header: str) -> str:
    """The name in a Host header, without its port (``[::1]:8765`` -> ``::1``)."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def login_cookie(token: str, secure: bool) -> dict[str, Any]:
    """The arguments of ``set_cookie`` for a logged-in browser."""
    return {"key": SESSION_COOKIE, "value": session_value(token), "httponly": True, "samesite": "strict",
            "path": "/", "secure": secure}
