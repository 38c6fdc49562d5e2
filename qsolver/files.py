"""Atomic file writes: a file appears complete under its name or not at all (no partial results, reports or
caches after a crash or a full disk). Depends on nothing else in the package but its error type."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import InputError


def atomic_write(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` then rename onto ``path``; on any failure remove the temporary file."""
    path = Path(path)
    if path.exists() and path.is_dir():
        raise InputError("is a directory, not a file path", source=str(path))
    parent = path.parent if str(path.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
    except OSError as exc:
        raise InputError(f"cannot be written ({exc.strerror})", source=str(path)) from None
    try:
        write(Path(tmp))
        umask = os.umask(0)      # mkstemp creates 0600; give the file the permissions a plain open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot be written ({exc.strerror or exc})", source=str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path
