"""Module family for services: service, systemd, systemd_service.

Standard library only; Python 3.8 syntax. The service manager is detected as Ansible does:
systemd when it is PID 1 (``/run/systemd/system`` exists), else OpenRC when ``rc-service`` and
``/run/openrc`` exist, else SysV init scripts under ``/etc/init.d`` (enabled means an ``S``
link in ``/etc/rc[2-5].d``, changed with ``update-rc.d`` or ``chkconfig``).

When systemd is installed but not running (containers), ``systemd`` can still enable,
disable, mask and unmask units (``systemctl`` edits unit-file links offline, and reports
them in check mode), but starting or stopping fails with a message that says why and
points at the ``service`` module. When no manager can act, the module fails and says why.
"""

import glob
import os
import shutil
import time

from . import _common as c

SERVICE_ARGS = {"name", "state", "enabled", "sleep", "pattern", "arguments", "args",
                "runlevel", "use"}
SYSTEMD_ARGS = {"name", "unit", "service", "state", "enabled", "daemon_reload",
                "daemon-reload", "daemon_reexec", "daemon-reexec", "masked", "scope",
                "no_block", "force"}
STATES = ("started", "stopped", "restarted", "reloaded")


def systemd_booted():
    return os.path.isdir("/run/systemd/system")


def detect_manager():
    if systemd_booted() and shutil.which("systemctl"):
        return "systemd"
    if shutil.which("rc-service") and os.path.isdir("/run/openrc"):
        return "openrc"
    if os.path.isdir("/etc/init.d"):
        return "sysv"
    return None


def _check_state(state):
    if state is not None and state not in STATES:
        c.fail(f"value of state must be one of: reloaded, restarted, started, stopped, got: {state}")


# -------------------------------------------------------------------------------------- systemd

def _systemctl(ctx, scope, *argv):
    cmd = ["systemctl"]
    if scope in ("user", "global"):
        cmd.append(f"--{scope}")
    return ctx.run_command(cmd + list(argv))


def _is_enabled(ctx, scope, unit):
    rc, out, err = _systemctl(ctx, scope, "is-enabled", unit)
    word = (out.strip().splitlines() or [""])[0]
    return rc, word, err


@c.module
def systemd(ctx, args):
    """ansible.builtin.systemd_service."""
    c.check_unknown(args, SYSTEMD_ARGS, "systemd")
    c.refuse(args, "systemd", {"force": False})
    unit = c.pop_arg(args, ("name", "unit", "service"))
    state = args.get("state")
    _check_state(state)
    enabled = args.get("enabled")
    enabled = None if enabled is None else c.boolean(enabled, "enabled")
    masked = args.get("masked")
    masked = None if masked is None else c.boolean(masked, "masked")
    reload_daemon = c.boolean(c.pop_arg(args, ("daemon_reload", "daemon-reload"), False))
    reexec = c.boolean(c.pop_arg(args, ("daemon_reexec", "daemon-reexec"), False))
    scope = args.get("scope") or "system"
    if unit is None and (state is not None or enabled is not None or masked is not None):
        c.fail("state, enabled or masked need a unit name (name)")
    if unit is None and not (reload_daemon or reexec):
        c.fail("one of the following is required: state, enabled, masked, daemon_reload, "
               "daemon_reexec")
    if shutil.which("systemctl") is None:
        c.fail("systemctl not found on this host; hint: this host does not use systemd, use "
               "the service module")
    result = {"changed": False}
    if unit is not None:
        result["name"] = unit
    if not systemd_booted():
        return _systemd_offline(ctx, unit, state, enabled, masked, scope, result)
    if reload_daemon and not ctx.check_mode:
        rc, out, err = _systemctl(ctx, scope, "daemon-reload")
        if rc != 0:
            c.fail(f"failure {rc} during daemon-reload: {err}")
    if reexec and not ctx.check_mode:
        rc, out, err = _systemctl(ctx, scope, "daemon-reexec")
        if rc != 0:
            c.fail(f"failure {rc} during daemon-reexec: {err}")
    if unit is None:
        return result
    rc, out, err = _systemctl(ctx, scope, "show", unit, "--no-pager")
    if rc != 0:
        c.fail(f"failure {rc} running systemctl show for '{unit}': {err}")
    status = {}
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            status[key] = value
    result["status"] = status
    found = status.get("LoadState") not in (None, "not-found") or status.get(
        "UnitFileState") not in (None, "")
    is_masked = status.get("LoadState") == "masked" or status.get("UnitFileState") == "masked"

    if masked is not None and masked != is_masked:
        result["changed"] = True
        if not ctx.check_mode:
            rc, out, err = _systemctl(ctx, scope, "mask" if masked else "unmask", unit)
            if rc != 0:
                c.fail("Unable to {} service {}: {}".format("mask" if masked else "unmask", unit,
                                                        err))
        is_masked = masked
    if not found and not is_masked and (state is not None or enabled is not None):
        c.fail(f"Could not find the requested service {unit}: host")

    if enabled is not None:
        rc, word, _ = _is_enabled(ctx, scope, unit)
        currently = rc == 0 and word not in ("static", "indirect", "generated", "transient")
        if word == "static" and enabled:
            currently = True
        if currently != enabled:
            result["changed"] = True
            if not ctx.check_mode:
                rc, out, err = _systemctl(ctx, scope, "enable" if enabled else "disable", unit)
                if rc != 0:
                    c.fail("Unable to {} service {}: {}".format("enable" if enabled else "disable",
                                                            unit, err))
        result["enabled"] = enabled

    if state is not None:
        if is_masked:
            c.fail("Service is in unknown state", status=status)
        active = status.get("ActiveState") in ("active", "activating", "reloading")
        action = None
        if state == "started" and not active:
            action = "start"
        elif state == "stopped" and status.get("ActiveState") in (
                "active", "activating", "reloading", "deactivating"):
            action = "stop"
        elif state == "restarted":
            action = "restart"
        elif state == "reloaded":
            action = "reload" if active else "start"
        if action:
            result["changed"] = True
            if not ctx.check_mode:
                extra = ["--no-block"] if c.boolean(args.get("no_block", False)) else []
                rc, out, err = _systemctl(ctx, scope, action, unit, *extra)
                if rc != 0:
                    c.fail(f"Unable to {action} service {unit}: {err}")
        result["state"] = state
    return result


def _systemd_offline(ctx, unit, state, enabled, masked, scope, result):
    """systemd is not PID 1: unit files can still be enabled/masked, units cannot run."""
    if state is not None:
        c.fail("systemd is not running on this host (no /run/systemd/system: PID 1 is not "
               f"systemd), so {unit} cannot be {state}; hint: on hosts without systemd use the service "
               "module, which drives /etc/init.d scripts", **result)
    if unit is None:
        return result  # daemon-reload has nothing to reload
    rc, word, err = _is_enabled(ctx, scope, unit)
    if word in ("", "not-found") or "No such file" in err:
        c.fail(f"Could not find the requested service {unit}: host", **result)
    if masked is not None and (word == "masked") != masked:
        result["changed"] = True
        if not ctx.check_mode:
            rc2, out, err = _systemctl(ctx, scope, "mask" if masked else "unmask", unit)
            if rc2 != 0:
                c.fail("Unable to {} service {}: {}".format("mask" if masked else "unmask", unit,
                                                        err))
    if enabled is not None:
        result["enabled"] = enabled
        if (rc == 0) != enabled:
            result["changed"] = True
            if not ctx.check_mode:
                rc2, out, err = _systemctl(ctx, scope, "enable" if enabled else "disable", unit)
                if rc2 != 0:
                    c.fail("Unable to {} service {}: {}".format(
                        "enable" if enabled else "disable", unit, err))
    return result


# -------------------------------------------------------------------------------------- service

def _sysv_enabled(name):
    return bool(glob.glob(f"/etc/rc[2345].d/S??{name}"))


def _sysv_running(ctx, script, name, pattern):
    if pattern:
        rc, out, _ = ctx.run_command(["ps", "-eo", "args"])
        return any(pattern in line for line in out.splitlines()[1:]
                   if "ps -eo args" not in line)
    rc, out, err = ctx.run_command([script, "status"])
    if rc == 0:
        return True
    if rc in (1, 2, 3):
        return False
    # 4: unknown; fall back to the process table
    rc2, out2, _ = ctx.run_command(["ps", "-eo", "comm"])
    return name in out2.split()


@c.module
def service(ctx, args):
    """ansible.builtin.service: systemd when it runs, else OpenRC, else SysV init scripts."""
    c.check_unknown(args, SERVICE_ARGS, "service")
    c.refuse(args, "service", {"runlevel": "default"})
    name = args.get("name")
    if not name:
        c.fail("missing required arguments: name")
    state = args.get("state")
    _check_state(state)
    enabled = args.get("enabled")
    enabled = None if enabled is None else c.boolean(enabled, "enabled")
    if state is None and enabled is None:
        c.fail("Neither 'state' nor 'enabled' set")
    use = args.get("use") or "auto"
    manager = detect_manager() if use == "auto" else use
    if manager == "systemd":
        sub = {"name": name}
        if state is not None:
            sub["state"] = state
        if enabled is not None:
            sub["enabled"] = enabled
        return systemd(ctx, sub)
    if manager == "openrc":
        return _openrc(ctx, name, state, enabled, args)
    if manager == "sysv":
        return _sysv(ctx, name, state, enabled, args)
    c.fail("no usable service manager on this host (systemd is not PID 1, no OpenRC, no "
           f"/etc/init.d); hint: start {name} with a command task")


def _sysv(ctx, name, state, enabled, args):
    script = os.path.join("/etc/init.d", name)
    if not os.path.isfile(script):
        c.fail(f"Could not find the requested service {name}: no {script} and systemd is not running")
    result = {"changed": False, "name": name}
    extra = str(c.pop_arg(args, ("arguments", "args"), "") or "").split()
    if enabled is not None:
        result["enabled"] = enabled
        if _sysv_enabled(name) != enabled:
            result["changed"] = True
            if not ctx.check_mode:
                _sysv_enable(ctx, name, enabled)
    if state is not None:
        running = _sysv_running(ctx, script, name, args.get("pattern"))
        actions = []
        if state == "started" and not running:
            actions = ["start"]
        elif state == "stopped" and running:
            actions = ["stop"]
        elif state == "restarted":
            actions = ["restart"]
        elif state == "reloaded":
            actions = ["reload"] if running else ["start"]
        result["state"] = state
        if actions:
            result["changed"] = True
            if not ctx.check_mode:
                for action in actions:
                    rc, out, err = ctx.run_command([script, action] + extra)
                    if rc != 0 and action == "restart":
                        ctx.run_command([script, "stop"] + extra)
                        if args.get("sleep"):
                            time.sleep(int(args["sleep"]))
                        rc, out, err = ctx.run_command([script, "start"] + extra)
                    if rc != 0:
                        c.fail(f"Unable to {action} service {name}: {(err or out).strip()}",
                               rc=rc, stdout=out, stderr=err)
    return result


def _sysv_enable(ctx, name, enabled):
    if shutil.which("update-rc.d"):
        if enabled:
            if not glob.glob(f"/etc/rc?.d/[SK]??{name}"):
                rc, out, err = ctx.run_command(["update-rc.d", name, "defaults"])
            else:
                rc, out, err = ctx.run_command(["update-rc.d", name, "enable"])
        else:
            rc, out, err = ctx.run_command(["update-rc.d", name, "disable"])
    elif shutil.which("chkconfig"):
        rc, out, err = ctx.run_command(["chkconfig", name, "on" if enabled else "off"])
    else:
        c.fail("cannot {} {}: neither update-rc.d nor chkconfig is installed".format("enable" if enabled else "disable", name))
    if rc != 0:
        c.fail("Error when trying to {} {}: rc={} {}".format("enable" if enabled else "disable",
                                                        name, rc, err.strip()))
    if _sysv_enabled(name) != enabled:
        c.fail("/etc/init.d/{} is still {} after update-rc.d/chkconfig; hint: the script needs "
               "an LSB header with Default-Start and Default-Stop runlevels".format(name, "disabled" if enabled else "enabled"))


def _openrc(ctx, name, state, enabled, args):
    result = {"changed": False, "name": name}
    if enabled is not None:
        rc, out, _ = ctx.run_command(["rc-update", "show", "default"])
        current = any(line.split("|")[0].strip() == name for line in out.splitlines())
        result["enabled"] = enabled
        if current != enabled:
            result["changed"] = True
            if not ctx.check_mode:
                rc, out, err = ctx.run_command(["rc-update", "add" if enabled else "del", name])
                if rc != 0:
                    c.fail(f"Error when trying to enable {name}: {err}")
    if state is not None:
        rc, out, _ = ctx.run_command(["rc-service", name, "status"])
        running = rc == 0
        action = {"started": None if running else "start",
                  "stopped": "stop" if running else None, "restarted": "restart",
                  "reloaded": "reload" if running else "start"}[state]
        result["state"] = state
        if action:
            result["changed"] = True
            if not ctx.check_mode:
                rc, out, err = ctx.run_command(["rc-service", name, action])
                if rc != 0:
                    c.fail(f"Unable to {action} service {name}: {err}", rc=rc)
    return result


MODULES = {"service": service, "systemd": systemd, "systemd_service": systemd}
