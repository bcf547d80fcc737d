"""The object-store interface every backend implements (local folder today; S3 and HTTP later).

An object is an immutable blob named by the BLAKE3 hash of its bytes. Nothing in the interface
assumes a local path: a backend only has to move bytes in and out by hash. Every read is verified
against the name, so a damaged object is reported as :class:`~mltrail.errors.IntegrityError`
instead of being handed on. Implementations must be safe to call from many threads at once;
``put_tree`` and ``checkout_tree`` rely on that.
"""

from __future__ import annotations

import abc
import io
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from blake3 import blake3

from mltrail.atomic import temp_name
from mltrail.errors import IntegrityError, InvalidInput, NotFound
from mltrail.objects.hashing import (
    CHUNK_SIZE,
    check_hash,
    default_workers,
    hash_bytes,
    hash_file,
    map_parallel,
)
from mltrail.objects.tempfiles import TempScan


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """The hash and size in bytes of a stored object."""

    hash: str
    size: int


class ObjectStore(abc.ABC):
    """A content-addressed store of immutable objects named by their BLAKE3 hash.

    Contract for backends: every method validates hashes with ``check_hash`` (so a hash can never
    smuggle in a path), raises ``NotFound`` for an absent object (see ``not_found``) and
    ``IntegrityError`` for content that does not match its name (see ``corrupted``). Writes are
    all-or-nothing: an object is visible under its hash only once it is complete. With
    ``expected_hash``, ``put_file`` may trust the hash to skip work when the object exists, but
    must check the bytes it stores against it and raise ``InvalidState`` if the file changed.
    """

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Return where the store lives (a path or URL), for messages."""

    @abc.abstractmethod
    def size_or_none(self, hash: str) -> int | None:
        """Return an object's size in bytes, or None if it is not in the store."""

    def exists(self, hash: str) -> bool:
        """Return True if the object is in the store."""
        return self.size_or_none(hash) is not None

    def missing(self, hashes: Iterable[str]) -> set[str]:
        """Return the subset of ``hashes`` that are not in the store."""
        return {h for h in {check_hash(h) for h in hashes} if not self.exists(h)}

    @abc.abstractmethod
    def put_file(
        self, path: str | os.PathLike[str], *, expected_hash: str | None = None
    ) -> ObjectInfo:
        """Store a file's content (a no-op if present); ``expected_hash`` skips hashing it first."""

    def put_files(
        self,
        files: Iterable[tuple[str | os.PathLike[str], str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[ObjectInfo]:
        """Store many ``(path, expected hash or None)`` files; ``progress`` gets each one's size."""
        items = list(files)

        def done(item: object, info: ObjectInfo) -> None:
            if progress is not None:
                progress(info.size)

        # Stores wait on disks and networks; threads overlap that waiting.
        return map_parallel(
            lambda item: self.put_file(item[0], expected_hash=item[1]),
            items,
            default_workers(),
            done,
        )

    @abc.abstractmethod
    def put_bytes(self, data: bytes) -> ObjectInfo:
        """Store ``data`` (no write if already present) and return its info."""

    @abc.abstractmethod
    def open(self, hash: str) -> BinaryIO:
        """Open an object for reading; reading to EOF raises IntegrityError if it is damaged."""

    def read_bytes(self, hash: str) -> bytes:
        """Return an object's content, verified against its hash."""
        with self.open(hash) as f:
            return f.read()

    def get_file(
        self, hash: str, dest: str | os.PathLike[str], *, executable: bool = False
    ) -> None:
        """Write an object to ``dest`` atomically (temp + rename), verified against its hash."""
        dest = Path(dest)
        with self.open(hash) as src, atomic_output(dest, executable=executable) as out:
            shutil.copyfileobj(src, out, CHUNK_SIZE)

    def size(self, hash: str) -> int:
        """Return an object's size in bytes (NotFound if it is not in the store)."""
        size = self.size_or_none(hash)
        if size is None:
            raise self.not_found(hash)
        return size

    @abc.abstractmethod
    def delete(self, hash: str) -> None:
        """Remove an object from the store."""

    @abc.abstractmethod
    def iter_hashes(self) -> Iterator[str]:
        """Yield the hash of every object in the store, in no particular order."""

    def temp_files(self, *, remove: bool = False) -> TempScan:
        """Count what dead writers left half-written in the store; with ``remove``, delete it.

        Backends without temp files of their own report nothing.
        """
        return TempScan()

    def verify(self, hash: str) -> bool:
        """Return True if the object's content still matches its hash, False if it is damaged."""
        try:
            with self.open(hash) as f:
                while f.read(CHUNK_SIZE):
                    pass
        except IntegrityError:
            return False
        return True

    def verified(self, hash: str, data: bytes) -> bytes:
        """Return ``data`` if it hashes to ``hash``; else raise this store's IntegrityError."""
        actual = hash_bytes(data)
        if actual != hash:
            raise self.corrupted(hash, actual)
        return data

    def not_found(self, hash: str) -> NotFound:
        """Return the error for a missing object."""
        return NotFound(
            f"object {hash} not found in {self.location}",
            hint="Add the data again, or fetch it from the remote that has it.",
        )

    def corrupted(self, hash: str, actual: str) -> IntegrityError:
        """Return the error for an object whose content hashes to ``actual`` instead of ``hash``."""
        err = IntegrityError(
            f"object {hash} in {self.location} is damaged: its content hashes to {actual}",
            hint="Delete the object, then add the data again or fetch it from a remote.",
        )
        err.object_hash = hash
        return err


class VerifyingReader(io.RawIOBase):
    """A raw reader that hashes what passes through and raises at EOF if it is not ``expected``."""

    def __init__(
        self,
        source: BinaryIO,
        expected: str,
        on_mismatch: Callable[[str], Exception],
    ) -> None:
        super().__init__()
        self._source = source
        self._expected = expected
        self._on_mismatch = on_mismatch
        self._hasher = blake3()
        self._actual: str | None = None

    def readable(self) -> bool:
        """Return True: this stream is for reading."""
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Read into ``buffer``; at EOF check the hash of everything read."""
        if self._actual is not None:
            if self._actual != self._expected:
                # Keep failing: a caller that swallowed the first error must not see a clean EOF.
                raise self._on_mismatch(self._actual)
            return 0
        view = memoryview(buffer).cast("B")
        readinto = getattr(self._source, "readinto", None)
        if readinto is not None:
            n = readinto(view) or 0
        else:  # streams such as HTTP bodies may only offer read()
            chunk = self._source.read(len(view))
            n = len(chunk)
            view[:n] = chunk
        if n:
            self._hasher.update(view[:n])
            return n
        self._actual = self._hasher.hexdigest()
        if self._actual != self._expected:
            raise self._on_mismatch(self._actual)
        return 0

    def close(self) -> None:
        """Close this reader and the stream under it."""
        if not self.closed:
            try:
                self._source.close()
            finally:
                super().close()


def verifying_reader(
    source: BinaryIO, expected: str, on_mismatch: Callable[[str], Exception]
) -> BinaryIO:
    """Wrap ``source`` in a buffered reader that verifies its content hash at EOF."""
    raw = VerifyingReader(source, expected, on_mismatch)
    return io.BufferedReader(raw, buffer_size=CHUNK_SIZE)  # type: ignore[return-value]


@contextmanager
def atomic_output(dest: Path, *, executable: bool = False) -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``dest`` when the block succeeds and vanishes if not."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    # Through os.open the mode is filtered by the umask, as for any file the user creates.
    mode = 0o777 if executable else 0o666
    try:
        # open() with an opener keeps ``f.name`` the temp path, for callers that re-read it.
        with open(tmp, "wb", opener=lambda p, flags: os.open(p, flags | os.O_EXCL, mode)) as f:
            yield f
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def reading_source(path: str) -> Iterator[None]:
    """Turn OS errors on a user's file into InvalidInput: bad input, not a broken store."""
    try:
        yield
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror or e}") from e


def check_source(path: str) -> os.stat_result:
    """Return the stat of the regular file ``path``; refuse folders, FIFOs and devices."""
    # Checked before opening: opening a FIFO for reading would block until a writer comes.
    with reading_source(path):
        st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInput(
            f"{path} is a folder, not a file", hint="Store folders as trees (put_tree)."
        )
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(f"{path} is not a regular file and cannot be stored")
    return st


def source_hash(path: str, expected: str | None = None) -> str:
    """The hash a file is stored under: ``expected`` (checked) if given, else its content's."""
    if expected is not None:
        return check_hash(expected)
    with reading_source(path):
        return hash_file(path)
