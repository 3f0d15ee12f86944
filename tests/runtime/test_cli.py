"""The artifact's command line: verify, manifest, --version, exit codes, payload forms."""

from __future__ import annotations

import json
import sys
import zipfile

from .conftest import build_test_artifact, make_plan, run_artifact, task


def _artifact(tmp_path, tasks=None, **kw):
    return build_test_artifact(tmp_path, make_plan(tasks or [task("ping", {})]), **kw)


def test_version_and_manifest(tmp_path):
    artifact = _artifact(tmp_path)
    r = run_artifact(artifact, "--version")
    assert r.rc == 0 and r.stdout.startswith("rustle-runtime 0.1.0 (protocol 1")
    r = run_artifact(artifact, "manifest")
    manifest = json.loads(r.stdout)
    assert r.rc == 0 and manifest["protocol"] == 1
    assert "plan.json" in manifest["entries"] and "rustle_runtime/cli.py" in manifest["entries"]


def test_verify_ok_and_flipped_byte(tmp_path):
    data = b"payload bytes " * 50
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    artifact = _artifact(tmp_path, files={sha: data})
    r = run_artifact(artifact, "verify")
    assert r.rc == 0 and json.loads(r.stdout)["ok"] is True
    raw = bytearray(artifact.read_bytes())
    with zipfile.ZipFile(artifact) as zf:
        info = zf.getinfo(f"files/{sha}")
    # local header: 30 bytes + name + extra (zipfile already counts the launcher prefix)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    assert raw[start:start + info.compress_size] != b""
    raw[start + 5] ^= 0x01
    broken = tmp_path / "broken.pyz"
    broken.write_bytes(bytes(raw))
    r = run_artifact(broken, "verify")
    assert r.rc == 3
    assert f"files/{sha}" in r.stderr and json.loads(r.stdout)["ok"] is False


def test_verify_detects_unlisted_and_missing(tmp_path):
    artifact = _artifact(tmp_path)
    with zipfile.ZipFile(artifact, "a") as zf:
        zf.writestr("extra.txt", b"x")
    r = run_artifact(artifact, "verify")
    assert r.rc == 3 and "extra.txt: not listed" in r.stderr


def test_unknown_host_and_bad_usage_exit_3(tmp_path):
    artifact = _artifact(tmp_path)
    r = run_artifact(artifact, "run", "--host", "nope")
    assert r.rc == 3 and "unknown host 'nope'" in r.stderr and "h1" in r.stderr
    assert run_artifact(artifact, "run").rc == 3
    assert run_artifact(artifact, "frobnicate").rc == 3
    assert run_artifact(artifact).rc == 3


def test_corrupt_plan_is_exit_3(tmp_path):
    artifact = _artifact(tmp_path)
    out = tmp_path / "bad.pyz"
    with zipfile.ZipFile(artifact) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = b"{not json" if item.filename == "plan.json" else src.read(item)
            dst.writestr(item, data)
    r = run_artifact(out, "run", "--host", "h1")
    assert r.rc == 3 and "plan.json" in r.stderr


def test_runtime_bug_is_exit_1(tmp_path):
    plan = make_plan([])
    plan["plays"] = 5  # a compiler bug: the runtime crashes with a traceback
    artifact = build_test_artifact(tmp_path, plan)
    r = run_artifact(artifact, "run", "--host", "h1")
    assert r.rc == 1 and "Traceback" in r.stderr


def test_exit_codes_ok_and_failed(tmp_path):
    ok = build_test_artifact(tmp_path, make_plan([task("ping", {})]))
    assert run_artifact(ok, "run", "--host", "h1").rc == 0
    bad = build_test_artifact(tmp_path, make_plan([task("fail", {})]))
    r = run_artifact(bad, "run", "--host", "h1")
    assert r.rc == 2 and r.recap["failed"] == 1


def test_runs_from_a_directory(tmp_path):
    artifact = _artifact(tmp_path, [task("debug", {"msg": "{{ 'dir' | upper }}"}, name="d")])
    tree = tmp_path / "tree"
    with zipfile.ZipFile(artifact) as zf:
        zf.extractall(tree)
    r = run_artifact(tree, "run", "--host", "h1")
    assert r.rc == 0 and r.result("d")["msg"] == "DIR"
    assert run_artifact(tree, "verify").rc == 0


def test_without_jinja_simple_conditions_work_and_templates_fail_clearly(tmp_path):
    plan_hosts = {"h1": {"x": "a", "y": "yes"}}
    artifact = build_test_artifact(tmp_path, make_plan(
        [task("debug", {"msg": "plain"}, name="simple", when=["x is defined and x == 'a'", "y | bool"]),
         task("debug", {"msg": "{% if x %}ab{% endif %}"}, name="needs jinja")], hosts=plan_hosts), with_jinja=False)
    # -S: no site-packages, so only what the artifact carries can be imported
    r = run_artifact(artifact, "run", "--host", "h1", flags=("-S",))
    assert r.result("simple")["status"] == "ok"
    assert "carries no Jinja2" in r.result("needs jinja")["msg"]
    assert r.rc == 2


def test_event_lines_are_utf8(tmp_path):
    artifact = _artifact(tmp_path, [task("debug", {"msg": "héllo ✓"}, name="u")])
    import subprocess

    proc = subprocess.run([sys.executable, str(artifact), "run", "--host", "h1"], capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"})
    assert proc.returncode == 0
    lines = [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]
    assert [e["msg"] for e in lines if e.get("task") == "u" and e["event"] == "task_result"] == ["héllo ✓"]


def test_play_selection_runs_a_stage_and_carries_registered_results(tmp_path):
    """A rollout runs a plan's plays in stages (docs/rollouts.md): --plays picks them by plan
    index; --carry keeps registered results and set_fact from one stage to the next."""
    hosts = {"h1": {}}
    plays = [
        {"index": 0, "name": "first", "hosts": ["h1"], "vars": {},
         "tasks": [task("set_fact", {"kept": "from-0"}, name="keep"),
                   task("command", {"_raw_params": "echo hi"}, name="reg", register="said")], "handlers": []},
        {"index": 2, "name": "third", "hosts": ["h1"], "vars": {},
         "tasks": [task("debug", {"msg": "{{ kept }} {{ said.stdout }}"}, name="use")], "handlers": []},
    ]
    artifact = build_test_artifact(tmp_path, make_plan([], hosts=hosts, plays=plays))
    carry = tmp_path / "runs" / "d-1.vars.json"
    carry.parent.mkdir()
    first = run_artifact(artifact, "run", "--host", "h1", "--plays", "0", "--carry", str(carry))
    assert first.rc == 0 and [e["play"] for e in first.of("play_start")] == ["first"]
    assert oct(carry.stat().st_mode & 0o777) == "0o600"
    second = run_artifact(artifact, "run", "--host", "h1", "--plays", "2", "--carry", str(carry))
    assert second.rc == 0 and [e["play"] for e in second.of("play_start")] == ["third"]
    assert second.result("use")["msg"] == "from-0 hi"
    none = run_artifact(artifact, "run", "--host", "h1", "--plays", "1")
    assert none.rc == 0 and not none.of("play_start")


def test_run_takes_the_hosts_own_variables_from_vars_file(tmp_path):
    """The artifact carries no host's own variables (docs/artifact.md, "Host variables"): run
    by hand they come from --vars; an artifact that still carries them runs with its own."""
    tasks = [task("debug", {"msg": "pw={{ db_password | default('none') }}"}, name="show")]
    artifact = build_test_artifact(tmp_path, make_plan(tasks, hosts={"h1": {}, "h2": {}}))
    vars_file = tmp_path / "vars.json"
    vars_file.write_text(json.dumps({"db_password": "mine"}))
    r = run_artifact(artifact, "run", "--host", "h1", "--vars", str(vars_file))
    assert r.rc == 0 and r.result("show")["msg"] == "pw=mine", r.stderr
    assert run_artifact(artifact, "run", "--host", "h1").result("show")["msg"] == "pw=none"
    vars_file.write_text("[1]")
    bad = run_artifact(artifact, "run", "--host", "h1", "--vars", str(vars_file))
    assert bad.rc == 3 and "not a JSON object" in bad.stderr
    legacy = build_test_artifact(tmp_path, make_plan(tasks, hosts={"h1": {"db_password": "old"}}))
    assert run_artifact(legacy, "run", "--host", "h1").result("show")["msg"] == "pw=old"


def test_phases_carry_state_handlers_and_injected_values(tmp_path):
    """A play cut into phases (docs/phases.md): --phase runs that phase's top-level tasks; the
    carry file keeps registered results and pending handlers; a handler notified in phase 0
    runs at the end of the last phase, once; --share hands back what a phase set; run_once
    runs where the controller sends it; an old carry file (the variables alone) still loads."""
    hosts = {"h1": {}}
    plays = [{"index": 0, "name": "cut", "hosts": ["h1"], "vars": {}, "phases": 3, "tasks": [
        task("command", {"_raw_params": "echo one"}, name="first", register="one", phase=0, notify=["h"],
             changed_when="true"),
        task("set_fact", {"picked": "{{ one.stdout }}-x"}, name="once", phase=1, run_once=True),
        task("debug", {"msg": "{{ one.stdout }} {{ picked }} {{ old }}"}, name="last", phase=2),
    ], "handlers": [task("debug", {"msg": "handled {{ picked }}"}, name="h")]}]
    artifact = build_test_artifact(tmp_path, make_plan([], hosts=hosts, plays=plays))
    carry = tmp_path / "carry.json"
    carry.write_text(json.dumps({"old": "value"}))  # the first format: variables alone
    first = run_artifact(artifact, "run", "--host", "h1", "--plays", "0", "--phase", "0", "--carry", str(carry))
    assert first.rc == 0, first.stderr
    assert [e["task"] for e in first.of("task_result")] == ["first"] and not first.of("handler_result")
    assert json.loads(carry.read_text())["notified"] == {"0": [0]}
    journal = tmp_path / "journal.jsonl"
    second = run_artifact(artifact, "run", "--host", "h1", "--plays", "0", "--phase", "1", "--carry", str(carry),
                          "--share", "state", "--journal", str(journal))
    assert second.rc == 0 and not second.of("play_start")  # the play started in phase 0
    assert second.result("once")["status"] == "ok"  # run_once: the controller chose this host
    shared = second.of("shared")[0]
    assert shared["vars"] == {"picked": "one-x"} and shared["state"]["vars"]["one"]["stdout"] == "one"
    assert shared["state"]["facts"]["ansible_system"]  # a delegated phase gets the host's facts
    assert '"shared"' not in journal.read_text()  # controller data, never in the host's journal
    third = run_artifact(artifact, "run", "--host", "h1", "--plays", "0", "--phase", "2", "--carry", str(carry))
    assert third.rc == 0, third.stderr
    assert third.result("last")["msg"] == "one one-x value"
    assert third.result("h")["msg"] == "handled one-x"  # notified in phase 0, run at the play's end
    assert json.loads(carry.read_text())["notified"] == {}


def test_unreachable_run_reports_each_task_that_needs_the_connection(tmp_path):
    """--unreachable (a delegated phase whose connection failed, docs/artifact.md): a task that
    needs the connection is unreachable and registered so; ignore_unreachable goes on (counted
    ok and ignored); debug and set_fact still run; a false when still skips; the host leaves
    the play at the first unreachable task, without rescue or always (as in ansible-core)."""
    marker = tmp_path / "ran"
    tasks = [
        task("command", {"_raw_params": f"touch {marker}"}, name="ignored", register="r", ignore_unreachable=True),
        task("debug", {"msg": "{{ r.unreachable }} {{ r.msg }}"}, name="show"),
        task("command", {"_raw_params": "true"}, name="skipped", when=["false"]),
        {"id": "play-0/blk", "name": "blk", "hosts": None, "when": [], "tags": [],
         "block": [task("command", {"_raw_params": "true"}, name="stops")],
         "rescue": [task("debug", {"msg": "rescued"}, name="rescue")],
         "always": [task("debug", {"msg": "always"}, name="always")]},
        task("debug", {"msg": "after"}, name="after"),
    ]
    artifact = build_test_artifact(tmp_path, make_plan(tasks))
    r = run_artifact(artifact, "run", "--host", "h1", "--unreachable", "gw: connection refused")
    assert r.rc == 2 and not marker.exists()
    statuses = {e["task"]: (e["status"], e["ignored"]) for e in r.of("task_result")}
    assert statuses == {"ignored": ("unreachable", True), "show": ("ok", False), "skipped": ("skipped", False),
                        "stops": ("unreachable", False)}
    assert r.result("show")["msg"] == "True gw: connection refused"
    recap = r.of("recap")[0]
    assert (recap["ok"], recap["ignored"], recap["unreachable"], recap["failed"], recap["skipped"]) == (2, 1, 1, 0, 1)
