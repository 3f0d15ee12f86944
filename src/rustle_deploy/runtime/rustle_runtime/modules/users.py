"""Module family for accounts: user and group, through useradd/usermod/userdel/groupadd/...

Standard library only; Python 3.8 syntax. The current state comes from ``pwd``/``grp`` (and
``/etc/shadow`` for password hashes); changes are made with the shadow-utils commands, as
ansible-core's Linux implementations do. Check mode computes the same ``changed`` without
running them.
"""

import grp
import os
import pwd
import shutil

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


def _shadow_hash(name):
    try:
        with open("/etc/shadow") as handle:
            for line in handle:
                fields = line.split(":")
                if fields[0] == name:
                    return fields[1]
    except OSError:
        return None
    return None


def _user_groups(name, primary_gid):
    return sorted(g.gr_name for g in grp.getgrall()
                  if name in g.gr_mem and g.gr_gid != primary_gid)


@c.module
def user(ctx, args):
    """ansible.builtin.user (Linux shadow-utils)."""
    c.check_unknown(args, USER_ARGS, "user")
    name = c.pop_arg(args, ("name", "user"))
    if not name:
        c.fail("missing required arguments: name")
    for unsupported in ("generate_ssh_key", "password_lock"):
        if c.boolean(args.get(unsupported, False)):
            c.fail(f"user: {unsupported} is not supported by this runtime; hint: use a command task")
    state = args.get("state") or "present"
    if state not in ("present", "absent"):
        c.fail(f"value of state must be one of: absent, present, got: {state}")
    try:
        current = pwd.getpwnam(name)
    except KeyError:
        current = None
    result = {"name": name, "state": state, "changed": False}
    if state == "absent":
        if current is None:
            return result
        result["changed"] = True
        if not ctx.check_mode:
            argv = [_tool("userdel")]
            if c.boolean(args.get("force", False)):
                argv.append("-f")
            if c.boolean(args.get("remove", False)):
                argv.append("-r")
            _run(ctx, argv + [name], "userdel")
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
            if args.get("expires") is not None:
                argv += ["-e", _expires(args["expires"])]
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
            _run(ctx, argv + [name], "useradd")
        result.update({"system": c.boolean(args.get("system", False)),
                       "create_home": create_home})
        return _describe(result, name)

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
        have = set(_user_groups(name, current.pw_gid))
        primary = grp.getgrgid(current.pw_gid).gr_name if _group_exists(current.pw_gid) else ""
        want = set(g if not g.isdigit() else grp.getgrgid(int(g)).gr_name for g in groups)
        want.discard(primary)
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
    if password is not None and update_password == "always":
        if _shadow_hash(name) != str(password):
            argv += ["-p", str(password)]
    if argv:
        result["changed"] = True
        if not ctx.check_mode:
            _run(ctx, [_tool("usermod")] + argv + [name], "usermod")
    if password is not None:
        result["password"] = "NOT_LOGGING_PASSWORD"
    if result["changed"] and ctx.check_mode:
        return result
    return _describe(result, name)


def _expires(value):
    import time

    value = float(value)
    if value < 0:
        return ""
    return time.strftime("%Y-%m-%d", time.gmtime(value))


def _describe(result, name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return result
    result.update({"uid": entry.pw_uid, "group": entry.pw_gid, "comment": entry.pw_gecos,
                   "home": entry.pw_dir, "shell": entry.pw_shell,
                   "groups": ",".join(_user_groups(name, entry.pw_gid))})
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
