"""Atomic file writes: a crash or an error leaves the old file in place, never half a new one."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

__all__ = ["atomic_write"]

# O_EXCL: never open a file someone else made; O_CLOEXEC: no child process inherits the handle.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_CREATE |= getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 100  # 64 random bits each: a clash at all is already a sign of something odd


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced temporary file renamed over it.

    The temporary file lives in the same folder (so the rename is atomic) and is removed if
    anything fails; the folder is fsynced afterwards so that the rename itself is durable. The
    file keeps the mode of the file it replaces; a new one gets 0666 less the umask, applied
    by the kernel when the file is created (the umask is never read, so threads are safe).

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist (the error names it).
        OSError: anything else the system refuses; an old file at ``path`` is left as it was.
    """
    target = Path(path)
    folder = target.parent
    try:
        mode: int | None = os.stat(target).st_mode & 0o777
    except FileNotFoundError:
        mode = None
    fd, temporary = _create(folder, target.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(folder)
    return target


def _create(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty file ``.<name>.<random>.tmp`` in ``folder``, open for writing."""
    for _ in range(_ATTEMPTS):
        temporary = folder / f".{name[:100]}.{secrets.token_hex(8)}.tmp"
        try:
            return os.open(temporary, _CREATE, 0o666), temporary
        except FileExistsError:
            continue
        except FileNotFoundError:
            if folder.is_dir():  # the folder exists: something else is missing, say so as is
                raise
            raise FileNotFoundError(
                errno.ENOENT, f"cannot write {name!r}: no such folder", str(folder)
            ) from None
    raise FileExistsError(
        errno.EEXIST, f"no free temporary name after {_ATTEMPTS} attempts", str(folder)
    )


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable, where the platform can open a folder."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms where a folder cannot be opened
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
