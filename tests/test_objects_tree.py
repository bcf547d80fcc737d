"""Trees: canonical serialization, scanning folders, storing and checking out directory versions."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mltrail.errors import IntegrityError, InvalidInput, InvalidState, NotFound
from mltrail.objects import (
    LocalObjectStore,
    Tree,
    TreeEntry,
    checkout_tree,
    hash_bytes,
    hashing,
    put_tree,
    read_tree,
    scan_tree,
    store_tree,
)
from mltrail.objects import tree as tree_module
from mltrail.objects.tree import check_tree_path

H1 = hash_bytes(b"1")
H2 = hash_bytes(b"2")
posix_only = pytest.mark.skipif(os.name == "nt", reason="POSIX modes and symlinks")


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


def _make(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _read_all(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


FILES = {
    "a.txt": b"alpha",
    "b/c.txt": b"gamma" * 1000,
    "b/d/e.bin": os.urandom(70_000),
    "b/d/empty": b"",
    "dup1": b"same",
    "z/dup2": b"same",
    "unicode-é.txt": "ünïcödé".encode(),
}


# -- serialization ---------------------------------------------------------------------------------


def test_serialization_is_compact_sorted_json() -> None:
    tree = Tree.from_entries([TreeEntry("b", H2, 1, 0o755), TreeEntry("a/x", H1, 1)])
    expected = f'{{"mltrail_tree":1,"entries":[["a/x","{H1}",1,420],["b","{H2}",1,493]]}}'.encode()
    assert tree.to_bytes() == expected
    assert tree.hash == hash_bytes(expected)
    assert Tree.from_bytes(expected) == tree
    assert tree.size == 2 and len(tree) == 2


def test_non_ascii_paths_are_raw_utf8() -> None:
    tree = Tree.from_entries([TreeEntry("données/é.csv", H1, 0)])
    assert "données/é.csv".encode() in tree.to_bytes()
    assert Tree.from_bytes(tree.to_bytes()) == tree


def test_empty_tree() -> None:
    tree = Tree()
    assert tree.to_bytes() == b'{"mltrail_tree":1,"entries":[]}'
    assert Tree.from_bytes(tree.to_bytes()) == tree


_segment = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\0"),
    min_size=1,
    max_size=8,
).filter(lambda s: s not in (".", ".."))
_paths = st.lists(_segment, min_size=1, max_size=4).map("/".join)
_entries = st.lists(
    st.builds(
        TreeEntry,
        path=_paths,
        hash=st.binary(min_size=1, max_size=8).map(hash_bytes),
        size=st.integers(min_value=0, max_value=2**53),
        mode=st.sampled_from([0o644, 0o755]),
    ),
    max_size=20,
    unique_by=lambda e: e.path,
)


def _without_conflicts(entries: list[TreeEntry]) -> list[TreeEntry]:
    # Drop entries whose path is also a folder of another entry; such trees are invalid.
    paths = {e.path for e in entries}
    return [e for e in entries if not any(p.startswith(e.path + "/") for p in paths)]


@settings(max_examples=200, deadline=None)
@given(entries=_entries)
def test_serialization_round_trip(entries: list[TreeEntry]) -> None:
    entries = _without_conflicts(entries)
    tree = Tree.from_entries(entries)
    data = tree.to_bytes()
    again = Tree.from_bytes(data)
    assert again == tree
    assert again.to_bytes() == data
    # Independent of the order entries came in.
    assert Tree.from_entries(reversed(entries)).to_bytes() == data
    assert [e.path for e in tree] == sorted(e.path for e in entries)


def _doc(*entries: list[object]) -> bytes:
    return json.dumps({"mltrail_tree": 1, "entries": list(entries)}).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'{"entries":[]}',
        b'{"mltrail_tree":"1","entries":[]}',
        b'{"mltrail_tree":true,"entries":[]}',
        b'{"mltrail_tree":1}',
        b'{"mltrail_tree":1,"entries":{}}',
        _doc(["a"]),
        _doc("a"),
        _doc(["a", H1, -1, 420]),
        _doc(["a", H1, 1.5, 420]),
        _doc(["a", H1, True, 420]),
        _doc(["a", H1, 1, 511]),
        _doc(["a", H1, 1, "420"]),
        _doc(["a", H1, 1, 420, "extra"]),
        _doc(["a", "XYZ", 1, 420]),
        _doc(["a", H1.upper(), 1, 420]),
        _doc(["b", H1, 1, 420], ["a", H1, 1, 420]),  # unsorted
        _doc(["a", H1, 1, 420], ["a", H2, 1, 420]),  # duplicate
        _doc(["a", H1, 1, 420], ["a/b", H2, 1, 420]),  # file and folder at once
    ],
)
def test_bad_bytes_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        Tree.from_bytes(data)


def test_newer_format_says_upgrade() -> None:
    with pytest.raises(InvalidInput, match="newer") as info:
        Tree.from_bytes(b'{"mltrail_tree":2,"entries":[]}')
    assert "Upgrade" in str(info.value)


UNSAFE_PATHS = [
    "../evil",
    "a/../../evil",
    "..",
    ".",
    "./a",
    "a/./b",
    "/etc/passwd",
    "//server/share",
    "a//b",
    "a/",
    "",
    "a\\..\\..\\evil",
    "..\\evil",
    "C:\\evil",
    "a\0b",
    "\udcff",
]


@pytest.mark.parametrize("path", UNSAFE_PATHS)
def test_unsafe_paths_refused(path: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_tree_path(path)
    assert repr(path) in str(info.value)
    with pytest.raises(InvalidInput):
        TreeEntry(path, H1, 1)


@pytest.mark.parametrize("path", ["a", "a/b/c", "...", "..a", "a..", ".hidden", "C:x", "a b"])
def test_safe_paths_accepted(path: str) -> None:
    assert check_tree_path(path) == path


# -- scanning --------------------------------------------------------------------------------------


def test_scan_nested_folders(tmp_path: Path) -> None:
    root = _make(tmp_path / "data", FILES)
    tree, sources = scan_tree(root)
    assert [e.path for e in tree] == sorted(FILES)
    for e in tree:
        assert e.hash == hash_bytes(FILES[e.path])
        assert e.size == len(FILES[e.path])
        assert sources[e.path] == root / e.path
    assert tree.size == sum(len(d) for d in FILES.values())


def test_scan_hash_is_deterministic_and_independent_of_creation_order(tmp_path: Path) -> None:
    one = _make(tmp_path / "one", FILES)
    two = _make(tmp_path / "two", dict(reversed(list(FILES.items()))))
    tree_one, _ = scan_tree(one)
    tree_two, _ = scan_tree(two, workers=1)
    assert tree_one.to_bytes() == tree_two.to_bytes()
    assert tree_one.hash == tree_two.hash == scan_tree(one, workers=7)[0].hash


def test_scan_order_does_not_matter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _make(tmp_path / "d", FILES)
    expected = scan_tree(root)[0].to_bytes()
    real_scandir = os.scandir

    class Reversed:
        def __init__(self, path: object) -> None:
            with real_scandir(path) as it:
                self.entries = list(it)[::-1]

        def __enter__(self) -> list[os.DirEntry[str]]:
            return self.entries

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(tree_module.os, "scandir", Reversed)
    assert scan_tree(root)[0].to_bytes() == expected


def test_content_change_changes_hash(tmp_path: Path) -> None:
    root = _make(tmp_path / "d", FILES)
    before = scan_tree(root)[0].hash
    (root / "b/d/empty").write_bytes(b"x")
    assert scan_tree(root)[0].hash != before


@posix_only
def test_exec_bit_is_recorded(tmp_path: Path) -> None:
    root = _make(tmp_path / "d", {"run.sh": b"#!/bin/sh\n", "data.csv": b"1,2\n"})
    os.chmod(root / "run.sh", 0o700)
    os.chmod(root / "data.csv", 0o600)
    tree, _ = scan_tree(root)
    modes = {e.path: e.mode for e in tree}
    assert modes == {"run.sh": 0o755, "data.csv": 0o644}
    os.chmod(root / "run.sh", 0o644)
    assert scan_tree(root)[0].hash != tree.hash


def test_scan_missing_or_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no such folder"):
        scan_tree(tmp_path / "nope")
    f = tmp_path / "file"
    f.write_bytes(b"x")
    with pytest.raises(InvalidInput, match="not a folder"):
        scan_tree(f)


def test_empty_folder_scans_to_empty_tree(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    tree, sources = scan_tree(tmp_path / "d")
    assert tree == Tree() and sources == {}


@posix_only
def test_symlink_to_file_is_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"target content")
    root = _make(tmp_path / "d", {"real.txt": b"r"})
    (root / "link.txt").symlink_to(outside)
    tree, sources = scan_tree(root)
    entry = next(e for e in tree if e.path == "link.txt")
    assert entry.hash == hash_bytes(b"target content")
    assert entry.size == len(b"target content")
    assert sources["link.txt"] == root / "link.txt"


@posix_only
def test_symlink_to_folder_is_followed(tmp_path: Path) -> None:
    target = _make(tmp_path / "target", {"x": b"x"})
    root = _make(tmp_path / "d", {"y": b"y"})
    (root / "sub").symlink_to(target)
    assert [e.path for e in scan_tree(root)[0]] == ["sub/x", "y"]


@posix_only
def test_broken_symlink_is_an_error(tmp_path: Path) -> None:
    root = _make(tmp_path / "d", {"ok": b"ok"})
    (root / "sub").mkdir()
    (root / "sub" / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(InvalidInput, match="broken symbolic link") as info:
        scan_tree(root)
    assert str(root / "sub" / "dangling") in str(info.value)


@posix_only
def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    root = _make(tmp_path / "d", {"sub/x": b"x"})
    (root / "sub" / "up").symlink_to(root)
    with pytest.raises(InvalidInput, match="own parent"):
        scan_tree(root)


@posix_only
def test_fifo_is_an_error_not_skipped(tmp_path: Path) -> None:
    root = _make(tmp_path / "d", {"ok": b"ok"})
    os.mkfifo(root / "pipe")
    with pytest.raises(InvalidInput, match="not a regular file"):
        scan_tree(root)


@posix_only
def test_backslash_in_name_is_an_error(tmp_path: Path) -> None:
    root = _make(tmp_path / "d", {"a\\b": b"x"})
    with pytest.raises(InvalidInput, match="backslash"):
        scan_tree(root)


# -- storing, reading, checking out ----------------------------------------------------------------


def test_put_tree_and_checkout_reproduce_bytes(store: LocalObjectStore, tmp_path: Path) -> None:
    root = _make(tmp_path / "data", FILES)
    info = put_tree(store, root)
    tree = read_tree(store, info.hash)
    assert info.hash == tree.hash == scan_tree(root)[0].hash
    assert info.size == len(tree.to_bytes())
    assert all(store.exists(e.hash) for e in tree)
    # dup1 and z/dup2 share one object.
    assert len(set(store.iter_hashes())) == len(set(FILES.values())) + 1

    dest = tmp_path / "restored"
    checkout_tree(store, info.hash, dest)
    assert _read_all(dest) == FILES


def test_put_tree_twice_stores_nothing_new(store: LocalObjectStore, tmp_path: Path) -> None:
    root = _make(tmp_path / "data", FILES)
    first = put_tree(store, root)
    before = {h: store.path_of(h).stat().st_mtime_ns for h in store.iter_hashes()}
    assert put_tree(store, root) == first
    assert {h: store.path_of(h).stat().st_mtime_ns for h in store.iter_hashes()} == before


def test_put_tree_progress_adds_up(store: LocalObjectStore, tmp_path: Path) -> None:
    root = _make(tmp_path / "data", FILES)
    seen: list[int] = []
    put_tree(store, root, progress=seen.append)
    assert sum(seen) == sum(len(d) for d in FILES.values())
    seen.clear()
    put_tree(store, root, progress=seen.append)  # everything present: reported at once
    assert sum(seen) == sum(len(d) for d in FILES.values())


def test_store_tree_after_file_changed_refuses(store: LocalObjectStore, tmp_path: Path) -> None:
    root = _make(tmp_path / "data", {"a": b"before", "b": b"stable"})
    tree, sources = scan_tree(root)
    (root / "a").write_bytes(b"after!")
    with pytest.raises(InvalidState, match="changed while it was being stored"):
        store_tree(store, tree, sources)
    assert not store.exists(tree.hash)  # no tree promising a file it does not have


@posix_only
def test_checkout_restores_exec_bit(store: LocalObjectStore, tmp_path: Path) -> None:
    root = _make(tmp_path / "d", {"run.sh": b"#!/bin/sh\necho hi\n", "data": b"x"})
    os.chmod(root / "run.sh", 0o755)
    info = put_tree(store, root)
    dest = tmp_path / "out"
    checkout_tree(store, info.hash, dest)
    assert os.access(dest / "run.sh", os.X_OK)
    assert not stat.S_IMODE((dest / "data").stat().st_mode) & 0o111
    # Checked-out files are the user's: writable, unlike the cached objects.
    assert stat.S_IMODE((dest / "data").stat().st_mode) & 0o200


def test_checkout_replaces_changed_files_and_keeps_others(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    info = put_tree(store, _make(tmp_path / "d", {"a": b"a", "sub/b": b"b"}))
    dest = _make(tmp_path / "out", {"a": b"edited", "extra": b"mine"})
    checkout_tree(store, info.hash, dest)
    assert _read_all(dest) == {"a": b"a", "sub/b": b"b", "extra": b"mine"}
    assert not [p for p in dest.rglob("*") if "mltrail-tmp" in p.name]


def test_checkout_refuses_when_a_file_blocks_a_folder(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    info = put_tree(store, _make(tmp_path / "d", {"sub/b": b"b"}))
    dest = _make(tmp_path / "out", {"sub": b"a file where a folder goes"})
    with pytest.raises(InvalidInput, match="cannot create folder"):
        checkout_tree(store, info.hash, dest)


def test_checkout_refuses_when_a_folder_blocks_a_file(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    info = put_tree(store, _make(tmp_path / "d", {"a": b"a"}))
    dest = tmp_path / "out"
    (dest / "a").mkdir(parents=True)
    with pytest.raises(InvalidInput, match="a folder is in the way"):
        checkout_tree(store, info.hash, dest)


def _malicious_tree(store: LocalObjectStore, path: str) -> str:
    content = store.put_bytes(b"pwned").hash
    doc = {"mltrail_tree": 1, "entries": [[path, content, 5, 420]]}
    return store.put_bytes(json.dumps(doc, separators=(",", ":")).encode()).hash


@pytest.mark.parametrize("path", ["../evil", "a/../../evil", "/tmp/evil", "..\\evil", "a//b"])
def test_malicious_tree_is_refused_and_writes_nothing(
    store: LocalObjectStore, tmp_path: Path, path: str
) -> None:
    h = _malicious_tree(store, path)
    dest = tmp_path / "work" / "dest"
    with pytest.raises(InvalidInput, match="not a valid tree"):
        checkout_tree(store, h, dest)
    with pytest.raises(InvalidInput):
        read_tree(store, h)
    assert not (tmp_path / "work").exists()
    assert not (tmp_path / "evil").exists()


@posix_only
def test_checkout_refuses_symlinked_folder_leading_outside(
    store: LocalObjectStore, tmp_path: Path
) -> None:
    info = put_tree(store, _make(tmp_path / "d", {"sub/file": b"x"}))
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "sub").symlink_to(outside)
    with pytest.raises(InvalidInput, match="outside"):
        checkout_tree(store, info.hash, dest)
    assert list(outside.iterdir()) == []


def test_read_tree_errors(store: LocalObjectStore) -> None:
    not_a_tree = store.put_bytes(b"just some bytes").hash
    with pytest.raises(InvalidInput, match=f"object {not_a_tree} is not a valid tree"):
        read_tree(store, not_a_tree)
    with pytest.raises(NotFound):
        read_tree(store, hash_bytes(b"absent"))
    with pytest.raises(InvalidInput):
        read_tree(store, "../../etc/passwd")


def test_damaged_tree_object_is_an_integrity_error(store: LocalObjectStore, tmp_path: Path) -> None:
    info = put_tree(store, _make(tmp_path / "d", {"a": b"a"}))
    path = store.path_of(info.hash)
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes().replace(b'"a"', b'"b"'))
    with pytest.raises(IntegrityError):
        read_tree(store, info.hash)


def test_checkout_of_damaged_file_object_fails(store: LocalObjectStore, tmp_path: Path) -> None:
    info = put_tree(store, _make(tmp_path / "d", {"a": b"good"}))
    h = hash_bytes(b"good")
    os.chmod(store.path_of(h), 0o644)
    store.path_of(h).write_bytes(b"evil")
    with pytest.raises(IntegrityError):
        checkout_tree(store, info.hash, tmp_path / "out")
    assert not (tmp_path / "out" / "a").exists()


def test_many_files(store: LocalObjectStore, tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i}": os.urandom(64) for i in range(500)}
    root = _make(tmp_path / "many", files)
    info = put_tree(store, root)
    checkout_tree(store, info.hash, tmp_path / "out")
    assert _read_all(tmp_path / "out") == files


def test_file_changing_during_scan_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _make(tmp_path / "d", {"log.txt": b"line 1\n"})
    real_hash_fd = hashing.hash_fd

    def hash_while_appending(fd: int, path: str, size: int, threads: int) -> str:
        result = real_hash_fd(fd, path, size, threads)
        with open(path, "ab") as f:  # a writer appends while we hash
            f.write(b"line 2\n")
        return result

    monkeypatch.setattr(hashing, "hash_fd", hash_while_appending)
    with pytest.raises(InvalidState, match="changed while it was being hashed"):
        scan_tree(root, workers=1)


def test_very_deep_folders(store: LocalObjectStore, tmp_path: Path) -> None:
    # Deeper than Python's recursion limit.
    rel = "/".join(["d"] * 1100) + "/leaf"
    root = folder = tmp_path / "deep"
    root.mkdir()
    for _ in range(1100):  # mkdir(parents=True) itself recurses
        folder = folder / "d"
        folder.mkdir()
    (folder / "leaf").write_bytes(b"bottom")
    try:
        tree, sources = scan_tree(root)
        assert [e.path for e in tree] == [rel]
        info = store_tree(store, tree, sources)
        checkout_tree(store, info.hash, tmp_path / "out")
        assert (tmp_path / "out" / rel).read_bytes() == b"bottom"
    finally:
        # pytest's own clean-up (shutil.rmtree) recurses and would fail on these.
        for top in (root, tmp_path / "out"):
            _remove_iteratively(top)


def _remove_iteratively(top: Path) -> None:
    if not top.exists():
        return
    stack, folders = [str(top)], []
    while stack:
        folder = stack.pop()
        folders.append(folder)
        with os.scandir(folder) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    os.unlink(entry.path)
    for folder in reversed(folders):
        os.rmdir(folder)


def test_checkout_progress_adds_up(store: LocalObjectStore, tmp_path: Path) -> None:
    info = put_tree(store, _make(tmp_path / "d", FILES))
    seen: list[int] = []
    checkout_tree(store, info.hash, tmp_path / "out", progress=seen.append)
    assert sum(seen) == sum(len(d) for d in FILES.values())
    assert len(seen) == len(FILES)
