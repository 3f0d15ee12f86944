from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if "fail" in terms:
            raise AnsibleError("greeting refuses to greet 'fail'")
        who = (variables or {}).get("who", "nobody")
        return [f"{kwargs.get('word', 'hello')} {term} from {who}" for term in terms]
