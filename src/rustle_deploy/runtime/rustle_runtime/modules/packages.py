"""Module family for packages: package, apt, dnf, yum, apk (through the package tools' CLIs).

Standard library only; Python 3.8 syntax. ``apt`` asks ``dpkg-query`` what is installed and
``apt-cache policy`` what is available, and in check mode reports what would change without
running ``apt-get``. ``dnf``/``yum`` use ``rpm -q``; ``apk`` uses ``apk info -e``. A tool that
is missing on the host is an honest failure naming it.
"""

import os
import random
import shutil
import time

from . import _common as c

APT_ARGS = {"name", "pkg", "package", "state", "update_cache", "update-cache",
            "cache_valid_time", "purge", "autoremove", "install_recommends", "force",
            "allow_unauthenticated", "default_release", "dpkg_options", "only_upgrade",
            "update_cache_retries", "update_cache_retry_max_delay", "lock_timeout",
            "allow_downgrade", "allow_change_held_packages", "force_apt_get", "clean",
            "fail_on_autoremove", "upgrade", "deb", "policy_rc_d", "autoclean",
            "allow-unauthenticated"}
PRESENT = ("present", "installed")
ABSENT = ("absent", "removed")
DPKG_OPTIONS = "force-confdef,force-confold"


def _names(args):
    names = c.pop_arg(args, ("name", "pkg", "package"))
    if names is None:
        return []
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",")]
    return [str(n).strip() for n in names if str(n).strip()]


def _out(ctx, argv, env=None):
    rc, out, err = ctx.run_command(argv, env=env)
    return rc, out, err


def _need(tool, hint):
    path = shutil.which(tool)
    if path is None:
        c.fail("Could not find {} on this host (PATH={}); hint: {}".format(tool, os.environ.get("PATH", ""), hint))
    return path


# ----------------------------------------------------------------------------------------- apt

def _split_version(spec):
    if "=" in spec:
        name, version = spec.split("=", 1)
        return name, version
    return spec, None


def _dpkg_installed(ctx, name):
    """(installed?, version) for ``name`` according to dpkg."""
    rc, out, _ = _out(ctx, ["dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Version}\n", name])
    if rc != 0:
        return False, None
    for line in out.splitlines():
        status, _, version = line.partition("\t")
        if status.startswith("ii") or status.startswith("hi"):
            return True, version
    return False, None


def _apt_policy(ctx, name):
    """(installed, candidate) versions as ``apt-cache policy`` prints them; None for none."""
    rc, out, _ = _out(ctx, ["apt-cache", "policy", name])
    installed = candidate = None
    if rc == 0:
        for line in out.splitlines():
            line = line.strip()
            if line.startswith("Installed:"):
                installed = line.split(":", 1)[1].strip()
            elif line.startswith("Candidate:"):
                candidate = line.split(":", 1)[1].strip()
    none = ("(none)", "")
    return (None if installed in none else installed), (None if candidate in none else candidate)


def _apt_cache_time():
    stamp = "/var/lib/apt/periodic/update-success-stamp"
    for path in (stamp, "/var/lib/apt/lists"):
        if os.path.exists(path):
            return os.stat(path).st_mtime
    return 0.0


def _apt_env():
    return {"DEBIAN_FRONTEND": "noninteractive", "DEBCONF_NONINTERACTIVE_SEEN": "true"}


def _int_arg(args, name, default):
    value = args.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        c.fail(f"argument '{name}' is of type {type(value).__name__} and we were unable to convert "
               f"to int: {value!r} cannot be converted to an int")


def _apt_get(args, *words):
    """``apt-get -y`` with the options every changing call takes, as ansible-core's apt builds it:
    the dpkg options, apt's own lock wait (``lock_timeout``) and ``force`` (``--force-yes``)."""
    argv = ["apt-get", "-y", "-q"]
    for opt in str(args.get("dpkg_options") or DPKG_OPTIONS).split(","):
        argv += ["-o", f"Dpkg::Options::=--{opt.strip()}"]
    argv += ["-o", "DPkg::Lock::Timeout={}".format(_int_arg(args, "lock_timeout", 60))]
    if c.boolean(args.get("force", False)):
        argv.append("--force-yes")
    return argv + list(words)


def _apt_update(ctx, args):
    """``apt-get update``, retried with ansible-core's backoff (``update_cache_retries`` tries,
    2**n seconds plus up to one random, at most ``update_cache_retry_max_delay``)."""
    retries = _int_arg(args, "update_cache_retries", 5)
    max_delay = _int_arg(args, "update_cache_retry_max_delay", 12)
    randomize = random.randrange(1000) / 1000.0
    err = ""
    for retry in range(retries):
        rc, out, err = _out(ctx, ["apt-get", "update", "-q"], env=_apt_env())
        if rc == 0:
            return
        err = (err or out).strip()
        if retry + 1 < retries:
            time.sleep(min(2 ** retry, max_delay) + randomize)
    c.fail(f"Failed to update apt cache after {retries} retries: {err or 'unknown reason'}")


@c.module
def apt(ctx, args):
    """ansible.builtin.apt: install, remove or upgrade packages; refresh the cache."""
    c.check_unknown(args, APT_ARGS, "apt")
    # force_apt_get is honoured by construction: this apt always runs apt-get (ansible-core runs
    # aptitude only for ``upgrade``, which is refused below)
    c.refuse(args, "apt", {"policy_rc_d": None},
             "this runtime does not write /usr/sbin/policy-rc.d; remove the option, or run apt "
             "with ansible-core's code: RUSTLE_BRIDGE_MODULES=apt (docs/bridge.md)")
    for name, default in (("lock_timeout", 60), ("update_cache_retries", 5),
                          ("update_cache_retry_max_delay", 12)):
        _int_arg(args, name, default)  # a bad value fails before anything runs, as Ansible's spec
    if args.get("allow-unauthenticated") is not None:
        args.setdefault("allow_unauthenticated", args.pop("allow-unauthenticated"))
    for unsupported in ("deb", "upgrade"):
        if args.get(unsupported) not in (None, False, "no"):
            c.fail(f"apt: '{unsupported}' is not supported by this runtime; hint: use a command task")
    _need("dpkg-query", "apt works only on Debian-family hosts; use the package module")
    names = _names(args)
    state = args.get("state", "present")
    if state not in PRESENT + ABSENT + ("latest", "build-dep", "fixed"):
        c.fail("value of state must be one of: absent, build-dep, latest, present, fixed, "
               f"got: {state}")
    if state in ("build-dep", "fixed"):
        c.fail(f"apt: state={state} is not supported by this runtime")
    result = {"changed": False}
    update = c.boolean(c.pop_arg(args, ("update_cache", "update-cache"), False))
    valid = int(args.get("cache_valid_time") or 0)
    if update or valid:
        before = _apt_cache_time()
        updated = False
        if before + valid < time.time() or (update and not valid):
            if not ctx.check_mode:
                _need("apt-get", "install apt")
                _apt_update(ctx, args)
            updated = ctx.check_mode or _apt_cache_time() != before
        result.update({"cache_updated": updated, "cache_update_time": int(_apt_cache_time())})
        if not names:
            result["changed"] = updated
            return result
    if not names:
        if any(c.boolean(args.get(k, False)) for k in ("autoremove", "autoclean", "clean")):
            return _apt_housekeeping(ctx, args, result)
        c.fail("one of the following is required: name, update_cache, upgrade, deb, "
               "autoremove, clean")

    todo = []
    for spec in names:
        name, version = _split_version(spec)
        installed, installed_version = _dpkg_installed(ctx, name)
        if state in PRESENT:
            if not installed or (version and not installed_version.startswith(version)):
                _, candidate = _apt_policy(ctx, name)
                if candidate is None:
                    c.fail(f"No package matching '{name}' is available")
                todo.append(spec)
        elif state == "latest":
            if version:
                c.fail(f"version number inconsistent with state=latest: {spec}")
            _, candidate = _apt_policy(ctx, name)
            if candidate is None and not installed:
                c.fail(f"No package matching '{name}' is available")
            if not installed or (candidate and candidate != installed_version):
                todo.append(name)
        else:
            if installed and (not version or installed_version.startswith(version)):
                todo.append(name)
    if not todo:
        return result
    result["changed"] = True
    verb = "remove" if state in ABSENT else "install"
    diff = {"prepared": "{}: {}".format(verb, " ".join(todo))}
    if ctx.diff_mode:
        result["diff"] = diff
    if ctx.check_mode:
        result["msg"] = "would {}: {}".format(verb, ", ".join(todo))
        return result
    _need("apt-get", "install apt")
    argv = _apt_get(args)
    if c.boolean(args.get("allow_change_held_packages", False)):
        argv.append("--allow-change-held-packages")
    if state in ABSENT:
        argv.append("remove")
        if c.boolean(args.get("purge", False)):
            argv.append("--purge")
        if c.boolean(args.get("autoremove", False)):
            argv.append("--auto-remove")
    else:
        if args.get("install_recommends") is not None:
            argv.append("--install-recommends" if c.boolean(args["install_recommends"])
                        else "--no-install-recommends")
        if args.get("default_release"):
            argv += ["-t", str(args["default_release"])]
        if c.boolean(args.get("allow_downgrade", False)):
            argv.append("--allow-downgrades")
        if c.boolean(args.get("only_upgrade", False)):
            argv.append("--only-upgrade")
        if c.boolean(args.get("fail_on_autoremove", False)):
            argv.append("--no-remove")
        if c.boolean(args.get("allow_unauthenticated", False)):
            argv.append("--allow-unauthenticated")
        argv.append("install")
    rc, out, err = _out(ctx, argv + todo, env=_apt_env())
    result.update({"stdout": out, "stderr": err, "rc": rc})
    if rc != 0:
        c.fail("'{}' failed: {}".format(" ".join(argv + todo), err.strip()), **result)
    return result


def _apt_housekeeping(ctx, args, result):
    if c.boolean(args.get("autoclean", False)):
        # as ansible-core: ``apt-get autoclean`` (simulated in check mode), changed when it
        # deletes an archive
        purge = ["--purge"] if c.boolean(args.get("purge", False)) else []
        simulate = ["--simulate"] if ctx.check_mode else []
        rc, out, err = _out(ctx, _apt_get(args, *purge, "autoclean", *simulate), env=_apt_env())
        if rc != 0:
            c.fail(f"'apt-get autoclean' failed: {err}", rc=rc, stdout=out, stderr=err)
        result["changed"] = result["changed"] or "Del " in out
    if c.boolean(args.get("autoremove", False)):
        rc, out, err = _out(ctx, ["apt-get", "-s", "autoremove"], env=_apt_env())
        would = [line for line in out.splitlines() if line.startswith("Remv ")]
        if not would:
            return result
        result["changed"] = True
        if not ctx.check_mode:
            purge = ["--purge"] if c.boolean(args.get("purge", False)) else []
            rc, out, err = _out(ctx, _apt_get(args, *purge, "autoremove"), env=_apt_env())
            if rc != 0:
                c.fail(f"'apt-get autoremove' failed: {err}", rc=rc, stdout=out, stderr=err)
    if c.boolean(args.get("clean", False)) and not ctx.check_mode:
        rc, out, err = _out(ctx, ["apt-get", "clean"], env=_apt_env())
        if rc != 0:
            c.fail(f"apt-get clean failed: {err}", rc=rc, stdout=out)
    return result


# ------------------------------------------------------------------------------------- dnf/yum

RPM_ARGS = {"name", "pkg", "state", "update_cache", "enablerepo", "disablerepo",
            "disable_gpg_check", "exclude", "autoremove", "security", "bugfix", "conf_file",
            "installroot", "releasever", "allowerasing", "nobest", "use_backend", "lock_timeout",
            "update_only", "skip_broken", "install_weak_deps", "download_only", "cacheonly",
            "list", "sslverify", "validate_certs"}


# Ansible's defaults of the options this runtime does not apply (refused when given otherwise)
RPM_UNAPPLIED = {"exclude": [], "security": False, "bugfix": False, "conf_file": None,
                 "installroot": "/", "releasever": None, "allowerasing": False, "nobest": False,
                 "use_backend": "auto", "update_only": False, "skip_broken": False,
                 "install_weak_deps": True, "download_only": False, "cacheonly": False,
                 "sslverify": True, "validate_certs": True, "lock_timeout": 30}


def _rpm_installed(ctx, name):
    rc, out, _ = _out(ctx, ["rpm", "-q", "--whatprovides", name])
    return rc == 0


def _rpm_family(tool):
    @c.module
    def run(ctx, args):
        c.check_unknown(args, RPM_ARGS, tool)
        c.refuse(args, tool, RPM_UNAPPLIED)
        binary = shutil.which(tool) or (shutil.which("dnf") if tool == "yum" else None)
        if binary is None:
            c.fail(f"Could not find {tool} on this host; hint: this host's package manager is "
                   "probably not rpm-based, use the package module")
        _need("rpm", "dnf/yum need rpm")
        names = _names(args)
        if args.get("list"):
            c.fail(f"{tool}: 'list' is not supported by this runtime")
        state = args.get("state") or "present"
        if state not in PRESENT + ABSENT + ("latest",):
            c.fail("value of state must be one of: absent, installed, latest, present, "
                   f"removed, got: {state}")
        result = {"changed": False, "results": [], "rc": 0}
        if not names and not c.boolean(args.get("update_cache", False)):
            c.fail("missing required arguments: name")
        if state in PRESENT:
            todo = [n for n in names if not _rpm_installed(ctx, n)]
            verb = "install"
        elif state in ABSENT:
            todo = [n for n in names if _rpm_installed(ctx, n)]
            verb = "remove"
        else:
            todo = []
            for n in names:
                if not _rpm_installed(ctx, n):
                    todo.append(n)
                    continue
                rc, _, _ = _out(ctx, [binary, "-q", "check-update", n])
                if rc == 100:
                    todo.append(n)
            verb = "upgrade" if all(_rpm_installed(ctx, n) for n in todo) else "install"
        if not todo:
            result["msg"] = "Nothing to do"
            return result
        result["changed"] = True
        result["results"] = [f"{verb}: {n}" for n in todo]
        if ctx.check_mode:
            result["msg"] = "Check mode: No changes made, but would have if not in check mode"
            return result
        argv = [binary, "-y"]
        for repo in _list(args.get("enablerepo")):
            argv.append(f"--enablerepo={repo}")
        for repo in _list(args.get("disablerepo")):
            argv.append(f"--disablerepo={repo}")
        if c.boolean(args.get("disable_gpg_check", False)):
            argv.append("--nogpgcheck")
        if c.boolean(args.get("update_cache", False)):
            argv.append("--refresh")
        rc, out, err = _out(ctx, argv + [verb] + todo)
        result.update({"rc": rc, "stdout": out, "stderr": err})
        if rc != 0:
            c.fail(f"Failed to {verb} packages: {err.strip() or out.strip()}", **result)
        return result

    run.__name__ = tool
    return run


def _list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


# ----------------------------------------------------------------------------------------- apk

APK_ARGS = {"name", "state", "update_cache", "upgrade", "available", "repository",
            "no_cache", "world"}


def _apk_installed(ctx, name):
    rc, _, _ = _out(ctx, ["apk", "info", "-e", name])
    return rc == 0


@c.module
def apk(ctx, args):
    """community.general.apk semantics for the common cases (name, state, update_cache)."""
    c.check_unknown(args, APK_ARGS, "apk")
    c.refuse(args, "apk", {"available": False, "repository": None, "no_cache": False,
                           "world": "/etc/apk/world"})
    _need("apk", "apk exists only on Alpine hosts; use the package module")
    names = _names(args)
    state = args.get("state") or "present"
    if state not in PRESENT + ABSENT + ("latest",):
        c.fail("value of state must be one of: absent, installed, latest, present, removed, "
               f"got: {state}")
    result = {"changed": False}
    if c.boolean(args.get("update_cache", False)):
        if not ctx.check_mode:
            rc, out, err = _out(ctx, ["apk", "update"])
            if rc != 0:
                c.fail(f"could not update package db: {err}", rc=rc, stdout=out, stderr=err)
        if not names:
            result.update({"changed": True, "msg": "updated repository indexes"})
            return result
    if not names:
        c.fail("missing required arguments: name")
    if state in PRESENT:
        todo, argv = [n for n in names if not _apk_installed(ctx, n)], ["apk", "add"]
    elif state in ABSENT:
        todo, argv = [n for n in names if _apk_installed(ctx, n)], ["apk", "del"]
    else:
        rc, out, _ = _out(ctx, ["apk", "version", "-l", "<"] + names)
        outdated = {line.split("-")[0] for line in out.splitlines()[1:] if "<" in line}
        todo = [n for n in names if not _apk_installed(ctx, n) or n in outdated]
        argv = ["apk", "add", "--upgrade"]
    if not todo:
        result["msg"] = "package(s) already %s" % ("removed" if state in ABSENT else "installed")
        return result
    result["changed"] = True
    result["packages"] = todo
    if ctx.check_mode:
        return result
    rc, out, err = _out(ctx, argv + todo)
    result.update({"rc": rc, "stdout": out, "stderr": err})
    if rc != 0:
        c.fail("failed to {} {}".format(argv[1], " ".join(todo)), **result)
    return result


# ------------------------------------------------------------------------------------- package

def _detect_manager(ctx):
    try:
        mgr = (ctx.facts("ansible_pkg_mgr") or {}).get("ansible_pkg_mgr")
    except Exception:  # noqa: BLE001 - facts are a best-effort hint here
        mgr = None
    if mgr in ("apt", "dnf", "yum", "apk"):
        return mgr
    for tool, name in (("apt-get", "apt"), ("dnf", "dnf"), ("yum", "yum"), ("apk", "apk")):
        if shutil.which(tool):
            return name
    return None


@c.module
def package(ctx, args):
    """ansible.builtin.package: dispatch to the host's package manager module."""
    use = args.pop("use", "auto") or "auto"
    mgr = _detect_manager(ctx) if use == "auto" else use
    if mgr is None:
        c.fail("Could not detect which package manager to use. Try gathering facts or "
               "setting the \"use\" option.")
    impl = MODULES.get(mgr)
    if impl is None or mgr == "package":
        c.fail(f"Could not find a module for {mgr}.")
    return impl(ctx, args)


MODULES = {"package": package, "apt": apt, "dnf": _rpm_family("dnf"),
           "yum": _rpm_family("yum"), "apk": apk}
