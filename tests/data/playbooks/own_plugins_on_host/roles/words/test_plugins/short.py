from __future__ import annotations


def short_word(value):
    return len(value) <= 5


class TestModule:
    def tests(self):
        return {"short_word": short_word}
