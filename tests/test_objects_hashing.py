"""BLAKE3 hashing of bytes and files, and validation of hash strings."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
from blake3 import blake3
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrail.errors import InvalidInput
from mltrail.objects import hashing
from mltrail.objects.hashing import (
    CHUNK_SIZE,
    MMAP_THRESHOLD,
    check_hash,
    hash_bytes,
    hash_file,
    hash_files,
    is_valid_hash,
)

# Published BLAKE3 digests, so a change of algorithm or encoding cannot pass unnoticed.
EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
ABC = "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"


def test_hash_bytes_known_values() -> None:
    assert hash_bytes(b"") == EMPTY
    assert hash_bytes(b"abc") == ABC
    assert hash_bytes(bytearray(b"abc")) == ABC
    assert hash_bytes(memoryview(b"abc")) == ABC


def test_hash_file_empty(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    assert hash_file(p) == EMPTY
    assert hash_file(str(p)) == EMPTY


@pytest.mark.parametrize(
    "size", [1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 7]
)
def test_hash_file_matches_hash_bytes_across_chunk_boundaries(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "f"
    p.write_bytes(data)
    assert hash_file(p) == hash_bytes(data) == blake3(data).hexdigest()


def test_large_file_multithreaded_equals_single_threaded(tmp_path: Path) -> None:
    data = os.urandom(20 * 1024 * 1024)
    assert len(data) >= MMAP_THRESHOLD
    p = tmp_path / "big"
    p.write_bytes(data)
    single = blake3(data, max_threads=1).hexdigest()
    assert hash_file(p) == single  # memory-mapped, several threads
    assert hashing._hash_file(p, 1) == single  # read loop, one thread
    assert hashing._hash_file(p, 4) == single
    assert hash_bytes(data) == single


def _hash_in_child(path: str) -> str:
    return hash_file(path)


def test_forked_child_can_hash_after_parent_used_threads(tmp_path: Path) -> None:
    # blake3.AUTO's process-wide pool hangs in a forked child; our explicit pools must not.
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    p = tmp_path / "big"
    p.write_bytes(os.urandom(MMAP_THRESHOLD + 1))
    expected = hash_file(p)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        result = pool.map_async(_hash_in_child, [str(p)] * 2)
        assert result.get(timeout=60) == [expected, expected]


def test_hash_files_parallel_matches_sequential(tmp_path: Path) -> None:
    paths = []
    for i in range(50):
        p = tmp_path / f"f{i}"
        p.write_bytes(os.urandom(i * 97))
        paths.append(p)
    big = tmp_path / "big"
    big.write_bytes(os.urandom(MMAP_THRESHOLD + 5))
    paths.append(big)
    expected = {p: hash_file(p) for p in paths}
    assert hash_files(paths) == expected
    assert hash_files(paths, workers=1) == expected
    assert hash_files([str(p) for p in paths], workers=3) == expected
    assert list(hash_files(paths)) == paths  # order kept
    assert hash_files([]) == {}


def test_hash_files_missing_file_raises(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"a")
    with pytest.raises(FileNotFoundError):
        hash_files([tmp_path / "a", tmp_path / "nope"], workers=2)


@settings(max_examples=50, deadline=None)
@given(data=st.binary(max_size=100_000))
def test_hash_file_equals_hash_bytes(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    p = tmp_path_factory.mktemp("h") / "f"
    p.write_bytes(data)
    assert hash_file(p) == hash_bytes(data)


def test_valid_hashes() -> None:
    assert is_valid_hash(EMPTY)
    assert check_hash(ABC) == ABC


@pytest.mark.parametrize(
    "value",
    [
        "",
        "abc",
        EMPTY[:-1],  # short
        EMPTY + "0",  # long
        EMPTY.upper(),
        "g" * 64,  # not hex
        "../" + EMPTY[3:],
        "ab/" + EMPTY[3:],
        EMPTY[:-1] + "\n",
        EMPTY + "\n",
        " " + EMPTY[1:],
        None,
        42,
        EMPTY.encode(),
    ],
)
def test_invalid_hashes_rejected(value: object) -> None:
    assert not is_valid_hash(value)
    with pytest.raises(InvalidInput) as info:
        check_hash(value)
    assert repr(value) in str(info.value)


def test_uppercase_hash_error_says_lowercase() -> None:
    with pytest.raises(InvalidInput, match="lowercase"):
        check_hash(EMPTY.upper())


def test_import_stays_light() -> None:
    # `import mltrail.objects` runs on every CLI start; thread pools, ctypes and HTTP stay out.
    code = (
        "import sys, mltrail.objects; "
        "print(sorted(m for m in ('concurrent.futures', 'ctypes', 'urllib.request', 'logging') "
        "if m in sys.modules))"
    )
    src = str(Path(hashing.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "[]"


def test_hash_fd_hashes_the_open_file_even_if_the_path_is_replaced(tmp_path: Path) -> None:
    first = os.urandom(MMAP_THRESHOLD + 1)
    p = tmp_path / "f"
    p.write_bytes(first)
    fd = os.open(p, os.O_RDONLY)
    try:
        (tmp_path / "new").write_bytes(b"replacement")
        os.replace(tmp_path / "new", p)
        assert hashing.hash_fd(fd, p, len(first), 2) == hash_bytes(first)
        assert hashing.hash_fd(fd, p, len(first), 1) == hash_bytes(first)
        assert hashing.hash_fd(fd, p, len(first), 1) == hash_bytes(first)  # offset at EOF
    finally:
        os.close(fd)
