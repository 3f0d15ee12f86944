"""ansible-core's ``runme.sh`` targets: their ``ansible-playbook`` invocations under both tools.

Many of ansible-core's integration targets (``handlers``, ``blocks``, ``tags``, ...) are not
role-shaped: their ``runme.sh`` runs ``ansible-playbook some.yml -i inventory [flags]`` several
times and greps the output. This harness reads those scripts (:func:`invocations`), keeps the
simple ``ansible-playbook`` lines whose flags both tools understand, and runs each under
``ansible-playbook`` (the oracle) and under ``rustle-deploy --run`` in a fresh copy of the
target, as ansible-test lays it out (``targets/<name>`` with the other targets beside it, an
``inventory`` two levels up, ``$OUTPUT_DIR``), with a private HOME. The two runs' task results
are compared one by one per host with the role-shaped harness's :func:`~.harness.compare`.
A run ansible-playbook aborts ("[ERROR]: ...", exit 1 or 4: a notify of a missing handler, a
parse error in an included file) is one rustle-deploy records as errored (docs/playbooks.md "A
run that errored"): both end as ``error``, and the errored result, where ansible-playbook's
callback got none, is not compared.

The hosts of an inline inventory (``-i host1,host2,``) get a local connection under rustle-deploy
only: ansible-playbook runs the tasks those targets give them (debug, fail, set_fact, assert) on
the controller without reaching the host, where rustle-deploy runs every task on it. A task that
does reach the host (a ``ping`` of a host that does not resolve) then differs, and is reported.

What a line asks that cannot be translated (a shell loop's variable, a flag rustle-deploy has
no counterpart for, an ad-hoc ``ansible`` command) is not run, and the reason is recorded and
reported. The greps of ``runme.sh`` are not replayed: the task results are the comparison.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import socket
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harness import (
    ANSIBLE_SETTINGS,
    ANSIBLE_VERSION,
    BIN,
    CALLBACKS,
    HOST,
    RUNME_ONLY,
    Comparison,
    Run,
    _env,
    _mask,
    compare,
    execute,
    not_run,
    refresh_record,
)

# ansible-playbook's flags that rustle-deploy has under the same meaning: flag -> rustle's
# spelling (None: the same), and whether it takes a value
FLAGS: dict[str, tuple[str | None, bool]] = {
    "-i": (None, True), "--inventory": (None, True),
    "-l": (None, True), "--limit": (None, True),
    "-e": (None, True), "--extra-vars": (None, True),
    "-t": ("--tags", True), "--tags": (None, True), "--skip-tags": (None, True),
    "-C": ("--check", False), "--check": (None, False),
    "-D": ("--diff", False), "--diff": (None, False),
    "--force-handlers": (None, False),
    "-f": (None, True), "--forks": (None, True),
    "--start-at-task": (None, True),
    "-b": (None, False), "--become": (None, False),
}
_VERBOSE = re.compile(r"^-v+$")
_ASSIGN = re.compile(r"^(?:export\s+)?([A-Za-z_]\w*)=(.*)$")
_VAR = re.compile(r"\$\{(\w+)\}|\$(\w+)")
# characters that end a command inside a shell line (outside quotes)
_ENDS = "|;&)<>\n"


@dataclass(frozen=True)
class Invocation:
    """One ``ansible-playbook`` line of a runme.sh, as both tools run it."""

    target: str
    line: int
    text: str  # the command as written (from ``ansible-playbook`` on)
    playbook: str = ""
    args: tuple[str, ...] = ()  # ansible-playbook's flags, ``"$@"`` and -v dropped
    env: tuple[tuple[str, str], ...] = ()  # the ANSIBLE_* settings in force for it
    skipped: str = ""  # why it is not run ("" : it is)

    @property
    def key(self) -> str:
        return f"{self.target}:{self.line}"

    def argv(self, tool: str) -> list[str]:
        if tool == "ansible":
            return [str(BIN / "ansible-playbook"), self.playbook, *self.args]
        out: list[str] = []
        for arg in self.args:
            spelled = FLAGS.get(arg, (None, False))[0]
            out.append(spelled or arg)
        return [str(BIN / "rustle-deploy"), self.playbook, *out, "--run"]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """The script's lines with backslash continuations joined, each with its first line number."""
    out: list[tuple[int, str]] = []
    buf, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = number
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        out.append((start, buf + raw))
        buf = ""
    if buf:
        out.append((start, buf))
    return out


def _command_at(line: str, at: int) -> str:
    """The command that starts at ``line[at]``, up to the first unquoted pipe, redirection,
    ``)``, ``;`` or ``&`` (a ``$(`` inside quotes is part of it)."""
    quote = ""
    i = at
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':
                i += 1
        elif ch in "'\"":
            quote = ch
        elif ch in _ENDS or (ch == "2" and line.startswith("2>", i)):
            break
        i += 1
    return line[at:i].strip()


def _expand(word: str, variables: dict[str, str | None]) -> str | None:
    """``$NAME`` and ``${NAME}`` from the script's simple assignments (None: one is unknown)."""
    missing = False

    def sub(match: re.Match[str]) -> str:
        nonlocal missing
        value = variables.get(match.group(1) or match.group(2))
        if value is None:
            missing = True
            return ""
        return value

    out = _VAR.sub(sub, word)
    return None if missing else out


def _unquote(value: str) -> str:
    try:
        parts = shlex.split(value)
    except ValueError:
        return value
    return parts[0] if len(parts) == 1 else value


def invocations(root: Path, name: str, output_dir: str = "$OUTPUT_DIR") -> list[Invocation]:
    """Every ``ansible-playbook`` invocation of ``name``'s runme.sh, in order, each either
    translated (playbook, flags, ANSIBLE_* environment) or with the reason it is not run. The
    same invocation twice (a shell loop's body) is listed once."""
    script = (root / name / "runme.sh").read_text()
    variables: dict[str, str | None] = {"OUTPUT_DIR": output_dir, "output_dir": output_dir}
    exported: set[str] = set()
    out: list[Invocation] = []
    seen: set[tuple[Any, ...]] = set()
    for number, line in _logical_lines(script):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        loop = re.match(r"^for\s+(\w+)\s+in\s+([^;]*)", stripped)
        if loop:  # a loop's body runs once, with the first value (ansible's default, for strategy)
            values = loop.group(2).split()
            variables[loop.group(1)] = _unquote(values[0]) if values and "$" not in values[0] else None
            continue
        if stripped.startswith("export ") and "=" not in stripped:
            exported.update(stripped.split()[1:])
            continue
        if stripped.startswith("unset "):
            for var in stripped.split()[1:]:
                variables.pop(var, None)
                exported.discard(var)
            continue
        assign = _ASSIGN.match(stripped)
        if assign and "ansible-playbook" not in stripped and "$(" not in stripped:
            var, value = assign.groups()
            variables[var] = _expand(_unquote(value), variables)
            if stripped.startswith("export "):
                exported.add(var)
            continue
        for match in re.finditer(r"(?<![\w/.-])ansible-playbook(?![\w-])", line):
            command = _command_at(line, match.start())
            prefix = re.search(r"((?:[A-Z_][A-Z0-9_]*=\S+\s+)*)$", line[:match.start()])
            inline = dict(a.split("=", 1) for a in (prefix.group(1).split() if prefix else []))
            env = {v: variables.get(v) for v in sorted(exported) if v.startswith("ANSIBLE_")}
            env.update({k: _expand(_unquote(v), variables) for k, v in inline.items()})
            inv = _translate(name, number, command, env, variables)
            ident = (inv.playbook, inv.args, inv.env, inv.skipped)
            if ident in seen:
                continue
            seen.add(ident)
            out.append(inv)
    return out


def _translate(target: str, number: int, command: str, env: dict[str, str | None],
               variables: dict[str, str | None]) -> Invocation:
    base = Invocation(target, number, command)
    unknown = sorted(k for k, v in env.items() if v is None)
    if unknown:
        return _skip(base, f"runs with {', '.join('$' + k for k in unknown)} set by a shell loop or command")
    try:
        words = shlex.split(command)[1:]
    except ValueError as exc:
        return _skip(base, f"cannot split the command: {exc}")
    args: list[str] = []
    playbooks: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "$@" or _VERBOSE.match(word):
            continue
        expanded = _expand(word, variables)
        if expanded is None:
            return _skip(base, f"uses {word!r}, set by a shell loop or command")
        word = expanded
        flag, _, inline = word.partition("=") if word.startswith("--") else (word, "", "")
        if not word.startswith("-"):
            playbooks.append(word)
            continue
        if flag not in FLAGS:
            return _skip(base, f"flag {flag} is not translated")
        args.append(flag)
        if FLAGS[flag][1]:
            if inline:
                value: str | None = inline
            elif i < len(words):
                value = _expand(words[i], variables)
                i += 1
            else:
                return _skip(base, f"flag {flag} has no value")
            if value is None:
                return _skip(base, f"{flag} {words[i - 1]!r} is set by a shell loop or command")
            args.append(value)
    if len(playbooks) != 1:
        return _skip(base, f"expected one playbook, found {len(playbooks)}")
    clean = tuple(sorted((k, v) for k, v in env.items() if v is not None))
    return Invocation(target, number, command, playbooks[0], tuple(args), clean)


def _skip(inv: Invocation, why: str) -> Invocation:
    return Invocation(inv.target, inv.line, inv.text, skipped=why)


def runme_targets(root: Path) -> list[str]:
    """Targets with a runme.sh that ansible-test runs here (not Windows, cloud, disabled...; a
    role-shaped one the role harness leaves to its runme.sh, ``RUNME_ONLY``, is one)."""
    return sorted(p.name for p in root.iterdir()
                  if (p / "runme.sh").is_file() and (p / "aliases").is_file()
                  and (not_run(root, p.name) is None or p.name in RUNME_ONLY))


def _inventory() -> str:
    """The inventory ansible-test writes for a local run (``../../inventory`` of a target)."""
    return ("[testgroup]\ntesthost ansible_connection=local ansible_pipelining=yes "
            f"ansible_python_interpreter={sys.executable}\n")


def prepare(root: Path, target: str, work: Path) -> Path:
    """Lay out ``work`` as ansible-test does; return the target's copy (the runs' cwd)."""
    targets = work / "targets"
    targets.mkdir(parents=True)
    for other in root.iterdir():
        if other.name != target:
            (targets / other.name).symlink_to(other)
    shutil.copytree(root / target, targets / target, symlinks=True)
    (work / "inventory").write_text(_inventory())
    (work / "output").mkdir()
    (work / "home").mkdir()
    return targets / target


def _own_remote_dirs(cwd: Path, inv: Invocation, work: Path) -> list[Path]:
    """Give each host of the invocation's inventories its own ``rustle_remote_dir`` (in
    ``host_vars/`` beside the playbook, which only rustle-deploy's run sees), as the suite gives
    hosts that share one machine theirs: ansible-core's inventories name several local hosts.
    Returns the directories whose journals hold the run."""
    from rustle_deploy.errors import RustleError
    from rustle_deploy.inventory import load_inventory

    names = {"localhost"}
    listed: set[str] = set()  # hosts of an inline list (-i host1,host2,)
    for i, arg in enumerate(inv.args[:-1]):
        if arg in ("-i", "--inventory"):
            source = cwd / inv.args[i + 1]
            try:
                if source.exists():
                    names.update(load_inventory(source).hosts)
                else:
                    listed.update(load_inventory(inv.args[i + 1]).hosts)
            except RustleError:
                continue  # rustle-deploy's run says why
    # hosts of the target's inventory files that name no connection and do not resolve (the
    # meta_tasks target's one, two, three, and four, which the playbook's refresh_inventory
    # reads from another of its files): ansible-playbook never reaches them either
    for path in sorted(cwd.glob("inventory*")):
        try:
            hosts = load_inventory(path).hosts
        except RustleError:
            continue
        listed.update(name for name, host in hosts.items()
                      if not {"ansible_host", "ansible_connection"} & set(host.vars)
                      and not _resolves(name))
    host_vars = (cwd / inv.playbook).parent / "host_vars"
    if not host_vars.parent.is_dir():  # no such playbook: both tools say so
        return []
    dirs = []
    for name in sorted(names | listed):
        path = host_vars / f"{name}.yml"
        if path.exists():  # the target's own: the host keeps the default remote directory
            continue
        host_vars.mkdir(exist_ok=True)
        text = f"rustle_remote_dir: {work / 'remote' / name}\n"
        if name in listed:
            # ansible-playbook runs these targets' tasks (debug, fail, set_fact) on the controller
            # and never reaches host1; rustle-deploy runs every task on the host: a local one
            text += f"ansible_connection: local\nansible_python_interpreter: {sys.executable}\n"
        path.write_text(text)
        dirs.append(work / "remote" / name)
    return dirs


def _resolves(name: str) -> bool:
    try:
        socket.getaddrinfo(name, None)
    except OSError:
        return False
    return True


def run_invocation(root: Path, inv: Invocation, tool: str, base: Path | None = None) -> Run:
    """Run one invocation under ``tool`` (``ansible`` or ``rustle``) in a fresh directory."""
    with tempfile.TemporaryDirectory(prefix=f"acc-{tool}-{inv.target}-", dir=base) as tmp:
        work = Path(tmp)
        cwd = prepare(root, inv.target, work)
        env = _env(work)
        env.update(ANSIBLE_ROLES_PATH=str(work / "targets"), OUTPUT_DIR=str(work / "output"))
        env.update(dict(inv.env))
        remotes = [work / "home" / ".rustle"]
        if tool == "rustle":
            remotes += _own_remote_dirs(cwd, inv, work)
        argv = [a.replace("$OUTPUT_DIR", str(work / "output")) for a in inv.argv(tool)]
        return execute(tool, argv, cwd, work, env, remotes)


@functools.cache
def _targets_digest(root: Path) -> str:
    from .records import tree_digest

    return tree_digest(root)


def oracle_inputs(root: Path, inv: Invocation) -> dict[str, Any]:
    """What decides ansible-playbook's run of ``inv`` (the key of its record,
    tests/acceptance/records.py): every target's files as the sdist ships them (the copy is laid
    out with the others beside it, which its playbooks may reach), the command line and its
    ``ANSIBLE_*`` settings, and what the harness writes and sets around them."""
    from .records import file_digest

    return {
        "ansible-core": ANSIBLE_VERSION, "invocation": inv.key, "targets": _targets_digest(root),
        "argv": inv.argv("ansible")[1:], "env": dict(inv.env),
        "inventory": _inventory().replace(sys.executable, "{python}"), "settings": ANSIBLE_SETTINGS,
        "callback": file_digest(CALLBACKS / "results_jsonl.py"),
    }


def oracle_record(root: Path, inv: Invocation) -> Any:
    from . import records

    return records.Record(records.RECORDS / ANSIBLE_VERSION / "runme" / inv.target / f"{inv.line}.json",
                          oracle_inputs(root, inv))


def recorded_oracle(root: Path, inv: Invocation, base: Path | None = None) -> Run:
    """ansible-playbook's run of ``inv``: its committed record, or a live run (``RUSTLE_ORACLE``)."""
    from . import records

    return records.oracle_run(oracle_record(root, inv), lambda: run_invocation(root, inv, "ansible", base),
                              _mask, lambda **kw: Run("ansible", **kw))


def exit_class(run: Run) -> str:
    """What a run's exit says, in words both tools share: ``ok``, ``hosts failed`` or
    ``error`` (bad input, nothing run; or a run ansible-core aborted, which rustle-deploy records
    as errored on the task where it would have: docs/playbooks.md "A run that errored"),
    ``timeout``."""
    if run.code is None:
        return "timeout"
    if run.code == 0:
        return "ok"
    if run.tool == "ansible":
        return "hosts failed" if run.code in (2, 3) else "error"
    if run.code == 1 and any(rec.get("errored") for rec in run.results):
        return "error"
    return "hosts failed" if run.code == 1 else "error"


@dataclass
class Outcome:
    """One invocation compared: task results per host, and how each run ended."""

    cmp: Comparison = field(default_factory=Comparison)
    exits: tuple[str, str] = ("", "")

    @property
    def same(self) -> bool:
        return (self.exits[0] == self.exits[1] and not self.cmp.refused and self.cmp.different == 0
                and not self.cmp.unreached)


def compare_hosts(a: Run, r: Run) -> Comparison:
    """:func:`compare` per host (each tool runs the hosts in its own interleaving), summed.
    A refused rustle-deploy run is refused unless ansible-playbook refused the playbook too
    (both stopped before any task: nothing to compare, and they agree)."""
    if r.refused:
        return Comparison(refused=bool(a.results) or exit_class(a) != "error")
    hosts: list[str] = []
    for rec in a.results + r.results:
        if rec.get("host", HOST) not in hosts:
            hosts.append(rec.get("host", HOST))
    total = Comparison()
    for host in hosts:
        part = compare(Run("ansible", results=[x for x in a.results if x.get("host", HOST) == host]),
                       Run("rustle", results=[x for x in r.results if x.get("host", HOST) == host]))
        total.compared += part.compared
        total.identical += part.identical
        total.differences += [f"[{host}] {d}" for d in part.differences]
        for tool, n in part.unreached.items():
            total.unreached[tool] = total.unreached.get(tool, 0) + n
    return total


def outcome(a: Run, r: Run) -> Outcome:
    return Outcome(compare_hosts(a, r), (exit_class(a), exit_class(r)))


# --- running and the report -------------------------------------------------------------------

def run_all(root: Path, names: list[str], data: dict[str, Any], oracle: bool, jobs: int,
            save: Any) -> None:
    """Run every translated invocation of ``names`` under both tools into ``data["runme"]``
    (ansible-playbook's results are reused unless ``oracle``); ``save(key, entry)`` after each."""
    from concurrent.futures import ThreadPoolExecutor
    from dataclasses import asdict

    store: dict[str, Any] = data.setdefault("runme", {})
    todo = [inv for name in names for inv in invocations(root, name) if not inv.skipped]

    def one(inv: Invocation) -> None:
        cached = store.get(inv.key, {})
        entry: dict[str, Any] = {"argv": inv.argv("ansible")[1:], "env": dict(inv.env)}
        if not oracle and cached.get("argv") == entry["argv"] and cached.get("env") == entry["env"] \
                and cached.get("ansible", {}).get("code") is not None:
            entry["ansible"] = cached["ansible"]
        else:
            entry["ansible"] = asdict(run_invocation(root, inv, "ansible"))
            refresh_record(oracle_record(root, inv), Run(**entry["ansible"]))
        entry["rustle"] = asdict(run_invocation(root, inv, "rustle"))
        store[inv.key] = entry
        res = outcome(Run(**entry["ansible"]), Run(**entry["rustle"]))
        print(f"{inv.key:34} {inv.playbook:44} {res.cmp.compared:3}/{res.cmp.identical:3} "
              f"{'same' if res.same else 'DIFFERENT'} {res.exits}", flush=True)
        save(inv.key, entry)

    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, todo))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(root: Path, data: dict[str, Any]) -> str:
    """The report's second part: each runme.sh invocation that ran, compared."""
    store: dict[str, Any] = data.get("runme", {})
    rows: list[str] = []
    skipped: list[str] = []
    details: list[str] = []
    totals = {"run": 0, "same": 0, "compared": 0, "identical": 0, "refused": 0, "skipped": 0}
    targets = [n for n in runme_targets(root) if any(k.startswith(n + ":") for k in store)]
    for name in targets:
        for inv in invocations(root, name):
            command = f"`{_cell(inv.text)[:90]}`"
            if inv.skipped:
                totals["skipped"] += 1
                skipped.append(f"| {name} | {inv.line} | {command} | {_cell(inv.skipped)} |")
                continue
            entry = store.get(inv.key)
            if entry is None:
                rows.append(f"| {name} | {inv.line} | {command} | not run yet | | | |")
                continue
            a, r = Run(**entry["ansible"]), Run(**entry["rustle"])
            res = outcome(a, r)
            totals["run"] += 1
            totals["same"] += res.same
            totals["compared"] += res.cmp.compared
            totals["identical"] += res.cmp.identical
            totals["refused"] += res.cmp.refused
            cmp = "refused" if res.cmp.refused else f"{res.cmp.compared}/{res.cmp.identical}/{res.cmp.different}"
            note = "" if res.same else ("exits differ" if res.exits[0] != res.exits[1] else "results differ")
            rows.append(f"| {name} | {inv.line} | {command} | {res.exits[0]} ({len(a.results)}) "
                        f"| {res.exits[1]} ({len(r.results)}) | {cmp} | {note} |")
            if not res.same:
                details.append(f"### {inv.key} `{_cell(inv.text)[:120]}`\n")
                details.append(f"ansible-playbook: {res.exits[0]} (exit {a.code}); rustle-deploy: "
                               f"{res.exits[1]} (exit {r.code})\n")
                details += [f"- {_cell(d)[:400]}" for d in res.cmp.differences[:5]]
                for tool, n in sorted(res.cmp.unreached.items()):
                    details.append(f"- {tool} ran {n} more task results after the other tool stopped")
                if r.refused:
                    details.append("\nRefused at compile time:\n\n```\n" + r.refused + "\n```")
                details.append("")
    head = [
        "# Part 2: the runme.sh targets, playbook by playbook",
        "",
        "Generated by `make acceptance ACCEPTANCE_ARGS=\"--runme TARGET...\"` (tests/acceptance/runme.py). "
        "These targets are not role-shaped: their `runme.sh` runs `ansible-playbook` several times "
        "and greps the output. Each simple `ansible-playbook X.yml [-i INV] [flags]` line is run "
        "under both tools in a fresh copy of the target laid out as ansible-test lays it out, with "
        "the `ANSIBLE_*` settings the script exports; a line with a flag or a shell variable that "
        "cannot be translated is listed below with the reason, not run. The script's greps are "
        "not replayed: the task results are compared one by one, per host, as above, and the "
        "runs' endings are compared as ok / hosts failed / error (the playbook refused, nothing "
        "run). An invocation is the same when both end alike and every compared result is "
        "identical. Columns: how each tool ended (its task results), compared/identical/different.",
        "",
        "## Totals (part 2)",
        "",
        f"- targets: {len(targets)} run ({', '.join(targets) or 'none'}); invocations run: "
        f"{totals['run']}; not translated: {totals['skipped']}",
        f"- invocations the same under both tools: {totals['same']} of {totals['run']}",
        f"- task results compared: {totals['compared']}; identical: {totals['identical']}; "
        f"different: {totals['compared'] - totals['identical']}; invocations refused by rustle-deploy "
        f"only: {totals['refused']}",
        "",
        "| target | line | command | ansible-playbook | rustle-deploy | compared/identical/different | note |",
        "|---|---|---|---|---|---|---|",
    ]
    tail = ["", "## Invocations not translated", "", "| target | line | command | why |", "|---|---|---|---|"]
    return "\n".join(head + rows + tail + skipped + ["", "## Differences (part 2)", ""] + details) + "\n"
