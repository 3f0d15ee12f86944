from __future__ import annotations


def short_word(value, limit=5):
    return len(str(value)) <= limit


class TestModule:
    def tests(self):
        return {"short_word": short_word}
