"""BLAKE3 content hashes: the names of objects in the content-addressed store.

A hash is the 64-character lowercase hex BLAKE3 digest of an object's bytes. Nothing else is a valid
object name: uppercase, short or non-hex strings are refused, which is also what keeps a hash from
ever naming a path outside the store.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from blake3 import blake3

from mltrail.errors import InvalidInput, InvalidState

#: Length of a hash in hex characters.
HASH_HEX_LEN = 64

_T = TypeVar("_T")
_R = TypeVar("_R")


def usable_cpus() -> int:
    """Return how many CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))  # honours container and taskset limits
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# An explicit thread count, not blake3.AUTO: AUTO uses one process-wide pool, and a process forked
# after that pool started (a DataLoader worker, a multiprocessing pool) hangs forever on its next
# multi-threaded hash. An explicit count builds a pool per hasher, measured as fast (1 GiB: 0.111 s
# vs 0.112 s) and fork-safe.
_THREADS = usable_cpus()

# From this size on, the multi-threaded memory-mapped path beats a single-threaded read loop on a
# 2-core machine (16 MiB: 2.7 ms vs 3.3 ms; 8 MiB: 1.7 ms vs 1.3 ms; 64 MiB: 6.7 ms vs 9.9 ms).
# Below it, mapping and starting threads cost more than they save. More cores would favour a
# lower threshold; the loss below it is at most a few milliseconds per file.
MMAP_THRESHOLD = 16 * 1024 * 1024

#: Read/copy buffer size: big enough that per-call overhead vanishes, small enough to stay in cache.
CHUNK_SIZE = 1024 * 1024

_HASH_RE = re.compile(r"[0-9a-f]{64}")
#: Add to os.open flags: Windows would otherwise translate newlines.
O_BINARY: int = getattr(os, "O_BINARY", 0)
_PROC_FDS = sys.platform == "linux" and os.path.isdir("/proc/self/fd")


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Return the hex BLAKE3 hash of ``data``."""
    if len(data) >= MMAP_THRESHOLD and _THREADS > 1:
        return blake3(data, max_threads=_THREADS).hexdigest()
    return blake3(data).hexdigest()


def hash_file(path: str | os.PathLike[str]) -> str:
    """Return the hex BLAKE3 hash of the file at ``path`` (multi-threaded for large files)."""
    return _hash_file(path, _THREADS)


def _hash_file(path: str | os.PathLike[str], threads: int) -> str:
    fd = os.open(path, os.O_RDONLY | O_BINARY)
    try:
        return hash_fd(fd, path, os.fstat(fd).st_size, threads)
    finally:
        os.close(fd)


def hash_fd(fd: int, path: str | os.PathLike[str], size: int, threads: int = _THREADS) -> str:
    """Return the hash of the open file ``fd`` (``path`` names the same file, for mmap)."""
    # Single-threaded, a read loop beats mmap (256 MiB: 40 ms vs 60 ms).
    if size < MMAP_THRESHOLD or threads <= 1:
        hasher = blake3()
        # +1 so a file that grew since fstat is still read whole; readinto into one reused
        # buffer avoids allocating (and page-faulting) a fresh bytes object per chunk.
        buf = bytearray(min(size + 1, CHUNK_SIZE))
        view = memoryview(buf)
        os.lseek(fd, 0, os.SEEK_SET)  # the whole file, wherever the caller left the offset
        with io.FileIO(fd, "rb", closefd=False) as f:
            while n := f.readinto(buf):
                hasher.update(view[:n])
        return hasher.hexdigest()
    # blake3 maps by path; on Linux /proc names the very file ``fd`` has open, even if ``path``
    # was replaced since. Mapping a file that another process truncates meanwhile can raise
    # SIGBUS; blake3 and b3sum accept that trade for the speed, and so do we for files this large.
    if _PROC_FDS:
        path = f"/proc/self/fd/{fd}"
    return blake3(max_threads=threads).update_mmap(path).hexdigest()


def hash_unchanging(path: str, threads: int = _THREADS) -> tuple[str, os.stat_result]:
    """Hash a file and return its stat; refuse a file that changed while it was being hashed."""
    try:
        fd = os.open(path, os.O_RDONLY | O_BINARY)
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror or e}") from e
    try:
        before = os.fstat(fd)
        h = hash_fd(fd, path, before.st_size, threads)
        after = os.fstat(fd)
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror or e}") from e
    finally:
        os.close(fd)
    # A file rewritten while we hashed it would get a size that does not match its hash.
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InvalidState(
            f"{path} changed while it was being hashed",
            hint="Run the command again once nothing is writing to it.",
        )
    return h, before


def hash_files(
    paths: Iterable[str | os.PathLike[str]], workers: int | None = None
) -> dict[Path, str]:
    """Hash many files in parallel; return ``{Path(path): hash}`` in the order given."""
    items = [Path(p) for p in paths]
    if workers is None:
        workers = default_workers()
    workers = max(1, min(workers, len(items)))
    # Share the cores between the workers rather than letting each large file start a pool of
    # its own on top of them.
    threads = max(1, _THREADS // workers)
    hashes = map_parallel(lambda p: _hash_file(p, threads), items, workers)
    return dict(zip(items, hashes, strict=True))


def default_workers() -> int:
    """Return how many threads to use for file I/O: a few per core, as I/O waits release the GIL."""
    return min(32, _THREADS * 4)


def map_parallel(
    fn: Callable[[_T], _R],
    items: Sequence[_T],
    workers: int,
    on_done: Callable[[_T, _R], None] | None = None,
) -> list[_R]:
    """Apply ``fn`` to every item on up to ``workers`` threads; return results in input order."""
    n = len(items)
    if workers <= 1 or n <= 1:
        results = []
        for item in items:
            result = fn(item)
            results.append(result)
            if on_done is not None:
                on_done(item, result)
        return results
    # Imported here: concurrent.futures pulls in logging, too slow for every `import mltrail`.
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    # Items go out in batches: one future per small file costs more than hashing or copying it
    # (20,000 x 4 KiB: 0.6 s one by one vs 0.2 s batched). Eight batches per worker keep the
    # load balanced when a few items are much larger than the rest.
    size = max(1, min(256, -(-n // (workers * 8))))
    failed = threading.Event()

    def run(start: int) -> list[_R]:
        out = []
        for item in items[start : start + size]:
            if failed.is_set():  # another batch failed: stop early, the results are discarded
                break
            out.append(fn(item))
        return out

    ordered: list[_R | None] = [None] * n
    starts = range(0, n, size)
    with ThreadPoolExecutor(max_workers=min(workers, len(starts))) as pool:
        futures = {pool.submit(run, start): start for start in starts}
        try:
            for future in as_completed(futures):
                start = futures[future]
                batch = future.result()
                ordered[start : start + len(batch)] = batch
                if on_done is not None:
                    for item, result in zip(items[start : start + size], batch, strict=True):
                        on_done(item, result)
        except BaseException:
            failed.set()
            for future in futures:
                future.cancel()
            raise
    return ordered  # type: ignore[return-value]


def is_valid_hash(value: object) -> bool:
    """Return True if ``value`` is a 64-character lowercase hex string."""
    return isinstance(value, str) and _HASH_RE.fullmatch(value) is not None


def check_hash(value: object) -> str:
    """Return ``value`` if it is a valid object hash, else raise InvalidInput naming it."""
    if is_valid_hash(value):
        return value  # type: ignore[return-value]
    if isinstance(value, str) and _HASH_RE.fullmatch(value.lower()):
        hint = "Object hashes are lowercase; use the hash exactly as mltrail printed it."
    else:
        hint = f"An object hash is {HASH_HEX_LEN} lowercase hex characters (a BLAKE3 digest)."
    raise InvalidInput(f"not a valid object hash: {value!r}", hint=hint)
