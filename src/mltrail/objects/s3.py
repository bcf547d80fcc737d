"""The object store in an S3 bucket (AWS or any S3-compatible server): ``prefix/ab/cdef…``.

Writes are all-or-nothing by construction: a single PUT, or the completion of a multipart upload,
is the only thing that makes an object visible under its key, so an interrupted upload leaves no
object behind. A killed process can leave the parts of an unfinished multipart upload, which S3
does not show as objects and cannot tie to a process: the next multipart upload of this store
aborts those under its prefix that are older than a day (``temp_files``; a bucket lifecycle rule
"AbortIncompleteMultipartUpload" does the same on the server side).
Every file is hashed locally before it is sent, so an object already on the server is never sent
again. Reads hash what arrives and raise :class:`~mltrail.errors.IntegrityError` on a mismatch.

Importing this module imports boto3; ``mltrail.objects`` imports it only when an ``s3://`` store
is opened, so the CLI starts fast without it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from mltrail.errors import (
    IntegrityError,
    InvalidInput,
    InvalidState,
    MltrailError,
    NotFound,
    StoreError,
)
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
    check_hash,
    default_workers,
    hash_bytes,
    hash_file,
    is_valid_hash,
    map_parallel,
)
from mltrail.objects.tempfiles import STALE_SECONDS, TempScan

#: Below this size a file goes up in one PUT of bytes already in memory (and hashed from exactly
#: those bytes); from it on, in parallel parts. 8 MiB is boto3's own default threshold.
DEFAULT_MULTIPART_THRESHOLD = 8 * 1024 * 1024
# S3 refuses parts smaller than 5 MiB (except the last one).
_MIN_PART_SIZE = 5 * 1024 * 1024
#: The user metadata key (``x-amz-meta-blake3``) that carries an object's hash.
HASH_METADATA_KEY = "blake3"
# missing(): a shard holding at least this many of the asked hashes is listed (one request per
# 1,000 keys) rather than probed with one HEAD per hash; a single hash is one HEAD either way.
_LIST_MIN_PER_SHARD = 2
# Keys per LIST request (S3's maximum); a module constant so tests can make pages small.
_LIST_PAGE_SIZE = 1000
# Error codes S3 and compatible servers use for "no such object"; HEAD answers carry no body, so
# botocore reports only the status code there.
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset({"403", "AccessDenied", "Forbidden", "AllAccessDisabled"})

# What an S3 error code means and what to check: (message, hint), formatted with key_id,
# action, arn, endpoint and bucket. Codes from the S3 API reference ("Error responses").
_CREDENTIALS = (
    "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile AWS_PROFILE names in "
    "~/.aws/credentials"
)
_REGION = "AWS_REGION / AWS_DEFAULT_REGION (or the profile's region)"
_S3_CODES: dict[str, tuple[str, str]] = {
    "InvalidAccessKeyId": (
        "the access key id {key_id} is not known to this S3 service",
        "Check AWS_ACCESS_KEY_ID (or aws_access_key_id in the section of ~/.aws/credentials "
        "that AWS_PROFILE names), and that the key belongs to the service at {endpoint} "
        "(AWS_ENDPOINT_URL or MLTRAIL_S3_ENDPOINT_URL pick another).",
    ),
    "SignatureDoesNotMatch": (
        "the secret access key does not match the key id {key_id}",
        "Check the secret: AWS_SECRET_ACCESS_KEY, or aws_secret_access_key in the profile's "
        "section of ~/.aws/credentials (a copy-paste often adds a space or drops a character).",
    ),
    "AccessDenied": (
        "access denied: the credentials (key id {key_id}) may not do {action} on {arn}",
        "Grant {action} on {arn} to the user or role of that key (bucket policy or IAM "
        f"policy), or use other credentials ({_CREDENTIALS}).",
    ),
    "AllAccessDisabled": (
        "all access to bucket {bucket!r} is disabled",
        "The bucket is locked by its owner or by the S3 service: ask its owner.",
    ),
    "AccountProblem": (
        "the AWS account of these credentials has a problem that stops S3 requests",
        "Check the account (billing, suspension) in the AWS console.",
    ),
    "ExpiredToken": (
        "the session token of the credentials (key id {key_id}) has expired",
        "Get fresh temporary credentials (e.g. `aws sso login`, or new AWS_SESSION_TOKEN, "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), then run the command again.",
    ),
    "InvalidToken": (
        "the session token of the credentials (key id {key_id}) is malformed or not valid",
        "Check AWS_SESSION_TOKEN (unset it for long-term keys, which need none).",
    ),
    "TokenRefreshRequired": (
        "the session token of the credentials (key id {key_id}) must be refreshed",
        "Get fresh temporary credentials (e.g. `aws sso login`), then run the command again.",
    ),
    "RequestTimeTooSkewed": (
        "this machine's clock differs from the S3 service's by more than 15 minutes",
        "Set the clock right (turn on time sync: `timedatectl set-ntp true` on Linux), then "
        "run the command again.",
    ),
    "RequestExpired": (
        "the request's signature expired before it arrived (a wrong clock?)",
        "Set the clock right (turn on time sync), then run the command again.",
    ),
    "SlowDown": (
        "the S3 service asks for fewer requests (throttling)",
        "Wait a little and run the command again (what arrived is kept); fewer parallel "
        "transfers (-j) put less load on the bucket.",
    ),
    "NoSuchBucket": (
        "bucket {bucket!r} does not exist",
        "Create the bucket, or fix the bucket name in the object store URL.",
    ),
    "InvalidBucketName": (
        "{bucket!r} is not a valid bucket name",
        "Fix the bucket name in the object store URL (s3://bucket/prefix).",
    ),
    "PermanentRedirect": (
        "bucket {bucket!r} is in another region than the one asked",
        f"Set {_REGION} to the bucket's region.",
    ),
    "AuthorizationHeaderMalformed": (
        "the request was signed for another region than bucket {bucket!r} is in",
        f"Set {_REGION} to the bucket's region.",
    ),
    "InvalidObjectState": (
        "the object is archived (Glacier or Deep Archive) and cannot be read as it is",
        "Restore it from the archive storage class first, or push the data again.",
    ),
    "InternalError": (
        "the S3 service had an internal error",
        "Run the command again; what arrived is kept.",
    ),
}
for _code in ("Throttling", "ThrottlingException", "RequestLimitExceeded", "ServiceUnavailable",
              "503"):  # fmt: skip
    _S3_CODES[_code] = _S3_CODES["SlowDown"]
# The IAM permission each S3 operation needs, for "may not do ..." messages.
_IAM_ACTIONS = {
    "HeadObject": "s3:GetObject",
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "ListParts": "s3:ListMultipartUploadParts",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListObjectsV2": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "DeleteObject": "s3:DeleteObject",
}


class S3ObjectStore(ObjectStore):
    """Objects in an S3 bucket under ``prefix``, laid out as ``prefix/ab/cdef…``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any | None = None,
        endpoint_url: str | None = None,
        max_workers: int = 8,
        multipart_threshold: int = DEFAULT_MULTIPART_THRESHOLD,
    ) -> None:
        if not bucket or "/" in bucket:
            raise InvalidInput(
                f"not a valid S3 bucket name: {bucket!r}",
                hint="Give the object store as s3://bucket/prefix.",
            )
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._key_base = f"{self.prefix}/" if self.prefix else ""
        self.max_workers = max(1, max_workers)
        self.multipart_threshold = max(_MIN_PART_SIZE, multipart_threshold)
        self._session: boto3.Session | None = None
        if client is None:
            # One session and one client per store: clients are thread-safe, sessions are not.
            self._session = boto3.Session()
            client = self._session.client(
                "s3",
                endpoint_url=endpoint_url or None,
                config=Config(
                    # Parallel transfers each hold a connection; the default pool of 10 would
                    # make them queue (and log warnings) with more workers than that.
                    max_pool_connections=max(10, self.max_workers * 2),
                    retries={"mode": "standard"},
                ),
            )
        self.client = client
        self.endpoint_url: str = client.meta.endpoint_url
        self._transfer = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            multipart_chunksize=self.multipart_threshold,
            max_concurrency=self.max_workers,
            # Plain threads: s3transfer's "use_threads=False" would serialize the parts.
            use_threads=True,
        )
        # Set once the bucket is known to exist: a HEAD 404 cannot tell a missing object from a
        # missing bucket, so the first one asks the bucket, and later ones need not.
        self._bucket_seen = False
        # Set once this store has aborted the stale multipart uploads under its prefix.
        self._swept = False

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.bucket!r}, {self.prefix!r}, endpoint={self.endpoint_url!r})"

    @property
    def location(self) -> str:
        """Return the store's ``s3://bucket/prefix`` URL."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key_of(self, hash: str) -> str:
        """Return the S3 key an object has (or would have) in this store."""
        check_hash(hash)
        return f"{self._key_base}{hash[:2]}/{hash[2:]}"

    # -- errors ----------------------------------------------------------------------------------

    def not_found(self, hash: str) -> NotFound:
        """Return the error for a missing object, naming its bucket and key."""
        return NotFound(
            f"object {hash} not found in {self.location} "
            f"(bucket {self.bucket!r}, key {self.key_of(hash)!r})",
            hint="Add the data again, or fetch it from the remote that has it.",
        )

    def corrupted(self, hash: str, actual: str) -> IntegrityError:
        """Return the error for an object whose content hashes to ``actual`` instead of ``hash``."""
        err = super().corrupted(hash, actual)
        err.hint = (
            f"Delete key {self.key_of(hash)!r} from bucket {self.bucket!r}, then push the data "
            "again from a copy that is intact."
        )
        return err

    def credential_source(self) -> str:
        """Return where boto3 found credentials ("env", "shared-credentials-file", …)."""
        session = self._session or boto3.Session()
        try:
            creds = session.get_credentials()
        except botocore.exceptions.BotoCoreError as e:  # e.g. a broken profile in ~/.aws/config
            return f"none usable ({e})"
        if creds is None:
            return "none found"
        return getattr(creds, "method", None) or "unknown"

    def _bucket_missing(self) -> StoreError:
        return StoreError(
            f"S3 bucket {self.bucket!r} does not exist (endpoint {self.endpoint_url})",
            hint="Create the bucket, or fix the bucket name in the object store URL.",
        )

    def _translate(
        self, e: BaseException, *, hash: str | None = None, key: str | None = None
    ) -> MltrailError:
        """Turn a botocore/boto3 error into mltrail's typed error naming bucket and key."""
        if isinstance(e, MltrailError):
            return e
        cause = _client_error_in(e)
        if cause is not None:
            code = str(cause.response.get("Error", {}).get("Code", ""))
            status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = cause.response.get("Error", {}).get("Message") or code
            if code == "NoSuchBucket":
                return self._bucket_missing()
            if hash is not None and (code in _NOT_FOUND_CODES or status == 404):
                # A 404 on HEAD may mean the whole bucket is gone; say which it is.
                self._check_bucket()
                return self.not_found(hash)
            where = f"bucket {self.bucket!r}" + (f", key {key!r}" if key else "")
            if code in ("403", "Forbidden") and status == 403:
                # A HEAD answer has no body to say why: ask again in a way that gets one.
                code, message = self._why_forbidden(key) or (code, message)
            return self._client_error(cause, code, status, message, where)
        if isinstance(e, botocore.exceptions.NoCredentialsError):
            return StoreError(
                f"no AWS credentials found for S3 bucket {self.bucket!r}",
                hint="Set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or "
                "configure ~/.aws/credentials.",
            )
        if isinstance(e, botocore.exceptions.ConnectionError):
            return StoreError(
                f"cannot reach the S3 endpoint {self.endpoint_url} (bucket {self.bucket!r}): {e}",
                hint="Check the endpoint URL (AWS_ENDPOINT_URL or MLTRAIL_S3_ENDPOINT_URL) "
                "and the network.",
            )
        if isinstance(e, botocore.exceptions.HTTPClientError):
            return StoreError(
                f"the connection to the S3 endpoint {self.endpoint_url} failed "
                f"(bucket {self.bucket!r}): {e}",
                hint="Check the network, then run the command again.",
            )
        return StoreError(
            f"S3 request on bucket {self.bucket!r} failed: {e}",
            hint=f"Check the bucket and the endpoint {self.endpoint_url}.",
        )

    def _client_error(
        self,
        cause: botocore.exceptions.ClientError,
        code: str,
        status: int | None,
        message: str,
        where: str,
    ) -> StoreError:
        """The StoreError for an S3 error answer: its code, what it means, what to check."""
        operation = getattr(cause, "operation_name", "") or "request"
        context = f"endpoint {self.endpoint_url}; credentials from: {self.credential_source()}"
        key_id = self._key_id()
        known = _S3_CODES.get(code)
        if known is None and (code in _DENIED_CODES or status == 403):
            known = _S3_CODES["AccessDenied"]
        if known is None and status == 503:
            known = _S3_CODES["SlowDown"]
        if known is None:
            return StoreError(
                f"S3 {operation} on {where} failed: {code or status}: {message} ({context})",
                hint=f"Check the bucket and the endpoint {self.endpoint_url}.",
            )
        what, hint = known
        action = _IAM_ACTIONS.get(operation, "s3:*")
        fields = {
            "key_id": key_id,
            "action": action,
            "arn": f"arn:aws:s3:::{self.bucket}"
            + (f"/{self._key_base}*" if action != "s3:ListBucket" else ""),
            "endpoint": self.endpoint_url,
            "bucket": self.bucket,
        }
        return StoreError(
            f"S3 {operation} on {where} failed with {code or status}: {what.format(**fields)} "
            f"({context})",
            hint=hint.format(**fields),
        )

    def _why_forbidden(self, key: str | None) -> tuple[str, str] | None:
        """Return the error code and message S3 gives with a body for a bodiless 403, if any."""
        try:
            if key is not None:
                self.client.get_object(Bucket=self.bucket, Key=key, Range="bytes=0-0")
            else:
                self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except botocore.exceptions.ClientError as e:
            error = e.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code and code not in ("403", "Forbidden"):
                return code, str(error.get("Message") or code)
        except botocore.exceptions.BotoCoreError:
            pass
        return None

    def _key_id(self) -> str:
        """The access key id in use, masked like ``aws configure list`` (``****ABCD``)."""
        session = self._session or boto3.Session()
        try:
            creds = session.get_credentials()
        except botocore.exceptions.BotoCoreError:
            return "unknown"
        access_key = getattr(creds, "access_key", None) if creds is not None else None
        if not access_key:
            return "none"
        return "****" + access_key[-4:]

    def errors(self, key: str | None = None) -> AbstractContextManager[None]:
        """A context turning boto errors on ``key`` (any key of the bucket) into mltrail's."""
        return self._errors(key=key)

    @contextmanager
    def _errors(self, *, hash: str | None = None, key: str | None = None) -> Iterator[None]:
        try:
            yield
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as e:
            raise self._translate(e, hash=hash, key=key) from e
        except S3UploadFailedError as e:
            raise self._translate(e, hash=hash, key=key) from e

    def _check_bucket(self) -> None:
        """Raise StoreError if the bucket does not exist (asked once per store)."""
        if self._bucket_seen:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except botocore.exceptions.ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = str(e.response.get("Error", {}).get("Code", ""))
            if status == 404 or code in ("404", "NoSuchBucket"):
                raise self._bucket_missing() from None
            raise self._translate(e) from e
        except botocore.exceptions.BotoCoreError as e:
            raise self._translate(e) from e
        self._bucket_seen = True

    # -- looking up ------------------------------------------------------------------------------

    def size_or_none(self, hash: str) -> int | None:
        """Return an object's size in bytes (one HEAD request), or None if it is absent."""
        key = self.key_of(hash)
        with self._errors(key=key):
            try:
                response = self.client.head_object(Bucket=self.bucket, Key=key)
            except botocore.exceptions.ClientError as e:
                status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                code = str(e.response.get("Error", {}).get("Code", ""))
                if status != 404 and code not in _NOT_FOUND_CODES:
                    raise
                self._check_bucket()
                return None
        self._bucket_seen = True
        return int(response["ContentLength"])

    def missing(self, hashes: Iterable[str]) -> set[str]:
        """Return the subset of ``hashes`` that are not in the store."""
        present = self._present_sizes({check_hash(h) for h in hashes})
        return {h for h in present if present[h] is None}

    def _present_sizes(self, hashes: set[str]) -> dict[str, int | None]:
        """Return ``{hash: size, or None if absent}``: listing dense shards, HEAD for the rest."""
        shards: dict[str, list[str]] = {}
        for h in hashes:
            shards.setdefault(h[:2], []).append(h)
        # A LIST page answers for up to 1,000 keys in one request, a HEAD for one: list the shards
        # where many hashes are asked, probe the others one by one, all on the same threads.
        jobs: list[tuple[str, list[str]]] = []
        for members in shards.values():
            if len(members) >= _LIST_MIN_PER_SHARD:
                jobs.append(("list", members))
            else:
                jobs.extend(("head", [h]) for h in members)

        def run(job: tuple[str, list[str]]) -> dict[str, int | None]:
            kind, members = job
            if kind == "head":
                return {members[0]: self.size_or_none(members[0])}
            return self._list_shard(members)

        result: dict[str, int | None] = {}
        for part in map_parallel(run, jobs, self.max_workers):
            result.update(part)
        return result

    def _list_shard(self, members: list[str]) -> dict[str, int | None]:
        """Find the asked hashes of one shard by listing it from the smallest asked hash on."""
        members = sorted(members)
        shard = members[0][:2]
        shard_prefix = f"{self._key_base}{shard}/"
        sizes: dict[str, int | None] = dict.fromkeys(members)
        # S3 lists keys in byte order: start just before the smallest asked key (its name less
        # the last character sorts before it) and stop once past the largest.
        start_after = self.key_of(members[0])[:-1]
        paginator = self.client.get_paginator("list_objects_v2")
        pages = 0
        with self._errors():
            for page in paginator.paginate(
                Bucket=self.bucket,
                Prefix=shard_prefix,
                StartAfter=start_after,
                PaginationConfig={"PageSize": _LIST_PAGE_SIZE},
            ):
                self._bucket_seen = True
                pages += 1
                contents = page.get("Contents", ())
                for obj in contents:
                    h = shard + obj["Key"][len(shard_prefix) :]
                    if h in sizes:
                        sizes[h] = int(obj["Size"])
                if not page.get("IsTruncated") or not contents:
                    break
                # Everything asked up to the last listed key is settled.
                last = shard + contents[-1]["Key"][len(shard_prefix) :]
                rest = [h for h in members if h > last]
                if not rest:
                    break
                if pages >= len(rest):
                    # A shard this large next to the hashes still open: HEAD them instead of
                    # listing on, so a huge store costs at most about twice the HEADs.
                    for h in rest:
                        sizes[h] = self.size_or_none(h)
                    break
        return sizes

    def iter_hashes(self) -> Iterator[str]:
        """Yield the hash of every object in the store (paginated listing), skipping other keys."""
        base = self._key_base
        paginator = self.client.get_paginator("list_objects_v2")
        with self._errors():
            for page in paginator.paginate(
                Bucket=self.bucket, Prefix=base, PaginationConfig={"PageSize": _LIST_PAGE_SIZE}
            ):
                for obj in page.get("Contents", ()):
                    rest = obj["Key"][len(base) :]
                    if len(rest) == 65 and rest[2] == "/":
                        h = rest[:2] + rest[3:]
                        if is_valid_hash(h):
                            yield h

    def temp_files(self, *, remove: bool = False, older_than: float = STALE_SECONDS) -> TempScan:
        """Count unfinished multipart uploads under the prefix older than ``older_than`` seconds.

        With ``remove`` they are aborted, which frees their parts. Younger ones may be a live
        upload of another process, so they are only counted as live.
        """
        result = TempScan()
        cutoff = time.time() - older_than
        paginator = self.client.get_paginator("list_multipart_uploads")
        with self._errors():
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key_base):
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"].timestamp() >= cutoff:
                        result.live += 1
                        continue
                    key, upload_id = upload["Key"], upload["UploadId"]
                    parts = self.client.get_paginator("list_parts").paginate(
                        Bucket=self.bucket, Key=key, UploadId=upload_id
                    )
                    result.stale += 1
                    result.stale_bytes += sum(
                        int(p["Size"]) for page in parts for p in page.get("Parts", ())
                    )
                    if remove:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=key, UploadId=upload_id
                        )
        return result

    def _sweep_uploads(self) -> None:
        if self._swept:
            return
        self._swept = True
        # Opportunistic: credentials that may upload need not be allowed to list uploads.
        with contextlib.suppress(MltrailError):
            self.temp_files(remove=True)

    # -- writing ---------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> ObjectInfo:
        """Store ``data`` (no upload if already present) and return its info."""
        h = hash_bytes(data)
        info = ObjectInfo(h, len(data))
        if self.size_or_none(h) is None:
            self._put_object(h, bytes(data))
        return info

    def _put_object(self, hash: str, data: bytes) -> None:
        key = self.key_of(hash)
        with self._errors(key=key):
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, Metadata={HASH_METADATA_KEY: hash}
            )

    def put_file(
        self, path: str | os.PathLike[str], *, expected_hash: str | None = None
    ) -> ObjectInfo:
        """Store a file's content (no upload if present); ``expected_hash`` skips hashing it."""
        path = os.fspath(path)
        st = check_source(path)
        h = source_hash(path, expected_hash)
        size = self.size_or_none(h)
        if size is not None:
            return ObjectInfo(h, size)
        return self._upload(path, st, h, hashed=expected_hash is None)

    def put_files(
        self,
        files: Iterable[tuple[str | os.PathLike[str], str | None]],
        progress: Callable[[int], None] | None = None,
    ) -> list[ObjectInfo]:
        """Store many ``(path, expected hash or None)`` files, uploading in parallel."""
        items = [(os.fspath(p), h) for p, h in files]
        stats = [check_source(p) for p, _ in items]
        hashes = map_parallel(lambda item: source_hash(*item), items, default_workers())
        # One batched existence check (listing dense shards) instead of a HEAD per file.
        present = self._present_sizes(set(hashes))
        infos: list[ObjectInfo | None] = [None] * len(items)
        todo: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            size = present[h]
            if size is not None:
                infos[i] = ObjectInfo(h, size)
                if progress is not None:
                    progress(size)
            else:
                # The same content twice in one call goes up once.
                todo.setdefault(h, []).append(i)

        def upload(h: str) -> ObjectInfo:
            i = todo[h][0]
            return self._upload(items[i][0], stats[i], h, hashed=items[i][1] is None)

        def uploaded(h: str, info: ObjectInfo) -> None:
            for i in todo[h]:
                infos[i] = info
                if progress is not None:
                    progress(info.size)

        map_parallel(upload, list(todo), self.max_workers, uploaded)
        return infos  # type: ignore[return-value]

    def _upload(self, path: str, st: os.stat_result, h: str, *, hashed: bool) -> ObjectInfo:
        """Upload ``path`` as object ``h``; raise InvalidState if its bytes are not ``h``."""
        if st.st_size < self.multipart_threshold:
            # Small files: send the very bytes that were hashed, so a concurrent edit cannot
            # put content under the wrong name.
            with reading_source(path), open(path, "rb") as f:
                data = f.read()
            actual = hash_bytes(data)
            if actual != h:
                raise _changed(path, h, actual)
            self._put_object(h, data)
            return ObjectInfo(h, len(data))
        if not hashed:
            actual = source_hash(path)
            if actual != h:
                raise _changed(path, h, actual)
        self._sweep_uploads()
        key = self.key_of(h)
        with self._errors(key=key):
            self.client.upload_file(
                path,
                self.bucket,
                key,
                ExtraArgs={"Metadata": {HASH_METADATA_KEY: h}},
                Config=self._transfer,
            )
        # Parts are read from the file in parallel, so their bytes cannot be hashed on the way;
        # a file that changed since it was hashed shows in its size, mtime or inode instead.
        after = check_source(path)
        if (after.st_size, after.st_mtime_ns, after.st_ino) != (
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
        ):
            # Remove what went up only if it is wrong: another writer may have stored the right
            # bytes under this key meanwhile, and that object must stay.
            if not self.verify(h):
                with self._errors(key=key):
                    self.client.delete_object(Bucket=self.bucket, Key=key)
            raise InvalidState(
                f"{path} changed while it was being uploaded to {self.location}; "
                "the upload was not kept",
                hint="Run the command again once nothing is writing to that file.",
            )
        return ObjectInfo(h, st.st_size)

    # -- reading ---------------------------------------------------------------------------------

    def _get(self, hash: str) -> dict[str, Any]:
        key = self.key_of(hash)
        with self._errors(hash=hash, key=key):
            response: dict[str, Any] = self.client.get_object(Bucket=self.bucket, Key=key)
        self._bucket_seen = True
        return response

    def open(self, hash: str) -> BinaryIO:
        """Open an object for reading; reading to EOF raises IntegrityError if it is damaged."""
        body = self._get(hash)["Body"]
        return verifying_reader(
            _TranslatingBody(body, self, self.key_of(hash)),  # type: ignore[arg-type]
            hash,
            lambda actual: self.corrupted(hash, actual),
        )

    def read_bytes(self, hash: str) -> bytes:
        """Return an object's content, verified against its hash."""
        body = self._get(hash)["Body"]
        with self._errors(key=self.key_of(hash)):
            try:
                data: bytes = body.read()
            finally:
                body.close()
        return self.verified(hash, data)

    def get_file(
        self, hash: str, dest: str | os.PathLike[str], *, executable: bool = False
    ) -> None:
        """Download an object to ``dest`` atomically (temp file beside it, verified, renamed)."""
        dest = Path(dest)
        key = self.key_of(hash)
        response = self._get(hash)
        body = response["Body"]
        if int(response["ContentLength"]) < self.multipart_threshold:
            # Small objects: verify in memory, so a damaged one never reaches the disk.
            with self._errors(key=key):
                try:
                    data = body.read()
                finally:
                    body.close()
            self.verified(hash, data)
            with atomic_output(dest, executable=executable) as out:
                out.write(data)
            return
        # Large objects: ranged GETs in parallel into the temp file, then hash the copy, which
        # checks the bytes the user will get. atomic_output removes the temp file on any error.
        body.close()
        with atomic_output(dest, executable=executable) as out:
            with self._errors(hash=hash, key=key):
                self.client.download_fileobj(self.bucket, key, out, Config=self._transfer)
            out.flush()
            actual = hash_file(out.name)
            if actual != hash:
                raise self.corrupted(hash, actual)

    # -- deleting --------------------------------------------------------------------------------

    def delete(self, hash: str) -> None:
        """Remove an object from the store; NotFound if it is not there."""
        # S3 deletes succeed for absent keys; HEAD first to report NotFound like the local store.
        if self.size_or_none(hash) is None:
            raise self.not_found(hash)
        key = self.key_of(hash)
        with self._errors(key=key):
            self.client.delete_object(Bucket=self.bucket, Key=key)


class _TranslatingBody:
    """A response body whose network errors come out as mltrail's StoreError."""

    def __init__(self, body: Any, store: S3ObjectStore, key: str) -> None:
        self._body = body
        self._store = store
        self._key = key

    def readinto(self, buffer: memoryview) -> int:
        """Read into ``buffer``; a dropped connection becomes StoreError."""
        # botocore turns a connection dropped mid-body into its own errors; _errors maps them.
        with self._store._errors(key=self._key):
            n: int = self._body.readinto(buffer)
        return n

    def close(self) -> None:
        """Close the underlying body, releasing its connection."""
        self._body.close()


def _client_error_in(e: BaseException) -> botocore.exceptions.ClientError | None:
    """Return the ClientError behind ``e`` (boto3 transfers wrap it), if any."""
    seen: set[int] = set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        if isinstance(current, botocore.exceptions.ClientError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _changed(path: str, expected: str, actual: str) -> InvalidState:
    return InvalidState(
        f"{path} changed while it was being stored (expected hash {expected}, "
        f"its content hashes to {actual}); nothing was stored for it",
        hint="Run the command again once nothing is writing to that file.",
    )
