"""The objects API (`/api/v1/objects`) over a real socket; artifact path checks on the server."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

pytest.importorskip("fastapi")

from mltrail.objects import hash_bytes
from mltrail.store import open_store
from tests.live import wait_for

MiB = 1024 * 1024
API = "/api/v1/objects"


def _http(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=30)


def _error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"error_code", "message", "hint", "kind"}
    assert "Traceback" not in response.text
    if code is not None:
        assert body["error_code"] == code
    return body


def _objects(tmp_path: Path) -> Path:
    return tmp_path / "server" / "objects"


def _temp_files(tmp_path: Path) -> list[str]:
    folder = _objects(tmp_path) / "tmp"
    return os.listdir(folder) if folder.is_dir() else []


# -- upload, download, existence -----------------------------------------------------------------


def test_put_head_get_round_trip(live_server: str, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB + 5)  # several upload blocks' worth is not needed: one is fine
    h = hash_bytes(data)
    with _http(live_server) as http:
        assert http.head(f"{API}/{h}").status_code == 404
        put = http.put(f"{API}/{h}", content=data)
        assert put.status_code == 201, put.text
        assert put.json() == {"hash": h, "size": len(data), "created": True}
        head = http.head(f"{API}/{h}")
        assert head.status_code == 200
        assert int(head.headers["content-length"]) == len(data)
        got = http.get(f"{API}/{h}")
        assert got.status_code == 200
        assert got.content == data
        assert got.headers["etag"] == f'"{h}"'
    stored = _objects(tmp_path) / h[:2] / h[2:]
    assert stored.read_bytes() == data
    assert _temp_files(tmp_path) == []


def test_a_streamed_body_of_many_blocks_is_stored_whole(live_server: str) -> None:
    data = os.urandom(9 * MiB + 123)
    h = hash_bytes(data)

    def chunks():  # no Content-Length: sent chunked, in uneven pieces
        for at in range(0, len(data), 700_001):
            yield data[at : at + 700_001]

    with _http(live_server) as http:
        assert http.put(f"{API}/{h}", content=chunks()).status_code == 201
        assert http.get(f"{API}/{h}").content == data


def test_putting_an_object_again_is_harmless(live_server: str, tmp_path: Path) -> None:
    data = b"same bytes"
    h = hash_bytes(data)
    with _http(live_server) as http:
        assert http.put(f"{API}/{h}", content=data).status_code == 201
        again = http.put(f"{API}/{h}", content=data)
        assert again.status_code == 200
        assert again.json()["created"] is False
        # The connection is still usable after the body was drained.
        assert http.head(f"{API}/{h}").status_code == 200
    assert _temp_files(tmp_path) == []


def test_bytes_that_do_not_hash_to_the_name_are_refused(live_server: str, tmp_path: Path) -> None:
    named = hash_bytes(b"what the client claims")
    sent = b"what it sends"
    with _http(live_server) as http:
        body = _error(http.put(f"{API}/{named}", content=sent), 400, "HASH_MISMATCH")
        assert named in body["message"]
        assert hash_bytes(sent) in body["message"]
        assert http.head(f"{API}/{named}").status_code == 404
        assert http.head(f"{API}/{hash_bytes(sent)}").status_code == 404
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize("bad", ["ABC", "A" * 64, "../../etc/passwd", "0" * 63 + "g"])
def test_a_malformed_hash_is_a_400_naming_it(live_server: str, bad: str) -> None:
    with _http(live_server) as http:
        for method in ("GET", "PUT", "DELETE"):
            response = http.request(method, f"{API}/{bad}", content=b"x")
            if response.status_code == 404:  # '..' segments never reach the route
                continue
            body = _error(response, 400)
            assert repr(bad) in body["message"]


def test_a_missing_object_is_a_404_in_the_error_shape(live_server: str) -> None:
    h = hash_bytes(b"never stored")
    with _http(live_server) as http:
        body = _error(http.get(f"{API}/{h}"), 404, "RESOURCE_DOES_NOT_EXIST")
        assert h in body["message"]
        assert "/" not in body["message"].replace(h, "")  # no server paths in the message
        _error(http.delete(f"{API}/{h}"), 404)


def test_byte_ranges(live_server: str) -> None:
    data = bytes(range(256)) * 40
    h = hash_bytes(data)
    with _http(live_server) as http:
        http.put(f"{API}/{h}", content=data)
        part = http.get(f"{API}/{h}", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert http.get(f"{API}/{h}", headers={"Range": "bytes=10000-"}).content == data[10000:]
        assert http.get(f"{API}/{h}", headers={"Range": "bytes=99999-"}).status_code == 416


# -- limits and interrupted uploads --------------------------------------------------------------


def test_a_declared_length_over_the_upload_limit_is_413_before_reading(
    start_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_server(max_upload_bytes=1000)
    data = os.urandom(5000)
    h = hash_bytes(data)
    with _http(url) as http:
        body = _error(http.put(f"{API}/{h}", content=data), 413, "REQUEST_TOO_LARGE")
        assert "5000" in body["message"] and "1000" in body["message"]
        assert h in body["message"]
        assert http.head(f"{API}/{h}").status_code == 404
        small = b"x" * 1000
        assert http.put(f"{API}/{hash_bytes(small)}", content=small).status_code == 201
    assert _temp_files(tmp_path) == []


def test_a_chunked_upload_is_cut_off_at_the_limit(
    start_server: Callable[..., str], tmp_path: Path
) -> None:
    url = start_server(max_upload_bytes=10_000)
    data = os.urandom(50_000)
    h = hash_bytes(data)
    with _http(url) as http:
        response = http.put(
            f"{API}/{h}", content=iter([data[i : i + 4000] for i in range(0, 50_000, 4000)])
        )
        body = _error(response, 413, "REQUEST_TOO_LARGE")
        assert "10000 bytes" in body["message"]
    with _http(url) as http:
        assert http.head(f"{API}/{h}").status_code == 404
    wait_for(lambda: _temp_files(tmp_path) == [])


def test_a_client_killed_mid_upload_leaves_no_object_and_no_temp_file(
    live_server: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * MiB)
    h = hash_bytes(data)
    where = urlsplit(live_server)
    sock = socket.create_connection((where.hostname, where.port))
    head = f"PUT {API}/{h} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n\r\n"
    sock.sendall(head.encode() + data[: len(data) // 2])
    # The server has the upload under way once its temp file exists.
    wait_for(lambda: len(_temp_files(tmp_path)) == 1)
    sock.close()  # the client dies half way
    wait_for(lambda: _temp_files(tmp_path) == [])
    with _http(live_server) as http:
        assert http.head(f"{API}/{h}").status_code == 404
        # And the server is fine: the same object can be sent whole.
        assert http.put(f"{API}/{h}", content=data).status_code == 201
    assert not (_objects(tmp_path) / h[:2] / h[2:]).with_suffix(".tmp").exists()


# -- batches and listing -------------------------------------------------------------------------


def test_missing_answers_for_a_batch(live_server: str) -> None:
    present = [b"one", b"two"]
    with _http(live_server) as http:
        for data in present:
            http.put(f"{API}/{hash_bytes(data)}", content=data)
        absent = sorted(hash_bytes(bytes([i])) for i in range(5))
        asked = absent + [hash_bytes(d) for d in present]
        response = http.post(f"{API}/missing", json={"hashes": asked})
        assert response.status_code == 200
        assert response.json() == {"missing": absent}
        body = _error(http.post(f"{API}/missing", json={"hashes": ["0" * 64] * 10_001}), 400)
        assert "10000" in body["message"]
        body = _error(http.post(f"{API}/missing", json={"hashes": ["nothex"]}), 400)
        assert "'nothex'" in body["message"]


def test_listing_pages_through_every_hash_in_order(live_server: str) -> None:
    hashes = []
    with _http(live_server) as http:
        for i in range(7):
            data = f"object {i}".encode()
            hashes.append(hash_bytes(data))
            http.put(f"{API}/{hash_bytes(data)}", content=data)
        seen: list[str] = []
        after = None
        while True:
            params = {"limit": 3, **({"after": after} if after else {})}
            page = http.get(API, params=params).json()
            seen += page["hashes"]
            after = page["next_after"]
            if after is None:
                break
        assert seen == sorted(hashes)
        _error(http.get(API, params={"limit": 0}), 400)
        _error(http.get(API, params={"after": "zz"}), 400)


def test_delete_removes_an_object(live_server: str) -> None:
    h = hash_bytes(b"short-lived")
    with _http(live_server) as http:
        http.put(f"{API}/{h}", content=b"short-lived")
        assert http.delete(f"{API}/{h}").status_code == 204
        assert http.head(f"{API}/{h}").status_code == 404


# -- permissions ---------------------------------------------------------------------------------


def test_roles(start_server: Callable[..., str], tmp_path: Path) -> None:
    url = start_server(auth=True)
    store = open_store(f"sqlite:///{tmp_path / 'server' / 'mltrail.db'}")
    try:
        tokens = {role: store.create_token(role, role)[1] for role in ("read", "write", "admin")}
    finally:
        store.close()
    data = b"guarded"
    h = hash_bytes(data)

    def client(role: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
        return httpx.Client(base_url=url, headers=headers, timeout=30)

    with client(None) as anonymous, client("read") as reader:
        _error(anonymous.get(f"{API}/{h}"), 401)
        _error(reader.put(f"{API}/{h}", content=data), 403)
    with client("write") as writer:
        assert writer.put(f"{API}/{h}", content=data).status_code == 201
        _error(writer.delete(f"{API}/{h}"), 403)
        _error(writer.get(API), 403)
    with client("read") as reader:
        assert reader.get(f"{API}/{h}").content == data
        assert reader.post(f"{API}/missing", json={"hashes": [h]}).json() == {"missing": []}
    with client("admin") as admin:
        assert admin.get(API).json()["hashes"] == [h]
        assert admin.delete(f"{API}/{h}").status_code == 204


def test_presign_is_a_409_when_off(live_server: str) -> None:
    with _http(live_server) as http:
        body = _error(
            http.post(f"{API}/presign", json={"hashes": ["0" * 64], "method": "PUT"}), 409
        )
        assert "presigned" in body["message"]
        assert "through the server" in body["hint"]


def test_the_openapi_document_describes_the_object_routes(live_server: str) -> None:
    with _http(live_server) as http:
        doc = http.get("/api/v1/openapi.json").json()
    paths = doc["paths"]
    assert set(paths[f"{API}/{{hash}}"]) == {"head", "get", "put", "delete"}
    put = paths[f"{API}/{{hash}}"]["put"]
    assert "application/octet-stream" in put["requestBody"]["content"]
    assert "post" in paths[f"{API}/missing"] and "post" in paths[f"{API}/presign"]
    assert "get" in paths[API]


# -- S3 behind the server, and presigned URLs ----------------------------------------------------


def test_objects_through_a_server_on_s3(s3_live_server: str, s3_client, bucket: str) -> None:
    data = os.urandom(MiB + 17)
    h = hash_bytes(data)
    with _http(s3_live_server) as http:
        assert http.head(f"{API}/{h}").status_code == 404
        assert http.put(f"{API}/{h}", content=data).status_code == 201
        assert int(http.head(f"{API}/{h}").headers["content-length"]) == len(data)
        assert http.get(f"{API}/{h}").content == data
        part = http.get(f"{API}/{h}", headers={"Range": "bytes=5-9"})
        assert (part.status_code, part.content) == (206, data[5:10])
        _error(http.get(f"{API}/{hash_bytes(b'nope')}"), 404)
        assert http.get(API).json()["hashes"] == [h]
    key = f"objects/{h[:2]}/{h[2:]}"
    assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == data


def test_presigned_urls_move_bytes_straight_to_s3(
    start_server: Callable[..., str],
    s3_endpoint: str,
    bucket: str,
    s3_client,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLTRAIL_S3_ENDPOINT_URL", s3_endpoint)
    url = start_server(objects=f"s3://{bucket}/objects", presign=True)
    stored, new = b"already there", b"fresh bytes"
    with _http(url) as http:
        http.put(f"{API}/{hash_bytes(stored)}", content=stored)
        hashes = [hash_bytes(stored), hash_bytes(new)]
        reply = http.post(f"{API}/presign", json={"hashes": hashes, "method": "PUT"})
        assert reply.status_code == 200, reply.text
        urls = reply.json()["urls"]
        assert list(urls) == [hash_bytes(new)]  # only what the store lacks
        target = urls[hash_bytes(new)]
        assert target.startswith(s3_endpoint)
    with httpx.Client(timeout=30) as direct:
        assert direct.put(target, content=new).status_code == 200
    with _http(url) as http:
        reply = http.post(f"{API}/presign", json={"hashes": [hash_bytes(new)], "method": "GET"})
        got = httpx.get(reply.json()["urls"][hash_bytes(new)], timeout=30)
        assert got.content == new
        assert http.get(f"{API}/{hash_bytes(new)}").content == new


# -- artifact paths ------------------------------------------------------------------------------


BAD_PATHS = [
    "../x",
    "a/../../x",
    "/etc/passwd",
    "C:\\Windows\\x",
    "c:x",
    "\\\\server\\share\\x",
    "..\\..\\x",
    "a\\..\\..\\x",
    "a\x00b",
    "a\nb",
    "a\x1b[31mb",
    "%2e%2e/x",
    "a/%2E%2E/%2e%2e/x",
    "..%2fx",
    "%252e%252e/x",
    "%2fetc/passwd",
    "./x",
    "a//b",
    "",
]


@pytest.fixture
def run_id(live_server: str) -> str:
    with _http(live_server) as http:
        exp = http.post("/api/v1/experiments", json={"name": "paths"}).json()["experiment_id"]
        run = http.post(
            "/api/v1/runs",
            json={"experiment_id": exp, "run_name": "r", "start_time": int(time.time() * 1000)},
        )
        assert run.status_code == 201, run.text
        return run.json()["info"]["run_id"]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_traversal_in_artifact_paths_is_refused(live_server: str, run_id: str, bad: str) -> None:
    entry = {"path": bad, "hash": hash_bytes(b"x"), "size": 1, "mode": 0o644}
    with _http(live_server) as http:
        response = http.post(f"/api/v1/runs/{run_id}/artifacts", json={"files": [entry]})
        body = _error(response, 400)
        assert repr(bad) in body["message"]
        assert http.get(f"/api/v1/runs/{run_id}/artifacts").json() == {"files": []}
        if bad:
            listed = http.get(f"/api/v1/runs/{run_id}/artifacts", params={"prefix": bad})
            assert repr(bad) in _error(listed, 400)["message"]


def test_good_artifact_paths_pass(live_server: str, run_id: str) -> None:
    h = hash_bytes(b"x")
    paths = ["model/weights.bin", "a b/c:d.txt", "100%.txt", "x..y/..z", "dir\\file.txt"]
    with _http(live_server) as http:
        files = [{"path": p, "hash": h, "size": 1, "mode": 0o644} for p in paths]
        response = http.post(f"/api/v1/runs/{run_id}/artifacts", json={"files": files})
        assert response.status_code == 204, response.text
        listed = http.get(f"/api/v1/runs/{run_id}/artifacts").json()["files"]
    assert sorted(f["path"] for f in listed) == sorted(
        ["model/weights.bin", "a b/c:d.txt", "100%.txt", "x..y/..z", "dir/file.txt"]
    )


def test_an_upload_removes_temp_files_a_killed_server_left(live_server: str, tmp_path: Path):
    from tests.test_objects_tempfiles import _dead_name

    folder = _objects(tmp_path) / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _dead_name()).write_bytes(b"half an upload")
    data = b"after the restart"
    with _http(live_server) as http:
        assert http.put(f"{API}/{hash_bytes(data)}", content=data).status_code == 201
    assert _temp_files(tmp_path) == []
