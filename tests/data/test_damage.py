"""Corruption of one object among several datasets: only the datasets holding it are left out.

Real stores throughout: a folder remote, and S3 on the local moto server. The damage is done the
way a disk or a stray script would do it: other bytes under the object's name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import mltrail.data as data
from mltrail.data import transfer
from mltrail.data.pointer import read_pointer
from mltrail.data.problems import MAX_NAMED, Incomplete
from mltrail.errors import IntegrityError, NotFound
from mltrail.objects import LocalObjectStore, read_tree
from mltrail.objects.s3 import S3ObjectStore
from tests.cli.conftest import run_cli
from tests.data import commit_with_remote, git_clone, project, settle, write

__all__ = ["project"]
pytest_plugins = ["tests.s3server"]

#: Files of dataset A (a folder); B is a folder and C a single file, sharing nothing with A.
A_FILES = 25


def _datasets(root: Path, remote_url: str, **kw: Any) -> dict[str, bytes]:
    files = {f"data/a/{i:02}.txt": f"a{i}\n".encode() for i in range(A_FILES)}
    files |= {"data/b/x.txt": b"b x\n", "data/b/y.txt": b"b y\n", "data/c.csv": b"id\n1\n"}
    for rel, content in files.items():
        write(root / rel, content)
    settle(root / "data")
    data.add(["data/a", "data/b", "data/c.csv"], start=root)
    commit_with_remote(root, remote_url, **kw)
    return files


def _entries(root: Path, name: str) -> dict[str, str]:
    """Return ``{file: hash}`` of a folder dataset, from the project's cache."""
    tree = read_tree(LocalObjectStore(root / ".mltrail/objects"), _hash(root, name))
    return {e.path: e.hash for e in tree}


def _hash(root: Path, name: str) -> str:
    return read_pointer(root / f"{name}.trail").hash


def _damage(path: Path, content: bytes = b"rotten\n") -> None:
    path.chmod(0o644)
    path.write_bytes(content)


def _assert_intact(root: Path, files: dict[str, bytes], prefix: str) -> None:
    chosen = {rel: content for rel, content in files.items() if rel.startswith(prefix)}
    assert chosen
    for rel, content in chosen.items():
        assert (root / rel).read_bytes() == content, rel


def test_pull_checks_out_intact_datasets_and_names_the_damaged_file_on_the_remote(
    project: Path, tmp_path_factory: pytest.TempPathFactory
):
    remote = tmp_path_factory.mktemp("remote")
    files = _datasets(project, str(remote))
    transfer.push()
    victim = _entries(project, "data/a")["07.txt"]
    damaged_path = LocalObjectStore(remote).path_of(victim)
    _damage(damaged_path)
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")

    done = run_cli("data", "pull", cwd=clone)
    assert done.returncode == 1, done.stderr
    # B and C are complete on the remote: checked out, intact; A is left out whole.
    _assert_intact(clone, files, "data/b/")
    _assert_intact(clone, files, "data/c.csv")
    assert not (clone / "data/a").exists()
    assert "Checked out data/b: 2 files" in done.stdout
    assert "Checked out data/c.csv: 1 file" in done.stdout
    err = done.stderr
    assert "Traceback" not in err
    assert err.startswith("error: fetched ")
    assert "checked out 2 of 3 datasets; 1 not checked out (data/a)" in err
    assert f"damaged on the remote 'origin': data/a/07.txt (object {victim[:12]})" in err
    # The hint points at the remote's copy and at a push from an intact machine, not at the
    # clone's own cache.
    hint = next(line for line in err.splitlines() if line.startswith("hint: "))
    assert str(damaged_path) in hint and "mltrail data push" in hint
    assert ".mltrail/objects" not in hint.replace(str(damaged_path), "")
    # Nothing damaged was stored, and every other object of A did arrive.
    cache = LocalObjectStore(clone / ".mltrail/objects")
    assert not cache.exists(victim)
    assert not cache.missing(h for p, h in _entries(project, "data/a").items() if p != "07.txt")

    # Repaired the way the hint says: delete the remote's copy, push from the intact machine.
    damaged_path.unlink()
    assert transfer.push().copied == 1
    assert run_cli("data", "pull", cwd=clone).returncode == 0
    _assert_intact(clone, files, "data/a/")


def test_every_damaged_and_missing_object_is_named_up_to_a_cap(
    project: Path, tmp_path_factory: pytest.TempPathFactory
):
    remote = tmp_path_factory.mktemp("remote")
    _datasets(project, str(remote))
    transfer.push()
    store = LocalObjectStore(remote)
    entries = _entries(project, "data/a")
    for name in sorted(entries)[: MAX_NAMED + 1]:
        _damage(store.path_of(entries[name]))
    store.delete(entries[sorted(entries)[-1]])
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(IntegrityError) as caught:
        transfer.pull(start=clone)
    err = caught.value
    assert isinstance(err, Incomplete)
    assert len(err.problems) == MAX_NAMED + 2
    assert sum(m.damaged for m in err.problems) == MAX_NAMED + 1
    lines = err.message.splitlines()
    assert len(lines) == 1 + MAX_NAMED + 1
    assert lines[-1] == "  … and 2 more"
    # Damaged objects come first, then missing ones; each kind has its own hint.
    assert "The remote's copies are damaged" in err.hint and "The remote lacks them" in err.hint
    assert [r.path for r in err.partial.checked_out] == ["data/b", "data/c.csv"]
    assert sorted(m.file for m in err.partial.fetched.damaged) == sorted(entries)[: MAX_NAMED + 1]
    assert [m.file for m in err.partial.fetched.missing] == [sorted(entries)[-1]]


def test_a_damaged_object_shared_by_two_datasets_names_both(
    project: Path, tmp_path_factory: pytest.TempPathFactory
):
    remote = tmp_path_factory.mktemp("remote")
    write(project / "data/a/same.txt", "shared")
    write(project / "data/b/same.txt", "shared")
    write(project / "data/c.txt", "c")
    settle(project / "data")
    data.add(["data/a", "data/b", "data/c.txt"])
    commit_with_remote(project, str(remote))
    transfer.push()
    shared = _entries(project, "data/a")["same.txt"]
    _damage(LocalObjectStore(remote).path_of(shared))
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(IntegrityError) as caught:
        transfer.fetch(start=clone)
    err = caught.value
    assert "data/a/same.txt (object" in err.message and "also data/b/same.txt" in err.message
    assert "2 of 3 datasets are incomplete in the local cache (data/a, data/b)" in err.message
    assert err.partial.incomplete == ["data/a", "data/b"]
    data.checkout([clone / "data/c.txt"], start=clone)
    assert (clone / "data/c.txt").read_text() == "c"


def test_a_damaged_folder_listing_on_the_remote_leaves_out_that_folder(
    project: Path, tmp_path_factory: pytest.TempPathFactory
):
    remote = tmp_path_factory.mktemp("remote")
    files = _datasets(project, str(remote))
    transfer.push()
    listing = _hash(project, "data/a")
    _damage(LocalObjectStore(remote).path_of(listing), b"not a listing")
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(IntegrityError) as caught:
        transfer.pull(start=clone)
    assert f"data/a (folder listing, object {listing[:12]})" in caught.value.message
    _assert_intact(clone, files, "data/b/")
    assert not (clone / "data/a").exists()


def test_push_sends_every_intact_dataset_past_damage_in_the_local_cache(
    project: Path, tmp_path_factory: pytest.TempPathFactory
):
    remote = tmp_path_factory.mktemp("remote")
    files = _datasets(project, str(remote))
    cache = LocalObjectStore(project / ".mltrail/objects")
    entries = _entries(project, "data/a")
    bad = [entries["03.txt"], entries["11.txt"]]
    for h in bad:
        _damage(cache.path_of(h))

    done = run_cli("data", "push", cwd=project)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout.startswith("Pushed ")
    err = done.stderr
    assert "1 of 3 datasets is not complete there (data/a)" in err
    for name, h in (("03.txt", bad[0]), ("11.txt", bad[1])):
        assert f"damaged in the local cache: data/a/{name} (object {h[:12]})" in err
    hint = next(line for line in err.splitlines() if line.startswith("hint: "))
    assert str(cache.path_of(bad[0])) in hint
    assert "mltrail data fetch" in hint and "mltrail data add" in hint
    store = LocalObjectStore(remote)
    # Everything intact went up, B's and C's listings and files included; A's listing did not,
    # so the remote never announces a folder it cannot deliver.
    assert not store.exists(_hash(project, "data/a"))
    assert all(not store.exists(h) for h in bad)
    assert not store.missing(h for h in entries.values() if h not in bad)
    assert not store.missing([_hash(project, "data/b"), _hash(project, "data/c.csv")])
    assert all(store.verify(h) for h in store.iter_hashes())

    # Repaired the way the hint says: delete the damaged copies, add the intact workspace again.
    for h in bad:
        cache.path_of(h).unlink()
    data.add(["data/a"])
    assert transfer.push().copied == 3  # the two files and A's listing
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    transfer.pull(start=clone)
    _assert_intact(clone, files, "data/")


def test_pull_with_damage_in_the_local_cache_checks_out_the_rest(
    project: Path, tmp_path_factory: pytest.TempPathFactory
):
    remote = tmp_path_factory.mktemp("remote")
    files = _datasets(project, str(remote))
    transfer.push()
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    transfer.fetch(start=clone)
    victim = _entries(project, "data/b")["x.txt"]
    cache = LocalObjectStore(clone / ".mltrail/objects")
    _damage(cache.path_of(victim))
    with pytest.raises(IntegrityError) as caught:
        transfer.pull(start=clone)
    err = caught.value
    assert f"damaged in the local cache: data/b/x.txt (object {victim[:12]})" in err.message
    assert str(cache.path_of(victim)) in (err.hint or "")
    _assert_intact(clone, files, "data/a/")
    _assert_intact(clone, files, "data/c.csv")
    assert not (clone / "data/b/x.txt").exists()
    assert (clone / "data/b/y.txt").read_bytes() == files["data/b/y.txt"]


def test_checkout_leaves_out_only_the_dataset_missing_an_object(project: Path, tmp_path: Path):
    files = _datasets(project, str(tmp_path / "unused"))
    cache = LocalObjectStore(project / ".mltrail/objects")
    gone = _entries(project, "data/b")["y.txt"]
    cache.delete(gone)
    for rel in list(files):
        (project / rel).unlink()
    with pytest.raises(NotFound) as caught:
        data.checkout()
    err = caught.value
    assert "missing in the local cache: data/b/y.txt" in err.message
    assert "mltrail data fetch" in (err.hint or "")
    assert sorted(r.path for r in err.partial) == ["data/a", "data/c.csv"]
    _assert_intact(project, files, "data/a/")
    assert not (project / "data/b/x.txt").exists()  # the incomplete dataset is left alone


def test_s3_remote_damaged_object_leaves_out_only_its_dataset(
    project: Path, tmp_path_factory, s3_endpoint: str, bucket: str, s3_client: Any
):
    files = _datasets(project, f"s3://{bucket}/team", endpoint_url=s3_endpoint)
    transfer.push()
    victim = _entries(project, "data/a")["05.txt"]
    key = S3ObjectStore(bucket, "team", client=s3_client).key_of(victim)
    s3_client.put_object(Bucket=bucket, Key=key, Body=b"rotten")
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(IntegrityError) as caught:
        transfer.pull(start=clone)
    err = caught.value
    assert f"damaged on the remote 'origin': data/a/05.txt (object {victim[:12]})" in err.message
    assert key in (err.hint or "") and repr(bucket) in (err.hint or "")
    _assert_intact(clone, files, "data/b/")
    _assert_intact(clone, files, "data/c.csv")
    assert not (clone / "data/a").exists()
