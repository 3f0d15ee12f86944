"""Tests of packages (real dpkg database), services (no systemd here) and net (real sockets)."""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import importlib
import os
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

from .test_modules_support import FakeCtx, absent_package, runtime_module

net = runtime_module("net")
packages = runtime_module("packages")
services = runtime_module("services")

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg")


# --------------------------------------------------------------------------------- packages

@needs_dpkg
def test_apt_present_installed_package_is_ok():
    res = packages.MODULES["apt"](FakeCtx(check_mode=True), {"name": "bash"})
    assert res == {"changed": False}


@needs_dpkg
def test_apt_check_mode_absent_package_would_change_without_installing():
    name = absent_package()
    ctx = FakeCtx(check_mode=True, diff_mode=True)
    res = packages.MODULES["apt"](ctx, {"name": ["bash", name], "state": "present"})
    assert res["changed"] is True and not res.get("failed")
    assert res["diff"] == {"prepared": f"install: {name}"}
    status = subprocess.run(["dpkg-query", "-W", name], capture_output=True).returncode
    assert status != 0  # still not installed


@needs_dpkg
def test_apt_check_mode_remove_and_latest():
    apt = packages.MODULES["apt"]
    assert apt(FakeCtx(check_mode=True), {"name": "bash", "state": "absent"})["changed"] is True
    name = absent_package()
    assert apt(FakeCtx(check_mode=True), {"name": name, "state": "absent"})["changed"] is False
    assert apt(FakeCtx(check_mode=True), {"name": name, "state": "latest"})["changed"] is True


@needs_dpkg
def test_apt_unknown_package_fails_like_ansible():
    res = packages.MODULES["apt"](FakeCtx(check_mode=True), {"name": "no-such-pkg-rustle"})
    assert res["failed"] and res["msg"] == "No package matching 'no-such-pkg-rustle' is available"


@needs_dpkg
def test_package_dispatches_to_apt_here():
    res = packages.MODULES["package"](FakeCtx(check_mode=True), {"name": "bash"})
    assert res == {"changed": False}


def test_missing_package_tools_fail_honestly():
    for module in ("dnf", "yum", "apk"):
        tool = {"dnf": "dnf", "yum": "yum", "apk": "apk"}[module]
        if shutil.which(tool):
            continue
        res = packages.MODULES[module](FakeCtx(check_mode=True), {"name": "bash"})
        assert res["failed"] and tool in res["msg"] and "hint" in res["msg"]


# --------------------------------------------------------------------------------- services

no_systemd = pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs here")


@no_systemd
def test_systemd_state_fails_clearly_without_systemd():
    res = services.MODULES["systemd"](FakeCtx(check_mode=True), {"name": "ssh", "state": "started"})
    assert res["failed"] and "systemd is not running" in res["msg"] and "hint" in res["msg"]


@no_systemd
@pytest.mark.skipif(shutil.which("systemctl") is None, reason="needs systemctl")
def test_systemd_check_mode_reports_enablement_offline():
    rc = subprocess.run(["systemctl", "is-enabled", "ssh"], capture_output=True).returncode
    if rc not in (0, 1):
        pytest.skip("ssh.service unit file not present")
    enabled = rc == 0
    systemd = services.MODULES["systemd"]
    assert systemd(FakeCtx(check_mode=True), {"name": "ssh", "enabled": enabled})["changed"] is False
    assert systemd(FakeCtx(check_mode=True), {"name": "ssh", "enabled": not enabled})["changed"]
    missing = systemd(FakeCtx(check_mode=True), {"name": "no-such-unit", "enabled": True})
    assert missing["failed"] and "Could not find the requested service" in missing["msg"]


INIT_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          rustle-test-svc
# Required-Start:
# Required-Stop:
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: rustle test service
### END INIT INFO
PIDFILE=/tmp/rustle-test-svc.pid
case "$1" in
  start) [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null && exit 0
         setsid sleep 300 >/dev/null 2>&1 < /dev/null & echo $! > $PIDFILE ;;
  stop) [ -f $PIDFILE ] && kill "$(cat $PIDFILE)" 2>/dev/null; rm -f $PIDFILE ;;
  restart) "$0" stop; "$0" start ;;
  reload) [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" ;;
  status) [ -f $PIDFILE ] && kill -0 "$(cat $PIDFILE)" 2>/dev/null && exit 0; exit 3 ;;
  *) exit 2 ;;
esac
"""


@pytest.fixture
def init_service():
    if os.geteuid() != 0 or not os.path.isdir("/etc/init.d") or shutil.which("update-rc.d") is None:
        pytest.skip("needs root, /etc/init.d and update-rc.d")
    name = "rustle-test-svc"
    script = Path("/etc/init.d") / name
    script.write_text(INIT_SCRIPT)
    script.chmod(0o755)
    try:
        yield name
    finally:
        subprocess.run([str(script), "stop"], capture_output=True)
        subprocess.run(["update-rc.d", "-f", name, "remove"], capture_output=True)
        script.unlink()


@no_systemd
def test_service_drives_init_scripts(init_service):
    svc = services.MODULES["service"]
    name = init_service
    assert svc(FakeCtx(check_mode=True), {"name": name, "state": "started"})["changed"] is True
    assert subprocess.run(["/etc/init.d/" + name, "status"]).returncode == 3  # check mode: untouched
    assert svc(FakeCtx(), {"name": name, "state": "started"})["changed"] is True
    assert subprocess.run(["/etc/init.d/" + name, "status"]).returncode == 0
    assert svc(FakeCtx(), {"name": name, "state": "started"})["changed"] is False
    assert svc(FakeCtx(), {"name": name, "state": "restarted"})["changed"] is True
    assert svc(FakeCtx(), {"name": name, "enabled": True})["changed"] is True
    assert svc(FakeCtx(), {"name": name, "enabled": True})["changed"] is False
    assert svc(FakeCtx(), {"name": name, "state": "stopped", "enabled": False})["changed"] is True
    assert svc(FakeCtx(), {"name": name, "state": "stopped", "enabled": False})["changed"] is False


def test_service_unknown_name_fails():
    res = services.MODULES["service"](FakeCtx(check_mode=True), {"name": "no-such-svc", "state": "started"})
    assert res["failed"] and "no-such-svc" in res["msg"]


# ------------------------------------------------------------------------------------- net

@pytest.fixture
def listener():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    stop = threading.Event()

    def serve():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            try:
                conn.sendall(b"SSH-2.0-rustle banner\r\n")
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join()
    srv.close()


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_wait_for_open_port_and_banner(listener):
    wf = net.MODULES["wait_for"]
    res = wf(FakeCtx(), {"port": listener, "timeout": 5})
    assert not res.get("failed") and res["port"] == listener and res["changed"] is False
    res = wf(FakeCtx(), {"port": listener, "search_regex": r"SSH-(\d)\.0", "timeout": 5})
    assert res["match_groups"] == ["2"]


def test_wait_for_closed_port_times_out_and_stopped_succeeds():
    wf = net.MODULES["wait_for"]
    port = _free_port()
    res = wf(FakeCtx(), {"port": port, "timeout": 1, "sleep": 0.2})
    assert res["failed"] and res["msg"] == f"Timeout when waiting for 127.0.0.1:{port}"
    assert not wf(FakeCtx(), {"port": port, "state": "stopped", "timeout": 2}).get("failed")


def test_wait_for_path_regex_and_absent(tmp_path):
    wf = net.MODULES["wait_for"]
    f = tmp_path / "ready"
    threading.Timer(0.3, lambda: f.write_text("status: ready 42\n")).start()
    res = wf(FakeCtx(), {"path": str(f), "search_regex": r"ready (?P<n>\d+)", "timeout": 5,
                         "sleep": 0.1})
    assert res["match_groupdict"] == {"n": "42"}
    gone = wf(FakeCtx(), {"path": str(tmp_path / "nope"), "state": "absent", "timeout": 1})
    assert not gone.get("failed")
    res = wf(FakeCtx(), {"path": str(f), "state": "absent", "timeout": 0.5, "sleep": 0.1})
    assert res["failed"] and res["msg"] == f"Timeout when waiting for {f} to be absent."


@contextlib.contextmanager
def _serving(handler):
    """An HTTP server on 127.0.0.1 with ``handler`` in a thread, for the duration; yields its URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "file.txt").write_text("payload\n")

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(root), **kw)

        def log_message(self, *a):
            pass

    with _serving(Handler) as base:
        yield base, root


def test_get_url_hides_its_password_and_takes_the_tasks_proxy(http_dir, tmp_path, monkeypatch):
    """As ansible-core's module: the password (no_log) hidden in what it returns, a failed request
    naming dest, and the proxies of the task's environment (its process environment there)."""
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):  # the machine's own, if any
        monkeypatch.delenv(name, raising=False)
    base, _root = http_dir
    get = net.MODULES["get_url"]
    call_module = importlib.import_module("rustle_runtime.context").call_module  # as the executor runs it
    res = call_module("get_url", FakeCtx(), {"url": base + "/s3cret/nope", "dest": str(tmp_path / "x"),
                                             "username": "u", "password": "s3cret"})
    assert (res["failed"], res["status_code"], res["url"]) == (True, 404, base + "/********/nope")
    assert res["dest"] == str(tmp_path / "x") and "s3cret" not in str(res)
    # credentials in the URL itself: ansible-core's mask_url, then the no_log value
    res = call_module("get_url", FakeCtx(), {"url": base.replace("://", "://al:s3cret@") + "/x?t=s3cret",
                                             "dest": str(tmp_path / "x"), "url_password": "s3cret"})
    assert res["url"] == base.replace("://", "://****:****@") + "/x?t=********", res
    with socket.socket() as held:  # bound, never listening: a proxy that refuses, for as long as it is held
        held.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{held.getsockname()[1]}"
        res = get(FakeCtx(environment={"http_proxy": proxy}), {"url": base + "/file.txt", "dest": str(tmp_path / "y")})
        assert res["failed"] and "Connection refused" in res["msg"] and "status_code" not in res
        res = get(FakeCtx(environment={"http_proxy": proxy, "no_proxy": "127.0.0.1"}),
                  {"url": base + "/file.txt", "dest": str(tmp_path / "y")})
        assert res["changed"] and (tmp_path / "y").read_text() == "payload\n"


def test_get_url_downloads_once_and_checks_checksums(http_dir, tmp_path):
    base, root = http_dir
    get = net.MODULES["get_url"]
    dest = tmp_path / "out.txt"
    good = "sha256:" + hashlib.sha256(b"payload\n").hexdigest()
    res = get(FakeCtx(check_mode=True), {"url": base + "/file.txt", "dest": str(dest)})
    assert res["changed"] and not dest.exists()
    res = get(FakeCtx(), {"url": base + "/file.txt", "dest": str(dest), "mode": "0600",
                          "checksum": good})
    assert res["changed"] and dest.read_text() == "payload\n"
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    # no checksum: the request is conditional on dest's mtime, as ansible-core 2.19's get_url
    again = get(FakeCtx(), {"url": base + "/file.txt", "dest": str(dest)})
    assert (again["changed"], again["status_code"], again["msg"]) == (False, 304, "HTTP Error 304: Not Modified")
    assert get(FakeCtx(), {"url": base + "/file.txt", "dest": str(dest), "checksum": good})[
        "changed"] is False
    # a checksum file, BSD (--tag) and GNU style, the file's own line chosen by its name
    digest = hashlib.sha256(b"payload\n").hexdigest()
    (root / "bsd.txt").write_text(f"SHA256 (other.txt) = {'0' * 64}\nSHA256 (file.txt) = {digest}.\n")
    (root / "gnu.txt").write_text(f"{'0' * 64}  other.txt\r\n{digest} *./file.txt\r\n")
    for listing in ("bsd.txt", "gnu.txt"):
        res = get(FakeCtx(), {"url": base + "/file.txt", "dest": str(dest), "checksum": f"sha256:{base}/{listing}"})
        assert res["msg"] == "file already exists", (listing, res)
    # Ansible drops every non-word character of the checksum (a trailing dot, a zero-width space)
    assert get(FakeCtx(), {"url": base + "/file.txt", "dest": str(dest), "checksum": good + ".\u200b"})[
        "msg"] == "file already exists"
    (root / "file.txt").write_text("changed\n")
    assert get(FakeCtx(), {"url": base + "/file.txt", "dest": str(dest), "force": True})["changed"]
    assert dest.read_text() == "changed\n"
    bad = get(FakeCtx(), {"url": base + "/file.txt", "dest": str(tmp_path / "b"),
                          "checksum": good})
    assert bad["failed"] and "did not match" in bad["msg"] and not (tmp_path / "b").exists()
    into_dir = get(FakeCtx(), {"url": base + "/file.txt", "dest": str(tmp_path)})
    assert into_dir["dest"] == str(tmp_path / "file.txt")
    # into a directory, as ansible-core 2.19: always fetched, changed when the content differs
    assert get(FakeCtx(), {"url": base + "/file.txt", "dest": str(tmp_path)})["changed"] is False
    (root / "file.txt").write_text("changed again\n")
    assert get(FakeCtx(), {"url": base + "/file.txt", "dest": str(tmp_path)})["changed"] is True
    assert (tmp_path / "file.txt").read_text() == "changed again\n"
    missing = get(FakeCtx(), {"url": base + "/nope", "dest": str(tmp_path / "n")})
    assert missing["failed"] and missing["status_code"] == 404
    nofile = get(FakeCtx(), {"url": f"file://{tmp_path}/nofile", "dest": str(tmp_path / "n")})
    assert nofile["msg"] == f"Request failed: <urlopen error [Errno 2] No such file or directory: '{tmp_path}/nofile'>"


@contextlib.contextmanager
def answering_once(response: bytes):
    """A socket on 127.0.0.1 that answers one request with ``response`` (raw HTTP): its port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve_once():
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(response)

    thread = threading.Thread(target=serve_once, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        thread.join(timeout=60)
        listener.close()


def test_get_url_fails_on_a_body_shorter_than_its_content_length(tmp_path):
    """ansible-core 2.19's get_url checks what it read against Content-Length (issue 85164)."""
    with answering_once(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nshort") as port:
        res = net.MODULES["get_url"](FakeCtx(), {"url": f"http://127.0.0.1:{port}/x", "dest": str(tmp_path / "x")})
    assert res["failed"] and res["msg"] == ("Incomplete read, (rsp.length=95, cl=100, st.st_size=5) failed to read "
                                            "remaining 95 bytes")
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("decompress", [True, False])
def test_get_url_decompresses_a_gzip_response_unless_told_not_to(tmp_path, decompress):
    """``decompress`` (true by default), as ansible-core's fetch_url: the file holds the body
    decoded from its Content-Encoding: gzip, or the gzip bytes as sent."""
    import gzip

    body = gzip.compress(b'{"gzipped": true}\n')
    with answering_once(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
                        b"Connection: close\r\n\r\n" % len(body) + body) as port:
        res = net.MODULES["get_url"](FakeCtx(), {"url": f"http://127.0.0.1:{port}/gzip",
                                                 "dest": str(tmp_path / "g"), "decompress": decompress})
    assert res["changed"], res
    assert (tmp_path / "g").read_bytes() == (b'{"gzipped": true}\n' if decompress else body)


@pytest.fixture
def recording_server():
    """An HTTP server that records each request's path and headers: /secret asks for Basic
    credentials (user:pass), /redirect sends to /file, anything else answers 'payload'."""
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append((self.path, dict(self.headers)))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/file")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if self.path == "/secret" and self.headers.get("Authorization") != "Basic dXNlcjpwYXNz":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="test"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"payload")

        def log_message(self, *a):
            pass

    with _serving(Handler) as base:
        yield base, seen


def test_get_url_credentials_as_ansible_sends_them(recording_server, tmp_path, monkeypatch):
    """ansible-core's _configure_auth: a user answers the server's challenge, or goes with the
    first request under force_basic_auth; credentials in the URL count as a user; without one,
    the host's netrc entry is sent unless use_netrc is false."""
    base, seen = recording_server
    get = net.MODULES["get_url"]

    def fetch(name, **extra):
        seen.clear()
        res = get(FakeCtx(), {"url": base + "/secret", "dest": str(tmp_path / name), **extra})
        return res, [h.get("Authorization") for _, h in seen]

    res, auths = fetch("a", url_username="user", url_password="pass")
    assert res["changed"] and auths == [None, "Basic dXNlcjpwYXNz"], (res, auths)
    res, auths = fetch("b", url_username="user", url_password="pass", force_basic_auth=True)
    assert res["changed"] and auths == ["Basic dXNlcjpwYXNz"]
    res, auths = fetch("c", url=base.replace("://", "://user:pass@") + "/secret")
    assert res["changed"] and auths == [None, "Basic dXNlcjpwYXNz"], (res, auths)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password pass\n")
    netrc.chmod(0o600)
    seen.clear()  # the task's environment names it, and it wins over a given Authorization
    res = get(FakeCtx(environment={"NETRC": str(netrc)}), {"url": base + "/secret", "dest": str(tmp_path / "n"),
                                                           "headers": {"Authorization": "Bearer x"}})
    assert res["changed"] and [h.get("Authorization") for _, h in seen] == ["Basic dXNlcjpwYXNz"]
    monkeypatch.setenv("NETRC", str(netrc))
    res, auths = fetch("d")
    assert res["changed"] and auths == ["Basic dXNlcjpwYXNz"]
    res, auths = fetch("e", use_netrc=False)
    assert res["failed"] and res["status_code"] == 401 and auths == [None]
    res, _ = fetch("f", use_gssapi=True)
    assert res["failed"] and res["msg"].startswith("use_gssapi is not supported")


def test_get_url_unredirected_headers_ciphers_and_tmp_dest(recording_server, tmp_path):
    base, seen = recording_server
    get = net.MODULES["get_url"]
    res = get(FakeCtx(), {"url": base + "/redirect", "dest": str(tmp_path / "r"),
                          "headers": {"X-Kept": "1", "X-Secret": "2"},
                          "unredirected_headers": ["x-secret"]})
    assert res["changed"] and (tmp_path / "r").read_bytes() == b"payload"
    (first, first_headers), (second, second_headers) = seen
    assert (first, first_headers["X-Secret"], first_headers["X-Kept"]) == ("/redirect", "2", "1")
    assert second == "/file" and "X-Secret" not in second_headers and second_headers["X-Kept"] == "1"
    assert first_headers["User-Agent"] == "ansible-httpget"
    res = get(FakeCtx(), {"url": base + "/file", "dest": str(tmp_path / "c"), "ciphers": "ALL"})
    assert res["failed"] and res["msg"] == "Ciphers must be a list. Got str."
    res = get(FakeCtx(), {"url": base + "/file", "dest": str(tmp_path / "c"), "ciphers": ["NO-SUCH-CIPHER"]})
    assert res["failed"] and res["msg"].startswith("Request failed: ")
    res = get(FakeCtx(), {"url": base + "/file", "dest": str(tmp_path / "t"), "tmp_dest": str(tmp_path / "nope")})
    assert res["failed"] and res["msg"] == f"{tmp_path / 'nope'} directory does not exist."
    (tmp_path / "afile").write_text("")
    res = get(FakeCtx(), {"url": base + "/file", "dest": str(tmp_path / "t"), "tmp_dest": str(tmp_path / "afile")})
    assert res["failed"] and res["msg"] == f"{tmp_path / 'afile'} is a file but should be a directory."
    res = get(FakeCtx(), {"url": base + "/file", "dest": str(tmp_path / "t"), "tmp_dest": str(tmp_path)})
    assert res["changed"] and (tmp_path / "t").read_bytes() == b"payload"
    seen.clear()
    again = get(FakeCtx(), {"url": base + "/file", "dest": str(tmp_path / "t"), "force": True})
    assert again["changed"] is False and seen[0][1].get("Cache-Control") == "no-cache"
