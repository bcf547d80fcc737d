"""The content-addressed object store: blobs and trees named by their BLAKE3 hash.

``open_object_store`` picks the backend from a location; everything above this package talks to
the :class:`ObjectStore` interface only.
"""

from __future__ import annotations

import os
from pathlib import Path
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

__all__ = [
    "HASH_HEX_LEN",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
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

# Backends the design promises but that later issues add; named so the error can say so.
_PLANNED = {"s3": "S3", "http": "HTTP", "https": "HTTP"}


def open_object_store(location: str | os.PathLike[str]) -> ObjectStore:
    """Open the object store at a local path or ``file://`` URI."""
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
    if scheme in _PLANNED:
        raise InvalidInput(
            f"{_PLANNED[scheme]} object storage ({location}) is not available in this version "
            "of mltrail yet",
            hint="Use a local folder for objects for now.",
        )
    raise InvalidInput(
        f"unknown object store location {location!r}",
        hint="Give a local folder, a file:// URI or (later) an s3:// or http(s):// URL.",
    )
