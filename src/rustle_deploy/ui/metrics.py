"""``/metrics`` (and ``--metrics-port``): the history in the Prometheus text format, through
the official client.

Every scrape reads the history afresh (one read-only query set), so the numbers include
deployments made from the command line while the UI runs; nothing is kept in the process.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from ..errors import UsageError
from .data import HistoryReader

DEPLOYMENT_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
HOST_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def _histogram(name: str, doc: str, values: Iterable[tuple[str, float]], bounds: Sequence[float]) -> Metric:
    family = HistogramMetricFamily(name, doc, labels=["op"])
    by_op: dict[str, list[float]] = defaultdict(list)
    for op, value in values:
        by_op[op].append(float(value))
    for op, seen in sorted(by_op.items()):
        buckets = [(format(b, "g"), float(sum(1 for v in seen if v <= b))) for b in bounds]
        buckets.append(("+Inf", float(len(seen))))
        family.add_metric([op], buckets, sum(seen))
    return family


class HistoryCollector(Collector):
    def __init__(self, reader: HistoryReader) -> None:
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        rows = self.reader.metrics_rows()
        deployments = CounterMetricFamily("rustle_deployments", "Deployments recorded, by operation and outcome",
                                          labels=["op", "status"])
        running = 0
        rollbacks = 0
        for op, status, count in rows["deployments"]:
            deployments.add_metric([str(op), str(status)], count)
            running += count if status == "running" else 0
            rollbacks += count if op == "rollback" else 0
        yield deployments
        yield GaugeMetricFamily("rustle_deployments_running", "Deployments recorded as running (orphaned ones included)",
                                value=running)
        yield GaugeMetricFamily("rustle_deployments_orphaned", "Deployments recorded as running whose controller "
                                "process is gone (the next rustle-deploy command settles them)", value=rows["orphaned"])
        yield CounterMetricFamily("rustle_rollbacks", "Rollbacks recorded (command line and UI)", value=rollbacks)
        yield CounterMetricFamily("rustle_uploaded_bytes", "Artifact bytes sent to hosts (hosts that had the "
                                  "artifact already count 0)", value=rows["uploaded"])
        yield CounterMetricFamily("rustle_artifacts", "Distinct artifacts deployments needed (compiled, or found in "
                                  "the compilation cache)", value=rows["artifacts"])
        yield CounterMetricFamily("rustle_artifact_cache_hits", "Artifacts deployments found in the compilation "
                                  "cache instead of compiling them", value=rows["cache_hits"])
        hosts = CounterMetricFamily("rustle_host_outcomes", "Host outcomes recorded, by operation and outcome",
                                    labels=["op", "status"])
        for op, status, count in rows["hosts"]:
            hosts.add_metric([str(op), str(status)], count)
        yield hosts
        yield _histogram("rustle_deployment_duration_seconds", "Duration of finished deployments",
                         ((str(op), v) for op, v in rows["durations"] if v is not None and math.isfinite(v)),
                         DEPLOYMENT_BUCKETS)
        yield _histogram("rustle_host_duration_seconds", "Duration of each host's part of a deployment",
                         ((str(op), v) for op, v in rows["host_durations"] if v is not None and math.isfinite(v)),
                         HOST_BUCKETS)
        release = GaugeMetricFamily("rustle_host_release_info", "The release each host runs, as last recorded (1)",
                                    labels=["host", "binary_name", "sha256"])
        for host, sha, binary in self.reader.releases():
            release.add_metric([host, binary or "", sha], 1)
        yield release


def scrape(reader: HistoryReader) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HistoryCollector(reader))
    return generate_latest(registry)


@contextmanager
def serving(state_db: Path, port: int) -> Iterator[None]:
    """``--metrics-port``: serve the history's metrics on 127.0.0.1:``port`` while the block runs."""
    from prometheus_client import start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(HistoryCollector(HistoryReader(state_db)))
    try:
        server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    except OSError as exc:
        raise UsageError(f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}: {exc.strerror}",
                         "choose another port") from exc
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
