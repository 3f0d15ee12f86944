"""Deploying to hosts: the per-host pipeline (``host``), the fan-out (``fleet``) and the
host-side agent (``agent``, stdlib-only, Python 3.8+, shipped over stdin; never imported here).

Import direction: ``transport`` <- ``deploy``; the CLI and pipeline import this package.
"""

from __future__ import annotations

from .fleet import deploy_fleet
from .host import HealthCheck, HostJob, HostOutcome, RunOptions, deploy_host

__all__ = ["HealthCheck", "HostJob", "HostOutcome", "RunOptions", "deploy_fleet", "deploy_host"]
