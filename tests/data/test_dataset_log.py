"""dataset_log: a dataset's versions from Git history and from the runs that recorded them."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

import mltrail.data as data
from mltrail.data.pointer import read_pointer
from mltrail.data.version import DatasetVersionWarning, dataset_log
from mltrail.errors import InvalidInput
from mltrail.tracking.client import MltrailClient
from tests.data import git, project, settle, write

__all__ = ["project"]

CSV = "data/customers.csv"


def _version(root: Path, text: str) -> str:
    """Write a new content of the CSV, add it; return its hash."""
    f = write(root / CSV, text)
    settle(f)
    return data.add([CSV])[0].hash


def _commit(root: Path, message: str, date: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message, date=date)
    return git(root, "rev-parse", "HEAD")


def _use(client: MltrailClient, name: str, direction: str = "input", **kw) -> str:
    run = client.create_run("0", run_name=name)
    log = client.log_input if direction == "input" else client.log_output
    log(run.run_id, CSV, **kw)
    client.set_terminated(run.run_id)
    return run.run_id


@pytest.fixture
def client(project: Path):
    c = MltrailClient()
    yield c
    c.close()


def test_versions_from_git_and_runs(project: Path, client: MltrailClient):
    git(project, "init", "-q")
    v1 = _version(project, "id\n1\n")
    c1 = _commit(project, "data v1", "2026-01-01T10:00:00+00:00")
    a = _use(client, "train-a")
    v2 = _version(project, "id\n1\n2\n")
    c2 = _commit(project, "data v2", "2026-02-01T10:00:00+00:00")
    b = _use(client, "train-b", context="training")
    p = _use(client, "prep", "output")
    # Trained on an edit that was never added: recorded by the run, unknown to Git.
    write(project / CSV, "id\n1\n2\n3\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DatasetVersionWarning)
        d = _use(client, "train-d")
    # File times come from a coarse kernel clock, a few ms behind time.time().
    time.sleep(0.05)
    v4 = _version(project, "id\n4\n")  # added, not committed

    log = dataset_log(CSV, client=client)
    assert (log.path, log.in_git) == (CSV, True)
    versions = log.versions
    assert len(versions) == 4
    assert versions[0].hash == v4
    assert versions[0].current and versions[0].commits == [] and versions[0].uses == []
    v3 = versions[1]
    assert (v3.commits, v3.current, [u.run_id for u in v3.uses]) == ([], False, [d])
    assert v3.size == len("id\n1\n2\n3\n") and v3.kind == "file"
    assert versions[2].hash == v2
    assert [c.commit for c in versions[2].commits] == [c2]
    commit = versions[2].commits[0]
    assert (commit.time, commit.author, commit.subject) == (1769940000000, "Tess Ter", "data v2")
    assert versions[2].time == commit.time
    assert [(u.run_id, u.direction) for u in versions[2].uses] == [(p, "output"), (b, "input")]
    assert versions[3].hash == v1
    assert [c.commit for c in versions[3].commits] == [c1]
    assert [u.run_name for u in versions[3].uses] == ["train-a"]
    assert [u.run_id for u in versions[3].uses] == [a]

    as_dict = log.to_dict()
    assert as_dict["path"] == CSV and as_dict["in_git"] is True
    row = as_dict["versions"][2]
    assert row["commit"] == c2
    assert row["commits"][0]["subject"] == "data v2"
    assert row["runs"][1] == {
        "run_id": b,
        "run_name": "train-b",
        "experiment_id": "0",
        "status": "FINISHED",
        "start_time": versions[2].uses[1].start_time,
        "direction": "input",
        "context": "training",
    }


def test_a_version_committed_twice_is_one_entry(project: Path):
    git(project, "init", "-q")
    v1 = _version(project, "one\n")
    c1 = _commit(project, "v1", "2026-01-01T10:00:00+00:00")
    v2 = _version(project, "two\n")
    _commit(project, "v2", "2026-01-02T10:00:00+00:00")
    assert _version(project, "one\n") == v1
    c3 = _commit(project, "back to v1", "2026-01-03T10:00:00+00:00")
    versions = dataset_log(CSV).versions
    assert [v.hash for v in versions] == [v1, v2]
    assert [c.commit for c in versions[0].commits] == [c3, c1]
    assert versions[0].current and not versions[1].current


def test_a_deleted_pointer_keeps_its_history(project: Path):
    git(project, "init", "-q")
    v1 = _version(project, "one\n")
    _commit(project, "v1", "2026-01-01T10:00:00+00:00")
    git(project, "rm", "-q", f"{CSV}.trail")
    _commit(project, "drop the data", "2026-01-02T10:00:00+00:00")
    versions = dataset_log(CSV).versions
    assert [(v.hash, v.current, len(v.commits)) for v in versions] == [(v1, False, 1)]


def test_without_git_only_the_pointer_and_runs(project: Path, client: MltrailClient):
    v1 = _version(project, "one\n")
    _use(client, "r1")
    v2 = _version(project, "two\n")
    log = dataset_log(CSV)  # the project's own store, opened for the occasion
    assert log.in_git is False
    assert [(v.hash, v.current, v.commits) for v in log.versions] == [
        (v2, True, []),
        (v1, False, []),
    ]
    assert [u.run_name for u in log.versions[1].uses] == ["r1"]


def test_a_repository_without_commits(project: Path):
    git(project, "init", "-q")
    v1 = _version(project, "one\n")
    log = dataset_log(CSV)
    assert log.in_git is False
    assert [v.hash for v in log.versions] == [v1]


def test_a_project_in_a_subfolder_of_the_repository(tmp_path: Path, monkeypatch):
    from mltrail.config import init_project

    root = tmp_path / "repo" / "proj"
    init_project(root)
    monkeypatch.chdir(root)
    git(tmp_path / "repo", "init", "-q")
    v1 = _version(root, "one\n")
    c1 = _commit(tmp_path / "repo", "v1", "2026-01-01T10:00:00+00:00")
    versions = dataset_log(CSV).versions
    assert [(v.hash, [c.commit for c in v.commits]) for v in versions] == [(v1, [c1])]


def test_deleted_runs_are_not_counted(project: Path, client: MltrailClient):
    _version(project, "one\n")
    keep = _use(client, "keep")
    gone = _use(client, "gone")
    client.delete_run(gone)
    [version] = dataset_log(CSV, client=client).versions
    assert [u.run_id for u in version.uses] == [keep]


def test_store_on_postgres_and_sqlite(project: Path, store_uri: str):
    v1 = _version(project, "one\n")
    client = MltrailClient(store_uri)
    try:
        run = _use(client, "r")
        [version] = dataset_log(CSV, client=client).versions
        assert (version.hash, [u.run_id for u in version.uses]) == (v1, [run])
        assert version.hash == read_pointer(project / f"{CSV}.trail").hash
    finally:
        client.close()


def test_untracked_and_inside_a_tracked_folder(project: Path):
    write(project / "data" / "loose.csv", "x")
    with pytest.raises(InvalidInput, match="is not tracked") as err:
        dataset_log("data/loose.csv")
    assert err.value.hint == "Track it first: mltrail data add data/loose.csv"
    images = project / "data" / "images"
    write(images / "0.png", b"0")
    settle(images)
    data.add(["data/images"])
    with pytest.raises(InvalidInput, match="inside data/images"):
        dataset_log("data/images/0.png")
    with pytest.raises(InvalidInput, match="outside the project"):
        dataset_log("../x.csv")
