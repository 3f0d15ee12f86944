from __future__ import annotations


class FilterModule:
    def filters(self):
        return {"reverse_text": lambda value: value[::-1]}
