"""Objects through the server: ``/api/v1/objects`` (upload, download, existence, listing, presign).

An upload streams the request body into a temp file, hashing it on the way, and publishes the
object only once every byte has arrived and hashes to the name in the URL: a client that stops
half way, or sends other bytes, leaves nothing visible. Downloads stream from the object store
(a local file is sent as it is; an S3 body is passed through) and are not re-hashed here:
readers always verify what they receive against the name they asked for.

Trust model. Objects are named by their content, so a name is not a secret and grants nothing:
reading needs the ``read`` role and a reference the caller may read (a run, model version or
dataset that names the object, see :mod:`mltrail.access`; an object nothing names yet, such as
data just pushed, is readable with the ``read`` role), storing needs ``write``, deleting and
listing everything ``admin``.
Through the server, nothing can be stored under a name its bytes do not hash to. With presigned
URLs (``presign`` on, S3 object store), a write token holder uploads straight to S3 and the server
never sees the bytes, so it cannot check them: a writer could put wrong bytes under a name. That
harms no reader's data silently, because every reader hashes what it gets and refuses a mismatch
(IntegrityError), and ``mltrail data gc``/verify find such objects; it is the same trust that a
write token already carries. The presigned URLs expire after :data:`PRESIGN_EXPIRES` seconds and
each allows one operation on one key.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, Response, StreamingResponse

from mltrail.access import Principal, allow, allow_objects
from mltrail.errors import InvalidInput, InvalidState, NotFound, StoreError
from mltrail.objects.hashing import CHUNK_SIZE, check_hash, is_valid_hash
from mltrail.objects.local import LocalObjectStore
from mltrail.server import metrics
from mltrail.server.app import ServerState, error_response, reply, state_of
from mltrail.server.auth import principal
from mltrail.server.routes.ops import ERROR_RESPONSES
from mltrail.server.schemas import Body, ErrorOut
from mltrail.server.uploads import Upload

if TYPE_CHECKING:
    from mltrail.objects.base import ObjectStore

router = APIRouter(prefix="/api/v1/objects", tags=["objects"], responses=ERROR_RESPONSES)

Who = Annotated[Principal, Depends(principal)]
State = Annotated[ServerState, Depends(state_of)]

#: Most hashes one existence or presign request may ask about.
MAX_HASHES_PER_CALL = 10_000
#: Most hashes one listing page holds.
MAX_PAGE = 10_000
#: How long a presigned URL stays valid, in seconds.
PRESIGN_EXPIRES = 3600
# S3 takes at most 5 GiB in one PUT; larger objects need multipart, so they go through the server.
PRESIGN_MAX_PUT_BYTES = 5 * 1024**3
_HEX = frozenset("0123456789abcdef")
_OBJECT_HEADERS = {
    "Cache-Control": "private, max-age=31536000, immutable",
    "Content-Type": "application/octet-stream",
}


class HashMismatch(InvalidInput):
    """An upload whose bytes do not hash to the name in its URL (HTTP 400)."""

    code = "HASH_MISMATCH"


# -- bodies --------------------------------------------------------------------------------------


class HashesIn(Body):
    hashes: list[str] = Field(max_length=MAX_HASHES_PER_CALL)


class MissingOut(BaseModel):
    missing: list[str]


class PresignIn(Body):
    hashes: list[str] = Field(max_length=MAX_HASHES_PER_CALL)
    method: Literal["PUT", "GET"]


class PresignOut(BaseModel):
    #: hash → URL; for PUT only the hashes the store lacks.
    urls: dict[str, str]
    #: hash → headers the request to that URL must carry (they are part of the signature).
    headers: dict[str, dict[str, str]]
    expires_in: int


class PageOut(BaseModel):
    hashes: list[str]
    #: Pass as ``after`` for the next page; null on the last page.
    next_after: str | None


class PutOut(BaseModel):
    hash: str
    size: int
    #: False when the object was already there (the body was not stored again).
    created: bool


# -- existence and listing -----------------------------------------------------------------------


@router.post("/missing", response_model=MissingOut)
def missing_objects(body: HashesIn, who: Who, state: State) -> Response:
    """Which of up to 10,000 hashes the object store lacks."""
    allow(who, "read")
    hashes = {_object_hash(h) for h in body.hashes}
    return reply({"missing": sorted(state.objects.missing(hashes))})


@router.get("", response_model=PageOut)
def list_objects(
    who: Who,
    state: State,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
) -> Response:
    """A page of stored hashes in ascending order, those after ``after`` (admin only)."""
    allow(who, "admin")
    if after:
        _object_hash(after)
    hashes = _page(state.objects, after or "", limit)
    next_after = hashes[-1] if len(hashes) == limit else None
    return reply({"hashes": hashes, "next_after": next_after})


def _page(store: ObjectStore, after: str, limit: int) -> list[str]:
    if isinstance(store, LocalObjectStore):
        return _page_local(store, after, limit)
    if _is_s3(store):
        return _page_s3(store, after, limit)
    # Any other backend: correct, but it walks the whole store for every page.
    return sorted(h for h in store.iter_hashes() if h > after)[:limit]


def _page_local(store: LocalObjectStore, after: str, limit: int) -> list[str]:
    try:
        shards = sorted(n for n in os.listdir(store.root) if len(n) == 2 and set(n) <= _HEX)
    except FileNotFoundError:
        return []
    out: list[str] = []
    for shard in shards[bisect.bisect_left(shards, after[:2]) :]:
        try:
            names = sorted(os.listdir(store.root / shard))
        except FileNotFoundError:
            continue
        # Names are the hash less its shard; start just past ``after`` within its own shard.
        start = bisect.bisect_right(names, after[2:]) if shard == after[:2] else 0
        for name in names[start:]:
            h = shard + name
            if is_valid_hash(h):
                out.append(h)
                if len(out) == limit:
                    return out
    return out


def _page_s3(store: Any, after: str, limit: int) -> list[str]:
    base = store.key_of("0" * 64)[: -(64 + 1)]  # the prefix every key starts with
    kwargs: dict[str, Any] = {"Bucket": store.bucket, "Prefix": base}
    if after:
        kwargs["StartAfter"] = store.key_of(after)
    out: list[str] = []
    with _s3_errors(store):
        paginator = store.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(**kwargs, PaginationConfig={"PageSize": 1000}):
            for obj in page.get("Contents", ()):
                rest = obj["Key"][len(base) :]
                h = rest[:2] + rest[3:]
                if len(rest) == 65 and rest[2] == "/" and is_valid_hash(h):
                    out.append(h)
                    if len(out) == limit:
                        return out
    return out


# -- reading -------------------------------------------------------------------------------------


@router.head("/{hash}", status_code=200, responses={404: {"description": "No such object"}})
def head_object(hash: str, who: Who, state: State) -> Response:
    """The object's size in Content-Length (404 when the store lacks it)."""
    allow(who, "read")
    h = _object_hash(hash)
    allow_objects(who, state.store, lambda: state.objects, [h])
    size = state.objects.size_or_none(h)
    if size is None:
        return Response(status_code=404)
    return Response(
        status_code=200, headers={**_OBJECT_HEADERS, "Content-Length": str(size), "ETag": f'"{h}"'}
    )


@router.get(
    "/{hash}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The object's bytes"},
        206: {"content": {"application/octet-stream": {}}, "description": "A byte range"},
        404: {"model": ErrorOut, "description": "No such object"},
        416: {"model": ErrorOut, "description": "The range lies outside the object"},
    },
)
def get_object(hash: str, request: Request, who: Who, state: State) -> Response:
    """Stream an object's bytes (single byte ranges are supported)."""
    allow(who, "read")
    h = _object_hash(hash)
    allow_objects(who, state.store, lambda: state.objects, [h])
    store = state.objects
    if isinstance(store, LocalObjectStore):
        path = store.path_of(h)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise _not_found(h) from None
        metrics.count("object_bytes_downloaded", st.st_size)
        response = FileResponse(path, headers={**_OBJECT_HEADERS, "ETag": f'"{h}"'}, stat_result=st)
        response.chunk_size = CHUNK_SIZE  # the default 64 KiB costs a thread hop per chunk
        return response
    if _is_s3(store):
        return _get_s3(store, h, request.headers.get("range"))
    try:
        reader = store.open(h)
    except NotFound:
        raise _not_found(h) from None
    return StreamingResponse(_chunks(reader), headers=_OBJECT_HEADERS)


def _get_s3(store: Any, h: str, range_header: str | None) -> Response:
    params: dict[str, Any] = {"Bucket": store.bucket, "Key": store.key_of(h)}
    if range_header:
        params["Range"] = range_header
    try:
        with _s3_errors(store):
            got = store.client.get_object(**params)
    except _S3Missing:
        raise _not_found(h) from None
    except _S3BadRange:
        return error_response(
            416, "RANGE_NOT_SATISFIABLE", f"range {range_header!r} lies outside object {h}"
        )
    headers = {**_OBJECT_HEADERS, "ETag": f'"{h}"', "Accept-Ranges": "bytes"}
    headers["Content-Length"] = str(got["ContentLength"])
    status = 200
    if got.get("ContentRange"):
        headers["Content-Range"] = got["ContentRange"]
        status = 206
    body = got["Body"]
    return StreamingResponse(_s3_chunks(store, body), status_code=status, headers=headers)


def _s3_chunks(store: Any, body: Any) -> Any:
    # A sync generator: Starlette pulls it on a worker thread, so the blocking reads are fine.
    try:
        while chunk := body.read(CHUNK_SIZE):
            yield chunk
    finally:
        body.close()


def _chunks(reader: Any) -> Any:
    with reader:
        while chunk := reader.read(CHUNK_SIZE):
            yield chunk


# -- writing -------------------------------------------------------------------------------------


@router.put(
    "/{hash}",
    status_code=201,
    response_model=PutOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
    responses={
        200: {"model": PutOut, "description": "The object was already stored"},
        400: {
            "model": ErrorOut,
            "description": "The bytes do not hash to the name (HASH_MISMATCH)",
        },
        413: {"model": ErrorOut, "description": "Over the server's upload limit"},
    },
)
async def put_object(hash: str, request: Request, who: Who, state: State) -> Response:
    """Store the request body as object ``hash``; refused unless the bytes hash to it.

    The body streams to a temp file (never whole in memory) and becomes visible only once it is
    complete and verified. Sending an object that is already stored is harmless (200).
    """
    allow(who, "write")
    h = _object_hash(hash)
    limit = state.settings.max_upload_bytes
    declared = _content_length(request)
    if declared is not None and declared > limit:
        return _too_large(h, declared, limit)
    store = state.objects
    size = await run_in_threadpool(store.size_or_none, h)
    if size is not None:
        # Already stored: read the rest of the body without keeping it, so the connection stays
        # usable, and answer as if it had been stored now.
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    return _too_large(h, received, limit)
        except ClientDisconnect:
            return Response(status_code=400)
        return reply({"hash": h, "size": size, "created": False}, 200)
    upload = Upload(store, limit)
    try:
        try:
            received = await upload.receive(request)
        except ClientDisconnect:
            # Nobody is left to answer; the temp file goes in ``finally``.
            return Response(status_code=400)
        if received is None:
            return _too_large(h, upload.size, limit)
        actual = upload.hasher.hexdigest()
        if actual != h:
            raise HashMismatch(
                f"the uploaded bytes hash to {actual}, not to {h} named in the URL; "
                "nothing was stored",
                hint="Send the object under its BLAKE3 hash; if the file changed while it was "
                "being sent, send it again.",
            )
        if declared is not None and declared != upload.size:
            raise InvalidInput(f"the body has {upload.size} bytes, not the {declared} declared")
        await run_in_threadpool(upload.publish, h)
    finally:
        upload.discard()
    metrics.count("objects_uploaded")
    metrics.count("object_bytes_uploaded", upload.size)
    return reply({"hash": h, "size": upload.size, "created": True}, 201)


@router.delete(
    "/{hash}",
    status_code=204,
    responses={404: {"model": ErrorOut, "description": "No such object"}},
)
def delete_object(hash: str, who: Who, state: State) -> Response:
    """Remove an object from the store (admin only)."""
    allow(who, "admin")
    h = _object_hash(hash)
    try:
        state.objects.delete(h)
    except NotFound:
        raise _not_found(h) from None
    return Response(status_code=204)


# -- presigned URLs ------------------------------------------------------------------------------


@router.post(
    "/presign",
    response_model=PresignOut,
    responses={409: {"model": ErrorOut, "description": "This server does not presign"}},
)
def presign(body: PresignIn, who: Who, state: State) -> Response:
    """Presigned S3 URLs so the client moves the bytes itself (409 when this server has none).

    For ``PUT`` only the hashes the store lacks get a URL, so the reply is also the existence
    check. Objects over 5 GiB must go through the server (one S3 PUT holds at most 5 GiB).
    """
    allow(who, "write" if body.method == "PUT" else "read")
    hashes = sorted({_object_hash(h) for h in body.hashes})
    if body.method == "GET":
        allow_objects(who, state.store, lambda: state.objects, hashes)
    store = state.objects if state.settings.presign and state.settings.objects else None
    if store is None or not _is_s3(store):
        raise InvalidState(
            "this server does not hand out presigned URLs"
            + (" (its object store is not S3)" if store is not None else ""),
            hint="Clients send objects through the server instead; to move bytes directly, "
            "start the server with an s3:// object store and presigning on.",
        )
    if body.method == "PUT":
        hashes = sorted(store.missing(hashes))
    operation = "put_object" if body.method == "PUT" else "get_object"
    urls: dict[str, str] = {}
    headers: dict[str, dict[str, str]] = {}
    with _s3_errors(store):
        for h in hashes:
            params = {"Bucket": store.bucket, "Key": store.key_of(h)}
            urls[h] = store.client.generate_presigned_url(
                operation, Params=params, ExpiresIn=PRESIGN_EXPIRES
            )
            headers[h] = {}
    return reply({"urls": urls, "headers": headers, "expires_in": PRESIGN_EXPIRES})


# -- helpers -------------------------------------------------------------------------------------


def _object_hash(value: str) -> str:
    return check_hash(value)


def _not_found(h: str) -> NotFound:
    # The server's own message: the store's would name a folder or bucket on the server.
    return NotFound(
        f"object {h} is not on this server",
        hint="Upload it first (mltrail data push, or log the artifact again).",
    )


def _too_large(h: str, size: int, limit: int) -> Response:
    return error_response(
        413,
        "REQUEST_TOO_LARGE",
        f"object {h} is {size} bytes or more, over this server's upload limit of {limit} bytes",
        "Ask the server's admin to raise the limit (max_upload_bytes), or store the file "
        "elsewhere.",
    )


def _content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"Content-Length {raw[:40]!r} is not a number") from None
    if value < 0:
        raise InvalidInput(f"Content-Length {value} is negative")
    return value


def _is_s3(store: ObjectStore) -> bool:
    # By name: importing the S3 module (boto3) only to test for it would slow every start.
    return type(store).__name__ == "S3ObjectStore" and hasattr(store, "client")


class _S3Missing(Exception):
    """No such key in the bucket."""


class _S3BadRange(Exception):
    """The asked byte range lies outside the object."""


@contextmanager
def _s3_errors(store: Any) -> Iterator[None]:
    """Turn botocore errors into _S3Missing, _S3BadRange or StoreError (never a traceback)."""
    import botocore.exceptions

    try:
        yield
    except botocore.exceptions.ClientError as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchKey", "404", "NotFound"):
            raise _S3Missing() from None
        if status == 416 or code == "InvalidRange":
            raise _S3BadRange() from None
        raise StoreError(
            f"the server's object store {store.location} refused the request: {code or status}",
            hint="The server's admin should check the bucket and its credentials.",
        ) from None
    except botocore.exceptions.BotoCoreError as e:
        raise StoreError(
            f"the server's object store {store.location} failed: {e}",
            hint="Try again shortly; if it persists, the server's admin should check S3.",
        ) from None
