"""OpenTelemetry traces (tracing.py): a deployment over the real local sshd sends its spans with
the SDK's OTLP/HTTP exporter, configured by OTEL_* only, to a receiver on 127.0.0.1 that
decodes them with opentelemetry-proto; without OTEL_* nothing of OpenTelemetry is imported; an
exporter that is not installed is a usage error that touches nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Status  # noqa: E402

from rustle_deploy.cli import main  # noqa: E402

SECRET = "otel-secret-5d1c07"  # printed by a no_log task: must never reach a span

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: write
      copy:
        content: "hello\\n"
        dest: "{{ rustle_test_root }}/hello.txt"
    - name: secret
      shell: echo SECRET
      no_log: true
    - name: fail here
      shell: "exit 3"
      when: fail_me is defined
""".replace("SECRET", SECRET)


class Receiver:
    """An OTLP/HTTP trace receiver on loopback: keeps every request body."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        bodies, paths = self.bodies, self.paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                paths.append(self.path)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """(resource attributes, span) of every span received."""
        out = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for rs in request.resource_spans:
                resource = {a.key: a.value.string_value for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    out.extend((resource, s) for s in ss.spans)
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def _attrs(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for a in span.attributes:
        kind = a.value.WhichOneof("value")
        out[a.key] = getattr(a.value, kind) if kind else None
    return out


def _clear_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.mark.ssh
@pytest.mark.parametrize("fmt", ["pyz", "native"])
def test_a_deployment_over_ssh_sends_its_spans_to_an_otlp_receiver(
    fmt: str, sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path, receiver: Receiver,
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest,
) -> None:
    """The same spans whichever agent runs on the host: the Python one (pyz) or rustle-runner's
    (native), each announcing its stages when the request asks for a trace."""
    if fmt == "native":
        request.getfixturevalue("native_cache")
    db_path = tmp_path / "state.db"
    monkeypatch.setenv("RUSTLE_STATE_DB", str(db_path))
    _clear_otel(monkeypatch)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "rustle-trace-test")
    names = ["web0", "web1", "web2"]
    hosts = {}
    for n in names:
        h = sshd.host(n, tmp_path / "remote" / n, rustle_test_root=str(tmp_path / "root" / n))
        hosts[n] = dict(h.vars)
        (tmp_path / "root" / n).mkdir(parents=True)
    hosts["web2"]["fail_me"] = 1
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    site = tmp_path / "site.yml"
    site.write_text(PLAYBOOK)
    assert main([str(site), "-i", str(inv), "--run", "--verify", "--output", "json", "--format", fmt]) == 1
    out = capsys.readouterr()  # web2 fails
    assert SECRET not in out.out + out.err
    for n in names:  # it did deploy over ssh
        assert (tmp_path / "root" / n / "hello.txt").read_text() == "hello\n"
    with closing(sqlite3.connect(db_path)) as db:
        ((did,),) = db.execute("SELECT id FROM deployments").fetchall()

    assert receiver.bodies and set(receiver.paths) == {"/v1/traces"}
    assert not any(SECRET.encode() in body for body in receiver.bodies)
    spans = receiver.spans()
    assert {r["service.name"] for r, _ in spans} == {"rustle-trace-test"}
    assert len({s.trace_id for _, s in spans}) == 1  # one trace for the command
    by_id = {s.span_id: s for _, s in spans}
    (root,) = [s for _, s in spans if not s.parent_span_id]
    assert root.name == f"deploy {did}"
    assert _attrs(root)["rustle.deployment_id"] == did and _attrs(root)["rustle.exit_code"] == 1
    assert root.status.code == Status.STATUS_CODE_ERROR
    children = [s for _, s in spans if s.parent_span_id == root.span_id]
    assert sorted(s.name for s in children) == ["compile", "host web0", "host web1", "host web2"]
    for s in children:
        assert root.start_time_unix_nano <= s.start_time_unix_nano <= s.end_time_unix_nano <= root.end_time_unix_nano
    compile_span = next(s for s in children if s.name == "compile")
    hosts_spans = {s.name.split()[1]: s for s in children if s.name.startswith("host ")}
    assert compile_span.end_time_unix_nano <= min(s.start_time_unix_nano for s in hosts_spans.values())
    for name, span in hosts_spans.items():
        attrs = _attrs(span)
        assert attrs["rustle.host"] == name and attrs["rustle.status"] == "activated"
        assert attrs["rustle.uploaded"] is True and attrs["rustle.operation"].startswith("deploy+run")
        stages = sorted((s for s in by_id.values() if s.parent_span_id == span.span_id),
                        key=lambda s: s.start_time_unix_nano)
        assert [s.name for s in stages] == ["connect", "upload", "verify", "activate", "history", "run"]
        assert stages[0].start_time_unix_nano == span.start_time_unix_nano
        assert stages[-1].end_time_unix_nano == span.end_time_unix_nano
        for a, b in zip(stages, stages[1:], strict=False):
            assert a.end_time_unix_nano == b.start_time_unix_nano  # one after the other
        if name == "web2":
            assert span.status.code == Status.STATUS_CODE_ERROR
            assert span.status.message == "1 task(s) failed: fail here"
        else:
            assert span.status.code == Status.STATUS_CODE_UNSET


@pytest.mark.parametrize("otel", [{}, {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "console"},
                                  {"OTEL_TRACES_EXPORTER": "none"}], ids=["unset", "disabled", "none"])
def test_without_traces_asked_nothing_of_opentelemetry_is_imported(otel: dict[str, str], tmp_path: Path) -> None:
    """A deployment to a local host in a fresh interpreter."""
    (tmp_path / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo hi\n")
    (tmp_path / "inv.ini").write_text(f"h1 ansible_connection=local rustle_remote_dir={tmp_path}/r1\n")
    code = (
        "import sys\nfrom rustle_deploy.cli import main\n"
        f"rc = main([{str(tmp_path / 'site.yml')!r}, '-i', {str(tmp_path / 'inv.ini')!r}, '--run', '--output', 'json'])\n"
        "print('RC', rc, sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("OTEL_")}
    env.update(HOME=str(tmp_path), RUSTLE_STATE_DB=str(tmp_path / "state.db"), **otel)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.splitlines()[-1] == "RC 0 []", done.stderr


def test_the_console_exporter_writes_to_stderr_and_leaves_the_json_on_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path, capfd: pytest.CaptureFixture[str],
) -> None:
    import json

    _clear_otel(monkeypatch)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("RUSTLE_STATE_DB", str(tmp_path / "state.db"))
    (tmp_path / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo hi\n")
    (tmp_path / "inv.ini").write_text(f"h1 ansible_connection=local rustle_remote_dir={tmp_path}/r1\n")
    assert main([str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.ini"), "--run", "--output", "json"]) == 0
    out, err = capfd.readouterr()
    doc = json.loads(out)  # stdout is the deployment's JSON alone
    assert '"name": "host h1"' in err and f'"name": "deploy {doc["deployment_id"]}"' in err
    assert '"name": "compile"' in err and '"name": "run"' in err


def test_an_exporter_not_installed_is_a_usage_error_that_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    _clear_otel(monkeypatch)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin_json")
    monkeypatch.setenv("RUSTLE_STATE_DB", str(tmp_path / "state.db"))
    (tmp_path / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo hi\n")
    (tmp_path / "inv.ini").write_text(f"h1 ansible_connection=local rustle_remote_dir={tmp_path}/r1\n")
    assert main([str(tmp_path / "site.yml"), "-i", str(tmp_path / "inv.ini"), "--run"]) == 2
    err = capsys.readouterr().err
    assert "OTEL_TRACES_EXPORTER: no trace exporter named 'zipkin_json' is installed" in err
    assert "console" in err and "otlp_proto_http" in err and "hint: pip install 'rustle-deploy[otel]'" in err
    assert not (tmp_path / "r1").exists() and not (tmp_path / "state.db").exists()


@pytest.mark.ssh
def test_a_rollout_has_a_span_per_batch_and_health_check_holding_their_hosts(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path, receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUSTLE_STATE_DB", str(tmp_path / "state.db"))
    _clear_otel(monkeypatch)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)  # alone: the exporter is otlp
    hosts = {}
    for n in ("a1", "a2", "a3"):
        hosts[n] = dict(sshd.host(n, tmp_path / "remote" / n, rustle_test_root=str(tmp_path / "root" / n)).vars)
        (tmp_path / "root" / n).mkdir(parents=True)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    site = tmp_path / "site.yml"
    site.write_text("- hosts: all\n  serial: 2\n  gather_facts: false\n  tasks:\n    - command: echo hi\n")
    assert main([str(site), "-i", str(inv), "--run", "--health-check", "true", "--output", "json"]) == 0, \
        capsys.readouterr().err
    spans = [s for _, s in receiver.spans()]
    assert {r["service.name"] for r, _ in receiver.spans()} == {"rustle-deploy"}  # no OTEL_SERVICE_NAME
    (root,) = [s for s in spans if not s.parent_span_id]
    assert root.status.code == Status.STATUS_CODE_UNSET and root.name.startswith("deploy d-")
    batches = sorted((s for s in spans if s.parent_span_id == root.span_id and s.name.startswith("batch ")),
                     key=lambda s: s.start_time_unix_nano)
    assert [b.name for b in batches] == ["batch 1/2", "batch 2/2"]
    assert batches[0].end_time_unix_nano <= batches[1].start_time_unix_nano  # one after the other
    under = [sorted(s.name for s in spans if s.parent_span_id == b.span_id) for b in batches]
    assert under == [["host a1", "host a2"], ["host a3"]]
    gates = sorted((s for s in spans if s.parent_span_id == root.span_id and s.name.startswith("health check")),
                   key=lambda s: s.start_time_unix_nano)
    assert [g.name for g in gates] == ["health check, batch 1/2", "health check, batch 2/2"]
    assert batches[0].end_time_unix_nano <= gates[0].start_time_unix_nano <= batches[1].start_time_unix_nano
    checked = [sorted(s.name for s in spans if s.parent_span_id == g.span_id) for g in gates]
    assert checked == [["host a1", "host a2"], ["host a3"]]
    assert {_attrs(s)["rustle.operation"] for s in spans if s.parent_span_id == gates[0].span_id} == {
        "health check, batch 1/2"}


@pytest.mark.ssh
def test_a_failed_gate_has_its_rollback_span(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path, receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUSTLE_STATE_DB", str(tmp_path / "state.db"))
    _clear_otel(monkeypatch)
    hosts = {}
    for n in ("g1", "g2"):
        hosts[n] = dict(sshd.host(n, tmp_path / "remote" / n, rustle_test_root=str(tmp_path / "root" / n)).vars)
        (tmp_path / "root" / n).mkdir(parents=True)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    site = tmp_path / "site.yml"
    for version in ("v1", "v2"):
        site.write_text(f"- hosts: all\n  serial: 1\n  gather_facts: false\n  tasks:\n    - command: echo {version}\n")
        if version == "v2":  # traced: its gate fails on g1, which goes back to v1; g2 is never reached
            monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
            args = ["--health-check", "false", "--health-retries", "0"]
        else:
            args = []
        code = main([str(site), "-i", str(inv), "--run", "--output", "json", *args])
        assert code == (1 if version == "v2" else 0), capsys.readouterr().err
    spans = [s for _, s in receiver.spans()]
    (root,) = [s for s in spans if not s.parent_span_id]
    top = sorted((s for s in spans if s.parent_span_id == root.span_id), key=lambda s: s.start_time_unix_nano)
    assert [s.name for s in top] == ["compile", "batch 1/2", "health check, batch 1/2", "rollback"]
    (back,) = [s for s in spans if s.parent_span_id == top[-1].span_id]
    assert back.name == "host g1" and _attrs(back)["rustle.operation"] == "rollback"
    assert root.status.code == Status.STATUS_CODE_ERROR


DELEGATED = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: on the host
      command: echo host
    - name: on the controller
      command: echo "controller for {{ inventory_hostname }}"
      delegate_to: localhost
    - name: once, on the controller
      command: echo once
      delegate_to: localhost
      run_once: true
    - name: back on the host
      copy:
        content: "done\\n"
        dest: "{{ rustle_test_root }}/done.txt"
"""


@pytest.mark.ssh
def test_phases_run_on_the_controller_have_their_spans(
    sshd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rustle_home: Path, receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """delegate_to: localhost and run_once on it run outside any host's agent: each such phase
    is a span holding one host span per host it ran for, cut into a single ``run`` stage."""
    monkeypatch.setenv("RUSTLE_STATE_DB", str(tmp_path / "state.db"))
    _clear_otel(monkeypatch)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url)
    names = ["app0", "app1"]
    hosts = {}
    for n in names:
        hosts[n] = dict(sshd.host(n, tmp_path / "remote" / n, rustle_test_root=str(tmp_path / "root" / n)).vars)
        (tmp_path / "root" / n).mkdir(parents=True)
    inv = tmp_path / "inv.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    site = tmp_path / "site.yml"
    site.write_text(DELEGATED)
    assert main([str(site), "-i", str(inv), "--run", "--output", "json"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    for n in names:
        assert (tmp_path / "root" / n / "done.txt").read_text() == "done\n"

    spans = [s for _, s in receiver.spans()]
    (root,) = [s for s in spans if not s.parent_span_id]

    def under(parent: Any) -> list[Any]:
        return sorted((s for s in spans if s.parent_span_id == parent.span_id), key=lambda s: s.start_time_unix_nano)

    batches = under(root)
    assert [s.name for s in batches] == ["compile", "batch 1/4", "batch 2/4", "batch 3/4", "batch 4/4"]
    ran_where = {}
    for batch in batches[1:]:
        hosts_spans = under(batch)
        assert hosts_spans, batch.name
        for span in hosts_spans:
            attrs = _attrs(span)
            assert batch.start_time_unix_nano <= span.start_time_unix_nano <= span.end_time_unix_nano \
                <= batch.end_time_unix_nano
            stages = under(span)
            ran_where.setdefault(batch.name, []).append((attrs["rustle.host"], attrs.get("rustle.on_controller", False)))
            if attrs.get("rustle.on_controller"):
                assert attrs["rustle.operation"].startswith("run on the controller, " + batch.name)
                assert attrs["rustle.status"] == "ran" and attrs["rustle.round_trips"] == 0
                assert [s.name for s in stages] == ["run"]
                assert stages[0].start_time_unix_nano == span.start_time_unix_nano
                assert stages[0].end_time_unix_nano == span.end_time_unix_nano
            else:
                assert stages[0].name == "connect" and stages[-1].name == "run"
            assert span.status.code == Status.STATUS_CODE_UNSET
    assert {k: sorted(v) for k, v in ran_where.items()} == {
        "batch 1/4": [("app0", False), ("app1", False)],
        "batch 2/4": [("app0", True), ("app1", True)],  # delegate_to: localhost, for each host
        "batch 3/4": [("app0", True)],  # run_once on the controller: for the batch's first host
        "batch 4/4": [("app0", False), ("app1", False)],
    }
