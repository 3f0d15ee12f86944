# A collection's filter file that needs only the standard library: rustle-deploy embeds it and
# the host runs it over host data.
from __future__ import annotations

import re


def shout(value, times=1):
    return str(value).upper() + "!" * times


def words(value):
    return sorted(re.findall(r"[a-z]+", str(value)))


class FilterModule:
    def filters(self):
        return {"shout": shout, "words": words}
