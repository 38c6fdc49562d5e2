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


class Interrupted(Exception):
    """Training was stopped by a signal after writing its checkpoint; the CLI exits 130 (SIGINT) or 143 (SIGTERM)."""

    def __init__(self, message: str, *, checkpoint, signal_name: str, seconds: float = 0.0):
        self.checkpoint = checkpoint
        self.signal_name = signal_name
        self.seconds = seconds              # training seconds in the checkpoint
        super().__init__(message)


class TrainingDiverged(RuntimeError):
    """Training kept diverging after its rewinds; ``result`` is the evaluated last good state (flagged)."""

    def __init__(self, message: str, *, result):
        self.result = result
        super().__init__(message)


class WriteError(InputError):
    """A file could not be written (full disk, I/O error, no permission, name too long); nothing was left under
    its name. The CLI prints it as one line (status 2) like other InputErrors; ``errno`` is the system's code."""

    def __init__(self, message: str, *, source: str | None = None, errno: int | None = None):
        self.errno = errno
        super().__init__(message, source=source)
