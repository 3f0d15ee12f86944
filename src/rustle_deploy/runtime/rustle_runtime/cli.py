"""The artifact's command line: ``run``, ``verify``, ``manifest``, ``serve``, ``--version``.

Exit codes (docs/artifact.md): 0 no task failed; 2 a task failed; 3 bad invocation, unknown
host or corrupt artifact; 1 a bug in the runtime (a traceback on stderr).
"""

import sys

from . import PROTOCOL, __version__
from .payload import Payload, PayloadError

EXIT_USAGE = 3


def _csv(values):
    out = []
    for v in values or []:
        out.extend(t.strip() for t in v.split(",") if t.strip())
    return out


def build_parser():
    import argparse  # not on the deploy agent's path (run_payload): ~5 ms per host

    class _Parser(argparse.ArgumentParser):
        def error(self, message):
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n")
            sys.exit(EXIT_USAGE)

    parser = _Parser(prog="rustle-artifact", description="Apply the plan embedded in this artifact.")
    parser.add_argument("--version", action="store_true", help="print the runtime version and exit")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="apply the plan to this host")
    run.add_argument("--host", required=True, help="inventory name of this host")
    run.add_argument("--check", action="store_true", help="check mode: report changes, make none")
    run.add_argument("--diff", action="store_true", help="report diffs of changed files")
    run.add_argument("--tags", action="append", default=[], help="only tasks with these tags (a,b)")
    run.add_argument("--skip-tags", action="append", default=[], help="skip tasks with these tags")
    run.add_argument("--journal", help="also append every event line to this file (0600)")
    run.add_argument("--run-id", help="identifier recorded in run_start")
    run.add_argument("--sha256", help="the artifact's identity: check the whole file against it "
                                      "instead of each entry against the manifest")
    run.add_argument("--plays", type=lambda v: [int(x) for x in v.split(",") if x.strip()],
                     help="run only the plays with these plan indices (0,2): a rollout stage")
    run.add_argument("--carry", help="file keeping registered results and set_fact between stages")
    run.add_argument("--phase", type=int, help="run only this phase of plays cut into phases")
    run.add_argument("--share", choices=("vars", "state", "known"),
                     help="end with a 'shared' event: the variables this run set (or the whole state)")
    run.add_argument("--vars", dest="vars_file",
                     help="JSON file of this host's own variables (the artifact carries none)")
    run.add_argument("--unreachable", help="the connection this run's tasks were to use failed with this "
                     "message: each task that needs it is unreachable (a delegated phase)")
    run.add_argument("--delegate", nargs=3, metavar=("HOST", "PYTHON", "MODE"),
                     help="a phase delegated to HOST, whose Python the launcher discovered (MODE: "
                     "INTERPRETER_PYTHON's auto mode): reported as ansible-core reports it")
    run.add_argument("-v", "--verbose", action="count", default=0)
    sub.add_parser("serve", help="run single tasks for rustle-runner (JSON lines on stdin and stdout)")
    sub.add_parser("verify", help="re-hash every entry against manifest.json (exit 3 on mismatch)")
    sub.add_parser("manifest", help="print manifest.json")
    return parser


def _fail(message, hint=None):
    sys.stderr.write(f"rustle-runtime: error: {message}\n")
    if hint:
        sys.stderr.write(f"hint: {hint}\n")
    return EXIT_USAGE


def _delegated(delegate):
    """``--delegate HOST PYTHON MODE`` as the Runner's ``interpreter``."""
    if not delegate:
        return None
    host, path, mode = delegate
    return {"path": path, "mode": mode, "delegate": host}


def _run(args, payload):
    import os
    import time

    from .events import Emitter
    from .executor import Runner

    try:
        plan = payload.read_json("plan.json")
    except PayloadError as exc:
        return _fail(str(exc), "the artifact is corrupt; redeploy it")
    hosts = plan.get("hosts") or {}
    if args.host not in hosts:
        return _fail(f"unknown host '{args.host}'",
                     "this artifact serves: %s" % (", ".join(sorted(hosts)) or "no hosts"))
    host_vars = getattr(args, "host_vars", None)
    vars_file = getattr(args, "vars_file", None)
    if vars_file:
        import json

        try:
            with open(vars_file, "rb") as f:
                host_vars = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            return _fail(f"{vars_file}: cannot read the host's variables: {exc}",
                         "pass --vars a JSON object of variable names to values")
        if not isinstance(host_vars, dict):
            return _fail(f"{vars_file}: not a JSON object", "pass --vars a JSON object of variable names to values")
    try:
        emitter = Emitter(journal=args.journal)
    except OSError as exc:
        return _fail(f"{args.journal}: cannot open the journal: {exc.strerror}",
                     "pass a writable --journal path")
    run_id = args.run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    try:
        runner = Runner(payload, plan, args.host, emitter, check=args.check, diff=args.diff,
                        tags=_csv(args.tags), skip_tags=_csv(args.skip_tags),
                        verbosity=args.verbose, run_id=run_id,
                        plays=getattr(args, "plays", None), carry=getattr(args, "carry", None),
                        host_vars=host_vars, phase=getattr(args, "phase", None),
                        inject=getattr(args, "inject", None), share=getattr(args, "share", None),
                        unreachable=getattr(args, "unreachable", None),
                        state_dir=getattr(args, "state_dir", None),
                        interpreter=getattr(args, "interpreter", None) or _delegated(getattr(args, "delegate", None)))
        return runner.run()
    finally:
        emitter.close()


class _RunArgs:
    def __init__(self, host, check, diff, tags, skip_tags, journal, run_id, verbose, plays=None,
                 carry=None, host_vars=None, phase=None, inject=None, share=None, state_dir=None,
                 interpreter=None):
        self.host, self.check, self.diff = host, check, diff
        self.tags, self.skip_tags = list(tags), list(skip_tags)
        self.journal, self.run_id, self.verbose = journal, run_id, verbose
        self.plays, self.carry, self.host_vars = plays, carry, host_vars
        self.phase, self.inject, self.share = phase, inject, share
        self.state_dir, self.interpreter = state_dir, interpreter


def run_payload(root, host, check=False, diff=False, tags=(), skip_tags=(), journal=None,
                run_id=None, verbosity=0, plays=None, carry=None, host_vars=None, phase=None,
                inject=None, share=None, become_password=None, state_dir=None, interpreter=None,
                become_passwords=None):
    """``run`` for the payload at ``root`` (a directory or a zip), without parsing a command
    line: the deploy agent calls this in its own process. Returns the exit code.

    ``plays``: run only the plays with these plan indices (a rollout stage); ``carry``: a
    file holding registered results and set_fact across stages (read if present, written
    when the host did not fail); ``host_vars``: this host's own variables, from its run
    request (the artifact, shared by many hosts, carries none); ``phase``: run only that phase
    of a play cut into phases (docs/phases.md); ``inject``: variables another host's run set
    that this host receives (run_once); ``share``: "vars" or "state", end with a ``shared`` event
    holding what this run set (and, for "state", the host's whole state); ``become_password``:
    what sudo asks for when a task becomes another user (``-K``, or the host's inventory
    variable), kept in memory only, as ``become_passwords`` (the host's inventory variables of
    become passwords, by name);
    ``state_dir``: the deploy agent's remote directory, where the module bridge may keep its
    fork server between runs (``rustle_bridge_keep``, docs/bridge.md) and a zip's Jinja2 keeps
    its bytecode (``pycache``); ``interpreter``: the Python the agent's launcher discovered,
    ``{"path", "mode"}`` (INTERPRETER_PYTHON's auto mode): the fact
    ``discovered_interpreter_python`` and its warning."""
    if become_password is not None or become_passwords:
        from . import become

        become.set_password(become_password, become_passwords)
    try:
        payload = Payload(root)
        if state_dir and not payload.is_dir:  # Jinja2's bytecode, kept on the host (pycache.py)
            from . import pycache

            pycache.install(payload.root, state_dir)
        args = _RunArgs(host, check, diff, tags, skip_tags, journal, run_id, verbosity, plays, carry,
                        host_vars, phase, inject, share, state_dir, interpreter)
        return _run(args, payload)
    except PayloadError as exc:
        return _fail(str(exc), "the artifact is corrupt or incomplete; redeploy it")


def main(argv=None):
    """Entry point of ``python3 ARTIFACT ...``; exits with the run's code."""
    sys.exit(_main(sys.argv[1:] if argv is None else argv))


def _main(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        py = ".".join(str(x) for x in sys.version_info[:3])
        sys.stdout.write(f"rustle-runtime {__version__} (protocol {PROTOCOL}, python {py})\n")
        return 0
    if args.command is None:
        parser.print_usage(sys.stderr)
        return _fail("a command is required: run, verify or manifest")
    try:
        payload = Payload.locate()
        if args.command == "manifest":
            data = payload.read("manifest.json")
            sys.stdout.write(data.decode("utf-8").rstrip("\n") + "\n")
            return 0
        if args.command == "serve":
            # started by rustle-runner from a hybrid artifact, whose whole document (this
            # runtime included) it checked against its digest before writing this file
            from .serve import serve

            return serve(payload)
        if args.command == "verify":
            problems = payload.verify()
            import json

            sys.stdout.write(json.dumps({"event": "verify", "ok": not problems, "problems": problems}) + "\n")
            for p in problems:
                sys.stderr.write(f"rustle-runtime: verify: {p}\n")
            return EXIT_USAGE if problems else 0
        # Run only what was built: the payload must match its manifest (or, given the
        # artifact's identity, the whole file must hash to it). docs/decisions.md has the cost.
        if args.sha256 and not payload.is_dir:
            problems = payload.check_identity(args.sha256)
        else:
            problems = payload.verify()
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            return _fail(f"{payload.root}: does not match its manifest: {problems[0]}{more}; refusing to run it",
                         "it was changed after it was built: build it again (or deploy it again, which replaces "
                         "a changed copy on a host)")
        return _run(args, payload)
    except PayloadError as exc:
        return _fail(str(exc), "the artifact is corrupt or incomplete; redeploy it")
