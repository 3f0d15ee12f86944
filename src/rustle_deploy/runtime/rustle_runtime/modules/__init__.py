"""Module families of the runtime. Standard library only; Python 3.8 syntax.

FAMILIES maps each supported module name to the file under ``modules/`` that implements it.
The compiler reads this literal with ``ast`` (it never imports the runtime) to know which
modules exist and which files to put into an artifact, so keep it a plain dict literal.

Each family file defines ``MODULES = {"name": function}``; a module function is
``fn(ctx, args) -> dict`` where ``args`` are already templated and ``ctx`` is the executor's
ModuleContext (see ``rustle_runtime/context.py``). It returns Ansible's result dict
(``changed``, ``failed``, ``msg``, ``rc``, ``stdout``, ``stderr``, ``diff``, module-specific
keys) and honours ``ctx.check_mode`` and ``ctx.diff_mode``.
"""

FAMILIES = {
    "command": "command",
    "shell": "command",
    "raw": "command",
    "script": "command",
    "debug": "core",
    "async_status": "core",
    "set_fact": "core",
    "include_vars": "core",
    "assert": "core",
    "fail": "core",
    "meta": "core",
    "ping": "core",
    "setup": "core",
    "add_host": "core",
    "group_by": "core",
    "pause": "core",
    "wait_for_connection": "core",
    "set_stats": "core",
    "copy": "files",
    "file": "files",
    "template": "files",
    "stat": "files",
    "slurp": "files",
    "fetch": "files",
    "lineinfile": "lines",
    "blockinfile": "lines",
    "replace": "lines",
    "package": "packages",
    "apt": "packages",
    "dnf": "packages",
    "yum": "packages",
    "apk": "packages",
    "service": "services",
    "systemd": "services",
    "systemd_service": "services",
    "user": "users",
    "group": "users",
    "get_url": "net",
    "wait_for": "net",
    "unarchive": "archive",
    "git": "git",
    "cron": "cron",
}
