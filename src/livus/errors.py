"""Errors livus raises for bad input: one clear line naming the file and the reason."""

from __future__ import annotations


class InputError(ValueError):
    """An input that cannot be analysed (unreadable, truncated, wrong type, empty...)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason
