# A collection's lookup: ansible-core runs it on the controller (the compiler asks it, with the
# values the controller knows); its result ships in the artifact.
from __future__ import annotations

from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: stock
short_description: each term and its length
options:
  _terms:
    description: the terms
  unit:
    description: what follows each length
    default: ch
"""


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        unit = self.get_option("unit")
        return [f"{term}:{len(str(term))}{unit}" for term in terms]
