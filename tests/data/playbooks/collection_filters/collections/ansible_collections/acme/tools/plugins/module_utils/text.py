# The collection's own helper, imported by its filter: embedded with it.
from __future__ import annotations


def reverse_words(value):
    return " ".join(reversed(str(value).split()))
