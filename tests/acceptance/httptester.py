"""A local stand-in for ansible-test's httptester: httpbin-like endpoints under its host names.

ansible-test runs the ``needs/httptester`` targets (``uri``, ``get_url``, ``lookup_url``,
``module_utils_urls``) against a container that serves httpbin as ``ansible.http.tests``
(``httpbin_host``), ``sni1.ansible.http.tests`` (``sni_host``), ``fail.ansible.http.tests``
(``badssl_host``: a certificate for another name) and ``self-signed.ansible.http.tests``
(``self_signed_host``, also on port 444), with /etc/hosts entries and a CA installed on the test
host. Here the servers are three TLS ones, ``main`` (a certificate for the httpbin and SNI names,
signed by a CA made for this run), ``badssl`` (the same CA, another name: the hostname check
fails), ``self_signed`` (its own issuer: the chain check fails), and a plain http one for the
main names' port 80. Without changing the machine, they are reached in one of two ways:

- **In namespaces of their own** (``namespaced``, as root: ``HttpTester.wrapper`` and
  ``run_in_namespace``): the run's command and the servers share network, mount and pid
  namespaces made for the run. Each server listens on the real ports (443; 444 too for the
  self-signed one; 80) of an address of its own (``ADDRESSES``, on the namespace's loopback),
  which a private /etc/hosts gives the names; the CA is added to the machine's bundle in a
  private copy mounted over it, and this account's home is the run's ``HOME`` in a private
  /etc/passwd. No proxy: ``use_proxy: false``, ``openssl s_client`` and a ``~/.netrc`` the url
  lookup reads from ``$HOME`` work as under ansible-test. The mounts are the mount namespace's
  alone, and every process the run leaves ends with its pid namespace.
- **Through a proxy** (otherwise; the servers on 127.0.0.1, each on a port the kernel picks):
  ``CONNECT NAME:PORT`` tunnels to the server of that name (any port: ``self_signed_host:444``
  too; port 80 to the plain http server, as urllib tunnels a request it retries for digest
  authentication), a plain ``GET http://ansible.http.tests/...`` is answered by the proxy itself
  as the main server would, one for the other two names is sent to ``https://`` (301), any other
  name gets 502. Both tools find it the way Python's urllib finds any proxy, through
  ``https_proxy`` and ``http_proxy`` (``env``), with ``no_proxy`` for ``localhost`` and 127.0.0.1
  (a target's own file server there is reached directly), and trust the CA through
  ``SSL_CERT_FILE`` (Python's default context reads it; ansible-core's ``urls.make_context``
  starts from it). The URL's host name is the real one, so a ``.netrc`` entry for
  ``ansible.http.tests`` is found as under ansible-test. What cannot work: a request with
  ``use_proxy: false`` and any other client than urllib (no resolver knows the names).

Either way the bundle is the machine's with the CA added, as ansible-test adds its CA to the
system's (``cafile_path``, which prepare_http_tests registers on hosts where it edits Python's
bundle, names it: uri's "ca_path can be a full bundle"), and the names are given as ansible-test
gives them, as extra variables (``extra_vars``).

The endpoints are httpbin's that the targets call (``/get``, ``/post``, ``/anything``,
``/status/N``, ``/redirect-to``, ``/redirect/N``, ``/basic-auth``, ``/bearer``, ``/gzip``,
``/user-agent``, ...),
answering as httpbin does where the targets look (upper-case reason phrases, ``/redirect/N``
through ``/relative-redirect/N``), and ``/ca2cert.pem`` (the self-signed
server's certificate, for ``ca_path``); ``/`` names the host asked for (SNI) and the server's
certificate (lookup_url's ``badssl_host_substring``). Standard library and ``cryptography`` (a dependency
already).
"""

from __future__ import annotations

import base64
import datetime
import gzip
import ipaddress
import json
import os
import pwd
import select
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HTTPBIN = "ansible.http.tests"
SNI = "sni1.ansible.http.tests"
BADSSL = "fail.ansible.http.tests"
SELF_SIGNED = "self-signed.ansible.http.tests"
# the server each name reaches through the proxy
ROUTES = {HTTPBIN: "main", SNI: "main", BADSSL: "badssl", SELF_SIGNED: "self_signed"}


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


def _dumps(doc: Any) -> bytes:
    """JSON as httpbin's ``jsonify`` writes it under Flask 2.3 and later, outside debug mode: compact,
    keys sorted, on one line (lookup_url's ``lookup('url', URL) | from_json`` reads it line by line)."""
    return (json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n").encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rustle-httptester"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes = b"", ctype: str = "application/json",
              headers: dict[str, str] | list[tuple[str, str]] | None = None) -> None:
        try:  # httpbin's (werkzeug's) reason phrases are upper case: "HTTP Error 301: MOVED PERMANENTLY"
            reason = HTTPStatus(status).phrase.upper()
        except ValueError:
            reason = "UNKNOWN"
        self.send_response(status, reason)
        if status not in (204, 304):
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in (headers.items() if isinstance(headers, dict) else headers or ()):
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def _json(self, doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self._send(status, _dumps(doc), headers=headers)

    def _echo(self, body: bytes, everything: bool = False) -> dict[str, Any]:
        """httpbin's description of the request (/get, /post, /anything); a name without a value is
        an argument (werkzeug keeps blank values: lookup_url's `?one`)."""
        parts = urlsplit(self.path)
        args = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        doc: dict[str, Any] = {"args": args, "headers": {k.title(): v for k, v in self.headers.items()},
                               "origin": self.client_address[0],
                               "url": urlunsplit((scheme, self.headers.get("Host", ""), parts.path, parts.query, ""))}
        if everything or self.command not in ("GET", "HEAD"):  # /anything has them for a GET too
            text = body.decode("utf-8", "replace")
            ctype = self.headers.get("Content-Type", "")
            form: dict[str, Any] = {}
            files: dict[str, Any] = {}
            if ctype.startswith("application/x-www-form-urlencoded"):
                form = {k: v[0] if len(v) == 1 else v for k, v in parse_qs(text, keep_blank_values=True).items()}
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
        if self.command == "OPTIONS" and head not in ("anything",):  # flask's automatic OPTIONS answer
            allowed = {"post": "OPTIONS, POST", "put": "OPTIONS, PUT", "patch": "OPTIONS, PATCH",
                       "delete": "DELETE, OPTIONS"}.get(head, "GET, HEAD, OPTIONS")
            self._send(200, b"", "text/html; charset=utf-8", {"Allow": allowed})
        elif path == "/ca2cert.pem":
            self._send(200, self.server.ca2cert, "application/x-pem-file")  # type: ignore[attr-defined]
        elif path == "/":  # names the host asked for (uri's SNI task) and the certificate's (lookup_url's)
            host = self.headers.get("Host", "")
            named = getattr(self.server, "certificate_name", HTTPBIN)
            self._send(200, f"<html><body>httptester at {host}: {named}</body></html>\n".encode(), "text/html")
        elif head == "user-agent":
            self._json({"user-agent": self.headers.get("User-Agent", "")})
        elif head in ("get", "post", "put", "patch", "delete") and (self.command.lower() == head or (head, self.command) == ("get", "HEAD")):
            self._json(self._echo(body))
        elif head in ("get", "post", "put", "patch", "delete"):
            self._send(405, b"Method Not Allowed\n", "text/html")
        elif head == "anything":
            self._json(self._echo(body, everything=True))
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
        elif head in ("redirect", "relative-redirect") and len(segs) == 2 and segs[1].isdigit():
            n = int(segs[1])
            location = f"/relative-redirect/{n - 1}" if n > 1 else "/get"
            self._send(302, b"", "text/html; charset=utf-8", {"Location": location})
        elif head == "absolute-redirect" and len(segs) == 2 and segs[1].isdigit():
            n = int(segs[1])
            where = f"https://{self.headers.get('Host', '')}"
            location = f"{where}/absolute-redirect/{n - 1}" if n > 1 else f"{where}/get"
            self._send(302, b"", "text/html; charset=utf-8", {"Location": location})
        elif head == "response-headers":  # each value a header of its own (two Set-Cookie)
            body = _dumps({k: v[0] if len(v) == 1 else v for k, v in query.items()})
            self._send(200, body, "application/json", [(k, value) for k, v in query.items() for value in v])
        elif head == "cache":
            if self.headers.get("If-Modified-Since") or self.headers.get("If-None-Match"):
                self._send(304)
            else:
                self._json(self._echo(body), headers={"Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
                                                      "ETag": '"rustle-httptester"'})
        elif head == "gzip":
            doc = dict(self._echo(body), gzipped=True)
            self._send(200, gzip.compress(_dumps(doc)), headers={"Content-Encoding": "gzip"})
        elif head in ("basic-auth", "hidden-basic-auth") and len(segs) == 3:
            if self._auth() == (segs[1], segs[2]):
                self._json({"authenticated": True, "user": segs[1]})
            elif head == "hidden-basic-auth":
                self._send(404, b"", "text/html")
            else:
                self._send(401, b"", "text/html", {"WWW-Authenticate": 'Basic realm="Fake Realm"'})
        elif head == "digest-auth" and len(segs) in (4, 5):
            self._digest(segs[1], segs[2], segs[3], segs[4] if len(segs) == 5 else "MD5")
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

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # a method no route takes (UNKNOWN): flask's 405, not http.server's 501
            return self._not_allowed
        raise AttributeError(name)

    def _not_allowed(self) -> None:
        self._body()
        self._send(405, b"Method Not Allowed\n", "text/html")

    def _digest(self, qop: str, user: str, password: str, algorithm: str) -> None:
        """httpbin's /digest-auth/QOP/USER/PASSWD[/ALGORITHM] (RFC 7616, as urllib answers it)."""
        import hashlib
        import re

        realm, nonce = "me@kennethreitz.com", "rustle-httptester-nonce"
        value = self.headers.get("Authorization", "")
        fields = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', value[7:])}
        name = {"MD5": "md5", "SHA-256": "sha256", "SHA-512": "sha512"}.get(algorithm.upper(), "md5")

        def h(text: str) -> str:
            return hashlib.new(name, text.encode()).hexdigest()

        if value.startswith("Digest ") and fields.get("username") == user and fields.get("nonce") == nonce:
            ha1, ha2 = h(f"{user}:{realm}:{password}"), h(f"{self.command}:{fields.get('uri', '')}")
            if fields.get("qop"):
                expected = h(f"{ha1}:{nonce}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:{fields['qop']}:{ha2}")
            else:
                expected = h(f"{ha1}:{nonce}:{ha2}")
            if fields.get("response") == expected:
                self._json({"authenticated": True, "user": user})
                return
        challenge = (f'Digest realm="{realm}", nonce="{nonce}", qop="{qop}", opaque="rustle", '
                     f'algorithm={algorithm.upper()}, stale=FALSE')
        self._send(401, b"", "text/html", {"WWW-Authenticate": challenge})

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route


class _Proxy(_Handler):
    """The proxy: ``CONNECT NAME:PORT`` tunnels to NAME's server; a request for an absolute
    ``http://`` URL of the httpbin names is answered here as the main server answers it."""

    def _route(self) -> None:
        parts = urlsplit(self.path)
        host = (parts.hostname or "") if not self.path.startswith("/") else ""
        if ROUTES.get(host.lower()) in ("badssl", "self_signed"):  # their plain http sends to https
            self._body()
            self._send(301, b"", "text/html", {"Location": urlunsplit(("https", parts.netloc, parts.path or "/",
                                                                        parts.query, ""))})
            return
        if ROUTES.get(host.lower()) != "main":
            self._body()
            self._send(502, f"rustle httptester: no server for {host or self.path!r}\n".encode(), "text/plain")
            return
        _Handler._route(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route

    def do_CONNECT(self) -> None:  # noqa: N802 - http.server's naming
        host, _, port_text = self.path.rpartition(":")
        server = ROUTES.get(host.lower(), "")
        if server and port_text == "80":  # urllib tunnels plain http too (a digest retry does)
            server = "plain"
        port = self.server.ports.get(server)  # type: ignore[attr-defined]
        if port is None:
            self._send(502, f"rustle httptester: no server for {self.path!r}\n".encode(), "text/plain")
            return
        upstream = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        with upstream:
            peers = {self.connection: upstream, upstream: self.connection}
            while True:
                ready = select.select(list(peers), [], [], 300)[0]
                if not ready:
                    return
                for sock in ready:
                    try:
                        data = sock.recv(65536)
                        if data:
                            peers[sock].sendall(data)
                    except OSError:  # a side reset the connection: the tunnel is over
                        data = b""
                    if not data:
                        return


class _ToHttps(_Handler):
    """The port 80 of the names whose servers are TLS only: 301 to the same URL over https."""

    def _route(self) -> None:
        self._body()
        parts = urlsplit(self.path)
        self._send(301, b"", "text/html", {"Location": urlunsplit(("https", self.headers.get("Host", ""),
                                                                    parts.path or "/", parts.query, ""))})

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


# In a network namespace of its own (``namespaced``), each server listens on the real ports of an
# address of its own, which the namespace's /etc/hosts gives its names (no proxy)
ADDRESSES = {"main": "127.0.80.1", "badssl": "127.0.80.2", "self_signed": "127.0.80.3"}
# the name each server's certificate is for (the root page shows it)
CERTIFICATE_NAMES = {"main": HTTPBIN, "badssl": "wrong.host.invalid", "self_signed": SELF_SIGNED}


class HttpTester:
    """The three servers (and a plain http one) and the proxy, started by ``start`` and stopped by ``stop`` (or as a
    context manager). ``namespaced``: the servers on the real ports of ``ADDRESSES`` instead (80 and 443, and 444
    for the self-signed one) and no proxy, for a network namespace whose /etc/hosts names them (``run_in_namespace``)."""

    def __init__(self, directory: Path, namespaced: bool = False):
        self.directory = directory
        self.namespaced = namespaced
        self.servers: dict[str, ThreadingHTTPServer] = {}
        self.threads: list[threading.Thread] = []

    def _serve(self, name: str, server: ThreadingHTTPServer, certificate_name: str = HTTPBIN) -> None:
        server.daemon_threads = True
        server.certificate_name = certificate_name  # type: ignore[attr-defined]
        self.servers[name] = server
        thread = threading.Thread(target=server.serve_forever, name=f"httptester-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def _certificates(self) -> dict[str, ssl.SSLContext]:
        """A CA of this run and each TLS server's certificate, written to ``directory``; the servers' contexts."""
        self.directory.mkdir(parents=True, exist_ok=True)
        ca_key = _key()
        ca = _cert("rustle httptester CA", ca_key, "rustle httptester CA", ca_key, [], ca=True)
        (self.directory / "ca.pem").write_bytes(_pem(ca, ca_key)[0])
        # the machine's CA bundle with this CA added, as ansible-test's set-up adds its CA to the
        # system's: what SSL_CERT_FILE names, and the "full bundle" a target may give as ca_path
        system = Path(ssl.get_default_verify_paths().openssl_cafile)
        bundle = system.read_bytes() if system.is_file() else b""
        (self.directory / "bundle.pem").write_bytes(bundle + (b"\n" if bundle and not bundle.endswith(b"\n") else b"")
                                                    + _pem(ca, ca_key)[0])
        made = {
            "main": (lambda k: _cert(HTTPBIN, k, "rustle httptester CA", ca_key, [HTTPBIN, SNI, "localhost", "127.0.0.1"])),
            "badssl": (lambda k: _cert("wrong.host.invalid", k, "rustle httptester CA", ca_key, ["wrong.host.invalid"])),
            "self_signed": (lambda k: _cert(SELF_SIGNED, k, SELF_SIGNED, k, [SELF_SIGNED])),
        }
        contexts = {}
        for name, make in made.items():
            key = _key()
            cert_pem, key_pem = _pem(make(key), key)
            (self.directory / f"{name}.pem").write_bytes(cert_pem + key_pem)
            contexts[name] = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            contexts[name].load_cert_chain(self.directory / f"{name}.pem")
        return contexts

    def _tls(self, name: str, address: tuple[str, int], context: ssl.SSLContext) -> None:
        server = ThreadingHTTPServer(address, _Handler)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._serve(name, server, CERTIFICATE_NAMES[name.split(":")[0]])

    def start(self) -> HttpTester:
        contexts = self._certificates()
        if self.namespaced:
            for name, context in contexts.items():
                address = ADDRESSES[name]
                for port in (443, 444) if name == "self_signed" else (443,):
                    self._tls(name if port == 443 else f"{name}:{port}", (address, port), context)
                plain = ThreadingHTTPServer((address, 80), _Handler if name == "main" else _ToHttps)
                self._serve("plain" if name == "main" else f"{name}:80", plain)
        else:
            for name, context in contexts.items():
                self._tls(name, ("127.0.0.1", 0), context)
            self._serve("plain", ThreadingHTTPServer(("127.0.0.1", 0), _Handler))  # the main names' port 80
            proxy = ThreadingHTTPServer(("127.0.0.1", 0), _Proxy)
            proxy.ports = {name: self.port(name) for name in (*contexts, "plain")}  # type: ignore[attr-defined]
            self._serve("proxy", proxy)
        ca2cert = (self.directory / "self_signed.pem").read_bytes().split(b"-----BEGIN PRIVATE")[0]
        for server in self.servers.values():
            server.ca2cert = ca2cert  # type: ignore[attr-defined]
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

    def port(self, name: str) -> int:
        return int(self.servers[name].server_address[1])

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port('proxy')}"

    @property
    def extra_vars(self) -> dict[str, Any]:
        """The names the targets use, as ansible-test's prepare_http_tests sets them."""
        return {"httpbin_host": HTTPBIN, "sni_host": SNI, "badssl_host": BADSSL,
                "badssl_host_substring": CERTIFICATE_NAMES["badssl"], "self_signed_host": SELF_SIGNED,
                # what prepare_http_tests registers where it adds the CA to Python's own bundle
                # (uri's "ca_path can be a full bundle" looks there first)
                "cafile_path": {"stdout_lines": [str(self.directory / "bundle.pem")]}}

    @property
    def env(self) -> dict[str, str]:
        if self.namespaced:  # the names resolve; the CA is in the bundle mounted over the machine's
            return {}
        return {"SSL_CERT_FILE": str(self.directory / "bundle.pem"), "https_proxy": self.proxy,
                "http_proxy": self.proxy, "no_proxy": "localhost,127.0.0.1"}

    def wrapper(self) -> list[str]:
        """The command that runs a command given after it in a namespace of its own with these servers
        (``namespaced``; ``main``), or nothing (the servers are this process's: ``start``)."""
        if not self.namespaced:
            return []
        return ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
                sys.executable, str(Path(__file__).resolve()), str(self.directory), "--"]


def namespaces_work() -> bool:
    """Whether this process may make the namespaces ``HttpTester.wrapper`` asks for (root, and a
    kernel that lets it)."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child", "true"],
                           capture_output=True, timeout=60)
    return probe.returncode == 0


def _bind(source: Path, target: str) -> None:
    subprocess.run(["mount", "--bind", str(source), target], check=True, capture_output=True)


def run_in_namespace(directory: Path, argv: list[str]) -> int:
    """The namespace's first process (``HttpTester.wrapper``): loopback up; a private /etc/hosts
    that gives the names their servers' addresses, a private /etc/passwd in which this account's
    home is the run's ``HOME`` (ansible-core and rustle-deploy expand a task's ``~`` through the
    account, ansible-core's url lookup reads ``$HOME/.netrc``: on ansible-test's test host the two
    are one) and the CA bundle over the machine's, all bind mounts of this mount namespace
    (the machine's files are unchanged); the servers; then ``argv``, whose exit code it returns.
    Every process left when it returns ends with the namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True, capture_output=True)
    http = HttpTester(directory, namespaced=True).start()
    hosts = directory / "hosts"
    hosts.write_text(Path("/etc/hosts").read_text().rstrip("\n") + "\n"
                     + "".join(f"{ADDRESSES[server]} {name}\n" for name, server in ROUTES.items()))
    _bind(hosts, "/etc/hosts")
    account = pwd.getpwuid(os.getuid())
    home = os.environ.get("HOME", account.pw_dir)
    passwd = directory / "passwd"
    passwd.write_text("".join(
        ":".join([*fields[:5], home, *fields[6:]]) + "\n" if fields[0] == account.pw_name else line + "\n"
        for line in Path("/etc/passwd").read_text().splitlines() for fields in [line.split(":")]))
    _bind(passwd, "/etc/passwd")
    cafile = ssl.get_default_verify_paths().openssl_cafile
    if Path(cafile).is_file():
        _bind(directory / "bundle.pem", cafile)
    try:
        return subprocess.run(argv).returncode
    finally:
        http.stop()


if __name__ == "__main__":  # HttpTester.wrapper's: DIRECTORY -- ARGV...
    sys.exit(run_in_namespace(Path(sys.argv[1]), sys.argv[3:]))
