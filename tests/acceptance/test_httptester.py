"""The local HTTP test server (httptester.py) on its own, and uri and get_url against it.

The first tests ask the servers what the uri and get_url targets ask them, over real TLS with
the run's CA, and check httpbin's answers. The last test is differential: one play of uri
(ansible-core's module, through the module bridge) and get_url (built into the runtime) tasks
against the servers, run once by ``ansible-playbook`` and once as a compiled artifact, compared
result by result. Each server and the proxy listen on a port the kernel picks; nothing is fixed.
One test runs a command in the namespaces the harness runs these targets in as root (the servers
on the real ports of the names' own addresses) and checks that the machine is left as it was.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..runtime.oracle import _substitute, _write_project, fields, run_ansible, run_ours
from ..runtime.test_modules_support import needs_ansible
from .httptester import ADDRESSES, BADSSL, HTTPBIN, SELF_SIGNED, SNI, HttpTester, namespaces_work


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpTester]:
    with HttpTester(tmp_path_factory.mktemp("httptester")) as tester:
        yield tester


def _get(http: HttpTester, host: str, path: str, headers: dict[str, str] | None = None,
         data: bytes | None = None, verify: bool = True, scheme: str = "https") -> tuple[int, dict[str, str], bytes]:
    """One request through the tester's proxy, as the tools make it (``https_proxy``)."""
    context = ssl.create_default_context(cafile=str(http.directory / "ca.pem"))
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(f"{scheme}://{host}{path}", data=data, headers=headers or {})

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": http.proxy, "http": http.proxy}),
                                         urllib.request.HTTPSHandler(context=context), _NoRedirect)
    try:
        with opener.open(request, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_get_echoes_the_request_as_httpbin(http: HttpTester) -> None:
    status, _, body = _get(http, HTTPBIN, "/get?a=1&a=2&b=x", {"X-Probe": "yes"})
    doc = json.loads(body)
    assert status == 200
    assert doc["args"] == {"a": ["1", "2"], "b": "x"}
    assert doc["headers"]["X-Probe"] == "yes" and doc["headers"]["Host"] == HTTPBIN
    assert doc["url"] == f"https://{HTTPBIN}/get?a=1&a=2&b=x"
    assert _get(http, HTTPBIN, "/post")[0] == 405  # a GET to /post
    anything = json.loads(_get(http, HTTPBIN, "/anything")[2])
    assert (anything["data"], anything["form"], anything["files"], anything["json"]) == ("", {}, {}, None)


def test_json_is_one_line_and_what_lookup_url_asks_is_there(http: HttpTester) -> None:
    """Flask's jsonify outside debug mode: compact, one line (lookup('url') splits lines and joins
    them with commas, which only a one-line document survives); a name without a value is an
    argument; /user-agent; the badssl server's page names its certificate's host."""
    body = _get(http, HTTPBIN, "/get?one", {"User-Agent": "probe/1"})[2]
    assert body.count(b"\n") == 1 and body.endswith(b"\n") and b'{"args":{"one":""},' in body
    assert json.loads(_get(http, HTTPBIN, "/user-agent", {"User-Agent": "probe/1"})[2]) == {"user-agent": "probe/1"}
    assert "wrong.host.invalid" in _get(http, BADSSL, "/", verify=False)[2].decode()


def test_reasons_are_httpbins_and_the_bundle_holds_the_ca(http: HttpTester) -> None:
    from http.client import HTTPConnection

    connection = HTTPConnection("127.0.0.1", http.port("proxy"), timeout=60)
    try:
        connection.request("GET", f"http://{HTTPBIN}/status/301")
        response = connection.getresponse()
        assert (response.status, response.reason) == (301, "MOVED PERMANENTLY")
    finally:
        connection.close()
    bundle = Path(http.extra_vars["cafile_path"]["stdout_lines"][0])
    assert bundle == Path(http.env["SSL_CERT_FILE"])
    assert bundle.read_bytes().endswith((http.directory / "ca.pem").read_bytes())


def test_auth_endpoints(http: HttpTester) -> None:
    basic = "Basic " + base64.b64encode(b"user:passwd").decode()
    assert _get(http, HTTPBIN, "/basic-auth/user/passwd", {"Authorization": basic})[0] == 200
    status, headers, _ = _get(http, HTTPBIN, "/basic-auth/user/passwd")
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert _get(http, HTTPBIN, "/hidden-basic-auth/user/passwd")[0] == 404
    status, _, body = _get(http, HTTPBIN, "/bearer", {"Authorization": "Bearer tok"})
    assert status == 200 and json.loads(body)["token"] == "tok"
    assert _get(http, HTTPBIN, "/bearer")[0] == 401


def test_digest_auth_as_urllib_answers_it(http: HttpTester) -> None:
    context = ssl.create_default_context(cafile=str(http.directory / "ca.pem"))
    for password, expected in (("passwd", 200), ("wrong", 401)):
        manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        manager.add_password(None, f"https://{HTTPBIN}/", "user", password)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"https": http.proxy}),
                                             urllib.request.HTTPSHandler(context=context),
                                             urllib.request.HTTPDigestAuthHandler(manager))
        try:
            with opener.open(f"https://{HTTPBIN}/digest-auth/auth/user/passwd", timeout=60) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            with exc:
                status, body = exc.code, b""
        assert status == expected
        if status == 200:
            assert json.loads(body) == {"authenticated": True, "user": "user"}


def test_redirects_status_and_cache(http: HttpTester) -> None:
    status, headers, _ = _get(http, HTTPBIN, "/redirect-to?status_code=301&url=/basic-auth/user/passwd")
    assert (status, headers["Location"]) == (301, "/basic-auth/user/passwd")
    assert _get(http, HTTPBIN, "/redirect/3")[1]["Location"] == "/relative-redirect/2"
    assert _get(http, HTTPBIN, "/relative-redirect/1")[1]["Location"] == "/get"
    assert _get(http, HTTPBIN, "/absolute-redirect/2")[1]["Location"] == f"https://{HTTPBIN}/absolute-redirect/1"
    assert _get(http, HTTPBIN, "/status/418")[0] == 418
    options = urllib.request.Request(f"http://{HTTPBIN}/", method="OPTIONS")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": http.proxy}))
    with opener.open(options, timeout=60) as resp:
        assert resp.headers["Allow"] == "GET, HEAD, OPTIONS"
    with pytest.raises(urllib.error.HTTPError, match="405: METHOD NOT ALLOWED") as unknown:
        opener.open(urllib.request.Request(f"http://{HTTPBIN}/anything", method="UNKNOWN"), timeout=60)
    unknown.value.close()
    assert _get(http, HTTPBIN, "/cache")[1]["Last-Modified"]
    cookies = urllib.request.build_opener(urllib.request.ProxyHandler({"http": http.proxy})).open(
        f"http://{HTTPBIN}/response-headers?Set-Cookie=Foo%3Dbar&Set-Cookie=Baz%3Dqux", timeout=60)
    with cookies:
        assert cookies.headers.get_all("Set-Cookie") == ["Foo=bar", "Baz=qux"]
    assert _get(http, HTTPBIN, "/cache", {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"})[0] == 304


def test_gzip_and_base64(http: HttpTester) -> None:
    status, headers, body = _get(http, HTTPBIN, "/gzip")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(body))["gzipped"] is True
    assert _get(http, HTTPBIN, "/base64/" + base64.urlsafe_b64encode(b"hi there").decode())[2] == b"hi there"


def test_multipart_parts_come_back_as_sent(http: HttpTester) -> None:
    """As httpbin's: a part's Content-Transfer-Encoding is not undone (uri's target decodes it)."""
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.txt\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8K\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nvalue\r\n--{boundary}--\r\n")
    status, _, out = _get(http, HTTPBIN, "/post", {"Content-Type": f"multipart/form-data; boundary={boundary}"},
                          data=body.encode())
    doc = json.loads(out)
    assert status == 200
    assert base64.b64decode(doc["files"]["f"]) == b"hello\n" and doc["form"] == {"t": "value"}


def test_the_other_servers_fail_verification(http: HttpTester) -> None:
    with pytest.raises(urllib.error.URLError, match="Hostname mismatch|doesn't match"):
        _get(http, BADSSL, "/get")
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(http, SELF_SIGNED, "/get")
    assert _get(http, SELF_SIGNED + ":444", "/get", verify=False)[0] == 200  # any port of the name
    assert len({http.port(name) for name in ("main", "badssl", "self_signed", "plain", "proxy")}) == 5


def test_the_proxy_names_its_servers_and_serves_plain_http(http: HttpTester) -> None:
    status, _, body = _get(http, SNI, "/")
    assert status == 200 and SNI in body.decode()  # the page names the host asked for (SNI tasks)
    status, _, body = _get(http, HTTPBIN, "/get?q=1", scheme="http")
    assert status == 200 and json.loads(body)["url"] == f"http://{HTTPBIN}/get?q=1"
    status, _, body = _get(http, HTTPBIN, "/ca2cert.pem", scheme="http")
    assert status == 200 and body == (http.directory / "self_signed.pem").read_bytes().split(b"-----BEGIN PRIVATE")[0]
    status, headers, _ = _get(http, BADSSL, "/x?y=1", scheme="http")
    assert (status, headers["Location"]) == (301, f"https://{BADSSL}/x?y=1")
    assert _get(http, "example.invalid", "/get", scheme="http")[0] == 502
    with pytest.raises(urllib.error.URLError, match="502"):
        _get(http, "example.invalid", "/get")


# -- uri and get_url against it, under both tools ------------------------------------------------

def _tasks(refusing: int, bundle: Path) -> list[dict[str, Any]]:
    """The play's tasks; ``refusing``: a port bound and never listening (a proxy that refuses);
    ``bundle``: the certificates that trust the servers (the run's SSL_CERT_FILE)."""
    url, badssl = f"https://{HTTPBIN}", BADSSL
    tasks: list[dict[str, Any]] = [
        {"name": "uri get", "uri": {"url": f"{url}/get?x=1", "return_content": True}},
        {"name": "uri 404", "uri": {"url": f"{url}/status/404"}},
        {"name": "uri 404 expected", "uri": {"url": f"{url}/status/404", "status_code": 404}},
        {"name": "uri forced basic", "uri": {"url": f"{url}/basic-auth/user/passwd", "user": "user",
                                             "password": "passwd", "force_basic_auth": True}},
        {"name": "uri wrong basic", "uri": {"url": f"{url}/basic-auth/user/passwd", "user": "user",
                                            "password": "nope", "force_basic_auth": True}},
        {"name": "uri json body", "uri": {"url": f"{url}/post", "method": "POST", "body_format": "json",
                                          "body": {"k": [1, 2]}}},
        {"name": "uri multipart", "uri": {"url": f"{url}/post", "method": "POST", "body_format": "form-multipart",
                                          "body": {"file1": {"filename": "formdata.txt"},
                                                   "file2": {"content": "text based", "filename": "fake.txt",
                                                             "mime_type": "text/plain"},
                                                   "file3": {"filename": "formdata.txt",
                                                             "multipart_encoding": "7or8bit"},
                                                   "text1": "value1"}}},
        {"name": "uri src", "uri": {"url": f"{url}/post", "method": "POST", "src": "body.json",
                                    "body_format": "json", "return_content": True}},
        {"name": "uri bad host name", "uri": {"url": f"https://{badssl}/get"}},
        {"name": "uri bad host name unchecked", "uri": {"url": f"https://{badssl}/get", "validate_certs": False}},
        {"name": "uri gzip", "uri": {"url": f"{url}/gzip"}},
        {"name": "get_url get", "get_url": {"url": f"{url}/base64/cHR1eA==", "dest": "{d}/ptux.txt"}},
        {"name": "get_url again", "get_url": {"url": f"{url}/base64/cHR1eA==", "dest": "{d}/ptux.txt"}},
        {"name": "get_url checksum", "get_url": {
            "url": f"{url}/base64/cHR1eA==", "dest": "{d}/ptux2.txt",
            "checksum": "sha256:0000000000000000000000000000000000000000000000000000000000000000"}},
        {"name": "write netrc", "copy": {"dest": "{d}/netrc", "content": f"machine {HTTPBIN}\nlogin foo\npassword bar\n"}},
        {"name": "get_url netrc over a bearer header", "get_url": {
            "url": f"{url}/basic-auth/foo/bar", "dest": "{d}/netrc.json", "headers": {"Authorization": "Bearer x"}},
         "environment": {"NETRC": "{d}/netrc"}},
        {"name": "get_url use_netrc false", "get_url": {
            "url": f"{url}/bearer", "dest": "{d}/bearer.json", "use_netrc": False,
            "headers": {"Authorization": "Bearer foobar"}}, "environment": {"NETRC": "{d}/netrc"}},
        {"name": "get_url unredirected", "get_url": {
            "url": f"{url}/redirect-to?status_code=301&url=/basic-auth/user/passwd", "username": "user",
            "password": "passwd", "force_basic_auth": True, "unredirected_headers": ["authorization"],
            "dest": "{d}/unredirected"}},
        {"name": "get_url redirected", "get_url": {
            "url": f"{url}/redirect-to?status_code=301&url=/basic-auth/user/passwd", "username": "user",
            "password": "passwd", "force_basic_auth": True, "dest": "{d}/redirected"}},
        {"name": "get_url plain http", "get_url": {"url": f"http://{HTTPBIN}/get", "dest": "{d}/plain.json"}},
        {"name": "get_url without the proxy", "get_url": {"url": f"{url}/get", "dest": "{d}/direct.json",
                                                           "use_proxy": False}},
        {"name": "get_url the task's proxy", "get_url": {"url": f"{url}/get", "dest": "{d}/proxied.json"},
         "environment": {"https_proxy": f"http://127.0.0.1:{refusing}"}},
        {"name": "get_url the task's SSL_CERT_FILE", "get_url": {"url": f"{url}/get", "dest": "{d}/trusted.json"},
         "environment": {"SSL_CERT_FILE": str(bundle)}},
        {"name": "get_url the task's SSL_CERT_FILE trusts nothing", "get_url": {
            "url": f"{url}/get", "dest": "{d}/untrusted.json"}, "environment": {"SSL_CERT_FILE": "{d}/netrc"}},
        {"name": "read back", "slurp": {"src": "{d}/netrc.json"}},
    ]
    for i, task in enumerate(tasks):
        task.update(register=f"r{i}", ignore_errors=True)
    names = ", ".join(f"'r{i}': r{i}" for i in range(len(tasks)))
    tasks.append({"name": "write results", "copy": {"dest": "{d}/results.json", "content": "{{ {" + names + "} | to_json }}"}})
    return tasks


# what differs between the two runs by construction: a multipart body's random boundary, the
# temporary file a download went to, the date, timing
_NOISE = re.compile(r"(?<=boundary=\")=+\d+==|(?<=The checksum for )\S+(?= did not match)")
_DROP = frozenset({"date", "elapsed", "invocation"})


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, str):
        return _NOISE.sub("X", value)
    return value


URI_KEYS = ("changed", "failed", "msg", "status", "json", "content_type", "url", "redirected")
GET_URL_KEYS = ("changed", "failed", "msg", "status_code", "dest", "checksum_dest", "checksum_src", "size", "url")


@pytest.mark.ansible
def test_uri_and_get_url_match_ansible_against_the_servers(http: HttpTester, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           request: pytest.FixtureRequest) -> None:
    """One ansible-playbook run and one artifact run of the same play; every registered result
    compared on the keys below (uri's through the bridge are ansible-core's own module's)."""
    needs_ansible()
    for name, value in http.env.items():
        monkeypatch.setenv(name, value)
    held = socket.socket()  # bound and never listening for the whole test: connections to it are refused
    held.bind(("127.0.0.1", 0))
    request.addfinalizer(held.close)
    tasks = _tasks(held.getsockname()[1], http.directory / "bundle.pem")
    plays = [{"name": "http", "tasks": tasks}]
    files = {"files/formdata.txt": "_multipart/form-data_\n", "files/body.json": '["JSON Test Pattern"]\n'}
    results, events = {}, {}
    for side, run in (("a", run_ansible), ("o", run_ours)):
        d = tmp_path / side / "proj"
        _write_project(d, files)
        events[side] = run(d, _substitute(plays, d), timeout=600)[0]
        results[side] = json.loads((d / "results.json").read_text().replace(str(d), "{d}"))
    # the event's status is the task's (uri's own "status", the HTTP code, stays in its result)
    statuses = {name: event["status"] for name, event in events["o"]}
    assert (statuses["uri get"], statuses["uri 404"], statuses["uri 404 expected"]) == ("ok", "failed", "ok")
    mismatched = {}
    for i, task in enumerate(tasks[:-1]):
        name = task["name"]
        keys = URI_KEYS if name.startswith("uri") else GET_URL_KEYS if name.startswith("get_url") else \
            ("changed", "failed", "msg", "content")
        got = _normal(fields(results["a"][f"r{i}"], keys)), _normal(fields(results["o"][f"r{i}"], keys))
        if got[0] != got[1]:
            mismatched[name] = got
    assert not mismatched, "\n".join(f"{n}:\n  ansible: {a}\n  rustle:  {o}" for n, (a, o) in mismatched.items())
    got = {task["name"]: results["o"][f"r{i}"] for i, task in enumerate(tasks[:-1])}
    multipart = got["uri multipart"]["json"]
    assert multipart["form"] == {"text1": "value1"} and multipart["files"]["file2"] == "text based"
    assert base64.b64decode(multipart["files"]["file1"]) == b"_multipart/form-data_\n"
    assert multipart["files"]["file3"] == "_multipart/form-data_\r\n"
    assert json.loads(base64.b64decode(got["read back"]["content"]))["user"] == "foo"  # the netrc's login won
    assert got["get_url the task's SSL_CERT_FILE"]["status_code"] == 200
    assert "CERTIFICATE_VERIFY_FAILED" in got["get_url the task's SSL_CERT_FILE trusts nothing"]["msg"]
    assert got["get_url unredirected"]["status_code"] == 401 and got["get_url redirected"]["status_code"] == 200
    assert got["uri get"]["json"]["args"] == {"x": "1"} and got["uri 404"]["failed"]
    assert got["uri src"]["json"]["json"] == ["JSON Test Pattern"]


# -- in a namespace of its own: the names resolve, the real ports, the machine unchanged ------------

_INSIDE = """
import json, os, pwd, ssl, subprocess, sys, urllib.request
out = {}
# no proxy: the names resolve to the servers' addresses, on the real ports
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
out["get"] = json.load(opener.open("https://%(httpbin)s/get?x=1", timeout=60))["url"]
context = ssl.create_default_context()
context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
out["self_signed_444"] = urllib.request.urlopen("https://%(self_signed)s:444/", context=context, timeout=60).status
out["badssl_page"] = urllib.request.urlopen("https://%(badssl)s/", context=context, timeout=60).read().decode()
try:
    opener.open("http://%(badssl)s/x", timeout=60)
except urllib.error.URLError as exc:  # sent to https, whose certificate is for another name
    out["badssl_http"] = str(exc)
out["home"] = pwd.getpwuid(os.getuid()).pw_dir
# a daemon of its own session, left running: it ends with the namespace
subprocess.Popen(["sleep", "%(marker)s"], start_new_session=True)
print(json.dumps(out))
"""


def test_in_a_namespace_the_names_resolve_and_nothing_outlives_the_run(tmp_path: Path) -> None:
    """What the harness runs a target in as root (``HttpTester.wrapper``): the servers on the real
    ports of the names' addresses, reached without a proxy, the machine's CA bundle trusting them,
    the account's home the run's HOME; afterwards the machine's /etc/hosts, /etc/passwd and bundle
    are as they were and no process of the run is left."""
    if not namespaces_work():
        pytest.skip("needs root and a kernel that allows network namespaces")
    import os
    import subprocess
    import sys

    machine = {f: Path(f).read_bytes() for f in ("/etc/hosts", "/etc/passwd", ssl.get_default_verify_paths().openssl_cafile)}
    marker = f"6000.{os.getpid()}"  # the daemon's argument: found in /proc if it outlived the run
    http = HttpTester(tmp_path / "httptester", namespaced=True)
    code = _INSIDE % {"httpbin": HTTPBIN, "self_signed": SELF_SIGNED, "badssl": BADSSL, "marker": marker}
    home = tmp_path / "home"
    proc = subprocess.run([*http.wrapper(), sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["get"] == f"https://{HTTPBIN}/get?x=1"
    assert out["self_signed_444"] == 200
    assert "wrong.host.invalid" in out["badssl_page"]  # lookup_url's badssl_host_substring
    assert "Hostname mismatch" in out["badssl_http"] or "doesn't match" in out["badssl_http"]
    assert out["home"] == str(home)
    assert http.env == {} and http.extra_vars["httpbin_host"] == HTTPBIN
    assert {f: Path(f).read_bytes() for f in machine} == machine
    assert ADDRESSES["main"] not in Path("/etc/hosts").read_text()
    left = [p for p in Path("/proc").iterdir() if p.name.isdigit() and marker.encode() in _cmdline(p)]
    assert not left


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


# -- the harness's part: a port per run, a file server's window, what is left listening --------

def test_a_target_file_server_gets_the_runs_window_and_is_ended_by_its_port(tmp_path: Path) -> None:
    import subprocess
    import sys

    from .harness import RUN_TIMEOUT, _widen_file_server_window, kill_listeners

    tasks = tmp_path / "roles" / "get_url" / "tasks" / "main.yml"
    tasks.parent.mkdir(parents=True)
    tasks.write_text("- shell: serve\n  async: 90\n  poll: 0\n- shell: other\n  async: 90\n")
    _widen_file_server_window(tmp_path, "get_url")
    assert tasks.read_text() == f"- shell: serve\n  async: {RUN_TIMEOUT}\n  poll: 0\n- shell: other\n  async: 90\n"
    # a server on a port of its own choosing (no race with other processes for a free one)
    server = subprocess.Popen([sys.executable, "-c", "import socket, sys, time\n"
                               "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
                               "print(s.getsockname()[1], flush=True); time.sleep(600)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        assert kill_listeners(port) == [server.pid]
        assert server.wait(timeout=60) == -9
    finally:
        server.kill()
        server.wait()
        server.stdout.close()  # type: ignore[union-attr]
