from __future__ import annotations

import re


def looks_like_mac(value):
    return bool(re.match(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$", str(value).lower()))


class TestModule:
    def tests(self):
        return {"looks_like_mac": looks_like_mac}
