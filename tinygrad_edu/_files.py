"""Atomic file writes: a crash or an error leaves the old file in place, never half a new one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced temporary file renamed over it.

    The temporary file lives in the same folder (so the rename is atomic) and is removed if
    anything fails; the folder is fsynced afterwards so that the rename itself is durable. The
    file keeps the mode of the file it replaces (a new one gets 0666 less the umask).
    """
    target = Path(path)
    # mkstemp makes the file 0600; keep an existing file's mode, else the usual 0644 (less umask).
    if target.exists():
        mode = target.stat().st_mode & 0o777
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:
        folder = os.open(target.parent, os.O_RDONLY)
    except OSError:  # platforms where a folder cannot be opened
        return target
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return target
