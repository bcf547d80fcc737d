"""The object store behind an ``mltrail server``: ``http(s)://server[:port]``.

Bytes stream both ways in 1 MiB chunks, never whole files in memory. Uploads are checked by the
server, which publishes an object only once all of it arrived and hashes to its name; downloads
are hashed here as they arrive, and a mismatch raises :class:`~mltrail.errors.IntegrityError`
(``get_file`` then leaves nothing at the destination). Existence is asked in batches.

When the server hands out presigned S3 URLs (it asks once per store), bytes go straight to and
from S3 and only the URLs come from the server; otherwise, or for objects over 5 GiB (more than
one S3 PUT takes), they go through the server. The connection pool, the token (``MLTRAIL_TOKEN``)
and retries with backoff are those of :func:`mltrail.transport.transport_for`.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import urlsplit

from blake3 import blake3

from mltrail.errors import InvalidInput, InvalidState, MltrailError, StoreError
from mltrail.objects.base import (
    ObjectInfo,
    ObjectStore,
    atomic_output,
    check_source,
    reading_source,
    source_hash,
    verifying_reader,
)
from mltrail.objects.hashing import (
    CHUNK_SIZE,
    check_hash,
    default_workers,
    hash_bytes,
    map_parallel,
)
from mltrail.transport import API_PREFIX, HttpTransport, transport_for

if TYPE_CHECKING:
    import httpx

#: Hashes per existence or presign request (the server's cap).
BATCH = 10_000
#: Hashes per listing page.
PAGE = 10_000
#: Upload chunk: large, so per-chunk overhead vanishes next to the copy.
UPLOAD_CHUNK = 4 * CHUNK_SIZE
# One S3 PUT holds at most 5 GiB; larger objects go through the server.
_PRESIGN_MAX_PUT = 5 * 1024**3
# Times a download that broke mid-body is resumed (with a Range request) before giving up.
_RESUMES = 3
# Raw bytes only: a compressed reply could not be resumed at a byte offset, nor hashed as it comes.
_IDENTITY = {"Accept-Encoding": "identity"}
# The server's code for "the body does not hash to the name in the URL".
HASH_MISMATCH = "HASH_MISMATCH"


class HttpObjectStore(ObjectStore):
    """Objects stored by an mltrail server, moved over its REST API (or presigned S3 URLs)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        max_workers: int = 8,
        transport: HttpTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            raise InvalidInput(
                f"not a server URL: {url!r}", hint="Write it as http://host:port or https://host."
            )
        self.url = url.rstrip("/")
        self.max_workers = max(1, max_workers)
        self._http = transport or transport_for(self.url, token)
        # None until the server was asked whether it presigns; then True or False for good.
        self._presigns: bool | None = None
        self._direct: HttpTransport | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpObjectStore({self.url!r})"

    @property
    def location(self) -> str:
        """Return the server's URL."""
        return self.url

    def _path(self, hash: str) -> str:
        return f"{API_PREFIX}/objects/{check_hash(hash)}"

    # -- looking up ------------------------------------------------------------------------------

    def size_or_none(self, hash: str) -> int | None:
        """Return an object's size in bytes (one HEAD request), or None if it is absent."""
        response = self._http.send(
            "HEAD", self._path(hash), idempotent=True, ok=(400, 401, 403, 404)
        )
        status = response.status_code
        if status == 404:
            return None
        if status >= 300:
            # A HEAD reply has no body to explain itself: ask again in a way that gets one.
            self._missing_batch([hash])
            raise self._http.error_of(response)
        return int(response.headers["content-length"])

    def missing(self, hashes: Iterable[str]) -> set[str]:
        """Return the subset of ``hashes`` the server lacks, asking in batches of 10,000."""
        wanted = sorted({check_hash(h) for h in hashes})
        out: set[str] = set()
        for at in range(0, len(wanted), BATCH):
            out.update(self._missing_batch(wanted[at : at + BATCH]))
        return out

    def _missing_batch(self, hashes: list[str]) -> list[str]:
        reply = self._http.call(
            "POST", "/objects/missing", json_body={"hashes": hashes}, idempotent=True
        )
        return list(reply["missing"])

    def iter_hashes(self) -> Iterator[str]:
        """Yield every object's hash, a page at a time (needs the admin role)."""
        after: str | None = None
        while True:
            page = self._http.call("GET", "/objects", params={"after": after, "limit": PAGE})
            yield from page["hashes"]
            after = page.get("next_after")
            if not after:
                return

    # -- writing ---------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ObjectInfo:
        """Store ``data`` (the server keeps what it has) and return its info."""
        h = hash_bytes(data)
        data = bytes(data)
        # One PUT, no existence check first: for data already in memory the round trip that
        # check costs is worth more than the bytes the server may drain.
        self._send(h, lambda: data, len(data), None, what="the data")
        return ObjectInfo(h, len(data))

    def put_file(
        self, path: str | os.PathLike[str], *, expected_hash: str | None = None
    ) -> ObjectInfo:
        """Store a file's content (not sent if present); ``expected_hash`` skips hashing it."""
        path = os.fspath(path)
        st = check_source(path)
        h = source_hash(path, expected_hash)
        url = None
        if self._presign_available():
            urls = self._presign([h], "PUT")
            if urls is not None:
                if h not in urls:
                    return ObjectInfo(h, st.st_size)
                url = urls[h]
        if url is None:
            size = self.size_or_none(h)
            if size is not None:
                return ObjectInfo(h, size)
        return self._upload(path, st.st_size, h, url)

    def put_files(
        self,
        files: Iterable[tuple[str | os.PathLike[str], str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[ObjectInfo]:
        """Store many ``(path, expected hash or None)`` files, sending the missing in parallel."""
        items = [(os.fspath(p), h) for p, h in files]
        stats = [check_source(p) for p, _ in items]
        hashes = map_parallel(lambda item: source_hash(*item), items, default_workers())
        # One batched question: presigned URLs come only for what the store lacks, so they
        # answer it too; without them, ask the server which objects it lacks.
        urls = self._presign(hashes, "PUT") if self._presign_available() else None
        absent = set(urls) if urls is not None else self.missing(hashes)
        infos: list[ObjectInfo | None] = [None] * len(items)
        todo: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            if h in absent:
                todo.setdefault(h, []).append(i)  # the same content twice goes up once
            else:
                infos[i] = ObjectInfo(h, stats[i].st_size)
                if progress is not None:
                    progress(stats[i].st_size)

        def upload(h: str) -> ObjectInfo:
            i = todo[h][0]
            return self._upload(items[i][0], stats[i].st_size, h, (urls or {}).get(h))

        def uploaded(h: str, info: ObjectInfo) -> None:
            for i in todo[h]:
                infos[i] = info
                if progress is not None:
                    progress(info.size)

        map_parallel(upload, list(todo), self.max_workers, uploaded)
        return infos  # type: ignore[return-value]

    def _upload(self, path: str, size: int, h: str, url: tuple[str, dict] | None) -> ObjectInfo:
        """Send the file ``path`` as object ``h`` (to a presigned URL if given)."""
        if size < CHUNK_SIZE:
            # Small files: send the very bytes that were hashed, so an edit cannot mislabel them.
            with reading_source(path), open(path, "rb") as f:
                data = f.read()
            actual = hash_bytes(data)
            if actual != h:
                raise _changed(path, h, actual)
            self._send(h, lambda: data, len(data), url, what=path)
            return ObjectInfo(h, len(data))

        # Through the server, the server checks the hash. S3 does not know BLAKE3, so for a
        # presigned URL the bytes are hashed here, and the last chunk is held back until they
        # match: a mismatch then aborts the PUT short of its declared length, and S3 keeps
        # nothing (a single PUT is all or nothing).
        verify = url is not None

        def body() -> Iterator[bytes]:
            # Exactly ``size`` bytes: the length is declared up front so the server can refuse
            # an oversize upload before it starts; a file that changed size is refused here.
            hasher = blake3() if verify else None
            held: bytes | None = None
            with reading_source(path), open(path, "rb", buffering=0) as f:
                left = size
                while left:
                    chunk = f.read(min(UPLOAD_CHUNK, left))
                    if not chunk:
                        raise _changed(path, h, "fewer bytes than when it was hashed")
                    left -= len(chunk)
                    if hasher is None:
                        yield chunk
                        continue
                    hasher.update(chunk)
                    if held is not None:
                        yield held
                    held = chunk
                if f.read(1):
                    raise _changed(path, h, "more bytes than when it was hashed")
            if hasher is not None and held is not None:
                actual = hasher.hexdigest()
                if actual != h:
                    raise _changed(path, h, actual)
                yield held

        self._send(h, body, size, url, what=path)
        return ObjectInfo(h, size)

    def _send(
        self,
        h: str,
        content: Callable[[], Any],
        size: int,
        url: tuple[str, dict] | None,
        *,
        what: str,
    ) -> None:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        if url is not None and size <= _PRESIGN_MAX_PUT:
            target, extra = url
            direct = self._direct_transport(target)
            # Presigned URLs carry their own signature: no content type, no token.
            self._direct_send(
                direct, "PUT", target, content, {**extra, "Content-Length": str(size)}
            )
            return
        try:
            self._http.send("PUT", self._path(h), content=content, headers=headers, idempotent=True)
        except MltrailError as e:
            if e.code == HASH_MISMATCH:
                raise InvalidState(
                    f"{what} changed while it was being sent to {self.url} (expected hash {h}); "
                    "nothing was stored for it",
                    hint="Run the command again once nothing is writing to it.",
                ) from None
            raise

    # -- reading ---------------------------------------------------------------------------------

    def open(self, hash: str) -> BinaryIO:
        """Open an object for reading; reading to EOF raises IntegrityError if it is damaged."""
        body = self._download(hash)
        return verifying_reader(
            body,  # type: ignore[arg-type]
            hash,
            lambda actual: self.corrupted(hash, actual),
        )

    def get_file(
        self, hash: str, dest: str | os.PathLike[str], *, executable: bool = False
    ) -> None:
        """Download an object to ``dest`` atomically (temp file beside it, hashed, renamed)."""
        body = self._download(hash)
        hasher = blake3()
        try:
            with atomic_output(Path(dest), executable=executable) as out:
                for chunk in body.chunks():
                    hasher.update(chunk)
                    out.write(chunk)
                actual = hasher.hexdigest()
                if actual != hash:
                    raise self.corrupted(hash, actual)
        finally:
            body.close()

    def _download(self, hash: str) -> _Body:
        path = self._path(hash)
        url = None
        if self._presign_available():
            urls = self._presign([hash], "GET")
            if urls is not None:
                url = urls.get(hash)
        if url is not None:
            target, extra = url
            direct = self._direct_transport(target)

            def reopen(start: int) -> httpx.Response:
                headers = {**extra, **_IDENTITY, **({"Range": f"bytes={start}-"} if start else {})}
                response = self._direct_send(direct, "GET", target, None, headers, stream=True)
                if response.status_code == 404:
                    response.close()
                    raise self.not_found(hash)
                return response

        else:

            def reopen(start: int) -> httpx.Response:
                headers = {**_IDENTITY, **({"Range": f"bytes={start}-"} if start else {})}
                return self._http.send("GET", path, headers=headers, idempotent=True, stream=True)

        return _Body(reopen, self, hash)

    # -- deleting --------------------------------------------------------------------------------

    def delete(self, hash: str) -> None:
        """Remove an object from the server's store (needs the admin role)."""
        self._http.send("DELETE", self._path(hash), idempotent=True)

    # -- presigned URLs --------------------------------------------------------------------------

    def _presign_available(self) -> bool:
        return self._presigns is not False

    def _presign(self, hashes: list[str], method: str) -> dict[str, tuple[str, dict]] | None:
        """Presigned URLs for ``hashes`` (PUT: only the missing ones), or None if not offered."""
        out: dict[str, tuple[str, dict]] = {}
        wanted = sorted(set(hashes))
        if not wanted:
            return {}
        for at in range(0, len(wanted), BATCH):
            batch = wanted[at : at + BATCH]
            response = self._http.send(
                "POST",
                f"{API_PREFIX}/objects/presign",
                content=json.dumps({"hashes": batch, "method": method}).encode(),
                headers={"Content-Type": "application/json"},
                idempotent=True,
                # 409: presigning is off; 404/405: a server that predates it.
                ok=(404, 405, 409),
            )
            if response.status_code >= 300:
                response.close()
                self._presigns = False
                return None
            self._presigns = True
            body = response.json()
            extra = body.get("headers", {})
            out.update((h, (u, extra.get(h) or {})) for h, u in body["urls"].items())
        return out

    def _direct_transport(self, url: str) -> HttpTransport:
        # Its own pool with no token: the server's token must never be sent to S3.
        with self._lock:
            if self._direct is None or self._direct.closed:
                parts = urlsplit(url)
                self._direct = HttpTransport(f"{parts.scheme}://{parts.netloc}")
            return self._direct

    def _direct_send(
        self,
        direct: HttpTransport,
        method: str,
        url: str,
        content: Callable[[], Any] | None,
        headers: dict[str, str],
        *,
        stream: bool = False,
    ) -> httpx.Response:
        try:
            return direct.send(
                method,
                url,
                content=content,
                headers=headers,
                idempotent=True,
                stream=stream,
                ok=(404,) if method == "GET" else (),
            )
        except StoreError as e:
            raise StoreError(
                f"object storage behind {self.url} ({direct.base_url}) failed {method}: "
                f"{e.message}",
                hint="The server hands out presigned S3 URLs: the S3 endpoint must be reachable "
                "from this machine too. Ask the server's admin, or have presigning turned off.",
            ) from None


class _Body:
    """An object's bytes as they arrive, resumed with a Range request if the connection drops."""

    def __init__(
        self, reopen: Callable[[int], httpx.Response], store: HttpObjectStore, hash: str
    ) -> None:
        self._reopen = reopen
        self._store = store
        self._hash = hash
        self._response: httpx.Response | None = reopen(0)
        self._chunks = self.chunks()
        self._left = b""

    def chunks(self) -> Iterator[bytes]:
        """Yield the body in the chunks it arrives in."""
        import httpx

        pos = 0
        resumes = 0
        while True:
            response = self._response
            if response is None:
                return
            try:
                for chunk in response.iter_raw(CHUNK_SIZE):
                    pos += len(chunk)
                    yield chunk
                self.close()
                return
            except (httpx.TransportError, httpx.StreamError) as e:
                self.close()
                if resumes >= _RESUMES:
                    raise StoreError(
                        f"the download of object {self._hash} from {self._store.url} broke "
                        f"after {pos} bytes: {e or type(e).__name__}",
                        hint="Try again; if it keeps happening, check the network and the "
                        "server's log.",
                    ) from None
                resumes += 1
                self._response = self._resume(pos)

    def _resume(self, pos: int) -> httpx.Response:
        response = self._reopen(pos)
        if response.status_code != 206:
            # The server sent the whole object again: that cannot continue where we stopped.
            response.close()
            raise StoreError(
                f"the download of object {self._hash} from {self._store.url} broke after {pos} "
                "bytes and could not be resumed",
                hint="Try again.",
            )
        return response

    def read(self, n: int = -1) -> bytes:
        """Return up to ``n`` bytes (fewer only at the end); b"" at EOF."""
        if not self._left:
            self._left = next(self._chunks, b"")
        if n < 0 or n >= len(self._left):
            out, self._left = self._left, b""
            return out
        out, self._left = self._left[:n], self._left[n:]
        return out

    def close(self) -> None:
        """Release the connection."""
        response, self._response = self._response, None
        if response is not None:
            response.close()


def _changed(path: str, expected: str, actual: str) -> InvalidState:
    return InvalidState(
        f"{path} changed while it was being stored (expected hash {expected}, "
        f"now {actual}); nothing was stored for it",
        hint="Run the command again once nothing is writing to that file.",
    )
