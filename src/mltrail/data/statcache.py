"""The stat cache: (path, inode, size, mtime) → hash, so unchanged files are never rehashed.

It lives in ``.mltrail/cache/stat.db``, a small SQLite database of its own (WAL mode) that belongs
to this machine and this checkout: inodes mean nothing elsewhere, so it is never copied, pushed or
kept in the metadata store. Deleting it is always safe; the next scan hashes everything again.

A row is used only when the file's inode, size and mtime (nanoseconds) are all unchanged. A file
modified within :data:`RACY_WINDOW_NS` of being hashed is not cached: a second write in the same
timestamp tick would not change its mtime (Git calls this "racily clean").
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from mltrail.errors import StoreError

#: Files modified this recently (before being hashed) are not cached.
RACY_WINDOW_NS = 1_000_000_000
#: SQLite's limit on host parameters is 32766 in current versions; stay well under it.
_CHUNK = 900

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stat (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    hash TEXT NOT NULL
) WITHOUT ROWID
"""


class StatKey(NamedTuple):
    """What identifies one state of a file: inode, size in bytes, mtime in nanoseconds."""

    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> StatKey:
        """Return the key of a stat result."""
        return cls(st.st_ino, st.st_size, st.st_mtime_ns)


class StatCache:
    """The stat cache of one project; paths are POSIX paths relative to the project root."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"cannot open the stat cache {self.path}: {e}",
                hint="It only speeds things up: delete the file and run the command again.",
            ) from e

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> StatCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_many(self, paths: Iterable[str]) -> dict[str, tuple[StatKey, str]]:
        """Return ``{path: (key, hash)}`` for the given paths that have a row."""
        paths = list(paths)
        out: dict[str, tuple[StatKey, str]] = {}
        for i in range(0, len(paths), _CHUNK):
            chunk = paths[i : i + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT path, inode, size, mtime_ns, hash FROM stat WHERE path IN ({marks})",
                chunk,
            )
            for path, inode, size, mtime, h in rows:
                out[path] = (StatKey(inode, size, mtime), h)
        return out

    def get_under(self, folder: str) -> dict[str, tuple[StatKey, str]]:
        """Return every row for a path inside ``folder`` (one range query, not one per file)."""
        low = folder.rstrip("/") + "/"
        high = low[:-1] + "0"  # '0' sorts right after '/'
        rows = self._db.execute(
            "SELECT path, inode, size, mtime_ns, hash FROM stat WHERE path >= ? AND path < ?",
            (low, high),
        )
        # Plain tuples compare equal to StatKeys and cost a third of the time to build.
        return {p: ((i, s, m), h) for p, i, s, m, h in rows}  # type: ignore[misc]

    def lookup(self, path: str, key: StatKey) -> str | None:
        """Return the cached hash of ``path`` if its key is unchanged, else None."""
        row = self.get_many([path]).get(path)
        return row[1] if row is not None and row[0] == key else None

    def put_many(
        self,
        rows: Iterable[tuple[str, StatKey, str]],
        *,
        trusted: bool = False,
        now_ns: int | None = None,
    ) -> int:
        """Record ``(path, key, hash)`` rows in one transaction; return how many were kept.

        Rows for files modified within RACY_WINDOW_NS of ``now_ns`` are skipped unless
        ``trusted`` (mltrail wrote the file itself and verified it).
        """
        limit = (now_ns if now_ns is not None else time.time_ns()) - RACY_WINDOW_NS
        keep = [
            (p, k.inode, k.size, k.mtime_ns, h) for p, k, h in rows if trusted or k.mtime_ns < limit
        ]
        if keep:
            with self._transaction():
                self._db.executemany(
                    "INSERT OR REPLACE INTO stat (path, inode, size, mtime_ns, hash) "
                    "VALUES (?, ?, ?, ?, ?)",
                    keep,
                )
        return len(keep)

    def delete_many(self, paths: Iterable[str]) -> None:
        """Forget the given paths."""
        items = [(p,) for p in paths]
        if items:
            with self._transaction():
                self._db.executemany("DELETE FROM stat WHERE path = ?", items)

    def _transaction(self) -> sqlite3.Connection:
        # isolation_level=None: we open transactions ourselves; the connection's context
        # manager commits (or rolls back) the BEGIN below.
        self._db.execute("BEGIN IMMEDIATE")
        return self._db


__all__ = ["RACY_WINDOW_NS", "StatCache", "StatKey"]
