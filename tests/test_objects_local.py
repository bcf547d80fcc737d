"""The local-folder object store: layout, atomic writes, verification, errors, concurrency."""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import pytest

import mltrail
from mltrail.errors import IntegrityError, InvalidInput, InvalidState, NotFound, StoreError
from mltrail.objects import (
    LocalObjectStore,
    ObjectInfo,
    ObjectStore,
    check_hash,
    hash_bytes,
    hash_file,
    open_object_store,
)
from mltrail.objects import local as local_module
from mltrail.objects.base import verifying_reader

SRC = str(Path(mltrail.__file__).resolve().parent.parent)
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX permissions and signals")


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _damage(store: LocalObjectStore, h: str, data: bytes) -> None:
    path = store.path_of(h)
    os.chmod(path, 0o644)
    path.write_bytes(data)


def _temps(store: LocalObjectStore) -> list[Path]:
    tmp = store.root / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


# -- basics ----------------------------------------------------------------------------------------


def test_is_an_object_store(store: LocalObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    assert store.location == str(store.root)


def test_round_trip_bytes(store: LocalObjectStore, tmp_path: Path) -> None:
    data = b"hello world\n" * 1000
    info = store.put_bytes(data)
    assert info == ObjectInfo(hash_bytes(data), len(data))
    assert store.exists(info.hash)
    assert store.size(info.hash) == len(data)
    assert store.read_bytes(info.hash) == data
    with store.open(info.hash) as f:
        assert f.read() == data
    store.get_file(info.hash, tmp_path / "out" / "copy.txt")
    assert (tmp_path / "out" / "copy.txt").read_bytes() == data
    assert store.verify(info.hash)
    assert list(store.iter_hashes()) == [info.hash]


def test_round_trip_file(store: LocalObjectStore, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = _write(tmp_path / "src.bin", data)
    info = store.put_file(src)
    assert info == ObjectInfo(hash_bytes(data), len(data))
    assert store.read_bytes(info.hash) == data
    assert src.read_bytes() == data  # the source is left alone


def test_layout_is_two_hex_chars_then_the_rest(store: LocalObjectStore) -> None:
    info = store.put_bytes(b"layout")
    path = store.path_of(info.hash)
    assert path == store.root / info.hash[:2] / info.hash[2:]
    assert len(path.name) == 62
    assert path.read_bytes() == b"layout"


def test_empty_object(store: LocalObjectStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "empty", b"")
    info = store.put_file(src)
    assert info.size == 0
    assert store.put_bytes(b"") == info
    assert store.read_bytes(info.hash) == b""
    with store.open(info.hash) as f:
        assert f.read() == b""
    store.get_file(info.hash, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == b""
    assert store.verify(info.hash)


def test_large_file(store: LocalObjectStore, tmp_path: Path) -> None:
    data = os.urandom(20 * 1024 * 1024)
    src = _write(tmp_path / "big", data)
    info = store.put_file(src)
    assert info.hash == hash_bytes(data) == hash_file(src)
    assert store.verify(info.hash)
    store.get_file(info.hash, tmp_path / "big.out")
    assert (tmp_path / "big.out").read_bytes() == data
    with store.open(info.hash) as f:
        assert f.read() == data


def test_put_file_with_expected_hash(store: LocalObjectStore, tmp_path: Path) -> None:
    src = _write(tmp_path / "a", b"content")
    info = store.put_file(src, expected_hash=hash_bytes(b"content"))
    assert info == ObjectInfo(hash_bytes(b"content"), 7)


def test_put_file_refuses_content_that_does_not_match_expected_hash(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    # What put_tree sees when a file changes between its scan and its copy.
    src = _write(tmp_path / "a", b"new content")
    stale = hash_bytes(b"old content")
    with pytest.raises(InvalidState, match="changed while it was being stored"):
        store.put_file(src, expected_hash=stale)
    assert not store.exists(stale)
    assert list(store.iter_hashes()) == []
    assert _temps(store) == []


def test_open_stream_reads_in_pieces(store: LocalObjectStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 11)
    h = store.put_bytes(data).hash
    with store.open(h) as f:
        parts = []
        while chunk := f.read(65_537):
            parts.append(chunk)
    assert b"".join(parts) == data


# -- dedup -----------------------------------------------------------------------------------------


def test_same_content_is_stored_once_and_not_rewritten(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = _write(tmp_path / "a", b"same bytes")
    b = _write(tmp_path / "b", b"same bytes")
    first = store.put_file(a)
    before = store.path_of(first.hash).stat()

    def no_copy(*args: object, **kwargs: object) -> None:
        raise AssertionError("an existing object was copied again")

    monkeypatch.setattr(local_module, "_copy_fd", no_copy)
    monkeypatch.setattr(local_module, "_write_all", no_copy)
    assert store.put_file(b) == first
    assert store.put_files([(a, None), (b, first.hash)]) == [first, first]
    assert store.put_bytes(b"same bytes") == first
    assert store.put_file(a, expected_hash=first.hash) == first
    after = store.path_of(first.hash).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert list(store.iter_hashes()) == [first.hash]
    assert _temps(store) == []


# -- read-only objects, root checks ----------------------------------------------------------------


@posix_only
def test_objects_are_read_only(store: LocalObjectStore, tmp_path: Path) -> None:
    h1 = store.put_bytes(b"one").hash
    h2 = store.put_file(_write(tmp_path / "two", b"two")).hash
    for h in (h1, h2):
        mode = stat.S_IMODE(store.path_of(h).stat().st_mode)
        assert mode & 0o222 == 0, oct(mode)  # nobody may write
        assert mode & 0o400, oct(mode)  # the owner may read (others per the umask)
    if os.geteuid() != 0:  # root ignores permission bits
        with pytest.raises(PermissionError):
            store.path_of(h1).open("ab")


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    f = _write(tmp_path / "not-a-folder", b"x")
    with pytest.raises(StoreError, match="is a file, not a folder") as info:
        LocalObjectStore(f)
    assert str(f) in str(info.value)


def test_missing_root_is_created_on_first_write(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "a" / "b" / "objects")
    assert list(store.iter_hashes()) == []
    assert not store.exists(hash_bytes(b"x"))
    assert not (tmp_path / "a").exists()  # reading creates nothing
    store.put_bytes(b"x")
    assert store.read_bytes(hash_bytes(b"x")) == b"x"


@posix_only
def test_unwritable_root_is_a_store_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits")
    root = tmp_path / "ro"
    root.mkdir()
    os.chmod(root, 0o555)
    try:
        with pytest.raises(StoreError, match="cannot write to the object store"):
            LocalObjectStore(root).put_bytes(b"x")
    finally:
        os.chmod(root, 0o755)


def test_iter_hashes_ignores_foreign_files(store: LocalObjectStore) -> None:
    h = store.put_bytes(b"mine").hash
    (store.root / "README").write_text("not an object")
    (store.root / "zz").mkdir()
    (store.root / "zz" / ("0" * 62)).write_text("not a hex shard")
    (store.root / h[:2] / "short").write_text("bad name")
    assert list(store.iter_hashes()) == [h]


# -- corruption ------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flip", "truncate", "append", "empty"])
def test_corruption_is_detected_everywhere(
    store: LocalObjectStore, tmp_path: Path, damage: str
) -> None:
    data = os.urandom(2 * 1024 * 1024)
    h = store.put_bytes(data).hash
    bad = {
        "flip": data[:1000] + bytes([data[1000] ^ 1]) + data[1001:],
        "truncate": data[:-1],
        "append": data + b"\0",
        "empty": b"",
    }[damage]
    _damage(store, h, bad)

    with pytest.raises(IntegrityError) as info, store.open(h) as f:
        f.read()
    assert h in str(info.value)
    assert hash_bytes(bad) in str(info.value)
    assert str(store.path_of(h)) in str(info.value)  # the hint says what to delete

    with pytest.raises(IntegrityError), store.open(h) as f:
        while f.read(4096):
            pass

    with pytest.raises(IntegrityError):
        store.read_bytes(h)

    dest = tmp_path / "out" / "file"
    _write(dest, b"previous")
    with pytest.raises(IntegrityError):
        store.get_file(h, dest)
    assert dest.read_bytes() == b"previous"  # left as it was
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file"]  # no temp left

    assert store.verify(h) is False


def test_corrupted_reader_keeps_failing(store: LocalObjectStore) -> None:
    h = store.put_bytes(b"original").hash
    _damage(store, h, b"tampered")
    f = store.open(h)
    with pytest.raises(IntegrityError):
        f.read()
    with pytest.raises(IntegrityError):
        f.read()
    f.close()


def test_large_corrupted_object_detected_by_get_file(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    data = os.urandom(20 * 1024 * 1024)
    h = store.put_bytes(data).hash
    _damage(store, h, data[:-1] + b"\x00")
    with pytest.raises(IntegrityError):
        store.get_file(h, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not store.verify(h)


# -- missing objects and bad input -----------------------------------------------------------------


def test_missing_object(store: LocalObjectStore, tmp_path: Path) -> None:
    h = hash_bytes(b"never stored")
    assert not store.exists(h)
    assert store.missing([h, h]) == {h}
    for call in (
        lambda: store.open(h),
        lambda: store.read_bytes(h),
        lambda: store.get_file(h, tmp_path / "out"),
        lambda: store.size(h),
        lambda: store.delete(h),
        lambda: store.verify(h),
    ):
        with pytest.raises(NotFound) as info:
            call()
        assert h in str(info.value)
    assert not (tmp_path / "out").exists()


def test_missing_reports_only_absent(store: LocalObjectStore) -> None:
    present = store.put_bytes(b"here").hash
    absent = hash_bytes(b"not here")
    assert store.missing([present, absent]) == {absent}
    assert store.missing([]) == set()


@pytest.mark.parametrize(
    "bad",
    ["../x", "../" + "a" * 61, "a" * 63, "A" * 64, "g" * 64, "", "/etc/passwd", "aa/" + "b" * 61],
)
def test_invalid_hashes_are_rejected(store: LocalObjectStore, tmp_path: Path, bad: str) -> None:
    for call in (
        lambda: store.exists(bad),
        lambda: store.missing([bad]),
        lambda: store.open(bad),
        lambda: store.read_bytes(bad),
        lambda: store.get_file(bad, tmp_path / "out"),
        lambda: store.size(bad),
        lambda: store.delete(bad),
        lambda: store.verify(bad),
        lambda: store.path_of(bad),
        lambda: store.put_file(_write(tmp_path / "f", b"x"), expected_hash=bad),
    ):
        with pytest.raises(InvalidInput) as info:
            call()
        assert repr(bad) in str(info.value)


def test_put_file_bad_sources(store: LocalObjectStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such file"):
        store.put_file(tmp_path / "nope")
    with pytest.raises(InvalidInput, match="is a folder"):
        store.put_file(tmp_path)


@posix_only
def test_put_file_refuses_fifo_without_blocking(store: LocalObjectStore, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InvalidInput, match="not a regular file"):
        store.put_file(fifo)


def test_delete(store: LocalObjectStore) -> None:
    keep = store.put_bytes(b"keep").hash
    drop = store.put_bytes(b"drop").hash
    store.delete(drop)
    assert not store.exists(drop)
    assert list(store.iter_hashes()) == [keep]
    with pytest.raises(NotFound):
        store.delete(drop)
    assert store.put_bytes(b"drop").hash == drop  # can be stored again


# -- temp files ------------------------------------------------------------------------------------


def test_stale_temp_files_are_cleaned_fresh_ones_kept(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    (root / "tmp").mkdir(parents=True)
    old = _write(root / "tmp" / "old.tmp", b"half an object")
    fresh = _write(root / "tmp" / "fresh.tmp", b"someone is writing this")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    LocalObjectStore(root).put_bytes(b"trigger")
    assert not old.exists()
    assert fresh.exists()


@pytest.mark.parametrize("size", [10, 2 * 1024 * 1024])
def test_failed_write_leaves_no_temp(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    def disk_full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(local_module, "_copy_fd", disk_full)
    monkeypatch.setattr(local_module, "_write_all", disk_full)
    src = _write(tmp_path / "a", os.urandom(size))
    for put in (
        lambda: store.put_file(src),
        lambda: store.put_files([(src, None)]),
        lambda: store.put_bytes(src.read_bytes()),
    ):
        with pytest.raises(StoreError, match="disk is full"):
            put()
        assert _temps(store) == []
        assert list(store.iter_hashes()) == []


# -- opening by location ---------------------------------------------------------------------------


def test_open_object_store_locations(tmp_path: Path) -> None:
    for location in (tmp_path / "s", str(tmp_path / "s"), (tmp_path / "s").as_uri()):
        s = open_object_store(location)
        assert isinstance(s, LocalObjectStore)
        assert s.root == tmp_path / "s"
    s = open_object_store(f"file://localhost{tmp_path / 'with space'}")
    assert s.root == tmp_path / "with space"
    assert open_object_store((tmp_path / "with space").as_uri()).root == tmp_path / "with space"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("ftp://host/x", "unknown object store location"),
        ("file://otherhost/x", "only local files"),
        ("", "empty"),
    ],
)
def test_open_object_store_refuses_unavailable_backends(location: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        open_object_store(location)
    assert location in str(info.value)


# -- concurrency -----------------------------------------------------------------------------------


def test_concurrent_threads_same_and_different_content(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    shared = os.urandom(1024 * 1024)
    shared_file = _write(tmp_path / "shared", shared)
    uniques = [os.urandom(50_000) for _ in range(32)]
    barrier = threading.Barrier(16)

    def work(i: int) -> list[str]:
        barrier.wait()
        got = [store.put_bytes(shared).hash, store.put_file(shared_file).hash]
        got += [store.put_bytes(uniques[j]).hash for j in (2 * i, 2 * i + 1)]
        return got

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(work, range(16)))
    expected = {hash_bytes(shared)} | {hash_bytes(u) for u in uniques}
    assert {h for r in results for h in r} == expected
    assert set(store.iter_hashes()) == expected
    assert all(store.verify(h) for h in expected)
    assert _temps(store) == []


def _process_worker(root: str, shared_path: str, seed: int, rounds: int) -> list[str]:
    store = LocalObjectStore(root)
    hashes = []
    for r in range(rounds):
        hashes.append(store.put_file(shared_path).hash)
        hashes.append(store.put_bytes(b"shared %d" % r * 10_000).hash)
        hashes.append(store.put_bytes(b"own %d %d" % (seed, r) * 10_000).hash)
    return hashes


@pytest.mark.slow
def test_concurrent_processes_same_and_different_content(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    shared = _write(tmp_path / "shared", os.urandom(3 * 1024 * 1024))
    rounds = 20
    # spawn, not fork: a fork of a threaded test runner is not something users should copy.
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        jobs = [
            pool.apply_async(_process_worker, (str(root), str(shared), seed, rounds))
            for seed in range(4)
        ]
        results = [job.get(timeout=120) for job in jobs]
    store = LocalObjectStore(root)
    expected = {hash_file(shared)}
    expected |= {hash_bytes(b"shared %d" % r * 10_000) for r in range(rounds)}
    expected |= {
        hash_bytes(b"own %d %d" % (s, r) * 10_000) for s in range(4) for r in range(rounds)
    }
    assert {h for r in results for h in r} == expected
    assert set(store.iter_hashes()) == expected
    assert all(store.verify(h) for h in expected)
    assert _temps(store) == []


# -- crashes ---------------------------------------------------------------------------------------

_KILLED_MID_COPY = r"""
import os, sys, time
from mltrail.objects import local
from mltrail.objects.local import LocalObjectStore

def slow_copy(src, dst, size):
    # Write half the file, tell the test, then hang until killed.
    half = os.read(src, size // 2)
    os.write(dst, half)
    print("writing", flush=True)
    time.sleep(120)

local._copy_fd = slow_copy
LocalObjectStore(sys.argv[1]).put_file(sys.argv[2])
"""

_KILLED_ANYWHERE = r"""
import os, sys
from mltrail.objects.local import LocalObjectStore

store = LocalObjectStore(sys.argv[1])
i = 0
while True:
    store.put_bytes(os.urandom(4 * 1024 * 1024))
    i += 1
    if i == 1:
        print("stored one", flush=True)
"""


def _run_child(code: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True, env=env
    )


@posix_only
@pytest.mark.slow
def test_sigkill_mid_write_leaves_no_object(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    data = os.urandom(32 * 1024 * 1024)
    src = _write(tmp_path / "big", data)
    child = _run_child(_KILLED_MID_COPY, str(root), str(src))
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "writing"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    store = LocalObjectStore(root)
    h = hash_bytes(data)
    assert list(store.iter_hashes()) == []
    assert not store.path_of(h).exists()
    stray = _temps(store)
    assert len(stray) == 1 and 0 < stray[0].stat().st_size < len(data)

    # The next writer is not disturbed, and cleans the stray once it is old.
    day_ago = time.time() - 2 * 86400
    os.utime(stray[0], (day_ago, day_ago))
    assert LocalObjectStore(root).put_file(src).hash == h
    assert store.verify(h)
    assert _temps(store) == []


@posix_only
@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_only_whole_objects(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    for delay in (0.0, 0.05, 0.13):
        child = _run_child(_KILLED_ANYWHERE, str(root))
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "stored one"
            time.sleep(delay)
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
    store = LocalObjectStore(root)
    hashes = list(store.iter_hashes())
    assert len(hashes) >= 3
    for h in hashes:
        assert store.verify(h), f"object {h} under its final name is incomplete"


# -- batch writes ----------------------------------------------------------------------------------


def test_put_files_batch(store: LocalObjectStore, tmp_path: Path) -> None:
    contents = [os.urandom(n) for n in (0, 10, 5000, 2 * 1024 * 1024)] + [b"dup", b"dup"]
    paths = [_write(tmp_path / f"f{i}", c) for i, c in enumerate(contents)]
    already = store.put_bytes(contents[1])
    seen: list[int] = []
    # Every other file comes with its hash already known, as from a scan.
    items = [
        (p, hash_bytes(c) if i % 2 else None)
        for i, (p, c) in enumerate(zip(paths, contents, strict=True))
    ]
    infos = store.put_files(items, progress=seen.append)
    assert infos == [ObjectInfo(hash_bytes(c), len(c)) for c in contents]
    assert infos[1] == already
    assert sorted(seen) == sorted(len(c) for c in contents)
    assert set(store.iter_hashes()) == {hash_bytes(c) for c in contents}
    assert all(store.verify(i.hash) for i in infos)
    assert _temps(store) == []


def test_put_files_small_batches(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_module, "_BATCH_FILES", 3)
    contents = [b"file %d" % i for i in range(10)]
    paths = [_write(tmp_path / f"f{i}", c) for i, c in enumerate(contents)]
    infos = store.put_files([(p, None) for p in paths])
    assert [i.hash for i in infos] == [hash_bytes(c) for c in contents]
    assert len(list(store.iter_hashes())) == 10


def test_put_files_changed_file_fails_the_batch_cleanly(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    good = [_write(tmp_path / f"g{i}", b"good %d" % i) for i in range(20)]
    bad = _write(tmp_path / "bad", b"edited after scan")
    items = [(p, hash_bytes(p.read_bytes())) for p in good]
    items.insert(7, (bad, hash_bytes(b"as scanned")))
    with pytest.raises(InvalidState, match=str(bad)):
        store.put_files(items)
    # Nothing from the failed batch got a final name, and no temp file is left over.
    assert list(store.iter_hashes()) == []
    assert _temps(store) == []


def test_put_files_without_syncfs(
    store: LocalObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Platforms without syncfs fsync each temp file instead.
    monkeypatch.setattr(local_module, "_syncfs", lambda path: False)
    paths = [_write(tmp_path / f"f{i}", b"%d" % i) for i in range(5)]
    infos = store.put_files([(p, None) for p in paths])
    assert all(store.verify(i.hash) for i in infos)


# -- the interface's default methods ---------------------------------------------------------------


class MemoryStore(ObjectStore):
    """The smallest possible backend: shows what a remote backend must implement."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    @property
    def location(self) -> str:
        return "memory"

    def exists(self, hash: str) -> bool:
        return check_hash(hash) in self.blobs

    def put_file(
        self, path: str | os.PathLike[str], *, expected_hash: str | None = None
    ) -> ObjectInfo:
        return self.put_bytes(Path(path).read_bytes())

    def put_bytes(self, data: bytes) -> ObjectInfo:
        h = hash_bytes(data)
        self.blobs[h] = bytes(data)
        return ObjectInfo(h, len(data))

    def open(self, hash: str) -> BinaryIO:
        if not self.exists(hash):
            raise self.not_found(hash)
        return verifying_reader(
            io.BytesIO(self.blobs[hash]), hash, lambda actual: self.corrupted(hash, actual)
        )

    def size_or_none(self, hash: str) -> int | None:
        found = self.blobs.get(check_hash(hash))
        return None if found is None else len(found)

    def delete(self, hash: str) -> None:
        self.blobs.pop(check_hash(hash))

    def iter_hashes(self) -> Iterator[str]:
        return iter(list(self.blobs))


def test_interface_defaults(tmp_path: Path) -> None:
    store = MemoryStore()
    data = os.urandom(3 * 1024 * 1024)
    h = store.put_bytes(data).hash
    assert store.read_bytes(h) == data
    assert store.verify(h)
    store.get_file(h, tmp_path / "sub" / "out")
    assert (tmp_path / "sub" / "out").read_bytes() == data
    absent = hash_bytes(b"absent")
    assert store.missing([h, absent]) == {absent}
    with pytest.raises(InvalidInput):
        store.missing(["../x"])
    with pytest.raises(NotFound, match=absent):
        store.read_bytes(absent)

    paths = [_write(tmp_path / f"f{i}", b"%d" % i) for i in range(5)]
    seen: list[int] = []
    infos = store.put_files([(p, None) for p in paths], progress=seen.append)
    assert [i.hash for i in infos] == [hash_bytes(b"%d" % i) for i in range(5)]
    assert sum(seen) == 5

    store.blobs[h] = data[:-1] + b"!"
    assert store.verify(h) is False
    with pytest.raises(IntegrityError, match=h):
        store.read_bytes(h)
    with pytest.raises(IntegrityError):
        store.get_file(h, tmp_path / "sub" / "bad")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["out"]


def test_verifying_reader_over_read_only_streams() -> None:
    # HTTP bodies may offer read() but not readinto().
    class ReadOnly:
        def __init__(self, data: bytes) -> None:
            self.buf = io.BytesIO(data)

        def read(self, n: int = -1) -> bytes:
            return self.buf.read(n)

        def close(self) -> None:
            pass

    data = b"x" * 100_000
    ok = verifying_reader(ReadOnly(data), hash_bytes(data), IntegrityError)  # type: ignore[arg-type]
    assert ok.read() == data
    bad = verifying_reader(ReadOnly(data), hash_bytes(b"y"), IntegrityError)  # type: ignore[arg-type]
    with pytest.raises(IntegrityError):
        bad.read()


def test_missing_with_many_hashes_lists_shards(tmp_path: Path):
    store = LocalObjectStore(tmp_path / "objects")
    present = {store.put_bytes(str(i).encode()).hash for i in range(50)}
    absent = {hash_bytes(f"absent {i}".encode()) for i in range(3000)}
    assert store.missing(present | absent) == absent
    assert store.missing([*present, "../../etc", *absent]) == absent | {"../../etc"}
