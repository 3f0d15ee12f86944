"""Command line: parse flags, build Settings once, call the library, map errors to exit codes.

Exit codes (DESIGN.md): 0 every host fine; 1 the run happened and some hosts failed;
2 bad usage, plan, inventory or config (nothing was touched); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import RustleError, UsageError
from .settings import check_flags, load_settings

EXIT_OK, EXIT_HOSTS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _fail(message: str) -> None:
    raise UsageError(message)


def _vault_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The vault options of rustle-deploy and rustle-exec, as ansible-playbook has them."""

    def add(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed([
            click.option("--vault-password-file", "vault_password_files", multiple=True, metavar="FILE",
                         help=f"Decrypt {what} with the password in FILE (an executable FILE prints it; "
                         "repeatable) [ansible.cfg's vault_password_file]."),
            click.option("--vault-id", "vault_ids", multiple=True, metavar="[LABEL@]FILE|prompt",
                         help="A vault password, as ansible-playbook's --vault-id: a file, or 'prompt' (repeatable)."),
            click.option("-J", "--ask-vault-pass", is_flag=True, help="Ask for the vault password on the terminal."),
        ]):
            fn = option(fn)
        return fn

    return add


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
               epilog="rustle-deploy ui [--host H] [--port P] [--open] serves the web UI over the history "
               "(docs/ui.md); a plan or playbook file named 'ui' is given as ./ui.")
@click.argument("execution_plan", required=False, metavar="[PLAYBOOK|EXECUTION_PLAN]")
@click.option("-i", "--inventory", metavar="FILE", multiple=True, help="Inventory: INI, YAML, JSON, an executable script, a directory of them, or a host list 'a,b,' [implicit localhost]; several -i are read in order and merged, as ansible-playbook does.")
@click.option("-o", "--output-dir", metavar="DIR", help="Where --compile-only writes artifacts [./target].")
@click.option("-t", "--target", metavar="TRIPLE", help="Force a target: with --format native the runner's Rust triple (x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu, either with +static; default: the host's rustle_target, else the controller's); pyz artifacts are py3-none-any.")
@click.option("--cache-dir", metavar="DIR", help="Compilation cache [~/.rustle/cache].")
@click.option("--incremental", is_flag=True, help="Reuse cached artifacts (the default).")
@click.option("--rebuild", is_flag=True, help="Ignore the cache and rebuild every artifact.")
@click.option("--compile-only", is_flag=True, help="Compile and write artifacts to --output-dir; touch no host.")
@click.option("--deploy-only", is_flag=True, help="Deploy the artifacts --compile-only wrote to --output-dir.")
@click.option("--cleanup", is_flag=True,
              help="Remove what rustle-deploy put on the inventory's hosts; leave and report anything else.")
@click.option("-f", "--forks", "--parallel", "parallel", type=int, metavar="NUM", help="Hosts handled at once [plan's forks, else 50].")
@click.option("--timeout", type=float, metavar="SECONDS", help="Per-host deadline [120].")
@click.option("--verify", is_flag=True, default=None, help="Re-hash and self-check on the host; roll that host back on mismatch.")
@click.option("--rollback", is_flag=False, flag_value="latest", default=None, metavar="[ID]",
              help="Restore the releases that were current before deployment ID (default: the last).")
@click.option("--dry-run", is_flag=True,
              help="Show what would be compiled and deployed, and where (with --cleanup: what would be "
                   "removed and left on each host); change nothing.")
@click.option("--run", "run_", is_flag=True, help="After deploying, run the plan on each host in the same connection.")
@click.option("--check", is_flag=True, help="Run in check mode (Ansible semantics): report, change nothing.")
@click.option("--diff", is_flag=True, help="Show differences of changed files.")
@click.option("-l", "--limit", metavar="PATTERN", help="Only hosts matching this Ansible pattern.")
@click.option("--tags", metavar="TAGS", multiple=True, callback=lambda _c, _p, v: ",".join(v) or None,
              help="Only tasks with these tags (comma-separated; repeatable, as ansible-playbook's).")
@click.option("--skip-tags", metavar="TAGS", multiple=True, callback=lambda _c, _p, v: ",".join(v) or None,
              help="Skip tasks with these tags (comma-separated; repeatable, as ansible-playbook's).")
@click.option("-e", "--extra-vars", "extra_vars", multiple=True, metavar="VARS",
              help="Extra variables, highest precedence: key=value, YAML/JSON, or @FILE (repeatable).")
@click.option("-b", "--become", is_flag=True, default=None, help="Playbooks: run operations with become (as ansible-playbook -b).")
@click.option("--become-user", metavar="USER", help="Playbooks: the user to become [root].")
@click.option("--become-method", metavar="METHOD", help="Playbooks: sudo or su [sudo].")
@click.option("--force-handlers", is_flag=True, default=None,
              help="Playbooks: run the handlers notified on a host even when the host fails (as "
              "ansible-playbook --force-handlers; a play's force_handlers wins) [ansible.cfg's force_handlers].")
@click.option("--emit-plan", is_flag=True, help="Print the execution plan (JSON) the input compiles to, and exit.")
@click.option("--syntax-check", is_flag=True, help="Read and check the playbook (roles, includes, files), and exit.")
@click.option("-K", "--ask-become-pass", is_flag=True, help="Ask once for the become (sudo) password, on the terminal, "
              "and give it to sudo where tasks become another user; never shown or stored.")
@_vault_options("vault-encrypted values and files on the controller")
@click.option("--start-at-task", metavar="NAME", help="Playbooks: start at the first task named NAME ('role : name', "
              "or a pattern with * and ?), as ansible-playbook does; earlier tasks and plays do not run.")
@click.option("--list-hosts", is_flag=True, help="List each play's hosts, and exit.")
@click.option("--list-tasks", is_flag=True, help="List each play's tasks, and exit.")
@click.option("--list-tags", is_flag=True, help="List each play's tags, and exit.")
@click.option("--files-dir", multiple=True, metavar="DIR", help="Extra directory to look for copy/template sources.")
@click.option("--output", type=click.Choice(["text", "json"]), default=None, help="Output format [text on a terminal, else json].")
@click.option("--list-deployments", is_flag=True, help="List recorded deployments and exit.")
@click.option("--list-inventory", is_flag=True, help="Print the inventory as 'ansible-inventory --list' does.")
@click.option("--list-modules", is_flag=True,
              help="List the built-in modules and those the module bridge can see (library/ beside "
                   "EXECUTION_PLAN, ANSIBLE_LIBRARY, ansible-core, collections).")
@click.option("--config", metavar="FILE", help="Config file [~/.rustle/config.toml].")
@click.option("-u", "--user", metavar="USER", help="SSH user for hosts that set no ansible_user.")
@click.option("--private-key", metavar="FILE", help="SSH key for hosts that set no ansible_ssh_private_key_file.")
@click.option("--ssh-client", type=click.Choice(["auto", "openssh", "asyncssh"]), default=None,
              help="SSH implementation [auto: the ssh binary for up to 256 hosts at once, else asyncssh].")
@click.option("--format", "format_", type=click.Choice(["auto", "pyz", "native", "hybrid"]), default=None,
              help="Artifact format [auto: the native runner where the plan lowers and the host executes it, "
                   "else pyz; -v says which and why; hybrid: the native runner, which hands the tasks that "
                   "do not lower to the host's Python; RUSTLE_FORMAT, [compilation] format].")
@click.option("--canary", metavar="N|N%", help="With --run: deploy and run on the first N hosts (or N%), gate them, "
              "then go on; a failed canary is rolled back and no other host is touched (docs/rollouts.md).")
@click.option("--health-check", metavar="CMD", help="With --run: after each batch (canaries first), run CMD on each of its "
              "hosts (sh -c, Jinja2 host variables allowed); exit 0 = healthy, else the batch is rolled back and the rollout stops.")
@click.option("--health-url", metavar="URL", help="With --run: after each batch, fetch URL from each of its hosts "
              "(Jinja2 host variables allowed); a 2xx answer = healthy. With --health-check, both must pass.")
@click.option("--health-retries", type=int, metavar="N", help="Attempts after the first failed health check [3].")
@click.option("--health-interval", type=float, metavar="SECONDS", help="Pause between health check attempts [5].")
@click.option("--health-timeout", type=float, metavar="SECONDS", help="Deadline for a host's health checks, all attempts [60].")
@click.option("--stage", is_flag=True, help="Upload, verify and prepare the new release on every host without "
              "activating or running it; --promote does that later.")
@click.option("--promote", is_flag=False, flag_value="latest", default=None, metavar="[ID]",
              help="Activate and run the staged deployment ID (default: the last staged), in its batches.")
@click.option("--resume", metavar="ID", help="With --run and the same plan: go on with the rollout of deployment ID "
              "(stopped or interrupted) on the hosts and stages it has not finished.")
@click.option("--notify", multiple=True, metavar="URL",
              help="POST JSON to URL on deployment start, each host's outcome and the end (repeatable; "
              "replaces config.toml's [notify] urls; docs/ui.md).")
@click.option("--metrics-port", type=click.IntRange(1, 65535), metavar="PORT",
              help="While the command runs, serve the history's Prometheus metrics on 127.0.0.1:PORT "
              "(needs the ui extra; docs/ui.md).")
@click.option("-v", "--verbose", count=True, help="More output (-vv, -vvv).")
@click.version_option(__version__, "-V", "--version", prog_name="rustle-deploy")
def _command(**opts: Any) -> None:
    raise SystemExit(_dispatch(opts))


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``rustle-deploy``; returns (and exits with) the exit code.

    ``rustle-deploy ui ...`` (``ui`` first) is the web UI's command; a plan file named ``ui``
    is given as ``./ui``.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if argv is None:
        _fewer_collections()
    if args[:1] == ["ui"]:
        return _exit(_invoke(_ui_command, "rustle-deploy ui", args[1:]), argv)
    return _invoke(_command, "rustle-deploy", argv)


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port to listen on (0: any free one; the URL is printed).")
@click.option("--open", "open_", is_flag=True, help="Open the UI in a web browser.")
@click.option("--token", envvar="RUSTLE_UI_TOKEN", metavar="TOKEN",
              help="Access token every request must carry (login form, or Authorization: Bearer) [$RUSTLE_UI_TOKEN].")
@click.option("--config", metavar="FILE", help="Config file [~/.rustle/config.toml] (where the history is).")
def _ui_command(**opts: Any) -> None:
    """Serve the web UI over the history database (docs/ui.md)."""
    from .ui import serve

    raise SystemExit(_guarded(lambda: serve(opts["host"], opts["port"], opts["token"] or None, opts["open_"],
                                            opts["config"])))


def _invoke(command: click.Command, prog: str, argv: Sequence[str] | None) -> int:
    """Run a click command without its own exit handling; map click's outcomes to exit codes."""
    try:
        command.main(args=list(argv) if argv is not None else None, prog_name=prog, standalone_mode=False)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
        return _exit(code, argv)
    except click.exceptions.Exit as exc:
        return _exit(exc.exit_code, argv)
    except click.ClickException as exc:
        exc.show()
        return _exit(EXIT_USAGE, argv)
    except click.exceptions.Abort:
        return _exit(EXIT_INTERRUPTED, argv)
    return _exit(EXIT_OK, argv)


def _fewer_collections() -> None:
    """Let the cyclic garbage collector's youngest generation fill to 100,000 objects instead
    of 700 in a console process. A command's start-up (its imports, the plan, the inventory)
    allocates hundreds of thousands of objects that live for the whole command, and each
    collection walked them again: ~40 ms of the ~0.4-0.5 s of CPU a 50-host deployment spends in
    this process (benchmarks/README.md). Garbage is still collected, in fewer, larger passes; the
    older generations keep Python's default ratios (10, 10). In-process callers (tests, the
    library) keep their own settings."""
    import gc

    gc.set_threshold(100_000, 10, 10)


def _exit(code: int, argv: Sequence[str] | None) -> int:
    """Return ``code`` to an in-process caller; end a console-script process with it.

    The process ends with ``os._exit`` once its output is flushed: by then every file is
    closed and every child reaped, and the interpreter's teardown (freeing each module, ~30
    ms here) would only delay the exit a user waits for.
    """
    if argv is not None:
        return code
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more to say there
            pass
    os._exit(code)


def _dispatch(opts: dict[str, Any]) -> int:
    from .pipeline import Session

    return _guarded(lambda: Session.from_options(opts).execute())


def _guarded(work: Callable[[], int]) -> int:
    """Run ``work``; a RustleError becomes its message and exit code, Ctrl-C exit 130.

    A message may quote inventory, plan or host data: its lines are printed with control
    characters shown as escapes (report.visible), never sent raw to the terminal.
    """
    try:
        return work()
    except RustleError as exc:
        from .report import text_lines, visible

        print("\n".join(visible(line) for line in text_lines(f"error: {exc}")), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# -- rustle-exec ---------------------------------------------------------------------------


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("manifest", required=False, default="-", metavar="[MANIFEST]")
@click.option("--check", is_flag=True, help="Run in check mode.")
@click.option("--diff", is_flag=True, help="Show differences of changed files.")
@click.option("--tags", metavar="TAGS", help="Only tasks with these tags.")
@click.option("--skip-tags", metavar="TAGS", help="Skip tasks with these tags.")
@click.option("--parallel", type=int, metavar="NUM", help="Hosts handled at once.")
@click.option("--timeout", type=float, metavar="SECONDS", help="Per-host deadline.")
@click.option("--ssh-client", type=click.Choice(["auto", "openssh", "asyncssh"]), default=None,
              help="SSH implementation [auto].")
@click.option("--output", type=click.Choice(["text", "json"]), default="text")
@click.option("--config", metavar="FILE", help="Config file [~/.rustle/config.toml].")
@_vault_options("the inventory's vault-encrypted values and files")
@click.option("-v", "--verbose", count=True)
@click.version_option(__version__, "-V", "--version", prog_name="rustle-exec")
def _exec_command(**opts: Any) -> None:
    raise SystemExit(_dispatch_exec(opts))


def exec_main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``rustle-exec``: run what a deployment manifest says was deployed."""
    if argv is None:
        _fewer_collections()
    return _invoke(_exec_command, "rustle-exec", argv)


def _dispatch_exec(opts: dict[str, Any]) -> int:
    return _guarded(lambda: _exec(opts))


def _exec(opts: dict[str, Any]) -> int:
    from .pipeline import run_manifest, use_vault_secrets

    check_flags(opts)

    source = opts["manifest"]
    if source == "-":
        if sys.stdin.isatty():
            raise UsageError(
                "no deployment manifest on standard input",
                "pipe rustle-deploy into it: rustle-deploy plan.json -i inv.yml | rustle-exec",
            )
        text = sys.stdin.read()
        name = "<stdin>"
    else:
        try:
            text = Path(source).read_text()
        except OSError as exc:
            raise UsageError(f"{source}: cannot read: {exc.strerror}") from exc
        name = source
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{name}: line {exc.lineno} column {exc.colno}: not a JSON deployment manifest ({exc.msg})",
            "rustle-exec reads what 'rustle-deploy ... --output json' prints",
        ) from exc
    overrides = {"parallel": opts.get("parallel"), "timeout": opts.get("timeout"), "ssh_client": opts.get("ssh_client")}
    settings = load_settings(opts.get("config"), overrides=overrides)
    use_vault_secrets(opts)  # the manifest's inventory is read again: its vaulted values
    return run_manifest(manifest, name, settings, opts)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
