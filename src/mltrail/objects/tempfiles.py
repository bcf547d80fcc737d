"""Temp files of object stores, named for the process writing them, so a dead one's are found.

A name is ``<host>-<boot>-<pid>-<start>-<random>.tmp``: short hashes of the host name and of the
kernel's boot id, the writer's pid and its start time (clock ticks since boot on Linux), so a
later process that got the same pid is never taken for the owner. A temp file is *stale* when
its owner is known to be dead (this host, and a previous boot, no such process, or a process with
that pid that started at another time) or, whatever its name, once it has not changed for
:data:`STALE_SECONDS` (files of other hosts sharing the folder, and names of older versions).
Nothing else is ever removed: a temp file of a live writer is its work in progress.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from blake3 import blake3

#: A temp file this old cannot belong to a write still in progress, whoever owns it.
STALE_SECONDS = 24 * 3600
#: A long-lived writer (a server) sweeps its temp folder again after this long.
RESWEEP_SECONDS = 600
_SUFFIX = ".tmp"
_UNKNOWN = "0"
_HAVE_PROC = os.path.isdir("/proc/self")

Owner = Literal["alive", "dead", "unknown"]


@dataclass
class TempScan:
    """Stale temp files found in a folder (and removed, when sweeping), and live ones left."""

    stale: int = 0
    stale_bytes: int = 0
    #: Temp files of writers still running, or of unknown owners not yet old enough.
    live: int = 0

    def add(self, other: TempScan) -> None:
        """Add ``other``'s counts to these."""
        self.stale += other.stale
        self.stale_bytes += other.stale_bytes
        self.live += other.live


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
        return True  # no cheap probe here: keep the file, the age rule removes it later
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


def temp_filename() -> str:
    """Return a fresh temp file name carrying this process as its owner."""
    return f"{owner_tag()}-{os.urandom(8).hex()}{_SUFFIX}"


def owner_of(name: str) -> Owner:
    """Tell whether the process that named temp file ``name`` is alive, dead or unknown."""
    parts = name.removesuffix(_SUFFIX).split("-")
    if len(parts) != 5 or not parts[2].isdigit():
        return "unknown"  # an older version's name, or not ours
    host, boot, pid, start, _ = parts
    mine = owner_tag().split("-")
    if host != mine[0]:
        return "unknown"  # another machine sharing the folder: only the age rule applies
    if boot != _UNKNOWN and mine[1] != _UNKNOWN and boot != mine[1]:
        return "dead"  # written before this machine last booted
    now = _start_ticks(int(pid)) if start != _UNKNOWN else _UNKNOWN
    if now is None:
        return "dead"
    if now == _UNKNOWN or start == _UNKNOWN:
        return "alive" if _pid_exists(int(pid)) else "dead"
    return "alive" if now == start else "dead"  # a different start: the pid was reused


def scan_folder(
    folder: str,
    *,
    remove: bool,
    discard: Callable[[str], None] = os.unlink,
    older_than: float = STALE_SECONDS,
) -> TempScan:
    """Count (and with ``remove``, delete) the stale temp files in ``folder``."""
    result = TempScan()
    cutoff = time.time() - older_than
    verdicts: dict[str, Owner] = {}  # one /proc read per owner, not per file
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        return result  # no folder yet, or unreadable: nothing this process can clean
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
            tag = entry.name.rsplit("-", 1)[0]
            if tag not in verdicts:
                verdicts[tag] = owner_of(entry.name)
            stale = verdicts[tag] == "dead" or (verdicts[tag] == "unknown" and st.st_mtime < cutoff)
            if not stale:
                result.live += 1
                continue
            if remove:
                discard(entry.path)
        except FileNotFoundError:
            continue  # its writer published or removed it meanwhile
        except OSError:
            continue  # not ours to remove; cleaning is opportunistic
        result.stale += 1
        result.stale_bytes += st.st_size
    return result


__all__ = [
    "RESWEEP_SECONDS",
    "STALE_SECONDS",
    "TempScan",
    "owner_of",
    "owner_tag",
    "scan_folder",
    "temp_filename",
]
