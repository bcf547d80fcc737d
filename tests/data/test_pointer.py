"""Pointer files: round trip, stable text, and every way a hand edit can break one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail.data.pointer import (
    Pointer,
    data_path_of,
    dump_pointer,
    parse_pointer,
    pointer_path,
    read_pointer,
    write_pointer,
)
from mltrail.errors import InvalidInput

H = "ab" * 32


def test_round_trip_file_and_dir(tmp_path: Path):
    for p in (Pointer(H, "file", 12), Pointer(H, "dir", 4096, 3)):
        path = tmp_path / f"x-{p.kind}.trail"
        write_pointer(path, p)
        assert read_pointer(path) == p


def test_text_is_stable_and_commented():
    text = dump_pointer(Pointer(H, "dir", 10, 2), "images")
    assert text.startswith("# mltrail data pointer")
    assert text.splitlines()[2:] == [
        "version: 1",
        "kind: dir",
        f"hash: {H}",
        "size: 10",
        "nfiles: 2",
    ]
    assert dump_pointer(Pointer(H, "dir", 10, 2), "images") == text


def test_all_digit_hash_survives():
    h = "1" * 64
    assert parse_pointer(dump_pointer(Pointer(h, "file", 1), "x")).hash == h


def test_paths():
    assert pointer_path("data/images") == Path("data/images.trail")
    assert data_path_of("data/a.csv.trail") == Path("data/a.csv")
    with pytest.raises(InvalidInput):
        data_path_of("data/a.csv")


GOOD = f"version: 1\nkind: dir\nhash: {H}\nsize: 1\nnfiles: 1\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("version: 1\nkind: [dir\n", r"not valid YAML at line \d+"),
        ("- a\n- b\n", "not a YAML mapping"),
        (GOOD.replace("version: 1\n", ""), "missing key 'version'"),
        (GOOD.replace("kind: dir\n", ""), "missing key 'kind'"),
        (GOOD.replace(f"hash: {H}\n", ""), "missing key 'hash'"),
        (GOOD.replace("size: 1\n", ""), "missing key 'size'"),
        (GOOD.replace("nfiles: 1\n", ""), "missing key 'nfiles'"),
        (GOOD.replace(H, H[:-1]), "is not 64 lowercase hex"),
        (GOOD.replace(H, H.upper()), "is not 64 lowercase hex"),
        (GOOD.replace("kind: dir", "kind: folder"), "kind is 'folder'"),
        (GOOD.replace("size: 1", "size: -1"), "size -1"),
        (GOOD.replace("version: 1", "version: 0"), "unknown version 0"),
        (GOOD + "extra: 1\n", "unexpected key 'extra'"),
    ],
)
def test_malformed_pointer_names_the_file_and_what_is_expected(tmp_path: Path, text, match):
    path = tmp_path / "data.csv.trail"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=match) as err:
        read_pointer(path)
    assert str(path) in err.value.message
    assert "version (1), kind (file or dir), hash" in err.value.message


def test_newer_version_asks_for_upgrade(tmp_path: Path):
    path = tmp_path / "d.trail"
    path.write_text(GOOD.replace("version: 1", "version: 7"))
    with pytest.raises(InvalidInput, match="newer") as err:
        read_pointer(path)
    assert "Upgrade" in (err.value.hint or "")


def test_missing_and_binary_pointer(tmp_path: Path):
    with pytest.raises(InvalidInput, match="no pointer file"):
        read_pointer(tmp_path / "nope.trail")
    bad = tmp_path / "bin.trail"
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        read_pointer(bad)


def test_pointer_validates_itself():
    with pytest.raises(InvalidInput):
        Pointer("zz", "file", 1)
    with pytest.raises(InvalidInput):
        Pointer(H, "dir", 1)
    with pytest.raises(InvalidInput):
        Pointer(H, "file", 1, 2)
