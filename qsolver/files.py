"""Atomic file writes: a file appears complete under its name or not at all (no partial results, reports or
caches after a crash or a full disk). Depends on nothing else in the package but its error type.

A write goes to a hidden temporary ``.NAME.PID@HOST.XXXXXXXX.tmp`` beside the target, is flushed to the disk and
renamed onto it. A failure removes the temporary; a process killed mid-write (SIGKILL, power loss) cannot, so the
next write to the same path removes the temporaries whose writer is gone (see :func:`stale_temporaries`).
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable

from .errors import WriteError

# Temporaries of an older qsolver carry no writer id; its writes took seconds, so one this old is abandoned
LEGACY_STALE_SECONDS = 3600
LABEL_BYTES = 200              # of a target's name in its temporary's (which adds up to 45 bytes)
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]    # short: the name must fit NAME_MAX
_OURS = re.compile(r"(\d+)@([0-9a-f]{6})\.[a-z0-9_]{8}")
_LEGACY = re.compile(r"[a-z0-9_]{8}")


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (one of another user counts: it may still be writing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def stale_temporaries(path: str | Path) -> list[Path]:
    """The temporaries of earlier writes to ``path`` whose writer is gone: written on this host by a process that
    no longer exists, or by an older qsolver more than LEGACY_STALE_SECONDS ago. A temporary of a live process
    or of another host (a shared file system) is never listed: it may be a write in progress."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    prefix = f".{_label(path.name)}."
    found = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(".tmp")):
            continue
        middle = entry.name[len(prefix):-len(".tmp")]
        ours = _OURS.fullmatch(middle)
        try:
            if ours:
                stale = ours.group(2) == _HOST and not _alive(int(ours.group(1)))
            else:
                stale = bool(_LEGACY.fullmatch(middle)) and \
                    time.time() - entry.stat(follow_symlinks=False).st_mtime > LEGACY_STALE_SECONDS
        except OSError:
            continue
        if stale and entry.is_file(follow_symlinks=False):
            found.append(Path(entry.path))
    return found


def _label(name: str) -> str:
    """``name`` as its temporaries carry it: a long one cut, with a hash, to leave room for the writer id within
    the file system's 255 bytes, so that any name that can be written can be written atomically."""
    if len(name.encode()) <= LABEL_BYTES:
        return name
    return name.encode()[:LABEL_BYTES - 9].decode(errors="ignore") + "~" + hashlib.sha256(name.encode()).hexdigest()[:8]


def _is_dir(path: Path) -> bool:
    """Whether ``path`` is a folder; False where it cannot even be looked up (a name too long: the write that
    follows reports that)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _exists(path: Path) -> bool:
    """Whether anything is at ``path``; True where it cannot be looked up, so that nothing there is removed."""
    try:
        return path.exists()
    except OSError:
        return True


def _failure(path: Path, exc: OSError) -> WriteError:
    """The error for a write to ``path`` that failed with ``exc``."""
    return WriteError(f"cannot be written ({exc.strerror or exc}); nothing was written under this name",
                      source=str(path), errno=exc.errno)


def _temporary(path: Path) -> tuple[int, str]:
    """A new, open temporary beside ``path`` (descriptor and name), creating the folder if needed."""
    parent = path.parent if str(path.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{_label(path.name)}.{os.getpid()}@{_HOST}.", suffix=".tmp", dir=parent)


def check_writable(path: str | Path) -> None:
    """Raise WriteError unless a file can be written at ``path``: creates and removes a temporary named as
    :func:`atomic_write` would name it (so a name too long for that temporary fails here too), without leaving
    anything behind, folders included."""
    path = Path(path)
    if _is_dir(path):
        raise WriteError("is a directory, not a file path", source=str(path))
    parent = path.parent if str(path.parent) else Path(".")
    created = [p for p in (parent, *parent.parents) if not _exists(p)]      # deepest first
    try:
        with contextlib.suppress(FileNotFoundError):
            os.stat(path)                  # a name too long for the folder fails here (its temporary is cut)
        fd, tmp = _temporary(path)
        try:
            os.write(fd, b"\0")
        finally:
            os.close(fd)
            os.remove(tmp)
    except OSError as exc:
        raise _failure(path, exc) from None
    finally:
        for folder in created:             # the real write creates them again
            with contextlib.suppress(OSError):
                folder.rmdir()


def atomic_write(path: str | Path, content: Callable[[Path], object] | bytes) -> Path:
    """Write ``content`` (bytes, or a function that writes a file at the path it is given) to ``path``: into a
    temporary, synced to the disk, then renamed onto ``path``. On any failure (a full disk included) or
    interruption the temporary is removed and WriteError names ``path``; the earlier file there, if any, stays."""
    path = Path(path)
    if _is_dir(path):
        raise WriteError("is a directory, not a file path", source=str(path))
    for stale in stale_temporaries(path):
        with contextlib.suppress(OSError):
            stale.unlink()
    try:
        fd, tmp = _temporary(path)
    except OSError as exc:
        raise _failure(path, exc) from None
    try:
        try:
            if isinstance(content, bytes):
                view = memoryview(content)
                while view:                       # os.write may write less than it is given
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            else:
                content(Path(tmp))
                _sync(tmp)
        finally:
            os.close(fd)
        umask = os.umask(0)      # mkstemp creates 0600; give the file the permissions a plain open() would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as exc:
        raise _failure(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            os.remove(tmp)
    _sync_folder(path)
    return path


def _sync(name: str) -> None:
    """Flush the file ``name`` (written by someone else's code) to the disk before it is renamed into place."""
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(path: Path) -> None:
    """Flush the rename of ``path`` to the disk where the system allows it (best effort: not every file system
    can sync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(path.parent if str(path.parent) else ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
