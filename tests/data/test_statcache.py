"""The stat cache: unchanged files are not rehashed; any change of size, mtime or inode is seen."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from mltrail.data import workspace
from mltrail.data.statcache import RACY_WINDOW_NS, StatCache, StatKey
from mltrail.objects import hashing
from tests.data import settle, write


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the path of every file the workspace scan hashes."""
    calls: list[str] = []
    real = hashing.hash_fd

    def spy(fd, path, size, threads=1):
        calls.append(str(path))
        return real(fd, path, size, threads)

    monkeypatch.setattr(hashing, "hash_fd", spy)
    return calls


def _scan(root: Path, path: Path, cache: StatCache) -> workspace.Scan:
    return workspace.scan(root, path, cache)


def test_rows_round_trip(tmp_path: Path):
    with StatCache(tmp_path / "c" / "stat.db") as cache:
        key = StatKey(1, 2, 3)
        assert cache.put_many([("a/b", key, "h1"), ("a/c", key, "h2")], trusted=True) == 2
        assert cache.lookup("a/b", key) == "h1"
        assert cache.lookup("a/b", StatKey(1, 2, 4)) is None
        assert set(cache.get_under("a")) == {"a/b", "a/c"}
        assert cache.get_under("a/b") == {}
        cache.delete_many(["a/b"])
        assert cache.get_many(["a/b", "a/c"]).keys() == {"a/c"}
        journal = cache._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert journal == "wal"


def test_recent_files_are_not_cached_unless_trusted(tmp_path: Path):
    now = time.time_ns()
    with StatCache(tmp_path / "stat.db") as cache:
        fresh = StatKey(1, 1, now - RACY_WINDOW_NS // 2)
        assert cache.put_many([("x", fresh, "h")], now_ns=now) == 0
        assert cache.put_many([("x", fresh, "h")], now_ns=now, trusted=True) == 1


def test_unchanged_files_are_not_rehashed(tmp_path: Path, counted: list[str]):
    folder = tmp_path / "d"
    for i in range(20):
        write(folder / f"sub{i % 3}" / f"{i}.bin", os.urandom(100))
    settle(folder)
    with StatCache(tmp_path / "stat.db") as cache:
        first = _scan(tmp_path, folder, cache)
        assert len(counted) == 20 and first.hashed == 20
        counted.clear()
        second = _scan(tmp_path, folder, cache)
        assert counted == [] and second.hashed == 0
        assert second.hash == first.hash


def _changed(tmp_path: Path, change) -> list[str]:
    f = write(tmp_path / "f.bin", b"0123456789")
    settle(f)
    calls: list[str] = []
    with StatCache(tmp_path / "stat.db") as cache:
        _scan(tmp_path, f, cache)
        real = hashing.hash_fd

        def spy(fd, path, size, threads=1):
            calls.append(str(path))
            return real(fd, path, size, threads)

        change(f)
        hashing.hash_fd = spy
        try:
            result = _scan(tmp_path, f, cache)
        finally:
            hashing.hash_fd = real
    assert result.hash == workspace._hash_one(str(f), 1)[0]
    return calls


def test_size_change_invalidates(tmp_path: Path):
    def grow(f: Path) -> None:
        st = f.stat()
        f.write_bytes(b"0123456789!")
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime: only the size differs

    assert len(_changed(tmp_path, grow)) == 1


def test_mtime_change_invalidates(tmp_path: Path):
    def touch(f: Path) -> None:
        st = f.stat()
        f.write_bytes(b"abcdefghij")  # same size
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))

    assert len(_changed(tmp_path, touch)) == 1


def test_inode_change_invalidates(tmp_path: Path):
    def replace(f: Path) -> None:
        st = f.stat()
        other = f.with_name("other")
        other.write_bytes(b"ABCDEFGHIJ")  # same size, same mtime, new inode
        os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
        # Keep the old inode alive so the new file cannot reuse its number.
        os.link(f, f.with_name("keep"))
        os.replace(other, f)

    assert len(_changed(tmp_path, replace)) == 1


def test_deleted_files_are_forgotten(tmp_path: Path):
    folder = tmp_path / "d"
    write(folder / "a", b"a")
    write(folder / "b", b"b")
    settle(folder)
    with StatCache(tmp_path / "stat.db") as cache:
        _scan(tmp_path, folder, cache)
        (folder / "b").unlink()
        _scan(tmp_path, folder, cache)
        assert set(cache.get_under("d")) == {"d/a"}
