from __future__ import annotations


def shout(value, times=1, mark="!"):
    return (str(value).upper() + mark) * times


def module_name(value):
    return __name__.rsplit("_", 1)[0]


class FilterModule:
    def filters(self):
        return {"shout": shout, "module_name": module_name}
