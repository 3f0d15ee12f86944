from __future__ import annotations

from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        Display().deprecated("the deprecating lookup is deprecated", version="2.99")
        Display().warning("the deprecating lookup warns")
        return [str(t).upper() for t in terms]
