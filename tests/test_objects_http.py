"""HttpObjectStore against a live ``mltrail server`` on 127.0.0.1 (objects in a folder or on S3)."""

from __future__ import annotations

import os
import subprocess
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from click.testing import CliRunner

import mltrail.data as data
from mltrail.data import remotes, transfer
from mltrail.errors import (
    IntegrityError,
    InvalidInput,
    InvalidState,
    NotFound,
    PermissionDenied,
    Unauthenticated,
)
from mltrail.objects import LocalObjectStore, hash_bytes, hash_file, open_object_store
from mltrail.objects import http as http_module
from mltrail.objects.http import HttpObjectStore
from mltrail.store import open_store
from mltrail.transport import HttpTransport
from tests.data import git, project, settle, write
from tests.server.conftest import (  # with the moto fixtures it imports
    aws_env,
    bucket,
    live_server,
    s3_client,
    s3_endpoint,
    s3_live_server,
    start_server,
)

# Fixtures used here by name.
__all__ = [
    "aws_env",
    "bucket",
    "live_server",
    "project",
    "s3_client",
    "s3_endpoint",
    "s3_live_server",
    "start_server",
]

MiB = 1024 * 1024
StartServer = Callable[..., str]


def _server_objects(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "server" / "objects")


def _requests(store: HttpObjectStore) -> Counter[tuple[str, str]]:
    """Count the requests ``store`` sends its server from now on, by method and route."""
    seen: Counter[tuple[str, str]] = Counter()

    def hook(request: httpx.Request) -> None:
        path = request.url.path
        last = path.rsplit("/", 1)[-1]
        seen[(request.method, path[: -len(last)] + "{hash}" if len(last) == 64 else path)] += 1

    store._http.client.event_hooks["request"].append(hook)
    return seen


def _file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
def store(live_server: str) -> HttpObjectStore:
    return HttpObjectStore(live_server)


# -- opening -------------------------------------------------------------------------------------


def test_open_object_store_opens_a_server(live_server: str) -> None:
    store = open_object_store(live_server)
    assert isinstance(store, HttpObjectStore)
    assert store.location == live_server
    assert isinstance(open_object_store("https://example.invalid:8443/"), HttpObjectStore)
    with pytest.raises(InvalidInput, match="'http://'"):
        open_object_store("http://")


# -- round trips ---------------------------------------------------------------------------------


def test_bytes_and_files_round_trip(store: HttpObjectStore, tmp_path: Path) -> None:
    info = store.put_bytes(b"hello")
    assert info.hash == hash_bytes(b"hello") and info.size == 5
    assert store.exists(info.hash) and store.size(info.hash) == 5
    assert store.read_bytes(info.hash) == b"hello"
    assert store.put_bytes(b"hello") == info  # again: harmless

    big = _file(tmp_path / "big.bin", 5 * MiB + 3)
    stored = store.put_file(big)
    assert stored.hash == hash_file(big) and stored.size == big.stat().st_size
    store.get_file(stored.hash, tmp_path / "out" / "big.bin", executable=True)
    assert (tmp_path / "out" / "big.bin").read_bytes() == big.read_bytes()
    assert os.access(tmp_path / "out" / "big.bin", os.X_OK)
    with store.open(stored.hash) as f:
        assert f.read(10) == big.read_bytes()[:10]
        assert f.read() == big.read_bytes()[10:]
    assert _server_objects(tmp_path).verify(stored.hash)
    assert sorted(store.iter_hashes()) == sorted([info.hash, stored.hash])
    assert store.verify(stored.hash)


def test_a_missing_object(store: HttpObjectStore, tmp_path: Path) -> None:
    h = hash_bytes(b"absent")
    assert not store.exists(h)
    for call in (store.size, store.read_bytes, store.delete, store.open):
        with pytest.raises(NotFound, match=h):
            call(h)
    with pytest.raises(NotFound):
        store.get_file(h, tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    with pytest.raises(InvalidInput, match="'nothex'"):
        store.exists("nothex")


def test_missing_and_listing_go_in_batches(
    store: HttpObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    present = {store.put_bytes(f"object {i}".encode()).hash for i in range(5)}
    absent = {hash_bytes(f"absent {i}".encode()) for i in range(4)}
    monkeypatch.setattr(http_module, "BATCH", 3)
    monkeypatch.setattr(http_module, "PAGE", 2)
    seen = _requests(store)
    assert store.missing(present | absent) == absent
    assert seen[("POST", "/api/v1/objects/missing")] == 3
    assert sorted(store.iter_hashes()) == sorted(present)
    assert seen[("GET", "/api/v1/objects")] == 3


def test_put_files_sends_only_what_is_missing(store: HttpObjectStore, tmp_path: Path) -> None:
    files = [_file(tmp_path / f"f{i}", 1000 * i + 1) for i in range(6)]
    files.append(_file(tmp_path / "large", 2 * MiB))
    dup = tmp_path / "dup"
    dup.write_bytes(files[1].read_bytes())
    store.put_file(files[0])
    seen = _requests(store)
    done: list[int] = []
    infos = store.put_files([(p, None) for p in [*files, dup]], progress=done.append)
    assert [i.hash for i in infos] == [hash_file(p) for p in [*files, dup]]
    assert sorted(done) == sorted(p.stat().st_size for p in [*files, dup])
    # One existence question; the one stored and the duplicate are not sent.
    assert seen[("POST", "/api/v1/objects/missing")] == 1
    assert seen[("PUT", "/api/v1/objects/{hash}")] == 6
    # With the hashes given, nothing is hashed again and nothing is sent again.
    again = store.put_files([(p, hash_file(p)) for p in files])
    assert again == infos[:-1]
    assert seen[("PUT", "/api/v1/objects/{hash}")] == 6


def test_a_file_that_changed_since_it_was_hashed_is_not_stored(
    store: HttpObjectStore, tmp_path: Path
) -> None:
    for size in (100, 3 * MiB):  # sent from memory, and streamed from disk
        path = _file(tmp_path / f"f{size}", size)
        stale = hash_bytes(b"what the file held before")
        with pytest.raises(InvalidState, match="changed while"):
            store.put_file(path, expected_hash=stale)
        assert not store.exists(stale)
        assert not store.exists(hash_file(path))
    assert list(store.iter_hashes()) == []


# -- integrity and streaming ---------------------------------------------------------------------


def _damage(server: LocalObjectStore, h: str) -> None:
    path = server.path_of(h)
    size = path.stat().st_size
    path.chmod(0o644)
    path.write_bytes(b"\0" * size)


@pytest.mark.parametrize("size", [100, 3 * MiB])
def test_a_damaged_object_is_caught_on_download(
    store: HttpObjectStore, tmp_path: Path, size: int
) -> None:
    h = store.put_file(_file(tmp_path / "f", size)).hash
    _damage(_server_objects(tmp_path), h)
    dest = tmp_path / "out" / "f"
    with pytest.raises(IntegrityError, match=h) as info:
        store.get_file(h, dest)
    assert info.value.object_hash == h
    assert os.listdir(dest.parent) == []  # no file, no temp file
    with pytest.raises(IntegrityError), store.open(h) as f:
        f.read()
    with pytest.raises(IntegrityError):
        store.read_bytes(h)
    assert not store.verify(h)


def test_large_objects_stream_without_being_held_in_memory(
    store: HttpObjectStore, tmp_path: Path
) -> None:
    size = 48 * MiB
    path = _file(tmp_path / "large.bin", size)
    h = hash_file(path)
    tracemalloc.start()
    try:
        # Server and client both run in this process: the peak covers both sides.
        store.put_file(path, expected_hash=h)
        _, up_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        store.get_file(h, tmp_path / "copy.bin")
        _, down_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert up_peak < 24 * MiB, up_peak
    assert down_peak < 24 * MiB, down_peak
    assert hash_file(tmp_path / "copy.bin") == h


class _Stream(httpx.SyncByteStream):
    """A body of ``data`` that ends in a network error if ``breaks``."""

    def __init__(self, data: bytes, breaks: bool) -> None:
        self.data = data
        self.breaks = breaks

    def __iter__(self) -> Iterator[bytes]:
        yield self.data
        if self.breaks:
            raise httpx.ReadError("connection reset by peer")


def test_a_download_that_breaks_is_resumed_with_a_range(tmp_path: Path) -> None:
    body = os.urandom(3 * MiB)
    h = hash_bytes(body)
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/presign"):
            return httpx.Response(409, json={"error_code": "INVALID_STATE", "message": "off"})
        asked.append(request.headers.get("range"))
        if len(asked) == 1:
            return httpx.Response(200, stream=_Stream(body[:MiB], breaks=True))
        start = int(request.headers["range"].removeprefix("bytes=").rstrip("-"))
        rest = body[start:] if len(asked) == 3 else body[start : start + MiB]
        return httpx.Response(206, stream=_Stream(rest, breaks=len(asked) < 3))

    transport = HttpTransport("http://server.test")
    transport.client = httpx.Client(
        base_url="http://server.test", transport=httpx.MockTransport(handler)
    )
    store = HttpObjectStore("http://server.test", transport=transport)
    store.get_file(h, tmp_path / "f")
    assert (tmp_path / "f").read_bytes() == body
    assert asked == [None, f"bytes={MiB}-", f"bytes={2 * MiB}-"]


# -- permissions ---------------------------------------------------------------------------------


def test_errors_from_the_server_keep_their_meaning(
    start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = start_server(auth=True)
    auth = open_store(f"sqlite:///{tmp_path / 'server' / 'mltrail.db'}")
    try:
        _, read_token = auth.create_token("reader", "read")
    finally:
        auth.close()
    with pytest.raises(Unauthenticated, match="token"):
        HttpObjectStore(url).exists(hash_bytes(b"x"))  # HEAD has no body: asked again
    reader = HttpObjectStore(url, token=read_token)
    assert not reader.exists(hash_bytes(b"x"))
    with pytest.raises(PermissionDenied, match="reader"):
        reader.put_bytes(b"x")
    with pytest.raises(PermissionDenied):
        reader.delete(hash_bytes(b"x"))
    # The token comes from the environment by default.
    monkeypatch.setenv("MLTRAIL_TOKEN", read_token)
    assert open_object_store(url).missing([hash_bytes(b"x")]) == {hash_bytes(b"x")}


# -- presigned URLs ------------------------------------------------------------------------------


def test_without_presigning_the_server_is_asked_once(
    store: HttpObjectStore, tmp_path: Path
) -> None:
    seen = _requests(store)
    for i in range(3):
        store.put_file(_file(tmp_path / f"f{i}", 10 + i))
    store.read_bytes(hash_file(tmp_path / "f0"))
    assert seen[("POST", "/api/v1/objects/presign")] == 1
    assert seen[("PUT", "/api/v1/objects/{hash}")] == 3


def test_presigned_transfers_go_straight_to_s3(
    start_server: StartServer,
    s3_endpoint: str,
    bucket: str,
    s3_client,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    url = start_server(objects=f"s3://{bucket}/objects", presign=True)
    store = HttpObjectStore(url)
    seen = _requests(store)
    files = [_file(tmp_path / "small", 100), _file(tmp_path / "large", 3 * MiB)]
    infos = store.put_files([(p, None) for p in files])
    single = store.put_file(_file(tmp_path / "single", 2 * MiB))
    assert store.put_bytes(b"bytes").hash == hash_bytes(b"bytes")
    for info in [*infos, single]:
        key = f"objects/{info.hash[:2]}/{info.hash[2:]}"
        assert s3_client.head_object(Bucket=bucket, Key=key)["ContentLength"] == info.size
    store.get_file(infos[1].hash, tmp_path / "copy")
    assert (tmp_path / "copy").read_bytes() == files[1].read_bytes()
    assert store.read_bytes(infos[0].hash) == files[0].read_bytes()
    # The bytes of files never went through the server, only requests for URLs did.
    assert seen[("PUT", "/api/v1/objects/{hash}")] == 1  # put_bytes goes through the server
    assert seen[("GET", "/api/v1/objects/{hash}")] == 0
    assert seen[("POST", "/api/v1/objects/presign")] == 4


def test_presigned_uploads_are_checked_before_s3_keeps_them(
    start_server: StartServer,
    s3_endpoint: str,
    bucket: str,
    s3_client,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    store = HttpObjectStore(start_server(objects=f"s3://{bucket}/objects", presign=True))
    stale = hash_bytes(b"what the file held when it was hashed")
    for size in (100, 9 * MiB):
        with pytest.raises(InvalidState, match="changed while"):
            store.put_file(_file(tmp_path / f"f{size}", size), expected_hash=stale)
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_damaged_object_on_s3_is_caught_through_a_presigned_url(
    start_server: StartServer,
    s3_endpoint: str,
    bucket: str,
    s3_client,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    store = HttpObjectStore(start_server(objects=f"s3://{bucket}/objects", presign=True))
    h = store.put_bytes(b"good bytes").hash
    s3_client.put_object(Bucket=bucket, Key=f"objects/{h[:2]}/{h[2:]}", Body=b"evil bytes")
    with pytest.raises(IntegrityError, match=h):
        store.get_file(h, tmp_path / "f")
    assert not (tmp_path / "f").exists()


# -- remotes and the tracking client -------------------------------------------------------------


def test_push_and_pull_through_a_server_remote(
    project: Path, live_server: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    files = {"data/table.csv": b"id,x\n1,2\n"}
    for i in range(6):
        files[f"data/images/{i}.bin"] = os.urandom(1000 + i * MiB // 2)
    for rel, content in files.items():
        write(project / rel, content)
    settle(project / "data")
    data.add(["data/table.csv", "data/images"], start=project)
    runner = CliRunner()
    from mltrail.cli import cli

    added = runner.invoke(cli, ["remote", "add", "team", live_server], prog_name="mltrail")
    assert added.exit_code == 0, added.output
    pushed = runner.invoke(cli, ["data", "push", "-r", "team"], prog_name="mltrail")
    assert pushed.exit_code == 0, pushed.output
    server_objects = _server_objects(project)
    assert len(list(server_objects.iter_hashes())) == 6 + 1 + 1  # files, tree, table
    assert transfer.push(remote="team").copied == 0

    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v1")
    clone = tmp_path_factory.mktemp("clone") / "c"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    pulled = transfer.pull(start=clone, remote="team")
    assert sorted(r.path for r in pulled.checked_out) == ["data/images", "data/table.csv"]
    for rel, content in files.items():
        assert (clone / rel).read_bytes() == content


def test_a_bad_server_remote_url_is_refused(project: Path) -> None:
    with pytest.raises(InvalidInput, match="names no host"):
        remotes.add_remote(project / ".mltrail", "team", "http://")


def test_run_artifacts_through_the_server(live_server: str, tmp_path: Path) -> None:
    from mltrail import MltrailClient

    client = MltrailClient(f"sqlite:///{tmp_path / 'runs.db'}", objects=live_server)
    try:
        exp = client.create_experiment("e")
        run = client.create_run(exp).info.run_id
        folder = tmp_path / "model"
        _file(folder / "weights.bin", 2 * MiB)
        (folder / "conf.txt").write_text("lr=0.1")
        client.log_artifact(run, folder)
        client.flush()
        out = client.download_artifacts(run, "model", tmp_path / "out")
        assert (out / "weights.bin").read_bytes() == (folder / "weights.bin").read_bytes()
        assert (out / "conf.txt").read_text() == "lr=0.1"
    finally:
        client.close()
