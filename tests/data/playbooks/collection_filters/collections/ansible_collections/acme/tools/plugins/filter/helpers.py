# A collection's filter that imports its collection's module_utils and plugin_utils (absolute
# and relative): embedded with them, it runs on the host.
from __future__ import annotations

from ansible_collections.acme.tools.plugins.module_utils.text import reverse_words

from ..plugin_utils.marks import marked


class FilterModule:
    def filters(self):
        return {"reverse_words": reverse_words, "marked": marked}
