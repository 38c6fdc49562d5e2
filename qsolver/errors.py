"""Errors raised on bad user input: they name the file and the field at fault."""
from __future__ import annotations


class InputError(ValueError):
    """A user-facing input problem; the CLI prints it as one line and exits with status 2."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.detail = message
        where = ", ".join(p for p in (source and f"file {source}", field and f"field '{field}'") if p)
        super().__init__(f"{where}: {message}" if where else message)
