from __future__ import annotations

from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    """Gives its terms back; takes an undefined term as ansible-core's marker."""

    accept_args_markers = True

    def run(self, terms, variables=None, **kwargs):
        return terms
