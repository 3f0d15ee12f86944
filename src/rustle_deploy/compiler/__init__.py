"""Plan x hosts -> artifacts: grouping hosts by identical input, building payloads, caching.

``plan_units`` decides what would be built (no writes: ``--dry-run`` stops there);
``build_unit`` builds one artifact or takes it from the content-addressed cache.
"""

from __future__ import annotations

from .build import Artifact, build_native, build_unit, write_outputs
from .units import BuildUnit, plan_units

__all__ = ["Artifact", "BuildUnit", "build_native", "build_unit", "plan_units", "write_outputs"]
