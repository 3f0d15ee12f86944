"""OpenTelemetry traces of a command, when the SDK is installed and OTEL_* asks for them.

One trace per command: a span for the command (``rustle-deploy deploy``, named after the
deployment once it has an id), a ``compile`` child, a ``batch N/M`` child per batch of a
rollout, and per host a ``host NAME`` child (of its batch) whose own children are the stages the controller saw it go through (``connect``, then the agent's
``upload``, ``verify``, ``activate``, ``history``, ``run``, each announced by the agent when
``HostJob.trace`` is set). A failed host's span has the ERROR status. Spans carry names,
outcomes and counts, never task output (so never a ``no_log`` value).

Configured only through the SDK's standard environment variables (docs/ui.md): traces are on
when ``OTEL_TRACES_EXPORTER`` names an exporter (not ``none``) or an OTLP endpoint
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set, unless
``OTEL_SDK_DISABLED=true``. The exporter is the one registered under that name (entry points
``opentelemetry_traces_exporter``, as the SDK's own configuration finds them); the resource
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``), sampler, batching and the exporter's
endpoint, headers and timeout are read by the SDK classes themselves. Without those variables
or without the SDK (the ``otel`` extra) nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .deploy.host import HostOutcome

_GROUP = "opentelemetry_traces_exporter"


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _wanted() -> str | None:
    """The exporter names OTEL_* asks for ("otlp" when only an endpoint is set), or None."""
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    names = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if names.lower() == "none":
        return None
    if names:
        return names
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"  # the SDK's default exporter
    return None


def _exporter(name: str) -> Any:
    from importlib.metadata import entry_points

    found = {ep.name: ep for ep in entry_points(group=_GROUP)}
    # "otlp" is registered by the opentelemetry-exporter-otlp bundle; the otel extra brings the
    # OTLP/HTTP exporter alone, under its own name
    ep = found.get(name) or (found.get("otlp_proto_http") if name == "otlp" else None)
    if ep is None:
        raise UsageError(f"OTEL_TRACES_EXPORTER: no trace exporter named {name!r} is installed "
                         f"(installed: {', '.join(sorted(found)) or 'none'})",
                         "pip install 'rustle-deploy[otel]' for OTLP over HTTP, or set OTEL_TRACES_EXPORTER=console")
    cls = ep.load()
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if isinstance(cls, type) and issubclass(cls, ConsoleSpanExporter):
        return cls(out=sys.stderr)  # stdout carries the deployment manifest
    return cls()


class Trace:
    """The spans of one command; ``end`` sends them (at most the exporter's timeout)."""

    def __init__(self, names: str, command: str) -> None:
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporters = [_exporter(n.strip()) for n in names.split(",") if n.strip()]
        resource = Resource.create()
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "rustle-deploy"}))
        self.provider = TracerProvider(resource=resource)
        for exporter in exporters:
            self.provider.add_span_processor(BatchSpanProcessor(exporter))
        from . import __version__

        self.tracer = self.provider.get_tracer("rustle_deploy", __version__)
        self.root = self.tracer.start_span(f"rustle-deploy {command}", attributes={"rustle.command": command})
        self.open: list[Any] = []  # the phases open now, innermost last: new spans go under it

    def _context(self) -> Any:
        from opentelemetry import trace

        return trace.set_span_in_context(self.open[-1] if self.open else self.root)

    def deployment(self, deployment_id: str, op: str, plan: str | None) -> None:
        """Name the command's span after the deployment it records."""
        self.root.update_name(f"{op} {deployment_id}")
        self.root.set_attributes({"rustle.deployment_id": deployment_id, "rustle.op": op,
                                  **({"rustle.plan": plan} if plan else {})})

    @contextmanager
    def phase(self, name: str, **attributes: Any) -> Iterator[None]:
        """A span for a step of the command (compile, a batch of a rollout); the spans made
        inside (its hosts) are its children."""
        span = self.tracer.start_span(name, context=self._context(), attributes=attributes)
        self.open.append(span)
        try:
            yield
        except BaseException as exc:
            self._fail(span, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise
        finally:
            self.open.pop()
            span.end()

    @staticmethod
    def _fail(span: Any, why: str) -> None:
        from opentelemetry.trace import Status, StatusCode

        span.set_status(Status(StatusCode.ERROR, why))

    def host(self, outcome: HostOutcome, what: str, status: str, attributes: dict[str, Any]) -> None:
        """The span of one host's part (``what``: deploy, rollback...), cut into its stages."""
        start = outcome.started_at or time.time() - outcome.duration
        end = start + outcome.duration
        span = self.tracer.start_span(f"host {outcome.host}", context=self._context(), start_time=_ns(start),
                                      attributes={"rustle.host": outcome.host, "rustle.operation": what,
                                                  "rustle.status": status, "rustle.uploaded": outcome.uploaded,
                                                  "rustle.round_trips": outcome.round_trips, **attributes})
        from opentelemetry import trace

        inside = trace.set_span_in_context(span)
        stages: Sequence[tuple[str, float]] = outcome.stages
        for i, (name, at) in enumerate(stages):
            until = stages[i + 1][1] if i + 1 < len(stages) else end
            self.tracer.start_span(name, context=inside, start_time=_ns(at)).end(end_time=_ns(max(until, at)))
        failed = [str(e.get("task") or "") for e in outcome.events
                  if e.get("event") in ("task_result", "handler_result") and e.get("status") == "failed"]
        if outcome.error is not None:
            self._fail(span, str(outcome.error).splitlines()[0])
        elif failed or outcome.run_exit not in (None, 0):
            self._fail(span, f"{len(failed)} task(s) failed: {', '.join(failed[:5])}" if failed
                       else f"the run exited {outcome.run_exit}")
        span.end(end_time=_ns(end))

    def end(self, exit_code: int | None) -> None:
        if exit_code not in (0, None):
            self._fail(self.root, f"exit {exit_code}")
        self.root.set_attribute("rustle.exit_code", -1 if exit_code is None else exit_code)
        self.root.end()
        self.provider.shutdown()  # sends what is batched; bounded by the exporter's own timeout


def start(command: str) -> Trace | None:
    """The command's trace when OTEL_* asks for one and the SDK is installed, else None."""
    names = _wanted()
    if names is None:
        return None
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return None  # the otel extra is not installed: traces are optional
    return Trace(names, command)
