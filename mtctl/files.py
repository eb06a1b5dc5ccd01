"""Files mtctl writes for people: whole or not at all, and private when they hold a secret."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from mtctl.errors import MtctlError, UsageError

PRIVATE = 0o600  # a token, a key or a password: readable by the owner only
PUBLIC = 0o644  # before the umask, like any file an editor writes

# Failures of the machine rather than of the path the user chose: exit 1, not 2.
_ENVIRONMENT = {errno.ENOSPC: "free some space on that file system, or write elsewhere",
                errno.EDQUOT: "free some of your quota, or write elsewhere",
                errno.EIO: "check the disk, or write elsewhere",
                errno.EROFS: "write to a file system mounted read-write"}


def atomic_write(path: Path, data: bytes | str, *, private: bool,
                 hint: str = "choose a writable file") -> None:
    """Replace PATH with DATA in one step; a private file is created 0600, never chmod-ed after.

    The data goes to a new temporary file beside PATH (created with O_EXCL, so no earlier
    file's mode or owner carries over), is flushed to disk, and is renamed over PATH. On any
    failure (a full disk, say) the temporary file is removed, PATH is as it was, and the error
    is one line: UsageError (exit 2) for a path that cannot be written, MtctlError (exit 1)
    for a full, read-only or failing file system.

    A stream is written into instead, as the shell's `>` would: a device, FIFO or socket, or
    a link to one (`/dev/stdout`), and anything in /dev or /proc. Renaming a file over it
    would replace the device node or the link (for root) and leave its reader waiting.
    """
    path = Path(path)
    if "\x00" in str(path):  # os.open would raise ValueError, not OSError
        raise UsageError("the file name contains a NUL character", hint)
    if path.name in ("", ".", ".."):  # '' arrives as '.': nothing to name the file
        raise UsageError(f"cannot write '{path}': that is a directory, not a file name", hint)
    content = data.encode() if isinstance(data, str) else data
    if _is_stream(path):
        _write_into(path, content, hint)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = -1
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0),
                     PRIVATE if private else PUBLIC)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
        os.close(fd)
        fd = -2
        os.replace(tmp, path)
    except OSError as exc:
        if fd >= 0:
            os.close(fd)
        if fd != -1:  # the temporary file is ours: never leave it behind
            with contextlib.suppress(OSError):
                tmp.unlink()
        raise _error(path, exc, hint) from None


def _is_stream(path: Path) -> bool:
    """PATH exists and is a device, FIFO or socket (itself or through a link), or lives in
    /dev or /proc (/dev/stdout, /dev/fd/1 redirected to a file)."""
    try:
        mode = os.lstat(path).st_mode
        if stat.S_ISLNK(mode):
            mode = os.stat(path).st_mode
    except OSError:  # absent, a dangling link, a name too long...: the normal path says why
        return False
    if stat.S_ISDIR(mode):
        return False
    if not stat.S_ISREG(mode):
        return True
    return path.absolute().parts[1:2] in (("dev",), ("proc",))


def _write_into(path: Path, content: bytes, hint: str) -> None:
    """Write CONTENT into an existing stream or device, without creating or replacing it."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _error(path, exc, hint) from None
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise _error(path, exc, hint) from None
    finally:
        os.close(fd)


def _error(path: Path, exc: OSError, hint: str) -> MtctlError:
    reason = (exc.strerror or type(exc).__name__).lower()
    if exc.errno in _ENVIRONMENT:
        return MtctlError(f"cannot write {path}: {reason}", _ENVIRONMENT[exc.errno])
    return UsageError(f"cannot write {path}: {reason}", hint)
