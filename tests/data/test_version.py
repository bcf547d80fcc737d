"""version_of: which version of a tracked dataset a run records, in every workspace state."""

from __future__ import annotations

from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.data.pointer import read_pointer
from mltrail.data.version import version_of
from mltrail.errors import InvalidInput, StoreNotFound
from mltrail.objects import hashing
from tests.data import project, settle, write

__all__ = ["project"]


def _dataset(root: Path) -> tuple[Path, Path]:
    csv = write(root / "data" / "customers.csv", "id,name\n1,ann\n")
    images = root / "data" / "images"
    for i in range(3):
        write(images / f"{i}.png", bytes([i]) * 100)
    settle(csv, images)
    data.add(["data/customers.csv", "data/images"])
    return csv, images


def test_unchanged_file_and_folder_give_the_pointer_version(project: Path, monkeypatch):
    _dataset(project)
    calls = []
    real = hashing.hash_fd
    monkeypatch.setattr(hashing, "hash_fd", lambda *a, **k: calls.append(a) or real(*a, **k))
    v = version_of("data/customers.csv")
    p = read_pointer(project / "data" / "customers.csv.trail")
    assert (v.path, v.kind, v.hash, v.size, v.nfiles) == (
        "data/customers.csv",
        "file",
        p.hash,
        14,
        None,
    )
    assert (v.workspace, v.recorded, v.stored, v.warning()) == ("unchanged", True, True, None)
    d = version_of(project / "data" / "images")
    assert (d.path, d.kind, d.nfiles, d.size) == ("data/images", "dir", 3, 300)
    assert d.hash == read_pointer(project / "data" / "images.trail").hash
    assert d.recorded and d.workspace == "unchanged"
    # The stat cache knew every file: nothing was hashed again.
    assert calls == []
    ref = d.ref("training")
    assert (ref.path, ref.hash, ref.kind, ref.size, ref.nfiles, ref.context) == (
        "data/images",
        d.hash,
        "dir",
        300,
        3,
        "training",
    )


def test_a_pointer_path_names_its_dataset(project: Path):
    _dataset(project)
    assert version_of("data/customers.csv.trail").path == "data/customers.csv"


def test_from_a_subfolder(project: Path, monkeypatch):
    _dataset(project)
    monkeypatch.chdir(project / "data")
    assert version_of("customers.csv").path == "data/customers.csv"


def test_modified_file_gives_the_version_on_disk_not_recorded(project: Path):
    csv, _ = _dataset(project)
    pointer = read_pointer(project / "data" / "customers.csv.trail")
    csv.write_text("id,name\n1,ann\n2,bob\n")
    v = version_of("data/customers.csv")
    assert v.workspace == "modified"
    assert (v.recorded, v.stored) == (False, False)
    assert v.hash == hashing.hash_bytes(csv.read_bytes()) != pointer.hash
    assert v.size == csv.stat().st_size
    assert v.pointer == pointer
    message = v.warning()
    assert message is not None
    assert message.startswith(
        f"data/customers.csv differs from its pointer ({pointer.hash[:12]}); logged the version "
        f"on disk ({v.hash[:12]}), which is not stored"
    )
    assert "mltrail data add data/customers.csv" in message


def test_modified_to_a_stored_version_points_at_checkout(project: Path):
    # As after `git checkout` of an older pointer without `mltrail data checkout`.
    csv, _ = _dataset(project)
    ptr = project / "data" / "customers.csv.trail"
    old = ptr.read_text()
    csv.write_text("v2\n")
    data.add(["data/customers.csv"])
    ptr.write_text(old)
    v = version_of("data/customers.csv")
    assert (v.workspace, v.recorded, v.stored) == ("modified", False, True)
    assert "mltrail data checkout data/customers.csv" in (v.warning() or "")


def test_modified_folder(project: Path):
    _, images = _dataset(project)
    write(images / "new.png", b"new")
    v = version_of("data/images")
    assert (v.kind, v.nfiles, v.size, v.workspace, v.recorded) == ("dir", 4, 303, "modified", False)
    assert v.hash != v.pointer.hash


def test_a_file_where_a_folder_was_tracked(project: Path):
    _, images = _dataset(project)
    for f in images.iterdir():
        f.unlink()
    images.rmdir()
    images.write_text("now a file")
    v = version_of("data/images")
    assert (v.kind, v.nfiles, v.workspace, v.recorded) == ("file", None, "modified", False)


def test_missing_gives_the_pointer_version(project: Path):
    csv, _ = _dataset(project)
    csv.unlink()
    v = version_of("data/customers.csv")
    assert (v.workspace, v.recorded, v.stored) == ("missing", True, True)
    assert v.hash == read_pointer(project / "data" / "customers.csv.trail").hash


def test_untracked_file_names_the_add_command(project: Path):
    write(project / "data" / "other.csv", "x")
    with pytest.raises(
        InvalidInput, match=r"data/other.csv is not tracked \(no data/other.csv.trail\)"
    ) as err:
        version_of("data/other.csv")
    assert err.value.hint == "Track it first: mltrail data add data/other.csv"


def test_unknown_path(project: Path):
    with pytest.raises(InvalidInput, match=r"data/nope\.csv is not tracked and does not exist"):
        version_of("data/nope.csv")


def test_file_inside_a_tracked_folder_names_the_folder(project: Path):
    _dataset(project)
    with pytest.raises(
        InvalidInput, match=r"data/images/0\.png is inside data/images, which is tracked"
    ) as err:
        version_of("data/images/0.png")
    assert err.value.hint == "Use the dataset's path: data/images"


def test_corrupt_pointer_is_named(project: Path):
    _dataset(project)
    (project / "data" / "customers.csv.trail").write_text("version: 1\nkind: file\nhash: nope\n")
    with pytest.raises(InvalidInput, match=r"pointer file .*customers.csv.trail: ") as err:
        version_of("data/customers.csv")
    assert "git checkout" in (err.value.hint or "")


def test_path_outside_the_project(project: Path, tmp_path_factory):
    outside = tmp_path_factory.mktemp("elsewhere") / "x.csv"
    outside.write_text("x")
    with pytest.raises(InvalidInput, match="is outside the project"):
        version_of(outside)
    with pytest.raises(InvalidInput, match="is outside the project"):
        version_of("../x.csv")


def test_no_project(tmp_path: Path, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    with pytest.raises(StoreNotFound, match=r"no \.mltrail folder"):
        version_of("x.csv")


def test_does_not_take_the_data_lock(project: Path, monkeypatch):
    from mltrail.data.lock import data_lock

    _dataset(project)
    # If version_of took the lock, it would fail after this long instead of reading.
    monkeypatch.setenv("MLTRAIL_LOCK_TIMEOUT", "0.2")
    # Another command holds the lock (say a long `data add`): reading a version does not wait.
    with data_lock(project / ".mltrail"):
        assert version_of("data/customers.csv").recorded
