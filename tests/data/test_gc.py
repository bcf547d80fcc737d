"""`data gc`: what each scope keeps, the grace period, dry runs, damaged listings."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.data.gc import gc
from mltrail.data.pointer import read_pointer
from mltrail.entities import DatasetRef
from mltrail.errors import IntegrityError, InvalidInput
from mltrail.objects import LocalObjectStore, hash_bytes, read_tree
from mltrail.tracking.client import MltrailClient
from tests.cli.conftest import run_cli
from tests.data import git, project, settle, write

__all__ = ["project"]


def _store(root: Path) -> LocalObjectStore:
    return LocalObjectStore(root / ".mltrail" / "objects")


def _age(root: Path) -> None:
    """Date every cached object an hour back, past the grace period."""
    then = time.time() - 3600
    store = _store(root)
    for h in store.iter_hashes():
        os.utime(store.path_of(h), (then, then))


def _objects(root: Path, pointer: Path) -> set[str]:
    p = read_pointer(pointer)
    if p.kind == "file":
        return {p.hash}
    return {p.hash} | {e.hash for e in read_tree(_store(root), p.hash)}


def _two_versions(root: Path) -> tuple[set[str], set[str]]:
    """Commit v1 of data/imgs, then add (not commit) v2; return the objects of each."""
    git(root, "init", "-q")
    for i in range(4):
        write(root / "data/imgs" / f"{i}.bin", f"v1-{i}")
    settle(root / "data")
    data.add(["data/imgs"])
    v1 = _objects(root, root / "data/imgs.trail")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "v1")
    for i in range(2):
        write(root / "data/imgs" / f"{i}.bin", f"v2-{i}")
    settle(root / "data")
    data.add(["data/imgs"])
    v2 = _objects(root, root / "data/imgs.trail")
    return v1, v2


def test_workspace_scope_removes_old_versions(project: Path):
    v1, v2 = _two_versions(project)
    only_v1 = v1 - v2
    assert len(only_v1) == 3  # the old tree and two old files
    fresh = gc(["workspace"])
    assert (fresh.removed, fresh.recent) == (0, 3)  # inside the grace period: kept
    _age(project)
    dry = gc(dry_run=True)
    assert (dry.removed, dry.dry_run) == (3, True)
    assert _store(project).missing(only_v1) == set()
    done = gc()
    assert done.removed == 3 and done.removed_bytes > 0
    assert _store(project).missing(v1 | v2) == only_v1
    assert [s.state for s in data.status()] == ["unchanged"]


def test_all_commits_keeps_committed_versions(project: Path):
    v1, v2 = _two_versions(project)
    _age(project)
    assert gc(["all-commits"]).removed == 0
    git(project, "checkout", "-q", "-b", "other")
    git(project, "commit", "-qam", "v2")  # v2 on a branch: still referenced from main's past
    assert gc(["all-commits"]).removed == 0
    assert gc(["workspace"]).removed == len(v1 - v2)


def test_all_runs_keeps_logged_inputs_and_artifacts_always_stay(project: Path):
    v1, v2 = _two_versions(project)
    store = _store(project)
    tree_v1 = next(h for h in v1 - v2 if _is_tree(store, h))
    client = MltrailClient()
    run = client.create_run()
    client.log_artifact(run.info.run_id, write(project / "model.txt", "weights"))
    client.store.log_run_datasets(
        run.info.run_id, "input", [DatasetRef("data/imgs", tree_v1, "dir", 8, 4)]
    )
    client.close()
    _age(project)
    assert gc(["all-runs"]).removed == 0
    assert gc(["workspace"]).removed == len(v1 - v2)
    # The artifact stays whatever the scope.
    assert store.exists(hash_bytes(b"weights"))


def test_registered_model_versions_always_stay(project: Path):
    client = MltrailClient()
    run = client.create_run().info.run_id
    folder = project / "m"
    write(folder / "MLmodel", "flavors: {python_function: {loader_module: x}}\n")
    write(folder / "model.pkl", "weights")
    client.log_artifacts(run, folder, "model")
    version = client.register_model(f"runs:/{run}/model", "clf")
    client.close()
    _age(project)
    gc(["workspace"])
    store = _store(project)
    assert store.exists(version.tree_hash)
    assert {e.hash for e in read_tree(store, version.tree_hash)} <= set(store.iter_hashes())


def _is_tree(store: LocalObjectStore, h: str) -> bool:
    try:
        read_tree(store, h)
    except InvalidInput:
        return False
    return True


def test_damaged_listing_stops_gc(project: Path):
    _two_versions(project)
    _age(project)
    tree = read_pointer(project / "data/imgs.trail").hash
    path = _store(project).path_of(tree)
    path.chmod(0o644)
    path.write_bytes(b"not a tree")
    before = set(_store(project).iter_hashes())
    with pytest.raises(IntegrityError, match="gc stopped, nothing was removed"):
        gc()
    assert set(_store(project).iter_hashes()) == before


def test_unknown_scope(project: Path):
    with pytest.raises(InvalidInput, match="unknown gc scope 'everything'"):
        gc(["everything"])


def test_gc_cli(project: Path):
    _two_versions(project)
    _age(project)
    refused = run_cli("data", "gc", cwd=project)
    assert refused.returncode == 1
    assert "gc would remove 3 objects" in refused.stderr and "--force" in refused.stderr
    dry = run_cli("data", "gc", "--dry-run", "-k", "all-commits", cwd=project)
    assert dry.stdout.startswith("Nothing to remove; kept 8 referenced by workspace, all-commits")
    out = run_cli("data", "gc", "--force", "--json", cwd=project)
    assert json.loads(out.stdout)["removed"] == 3
    again = run_cli("data", "gc", cwd=project)
    assert again.returncode == 0 and again.stdout.startswith("Nothing to remove; kept 5")


def test_gc_and_doctor_handle_temp_files_of_killed_commands(project: Path):
    from click.testing import CliRunner

    from mltrail.cli import cli
    from mltrail.objects.tempfiles import temp_filename
    from tests.test_objects_tempfiles import _dead_name

    write(project / "data/a.txt", "a")
    data.add(["data/a.txt"])
    tmp = _store(project).root / "tmp"
    (tmp / _dead_name()).write_bytes(b"x" * 1000)
    (tmp / temp_filename()).write_bytes(b"a live writer's")  # this process is alive
    doctor = CliRunner().invoke(cli, ["doctor"])
    assert "temp files: 1 left by killed commands (1000 B)" in doctor.output
    assert "mltrail data gc" in doctor.output
    assert gc(dry_run=True).temp_files == 1 and len(list(tmp.iterdir())) == 2
    done = CliRunner().invoke(cli, ["data", "gc"])
    assert done.exit_code == 0, done.output
    assert "Removed 1 temp file (1000 B) left by killed commands." in done.output
    assert len(list(tmp.iterdir())) == 1
