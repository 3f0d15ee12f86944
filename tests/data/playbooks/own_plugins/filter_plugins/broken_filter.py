from __future__ import annotations


class Broken:
    """A plugin that raises while ansible-core loads it (the templating target's)."""

    @property
    def accept_args_markers(self):
        raise Exception('boom')


class FilterModule:
    def filters(self):
        return {'broken': Broken()}
