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
import time

from . import _common as c

USER_ARGS = {"name", "user", "state", "uid", "group", "groups", "append", "comment", "home",
             "shell", "system", "create_home", "createhome", "move_home", "password", "remove",
             "force", "non_unique", "update_password", "password_lock", "expires", "local",
             "skeleton", "umask", "hidden", "seuser", "generate_ssh_key", "ssh_key_bits",
             "ssh_key_comment", "ssh_key_file", "ssh_key_passphrase", "ssh_key_type",
             "password_expire_max", "password_expire_min", "password_expire_warn",
             "authorization", "profile", "role", "login_class", "uid_min", "uid_max"}
GROUP_ARGS = {"name", "gid", "state", "system", "non_unique", "local", "force", "gid_min",
              "gid_max"}


def _tool(name):
    path = shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.path.exists(p)), None)
    if path is None:
        c.fail(f"Failed to find required executable \"{name}\"; hint: install the shadow "
               "utilities (passwd package) on this host")
    return path


def _run(ctx, argv, what):
    rc, out, err = ctx.run_command(argv)
    if rc != 0:
        c.fail(err.strip() or f"{what} failed", rc=rc, cmd=" ".join(argv), stdout=out,
               stderr=err)
    return rc, out, err


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


def _expiry_changes(name, when):
    """usermod's ``-e`` arguments that bring the account's expiry date to ``when``, as
    ansible-core compares them (the day, in UTC; before the epoch: no expiry)."""
    fields = _shadow_entry(name) or []
    try:
        current = int(fields[7] if len(fields) > 7 and fields[7] else "0")
    except ValueError:
        current = 0
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


@c.module
def user(ctx, args):
    """ansible.builtin.user (Linux shadow-utils)."""
    c.check_unknown(args, USER_ARGS, "user")
    c.refuse(args, "user", dict(dict.fromkeys(("umask", "hidden", "password_expire_max", "password_expire_min",
                                               "password_expire_warn", "authorization", "profile", "role",
                                               "login_class", "uid_min", "uid_max")), local=False))
    name = c.pop_arg(args, ("name", "user"))
    if not name:
        c.fail("missing required arguments: name")
    for unsupported in ("generate_ssh_key", "password_lock"):
        if c.boolean(args.get(unsupported, False)):
            c.fail(f"user: {unsupported} is not supported by this runtime; hint: use a command task")
    state = args.get("state") or "present"
    if state not in ("present", "absent"):
        c.fail(f"value of state must be one of: absent, present, got: {state}")
    expires = _expiry(args.get("expires"))
    if args.get("password") is not None:
        _warn_unhashed(ctx, str(args["password"]))
    try:
        current = pwd.getpwnam(name)
    except KeyError:
        current = None
    result = {"name": name, "state": state, "changed": False}
    if state == "absent":
        if current is None:
            return result
        if ctx.check_mode:  # ansible-core's user exits with changed alone here
            return {"changed": True}
        result["changed"] = True
        if not ctx.check_mode:
            argv = [_tool("userdel")]
            if c.boolean(args.get("force", False)):
                argv.append("-f")
            if c.boolean(args.get("remove", False)):
                argv.append("-r")
            _output(result, _run(ctx, argv + [name], "userdel"))
        result["force"] = c.boolean(args.get("force", False))
        result["remove"] = c.boolean(args.get("remove", False))
        return result

    group = args.get("group")
    if group is not None and not _group_exists(group):
        c.fail(f"Group {group} does not exist")
    groups = _groups_list(args.get("groups"))
    for g in groups or []:
        if not _group_exists(g):
            c.fail(f"Group {g} does not exist")
    append = c.boolean(args.get("append", False))
    create_home = c.boolean(c.pop_arg(args, ("create_home", "createhome"), True))
    password = args.get("password")
    update_password = args.get("update_password") or "always"

    if current is None:
        if ctx.check_mode:  # ansible-core's user exits with changed alone here
            return {"changed": True}
        result["changed"] = True
        if not ctx.check_mode:
            argv = [_tool("useradd")]
            if args.get("uid") is not None:
                argv += ["-u", str(args["uid"])]
                if c.boolean(args.get("non_unique", False)):
                    argv.append("-o")
            if group is not None:
                argv += ["-g", str(group)]
            elif _group_exists(name):
                argv.append("-N")  # as Ansible: useradd would fail creating the user group
            if groups:
                argv += ["-G", ",".join(groups)]
            if args.get("comment") is not None:
                argv += ["-c", str(args["comment"])]
            if args.get("home") is not None:
                argv += ["-d", str(args["home"])]
            if args.get("shell") is not None:
                argv += ["-s", str(args["shell"])]
            if expires is not None:
                argv += ["-e", _expires(expires)]
            if password is not None:
                argv += ["-p", str(password)]
            if c.boolean(args.get("system", False)):
                argv.append("-r")
            if create_home:
                argv.append("-m")
                if args.get("skeleton"):
                    argv += ["-k", str(args["skeleton"])]
            else:
                argv.append("-M")
            _output(result, _run(ctx, argv + [name], "useradd"))
        result.update({"system": c.boolean(args.get("system", False)),
                       "create_home": create_home})
        if password is not None:
            result["password"] = "NOT_LOGGING_PASSWORD"
        return _home_ensured(ctx, _describe(result, name, groups), name, create_home, args.get("skeleton"))

    argv = []
    if args.get("uid") is not None and int(args["uid"]) != current.pw_uid:
        argv += ["-u", str(args["uid"])]
        if c.boolean(args.get("non_unique", False)):
            argv.append("-o")
    if group is not None:
        gid = int(group) if str(group).isdigit() else grp.getgrnam(str(group)).gr_gid
        if gid != current.pw_gid:
            argv += ["-g", str(group)]
    if groups is not None:
        # as ansible-core compares them: the groups that list the account as a member (its
        # primary group too, when it does) against every group named
        have = set(g.gr_name for g in grp.getgrall() if name in g.gr_mem)
        want = set(g if not g.isdigit() else grp.getgrgid(int(g)).gr_name for g in groups)
        if append:
            if not want <= have:
                argv += ["-a", "-G", ",".join(sorted(want))]
        elif want != have:
            argv += ["-G", ",".join(sorted(want))]
    if args.get("comment") is not None and str(args["comment"]) != current.pw_gecos:
        argv += ["-c", str(args["comment"])]
    if args.get("home") is not None and str(args["home"]) != current.pw_dir:
        argv += ["-d", str(args["home"])]
        if c.boolean(args.get("move_home", False)):
            argv.append("-m")
    if args.get("shell") is not None and str(args["shell"]) != current.pw_shell:
        argv += ["-s", str(args["shell"])]
    if expires is not None:
        argv += _expiry_changes(name, expires)
    if password is not None and update_password == "always":
        if _shadow_hash(name) != str(password):
            argv += ["-p", str(password)]
    if argv:
        result["changed"] = True
        if not ctx.check_mode:
            _output(result, _run(ctx, [_tool("usermod")] + argv + [name], "usermod"))
    result["append"] = append
    result["move_home"] = c.boolean(args.get("move_home", False))
    if password is not None:
        result["password"] = "NOT_LOGGING_PASSWORD"
    return _home_ensured(ctx, _describe(result, name, groups), name, create_home, args.get("skeleton"))


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
    c.refuse(args, "group", {"gid_min": None, "gid_max": None, "local": False})
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
