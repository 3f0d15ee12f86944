"""A local stand-in for ansible-test's httptester: httpbin-like HTTPS endpoints on 127.0.0.1.

ansible-test runs the ``needs/httptester`` targets (``uri``, ``get_url``) against a container
that serves httpbin under several names (``httpbin_host``, ``sni_host``, ``badssl_host``,
``self_signed_host``) with a CA installed on the test host. Here, without changing the machine
(no ``/etc/hosts`` entry, no system CA, no fixed port): three TLS servers on 127.0.0.1, each on
a port the kernel picks, named ``localhost:PORT``:

- ``main``: a certificate for ``localhost``/127.0.0.1 signed by a CA made for this run;
- ``badssl``: signed by the same CA for another name (the hostname check fails);
- ``self_signed``: a self-signed certificate (the chain check fails).

Both tools are pointed at them the way ansible-test does it, as extra variables
(``extra_vars``), and trust the CA through ``SSL_CERT_FILE`` (``env``), which Python's default
context reads (ansible-core's ``urls.make_context`` starts from it). The endpoints are httpbin's
that the targets call (``/get``, ``/post``, ``/anything``, ``/status/N``, ``/redirect-to``,
``/redirect/N``, ``/basic-auth``, ``/gzip``, ...), answering as httpbin does where the targets
look. Standard library and ``cryptography`` (a dependency already).
"""

from __future__ import annotations

import base64
import datetime
import gzip
import ipaddress
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, names: list[str], ca: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate, key: Any) -> tuple[bytes, bytes]:
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rustle-httptester"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if status not in (204, 304):
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def _json(self, doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, (json.dumps(doc, indent=2) + "\n").encode(), headers=headers)

    def _echo(self, body: bytes) -> dict[str, Any]:
        """httpbin's description of the request (/get, /post, /anything)."""
        parts = urlsplit(self.path)
        args = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query).items()}
        doc: dict[str, Any] = {"args": args, "headers": {k.title(): v for k, v in self.headers.items()},
                               "origin": self.client_address[0],
                               "url": f"https://{self.headers.get('Host', '')}{self.path}"}
        if self.command not in ("GET", "HEAD"):
            text = body.decode("utf-8", "replace")
            ctype = self.headers.get("Content-Type", "")
            form: dict[str, Any] = {}
            files: dict[str, Any] = {}
            if ctype.startswith("application/x-www-form-urlencoded"):
                form = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text).items()}
            elif ctype.startswith("multipart/form-data"):
                form, files = _multipart(body, ctype)
            try:
                parsed = json.loads(text) if text else None
            except ValueError:
                parsed = None
            doc.update(data=text if not form and not files else "", form=form, files=files, json=parsed)
        doc["method"] = self.command
        return doc

    def _auth(self) -> tuple[str, str] | None:
        value = self.headers.get("Authorization", "")
        if not value.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(value[6:]).decode("utf-8", "replace").partition(":")
        return user, password

    def _route(self) -> None:
        body = self._body()
        parts = urlsplit(self.path)
        path = parts.path
        query = parse_qs(parts.query)
        segs = [unquote(s) for s in path.split("/") if s]
        head = segs[0] if segs else ""
        if path == "/":
            host = self.headers.get("Host", "")
            self._send(200, f"<html><body>httptester at {host}</body></html>\n".encode(), "text/html")
        elif head in ("get", "post", "put", "patch", "delete") and (self.command.lower() == head or (head, self.command) == ("get", "HEAD")):
            self._json(self._echo(body))
        elif head in ("get", "post", "put", "patch", "delete"):
            self._send(405, b"Method Not Allowed\n", "text/html")
        elif head == "anything":
            self._json(self._echo(body))
        elif head == "headers":
            self._json({"headers": {k.title(): v for k, v in self.headers.items()}})
        elif head == "status" and len(segs) == 2 and segs[1].isdigit():
            code = int(segs[1])
            headers = {"Location": "/redirect/1"} if 300 <= code < 400 and code != 304 else {}
            self._send(code, b"", "text/html; charset=utf-8", headers)
        elif head == "redirect-to":
            target = query.get("url", ["/get"])[0]
            code = int(query.get("status_code", ["302"])[0])
            self._send(code, b"", "text/html; charset=utf-8", {"Location": target})
        elif head == "redirect" and len(segs) == 2 and segs[1].isdigit():
            n = int(segs[1])
            self._send(302, b"", "text/html; charset=utf-8", {"Location": f"/redirect/{n - 1}" if n > 1 else "/get"})
        elif head == "response-headers":
            headers = {k: v[-1] for k, v in query.items()}
            self._json({k: v for k, v in headers.items()}, headers=headers)
        elif head == "cache":
            if self.headers.get("If-Modified-Since") or self.headers.get("If-None-Match"):
                self._send(304)
            else:
                self._json(self._echo(body), headers={"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
                                                      "ETag": '"rustle-httptester"'})
        elif head == "gzip":
            doc = dict(self._echo(body), gzipped=True)
            self._send(200, gzip.compress(json.dumps(doc).encode()), headers={"Content-Encoding": "gzip"})
        elif head in ("basic-auth", "hidden-basic-auth") and len(segs) == 3:
            if self._auth() == (segs[1], segs[2]):
                self._json({"authenticated": True, "user": segs[1]})
            elif head == "hidden-basic-auth":
                self._send(404, b"", "text/html")
            else:
                self._send(401, b"", "text/html", {"WWW-Authenticate": 'Basic realm="Fake Realm"'})
        elif head == "bearer":
            value = self.headers.get("Authorization", "")
            if value.startswith("Bearer "):
                self._json({"authenticated": True, "token": value[7:]})
            else:
                self._send(401, b"", "text/html", {"WWW-Authenticate": "Bearer"})
        elif head == "base64" and len(segs) == 2:
            self._send(200, base64.urlsafe_b64decode(segs[1] + "=" * (-len(segs[1]) % 4)), "text/html; charset=utf-8")
        else:
            self._send(404, b"<h1>Not Found</h1>\n", "text/html")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route


def _multipart(body: bytes, ctype: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import email.parser
    import email.policy

    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {ctype}\r\n\r\n".encode() + body)
    form: dict[str, Any] = {}
    files: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        # as httpbin (werkzeug's form parser): each part's bytes as sent, a Content-Transfer-Encoding
        # not undone (uri's target b64decodes a file it sent base64)
        payload = part.get_payload(decode=False)
        text = payload if isinstance(payload, str) else ""
        if part.get_filename():
            files[str(name)] = text
        else:
            form[str(name)] = text
    return form, files


class HttpTester:
    """The three servers, started by ``start`` and stopped by ``stop`` (or as a context manager)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.servers: dict[str, ThreadingHTTPServer] = {}
        self.threads: list[threading.Thread] = []

    def start(self) -> HttpTester:
        self.directory.mkdir(parents=True, exist_ok=True)
        ca_key = _key()
        ca = _cert("rustle httptester CA", ca_key, "rustle httptester CA", ca_key, [], ca=True)
        (self.directory / "ca.pem").write_bytes(_pem(ca, ca_key)[0])
        made = {
            "main": (lambda k: _cert("localhost", k, "rustle httptester CA", ca_key, ["localhost", "127.0.0.1"])),
            "badssl": (lambda k: _cert("wrong.host.invalid", k, "rustle httptester CA", ca_key, ["wrong.host.invalid"])),
            "self_signed": (lambda k: _cert("localhost", k, "localhost", k, ["localhost", "127.0.0.1"])),
        }
        for name, make in made.items():
            key = _key()
            cert_pem, key_pem = _pem(make(key), key)
            (self.directory / f"{name}.pem").write_bytes(cert_pem + key_pem)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.directory / f"{name}.pem")
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads = True
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.servers[name] = server
            thread = threading.Thread(target=server.serve_forever, name=f"httptester-{name}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self.servers.values():
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(timeout=30)

    def __enter__(self) -> HttpTester:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def host(self, name: str) -> str:
        return f"localhost:{self.servers[name].server_address[1]}"

    @property
    def extra_vars(self) -> dict[str, str]:
        """The names the targets use, as ansible-test's prepare_http_tests sets them."""
        return {"httpbin_host": self.host("main"), "sni_host": self.host("main"),
                "badssl_host": self.host("badssl"), "badssl_host_substring": "wrong.host.invalid",
                "self_signed_host": self.host("self_signed")}

    @property
    def env(self) -> dict[str, str]:
        return {"SSL_CERT_FILE": str(self.directory / "ca.pem")}
