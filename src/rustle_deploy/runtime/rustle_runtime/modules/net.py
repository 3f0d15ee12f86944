"""Module family for the network: wait_for (ports, files, regexes) and get_url (urllib).

Standard library only; Python 3.8 syntax. Messages and result keys follow ansible-core's
``wait_for`` and ``get_url``.
"""

import base64
import hashlib
import os
import re
import socket
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


@c.module
def wait_for(ctx, args):
    """ansible.builtin.wait_for."""
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
    if state == "drained":
        c.fail("wait_for: state=drained is not supported by this runtime; hint: use "
               "state=stopped")
    custom_msg = args.get("msg")
    start = time.monotonic()
    if delay:
        time.sleep(delay)
    deadline = start + timeout
    result = {"changed": False, "state": state}
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


def _fetch(args, url):
    import ssl
    import urllib.error
    import urllib.request

    headers = dict(args.get("headers") or {})
    headers.setdefault("User-Agent", args.get("http_agent") or "ansible-httpget")
    user = c.pop_arg(args, ("url_username", "username"))
    password = c.pop_arg(args, ("url_password", "password"), "")
    if user is not None:
        token = base64.b64encode((f"{user}:{password}").encode()).decode()
        headers["Authorization"] = "Basic " + token
    request = urllib.request.Request(url, headers=headers)
    context = None
    if url.startswith("https") and not c.boolean(args.get("validate_certs", True)):
        context = ssl._create_unverified_context()  # noqa: S323 - the user asked for it
    handlers = []
    if not c.boolean(args.get("use_proxy", True)):
        handlers.append(urllib.request.ProxyHandler({}))
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        response = opener.open(request, timeout=float(args.get("timeout", 10)))
    except urllib.error.HTTPError as exc:
        c.fail("Request failed", status_code=exc.code, response=str(exc.reason), url=url)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        c.fail(f"Request failed: {reason}", status_code=-1, url=url)
    return response


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
        body = _fetch(dict(args), value).read().decode("utf-8", "replace")
        wanted = None
        lines = [line.split(None, 1) for line in body.splitlines() if line.strip()]
        for parts in lines:
            if len(parts) == 2 and os.path.basename(parts[1].lstrip("*")) == dest_name:
                wanted = parts[0]
        if wanted is None and len(lines) == 1 and len(lines[0]) == 1:
            wanted = lines[0][0]
        if wanted is None:
            c.fail(f"Unable to find a checksum for file '{dest_name}' in '{value}'")
        value = wanted
    value = value.strip().lower()
    if not re.match(r"^[0-9a-f]+$", value):
        c.fail("The checksum format is invalid")
    return algorithm, value


@c.module
def get_url(ctx, args):
    """ansible.builtin.get_url."""
    c.check_unknown(args, GET_URL_ARGS, "get_url")
    url, dest = args.get("url"), args.get("dest")
    c.require(dest=dest, url=url)
    dest = c.expand(dest)
    force = c.boolean(args.get("force", False), "force")
    dest_is_dir = os.path.isdir(dest)
    name = os.path.basename(url.split("?", 1)[0]) or "index.html"
    algorithm, expected = _parse_checksum(ctx, args, name)
    result = {"url": url, "changed": False}
    if not dest_is_dir and os.path.exists(dest):
        if expected is not None:
            if c.checksum_file(dest, algorithm) == expected:
                force = False
            else:
                force = True
        if not force:
            result["dest"] = dest
            result["msg"] = "file already exists"
            result["checksum_dest"] = c.checksum_file(dest)
            result["changed"] = c.apply_attributes(ctx, dest, args.get("mode"),
                                                   args.get("owner"), args.get("group"))
            return result
    start = time.monotonic()
    response = _fetch(args, url)
    if dest_is_dir:
        disposition = response.headers.get("Content-Disposition", "") if hasattr(
            response, "headers") else ""
        found = re.search(r'filename="?([^";]+)"?', disposition or "")
        dest = os.path.join(dest, os.path.basename(found.group(1)) if found else name)
    data = response.read()
    status = getattr(response, "status", None) or 200
    response.close()
    result.update({"dest": dest, "status_code": status, "elapsed": int(time.monotonic() - start),
                   "checksum_src": c.checksum_bytes(data), "size": len(data),
                   "msg": f"OK ({len(data)} bytes)"})
    if expected is not None and hashlib.new(algorithm, data).hexdigest() != expected:
        c.fail(f"The checksum for {dest} did not match {expected}; it was {hashlib.new(algorithm, data).hexdigest()}.", **result)
    before = None
    if os.path.isfile(dest):
        result["checksum_dest"] = before = c.checksum_file(dest)
    if dest_is_dir and os.path.exists(dest) and not force and expected is None:
        result["msg"] = "file already exists"
        result["changed"] = c.apply_attributes(ctx, dest, args.get("mode"), args.get("owner"),
                                               args.get("group"))
        return result
    if before != result["checksum_src"]:
        result["changed"] = True
        if not ctx.check_mode:
            if not os.path.isdir(os.path.dirname(os.path.abspath(dest))):
                c.fail(f"Destination dir {os.path.dirname(dest)} not writable", **result)
            if c.boolean(args.get("backup", False)) and os.path.exists(dest):
                result["backup_file"] = c.backup_local(ctx, dest)
            c.atomic_write(dest, data)
    if ctx.check_mode and not os.path.exists(dest):
        return result
    if c.apply_attributes(ctx, dest, args.get("mode"), args.get("owner"), args.get("group")):
        result["changed"] = True
    result["md5sum"] = hashlib.md5(data).hexdigest()  # noqa: S324 - Ansible's result key
    return result


MODULES = {"wait_for": wait_for, "get_url": get_url}
