"""Helpers shared by the module families: failures, booleans, atomic writes, modes, owners.

Standard library only, Python 3.8 syntax. Owns the file-attribute semantics that Ansible's
``AnsibleModule`` provides (``set_fs_attributes_if_different``, ``backup_local``,
``atomic_move``, symbolic modes) so that every family behaves the same way.
"""

import grp
import os
import pwd
import re
import stat
import time

from ..lowlevel import hexdigest, mkstemp, new_hash, which

PERM_BITS = 0o7777
DEFAULT_PERM = 0o666

TRUE_STRINGS = frozenset(("y", "yes", "on", "1", "true", "t"))
FALSE_STRINGS = frozenset(("n", "no", "off", "0", "false", "f", ""))


class ModuleFail(Exception):
    """Raised inside a module to end it with ``failed: true``; ``result`` holds extra keys."""

    def __init__(self, message, **result):
        Exception.__init__(self, message)
        result.pop("msg", None)
        self.msg = message
        self.result = result


def fail(message, **result):
    raise ModuleFail(message, **result)


def module(fn):
    """Wrap a module function so a ModuleFail becomes Ansible's failed result dict."""

    def wrapper(ctx, args):
        try:
            result = fn(ctx, dict(args or {}))
        except ModuleFail as exc:
            result = dict(exc.result)
            result["failed"] = True
            result["msg"] = exc.msg
            result.setdefault("changed", False)
            return result
        result.setdefault("changed", False)
        return result

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


# The parameters of the runtime's own modules that ansible-core 2.19's argument specs declare
# ``no_log=True`` (aliases included): their values are hidden in what the module returns.
# copy's ``content`` is no_log too, but ansible-core's copy action never hands it to the module
# (it only censors ``invocation``, which the runtime does not return), so it is not masked.
NO_LOG_PARAMS = {
    "user": ("password", "ssh_key_passphrase"),
    "get_url": ("url_password", "password"),
}


def no_log_values(name, args):
    """The strings to hide from module ``name``'s result for ``args``: each no_log parameter's
    value flattened as ansible-core's ``_return_datastructure_name`` does (the strings and numbers
    of a nested value; empty strings, ``None`` and booleans give none; no minimum length)."""
    values = set()

    def walk(item):
        if isinstance(item, str):
            if item:
                values.add(item)
        elif isinstance(item, dict):
            for v in item.values():
                walk(v)
        elif isinstance(item, (list, tuple, set)):
            for v in item:
                walk(v)
        elif isinstance(item, (int, float)) and not isinstance(item, bool):
            values.add(str(item))

    for param in NO_LOG_PARAMS.get(name, ()):
        if (args or {}).get(param):
            walk(args[param])
    return values


def remove_values(value, secrets):
    """``value`` with the values of no_log parameters hidden, as AnsibleModule hides them in what
    a module returns (``remove_values``): a string equal to one is
    ``VALUE_SPECIFIED_IN_NO_LOG_PARAMETER``, each one inside a string becomes ``********``
    (the longest first), a number whose text holds one is ``VALUE_SPECIFIED_IN_NO_LOG_PARAMETER``;
    dictionary keys, booleans and ``None`` are kept."""
    secrets = sorted({str(s) for s in secrets if s not in (None, "")}, key=len, reverse=True)
    if not secrets:
        return value

    def walk(item):
        if isinstance(item, str):
            if item in secrets:
                return "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
            for secret in secrets:
                item = item.replace(secret, "*" * 8)
            return item
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            text = str(item)
            if any(secret in text for secret in secrets):
                return "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
        return item

    return walk(value)


def boolean(value, name="value"):
    """Ansible's boolean conversion: yes/no/true/false/on/off/1/0."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return bool(value)
    text = str(value).strip().lower()
    if text in TRUE_STRINGS:
        return True
    if text in FALSE_STRINGS:
        return False
    fail(f"argument '{name}' is of type {type(value).__name__} and we were unable to convert to bool: "
         f"The value '{value}' is not a valid boolean.")


def pop_arg(args, names, default=None):
    """Return the first of ``names`` present in args (an option and its aliases)."""
    for name in names:
        if name in args and args[name] is not None:
            return args[name]
    return default


SELINUX_OPTIONS = ("seuser", "serole", "setype", "selevel")


def check_unknown(args, allowed, module_name):
    """Fail on parameters Ansible's argument spec would reject, on a bad ``unsafe_writes``, and
    on the file options a module accepts but this runtime does not apply (the SELinux context on
    a host with SELinux enabled: where it is disabled Ansible ignores them too)."""
    extra = sorted(k for k in args if k not in allowed and not k.startswith("_"))
    if extra:
        fail("Unsupported parameters for ({}) module: {}. Supported parameters include: {}.".format(module_name, ", ".join(extra), ", ".join(sorted(allowed))))
    if "unsafe_writes" in allowed and args.get("unsafe_writes") is not None:
        boolean(args["unsafe_writes"], "unsafe_writes")
    given = [name for name in SELINUX_OPTIONS if name in allowed and args.get(name) is not None]
    if given and os.path.exists("/sys/fs/selinux/enforce"):
        refuse(args, module_name, dict.fromkeys(given),
               "this runtime does not set SELinux contexts (SELinux is enabled on this host); remove it, "
               f"or run {module_name} with ansible-core's code: RUSTLE_BRIDGE_MODULES={module_name}")


def refuse(args, module_name, defaults, hint=None):
    """Fail on an option this runtime accepts (Ansible's spec has it) but does not apply, when
    it is given a value other than Ansible's default: an option accepted and then ignored would
    silently change what the task does. ``defaults`` maps each such option to that default
    (a boolean default compares as Ansible's boolean conversion would; None: refused whenever
    it is given)."""
    hint = hint or (f"remove it, or run {module_name} with ansible-core's code: "
                    f"RUSTLE_BRIDGE_MODULES={module_name} (docs/bridge.md)")
    for name in sorted(defaults):
        value, default = args.get(name), defaults[name]
        if value is None:
            continue
        if default is None:
            fail(f"{module_name}: option '{name}' is not supported by this runtime; hint: {hint}")
        if isinstance(default, bool):
            try:
                same = boolean(value) == default
            except ModuleFail:
                same = False
        else:
            same = str(value) == str(default)
        if not same:
            fail(f"{module_name}: option '{name}' is not supported by this runtime (given {value!r}; Ansible's default is "
                 f"{default!r}); hint: {hint}")


def get_bin_path(name):
    """The path of executable ``name`` as ansible-core's ``get_bin_path`` finds it: PATH, then
    /sbin, /usr/sbin and /usr/local/sbin; failing with its words, which list where it looked."""
    paths = os.environ.get("PATH", "").split(os.pathsep)
    paths += [p for p in ("/sbin", "/usr/sbin", "/usr/local/sbin") if p not in paths and os.path.exists(p)]
    for folder in paths:
        path = os.path.join(folder, name)
        if folder and os.path.exists(path) and not os.path.isdir(path) and os.access(path, os.X_OK):
            return path
    fail(f'Failed to find required executable "{name}" in paths: {os.pathsep.join(paths)}')


def require(**values):
    """Fail as Ansible's argument spec does when any of these arguments is missing (falsy),
    naming every missing one, sorted."""
    missing = sorted(name for name, value in values.items() if not value)
    if missing:
        fail("missing required arguments: {}".format(", ".join(missing)))


def expand(path):
    """A ``type: path`` argument as Ansible's argument spec expands it on the host: variables,
    then ``~`` from $HOME."""
    return os.path.expanduser(os.path.expandvars(str(path)))


def expand_user_home(path):
    """``~`` at the start of ``path`` as an action plugin's ``_remote_expand_user`` expands it
    before the module runs (copy's and template's ``dest``, unarchive's ``dest`` and ``creates``):
    the home of the user the task runs as, from its passwd entry, not $HOME (a $HOME that
    differs from it moves the file); ``~name`` is that user's home either way."""
    text = str(path)
    if text != "~" and not text.startswith("~/"):
        return text
    try:
        return pwd.getpwuid(os.geteuid()).pw_dir + text[1:]
    except KeyError:  # no passwd entry: the shell's ``echo ~`` gives $HOME
        return text


# ----------------------------------------------------------------------------- embedded files

def embedded_source(ctx, args, src):
    """Bytes of a copy/template/unarchive ``src`` embedded in the artifact.

    The task's ``files`` map (src as written -> sha256) comes from ``ctx.files`` (the
    executor's ModuleContext), or from ``args["_rustle_files"]`` for callers that pass it
    with the arguments. A relative src written differently (``foo.txt`` for an embedded
    ``files/foo.txt``) is accepted when exactly one embedded name ends with it; an absolute
    one only as embedded: a file the run made on the controller is never mistaken for an
    embedded file of the same name.
    """
    task = getattr(ctx, "task", None) or {}
    late = (getattr(ctx, "late_locked", None) or {}).get(src)
    locked = (task.get("vault_locked") or {}).get(src) or (f"Task failed: {late}" if late else None)
    if locked:  # vault-encrypted, and no secret of the run opened it (compiler/sources.py, fleetops)
        fail(locked)
    files = dict(args.get("_rustle_files") or {})
    files.update(getattr(ctx, "files", None) or {})
    name = os.path.normpath(str(src))
    sha = files.get(src) or files.get(name)
    if sha is None and not os.path.isabs(name) and not name.startswith(".."):
        matches = set(v for k, v in files.items() if os.path.normpath(k).endswith(os.sep + name))
        if len(matches) == 1:
            sha = matches.pop()
    if sha is None and (src in task.get("run_time_files", ()) or src in (getattr(ctx, "late_names", None) or ())):
        # read from the controller when the task ran: Ansible's own words (its copy action
        # wraps them), with the places the compiler searched
        tried = task["run_time_files"].get(src) if isinstance(task.get("run_time_files"), dict) else None
        # an absolute name is not searched for: ansible-core lists no places then
        searched = "\nSearched in:\n\t" + "\n\t".join(map(str, tried)) \
            if tried and not os.path.isabs(str(src)) else ""
        prefix = "Unexpected AnsibleActionFail error: " if task.get("module") == "copy" else ""
        fail(f"{prefix}Could not find or access '{src}'{searched} on the Ansible Controller.\nIf you are "
             "using a module and expect the file to exist on the remote, see the remote_src option")
    if sha is None:
        fail("Could not find or access '{}' on the Ansible Controller: the artifact embeds no "
             "file for this src (embedded: {}); hint: recompile with the file present beside "
             "the plan".format(src, ", ".join(sorted(files)) or "none"))
    return ctx.read_file(sha)


# ---------------------------------------------------------------------------------- checksums

def checksum_file(path, algorithm="sha1"):
    try:
        size = os.path.getsize(path)
    except OSError:
        size = 0
    digest = new_hash(algorithm, size)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(65536), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_bytes(data, algorithm="sha1"):
    return hexdigest(algorithm, data)


# ------------------------------------------------------------------------------------- writes

def unsafe_writes(ctx, args):
    """ansible-core's ``unsafe_writes`` of a task: the option, else ``ANSIBLE_UNSAFE_WRITES`` in
    the task's environment or the host's (its spec's env fallback); False by default."""
    value = args.get("unsafe_writes")
    if value is None:
        value = (getattr(ctx, "environment", None) or {}).get("ANSIBLE_UNSAFE_WRITES",
                                                               os.environ.get("ANSIBLE_UNSAFE_WRITES"))
    return value is not None and boolean(value, "unsafe_writes")


def atomic_write(path, data, validate=None, ctx=None, mode=None, unsafe=False):
    """Write ``data`` to ``path`` atomically: temp file beside it, then os.replace.

    As Ansible's ``atomic_move``: a reader, or a run that dies half-way, sees the old or the
    new content, never a mix. Not fsynced, as Ansible does not: an fsync per changed file cost
    ~7 ms of host time per host in the benchmark (docs/decisions.md). An existing file keeps its mode, owner and group (as Ansible's atomic_move does); a new
    file gets ``0666 & ~umask``. A task ``mode`` is applied to the temp file before the rename,
    so the content is never visible under looser permissions. ``validate`` (a command with
    ``%s``) runs on the temp file first and a non-zero exit fails the module without touching
    ``path``.

    ``unsafe`` (the task's ``unsafe_writes``): where atomicity cannot be had, ``path`` is
    written in place, as ansible-core's ``atomic_move`` falls back: when no temp file can be
    made beside it (its directory is not writable), or when the rename fails with EBUSY (a file
    bind-mounted into a container, as /etc/hosts or /etc/resolv.conf are).
    """
    fd, tmp = _temp_beside(path, unsafe)
    if tmp is None:
        _write_in_place(path, data, mode)
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        if validate:
            run_validate(ctx, validate, tmp)
        _adopt_attributes(tmp, path)
        if mode is not None and mode != "preserve":
            try:
                current = os.stat(path)
            except OSError:
                current = None
            os.chmod(tmp, parse_mode(mode, current))
        _replace(tmp, path, unsafe, data, mode)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def atomic_copy(src, path, validate=None, ctx=None):
    """Copy the file ``src`` onto ``path`` atomically (same rules as atomic_write)."""
    import shutil

    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as handle, open(src, "rb") as source:
            shutil.copyfileobj(source, handle)
        if validate:
            run_validate(ctx, validate, tmp)
        _adopt_attributes(tmp, path)
        _replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise


def _replace(tmp, path, unsafe=False, data=None, mode=None):
    """The rename that makes a write visible; failing in atomic_move's words, or with
    ``unsafe`` on EBUSY writing ``data`` in place as its ``_unsafe_writes``."""
    import errno

    try:
        os.replace(tmp, path)
    except OSError as exc:
        if unsafe and exc.errno == errno.EBUSY:
            _write_in_place(path, data, mode)
            os.unlink(tmp)
            return
        fail(f"Unable to make {tmp!r} into to {path!r}, failed final rename from {tmp!r}: {exc}")


def _write_in_place(path, data, mode):
    """ansible-core's ``_unsafe_writes``: ``path`` opened for writing and overwritten (a reader
    may see it half-written; the file keeps its inode, owner and mode), then the task's mode."""
    try:
        with open(path, "wb") as handle:
            handle.write(data)
        if mode is not None and mode != "preserve":
            os.chmod(path, parse_mode(mode, os.stat(path)))
    except OSError as exc:
        fail(f"Could not write data to file {path!r}: {exc}")


def _temp_beside(path, unsafe=False):
    """A new temp file in ``path``'s directory; fails as Ansible's atomic_move when the user
    may not create one there, or with ``unsafe`` gives (None, None): write in place."""
    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        return mkstemp(directory, ".rustle_tmp_")
    except OSError as exc:
        if unsafe:
            return None, None
        fail(f"The destination directory {os.path.dirname(path)!r} is not writable by the current user: {exc}")


def _adopt_attributes(tmp, path):
    try:
        st = os.stat(path)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, DEFAULT_PERM & ~umask)
        return
    os.chmod(tmp, stat.S_IMODE(st.st_mode))
    if os.geteuid() == 0:
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except OSError:
            pass
    # extended attributes, POSIX ACLs among them, as atomic_move's shutil.copystat keeps them
    # (lineinfile's "doesn't delete extended acls"); the times are the write's own
    import shutil

    try:
        shutil.copystat(path, tmp)
        os.utime(tmp, None)
    except OSError:
        pass


def run_validate(ctx, validate, tmp, short=False):
    """Run ``validate`` (with ``%s`` for ``tmp``); fail as lineinfile does, or as copy (short)."""
    if "%s" not in validate:
        fail(f"validate must contain %s: {validate}")
    if ctx is None:
        fail("validate needs a module context to run commands")
    rc, out, err = ctx.run_command(validate % tmp, shell=True)
    if rc != 0:
        msg = "failed to validate" if short else f"failed to validate: rc:{rc} error:{err}"
        fail(msg, exit_status=rc, stdout=out, stderr=err)


def backup_local(ctx, path):
    """Ansible's backup: ``path.<pid>.<YYYY-MM-DD@HH:MM:SS>~``, a copy keeping metadata."""
    if not os.path.exists(path):
        return ""
    ext = time.strftime("%Y-%m-%d@%H:%M:%S~", time.localtime(time.time()))
    dest = f"{path}.{os.getpid()}.{ext}"
    if not getattr(ctx, "check_mode", False):
        import shutil

        shutil.copy2(path, dest)
        try:
            st = os.stat(path)
            os.chown(dest, st.st_uid, st.st_gid)
        except OSError:
            pass
    return dest


def read_lines_bytes(path):
    with open(path, "rb") as handle:
        return handle.readlines()


def to_text(data):
    if isinstance(data, bytes):
        return data.decode("utf-8", "surrogateescape")
    return data


# -------------------------------------------------------------------------------------- modes

_MODE_OPERATOR_RE = re.compile(r"[+=-]")
_USERS_RE = re.compile(r"^[ugoa]*$")
_PERMS_RE = re.compile(r"^[rwxXstugo]*$")


def parse_mode(mode, path_stat=None):
    """Octal string, int or symbolic (``u+rwx,g-w``) -> permission bits for ``path_stat``."""
    if mode is None:
        return None
    if isinstance(mode, bool):
        fail("mode must be in octal or symbolic form", details=str(mode))
    if isinstance(mode, int):
        return mode
    text = str(mode)
    try:
        value = int(text, 8)
    except ValueError:
        try:
            value = symbolic_mode_to_octal(path_stat, text)
        except ValueError as exc:
            fail("mode must be in octal or symbolic form", details=str(exc))
    if value != stat.S_IMODE(value):
        fail("Invalid mode supplied, only permission info is allowed", details=value)
    return value


def symbolic_mode_to_octal(path_stat, symbolic):
    if path_stat is None:
        current, is_dir = 0, False
    else:
        current, is_dir = stat.S_IMODE(path_stat.st_mode), stat.S_ISDIR(path_stat.st_mode)
    new_mode = current
    for clause in symbolic.split(","):
        perms_list = _MODE_OPERATOR_RE.split(clause)
        operators = _MODE_OPERATOR_RE.findall(clause)
        users = perms_list.pop(0)
        use_umask = users == ""
        if users in ("a", ""):
            users = "ugo"
        if not operators or not _USERS_RE.match(users):
            raise ValueError(f"bad symbolic permission for mode: {clause}")
        for idx, perms in enumerate(perms_list):
            if not _PERMS_RE.match(perms):
                raise ValueError(f"bad symbolic permission for mode: {clause}")
            for user in users:
                bits = _symbolic_perm_bits(user, perms, use_umask, new_mode, is_dir)
                new_mode = _apply_operator(user, operators[idx], bits, new_mode)
    return new_mode


def _symbolic_perm_bits(user, perms, use_umask, prev, is_dir):
    umask = os.umask(0)
    os.umask(umask)
    rev = umask ^ PERM_BITS
    x_ok = is_dir or (prev & 0o111) > 0
    table = {
        "u": {"r": stat.S_IRUSR, "w": stat.S_IWUSR, "x": stat.S_IXUSR, "s": stat.S_ISUID,
              "t": 0, "u": prev & stat.S_IRWXU, "g": (prev & stat.S_IRWXG) << 3,
              "o": (prev & stat.S_IRWXO) << 6, "X": stat.S_IXUSR if x_ok else 0},
        "g": {"r": stat.S_IRGRP, "w": stat.S_IWGRP, "x": stat.S_IXGRP, "s": stat.S_ISGID,
              "t": 0, "u": (prev & stat.S_IRWXU) >> 3, "g": prev & stat.S_IRWXG,
              "o": (prev & stat.S_IRWXO) << 3, "X": stat.S_IXGRP if x_ok else 0},
        "o": {"r": stat.S_IROTH, "w": stat.S_IWOTH, "x": stat.S_IXOTH, "s": 0,
              "t": stat.S_ISVTX, "u": (prev & stat.S_IRWXU) >> 6,
              "g": (prev & stat.S_IRWXG) >> 3, "o": prev & stat.S_IRWXO,
              "X": stat.S_IXOTH if x_ok else 0},
    }
    bits = 0
    for perm in perms:
        value = table[user][perm]
        if use_umask and perm in "rwx":
            value &= rev
        bits |= value
    return bits


def _apply_operator(user, operator, bits, current):
    if operator == "=":
        mask = {"u": stat.S_IRWXU | stat.S_ISUID, "g": stat.S_IRWXG | stat.S_ISGID,
                "o": stat.S_IRWXO | stat.S_ISVTX}[user]
        return (current & (mask ^ PERM_BITS)) | bits
    if operator == "+":
        return current | bits
    return current - (current & bits)


# ------------------------------------------------------------------------- owners and groups

def user_id(owner):
    if owner is None:
        return None
    try:
        return int(owner)
    except (TypeError, ValueError):
        pass
    try:
        return pwd.getpwnam(str(owner)).pw_uid
    except KeyError:
        fail(f"chown failed: failed to look up user {owner}")


def group_id(group):
    if group is None:
        return None
    try:
        return int(group)
    except (TypeError, ValueError):
        pass
    try:
        return grp.getgrnam(str(group)).gr_gid
    except KeyError:
        fail(f"chgrp failed: failed to look up group {group}")


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _diff_set(diff, key, before, after):
    if diff is None:
        return
    diff.setdefault("before", {})[key] = before
    diff.setdefault("after", {})[key] = after


FILE_ATTRIBUTES = {
    "A": "noatime", "a": "append", "c": "compressed", "C": "nocow", "d": "nodump",
    "D": "dirsync", "e": "extents", "E": "encrypted", "h": "blocksize", "i": "immutable",
    "I": "indexed", "j": "journalled", "N": "inline", "s": "zero", "S": "synchronous",
    "t": "notail", "T": "blockroot", "u": "undelete", "X": "compressedraw", "Z": "compresseddirty",
}


def file_attributes(ctx, path, include_version=True):
    """Ansible's get_file_attributes: ``attr_flags``, ``attributes`` (and ``version``) from
    ``lsattr``; empty when lsattr is missing or cannot read ``path``."""
    tool = which("lsattr")
    if tool is None:
        return {}
    rc, out, _ = ctx.run_command([tool, "-vd" if include_version else "-d", path], expand=False)
    fields = out.split() if rc == 0 else []
    if len(fields) < (2 if include_version else 1):
        return {}
    result = {}
    if include_version:
        result["version"] = fields[0].strip()
    flags = fields[1 if include_version else 0].replace("-", "").strip()
    result["attr_flags"] = flags
    result["attributes"] = [FILE_ATTRIBUTES[f] for f in flags if f in FILE_ATTRIBUTES]
    return result


def _set_file_attributes(ctx, path, attributes, diff):
    """Ansible's set_attributes_if_different: ``chattr`` when the flags differ (always for a
    ``-`` removal, as Ansible does); True if changed."""
    if attributes is None:
        return False
    if getattr(ctx, "check_mode", False) and not os.path.lexists(path):
        return True
    attributes = str(attributes)
    existing = file_attributes(ctx, path, include_version=False)
    op = "="
    if attributes.startswith(("-", "+")):
        op, attributes = attributes[0], attributes[1:]
    if not attributes or (existing.get("attr_flags", "") == attributes and op != "-"):
        return False
    tool = which("chattr")
    if tool is None:
        return False
    if diff is not None:
        diff.setdefault("before", {})["attributes"] = existing.get("attr_flags")
        diff.setdefault("after", {})["attributes"] = op + attributes
    if not getattr(ctx, "check_mode", False):
        rc, out, err = ctx.run_command([tool, op + attributes, path], expand=False)
        if rc != 0 or err:
            fail("chattr failed", path=path,
                 details=f"Error while setting attributes: {out + err}")
    return True


def apply_attributes(ctx, path, mode=None, owner=None, group=None, diff=None, follow=True,
                     attributes=None):
    """Ansible's set_fs_attributes_if_different: owner, group, mode, then the file
    attributes (chattr); True if changed.

    In check mode nothing is touched; a path that does not exist yet counts as changed when
    any attribute is requested (Ansible's check_file_absent_if_check_mode).
    """
    if attributes is not None:
        changed = apply_attributes(ctx, path, mode, owner, group, diff, follow)
        return _set_file_attributes(ctx, path, attributes, diff) or changed
    if mode is None and owner is None and group is None:
        return False
    check = getattr(ctx, "check_mode", False)
    if check and not os.path.lexists(path):
        return True
    changed = False
    st = os.stat(path) if follow else os.lstat(path)
    uid = user_id(owner)
    if uid is not None and st.st_uid != uid:
        _diff_set(diff, "owner", st.st_uid, uid)
        changed = True
        if not check:
            _chown(path, uid, -1, follow)
    gid = group_id(group)
    if gid is not None and st.st_gid != gid:
        _diff_set(diff, "group", st.st_gid, gid)
        changed = True
        if not check:
            _chown(path, -1, gid, follow)
    if mode is not None:
        if stat.S_ISLNK(st.st_mode):
            # Linux has no lchmod: a symlink's own permissions cannot change (Ansible skips).
            return changed
        new_mode = parse_mode(mode, st)
        prev = stat.S_IMODE(st.st_mode)
        if prev != new_mode:
            _diff_set(diff, "mode", f"0{prev:03o}", f"0{new_mode:03o}")
            changed = True
            if not check:
                try:
                    os.chmod(path, new_mode)
                except OSError as exc:
                    fail(f"chmod failed: {exc}", path=path)
    return changed


def _chown(path, uid, gid, follow):
    try:
        if follow:
            os.chown(path, uid, gid)
        else:
            os.lchown(path, uid, gid)
    except OSError as exc:
        fail(f"chown failed: {exc}", path=path)


def path_info(path, follow=True):
    """Ansible's add_path_info: state, mode, owner, group, uid, gid, size of ``path``."""
    info = {"path": path}
    try:
        st = os.stat(path) if follow else os.lstat(path)
    except OSError:
        info["state"] = "absent"
        return info
    lst = os.lstat(path)
    if stat.S_ISLNK(lst.st_mode):
        state = "link"
    elif stat.S_ISDIR(st.st_mode):
        state = "directory"
    elif st.st_nlink > 1:
        state = "hard"
    else:
        state = "file"
    info.update({
        "uid": st.st_uid, "gid": st.st_gid, "owner": user_name(st.st_uid),
        "group": group_name(st.st_gid), "mode": f"0{stat.S_IMODE(st.st_mode):03o}",
        "state": state, "size": st.st_size,
    })
    return info


def file_diff(path, before, after, before_header=None, after_header=None):
    """A content diff dict as Ansible's modules return it (text, not unified)."""
    return {
        "before": to_text(before) if before is not None else "",
        "after": to_text(after) if after is not None else "",
        "before_header": before_header or path,
        "after_header": after_header or path,
    }
