from __future__ import annotations

from ..module_utils.text import reverse_words

MARK = "~"


def marked(value):
    return MARK + reverse_words(value) + MARK
