"""The command family: ``command``, ``shell``, ``raw``, ``script`` (Ansible's parameters and results)."""

import os
import re

from ..context import ModuleFailure

# k=v options Ansible lifts out of free-form command text
_INLINE = re.compile(
    r"(?:^|\s)(chdir|creates|removes|executable|stdin|stdin_add_newline|strip_empty_ends|warn)="
    r"(\"(?:[^\"\\]|\\.)*\"|'[^']*'|\S+)")


def _lift_inline(args):
    raw = args.get("_raw_params")
    if not isinstance(raw, str) or "=" not in raw:
        return args
    args = dict(args)

    def take(match):
        value = match.group(2)
        if value[:1] in ("'", '"') and value[-1:] == value[:1]:
            value = value[1:-1]
        args.setdefault(match.group(1), value)
        return ""

    args["_raw_params"] = _INLINE.sub(take, raw).strip()
    return args


def _bool(value, default):
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("yes", "on", "1", "true", "y", "t")


_COMMAND_ARGS = {"_raw_params", "cmd", "argv", "chdir", "creates", "removes", "executable", "stdin",
                 "stdin_add_newline", "strip_empty_ends", "expand_argument_vars", "_uses_shell"}


def _run(ctx, args, shell):
    args = _lift_inline(args)
    if shell and "expand_argument_vars" in args:  # the shell action's own check and words
        raise ModuleFailure("Unsupported parameters for (shell) module: expand_argument_vars")
    extra = sorted(k for k in args if k not in _COMMAND_ARGS and not k.startswith("_"))
    if extra:
        raise ModuleFailure("Unsupported parameters for ({}) module: {}. Supported parameters include: {}.".format(
            "shell" if shell else "command", ", ".join(extra), ", ".join(sorted(_COMMAND_ARGS - {"_uses_shell"}))))
    raw, cmd, argv = args.get("_raw_params"), args.get("cmd"), args.get("argv")
    given = [n for n, v in (("_raw_params", raw), ("cmd", cmd), ("argv", argv)) if v not in (None, "", [])]
    if not given:
        raise ModuleFailure("one of the following is required: _raw_params, cmd, argv")
    if len(given) > 1:
        raise ModuleFailure("parameters are mutually exclusive: _raw_params|cmd|argv")
    chdir = args.get("chdir")
    creates, removes = args.get("creates"), args.get("removes")
    executable = args.get("executable")
    stdin = args.get("stdin")
    add_newline = _bool(args.get("stdin_add_newline"), True)
    strip = _bool(args.get("strip_empty_ends"), True)
    r = {"changed": False, "stdout": "", "stderr": "", "rc": None, "cmd": None, "start": None,
         "end": None, "delta": None, "msg": ""}
    if not shell and executable:
        ctx.warn("As of Ansible 2.4, the parameter 'executable' is no longer supported with the "
                 f"'command' module. Not using '{executable}'.")
        executable = None
    if argv is not None and not isinstance(argv, list):
        raise ModuleFailure("argv must be a list of strings")
    command = raw or cmd
    if shell:
        r["cmd"] = command if command else " ".join(str(a) for a in argv)
    else:
        import shlex

        r["cmd"] = shlex.split(command) if command else [str(a) for a in argv]
    if chdir:
        chdir = os.path.expanduser(str(chdir))
        if not os.path.isdir(chdir):
            r["msg"] = "Unable to change directory before execution."  # Ansible's words; rc stays None
            r["failed"] = True
            return r
    base = chdir or os.getcwd()
    if creates or removes:
        import glob
    shoulda = "Would" if ctx.check_mode else "Did"
    if creates and glob.glob(os.path.join(base, os.path.expanduser(str(creates)))):
        r["msg"] = f"{shoulda} not run command since '{creates}' exists"
        r["stdout"] = f"skipped, since {creates} exists"
        r["rc"] = 0
    if not r["msg"] and removes and not glob.glob(os.path.join(base, os.path.expanduser(str(removes)))):
        r["msg"] = f"{shoulda} not run command since '{removes}' does not exist"
        r["stdout"] = f"skipped, since {removes} does not exist"
        r["rc"] = 0
    if r["msg"]:
        return r
    r["changed"] = True
    if ctx.check_mode:
        r["rc"] = 0
        r["msg"] = "Command would have run if not in check mode"
        if creates is None and removes is None:
            r["skipped"] = True
            r["changed"] = False
        return r
    data = None
    if stdin is not None:
        data = str(stdin) + ("\n" if add_newline else "")
    import datetime

    start = datetime.datetime.now()
    rc, out, err = ctx.run_command(r["cmd"], shell=shell, cwd=chdir, data=data,
                                   executable=executable,
                                   expand=_bool(args.get("expand_argument_vars"), True))
    end = datetime.datetime.now()
    r.update(rc=rc, stdout=out, stderr=err, start=str(start), end=str(end), delta=str(end - start))
    if strip:
        r["stdout"] = r["stdout"].rstrip("\r\n")
        r["stderr"] = r["stderr"].rstrip("\r\n")
    if rc != 0:
        r["msg"] = "non-zero return code"
        r["failed"] = True
    return r


def command(ctx, args):
    return _run(ctx, args, shell=False)


def shell(ctx, args):
    return _run(ctx, args, shell=True)


def raw(ctx, args):
    """Run the free-form text through the shell; no check mode (skipped), always changed."""
    text = args.get("_raw_params")
    if not text:
        raise ModuleFailure("raw needs the command text (free-form)")
    if ctx.check_mode:
        return {"changed": False, "skipped": True}  # as ansible-core's raw action: no msg
    rc, out, err = ctx.run_command(str(text), shell=True, executable=args.get("executable"))
    r = {"changed": True, "rc": rc, "stdout": out, "stderr": err}
    if rc != 0:
        r["failed"] = True
        r["msg"] = "non-zero return code"
    return r


_SCRIPT_ARGS = ("_raw_params", "cmd", "creates", "removes", "chdir", "executable", "decrypt")


def script_words(args):
    """The script as written (the first word of the free-form text or ``cmd``) and the text;
    (None, None) when neither is given. The compiler embeds the script under that word."""
    import shlex

    text = args.get("_raw_params") or args.get("cmd")
    if not isinstance(text, str) or not text.strip():
        return None, None
    try:
        words = shlex.split(text.strip())
    except ValueError:
        return None, text
    return (words[0] if words else None), text


def script(ctx, args):
    """ansible-core's script action: the controller's script (embedded in the artifact) is
    written to a private directory and run through the shell with the rest of the text as its
    arguments; creates/removes skip it, chdir must be absolute, check mode runs nothing."""
    import shutil
    import tempfile

    extra = sorted(k for k in args if k not in _SCRIPT_ARGS and not k.startswith("_"))
    if extra:
        raise ModuleFailure("Unsupported parameters for (script) module: {}. Supported parameters include: {}.".format(
            ", ".join(extra), ", ".join(sorted(_SCRIPT_ARGS[:-1]))))
    if args.get("_raw_params") and args.get("cmd"):
        raise ModuleFailure("parameters are mutually exclusive: _raw_params|cmd")
    first, text = script_words(args)
    if first is None:
        raise ModuleFailure("one of the following is required: _raw_params, cmd")
    for key, exists, what in (("creates", True, "exists, matching creates option"),
                              ("removes", False, "does not exist, matching removes option")):
        path = args.get(key)
        if path and os.path.lexists(os.path.expanduser(str(path))) == exists:
            return {"changed": False, "skipped": True, "msg": f"{path} {what}", "_action_skip": True}
    chdir = args.get("chdir")
    if chdir and not str(chdir).startswith("/"):
        raise ModuleFailure(f"chdir {chdir} must be an absolute path for a Unix-aware remote node")
    locked = (ctx.task.get("vault_locked") or {}).get(first)
    if locked:  # vault-encrypted, and no secret of the run opens it (compiler/sources.py)
        raise ModuleFailure(locked)
    data = ctx.source(first)
    if ctx.check_mode:
        if args.get("creates") or args.get("removes"):
            return {"changed": True}
        return {"changed": False, "skipped": True, "msg": "Check mode is not supported for this task.",
                "_action_skip": True}
    tmp = tempfile.mkdtemp(prefix="ansible-tmp-")
    try:
        path = os.path.join(tmp, os.path.basename(first))
        with open(path, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o700)
        command = text.strip().replace(first, path)
        if args.get("executable"):
            command = "{} {}".format(args["executable"], command)
        if chdir:  # as ansible-core's _low_level_execute_command: the shell changes directory
            command = f"cd {chdir} && {command}"
        rc, out, err = ctx.run_command(command, shell=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    r = {"changed": True, "rc": rc, "stdout": out, "stderr": err}
    if rc != 0:
        r.update(msg="non-zero return code", failed=True)
    return r


MODULES = {"command": command, "shell": shell, "raw": raw, "script": script}
