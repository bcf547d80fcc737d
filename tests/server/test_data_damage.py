"""A damaged object on an `mltrail server` remote leaves out only the dataset that holds it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.data import remotes, transfer
from mltrail.data.pointer import read_pointer
from mltrail.errors import IntegrityError
from mltrail.objects import LocalObjectStore, read_tree
from tests.data import git, project, settle, write

__all__ = ["project"]


def test_pull_from_a_server_checks_out_the_intact_dataset(
    project: Path, live_server: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
):
    write(project / "data/a/1.txt", "a1")
    write(project / "data/a/2.txt", "a2")
    write(project / "data/b.txt", "b")
    settle(project / "data")
    data.add(["data/a", "data/b.txt"])
    remotes.add_remote(project / ".mltrail", "team", live_server)
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v1")
    assert transfer.push().copied == 4
    cache = LocalObjectStore(project / ".mltrail/objects")
    victim = next(e for e in read_tree(cache, read_pointer(project / "data/a.trail").hash))
    on_server = LocalObjectStore(tmp_path / "server" / "objects").path_of(victim.hash)
    on_server.chmod(0o644)
    on_server.write_bytes(b"rotten")
    clone = tmp_path_factory.mktemp("clone") / "c"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    with pytest.raises(IntegrityError) as caught:
        transfer.pull(start=clone)
    err = caught.value
    assert f"damaged on the remote 'team': data/a/{victim.path}" in err.message
    assert live_server in (err.hint or "") and "mltrail data push" in (err.hint or "")
    assert (clone / "data/b.txt").read_text() == "b"
    assert not (clone / "data/a").exists()
    assert err.partial.fetched.copied == 3  # a's listing and its intact file; b.txt
