"""Uploads through the server: a request body streamed into a temp file, hashed on the way.

The file is published as an object only once every byte has arrived (and, where the client named
the hash, matches it); an upload that stops half way leaves nothing visible and no temp file.
Temp files carry their owner's name (see ``objects.tempfiles``), so those a killed server left are
removed by the next upload: in the local store's own temp folder, or for other stores in
``mltrail-uploads`` under the system's temp folder.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from typing import TYPE_CHECKING

from blake3 import blake3
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from mltrail.errors import StoreError
from mltrail.objects.hashing import CHUNK_SIZE
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.tempfiles import RESWEEP_SECONDS, scan_folder, temp_filename

if TYPE_CHECKING:
    from mltrail.objects.base import ObjectStore

# Uploads are written and hashed in blocks this large on a worker thread, while the event loop
# receives the next block: the per-block thread hop then costs nothing measurable.
_BLOCK = 4 * CHUNK_SIZE
_WRITEV = hasattr(os, "writev")
# writev takes at most IOV_MAX (1024 on Linux) buffers; a client trickling tiny pieces must not
# make a block of more.
_MAX_CHUNKS = 512


_swept: float | None = None


def upload_temp_folder() -> str:
    """Return the folder of upload temp files for stores that are not a local folder."""
    return os.path.join(tempfile.gettempdir(), "mltrail-uploads")


def _new_upload_temp() -> tuple[int, str]:
    global _swept
    folder = upload_temp_folder()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    if _swept is None or time.monotonic() - _swept > RESWEEP_SECONDS:
        scan_folder(folder, remove=True)
        _swept = time.monotonic()
    path = os.path.join(folder, temp_filename())
    return os.open(
        path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600
    ), path


class Upload:
    """One upload's temp file: written and hashed block by block, then published or discarded."""

    def __init__(self, store: ObjectStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.hasher = blake3()
        self.size = 0
        self.fd: int | None = None
        self.tmp: str | None = None
        self._pending: asyncio.Future[None] | None = None

    def _open(self) -> None:
        if isinstance(self.store, LocalObjectStore):
            # Straight into the store's own temp folder: publishing is then a rename, not a copy.
            self.fd, self.tmp = self.store._new_temp()
        else:
            self.fd, self.tmp = _new_upload_temp()

    def _write(self, chunks: list[bytes]) -> None:
        assert self.fd is not None
        try:
            written = os.writev(self.fd, chunks) if _WRITEV else 0
            if written < sum(map(len, chunks)):  # a short write (or no writev): the rest, slowly
                rest = memoryview(b"".join(chunks))[written:]
                while rest:
                    rest = rest[os.write(self.fd, rest) :]
        except OSError as e:
            raise StoreError(
                f"the server cannot store the upload: {e.strerror or e}",
                hint="The server's admin should check the free space of its temp folder.",
            ) from e
        for chunk in chunks:
            self.hasher.update(chunk)

    async def _flush(self, chunks: list[bytes]) -> None:
        if self._pending is not None:
            await self._pending
            self._pending = None
        if chunks:
            # Not awaited here: the next block is received while this one is written. The
            # caller starts a new list, so this one is never touched again.
            self._pending = asyncio.get_running_loop().run_in_executor(None, self._write, chunks)

    async def receive(self, request: Request) -> int | None:
        """Read the whole body into the temp file; return its size, or None past the limit."""
        await run_in_threadpool(self._open)
        # Chunks are kept as they arrive and written together (writev): no copy into a buffer.
        chunks: list[bytes] = []
        pending = 0
        async for chunk in request.stream():
            self.size += len(chunk)
            if self.size > self.limit:
                return None
            chunks.append(chunk)
            pending += len(chunk)
            if pending >= _BLOCK or len(chunks) >= _MAX_CHUNKS:
                await self._flush(chunks)
                chunks, pending = [], 0
        await self._flush(chunks)
        await self._flush([])
        return self.size

    def publish(self, h: str) -> None:
        """Make the complete, verified temp file object ``h`` in the store."""
        assert self.fd is not None and self.tmp is not None
        store = self.store
        if isinstance(store, LocalObjectStore):
            os.fsync(self.fd)
            os.close(self.fd)
            self.fd = None
            store._publish([(self.tmp, h)])
            self.tmp = None  # renamed into place (or dropped as a duplicate) by the store
        else:
            os.close(self.fd)
            self.fd = None
            store.put_file(self.tmp, expected_hash=h)

    def discard(self) -> None:
        """Remove the temp file unless it was published; safe to call more than once."""
        pending, self._pending = self._pending, None
        if pending is not None:
            if not pending.done():
                # A write still running on its thread must finish before its file goes away;
                # no await here, so a cancelled request cannot skip the cleanup.
                pending.add_done_callback(lambda _: self.discard())
                self._pending = pending
                return
            if not pending.cancelled():
                pending.exception()  # retrieved: the upload is abandoned, its error is moot
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.tmp is not None:
            tmp, self.tmp = self.tmp, None
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            except PermissionError:  # Windows: the store's temp files are read-only
                os.chmod(tmp, 0o644)
                os.unlink(tmp)
