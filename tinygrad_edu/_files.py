"""Atomic file writes: a crash or an error leaves the old file in place, never half a new one.

The policy (README, "Reliability"): a symlink is followed and its target replaced; a directory,
FIFO, device or socket is refused, and so is a read-only file (no owner write bit: root may write
anything, so the mode bits decide); the temporary file never has more permissions than the file
it becomes; a save killed on the way leaves a temporary that the next save to the same name
removes; a folder fsync that fails after the rename is a warning, since the file is replaced.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import stat
import warnings
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so a live save cannot be told from a killed one
    fcntl = None  # type: ignore[assignment]

__all__ = ["atomic_write", "check_writable", "file_kind"]

# O_EXCL: never open a file someone else made; O_CLOEXEC: no child process inherits the handle.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_CREATE |= getattr(os, "O_CLOEXEC", 0)
# Opening a stale temporary to lock it: never through a symlink, never waiting on a FIFO.
_PROBE = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_PROBE |= getattr(os, "O_CLOEXEC", 0)
_ATTEMPTS = 100  # 64 random bits each: a clash at all is already a sign of something odd
# The temporary name is "." + the first _PREFIX_BYTES bytes of the name + ".<16 hex>.tmp": at most
# 122 bytes, within the 255-byte limit of common file systems whatever the name's characters.
_PREFIX_BYTES = 100
_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(mode: int) -> str:
    """What the ``st_mode`` ``mode`` describes: ``"a regular file"``, ``"a FIFO"``, ...

    Example:
        >>> file_kind(os.stat(os.devnull).st_mode)
        'a character device'
    """
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((kind for test, kind in _KINDS if test(mode)), "not a regular file")


def atomic_write(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a fsynced temporary file renamed over it.

    The temporary file lives in the same folder (so the rename is atomic), is created with the
    mode of the file it replaces (a new file gets 0666 less the umask, applied by the kernel: the
    umask is never read, so threads are safe), is locked while this save runs, and is removed if
    anything fails. Temporaries of earlier saves to the same name that no running save holds
    (left by a killed process) are removed first. A symlink at ``path`` is followed: its target
    is replaced and the link is kept. The folder is fsynced after the rename so that the rename
    is durable; if that fsync fails, the file is replaced all the same and a RuntimeWarning says
    that the rename may not survive a power loss.

    Returns:
        ``path`` as a Path (the link, where ``path`` is one).

    Raises:
        FileNotFoundError: the folder of ``path`` does not exist (the error names it).
        IsADirectoryError: ``path`` is a directory.
        PermissionError: ``path`` is a read-only file (no owner write bit), or the system
            refuses.
        OSError: ``path`` is a FIFO, device or socket, or anything else the system refuses; in
            every case an old file at ``path`` is left as it was.
    """
    given = Path(path)
    target = Path(os.path.realpath(given)) if os.path.islink(given) else given
    mode = _replaceable(target, given)
    folder, prefix = target.parent, _prefix(target.name)
    _remove_stale(folder, prefix)
    fd, temporary = _create(folder, prefix, target.name, mode)
    handle = os.fdopen(fd, "wb")
    try:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
        if fcntl is None:
            handle.close()  # Windows renames no open file (and there is no lock to keep)
        # Renamed while still open and locked, so that no other save takes it for stale.
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    finally:
        handle.close()
    _fsync_folder(folder, given)
    return given


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise now what `atomic_write` to ``path`` would raise for the path itself, so that a long
    computation whose result goes there is refused before it starts. Nothing is written.

    Raises:
        ValueError: ``path`` is empty.
        FileNotFoundError: the folder of ``path`` does not exist.
        IsADirectoryError, PermissionError, OSError: as `atomic_write`, for what is at ``path``;
            PermissionError also for a folder this process may not write in.
    """
    if not os.fspath(path):
        raise ValueError("the path is empty: give a file name")
    given = Path(path)
    target = Path(os.path.realpath(given)) if os.path.islink(given) else given
    _replaceable(target, given)
    folder = target.parent
    if not folder.is_dir():
        raise FileNotFoundError(
            errno.ENOENT, f"cannot write {target.name!r}: no such folder", str(folder)
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES, f"cannot write {target.name!r}: the folder is not writable", str(folder)
        )


def _replaceable(target: Path, given: Path) -> int | None:
    """The permission bits of the regular, writable file ``target``, or None if there is none.

    Raises IsADirectoryError, PermissionError or OSError, naming ``given`` (and ``target``
    when ``given`` is a symlink to it), for anything save must not replace.
    """
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return None
    shown = str(given) if target == given else f"{given} (a symlink to {target})"
    kind = file_kind(info.st_mode)
    if kind != "a regular file":
        error = IsADirectoryError if stat.S_ISDIR(info.st_mode) else OSError
        raise error(
            errno.EISDIR if error is IsADirectoryError else errno.EINVAL,
            f"{shown} is {kind}, not a regular file: save writes regular files only "
            f"(choose another path)",
            str(given),
        )
    mode = info.st_mode & 0o777
    if not info.st_mode & stat.S_IWUSR:
        raise PermissionError(
            errno.EACCES,
            f"{shown} is read-only (mode {mode:04o}) and is not replaced: make it writable "
            f"(chmod u+w) to replace it",
            str(given),
        )
    return mode


def _prefix(name: str) -> str:
    """The longest start of ``name`` that is at most _PREFIX_BYTES bytes on disk."""
    used = end = 0
    for char in name:
        used += len(os.fsencode(char))
        if used > _PREFIX_BYTES:
            break
        end += 1
    return name[:end]


def _create(folder: Path, prefix: str, name: str, mode: int | None) -> tuple[int, Path]:
    """A new, empty file ``.<prefix>.<random>.tmp`` in ``folder``, open for writing, locked,
    with at most the permissions ``mode`` (0666 less the umask for None) from the start."""
    for _ in range(_ATTEMPTS):
        temporary = folder / f".{prefix}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(temporary, _CREATE, 0o666 if mode is None else mode)
        except FileExistsError:
            continue
        except FileNotFoundError:
            if folder.is_dir():  # the folder exists: something else is missing, say so as is
                raise
            raise FileNotFoundError(
                errno.ENOENT, f"cannot write {name!r}: no such folder", str(folder)
            ) from None
        try:
            if mode is not None and hasattr(os, "fchmod"):  # widen what the umask narrowed
                os.fchmod(fd, mode)
            elif mode is not None:  # Windows before Python 3.13
                os.chmod(temporary, mode)
            if _lock(fd, temporary):
                return fd, temporary
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        os.close(fd)  # another save took it for stale between the creation and the lock
    raise FileExistsError(
        errno.EEXIST, f"no free temporary name after {_ATTEMPTS} attempts", str(folder)
    )


def _lock(fd: int, temporary: Path) -> bool:
    """Lock the new temporary ``fd`` for as long as it is open; False if ``temporary`` no
    longer names it (a save removed it as stale before the lock was taken)."""
    if fcntl is None:
        return True
    fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while another save is removing it
    return _same_file(fd, temporary)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    try:
        named = os.lstat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _remove_stale(folder: Path, prefix: str) -> None:
    """Remove the temporaries ``.<prefix>.<16 hex>.tmp`` in ``folder`` that no save holds
    locked: a save killed before its rename left them. Best effort: never fails the save."""
    if fcntl is None:
        return
    pattern = re.compile(re.escape(f".{prefix}.") + r"[0-9a-f]{16}\.tmp")
    try:
        with os.scandir(folder) as entries:
            stale = [Path(e.path) for e in entries if pattern.fullmatch(e.name)]
    except OSError:
        return  # an unreadable or missing folder: _create reports what matters
    for path in stale:
        try:
            fd = os.open(path, _PROBE)
        except OSError:
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # locked: a save is writing it now
            if _same_file(fd, path):
                path.unlink()
        except OSError:
            continue
        finally:
            os.close(fd)


def _fsync_folder(folder: Path, given: Path) -> None:
    """Make a rename in ``folder`` durable, where the platform can open and fsync a folder.

    The file is already replaced, so a failure is a RuntimeWarning, not an error."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms where a folder cannot be opened
        return
    try:
        os.fsync(handle)
    except OSError as err:
        if err.errno != errno.EINVAL:  # EINVAL: this file system cannot fsync a folder at all
            warnings.warn(
                f"{given} was replaced, but the fsync of its folder {folder} failed ({err}): "
                f"the rename may not survive a power loss or a system crash",
                RuntimeWarning,
                stacklevel=4,  # _fsync_folder, atomic_write, save or render, then the caller
            )
    finally:
        os.close(handle)
