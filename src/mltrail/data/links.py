"""Putting cached objects into the workspace: reflink, copy or hardlink, always verified.

``auto`` (the default) tries a reflink (a copy-on-write clone: instant, shares disk blocks, and the
workspace file is independent and writable), then a plain copy: either way an edit of the workspace
file can never reach the cache. ``hardlink`` is used only when asked for: the workspace file *is*
the cached object, checked out read-only, and root writes through a read-only mode, so as root it
comes with a warning. Every file is first placed under a temp name beside its destination, hashed,
and only renamed into place if the hash matches: a damaged object is reported and never checked
out, and a failure leaves no partial file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from pathlib import Path

from mltrail.atomic import temp_name
from mltrail.errors import IntegrityError, InvalidInput, InvalidState
from mltrail.objects.hashing import hash_file

LINK_TYPES = ("auto", "reflink", "copy", "hardlink")
#: Linux FICLONE ioctl: _IOW(0x94, 9, int).
_FICLONE = 0x40049409
# Errors that mean "this kind of link is not possible here", not "something is broken".
_UNSUPPORTED = frozenset(
    {
        errno.EXDEV,
        errno.EOPNOTSUPP,
        errno.ENOTSUP,
        errno.EINVAL,
        errno.ENOSYS,
        errno.ENOTTY,
        errno.EPERM,
        errno.EMLINK,
        errno.EBADF,
    }
)
# Devices found unable to reflink in this process: don't try (and fail) once per file.
_NO_REFLINK: set[int] = set()
_NO_HARDLINK: set[int] = set()


def check_link_type(value: object, source: str = "config") -> str:
    """Return ``value`` if it is a known link type, else raise InvalidInput naming ``source``."""
    if value not in LINK_TYPES:
        raise InvalidInput(
            f"unknown data link type {value!r} in {source}",
            hint='Use one of "auto", "reflink", "copy", "hardlink" in [data] link.',
        )
    return str(value)


def current_umask() -> int:
    """Return the process umask (call from one thread: it is read by setting it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def place(
    obj: Path,
    expected: str,
    dest: Path,
    *,
    link: str,
    executable: bool,
    umask: int,
) -> str:
    """Put object ``obj`` (named ``expected``) at ``dest``; return the link type used."""
    tmp = temp_name(dest)
    try:
        used = _link(obj, tmp, link, executable)
        actual = hash_file(tmp)
        if actual != expected:
            raise IntegrityError(
                f"object {expected} in the cache is damaged: its content hashes to {actual}; "
                f"{dest} was not checked out",
                hint=f"Delete {obj}, then add the data again or fetch it from a remote.",
            )
        if used != "hardlink":
            os.chmod(tmp, (0o777 if executable else 0o666) & ~umask)
        try:
            os.replace(tmp, dest)
        except IsADirectoryError:
            raise InvalidInput(
                f"cannot check out {dest}: a folder is in the way",
                hint="Move the folder away and check out again.",
            ) from None
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            full = e.errno in (errno.ENOSPC, errno.EDQUOT)
            raise InvalidState(
                f"cannot check out {dest}: {e.strerror or e}",
                hint="Free some disk space and check out again."
                if full
                else "Check the folder's permissions and check out again.",
            ) from e
        raise
    return used


def _link(obj: Path, tmp: Path, link: str, executable: bool) -> str:
    dev = os.stat(obj.parent).st_dev
    if link in ("auto", "reflink") and dev not in _NO_REFLINK:
        try:
            _reflink(obj, tmp)
            return "reflink"
        except OSError as e:
            if link == "reflink" or e.errno not in _UNSUPPORTED:
                raise _link_error("reflink", obj, tmp, e) from e
            _NO_REFLINK.add(dev)
    elif link == "reflink":
        raise _link_error("reflink", obj, tmp, OSError(errno.EOPNOTSUPP, "not supported"))
    # Only on request: a hardlink makes the workspace file the cached object itself. It shares
    # the object's mode (read-only, not executable), so executables are copied.
    if link == "hardlink" and not executable and dev not in _NO_HARDLINK:
        try:
            os.link(obj, tmp)
            return "hardlink"
        except OSError as e:
            if link == "hardlink" and e.errno != errno.EMLINK:
                raise _link_error("hardlink", obj, tmp, e) from e
            if e.errno not in _UNSUPPORTED:
                raise
            if e.errno != errno.EMLINK:
                _NO_HARDLINK.add(dev)
    shutil.copyfile(obj, tmp)
    return "copy"


def _reflink(obj: Path, tmp: Path) -> None:
    import fcntl

    src = os.open(obj, os.O_RDONLY)
    try:
        dst = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            fcntl.ioctl(dst, _FICLONE, src)
        except BaseException:
            os.close(dst)
            os.unlink(tmp)
            raise
        os.close(dst)
    finally:
        os.close(src)


def _link_error(kind: str, obj: Path, tmp: Path, e: OSError) -> InvalidInput:
    return InvalidInput(
        f"cannot {kind} {obj} to {tmp.parent}: {e.strerror or e}",
        hint='Set [data] link = "auto" (or "copy") in .mltrail/config.toml.',
    )


def hardlink_risk(name: str, count: int) -> str:
    """Return the warning for ``count`` files of ``name`` hardlinked into the cache, "" if not root.

    Read-only protects the cache from everyone but root, and most containers run as root.
    """
    if not count or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return ""
    return (
        f"{name}: {count} file(s) are hardlinks into the cache and you are root, who can write "
        "read-only files: an in-place edit would damage the cached version. Run `mltrail data "
        'unprotect PATH` before editing, or set [data] link = "auto" in .mltrail/config.toml.'
    )


def is_read_only_link(st: os.stat_result) -> bool:
    """Return True if a stat result looks like a hardlink into the cache (shared and read-only)."""
    return st.st_nlink > 1 and not st.st_mode & stat.S_IWUSR


def is_protected(path: Path) -> bool:
    """Return True if ``path`` is read-only for its owner (how hardlinked files are checked out)."""
    return not os.stat(path).st_mode & stat.S_IWUSR


def unprotect(path: Path, umask: int) -> bool:
    """Replace a hardlink into the cache by a private writable copy; return True if changed."""
    st = os.stat(path)
    if st.st_nlink <= 1 and st.st_mode & stat.S_IWUSR:
        return False
    tmp = temp_name(path)
    try:
        shutil.copyfile(path, tmp)
        os.chmod(tmp, (st.st_mode | 0o666) & 0o777 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return True


__all__ = [
    "LINK_TYPES",
    "check_link_type",
    "current_umask",
    "hardlink_risk",
    "is_protected",
    "is_read_only_link",
    "place",
    "unprotect",
]
