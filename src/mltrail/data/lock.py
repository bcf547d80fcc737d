"""One `mltrail data` command at a time per project: ``fcntl.flock`` on ``.mltrail/data.lock``.

The kernel releases a flock when its holder exits, however it exits (even SIGKILL), so a dead
holder can never block later commands. The holder writes its PID into the file so that a waiting
command can say who it is waiting for.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mltrail.errors import InvalidState

LOCK_FILE = "data.lock"
#: How long a command waits for another one by default; MLTRAIL_LOCK_TIMEOUT overrides it.
DEFAULT_TIMEOUT = 60.0
ENV_TIMEOUT = "MLTRAIL_LOCK_TIMEOUT"
_POLL = 0.05


def lock_timeout() -> float:
    """Return the lock wait in seconds: MLTRAIL_LOCK_TIMEOUT if set and valid, else the default."""
    try:
        return max(0.0, float(os.environ.get(ENV_TIMEOUT, "")))
    except ValueError:
        return DEFAULT_TIMEOUT


def holder_pid(path: str | os.PathLike[str]) -> int | None:
    """Return the PID written in a lock file, or None if there is none."""
    try:
        text = Path(path).read_text(errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextmanager
def data_lock(project_dir: str | os.PathLike[str], timeout: float | None = None) -> Iterator[None]:
    """Hold the project's data lock for the block; wait up to ``timeout`` seconds for it."""
    import fcntl

    path = Path(project_dir) / LOCK_FILE
    wait = lock_timeout() if timeout is None else timeout
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    pid = holder_pid(path)
                    who = f"process {pid}" if pid else "another process"
                    raise InvalidState(
                        f"another mltrail data command ({who}) is working on this project; "
                        f"gave up waiting after {wait:g} s (lock file {path})",
                        hint="Wait for it to finish, or stop it"
                        + (f" (kill {pid})" if pid else "")
                        + f"; set {ENV_TIMEOUT} to wait longer. A holder that dies releases "
                        "the lock by itself.",
                    ) from None
                time.sleep(_POLL)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


__all__ = ["DEFAULT_TIMEOUT", "ENV_TIMEOUT", "LOCK_FILE", "data_lock", "holder_pid"]
