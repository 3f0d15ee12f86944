"""Module family for the network: wait_for (ports, files, regexes) and get_url (urllib).

Standard library only; Python 3.8 syntax. Messages and result keys follow ansible-core's
``wait_for`` and ``get_url``.
"""

import base64
import hashlib
import os
import re
import socket
import sys
import time

from . import _common as c

WAIT_ARGS = {"host", "port", "path", "state", "timeout", "delay", "sleep", "search_regex",
             "connect_timeout", "msg", "exclude_hosts", "active_connection_states"}


def _port_open(host, port, connect_timeout):
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
    except OSError:
        return False, None
    return True, sock


def _read_all(sock, budget):
    sock.settimeout(max(0.05, budget))
    chunks = []
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                break
            chunks.append(data)
            yield b"".join(chunks)
    except OSError:
        return


_TCP_STATES = {"ESTABLISHED": "01", "SYN_SENT": "02", "SYN_RECV": "03", "FIN_WAIT1": "04",
               "FIN_WAIT2": "05", "TIME_WAIT": "06"}


def _proc_net_hex(host):
    """``host``'s addresses as /proc/net/tcp{,6} writes them (Ansible's _convert_host_to_hex):
    per family, each 4-byte group in host byte order, upper-case hex."""
    import binascii

    out = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, 80, 0, 0, socket.SOL_TCP):
        ips = [(family, sockaddr[0])]
        if family == socket.AF_INET:
            ips.append((socket.AF_INET6, "::ffff:" + sockaddr[0]))
        for fam, ip in ips:
            raw = binascii.b2a_hex(socket.inet_pton(fam, ip))
            out.append((fam, "".join(f"{socket.ntohl(int(raw[i:i + 8], 16)):08X}"
                                     for i in range(0, len(raw), 8))))
    return out


class _TcpConnections:
    """Ansible's LinuxTCPConnectionInfo: connections to a local port in the given states,
    read from /proc/net/tcp and /proc/net/tcp6."""

    FILES = ((socket.AF_INET, "/proc/net/tcp"), (socket.AF_INET6, "/proc/net/tcp6"))
    ANY = {socket.AF_INET: "00000000", socket.AF_INET6: "0" * 32}
    MAPPED_PREFIX, MAPPED_ANY = "0000000000000000FFFF0000", "0000000000000000FFFF000000000000"

    def __init__(self, host, port, exclude_hosts, states):
        if port is None:
            c.fail("state=drained needs a port", elapsed=0)
        self.ips = set(_proc_net_hex(host))
        self.port = f"{int(port):04X}"
        self.exclude = set(ip for h in exclude_hosts for ip in _proc_net_hex(h))
        self.states = set(_TCP_STATES[s] for s in states)

    def active(self):
        count = 0
        for family, name in self.FILES:
            try:
                with open(name) as handle:
                    lines = handle.readlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                if len(fields) < 4 or fields[3] not in self.states:
                    continue
                local_ip, local_port = fields[1].split(":")
                if local_port != self.port:
                    continue
                if (family, fields[2].split(":")[0]) in self.exclude:
                    continue
                if ((family, local_ip) in self.ips or (family, self.ANY[family]) in self.ips
                        or (local_ip.startswith(self.MAPPED_PREFIX)
                            and (family, self.MAPPED_ANY) in self.ips)):
                    count += 1
        return count


@c.module
def wait_for(ctx, args):
    """ansible.builtin.wait_for; a result with a path gets its details (add_path_info), as
    AnsibleModule.exit_json adds them."""
    result = _wait_for(ctx, args)
    if result.get("path") is not None:
        result.update(c.path_info(result["path"], follow=False))
    return result


def _wait_for(ctx, args):
    c.check_unknown(args, WAIT_ARGS, "wait_for")
    host = str(args.get("host") or "127.0.0.1")
    port = args.get("port")
    port = None if port in (None, "") else int(port)
    path = args.get("path")
    path = c.expand(path) if path else None
    state = args.get("state") or "started"
    if state not in ("started", "present", "stopped", "absent", "drained"):
        c.fail("value of state must be one of: absent, drained, present, started, stopped, "
               f"got: {state}")
    timeout = float(args.get("timeout", 300))
    delay = float(args.get("delay", 0))
    sleep = float(args.get("sleep", 1))
    connect_timeout = float(args.get("connect_timeout", 5))
    regex = args.get("search_regex")
    if port is not None and path is not None:
        c.fail("port and path parameter can not both be passed to wait_for")
    if path is not None and state == "stopped":
        c.fail("state=stopped should only be used for checking a port in the wait_for module")
    if path is not None and state == "drained":
        c.fail("state=drained should only be used for checking a port in the wait_for module")
    if regex is not None and state in ("stopped", "absent"):
        c.fail(f"state={state} should not be used together with search_regex")
    exclude = args.get("exclude_hosts")
    if exclude is not None and state != "drained":
        c.fail("exclude_hosts should only be with state=drained", elapsed=0)
    states = args.get("active_connection_states") or list(_TCP_STATES)
    for name in states:
        if name not in _TCP_STATES:
            c.fail(f"unknown active_connection_state ({name}) defined", elapsed=0)
    custom_msg = args.get("msg")
    start = time.monotonic()
    if delay:
        time.sleep(delay)
    deadline = start + timeout
    # every success reports these, as wait_for's exit_json does (match_* only filled by a match)
    result = {"changed": False, "state": state, "port": port, "search_regex": regex, "match_groups": [],
              "match_groupdict": {}, "path": path}
    if state == "drained":
        conns = _TcpConnections(host, port, exclude or [], states)
        while time.monotonic() < deadline:
            if conns.active() == 0:
                break
            time.sleep(sleep)
        else:
            c.fail(custom_msg or f"Timeout when waiting for {host}:{port} to drain",
                   elapsed=int(time.monotonic() - start))
        result.update({"port": port, "elapsed": int(time.monotonic() - start)})
        return result
    if port is None and path is None:
        time.sleep(timeout)  # as Ansible: the whole timeout, after the delay
        result["elapsed"] = int(time.monotonic() - start)
        return result
    compiled = re.compile(regex, re.MULTILINE) if regex else None

    def elapsed():
        return int(time.monotonic() - start)

    def timed_out(default):
        c.fail(custom_msg or default, elapsed=elapsed())

    if state in ("stopped", "absent"):
        while True:
            if path is not None:
                gone = not os.path.exists(path)
            else:
                is_open, sock = _port_open(host, port, connect_timeout)
                if sock is not None:
                    sock.close()
                gone = not is_open
            if gone:
                result.update({"elapsed": elapsed()})
                if path is not None:
                    result["path"] = path
                else:
                    result["port"] = port
                return result
            if time.monotonic() >= deadline:
                if path is not None:
                    timed_out(f"Timeout when waiting for {path} to be absent.")
                timed_out(f"Timeout when waiting for {host}:{port} to stop.")
            time.sleep(min(sleep, max(0.0, deadline - time.monotonic())))

    while True:
        if path is not None:
            if os.path.exists(path):
                if compiled is None:
                    result.update({"path": path, "elapsed": elapsed()})
                    return result
                try:
                    with open(path, "rb") as handle:
                        text = handle.read().decode("utf-8", "replace")
                except OSError:
                    text = ""
                found = compiled.search(text)
                if found:
                    result.update({"path": path, "elapsed": elapsed(),
                                   "match_groups": list(found.groups()),
                                   "match_groupdict": found.groupdict()})
                    return result
        else:
            remaining = deadline - time.monotonic()
            is_open, sock = _port_open(host, port, min(connect_timeout, max(0.05, remaining)))
            if is_open:
                if compiled is None:
                    sock.close()
                    result.update({"port": port, "elapsed": elapsed()})
                    return result
                try:
                    for data in _read_all(sock, deadline - time.monotonic()):
                        found = compiled.search(data.decode("utf-8", "replace"))
                        if found:
                            result.update({"port": port, "elapsed": elapsed(),
                                           "match_groups": list(found.groups()),
                                           "match_groupdict": found.groupdict()})
                            return result
                finally:
                    sock.close()
        if time.monotonic() >= deadline:
            if path is not None:
                if compiled is not None and os.path.exists(path):
                    timed_out(f"Timeout when waiting for search string {regex} in {path}")
                timed_out(f"Timeout when waiting for file {path}")
            if compiled is not None:
                timed_out(f"Timeout when waiting for search string {regex} in {host}:{port}")
            timed_out(f"Timeout when waiting for {host}:{port}")
        time.sleep(min(sleep, max(0.0, deadline - time.monotonic())))


# -------------------------------------------------------------------------------------- get_url

GET_URL_ARGS = {"url", "dest", "checksum", "mode", "owner", "group", "force", "timeout",
                "headers", "url_username", "username", "url_password", "password",
                "validate_certs", "backup", "tmp_dest", "force_basic_auth", "http_agent",
                "use_proxy", "decompress", "unredirected_headers", "ciphers", "use_netrc",
                "use_gssapi", "client_cert", "client_key", "unsafe_writes", "attributes",
                "seuser", "serole", "setype", "selevel", "sha256sum"}


NOT_MODIFIED = "HTTP Error 304: Not Modified"


def mask_url(url):
    """``url`` with its user and password shown as ``****`` (ansible-core's ``mask_url``)."""
    import urllib.parse

    parsed = urllib.parse.urlparse(url or "")
    if not parsed.username and not parsed.password:
        return url
    if parsed.password:
        netloc = parsed.netloc.replace(f"{parsed.username}:{parsed.password}@", "****:****@")
    else:
        netloc = parsed.netloc.replace(f"{parsed.username}@", "****@")
    return urllib.parse.urlunparse(parsed._replace(netloc=netloc))


def _auth(ctx, args, url):
    """``(url, headers, handlers)`` for the request's credentials, as ansible-core's
    _configure_auth: ``url_username`` (or ``user:password@`` in the URL) answers a Basic or
    Digest challenge, or is sent up front with ``force_basic_auth``; without a user, the
    host's ``~/.netrc`` (``$NETRC``) entry is sent unless ``use_netrc`` is false."""
    import netrc
    import urllib.parse
    import urllib.request

    if c.boolean(args.get("use_gssapi", False), "use_gssapi"):
        c.fail("use_gssapi is not supported by rustle-deploy's built-in get_url (it needs the "
               "gssapi Python package on the host); remove it or run the task through Ansible",
               url=mask_url(url))
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "ftp":
        return url, {}, []
    user = c.pop_arg(args, ("url_username", "username"))
    password = c.pop_arg(args, ("url_password", "password"), "")
    netloc = parsed.netloc
    if not user and "@" in parsed.netloc:
        credentials, netloc = parsed.netloc.split("@", 1)
        user, _, password = credentials.partition(":")
        user, password = urllib.parse.unquote(user), urllib.parse.unquote(password)
        url = urllib.parse.urlunparse(parsed._replace(netloc=netloc))

    def basic(name, secret):
        return {"Authorization": "Basic " + base64.b64encode(f"{name}:{secret}".encode()).decode()}

    if user and not c.boolean(args.get("force_basic_auth", False), "force_basic_auth"):
        passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
        passwords.add_password(None, netloc, user, password)
        return url, {}, [urllib.request.HTTPBasicAuthHandler(passwords),
                         urllib.request.HTTPDigestAuthHandler(passwords)]
    if user:
        return url, basic(user, password), []
    if c.boolean(args.get("use_netrc", True), "use_netrc"):
        try:
            login = netrc.netrc(ctx.environment.get("NETRC", os.environ.get("NETRC"))).authenticators(parsed.hostname)
        except (OSError, netrc.NetrcParseError):
            login = None
        if login and login[0] and login[2]:
            return url, basic(login[0], login[2]), []
    return url, {}, []


def _ssl_context(ctx, args):
    """ansible-core's make_context: ``validate_certs``, ``ciphers``, ``client_cert``/``client_key``;
    the trusted certificates OpenSSL's defaults name, where the task's ``environment`` may set
    ``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` (ansible-core's module reads them from its process
    environment, which is the task's)."""
    import ssl

    ciphers = args.get("ciphers")
    if ciphers is not None and not isinstance(ciphers, list):
        c.fail(f"Ciphers must be a list. Got {type(ciphers).__name__}.")
    if "SSL_CERT_FILE" in ctx.environment or "SSL_CERT_DIR" in ctx.environment:
        context = _context_trusting(ssl, ctx.environment)
    else:
        context = ssl.create_default_context()
    if not c.boolean(args.get("validate_certs", True), "validate_certs"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        if ciphers:
            context.set_ciphers(":".join(str(x) for x in ciphers))
        if args.get("client_cert"):
            context.post_handshake_auth = True
            context.load_cert_chain(c.expand(args["client_cert"]),
                                    keyfile=c.expand(args["client_key"]) if args.get("client_key") else None)
    except (ssl.SSLError, OSError) as exc:
        c.fail(f"Request failed: {exc}", status_code=-1, url=mask_url(args.get("url")))
    return context


def _context_trusting(ssl, task_env):
    """``ssl.create_default_context()`` as it is in a process whose environment holds
    ``task_env`` over the run's: OpenSSL's default file and directory, or what ``SSL_CERT_FILE``
    and ``SSL_CERT_DIR`` name instead; a missing or unreadable one trusts nothing, as OpenSSL
    ignores it."""
    defaults = ssl.get_default_verify_paths()
    env = dict(os.environ)
    env.update(task_env)
    cafile = env.get("SSL_CERT_FILE") or defaults.openssl_cafile
    capath = env.get("SSL_CERT_DIR") or defaults.openssl_capath
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # what create_default_context starts from
    if sys.version_info >= (3, 13):  # and what it adds there
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
    for kind, where in (("cafile", cafile), ("capath", capath)):
        if where and os.path.exists(where):
            try:
                context.load_verify_locations(**{kind: where})
            except (ssl.SSLError, OSError):
                pass
    return context


def _task_proxies(ctx, url):
    """The proxies of the task's ``environment`` over the run's, as ansible-core's module finds
    them in its process environment (urllib's ``getproxies_environment`` and ``no_proxy``)."""
    import urllib.parse
    import urllib.request

    env = dict(os.environ)
    env.update(ctx.environment)
    proxies = {}
    for name in sorted(env, key=lambda n: n != n.lower()):  # lower case wins, as in urllib
        if name.lower().endswith("_proxy") and env[name] and name.lower()[:-6] not in proxies:
            proxies[name.lower()[:-6]] = env[name]
    host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
    if urllib.request.proxy_bypass_environment(host, proxies):
        return urllib.request.ProxyHandler({})
    return urllib.request.ProxyHandler({k: v for k, v in proxies.items() if k != "no"})


def _fetch(ctx, args, url, modified_since=None, force=False):
    """The response to ``url``; with ``modified_since`` (a file's mtime) a conditional request,
    None when the server answers 304 (ansible-core's fetch_url with ``last_mod_time``)."""
    import urllib.error
    import urllib.request

    shown = mask_url(url)  # the URL as given (its credentials masked) in failures
    url, auth_headers, handlers = _auth(ctx, args, url)
    request = urllib.request.Request(url)
    request.add_header("User-agent", args.get("http_agent") or "ansible-httpget")
    if force:
        request.add_header("cache-control", "no-cache")
    elif modified_since is not None:
        request.add_header("If-Modified-Since", time.strftime("%a, %d %b %Y %H:%M:%S GMT",
                                                              time.gmtime(modified_since)))
    headers = dict(args.get("headers") or {})
    headers.update(auth_headers)  # as ansible-core: netrc or forced Basic over a given Authorization
    unredirected = [str(h).lower() for h in (args.get("unredirected_headers") or [])]
    for name, value in headers.items():
        if name.lower() in unredirected:
            request.add_unredirected_header(name, value)
        else:
            request.add_header(name, value)
    if not c.boolean(args.get("use_proxy", True)):
        handlers.append(urllib.request.ProxyHandler({}))
    elif any(k.lower().endswith("_proxy") for k in ctx.environment):
        handlers.append(_task_proxies(ctx, url))
    handlers.append(urllib.request.HTTPSHandler(context=_ssl_context(ctx, args)))
    opener = urllib.request.build_opener(*handlers)
    try:
        response = opener.open(request, timeout=float(args.get("timeout", 10)))
    except urllib.error.HTTPError as exc:
        if exc.code == 304 and modified_since is not None:
            return None
        c.fail("Request failed", status_code=exc.code, response=str(exc.reason), url=shown)
    except urllib.error.URLError as exc:  # ansible-core's fetch_url words: "<urlopen error ...>"
        c.fail(f"Request failed: {exc}", status_code=-1, url=shown)
    except OSError as exc:
        c.fail(f"Connection failure: {exc}", status_code=-1, url=shown)
    except ValueError as exc:
        c.fail(f"Request failed: {exc}", status_code=-1, url=shown)
    return response


_BSD_DIGEST_LINE = re.compile(r"^(\w+) ?\((?P<path>.+)\) ?= (?P<digest>[\w.]+)$")
_GNU_DIGEST_LINE = re.compile(r"^(?P<digest>[\w.]+)\s+(\*|\.\/|\.)?(?P<path>.+)$")


def _digest_lines(lines):
    """``(digest, path)`` of each line of a checksum file, GNU (``sha256sum``) or BSD (``--tag``)
    style, as ansible-core's get_url parses them (``parse_digest_lines``)."""
    out = []
    for line in lines:
        match = _BSD_DIGEST_LINE.match(line)
        if match:
            out.append((match.group("digest"), match.group("path")))
            continue
        match = _GNU_DIGEST_LINE.match(line)
        if match:
            out.append((match.group("digest"), match.group("path").lstrip("./")))
    return out


def _parse_checksum(ctx, args, dest_name):
    spec = args.get("checksum") or ""
    if not spec and args.get("sha256sum"):
        spec = "sha256:{}".format(args["sha256sum"])
    if not spec:
        return None, None
    try:
        algorithm, value = spec.split(":", 1)
    except ValueError:
        c.fail("The checksum parameter has to be in format <algorithm>:<checksum>")
    algorithm = algorithm.lower()
    if algorithm not in hashlib.algorithms_available:
        c.fail(f"Unsupported hash algorithm: {algorithm}")
    if value.startswith(("http://", "https://", "ftp://", "file://")):
        body = _fetch(ctx, dict(args), value).read().decode("utf-8", "replace")
        lines = body.splitlines()  # as Ansible reads the file: universal newlines
        if len(lines) == 1 and len(lines[0].split()) == 1:
            wanted = lines[0]  # a checksum-only file
        else:
            wanted = next((digest for digest, path in _digest_lines(lines) if path == dest_name), None)
        if wanted is None:
            c.fail(f"Unable to find a checksum for file '{dest_name}' in '{value}'")
        value = wanted
    value = re.sub(r"\W+", "", value).lower()  # as Ansible: any non-word character (a zero-width space, a dot)
    if not re.match(r"^[0-9a-f]+$", value):
        c.fail("The checksum format is invalid")
    return algorithm, value


@c.module
def get_url(ctx, args):
    """ansible.builtin.get_url (its no_log ``url_password`` is hidden by ``call_module``)."""
    c.check_unknown(args, GET_URL_ARGS, "get_url")
    url, dest = args.get("url"), args.get("dest")
    c.require(dest=dest, url=url)
    dest = c.expand(dest)
    force = c.boolean(args.get("force", False), "force")
    dest_is_dir = os.path.isdir(dest)
    name = os.path.basename(url.split("?", 1)[0]) or "index.html"
    algorithm, expected = _parse_checksum(ctx, args, name)
    result = {"url": mask_url(url), "changed": False}
    modified_since = None
    if not dest_is_dir and os.path.exists(dest):
        # as ansible-core 2.19: a matching checksum skips the download; otherwise the request
        # is conditional on the file's mtime (unless forced), and a 304 leaves the file be
        if expected is not None and not force:
            if c.checksum_file(dest, algorithm) == expected:
                result["dest"] = dest
                result["msg"] = "file already exists"
                result["checksum_dest"] = c.checksum_file(dest)
                result["changed"] = c.apply_attributes(ctx, dest, args.get("mode"),
                                                       args.get("owner"), args.get("group"))
                return result
            force = True
        if not force:
            modified_since = os.path.getmtime(dest)
    tmp_dest = args.get("tmp_dest")
    start = time.monotonic()
    try:
        response = _fetch(ctx, args, url, modified_since, force)
    except c.ModuleFail as exc:  # url_get's failures name dest and the time taken; -1 is no status
        extra = {k: v for k, v in exc.result.items() if (k, v) != ("status_code", -1)}
        raise c.ModuleFail(exc.msg, **dict(extra, dest=dest, elapsed=int(time.monotonic() - start))) from None
    if response is None:
        return {"url": mask_url(url), "dest": dest, "changed": False, "msg": NOT_MODIFIED, "status_code": 304,
                "elapsed": int(time.monotonic() - start)}
    if tmp_dest:  # as Ansible checks it, once the response is in (its download goes there)
        tmp_dest = c.expand(tmp_dest)
        if not os.path.isdir(tmp_dest):
            response.close()
            c.fail(f"{tmp_dest} is a file but should be a directory." if os.path.exists(tmp_dest)
                   else f"{tmp_dest} directory does not exist.", elapsed=int(time.monotonic() - start))
    if dest_is_dir:
        disposition = response.headers.get("Content-Disposition", "") if hasattr(
            response, "headers") else ""
        found = re.search(r'filename="?([^";]+)"?', disposition or "")
        dest = os.path.join(dest, os.path.basename(found.group(1)) if found else name)
    import http.client

    try:
        data = response.read()
    except http.client.IncompleteRead as exc:
        data = exc.partial
    status = getattr(response, "status", None) or 200
    response.close()
    headers = getattr(response, "headers", None)
    length = headers.get("Content-Length") if headers is not None else None
    gzipped = headers is not None and headers.get("Content-Encoding") == "gzip"
    decompress = c.boolean(args.get("decompress", True), "decompress")
    if not ctx.check_mode and length and length.isdigit() and int(length) != len(data) and not (gzipped and decompress):
        diff = int(length) - len(data)  # ansible-core's words (it checks the file it wrote)
        c.fail(f"Incomplete read, (rsp.length={diff}, cl={int(length)}, st.st_size={len(data)}) failed to read "
               f"remaining {diff} bytes")
    if gzipped and decompress:  # ansible-core's fetch_url(decompress=True) (the default)
        import gzip
        import zlib

        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            c.fail(f"Request failed: {exc}", status_code=-1, url=mask_url(url))
    result.update({"dest": dest, "elapsed": int(time.monotonic() - start), "checksum_src": c.checksum_bytes(data),
                   "checksum_dest": None})
    before = None
    if os.path.isfile(dest):
        result["checksum_dest"] = before = c.checksum_file(dest)
    if expected is not None and not ctx.check_mode and hashlib.new(algorithm, data).hexdigest() != expected:
        # as ansible-core: the download went to a temporary file (tmp_dest, else the task's
        # temporary directory), which the message names and which is removed
        import tempfile

        fd, tmpsrc = tempfile.mkstemp(dir=tmp_dest or ctx.tmpdir)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.remove(tmpsrc)
        c.fail(f"The checksum for {tmpsrc} did not match {expected}; it was {hashlib.new(algorithm, data).hexdigest()}.",
               **result)
    result.update({"status_code": status, "size": len(data), "msg": f"OK ({len(data)} bytes)"})
    if before != result["checksum_src"]:
        result["changed"] = True
        if not ctx.check_mode:
            if not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
                c.fail(f"Destination dir {os.path.dirname(dest)} not writable", **result)
            if c.boolean(args.get("backup", False)) and os.path.exists(dest):
                result["backup_file"] = c.backup_local(ctx, dest)
            c.atomic_write(dest, data, unsafe=c.unsafe_writes(ctx, args))
    if ctx.check_mode and not os.path.exists(dest):
        return result
    if c.apply_attributes(ctx, dest, args.get("mode"), args.get("owner"), args.get("group"),
                          attributes=args.get("attributes")):
        result["changed"] = True
    result["md5sum"] = hashlib.md5(data).hexdigest()  # noqa: S324 - Ansible's result key
    return result


MODULES = {"wait_for": wait_for, "get_url": get_url}
