"""Verify a benchmark run: every host's directory holds the expected result, and the tool's
own report says what it should (no failures; a warm run changed nothing).

The expected tree is written out here independently of the three workload definitions, so a
tool that skips or mis-applies a task fails the check. Changed counts come from each tool's
output: ansible-playbook's PLAY RECAP, pyinfra's per-host operation lines, rustle-deploy's
JSON document (`hosts[].recap`).
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from hosts import LEGACY, Host

WORKLOAD = Path(__file__).resolve().parent / "workload"
# pyinfra runs stat/shell/assert as python.call callbacks, which it always reports as executed
PYINFRA_CALLBACKS = {"Stat the copied file", "Count settings with a shell pipeline",
                     "Assert on the registered results"}
# what a cold run reports as changed per host (pyinfra has one operation per directory)
COLD_CHANGED = {"ansible": 9, "pyinfra": 11, "rustle": 9}


@dataclass(frozen=True)
class Counts:
    changed: int
    failed: int


def expected_tree(host: Host, role: str) -> dict[str, tuple[str, int, str]]:
    """Relative path -> (kind, mode, content or link target) of everything under bench_root."""
    root = host.root
    app_conf = (WORKLOAD / "files" / "app.conf").read_text()
    return {
        "app": ("dir", 0o755, ""),
        "app/conf": ("dir", 0o750, ""),
        "app/data": ("dir", 0o700, ""),
        "app/conf/app.conf": ("file", 0o644, app_conf),
        "app/motd": ("file", 0o644, f"Welcome to {host.name} (role: {role})\n"
                                    f"Managed files live under {root}/app\n"),
        "app/conf/inline.txt": ("file", 0o600, f"managed inline\nhost={host.name}\n"),
        "app/conf/settings.ini": ("file", 0o644, f"owner = {host.name}\n"),
        "app/data/legacy.cfg.orig": ("file", 0o644, LEGACY),
        "legacy.cfg": ("file", 0o644, LEGACY.replace("workers = 1", "workers = 4")),
        "app/current.conf": ("link", 0, f"{root}/app/conf/app.conf"),
    }


def check_host(host: Host, role: str) -> list[str]:
    """Problems with one host's bench_root (empty when it is exactly as expected)."""
    want = expected_tree(host, role)
    have = {str(p.relative_to(host.root)): p for p in host.root.rglob("*")}
    problems = [f"{host.name}: unexpected {rel}" for rel in sorted(set(have) - set(want))]
    for rel, (kind, mode, content) in want.items():
        path = have.get(rel)
        if path is None:
            problems.append(f"{host.name}: missing {rel}")
            continue
        st = path.lstat()
        actual_kind = ("link" if stat.S_ISLNK(st.st_mode) else
                       "dir" if stat.S_ISDIR(st.st_mode) else "file")
        if actual_kind != kind:
            problems.append(f"{host.name}: {rel} is a {actual_kind}, expected a {kind}")
        elif kind == "link":
            if str(path.readlink()) != content:
                problems.append(f"{host.name}: {rel} -> {path.readlink()}, expected {content}")
        else:
            if stat.S_IMODE(st.st_mode) != mode:
                problems.append(f"{host.name}: {rel} mode {stat.S_IMODE(st.st_mode):04o}, "
                                f"expected {mode:04o}")
            if kind == "file" and path.read_text() != content:
                problems.append(f"{host.name}: {rel} content differs: {path.read_text()!r}")
    return problems


# -- parsing each tool's report ----------------------------------------------------------------
ANSIBLE_RECAP = re.compile(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                           re.M)
PYINFRA_OP = re.compile(r"^--> Starting operation: (.*?)\s*$")
PYINFRA_HOST = re.compile(r"^\s+\[([^\]]+)\] (Success|No changes|Error.*)$")


def parse_ansible(text: str) -> dict[str, Counts]:
    return {m[1]: Counts(int(m[2]), int(m[3]) + int(m[4])) for m in ANSIBLE_RECAP.finditer(text)}


def parse_pyinfra(text: str) -> dict[str, Counts]:
    changed: dict[str, int] = {}
    failed: dict[str, int] = {}
    op = ""
    for line in text.splitlines():
        if m := PYINFRA_OP.match(line):
            op = m[1]
        elif (m := PYINFRA_HOST.match(line)) and op:
            changed.setdefault(m[1], 0)
            failed.setdefault(m[1], 0)
            if m[2] == "Success" and op not in PYINFRA_CALLBACKS:
                changed[m[1]] += 1
            elif m[2].startswith("Error"):
                failed[m[1]] += 1
    return {h: Counts(changed[h], failed[h]) for h in changed}


def parse_rustle(text: str) -> dict[str, Counts]:
    doc = json.loads(text)
    out = {}
    for h in doc.get("hosts", []):
        recap = h.get("recap") or {}
        bad = int(recap.get("failed", 0)) + (0 if h.get("ok") and not h.get("error") else 1)
        out[h["name"]] = Counts(int(recap.get("changed", 0)), bad)
    return out


PARSERS = {"ansible": parse_ansible, "pyinfra": parse_pyinfra, "rustle": parse_rustle}


def check_run(tool: str, output: str, hosts: list[Host], roles: dict[str, str], cold: bool) -> list[str]:
    """Everything wrong with one run of `tool` (its stdout is `output`) over `hosts`."""
    problems: list[str] = []
    for host in hosts:
        problems += check_host(host, roles[host.name])
    if tool not in PARSERS:
        return problems
    try:
        counts = PARSERS[tool](output)
    except (ValueError, KeyError, TypeError) as exc:
        return problems + [f"{tool}: cannot read its report: {exc}"]
    want = COLD_CHANGED[tool] if cold else 0
    for host in hosts:
        c = counts.get(host.name)
        if c is None:
            problems.append(f"{host.name}: not in {tool}'s report")
        elif c.failed:
            problems.append(f"{host.name}: {tool} reports {c.failed} failure(s)")
        elif c.changed != want:
            problems.append(f"{host.name}: {tool} reports changed={c.changed}, expected {want}")
    return problems
