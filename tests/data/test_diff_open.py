"""`data diff` between Git revisions and `mltrail.data.open` of a version without checkout."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.data import remotes
from mltrail.data.pointer import read_pointer
from mltrail.errors import IntegrityError, InvalidInput, InvalidState, NotFound
from mltrail.objects import LocalObjectStore
from tests.cli.conftest import run_cli
from tests.data import git, project, settle, write

__all__ = ["project"]


def _commit(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


@pytest.fixture
def history(project: Path) -> Path:
    """Two committed versions: v1 (tag) and v2; a third version added but not committed."""
    git(project, "init", "-q")
    write(project / "data/table.csv", "a,b\n1,2\n")
    for name in ("x", "y", "z"):
        write(project / "data/imgs" / name, name * 10)
    settle(project / "data")
    data.add(["data/table.csv", "data/imgs"])
    _commit(project, "v1")
    git(project, "tag", "v1")
    write(project / "data/table.csv", "a,b\n1,3\n")
    (project / "data/imgs/x").unlink()
    write(project / "data/imgs/y", "changed")
    write(project / "data/imgs/w", "new")
    write(project / "data/new.bin", b"\0\1")
    settle(project / "data")
    data.add(["data/table.csv", "data/imgs", "data/new.bin"])
    _commit(project, "v2")
    return project


def test_diff_between_revisions(history: Path):
    changes = {d.path: d for d in data.diff("v1", "HEAD")}
    assert sorted(changes) == ["data/imgs", "data/new.bin", "data/table.csv"]
    assert changes["data/new.bin"].change == "added"
    assert changes["data/table.csv"].change == "modified"
    imgs = changes["data/imgs"]
    assert (imgs.added, imgs.modified, imgs.deleted) == (["w"], ["y"], ["x"])
    assert data.diff("HEAD") == []  # the working tree has the pointers of HEAD
    back = {d.path: d.change for d in data.diff("HEAD", "v1")}
    assert back == {
        "data/imgs": "modified",
        "data/new.bin": "deleted",
        "data/table.csv": "modified",
    }


def test_diff_with_working_tree_and_unknown_files(history: Path):
    (history / "data/new.bin.trail").unlink()
    assert [(d.path, d.change) for d in data.diff()] == [("data/new.bin", "deleted")]
    # Without the old tree object in the cache, files are reported unknown rather than guessed.
    old = data.diff("v1", "HEAD")
    tree = next(d for d in old if d.path == "data/imgs").old.hash
    LocalObjectStore(history / ".mltrail/objects").delete(tree)
    imgs = next(d for d in data.diff("v1", "HEAD") if d.path == "data/imgs")
    assert not imgs.files_known and imgs.added == []


def test_diff_cli(history: Path):
    out = run_cli("data", "diff", "v1", "HEAD", cwd=history).stdout
    assert "  modified: data/imgs (" in out and "1 added, 1 modified, 1 deleted" in out
    assert "      new:      data/imgs/w" in out
    assert "  added:    data/new.bin (" in out
    parsed = json.loads(run_cli("data", "diff", "v1", "--json", cwd=history).stdout)
    assert {d["path"] for d in parsed} == {"data/imgs", "data/new.bin", "data/table.csv"}
    assert (
        "No dataset changed between HEAD and the working tree."
        in run_cli("data", "diff", cwd=history).stdout
    )
    bad = run_cli("data", "diff", "no-such-rev", cwd=history)
    assert bad.returncode == 1
    assert "error: unknown Git revision 'no-such-rev'" in bad.stderr


def test_diff_outsidegit(project: Path):
    with pytest.raises(InvalidState, match="not in a Git repository"):
        data.diff("HEAD")


def test_open_versions(history: Path):
    with data.open("data/table.csv", rev="v1", mode="r") as f:
        assert f.read() == "a,b\n1,2\n"
    with data.open("data/table.csv") as f:
        assert f.read() == b"a,b\n1,3\n"
    with data.open(history / "data/imgs/x", rev="v1") as f:
        assert f.read() == b"x" * 10
    with pytest.raises(NotFound, match=r"data/imgs/x: no file 'x' in that version"):
        data.open("data/imgs/x")
    with pytest.raises(InvalidInput, match="is a folder; open a file inside it"):
        data.open("data/imgs", rev="v1")
    with pytest.raises(NotFound, match=r"data/new\.bin is not tracked at revision v1"):
        data.open("data/new.bin", rev="v1")
    with pytest.raises(InvalidInput, match="mode 'w' is not supported"):
        data.open("data/table.csv", mode="w")
    with pytest.raises(InvalidInput, match="outside the project"):
        data.open("/etc/passwd")


def test_open_from_remote_and_damage(history: Path, tmp_path_factory):
    remote = tmp_path_factory.mktemp("remote")
    remotes.add_remote(history / ".mltrail", "origin", str(remote))
    data.push()
    shutil.rmtree(history / ".mltrail/objects")
    with data.open("data/imgs/w") as f:  # from the remote, as the cache is empty
        assert f.read() == b"new"
    store = LocalObjectStore(remote)
    h = read_pointer(history / "data/table.csv.trail").hash
    store.path_of(h).chmod(0o644)
    store.path_of(h).write_bytes(b"a,b\n9,9\n")
    with pytest.raises(IntegrityError), data.open("data/table.csv") as f:
        f.read()
    with pytest.raises(NotFound, match=r"data/table.csv at v1 is in neither the local cache"):
        data.open("data/table.csv", rev="v1")
