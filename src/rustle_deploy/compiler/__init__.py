"""Plan x hosts -> artifacts: grouping hosts by identical input, building payloads, caching.

``units.plan_units`` decides what would be built (no writes: ``--dry-run`` stops there);
``build.build_unit`` builds one artifact or takes it from the content-addressed cache;
``native`` lowers plans for rustle-runner, which ``runner`` builds.

Nothing is imported here: the native format looks its runner up (``runner``) before the first
``ssh`` starts, and the builder's imports can wait until the handshakes run.
"""
