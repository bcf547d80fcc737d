"""The content-addressed object store: blobs and trees named by their BLAKE3 hash.

``open_object_store`` picks the backend from a location; everything above this package talks to
the :class:`ObjectStore` interface only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from mltrail.errors import InvalidInput
from mltrail.objects.base import ObjectInfo, ObjectStore
from mltrail.objects.hashing import (
    HASH_HEX_LEN,
    check_hash,
    hash_bytes,
    hash_file,
    hash_files,
    is_valid_hash,
)
from mltrail.objects.local import LocalObjectStore
from mltrail.objects.tree import (
    Tree,
    TreeEntry,
    checkout_tree,
    put_tree,
    read_tree,
    scan_tree,
    store_tree,
)

if TYPE_CHECKING:
    from mltrail.objects.http import HttpObjectStore
    from mltrail.objects.s3 import S3ObjectStore

__all__ = [
    "HASH_HEX_LEN",
    "HttpObjectStore",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "S3ObjectStore",
    "Tree",
    "TreeEntry",
    "check_hash",
    "checkout_tree",
    "hash_bytes",
    "hash_file",
    "hash_files",
    "is_valid_hash",
    "open_object_store",
    "put_tree",
    "read_tree",
    "scan_tree",
    "store_tree",
]

#: Environment variables naming an S3-compatible endpoint (MinIO, Ceph, …), first one set wins.
S3_ENDPOINT_ENV = ("MLTRAIL_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")


def __getattr__(name: str) -> Any:
    # S3ObjectStore imports boto3 (~0.3 s); load it only when someone asks for it.
    if name == "S3ObjectStore":
        return _s3_module().S3ObjectStore
    if name == "HttpObjectStore":  # httpx is not needed by embedded use either
        from mltrail.objects.http import HttpObjectStore

        return HttpObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _s3_module() -> Any:
    try:
        from mltrail.objects import s3
    except ImportError as e:
        if e.name and e.name.split(".")[0] in ("boto3", "botocore", "s3transfer"):
            raise InvalidInput(
                "S3 object storage needs boto3, which is not installed",
                hint="pip install 'mltrail[s3]'",
            ) from None
        raise
    return s3


def open_s3_store(url: str, endpoint_url: str | None = None) -> S3ObjectStore:
    """Open ``s3://bucket/prefix``; the endpoint defaults to the variables in S3_ENDPOINT_ENV."""
    parts = urlsplit(url)
    bucket = parts.netloc
    if not bucket:
        raise InvalidInput(
            f"S3 URL {url!r} names no bucket", hint="Write it as s3://bucket or s3://bucket/prefix."
        )
    endpoint = endpoint_url or next(
        (os.environ[n] for n in S3_ENDPOINT_ENV if os.environ.get(n)), None
    )
    store: S3ObjectStore = _s3_module().S3ObjectStore(
        bucket, unquote(parts.path).strip("/"), endpoint_url=endpoint
    )
    return store


def open_object_store(location: str | os.PathLike[str]) -> ObjectStore:
    """Open the object store at a local path, ``file://`` URI, ``s3://`` URL or server URL."""
    if not isinstance(location, str):
        return LocalObjectStore(Path(location))
    if not location.strip():
        raise InvalidInput("the object store location is empty", hint="Give a folder or a URL.")
    if "://" not in location:
        return LocalObjectStore(Path(location))
    url = urlsplit(location)
    scheme = url.scheme.lower()
    if scheme == "file":
        if url.netloc not in ("", "localhost"):
            raise InvalidInput(
                f"file URI {location!r} names host {url.netloc!r}; only local files are supported",
                hint="Use file:///absolute/path or a plain path.",
            )
        path = unquote(url.path)
        if os.name == "nt" and path[:1] == "/" and path[2:3] == ":":
            path = path[1:]  # file:///C:/data -> C:/data
        return LocalObjectStore(Path(path))
    if scheme == "s3":
        return open_s3_store(location)
    if scheme in ("http", "https"):
        from mltrail.objects.http import HttpObjectStore

        return HttpObjectStore(location)
    raise InvalidInput(
        f"unknown object store location {location!r}",
        hint="Give a local folder, a file:// URI, an s3:// URL or an mltrail server's "
        "http(s):// URL.",
    )
