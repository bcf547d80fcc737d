"""Who a process is, in a form another process can check later: is that writer still alive?

A process is tagged ``<host>-<boot>-<pid>-<start>``: short hashes of the host name and of the
kernel's boot id, the pid, and the process's start time (clock ticks since boot on Linux), so a
later process that got the same pid is never taken for the one that made the tag. Temp files of
the object stores and running runs carry the tag; a tag from another host is "unknown" here.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from blake3 import blake3

Owner = Literal["alive", "dead", "unknown"]

_UNKNOWN = "0"
_HAVE_PROC = os.path.isdir("/proc/self")


def _short_hash(text: str) -> str:
    return blake3(text.encode()).hexdigest()[:8]


def _host_tag() -> str:
    return _short_hash(socket.gethostname())


def _boot_tag() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return _short_hash(f.read().strip())
    except OSError:
        return _UNKNOWN


def _start_ticks(pid: int) -> str | None:
    """Return a process's start time in clock ticks since boot, None if there is no such process.

    Where /proc is not available the start time is unknown (``"0"``), and the pid alone decides.
    """
    if not _HAVE_PROC:
        return _UNKNOWN
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return None
    except OSError:
        return _UNKNOWN
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    return fields[19].decode() if len(fields) > 19 else _UNKNOWN


def _pid_exists(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap probe here: callers fall back to their age or heartbeat rules
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


_cached: tuple[int, str] | None = None


def owner_tag() -> str:
    """Return this process's ``host-boot-pid-start`` tag (recomputed after a fork)."""
    global _cached
    pid = os.getpid()
    if _cached is None or _cached[0] != pid:
        start = _start_ticks(pid)
        _cached = (pid, f"{_host_tag()}-{_boot_tag()}-{pid}-{start or _UNKNOWN}")
    return _cached[1]


def owner_state(tag: str) -> Owner:
    """Tell whether the process that made ``tag`` (see :func:`owner_tag`) is alive or dead.

    "unknown" when the tag is malformed or names another host: only that host can tell.
    """
    parts = tag.split("-")
    if len(parts) != 4 or not parts[2].isdigit():
        return "unknown"
    host, boot, pid, start = parts
    mine = owner_tag().split("-")
    if host != mine[0]:
        return "unknown"
    if boot != _UNKNOWN and mine[1] != _UNKNOWN and boot != mine[1]:
        return "dead"  # made before this machine last booted
    now = _start_ticks(int(pid)) if start != _UNKNOWN else _UNKNOWN
    if now is None:
        return "dead"
    if now == _UNKNOWN or start == _UNKNOWN:
        return "alive" if _pid_exists(int(pid)) else "dead"
    return "alive" if now == start else "dead"  # a different start: the pid was reused


def pid_of(tag: str) -> int | None:
    """The pid in a process tag, None if the tag is malformed."""
    parts = tag.split("-")
    return int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None


__all__ = ["Owner", "owner_state", "owner_tag", "pid_of"]
