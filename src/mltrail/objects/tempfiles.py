"""Temp files of object stores, named for the process writing them, so a dead one's are found.

A name is ``<owner>-<random>.tmp``, the owner being the writer's process tag (host, boot, pid and
start time, see ``mltrail.process``), so a later process that got the same pid is never taken
for the owner. A temp file is *stale* when
its owner is known to be dead (this host, and a previous boot, no such process, or a process with
that pid that started at another time) or, whatever its name, once it has not changed for
:data:`STALE_SECONDS` (files of other hosts sharing the folder, and names of older versions).
Nothing else is ever removed: a temp file of a live writer is its work in progress.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from mltrail.process import Owner, owner_state, owner_tag

#: A temp file this old cannot belong to a write still in progress, whoever owns it.
STALE_SECONDS = 24 * 3600
#: A long-lived writer (a server) sweeps its temp folder again after this long.
RESWEEP_SECONDS = 600
_SUFFIX = ".tmp"


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


def temp_filename() -> str:
    """Return a fresh temp file name carrying this process as its owner."""
    return f"{owner_tag()}-{os.urandom(8).hex()}{_SUFFIX}"


def owner_of(name: str) -> Owner:
    """Tell whether the process that named temp file ``name`` is alive, dead or unknown.

    Names of older versions (no owner) and of other hosts sharing the folder are "unknown":
    only the age rule applies to them.
    """
    tag, _, _ = name.removesuffix(_SUFFIX).rpartition("-")
    return owner_state(tag)


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
