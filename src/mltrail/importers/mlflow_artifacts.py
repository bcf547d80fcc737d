"""The files under an MLflow artifact URI, wherever MLflow put them, for an import to store.

MLflow records each run's (and logged model's) artifact location as a URI: a local path or
``file:`` URI, ``s3://bucket/key``, or ``mlflow-artifacts:/…`` when its server proxies the
artifacts (they are then under the server's ``--artifacts-destination``, given to the import as
``--artifacts``, or read through the server itself when importing from it over HTTP).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mltrail.errors import MltrailError

if TYPE_CHECKING:
    from mltrail.objects.base import ObjectInfo, ObjectStore

#: The variable MLflow's own S3 client reads its endpoint from (MinIO and the like).
MLFLOW_S3_ENDPOINT_ENV = "MLFLOW_S3_ENDPOINT_URL"


class Unreadable(Exception):
    """An artifact location that exists in the source but cannot be read from here."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass
class ArtifactFile:
    """One file under an artifact location: its path there, and how to store its bytes."""

    path: str
    executable: bool
    put: Callable[[ObjectStore], ObjectInfo]


class ArtifactReader:
    """Resolves MLflow artifact URIs to the files under them."""

    def __init__(self, artifacts_root: str | None = None, server: Any = None) -> None:
        self.artifacts_root = artifacts_root
        # The source's REST client when importing over HTTP: it serves mlflow-artifacts: URIs.
        self.server = server
        self._s3: dict[str, Any] = {}

    def files(self, uri: str) -> list[ArtifactFile]:
        """The files under ``uri`` (none when MLflow never made the folder); Unreadable when
        the location cannot be read from here."""
        if not uri:
            return []
        if uri.startswith("mlflow-artifacts:"):
            rest = unquote(urlparse(uri).path).strip("/")
            if self.artifacts_root is not None:
                root = self.artifacts_root
                if root.startswith("s3://"):
                    return self._s3_files(f"{root.rstrip('/')}/{rest}")
                return _local_files(Path(root) / rest)
            if self.server is not None:
                return list(self.server.artifact_files(rest))
            raise Unreadable(
                f"{uri} is on an MLflow server: pass --artifacts with its "
                "--artifacts-destination (a folder or s3:// URI), or import from the server "
                "(http://host:port)"
            )
        if uri.startswith("s3://"):
            return self._s3_files(uri)
        if uri.startswith("file:"):
            return _local_files(Path(unquote(urlparse(uri).path)))
        if "://" in uri or uri.startswith(("gs:", "wasbs:", "dbfs:", "hdfs:", "models:")):
            raise Unreadable(f"{uri} is not a local folder or an S3 location")
        return _local_files(Path(uri))

    def _s3_files(self, uri: str) -> list[ArtifactFile]:
        from mltrail.objects import S3_ENDPOINT_ENV, open_s3_store

        parsed = urlparse(uri)
        bucket, prefix = parsed.netloc, unquote(parsed.path).strip("/")
        store = self._s3.get(bucket)
        if store is None:
            endpoint = next(
                (os.environ[n] for n in (*S3_ENDPOINT_ENV, MLFLOW_S3_ENDPOINT_ENV)
                 if os.environ.get(n)),
                None,
            )  # fmt: skip
            store = self._s3[bucket] = open_s3_store(f"s3://{bucket}", endpoint)
        base = f"{prefix}/" if prefix else ""
        keys = []
        try:
            with store.errors(base):
                pages = store.client.get_paginator("list_objects_v2")
                for page in pages.paginate(Bucket=bucket, Prefix=base):
                    keys += [o["Key"] for o in page.get("Contents", ())]
        except MltrailError as e:
            raise Unreadable(f"{uri}: {e.message}") from None

        def fetcher(key: str) -> Callable[[Path], None]:
            def fetch(path: Path) -> None:
                with store.errors(key):
                    store.client.download_file(bucket, key, str(path))

            return fetch

        return files_under(
            (key[len(base) :], fetcher(key)) for key in sorted(keys) if not key.endswith("/")
        )


def _local_files(folder: Path) -> list[ArtifactFile]:
    if not folder.exists():
        # MLflow makes a run's folder on its first artifact only: none is no artifact.
        return []
    if not folder.is_dir():
        raise Unreadable(f"{folder} is not a folder")

    def put(path: Path) -> Callable[[ObjectStore], ObjectInfo]:
        return lambda objects: objects.put_file(path)

    return [
        ArtifactFile(
            path.relative_to(folder).as_posix(), bool(os.stat(path).st_mode & 0o111), put(path)
        )
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    ]


def files_under(listing: Iterable[tuple[str, Callable[[Path], None]]]) -> list[ArtifactFile]:
    """The ArtifactFiles of ``(path, fetch)`` pairs a remote location lists: each is stored
    through a temporary file ``fetch`` downloads into (memory stays flat), removed afterwards."""

    def put(fetch: Callable[[Path], None]) -> Callable[[ObjectStore], ObjectInfo]:
        def store(objects: ObjectStore) -> ObjectInfo:
            with tempfile.TemporaryDirectory(prefix="mltrail-import-") as tmp:
                path = Path(tmp) / "file"
                fetch(path)
                return objects.put_file(path)

        return store

    return [ArtifactFile(path, False, put(fetch)) for path, fetch in listing]
