"""push, fetch and pull between a project and a remote (a folder, or S3 on a local moto server)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import mltrail.data as data
from mltrail.data import remotes, transfer
from mltrail.data.pointer import read_pointer
from mltrail.errors import IntegrityError, NotFound
from mltrail.objects import LocalObjectStore, hash_bytes, read_tree
from tests.data import commit_with_remote, git, git_clone, project, settle, write

__all__ = ["project"]
pytest_plugins = ["tests.s3server"]


def _make_data(root: Path) -> dict[str, bytes]:
    files = {"data/table.csv": b"id,x\n1,2\n"}
    for i in range(12):
        files[f"data/images/{i % 3}/{i}.bin"] = os.urandom(1000 + i)
    for rel, content in files.items():
        write(root / rel, content)
    settle(root / "data")
    return files


def _committed_project(root: Path, remote_url: str, **kw: Any) -> dict[str, bytes]:
    files = _make_data(root)
    data.add(["data/table.csv", "data/images"], start=root)
    commit_with_remote(root, remote_url, **kw)
    return files


def _assert_files(root: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        assert (root / rel).read_bytes() == content, rel


def _remote_store(path: Path) -> LocalObjectStore:
    return LocalObjectStore(path)


def test_push_then_pull_into_a_clone(project: Path, tmp_path_factory: pytest.TempPathFactory):
    remote = tmp_path_factory.mktemp("remote")
    files = _committed_project(project, str(remote))
    pushed = transfer.push()
    assert (pushed.datasets, pushed.copied, pushed.present) == (2, 13 + 1, 0)
    again = transfer.push()
    assert (again.copied, again.present) == (0, 14)
    assert all(_remote_store(remote).verify(h) for h in _remote_store(remote).iter_hashes())

    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    pulled = transfer.pull(start=clone)
    assert (pulled.fetched.copied, pulled.fetched.present) == (14, 0)  # counted as push counts
    assert sorted(r.path for r in pulled.checked_out) == ["data/images", "data/table.csv"]
    _assert_files(clone, files)
    assert [s.state for s in data.status(start=clone)] == ["unchanged", "unchanged"]
    assert transfer.pull(start=clone).fetched.copied == 0


def test_fetch_leaves_the_workspace_alone(project: Path, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    files = _committed_project(project, str(remote))
    transfer.push()
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    transfer.fetch([clone / "data/images"], start=clone)
    assert not (clone / "data" / "images").exists()
    states = {s.path: s.state for s in data.status(start=clone)}
    assert states == {"data/images": "deleted", "data/table.csv": "not in cache"}
    data.checkout([clone / "data/images"], start=clone)
    _assert_files(clone, {k: v for k, v in files.items() if "images" in k})


def test_missing_on_remote_names_dataset_and_file(project: Path, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    _committed_project(project, str(remote))
    transfer.push()
    pointer = read_pointer(project / "data/images.trail")
    tree = read_tree(LocalObjectStore(project / ".mltrail/objects"), pointer.hash)
    lost = next(e for e in tree if e.path == "1/4.bin")
    _remote_store(remote).delete(lost.hash)
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(NotFound) as err:
        transfer.pull(start=clone)
    assert f"data/images/1/4.bin (object {lost.hash[:12]})" in err.value.message
    assert "missing on the remote 'origin'" in err.value.message
    assert "mltrail data push" in err.value.hint
    # The complete dataset was still checked out; the incomplete one was not.
    assert (clone / "data" / "table.csv").exists()
    assert not (clone / "data" / "images").exists()


def test_damaged_object_on_remote_is_never_stored_or_checked_out(project, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    _committed_project(project, str(remote))
    transfer.push()
    h = read_pointer(project / "data/table.csv.trail").hash
    path = _remote_store(remote).path_of(h)
    path.chmod(0o644)
    path.write_bytes(b"id,x\n1,3\n")
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(
        IntegrityError, match=r"damaged on the remote 'origin': data/table.csv"
    ) as e:
        transfer.pull([clone / "data/table.csv"], start=clone)
    # The fix is on the remote: the hint names the remote's file, not the clone's cache.
    assert str(path) in e.value.hint and "mltrail data push" in e.value.hint
    assert not LocalObjectStore(clone / ".mltrail/objects").exists(h)
    assert not (clone / "data" / "table.csv").exists()
    assert not any((clone / ".mltrail/objects/tmp").iterdir())


def test_push_reports_versions_not_in_the_cache(project: Path, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    _committed_project(project, str(remote))
    h = read_pointer(project / "data/table.csv.trail").hash
    LocalObjectStore(project / ".mltrail/objects").delete(h)
    with pytest.raises(NotFound, match=r"missing in the local cache: data/table.csv \(object"):
        transfer.push()
    # Everything else went up.
    assert transfer.push(["data/images"]).copied == 0


def test_damaged_local_object_is_not_pushed(project: Path, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    _committed_project(project, str(remote))
    store = LocalObjectStore(project / ".mltrail/objects")
    tree = read_tree(store, read_pointer(project / "data/images.trail").hash)
    victim = next(iter(tree))
    store.path_of(victim.hash).chmod(0o644)
    store.path_of(victim.hash).write_bytes(b"garbage")
    with pytest.raises(
        IntegrityError, match=f"damaged in the local cache: data/images/{victim.path}"
    ):
        transfer.push(["data/images"])
    remote_store = _remote_store(remote)
    assert not remote_store.exists(victim.hash)
    # The tree goes last, so the remote never announces a folder it cannot deliver.
    assert not remote_store.exists(tree.hash)


def test_no_remote_and_missing_folder(project: Path, tmp_path: Path):
    _make_data(project)
    data.add(["data/table.csv"])
    with pytest.raises(NotFound, match="no default remote"):
        transfer.push()
    remotes.add_remote(project / ".mltrail", "gone", str(tmp_path / "nowhere"))
    with pytest.raises(NotFound, match=r"the folder .*nowhere does not exist"):
        transfer.fetch()
    with pytest.raises(NotFound, match="no remote named 'other'"):
        transfer.push(remote="other")


@pytest.mark.slow
def test_killed_push_leaves_only_whole_objects(project: Path, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    for i in range(3000):
        write(project / "data" / "many" / f"{i:04}.bin", os.urandom(4096))
    settle(project / "data")
    data.add(["data/many"])
    remotes.add_remote(project / ".mltrail", "origin", str(remote))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from mltrail.data.transfer import push; push()"],
        cwd=project,
    )
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if any(p.name != "tmp" for p in remote.iterdir()):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = _remote_store(remote)
    assert all(store.verify(h) for h in store.iter_hashes())
    tree_hash = read_pointer(project / "data/many.trail").hash
    assert not store.exists(tree_hash)
    before = len(list(store.iter_hashes()))
    again = transfer.push()
    assert again.copied == 3001 - before
    assert store.exists(tree_hash)


def test_s3_remote_round_trip(project: Path, tmp_path_factory, s3_endpoint: str, bucket: str):
    files = _committed_project(project, f"s3://{bucket}/team/data", endpoint_url=s3_endpoint)
    assert transfer.push().copied == 14
    assert transfer.push().copied == 0
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    shutil.rmtree(clone / "data" / "images", ignore_errors=True)
    transfer.pull(start=clone)
    _assert_files(clone, files)


def test_a_shared_missing_object_makes_every_dataset_using_it_incomplete(
    project: Path, tmp_path_factory
):
    remote = tmp_path_factory.mktemp("remote")
    write(project / "data/a/shared.txt", "same bytes")
    write(project / "data/b/shared.txt", "same bytes")
    write(project / "data/b/own.txt", "b only")
    write(project / "data/c.txt", "c")
    settle(project / "data")
    data.add(["data/a", "data/b", "data/c.txt"])
    commit_with_remote(project, str(remote))
    store = LocalObjectStore(project / ".mltrail/objects")
    shared = hash_bytes(b"same bytes")
    store.delete(shared)
    with pytest.raises(NotFound) as err:
        transfer.push()
    assert (
        f"missing in the local cache: data/a/shared.txt (object {shared[:12]}), "
        "also data/b/shared.txt"
    ) in err.value.message
    remote_store = _remote_store(remote)
    for name in ("a", "b"):  # neither folder's listing went up without its files
        assert not remote_store.exists(read_pointer(project / f"data/{name}.trail").hash)
    assert remote_store.exists(hash_bytes(b"c"))

    write(project / "data/a/shared.txt", "same bytes")
    store.put_file(project / "data/a/shared.txt")
    transfer.push()
    remote_store.delete(shared)
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(NotFound):
        transfer.pull(start=clone)
    assert (clone / "data/c.txt").read_text() == "c"
    assert not (clone / "data/a").exists() and not (clone / "data/b").exists()


def test_push_all_commits_sends_earlier_versions_a_clone_can_open(project, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    _committed_project(project, str(remote))
    git(project, "tag", "v1")
    write(project / "data/table.csv", b"id,x\n1,2\n2,5\n")
    data.add(["data/table.csv"], start=project)
    git(project, "commit", "-qam", "v2")
    assert transfer.push().datasets == 2  # the workspace's versions only
    clone = git_clone(project, tmp_path_factory.mktemp("clone") / "c")
    with pytest.raises(NotFound), data.open(clone / "data/table.csv", rev="v1", start=clone) as f:
        f.read()
    pushed = transfer.push(all_commits=True)
    assert (pushed.datasets, pushed.copied) == (3, 1)  # + v1's table
    with data.open(clone / "data/table.csv", rev="v1", start=clone) as f:
        assert f.read() == b"id,x\n1,2\n"
