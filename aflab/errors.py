"""Errors that mean "the user's input is wrong" (exit 2), as opposed to bugs (exit 1)."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or usage. The message is one readable line naming the file and place."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()) if "\n" in message else message)


class AtKey(ValueError):
    """A validation error below the value that raised it (e.g. `options.backend` of a monitor ref):
    `validate` appends `key` to the key path, so the line points at the exact key to fix."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def where(path: object, line: int | None = None, key: str | None = None) -> str:
    """Format the 'file:line' or 'file: key' prefix used by every UserError."""
    place = str(path)
    if line is not None:
        place += f":{line}"
    if key:
        place += f": {key}"
    return place
