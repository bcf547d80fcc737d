"""Finding and creating the project folder; refusing folders that are not mltrail's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mltrail import MltrailClient
from mltrail.config import find_project, init_project, resolve
from mltrail.errors import CorruptStore, InvalidInput, StoreNotFound


def test_found_by_walking_up(tmp_path: Path):
    project = init_project(tmp_path)
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project(deep) == project
    loc = resolve(start=deep)
    assert loc.tracking_uri == f"sqlite:///{project / 'mltrail.db'}"
    assert loc.objects == str(project / "objects")


def test_init_is_idempotent_and_keeps_config(tmp_path: Path):
    project = init_project(tmp_path)
    (project / "config.toml").write_text('[core]\nschema = 1\n[remote.origin]\nurl = "x"\n')
    init_project(tmp_path)
    assert "remote.origin" in (project / "config.toml").read_text()
    assert (project / ".gitignore").read_text().startswith("/mltrail.db")


def test_no_project_and_no_create(tmp_path: Path):
    with pytest.raises(StoreNotFound, match="mltrail init"):
        resolve(create=False, start=tmp_path)


def test_env_var_wins(tmp_path: Path, monkeypatch):
    init_project(tmp_path)
    db = tmp_path / "other" / "x.db"
    db.parent.mkdir()
    monkeypatch.setenv("MLTRAIL_TRACKING_URI", f"sqlite:///{db}")
    loc = resolve()
    assert loc.tracking_uri == f"sqlite:///{db}" and loc.objects == str(db.parent / "objects")


def test_mltrail_file_instead_of_folder(tmp_path: Path):
    (tmp_path / ".mltrail").write_text("oops")
    with pytest.raises(CorruptStore, match="not a folder"):
        MltrailClient()
    assert (tmp_path / ".mltrail").read_text() == "oops"


def test_malformed_config(tmp_path: Path):
    project = init_project(tmp_path)
    (project / "config.toml").write_text("[core\nschema = ")
    with pytest.raises(CorruptStore, match=r"config\.toml is not valid TOML"):
        MltrailClient()


def test_garbage_database_in_project(tmp_path: Path):
    project = init_project(tmp_path)
    junk = b"\x00garbage" * 500
    (project / "mltrail.db").write_bytes(junk)
    with pytest.raises(CorruptStore, match="not a usable mltrail store") as err:
        MltrailClient()
    assert str(project) in str(err.value)
    assert (project / "mltrail.db").read_bytes() == junk


@pytest.mark.parametrize("uri", ["mysql://x/y", "ftp://x"])
def test_unsupported_uris(uri):
    with pytest.raises(InvalidInput, match="tracking URI"):
        MltrailClient(uri)
