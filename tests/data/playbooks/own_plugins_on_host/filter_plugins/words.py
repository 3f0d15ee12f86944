from __future__ import annotations

import re

from jinja2.filters import do_title


def sorted_words(values):
    return sorted(v for v in values if re.match(r"^[a-z]+$", v))


def shout(value, times=1, mark="!"):
    return (str(value).upper() + mark) * times


def module_name(value):
    return __name__.rsplit("_", 1)[0]


def title_words(value):
    return do_title(value.replace("\n", " "))


def refuse_it(value):
    raise ValueError("no thanks: " + value.splitlines()[1])


class FilterModule:
    def filters(self):
        return {"sorted_words": sorted_words, "shout": shout, "module_name": module_name,
                "title_words": title_words, "refuse_it": refuse_it}
