"""The S3 object store, against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("boto3")
pytest.importorskip("moto")

import boto3
import botocore.exceptions
from botocore.awsrequest import AWSResponse
from botocore.config import Config

import mltrail
from mltrail.errors import (
    IntegrityError,
    InvalidInput,
    InvalidState,
    NotFound,
    StoreError,
)
from mltrail.objects import ObjectInfo, hash_bytes, open_object_store
from mltrail.objects import s3 as s3_module
from mltrail.objects.s3 import HASH_METADATA_KEY, S3ObjectStore

# The moto server and bucket fixtures: s3_endpoint, aws_env, s3_client, bucket.
pytest_plugins = ["tests.s3server"]

MiB = 1024 * 1024
PREFIX = "team/objects"
SRC = str(Path(mltrail.__file__).resolve().parent.parent)


@pytest.fixture
def store(s3_endpoint: str, bucket: str) -> S3ObjectStore:
    """An S3 store under a prefix in the test's own bucket."""
    return S3ObjectStore(bucket, PREFIX, endpoint_url=s3_endpoint)


def count_calls(store: S3ObjectStore) -> Counter[str]:
    """Count the S3 operations the store's client makes from now on, by name."""
    calls: Counter[str] = Counter()

    def hook(event_name: str, **kwargs: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    store.client.meta.events.register("before-call.s3", hook)
    return calls


def refuse(store: S3ObjectStore, operation: str, code: str = "AccessDenied") -> None:
    """Make the store's client get a 403 for ``operation``, as a server denying access would."""

    def hook(**kwargs: Any) -> tuple[AWSResponse, dict[str, Any]]:
        http = AWSResponse("http://127.0.0.1/denied", 403, {}, None)
        parsed = {
            "Error": {"Code": code, "Message": "Access Denied"},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return http, parsed

    store.client.meta.events.register(f"before-call.s3.{operation}", hook)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def same_shard(n: int) -> list[bytes]:
    """Return ``n`` distinct contents whose hashes all fall in one shard (computed locally)."""
    by_shard: dict[str, list[bytes]] = {}
    i = 0
    while True:
        data = f"blob {i}".encode()
        found = by_shard.setdefault(hash_bytes(data)[:2], [])
        found.append(data)
        if len(found) == n:
            return found
        i += 1


def one_per_shard(n: int) -> list[bytes]:
    """Return ``n`` contents whose hashes all fall in different shards."""
    seen: dict[str, bytes] = {}
    i = 0
    while len(seen) < n:
        data = f"blob {i}".encode()
        seen.setdefault(hash_bytes(data)[:2], data)
        i += 1
    return list(seen.values())


def no_temps(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".mltrail-tmp")]


# -- round trip ------------------------------------------------------------------------------------


def test_round_trip_bytes_and_files(
    store: S3ObjectStore, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    data = b"hello s3\n" * 1000
    info = store.put_bytes(data)
    h = hash_bytes(data)
    assert info == ObjectInfo(h, len(data))
    assert store.exists(h) and store.size(h) == len(data)
    assert store.read_bytes(h) == data
    with store.open(h) as f:
        assert f.read(5) == b"hello"
        assert f.read() == data[5:]
    store.get_file(h, tmp_path / "out" / "copy.txt")
    assert (tmp_path / "out" / "copy.txt").read_bytes() == data
    assert store.verify(h)

    # Layout: prefix/ab/cdef…, the hash in the object's metadata.
    head = s3_client.head_object(Bucket=bucket, Key=f"{PREFIX}/{h[:2]}/{h[2:]}")
    assert head["Metadata"] == {HASH_METADATA_KEY: h}
    assert store.key_of(h) == f"{PREFIX}/{h[:2]}/{h[2:]}"
    assert store.location == f"s3://{bucket}/{PREFIX}"

    src = write(tmp_path / "src.bin", os.urandom(3000))
    finfo = store.put_file(src)
    assert finfo == ObjectInfo(hash_bytes(src.read_bytes()), 3000)
    assert sorted(store.iter_hashes()) == sorted([h, finfo.hash])

    # Another store on the same bucket and prefix sees the same objects.
    other = S3ObjectStore(bucket, f"/{PREFIX}/", client=s3_client)
    assert other.read_bytes(finfo.hash) == src.read_bytes()


def test_empty_object(store: S3ObjectStore, tmp_path: Path) -> None:
    info = store.put_file(write(tmp_path / "empty", b""))
    assert info == ObjectInfo(hash_bytes(b""), 0)
    assert store.put_bytes(b"") == info
    assert store.read_bytes(info.hash) == b""
    assert store.size(info.hash) == 0
    store.get_file(info.hash, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == b""
    with store.open(info.hash) as f:
        assert f.read() == b""


def test_no_prefix(s3_endpoint: str, bucket: str, s3_client: Any) -> None:
    store = S3ObjectStore(bucket, endpoint_url=s3_endpoint)
    h = store.put_bytes(b"x").hash
    s3_client.head_object(Bucket=bucket, Key=f"{h[:2]}/{h[2:]}")
    assert list(store.iter_hashes()) == [h]
    assert store.location == f"s3://{bucket}"


# -- dedup and parallel puts -----------------------------------------------------------------------


def test_second_put_uploads_nothing(
    store: S3ObjectStore, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    src = write(tmp_path / "f", os.urandom(10_000))
    h = store.put_file(src).hash
    before = s3_client.head_object(Bucket=bucket, Key=store.key_of(h))
    calls = count_calls(store)
    assert store.put_file(src).hash == h
    assert store.put_file(src, expected_hash=h).hash == h
    assert store.put_bytes(src.read_bytes()).hash == h
    assert calls["PutObject"] == 0 and calls["HeadObject"] == 3
    after = s3_client.head_object(Bucket=bucket, Key=store.key_of(h))
    assert (after["ETag"], after["LastModified"]) == (before["ETag"], before["LastModified"])


def test_put_files_parallel_with_progress(store: S3ObjectStore, tmp_path: Path) -> None:
    files = [write(tmp_path / f"f{i}", os.urandom(i * 37)) for i in range(40)]
    dup = write(tmp_path / "dup", files[5].read_bytes())
    store.put_file(files[0])  # already there: reported, not sent
    sizes: list[int] = []
    calls = count_calls(store)
    items: list[tuple[str | os.PathLike[str], str | None]] = [(p, None) for p in files]
    items.append((dup, hash_bytes(dup.read_bytes())))
    infos = store.put_files(items, progress=sizes.append)
    assert [i.hash for i in infos] == [hash_bytes(p.read_bytes()) for p in [*files, dup]]
    assert [i.size for i in infos] == [p.stat().st_size for p in [*files, dup]]
    assert sorted(sizes) == sorted(i.size for i in infos)
    # 39 new distinct objects; the one already present and the duplicate are not sent again.
    assert calls["PutObject"] == 39
    assert set(store.iter_hashes()) == {i.hash for i in infos}
    assert store.put_files([]) == []


def test_multipart_upload_and_ranged_download(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    store = S3ObjectStore(bucket, PREFIX, endpoint_url=s3_endpoint, multipart_threshold=5 * MiB)
    data = os.urandom(20 * MiB)
    src = write(tmp_path / "big", data)
    calls = count_calls(store)
    info = store.put_file(src)
    assert info == ObjectInfo(hash_bytes(data), len(data))
    assert calls["CreateMultipartUpload"] == 1 and calls["UploadPart"] == 4
    assert calls["CompleteMultipartUpload"] == 1 and calls["PutObject"] == 0
    assert store.size(info.hash) == len(data)
    store.get_file(info.hash, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == data
    assert store.read_bytes(info.hash) == data
    assert store.verify(info.hash)
    calls.clear()
    assert store.put_file(src, expected_hash=info.hash) == info
    assert calls["CreateMultipartUpload"] == 0


def test_put_file_with_wrong_expected_hash_stores_nothing(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    store = S3ObjectStore(bucket, endpoint_url=s3_endpoint, multipart_threshold=5 * MiB)
    wrong = hash_bytes(b"something else")
    small = write(tmp_path / "small", b"actual content")
    big = write(tmp_path / "big", os.urandom(6 * MiB))
    for path in (small, big):
        with pytest.raises(InvalidState, match="changed while it was being stored"):
            store.put_file(path, expected_hash=wrong)
    with pytest.raises(InvalidState):
        store.put_files([(small, wrong)])
    assert list(store.iter_hashes()) == []


def test_put_file_refuses_folders_and_missing_files(store: S3ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="folder"):
        store.put_file(tmp_path)
    with pytest.raises(InvalidInput, match="no such file"):
        store.put_file(tmp_path / "nope")


# -- missing, listing, deleting --------------------------------------------------------------------


def test_missing_many_lists_shards(store: S3ObjectStore, tmp_path: Path) -> None:
    files = [write(tmp_path / f"f{i}", f"object {i}".encode()) for i in range(150)]
    present = [i.hash for i in store.put_files((f, None) for f in files)]
    absent = [hash_bytes(f"absent {i}".encode()) for i in range(850)]
    calls = count_calls(store)
    assert store.missing([*present, *absent, *absent[:10]]) == set(absent)
    # 1,000 hashes over 256 shards: most shards are listed, far fewer requests than 1,000 HEADs.
    assert calls["ListObjectsV2"] > 0
    assert calls["ListObjectsV2"] + calls["HeadObject"] < 500


def test_missing_few_uses_head(store: S3ObjectStore) -> None:
    data = one_per_shard(4)
    present = [store.put_bytes(d).hash for d in data[:3]]
    absent = [hash_bytes(data[3])]
    calls = count_calls(store)
    assert store.missing([*present, *absent]) == set(absent)
    assert calls["HeadObject"] == 4 and calls["ListObjectsV2"] == 0
    assert store.missing([]) == set()


def test_missing_dense_shard_listing_is_exact(store: S3ObjectStore) -> None:
    # Many hashes in one shard: present, absent, and keys around them that were not asked.
    data = same_shard(30)
    in_shard = sorted(store.put_bytes(d).hash for d in data[:20])
    asked_present = in_shard[1:-1:2]
    absent = sorted(hash_bytes(d) for d in data[20:])
    calls = count_calls(store)
    assert store.missing([*asked_present, *absent]) == set(absent)
    assert calls["HeadObject"] == 0 and calls["ListObjectsV2"] == 1


def test_missing_falls_back_to_head_in_a_large_shard(
    store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_shard = sorted(store.put_bytes(d).hash for d in same_shard(20))
    shard = in_shard[0][:2]
    asked = [in_shard[0], in_shard[-1], shard + "f" * 62]
    monkeypatch.setattr(s3_module, "_LIST_PAGE_SIZE", 2)  # a shard of many pages
    calls = count_calls(store)
    assert store.missing(asked) == {shard + "f" * 62}
    # Listing the whole shard would take 10 pages; after as many pages as hashes still open,
    # those are cheaper to HEAD.
    assert calls["ListObjectsV2"] == 2 and calls["HeadObject"] == 2


def test_iter_hashes_skips_foreign_keys(store: S3ObjectStore, s3_client: Any, bucket: str) -> None:
    h = store.put_bytes(b"real").hash
    junk = [
        f"{PREFIX}/README",
        f"{PREFIX}/{h[:2]}/short",
        f"{PREFIX}/zz/{h[2:]}",
        f"{PREFIX}/{h[:2]}/{h[2:].upper()}",
        f"{PREFIX}/{h[:2]}/{h[2:]}/nested",
        f"{PREFIX}/{h}",
        f"{PREFIX}x/{h[:2]}/{h[2:]}",
        f"other/{h[:2]}/{h[2:]}",
    ]
    for key in junk:
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"junk")
    assert list(store.iter_hashes()) == [h]


def test_iter_hashes_paginates(store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = {store.put_bytes(str(i).encode()).hash for i in range(7)}
    monkeypatch.setattr(s3_module, "_LIST_PAGE_SIZE", 3)
    calls = count_calls(store)
    assert set(store.iter_hashes()) == hashes
    assert calls["ListObjectsV2"] == 3


def test_delete(store: S3ObjectStore) -> None:
    h = store.put_bytes(b"gone soon").hash
    store.delete(h)
    assert not store.exists(h)
    assert list(store.iter_hashes()) == []
    with pytest.raises(NotFound, match=h):
        store.delete(h)


# -- integrity -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [100, 6 * MiB])
def test_corrupted_object_is_detected(
    s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path, size: int
) -> None:
    store = S3ObjectStore(bucket, PREFIX, endpoint_url=s3_endpoint, multipart_threshold=5 * MiB)
    data = os.urandom(size)
    h = store.put_bytes(data).hash
    damaged = bytearray(data)
    damaged[size // 2] ^= 1
    s3_client.put_object(Bucket=bucket, Key=store.key_of(h), Body=bytes(damaged))

    with pytest.raises(IntegrityError, match=h), store.open(h) as f:
        f.read()
    with pytest.raises(IntegrityError, match="damaged"):
        store.read_bytes(h)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IntegrityError) as info:
        store.get_file(h, out / "copy")
    assert store.key_of(h) in str(info.value)
    assert list(out.iterdir()) == []  # no dest, no temp file
    (out / "copy").write_bytes(b"old")
    with pytest.raises(IntegrityError):
        store.get_file(h, out / "copy")
    assert (out / "copy").read_bytes() == b"old"  # an existing dest is left as it was
    assert no_temps(out)
    assert store.verify(h) is False


def test_interrupted_download_leaves_no_dest(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    store = S3ObjectStore(bucket, PREFIX, endpoint_url=s3_endpoint, multipart_threshold=5 * MiB)
    h = store.put_bytes(os.urandom(12 * MiB)).hash

    def fail_ranged_gets(params: dict[str, Any], **kwargs: Any) -> None:
        if "Range" in params and not params["Range"].startswith("bytes=0-"):
            raise botocore.exceptions.EndpointConnectionError(endpoint_url=store.endpoint_url)

    # Fails every part of the parallel download but the first, after it was written.
    store.client.meta.events.register("before-parameter-build.s3.GetObject", fail_ranged_gets)
    with pytest.raises(StoreError, match="cannot reach"):
        store.get_file(h, tmp_path / "copy")
    assert not (tmp_path / "copy").exists()
    assert no_temps(tmp_path)


# -- errors ----------------------------------------------------------------------------------------


def test_missing_object_is_not_found(store: S3ObjectStore, bucket: str, tmp_path: Path) -> None:
    h = hash_bytes(b"never stored")
    key = store.key_of(h)
    calls: list[Callable[[], object]] = [
        lambda: store.open(h),
        lambda: store.read_bytes(h),
        lambda: store.get_file(h, tmp_path / "copy"),
        lambda: store.size(h),
        lambda: store.verify(h),
        lambda: store.delete(h),
    ]
    for call in calls:
        with pytest.raises(NotFound) as info:
            call()
        message = str(info.value)
        assert h in message and bucket in message and key in message
    assert not store.exists(h)
    assert not (tmp_path / "copy").exists()


def test_missing_bucket_is_a_store_error(s3_endpoint: str, aws_env: dict[str, str]) -> None:
    store = S3ObjectStore("no-such-bucket-mltrail", PREFIX, endpoint_url=s3_endpoint)
    h = hash_bytes(b"x")
    calls: list[Callable[[], object]] = [
        lambda: store.exists(h),
        lambda: store.read_bytes(h),
        lambda: store.put_bytes(b"x"),
        lambda: list(store.iter_hashes()),
        lambda: store.missing([hash_bytes(str(i).encode()) for i in range(2000)]),
    ]
    for call in calls:
        with pytest.raises(StoreError, match="bucket 'no-such-bucket-mltrail' does not exist"):
            call()


def test_access_denied_names_bucket_key_and_credentials(store: S3ObjectStore) -> None:
    h = store.put_bytes(b"secret").hash
    refuse(store, "HeadObject", code="403")  # HEAD answers carry no body, only the status
    refuse(store, "GetObject")
    for call in (lambda: store.exists(h), lambda: store.read_bytes(h)):
        with pytest.raises(StoreError) as info:
            call()
        message = str(info.value)
        assert "access denied" in message
        assert store.bucket in message and store.key_of(h) in message
        assert "credentials from: env" in message
        assert info.value.hint and "credentials" in info.value.hint


def test_access_denied_reports_shared_credentials_file(
    store: S3ObjectStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[default]\naws_access_key_id = a\naws_secret_access_key = b\n")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    store = S3ObjectStore(store.bucket, PREFIX, client=store.client)
    refuse(store, "GetObject")
    with pytest.raises(StoreError, match="credentials from: shared-credentials-file"):
        store.read_bytes(hash_bytes(b"x"))
    for name in ("AWS_SHARED_CREDENTIALS_FILE",):
        monkeypatch.setenv(name, str(tmp_path / "none"))
    with pytest.raises(StoreError, match="credentials from: none found"):
        store.read_bytes(hash_bytes(b"x"))


def test_no_credentials_is_a_store_error(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name)
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    store = S3ObjectStore(bucket, endpoint_url=s3_endpoint)
    with pytest.raises(StoreError, match="no AWS credentials") as info:
        store.exists(hash_bytes(b"x"))
    assert bucket in str(info.value)


def test_unreachable_endpoint_is_a_store_error(aws_env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, config=Config(retries={"total_max_attempts": 1})
    )
    store = S3ObjectStore("some-bucket", client=client)
    for call in (lambda: store.exists(hash_bytes(b"x")), lambda: store.put_bytes(b"x")):
        with pytest.raises(StoreError) as info:
            call()
        assert f"cannot reach the S3 endpoint {endpoint}" in str(info.value)


@pytest.mark.parametrize("bad", ["", "abc", "A" * 64, "../" + "a" * 61, "ab/" + "c" * 61])
def test_invalid_hash_rejected(store: S3ObjectStore, bad: str, tmp_path: Path) -> None:
    calls = count_calls(store)
    for call in (
        lambda: store.exists(bad),
        lambda: store.open(bad),
        lambda: store.read_bytes(bad),
        lambda: store.get_file(bad, tmp_path / "x"),
        lambda: store.size(bad),
        lambda: store.delete(bad),
        lambda: store.missing([bad]),
        lambda: store.put_file(write(tmp_path / "f", b"f"), expected_hash=bad),
    ):
        with pytest.raises(InvalidInput, match="not a valid object hash"):
            call()
    assert not calls  # refused before any request


def test_invalid_bucket_rejected() -> None:
    for bad in ("", "a/b"):
        with pytest.raises(InvalidInput, match="bucket"):
            S3ObjectStore(bad)


# -- opening by URL --------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["MLTRAIL_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL"])
def test_open_object_store_routes_s3_urls(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, s3_endpoint)
    store = open_object_store(f"s3://{bucket}/some/prefix/")
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.prefix, store.endpoint_url) == (bucket, "some/prefix", s3_endpoint)
    assert store.location == f"s3://{bucket}/some/prefix"
    h = store.put_bytes(b"via url").hash
    assert open_object_store(f"s3://{bucket}/some/prefix").read_bytes(h) == b"via url"
    assert open_object_store(f"s3://{bucket}").prefix == ""


def test_mltrail_endpoint_variable_wins(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, aws_env: dict[str, str]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    store = open_object_store("s3://b/p")
    assert isinstance(store, S3ObjectStore) and store.endpoint_url == s3_endpoint


def test_open_object_store_s3_url_without_bucket() -> None:
    with pytest.raises(InvalidInput, match="names no bucket"):
        open_object_store("s3:///prefix")


def test_objects_import_does_not_load_boto3() -> None:
    code = (
        "import sys, mltrail.objects; assert 'boto3' not in sys.modules, 'boto3 loaded'; "
        "from mltrail.objects import S3ObjectStore; assert 'boto3' in sys.modules; "
        "print(S3ObjectStore.__name__)"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "S3ObjectStore"


def test_unfinished_multipart_uploads_are_counted_and_aborted_when_old(
    store: S3ObjectStore, s3_client: Any, bucket: str
) -> None:
    key = store.key_of(hash_bytes(b"never finished"))
    upload = s3_client.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3_client.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=1, Body=b"x" * 100)
    other = s3_client.create_multipart_upload(Bucket=bucket, Key="elsewhere/ab/cd")["UploadId"]
    listed = s3_client.list_multipart_uploads(Bucket=bucket, Prefix=PREFIX)["Uploads"]
    # Ages relative to the server's own clock (moto dates every upload the same day in 2010).
    age = time.time() - listed[0]["Initiated"].timestamp()
    young = store.temp_files(remove=True, older_than=age + 3600)
    assert (young.stale, young.live) == (0, 1)  # another process may still be on it
    old = store.temp_files(older_than=age - 60)
    assert (old.stale, old.stale_bytes) == (1, 100)
    store.temp_files(remove=True, older_than=age - 60)
    left = s3_client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert [u["UploadId"] for u in left] == [other]  # outside the store's prefix: not ours


# -- S3 error codes: the real moto server with IAM authentication switched on --------------------


@pytest.fixture
def iam_key(
    s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """An IAM user's access key with no permissions; moto checks every request meanwhile."""
    import requests

    iam = boto3.client("iam", endpoint_url=s3_endpoint)
    user = f"u{os.urandom(6).hex()}"
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name)
    # moto's switch for signature and permission checks (from now on, for every request).
    requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"0", timeout=10)
    try:
        yield {"id": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        requests.post(f"{s3_endpoint}/moto-api/reset-auth", data=b"inf", timeout=10)


def _with_key(
    monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, bucket: str, key_id: str, secret: str
) -> S3ObjectStore:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    return S3ObjectStore(bucket, PREFIX, endpoint_url=s3_endpoint)


def test_s3_errors_say_whether_the_key_id_the_secret_or_the_permission_is_wrong(
    iam_key: dict[str, str], s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = hash_bytes(b"x")
    cases = [
        ("AKIAUNKNOWNKEY000000", "whatever", "InvalidAccessKeyId", "AWS_ACCESS_KEY_ID"),
        (iam_key["id"], iam_key["secret"] + "x", "SignatureDoesNotMatch", "AWS_SECRET_ACCESS_KEY"),
        (iam_key["id"], iam_key["secret"], "AccessDenied", "s3:GetObject"),
    ]
    for key_id, secret, code, check in cases:
        store = _with_key(monkeypatch, s3_endpoint, bucket, key_id, secret)
        # HEAD answers carry no error code: the store asks again to learn it.
        for call in (lambda: store.exists(h), lambda: store.read_bytes(h)):  # noqa: B023
            with pytest.raises(StoreError) as info:
                call()
            message, hint = info.value.message, info.value.hint or ""
            assert f"failed with {code}" in message, message
            assert store.bucket in message and store.key_of(h) in message
            assert f"key id ****{key_id[-4:]}" in message or code == "InvalidAccessKeyId"
            assert check in message + hint
    denied = _with_key(monkeypatch, s3_endpoint, bucket, iam_key["id"], iam_key["secret"])
    with pytest.raises(StoreError) as info:
        list(denied.iter_hashes())
    assert f"Grant s3:ListBucket on arn:aws:s3:::{bucket} " in (info.value.hint or "")


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ExpiredToken", 400, "session token"),
        ("RequestTimeTooSkewed", 403, "clock"),
        ("SlowDown", 503, "-j"),
        ("ThrottlingException", 400, "-j"),
        ("AuthorizationHeaderMalformed", 400, "AWS_REGION"),
        ("InvalidObjectState", 403, "archive"),
        ("SomethingNew", 400, "Check the bucket"),
    ],
)
def test_s3_error_codes_are_named_with_what_to_check(
    store: S3ObjectStore, code: str, status: int, expected: str
) -> None:
    # A real botocore error from the response shape S3 sends (moto cannot produce these).
    response = {
        "Error": {"Code": code, "Message": f"the service says {code}"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    error = store._translate(botocore.exceptions.ClientError(response, "PutObject"), key="k")
    assert isinstance(error, StoreError)
    assert code in error.message and "PutObject" in error.message
    assert "bucket" in error.message and "endpoint" in error.message
    assert expected in error.message + (error.hint or "")
