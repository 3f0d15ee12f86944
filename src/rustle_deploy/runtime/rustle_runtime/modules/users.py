"""Module family for accounts: user and group, through useradd/usermod/userdel/groupadd/...

Standard library only; Python 3.8 syntax. The current state comes from ``pwd``/``grp`` (and
``/etc/shadow`` for password hashes); changes are made with the shadow-utils commands, as
ansible-core's Linux implementations do. Check mode computes the same ``changed`` without
running them.
"""

import grp
import os
import pwd
import re
import shutil
import socket
import time

from . import _common as c

USER_ARGS = {"name", "user", "state", "uid", "group", "groups", "append", "comment", "home",
             "shell", "system", "create_home", "createhome", "move_home", "password", "remove",
             "force", "non_unique", "update_password", "password_lock", "expires", "local",
             "skeleton", "umask", "hidden", "seuser", "generate_ssh_key", "ssh_key_bits",
             "ssh_key_comment", "ssh_key_file", "ssh_key_passphrase", "ssh_key_type",
             "password_expire_max", "password_expire_min", "password_expire_warn",
             "authorization", "profile", "role", "login_class", "uid_min", "uid_max",
             "password_expire_account_disable"}
GROUP_ARGS = {"name", "gid", "state", "system", "non_unique", "local", "force", "gid_min",
              "gid_max"}


def _tool(name):
    """The path of ``name`` as ansible-core's ``get_bin_path`` finds it (PATH, then the sbin
    directories), failing with its words."""
    return c.get_bin_path(name)


def _output(result, ran):
    """The command's output on the result, as ansible-core's user puts it (when not empty)."""
    _rc, out, err = ran
    if out:
        result["stdout"] = out
    if err:
        result["stderr"] = err


def _groups_list(value):
    if value is None:
        return None
    if isinstance(value, str):
        return [g.strip() for g in value.split(",") if g.strip()]
    return [str(g).strip() for g in value if str(g).strip()]


def _group_exists(name):
    try:
        if str(name).isdigit():
            grp.getgrgid(int(name))
        else:
            grp.getgrnam(str(name))
        return True
    except KeyError:
        return False


def _shadow_entry(name):
    """The fields of ``name``'s /etc/shadow line (None when unreadable or absent)."""
    try:
        with open("/etc/shadow") as handle:
            for line in handle:
                fields = line.rstrip("\n").split(":")
                if fields[0] == name:
                    return fields
    except OSError:
        return None
    return None


def _shadow_hash(name):
    fields = _shadow_entry(name)
    return fields[1] if fields else None


def _shadow_number(name, index):
    """A number field of ``name``'s /etc/shadow line as ``spwd`` reads it (-1 when empty; 0
    when there is no line, as ansible-core's own parser starts from)."""
    fields = _shadow_entry(name)
    if not fields:
        return 0
    try:
        return int(fields[index]) if len(fields) > index and fields[index] else -1
    except ValueError:
        return -1


def _expiry_changes(name, when):
    """usermod's ``-e`` arguments that bring the account's expiry date to ``when``, as
    ansible-core compares them (the day, in UTC; before the epoch: no expiry)."""
    current = _shadow_number(name, 7)
    if when < time.gmtime(0):
        return ["-e", ""] if current >= 0 else []
    if current < 0 or time.gmtime(current * 86400)[:3] != when[:3]:
        return ["-e", _expires(when)]
    return []


_HASH_RE = re.compile(r"[^a-zA-Z0-9./=]")
# the length of the hash field of each crypt(3) method ansible-core checks
_HASH_LENGTHS = {"1": 22, "5": 43, "6": 86, "y": 43}


def _warn_unhashed(ctx, password):
    """ansible-core's check that ``password`` looks like a crypt(3) hash: a warning when not
    (the account would get the text itself as its hash)."""
    if not password or password in ("*", "!", "*************"):
        return
    fields = password.split("$")
    invalid = any(ch in password for ch in ":*!") or "$" not in password or len(fields) < 3
    if not invalid:
        invalid = bool(_HASH_RE.search(fields[-1])) or (
            fields[1] in _HASH_LENGTHS and len(fields[-1]) != _HASH_LENGTHS[fields[1]])
    if invalid:
        ctx.warn("The input password appears not to have been hashed. "
                 "The 'password' argument must be encrypted for this module to work properly.")


def _expiry(value):
    """``expires`` (seconds since the epoch, a float) as ansible-core's argument spec and User
    take it: a time.struct_time, failing with their words."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str, bytes)):
        c.fail(f"argument 'expires' is of type {type(value).__name__} and we were unable to convert to float: "
               f"{type(value)} cannot be converted to a float")
    try:
        seconds = float(value)
    except ValueError:
        c.fail(f"argument 'expires' is of type {type(value).__name__} and we were unable to convert to float: "
               f"{type(value)} cannot be converted to a float")
    try:
        return time.gmtime(seconds)
    except (OverflowError, OSError, ValueError) as exc:
        c.fail(f"Invalid value for 'expires' None: {exc}")


def _user_groups(name, primary_gid):
    return sorted(g.gr_name for g in grp.getgrall()
                  if name in g.gr_mem and g.gr_gid != primary_gid)


def _int_arg(args, name):
    """An ``int`` argument as ansible-core's argument spec converts it (``check_type_int``),
    failing with its words; None when not given."""
    import decimal

    value = args.get(name)
    if value is None or isinstance(value, int):
        return value
    try:
        number = decimal.Decimal(value)
        if number != int(number):
            raise ValueError("Significant decimal part found")
        return int(number)
    except (decimal.DecimalException, TypeError, ValueError):
        c.fail(f"argument '{name}' is of type {type(value).__name__} and we were unable to convert to int: "
               f'"{value!r}" cannot be converted to an int')


def _exists(name, local):
    """Whether the account exists: through NSS, or with ``local`` in /etc/passwd itself, as
    ansible-core's user_exists reads it."""
    if not local:
        try:
            pwd.getpwnam(name)
            return True
        except KeyError:
            return False
    if not os.path.exists("/etc/passwd"):
        c.fail("'local: true' specified but unable to find local account file /etc/passwd to parse.")
    with open("/etc/passwd", "rb") as handle:
        return any(line.startswith(name.encode() + b":") for line in handle)


def _password_field(name):
    """The account's password as ansible-core's user_info gives it: the passwd field, or the
    shadow one when that is a placeholder (``x``)."""
    entry = pwd.getpwnam(name)
    if len(entry.pw_passwd) <= 1:
        return _shadow_hash(name) or ""
    return entry.pw_passwd


@c.module
def user(ctx, args):
    """ansible.builtin.user (Linux shadow-utils, or libuser's l* commands with ``local``)."""
    c.check_unknown(args, USER_ARGS, "user")
    name = c.pop_arg(args, ("name", "user"))
    if not name:
        c.fail("missing required arguments: name")
    state = args.get("state") or "present"
    if state not in ("present", "absent"):
        c.fail(f"value of state must be one of: absent, present, got: {state}")
    local = c.boolean(args.get("local", False), "local")
    password_lock = None if args.get("password_lock") is None else c.boolean(args["password_lock"], "password_lock")
    opts = {k: _int_arg(args, k) for k in ("uid_min", "uid_max", "password_expire_max", "password_expire_min",
                                           "password_expire_warn", "password_expire_account_disable",
                                           "ssh_key_bits")}
    if local:  # ansible-core's User.__init__, in its order
        for option in ("umask", "uid_min", "uid_max"):
            if (args.get(option) if option == "umask" else opts[option]) is not None:
                c.fail(f"'{option}' can not be used with 'local'")
    expires = _expiry(args.get("expires"))
    groups = _groups_list(args.get("groups"))
    append = c.boolean(args.get("append", False))
    if groups is None and append:
        ctx.warn("'append' is set, but no 'groups' are specified. Use 'groups' for appending new groups."
                 "This will change to an error in Ansible 2.14.")
    if args.get("password") is not None:
        _warn_unhashed(ctx, str(args["password"]))
    result = {"name": name, "state": state, "changed": False}
    if state == "absent":
        if not _exists(name, local):
            return result
        if ctx.check_mode:  # ansible-core's user exits with changed alone here
            return {"changed": True}
        result["changed"] = True
        argv = [_tool("luserdel" if local else "userdel")]
        if c.boolean(args.get("force", False)) and not local:
            argv.append("-f")
        if c.boolean(args.get("remove", False)):
            argv.append("-r")
        _output(result, _run(ctx, argv + [name], "userdel", name))
        result["force"] = c.boolean(args.get("force", False))
        result["remove"] = c.boolean(args.get("remove", False))
        return result

    group = args.get("group")
    create_home = c.boolean(c.pop_arg(args, ("create_home", "createhome"), True))
    if _exists(name, local):
        ran = _modify(ctx, args, name, local, groups, append, expires, password_lock, opts)
        result["append"] = append
        result["move_home"] = c.boolean(args.get("move_home", False))
    else:
        if ctx.check_mode:  # ansible-core's user exits with changed alone here
            return {"changed": True}
        ran = _create(ctx, args, name, local, group, groups, create_home, expires, password_lock, opts)
        result.update({"system": c.boolean(args.get("system", False)), "create_home": create_home})
    if args.get("password") is not None:
        result["password"] = "NOT_LOGGING_PASSWORD"
    if ran is not None:
        result["changed"] = True
        _output(result, ran)
    _home_ensured(ctx, _describe(result, name, groups), name, create_home, args.get("skeleton"))
    if c.boolean(args.get("generate_ssh_key", False), "generate_ssh_key"):
        _ssh_key(ctx, args, result, name, opts["ssh_key_bits"] or 0)
    _password_expiry(ctx, result, name, opts)
    return result


def _run(ctx, argv, what, name=None):
    """Run a shadow-utils command; a failure fails the task with ansible-core's fields."""
    rc, out, err = ctx.run_command(argv)
    if rc != 0:
        extra = {"name": name} if name is not None else {}
        c.fail(err or f"{what} failed", rc=rc, **extra)
    return rc, out, err


def _create(ctx, args, name, local, group, groups, create_home, expires, password_lock, opts):
    """useradd (luseradd and its lchage/lgroupmod steps with ``local``) with ansible-core's
    arguments in its order; the commands' joined (rc, out, err)."""
    if local:  # looked for first, as ansible-core does
        lgroupmod, lchage = _tool("lgroupmod"), _tool("lchage")
    argv = [_tool("luseradd" if local else "useradd")]
    if args.get("uid") is not None:
        argv += ["-u", str(args["uid"])]
        if c.boolean(args.get("non_unique", False)):
            argv.append("-o")
    if args.get("seuser") is not None:
        argv += ["-Z", str(args["seuser"])]
    if group is not None:
        if not _group_exists(group):
            c.fail(f"Group {group} does not exist")
        argv += ["-g", str(group)]
    elif _group_exists(name):
        argv.append("-n" if local else "-N")  # useradd would fail creating the user group
    for g in groups or []:
        if not _group_exists(g):
            c.fail(f"Group {g} does not exist")
    if groups and not local:
        argv += ["-G", ",".join(groups)]
    if args.get("comment") is not None:
        argv += ["-c", str(args["comment"])]
    if args.get("home") is not None:
        argv += ["-d", str(args["home"])]
    if args.get("shell") is not None:
        argv += ["-s", str(args["shell"])]
    if expires is not None and not local:
        argv += ["-e", _expires(expires)]
    if opts["password_expire_account_disable"] is not None:
        argv += ["-f", str(opts["password_expire_account_disable"])]
    if args.get("password") is not None:
        argv += ["-p", ("!" if password_lock else "") + str(args["password"])]
    if create_home:
        if not local:
            argv.append("-m")
        if args.get("skeleton") is not None:
            argv += ["-k", str(args["skeleton"])]
        if args.get("umask") is not None:
            argv += ["-K", "UMASK=" + str(args["umask"])]
    else:
        argv.append("-M")
    if c.boolean(args.get("system", False)):
        argv.append("-r")
    if opts["uid_min"] is not None:
        argv += ["-K", f"UID_MIN={opts['uid_min']}"]
    if opts["uid_max"] is not None:
        argv += ["-K", f"UID_MAX={opts['uid_max']}"]
    rc, out, err = _run(ctx, argv + [name], "useradd", name)
    if not local:
        return rc, out, err
    if expires is not None:
        days = -1 if expires < time.gmtime(0) else int(float(args["expires"])) // 86400
        rc, more, errs = _run(ctx, [lchage, "-E", str(days), name], "lchage", name)
        out, err = out + more, err + errs
    for g in groups or []:
        rc, more, errs = _run(ctx, [lgroupmod, "-M", name, g], "lgroupmod", name)
        out, err = out + more, err + errs
    return rc, out, err


def _modify(ctx, args, name, local, groups, append, expires, password_lock, opts):
    """usermod (lusermod, lchage, lgroupmod with ``local``) with what differs, as ansible-core's
    modify_user_usermod decides it; None when nothing does."""
    if local:  # looked for first, as ansible-core does, whether or not they are needed
        lgroupmod, lchage = _tool("lgroupmod"), _tool("lchage")
    command = _tool("lusermod" if local else "usermod")
    argv = []
    current = pwd.getpwnam(name)
    add, remove, days = set(), set(), None
    if args.get("uid") is not None and int(args["uid"]) != current.pw_uid:
        argv += ["-u", str(args["uid"])]
        if c.boolean(args.get("non_unique", False)):
            argv.append("-o")
    group = args.get("group")
    if group is not None:
        if not _group_exists(group):
            c.fail(f"Group {group} does not exist")
        entry = grp.getgrgid(int(group)) if str(group).isdigit() else grp.getgrnam(str(group))
        if entry.gr_gid != current.pw_gid:
            argv += ["-g", str(entry.gr_gid)]
    if groups is not None:
        # as ansible-core compares them: the groups that list the account as a member (its
        # primary group too, when it does) against every group named
        have = set(g.gr_name for g in grp.getgrall() if name in g.gr_mem)
        for g in groups:
            if not _group_exists(g):
                c.fail(f"Group {g} does not exist")
        want = set(g if not g.isdigit() else grp.getgrgid(int(g)).gr_name for g in groups)
        needed = bool(have) and not append if not groups else bool(want ^ have) and (not append or bool(want - have))
        if needed and local:
            add, remove = want - have, (set() if append else have - want)
        elif needed:
            argv += (["-a"] if append else []) + ["-G", ",".join(sorted(want))]
    if args.get("comment") is not None and str(args["comment"]) != current.pw_gecos:
        argv += ["-c", str(args["comment"])]
    if args.get("home") is not None and str(args["home"]) != current.pw_dir:
        argv += ["-d", str(args["home"])]
        if c.boolean(args.get("move_home", False)):
            argv.append("-m")
    if args.get("shell") is not None and str(args["shell"]) != current.pw_shell:
        argv += ["-s", str(args["shell"])]
    if expires is not None:
        changes = _expiry_changes(name, expires)
        if changes and local:
            days = -1 if expires < time.gmtime(0) else int(float(args["expires"])) // 86400
        else:
            argv += changes
    if opts["password_expire_account_disable"] is not None:
        argv += ["-f", str(opts["password_expire_account_disable"])]
    hashed = _password_field(name)
    if password_lock and not hashed.startswith("!"):
        argv.append("-L")
    elif password_lock is False and hashed.startswith("!"):
        argv.append("-U")  # usermod refuses to unlock an account without a password: changed anyway
    password = args.get("password")
    if (args.get("update_password") or "always") == "always" and password is not None \
            and hashed.lstrip("!") != str(password).lstrip("!"):
        argv = [a for a in argv if a not in ("-U", "-L")]
        argv += ["-p", ("!" if password_lock else "") + str(password)]
    ran = None
    if argv:
        ran = (0, "", "") if ctx.check_mode else _run(ctx, [command] + argv + [name], "usermod", name)
    if not local:
        return ran
    out, err = (ran[1], ran[2]) if ran else ("", "")
    steps = ([[lchage, "-E", str(days), name]] if days is not None else []) \
        + [[lgroupmod, "-M", name, g] for g in sorted(add)] \
        + [[lgroupmod, "-m", name, g] for g in sorted(remove)]
    for step in steps:
        rc, more, errs = (0, "", "") if ctx.check_mode else _run(ctx, step, step[0], name)
        ran, out, err = (rc, out + more, err + errs), out + more, err + errs
    return ran


def _ssh_key(ctx, args, result, name, bits):
    """``generate_ssh_key``: ansible-core's ssh_key_gen, then the key's fingerprint, path and
    public half on the result (in check mode too, as far as they exist)."""
    entry = pwd.getpwnam(name)
    key_type = str(args.get("ssh_key_type") or "rsa")
    key_file = c.expand(args["ssh_key_file"]) if args.get("ssh_key_file") else os.path.join(".ssh", "id_" + key_type)
    if not os.path.isabs(key_file):
        if not os.path.exists(entry.pw_dir) and not ctx.check_mode:
            c.fail(f"User {name} home directory does not exist", name=name, rc=1)
        key_file = os.path.join(entry.pw_dir, key_file)
    rc, out, err = _ssh_keygen(ctx, args, entry, key_type, key_file, bits)
    if rc is not None and rc != 0:
        c.fail(err, name=name, rc=rc)
    if rc == 0:
        result["changed"] = True
    if os.path.exists(key_file):
        rc, out, err = ctx.run_command([c.get_bin_path("ssh-keygen"), "-l", "-f", key_file])
        result["ssh_fingerprint"] = (out if rc == 0 else err).strip()
    else:  # ansible-core's message goes to its "out", and it shows "err": empty
        result["ssh_fingerprint"] = ""
    result["ssh_key_file"] = key_file
    try:
        with open(key_file + ".pub") as handle:
            result["ssh_public_key"] = handle.read().strip()
    except OSError:
        result["ssh_public_key"] = None


def _ssh_keygen(ctx, args, entry, key_type, key_file, bits):
    """ssh-keygen as ansible-core's ssh_key_gen runs it: (rc, out, err), rc None when an
    existing key is kept (with its warning)."""
    pub_file = key_file + ".pub"
    force = c.boolean(args.get("force", False))
    ssh_dir = os.path.dirname(key_file)
    if not os.path.exists(ssh_dir):
        if ctx.check_mode:
            return 0, "", ""
        try:
            os.mkdir(ssh_dir, 0o700)
            os.chown(ssh_dir, entry.pw_uid, entry.pw_gid)
        except OSError as exc:
            return 1, "", f"Failed to create {ssh_dir}: {exc}"
    overwrite = None
    if os.path.exists(key_file):
        if not force:
            ctx.warn(f'Found existing ssh key private file "{key_file}", no force, so skipping ssh-keygen generation')
            return None, 'Key already exists, use "force: yes" to overwrite', ""
        ctx.warn(f'Overwriting existing ssh key private file "{key_file}"')
        overwrite = "y\n"
    if os.path.exists(pub_file):
        if not force:
            ctx.warn(f'Found existing ssh key public file "{pub_file}", no force, so skipping ssh-keygen generation')
            return None, 'Public key already exists, use "force: yes" to overwrite', ""
        ctx.warn(f'Overwriting existing ssh key public file "{pub_file}"')
        if not ctx.check_mode:
            os.unlink(pub_file)
    argv = [c.get_bin_path("ssh-keygen"), "-t", key_type]
    if bits > 0:
        argv += ["-b", str(bits)]
    argv += ["-C", str(args.get("ssh_key_comment") or f"ansible-generated on {socket.gethostname()}"), "-f", key_file]
    if ctx.check_mode:
        return 0, "", ""
    passphrase = args.get("ssh_key_passphrase")
    if passphrase is not None:
        rc, out, err = _keygen_with_passphrase(argv, str(passphrase))
    else:
        rc, out, err = ctx.run_command(argv + ["-N", ""], data=overwrite)
    if rc == 0:
        os.chown(key_file, entry.pw_uid, entry.pw_gid)
        os.chown(pub_file, entry.pw_uid, entry.pw_gid)
    return rc, out, err


def _keygen_with_passphrase(argv, passphrase):
    """ssh-keygen answering its passphrase prompts on a terminal, as ansible-core does: the
    passphrase never appears in an argument list."""
    import pty
    import select
    import subprocess

    fds = [pty.openpty() for _ in range(3)]  # (master, slave) for stdin, stdout, stderr
    env = dict(os.environ, LC_ALL="C")
    try:
        proc = subprocess.Popen(argv, stdin=fds[0][1], stdout=fds[1][1], stderr=fds[2][1],
                                start_new_session=True, env=env)
        for _master, slave in fds:
            os.close(slave)
        buffers = {fds[1][0]: b"", fds[2][0]: b""}
        prompt = b"Enter passphrase"
        deadline = time.monotonic() + 900
        while proc.poll() is None:
            if time.monotonic() > deadline:
                proc.kill()
                return 1, "", "Timeout after 900 while reading passphrase for SSH key"
            for fd in select.select(list(buffers), [], [], 1)[0]:
                try:
                    buffers[fd] += os.read(fd, 10240)
                except OSError:  # the terminal closed with the process
                    continue
                if prompt in buffers[fd]:
                    os.write(fds[0][0], passphrase.encode() + b"\r")
                    buffers[fd] = buffers[fd].replace(prompt, b"", 1)
                    prompt = b"Enter same passphrase again"
                if any(b"Overwrite (y/n)?" in b for b in buffers.values()):
                    proc.kill()
                    return None, "Key already exists", ""
        return proc.returncode, buffers[fds[1][0]].decode(errors="replace"), buffers[fds[2][0]].decode(errors="replace")
    except OSError as exc:
        return 1, "", str(exc)
    finally:
        for master, _slave in fds:
            os.close(master)


def _password_expiry(ctx, result, name, opts):
    """``password_expire_min``/``max``/``warn``: chage with those that differ from the shadow
    entry, as ansible-core's set_password_expire."""
    argv = []
    for option, flag, index in (("password_expire_min", "-m", 3), ("password_expire_max", "-M", 4),
                                ("password_expire_warn", "-W", 5)):
        if opts[option] is not None and (_shadow_entry(name) is None or opts[option] != _shadow_number(name, index)):
            argv += [flag, str(opts[option])]
    if not argv:
        return
    if not ctx.check_mode:
        _run(ctx, [_tool("chage")] + argv + [name], "chage", name)
    result["changed"] = True


def _home_ensured(ctx, result, name, create_home, skeleton):
    """ansible-core's "missing homedir" step: a present account whose home directory is missing
    gets it (from the skeleton, its mode from login.defs, owned by the account) while
    ``create_home`` is true (its default), and the task is changed."""
    home = result.get("home")
    if not create_home or not home or os.path.exists(home):
        return result
    result["changed"] = True
    if ctx.check_mode:
        return result
    skeleton = skeleton or "/etc/skel"
    try:
        if os.path.exists(skeleton) and skeleton != os.devnull:
            shutil.copytree(skeleton, home, symlinks=True)
        else:
            os.makedirs(home)
    except OSError as exc:
        c.fail(str(exc))
    if os.path.exists("/etc/login.defs"):
        os.chmod(home, _home_mode())
    for root, dirs, files in os.walk(home):
        for entry in [root] + [os.path.join(root, n) for n in dirs + files]:
            os.lchown(entry, result["uid"], result["group"])
    return result


def _home_mode():
    """A new home's mode as ansible-core reads /etc/login.defs: HOME_MODE, else from UMASK, else 0755."""
    mode = 0o755
    with open("/etc/login.defs") as fh:
        for line in fh:
            found = re.match(r"^HOME_MODE\s+(\d+)$", line)
            if found:
                return int(found.group(1), 8)
            found = re.match(r"^UMASK\s+(\d+)$", line)
            if found:
                mode = 0o777 & ~int(found.group(1), 8)
    return mode


def _expires(when):
    """useradd's ``-e`` for a time.struct_time: empty (never) before the epoch."""
    if when < time.gmtime(0):
        return ""
    return time.strftime("%Y-%m-%d", when)


def _describe(result, name, groups):
    """What ansible-core's user adds to a present account's result: its passwd entry (as it is
    now: in check mode, before the change) and ``groups`` as given, when given."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return result
    result.update({"uid": entry.pw_uid, "group": entry.pw_gid, "comment": entry.pw_gecos,
                   "home": entry.pw_dir, "shell": entry.pw_shell})
    if groups is not None:
        result["groups"] = ",".join(groups)
    return result


@c.module
def group(ctx, args):
    """ansible.builtin.group (Linux shadow-utils)."""
    c.check_unknown(args, GROUP_ARGS, "group")
    name = args.get("name")
    if not name:
        c.fail("missing required arguments: name")
    state = args.get("state") or "present"
    if state not in ("present", "absent"):
        c.fail(f"value of state must be one of: absent, present, got: {state}")
    system = c.boolean(args.get("system", False))
    gid = args.get("gid")
    try:
        current = grp.getgrnam(name)
    except KeyError:
        current = None
    result = {"name": name, "state": state, "changed": False}
    if state == "absent":
        if current is not None:
            result["changed"] = True
            if not ctx.check_mode:
                argv = [_tool("groupdel")]
                if c.boolean(args.get("force", False)):
                    argv.append("-f")
                _run(ctx, argv + [name], "groupdel")
        return result
    if current is None:
        result["changed"] = True
        if not ctx.check_mode:
            argv = [_tool("groupadd")]
            if gid is not None:
                argv += ["-g", str(gid)]
                if c.boolean(args.get("non_unique", False)):
                    argv.append("-o")
            if system:
                argv.append("-r")
            _run(ctx, argv + [name], "groupadd")
    elif gid is not None and int(gid) != current.gr_gid:
        result["changed"] = True
        if not ctx.check_mode:
            argv = [_tool("groupmod"), "-g", str(gid)]
            if c.boolean(args.get("non_unique", False)):
                argv.append("-o")
            _run(ctx, argv + [name], "groupmod")
    result["system"] = system
    try:
        result["gid"] = grp.getgrnam(name).gr_gid
    except KeyError:
        if gid is not None:
            result["gid"] = int(gid)
    return result


MODULES = {"user": user, "group": group}
