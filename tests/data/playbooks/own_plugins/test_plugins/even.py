from __future__ import annotations


def even(value):
    return int(value) % 2 == 0


class TestModule:
    def tests(self):
        return {"even_number": even}
