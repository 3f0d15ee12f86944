# A collection's filter that imports ansible-core: it runs on the controller over values the
# controller knows, as ansible-core's own filters do.
from __future__ import annotations

from ansible.module_utils.common.network import is_mac


def mac_or_not(value):
    return "mac" if is_mac(str(value)) else "not a mac"


class FilterModule:
    def filters(self):
        return {"mac_or_not": mac_or_not}
